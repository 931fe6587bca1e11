/*
 * Errors and diagnostics.
 *
 * otr_error carries one failure (a code and a message) out of a function that
 * returns -1. otr_diags collects many located problems (file, line, column,
 * field path, message) so validation can report every error, not the first.
 * Both own their strings; release them with otr_error_clear / otr_diags_free.
 */
#ifndef OTR_UTIL_ERROR_H
#define OTR_UTIL_ERROR_H

#include "util/buf.h"

#include <stddef.h>

typedef enum otr_error_code {
    OTR_OK = 0,
    OTR_ERR_GENERIC, /* anything else */
    OTR_ERR_USAGE,   /* bad command line */
    OTR_ERR_NOMEM,
    OTR_ERR_IO,
    OTR_ERR_NOTFOUND, /* repository, ref, path or file missing */
    OTR_ERR_INVALID,  /* input failed validation */
    OTR_ERR_LOCKED,   /* another run holds the state lock */
} otr_error_code;

typedef struct otr_error {
    otr_error_code code;
    char *message;
} otr_error;

#define OTR_ERROR_INIT                                                                             \
    {                                                                                              \
        .code = OTR_OK, .message = NULL                                                            \
    }

/* Sets the error (replacing any earlier one) and returns -1, so callers can
 * write `return otr_error_set(err, ...)`. err may be NULL. */
int otr_error_set(otr_error *err, otr_error_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Puts "prefix: " before the current message. */
int otr_error_prefix(otr_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *otr_error_message(const otr_error *err);
void otr_error_clear(otr_error *err);

typedef enum otr_severity { OTR_SEV_ERROR, OTR_SEV_WARNING } otr_severity;

typedef struct otr_diag {
    otr_severity severity;
    char *file;    /* path as the user knows it; may be NULL */
    unsigned line; /* 1-based; 0 when unknown */
    unsigned col;  /* 1-based; 0 when unknown */
    char *field;   /* "spec.OtaType"; may be NULL */
    char *message;
    size_t order; /* file order key, see otr_diags_sort */
    size_t seq;   /* arrival order, keeps the sort stable */
} otr_diag;

#define OTR_DIAGS_DEFAULT_LIMIT 10000

typedef struct otr_diags {
    otr_diag *items;
    size_t count;
    size_t alloc;
    size_t errors;
    size_t warnings;
    size_t limit;   /* stop recording past this many (0: OTR_DIAGS_DEFAULT_LIMIT) */
    size_t dropped; /* problems past the limit, counted only */
} otr_diags;

#define OTR_DIAGS_INIT                                                                             \
    {                                                                                              \
        .items = NULL, .count = 0, .alloc = 0, .errors = 0, .warnings = 0, .limit = 0,             \
        .dropped = 0                                                                               \
    }

/* Records a problem; the strings are copied. order groups diagnostics by
 * file (its index in the sorted file list). Returns -1 only without memory. */
int otr_diags_add(otr_diags *d, otr_severity sev, size_t order, const char *file, unsigned line,
                  unsigned col, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
/* Moves every problem of from to the end of d (past d's limit: counted as
 * dropped), leaving from empty; -1 without memory (from then still holds
 * what was not moved, and d's counts are unchanged). */
OTR_MUST_USE int otr_diags_absorb(otr_diags *d, otr_diags *from);
/* Stable sort by (order, line, col): "in file order". */
void otr_diags_sort(otr_diags *d);
void otr_diags_free(otr_diags *d);

/* "file:line:col: error: field: message" (parts that are unknown are left out). */
int otr_diag_format(const otr_diag *dg, otr_buf *out);

#endif
