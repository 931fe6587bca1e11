/* A lost state rebuilt from the service (see adopt.h). */
#include "sync/adopt.h"
#include "manifest/token.h"
#include "behaviour/behaviour.h"
#include "kinds/held.h"

#include "kinds/tags.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

/* A resource the service holds, read with a get. */
typedef struct held {
    const otr_kind *kind; /* the kind it was listed as */
    otr_remote got;
    /* whose it is, by its tags (owner NULL: untagged) */
    const otr_kind *owner;
    const char *name;
    long revision;
    int taken; /* recorded already */
} held;

typedef struct reading {
    held *items;
    size_t n;
    otr_buf errors;
} reading;

typedef struct get_ctx {
    reading *rd;
    size_t index;
} get_ctx;

/* Whose the resource is, by the tags its get holds. */
static void read_owner(held *h)
{
    const cJSON *tags = h->kind->tags_key && h->got.fields
                            ? cJSON_GetObjectItemCaseSensitive(h->got.fields, h->kind->tags_key)
                            : NULL;
    if (!otr_tags_owner(tags, &h->owner, &h->name, &h->revision))
        h->owner = NULL;
}

static void on_get(otr_aws_call *call, void *ctx)
{
    get_ctx *g = ctx;
    held *h = &g->rd->items[g->index];
    otr_error err = OTR_ERROR_INIT;
    if (h->kind->api->parse_get(call, &h->got, &err) < 0 && call->status != 404)
        otr_buf_printf(&g->rd->errors, "%s\n", otr_error_message(&err));
    otr_error_clear(&err);
    read_owner(h);
}

/* A get that left the tags out (a service may): they are read apart. */
static int tags_left_out(const held *h)
{
    const otr_kind *k = h->kind;
    return k->api->list_tags_call && k->tags_key && h->got.fields && h->got.arn &&
           !cJSON_GetObjectItemCaseSensitive(h->got.fields, k->tags_key);
}

static void on_tags(otr_aws_call *call, void *ctx)
{
    get_ctx *g = ctx;
    held *h = &g->rd->items[g->index];
    otr_error err = OTR_ERROR_INIT;
    cJSON *tags = NULL;
    if (h->kind->api->parse_list_tags(call, &tags, &err) < 0) {
        if (call->status != 404) /* gone since the get: nothing to adopt */
            otr_buf_printf(&g->rd->errors, "%s\n", otr_error_message(&err));
    } else if (!cJSON_AddItemToObject(h->got.fields, h->kind->tags_key, tags)) {
        cJSON_Delete(tags);
        otr_buf_puts(&g->rd->errors, "out of memory\n");
    } else {
        read_owner(h);
    }
    otr_error_clear(&err);
}

/* The tags of every resource whose get left them out (ListTagsForResource). */
static int read_tags(reading *rd, otr_aws_client *c, otr_error *err)
{
    otr_aws_call **calls = calloc(rd->n + 1, sizeof(*calls));
    get_ctx *ctxs = calloc(rd->n + 1, sizeof(*ctxs));
    size_t k = 0;
    int rc = calls && ctxs ? 0 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < rd->n; i++) {
        held *h = &rd->items[i];
        if (!tags_left_out(h))
            continue;
        otr_aws_call *call = h->kind->api->list_tags_call(h->got.arn, h->got.id);
        if (!call) {
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
            break;
        }
        ctxs[k] = (get_ctx){rd, i};
        call->done = on_tags;
        call->ctx = &ctxs[k];
        calls[k++] = call;
        otr_aws_client_submit(c, call);
    }
    if (k)
        rc = otr_aws_client_drain(c, rc, err);
    for (size_t i = 0; i < k; i++)
        otr_aws_call_free(calls[i]);
    free(calls);
    free(ctxs);
    return rc;
}

/* Which listed resources read_all gets: all, or those no record holds. */
typedef int (*wanted_fn)(const otr_remote *listed, const void *ctx);

/* A get of everything the lists show (that wanted takes), of the kinds that
 * are listed themselves (a rollout's tasks are tasks). */
