/*
 * How a staged rollout behaves (kind OtaRollout; its description is
 * kinds/ota_rollout.c): it plans itself, wave after wave, through its gate
 * and soak; it says how it stands (status); it names the ClientTokens of its
 * waves (tokens); and it is rebuilt from the tasks the service tags with its
 * address (adoption).
 */
#include "behaviour/behaviour.h"
#include "behaviour/rollout_view.h"

#include "kinds/held.h"
#include "kinds/ota_rollout.h"
#include "kinds/tags.h"
#include "manifest/token.h"
#include "util/json.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Canonical text of a body with its reference replaced by the token of the
 * configuration it names (as a task's token is made); free() it. */
static char *token_input(const otr_kind_plan *kp, const cJSON *body)
{
    cJSON *copy = cJSON_Duplicate(body, 1);
    const char *ref = otr_rollout_str(copy, "TaskConfigurationRef");
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
    const cJSON *wave = cJSON_GetArrayItem(otr_rollout_waves(kp->spec), i);
    cJSON *e = cJSON_CreateObject(), *targets = otr_rollout_targets(wave);
    cJSON *body =
        otr_rollout_wave_body(cJSON_GetObjectItemCaseSensitive(kp->spec, "task"), targets);
    char *text = body ? token_input(kp, body) : NULL;
    char token[OTR_TOKEN_SIZE];
    otr_buf name = OTR_BUF_INIT;
    otr_buf_printf(&name, "%s/%s", kp->m->name, otr_rollout_str(wave, "name"));
    int ok = e && targets && text && !otr_buf_failed(&name) &&
             otr_client_token(token, name.ptr, kp->m->revision, text) == 0;
    if (ok) {
        cJSON_AddStringToObject(e, "name", otr_rollout_str(wave, "name"));
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
    return otr_rollout_str(cJSON_GetArrayItem(otr_rollout_waves(kp->spec), 0), "name");
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
    size_t n = otr_kind_ota_rollout.ids_of(kp->rec, ids, OTR_ROLLOUT_MAX_WAVES);
    otr_buf_printf(&kp->reason, "metadata.revision %ld -> %ld: starts over with wave %s; ",
                   kp->rec->revision, kp->m->revision, first_wave(kp));
    if (kp->prune) {
        kp->kind = OTR_ACT_REPLACE; /* the old waves' tasks go first */
        otr_buf_printf(&kp->reason, "the old waves' %zu task%s are deleted first (--prune)", n,
                       n == 1 ? "" : "s");
        return 0;
    }
    kp->kind = OTR_ACT_CREATE;
    otr_buf_puts(&kp->reason,
                 "the old waves' tasks keep running, recorded as retired (--prune deletes them):");
    for (size_t i = 0; i < n; i++)
        otr_buf_printf(&kp->reason, " %s", ids[i]);
    return 0;
}

/* What has started cannot change: the task, and the started waves (their
 * names, targets and order). Fills kp->refused. */
static void refuse_edits(otr_kind_plan *kp)
{
    char digest[72];
    const char *was = otr_rollout_str(kp->rec->progress, "taskDigest");
    const cJSON *started = otr_rollout_started(kp->rec), *waves = otr_rollout_waves(kp->spec);
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
        cJSON *targets = now ? otr_rollout_targets(now) : NULL;
        int same = now &&
                   !strcmp(otr_rollout_str(now, "name") ? otr_rollout_str(now, "name") : "",
                           otr_rollout_str(w, "name") ? otr_rollout_str(w, "name") : "") &&
                   cJSON_Compare(targets, cJSON_GetObjectItemCaseSensitive(w, "targets"), 1);
        cJSON_Delete(targets);
        if (!same) {
            otr_buf_printf(&kp->refused,
                           "wave %s has started: it stays where it is, with its targets; add a "
                           "wave after it, or bump metadata.revision to start a new rollout",
                           otr_rollout_str(w, "name"));
            return;
        }
    }
}

/* A wave's view: its state and what it rests on. */
/* A wave's targets in a few words: "2 things", the query, or both. */

static cJSON *wave_view(const cJSON *w, const char *state)
{
    cJSON *v = cJSON_CreateObject();
    otr_buf targets = OTR_BUF_INIT;
    cJSON_AddStringToObject(v, "name", otr_rollout_str(w, "name"));
    cJSON_AddStringToObject(v, "state", state);
    otr_rollout_targets_text(w, &targets);
    if (targets.len)
        cJSON_AddStringToObject(v, "targets", otr_buf_cstr(&targets));
    otr_buf_free(&targets);
    if (otr_rollout_str(w, "taskId"))
        cJSON_AddStringToObject(v, "taskId", otr_rollout_str(w, "taskId"));
    if (otr_rollout_str(w, "passedAt"))
        cJSON_AddStringToObject(v, "passedAt", otr_rollout_str(w, "passedAt"));
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
    cJSON_ArrayForEach(w, otr_rollout_waves(kp->spec))
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
        if (name && otr_rollout_str(w, "name") && !strcmp(otr_rollout_str(w, "name"), name))
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
        if (name && otr_rollout_str(w, "name") && !strcmp(otr_rollout_str(w, "name"), name))
            return i;
        i++;
    }
    return i;
}

