/* Threads for work that splits: a counter handed out under a lock. */
#include "util/parallel.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

int otr_threads(void)
{
    const char *env = getenv("OTA_RUNNER_THREADS");
    long n = env && *env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > OTR_MAX_THREADS ? OTR_MAX_THREADS : (int)n;
}

/* Iterations are taken this many at a time (one lock per batch). */
#define BATCH 64

typedef struct loop {
    size_t n, next;
    void (*fn)(size_t i, void *ctx);
    void *ctx;
    pthread_mutex_t mu;
} loop;

static void *run(void *arg)
{
    loop *l = arg;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        size_t from = l->next;
        l->next = from + BATCH < l->n ? from + BATCH : l->n;
        size_t to = l->next;
        pthread_mutex_unlock(&l->mu);
        if (from >= to)
            return NULL;
        for (size_t i = from; i < to; i++)
            l->fn(i, l->ctx);
    }
}

void otr_parallel_for(size_t n, size_t min_n, void (*fn)(size_t i, void *ctx), void *ctx)
{
    loop l = {.n = n, .fn = fn, .ctx = ctx};
    pthread_t t[OTR_MAX_THREADS];
    int started = 0;
    int want = n < min_n ? 1 : otr_threads();
    pthread_mutex_init(&l.mu, NULL);
    while (started + 1 < want && pthread_create(&t[started], NULL, run, &l) == 0)
        started++; /* (a thread that cannot start: fewer of them) */
    run(&l);
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&l.mu);
}
