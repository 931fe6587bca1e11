/*
 * Plan renderers: text, markdown, GitHub annotations. A create-first replace
 * (a configuration) is shown as one unit: the replace, then under it the
 * actions that wait for it (the tasks it moves, the old one's delete).
 */
#include "cli/render_plan.h"
#include "manifest/token.h"

#include "behaviour/behaviour.h"
#include "util/json.h"
#include "util/parallel.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Who renders a detail's view: its kind's behaviour (NULL: nobody). */
static const otr_kind_behaviour *view_owner(const otr_detail *d)
{
    return otr_behaviour_of(d->kind);
}

static const char *const symbols[OTR_ACT_KINDS] = {">", "-", "-/+", "~", "+", "!", " "};
static const char *const colors[OTR_ACT_KINDS] = {"36", "31", "33", "33", "32", "35", "0"};

/* A JSON value, short enough for one line. */
static void value_text(otr_buf *out, const cJSON *v)
{
    if (!v) {
        otr_buf_puts(out, "(not set)");
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    size_t n = s ? strlen(s) : 0;
    if (n > 200)
        otr_buf_printf(out, "%.197s...", s);
    else
        otr_buf_puts(out, s ? s : "?");
    free(s);
}

static const char *file_of(const otr_action *a)
{
    return a->desired.file ? a->desired.file : a->old.file;
}

/* ---- units ------------------------------------------------------------------ */

/* The unit an action is shown in: the index of the create-first replace it
 * waits for, or its own index. */
static size_t unit_of(const otr_plan *p, size_t i)
{
    const otr_action *a = &p->actions[i];
    for (size_t d = 0; d < a->ndeps; d++)
        if (otr_action_replaces(&p->actions[a->deps[d]]))
            return a->deps[d];
    return i;
}

/* How many actions a unit's head leads (not counting itself): only a
 * create-first replace leads any, so the others cost nothing (a plan of
 * 100k creates is not scanned 100k times). */
static size_t unit_members(const otr_plan *p, size_t head)
{
    size_t n = 0;
    if (!otr_action_replaces(&p->actions[head]))
        return 0;
    for (size_t j = 0; j < p->count; j++)
        n += j != head && unit_of(p, j) == head;
    return n;
}

/* ---- summary ------------------------------------------------------------------ */

/* "6 tasks", "1 configuration and 6 tasks" or "1 configuration, 6 tasks and
 * 1 rollout": the noops per kind. */
static size_t unchanged_text(const otr_plan *p, otr_buf *out)
{
    size_t counts[OTR_KIND_LIMIT] = {0}, kinds = 0, shown = 0;
    for (size_t k = 0; otr_kinds[k] && k < OTR_KIND_LIMIT; k++) {
        for (size_t i = 0; i < p->count; i++)
            counts[k] +=
                p->actions[i].kind == OTR_ACT_NOOP && p->actions[i].resource == otr_kinds[k];
        kinds += counts[k] > 0;
    }
    for (size_t k = 0; otr_kinds[k] && k < OTR_KIND_LIMIT; k++) {
        if (!counts[k])
            continue;
        shown++;
        otr_buf_printf(out, "%s%zu %s%s", shown == 1 ? "" : (shown == kinds ? " and " : ", "),
                       counts[k], otr_kinds[k]->noun, counts[k] == 1 ? "" : "s");
    }
    if (!kinds)
        otr_buf_puts(out, "0 tasks");
    size_t all = 0;
    for (size_t k = 0; k < OTR_KIND_LIMIT; k++)
        all += counts[k];
    return all; /* "1 rollout matches", "2 tasks match" */
}

/* Does a view of the plan promote its resource (a rollout's holdAfter moved
 * on), though no call is made now? */
static int promotes(const otr_plan *p)
{
    for (size_t i = 0; i < p->ndetails; i++) {
        const otr_kind_behaviour *bh = otr_behaviour_of(p->details[i].kind);
        if (bh && bh->view_promotes && p->details[i].view && bh->view_promotes(p->details[i].view))
            return 1;
    }
    return 0;
}

void otr_render_plan_summary(const otr_plan *p, otr_buf *out)
{
    const size_t *c = p->counts;
    if (otr_plan_changes(p) == 0) {
        /* a promotion is a change, made by the applies to come */
        if (p->nmoves)
            otr_buf_printf(out, "No call: %zu rename%s (recorded by apply). ", p->nmoves,
                           p->nmoves == 1 ? "" : "s");
        else
            otr_buf_puts(out, promotes(p) ? "No call now (the promotion above is carried out by "
                                            "the applies to come). "
                                          : "No changes. ");
        if (p->adopted)
            otr_buf_printf(out, "%zu adopted from the service (the state recorded nothing); ",
                           p->adopted);
        size_t same = unchanged_text(p, out);
        otr_buf_puts(out, same == 1 ? " matches the manifests" : " match the manifests");
        if (c[OTR_ACT_ORPHAN])
            otr_buf_printf(out, "; %zu orphaned", c[OTR_ACT_ORPHAN]);
        otr_buf_puts(out, ".");
        return;
    }
    otr_buf_printf(out, "Plan: %zu to create, %zu to update, %zu to replace, %zu to delete",
                   c[OTR_ACT_CREATE], c[OTR_ACT_UPDATE], c[OTR_ACT_REPLACE],
                   c[OTR_ACT_DELETE] - p->retired_deletes);
    if (p->retired_deletes)
        otr_buf_printf(out, ", %zu old to clean up", p->retired_deletes);
    if (c[OTR_ACT_RESUME])
        otr_buf_printf(out, ", %zu to resume", c[OTR_ACT_RESUME]);
    if (p->adopted)
        otr_buf_printf(out, "; %zu adopted from the service", p->adopted);
    otr_buf_printf(out, "; %zu unchanged", c[OTR_ACT_NOOP]);
    if (c[OTR_ACT_ORPHAN])
        otr_buf_printf(out, ", %zu orphaned", c[OTR_ACT_ORPHAN]);
    if (p->nmoves)
        otr_buf_printf(out, ", %zu renamed (no call)", p->nmoves);
    otr_buf_puts(out, ".");
}

/* "task X is IN_PROGRESS: deleting it cancels its 2 devices' executions" */
static void cancel_text(otr_buf *out, const otr_action *a)
{
    cJSON *spec = otr_record_spec(&a->old);
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(spec, "Target"));
    cJSON_Delete(spec);
    const char *st = otr_action_cancels(a);
    int unknown = st && !strcmp(st, OTR_STATUS_UNKNOWN);
    otr_buf_printf(out, "%s %s is %s: deleting it %s its ", a->resource->noun, otr_action_old_id(a),
                   unknown ? "of a status not known (the service was not asked since it was made)"
                           : st,
                   unknown ? "may cancel" : "cancels");
    if (n)
        otr_buf_printf(out, "%d %s executions", n, n == 1 ? "device's" : "devices'");
    else
        otr_buf_puts(out, "devices' executions");
}

