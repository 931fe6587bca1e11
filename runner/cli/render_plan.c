/* Plan renderers: text, markdown, GitHub annotations. */
#include "cli/render_plan.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

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

void otr_render_plan_summary(const otr_plan *p, otr_buf *out)
{
    const size_t *c = p->counts;
    if (otr_plan_changes(p) == 0) {
        otr_buf_printf(out, "No changes. %zu task%s match the manifests", c[OTR_ACT_NOOP],
                       c[OTR_ACT_NOOP] == 1 ? "" : "s");
        if (c[OTR_ACT_ORPHAN])
            otr_buf_printf(out, "; %zu orphaned", c[OTR_ACT_ORPHAN]);
        otr_buf_puts(out, ".");
        return;
    }
    otr_buf_printf(out, "Plan: %zu to create, %zu to update, %zu to replace, %zu to delete",
                   c[OTR_ACT_CREATE], c[OTR_ACT_UPDATE], c[OTR_ACT_REPLACE], c[OTR_ACT_DELETE]);
    if (c[OTR_ACT_RESUME])
        otr_buf_printf(out, ", %zu to resume", c[OTR_ACT_RESUME]);
    otr_buf_printf(out, "; %zu unchanged", c[OTR_ACT_NOOP]);
    if (c[OTR_ACT_ORPHAN])
        otr_buf_printf(out, ", %zu orphaned", c[OTR_ACT_ORPHAN]);
    otr_buf_puts(out, ".");
}

/* "task X is IN_PROGRESS: deleting it cancels its devices' executions" */
static void cancel_text(otr_buf *out, const otr_action *a)
{
    otr_buf_printf(out, "task %s is %s: deleting it cancels its devices' executions",
                   a->old.task_id, otr_action_cancels(a));
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

void otr_render_plan_text(const otr_plan *p, const char *warnings, otr_buf *out, int color)
{
    otr_buf_printf(out, "Plan for %s at %.12s (state serial %ld)\n\n",
                   p->path ? p->path : "manifests", p->commit ? p->commit : "?", p->serial);
    int w = 4;
    for (size_t i = 0; i < p->count; i++)
        if (p->actions[i].kind != OTR_ACT_NOOP && (int)strlen(p->actions[i].name) > w)
            w = (int)strlen(p->actions[i].name);
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *a = &p->actions[i];
        if (a->kind == OTR_ACT_NOOP)
            continue;
        if (color)
            otr_buf_printf(out, "  \033[%sm%-3s %-7s\033[0m %-*s", colors[a->kind],
                           symbols[a->kind], otr_action_kind_name(a->kind), w, a->name);
        else
            otr_buf_printf(out, "  %-3s %-7s %-*s", symbols[a->kind], otr_action_kind_name(a->kind),
                           w, a->name);
        if (a->kind == OTR_ACT_RESUME)
            otr_buf_printf(out, " (%s)", otr_op_name(a->resume_op));
        if (a->old.task_id)
            otr_buf_printf(out, " (task %s)", a->old.task_id);
        if (file_of(a)) {
            otr_buf_printf(out, "  %s", file_of(a));
            if (a->line)
                otr_buf_printf(out, ":%u", a->line);
        }
        otr_buf_putc(out, '\n');
        if (otr_action_cancels(a)) {
            otr_buf_puts(out, color ? "        \033[1;33mwarning:\033[0m " : "        warning: ");
            cancel_text(out, a);
            otr_buf_putc(out, '\n');
        }
        if (a->reason)
            otr_buf_printf(out, "        %s\n", a->reason);
        for (size_t c = 0; c < a->nchanges; c++) {
            otr_buf_printf(out, "        %s: ", a->changes[c].field);
            value_text(out, a->changes[c].old_value);
            otr_buf_puts(out, " -> ");
            value_text(out, a->changes[c].new_value);
            otr_buf_putc(out, '\n');
        }
    }
    for (size_t i = 0; i < p->nnotes; i++)
        otr_buf_printf(out, "  note: %s\n", p->notes[i]);
    if (otr_plan_changes(p) || p->counts[OTR_ACT_ORPHAN] || p->nnotes)
        otr_buf_putc(out, '\n');
    otr_render_plan_summary(p, out);
    otr_buf_putc(out, '\n');
    if (warnings && *warnings) {
        otr_buf_putc(out, '\n');
        guard_lines(out, warnings,
                    color ? "\033[1;33mWarning:\033[0m apply would refuse: "
                          : "Warning: apply would refuse: ",
                    "\n");
    }
}

