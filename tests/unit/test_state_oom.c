/*
 * Saving a state when memory runs out, as SQLite proves its own: malloc,
 * calloc and realloc are replaced in this program, and for every N the Nth
 * allocation of a save (of a 50-record state with a rollout and a retired
 * configuration) or of a journal line fails. Each time, either the whole
 * new snapshot was written, or none and an error says so: never a snapshot
 * with a record missing, and never a journal emptied by a save that did not
 * land. (Skipped under AddressSanitizer, which owns malloc.)
 */
#include "helpers.h"
#include "state/internal.h"
#include "state/state.h"
#include "util/buf.h"
#include "util/file.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define OOM_SHIM 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OOM_SHIM 0
#endif
#endif
#ifndef OOM_SHIM
#define OOM_SHIM 1
#endif

#define RECORDS 50

/* ---- the allocator -------------------------------------------------------------- */

static long fail_at;  /* the allocation to fail (1 = the first after arm), 0: none */
static long counted;  /* allocations since arm */
static int fail_rest; /* and every one after it */

#if OOM_SHIM
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static int fails(void)
{
    if (!fail_at)
        return 0;
    counted++;
    return counted == fail_at || (fail_rest && counted > fail_at);
}

void *malloc(size_t n)
{
    return fails() ? NULL : __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    return fails() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    return fails() ? NULL : __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}
#endif

static void arm(long n, int rest)
{
    counted = 0;
    fail_rest = rest;
    fail_at = n;
}

static void disarm(void)
{
    fail_at = 0;
}

/* ---- the state -------------------------------------------------------------------- */

static void put(otr_state *s, const otr_kind *k, const char *name, const char *id,
                const char *progress)
{
    otr_record r;
    memset(&r, 0, sizeof(r));
    r.kind = k;
    r.name = strdup(name);
    r.phase = strdup("created");
    r.client_token = strdup("tok");
    r.revision = 1;
    r.spec_json =
        strdup("{\"OtaType\":\"ONE_TIME\",\"S3Url\":\"s3://b/k\",\"Target\":[\"a\",\"b\"]}");
    r.spec_digest = strdup("sha256:00");
    r.id = strdup(id);
    r.file = strdup("manifests/x.yaml");
    r.remote_status = strdup("IN_PROGRESS");
    r.remote_checked_at = strdup("2026-12-01T00:00:00Z");
    r.progress = progress ? cJSON_Parse(progress) : NULL;
    assert_int_equal(otr_state_put_move(s, &r), 0);
    otr_record_clear(&r);
}

static otr_state *open_locked(const char *path)
{
    otr_state_where w = OTR_STATE_WHERE_INIT;
    otr_state *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    w.location = path;
    if (otr_state_open(&s, &w, "test", 0, &err) < 0)
        fail_msg("open: %s", otr_error_message(&err));
    return s;
}

/* A complete snapshot: it parses, at serial, with every record. */
static int whole(const char *text, long serial)
{
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    const cJSON *tasks = cJSON_GetObjectItem(j, "tasks");
    int ok = j && cJSON_GetObjectItem(j, "serial") &&
             cJSON_GetObjectItem(j, "serial")->valuedouble == (double)serial &&
             cJSON_GetArraySize(tasks) == RECORDS &&
             cJSON_GetArraySize(cJSON_GetObjectItem(j, "rollouts")) == 1 &&
             cJSON_GetArraySize(cJSON_GetObjectItem(j, "retired")) == 1;
    for (const cJSON *t = tasks ? tasks->child : NULL; ok && t; t = t->next)
        ok = cJSON_GetObjectItem(t, "taskId") && cJSON_GetObjectItem(t, "spec") &&
             cJSON_GetObjectItem(t, "remote");
    cJSON_Delete(j);
    return ok;
}

