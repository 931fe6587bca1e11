/*
 * The state's model: the records (per kind, sorted), the retired resources,
 * the intents left pending, the snapshot's text, and the journal's two steps
 * as docs/DESIGN.md section 6 names them: an intent written before each mutating
 * call, a result after it; loading replays the journal over the snapshot and
 * leaves an intent without a result pending for the next run to finish
 * (their text: snapshot.c and journal.c). Where the text is kept is the
 * stores' business (persist.c, store.h).
 */
#include "state/internal.h"
#include "util/alloc.h"
#include "state/store.h"

#include "manifest/token.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/time.h"

#include <limits.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the record table (sorted by kind, then name) ------------------------ */

static int addr_cmp(const otr_kind *ka, const char *na, const otr_kind *kb, const char *nb)
{
    size_t a = otr_kind_index(ka), b = otr_kind_index(kb);
    if (a != b)
        return a < b ? -1 : 1;
    return strcmp(na, nb);
}

static size_t lower_bound(const otr_state *s, const otr_kind *kind, const char *name)
{
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (addr_cmp(s->records[mid].kind, s->records[mid].name, kind, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

otr_record *otr_state_find(otr_state *s, const otr_kind *kind, const char *name)
{
    size_t i = lower_bound(s, kind, name);
    return i < s->count && s->records[i].kind == kind && !strcmp(s->records[i].name, name)
               ? &s->records[i]
               : NULL;
}

/* The kind whose resources a kind's records hold (a rollout's are tasks). */
static const otr_kind *family(const otr_kind *k)
{
    return k->listed_as ? k->listed_as : k;
}

/* The ids of the resources a record holds: its id, or each of a rollout's
 * waves'. */
static size_t ids_of(const otr_record *r, const char **ids, size_t max)
{
    if (r->kind->ids_of)
        return r->kind->ids_of(r, ids, max);
    if (!r->id || !max)
        return 0;
    ids[0] = r->id;
    return 1;
}

otr_record *otr_state_find_id(otr_state *s, const otr_kind *kind, const char *id)
{
    const char *ids[OTR_KIND_MAX_IDS];
    for (size_t i = 0; id && i < s->count; i++) {
        if (family(s->records[i].kind) != family(kind))
            continue;
        for (size_t j = ids_of(&s->records[i], ids, OTR_KIND_MAX_IDS); j-- > 0;)
            if (!strcmp(ids[j], id))
                return &s->records[i];
    }
    return NULL;
}

/* ---- spent tokens ---------------------------------------------------------- */

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_spent(const otr_state *s, const char *token)
{
    return s->nspent && bsearch(&token, s->spent, s->nspent, sizeof(*s->spent), str_cmp) != NULL;
}

int otr_state_spend(otr_state *s, const char *sent)
{
    size_t lo = 0, hi = s->nspent;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->spent[mid], sent);
        if (c == 0)
            return 0;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (OTR_GROW(s->spent, s->nspent, s->spent_alloc, 16) < 0)
        return -1;
    char *copy = strdup(sent);
    if (!copy)
        return -1;
    memmove(&s->spent[lo + 1], &s->spent[lo], (s->nspent - lo) * sizeof(*s->spent));
    s->spent[lo] = copy;
    s->nspent++;
    return 0;
}

int otr_state_send_token(const otr_state *s, const char *token, int skip_held,
                         char out[OTR_TOKEN_SIZE], unsigned *generation)
{
    for (unsigned g = 0; g < UINT_MAX; g++) {
        if (otr_token_generation(out, token, g) < 0)
            return -1;
        if (is_spent(s, out))
            continue;
        if (skip_held) { /* the first unspent one made the resource held */
            skip_held = 0;
            continue;
        }
        *generation = g;
        return 0;
    }
    return -1;
}

int otr_state_spend_below(otr_state *s, const char *token, unsigned below)
{
    char sent[OTR_TOKEN_SIZE];
    for (unsigned g = 0; g < below; g++)
        if (otr_token_generation(sent, token, g) < 0 || otr_state_spend(s, sent) < 0)
            return -1;
    return 0;
}

static const char *token_of(const otr_record *r, const char *id)
{
    if (r->kind->token_of)
        return r->kind->token_of(r, id);
    return r->id && id && !strcmp(r->id, id) && r->client_token && *r->client_token
               ? r->client_token
               : NULL;
}

int otr_state_adopted_generation(otr_state *s, const otr_kind *kind, const char *name,
                                 const char *id, unsigned g)
{
    const otr_record *r = otr_state_find(s, kind, name);
    const char *token = r && g ? token_of(r, id) : NULL;
    return token ? otr_state_spend_below(s, token, g) : 0;
}

int otr_state_holds_token(otr_state *s, const otr_kind *kind, const char *name, const char *token)
{
    const otr_record *r = otr_state_find(s, kind, name);
    const char *ids[OTR_KIND_MAX_IDS];
    for (size_t j = r ? ids_of(r, ids, OTR_KIND_MAX_IDS) : 0; j-- > 0;) {
        const char *t = token_of(r, ids[j]);
        if (t && !strcmp(t, token))
            return 1;
    }
    return 0;
}

/* The record old lets go of the resources that after (NULL: none) does not
 * hold: their tokens are spent (the first unspent generation of each made
 * the resource; one imported has none). */
static int spend_released(otr_state *s, const otr_record *old, const otr_record *after)
{
    const char *ids[OTR_KIND_MAX_IDS], *kept[OTR_KIND_MAX_IDS];
    size_t n = ids_of(old, ids, OTR_KIND_MAX_IDS),
           nk = after ? ids_of(after, kept, OTR_KIND_MAX_IDS) : 0;
    for (size_t i = 0; i < n; i++) {
        int still = 0;
        for (size_t j = 0; j < nk && !still; j++)
            still = !strcmp(ids[i], kept[j]);
        const char *token = still ? NULL : token_of(old, ids[i]);
        char sent[OTR_TOKEN_SIZE];
        unsigned g;
        if (token &&
            (otr_state_send_token(s, token, 0, sent, &g) < 0 || otr_state_spend(s, sent) < 0))
            return -1;
    }
    return 0;
}

int otr_state_put_move(otr_state *s, otr_record *rec)
{
    size_t i = lower_bound(s, rec->kind, rec->name);
    if (i < s->count && s->records[i].kind == rec->kind && !strcmp(s->records[i].name, rec->name)) {
        if (spend_released(s, &s->records[i], rec) < 0)
            return -1;
        otr_record_clear(&s->records[i]);
        s->records[i] = *rec;
        memset(rec, 0, sizeof(*rec));
        return 0;
    }
    if (OTR_GROW(s->records, s->count, s->alloc, 64) < 0)
        return -1;
    memmove(&s->records[i + 1], &s->records[i], (s->count - i) * sizeof(*s->records));
    s->count++;
    s->records[i] = *rec;
    memset(rec, 0, sizeof(*rec));
    return 0;
}

int otr_state_put(otr_state *s, const otr_record *rec)
{
    otr_record copy;
    if (otr_record_copy(&copy, rec) < 0)
        return -1;
    if (otr_state_put_move(s, &copy) < 0) {
        otr_record_clear(&copy);
        return -1;
    }
    return 0;
}

int otr_state_remove(otr_state *s, const otr_kind *kind, const char *name)
{
    size_t i = lower_bound(s, kind, name);
    if (i >= s->count || s->records[i].kind != kind || strcmp(s->records[i].name, name) != 0)
        return -1;
    if (spend_released(s, &s->records[i], NULL) < 0)
        return -1;
    otr_record_clear(&s->records[i]);
    memmove(&s->records[i], &s->records[i + 1], (s->count - i - 1) * sizeof(*s->records));
    s->count--;
    return 0;
}

int otr_state_rename(otr_state *s, const otr_kind *kind, const char *from, const char *to)
{
    size_t i = lower_bound(s, kind, from);
    char *name = strdup(to);
    if (!name || i >= s->count || s->records[i].kind != kind ||
        strcmp(s->records[i].name, from) != 0 || otr_state_find(s, kind, to)) {
        free(name);
        return -1;
    }
    otr_record r = s->records[i]; /* taken out whole: its tokens stay in use */
    memmove(&s->records[i], &s->records[i + 1], (s->count - i - 1) * sizeof(*s->records));
    s->count--;
    free(r.name);
    r.name = name;
    if (otr_state_put_move(s, &r) < 0) {
        otr_record_clear(&r);
        return -1;
    }
    return 0;
}

/* ---- retired resources ---------------------------------------------------- */

otr_retired *otr_state_find_retired(otr_state *s, const otr_kind *kind, const char *id)
{
    for (size_t i = 0; id && i < s->nretired; i++)
        if (s->retired[i].kind == kind && !strcmp(s->retired[i].id, id))
            return &s->retired[i];
    return NULL;
}

static void retired_clear(otr_retired *r)
{
    free(r->name);
    free(r->id);
    free(r->retired_at);
    free(r->last_error);
    memset(r, 0, sizeof(*r));
}

int otr_state_retire(otr_state *s, const otr_kind *kind, const char *name, const char *id,
                     const char *at, const char *error)
{
    if (otr_state_find_retired(s, kind, id))
        return 0;
    otr_retired *p = realloc(s->retired, (s->nretired + 1) * sizeof(*p));
    if (!p)
        return -1;
    s->retired = p;
    otr_retired *r = &p[s->nretired];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->name = strdup(name);
    r->id = strdup(id);
    r->retired_at = at ? strdup(at) : otr_time_now_iso8601();
    r->last_error = error ? strdup(error) : NULL;
    s->nretired++;
    return r->name && r->id && r->retired_at ? 0 : -1;
}

static void remove_retired(otr_state *s, const otr_kind *kind, const char *id)
{
    otr_retired *r = otr_state_find_retired(s, kind, id);
    if (!r)
        return;
    size_t i = (size_t)(r - s->retired);
    retired_clear(r);
    memmove(&s->retired[i], &s->retired[i + 1], (s->nretired - i - 1) * sizeof(*s->retired));
    s->nretired--;
}

int otr_replace_str(char **slot, const char *error)
{
    char *copy = error ? strdup(error) : NULL;
    if (error && !copy)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* ---- intents and results -------------------------------------------------- */

int otr_intent_copy(otr_intent *dst, const otr_intent *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->op = src->op;
    dst->retired = src->retired;
    if (otr_record_copy(&dst->rec, &src->rec) < 0)
        return -1;
    if (src->replaces && !(dst->replaces = strdup(src->replaces))) {
        otr_intent_clear(dst);
        return -1;
    }
    return 0;
}

int otr_state_add_pending(otr_state *s, const otr_intent *in)
{
    otr_intent *p = realloc(s->pending, (s->npending + 1) * sizeof(*p));
    if (!p)
        return -1;
    s->pending = p;
    if (otr_intent_copy(&p[s->npending], in) < 0)
        return -1;
    s->npending++;
    return 0;
}

/* The same intent: op, address, and for a retired delete the id. */
int otr_intent_same(const otr_intent *a, const otr_intent *b)
{
    return a->op == b->op && a->rec.kind == b->rec.kind && !strcmp(a->rec.name, b->rec.name) &&
           a->retired == b->retired &&
           (!a->retired || (a->rec.id && b->rec.id && !strcmp(a->rec.id, b->rec.id)));
}

/* Takes the oldest pending intent like in out of the list; -1 when none. */
static int take_pending(otr_state *s, const otr_intent *in, otr_intent *out)
{
    for (size_t i = 0; i < s->npending; i++) {
        if (!otr_intent_same(&s->pending[i], in))
            continue;
        *out = s->pending[i];
        memmove(&s->pending[i], &s->pending[i + 1], (s->npending - i - 1) * sizeof(*s->pending));
        s->npending--;
        return 0;
    }
    return -1;
}

int otr_state_settle_done(otr_state *s, const otr_intent *in, const otr_record *rec, otr_error *err)
{
    return otr_state_settle(s, in, rec, 1, 0, NULL) < 0
               ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory")
               : 0;
}

static int id_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int otr_state_ids(const otr_state *s, const char ***ids, size_t *n)
{
    size_t cap = s->nretired + 1;
    for (size_t i = 0; i < s->count; i++)
        cap += s->records[i].kind->ids_of ? OTR_KIND_MAX_IDS : 1;
    *n = 0;
    if (!(*ids = calloc(cap, sizeof(**ids))))
        return -1;
    for (size_t i = 0; i < s->count; i++) {
        const otr_record *r = &s->records[i];
        if (r->kind->ids_of)
            *n += r->kind->ids_of(r, *ids + *n, OTR_KIND_MAX_IDS);
        else if (r->id)
            (*ids)[(*n)++] = r->id;
    }
    for (size_t i = 0; i < s->nretired; i++)
        (*ids)[(*n)++] = s->retired[i].id;
    if (*n > 1)
        qsort(*ids, *n, sizeof(**ids), id_cmp);
    return 0;
}

int otr_state_forget_pending(otr_state *s, const otr_intent *in)
{
    otr_intent done;
    if (take_pending(s, in, &done) < 0)
        return -1;
    otr_intent_clear(&done);
    return 0;
}

/* A delete done: the record goes, unless its kind keeps several ids and
 * some are left (a rollout's other waves). */
static int forget_deleted(otr_state *s, const otr_kind *k, const char *name, const char *id)
{
    otr_record *cur = otr_state_find(s, k, name);
    if (cur && k->forget_id && id) {
        const char *token = token_of(cur, id);
        char sent[OTR_TOKEN_SIZE];
        unsigned g;
        if (token &&
            (otr_state_send_token(s, token, 0, sent, &g) < 0 || otr_state_spend(s, sent) < 0))
            return -1;
        if (k->forget_id(cur, id) > 0)
            return 0;
    }
    if (cur && otr_state_remove(s, k, name) < 0)
        return -1;
    return 0;
}

/* The ids of the record at rec's address that rec drops (an old revision's
 * waves), retired, for a kind that keeps them (retires_dropped). */
static int retire_dropped(otr_state *s, const otr_kind *k, const otr_record *rec)
{
    const otr_record *cur = otr_state_find(s, k, rec->name);
    const char *was[OTR_KIND_MAX_IDS], *now[OTR_KIND_MAX_IDS];
    if (!cur || !k->retires_dropped || !k->ids_of)
        return 0;
    size_t n = k->ids_of(cur, was, OTR_KIND_MAX_IDS), m = k->ids_of(rec, now, OTR_KIND_MAX_IDS);
    for (size_t i = 0; i < n; i++) {
        int kept = 0;
        for (size_t j = 0; j < m && !kept; j++)
            kept = !strcmp(was[i], now[j]);
        if (!kept && otr_state_retire(s, k, cur->name, was[i], NULL, NULL) < 0)
            return -1;
    }
    return 0;
}

int otr_state_settle(otr_state *s, const otr_intent *in, const otr_record *rec, int ok,
                     int conflict, const char *error)
{
    otr_intent done;
    if (take_pending(s, in, &done) == 0)
        otr_intent_clear(&done);
    const otr_kind *k = in->rec.kind;
    if (in->op == OTR_OP_DELETE && in->retired) {
        otr_retired *r = otr_state_find_retired(s, k, in->rec.id);
        if (ok)
            remove_retired(s, k, in->rec.id);
        else if (r)
            return otr_replace_str(&r->last_error, error);
        return 0;
    }
    if (!ok) {
        /* a resource still in use: kept, retired, for a later run to delete */
        const otr_record *cur = otr_state_find(s, k, in->rec.name);
        if (in->op == OTR_OP_DELETE && conflict && k->conflict_retires && cur && cur->id) {
            if (otr_state_retire(s, k, cur->name, cur->id, NULL, error) < 0)
                return -1;
            otr_state_remove(s, k, in->rec.name);
        }
        return 0;
    }
    if (in->op == OTR_OP_DELETE)
        return forget_deleted(s, k, in->rec.name, in->rec.id);
    if (in->op == OTR_OP_CREATE && in->replaces &&
        otr_state_retire(s, k, in->rec.name, in->replaces, NULL, NULL) < 0)
        return -1;
    if (in->op == OTR_OP_CREATE && retire_dropped(s, k, rec) < 0)
        return -1;
    if (in->op == OTR_OP_CREATE && k->created) { /* the new id where the kind keeps it too */
        otr_record copy;
        if (otr_record_copy(&copy, rec) < 0)
            return -1;
        if (k->created(&copy) < 0 || otr_state_put_move(s, &copy) < 0) {
            otr_record_clear(&copy);
            return -1;
        }
        return 0;
    }
    return otr_state_put(s, rec);
}

otr_state *otr_state_copy_records(const otr_state *state)
{
    otr_state *view = otr_state_new(state->path);
    for (size_t i = 0; view && i < state->count; i++)
        if (otr_state_put(view, &state->records[i]) < 0)
            goto fail;
    for (size_t i = 0; view && i < state->nretired; i++) {
        const otr_retired *r = &state->retired[i];
        if (otr_state_retire(view, r->kind, r->name, r->id, r->retired_at, r->last_error) < 0)
            goto fail;
    }
    return view;
fail:
    otr_state_free(view);
    return NULL;
}

int otr_state_project(otr_state *view, const otr_intent *in)
{
    return otr_state_add_pending(view, in) < 0 ||
                   otr_state_settle(view, in, &in->rec, 1, 0, NULL) < 0
               ? -1
               : 0;
}

/* ---- lineage ---------------------------------------------------------------- */

/* A random UUID; -1 when OpenSSL has no random bytes to give (never a
 * guessable fallback: two states must never share a lineage). */
static int new_lineage(char out[40])
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return -1;
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80); /* variant 1 */
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
    return 0;
}

otr_state *otr_state_new(const char *path)
{
    otr_state *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (!(s->path = strdup(path))) {
        free(s);
        return NULL;
    }
    if (new_lineage(s->lineage) < 0) {
        free(s->path);
        free(s);
        return NULL;
    }
    return s;
}

/* ---- checks ------------------------------------------------------------------ */

typedef struct id_ref {
    size_t family; /* the kind of the resource (a rollout's wave is a task) */
    const otr_kind *kind;
    const char *id;
    const char *name;
} id_ref;

static int id_ref_cmp(const void *a, const void *b)
{
    const id_ref *x = a, *y = b;
    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    int c = strcmp(x->id, y->id);
    return c ? c : strcmp(x->name, y->name);
}

/* One resource belongs to one name: a state where two names record the same
 * task (a task's, or a rollout wave's) would let a plan for one of them
 * delete the other's running task. */
int otr_state_check_ids(const otr_state *s, otr_error *err)
{
    const char *ids[OTR_KIND_MAX_IDS];
    size_t cap = 1, n = 0;
    for (size_t i = 0; i < s->count; i++)
        cap += ids_of(&s->records[i], ids, OTR_KIND_MAX_IDS);
    id_ref *refs = malloc(cap * sizeof(*refs));
    int rc = 0;
    if (!refs)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->count; i++) {
        const otr_record *r = &s->records[i];
        for (size_t j = ids_of(r, ids, OTR_KIND_MAX_IDS); j-- > 0;)
            refs[n++] = (id_ref){otr_kind_index(family(r->kind)), r->kind, ids[j], r->name};
    }
    if (n > 1)
        qsort(refs, n, sizeof(*refs), id_ref_cmp);
    for (size_t i = 1; i < n && rc == 0; i++)
        if (refs[i - 1].family == refs[i].family && !strcmp(refs[i - 1].id, refs[i].id)) {
            const otr_kind *k = otr_kinds[refs[i].family];
            otr_buf a = OTR_BUF_INIT, b = OTR_BUF_INIT;
            otr_address_short(&a, refs[i - 1].kind, refs[i - 1].name);
            otr_address_short(&b, refs[i].kind, refs[i].name);
            rc = otr_error_set(err, OTR_ERR_INVALID,
                               "state file %s records %s %s under two names, %s and %s; one "
                               "%s belongs to one manifest, so the state was left as it is. "
                               "Remove the wrong one with 'ota-runner state rm NAME'",
                               s->path, k->noun, refs[i].id, otr_buf_cstr(&a), otr_buf_cstr(&b),
                               k->noun);
            otr_buf_free(&a);
            otr_buf_free(&b);
        }
    free(refs);
    return rc;
}

void otr_state_free(otr_state *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++)
        otr_record_clear(&s->records[i]);
    free(s->records);
    for (size_t i = 0; i < s->nretired; i++)
        retired_clear(&s->retired[i]);
    free(s->retired);
    for (size_t i = 0; i < s->npending; i++)
        otr_intent_clear(&s->pending[i]);
    free(s->pending);
    for (size_t i = 0; i < s->nspent; i++)
        free(s->spent[i]);
    free(s->spent);
    otr_store_free(s->store); /* releases the lock */
    otr_buf_free(&s->journal_queue);
    cJSON_Delete(s->source);
    cJSON_Delete(s->service);
    cJSON_Delete(s->outbox);
    free(s->updated_at);
    free(s->path);
    free(s);
}
