/*
 * The OtaRollout kind: a staged rollout. Each wave becomes one OTA task, made
 * of the rollout's `task` and the wave's targets, with a ClientToken of its
 * own; one apply creates at most the next wave, once the newest one passed
 * its gate on the service's own counts and soaked, unless `holdAfter` names
 * it or the rollout is paused. A wave that fails its gate (or its deadline)
 * halts the rollout until the manifest changes that wave's gate or the
 * revision. What has started cannot change under it: an edit to the task, or
 * to a started wave, is refused.
 *
 * The record's spec is the manifest's; its progress keeps the waves started
 * ({"name", "targets", "clientToken", "taskId", "taskArn", "createdAt",
 * "passedAt"}), the task's digest when the rollout started, and a halt
 * ({"wave", "reason", "at", "gate", "counts"}); its id is the newest wave's
 * task. The gate's arithmetic is in ota_rollout.h; how the rollout plans,
 * stands and is adopted is its behaviour (behaviour/rollout.c).
 */
#include "kinds/kind.h"
#include "kinds/tags.h"
#include "kinds/ota_rollout.h"
#include "kinds/record.h"
#include "manifest/schema.h"
#include "manifest/token.h"
#include "util/json.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the gate --------------------------------------------------------------- */

static double number_or(const cJSON *o, const char *key, double fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

static int64_t duration_or(const cJSON *o, const char *key, int64_t fallback)
{
    int64_t s;
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    return v && otr_time_parse_duration(v, &s) == 0 ? s : fallback;
}

void otr_rollout_gate(const cJSON *spec_gate, const cJSON *wave_gate, otr_gate *g)
{
    g->min_succeeded = OTR_GATE_DEFAULT_MIN_SUCCEEDED;
    g->max_failed = OTR_GATE_DEFAULT_MAX_FAILED;
    g->min_finished = OTR_GATE_DEFAULT_MIN_FINISHED;
    g->soak = OTR_GATE_DEFAULT_SOAK;
    g->deadline = OTR_GATE_NO_DEADLINE;
    const cJSON *layers[] = {spec_gate, wave_gate};
    for (size_t i = 0; i < 2; i++) {
        g->min_succeeded = number_or(layers[i], "minSucceededPercent", g->min_succeeded);
        g->max_failed = number_or(layers[i], "maxFailedPercent", g->max_failed);
        g->min_finished = (long)number_or(layers[i], "minFinished", (double)g->min_finished);
        g->soak = duration_or(layers[i], "soak", g->soak);
        g->deadline = duration_or(layers[i], "deadline", g->deadline);
    }
}

void otr_rollout_shares(const otr_ota_counts *c, long *things, long *finished, double *succeeded,
                        double *failed)
{
    *finished = c->succeeded + c->failed + c->timed_out + c->rejected + c->canceled;
    *things = *finished + c->queued + c->in_progress + c->removed;
    *succeeded = *things ? 100.0 * (double)c->succeeded / (double)*things : 0;
    *failed =
        *things ? 100.0 * (double)(c->failed + c->timed_out + c->rejected) / (double)*things : 0;
}

otr_verdict otr_rollout_judge(const otr_gate *g, const otr_ota_counts *c, int64_t started,
                              int64_t now, otr_buf *why)
{
    long things, finished;
    double ok, bad;
    otr_rollout_shares(c, &things, &finished, &ok, &bad);
    if (things && finished >= g->min_finished && bad > g->max_failed) {
        otr_buf_printf(why, "%.4g%% failed of %ld (at most %.4g%%)", bad, things, g->max_failed);
        return OTR_VERDICT_HALT;
    }
    if (things && finished >= g->min_finished && ok >= g->min_succeeded) {
        otr_buf_printf(why, "%.4g%% succeeded of %ld (at least %.4g%%)", ok, things,
                       g->min_succeeded);
        return OTR_VERDICT_PASS;
    }
    if (g->deadline != OTR_GATE_NO_DEADLINE && now - started > g->deadline) {
        char d[32];
        otr_time_format_duration(d, g->deadline);
        otr_buf_printf(why,
                       "no pass within its deadline of %s: %.4g%% succeeded, %ld of %ld finished",
                       d, ok, finished, things);
        return OTR_VERDICT_HALT;
    }
    char d[32] = "";
    if (g->deadline != OTR_GATE_NO_DEADLINE)
        otr_time_format_duration(d, g->deadline);
    otr_buf_printf(why,
                   "%.4g%% succeeded, %.4g%% failed, %ld of %ld finished (needs at least %ld "
                   "finished; passes at %.4g%% succeeded, halts above %.4g%% failed%s%s)",
                   ok, bad, finished, things, g->min_finished, g->min_succeeded, g->max_failed,
                   *d ? " or with no pass within " : "", d);
    return OTR_VERDICT_WAIT;
}

/* ---- waves ------------------------------------------------------------------ */

const cJSON *otr_rollout_waves(const cJSON *spec)
{
    return cJSON_GetObjectItemCaseSensitive(spec, "waves");
}

const cJSON *otr_rollout_started(const otr_record *rec)
{
    return cJSON_GetObjectItemCaseSensitive(rec->progress, "waves");
}

const char *otr_rollout_str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* A wave's targets: its Target and OtaTargetQueryString. */
cJSON *otr_rollout_targets(const cJSON *wave)
{
    static const char *const keys[] = {"OtaTargetQueryString", "Target"};
    cJSON *t = cJSON_CreateObject();
    for (size_t i = 0; t && i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(wave, keys[i]);
        if (v)
            cJSON_AddItemToObject(t, keys[i], cJSON_Duplicate(v, 1));
    }
    return t;
}

/* The body of a wave's task: the rollout's task with the wave's targets. */
cJSON *otr_rollout_wave_body(const cJSON *task, const cJSON *targets)
{
    cJSON *body = cJSON_Duplicate(task, 1);
    const cJSON *t;
    otr_jb b = OTR_JB_INIT;
    cJSON_ArrayForEach(t, targets) otr_jb_add(&b, body, t->string, cJSON_Duplicate(t, 1));
    if (b.failed || otr_canonical_sort(body) < 0) {
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

/* ---- the hooks apply uses ------------------------------------------------------ */

static int body_of(const otr_record *rec, cJSON **body, char token[OTR_TOKEN_SIZE])
{
    const cJSON *waves = otr_rollout_started(rec);
    const cJSON *last = cJSON_GetArrayItem(waves, cJSON_GetArraySize(waves) - 1);
    const char *tok = otr_rollout_str(last, "clientToken");
    *body = NULL;
    if (!last || !tok || strlen(tok) != 43)
        return -1;
    cJSON *spec = otr_record_spec(rec);
    *body = spec ? otr_rollout_wave_body(cJSON_GetObjectItemCaseSensitive(spec, "task"),
                                         cJSON_GetObjectItemCaseSensitive(last, "targets"))
                 : NULL;
    cJSON_Delete(spec);
    memcpy(token, tok, OTR_TOKEN_SIZE);
    return *body ? 0 : -1;
}

void otr_rollout_set(cJSON *o, const char *key, const char *value)
{
    if (!value)
        return;
    cJSON *v = cJSON_CreateString(value);
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
    else
        cJSON_AddItemToObject(o, key, v);
}

static int created(otr_record *rec)
{
    cJSON *waves = cJSON_GetObjectItemCaseSensitive(rec->progress, "waves");
    cJSON *last = cJSON_GetArrayItem(waves, cJSON_GetArraySize(waves) - 1);
    if (!last)
        return -1;
    otr_rollout_set(last, "taskId", rec->id);
    otr_rollout_set(last, "taskArn", rec->arn);
    otr_rollout_set(last, "createdAt", rec->created_at);
    return 0;
}

/* The newest wave notes the ids its body's references resolved to ("uses":
 * {"TaskConfigurationId": ID}). */
static int sent(otr_record *rec, const cJSON *body)
{
    cJSON *waves = cJSON_GetObjectItemCaseSensitive(rec->progress, "waves");
    cJSON *last = cJSON_GetArrayItem(waves, cJSON_GetArraySize(waves) - 1);
    if (!last)
        return -1;
    cJSON *uses = cJSON_CreateObject();
    const otr_kind *k = &otr_kind_ota_task;
    for (size_t i = 0; uses && i < k->nrefs; i++) {
        const char *id = otr_rollout_str(body, k->refs[i].id_field);
        if (id && !cJSON_AddStringToObject(uses, k->refs[i].id_field, id))
            break;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(last, "uses");
    return uses && cJSON_AddItemToObject(last, "uses", uses) ? 0 : (cJSON_Delete(uses), -1);
}

/* A wave whose task is there (not deleted) and that uses id, or that may:
 * one started before waves noted what they use, while the rollout names a
 * configuration at all. */
static int refers_to(const otr_record *rec, const char *id_field, const char *id)
{
    const cJSON *w;
    cJSON_ArrayForEach(w, otr_rollout_started(rec))
    {
        const cJSON *uses = cJSON_GetObjectItemCaseSensitive(w, "uses");
        if (!otr_rollout_str(w, "taskId"))
            continue;
        if (!uses ||
            (otr_rollout_str(uses, id_field) && !strcmp(otr_rollout_str(uses, id_field), id)))
            return 1;
    }
    return 0;
}

static size_t ids_of(const otr_record *rec, const char **ids, size_t max)
{
    size_t n = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, otr_rollout_started(rec))
    {
        const char *id = otr_rollout_str(w, "taskId");
        if (id && n < max)
            ids[n++] = id;
    }
    return n;
}

/* The newest wave with an id left, as the record's id. */
static void newest_id(otr_record *rec)
{
    const cJSON *w;
    free(rec->id);
    free(rec->arn);
    rec->id = rec->arn = NULL;
    cJSON_ArrayForEach(w, otr_rollout_started(rec))
    {
        if (!otr_rollout_str(w, "taskId"))
            continue;
        free(rec->id);
        free(rec->arn);
        rec->id = strdup(otr_rollout_str(w, "taskId"));
        rec->arn = otr_rollout_str(w, "taskArn") ? strdup(otr_rollout_str(w, "taskArn")) : NULL;
    }
}

/* A member of the started wave whose task is id, or NULL. */
static const char *wave_member(const otr_record *rec, const char *id, const char *key)
{
    const cJSON *w;
    cJSON_ArrayForEach(w, otr_rollout_started(rec))
    {
        const char *wid = otr_rollout_str(w, "taskId");
        if (wid && id && !strcmp(wid, id))
            return otr_rollout_str(w, key);
    }
    return NULL;
}

/* The token of the wave whose task is id. */
static const char *token_of(const otr_record *rec, const char *id)
{
    return wave_member(rec, id, "clientToken");
}

/* The name of the wave whose task is id. */
static const char *id_name(const otr_record *rec, const char *id)
{
    return wave_member(rec, id, "name");
}

static size_t forget_id(otr_record *rec, const char *id)
{
    const char *ids[OTR_KIND_MAX_IDS];
    cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(rec->progress, "waves"))
    {
        if (otr_rollout_str(w, "taskId") && !strcmp(otr_rollout_str(w, "taskId"), id)) {
            cJSON_DeleteItemFromObjectCaseSensitive(w, "taskId");
            cJSON_DeleteItemFromObjectCaseSensitive(w, "taskArn");
            cJSON_AddTrueToObject(w, "deleted");
        }
    }
    newest_id(rec);
    return ids_of(rec, ids, OTR_KIND_MAX_IDS);
}

void otr_rollout_targets_text(const cJSON *w, otr_buf *out)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(w, "targets");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(t ? t : w, "Target");
    const char *query = otr_rollout_str(t ? t : w, "OtaTargetQueryString");
    int n = cJSON_GetArraySize(list);
    if (list)
        otr_buf_printf(out, "%d thing%s", n, n == 1 ? "" : "s");
    if (query)
        otr_buf_printf(out, "%s%s", list ? " + " : "", query);
}

static void describe_waves(const cJSON *spec, otr_buf *out)
{
    const cJSON *w;
    otr_buf_puts(out, out->len ? " · waves: " : "waves: ");
    int i = 0;
    cJSON_ArrayForEach(w, otr_rollout_waves(spec))
    {
        otr_buf t = OTR_BUF_INIT;
        otr_rollout_targets_text(w, &t);
        otr_buf_printf(out, "%s%s (%s)", i++ ? ", " : "", otr_rollout_str(w, "name"),
                       otr_buf_cstr(&t));
        otr_buf_free(&t);
    }
    if (otr_rollout_str(spec, "holdAfter"))
        otr_buf_printf(out, " · held after %s", otr_rollout_str(spec, "holdAfter"));
}

static void describe(const char *spec_json, const char *refs, otr_buf *out)
{
    const char *task = NULL;
    size_t len = 0;
    cJSON *spec = spec_json ? cJSON_Parse(spec_json) : NULL;
    if (!spec)
        return;
    if (!otr_json_member_at(spec_json, strlen(spec_json), "task", &task, &len))
        task = NULL;
    otr_describe_task_json(task, len, refs, out);
    describe_waves(spec, out);
    cJSON_Delete(spec);
}

/* ---- the manifest -------------------------------------------------------------------- */

/* What can never be: a wave whose gate asks more finished things than its
 * Target names (it waits for ever, or to its deadline), a device or a target
 * query in two waves (two tasks for the same devices). */
static void check_waves_apart(const cJSON *spec, otr_kind_report_fn report, void *ctx)
{
    const cJSON *waves = otr_rollout_waves(spec), *w;
    int i = 0;
    cJSON_ArrayForEach(w, waves)
    {
        char field[96];
        const cJSON *targets = cJSON_GetObjectItemCaseSensitive(w, "Target");
        const char *query = otr_rollout_str(w, "OtaTargetQueryString");
        const cJSON *wave_gate = cJSON_GetObjectItemCaseSensitive(w, "gate");
        otr_gate g;
        otr_rollout_gate(cJSON_GetObjectItemCaseSensitive(spec, "gate"), wave_gate, &g);
        int things = cJSON_GetArraySize(targets);
        if (targets && !query && g.min_finished > things) {
            int own = cJSON_GetObjectItemCaseSensitive(wave_gate, "minFinished") != NULL;
            if (own)
                snprintf(field, sizeof(field), "spec.waves.%d.gate.minFinished", i);
            report(ctx, own ? field : "spec.gate.minFinished",
                   "wave \"%s\" can never pass: its gate waits for %ld finished things, and its "
                   "Target names %d",
                   otr_rollout_str(w, "name") ? otr_rollout_str(w, "name") : "?", g.min_finished,
                   things);
        }
        int j = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, waves)
        {
            if (j++ >= i)
                break;
            const char *other = otr_rollout_str(v, "OtaTargetQueryString");
            if (query && other && !strcmp(query, other)) {
                snprintf(field, sizeof(field), "spec.waves.%d.OtaTargetQueryString", i);
                report(ctx, field,
                       "wave \"%s\" has the target query of wave \"%s\": its devices "
                       "would get two tasks",
                       otr_rollout_str(w, "name") ? otr_rollout_str(w, "name") : "?",
                       otr_rollout_str(v, "name") ? otr_rollout_str(v, "name") : "?");
            }
            int k = 0;
            const cJSON *t;
            cJSON_ArrayForEach(t, targets)
            {
                const cJSON *u;
                cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(v, "Target"))
                {
                    if (cJSON_IsString(t) && cJSON_IsString(u) &&
                        !strcmp(t->valuestring, u->valuestring)) {
                        snprintf(field, sizeof(field), "spec.waves.%d.Target.%d", i, k);
                        report(ctx, field,
                               "%s is a target of wave \"%s\" too: it would get two "
                               "tasks",
                               t->valuestring,
                               otr_rollout_str(v, "name") ? otr_rollout_str(v, "name") : "?");
                    }
                }
                k++;
            }
        }
        i++;
    }
}

