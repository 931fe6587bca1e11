/* A staged rollout's waves, for people (see rollout_view.h). */
#include "behaviour/rollout_view.h"

#include "util/escape.h"

#include <string.h>

static const char *str_of(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* What a wave's state rests on, in a few words. */
static void wave_detail(otr_buf *out, const cJSON *w)
{
    const char *state = str_of(w, "state"), *why = str_of(w, "why");
    if (str_of(w, "soakUntil"))
        otr_buf_printf(out, "soaking until %s; ", str_of(w, "soakUntil"));
    if (state && !strcmp(state, "done") && str_of(w, "passedAt"))
        otr_buf_printf(out, "passed %s", str_of(w, "passedAt"));
    else if (why)
        otr_buf_puts(out, why);
}

static int name_width(const cJSON *view)
{
    int w = 4;
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(view, "waves"))
    {
        const char *n = str_of(x, "name");
        if (n && (int)strlen(n) > w)
            w = (int)strlen(n);
    }
    return w;
}

void otr_render_rollout_text(otr_buf *out, const char *name, const cJSON *view, const char *indent)
{
    const cJSON *w, *halt = cJSON_GetObjectItemCaseSensitive(view, "halt");
    int width = name_width(view);
    otr_buf_printf(out, "%sRollout %s (revision %d):\n", indent, name,
                   cJSON_GetObjectItemCaseSensitive(view, "revision")
                       ? cJSON_GetObjectItemCaseSensitive(view, "revision")->valueint
                       : 1);
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(view, "waves"))
    {
        otr_buf detail = OTR_BUF_INIT;
        wave_detail(&detail, w);
        otr_buf line = OTR_BUF_INIT;
        otr_buf_printf(&line, "%s    %-*s  %-26s %-20s %s", indent, width, str_of(w, "name"),
                       str_of(w, "state") ? str_of(w, "state") : "?",
                       str_of(w, "taskId") ? str_of(w, "taskId") : "-", otr_buf_cstr(&detail));
        while (line.len && line.ptr[line.len - 1] == ' ')
            line.ptr[--line.len] = '\0';
        otr_buf_printf(out, "%s\n", otr_buf_cstr(&line));
        otr_buf_free(&line);
        otr_buf_free(&detail);
    }
    if (halt && str_of(halt, "at"))
        otr_buf_printf(out,
                       "%s    halted at wave %s since %s: %s; change that wave's gate or "
                       "metadata.revision to go on\n",
                       indent, str_of(halt, "wave"), str_of(halt, "at"), str_of(halt, "reason"));
    else if (halt)
        otr_buf_printf(out,
                       "%s    halted at wave %s (the next apply records it): %s; change that "
                       "wave's gate or metadata.revision to go on\n",
                       indent, str_of(halt, "wave"), str_of(halt, "reason"));
    if (str_of(view, "next"))
        otr_buf_printf(out, "%s    next: %s\n", indent, str_of(view, "next"));
    if (str_of(view, "promotes"))
        otr_buf_printf(out, "%s    promotes %s to %s (holdAfter moved)\n", indent, name,
                       str_of(view, "promotes"));
}

/* The class of a wave in the picture. */
static const char *wave_class(const cJSON *w, const char *promoted)
{
    const char *state = str_of(w, "state") ? str_of(w, "state") : "";
    if (!strcmp(state, "starts now") || (promoted && !strcmp(str_of(w, "name"), promoted)))
        return "next";
    if (!strcmp(state, "halted"))
        return "halted";
    if (!strcmp(state, "done") || !strncmp(state, "passed", 6))
        return "done";
    if (!strcmp(state, "waiting") || !strcmp(state, "unchanged"))
        return "waiting";
    if (!strcmp(state, "added"))
        return "next";
    return "running";
}

void otr_render_rollout_mermaid(otr_buf *out, const cJSON *view)
{
    const cJSON *w;
    const char *promoted = str_of(view, "promotes");
    int i = 0;
    if (!cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(view, "waves")))
        return; /* nothing to draw */
    otr_buf_puts(out, "```mermaid\nflowchart LR\n");
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(view, "waves"))
    {
        otr_buf_printf(out, "  w%d[\"", i);
        otr_mermaid_text(out, str_of(w, "name"));
        if (str_of(w, "targets")) {
            otr_buf_puts(out, "<br/>");
            otr_mermaid_text(out, str_of(w, "targets"));
        }
        otr_buf_puts(out, "<br/>");
        otr_mermaid_text(out, str_of(w, "state"));
        otr_buf_printf(out, "\"]:::%s\n", wave_class(w, promoted));
        if (i)
            otr_buf_printf(out, "  w%d --> w%d\n", i - 1, i);
        i++;
    }
    otr_buf_puts(out, "  classDef done fill:#dff0d8,stroke:#3c763d\n"
                      "  classDef running fill:#fcf8e3,stroke:#8a6d3b\n"
                      "  classDef halted fill:#f2dede,stroke:#a94442\n"
                      "  classDef waiting fill:#f5f5f5,stroke:#999999\n"
                      "  classDef next fill:#d9edf7,stroke:#31708f,stroke-width:3px\n"
                      "```\n\n");
}

