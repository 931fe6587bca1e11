/*
 * Manifest validation: for every rule, a manifest that passes and one that
 * fails with the exact message, line and column a user would see.
 */
#include "kinds/kind.h"
#include "kinds/loader.h"
#include "kinds/manifest.h"
#include "manifest/schema.h"
#include "manifest/token.h"
#include "manifest/validate.h"
#include "manifest/yaml.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lines 1-6; a case's own lines start at line 7 (spec members at column 3). */
#define HEAD                                                                                       \
    "apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata:\n  name: t\nspec:\n"                      \
    "  S3Url: s3://b/k\n"
#define BASE HEAD "  OtaType: ONE_TIME\n"

typedef struct vcase {
    const char *yaml;
    const char *first; /* first diagnostic as "line:col: error: field: message", NULL: valid */
    size_t errors;     /* 0: exactly one when first is set */
} vcase;

/* Loads one file "m.yaml" and returns the formatted diagnostics. */
static char *diagnose(const char *yaml, size_t len, size_t *errors, otr_manifest_set *keep)
{
    otr_manifest_set set = OTR_MANIFEST_SET_INIT;
    otr_diags d = OTR_DIAGS_INIT;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_manifest_add_file(&set, 0, "m.yaml", yaml, len, &d, &err), 0);
    assert_int_equal(otr_manifest_set_finish(&set, &d), 0);
    otr_buf out = OTR_BUF_INIT;
    for (size_t i = 0; i < d.count; i++) {
        otr_diag_format(&d.items[i], &out);
        otr_buf_putc(&out, '\n');
    }
    *errors = d.errors;
    otr_diags_free(&d);
    if (keep)
        *keep = set;
    else
        otr_manifest_set_free(&set);
    return otr_buf_detach(&out);
}

static void check_case(const vcase *c)
{
    size_t errors;
    char *got = diagnose(c->yaml, strlen(c->yaml), &errors, NULL);
    if (!c->first) {
        if (errors)
            fail_msg("expected valid, got:\n%s\nfor:\n%s", got, c->yaml);
    } else {
        char want[1024];
        snprintf(want, sizeof(want), "m.yaml:%s\n", c->first);
        size_t first_len = strcspn(got, "\n") + 1;
        if (strncmp(got, want, strlen(want)) != 0 || first_len != strlen(want))
            fail_msg("expected first diagnostic:\n%sgot:\n%sfor:\n%s", want, got, c->yaml);
        size_t want_errors = c->errors ? c->errors : 1;
        if (errors != want_errors)
            fail_msg("expected %zu errors, got %zu:\n%s", want_errors, errors, got);
    }
    free(got);
}

static void run_cases(const vcase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_case(&cases[i]);
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))

static void test_required_and_enums(void **state)
{
    (void)state;
    static const vcase cases[] = {
        {BASE, NULL, 0},
        {HEAD, "6:3: error: spec.OtaType: required field is missing", 0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata:\n  name: t\nspec:\n  OtaType: "
         "ONE_TIME\n",
         "6:3: error: spec.S3Url: required field is missing", 0},
        {HEAD "  OtaType: CONTINUOUS\n", NULL, 0},
        {HEAD "  OtaType: ONETIME\n",
         "7:12: error: spec.OtaType: must be ONE_TIME or CONTINUOUS, got \"ONETIME\"; did you mean "
         "ONE_TIME?",
         0},
        {HEAD "  OtaType: weekly\n",
         "7:12: error: spec.OtaType: must be ONE_TIME or CONTINUOUS, got \"weekly\"", 0},
        {BASE "  Protocol: HTTP\n  OtaMechanism: PUSH\n", NULL, 0},
        {BASE "  Protocol: MQTT\n", "8:13: error: spec.Protocol: must be HTTP, got \"MQTT\"", 0},
        {BASE "  OtaMechanism: PULL\n",
         "8:17: error: spec.OtaMechanism: must be PUSH, got \"PULL\"", 0},
        {BASE "  OtaSchedulingConfig:\n    EndBehavior: CANCEL\n", NULL, 0},
        {BASE "  OtaSchedulingConfig:\n    EndBehavior: STOP\n",
         "9:18: error: spec.OtaSchedulingConfig.EndBehavior: must be STOP_ROLLOUT, CANCEL or "
         "FORCE_CANCEL, got \"STOP\"; did you mean STOP_ROLLOUT?",
         0},
        {BASE
         "  OtaTaskExecutionRetryConfig:\n    RetryConfigCriteria:\n      - FailureType: ALL\n",
         NULL, 0},
        {BASE
         "  OtaTaskExecutionRetryConfig:\n    RetryConfigCriteria:\n      - FailureType: FAIL\n",
         "10:22: error: spec.OtaTaskExecutionRetryConfig.RetryConfigCriteria[0].FailureType: must "
         "be FAILED, TIMED_OUT or ALL, got \"FAIL\"; did you mean FAILED?",
         0},
    };
    RUN(cases);
}

static void test_strings(void **state)
{
    (void)state;
    static char long_url[1100], long_desc[300], ok_url[1100];
    snprintf(ok_url, sizeof(ok_url), BASE "  Description: %.*s\n", 0, "");
    memset(long_desc, 'a', 257);
    long_desc[257] = '\0';
    static char desc_yaml[600], url_yaml[1200], ok_url_yaml[1200];
    snprintf(desc_yaml, sizeof(desc_yaml), BASE "  Description: %s\n", long_desc);
    memset(long_url, 'u', 1001);
    long_url[1001] = '\0';
    snprintf(url_yaml, sizeof(url_yaml),
             "apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata:\n  name: t\nspec:\n"
             "  OtaType: ONE_TIME\n  S3Url: %s\n",
             long_url);
    long_url[1000] = '\0';
    snprintf(ok_url_yaml, sizeof(ok_url_yaml),
             "apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata:\n  name: t\nspec:\n"
             "  OtaType: ONE_TIME\n  S3Url: %s\n",
             long_url);
    const vcase cases[] = {
        {BASE "  Description: Thermostat firmware 2-4-1_rc\n", NULL, 0},
        {BASE "  Description: Firmware 2.4.1\n",
         "8:16: error: spec.Description: must contain only letters, digits, '_', '-' and spaces, "
         "got \"Firmware 2.4.1\" ('.' at position 11 is not allowed)",
         0},
        {BASE "  Description: \"\"\n",
         "8:16: error: spec.Description: must be 1 to 256 characters, got 0", 0},
        {desc_yaml, "8:16: error: spec.Description: must be 1 to 256 characters, got 257", 0},
        {BASE "  Description: \"2024\"\n", NULL, 0},
        {BASE "  Description: 2024\n",
         "8:16: error: spec.Description: must be a string, got an integer 2024 (put it in quotes)",
         0},
        {BASE "  Description: yes\n",
         "8:16: error: spec.Description: must be a string, got a boolean yes (put it in quotes)",
         0},
        {BASE "  Tags: {tier: 1.5}\n",
         "8:16: error: spec.Tags.tier: must be a string, got a float 1.5 (put it in quotes)", 0},
        {BASE "  Description: 2026-12-01\n",
         "8:16: error: spec.Description: must be a string, got a timestamp 2026-12-01 (put it in "
         "quotes)",
         0},
        {BASE "  Description: 1e5 x\n", NULL, 0},
        {ok_url_yaml, NULL, 0},
        {url_yaml, "7:10: error: spec.S3Url: must be 1 to 1000 characters, got 1001", 0},
        {BASE "  TaskConfigurationId: abc123XYZ\n", NULL, 0},
        {BASE "  TaskConfigurationId: abc-123\n",
         "8:24: error: spec.TaskConfigurationId: must contain only letters and digits, got "
         "\"abc-123\" ('-' at position 4 is not allowed)",
         0},
        {BASE "  TaskConfigurationId: "
              "a234567890123456789012345678901234567890123456789012345678901234z\n",
         "8:24: error: spec.TaskConfigurationId: must be 1 to 64 characters, got 65", 0},
        {BASE "  OtaTargetQueryString: \"thingType:Hub\"\n", NULL, 0},
        {BASE "  Description:\n", "8:15: error: spec.Description: must be a string, got null", 0},
        {BASE "  Description: [a, b]\n",
         "8:16: error: spec.Description: must be a string, got a list", 0},
        {BASE "  S3Url: {a: b}\n",
         "8:3: error: spec.S3Url: duplicate key (first at line 6, column 3)", 0},
    };
    (void)ok_url;
    RUN(cases);
}

