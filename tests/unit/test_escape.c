/*
 * Untrusted text in every output format (cli/escape.h): what a pull request,
 * a state from elsewhere or the service says can never read as a line, a
 * link, an image, a mention, a code span or markup of ota-runner's own.
 */
#include "util/escape.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

typedef void (*escaper)(otr_buf *out, const char *s);

static char *run(escaper f, const char *s)
{
    otr_buf b = OTR_BUF_INIT;
    f(&b, s);
    return otr_buf_detach(&b);
}

static void expect(escaper f, const char *in, const char *want)
{
    char *got = run(f, in);
    if (strcmp(got, want))
        fail_msg("escaping \"%s\": got \"%s\", want \"%s\"", in, got, want);
    free(got);
}

static void test_markdown_cell(void **state)
{
    (void)state;
    expect(otr_md_cell, "plain s3://b/k.json thingType:Plug", "plain s3://b/k.json thingType:Plug");
    expect(otr_md_cell, "a|b", "a\\|b");
    expect(otr_md_cell, "![x](https://e/i.png)", "\\!\\[x\\]\\(https://e/i.png\\)");
    expect(otr_md_cell, "[click](https://e)", "\\[click\\]\\(https://e\\)");
    expect(otr_md_cell, "`code`", "\\`code\\`");
    expect(otr_md_cell, "@octo-org/admins", "@&#8203;octo-org/admins");
    expect(otr_md_cell, "<img src=x>&amp; a -> b", "&lt;img src=x>&amp;amp; a -> b");
    expect(otr_md_cell, "a\\|b", "a\\\\\\|b"); /* no escape of ours undone */
    expect(otr_md_cell, "one\r| two\nthree", "one \\| two three");
    expect(otr_md_cell, "esc\x1b[31m", "esc\\\\u001b\\[31m");
    expect(otr_md_cell, "bidi\xe2\x80\xaegnp.exe", "bidi\\\\u202egnp.exe");
    expect(otr_md_cell, "\xc3\xa9t\xc3\xa9 \xf0\x9f\x9a\x80", "\xc3\xa9t\xc3\xa9 \xf0\x9f\x9a\x80");
}

static void github_value(otr_buf *out, const char *s)
{
    otr_github_escape(out, s, 0);
}

static void github_property(otr_buf *out, const char *s)
{
    otr_github_escape(out, s, 1);
}

static void test_github(void **state)
{
    (void)state;
    expect(github_value, "100% done\r\n::error::forged", "100%25 done%0D%0A::error::forged");
    expect(github_value, "esc\x1b[31m", "esc%1B[31m");
    expect(github_property, "manifests/a:b,c.yaml", "manifests/a%3Ab%2Cc.yaml");
    expect(github_value, "next\xc2\x85line", "next\\u0085line");
}

static void test_mermaid(void **state)
{
    (void)state;
    expect(otr_mermaid_text, "thingType:\"x\"<br/>`y`", "thingType:#quot;x#quot;#lt;br/#gt; y ");
    expect(otr_mermaid_text, "a\nb\rc\x1b", "a b c ");
}

static void text(otr_buf *out, const char *s)
{
    otr_buf_puts(out, "kept\n");
    size_t start = out->len;
    otr_buf_puts(out, s);
    otr_text_sanitize(out, start, 0);
}

static void coloured(otr_buf *out, const char *s)
{
    otr_buf_puts(out, s);
    otr_text_sanitize(out, 0, 1);
}

static void test_text(void **state)
{
    (void)state;
    expect(text, "a line\nanother", "kept\na line\nanother");
    expect(text, "id\rDiff: 0 added\t\x1b[0m\x7f", "kept\nid\\rDiff: 0 added\\t\\x1b[0m\\x7f");
    expect(text, "\xe2\x80\xae\xe2\x81\xa6\xc2\x9b", "kept\n\\u202e\\u2066\\x9b");
    expect(coloured, "\x1b[1;31merror:\x1b[0m a\rb", "\x1b[1;31merror:\x1b[0m a\\rb");
}

static void redacted(otr_buf *out, const char *s)
{
    char *r = otr_url_redact(s);
    otr_buf_puts(out, r);
    free(r);
}

/* A user name and password never reach a file or an output (issue 29). */
static void test_url_redact(void **state)
{
    (void)state;
    expect(redacted, "http://user:secret@127.0.0.1:8080/x", "http://127.0.0.1:8080/x");
    expect(redacted, "https://TOKEN@github.com/org/fleet.git", "https://github.com/org/fleet.git");
    expect(redacted, "https://u:p@ss@host", "https://host");
    expect(redacted, "https://host/a@b", "https://host/a@b");
    expect(redacted, "git@github.com:org/fleet.git", "git@github.com:org/fleet.git");
    expect(redacted, "/srv/fleet@2", "/srv/fleet@2");
    expect(redacted, ".", ".");
}

static void test_utf8_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "", "plain.yaml", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x9a\x80", "\xf4\x8f\xbf\xbf"};
    static const char *const bad[] = {"caf\xe9",      "\xc0\xaf",         "\xe0\x80\xaf",
                                      "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf0\x9f\x9a",
                                      "\x80"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!otr_utf8_valid(good[i], strlen(good[i])))
            fail_msg("good #%zu refused", i);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (otr_utf8_valid(bad[i], strlen(bad[i])))
            fail_msg("bad #%zu accepted", i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markdown_cell), cmocka_unit_test(test_github),
        cmocka_unit_test(test_mermaid),       cmocka_unit_test(test_text),
        cmocka_unit_test(test_url_redact),    cmocka_unit_test(test_utf8_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
