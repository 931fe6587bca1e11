/* Desired vs recorded (vs remote) -> actions and their order, for every kind
 * from its description; and the plan's JSON. */
#include "plan/plan.h"
#include "kinds/tags.h"

#include "manifest/token.h"
#include "state/internal.h"
#include "util/buf.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[OTR_ACT_KINDS] = {"resume", "delete", "replace", "update",
                                                      "create", "orphan", "noop"};

const char *otr_action_kind_name(otr_action_kind k)
{
    return kind_names[k];
}

size_t otr_plan_changes(const otr_plan *p)
{
    return p->counts[OTR_ACT_RESUME] + p->counts[OTR_ACT_DELETE] + p->counts[OTR_ACT_REPLACE] +
           p->counts[OTR_ACT_UPDATE] + p->counts[OTR_ACT_CREATE];
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int otr_record_take_manifest(otr_record *r, otr_manifest *m, const char *commit)
{
    char *spec = m->spec_json;
    m->spec_json = NULL;
    int rc = otr_record_from_manifest(r, m, commit);
    free(r->spec_json);
    r->spec_json = spec;
    return rc;
}

int otr_record_from_manifest(otr_record *r, const otr_manifest *m, const char *commit)
{
    memset(r, 0, sizeof(*r));
    r->kind = m->kind;
    r->name = strdup(m->name);
    r->phase = strdup("created");
    r->client_token = strdup(m->client_token);
    r->revision = m->revision;
    r->spec_json = dup_or_null(m->spec_json);
    r->spec_digest = strdup(m->spec_digest);
    r->file = strdup(m->file);
    r->commit = dup_or_null(commit);
    return r->name && r->phase && r->client_token && (r->spec_json || !m->spec_json) &&
                   r->spec_digest && r->file && (r->commit || !commit)
               ? 0
               : -1;
}

const char *otr_action_replaces(const otr_action *a)
{
    return a->kind == OTR_ACT_REPLACE && a->resource->replace_order == OTR_REPLACE_CREATE_FIRST
               ? a->old.id
               : NULL;
}

const char *otr_action_cancels(const otr_action *a)
{
    const char *st = a->old.remote_status;
    int deletes =
        a->kind == OTR_ACT_DELETE ||
        (a->kind == OTR_ACT_REPLACE && a->resource->replace_order == OTR_REPLACE_DELETE_FIRST);
    if (!deletes || a->retired || !a->old.id || !a->resource->running)
        return NULL;
    if (!st) /* never seen (made since the last refresh, and --refresh none): may be running */
        return OTR_STATUS_UNKNOWN;
    return otr_kind_running(a->resource, st) ? st : NULL;
}

int otr_action_deletes_task(const otr_action *a)
{
    return a->resource->guarded_deletes && !a->retired &&
           (a->kind == OTR_ACT_DELETE || a->kind == OTR_ACT_REPLACE);
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

static otr_action *add_action(builder *b, otr_action_kind kind, const otr_kind *resource,
                              const char *name)
{
    otr_plan *p = b->p;
    if (p->count == b->alloc) {
        size_t n = b->alloc ? b->alloc * 2 : 64;
        otr_action *a = realloc(p->actions, n * sizeof(*a));
        if (!a)
            return NULL;
        p->actions = a;
        b->alloc = n;
    }
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
    if (p->nnotes == b->nalloc) {
        size_t n = b->nalloc ? b->nalloc * 2 : 8;
        char **x = realloc(p->notes, n * sizeof(*x));
        if (!x)
            return -1;
        p->notes = x;
        b->nalloc = n;
    }
    if (!(p->notes[p->nnotes] = strdup(otr_buf_cstr(text))))
        return -1;
    p->nnotes++;
    return 0;
}

int otr_plan_add_notes(otr_plan *p, const char *text)
{
    for (const char *line = text; line && *line;) {
        size_t len = strcspn(line, "\n");
        char **x = realloc(p->notes, (p->nnotes + 1) * sizeof(*x));
        if (!x)
            return -1;
        p->notes = x;
        if (len && !(p->notes[p->nnotes++] = strndup(line, len)))
            return -1;
        line += len + (line[len] == '\n');
    }
    return 0;
}

/* Takes rec (left empty) into the plan's rewrites. */
static int push_rewrite(otr_plan *p, size_t *alloc, otr_record *rec)
{
    if (p->nrewrites == *alloc) {
        size_t n = *alloc ? *alloc * 2 : 8;
        otr_rewrite *x = realloc(p->rewrites, n * sizeof(*x));
        if (!x)
            return -1;
        p->rewrites = x;
        *alloc = n;
    }
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
    if (!w.file || !w.spec_digest || (commit && !w.commit) || push_rewrite(p, alloc, &w) < 0) {
        otr_record_clear(&w);
        return -1;
    }
    return 0;
}

static int add_detail(otr_plan *p, const otr_kind *k, const char *name, cJSON *view)
{
    otr_detail *x = realloc(p->details, (p->ndetails + 1) * sizeof(*x));
    if (!x)
        return -1;
    p->details = x;
    x[p->ndetails].kind = k;
    x[p->ndetails].view = view;
    if (!(x[p->ndetails].name = strdup(name)))
        return -1;
    p->ndetails++;
    return 0;
}

static int add_change(otr_action *a, const char *field, const cJSON *old_v, const cJSON *new_v)
{
    otr_change *c = realloc(a->changes, (a->nchanges + 1) * sizeof(*c));
    if (!c)
        return -1;
    a->changes = c;
    c[a->nchanges].field = strdup(field);
    c[a->nchanges].old_value = old_v ? cJSON_Duplicate(old_v, 1) : NULL;
    c[a->nchanges].new_value = new_v ? cJSON_Duplicate(new_v, 1) : NULL;
    a->nchanges++;
    return c[a->nchanges - 1].field ? 0 : -1;
}

static void free_changes(otr_change *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].field);
        cJSON_Delete(c[i].old_value);
        cJSON_Delete(c[i].new_value);
    }
    free(c);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The differences between two values at path, appended to a: objects
 * member by member (so a change deep in a configuration is named where it
 * is), anything else whole. -1 without memory. */
