/* ota-runner status: every recorded resource with what the service says of
 * it; a staged rollout's waves as the next apply would judge them. */
#include "cli/commands.h"
#include "behaviour/behaviour.h"
#include "util/escape.h"
#include "cli/planning.h"
#include "cli/render_state.h"
#include "sync/refresh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct row {
    const otr_record *rec;
    otr_remote got;
    int missing;
    char *error;
    otr_aws_call *call;
    cJSON *view;                  /* a kind with a status view (a rollout's waves), or NULL */
    const otr_kind_behaviour *bh; /* the view's owner, who renders it */
    int retired;        /* a retired resource (an old configuration, an older revision's wave) */
    otr_aws_call *page; /* the first page of its devices, when a view judges its failures */
    char *failed;       /* the first failed devices it names, or NULL */
    char *drift;        /* the fields the service changed behind ota-runner's back, or NULL */
    otr_aws_client *client;
} row;

static void on_page(otr_aws_call *call, void *ctx)
{
    row *r = ctx;
    r->failed = otr_failed_devices(r->rec->kind, call, &r->got.counts);
}

static void on_get(otr_aws_call *call, void *ctx)
{
    row *r = ctx;
    otr_error err = OTR_ERROR_INIT;
    if (!call->ok && call->status == 404) {
        r->missing = 1;
        return;
    }
    if (r->rec->kind->api->parse_get(call, &r->got, &err) < 0)
        r->error = strdup(otr_error_message(&err));
    else if (otr_behaviour_of(r->rec->kind) && !r->retired &&
             (r->page = otr_failed_devices_call(r->rec->kind, r->rec->id, &r->got.counts))) {
        r->page->done = on_page; /* a halt names them */
        r->page->ctx = r;
        otr_aws_client_submit(r->client, r->page);
    }
    otr_error_clear(&err);
}

/* MISSING, ERROR, the status the service reports, or "exists" for a kind
 * without one. */
static const char *status_of(const row *r)
{
    return r->missing      ? "MISSING"
           : r->error      ? "ERROR"
           : r->got.status ? r->got.status
                           : (r->got.id ? "EXISTS" : "UNKNOWN");
}

/* What the STATUS column shows: a kind with a view (a rollout) its own state
 * (its newest task's status is in its view), the others the service's word. */
static const char *shown_status(const row *r)
{
    return r->view && r->bh->view_state ? r->bh->view_state(r->view) : status_of(r);
}

/* The views of the kinds that have one (a rollout's waves, judged on its
 * newest wave's counts now, by the service's clock); returns how many are
 * halted. */
static size_t judge(row *rows, size_t n, int64_t now)
{
    size_t halted = 0;
    for (size_t i = 0; i < n; i++) {
        const otr_record *rec = rows[i].rec;
        const otr_kind_behaviour *bh = otr_behaviour_of(rec->kind);
        if (!bh || !bh->status_view || rows[i].error || rows[i].retired)
            continue;
        otr_remote_item item = {
            .id = rec->id,
            .status = rows[i].got.status,
            .counts = rows[i].got.counts.present ? &rows[i].got.counts : NULL,
            .failed_devices = rows[i].failed,
        };
        rows[i].view = bh->status_view(rec, rows[i].missing ? NULL : &item, now);
        rows[i].bh = bh;
        halted += rows[i].view && bh->view_halted && bh->view_halted(rows[i].view);
    }
    return halted;
}

#define BAR_WIDTH 20

/* A bar of a task's devices, BAR_WIDTH cells: '#' succeeded, 'x' failed
 * (and timed out, rejected), '>' running, '.' queued, ' ' the rest
 * (canceled, removed); in colour on a terminal. Each share gets at least a
 * cell when it is not zero. */
