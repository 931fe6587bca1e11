/*
 * SigV4 against the AWS signing test suite (shared/testdata/sigv4): every
 * header-signing case, canonical request, string to sign and signature, byte
 * for byte. Skipped, with a message, where the folder is absent; one of
 * its cases is written here too, so a clone alone still checks the signer.
 */
#include "aws/sigv4.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SUITE OTR_SHARED_DIR "/testdata/sigv4"

static char *slurp(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    otr_buf b = OTR_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        otr_buf_append(&b, chunk, n);
    fclose(f);
    return otr_buf_detach(&b);
}

/* request.txt: "METHOD TARGET HTTP/1.1", header lines "Name:value" (a line
 * starting with whitespace continues the previous value), a blank line, body. */
typedef struct parsed {
    char *method, *path, *query;
    otr_headers headers;
    const char *body;
    size_t body_len;
} parsed;

static void parse_request(parsed *p, char *text)
{
    memset(p, 0, sizeof(*p));
    char *line_end = strchr(text, '\n');
    *line_end = '\0';
    char *sp1 = strchr(text, ' '), *sp2 = strrchr(text, ' ');
    *sp1 = '\0';
    *sp2 = '\0';
    p->method = text;
    p->path = sp1 + 1;
    char *q = strchr(p->path, '?');
    if (q) {
        *q = '\0';
        p->query = q + 1;
    }
    char *cur = line_end + 1;
    otr_buf value = OTR_BUF_INIT;
    char *name = NULL;
    for (;;) {
        char *nl = strchr(cur, '\n');
        size_t len = nl ? (size_t)(nl - cur) : strlen(cur);
        if (len == 0 || (!nl && len == 0))
            break;
        if ((cur[0] == ' ' || cur[0] == '\t') && name) {
            otr_buf_putc(&value, '\n');
            otr_buf_append(&value, cur, len);
        } else {
            if (name) {
                otr_headers_add(&p->headers, name, otr_buf_cstr(&value));
                free(name);
            }
            char *colon = memchr(cur, ':', len);
            name = strndup(cur, (size_t)(colon - cur));
            otr_buf_clear(&value);
            otr_buf_append(&value, colon + 1, len - (size_t)(colon - cur) - 1);
        }
        if (!nl) {
            cur += len;
            break;
        }
        cur = nl + 1;
    }
    if (name) {
        otr_headers_add(&p->headers, name, otr_buf_cstr(&value));
        free(name);
    }
    otr_buf_free(&value);
    if (*cur == '\n')
        cur++;
    p->body = cur;
    p->body_len = strlen(cur);
}

