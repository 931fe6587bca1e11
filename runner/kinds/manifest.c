/*
 * Manifest loading: the envelope (apiVersion, kind, metadata, spec), rules
 * that span fields (EndTime after StartTime) or files (unique names), and the
 * limits (file size, manifest count). Field rules live in schema.c.
 */
#include "kinds/manifest.h"
#include "util/alloc.h"

#include "kinds/kind.h"
#include "manifest/schema.h"
#include "manifest/token.h"
#include "manifest/validate.h"
#include "manifest/yaml.h"
#include "util/json.h"
#include "util/parallel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct file_ctx {
    otr_manifest_set *set;
    otr_diags *diags;
    const char *file;
    size_t order;
    size_t manifests_in_file;
    int stop;
    int nomem;
} file_ctx;

static const otr_ynode *ymap_get(const otr_ynode *map, const char *key)
{
    if (!map || map->type != OTR_YMAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->count; i += 2)
        if (map->items[i]->type == OTR_YSCALAR && !strcmp(map->items[i]->value, key))
            return map->items[i + 1];
    return NULL;
}

/* The node at a dotted field path ("spec.OtaSchedulingConfig.EndTime"), or
 * the deepest one found on the way. */
static const otr_ynode *node_at(const otr_ynode *root, const char *path)
{
    const otr_ynode *n = root;
    char part[128];
    for (const char *p = path; n && *p;) {
        size_t len = strcspn(p, ".");
        snprintf(part, sizeof(part), "%.*s", (int)(len < sizeof(part) - 1 ? len : sizeof(part) - 1),
                 p);
        const otr_ynode *next = NULL;
        char *digits_end = NULL;
        unsigned long at = strtoul(part, &digits_end, 10);
        if (n->type == OTR_YSEQ && *part && !*digits_end) /* an index: "waves.1" */
            next = at < n->count ? n->items[at] : NULL;
        else
            next = ymap_get(n, part);
        if (!next)
            break;
        n = next;
        p += len + (p[len] == '.');
    }
    return n ? n : root;
}

/* The field path as the validator writes it: an index in brackets
 * ("spec.waves.2.name" -> "spec.waves[2].name"). */
static void shown_path(otr_buf *out, const char *path)
{
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ".");
        size_t digits = strspn(p, "0123456789");
        if (len && digits == len && p != path)
            otr_buf_printf(out, "[%.*s]", (int)len, p);
        else
            otr_buf_printf(out, "%s%.*s", p == path ? "" : ".", (int)len, p);
        p += len + (p[len] == '.');
    }
}

typedef struct check_ctx {
    file_ctx *fc;
    const otr_ynode *root;
} check_ctx;

static void report_at(check_ctx *c, otr_severity sev, const char *field, const char *fmt,
                      va_list ap) __attribute__((format(printf, 4, 0)));
static void report_at(check_ctx *c, otr_severity sev, const char *field, const char *fmt,
                      va_list ap)
{
    const otr_ynode *n = node_at(c->root, field);
    otr_buf msg = OTR_BUF_INIT;
    otr_buf_vprintf(&msg, fmt, ap);
    otr_buf shown = OTR_BUF_INIT;
    shown_path(&shown, field);
    otr_diags_add(c->fc->diags, sev, c->fc->order, c->fc->file, n->line, n->col,
                  otr_buf_failed(&shown) ? field : otr_buf_cstr(&shown), "%s", otr_buf_cstr(&msg));
    otr_buf_free(&shown);
    otr_buf_free(&msg);
}

/* A kind's rule across fields reports here; the place is the field's node. */
static void report_check(void *ctx, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_at(ctx, OTR_SEV_ERROR, field, fmt, ap);
    va_end(ap);
}

/* A kind's advice: a warning, the manifest stays valid. */
static void report_advice(void *ctx, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_at(ctx, OTR_SEV_WARNING, field, fmt, ap);
    va_end(ap);
}

