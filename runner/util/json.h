/* Reading cJSON values: integers without undefined behaviour, members by
 * path; an object's members one at a time, without a tree of the whole. */
#ifndef OTR_UTIL_JSON_H
#define OTR_UTIL_JSON_H

#include "util/error.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* 0 and *out when v is a number, finite, whole and within [min, max];
 * -1 otherwise (also for NULL). */
int otr_json_integer(const cJSON *v, long long min, long long max, long long *out);

/* The integer, or fallback when v is not one in [min, max]. */
long long otr_json_integer_or(const cJSON *v, long long min, long long max, long long fallback);

/* The member at a dotted path ("task.TaskConfigurationRef") of obj, or NULL;
 * *parent (when given) gets the object that holds it. */
cJSON *otr_json_at(const cJSON *obj, const char *path, cJSON **parent);

/* Called for each member of an object (otr_json_each_member): its key
 * (unescaped) and the text of its value, at byte offset of the whole text.
 * A nonzero result stops the walk and is returned. */
typedef int (*otr_json_member_fn)(void *ctx, const char *key, const char *value, size_t len,
                                  size_t offset);

/* Walks the members of the JSON object in text[0..len) (whitespace around
 * it allowed, nothing else), delimiting each value without parsing it: fn
 * parses what it needs (otr_json_parse_span), so a 100 MB state is never
 * one tree. Returns 0, fn's nonzero result, or -1 with *bad_at the byte
 * where the text stops being an object (truncated or damaged). */
OTR_MUST_USE int otr_json_each_member(const char *text, size_t len, otr_json_member_fn fn,
                                      void *ctx, size_t *bad_at);

/* Called for each element of an array (otr_json_each_element): the text
 * of its value and its place. A nonzero result stops the walk. */
typedef int (*otr_json_element_fn)(void *ctx, const char *value, size_t len, size_t index);

/* Walks the elements of the JSON array text[0..len) as otr_json_each_member
 * walks members (each delimited, not parsed). Returns 0, fn's nonzero
 * result, or -1 when the text is not an array. */
int otr_json_each_element(const char *text, size_t len, otr_json_element_fn fn, void *ctx);

/* 1 with the text of the value at path (dotted) in the JSON object
 * text[0..len) (the first member of each name), found without a tree; 0
 * when there is none. */
int otr_json_member_at(const char *text, size_t len, const char *path, const char **value,
                       size_t *vlen);

/* The value whose text is text[0..len) exactly, or NULL with *bad_at (from
 * text) where it is not JSON. */
cJSON *otr_json_parse_span(const char *text, size_t len, size_t *bad_at);

/* Building JSON with a sticky failure (as otr_buf has): every add checks
 * what cJSON gave back, and once one fails (no memory), the builder has
 * failed and every later add is skipped; the caller checks failed once, at
 * the end, and serialises nothing of a tree with a hole in it. */
typedef struct otr_jb {
    int failed;
} otr_jb;
#define OTR_JB_INIT                                                                                \
    {                                                                                              \
        .failed = 0                                                                                \
    }

/* Adds item (taken; NULL fails the builder) to obj under key, or to an
 * array when key is NULL. */
void otr_jb_add(otr_jb *b, cJSON *obj, const char *key, cJSON *item);
/* A string (nothing when value is NULL), a number, a boolean. */
void otr_jb_str(otr_jb *b, cJSON *obj, const char *key, const char *value);
void otr_jb_num(otr_jb *b, cJSON *obj, const char *key, double value);
void otr_jb_bool(otr_jb *b, cJSON *obj, const char *key, int value);
/* A new object or array added under key; NULL (and failed) without memory. */
cJSON *otr_jb_object(otr_jb *b, cJSON *obj, const char *key);
cJSON *otr_jb_array(otr_jb *b, cJSON *obj, const char *key);

#endif
