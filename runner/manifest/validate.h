/*
 * Validation: walks a YAML node tree against a schema table (schema.h),
 * records every problem in otr_diags with its line, column and field path,
 * and builds the JSON value (cJSON) of what was valid (keys in the order
 * written: otr_canonical_sort orders them).
 *
 * Aliases make the tree a graph that can expand exponentially, so each walk
 * has a budget of visited nodes; past it the document is rejected.
 */
#ifndef OTR_MANIFEST_VALIDATE_H
#define OTR_MANIFEST_VALIDATE_H

#include "manifest/schema.h"
#include "manifest/yaml.h"
#include "util/error.h"

#include <cjson/cJSON.h>

#define OTR_EXPANSION_BUDGET 1000000

typedef struct otr_vctx {
    otr_diags *diags;
    const char *file;
    size_t order;
    size_t budget; /* nodes still allowed to be visited */
    int budget_hit;
    int nomem;
} otr_vctx;

void otr_vctx_init(otr_vctx *v, otr_diags *diags, const char *file, size_t order);

/*
 * Validates n against f; path is the field path so far ("spec") and is
 * restored on return. Returns the value (the caller owns it, and deletes it
 * before n's document: its strings and keys are the document's), or NULL
 * when n itself is invalid. Problems deeper down are recorded and left out of the
 * value: compare diags->errors before and after to know if all was valid.
 */
cJSON *otr_validate_node(otr_vctx *v, const otr_field *f, const otr_ynode *n, otr_buf *path);

/* Number of Unicode characters in valid UTF-8 text. */
size_t otr_utf8_length(const char *s, size_t len);

#endif