static int remember_name(otr_manifest_set *set, const otr_kind *kind, const char *name,
                         size_t order, const otr_ynode *at)
{
    if (OTR_GROW(set->names, set->nnames, set->names_alloc, 64) < 0)
        return -1;
    char *copy = strdup(name);
    if (!copy)
        return -1;
    otr_name_ref *r = &set->names[set->nnames];
    r->kind = kind;
    r->valid = 0;
    r->name = copy;
    r->file_index = order;
    r->line = at->line;
    r->col = at->col;
    r->seq = set->nnames++;
    return 0;
}

static int push_manifest(otr_manifest_set *set, otr_manifest *m)
{
    if (OTR_GROW(set->items, set->count, set->alloc, 64) < 0)
        return -1;
    set->items[set->count++] = m;
    return 0;
}

/* The spec's references, with where each is written. */
static int collect_refs(otr_manifest *m, const cJSON *spec, const otr_ynode *root)
{
    const otr_kind *k = m->kind;
    for (size_t i = 0; i < k->nrefs; i++) {
        cJSON *parent;
        const cJSON *v = otr_json_at(spec, k->refs[i].field, &parent);
        if (!cJSON_IsString(v))
            continue;
        otr_manifest_ref *r = realloc(m->refs, (m->nrefs + 1) * sizeof(*r));
        if (!r)
            return -1;
        m->refs = r;
        r = &m->refs[m->nrefs++];
        const otr_ynode *at = node_at(ymap_get(root, "spec"), k->refs[i].field);
        r->field = k->refs[i].field;
        r->kind = otr_kind_find(k->refs[i].kind);
        r->target = strdup(v->valuestring);
        r->line = at ? at->line : root->line;
        r->col = at ? at->col : root->col;
        if (!r->target)
            return -1;
    }
    return 0;
}

/* The canonical text json with the string at path replaced by value, made
 * in the text (a key's place does not depend on its value): no tree. NULL
 * when no string is there, or without memory. */
static char *replaced_in_text(const char *json, const char *path, const char *value)
{
    const char *at;
    size_t n;
    if (!otr_json_member_at(json, strlen(json), path, &at, &n) || *at != '"')
        return NULL;
    cJSON *v = cJSON_CreateString(value);
    char *written = v ? otr_canonical_json(v) : NULL;
    cJSON_Delete(v);
    otr_buf b = OTR_BUF_INIT;
    if (written) {
        otr_buf_append(&b, json, (size_t)(at - json));
        otr_buf_puts(&b, written);
        otr_buf_puts(&b, at + n);
    }
    free(written);
    if (!written) {
        otr_buf_free(&b);
        return NULL;
    }
    return otr_buf_detach(&b);
}

/* The token and digest of m, over its spec with each reference replaced by
 * replacement[i] (NULL: as written). */
static int compute_token(otr_manifest *m, const char *const *replacement)
{
    char *canonical = NULL;
    if (m->nrefs == 1 && replacement) { /* every kind's case: one reference */
        if (!(canonical = replaced_in_text(m->spec_json, m->refs[0].field, replacement[0])))
            return -1;
    } else if (m->nrefs && replacement) {
        cJSON *copy = otr_manifest_spec(m);
        if (!copy)
            return -1;
        for (size_t i = 0; i < m->nrefs; i++) {
            cJSON *parent;
            cJSON *at = otr_json_at(copy, m->refs[i].field, &parent);
            if (!at || !cJSON_ReplaceItemInObjectCaseSensitive(
                           parent, at->string, cJSON_CreateString(replacement[i]))) {
                cJSON_Delete(copy);
                return -1;
            }
        }
        canonical = otr_canonical_json(copy);
        cJSON_Delete(copy);
        if (!canonical)
            return -1;
    }
    const char *text = canonical ? canonical : m->spec_json;
    int rc = otr_client_token(m->client_token, m->name, m->revision, text) == 0 &&
                     otr_spec_digest(m->spec_digest, text) == 0
                 ? 0
                 : -1;
    free(canonical);
    return rc;
}

