/*
 * The AWS layer's pure parts: retry classification, backoff, quota and the
 * token bucket; endpoint resolution and the loopback rule; rest-json error
 * parsing; the shared config and credentials files; region resolution.
 */
#include "aws/client.h"
#include "aws/endpoint.h"
#include "aws/profile.h"
#include "aws/retry.h"
#include "aws/s3.h"
#include "aws/xml.h"
#include "helpers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        long status;
        otr_transport transport;
        const char *type;
        otr_failure want;
    } cases[] = {
        {200, OTR_TRANSPORT_OK, NULL, OTR_FAIL_NONE},
        {204, OTR_TRANSPORT_OK, NULL, OTR_FAIL_NONE},
        {429, OTR_TRANSPORT_OK, "ThrottlingException", OTR_FAIL_THROTTLE},
        {400, OTR_TRANSPORT_OK, "ThrottlingException", OTR_FAIL_THROTTLE},
        {400, OTR_TRANSPORT_OK, "LimitExceededException", OTR_FAIL_THROTTLE},
        {503, OTR_TRANSPORT_OK, "SlowDown", OTR_FAIL_THROTTLE}, /* S3's */
        {500, OTR_TRANSPORT_OK, "InternalServerException", OTR_FAIL_TRANSIENT},
        {503, OTR_TRANSPORT_OK, NULL, OTR_FAIL_TRANSIENT},
        {504, OTR_TRANSPORT_OK, NULL, OTR_FAIL_TRANSIENT},
        {0, OTR_TRANSPORT_CONNECT, NULL, OTR_FAIL_TRANSIENT},
        {0, OTR_TRANSPORT_TIMEOUT, NULL, OTR_FAIL_TIMEOUT},
        {0, OTR_TRANSPORT_FATAL, NULL, OTR_FAIL_PERMANENT},
        /* other 4xx are never retried: a refused condition is an answer */
        {400, OTR_TRANSPORT_OK, "ValidationException", OTR_FAIL_PERMANENT},
        {403, OTR_TRANSPORT_OK, "InvalidSignatureException", OTR_FAIL_PERMANENT},
        {404, OTR_TRANSPORT_OK, "ResourceNotFoundException", OTR_FAIL_PERMANENT},
        {409, OTR_TRANSPORT_OK, "ConflictException", OTR_FAIL_PERMANENT},
        {412, OTR_TRANSPORT_OK, "PreconditionFailed", OTR_FAIL_PERMANENT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (otr_retry_classify(cases[i].status, cases[i].transport, cases[i].type) != cases[i].want)
            fail_msg("case %zu: HTTP %ld %s", i, cases[i].status,
                     cases[i].type ? cases[i].type : "");
}

static void test_backoff(void **state)
{
    (void)state;
    /* full jitter: draw 0 waits nothing; draw ~1 waits the ceiling */
    /* botocore's standard mode: rand * min(2^(n-1), 20) s before retry n */
    assert_int_equal(otr_retry_backoff_ms(1, 0.0), 0);
    assert_int_equal(otr_retry_backoff_ms(1, 0.999999), 1000);
    assert_int_equal(otr_retry_backoff_ms(2, 0.999999), 2000);
    assert_int_equal(otr_retry_backoff_ms(3, 0.999999), 4000);
    assert_int_equal(otr_retry_backoff_ms(3, 0.5), 2000);
    assert_int_equal(otr_retry_backoff_ms(5, 0.999999), 16000);
    /* capped at 20 s */
    assert_int_equal(otr_retry_backoff_ms(6, 0.999999), 20000);
    assert_int_equal(otr_retry_backoff_ms(40, 0.999999), 20000);
    /* a wait the service asks for: taken when longer, at most 5 s past it */
    assert_int_equal(otr_retry_wait_ms(1, 0.5, -1), 500);
    assert_int_equal(otr_retry_wait_ms(1, 0.5, 100), 500);
    assert_int_equal(otr_retry_wait_ms(1, 0.5, 3000), 3000);
    assert_int_equal(otr_retry_wait_ms(1, 0.5, 60000), 5500);
    assert_int_equal(otr_retry_after_ms("1500", "9"), 1500);
    assert_int_equal(otr_retry_after_ms(NULL, "2"), 2000);
    assert_int_equal(otr_retry_after_ms("x", "Wed, 21 Oct 2026 07:28:00 GMT"), -1);
    assert_int_equal(otr_retry_after_ms("-5", NULL), -1);
    assert_int_equal(otr_retry_after_ms("9999999999999", NULL), -1);
}

static void test_quota(void **state)
{
    (void)state;
    otr_retry_quota q;
    otr_retry_quota_init(&q);
    assert_int_equal(q.available, 500);
    int retries = 0;
    while (otr_retry_quota_acquire(&q, OTR_FAIL_THROTTLE))
        retries++;
    assert_int_equal(retries, 100); /* 500 / 5 */
    assert_int_equal(q.available, 0);
    otr_retry_quota_release(&q, 5); /* a success after a retry gives its cost back */
    assert_int_equal(q.available, 5);
    assert_int_equal(otr_retry_quota_acquire(&q, OTR_FAIL_TIMEOUT), 0); /* a timeout costs 10 */
    otr_retry_quota_release(&q, 0); /* a success without retry: +1 */
    assert_int_equal(q.available, 6);
    for (int i = 0; i < 1000; i++)
        otr_retry_quota_release(&q, 0);
    assert_int_equal(q.available, 500); /* never above the initial amount */
}

static void test_token_bucket(void **state)
{
    (void)state;
    otr_token_bucket b;
    otr_token_bucket_init(&b, 10, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(otr_token_bucket_take(&b, 0), 0); /* a burst of 10 */
    int64_t wait = otr_token_bucket_take(&b, 0);
    assert_true(wait >= 100 && wait <= 101);
    assert_int_equal(otr_token_bucket_take(&b, 100), 0); /* one token per 100 ms */
    assert_true(otr_token_bucket_take(&b, 100) > 0);
    otr_token_bucket_init(&b, 0, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(otr_token_bucket_take(&b, 0), 0); /* no limit */
}

static char *resolve(const char *flag, const char *region)
{
    char *url = NULL;
    otr_error err = OTR_ERROR_INIT;
    if (otr_endpoint_resolve(&url, flag, region, &err) < 0) {
        char *m = strdup(otr_error_message(&err));
        otr_error_clear(&err);
        return m;
    }
    return url;
}

/* Adaptive mode: free until the first throttle; then it sends at BETA of
 * the rate it measured, once per congestion event, and grows back to that
 * rate after its time window (cubic), and past it. */
static void test_rate_limiter(void **state)
{
    (void)state;
    otr_rate_limiter r;
    otr_rate_limiter_init(&r, 0);
    int64_t t = 0;
    for (; t < 5000; t += 10) { /* 100 answers a second, none throttled: no limit */
        assert_int_equal(otr_rate_limiter_acquire(&r, t), 0);
        otr_rate_limiter_update(&r, 0, t - 50, t);
    }
    assert_true(r.measured_rate > 95 && r.measured_rate < 105);
    assert_false(r.enabled);
    otr_rate_limiter_update(&r, 1, t - 50, t); /* a throttle */
    assert_true(r.enabled);
    assert_true(r.fill_rate > 0.69 * r.measured_rate && r.fill_rate < 0.71 * r.measured_rate);
    double after_one = r.fill_rate;
    /* the other answers in flight, sent before the cut: the same event */
    for (int i = 0; i < 30; i++)
        otr_rate_limiter_update(&r, 1, t - 40, t + 1);
    assert_true(r.fill_rate == after_one);
    /* a throttle of an attempt sent after the cut: a new event */
    otr_rate_limiter_update(&r, 1, t + 2, t + 3);
    assert_true(r.fill_rate < 0.75 * after_one);
    double last_max = r.last_max_rate, window = r.time_window;
    assert_true(window > 0);
    /* tokens: one per 1/fill_rate s */
    int64_t now = t + 1000;
    int64_t first = otr_rate_limiter_acquire(&r, now);
    assert_int_equal(first, 0);
    while (otr_rate_limiter_acquire(&r, now) == 0)
        ;
    assert_true(otr_rate_limiter_acquire(&r, now) > 0);
    /* successes: at the time window the rate is back at the last throttle's */
    int64_t back = t + 3 + (int64_t)(window * 1000);
    for (int64_t u = t + 10; u <= back; u += 10)
        otr_rate_limiter_update(&r, 0, u - 5, u);
    assert_true(r.fill_rate > 0.95 * last_max && r.fill_rate < 1.05 * last_max);
}

/* A throttle in the first burst, just after the clock's first half-second
 * bucket ended with two answers in it: judged by every answer so far, not
 * by that short bucket (which cut the rate to 2 a second, and apply at a
 * 50/s limit lost four seconds climbing back). */
static void test_rate_limiter_first_burst(void **state)
{
    (void)state;
    otr_rate_limiter r;
    otr_rate_limiter_init(&r, 490);
    otr_rate_limiter_update(&r, 0, 440, 495);
    otr_rate_limiter_update(&r, 0, 445, 499);
    int64_t t = 501;
    for (int i = 0; i < 80; i++, t++)
        otr_rate_limiter_update(&r, 0, 490, t);
    otr_rate_limiter_update(&r, 1, 490, t); /* 83 answers in 0.09 s, then a throttle */
    assert_true(r.enabled);
    /* 0.7 x 83 answers over half a second */
    assert_true(r.fill_rate > 0.69 * 83 / 0.5 && r.fill_rate < 0.71 * 83 / 0.5);
    /* after the warm-up, the smoothed rate is the one judged by again */
    otr_rate_limiter_init(&r, 0);
    for (t = 0; t < 3000; t += 20) /* 50 answers a second */
        otr_rate_limiter_update(&r, 0, t - 50, t);
    otr_rate_limiter_update(&r, 1, t - 50, t);
    assert_true(r.fill_rate > 0.69 * r.measured_rate && r.fill_rate < 0.71 * r.measured_rate);
    assert_true(r.measured_rate > 45 && r.measured_rate < 55);
}

/* The retry modes: standard and adaptive; legacy runs as standard, said so;
 * anything else refused with what to use. */
static void test_retry_modes(void **state)
{
    (void)state;
    otr_retry_mode m;
    const char *note;
    assert_int_equal(otr_retry_mode_parse(NULL, &m, &note), 0);
    assert_int_equal(m, OTR_RETRY_STANDARD);
    assert_null(note);
    assert_int_equal(otr_retry_mode_parse("adaptive", &m, &note), 0);
    assert_int_equal(m, OTR_RETRY_ADAPTIVE);
    assert_int_equal(otr_retry_mode_parse("standard", &m, &note), 0);
    assert_int_equal(m, OTR_RETRY_STANDARD);
    assert_int_equal(otr_retry_mode_parse("legacy", &m, &note), 0);
    assert_int_equal(m, OTR_RETRY_STANDARD);
    assert_non_null(strstr(note, "legacy runs as standard"));
    assert_int_equal(otr_retry_mode_parse("Adaptive", &m, &note), -1);
    assert_string_equal(note, "use standard or adaptive");
}

static void test_endpoint(void **state)
{
    (void)state;
    unsetenv("AWS_ENDPOINT_URL_IOT_MANAGED_INTEGRATIONS");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_USE_FIPS_ENDPOINT");
    char *u = resolve(NULL, "eu-west-1");
    assert_string_equal(u, "https://api.iotmanagedintegrations.eu-west-1.api.aws");
    free(u);
    setenv("AWS_USE_FIPS_ENDPOINT", "true", 1);
    u = resolve(NULL, "us-east-1");
    assert_string_equal(u, "https://api.iotmanagedintegrations-fips.us-east-1.api.aws");
    free(u);
    /* each partition's suffix (botocore's endpoint rules; test_fidelity.py compares) */
    u = resolve(NULL, "cn-north-1");
    assert_string_equal(
        u, "https://api.iotmanagedintegrations-fips.cn-north-1.api.amazonwebservices.com.cn");
    free(u);
    unsetenv("AWS_USE_FIPS_ENDPOINT");
    u = resolve(NULL, "us-isob-east-1");
    assert_string_equal(u, "https://api.iotmanagedintegrations.us-isob-east-1.api.aws.scloud");
    free(u);
    /* FIPS and a custom endpoint: refused, as the rules refuse it */
    setenv("AWS_USE_FIPS_ENDPOINT", "true", 1);
    u = resolve("https://x.example.com", "us-east-1");
    assert_non_null(strstr(u, "FIPS and a custom endpoint are not supported"));
    free(u);
    unsetenv("AWS_USE_FIPS_ENDPOINT");
    setenv("AWS_ENDPOINT_URL", "https://general.example.com/", 1);
    u = resolve(NULL, "us-east-1");
    assert_string_equal(u, "https://general.example.com");
    free(u);
    setenv("AWS_ENDPOINT_URL_IOT_MANAGED_INTEGRATIONS", "http://127.0.0.1:9999", 1);
    u = resolve(NULL, "us-east-1");
    assert_string_equal(u, "http://127.0.0.1:9999");
    free(u);
    u = resolve("http://[::1]:8080/base", "us-east-1"); /* the flag wins */
    assert_string_equal(u, "http://[::1]:8080/base");
    free(u);
    u = resolve("http://localhost:1", NULL);
    assert_string_equal(u, "http://localhost:1");
    free(u);
    u = resolve("http://127.8.9.10", NULL);
    assert_string_equal(u, "http://127.8.9.10");
    free(u);
    /* plain http elsewhere is refused, before any connection */
    u = resolve("http://10.1.2.3:8080", "us-east-1");
    assert_string_equal(u, "--endpoint-url http://10.1.2.3:8080: plain http is allowed only to "
                           "loopback addresses (127.0.0.1, ::1, localhost); use https");
    free(u);
    u = resolve("http://example.com", "us-east-1");
    assert_non_null(strstr(u, "plain http is allowed only to loopback"));
    free(u);
    u = resolve("ftp://example.com", "us-east-1");
    assert_non_null(strstr(u, "the scheme must be https"));
    free(u);
    u = resolve("https://example.com/?x=1", "us-east-1");
    assert_non_null(strstr(u, "must not have a query string"));
    free(u);
    unsetenv("AWS_ENDPOINT_URL_IOT_MANAGED_INTEGRATIONS");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_USE_FIPS_ENDPOINT");
    u = resolve(NULL, NULL);
    assert_non_null(strstr(u, "no region: use --region"));
    free(u);
    /* a region is a name: nothing of a URL gets into the host made of it */
    u = resolve(NULL, "us-east-1.evil.example#");
    assert_string_equal(u, "region us-east-1.evil.example# is not a region's name (letters, "
                           "digits and '-', as in us-east-1)");
    free(u);
    u = resolve(NULL, "us-east-1/x");
    assert_non_null(strstr(u, "is not a region's name"));
    free(u);
}

static void parse(const char *header, const char *body, const char *type, const char *msg)
{
    char *t, *m;
    otr_aws_parse_error(header, body, body ? strlen(body) : 0, &t, &m);
    if (type)
        assert_string_equal(t, type);
    else
        assert_null(t);
    if (msg)
        assert_string_equal(m, msg);
    else
        assert_null(m);
    free(t);
    free(m);
}

/* The service's time from an answer's Date header (RFC 7231), when it is 2
 * seconds or more from ours; else ours. */
static void test_service_clock(void **state)
{
    (void)state;
    char date[64];
    otr_aws_call *call = otr_aws_call_new("GetOtaTask", "GET", NULL, "/ota-tasks/x");
    assert_non_null(call);
    time_t now = time(NULL);
    assert_in_range(otr_aws_call_time(call), now, now + 1); /* no Date: ours */
    time_t ahead = now + 2 * 86400;
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&ahead));
    assert_int_equal(otr_headers_add(&call->reply_headers, "Date", date), 0);
    assert_in_range(otr_aws_call_time(call), ahead - 1, ahead + 1);
    otr_headers_free(&call->reply_headers);
    time_t behind = now - 3600;
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&behind));
    assert_int_equal(otr_headers_add(&call->reply_headers, "Date", date), 0);
    assert_in_range(otr_aws_call_time(call), behind - 1, behind + 1);
    otr_headers_free(&call->reply_headers);
    assert_int_equal(otr_headers_add(&call->reply_headers, "Date", "not a date"), 0);
    assert_in_range(otr_aws_call_time(call), now, now + 1);
    otr_aws_call_free(call);
    assert_in_range(otr_aws_client_now(NULL), now, now + 1);
}

