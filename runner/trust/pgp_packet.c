/* OpenPGP packets, armor, keys and signatures (see pgp_packet.h). */
#include "trust/pgp_packet.h"

#include "trust/pkey.h"
#include "trust/sshsig.h"

#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALGO_RSA 1
#define ALGO_RSA_ENCRYPT 2
#define ALGO_RSA_SIGN 3
#define ALGO_ELGAMAL 16
#define ALGO_DSA 17
#define ALGO_ECDH 18
#define ALGO_ECDSA 19
#define ALGO_EDDSA_LEGACY 22
#define ALGO_ED25519 27

/* ---- packets -------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int take(pgp_bytes *in, size_t n, pgp_bytes *out)
{
    if (in->len < n)
        return -1;
    if (out) {
        out->p = in->p;
        out->len = n;
    }
    in->p += n;
    in->len -= n;
    return 0;
}

int pgp_packet_next(pgp_bytes *in, pgp_packet *out, otr_buf *why)
{
    pgp_bytes h;
    size_t len;
    if (in->len == 0)
        return 0;
    unsigned b = in->p[0];
    if (!(b & 0x80)) {
        otr_buf_puts(why, "not an OpenPGP packet (its first bit is clear)");
        return -1;
    }
    take(in, 1, NULL);
    if (b & 0x40) { /* the new format */
        out->tag = (int)(b & 0x3F);
        if (take(in, 1, &h) < 0)
            goto truncated;
        if (h.p[0] < 192) {
            len = h.p[0];
        } else if (h.p[0] < 224) {
            if (take(in, 1, NULL) < 0)
                goto truncated;
            len = ((size_t)(h.p[0] - 192) << 8) + in->p[-1] + 192;
        } else if (h.p[0] == 255) {
            if (take(in, 4, &h) < 0)
                goto truncated;
            len = be32(h.p);
        } else {
            otr_buf_puts(why, "a packet of partial lengths (a key or a signature is never one)");
            return -1;
        }
    } else { /* the old format */
        static const size_t sizes[] = {1, 2, 4};
        out->tag = (int)((b >> 2) & 0x0F);
        if ((b & 3) == 3) {
            otr_buf_puts(why, "a packet of indeterminate length");
            return -1;
        }
        if (take(in, sizes[b & 3], &h) < 0)
            goto truncated;
        len = 0;
        for (size_t i = 0; i < h.len; i++)
            len = len << 8 | h.p[i];
    }
    if (take(in, len, &out->body) == 0)
        return 1;
truncated:
    otr_buf_puts(why, "a packet is truncated");
    return -1;
}

/* ---- armor ---------------------------------------------------------------------- */

static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl : end;
}

static int line_is(const char *p, const char *eol, const char *text)
{
    while (eol > p && (eol[-1] == '\r' || eol[-1] == ' ' || eol[-1] == '\t'))
        eol--;
    return (size_t)(eol - p) == strlen(text) && memcmp(p, text, (size_t)(eol - p)) == 0;
}

static int blank(const char *p, const char *eol)
{
    for (; p < eol; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r')
            return 0;
    return 1;
}

/* RFC 4880 6.1: the CRC-24 of the armor's checksum line. */
static uint32_t crc24(const unsigned char *p, size_t len)
{
    uint32_t crc = 0xB704CEu;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint32_t)p[i] << 16;
        for (int b = 0; b < 8; b++) {
            crc <<= 1;
            if (crc & 0x1000000u)
                crc ^= 0x1864CFBu;
        }
    }
    return crc & 0xFFFFFFu;
}

