/*
 * The AWS client: a queue of calls run on one libcurl multi handle. Each
 * attempt is signed afresh (new X-Amz-Date, refreshed credentials); failures
 * are classified and retried per the standard retry mode; --max-rps is a
 * token bucket in front of every attempt.
 */
#include "aws/client.h"

#include "aws/headers.h"
#include "aws/retry.h"
#include "aws/sigv4.h"
#include "aws/xml.h"
#include "util/log.h"
#include "util/time.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define USER_AGENT "ota-runner/0.1.0"

struct otr_aws_call_internal {
    otr_aws_call *next; /* in the pending queue */
    CURL *easy;
    struct curl_slist *slist;
    char errbuf[CURL_ERROR_SIZE];
    char *error_type_header;
    int too_large;
    int64_t not_before_ms;
    int64_t attempt_start_ms;
    int64_t first_start_ms;
    int retry_cost;      /* quota taken by this call's retries */
    const char *service; /* the signing name (the client's), for messages */
};

struct otr_aws_client {
    otr_aws_options o;
    char *endpoint;
    char *host;      /* host[:port] as sent and signed */
    char *base_path; /* path part of the endpoint, "" or "/prefix" */
    CURLM *multi;
    otr_aws_call *pending_head, *pending_tail;
    int inflight;
    otr_retry_quota quota;
    otr_token_bucket bucket;
    otr_rate_limiter limiter; /* adaptive mode */
    void (*idle)(void *arg);  /* after each round of answers */
    void *idle_arg;
    int64_t skew_s;       /* the service's clock minus ours, from the newest Date header */
    otr_aws_tally *tally; /* requests by operation and answer, for metrics */
    size_t ntally, tally_alloc;
};

/* One more request of operation answered code ("200", "429", "error"). */
static void count_request(otr_aws_client *c, const char *operation, const char *code)
{
    for (size_t i = 0; i < c->ntally; i++)
        if (!strcmp(c->tally[i].operation, operation) && !strcmp(c->tally[i].code, code)) {
            c->tally[i].count++;
            return;
        }
    if (c->ntally == c->tally_alloc) {
        size_t want = c->tally_alloc ? 2 * c->tally_alloc : 16;
        otr_aws_tally *t = realloc(c->tally, want * sizeof(*t));
        if (!t)
            return; /* a count lost, not a call */
        c->tally = t;
        c->tally_alloc = want;
    }
    otr_aws_tally *t = &c->tally[c->ntally];
    snprintf(t->operation, sizeof(t->operation), "%s", operation);
    snprintf(t->code, sizeof(t->code), "%s", code);
    t->count = 1;
    c->ntally++;
}

const otr_aws_tally *otr_aws_client_tally(const otr_aws_client *c, size_t *n)
{
    *n = c ? c->ntally : 0;
    return c ? c->tally : NULL;
}

/* ---- clock and dice ------------------------------------------------------- */

static int64_t now_ms(const otr_aws_client *c)
{
    return c->o.now_ms ? c->o.now_ms(c->o.hook_ctx) : otr_time_monotonic_ms();
}

static double draw(const otr_aws_client *c)
{
    if (c->o.random)
        return c->o.random(c->o.hook_ctx);
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return 0.5;
    return (double)r / 4294967296.0;
}

/* ---- calls ------------------------------------------------------------------ */

otr_aws_call *otr_aws_call_new(const char *operation, const char *method, const char *body,
                               const char *path_fmt, ...)
{
    otr_aws_call *call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->in = calloc(1, sizeof(*call->in));
    otr_buf path = OTR_BUF_INIT;
    va_list ap;
    va_start(ap, path_fmt);
    otr_buf_vprintf(&path, path_fmt, ap);
    va_end(ap);
    call->operation = strdup(operation);
    call->method = strdup(method);
    call->path = otr_buf_detach(&path);
    if (body) {
        call->body = strdup(body);
        call->body_len = strlen(body);
    }
    call->response.cap = OTR_AWS_MAX_RESPONSE;
    if (!call->in || !call->operation || !call->method || !call->path || (body && !call->body)) {
        otr_aws_call_free(call);
        return NULL;
    }
    return call;
}