/* Wave names unique; holdAfter names a wave; every wave has targets. */
static void check_rollout(const cJSON *spec, otr_kind_report_fn report, void *ctx)
{
    const cJSON *waves = otr_rollout_waves(spec), *w;
    const char *hold = otr_rollout_str(spec, "holdAfter");
    const char *names[OTR_ROLLOUT_MAX_WAVES + 1];
    int i = 0, hold_found = 0, nnames = 0;
    cJSON_ArrayForEach(w, waves)
    {
        char field[64];
        const char *name = otr_rollout_str(w, "name");
        if (name && nnames < OTR_ROLLOUT_MAX_WAVES)
            names[nnames++] = name;
        const cJSON *v;
        int j = 0;
        cJSON_ArrayForEach(v, waves)
        {
            if (j++ < i && name && otr_rollout_str(v, "name") &&
                !strcmp(name, otr_rollout_str(v, "name"))) {
                snprintf(field, sizeof(field), "spec.waves.%d.name", i);
                report(ctx, field, "wave \"%s\" is named twice; wave names are unique", name);
            }
        }
        if (!cJSON_GetObjectItemCaseSensitive(w, "Target") &&
            !cJSON_GetObjectItemCaseSensitive(w, "OtaTargetQueryString")) {
            snprintf(field, sizeof(field), "spec.waves.%d", i);
            report(ctx, field, "wave \"%s\" has no targets: give Target or OtaTargetQueryString",
                   name ? name : "?");
        }
        hold_found |= hold && name && !strcmp(hold, name);
        i++;
    }
    names[nnames] = NULL;
    const char *near = hold && !hold_found ? otr_schema_suggest_word(names, hold) : NULL;
    if (hold && !hold_found)
        report(ctx, "spec.holdAfter", "names no wave of this rollout: \"%s\"%s%s%s", hold,
               near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "");
    check_waves_apart(spec, report, ctx);
    otr_tags_check(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "task"), "Tags"),
        "spec.task.Tags", report, ctx);
}

