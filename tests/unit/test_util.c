/*
 * util/: the buffer (its sticky failure and its cap), the growth helper, the JSON readers
 * (integers without undefined behaviour, members read from text without a
 * tree), the loop spread over threads, and time (ISO 8601 and durations).
 */
#include "util/alloc.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/parallel.h"
#include "util/time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One failure sticks: past the cap nothing is appended, and every later
 * append fails too, so a sequence is checked once; clear starts afresh. */
static void test_buf_sticky_and_capped(void **state)
{
    (void)state;
    otr_buf b = OTR_BUF_INIT;
    b.cap = 16;
    assert_int_equal(otr_buf_puts(&b, "0123456789"), 0);
    assert_int_equal(otr_buf_puts(&b, "abcdefghij"), -1); /* 20 bytes and a NUL > 16 */
    assert_true(otr_buf_failed(&b));
    assert_int_equal(otr_buf_putc(&b, 'x'), -1); /* it would fit, but the failure sticks */
    assert_int_equal(otr_buf_printf(&b, "%d", 1), -1);
    assert_string_equal(otr_buf_cstr(&b), "0123456789"); /* nothing cut short in */
    otr_buf_clear(&b);
    assert_false(otr_buf_failed(&b));
    assert_int_equal(otr_buf_printf(&b, "%s-%d", "ok", 7), 0);
    assert_string_equal(otr_buf_cstr(&b), "ok-7");
    char *s = otr_buf_detach(&b);
    assert_string_equal(s, "ok-7");
    assert_int_equal(b.len, 0);
    free(s);
    otr_buf_free(&b);
    otr_buf empty = OTR_BUF_INIT;
    assert_string_equal(otr_buf_cstr(&empty), ""); /* never NULL */
}

static void test_json_integers(void **state)
{
    (void)state;
    cJSON *j = cJSON_Parse("{\"a\": 42, \"b\": 4.5, \"c\": 1e300, \"d\": \"7\", \"e\": -3}");
    long long v;
    assert_int_equal(otr_json_integer(cJSON_GetObjectItem(j, "a"), 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(otr_json_integer(cJSON_GetObjectItem(j, "a"), 0, 10, &v), -1);  /* range */
    assert_int_equal(otr_json_integer(cJSON_GetObjectItem(j, "b"), 0, 100, &v), -1); /* whole */
    assert_int_equal(otr_json_integer(cJSON_GetObjectItem(j, "c"), 0, 100, &v), -1); /* huge */
    assert_int_equal(otr_json_integer(cJSON_GetObjectItem(j, "d"), 0, 100, &v), -1); /* text */
    assert_int_equal(otr_json_integer_or(cJSON_GetObjectItem(j, "e"), 0, 100, 9), 9);
    assert_int_equal(otr_json_integer_or(cJSON_GetObjectItem(j, "e"), -5, 100, 9), -3);
    cJSON_Delete(j);
}

/* A member is found in the text of an object by its dotted path, strings
 * with escapes and nested objects skipped whole, without a tree. */
static void test_json_member_at(void **state)
{
    (void)state;
    const char *text =
        "{\"x\": \"a\\\"}b\", \"task\": {\"Ref\": \"cfg\", \"n\": [1, {\"Ref\": 2}]},"
        " \"Ref\": true}";
    const char *at;
    size_t len;
    assert_int_equal(otr_json_member_at(text, strlen(text), "task.Ref", &at, &len), 1);
    assert_int_equal(len, 5);
    assert_memory_equal(at, "\"cfg\"", 5);
    assert_int_equal(otr_json_member_at(text, strlen(text), "Ref", &at, &len), 1);
    assert_memory_equal(at, "true", 4);
    assert_int_equal(otr_json_member_at(text, strlen(text), "task.missing", &at, &len), 0);
    size_t bad;
    cJSON *v = otr_json_parse_span("\"cfg\"", 5, &bad);
    assert_string_equal(v->valuestring, "cfg");
    cJSON_Delete(v);
    assert_null(otr_json_parse_span("\"cfg\" x", 7, &bad));
    cJSON *o = cJSON_Parse("{\"task\": {\"Ref\": \"cfg\"}}"), *parent = NULL;
    assert_string_equal(otr_json_at(o, "task.Ref", &parent)->valuestring, "cfg");
    assert_ptr_equal(parent, cJSON_GetObjectItem(o, "task"));
    cJSON_Delete(o);
}

/* Numbers and padding as printf's "%lld" and "%-*s" write them. */
static void test_buf_numbers_and_padding(void **state)
{
    (void)state;
    otr_buf b = OTR_BUF_INIT;
    char want[128];
    const long long values[] = {0, 7, -7, 1234567890123LL, LLONG_MIN, LLONG_MAX};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        otr_buf_clear(&b);
        assert_int_equal(otr_buf_put_long(&b, values[i]), 0);
        snprintf(want, sizeof(want), "%lld", values[i]);
        assert_string_equal(otr_buf_cstr(&b), want);
    }
    const size_t widths[] = {0, 2, 3, 40, 75};
    for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
        otr_buf_clear(&b);
        assert_int_equal(otr_buf_put_padded(&b, "abc", widths[i]), 0);
        snprintf(want, sizeof(want), "%-*s|", (int)widths[i], "abc");
        otr_buf_putc(&b, '|');
        assert_string_equal(otr_buf_cstr(&b), want);
    }
    otr_buf_free(&b);
}

/* The elements of an array are walked in order without a tree, a string
 * holding brackets and quotes skipped whole; the walk stops where asked,
 * and a text that is not an array is said to be none. */
typedef struct elements {
    size_t n, stop_at;
    otr_buf seen;
} elements;