cJSON *otr_manifest_spec(const otr_manifest *m)
{
    return m->spec_json ? cJSON_Parse(m->spec_json) : NULL;
}

/* Builds the manifest record of a document that passed validation. */
static otr_manifest *make_manifest(file_ctx *fc, const otr_kind *kind, const otr_ynode *root,
                                   cJSON *value)
{
    otr_manifest *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(value, "metadata");
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(meta, "revision");
    m->kind = kind;
    m->name = strdup(cJSON_GetObjectItemCaseSensitive(meta, "name")->valuestring);
    m->revision = cJSON_IsNumber(rev) ? (long)rev->valuedouble : 1;
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(meta, "previousNames"), *p;
    m->previous = calloc((size_t)cJSON_GetArraySize(prev) + 1, sizeof(*m->previous));
    cJSON_ArrayForEach(p, prev)
    {
        if (m->previous && cJSON_IsString(p) &&
            !(m->previous[m->nprevious++] = strdup(p->valuestring)))
            m->nprevious--;
    }
    m->file = strdup(fc->file);
    m->file_order = fc->order;
    m->line = root->line;
    m->col = root->col;
    /* kept as text: 100k trees would be most of a plan's memory */
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(value, "spec");
    m->spec_json = spec ? otr_canonical_json(spec) : NULL;
    /* a manifest with references gets its token once the set is whole */
    if (!m->name || !m->file || !m->spec_json || collect_refs(m, spec, root) < 0 ||
        (!m->nrefs && compute_token(m, NULL) < 0)) {
        otr_manifest_free(m);
        return NULL;
    }
    return m;
}

/* The schema a document is checked against: its kind's, or the envelope's
 * alone when its kind is missing or unknown (which the envelope reports). */
static const otr_kind *kind_of(const otr_ynode *root)
{
    const otr_ynode *k = ymap_get(root, "kind");
    return k && k->type == OTR_YSCALAR ? otr_kind_find(k->value) : NULL;
}

static int on_document(otr_ydoc *doc, void *ctx)
{
    file_ctx *fc = ctx;
    const otr_ynode *root = doc->root;
    cJSON *value = NULL;
    otr_buf path = OTR_BUF_INIT;

    if (!root || otr_ynode_is_null(root))
        goto done; /* an empty document ("---" at the end of a file) */
    fc->manifests_in_file++;
    if (++fc->set->documents > OTR_MANIFEST_MAX_COUNT) {
        if (!fc->set->limit_reported)
            otr_diags_add(fc->diags, OTR_SEV_ERROR, fc->order, fc->file, root->line, root->col,
                          NULL,
                          "more than %d manifests; split the fleet across repositories "
                          "or narrow --path",
                          OTR_MANIFEST_MAX_COUNT);
        fc->set->limit_reported = 1;
        fc->stop = 1;
        goto done;
    }
    if (root->type != OTR_YMAP) {
        otr_diags_add(fc->diags, OTR_SEV_ERROR, fc->order, fc->file, root->line, root->col, NULL,
                      "a manifest must be a mapping with apiVersion, kind, metadata and spec, "
                      "got %s",
                      otr_ynode_describe(root));
        goto done;
    }

    size_t errors_before = fc->diags->errors;
    otr_vctx v;
    otr_vctx_init(&v, fc->diags, fc->file, fc->order);
    const otr_kind *kind = kind_of(root);
    value = otr_validate_node(&v, kind ? kind->schema : &otr_schema_envelope, root, &path);
    if (v.nomem) {
        fc->nomem = 1;
        goto done;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(value, "metadata"), "name");
    if (kind && cJSON_IsString(name)) {
        const otr_ynode *at = ymap_get(ymap_get(root, "metadata"), "name");
        if (remember_name(fc->set, kind, name->valuestring, fc->order, at) < 0) {
            fc->nomem = 1;
            goto done;
        }
    }
    if (kind && kind->check && fc->diags->errors == errors_before) {
        check_ctx c = {fc, root};
        kind->check(cJSON_GetObjectItemCaseSensitive(value, "spec"), report_check, &c);
    }
    if (kind && kind->advise && fc->diags->errors == errors_before) {
        check_ctx c = {fc, root};
        kind->advise(cJSON_GetObjectItemCaseSensitive(value, "spec"), report_advice, &c);
    }
    if (kind && fc->diags->errors == errors_before) {
        otr_manifest *m = make_manifest(fc, kind, root, value);
        if (!m || push_manifest(fc->set, m) < 0) {
            otr_manifest_free(m);
            fc->nomem = 1;
        } else {
            fc->set->names[fc->set->nnames - 1].valid = 1;
        }
    }
done:
    cJSON_Delete(value);
    otr_buf_free(&path);
    otr_ydoc_free(doc);
    return fc->stop || fc->nomem;
}