static int diff_value(otr_action *a, otr_buf *path, const cJSON *o, const cJSON *w)
{
    if (o && w && cJSON_Compare(o, w, 1))
        return 0;
    if (!cJSON_IsObject(o) || !cJSON_IsObject(w))
        return otr_buf_failed(path) ? -1 : add_change(a, path->ptr, o, w);
    const char *keys[64];
    size_t n = 0, base = path->len;
    const cJSON *c;
    cJSON_ArrayForEach(c, o) if (n < 64) keys[n++] = c->string;
    cJSON_ArrayForEach(c, w)
    {
        if (n < 64 && !cJSON_GetObjectItemCaseSensitive(o, c->string))
            keys[n++] = c->string;
    }
    qsort(keys, n, sizeof(*keys), key_cmp);
    for (size_t i = 0; i < n; i++) {
        otr_buf_printf(path, ".%s", keys[i]);
        int rc = diff_value(a, path, cJSON_GetObjectItemCaseSensitive(o, keys[i]),
                            cJSON_GetObjectItemCaseSensitive(w, keys[i]));
        path->len = base;
        path->ptr[base] = '\0';
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Field-level differences between two specs, appended to a (nested objects
 * down to the member that changed). Returns 1 when the kind can make every
 * difference in place (judged by the top-level field), 0 when not, -1
 * without memory. */
static int diff_specs(otr_action *a, const otr_kind *k, const cJSON *old_spec,
                      const cJSON *new_spec)
{
    const char *keys[64];
    size_t n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, old_spec) if (n < 64) keys[n++] = c->string;
    cJSON_ArrayForEach(c, new_spec)
    {
        if (n < 64 && !cJSON_GetObjectItemCaseSensitive(old_spec, c->string))
            keys[n++] = c->string;
    }
    qsort(keys, n, sizeof(*keys), key_cmp);
    int updatable = 1;
    for (size_t i = 0; i < n; i++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(old_spec, keys[i]);
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(new_spec, keys[i]);
        if (o && w && cJSON_Compare(o, w, 1))
            continue;
        otr_buf path = OTR_BUF_INIT;
        otr_buf_puts(&path, keys[i]);
        int rc = diff_value(a, &path, o, w);
        otr_buf_free(&path);
        if (rc < 0)
            return -1;
        /* an update sets a field; it cannot unset one (but for tags, which
         * are removed in place) */
        if (!otr_kind_updatable(k, keys[i]) ||
            (!w && !(k->tag_call && k->tags_key && !strcmp(keys[i], k->tags_key))))
            updatable = 0;
    }
    return updatable;
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

/* --refresh full: what the service holds vs the manifest (want; had is the
 * record's spec). Adds the drifted
 * fields to probe and their names to why; returns 1 when there is drift
 * (*updatable says whether the kind can mend it in place), 0 when none, -1
 * without memory. */
static int plan_drift(otr_action *probe, const otr_record *rec, const cJSON *had,
                      const cJSON *want_spec, const cJSON *fields, int *updatable, otr_buf *why)
{
    otr_action drift = {0};
    cJSON *live = cJSON_CreateObject(), *want = cJSON_Duplicate(want_spec, 1);
    const cJSON *f;
    int rc = -1;
    if (!live || !want)
        goto done;
    cJSON_ArrayForEach(f, had)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, f->string);
        if (v)
            cJSON_AddItemToObject(live, f->string, cJSON_Duplicate(v, 1));
        else /* a field the answer leaves out is not known to differ */
            cJSON_DeleteItemFromObjectCaseSensitive(want, f->string);
    }
    cJSON_ArrayForEach(f, fields)
    {
        if (!cJSON_GetObjectItemCaseSensitive(live, f->string) &&
            !cJSON_GetObjectItemCaseSensitive(want, f->string) &&
            otr_kind_updatable(rec->kind, f->string))
            cJSON_AddItemToObject(live, f->string, cJSON_Duplicate(f, 1));
    }
    const otr_kind *sent = rec->kind->body_kind ? rec->kind->body_kind : rec->kind;
    if (sent->tags_key) /* ota-runner's own tags are not drift */
        otr_tags_strip(live, sent->tags_key);
    if (otr_spec_normalise(live) < 0 || otr_spec_normalise(want) < 0)
        goto done;
    int up = diff_specs(&drift, rec->kind, live, want);
    if (up < 0)
        goto done;
    *updatable = up;
    if (drift.nchanges) {
        otr_buf_printf(why, "drift: the service's %s differs from the manifest in",
                       rec->kind->noun);
        for (size_t i = 0; i < drift.nchanges; i++) {
            otr_buf_printf(why, "%s %s", i ? "," : "", drift.changes[i].field);
            if (add_change(probe, drift.changes[i].field, drift.changes[i].old_value,
                           drift.changes[i].new_value) < 0)
                goto done;
        }
    }
    rc = drift.nchanges > 0;
done:
    free_changes(drift.changes, drift.nchanges);
    cJSON_Delete(live);
    cJSON_Delete(want);
    return rc;
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
                 const otr_remote_item *remote, otr_action *probe, otr_buf *why)
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
        int up = diff_specs(probe, k, had, want);
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
        int drifted = plan_drift(probe, rec, had, want, remote->fields, &updatable, why);
        if (drifted < 0)
            goto done;
        if (drifted)
            kind = updatable ? OTR_ACT_UPDATE : OTR_ACT_REPLACE;
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
    int rc = -1;
    int kind = judge(b, rec, m, remote, &probe, &why);
    if (kind < 0)
        goto done;
    if (kind == OTR_ACT_NOOP) {
        rc = plan_noop(b, rec, m);
        goto done;
    }
    otr_action *a = add_action(b, (otr_action_kind)kind, m->kind, m->name);
    if (!a)
        goto done;
    a->line = m->line;
    a->changes = probe.changes;
    a->nchanges = probe.nchanges;
    probe.changes = NULL;
    probe.nchanges = 0;
    if (why.len && !(a->reason = otr_buf_detach(&why)))
        goto done;
    if (keep_old(a, rec, remote) < 0 || otr_record_take_manifest(&a->desired, m, b->o->commit) < 0)
        goto done;
    rc = 0;
