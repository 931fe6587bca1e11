/* Desired vs recorded (vs remote) -> actions, for every kind from its
 * description (their order: order.c; the guards and the JSON: json.c). */
#include "plan/plan.h"
#include "util/alloc.h"
#include "kinds/tags.h"

#include "manifest/token.h"
#include "plan/internal.h"
#include "state/state.h"
#include "util/buf.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- building ------------------------------------------------------------ */

typedef struct builder {
    otr_plan *p;
    const otr_plan_options *o;
    otr_buf refusals; /* changes that cannot be made, a line each */
    const otr_manifest_set *set;
    otr_state *view; /* the records as they will be once pending intents are finished (the
                        state itself when none are pending) */
    size_t alloc;
    size_t nalloc;
    size_t ralloc;
    size_t nresumes;       /* the first actions: those plan_resumes made */
    const char **recorded; /* every id the records hold, sorted (made when needed) */
    size_t nrecorded;
    int recorded_made;
} builder;

otr_action *otr_plan_push_action(otr_plan *p, size_t *alloc, otr_action_kind kind,
                                 const otr_kind *resource, const char *name)
{
    if (OTR_GROW(p->actions, p->count, *alloc, 64) < 0)
        return NULL;
    otr_action *a = &p->actions[p->count];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->resource = resource;
    a->name = strdup(name);
    if (!a->name)
        return NULL;
    p->count++;
    p->counts[kind]++;
    return a;
}

static otr_action *add_action(builder *b, otr_action_kind kind, const otr_kind *resource,
                              const char *name)
{
    return otr_plan_push_action(b->p, &b->alloc, kind, resource, name);
}

static int add_refusal(builder *b, const otr_buf *text)
{
    otr_buf_printf(&b->refusals, "%s%s", b->refusals.len ? "\n" : "", otr_buf_cstr(text));
    return otr_buf_failed(&b->refusals) || otr_buf_failed(text) ? -1 : 0;
}

static int add_note(builder *b, const otr_buf *text)
{
    otr_plan *p = b->p;
    if (otr_buf_failed(text))
        return -1;
    if (OTR_GROW(p->notes, p->nnotes, b->nalloc, 8) < 0)
        return -1;
    if (!(p->notes[p->nnotes] = strdup(otr_buf_cstr(text))))
        return -1;
    p->nnotes++;
    return 0;
}

/* Takes rec (left empty) into the plan's rewrites. */
int otr_plan_push_rewrite(otr_plan *p, size_t *alloc, otr_record *rec)
{
    if (OTR_GROW(p->rewrites, p->nrewrites, *alloc, 8) < 0)
        return -1;
    p->rewrites[p->nrewrites++].rec = *rec;
    memset(rec, 0, sizeof(*rec));
    return 0;
}

/* The record as its manifest has it now: file, commit, digest. */
static int add_rewrite(otr_plan *p, size_t *alloc, const otr_record *rec, const otr_manifest *m,
                       const char *commit)
{
    otr_record w;
    if (otr_record_copy(&w, rec) < 0)
        return -1;
    free(w.file);
    free(w.commit);
    free(w.spec_digest);
    w.file = strdup(m->file);
    w.commit = dup_or_null(commit);
    w.spec_digest = strdup(m->spec_digest);
    if (!w.file || !w.spec_digest || (commit && !w.commit) ||
        otr_plan_push_rewrite(p, alloc, &w) < 0) {
        otr_record_clear(&w);
        return -1;
    }
    return 0;
}

static const otr_remote_view *view_of(const otr_plan_options *o, const otr_kind *k)
{
    for (const otr_remote_view *v = o->remote; v && v->kind; v++)
        if (v->kind == k)
            return v;
    return NULL;
}

static int remote_cmp(const void *id, const void *item)
{
    return strcmp(id, ((const otr_remote_item *)item)->id);
}

static const otr_remote_item *remote_find(const otr_remote_view *v, const char *id)
{
    if (!v || !v->count)
        return NULL;
    return bsearch(id, v->items, v->count, sizeof(*v->items), remote_cmp);
}

/* The resource id as the service lists it, unless it is being deleted (the
 * model's delete is asynchronous: DELETION_IN_PROGRESS is a delete that
 * landed, not a resource to keep). */
static const otr_remote_item *remote_live(const otr_remote_view *v, const char *id)
{
    const otr_remote_item *it = remote_find(v, id);
    return it && it->status && !strcmp(it->status, "DELETION_IN_PROGRESS") ? NULL : it;
}

static int targeted(const otr_plan_options *o, const otr_kind *k, const char *name)
{
    if (!o->targets)
        return 1;
    for (size_t i = 0; o->targets[i]; i++) {
        const otr_kind *tk;
        const char *tn;
        otr_buf why = OTR_BUF_INIT;
        int ok = otr_address_parse(o->targets[i], &tk, &tn, &why) == 0;
        otr_buf_free(&why);
        if (ok && tk == k && !strcmp(tn, name))
            return 1;
    }
    return 0;
}

