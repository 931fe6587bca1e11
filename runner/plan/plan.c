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
    size_t alloc;
    size_t nalloc;
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
    otr_action *a = &p->actions[p->count++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->name = strdup(name);
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
    p->notes[p->nnotes++] = strdup(text);
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
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Field-level differences between two specs (top-level members). Returns
 * whether every difference can be made by UpdateOtaTask. */
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
        add_change(a, keys[i], o, w);
        /* UpdateOtaTask sets Description and TaskConfigurationId; it cannot unset them */
        if ((strcmp(keys[i], "Description") && strcmp(keys[i], "TaskConfigurationId")) || !w)
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

/* A recorded task and the manifest that wants it. */
static int plan_name(builder *b, const otr_plan_options *o, const otr_record *rec, otr_manifest *m,
                     const char *commit)
{
    otr_buf why = OTR_BUF_INIT;
    int rc = 0;
    if (m && !rec) {
        otr_action *a = add_action(b, OTR_ACT_CREATE, m->name);
        if (!a)
            return -1;
        a->line = m->line;
        return otr_record_take_manifest(&a->desired, m, commit);
    }
    if (!m) {
        otr_action *a = add_action(b, o->prune ? OTR_ACT_DELETE : OTR_ACT_ORPHAN, rec->name);
        if (!a)
            return -1;
        otr_record_copy(&a->old, rec);
        if (!o->prune)
            a->reason = strdup("its manifest is gone; run with --prune to delete the task");
        return 0;
    }
    const otr_remote_task *remote = NULL;
    int pending_create = rec->task_id == NULL;
    if (o->remote && !pending_create) {
        remote = remote_find(o->remote, rec->task_id);
        if (!remote) {
            otr_action *a = add_action(b, OTR_ACT_CREATE, m->name);
            if (!a)
                return -1;
            a->line = m->line;
            otr_buf_printf(&why, "drift: the recorded task %s no longer exists in the service",
                           rec->task_id);
            a->reason = otr_buf_detach(&why);
            otr_record_copy(&a->old, rec);
            return otr_record_take_manifest(&a->desired, m, commit);
        }
        if (remote->status && rec->remote_status && strcmp(remote->status, rec->remote_status)) {
            otr_buf_printf(&why, "%s: status %s -> %s", rec->name, rec->remote_status,
                           remote->status);
            rc = add_note(b, why.ptr);
            otr_buf_clear(&why);
        }
    }
    otr_action probe = {0};
    otr_action_kind kind = OTR_ACT_NOOP;
    int same_spec = rec->spec_digest && !strcmp(rec->spec_digest, m->spec_digest);
    int imported = rec->phase && !strcmp(rec->phase, "imported");
    if (!same_spec)
        kind = diff_specs(&probe, rec->spec, m->spec) ? OTR_ACT_UPDATE : OTR_ACT_REPLACE;
    /* a new revision asks for a fresh ClientToken, so a new task, whatever
     * else changed (an imported task has no token of ours to renew) */
    if (!imported && rec->revision != m->revision) {
        kind = OTR_ACT_REPLACE;
        otr_buf_printf(&why, "metadata.revision %ld -> %ld: a fresh ClientToken, so a new task",
                       rec->revision, m->revision);
    }
    if (kind == OTR_ACT_NOOP && remote && remote->fields) {
        /* --refresh full: what the service holds vs what was recorded */
        otr_action drift = {0};
        cJSON *live = cJSON_CreateObject();
        const cJSON *f;
        cJSON_ArrayForEach(f, rec->spec)
        {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(remote->fields, f->string);
            if (v)
                cJSON_AddItemToObject(live, f->string, cJSON_Duplicate(v, 1));
        }
        cJSON_ArrayForEach(f, remote->fields)
        {
            if (!cJSON_GetObjectItemCaseSensitive(live, f->string) &&
                cJSON_GetObjectItemCaseSensitive(m->spec, f->string) == NULL &&
                (!strcmp(f->string, "Description") || !strcmp(f->string, "TaskConfigurationId")))
                cJSON_AddItemToObject(live, f->string, cJSON_Duplicate(f, 1));
        }
        int updatable = diff_specs(&drift, live, m->spec);
        if (drift.nchanges) {
            kind = updatable ? OTR_ACT_UPDATE : OTR_ACT_REPLACE;
            otr_buf_puts(&why, "drift: the service's task differs from the manifest in");
            for (size_t i = 0; i < drift.nchanges; i++)
                otr_buf_printf(&why, "%s %s", i ? "," : "", drift.changes[i].field);
            for (size_t i = 0; i < drift.nchanges; i++)
                add_change(&probe, drift.changes[i].field, drift.changes[i].old_value,
                           drift.changes[i].new_value);
        }
        for (size_t i = 0; i < drift.nchanges; i++) {
            free(drift.changes[i].field);
            cJSON_Delete(drift.changes[i].old_value);
            cJSON_Delete(drift.changes[i].new_value);
        }
        free(drift.changes);
        cJSON_Delete(live);
    }
    otr_action *a = add_action(b, kind, m->name);
    if (!a) {
        rc = -1;
    } else if (kind == OTR_ACT_NOOP) {
        a->line = m->line; /* nothing to carry out: no copies (10k noops stay cheap) */
    } else {
        a->line = m->line;
        a->changes = probe.changes;
        a->nchanges = probe.nchanges;
        probe.changes = NULL;
        if (why.len)
            a->reason = otr_buf_detach(&why);
        otr_record_copy(&a->old, rec);
        if (otr_record_take_manifest(&a->desired, m, commit) < 0)
            rc = -1;
    }
    free(probe.changes);
    otr_buf_free(&why);
    return rc;
}

static int action_cmp(const void *x, const void *y)
{
    const otr_action *a = x, *b = y;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    return strcmp(a->name, b->name);
}

int otr_plan_make(otr_plan **out, otr_state *state, otr_manifest_set *set,
                  const otr_plan_options *o, otr_error *err)
{
    otr_plan *p = calloc(1, sizeof(*p));
    builder b = {p, 0, 0};
    otr_manifest **ms = NULL;
    otr_state *projected = NULL;
    int rc = -1;
    *out = NULL;
    if (!p)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    memcpy(p->lineage, state->lineage, sizeof(p->lineage));
    p->serial = state->serial;
    p->journal_entries = state->journal_entries;
    p->repo = dup_or_null(o->repo);
    p->ref = dup_or_null(o->ref);
    p->commit = dup_or_null(o->commit);
    p->path = dup_or_null(o->path);

    /* 1. intents left by an interrupted run are finished first; the rest of
     * the plan is made as if they succeed (on a copy of the records, made
     * only when there is something to finish) */
    otr_state *view = state;
    if (state->npending) {
        projected = calloc(1, sizeof(*projected));
        if (!projected)
            goto nomem;
        projected->lock_fd = projected->journal_fd = -1;
        for (size_t i = 0; i < state->count; i++)
            if (otr_state_put(projected, &state->records[i]) < 0)
                goto nomem;
        view = projected;
    }
    for (size_t i = 0; i < state->npending; i++) {
        const otr_intent *in = &state->pending[i];
        if (!targeted(o, in->rec.name))
            continue;
        otr_action *a = add_action(&b, OTR_ACT_RESUME, in->rec.name);
        if (!a)
            goto nomem;
        a->resume_op = in->op;
        otr_buf why = OTR_BUF_INIT;
        otr_buf_printf(&why, "finish the %s left unfinished by an interrupted run",
                       otr_op_name(in->op));
        a->reason = otr_buf_detach(&why);
        const otr_record *cur = otr_state_find(state, in->rec.name);
        if (cur)
            otr_record_copy(&a->old, cur);
        otr_record_copy(&a->desired, &in->rec);
        if (in->op == OTR_OP_DELETE)
            otr_state_remove(view, in->rec.name);
        else if (otr_state_put(view, &in->rec) < 0)
            goto nomem;
    }

    /* 2. merge-join the manifests (sorted by name) with the records */
    ms = malloc((set->count + 1) * sizeof(*ms));
    if (!ms)
        goto nomem;
    for (size_t i = 0; i < set->count; i++)
        ms[i] = set->items[i];
    if (set->count > 1)
        qsort(ms, set->count, sizeof(*ms), manifest_cmp);
    size_t i = 0, j = 0;
    while (i < set->count || j < view->count) {
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
        if (!targeted(o, name))
            continue;
        if (plan_name(&b, o, r, m, o->commit) < 0)
            goto nomem;
    }

    /* 3. the deletion guard: a replace deletes a task too */
    size_t deletes = p->counts[OTR_ACT_DELETE] + p->counts[OTR_ACT_REPLACE];
    if (o->max_deletes >= 0 && deletes > (size_t)o->max_deletes) {
        otr_error_set(err, OTR_ERR_INVALID,
                      "this plan would delete %zu task%s (%zu pruned, %zu replaced) and "
                      "--max-deletes is %d; look at the plan, then raise --max-deletes to go ahead",
                      deletes, deletes == 1 ? "" : "s", p->counts[OTR_ACT_DELETE],
                      p->counts[OTR_ACT_REPLACE], o->max_deletes);
        goto fail;
    }
    if (p->count > 1)
        qsort(p->actions, p->count, sizeof(*p->actions), action_cmp);
    if (p->nnotes > 1)
        qsort(p->notes, p->nnotes, sizeof(*p->notes), key_cmp);
    *out = p;
    p = NULL;
    rc = 0;
    goto done;
nomem:
    otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
fail:
    otr_plan_free(p);
done:
    free(ms);
    otr_state_free(projected);
    return rc;
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
    builder b = {p, 0, 0};
    if (!p)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    snprintf(p->lineage, sizeof(p->lineage), "%s", lineage);
    p->serial = (long)serial;
    p->journal_entries = (size_t)entries;
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
        for (size_t c = 0; c < a->nchanges; c++) {
            free(a->changes[c].field);
            cJSON_Delete(a->changes[c].old_value);
            cJSON_Delete(a->changes[c].new_value);
        }
        free(a->changes);
    }
    free(p->actions);
    for (size_t i = 0; i < p->nnotes; i++)
        free(p->notes[i]);
    free(p->notes);
    free(p->repo);
    free(p->ref);
    free(p->commit);
    free(p->path);
    free(p);
}
