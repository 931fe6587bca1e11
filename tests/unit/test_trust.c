/*
 * Trusted commits' parts on their own (runner/trust): ssh patterns, the
 * allowed-signers file and its errors, commits and tags split as git splits
 * them, and SSH signatures that are not what they claim. Real signatures
 * made by ssh-keygen and checked against git are in
 * tests/integration/test_signatures.py.
 */
#include "trust/signed.h"
#include "trust/signers.h"
#include "trust/sshsig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

/* An ed25519 public key blob, base64 (ssh-keygen's, for a throwaway key). */
#define KEY "AAAAC3NzaC1lZDI1NTE5AAAAIO3rgp4FNnT/BXhKZ+iHrLTaEpr9jAso1AuEWkxNl6gz"

static void test_patterns(void **state)
{
    (void)state;
    assert_true(otr_ssh_match_list("alice@example.com", "alice@example.com"));
    assert_true(otr_ssh_match_list("alice@example.com", "bob@x,*@example.com"));
    assert_true(otr_ssh_match_list("alice@example.com", "al?ce@*"));
    assert_false(otr_ssh_match_list("alice@example.com", "*@example.com,!alice@*"));
    assert_false(otr_ssh_match_list("alice@example.com", "alice"));
    assert_false(otr_ssh_match_list("alice@example.com", "Alice@example.com")); /* case matters */
    assert_false(otr_ssh_match_list("alice@example.com", ""));
}

static otr_signers parse_ok(const char *text)
{
    otr_signers s;
    otr_error err = OTR_ERROR_INIT;
    if (otr_signers_parse(&s, "allowed", text, strlen(text), &err) < 0)
        fail_msg("%s", otr_error_message(&err));
    return s;
}

static void parse_bad(const char *text, const char *want)
{
    otr_signers s;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_signers_parse(&s, "allowed", text, strlen(text), &err), -1);
    if (!strstr(otr_error_message(&err), want))
        fail_msg("got \"%s\", want \"%s\"", otr_error_message(&err), want);
    otr_error_clear(&err);
}

static void test_signers_file(void **state)
{
    (void)state;
    otr_signers s =
        parse_ok("# comment\n\n  alice@example.com ssh-ed25519 " KEY " laptop\r\n"
                 "\"bob smith@x,carol@x\" namespaces=\"git,file\",valid-after="
                 "\"20240101Z\",VALID-BEFORE=\"20240201120000Z\" ssh-ed25519 " KEY "\n");
    assert_int_equal(s.count, 2);
    assert_string_equal(s.items[0].principals, "alice@example.com");
    assert_int_equal(s.items[0].line, 3);
    assert_null(s.items[0].namespaces);
    assert_true(s.items[0].valid_after == OTR_SIGNERS_NO_TIME);
    assert_string_equal(s.items[1].principals, "bob smith@x,carol@x");
    assert_string_equal(s.items[1].namespaces, "git,file");
    assert_true(s.items[1].valid_after == 1704067200);
    assert_true(s.items[1].valid_before == 1706788800);
    /* matching: principal, namespace, the validity window */
    otr_buf why = OTR_BUF_INIT;
    const otr_signer *e = otr_signers_match(&s, s.items[1].key, s.items[1].key_len, "carol@x",
                                            "git", 1705000000, &why);
    assert_ptr_equal(e, &s.items[1]);
    assert_null(otr_signers_match(&s, s.items[1].key, s.items[1].key_len, "dave@x", "git",
                                  1705000000, &why));
    assert_string_equal(why.ptr, "allowed:3 lists the key for alice@example.com, not dave@x; "
                                 "allowed:4 lists the key for bob smith@x,carol@x, not dave@x");
    otr_buf_clear(&why);
    assert_null(otr_signers_match(&s, s.items[1].key, s.items[1].key_len, "carol@x", "git",
                                  1706788801, &why));
    assert_string_equal(why.ptr, "allowed:3 lists the key for alice@example.com, not carol@x; "
                                 "allowed:4 makes the key expire at 2024-02-01T12:00:00Z");
    otr_buf_clear(&why);
    assert_null(
        otr_signers_match(&s, (const unsigned char *)"x", 1, "alice@example.com", "git", 0, &why));
    assert_string_equal(why.ptr, "the key is not in allowed");
    otr_buf_free(&why);
    otr_signers_free(&s);

    parse_bad("alice@x cert-authority ssh-ed25519 " KEY "\n",
              "allowed:1: cert-authority: certificates are not supported");
    parse_bad("alice@x restrict ssh-ed25519 " KEY "\n", "allowed:1: unknown option \"restrict\"");
    parse_bad("alice@x valid-after=\"2024\" ssh-ed25519 " KEY "\n",
              "allowed:1: \"2024\" is not a time");
    parse_bad("alice@x ssh-ed25519 AAAA\n", "allowed:1: the key of type ssh-ed25519 is not base64");
    parse_bad("alice@x ssh-rsa " KEY "\n", "allowed:1: the key's own type differs from ssh-rsa");
    parse_bad("\n\nalice@x\n", "allowed:3: expected: PRINCIPALS [OPTIONS] KEYTYPE BASE64-KEY");
    parse_bad("\"alice@x ssh-ed25519 " KEY "\n", "allowed:1: expected");
    parse_bad("alice@x namespaces=\"git\"\n", "allowed:1: no key after the options");
}

