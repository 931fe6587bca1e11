/*
 * The state file: a new state, the snapshot (sorted, serial, .bak), the
 * journal (replay, an unsettled intent, a torn last line, a damaged line, a
 * foreign or stale journal), the lock, and files that are refused untouched.
 */
/* a RAND method that fails, to show a state never falls back to guessable
 * randomness (the API is deprecated in OpenSSL 3, and still honoured) */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "helpers.h"
#include "manifest/token.h"
#include "state/internal.h"
#include "state/state.h"
#include "util/buf.h"
#include "util/file.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *path_in(const char *dir, const char *name)
{
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s/%s", dir, name);
    return otr_buf_detach(&b);
}

/* A scratch folder and the state file's path in it: made before each test
 * that takes it, removed after (setup and teardown in main). */
typedef struct scratch {
    char *dir, *path;
} scratch;

static int scratch_setup(void **state)
{
    scratch *sc = calloc(1, sizeof(*sc));
    if (!sc || !(sc->dir = otr_test_mkdtemp()) || !(sc->path = path_in(sc->dir, "s.json")))
        return -1;
    *state = sc;
    return 0;
}

static int scratch_teardown(void **state)
{
    scratch *sc = *state;
    otr_test_rmdir(sc->dir);
    free(sc->path);
    free(sc->dir);
    free(sc);
    return 0;
}

static void make_record(otr_record *r, const char *name, const char *task_id)
{
    memset(r, 0, sizeof(*r));
    r->kind = &otr_kind_ota_task;
    r->name = strdup(name);
    r->phase = strdup("created");
    r->client_token = strdup("tok");
    r->revision = 1;
    r->spec_json = strdup("{\"OtaType\":\"ONE_TIME\",\"S3Url\":\"s3://b/k\"}");
    r->spec_digest = strdup("sha256:00");
    r->id = task_id ? strdup(task_id) : NULL;
}

/* An intent of op for rec (borrowed: the intent is not cleared). */
static otr_intent intent_of(otr_op op, const otr_record *rec)
{
    otr_intent in;
    memset(&in, 0, sizeof(in));
    in.op = op;
    in.rec = *rec;
    return in;
}

static int intend(otr_state *s, otr_op op, const otr_record *rec, otr_error *err)
{
    otr_intent in = intent_of(op, rec);
    return otr_state_journal_intent(s, &in, err);
}

static int result(otr_state *s, otr_op op, const otr_record *rec, int ok, const char *error,
                  otr_error *err)
{
    otr_intent in = intent_of(op, rec);
    return otr_state_journal_result(s, &in, rec, ok, 0, error, err);
}

/* The place of a local state file (one at a time: the tests are serial). */
static const otr_state_where *at(const char *path)
{
    static otr_state_where w = OTR_STATE_WHERE_INIT;
    w.location = path;
    return &w;
}

static otr_state *load_ok(const char *path)
{
    otr_state *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    if (otr_state_load(&s, at(path), &err) < 0)
        fail_msg("load: %s", otr_error_message(&err));
    return s;
}

static char *load_error(const char *path)
{
    otr_state *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_state_load(&s, at(path), &err), -1);
    char *m = strdup(otr_error_message(&err));
    otr_error_clear(&err);
    return m;
}

static int no_bytes(unsigned char *buf, int num)
{
    (void)buf;
    (void)num;
    return 0;
}

static int no_status(void)
{
    return 0;
}

/* Without random bytes there is no new state: its lineage must never be
 * guessable (it was rand(), unseeded: the same in every run). */
static void test_no_random_no_state(void **state)
{
    scratch *sc = *state;
    static RAND_METHOD failing = {NULL, no_bytes, NULL, NULL, no_bytes, no_status};
    const RAND_METHOD *was = RAND_get_rand_method();
    assert_int_equal(RAND_set_rand_method(&failing), 1);
    char *m = load_error(sc->path);
    RAND_set_rand_method(was);
    assert_non_null(strstr(m, "no random bytes"));
    free(m);
    otr_state *s = load_ok(sc->path); /* and with them, a state */
    assert_int_equal(strlen(s->lineage), 36);
    otr_state_free(s);
}

