/*
 * The canonical request body and the ClientToken (docs/DESIGN.md section 5).
 *
 * canonical: object keys sorted bytewise at every level, no insignificant
 * whitespace, minimal string escaping, numbers as RFC 8785 (the JSON
 * Canonicalization Scheme) writes them: ECMAScript's shortest round trip, so
 * 10, 10.0 and 1e1 are all "10", and integers are plain decimal.
 * ClientToken = base64url_nopad(SHA-256("ota-runner/v1\0" name "\0" revision
 *               "\0" canonical)), 43 characters.
 */
#ifndef OTR_MANIFEST_TOKEN_H
#define OTR_MANIFEST_TOKEN_H

#include "util/buf.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* Sorts every object of v (recursively) by key, in place. */
/* -1 without memory: then v may be left in any order, and must not be
 * written where its order matters (a token, a state). */
OTR_MUST_USE int otr_canonical_sort(cJSON *v);

/* Canonical JSON of v (sorting it first); free() the result. NULL without
 * memory, or for a number that is not finite. */
char *otr_canonical_json(cJSON *v);

/* Appends x as RFC 8785 writes a number; -1 when x is not finite. */
int otr_canonical_number(otr_buf *b, double x);

/* A ClientToken's size: 43 base64url characters of a SHA-256 and a NUL. */
#define OTR_TOKEN_SIZE 44

/* out must hold OTR_TOKEN_SIZE bytes. */
int otr_client_token(char out[OTR_TOKEN_SIZE], const char *name, long revision,
                     const char *canonical);

/* The token a create sends at generation g of a manifest's token (docs/DESIGN.md
 * section 5): g 0 is the token itself; g > 0, after the resources that the
 * earlier generations made were deleted (a token the service has answered
 * is never sent for a new resource), base64url_nopad(SHA-256(
 * "ota-runner/v1/generation\0" token "\0" g)). */
int otr_token_generation(char out[OTR_TOKEN_SIZE], const char *token, unsigned generation);

/* "sha256:<hex>" of canonical; out must hold 72 bytes. */
int otr_spec_digest(char out[72], const char *canonical);

/* base64url without padding of len bytes; out must hold 4*ceil(len/3)+1. */
void otr_base64url(char *out, const unsigned char *in, size_t len);

#endif
