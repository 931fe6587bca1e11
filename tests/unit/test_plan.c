/*
 * The plan's rules, one by one: create, noop, update, replace (a field, the
 * revision), delete with --prune, orphan without, the deletion guard,
 * --target, drift from a refresh (a vanished task, a changed field, a status),
 * resume and the state projected past it, the order of actions, and the
 * saved plan's round trip.
 */
#include "cli/render_plan.h"
#include "plan/plan.h"
#include "state/internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M(name, rev, spec)                                                                         \
    "---\napiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: " name ", revision: " rev     \
    "}\nspec: " spec "\n"
#define BASE "{S3Url: s3://b/k, OtaType: ONE_TIME, Description: First, Target: [a]}"

static void load_file(otr_manifest_set *set, const char *file, const char *yaml)
{
    otr_diags d = OTR_DIAGS_INIT;
    otr_error err = OTR_ERROR_INIT;
    memset(set, 0, sizeof(*set));
    assert_int_equal(otr_manifest_add_file(set, 0, file, yaml, strlen(yaml), &d, &err), 0);
    assert_int_equal(otr_manifest_set_finish(set, &d), 0);
    if (d.errors) {
        otr_buf b = OTR_BUF_INIT;
        otr_diag_format(&d.items[0], &b);
        fail_msg("%s", b.ptr);
    }
    otr_diags_free(&d);
}

static void load(otr_manifest_set *set, const char *yaml)
{
    load_file(set, "m.yaml", yaml);
}

/* A state in which every manifest of yaml was created, task id "T" + name. */
static otr_state *recorded(const char *yaml)
{
    otr_manifest_set set;
    load(&set, yaml);
    otr_state *s = otr_state_new("s.json");
    strcpy(s->lineage, "123e4567-e89b-42d3-a456-426614174000");
    s->serial = 4;
    for (size_t i = 0; i < set.count; i++) {
        otr_record r;
        assert_int_equal(otr_record_from_manifest(&r, set.items[i], "c0ffee"), 0);
        char id[64];
        snprintf(id, sizeof(id), "T%s", r.name);
        for (char *p = id; *p; p++)
            if (*p == '-')
                *p = 'x';
        r.id = strdup(id);
        r.remote_status = strdup("SCHEDULED");
        assert_int_equal(otr_state_put(s, &r), 0);
        otr_record_clear(&r);
    }
    otr_manifest_set_free(&set);
    return s;
}

static otr_plan *plan_with(otr_state *s, const char *yaml, const otr_plan_options *o)
{
    otr_manifest_set set;
    otr_error err = OTR_ERROR_INIT;
    otr_plan *p = NULL;
    load(&set, yaml);
    if (otr_plan_make(&p, s, &set, o, &err) < 0)
        fail_msg("plan: %s", otr_error_message(&err));
    otr_manifest_set_free(&set);
    return p;
}

/* "kind name,kind name,..." of the plan's actions (noops left out) */
static char *summary(const otr_plan *p)
{
    otr_buf b = OTR_BUF_INIT;
    for (size_t i = 0; i < p->count; i++)
        if (p->actions[i].kind != OTR_ACT_NOOP)
            otr_buf_printf(&b, "%s%s %s", b.len ? "," : "",
                           otr_action_kind_name(p->actions[i].kind), p->actions[i].name);
    return otr_buf_detach(&b);
}

/* The plan as a saved plan reads it back. */
static otr_plan *round_trip(const otr_plan *p)
{
    cJSON *j = otr_plan_to_json(p);
    char *text = cJSON_PrintUnformatted(j);
    cJSON *again = cJSON_Parse(text);
    otr_plan *q = NULL;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_plan_from_json(&q, again, &err), 0);
    cJSON_Delete(again);
    free(text);
    cJSON_Delete(j);
    return q;
}

static otr_plan_options opts(void)
{
    otr_plan_options o = OTR_PLAN_OPTIONS_INIT;
    o.commit = "beef";
    return o;
}

/* The guards' text for a plan (empty when none trips). */
static char *guards_of(const otr_plan *p, const otr_plan_guards *g, size_t *tripped)
{
    otr_buf b = OTR_BUF_INIT;
    *tripped = otr_plan_check_guards(p, g, &b);
    return otr_buf_detach(&b);
}

