/*
 * ota-runner status --devices: the devices of each recorded task (a
 * rollout's, wave by wave), read with ListOtaTaskExecutions a page of up to
 * 1,000 at a time, grouped by status with the failing ones first.
 */
#include "cli/commands.h"
#include "cli/planning.h"
#include "util/alloc.h"
#include "util/escape.h"
#include "util/json.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Devices shown of each status without --all. */
#define DEVICES_SHOWN 50

/* The statuses in the order a person reads them: what went wrong first. */
static const char *const order[] = {"FAILED", "TIMED_OUT", "REJECTED", "IN_PROGRESS",
                                    "QUEUED", "SUCCEEDED", "CANCELED", "REMOVED"};
#define NSTATUS (sizeof(order) / sizeof(order[0]))

/* One task: a task's record, or one wave of a rollout. */
typedef struct unit {
    const otr_record *rec;
    const char *id;
    const char *part; /* the wave's name, or NULL */
    otr_ota_execution *devs;
    size_t n, cap;
    char *error;
} unit;

/* A page asked for: the call, and whose devices it brings. */
typedef struct page {
    struct run *r;
    unit *u;
    otr_aws_call *call;
} page;

typedef struct run {
    otr_aws_client *client;
    page **pages; /* every page asked for, freed after the run */
    size_t npages, cap;
} run;

static int rank(const char *status)
{
    for (size_t i = 0; status && i < NSTATUS; i++)
        if (!strcmp(order[i], status))
            return (int)i;
    return (int)NSTATUS; /* a status the model does not list: last */
}

static void fail(unit *u, char *why)
{
    free(u->error);
    u->error = why ? why : strdup("out of memory");
}

static void ask(run *r, unit *u, const char *next_token);

static void on_page(otr_aws_call *call, void *ctx)
{
    page *pg = ctx;
    unit *u = pg->u;
    otr_error err = OTR_ERROR_INIT;
    otr_ota_execution *got = NULL;
    size_t n = 0;
    char *next = NULL;
    if (!call->ok) {
        otr_buf msg = OTR_BUF_INIT;
        otr_aws_call_describe(call, &msg);
        fail(u, otr_buf_detach(&msg));
    } else if (u->rec->kind->api->parse_devices(call, &got, &n, &next, &err) < 0) {
        fail(u, strdup(otr_error_message(&err)));
    } else if (OTR_GROW(u->devs, u->n + n, u->cap, 64) < 0) {
        fail(u, NULL);
        otr_ota_executions_free(got, n);
    } else {
        if (n)
            memcpy(u->devs + u->n, got, n * sizeof(*got));
        u->n += n;
        free(got);
        if (next)
            ask(pg->r, u, next);
    }
    free(next);
    otr_error_clear(&err);
}

/* Queues the page of u's devices after next_token (NULL: the first). */
static void ask(run *r, unit *u, const char *next_token)
{
    page *pg = calloc(1, sizeof(*pg));
    otr_aws_call *call = u->rec->kind->api->devices_call(u->id, next_token, OTR_OTA_MAX_PAGE);
    if (!pg || !call || OTR_GROW(r->pages, r->npages + 1, r->cap, 16) < 0) {
        free(pg);
        otr_aws_call_free(call);
        fail(u, NULL);
        return;
    }
    *pg = (page){.r = r, .u = u, .call = call};
    call->done = on_page;
    call->ctx = pg;
    r->pages[r->npages++] = pg;
    otr_aws_client_submit(r->client, call);
}

/* ---- which tasks ---------------------------------------------------------------- */

static int add_units(unit **units, size_t *n, size_t *cap, const otr_record *rec)
{
    const char *ids[OTR_KIND_MAX_IDS];
    size_t k = rec->kind->ids_of ? rec->kind->ids_of(rec, ids, OTR_KIND_MAX_IDS) : rec->id != NULL;
    if (!rec->kind->ids_of)
        ids[0] = rec->id;
    for (size_t i = 0; i < k; i++) {
        if (OTR_GROW(*units, *n + 1, *cap, 16) < 0)
            return -1;
        unit *u = &(*units)[(*n)++];
        memset(u, 0, sizeof(*u));
        u->rec = rec;
        u->id = ids[i];
        u->part = rec->kind->id_name ? rec->kind->id_name(rec, ids[i]) : NULL;
    }
    return 0;
}

/* The tasks of the records the addresses name (every record with devices
 * when none is given); -1 (said) for an address that names nothing. */
