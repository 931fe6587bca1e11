/*
 * Staged rollouts (kinds/ota_rollout.c, kinds/ota_rollout.h, behaviour/rollout.c): durations, the
 * gate's layers and arithmetic at its edges, and the kind's plan from one
 * apply to the next: the first wave, a pass recorded and its soak, the next
 * wave, holdAfter, a halt that stands until the gate changes, and a wave
 * whose create is being resumed.
 */
#include "kinds/ota_rollout.h"
#include "behaviour/behaviour.h"
#include "plan/plan.h"
#include "state/internal.h"
#include "util/time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t seconds;
    } good[] = {{"30s", 30},         {"15m", 900}, {"2h", 7200},
                {"1d", 86400},       {"0s", 0},    {"1h30m", 5400},
                {"1d2h3m4s", 93784}, {"367d", -1}, {"", -1},
                {"h", -1},           {"30", -1},   {"1m1h", -1},
                {"1h1h", -1},        {"1.5h", -1}, {"-1s", -1},
                {"2 hours", -1},     {"30S", -1},  {"99999999999999999999s", -1}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t s = -7;
        int rc = otr_time_parse_duration(good[i].text, &s);
        if (good[i].seconds < 0) {
            if (rc == 0)
                fail_msg("\"%s\" was accepted as %lld s", good[i].text, (long long)s);
        } else if (rc != 0 || s != good[i].seconds) {
            fail_msg("\"%s\": rc %d, %lld s, want %lld", good[i].text, rc, (long long)s,
                     (long long)good[i].seconds);
        }
    }
    char out[32];
    otr_time_format_duration(out, 5400);
    assert_string_equal(out, "1h30m");
    otr_time_format_duration(out, 0);
    assert_string_equal(out, "0s");
    otr_time_format_duration(out, 93784);
    assert_string_equal(out, "1d2h3m4s");
}

static void test_gate_layers(void **state)
{
    (void)state;
    otr_gate g;
    otr_rollout_gate(NULL, NULL, &g);
    assert_true(g.min_succeeded == OTR_GATE_DEFAULT_MIN_SUCCEEDED);
    assert_true(g.max_failed == OTR_GATE_DEFAULT_MAX_FAILED);
    assert_int_equal(g.min_finished, OTR_GATE_DEFAULT_MIN_FINISHED);
    assert_int_equal(g.soak, 0);
    assert_int_equal(g.deadline, OTR_GATE_NO_DEADLINE);
    cJSON *spec = cJSON_Parse("{\"minSucceededPercent\":80,\"soak\":\"1h\",\"minFinished\":10}");
    cJSON *wave = cJSON_Parse("{\"soak\":\"0s\",\"deadline\":\"2h\"}");
    otr_rollout_gate(spec, wave, &g);
    assert_true(g.min_succeeded == 80);
    assert_true(g.max_failed == OTR_GATE_DEFAULT_MAX_FAILED);
    assert_int_equal(g.min_finished, 10);
    assert_int_equal(g.soak, 0); /* the wave's key wins */
    assert_int_equal(g.deadline, 7200);
    cJSON_Delete(spec);
    cJSON_Delete(wave);
}

static otr_verdict judge(const otr_gate *g, otr_ota_counts c, int64_t now, const char *why)
{
    otr_buf b = OTR_BUF_INIT;
    otr_verdict v = otr_rollout_judge(g, &c, 0, now, &b);
    if (strcmp(otr_buf_cstr(&b), why) != 0)
        fail_msg("why: got \"%s\", want \"%s\"", otr_buf_cstr(&b), why);
    otr_buf_free(&b);
    return v;
}