void otr_render_action_describe(otr_buf *out, const otr_action *a)
{
    if ((a->kind != OTR_ACT_CREATE && a->kind != OTR_ACT_REPLACE) || !a->resource->describe)
        return;
    if (a->desired.spec_json)
        a->resource->describe(a->desired.spec_json, a->refs_text, out);
}

/* ---- actions' lines, made ahead on several threads ----------------------------- */

/* Actions written at a time: a plan of 100k creates is mostly their lines,
 * so each window of them is written on every thread before the window is
 * put in order (memory stays one window's worth). */
#define AHEAD_WINDOW 512
/* Fewer actions than this are written on the caller's thread. */
#define AHEAD_MIN_PARALLEL 32

typedef struct ahead {
    const otr_plan *p;
    int width, color; /* text_action's */
    size_t from, to;  /* the actions of the window */
    otr_buf lines[AHEAD_WINDOW];
} ahead;

static void text_action(const otr_plan *p, size_t i, const char *indent, int w, otr_buf *out,
                        int color);

/* A unit's members are shown under its head, indented. */
static const char *indent_of(const otr_plan *p, size_t i)
{
    return unit_of(p, i) == i ? "" : "    ";
}

static void lines_at(size_t k, void *ctx)
{
    ahead *w = ctx;
    size_t i = w->from + k;
    if (w->p->actions[i].kind != OTR_ACT_NOOP)
        text_action(w->p, i, indent_of(w->p, i), w->width, &w->lines[k], w->color);
}

