/* libyaml events -> otr_ynode tree, with anchors, aliases and a depth limit. */
#include "manifest/yaml.h"

#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Anchors of one document: open addressing on the name. The table grows, so
 * a file with many anchors costs O(n), not O(n^2). */
typedef struct anchor_table {
    char **names;
    otr_ynode **nodes;
    size_t size;
    size_t used;
} anchor_table;

/* An arena: nodes, their texts and their child arrays come from 16 KiB
 * chunks, so a document costs a few allocations instead of three per node,
 * and is freed at once. A manifest's tree is a few KiB: 64 KiB chunks were
 * past jemalloc's thread cache (32 KiB), a locked allocation per document
 * (4% of a 10k plan). */
struct otr_yarena {
    struct otr_yarena *next;
    size_t used, size;
    max_align_t data[];
};

#define ARENA_CHUNK ((size_t)16 * 1024)

static void *arena_alloc(otr_yarena **head, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    otr_yarena *a = *head;
    if (!a || a->size - a->used < n) {
        size_t size = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
        otr_yarena *fresh = malloc(sizeof(*fresh) + size);
        if (!fresh)
            return NULL;
        fresh->size = size;
        fresh->used = 0;
        if (a && n > ARENA_CHUNK / 4) { /* a big one: keep filling the current chunk */
            fresh->next = a->next;
            a->next = fresh;
            a = fresh;
        } else {
            fresh->next = a;
            *head = a = fresh;
        }
    }
    void *p = (char *)a->data + a->used;
    a->used += n;
    return p;
}

static void arena_free(otr_yarena *a)
{
    while (a) {
        otr_yarena *next = a->next;
        free(a);
        a = next;
    }
}

typedef struct builder {
    const char *data;
    size_t len;
    const char *file;
    size_t order;
    otr_diags *diags;
    otr_ydoc *doc;
    otr_ynode *stack[OTR_YAML_MAX_DEPTH + 1];
    char *stack_anchor[OTR_YAML_MAX_DEPTH + 1];
    size_t depth;
    anchor_table anchors;
    int failed; /* a located error was recorded: stop */
} builder;

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void anchors_clear(anchor_table *t)
{
    for (size_t i = 0; i < t->size; i++)
        free(t->names[i]);
    free(t->names);
    free(t->nodes);
    memset(t, 0, sizeof(*t));
}

static size_t anchors_slot(const anchor_table *t, const char *name)
{
    size_t i = (size_t)hash_name(name) & (t->size - 1);
    while (t->names[i] && strcmp(t->names[i], name) != 0)
        i = (i + 1) & (t->size - 1);
    return i;
}

static int anchors_put(anchor_table *t, const char *name, otr_ynode *node)
{
    if ((t->used + 1) * 2 > t->size) {
        anchor_table bigger = {0};
        bigger.size = t->size ? t->size * 2 : 16;
        bigger.names = calloc(bigger.size, sizeof(char *));
        bigger.nodes = calloc(bigger.size, sizeof(otr_ynode *));
        if (!bigger.names || !bigger.nodes) {
            free(bigger.names);
            free(bigger.nodes);
            return -1;
        }
        for (size_t i = 0; i < t->size; i++) {
            if (!t->names[i])
                continue;
            size_t j = anchors_slot(&bigger, t->names[i]);
            bigger.names[j] = t->names[i];
            bigger.nodes[j] = t->nodes[i];
        }
        bigger.used = t->used;
        free(t->names);
        free(t->nodes);
        *t = bigger;
    }
    size_t i = anchors_slot(t, name);
    if (!t->names[i]) {
        t->names[i] = strdup(name);
        if (!t->names[i])
            return -1;
        t->used++;
    }
    t->nodes[i] = node; /* a later anchor of the same name wins, as in YAML */
    return 0;
}

static otr_ynode *anchors_get(const anchor_table *t, const char *name)
{
    if (!t->size)
        return NULL;
    size_t i = anchors_slot(t, name);
    return t->names[i] ? t->nodes[i] : NULL;
}

/* libyaml reports reader errors (bad UTF-8, control characters) by byte
 * offset only; turn an offset into a line and column. */