/* The field of a wave's gate key: the wave's own, or the rollout's. */
static void gate_field(char *out, size_t size, const cJSON *wave_gate, int i, const char *key)
{
    if (cJSON_GetObjectItemCaseSensitive(wave_gate, key))
        snprintf(out, size, "spec.waves.%d.gate.%s", i, key);
    else
        snprintf(out, size, "spec.gate.%s", key);
}

/* Is a target query only terms joined by AND (what can be compared)? */
static int plain_and(const char *q)
{
    return !strstr(q, " OR ") && !strstr(q, "NOT ") && !strchr(q, '(') && !strchr(q, ')');
}

/* The AND-joined term of a query at *p: its start, its length in *n
 * (trimmed); *p moves past it, to NULL after the last. */
static const char *next_term(const char **p, size_t *n)
{
    const char *t = *p;
    while (*t == ' ')
        t++;
    const char *end = strstr(t, " AND ");
    *n = end ? (size_t)(end - t) : strlen(t);
    while (*n && t[*n - 1] == ' ')
        (*n)--;
    *p = end ? end + 5 : NULL;
    return t;
}

/* Is term (len bytes) one of the AND-joined terms of q? */
static int has_term(const char *q, const char *term, size_t len)
{
    size_t n;
    for (const char *p = q; p;) {
        const char *t = next_term(&p, &n);
        if (n == len && !memcmp(t, term, len))
            return 1;
    }
    return 0;
}

