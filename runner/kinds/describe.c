/*
 * What a reviewer reads first about a task or a configuration, in words:
 * the firmware, who gets it, when, and how fast it goes and when it stops
 * (kind->describe). Only fields of the spec; nothing secret is in a spec.
 */
#include "kinds/kind.h"

#include <stdlib.h>
#include <string.h>

/* Targets shown by name before "and N more". */
#define DESCRIBE_MAX_TARGETS 3

static const char *str_of(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static long int_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
}

static void sep(otr_buf *out)
{
    if (out->len)
        otr_buf_puts(out, " · ");
}

/* "th0a1b2c3d4e5f" of ".../managed-thing/th0a1b2c3d4e5f". */
static const char *short_arn(const char *arn)
{
    const char *slash = strrchr(arn, '/');
    return slash && slash[1] ? slash + 1 : arn;
}

void otr_describe_targets(const cJSON *spec, otr_buf *out)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(spec, "Target"), *t;
    const char *query = str_of(spec, "OtaTargetQueryString");
    int n = cJSON_GetArraySize(list), shown = 0;
    if (list) {
        sep(out);
        otr_buf_printf(out, "%d thing%s", n, n == 1 ? "" : "s");
        cJSON_ArrayForEach(t, list)
        {
            if (shown == DESCRIBE_MAX_TARGETS || !cJSON_IsString(t))
                break;
            otr_buf_printf(out, "%s%s", shown++ ? ", " : ": ", short_arn(t->valuestring));
        }
        if (n > shown)
            otr_buf_printf(out, " and %d more", n - shown);
    }
    if (query) {
        sep(out);
        otr_buf_printf(out, "the things of \"%s\"", query);
    }
}

/* "cron(0 2 ? * MON-FRI *)" -> "Mon-Fri 02:00"; the expression itself when
 * it is not a weekly or daily time. */
static void cron_words(const char *expr, otr_buf *out)
{
    char f[6][32];
    int n = 0;
    const char *p = expr && !strncmp(expr, "cron(", 5) ? expr + 5 : NULL;
    while (p && *p && *p != ')' && n < 6) {
        size_t len = strcspn(p, " )");
        if (len >= sizeof(f[0]))
            break;
        memcpy(f[n], p, len);
        f[n++][len] = '\0';
        p += len;
        while (*p == ' ')
            p++;
    }
    int numeric = n >= 5 && strspn(f[0], "0123456789") == strlen(f[0]) &&
                  strspn(f[1], "0123456789") == strlen(f[1]) && f[0][0] && f[1][0];
    if (!numeric || strcmp(f[3], "*") || (strcmp(f[2], "?") && strcmp(f[2], "*"))) {
        otr_buf_puts(out, expr ? expr : "?");
        return;
    }
    if (!strcmp(f[4], "*") || !strcmp(f[4], "?")) {
        otr_buf_puts(out, "daily");
    } else {
        for (const char *d = f[4]; *d; d++) /* MON-FRI -> Mon-Fri */
            otr_buf_putc(out, (d == f[4] || d[-1] == '-' || d[-1] == ',') ? *d : (char)(*d | 0x20));
    }
    otr_buf_printf(out, " %02ld:%02ld", strtol(f[1], NULL, 10), strtol(f[0], NULL, 10));
}

static void schedule(const cJSON *sc, otr_buf *out)
{
    const cJSON *windows = cJSON_GetObjectItemCaseSensitive(sc, "MaintenanceWindows"), *w;
    if (!sc)
        return;
    sep(out);
    otr_buf_printf(out, "from %s", str_of(sc, "StartTime") ? str_of(sc, "StartTime") : "now");
    if (str_of(sc, "EndTime"))
        otr_buf_printf(out, " to %s", str_of(sc, "EndTime"));
    if (str_of(sc, "EndBehavior"))
        otr_buf_printf(out, " (then %s)", str_of(sc, "EndBehavior"));
    int i = 0;
    cJSON_ArrayForEach(w, windows)
    {
        otr_buf_puts(out, i++ ? ", " : ", in windows ");
        cron_words(str_of(w, "StartTime"), out);
        if (int_of(w, "DurationInMinutes") >= 0)
            otr_buf_printf(out, " for %ld min", int_of(w, "DurationInMinutes"));
    }
}

/* The members of a task's spec that a description reads, found in one pass
 * (a 10k-create plan describes each of them). */
typedef struct task_fields {
    const char *s3url, *ota_type, *protocol, *mechanism, *ref, *config_id;
    const cJSON *scheduling, *retry;
} task_fields;