static void test_new_state_and_snapshots(void **state)
{
    const scratch *sc = *state;
    const char *dir = sc->dir, *path = sc->path;
    otr_state *s = load_ok(path);
    assert_int_equal(s->serial, 0);
    assert_int_equal(strlen(s->lineage), 36);
    assert_int_equal(s->lineage[14], '4'); /* a version 4 UUID */
    char lineage[40];
    strcpy(lineage, s->lineage);
    otr_record r;
    make_record(&r, "zeta", "T2");
    assert_int_equal(otr_state_put(s, &r), 0);
    otr_record_clear(&r);
    make_record(&r, "alpha", "T1");
    assert_int_equal(otr_state_put(s, &r), 0);
    otr_record_clear(&r);
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_state_save(s, NULL, NULL, &err), 0);
    otr_state_free(s);

    char *text = otr_test_slurp(path);
    assert_non_null(strstr(text, "\"format\":\t\"ota-runner-state\""));
    assert_non_null(strstr(text, "\"serial\":\t1"));
    assert_true(strstr(text, "\"alpha\"") < strstr(text, "\"zeta\"")); /* sorted */
    assert_true(strstr(text, "\"format\"") < strstr(text, "\"lineage\""));
    free(text);

    s = load_ok(path);
    assert_string_equal(s->lineage, lineage);
    assert_int_equal(s->count, 2);
    assert_string_equal(otr_state_find(s, &otr_kind_ota_task, "alpha")->id, "T1");
    assert_null(otr_state_find(s, &otr_kind_ota_task, "beta"));
    assert_int_equal(otr_state_remove(s, &otr_kind_ota_task, "zeta"), 0);
    assert_int_equal(otr_state_save(s, NULL, NULL, &err), 0);
    otr_state_free(s);
    char *bak = path_in(dir, "s.json.bak");
    text = otr_test_slurp(bak);
    assert_non_null(strstr(text, "\"serial\":\t1") && strstr(text, "zeta")); /* the previous one */
    free(text);
    s = load_ok(path);
    assert_int_equal(s->serial, 2);
    assert_int_equal(s->count, 1);
    otr_state_free(s);
    free(bak);
}

static void test_journal_replay(void **state)
{
    const scratch *sc = *state;
    const char *path = sc->path;
    char *jpath = path_in(sc->dir, "s.json.journal");
    otr_error err = OTR_ERROR_INIT;
    otr_state *s = load_ok(path);
    otr_record a, b, d;
    make_record(&a, "a", NULL);
    make_record(&b, "b", NULL);
    assert_int_equal(intend(s, OTR_OP_CREATE, &a, &err), 0);
    assert_int_equal(intend(s, OTR_OP_CREATE, &b, &err), 0);
    a.id = strdup("TA");
    assert_int_equal(result(s, OTR_OP_CREATE, &a, 1, NULL, &err), 0);
    assert_int_equal(s->npending, 1); /* b is in flight */
    otr_state_free(s);                /* "killed" here: no snapshot */

    /* the next run: no snapshot yet, the journal's lineage is adopted */
    s = load_ok(path);
    assert_int_equal(s->count, 1);
    assert_string_equal(otr_state_find(s, &otr_kind_ota_task, "a")->id, "TA");
    assert_int_equal(s->npending, 1);
    assert_string_equal(s->pending[0].rec.name, "b");
    assert_int_equal(s->pending[0].op, OTR_OP_CREATE);
    assert_int_equal(s->journal_entries, 3);
    /* finish b, delete a */
    b.id = strdup("TB");
    assert_int_equal(result(s, OTR_OP_CREATE, &b, 1, NULL, &err), 0);
    make_record(&d, "a", "TA");
    assert_int_equal(intend(s, OTR_OP_DELETE, &d, &err), 0);
    assert_int_equal(result(s, OTR_OP_DELETE, &d, 1, NULL, &err), 0);
    otr_state_free(s);
    s = load_ok(path);
    assert_int_equal(s->count, 1);
    assert_string_equal(s->records[0].name, "b");
    assert_int_equal(s->npending, 0);
    /* the snapshot takes the journal in, and the journal is emptied */
    assert_int_equal(otr_state_save(s, NULL, NULL, &err), 0);
    otr_state_free(s);
    char *j = otr_test_slurp(jpath);
    assert_string_equal(j, "");
    free(j);
    s = load_ok(path);
    assert_int_equal(s->count, 1);

    /* a failed call settles its intent and changes nothing */
    otr_record c;
    make_record(&c, "c", NULL);
    assert_int_equal(intend(s, OTR_OP_CREATE, &c, &err), 0);
    assert_int_equal(result(s, OTR_OP_CREATE, &c, 0, "HTTP 400", &err), 0);
    otr_state_free(s);
    s = load_ok(path);
    assert_int_equal(s->count, 1);
    assert_int_equal(s->npending, 0);
    otr_state_free(s);

    otr_record_clear(&a);
    otr_record_clear(&b);
    otr_record_clear(&c);
    otr_record_clear(&d);
    free(jpath);
}