static void test_lists_and_maps(void **state)
{
    (void)state;
    static char tags51[2000], tags48[2000], tags47[2000], longkey[400], longval[400];
    otr_buf b = OTR_BUF_INIT;
    for (int i = 0; i < 51; i++)
        otr_buf_printf(&b, "%sk%d: v", i ? ", " : "", i);
    snprintf(tags51, sizeof(tags51), BASE "  Tags: {%s}\n", b.ptr);
    for (int i = 0; i < 3; i++)
        *strrchr(b.ptr, ',') = '\0';
    snprintf(tags48, sizeof(tags48), BASE "  Tags: {%s}\n", b.ptr); /* one too many */
    *strrchr(b.ptr, ',') = '\0';
    snprintf(tags47, sizeof(tags47), BASE "  Tags: {%s}\n", b.ptr);
    otr_buf_free(&b);
    char k[130], v[260];
    memset(k, 'k', 129);
    k[129] = '\0';
    memset(v, 'v', 257);
    v[257] = '\0';
    snprintf(longkey, sizeof(longkey), BASE "  Tags:\n    %s: x\n", k);
    snprintf(longval, sizeof(longval), BASE "  Tags:\n    team: %s\n", v);
    const vcase cases[] = {
        {BASE "  Target: [arn:a, arn:b]\n", NULL, 0},
        {BASE "  Target: []\n", NULL, 0},
        {BASE "  Target: arn:a\n", "8:11: error: spec.Target: must be a list, got a string", 0},
        {BASE "  Target:\n    - arn:a\n    - {x: 1}\n",
         "10:7: error: spec.Target[1]: must be a string, got a mapping", 0},
        {tags47, NULL, 0},
        {tags48,
         "8:9: error: spec.Tags: has 48 tags; at most 47: the service takes 50, and ota-runner "
         "adds its own 3",
         0},
        {BASE "  Tags: {team: a, ota-runner:address: OtaTask/x}\n",
         "8:39: error: spec.Tags.ota-runner:address: the tag prefix ota-runner: is ota-runner's "
         "own: it tags what it creates with ota-runner:address and ota-runner:revision, to find "
         "it again if the state is lost; use another key",
         0},
        {tags51, "8:9: error: spec.Tags: must have 1 to 50 entries, got 51", 0},
        {BASE "  Tags: {}\n", "8:9: error: spec.Tags: must have 1 to 50 entries, got 0", 0},
        {longkey,
         "9:5: error: spec.Tags."
         "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
         "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: key "
         "must be 1 to 128 characters, got 129",
         0},
        {longval, "9:11: error: spec.Tags.team: must be at most 256 characters, got 257", 0},
        {BASE "  Tags: {team: a, team: b}\n",
         "8:19: error: spec.Tags.team: duplicate key (first at line 8, column 10)", 0},
        {BASE "  Tags: [team]\n", "8:9: error: spec.Tags: must be a mapping, got a list", 0},
    };
    RUN(cases);
}

static void test_integers(void **state)
{
    (void)state;
#define WIN                                                                                        \
    BASE "  OtaSchedulingConfig:\n    MaintenanceWindows:\n      - StartTime: cron(0 2 ? * "       \
         "MON-FRI *)\n        DurationInMinutes: "
#define RETRY                                                                                      \
    BASE "  OtaTaskExecutionRetryConfig:\n    RetryConfigCriteria:\n      - MinNumberOfRetries: "
    static const vcase cases[] = {
        {WIN "1\n", NULL, 0},
        {WIN "1430\n", NULL, 0},
        {WIN "0\n",
         "11:28: error: spec.OtaSchedulingConfig.MaintenanceWindows[0].DurationInMinutes: "
         "must be between 1 and 1430, got 0",
         0},
        {WIN "1431\n",
         "11:28: error: spec.OtaSchedulingConfig.MaintenanceWindows[0].DurationInMinutes: "
         "must be between 1 and 1430, got 1431",
         0},
        {WIN "\"180\"\n",
         "11:28: error: spec.OtaSchedulingConfig.MaintenanceWindows[0].DurationInMinutes: "
         "must be an integer, got a quoted string \"180\"",
         0},
        {WIN "2.5\n",
         "11:28: error: spec.OtaSchedulingConfig.MaintenanceWindows[0].DurationInMinutes: "
         "must be an integer, got a float \"2.5\"",
         0},
        {WIN "0180\n",
         "11:28: error: spec.OtaSchedulingConfig.MaintenanceWindows[0].DurationInMinutes: "
         "must be a decimal integer without leading zeros, got 0180",
         0},
        {WIN "0x10\n",
         "11:28: error: spec.OtaSchedulingConfig.MaintenanceWindows[0].DurationInMinutes: "
         "must be a plain decimal integer, got 0x10",
         0},
        {WIN "1_000\n",
         "11:28: error: spec.OtaSchedulingConfig.MaintenanceWindows[0].DurationInMinutes: "
         "must be a plain decimal integer, got 1_000",
         0},
        {WIN "\n",
         "11:27: error: spec.OtaSchedulingConfig.MaintenanceWindows[0].DurationInMinutes: "
         "must be an integer, got null",
         0},
        {WIN "99999999999999999999999\n",
         "11:28: error: spec.OtaSchedulingConfig.MaintenanceWindows[0].DurationInMinutes: must be "
         "between 1 and 1430, got 99999999999999999999999",
         0},
        {RETRY "0\n", NULL, 0},
        {RETRY "10\n", NULL, 0},
        {RETRY "11\n",
         "10:29: error: spec.OtaTaskExecutionRetryConfig.RetryConfigCriteria[0]."
         "MinNumberOfRetries: must be between 0 and 10, got 11",
         0},
        {RETRY "-1\n",
         "10:29: error: spec.OtaTaskExecutionRetryConfig.RetryConfigCriteria[0]."
         "MinNumberOfRetries: must be between 0 and 10, got -1",
         0},
        {RETRY "true\n",
         "10:29: error: spec.OtaTaskExecutionRetryConfig.RetryConfigCriteria[0]."
         "MinNumberOfRetries: must be an integer, got a boolean \"true\"",
         0},
    };
    RUN(cases);
}