static void expect(otr_state *s, const char *yaml, const otr_plan_options *o, const char *want)
{
    otr_plan *p = plan_with(s, yaml, o);
    char *got = summary(p);
    if (strcmp(got, want) != 0)
        fail_msg("plan: got '%s', want '%s'", got, want);
    free(got);
    otr_plan_free(p);
}

static void test_rules(void **state)
{
    (void)state;
    otr_plan_options o = opts();
    const char *fleet = M("a", "1", BASE) M("b", "1", BASE);
    otr_state *s = recorded(fleet);
    otr_state *empty = otr_state_new("empty.json");

    expect(empty, fleet, &o, "create a,create b");
    otr_state_free(empty);
    expect(s, fleet, &o, ""); /* all noop */
    /* Description only: update, with the field's old and new values */
    const char *desc =
        M("a", "1", "{S3Url: s3://b/k, OtaType: ONE_TIME, Description: Second, Target: [a]}")
            M("b", "1", BASE);
    otr_plan *p = plan_with(s, desc, &o);
    assert_int_equal(p->counts[OTR_ACT_UPDATE], 1);
    assert_int_equal(p->counts[OTR_ACT_NOOP], 1);
    const otr_action *a = &p->actions[0];
    assert_int_equal(a->kind, OTR_ACT_UPDATE);
    assert_int_equal(a->nchanges, 1);
    assert_string_equal(a->changes[0].field, "Description");
    assert_string_equal(a->changes[0].old_value->valuestring, "First");
    assert_string_equal(a->changes[0].new_value->valuestring, "Second");
    otr_plan_free(p);
    /* TaskConfigurationId added: still an update */
    expect(s,
           M("a", "1",
             "{S3Url: s3://b/k, OtaType: ONE_TIME, Description: First, Target: [a], "
             "TaskConfigurationId: cfg1}") M("b", "1", BASE),
           &o, "update a");
    /* Description removed: UpdateOtaTask cannot unset it: replace */
    expect(s, M("a", "1", "{S3Url: s3://b/k, OtaType: ONE_TIME, Target: [a]}") M("b", "1", BASE),
           &o, "replace a");
    /* any other field: replace */
    expect(s,
           M("a", "1", "{S3Url: s3://b/k, OtaType: ONE_TIME, Description: First, Target: [b]}")
               M("b", "1", BASE),
           &o, "replace a");
    /* a revision bump: replace, with the reason */
    p = plan_with(s, M("a", "2", BASE) M("b", "1", BASE), &o);
    assert_int_equal(p->actions[0].kind, OTR_ACT_REPLACE);
    assert_string_equal(p->actions[0].reason,
                        "metadata.revision 1 -> 2: a fresh ClientToken, so a new task");
    otr_plan_free(p);
    /* a manifest gone: orphan; with --prune: delete */
    expect(s, M("a", "1", BASE), &o, "orphan b");
    o.prune = 1;
    expect(s, M("a", "1", BASE), &o, "delete b");
    /* the deletion guard counts replacements too; the plan itself is whole */
    otr_plan_guards g = OTR_PLAN_GUARDS_INIT;
    size_t tripped;
    g.allow_cancel = 1; /* the records say SCHEDULED: test_guards covers that */
    p = plan_with(s, M("a", "1", "{S3Url: s3://other, OtaType: ONE_TIME}"), &o);
    assert_int_equal(p->count, 2);
    g.max_deletes = 1;
    char *why = guards_of(p, &g, &tripped);
    assert_int_equal(tripped, 1);
    assert_string_equal(why, "this plan would delete 2 tasks (1 pruned, 1 replaced) and "
                             "--max-deletes is 1; look at the plan, then raise --max-deletes to "
                             "go ahead\n");
    free(why);
    g.max_deletes = 2;
    why = guards_of(p, &g, &tripped);
    assert_int_equal(tripped, 0);
    assert_string_equal(why, "");
    free(why);
    otr_plan_free(p);
    o.prune = 0;
    /* --target */
    const char *targets[] = {"b", NULL};
    o.targets = targets;
    expect(s,
           M("a", "1", "{S3Url: s3://x, OtaType: ONE_TIME}")
               M("b", "1", "{S3Url: s3://y, OtaType: ONE_TIME}") M("c", "1", BASE),
           &o, "replace b");
    o.targets = NULL;
    otr_state_free(s);
}

