/*
 * YAML text -> a tree of nodes that keep their line and column.
 *
 * libyaml does the parsing; this module builds a small tree from its events so
 * that validation can point at the exact place of every problem. Aliases are
 * resolved to the anchored node itself (shared, not copied): a walker must
 * budget its visits, since a tree of aliases can expand exponentially.
 *
 * A otr_ydoc owns all its nodes (in an arena); free it with otr_ydoc_free.
 */
#ifndef OTR_MANIFEST_YAML_H
#define OTR_MANIFEST_YAML_H

#include "util/error.h"

#include <stddef.h>

#define OTR_YAML_MAX_DEPTH 64

typedef enum otr_ynode_type { OTR_YSCALAR, OTR_YSEQ, OTR_YMAP } otr_ynode_type;

typedef enum otr_yscalar_style {
    OTR_YPLAIN,  /* unquoted: may be a number, a boolean or null */
    OTR_YQUOTED, /* '...' or "..." */
    OTR_YBLOCK,  /* | or > */
} otr_yscalar_style;

typedef struct otr_ynode {
    otr_ynode_type type;
    otr_yscalar_style style;
    char *value; /* scalars: the text, NUL-terminated */
    size_t len;
    unsigned line;            /* 1-based */
    unsigned col;             /* 1-based */
    struct otr_ynode **items; /* SEQ: elements; MAP: key, value, key, value, ... */
    size_t count;             /* number of entries in items */
    size_t alloc;
} otr_ynode;

typedef struct otr_yarena otr_yarena;

typedef struct otr_ydoc {
    otr_ynode *root;   /* NULL for an empty document */
    unsigned line;     /* where the document starts */
    otr_yarena *arena; /* every node and string lives here, freed at once */
} otr_ydoc;

/* Called once per complete document; takes ownership of doc. Return non-zero
 * to stop parsing. */
typedef int (*otr_ydoc_fn)(otr_ydoc *doc, void *ctx);

/*
 * Parses every document of data[0..len) and hands each to fn in order.
 * Syntax errors, tags, undefined aliases and nesting deeper than
 * OTR_YAML_MAX_DEPTH are recorded in diags under file/order; parsing stops at
 * the first such error (documents before it were already delivered).
 * Returns -1 with err set only when memory runs out.
 */
int otr_yaml_parse(const char *data, size_t len, const char *file, size_t order, otr_diags *diags,
                   otr_ydoc_fn fn, void *ctx, otr_error *err);

void otr_ydoc_free(otr_ydoc *doc);

/* True when a plain scalar spells null: "", "~", "null", "Null", "NULL". */
int otr_ynode_is_null(const otr_ynode *n);

/* What a scalar is under YAML 1.1's implicit typing (quoted and block
 * scalars are always strings). */
typedef enum otr_yresolved {
    OTR_YSTR,
    OTR_YNULL,
    OTR_YBOOL,
    OTR_YINT,
    OTR_YFLOAT,
    OTR_YTIMESTAMP
} otr_yresolved;

otr_yresolved otr_ynode_resolve(const otr_ynode *n);

/* Describes a node's kind for messages: "a mapping", "a list", "a quoted
 * string", "a block string", "an integer", "a float", "a boolean",
 * "a timestamp", "null", "a string". */
const char *otr_ynode_describe(const otr_ynode *n);

#endif
