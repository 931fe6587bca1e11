/*
 * apply as a graph of steps, against a stand-in service that answers its
 * calls in the order they are sent and keeps what they did: a configuration
 * is created before the tasks that refer to it; a configuration replace is
 * create, updates, delete; what waits for a failed step is not started and
 * says why; a delete refused as in use keeps the old one retired; a stop
 * (--fail-fast, a signal) starts nothing new but carries a started chain to
 * its end; resumed steps ask the service first.
 */
#include "apply/apply.h"
#include "helpers.h"
#include "manifest/token.h"
#include "state/internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the stand-in service ------------------------------------------------- */

#define MAX_CALLS 256

typedef struct fake {
    otr_aws_call *queue[MAX_CALLS];
    size_t head, tail;
    char log[MAX_CALLS][160]; /* "CreateOtaTask (name)" in the order answered */
    size_t nlog;
    cJSON *tasks;   /* id -> body */
    cJSON *configs; /* id -> body */
    int next_id;
    const char *fail_op;      /* answer this operation 500 ... */
    const char *fail_subject; /* ... for this subject only (NULL: all) */
    int conflict_on_delete;   /* DeleteOtaTaskConfiguration refused as in use: 1, with a 400
                                 ValidationException (what the model lists); 2, with a 409 */
    int interrupt_after;      /* the interrupted() hook says SIGTERM after this many answers */
    int dead_answers;         /* CreateOtaTask answers this many with a task that is gone */
    cJSON *sent;              /* every create's body, in order */
} fake;

static void submit(void *ctx, otr_aws_call *call)
{
    fake *f = ctx;
    assert_true(f->tail < MAX_CALLS);
    f->queue[f->tail++] = call;
}

static void answer(otr_aws_call *call, long status, const char *body, const char *type)
{
    call->status = status;
    call->ok = status >= 200 && status < 300;
    call->attempts = 1;
    if (body)
        assert_int_equal(otr_buf_puts(&call->response, body), 0);
    if (type) {
        call->error_type = strdup(type);
        call->error_message = strdup("from the stand-in");
    }
}

static const char *last_segment(const otr_aws_call *call)
{
    const char *slash = strrchr(call->path, '/');
    return slash ? slash + 1 : "";
}