static void test_order(void **state)
{
    (void)state;
    otr_plan_options o = opts();
    o.prune = 1;
    otr_state *s = recorded(M("d1", "1", BASE) M("d2", "1", BASE) M("u1", "1", BASE)
                                M("r1", "1", BASE) M("n1", "1", BASE));
    expect(s,
           M("z-new", "1", BASE) M("a-new", "1", BASE)
               M("u1", "1", "{S3Url: s3://b/k, OtaType: ONE_TIME, Description: Other, Target: [a]}")
                   M("r1", "2", BASE) M("n1", "1", BASE),
           &o, "delete d1,delete d2,replace r1,update u1,create a-new,create z-new");
    otr_state_free(s);
}

static void test_refresh_drift(void **state)
{
    (void)state;
    otr_plan_options o = opts();
    const char *fleet = M("a", "1", BASE) M("b", "1", BASE);
    otr_state *s = recorded(fleet);
    /* the service no longer has b's task; a's status moved on */
    otr_remote_item tasks[] = {{.id = "Ta", .status = "IN_PROGRESS"}};
    otr_remote_view view[] = {{&otr_kind_ota_task, tasks, 1}, {NULL, NULL, 0}};
    o.remote = view;
    otr_plan *p = plan_with(s, fleet, &o);
    char *got = summary(p);
    assert_string_equal(got, "create b");
    free(got);
    assert_string_equal(p->actions[0].reason,
                        "drift: the recorded task Tb no longer exists in the service");
    assert_int_equal(p->nnotes, 1);
    assert_string_equal(p->notes[0], "a: status SCHEDULED -> IN_PROGRESS");
    otr_plan_free(p);

    /* --refresh full: someone changed a's Description in the service */
    cJSON *fields =
        cJSON_Parse("{\"TaskId\":\"Ta\",\"S3Url\":\"s3://b/k\",\"OtaType\":\"ONE_TIME\","
                    "\"Description\":\"Edited by hand\",\"Target\":[\"a\"]}");
    otr_remote_item full[] = {{.id = "Ta", .status = "SCHEDULED", .fields = fields},
                              {.id = "Tb", .status = "SCHEDULED"}};
    otr_remote_view fview[] = {{&otr_kind_ota_task, full, 2}, {NULL, NULL, 0}};
    o.remote = fview;
    p = plan_with(s, fleet, &o);
    got = summary(p);
    assert_string_equal(got, "update a");
    free(got);
    assert_string_equal(p->actions[0].reason,
                        "drift: the service's task differs from the manifest in Description");
    assert_string_equal(p->actions[0].changes[0].old_value->valuestring, "Edited by hand");
    otr_plan_free(p);
    cJSON_Delete(fields);
    otr_state_free(s);
}

/* An ended task takes no update of its fields (the service refuses one):
 * the plan drops them with a note and records nothing; its tags still change. */
static void test_ended_update(void **state)
{
    (void)state;
    otr_plan_options o = opts();
    otr_state *s = recorded(M("a", "1", BASE));
    otr_remote_item tasks[] = {{.id = "Ta", .status = "COMPLETED"}};
    otr_remote_view view[] = {{&otr_kind_ota_task, tasks, 1}, {NULL, NULL, 0}};
    o.remote = view;
    otr_plan *p = plan_with(s,
                            M("a", "1",
                              "{S3Url: s3://b/k, OtaType: ONE_TIME, "
                              "Description: Later, Target: [a]}"),
                            &o);
    char *got = summary(p);
    assert_string_equal(got, "");
    free(got);
    assert_int_equal(p->nrewrites, 0);
    assert_int_equal(p->nnotes, 2);
    assert_string_equal(p->notes[1],
                        "a: the task has ended (COMPLETED), and the service changes no field of "
                        "an ended task, so Description stays as the service has it; a new "
                        "metadata.revision makes a new task");
    otr_plan_free(p);

    p = plan_with(s,
                  M("a", "1",
                    "{S3Url: s3://b/k, OtaType: ONE_TIME, Description: Later, "
                    "Target: [a], Tags: {team: b}}"),
                  &o);
    got = summary(p);
    assert_string_equal(got, "update a");
    free(got);
    assert_int_equal(p->actions[0].nchanges, 1);
    assert_string_equal(p->actions[0].changes[0].field, "Tags");
    otr_plan_free(p);

    tasks[0].status = "IN_PROGRESS"; /* running: the update goes */
    p = plan_with(s,
                  M("a", "1",
                    "{S3Url: s3://b/k, OtaType: ONE_TIME, "
                    "Description: Later, Target: [a]}"),
                  &o);
    got = summary(p);
    assert_string_equal(got, "update a");
    free(got);
    otr_plan_free(p);
    otr_state_free(s);
}

