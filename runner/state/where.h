/*
 * Where a state is kept (a path, or an S3 URL) and what its store needs to
 * reach it: what the state's model (state.h) and its stores (store.h) both
 * name, below them both.
 */
#ifndef OTR_STATE_WHERE_H
#define OTR_STATE_WHERE_H

#include <stddef.h>

struct otr_creds_provider;

/* Where a state is kept and how to reach it: a file path, or an S3 URL
 * (s3://BUCKET/KEY?region=...; see store_s3.c), with what its lock needs. */
typedef struct otr_state_where {
    const char *location;
    const char *region;   /* S3: --region, when the URL has no ?region= */
    const char *profile;  /* S3: --profile */
    long lock_timeout_ms; /* wait this long for a held lock; 0: fail at once */
    long lock_stale_s;    /* S3: a lock not renewed for this long is stale; 0: 15 min */
    /* S3: the run's own credentials (borrowed: resolved once for the state and
     * the service), NULL for a chain of its own; and the run's retries and
     * timeouts (0: the defaults) */
    struct otr_creds_provider *creds;
    int max_attempts;
    int adaptive;
    long connect_timeout_ms;
    long request_timeout_ms;
} otr_state_where;
#define OTR_STATE_WHERE_INIT                                                                       \
    {                                                                                              \
        .location = NULL, .region = NULL, .profile = NULL, .lock_timeout_ms = 0,                   \
        .lock_stale_s = 0, .creds = NULL, .max_attempts = 0, .adaptive = 0,                        \
        .connect_timeout_ms = 0, .request_timeout_ms = 0                                           \
    }
/* A lock not renewed for this long is stale (--lock-stale-after). */
#define OTR_STATE_LOCK_STALE_S (15L * 60)

/* The largest state file or journal read. */
#define OTR_STATE_MAX_BYTES ((size_t)1 << 30)

#endif