int pgp_dearmor(const char **text, const char *end, const char *label, otr_buf *out, otr_buf *why)
{
    char begin[64], finish[64];
    const char *p = *text, *eol, *body = NULL, *sum = NULL;
    snprintf(begin, sizeof(begin), "-----BEGIN PGP %s-----", label);
    snprintf(finish, sizeof(finish), "-----END PGP %s-----", label);
    otr_buf_clear(out);
    for (; p < end; p = eol + 1) { /* the BEGIN line */
        eol = line_end(p, end);
        if (line_is(p, eol, begin))
            break;
    }
    if (p >= end)
        return 0;
    for (p = eol + 1; p < end && !body; p = eol + 1) { /* headers, up to a blank line */
        eol = line_end(p, end);
        if (blank(p, eol))
            body = eol + 1;
        else if (!memchr(p, ':', (size_t)(eol - p)))
            break;
    }
    if (!body) {
        otr_buf_printf(why, "the armor after \"%s\" has no blank line before its data", begin);
        return -1;
    }
    for (p = body; p < end; p = eol + 1) {
        eol = line_end(p, end);
        if (*p == '=' && !sum)
            sum = p;
        else if (line_is(p, eol, finish) || (sum && !blank(p, eol)))
            break;
    }
    if (p >= end || !line_is(p, eol, finish)) {
        otr_buf_printf(why, "no \"%s\" line ends the armor", finish);
        return -1;
    }
    *text = eol < end ? eol + 1 : end;
    size_t n = 0, crc_len = 0;
    unsigned char *bin = otr_base64_decode(body, (size_t)((sum ? sum : p) - body), &n);
    unsigned char *crc =
        sum ? otr_base64_decode(sum + 1, (size_t)(line_end(sum, end) - sum - 1), &crc_len) : NULL;
    int rc = -1;
    if (!bin)
        otr_buf_puts(why, "the armor's data is not base64");
    else if (sum && (!crc || crc_len != 3))
        otr_buf_puts(why, "the armor's checksum line is not 4 base64 characters");
    else if (sum && crc24(bin, n) != ((uint32_t)crc[0] << 16 | (uint32_t)crc[1] << 8 | crc[2]))
        otr_buf_puts(why, "the armor's checksum does not match its data (a character was changed)");
    else
        rc = otr_buf_append(out, bin, n) < 0 ? (otr_buf_puts(why, "out of memory"), -1) : 1;
    free(bin);
    free(crc);
    return rc;
}

/* ---- keys ----------------------------------------------------------------------- */

/* A multiprecision integer: two bytes of bit count, then its bytes. */
static int mpi(pgp_bytes *in, pgp_bytes *out)
{
    pgp_bytes h;
    if (take(in, 2, &h) < 0)
        return -1;
    size_t bits = (size_t)h.p[0] << 8 | h.p[1];
    return take(in, (bits + 7) / 8, out);
}

static int oid_is(const pgp_bytes *oid, const unsigned char *want, size_t len)
{
    return oid->len == len && memcmp(oid->p, want, len) == 0;
}

static const unsigned char OID_P256[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
static const unsigned char OID_P384[] = {0x2B, 0x81, 0x04, 0x00, 0x22};
static const unsigned char OID_P521[] = {0x2B, 0x81, 0x04, 0x00, 0x23};
static const unsigned char OID_ED25519[] = {0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01};

/* A curve's OID: one byte of length (not 0 or 255), then the OID. */
static int curve_oid(pgp_bytes *in, pgp_bytes *oid)
{
    return in->len && in->p[0] && in->p[0] != 0xFF && take(in, 1, NULL) == 0
               ? take(in, in->p[-1], oid)
               : -1;
}

static int key_material(pgp_key *k, pgp_bytes m, otr_buf *why)
{
    pgp_bytes a, b;
    switch (k->algo) {
    case ALGO_RSA:
    case ALGO_RSA_SIGN:
    case ALGO_RSA_ENCRYPT:
        k->family = "RSA";
        if (mpi(&m, &a) < 0 || mpi(&m, &b) < 0)
            return -1;
        if (k->algo != ALGO_RSA_ENCRYPT && !(k->pkey = otr_pkey_rsa(a.p, a.len, b.p, b.len, why)))
            return why->len ? -1 : (otr_buf_puts(why, "the RSA key is malformed"), -1);
        return 0;
    case ALGO_ECDSA:
        k->family = "ECDSA";
        if (curve_oid(&m, &a) < 0 || mpi(&m, &b) < 0)
            return -1;
        if (oid_is(&a, OID_P256, sizeof(OID_P256)))
            k->pkey = otr_pkey_ec("prime256v1", b.p, b.len);
        else if (oid_is(&a, OID_P384, sizeof(OID_P384)))
            k->pkey = otr_pkey_ec("secp384r1", b.p, b.len);
        else if (oid_is(&a, OID_P521, sizeof(OID_P521)))
            k->pkey = otr_pkey_ec("secp521r1", b.p, b.len);
        else
            return 0; /* a curve not supported: it signs nothing we accept */
        return k->pkey ? 0 : (otr_buf_puts(why, "the ECDSA key's point is not on its curve"), -1);
    case ALGO_EDDSA_LEGACY:
        k->family = "ED25519";
        if (curve_oid(&m, &a) < 0 || mpi(&m, &b) < 0)
            return -1;
        if (!oid_is(&a, OID_ED25519, sizeof(OID_ED25519)))
            return 0; /* Ed448 in the legacy encoding: not supported */
        if (b.len != 33 || b.p[0] != 0x40)
            return (otr_buf_puts(why, "the Ed25519 key is not 0x40 and 32 bytes"), -1);
        k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, b.p + 1, 32);
        return k->pkey ? 0 : -1;
    case ALGO_ED25519:
        k->family = "ED25519";
        if (take(&m, 32, &a) < 0)
            return -1;
        k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, a.p, 32);
        return k->pkey ? 0 : -1;
    case ALGO_DSA: k->family = "DSA"; return 0;
    case ALGO_ECDH: k->family = "ECDH"; return 0;
    case ALGO_ELGAMAL: k->family = "ElGamal"; return 0;
    default: k->family = "an unknown algorithm"; return 0;
    }
}