static int on_element(void *ctx, const char *value, size_t len, size_t index)
{
    elements *e = ctx;
    assert_int_equal(index, e->n);
    otr_buf_append(&e->seen, value, len);
    otr_buf_putc(&e->seen, '|');
    return ++e->n == e->stop_at ? 7 : 0;
}

static void test_json_each_element(void **state)
{
    (void)state;
    const char *text = " [\"a\\\"]\", {\"x\": [1, 2]}, 3 , [], true] ";
    elements e = {0, 0, OTR_BUF_INIT};
    assert_int_equal(otr_json_each_element(text, strlen(text), on_element, &e), 0);
    assert_int_equal(e.n, 5);
    assert_string_equal(otr_buf_cstr(&e.seen), "\"a\\\"]\"|{\"x\": [1, 2]}|3|[]|true|");
    otr_buf_clear(&e.seen);
    e.n = 0;
    e.stop_at = 2;
    assert_int_equal(otr_json_each_element(text, strlen(text), on_element, &e), 7);
    assert_int_equal(e.n, 2);
    e.n = 0;
    e.stop_at = 0;
    assert_int_equal(otr_json_each_element("[]", 2, on_element, &e), 0);
    assert_int_equal(e.n, 0);
    assert_int_equal(otr_json_each_element("{\"a\": 1}", 8, on_element, &e), -1);
    assert_int_equal(otr_json_each_element("[1, 2", 5, on_element, &e), -1);
    assert_int_equal(otr_json_each_element("[\"open]", 7, on_element, &e), -1);
    otr_buf_free(&e.seen);
}

/* One growth helper: doubling from a first size, nothing when there is room,
 * and an overflow refused with the array left as it was. */
static void test_grow(void **state)
{
    (void)state;
    int *items = NULL;
    size_t n = 0, alloc = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(OTR_GROW(items, n, alloc, 8), 0);
        items[n++] = i;
    }
    assert_int_equal(alloc, 128); /* 8, 16, 32, 64, 128 */
    int *before = items;
    assert_int_equal(otr_grow(&items, &alloc, 100, sizeof(*items), 8), 0);
    assert_ptr_equal(items, before); /* room already: nothing moved */
    assert_int_equal(otr_grow(&items, &alloc, SIZE_MAX / 2, sizeof(*items), 8), -1);
    assert_int_equal(alloc, 128);
    for (int i = 0; i < 100; i++)
        assert_int_equal(items[i], i);
    free(items);
}

/* A set of indexes: each added once, in the order added. */
static void test_index_add(void **state)
{
    (void)state;
    size_t *set = NULL, n = 0;
    size_t adds[] = {3, 1, 3, 7, 1, 0};
    for (size_t i = 0; i < sizeof(adds) / sizeof(adds[0]); i++)
        assert_int_equal(otr_index_add(&set, &n, adds[i]), 0);
    assert_int_equal(n, 4);
    assert_int_equal(set[0], 3);
    assert_int_equal(set[1], 1);
    assert_int_equal(set[2], 7);
    assert_int_equal(set[3], 0);
    free(set);
}

static void mark(size_t i, void *ctx)
{
    ((unsigned char *)ctx)[i]++;
}

/* Every index once, whether spread over threads or run on the caller's. */
static void test_parallel_for(void **state)
{
    (void)state;
    enum { N = 10007 };
    unsigned char *seen = calloc(N, 1);
    otr_parallel_for(N, 1, mark, seen);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    otr_parallel_for(N, N + 1, mark, seen); /* below min_n: the caller's thread alone */
    for (size_t i = 0; i < N; i++)
        assert_int_equal(seen[i], 2);
    otr_parallel_for(0, 1, mark, seen);
    free(seen);
    assert_true(otr_threads() >= 1 && otr_threads() <= OTR_MAX_THREADS);
}

static void test_time(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(otr_time_parse_iso8601("2026-12-06T01:02:03Z", &t), 0);
    char out[21];
    otr_time_format_iso8601(out, (time_t)t);
    assert_string_equal(out, "2026-12-06T01:02:03Z");
    int64_t z;
    assert_int_equal(otr_time_parse_iso8601("2026-12-06T03:02:03+02:00", &z), 0);
    assert_int_equal(z, t); /* a zone is read, not dropped */
    assert_int_equal(otr_time_parse_iso8601("2026-13-06T01:02:03Z", &t), -1);
    assert_int_equal(otr_time_parse_iso8601("tomorrow", &t), -1);
    assert_int_equal(otr_time_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(otr_time_days_from_civil(2000, 3, 1), 11017);
    int64_t s;
    assert_int_equal(otr_time_parse_duration("1h30m", &s), 0);
    assert_int_equal(s, 5400);
    assert_int_equal(otr_time_parse_duration("1d12h", &s), 0);
    assert_int_equal(s, 129600);
    assert_int_equal(otr_time_parse_duration("30m1h", &s), -1); /* units in order */
    assert_int_equal(otr_time_parse_duration("400d", &s), -1);  /* past a year */
    assert_int_equal(otr_time_parse_duration("", &s), -1);
    char d[32];
    otr_time_format_duration(d, 5400);
    assert_string_equal(d, "1h30m");
    otr_time_format_duration(d, 0);
    assert_string_equal(d, "0s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_sticky_and_capped),
        cmocka_unit_test(test_json_integers),
        cmocka_unit_test(test_json_member_at),
        cmocka_unit_test(test_json_each_element),
        cmocka_unit_test(test_buf_numbers_and_padding),
        cmocka_unit_test(test_grow),
        cmocka_unit_test(test_index_add),
        cmocka_unit_test(test_parallel_for),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