static void test_schedule(void **state)
{
    (void)state;
#define SCHED BASE "  OtaSchedulingConfig:\n"
    static const vcase cases[] = {
        {SCHED "    StartTime: \"2026-12-01T02:00\"\n    EndTime: \"2026-12-08T02:00:30.5Z\"\n",
         NULL, 0},
        {SCHED "    StartTime: \"2026-12-01T02:00+01:00\"\n    EndTime: \"2026-12-01T01:30Z\"\n",
         NULL, 0},
        {SCHED "    StartTime: \"2026-12-01\"\n",
         "9:16: error: spec.OtaSchedulingConfig.StartTime: must be an ISO 8601 date-time such as "
         "2026-12-01T02:00 or 2026-12-01T02:00:00Z, got \"2026-12-01\"",
         0},
        {SCHED "    StartTime: \"2026-02-30T02:00\"\n",
         "9:16: error: spec.OtaSchedulingConfig.StartTime: must be an ISO 8601 date-time such as "
         "2026-12-01T02:00 or 2026-12-01T02:00:00Z, got \"2026-02-30T02:00\"",
         0},
        {SCHED "    StartTime: \"2026-12-08T02:00\"\n    EndTime: \"2026-12-01T02:00\"\n",
         "10:14: error: spec.OtaSchedulingConfig.EndTime: must be later than StartTime "
         "(2026-12-08T02:00), got \"2026-12-01T02:00\"",
         0},
        {SCHED "    StartTime: \"2026-12-01T02:00Z\"\n    EndTime: \"2026-12-01T02:30+01:00\"\n",
         "10:14: error: spec.OtaSchedulingConfig.EndTime: must be later than StartTime "
         "(2026-12-01T02:00Z), got \"2026-12-01T02:30+01:00\"",
         0},
        {SCHED "    MaintenanceWindows:\n      - {StartTime: \"cron(0 2 * * ? *)\"}\n", NULL, 0},
        {SCHED "    MaintenanceWindows:\n      - {StartTime: \"cron(0 2 * * ?)\"}\n",
         "10:21: error: spec.OtaSchedulingConfig.MaintenanceWindows[0].StartTime: cron "
         "expression must have 6 fields (minutes hours day-of-month month day-of-week year), "
         "got 5, got \"cron(0 2 * * ?)\"",
         0},
        {SCHED "    MaintenanceWindows:\n      - {StartTime: \"0 2 * * ? *\"}\n",
         "10:21: error: spec.OtaSchedulingConfig.MaintenanceWindows[0].StartTime: must be a cron "
         "expression such as cron(0 2 ? * MON-FRI *), got \"0 2 * * ? *\"",
         0},
        {SCHED "    MaintenanceWindows: {StartTime: x}\n",
         "9:25: error: spec.OtaSchedulingConfig.MaintenanceWindows: must be a list, got a mapping",
         0},
    };
    RUN(cases);
}

static void test_keys(void **state)
{
    (void)state;
    static const vcase cases[] = {
        {BASE "  OtaTyp: ONE_TIME\n",
         "8:3: error: spec.OtaTyp: unknown field; did you mean OtaType?", 0},
        {BASE "  s3url: x\n", "8:3: error: spec.s3url: unknown field; did you mean S3Url?", 0},
        {BASE "  Firmware: x\n",
         "8:3: error: spec.Firmware: unknown field (expected one of: Description, OtaMechanism, "
         "OtaSchedulingConfig, OtaTargetQueryString, OtaTaskExecutionRetryConfig, OtaType, "
         "Protocol, S3Url, Tags, Target, TaskConfigurationId, TaskConfigurationRef)",
         0},
        {BASE "  OtaType: CONTINUOUS\n",
         "8:3: error: spec.OtaType: duplicate key (first at line 7, column 3)", 0},
        {BASE "  ClientToken: abc\n",
         "8:3: error: spec.ClientToken: ClientToken must not be set: ota-runner derives it from "
         "the manifest (bump metadata.revision to get a fresh one)",
         0},
        {BASE "  OtaSchedulingConfig:\n    Start: \"2026-12-01T02:00\"\n",
         "9:5: error: spec.OtaSchedulingConfig.Start: unknown field; did you mean StartTime?", 0},
        {BASE "  [a]: b\n", "8:3: error: spec: keys must be strings, got a list", 0},
        {BASE "extra: 1\n",
         "8:1: error: extra: unknown field (expected one of: apiVersion, kind, "
         "metadata, spec)",
         0},
    };
    RUN(cases);
}

static void test_envelope(void **state)
{
    (void)state;
    static const vcase cases[] = {
        {"apiVersion: ota-runner/v2\nkind: OtaTask\nmetadata: {name: t}\nspec: {S3Url: x, OtaType: "
         "ONE_TIME}\n",
         "1:13: error: apiVersion: must be ota-runner/v1, got \"ota-runner/v2\"; did you mean "
         "ota-runner/v1?",
         0},
        {"apiVersion: ota-runner/v1\nkind: OtaRollouts\nmetadata: {name: t}\nspec: {S3Url: x, "
         "OtaType: ONE_TIME}\n",
         "2:7: error: kind: must be OtaTask, OtaTaskConfiguration or OtaRollout, got "
         "\"OtaRollouts\"; did you mean OtaRollout?",
         0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nspec: {S3Url: x, OtaType: ONE_TIME}\n",
         "1:1: error: metadata: required field is missing", 0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: t}\n",
         "1:1: error: spec: required field is missing", 0},
        {"kind: OtaTask\nmetadata: {name: t}\nspec: {S3Url: x, OtaType: ONE_TIME}\n",
         "1:1: error: apiVersion: required field is missing", 0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {labels: {a: b}}\nspec: {S3Url: x, "
         "OtaType: ONE_TIME}\n",
         "3:11: error: metadata.name: required field is missing", 0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: Thermostat}\nspec: {S3Url: x, "
         "OtaType: ONE_TIME}\n",
         "3:18: error: metadata.name: must contain only lowercase letters, digits and '-', got "
         "\"Thermostat\" ('T' at position 1 is not allowed)",
         0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: -t}\nspec: {S3Url: x, "
         "OtaType: ONE_TIME}\n",
         "3:18: error: metadata.name: must contain only lowercase letters, digits and '-', got "
         "\"-t\" (it must start and end with a letter or digit)",
         0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: "
         "a234567890123456789012345678901234567890123456789012345678901234}\nspec: {S3Url: x, "
         "OtaType: ONE_TIME}\n",
         "3:18: error: metadata.name: must be 1 to 63 characters, got 64", 0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: "
         "a23456789012345678901234567890123456789012345678901234567890123}\nspec: {S3Url: x, "
         "OtaType: ONE_TIME}\n",
         NULL, 0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: t, revision: 0}\nspec: "
         "{S3Url: x, OtaType: ONE_TIME}\n",
         "3:31: error: metadata.revision: must be between 1 and 2147483647, got 0", 0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: t, revision: '2'}\nspec: "
         "{S3Url: x, OtaType: ONE_TIME}\n",
         "3:31: error: metadata.revision: must be an integer, got a quoted string \"2\"", 0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: t, labels: {fleet: x, 'a b': "
         "y}}\nspec: {S3Url: x, OtaType: ONE_TIME}\n",
         "3:40: error: metadata.labels.a b: key must contain only letters, digits, '-', '_', '.' "
         "and '/', got \"a b\" (' ' at position 2 is not allowed)",
         0},
        {"- a\n- b\n",
         "1:1: error: a manifest must be a mapping with apiVersion, kind, metadata "
         "and spec, got a list",
         0},
        {"just a string\n",
         "1:1: error: a manifest must be a mapping with apiVersion, kind, "
         "metadata and spec, got a string",
         0},
        {"",
         "error: file holds no manifest (it is empty or only comments); delete it or add a "
         "manifest",
         0},
        {"# only a comment\n",
         "1:1: error: file holds no manifest (it is empty or only comments); "
         "delete it or add a manifest",
         0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].yaml[0] == '\0') { /* no position for an empty file */
            size_t errors;
            char *got = diagnose("", 0, &errors, NULL);
            assert_string_equal(got, "m.yaml: error: file holds no manifest (it is empty or only "
                                     "comments); delete it or add a manifest\n");
            free(got);
            continue;
        }
        check_case(&cases[i]);
    }
}