static void test_error_parsing(void **state)
{
    (void)state;
    parse("ValidationException:http://internal.amazon.com/coral/com.amazonaws/",
          "{\"Message\":\"bad\"}", "ValidationException", "bad");
    parse(NULL, "{\"__type\":\"com.amazonaws.iot#ConflictException\",\"message\":\"dup\"}",
          "ConflictException", "dup");
    parse(NULL, "{\"code\":\"ThrottlingException\",\"Message\":\"slow down\"}",
          "ThrottlingException", "slow down");
    parse("AccessDeniedException", "not json", "AccessDeniedException", NULL);
    parse(NULL, "", NULL, NULL);
    /* every form botocore reads (issue 30, item 6): a namespaced header, with
     * and without a suffix; Code in the body; a namespaced body code */
    parse("aws.iotmanagedintegrations#LimitExceededException:http://internal.amazon.com/",
          "{\"message\":\"too many\"}", "LimitExceededException", "too many");
    parse("aws.iotmanagedintegrations#ThrottlingException", "{}", "ThrottlingException", NULL);
    parse(NULL, "{\"Code\":\"InternalServerException\",\"Message\":\"x\"}",
          "InternalServerException", "x");
    parse(NULL, "{\"code\":\"aws.iot#ServiceUnavailableException:detail\"}",
          "ServiceUnavailableException", NULL);
    parse(":", "{}", NULL, NULL);
}

