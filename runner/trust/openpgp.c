/* OpenPGP keyrings and signatures (see openpgp.h). */
#include "trust/openpgp.h"

#include "trust/pgp_packet.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct subkey {
    pgp_key key;
    int64_t bound_at; /* the newest valid binding's time; -1: none */
    int64_t expires;  /* 0: never */
    unsigned flags;
    int revoked;
} subkey;

typedef struct cert {
    pgp_key primary;
    int64_t self_at; /* the newest valid self-signature's time; -1: none */
    int64_t expires;
    int has_flags;
    unsigned flags;
    int revoked;
    subkey *subs;
    size_t nsubs;
} cert;

struct otr_pgp_keyring {
    cert *certs;
    size_t count;
    unsigned char **blocks; /* the decoded blocks the keys point into */
    size_t nblocks;
    char *file;
};

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02X", p[i]);
}

/* ---- reading a certificate -------------------------------------------------------- */

/* Is sig, by its issuer and times, a current self-signature candidate? */
static int current(const pgp_sig *sig, const pgp_key *by, int64_t now)
{
    int accepted = 0;
    pgp_hash_name(sig->hash_algo, &accepted);
    return sig->version == 4 && accepted && !sig->critical_unknown && sig->created >= by->created &&
           (sig->expires == 0 || sig->created + sig->expires > now) && pgp_sig_names(sig, by);
}

/* Checks sig by key over the key (and sub or uid); 0 when it is good. */
static int certifies(const pgp_sig *sig, const pgp_key *by, const pgp_key *key, const pgp_key *sub,
                     const pgp_bytes *uid, int64_t now)
{
    unsigned char hdr[3][5];
    pgp_bytes pieces[4];
    otr_buf why = OTR_BUF_INIT;
    if (!current(sig, by, now))
        return -1;
    size_t n = pgp_key_pieces(key, sub, uid, hdr, pieces);
    int rc = pgp_sig_check(sig, by, pieces, n, &why);
    otr_buf_free(&why);
    return rc;
}

static void self_signature(cert *c, const pgp_sig *sig, const pgp_bytes *uid, int64_t now)
{
    if (sig->created <= c->self_at || certifies(sig, &c->primary, &c->primary, NULL, uid, now) < 0)
        return;
    c->self_at = sig->created;
    c->expires =
        sig->has_key_expires && sig->key_expires ? c->primary.created + sig->key_expires : 0;
    c->has_flags = sig->has_flags;
    c->flags = sig->flags;
}

/* A subkey binding: by the primary over both keys; a signing subkey's must
 * embed the subkey's own signature over them (its back-signature). */
static void binding(cert *c, subkey *s, const pgp_sig *sig, int64_t now)
{
    pgp_sig back;
    otr_buf why = OTR_BUF_INIT;
    if (sig->created <= s->bound_at ||
        certifies(sig, &c->primary, &c->primary, &s->key, NULL, now) < 0)
        return;
    unsigned flags = sig->has_flags ? sig->flags : 0;
    if ((flags & PGP_FLAG_SIGN) &&
        (!sig->embedded.p || pgp_sig_parse(&back, sig->embedded, &why) < 0 ||
         back.type != PGP_SIG_PRIMARY_BINDING ||
         certifies(&back, &s->key, &c->primary, &s->key, NULL, now) < 0))
        flags &= ~(unsigned)PGP_FLAG_SIGN; /* not cross-certified: it may not sign */
    otr_buf_free(&why);
    s->bound_at = sig->created;
    s->expires = sig->has_key_expires && sig->key_expires ? s->key.created + sig->key_expires : 0;
    s->flags = flags;
}

typedef enum { AT_NONE, AT_KEY, AT_UID, AT_OTHER, AT_SUB } place;

/* Where a block's reading stands: the certificate and subkey the packets
 * since the last key belong to (indexes: the arrays grow). A key that
 * comes twice (two exports of one key, one of them revoked) is read into
 * the one certificate, so a revocation in either counts. */
