/*
 * AWS Signature Version 4, header form, step by step as the AWS documentation
 * names the steps: (1) canonical request, (2) string to sign, (3) signing key
 * and signature, (4) the Authorization header. It signs exactly as botocore's
 * SigV4Auth does for a non-S3 service: the path normalized and URI-encoded
 * (so an already encoded path is encoded again), the query sorted by key then
 * value, header values trimmed with inner whitespace runs folded, hop-by-hop
 * headers and User-Agent left unsigned, the payload hashed. For S3
 * (service "s3") it signs as botocore's S3SigV4Auth: the path as sent, and
 * the payload's hash sent and signed as X-Amz-Content-SHA256.
 *
 * Nothing here allocates except into the otr_buf the caller passes.
 */
#ifndef OTR_AWS_SIGV4_H
#define OTR_AWS_SIGV4_H

#include "aws/headers.h"
#include "util/buf.h"

#include <stddef.h>
#include <time.h>

typedef struct otr_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL for long-term keys */
    time_t expiration;   /* 0: does not expire */
    char *source;        /* where they came from: "environment", "profile dev", ... */
} otr_credentials;

void otr_credentials_clear(otr_credentials *c);

typedef struct otr_sigv4_request {
    const char *method;
    const char *path;           /* the path as sent (already percent-encoded) */
    const char *query;          /* without '?', may be NULL */
    const otr_headers *headers; /* as sent, including Host and X-Amz-Date */
    const char *payload_hash;   /* 64 hex digits */
    const char *amz_date;       /* YYYYMMDDTHHMMSSZ */
    const char *region;
    const char *service;
    int normalize_path; /* an otr_sigv4_uri: OTR_SIGV4_URI_NORMALIZED for every service but S3 */
} otr_sigv4_request;

/* How the canonical URI is made from the path. */
typedef enum otr_sigv4_uri {
    OTR_SIGV4_URI_ENCODED = 0,    /* URI-encoded as it is (the test suite's "unnormalized") */
    OTR_SIGV4_URI_NORMALIZED = 1, /* dot and empty segments removed, then URI-encoded */
    OTR_SIGV4_URI_AS_SENT = 2     /* S3: the path as sent, already encoded, not again */
} otr_sigv4_uri;

/* Step 1. signed_headers receives "host;x-amz-date;..." */
int otr_sigv4_canonical_request(otr_buf *out, otr_buf *signed_headers, const otr_sigv4_request *r);
/* Step 2. */
int otr_sigv4_string_to_sign(otr_buf *out, const otr_sigv4_request *r,
                             const char *canonical_request);
/* Step 3: hex signature of string_to_sign; out holds 65 bytes. */
int otr_sigv4_signature(char out[65], const char *secret, const otr_sigv4_request *r,
                        const char *string_to_sign);

/* Hex SHA-256 of data; out holds 65 bytes. */
void otr_sha256_hex(char out[65], const void *data, size_t len);

/* YYYYMMDDTHHMMSSZ of t; out holds 17 bytes. */
void otr_sigv4_amz_date(char out[17], time_t t);

/*
 * Signs a request in place: sets X-Amz-Date (and X-Amz-Security-Token when
 * the credentials have one), then Authorization. host must already be among
 * the headers.
 */
int otr_sigv4_sign(otr_headers *headers, const char *method, const char *path, const char *query,
                   const void *body, size_t body_len, const otr_credentials *creds,
                   const char *region, const char *service, time_t now);

#endif
