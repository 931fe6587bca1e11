/* --refresh for every kind (see refresh.h). */
#include "sync/refresh.h"

#include "util/time.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const otr_remote_item *)a)->id, ((const otr_remote_item *)b)->id);
}

static const otr_remote_item *find_item(const otr_refresh_kind *rk, const char *id)
{
    otr_remote_item key = {.id = id};
    return id ? bsearch(&key, rk->items, rk->n, sizeof(key), item_cmp) : NULL;
}

static otr_refresh_kind *kind_of(otr_refresh_result *r, const otr_kind *k)
{
    for (size_t i = 0; i < r->nkinds; i++)
        if (r->kinds[i].kind == k)
            return &r->kinds[i];
    return NULL;
}

otr_aws_call *otr_failed_devices_call(const otr_kind *k, const char *id, const otr_ota_counts *c)
{
    if (!c || !c->present || !k->api->devices_call || !id ||
        c->failed + c->timed_out + c->rejected == 0)
        return NULL;
    return k->api->devices_call(id, NULL, OTR_OTA_MAX_PAGE);
}

char *otr_failed_devices(const otr_kind *k, const otr_aws_call *call, const otr_ota_counts *c)
{
    otr_error err = OTR_ERROR_INIT;
    otr_ota_execution *e = NULL;
    size_t n = 0, named = 0;
    char *next = NULL;
    otr_buf out = OTR_BUF_INIT;
    if (!call->ok || k->api->parse_devices(call, &e, &n, &next, &err) < 0) {
        otr_error_clear(&err);
        return NULL;
    }
    for (size_t i = 0; i < n && named < OTR_FAILED_DEVICES_NAMED; i++) {
        const char *st = e[i].status ? e[i].status : "";
        if (strcmp(st, "FAILED") && strcmp(st, "TIMED_OUT") && strcmp(st, "REJECTED"))
            continue;
        otr_buf_printf(&out, "%s%s", named ? ", " : "", e[i].managed_thing_id);
        named++;
    }
    long all = c->failed + c->timed_out + c->rejected;
    if (named && all > (long)named)
        otr_buf_printf(&out, " and %ld more", all - (long)named);
    otr_ota_executions_free(e, n);
    free(next);
    return named && !otr_buf_failed(&out) ? otr_buf_detach(&out) : (otr_buf_free(&out), NULL);
}

typedef struct get_ctx {
    otr_refresh_kind *rk;
    size_t index;
    int full;
    int devices; /* the page of its devices, after the get */
    otr_buf *errors;
    otr_aws_client *client;
    otr_aws_call **calls; /* where a page asked from here is kept, to be freed */
    size_t *ncalls;
} get_ctx;

static void on_get(otr_aws_call *call, void *ctx)
{
    get_ctx *g = ctx;
    otr_error err = OTR_ERROR_INIT;
    otr_remote *got = &g->rk->got[g->index];
    otr_remote_item *item = &g->rk->items[g->index];
    if (g->devices) { /* names for a halt's message: a page that fails names none */
        char *names = otr_failed_devices(g->rk->kind, call, &got->counts);
        g->rk->failed[g->index] = names;
        item->failed_devices = names;
        return;
    }
    if (g->rk->kind->api->parse_get(call, got, &err) == 0) {
        item->fields = g->full ? got->fields : NULL;
        item->counts = got->counts.present ? &got->counts : NULL;
        otr_aws_call *page = g->rk->kind->needs_counts
                                 ? otr_failed_devices_call(g->rk->kind, item->id, item->counts)
                                 : NULL;
        if (page) {
            g->devices = 1; /* this context now waits for the page */
            page->done = on_get;
            page->ctx = g;
            g->calls[(*g->ncalls)++] = page;
            otr_aws_client_submit(g->client, page);
        }
    } else if (call->status != 404) { /* gone since the list: the plan re-creates it */
        otr_buf_printf(g->errors, "%s\n", otr_error_message(&err));
    }
    otr_error_clear(&err);
}

/* One kind's list (or the list of the kind its resources are listed as), as
 * the plan's view. */
static int read_kind(otr_refresh_result *r, otr_refresh_kind *rk, const otr_kind *k,
                     otr_aws_client *c, otr_error *err)
{
    const otr_refresh_kind *as = k->listed_as ? kind_of(r, k->listed_as) : NULL;
    rk->kind = k;
    if (k->listed_as && !as)
        return otr_error_set(err, OTR_ERR_GENERIC, "%s: listed as %s, which is not read first",
                             k->name, k->listed_as->name);
    if (as)
        rk->n = as->n;
    else if (otr_kind_list_all(k, c, &rk->listed, &rk->n, err) < 0)
        return -1;
    rk->items = calloc(rk->n + 1, sizeof(*rk->items));
    rk->got = calloc(rk->n + 1, sizeof(*rk->got));
    rk->failed = calloc(rk->n + 1, sizeof(*rk->failed));
    if (!rk->items || !rk->got || !rk->failed)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < rk->n; i++) {
        rk->items[i].id = as ? as->items[i].id : rk->listed[i].id;
        rk->items[i].status = as ? as->items[i].status : rk->listed[i].status;
        rk->items[i].uses_id = as ? as->items[i].uses_id : rk->listed[i].uses_id;
    }
    if (rk->n > 1 && !as)
        qsort(rk->items, rk->n, sizeof(*rk->items), item_cmp);
    return 0;
}

