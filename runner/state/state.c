/*
 * The state's model: the records (per kind, sorted), the retired resources,
 * the intents left pending, the snapshot's text, and the journal's two steps
 * as docs/DESIGN.md section 6 names them: an intent written before each mutating
 * call, a result after it; loading replays the journal over the snapshot and
 * leaves an intent without a result pending for the next run to finish.
 * Where the text is kept is local.c's business.
 */
#include "state/internal.h"
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
    if (s->nspent == s->spent_alloc) {
        size_t n = s->spent_alloc ? s->spent_alloc * 2 : 16;
        char **p = realloc(s->spent, n * sizeof(*p));
        if (!p)
            return -1;
        s->spent = p;
        s->spent_alloc = n;
    }
    char *copy = strdup(sent);
    if (!copy)
        return -1;
    memmove(&s->spent[lo + 1], &s->spent[lo], (s->nspent - lo) * sizeof(*s->spent));
    s->spent[lo] = copy;
    s->nspent++;
    return 0;
}

int otr_state_send_token(const otr_state *s, const char *token, int skip_held, char out[44],
                         unsigned *generation)
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
    char sent[44];
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
        char sent[44];
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
    if (s->count == s->alloc) {
        size_t n = s->alloc ? s->alloc * 2 : 64;
        otr_record *p = realloc(s->records, n * sizeof(*p));
        if (!p)
            return -1;
        s->records = p;
        s->alloc = n;
    }
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

static int replace_str(char **slot, const char *error)
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
static int same_intent(const otr_intent *a, const otr_intent *b)
{
    return a->op == b->op && a->rec.kind == b->rec.kind && !strcmp(a->rec.name, b->rec.name) &&
           a->retired == b->retired &&
           (!a->retired || (a->rec.id && b->rec.id && !strcmp(a->rec.id, b->rec.id)));
}

/* Takes the oldest pending intent like in out of the list; -1 when none. */
static int take_pending(otr_state *s, const otr_intent *in, otr_intent *out)
{
    for (size_t i = 0; i < s->npending; i++) {
        if (!same_intent(&s->pending[i], in))
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
        char sent[44];
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
            return replace_str(&r->last_error, error);
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

/* ---- the snapshot ----------------------------------------------------------- */

static int refuse(otr_error *err, const char *path, const char *what)
{
    return otr_error_set(err, OTR_ERR_INVALID,
                         "state file %s %s; it was left as it is. Restore it from %s.bak or "
                         "from version control, or move it away to start a new state",
                         path, what, path);
}

/* The state file's text, walked one record at a time (util/json.h): a
 * 100k-record state is never one tree. */
typedef struct span {
    const char *at; /* NULL: absent */
    size_t len, offset;
    const otr_kind *kind;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

typedef struct snapshot_walk {
    otr_state *s;
    cJSON *head;    /* the members that are not records (small) */
    span *sections; /* each kind's records (walked in the order of the text) */
    const otr_kind *kind;
    size_t at;      /* the offset of the text being walked */
    size_t total;   /* the length of the whole text */
    size_t bad_at;  /* where the text is not JSON */
    otr_buf why;    /* a bad record */
    char *released; /* the text before this was given back (release_behind) */
} snapshot_walk;

/* Text walked is given back this many bytes at a time. */
#define OTR_STATE_RELEASE_STEP ((size_t)1 << 20)

/* Gives the whole pages of the text before upto back to the system: the
 * walk never reads behind itself (sections go in the order of the text),
 * so a 100 MB state is not held whole while its records are made. The
 * text is the walk's own malloc'd memory: its pages read as zeros after
 * MADV_DONTNEED, and free() touches only what lies before the text. */
static void release_behind(snapshot_walk *w, char *upto)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)w->released + page - 1) & ~(page - 1);
    uintptr_t to = (uintptr_t)upto & ~(page - 1);
    if (to <= from || to - from < OTR_STATE_RELEASE_STEP)
        return;
    if (madvise((void *)from, to - from, MADV_DONTNEED) == 0)
        w->released = (char *)to;
}

enum { WALK_NOT_JSON = 1, WALK_BAD_RECORD, WALK_NOMEM };

static int not_json(otr_error *err, const char *path, size_t at, size_t len)
{
    otr_buf why = OTR_BUF_INIT;
    otr_buf_printf(&why, "is not valid JSON (at byte %zu of %zu: truncated or damaged)", at, len);
    refuse(err, path, otr_buf_cstr(&why));
    otr_buf_free(&why);
    return -1;
}

