/*
 * One way to grow an array (git's ALLOC_GROW): doubling from a first size,
 * with the overflow check in one place. "Growing an array using realloc()
 * is error prone and boring."
 */
#ifndef OTR_UTIL_ALLOC_H
#define OTR_UTIL_ALLOC_H

#include "util/buf.h"

#include <stddef.h>

/* Grows the array whose pointer is at slot (elem bytes an item) to hold at
 * least need items (nothing when it does): *alloc doubled from first (or
 * from itself). 0, or -1
 * without memory or when the size would overflow (the array and *alloc
 * unchanged, still the caller's). */
OTR_MUST_USE int otr_grow(void *slot, size_t *alloc, size_t need, size_t elem, size_t first);

/* Room for one more item after the nr items of array items (allocated for
 * alloc): 0, or -1 as otr_grow. */
#define OTR_GROW(items, nr, alloc, first)                                                          \
    ((nr) < (alloc) ? 0 : otr_grow(&(items), &(alloc), (nr) + 1, sizeof(*(items)), (first)))

/* Adds v to the set of indexes *items (*n of them, in the order added)
 * unless it is there already: 0, or -1 without memory (the set unchanged).
 * For the small sets of a graph's edges. */
OTR_MUST_USE int otr_index_add(size_t **items, size_t *n, size_t v);

#endif