done:
    free_changes(probe.changes, probe.nchanges);
    otr_buf_free(&why);
    return rc;
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
    kp.kind = OTR_ACT_NOOP;
    if ((m && !spec) || (rec && !rec_spec) || k->plan(&kp) < 0 || otr_buf_failed(&kp.reason))
        goto done;
    if (kp.view && add_detail(b->p, k, name, kp.view) == 0)
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
        rc = kp.rewrite && !resuming(b, k, name) ? push_rewrite(b->p, &b->ralloc, &kp.desired) : 0;
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
    if (k->plan) {
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
    otr_buf_printf(&note,
                   ": the delete of %s%s %s an interrupted run left unfinished is not finished: "
                   "%s; this plan judges it anew",
                   in->retired ? "the retired " : "", in->rec.kind->noun,
                   in->rec.id ? in->rec.id : "?",
                   there > 0 ? "it is still in the service" : "the service was not asked");
    int rc = add_note(b, &note);
    otr_buf_free(&note);
    return rc;
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
        int there = in->op == OTR_OP_DELETE ? still_there(b, in) : 0;
        if (there) {
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
        if (otr_state_add_pending(b->view, in) < 0 ||
            otr_state_settle(b->view, in, &in->rec, 1, 0, NULL) < 0)
            return -1;
    }
    b->nresumes = b->p->count;
    return 0;
}

/* A copy of the records and retired resources, for plan_resumes to project. */
static otr_state *copy_view(const otr_state *state)
{
    otr_state *view = otr_state_new(state->path);
    for (size_t i = 0; view && i < state->count; i++)
        if (otr_state_put(view, &state->records[i]) < 0)
            goto fail;
    for (size_t i = 0; view && i < state->nretired; i++) {
        const otr_retired *r = &state->retired[i];
        if (otr_state_retire(view, r->kind, r->name, r->id, r->retired_at, r->last_error) < 0)
            goto fail;
    }
    return view;
fail:
    otr_state_free(view);
    return NULL;
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
                !is_recorded(b, it->id)) {
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
        if (r->last_error)
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

/* ---- order ------------------------------------------------------------------- */

static int action_cmp(const void *x, const void *y)
{
    const otr_action *a = x, *b = y;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    size_t ka = otr_kind_index(a->resource), kb = otr_kind_index(b->resource);
    if (ka != kb)
        return ka < kb ? -1 : 1;
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    return a->retired - b->retired;
}

static int add_dep(otr_action *a, size_t on)
{
    for (size_t i = 0; i < a->ndeps; i++)
        if (a->deps[i] == on)
            return 0;
    size_t *d = realloc(a->deps, (a->ndeps + 1) * sizeof(*d));
    if (!d)
        return -1;
    a->deps = d;
    a->deps[a->ndeps++] = on;
    return 0;
}

static int creates(const otr_action *a)
{
    return (a->kind == OTR_ACT_CREATE || a->kind == OTR_ACT_REPLACE ||
            (a->kind == OTR_ACT_RESUME && a->resume_op == OTR_OP_CREATE)) &&
           !a->retired;
}

/* The name action a's reference f gives (free it), or NULL: read when its
 * manifest was (set, when there is one: no parse of each spec again), else
 * from its spec. */
static char *ref_target(const otr_manifest_set *set, const otr_action *a, size_t f)
{
    const char *field = a->resource->refs[f].field;
    int from_manifest =
        a->kind == OTR_ACT_CREATE || a->kind == OTR_ACT_REPLACE || a->kind == OTR_ACT_UPDATE;
    const otr_manifest *m =
        set && from_manifest ? otr_manifest_set_find(set, a->resource, a->name) : NULL;
    if (!m)
        return otr_record_spec_string(&a->desired, field);
    for (size_t i = 0; i < m->nrefs; i++)
        if (!strcmp(m->refs[i].field, field))
            return strdup(m->refs[i].target);
    return NULL;
}

/* An action under a key: its address, or the id it refers to. */
typedef struct link_key {
    size_t kind;      /* otr_kind_index */
    const char *text; /* by_address: the action's name; by_ref: owned */
    size_t action;
} link_key;

static int link_key_cmp(const void *a, const void *b)
{
    const link_key *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->text, y->text);
    return c ? c : (x->action > y->action) - (x->action < y->action);
}