static void test_several_errors_all_reported_in_order(void **state)
{
    (void)state;
    const char *yaml = HEAD "  OtaType: NOPE\n  Protocol: FTP\n  Description: a.b\n---\n"
                            "apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: u}\n"
                            "spec: {S3Url: x, OtaType: ONE_TIME, Tags: {}}\n";
    size_t errors;
    char *got = diagnose(yaml, strlen(yaml), &errors, NULL);
    assert_int_equal(errors, 4);
    assert_string_equal(
        got, "m.yaml:7:12: error: spec.OtaType: must be ONE_TIME or CONTINUOUS, got \"NOPE\"\n"
             "m.yaml:8:13: error: spec.Protocol: must be HTTP, got \"FTP\"\n"
             "m.yaml:9:16: error: spec.Description: must contain only letters, digits, '_', '-' "
             "and spaces, got \"a.b\" ('.' at position 2 is not allowed)\n"
             "m.yaml:14:43: error: spec.Tags: must have 1 to 50 entries, got 0\n");
    free(got);
}

static void test_yaml_problems(void **state)
{
    (void)state;
    static const vcase cases[] = {
        {BASE "  Description: !custom x\n",
         "8:16: error: YAML tags are not supported (found !custom); write the value without a tag",
         0},
        {BASE "  Description: !!binary aGVsbG8=\n",
         "8:16: error: YAML tags are not supported (found tag:yaml.org,2002:binary); write the "
         "value without a tag",
         0},
        {BASE "  Description: *nope\n",
         "8:16: error: unknown alias *nope (anchors must be defined before use)", 0},
        {BASE "  Description: [unclosed\n",
         "9:1: error: yaml: did not find expected ',' or ']' while parsing a flow sequence (line "
         "8)",
         0},
        {BASE "\tTarget: []\n",
         "8:1: error: yaml: found a tab character that violates indentation while scanning a "
         "plain scalar (line 7)",
         0},
        {"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: t}\nspec:\n  S3Url: x\n"
         "  OtaType: ONE_TIME\n  Description: \"a\x01\"\n",
         "7:18: error: yaml: control characters are not allowed (byte 0x01)", 0},
    };
    RUN(cases);
}

/* A test-only shape: lists of lists of ... strings, 8 deep. */
static const otr_field str_field = {
    .name = "", .type = OTR_F_STRING, .min = OTR_NO_LIMIT, .max = OTR_NO_LIMIT};
#define NEST(id, inner)                                                                            \
    static const otr_field id = {                                                                  \
        .name = "", .type = OTR_F_LIST, .min = OTR_NO_LIMIT, .max = OTR_NO_LIMIT, .elem = &inner}
NEST(n1, str_field);
NEST(n2, n1);
NEST(n3, n2);
NEST(n4, n3);
NEST(n5, n4);
NEST(n6, n5);
NEST(n7, n6);
NEST(n8, n7);

static int walk_doc(otr_ydoc *doc, void *ctx)
{
    otr_vctx *v = ctx;
    otr_buf path = OTR_BUF_INIT;
    const otr_ynode *root = doc->root;
    otr_buf_puts(&path, "bomb");
    /* the last entry is "bomb: *l7" */
    cJSON_Delete(otr_validate_node(v, &n8, root->items[root->count - 1], &path));
    otr_buf_free(&path);
    otr_ydoc_free(doc);
    return 0;
}

static char *walk_nested_lists(const char *yaml, size_t len, size_t *errors)
{
    otr_diags d = OTR_DIAGS_INIT;
    otr_error err = OTR_ERROR_INIT;
    otr_vctx v;
    otr_vctx_init(&v, &d, "m.yaml", 0);
    assert_int_equal(otr_yaml_parse(yaml, len, "m.yaml", 0, &d, walk_doc, &v, &err), 0);
    otr_buf out = OTR_BUF_INIT;
    for (size_t i = 0; i < d.count; i++) {
        otr_diag_format(&d.items[i], &out);
        otr_buf_putc(&out, '\n');
    }
    *errors = d.errors;
    otr_diags_free(&d);
    return otr_buf_detach(&out);
}

/* YAML's nulls: the empty scalar, ~ and null in three spellings, plain
 * only; anything near them is a string. */
static int nulls_doc(otr_ydoc *doc, void *ctx)
{
    otr_buf *seen = ctx;
    for (size_t i = 0; i + 1 < doc->root->count; i += 2)
        otr_buf_putc(seen, otr_ynode_is_null(doc->root->items[i + 1]) ? '1' : '0');
    otr_ydoc_free(doc);
    return 0;
}

static void test_yaml_nulls(void **state)
{
    (void)state;
    const char *yaml = "a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: nul\ng: nulls\nh: n\n"
                       "i: \"null\"\nj: '~'\nk: nULL\nl: N\nm: x\n";
    otr_diags d = OTR_DIAGS_INIT;
    otr_error err = OTR_ERROR_INIT;
    otr_buf seen = OTR_BUF_INIT;
    assert_int_equal(otr_yaml_parse(yaml, strlen(yaml), "n.yaml", 0, &d, nulls_doc, &seen, &err),
                     0);
    assert_string_equal(otr_buf_cstr(&seen), "1111100000000");
    otr_buf_free(&seen);
    otr_diags_free(&d);
}

/* What a plain scalar resolves to, as YAML 1.1 reads it: each boolean in
 * its three spellings, words near them strings, numbers and timestamps. */