/* Moves the window to start at action i unless it holds it already. */
static void ahead_to(ahead *w, size_t i)
{
    if (i >= w->from && i < w->to)
        return;
    for (size_t k = 0; k < w->to - w->from; k++)
        otr_buf_free(&w->lines[k]);
    w->from = i;
    w->to = w->p->count - i < AHEAD_WINDOW ? w->p->count : i + AHEAD_WINDOW;
    otr_parallel_for(w->to - w->from, AHEAD_MIN_PARALLEL, lines_at, w);
}

static void ahead_free(ahead *w)
{
    for (size_t k = 0; k < w->to - w->from; k++)
        otr_buf_free(&w->lines[k]);
    w->from = w->to = 0;
}

/* Appends action i's lines: from the window when it holds i (and they were
 * made), else made now. */
static void lines_of(const ahead *w, size_t i, otr_buf *out)
{
    if (i >= w->from && i < w->to && !otr_buf_failed(&w->lines[i - w->from]))
        otr_buf_append(out, w->lines[i - w->from].ptr ? w->lines[i - w->from].ptr : "",
                       w->lines[i - w->from].len);
    else
        text_action(w->p, i, indent_of(w->p, i), w->width, out, w->color);
}

typedef struct reach_count {
    long things, queries;
} reach_count;

static int count_element(void *ctx, const char *value, size_t len, size_t index)
{
    (void)value;
    (void)len;
    (void)index;
    ++*(long *)ctx;
    return 0;
}

/* A member of a task's canonical spec: its Target (things by name) and
 * OtaTargetQueryString, which sorts before it. */
static int on_sent(void *ctx, const char *key, const char *value, size_t len, size_t offset)
{
    reach_count *c = ctx;
    (void)offset;
    if (!strcmp(key, "OtaTargetQueryString"))
        c->queries++;
    if (strcmp(key, "Target") != 0)
        return 0;
    if (otr_json_each_element(value, len, count_element, &c->things) < 0)
        c->things = 0; /* not an array: cannot be, the spec was validated */
    return 1;          /* nothing after it counts */
}

/* What one action sends, added to the plan's totals (which several threads
 * add to). */
typedef struct reach {
    const otr_plan *p;
    long tasks, things, queries; /* atomic */
} reach;

static void reach_at(size_t i, void *ctx)
{
    reach *r = ctx;
    const otr_action *a = &r->p->actions[i];
    const otr_kind *k = a->resource;
    cJSON *body = NULL;
    char token[OTR_TOKEN_SIZE];
    reach_count c = {0, 0};
    size_t bad;
    if ((a->kind != OTR_ACT_CREATE && a->kind != OTR_ACT_REPLACE) ||
        otr_kind_sent(k) != &otr_kind_ota_task || !a->desired.spec_json)
        return;
    if (k->body_of && k->body_of(&a->desired, &body, token) < 0)
        return; /* a body it cannot make is reported by apply */
    if (body) {
        c.things = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(body, "Target"));
        c.queries = cJSON_GetObjectItemCaseSensitive(body, "OtaTargetQueryString") != NULL;
        cJSON_Delete(body);
    } else if (otr_json_each_member(a->desired.spec_json, strlen(a->desired.spec_json), on_sent, &c,
                                    &bad) == -1) {
        /* the spec is what is sent: read in its text, not made a tree */
        return; /* not JSON: cannot be, it was written as canonical JSON */
    }
    __atomic_add_fetch(&r->tasks, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&r->things, c.things, __ATOMIC_RELAXED);
    __atomic_add_fetch(&r->queries, c.queries, __ATOMIC_RELAXED);
}

/* Fewer actions than this are counted on the caller's thread. */
#define REACH_MIN_PARALLEL 256

void otr_render_plan_reach(const otr_plan *p, otr_buf *out)
{
    reach r = {.p = p};
    otr_parallel_for(p->count, REACH_MIN_PARALLEL, reach_at, &r);
    if (!r.tasks)
        return;
    otr_buf_printf(out, "Devices: %ld task%s to create send firmware to ", r.tasks,
                   r.tasks == 1 ? "" : "s");
    if (r.things)
        otr_buf_printf(out, "%ld thing%s by name%s", r.things, r.things == 1 ? "" : "s",
                       r.queries ? " and " : "");
    if (r.queries)
        otr_buf_printf(out, "the things of %ld target quer%s", r.queries,
                       r.queries == 1 ? "y" : "ies");
    otr_buf_putc(out, '.');
}

