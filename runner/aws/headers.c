/* An ordered list of HTTP headers. */
#include "aws/headers.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int otr_headers_add(otr_headers *h, const char *name, const char *value)
{
    if (OTR_GROW(h->items, h->count, h->alloc, 8) < 0)
        return -1;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    h->items[h->count].name = n;
    h->items[h->count].value = v;
    h->count++;
    return 0;
}

void otr_headers_remove(otr_headers *h, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; i < h->count; i++) {
        if (strcasecmp(h->items[i].name, name) == 0) {
            free(h->items[i].name);
            free(h->items[i].value);
        } else {
            h->items[j++] = h->items[i];
        }
    }
    h->count = j;
}

int otr_headers_set(otr_headers *h, const char *name, const char *value)
{
    otr_headers_remove(h, name);
    return otr_headers_add(h, name, value);
}

const char *otr_headers_get(const otr_headers *h, const char *name)
{
    for (size_t i = 0; i < h->count; i++)
        if (strcasecmp(h->items[i].name, name) == 0)
            return h->items[i].value;
    return NULL;
}

void otr_headers_free(otr_headers *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->count; i++) {
        free(h->items[i].name);
        free(h->items[i].value);
    }
    free(h->items);
    memset(h, 0, sizeof(*h));
}
