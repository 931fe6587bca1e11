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
 * task. The gate's arithmetic is in rollout.h.
 */
#include "kinds/kind.h"
#include "kinds/held.h"
#include "kinds/tags.h"
#include "kinds/rollout.h"
#include "manifest/token.h"
#include "plan/plan.h"
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
    otr_buf_printf(why,
                   "%.4g%% succeeded, %.4g%% failed, %ld of %ld finished (pass at %.4g%%, %ld "
                   "finished)",
                   ok, bad, finished, things, g->min_succeeded, g->min_finished);
    return OTR_VERDICT_WAIT;
}

/* ---- waves ------------------------------------------------------------------ */

static const cJSON *waves_of(const cJSON *spec)
{
    return cJSON_GetObjectItemCaseSensitive(spec, "waves");
}

static const cJSON *progress_waves(const otr_record *rec)
{
    return cJSON_GetObjectItemCaseSensitive(rec->progress, "waves");
}

static const char *str_of(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* A wave's targets: its Target and OtaTargetQueryString. */
static cJSON *targets_of(const cJSON *wave)
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
static cJSON *wave_body(const cJSON *task, const cJSON *targets)
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

/* Canonical text of a body with its reference replaced by the token of the
 * configuration it names (as a task's token is made); free() it. */
static char *token_input(const otr_kind_plan *kp, const cJSON *body)
{
    cJSON *copy = cJSON_Duplicate(body, 1);
    const char *ref = str_of(copy, "TaskConfigurationRef");
    if (copy && ref && kp->set) {
        const otr_manifest *cfg =
            otr_manifest_set_find(kp->set, &otr_kind_ota_task_configuration, ref);
        cJSON_ReplaceItemInObjectCaseSensitive(copy, "TaskConfigurationRef",
                                               cJSON_CreateString(cfg ? cfg->client_token : ref));
    }
    char *text = copy ? otr_canonical_json(copy) : NULL;
    cJSON_Delete(copy);
    return text;
}

/* The digest of the rollout's task as written, to tell an edit after the
 * start. A configuration it names by TaskConfigurationRef may change: the
 * waves to come are created with the new one. */
static int task_digest(const otr_kind_plan *kp, char out[72])
{
    char *text = otr_canonical_json(cJSON_GetObjectItemCaseSensitive(kp->spec, "task"));
    int rc = text ? otr_spec_digest(out, text) : -1;
    free(text);
    return rc;
}

/* The progress entry of wave i of the manifest: its name, targets and token
 * (over "ROLLOUT/WAVE", the revision and the body). */
static cJSON *wave_entry(const otr_kind_plan *kp, int i)
{
    const cJSON *wave = cJSON_GetArrayItem(waves_of(kp->spec), i);
    cJSON *e = cJSON_CreateObject(), *targets = targets_of(wave);
    cJSON *body = wave_body(cJSON_GetObjectItemCaseSensitive(kp->spec, "task"), targets);
    char *text = body ? token_input(kp, body) : NULL;
    char token[44];
    otr_buf name = OTR_BUF_INIT;
    otr_buf_printf(&name, "%s/%s", kp->m->name, str_of(wave, "name"));
    int ok = e && targets && text && !otr_buf_failed(&name) &&
             otr_client_token(token, name.ptr, kp->m->revision, text) == 0;
    if (ok) {
        cJSON_AddStringToObject(e, "name", str_of(wave, "name"));
        cJSON_AddItemToObject(e, "targets", targets);
        cJSON_AddStringToObject(e, "clientToken", token);
        targets = NULL;
    }
    cJSON_Delete(targets);
    cJSON_Delete(body);
    free(text);
    otr_buf_free(&name);
    if (!ok) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

/* ---- the hooks apply uses ------------------------------------------------------ */

static int body_of(const otr_record *rec, cJSON **body, char token[44])
{
    const cJSON *waves = progress_waves(rec);
    const cJSON *last = cJSON_GetArrayItem(waves, cJSON_GetArraySize(waves) - 1);
    const char *tok = str_of(last, "clientToken");
    *body = NULL;
    if (!last || !tok || strlen(tok) != 43)
        return -1;
    cJSON *spec = otr_record_spec(rec);
    *body = spec ? wave_body(cJSON_GetObjectItemCaseSensitive(spec, "task"),
                             cJSON_GetObjectItemCaseSensitive(last, "targets"))
                 : NULL;
    cJSON_Delete(spec);
    memcpy(token, tok, 44);
    return *body ? 0 : -1;
}

static void set_member(cJSON *o, const char *key, const char *value)
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
    set_member(last, "taskId", rec->id);
    set_member(last, "taskArn", rec->arn);
    set_member(last, "createdAt", rec->created_at);
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
        const char *id = str_of(body, k->refs[i].id_field);
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
    cJSON_ArrayForEach(w, progress_waves(rec))
    {
        const cJSON *uses = cJSON_GetObjectItemCaseSensitive(w, "uses");
        if (!str_of(w, "taskId"))
            continue;
        if (!uses || (str_of(uses, id_field) && !strcmp(str_of(uses, id_field), id)))
            return 1;
    }
    return 0;
}

static size_t ids_of(const otr_record *rec, const char **ids, size_t max)
{
    size_t n = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, progress_waves(rec))
    {
        const char *id = str_of(w, "taskId");
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
    cJSON_ArrayForEach(w, progress_waves(rec))
    {
        if (!str_of(w, "taskId"))
            continue;
        free(rec->id);
        free(rec->arn);
        rec->id = strdup(str_of(w, "taskId"));
        rec->arn = str_of(w, "taskArn") ? strdup(str_of(w, "taskArn")) : NULL;
    }
}

/* The token of the wave whose task is id. */
static const char *token_of(const otr_record *rec, const char *id)
{
    const cJSON *w;
    cJSON_ArrayForEach(w, progress_waves(rec))
    {
        const char *wid = str_of(w, "taskId");
        if (wid && id && !strcmp(wid, id))
            return str_of(w, "clientToken");
    }
    return NULL;
}

static size_t forget_id(otr_record *rec, const char *id)
{
    const char *ids[OTR_KIND_MAX_IDS];
    cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(rec->progress, "waves"))
    {
        if (str_of(w, "taskId") && !strcmp(str_of(w, "taskId"), id)) {
            cJSON_DeleteItemFromObjectCaseSensitive(w, "taskId");
            cJSON_DeleteItemFromObjectCaseSensitive(w, "taskArn");
            cJSON_AddTrueToObject(w, "deleted");
        }
    }
    newest_id(rec);
    return ids_of(rec, ids, OTR_KIND_MAX_IDS);
}