/* What the service does with one call. */
static void serve(fake *f, otr_aws_call *call)
{
    const char *op = call->operation;
    char body[512];
    if (f->fail_op && !strcmp(op, f->fail_op) &&
        (!f->fail_subject || (call->subject && !strcmp(call->subject, f->fail_subject)))) {
        answer(call, 500, "{}", "InternalServerException");
        return;
    }
    if (!strcmp(op, "CreateOtaTask") && f->dead_answers > 0) {
        /* a token the service saw before: its first task, deleted since */
        f->dead_answers--;
        cJSON_AddItemToArray(f->sent, cJSON_Parse(call->body));
        answer(call, 201, "{\"TaskId\":\"gone1\",\"TaskArn\":\"arn:gone1\"}", NULL);
        return;
    }
    if (!strcmp(op, "CreateOtaTask") || !strcmp(op, "CreateOtaTaskConfiguration")) {
        int task = !strcmp(op, "CreateOtaTask");
        char id[32];
        cJSON_AddItemToArray(f->sent, cJSON_Parse(call->body));
        snprintf(id, sizeof(id), "%s%d", task ? "ota" : "cfg", ++f->next_id);
        cJSON_AddItemToObject(task ? f->tasks : f->configs, id, cJSON_Parse(call->body));
        if (task)
            snprintf(body, sizeof(body), "{\"TaskId\":\"%s\",\"TaskArn\":\"arn:%s\"}", id, id);
        else
            snprintf(body, sizeof(body), "{\"TaskConfigurationId\":\"%s\"}", id);
        answer(call, 201, body, NULL);
    } else if (!strcmp(op, "UpdateOtaTask")) {
        cJSON *t = cJSON_GetObjectItem(f->tasks, last_segment(call));
        cJSON *set = cJSON_Parse(call->body), *c;
        cJSON_ArrayForEach(c, set) cJSON_ReplaceItemInObject(t, c->string, cJSON_Duplicate(c, 1));
        cJSON_Delete(set);
        answer(call, t ? 204 : 404, NULL, t ? NULL : "ResourceNotFoundException");
    } else if (!strcmp(op, "DeleteOtaTask")) {
        int had = cJSON_GetObjectItem(f->tasks, last_segment(call)) != NULL;
        cJSON_DeleteItemFromObject(f->tasks, last_segment(call));
        answer(call, had ? 200 : 404, NULL, had ? NULL : "ResourceNotFoundException");
    } else if (!strcmp(op, "DeleteOtaTaskConfiguration")) {
        if (f->conflict_on_delete) {
            if (f->conflict_on_delete == 1)
                answer(call, 400, "{}", "ValidationException");
            else
                answer(call, 409, "{}", "ConflictException");
            return;
        }
        cJSON_DeleteItemFromObject(f->configs, last_segment(call));
        answer(call, 204, NULL, NULL);
    } else if (!strcmp(op, "GetOtaTask")) {
        cJSON *t = cJSON_GetObjectItem(f->tasks, last_segment(call));
        if (!t) {
            answer(call, 404, "{}", "ResourceNotFoundException");
            return;
        }
        cJSON *got = cJSON_Duplicate(t, 1);
        cJSON_AddStringToObject(got, "TaskId", last_segment(call));
        char *text = cJSON_PrintUnformatted(got);
        answer(call, 200, text, NULL);
        free(text);
        cJSON_Delete(got);
    } else if (!strcmp(op, "GetOtaTaskConfiguration")) {
        cJSON *c = cJSON_GetObjectItem(f->configs, last_segment(call));
        snprintf(body, sizeof(body), "{\"TaskConfigurationId\":\"%s\"}", last_segment(call));
        answer(call, c ? 200 : 404, c ? body : "{}", c ? NULL : "ResourceNotFoundException");
    } else {
        fail_msg("the stand-in does not know %s", op);
    }
}

static int run_all(void *ctx, otr_error *err)
{
    fake *f = ctx;
    (void)err;
    while (f->head < f->tail) {
        otr_aws_call *call = f->queue[f->head++];
        serve(f, call);
        snprintf(f->log[f->nlog++], sizeof(f->log[0]), "%s (%s)%s", call->operation,
                 call->subject ? call->subject : "", call->ok ? "" : " failed");
        call->done(call, call->ctx);
    }
    return 0;
}

static int interrupted(void *ctx)
{
    fake *f = ctx;
    return f->interrupt_after && (int)f->nlog >= f->interrupt_after ? SIGTERM : 0;
}

static void fake_init(fake *f)
{
    memset(f, 0, sizeof(*f));
    f->tasks = cJSON_CreateObject();
    f->configs = cJSON_CreateObject();
    f->sent = cJSON_CreateArray();
}

static void fake_free(fake *f)
{
    cJSON_Delete(f->tasks);
    cJSON_Delete(f->configs);
    cJSON_Delete(f->sent);
}

/* The log as "A; B; C" (for one message on failure). */
static char *log_text(const fake *f)
{
    otr_buf b = OTR_BUF_INIT;
    for (size_t i = 0; i < f->nlog; i++)
        otr_buf_printf(&b, "%s%s", i ? "; " : "", f->log[i]);
    return otr_buf_detach(&b);
}

static void expect_log(const fake *f, const char *want)
{
    char *got = log_text(f);
    if (strcmp(got, want) != 0)
        fail_msg("calls: got\n  %s\nwant\n  %s", got, want);
    free(got);
}

/* ---- plans ------------------------------------------------------------------ */

#define CONFIG(rate)                                                                               \
    "---\napiVersion: ota-runner/v1\nkind: OtaTaskConfiguration\nmetadata: {name: push}\n"         \
    "spec: {Name: Push, PushConfig: {RolloutConfig: {ExponentialRolloutRate: "                     \
    "{BaseRatePerMinute: " rate ", IncrementFactor: 2.5}}}}\n"
