/*
 * The field tables of ota-runner's manifests. Limits, enums and patterns are
 * the service model's (botocore's iot-managed-integrations 2025-03-03); the
 * date-time and cron formats are the service documentation's, checked here
 * so that a typo fails in review, not in the service.
 */
#include "manifest/schema.h"

#include "util/time.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- pattern and format checks ------------------------------------------ */

static int check_charset(const char *s, size_t len, otr_buf *why, int (*ok)(unsigned char))
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (ok(c))
            continue;
        if (c >= 0x20 && c < 0x7f)
            otr_buf_printf(why, "'%c' at position %zu is not allowed", c, i + 1);
        else
            otr_buf_printf(why, "byte 0x%02X at position %zu is not allowed", c, i + 1);
        return 0;
    }
    return 1;
}

static int description_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '-' || c == ' ';
}

static int alnum_char(unsigned char c)
{
    return isalnum(c) != 0;
}

/* OtaDescription: [0-9A-Za-z_\- ]+ (no dots, no punctuation). */
static int check_description(const char *s, size_t len, otr_buf *why)
{
    return check_charset(s, len, why, description_char);
}

/* OtaTaskConfigurationId: [a-zA-Z0-9]* */
static int check_alnum(const char *s, size_t len, otr_buf *why)
{
    return check_charset(s, len, why, alnum_char);
}

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* metadata.name: ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ (a DNS label). */
static int check_name(const char *s, size_t len, otr_buf *why)
{
    if (!check_charset(s, len, why, name_char))
        return 0;
    if (len && (s[0] == '-' || s[len - 1] == '-')) {
        otr_buf_puts(why, "it must start and end with a letter or digit");
        return 0;
    }
    return 1;
}

int otr_schema_check_name_value(const char *s, otr_buf *why)
{
    size_t len = strlen(s);
    if (len < 1 || len > 63) {
        otr_buf_puts(why, "a name has 1 to 63 characters");
        return 0;
    }
    return check_name(s, len, why);
}

static int label_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/';
}

static int check_label_key(const char *s, size_t len, otr_buf *why)
{
    return check_charset(s, len, why, label_char);
}

int otr_schema_check_datetime(const char *s, size_t len, otr_buf *why)
{
    int64_t t;
    if (strlen(s) == len && otr_time_parse_iso8601(s, &t) == 0)
        return 1;
    otr_buf_puts(why, "must be an ISO 8601 date-time such as 2026-12-01T02:00 or "
                      "2026-12-01T02:00:00Z");
    return 0;
}

long long otr_schema_datetime_epoch(const char *s)
{
    int64_t t = 0;
    otr_time_parse_iso8601(s, &t);
    return (long long)t;
}

/* cron(min hour day-of-month month day-of-week year): six fields. */
int otr_schema_check_cron(const char *s, size_t len, otr_buf *why)
{
    if (len < 7 || strncmp(s, "cron(", 5) != 0 || s[len - 1] != ')') {
        otr_buf_puts(why, "must be a cron expression such as cron(0 2 ? * MON-FRI *)");
        return 0;
    }
    int fields = 0, in_field = 0;
    for (size_t i = 5; i < len - 1; i++) {
        if (s[i] == ' ' || s[i] == '\t') {
            in_field = 0;
        } else if (!in_field) {
            in_field = 1;
            fields++;
        }
    }
    if (fields != 6) {
        otr_buf_printf(why,
                       "cron expression must have 6 fields (minutes hours day-of-month "
                       "month day-of-week year), got %d",
                       fields);
        return 0;
    }
    return 1;
}

/* ---- the tables ------------------------------------------------------------
 * Designated initializers: a field says only what it has. */

#define NO_DOUBLE_LIMIT .dmin = NAN, .dmax = NAN
#define STR(n, req, lo, hi)                                                                        \
    {                                                                                              \
        .name = n, .type = OTR_F_STRING, .required = req, .min = lo, .max = hi, NO_DOUBLE_LIMIT    \
    }
#define ENUM(n, e)                                                                                 \
    {                                                                                              \
        .name = n, .type = OTR_F_STRING, .min = OTR_NO_LIMIT, .max = OTR_NO_LIMIT, .enums = e,     \
        NO_DOUBLE_LIMIT                                                                            \
    }
