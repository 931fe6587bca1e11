/* Desired vs recorded (vs remote) -> ordered actions; and the plan's JSON. */
#include "plan/plan.h"

#include "util/buf.h"
#include "util/json.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    cJSON *spec = m->spec;
    m->spec = NULL;
    int rc = otr_record_from_manifest(r, m, commit);
    cJSON_Delete(r->spec);
    r->spec = spec;
    return rc;
}

int otr_record_from_manifest(otr_record *r, const otr_manifest *m, const char *commit)
{
    memset(r, 0, sizeof(*r));
    r->name = strdup(m->name);
    r->phase = strdup("created");
    r->client_token = strdup(m->client_token);
    r->revision = m->revision;
    r->spec = m->spec ? cJSON_Duplicate(m->spec, 1) : NULL;
    r->spec_digest = strdup(m->spec_digest);
    r->file = strdup(m->file);
    r->commit = dup_or_null(commit);
    return r->name && r->phase && r->client_token && r->spec_digest && r->file ? 0 : -1;
}

/* ---- building ------------------------------------------------------------ */

typedef struct builder {
    otr_plan *p;
    const otr_plan_options *o;
    size_t alloc;
    size_t nalloc;
    size_t ralloc;
    const char **resumed; /* names with a resume action, sorted */
    size_t nresumed;
} builder;

static otr_action *add_action(builder *b, otr_action_kind kind, const char *name)
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
    a->name = strdup(name);
    if (!a->name)
        return NULL;
    p->count++;
    p->counts[kind]++;
    return a;
}

static int add_note(builder *b, const char *text)
{
    otr_plan *p = b->p;
    if (p->nnotes == b->nalloc) {
        size_t n = b->nalloc ? b->nalloc * 2 : 8;
        char **x = realloc(p->notes, n * sizeof(*x));
        if (!x)
            return -1;
        p->notes = x;
        b->nalloc = n;
    }
    if (!(p->notes[p->nnotes] = strdup(text)))
        return -1;
    p->nnotes++;
    return 0;
}

static int add_relocation(builder *b, const char *name, const char *file, const char *commit)
{
    otr_plan *p = b->p;
    if (p->nrelocations == b->ralloc) {
        size_t n = b->ralloc ? b->ralloc * 2 : 8;
        otr_relocation *x = realloc(p->relocations, n * sizeof(*x));
        if (!x)
            return -1;
        p->relocations = x;
        b->ralloc = n;
    }
    otr_relocation *r = &p->relocations[p->nrelocations];
    r->name = strdup(name);
    r->file = strdup(file);
    r->commit = dup_or_null(commit);
    p->nrelocations++;
    return r->name && r->file && (r->commit || !commit) ? 0 : -1;
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

/* The fields UpdateOtaTask sets; it cannot unset them. */
static int updatable_field(const char *field)
{
    return !strcmp(field, "Description") || !strcmp(field, "TaskConfigurationId");
}

/* Field-level differences between two specs (top-level members), appended
 * to a. Returns 1 when every difference can be made by UpdateOtaTask, 0 when
 * not, -1 without memory. */
static int diff_specs(otr_action *a, const cJSON *old_spec, const cJSON *new_spec)
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
        if (add_change(a, keys[i], o, w) < 0)
            return -1;
        if (!updatable_field(keys[i]) || !w)
            updatable = 0;
    }
    return updatable;
}