/* The first key not before (kind, text). */
static size_t link_lower(const link_key *keys, size_t n, size_t kind, const char *text)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const link_key *k = &keys[mid];
        if (k->kind < kind || (k->kind == kind && strcmp(k->text, text) < 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Actions by address, and by the id each (moving away) refers to: the
 * lookups of link_actions, so that linking stays O(n log n). */
typedef struct link_index {
    link_key *by_address, *by_ref;
    size_t naddress, nref;
} link_index;

static int index_actions(const otr_plan *p, link_index *ix)
{
    size_t nrefs = 0;
    for (size_t i = 0; i < p->count; i++)
        nrefs += p->actions[i].resource->nrefs;
    ix->by_address = malloc((p->count + 1) * sizeof(*ix->by_address));
    ix->by_ref = malloc((nrefs + 1) * sizeof(*ix->by_ref));
    if (!ix->by_address || !ix->by_ref)
        return -1;
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *d = &p->actions[i];
        ix->by_address[ix->naddress++] = (link_key){otr_kind_index(d->resource), d->name, i};
        if (d->kind == OTR_ACT_NOOP || d->kind == OTR_ACT_ORPHAN || d->kind == OTR_ACT_CREATE)
            continue; /* moves_off: these do not move away from what they use */
        for (size_t f = 0; f < d->resource->nrefs; f++) {
            char *uses = otr_record_spec_string(&d->old, d->resource->refs[f].id_field);
            const otr_kind *target = otr_kind_find(d->resource->refs[f].kind);
            if (uses && target)
                ix->by_ref[ix->nref++] = (link_key){otr_kind_index(target), uses, i};
            else
                free(uses);
        }
    }
    qsort(ix->by_address, ix->naddress, sizeof(*ix->by_address), link_key_cmp);
    if (ix->nref)
        qsort(ix->by_ref, ix->nref, sizeof(*ix->by_ref), link_key_cmp);
    return 0;
}

static int dep_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* The edges of action i (see link_actions). */
static int link_one(otr_plan *p, const otr_manifest_set *set, const link_index *ix, size_t i)
{
    otr_action *a = &p->actions[i];
    /* a reference to something (re)created in this run */
    for (size_t f = 0; f < a->resource->nrefs; f++) {
        char *target = ref_target(set, a, f);
        const otr_kind *tk = otr_kind_find(a->resource->refs[f].kind);
        size_t k = tk ? otr_kind_index(tk) : 0;
        for (size_t j = target && tk ? link_lower(ix->by_address, ix->naddress, k, target)
                                     : ix->naddress;
             j < ix->naddress && ix->by_address[j].kind == k &&
             !strcmp(ix->by_address[j].text, target);
             j++) {
            size_t d = ix->by_address[j].action;
            if (d != i && creates(&p->actions[d]) && add_dep(a, d) < 0) {
                free(target);
                return -1;
            }
        }
        free(target);
    }
    if (a->kind != OTR_ACT_DELETE)
        return 0;
    /* a delete waits for those that used the resource to move away */
    size_t k = otr_kind_index(a->resource);
    for (size_t j = a->old.id ? link_lower(ix->by_ref, ix->nref, k, a->old.id) : ix->nref;
         j < ix->nref && ix->by_ref[j].kind == k && !strcmp(ix->by_ref[j].text, a->old.id); j++)
        if (ix->by_ref[j].action != i && add_dep(a, ix->by_ref[j].action) < 0)
            return -1;
    /* a retired delete waits for the replace that retires it */
    for (size_t j = a->retired && a->old.id ? link_lower(ix->by_address, ix->naddress, k, a->name)
                                            : ix->naddress;
         j < ix->naddress && ix->by_address[j].kind == k &&
         !strcmp(ix->by_address[j].text, a->name);
         j++) {
        const otr_action *d = &p->actions[ix->by_address[j].action];
        if (d->kind == OTR_ACT_REPLACE && otr_action_replaces(d) &&
            !strcmp(otr_action_replaces(d), a->old.id) && add_dep(a, ix->by_address[j].action) < 0)
            return -1;
    }
    return 0;
}

/* Links each action to those it waits for: what it refers to is created
 * first; what referred to a resource moves away before it is deleted; a
 * retired resource is deleted after the replace that retires it. Deps are
 * in plan order. */
static int link_actions(otr_plan *p, const otr_manifest_set *set)
{
    link_index ix = {NULL, NULL, 0, 0};
    int rc = index_actions(p, &ix);
    for (size_t i = 0; rc == 0 && i < p->count; i++) {
        rc = link_one(p, set, &ix, i);
        if (p->actions[i].ndeps > 1)
            qsort(p->actions[i].deps, p->actions[i].ndeps, sizeof(size_t), dep_cmp);
    }
    free(ix.by_address);
    for (size_t i = 0; i < ix.nref; i++)
        free((char *)ix.by_ref[i].text);
    free(ix.by_ref);
    return rc;
}

/* A new tree of the spec of the manifest kind/name: in the set, or (taken
 * by the plan) in its action; or NULL. */
static cJSON *spec_named(const otr_plan *p, const otr_manifest_set *set, const otr_kind *kind,
                         const char *name)
{
    const otr_manifest *m = otr_manifest_set_find(set, kind, name);
    if (m && m->spec_json)
        return otr_manifest_spec(m);
    for (size_t i = 0; i < p->count; i++) /* (a retired one's delete has no spec) */
        if (p->actions[i].resource == kind && p->actions[i].desired.spec_json &&
            !strcmp(p->actions[i].name, name))
            return otr_record_spec(&p->actions[i].desired);
    return NULL;
}

/* What references name, described once each: a fleet's tasks name few
 * configurations. */
#define DESCRIBED_REFS_KEPT 16
typedef struct described_ref {
    const otr_kind *kind;
    char *name;
    char *text;
} described_ref;

/* The words for kind/name (kept, or made and kept), or NULL. */
static const char *ref_words(const otr_plan *p, const otr_manifest_set *set, const otr_kind *k,
                             const char *name, described_ref *kept, size_t *nkept)
{
    for (size_t i = 0; i < *nkept; i++)
        if (kept[i].kind == k && !strcmp(kept[i].name, name))
            return kept[i].text;
    cJSON *spec = k->describe ? spec_named(p, set, k, name) : NULL;
    otr_buf text = OTR_BUF_INIT;
    if (!spec)
        return NULL;
    k->describe(spec, NULL, &text);
    cJSON_Delete(spec);
    if (*nkept == DESCRIBED_REFS_KEPT) { /* the oldest goes */
        free(kept[0].name);
        free(kept[0].text);
        memmove(kept, kept + 1, (DESCRIBED_REFS_KEPT - 1) * sizeof(*kept));
        (*nkept)--;
    }
    kept[*nkept] = (described_ref){k, strdup(name), otr_buf_detach(&text)};
    if (!kept[*nkept].name || !kept[*nkept].text) {
        free(kept[*nkept].name);
        free(kept[*nkept].text);
        return NULL;
    }
    return kept[(*nkept)++].text;
}

/* For each create and replace: what its references name, in the named
 * kind's words (kind->describe), for a reviewer. */
static int describe_refs(otr_plan *p, const otr_manifest_set *set)
{
    described_ref kept[DESCRIBED_REFS_KEPT];
    size_t nkept = 0;
    int rc = 0;
    for (size_t i = 0; i < p->count && rc == 0; i++) {
        otr_action *a = &p->actions[i];
        otr_buf text = OTR_BUF_INIT;
        if ((a->kind != OTR_ACT_CREATE && a->kind != OTR_ACT_REPLACE) || !a->desired.spec_json)
            continue;
        for (size_t r = 0; r < a->resource->nrefs; r++) {
            const otr_kind_ref *ref = &a->resource->refs[r];
            const otr_kind *k = otr_kind_find(ref->kind);
            char *name = ref_target(set, a, r);
            const char *words = k && name ? ref_words(p, set, k, name, kept, &nkept) : NULL;
            free(name);
            if (words && text.len)
                otr_buf_puts(&text, "; ");
            if (words)
                otr_buf_puts(&text, words);
        }
        if (otr_buf_failed(&text))
            rc = -1;
        a->refs_text = text.len ? otr_buf_detach(&text) : NULL;
        otr_buf_free(&text);
    }
    for (size_t i = 0; i < nkept; i++) {
        free(kept[i].name);
        free(kept[i].text);
    }
    return rc;
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
    b.view = state->npending ? copy_view(state) : state;
    if (!b.view || plan_resumes(&b, state) < 0 || plan_names(&b, set) < 0 || hold_used(&b) < 0 ||
        plan_retired(&b) < 0) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        otr_plan_free(p);
        goto done;
    }
    if (b.refusals.len) {
        otr_error_set(err, OTR_ERR_INVALID, "%s", otr_buf_cstr(&b.refusals));
        otr_plan_free(p);
        goto done;
    }
    if (p->count > 1)
        qsort(p->actions, p->count, sizeof(*p->actions), action_cmp);
    if (p->nnotes > 1)
        qsort(p->notes, p->nnotes, sizeof(*p->notes), key_cmp);
    if (link_actions(p, set) < 0 || describe_refs(p, set) < 0) {
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

/* ---- guards ---------------------------------------------------------------------- */

size_t otr_plan_check_guards(const otr_plan *p, const otr_plan_guards *g, otr_buf *out)
{
    size_t tripped = 0, deletes = 0, pruned = 0, replaced = 0;
    for (size_t i = 0; i < p->count; i++)
        if (otr_action_deletes_task(&p->actions[i])) {
            deletes++;
            pruned += p->actions[i].kind == OTR_ACT_DELETE;
            replaced += p->actions[i].kind == OTR_ACT_REPLACE;
        }
    if (g->max_deletes >= 0 && deletes > (size_t)g->max_deletes) {
        tripped++;
        otr_buf_printf(out,
                       "this plan would delete %zu task%s (%zu pruned, %zu replaced) and "
                       "--max-deletes is %d; look at the plan, then raise --max-deletes to go "
                       "ahead\n",
                       deletes, deletes == 1 ? "" : "s", pruned, replaced, g->max_deletes);
    }
    if (!g->allow_cancel) {
        size_t n = 0, shown = 0;
        for (size_t i = 0; i < p->count; i++)
            n += otr_action_cancels(&p->actions[i]) != NULL;
        if (n) {
            tripped++;
            otr_buf_printf(out,
                           "this plan would delete %zu running task%s, cancelling their "
                           "devices' executions:",
                           n, n == 1 ? "" : "s");
            for (size_t i = 0; i < p->count; i++) {
                const otr_action *a = &p->actions[i];
                if (!otr_action_cancels(a))
                    continue;
                otr_buf_puts(out, shown++ ? ", " : " ");
                otr_address_short(out, a->resource, a->name);
                otr_buf_printf(out, " (%s %s %s, %s)", otr_action_kind_name(a->kind),
                               a->resource->noun, a->old.id, a->old.remote_status);
            }
            otr_buf_puts(out, "; give --allow-cancel to go ahead\n");
        }
    }
    size_t prunes = p->counts[OTR_ACT_DELETE] - p->retired_deletes;
    if (!g->allow_empty && p->manifests == 0 && prunes) {
        tripped++;
        otr_buf_printf(out,
                       "no manifest was found under %s at %.12s, and --prune would delete every "
                       "recorded resource (%zu); check --path and --ref, or give --allow-empty "
                       "if the fleet is really to go\n",
                       p->path ? p->path : "manifests", p->commit ? p->commit : "?", prunes);
    }
    return tripped;
}

/* ---- JSON ------------------------------------------------------------------------ */

static cJSON *record_json(otr_jb *b, const otr_record *r)
{
    if (!r->name)
        return cJSON_CreateNull();
    cJSON *o = otr_record_to_json(r);
    otr_jb_str(b, o, "name", r->name);
    return o;
}

static void add_address(otr_jb *b, cJSON *o, const char *key, const otr_kind *k, const char *name)
{
    otr_buf a = OTR_BUF_INIT;
    otr_address_full(&a, k, name);
    otr_jb_str(b, o, key, otr_buf_failed(&a) ? NULL : otr_buf_cstr(&a));
    if (otr_buf_failed(&a))
        b->failed = 1;
    otr_buf_free(&a);
}

static cJSON *changes_json(otr_jb *b, const otr_action *a)
{
    cJSON *changes = cJSON_CreateArray();
    for (size_t c = 0; c < a->nchanges; c++) {
        cJSON *ch = cJSON_CreateObject();
        otr_jb_str(b, ch, "field", a->changes[c].field);
        otr_jb_add(b, ch, "old",
                   a->changes[c].old_value ? cJSON_Duplicate(a->changes[c].old_value, 1)
                                           : cJSON_CreateNull());
        otr_jb_add(b, ch, "new",
                   a->changes[c].new_value ? cJSON_Duplicate(a->changes[c].new_value, 1)
                                           : cJSON_CreateNull());
        otr_jb_add(b, changes, NULL, ch);
    }
    return changes;
}

static cJSON *action_json(otr_jb *b, const otr_plan *p, const otr_action *a)
{
    cJSON *o = cJSON_CreateObject();
    otr_jb_str(b, o, "kind", kind_names[a->kind]);
    otr_jb_str(b, o, "name", a->name);
    otr_jb_str(b, o, "resource", a->resource->name);
    add_address(b, o, "address", a->resource, a->name);
    if (a->kind == OTR_ACT_RESUME)
        otr_jb_str(b, o, "resumeOp", otr_op_name(a->resume_op));
    if (a->retired)
        otr_jb_bool(b, o, "retired", 1);
    if (a->reason)
        otr_jb_str(b, o, "reason", a->reason);
    const char *file = a->desired.file ? a->desired.file : a->old.file;
    if (file)
        otr_jb_str(b, o, "file", file);
    if (a->line)
        otr_jb_num(b, o, "line", a->line);
    if (a->desired.client_token)
        otr_jb_str(b, o, "clientToken", a->desired.client_token);
    if (a->old.id)
        otr_jb_str(b, o, a->resource->id_key, a->old.id);
    if (otr_action_cancels(a))
        otr_jb_str(b, o, "cancelsRunning", otr_action_cancels(a));
    if (otr_action_replaces(a))
        otr_jb_str(b, o, "retires", otr_action_replaces(a));
    cJSON *deps = otr_jb_array(b, o, "dependsOn");
    for (size_t d = 0; d < a->ndeps; d++) {
        const otr_action *on = &p->actions[a->deps[d]];
        otr_buf dep = OTR_BUF_INIT;
        otr_buf_printf(&dep, "%s %s/%s", kind_names[on->kind], on->resource->name, on->name);
        otr_jb_add(b, deps, NULL, otr_buf_failed(&dep) ? NULL : cJSON_CreateString(dep.ptr));
        otr_buf_free(&dep);
    }
    otr_jb_add(b, o, "changes", changes_json(b, a));
    otr_jb_add(b, o, "old", record_json(b, &a->old));
    otr_jb_add(b, o, "new", record_json(b, &a->desired));
    return o;
}

static cJSON *plan_json(otr_jb *b, const otr_plan *p)
{
    cJSON *root = cJSON_CreateObject();
    otr_jb_num(b, root, "formatVersion", OTR_PLAN_FORMAT_VERSION);
    otr_jb_str(b, root, "lineage", p->lineage);
    otr_jb_num(b, root, "serial", (double)p->serial);
    otr_jb_num(b, root, "journalEntries", (double)p->journal_entries);
    if (p->manifests >= 0)
        otr_jb_num(b, root, "manifests", (double)p->manifests);
    cJSON *src = otr_jb_object(b, root, "source");
    if (p->repo)
        otr_jb_str(b, src, "repo", p->repo);
    if (p->ref)
        otr_jb_str(b, src, "ref", p->ref);
    if (p->commit)
        otr_jb_str(b, src, "commit", p->commit);
    if (p->path)
        otr_jb_str(b, src, "path", p->path);
    if (p->signed_by)
        otr_jb_add(b, src, "signedBy", cJSON_Duplicate(p->signed_by, 1));
    cJSON *sum = otr_jb_object(b, root, "summary");
    for (int k = 0; k < OTR_ACT_KINDS; k++)
        otr_jb_num(b, sum, kind_names[k], (double)p->counts[k]);
    otr_jb_num(b, sum, "changes", (double)otr_plan_changes(p));
    otr_jb_num(b, sum, "retiredDeletes", (double)p->retired_deletes);
    otr_jb_num(b, sum, "adopted", (double)p->adopted);
    cJSON *actions = otr_jb_array(b, root, "actions");
    for (size_t i = 0; i < p->count; i++)
        if (p->actions[i].kind != OTR_ACT_NOOP)
            otr_jb_add(b, actions, NULL, action_json(b, p, &p->actions[i]));
    cJSON *notes = otr_jb_array(b, root, "notes");
    for (size_t i = 0; i < p->nnotes; i++)
        otr_jb_add(b, notes, NULL, cJSON_CreateString(p->notes[i]));
    cJSON *dropped = otr_jb_array(b, root, "dropped");
    for (size_t i = 0; i < p->ndropped; i++) {
        const otr_intent *d = &p->dropped[i];
        cJSON *x = cJSON_CreateObject();
        add_address(b, x, "address", d->rec.kind, d->rec.name);
        otr_jb_str(b, x, "op", otr_op_name(d->op));
        if (d->rec.id)
            otr_jb_str(b, x, "id", d->rec.id);
        otr_jb_bool(b, x, "retired", d->retired);
        otr_jb_add(b, dropped, NULL, x);
    }
    cJSON *rewrites = otr_jb_array(b, root, "rewrites");
    for (size_t i = 0; i < p->nrewrites; i++) {
        const otr_record *w = &p->rewrites[i].rec;
        cJSON *r = cJSON_CreateObject();
        add_address(b, r, "address", w->kind, w->name);
        otr_jb_add(b, r, "record", record_json(b, w));
        otr_jb_add(b, rewrites, NULL, r);
    }
    cJSON *details = otr_jb_array(b, root, "details");
    for (size_t i = 0; i < p->ndetails; i++) {
        cJSON *d = cJSON_Duplicate(p->details[i].view, 1);
        add_address(b, d, "address", p->details[i].kind, p->details[i].name);
        otr_jb_add(b, details, NULL, d);
    }
    return root;
}

cJSON *otr_action_changes_json(const otr_action *a)
{
    otr_jb b = OTR_JB_INIT;
    cJSON *c = changes_json(&b, a);
    if (b.failed) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

cJSON *otr_plan_to_json(const otr_plan *p)
{
    otr_jb b = OTR_JB_INIT;
    cJSON *root = plan_json(&b, p);
    if (!root || b.failed) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* A record of a saved plan ("old" or "new": null when there is none). */
static int record_back(otr_record *r, const otr_kind *k, const cJSON *j, int retired)
{
    memset(r, 0, sizeof(*r));
    if (!cJSON_IsObject(j))
        return 0;
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "name"));
    if (retired) { /* only its kind, name and id */
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, k->id_key));
        r->kind = k;
        r->name = dup_or_null(name);
        r->id = dup_or_null(id);
        return r->name && r->id ? 0 : -1;
    }
    cJSON *copy = cJSON_Duplicate(j, 1);
    otr_buf why = OTR_BUF_INIT;
    int rc = name && copy ? otr_record_from_json(r, k, name, copy, 1, &why) : -1;
    otr_buf_free(&why);
    cJSON_Delete(copy);
    return rc;
}

