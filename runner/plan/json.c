/* A plan's guards, and its JSON both ways (a saved plan is applied from it). */
#include "plan/internal.h"

#include "kinds/tags.h"
#include "manifest/token.h"
#include "state/state.h"
#include "util/buf.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What reading a plan back grows: its actions and its rewrites. */
typedef struct json_builder {
    otr_plan *p;
    size_t alloc;
    size_t ralloc;
} json_builder;

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
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
                               a->resource->noun, otr_action_old_id(a), otr_action_cancels(a));
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
    otr_jb_str(b, o, "kind", otr_action_kind_name(a->kind));
    otr_jb_str(b, o, "name", a->name);
    otr_jb_str(b, o, "resource", a->resource->name);
    add_address(b, o, "address", a->resource, a->name);
    if (a->kind == OTR_ACT_RESUME)
        otr_jb_str(b, o, "resumeOp", otr_op_name(a->resume_op));
    if (a->retired)
        otr_jb_bool(b, o, "retired", 1);
    if (a->after_resume)
        otr_jb_bool(b, o, "afterResume", 1);
    if (a->drift)
        otr_jb_bool(b, o, "drift", 1);
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
        otr_buf_printf(&dep, "%s %s/%s", otr_action_kind_name(on->kind), on->resource->name,
                       on->name);
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
        otr_jb_num(b, sum, otr_action_kind_name(k), (double)p->counts[k]);
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
    /* drift apart from changes: what the service changed or lost behind ota-runner's back */
    cJSON *drift = otr_jb_array(b, root, "drift");
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *a = &p->actions[i];
        if (!a->drift)
            continue;
        cJSON *x = cJSON_CreateObject();
        add_address(b, x, "address", a->resource, a->name);
        otr_jb_str(b, x, "what", a->kind == OTR_ACT_CREATE ? "gone" : "changed");
        if (a->old.id)
            otr_jb_str(b, x, a->resource->id_key, a->old.id);
        cJSON *fields = otr_jb_array(b, x, "fields");
        for (size_t c = 0; c < a->nchanges; c++)
            otr_jb_add(b, fields, NULL, cJSON_CreateString(a->changes[c].field));
        otr_jb_add(b, drift, NULL, x);
    }
    cJSON *moves = otr_jb_array(b, root, "moves");
    for (size_t i = 0; i < p->nmoves; i++) {
        cJSON *x = cJSON_CreateObject();
        add_address(b, x, "address", p->moves[i].kind, p->moves[i].to);
        otr_jb_str(b, x, "from", p->moves[i].from);
        otr_jb_add(b, moves, NULL, x);
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

static int action_back(json_builder *b, const cJSON *a, otr_error *err)
{
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "kind"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "name"));
    const char *res = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "resource"));
    const otr_kind *rk = res ? otr_kind_find(res) : &otr_kind_ota_task;
    int k = 0;
    while (k < OTR_ACT_KINDS && (!kind || strcmp(otr_action_kind_name(k), kind)))
        k++;
    if (k == OTR_ACT_KINDS || !name || !rk)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "the saved plan has an action without a known kind, resource and "
                             "name");
    otr_action *act = otr_plan_push_action(b->p, &b->alloc, (otr_action_kind)k, rk, name);
    if (!act)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "resumeOp"));
    act->resume_op = op && !strcmp(op, "update")   ? OTR_OP_UPDATE
                     : op && !strcmp(op, "delete") ? OTR_OP_DELETE
                                                   : OTR_OP_CREATE;
    act->retired = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "retired"));
    act->after_resume = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "afterResume"));
    act->drift = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "drift"));
    if (act->retired && act->kind == OTR_ACT_DELETE)
        b->p->retired_deletes++;
    act->reason = dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "reason")));
    act->line = (unsigned)otr_json_integer_or(cJSON_GetObjectItemCaseSensitive(a, "line"), 0,
                                              1000000000LL, 0);
    if (record_back(&act->old, rk, cJSON_GetObjectItemCaseSensitive(a, "old"), act->retired) < 0 ||
        record_back(&act->desired, rk, cJSON_GetObjectItemCaseSensitive(a, "new"), 0) < 0)
        return otr_error_set(err, OTR_ERR_INVALID, "the saved plan has a damaged action (%s)",
                             name);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(a, "changes"))
    {
        const char *field = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "field"));
        const cJSON *was = cJSON_GetObjectItemCaseSensitive(c, "old");
        const cJSON *now = cJSON_GetObjectItemCaseSensitive(c, "new");
        if (field && otr_action_add_change(act, field, cJSON_IsNull(was) ? NULL : was,
                                           cJSON_IsNull(now) ? NULL : now) < 0)
            return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* What a saved plan shows beside its actions, back: the notes, the kinds'
 * views (a rollout's waves) and how many manifests are unchanged, so that
 * show and apply FILE print it as plan did. */
static int shown_back(otr_plan *p, const cJSON *j)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(j, "notes"))
    {
        if (cJSON_IsString(x) && otr_plan_add_notes(p, x->valuestring) < 0)
            return -1;
    }
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(j, "details"))
    {
        const char *address = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "address"));
        const otr_kind *k = NULL;
        const char *name;
        otr_buf why = OTR_BUF_INIT;
        int bad = !address || otr_address_parse(address, &k, &name, &why) < 0;
        otr_buf_free(&why);
        if (bad)
            continue;
        cJSON *view = cJSON_Duplicate(x, 1);
        if (view)
            cJSON_DeleteItemFromObjectCaseSensitive(view, "address");
        if (!view || otr_plan_add_detail(p, k, name, view) < 0) {
            cJSON_Delete(view);
            return -1;
        }
    }
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(j, "moves"))
    {
        const char *address = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "address"));
        const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "from"));
        const otr_kind *k = NULL;
        const char *name;
        otr_buf why = OTR_BUF_INIT;
        int bad = !address || !from || otr_address_parse(address, &k, &name, &why) < 0;
        otr_buf_free(&why);
        otr_move *grown = bad ? NULL : realloc(p->moves, (p->nmoves + 1) * sizeof(*grown));
        if (!grown)
            return -1;
        p->moves = grown;
        p->moves[p->nmoves] = (otr_move){k, strdup(from), strdup(name)};
        if (!p->moves[p->nmoves].from || !p->moves[p->nmoves].to) {
            free(p->moves[p->nmoves].from);
            free(p->moves[p->nmoves].to);
            return -1;
        }
        p->nmoves++;
    }
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(j, "summary");
    p->counts[OTR_ACT_NOOP] = (size_t)otr_json_integer_or(
        cJSON_GetObjectItemCaseSensitive(sum, otr_action_kind_name(OTR_ACT_NOOP)), 0, 1LL << 40, 0);
    return 0;
}

