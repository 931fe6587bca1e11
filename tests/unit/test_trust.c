/*
 * Trusted commits' parts on their own (runner/trust): ssh patterns, the
 * allowed-signers file and its errors, commits and tags split as git splits
 * them, and SSH signatures that are not what they claim; OpenPGP keyrings
 * and signatures made by gpg (tests/data/openpgp: an Ed25519, an RSA 3072
 * and a P-256 key, a key with a signing subkey, each with a detached
 * signature of "message") checked, and broken byte by byte. Real
 * signatures made by ssh-keygen and gpg and checked against git are in
 * tests/integration/test_signatures.py and test_openpgp.py.
 */
#include "helpers.h"
#include "trust/openpgp.h"
#include "trust/pgp_packet.h"
#include "trust/signed.h"
#include "trust/signers.h"
#include "trust/sshsig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
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

/* ---- OpenPGP ------------------------------------------------------------------------ */

#define PGP_DATA OTR_TEST_DATA "/openpgp/"
#define NOW 1800000000 /* 2027: the fixture keys never expire */

static char *data(const char *name)
{
    char *text = otr_test_slurp(name);
    if (!text)
        fail_msg("cannot read %s", name);
    return text;
}

/* One keyring of the four keys. */
static otr_pgp_keyring *all_keys(void)
{
    static const char *const names[] = {PGP_DATA "alice.asc", PGP_DATA "bob.asc",
                                        PGP_DATA "carol.asc", PGP_DATA "sub.asc"};
    otr_buf text = OTR_BUF_INIT;
    otr_error err = OTR_ERROR_INIT;
    otr_pgp_keyring *k = NULL;
    for (size_t i = 0; i < 4; i++) {
        char *t = data(names[i]);
        otr_buf_puts(&text, t);
        free(t);
    }
    if (otr_pgp_keyring_parse(&k, "keys.asc", text.ptr, text.len, NOW, &err) < 0)
        fail_msg("%s", otr_error_message(&err));
    otr_buf_free(&text);
    return k;
}

static void verify_one(const otr_pgp_keyring *k, const char *who, const char *family)
{
    char sig_path[256], fpr_path[256];
    snprintf(sig_path, sizeof(sig_path), PGP_DATA "%s.sig", who);
    snprintf(fpr_path, sizeof(fpr_path), PGP_DATA "%s.fpr", who);
    char *sig = data(sig_path), *fpr = data(fpr_path), *msg = data(PGP_DATA "message");
    otr_pgp_signer by;
    otr_buf why = OTR_BUF_INIT;
    if (otr_pgp_verify(k, sig, strlen(sig), msg, strlen(msg), NOW, &by, &why) < 0)
        fail_msg("%s: %s", who, otr_buf_cstr(&why));
    assert_memory_equal(by.primary_hex, fpr, 40);
    assert_string_equal(by.family, family);
    /* one byte of the message changed */
    msg[0] ^= 1;
    assert_int_equal(otr_pgp_verify(k, sig, strlen(sig), msg, strlen(msg), NOW, &by, &why), -1);
    assert_non_null(strstr(otr_buf_cstr(&why), "does not match the signed data"));
    otr_buf_free(&why);
    free(sig);
    free(fpr);
    free(msg);
}

static void test_openpgp_verify(void **state)
{
    (void)state;
    otr_pgp_keyring *k = all_keys();
    assert_int_equal(otr_pgp_keyring_count(k), 4);
    verify_one(k, "alice", "ED25519");
    verify_one(k, "bob", "RSA");
    verify_one(k, "carol", "ECDSA");
    verify_one(k, "sub", "ED25519"); /* by the subkey, named by its primary key */
    otr_pgp_keyring_free(k);
}

/* Alice's signature, edited by edit (NULL: as gpg made it), verified over
 * the message with the keys of keys_name: otr_pgp_verify's result, why in why. */