static int action_back(builder *b, const cJSON *a, otr_error *err)
{
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "kind"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "name"));
    const char *res = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "resource"));
    const otr_kind *rk = res ? otr_kind_find(res) : &otr_kind_ota_task;
    int k = 0;
    while (k < OTR_ACT_KINDS && (!kind || strcmp(kind_names[k], kind)))
        k++;
    if (k == OTR_ACT_KINDS || !name || !rk)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "the saved plan has an action without a known kind, resource and "
                             "name");
    otr_action *act = add_action(b, (otr_action_kind)k, rk, name);
    if (!act)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "resumeOp"));
    act->resume_op = op && !strcmp(op, "update")   ? OTR_OP_UPDATE
                     : op && !strcmp(op, "delete") ? OTR_OP_DELETE
                                                   : OTR_OP_CREATE;
    act->retired = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "retired"));
    if (act->retired && act->kind == OTR_ACT_DELETE)
        b->p->retired_deletes++;
    act->reason = dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "reason")));
    act->line = (unsigned)otr_json_integer_or(cJSON_GetObjectItemCaseSensitive(a, "line"), 0,
                                              1000000000LL, 0);
    if (record_back(&act->old, rk, cJSON_GetObjectItemCaseSensitive(a, "old"), act->retired) < 0 ||
        record_back(&act->desired, rk, cJSON_GetObjectItemCaseSensitive(a, "new"), 0) < 0)
        return otr_error_set(err, OTR_ERR_INVALID, "the saved plan has a damaged action (%s)",
                             name);
    return 0;
}