/* Does the plan need a get of rec's resource: with --refresh full every
 * one, else those of kinds judged on their counts (a rollout's newest
 * wave). */
static int wants_get(const otr_record *rec, int full)
{
    return full || rec->kind->needs_counts;
}

/* The gets, all in flight at once, of the recorded resources the lists show. */
static int read_gets(otr_refresh_result *r, otr_aws_client *c, const otr_state *s, int full,
                     otr_error *err)
{
    otr_aws_call **calls = calloc(2 * s->count + 1, sizeof(*calls)); /* a get, and a page */
    get_ctx *ctxs = calloc(s->count + 1, sizeof(*ctxs));
    otr_buf errors = OTR_BUF_INIT;
    size_t ncalls = 0;
    int rc = 0;
    if (!calls || !ctxs)
        rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < s->count; i++) {
        const otr_record *rec = &s->records[i];
        otr_refresh_kind *rk = kind_of(r, rec->kind);
        const otr_remote_item *item = rk ? find_item(rk, rec->id) : NULL;
        if (!item || !wants_get(rec, full))
            continue;
        otr_buf subject = OTR_BUF_INIT;
        otr_address_short(&subject, rec->kind, rec->name);
        otr_aws_call *call = rec->kind->api->get_call(rec->id, otr_buf_cstr(&subject));
        otr_buf_free(&subject);
        if (!call) {
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
            break;
        }
        get_ctx *g = &ctxs[i];
        *g = (get_ctx){.rk = rk,
                       .index = (size_t)(item - rk->items),
                       .full = full,
                       .errors = &errors,
                       .client = c,
                       .calls = calls,
                       .ncalls = &ncalls};
        call->done = on_get;
        call->ctx = g;
        calls[ncalls++] = call;
        otr_aws_client_submit(c, call);
    }
    /* what was queued is run even after a failure: the client must not keep
     * calls that are freed below */
    if (ncalls)
        rc = otr_aws_client_drain(c, rc, err);
    if (rc == 0 && errors.len)
        rc = otr_error_set(err, OTR_ERR_GENERIC, "refresh: %s", otr_buf_cstr(&errors));
    for (size_t i = 0; i < ncalls; i++)
        otr_aws_call_free(calls[i]);
    free(calls);
    free(ctxs);
    otr_buf_free(&errors);
    return rc;
}

int otr_refresh_read(otr_refresh_result *r, otr_aws_client *c, const otr_state *s, int full,
                     otr_error *err)
{
    memset(r, 0, sizeof(*r));
    for (size_t k = 0; otr_kinds[k] && k < OTR_REFRESH_MAX_KINDS; k++) {
        if (read_kind(r, &r->kinds[k], otr_kinds[k], c, err) < 0)
            return -1;
        r->nkinds++;
        r->views[k] = (otr_remote_view){otr_kinds[k], r->kinds[k].items, r->kinds[k].n};
    }
    return read_gets(r, c, s, full, err);
}

void otr_refresh_remember(const otr_refresh_result *r, otr_state *s)
{
    char now[21];
    otr_time_format_iso8601(now, time(NULL));
    for (size_t i = 0; i < s->count; i++) {
        otr_record *rec = &s->records[i];
        const otr_remote_item *t = NULL;
        for (size_t k = 0; k < r->nkinds && !t; k++)
            if (r->kinds[k].kind == rec->kind)
                t = find_item(&r->kinds[k], rec->id);
        char *status = t && t->status ? strdup(t->status) : NULL;
        char *at = status ? strdup(now) : NULL;
        if (!status || !at) {
            free(status);
            free(at);
            continue;
        }
        free(rec->remote_status);
        free(rec->remote_checked_at);
        rec->remote_status = status;
        rec->remote_checked_at = at;
    }
}

void otr_refresh_free(otr_refresh_result *r)
{
    for (size_t k = 0; k < r->nkinds; k++) {
        otr_refresh_kind *rk = &r->kinds[k];
        otr_remotes_free(rk->listed, rk->n);
        otr_remotes_free(rk->got, rk->n);
        for (size_t i = 0; rk->failed && i < rk->n; i++)
            free(rk->failed[i]);
        free(rk->failed);
        free(rk->items);
    }
    memset(r, 0, sizeof(*r));
}
