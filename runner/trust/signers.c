/* The allowed-signers file (see signers.h). */
#include "trust/signers.h"

#include "trust/sshsig.h"
#include "util/time.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- patterns ------------------------------------------------------------------- */

/* ssh's match_pattern: '*' any run, '?' one character. */
static int match(const char *s, const char *p, size_t plen)
{
    if (plen == 0)
        return *s == '\0';
    if (*p == '*') {
        for (const char *t = s;; t++) {
            if (match(t, p + 1, plen - 1))
                return 1;
            if (!*t)
                return 0;
        }
    }
    if (!*s || (*p != '?' && *p != *s))
        return 0;
    return match(s + 1, p + 1, plen - 1);
}

int otr_ssh_match_list(const char *name, const char *list)
{
    int got = 0;
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        int negated = *p == '!';
        if (negated ? match(name, p + 1, len - 1) : match(name, p, len)) {
            if (negated)
                return 0; /* a negated match wins */
            got = 1;
        }
        p += len + (p[len] == ',');
    }
    return got;
}

/* ---- parsing -------------------------------------------------------------------- */

typedef struct cursor {
    const char *p, *end;
    unsigned line;
    const char *file;
    otr_error *err;
} cursor;

static int fail(const cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const cursor *c, const char *fmt, ...)
{
    otr_buf msg = OTR_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    otr_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    otr_error_set(c->err, OTR_ERR_INVALID, "%s:%u: %s", c->file, c->line, otr_buf_cstr(&msg));
    otr_buf_free(&msg);
    return -1;
}

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

/* The next field: up to a blank outside quotes, \" inside them skipped, as
 * ssh's sshkey_advance_past_options reads; quotes kept. NULL for an empty
 * field or an open quote. */
static char *field(cursor *c)
{
    const char *start = c->p;
    int quoted = 0;
    while (c->p < c->end && (quoted || (*c->p != ' ' && *c->p != '\t'))) {
        if (*c->p == '\\' && c->p + 1 < c->end && c->p[1] == '"')
            c->p++;
        else if (*c->p == '"')
            quoted = !quoted;
        c->p++;
    }
    if (quoted || c->p == start)
        return NULL;
    size_t n = (size_t)(c->p - start);
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, start, n);
        out[n] = '\0';
    }
    skip_space(c);
    return out;
}

/* s without its quotes (in place): the principals. */
static char *unquote(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++)
        if (*r != '"')
            *w++ = *r;
    *w = '\0';
    return s;
}

static int is_key_type(const char *s)
{
    return !strncmp(s, "ssh-", 4) || !strncmp(s, "ecdsa-", 6) || !strncmp(s, "sk-", 3) ||
           !strcmp(s, OTR_SIGNERS_OPENPGP);
}

