/*
 * Manifest loading: the envelope (apiVersion, kind, metadata, spec), rules
 * that span fields (EndTime after StartTime) or files (unique names), and the
 * limits (file size, manifest count). Field rules live in schema.c.
 */
#include "manifest/manifest.h"

#include "manifest/schema.h"
#include "manifest/token.h"
#include "manifest/validate.h"
#include "manifest/yaml.h"

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

/* EndTime must be later than StartTime: a rule across two fields. */
static void check_schedule(file_ctx *fc, const otr_ynode *root, const cJSON *spec)
{
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(spec, "OtaSchedulingConfig");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(sc, "StartTime");
    const cJSON *et = cJSON_GetObjectItemCaseSensitive(sc, "EndTime");
    if (!cJSON_IsString(st) || !cJSON_IsString(et))
        return;
    if (otr_schema_datetime_epoch(et->valuestring) > otr_schema_datetime_epoch(st->valuestring))
        return;
    const otr_ynode *n =
        ymap_get(ymap_get(ymap_get(root, "spec"), "OtaSchedulingConfig"), "EndTime");
    otr_diags_add(fc->diags, OTR_SEV_ERROR, fc->order, fc->file, n ? n->line : root->line,
                  n ? n->col : root->col, "spec.OtaSchedulingConfig.EndTime",
                  "must be later than StartTime (%s), got \"%s\"", st->valuestring,
                  et->valuestring);
}

static int remember_name(otr_manifest_set *set, const char *name, size_t order, const otr_ynode *at)
{
    if (set->nnames == set->names_alloc) {
        size_t n = set->names_alloc ? set->names_alloc * 2 : 64;
        otr_name_ref *p = realloc(set->names, n * sizeof(*p));
        if (!p)
            return -1;
        set->names = p;
        set->names_alloc = n;
    }
    char *copy = strdup(name);
    if (!copy)
        return -1;
    otr_name_ref *r = &set->names[set->nnames];
    r->name = copy;
    r->file_index = order;
    r->line = at->line;
    r->col = at->col;
    r->seq = set->nnames++;
    return 0;
}

static int push_manifest(otr_manifest_set *set, otr_manifest *m)
{
    if (set->count == set->alloc) {
        size_t n = set->alloc ? set->alloc * 2 : 64;
        otr_manifest **p = realloc(set->items, n * sizeof(*p));
        if (!p)
            return -1;
        set->items = p;
        set->alloc = n;
    }
    set->items[set->count++] = m;
    return 0;
}

/* Builds the manifest record of a document that passed validation. */
static otr_manifest *make_manifest(file_ctx *fc, const otr_ynode *root, cJSON *value)
{
    otr_manifest *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(value, "metadata");
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(meta, "revision");
    m->kind = OTR_KIND_OTA_TASK;
    m->name = strdup(cJSON_GetObjectItemCaseSensitive(meta, "name")->valuestring);
    m->revision = cJSON_IsNumber(rev) ? (long)rev->valuedouble : 1;
    m->labels = cJSON_DetachItemFromObjectCaseSensitive(meta, "labels");
    m->spec = cJSON_DetachItemFromObjectCaseSensitive(value, "spec");
    m->file = strdup(fc->file);
    m->file_order = fc->order;
    m->line = root->line;
    m->col = root->col;
    if (m->labels)
        otr_canonical_sort(m->labels);
    char *canonical = m->spec ? otr_canonical_json(m->spec) : NULL;
    if (!m->name || !m->file || !canonical ||
        otr_client_token(m->client_token, m->name, m->revision, canonical) < 0 ||
        otr_spec_digest(m->spec_digest, canonical) < 0) {
        free(canonical);
        otr_manifest_free(m);
        return NULL;
    }
    free(canonical);
    return m;
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
    value = otr_validate_node(&v, &otr_schema_ota_task, root, &path);
    if (v.nomem) {
        fc->nomem = 1;
        goto done;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(value, "metadata"), "name");
    if (cJSON_IsString(name)) {
        const otr_ynode *at = ymap_get(ymap_get(root, "metadata"), "name");
        if (remember_name(fc->set, name->valuestring, fc->order, at) < 0) {
            fc->nomem = 1;
            goto done;
        }
    }
    if (fc->diags->errors == errors_before)
        check_schedule(fc, root, cJSON_GetObjectItemCaseSensitive(value, "spec"));
    if (fc->diags->errors == errors_before) {
        otr_manifest *m = make_manifest(fc, root, value);
        if (!m || push_manifest(fc->set, m) < 0) {
            otr_manifest_free(m);
            fc->nomem = 1;
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

int otr_manifest_add_file(otr_manifest_set *set, size_t order, const char *file, const char *data,
                          size_t len, otr_diags *diags, otr_error *err)
{
    file_ctx fc = {.set = set, .diags = diags, .file = file, .order = order};
    if (reserve_file_name(set, order) < 0)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    if (set->file_names[order])
        return otr_error_set(err, OTR_ERR_GENERIC, "file order %zu given twice (%s and %s)", order,
                             set->file_names[order], file);
    if (!(set->file_names[order] = strdup(file)))
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    set->files++;

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

static int name_cmp(const void *a, const void *b)
{
    const otr_name_ref *x = a, *y = b;
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

void otr_manifest_set_finish(otr_manifest_set *set, otr_diags *diags)
{
    if (set->count > 1)
        qsort(set->items, set->count, sizeof(*set->items), manifest_cmp);
    if (set->nnames > 1)
        qsort(set->names, set->nnames, sizeof(*set->names), name_cmp);
    for (size_t i = 1; i < set->nnames; i++) {
        const otr_name_ref *cur = &set->names[i];
        size_t first = i - 1;
        if (strcmp(set->names[first].name, cur->name) != 0)
            continue;
        while (first > 0 && !strcmp(set->names[first - 1].name, cur->name))
            first--;
        const otr_name_ref *f = &set->names[first];
        otr_diags_add(diags, OTR_SEV_ERROR, cur->file_index, set->file_names[cur->file_index],
                      cur->line, cur->col, "metadata.name",
                      "duplicate name \"%s\": also defined at %s:%u:%u; names must be unique "
                      "across all manifests",
                      cur->name, set->file_names[f->file_index], f->line, f->col);
    }
    otr_diags_sort(diags);
}

void otr_manifest_free(otr_manifest *m)
{
    if (!m)
        return;
    free(m->name);
    cJSON_Delete(m->labels);
    cJSON_Delete(m->spec);
    free(m->file);
    free(m);
}

void otr_manifest_set_free(otr_manifest_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        otr_manifest_free(set->items[i]);
    free(set->items);
    for (size_t i = 0; i < set->file_names_alloc; i++)
        free(set->file_names[i]);
    free(set->file_names);
    for (size_t i = 0; i < set->nnames; i++)
        free((char *)set->names[i].name);
    free(set->names);
    memset(set, 0, sizeof(*set));
}
