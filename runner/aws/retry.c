/* Retries: classification, backoff, quota (standard mode), the token bucket
 * of --max-rps, and adaptive mode's rate limiter. */
#include "aws/retry.h"

#include <math.h>
#include <string.h>

static int in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; s && list[i]; i++)
        if (!strcmp(s, list[i]))
            return 1;
    return 0;
}

otr_failure otr_retry_classify(long status, otr_transport transport, const char *error_type)
{
    /* The error codes the SDKs treat as throttling and as transient. */
    static const char *const throttling[] = {"Throttling",
                                             "ThrottlingException",
                                             "ThrottledException",
                                             "RequestThrottledException",
                                             "TooManyRequestsException",
                                             "ProvisionedThroughputExceededException",
                                             "TransactionInProgressException",
                                             "RequestLimitExceeded",
                                             "BandwidthLimitExceeded",
                                             "LimitExceededException",
                                             "RequestThrottled",
                                             "SlowDown",
                                             "PriorRequestNotComplete",
                                             "EC2ThrottledException",
                                             NULL};
    static const char *const transient[] = {"RequestTimeout",     "RequestTimeoutException",
                                            "InternalError",      "InternalServerException",
                                            "ServiceUnavailable", NULL};
    if (transport == OTR_TRANSPORT_CONNECT)
        return OTR_FAIL_TRANSIENT;
    if (transport == OTR_TRANSPORT_TIMEOUT)
        return OTR_FAIL_TIMEOUT;
    if (transport == OTR_TRANSPORT_FATAL)
        return OTR_FAIL_PERMANENT;
    if (status >= 200 && status < 300)
        return OTR_FAIL_NONE;
    if (status == 429 || in_list(error_type, throttling))
        return OTR_FAIL_THROTTLE;
    if (status == 500 || status == 502 || status == 503 || status == 504 ||
        in_list(error_type, transient))
        return OTR_FAIL_TRANSIENT;
    return OTR_FAIL_PERMANENT;
}

int64_t otr_retry_backoff_ms(int attempt, double draw)
{
    int64_t ceiling = OTR_RETRY_BASE_MS;
    for (int i = 1; i < attempt && ceiling < OTR_RETRY_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > OTR_RETRY_CAP_MS)
        ceiling = OTR_RETRY_CAP_MS;
    if (draw < 0)
        draw = 0;
    if (draw >= 1)
        draw = 0.999999;
    return (int64_t)(draw * (double)(ceiling + 1));
}

int64_t otr_retry_wait_ms(int attempt, double draw, int64_t retry_after_ms)
{
    int64_t t = otr_retry_backoff_ms(attempt, draw);
    if (retry_after_ms < 0 || retry_after_ms <= t)
        return t;
    return retry_after_ms < t + OTR_RETRY_AFTER_EXTRA_MS ? retry_after_ms
                                                         : t + OTR_RETRY_AFTER_EXTRA_MS;
}

