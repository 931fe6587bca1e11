/* otr_buf: the one growable string type of the runner (see buf.h). */
#include "util/buf.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for extra more bytes and a NUL: doubling (appends stay linear), or
 * exactly that much. */
static int grow_by(otr_buf *b, size_t extra, int exact)
{
    size_t cap = b->cap ? b->cap : OTR_BUF_DEFAULT_CAP;
    if (b->failed)
        return -1;
    if (extra > cap || b->len > cap - extra) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->size)
        return 0;
    size_t size = exact ? need : b->size ? b->size : 64;
    while (size < need)
        size = size > SIZE_MAX / 2 ? need : size * 2;
    char *p = realloc(b->ptr, size);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->ptr = p;
    b->size = size;
    return 0;
}

static int grow(otr_buf *b, size_t extra)
{
    return grow_by(b, extra, 0);
}

int otr_buf_reserve(otr_buf *b, size_t extra)
{
    return grow_by(b, extra, 1);
}

int otr_buf_append(otr_buf *b, const void *data, size_t len)
{
    if (grow(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->ptr + b->len, data, len);
    b->len += len;
    b->ptr[b->len] = '\0';
    return 0;
}

int otr_buf_puts(otr_buf *b, const char *s)
{
    return otr_buf_append(b, s, strlen(s));
}

int otr_buf_put_long(otr_buf *b, long long v)
{
    char digits[24];
    size_t n = sizeof(digits);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        digits[--n] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        digits[--n] = '-';
    return otr_buf_append(b, digits + n, sizeof(digits) - n);
}

int otr_buf_put_padded(otr_buf *b, const char *s, size_t width)
{
    static const char spaces[] = "                                ";
    size_t len = strlen(s);
    if (otr_buf_append(b, s, len) < 0)
        return -1;
    for (; len < width; len += sizeof(spaces) - 1)
        if (otr_buf_append(b, spaces,
                           width - len < sizeof(spaces) - 1 ? width - len : sizeof(spaces) - 1) < 0)
            return -1;
    return 0;
}

int otr_buf_put_escaped(otr_buf *b, const char *s, const otr_escape *escapes)
{
    for (; s && *s; s++) {
        const otr_escape *e = escapes;
        while (e->c && e->c != *s)
            e++;
        if (e->c)
            otr_buf_puts(b, e->with);
        else
            otr_buf_putc(b, *s);
    }
    return b->failed ? -1 : 0;
}

int otr_buf_vprintf(otr_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    /* written at once where it fits (most calls); measured and written again
     * where it does not */
    size_t room = b->failed || !b->ptr ? 0 : b->size - b->len;
    int n = vsnprintf(room ? b->ptr + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        b->failed = 1;
    if (n < 0)
        return -1;
    if ((size_t)n >= room) {
        if (grow(b, (size_t)n) < 0) {
            if (b->ptr)
                b->ptr[b->len] = '\0';
            return -1;
        }
        vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    } else if (grow(b, (size_t)n) < 0) { /* within the room but past the cap */
        b->ptr[b->len] = '\0';
        return -1;
    }
    b->len += (size_t)n;
    return 0;
}

int otr_buf_printf(otr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = otr_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int otr_buf_failed(const otr_buf *b)
{
    return b->failed;
}

const char *otr_buf_cstr(const otr_buf *b)
{
    return b->ptr ? b->ptr : "";
}

char *otr_buf_detach(otr_buf *b)
{
    if (b->failed) {
        otr_buf_free(b);
        return NULL;
    }
    char *p = b->ptr;
    if (!p)
        p = calloc(1, 1);
    b->ptr = NULL;
    b->len = b->size = 0;
    return p;
}

void otr_buf_clear(otr_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

void otr_buf_free(otr_buf *b)
{
    if (!b)
        return;
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->size = 0;
    b->failed = 0;
}

void otr_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

void otr_buf_free_secret(otr_buf *b)
{
    if (!b)
        return;
    otr_wipe(b->ptr, b->size);
    otr_buf_free(b);
}

void otr_free_secret(char *s)
{
    if (s)
        otr_wipe(s, strlen(s));
    free(s);
}

unsigned long otr_forging_char(const char *s, size_t len, size_t *n)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned long cp = p[0];
    *n = cp < 0x80 ? 1 : cp < 0xE0 ? 2 : cp < 0xF0 ? 3 : 4;
    if (*n > len) {
        *n = 1;
        return 0;
    }
    if (*n == 2)
        cp = ((cp & 0x1F) << 6) | (p[1] & 0x3F);
    else if (*n == 3)
        cp = ((cp & 0x0F) << 12) | ((unsigned long)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    else if (*n == 4)
        return 0;
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
        (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
        return cp;
    return 0;
}

int otr_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned long cp = *p;
        size_t n = cp < 0x80                 ? 1
                   : cp >= 0xC2 && cp < 0xE0 ? 2
                   : cp >= 0xE0 && cp < 0xF0 ? 3
                   : cp >= 0xF0 && cp < 0xF5 ? 4
                                             : 0;
        if (!n || n > (size_t)(end - p))
            return 0;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (n == 3)
            cp &= 0xFFFF;
        if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 4 && ((cp & 0x1FFFFF) < 0x10000 || (cp & 0x1FFFFF) > 0x10FFFF)))
            return 0;
        p += n;
    }
    return 1;
}

unsigned long otr_forging_find(const char *s, size_t len, size_t *at)
{
    size_t n;
    *at = 1;
    for (size_t i = 0; i < len; i += n, (*at)++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F) { /* printable ASCII, most of any text: never one */
            n = 1;
            continue;
        }
        unsigned long cp = otr_forging_char(s + i, len - i, &n);
        if (cp)
            return cp;
    }
    return 0;
}

char *otr_url_redact(const char *url)
{
    const char *auth = url ? strstr(url, "://") : NULL;
    if (!url)
        return NULL;
    if (!auth || strcspn(url, "/?#") < (size_t)(auth - url))
        return strdup(url);
    auth += 3;
    size_t len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + len; p++)
        if (*p == '@')
            at = p; /* the last: a password may hold one */
    if (!at)
        return strdup(url);
    otr_buf b = OTR_BUF_INIT;
    otr_buf_append(&b, url, (size_t)(auth - url));
    otr_buf_puts(&b, at + 1);
    return otr_buf_detach(&b);
}

void otr_hex(char *out, const unsigned char *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}