/* A token whose resource is gone is spent: by a delete (also when it is
 * only in the journal), by a replace; the spent list survives a save; the
 * next create sends the token's next generation. */
static void test_spent_tokens(void **state)
{
    const scratch *sc = *state;
    const char *path = sc->path;
    otr_error err = OTR_ERROR_INIT;
    otr_state *s = load_ok(path);
    otr_record a, d;
    char sent[44], gen1[44];
    unsigned g = 99;
    make_record(&a, "a", "TA");
    assert_int_equal(otr_state_put(s, &a), 0);
    assert_int_equal(otr_state_holds_token(s, &otr_kind_ota_task, "a", "tok"), 1);
    assert_int_equal(otr_state_holds_token(s, &otr_kind_ota_task, "a", "other"), 0);
    /* a create that replaces it skips the generation the record holds */
    assert_int_equal(otr_state_send_token(s, "tok", 1, sent, &g), 0);
    assert_int_equal(g, 1);
    assert_int_equal(otr_token_generation(gen1, "tok", 1), 0);
    assert_string_equal(sent, gen1);
    assert_int_equal(otr_state_save(s, NULL, NULL, &err), 0);
    make_record(&d, "a", "TA");
    assert_int_equal(intend(s, OTR_OP_DELETE, &d, &err), 0);
    assert_int_equal(result(s, OTR_OP_DELETE, &d, 1, NULL, &err), 0);
    assert_int_equal(s->nspent, 1);
    otr_state_free(s); /* killed before the save: the journal has the delete */
    s = load_ok(path);
    assert_int_equal(s->count, 0);
    assert_int_equal(s->nspent, 1);
    assert_string_equal(s->spent[0], "tok");
    assert_int_equal(otr_state_send_token(s, "tok", 0, sent, &g), 0);
    assert_int_equal(g, 1);
    /* a replace (a new id for the name) spends the token the old one had */
    free(a.client_token);
    a.client_token = strdup(gen1); /* any token: the manifest's, here another */
    assert_int_equal(otr_state_put(s, &a), 0);
    free(a.id);
    a.id = strdup("TA2");
    assert_int_equal(otr_state_put(s, &a), 0);
    assert_int_equal(s->nspent, 2);
    assert_int_equal(otr_state_save(s, NULL, NULL, &err), 0);
    otr_state_free(s);
    char *text = otr_test_slurp(path);
    assert_non_null(strstr(text, "\"spentTokens\""));
    free(text);
    s = load_ok(path);
    assert_int_equal(s->nspent, 2);
    assert_int_equal(otr_state_send_token(s, "tok", 0, sent, &g), 0);
    assert_int_equal(g, 2); /* gen1 is spent too */
    /* a resource adopted at generation 3 spends 0 to 2 */
    assert_int_equal(otr_state_adopted_generation(s, &otr_kind_ota_task, "a", "TA2", 3), 0);
    assert_int_equal(otr_state_send_token(s, gen1, 0, sent, &g), 0);
    assert_int_equal(g, 3);
    otr_state_free(s);
    otr_record_clear(&a);
    otr_record_clear(&d);
}

/* A spent-token list that is not one is refused, the file left alone. */
static void test_spent_tokens_refused(void **state)
{
    const scratch *sc = *state;
    const char *bad[] = {"\"spentTokens\": \"tok\"", "\"spentTokens\": [1]",
                         "\"spentTokens\": [\"a b\"]", "\"spentTokens\": [\"\"]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        FILE *f = fopen(sc->path, "w");
        assert_non_null(f);
        fprintf(f,
                "{\"format\": \"ota-runner-state\", \"version\": 2, \"lineage\": "
                "\"0b1e4a1c-3b7e-4c2a-9a51-6a1f3c2d4e5f\", \"serial\": 1, \"tasks\": {}, %s}",
                bad[i]);
        fclose(f);
        char *m = load_error(sc->path);
        assert_non_null(strstr(m, "spent"));
        free(m);
    }
    unlink(sc->path);
}