#define CHECKED(n, req, lo, hi, fn, desc)                                                          \
    {                                                                                              \
        .name = n, .type = OTR_F_STRING, .required = req, .min = lo, .max = hi, .check = fn,       \
        .check_desc = desc, NO_DOUBLE_LIMIT                                                        \
    }
#define INT(n, lo, hi)                                                                             \
    {                                                                                              \
        .name = n, .type = OTR_F_INT, .min = lo, .max = hi, NO_DOUBLE_LIMIT                        \
    }
#define DOUBLE(n, lo, hi)                                                                          \
    {                                                                                              \
        .name = n, .type = OTR_F_DOUBLE, .min = OTR_NO_LIMIT, .max = OTR_NO_LIMIT, .dmin = lo,     \
        .dmax = hi                                                                                 \
    }
#define STRUCT_OF(n, req, m)                                                                       \
    {                                                                                              \
        .name = n, .type = OTR_F_STRUCT, .required = req, .min = OTR_NO_LIMIT,                     \
        .max = OTR_NO_LIMIT, .members = m, .nmembers = sizeof(m) / sizeof(m[0]), NO_DOUBLE_LIMIT   \
    }
#define STRUCT(n, m) STRUCT_OF(n, 0, m)
#define LIST(n, e)                                                                                 \
    {                                                                                              \
        .name = n, .type = OTR_F_LIST, .min = OTR_NO_LIMIT, .max = OTR_NO_LIMIT, .elem = e,        \
        NO_DOUBLE_LIMIT                                                                            \
    }
#define MAP(n, lo, hi, k, v)                                                                       \
    {                                                                                              \
        .name = n, .type = OTR_F_MAP, .min = lo, .max = hi, .elem = v, .key = k, NO_DOUBLE_LIMIT   \
    }
#define SPEC(m)                                                                                    \
    {                                                                                              \
        .name = "spec", .type = OTR_F_STRUCT, .required = 1, .min = OTR_NO_LIMIT,                  \
        .max = OTR_NO_LIMIT, .members = m, .nmembers = sizeof(m) / sizeof(m[0]), .spec_root = 1,   \
        NO_DOUBLE_LIMIT                                                                            \
    }

/* ---- CreateOtaTask ------------------------------------------------------- */

static const char *const ota_type_enum[] = {"ONE_TIME", "CONTINUOUS", NULL};
static const char *const protocol_enum[] = {"HTTP", NULL};
static const char *const mechanism_enum[] = {"PUSH", NULL};
static const char *const end_behavior_enum[] = {"STOP_ROLLOUT", "CANCEL", "FORCE_CANCEL", NULL};
static const char *const failure_type_enum[] = {"FAILED", "TIMED_OUT", "ALL", NULL};

static const otr_field any_string = STR("", 0, OTR_NO_LIMIT, OTR_NO_LIMIT);

static const otr_field window_members[] = {
    INT("DurationInMinutes", 1, 1430),
    CHECKED("StartTime", 0, OTR_NO_LIMIT, OTR_NO_LIMIT, otr_schema_check_cron, NULL),
};
static const otr_field window = STRUCT("", window_members);

static const otr_field scheduling_members[] = {
    ENUM("EndBehavior", end_behavior_enum),
    CHECKED("EndTime", 0, OTR_NO_LIMIT, OTR_NO_LIMIT, otr_schema_check_datetime, NULL),
    LIST("MaintenanceWindows", &window),
    CHECKED("StartTime", 0, OTR_NO_LIMIT, OTR_NO_LIMIT, otr_schema_check_datetime, NULL),
};

static const otr_field retry_criteria_members[] = {
    ENUM("FailureType", failure_type_enum),
    INT("MinNumberOfRetries", 0, 10),
};
static const otr_field retry_criteria = STRUCT("", retry_criteria_members);

static const otr_field retry_members[] = {
    LIST("RetryConfigCriteria", &retry_criteria),
};

static const otr_field tag_key = STR("", 0, 1, 128);
static const otr_field tag_value = STR("", 0, 0, 256);