static const otr_remote_task *remote_find(const otr_remote_view *v, const char *task_id)
{
    size_t lo = 0, hi = v->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v->tasks[mid].task_id, task_id);
        if (c == 0)
            return &v->tasks[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int targeted(const otr_plan_options *o, const char *name)
{
    if (!o->targets)
        return 1;
    for (size_t i = 0; o->targets[i]; i++)
        if (!strcmp(o->targets[i], name))
            return 1;
    return 0;
}

static int manifest_cmp(const void *a, const void *b)
{
    const otr_manifest *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int resumed(const builder *b, const char *name)
{
    return b->nresumed &&
           bsearch(&name, b->resumed, b->nresumed, sizeof(*b->resumed), key_cmp) != NULL;
}

/* The recorded task as the action keeps it, with the status the refresh
 * saw (so the guards and the outputs judge by the newest word). */
static int keep_old(otr_action *a, const otr_record *rec, const otr_remote_task *remote)
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

/* A manifest with no task (or whose task the service no longer has). */
static int plan_create(builder *b, otr_manifest *m, const otr_record *rec, const char *reason)
{
    otr_action *a = add_action(b, OTR_ACT_CREATE, m->name);
    if (!a)
        return -1;
    a->line = m->line;
    if (reason && !(a->reason = strdup(reason)))
        return -1;
    if (rec && otr_record_copy(&a->old, rec) < 0)
        return -1;
    return otr_record_take_manifest(&a->desired, m, b->o->commit);
}

/* A recorded task whose manifest is gone: deleted with --prune, else orphaned. */
static int plan_gone(builder *b, const otr_record *rec, const otr_remote_task *remote)
{
    otr_action *a = add_action(b, b->o->prune ? OTR_ACT_DELETE : OTR_ACT_ORPHAN, rec->name);
    if (!a || keep_old(a, rec, remote) < 0)
        return -1;
    if (!b->o->prune &&
        !(a->reason = strdup("its manifest is gone; run with --prune to delete the task")))
        return -1;
    return 0;
}

/* --refresh full: what the service holds vs the manifest. Adds the drifted
 * fields to probe and their names to why; returns 1 when there is drift
 * (*updatable says whether UpdateOtaTask can mend it), 0 when none, -1
 * without memory. */
static int plan_drift(otr_action *probe, const otr_record *rec, const otr_manifest *m,
                      const cJSON *fields, int *updatable, otr_buf *why)
{
    otr_action drift = {0};
    cJSON *live = cJSON_CreateObject();
    const cJSON *f;
    int rc = -1;
    if (!live)
        return -1;
    cJSON_ArrayForEach(f, rec->spec)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, f->string);
        if (v)
            cJSON_AddItemToObject(live, f->string, cJSON_Duplicate(v, 1));
    }
    cJSON_ArrayForEach(f, fields)
    {
        if (!cJSON_GetObjectItemCaseSensitive(live, f->string) &&
            !cJSON_GetObjectItemCaseSensitive(m->spec, f->string) && updatable_field(f->string))
            cJSON_AddItemToObject(live, f->string, cJSON_Duplicate(f, 1));
    }
    int up = diff_specs(&drift, live, m->spec);
    if (up < 0)
        goto done;
    *updatable = up;
    if (drift.nchanges) {
        otr_buf_puts(why, "drift: the service's task differs from the manifest in");
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
    return rc;
}

/* A noop: nothing to carry out, so no copies (10k noops stay cheap), but a
 * manifest that moved to another file has it recorded. */
static int plan_noop(builder *b, const otr_record *rec, const otr_manifest *m)
{
    if (resumed(b, m->name))
        return 0; /* its resume is its action: not "unchanged" too */
    otr_action *a = add_action(b, OTR_ACT_NOOP, m->name);
    if (!a)
        return -1;
    a->line = m->line;
    if (!rec->file || !strcmp(rec->file, m->file))
        return 0;
    otr_buf note = OTR_BUF_INIT;
    otr_buf_printf(&note, "%s: its manifest moved from %s to %s; apply records that, without a call",
                   m->name, rec->file, m->file);
    int rc = otr_buf_failed(&note) || add_note(b, note.ptr) < 0 ||
                     add_relocation(b, m->name, m->file, b->o->commit) < 0
                 ? -1
                 : 0;
    otr_buf_free(&note);
    return rc;
}

/* A recorded task and the manifest that wants it. */
static int plan_existing(builder *b, const otr_record *rec, otr_manifest *m,
                         const otr_remote_task *remote)
{
    otr_action probe = {0};
    otr_buf why = OTR_BUF_INIT;
    otr_action_kind kind = OTR_ACT_NOOP;
    int rc = -1;
    int same_spec = rec->spec_digest && !strcmp(rec->spec_digest, m->spec_digest);
    int imported = rec->phase && !strcmp(rec->phase, "imported");
    if (!same_spec) {
        int up = diff_specs(&probe, rec->spec, m->spec);
        if (up < 0)
            goto done;
        kind = up ? OTR_ACT_UPDATE : OTR_ACT_REPLACE;
    }
    /* a new revision asks for a fresh ClientToken, so a new task, whatever
     * else changed (an imported task has no token of ours to renew) */
    if (!imported && rec->revision != m->revision) {
        kind = OTR_ACT_REPLACE;
        otr_buf_printf(&why, "metadata.revision %ld -> %ld: a fresh ClientToken, so a new task",
                       rec->revision, m->revision);
    }
    if (kind == OTR_ACT_NOOP && remote && remote->fields) {
        int updatable = 1;
        int drifted = plan_drift(&probe, rec, m, remote->fields, &updatable, &why);
        if (drifted < 0)
            goto done;
        if (drifted)
            kind = updatable ? OTR_ACT_UPDATE : OTR_ACT_REPLACE;
    }
    if (kind == OTR_ACT_NOOP) {
        rc = plan_noop(b, rec, m);
        goto done;
    }
    otr_action *a = add_action(b, kind, m->name);
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

/* One name: its recorded task (or none) and its manifest (or none). */
static int plan_name(builder *b, const otr_record *rec, otr_manifest *m)
{
    const otr_plan_options *o = b->o;
    const otr_remote_task *remote = NULL;
    if (m && !rec)
        return plan_create(b, m, NULL, NULL);
    if (o->remote && rec->task_id)
        remote = remote_find(o->remote, rec->task_id);
    if (!m)
        return plan_gone(b, rec, remote);
    if (o->remote && rec->task_id && !remote) {
        otr_buf why = OTR_BUF_INIT;
        otr_buf_printf(&why, "drift: the recorded task %s no longer exists in the service",
                       rec->task_id);
        int rc = otr_buf_failed(&why) ? -1 : plan_create(b, m, rec, why.ptr);
        otr_buf_free(&why);
        return rc;
    }
    if (remote && remote->status && rec->remote_status &&
        strcmp(remote->status, rec->remote_status)) {
        otr_buf note = OTR_BUF_INIT;
        otr_buf_printf(&note, "%s: status %s -> %s", rec->name, rec->remote_status, remote->status);
        int rc = otr_buf_failed(&note) ? -1 : add_note(b, note.ptr);
        otr_buf_free(&note);
        if (rc < 0)
            return -1;
    }
    return plan_existing(b, rec, m, remote);
}

static int action_cmp(const void *x, const void *y)
{
    const otr_action *a = x, *b = y;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Intents left by an interrupted run are finished first; the rest of the
 * plan is made as if they succeed, on a copy of the records (*view), made
 * only when there is something to finish. */
static int plan_resumes(builder *b, otr_state *state, otr_state **projected)
{
    if (!state->npending)
        return 0;
    otr_state *view = calloc(1, sizeof(*view));
    if (!view)
        return -1;
    *projected = view;
    view->lock_fd = view->journal_fd = -1;
    b->resumed = calloc(state->npending, sizeof(*b->resumed));
    if (!b->resumed)
        return -1;
    for (size_t i = 0; i < state->count; i++)
        if (otr_state_put(view, &state->records[i]) < 0)
            return -1;
    for (size_t i = 0; i < state->npending; i++) {
        const otr_intent *in = &state->pending[i];
        if (!targeted(b->o, in->rec.name))
            continue;
        otr_action *a = add_action(b, OTR_ACT_RESUME, in->rec.name);
        if (!a)
            return -1;
        b->resumed[b->nresumed++] = in->rec.name;
        a->resume_op = in->op;
        otr_buf why = OTR_BUF_INIT;
        otr_buf_printf(&why, "finish the %s left unfinished by an interrupted run",
                       otr_op_name(in->op));
        if (!(a->reason = otr_buf_detach(&why)))
            return -1;
        const otr_record *cur = otr_state_find(state, in->rec.name);
        if ((cur && otr_record_copy(&a->old, cur) < 0) ||
            otr_record_copy(&a->desired, &in->rec) < 0)
            return -1;
        if (in->op == OTR_OP_DELETE)
            otr_state_remove(view, in->rec.name);
        else if (otr_state_put(view, &in->rec) < 0)
            return -1;
    }
    if (b->nresumed > 1)
        qsort(b->resumed, b->nresumed, sizeof(*b->resumed), key_cmp);
    return 0;
}

/* Merge-joins the manifests (sorted by name) with the records. */
static int plan_names(builder *b, const otr_state *view, otr_manifest_set *set)
{
    otr_manifest **ms = malloc((set->count + 1) * sizeof(*ms));
    int rc = 0;
    if (!ms)
        return -1;
    for (size_t i = 0; i < set->count; i++)
        ms[i] = set->items[i];
    if (set->count > 1)
        qsort(ms, set->count, sizeof(*ms), manifest_cmp);
    size_t i = 0, j = 0;
    while (rc == 0 && (i < set->count || j < view->count)) {
        int c = i >= set->count    ? 1
                : j >= view->count ? -1
                                   : strcmp(ms[i]->name, view->records[j].name);
        otr_manifest *m = c <= 0 ? ms[i] : NULL;
        const otr_record *r = c >= 0 ? &view->records[j] : NULL;
        const char *name = m ? m->name : r->name;
        if (c <= 0)
            i++;
        if (c >= 0)
            j++;
        if (targeted(b->o, name))
            rc = plan_name(b, r, m);
    }
    free(ms);
    return rc;
}

int otr_plan_make(otr_plan **out, otr_state *state, otr_manifest_set *set,
                  const otr_plan_options *o, otr_error *err)
{
    otr_plan *p = calloc(1, sizeof(*p));
    builder b = {.p = p, .o = o};
    otr_state *projected = NULL;
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
    if (plan_resumes(&b, state, &projected) < 0 ||
        plan_names(&b, projected ? projected : state, set) < 0) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        otr_plan_free(p);
        goto done;
    }
    if (p->count > 1)
        qsort(p->actions, p->count, sizeof(*p->actions), action_cmp);
    if (p->nnotes > 1)
        qsort(p->notes, p->nnotes, sizeof(*p->notes), key_cmp);
    *out = p;
    rc = 0;
done:
    free(b.resumed);
    otr_state_free(projected);
    return rc;
}

/* ---- guards ---------------------------------------------------------------------- */

const char *otr_action_cancels(const otr_action *a)
{
    const char *st = a->old.remote_status;
    if ((a->kind != OTR_ACT_DELETE && a->kind != OTR_ACT_REPLACE) || !a->old.task_id || !st)
        return NULL;
    return !strcmp(st, "SCHEDULED") || !strcmp(st, "IN_PROGRESS") ? st : NULL;
}

size_t otr_plan_check_guards(const otr_plan *p, const otr_plan_guards *g, otr_buf *out)
{
    size_t tripped = 0;
    size_t deletes = p->counts[OTR_ACT_DELETE] + p->counts[OTR_ACT_REPLACE];
    if (g->max_deletes >= 0 && deletes > (size_t)g->max_deletes) {
        tripped++;
        otr_buf_printf(out,
                       "this plan would delete %zu task%s (%zu pruned, %zu replaced) and "
                       "--max-deletes is %d; look at the plan, then raise --max-deletes to go "
                       "ahead\n",
                       deletes, deletes == 1 ? "" : "s", p->counts[OTR_ACT_DELETE],
                       p->counts[OTR_ACT_REPLACE], g->max_deletes);
    }
    if (!g->allow_cancel) {
        size_t n = 0;
        for (size_t i = 0; i < p->count; i++)
            n += otr_action_cancels(&p->actions[i]) != NULL;
        if (n) {
            tripped++;
            otr_buf_printf(out, "this plan would delete %zu running task%s, cancelling their "
                                "devices' executions:", n, n == 1 ? "" : "s");
            size_t shown = 0;
            for (size_t i = 0; i < p->count; i++) {
                const otr_action *a = &p->actions[i];
                if (otr_action_cancels(a))
                    otr_buf_printf(out, "%s %s (%s task %s, %s)", shown++ ? "," : "", a->name,
                                   otr_action_kind_name(a->kind), a->old.task_id,
                                   a->old.remote_status);
            }
            otr_buf_puts(out, "; give --allow-cancel to go ahead\n");
        }
    }
    if (!g->allow_empty && p->manifests == 0 && p->counts[OTR_ACT_DELETE]) {
        tripped++;
        otr_buf_printf(out,
                       "no manifest was found under %s at %.12s, and --prune would delete every "
                       "recorded task (%zu); check --path and --ref, or give --allow-empty if the "
                       "fleet is really to go\n",
                       p->path ? p->path : "manifests", p->commit ? p->commit : "?",
                       p->counts[OTR_ACT_DELETE]);
    }
    return tripped;
}

/* ---- JSON ------------------------------------------------------------------------ */

static cJSON *record_json(const otr_record *r)
{
    if (!r->name)
        return cJSON_CreateNull();
    cJSON *o = otr_record_to_json(r);
    cJSON_AddStringToObject(o, "name", r->name);
    return o;
}

cJSON *otr_plan_to_json(const otr_plan *p)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "formatVersion", OTR_PLAN_FORMAT_VERSION);
    cJSON_AddStringToObject(root, "lineage", p->lineage);
    cJSON_AddNumberToObject(root, "serial", (double)p->serial);
    cJSON_AddNumberToObject(root, "journalEntries", (double)p->journal_entries);
    if (p->manifests >= 0)
        cJSON_AddNumberToObject(root, "manifests", (double)p->manifests);
    cJSON *src = cJSON_AddObjectToObject(root, "source");
    if (p->repo)
        cJSON_AddStringToObject(src, "repo", p->repo);
    if (p->ref)
        cJSON_AddStringToObject(src, "ref", p->ref);
    if (p->commit)
        cJSON_AddStringToObject(src, "commit", p->commit);
    if (p->path)
        cJSON_AddStringToObject(src, "path", p->path);
    cJSON *sum = cJSON_AddObjectToObject(root, "summary");
    for (int k = 0; k < OTR_ACT_KINDS; k++)
        cJSON_AddNumberToObject(sum, kind_names[k], (double)p->counts[k]);
    cJSON_AddNumberToObject(sum, "changes", (double)otr_plan_changes(p));
    cJSON *actions = cJSON_AddArrayToObject(root, "actions");
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *a = &p->actions[i];
        if (a->kind == OTR_ACT_NOOP)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", kind_names[a->kind]);
        cJSON_AddStringToObject(o, "name", a->name);
        if (a->kind == OTR_ACT_RESUME)
            cJSON_AddStringToObject(o, "resumeOp", otr_op_name(a->resume_op));
        if (a->reason)
            cJSON_AddStringToObject(o, "reason", a->reason);
        const char *file = a->desired.file ? a->desired.file : a->old.file;
        if (file)
            cJSON_AddStringToObject(o, "file", file);
        if (a->line)
            cJSON_AddNumberToObject(o, "line", a->line);
        if (a->desired.client_token)
            cJSON_AddStringToObject(o, "clientToken", a->desired.client_token);
        if (a->old.task_id)
            cJSON_AddStringToObject(o, "taskId", a->old.task_id);
        if (otr_action_cancels(a))
            cJSON_AddStringToObject(o, "cancelsRunning", otr_action_cancels(a));
        cJSON *changes = cJSON_AddArrayToObject(o, "changes");
        for (size_t c = 0; c < a->nchanges; c++) {
            cJSON *ch = cJSON_CreateObject();
            cJSON_AddStringToObject(ch, "field", a->changes[c].field);
            cJSON_AddItemToObject(ch, "old",
                                  a->changes[c].old_value
                                      ? cJSON_Duplicate(a->changes[c].old_value, 1)
                                      : cJSON_CreateNull());
            cJSON_AddItemToObject(ch, "new",
                                  a->changes[c].new_value
                                      ? cJSON_Duplicate(a->changes[c].new_value, 1)
                                      : cJSON_CreateNull());
            cJSON_AddItemToArray(changes, ch);
        }
        cJSON_AddItemToObject(o, "old", record_json(&a->old));
        cJSON_AddItemToObject(o, "new", record_json(&a->desired));
        cJSON_AddItemToArray(actions, o);
    }
    cJSON *notes = cJSON_AddArrayToObject(root, "notes");
    for (size_t i = 0; i < p->nnotes; i++)
        cJSON_AddItemToArray(notes, cJSON_CreateString(p->notes[i]));
    cJSON *moved = cJSON_AddArrayToObject(root, "relocations");
    for (size_t i = 0; i < p->nrelocations; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "name", p->relocations[i].name);
        cJSON_AddStringToObject(r, "file", p->relocations[i].file);
        if (p->relocations[i].commit)
            cJSON_AddStringToObject(r, "commit", p->relocations[i].commit);
        cJSON_AddItemToArray(moved, r);
    }
    return root;
}