/* A holdAfter the manifest moves forward (or removes): the furthest wave
 * now allowed to start, which the rollout is promoted to; else NULL. */
static const char *promotes_to(const otr_kind_plan *kp)
{
    const cJSON *waves = otr_rollout_waves(kp->spec);
    const char *was = otr_rollout_str(kp->rec_spec, "holdAfter"),
               *now = otr_rollout_str(kp->spec, "holdAfter");
    int last = cJSON_GetArraySize(waves) - 1;
    if (!was || wave_index(waves, now) <= wave_index(waves, was) || wave_index(waves, was) >= last)
        return NULL;
    return now ? now : otr_rollout_str(cJSON_GetArrayItem(waves, last), "name");
}

/* The halt of the newest wave, recorded with its reason, counts and gate
 * (and the time, unless now is 0: status judges a halt no apply recorded). */
static void halt(cJSON *progress, const char *wave, const char *reason, int64_t now,
                 const char *gate, const otr_ota_counts *c)
{
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "wave", wave);
    cJSON_AddStringToObject(h, "reason", reason);
    char *at = now ? iso_of(now) : NULL;
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
    const cJSON *manifest_wave = cJSON_GetArrayItem(otr_rollout_waves(kp->spec), idx);
    otr_gate g;
    char digest[72];
    otr_rollout_gate(cJSON_GetObjectItemCaseSensitive(kp->spec, "gate"),
                     cJSON_GetObjectItemCaseSensitive(manifest_wave, "gate"), &g);
    gate_digest(&g, digest);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(progress, "halt");
    if (h && !strcmp(otr_rollout_str(h, "gate") ? otr_rollout_str(h, "gate") : "", digest)) {
        j->state = "halted";
        otr_buf_printf(&j->why, "%s", otr_rollout_str(h, "reason"));
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
    if (!otr_rollout_str(newest, "taskId")) { /* its create is being resumed */
        j->state = "starting";
        otr_buf_puts(&j->why, "its create is being finished");
        return -1;
    }
    if (!kp->remote) {
        j->state = "halted";
        otr_buf_printf(&j->why, "its task %s is no longer in the service",
                       otr_rollout_str(newest, "taskId") ? otr_rollout_str(newest, "taskId") : "?");
        halt(progress, otr_rollout_str(newest, "name"), j->why.ptr, kp->status_only ? 0 : kp->now,
             digest, NULL);
        j->changed = 1;
        return -1;
    }
    /* a task the service counts nothing for yet (no TaskProcessingDetails) */
    static const otr_ota_counts none;
    const otr_ota_counts *c = kp->remote->counts ? kp->remote->counts : &none;
    add_counts(newest_view, c);
    otr_verdict v =
        otr_rollout_judge(&g, c, epoch_of(otr_rollout_str(newest, "createdAt")), kp->now, &j->why);
    if (v == OTR_VERDICT_HALT) {
        j->state = "halted";
        if (kp->remote->failed_devices)
            otr_buf_printf(&j->why, "; first failed devices: %s", kp->remote->failed_devices);
        halt(progress, otr_rollout_str(newest, "name"), j->why.ptr, kp->status_only ? 0 : kp->now,
             digest, c);
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
    if (!otr_rollout_str(newest, "passedAt") && kp->status_only) {
        /* a pass no apply recorded: its soak starts when one does */
        j->state = "passed, not recorded";
        otr_buf_printf(&j->why, "%sits gate is met; the next apply records the pass%s",
                       j->why.len ? "; " : "", g.soak > 0 ? ", and its soak runs from then" : "");
        return -1;
    }
    if (!otr_rollout_str(newest, "passedAt")) {
        char *at = iso_of(kp->now);
        otr_rollout_set(newest, "passedAt", at);
        cJSON_AddStringToObject(newest_view, "passedAt", at ? at : "");
        free(at);
        j->changed = 1;
    }
    /* times are kept to the second, cut down: the pass happened up to a
     * second after the one recorded, and a soak is never shortened */
    int64_t soaked = epoch_of(otr_rollout_str(newest, "passedAt")) + g.soak + (g.soak > 0);
    const char *hold = otr_rollout_str(kp->spec, "holdAfter");
    if (idx + 1 >= cJSON_GetArraySize(otr_rollout_waves(kp->spec))) {
        j->state = "done";
    } else if (hold && wave_index(otr_rollout_waves(kp->spec), hold) <= idx) {
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

/* What comes next for a rollout this run moves no further, as its newest
 * wave's state says: what an apply will do and when, or what a person must
 * change. */
static void say_next(otr_kind_plan *kp, const cJSON *progress, const judged *j, otr_buf *out)
{
    const cJSON *started = cJSON_GetObjectItemCaseSensitive(progress, "waves");
    const cJSON *waves = otr_rollout_waves(kp->spec);
    const char *newest =
        otr_rollout_str(cJSON_GetArrayItem(started, cJSON_GetArraySize(started) - 1), "name");
    const char *after =
        otr_rollout_str(cJSON_GetArrayItem(waves, wave_index(waves, newest) + 1), "name");
    const char *st = j->state ? j->state : "";
    const char *task = kp->remote ? kp->remote->status : NULL;
    if (!strcmp(st, "halted")) {
        otr_buf_printf(out,
                       "a person must act: look at wave %s's failed devices (ota-runner status "
                       "--devices OtaRollout/%s), then change its gate (to go on) or "
                       "metadata.revision (a new image) in a commit",
                       newest, kp->m ? kp->m->name : kp->rec->name);
        if (task && otr_kind_running(kp->m->kind, task))
            otr_buf_printf(out,
                           "; its task is still %s on its devices (an apply with --prune "
                           "--allow-cancel after a new revision deletes it)",
                           task);
    } else if (!strcmp(st, "done")) {
        otr_buf_puts(out, "nothing: every wave passed");
    } else if (!strcmp(st, "passed, held by holdAfter")) {
        otr_buf_printf(out, "move holdAfter past %s in a commit to promote it (wave %s next)",
                       newest, after ? after : "?");
    } else if (!strcmp(st, "passed, paused")) {
        otr_buf_printf(out, "remove paused in a commit to go on (wave %s next)",
                       after ? after : "?");
    } else if (!strcmp(st, "passed, soaking")) {
        otr_buf_printf(out, "the first apply after the soak (see wave %s) moves on to wave %s",
                       newest, after ? after : "?");
    } else if (!strcmp(st, "passed, not recorded")) {
        otr_buf_printf(out, "the next apply records wave %s's pass; wave %s follows its soak",
                       newest, after ? after : "?");
    } else if (!strcmp(st, "waiting for the gate")) {
        otr_buf_printf(out,
                       "every thing of wave %s has ended and its gate is not met: only a change "
                       "to its gate, or a new metadata.revision, moves it",
                       newest);
    } else if (!strcmp(st, "verdict unknown")) {
        otr_buf_puts(out, "a plan or apply that asks the service (not --refresh none) judges it");
    } else if (!strcmp(st, "starting")) {
        otr_buf_printf(out, "the next apply finishes wave %s's create", newest);
    } else if (after) {
        otr_buf_printf(out, "an apply once wave %s passes its gate moves on to wave %s", newest,
                       after);
    } else {
        otr_buf_printf(out, "done once wave %s, the last, passes its gate", newest);
    }
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
        otr_buf_printf(&kp->reason, "starts wave %s: %s passed (%s)",
                       otr_rollout_str(entry, "name"),
                       otr_rollout_str(cJSON_GetArrayItem(started, next - 1), "name"), j.why.ptr);
        mark_starting(kp->view, otr_rollout_str(entry, "name"));
    }
    const char *to = promotes_to(kp);
    if (kp->view && to)
        cJSON_AddStringToObject(kp->view, "promotes", to);
    if (kp->view && kp->kind == OTR_ACT_CREATE) {
        cJSON_AddStringToObject(kp->view, "next", kp->reason.ptr);
    } else if (kp->view && !kp->refused.len) {
        otr_buf text = OTR_BUF_INIT;
        say_next(kp, progress, &j, &text);
        if (text.len)
            cJSON_AddStringToObject(kp->view, "next", text.ptr);
        otr_buf_free(&text);
    }
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
        if (name && otr_rollout_str(w, "name") && !strcmp(otr_rollout_str(w, "name"), name))
            return w;
    }
    return NULL;
}

/* Is the rollout's spec.after met: has the rollout of the other environment
 * passed the wave, sending the same firmware? Without after, yes. What it
 * waits for goes to why. An environment's state that cannot be read is
 * never a pass. */
static int after_met(const otr_kind_plan *kp, otr_buf *why)
{
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(kp->spec, "after");
    const char *env = otr_rollout_str(after, "env"), *name = otr_rollout_str(after, "rollout");
    const char *wave = otr_rollout_str(after, "passed");
    const char *mine = otr_rollout_str(cJSON_GetObjectItemCaseSensitive(kp->spec, "task"), "S3Url");
    if (!after || kp->compare)
        return 1;
    otr_buf key = OTR_BUF_INIT;
    otr_buf_printf(&key, "%s/%s", env, name);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(kp->gates, otr_buf_cstr(&key));
    otr_buf_free(&key);
    const char *theirs = otr_rollout_str(g, "s3Url");
    const cJSON *passed = cJSON_GetObjectItemCaseSensitive(g, "passed"), *p;
    int met = 0;
    cJSON_ArrayForEach(p, passed)
    {
        met |= cJSON_IsString(p) && !strcmp(p->valuestring, wave);
    }
    otr_buf_printf(why, "waits for %s's rollout %s to pass wave %s: ", env, name, wave);
    if (!g)
        otr_buf_puts(why, "that environment's state was not read");
    else if (otr_rollout_str(g, "error"))
        otr_buf_puts(why, otr_rollout_str(g, "error"));
    else if (!theirs)
        otr_buf_printf(why, "%s records no rollout %s", env, name);
    else if (!mine || strcmp(mine, theirs))
        otr_buf_printf(why, "it sends %s, not %s (the same firmware passes there first)", theirs,
                       mine ? mine : "?");
    else if (!met && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(g, "halted")))
        otr_buf_puts(why, "it is halted there");
    else if (!met)
        otr_buf_puts(why, "not yet");
    else
        return 1;
    return 0;
}