#define TASK(name, extra)                                                                          \
    "---\napiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: " name "}\n"                  \
    "spec: {S3Url: s3://fw/" name ", OtaType: ONE_TIME" extra "}\n"
#define USES_PUSH ", TaskConfigurationRef: push"

/* yaml planned against s; remote: what a refresh listed (NULL: --refresh none). */
static otr_plan *plan_seen(otr_state *s, const char *yaml, int prune, const otr_remote_view *remote)
{
    otr_manifest_set set = OTR_MANIFEST_SET_INIT;
    otr_diags d = OTR_DIAGS_INIT;
    otr_error err = OTR_ERROR_INIT;
    otr_plan *p = NULL;
    assert_int_equal(otr_manifest_add_file(&set, 0, "m.yaml", yaml, strlen(yaml), &d, &err), 0);
    assert_int_equal(otr_manifest_set_finish(&set, &d), 0);
    assert_int_equal(d.errors, 0);
    otr_plan_options o = OTR_PLAN_OPTIONS_INIT;
    o.prune = prune;
    o.commit = "c0ffee";
    o.remote = remote;
    assert_int_equal(otr_plan_make(&p, s, &set, &o, &err), 0);
    otr_manifest_set_free(&set);
    otr_diags_free(&d);
    return p;
}

static otr_plan *plan_of(otr_state *s, const char *yaml, int prune)
{
    return plan_seen(s, yaml, prune, NULL);
}

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const otr_remote_item *)a)->id, ((const otr_remote_item *)b)->id);
}

/* Plans yaml against s as a refresh that lists f's tasks would (a delete an
 * interrupted run left is finished only for a task the service no longer
 * has), and applies it through f. */
static void apply_seen(fake *f, otr_state *s, const char *yaml, const otr_apply_options *o,
                       otr_apply_result *r)
{
    otr_remote_item items[MAX_CALLS];
    size_t n = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, f->tasks) items[n++] =
        (otr_remote_item){.id = t->string, .status = "IN_PROGRESS"};
    qsort(items, n, sizeof(*items), item_cmp);
    otr_remote_view view[] = {{&otr_kind_ota_task, items, n}, {NULL, NULL, 0}};
    otr_plan *p = plan_seen(s, yaml, 0, view);
    otr_apply_transport tr = {submit, run_all, NULL, f};
    otr_error err = OTR_ERROR_INIT;
    f->nlog = 0;
    assert_int_equal(otr_apply_run_on(&tr, s, p, o, r, &err), 0);
    otr_plan_free(p);
}

/* Plans yaml against s and applies it through f; the result in r. */
static void apply(fake *f, otr_state *s, const char *yaml, const otr_apply_options *o,
                  otr_apply_result *r)
{
    otr_plan *p = plan_of(s, yaml, 0);
    otr_apply_transport t = {submit, run_all, NULL, f};
    otr_error err = OTR_ERROR_INIT;
    f->nlog = 0;
    assert_int_equal(otr_apply_run_on(&t, s, p, o, r, &err), 0);
    otr_plan_free(p);
}

static otr_apply_options one_at_a_time(void)
{
    otr_apply_options o = OTR_APPLY_OPTIONS_INIT;
    o.parallelism = 1;
    return o;
}

static const char *id_of(otr_state *s, const otr_kind *k, const char *name)
{
    const otr_record *r = otr_state_find(s, k, name);
    assert_non_null(r);
    return r->id;
}

static const char *task_config(const fake *f, const char *task_id)
{
    return cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(f->tasks, task_id), "TaskConfigurationId"));
}

typedef struct world {
    char *dir;
    char *path;
    otr_state *s;
    fake f;
} world;

static void world_new(world *w)
{
    otr_buf b = OTR_BUF_INIT;
    w->dir = otr_test_mkdtemp();
    otr_buf_printf(&b, "%s/state.json", w->dir);
    w->path = otr_buf_detach(&b);
    otr_state_where where = OTR_STATE_WHERE_INIT;
    otr_error err = OTR_ERROR_INIT;
    where.location = w->path;
    assert_int_equal(otr_state_open(&w->s, &where, "apply", 0, &err), 0);
    fake_init(&w->f);
}

