/* The binary's heap (runner/heap.c). */
#ifndef OTR_HEAP_H
#define OTR_HEAP_H

/* With jemalloc: new memory on huge pages' boundaries. Before any thread. */
void otr_heap_setup(void);

#endif
