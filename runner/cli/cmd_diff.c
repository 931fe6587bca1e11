/*
 * ota-runner diff BASE [HEAD]: the manifests of two commits compared, with no
 * state and no network — what a pull request from a fork can show without
 * credentials. The older commit's manifests are made into records, as if
 * applied, and the plan's own rules say what the newer ones would do to
 * them: added, removed, changed in place (an update) or by a replace (and
 * for a configuration, the tasks it moves); a rollout says which waves come
 * and go, and a promotion (holdAfter moved on).
 */
#include "cli/commands.h"
#include "behaviour/behaviour.h"
#include "cli/load.h"
#include "cli/render_plan.h"
#include "manifest/token.h"
#include "plan/plan.h"
#include "state/state.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the older commit as records ----------------------------------------------- */

/* A record of m as if it had been created: its id is its name, and a
 * reference (a top-level one: a task's TaskConfigurationRef) is the id of
 * what it names, as the service would hold it. */
static int record_as_created(otr_record *r, const otr_manifest *m, const char *commit)
{
    if (otr_record_from_manifest(r, m, commit) < 0 || !(r->id = strdup(m->name)))
        return -1;
    cJSON *spec = otr_record_spec(r);
    if (!spec)
        return -1;
    for (size_t i = 0; i < m->kind->nrefs; i++) {
        const otr_kind_ref *ref = &m->kind->refs[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, ref->field);
        if (strchr(ref->field, '.') || !cJSON_IsString(v))
            continue; /* a kind that plans itself compares its manifests as written */
        cJSON *id = cJSON_CreateString(v->valuestring);
        cJSON_DeleteItemFromObjectCaseSensitive(spec, ref->field);
        if (!id || !cJSON_AddItemToObject(spec, ref->id_field, id)) {
            cJSON_Delete(id);
            cJSON_Delete(spec);
            return -1;
        }
    }
    int rc = otr_record_set_spec(r, spec);
    cJSON_Delete(spec);
    return rc;
}

static otr_state *state_of(const otr_manifest_set *set, const char *commit)
{
    otr_state *s = otr_state_new("(the older commit)");
    for (size_t i = 0; s && i < set->count; i++) {
        otr_record r;
        memset(&r, 0, sizeof(r));
        if (record_as_created(&r, set->items[i], commit) < 0 || otr_state_put_move(s, &r) < 0) {
            otr_record_clear(&r);
            otr_state_free(s);
            return NULL;
        }
    }
    return s;
}

/* ---- what changed ----------------------------------------------------------------- */

typedef struct counts {
    size_t added, removed, in_place, replaced, unchanged, moved;
} counts;

static const char *change_of(const otr_action *a)
{
    switch (a->kind) {
    case OTR_ACT_CREATE: return "added";
    case OTR_ACT_DELETE: return "removed";
    case OTR_ACT_UPDATE:
    case OTR_ACT_REPLACE: return "changed";
    default: return NULL;
    }
}

/* How a change is made, in words. */
static const char *how_of(const otr_action *a)
{
    if (a->kind == OTR_ACT_UPDATE && a->resource->plans_itself)
        return "";
    if (a->kind == OTR_ACT_UPDATE)
        return "in place (an update)";
    if (a->kind != OTR_ACT_REPLACE)
        return "";
    return a->resource->replace_order == OTR_REPLACE_CREATE_FIRST
               ? "by a replace: the new one first, what refers to it moved to it, then the old "
                 "one deleted"
               : "by a replace: deleted, then created again (a running one's devices are "
                 "cancelled)";
}

/* The actions the diff shows: a retired delete belongs to its replace. */
static int shown(const otr_action *a)
{
    return change_of(a) && !a->retired;
}

static void count(const otr_plan *p, counts *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *a = &p->actions[i];
        c->added += a->kind == OTR_ACT_CREATE;
        c->removed += a->kind == OTR_ACT_DELETE && !a->retired;
        c->in_place += a->kind == OTR_ACT_UPDATE;
        c->replaced += a->kind == OTR_ACT_REPLACE;
        c->unchanged += a->kind == OTR_ACT_NOOP;
    }
    c->moved = p->nmoves;
}