void otr_render_rollout_markdown(otr_buf *out, const char *name, const cJSON *view)
{
    const cJSON *w, *halt = cJSON_GetObjectItemCaseSensitive(view, "halt");
    otr_buf_puts(out, "**Rollout `");
    otr_md_cell(out, name);
    otr_buf_puts(out, "`**");
    if (str_of(view, "promotes")) {
        otr_buf_puts(out, ": promotes ");
        otr_md_cell(out, name);
        otr_buf_puts(out, " to ");
        otr_md_cell(out, str_of(view, "promotes"));
    }
    otr_buf_puts(out, "\n\n");
    otr_render_rollout_mermaid(out, view);
    otr_buf_puts(out, "| Wave | Targets | State | Task | |\n|---|---|---|---|---|\n");
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(view, "waves"))
    {
        otr_buf detail = OTR_BUF_INIT;
        wave_detail(&detail, w);
        otr_buf_puts(out, "| ");
        otr_md_cell(out, str_of(w, "name"));
        otr_buf_puts(out, " | ");
        otr_md_cell(out, str_of(w, "targets"));
        otr_buf_puts(out, " | ");
        otr_md_cell(out, str_of(w, "state"));
        otr_buf_puts(out, " | ");
        otr_md_cell(out, str_of(w, "taskId") ? str_of(w, "taskId") : "");
        otr_buf_puts(out, " | ");
        otr_md_cell(out, otr_buf_cstr(&detail));
        otr_buf_puts(out, " |\n");
        otr_buf_free(&detail);
    }
    otr_buf_putc(out, '\n');
    if (halt) {
        otr_buf_puts(out, "> [!CAUTION]\n> halted at wave ");
        otr_md_cell(out, str_of(halt, "wave"));
        otr_buf_puts(out, ": ");
        otr_md_cell(out, str_of(halt, "reason"));
        otr_buf_puts(out, "\n\n");
    }
    if (str_of(view, "next")) {
        otr_buf_puts(out, "Next: ");
        otr_md_cell(out, str_of(view, "next"));
        otr_buf_puts(out, "\n\n");
    }
}

const char *otr_rollout_view_state(const cJSON *view)
{
    static const char *const by_wave[][2] = {
        {"running", "running"},         {"waiting for the gate", "running"},
        {"starting", "running"},        {"starts now", "running"},
        {"passed, soaking", "soaking"}, {"passed, held by holdAfter", "held"},
        {"passed, paused", "paused"},   {"passed, not recorded", "passed"},
        {"passed", "passed"},           {"done", "complete"},
        {"verdict unknown", "unknown"},
    };
    const cJSON *w;
    const char *newest = NULL;
    if (otr_rollout_view_halted(view))
        return "halted";
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(view, "waves"))
    {
        const char *state = str_of(w, "state");
        if (state && strcmp(state, "waiting")) /* a wave not started says nothing */
            newest = state;
    }
    for (size_t i = 0; newest && i < sizeof(by_wave) / sizeof(by_wave[0]); i++)
        if (!strcmp(newest, by_wave[i][0]))
            return by_wave[i][1];
    return "unknown";
}

int otr_rollout_view_halted(const cJSON *view)
{
    const cJSON *w;
    if (cJSON_GetObjectItemCaseSensitive(view, "halt"))
        return 1;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(view, "waves"))
    {
        const char *state = str_of(w, "state");
        if (state && !strcmp(state, "halted"))
            return 1;
    }
    return 0;
}

const char *otr_rollout_view_promotes(const cJSON *view)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(view, "promotes"));
}

void otr_render_rollout_github(otr_buf *out, const char *name, const cJSON *view)
{
    const cJSON *halt = cJSON_GetObjectItemCaseSensitive(view, "halt");
    const char *to = otr_rollout_view_promotes(view);
    otr_buf text = OTR_BUF_INIT;
    if (to) {
        otr_buf_printf(&text, "promotes %s to %s", name, to);
        otr_buf_puts(out, "::notice title=ota-runner plan: rollout::");
        otr_github_escape(out, otr_buf_cstr(&text), 0);
        otr_buf_putc(out, '\n');
        otr_buf_clear(&text);
    }
    if (otr_rollout_view_halted(view)) {
        otr_buf_printf(&text, "rollout %s is halted", name);
        if (halt)
            otr_buf_printf(&text, " at wave %s: %s",
                           cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(halt, "wave")),
                           cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(halt, "reason")));
        otr_buf_puts(out, "::warning title=ota-runner plan: rollout halted::");
        otr_github_escape(out, otr_buf_cstr(&text), 0);
        otr_buf_putc(out, '\n');
    }
    otr_buf_free(&text);
}

const char *const otr_rollout_metric_families[] = {
    "ota_runner_rollout_wave_devices\tgauge\tDevices of a rollout's newest wave by status, as "
    "the service counted them at this run",
    "ota_runner_rollout_halted\tgauge\t1 when the rollout is halted",
    NULL,
};

static void sample(cJSON *out, const char *family, const char *rollout, const char *wave,
                   const char *status, double value)
{
    cJSON *x = cJSON_CreateObject(), *labels = cJSON_AddObjectToObject(x, "labels");
    cJSON_AddStringToObject(x, "family", family);
    cJSON_AddStringToObject(labels, "rollout", rollout);
    if (wave)
        cJSON_AddStringToObject(labels, "wave", wave);
    if (status)
        cJSON_AddStringToObject(labels, "status", status);
    cJSON_AddNumberToObject(x, "value", value);
    cJSON_AddItemToArray(out, x);
}

void otr_rollout_view_metrics(const char *name, const cJSON *view, cJSON *out)
{
    static const char *const statuses[] = {"succeeded", "failed", "running", "queued"};
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(view, "waves"))
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(w, "counts");
        for (size_t i = 0; c && i < sizeof(statuses) / sizeof(statuses[0]); i++) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, statuses[i]);
            if (cJSON_IsNumber(n))
                sample(out, "ota_runner_rollout_wave_devices", name, str_of(w, "name"), statuses[i],
                       n->valuedouble);
        }
    }
    sample(out, "ota_runner_rollout_halted", name, NULL, NULL, otr_rollout_view_halted(view));
}
