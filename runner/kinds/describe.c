/*
 * What a reviewer reads first about a task or a configuration, in words:
 * the firmware, who gets it, when, and how fast it goes and when it stops
 * (kind->describe). Only fields of the spec; nothing secret is in a spec.
 * A task is read from its spec's canonical JSON as text, member by member,
 * not made a tree: a plan of 10k creates describes each of them.
 */
#include "kinds/kind.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

/* Targets shown by name before "and N more". */
#define DESCRIBE_MAX_TARGETS 3

/* The text of a JSON value in a spec; at is NULL when there is none. */
typedef struct span {
    const char *at;
    size_t len;
} span;

/* The members of an object named in keys (NULL-ended), each into out at
 * its key's place. */
typedef struct pick {
    const char *const *keys;
    span *out;
} pick;

static int on_pick(void *ctx, const char *key, const char *value, size_t len, size_t offset)
{
    pick *p = ctx;
    (void)offset;
    for (size_t i = 0; p->keys[i]; i++) {
        if (!p->out[i].at && !strcmp(p->keys[i], key)) {
            p->out[i] = (span){value, len};
            break;
        }
    }
    return 0;
}

static void pick_members(span obj, const char *const *keys, span *out)
{
    pick p = {keys, out};
    size_t bad;
    for (size_t i = 0; keys[i]; i++)
        out[i] = (span){NULL, 0};
    if (obj.at && otr_json_each_member(obj.at, obj.len, on_pick, &p, &bad) < 0)
        for (size_t i = 0; keys[i]; i++) /* not an object: nothing in it */
            out[i] = (span){NULL, 0};
}

/* The string v unescaped into tmp (its contents replaced), or NULL when v
 * is not a string. */
static const char *str_of(span v, otr_buf *tmp)
{
    size_t bad;
    otr_buf_clear(tmp);
    if (!v.at || v.len < 2 || v.at[0] != '"')
        return NULL;
    if (!memchr(v.at + 1, '\\', v.len - 2)) {
        otr_buf_append(tmp, v.at + 1, v.len - 2);
        return otr_buf_cstr(tmp);
    }
    cJSON *s = otr_json_parse_span(v.at, v.len, &bad);
    if (cJSON_IsString(s))
        otr_buf_puts(tmp, s->valuestring);
    cJSON_Delete(s);
    return otr_buf_cstr(tmp);
}

/* The number v as a whole number (what (long) makes of it), or -1 when v
 * is not a number. */