/* Two manifests of a rollout compared, without a state (ota-runner diff:
 * the record was made from the older manifest and has no progress): the
 * waves added, removed or changed, the revision, a promotion; a task
 * changed at the same revision is refused, as plan refuses it. */
static int diff_rollout(otr_kind_plan *kp)
{
    const cJSON *was = kp->rec_spec, *now = kp->spec;
    const cJSON *old_waves = otr_rollout_waves(was), *new_waves = otr_rollout_waves(now), *w;
    otr_buf *r = &kp->reason;
    if (cJSON_Compare(was, now, 1) && kp->rec->revision == kp->m->revision)
        return record_of(kp, cJSON_CreateObject());
    if (kp->rec->revision == kp->m->revision &&
        !cJSON_Compare(cJSON_GetObjectItemCaseSensitive(was, "task"),
                       cJSON_GetObjectItemCaseSensitive(now, "task"), 1)) {
        /* the older commit's rollout is taken as applied: its first wave started */
        otr_buf_puts(&kp->refused, "its task changed at the same metadata.revision, which plan "
                                   "and apply refuse once the rollout has started; bump "
                                   "metadata.revision to start a new rollout with it, or undo "
                                   "the change");
        return 0;
    }
    kp->kind = OTR_ACT_UPDATE;
    if (kp->rec->revision != kp->m->revision)
        otr_buf_printf(r, "metadata.revision %ld -> %ld: a new rollout, from its first wave; ",
                       kp->rec->revision, kp->m->revision);
    cJSON_ArrayForEach(w, new_waves)
    {
        const cJSON *before = wave_named(old_waves, otr_rollout_str(w, "name"));
        if (!before)
            otr_buf_printf(r, "wave %s added; ", otr_rollout_str(w, "name"));
        else if (!cJSON_Compare(before, w, 1))
            otr_buf_printf(r, "wave %s changed; ", otr_rollout_str(w, "name"));
    }
    cJSON_ArrayForEach(w, old_waves)
    {
        if (!wave_named(new_waves, otr_rollout_str(w, "name")))
            otr_buf_printf(r, "wave %s removed; ", otr_rollout_str(w, "name"));
    }
    if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(was, "gate"),
                       cJSON_GetObjectItemCaseSensitive(now, "gate"), 1))
        otr_buf_puts(r, "the gate changed; ");
    if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(was, "holdAfter"),
                       cJSON_GetObjectItemCaseSensitive(now, "holdAfter"), 1))
        otr_buf_printf(
            r, "holdAfter %s -> %s; ",
            otr_rollout_str(was, "holdAfter") ? otr_rollout_str(was, "holdAfter") : "(none)",
            otr_rollout_str(now, "holdAfter") ? otr_rollout_str(now, "holdAfter") : "(none)");
    if (r->len >= 2)
        r->ptr[r->len -= 2] = '\0'; /* the last "; " */
    kp->view = cJSON_CreateObject();
    const char *to = promotes_to(kp);
    if (kp->view && to)
        cJSON_AddStringToObject(kp->view, "promotes", to);
    cJSON *list = kp->view ? cJSON_AddArrayToObject(kp->view, "waves") : NULL;
    cJSON_ArrayForEach(w, new_waves)
    {
        const cJSON *before = wave_named(old_waves, otr_rollout_str(w, "name"));
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
        otr_buf waits = OTR_BUF_INIT;
        if (!after_met(kp, &waits)) { /* nothing starts: the record stays as it is */
            kp->view = rollout_view(kp, NULL, NULL);
            if (kp->view)
                cJSON_AddStringToObject(kp->view, "next", otr_buf_cstr(&waits));
            otr_buf_free(&waits);
            return 0;
        }
        otr_buf_free(&waits);
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
    kp.status_only = 1;
    kp.now = now;
    kp.kind = OTR_ACT_NOOP;
    cJSON *view = spec && otr_rollout_started(rec) && plan_next(&kp) == 0 ? kp.view : NULL;
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
    for (int i = 0; out && i < cJSON_GetArraySize(otr_rollout_waves(spec)); i++) {
        cJSON *e = wave_entry(&kp, i), *t = cJSON_CreateObject();
        if (!e || !t) {
            cJSON_Delete(e);
            cJSON_Delete(t);
            cJSON_Delete(out);
            out = NULL;
            break;
        }
        cJSON_AddStringToObject(t, "name", otr_rollout_str(e, "name"));
        cJSON_AddStringToObject(t, "clientToken", otr_rollout_str(e, "clientToken"));
        cJSON_AddItemToArray(out, t);
        cJSON_Delete(e);
    }
    cJSON_Delete(spec);
    return out;
}