/* The file-name table grows by doubling (100k files are not 100k copies);
 * slots of files not added yet stay NULL. */
static int reserve_file_name(otr_manifest_set *set, size_t order)
{
    if (order < set->file_names_alloc)
        return 0;
    size_t n = set->file_names_alloc ? set->file_names_alloc : 64;
    while (n <= order)
        n *= 2;
    char **names = realloc(set->file_names, n * sizeof(char *));
    if (!names)
        return -1;
    memset(names + set->file_names_alloc, 0, (n - set->file_names_alloc) * sizeof(char *));
    set->file_names = names;
    set->file_names_alloc = n;
    return 0;
}

/* Names the file of order in set (each order once); 0 or -1 with err. */
static int record_file(otr_manifest_set *set, size_t order, const char *file, otr_error *err)
{
    if (reserve_file_name(set, order) < 0)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    if (set->file_names[order])
        return otr_error_set(err, OTR_ERR_GENERIC, "file order %zu given twice (%s and %s)", order,
                             set->file_names[order], file);
    if (!(set->file_names[order] = strdup(file)))
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    set->files++;
    return 0;
}

int otr_manifest_add_file(otr_manifest_set *set, size_t order, const char *file, const char *data,
                          size_t len, otr_diags *diags, otr_error *err)
{
    if (record_file(set, order, file, err) < 0)
        return -1;
    return otr_manifest_parse_file(set, order, file, data, len, diags, err);
}

int otr_manifest_parse_file(otr_manifest_set *set, size_t order, const char *file, const char *data,
                            size_t len, otr_diags *diags, otr_error *err)
{
    file_ctx fc = {.set = set, .diags = diags, .file = file, .order = order};
    if (len > OTR_MANIFEST_MAX_FILE_SIZE) {
        otr_diags_add(diags, OTR_SEV_ERROR, fc.order, file, 0, 0, NULL,
                      "file is %zu bytes; a manifest file may be at most 1 MiB (1048576 bytes)",
                      len);
        return 0;
    }
    if (set->limit_reported)
        return 0;
    size_t errors_before = diags->errors;
    if (otr_yaml_parse(data, len, file, fc.order, diags, on_document, &fc, err) < 0)
        return -1;
    if (fc.nomem)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory while loading %s", file);
    if (fc.manifests_in_file == 0 && diags->errors == errors_before)
        otr_diags_add(diags, OTR_SEV_ERROR, fc.order, file, len ? 1 : 0, len ? 1 : 0, NULL,
                      "file holds no manifest (it is empty or only comments); "
                      "delete it or add a manifest");
    return 0;
}