int otr_aws_call_set_query(otr_aws_call *call, const char *query)
{
    free(call->query);
    call->query = query ? strdup(query) : NULL;
    return !query || call->query ? 0 : -1;
}

int otr_aws_call_set_subject(otr_aws_call *call, const char *subject)
{
    free(call->subject);
    call->subject = subject ? strdup(subject) : NULL;
    return !subject || call->subject ? 0 : -1;
}

void otr_aws_call_free(otr_aws_call *call)
{
    if (!call)
        return;
    if (call->in) {
        if (call->in->easy)
            curl_easy_cleanup(call->in->easy);
        curl_slist_free_all(call->in->slist);
        free(call->in->error_type_header);
        free(call->in);
    }
    free(call->operation);
    free(call->subject);
    free(call->method);
    free(call->path);
    free(call->query);
    free(call->body);
    otr_headers_free(&call->headers);
    otr_headers_free(&call->reply_headers);
    otr_buf_free(&call->response);
    free(call->error_type);
    free(call->error_message);
    free(call);
}

/* The IAM action an S3 operation is authorised as (the others: their own name). */
static const char *s3_action(const char *operation)
{
    static const char *const map[][2] = {
        {"ListObjectsV2", "ListBucket"},
        {"DeleteObjects", "DeleteObject"},
        {"CopyObject", "GetObject and s3:PutObject"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(operation, map[i][0]))
            return map[i][1];
    return operation;
}

/* An answer that says the caller may not: which action to allow, and where
 * the policies ota-runner needs are. */
static void access_hint(const otr_aws_call *call, otr_buf *out)
{
    static const char *const denied[] = {"AccessDeniedException", "AccessDenied",
                                         "UnauthorizedException", "HTTP403"};
    int hit = 0;
    for (size_t i = 0; call->error_type && i < sizeof(denied) / sizeof(denied[0]); i++)
        hit |= !strcmp(call->error_type, denied[i]);
    if (!hit)
        return;
    const char *service = call->in && call->in->service ? call->in->service : OTR_AWS_SERVICE;
    int s3 = !strcmp(service, "s3");
    otr_buf_printf(out,
                   "; the credentials' policy must allow %s:%s (examples/iam/%s lists every action "
                   "ota-runner calls; see docs/operations.md#access-denied)",
                   service, s3 ? s3_action(call->operation) : call->operation,
                   s3 ? "apply-policy.json, its state statements,"
                      : "plan-policy.json (plan, diff, status) and apply-policy.json (apply)");
}

void otr_aws_call_describe(const otr_aws_call *call, otr_buf *out)
{
    otr_buf_puts(out, call->operation);
    if (call->subject)
        otr_buf_printf(out, " (%s)", call->subject);
    if (call->ok) {
        otr_buf_printf(out, ": HTTP %ld", call->status);
        return;
    }
    if (call->status)
        otr_buf_printf(out, ": HTTP %ld", call->status);
    otr_buf_printf(out, "%s%s: %s", call->status ? " " : ": ",
                   call->error_type ? call->error_type : "Error",
                   call->error_message ? call->error_message : "no message");
    if (call->attempts > 1)
        otr_buf_printf(out, " (after %d attempts%s)", call->attempts,
                       call->quota_exhausted ? "; retry quota exhausted" : "");
    else if (call->quota_exhausted)
        otr_buf_puts(out, " (not retried: retry quota exhausted)");
    access_hint(call, out);
}

/* ---- errors -------------------------------------------------------------------- */

static char *dup_until(const char *s, char stop)
{
    const char *e = strchr(s, stop);
    return e ? strndup(s, (size_t)(e - s)) : strdup(s);
}

/* An error type as restJson1 may write it ("aws.ns#Code:http://..." in the
 * header, "ns#Code" in a body): what comes before the first ':', then after
 * the '#' (the Smithy protocol's rule, as botocore applies it). */
static char *error_code(const char *raw)
{
    char *t = dup_until(raw, ':');
    char *hash = t ? strchr(t, '#') : NULL;
    if (hash)
        memmove(t, hash + 1, strlen(hash + 1) + 1);
    if (t && !*t) {
        free(t);
        t = NULL;
    }
    return t;
}

void otr_aws_parse_error(const char *header_type, const char *body, size_t len, char **type,
                         char **message)
{
    *type = NULL;
    *message = NULL;
    if (body && len && body[0] == '<') {
        if (header_type && *header_type)
            *type = error_code(header_type);
        else if ((*type = otr_xml_first(body, len, "Code")) != NULL) {
            char *t = error_code(*type);
            free(*type);
            *type = t;
        }
        *message = otr_xml_first(body, len, "Message");
        return;
    }
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    if (header_type && *header_type) {
        *type = error_code(header_type);
    } else if (j) {
        /* the body's, as botocore reads it: __type, code, Code */
        static const char *const keys[] = {"__type", "code", "Code"};
        const char *t = NULL;
        for (size_t i = 0; !t && i < sizeof(keys) / sizeof(*keys); i++)
            t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, keys[i]));
        if (t)
            *type = error_code(t);
    }
    if (j) {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "message"));
        if (!m)
            m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "Message"));
        if (m)
            *message = strdup(m);
    }
    cJSON_Delete(j);
}