static int verify_edited(const char *keys_name, void (*edit)(otr_buf *sig), otr_buf *why)
{
    otr_error err = OTR_ERROR_INIT;
    otr_pgp_keyring *k = NULL;
    char *keys = data(keys_name), *sig = data(PGP_DATA "alice.sig"),
         *msg = data(PGP_DATA "message");
    otr_buf s = OTR_BUF_INIT;
    otr_pgp_signer by;
    otr_buf_puts(&s, sig);
    if (edit)
        edit(&s);
    if (otr_pgp_keyring_parse(&k, "keys.asc", keys, strlen(keys), NOW, &err) < 0)
        fail_msg("%s", otr_error_message(&err));
    int rc = otr_pgp_verify(k, s.ptr, s.len, msg, strlen(msg), NOW, &by, why);
    otr_pgp_keyring_free(k);
    otr_buf_free(&s);
    free(keys);
    free(sig);
    free(msg);
    return rc;
}

/* ... and it fails with want. */
static void pgp_bad(const char *keys_name, void (*edit)(otr_buf *sig), const char *want)
{
    otr_buf why = OTR_BUF_INIT;
    assert_int_equal(verify_edited(keys_name, edit, &why), -1);
    if (!strstr(otr_buf_cstr(&why), want))
        fail_msg("got \"%s\", want \"%s\"", otr_buf_cstr(&why), want);
    otr_buf_free(&why);
}

static void flip_checksum(otr_buf *s)
{
    char *eq = strstr(s->ptr, "\n=");
    eq[2] = eq[2] == 'A' ? 'B' : 'A';
}

static void drop_end(otr_buf *s)
{
    char *end = strstr(s->ptr, "-----END");
    s->len = (size_t)(end - s->ptr);
    *end = '\0';
}

static void drop_checksum(otr_buf *s)
{
    char *eq = strstr(s->ptr, "\n=");
    char *nl = strchr(eq + 1, '\n');
    memmove(eq, nl, strlen(nl) + 1);
    s->len = strlen(s->ptr);
}

static void two_signatures(otr_buf *s)
{
    /* the same packet twice, re-armored without a checksum */
    const char *p = s->ptr;
    otr_buf bin = OTR_BUF_INIT, why = OTR_BUF_INIT;
    assert_int_equal(pgp_dearmor(&p, s->ptr + s->len, "SIGNATURE", &bin, &why), 1);
    char *once = malloc(bin.len);
    memcpy(once, bin.ptr, bin.len);
    otr_buf_append(&bin, once, bin.len);
    free(once);
    otr_buf_clear(s);
    otr_buf_puts(s, "-----BEGIN PGP SIGNATURE-----\n\n");
    char *b64 = malloc(bin.len * 2 + 8);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)bin.ptr, (int)bin.len);
    otr_buf_puts(s, b64);
    otr_buf_puts(s, "\n-----END PGP SIGNATURE-----\n");
    free(b64);
    otr_buf_free(&bin);
    otr_buf_free(&why);
}

static void trailing_text(otr_buf *s)
{
    otr_buf_puts(s, "-----BEGIN SSH SIGNATURE-----\n");
}

static void leading_text(otr_buf *s)
{
    char *copy = strdup(s->ptr);
    otr_buf_clear(s);
    otr_buf_puts(s, "garbage\n");
    otr_buf_puts(s, copy);
    free(copy);
}

