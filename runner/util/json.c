/* Checked integer reads from cJSON numbers (which are doubles); members by path. */
#include "util/json.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

int otr_json_integer(const cJSON *v, long long min, long long max, long long *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    /* compare as doubles before converting: a cast out of range is undefined */
    if (!isfinite(d) || d != floor(d) || d < (double)min || d > (double)max)
        return -1;
    *out = (long long)d;
    return 0;
}

long long otr_json_integer_or(const cJSON *v, long long min, long long max, long long fallback)
{
    long long x;
    return otr_json_integer(v, min, max, &x) == 0 ? x : fallback;
}

cJSON *otr_json_at(const cJSON *obj, const char *path, cJSON **parent)
{
    char part[128];
    cJSON *at = (cJSON *)obj;
    if (parent)
        *parent = NULL;
    for (const char *p = path; at && *p;) {
        size_t len = strcspn(p, ".");
        if (len >= sizeof(part))
            return NULL;
        memcpy(part, p, len);
        part[len] = '\0';
        if (parent)
            *parent = at;
        at = cJSON_GetObjectItemCaseSensitive(at, part);
        p += len + (p[len] == '.');
    }
    return at;
}

/* ---- an object's members, one at a time ----------------------------------------- */

/* Limits of what the walk accepts: a key is a name, not a document. */
#define OTR_JSON_MAX_KEY_BYTES 4096

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Past the string that starts at p (a quote); NULL when it does not end.
 * Its end is the first quote after an even run of backslashes (memchr
 * finds the quotes: a spec is read this way for each field looked up). */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return NULL;
        size_t slashes = 0;
        while (q - slashes > p && q[-1 - (ptrdiff_t)slashes] == '\\')
            slashes++;
        if (slashes % 2 == 0)
            return q + 1;
        p = q + 1;
    }
    return NULL;
}

/* The bytes that matter inside brackets. */
static const unsigned char in_brackets[256] = {
    ['"'] = 1, ['{'] = 1, ['['] = 1, ['}'] = 1, [']'] = 1};

/* Past the value that starts at p: a string, a nesting of brackets (which
 * otr_json_parse_span checks), or a bare word; NULL when it does not end. */
static const char *skip_value(const char *p, const char *end)
{
    if (p == end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            while (p < end && !in_brackets[(unsigned char)*p])
                p++;
            if (p == end)
                break;
            if (*p == '"') {
                if (!(p = skip_string(p, end)))
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (--depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    const char *start = p;
    while (p < end && !strchr(",}] \t\n\r", *p))
        p++;
    return p > start ? p : NULL;
}

cJSON *otr_json_parse_span(const char *text, size_t len, size_t *bad_at)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (v && end == text + len)
        return v;
    cJSON_Delete(v);
    *bad_at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
    return NULL;
}

/* The key whose text (quotes included) is p[0..n) into key: as it is
 * when it has no escapes, else as cJSON reads it; -1 when it is not a
 * JSON string. */
static int read_key(const char *p, size_t n, char key[OTR_JSON_MAX_KEY_BYTES + 1])
{
    int plain = 1;
    for (size_t i = 1; i + 1 < n && plain; i++)
        plain = p[i] != '\\' && (unsigned char)p[i] >= 0x20;
    if (plain) {
        memcpy(key, p + 1, n - 2);
        key[n - 2] = '\0';
        return 0;
    }
    size_t at;
    cJSON *v = otr_json_parse_span(p, n, &at);
    if (!v)
        return -1;
    snprintf(key, OTR_JSON_MAX_KEY_BYTES + 1, "%s", v->valuestring);
    cJSON_Delete(v);
    return 0;
}

/* Past an object's member or an array's element that ends at p: the next
 * one (*more set), or past the closing bracket; NULL when neither follows. */
static const char *after_item(const char *p, const char *end, char close, int *more)
{
    p = skip_ws(p, end);
    *more = p < end && *p == ',';
    if (*more)
        return skip_ws(p + 1, end);
    return p < end && *p == close ? p + 1 : NULL;
}

int otr_json_each_member(const char *text, size_t len, otr_json_member_fn fn, void *ctx,
                         size_t *bad_at)
{
    char key[OTR_JSON_MAX_KEY_BYTES + 1];
    const char *end = text + len, *p = skip_ws(text, end);
    if (p == end || *p != '{')
        goto bad;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
        goto after;
    }
    for (;;) {
        const char *key_end = p < end && *p == '"' ? skip_string(p, end) : NULL;
        if (!key_end || (size_t)(key_end - p) > OTR_JSON_MAX_KEY_BYTES)
            goto bad;
        if (read_key(p, (size_t)(key_end - p), key) < 0)
            goto bad;
        p = skip_ws(key_end, end);
        const char *value = p < end && *p == ':' ? skip_ws(p + 1, end) : NULL;
        const char *value_end = value ? skip_value(value, end) : NULL;
        if (!value_end) {
            size_t at = 0; /* where cJSON stops, rather than where the value began */
            if (value)
                cJSON_Delete(otr_json_parse_span(value, (size_t)(end - value), &at));
            p = value ? value + at : p;
            goto bad;
        }
        int rc = fn(ctx, key, value, (size_t)(value_end - value), (size_t)(value - text));
        if (rc)
            return rc;
        int more = 0;
        const char *next = after_item(value_end, end, '}', &more);
        if (!next) {
            p = skip_ws(value_end, end);
            goto bad;
        }
        p = next;
        if (!more)
            break;
    }
after:
    p = skip_ws(p, end);
    while (p < end && *p == '\0') /* a text given with its terminator */
        p++;
    if (p == end)
        return 0;
bad:
    *bad_at = (size_t)(p - text);
    return -1;
}

int otr_json_each_element(const char *text, size_t len, otr_json_element_fn fn, void *ctx)
{
    const char *end = text + len, *p = skip_ws(text, end);
    size_t index = 0;
    if (p == end || *p != '[')
        return -1;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']')
        return 0;
    for (;;) {
        const char *value_end = skip_value(p, end);
        if (!value_end)
            return -1;
        int rc = fn(ctx, p, (size_t)(value_end - p), index++);
        if (rc)
            return rc;
        int more = 0;
        if (!(p = after_item(value_end, end, ']', &more)))
            return -1;
        if (!more)
            return 0;
    }
}