/* A dropped intent of a saved plan (a delete, or a create never sent), back. */
static int dropped_back(otr_plan *p, const cJSON *r)
{
    const char *address = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "address"));
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "op"));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "id"));
    const otr_kind *k = NULL;
    const char *name;
    otr_buf why = OTR_BUF_INIT;
    int create = op && !strcmp(op, otr_op_name(OTR_OP_CREATE));
    int bad = !address || !op || (strcmp(op, otr_op_name(OTR_OP_DELETE)) && !create) ||
              otr_address_parse(address, &k, &name, &why) < 0;
    otr_buf_free(&why);
    otr_intent *grown = bad ? NULL : realloc(p->dropped, (p->ndropped + 1) * sizeof(*grown));
    if (!grown)
        return -1;
    p->dropped = grown;
    otr_intent *d = &p->dropped[p->ndropped];
    memset(d, 0, sizeof(*d));
    d->op = create ? OTR_OP_CREATE : OTR_OP_DELETE;
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
    json_builder b = {.p = p};
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
            !rec.name || strcmp(rec.name, name) || otr_plan_push_rewrite(p, &b.ralloc, &rec) < 0) {
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
    if (shown_back(p, j) < 0 || otr_plan_link(p, NULL) < 0) {
        otr_plan_free(p);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    *out = p;
    return 0;
}
