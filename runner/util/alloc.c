/* Growing an array (alloc.h). */
#include "util/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int otr_grow(void *slot, size_t *alloc, size_t need, size_t elem, size_t first)
{
    void *items, *grown;
    if (need <= *alloc)
        return 0;
    size_t n = *alloc ? *alloc : (first ? first : 1);
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return -1;
        n *= 2;
    }
    if (!elem || n > SIZE_MAX / elem)
        return -1;                       /* no item has size 0 */
    memcpy(&items, slot, sizeof(items)); /* the caller's T *, whatever T */
    if (!(grown = realloc(items, n * elem)))
        return -1;
    memcpy(slot, &grown, sizeof(grown));
    *alloc = n;
    return 0;
}

int otr_index_add(size_t **items, size_t *n, size_t v)
{
    for (size_t i = 0; i < *n; i++)
        if ((*items)[i] == v)
            return 0;
    size_t *grown = realloc(*items, (*n + 1) * sizeof(**items));
    if (!grown)
        return -1;
    *items = grown;
    grown[(*n)++] = v;
    return 0;
}