/* ---- planning --------------------------------------------------------------------- */

static int64_t epoch_of(const char *iso)
{
    int64_t t = 0;
    return iso && otr_time_parse_iso8601(iso, &t) == 0 ? t : 0;
}

static char *iso_of(int64_t t)
{
    char out[21];
    otr_time_format_iso8601(out, (time_t)t);
    return strdup(out);
}

/* The record the manifest makes, its progress given. */
static int record_of(otr_kind_plan *kp, cJSON *progress)
{
    otr_record_clear(&kp->desired);
    if (otr_record_from_manifest(&kp->desired, kp->m, kp->commit) < 0) {
        cJSON_Delete(progress);
        return -1;
    }
    kp->desired.progress = progress;
    return progress ? 0 : -1;
}

/* The manifest's record, keeping what rec recorded (ids, times) and the
 * progress given. */
static int record_after(otr_kind_plan *kp, cJSON *progress)
{
    if (record_of(kp, progress) < 0)
        return -1;
    const otr_record *rec = kp->rec;
    otr_record *d = &kp->desired;
    free(d->client_token);
    d->client_token = rec->client_token ? strdup(rec->client_token) : NULL;
    d->id = rec->id ? strdup(rec->id) : NULL;
    d->arn = rec->arn ? strdup(rec->arn) : NULL;
    d->created_at = rec->created_at ? strdup(rec->created_at) : NULL;
    return 0;
}

static cJSON *fresh_progress(otr_kind_plan *kp)
{
    char digest[72];
    cJSON *p = cJSON_CreateObject(), *first = wave_entry(kp, 0);
    if (!p || !first || task_digest(kp, digest) < 0) {
        cJSON_Delete(p);
        cJSON_Delete(first);
        return NULL;
    }
    cJSON_AddStringToObject(p, "taskDigest", digest);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "waves"), first);
    return p;
}

static const char *first_wave(const otr_kind_plan *kp)
{
    return str_of(cJSON_GetArrayItem(waves_of(kp->spec), 0), "name");
}

/* No record, or a new revision: the first wave. */
static int plan_start(otr_kind_plan *kp)
{
    if (record_of(kp, fresh_progress(kp)) < 0)
        return -1;
    if (!kp->rec) {
        kp->kind = OTR_ACT_CREATE;
        otr_buf_printf(&kp->reason, "starts wave %s", first_wave(kp));
        return 0;
    }
    const char *ids[OTR_ROLLOUT_MAX_WAVES];
    size_t n = ids_of(kp->rec, ids, OTR_ROLLOUT_MAX_WAVES);
    otr_buf_printf(&kp->reason, "metadata.revision %ld -> %ld: starts over with wave %s; ",
                   kp->rec->revision, kp->m->revision, first_wave(kp));
    if (kp->prune) {
        kp->kind = OTR_ACT_REPLACE; /* the old waves' tasks go first */
        otr_buf_printf(&kp->reason, "the old waves' %zu task%s are deleted first (--prune)", n,
                       n == 1 ? "" : "s");
        return 0;
    }
    kp->kind = OTR_ACT_CREATE;
    otr_buf_puts(&kp->reason, "the old waves' tasks are left alone (--prune deletes them):");
    for (size_t i = 0; i < n; i++)
        otr_buf_printf(&kp->reason, " %s", ids[i]);
    return 0;
}

