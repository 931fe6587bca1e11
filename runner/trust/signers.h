/*
 * An allowed-signers file, in the format of ssh-keygen(1) ALLOWED SIGNERS
 * (git's gpg.ssh.allowedSignersFile): one key per line,
 *
 *   PRINCIPALS [OPTIONS] KEYTYPE BASE64-KEY [COMMENT]
 *
 * PRINCIPALS a comma-separated pattern list (`*`, `?`, `!` negation;
 * quoted when it holds spaces); OPTIONS namespaces="LIST",
 * valid-after="TIME", valid-before="TIME" (YYYYMMDD[HHMM[SS]][Z]; local time
 * without Z). cert-authority (a CA's key, for certificates) is refused:
 * ota-runner checks plain keys only. Blank lines and '#' lines are ignored.
 * otr_signers owns its entries; free it with otr_signers_free.
 */
#ifndef OTR_TRUST_SIGNERS_H
#define OTR_TRUST_SIGNERS_H

#include "util/buf.h"
#include "util/error.h"

#include <stddef.h>
#include <stdint.h>

/* The largest allowed-signers file read. */
#define OTR_SIGNERS_MAX_FILE ((size_t)4 * 1024 * 1024)
#define OTR_SIGNERS_NO_TIME INT64_MIN

/* The key type of an OpenPGP line; its key blob is the SSH string
 * "openpgp" followed by the 20 bytes of the fingerprint. */
#define OTR_SIGNERS_OPENPGP "openpgp"
#define OTR_SIGNERS_OPENPGP_LEN (4 + sizeof(OTR_SIGNERS_OPENPGP) - 1 + 20)

typedef struct otr_signer {
    char *principals;                  /* the pattern list as written (unquoted) */
    char *namespaces;                  /* NULL: any */
    int64_t valid_after, valid_before; /* seconds since 1970; OTR_SIGNERS_NO_TIME: none */
    unsigned char *key;                /* the public key blob */
    size_t key_len;
    unsigned line;
} otr_signer;

typedef struct otr_signers {
    otr_signer *items;
    size_t count;
    char *file; /* for messages */
} otr_signers;

/* Parses the file's text. On failure err says FILE:LINE: what is wrong. */
OTR_MUST_USE int otr_signers_parse(otr_signers *out, const char *file, const char *text, size_t len,
                                   otr_error *err);

/* The entry that lets key (a public key blob) sign as principal in namespace
 * ns at time when, or NULL with why ("the key is not in FILE", "FILE:3 lists
 * the key for bob@example.com, not alice@example.com", "... expired on ...").
 */
const otr_signer *otr_signers_match(const otr_signers *s, const unsigned char *key, size_t key_len,
                                    const char *principal, const char *ns, int64_t when,
                                    otr_buf *why);

/* The key blob an OpenPGP line's fingerprint is matched as. */
void otr_signers_openpgp_key(const unsigned char fpr[20],
                             unsigned char out[OTR_SIGNERS_OPENPGP_LEN]);
/* Does the file list an OpenPGP key? */
int otr_signers_has_openpgp(const otr_signers *s);

/* Does name match the ssh pattern list (comma-separated, '*', '?', '!')? */
int otr_ssh_match_list(const char *name, const char *list);

void otr_signers_free(otr_signers *s);

#endif