static void test_openpgp_refusals(void **state)
{
    (void)state;
    pgp_bad(PGP_DATA "alice.asc", trailing_text, "something follows the signature's armor");
    pgp_bad(PGP_DATA "alice.asc", leading_text, "it does not start with");
    pgp_bad(PGP_DATA "alice.asc", flip_checksum, "checksum does not match");
    pgp_bad(PGP_DATA "alice.asc", drop_end, "no \"-----END PGP SIGNATURE-----\" line");
    pgp_bad(PGP_DATA "alice.asc", two_signatures, "more than one packet");
    pgp_bad(PGP_DATA "bob.asc", NULL, "which is not in keys.asc");
    /* the checksum is optional (RFC 9580): without it the signature is good */
    otr_buf why = OTR_BUF_INIT;
    assert_int_equal(verify_edited(PGP_DATA "alice.asc", drop_checksum, &why), 0);
    char *sig = data(PGP_DATA "alice.sig");
    /* every shorter signature packet is refused, never read past its end */
    const char *p = sig;
    otr_buf bin = OTR_BUF_INIT;
    assert_int_equal(pgp_dearmor(&p, sig + strlen(sig), "SIGNATURE", &bin, &why), 1);
    for (size_t cut = 0; cut + 1 < bin.len; cut++) {
        pgp_bytes in = {(const unsigned char *)bin.ptr, cut};
        pgp_packet pkt;
        pgp_sig parsed;
        int got = pgp_packet_next(&in, &pkt, &why);
        assert_true(got <= 0 || pgp_sig_parse(&parsed, pkt.body, &why) < 0);
    }
    otr_buf_free(&bin);
    otr_buf_free(&why);
    free(sig);
}

static void keys_bad(const char *text, const char *want)
{
    otr_error err = OTR_ERROR_INIT;
    otr_pgp_keyring *k = NULL;
    assert_int_equal(otr_pgp_keyring_parse(&k, "keys.asc", text, strlen(text), NOW, &err), -1);
    assert_null(k);
    if (!strstr(otr_error_message(&err), want))
        fail_msg("got \"%s\", want \"%s\"", otr_error_message(&err), want);
    otr_error_clear(&err);
}

static void test_openpgp_keys_file(void **state)
{
    (void)state;
    keys_bad("", "holds no \"-----BEGIN PGP PUBLIC KEY BLOCK-----\"");
    keys_bad("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxx==\n-----END PGP PRIVATE KEY BLOCK-----\n",
             "holds a secret key");
    keys_bad("-----BEGIN PGP PUBLIC KEY BLOCK-----\nQUJD\n-----END PGP PUBLIC KEY BLOCK-----\n",
             "no blank line before its data");
    /* a user ID packet (tag 13, "A") where a key must come first */
    keys_bad("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nzQFB\n-----END PGP PUBLIC KEY BLOCK-----\n",
             "block 1: it does not start with a public key");
    /* the allowed-signers line of an OpenPGP key */
    char line[128], *fpr = data(PGP_DATA "alice.fpr");
    otr_signers s;
    otr_error err = OTR_ERROR_INIT;
    unsigned char want[OTR_SIGNERS_OPENPGP_LEN], bin[20];
    snprintf(line, sizeof(line), "alice@example.com openpgp %.40s\n", fpr);
    assert_int_equal(otr_signers_parse(&s, "allowed", line, strlen(line), &err), 0);
    assert_true(otr_signers_has_openpgp(&s));
    for (int i = 0; i < 20; i++) {
        unsigned v;
        assert_int_equal(sscanf(fpr + 2 * i, "%2x", &v), 1);
        bin[i] = (unsigned char)v;
    }
    otr_signers_openpgp_key(bin, want);
    assert_int_equal(s.items[0].key_len, sizeof(want));
    assert_memory_equal(s.items[0].key, want, sizeof(want));
    otr_signers_free(&s);
    parse_bad("alice@example.com openpgp ABCD\n",
              "allowed:1: after openpgp, expected the primary key's 40-hex-digit fingerprint");
    free(fpr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patterns),         cmocka_unit_test(test_signers_file),
        cmocka_unit_test(test_split_commit),     cmocka_unit_test(test_split_tag),
        cmocka_unit_test(test_signatures),       cmocka_unit_test(test_openpgp_verify),
        cmocka_unit_test(test_openpgp_refusals), cmocka_unit_test(test_openpgp_keys_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