static void world_free(world *w)
{
    otr_state_free(w->s);
    fake_free(&w->f);
    otr_test_rmdir(w->dir);
    free(w->dir);
    free(w->path);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_configuration_first(void **state)
{
    (void)state;
    world w;
    world_new(&w);
    otr_apply_result r;
    otr_apply_options o = one_at_a_time();
    /* with parallelism 1 the order of the calls shows the edges: a-task waits
     * for the configuration, b-task waits for nothing */
    apply(&w.f, w.s, TASK("a-task", USES_PUSH) CONFIG("10") TASK("b-task", ""), &o, &r);
    /* each create is followed by a get of what it answered (new and live) */
    expect_log(&w.f, "CreateOtaTaskConfiguration (OtaTaskConfiguration/push); "
                     "GetOtaTaskConfiguration (OtaTaskConfiguration/push); "
                     "CreateOtaTask (b-task); GetOtaTask (b-task); CreateOtaTask (a-task); "
                     "GetOtaTask (a-task)");
    const char *cfg = id_of(w.s, &otr_kind_ota_task_configuration, "push");
    const char *a = id_of(w.s, &otr_kind_ota_task, "a-task");
    assert_string_equal(task_config(&w.f, a), cfg);
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(w.f.tasks, a), "TaskConfigurationRef"));
    /* the record keeps what the service holds */
    const otr_record *rec = otr_state_find(w.s, &otr_kind_ota_task, "a-task");
    char *held = otr_record_spec_string(rec, "TaskConfigurationId");
    assert_string_equal(held, cfg);
    free(held);
    assert_int_equal(r.stats.created, 3);
    assert_int_equal(r.stats.failed, 0);
    otr_apply_result_clear(&r);
    world_free(&w);
}

static void test_configuration_replace(void **state)
{
    (void)state;
    world w;
    world_new(&w);
    otr_apply_result r;
    otr_apply_options o = OTR_APPLY_OPTIONS_INIT; /* parallel: the edges still hold */
    const char *fleet = CONFIG("10") TASK("a-task", USES_PUSH) TASK("b-task", USES_PUSH);
    apply(&w.f, w.s, fleet, &o, &r);
    otr_apply_result_clear(&r);
    char *old = strdup(id_of(w.s, &otr_kind_ota_task_configuration, "push"));
    apply_seen(&w.f, w.s, CONFIG("20") TASK("a-task", USES_PUSH) TASK("b-task", USES_PUSH), &o, &r);
    expect_log(&w.f, "CreateOtaTaskConfiguration (OtaTaskConfiguration/push); "
                     "GetOtaTaskConfiguration (OtaTaskConfiguration/push); "
                     "UpdateOtaTask (a-task); UpdateOtaTask (b-task); "
                     "DeleteOtaTaskConfiguration (OtaTaskConfiguration/push)");
    const char *cfg = id_of(w.s, &otr_kind_ota_task_configuration, "push");
    assert_string_not_equal(cfg, old);
    assert_string_equal(task_config(&w.f, id_of(w.s, &otr_kind_ota_task, "b-task")), cfg);
    assert_null(cJSON_GetObjectItem(w.f.configs, old));
    assert_int_equal(w.s->nretired, 0);
    assert_int_equal(r.stats.replaced, 1);
    assert_int_equal(r.stats.updated, 2);
    assert_int_equal(r.stats.deleted, 1);
    otr_apply_result_clear(&r);
    free(old);
    world_free(&w);
}

/* The model lists no ConflictException for DeleteOtaTaskConfiguration: a
 * refusal because the configuration is in use comes as a ValidationException
 * (or a 409, taken too). Either keeps it retired, with the service's answer. */