/* Markdown table cells may not hold '|' or newlines. */
static void md_cell(otr_buf *out, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            otr_buf_puts(out, "\\|");
        else if (*s == '\n')
            otr_buf_putc(out, ' ');
        else if (*s == '<')
            otr_buf_puts(out, "&lt;");
        else
            otr_buf_putc(out, *s);
    }
}

void otr_render_plan_markdown(const otr_plan *p, const char *warnings, otr_buf *out)
{
    otr_buf summary = OTR_BUF_INIT;
    otr_render_plan_summary(p, &summary);
    otr_buf_printf(out, "### ota-runner plan\n\n`%s` at `%.12s` · state serial %ld\n\n**%s**\n\n",
                   p->path ? p->path : "manifests", p->commit ? p->commit : "?", p->serial,
                   summary.ptr);
    otr_buf_free(&summary);
    guard_lines(out, warnings, "> [!WARNING]\n> apply would refuse: ", "\n\n");
    if (otr_plan_changes(p) || p->counts[OTR_ACT_ORPHAN]) {
        otr_buf_puts(out, "| | Action | Manifest | File | Changes |\n|---|---|---|---|---|\n");
        for (size_t i = 0; i < p->count; i++) {
            const otr_action *a = &p->actions[i];
            if (a->kind == OTR_ACT_NOOP)
                continue;
            otr_buf_printf(out, "| `%s` | %s | `", symbols[a->kind], otr_action_kind_name(a->kind));
            md_cell(out, a->name);
            otr_buf_puts(out, "` | ");
            if (file_of(a)) {
                md_cell(out, file_of(a));
                if (a->line)
                    otr_buf_printf(out, ":%u", a->line);
            }
            otr_buf_puts(out, " | ");
            if (otr_action_cancels(a)) {
                otr_buf_puts(out, "**warning:** ");
                cancel_text(out, a);
                otr_buf_puts(out, a->nchanges || a->reason ? " — " : "");
            }
            for (size_t c = 0; c < a->nchanges; c++)
                otr_buf_printf(out, "%s`%s`", c ? ", " : "", a->changes[c].field);
            if (a->reason) {
                otr_buf_puts(out, a->nchanges ? " — " : "");
                md_cell(out, a->reason);
            }
            otr_buf_puts(out, " |\n");
        }
        otr_buf_puts(out, "\n");
        for (size_t i = 0; i < p->count; i++) {
            const otr_action *a = &p->actions[i];
            if (!a->nchanges)
                continue;
            otr_buf_printf(out, "<details><summary>%s <code>", otr_action_kind_name(a->kind));
            md_cell(out, a->name);
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
        otr_buf_puts(out, "> ");
        md_cell(out, p->notes[i]);
        otr_buf_puts(out, "\n");
    }
}

void otr_github_escape(otr_buf *out, const char *s, int property)
{
    for (; s && *s; s++) {
        if (*s == '%')
            otr_buf_puts(out, "%25");
        else if (*s == '\r')
            otr_buf_puts(out, "%0D");
        else if (*s == '\n')
            otr_buf_puts(out, "%0A");
        else if (property && *s == ':')
            otr_buf_puts(out, "%3A");
        else if (property && *s == ',')
            otr_buf_puts(out, "%2C");
        else
            otr_buf_putc(out, *s);
    }
}

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
        otr_buf_printf(out, "title=ota-runner plan: %s::%s %s", otr_action_kind_name(a->kind),
                       otr_action_kind_name(a->kind), a->name);
        for (size_t c = 0; c < a->nchanges; c++)
            otr_buf_printf(out, "%s%s", c ? ", " : " (", a->changes[c].field);
        if (a->nchanges)
            otr_buf_putc(out, ')');
        if (a->reason) {
            otr_buf_puts(out, ": ");
            otr_github_escape(out, a->reason, 0);
        }
        if (otr_action_cancels(a)) {
            otr_buf b = OTR_BUF_INIT;
            otr_buf_puts(&b, "; ");
            cancel_text(&b, a);
            otr_github_escape(out, otr_buf_cstr(&b), 0);
            otr_buf_free(&b);
        }
        otr_buf_putc(out, '\n');
    }
    for (const char *w = warnings; w && *w;) {
        const char *nl = strchr(w, '\n');
        size_t len = nl ? (size_t)(nl - w) : strlen(w);
        char *line = strndup(w, len);
        otr_buf_puts(out, "::warning title=ota-runner plan: apply would refuse::");
        otr_github_escape(out, line, 0);
        otr_buf_putc(out, '\n');
        free(line);
        w += len + (nl != NULL);
    }
    otr_render_plan_summary(p, out);
    otr_buf_putc(out, '\n');
}