/* How a rollout's waves compare (kinds/ota_rollout.c), or NULL. */
static const cJSON *view_of(const otr_plan *p, const otr_action *a)
{
    for (size_t i = 0; i < p->ndetails; i++)
        if (p->details[i].kind == a->resource && !strcmp(p->details[i].name, a->name))
            return p->details[i].view;
    return NULL;
}

static const char *promotes(const otr_plan *p, const otr_action *a)
{
    const otr_kind_behaviour *bh = otr_behaviour_of(a->resource);
    const cJSON *view = view_of(p, a);
    return view && bh && bh->view_promotes ? bh->view_promotes(view) : NULL;
}

static void summary(const counts *c, otr_buf *out)
{
    size_t changed = c->in_place + c->replaced;
    if (!c->added && !c->removed && !changed && !c->moved) {
        otr_buf_printf(out, "No changes: the %zu manifests are the same.", c->unchanged);
        return;
    }
    otr_buf_printf(out,
                   "Diff: %zu added, %zu changed (%zu in place, %zu by a replace), %zu removed; "
                   "%zu unchanged.",
                   c->added, changed, c->in_place, c->replaced, c->removed, c->unchanged);
    if (c->moved)
        otr_buf_printf(out, " %zu renamed, with no call.", c->moved);
}

/* The renames (metadata.previousNames): the same resource, a new name. */
static void moves_text(const otr_plan *p, otr_buf *out)
{
    for (size_t i = 0; i < p->nmoves; i++) {
        otr_buf_puts(out, "  renamed ");
        otr_address_short(out, p->moves[i].kind, p->moves[i].to);
        otr_buf_printf(out, "\n        from %s (metadata.previousNames): the same %s, no call\n",
                       p->moves[i].from, otr_kind_sent(p->moves[i].kind)->noun);
    }
}

static const char *file_of(const otr_action *a)
{
    return a->desired.file ? a->desired.file : a->old.file;
}

/* ---- outputs ------------------------------------------------------------------------- */

static void value_text(otr_buf *out, const cJSON *v)
{
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    otr_buf_puts(out, s ? s : "(not set)");
    free(s);
}

static void print_text(const otr_plan *p, const char *base, const char *head)
{
    otr_buf out = OTR_BUF_INIT;
    counts c;
    otr_buf_printf(&out, "Diff of %s from %.12s to %.12s\n\n", p->path ? p->path : "manifests",
                   base, head);
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *a = &p->actions[i];
        if (!shown(a))
            continue;
        otr_buf_printf(&out, "  %-7s ", change_of(a));
        otr_address_short(&out, a->resource, a->name);
        if (file_of(a))
            otr_buf_printf(&out, "  %s", file_of(a));
        if (file_of(a) && a->line)
            otr_buf_printf(&out, ":%u", a->line);
        otr_buf_putc(&out, '\n');
        if (*how_of(a))
            otr_buf_printf(&out, "        %s\n", how_of(a));
        otr_buf what = OTR_BUF_INIT;
        otr_render_action_describe(&what, a);
        if (what.len)
            otr_buf_printf(&out, "        %s\n", otr_buf_cstr(&what));
        otr_buf_free(&what);
        if (a->reason && a->resource->plans_itself)
            otr_buf_printf(&out, "        %s\n", a->reason);
        if (promotes(p, a))
            otr_buf_printf(&out, "        promotes %s to %s\n", a->name, promotes(p, a));
        for (size_t k = 0; k < a->nchanges; k++) {
            otr_buf_printf(&out, "        %s: ", a->changes[k].field);
            value_text(&out, a->changes[k].old_value);
            otr_buf_puts(&out, " -> ");
            value_text(&out, a->changes[k].new_value);
            otr_buf_putc(&out, '\n');
        }
    }
    moves_text(p, &out);
    count(p, &c);
    otr_buf_putc(&out, '\n');
    summary(&c, &out);
    otr_buf_putc(&out, '\n');
    size_t before = out.len;
    otr_render_plan_reach(p, &out);
    if (out.len > before)
        otr_buf_putc(&out, '\n');
    otr_text_sanitize(&out, 0, 0);
    fputs(otr_buf_cstr(&out), stdout);
    otr_buf_free(&out);
}