typedef struct member_find {
    const char *key;
    const char *value;
    size_t len;
} member_find;

static int on_member_find(void *ctx, const char *key, const char *value, size_t len, size_t offset)
{
    member_find *f = ctx;
    (void)offset;
    if (strcmp(key, f->key) != 0)
        return 0;
    f->value = value;
    f->len = len;
    return 1;
}

int otr_json_member_at(const char *text, size_t len, const char *path, const char **value,
                       size_t *vlen)
{
    char part[128];
    while (*path) {
        size_t n = strcspn(path, "."), bad;
        if (n >= sizeof(part))
            return 0;
        memcpy(part, path, n);
        part[n] = '\0';
        member_find f = {part, NULL, 0};
        if (otr_json_each_member(text, len, on_member_find, &f, &bad) != 1)
            return 0;
        text = f.value;
        len = f.len;
        path += n + (path[n] == '.');
    }
    *value = text;
    *vlen = len;
    return 1;
}

/* ---- building ------------------------------------------------------------------- */

void otr_jb_add(otr_jb *b, cJSON *obj, const char *key, cJSON *item)
{
    if (b->failed || !obj || !item) {
        cJSON_Delete(item);
        b->failed = 1;
        return;
    }
    if (!(key ? cJSON_AddItemToObject(obj, key, item) : cJSON_AddItemToArray(obj, item))) {
        cJSON_Delete(item);
        b->failed = 1;
    }
}

void otr_jb_str(otr_jb *b, cJSON *obj, const char *key, const char *value)
{
    if (value)
        otr_jb_add(b, obj, key, b->failed ? NULL : cJSON_CreateString(value));
}

void otr_jb_num(otr_jb *b, cJSON *obj, const char *key, double value)
{
    otr_jb_add(b, obj, key, b->failed ? NULL : cJSON_CreateNumber(value));
}

void otr_jb_bool(otr_jb *b, cJSON *obj, const char *key, int value)
{
    otr_jb_add(b, obj, key, b->failed ? NULL : cJSON_CreateBool(value));
}

cJSON *otr_jb_object(otr_jb *b, cJSON *obj, const char *key)
{
    cJSON *o = b->failed ? NULL : cJSON_CreateObject();
    otr_jb_add(b, obj, key, o);
    return b->failed ? NULL : o;
}

cJSON *otr_jb_array(otr_jb *b, cJSON *obj, const char *key)
{
    cJSON *a = b->failed ? NULL : cJSON_CreateArray();
    otr_jb_add(b, obj, key, a);
    return b->failed ? NULL : a;
}