/* A dropped delete intent of a saved plan, back. */
static int dropped_back(otr_plan *p, const cJSON *r)
{
    const char *address = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "address"));
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "op"));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "id"));
    const otr_kind *k = NULL;
    const char *name;
    otr_buf why = OTR_BUF_INIT;
    int bad = !address || !op || strcmp(op, otr_op_name(OTR_OP_DELETE)) ||
              otr_address_parse(address, &k, &name, &why) < 0;
    otr_buf_free(&why);
    otr_intent *grown = bad ? NULL : realloc(p->dropped, (p->ndropped + 1) * sizeof(*grown));
    if (!grown)
        return -1;
    p->dropped = grown;
    otr_intent *d = &p->dropped[p->ndropped];
    memset(d, 0, sizeof(*d));
    d->op = OTR_OP_DELETE;
    d->retired = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "retired"));
    d->rec.kind = k;
    if (!(d->rec.name = strdup(name)) || (id && !(d->rec.id = strdup(id)))) {
        otr_intent_clear(d);
        return -1;
    }
    p->ndropped++;
    return 0;
}

int otr_plan_from_json(otr_plan **out, const cJSON *j, otr_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "formatVersion");
    const char *lineage = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "lineage"));
    long long serial, entries;
    const cJSON *actions = cJSON_GetObjectItemCaseSensitive(j, "actions");
    *out = NULL;
    if (!cJSON_IsNumber(v) || v->valuedouble != OTR_PLAN_FORMAT_VERSION || !lineage ||
        otr_json_integer(cJSON_GetObjectItemCaseSensitive(j, "serial"), 0, 1LL << 53, &serial) <
            0 ||
        otr_json_integer(cJSON_GetObjectItemCaseSensitive(j, "journalEntries"), 0, 1LL << 53,
                         &entries) < 0 ||
        !cJSON_IsArray(actions))
        return otr_error_set(err, OTR_ERR_INVALID,
                             "not a plan saved by this ota-runner (formatVersion %d)",
                             OTR_PLAN_FORMAT_VERSION);
    otr_plan *p = calloc(1, sizeof(*p));
    builder b = {.p = p};
    if (!p)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    snprintf(p->lineage, sizeof(p->lineage), "%s", lineage);
    p->serial = (long)serial;
    p->journal_entries = (size_t)entries;
    p->manifests = (long)otr_json_integer_or(cJSON_GetObjectItemCaseSensitive(j, "manifests"), 0,
                                             1LL << 40, -1);
    p->adopted = (size_t)otr_json_integer_or(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "summary"), "adopted"),
        0, 1LL << 40, 0);
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "source");
    p->repo = dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "repo")));
    p->ref = dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "ref")));
    p->commit = dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "commit")));
    p->path = dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "path")));
    const cJSON *signer = cJSON_GetObjectItemCaseSensitive(src, "signedBy");
    p->signed_by = cJSON_IsObject(signer) ? cJSON_Duplicate(signer, 1) : NULL;
    const cJSON *a;
    cJSON_ArrayForEach(a, actions)
    {
        if (action_back(&b, a, err) < 0) {
            otr_plan_free(p);
            return -1;
        }
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(j, "rewrites"))
    {
        const char *address = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "address"));
        const otr_kind *k = NULL;
        const char *name;
        otr_record rec;
        otr_buf why = OTR_BUF_INIT;
        int bad = !address || otr_address_parse(address, &k, &name, &why) < 0;
        otr_buf_free(&why);
        if (bad || record_back(&rec, k, cJSON_GetObjectItemCaseSensitive(r, "record"), 0) < 0 ||
            !rec.name || strcmp(rec.name, name) || push_rewrite(p, &b.ralloc, &rec) < 0) {
            if (!bad)
                otr_record_clear(&rec);
            otr_plan_free(p);
            return otr_error_set(err, OTR_ERR_INVALID, "the saved plan has a damaged rewrite");
        }
    }
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(j, "dropped"))
    {
        if (dropped_back(p, r) < 0) {
            otr_plan_free(p);
            return otr_error_set(err, OTR_ERR_INVALID,
                                 "the saved plan has a damaged dropped intent");
        }
    }
    if (link_actions(p, NULL) < 0) {
        otr_plan_free(p);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    *out = p;
    return 0;
}

void otr_plan_free(otr_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++) {
        otr_action *a = &p->actions[i];
        free(a->name);
        free(a->reason);
        free(a->refs_text);
        otr_record_clear(&a->old);
        otr_record_clear(&a->desired);
        free_changes(a->changes, a->nchanges);
        free(a->deps);
    }
    free(p->actions);
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