static void test_profiles(void **state)
{
    (void)state;
    char *dir = otr_test_mkdtemp();
    otr_test_write(dir, "config",
                   "[default]\nregion = eu-central-1\n\n[profile dev]\n"
                   "region=us-west-2\ns3 =\n  region = nested-ignored\n"
                   "credential_process = /bin/echo x\n# comment\n"
                   "[profile  spaced ]\nregion = ap-south-1\n[dev]\nregion = wrong\n");
    otr_test_write(dir, "credentials",
                   "[dev]\naws_access_key_id = AKIDDEV\n"
                   "aws_secret_access_key = secret/with=signs\n"
                   "[profile dev]\naws_access_key_id = WRONG\n");
    char path[512];
    snprintf(path, sizeof(path), "%s/config", dir);
    setenv("AWS_CONFIG_FILE", path, 1);
    snprintf(path, sizeof(path), "%s/credentials", dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);

    char *v = otr_profile_get(OTR_AWS_CONFIG_FILE, "dev", "region");
    assert_string_equal(v, "us-west-2");
    free(v);
    v = otr_profile_get(OTR_AWS_CONFIG_FILE, "spaced", "region");
    assert_string_equal(v, "ap-south-1");
    free(v);
    v = otr_profile_get(OTR_AWS_CONFIG_FILE, "dev", "credential_process");
    assert_string_equal(v, "/bin/echo x");
    free(v);
    v = otr_profile_get(OTR_AWS_CREDENTIALS_FILE, "dev", "aws_access_key_id");
    assert_string_equal(v, "AKIDDEV");
    free(v);
    v = otr_profile_get(OTR_AWS_CREDENTIALS_FILE, "dev", "aws_secret_access_key");
    assert_string_equal(v, "secret/with=signs");
    free(v);
    assert_null(otr_profile_get(OTR_AWS_CONFIG_FILE, "nope", "region"));
    assert_true(otr_profile_exists(OTR_AWS_CONFIG_FILE, "dev"));
    assert_false(otr_profile_exists(OTR_AWS_CONFIG_FILE, "nope"));

    /* region: flag, AWS_REGION, AWS_DEFAULT_REGION, then the profile */
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    unsetenv("AWS_PROFILE");
    v = otr_region_resolve(NULL, NULL);
    assert_string_equal(v, "eu-central-1");
    free(v);
    v = otr_region_resolve(NULL, "dev");
    assert_string_equal(v, "us-west-2");
    free(v);
    setenv("AWS_PROFILE", "dev", 1);
    v = otr_region_resolve(NULL, NULL);
    assert_string_equal(v, "us-west-2");
    free(v);
    setenv("AWS_DEFAULT_REGION", "sa-east-1", 1);
    v = otr_region_resolve(NULL, NULL);
    assert_string_equal(v, "sa-east-1");
    free(v);
    setenv("AWS_REGION", "ca-central-1", 1);
    v = otr_region_resolve(NULL, NULL);
    assert_string_equal(v, "ca-central-1");
    free(v);
    v = otr_region_resolve("us-east-2", NULL);
    assert_string_equal(v, "us-east-2");
    free(v);
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_CONFIG_FILE");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    otr_test_rmdir(dir);
    free(dir);
}