static void test_gate_arithmetic(void **state)
{
    (void)state;
    otr_gate g = {95, 5, 1, 0, OTR_GATE_NO_DEADLINE};
    otr_ota_counts c = {.present = 1};
    /* no thing counted yet: wait */
    assert_int_equal(judge(&g, c, 10,
                           "0% succeeded, 0% failed, 0 of 0 finished (needs at least 1 finished; "
                           "passes at 95% succeeded, halts above 5% failed)"),
                     OTR_VERDICT_WAIT);
    /* 38 of 40 succeeded, 2 failed: exactly at both edges, a pass */
    c.succeeded = 38, c.failed = 2;
    assert_int_equal(judge(&g, c, 10, "95% succeeded of 40 (at least 95%)"), OTR_VERDICT_PASS);
    /* a third failure, timed out: 7.5% failed, a halt */
    c.succeeded = 37, c.timed_out = 1;
    assert_int_equal(judge(&g, c, 10, "7.5% failed of 40 (at most 5%)"), OTR_VERDICT_HALT);
    /* rejected counts as failed, canceled as finished only, queued and
     * removed as things */
    otr_ota_counts d = {.present = 1, .succeeded = 18, .rejected = 1, .canceled = 1};
    assert_int_equal(judge(&g, d, 10,
                           "90% succeeded, 5% failed, 20 of 20 finished (needs at least 1 "
                           "finished; passes at 95% succeeded, halts above 5% failed)"),
                     OTR_VERDICT_WAIT);
    d.queued = 5, d.removed = 5; /* 30 things: 60% succeeded, 3.3% failed */
    assert_int_equal(judge(&g, d, 10,
                           "60% succeeded, 3.333% failed, 20 of 30 finished (needs at least 1 "
                           "finished; passes at 95% succeeded, halts above 5% failed)"),
                     OTR_VERDICT_WAIT);
    /* no verdict before minFinished things ended, even with a failure */
    otr_gate slow = {95, 5, 10, 0, OTR_GATE_NO_DEADLINE};
    otr_ota_counts e = {.present = 1, .failed = 1, .succeeded = 1, .in_progress = 18};
    assert_int_equal(judge(&slow, e, 10,
                           "5% succeeded, 5% failed, 2 of 20 finished (needs at least 10 finished; "
                           "passes at 95% succeeded, halts above 5% failed)"),
                     OTR_VERDICT_WAIT);
    /* the deadline: a wait turns into a halt once it passed */
    otr_gate timed = {95, 5, 1, 0, 60};
    otr_ota_counts f = {.present = 1, .in_progress = 4};
    assert_int_equal(
        judge(&timed, f, 60,
              "0% succeeded, 0% failed, 0 of 4 finished (needs at least 1 finished; passes at 95% "
              "succeeded, halts above 5% failed or with no pass within 1m)"),
        OTR_VERDICT_WAIT);
    assert_int_equal(
        judge(&timed, f, 61, "no pass within its deadline of 1m: 0% succeeded, 0 of 4 finished"),
        OTR_VERDICT_HALT);
}

/* ---- the kind's plan ------------------------------------------------------------ */

#define ROLLOUT(hold, gate)                                                                        \
    "apiVersion: ota-runner/v1\nkind: OtaRollout\nmetadata: {name: fw}\nspec:\n"                   \
    "  task: {S3Url: s3://b/k, OtaType: ONE_TIME}\n  gate: " gate "\n" hold "  waves:\n"           \
    "    - {name: canary, Target: [a, b]}\n    - {name: early, OtaTargetQueryString: q}\n"

typedef struct world {
    otr_manifest_set set;
    otr_state *s;
    otr_remote_item item;
    otr_ota_counts counts;
    otr_remote_view views[4];
    otr_plan *p;
} world;

static void load(world *w, const char *yaml)
{
    otr_diags d = OTR_DIAGS_INIT;
    otr_error err = OTR_ERROR_INIT;
    otr_manifest_set_free(&w->set);
    memset(&w->set, 0, sizeof(w->set));
    assert_int_equal(otr_manifest_add_file(&w->set, 0, "fw.yaml", yaml, strlen(yaml), &d, &err), 0);
    assert_int_equal(otr_manifest_set_finish(&w->set, &d), 0);
    assert_int_equal(d.errors, 0);
    otr_diags_free(&d);
}

