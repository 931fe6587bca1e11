/*
 * Work spread over threads: how many the machine offers, and a loop whose
 * iterations run on several of them.
 */
#ifndef OTR_UTIL_PARALLEL_H
#define OTR_UTIL_PARALLEL_H

#include <stddef.h>

/* Threads at most, whatever the machine has. */
#define OTR_MAX_THREADS 8

/* Threads to use: OTA_RUNNER_THREADS when set, else one per processor
 * online; from 1 to OTR_MAX_THREADS. */
int otr_threads(void);

/* Calls fn(i, ctx) for every i below n, on up to otr_threads() threads
 * (the caller's among them; on it alone when n is below min_n): each i
 * once, in no particular order. fn must touch nothing another i touches. */
void otr_parallel_for(size_t n, size_t min_n, void (*fn)(size_t i, void *ctx), void *ctx);

#endif