/* Does broad match every device narrow matches: is each of broad's terms
 * one of narrow's? Only for plain AND-joined queries. */
static int query_covers(const char *broad, const char *narrow)
{
    size_t n;
    if (!plain_and(broad) || !plain_and(narrow))
        return 0;
    for (const char *p = broad; p;) {
        const char *t = next_term(&p, &n);
        if (!has_term(narrow, t, n))
            return 0;
    }
    return 1;
}

/* What is allowed but likely not meant: a soak longer than the deadline
 * (the deadline bounds the wait for the pass only), and a wave's target
 * query that matches every device of another wave's (its terms are a part
 * of the other's, joined by AND): ota-runner cannot see which devices a
 * query matches, so it warns where the overlap shows in the text. */
static void advise_rollout(const cJSON *spec, otr_kind_report_fn warn, void *ctx)
{
    const cJSON *waves = otr_rollout_waves(spec), *w;
    int i = 0;
    cJSON_ArrayForEach(w, waves)
    {
        char field[96], soak[32], deadline[32];
        const char *name = otr_rollout_str(w, "name") ? otr_rollout_str(w, "name") : "?";
        const char *query = otr_rollout_str(w, "OtaTargetQueryString");
        const cJSON *wave_gate = cJSON_GetObjectItemCaseSensitive(w, "gate");
        otr_gate g;
        otr_rollout_gate(cJSON_GetObjectItemCaseSensitive(spec, "gate"), wave_gate, &g);
        if (g.deadline != OTR_GATE_NO_DEADLINE && g.soak > g.deadline) {
            gate_field(field, sizeof(field), wave_gate, i, "soak");
            otr_time_format_duration(soak, g.soak);
            otr_time_format_duration(deadline, g.deadline);
            warn(ctx, field,
                 "wave \"%s\" soaks %s, longer than its deadline of %s: the deadline bounds "
                 "only the wait for its pass, and the next wave starts %s after the pass",
                 name, soak, deadline, soak);
        }
        const cJSON *v;
        int j = 0;
        cJSON_ArrayForEach(v, waves)
        {
            const char *other = otr_rollout_str(v, "OtaTargetQueryString");
            if (j++ >= i)
                break;
            if (!query || !other || !strcmp(query, other)) /* the same: an error already */
                continue;
            const char *broad = query_covers(query, other)   ? name
                                : query_covers(other, query) ? otr_rollout_str(v, "name")
                                                             : NULL;
            if (!broad)
                continue;
            snprintf(field, sizeof(field), "spec.waves.%d.OtaTargetQueryString", i);
            warn(ctx, field,
                 "the target query of wave \"%s\" matches every device that wave \"%s\"'s "
                 "does (its terms are a part of the other's): those devices would get two "
                 "tasks; tell the waves apart (a ring attribute each) unless that is meant",
                 broad,
                 broad == name ? (otr_rollout_str(v, "name") ? otr_rollout_str(v, "name") : "?")
                               : name);
        }
        i++;
    }
}