static void test_in_use_is_kept_retired(void **state)
{
    (void)state;
    for (int how = 1; how <= 2; how++) {
        world w;
        world_new(&w);
        otr_apply_result r;
        otr_apply_options o = OTR_APPLY_OPTIONS_INIT;
        apply(&w.f, w.s, CONFIG("10") TASK("a-task", USES_PUSH), &o, &r);
        otr_apply_result_clear(&r);
        char *old = strdup(id_of(w.s, &otr_kind_ota_task_configuration, "push"));
        w.f.conflict_on_delete = how;
        apply_seen(&w.f, w.s, CONFIG("20") TASK("a-task", USES_PUSH), &o, &r);
        assert_int_equal(r.stats.failed, 0);  /* not a failure */
        assert_int_equal(r.stats.retired, 1); /* nor counted deleted */
        assert_int_equal(r.stats.deleted, 0);
        assert_int_equal(r.nnotes, 1);
        assert_non_null(strstr(r.notes[0], "is still in use"));
        assert_non_null(strstr(r.notes[0], old));
        assert_int_equal(w.s->nretired, 1);
        assert_string_equal(w.s->retired[0].id, old);
        assert_non_null(strstr(w.s->retired[0].last_error,
                               how == 1 ? "ValidationException" : "ConflictException"));
        otr_apply_result_clear(&r);
        /* the next run tries again, and once it may, it is gone */
        w.f.conflict_on_delete = 0;
        apply_seen(&w.f, w.s, CONFIG("20") TASK("a-task", USES_PUSH), &o, &r);
        expect_log(&w.f, "DeleteOtaTaskConfiguration (OtaTaskConfiguration/push)");
        assert_int_equal(w.s->nretired, 0);
        otr_apply_result_clear(&r);
        free(old);
        world_free(&w);
    }
}

static void test_failure_skips_what_waits(void **state)
{
    (void)state;
    world w;
    world_new(&w);
    otr_apply_result r;
    otr_apply_options o = one_at_a_time();
    w.f.fail_op = "CreateOtaTaskConfiguration";
    apply(&w.f, w.s, CONFIG("10") TASK("a-task", USES_PUSH) TASK("b-task", ""), &o, &r);
    expect_log(&w.f, "CreateOtaTaskConfiguration (OtaTaskConfiguration/push) failed; "
                     "CreateOtaTask (b-task); GetOtaTask (b-task)");
    assert_int_equal(r.stats.failed, 2);
    assert_int_equal(r.stats.created, 1);
    assert_int_equal(r.nfailures, 2);
    int skipped = 0;
    for (size_t i = 0; i < r.nfailures; i++)
        if (!strcmp(r.failures[i].name, "a-task")) {
            skipped = 1;
            assert_string_equal(
                r.failures[i].description,
                "a-task: not started: it waits for OtaTaskConfiguration/push, which "
                "failed; the next apply tries again");
        }
    assert_true(skipped);
    assert_null(otr_state_find(w.s, &otr_kind_ota_task, "a-task"));
    otr_apply_result_clear(&r);
    world_free(&w);
}

/* --fail-fast: nothing new starts, but a replace whose delete went through
 * goes on to its create */
static void test_stop_carries_started_chains(void **state)
{
    (void)state;
    world w;
    world_new(&w);
    otr_apply_result r;
    otr_apply_options o = OTR_APPLY_OPTIONS_INIT;
    apply(&w.f, w.s, TASK("a-task", "") TASK("c-task", ""), &o, &r);
    otr_apply_result_clear(&r);
    /* c: a replace (delete, create); a: an update that fails while c is
     * between its delete and its create; d: a create not yet started */
    o.parallelism = 2;
    o.fail_fast = 1;
    w.f.fail_op = "UpdateOtaTask";
    apply(&w.f, w.s,
          TASK("a-task", ", Description: Other") TASK("c-task", ", Target: [x]") TASK("d-task", ""),
          &o, &r);
    expect_log(&w.f,
               "DeleteOtaTask (c-task); UpdateOtaTask (a-task) failed; CreateOtaTask (c-task); "
               "GetOtaTask (c-task)");
    assert_string_equal(r.stopped, "--fail-fast: stopped after the first failure");
    assert_int_equal(r.stats.replaced, 1);
    assert_int_equal(r.nnot_started, 1);
    assert_string_equal(r.not_started[0], "d-task");
    assert_non_null(otr_state_find(w.s, &otr_kind_ota_task, "c-task")->id);
    otr_apply_result_clear(&r);
    world_free(&w);
}