static cJSON *change_json(const otr_plan *p, const otr_action *a)
{
    cJSON *o = cJSON_CreateObject();
    otr_buf addr = OTR_BUF_INIT;
    otr_address_full(&addr, a->resource, a->name);
    cJSON_AddStringToObject(o, "address", otr_buf_cstr(&addr));
    otr_buf_free(&addr);
    cJSON_AddStringToObject(o, "change", change_of(a));
    cJSON_AddStringToObject(o, "how",
                            a->kind == OTR_ACT_REPLACE  ? "replace"
                            : a->resource->plans_itself ? a->resource->noun
                            : a->kind == OTR_ACT_UPDATE ? "update"
                            : a->kind == OTR_ACT_CREATE ? "create"
                                                        : "delete");
    if (file_of(a))
        cJSON_AddStringToObject(o, "file", file_of(a));
    if (a->line)
        cJSON_AddNumberToObject(o, "line", a->line);
    if (a->reason && a->resource->plans_itself)
        cJSON_AddStringToObject(o, "reason", a->reason);
    if (promotes(p, a))
        cJSON_AddStringToObject(o, "promotes", promotes(p, a));
    otr_buf what = OTR_BUF_INIT;
    otr_render_action_describe(&what, a);
    if (what.len)
        cJSON_AddStringToObject(o, "description", otr_buf_cstr(&what));
    otr_buf_free(&what);
    cJSON_AddItemToObject(o, "fields", otr_action_changes_json(a));
    return o;
}

static void print_json(const otr_plan *p, const char *base, const char *head)
{
    counts c;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "formatVersion", 1);
    cJSON_AddStringToObject(root, "base", base);
    cJSON_AddStringToObject(root, "head", head);
    cJSON_AddStringToObject(root, "path", p->path ? p->path : "manifests");
    count(p, &c);
    cJSON *s = cJSON_AddObjectToObject(root, "summary");
    cJSON_AddNumberToObject(s, "added", (double)c.added);
    cJSON_AddNumberToObject(s, "changed", (double)(c.in_place + c.replaced));
    cJSON_AddNumberToObject(s, "inPlace", (double)c.in_place);
    cJSON_AddNumberToObject(s, "replaced", (double)c.replaced);
    cJSON_AddNumberToObject(s, "removed", (double)c.removed);
    cJSON_AddNumberToObject(s, "unchanged", (double)c.unchanged);
    cJSON_AddNumberToObject(s, "renamed", (double)c.moved);
    cJSON *renames = cJSON_AddArrayToObject(root, "renames");
    for (size_t i = 0; i < p->nmoves; i++) {
        cJSON *x = cJSON_CreateObject();
        otr_buf a = OTR_BUF_INIT;
        otr_address_full(&a, p->moves[i].kind, p->moves[i].to);
        cJSON_AddStringToObject(x, "address", otr_buf_cstr(&a));
        cJSON_AddStringToObject(x, "from", p->moves[i].from);
        cJSON_AddItemToArray(renames, x);
        otr_buf_free(&a);
    }
    cJSON *changes = cJSON_AddArrayToObject(root, "changes");
    for (size_t i = 0; i < p->count; i++)
        if (shown(&p->actions[i]))
            cJSON_AddItemToArray(changes, change_json(p, &p->actions[i]));
    char *text = cJSON_Print(root);
    printf("%s\n", text ? text : "{}");
    free(text);
    cJSON_Delete(root);
}