static int on_record(void *ctx, const char *name, const char *value, size_t len, size_t offset)
{
    snapshot_walk *w = ctx;
    size_t bad;
    cJSON *o = otr_json_parse_span(value, len, &bad);
    if (!o) {
        w->bad_at = w->at + offset + bad;
        return WALK_NOT_JSON;
    }
    otr_record r;
    int rc = otr_record_from_json(&r, w->kind, name, o, 0, &w->why) < 0 ? WALK_BAD_RECORD
             : otr_state_put_move(w->s, &r) < 0                         ? WALK_NOMEM
                                                                        : 0;
    otr_record_clear(&r);
    cJSON_Delete(o);
    release_behind(w, (char *)value + len);
    return rc;
}

/* One kind's records, each made from its own text. */
static int parse_records(snapshot_walk *w, const otr_kind *kind, const span *section,
                         otr_error *err)
{
    const char *path = w->s->path;
    size_t bad = 0;
    if (!section->at)
        return 0;
    if (*section->at != '{') {
        cJSON *v = otr_json_parse_span(section->at, section->len, &bad);
        if (!v)
            return not_json(err, path, section->offset + bad, w->total);
        cJSON_Delete(v);
        otr_buf why = OTR_BUF_INIT;
        otr_buf_printf(&why, "has a \"%s\" that is not an object", kind->state_key);
        refuse(err, path, otr_buf_cstr(&why));
        otr_buf_free(&why);
        return -1;
    }
    w->kind = kind;
    w->at = section->offset;
    int rc = otr_json_each_member(section->at, section->len, on_record, w, &bad);
    if (rc == -1)
        w->bad_at = section->offset + bad;
    if (rc == -1 || rc == WALK_NOT_JSON)
        return not_json(err, path, w->bad_at, w->total);
    if (rc == WALK_BAD_RECORD) {
        otr_buf msg = OTR_BUF_INIT;
        otr_buf_printf(&msg, "has a bad record: %s", otr_buf_cstr(&w->why));
        refuse(err, path, otr_buf_cstr(&msg));
        otr_buf_free(&msg);
        return -1;
    }
    return rc ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory") : 0;
}

static int parse_retired(otr_state *s, const cJSON *list, otr_error *err)
{
    const cJSON *r;
    if (!list)
        return 0;
    if (!cJSON_IsArray(list))
        return refuse(err, s->path, "has a \"retired\" that is not a list");
    cJSON_ArrayForEach(r, list)
    {
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "kind"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "name"));
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "id"));
        const otr_kind *k = kind ? otr_kind_find(kind) : NULL;
        if (!k || !name || !id)
            return refuse(err, s->path,
                          "has a bad \"retired\" entry (kind, name and id are needed)");
        if (otr_state_retire(
                s, k, name, id,
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "retiredAt")),
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "lastError"))) < 0)
            return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* "spentTokens": ClientTokens (43 characters each); absent in older files. */