static void offset_to_mark(const char *data, size_t len, size_t off, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++) {
        if (data[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)data[i] & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static void fail(builder *b, unsigned line, unsigned col, const char *fmt, const char *arg)
{
    otr_diags_add(b->diags, OTR_SEV_ERROR, b->order, b->file, line, col, NULL, fmt, arg);
    b->failed = 1;
}

static otr_ynode *node_new(builder *b, otr_ynode_type type, const yaml_mark_t *mark)
{
    if (!b->doc)
        return NULL; /* libyaml opens a document before any node */
    otr_ynode *node = arena_alloc(&b->doc->arena, sizeof(*node));
    if (!node)
        return NULL;
    memset(node, 0, sizeof(*node));
    node->type = type;
    node->line = (unsigned)mark->line + 1;
    node->col = (unsigned)mark->column + 1;
    return node;
}

static int node_push_child(builder *b, otr_ynode *parent, otr_ynode *child)
{
    if (parent->count == parent->alloc) {
        /* the old array stays in the arena: growth by doubling wastes at most half */
        size_t n = parent->alloc ? parent->alloc * 2 : 8;
        otr_ynode **p = arena_alloc(&b->doc->arena, n * sizeof(*p));
        if (!p)
            return -1;
        if (parent->count)
            memcpy(p, parent->items, parent->count * sizeof(*p));
        parent->items = p;
        parent->alloc = n;
    }
    parent->items[parent->count++] = child;
    return 0;
}

/* Attaches a finished node to the open collection, or makes it the root. */
static int attach(builder *b, otr_ynode *node)
{
    if (b->depth == 0) {
        b->doc->root = node;
        return 0;
    }
    return node_push_child(b, b->stack[b->depth - 1], node);
}

static int check_tag(builder *b, const yaml_char_t *tag, const yaml_mark_t *mark)
{
    if (!tag)
        return 0;
    /* libyaml gives "!" for a non-specific tag on quoted scalars: harmless. */
    if (strcmp((const char *)tag, "!") == 0)
        return 0;
    fail(b, (unsigned)mark->line + 1, (unsigned)mark->column + 1,
         "YAML tags are not supported (found %s); write the value without a tag",
         (const char *)tag);
    return -1;
}

static int on_scalar(builder *b, const yaml_event_t *ev)
{
    if (check_tag(b, ev->data.scalar.tag, &ev->start_mark) < 0)
        return 0;
    otr_ynode *n = node_new(b, OTR_YSCALAR, &ev->start_mark);
    if (!n)
        return -1;
    n->len = ev->data.scalar.length;
    n->value = arena_alloc(&b->doc->arena, n->len + 1);
    if (!n->value)
        return -1;
    memcpy(n->value, ev->data.scalar.value, n->len);
    n->value[n->len] = '\0';
    switch (ev->data.scalar.style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE: n->style = OTR_YQUOTED; break;
    case YAML_LITERAL_SCALAR_STYLE:
    case YAML_FOLDED_SCALAR_STYLE: n->style = OTR_YBLOCK; break;
    default: n->style = OTR_YPLAIN;
    }
    if (ev->data.scalar.anchor &&
        anchors_put(&b->anchors, (const char *)ev->data.scalar.anchor, n) < 0)
        return -1;
    return attach(b, n);
}

static int on_start(builder *b, const yaml_event_t *ev, otr_ynode_type type)
{
    const yaml_char_t *tag =
        type == OTR_YMAP ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
    const yaml_char_t *anchor =
        type == OTR_YMAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    if (check_tag(b, tag, &ev->start_mark) < 0)
        return 0;
    if (b->depth >= OTR_YAML_MAX_DEPTH) {
        fail(b, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
             "nesting deeper than %s levels", "64");
        return 0;
    }
    otr_ynode *n = node_new(b, type, &ev->start_mark);
    if (!n)
        return -1;
    b->stack_anchor[b->depth] = anchor ? strdup((const char *)anchor) : NULL;
    if (anchor && !b->stack_anchor[b->depth])
        return -1;
    b->stack[b->depth++] = n;
    return 0;
}

static int on_end(builder *b)
{
    otr_ynode *n = b->stack[--b->depth];
    char *anchor = b->stack_anchor[b->depth];
    b->stack_anchor[b->depth] = NULL;
    /* The anchor becomes visible only once its node is complete, so an alias
     * inside its own anchor ("&a [*a]") is undefined rather than a cycle. */
    int rc = anchor ? anchors_put(&b->anchors, anchor, n) : 0;
    free(anchor);
    if (rc < 0)
        return -1;
    return attach(b, n);
}

static int on_alias(builder *b, const yaml_event_t *ev)
{
    otr_ynode *target = anchors_get(&b->anchors, (const char *)ev->data.alias.anchor);
    if (!target) {
        fail(b, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
             "unknown alias *%s (anchors must be defined before use)",
             (const char *)ev->data.alias.anchor);
        return 0;
    }
    return attach(b, target);
}

static void parser_error(builder *b, const yaml_parser_t *p)
{
    unsigned line, col;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR) {
        offset_to_mark(b->data, b->len, p->problem_offset, &line, &col);
        if (p->problem_value != -1 && strstr(problem, "control")) {
            otr_diags_add(b->diags, OTR_SEV_ERROR, b->order, b->file, line, col, NULL,
                          "yaml: %s (byte 0x%02X)", problem, (unsigned)p->problem_value);
            b->failed = 1;
            return;
        }
    } else {
        line = (unsigned)p->problem_mark.line + 1;
        col = (unsigned)p->problem_mark.column + 1;
    }
    if (p->context)
        otr_diags_add(b->diags, OTR_SEV_ERROR, b->order, b->file, line, col, NULL,
                      "yaml: %s %s (line %u)", problem, p->context,
                      (unsigned)p->context_mark.line + 1);
    else
        otr_diags_add(b->diags, OTR_SEV_ERROR, b->order, b->file, line, col, NULL, "yaml: %s",
                      problem);
    b->failed = 1;
}

static void builder_drop_doc(builder *b)
{
    otr_ydoc_free(b->doc);
    b->doc = NULL;
    for (size_t i = 0; i < b->depth; i++) {
        free(b->stack_anchor[i]);
        b->stack_anchor[i] = NULL;
    }
    b->depth = 0;
    anchors_clear(&b->anchors);
}

int otr_yaml_parse(const char *data, size_t len, const char *file, size_t order, otr_diags *diags,
                   otr_ydoc_fn fn, void *ctx, otr_error *err)
{
    yaml_parser_t parser;
    builder b = {.data = data, .len = len, .file = file, .order = order, .diags = diags};
    int rc = 0, done = 0;

    if (!yaml_parser_initialize(&parser))
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);

    while (!done && !b.failed) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            if (parser.error == YAML_MEMORY_ERROR) {
                rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory while parsing %s", file);
                break;
            }
            parser_error(&b, &parser);
            break;
        }
        int r = 0;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            b.doc = calloc(1, sizeof(*b.doc));
            if (!b.doc)
                r = -1;
            else
                b.doc->line = (unsigned)ev.start_mark.line + 1;
            break;
        case YAML_DOCUMENT_END_EVENT: {
            otr_ydoc *doc = b.doc;
            b.doc = NULL;
            anchors_clear(&b.anchors);
            if (fn(doc, ctx))
                done = 1;
            break;
        }
        case YAML_SCALAR_EVENT: r = on_scalar(&b, &ev); break;
        case YAML_SEQUENCE_START_EVENT: r = on_start(&b, &ev, OTR_YSEQ); break;
        case YAML_MAPPING_START_EVENT: r = on_start(&b, &ev, OTR_YMAP); break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: r = on_end(&b); break;
        case YAML_ALIAS_EVENT: r = on_alias(&b, &ev); break;
        case YAML_STREAM_END_EVENT: done = 1; break;
        default: break;
        }
        yaml_event_delete(&ev);
        if (r < 0) {
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory while parsing %s", file);
            break;
        }
    }
    builder_drop_doc(&b);
    yaml_parser_delete(&parser);
    return rc;
}