static void print_markdown(const otr_plan *p, const char *base, const char *head)
{
    otr_buf out = OTR_BUF_INIT, sum = OTR_BUF_INIT;
    counts c;
    count(p, &c);
    summary(&c, &sum);
    otr_buf_printf(&out, "### ota-runner diff\n\n`%s` from `%.12s` to `%.12s`\n\n**%s**\n\n",
                   p->path ? p->path : "manifests", base, head, otr_buf_cstr(&sum));
    size_t before = out.len;
    otr_render_plan_reach(p, &out);
    if (out.len > before)
        otr_buf_puts(&out, "\n\n");
    for (size_t i = 0; i < p->count; i++)
        if (shown(&p->actions[i]) && promotes(p, &p->actions[i]))
            otr_buf_printf(&out, "**promotes %s to %s**\n\n", p->actions[i].name,
                           promotes(p, &p->actions[i]));
    size_t rows = c.added + c.removed + c.in_place + c.replaced, row = 0;
    if (rows) {
        static const char header[] =
            "| Change | Manifest | File | How | Fields |\n|---|---|---|---|---|\n";
        otr_buf_puts(&out, header);
        for (size_t i = 0; i < p->count; i++) {
            const otr_action *a = &p->actions[i];
            otr_buf addr = OTR_BUF_INIT;
            if (!shown(a))
                continue;
            if (row++ == OTR_MARKDOWN_FOLD_AFTER && rows > OTR_MARKDOWN_FOLD_AFTER)
                otr_buf_printf(&out, "\n<details><summary>%zu more</summary>\n\n%s",
                               rows - OTR_MARKDOWN_FOLD_AFTER, header);
            otr_address_short(&addr, a->resource, a->name);
            otr_buf_printf(&out, "| %s | `", change_of(a));
            otr_md_cell(&out, otr_buf_cstr(&addr));
            otr_buf_puts(&out, "` | ");
            otr_md_cell(&out, file_of(a));
            if (a->line)
                otr_buf_printf(&out, ":%u", a->line);
            otr_buf_puts(&out, " | ");
            const char *how = a->resource->plans_itself && a->reason ? a->reason : how_of(a);
            otr_md_cell(&out, how);
            otr_buf what = OTR_BUF_INIT;
            otr_render_action_describe(&what, a);
            if (what.len) {
                otr_buf_puts(&out, *how ? " — " : "");
                otr_md_cell(&out, otr_buf_cstr(&what));
            }
            otr_buf_free(&what);
            otr_buf_puts(&out, " | ");
            for (size_t k = 0; k < a->nchanges; k++)
                otr_buf_printf(&out, "%s`%s`", k ? ", " : "", a->changes[k].field);
            otr_buf_puts(&out, " |\n");
            otr_buf_free(&addr);
        }
        if (rows > OTR_MARKDOWN_FOLD_AFTER)
            otr_buf_puts(&out, "\n</details>\n");
    }
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *a = &p->actions[i];
        const cJSON *view = shown(a) ? view_of(p, a) : NULL;
        const otr_kind_behaviour *bh = view ? otr_behaviour_of(a->resource) : NULL;
        otr_buf chart = OTR_BUF_INIT;
        if (bh && bh->view_mermaid)
            bh->view_mermaid(&chart, view);
        if (chart.len) { /* nothing to draw: no heading */
            otr_buf_printf(&out, "\n**%c%s `", toupper((unsigned char)a->resource->noun[0]),
                           a->resource->noun + 1);
            otr_md_cell(&out, a->name);
            otr_buf_puts(&out, "`**\n\n");
            otr_buf_puts(&out, otr_buf_cstr(&chart));
        }
        otr_buf_free(&chart);
    }
    otr_markdown_cap(&out, 0, OTR_MARKDOWN_MAX_COMMENT, "diff");
    fputs(otr_buf_cstr(&out), stdout);
    otr_buf_free(&out);
    otr_buf_free(&sum);
}