static void append(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");
    fputs(text, f);
    fclose(f);
}

static void test_journal_damage(void **state)
{
    const scratch *sc = *state;
    const char *path = sc->path;
    char *jpath = path_in(sc->dir, "s.json.journal");
    otr_error err = OTR_ERROR_INIT;
    otr_state *s = load_ok(path);
    assert_int_equal(otr_state_save(s, NULL, NULL, &err), 0);
    otr_record a;
    make_record(&a, "a", NULL);
    assert_int_equal(intend(s, OTR_OP_CREATE, &a, &err), 0);
    char lineage[40];
    strcpy(lineage, s->lineage);
    otr_state_free(s);

    /* a torn last line (the run died writing it) is ignored */
    append(jpath, "{\"type\":\"result\",\"op\":\"cre");
    s = load_ok(path);
    assert_int_equal(s->npending, 1);
    otr_state_free(s);

    /* a damaged line in the middle is not: refused, the files left as they are */
    append(jpath, "\n{\"type\":\"result\"}\n");
    char *before = otr_test_slurp(jpath);
    char *msg = load_error(path);
    assert_non_null(strstr(msg, "line 2 is damaged; it was left as it is"));
    free(msg);
    char *after = otr_test_slurp(jpath);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* a journal of another state */
    FILE *f = fopen(jpath, "w");
    fprintf(
        f, "{\"lineage\":\"00000000-0000-4000-8000-000000000000\",\"name\":\"a\",\"op\":\"create\","
           "\"record\":{\"phase\":\"created\",\"spec\":{},\"specDigest\":\"x\"},\"seq\":1,"
           "\"serial\":1,\"type\":\"intent\"}\n");
    fclose(f);
    msg = load_error(path);
    assert_non_null(strstr(msg, "belongs to another state"));
    free(msg);

    /* a journal older than the snapshot (saved, then the run died before
     * emptying it) is already in the snapshot: ignored */
    f = fopen(jpath, "w");
    fprintf(f,
            "{\"lineage\":\"%s\",\"name\":\"old\",\"op\":\"create\",\"record\":{\"phase\":"
            "\"created\",\"spec\":{},\"specDigest\":\"x\"},\"seq\":1,\"serial\":0,\"type\":"
            "\"intent\"}\n",
            lineage);
    fclose(f);
    s = load_ok(path);
    assert_int_equal(s->npending, 0);
    otr_state_free(s);
    otr_record_clear(&a);
    free(jpath);
}

/* Found by fuzz_journal: numbers that are not integers (a missing seq, a
 * serial of 1e300) were cast to long: undefined behaviour. */
static void test_journal_numbers_that_are_not_integers(void **state)
{
    (void)state;
    static const char snapshot[] =
        "{\"format\":\"ota-runner-state\",\"version\":1,\"lineage\":"
        "\"123e4567-e89b-42d3-a456-426614174000\",\"serial\":3,\"tasks\":{}}";
    static const char *const journals[] = {
        "{\"lineage\":\"123e4567-e89b-42d3-a456-426614174000\",\"serial\":3,\"type\":\"result\","
        "\"op\":\"create\",\"name\":\"a\",\"ok\":true}\n",
        "{\"lineage\":\"123e4567-e89b-42d3-a456-426614174000\",\"serial\":1e300,\"seq\":1e300,"
        "\"type\":\"result\",\"op\":\"create\",\"name\":\"a\"}\n",
        "{\"lineage\":\"123e4567-e89b-42d3-a456-426614174000\",\"serial\":-1e300,\"seq\":-5,"
        "\"type\":\"result\",\"op\":\"create\",\"name\":\"a\"}\n",
    };
    for (size_t i = 0; i < sizeof(journals) / sizeof(journals[0]); i++) {
        otr_state *s = NULL;
        otr_error err = OTR_ERROR_INIT;
        int rc = otr_state_from_text(&s, "s.json", snapshot, strlen(snapshot), journals[i],
                                     strlen(journals[i]), &err);
        if (rc == 0)
            assert_int_equal(s->count, 0);
        else
            assert_non_null(strstr(otr_error_message(&err), "journal"));
        otr_error_clear(&err);
        otr_state_free(s);
    }
    static const char big_serial[] =
        "{\"format\":\"ota-runner-state\",\"version\":1,\"lineage\":"
        "\"123e4567-e89b-42d3-a456-426614174000\",\"serial\":1e300,\"tasks\":{}}";
    otr_state *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(
        otr_state_from_text(&s, "s.json", big_serial, strlen(big_serial), NULL, 0, &err), -1);
    assert_non_null(strstr(otr_error_message(&err), "has no valid serial"));
    otr_error_clear(&err);
}