typedef struct reader {
    otr_pgp_keyring *k;
    size_t cert, sub;
    int have_cert;
    place at;
    pgp_bytes uid;
    int64_t now;
} reader;

/* One signature packet inside a certificate, where it stands. */
static void key_signature(reader *r, pgp_bytes body)
{
    pgp_sig sig;
    otr_buf why = OTR_BUF_INIT;
    cert *c = &r->k->certs[r->cert];
    subkey *s = r->at == AT_SUB ? &c->subs[r->sub] : NULL;
    if (pgp_sig_parse(&sig, body, &why) < 0 || sig.version != 4) {
        otr_buf_free(&why); /* a signature not understood certifies nothing */
        return;
    }
    otr_buf_free(&why);
    if (r->at == AT_KEY && sig.type == PGP_SIG_DIRECT_KEY)
        self_signature(c, &sig, NULL, r->now);
    else if (r->at == AT_KEY && sig.type == PGP_SIG_KEY_REVOCATION)
        c->revoked |= certifies(&sig, &c->primary, &c->primary, NULL, NULL, INT64_MIN) == 0;
    else if (r->at == AT_UID && sig.type >= 0x10 && sig.type <= 0x13)
        self_signature(c, &sig, &r->uid, r->now);
    else if (s && sig.type == PGP_SIG_SUBKEY_BINDING)
        binding(c, s, &sig, r->now);
    else if (s && sig.type == PGP_SIG_SUBKEY_REVOCATION)
        s->revoked |= certifies(&sig, &c->primary, &c->primary, &s->key, NULL, INT64_MIN) == 0;
}

static int grow(void **items, size_t count, size_t size)
{
    void *grown = realloc(*items, (count + 1) * size);
    if (!grown)
        return -1;
    *items = grown;
    memset((char *)grown + count * size, 0, size);
    return 0;
}

/* A primary key: a new certificate, or the one it already has. */
static int primary_key(reader *r, pgp_key *key)
{
    otr_pgp_keyring *k = r->k;
    for (r->cert = 0; r->cert < k->count; r->cert++)
        if (!memcmp(k->certs[r->cert].primary.fpr, key->fpr, 20)) {
            pgp_key_clear(key);
            return 0;
        }
    if (grow((void **)&k->certs, k->count, sizeof(cert)) < 0)
        return -1;
    k->certs[k->count].primary = *key;
    k->certs[k->count++].self_at = -1;
    return 0;
}

/* A subkey of the current certificate: new, or one it already has. */
static int subkey_of(reader *r, pgp_key *key)
{
    cert *c = &r->k->certs[r->cert];
    for (r->sub = 0; r->sub < c->nsubs; r->sub++)
        if (!memcmp(c->subs[r->sub].key.fpr, key->fpr, 20)) {
            pgp_key_clear(key);
            return 0;
        }
    if (grow((void **)&c->subs, c->nsubs, sizeof(subkey)) < 0)
        return -1;
    c->subs[c->nsubs].key = *key;
    c->subs[c->nsubs++].bound_at = -1;
    return 0;
}

static int add_key(reader *r, int tag, pgp_bytes body, otr_buf *why)
{
    pgp_key key;
    if (tag == PGP_TAG_PUBLIC_SUBKEY && !r->have_cert) {
        otr_buf_puts(why, "it does not start with a public key");
        return -1;
    }
    if (pgp_key_parse(&key, body, why) < 0)
        return -1;
    if ((tag == PGP_TAG_PUBLIC_KEY ? primary_key(r, &key) : subkey_of(r, &key)) < 0) {
        pgp_key_clear(&key);
        otr_buf_puts(why, "out of memory");
        return -1;
    }
    r->have_cert = 1;
    r->at = tag == PGP_TAG_PUBLIC_KEY ? AT_KEY : AT_SUB;
    return 0;
}

/* The packets of one decoded block: certificates, each a primary key and
 * what follows it. */
