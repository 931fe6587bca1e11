/*
 * Public keys for OpenSSL from their parts, as the SSH and OpenPGP formats
 * carry them: an RSA modulus and exponent, an elliptic curve point, an
 * Ed25519 key's 32 bytes; and an ECDSA signature's r and s as the DER
 * OpenSSL verifies. Each returns NULL when the parts are not a key; the
 * caller frees a key with EVP_PKEY_free and a DER with OPENSSL_free.
 */
#ifndef OTR_TRUST_PKEY_H
#define OTR_TRUST_PKEY_H

#include "util/buf.h"

#include <openssl/evp.h>
#include <stddef.h>

/* The smallest RSA modulus accepted (OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE). */
#define OTR_RSA_MIN_BITS 1024

/* An RSA key from big-endian n and e; a modulus under OTR_RSA_MIN_BITS is
 * refused with why. */
EVP_PKEY *otr_pkey_rsa(const unsigned char *n, size_t n_len, const unsigned char *e, size_t e_len,
                       otr_buf *why);

/* An EC key on group (OpenSSL's name: "prime256v1") from an uncompressed point. */
EVP_PKEY *otr_pkey_ec(const char *group, const unsigned char *point, size_t len);

/* r and s (big-endian) as a DER ECDSA-Sig-Value. */
unsigned char *otr_pkey_ecdsa_der(const unsigned char *r, size_t r_len, const unsigned char *s,
                                  size_t s_len, size_t *der_len);

#endif
