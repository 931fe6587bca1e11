/*
 * S3 objects for the state backend: get, conditional put and delete, copy,
 * list. One bucket per otr_s3, on its own AWS client (signing name "s3"),
 * with the same credentials chain as the service. Calls are synchronous.
 *
 * The endpoint: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (path-style:
 * ENDPOINT/BUCKET/KEY), else AWS's (virtual-hosted:
 * https://BUCKET.s3.REGION.amazonaws.com/KEY; path-style with
 * ?path_style=true or a bucket name with a dot).
 */
#ifndef OTR_AWS_S3_H
#define OTR_AWS_S3_H

#include "aws/credentials.h"
#include "util/buf.h"
#include "util/error.h"

#include <stddef.h>

/* An ETag as S3 sends it, quotes included ("\"<32 hex>\"", or longer for
 * a multipart upload). */
#define OTR_S3_ETAG_MAX 128
/* Keys one ListObjectsV2 page holds at most (the API's own limit). */
#define OTR_S3_LIST_PAGE 1000
/* Keys one DeleteObjects request names at most (the API's own limit). */
#define OTR_S3_DELETE_BATCH 1000

/* s3://BUCKET/KEY?region=R&path_style=true&sse=aws:kms&kms_key_id=K */
typedef struct otr_s3_url {
    char *bucket;
    char *key;
    char *region;     /* NULL: --region's chain */
    int path_style;   /* forced by ?path_style=true */
    char *sse;        /* x-amz-server-side-encryption, or NULL */
    char *kms_key_id; /* x-amz-server-side-encryption-aws-kms-key-id, or NULL */
} otr_s3_url;

/* 1 when text is an s3:// URL. */
int otr_s3_is_url(const char *text);
/* Parses an s3:// URL; on failure err says which part is wrong. */
OTR_MUST_USE int otr_s3_url_parse(otr_s3_url *u, const char *text, otr_error *err);
void otr_s3_url_clear(otr_s3_url *u);

typedef struct otr_s3_options {
    const char *region;        /* --region, or NULL */
    const char *profile;       /* --profile, or NULL */
    otr_creds_provider *creds; /* the run's (borrowed), or NULL for a chain of its own */
    long connect_timeout_ms;   /* 0: the client's (10 s) */
    long request_timeout_ms;   /* 0: S3_REQUEST_TIMEOUT_MS (30 s) */
    int max_attempts;          /* 0: 3 */
    int adaptive;              /* retry mode adaptive */
} otr_s3_options;
#define OTR_S3_OPTIONS_INIT                                                                        \
    {                                                                                              \
        .region = NULL, .profile = NULL, .creds = NULL, .connect_timeout_ms = 0,                   \
        .request_timeout_ms = 0, .max_attempts = 0, .adaptive = 0                                  \
    }

typedef struct otr_s3 otr_s3;

/* A bucket to talk to; u is copied. */
OTR_MUST_USE int otr_s3_open(otr_s3 **out, const otr_s3_url *u, const otr_s3_options *o,
                             otr_error *err);
void otr_s3_close(otr_s3 *s);
/* "s3://bucket/key" of key, for messages. */
void otr_s3_name(const otr_s3 *s, const char *key, otr_buf *out);
/* The URL's own key (the state's). */
const char *otr_s3_key(const otr_s3 *s);

/* What a conditional call found: done, refused by its condition (412, or
 * 409 ConditionalRequestConflict), or the object absent. */
typedef enum otr_s3_result {
    OTR_S3_OK = 0,
    OTR_S3_PRECONDITION = 1,
    OTR_S3_NOT_FOUND = 2,
} otr_s3_result;

/* An object's body, ETag and the server's Last-Modified and Date (as
 * seconds since the epoch; 0 when absent): OK or NOT_FOUND, -1 on error. */
typedef struct otr_s3_object {
    otr_buf body;
    char etag[OTR_S3_ETAG_MAX];
    long long last_modified;
    long long date;
} otr_s3_object;
void otr_s3_object_clear(otr_s3_object *obj);
OTR_MUST_USE int otr_s3_get(otr_s3 *s, const char *key, size_t max, otr_s3_object *obj,
                            otr_error *err);

/* Puts body under key with a SHA-256 checksum the store verifies, only if
 * the object's ETag is if_match (non-NULL), or only if there is none
 * (if_none_match); etag (may be NULL) receives the new ETag. OK or
 * PRECONDITION; -1 on error. */
OTR_MUST_USE int otr_s3_put(otr_s3 *s, const char *key, const char *body, size_t len,
                            const char *if_match, int if_none_match, char etag[OTR_S3_ETAG_MAX],
                            otr_error *err);
/* Creates the n objects keys[i] = bodies[i] (lens[i] bytes) at once, each
 * only where none is (If-None-Match: *); -1 with err when any was not made
 * (one already there is an error too). */
OTR_MUST_USE int otr_s3_create_many(otr_s3 *s, char *const *keys, const char *const *bodies,
                                    const size_t *lens, size_t n, otr_error *err);
/* Deletes key, only if its ETag is if_match (non-NULL). OK (also when it was
 * not there) or PRECONDITION; -1 on error. */
OTR_MUST_USE int otr_s3_delete(otr_s3 *s, const char *key, const char *if_match, otr_error *err);
/* Deletes the n keys, OTR_S3_DELETE_BATCH to a request (DeleteObjects);
 * -1 with err naming the first key S3 could not delete. */
OTR_MUST_USE int otr_s3_delete_many(otr_s3 *s, char *const *keys, size_t n, otr_error *err);
/* Copies from to to, only if from's ETag is if_match (non-NULL). OK,
 * PRECONDITION or NOT_FOUND; -1 on error. */
OTR_MUST_USE int otr_s3_copy(otr_s3 *s, const char *from, const char *to, const char *if_match,
                             otr_error *err);
/* The keys that start with prefix, in byte order; free each and the array. */
OTR_MUST_USE int otr_s3_list(otr_s3 *s, const char *prefix, char ***keys, size_t *n,
                             otr_error *err);

/* One ListObjectsV2 answer: appends its keys to *keys (*n of them; it may
 * be NULL: it grows), sets *next to the continuation token (NULL: the last
 * page). For fuzzing; -1 on a malformed answer or without memory. */
OTR_MUST_USE int otr_s3_parse_list(const char *body, size_t len, char ***keys, size_t *n,
                                   char **next);

#endif