/* What the unit's head will do, in words. */
static void unit_text(const otr_plan *p, size_t head, otr_buf *out)
{
    const otr_action *a = &p->actions[head];
    const char *noun = "resource";
    size_t moves = 0;
    for (size_t j = 0; j < p->count; j++)
        if (j != head && unit_of(p, j) == head && !p->actions[j].retired) {
            moves++;
            noun = p->actions[j].resource->noun;
        }
    otr_buf_printf(out, "creates the new %s first", a->resource->noun);
    if (moves)
        otr_buf_printf(out, ", moves %zu %s%s to it", moves, noun, moves == 1 ? "" : "s");
    otr_buf_printf(out, ", then deletes the old one (%s) once nothing refers to it", a->old.id);
}

/* Each line of the guards' text, with a prefix. */
static void guard_lines(otr_buf *out, const char *warnings, const char *prefix, const char *suffix)
{
    for (const char *p = warnings; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        otr_buf_printf(out, "%s%.*s%s", prefix, (int)len, p, suffix);
        p += len + (nl != NULL);
    }
}

/* ---- text ------------------------------------------------------------------------ */

static void text_action(const otr_plan *p, size_t i, const char *indent, int w, otr_buf *out,
                        int color)
{
    /* appends, not printf: a plan of 10k creates is these lines */
    const otr_action *a = &p->actions[i];
    otr_buf name = OTR_BUF_INIT;
    otr_address_short(&name, a->resource, a->name);
    otr_buf_puts(out, indent);
    otr_buf_puts(out, "  ");
    if (color) {
        otr_buf_puts(out, "\033[");
        otr_buf_puts(out, colors[a->kind]);
        otr_buf_putc(out, 'm');
    }
    otr_buf_put_padded(out, symbols[a->kind], 3);
    otr_buf_putc(out, ' ');
    otr_buf_put_padded(out, otr_action_kind_name(a->kind), 7);
    if (color)
        otr_buf_puts(out, "\033[0m");
    otr_buf_putc(out, ' ');
    otr_buf_put_padded(out, otr_buf_cstr(&name), w > 0 ? (size_t)w : 0);
    otr_buf_free(&name);
    if (a->kind == OTR_ACT_RESUME)
        otr_buf_printf(out, " (%s)", otr_op_name(a->resume_op));
    if (a->old.id &&
        !a->resource->plans_itself) /* a kind that plans itself says it in its reason */
        otr_buf_printf(out, " (%s%s %s)", a->retired ? "old " : "", a->resource->noun, a->old.id);
    if (file_of(a)) {
        otr_buf_puts(out, "  ");
        otr_buf_puts(out, file_of(a));
        if (a->line) {
            otr_buf_putc(out, ':');
            otr_buf_put_long(out, a->line);
        }
    }
    otr_buf_putc(out, '\n');
    if (otr_action_cancels(a)) {
        otr_buf_printf(out, "%s        %s", indent,
                       color ? "\033[1;33mwarning:\033[0m " : "warning: ");
        cancel_text(out, a);
        otr_buf_putc(out, '\n');
    }
    if (otr_action_replaces(a)) {
        otr_buf_printf(out, "%s        ", indent);
        unit_text(p, i, out);
        otr_buf_putc(out, '\n');
    }
    if (a->reason)
        otr_buf_printf(out, "%s        %s\n", indent, a->reason);
    otr_buf what = OTR_BUF_INIT; /* the describe hooks begin with an empty buffer */
    otr_render_action_describe(&what, a);
    if (what.len) {
        otr_buf_puts(out, indent);
        otr_buf_puts(out, "        ");
        otr_buf_append(out, what.ptr, what.len);
        otr_buf_putc(out, '\n');
    }
    otr_buf_free(&what);
    for (size_t c = 0; c < a->nchanges; c++) {
        otr_buf_printf(out, "%s        %s: ", indent, a->changes[c].field);
        value_text(out, a->changes[c].old_value);
        otr_buf_puts(out, " -> ");
        value_text(out, a->changes[c].new_value);
        otr_buf_putc(out, '\n');
    }
}