/* ---- one attempt ----------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    otr_aws_call *call = userp;
    if (otr_buf_append(&call->response, data, size * n) < 0) {
        call->in->too_large = 1;
        return 0;
    }
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    otr_aws_call *call = userp;
    size_t len = size * n;
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (!strncmp(data, "HTTP/", 5)) { /* a new answer (after 100 Continue, or a retry) */
        otr_headers_free(&call->reply_headers);
        return len;
    }
    char *name = strndup(data, nlen), *value = strndup(v, vlen);
    if (name && value)
        otr_headers_add(&call->reply_headers, name, value);
    free(name);
    free(value);
    if (nlen == 16 && !strncasecmp(data, "x-amzn-ErrorType", 16)) {
        free(call->in->error_type_header);
        call->in->error_type_header = strndup(v, vlen);
    } else if (nlen == 16 && !strncasecmp(data, "x-amzn-RequestId", 16)) {
        snprintf(call->request_id, sizeof(call->request_id), "%.*s", (int)vlen, v);
    }
    return len;
}

/* For --debug: a header as it may be shown. The signature, the session token
 * and anything credential-like are cut. */
static void log_header(const otr_header *h)
{
    if (!strcasecmp(h->name, "Authorization")) {
        const char *sig = strstr(h->value, "Signature=");
        otr_log(OTR_LOG_DEBUG, "  > %s: %.*sSignature=<redacted>", h->name,
                sig ? (int)(sig - h->value) : 0, h->value);
    } else if (!strcasecmp(h->name, "X-Amz-Security-Token")) {
        otr_log(OTR_LOG_DEBUG, "  > %s: <redacted>", h->name);
    } else {
        otr_log(OTR_LOG_DEBUG, "  > %s: %s", h->name, h->value);
    }
}

