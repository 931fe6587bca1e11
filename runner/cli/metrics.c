/* A run's metrics for Prometheus (see metrics.h). */
#include "cli/metrics.h"

#include "behaviour/behaviour.h"
#include "util/buf.h"
#include "util/file.h"
#include "util/time.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LAST_SUCCESS "ota_runner_last_success_timestamp_seconds"
#define METRICS_MAX ((size_t)64 << 20)

static void family(otr_buf *out, const char *name, const char *type, const char *help)
{
    otr_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the exposition format escapes it. */
static void label_value(otr_buf *out, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            otr_buf_printf(out, "\\%c", *v);
        else if (*v == '\n')
            otr_buf_puts(out, "\\n");
        else
            otr_buf_putc(out, *v);
    }
}

/* name{k="v",...} value, from a JSON object of labels. */
static void sample(otr_buf *out, const char *name, const cJSON *labels, double value)
{
    const cJSON *l;
    int first = 1;
    otr_buf_puts(out, name);
    cJSON_ArrayForEach(l, labels)
    {
        otr_buf_printf(out, "%s%s=\"", first ? "{" : ",", l->string);
        label_value(out, cJSON_GetStringValue(l));
        otr_buf_putc(out, '"');
        first = 0;
    }
    otr_buf_printf(out, "%s %.15g\n", first ? "" : "}", value);
}

static void one(otr_buf *out, const char *name, const char *k, const char *v, double value)
{
    cJSON *labels = cJSON_CreateObject();
    if (k)
        cJSON_AddStringToObject(labels, k, v);
    sample(out, name, labels, value);
    cJSON_Delete(labels);
}

/* The value of a sample without labels in text, or -1. */
static double previous_value(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (!strncmp(line, name, n) && line[n] == ' ')
            return strtod(line + n + 1, NULL);
    return -1;
}

static void kinds_metrics(otr_buf *out, const otr_plan *p)
{
    /* the families the kinds' views bring (a rollout's), each with its samples together */
    for (size_t b = 0; otr_behaviours[b]; b++) {
        const otr_kind_behaviour *bh = otr_behaviours[b];
        cJSON *samples = cJSON_CreateArray();
        for (size_t i = 0; p && bh->view_metrics && i < p->ndetails; i++)
            if (p->details[i].kind == bh->kind)
                bh->view_metrics(p->details[i].name, p->details[i].view, samples);
        for (size_t f = 0; bh->metric_families && bh->metric_families[f]; f++) {
            char name[128], type[32];
            const char *help = "";
            if (sscanf(bh->metric_families[f], "%127[^\t]\t%31[^\t]", name, type) != 2)
                continue;
            help = strrchr(bh->metric_families[f], '\t') + 1;
            family(out, name, type, help);
            const cJSON *x;
            cJSON_ArrayForEach(x, samples)
            {
                const char *fam =
                    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "family"));
                if (fam && !strcmp(fam, name))
                    sample(out, name, cJSON_GetObjectItemCaseSensitive(x, "labels"),
                           cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "value")));
            }
        }
        cJSON_Delete(samples);
    }
}

char *otr_metrics_text(const otr_run_metrics *m, const char *previous)
{
    otr_buf out = OTR_BUF_INIT;
    double now = (double)time(NULL);
    family(&out, "ota_runner_build_info", "gauge", "ota-runner's version, as a label");
    one(&out, "ota_runner_build_info", "version", OTR_VERSION, 1);
    family(&out, "ota_runner_run_duration_seconds", "gauge", "How long the last run took");
    one(&out, "ota_runner_run_duration_seconds", NULL, NULL,
        (double)(otr_time_monotonic_ms() - m->started_ms) / 1000.0);
    family(&out, "ota_runner_last_run_timestamp_seconds", "gauge", "When the last run ended");
    one(&out, "ota_runner_last_run_timestamp_seconds", NULL, NULL, now);
    family(&out, "ota_runner_last_run_success", "gauge", "1 when the last run succeeded");
    one(&out, "ota_runner_last_run_success", NULL, NULL, m->success ? 1 : 0);
    double last = m->success ? now : previous ? previous_value(previous, LAST_SUCCESS) : -1;
    if (last >= 0) {
        family(&out, LAST_SUCCESS, "gauge", "When a run last succeeded");
        one(&out, LAST_SUCCESS, NULL, NULL, last);
    }
    family(&out, "ota_runner_state_lock_wait_seconds", "gauge",
           "How long the last run waited for the state's lock (and read the state)");
    one(&out, "ota_runner_state_lock_wait_seconds", NULL, NULL, (double)m->lock_wait_ms / 1000.0);
    if (m->plan) {
        family(&out, "ota_runner_planned_changes", "gauge",
               "What the last run's plan did, by action");
        for (int k = 0; k < OTR_ACT_KINDS; k++)
            if (k != OTR_ACT_NOOP)
                one(&out, "ota_runner_planned_changes", "action", otr_action_kind_name(k),
                    (double)m->plan->counts[k]);
    }
    if (m->state) {
        family(&out, "ota_runner_resources", "gauge", "Resources the state records, by kind");
        for (size_t k = 0; otr_kinds[k]; k++) {
            size_t n = 0;
            for (size_t i = 0; i < m->state->count; i++)
                n += m->state->records[i].kind == otr_kinds[k];
            one(&out, "ota_runner_resources", "kind", otr_kinds[k]->name, (double)n);
        }
        family(&out, "ota_runner_notifications_pending", "gauge",
               "Notifications the state keeps until every URL took them");
        one(&out, "ota_runner_notifications_pending", NULL, NULL,
            (double)cJSON_GetArraySize(m->state->outbox));
    }
    family(&out, "ota_runner_notifications", "gauge", "Notifications of the last run, by result");
    one(&out, "ota_runner_notifications", "result", "delivered", (double)m->delivered);
    one(&out, "ota_runner_notifications", "result", "failed", (double)m->undelivered);
    kinds_metrics(&out, m->plan);
    size_t n = 0;
    const otr_aws_tally *t = otr_aws_client_tally(m->client, &n);
    family(&out, "ota_runner_aws_requests_total", "counter",
           "Requests of the last run to the service, by operation and HTTP status (error: none "
           "came)");
    for (size_t i = 0; i < n; i++) {
        cJSON *labels = cJSON_CreateObject();
        cJSON_AddStringToObject(labels, "operation", t[i].operation);
        cJSON_AddStringToObject(labels, "code", t[i].code);
        sample(&out, "ota_runner_aws_requests_total", labels, (double)t[i].count);
        cJSON_Delete(labels);
    }
    return otr_buf_failed(&out) ? (otr_buf_free(&out), NULL) : otr_buf_detach(&out);
}