#define DESCRIPTION                                                                                \
    CHECKED("Description", 0, 1, 256, check_description, "letters, digits, '_', '-' and spaces")

/* CreateOtaTask's fields but the targets: a task's, and a rollout's task
 * (whose waves give the targets), in three runs so that with the targets
 * between them the members stay sorted by name (otr_schema_member halves
 * the range). TaskConfigurationRef is ota-runner's own: the metadata.name
 * of an OtaTaskConfiguration in the same commit, sent as its
 * TaskConfigurationId. */
#define TASK_MEMBERS_FIRST                                                                         \
    DESCRIPTION, ENUM("OtaMechanism", mechanism_enum),                                             \
        STRUCT("OtaSchedulingConfig", scheduling_members)
#define TASK_MEMBERS_MIDDLE                                                                        \
    STRUCT("OtaTaskExecutionRetryConfig", retry_members),                                          \
        {.name = "OtaType",                                                                        \
         .type = OTR_F_STRING,                                                                     \
         .required = 1,                                                                            \
         .min = OTR_NO_LIMIT,                                                                      \
         .max = OTR_NO_LIMIT,                                                                      \
         .enums = ota_type_enum,                                                                   \
         NO_DOUBLE_LIMIT},                                                                         \
        ENUM("Protocol", protocol_enum), STR("S3Url", 1, 1, 1000),                                 \
        MAP("Tags", 1, 50, &tag_key, &tag_value)
#define TASK_MEMBERS_LAST                                                                          \
    CHECKED("TaskConfigurationId", 0, 1, 64, check_alnum, "letters and digits"),                   \
        CHECKED("TaskConfigurationRef", 0, 1, 63, check_name, "lowercase letters, digits and '-'")

#define TARGET_QUERY STR("OtaTargetQueryString", 0, OTR_NO_LIMIT, OTR_NO_LIMIT)
#define TARGET_LIST LIST("Target", &any_string)

static const otr_field spec_members[] = {TASK_MEMBERS_FIRST, TARGET_QUERY, TASK_MEMBERS_MIDDLE,
                                         TARGET_LIST, TASK_MEMBERS_LAST};

const otr_field otr_schema_ota_task_spec = SPEC(spec_members);

/* ---- CreateOtaTaskConfiguration ------------------------------------------- */

static const char *const abort_action_enum[] = {"CANCEL", NULL};
static const char *const abort_failure_enum[] = {"FAILED", "REJECTED", "TIMED_OUT", "ALL", NULL};

/* OtaTaskConfigurationName: [A-Za-z0-9-_ ]+ */
static int config_name_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == ' ';
}

static int check_config_name(const char *s, size_t len, otr_buf *why)
{
    return check_charset(s, len, why, config_name_char);
}

static const otr_field abort_criteria_members[] = {
    ENUM("Action", abort_action_enum),
    ENUM("FailureType", abort_failure_enum),
    INT("MinNumberOfExecutedThings", 1, 100),
    DOUBLE("ThresholdPercentage", NAN, 100),
};
static const otr_field abort_criteria = STRUCT("", abort_criteria_members);
static const otr_field abort_members[] = {
    LIST("AbortConfigCriteriaList", &abort_criteria),
};

/* the model spells these two with a lower-case first letter */
static const otr_field rate_increase_members[] = {
    INT("numberOfNotifiedThings", 1, 100),
    INT("numberOfSucceededThings", 1, 100),
};
static const otr_field exponential_members[] = {
    INT("BaseRatePerMinute", 1, 100),
    DOUBLE("IncrementFactor", 1.1, 5),
    STRUCT("RateIncreaseCriteria", rate_increase_members),
};
static const otr_field rollout_members[] = {
    STRUCT("ExponentialRolloutRate", exponential_members),
    INT("MaximumPerMinute", 1, 2147483647L), /* a 32-bit integer */
};
static const otr_field timeout_members[] = {
    INT("InProgressTimeoutInMinutes", 1, 10080),
};
static const otr_field push_members[] = {
    STRUCT("AbortConfig", abort_members),
    STRUCT("RolloutConfig", rollout_members),
    STRUCT("TimeoutConfig", timeout_members),
};