static int parse_spent(otr_state *s, const cJSON *list, otr_error *err)
{
    const cJSON *t;
    if (!list)
        return 0;
    if (!cJSON_IsArray(list))
        return refuse(err, s->path, "has a \"spentTokens\" that is not a list");
    cJSON_ArrayForEach(t, list)
    {
        if (!cJSON_IsString(t) || !*t->valuestring || strlen(t->valuestring) > 43 ||
            t->valuestring[strspn(t->valuestring, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                                  "qrstuvwxyz0123456789=_-")])
            return refuse(err, s->path, "has a spent token that is not a ClientToken");
        if (otr_state_spend(s, t->valuestring) < 0)
            return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* The header: format, version (1 or 2), lineage, serial. */
static int parse_header(otr_state *s, const cJSON *root, otr_error *err)
{
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    otr_buf why = OTR_BUF_INIT;
    int rc = -1;
    if (!cJSON_IsObject(root) || !cJSON_IsString(format) ||
        strcmp(format->valuestring, OTR_STATE_FORMAT)) {
        refuse(err, s->path,
               "is not an ota-runner state file (no \"format\": \"ota-runner-state\")");
        goto done;
    }
    if (!cJSON_IsNumber(version)) {
        refuse(err, s->path, "has no version");
        goto done;
    }
    if (version->valuedouble != 1 && version->valuedouble != OTR_STATE_VERSION) {
        otr_buf_printf(&why, "has version %g, and this ota-runner reads versions 1 to %d%s",
                       version->valuedouble, OTR_STATE_VERSION,
                       version->valuedouble > OTR_STATE_VERSION
                           ? " (written by a newer ota-runner: upgrade)"
                           : "");
        refuse(err, s->path, otr_buf_cstr(&why));
        goto done;
    }
    s->version_read = (int)version->valuedouble;
    const cJSON *lineage = cJSON_GetObjectItemCaseSensitive(root, "lineage");
    long long serial;
    if (!cJSON_IsString(lineage) || strlen(lineage->valuestring) != 36) {
        refuse(err, s->path, "has no valid lineage");
        goto done;
    }
    if (otr_json_integer(cJSON_GetObjectItemCaseSensitive(root, "serial"), 0, 1LL << 53, &serial) <
        0) {
        refuse(err, s->path, "has no valid serial");
        goto done;
    }
    snprintf(s->lineage, sizeof(s->lineage), "%s", lineage->valuestring);
    s->serial = (long)serial;
    rc = 0;
done:
    otr_buf_free(&why);
    return rc;
}

/* A member of the top level: a kind's records are kept as text for
 * parse_records (the first of a key, as a tree's look-up finds), every
 * other member goes into head. */
static int on_top(void *ctx, const char *key, const char *value, size_t len, size_t offset)
{
    snapshot_walk *w = ctx;
    for (size_t i = 0; otr_kinds[i]; i++)
        if (!strcmp(key, otr_kinds[i]->state_key)) {
            if (!w->sections[i].at)
                w->sections[i] = (span){value, len, offset, otr_kinds[i]};
            return 0;
        }
    size_t bad;
    cJSON *v = otr_json_parse_span(value, len, &bad);
    if (!v) {
        w->bad_at = offset + bad;
        return WALK_NOT_JSON;
    }
    if (!cJSON_AddItemToObject(w->head, key, v)) {
        cJSON_Delete(v);
        return WALK_NOMEM;
    }
    return 0;
}

int otr_state_parse_snapshot(otr_state *s, char *text, size_t len, otr_error *err)
{
    size_t nkinds = 0, bad = 0, tasks = 0;
    while (otr_kinds[nkinds])
        nkinds++;
    snapshot_walk w = {.s = s, .total = len, .released = text};
    w.head = cJSON_CreateObject();
    w.sections = calloc(nkinds + 1, sizeof(*w.sections));
    int rc = -1;
    if (!w.head || !w.sections) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t first = 0;
    while (first < len && strchr(" \t\n\r", text[first]))
        first++;
    if (first == len || text[first] != '{') { /* not an object: what is it? */
        const char *end = NULL;
        cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
        if (v)
            parse_header(s, v, err); /* refuses it */
        else
            not_json(err, s->path, end ? (size_t)(end - text) : len, len);
        cJSON_Delete(v);
        goto done;
    }
    int walked = otr_json_each_member(text, len, on_top, &w, &bad);
    if (walked == -1 || walked == WALK_NOT_JSON) {
        not_json(err, s->path, walked == -1 ? bad : w.bad_at, len);
        goto done;
    }
    if (walked) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (parse_header(s, w.head, err) < 0)
        goto done;
    while (otr_kinds[tasks] && strcmp(otr_kinds[tasks]->state_key, "tasks"))
        tasks++;
    if (tasks == nkinds || !w.sections[tasks].at || *w.sections[tasks].at != '{') {
        refuse(err, s->path, "has no \"tasks\" object");
        goto done;
    }
    const char *updated =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(w.head, "updatedAt"));
    s->updated_at = updated ? strdup(updated) : NULL;
    s->source = cJSON_DetachItemFromObjectCaseSensitive(w.head, "source");
    s->service = cJSON_DetachItemFromObjectCaseSensitive(w.head, "service");
    qsort(w.sections, nkinds, sizeof(*w.sections), span_cmp); /* in the text's order */
    for (size_t i = 0; i < nkinds; i++)
        if (parse_records(&w, w.sections[i].kind, &w.sections[i], err) < 0)
            goto done;
    if (parse_retired(s, cJSON_GetObjectItemCaseSensitive(w.head, "retired"), err) < 0 ||
        parse_spent(s, cJSON_GetObjectItemCaseSensitive(w.head, "spentTokens"), err) < 0)
        goto done;
    s->exists = 1;
    rc = 0;
done:
    free(text);
    free(w.sections);
    otr_buf_free(&w.why);
    cJSON_Delete(w.head);
    return rc;
}

char *otr_state_snapshot_text(const otr_state *s)
{
    otr_jb b = OTR_JB_INIT;
    cJSON *root = cJSON_CreateObject();
    otr_jb_str(&b, root, "format", OTR_STATE_FORMAT);
    otr_jb_num(&b, root, "version", OTR_STATE_VERSION);
    otr_jb_str(&b, root, "lineage", s->lineage);
    otr_jb_num(&b, root, "serial", (double)s->serial);
    otr_jb_str(&b, root, "updatedAt", s->updated_at);
    if (s->source)
        otr_jb_add(&b, root, "source", cJSON_Duplicate(s->source, 1));
    if (s->service)
        otr_jb_add(&b, root, "service", cJSON_Duplicate(s->service, 1));
    for (size_t k = 0; otr_kinds[k]; k++)
        otr_jb_object(&b, root, otr_kinds[k]->state_key);
    for (size_t i = 0; i < s->count && !b.failed; i++)
        otr_jb_add(&b, cJSON_GetObjectItemCaseSensitive(root, s->records[i].kind->state_key),
                   s->records[i].name, otr_record_to_json(&s->records[i]));
    cJSON *retired = otr_jb_array(&b, root, "retired");
    for (size_t i = 0; i < s->nretired && !b.failed; i++) {
        const otr_retired *r = &s->retired[i];
        cJSON *o = otr_jb_object(&b, retired, NULL);
        otr_jb_str(&b, o, "kind", r->kind->name);
        otr_jb_str(&b, o, "name", r->name);
        otr_jb_str(&b, o, "id", r->id);
        otr_jb_str(&b, o, "retiredAt", r->retired_at);
        otr_jb_str(&b, o, "lastError", r->last_error);
    }
    if (s->nspent) {
        cJSON *spent = otr_jb_array(&b, root, "spentTokens");
        for (size_t i = 0; i < s->nspent && !b.failed; i++)
            otr_jb_str(&b, spent, NULL, s->spent[i]);
    }
    char *text = root && !b.failed && otr_canonical_sort(root) == 0 ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return text;
}

/* ---- the journal ------------------------------------------------------------- */

/* The fields every journal line has (added to e, which is taken, with b's
 * failures so far); the line itself, with its newline, or NULL. */
static char *line_of(const otr_state *s, otr_jb *b, cJSON *e, const otr_intent *in, long seq)
{
    char *text = NULL, *line = NULL;
    otr_jb_str(b, e, "op", otr_op_name(in->op));
    otr_jb_str(b, e, "kind", in->rec.kind->name);
    otr_jb_str(b, e, "name", in->rec.name);
    if (in->retired)
        otr_jb_bool(b, e, "retired", 1);
    otr_jb_num(b, e, "seq", (double)seq);
    otr_jb_str(b, e, "lineage", s->lineage);
    otr_jb_num(b, e, "serial", (double)s->serial);
    if (e && !b->failed && otr_canonical_sort(e) == 0)
        text = cJSON_PrintUnformatted(e);
    if (text) {
        otr_buf lb = OTR_BUF_INIT;
        otr_buf_printf(&lb, "%s\n", text);
        line = otr_buf_detach(&lb);
    }
    free(text);
    cJSON_Delete(e);
    return line;
}

char *otr_state_intent_line(const otr_state *s, const otr_intent *in, long seq)
{
    otr_jb b = OTR_JB_INIT;
    cJSON *e = cJSON_CreateObject();
    otr_jb_str(&b, e, "type", "intent");
    otr_jb_add(&b, e, "record", otr_record_to_json(&in->rec));
    otr_jb_str(&b, e, "replaces", in->replaces);
    return line_of(s, &b, e, in, seq);
}

char *otr_state_result_line(const otr_state *s, const otr_intent *in, const otr_record *rec, int ok,
                            int conflict, const char *error, long seq)
{
    otr_jb b = OTR_JB_INIT;
    cJSON *e = cJSON_CreateObject();
    char *now = otr_time_now_iso8601();
    const otr_kind *k = in->rec.kind;
    if (!now)
        b.failed = 1;
    otr_jb_str(&b, e, "type", "result");
    otr_jb_bool(&b, e, "ok", ok);
    if (conflict)
        otr_jb_bool(&b, e, "conflict", 1);
    if (rec) {
        otr_jb_str(&b, e, k->id_key, rec->id);
        if (k->arn_key)
            otr_jb_str(&b, e, k->arn_key, rec->arn);
    }
    otr_jb_str(&b, e, "error", error);
    otr_jb_str(&b, e, "at", now);
    free(now);
    return line_of(s, &b, e, in, seq);
}

static int damaged(otr_error *err, const char *jpath, size_t lineno)
{
    return otr_error_set(err, OTR_ERR_INVALID,
                         "journal %s: line %zu is damaged; it was left as it "
                         "is (look at it, then move it away to continue without it)",
                         jpath, lineno);
}

/* An intent line's intent (the record taken out of j). */
static int read_intent(cJSON *j, otr_intent *in, size_t lineno, const char *jpath, otr_error *err)
{
    cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "record");
    const char *name = in->rec.name;
    const otr_kind *k = in->rec.kind;
    otr_buf why = OTR_BUF_INIT;
    in->rec.name = NULL;
    if (in->op == OTR_OP_DELETE && cJSON_IsObject(r)) {
        in->rec.kind = k;
        in->rec.name = strdup(name);
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, k->id_key));
        in->rec.id = id ? strdup(id) : NULL;
    } else if (otr_record_from_json(&in->rec, k, name, r, 1, &why) < 0) {
        otr_error_set(err, OTR_ERR_INVALID, "journal %s: line %zu: %s", jpath, lineno,
                      otr_buf_cstr(&why));
        otr_buf_free(&why);
        return -1;
    }
    otr_buf_free(&why);
    const char *replaces = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "replaces"));
    in->replaces = replaces ? strdup(replaces) : NULL;
    return in->rec.name ? 0 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
}