static int run_case(const char *dir, const char *name)
{
    char cdir[1024];
    snprintf(cdir, sizeof(cdir), "%s/%s", dir, name);
    char *ctx_text = slurp(cdir, "context.json"), *req = slurp(cdir, "request.txt");
    char *want_cr = slurp(cdir, "header-canonical-request.txt");
    char *want_sts = slurp(cdir, "header-string-to-sign.txt");
    char *want_sig = slurp(cdir, "header-signature.txt");
    char *want_signed = slurp(cdir, "header-signed-request.txt");
    if (!ctx_text || !req || !want_cr || !want_sts || !want_sig)
        fail_msg("%s: incomplete case", name);
    cJSON *ctx = cJSON_Parse(ctx_text);
    const cJSON *cred = cJSON_GetObjectItem(ctx, "credentials");
    const char *token = cJSON_GetStringValue(cJSON_GetObjectItem(cred, "token"));
    int omit = cJSON_IsTrue(cJSON_GetObjectItem(ctx, "omit_session_token"));
    int sign_body = cJSON_IsTrue(cJSON_GetObjectItem(ctx, "sign_body"));
    const char *ts = cJSON_GetStringValue(cJSON_GetObjectItem(ctx, "timestamp"));
    char amz_date[17]; /* 2015-08-30T12:36:00Z -> 20150830T123600Z */
    snprintf(amz_date, sizeof(amz_date), "%.4s%.2s%.2sT%.2s%.2s%.2sZ", ts, ts + 5, ts + 8, ts + 11,
             ts + 14, ts + 17);

    parsed p;
    parse_request(&p, req);
    char payload[65];
    otr_sha256_hex(payload, p.body, p.body_len);
    otr_headers_add(&p.headers, "X-Amz-Date", amz_date);
    if (token && !omit)
        otr_headers_add(&p.headers, "X-Amz-Security-Token", token);
    if (sign_body)
        otr_headers_add(&p.headers, "X-Amz-Content-Sha256", payload);
    otr_sigv4_request r = {p.method,
                           p.path,
                           p.query,
                           &p.headers,
                           payload,
                           amz_date,
                           cJSON_GetStringValue(cJSON_GetObjectItem(ctx, "region")),
                           cJSON_GetStringValue(cJSON_GetObjectItem(ctx, "service")),
                           cJSON_IsTrue(cJSON_GetObjectItem(ctx, "normalize"))};
    otr_buf cr = OTR_BUF_INIT, sh = OTR_BUF_INIT, sts = OTR_BUF_INIT;
    char sig[65];
    assert_int_equal(otr_sigv4_canonical_request(&cr, &sh, &r), 0);
    if (strcmp(cr.ptr, want_cr) != 0)
        fail_msg("%s: canonical request\n--- want\n%s\n--- got\n%s", name, want_cr, cr.ptr);
    assert_int_equal(otr_sigv4_string_to_sign(&sts, &r, cr.ptr), 0);
    if (strcmp(sts.ptr, want_sts) != 0)
        fail_msg("%s: string to sign\n--- want\n%s\n--- got\n%s", name, want_sts, sts.ptr);
    const char *secret = cJSON_GetStringValue(cJSON_GetObjectItem(cred, "secret_access_key"));
    assert_int_equal(otr_sigv4_signature(sig, secret, &r, sts.ptr), 0);
    if (strcmp(sig, want_sig) != 0)
        fail_msg("%s: signature %s, want %s", name, sig, want_sig);
    /* the Authorization line of the signed request */
    otr_buf auth = OTR_BUF_INIT;
    otr_buf_printf(&auth,
                   "Authorization:AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
                   "SignedHeaders=%s, Signature=%s",
                   cJSON_GetStringValue(cJSON_GetObjectItem(cred, "access_key_id")), amz_date,
                   r.region, r.service, sh.ptr, sig);
    if (want_signed && !strstr(want_signed, auth.ptr))
        fail_msg("%s: no '%s' in the signed request", name, auth.ptr);

    otr_buf_free(&auth);
    otr_buf_free(&cr);
    otr_buf_free(&sh);
    otr_buf_free(&sts);
    otr_headers_free(&p.headers);
    cJSON_Delete(ctx);
    free(ctx_text);
    free(req);
    free(want_cr);
    free(want_sts);
    free(want_sig);
    free(want_signed);
    return 1;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One known answer that needs nothing outside the repository (a clone
 * without ../shared still checks the signer): the suite's get-vanilla case,
 * its inputs and expected outputs written here. */
static void test_known_answer(void **state)
{
    (void)state;
    otr_headers h = OTR_HEADERS_INIT;
    otr_headers_add(&h, "Host", "example.amazonaws.com");
    otr_headers_add(&h, "X-Amz-Date", "20150830T123600Z");
    char payload[65];
    otr_sha256_hex(payload, "", 0);
    otr_sigv4_request r = {"GET",       "/",       NULL, &h, payload, "20150830T123600Z",
                           "us-east-1", "service", 1};
    otr_buf cr = OTR_BUF_INIT, sh = OTR_BUF_INIT, sts = OTR_BUF_INIT;
    assert_int_equal(otr_sigv4_canonical_request(&cr, &sh, &r), 0);
    assert_string_equal(cr.ptr,
                        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                        "host;x-amz-date\n"
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(otr_sigv4_string_to_sign(&sts, &r, cr.ptr), 0);
    assert_string_equal(sts.ptr,
                        "AWS4-HMAC-SHA256\n20150830T123600Z\n"
                        "20150830/us-east-1/service/aws4_request\n"
                        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    char sig[65];
    assert_int_equal(
        otr_sigv4_signature(sig, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &r, sts.ptr), 0);
    assert_string_equal(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    otr_buf_free(&cr);
    otr_buf_free(&sh);
    otr_buf_free(&sts);
    otr_headers_free(&h);
}

static void test_aws_suite(void **state)
{
    (void)state;
    DIR *d = opendir(SUITE);
    if (!d) {
        print_message("skipping: the SigV4 test suite is absent (%s)\n", SUITE);
        skip();
    }
    char *names[128];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 128) {
        char p[1024];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s/context.json", SUITE, de->d_name);
        if (stat(p, &st) == 0)
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), name_cmp);
    assert_true(n >= 38);
    for (size_t i = 0; i < n; i++) {
        run_case(SUITE, names[i]);
        free(names[i]);
    }
    print_message("%zu SigV4 suite cases passed\n", n);
}

/* The whole signer on one request, with a session token: the headers it adds. */
static void test_sign_adds_headers(void **state)
{
    (void)state;
    otr_headers h = OTR_HEADERS_INIT;
    otr_headers_add(&h, "Host", "api.iotmanagedintegrations.us-east-1.api.aws");
    otr_headers_add(&h, "User-Agent", "ota-runner/0.1.0");
    otr_headers_add(&h, "Content-Type", "application/json");
    otr_credentials c = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "TOKEN", 0,
                         NULL};
    const char *body = "{\"OtaType\":\"ONE_TIME\"}";
    assert_int_equal(otr_sigv4_sign(&h, "POST", "/ota-tasks", NULL, body, strlen(body), &c,
                                    "us-east-1", "iotmanagedintegrations", 1764331200),
                     0);
    assert_string_equal(otr_headers_get(&h, "X-Amz-Date"), "20251128T120000Z");
    assert_string_equal(otr_headers_get(&h, "X-Amz-Security-Token"), "TOKEN");
    const char *auth = otr_headers_get(&h, "Authorization");
    assert_non_null(auth);
    /* User-Agent is not signed; the token is */
    assert_non_null(strstr(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251128/us-east-1/"
                                 "iotmanagedintegrations/aws4_request, SignedHeaders=content-type;"
                                 "host;x-amz-date;x-amz-security-token, Signature="));
    assert_int_equal(strlen(strstr(auth, "Signature=") + 10), 64);
    otr_headers_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_aws_suite),
        cmocka_unit_test(test_sign_adds_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