static const otr_field config_spec_members[] = {
    DESCRIPTION,
    CHECKED("Name", 0, 1, 128, check_config_name, "letters, digits, '-', '_' and spaces"),
    STRUCT("PushConfig", push_members),
};

const otr_field otr_schema_ota_task_configuration_spec = SPEC(config_spec_members);

/* ---- OtaRollout (ota-runner's own) ------------------------------------------ */

int otr_schema_check_duration(const char *s, size_t len, otr_buf *why)
{
    int64_t seconds;
    if (strlen(s) == len && otr_time_parse_duration(s, &seconds) == 0)
        return 1;
    otr_buf_puts(why, "must be a duration such as 30s, 15m, 2h, 1d or 1h30m (at most a year)");
    return 0;
}

static const otr_field gate_members[] = {
    CHECKED("deadline", 0, OTR_NO_LIMIT, OTR_NO_LIMIT, otr_schema_check_duration, NULL),
    DOUBLE("maxFailedPercent", 0, 100),
    INT("minFinished", 0, 2147483647L),
    DOUBLE("minSucceededPercent", 0, 100),
    CHECKED("soak", 0, OTR_NO_LIMIT, OTR_NO_LIMIT, otr_schema_check_duration, NULL),
};
const otr_field otr_schema_gate = STRUCT("gate", gate_members);

static const otr_field wave_members[] = {
    TARGET_QUERY,
    TARGET_LIST,
    STRUCT("gate", gate_members),
    CHECKED("name", 1, 1, 63, check_name, "lowercase letters, digits and '-'"),
};
static const otr_field wave = STRUCT("", wave_members);

static const otr_field rollout_task_members[] = {TASK_MEMBERS_FIRST, TASK_MEMBERS_MIDDLE,
                                                 TASK_MEMBERS_LAST};

/* after: {env, rollout, passed}: wait for a rollout of another environment
 * (ota-runner.yaml) to pass a wave, read from that environment's state. */
static const otr_field after_members[] = {
    CHECKED("env", 1, 1, 63, check_name, "lowercase letters, digits and '-'"),
    CHECKED("passed", 1, 1, 63, check_name, "lowercase letters, digits and '-'"),
    CHECKED("rollout", 1, 1, 63, check_name, "lowercase letters, digits and '-'"),
};

static const otr_field rollout_spec_members[] = {
    STRUCT("after", after_members),
    STRUCT("gate", gate_members),
    CHECKED("holdAfter", 0, 1, 63, check_name, "lowercase letters, digits and '-'"),
    {.name = "paused",
     .type = OTR_F_BOOL,
     .min = OTR_NO_LIMIT,
     .max = OTR_NO_LIMIT,
     NO_DOUBLE_LIMIT},
    {.name = "task",
     .type = OTR_F_STRUCT,
     .required = 1,
     .min = OTR_NO_LIMIT,
     .max = OTR_NO_LIMIT,
     .members = rollout_task_members,
     .nmembers = sizeof(rollout_task_members) / sizeof(rollout_task_members[0]),
     .spec_root = 1,
     NO_DOUBLE_LIMIT},
    {.name = "waves",
     .type = OTR_F_LIST,
     .required = 1,
     .min = 1,
     .max = OTR_ROLLOUT_MAX_WAVES,
     .elem = &wave,
     NO_DOUBLE_LIMIT},
};

const otr_field otr_schema_ota_rollout_spec = SPEC(rollout_spec_members);

/* ---- metadata -------------------------------------------------------------- */

static const otr_field label_key =
    CHECKED("", 0, 1, 63, check_label_key, "letters, digits, '-', '_', '.' and '/'");
static const otr_field label_value = STR("", 0, 0, 256);

static const otr_field previous_name =
    CHECKED("", 1, 1, 63, check_name, "lowercase letters, digits and '-'");

static const otr_field metadata_members[] = {
    MAP("labels", 0, 64, &label_key, &label_value),
    CHECKED("name", 1, 1, 63, check_name, "lowercase letters, digits and '-'"),
    {.name = "previousNames",
     .type = OTR_F_LIST,
     .min = 1,
     .max = 16,
     .elem = &previous_name,
     NO_DOUBLE_LIMIT},
    INT("revision", 1, 2147483647L),
};