static int select_units(const otr_options *o, otr_state *s, unit **units, size_t *n)
{
    size_t cap = 0;
    if (!o->nargs) {
        for (size_t i = 0; i < s->count; i++)
            if (s->records[i].kind->api->devices_call &&
                add_units(units, n, &cap, &s->records[i]) < 0)
                return -1;
        return 0;
    }
    for (size_t a = 0; a < o->nargs; a++) {
        const otr_kind *k;
        const char *name;
        otr_buf why = OTR_BUF_INIT;
        const otr_record *rec = NULL;
        if (otr_address_parse(o->args[a], &k, &name, &why) < 0)
            fprintf(stderr, "ota-runner: error: %s: %s\n", o->args[a], otr_buf_cstr(&why));
        else if (!(rec = otr_state_find(s, k, name)))
            fprintf(stderr,
                    "ota-runner: error: nothing named %s in the state (ota-runner state list "
                    "shows what is)\n",
                    o->args[a]);
        else if (!k->api->devices_call)
            fprintf(stderr,
                    "ota-runner: error: %s: a %s has no devices; name a task or a rollout\n",
                    o->args[a], k->noun);
        otr_buf_free(&why);
        if (!rec || !k->api->devices_call)
            return -1;
        if (add_units(units, n, &cap, rec) < 0)
            return -1;
    }
    return 0;
}

/* ---- outputs ---------------------------------------------------------------------- */

/* u's devices grouped by status, in order, each group as the service listed it. */
static int group(unit *u)
{
    otr_ota_execution *sorted = calloc(u->n ? u->n : 1, sizeof(*sorted));
    size_t k = 0;
    if (!sorted)
        return -1;
    for (int s = 0; s <= (int)NSTATUS; s++)
        for (size_t i = 0; i < u->n; i++)
            if (rank(u->devs[i].status) == s)
                sorted[k++] = u->devs[i];
    free(u->devs);
    u->devs = sorted;
    u->cap = u->n ? u->n : 1;
    return 0;
}

static void heading(otr_buf *out, const unit *u)
{
    otr_address_short(out, u->rec->kind, u->rec->name);
    if (u->part)
        otr_buf_printf(out, " wave %s", u->part);
}

/* How many of u's devices are in status order[i] (NSTATUS: the others). */
static size_t count_of(const unit *u, size_t i)
{
    size_t c = 0;
    for (size_t k = 0; k < u->n; k++)
        c += (size_t)rank(u->devs[k].status) == i;
    return c;
}

static void when(char out[21], double t)
{
    if (t > 0)
        otr_time_format_iso8601(out, (time_t)t);
    else
        strcpy(out, "-");
}

static void print_text(const unit *units, size_t n, int all)
{
    otr_buf out = OTR_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        const unit *u = &units[i];
        heading(&out, u);
        otr_buf_printf(&out, "  task %s: ", u->id);
        if (u->error) {
            otr_buf_printf(&out, "ERROR %s\n\n", u->error);
            continue;
        }
        otr_buf_printf(&out, "%zu device%s", u->n, u->n == 1 ? "" : "s");
        for (size_t s = 0; s <= NSTATUS; s++)
            if (count_of(u, s))
                otr_buf_printf(&out, ", %zu %s", count_of(u, s), s < NSTATUS ? order[s] : "other");
        otr_buf_putc(&out, '\n');
        size_t shown = 0;
        for (size_t k = 0; k < u->n; k++) {
            const otr_ota_execution *e = &u->devs[k];
            int first = k == 0 || rank(e->status) != rank(u->devs[k - 1].status);
            shown = first ? 0 : shown;
            if (first)
                otr_buf_printf(&out, "  %s\n", e->status ? e->status : "(no status)");
            if (!all && shown == DEVICES_SHOWN) {
                size_t left = count_of(u, (size_t)rank(e->status)) - DEVICES_SHOWN;
                otr_buf_printf(&out, "    ... and %zu more (--all shows them)\n", left);
            }
            if (!all && shown++ >= DEVICES_SHOWN)
                continue;
            char at[21];
            when(at, e->last_updated_at);
            otr_buf_printf(&out, "    %-40s attempt %ld  %s\n", e->managed_thing_id,
                           e->retry_attempt, at);
        }
        otr_buf_putc(&out, '\n');
    }
    otr_text_sanitize(&out, 0, 0);
    fputs(otr_buf_cstr(&out), stdout);
    otr_buf_free(&out);
}

static void print_markdown(const unit *units, size_t n, int all)
{
    otr_buf out = OTR_BUF_INIT;
    otr_buf_puts(&out, "### ota-runner devices\n");
    for (size_t i = 0; i < n; i++) {
        const unit *u = &units[i];
        otr_buf h = OTR_BUF_INIT;
        heading(&h, u);
        otr_buf_puts(&out, "\n#### ");
        otr_md_cell(&out, otr_buf_cstr(&h));
        otr_buf_printf(&out, " (task `%s`)\n\n", u->id);
        otr_buf_free(&h);
        if (u->error) {
            otr_buf_puts(&out, "**Error:** ");
            otr_md_cell(&out, u->error);
            otr_buf_puts(&out, "\n");
            continue;
        }
        otr_buf_puts(&out,
                     "| status | device | retry attempt | last update |\n|---|---|---:|---|\n");
        size_t shown = 0;
        for (size_t k = 0; k < u->n; k++) {
            const otr_ota_execution *e = &u->devs[k];
            shown = k == 0 || rank(e->status) != rank(u->devs[k - 1].status) ? 0 : shown;
            if (!all && shown == DEVICES_SHOWN)
                otr_buf_printf(&out, "| %s | ... and %zu more | | |\n", e->status,
                               count_of(u, (size_t)rank(e->status)) - DEVICES_SHOWN);
            if (!all && shown++ >= DEVICES_SHOWN)
                continue;
            char at[21];
            when(at, e->last_updated_at);
            otr_buf_puts(&out, "| ");
            otr_md_cell(&out, e->status ? e->status : "");
            otr_buf_puts(&out, " | `");
            otr_md_cell(&out, e->managed_thing_id);
            otr_buf_printf(&out, "` | %ld | %s |\n", e->retry_attempt, at);
        }
    }
    fputs(otr_buf_cstr(&out), stdout);
    otr_buf_free(&out);
}