/* The rollout in words: its task's firmware and settings, then each wave's
 * targets. */
/* ---- adopting a lost state ----------------------------------------------------------- */

/* Is the task (a get's answer) wave w's: its revision, and the body the
 * manifest gives that wave (the task and the wave's targets)? -1 without
 * memory. */
static int wave_task(const otr_kind_plan *kp, const cJSON *wave, const cJSON *fields)
{
    cJSON *targets = otr_rollout_targets(wave);
    cJSON *body =
        targets ? otr_rollout_wave_body(cJSON_GetObjectItemCaseSensitive(kp->spec, "task"), targets)
                : NULL;
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
        for (i = 0; wave_at < 0 && i < cJSON_GetArraySize(otr_rollout_waves(spec)); i++) {
            int is =
                wave_task(&kp, cJSON_GetArrayItem(otr_rollout_waves(spec), i), found[k].fields);
            if (is < 0)
                goto nomem;
            if (is &&
                !wave_named(
                    waves, otr_rollout_str(cJSON_GetArrayItem(otr_rollout_waves(spec), i), "name")))
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
        otr_rollout_set(e, "taskId", task->id);
        otr_rollout_set(e, "taskArn", task->arn);
        otr_rollout_set(e, "createdAt", at);
        cJSON *uses = cJSON_AddObjectToObject(e, "uses");
        const char *cfg = otr_rollout_str(task->fields, "TaskConfigurationId");
        if (cfg)
            cJSON_AddStringToObject(uses, "TaskConfigurationId", cfg);
        cJSON *before = cJSON_GetArrayItem(waves, cJSON_GetArraySize(waves) - 1);
        if (before)
            otr_rollout_set(before, "passedAt", at);
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

const otr_kind_behaviour otr_behaviour_ota_rollout = {
    .kind = &otr_kind_ota_rollout,
    .plan = plan_rollout,
    .status_view = status_view,
    .call_tokens = call_tokens,
    .adopt = adopt,
    .views_title = "Staged rollouts",
    .view_text = otr_render_rollout_text,
    .view_markdown = otr_render_rollout_markdown,
    .view_github = otr_render_rollout_github,
    .view_mermaid = otr_render_rollout_mermaid,
    .view_halted = otr_rollout_view_halted,
    .view_state = otr_rollout_view_state,
    .view_promotes = otr_rollout_view_promotes,
    .events = otr_rollout_events,
    .metric_families = otr_rollout_metric_families,
    .view_metrics = otr_rollout_view_metrics,
};