int otr_manifest_set_absorb(otr_manifest_set *set, size_t order, const char *file,
                            otr_manifest_set *part, otr_diags *diags, otr_diags *part_diags,
                            otr_error *err)
{
    if (set->limit_reported || set->documents + part->documents > OTR_MANIFEST_MAX_COUNT)
        return 1; /* where the limit falls, only reading the file here can say */
    if (otr_grow(&set->items, &set->alloc, set->count + part->count, sizeof(*set->items), 64) < 0 ||
        otr_grow(&set->names, &set->names_alloc, set->nnames + part->nnames, sizeof(*set->names),
                 64) < 0 ||
        otr_diags_absorb(diags, part_diags) < 0 || record_file(set, order, file, err) < 0) {
        otr_manifest_set_free(part);
        return err->code ? -1 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < part->count; i++)
        set->items[set->count++] = part->items[i];
    for (size_t i = 0; i < part->nnames; i++) {
        set->names[set->nnames] = part->names[i];
        set->names[set->nnames].seq = set->nnames;
        set->nnames++;
    }
    set->documents += part->documents;
    part->count = part->nnames = 0;
    otr_manifest_set_free(part);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    const otr_name_ref *x = a, *y = b;
    size_t kx = otr_kind_index(x->kind), ky = otr_kind_index(y->kind);
    if (kx != ky)
        return kx < ky ? -1 : 1;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    if (x->file_index != y->file_index)
        return x->file_index < y->file_index ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Path order, then place in the file: files may arrive in any order. */
static int manifest_cmp(const void *a, const void *b)
{
    const otr_manifest *x = *(otr_manifest *const *)a, *y = *(otr_manifest *const *)b;
    if (x->file_order != y->file_order)
        return x->file_order < y->file_order ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->col < y->col ? -1 : x->col > y->col;
}

/* Whether items[0..n) are in cmp's order already. */
static int sorted(otr_manifest *const *items, size_t n, int (*cmp)(const void *, const void *))
{
    for (size_t i = 1; i < n; i++)
        if (cmp(&items[i - 1], &items[i]) > 0)
            return 0;
    return 1;
}

static int by_name_cmp(const void *a, const void *b)
{
    const otr_manifest *x = *(otr_manifest *const *)a, *y = *(otr_manifest *const *)b;
    size_t kx = otr_kind_index(x->kind), ky = otr_kind_index(y->kind);
    if (kx != ky)
        return kx < ky ? -1 : 1;
    return strcmp(x->name, y->name);
}

otr_manifest *otr_manifest_set_find(const otr_manifest_set *set, const otr_kind *kind,
                                    const char *name)
{
    size_t lo = 0, hi = set->by_name ? set->count : 0;
    otr_manifest key = {.kind = kind, .name = (char *)name};
    const otr_manifest *kp = &key;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = by_name_cmp(&set->by_name[mid], &kp);
        if (c == 0)
            return set->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

otr_manifest *otr_manifest_set_find_previous(const otr_manifest_set *set, const otr_kind *kind,
                                             const char *name)
{
    for (size_t i = 0; i < set->count; i++) {
        otr_manifest *m = set->items[i];
        for (size_t k = 0; m->kind == kind && k < m->nprevious; k++)
            if (!strcmp(m->previous[k], name))
                return m;
    }
    return NULL;
}

/* A previous name must be free: not a live manifest's of its kind, not its
 * own, not another manifest's previous name too. */
static void report_previous(otr_manifest_set *set, otr_diags *diags)
{
    for (size_t i = 0; i < set->count; i++) {
        const otr_manifest *m = set->items[i];
        for (size_t k = 0; k < m->nprevious; k++) {
            const char *p = m->previous[k];
            const otr_manifest *live = otr_manifest_set_find(set, m->kind, p), *other = NULL;
            for (size_t j = 0; j < set->count && !other; j++)
                for (size_t q = 0; j != i && set->items[j]->kind == m->kind &&
                                   q < set->items[j]->nprevious && !other;
                     q++)
                    if (!strcmp(set->items[j]->previous[q], p))
                        other = set->items[j];
            if (live == m)
                otr_diags_add(diags, OTR_SEV_ERROR, m->file_order, m->file, m->line, m->col,
                              "metadata.previousNames", "\"%s\" is this manifest's own name", p);
            else if (live)
                otr_diags_add(diags, OTR_SEV_ERROR, m->file_order, m->file, m->line, m->col,
                              "metadata.previousNames",
                              "\"%s\" is the name of a live %s manifest (%s:%u:%u): a previous "
                              "name must be gone; rename one of them",
                              p, m->kind->name, live->file, live->line, live->col);
            else if (other)
                otr_diags_add(diags, OTR_SEV_ERROR, m->file_order, m->file, m->line, m->col,
                              "metadata.previousNames",
                              "\"%s\" is also a previous name of %s (%s:%u:%u): one record "
                              "cannot move to two names",
                              p, other->name, other->file, other->line, other->col);
        }
    }
}

static void report_duplicates(otr_manifest_set *set, otr_diags *diags)
{
    if (set->nnames > 1)
        qsort(set->names, set->nnames, sizeof(*set->names), name_cmp);
    for (size_t i = 1; i < set->nnames; i++) {
        const otr_name_ref *cur = &set->names[i];
        size_t first = i - 1;
        if (set->names[first].kind != cur->kind || strcmp(set->names[first].name, cur->name) != 0)
            continue;
        while (first > 0 && set->names[first - 1].kind == cur->kind &&
               !strcmp(set->names[first - 1].name, cur->name))
            first--;
        const otr_name_ref *f = &set->names[first];
        otr_diags_add(diags, OTR_SEV_ERROR, cur->file_index, set->file_names[cur->file_index],
                      cur->line, cur->col, "metadata.name",
                      "duplicate name \"%s\": also defined at %s:%u:%u; names must be unique "
                      "among the %s manifests",
                      cur->name, set->file_names[f->file_index], f->line, f->col, cur->kind->name);
    }
}

/* A reference to a name no manifest of that kind has: an error at the
 * reference, with did-you-mean, or saying the manifest it names is invalid. */
static void report_dangling(const otr_manifest_set *set, const otr_manifest *m,
                            const otr_manifest_ref *r, otr_diags *diags)
{
    const char **words = calloc(set->nnames + 1, sizeof(*words));
    size_t n = 0;
    int invalid = 0;
    for (size_t i = 0; i < set->nnames; i++) {
        if (set->names[i].kind != r->kind)
            continue;
        if (!strcmp(set->names[i].name, r->target))
            invalid = 1; /* it exists, with errors */
        else if (words && set->names[i].valid)
            words[n++] = set->names[i].name;
    }
    const char *near = words ? otr_schema_suggest_word(words, r->target) : NULL;
    char field[96];
    snprintf(field, sizeof(field), "spec.%s", r->field);
    if (invalid)
        otr_diags_add(diags, OTR_SEV_ERROR, m->file_order, m->file, r->line, r->col, field,
                      "%s \"%s\" has errors (see them above); fix it first", r->kind->name,
                      r->target);
    else if (near)
        otr_diags_add(diags, OTR_SEV_ERROR, m->file_order, m->file, r->line, r->col, field,
                      "no %s named \"%s\" in this commit; did you mean %s?", r->kind->name,
                      r->target, near);
    else
        otr_diags_add(diags, OTR_SEV_ERROR, m->file_order, m->file, r->line, r->col, field,
                      "no %s named \"%s\" in this commit (a reference names the metadata.name "
                      "of a manifest of that kind)",
                      r->kind->name, r->target);
    free(words);
}

/* Resolves m's references against the set: each names a manifest whose
 * token goes into m's token. Returns 1 when one dangles, 0 when all
 * resolve, -1 without memory. Reads the set only: safe on several threads
 * at once, for different manifests. */
static int resolve_refs(const otr_manifest_set *set, otr_manifest *m)
{
    const char *tokens[8];
    for (size_t i = 0; i < m->nrefs && i < 8; i++) {
        const otr_manifest *target = otr_manifest_set_find(set, m->refs[i].kind, m->refs[i].target);
        if (!target)
            return 1;
        tokens[i] = target->client_token;
    }
    return compute_token(m, tokens) < 0 ? -1 : 0;
}

typedef struct resolving {
    otr_manifest_set *set;
    signed char *verdict; /* per manifest: resolve_refs's answer */
} resolving;

static void resolve_one(size_t i, void *ctx)
{
    resolving *r = ctx;
    otr_manifest *m = r->set->items[i];
    r->verdict[i] = (signed char)(m->nrefs ? resolve_refs(r->set, m) : 0);
}

/* Tokens of manifests with references (on several threads: each hashes its
 * own spec), their dangling references reported; drop[i] set for those. */
static int resolve_all(otr_manifest_set *set, otr_diags *diags, unsigned char *drop)
{
    resolving r = {set, calloc(set->count + 1, 1)};
    int rc = 0;
    if (!r.verdict)
        return -1;
    otr_parallel_for(set->count, 1024, resolve_one, &r);
    for (size_t i = 0; i < set->count; i++) {
        otr_manifest *m = set->items[i];
        if (r.verdict[i] < 0)
            rc = -1;
        for (size_t k = 0; r.verdict[i] == 1 && k < m->nrefs; k++)
            if (!otr_manifest_set_find(set, m->refs[k].kind, m->refs[k].target))
                report_dangling(set, m, &m->refs[k], diags);
        drop[i] = r.verdict[i] != 0;
    }
    free(r.verdict);
    return rc;
}

/* What only the checks across files needed: every name seen, every file's
 * name (100k of each are megabytes not held for the rest of the run). */
static void forget_names(otr_manifest_set *set)
{
    for (size_t i = 0; i < set->nnames; i++)
        free((char *)set->names[i].name);
    free(set->names);
    set->names = NULL;
    set->nnames = set->names_alloc = 0;
    for (size_t i = 0; i < set->file_names_alloc; i++)
        free(set->file_names[i]);
    free(set->file_names);
    set->file_names = NULL;
    set->file_names_alloc = 0;
}

int otr_manifest_set_finish(otr_manifest_set *set, otr_diags *diags)
{
    int rc = 0;
    report_duplicates(set, diags);
    free(set->by_name);
    set->by_name = malloc((set->count + 1) * sizeof(*set->by_name));
    if (!set->by_name)
        return -1;
    if (set->count)
        memcpy(set->by_name, set->items, set->count * sizeof(*set->items));
    if (set->count > 1)
        qsort(set->by_name, set->count, sizeof(*set->by_name), by_name_cmp);
    report_previous(set, diags);
    /* references are one level deep (the kinds they name have none), so
     * the tokens they use are final here */
    /* those with a dangling reference are dropped once all are resolved: the
     * lookups of the others go through by_name, which still holds them */
    unsigned char *drop = calloc(set->count + 1, 1);
    if (!drop)
        return -1;
    if (resolve_all(set, diags, drop) < 0)
        rc = -1;
    size_t kept = 0;
    for (size_t i = 0; i < set->count; i++) {
        if (drop[i])
            otr_manifest_free(set->items[i]);
        else
            set->items[kept++] = set->items[i];
    }
    free(drop);
    if (kept != set->count) {
        set->count = kept;
        if (kept)
            memcpy(set->by_name, set->items, set->count * sizeof(*set->items));
        if (set->count > 1)
            qsort(set->by_name, set->count, sizeof(*set->by_name), by_name_cmp);
    }
    if (!sorted(set->items, set->count, manifest_cmp)) /* they came in file order */
        qsort(set->items, set->count, sizeof(*set->items), manifest_cmp);
    otr_diags_sort(diags);
    forget_names(set);
    return rc;
}

void otr_manifest_free(otr_manifest *m)
{
    if (!m)
        return;
    free(m->name);
    for (size_t i = 0; i < m->nprevious; i++)
        free(m->previous[i]);
    free(m->previous);
    free(m->spec_json);
    free(m->file);
    for (size_t i = 0; i < m->nrefs; i++)
        free(m->refs[i].target);
    free(m->refs);
    free(m);
}

void otr_manifest_set_free(otr_manifest_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        otr_manifest_free(set->items[i]);
    free(set->items);
    forget_names(set);
    free(set->by_name);
    memset(set, 0, sizeof(*set));
}