static void test_resume_and_projection(void **state)
{
    (void)state;
    otr_plan_options o = opts();
    otr_state *s = recorded(M("a", "1", BASE));
    /* an interrupted run: a create of b (no result), a delete of a (no result) */
    otr_manifest_set set;
    load(&set, M("b", "1", BASE));
    s->pending = calloc(2, sizeof(*s->pending));
    s->pending[0].op = OTR_OP_CREATE;
    assert_int_equal(otr_record_from_manifest(&s->pending[0].rec, set.items[0], "c0ffee"), 0);
    s->pending[1].op = OTR_OP_DELETE;
    s->pending[1].rec.kind = &otr_kind_ota_task;
    s->pending[1].rec.name = strdup("a");
    s->pending[1].rec.id = strdup("Ta");
    s->npending = 2;
    otr_manifest_set_free(&set);
    /* the refresh says a's task is gone (the delete landed): the manifests
     * still want a and b: resume both, and a is created again in the same run */
    otr_remote_item none_left[] = {{.id = "Tz", .status = "COMPLETED"}};
    otr_remote_view gone[] = {{&otr_kind_ota_task, none_left, 1}, {NULL, NULL, 0}};
    o.remote = gone;
    expect(s, M("a", "1", BASE) M("b", "1", BASE), &o, "resume a,resume b,create a");
    /* a resumed name is not also counted unchanged (b's manifest is what
     * its resumed create records) */
    otr_plan *p = plan_with(s, M("a", "1", BASE) M("b", "1", BASE), &o);
    assert_int_equal(p->counts[OTR_ACT_NOOP], 0);
    assert_int_equal(p->counts[OTR_ACT_RESUME], 2);
    assert_int_equal(p->ndropped, 0);
    otr_plan_free(p);
    /* b's manifest changed since, and the refresh did not find b's task: the
     * create never reached the service; it is judged anew, not made only to
     * be replaced (found by the chaos test: a SCHEDULED task cancelled) */
    expect(s, M("a", "1", BASE) M("b", "1", "{S3Url: s3://new, OtaType: ONE_TIME}"), &o,
           "resume a,create a,create b");
    p = plan_with(s, M("a", "1", BASE) M("b", "1", "{S3Url: s3://new, OtaType: ONE_TIME}"), &o);
    assert_int_equal(p->ndropped, 1);
    assert_int_equal(p->dropped[0].op, OTR_OP_CREATE);
    assert_non_null(strstr(p->notes[0], "never reached the service"));
    otr_plan_free(p);
    /* the service not asked: b's create is not sent again blind (what it
     * made is not looked for, and a ClientToken the service forgot makes a
     * second task: found by the chaos test), the plan is refused */
    o.remote = NULL;
    otr_manifest_set blind_set;
    otr_error err = OTR_ERROR_INIT;
    load(&blind_set, M("a", "1", BASE) M("b", "1", BASE));
    assert_int_equal(otr_plan_make(&p, s, &blind_set, &o, &err), -1);
    assert_non_null(
        strstr(otr_error_message(&err), "b: an interrupted run left its create unfinished"));
    otr_error_clear(&err);
    otr_manifest_set_free(&blind_set);
    /* with --no-adopt (blind): b's create is resumed and replaced, and the
     * replace is held by the --allow-cancel guard (what it deletes was never
     * seen); the same after a saved plan is read back */
    o.blind = 1;
    p = plan_with(s, M("a", "1", BASE) M("b", "1", "{S3Url: s3://new, OtaType: ONE_TIME}"), &o);
    char *got = summary(p);
    assert_string_equal(got, "resume b,replace b");
    free(got);
    const otr_action *rb = &p->actions[1];
    assert_true(rb->after_resume);
    assert_string_equal(otr_action_cancels(rb), OTR_STATUS_UNKNOWN);
    otr_plan_guards g = OTR_PLAN_GUARDS_INIT;
    otr_buf why = OTR_BUF_INIT;
    assert_int_equal(otr_plan_check_guards(p, &g, &why), 1);
    assert_non_null(strstr(otr_buf_cstr(&why), "the one the resumed create makes"));
    otr_buf_free(&why);
    otr_plan *back = round_trip(p);
    assert_true(back->actions[1].after_resume);
    assert_string_equal(otr_action_cancels(&back->actions[1]), OTR_STATUS_UNKNOWN);
    otr_plan_free(back);
    otr_plan_free(p);
    o.remote = gone;
    /* a's task is still there (or the service was not asked): the delete is
     * not finished blindly; a, as its manifest says, is left as it is */
    otr_remote_item still[] = {{.id = "Ta", .status = "IN_PROGRESS"}};
    otr_remote_view there[] = {{&otr_kind_ota_task, still, 1}, {NULL, NULL, 0}};
    for (int asked = 0; asked < 2; asked++) {
        o.remote = asked ? there : NULL;
        p = plan_with(s, M("a", "1", BASE) M("b", "1", BASE), &o);
        char *got = summary(p);
        assert_string_equal(got, "resume b");
        free(got);
        assert_int_equal(p->ndropped, 1);
        assert_string_equal(p->dropped[0].rec.name, "a");
        assert_string_equal(p->dropped[0].rec.id, "Ta");
        assert_int_equal(p->counts[OTR_ACT_NOOP], 1);
        int said = 0;
        for (size_t i = 0; i < p->nnotes; i++)
            said |= strstr(p->notes[i], asked ? "it is still in the service"
                                              : "the service was not asked") != NULL;
        assert_true(said);
        /* a saved plan keeps them, for apply to take out of the journal */
        cJSON *j = otr_plan_to_json(p);
        otr_plan *back = NULL;
        otr_error err = OTR_ERROR_INIT;
        assert_int_equal(otr_plan_from_json(&back, j, &err), 0);
        assert_int_equal(back->ndropped, 1);
        assert_string_equal(back->dropped[0].rec.id, "Ta");
        assert_int_equal(back->dropped[0].op, OTR_OP_DELETE);
        otr_plan_free(back);
        cJSON_Delete(j);
        otr_plan_free(p);
    }
    otr_state_free(s);
}