/* A record of a saved plan ("old" or "new": null when there is none). */
static int record_back(otr_record *r, const cJSON *j)
{
    memset(r, 0, sizeof(*r));
    if (!cJSON_IsObject(j))
        return 0;
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "name"));
    cJSON *copy = cJSON_Duplicate(j, 1);
    otr_buf why = OTR_BUF_INIT;
    int rc = name && copy ? otr_record_from_json(r, name, copy, 1, &why) : -1;
    otr_buf_free(&why);
    cJSON_Delete(copy);
    return rc;
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
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "source");
    p->repo = dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "repo")));
    p->ref = dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "ref")));
    p->commit = dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "commit")));
    p->path = dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "path")));
    const cJSON *a;
    cJSON_ArrayForEach(a, actions)
    {
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "kind"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "name"));
        int k = 0;
        while (k < OTR_ACT_KINDS && (!kind || strcmp(kind_names[k], kind)))
            k++;
        if (k == OTR_ACT_KINDS || !name) {
            otr_plan_free(p);
            return otr_error_set(err, OTR_ERR_INVALID,
                                 "the saved plan has an action without "
                                 "a known kind and a name");
        }
        otr_action *act = add_action(&b, (otr_action_kind)k, name);
        if (!act) {
            otr_plan_free(p);
            return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        }
        const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "resumeOp"));
        act->resume_op = op && !strcmp(op, "update")   ? OTR_OP_UPDATE
                         : op && !strcmp(op, "delete") ? OTR_OP_DELETE
                                                       : OTR_OP_CREATE;
        act->reason =
            dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "reason")));
        act->line = (unsigned)otr_json_integer_or(cJSON_GetObjectItemCaseSensitive(a, "line"), 0,
                                                  1000000000LL, 0);
        if (record_back(&act->old, cJSON_GetObjectItemCaseSensitive(a, "old")) < 0 ||
            record_back(&act->desired, cJSON_GetObjectItemCaseSensitive(a, "new")) < 0) {
            otr_plan_free(p);
            return otr_error_set(err, OTR_ERR_INVALID, "the saved plan has a damaged action (%s)",
                                 name);
        }
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(j, "relocations"))
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "name"));
        const char *file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "file"));
        const char *commit = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "commit"));
        if (!name || !file || add_relocation(&b, name, file, commit) < 0) {
            otr_plan_free(p);
            return otr_error_set(err, OTR_ERR_INVALID, "the saved plan has a damaged relocation");
        }
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
        otr_record_clear(&a->old);
        otr_record_clear(&a->desired);
        free_changes(a->changes, a->nchanges);
    }
    free(p->actions);
    for (size_t i = 0; i < p->nrelocations; i++) {
        free(p->relocations[i].name);
        free(p->relocations[i].file);
        free(p->relocations[i].commit);
    }
    free(p->relocations);
    for (size_t i = 0; i < p->nnotes; i++)
        free(p->notes[i]);
    free(p->notes);
    free(p->repo);
    free(p->ref);
    free(p->commit);
    free(p->path);
    free(p);
}
