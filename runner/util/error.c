/* Errors (one failure) and diagnostics (many located problems). */
#include "util/error.h"
#include "util/alloc.h"

#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int otr_error_set(otr_error *err, otr_error_code code, const char *fmt, ...)
{
    if (!err)
        return -1;
    otr_buf b = OTR_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    otr_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    free(err->message);
    err->code = code;
    err->message = otr_buf_detach(&b);
    return -1;
}

int otr_error_prefix(otr_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    otr_buf b = OTR_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    otr_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    otr_buf_printf(&b, ": %s", err->message ? err->message : "unknown error");
    free(err->message);
    err->message = otr_buf_detach(&b);
    if (err->code == OTR_OK)
        err->code = OTR_ERR_GENERIC;
    return -1;
}

const char *otr_error_message(const otr_error *err)
{
    return err && err->message ? err->message : "unknown error";
}

void otr_error_clear(otr_error *err)
{
    if (!err)
        return;
    free(err->message);
    err->message = NULL;
    err->code = OTR_OK;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int otr_diags_add(otr_diags *d, otr_severity sev, size_t order, const char *file, unsigned line,
                  unsigned col, const char *field, const char *fmt, ...)
{
    if (sev == OTR_SEV_ERROR)
        d->errors++;
    else
        d->warnings++;
    size_t limit = d->limit ? d->limit : OTR_DIAGS_DEFAULT_LIMIT;
    if (d->count >= limit) {
        d->dropped++;
        return 0;
    }
    if (OTR_GROW(d->items, d->count, d->alloc, 16) < 0)
        return -1;
    otr_buf msg = OTR_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    otr_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    otr_diag *dg = &d->items[d->count++];
    dg->severity = sev;
    dg->file = dup_or_null(file);
    dg->line = line;
    dg->col = col;
    dg->field = dup_or_null(field);
    dg->message = otr_buf_detach(&msg);
    dg->order = order;
    dg->seq = d->count - 1;
    return 0;
}

int otr_diags_absorb(otr_diags *d, otr_diags *from)
{
    size_t limit = d->limit ? d->limit : OTR_DIAGS_DEFAULT_LIMIT;
    size_t room = d->count < limit ? limit - d->count : 0;
    size_t take = from->count < room ? from->count : room;
    if (d->count + take > d->alloc &&
        otr_grow(&d->items, &d->alloc, d->count + take, sizeof(*d->items), 16) < 0)
        return -1;
    for (size_t i = 0; i < take; i++) {
        d->items[d->count] = from->items[i];
        d->items[d->count].seq = d->count;
        d->count++;
    }
    from->count -= take;
    if (from->count) /* past the limit: freed below (an empty list may have no items) */
        memmove(from->items, from->items + take, from->count * sizeof(*from->items));
    d->errors += from->errors;
    d->warnings += from->warnings;
    d->dropped += from->dropped + from->count;
    otr_diags_free(from);
    return 0;
}

static int diag_cmp(const void *pa, const void *pb)
{
    const otr_diag *a = pa, *b = pb;
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void otr_diags_sort(otr_diags *d)
{
    if (d->count > 1)
        qsort(d->items, d->count, sizeof(*d->items), diag_cmp);
}

void otr_diags_free(otr_diags *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].file);
        free(d->items[i].field);
        free(d->items[i].message);
    }
    free(d->items);
    memset(d, 0, sizeof(*d));
}

int otr_diag_format(const otr_diag *dg, otr_buf *out)
{
    int rc = 0;
    if (dg->file) {
        rc |= otr_buf_puts(out, dg->file);
        if (dg->line) {
            rc |= otr_buf_printf(out, ":%u", dg->line);
            if (dg->col)
                rc |= otr_buf_printf(out, ":%u", dg->col);
        }
        rc |= otr_buf_puts(out, ": ");
    }
    rc |= otr_buf_puts(out, dg->severity == OTR_SEV_ERROR ? "error: " : "warning: ");
    if (dg->field && dg->field[0])
        rc |= otr_buf_printf(out, "%s: ", dg->field);
    rc |= otr_buf_puts(out, dg->message);
    return rc ? -1 : 0;
}