int pgp_key_parse(pgp_key *out, pgp_bytes body, otr_buf *why)
{
    pgp_bytes m = body, h;
    memset(out, 0, sizeof(*out));
    out->body = body;
    if (body.len < 6 || body.len > 0xFFFF) {
        otr_buf_puts(why, "a key packet is truncated or too large");
        return -1;
    }
    if (body.p[0] != 4) {
        otr_buf_printf(why, "a v%d key (only v4 keys are supported%s)", body.p[0],
                       body.p[0] < 4 ? "; v3 keys are PGP 2's and refused" : "");
        return -1;
    }
    take(&m, 6, &h);
    out->created = be32(h.p + 1);
    out->algo = h.p[5];
    if (key_material(out, m, why) < 0) {
        if (!why->len)
            otr_buf_printf(why, "the %s key's numbers are truncated", out->family);
        pgp_key_clear(out);
        return -1;
    }
    unsigned char hdr[3] = {0x99, (unsigned char)(body.len >> 8), (unsigned char)body.len};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, hdr, 3) &&
             EVP_DigestUpdate(ctx, body.p, body.len) && EVP_DigestFinal_ex(ctx, out->fpr, NULL);
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        pgp_key_clear(out);
        otr_buf_puts(why, "cannot compute the key's fingerprint");
        return -1;
    }
    return 0;
}

void pgp_key_clear(pgp_key *k)
{
    EVP_PKEY_free(k->pkey);
    memset(k, 0, sizeof(*k));
}

int pgp_key_has_id(const pgp_key *k, const unsigned char id[8])
{
    return memcmp(k->fpr + 12, id, 8) == 0;
}

size_t pgp_key_pieces(const pgp_key *key, const pgp_key *sub, const pgp_bytes *uid,
                      unsigned char hdr[3][5], pgp_bytes pieces[4])
{
    size_t n = 0, h = 0;
    const pgp_key *keys[2] = {key, sub};
    for (int i = 0; i < 2; i++) {
        if (!keys[i])
            continue;
        hdr[h][0] = 0x99;
        hdr[h][1] = (unsigned char)(keys[i]->body.len >> 8);
        hdr[h][2] = (unsigned char)keys[i]->body.len;
        pieces[n++] = (pgp_bytes){hdr[h++], 3};
        pieces[n++] = keys[i]->body;
    }
    if (uid && n < 4) {
        hdr[h][0] = 0xB4;
        for (int i = 0; i < 4; i++)
            hdr[h][1 + i] = (unsigned char)(uid->len >> (24 - 8 * i));
        pieces[n++] = (pgp_bytes){hdr[h], 5};
        pieces[n++] = *uid;
    }
    return n;
}

/* ---- signatures ----------------------------------------------------------------- */

/* Subpacket types read, and the others understood enough to be critical. */
enum {
    SUB_CREATED = 2,
    SUB_SIG_EXPIRES = 3,
    SUB_KEY_EXPIRES = 9,
    SUB_ISSUER = 16,
    SUB_KEY_FLAGS = 27,
    SUB_EMBEDDED = 32,
    SUB_ISSUER_FPR = 33,
};

static int understood(int type)
{
    /* exportable, revocable, preferences, primary user ID, signer's user ID,
     * reason for revocation, features: nothing in them changes whether a
     * signature is good, so they may be critical */
    static const int known[] = {2,  3,  4,  7,  9,  11, 16, 21, 22, 23,
                                25, 27, 28, 29, 30, 32, 33, 34, 39};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known[i] == type)
            return 1;
    return 0;
}