/* What has started cannot change: the task, and the started waves (their
 * names, targets and order). Fills kp->refused. */
static void refuse_edits(otr_kind_plan *kp)
{
    char digest[72];
    const char *was = str_of(kp->rec->progress, "taskDigest");
    const cJSON *started = progress_waves(kp->rec), *waves = waves_of(kp->spec);
    if (task_digest(kp, digest) == 0 && was && strcmp(was, digest)) {
        otr_buf_puts(&kp->refused, "its task changed after it started; bump metadata.revision to "
                                   "start a new rollout with it, or undo the change");
        return;
    }
    int i = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, started)
    {
        const cJSON *now = cJSON_GetArrayItem(waves, i++);
        cJSON *targets = now ? targets_of(now) : NULL;
        int same = now &&
                   !strcmp(str_of(now, "name") ? str_of(now, "name") : "",
                           str_of(w, "name") ? str_of(w, "name") : "") &&
                   cJSON_Compare(targets, cJSON_GetObjectItemCaseSensitive(w, "targets"), 1);
        cJSON_Delete(targets);
        if (!same) {
            otr_buf_printf(&kp->refused,
                           "wave %s has started: it stays where it is, with its targets; add a "
                           "wave after it, or bump metadata.revision to start a new rollout",
                           str_of(w, "name"));
            return;
        }
    }
}

/* A wave's view: its state and what it rests on. */
/* A wave's targets in a few words: "2 things", the query, or both. */
static void targets_text(const cJSON *w, otr_buf *out)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(w, "targets");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(t ? t : w, "Target");
    const char *query = str_of(t ? t : w, "OtaTargetQueryString");
    int n = cJSON_GetArraySize(list);
    if (list)
        otr_buf_printf(out, "%d thing%s", n, n == 1 ? "" : "s");
    if (query)
        otr_buf_printf(out, "%s%s", list ? " + " : "", query);
}

static cJSON *wave_view(const cJSON *w, const char *state)
{
    cJSON *v = cJSON_CreateObject();
    otr_buf targets = OTR_BUF_INIT;
    cJSON_AddStringToObject(v, "name", str_of(w, "name"));
    cJSON_AddStringToObject(v, "state", state);
    targets_text(w, &targets);
    if (targets.len)
        cJSON_AddStringToObject(v, "targets", otr_buf_cstr(&targets));
    otr_buf_free(&targets);
    if (str_of(w, "taskId"))
        cJSON_AddStringToObject(v, "taskId", str_of(w, "taskId"));
    if (str_of(w, "passedAt"))
        cJSON_AddStringToObject(v, "passedAt", str_of(w, "passedAt"));
    return v;
}

static void add_counts(cJSON *v, const otr_ota_counts *c)
{
    long things, finished;
    double ok, bad;
    otr_rollout_shares(c, &things, &finished, &ok, &bad);
    cJSON *k = cJSON_AddObjectToObject(v, "counts");
    cJSON_AddNumberToObject(k, "things", (double)things);
    cJSON_AddNumberToObject(k, "finished", (double)finished);
    cJSON_AddNumberToObject(k, "succeeded", (double)c->succeeded);
    cJSON_AddNumberToObject(k, "failed", (double)(c->failed + c->timed_out + c->rejected));
    cJSON_AddNumberToObject(k, "running", (double)c->in_progress);
    cJSON_AddNumberToObject(k, "queued", (double)c->queued);
    cJSON_AddNumberToObject(v, "succeededPercent", ok);
    cJSON_AddNumberToObject(v, "failedPercent", bad);
}

/* The view of every wave: those started (the newest as given), then those
 * to come, waiting. */
static cJSON *rollout_view(const otr_kind_plan *kp, const cJSON *progress, cJSON *newest)
{
    cJSON *view = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(view, "waves");
    const cJSON *started = cJSON_GetObjectItemCaseSensitive(progress, "waves");
    int nstarted = cJSON_GetArraySize(started), i = 0;
    const cJSON *w;
    cJSON_AddNumberToObject(view, "revision", (double)kp->m->revision);
    cJSON_ArrayForEach(w, started)
    {
        if (i++ == nstarted - 1 && newest)
            cJSON_AddItemToArray(list, newest), newest = NULL;
        else
            cJSON_AddItemToArray(list, wave_view(w, "done"));
    }
    i = 0;
    cJSON_ArrayForEach(w, waves_of(kp->spec))
    {
        if (i++ < nstarted)
            continue;
        cJSON *v = wave_view(w, "waiting");
        cJSON_AddItemToArray(list, v);
    }
    cJSON_Delete(newest);
    const cJSON *halt = cJSON_GetObjectItemCaseSensitive(progress, "halt");
    if (halt)
        cJSON_AddItemToObject(view, "halt", cJSON_Duplicate(halt, 1));
    return view;
}