/* apply refuses, unless told, to delete a task the service reports running,
 * and to prune every task when no manifest is left */
static void test_guards(void **state)
{
    (void)state;
    otr_plan_options o = opts();
    otr_plan_guards g = OTR_PLAN_GUARDS_INIT;
    size_t tripped;
    otr_state *s = recorded(M("a", "1", BASE) M("b", "1", BASE));
    const char *target_changed =
        M("a", "1", "{S3Url: s3://b/k, OtaType: ONE_TIME, Description: First, Target: [z]}")
            M("b", "1", BASE);
    /* recorded SCHEDULED: a replace cancels it */
    otr_plan *p = plan_with(s, target_changed, &o);
    assert_string_equal(otr_action_cancels(&p->actions[0]), "SCHEDULED");
    char *why = guards_of(p, &g, &tripped);
    assert_int_equal(tripped, 1);
    assert_string_equal(why, "this plan would delete 1 running task, cancelling their devices' "
                             "executions: a (replace task Ta, SCHEDULED); give --allow-cancel "
                             "to go ahead\n");
    free(why);
    g.allow_cancel = 1;
    why = guards_of(p, &g, &tripped);
    assert_int_equal(tripped, 0);
    free(why);
    g.allow_cancel = 0;
    otr_plan_free(p);
    /* the refresh's word wins over the recorded one: COMPLETED is not running */
    otr_remote_item tasks[] = {{.id = "Ta", .status = "COMPLETED"},
                               {.id = "Tb", .status = "IN_PROGRESS"}};
    otr_remote_view view[] = {{&otr_kind_ota_task, tasks, 2}, {NULL, NULL, 0}};
    o.remote = view;
    p = plan_with(s, target_changed, &o);
    assert_null(otr_action_cancels(&p->actions[0]));
    assert_string_equal(p->actions[0].old.remote_status, "COMPLETED");
    why = guards_of(p, &g, &tripped);
    assert_int_equal(tripped, 0);
    free(why);
    otr_plan_free(p);
    /* a prune of a running task trips it too; a prune of everything with no
     * manifest left trips the empty guard as well */
    o.prune = 1;
    otr_manifest_set none = OTR_MANIFEST_SET_INIT;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_plan_make(&p, s, &none, &o, &err), 0);
    assert_int_equal(p->counts[OTR_ACT_DELETE], 2);
    why = guards_of(p, &g, &tripped);
    assert_int_equal(tripped, 2);
    assert_non_null(strstr(why, "b (delete task Tb, IN_PROGRESS)"));
    assert_non_null(strstr(why, "no manifest was found under"));
    free(why);
    g.allow_cancel = g.allow_empty = 1;
    why = guards_of(p, &g, &tripped);
    assert_int_equal(tripped, 0);
    free(why);
    otr_plan_free(p);
    otr_state_free(s);
}