static int read_block(otr_pgp_keyring *k, pgp_bytes in, int64_t now, otr_buf *why)
{
    pgp_packet pkt;
    reader r = {.k = k, .at = AT_NONE, .now = now};
    int got;
    while ((got = pgp_packet_next(&in, &pkt, why)) > 0) {
        if (pkt.tag == PGP_TAG_SECRET_KEY || pkt.tag == PGP_TAG_SECRET_SUBKEY) {
            otr_buf_puts(why,
                         "it holds a secret key: give public keys only (gpg --armor --export)");
            return -1;
        }
        if (pkt.tag != PGP_TAG_PUBLIC_KEY && !r.have_cert) {
            otr_buf_puts(why, "it does not start with a public key");
            return -1;
        }
        switch (pkt.tag) {
        case PGP_TAG_PUBLIC_KEY:
        case PGP_TAG_PUBLIC_SUBKEY:
            if (add_key(&r, pkt.tag, pkt.body, why) < 0)
                return -1;
            break;
        case PGP_TAG_USER_ID:
            r.uid = pkt.body;
            r.at = AT_UID;
            break;
        case PGP_TAG_USER_ATTRIBUTE: r.at = AT_OTHER; break;
        case PGP_TAG_SIGNATURE: key_signature(&r, pkt.body); break;
        default: break; /* trust and marker packets, and those of other uses */
        }
    }
    if (got == 0 && !r.have_cert)
        otr_buf_puts(why, "it holds no public key");
    return got < 0 || !r.have_cert ? -1 : 0;
}

static int has_block(const char *text, size_t len, const char *label)
{
    otr_buf bin = OTR_BUF_INIT, why = OTR_BUF_INIT;
    int got = pgp_dearmor(&text, text + len, label, &bin, &why);
    otr_buf_free(&bin);
    otr_buf_free(&why);
    return got != 0;
}

int otr_pgp_keyring_parse(otr_pgp_keyring **out, const char *file, const char *text, size_t len,
                          int64_t now, otr_error *err)
{
    otr_pgp_keyring *k = calloc(1, sizeof(*k));
    otr_buf block = OTR_BUF_INIT, why = OTR_BUF_INIT;
    const char *p = text, *end = text + len;
    int got = 0, n = 0, rc = -1;
    *out = NULL;
    if (!k || !(k->file = strdup(file))) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (len > OTR_PGP_MAX_KEYS_FILE) {
        otr_error_set(err, OTR_ERR_INVALID, "%s is larger than %zu bytes", file,
                      OTR_PGP_MAX_KEYS_FILE);
        goto done;
    }
    while ((got = pgp_dearmor(&p, end, "PUBLIC KEY BLOCK", &block, &why)) > 0) {
        size_t size = block.len;
        unsigned char *bytes = size ? (unsigned char *)otr_buf_detach(&block) : NULL;
        n++;
        if (!bytes || grow((void **)&k->blocks, k->nblocks, sizeof(*k->blocks)) < 0) {
            free(bytes);
            otr_buf_puts(&why, bytes ? "out of memory" : "the block is empty");
            got = -1;
            break;
        }
        k->blocks[k->nblocks++] = bytes;
        if (read_block(k, (pgp_bytes){bytes, size}, now, &why) < 0) {
            got = -1;
            break;
        }
    }
    if (got < 0) {
        otr_error_set(err, OTR_ERR_INVALID, "%s: block %d: %s", file, n ? n : 1,
                      otr_buf_cstr(&why));
    } else if (n == 0 && has_block(text, len, "PRIVATE KEY BLOCK")) {
        otr_error_set(err, OTR_ERR_INVALID,
                      "%s holds a secret key: give public keys only (gpg --armor --export "
                      "FINGERPRINT > %s)",
                      file, file);
    } else if (n == 0) {
        otr_error_set(err, OTR_ERR_INVALID,
                      "%s holds no \"-----BEGIN PGP PUBLIC KEY BLOCK-----\": export the keys "
                      "armored (gpg --armor --export FINGERPRINT > %s)",
                      file, file);
    } else {
        *out = k;
        k = NULL;
        rc = 0;
    }
done:
    otr_buf_free(&block);
    otr_buf_free(&why);
    otr_pgp_keyring_free(k);
    return rc;
}