/* The action on an address planned so far, or NULL. */
static otr_action *planned(const builder *b, const otr_kind *k, const char *name)
{
    for (size_t i = b->p->count; i-- > 0;)
        if (b->p->actions[i].resource == k && !strcmp(b->p->actions[i].name, name))
            return &b->p->actions[i];
    return NULL;
}

/* Is an interrupted run's intent for this address being finished? (Those
 * actions come first, so a plan of many noops does not scan them all.) */
static int resuming(const builder *b, const otr_kind *k, const char *name)
{
    for (size_t i = 0; i < b->nresumes; i++)
        if (b->p->actions[i].resource == k && !strcmp(b->p->actions[i].name, name))
            return 1;
    return 0;
}

/* Will the resource at this address get a new id in this run? */
static int gets_new_id(const builder *b, const otr_kind *k, const char *name)
{
    for (size_t i = 0; i < b->p->count; i++) {
        const otr_action *a = &b->p->actions[i];
        if (a->resource == k && !strcmp(a->name, name) &&
            (a->kind == OTR_ACT_CREATE || a->kind == OTR_ACT_REPLACE ||
             (a->kind == OTR_ACT_RESUME && a->resume_op == OTR_OP_CREATE)))
            return 1;
    }
    return 0;
}

/* The spec (taken) as the service would hold it: each reference by name replaced by
 * the id of the resource it names, or, when that resource is (re)created in
 * this run, by a placeholder that names it. */