static void test_every_allocation_of_a_save(void **state)
{
    (void)state;
    if (!OOM_SHIM)
        skip();
    char *dir = otr_test_mkdtemp(), path[512];
    snprintf(path, sizeof(path), "%s/s.json", dir);
    otr_state *s = open_locked(path);
    for (int i = 0; i < RECORDS; i++) {
        char name[32], id[32];
        snprintf(name, sizeof(name), "task-%02d", i);
        snprintf(id, sizeof(id), "ota%06d", i);
        put(s, &otr_kind_ota_task, name, id, NULL);
    }
    put(s, &otr_kind_ota_rollout, "fw", "otaw2",
        "{\"taskDigest\":\"sha256:1\",\"waves\":[{\"name\":\"w1\",\"taskId\":\"otaw1\"},"
        "{\"name\":\"w2\",\"taskId\":\"otaw2\"}]}");
    assert_int_equal(
        otr_state_retire(s, &otr_kind_ota_task_configuration, "push", "cfgold", NULL, "in use"), 0);
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_state_save(s, NULL, NULL, &err), 0);
    long failures = 0, n;
    for (n = 1;; n++) {
        for (int rest = 0; rest < 2; rest++) {
            char *before = otr_test_slurp(path);
            long serial = s->serial;
            arm(n, rest);
            int rc = otr_state_save(s, NULL, NULL, &err);
            long reached = counted;
            disarm();
            char *after = otr_test_slurp(path);
            if (rc == 0) {
                if (!whole(after, serial + 1))
                    fail_msg("N=%ld: the save said yes, and wrote no whole snapshot", n);
            } else {
                failures++;
                if (!otr_error_message(&err)[0])
                    fail_msg("N=%ld: a failed save without a message", n);
                /* none written, or (a failure after it landed) the whole new one */
                if (strcmp(before, after) != 0 && !whole(after, serial + 1))
                    fail_msg("N=%ld%s: a failed save left a snapshot that is not whole", n,
                             rest ? " and on" : "");
                if (strcmp(before, after) == 0 && s->serial != serial)
                    fail_msg("N=%ld: the serial moved on for a save that was not written", n);
            }
            otr_error_clear(&err);
            free(before);
            free(after);
            if (reached < n && rest) /* the save needs fewer than n: every one was tried */
                goto done;
        }
    }
done:
    /* the state in memory is still whole: a save with memory writes it all */
    assert_int_equal(otr_state_save(s, NULL, NULL, &err), 0);
    char *last = otr_test_slurp(path);
    assert_true(whole(last, s->serial));
    free(last);
    assert_true(failures > 100); /* the loop did reach into the save */
    print_message("%ld allocations of a save failed in turn, %ld failures seen\n", n - 1, failures);
    otr_state_free(s);
    otr_test_rmdir(dir);
    free(dir);
}

/* A journal line is appended whole or not at all; a failed intent says so
 * (and apply sends nothing on it). */
static void test_every_allocation_of_a_journal_line(void **state)
{
    (void)state;
    if (!OOM_SHIM)
        skip();
    char *dir = otr_test_mkdtemp(), path[512], jpath[600];
    snprintf(path, sizeof(path), "%s/s.json", dir);
    snprintf(jpath, sizeof(jpath), "%s.journal", path);
    otr_state *s = open_locked(path);
    otr_error err = OTR_ERROR_INIT;
    put(s, &otr_kind_ota_task, "a", "ota1", NULL);
    otr_intent in;
    memset(&in, 0, sizeof(in));
    in.op = OTR_OP_UPDATE;
    assert_int_equal(otr_record_copy(&in.rec, otr_state_find(s, &otr_kind_ota_task, "a")), 0);
    long n;
    for (n = 1;; n++) {
        char *before = otr_test_slurp(jpath);
        size_t had = before ? strlen(before) : 0;
        arm(n, 0);
        int rc = otr_state_journal_intent(s, &in, &err);
        long reached = counted;
        disarm();
        char *after = otr_test_slurp(jpath);
        size_t now = after ? strlen(after) : 0;
        /* written, or not: a line whole, never a part (an intent journaled whose
         * call is not sent is what a kill leaves too: the next run resumes it) */
        if (rc == 0 || now != had) {
            cJSON *line = now > had ? cJSON_Parse(after + had) : NULL;
            if (!line || !cJSON_GetObjectItem(cJSON_GetObjectItem(line, "record"), "spec"))
                fail_msg("N=%ld: an appended journal line is not whole", n);
            cJSON_Delete(line);
        }
        otr_error_clear(&err);
        free(before);
        free(after);
        if (reached < n)
            break;
    }
    assert_true(n > 20);
    otr_intent_clear(&in);
    otr_state_free(s);
    otr_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_of_a_save),
        cmocka_unit_test(test_every_allocation_of_a_journal_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