static int resolved_doc(otr_ydoc *doc, void *ctx)
{
    otr_buf *seen = ctx;
    for (size_t i = 0; i + 1 < doc->root->count; i += 2) {
        otr_buf_puts(seen, doc->root->items[i]->value);
        otr_buf_putc(seen, '=');
        otr_buf_puts(seen, otr_ynode_describe(doc->root->items[i + 1]));
        otr_buf_putc(seen, '\n');
    }
    otr_ydoc_free(doc);
    return 0;
}

static void test_yaml_resolved(void **state)
{
    (void)state;
    static const char *const bools[] = {"yes",  "Yes",  "YES",  "no",    "No",    "NO",
                                        "true", "True", "TRUE", "false", "False", "FALSE",
                                        "on",   "On",   "ON",   "off",   "Off",   "OFF"};
    static const char *const strings[] = {"yEs", "ye", "yess", "tru",   "oN", "Of", "offf",
                                          "y",   "n",  "NOo",  "fALSE", "x",  "o",  "t"};
    otr_buf yaml = OTR_BUF_INIT, want = OTR_BUF_INIT, seen = OTR_BUF_INIT;
    size_t k = 0;
    for (size_t i = 0; i < sizeof(bools) / sizeof(*bools); i++, k++) {
        otr_buf_printf(&yaml, "k%zu: %s\nq%zu: \"%s\"\n", k, bools[i], k, bools[i]);
        otr_buf_printf(&want, "k%zu=a boolean\nq%zu=a quoted string\n", k, k);
    }
    for (size_t i = 0; i < sizeof(strings) / sizeof(*strings); i++, k++) {
        otr_buf_printf(&yaml, "k%zu: %s\n", k, strings[i]);
        otr_buf_printf(&want, "k%zu=a string\n", k);
    }
    otr_buf_puts(&yaml, "i: 42\nj: -7\nf: 1.5\nt: 2026-12-06\nv: 1.2.3\n");
    otr_buf_puts(&want, "i=an integer\nj=an integer\nf=a float\nt=a timestamp\nv=a string\n");
    otr_diags d = OTR_DIAGS_INIT;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_yaml_parse(yaml.ptr, yaml.len, "r.yaml", 0, &d, resolved_doc, &seen, &err),
                     0);
    assert_string_equal(otr_buf_cstr(&seen), otr_buf_cstr(&want));
    otr_buf_free(&yaml);
    otr_buf_free(&want);
    otr_buf_free(&seen);
    otr_diags_free(&d);
}