void otr_render_signer(const cJSON *s, otr_buf *out)
{
    const char *format = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "format"));
    if (!s)
        return;
    otr_buf_printf(out, "signed by %s, %s%s %s",
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "principal")),
                   format && !strcmp(format, "openpgp") ? "OpenPGP " : "",
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "key")),
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "fingerprint")));
}

static void signer_text(const otr_plan *p, otr_buf *out)
{
    otr_render_signer(p->signed_by, out);
}

/* A plan of 100k creates is megabytes of text: written out as it is made
 * when a stream is given, in pieces of about this size. */
#define RENDER_FLUSH_BYTES ((size_t)64 * 1024)

static void flush_to(FILE *stream, otr_buf *out, int color)
{
    if (stream && out->len >= RENDER_FLUSH_BYTES) {
        otr_text_sanitize(out, 0, color);
        fwrite(out->ptr, 1, out->len, stream);
        otr_buf_clear(out);
    }
}

static void render_text(const otr_plan *p, const char *warnings, otr_buf *out, int color,
                        FILE *stream);

void otr_render_plan_text(const otr_plan *p, const char *warnings, otr_buf *out, int color)
{
    size_t start = out->len;
    render_text(p, warnings, out, color, NULL);
    otr_text_sanitize(out, start, color);
}

void otr_render_plan_text_to(FILE *stream, const otr_plan *p, const char *warnings, int color)
{
    otr_buf out = OTR_BUF_INIT;
    render_text(p, warnings, &out, color, stream);
    otr_text_sanitize(&out, 0, color);
    fputs(otr_buf_cstr(&out), stream);
    otr_buf_free(&out);
}

/* Drift apart from changes: what the service changed or lost behind
 * ota-runner's back (--refresh full), one line each; the actions that put
 * it back are in the plan beside the manifests' changes. */
static void drift_lines(const otr_plan *p, otr_buf *out, const char *indent, int md)
{
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *a = &p->actions[i];
        if (!a->drift)
            continue;
        otr_buf_printf(out, "%s%s", indent, md ? "`" : "");
        otr_address_short(out, a->resource, a->name);
        otr_buf_puts(out, md ? "`: " : ": ");
        if (a->kind == OTR_ACT_CREATE) {
            otr_buf_printf(out, "its %s %s is gone from the service", a->resource->noun,
                           a->old.id ? a->old.id : "");
        } else {
            otr_buf_printf(out, "the service's %s differs in", a->resource->noun);
            for (size_t c = 0; c < a->nchanges; c++)
                otr_buf_printf(out, "%s %s", c ? "," : "", a->changes[c].field);
        }
        otr_buf_putc(out, '\n');
    }
}

static size_t drift_count(const otr_plan *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->count; i++)
        n += p->actions[i].drift != 0;
    return n;
}

static void render_text(const otr_plan *p, const char *warnings, otr_buf *out, int color,
                        FILE *stream)
{
    otr_buf_printf(out, "Plan for %s at %.12s (state serial %ld)\n",
                   p->path ? p->path : "manifests", p->commit ? p->commit : "?", p->serial);
    if (p->signed_by) {
        otr_buf_puts(out, "Commit ");
        signer_text(p, out);
        otr_buf_putc(out, '\n');
    }
    otr_buf_putc(out, '\n');
    if (drift_count(p)) {
        otr_buf_puts(out, "Drift: the service changed or lost these behind ota-runner's back (the "
                          "actions below put them back):\n");
        drift_lines(p, out, "  ", 0);
        otr_buf_putc(out, '\n');
    }
    int w = 4;
    otr_buf name = OTR_BUF_INIT;
    for (size_t i = 0; i < p->count; i++) {
        if (p->actions[i].kind == OTR_ACT_NOOP)
            continue;
        otr_buf_clear(&name);
        otr_address_short(&name, p->actions[i].resource, p->actions[i].name);
        if ((int)name.len > w)
            w = (int)name.len;
    }
    otr_buf_free(&name);
    ahead said = {.p = p, .width = w, .color = color};
    for (size_t i = 0; i < p->count; i++) {
        if (p->actions[i].kind == OTR_ACT_NOOP || unit_of(p, i) != i)
            continue;
        ahead_to(&said, i);
        lines_of(&said, i, out);
        for (int retired = 0; retired < 2 && unit_members(p, i); retired++)
            for (size_t j = 0; j < p->count; j++)
                if (j != i && unit_of(p, j) == i && p->actions[j].retired == retired)
                    lines_of(&said, j, out);
        flush_to(stream, out, color);
    }
    ahead_free(&said);
    for (size_t i = 0; i < p->nnotes; i++) {
        otr_buf_printf(out, "  note: %s\n", p->notes[i]);
        flush_to(stream, out, color);
    }
    if (otr_plan_changes(p) || p->counts[OTR_ACT_ORPHAN] || p->nnotes)
        otr_buf_putc(out, '\n');
    for (size_t i = 0; i < p->ndetails; i++) {
        const otr_kind_behaviour *bh = view_owner(&p->details[i]);
        if (!bh || !bh->view_text)
            continue;
        bh->view_text(out, p->details[i].name, p->details[i].view, "");
        otr_buf_putc(out, '\n');
    }
    otr_render_plan_summary(p, out);
    otr_buf_putc(out, '\n');
    size_t before = out->len;
    otr_render_plan_reach(p, out);
    if (out->len > before)
        otr_buf_putc(out, '\n');
    if (warnings && *warnings) {
        otr_buf_putc(out, '\n');
        guard_lines(out, warnings,
                    color ? "\033[1;33mWarning:\033[0m apply would refuse: "
                          : "Warning: apply would refuse: ",
                    "\n");
    }
}