void otr_ydoc_free(otr_ydoc *doc)
{
    if (!doc)
        return;
    arena_free(doc->arena);
    free(doc);
}

int otr_ynode_is_null(const otr_ynode *n)
{
    if (n->type != OTR_YSCALAR || n->style != OTR_YPLAIN)
        return 0;
    const char *v = n->value;
    if (*v != '~' && *v != 'n' && *v != 'N') /* most scalars: one look */
        return !*v;
    return !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/*
 * How YAML 1.1 (PyYAML, yaml-language-server, most tools) resolves a plain
 * scalar. The expressions are those of the YAML 1.1 type repository
 * (yaml.org/type: bool, int, float, null, timestamp); a scalar that matches
 * none is a string. Only scalars that start with a digit, a sign or a dot can
 * be numbers or timestamps, so most strings never reach regexec.
 */
enum { RX_INT, RX_FLOAT, RX_TIMESTAMP, RX_COUNT };

static const char *const rx_source[RX_COUNT] = {
    "^([-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|"
    "[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+)$",
    "^([-+]?[0-9][0-9_]*\\.[0-9_]*([eE][-+][0-9]+)?|\\.[0-9][0-9_]*([eE][-+][0-9]+)?|"
    "[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN))$",
    "^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]+)[0-9]{1,2}:"
    "[0-9]{2}:[0-9]{2}(\\.[0-9]*)?([ \t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)$",
};

static regex_t rx[RX_COUNT];
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;
static int rx_ok;

static void rx_compile(void)
{
    rx_ok = 1;
    for (int i = 0; i < RX_COUNT; i++)
        if (regcomp(&rx[i], rx_source[i], REG_EXTENDED | REG_NOSUB) != 0)
            rx_ok = 0;
}

static int rx_match(int which, const char *s)
{
    pthread_once(&rx_once, rx_compile);
    return rx_ok && regexec(&rx[which], s, 0, NULL, 0) == 0;
}

/* YAML 1.1's booleans, in its three spellings of each. Most plain scalars
 * start with another letter: one look at the first (18 strcmp calls for
 * every plain scalar were 2% of a plan of manifests written by hand). */
static int is_bool(const char *s)
{
    static const char *const bools[] = {"yes",  "Yes",  "YES",   "no",    "No",    "NO", "true",
                                        "True", "TRUE", "false", "False", "FALSE", "on", "On",
                                        "ON",   "off",  "Off",   "OFF",   NULL};
    if (!s[0] || !strchr("yYnNtTfFoO", s[0]))
        return 0;
    for (size_t i = 0; bools[i]; i++)
        if (!strcmp(s, bools[i]))
            return 1;
    return 0;
}

otr_yresolved otr_ynode_resolve(const otr_ynode *n)
{
    if (n->type != OTR_YSCALAR || n->style != OTR_YPLAIN)
        return OTR_YSTR;
    if (otr_ynode_is_null(n))
        return OTR_YNULL;
    if (is_bool(n->value))
        return OTR_YBOOL;
    if (!strchr("-+.0123456789", n->value[0]) || memchr(n->value, '\0', n->len))
        return OTR_YSTR;
    if (rx_match(RX_INT, n->value))
        return OTR_YINT;
    if (rx_match(RX_FLOAT, n->value))
        return OTR_YFLOAT;
    if (rx_match(RX_TIMESTAMP, n->value))
        return OTR_YTIMESTAMP;
    return OTR_YSTR;
}

const char *otr_ynode_describe(const otr_ynode *n)
{
    if (n->type == OTR_YMAP)
        return "a mapping";
    if (n->type == OTR_YSEQ)
        return "a list";
    if (n->style == OTR_YQUOTED)
        return "a quoted string";
    if (n->style == OTR_YBLOCK)
        return "a block string";
    switch (otr_ynode_resolve(n)) {
    case OTR_YNULL: return "null";
    case OTR_YBOOL: return "a boolean";
    case OTR_YINT: return "an integer";
    case OTR_YFLOAT: return "a float";
    case OTR_YTIMESTAMP: return "a timestamp";
    case OTR_YSTR: break;
    }
    return "a string";
}
