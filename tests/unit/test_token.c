/*
 * Canonical body and ClientToken: known answers computed by an independent
 * Python implementation (tests/tools/tokens.py), invariance under YAML style,
 * and a new token after any change of spec, name or revision.
 */
#include "kinds/manifest.h"
#include "manifest/token.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    otr_buf b = OTR_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        otr_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return otr_buf_detach(&b);
}

/* Adds one file (path relative to the source tree) to a set. */
static void add(otr_manifest_set *set, size_t order, const char *rel, otr_diags *d)
{
    char path[512];
    size_t len;
    otr_error err = OTR_ERROR_INIT;
    snprintf(path, sizeof(path), "%s/../../%s", OTR_TEST_DATA, rel);
    char *data = read_file(path, &len);
    assert_int_equal(otr_manifest_add_file(set, order, rel, data, len, d, &err), 0);
    free(data);
}

/* Loads a file, and those it is read with (NULL-ended, or NULL), into a
 * fresh set. */
static void load_with(otr_manifest_set *set, const char *rel, const char *const *with)
{
    otr_diags d = OTR_DIAGS_INIT;
    memset(set, 0, sizeof(*set));
    add(set, 0, rel, &d);
    for (size_t i = 0; with && with[i]; i++)
        add(set, i + 1, with[i], &d);
    assert_int_equal(otr_manifest_set_finish(set, &d), 0);
    if (d.errors) {
        otr_buf out = OTR_BUF_INIT;
        otr_diag_format(&d.items[0], &out);
        fail_msg("%s: %s", rel, out.ptr);
    }
    otr_diags_free(&d);
}

static void load(otr_manifest_set *set, const char *rel)
{
    load_with(set, rel, NULL);
}

static const otr_manifest *find(const otr_manifest_set *set, const char *name)
{
    for (size_t i = 0; i < set->count; i++)
        if (!strcmp(set->items[i]->name, name))
            return set->items[i];
    fail_msg("no manifest %s", name);
    return NULL;
}

static void test_known_answers_from_python(void **state)
{
    (void)state;
    size_t len;
    char *text = read_file(OTR_TEST_DATA "/tokens/vectors.json", &len);
    cJSON *vectors = cJSON_Parse(text);
    assert_non_null(vectors);
    assert_true(cJSON_GetArraySize(vectors) >= 23);
    const cJSON *v;
    cJSON_ArrayForEach(v, vectors)
    {
        const char *file = cJSON_GetObjectItem(v, "file")->valuestring;
        const char *name = cJSON_GetObjectItem(v, "name")->valuestring;
        const char *with[16] = {NULL};
        size_t n = 0;
        const cJSON *w;
        cJSON_ArrayForEach(w, cJSON_GetObjectItem(v, "with")) if (n < 15) with[n++] =
            w->valuestring;
        otr_manifest_set set;
        load_with(&set, file, with);
        const otr_manifest *m = find(&set, name);
        if (strcmp(m->client_token, cJSON_GetObjectItem(v, "clientToken")->valuestring) != 0)
            fail_msg("%s %s: token %s, Python says %s (canonical %s)", file, name, m->client_token,
                     cJSON_GetObjectItem(v, "clientToken")->valuestring, m->spec_json);
        assert_string_equal(m->spec_digest, cJSON_GetObjectItem(v, "specDigest")->valuestring);
        otr_manifest_set_free(&set);
    }
    cJSON_Delete(vectors);
    free(text);
}

static void test_same_token_in_every_style(void **state)
{
    (void)state;
    static const char *const styles[] = {
        "tests/data/tokens/styles/block.yaml",
        "tests/data/tokens/styles/flow.yaml",
        "tests/data/tokens/styles/reordered-quoted-commented.yaml",
        "tests/data/tokens/styles/anchors-folded.yaml",
        "tests/data/tokens/styles/multi-doc.yaml",
        "tests/data/tokens/styles/crlf-bom.yaml",
    };
    char first[44] = "";
    for (size_t i = 0; i < sizeof(styles) / sizeof(styles[0]); i++) {
        otr_manifest_set set;
        load(&set, styles[i]);
        const otr_manifest *m = find(&set, "style-check");
        if (!first[0])
            memcpy(first, m->client_token, sizeof(first));
        else if (strcmp(first, m->client_token) != 0)
            fail_msg("%s gives %s, block style gives %s", styles[i], m->client_token, first);
        otr_manifest_set_free(&set);
    }
}

static char *token_of(const char *yaml)
{
    otr_manifest_set set = OTR_MANIFEST_SET_INIT;
    otr_diags d = OTR_DIAGS_INIT;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_manifest_add_file(&set, 0, "m.yaml", yaml, strlen(yaml), &d, &err), 0);
    assert_int_equal(d.errors, 0);
    assert_int_equal(set.count, 1);
    char *t = strdup(set.items[0]->client_token);
    otr_manifest_set_free(&set);
    otr_diags_free(&d);
    return t;
}