static void status_bar(otr_buf *out, const otr_ota_counts *c, int color)
{
    static const char marks[] = {'#', 'x', '>', '.'};
    static const char *const colors[] = {"32", "31", "33", "2"};
    long parts[4] = {c->succeeded, c->failed + c->timed_out + c->rejected, c->in_progress,
                     c->queued};
    long total = parts[0] + parts[1] + parts[2] + parts[3] + c->canceled + c->removed;
    int cells[4], used = 0;
    for (int k = 0; k < 4; k++) {
        cells[k] = total ? (int)(parts[k] * BAR_WIDTH / total) : 0;
        if (parts[k] && !cells[k])
            cells[k] = 1;
        used += cells[k];
    }
    for (int k = 3; used > BAR_WIDTH && k >= 0; k--) /* the rounding up of small shares */
        while (used > BAR_WIDTH && cells[k] > 1)
            cells[k]--, used--;
    otr_buf_putc(out, '[');
    for (int k = 0; k < 4; k++) {
        if (!cells[k])
            continue;
        if (color)
            otr_buf_printf(out, "\033[%sm", colors[k]);
        for (int i = 0; i < cells[k]; i++)
            otr_buf_putc(out, marks[k]);
        if (color)
            otr_buf_puts(out, "\033[0m");
    }
    for (int i = used; i < BAR_WIDTH; i++)
        otr_buf_putc(out, ' ');
    otr_buf_putc(out, ']');
}

/* The same table in markdown, for a job summary. */
static void print_markdown(const row *rows, size_t n, const otr_state *s)
{
    otr_buf out = OTR_BUF_INIT;
    otr_buf_puts(&out,
                 "### ota-runner status\n\n| Name | ID | Status | Succeeded | Failed | Running | "
                 "Queued | Devices |\n|---|---|---|---:|---:|---:|---:|---|\n");
    for (size_t i = 0; i < n; i++) {
        const otr_ota_counts *c = &rows[i].got.counts;
        otr_buf_puts(&out, "| `");
        otr_address_short(&out, rows[i].rec->kind, rows[i].rec->name);
        otr_buf_printf(&out, "` | %s | %s |", rows[i].rec->id ? rows[i].rec->id : "-",
                       shown_status(&rows[i]));
        if (c->present) {
            otr_buf_printf(&out, " %ld | %ld | %ld | %ld | `", c->succeeded,
                           c->failed + c->timed_out + c->rejected, c->in_progress, c->queued);
            status_bar(&out, c, 0);
            otr_buf_puts(&out, "` |\n");
        } else {
            otr_buf_puts(&out, " | | | | |\n");
        }
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].view && rows[i].bh->view_markdown) {
            otr_buf_putc(&out, '\n');
            rows[i].bh->view_markdown(&out, rows[i].rec->name, rows[i].view);
        }
    otr_buf_putc(&out, '\n');
    otr_render_state_counts(s, &out);
    otr_buf_putc(&out, '\n');
    fputs(otr_buf_cstr(&out), stdout);
    otr_buf_free(&out);
}

static void print_json(const row *rows, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *x = cJSON_CreateObject();
        const otr_record *rec = rows[i].rec;
        const otr_ota_counts *c = &rows[i].got.counts;
        otr_buf a = OTR_BUF_INIT;
        otr_address_full(&a, rec->kind, rec->name);
        cJSON_AddStringToObject(x, "name", rec->name);
        cJSON_AddStringToObject(x, "kind", rec->kind->name);
        cJSON_AddStringToObject(x, "address", otr_buf_cstr(&a));
        otr_buf_free(&a);
        cJSON_AddStringToObject(x, rec->kind->id_key, rec->id ? rec->id : "");
        cJSON_AddStringToObject(x, "status", status_of(&rows[i]));
        if (rows[i].view && rows[i].bh->view_state)
            cJSON_AddStringToObject(x, "state", rows[i].bh->view_state(rows[i].view));
        if (rows[i].retired)
            cJSON_AddBoolToObject(x, "retired", 1);
        if (rows[i].error)
            cJSON_AddStringToObject(x, "error", rows[i].error);
        if (c->present) {
            cJSON *k = cJSON_AddObjectToObject(x, "counts");
            cJSON_AddNumberToObject(k, "queued", (double)c->queued);
            cJSON_AddNumberToObject(k, "inProgress", (double)c->in_progress);
            cJSON_AddNumberToObject(k, "succeeded", (double)c->succeeded);
            cJSON_AddNumberToObject(k, "failed", (double)c->failed);
            cJSON_AddNumberToObject(k, "timedOut", (double)c->timed_out);
            cJSON_AddNumberToObject(k, "canceled", (double)c->canceled);
            cJSON_AddNumberToObject(k, "rejected", (double)c->rejected);
            cJSON_AddNumberToObject(k, "removed", (double)c->removed);
        }
        if (rows[i].drift)
            cJSON_AddStringToObject(x, "drift", rows[i].drift);
        if (rows[i].view) /* under the kind's noun ("rollout") */
            cJSON_AddItemToObject(x, rows[i].rec->kind->noun, cJSON_Duplicate(rows[i].view, 1));
        cJSON_AddItemToArray(arr, x);
    }
    char *text = cJSON_Print(arr);
    printf("%s\n", text ? text : "[]");
    free(text);
    cJSON_Delete(arr);
}