/* The wave this run creates, in the view. */
static void mark_starting(cJSON *view, const char *name)
{
    cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(view, "waves"))
    {
        if (name && str_of(w, "name") && !strcmp(str_of(w, "name"), name))
            cJSON_ReplaceItemInObjectCaseSensitive(w, "state", cJSON_CreateString("starts now"));
    }
}

/* The place of wave name in the manifest's waves; past the last for NULL
 * (no holdAfter: every wave may start). */
static int wave_index(const cJSON *waves, const char *name)
{
    int i = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, waves)
    {
        if (name && str_of(w, "name") && !strcmp(str_of(w, "name"), name))
            return i;
        i++;
    }
    return i;
}

/* A holdAfter the manifest moves forward (or removes): the furthest wave
 * now allowed to start, which the rollout is promoted to; else NULL. */
static const char *promotes_to(const otr_kind_plan *kp)
{
    const cJSON *waves = waves_of(kp->spec);
    const char *was = str_of(kp->rec_spec, "holdAfter"), *now = str_of(kp->spec, "holdAfter");
    int last = cJSON_GetArraySize(waves) - 1;
    if (!was || wave_index(waves, now) <= wave_index(waves, was) || wave_index(waves, was) >= last)
        return NULL;
    return now ? now : str_of(cJSON_GetArrayItem(waves, last), "name");
}

/* The halt of the newest wave, recorded with its reason, counts and gate. */
static void halt(cJSON *progress, const char *wave, const char *reason, int64_t now,
                 const char *gate, const otr_ota_counts *c)
{
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "wave", wave);
    cJSON_AddStringToObject(h, "reason", reason);
    char *at = iso_of(now);
    if (at)
        cJSON_AddStringToObject(h, "at", at);
    free(at);
    cJSON_AddStringToObject(h, "gate", gate);
    if (c)
        add_counts(h, c);
    cJSON_DeleteItemFromObjectCaseSensitive(progress, "halt");
    cJSON_AddItemToObject(progress, "halt", h);
}

/* The digest of a wave's gate as it now is: a halt stands until it changes. */
static void gate_digest(const otr_gate *g, char out[72])
{
    char text[160];
    snprintf(text, sizeof(text), "%.17g/%.17g/%ld/%lld/%lld", g->min_succeeded, g->max_failed,
             g->min_finished, (long long)g->soak, (long long)g->deadline);
    if (otr_spec_digest(out, text) < 0)
        out[0] = '\0';
}

typedef struct judged {
    int changed;       /* the progress changed: write it */
    const char *state; /* the newest wave's */
    otr_buf why;
} judged;

/* The newest wave, judged: its state, and the progress it leaves. Returns
 * the index of the wave to start next, or -1. */
static int judge_newest(otr_kind_plan *kp, cJSON *progress, cJSON *newest_view, judged *j)
{
    cJSON *started = cJSON_GetObjectItemCaseSensitive(progress, "waves");
    int idx = cJSON_GetArraySize(started) - 1;
    cJSON *newest = cJSON_GetArrayItem(started, idx);
    const cJSON *manifest_wave = cJSON_GetArrayItem(waves_of(kp->spec), idx);
    otr_gate g;
    char digest[72];
    otr_rollout_gate(cJSON_GetObjectItemCaseSensitive(kp->spec, "gate"),
                     cJSON_GetObjectItemCaseSensitive(manifest_wave, "gate"), &g);
    gate_digest(&g, digest);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(progress, "halt");
    if (h && !strcmp(str_of(h, "gate") ? str_of(h, "gate") : "", digest)) {
        j->state = "halted";
        otr_buf_printf(&j->why, "%s", str_of(h, "reason"));
        return -1;
    }
    if (h) { /* the gate changed: the halt is lifted, the wave judged again */
        cJSON_DeleteItemFromObjectCaseSensitive(progress, "halt");
        j->changed = 1;
    }
    if (!kp->refreshed) {
        j->state = "verdict unknown";
        otr_buf_puts(&j->why, "the service was not asked (--refresh none)");
        return -1;
    }
    if (!str_of(newest, "taskId")) { /* its create is being resumed */
        j->state = "starting";
        otr_buf_puts(&j->why, "its create is being finished");
        return -1;
    }
    if (!kp->remote) {
        j->state = "halted";
        otr_buf_printf(&j->why, "its task %s is no longer in the service",
                       str_of(newest, "taskId") ? str_of(newest, "taskId") : "?");
        halt(progress, str_of(newest, "name"), j->why.ptr, kp->now, digest, NULL);
        j->changed = 1;
        return -1;
    }
    /* a task the service counts nothing for yet (no TaskProcessingDetails) */
    static const otr_ota_counts none;
    const otr_ota_counts *c = kp->remote->counts ? kp->remote->counts : &none;
    add_counts(newest_view, c);
    otr_verdict v =
        otr_rollout_judge(&g, c, epoch_of(str_of(newest, "createdAt")), kp->now, &j->why);
    if (v == OTR_VERDICT_HALT) {
        j->state = "halted";
        halt(progress, str_of(newest, "name"), j->why.ptr, kp->now, digest, c);
        j->changed = 1;
        return -1;
    }
    if (v == OTR_VERDICT_WAIT) { /* with every thing at an end, only a gate change helps */
        long things, finished;
        double ok, bad;
        otr_rollout_shares(c, &things, &finished, &ok, &bad);
        j->state = things && finished == things ? "waiting for the gate" : "running";
        return -1;
    }
    if (!str_of(newest, "passedAt")) {
        char *at = iso_of(kp->now);
        set_member(newest, "passedAt", at);
        cJSON_AddStringToObject(newest_view, "passedAt", at ? at : "");
        free(at);
        j->changed = 1;
    }
    /* times are kept to the second, cut down: the pass happened up to a
     * second after the one recorded, and a soak is never shortened */
    int64_t soaked = epoch_of(str_of(newest, "passedAt")) + g.soak + (g.soak > 0);
    const char *hold = str_of(kp->spec, "holdAfter");
    if (idx + 1 >= cJSON_GetArraySize(waves_of(kp->spec))) {
        j->state = "done";
    } else if (hold && wave_index(waves_of(kp->spec), hold) <= idx) {
        /* holdAfter names this wave or one before it (moved back): nothing
         * more starts */
        j->state = "passed, held by holdAfter";
    } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(kp->spec, "paused"))) {
        j->state = "passed, paused";
    } else if (kp->now < soaked) {
        char *until = iso_of(soaked);
        j->state = "passed, soaking";
        cJSON_AddStringToObject(newest_view, "soakUntil", until ? until : "");
        free(until);
    } else {
        j->state = "passed";
        return idx + 1;
    }
    return -1;
}