/* A non-negative decimal of at most 12 digits, or -1. */
static int64_t decimal(const char *s)
{
    int64_t v = 0;
    size_t n = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++, n++) {
        if (*s < '0' || *s > '9' || n >= 12)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

int64_t otr_retry_after_ms(const char *x_amz_retry_after, const char *retry_after)
{
    int64_t ms = decimal(x_amz_retry_after);
    if (ms >= 0)
        return ms;
    int64_t s = decimal(retry_after);
    return s >= 0 ? s * 1000 : -1;
}

void otr_retry_quota_init(otr_retry_quota *q)
{
    q->available = OTR_RETRY_QUOTA_INITIAL;
}

int otr_retry_quota_acquire(otr_retry_quota *q, otr_failure f)
{
    int cost = f == OTR_FAIL_TIMEOUT ? OTR_RETRY_TIMEOUT_COST : OTR_RETRY_COST;
    if (q->available < cost)
        return 0;
    q->available -= cost;
    return cost;
}

void otr_retry_quota_release(otr_retry_quota *q, int cost)
{
    q->available += cost > 0 ? cost : OTR_RETRY_NO_RETRY_INCREMENT;
    if (q->available > OTR_RETRY_QUOTA_INITIAL)
        q->available = OTR_RETRY_QUOTA_INITIAL;
}

void otr_token_bucket_init(otr_token_bucket *b, double rate, int64_t now_ms)
{
    b->rate = rate;
    b->burst = rate >= 1 ? rate : 1;
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

int64_t otr_token_bucket_take(otr_token_bucket *b, int64_t now_ms)
{
    if (b->rate <= 0)
        return 0;
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 0;
    }
    int64_t wait = (int64_t)((1 - b->tokens) * 1000.0 / b->rate) + 1;
    return wait;
}

/* ---- adaptive mode ------------------------------------------------------------- */

void otr_rate_limiter_init(otr_rate_limiter *r, int64_t now_ms)
{
    memset(r, 0, sizeof(*r));
    r->fill_rate = OTR_ADAPTIVE_MIN_FILL_RATE;
    r->max_capacity = OTR_ADAPTIVE_MIN_CAPACITY;
    r->last_refill = (double)now_ms / 1000.0;
    r->last_rate_bucket = floor((double)now_ms / 500.0) / 2.0;
    r->last_throttle = (double)now_ms / 1000.0;
    r->started = (double)now_ms / 1000.0;
}

static void refill(otr_rate_limiter *r, double now)
{
    if (now > r->last_refill) {
        r->capacity += (now - r->last_refill) * r->fill_rate;
        if (r->capacity > r->max_capacity)
            r->capacity = r->max_capacity;
    }
    r->last_refill = now;
}

int64_t otr_rate_limiter_acquire(otr_rate_limiter *r, int64_t now_ms)
{
    if (!r->enabled)
        return 0;
    refill(r, (double)now_ms / 1000.0);
    if (r->capacity >= 1) {
        r->capacity -= 1;
        return 0;
    }
    return (int64_t)ceil((1 - r->capacity) / r->fill_rate * 1000.0);
}

/* The achieved sending rate, over half-second buckets, smoothed. */
static void measure(otr_rate_limiter *r, double now)
{
    double bucket = floor(now * 2) / 2;
    r->request_count++;
    r->answers++;
    if (bucket > r->last_rate_bucket) {
        double rate = (double)r->request_count / (bucket - r->last_rate_bucket);
        r->measured_rate =
            rate * OTR_ADAPTIVE_SMOOTH + r->measured_rate * (1 - OTR_ADAPTIVE_SMOOTH);
        r->request_count = 0;
        r->last_rate_bucket = bucket;
    }
}

/* The rate to judge by: the smoothed one once a whole half-second bucket
 * has been measured; before, every answer so far over at least half a
 * second. (The first bucket is cut short by the clock: a throttle in the
 * first burst judged by it cut the rate to a few requests a second, and
 * the cubic climb back took four seconds.) */
static double rate_now(const otr_rate_limiter *r, double now)
{
    double span = now - r->started;
    if (span >= OTR_ADAPTIVE_WARMUP)
        return r->measured_rate;
    return (double)r->answers / (span > 0.5 ? span : 0.5);
}

static void set_rate(otr_rate_limiter *r, double rate, double now)
{
    refill(r, now);
    r->fill_rate = rate > OTR_ADAPTIVE_MIN_FILL_RATE ? rate : OTR_ADAPTIVE_MIN_FILL_RATE;
    r->max_capacity = rate > OTR_ADAPTIVE_MIN_CAPACITY ? rate : OTR_ADAPTIVE_MIN_CAPACITY;
    if (r->capacity > r->max_capacity)
        r->capacity = r->max_capacity;
}

void otr_rate_limiter_update(otr_rate_limiter *r, int throttled, int64_t sent_ms, int64_t now_ms)
{
    double now = (double)now_ms / 1000.0, rate;
    measure(r, now);
    double measured = rate_now(r, now);
    if (throttled && r->enabled && (double)sent_ms / 1000.0 < r->last_throttle)
        return; /* the same congestion event: cut once */
    if (throttled) {
        double at = r->enabled && r->fill_rate < measured ? r->fill_rate : measured;
        r->last_max_rate = at;
        r->time_window = cbrt(at * (1 - OTR_ADAPTIVE_BETA) / OTR_ADAPTIVE_SCALE);
        r->last_throttle = now;
        rate = at * OTR_ADAPTIVE_BETA;
        r->enabled = 1;
    } else {
        r->time_window = cbrt(r->last_max_rate * (1 - OTR_ADAPTIVE_BETA) / OTR_ADAPTIVE_SCALE);
        double dt = now - r->last_throttle - r->time_window;
        rate = OTR_ADAPTIVE_SCALE * dt * dt * dt + r->last_max_rate;
    }
    if (rate > 2 * measured)
        rate = 2 * measured;
    set_rate(r, rate, now);
}

int otr_retry_mode_parse(const char *name, otr_retry_mode *mode, const char **note)
{
    *mode = OTR_RETRY_STANDARD;
    *note = NULL;
    if (!name || !strcmp(name, "standard"))
        return 0;
    if (!strcmp(name, "adaptive")) {
        *mode = OTR_RETRY_ADAPTIVE;
        return 0;
    }
    if (!strcmp(name, "legacy")) {
        *note = "retry mode legacy runs as standard (ota-runner has standard and adaptive)";
        return 0;
    }
    *note = "use standard or adaptive";
    return -1;
}