static void subpacket(pgp_sig *s, int type, pgp_bytes v, int hashed)
{
    if (type == SUB_ISSUER && v.len == 8) {
        memcpy(s->issuer_id, v.p, 8);
        s->has_issuer_id = 1;
    } else if (type == SUB_ISSUER_FPR && v.len == 21 && v.p[0] == 4) {
        memcpy(s->issuer_fpr, v.p + 1, 20);
        s->has_issuer_fpr = 1;
    } else if (type == SUB_EMBEDDED) {
        s->embedded = v;
    } else if (!hashed) {
        return; /* the rest counts only when the signature covers it */
    } else if (type == SUB_CREATED && v.len == 4) {
        s->created = be32(v.p);
    } else if (type == SUB_SIG_EXPIRES && v.len == 4) {
        s->expires = be32(v.p);
    } else if (type == SUB_KEY_EXPIRES && v.len == 4) {
        s->has_key_expires = 1;
        s->key_expires = be32(v.p);
    } else if (type == SUB_KEY_FLAGS && v.len >= 1) {
        s->has_flags = 1;
        s->flags = v.p[0];
    }
}

static int subpackets(pgp_sig *s, pgp_bytes area, int hashed, otr_buf *why)
{
    while (area.len) {
        pgp_bytes h, v;
        size_t len;
        take(&area, 1, &h);
        if (h.p[0] < 192) {
            len = h.p[0];
        } else if (h.p[0] < 255) {
            if (take(&area, 1, NULL) < 0)
                goto bad;
            len = ((size_t)(h.p[0] - 192) << 8) + area.p[-1] + 192;
        } else {
            if (take(&area, 4, &h) < 0)
                goto bad;
            len = be32(h.p);
        }
        if (len == 0 || take(&area, len, &v) < 0)
            goto bad;
        int type = v.p[0] & 0x7F, critical = v.p[0] & 0x80;
        v.p++;
        v.len--;
        if (hashed && critical && !understood(type) && !s->critical_unknown)
            s->critical_unknown = type;
        subpacket(s, type, v, hashed);
    }
    return 0;
bad:
    otr_buf_puts(why, "a signature's subpackets are truncated");
    return -1;
}

int pgp_sig_parse(pgp_sig *out, pgp_bytes body, otr_buf *why)
{
    pgp_bytes m = body, h, area;
    memset(out, 0, sizeof(*out));
    out->created = -1;
    if (body.len < 1) {
        otr_buf_puts(why, "an empty signature packet");
        return -1;
    }
    out->version = body.p[0];
    if (out->version != 4)
        return 0;
    if (take(&m, 6, &h) < 0)
        goto truncated;
    out->type = h.p[1];
    out->pk_algo = h.p[2];
    out->hash_algo = h.p[3];
    if (take(&m, (size_t)h.p[4] << 8 | h.p[5], &area) < 0)
        goto truncated;
    out->hashed = (pgp_bytes){body.p, 6 + area.len};
    if (subpackets(out, area, 1, why) < 0)
        return -1;
    if (take(&m, 2, &h) < 0 || take(&m, (size_t)h.p[0] << 8 | h.p[1], &area) < 0)
        goto truncated;
    if (subpackets(out, area, 0, why) < 0)
        return -1;
    if (take(&m, 2, &h) < 0)
        goto truncated;
    memcpy(out->left16, h.p, 2);
    out->material = m;
    return 0;
truncated:
    otr_buf_puts(why, "a signature packet is truncated");
    return -1;
}

static const struct {
    const char *name;
    int id;
    int accepted;
} hashes[] = {
    {"MD5", 1, 0},     {"SHA1", 2, 0},      {"RIPEMD160", 3, 0},
    {"SHA256", 8, 1},  {"SHA384", 9, 1},    {"SHA512", 10, 1},
    {"SHA224", 11, 1}, {"SHA3-256", 12, 1}, {"SHA3-512", 14, 1},
};

const char *pgp_hash_name(int algo, int *accepted)
{
    for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++)
        if (hashes[i].id == algo) {
            *accepted = hashes[i].accepted;
            return hashes[i].name;
        }
    *accepted = 0;
    return NULL;
}

int pgp_sig_names(const pgp_sig *sig, const pgp_key *key)
{
    if (sig->has_issuer_fpr)
        return memcmp(sig->issuer_fpr, key->fpr, 20) == 0;
    if (sig->has_issuer_id)
        return pgp_key_has_id(key, sig->issuer_id);
    return 1;
}