static int read_all(reading *rd, const otr_refresh_result *r, otr_aws_client *c, wanted_fn wanted,
                    const void *wctx, otr_error *err)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < r->nkinds; i++)
        total += r->kinds[i].kind->listed_as ? 0 : r->kinds[i].n;
    rd->items = calloc(total + 1, sizeof(*rd->items));
    otr_aws_call **calls = calloc(total + 1, sizeof(*calls));
    get_ctx *ctxs = calloc(total + 1, sizeof(*ctxs));
    int rc = rd->items && calls && ctxs ? 0 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < r->nkinds; i++) {
        const otr_refresh_kind *rk = &r->kinds[i];
        for (size_t j = 0; !rk->kind->listed_as && j < rk->n && rc == 0; j++) {
            if ((rk->listed[j].status && !strcmp(rk->listed[j].status, "DELETION_IN_PROGRESS")) ||
                (wanted && !wanted(&rk->listed[j], wctx)))
                continue;
            otr_aws_call *call = rk->kind->api->get_call(rk->listed[j].id, rk->listed[j].id);
            if (!call) {
                rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
                break;
            }
            rd->items[k].kind = rk->kind;
            ctxs[k] = (get_ctx){rd, k};
            call->done = on_get;
            call->ctx = &ctxs[k];
            calls[k++] = call;
            otr_aws_client_submit(c, call);
        }
    }
    rd->n = k;
    /* what was queued is run even after a failure: the client must not keep
     * calls that are freed below */
    if (k)
        rc = otr_aws_client_drain(c, rc, err);
    if (rc == 0 && !rd->errors.len)
        rc = read_tags(rd, c, err);
    if (rc == 0 && rd->errors.len)
        rc = otr_error_set(err, OTR_ERR_GENERIC, "reading what the service holds: %s",
                           otr_buf_cstr(&rd->errors));
    for (size_t i = 0; i < k; i++)
        otr_aws_call_free(calls[i]);
    free(calls);
    free(ctxs);
    return rc;
}

static int older_first(const void *a, const void *b)
{
    double x = ((const otr_remote *)a)->created_at, y = ((const otr_remote *)b)->created_at;
    return (x > y) - (x < y);
}

/* The resources tagged with kind/name, oldest first, as an array of
 * otr_remote (shallow: they stay rd's); marks them taken. */
static int has_tagged(const reading *rd, const otr_kind *kind, const char *name)
{
    for (size_t i = 0; i < rd->n; i++)
        if (rd->items[i].owner == kind && !strcmp(rd->items[i].name, name))
            return 1;
    return 0;
}

static size_t tagged(reading *rd, const otr_kind *kind, const char *name, otr_remote **out)
{
    size_t n = 0;
    *out = calloc(rd->n + 1, sizeof(**out));
    for (size_t i = 0; *out && i < rd->n; i++) {
        held *h = &rd->items[i];
        if (h->owner == kind && !strcmp(h->name, name) && h->got.fields) {
            (*out)[n++] = h->got;
            h->taken = 1;
        }
    }
    if (n > 1)
        qsort(*out, n, sizeof(**out), older_first);
    return n;
}

static int put(otr_state *s, otr_record *r, otr_buf *report, const char *how)
{
    otr_buf_puts(report, "adopted ");
    otr_address_short(report, r->kind, r->name);
    otr_buf_printf(report, ": %s %s, %s\n", r->kind->noun, r->id, how);
    int rc = otr_state_put_move(s, r);
    otr_record_clear(r);
    return rc;
}

/* A manifest's resource among the n tagged with its address (oldest first):
 * the newest that holds the manifest's body (otr_kind_holds_body); any other
 * is reported, an older copy or another's (its tag forged, or the manifest
 * changed since), and never recorded: ota-runner updates and deletes only
 * what it can tell it made. */
