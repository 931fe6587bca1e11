/* Standard retry mode: classification, backoff, quota; and the rate limiter. */
#include "aws/retry.h"

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