/* The pending intent a result line settles, with the result's ids on its
 * record, applied. */
static int replay_result(otr_state *s, cJSON *j, const otr_intent *key)
{
    const otr_kind *k = key->rec.kind;
    const otr_intent *pending = NULL;
    for (size_t i = 0; i < s->npending && !pending; i++)
        if (same_intent(&s->pending[i], key))
            pending = &s->pending[i];
    if (!pending)
        return 0; /* a result without its intent: nothing to settle */
    otr_intent in;
    if (otr_intent_copy(&in, pending) < 0)
        return -1;
    int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"));
    int conflict = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "conflict"));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, k->id_key));
    const char *arn =
        k->arn_key ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, k->arn_key)) : NULL;
    int rc = 0;
    if (ok && id && !in.retired && replace_str(&in.rec.id, id) < 0)
        rc = -1;
    if (ok && arn && replace_str(&in.rec.arn, arn) < 0)
        rc = -1;
    if (rc == 0)
        rc = otr_state_settle(s, &in, &in.rec, ok, conflict,
                              cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "error")));
    otr_intent_clear(&in);
    return rc;
}

/* The header every line has; fills what the line is about. Returns 1 when
 * the line belongs to an older snapshot (skip it). */
static int read_header(otr_state *s, const cJSON *j, otr_intent *key, const char **type,
                       size_t lineno, const char *jpath, otr_error *err)
{
    const char *lineage = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "lineage"));
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "kind"));
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "op"));
    long long jserial = 0;
    *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
    key->rec.name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "name"));
    key->rec.kind = kind ? otr_kind_find(kind) : &otr_kind_ota_task; /* version 1: tasks */
    key->retired = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "retired"));
    int known_op = 0;
    for (int i = 0; op && i < 3; i++)
        if (!strcmp(op, otr_op_name((otr_op)i))) {
            key->op = (otr_op)i;
            known_op = 1;
        }
    if (!j || !*type || !lineage || !key->rec.name || !key->rec.kind || !known_op ||
        otr_json_integer(cJSON_GetObjectItemCaseSensitive(j, "serial"), 0, 1LL << 53, &jserial) < 0)
        return damaged(err, jpath, lineno);
    if (!s->exists && s->journal_entries == 0 && strlen(lineage) < sizeof(s->lineage)) {
        /* a run that died before its first snapshot: the journal is all there
         * is of this state, so its lineage is the state's */
        snprintf(s->lineage, sizeof(s->lineage), "%s", lineage);
    }
    if (strcmp(lineage, s->lineage) != 0)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "journal %s belongs to another state (lineage %s, the state's is "
                             "%s); move one of them away",
                             jpath, lineage, s->lineage);
    if (jserial < s->serial) /* written before the snapshot we loaded: already in it */
        return 1;
    if (jserial > s->serial && !s->exists)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "journal %s (serial %lld) has no state file beside it: a state "
                             "migrate to here was interrupted (it writes the journal first); run "
                             "it again, or move the journal away",
                             jpath, jserial);
    if (jserial > s->serial)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "journal %s is newer (serial %lld) than the state file (serial %ld): "
                             "the state file is older than its journal; restore the newest state "
                             "file",
                             jpath, jserial, s->serial);
    return 0;
}