/* a manifest moved to another file (git mv) is a noop that records the new
 * file, without a call */
static void test_relocation(void **state)
{
    (void)state;
    otr_plan_options o = opts();
    otr_state *s = recorded(M("a", "1", BASE));
    otr_manifest_set set;
    otr_error err = OTR_ERROR_INIT;
    otr_plan *p = NULL;
    load_file(&set, "moved/a.yaml", M("a", "1", BASE));
    assert_int_equal(otr_plan_make(&p, s, &set, &o, &err), 0);
    assert_int_equal(otr_plan_changes(p), 0);
    assert_int_equal(p->counts[OTR_ACT_NOOP], 1);
    assert_int_equal(p->nrewrites, 1);
    assert_string_equal(p->rewrites[0].rec.file, "moved/a.yaml");
    assert_string_equal(p->rewrites[0].rec.commit, "beef");
    assert_string_equal(p->notes[0],
                        "a: its manifest moved from m.yaml to moved/a.yaml; apply records that, "
                        "without a call");
    /* it survives a saved plan */
    cJSON *j = otr_plan_to_json(p);
    otr_plan *q = NULL;
    assert_int_equal(otr_plan_from_json(&q, j, &err), 0);
    assert_int_equal(q->nrewrites, 1);
    assert_string_equal(q->rewrites[0].rec.name, "a");
    assert_int_equal(q->manifests, 1);
    cJSON_Delete(j);
    otr_plan_free(q);
    otr_plan_free(p);
    otr_manifest_set_free(&set);
    otr_state_free(s);
}

static void test_saved_plan_round_trip(void **state)
{
    (void)state;
    otr_plan_options o = opts();
    o.repo = "/srv/fleet";
    o.ref = "main";
    o.path = "manifests";
    otr_state *s = recorded(M("a", "1", BASE));
    otr_plan *p =
        plan_with(s,
                  M("a", "1", "{S3Url: s3://b/k, OtaType: ONE_TIME, Description: New, Target: [a]}")
                      M("b", "1", BASE),
                  &o);
    cJSON *j = otr_plan_to_json(p);
    otr_plan *q = round_trip(p);
    otr_error err = OTR_ERROR_INIT;
    assert_string_equal(q->lineage, s->lineage);
    assert_int_equal(q->serial, 4);
    assert_string_equal(q->commit, "beef");
    assert_string_equal(q->repo, "/srv/fleet");
    assert_int_equal(q->count, 2);
    assert_int_equal(q->actions[0].kind, OTR_ACT_UPDATE);
    assert_string_equal(q->actions[0].old.id, "Ta");
    char *description = otr_record_spec_string(&q->actions[0].desired, "Description");
    assert_string_equal(description, "New");
    free(description);
    assert_int_equal(q->actions[1].kind, OTR_ACT_CREATE);
    assert_string_equal(q->actions[1].desired.client_token, p->actions[1].desired.client_token);
    cJSON *sum = cJSON_GetObjectItem(j, "summary");
    assert_int_equal(cJSON_GetObjectItem(sum, "changes")->valueint, 2);
    cJSON *bad = cJSON_Parse("{\"formatVersion\":99}");
    otr_plan *none = NULL;
    assert_int_equal(otr_plan_from_json(&none, bad, &err), -1);
    assert_null(none);
    otr_error_clear(&err);
    cJSON_Delete(bad);
    cJSON_Delete(j);
    otr_plan_free(q);
    otr_plan_free(p);
    otr_state_free(s);
}