#define M(name, rev, spec)                                                                         \
    "apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: " name rev "}\nspec: " spec "\n"

static void test_any_change_gives_a_new_token(void **state)
{
    (void)state;
    static const char *const variants[] = {
        M("a", "", "{S3Url: s3://b/k, OtaType: ONE_TIME}"),
        M("b", "", "{S3Url: s3://b/k, OtaType: ONE_TIME}"),              /* name */
        M("a", ", revision: 2", "{S3Url: s3://b/k, OtaType: ONE_TIME}"), /* revision */
        M("a", "", "{S3Url: s3://b/k2, OtaType: ONE_TIME}"),             /* a value */
        M("a", "", "{S3Url: s3://b/k, OtaType: CONTINUOUS}"),
        M("a", "", "{S3Url: s3://b/k, OtaType: ONE_TIME, Description: x}"), /* a field */
        M("a", "", "{S3Url: s3://b/k, OtaType: ONE_TIME, Target: []}"),     /* empty list */
        M("a", "", "{S3Url: s3://b/k, OtaType: ONE_TIME, Target: [x]}"),
        M("a", "", "{S3Url: s3://b/k, OtaType: ONE_TIME, Target: [x, y]}"),
        M("a", "", "{S3Url: s3://b/k, OtaType: ONE_TIME, Target: [y, x]}"), /* list order */
        M("a", "", "{S3Url: 's3://b/k ', OtaType: ONE_TIME}"),              /* whitespace */
    };
    size_t n = sizeof(variants) / sizeof(variants[0]);
    char *tokens[16];
    for (size_t i = 0; i < n; i++)
        tokens[i] = token_of(variants[i]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (!strcmp(tokens[i], tokens[j]))
                fail_msg("variants %zu and %zu share token %s", i, j, tokens[i]);
    /* revision 1 written out is the default */
    char *explicit1 = token_of(M("a", ", revision: 1", "{S3Url: s3://b/k, OtaType: ONE_TIME}"));
    assert_string_equal(explicit1, tokens[0]);
    free(explicit1);
    /* labels are not part of the request, so not of the token */
    char *labelled = token_of(M("a", ", labels: {x: y}", "{S3Url: s3://b/k, OtaType: ONE_TIME}"));
    assert_string_equal(labelled, tokens[0]);
    free(labelled);
    for (size_t i = 0; i < n; i++)
        free(tokens[i]);
}

static void test_canonical_form(void **state)
{
    (void)state;
    cJSON *v = cJSON_Parse("{\"b\": [3, {\"z\": 1, \"a\": \"x\\u0001\\n\\\"\\\\/\\u00e9\"}],"
                           " \"a\": 1430, \"B\": {}, \"\\u00e9\": true}");
    assert_non_null(v);
    char *c = otr_canonical_json(v);
    assert_string_equal(c, "{\"B\":{},\"a\":1430,\"b\":[3,{\"a\":\"x\\u0001\\n\\\"\\\\/\xc3\xa9\","
                           "\"z\":1}],\"\xc3\xa9\":true}");
    free(c);
    cJSON_Delete(v);
}

/* RFC 8785 section 3.2.2.3 (ECMAScript's Number::toString): the one way
 * numbers are written, whatever YAML spelled; cases from the RFC's appendix
 * and its edges. */
static void test_numbers_as_rfc8785(void **state)
{
    (void)state;
    static const struct {
        double x;
        const char *want;
    } cases[] = {
        {0, "0"},
        {-0.0, "0"},
        {10, "10"},
        {1e1, "10"},
        {2.5, "2.5"},
        {0.1, "0.1"},
        {1.1, "1.1"},
        {100, "100"},
        {-0.5, "-0.5"},
        {1e21, "1e+21"},
        {1e20, "100000000000000000000"},
        {123456789012345680000.0, "123456789012345680000"},
        {1e-6, "0.000001"},
        {1e-7, "1e-7"},
        {4.5e-7, "4.5e-7"},
        {2147483647, "2147483647"},
        {9007199254740992.0, "9007199254740992"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {333333333.33333329, "333333333.3333333"},
        {1e23, "1e+23"},
        {0.000001234, "0.000001234"},
        {99.99999999999999, "99.99999999999999"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        otr_buf b = OTR_BUF_INIT;
        assert_int_equal(otr_canonical_number(&b, cases[i].x), 0);
        if (strcmp(b.ptr, cases[i].want) != 0)
            fail_msg("%.17g: got %s, want %s", cases[i].x, b.ptr, cases[i].want);
        otr_buf_free(&b);
    }
    otr_buf b = OTR_BUF_INIT;
    assert_int_equal(otr_canonical_number(&b, 1.0 / 0.0), -1); /* not finite: refused */
    otr_buf_free(&b);
}

/* The same configuration with its doubles written five ways: one digest;
 * and a task's token covers the configuration it refers to. */
static void test_doubles_and_references(void **state)
{
    (void)state;
    otr_manifest_set set;
    load(&set, "tests/data/tokens/doubles.yaml");
    static const char *const five[] = {"doubles-plain", "doubles-trailing-zeros",
                                       "doubles-exponent", "doubles-big-e", "doubles-signed"};
    for (size_t i = 1; i < 5; i++)
        assert_string_equal(find(&set, five[i])->spec_digest, find(&set, five[0])->spec_digest);
    const char *canonical = find(&set, "doubles-care")->spec_json;
    assert_non_null(strstr(canonical, "\"ThresholdPercentage\":0.1}"));
    assert_non_null(strstr(canonical, "\"ThresholdPercentage\":0.000001}"));
    assert_non_null(strstr(canonical, "\"ThresholdPercentage\":0}"));
    assert_non_null(strstr(canonical, "\"IncrementFactor\":1.1"));
    /* the task keeps the reference by name in its spec ... */
    const otr_manifest *user = find(&set, "doubles-user");
    cJSON *pre = otr_manifest_spec(user);
    assert_string_equal(cJSON_GetObjectItem(pre, "TaskConfigurationRef")->valuestring,
                        "doubles-exponent");
    /* ... and its token is over the configuration's token in its place */
    cJSON_ReplaceItemInObject(pre, "TaskConfigurationRef",
                              cJSON_CreateString(find(&set, "doubles-exponent")->client_token));
    char *text = otr_canonical_json(pre);
    char token[44];
    assert_int_equal(otr_client_token(token, "doubles-user", 1, text), 0);
    assert_string_equal(token, user->client_token);
    free(text);
    cJSON_Delete(pre);
    otr_manifest_set_free(&set);
}

/* A reference inside the spec (a rollout's task.TaskConfigurationRef) is
 * replaced in the spec's text: the token is the one the tree would give. */
static void test_nested_reference_token(void **state)
{
    (void)state;
    otr_manifest_set set;
    static const char *const with[] = {"manifests/configurations/staged-push.yaml", NULL};
    load_with(&set, "manifests/rollouts/thermostat-2-5-0.yaml", with);
    const otr_manifest *r = find(&set, "thermostat-2-5-0");
    cJSON *tree = otr_manifest_spec(r);
    cJSON *task = cJSON_GetObjectItem(tree, "task");
    assert_string_equal(cJSON_GetObjectItem(task, "TaskConfigurationRef")->valuestring,
                        "staged-push");
    cJSON_ReplaceItemInObject(task, "TaskConfigurationRef",
                              cJSON_CreateString(find(&set, "staged-push")->client_token));
    char *text = otr_canonical_json(tree);
    char token[44], digest[72];
    assert_int_equal(otr_client_token(token, r->name, r->revision, text), 0);
    assert_int_equal(otr_spec_digest(digest, text), 0);
    assert_string_equal(token, r->client_token);
    assert_string_equal(digest, r->spec_digest);
    free(text);
    cJSON_Delete(tree);
    otr_manifest_set_free(&set);
}

static void test_token_shape_and_preimage(void **state)
{
    (void)state;
    char t[44];
    /* base64url(SHA-256("ota-runner/v1\0n\01\0{}")), computed with:
     * printf 'ota-runner/v1\0n\0\061\0{}' | openssl dgst -sha256 -binary | basenc --base64url */
    assert_int_equal(otr_client_token(t, "n", 1, "{}"), 0);
    assert_string_equal(t, "buk_ncuSZvD65FqM7ZwZQdmq1NS0ik-DxK5_P_LsIIE");
    assert_int_equal(strlen(t), 43);
    assert_int_equal(strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     43);

    char b64[16];
    otr_base64url(b64, (const unsigned char *)"\xfb\xff", 2);
    assert_string_equal(b64, "-_8");
    otr_base64url(b64, (const unsigned char *)"foob", 4);
    assert_string_equal(b64, "Zm9vYg");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers_from_python),
        cmocka_unit_test(test_same_token_in_every_style),
        cmocka_unit_test(test_any_change_gives_a_new_token),
        cmocka_unit_test(test_canonical_form),
        cmocka_unit_test(test_token_shape_and_preimage),
        cmocka_unit_test(test_numbers_as_rfc8785),
        cmocka_unit_test(test_doubles_and_references),
        cmocka_unit_test(test_nested_reference_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
