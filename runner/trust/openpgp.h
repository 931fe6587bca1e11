/*
 * OpenPGP public keys and the signatures they make, checked in-process as
 * `git verify-commit` with gpg would check them, with OpenSSL doing the
 * arithmetic (the packets: pgp_packet.h).
 *
 * A keyring is read from armored public-key blocks ("gpg --armor --export",
 * several in one file): each certificate's primary key counts once one of
 * its self-signatures (on a user ID, or a direct-key signature) is valid;
 * its newest self-signature gives its expiry and key flags; a subkey signs
 * only with a valid binding signature that gives it the signing flag and
 * carries the subkey's own back-signature; revocation signatures by the
 * primary key revoke it or a subkey. A signature is accepted when it is a
 * v4 binary signature by SHA-256 or stronger, made by a usable key after the
 * key was made, with no critical hashed subpacket not understood, and
 * neither it nor its keys expired or revoked at now. The keyring owns its
 * keys: free it with otr_pgp_keyring_free.
 */
#ifndef OTR_TRUST_OPENPGP_H
#define OTR_TRUST_OPENPGP_H

#include "util/buf.h"
#include "util/error.h"

#include <stddef.h>
#include <stdint.h>

/* The largest keys file read. */
#define OTR_PGP_MAX_KEYS_FILE ((size_t)16 * 1024 * 1024)

typedef struct otr_pgp_keyring otr_pgp_keyring;

/* Reads the armored public-key blocks of text (self-signatures judged at
 * now). On failure err says FILE: block N: what is wrong. */
OTR_MUST_USE int otr_pgp_keyring_parse(otr_pgp_keyring **out, const char *file, const char *text,
                                       size_t len, int64_t now, otr_error *err);
/* How many certificates (primary keys) it holds. */
size_t otr_pgp_keyring_count(const otr_pgp_keyring *k);
void otr_pgp_keyring_free(otr_pgp_keyring *k);

typedef struct otr_pgp_signer {
    unsigned char primary[20]; /* the certificate's fingerprint, as allowed signers name it */
    char primary_hex[41];
    char key_hex[41];   /* the key that signed: the primary or one of its subkeys */
    const char *family; /* "RSA", "ECDSA", "ED25519" */
    int64_t created;    /* when the signature says it was made */
} otr_pgp_signer;

/* Checks that the armored signature (text of len bytes) signs message by a
 * key of k usable at now. 0 with out filled; -1 with why. */
OTR_MUST_USE int otr_pgp_verify(const otr_pgp_keyring *k, const char *text, size_t len,
                                const void *message, size_t message_len, int64_t now,
                                otr_pgp_signer *out, otr_buf *why);

#endif
