/* Notifications as CloudEvents and Slack messages (see notify.h). */
#include "notify/notify.h"

#include "util/buf.h"
#include "util/time.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLACK_PREFIX "slack+"

static void hex(char *out, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

cJSON *otr_notify_event(const char *type, const char *source, const char *subject, const char *key,
                        int64_t time, cJSON *data)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char id[65], at[21];
    otr_buf seed = OTR_BUF_INIT, full = OTR_BUF_INIT;
    otr_buf_printf(&seed, "%s\n%s\n%s\n%s", type, source, subject, key);
    otr_buf_printf(&full, "%s%s", OTR_NOTIFY_TYPE_PREFIX, type);
    int ok = !otr_buf_failed(&seed) && !otr_buf_failed(&full) &&
             EVP_Digest(seed.ptr, seed.len, md, &len, EVP_sha256(), NULL) == 1;
    cJSON *e = ok ? cJSON_CreateObject() : NULL;
    if (e) {
        hex(id, md, 16);
        otr_time_format_iso8601(at, (time_t)time);
        cJSON_AddStringToObject(e, "specversion", "1.0");
        cJSON_AddStringToObject(e, "id", id);
        cJSON_AddStringToObject(e, "source", source);
        cJSON_AddStringToObject(e, "type", full.ptr);
        cJSON_AddStringToObject(e, "subject", subject);
        cJSON_AddStringToObject(e, "time", at);
        cJSON_AddStringToObject(e, "datacontenttype", "application/json");
        if (!cJSON_AddItemToObject(e, "data", data)) {
            cJSON_Delete(e);
            e = NULL;
        } else {
            data = NULL;
        }
    }
    cJSON_Delete(data);
    otr_buf_free(&seed);
    otr_buf_free(&full);
    return e;
}

static const char *without_slack(const char *url)
{
    return strncmp(url, SLACK_PREFIX, strlen(SLACK_PREFIX)) ? url : url + strlen(SLACK_PREFIX);
}

int otr_notify_check_url(const char *url, otr_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = 0;
    if (!u || curl_url_set(u, CURLUPART_URL, without_slack(url), 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        rc = otr_error_set(err, OTR_ERR_USAGE, "--notify: not a URL");
    else if (strcmp(scheme, "https") &&
             !(!strcmp(scheme, "http") && (!strcmp(host, "127.0.0.1") ||
                                           !strcmp(host, "localhost") || !strcmp(host, "[::1]"))))
        rc = otr_error_set(err, OTR_ERR_USAGE,
                           "--notify: %s://%s: https only (http only to loopback), so that a "
                           "notification and its signature cannot be read on the way",
                           scheme, host);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

void otr_notify_url_shown(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, without_slack(url), 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        snprintf(out, size, "%s%s://%s/...", url == without_slack(url) ? "" : SLACK_PREFIX, scheme,
                 host);
    else
        snprintf(out, size, "(a URL)");
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
}

void otr_notify_url_digest(const char *url, char out[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(url, strlen(url), md, &len, EVP_sha256(), NULL) != 1)
        memset(md, 0, 8);
    hex(out, md, 8);
}

/* A Slack message: the event's summary, then its subject and type. */
static char *slack_body(const cJSON *event)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(event, "data");
    const char *summary = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "summary"));
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, "type"));
    otr_buf text = OTR_BUF_INIT;
    otr_buf_printf(&text, "ota-runner: %s (%s)", summary ? summary : "an event", type ? type : "?");
    cJSON *msg = cJSON_CreateObject();
    char *body = NULL;
    if (msg && !otr_buf_failed(&text) && cJSON_AddStringToObject(msg, "text", text.ptr))
        body = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    otr_buf_free(&text);
    return body;
}

char *otr_notify_body(const char *url, const cJSON *event, const char **content_type)
{
    if (url != without_slack(url)) {
        *content_type = "application/json";
        return slack_body(event);
    }
    *content_type = "application/cloudevents+json";
    return cJSON_PrintUnformatted(event);
}

void otr_notify_sign(const char *secret, const char *body, char sig[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    sig[0] = '\0';
    if (!secret || !*secret ||
        !HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, strlen(body),
              md, &len))
        return;
    memcpy(sig, "sha256=", 7);
    hex(sig + 7, md, len);
}

static size_t discard(char *data, size_t size, size_t n, void *userp)
{
    (void)data;
    (void)userp;
    return size * n;
}

/* One POST: the HTTP status, or 0 when none came (err says why). */
static long post_once(const char *url, const char *body, const char *content_type, const char *sig,
                      long timeout_ms, otr_error *err)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    char line[128], errbuf[CURL_ERROR_SIZE] = "";
    long status = 0;
    if (!e)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory"), 0;
    snprintf(line, sizeof(line), "Content-Type: %s", content_type);
    h = curl_slist_append(h, line);
    if (sig && *sig) {
        snprintf(line, sizeof(line), "%s: %s", OTR_NOTIFY_SIGNATURE_HEADER, sig);
        h = curl_slist_append(h, line);
    }
    curl_easy_setopt(e, CURLOPT_URL, without_slack(url));
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(e, CURLOPT_USERAGENT, "ota-runner");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode res = curl_easy_perform(e);
    if (res == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    else
        otr_error_set(err, OTR_ERR_IO, "%s", errbuf[0] ? errbuf : curl_easy_strerror(res));
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

int otr_notify_post(const char *url, const char *body, const char *content_type, const char *sig,
                    int attempts, long timeout_ms, otr_error *err)
{
    char shown[256];
    otr_notify_url_shown(url, shown, sizeof(shown));
    for (int i = 0; i < attempts; i++) {
        if (i)
            usleep((useconds_t)(500000u << (i - 1))); /* 0.5 s, 1 s, 2 s ... */
        otr_error_clear(err);
        long status = post_once(url, body, content_type, sig, timeout_ms, err);
        if (status >= 200 && status < 300)
            return 0;
        if (status)
            otr_error_set(err, OTR_ERR_IO, "HTTP %ld", status);
        /* a refusal other than a throttle is not tried again */
        if (status >= 400 && status < 500 && status != 408 && status != 429)
            break;
    }
    (void)otr_error_prefix(err, "notification to %s", shown);
    return -1;
}