/* ---- the whole manifest ---------------------------------------------------
 * One envelope per kind, the same but for its spec. */

static const char *const api_versions[] = {"ota-runner/v1", NULL};
static const char *const kinds[] = {"OtaTask", "OtaTaskConfiguration", "OtaRollout", NULL};

#define ENVELOPE(spec_field)                                                                       \
    {                                                                                              \
        {.name = "apiVersion",                                                                     \
         .type = OTR_F_STRING,                                                                     \
         .required = 1,                                                                            \
         .min = OTR_NO_LIMIT,                                                                      \
         .max = OTR_NO_LIMIT,                                                                      \
         .enums = api_versions,                                                                    \
         NO_DOUBLE_LIMIT},                                                                         \
            {.name = "kind",                                                                       \
             .type = OTR_F_STRING,                                                                 \
             .required = 1,                                                                        \
             .min = OTR_NO_LIMIT,                                                                  \
             .max = OTR_NO_LIMIT,                                                                  \
             .enums = kinds,                                                                       \
             NO_DOUBLE_LIMIT},                                                                     \
            STRUCT_OF("metadata", 1, metadata_members), spec_field,                                \
    }

static const otr_field ota_task_members[] = ENVELOPE(SPEC(spec_members));
const otr_field otr_schema_ota_task = STRUCT("", ota_task_members);

static const otr_field ota_task_configuration_members[] = ENVELOPE(SPEC(config_spec_members));
const otr_field otr_schema_ota_task_configuration = STRUCT("", ota_task_configuration_members);

static const otr_field ota_rollout_members[] = ENVELOPE(SPEC(rollout_spec_members));
const otr_field otr_schema_ota_rollout = STRUCT("", ota_rollout_members);

/* the envelope alone: spec is required, and checked by the kind's own table */
#define ANY_SPEC                                                                                   \
    {                                                                                              \
        .name = "spec", .type = OTR_F_ANY, .required = 1, .min = OTR_NO_LIMIT,                     \
        .max = OTR_NO_LIMIT, NO_DOUBLE_LIMIT                                                       \
    }
static const otr_field envelope_members[] = ENVELOPE(ANY_SPEC);
const otr_field otr_schema_envelope = STRUCT("", envelope_members);

/* ---- lookups ------------------------------------------------------------------ */

const otr_field *otr_schema_member(const otr_field *st, const char *name)
{
    /* members are sorted by name; halving the range with the first byte
     * compared before the rest (every key of every manifest comes here) */
    size_t lo = 0, hi = st->nmembers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = st->members[mid].name;
        int c = (unsigned char)name[0] - (unsigned char)m[0];
        if (!c && name[0])
            c = strcmp(name + 1, m + 1);
        if (!c)
            return &st->members[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Edit distance ignoring case, for did-you-mean: insertions, deletions,
 * substitutions and swaps of two neighbours ("plna" is one edit from "plan";
 * Damerau's optimal string alignment). Names here are short. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ai = tolower((unsigned char)a[i - 1]), bj = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ai != bj);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == bj && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The closest word by edit distance (at most a third of the name's length,
 * and at least 1), else the one word the name is a prefix of. */
static const char *closest(const char *const *words, size_t n, const char *name)
{
    const char *best = NULL, *prefixed = NULL;
    size_t best_d = (size_t)-1, len = strlen(name), prefixes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(words[i], name);
        if (d < best_d) {
            best_d = d;
            best = words[i];
        }
        if (len >= 3 && !strncasecmp(words[i], name, len)) {
            prefixed = words[i];
            prefixes++;
        }
    }
    size_t limit = len / 3 > 1 ? len / 3 : 1;
    if (best_d <= limit)
        return best;
    return prefixes == 1 ? prefixed : NULL;
}

const char *otr_schema_suggest(const otr_field *st, const char *name)
{
    const char *words[32];
    size_t n = 0;
    for (size_t i = 0; i < st->nmembers && n < 32; i++)
        words[n++] = st->members[i].name;
    return closest(words, n, name);
}

const char *otr_schema_suggest_word(const char *const *words, const char *name)
{
    size_t n = 0;
    while (words[n])
        n++;
    return closest(words, n, name);
}
