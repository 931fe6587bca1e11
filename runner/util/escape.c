/* Untrusted text in each output format (see escape.h). */
#include "util/escape.h"

#include <string.h>

/* A forging character as text: \r, \t, \n, else \xNN or \uNNNN. */
static void visible(otr_buf *out, unsigned long cp)
{
    if (cp == '\r')
        otr_buf_puts(out, "\\r");
    else if (cp == '\t')
        otr_buf_puts(out, "\\t");
    else if (cp == '\n')
        otr_buf_puts(out, "\\n");
    else if (cp < 0x100)
        otr_buf_printf(out, "\\x%02lx", cp);
    else
        otr_buf_printf(out, "\\u%04lx", cp);
}

static int escaped_in_text(unsigned long cp, int color)
{
    return cp && cp != '\n' && !(color && cp == 0x1B);
}

void otr_text_sanitize(otr_buf *out, size_t start, int color)
{
    size_t n, at = start;
    /* most outputs have none: find the first before copying anything */
    while (at < out->len) {
        unsigned char c = (unsigned char)out->ptr[at];
        if ((c >= 0x20 && c < 0x7F) || c == '\n') { /* printable ASCII or a line break */
            at++;
            continue;
        }
        if (escaped_in_text(otr_forging_char(out->ptr + at, out->len - at, &n), color))
            break;
        at += n;
    }
    if (at >= out->len)
        return;
    otr_buf tail = OTR_BUF_INIT;
    for (size_t i = at; i < out->len; i += n) {
        unsigned long cp = otr_forging_char(out->ptr + i, out->len - i, &n);
        if (escaped_in_text(cp, color))
            visible(&tail, cp);
        else
            otr_buf_append(&tail, out->ptr + i, n);
    }
    out->len = at;
    otr_buf_append(out, tail.ptr ? tail.ptr : "", tail.len);
    otr_buf_free(&tail);
}

void otr_print_line(FILE *f, const char *prefix, const char *text)
{
    otr_buf line = OTR_BUF_INIT;
    otr_buf_printf(&line, "%s%s\n", prefix, text ? text : "");
    otr_text_sanitize(&line, strlen(prefix), 0);
    fputs(otr_buf_cstr(&line), f);
    otr_buf_free(&line);
}

void otr_md_cell(otr_buf *out, const char *s)
{
    size_t n, len = s ? strlen(s) : 0;
    for (size_t at = 0; at < len; at += n) {
        unsigned long cp = otr_forging_char(s + at, len - at, &n);
        char c = s[at];
        if (cp == '\n' || cp == '\r')
            otr_buf_putc(out, ' ');
        else if (cp)
            otr_buf_printf(out, "\\\\u%04lx", cp);
        else if (c == '<')
            otr_buf_puts(out, "&lt;");
        else if (c == '&')
            otr_buf_puts(out, "&amp;");
        else if (c == '@') /* a zero-width space keeps it from being a mention */
            otr_buf_puts(out, "@&#8203;");
        else if (n == 1 && strchr("|[]()!`\\", c))
            otr_buf_printf(out, "\\%c", c);
        else
            otr_buf_append(out, s + at, n);
    }
}

void otr_github_escape(otr_buf *out, const char *s, int property)
{
    size_t n, len = s ? strlen(s) : 0;
    for (size_t at = 0; at < len; at += n) {
        unsigned long cp = otr_forging_char(s + at, len - at, &n);
        char c = s[at];
        if (c == '%' || (property && (c == ':' || c == ',')) || (cp && cp < 0x80))
            otr_buf_printf(out, "%%%02X", (unsigned char)c);
        else if (cp)
            otr_buf_printf(out, "\\u%04lx", cp);
        else
            otr_buf_append(out, s + at, n);
    }
}

void otr_mermaid_text(otr_buf *out, const char *s)
{
    size_t n, len = s ? strlen(s) : 0;
    for (size_t at = 0; at < len; at += n) {
        unsigned long cp = otr_forging_char(s + at, len - at, &n);
        char c = s[at];
        if (cp || c == '`')
            otr_buf_putc(out, ' ');
        else if (c == '"')
            otr_buf_puts(out, "#quot;");
        else if (c == '<')
            otr_buf_puts(out, "#lt;");
        else if (c == '>')
            otr_buf_puts(out, "#gt;");
        else
            otr_buf_append(out, s + at, n);
    }
}