/* The push's URL: its grouping key is the repository and path, base64url
 * (the Pushgateway's @base64 form takes any text, slashes too). */
static void push_url(otr_buf *url, const char *base, const otr_run_metrics *m)
{
    otr_buf key = OTR_BUF_INIT;
    unsigned char enc[1024];
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    otr_buf_printf(&key, "%s#%s", m->repo ? m->repo : ".", m->path ? m->path : "manifests");
    int n =
        EVP_EncodeBlock(enc, (const unsigned char *)key.ptr, (int)(key.len > 700 ? 700 : key.len));
    for (int i = 0; i < n; i++)
        enc[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
    while (n > 0 && enc[n - 1] == '=')
        n--;
    otr_buf_printf(url, "%.*s/metrics/job/ota-runner/repository@base64/%.*s", (int)blen, base, n,
                   enc);
    otr_buf_free(&key);
}

/* POST (not PUT): a failed run leaves the last success pushed before. */
static int push(const char *base, const otr_run_metrics *m, const char *text, otr_error *err)
{
    otr_buf url = OTR_BUF_INIT;
    char errbuf[CURL_ERROR_SIZE] = "";
    long status = 0;
    push_url(&url, base, m);
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: text/plain; version=0.0.4");
    if (!e || otr_buf_failed(&url)) {
        curl_easy_cleanup(e);
        curl_slist_free_all(h);
        otr_buf_free(&url);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    curl_easy_setopt(e, CURLOPT_URL, url.ptr);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode res = curl_easy_perform(e);
    if (res == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    otr_buf_free(&url);
    if (res != CURLE_OK)
        return otr_error_set(err, OTR_ERR_IO, "%s", errbuf[0] ? errbuf : curl_easy_strerror(res));
    if (status < 200 || status >= 300)
        return otr_error_set(err, OTR_ERR_IO, "HTTP %ld", status);
    return 0;
}

void otr_metrics_emit(const otr_options *o, const otr_run_metrics *m)
{
    otr_error err = OTR_ERROR_INIT;
    otr_buf previous = OTR_BUF_INIT;
    if (!o->metrics_file && !o->pushgateway)
        return;
    if (o->metrics_file && otr_file_read(o->metrics_file, METRICS_MAX, &previous, &err) < 0)
        otr_error_clear(&err); /* none yet */
    char *text = otr_metrics_text(m, previous.len ? previous.ptr : NULL);
    otr_buf_free(&previous);
    if (!text) {
        fprintf(stderr, "ota-runner: warning: out of memory: no metrics written\n");
        return;
    }
    if (o->metrics_file && otr_file_write_atomic(o->metrics_file, text, strlen(text), &err) < 0) {
        fprintf(stderr, "ota-runner: warning: metrics file %s: %s\n", o->metrics_file,
                otr_error_message(&err));
        otr_error_clear(&err);
    }
    if (o->pushgateway && push(o->pushgateway, m, text, &err) < 0) {
        fprintf(stderr, "ota-runner: warning: the push to the Pushgateway failed: %s\n",
                otr_error_message(&err));
        otr_error_clear(&err);
    }
    free(text);
}