static cJSON *resolved(builder *b, const otr_kind *k, cJSON *spec)
{
    cJSON *out = spec;
    for (size_t i = 0; out && i < k->nrefs; i++) {
        const otr_kind_ref *ref = &k->refs[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(out, ref->field);
        if (!cJSON_IsString(v))
            continue;
        const otr_kind *tk = otr_kind_find(ref->kind);
        const otr_record *target = otr_state_find(b->view, tk, v->valuestring);
        otr_buf id = OTR_BUF_INIT;
        if (target && target->id && !gets_new_id(b, tk, v->valuestring))
            otr_buf_puts(&id, target->id);
        else
            otr_buf_printf(&id, "(the new id of %s/%s)", ref->kind, v->valuestring);
        cJSON *value = otr_buf_failed(&id) ? NULL : cJSON_CreateString(id.ptr);
        otr_buf_free(&id);
        cJSON_DeleteItemFromObjectCaseSensitive(out, ref->field);
        if (!value || !cJSON_AddItemToObject(out, ref->id_field, value)) {
            cJSON_Delete(value);
            cJSON_Delete(out);
            return NULL;
        }
    }
    if (out && otr_canonical_sort(out) < 0) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* The recorded resource as the action keeps it, with the status the refresh
 * saw (so the guards and the outputs judge by the newest word). */
static int keep_old(otr_action *a, const otr_record *rec, const otr_remote_item *remote)
{
    if (otr_record_copy(&a->old, rec) < 0)
        return -1;
    if (remote && remote->status) {
        free(a->old.remote_status);
        if (!(a->old.remote_status = strdup(remote->status)))
            return -1;
    }
    return 0;
}

/* A manifest with no resource (or whose resource the service no longer has). */
static int plan_create(builder *b, otr_manifest *m, const otr_record *rec, const char *reason)
{
    otr_action *a = add_action(b, OTR_ACT_CREATE, m->kind, m->name);
    if (!a)
        return -1;
    a->line = m->line;
    if (reason && !(a->reason = strdup(reason)))
        return -1;
    if (rec && otr_record_copy(&a->old, rec) < 0)
        return -1;
    a->manifest = m;
    return otr_record_take_manifest(&a->desired, m, b->o->commit);
}

/* A recorded resource whose manifest is gone: deleted with --prune, else
 * orphaned. */
static int plan_gone(builder *b, const otr_record *rec, const otr_remote_item *remote)
{
    otr_action *a =
        add_action(b, b->o->prune ? OTR_ACT_DELETE : OTR_ACT_ORPHAN, rec->kind, rec->name);
    if (!a || keep_old(a, rec, remote) < 0)
        return -1;
    if (!b->o->prune) {
        otr_buf why = OTR_BUF_INIT;
        otr_buf_printf(&why, "its manifest is gone; run with --prune to delete the %s",
                       rec->kind->noun);
        if (!(a->reason = otr_buf_detach(&why)))
            return -1;
    }
    return 0;
}

/* A noop: nothing to carry out, so no copies (10k noops stay cheap); but a
 * manifest that moved to another file (git mv), or whose digest differs with
 * nothing to send (an imported resource), is recorded anew, without a call. */
static int plan_noop(builder *b, const otr_record *rec, const otr_manifest *m)
{
    if (resuming(b, m->kind, m->name))
        return 0; /* its resume is its action: not "unchanged" too */
    otr_action *a = add_action(b, OTR_ACT_NOOP, m->kind, m->name);
    if (!a)
        return -1;
    a->line = m->line;
    int moved = rec->file && strcmp(rec->file, m->file);
    int digest = !rec->spec_digest || strcmp(rec->spec_digest, m->spec_digest);
    if (!moved && !digest)
        return 0;
    otr_buf note = OTR_BUF_INIT;
    otr_address_short(&note, m->kind, m->name);
    if (moved)
        otr_buf_printf(&note, ": its manifest moved from %s to %s", rec->file, m->file);
    else
        otr_buf_printf(&note, ": the %s already is as the manifest says", m->kind->noun);
    otr_buf_puts(&note, "; apply records that, without a call");
    int rc =
        add_note(b, &note) < 0 || add_rewrite(b->p, &b->ralloc, rec, m, b->o->commit) < 0 ? -1 : 0;
    otr_buf_free(&note);
    return rc;
}

/* How a recorded resource must change to become what its manifest wants:
 * into probe (and why), the action kind; -1 without memory. */
static int judge(builder *b, const otr_record *rec, const otr_manifest *m,
                 const otr_remote_item *remote, otr_action *probe, otr_buf *why, int *drifted_out)
{
    const otr_kind *k = m->kind;
    int same_digest = rec->spec_digest && !strcmp(rec->spec_digest, m->spec_digest);
    /* a new revision asks for a fresh ClientToken, so a new resource, whatever
     * else changed (an imported one has no token of ours to renew) */
    int imported = rec->phase && !strcmp(rec->phase, "imported");
    int new_revision = !imported && rec->revision != m->revision;
    int drift = remote && remote->fields;
    /* the same manifest, referring to nothing: nothing to look at (10k noops
     * stay cheap); one with references still moves when what it refers to
     * got a new id */
    if (same_digest && !m->nrefs && !new_revision && !drift)
        return OTR_ACT_NOOP;
    otr_action_kind kind = OTR_ACT_NOOP;
    cJSON *want = resolved(b, k, otr_manifest_spec(m));
    cJSON *had = otr_record_spec(rec);
    int rc = -1;
    if (!want || !had)
        goto done;
    if (!same_digest || m->nrefs) {
        int up = otr_plan_diff_specs(probe, k, had, want);
        if (up < 0)
            goto done;
        if (probe->nchanges)
            kind = up ? OTR_ACT_UPDATE : OTR_ACT_REPLACE;
    }
    if (new_revision) {
        kind = OTR_ACT_REPLACE;
        otr_buf_printf(why, "metadata.revision %ld -> %ld: a fresh ClientToken, so a new %s",
                       rec->revision, m->revision, k->noun);
    }
    if (kind == OTR_ACT_NOOP && drift) {
        int updatable = 1;
        int drifted = otr_plan_drift(probe, rec, had, want, remote->fields, &updatable, why);
        if (drifted < 0)
            goto done;
        if (drifted)
            kind = updatable ? OTR_ACT_UPDATE : OTR_ACT_REPLACE;
        *drifted_out = drifted;
    }
    rc = (int)kind;
done:
    cJSON_Delete(want);
    cJSON_Delete(had);
    return rc;
}

/* A recorded resource and the manifest that wants it. */
static int plan_existing(builder *b, const otr_record *rec, otr_manifest *m,
                         const otr_remote_item *remote)
{
    otr_action probe = {0};
    otr_buf why = OTR_BUF_INIT;
    int rc = -1, all_dropped = 0, drifted = 0;
    int kind = judge(b, rec, m, remote, &probe, &why, &drifted);
    if (kind == OTR_ACT_UPDATE) {
        otr_buf note = OTR_BUF_INIT;
        kind = otr_plan_ended_update(rec, remote, &probe, &note, &all_dropped);
        if (kind >= 0 && note.len && add_note(b, &note) < 0)
            kind = -1;
        otr_buf_free(&note);
    }
    if (kind < 0)
        goto done;
    if (all_dropped) {
        /* an ended resource's update, all dropped: nothing to do or record
         * (the next plan notes it again) */
        otr_action *a = add_action(b, OTR_ACT_NOOP, m->kind, m->name);
        rc = a ? 0 : -1;
        if (a)
            a->line = m->line;
        goto done;
    }
    if (kind == OTR_ACT_NOOP) {
        rc = plan_noop(b, rec, m);
        goto done;
    }
    otr_action *a = add_action(b, (otr_action_kind)kind, m->kind, m->name);
    if (!a)
        goto done;
    a->line = m->line;
    a->drift = drifted;
    a->changes = probe.changes;
    a->nchanges = probe.nchanges;
    probe.changes = NULL;
    probe.nchanges = 0;
    if (why.len && !(a->reason = otr_buf_detach(&why)))
        goto done;
    a->manifest = m;
    if (keep_old(a, rec, remote) < 0 || otr_record_take_manifest(&a->desired, m, b->o->commit) < 0)
        goto done;
    rc = 0;
done:
    otr_changes_free(probe.changes, probe.nchanges);
    otr_buf_free(&why);
    return rc;
}

/* The behaviour the plan was given for kind k, or NULL. */
static const otr_kind_behaviour *behaviour_of(const otr_plan_options *o, const otr_kind *k)
{
    for (size_t i = 0; o->behaviours && o->behaviours[i]; i++)
        if (o->behaviours[i]->kind == k)
            return o->behaviours[i];
    return NULL;
}

/* An address of a kind that plans itself: its own verdict, made into an
 * action, a rewrite, a detail for the outputs, or a refusal. */
static int plan_by_kind(builder *b, const otr_record *rec, otr_manifest *m,
                        const otr_remote_item *remote)
{
    const otr_kind *k = m ? m->kind : rec->kind;
    const char *name = m ? m->name : rec->name;
    otr_kind_plan kp;
    int rc = -1;
    memset(&kp, 0, sizeof(kp));
    kp.rec = rec;
    kp.m = m;
    cJSON *spec = m ? otr_manifest_spec(m) : NULL, *rec_spec = rec ? otr_record_spec(rec) : NULL;
    kp.spec = spec;
    kp.rec_spec = rec_spec;
    kp.remote = remote;
    kp.set = b->set;
    kp.refreshed = view_of(b->o, k) != NULL;
    kp.prune = b->o->prune;
    kp.compare = b->o->compare;
    kp.now = b->o->now;
    kp.commit = b->o->commit;
    kp.gates = b->o->gates;
    kp.kind = OTR_ACT_NOOP;
    const otr_kind_behaviour *bh = behaviour_of(b->o, k);
    if (!bh) {
        otr_buf why = OTR_BUF_INIT;
        otr_address_short(&why, k, name);
        otr_buf_printf(&why, ": no planner for kind %s was given to the plan", k->name);
        rc = add_refusal(b, &why);
        otr_buf_free(&why);
        goto done;
    }
    if ((m && !spec) || (rec && !rec_spec) || bh->plan(&kp) < 0 || otr_buf_failed(&kp.reason))
        goto done;
    if (kp.view && otr_plan_add_detail(b->p, k, name, kp.view) == 0)
        kp.view = NULL;
    if (kp.refused.len) {
        otr_buf msg = OTR_BUF_INIT;
        otr_address_short(&msg, k, name);
        otr_buf_printf(&msg, ": %s", otr_buf_cstr(&kp.refused));
        rc = add_refusal(b, &msg);
        otr_buf_free(&msg);
        goto done;
    }
    if (kp.kind == OTR_ACT_NOOP) {
        /* no rewrite where a resume acts: its result is the record */
        rc = kp.rewrite && !resuming(b, k, name)
                 ? otr_plan_push_rewrite(b->p, &b->ralloc, &kp.desired)
                 : 0;
        if (rc == 0 && !resuming(b, k, name))
            rc = add_action(b, OTR_ACT_NOOP, k, name) ? 0 : -1;
        goto done;
    }
    otr_action *a = add_action(b, kp.kind, k, name);
    if (!a || (rec && keep_old(a, rec, remote) < 0))
        goto done;
    a->line = m ? m->line : 0;
    a->desired = kp.desired;
    memset(&kp.desired, 0, sizeof(kp.desired));
    if (kp.reason.len && !(a->reason = otr_buf_detach(&kp.reason)))
        goto done;
    rc = 0;
done:
    otr_record_clear(&kp.desired);
    otr_buf_free(&kp.reason);
    otr_buf_free(&kp.refused);
    cJSON_Delete(kp.view);
    cJSON_Delete(spec);
    cJSON_Delete(rec_spec);
    return rc;
}

/* One address: its recorded resource (or none) and its manifest (or none). */
static int plan_name(builder *b, const otr_record *rec, otr_manifest *m)
{
    const otr_plan_options *o = b->o;
    const otr_remote_item *remote = NULL;
    const otr_kind *k = m ? m->kind : rec->kind;
    if (k->plans_itself) {
        const otr_remote_view *v = rec ? view_of(o, rec->kind) : NULL;
        return plan_by_kind(b, rec, m, v && rec->id ? remote_find(v, rec->id) : NULL);
    }
    if (m && !rec)
        return plan_create(b, m, NULL, NULL);
    const otr_remote_view *v = view_of(o, rec->kind);
    if (v && rec->id)
        remote = remote_live(v, rec->id);
    if (!m)
        return plan_gone(b, rec, remote);
    if (v && rec->id && !remote) {
        otr_buf why = OTR_BUF_INIT;
        otr_buf_printf(&why, "drift: the recorded %s %s no longer exists in the service",
                       rec->kind->noun, rec->id);
        int rc = otr_buf_failed(&why) ? -1 : plan_create(b, m, rec, why.ptr);
        if (rc == 0)
            b->p->actions[b->p->count - 1].drift = 1;
        otr_buf_free(&why);
        return rc;
    }
    if (remote && remote->status && rec->remote_status &&
        strcmp(remote->status, rec->remote_status)) {
        otr_buf note = OTR_BUF_INIT;
        otr_address_short(&note, rec->kind, rec->name);
        otr_buf_printf(&note, ": status %s -> %s", rec->remote_status, remote->status);
        int rc = add_note(b, &note);
        otr_buf_free(&note);
        if (rc < 0)
            return -1;
    }
    return plan_existing(b, rec, m, remote);
}

/* Is the resource a delete intent names still in the service? 1 yes, 0 gone,
 * -1 not known (--refresh none). */
static int still_there(const builder *b, const otr_intent *in)
{
    const otr_remote_view *v = view_of(b->o, in->rec.kind);
    if (!v || !in->rec.id)
        return -1;
    return remote_live(v, in->rec.id) != NULL;
}

/* A delete left by an interrupted run whose resource may still be there is
 * not finished: the manifests and the guards of this run decide again (a
 * manifest restored since, a run without --prune or --allow-cancel, must not
 * see its running task cancelled). The plan notes it and apply forgets it. */
static int drop_intent(builder *b, const otr_intent *in, int there)
{
    otr_plan *p = b->p;
    otr_intent *grown = realloc(p->dropped, (p->ndropped + 1) * sizeof(*grown));
    if (!grown)
        return -1;
    p->dropped = grown;
    otr_intent *d = &p->dropped[p->ndropped];
    memset(d, 0, sizeof(*d));
    d->op = in->op;
    d->retired = in->retired;
    d->rec.kind = in->rec.kind;
    if (!(d->rec.name = strdup(in->rec.name)) ||
        (in->rec.id && !(d->rec.id = strdup(in->rec.id)))) {
        otr_intent_clear(d);
        return -1;
    }
    p->ndropped++;
    otr_buf note = OTR_BUF_INIT;
    otr_address_short(&note, in->rec.kind, in->rec.name);
    if (in->op == OTR_OP_CREATE)
        otr_buf_printf(&note,
                       ": the create of %s an interrupted run left unfinished never reached the "
                       "service (not found by its tags and body), and the manifest changed "
                       "since; this plan judges it anew",
                       in->rec.kind->noun);
    else
        otr_buf_printf(&note,
                       ": the delete of %s%s %s an interrupted run left unfinished is not "
                       "finished: %s; this plan judges it anew",
                       in->retired ? "the retired " : "", in->rec.kind->noun,
                       in->rec.id ? in->rec.id : "?",
                       there > 0 ? "it is still in the service" : "the service was not asked");
    int rc = add_note(b, &note);
    otr_buf_free(&note);
    return rc;
}

/* A create an interrupted run left pending that never reached the service
 * (the refresh looked for it by its tags and body and did not find it:
 * sync/adopt.c, otr_adopt_landed), whose manifest changed or went since:
 * resumed, it would be made only for this plan to delete it again. */
static int create_stale(const builder *b, const otr_intent *in)
{
    if (in->op != OTR_OP_CREATE || in->retired || !view_of(b->o, in->rec.kind) ||
        !otr_kind_sent(in->rec.kind)->tags_key)
        return 0;
    const otr_manifest *m = otr_manifest_set_find(b->set, in->rec.kind, in->rec.name);
    return !m || m->revision != in->rec.revision || !in->rec.spec_digest ||
           strcmp(m->spec_digest, in->rec.spec_digest);
}

/* Intents left by an interrupted run are finished first (but a delete of a
 * resource still there: drop_intent); the rest of the plan is made as if
 * they succeed, on a copy of the records (b->view). */
static int plan_resumes(builder *b, otr_state *state)
{
    for (size_t i = 0; i < state->npending; i++) {
        const otr_intent *in = &state->pending[i];
        if (!targeted(b->o, in->rec.kind, in->rec.name))
            continue;
        if (in->op == OTR_OP_CREATE && !view_of(b->o, in->rec.kind) && !b->o->blind) {
            /* what the create made, if anything, is not looked for: re-sent
             * blind, it makes a second resource once the service has
             * forgotten its ClientToken (a run resumed after its window) */
            otr_buf why = OTR_BUF_INIT;
            otr_address_short(&why, in->rec.kind, in->rec.name);
            otr_buf_printf(&why,
                           ": an interrupted run left its create unfinished, and --refresh none "
                           "does not look for what it made; run without --refresh none, which "
                           "finds it by its tags (or creates it once, if it never landed), or "
                           "give --no-adopt to send it again on its ClientToken alone");
            int rc = add_refusal(b, &why);
            otr_buf_free(&why);
            if (rc < 0)
                return -1;
            continue;
        }
        int there = in->op == OTR_OP_DELETE ? still_there(b, in) : 0;
        if (there || create_stale(b, in)) {
            if (drop_intent(b, in, there) < 0)
                return -1;
            continue;
        }
        otr_action *a = add_action(b, OTR_ACT_RESUME, in->rec.kind, in->rec.name);
        if (!a)
            return -1;
        a->resume_op = in->op;
        a->retired = in->retired;
        otr_buf why = OTR_BUF_INIT;
        otr_buf_printf(&why, "finish the %s%s left unfinished by an interrupted run",
                       in->retired ? "delete of the retired " : otr_op_name(in->op),
                       in->retired ? in->rec.kind->noun : "");
        if (!(a->reason = otr_buf_detach(&why)))
            return -1;
        const otr_record *cur = otr_state_find(state, in->rec.kind, in->rec.name);
        if (in->retired) {
            if (otr_record_copy(&a->old, &in->rec) < 0)
                return -1;
        } else if ((cur && otr_record_copy(&a->old, cur) < 0) ||
                   otr_record_copy(&a->desired, &in->rec) < 0) {
            return -1;
        }
        if (in->op == OTR_OP_CREATE && in->replaces) {
            free(a->old.id);
            if (!(a->old.id = strdup(in->replaces)))
                return -1;
        }
        if (otr_state_project(b->view, in) < 0)
            return -1;
    }
    b->nresumes = b->p->count;
    return 0;
}

/* Merge-joins the manifests (sorted by address) with the records. */
static int plan_names(builder *b, otr_manifest_set *set)
{
    const otr_state *view = b->view;
    size_t i = 0, j = 0;
    while (i < set->count || j < view->count) {
        otr_manifest *mi = i < set->count ? set->by_name[i] : NULL;
        const otr_record *rj = j < view->count ? &view->records[j] : NULL;
        int c = !mi   ? 1
                : !rj ? -1
                      : (otr_kind_index(mi->kind) != otr_kind_index(rj->kind)
                             ? (otr_kind_index(mi->kind) < otr_kind_index(rj->kind) ? -1 : 1)
                             : strcmp(mi->name, rj->name));
        otr_manifest *m = c <= 0 ? mi : NULL;
        const otr_record *r = c >= 0 ? rj : NULL;
        const otr_kind *k = m ? m->kind : r->kind;
        const char *name = m ? m->name : r->name;
        if (c <= 0)
            i++;
        if (c >= 0)
            j++;
        if (targeted(b->o, k, name) && plan_name(b, r, m) < 0)
            return -1;
    }
    return 0;
}

static int id_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Is id one the records hold (a rollout's: any wave's)? The records judge
 * their own uses; the service's listing speaks for the rest. */
static int is_recorded(builder *b, const char *id)
{
    if (!b->recorded_made && otr_state_ids(b->view, &b->recorded, &b->nrecorded) < 0)
        b->recorded = NULL;
    b->recorded_made = 1;
    /* without memory, every listed user counts: the old resource stays */
    return b->recorded && bsearch(&id, b->recorded, b->nrecorded, sizeof(*b->recorded), id_cmp);
}

/* A retired resource (an older revision's wave) is judged by no record, so
 * the service's word counts for it (chaos, I5, seed 1796556569), unless
 * this run deletes it (--prune): the delete of what it uses then waits for
 * its delete (plan/order.c). */
static int retired_user(builder *b, const otr_kind *k, const char *id)
{
    const otr_retired *r = otr_state_find_retired(b->view, k, id);
    return r && !(k->retires_dropped && b->o->prune && targeted(b->o, k, r->name));
}

/* Is a resource of kind k with id still referred to by a record that no
 * action of this plan moves away, or by anything the service lists (a task
 * ota-runner left alone, another's)? Names the first such in who. */
static int still_used(builder *b, const otr_kind *k, const char *id, otr_buf *who)
{
    for (const otr_remote_view *v = b->o->remote; v && v->kind; v++)
        for (size_t i = 0; i < v->count; i++) {
            const otr_remote_item *it = &v->items[i];
            if (it->uses_id && !strcmp(it->uses_id, id) &&
                !(it->status && !strcmp(it->status, "DELETION_IN_PROGRESS")) &&
                (!is_recorded(b, it->id) || retired_user(b, v->kind, it->id))) {
                otr_buf_printf(who, "%s %s", v->kind->noun, it->id);
                return 1;
            }
        }
    for (size_t i = 0; i < b->view->count; i++) {
        const otr_record *r = &b->view->records[i];
        for (size_t f = 0; f < r->kind->nrefs; f++) {
            if (otr_kind_find(r->kind->refs[f].kind) != k)
                continue;
            if (r->kind->refers_to ? !r->kind->refers_to(r, r->kind->refs[f].id_field, id)
                                   : !otr_record_spec_is(r, r->kind->refs[f].id_field, id))
                continue;
            const otr_action *a = planned(b, r->kind, r->name);
            /* a kind whose resources keep what they were made with (a
             * rollout's waves) moves none away in this run */
            int moves =
                a && a->kind != OTR_ACT_NOOP && a->kind != OTR_ACT_ORPHAN && !r->kind->refers_to;
            if (!moves) {
                otr_address_short(who, r->kind, r->name);
                return 1;
            }
        }
    }
    return 0;
}

/* A delete of the retired resource id of address (kind, name), unless a
 * record nothing moves still uses it (then a note says so). */
static int plan_retired_delete(builder *b, const otr_kind *k, const char *name, const char *id,
                               const char *reason)
{
    otr_buf who = OTR_BUF_INIT;
    if (!b->o->remote) { /* --refresh none: who uses it is not known; it waits */
        otr_buf note = OTR_BUF_INIT;
        otr_address_short(&note, k, name);
        otr_buf_printf(&note,
                       ": the old %s %s stays (retired) until a run that asks the service "
                       "(not --refresh none) finds nothing using it",
                       k->noun, id);
        int rc = add_note(b, &note);
        otr_buf_free(&note);
        return rc;
    }
    if (still_used(b, k, id, &who)) {
        otr_buf note = OTR_BUF_INIT;
        otr_address_short(&note, k, name);
        otr_buf_printf(&note, ": the old %s %s stays (retired) while %s uses it", k->noun, id,
                       otr_buf_cstr(&who));
        int rc = add_note(b, &note);
        otr_buf_free(&note);
        otr_buf_free(&who);
        return rc;
    }
    otr_buf_free(&who);
    otr_action *a = add_action(b, OTR_ACT_DELETE, k, name);
    if (!a)
        return -1;
    a->retired = 1;
    b->p->retired_deletes++;
    a->old.kind = k;
    if (!(a->old.name = strdup(name)) || !(a->old.id = strdup(id)) ||
        (reason && !(a->reason = strdup(reason))))
        return -1;
    /* the status the refresh saw, for the --allow-cancel guard */
    const otr_remote_view *v = view_of(b->o, k);
    const otr_remote_item *it = v ? remote_live(v, id) : NULL;
    if (it && it->status && !(a->old.remote_status = strdup(it->status)))
        return -1;
    return 0;
}

/* A pruned resource of a kind that others refer to (a configuration) that
 * something not moving away in this run still uses (a rollout's wave, a
 * task ota-runner left alone, another's) is not deleted: the delete becomes
 * an orphan, which a later --prune deletes once nothing uses it. */
static int hold_used(builder *b)
{
    size_t n = b->p->count;
    for (size_t i = 0; i < n; i++) {
        otr_action *a = &b->p->actions[i];
        otr_buf who = OTR_BUF_INIT;
        if (a->kind != OTR_ACT_DELETE || a->retired || !a->resource->conflict_retires ||
            !a->old.id || !still_used(b, a->resource, a->old.id, &who)) {
            otr_buf_free(&who);
            continue;
        }
        b->p->counts[OTR_ACT_DELETE]--;
        b->p->counts[OTR_ACT_ORPHAN]++;
        a->kind = OTR_ACT_ORPHAN;
        free(a->reason);
        otr_buf why = OTR_BUF_INIT;
        otr_buf_printf(&why,
                       "its manifest is gone, and %s still uses it: kept, for a later --prune "
                       "to delete once nothing does",
                       otr_buf_cstr(&who));
        a->reason = otr_buf_detach(&why);
        otr_buf_free(&who);
        if (!a->reason)
            return -1;
    }
    return 0;
}

/* A retired resource only --prune deletes (an older revision's wave task),
 * in a run without it: a note says it stays, and how it stands. */
static int retired_kept(builder *b, const otr_retired *r)
{
    const otr_remote_view *v = view_of(b->o, r->kind);
    const otr_remote_item *it = v ? remote_live(v, r->id) : NULL;
    otr_buf note = OTR_BUF_INIT;
    otr_address_short(&note, r->kind, r->name);
    int runs = it && it->status && otr_kind_running(r->kind, it->status);
    otr_buf_printf(&note, ": task %s of an older revision is retired (%s)", r->id,
                   !v           ? "its status not asked"
                   : !it        ? "gone from the service"
                   : it->status ? it->status
                                : "listed");
    if (runs)
        otr_buf_puts(&note, ": it still runs on its devices; --prune --allow-cancel deletes it");
    else
        otr_buf_puts(&note, "; --prune deletes it");
    int rc = add_note(b, &note);
    otr_buf_free(&note);
    return rc;
}

/* The old resources to delete: those a create-first replace of this run
 * retires, and those already retired; each once nothing refers to it. */
static int plan_retired(builder *b)
{
    size_t n = b->p->count;
    for (size_t i = 0; i < n; i++) {
        const otr_action *r = &b->p->actions[i];
        const char *id = otr_action_replaces(r);
        if (id && plan_retired_delete(b, r->resource, r->name, id, NULL) < 0)
            return -1;
    }
    for (size_t i = 0; i < b->view->nretired; i++) {
        const otr_retired *r = &b->view->retired[i];
        otr_buf why = OTR_BUF_INIT;
        if (!targeted(b->o, r->kind, r->name))
            continue;
        if (r->kind->retires_dropped && !b->o->prune) {
            if (retired_kept(b, r) < 0)
                return -1;
            continue;
        }
        if (r->kind->retires_dropped)
            otr_buf_printf(&why, "retired %s (an older revision's), and --prune deletes it",
                           r->retired_at ? r->retired_at : "");
        else if (r->last_error)
            otr_buf_printf(&why, "retired %s; its last delete was refused: %s",
                           r->retired_at ? r->retired_at : "", r->last_error);
        int rc = otr_buf_failed(&why)
                     ? -1
                     : plan_retired_delete(b, r->kind, r->name, r->id, why.len ? why.ptr : NULL);
        otr_buf_free(&why);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* A replace or delete of what a resumed create of the same plan makes (the
 * service not asked, or a reference that moved): its status cannot be
 * known, which the --allow-cancel guard holds to. */
static void mark_after_resume(otr_plan *p, size_t nresumes)
{
    for (size_t i = 0; i < nresumes; i++) {
        const otr_action *r = &p->actions[i];
        if (r->resume_op != OTR_OP_CREATE || r->retired)
            continue;
        for (size_t j = nresumes; j < p->count; j++) {
            otr_action *a = &p->actions[j];
            a->after_resume |= a->resource == r->resource && !strcmp(a->name, r->name) &&
                               !a->retired &&
                               (a->kind == OTR_ACT_REPLACE || a->kind == OTR_ACT_DELETE);
        }
    }
}

/* The renames the manifests ask for (plan/moves.c), done in the plan's view
 * of the state (a copy) so that each record is planned under its new name. */
static int plan_moves(builder *b, otr_state *state, const otr_manifest_set *set)
{
    otr_plan *p = b->p;
    if (otr_plan_find_moves(p, b->view, state, set, &b->refusals) < 0)
        return -1;
    if (p->nmoves && b->view == state && !(b->view = otr_state_copy_records(state)))
        return -1;
    for (size_t i = 0; i < p->nmoves; i++)
        if (otr_state_rename(b->view, p->moves[i].kind, p->moves[i].from, p->moves[i].to) < 0)
            return -1;
    return 0;
}

int otr_plan_make(otr_plan **out, otr_state *state, otr_manifest_set *set,
                  const otr_plan_options *o, otr_error *err)
{
    otr_plan *p = calloc(1, sizeof(*p));
    builder b = {.p = p, .o = o, .set = set};
    int rc = -1;
    *out = NULL;
    if (!p)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    memcpy(p->lineage, state->lineage, sizeof(p->lineage));
    p->serial = state->serial;
    p->journal_entries = state->journal_entries;
    p->manifests = (long)set->count;
    p->repo = dup_or_null(o->repo);
    p->ref = dup_or_null(o->ref);
    p->commit = dup_or_null(o->commit);
    p->path = dup_or_null(o->path);
    p->signed_by = o->signed_by ? cJSON_Duplicate(o->signed_by, 1) : NULL;
    /* one action at most per manifest, record, retired resource and resume: sized
     * once (doubling a 100k plan's array would hold a third of it empty) */
    b.alloc = set->count + state->count + state->nretired + state->npending + 1;
    p->actions = malloc(b.alloc * sizeof(*p->actions));
    if (!p->actions)
        b.alloc = 0;
    /* the records are copied only when resumes will move them (a 100k state
     * is not held twice) */
    b.view = state->npending ? otr_state_copy_records(state) : state;
    if (!b.view || plan_moves(&b, state, set) < 0 || plan_resumes(&b, state) < 0 ||
        plan_names(&b, set) < 0 || hold_used(&b) < 0 || plan_retired(&b) < 0) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        otr_plan_free(p);
        goto done;
    }
    if (b.refusals.len) {
        otr_error_set(err, OTR_ERR_INVALID, "%s", otr_buf_cstr(&b.refusals));
        otr_plan_free(p);
        goto done;
    }
    mark_after_resume(p, b.nresumes);
    if (p->nnotes > 1)
        qsort(p->notes, p->nnotes, sizeof(*p->notes), otr_plan_key_cmp);
    if (otr_plan_order(p, set) < 0) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        otr_plan_free(p);
        goto done;
    }
    *out = p;
    rc = 0;
done:
    otr_buf_free(&b.refusals);
    free(b.recorded);
    if (b.view != state)
        otr_state_free(b.view);
    return rc;
}

void otr_plan_free(otr_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++) {
        otr_action *a = &p->actions[i];
        free(a->name);
        free(a->reason);
        otr_record_clear(&a->old);
        otr_record_clear(&a->desired);
        otr_changes_free(a->changes, a->nchanges);
        free(a->deps);
    }
    free(p->actions);
    for (size_t i = 0; i < p->nwords; i++)
        free(p->words[i]);
    free(p->words);
    for (size_t i = 0; i < p->nrewrites; i++)
        otr_record_clear(&p->rewrites[i].rec);
    free(p->rewrites);
    for (size_t i = 0; i < p->ndetails; i++) {
        free(p->details[i].name);
        cJSON_Delete(p->details[i].view);
    }
    free(p->details);
    for (size_t i = 0; i < p->ndropped; i++)
        otr_intent_clear(&p->dropped[i]);
    free(p->dropped);
    for (size_t i = 0; i < p->nmoves; i++) {
        free(p->moves[i].from);
        free(p->moves[i].to);
    }
    free(p->moves);
    for (size_t i = 0; i < p->nnotes; i++)
        free(p->notes[i]);
    free(p->notes);
    free(p->repo);
    free(p->ref);
    free(p->commit);
    free(p->path);
    cJSON_Delete(p->signed_by);
    free(p);
}
