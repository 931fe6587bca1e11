/* Public keys from their parts (see pkey.h). */
#include "trust/pkey.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

EVP_PKEY *otr_pkey_rsa(const unsigned char *n, size_t n_len, const unsigned char *e, size_t e_len,
                       otr_buf *why)
{
    BIGNUM *be = BN_bin2bn(e, (int)e_len, NULL), *bn = BN_bin2bn(n, (int)n_len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bn && BN_num_bits(bn) < OTR_RSA_MIN_BITS) {
        otr_buf_printf(why, "the RSA key has %d bits (at least %d are needed)", BN_num_bits(bn),
                       OTR_RSA_MIN_BITS);
    } else if (be && bn && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
               OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)) {
        pkey = from_params("RSA", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    BN_free(be);
    BN_free(bn);
    return pkey;
}

EVP_PKEY *otr_pkey_ec(const char *group, const unsigned char *point, size_t len)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, len))
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

unsigned char *otr_pkey_ecdsa_der(const unsigned char *r, size_t r_len, const unsigned char *s,
                                  size_t s_len, size_t *der_len)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *br = BN_bin2bn(r, (int)r_len, NULL), *bs = BN_bin2bn(s, (int)s_len, NULL);
    unsigned char *der = NULL;
    if (sig && br && bs && ECDSA_SIG_set0(sig, br, bs)) {
        br = bs = NULL; /* the signature owns them */
        int n = i2d_ECDSA_SIG(sig, &der);
        *der_len = n > 0 ? (size_t)n : 0;
        if (n <= 0)
            der = NULL;
    }
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(sig);
    return der;
}
