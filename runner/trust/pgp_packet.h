/*
 * OpenPGP's wire format (RFC 4880; the v4 subset of RFC 9580), as far as
 * checking a signature needs it: the ASCII armor, packets, v4 public keys
 * (RSA, ECDSA over NIST P-256/384/521, EdDSA over Ed25519 in the legacy and
 * the RFC 9580 encodings), v4 signatures and their subpackets, and the
 * check of one signature by one key with OpenSSL. Parsed values point into
 * the bytes they were read from, which must outlive them; a pgp_key owns
 * its OpenSSL key (pgp_key_clear).
 */
#ifndef OTR_TRUST_PGP_PACKET_H
#define OTR_TRUST_PGP_PACKET_H

#include "util/buf.h"
#include "util/error.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define PGP_TAG_SIGNATURE 2
#define PGP_TAG_SECRET_KEY 5
#define PGP_TAG_PUBLIC_KEY 6
#define PGP_TAG_SECRET_SUBKEY 7
#define PGP_TAG_MARKER 10
#define PGP_TAG_TRUST 12
#define PGP_TAG_USER_ID 13
#define PGP_TAG_PUBLIC_SUBKEY 14
#define PGP_TAG_USER_ATTRIBUTE 17

#define PGP_SIG_BINARY 0x00
#define PGP_SIG_TEXT 0x01
#define PGP_SIG_SUBKEY_BINDING 0x18
#define PGP_SIG_PRIMARY_BINDING 0x19
#define PGP_SIG_DIRECT_KEY 0x1F
#define PGP_SIG_KEY_REVOCATION 0x20
#define PGP_SIG_SUBKEY_REVOCATION 0x28

#define PGP_FLAG_SIGN 0x02

typedef struct pgp_bytes {
    const unsigned char *p;
    size_t len;
} pgp_bytes;

typedef struct pgp_packet {
    int tag;
    pgp_bytes body;
} pgp_packet;

/* The next packet of in (advanced past it): 1, 0 at the end, -1 with why. */
OTR_MUST_USE int pgp_packet_next(pgp_bytes *in, pgp_packet *out, otr_buf *why);

/* The next armored block "-----BEGIN PGP <label>-----" at or after *text
 * (before end), decoded into out (emptied first), its checksum checked when
 * it has one; *text moves past its END line. 1, 0 when there is none, -1
 * with why. */
OTR_MUST_USE int pgp_dearmor(const char **text, const char *end, const char *label, otr_buf *out,
                             otr_buf *why);

typedef struct pgp_key {
    int algo;
    int64_t created;
    EVP_PKEY *pkey;     /* NULL: an algorithm that does not sign, or one not supported */
    const char *family; /* "RSA", "ECDSA", "ED25519", or the algorithm's name */
    unsigned char fpr[20];
    pgp_bytes body; /* the packet's body, hashed by the signatures over the key */
} pgp_key;

/* A v4 public (sub)key packet's body. */
OTR_MUST_USE int pgp_key_parse(pgp_key *out, pgp_bytes body, otr_buf *why);
void pgp_key_clear(pgp_key *k);
/* Does the key have the 8-byte key ID (its fingerprint's last 8 bytes)? */
int pgp_key_has_id(const pgp_key *k, const unsigned char id[8]);

typedef struct pgp_sig {
    int version, type, pk_algo, hash_algo;
    pgp_bytes hashed; /* from the version to the end of the hashed subpackets */
    unsigned char left16[2];
    pgp_bytes material; /* the algorithm-specific signature */
    int64_t created;    /* -1: no creation time */
    int64_t expires;    /* seconds after created; 0: never */
    int has_key_expires;
    int64_t key_expires; /* seconds after the key's creation; 0: never */
    int has_flags;
    unsigned flags;
    int has_issuer_fpr, has_issuer_id;
    unsigned char issuer_fpr[20], issuer_id[8];
    pgp_bytes embedded;   /* an embedded signature's packet body */
    int critical_unknown; /* the type of a critical hashed subpacket not understood, or 0 */
} pgp_sig;

/* A signature packet's body. A v3 (or later than v4) signature is parsed
 * only as far as its version: the caller refuses it. */
OTR_MUST_USE int pgp_sig_parse(pgp_sig *out, pgp_bytes body, otr_buf *why);

/* The hash algorithm's name ("SHA256"), and whether it is accepted (SHA-1,
 * MD5 and RIPEMD-160 are not). */
const char *pgp_hash_name(int algo, int *accepted);

/* Might key have made sig (by its issuer fingerprint or key ID; a
 * signature naming neither might be anyone's)? */
int pgp_sig_names(const pgp_sig *sig, const pgp_key *key);

/* Checks that key made sig over the n pieces hashed in order (a message;
 * or the key and user ID or subkey a certification covers). 0 or -1 with why. */
OTR_MUST_USE int pgp_sig_check(const pgp_sig *sig, const pgp_key *key, const pgp_bytes *pieces,
                               size_t n, otr_buf *why);

/* The pieces a signature over a key (and a user ID or subkey) hashes: key
 * is hashed as 0x99, a two-byte length and its body; uid as 0xB4, a
 * four-byte length and its text. Fills pieces and their headers in hdr;
 * returns how many pieces. */
size_t pgp_key_pieces(const pgp_key *key, const pgp_key *sub, const pgp_bytes *uid,
                      unsigned char hdr[3][5], pgp_bytes pieces[4]);

#endif
