/*
 * A signed git object as git reads it: a commit's signature is its gpgsig
 * header (in the header section only: a "gpgsig" in the message is text),
 * and what it covers is the commit without its gpgsig and gpgsig-sha256
 * headers; a tag's signature is the last block of its message that starts
 * with a signature's BEGIN line, and it covers what comes before. The
 * signer is the committer (tagger) whose e-mail the allowed signers must
 * name, at the time the object records; that line is read as git reads it,
 * and one git fsck would flag is refused.
 */
#ifndef OTR_TRUST_SIGNED_H
#define OTR_TRUST_SIGNED_H

#include "util/buf.h"
#include "util/error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct otr_signed {
    otr_buf payload;   /* what the signature covers */
    otr_buf signature; /* the armored signature; empty: unsigned */
    char *email;       /* the committer's or tagger's, NULL when the object has none */
    const char *bad;   /* why its committer (tagger) line is not one git fsck accepts, or NULL */
    int64_t when;      /* its timestamp */
} otr_signed;

/* Splits a raw commit object (its bytes after git's "commit N\0" header). */
OTR_MUST_USE int otr_signed_commit(otr_signed *out, const char *raw, size_t len);
/* Splits a raw annotated tag object. */
OTR_MUST_USE int otr_signed_tag(otr_signed *out, const char *raw, size_t len);

void otr_signed_clear(otr_signed *s);

#endif