static void test_refused_files(void **state)
{
    const scratch *sc = *state;
    const char *path = sc->path;
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"{\"format\":\"ota-runner-state\",\"version\":3,\"lineage\":\"x\",\"serial\":1,\"tasks\":{"
         "}}",
         "has version 3, and this ota-runner reads versions 1 to 2 (written by a newer "
         "ota-runner: upgrade)"},
        {"{\"format\":\"ota-runner-state\",\"version\":1,\"lineage\":\"123e4567-e89b-42d3-a456-"
         "426614174000\",\"ser",
         "is not valid JSON"},
        {"[1,2,3]", "is not an ota-runner state file"},
        {"", "is not valid JSON (at byte 0 of 0"},
        {"{\"format\":\"ota-runner-state\",\"version\":1,\"lineage\":\"123e4567-e89b-42d3-a456-"
         "426614174000\","
         "\"serial\":1,\"tasks\":{\"a\":{\"phase\":\"created\",\"specDigest\":\"x\",\"taskId\":"
         "\"T\"}}}",
         "has a bad record: tasks.a.spec is missing or not an object"},
        {"{\"format\":\"ota-runner-state\",\"version\":1,\"lineage\":\"short\",\"serial\":1,"
         "\"tasks\":{}}",
         "has no valid lineage"},
        /* an unknown phase, a name no manifest can have */
        {"{\"format\":\"ota-runner-state\",\"version\":1,\"lineage\":\"123e4567-e89b-42d3-a456-"
         "426614174000\",\"serial\":1,\"tasks\":{\"a\":{\"phase\":\"creatd\",\"specDigest\":"
         "\"x\",\"taskId\":\"T\",\"spec\":{}}}}",
         "has a bad record: tasks.a.phase is \"creatd\", not \"created\" or \"imported\""},
        {"{\"format\":\"ota-runner-state\",\"version\":1,\"lineage\":\"123e4567-e89b-42d3-a456-"
         "426614174000\",\"serial\":1,\"tasks\":{\"Bad_Name\":{\"phase\":\"created\","
         "\"specDigest\":\"x\",\"taskId\":\"T\",\"spec\":{}}}}",
         "has a bad record: tasks.\"Bad_Name\" is not a manifest name"},
        /* read a record at a time: damage inside one is still found, and where */
        {"{\"format\":\"ota-runner-state\",\"version\":1,\"lineage\":\"123e4567-e89b-42d3-a456-"
         "426614174000\",\"serial\":1,\"tasks\":{\"a\":{\"phase\":created}}}",
         "is not valid JSON (at byte 123 of 133"},
        {"{\"format\":\"ota-runner-state\",\"version\":1,\"lineage\":\"123e4567-e89b-42d3-a456-"
         "426614174000\",\"serial\":1,\"tasks\":{\"a\":{\"phase\":\"cre",
         "is not valid JSON (at byte 124 of 127"},
        {"{\"format\":\"ota-runner-state\",\"version\":1,\"lineage\":\"123e4567-e89b-42d3-a456-"
         "426614174000\",\"serial\":1,\"tasks\":{}} {}",
         "is not valid JSON (at byte 113 of 115"},
        {"{\"format\":\"ota-runner-state\",\"version\":1,\"lineage\":\"123e4567-e89b-42d3-a456-"
         "426614174000\",\"serial\":1,\"tasks\":[]}",
         "has no \"tasks\" object"},
        {"{\"format\":\"ota-runner-state\",\"version\":2,\"lineage\":\"123e4567-e89b-42d3-a456-"
         "426614174000\",\"serial\":1,\"tasks\":{},\"configurations\":[1]}",
         "has a \"configurations\" that is not an object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        FILE *f = fopen(path, "wb");
        fputs(cases[i].text, f);
        fclose(f);
        char *msg = load_error(path);
        if (!strstr(msg, cases[i].why) || !strstr(msg, "it was left as it is"))
            fail_msg("case %zu: %s", i, msg);
        free(msg);
        char *after = otr_test_slurp(path);
        assert_string_equal(after, cases[i].text);
        free(after);
    }
}

