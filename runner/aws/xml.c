/* Finding an element's text in S3's XML answers (see xml.h). */
#include "aws/xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first occurrence of needle in hay[0, len), or NULL. */
static const char *find(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, n))
            return hay + i;
    return NULL;
}

/* Appends the character reference or entity at s[0, len) ('&' to ';'); -1
 * when it is none of XML's. */
static int entity(otr_buf *out, const char *s, size_t len)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
        if (len == strlen(named[i].name) && !memcmp(s, named[i].name, len))
            return otr_buf_putc(out, named[i].c);
    if (len < 4 || s[1] != '#')
        return -1;
    unsigned long cp = 0;
    int hex = s[2] == 'x', digits = 0;
    for (size_t i = hex ? 3 : 2; i + 1 < len; i++, digits++) {
        const char c = s[i];
        int d = c >= '0' && c <= '9'          ? c - '0'
                : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                              : -1;
        if (d < 0 || cp > 0x10FFFF)
            return -1;
        cp = cp * (hex ? 16 : 10) + (unsigned long)d;
    }
    if (!digits || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    /* UTF-8 */
    if (cp < 0x80)
        return otr_buf_putc(out, (char)cp);
    if (cp < 0x800)
        return otr_buf_putc(out, (char)(0xC0 | (cp >> 6))) |
               otr_buf_putc(out, (char)(0x80 | (cp & 0x3F)));
    if (cp < 0x10000)
        return otr_buf_putc(out, (char)(0xE0 | (cp >> 12))) |
               otr_buf_putc(out, (char)(0x80 | ((cp >> 6) & 0x3F))) |
               otr_buf_putc(out, (char)(0x80 | (cp & 0x3F)));
    return otr_buf_putc(out, (char)(0xF0 | (cp >> 18))) |
           otr_buf_putc(out, (char)(0x80 | ((cp >> 12) & 0x3F))) |
           otr_buf_putc(out, (char)(0x80 | ((cp >> 6) & 0x3F))) |
           otr_buf_putc(out, (char)(0x80 | (cp & 0x3F)));
}

/* Decodes text[0, len) into out; -1 on a bad reference, a '<' or no memory. */
static int decode(otr_buf *out, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '<')
            return -1;
        if (text[i] != '&') {
            if (otr_buf_putc(out, text[i]) < 0)
                return -1;
            continue;
        }
        const char *semi = memchr(text + i, ';', len - i);
        if (!semi || entity(out, text + i, (size_t)(semi - text - i) + 1) < 0)
            return -1;
        i = (size_t)(semi - text);
    }
    return otr_buf_failed(out) ? -1 : 0;
}

char *otr_xml_next(const char *body, size_t len, size_t *pos, const char *name)
{
    char open[72], close[72];
    if (!body || *pos > len || strlen(name) > 64)
        return NULL;
    snprintf(open, sizeof(open), "<%s>", name);
    snprintf(close, sizeof(close), "</%s>", name);
    const char *a = find(body + *pos, len - *pos, open);
    if (!a)
        return NULL;
    a += strlen(open);
    const char *b = find(a, len - (size_t)(a - body), close);
    if (!b)
        return NULL;
    otr_buf out = OTR_BUF_INIT;
    if (otr_buf_puts(&out, "") < 0 || decode(&out, a, (size_t)(b - a)) < 0) {
        otr_buf_free(&out);
        return NULL;
    }
    *pos = (size_t)(b - body) + strlen(close);
    return otr_buf_detach(&out);
}

char *otr_xml_first(const char *body, size_t len, const char *name)
{
    size_t pos = 0;
    return otr_xml_next(body, len, &pos, name);
}