static int plan_next(otr_kind_plan *kp)
{
    const otr_record *rec = kp->rec;
    cJSON *progress = cJSON_Duplicate(rec->progress, 1);
    cJSON *started = cJSON_GetObjectItemCaseSensitive(progress, "waves");
    cJSON *newest_view =
        wave_view(cJSON_GetArrayItem(started, cJSON_GetArraySize(started) - 1), "running");
    judged j = {0, NULL, OTR_BUF_INIT};
    int next = judge_newest(kp, progress, newest_view, &j);
    cJSON_ReplaceItemInObjectCaseSensitive(newest_view, "state", cJSON_CreateString(j.state));
    if (j.why.len)
        cJSON_AddStringToObject(newest_view, "why", j.why.ptr);
    kp->view = rollout_view(kp, progress, newest_view);
    newest_view = NULL;
    if (next >= 0) {
        cJSON *entry = wave_entry(kp, next);
        if (!entry)
            goto nomem;
        cJSON_AddItemToArray(started, entry);
        kp->kind = OTR_ACT_CREATE;
        otr_buf_printf(&kp->reason, "starts wave %s: %s passed (%s)", str_of(entry, "name"),
                       str_of(cJSON_GetArrayItem(started, next - 1), "name"), j.why.ptr);
        mark_starting(kp->view, str_of(entry, "name"));
    }
    const char *to = promotes_to(kp);
    if (kp->view && to)
        cJSON_AddStringToObject(kp->view, "promotes", to);
    if (kp->view && kp->kind == OTR_ACT_CREATE)
        cJSON_AddStringToObject(kp->view, "next", kp->reason.ptr);
    int spec_changed = !rec->spec_digest || strcmp(rec->spec_digest, kp->m->spec_digest) ||
                       (rec->file && strcmp(rec->file, kp->m->file));
    kp->rewrite = kp->kind == OTR_ACT_NOOP && (j.changed || spec_changed);
    if (record_after(kp, progress) < 0) {
        progress = NULL;
        goto nomem;
    }
    otr_buf_free(&j.why);
    return 0;
nomem:
    cJSON_Delete(progress);
    cJSON_Delete(newest_view);
    otr_buf_free(&j.why);
    return -1;
}

/* A wave of waves by name, or NULL. */
static const cJSON *wave_named(const cJSON *waves, const char *name)
{
    const cJSON *w;
    cJSON_ArrayForEach(w, waves)
    {
        if (name && str_of(w, "name") && !strcmp(str_of(w, "name"), name))
            return w;
    }
    return NULL;
}

/* Two manifests of a rollout compared, without a state (ota-runner diff:
 * the record was made from the older manifest and has no progress): the
 * waves added, removed or changed, the task, the revision, a promotion. */