static void task_fields_of(const cJSON *spec, task_fields *f)
{
    const cJSON *m;
    memset(f, 0, sizeof(*f));
    cJSON_ArrayForEach(m, spec)
    {
        const char *k = m->string, *v = cJSON_GetStringValue(m);
        if (!k)
            continue;
        if (!strcmp(k, "S3Url"))
            f->s3url = v;
        else if (!strcmp(k, "OtaType"))
            f->ota_type = v;
        else if (!strcmp(k, "Protocol"))
            f->protocol = v;
        else if (!strcmp(k, "OtaMechanism"))
            f->mechanism = v;
        else if (!strcmp(k, "TaskConfigurationRef"))
            f->ref = v;
        else if (!strcmp(k, "TaskConfigurationId"))
            f->config_id = v;
        else if (!strcmp(k, "OtaSchedulingConfig"))
            f->scheduling = m;
        else if (!strcmp(k, "OtaTaskExecutionRetryConfig"))
            f->retry = m;
    }
}

void otr_describe_task(const cJSON *spec, const char *refs, otr_buf *out)
{
    task_fields f;
    const cJSON *c;
    task_fields_of(spec, &f);
    if (f.s3url) {
        otr_buf_puts(out, "firmware ");
        otr_buf_puts(out, f.s3url);
    }
    sep(out);
    otr_buf_puts(out, f.ota_type ? f.ota_type : "?");
    if (f.protocol || f.mechanism) {
        otr_buf_puts(out, " over ");
        otr_buf_puts(out, f.protocol ? f.protocol : "");
        if (f.mechanism)
            otr_buf_printf(out, " (%s)", f.mechanism);
    }
    otr_describe_targets(spec, out);
    schedule(f.scheduling, out);
    int i = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(f.retry, "RetryConfigCriteria"))
    {
        if (!i++) {
            sep(out);
            otr_buf_puts(out, "retries");
        }
        otr_buf_printf(out, "%s %s ×%ld", i > 1 ? "," : "", str_of(c, "FailureType"),
                       int_of(c, "MinNumberOfRetries"));
    }
    if (f.ref || f.config_id) {
        sep(out);
        otr_buf_puts(out, "configuration ");
        otr_buf_puts(out, f.ref ? f.ref : f.config_id);
        if (refs)
            otr_buf_printf(out, " (%s)", refs);
    }
}

static void number(otr_buf *out, const cJSON *v)
{
    if (cJSON_IsNumber(v))
        otr_buf_printf(out, "%g", v->valuedouble);
    else
        otr_buf_putc(out, '?');
}

void otr_describe_configuration(const cJSON *spec, const char *refs, otr_buf *out)
{
    (void)refs; /* a configuration refers to nothing */
    const cJSON *push = cJSON_GetObjectItemCaseSensitive(spec, "PushConfig");
    const cJSON *rollout = cJSON_GetObjectItemCaseSensitive(push, "RolloutConfig");
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(rollout, "ExponentialRolloutRate");
    const cJSON *abort_cfg = cJSON_GetObjectItemCaseSensitive(push, "AbortConfig");
    const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(push, "TimeoutConfig"), *c;
    if (str_of(spec, "Name"))
        otr_buf_printf(out, "\"%s\"", str_of(spec, "Name"));
    if (rate) {
        sep(out);
        number(out, cJSON_GetObjectItemCaseSensitive(rate, "BaseRatePerMinute"));
        otr_buf_puts(out, "/min, ×");
        number(out, cJSON_GetObjectItemCaseSensitive(rate, "IncrementFactor"));
        const cJSON *crit = cJSON_GetObjectItemCaseSensitive(rate, "RateIncreaseCriteria");
        if (int_of(crit, "numberOfSucceededThings") >= 0)
            otr_buf_printf(out, " per %ld succeeded", int_of(crit, "numberOfSucceededThings"));
        if (int_of(crit, "numberOfNotifiedThings") >= 0)
            otr_buf_printf(out, " per %ld notified", int_of(crit, "numberOfNotifiedThings"));
    }
    if (cJSON_GetObjectItemCaseSensitive(rollout, "MaximumPerMinute")) {
        if (rate)
            otr_buf_puts(out, ", ");
        else
            sep(out);
        otr_buf_puts(out, "at most ");
        number(out, cJSON_GetObjectItemCaseSensitive(rollout, "MaximumPerMinute"));
        otr_buf_puts(out, "/min");
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(abort_cfg, "AbortConfigCriteriaList"))
    {
        sep(out);
        otr_buf_printf(out, "%s when ", str_of(c, "Action") ? str_of(c, "Action") : "?");
        number(out, cJSON_GetObjectItemCaseSensitive(c, "ThresholdPercentage"));
        otr_buf_printf(out, "%% of at least %ld executed %s",
                       int_of(c, "MinNumberOfExecutedThings"),
                       str_of(c, "FailureType") ? str_of(c, "FailureType") : "?");
    }
    if (int_of(timeout, "InProgressTimeoutInMinutes") >= 0) {
        sep(out);
        otr_buf_printf(out, "times out after %ld min",
                       int_of(timeout, "InProgressTimeoutInMinutes"));
    }
}