static int start_attempt(otr_aws_client *c, otr_aws_call *call, otr_error *err)
{
    struct otr_aws_call_internal *in = call->in;
    const otr_credentials *creds;
    otr_headers h = OTR_HEADERS_INIT;
    otr_buf url = OTR_BUF_INIT, path = OTR_BUF_INIT;
    int rc = -1;

    if (otr_creds_get(c->o.creds, &creds, err) < 0)
        return -1;
    otr_buf_printf(&path, "%s%s", c->base_path, call->path);
    otr_buf_printf(&url, "%s%s%s%s", c->endpoint, call->path, call->query ? "?" : "",
                   call->query ? call->query : "");
    otr_headers_add(&h, "Host", c->host);
    if (call->body && !otr_headers_get(&call->headers, "Content-Type"))
        otr_headers_add(&h, "Content-Type", "application/json");
    for (size_t i = 0; i < call->headers.count; i++)
        otr_headers_add(&h, call->headers.items[i].name, call->headers.items[i].value);
    if (otr_sigv4_sign(&h, call->method, path.ptr, call->query, call->body, call->body_len, creds,
                       c->o.region, c->o.service ? c->o.service : OTR_AWS_SERVICE,
                       time(NULL)) < 0) {
        otr_error_set(err, OTR_ERR_GENERIC, "cannot sign the request");
        goto done;
    }
    curl_slist_free_all(in->slist);
    in->slist = NULL;
    for (size_t i = 0; i < h.count; i++) {
        otr_buf line = OTR_BUF_INIT;
        otr_buf_printf(&line, "%s: %s", h.items[i].name, h.items[i].value);
        in->slist = curl_slist_append(in->slist, line.ptr);
        otr_buf_free_secret(&line);
    }
    in->slist = curl_slist_append(in->slist, "Expect:");

    if (in->easy)
        curl_easy_cleanup(in->easy);
    in->easy = curl_easy_init();
    if (!in->easy || !in->slist) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto done;
    }
    CURL *e = in->easy;
    otr_buf_clear(&call->response);
    otr_headers_free(&call->reply_headers);
    free(in->error_type_header);
    in->error_type_header = NULL;
    in->too_large = 0;
    in->errbuf[0] = '\0';
    call->request_id[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, url.ptr);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, in->slist);
    curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
    if (!strcmp(call->method, "GET")) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, call->method);
        if (call->body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        } else if (strcmp(call->method, "DELETE") != 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        }
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, in->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->o.request_timeout_ms);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    const char *ca = getenv("AWS_CA_BUNDLE");
    if (ca && *ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);

    call->attempts++;
    in->attempt_start_ms = now_ms(c);
    if (!in->first_start_ms)
        in->first_start_ms = in->attempt_start_ms;
    otr_log(OTR_LOG_VERBOSE, "-> %s %s%s%s  %s%s%s%s (attempt %d)", call->method, call->path,
            call->query ? "?" : "", call->query ? call->query : "", call->operation,
            call->subject ? " " : "", call->subject ? call->subject : "", "", call->attempts);
    if (otr_log_get_level() >= OTR_LOG_DEBUG) {
        for (size_t i = 0; i < h.count; i++)
            log_header(&h.items[i]);
        if (call->body)
            otr_log(OTR_LOG_DEBUG, "  > %s", call->body);
    }
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        otr_error_set(err, OTR_ERR_GENERIC, "cannot start the request");
        goto done;
    }
    c->inflight++;
    rc = 0;
done:
    otr_headers_free(&h);
    otr_buf_free(&url);
    otr_buf_free(&path);
    return rc;
}

static void set_error(otr_aws_call *call, const char *type, const char *message)
{
    free(call->error_type);
    free(call->error_message);
    call->error_type = strdup(type);
    call->error_message = strdup(message);
}

static void finish(otr_aws_client *c, otr_aws_call *call)
{
    call->elapsed_ms = now_ms(c) - call->in->first_start_ms;
    if (call->ok)
        otr_retry_quota_release(&c->quota, call->in->retry_cost);
    if (call->done)
        call->done(call, call->ctx);
}

static void enqueue(otr_aws_client *c, otr_aws_call *call)
{
    call->in->next = NULL;
    if (c->pending_tail)
        c->pending_tail->in->next = call;
    else
        c->pending_head = call;
    c->pending_tail = call;
}