static int diff_rollout(otr_kind_plan *kp)
{
    const cJSON *was = kp->rec_spec, *now = kp->spec;
    const cJSON *old_waves = waves_of(was), *new_waves = waves_of(now), *w;
    otr_buf *r = &kp->reason;
    if (cJSON_Compare(was, now, 1) && kp->rec->revision == kp->m->revision)
        return record_of(kp, cJSON_CreateObject());
    kp->kind = OTR_ACT_UPDATE;
    if (kp->rec->revision != kp->m->revision)
        otr_buf_printf(r, "metadata.revision %ld -> %ld: a new rollout, from its first wave; ",
                       kp->rec->revision, kp->m->revision);
    else if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(was, "task"),
                            cJSON_GetObjectItemCaseSensitive(now, "task"), 1))
        otr_buf_puts(r, "its task changed: refused once the rollout has started (bump "
                        "metadata.revision); ");
    cJSON_ArrayForEach(w, new_waves)
    {
        const cJSON *before = wave_named(old_waves, str_of(w, "name"));
        if (!before)
            otr_buf_printf(r, "wave %s added; ", str_of(w, "name"));
        else if (!cJSON_Compare(before, w, 1))
            otr_buf_printf(r, "wave %s changed; ", str_of(w, "name"));
    }
    cJSON_ArrayForEach(w, old_waves)
    {
        if (!wave_named(new_waves, str_of(w, "name")))
            otr_buf_printf(r, "wave %s removed; ", str_of(w, "name"));
    }
    if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(was, "gate"),
                       cJSON_GetObjectItemCaseSensitive(now, "gate"), 1))
        otr_buf_puts(r, "the gate changed; ");
    if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(was, "holdAfter"),
                       cJSON_GetObjectItemCaseSensitive(now, "holdAfter"), 1))
        otr_buf_printf(r, "holdAfter %s -> %s; ",
                       str_of(was, "holdAfter") ? str_of(was, "holdAfter") : "(none)",
                       str_of(now, "holdAfter") ? str_of(now, "holdAfter") : "(none)");
    if (r->len >= 2)
        r->ptr[r->len -= 2] = '\0'; /* the last "; " */
    kp->view = cJSON_CreateObject();
    const char *to = promotes_to(kp);
    if (kp->view && to)
        cJSON_AddStringToObject(kp->view, "promotes", to);
    cJSON *list = kp->view ? cJSON_AddArrayToObject(kp->view, "waves") : NULL;
    cJSON_ArrayForEach(w, new_waves)
    {
        const cJSON *before = wave_named(old_waves, str_of(w, "name"));
        cJSON_AddItemToArray(list, wave_view(w, !before                       ? "added"
                                                : cJSON_Compare(before, w, 1) ? "unchanged"
                                                                              : "changed"));
    }
    return record_of(kp, cJSON_CreateObject());
}

static int plan_rollout(otr_kind_plan *kp)
{
    if (!kp->m) {
        kp->kind = kp->prune ? OTR_ACT_DELETE : OTR_ACT_ORPHAN;
        otr_buf_puts(&kp->reason, kp->prune ? "its manifest is gone: the waves' tasks are deleted"
                                            : "its manifest is gone; run with --prune to delete "
                                              "the waves' tasks");
        return 0;
    }
    if (kp->rec && kp->compare)
        return diff_rollout(kp);
    if (!kp->rec || kp->rec->revision != kp->m->revision) {
        if (plan_start(kp) < 0)
            return -1;
        kp->view = rollout_view(kp, kp->desired.progress, NULL);
        mark_starting(kp->view, first_wave(kp));
        return 0;
    }
    refuse_edits(kp);
    if (kp->refused.len)
        return 0;
    return plan_next(kp);
}

/* The record judged as its own manifest: a status between plans. */
static cJSON *status_view(const otr_record *rec, const otr_remote_item *remote, int64_t now)
{
    otr_manifest m;
    otr_kind_plan kp;
    memset(&m, 0, sizeof(m));
    memset(&kp, 0, sizeof(kp));
    m.kind = rec->kind;
    m.name = rec->name;
    m.revision = rec->revision;
    m.spec_json = rec->spec_json;
    m.file = rec->file ? rec->file : "";
    snprintf(m.client_token, sizeof(m.client_token), "%s",
             rec->client_token ? rec->client_token : "");
    snprintf(m.spec_digest, sizeof(m.spec_digest), "%s", rec->spec_digest ? rec->spec_digest : "");
    cJSON *spec = otr_record_spec(rec);
    kp.rec = rec;
    kp.m = &m;
    kp.spec = spec;
    kp.rec_spec = spec;
    kp.remote = remote;
    kp.refreshed = 1;
    kp.now = now;
    kp.kind = OTR_ACT_NOOP;
    cJSON *view = spec && progress_waves(rec) && plan_next(&kp) == 0 ? kp.view : NULL;
    if (!view)
        cJSON_Delete(kp.view);
    cJSON_Delete(spec);
    otr_record_clear(&kp.desired);
    otr_buf_free(&kp.reason);
    otr_buf_free(&kp.refused);
    return view;
}