static void test_stop_between_delete_and_create_is_reported(void **state)
{
    (void)state;
    world w;
    world_new(&w);
    otr_apply_result r;
    otr_apply_options o = one_at_a_time();
    apply(&w.f, w.s, TASK("a-task", "") TASK("b-task", ""), &o, &r);
    otr_apply_result_clear(&r);
    char *old = strdup(id_of(w.s, &otr_kind_ota_task, "a-task"));
    o.fail_fast = 1;
    w.f.fail_op = "CreateOtaTask";
    apply(&w.f, w.s, TASK("a-task", ", Target: [x]") TASK("b-task", ", Target: [y]"), &o, &r);
    expect_log(&w.f, "DeleteOtaTask (a-task); CreateOtaTask (a-task) failed");
    assert_int_equal(r.nfailures, 1);
    otr_buf want = OTR_BUF_INIT;
    otr_buf_printf(&want,
                   "its old task %s was deleted and the new one is not created yet: the "
                   "next apply creates it",
                   old);
    assert_non_null(strstr(r.failures[0].description, want.ptr));
    assert_int_equal(r.nnot_started, 1);
    assert_string_equal(r.not_started[0], "b-task");
    assert_string_equal(r.stopped, "--fail-fast: stopped after the first failure");
    otr_buf_free(&want);
    free(old);
    otr_apply_result_clear(&r);
    world_free(&w);
}

static void test_signal_starts_nothing_new(void **state)
{
    (void)state;
    world w;
    world_new(&w);
    otr_apply_result r;
    otr_apply_options o = one_at_a_time();
    o.interrupted = interrupted;
    o.interrupted_ctx = &w.f;
    w.f.interrupt_after = 4;
    apply(&w.f, w.s, TASK("a-task", "") TASK("b-task", "") TASK("c-task", "") TASK("d-task", ""),
          &o, &r);
    expect_log(
        &w.f,
        "CreateOtaTask (a-task); GetOtaTask (a-task); CreateOtaTask (b-task); GetOtaTask (b-task)");
    assert_int_equal(r.signal, SIGTERM);
    assert_string_equal(r.stopped, "interrupted by SIGTERM");
    assert_int_equal(r.stats.created, 2);
    assert_int_equal(r.nnot_started, 2);
    assert_string_equal(r.not_started[0], "c-task");
    assert_int_equal(w.s->count, 2);
    otr_apply_result_clear(&r);
    world_free(&w);
}

static const char *sent_str(const fake *f, int i, const char *key)
{
    const cJSON *body = cJSON_GetArrayItem(f->sent, i);
    const cJSON *v = cJSON_GetObjectItem(body, key);
    if (!v)
        v = cJSON_GetObjectItem(cJSON_GetObjectItem(body, "Tags"), key);
    return cJSON_GetStringValue(v);
}

/* A create answered with a task that is gone (a token the service saw
 * before): not recorded; the token is spent and the create sent again with
 * the next generation, which the new task is tagged with. */
static void test_dead_answer_is_sent_again(void **state)
{
    (void)state;
    world w;
    world_new(&w);
    otr_apply_result r;
    otr_apply_options o = one_at_a_time();
    w.f.dead_answers = 1;
    apply(&w.f, w.s, TASK("a-task", ""), &o, &r);
    expect_log(&w.f, "CreateOtaTask (a-task); GetOtaTask (a-task) failed; CreateOtaTask (a-task); "
                     "GetOtaTask (a-task)");
    assert_int_equal(r.stats.created, 1);
    assert_int_equal(r.nfailures, 0);
    const char *first = sent_str(&w.f, 0, "ClientToken"),
               *second = sent_str(&w.f, 1, "ClientToken");
    assert_non_null(first);
    assert_non_null(second);
    assert_string_not_equal(first, second);
    assert_null(sent_str(&w.f, 0, "ota-runner:generation"));
    assert_string_equal(sent_str(&w.f, 1, "ota-runner:generation"), "1");
    char want[44];
    assert_int_equal(otr_token_generation(want, first, 1), 0);
    assert_string_equal(second, want);
    assert_string_equal(id_of(w.s, &otr_kind_ota_task, "a-task"), "ota1");
    assert_int_equal(w.s->nspent, 1);
    assert_string_equal(w.s->spent[0], first);
    otr_apply_result_clear(&r);
    world_free(&w);
}