/* The row's address, and "(retired)" after a retired resource's. */
static void row_name(otr_buf *out, const row *r)
{
    otr_address_short(out, r->rec->kind, r->rec->name);
    if (r->retired)
        otr_buf_puts(out, " (retired)");
}

static void print_text(const row *rows, size_t n, const otr_state *s, const char *path, int color)
{
    int w = 4;
    otr_buf a = OTR_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        otr_buf_clear(&a);
        row_name(&a, &rows[i]);
        if ((int)a.len > w)
            w = (int)a.len;
    }
    printf("%-*s  %-22s %-12s %9s %9s %9s %9s\n", w, "NAME", "ID", "STATUS", "SUCCEEDED", "FAILED",
           "RUNNING", "QUEUED");
    for (size_t i = 0; i < n; i++) {
        const otr_ota_counts *c = &rows[i].got.counts;
        otr_buf_clear(&a);
        row_name(&a, &rows[i]);
        otr_buf line = OTR_BUF_INIT; /* the id and status are the state's and the service's */
        otr_buf_printf(&line, "%-*s  %-22s %-12s", w, otr_buf_cstr(&a),
                       rows[i].rec->id ? rows[i].rec->id : "-", shown_status(&rows[i]));
        if (c->present) {
            otr_buf_printf(&line, " %9ld %9ld %9ld %9ld  ", c->succeeded,
                           c->failed + c->timed_out + c->rejected, c->in_progress, c->queued);
            status_bar(&line, c, color);
        }
        otr_text_sanitize(&line, 0, color);
        printf("%s\n", otr_buf_cstr(&line));
        otr_buf_free(&line);
    }
    otr_buf_clear(&a);
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].drift)
            continue;
        otr_buf_puts(&a, "drift: ");
        row_name(&a, &rows[i]);
        otr_buf_printf(&a,
                       ": the service's %s differs from what the state records in %s (a plan "
                       "with --refresh full shows it; apply with it puts it back)\n",
                       rows[i].rec->kind->noun, rows[i].drift);
    }
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].view || !rows[i].bh->view_text)
            continue;
        otr_buf_putc(&a, '\n');
        rows[i].bh->view_text(&a, rows[i].rec->name, rows[i].view, "");
    }
    otr_text_sanitize(&a, 0, color);
    fputs(otr_buf_cstr(&a), stdout);
    otr_buf_clear(&a);
    otr_render_state_counts(s, &a);
    printf("%s in %s\n", otr_buf_cstr(&a), path);
    otr_buf_free(&a);
}