/* Plans yaml at now against the state, the newest wave's task counting c. */
static const otr_action *plan_at(world *w, const char *yaml, int64_t now)
{
    otr_plan_options o = OTR_PLAN_OPTIONS_INIT;
    o.behaviours = otr_behaviours;
    otr_error err = OTR_ERROR_INIT;
    const otr_record *rec = otr_state_find(w->s, &otr_kind_ota_rollout, "fw");
    load(w, yaml);
    w->item = (otr_remote_item){
        .id = rec ? rec->id : "none", .status = "IN_PROGRESS", .counts = &w->counts};
    w->views[0] = (otr_remote_view){&otr_kind_ota_task, NULL, 0};
    w->views[1] = (otr_remote_view){&otr_kind_ota_rollout, &w->item, 1};
    w->views[2] = (otr_remote_view){NULL, NULL, 0};
    o.remote = w->views;
    o.now = now;
    o.commit = "beef";
    otr_plan_free(w->p);
    if (otr_plan_make(&w->p, w->s, &w->set, &o, &err) < 0)
        fail_msg("plan: %s", otr_error_message(&err));
    assert_int_equal(w->p->count, 1);
    return &w->p->actions[0];
}

/* What apply leaves: the action's record with a task id for a create; the
 * plan's rewrite otherwise. */
static void apply_at(world *w, const otr_action *a, const char *id, const char *at)
{
    otr_record r;
    if (a->kind == OTR_ACT_NOOP) {
        assert_int_equal(w->p->nrewrites, 1);
        assert_int_equal(otr_state_put(w->s, &w->p->rewrites[0].rec), 0);
        return;
    }
    assert_int_equal(a->kind, OTR_ACT_CREATE);
    assert_int_equal(otr_record_copy(&r, &a->desired), 0);
    free(r.id);
    free(r.created_at);
    r.id = strdup(id);
    r.created_at = strdup(at);
    assert_int_equal(otr_kind_ota_rollout.created(&r), 0);
    assert_int_equal(otr_state_put(w->s, &r), 0);
    otr_record_clear(&r);
}

static const char *newest_state(const world *w)
{
    const cJSON *waves = cJSON_GetObjectItemCaseSensitive(w->p->details[0].view, "waves"), *x;
    const char *state = NULL;
    cJSON_ArrayForEach(x, waves)
    {
        if (cJSON_GetObjectItemCaseSensitive(x, "taskId"))
            state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "state"));
    }
    return state;
}

static const cJSON *progress(world *w)
{
    return otr_state_find(w->s, &otr_kind_ota_rollout, "fw")->progress;
}

/* 2026-11-30T12:00:00Z and on */
#define T0 1796040000

