/*
 * otr_headers: an ordered list of HTTP header (name, value) pairs, as sent.
 * The list owns copies of its strings; free it with otr_headers_free.
 */
#ifndef OTR_AWS_HEADERS_H
#define OTR_AWS_HEADERS_H

#include <stddef.h>

typedef struct otr_header {
    char *name;
    char *value;
} otr_header;

typedef struct otr_headers {
    otr_header *items;
    size_t count;
    size_t alloc;
} otr_headers;

#define OTR_HEADERS_INIT                                                                           \
    {                                                                                              \
        .items = NULL, .count = 0, .alloc = 0                                                      \
    }

int otr_headers_add(otr_headers *h, const char *name, const char *value);
/* Replaces every header of that name (case-insensitive) with one value. */
int otr_headers_set(otr_headers *h, const char *name, const char *value);
/* The first value of that name (case-insensitive), or NULL. */
const char *otr_headers_get(const otr_headers *h, const char *name);
void otr_headers_remove(otr_headers *h, const char *name);
void otr_headers_free(otr_headers *h);

#endif
