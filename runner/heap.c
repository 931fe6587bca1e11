/*
 * The binary's heap, when jemalloc is its allocator (CMake: OTR_JEMALLOC):
 * its options, and new memory on transparent huge pages. Page faults are
 * dear in a virtual machine (about 10 us each for a fresh 4 KiB page on the
 * bench's), and a 10k plan touches 50 MB.
 */
#include "heap.h"

#ifdef OTR_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#include <sys/mman.h>

/* jemalloc's options (MALLOC_CONF still has the last word): its arena on
 * transparent huge pages where the kernel gives them on request (madvise,
 * Debian's default): a 10k plan took 9,600 page faults, 2,600 with them, a
 * tenth of its time. One arena for the few threads (each keeps its own
 * cache): the pages are shared, and the peak is lower than with the eight
 * arenas of two processors. Each thread's cache keeps blocks up to 64 KiB
 * (32 by default): libyaml's reader takes 48 KiB for every file it parses
 * (2-3% of a 10k plan). */
const char *malloc_conf = "thp:always,metadata_thp:always,narenas:1,tcache_max:65536";

#define HUGE_PAGE ((size_t)2 * 1024 * 1024)

static extent_hooks_t *default_hooks;
static extent_hooks_t huge_hooks;

/* jemalloc's own mapping of new memory, on a huge page's boundary: the
 * kernel backs only whole aligned 2 MiB ranges with huge pages, and
 * jemalloc grows its heap by 2, 2.5, 3, 3.5 MiB... from wherever mmap puts
 * them (a 3 MiB range 8 KiB past a boundary has none). A 10k plan's faults:
 * 2,570 -> 1,800. */
static void *alloc_aligned(extent_hooks_t *hooks, void *addr, size_t size, size_t alignment,
                           bool *zero, bool *commit, unsigned arena)
{
    (void)hooks;
    if (!addr && size >= HUGE_PAGE && alignment < HUGE_PAGE)
        alignment = HUGE_PAGE;
    void *p = default_hooks->alloc(default_hooks, addr, size, alignment, zero, commit, arena);
    if (p && size >= HUGE_PAGE)
        (void)madvise(p, size, MADV_HUGEPAGE); /* a hint: refused, the pages stay small */
    return p;
}

void otr_heap_setup(void)
{
    size_t len = sizeof(default_hooks);
    extent_hooks_t *mine = &huge_hooks;
    if (mallctl("arena.0.extent_hooks", &default_hooks, &len, NULL, 0) != 0 || !default_hooks ||
        !default_hooks->alloc)
        return;
    huge_hooks = *default_hooks; /* the rest (split, merge, purge...) as they were */
    huge_hooks.alloc = alloc_aligned;
    (void)mallctl("arena.0.extent_hooks", NULL, NULL, &mine, sizeof(mine));
    /* and in steps of one huge page: a 3.5 MiB step has 1.5 MiB of small
     * pages past its last boundary (a 10k plan's faults: 1,800 -> 900) */
    size_t step = HUGE_PAGE;
    (void)mallctl("arena.0.retain_grow_limit", NULL, NULL, &step, sizeof(step));
}
#else
void otr_heap_setup(void)
{
}
#endif