int otr_cmd_status(const otr_options *o)
{
    otr_planning pl;
    otr_error err = OTR_ERROR_INIT;
    int rc = OTR_EXIT_OK;
    otr_state_where w;
    if (o->devices)
        return otr_status_devices(o);
    if (o->nargs || o->all) {
        fprintf(stderr,
                "ota-runner status: %s goes with --devices (see 'ota-runner status "
                "--help')\n",
                o->all ? "--all" : "an ADDRESS");
        return OTR_EXIT_ERROR;
    }
    memset(&pl, 0, sizeof(pl));
    if ((rc = otr_planning_where(&pl, o, &w)) != 0)
        return rc;
    if (otr_state_load(&pl.state, &w, &err) < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
        return OTR_EXIT_ERROR;
    }
    /* the records, then the retired resources (as records of their kind and id) */
    size_t nrec = pl.state->count, n = nrec + pl.state->nretired;
    row *rows = calloc(n + 1, sizeof(*rows));
    otr_record *retired = calloc(pl.state->nretired + 1, sizeof(*retired));
    if (!rows || !retired) {
        rc = OTR_EXIT_ERROR;
        goto done;
    }
    for (size_t i = 0; i < pl.state->nretired; i++) {
        retired[i].kind = pl.state->retired[i].kind;
        retired[i].name = pl.state->retired[i].name;
        retired[i].id = pl.state->retired[i].id;
        rows[nrec + i].retired = 1;
    }
    if (n && (rc = otr_planning_open_service(&pl, o)) != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const otr_record *rec = i < nrec ? &pl.state->records[i] : &retired[i - nrec];
        otr_buf subject = OTR_BUF_INIT;
        otr_address_short(&subject, rec->kind, rec->name);
        rows[i].rec = rec;
        rows[i].call = rec->id ? rec->kind->api->get_call(rec->id, otr_buf_cstr(&subject)) : NULL;
        otr_buf_free(&subject);
        if (!rows[i].call) {
            rows[i].error = strdup(rec->id ? "out of memory" : "no id recorded yet");
            continue;
        }
        rows[i].call->done = on_get;
        rows[i].call->ctx = &rows[i];
        rows[i].client = pl.service.client;
        otr_aws_client_submit(pl.service.client, rows[i].call);
    }
    if (n && otr_aws_client_run(pl.service.client, &err) < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
        rc = OTR_EXIT_ERROR;
        goto done;
    }
    int halted = judge(rows, n, otr_aws_client_now(n ? pl.service.client : NULL));
    for (size_t i = 0; i < n; i++) { /* drift: a get's answer against the record */
        otr_buf names = OTR_BUF_INIT;
        if (!rows[i].view && !rows[i].retired && !rows[i].error && rows[i].got.fields &&
            otr_record_drift(rows[i].rec, rows[i].got.fields, &names) > 0)
            rows[i].drift = otr_buf_detach(&names);
        otr_buf_free(&names);
    }
    if (o->output == OTR_OUT_JSON) {
        print_json(rows, n);
    } else if (o->output == OTR_OUT_MARKDOWN) {
        print_markdown(rows, n, pl.state);
    } else {
        const char *nc = getenv("NO_COLOR");
        print_text(rows, n, pl.state, otr_options_state_path(o),
                   !o->no_color && !(nc && *nc) && isatty(STDOUT_FILENO));
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].error) {
            otr_print_line(stderr, "ota-runner: error: ", rows[i].error);
            rc = OTR_EXIT_ERROR;
        } else if (rows[i].missing && !rows[i].retired) {
            otr_buf a = OTR_BUF_INIT;
            otr_address_short(&a, rows[i].rec->kind, rows[i].rec->name);
            otr_buf_printf(&a,
                           ": %s %s no longer exists in the service; the next plan recreates it",
                           rows[i].rec->kind->noun, rows[i].rec->id);
            /* the id is the state's: escaped like any text from elsewhere */
            otr_print_line(stderr, "ota-runner: warning: ", otr_buf_cstr(&a));
            otr_buf_free(&a);
        }
    if (halted && o->fail_on_halt && rc == OTR_EXIT_OK)
        rc = OTR_EXIT_HALTED;
done:
    for (size_t i = 0; rows && i < n; i++) {
        cJSON_Delete(rows[i].view);
        otr_remote_clear(&rows[i].got);
        free(rows[i].error);
        free(rows[i].failed);
        free(rows[i].drift);
        otr_aws_call_free(rows[i].call);
        otr_aws_call_free(rows[i].page);
    }
    free(retired); /* its strings are the state's */
    free(rows);
    otr_planning_free(&pl);
    return rc;
}
