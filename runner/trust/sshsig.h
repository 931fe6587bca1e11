/*
 * SSH signatures (openssh's PROTOCOL.sshsig), as `git commit -S` with
 * gpg.format=ssh makes them, verified with OpenSSL:
 *
 *   -----BEGIN SSH SIGNATURE-----        armor around base64 of the blob:
 *   "SSHSIG" uint32 version(1) string publickey string namespace
 *   string reserved string hash_algorithm string signature
 *
 * The signature covers "SSHSIG" string namespace string reserved
 * string hash_algorithm string H(message). Keys: ssh-ed25519,
 * ecdsa-sha2-nistp256/384/521, ssh-rsa signed with rsa-sha2-256 or
 * rsa-sha2-512 (ssh-rsa's SHA-1 signatures are refused); hashes sha256 and
 * sha512. A parsed signature points into its own copy of the blob.
 */
#ifndef OTR_TRUST_SSHSIG_H
#define OTR_TRUST_SSHSIG_H

#include "util/buf.h"
#include "util/error.h"

#include <stddef.h>

/* The largest armored signature read (an RSA 16384-bit one is ~3 KiB). */
#define OTR_SSHSIG_MAX_ARMOR ((size_t)64 * 1024)

/* A length-prefixed string of the SSH wire format, inside a blob. */
typedef struct otr_ssh_str {
    const unsigned char *p;
    size_t len;
} otr_ssh_str;

typedef struct otr_sshsig {
    unsigned char *blob; /* owned */
    size_t blob_len;
    otr_ssh_str key;      /* the public key blob (string type, ...) */
    otr_ssh_str key_type; /* its first string: "ssh-ed25519" */
    otr_ssh_str ns;       /* namespace: "git" */
    otr_ssh_str hash_alg; /* "sha256" or "sha512" */
    otr_ssh_str sig;      /* string sigtype, string sigblob */
    otr_ssh_str sig_type; /* "ssh-ed25519", "rsa-sha2-512", ... */
    otr_ssh_str sig_blob;
} otr_sshsig;

/* Parses an armored signature (text of len bytes). On failure why says
 * what is wrong ("not an SSH signature: it is OpenPGP; sign with SSH: git
 * config gpg.format ssh", "truncated", ...). */
OTR_MUST_USE int otr_sshsig_parse(otr_sshsig *out, const char *text, size_t len, otr_buf *why);

/* Verifies that sig signs message (of len bytes) in namespace ns. 0 when
 * it does; -1 with why otherwise. */
OTR_MUST_USE int otr_sshsig_verify(const otr_sshsig *sig, const char *ns, const void *message,
                                   size_t len, otr_buf *why);

void otr_sshsig_clear(otr_sshsig *sig);

/* "SHA256:<base64 without padding>" of a public key blob, as ssh-keygen -l
 * prints it. */
void otr_ssh_fingerprint(const unsigned char *key, size_t len, char out[64]);

/* "ED25519", "ECDSA", "RSA" (ssh-keygen -l's names), or "?". */
const char *otr_ssh_key_family(const otr_ssh_str *key_type);

/* Reads a wire-format string at *p (len bytes left); advances. 0 or -1. */
OTR_MUST_USE int otr_ssh_read_str(const unsigned char **p, size_t *left, otr_ssh_str *out);

/* Decodes standard base64 (whitespace ignored) into a new buffer; NULL when
 * it is not base64. free() it. */
unsigned char *otr_base64_decode(const char *text, size_t len, size_t *out_len);

#endif
