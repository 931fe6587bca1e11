/*
 * What the credentials sources share (aws/creds_internal.h): the provider's
 * clock, filling credentials, a profile's key, and one HTTP request for STS,
 * IAM Identity Center, the container endpoint and IMDS (an easy handle each).
 */
#include "aws/creds_internal.h"

#include "aws/profile.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

time_t otr_creds_now(const otr_creds_provider *p)
{
    return p->now ? p->now(p->now_ctx) : time(NULL);
}

int otr_creds_set(otr_credentials *c, const char *akid, const char *secret, const char *token,
                  time_t expiration, const char *source_desc)
{
    otr_credentials_clear(c);
    c->access_key_id = strdup(akid);
    c->secret_access_key = strdup(secret);
    c->session_token = token && *token ? strdup(token) : NULL;
    c->expiration = expiration;
    c->source = strdup(source_desc);
    return c->access_key_id && c->secret_access_key && c->source ? 0 : -1;
}

char *otr_creds_conf(const otr_creds_provider *p, const char *key)
{
    return otr_profile_get(OTR_AWS_CONFIG_FILE, p->profile, key);
}

/* ---- HTTP for STS, the container endpoint and IMDS (one easy handle each) -- */

static size_t collect(char *data, size_t size, size_t n, void *userp)
{
    otr_buf *b = userp;
    return otr_buf_append(b, data, size * n) == 0 ? size * n : 0;
}

int otr_creds_fetch(const char *method, const char *url, struct curl_slist *headers,
                    const char *body, long timeout_ms, long *status, otr_buf *out, otr_error *err)
{
    CURL *e = curl_easy_init();
    char errbuf[CURL_ERROR_SIZE] = "";
    if (!e)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    out->cap = OTR_CREDS_MAX_BYTES;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "ota-runner");
    const char *ca = getenv("AWS_CA_BUNDLE");
    if (ca && *ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(e);
    if (rc != CURLE_OK)
        return otr_error_set(err, OTR_ERR_IO, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return 0;
}

/* Reads the credentials JSON the container endpoint, IMDS and credential_process
 * answer with: AccessKeyId, SecretAccessKey, Token or SessionToken, Expiration. */
