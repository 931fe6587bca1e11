/* The state's snapshot: read from its text (sections of records read
 * without a tree of the whole file), and written (state/internal.h). */
#include "state/internal.h"

#include "manifest/token.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/time.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
    s->outbox = cJSON_DetachItemFromObjectCaseSensitive(w.head, "notifications");
    if (s->outbox && !cJSON_IsArray(s->outbox)) {
        refuse(err, s->path, "has a \"notifications\" that is not a list");
        goto done;
    }
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
    if (cJSON_GetArraySize(s->outbox))
        otr_jb_add(&b, root, "notifications", cJSON_Duplicate(s->outbox, 1));
    if (s->nspent) {
        cJSON *spent = otr_jb_array(&b, root, "spentTokens");
        for (size_t i = 0; i < s->nspent && !b.failed; i++)
            otr_jb_str(&b, spent, NULL, s->spent[i]);
    }
    char *text = root && !b.failed && otr_canonical_sort(root) == 0 ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return text;
}