static void print_github(const otr_plan *p)
{
    otr_buf out = OTR_BUF_INIT;
    counts c;
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *a = &p->actions[i];
        otr_buf text = OTR_BUF_INIT;
        if (!shown(a))
            continue;
        otr_buf_printf(&text, "%s ", change_of(a));
        otr_address_short(&text, a->resource, a->name);
        if (*how_of(a))
            otr_buf_printf(&text, ", %s", how_of(a));
        if (a->reason && a->resource->plans_itself)
            otr_buf_printf(&text, ": %s", a->reason);
        if (promotes(p, a))
            otr_buf_printf(&text, "; promotes %s to %s", a->name, promotes(p, a));
        otr_buf_printf(&out, "::%s ", a->kind == OTR_ACT_UPDATE ? "notice" : "warning");
        if (file_of(a)) {
            otr_buf_puts(&out, "file=");
            otr_github_escape(&out, file_of(a), 1);
            if (a->line)
                otr_buf_printf(&out, ",line=%u", a->line);
            otr_buf_putc(&out, ',');
        }
        otr_buf_puts(&out, "title=ota-runner diff::");
        otr_github_escape(&out, otr_buf_cstr(&text), 0);
        otr_buf_putc(&out, '\n');
        otr_buf_free(&text);
    }
    count(p, &c);
    summary(&c, &out);
    otr_buf_putc(&out, '\n');
    fputs(otr_buf_cstr(&out), stdout);
    otr_buf_free(&out);
}

/* ---- the command ------------------------------------------------------------------------- */

/* Loads one commit's manifests; prints why when it cannot, or when they
 * have errors. */
static int load_at(otr_loaded *l, const otr_options *o, const char *ref)
{
    otr_options at = *o;
    char commit[64];
    at.ref = ref;
    if (otr_load(l, &at) < 0)
        return -1;
    if (l->diags.errors) {
        otr_print_diags_text(&l->diags, o);
        fprintf(stderr, "ota-runner: error: %zu manifest error%s at %s (%s); fix them first\n",
                l->diags.errors, l->diags.errors == 1 ? "" : "s",
                otr_loaded_commit_label(l, commit, sizeof(commit)), ref);
        return -1;
    }
    return 0;
}

int otr_cmd_diff(const otr_options *o)
{
    otr_loaded base, head;
    otr_error err = OTR_ERROR_INIT;
    otr_plan *p = NULL;
    otr_state *s = NULL;
    int rc = OTR_EXIT_ERROR;
    const char *base_ref = o->nargs > 0 ? o->args[0] : NULL;
    const char *head_ref = o->nargs > 1 ? o->args[1] : (o->ref ? o->ref : "HEAD");
    memset(&base, 0, sizeof(base));
    memset(&head, 0, sizeof(head));
    if (!base_ref || o->nargs > 2) {
        fprintf(stderr, "ota-runner diff: give the older commit, and the newer one (default "
                        "HEAD): ota-runner diff BASE [HEAD] (see 'ota-runner diff --help')\n");
        return OTR_EXIT_ERROR;
    }
    if (load_at(&base, o, base_ref) < 0 || load_at(&head, o, head_ref) < 0)
        goto done;
    const char *base_commit = otr_source_commit(base.source);
    if (!(s = state_of(&base.set, base_commit))) {
        fprintf(stderr, "ota-runner: error: out of memory\n");
        goto done;
    }
    otr_plan_options po = OTR_PLAN_OPTIONS_INIT;
    po.behaviours = otr_behaviours;
    po.prune = 1;
    po.compare = 1;
    po.targets = o->targets;
    po.repo = otr_source_repo(head.source); /* no user name or password in a URL */
    po.ref = head_ref;
    po.commit = otr_source_commit(head.source);
    po.path = otr_source_path(head.source);
    if (otr_plan_make(&p, s, &head.set, &po, &err) < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
        goto done;
    }
    if (o->output == OTR_OUT_JSON)
        print_json(p, base_commit, p->commit);
    else if (o->output == OTR_OUT_MARKDOWN)
        print_markdown(p, base_commit, p->commit);
    else if (o->output == OTR_OUT_GITHUB)
        print_github(p);
    else
        print_text(p, base_commit, p->commit);
    counts c;
    count(p, &c);
    rc = o->detailed_exitcode && c.added + c.removed + c.in_place + c.replaced + c.moved
             ? OTR_EXIT_CHANGES
             : OTR_EXIT_OK;
done:
    otr_plan_free(p);
    otr_state_free(s);
    otr_loaded_free(&base);
    otr_loaded_free(&head);
    return rc;
}