/* The digest the signature signs: the pieces, its hashed part, its trailer. */
static int digest(const pgp_sig *sig, const EVP_MD *md, const pgp_bytes *pieces, size_t n,
                  unsigned char *out, unsigned *out_len)
{
    unsigned char trailer[6] = {4,
                                0xFF,
                                (unsigned char)(sig->hashed.len >> 24),
                                (unsigned char)(sig->hashed.len >> 16),
                                (unsigned char)(sig->hashed.len >> 8),
                                (unsigned char)sig->hashed.len};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, md, NULL);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, pieces[i].p, pieces[i].len);
    ok = ok && EVP_DigestUpdate(ctx, sig->hashed.p, sig->hashed.len) &&
         EVP_DigestUpdate(ctx, trailer, 6) && EVP_DigestFinal_ex(ctx, out, out_len);
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* Left-pads an integer of len bytes to width into out (width at most 1024). */
static int pad(const pgp_bytes *v, size_t width, unsigned char *out)
{
    if (v->len > width)
        return -1;
    memset(out, 0, width - v->len);
    memcpy(out + width - v->len, v->p, v->len);
    return 0;
}

/* The signature's numbers checked against the digest by the key. */
static int check_material(const pgp_sig *sig, const pgp_key *key, const EVP_MD *md,
                          const unsigned char *dg, unsigned dg_len)
{
    pgp_bytes m = sig->material, r, s;
    unsigned char raw[1024], *der = NULL;
    size_t raw_len = 0;
    int ok = 0;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_MD_CTX *mctx = NULL;
    if (key->algo == ALGO_ED25519 ? take(&m, 64, &r) < 0 : mpi(&m, &r) < 0)
        return -1;
    if (key->algo == ALGO_RSA || key->algo == ALGO_RSA_SIGN) {
        raw_len = (size_t)EVP_PKEY_get_size(key->pkey);
        if (raw_len > sizeof(raw) || pad(&r, raw_len, raw) < 0)
            return -1;
        ok = (ctx = EVP_PKEY_CTX_new(key->pkey, NULL)) && EVP_PKEY_verify_init(ctx) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
             EVP_PKEY_CTX_set_signature_md(ctx, md) > 0 &&
             EVP_PKEY_verify(ctx, raw, raw_len, dg, dg_len) == 1;
    } else if (key->algo == ALGO_ECDSA) {
        if (mpi(&m, &s) < 0 || !(der = otr_pkey_ecdsa_der(r.p, r.len, s.p, s.len, &raw_len)))
            return -1;
        ok = (ctx = EVP_PKEY_CTX_new(key->pkey, NULL)) && EVP_PKEY_verify_init(ctx) > 0 &&
             EVP_PKEY_verify(ctx, der, raw_len, dg, dg_len) == 1;
    } else { /* Ed25519 signs the digest as its message */
        if (key->algo == ALGO_ED25519)
            memcpy(raw, r.p, 64);
        else if (mpi(&m, &s) < 0 || pad(&r, 32, raw) < 0 || pad(&s, 32, raw + 32) < 0)
            return -1;
        ok = (mctx = EVP_MD_CTX_new()) &&
             EVP_DigestVerifyInit_ex(mctx, NULL, NULL, NULL, NULL, key->pkey, NULL) > 0 &&
             EVP_DigestVerify(mctx, raw, 64, dg, dg_len) == 1;
    }
    OPENSSL_free(der);
    EVP_PKEY_CTX_free(ctx);
    EVP_MD_CTX_free(mctx);
    return ok ? 0 : -1;
}

int pgp_sig_check(const pgp_sig *sig, const pgp_key *key, const pgp_bytes *pieces, size_t n,
                  otr_buf *why)
{
    int accepted = 0;
    const char *name = pgp_hash_name(sig->hash_algo, &accepted);
    const EVP_MD *md = name && accepted ? EVP_get_digestbyname(name) : NULL;
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned dg_len = 0;
    if (!key->pkey) {
        otr_buf_printf(why, "the key cannot sign (%s is not supported for signatures)",
                       key->family);
        return -1;
    }
    if (sig->pk_algo != key->algo) {
        otr_buf_puts(why, "the signature's algorithm is not its key's");
        return -1;
    }
    if (!md) {
        otr_buf_printf(why,
                       "a signature by %s is refused (sign with SHA-256 or stronger: gpg's "
                       "default; personal-digest-preferences SHA512)",
                       name ? name : "an unknown hash");
        return -1;
    }
    if (digest(sig, md, pieces, n, dg, &dg_len) < 0) {
        otr_buf_puts(why, "cannot hash the signed data (out of memory?)");
        return -1;
    }
    if (memcmp(dg, sig->left16, 2) != 0 || check_material(sig, key, md, dg, dg_len) < 0) {
        otr_buf_puts(why, "the signature does not match the signed data (a byte was changed, or "
                          "it was made by another key)");
        return -1;
    }
    return 0;
}