/* The snapshot is read one record at a time, not as one tree: strings that
 * hold brackets and escaped quotes, whitespace anywhere, a name given twice
 * (the last one counts, as before) and a kind's records given twice (the
 * first counts) all read as a tree would. */
static void test_snapshot_read_by_record(void **state)
{
    (void)state;
    const char *text =
        " \n{ \"tasks\" : { \"a\" : {\"phase\":\"created\",\"specDigest\":\"x\",\"taskId\":\"T1\","
        "\"spec\":{\"Description\":\"} ] \\\" { [ \\\\\",\"OtaType\":\"ONE_TIME\"}},\n"
        "\"b\":{\"phase\":\"created\",\"specDigest\":\"x\",\"taskId\":\"T2\",\"spec\":{}},"
        "\"b\":{\"phase\":\"created\",\"specDigest\":\"y\",\"taskId\":\"T3\",\"spec\":{\"N\":1e1}}"
        "} , \"format\":\"ota-runner-state\",\"version\":1,\"serial\":4,"
        "\"lineage\":\"123e4567-e89b-42d3-a456-426614174000\", \"tasks\":{\"z\":7} }\n\n";
    otr_state *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_state_from_text(&s, "s.json", text, strlen(text), NULL, 0, &err), 0);
    assert_int_equal(s->count, 2);
    assert_int_equal(s->serial, 4);
    const otr_record *a = otr_state_find(s, &otr_kind_ota_task, "a");
    assert_string_equal(a->spec_json,
                        "{\"Description\":\"} ] \\\" { [ \\\\\",\"OtaType\":\"ONE_TIME\"}");
    char *d = otr_record_spec_string(a, "Description");
    assert_string_equal(d, "} ] \" { [ \\");
    free(d);
    const otr_record *b = otr_state_find(s, &otr_kind_ota_task, "b");
    assert_string_equal(b->id, "T3");
    assert_string_equal(b->spec_json, "{\"N\":10}");
    otr_state_free(s);
}

/* A state of many megabytes: the pages walked are given back as the walk
 * goes (state.c, release_behind), and every record still reads whole, the
 * last as the first; damage after the pages given back is still found,
 * and where. */
static void test_big_snapshot_read_by_record(void **state)
{
    const scratch *sc = *state;
    const char *path = sc->path;
    otr_error err = OTR_ERROR_INIT;
    otr_state *s = load_ok(path);
    char name[32], id[32], description[600];
    memset(description, 'd', sizeof(description) - 1);
    description[sizeof(description) - 1] = '\0';
    for (int i = 0; i < 8000; i++) { /* about 8 MB */
        otr_record r;
        snprintf(name, sizeof(name), "task-%05d", i);
        snprintf(id, sizeof(id), "T%05d", i);
        make_record(&r, name, id);
        description[0] = (char)('a' + i % 26);
        cJSON *spec = cJSON_CreateObject();
        cJSON_AddStringToObject(spec, "Description", description);
        cJSON_AddStringToObject(spec, "OtaType", "ONE_TIME");
        assert_int_equal(otr_record_set_spec(&r, spec), 0);
        cJSON_Delete(spec);
        assert_int_equal(otr_state_put_move(s, &r), 0);
    }
    assert_int_equal(otr_state_save(s, NULL, NULL, &err), 0);
    otr_state_free(s);
    s = load_ok(path);
    assert_int_equal(s->count, 8000);
    for (int i = 0; i < 8000; i += 7999) {
        snprintf(name, sizeof(name), "task-%05d", i);
        const otr_record *r = otr_state_find(s, &otr_kind_ota_task, name);
        char *d = otr_record_spec_string(r, "Description");
        assert_int_equal(strlen(d), sizeof(description) - 1);
        assert_int_equal(d[0], 'a' + i % 26);
        assert_int_equal(d[1], 'd');
        free(d);
    }
    otr_state_free(s);
    /* the last record damaged: found past the pages given back */
    char *text = otr_test_slurp(path);
    char *last = strstr(text, "\"task-07999\"");
    char *phase = strstr(last, "\"created\"");
    memcpy(phase, "12345678x", 9); /* the brackets still close: found by the record's parse */
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    char *msg = load_error(path);
    char want[64];
    snprintf(want, sizeof(want), "is not valid JSON (at byte %zu of %zu",
             (size_t)(phase - text) + 8, strlen(text));
    if (!strstr(msg, want))
        fail_msg("%s: no \"%s\"", msg, want);
    free(msg);
    free(text);
}

