/*
 * otr_buf: a growable byte buffer, always NUL-terminated, with a size cap.
 * The buffer owns its memory; release it with otr_buf_free. A zeroed otr_buf
 * (OTR_BUF_INIT) is an empty, valid buffer with the default cap.
 *
 * Invariants: ptr is NULL or holds len bytes and a NUL; len < size <= cap.
 * The failure is sticky (libgit2's git_str): after one append fails (no
 * memory, or the cap would be passed) every later append does nothing and
 * returns -1, so a sequence of appends is checked once, with otr_buf_failed,
 * and a message is never silently cut short. otr_buf_clear and otr_buf_free
 * reset it.
 */
#ifndef OTR_UTIL_BUF_H
#define OTR_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

#define OTR_BUF_DEFAULT_CAP ((size_t)256 * 1024 * 1024)

/* A result the caller must look at (curl's WARN_UNUSED_RESULT). */
#define OTR_MUST_USE __attribute__((warn_unused_result))

typedef struct otr_buf {
    char *ptr;
    size_t len;
    size_t size;
    size_t cap; /* 0 means OTR_BUF_DEFAULT_CAP */
    int failed; /* an append failed: see the invariants above */
} otr_buf;

#define OTR_BUF_INIT                                                                               \
    {                                                                                              \
        .ptr = NULL, .len = 0, .size = 0, .cap = 0, .failed = 0                                    \
    }

/* Appends; returns 0, or -1 when memory runs out, the cap would be passed or
 * an earlier append failed (the contents are then unchanged). */
int otr_buf_append(otr_buf *b, const void *data, size_t len);
/* Makes room for extra more bytes in one allocation of just that size (a
 * file of known size is not read into a doubled one); fails as an append. */
int otr_buf_reserve(otr_buf *b, size_t extra);
int otr_buf_puts(otr_buf *b, const char *s);
/* v in decimal ("%lld" without printf: the plan's text puts many numbers). */
int otr_buf_put_long(otr_buf *b, long long v);
/* s, then spaces up to width bytes ("%-*s"). */
int otr_buf_put_padded(otr_buf *b, const char *s, size_t width);
/* Inline: canonical JSON and the plan's text put a character at a time. */
static inline int otr_buf_putc(otr_buf *b, char c)
{
    if (!b->failed && b->len + 2 <= b->size && b->len < (b->cap ? b->cap : OTR_BUF_DEFAULT_CAP)) {
        b->ptr[b->len++] = c;
        b->ptr[b->len] = '\0';
        return 0;
    }
    return otr_buf_append(b, &c, 1);
}
/* One character written as a string where text is escaped (otr_buf_put_escaped). */
typedef struct otr_escape {
    char c;
    const char *with;
} otr_escape;
/* s (NULL: nothing) with each character that escapes lists (ended by {0})
 * written as its string, every other as it is. */
int otr_buf_put_escaped(otr_buf *b, const char *s, const otr_escape *escapes);
int otr_buf_printf(otr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int otr_buf_vprintf(otr_buf *b, const char *fmt, va_list ap);

/* Did an append fail since the last clear? */
int otr_buf_failed(const otr_buf *b);

/* Returns the NUL-terminated contents ("" for an empty buffer); never NULL. */
const char *otr_buf_cstr(const otr_buf *b);

/* Hands the memory to the caller (free() it) and resets the buffer; NULL
 * when an append failed (the buffer is freed) or memory runs out. */
char *otr_buf_detach(otr_buf *b);

void otr_buf_clear(otr_buf *b);
void otr_buf_free(otr_buf *b);

/* Secrets: overwritten with zeros in a way the compiler cannot drop
 * (OPENSSL_cleanse; a memset before free may be removed), then freed.
 * Each accepts NULL. */
void otr_wipe(void *p, size_t n);
void otr_buf_free_secret(otr_buf *b);
void otr_free_secret(char *s);

/* The character at s (len bytes left) when it is one that can forge how a
 * text reads: a C0 or C1 control (CR, LF, ESC...), DEL, a line or paragraph
 * separator, a bidirectional override or isolate; as its code point, its
 * length in *n. 0 for any other character (*n its length, 1 when the
 * encoding is cut short). */
unsigned long otr_forging_char(const char *s, size_t len, size_t *n);
/* Is s[0..len) well-formed UTF-8 (no overlong forms, no surrogates, at most
 * U+10FFFF)? */
int otr_utf8_valid(const char *s, size_t len);

/* The first forging character of s, its place in characters in *at (from
 * 1); 0 when there is none. */
unsigned long otr_forging_find(const char *s, size_t len, size_t *at);

/* url without the user name and password of its authority ("https://user:
 * secret@host/x" -> "https://host/x"), so that one is never stored or shown;
 * a text that is not SCHEME://... is copied as it is. free() it; NULL
 * without memory. */
char *otr_url_redact(const char *url);

/* Lower-case hex of len bytes: 2 * len digits and a NUL into out. */
void otr_hex(char *out, const unsigned char *in, size_t len);

#endif
