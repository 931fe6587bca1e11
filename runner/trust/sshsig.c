/* SSH signatures (see sshsig.h): the armor, the blob, OpenSSL's verify. */
#include "trust/sshsig.h"

#include "trust/pkey.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARMOR_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define ARMOR_END "-----END SSH SIGNATURE-----"
#define SSHSIG_MAGIC "SSHSIG"
#define SSHSIG_VERSION 1

/* ---- the wire format ------------------------------------------------------------ */

int otr_ssh_read_str(const unsigned char **p, size_t *left, otr_ssh_str *out)
{
    if (*left < 4)
        return -1;
    uint32_t n = (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 | (uint32_t)(*p)[2] << 8 |
                 (uint32_t)(*p)[3];
    if (n > *left - 4)
        return -1;
    out->p = *p + 4;
    out->len = n;
    *p += 4 + (size_t)n;
    *left -= 4 + (size_t)n;
    return 0;
}

static int str_is(const otr_ssh_str *s, const char *text)
{
    return s->len == strlen(text) && memcmp(s->p, text, s->len) == 0;
}

unsigned char *otr_base64_decode(const char *text, size_t len, size_t *out_len)
{
    char *clean = malloc(len + 1);
    size_t n = 0, pad = 0;
    if (!clean)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        clean[n++] = c;
    }
    if (n == 0 || n % 4 != 0) {
        free(clean);
        return NULL;
    }
    unsigned char *out = malloc(n / 4 * 3 + 1);
    int got = out ? EVP_DecodeBlock(out, (const unsigned char *)clean, (int)n) : -1;
    while (pad < 2 && clean[n - 1 - pad] == '=') /* n >= 4 */
        pad++;
    free(clean);
    if (got < 0 || (size_t)got < pad) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)got - pad;
    return out;
}

/* ---- parsing ---------------------------------------------------------------------- */

/* The first place of needle in text[0, len), or NULL. */
static const char *find(const char *text, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++)
        if (text[i] == needle[0] && memcmp(text + i, needle, n) == 0)
            return text + i;
    return NULL;
}

/* The base64 between the armor lines, or -1 with why. */
static int dearmor(const char *text, size_t len, const char **b64, size_t *b64_len, otr_buf *why)
{
    const char *begin = find(text, len, ARMOR_BEGIN);
    if (!begin) {
        if (find(text, len, "-----BEGIN PGP SIGNATURE-----"))
            otr_buf_puts(why, "an OpenPGP signature, not an SSH one; sign with SSH: git config "
                              "gpg.format ssh");
        else if (find(text, len, "-----BEGIN SIGNED MESSAGE-----"))
            otr_buf_puts(why, "an X.509 (gpgsm) signature, not an SSH one; sign with SSH: git "
                              "config gpg.format ssh");
        else
            otr_buf_puts(why, "not an SSH signature (no " ARMOR_BEGIN " line)");
        return -1;
    }
    /* as ssh-keygen reads it: the armor's first line is the signature's
     * first (a line of anything before it, or an OpenPGP block, is refused) */
    if (begin != text || len <= strlen(ARMOR_BEGIN) || text[strlen(ARMOR_BEGIN)] != '\n') {
        otr_buf_puts(why, "the signature does not start with its " ARMOR_BEGIN " line (something "
                          "comes before it), which ssh-keygen refuses");
        return -1;
    }
    const char *start = begin + strlen(ARMOR_BEGIN);
    const char *end = find(start, len - (size_t)(start - text), ARMOR_END);
    if (!end) {
        otr_buf_puts(why, "the SSH signature has no " ARMOR_END " line");
        return -1;
    }
    *b64 = start;
    *b64_len = (size_t)(end - start);
    return 0;
}

