/* Schema-driven validation of YAML nodes, producing sorted JSON values. */
#include "manifest/validate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void otr_vctx_init(otr_vctx *v, otr_diags *diags, const char *file, size_t order)
{
    memset(v, 0, sizeof(*v));
    v->diags = diags;
    v->file = file;
    v->order = order;
    v->budget = OTR_EXPANSION_BUDGET;
}

size_t otr_utf8_length(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

#define REPORT(v, node, path, ...)                                                                 \
    otr_diags_add((v)->diags, OTR_SEV_ERROR, (v)->order, (v)->file, (node)->line, (node)->col,     \
                  otr_buf_cstr(path), __VA_ARGS__)

/* Quotes a value for a message, cut to a readable length. */
static const char *shown(const otr_ynode *n, char *tmp, size_t size)
{
    size_t len = n->len;
    if (len > 60) {
        snprintf(tmp, size, "\"%.57s...\"", n->value);
        /* do not cut a UTF-8 sequence in half */
        size_t end = strlen(tmp) - 4;
        while (end > 1 && ((unsigned char)tmp[end] & 0xC0) == 0x80)
            end--;
        if (end < strlen(tmp) - 4)
            memmove(tmp + end, "...\"", 5);
    } else {
        snprintf(tmp, size, "\"%s\"", n->value);
    }
    return tmp;
}

static int spend(otr_vctx *v, const otr_ynode *n, otr_buf *path)
{
    if (v->budget_hit)
        return -1;
    if (v->budget == 0) {
        v->budget_hit = 1;
        REPORT(v, n, path,
               "document expands to more than %d nodes through anchors and aliases; "
               "write it out or simplify it",
               OTR_EXPANSION_BUDGET);
        return -1;
    }
    v->budget--;
    return 0;
}

static void path_push(otr_buf *path, const char *name)
{
    if (path->len)
        otr_buf_putc(path, '.');
    otr_buf_puts(path, name);
}

static void path_restore(otr_buf *path, size_t len)
{
    path->len = len;
    if (path->ptr)
        path->ptr[len] = '\0';
}

static void enum_list(otr_buf *out, const char *const *e)
{
    size_t n = 0;
    while (e[n])
        n++;
    for (size_t i = 0; i < n; i++) {
        if (i)
            otr_buf_puts(out, i == n - 1 ? " or " : ", ");
        otr_buf_puts(out, e[i]);
    }
}

static int check_scalar(otr_vctx *v, const otr_ynode *n, otr_buf *path, const char *want)
{
    if (n->type == OTR_YSCALAR && !otr_ynode_is_null(n))
        return 0;
    if (otr_ynode_is_null(n))
        REPORT(v, n, path, "must be %s, got null", want);
    else
        REPORT(v, n, path, "must be %s, got %s", want, otr_ynode_describe(n));
    return -1;
}

static void report_length(otr_vctx *v, const otr_ynode *n, otr_buf *path, const char *what,
                          const otr_field *f, size_t got)
{
    if (f->max == OTR_NO_LIMIT)
        REPORT(v, n, path, "%smust be at least %ld characters, got %zu", what, f->min, got);
    else if (f->min == f->max)
        REPORT(v, n, path, "%smust be %ld characters, got %zu", what, f->min, got);
    else if (f->min <= 0)
        REPORT(v, n, path, "%smust be at most %ld characters, got %zu", what, f->max, got);
    else
        REPORT(v, n, path, "%smust be %ld to %ld characters, got %zu", what, f->min, f->max, got);
}

/* Checks a scalar's text against a string field: length, enum, pattern.
 * what prefixes the message: "" for values, "key " for map keys. */
static int check_string(otr_vctx *v, const otr_field *f, const otr_ynode *n, otr_buf *path,
                        const char *what)
{
    char tmp[96];
    size_t chars = otr_utf8_length(n->value, n->len);
    if (memchr(n->value, '\0', n->len)) {
        REPORT(v, n, path, "%smust not contain NUL characters", what);
        return -1;
    }
    size_t at;
    unsigned long bad = otr_forging_find(n->value, n->len, &at);
    if (bad) {
        REPORT(v, n, path,
               "%smust not contain control or bidirectional characters: U+%04lX at character "
               "%zu (a line break, escape or override could forge what a review shows)",
               what, bad, at);
        return -1;
    }
    if ((f->min != OTR_NO_LIMIT && chars < (size_t)f->min) ||
        (f->max != OTR_NO_LIMIT && chars > (size_t)f->max)) {
        report_length(v, n, path, what, f, chars);
        return -1;
    }
    if (f->enums) {
        for (size_t i = 0; f->enums[i]; i++)
            if (strcmp(f->enums[i], n->value) == 0)
                return 0;
        otr_buf msg = OTR_BUF_INIT;
        enum_list(&msg, f->enums);
        const char *near = otr_schema_suggest_word(f->enums, n->value);
        if (near)
            REPORT(v, n, path, "%smust be %s, got %s; did you mean %s?", what, otr_buf_cstr(&msg),
                   shown(n, tmp, sizeof(tmp)), near);
        else
            REPORT(v, n, path, "%smust be %s, got %s", what, otr_buf_cstr(&msg),
                   shown(n, tmp, sizeof(tmp)));
        otr_buf_free(&msg);
        return -1;
    }
    if (f->check) {
        otr_buf why = OTR_BUF_INIT;
        int ok = f->check(n->value, n->len, &why);
        if (!ok && f->check_desc)
            REPORT(v, n, path, "%smust contain only %s, got %s (%s)", what, f->check_desc,
                   shown(n, tmp, sizeof(tmp)), otr_buf_cstr(&why));
        else if (!ok)
            REPORT(v, n, path, "%s%s, got %s", what, otr_buf_cstr(&why),
                   shown(n, tmp, sizeof(tmp)));
        otr_buf_free(&why);
        if (!ok)
            return -1;
    }
    return 0;
}

static cJSON *validate_string(otr_vctx *v, const otr_field *f, const otr_ynode *n, otr_buf *path)
{
    if (check_scalar(v, n, path, "a string") < 0)
        return NULL;
    if (otr_ynode_resolve(n) != OTR_YSTR) {
        /* YAML reads "2024", "yes" or "1.5" as a number or a boolean; what
         * editors and other tools see must be what we see. */
        REPORT(v, n, path, "must be a string, got %s %s (put it in quotes)", otr_ynode_describe(n),
               n->value);
        return NULL;
    }
    if (check_string(v, f, n, path, "") < 0)
        return NULL;
    for (size_t i = 0; f->enums && f->enums[i]; i++) /* the schema's own string, not a copy */
        if (strcmp(f->enums[i], n->value) == 0)
            return cJSON_CreateStringReference(f->enums[i]);
    return cJSON_CreateStringReference(n->value); /* the document's text, not a copy */
}

/* [-+]?(0|[1-9][0-9]*): the one integer spelling every YAML reader agrees on. */
static int is_decimal(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (s[0] == '0')
        return s[1] == '\0';
    return *s >= '1' && *s <= '9' && strspn(s, "0123456789") == strlen(s);
}

static cJSON *validate_int(otr_vctx *v, const otr_field *f, const otr_ynode *n, otr_buf *path)
{
    char tmp[96];
    if (check_scalar(v, n, path, "an integer") < 0)
        return NULL;
    if (n->style != OTR_YPLAIN || !is_decimal(n->value)) {
        const char *digits = n->value + (n->value[0] == '+' || n->value[0] == '-');
        if (n->style == OTR_YPLAIN && digits[0] == '0' && digits[1] &&
            strspn(digits, "0123456789") == strlen(digits))
            REPORT(v, n, path, "must be a decimal integer without leading zeros, got %s", n->value);
        else if (otr_ynode_resolve(n) == OTR_YINT)
            REPORT(v, n, path, "must be a plain decimal integer, got %s", n->value);
        else
            REPORT(v, n, path, "must be an integer, got %s %s", otr_ynode_describe(n),
                   shown(n, tmp, sizeof(tmp)));
        return NULL;
    }
    errno = 0;
    long long x = strtoll(n->value, NULL, 10);
    if (errno == ERANGE || (f->min != OTR_NO_LIMIT && x < f->min) ||
        (f->max != OTR_NO_LIMIT && x > f->max)) {
        if (f->max == OTR_NO_LIMIT)
            REPORT(v, n, path, "must be at least %ld, got %s", f->min, n->value);
        else
            REPORT(v, n, path, "must be between %ld and %ld, got %s", f->min, f->max, n->value);
        return NULL;
    }
    return cJSON_CreateNumber((double)x);
}

/* A decimal number as YAML 1.2 writes one: [-+]?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][-+]?[0-9]+)?
 * with at least one digit before the exponent. Leading zeros are refused
 * (YAML 1.1 reads 010 as octal). */
static int is_decimal_number(const char *s)
{
    size_t digits = 0;
    if (*s == '-' || *s == '+')
        s++;
    if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
        return 0;
    for (; *s >= '0' && *s <= '9'; s++)
        digits++;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++)
            digits++;
    if (!digits)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static cJSON *validate_double(otr_vctx *v, const otr_field *f, const otr_ynode *n, otr_buf *path)
{
    char tmp[96];
    if (check_scalar(v, n, path, "a number") < 0)
        return NULL;
    if (n->style != OTR_YPLAIN || !is_decimal_number(n->value)) {
        if (n->style == OTR_YPLAIN)
            REPORT(v, n, path, "must be a decimal number such as 2.5, 10 or 1e1, got %s",
                   shown(n, tmp, sizeof(tmp)));
        else
            REPORT(v, n, path, "must be a number, got %s %s (remove the quotes)",
                   otr_ynode_describe(n), shown(n, tmp, sizeof(tmp)));
        return NULL;
    }
    errno = 0;
    double x = strtod(n->value, NULL);
    if (errno == ERANGE && (x == HUGE_VAL || x == -HUGE_VAL)) {
        REPORT(v, n, path, "is too large to be a number, got %s", n->value);
        return NULL;
    }
    if (x == 0)
        x = 0; /* -0 is 0 */
    int low = !isnan(f->dmin) && x < f->dmin, high = !isnan(f->dmax) && x > f->dmax;
    if (low || high) {
        if (isnan(f->dmax))
            REPORT(v, n, path, "must be at least %g, got %s", f->dmin, n->value);
        else if (isnan(f->dmin))
            REPORT(v, n, path, "must be at most %g, got %s", f->dmax, n->value);
        else
            REPORT(v, n, path, "must be between %g and %g, got %s", f->dmin, f->dmax, n->value);
        return NULL;
    }
    return cJSON_CreateNumber(x);
}

static cJSON *validate_bool(otr_vctx *v, const otr_ynode *n, otr_buf *path)
{
    char tmp[96];
    if (check_scalar(v, n, path, "true or false") < 0)
        return NULL;
    if (n->style != OTR_YPLAIN || (strcmp(n->value, "true") && strcmp(n->value, "false"))) {
        REPORT(v, n, path, "must be true or false, got %s", shown(n, tmp, sizeof(tmp)));
        return NULL;
    }
    return cJSON_CreateBool(!strcmp(n->value, "true"));
}

static cJSON *validate_list(otr_vctx *v, const otr_field *f, const otr_ynode *n, otr_buf *path)
{
    if (n->type != OTR_YSEQ) {
        REPORT(v, n, path, "must be a list, got %s", otr_ynode_describe(n));
        return NULL;
    }
    if ((f->min != OTR_NO_LIMIT && n->count < (size_t)f->min) ||
        (f->max != OTR_NO_LIMIT && n->count > (size_t)f->max)) {
        if (f->max == OTR_NO_LIMIT)
            REPORT(v, n, path, "must have at least %ld entries, got %zu", f->min, n->count);
        else
            REPORT(v, n, path, "must have %ld to %ld entries, got %zu", f->min, f->max, n->count);
        return NULL;
    }
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return NULL;
    size_t base = path->len;
    for (size_t i = 0; i < n->count && !v->budget_hit; i++) {
        otr_buf_printf(path, "[%zu]", i);
        cJSON *item = otr_validate_node(v, f->elem, n->items[i], path);
        path_restore(path, base);
        if (item)
            cJSON_AddItemToArray(arr, item);
    }
    return arr;
}

static int key_cmp(const void *a, const void *b)
{
    const otr_ynode *const *x = a, *const *y = b;
    int c = strcmp((*x)->value, (*y)->value);
    if (c)
        return c;
    return (*x)->line != (*y)->line ? ((*x)->line < (*y)->line ? -1 : 1)
                                    : ((*x)->col < (*y)->col ? -1 : (*x)->col > (*y)->col);
}

static int check_key_node(otr_vctx *v, const otr_ynode *k, otr_buf *path)
{
    if (k->type != OTR_YSCALAR || otr_ynode_is_null(k)) {
        REPORT(v, k, path, "keys must be strings, got %s", otr_ynode_describe(k));
        return -1;
    }
    return 0;
}

/* Reports every key that appears twice. Sorting keeps it O(n log n) for
 * mappings with very many keys. */
static void report_duplicates(otr_vctx *v, const otr_ynode *n, otr_buf *path)
{
    size_t nkeys = 0;
    const otr_ynode **keys = malloc((n->count / 2 + 1) * sizeof(*keys));
    if (!keys) {
        v->nomem = 1;
        return;
    }
    for (size_t i = 0; i + 1 < n->count; i += 2)
        if (n->items[i]->type == OTR_YSCALAR)
            keys[nkeys++] = n->items[i];
    qsort(keys, nkeys, sizeof(*keys), key_cmp);
    size_t base = path->len;
    for (size_t i = 1; i < nkeys; i++) {
        if (strcmp(keys[i]->value, keys[i - 1]->value) != 0)
            continue;
        size_t first = i - 1;
        while (first > 0 && !strcmp(keys[first - 1]->value, keys[i]->value))
            first--;
        path_push(path, keys[i]->value);
        REPORT(v, keys[i], path, "duplicate key (first at line %u, column %u)", keys[first]->line,
               keys[first]->col);
        path_restore(path, base);
    }
    free(keys);
}

/* Maps are small (their count is checked first), so a linear look-up is fine. */
static int map_has_key(const cJSON *obj, const char *key)
{
    for (const cJSON *c = obj->child; c; c = c->next)
        if (!strcmp(c->string, key))
            return 1;
    return 0;
}

static cJSON *validate_map(otr_vctx *v, const otr_field *f, const otr_ynode *n, otr_buf *path)
{
    if (n->type != OTR_YMAP) {
        REPORT(v, n, path, "must be a mapping, got %s", otr_ynode_describe(n));
        return NULL;
    }
    size_t entries = n->count / 2;
    if ((f->min != OTR_NO_LIMIT && entries < (size_t)f->min) ||
        (f->max != OTR_NO_LIMIT && entries > (size_t)f->max)) {
        if (f->max == OTR_NO_LIMIT)
            REPORT(v, n, path, "must have at least %ld entries, got %zu", f->min, entries);
        else
            REPORT(v, n, path, "must have %ld to %ld entries, got %zu", f->min, f->max, entries);
        return NULL;
    }
    report_duplicates(v, n, path);
    cJSON *obj = cJSON_CreateObject();
    if (!obj)
        return NULL;
    size_t base = path->len;
    for (size_t i = 0; i + 1 < n->count && !v->budget_hit; i += 2) {
        const otr_ynode *k = n->items[i], *val = n->items[i + 1];
        if (spend(v, k, path) < 0 || check_key_node(v, k, path) < 0)
            continue;
        path_push(path, k->value);
        if (check_string(v, f->key, k, path, "key ") == 0 && !map_has_key(obj, k->value)) {
            cJSON *item = otr_validate_node(v, f->elem, val, path);
            if (item)
                cJSON_AddItemToObjectCS(obj, k->value, item); /* the key: the document's */
        }
        path_restore(path, base);
    }
    return obj;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void report_unknown(otr_vctx *v, const otr_field *f, const otr_ynode *k, otr_buf *path)
{
    if (!strcmp(k->value, "ClientToken") && f->spec_root) {
        REPORT(v, k, path,
               "ClientToken must not be set: ota-runner derives it from the manifest "
               "(bump metadata.revision to get a fresh one)");
        return;
    }
    const char *near = otr_schema_suggest(f, k->value);
    if (near) {
        REPORT(v, k, path, "unknown field; did you mean %s?", near);
        return;
    }
    otr_buf names = OTR_BUF_INIT;
    const char *sorted[64];
    size_t n = 0;
    for (size_t i = 0; i < f->nmembers && n < 64; i++)
        sorted[n++] = f->members[i].name;
    qsort(sorted, n, sizeof(*sorted), name_cmp);
    for (size_t i = 0; i < n; i++)
        otr_buf_printf(&names, "%s%s", i ? ", " : "", sorted[i]);
    REPORT(v, k, path, "unknown field (expected one of: %s)", otr_buf_cstr(&names));
    otr_buf_free(&names);
}

/* A mapping of 100,000 stray keys gets a bounded report. */
#define MAX_UNKNOWN_SHOWN 20

static cJSON *validate_struct(otr_vctx *v, const otr_field *f, const otr_ynode *n, otr_buf *path)
{
    if (n->type != OTR_YMAP) {
        REPORT(v, n, path, "must be a mapping, got %s", otr_ynode_describe(n));
        return NULL;
    }
    const otr_ynode *seen[32] = {0};
    cJSON *found[32] = {0}; /* added in the schema's (sorted) order: canonical already */
    size_t unknown = 0;
    cJSON *obj = cJSON_CreateObject();
    if (!obj)
        return NULL;
    size_t base = path->len;
    for (size_t i = 0; i + 1 < n->count && !v->budget_hit; i += 2) {
        const otr_ynode *k = n->items[i], *val = n->items[i + 1];
        if (spend(v, k, path) < 0 || check_key_node(v, k, path) < 0)
            continue;
        path_push(path, k->value);
        const otr_field *m = otr_schema_member(f, k->value);
        if (!m) {
            if (unknown++ < MAX_UNKNOWN_SHOWN)
                report_unknown(v, f, k, path);
        } else if (seen[m - f->members]) {
            const otr_ynode *first = seen[m - f->members];
            REPORT(v, k, path, "duplicate key (first at line %u, column %u)", first->line,
                   first->col);
        } else {
            seen[m - f->members] = k;
            found[m - f->members] = otr_validate_node(v, m, val, path);
        }
        path_restore(path, base);
    }
    for (size_t i = 0; i < f->nmembers; i++) /* the schema's own name: kept, not copied */
        if (found[i])
            cJSON_AddItemToObjectCS(obj, f->members[i].name, found[i]);
    if (unknown > MAX_UNKNOWN_SHOWN)
        REPORT(v, n, path, "%zu more unknown fields in this mapping not shown",
               unknown - MAX_UNKNOWN_SHOWN);
    for (size_t i = 0; i < f->nmembers && !v->budget_hit; i++) {
        if (!f->members[i].required || seen[i])
            continue;
        path_push(path, f->members[i].name);
        REPORT(v, n, path, "required field is missing");
        path_restore(path, base);
    }
    return obj;
}

cJSON *otr_validate_node(otr_vctx *v, const otr_field *f, const otr_ynode *n, otr_buf *path)
{
    if (spend(v, n, path) < 0)
        return NULL;
    switch (f->type) {
    case OTR_F_STRING: return validate_string(v, f, n, path);
    case OTR_F_INT: return validate_int(v, f, n, path);
    case OTR_F_DOUBLE: return validate_double(v, f, n, path);
    case OTR_F_BOOL: return validate_bool(v, n, path);
    case OTR_F_ANY: return NULL;
    case OTR_F_LIST: return validate_list(v, f, n, path);
    case OTR_F_MAP: return validate_map(v, f, n, path);
    case OTR_F_STRUCT: return validate_struct(v, f, n, path);
    }
    return NULL;
}