static void test_s3_url(void **state)
{
    (void)state;
    otr_s3_url u;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_s3_url_parse(&u,
                                      "s3://acme-ota-state/fleets/prod/state.json?region=eu-west-1"
                                      "&path_style=true&sse=aws:kms&kms_key_id=alias/ota",
                                      &err),
                     0);
    assert_string_equal(u.bucket, "acme-ota-state");
    assert_string_equal(u.key, "fleets/prod/state.json");
    assert_string_equal(u.region, "eu-west-1");
    assert_int_equal(u.path_style, 1);
    assert_string_equal(u.sse, "aws:kms");
    assert_string_equal(u.kms_key_id, "alias/ota");
    otr_s3_url_clear(&u);
    /* dots inside a segment are a name like any other */
    assert_int_equal(otr_s3_url_parse(&u, "s3://bucket/x/..y/.state.json", &err), 0);
    assert_string_equal(u.key, "x/..y/.state.json");
    otr_s3_url_clear(&u);
    static const struct {
        const char *url, *says;
    } bad[] = {
        {"s3://b/k", "not one S3 allows"},
        {"s3://Bad_Bucket/k", "not one S3 allows"},
        {"s3://bucket", "say s3://BUCKET/KEY"},
        {"s3://bucket/", "must name an object"},
        {"s3://bucket/dir/", "must name an object"},
        {"s3://bucket/k?color=red", "unknown parameter \"color\""},
        {"s3://bucket/k?region", "NAME=VALUE"},
        {"s3://bucket/k?path_style=yes", "use true or false"},
        {"s3://bucket/k?kms_key_id=x", "needs sse=aws:kms"},
        {"s3://bucket/k?sse=rot13", "use aws:kms"},
        {"/var/lib/state.json", "not an s3:// URL"},
        {"s3://bucket/x/../y.json", "\"..\" segment"},
        {"s3://bucket/./y.json", "\"..\" segment"},
        {"s3://bucket/x/..", "\"..\" segment"},
        {"s3://bucket/x/./y.json?region=eu-west-1", "\"..\" segment"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (otr_s3_url_parse(&u, bad[i].url, &err) == 0)
            fail_msg("%s was accepted", bad[i].url);
        if (!strstr(otr_error_message(&err), bad[i].says))
            fail_msg("%s: %s", bad[i].url, otr_error_message(&err));
        otr_error_clear(&err);
    }
}