static int replay_line(otr_state *s, const char *text, size_t lineno, const char *jpath,
                       otr_error *err)
{
    cJSON *j = cJSON_Parse(text);
    otr_intent key;
    const char *type = NULL;
    int rc;
    memset(&key, 0, sizeof(key));
    rc = j ? read_header(s, j, &key, &type, lineno, jpath, err) : damaged(err, jpath, lineno);
    if (rc != 0) {
        cJSON_Delete(j);
        return rc < 0 ? -1 : 0;
    }
    s->journal_entries++;
    if (!strcmp(type, "intent")) {
        otr_intent in;
        memset(&in, 0, sizeof(in));
        in.op = key.op;
        in.retired = key.retired;
        in.rec.kind = key.rec.kind;
        in.rec.name = (char *)key.rec.name; /* read_intent copies it */
        rc = read_intent(j, &in, lineno, jpath, err);
        if (rc == 0 && otr_state_add_pending(s, &in) < 0)
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        otr_intent_clear(&in);
    } else if (!strcmp(type, "result")) {
        /* a retired delete is told apart by its id */
        if (key.retired)
            key.rec.id =
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, key.rec.kind->id_key));
        rc = replay_result(s, j, &key) < 0 ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory") : 0;
    } else {
        rc = otr_error_set(err, OTR_ERR_INVALID, "journal %s: line %zu has an unknown type", jpath,
                           lineno);
    }
    long long seq =
        otr_json_integer_or(cJSON_GetObjectItemCaseSensitive(j, "seq"), 0, 1LL << 53, 0);
    if (seq > s->journal_seq)
        s->journal_seq = (long)seq;
    cJSON_Delete(j);
    return rc;
}