size_t otr_pgp_keyring_count(const otr_pgp_keyring *k)
{
    return k ? k->count : 0;
}

void otr_pgp_keyring_free(otr_pgp_keyring *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->count; i++) {
        pgp_key_clear(&k->certs[i].primary);
        for (size_t j = 0; j < k->certs[i].nsubs; j++)
            pgp_key_clear(&k->certs[i].subs[j].key);
        free(k->certs[i].subs);
    }
    for (size_t i = 0; i < k->nblocks; i++)
        free(k->blocks[i]);
    free(k->blocks);
    free(k->certs);
    free(k->file);
    free(k);
}

/* ---- checking a signature --------------------------------------------------------- */

static void date_of(char out[32], int64_t t)
{
    otr_time_format_iso8601(out, (time_t)t);
}

/* Is the key that made sig usable for it at now? why says what is not. */
static int usable(const cert *c, const subkey *s, const pgp_sig *sig, int64_t now, otr_buf *why)
{
    char fpr[41], t[32];
    const pgp_key *key = s ? &s->key : &c->primary;
    hex(c->primary.fpr, 20, fpr);
    if (c->self_at < 0)
        otr_buf_printf(why, "the key %s has no valid self-signature (a user ID it certifies)", fpr);
    else if (c->revoked)
        otr_buf_printf(why, "the key %s is revoked", fpr);
    else if (c->expires && c->expires <= now)
        (void)(date_of(t, c->expires), otr_buf_printf(why, "the key %s expired on %s", fpr, t));
    else if (s && s->bound_at < 0)
        otr_buf_printf(why, "the signing subkey of %s has no valid binding signature from it", fpr);
    else if (s && s->revoked)
        otr_buf_printf(why, "the signing subkey of %s is revoked", fpr);
    else if (s && s->expires && s->expires <= now)
        (void)(date_of(t, s->expires),
               otr_buf_printf(why, "the signing subkey of %s expired on %s", fpr, t));
    else if (s ? !(s->flags & PGP_FLAG_SIGN) : c->has_flags && !(c->flags & PGP_FLAG_SIGN))
        otr_buf_printf(why, "the %skey of %s may not sign (its key flags%s)", s ? "sub" : "", fpr,
                       s ? ", or a back-signature, are missing" : "");
    else if (sig->created < key->created)
        otr_buf_printf(why, "the signature is older than the key %s that made it", fpr);
    else if (sig->expires && sig->created + sig->expires <= now)
        (void)(date_of(t, sig->created + sig->expires),
               otr_buf_printf(why, "the signature expired on %s", t));
    else
        return 1;
    return 0;
}

/* What is wrong with the signature itself, before any key: 0 when nothing. */
static int refused(const pgp_sig *sig, otr_buf *why)
{
    int accepted = 0;
    const char *hash = pgp_hash_name(sig->hash_algo, &accepted);
    if (sig->version != 4)
        otr_buf_printf(why, "a v%d signature is refused (only v4 signatures are read%s)",
                       sig->version, sig->version == 3 ? "; v3 is PGP 2's format" : "");
    else if (sig->type != PGP_SIG_BINARY)
        otr_buf_printf(why,
                       "a signature of type 0x%02x, not of a binary document (git makes "
                       "binary signatures)",
                       (unsigned)sig->type);
    else if (!accepted)
        otr_buf_printf(why,
                       "a signature by %s is refused: sign with SHA-256 or stronger (gpg's "
                       "default; personal-digest-preferences SHA512)",
                       hash ? hash : "an unknown hash");
    else if (sig->critical_unknown)
        otr_buf_printf(why,
                       "the signature holds a critical subpacket of type %d that ota-runner "
                       "does not understand, so it is not valid (RFC 4880 5.2.3.1)",
                       sig->critical_unknown);
    else if (sig->created < 0)
        otr_buf_puts(why, "the signature has no creation time");
    else
        return 0;
    return -1;
}