static void test_anchors_and_budget(void **state)
{
    (void)state;
    const char *ok = HEAD "  OtaType: &t ONE_TIME\n  Description: *t\n";
    size_t errors;
    char *got = diagnose(ok, strlen(ok), &errors, NULL);
    assert_int_equal(errors, 0);
    free(got);

    /* Billion laughs into a list of strings: each level is 10 times the one
     * below. The type check stops the walk early, so this is quick... */
    otr_buf b = OTR_BUF_INIT;
    otr_buf_puts(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 9; i++)
        otr_buf_printf(&b,
                       "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
                       i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    otr_buf_puts(&b, BASE "  Tags: *a8\n");
    got = diagnose(b.ptr, b.len, &errors, NULL);
    assert_non_null(strstr(got, "a0: unknown field"));
    free(got);
    otr_buf_free(&b);

    /* ...as it does for every OtaTask field. A shape with nested lists shows
     * the budget itself: 10^7 nodes through aliases are refused. */
    otr_buf_puts(&b, "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 8; i++)
        otr_buf_printf(&b,
                       "l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n",
                       i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    otr_buf_puts(&b, "bomb: *l7\n");
    got = walk_nested_lists(b.ptr, b.len, &errors);
    assert_int_equal(errors, 1);
    /* one node past the budget: 10^6 strings and the lists above them */
    assert_string_equal(got, "m.yaml:1:34: error: bomb[0][0][8][9][9][9][9][8]: document expands "
                             "to more than 1000000 nodes through anchors and aliases; write it "
                             "out or simplify it\n");
    free(got);
    otr_buf_free(&b);
}

static void test_limits(void **state)
{
    (void)state;
    otr_buf b = OTR_BUF_INIT;
    otr_buf_puts(&b, BASE "  Target: ");
    for (int i = 0; i < 70; i++)
        otr_buf_putc(&b, '[');
    size_t errors;
    char *got = diagnose(b.ptr, b.len, &errors, NULL);
    assert_string_equal(got, "m.yaml:8:73: error: nesting deeper than 64 levels\n");
    free(got);
    otr_buf_free(&b);

    char *big = malloc(OTR_MANIFEST_MAX_FILE_SIZE + 2);
    memset(big, '#', OTR_MANIFEST_MAX_FILE_SIZE + 1);
    got = diagnose(big, OTR_MANIFEST_MAX_FILE_SIZE + 1, &errors, NULL);
    assert_string_equal(got, "m.yaml: error: file is 1048577 bytes; a manifest file may be at "
                             "most 1 MiB (1048576 bytes)\n");
    free(got);
    free(big);

    /* 100,000 stray keys in one mapping (under 1 MiB): a bounded report. */
    otr_buf_puts(&b, BASE);
    for (int i = 0; i < 100000; i++)
        otr_buf_printf(&b, "%x: 1\n", i);
    assert_true(b.len < OTR_MANIFEST_MAX_FILE_SIZE);
    got = diagnose(b.ptr, b.len, &errors, NULL);
    assert_int_equal(errors, 21);
    assert_non_null(strstr(got, "m.yaml:8:1: error: 0: unknown field (expected one of: "));
    assert_non_null(
        strstr(got, "m.yaml:1:1: error: 99980 more unknown fields in this mapping not shown"));
    free(got);
    otr_buf_free(&b);
}

/* 100,001 manifests and more in files of per_file (each under 1 MiB), one
 * file past the limit; through a loader of threads workers. Returns the
 * first problem, formatted. */
static char *count_limit(int per_file, int threads, otr_manifest_set *set, otr_diags *d)
{
    otr_error err = OTR_ERROR_INIT;
    otr_buf b = OTR_BUF_INIT;
    int files = (OTR_MANIFEST_MAX_COUNT + per_file) / per_file + 1;
    otr_manifest_loader *l = otr_manifest_loader_new(set, d, (size_t)files, threads);
    assert_non_null(l);
    for (int file = 0, n = 0; file < files; file++) {
        otr_buf_clear(&b);
        for (int i = 0; i < per_file; i++, n++)
            otr_buf_printf(&b,
                           "{apiVersion: ota-runner/v1, kind: OtaTask, metadata: {name: m%d}, "
                           "spec: {S3Url: x, OtaType: ONE_TIME}}\n---\n",
                           n);
        char name[32];
        snprintf(name, sizeof(name), "f%02d.yaml", file);
        assert_int_equal(otr_manifest_loader_add(l, (size_t)file, name, b.ptr, b.len, &err), 0);
    }
    assert_int_equal(otr_manifest_loader_finish(l, &err), 0);
    otr_manifest_loader_free(l);
    assert_int_equal(otr_manifest_set_finish(set, d), 0);
    otr_buf_clear(&b);
    otr_diag_format(&d->items[0], &b);
    return otr_buf_detach(&b);
}

static void test_manifest_count_limit(void **state)
{
    (void)state;
    /* one thread, files of 8,000; then 4 workers (the limit falls in a file
     * a worker read: the reading thread reads it again to say where) */
    const struct {
        int per_file, threads;
        const char *want;
    } runs[] = {{8000, 1, "f12.yaml:8001:1"}, {1500, 4, "f66.yaml:2001:1"}};
    for (size_t r = 0; r < 2; r++) {
        otr_manifest_set set = OTR_MANIFEST_SET_INIT;
        otr_diags d = OTR_DIAGS_INIT;
        char *got = count_limit(runs[r].per_file, runs[r].threads, &set, &d);
        assert_int_equal(d.errors, 1);
        assert_int_equal(set.count, OTR_MANIFEST_MAX_COUNT);
        otr_buf want = OTR_BUF_INIT;
        otr_buf_printf(&want,
                       "%s: error: more than 100000 manifests; split the fleet across "
                       "repositories or narrow --path",
                       runs[r].want);
        assert_string_equal(got, want.ptr);
        otr_buf_free(&want);
        free(got);
        otr_diags_free(&d);
        otr_manifest_set_free(&set);
    }
}

/* Every struct's members in strcmp order, each found by name: the look-up
 * halves the range, and a spec is built in that order as canonical. */
static void members_sorted(const otr_field *f, int depth)
{
    assert_true(depth < 16);
    for (size_t i = 0; f->type == OTR_F_STRUCT && i < f->nmembers; i++) {
        if (i)
            assert_true(strcmp(f->members[i - 1].name, f->members[i].name) < 0);
        assert_ptr_equal(otr_schema_member(f, f->members[i].name), &f->members[i]);
        members_sorted(&f->members[i], depth + 1);
    }
    if (f->elem)
        members_sorted(f->elem, depth + 1);
    if (f->type == OTR_F_STRUCT)
        assert_null(otr_schema_member(f, "NoSuchMember"));
}

static void test_schema_members_sorted(void **state)
{
    (void)state;
    members_sorted(&otr_schema_envelope, 0);
    for (size_t k = 0; otr_kinds[k]; k++)
        members_sorted(otr_kinds[k]->schema, 0);
}

/* File i of the loader test: valid tasks, configurations and the tasks
 * that name them, bad fields, duplicate names across files, several
 * documents, empty files, a reference to nothing. */
static void loader_file(otr_buf *b, int i)
{
    otr_buf_clear(b);
    switch (i % 7) {
    case 0:
        otr_buf_printf(b,
                       "apiVersion: ota-runner/v1\nkind: OtaTaskConfiguration\n"
                       "metadata: {name: c%d}\nspec: {Name: c}\n",
                       i);
        break;
    case 1:
        otr_buf_printf(b,
                       "{apiVersion: ota-runner/v1, kind: OtaTask, metadata: {name: t%d}, spec: "
                       "{S3Url: s3://b/%d, OtaType: ONE_TIME, TaskConfigurationRef: c%d}}\n",
                       i, i, i - 1);
        break;
    case 2:
        otr_buf_printf(b,
                       "{apiVersion: ota-runner/v1, kind: OtaTask, metadata: {name: t%d}, spec: "
                       "{S3Url: s3://b/k, OtaType: SOMETIMES, Bogus: 1}}\n",
                       i);
        break;
    case 3: /* a name another file has too */
        otr_buf_printf(b,
                       "{apiVersion: ota-runner/v1, kind: OtaTask, metadata: {name: dup%d}, "
                       "spec: {S3Url: s3://b/k, OtaType: ONE_TIME}}\n",
                       i % 5);
        break;
    case 4:
        for (int k = 0; k < 3; k++)
            otr_buf_printf(b,
                           "---\n{apiVersion: ota-runner/v1, kind: OtaTask, metadata: {name: "
                           "m%dx%d}, spec: {S3Url: s3://b/%d, OtaType: CONTINUOUS}}\n",
                           i, k, k);
        break;
    case 5: otr_buf_puts(b, i % 2 ? "# nothing here\n" : ""); break;
    default:
        otr_buf_printf(b,
                       "{apiVersion: ota-runner/v1, kind: OtaTask, metadata: {name: r%d}, spec: "
                       "{S3Url: s3://b/k, OtaType: ONE_TIME, TaskConfigurationRef: nowhere}}\n",
                       i);
    }
}

/* Every manifest (file, name, token) and problem of a set, one per line. */
static char *loader_outcome(int threads, int nfiles)
{
    otr_manifest_set set = OTR_MANIFEST_SET_INIT;
    otr_diags d = OTR_DIAGS_INIT;
    otr_error err = OTR_ERROR_INIT;
    otr_buf b = OTR_BUF_INIT, out = OTR_BUF_INIT;
    otr_manifest_loader *l = otr_manifest_loader_new(&set, &d, (size_t)nfiles, threads);
    assert_non_null(l);
    for (int k = 0; k < nfiles; k++) {
        int i = (k * 37) % nfiles; /* not in path order */
        char name[32];
        snprintf(name, sizeof(name), "f%04d.yaml", i);
        loader_file(&b, i);
        assert_int_equal(otr_manifest_loader_add(l, (size_t)i, name, b.ptr, b.len, &err), 0);
    }
    assert_int_equal(otr_manifest_loader_finish(l, &err), 0);
    otr_manifest_loader_free(l);
    assert_int_equal(otr_manifest_set_finish(&set, &d), 0);
    otr_buf_printf(&out, "%zu files, %zu documents, %zu errors\n", set.files, set.documents,
                   d.errors);
    for (size_t i = 0; i < set.count; i++)
        otr_buf_printf(&out, "%s %s %s\n", set.items[i]->file, set.items[i]->name,
                       set.items[i]->client_token);
    for (size_t i = 0; i < d.count; i++) {
        otr_diag_format(&d.items[i], &out);
        otr_buf_putc(&out, '\n');
    }
    otr_buf_free(&b);
    otr_diags_free(&d);
    otr_manifest_set_free(&set);
    return otr_buf_detach(&out);
}

/* Workers parse the files; the set, its problems and their order come
 * out as from one thread. */
static void test_loader_matches_one_thread(void **state)
{
    (void)state;
    char *one = loader_outcome(1, 701);
    assert_non_null(strstr(one, "701 files, 801 documents, "));
    assert_non_null(strstr(one, "duplicate name \"dup0\""));
    assert_non_null(strstr(one, "f0006.yaml:1:131: error: spec.TaskConfigurationRef: "));
    assert_non_null(strstr(one, "f0001.yaml t1 "));
    for (int threads = 2; threads <= 8; threads *= 2) {
        char *many = loader_outcome(threads, 701);
        assert_string_equal(many, one);
        free(many);
    }
    free(one);
}

/* Files come in the order the object store keeps them; the set answers in path
 * order whatever that is. */
static void test_files_in_any_order(void **state)
{
    (void)state;
    const char *a = BASE;
    const char *b = "# second\n" BASE;
    const char *c = "apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: c}\n"
                    "spec: {S3Url: s3://b/k, OtaType: ONE_TIME}\n";
    const struct {
        size_t order;
        const char *file, *text;
    } files[] = {{0, "a.yaml", a}, {1, "b.yaml", b}, {2, "c.yaml", c}};
    const size_t arrivals[][3] = {{0, 1, 2}, {2, 1, 0}, {1, 2, 0}};
    for (size_t k = 0; k < 3; k++) {
        otr_manifest_set set = OTR_MANIFEST_SET_INIT;
        otr_diags d = OTR_DIAGS_INIT;
        otr_error err = OTR_ERROR_INIT;
        for (size_t i = 0; i < 3; i++) {
            size_t f = arrivals[k][i];
            assert_int_equal(otr_manifest_add_file(&set, files[f].order, files[f].file,
                                                   files[f].text, strlen(files[f].text), &d, &err),
                             0);
        }
        /* a place in path order is given once */
        assert_int_equal(otr_manifest_add_file(&set, 1, "x.yaml", c, strlen(c), &d, &err), -1);
        assert_string_equal(otr_error_message(&err),
                            "file order 1 given twice (b.yaml and x.yaml)");
        otr_error_clear(&err);
        assert_int_equal(otr_manifest_set_finish(&set, &d), 0);
        /* the first in path order is the original, whichever came first */
        assert_int_equal(d.errors, 1);
        otr_buf out = OTR_BUF_INIT;
        otr_diag_format(&d.items[0], &out);
        assert_string_equal(
            out.ptr, "b.yaml:5:9: error: metadata.name: duplicate name \"t\": also "
                     "defined at a.yaml:4:9; names must be unique among the OtaTask manifests");
        assert_int_equal(set.files, 3);
        assert_int_equal(set.count, 3);
        assert_string_equal(set.items[0]->file, "a.yaml");
        assert_string_equal(set.items[1]->file, "b.yaml");
        assert_string_equal(set.items[2]->file, "c.yaml");
        otr_buf_free(&out);
        otr_diags_free(&d);
        otr_manifest_set_free(&set);
    }
}

static void test_model_values(void **state)
{
    (void)state;
    const char *yaml = "apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata:\n  name: hub\n"
                       "  revision: 7\n  labels: {z: \"1\", a: \"2\"}\nspec:\n  OtaType: ONE_TIME\n"
                       "  S3Url: s3://b/k\n  Tags: {b: \"2\", a: x}\n";
    otr_manifest_set set;
    size_t errors;
    char *got = diagnose(yaml, strlen(yaml), &errors, &set);
    assert_int_equal(errors, 0);
    assert_int_equal(set.count, 1);
    const otr_manifest *m = set.items[0];
    assert_string_equal(m->name, "hub");
    assert_int_equal(m->revision, 7);
    assert_int_equal(m->line, 1);
    assert_string_equal(m->file, "m.yaml");
    assert_string_equal(
        m->spec_json,
        "{\"OtaType\":\"ONE_TIME\",\"S3Url\":\"s3://b/k\",\"Tags\":{\"a\":\"x\",\"b\":\"2\"}}");
    assert_int_equal(strlen(m->client_token), 43);
    assert_memory_equal(m->spec_digest, "sha256:", 7);
    free(got);
    otr_manifest_set_free(&set);
}

/* Lines 1-5 of a task configuration; its spec's members start at line 6. */
#define CFG_HEAD                                                                                   \
    "apiVersion: ota-runner/v1\nkind: OtaTaskConfiguration\nmetadata:\n  name: push\nspec:\n"
#define RATE(inc)                                                                                  \
    CFG_HEAD "  PushConfig:\n    RolloutConfig:\n      ExponentialRolloutRate:\n"                  \
             "        IncrementFactor: " inc "\n"

/* Doubles arrive with task configurations: any decimal number, in range; an
 * integer field still refuses 10.0. */
static void test_configurations_and_doubles(void **state)
{
    (void)state;
    static const vcase cases[] = {
        {CFG_HEAD "  Name: Staged push\n  Description: For HVAC\n", NULL, 0},
        {RATE("2.5"), NULL, 0},
        {RATE("2"), NULL, 0},     /* a double field accepts 2 */
        {RATE("25e-1"), NULL, 0}, /* and 25e-1, which YAML 1.1 reads as a string */
        {RATE("+1.1"), NULL, 0},
        {RATE("9.0"),
         "9:26: error: spec.PushConfig.RolloutConfig.ExponentialRolloutRate.IncrementFactor: must "
         "be between 1.1 and 5, got 9.0",
         0},
        {RATE("1.09"),
         "9:26: error: spec.PushConfig.RolloutConfig.ExponentialRolloutRate.IncrementFactor: must "
         "be between 1.1 and 5, got 1.09",
         0},
        {RATE("\"2.5\""),
         "9:26: error: spec.PushConfig.RolloutConfig.ExponentialRolloutRate.IncrementFactor: must "
         "be a number, got a quoted string \"2.5\" (remove the quotes)",
         0},
        {RATE(".inf"),
         "9:26: error: spec.PushConfig.RolloutConfig.ExponentialRolloutRate.IncrementFactor: must "
         "be a decimal number such as 2.5, 10 or 1e1, got \".inf\"",
         0},
        {RATE("02.5"),
         "9:26: error: spec.PushConfig.RolloutConfig.ExponentialRolloutRate.IncrementFactor: must "
         "be a decimal number such as 2.5, 10 or 1e1, got \"02.5\"",
         0},
        {RATE("1e400"),
         "9:26: error: spec.PushConfig.RolloutConfig.ExponentialRolloutRate.IncrementFactor: is "
         "too large to be a number, got 1e400",
         0},
        {CFG_HEAD "  PushConfig:\n    AbortConfig:\n      AbortConfigCriteriaList:\n"
                  "        - {Action: CANCEL, ThresholdPercentage: 100.5}\n",
         "9:49: error: spec.PushConfig.AbortConfig.AbortConfigCriteriaList[0].ThresholdPercentage: "
         "must be at most 100, got 100.5",
         0},
        {CFG_HEAD "  PushConfig:\n    TimeoutConfig: {InProgressTimeoutInMinutes: 10.0}\n",
         "7:49: error: spec.PushConfig.TimeoutConfig.InProgressTimeoutInMinutes: must be an "
         "integer, got a float \"10.0\"",
         0},
        /* the model's own lower-case spelling, with did-you-mean */
        {CFG_HEAD "  PushConfig:\n    RolloutConfig:\n      ExponentialRolloutRate:\n"
                  "        RateIncreaseCriteria: {NumberOfSucceededThings: 5}\n",
         "9:32: error: spec.PushConfig.RolloutConfig.ExponentialRolloutRate.RateIncreaseCriteria."
         "NumberOfSucceededThings: unknown field; did you mean numberOfSucceededThings?",
         0},
        {CFG_HEAD "  Name: Staged push!\n",
         "6:9: error: spec.Name: must contain only letters, digits, '-', '_' and spaces, got "
         "\"Staged push!\" ('!' at position 12 is not allowed)",
         0},
        {CFG_HEAD "  ClientToken: abc\n",
         "6:3: error: spec.ClientToken: ClientToken must not be set: ota-runner derives it from "
         "the "
         "manifest (bump metadata.revision to get a fresh one)",
         0},
    };
    RUN(cases);
}

/* A task names a configuration of the same commit; a name no configuration
 * has is refused at the reference, with did-you-mean. */
static void test_references(void **state)
{
    (void)state;
    static const vcase cases[] = {
        {CFG_HEAD "  Name: P\n---\n" BASE "  TaskConfigurationRef: push\n", NULL, 0},
        /* the same name in two kinds is fine: names are unique within a kind */
        {"apiVersion: ota-runner/v1\nkind: OtaTaskConfiguration\nmetadata:\n  name: t\nspec: {}\n"
         "---\n" BASE,
         NULL, 0},
        {CFG_HEAD "  Name: P\n---\n" BASE "  TaskConfigurationRef: psh\n",
         "15:25: error: spec.TaskConfigurationRef: no OtaTaskConfiguration named \"psh\" in this "
         "commit; did you mean push?",
         0},
        {BASE "  TaskConfigurationRef: elsewhere\n",
         "8:25: error: spec.TaskConfigurationRef: no OtaTaskConfiguration named \"elsewhere\" in "
         "this commit (a reference names the metadata.name of a manifest of that kind)",
         0},
        {CFG_HEAD "  Name: Bad!\n---\n" BASE "  TaskConfigurationRef: push\n",
         "6:9: error: spec.Name: must contain only letters, digits, '-', '_' and spaces, got "
         "\"Bad!\" ('!' at position 4 is not allowed)",
         2},
        {CFG_HEAD "  Name: P\n---\n" BASE
                  "  TaskConfigurationRef: push\n  TaskConfigurationId: abc\n",
         "15:25: error: spec.TaskConfigurationRef: give TaskConfigurationRef (a configuration in "
         "this repository) or TaskConfigurationId (one made elsewhere), not both",
         0},
        {BASE "  TaskConfigurationRef: Push_1\n",
         "8:25: error: spec.TaskConfigurationRef: must contain only lowercase letters, digits and "
         "'-', got \"Push_1\" ('P' at position 1 is not allowed)",
         0},
    };
    RUN(cases);
    /* several manifests whose references dangle: each is reported and dropped,
     * and the others still resolve (the fuzzer found the dropped ones were
     * freed while later lookups still went through them) */
    otr_buf many = OTR_BUF_INIT;
    for (int i = 0; i < 6; i++)
        otr_buf_printf(&many,
                       "---\napiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: t%d}\n"
                       "spec: {S3Url: s3://b/k, OtaType: ONE_TIME, TaskConfigurationRef: %s}\n",
                       i, i % 2 ? "push" : "gone");
    otr_buf_puts(&many, "---\n" CFG_HEAD "  Name: P\n");
    otr_manifest_set set = OTR_MANIFEST_SET_INIT;
    otr_diags d = OTR_DIAGS_INIT;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_manifest_add_file(&set, 0, "m.yaml", many.ptr, many.len, &d, &err), 0);
    assert_int_equal(otr_manifest_set_finish(&set, &d), 0);
    assert_int_equal(d.errors, 3);
    assert_int_equal(set.count, 4);
    assert_non_null(otr_manifest_set_find(&set, &otr_kind_ota_task, "t1"));
    assert_null(otr_manifest_set_find(&set, &otr_kind_ota_task, "t2"));
    otr_manifest_set_free(&set);
    otr_diags_free(&d);
    otr_buf_free(&many);
    /* the configuration with errors is named as such at the reference */
    size_t errors;
    const char *yaml = CFG_HEAD "  Name: Bad!\n---\n" BASE "  TaskConfigurationRef: push\n";
    char *got = diagnose(yaml, strlen(yaml), &errors, NULL);
    assert_non_null(strstr(got, "m.yaml:15:25: error: spec.TaskConfigurationRef: "
                                "OtaTaskConfiguration \"push\" has errors (see them above); fix "
                                "it first"));
    free(got);
}

/* A task in words, read from its canonical JSON as text: escapes undone,
 * targets shortened and counted, windows and retries listed, the
 * configuration with what it names; a member of the wrong type or missing
 * is left out or shown as "?", never a "(null)". */
static void test_describe_task(void **state)
{
    (void)state;
    otr_buf out = OTR_BUF_INIT;
    cJSON *spec = cJSON_Parse(
        "{\"S3Url\": \"s3://b/\\\"q\\\"\\u00e9.json\", \"OtaType\": \"ONE_TIME\","
        " \"Protocol\": \"HTTP\", \"OtaMechanism\": \"PUSH\","
        " \"Target\": [\"arn:x:managed-thing/a\", \"arn:x:managed-thing/b\", \"c\", \"d\", \"e\"],"
        " \"OtaTargetQueryString\": \"thingType:X\","
        " \"OtaSchedulingConfig\": {\"StartTime\": \"2026-12-01T02:00\", \"EndBehavior\": "
        "\"CANCEL\","
        "   \"MaintenanceWindows\": [{\"StartTime\": \"cron(0 2 ? * MON-FRI *)\","
        "   \"DurationInMinutes\": 60}, {\"StartTime\": \"rate(5 minutes)\"}]},"
        " \"OtaTaskExecutionRetryConfig\": {\"RetryConfigCriteria\": [{\"FailureType\": \"FAILED\","
        "   \"MinNumberOfRetries\": 3}, {\"MinNumberOfRetries\": 1}]},"
        " \"TaskConfigurationRef\": \"push\"}");
    char *canon = otr_canonical_json(spec);
    otr_describe_task(canon, "\"Push\" · 10/min", &out);
    assert_string_equal(
        otr_buf_cstr(&out),
        "firmware s3://b/\"q\"\xc3\xa9.json · ONE_TIME over HTTP (PUSH) · 5 things: "
        "a, b, c and 2 more · the things of \"thingType:X\" · from "
        "2026-12-01T02:00 (then CANCEL), in windows Mon-Fri 02:00 for 60 min, "
        "rate(5 minutes) · retries FAILED ×3, ? ×1 · configuration push "
        "(\"Push\" · 10/min)");
    otr_buf_clear(&out);
    otr_describe_task("{\"Target\": \"x\", \"OtaMechanism\": \"PUSH\", \"Protocol\": 5}", NULL,
                      &out);
    assert_string_equal(otr_buf_cstr(&out), "? over  (PUSH) · 0 things");
    otr_buf_clear(&out);
    otr_describe_task(NULL, NULL, &out);
    assert_string_equal(otr_buf_cstr(&out), "?");
    otr_buf_free(&out);
    free(canon);
    cJSON_Delete(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describe_task),
        cmocka_unit_test(test_yaml_nulls),
        cmocka_unit_test(test_yaml_resolved),
        cmocka_unit_test(test_required_and_enums),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_lists_and_maps),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_several_errors_all_reported_in_order),
        cmocka_unit_test(test_yaml_problems),
        cmocka_unit_test(test_anchors_and_budget),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_manifest_count_limit),
        cmocka_unit_test(test_loader_matches_one_thread),
        cmocka_unit_test(test_schema_members_sorted),
        cmocka_unit_test(test_files_in_any_order),
        cmocka_unit_test(test_model_values),
        cmocka_unit_test(test_configurations_and_doubles),
        cmocka_unit_test(test_references),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