static otr_transport transport_of(CURLcode res, int too_large)
{
    switch (res) {
    case CURLE_OK: return OTR_TRANSPORT_OK;
    case CURLE_OPERATION_TIMEDOUT: return OTR_TRANSPORT_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return OTR_TRANSPORT_CONNECT;
    case CURLE_WRITE_ERROR: return too_large ? OTR_TRANSPORT_FATAL : OTR_TRANSPORT_CONNECT;
    default: return OTR_TRANSPORT_FATAL;
    }
}

/* ---- the service's clock ---------------------------------------------------- */

/* How far the service's clock (call's Date header) is ahead of ours, 0 when
 * they agree or the answer has no Date. */
static int64_t skew_of(const otr_aws_call *call)
{
    const char *date = otr_headers_get(&call->reply_headers, "Date");
    time_t at = date ? curl_getdate(date, NULL) : -1;
    if (at <= 0)
        return 0;
    int64_t skew = (int64_t)at - (int64_t)time(NULL);
    return skew > -OTR_CLOCK_AGREE && skew < OTR_CLOCK_AGREE ? 0 : skew;
}

int64_t otr_aws_client_now(const otr_aws_client *c)
{
    return (int64_t)time(NULL) + (c ? c->skew_s : 0);
}

int64_t otr_aws_call_time(const otr_aws_call *call)
{
    return (int64_t)time(NULL) + skew_of(call);
}

static void note_clock(otr_aws_client *c, const otr_aws_call *call)
{
    int64_t skew = skew_of(call);
    if (skew != c->skew_s)
        otr_log(OTR_LOG_VERBOSE,
                "   the service's clock is %+llds from this machine's; soaks and "
                "deadlines follow the service's",
                (long long)skew);
    c->skew_s = skew;
}