/* ---- markdown -------------------------------------------------------------------- */

static void md_row(const otr_plan *p, size_t i, int member, otr_buf *out)
{
    const otr_action *a = &p->actions[i];
    otr_buf name = OTR_BUF_INIT;
    otr_address_short(&name, a->resource, a->name);
    otr_buf_printf(out, "| %s`%s` | %s | `", member ? "↳ " : "", symbols[a->kind],
                   otr_action_kind_name(a->kind));
    otr_md_cell(out, otr_buf_cstr(&name));
    otr_buf_free(&name);
    otr_buf_puts(out, "` | ");
    if (file_of(a)) {
        otr_md_cell(out, file_of(a));
        if (a->line)
            otr_buf_printf(out, ":%u", a->line);
    }
    otr_buf_puts(out, " | ");
    const char *sep = "";
    if (otr_action_cancels(a)) {
        otr_buf_puts(out, "**warning:** ");
        cancel_text(out, a);
        sep = " — ";
    }
    if (otr_action_replaces(a)) {
        otr_buf_puts(out, sep);
        otr_buf u = OTR_BUF_INIT;
        unit_text(p, i, &u);
        otr_md_cell(out, otr_buf_cstr(&u));
        otr_buf_free(&u);
        sep = " — ";
    }
    if (a->nchanges)
        otr_buf_puts(out, sep);
    for (size_t c = 0; c < a->nchanges; c++)
        otr_buf_printf(out, "%s`%s`", c ? ", " : "", a->changes[c].field);
    if (a->nchanges)
        sep = " — ";
    if (a->reason) {
        otr_buf_puts(out, sep);
        otr_md_cell(out, a->reason);
        sep = " — ";
    }
    otr_buf what = OTR_BUF_INIT;
    otr_render_action_describe(&what, a);
    if (what.len) {
        otr_buf_puts(out, sep);
        otr_md_cell(out, otr_buf_cstr(&what));
    }
    otr_buf_free(&what);
    otr_buf_puts(out, " |\n");
}

static void render_markdown(const otr_plan *p, const char *warnings, otr_buf *out);

void otr_markdown_cap(otr_buf *out, size_t start, size_t limit, const char *what)
{
    static const char note[] = "\n> [!NOTE]\n> Cut to fit a pull-request comment: %zu of %zu "
                               "lines shown. The whole %s is in the job's log (ota-runner %s "
                               "--output text).\n";
    static const char close[] = "\n</details>\n";
    size_t reserve = sizeof(note) + 64 + 4 * sizeof(close), safe = start, lines = 0, shown = 0;
    int fence = 0, details = 0, open_at_safe = 0;
    if (out->len - start <= limit)
        return;
    for (size_t at = start; at < out->len;) {
        const char *line = out->ptr + at, *nl = memchr(line, '\n', out->len - at);
        size_t len = nl ? (size_t)(nl - line) + 1 : out->len - at;
        if (len >= 3 && !strncmp(line, "```", 3))
            fence = !fence;
        else if (!fence && !strncmp(line, "<details>", 9 < len ? 9 : len))
            details++;
        else if (!fence && details && len >= 10 && !strncmp(line, "</details>", 10))
            details--;
        at += len;
        lines++;
        /* a cut inside a <details> block closes it after the last row kept */
        if (at - start + reserve <= limit && !fence && details <= 4) {
            safe = at;
            shown = lines;
            open_at_safe = details;
        }
    }
    out->len = safe;
    out->ptr[safe] = '\0';
    while (open_at_safe-- > 0)
        otr_buf_puts(out, close);
    otr_buf_printf(out, note, shown, lines, what, what);
}