static const otr_kind_ref rollout_refs[] = {
    {"task.TaskConfigurationRef", "OtaTaskConfiguration", "TaskConfigurationId"},
};
static const char *const rollout_running[] = {"SCHEDULED", "IN_PROGRESS", NULL};

const otr_kind otr_kind_ota_rollout = {
    .name = "OtaRollout",
    .noun = "rollout",
    .state_key = "rollouts",
    .id_key = "taskId",
    .arn_key = "taskArn",
    .schema = &otr_schema_ota_rollout,
    .check = check_rollout,
    .advise = advise_rollout,
    .refs = rollout_refs,
    .nrefs = sizeof(rollout_refs) / sizeof(rollout_refs[0]),
    .updatable = NULL,
    .replace_order = OTR_REPLACE_DELETE_FIRST,
    .running = rollout_running,
    .conflict_retires = 0,
    .guarded_deletes = 1,
    .retires_dropped = 1,
    .body_of = body_of,
    .body_kind = &otr_kind_ota_task,
    .created = created,
    .ids_of = ids_of,
    .id_name = id_name,
    .token_of = token_of,
    .forget_id = forget_id,
    .sent = sent,
    .refers_to = refers_to,
    .plans_itself = 1,
    .describe = describe,
    .listed_as = &otr_kind_ota_task,
    .needs_counts = 1,
    .api = &otr_ota_task_api,
};