static void on_done(otr_aws_client *c, otr_aws_call *call, CURLcode res)
{
    struct otr_aws_call_internal *in = call->in;
    long status = 0;
    curl_easy_getinfo(in->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(c->multi, in->easy);
    c->inflight--;
    otr_transport t = transport_of(res, in->too_large);
    call->status = t == OTR_TRANSPORT_OK ? status : 0;
    char code[16];
    snprintf(code, sizeof(code), "%ld", call->status);
    count_request(c, call->operation, call->status ? code : "error");
    int64_t took = now_ms(c) - in->attempt_start_ms;

    char *type = NULL, *message = NULL;
    if (t != OTR_TRANSPORT_OK) {
        if (in->too_large)
            set_error(call, "ResponseTooLarge", "the answer is larger than 8 MiB; refused");
        else
            set_error(call, t == OTR_TRANSPORT_TIMEOUT ? "RequestTimeout" : "ConnectionError",
                      in->errbuf[0] ? in->errbuf : curl_easy_strerror(res));
        otr_log(OTR_LOG_VERBOSE, "<- %s %s: %s (%lld ms)", call->operation, call->error_type,
                call->error_message, (long long)took);
    } else {
        note_clock(c, call);
        otr_log(OTR_LOG_VERBOSE, "<- %ld %s%s%s (%lld ms)", status, call->operation,
                call->request_id[0] ? " request " : "", call->request_id, (long long)took);
        if (call->response.len)
            otr_log(OTR_LOG_DEBUG, "  < %s", call->response.ptr);
        if (status < 200 || status >= 300) {
            otr_aws_parse_error(in->error_type_header, call->response.ptr, call->response.len,
                                &type, &message);
            if (!type) {
                char generic[32];
                snprintf(generic, sizeof(generic), "HTTP%ld", status);
                type = strdup(generic);
            }
            set_error(call, type, message ? message : "no message");
        }
    }
    otr_failure f = otr_retry_classify(call->status, t, type);
    if (c->o.adaptive) {
        otr_rate_limiter_update(&c->limiter, f == OTR_FAIL_THROTTLE, in->attempt_start_ms,
                                now_ms(c));
        if (f == OTR_FAIL_THROTTLE)
            otr_log(OTR_LOG_VERBOSE, "   adaptive: throttled at %.1f/s measured; sending at %.1f/s",
                    c->limiter.measured_rate, c->limiter.fill_rate);
    }
    free(type);
    free(message);
    if (f == OTR_FAIL_NONE) {
        call->ok = 1;
        free(call->error_type);
        free(call->error_message);
        call->error_type = call->error_message = NULL;
        finish(c, call);
        return;
    }
    if (f != OTR_FAIL_PERMANENT && call->attempts < c->o.max_attempts) {
        int cost = otr_retry_quota_acquire(&c->quota, f);
        if (cost) {
            in->retry_cost += cost;
            int64_t wait = otr_retry_wait_ms(
                call->attempts, draw(c),
                otr_retry_after_ms(otr_headers_get(&call->reply_headers, "x-amz-retry-after"),
                                   otr_headers_get(&call->reply_headers, "Retry-After")));
            in->not_before_ms = now_ms(c) + wait;
            otr_log(OTR_LOG_VERBOSE, "   %s: retrying in %lld ms", call->operation,
                    (long long)wait);
            enqueue(c, call);
            return;
        }
        call->quota_exhausted = 1;
    }
    finish(c, call);
}

/* ---- the client ----------------------------------------------------------------- */

int otr_aws_client_new(otr_aws_client **out, const otr_aws_options *o, otr_error *err)
{
    otr_aws_client *c = calloc(1, sizeof(*c));
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *path = NULL;
    if (!c || !u) {
        free(c);
        curl_url_cleanup(u);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    c->o = *o;
    if (c->o.max_attempts <= 0)
        c->o.max_attempts = OTR_CLIENT_DEFAULT_ATTEMPTS;
    if (c->o.parallelism <= 0)
        c->o.parallelism = OTR_CLIENT_DEFAULT_PARALLELISM;
    if (c->o.connect_timeout_ms <= 0)
        c->o.connect_timeout_ms = OTR_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS;
    if (c->o.request_timeout_ms <= 0)
        c->o.request_timeout_ms = OTR_CLIENT_DEFAULT_REQUEST_TIMEOUT_MS;
    c->endpoint = strdup(o->endpoint);
    if (curl_url_set(u, CURLUPART_URL, o->endpoint, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        otr_aws_client_free(c);
        return otr_error_set(err, OTR_ERR_USAGE, "bad endpoint %s", o->endpoint);
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    otr_buf hb = OTR_BUF_INIT;
    otr_buf_printf(&hb, "%s%s%s", host, port ? ":" : "", port ? port : "");
    c->host = otr_buf_detach(&hb);
    c->base_path = strdup(path && strcmp(path, "/") ? path : "");
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    c->multi = curl_multi_init();
    if (!c->multi || !c->endpoint || !c->base_path) {
        otr_aws_client_free(c);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->o.parallelism);
    otr_retry_quota_init(&c->quota);
    otr_token_bucket_init(&c->bucket, c->o.max_rps, now_ms(c));
    otr_rate_limiter_init(&c->limiter, now_ms(c));
    *out = c;
    return 0;
}

int otr_aws_client_open(otr_aws_client **client, otr_creds_provider **creds, otr_aws_options o,
                        const char *profile, otr_error *err)
{
    otr_creds_options co = {.profile = profile, .region = o.region, .now = NULL, .now_ctx = NULL};
    *client = NULL;
    if (otr_creds_provider_new(creds, &co, err) < 0)
        return -1;
    o.creds = *creds;
    if (otr_aws_client_new(client, &o, err) < 0) {
        otr_creds_provider_free(*creds);
        *creds = NULL;
        return -1;
    }
    return 0;
}

void otr_aws_client_free(otr_aws_client *c)
{
    if (!c)
        return;
    free(c->tally);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    free(c->endpoint);
    free(c->host);
    free(c->base_path);
    free(c);
}

void otr_aws_client_submit(otr_aws_client *c, otr_aws_call *call)
{
    call->ok = 0;
    call->attempts = 0;
    call->in->not_before_ms = 0;
    call->in->first_start_ms = 0;
    call->in->retry_cost = 0;
    call->in->service = c->o.service ? c->o.service : OTR_AWS_SERVICE;
    enqueue(c, call);
}

void otr_aws_client_set_idle(otr_aws_client *c, void (*fn)(void *arg), void *arg)
{
    c->idle = fn;
    c->idle_arg = arg;
}

int otr_aws_client_retry_quota(const otr_aws_client *c)
{
    return c->quota.available;
}

/* Starts what may start now; returns how long until something else may. */
static int64_t start_ready(otr_aws_client *c)
{
    int64_t now = now_ms(c), wait = 1000;
    otr_aws_call *prev = NULL, *call = c->pending_head;
    while (call && c->inflight < c->o.parallelism) {
        otr_aws_call *next = call->in->next;
        if (call->in->not_before_ms > now) {
            if (call->in->not_before_ms - now < wait)
                wait = call->in->not_before_ms - now;
            prev = call;
            call = next;
            continue;
        }
        int64_t bucket_wait = otr_token_bucket_take(&c->bucket, now);
        if (bucket_wait == 0 && c->o.adaptive)
            bucket_wait = otr_rate_limiter_acquire(&c->limiter, now);
        if (bucket_wait > 0)
            return bucket_wait < wait ? bucket_wait : wait;
        /* unlink */
        if (prev)
            prev->in->next = next;
        else
            c->pending_head = next;
        if (c->pending_tail == call)
            c->pending_tail = prev;
        otr_error err = OTR_ERROR_INIT;
        if (start_attempt(c, call, &err) < 0) {
            call->attempts++;
            set_error(call, err.code == OTR_ERR_NOTFOUND ? "NoCredentials" : "ClientError",
                      otr_error_message(&err));
            otr_error_clear(&err);
            if (!call->in->first_start_ms)
                call->in->first_start_ms = now;
            finish(c, call);
        }
        call = next;
    }
    return c->pending_head ? wait : 1000;
}

int otr_aws_client_run(otr_aws_client *c, otr_error *err)
{
    while (c->pending_head || c->inflight) {
        int64_t wait = start_ready(c);
        int running = 0, finished = 0;
        if (curl_multi_perform(c->multi, &running) != CURLM_OK)
            return otr_error_set(err, OTR_ERR_GENERIC, "libcurl multi handle failed");
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(c->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            otr_aws_call *call = NULL;
            CURLcode res = msg->data.result;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
            on_done(c, call, res);
            finished++;
        }
        /* a callback may have queued the next call: start it now rather than
         * sleep on a wait computed before it existed */
        if (finished) {
            if (c->idle)
                c->idle(c->idle_arg);
            continue;
        }
        int timeout = (int)(c->inflight ? (wait < 100 ? wait : 100) : wait);
        curl_multi_poll(c->multi, NULL, 0, timeout > 0 ? timeout : 0, NULL);
    }
    return 0;
}

int otr_aws_client_call(otr_aws_client *c, otr_aws_call *call, otr_error *err)
{
    otr_aws_client_submit(c, call);
    if (otr_aws_client_run(c, err) < 0)
        return -1;
    if (call->ok)
        return 0;
    otr_buf msg = OTR_BUF_INIT;
    otr_aws_call_describe(call, &msg);
    otr_error_set(err, OTR_ERR_GENERIC, "%s", msg.ptr);
    otr_buf_free(&msg);
    return -1;
}

int otr_aws_client_drain(otr_aws_client *c, int rc, otr_error *err)
{
    otr_error ignored = OTR_ERROR_INIT;
    if (otr_aws_client_run(c, rc == 0 ? err : &ignored) < 0 && rc == 0)
        rc = -1;
    otr_error_clear(&ignored);
    return rc;
}