static int adopt_own(otr_state *s, const otr_manifest *m, const otr_remote *all, size_t n,
                     otr_buf *report)
{
    const otr_kind *k = m->kind;
    cJSON *body = otr_manifest_spec(m);
    int *holds = calloc(n + 1, sizeof(*holds)), rc = body && holds ? 0 : -1;
    size_t pick = n;
    otr_buf why = OTR_BUF_INIT;
    for (size_t i = n; rc == 0 && i-- > 0;) {
        otr_buf_clear(&why);
        holds[i] = otr_kind_holds_body(k, body, m->revision, all[i].fields, &why);
        if (holds[i] < 0)
            rc = -1;
        else if (holds[i] && pick == n)
            pick = i;
        else if (!holds[i])
            otr_buf_printf(report,
                           "%s/%s: %s %s is tagged with it, but %s: not adopted, and never "
                           "updated or deleted by ota-runner (another's, or made before the "
                           "manifest changed: delete it by hand if it is not wanted)\n",
                           k->name, m->name, k->noun, all[i].id, otr_buf_cstr(&why));
    }
    if (rc == 0 && pick < n) {
        otr_record r;
        rc = otr_record_from_remote(&r, k, m->name, &all[pick], m->revision);
        if (rc == 0) { /* its body and revision are the manifest's: so was its token */
            free(r.client_token);
            r.client_token = strdup(m->client_token);
            rc = r.client_token
                     ? put(s, &r, report, "by its ota-runner:address tag and its content")
                     : -1;
        }
        otr_record_clear(&r);
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (holds[i] && i != pick)
            otr_buf_printf(report,
                           "%s/%s: %s %s is tagged so too and is not recorded (an older copy: "
                           "delete it if it is not wanted)\n",
                           k->name, m->name, k->noun, all[i].id);
    otr_buf_free(&why);
    free(holds);
    cJSON_Delete(body);
    return rc;
}

/* "ID, ID, ..." of n resources. */
static void ids_text(otr_buf *out, const otr_remote *all, size_t n)
{
    for (size_t k = 0; k < n; k++)
        otr_buf_printf(out, "%s%s", k ? ", " : "", all[k].id);
}

/* The resources tagged with a record's address that it does not take (a
 * rollout's tasks of another revision, or whose content is not a wave's):
 * reported, never recorded. */
static void report_unused(const otr_record *r, const otr_remote *all, size_t n, otr_buf *report)
{
    const char *ids[OTR_KIND_MAX_IDS];
    size_t nids = r->kind->ids_of ? r->kind->ids_of(r, ids, OTR_KIND_MAX_IDS) : 0;
    const otr_kind *noun = otr_kind_sent(r->kind);
    for (size_t i = 0; i < n; i++) {
        int used = 0;
        for (size_t k = 0; k < nids; k++)
            used |= !strcmp(ids[k], all[i].id);
        if (!used)
            otr_buf_printf(report,
                           "%s/%s: %s %s is tagged with it, but is none of its waves as revision "
                           "%ld of the manifest makes them: not adopted, and never updated or "
                           "deleted by ota-runner\n",
                           r->kind->name, r->name, noun->noun, all[i].id, r->revision);
    }
}

/* The generations of the tokens that made the adopted resources among all
 * (their ota-runner:generation tags): those below are spent. */
static int spend_adopted(otr_state *s, const otr_kind *kind, const char *name,
                         const otr_remote *all, size_t n)
{
    const otr_kind *sent = otr_kind_sent(kind);
    for (size_t i = 0; i < n; i++) {
        const cJSON *tags = sent->tags_key && all[i].fields
                                ? cJSON_GetObjectItemCaseSensitive(all[i].fields, sent->tags_key)
                                : NULL;
        if (otr_state_adopted_generation(s, kind, name, all[i].id, otr_tags_generation(tags)) < 0)
            return -1;
    }
    return 0;
}

/* One address the tags name: its newest resource, or the kind's own record
 * rebuilt from all of them (a rollout's waves); what is left is reported. */
static int adopt_address(otr_state *s, reading *rd, const held *h, const otr_manifest_set *set,
                         otr_buf *report)
{
    otr_remote *all;
    size_t n = tagged(rd, h->owner, h->name, &all);
    const otr_manifest *m = otr_manifest_set_find(set, h->owner, h->name);
    /* a manifest renamed since (metadata.previousNames) takes what its old
     * name's tags hold, unless its own name's tags hold something */
    const otr_manifest *renamed = m ? NULL : otr_manifest_set_find_previous(set, h->owner, h->name);
    if (renamed && !has_tagged(rd, h->owner, renamed->name))
        m = renamed;
    otr_record r;
    otr_buf why = OTR_BUF_INIT;
    const otr_kind_behaviour *bh = NULL;
    int rc = 0;
    memset(&r, 0, sizeof(r));
    if (!all)
        return -1;
    if (!m) {
        /* not this commit's (a manifest since removed, or another fleet's in the
         * same account): recording it would let --prune delete it */
        otr_buf_printf(report, "%s/%s: %zu %s%s tagged with it (", h->owner->name, h->name, n,
                       otr_kind_sent(h->owner)->noun, n == 1 ? "" : "s");
        ids_text(report, all, n);
        otr_buf_puts(report, "), and no manifest of that name here: not adopted, left in the "
                             "service\n");
    } else if (!(bh = otr_behaviour_of(h->owner)) || !bh->adopt) {
        rc = adopt_own(s, m, all, n, report);
    } else if (bh->adopt(m, set, all, n, &r, &why) == 0) {
        report_unused(&r, all, n, report);
        rc = put(s, &r, report, "with its waves' tasks");
    } else {
        otr_buf_printf(report, "%s/%s: not adopted: %s (", h->owner->name, h->name,
                       otr_buf_cstr(&why));
        ids_text(report, all, n);
        otr_buf_puts(report, "; left in the service)\n");
    }
    if (rc == 0 && m)
        rc = spend_adopted(s, h->owner, h->name, all, n);
    otr_record_clear(&r);
    otr_buf_free(&why);
    free(all);
    return rc;
}

/* The resource of a kind without tags whose content is the manifest's: the
 * one the adopted tasks use most, else the newest; NULL when none is. */
static held *matching(reading *rd, const otr_state *s, const otr_manifest *m, size_t *count)
{
    held *best = NULL;
    size_t best_uses = 0;
    *count = 0;
    for (size_t i = 0; i < rd->n; i++) {
        held *h = &rd->items[i];
        otr_record r;
        if (h->kind != m->kind || h->taken || !h->got.fields)
            continue;
        int same = otr_record_from_remote(&r, h->kind, m->name, &h->got, 1) == 0 &&
                   !strcmp(r.spec_digest, m->spec_digest);
        otr_record_clear(&r);
        if (!same)
            continue;
        size_t uses = 0;
        for (size_t k = 0; k < s->count; k++)
            for (size_t f = 0; f < s->records[k].kind->nrefs; f++) {
                uses += otr_record_spec_is(&s->records[k], s->records[k].kind->refs[f].id_field,
                                           h->got.id);
            }
        (*count)++;
        if (!best || uses > best_uses ||
            (uses == best_uses && h->got.created_at > best->got.created_at)) {
            best = h;
            best_uses = uses;
        }
    }
    return best;
}

/* Every manifest of a kind without tags: the resource with its content. */
static int adopt_untagged(otr_state *s, reading *rd, const otr_manifest_set *set, otr_buf *report)
{
    for (size_t i = 0; i < set->count; i++) {
        const otr_manifest *m = set->items[i];
        size_t count;
        if (m->kind->tags_key || m->kind->plans_itself || otr_state_find(s, m->kind, m->name))
            continue;
        held *h = matching(rd, s, m, &count);
        if (!h)
            continue;
        otr_record r;
        h->taken = 1;
        if (otr_record_from_remote(&r, h->kind, m->name, &h->got, m->revision) < 0 ||
            put(s, &r, report, "by its content, the manifest's") < 0) {
            otr_record_clear(&r);
            return -1;
        }
        if (count > 1)
            otr_buf_printf(report, "%s/%s: %zu more hold the same content and are not recorded\n",
                           m->kind->name, m->name, count - 1);
    }
    return 0;
}

long otr_adopt(otr_state *s, const otr_refresh_result *r, otr_aws_client *c,
               const otr_manifest_set *set, otr_buf *report, otr_error *err)
{
    reading rd;
    long rc;
    memset(&rd, 0, sizeof(rd));
    if (s->count || s->npending)
        return otr_error_set(err, OTR_ERR_USAGE,
                             "state %s records %zu resources: only a state that records nothing "
                             "is rebuilt from the service",
                             s->path, s->count);
    rc = read_all(&rd, r, c, NULL, NULL, err);
    /* the tagged first: a configuration in use by an adopted task is the one to take */
    for (size_t i = 0; rc == 0 && i < rd.n; i++) {
        const held *h = &rd.items[i];
        if (h->owner && !h->taken && !otr_state_find(s, h->owner, h->name) &&
            adopt_address(s, &rd, h, set, report) < 0)
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    if (rc == 0 && adopt_untagged(s, &rd, set, report) < 0)
        rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < rd.n; i++)
        otr_remote_clear(&rd.items[i].got);
    free(rd.items);
    otr_buf_free(&rd.errors);
    return rc < 0 ? -1 : (long)s->count;
}

/* ---- creates that landed ------------------------------------------------------------- */

typedef struct recorded_ids {
    const char **ids; /* sorted (otr_state_ids) */
    size_t n;
} recorded_ids;

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int not_recorded(const otr_remote *listed, const void *ctx)
{
    const recorded_ids *r = ctx;
    const char *id = listed->id;
    return listed->id && !bsearch(&id, r->ids, r->n, sizeof(*r->ids), str_cmp);
}

/* A pending create of a kind whose resources carry tags. */
static int tagged_create(const otr_intent *in)
{
    const otr_kind *sent = otr_kind_sent(in->rec.kind);
    return in->op == OTR_OP_CREATE && sent->tags_key != NULL;
}

/* The body the intent's create sends, or NULL. */
static cJSON *intent_body(const otr_intent *in)
{
    cJSON *body = NULL;
    char token[OTR_TOKEN_SIZE];
    if (!in->rec.kind->body_of)
        return otr_record_spec(&in->rec);
    if (in->rec.kind->body_of(&in->rec, &body, token) < 0) {
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

/* Records the create of in (a copy: settling takes it off the pending list)
 * as done, with the resource found. */
static int settle_found(otr_state *s, const otr_intent *pending, const otr_remote *got, int journal,
                        otr_buf *report, otr_error *err)
{
    otr_intent in;
    otr_record done;
    memset(&in, 0, sizeof(in));
    memset(&done, 0, sizeof(done));
    char at[21];
    otr_time_format_iso8601(at, (time_t)got->created_at);
    int rc = otr_intent_copy(&in, pending) < 0 || otr_record_copy(&done, &pending->rec) < 0
                 ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory")
                 : 0;
    if (rc == 0) {
        free(done.id);
        free(done.arn);
        free(done.created_at);
        free(done.phase);
        done.id = strdup(got->id);
        done.arn = got->arn ? strdup(got->arn) : NULL;
        done.created_at = strdup(at);
        done.phase = strdup("created");
        if (!done.id || !done.created_at || !done.phase)
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    if (rc == 0)
        rc = journal ? otr_state_journal_result(s, &in, &done, 1, 0, NULL, err)
                     : otr_state_settle_done(s, &in, &done, err);
    if (rc == 0 && spend_adopted(s, in.rec.kind, in.rec.name, got, 1) < 0)
        rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    if (rc == 0) {
        otr_address_short(report, in.rec.kind, in.rec.name);
        otr_buf_printf(report,
                       ": the create an interrupted run left unfinished had reached the service "
                       "(task %s, found by its tags and body): recorded, not sent again\n",
                       got->id);
    }
    otr_record_clear(&done);
    otr_intent_clear(&in);
    return rc;
}

long otr_adopt_landed(otr_state *s, const otr_refresh_result *r, otr_aws_client *c, int journal,
                      otr_buf *report, otr_error *err)
{
    reading rd;
    recorded_ids rec = {NULL, 0};
    long found = 0;
    int rc = 0;
    size_t pending = 0;
    memset(&rd, 0, sizeof(rd));
    for (size_t i = 0; i < s->npending; i++)
        pending += tagged_create(&s->pending[i]);
    if (!pending)
        return 0;
    if (otr_state_ids(s, &rec.ids, &rec.n) < 0)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    rc = read_all(&rd, r, c, not_recorded, &rec, err);
    free(rec.ids); /* borrowed from the records, which settling changes */
    for (size_t i = 0; rc == 0 && i < s->npending;) {
        const otr_intent *in = &s->pending[i];
        const otr_kind *sent = otr_kind_sent(in->rec.kind);
        cJSON *body = tagged_create(in) ? intent_body(in) : NULL;
        held *hit = NULL;
        for (size_t k = 0; body && !hit && k < rd.n; k++) {
            held *h = &rd.items[k];
            otr_buf why = OTR_BUF_INIT;
            if (!h->taken && h->owner == in->rec.kind && !strcmp(h->name, in->rec.name) &&
                otr_kind_holds_body(sent, body, in->rec.revision, h->got.fields, &why) == 1)
                hit = h;
            otr_buf_free(&why);
        }
        cJSON_Delete(body);
        if (!hit) {
            i++;
            continue;
        }
        hit->taken = 1;
        if (settle_found(s, in, &hit->got, journal, report, err) < 0)
            rc = -1;
        else
            found++; /* the intent left the list: i stays */
    }
    for (size_t i = 0; i < rd.n; i++)
        otr_remote_clear(&rd.items[i].got);
    free(rd.items);
    otr_buf_free(&rd.errors);
    return rc < 0 ? -1 : found;
}