int otr_sshsig_parse(otr_sshsig *out, const char *text, size_t len, otr_buf *why)
{
    const char *b64;
    size_t b64_len;
    otr_ssh_str reserved;
    memset(out, 0, sizeof(*out));
    if (len > OTR_SSHSIG_MAX_ARMOR) {
        otr_buf_printf(why, "the signature is larger than %zu bytes", OTR_SSHSIG_MAX_ARMOR);
        return -1;
    }
    if (dearmor(text, len, &b64, &b64_len, why) < 0)
        return -1;
    if (!(out->blob = otr_base64_decode(b64, b64_len, &out->blob_len))) {
        otr_buf_puts(why, "the SSH signature is not base64");
        return -1;
    }
    const unsigned char *p = out->blob;
    size_t left = out->blob_len;
    if (left < 10 || memcmp(p, SSHSIG_MAGIC, 6) != 0) {
        otr_buf_puts(why, "the SSH signature does not start with SSHSIG");
        goto bad;
    }
    uint32_t version = (uint32_t)p[6] << 24 | (uint32_t)p[7] << 16 | (uint32_t)p[8] << 8 | p[9];
    p += 10;
    left -= 10;
    if (version != SSHSIG_VERSION) {
        otr_buf_printf(why, "SSH signature version %u (only %d is known)", (unsigned)version,
                       SSHSIG_VERSION);
        goto bad;
    }
    if (otr_ssh_read_str(&p, &left, &out->key) < 0 || otr_ssh_read_str(&p, &left, &out->ns) < 0 ||
        otr_ssh_read_str(&p, &left, &reserved) < 0 ||
        otr_ssh_read_str(&p, &left, &out->hash_alg) < 0 ||
        otr_ssh_read_str(&p, &left, &out->sig) < 0 || left != 0) {
        otr_buf_puts(why, "the SSH signature is truncated or has bytes after its end");
        goto bad;
    }
    const unsigned char *k = out->key.p, *s = out->sig.p;
    size_t kleft = out->key.len, sleft = out->sig.len;
    if (otr_ssh_read_str(&k, &kleft, &out->key_type) < 0 ||
        otr_ssh_read_str(&s, &sleft, &out->sig_type) < 0 ||
        otr_ssh_read_str(&s, &sleft, &out->sig_blob) < 0) {
        otr_buf_puts(why, "the SSH signature's key or signature is truncated");
        goto bad;
    }
    return 0;
bad:
    otr_sshsig_clear(out);
    return -1;
}

void otr_sshsig_clear(otr_sshsig *sig)
{
    free(sig->blob);
    memset(sig, 0, sizeof(*sig));
}

/* ---- keys -------------------------------------------------------------------------- */

const char *otr_ssh_key_family(const otr_ssh_str *t)
{
    if (str_is(t, "ssh-ed25519"))
        return "ED25519";
    if (t->len > 11 && memcmp(t->p, "ecdsa-sha2-", 11) == 0)
        return "ECDSA";
    if (str_is(t, "ssh-rsa"))
        return "RSA";
    return "?";
}

void otr_ssh_fingerprint(const unsigned char *key, size_t len, char out[64])
{
    unsigned char md[32], b64[48];
    unsigned int mdlen = 0;
    EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL);
    int n = EVP_EncodeBlock(b64, md, (int)mdlen);
    while (n > 0 && b64[n - 1] == '=')
        n--;
    snprintf(out, 64, "SHA256:%.*s", n, (const char *)b64);
}

/* An ECDSA key: string curve, string Q (an uncompressed point). */
static EVP_PKEY *ecdsa_key(const unsigned char *p, size_t left, const char *curve,
                           const char *group)
{
    otr_ssh_str name, q;
    if (otr_ssh_read_str(&p, &left, &name) < 0 || otr_ssh_read_str(&p, &left, &q) < 0 || left ||
        !str_is(&name, curve))
        return NULL;
    return otr_pkey_ec(group, q.p, q.len);
}

/* An RSA key: mpint e, mpint n. */
static EVP_PKEY *rsa_key(const unsigned char *p, size_t left, otr_buf *why)
{
    otr_ssh_str e, n;
    if (otr_ssh_read_str(&p, &left, &e) < 0 || otr_ssh_read_str(&p, &left, &n) < 0 || left)
        return NULL;
    return otr_pkey_rsa(n.p, n.len, e.p, e.len, why);
}

/* An ECDSA signature blob (mpint r, mpint s) as DER, for OpenSSL. */
static unsigned char *ecdsa_der(const otr_ssh_str *blob, size_t *der_len)
{
    const unsigned char *p = blob->p;
    size_t left = blob->len;
    otr_ssh_str r, s;
    if (otr_ssh_read_str(&p, &left, &r) < 0 || otr_ssh_read_str(&p, &left, &s) < 0 || left)
        return NULL;
    return otr_pkey_ecdsa_der(r.p, r.len, s.p, s.len, der_len);
}

typedef struct scheme {
    const char *key_type, *sig_type;
    const char *curve, *group; /* ECDSA */
    const char *md;            /* NULL: EdDSA (no separate digest) */
} scheme;

static const scheme schemes[] = {
    {"ssh-ed25519", "ssh-ed25519", NULL, NULL, NULL},
    {"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", "nistp256", "prime256v1", "SHA256"},
    {"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384", "nistp384", "secp384r1", "SHA384"},
    {"ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521", "nistp521", "secp521r1", "SHA512"},
    {"ssh-rsa", "rsa-sha2-256", NULL, NULL, "SHA256"},
    {"ssh-rsa", "rsa-sha2-512", NULL, NULL, "SHA512"},
};

