/*
 * The AWS SDKs' "standard" retry mode, as pure functions over a small state,
 * with botocore's numbers: which failures are retried, how long to wait
 * (exponential backoff with full jitter: before retry n, a uniform draw in
 * [0, min(2^(n-1), 20)] seconds), the wait a service asks for
 * (x-amz-retry-after in ms, Retry-After in seconds: taken, but at most 5 s
 * past the backoff and never below it), and the retry quota (500; a retry
 * takes 5, one after a timeout 10; a success gives back what its retries
 * took, or 1) that stops a client from hammering a failing service. Also the
 * token bucket behind --max-rps. No I/O and no clock: callers pass the time
 * and the random draw.
 */
#ifndef OTR_AWS_RETRY_H
#define OTR_AWS_RETRY_H

#include <stdint.h>

#define OTR_RETRY_BASE_MS 1000
#define OTR_RETRY_CAP_MS 20000
#define OTR_RETRY_AFTER_EXTRA_MS 5000
#define OTR_RETRY_QUOTA_INITIAL 500
#define OTR_RETRY_COST 5
#define OTR_RETRY_TIMEOUT_COST 10
#define OTR_RETRY_NO_RETRY_INCREMENT 1

typedef enum otr_failure {
    OTR_FAIL_NONE,      /* success */
    OTR_FAIL_THROTTLE,  /* 429 or a throttling error type */
    OTR_FAIL_TRANSIENT, /* 5xx, a transient error type, a connection reset or refused */
    OTR_FAIL_TIMEOUT,   /* the request timed out */
    OTR_FAIL_PERMANENT, /* everything else: other 4xx, a body too large, a bad URL */
} otr_failure;

/* Classifies an answer (status 0 when there was none, with transport_error
 * one of the OTR_TRANSPORT_* below) and its error type (may be NULL). */
typedef enum otr_transport {
    OTR_TRANSPORT_OK,
    OTR_TRANSPORT_CONNECT, /* could not connect, reset, empty reply */
    OTR_TRANSPORT_TIMEOUT,
    OTR_TRANSPORT_FATAL, /* TLS verification, too large, bad URL: not worth retrying */
} otr_transport;

otr_failure otr_retry_classify(long status, otr_transport transport, const char *error_type);

/* Full jitter: a random wait in [0, min(cap, base * 2^(attempt-1))]; attempt
 * counts from 1 (the wait before the second try). draw is uniform in [0, 1). */
int64_t otr_retry_backoff_ms(int attempt, double draw);

/* The wait before a retry: the backoff, or what the service asked for
 * (retry_after_ms; < 0: nothing) when that is longer, up to
 * OTR_RETRY_AFTER_EXTRA_MS past the backoff. */
int64_t otr_retry_wait_ms(int attempt, double draw, int64_t retry_after_ms);

/* What an answer's headers ask a client to wait, in ms: x-amz-retry-after
 * (ms), else Retry-After (delta seconds); -1 when neither is a number. */
int64_t otr_retry_after_ms(const char *x_amz_retry_after, const char *retry_after);

typedef struct otr_retry_quota {
    int available;
} otr_retry_quota;

void otr_retry_quota_init(otr_retry_quota *q);
/* Takes the cost of retrying this failure; returns its cost, or 0 when the
 * quota cannot pay (then do not retry). */
int otr_retry_quota_acquire(otr_retry_quota *q, otr_failure f);
/* After a success: gives back what the call's retries took (cost > 0), or a
 * little credit for a success without retry (cost == 0). */
void otr_retry_quota_release(otr_retry_quota *q, int cost);

/* A token bucket: rate tokens per second, at most burst of them. rate <= 0
 * means no limit. */
typedef struct otr_token_bucket {
    double rate;
    double burst;
    double tokens;
    int64_t last_ms;
} otr_token_bucket;

void otr_token_bucket_init(otr_token_bucket *b, double rate, int64_t now_ms);
/* Takes one token and returns 0, or returns how many ms until one is there. */
int64_t otr_token_bucket_take(otr_token_bucket *b, int64_t now_ms);

/*
 * The SDKs' "adaptive" retry mode: a client-side rate limiter that measures
 * the rate it achieves, cuts its sending rate to BETA of it on a throttle,
 * and grows it back along a cubic curve (CUBIC congestion control) that
 * returns to the rate of the last throttle after a time window. Off until
 * the first throttle. Times in ms; rates in requests per second.
 */
#define OTR_ADAPTIVE_BETA 0.7
#define OTR_ADAPTIVE_SCALE 0.4
#define OTR_ADAPTIVE_SMOOTH 0.8
#define OTR_ADAPTIVE_MIN_FILL_RATE 0.5
#define OTR_ADAPTIVE_MIN_CAPACITY 1.0
/* Seconds after the start before the smoothed rate is trusted (two
 * half-second buckets: the first is cut short by the clock). */
#define OTR_ADAPTIVE_WARMUP 1.0

typedef struct otr_rate_limiter {
    int enabled;             /* after the first throttle */
    double fill_rate;        /* tokens per second */
    double max_capacity;     /* tokens */
    double capacity;         /* tokens now */
    double last_refill;      /* seconds */
    double measured_rate;    /* requests per second, smoothed */
    double last_rate_bucket; /* seconds, in half-second steps */
    long request_count;
    double started;       /* seconds */
    long answers;         /* since started */
    double last_max_rate; /* the rate at the last throttle */
    double last_throttle; /* seconds */
    double time_window;   /* seconds back to last_max_rate */
} otr_rate_limiter;

void otr_rate_limiter_init(otr_rate_limiter *r, int64_t now_ms);
/* Takes a token for an attempt: 0, or the ms to wait for one (nothing
 * taken). Free while the limiter is off. */
int64_t otr_rate_limiter_acquire(otr_rate_limiter *r, int64_t now_ms);
/* After each answer: throttled or not, to an attempt started at sent_ms. A
 * throttle of an attempt sent before the last cut is part of the same
 * congestion event and cuts no further (the SDKs cut once per throttled
 * answer, so a burst of in-flight answers collapses the rate). */
void otr_rate_limiter_update(otr_rate_limiter *r, int throttled, int64_t sent_ms, int64_t now_ms);

/* The retry modes the AWS SDKs name (a flag, AWS_RETRY_MODE, a profile's
 * retry_mode). ota-runner has standard and adaptive; "legacy" (the AWS CLI's
 * old default, which a shared profile may name) runs as standard, and
 * *note says so; any other name is -1 with *note saying what to use. */
typedef enum otr_retry_mode { OTR_RETRY_STANDARD, OTR_RETRY_ADAPTIVE } otr_retry_mode;
int otr_retry_mode_parse(const char *name, otr_retry_mode *mode, const char **note);

#endif