/* Dead answers without end: after a few, the create fails and nothing is
 * recorded. */
static void test_dead_answers_give_up(void **state)
{
    (void)state;
    world w;
    world_new(&w);
    otr_apply_result r;
    otr_apply_options o = one_at_a_time();
    w.f.dead_answers = 100;
    apply(&w.f, w.s, TASK("a-task", ""), &o, &r);
    assert_int_equal(cJSON_GetArraySize(w.f.sent), 4);
    assert_int_equal(r.stats.created, 0);
    assert_int_equal(r.nfailures, 1);
    assert_non_null(strstr(r.failures[0].description, "a token used before; not recorded"));
    assert_null(otr_state_find(w.s, &otr_kind_ota_task, "a-task"));
    assert_int_equal(w.s->nspent, 4);
    otr_apply_result_clear(&r);
    world_free(&w);
}

/* A resumed update asks first; the service already has it: no second call. */
static void test_resume_asks_first(void **state)
{
    (void)state;
    world w;
    world_new(&w);
    otr_apply_result r;
    otr_apply_options o = one_at_a_time();
    otr_error err = OTR_ERROR_INIT;
    apply(&w.f, w.s, TASK("a-task", ", Description: First") TASK("b-task", ""), &o, &r);
    otr_apply_result_clear(&r);
    /* a run announced an update of a and a delete of b, then died; the
     * update reached the service, the delete too */
    otr_intent up = {0}, del = {0};
    up.op = OTR_OP_UPDATE;
    assert_int_equal(otr_record_copy(&up.rec, otr_state_find(w.s, &otr_kind_ota_task, "a-task")),
                     0);
    cJSON *second = otr_record_spec(&up.rec);
    cJSON_ReplaceItemInObject(second, "Description", cJSON_CreateString("Second"));
    assert_int_equal(otr_record_set_spec(&up.rec, second), 0);
    cJSON_Delete(second);
    del.op = OTR_OP_DELETE;
    assert_int_equal(otr_record_copy(&del.rec, otr_state_find(w.s, &otr_kind_ota_task, "b-task")),
                     0);
    assert_int_equal(otr_state_journal_intent(w.s, &up, &err), 0);
    assert_int_equal(otr_state_journal_intent(w.s, &del, &err), 0);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(w.f.tasks, up.rec.id), "Description",
                              cJSON_CreateString("Second"));
    cJSON_DeleteItemFromObject(w.f.tasks, del.rec.id);
    apply_seen(&w.f, w.s, TASK("a-task", ", Description: Second"), &o, &r);
    expect_log(&w.f, "GetOtaTask (a-task); GetOtaTask (b-task) failed");
    assert_int_equal(r.stats.resumed, 2);
    assert_int_equal(r.stats.failed, 0);
    assert_int_equal(w.s->npending, 0);
    assert_null(otr_state_find(w.s, &otr_kind_ota_task, "b-task"));
    char *held =
        otr_record_spec_string(otr_state_find(w.s, &otr_kind_ota_task, "a-task"), "Description");
    assert_string_equal(held, "Second");
    free(held);
    otr_intent_clear(&up);
    otr_intent_clear(&del);
    otr_apply_result_clear(&r);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configuration_first),
        cmocka_unit_test(test_configuration_replace),
        cmocka_unit_test(test_in_use_is_kept_retired),
        cmocka_unit_test(test_failure_skips_what_waits),
        cmocka_unit_test(test_stop_carries_started_chains),
        cmocka_unit_test(test_stop_between_delete_and_create_is_reported),
        cmocka_unit_test(test_signal_starts_nothing_new),
        cmocka_unit_test(test_resume_asks_first),
        cmocka_unit_test(test_dead_answer_is_sent_again),
        cmocka_unit_test(test_dead_answers_give_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