#define BEGIN_SIGNATURE "-----BEGIN PGP SIGNATURE-----"

/* Is text blank up to the end, or up to a line starting with until? */
static int only_blank(const char *text, size_t len, const char *until)
{
    size_t n = until ? strlen(until) : 0;
    for (size_t i = 0; i < len; i++) {
        if (until && len - i >= n && !memcmp(text + i, until, n) && (i == 0 || text[i - 1] == '\n'))
            return 1;
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
            return 0;
    }
    return !until;
}

/* The one signature packet of an armored signature. */
static int read_signature(const char *text, size_t len, otr_buf *bin, pgp_sig *sig, otr_buf *why)
{
    const char *p = text, *end = text + len;
    pgp_packet pkt;
    int got =
        only_blank(text, len, BEGIN_SIGNATURE) ? pgp_dearmor(&p, end, "SIGNATURE", bin, why) : 0;
    if (got == 0)
        otr_buf_puts(why,
                     "not an OpenPGP signature (it does not start with \"" BEGIN_SIGNATURE "\")");
    if (got <= 0)
        return -1;
    if (!only_blank(p, (size_t)(end - p), NULL)) {
        otr_buf_puts(why, "something follows the signature's armor (one signature is read, "
                          "and nothing after it)");
        return -1;
    }
    pgp_bytes in = {(const unsigned char *)bin->ptr, bin->len};
    if (pgp_packet_next(&in, &pkt, why) <= 0 || pkt.tag != PGP_TAG_SIGNATURE) {
        if (!why->len)
            otr_buf_puts(why, "the armor holds no signature packet");
        return -1;
    }
    if (in.len) {
        otr_buf_puts(why, "the armor holds more than one packet (ota-runner reads one signature)");
        return -1;
    }
    return pgp_sig_parse(sig, pkt.body, why) < 0 || refused(sig, why) < 0 ? -1 : 0;
}

int otr_pgp_verify(const otr_pgp_keyring *k, const char *text, size_t len, const void *message,
                   size_t message_len, int64_t now, otr_pgp_signer *out, otr_buf *why)
{
    otr_buf bin = OTR_BUF_INIT, fail = OTR_BUF_INIT;
    pgp_sig sig;
    pgp_bytes msg = {message, message_len};
    int rc = -1, named = 0;
    memset(out, 0, sizeof(*out));
    if (read_signature(text, len, &bin, &sig, why) < 0)
        goto done;
    for (size_t i = 0; i < k->count && rc < 0; i++) {
        const cert *c = &k->certs[i];
        for (size_t j = 0; j <= c->nsubs && rc < 0; j++) {
            const subkey *s = j ? &c->subs[j - 1] : NULL;
            const pgp_key *key = s ? &s->key : &c->primary;
            if (!pgp_sig_names(&sig, key))
                continue;
            named = 1;
            otr_buf_clear(&fail);
            if (pgp_sig_check(&sig, key, &msg, 1, &fail) < 0 || !usable(c, s, &sig, now, &fail))
                continue;
            memcpy(out->primary, c->primary.fpr, 20);
            hex(c->primary.fpr, 20, out->primary_hex);
            hex(key->fpr, 20, out->key_hex);
            out->family = key->family;
            out->created = sig.created;
            rc = 0;
        }
    }
    if (rc == 0) {
        otr_buf_clear(why);
    } else if (named) {
        otr_buf_puts(why, otr_buf_cstr(&fail));
    } else {
        char id[41] = "";
        if (sig.has_issuer_fpr)
            hex(sig.issuer_fpr, 20, id);
        else if (sig.has_issuer_id)
            hex(sig.issuer_id, 8, id);
        otr_buf_printf(why,
                       "signed by the OpenPGP key %s, which is not in %s (add it: gpg "
                       "--armor --export %s >> %s)",
                       *id ? id : "(unnamed)", k->file, *id ? id : "KEY", k->file);
    }
done:
    otr_buf_free(&bin);
    otr_buf_free(&fail);
    return rc;
}