static void test_split_commit(void **state)
{
    (void)state;
    static const char raw[] = "tree 1111\n"
                              "parent 2222\n"
                              "author A <a@x> 1 +0000\n"
                              "committer Carl <carl@x> 1700000000 +0100\n"
                              "gpgsig-sha256 OTHER\n"
                              " OTHER2\n"
                              "gpgsig -----BEGIN SSH SIGNATURE-----\n"
                              " QUJD\n"
                              " -----END SSH SIGNATURE-----\n"
                              "encoding UTF-8\n"
                              "\n"
                              "message\n"
                              "gpgsig -----BEGIN SSH SIGNATURE-----\n"
                              " not this one\n";
    otr_signed o;
    assert_int_equal(otr_signed_commit(&o, raw, sizeof(raw) - 1), 0);
    assert_string_equal(o.signature.ptr, "-----BEGIN SSH SIGNATURE-----\nQUJD\n"
                                         "-----END SSH SIGNATURE-----\n");
    assert_string_equal(o.payload.ptr, "tree 1111\nparent 2222\nauthor A <a@x> 1 +0000\n"
                                       "committer Carl <carl@x> 1700000000 +0100\n"
                                       "encoding UTF-8\n\nmessage\n"
                                       "gpgsig -----BEGIN SSH SIGNATURE-----\n not this one\n");
    assert_string_equal(o.email, "carl@x");
    assert_true(o.when == 1700000000);
    otr_signed_clear(&o);
    /* only in the message: unsigned */
    static const char body_only[] = "tree 1\ncommitter C <c@x> 5 +0000\n\nmsg\ngpgsig "
                                    "-----BEGIN SSH SIGNATURE-----\n QUJD\n";
    assert_int_equal(otr_signed_commit(&o, body_only, sizeof(body_only) - 1), 0);
    assert_int_equal(o.signature.len, 0);
    assert_int_equal(o.payload.len, sizeof(body_only) - 1);
    otr_signed_clear(&o);
}

static void test_split_tag(void **state)
{
    (void)state;
    static const char raw[] = "object 1111\ntype commit\ntag v1\ntagger T <t@x> 42 +0000\n\n"
                              "release\n-----BEGIN SSH SIGNATURE-----\nQUJD\n"
                              "-----END SSH SIGNATURE-----\n";
    otr_signed o;
    assert_int_equal(otr_signed_tag(&o, raw, sizeof(raw) - 1), 0);
    assert_string_equal(o.payload.ptr,
                        "object 1111\ntype commit\ntag v1\ntagger T <t@x> 42 +0000\n\nrelease\n");
    assert_string_equal(o.signature.ptr,
                        "-----BEGIN SSH SIGNATURE-----\nQUJD\n-----END SSH SIGNATURE-----\n");
    assert_string_equal(o.email, "t@x");
    assert_true(o.when == 42);
    otr_signed_clear(&o);
}

static void sig_bad(const char *text, const char *want)
{
    otr_sshsig sig;
    otr_buf why = OTR_BUF_INIT;
    assert_int_equal(otr_sshsig_parse(&sig, text, strlen(text), &why), -1);
    if (!strstr(otr_buf_cstr(&why), want))
        fail_msg("got \"%s\", want \"%s\"", otr_buf_cstr(&why), want);
    otr_buf_free(&why);
}

static void test_signatures(void **state)
{
    (void)state;
    sig_bad("-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n",
            "an OpenPGP signature, not an SSH one; sign with SSH: git config gpg.format ssh");
    sig_bad("nothing", "not an SSH signature");
    sig_bad("-----BEGIN SSH SIGNATURE-----\nQUJD\n", "no -----END SSH SIGNATURE----- line");
    sig_bad("-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n", "not base64");
    /* "NOTSIG\0\0\0\1" */
    sig_bad("-----BEGIN SSH SIGNATURE-----\nTk9UU0lHAAAAAQ==\n-----END SSH SIGNATURE-----\n",
            "does not start with SSHSIG");
    /* "SSHSIG\0\0\0\2" */
    sig_bad("-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAg==\n-----END SSH SIGNATURE-----\n",
            "version 2");
    /* "SSHSIG\0\0\0\1" then a string of length 255 that is not there */
    sig_bad("-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAAP8=\n-----END SSH SIGNATURE-----\n",
            "truncated");
    size_t n = 0;
    unsigned char *b = otr_base64_decode("QU JD\nRA==", 10, &n);
    assert_non_null(b);
    assert_int_equal(n, 4);
    assert_memory_equal(b, "ABCD", 4);
    free(b);
    assert_null(otr_base64_decode("=", 1, &n));
    assert_null(otr_base64_decode("", 0, &n));
    char fp[64];
    otr_ssh_fingerprint((const unsigned char *)"", 0, fp);
    assert_string_equal(fp, "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patterns),     cmocka_unit_test(test_signers_file),
        cmocka_unit_test(test_split_commit), cmocka_unit_test(test_split_tag),
        cmocka_unit_test(test_signatures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