static void test_plan_waves(void **state)
{
    (void)state;
    world w;
    memset(&w, 0, sizeof(w));
    w.s = otr_state_new("s.json");
    const char *yaml = ROLLOUT("", "{minFinished: 2, soak: 1h}");

    /* nothing yet: the first wave, with a token of its own */
    const otr_action *a = plan_at(&w, yaml, T0);
    assert_int_equal(a->kind, OTR_ACT_CREATE);
    assert_string_equal(a->reason, "starts wave canary");
    const cJSON *first =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(a->desired.progress, "waves"), 0);
    const char *token =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(first, "clientToken"));
    assert_non_null(token);
    assert_int_equal(strlen(token), 43);
    assert_string_not_equal(token, a->desired.client_token);
    apply_at(&w, a, "T1", "2026-11-30T12:00:00Z");

    /* one of two ended: wait, nothing to write */
    w.counts = (otr_ota_counts){.present = 1, .succeeded = 1, .in_progress = 1};
    a = plan_at(&w, yaml, T0 + 60);
    assert_int_equal(a->kind, OTR_ACT_NOOP);
    assert_int_equal(w.p->nrewrites, 0);
    assert_string_equal(newest_state(&w), "running");

    /* both succeeded: a pass, recorded without a call, soaking an hour */
    w.counts = (otr_ota_counts){.present = 1, .succeeded = 2};
    a = plan_at(&w, yaml, T0 + 120);
    assert_int_equal(a->kind, OTR_ACT_NOOP);
    assert_string_equal(newest_state(&w), "passed, soaking");
    assert_int_equal(otr_plan_changes(w.p), 0);
    apply_at(&w, a, NULL, NULL);
    const cJSON *canary =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(progress(&w), "waves"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(canary, "passedAt")),
                        "2026-11-30T12:02:00Z");

    /* still soaking a minute before the hour; holdAfter holds after it */
    a = plan_at(&w, yaml, T0 + 120 + 3540);
    assert_int_equal(a->kind, OTR_ACT_NOOP);
    assert_int_equal(w.p->nrewrites, 0);
    a = plan_at(&w, ROLLOUT("  holdAfter: canary\n", "{minFinished: 2, soak: 1h}"),
                T0 + 120 + 3600);
    assert_int_equal(a->kind, OTR_ACT_NOOP);
    assert_string_equal(newest_state(&w), "passed, held by holdAfter");
    a = plan_at(&w, ROLLOUT("  paused: true\n", "{minFinished: 2, soak: 1h}"), T0 + 120 + 3600);
    assert_int_equal(a->kind, OTR_ACT_NOOP);
    assert_string_equal(newest_state(&w), "passed, paused");

    /* soaked (cron was down for a day: no second wait): the next wave */
    a = plan_at(&w, yaml, T0 + 86400);
    assert_int_equal(a->kind, OTR_ACT_CREATE);
    assert_string_equal(a->reason,
                        "starts wave early: canary passed (100% succeeded of 2 (at least 95%))");
    apply_at(&w, a, "T2", "2026-12-01T12:00:00Z");
    assert_string_equal(otr_state_find(w.s, &otr_kind_ota_rollout, "fw")->id, "T2");
    const char *ids[4];
    assert_int_equal(
        otr_kind_ota_rollout.ids_of(otr_state_find(w.s, &otr_kind_ota_rollout, "fw"), ids, 4), 2);
    assert_string_equal(ids[0], "T1");
    assert_string_equal(ids[1], "T2");

    /* early fails: a halt, recorded; it stands while the gate is the same,
     * whatever the counts say later */
    w.counts = (otr_ota_counts){.present = 1, .succeeded = 1, .failed = 3};
    a = plan_at(&w, yaml, T0 + 86400 + 60);
    assert_int_equal(a->kind, OTR_ACT_NOOP);
    assert_string_equal(newest_state(&w), "halted");
    apply_at(&w, a, NULL, NULL);
    const cJSON *halt = cJSON_GetObjectItemCaseSensitive(progress(&w), "halt");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(halt, "reason")),
                        "75% failed of 4 (at most 5%)");
    w.counts = (otr_ota_counts){.present = 1, .succeeded = 4};
    a = plan_at(&w, yaml, T0 + 86400 + 120);
    assert_int_equal(a->kind, OTR_ACT_NOOP);
    assert_string_equal(newest_state(&w), "halted");
    assert_int_equal(w.p->nrewrites, 0);
    /* a changed gate lifts it, and the wave is judged again: the last
     * wave passed, the rollout is done */
    a = plan_at(&w, ROLLOUT("", "{minFinished: 2, soak: 30m}"), T0 + 86400 + 180);
    assert_string_equal(newest_state(&w), "done");
    assert_int_equal(w.p->nrewrites, 1);
    assert_null(cJSON_GetObjectItemCaseSensitive(w.p->rewrites[0].rec.progress, "halt"));

    /* the service no longer has the newest task: a halt, not a guess */
    apply_at(&w, a, NULL, NULL);
    otr_plan_options o = OTR_PLAN_OPTIONS_INIT;
    o.behaviours = otr_behaviours;
    otr_error err = OTR_ERROR_INIT;
    otr_remote_view none[] = {
        {&otr_kind_ota_task, NULL, 0}, {&otr_kind_ota_rollout, NULL, 0}, {NULL, NULL, 0}};
    o.remote = none;
    o.now = T0 + 90000;
    otr_plan_free(w.p);
    assert_int_equal(otr_plan_make(&w.p, w.s, &w.set, &o, &err), 0);
    assert_string_equal(newest_state(&w), "halted");

    /* a plan given no behaviour for a kind that plans itself refuses it,
     * rather than planning a rollout as if it were one task */
    otr_plan_free(w.p);
    o.behaviours = NULL;
    assert_int_equal(otr_plan_make(&w.p, w.s, &w.set, &o, &err), -1);
    assert_non_null(strstr(otr_error_message(&err), "no planner for kind OtaRollout"));
    otr_error_clear(&err);
    w.p = NULL;

    otr_plan_free(w.p);
    otr_manifest_set_free(&w.set);
    otr_state_free(w.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_gate_layers),
        cmocka_unit_test(test_gate_arithmetic),
        cmocka_unit_test(test_plan_waves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