static int print_json(const unit *units, size_t n, int all)
{
    otr_jb b = OTR_JB_INIT;
    cJSON *root = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        const unit *u = &units[i];
        cJSON *x = otr_jb_object(&b, root, NULL);
        otr_buf a = OTR_BUF_INIT;
        otr_address_full(&a, u->rec->kind, u->rec->name);
        otr_jb_str(&b, x, "address", otr_buf_failed(&a) ? NULL : otr_buf_cstr(&a));
        otr_buf_free(&a);
        if (u->part)
            otr_jb_str(&b, x, "wave", u->part);
        otr_jb_str(&b, x, "taskId", u->id);
        if (u->error) {
            otr_jb_str(&b, x, "error", u->error);
            continue;
        }
        otr_jb_add(&b, x, "total", cJSON_CreateNumber((double)u->n));
        cJSON *counts = otr_jb_object(&b, x, "counts");
        for (size_t s = 0; s < NSTATUS; s++)
            if (count_of(u, s))
                otr_jb_add(&b, counts, order[s], cJSON_CreateNumber((double)count_of(u, s)));
        cJSON *devs = otr_jb_array(&b, x, "devices");
        size_t shown = 0, left = 0;
        for (size_t k = 0; k < u->n; k++) {
            const otr_ota_execution *e = &u->devs[k];
            shown = k == 0 || rank(e->status) != rank(u->devs[k - 1].status) ? 0 : shown;
            if (!all && shown++ >= DEVICES_SHOWN) {
                left++;
                continue;
            }
            char at[21];
            when(at, e->last_updated_at);
            cJSON *d = otr_jb_object(&b, devs, NULL);
            otr_jb_str(&b, d, "managedThingId", e->managed_thing_id);
            otr_jb_str(&b, d, "status", e->status);
            otr_jb_add(&b, d, "retryAttempt", cJSON_CreateNumber((double)e->retry_attempt));
            otr_jb_add(&b, d, "executionNumber", cJSON_CreateNumber((double)e->execution_number));
            if (e->last_updated_at > 0)
                otr_jb_str(&b, d, "lastUpdatedAt", at);
        }
        otr_jb_add(&b, x, "notShown", cJSON_CreateNumber((double)left));
    }
    char *text = !b.failed ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "ota-runner: error: out of memory while writing JSON\n");
        return -1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

int otr_status_devices(const otr_options *o)
{
    otr_planning pl;
    otr_error err = OTR_ERROR_INIT;
    otr_state_where w;
    unit *units = NULL;
    size_t n = 0;
    run r = {0};
    int rc = OTR_EXIT_ERROR;
    memset(&pl, 0, sizeof(pl));
    if ((rc = otr_planning_where(&pl, o, &w)) != 0)
        return rc;
    rc = OTR_EXIT_ERROR;
    if (otr_state_load(&pl.state, &w, &err) < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
        goto done;
    }
    if (select_units(o, pl.state, &units, &n) < 0)
        goto done;
    if (n && (rc = otr_planning_open_service(&pl, o)) != 0)
        goto done;
    r.client = n ? pl.service.client : NULL;
    for (size_t i = 0; i < n; i++)
        ask(&r, &units[i], NULL);
    if (n && otr_aws_client_run(r.client, &err) < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
        rc = OTR_EXIT_ERROR;
        goto done;
    }
    rc = OTR_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        if (group(&units[i]) < 0)
            fail(&units[i], NULL);
        rc = units[i].error ? OTR_EXIT_ERROR : rc;
    }
    if (o->output == OTR_OUT_JSON)
        rc = print_json(units, n, o->all) < 0 ? OTR_EXIT_ERROR : rc;
    else if (o->output == OTR_OUT_MARKDOWN)
        print_markdown(units, n, o->all);
    else if (n)
        print_text(units, n, o->all);
    else
        printf("No task is recorded in the state: no devices to show.\n");
done:
    for (size_t i = 0; i < r.npages; i++) {
        otr_aws_call_free(r.pages[i]->call);
        free(r.pages[i]);
    }
    free(r.pages);
    for (size_t i = 0; i < n; i++) {
        otr_ota_executions_free(units[i].devs, units[i].n);
        free(units[i].error);
    }
    free(units);
    otr_planning_free(&pl);
    return rc;
}