void otr_signers_openpgp_key(const unsigned char fpr[20],
                             unsigned char out[OTR_SIGNERS_OPENPGP_LEN])
{
    const size_t n = sizeof(OTR_SIGNERS_OPENPGP) - 1;
    out[0] = out[1] = out[2] = 0;
    out[3] = (unsigned char)n;
    memcpy(out + 4, OTR_SIGNERS_OPENPGP, n);
    memcpy(out + 4 + n, fpr, 20);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* openpgp FINGERPRINT: a v4 primary key's 40 hex digits, as gpg --with-colons
 * prints them (spaces, as gpg --fingerprint groups them, are not read). */
static int openpgp_key(cursor *c, otr_signer *e, const char *text)
{
    unsigned char fpr[20];
    for (size_t i = 0; i < 40; i++) {
        int v = hex_digit(text[i]);
        if (v < 0)
            goto bad;
        fpr[i / 2] = (unsigned char)(i % 2 ? fpr[i / 2] << 4 | v : v);
    }
    if (text[40])
        goto bad;
    if (!(e->key = malloc(OTR_SIGNERS_OPENPGP_LEN)))
        return fail(c, "out of memory");
    otr_signers_openpgp_key(fpr, e->key);
    e->key_len = OTR_SIGNERS_OPENPGP_LEN;
    return 0;
bad:
    return fail(c,
                "after openpgp, expected the primary key's 40-hex-digit fingerprint (gpg "
                "--with-colons --fingerprint KEY, its fpr line), got \"%.48s\"",
                text);
}

/* The number written by n digits at s (checked to be digits). */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* YYYYMMDD[HHMM[SS]][Z] (local time without Z), as ssh-keygen reads it
 * (strptime's ranges: a month 13 or an hour 24 is not a time). */
static int parse_time(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    int utc = n && (s[n - 1] == 'Z' || s[n - 1] == 'z');
    n -= (size_t)utc;
    if (n != 8 && n != 12 && n != 14)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return -1;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = digits(s, 4) - 1900;
    tm.tm_mon = digits(s + 4, 2) - 1;
    tm.tm_mday = digits(s + 6, 2);
    tm.tm_hour = n >= 12 ? digits(s + 8, 2) : 0;
    tm.tm_min = n >= 12 ? digits(s + 10, 2) : 0;
    tm.tm_sec = n == 14 ? digits(s + 12, 2) : 0;
    tm.tm_isdst = -1;
    if (tm.tm_mon > 11 || tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    time_t t = utc ? timegm(&tm) : mktime(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (int64_t)t;
    return 0;
}

/* A quoted value at *p, as ssh's opt_dequote reads it: it must start and end
 * with '"', and \" inside is a quote. Returns the value (free() it) and moves
 * *p past it; NULL with why. */
static char *dequote(const char **p, const char **why)
{
    const char *s = *p;
    if (*s != '"') {
        *why = "the value must be in double quotes";
        return NULL;
    }
    char *out = calloc(strlen(s) + 1, 1);
    size_t n = 0;
    if (!out) {
        *why = "out of memory";
        return NULL;
    }
    for (s++; *s && *s != '"'; s++) {
        if (s[0] == '\\' && s[1] == '"')
            s++;
        out[n++] = *s;
    }
    if (!*s) {
        free(out);
        *why = "the value's closing quote is missing";
        return NULL;
    }
    out[n] = '\0';
    *p = s + 1;
    return out;
}

/* Does the option at *p name term followed by '=' (any case)? Moves past it. */
static int option_is(const char **p, const char *term)
{
    size_t n = strlen(term);
    if (strncasecmp(*p, term, n) || (*p)[n] != '=')
        return 0;
    *p += n + 1;
    return 1;
}

/* One option at *p: namespaces=, valid-after=, valid-before= with a quoted
 * value, each at most once (cert-authority is refused). */
static int option(cursor *c, otr_signer *e, const char **p)
{
    const char *why = NULL;
    int64_t *slot = NULL;
    char *value;
    if (!strncasecmp(*p, "cert-authority", 14))
        return fail(c, "cert-authority: certificates are not supported; list each signer's own "
                       "key");
    const char *name = *p;
    if (option_is(p, "namespaces")) {
        if (e->namespaces)
            return fail(c, "namespaces= is given twice");
        if (!(e->namespaces = dequote(p, &why)))
            return fail(c, "namespaces=: %s, as ssh-keygen reads it", why);
        return 0;
    }
    if (option_is(p, "valid-after"))
        slot = &e->valid_after;
    else if (option_is(p, "valid-before"))
        slot = &e->valid_before;
    if (!slot)
        return fail(c,
                    "unknown option \"%.*s\" (known: namespaces=, valid-after=, valid-before=, "
                    "each with a value in double quotes)",
                    (int)strcspn(name, "=,"), name);
    size_t len = (size_t)(*p - name - 1);
    if (*slot != OTR_SIGNERS_NO_TIME)
        return fail(c, "%.*s= is given twice", (int)len, name);
    if (!(value = dequote(p, &why)))
        return fail(c, "%.*s=: %s, as ssh-keygen reads it (%.*s=\"20991231\")", (int)len, name, why,
                    (int)len, name);
    int bad = parse_time(value, slot) < 0 || *slot == 0;
    if (bad)
        fail(c,
             "\"%s\" is not a time: YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with Z for "
             "UTC",
             value);
    free(value);
    return bad ? -1 : 0;
}

/* The options field, as ssh-keygen's sshsigopt_parse reads it: options
 * separated by single commas, nothing after the last; a valid-before not
 * later than valid-after is an error. */
static int options(cursor *c, otr_signer *e, const char *opts)
{
    const char *p = opts;
    while (*p) {
        if (option(c, e, &p) < 0)
            return -1;
        if (!*p)
            break;
        if (*p != ',')
            return fail(c, "unexpected \"%s\" after an option (options are separated by commas)",
                        p);
        if (!*++p)
            return fail(c, "the options end with a comma");
    }
    if (e->valid_after != OTR_SIGNERS_NO_TIME && e->valid_before != OTR_SIGNERS_NO_TIME &&
        e->valid_before <= e->valid_after)
        return fail(c, "valid-before is not later than valid-after");
    return 0;
}

/* KEYTYPE BASE64 [COMMENT]: the key blob, whose own type must be KEYTYPE. */
static int key(cursor *c, otr_signer *e, const char *type, const char *b64)
{
    const unsigned char *p;
    size_t left;
    otr_ssh_str inner;
    if (!strcmp(type, OTR_SIGNERS_OPENPGP))
        return openpgp_key(c, e, b64);
    e->key = otr_base64_decode(b64, strlen(b64), &e->key_len);
    p = e->key;
    left = e->key_len;
    if (!e->key || otr_ssh_read_str(&p, &left, &inner) < 0)
        return fail(c, "the key of type %s is not base64 of an SSH public key", type);
    if (inner.len != strlen(type) || memcmp(inner.p, type, inner.len) != 0)
        return fail(c, "the key's own type differs from %s", type);
    return 0;
}

static int parse_line(cursor *c, otr_signer *e)
{
    char *principals = field(c), *second = NULL, *b64 = NULL;
    int rc = -1;
    const char *type;
    e->valid_after = e->valid_before = OTR_SIGNERS_NO_TIME;
    e->line = c->line;
    if (!principals || !(second = field(c))) {
        fail(c, "expected: PRINCIPALS [OPTIONS] KEYTYPE BASE64-KEY");
        goto done;
    }
    e->principals = strdup(unquote(principals));
    if (!is_key_type(second)) {
        if (options(c, e, second) < 0)
            goto done;
        free(second);
        if (!(second = field(c))) {
            fail(c, "no key after the options");
            goto done;
        }
    }
    type = second;
    if (!is_key_type(type)) {
        fail(c,
             "\"%s\" is not a key type (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, openpgp, ...)",
             type);
        goto done;
    }
    if (!(b64 = field(c))) {
        fail(c, "no key after the key type %s", type);
        goto done;
    }
    rc = e->principals ? key(c, e, type, b64) : fail(c, "out of memory");
done:
    free(principals);
    free(second);
    free(b64);
    return rc;
}

static void signer_free(otr_signer *e)
{
    free(e->principals);
    free(e->namespaces);
    free(e->key);
}

int otr_signers_has_openpgp(const otr_signers *s)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->items[i].key_len == OTR_SIGNERS_OPENPGP_LEN &&
            !memcmp(s->items[i].key + 4, OTR_SIGNERS_OPENPGP, sizeof(OTR_SIGNERS_OPENPGP) - 1))
            return 1;
    return 0;
}

int otr_signers_parse(otr_signers *out, const char *file, const char *text, size_t len,
                      otr_error *err)
{
    memset(out, 0, sizeof(*out));
    if (len > OTR_SIGNERS_MAX_FILE)
        return otr_error_set(err, OTR_ERR_INVALID, "%s is larger than %zu bytes", file,
                             OTR_SIGNERS_MAX_FILE);
    if (!(out->file = strdup(file)))
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    cursor c = {text, text, 0, out->file, err};
    for (const char *p = text; p < text + len;) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        const char *end = nl ? nl : text + len;
        c.line++;
        c.p = p;
        c.end = end > p && end[-1] == '\r' ? end - 1 : end;
        p = nl ? nl + 1 : text + len;
        skip_space(&c);
        if (c.p == c.end || *c.p == '#')
            continue;
        if (memchr(c.p, '\0', (size_t)(c.end - c.p))) {
            fail(&c, "a NUL byte");
            otr_signers_free(out);
            return -1;
        }
        otr_signer *grown = realloc(out->items, (out->count + 1) * sizeof(*grown));
        if (!grown) {
            otr_signers_free(out);
            return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        }
        out->items = grown;
        otr_signer *e = &out->items[out->count++];
        memset(e, 0, sizeof(*e));
        if (parse_line(&c, e) < 0) {
            otr_signers_free(out); /* err holds its own copy of the message */
            return -1;
        }
    }
    return 0;
}

void otr_signers_free(otr_signers *s)
{
    for (size_t i = 0; i < s->count; i++)
        signer_free(&s->items[i]);
    free(s->items);
    free(s->file);
    memset(s, 0, sizeof(*s));
}

/* ---- matching -------------------------------------------------------------------- */

static void when_text(char out[32], int64_t t)
{
    otr_time_format_iso8601(out, (time_t)t);
}

const otr_signer *otr_signers_match(const otr_signers *s, const unsigned char *key, size_t key_len,
                                    const char *principal, const char *ns, int64_t when,
                                    otr_buf *why)
{
    const otr_signer *listed = NULL;
    otr_buf reasons = OTR_BUF_INIT;
    for (size_t i = 0; i < s->count; i++) {
        const otr_signer *e = &s->items[i];
        char t[32];
        if (e->key_len != key_len || memcmp(e->key, key, key_len) != 0)
            continue;
        listed = e;
        if (!otr_ssh_match_list(principal, e->principals)) {
            otr_buf_printf(&reasons, "; %s:%u lists the key for %s, not %s", s->file, e->line,
                           e->principals, principal);
        } else if (e->namespaces && !otr_ssh_match_list(ns, e->namespaces)) {
            otr_buf_printf(&reasons, "; %s:%u allows the key for namespaces \"%s\", not \"%s\"",
                           s->file, e->line, e->namespaces, ns);
        } else if (e->valid_after != OTR_SIGNERS_NO_TIME && when < e->valid_after) {
            when_text(t, e->valid_after);
            otr_buf_printf(&reasons, "; %s:%u makes the key valid only after %s", s->file, e->line,
                           t);
        } else if (e->valid_before != OTR_SIGNERS_NO_TIME && when > e->valid_before) {
            when_text(t, e->valid_before);
            otr_buf_printf(&reasons, "; %s:%u makes the key expire at %s", s->file, e->line, t);
        } else {
            otr_buf_free(&reasons);
            return e;
        }
    }
    if (!listed)
        otr_buf_printf(why, "the key is not in %s", s->file);
    else
        otr_buf_puts(why, otr_buf_cstr(&reasons) + 2);
    otr_buf_free(&reasons);
    return NULL;
}