static long int_of(span v)
{
    char text[64];
    if (!v.at || v.len >= sizeof(text) || !(v.at[0] == '-' || (v.at[0] >= '0' && v.at[0] <= '9')))
        return -1;
    memcpy(text, v.at, v.len);
    text[v.len] = '\0';
    return (long)strtod(text, NULL);
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

/* A task's Target: how many, and the first few while they are strings. */
typedef struct targets {
    size_t n, named;
    int strings; /* every element so far a string */
    span first[DESCRIBE_MAX_TARGETS];
} targets;

static int on_target(void *ctx, const char *value, size_t len, size_t index)
{
    targets *t = ctx;
    (void)index;
    t->n++;
    t->strings = t->strings && value[0] == '"';
    if (t->strings && t->named < DESCRIBE_MAX_TARGETS)
        t->first[t->named++] = (span){value, len};
    return 0;
}

static void describe_targets(span list, span query, otr_buf *out, otr_buf *tmp)
{
    targets t = {0, 0, 1, {{NULL, 0}}};
    if (list.at) {
        if (otr_json_each_element(list.at, list.len, on_target, &t) < 0)
            t.n = t.named = 0; /* not an array: no elements */
        sep(out);
        otr_buf_put_long(out, (long long)t.n);
        otr_buf_puts(out, t.n == 1 ? " thing" : " things");
        for (size_t i = 0; i < t.named; i++) {
            otr_buf_puts(out, i ? ", " : ": ");
            otr_buf_puts(out, short_arn(str_of(t.first[i], tmp)));
        }
        if (t.n > t.named) {
            otr_buf_puts(out, " and ");
            otr_buf_put_long(out, (long long)(t.n - t.named));
            otr_buf_puts(out, " more");
        }
    }
    const char *q = str_of(query, tmp);
    if (q) {
        sep(out);
        otr_buf_puts(out, "the things of \"");
        otr_buf_puts(out, q);
        otr_buf_putc(out, '"');
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

/* Each maintenance window: "Mon-Fri 02:00 for 60 min". */
typedef struct windows {
    otr_buf *out, *tmp;
} windows;

static int on_window(void *ctx, const char *value, size_t len, size_t index)
{
    static const char *const keys[] = {"DurationInMinutes", "StartTime", NULL};
    windows *w = ctx;
    span m[2];
    pick_members((span){value, len}, keys, m);
    otr_buf_puts(w->out, index ? ", " : ", in windows ");
    cron_words(str_of(m[1], w->tmp), w->out);
    if (int_of(m[0]) >= 0) {
        otr_buf_puts(w->out, " for ");
        otr_buf_put_long(w->out, int_of(m[0]));
        otr_buf_puts(w->out, " min");
    }
    return 0;
}

static void schedule(span sc, otr_buf *out, otr_buf *tmp)
{
    static const char *const keys[] = {"EndBehavior", "EndTime", "MaintenanceWindows", "StartTime",
                                       NULL};
    span m[4];
    if (!sc.at)
        return;
    pick_members(sc, keys, m);
    sep(out);
    const char *v = str_of(m[3], tmp);
    otr_buf_puts(out, "from ");
    otr_buf_puts(out, v ? v : "now");
    if ((v = str_of(m[1], tmp))) {
        otr_buf_puts(out, " to ");
        otr_buf_puts(out, v);
    }
    if ((v = str_of(m[0], tmp))) {
        otr_buf_puts(out, " (then ");
        otr_buf_puts(out, v);
        otr_buf_putc(out, ')');
    }
    windows w = {out, tmp};
    if (m[2].at)
        (void)otr_json_each_element(m[2].at, m[2].len, on_window, &w);
}

/* Each retry criterion: "FAILED ×3". */
static int on_retry(void *ctx, const char *value, size_t len, size_t index)
{
    static const char *const keys[] = {"FailureType", "MinNumberOfRetries", NULL};
    windows *w = ctx; /* the same pair of buffers */
    span m[2];
    pick_members((span){value, len}, keys, m);
    if (!index) {
        sep(w->out);
        otr_buf_puts(w->out, "retries");
    }
    const char *type = str_of(m[0], w->tmp);
    otr_buf_puts(w->out, index ? ", " : " ");
    otr_buf_puts(w->out, type ? type : "?");
    otr_buf_puts(w->out, " ×");
    otr_buf_put_long(w->out, int_of(m[1]));
    return 0;
}

/* The members of a task's spec that a description reads. */
enum {
    T_SCHEDULING,
    T_QUERY,
    T_RETRY,
    T_TYPE,
    T_PROTOCOL,
    T_MECHANISM,
    T_S3URL,
    T_TARGET,
    T_CONFIG_ID,
    T_REF,
    T_COUNT
};

static const char *const task_keys[T_COUNT + 1] = {
    [T_SCHEDULING] = "OtaSchedulingConfig",
    [T_QUERY] = "OtaTargetQueryString",
    [T_RETRY] = "OtaTaskExecutionRetryConfig",
    [T_TYPE] = "OtaType",
    [T_PROTOCOL] = "Protocol",
    [T_MECHANISM] = "OtaMechanism",
    [T_S3URL] = "S3Url",
    [T_TARGET] = "Target",
    [T_CONFIG_ID] = "TaskConfigurationId",
    [T_REF] = "TaskConfigurationRef",
    [T_COUNT] = NULL,
};

void otr_describe_task_json(const char *json, size_t len, const char *refs, otr_buf *out)
{
    static const char *const retry_keys[] = {"RetryConfigCriteria", NULL};
    span f[T_COUNT], criteria;
    otr_buf tmp = OTR_BUF_INIT;
    const char *v;
    pick_members((span){json, json ? len : 0}, task_keys, f);
    if ((v = str_of(f[T_S3URL], &tmp))) {
        otr_buf_puts(out, "firmware ");
        otr_buf_puts(out, v);
    }
    sep(out);
    otr_buf_puts(out, (v = str_of(f[T_TYPE], &tmp)) ? v : "?");
    int protocol = str_of(f[T_PROTOCOL], &tmp) != NULL;
    if (protocol || str_of(f[T_MECHANISM], &tmp)) {
        otr_buf_puts(out, " over ");
        otr_buf_puts(out, (v = str_of(f[T_PROTOCOL], &tmp)) ? v : "");
        if ((v = str_of(f[T_MECHANISM], &tmp))) {
            otr_buf_puts(out, " (");
            otr_buf_puts(out, v);
            otr_buf_putc(out, ')');
        }
    }
    describe_targets(f[T_TARGET], f[T_QUERY], out, &tmp);
    schedule(f[T_SCHEDULING], out, &tmp);
    pick_members(f[T_RETRY], retry_keys, &criteria);
    windows w = {out, &tmp};
    if (criteria.at)
        (void)otr_json_each_element(criteria.at, criteria.len, on_retry, &w);
    if ((v = str_of(f[T_REF], &tmp)) || (v = str_of(f[T_CONFIG_ID], &tmp))) {
        sep(out);
        otr_buf_puts(out, "configuration ");
        otr_buf_puts(out, v);
        if (refs) {
            otr_buf_puts(out, " (");
            otr_buf_puts(out, refs);
            otr_buf_putc(out, ')');
        }
    }
    otr_buf_free(&tmp);
}

void otr_describe_task(const char *spec_json, const char *refs, otr_buf *out)
{
    otr_describe_task_json(spec_json, spec_json ? strlen(spec_json) : 0, refs, out);
}

static void number(otr_buf *out, const cJSON *v)
{
    if (cJSON_IsNumber(v))
        otr_buf_printf(out, "%g", v->valuedouble);
    else
        otr_buf_putc(out, '?');
}

static const char *cj_str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static long cj_int(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
}

/* A configuration (a fleet has few): read as a tree. */
static void describe_configuration(const cJSON *spec, otr_buf *out)
{
    const cJSON *push = cJSON_GetObjectItemCaseSensitive(spec, "PushConfig");
    const cJSON *rollout = cJSON_GetObjectItemCaseSensitive(push, "RolloutConfig");
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(rollout, "ExponentialRolloutRate");
    const cJSON *abort_cfg = cJSON_GetObjectItemCaseSensitive(push, "AbortConfig");
    const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(push, "TimeoutConfig"), *c;
    if (cj_str(spec, "Name"))
        otr_buf_printf(out, "\"%s\"", cj_str(spec, "Name"));
    if (rate) {
        sep(out);
        number(out, cJSON_GetObjectItemCaseSensitive(rate, "BaseRatePerMinute"));
        otr_buf_puts(out, "/min, ×");
        number(out, cJSON_GetObjectItemCaseSensitive(rate, "IncrementFactor"));
        const cJSON *crit = cJSON_GetObjectItemCaseSensitive(rate, "RateIncreaseCriteria");
        if (cj_int(crit, "numberOfSucceededThings") >= 0)
            otr_buf_printf(out, " per %ld succeeded", cj_int(crit, "numberOfSucceededThings"));
        if (cj_int(crit, "numberOfNotifiedThings") >= 0)
            otr_buf_printf(out, " per %ld notified", cj_int(crit, "numberOfNotifiedThings"));
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
        otr_buf_printf(out, "%s when ", cj_str(c, "Action") ? cj_str(c, "Action") : "?");
        number(out, cJSON_GetObjectItemCaseSensitive(c, "ThresholdPercentage"));
        otr_buf_printf(out, "%% of at least %ld executed %s",
                       cj_int(c, "MinNumberOfExecutedThings"),
                       cj_str(c, "FailureType") ? cj_str(c, "FailureType") : "?");
    }
    if (cj_int(timeout, "InProgressTimeoutInMinutes") >= 0) {
        sep(out);
        otr_buf_printf(out, "times out after %ld min",
                       cj_int(timeout, "InProgressTimeoutInMinutes"));
    }
}

void otr_describe_configuration(const char *spec_json, const char *refs, otr_buf *out)
{
    (void)refs; /* a configuration refers to nothing */
    cJSON *spec = spec_json ? cJSON_Parse(spec_json) : NULL;
    if (spec)
        describe_configuration(spec, out);
    cJSON_Delete(spec);
}