void otr_render_plan_markdown(const otr_plan *p, const char *warnings, otr_buf *out)
{
    size_t start = out->len;
    render_markdown(p, warnings, out);
    otr_markdown_cap(out, start, OTR_MARKDOWN_MAX_COMMENT, "plan");
}

static void render_markdown(const otr_plan *p, const char *warnings, otr_buf *out)
{
    otr_buf summary = OTR_BUF_INIT;
    otr_render_plan_summary(p, &summary);
    otr_buf_printf(out, "### ota-runner plan\n\n`%s` at `%.12s` · state serial %ld",
                   p->path ? p->path : "manifests", p->commit ? p->commit : "?", p->serial);
    if (p->signed_by) {
        otr_buf_puts(out, " · ");
        signer_text(p, out);
    }
    otr_buf_printf(out, "\n\n**%s**\n\n", summary.ptr);
    size_t before = out->len;
    otr_render_plan_reach(p, out);
    if (out->len > before)
        otr_buf_puts(out, "\n\n");
    otr_buf_free(&summary);
    if (drift_count(p)) {
        otr_buf_puts(out, "#### Drift\n\nThe service changed or lost these behind ota-runner's "
                          "back; the actions below put them back:\n\n");
        drift_lines(p, out, "- ", 1);
        otr_buf_putc(out, '\n');
    }
    guard_lines(out, warnings, "> [!WARNING]\n> apply would refuse: ", "\n\n");
    if (otr_plan_changes(p) || p->counts[OTR_ACT_ORPHAN]) {
        static const char header[] =
            "| | Action | Manifest | File | Changes |\n|---|---|---|---|---|\n";
        size_t units = 0, shown = 0;
        for (size_t i = 0; i < p->count; i++)
            units += p->actions[i].kind != OTR_ACT_NOOP && unit_of(p, i) == i;
        otr_buf_puts(out, header);
        for (size_t i = 0; i < p->count; i++) {
            if (p->actions[i].kind == OTR_ACT_NOOP || unit_of(p, i) != i)
                continue;
            if (shown++ == OTR_MARKDOWN_FOLD_AFTER && units > OTR_MARKDOWN_FOLD_AFTER)
                otr_buf_printf(out, "\n<details><summary>%zu more</summary>\n\n%s",
                               units - OTR_MARKDOWN_FOLD_AFTER, header);
            md_row(p, i, 0, out);
            for (int retired = 0; retired < 2 && unit_members(p, i); retired++)
                for (size_t j = 0; j < p->count; j++)
                    if (j != i && unit_of(p, j) == i && p->actions[j].retired == retired)
                        md_row(p, j, 1, out);
        }
        otr_buf_puts(out, units > OTR_MARKDOWN_FOLD_AFTER ? "\n</details>\n\n" : "\n");
        for (size_t i = 0; i < p->count; i++) {
            const otr_action *a = &p->actions[i];
            if (!a->nchanges)
                continue;
            otr_buf name = OTR_BUF_INIT;
            otr_address_short(&name, a->resource, a->name);
            otr_buf_printf(out, "<details><summary>%s <code>", otr_action_kind_name(a->kind));
            otr_md_cell(out, otr_buf_cstr(&name));
            otr_buf_free(&name);
            otr_buf_puts(out, "</code></summary>\n\n```diff\n");
            for (size_t c = 0; c < a->nchanges; c++) {
                otr_buf_printf(out, "- %s: ", a->changes[c].field);
                value_text(out, a->changes[c].old_value);
                otr_buf_printf(out, "\n+ %s: ", a->changes[c].field);
                value_text(out, a->changes[c].new_value);
                otr_buf_putc(out, '\n');
            }
            otr_buf_puts(out, "```\n\n</details>\n\n");
        }
    }
    for (size_t i = 0; i < p->nnotes; i++) {
        if (i == OTR_MARKDOWN_FOLD_AFTER)
            otr_buf_printf(out, "\n<details><summary>%zu more notes</summary>\n\n",
                           p->nnotes - OTR_MARKDOWN_FOLD_AFTER);
        otr_buf_puts(out, i < OTR_MARKDOWN_FOLD_AFTER ? "> " : "- ");
        otr_md_cell(out, p->notes[i]);
        otr_buf_puts(out, "\n");
    }
    if (p->nnotes > OTR_MARKDOWN_FOLD_AFTER)
        otr_buf_puts(out, "\n</details>\n");
    for (size_t i = 0; i < p->ndetails; i++) {
        const otr_kind_behaviour *bh = view_owner(&p->details[i]);
        if (!bh || !bh->view_markdown)
            continue;
        if (bh->views_title && (i == 0 || p->details[i - 1].kind != p->details[i].kind))
            otr_buf_printf(out, "%s#### %s\n\n", p->nnotes || i ? "\n" : "", bh->views_title);
        bh->view_markdown(out, p->details[i].name, p->details[i].view);
    }
}

