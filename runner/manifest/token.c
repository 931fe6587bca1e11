/* Canonical JSON, ClientToken and spec digest (docs/DESIGN.md section 5). */
#include "manifest/token.h"

#include "util/buf.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_cmp(const void *a, const void *b)
{
    const cJSON *const *x = a, *const *y = b;
    return strcmp((*x)->string, (*y)->string); /* strcmp compares as unsigned char */
}

/* Members sorted in place on the stack up to this many. */
#define SORT_ON_STACK 32

int otr_canonical_sort(cJSON *v)
{
    if (!v)
        return 0;
    size_t n = 0;
    for (cJSON *c = v->child; c; c = c->next) {
        if (otr_canonical_sort(c) < 0)
            return -1;
        n++;
    }
    if (!cJSON_IsObject(v) || n < 2)
        return 0;
    int sorted = 1; /* a spec built in the schema's order mostly is already */
    for (cJSON *c = v->child; c->next && sorted; c = c->next)
        sorted = strcmp(c->string, c->next->string) < 0;
    if (sorted)
        return 0;
    cJSON *few[SORT_ON_STACK];
    cJSON **items = n <= SORT_ON_STACK ? few : malloc(n * sizeof(*items));
    if (!items)
        return -1;
    n = 0;
    for (cJSON *c = v->child; c; c = c->next)
        items[n++] = c;
    if (items == few) { /* a spec's objects are small: insertion, no allocation */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j && key_cmp(&items[j - 1], &items[j]) > 0; j--) {
                cJSON *t = items[j];
                items[j] = items[j - 1];
                items[j - 1] = t;
            }
    } else {
        qsort(items, n, sizeof(*items), key_cmp);
    }
    for (size_t i = 0; i < n; i++) {
        items[i]->prev = i ? items[i - 1] : items[n - 1]; /* cJSON keeps the tail in head->prev */
        items[i]->next = i + 1 < n ? items[i + 1] : NULL;
    }
    v->child = items[0];
    if (items != few)
        free(items);
    return 0;
}

/* The shortest decimal digits that read back as x (x > 0, finite), and the
 * exponent n such that x = 0.DIGITS * 10^n. */
/* 2^53: below it every integer is a double, one apart from the next. */
#define OTR_EXACT_INTEGER_LIMIT 9007199254740992.0

static void shortest_digits(double x, char digits[24], int *n)
{
    char text[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof(text), "%.*e", precision - 1, x);
        if (strtod(text, NULL) == x)
            break;
    }
    /* text is "d.ddde[+-]XX" or "de[+-]XX" */
    size_t k = 0;
    const char *p = text;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[k++] = *p;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    *n = (int)strtol(p + 1, NULL, 10) + 1;
}