/* Each wave's ClientToken, as its create would send it. */
static cJSON *call_tokens(const otr_manifest *m, const otr_manifest_set *set)
{
    otr_kind_plan kp;
    memset(&kp, 0, sizeof(kp));
    kp.m = m;
    kp.set = set;
    cJSON *spec = otr_manifest_spec(m);
    kp.spec = spec;
    cJSON *out = spec ? cJSON_CreateArray() : NULL;
    for (int i = 0; out && i < cJSON_GetArraySize(waves_of(spec)); i++) {
        cJSON *e = wave_entry(&kp, i), *t = cJSON_CreateObject();
        if (!e || !t) {
            cJSON_Delete(e);
            cJSON_Delete(t);
            cJSON_Delete(out);
            out = NULL;
            break;
        }
        cJSON_AddStringToObject(t, "name", str_of(e, "name"));
        cJSON_AddStringToObject(t, "clientToken", str_of(e, "clientToken"));
        cJSON_AddItemToArray(out, t);
        cJSON_Delete(e);
    }
    cJSON_Delete(spec);
    return out;
}

/* The rollout in words: its task's firmware and settings, then each wave's
 * targets. */
static void describe(const cJSON *spec, const char *refs, otr_buf *out)
{
    const cJSON *w;
    otr_describe_task(cJSON_GetObjectItemCaseSensitive(spec, "task"), refs, out);
    otr_buf_puts(out, out->len ? " · waves: " : "waves: ");
    int i = 0;
    cJSON_ArrayForEach(w, waves_of(spec))
    {
        otr_buf t = OTR_BUF_INIT;
        targets_text(w, &t);
        otr_buf_printf(out, "%s%s (%s)", i++ ? ", " : "", str_of(w, "name"), otr_buf_cstr(&t));
        otr_buf_free(&t);
    }
    if (str_of(spec, "holdAfter"))
        otr_buf_printf(out, " · held after %s", str_of(spec, "holdAfter"));
}

/* ---- adopting a lost state ----------------------------------------------------------- */

/* Is the task (a get's answer) wave w's: its revision, and the body the
 * manifest gives that wave (the task and the wave's targets)? -1 without
 * memory. */
static int wave_task(const otr_kind_plan *kp, const cJSON *wave, const cJSON *fields)
{
    cJSON *targets = targets_of(wave);
    cJSON *body =
        targets ? wave_body(cJSON_GetObjectItemCaseSensitive(kp->spec, "task"), targets) : NULL;
    otr_buf why = OTR_BUF_INIT;
    int rc =
        body ? otr_kind_holds_body(&otr_kind_ota_task, body, kp->m->revision, fields, &why) : -1;
    otr_buf_free(&why);
    cJSON_Delete(body);
    cJSON_Delete(targets);
    return rc;
}

/* The waves' tasks found, in the manifest's order: each wave that has one
 * started, and every wave before the newest passed (when the next began). */
static int adopt(const otr_manifest *m, const otr_manifest_set *set, const otr_remote *found,
                 size_t n, otr_record *out, otr_buf *why)
{
    otr_kind_plan kp;
    char digest[72];
    memset(&kp, 0, sizeof(kp));
    kp.m = m;
    kp.set = set;
    cJSON *spec = otr_manifest_spec(m);
    kp.spec = spec;
    cJSON *progress = cJSON_CreateObject(), *waves = cJSON_AddArrayToObject(progress, "waves");
    const otr_remote *newest = NULL;
    int i = 0;
    if (!spec || !waves || task_digest(&kp, digest) < 0)
        goto nomem;
    cJSON_AddStringToObject(progress, "taskDigest", digest);
    /* each task (oldest first) as the wave whose body it holds, in the order
     * they were made: waves reordered since they started then meet the plan's
     * refusal, as with a state never lost, instead of a second copy */
    for (size_t k = 0; k < n; k++) {
        int wave_at = -1;
        for (i = 0; wave_at < 0 && i < cJSON_GetArraySize(waves_of(spec)); i++) {
            int is = wave_task(&kp, cJSON_GetArrayItem(waves_of(spec), i), found[k].fields);
            if (is < 0)
                goto nomem;
            if (is && !wave_named(waves, str_of(cJSON_GetArrayItem(waves_of(spec), i), "name")))
                wave_at = i;
        }
        if (wave_at < 0)
            continue; /* another revision's, or a second copy of a wave: reported */
        const otr_remote *task = &found[k];
        cJSON *e = wave_entry(&kp, wave_at);
        char *at = iso_of((int64_t)task->created_at);
        if (!e || !at) {
            cJSON_Delete(e);
            free(at);
            goto nomem;
        }
        set_member(e, "taskId", task->id);
        set_member(e, "taskArn", task->arn);
        set_member(e, "createdAt", at);
        cJSON *uses = cJSON_AddObjectToObject(e, "uses");
        const char *cfg = str_of(task->fields, "TaskConfigurationId");
        if (cfg)
            cJSON_AddStringToObject(uses, "TaskConfigurationId", cfg);
        cJSON *before = cJSON_GetArrayItem(waves, cJSON_GetArraySize(waves) - 1);
        if (before)
            set_member(before, "passedAt", at);
        cJSON_AddItemToArray(waves, e);
        free(at);
        newest = task;
    }
    if (!newest) {
        cJSON_Delete(progress);
        cJSON_Delete(spec);
        otr_buf_printf(why,
                       "none of its %zu tagged task%s is one of its waves as revision %ld of the "
                       "manifest makes them (its revision, task and targets)",
                       n, n == 1 ? "" : "s", m->revision);
        return -1;
    }
    int recorded = record_of(&kp, progress); /* takes progress */
    cJSON_Delete(spec);
    if (recorded < 0)
        return -1;
    *out = kp.desired;
    out->id = strdup(newest->id);
    out->arn = newest->arn ? strdup(newest->arn) : NULL;
    out->created_at = iso_of((int64_t)found[0].created_at);
    otr_buf_free(&kp.reason);
    otr_buf_free(&kp.refused);
    return out->id && out->created_at ? 0 : -1;
nomem:
    cJSON_Delete(progress);
    cJSON_Delete(spec);
    otr_buf_puts(why, "out of memory");
    return -1;
}