int otr_state_replay(otr_state *s, const char *text, size_t len, const char *jpath, otr_error *err)
{
    otr_buf line = OTR_BUF_INIT;
    size_t lineno = 0;
    int rc = 0;
    for (const char *p = text; p < text + len && rc == 0;) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        lineno++;
        if (!nl) {
            /* the last line has no newline: the run died while writing it,
             * before the call it announces (or after the answer it records).
             * Ignoring it is safe: an unsettled intent is finished next run. */
            break;
        }
        otr_buf_clear(&line);
        if (otr_buf_append(&line, p, (size_t)(nl - p)) < 0)
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        else if (line.len && memchr(line.ptr, '\0', line.len))
            rc = otr_error_set(err, OTR_ERR_INVALID,
                               "journal %s: line %zu holds a NUL byte; it was left as it is", jpath,
                               lineno);
        else if (line.len)
            rc = replay_line(s, line.ptr, lineno, jpath, err);
        p = nl + 1;
    }
    otr_buf_free(&line);
    return rc;
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

int otr_state_from_text(otr_state **out, const char *path, const char *snapshot, size_t slen,
                        const char *journal, size_t jlen, otr_error *err)
{
    otr_state *s = otr_state_new(path);
    *out = NULL;
    if (!s)
        return otr_error_set(err, OTR_ERR_NOMEM, OTR_STATE_NEW_FAILED);
    if (snapshot) {
        /* cJSON wants a terminated string */
        char *copy = malloc(slen + 1);
        if (!copy) {
            otr_state_free(s);
            return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        }
        memcpy(copy, snapshot, slen);
        copy[slen] = '\0';
        if (otr_state_parse_snapshot(s, copy, slen, err) < 0) {
            otr_state_free(s);
            return -1;
        }
    }
    if ((journal && otr_state_replay(s, journal, jlen, "(journal)", err) < 0) ||
        otr_state_check_ids(s, err) < 0) {
        otr_state_free(s);
        return -1;
    }
    *out = s;
    return 0;
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
    free(s->updated_at);
    free(s->path);
    free(s);
}