/* ---- GitHub -------------------------------------------------------------------------- */

void otr_render_plan_github(const otr_plan *p, const char *warnings, otr_buf *out)
{
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *a = &p->actions[i];
        if (a->kind == OTR_ACT_NOOP)
            continue;
        otr_buf_printf(out, "::%s ",
                       a->kind == OTR_ACT_ORPHAN || a->kind == OTR_ACT_DELETE ||
                               a->kind == OTR_ACT_REPLACE
                           ? "warning"
                           : "notice");
        if (file_of(a)) {
            otr_buf_puts(out, "file=");
            otr_github_escape(out, file_of(a), 1);
            if (a->line)
                otr_buf_printf(out, ",line=%u", a->line);
            otr_buf_putc(out, ',');
        }
        otr_buf text = OTR_BUF_INIT;
        otr_buf_printf(&text, "%s ", otr_action_kind_name(a->kind));
        otr_address_short(&text, a->resource, a->name);
        for (size_t c = 0; c < a->nchanges; c++)
            otr_buf_printf(&text, "%s%s", c ? ", " : " (", a->changes[c].field);
        if (a->nchanges)
            otr_buf_putc(&text, ')');
        if (a->reason)
            otr_buf_printf(&text, ": %s", a->reason);
        if (otr_action_replaces(a)) {
            otr_buf_puts(&text, "; ");
            unit_text(p, i, &text);
        }
        if (otr_action_cancels(a)) {
            otr_buf_puts(&text, "; ");
            cancel_text(&text, a);
        }
        otr_buf_printf(out, "title=ota-runner plan: %s::", otr_action_kind_name(a->kind));
        otr_github_escape(out, otr_buf_cstr(&text), 0);
        otr_buf_putc(out, '\n');
        otr_buf_free(&text);
    }
    if (p->signed_by) {
        otr_buf who = OTR_BUF_INIT;
        otr_buf_printf(&who, "commit %.12s ", p->commit ? p->commit : "?");
        signer_text(p, &who);
        otr_buf_puts(out, "::notice title=ota-runner plan: signature::");
        otr_github_escape(out, otr_buf_cstr(&who), 0);
        otr_buf_putc(out, '\n');
        otr_buf_free(&who);
    }
    for (size_t i = 0; i < p->ndetails; i++) {
        const otr_kind_behaviour *bh = view_owner(&p->details[i]);
        if (bh && bh->view_github)
            bh->view_github(out, p->details[i].name, p->details[i].view);
    }
    for (const char *w = warnings; w && *w;) {
        const char *nl = strchr(w, '\n');
        size_t len = nl ? (size_t)(nl - w) : strlen(w);
        otr_buf line = OTR_BUF_INIT;
        otr_buf_append(&line, w, len);
        otr_buf_puts(out, "::warning title=ota-runner plan: apply would refuse::");
        otr_github_escape(out, otr_buf_cstr(&line), 0);
        otr_buf_putc(out, '\n');
        otr_buf_free(&line);
        w += len + (nl != NULL);
    }
    otr_render_plan_summary(p, out);
    otr_buf_putc(out, '\n');
}