/* ---- the manifest -------------------------------------------------------------------- */

/* What can never be: a wave whose gate asks more finished things than its
 * Target names (it waits for ever, or to its deadline), a device or a target
 * query in two waves (two tasks for the same devices). */
static void check_waves_apart(const cJSON *spec, otr_kind_report_fn report, void *ctx)
{
    const cJSON *waves = waves_of(spec), *w;
    int i = 0;
    cJSON_ArrayForEach(w, waves)
    {
        char field[96];
        const cJSON *targets = cJSON_GetObjectItemCaseSensitive(w, "Target");
        const char *query = str_of(w, "OtaTargetQueryString");
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
                   str_of(w, "name") ? str_of(w, "name") : "?", g.min_finished, things);
        }
        int j = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, waves)
        {
            if (j++ >= i)
                break;
            const char *other = str_of(v, "OtaTargetQueryString");
            if (query && other && !strcmp(query, other)) {
                snprintf(field, sizeof(field), "spec.waves.%d.OtaTargetQueryString", i);
                report(ctx, field,
                       "wave \"%s\" has the target query of wave \"%s\": its devices "
                       "would get two tasks",
                       str_of(w, "name") ? str_of(w, "name") : "?",
                       str_of(v, "name") ? str_of(v, "name") : "?");
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
                               t->valuestring, str_of(v, "name") ? str_of(v, "name") : "?");
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
    const cJSON *waves = waves_of(spec), *w;
    const char *hold = str_of(spec, "holdAfter");
    int i = 0, hold_found = 0;
    cJSON_ArrayForEach(w, waves)
    {
        char field[64];
        const char *name = str_of(w, "name");
        const cJSON *v;
        int j = 0;
        cJSON_ArrayForEach(v, waves)
        {
            if (j++ < i && name && str_of(v, "name") && !strcmp(name, str_of(v, "name"))) {
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
    if (hold && !hold_found)
        report(ctx, "spec.holdAfter", "names no wave of this rollout: \"%s\"", hold);
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
    const cJSON *waves = waves_of(spec), *w;
    int i = 0;
    cJSON_ArrayForEach(w, waves)
    {
        char field[96], soak[32], deadline[32];
        const char *name = str_of(w, "name") ? str_of(w, "name") : "?";
        const char *query = str_of(w, "OtaTargetQueryString");
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
            const char *other = str_of(v, "OtaTargetQueryString");
            if (j++ >= i)
                break;
            if (!query || !other || !strcmp(query, other)) /* the same: an error already */
                continue;
            const char *broad = query_covers(query, other)   ? name
                                : query_covers(other, query) ? str_of(v, "name")
                                                             : NULL;
            if (!broad)
                continue;
            snprintf(field, sizeof(field), "spec.waves.%d.OtaTargetQueryString", i);
            warn(ctx, field,
                 "the target query of wave \"%s\" matches every device that wave \"%s\"'s "
                 "does (its terms are a part of the other's): those devices would get two "
                 "tasks; tell the waves apart (a ring attribute each) unless that is meant",
                 broad, broad == name ? (str_of(v, "name") ? str_of(v, "name") : "?") : name);
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
    .body_of = body_of,
    .body_kind = &otr_kind_ota_task,
    .created = created,
    .ids_of = ids_of,
    .token_of = token_of,
    .forget_id = forget_id,
    .sent = sent,
    .refers_to = refers_to,
    .plan = plan_rollout,
    .status_view = status_view,
    .call_tokens = call_tokens,
    .describe = describe,
    .adopt = adopt,
    .listed_as = &otr_kind_ota_task,
    .needs_counts = 1,
    .create_call = otr_ota_create_task,
    .parse_create = otr_ota_parse_create_task,
    .update_call = NULL,
    .get_call = otr_ota_get_task,
    .parse_get = otr_ota_parse_get_task,
    .delete_call = otr_ota_delete_task,
    .list_call = otr_ota_list_tasks,
    .parse_list = otr_ota_parse_list_tasks,
};