static void test_s3_answers(void **state)
{
    (void)state;
    const char *page = "<?xml version=\"1.0\"?><ListBucketResult><Prefix>k.journal/</Prefix>"
                       "<IsTruncated>true</IsTruncated><Contents><Key>k.journal/1</Key></Contents>"
                       "<Contents><Key>a&amp;b &#x1F680;&#233;</Key></Contents>"
                       "<NextContinuationToken>tok/+=</NextContinuationToken></ListBucketResult>";
    char **keys = NULL, *next = NULL;
    size_t n = 0;
    assert_int_equal(otr_s3_parse_list(page, strlen(page), &keys, &n, &next), 0);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0], "k.journal/1");
    assert_string_equal(keys[1], "a&b \xF0\x9F\x9A\x80\xC3\xA9");
    assert_string_equal(next, "tok/+=");
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(next);
    /* the last page has no token; a page without IsTruncated is not an answer */
    const char *last = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
    keys = NULL;
    n = 0;
    assert_int_equal(otr_s3_parse_list(last, strlen(last), &keys, &n, &next), 0);
    assert_int_equal(n, 0);
    assert_null(next);
    assert_int_equal(otr_s3_parse_list("<html>", 6, &keys, &n, &next), -1);
    /* a bad reference, an unclosed element: nothing */
    size_t pos = 0;
    assert_null(otr_xml_next("<Key>&#xD800;</Key>", 19, &pos, "Key"));
    assert_null(otr_xml_first("<Key>open", 9, "Key"));
    assert_null(otr_xml_first("<Key>a<b/></Key>", 16, "Key"));
    /* S3's XML error */
    const char *e = "<Error><Code>PreconditionFailed</Code><Message>At least one of the "
                    "pre-conditions you specified did not hold</Message></Error>";
    char *type, *message;
    otr_aws_parse_error(NULL, e, strlen(e), &type, &message);
    assert_string_equal(type, "PreconditionFailed");
    assert_string_equal(message, "At least one of the pre-conditions you specified did not hold");
    free(type);
    free(message);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),      cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_quota),         cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_rate_limiter),  cmocka_unit_test(test_rate_limiter_first_burst),
        cmocka_unit_test(test_endpoint),      cmocka_unit_test(test_error_parsing),
        cmocka_unit_test(test_service_clock), cmocka_unit_test(test_s3_url),
        cmocka_unit_test(test_s3_answers),    cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_retry_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