int otr_canonical_number(otr_buf *b, double x)
{
    char digits[24];
    int n;
    if (!isfinite(x))
        return -1;
    if (x == 0)
        return otr_buf_putc(b, '0');
    if (x < 0)
        otr_buf_putc(b, '-');
    if (fabs(x) < OTR_EXACT_INTEGER_LIMIT && x == floor(x))   /* every integer is a double here: */
        return otr_buf_printf(b, "%lld", (long long)fabs(x)); /* its own digits are the shortest */
    shortest_digits(fabs(x), digits, &n);
    int k = (int)strlen(digits);
    /* ECMAScript's Number::toString, as RFC 8785 section 3.2.2.3 asks */
    if (k <= n && n <= 21) {
        otr_buf_puts(b, digits);
        for (int i = 0; i < n - k; i++)
            otr_buf_putc(b, '0');
    } else if (0 < n && n <= 21) {
        otr_buf_printf(b, "%.*s.%s", n, digits, digits + n);
    } else if (-6 < n && n <= 0) {
        otr_buf_puts(b, "0.");
        for (int i = 0; i < -n; i++)
            otr_buf_putc(b, '0');
        otr_buf_puts(b, digits);
    } else {
        otr_buf_printf(b, "%c%s%s", digits[0], k > 1 ? "." : "", digits + 1);
        otr_buf_printf(b, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    return otr_buf_failed(b) ? -1 : 0;
}

/* '"', '\\' and control characters escaped (the short forms where JSON has
 * them, else \u00xx); everything else as it is, UTF-8. */
static void write_string(otr_buf *b, const char *s)
{
    otr_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t run = 0; /* characters written as they are, appended at once */
        while (p[run] >= 0x20 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run) {
            otr_buf_append(b, p, run);
            p += run - 1;
            continue;
        }
        switch (*p) {
        case '"': otr_buf_puts(b, "\\\""); break;
        case '\\': otr_buf_puts(b, "\\\\"); break;
        case '\b': otr_buf_puts(b, "\\b"); break;
        case '\f': otr_buf_puts(b, "\\f"); break;
        case '\n': otr_buf_puts(b, "\\n"); break;
        case '\r': otr_buf_puts(b, "\\r"); break;
        case '\t': otr_buf_puts(b, "\\t"); break;
        default:
            if (*p < 0x20)
                otr_buf_printf(b, "\\u%04x", *p);
            else
                otr_buf_putc(b, (char)*p);
        }
    }
    otr_buf_putc(b, '"');
}

static int write_value(otr_buf *b, const cJSON *v)
{
    const cJSON *c;
    int first = 1;
    if (cJSON_IsString(v)) {
        write_string(b, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        if (otr_canonical_number(b, v->valuedouble) < 0)
            return -1;
    } else if (cJSON_IsTrue(v)) {
        otr_buf_puts(b, "true");
    } else if (cJSON_IsFalse(v)) {
        otr_buf_puts(b, "false");
    } else if (cJSON_IsNull(v)) {
        otr_buf_puts(b, "null");
    } else if (cJSON_IsArray(v)) {
        otr_buf_putc(b, '[');
        cJSON_ArrayForEach(c, v)
        {
            if (!first)
                otr_buf_putc(b, ',');
            first = 0;
            if (write_value(b, c) < 0)
                return -1;
        }
        otr_buf_putc(b, ']');
    } else if (cJSON_IsObject(v)) {
        otr_buf_putc(b, '{');
        cJSON_ArrayForEach(c, v)
        {
            if (!first)
                otr_buf_putc(b, ',');
            first = 0;
            write_string(b, c->string);
            otr_buf_putc(b, ':');
            if (write_value(b, c) < 0)
                return -1;
        }
        otr_buf_putc(b, '}');
    } else {
        return -1;
    }
    return otr_buf_failed(b) ? -1 : 0;
}

char *otr_canonical_json(cJSON *v)
{
    otr_buf b = OTR_BUF_INIT;
    /* room for most specs at once (a task with every field is 1.1 KB): one
     * allocation, not six doublings from 64 bytes */
    if (otr_buf_reserve(&b, 2048) < 0 || otr_canonical_sort(v) < 0 || write_value(&b, v) < 0) {
        otr_buf_free(&b);
        return NULL;
    }
    size_t len = b.len;
    char *text = otr_buf_detach(&b);
    /* specs are kept as this text (100k of them): not in a doubled buffer */
    char *fit = text ? realloc(text, len + 1) : NULL;
    return fit ? fit : text;
}

void otr_base64url(char *out, const unsigned char *in, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = alphabet[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
}

/* SHA-256, fetched once: EVP_sha256() is fetched again (a lock and a look-up)
 * at every digest, a twentieth of a manifest's parse. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, fetch_sha256);
    return sha256_md ? sha256_md : EVP_sha256();
}

/* out = base64url_nopad(SHA-256 of the n strings, each with its NUL but the
 * last). */
static int token_of_parts(char out[OTR_TOKEN_SIZE], const char *const *parts, size_t n)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    int ok = 1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ok = ctx && EVP_DigestInit_ex(ctx, sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + (i + 1 < n));
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == sizeof(md);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    otr_base64url(out, md, sizeof(md));
    return 0;
}

int otr_client_token(char out[OTR_TOKEN_SIZE], const char *name, long revision,
                     const char *canonical)
{
    char rev[24];
    snprintf(rev, sizeof(rev), "%ld", revision);
    const char *parts[] = {"ota-runner/v1", name, rev, canonical};
    return token_of_parts(out, parts, 4);
}

int otr_token_generation(char out[OTR_TOKEN_SIZE], const char *token, unsigned generation)
{
    char gen[16];
    size_t len = strlen(token);
    if (len == 0 || len > 43)
        return -1;
    if (generation == 0) {
        memcpy(out, token, len + 1);
        return 0;
    }
    snprintf(gen, sizeof(gen), "%u", generation);
    const char *parts[] = {"ota-runner/v1/generation", token, gen};
    return token_of_parts(out, parts, 3);
}

int otr_spec_digest(char out[72], const char *canonical)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(canonical, strlen(canonical), md, &mdlen, sha256(), NULL))
        return -1;
    memcpy(out, "sha256:", 7);
    otr_hex(out + 7, md, sizeof(md));
    return 0;
}