/* A markdown cell keeps to its row and column, whatever the text holds; a
 * table of escapes writes each listed character as its string. */
static void test_escapes(void **state)
{
    (void)state;
    otr_buf b = OTR_BUF_INIT;
    otr_md_cell(&b, "a|b\n<c>");
    assert_string_equal(otr_buf_cstr(&b), "a\\|b &lt;c>");
    otr_md_cell(&b, NULL);
    assert_string_equal(otr_buf_cstr(&b), "a\\|b &lt;c>");
    otr_buf_clear(&b);
    static const otr_escape xml[] = {{'&', "&amp;"}, {'<', "&lt;"}, {0, NULL}};
    assert_int_equal(otr_buf_put_escaped(&b, "k&<v>", xml), 0);
    assert_string_equal(otr_buf_cstr(&b), "k&amp;&lt;v>");
    otr_buf_free(&b);
}

/* A plan of more creates than one window of descriptions (render_plan.c
 * describes a window at a time on several threads): each create's words
 * come right under its own line, and the devices' totals count every task. */
static void test_text_of_many_creates(void **state)
{
    (void)state;
    enum { N = 1300 };
    otr_buf yaml = OTR_BUF_INIT;
    long things = 0;
    for (int i = 0; i < N; i++) {
        otr_buf_printf(&yaml,
                       "---\napiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: t%04d}\n"
                       "spec: {S3Url: s3://b/k%d, OtaType: ONE_TIME, Target: [a%d",
                       i, i, i);
        for (int t = 1; t <= i % 3; t++)
            otr_buf_printf(&yaml, ", x%d", t);
        otr_buf_puts(&yaml, "]}\n");
        things += i % 3 + 1;
    }
    setenv("OTA_RUNNER_THREADS", "3", 1);
    otr_state *s = otr_state_new("s.json");
    otr_plan_options o = opts();
    otr_plan *p = plan_with(s, otr_buf_cstr(&yaml), &o);
    otr_buf text = OTR_BUF_INIT;
    otr_render_plan_text(p, NULL, &text, 0);
    unsetenv("OTA_RUNNER_THREADS");
    const char *at = otr_buf_cstr(&text);
    for (int i = 0; i < N; i++) {
        char line[64], words[64];
        snprintf(line, sizeof(line), "create  t%04d ", i);
        snprintf(words, sizeof(words), "firmware s3://b/k%d · ONE_TIME", i);
        at = strstr(at, line);
        assert_non_null(at);
        const char *next = strchr(at, '\n') + 1;
        const char *end = strchr(next, '\n');
        const char *found = strstr(next, words);
        if (!found || found > end)
            fail_msg("t%04d is described as: %.*s", i, (int)(end - next), next);
    }
    char devices[128];
    snprintf(devices, sizeof(devices),
             "Devices: %d tasks to create send firmware to %ld things by name.", N, things);
    assert_non_null(strstr(otr_buf_cstr(&text), devices));
    otr_buf_free(&text);
    otr_buf_free(&yaml);
    otr_plan_free(p);
    otr_state_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_refresh_drift),
        cmocka_unit_test(test_ended_update),
        cmocka_unit_test(test_resume_and_projection),
        cmocka_unit_test(test_guards),
        cmocka_unit_test(test_relocation),
        cmocka_unit_test(test_saved_plan_round_trip),
        cmocka_unit_test(test_text_of_many_creates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