static const scheme *scheme_of(const otr_sshsig *sig, otr_buf *why)
{
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (str_is(&sig->key_type, schemes[i].key_type) &&
            str_is(&sig->sig_type, schemes[i].sig_type))
            return &schemes[i];
    if (str_is(&sig->sig_type, "ssh-rsa"))
        otr_buf_puts(why, "an ssh-rsa signature (SHA-1) is refused; sign with rsa-sha2-512 (a "
                          "current ssh-keygen does)");
    else
        otr_buf_printf(why, "an unsupported key or signature type (%.*s, %.*s)",
                       (int)(sig->key_type.len > 64 ? 64 : sig->key_type.len), sig->key_type.p,
                       (int)(sig->sig_type.len > 64 ? 64 : sig->sig_type.len), sig->sig_type.p);
    return NULL;
}

static EVP_PKEY *key_of(const otr_sshsig *sig, const scheme *sc, otr_buf *why)
{
    const unsigned char *p = sig->key.p;
    size_t left = sig->key.len;
    otr_ssh_str type, raw;
    if (otr_ssh_read_str(&p, &left, &type) < 0)
        return NULL;
    if (!sc->md) {
        if (otr_ssh_read_str(&p, &left, &raw) < 0 || left || raw.len != 32)
            return NULL;
        return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw.p, raw.len);
    }
    return sc->curve ? ecdsa_key(p, left, sc->curve, sc->group) : rsa_key(p, left, why);
}

/* The data the signature covers: "SSHSIG" string ns string reserved
 * string hash_alg string H(message). */
static int signed_data(otr_buf *out, const otr_sshsig *sig, const void *message, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const EVP_MD *h = str_is(&sig->hash_alg, "sha256")   ? EVP_sha256()
                      : str_is(&sig->hash_alg, "sha512") ? EVP_sha512()
                                                         : NULL;
    if (!h || !EVP_Digest(message, len, md, &mdlen, h, NULL))
        return -1;
    const otr_ssh_str parts[] = {sig->ns, {NULL, 0}, sig->hash_alg, {md, mdlen}};
    otr_buf_append(out, SSHSIG_MAGIC, 6);
    for (size_t i = 0; i < 4; i++) {
        unsigned char n[4] = {(unsigned char)(parts[i].len >> 24),
                              (unsigned char)(parts[i].len >> 16),
                              (unsigned char)(parts[i].len >> 8), (unsigned char)parts[i].len};
        otr_buf_append(out, n, 4);
        if (parts[i].len)
            otr_buf_append(out, parts[i].p, parts[i].len);
    }
    return otr_buf_failed(out) ? -1 : 0;
}

int otr_sshsig_verify(const otr_sshsig *sig, const char *ns, const void *message, size_t len,
                      otr_buf *why)
{
    const scheme *sc = scheme_of(sig, why);
    if (!sc)
        return -1;
    if (!str_is(&sig->ns, ns)) {
        otr_buf_printf(why, "signed in the namespace \"%.*s\", not \"%s\"",
                       (int)(sig->ns.len > 64 ? 64 : sig->ns.len), sig->ns.p, ns);
        return -1;
    }
    if (!str_is(&sig->hash_alg, "sha256") && !str_is(&sig->hash_alg, "sha512")) {
        otr_buf_puts(why, "the signature's hash is neither sha256 nor sha512");
        return -1;
    }
    otr_buf data = OTR_BUF_INIT;
    EVP_PKEY *pkey = key_of(sig, sc, why);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *der = NULL;
    const unsigned char *s = sig->sig_blob.p;
    size_t slen = sig->sig_blob.len;
    int rc = -1;
    if (!pkey) {
        if (!why->len)
            otr_buf_puts(why, "the signature's public key is malformed");
        goto done;
    }
    if (sc->curve && !(s = der = ecdsa_der(&sig->sig_blob, &slen))) {
        otr_buf_puts(why, "the ECDSA signature is malformed");
        goto done;
    }
    if (!ctx || signed_data(&data, sig, message, len) < 0 ||
        EVP_DigestVerifyInit_ex(ctx, NULL, sc->md, NULL, NULL, pkey, NULL) <= 0) {
        otr_buf_puts(why, "cannot set up the signature check (out of memory?)");
        goto done;
    }
    if (EVP_DigestVerify(ctx, s, slen, (const unsigned char *)data.ptr, data.len) != 1) {
        otr_buf_puts(why, "the signature does not match the signed data (a byte was changed, or "
                          "it was made by another key)");
        goto done;
    }
    rc = 0;
done:
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    otr_buf_free(&data);
    return rc;
}