/* One task belongs to one name: two records of one task are refused on load
 * (naming both), but accepted for repair. */
static void test_one_task_one_name(void **state)
{
    const scratch *sc = *state;
    const char *path = sc->path;
    otr_error err = OTR_ERROR_INIT;
    otr_state *s = load_ok(path);
    otr_record r;
    make_record(&r, "camera", "T1");
    assert_int_equal(otr_state_put_move(s, &r), 0);
    make_record(&r, "hub", "T1");
    assert_int_equal(otr_state_put_move(s, &r), 0);
    assert_int_equal(otr_state_save(s, NULL, NULL, &err), 0);
    otr_state_free(s);
    char *before = otr_test_slurp(path);
    char *msg = load_error(path);
    assert_non_null(strstr(msg, "records task T1 under two names, camera and hub"));
    assert_non_null(strstr(msg, "was left as it is"));
    free(msg);
    char *after = otr_test_slurp(path);
    assert_string_equal(before, after);
    assert_int_equal(otr_state_open(&s, at(path), NULL, 1, &err), 0);
    assert_int_equal(s->count, 2);
    otr_state_free(s);
    free(before);
    free(after);
}

static void test_lock(void **state)
{
    const scratch *sc = *state;
    const char *path = sc->path;
    otr_error err = OTR_ERROR_INIT;
    otr_state *a = NULL, *b = NULL;
    otr_buf holder = OTR_BUF_INIT;
    assert_int_equal(otr_state_lock_holder(at(path), &holder), 0);
    assert_int_equal(otr_state_open(&a, at(path), "apply", 0, &err), 0);
    /* flock is per open file: a second open in the same process conflicts too */
    assert_int_equal(otr_state_open(&b, at(path), "plan", 0, &err), -1);
    assert_null(b);
    assert_int_equal(err.code, OTR_ERR_LOCKED);
    char want[64];
    snprintf(want, sizeof(want), "locked by another run: pid %d on ", (int)getpid());
    assert_non_null(strstr(otr_error_message(&err), want));
    assert_non_null(strstr(otr_error_message(&err), "(ota-runner apply)"));
    otr_error_clear(&err);
    /* the probe sees the holder, and takes nothing a run could trip over */
    assert_int_equal(otr_state_lock_holder(at(path), &holder), 1);
    assert_non_null(strstr(otr_buf_cstr(&holder), want + strlen("locked by another run: ")));
    otr_buf_free(&holder);
    /* a read without the lock works while it is held */
    b = load_ok(path);
    otr_state_free(b);
    otr_state_free(a); /* releases it */
    assert_int_equal(otr_state_lock_holder(at(path), &holder), 0);
    assert_int_equal(otr_state_open(&b, at(path), "plan", 0, &err), 0);
    otr_state_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_state_and_snapshots, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_journal_replay, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_journal_damage, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_spent_tokens, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_spent_tokens_refused, scratch_setup, scratch_teardown),
        cmocka_unit_test(test_journal_numbers_that_are_not_integers),
        cmocka_unit_test_setup_teardown(test_refused_files, scratch_setup, scratch_teardown),
        cmocka_unit_test(test_snapshot_read_by_record),
        cmocka_unit_test_setup_teardown(test_big_snapshot_read_by_record, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_one_task_one_name, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_lock, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_no_random_no_state, scratch_setup, scratch_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
