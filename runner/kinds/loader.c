/* Manifest files parsed on worker threads, moved into the set in order. */
#include "kinds/loader.h"

#include "util/parallel.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Jobs waiting before idle workers are woken (one wake-up per batch, not
 * one per file); a caller about to wait wakes them for fewer. */
#define OTR_LOADER_BATCH 16

/* One file in flight: what it is, and (once done) its part of the set. */
typedef struct job {
    size_t order;
    char *file;
    char *data;
    size_t len;
    otr_manifest_set part;
    otr_diags diags;
    otr_error err;
    int rc;
    int done; /* under the loader's lock */
} job;

struct otr_manifest_loader {
    otr_manifest_set *set;
    otr_diags *diags;
    int nthreads; /* 0: files are added on the caller's thread */
    pthread_t threads[OTR_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t work; /* jobs were queued, or the workers stop */
    pthread_cond_t done; /* the awaited job is done */
    const job *awaited;  /* the job the caller waits for, under the lock */
    job ring[OTR_LOADER_WINDOW];
    size_t queued, claimed, absorbed; /* jobs handed over, taken by a worker, moved */
    int stopping;
};

static void *worker(void *arg)
{
    otr_manifest_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stopping && l->claimed == l->queued)
            pthread_cond_wait(&l->work, &l->mu);
        if (l->stopping)
            break;
        job *j = &l->ring[l->claimed++ % OTR_LOADER_WINDOW];
        pthread_mutex_unlock(&l->mu);
        j->rc = otr_manifest_parse_file(&j->part, j->order, j->file, j->data, j->len, &j->diags,
                                        &j->err);
        pthread_mutex_lock(&l->mu);
        j->done = 1;
        if (l->awaited == j) /* one wake-up per wait, not one per file */
            pthread_cond_signal(&l->done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Workers wanted: threads, else otr_threads(); none for a handful of files
 * or a single processor. */
static int workers_for(size_t files, int threads)
{
    if (threads <= 0)
        threads = otr_threads();
    if (files < OTR_LOADER_MIN_FILES || threads <= 1)
        return 0;
    return threads > OTR_MAX_THREADS ? OTR_MAX_THREADS : threads;
}

otr_manifest_loader *otr_manifest_loader_new(otr_manifest_set *set, otr_diags *diags, size_t files,
                                             int threads)
{
    otr_manifest_loader *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->set = set;
    l->diags = diags;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->done, NULL);
    int want = workers_for(files, threads);
    while (l->nthreads < want && pthread_create(&l->threads[l->nthreads], NULL, worker, l) == 0)
        l->nthreads++; /* (a thread that cannot start: fewer workers) */
    return l;
}

static void job_clear(job *j)
{
    free(j->file);
    free(j->data);
    otr_manifest_set_free(&j->part);
    otr_diags_free(&j->diags);
    otr_error_clear(&j->err);
    memset(j, 0, sizeof(*j));
}

/* Moves a done job into the set, as otr_manifest_add_file would have. */
static int absorb(otr_manifest_loader *l, job *j, otr_error *err)
{
    int rc = j->rc;
    if (rc < 0) {
        *err = j->err;
        memset(&j->err, 0, sizeof(j->err));
    } else {
        rc = otr_manifest_set_absorb(l->set, j->order, j->file, &j->part, l->diags, &j->diags, err);
        if (rc == 1) /* the manifest limit falls in this file */
            rc = otr_manifest_add_file(l->set, j->order, j->file, j->data, j->len, l->diags, err);
    }
    job_clear(j);
    return rc;
}

/* Whether job n (counted from the first handed over) is done; with wait,
 * once it is. */
static int job_done(otr_manifest_loader *l, size_t n, int wait)
{
    const job *j = &l->ring[n % OTR_LOADER_WINDOW];
    pthread_mutex_lock(&l->mu);
    if (wait && !j->done && l->claimed < l->queued)
        pthread_cond_broadcast(&l->work); /* the jobs not yet announced */
    while (wait && !j->done) {
        l->awaited = j;
        pthread_cond_wait(&l->done, &l->mu);
    }
    l->awaited = NULL;
    int done = j->done;
    pthread_mutex_unlock(&l->mu);
    return done;
}

/* Moves done jobs into the set, in order, waiting until at most keep are
 * still in flight. The caller sleeps until the last job it needs is done
 * (jobs finish about in order), not once per job. */
static int absorb_ready(otr_manifest_loader *l, size_t keep, otr_error *err)
{
    size_t until = l->queued > keep ? l->queued - keep : 0; /* jobs to move before returning */
    if (until > l->absorbed)
        job_done(l, until - 1, 1);
    while (l->absorbed < l->queued && job_done(l, l->absorbed, l->absorbed < until)) {
        job *j = &l->ring[l->absorbed++ % OTR_LOADER_WINDOW];
        if (absorb(l, j, err) < 0)
            return -1;
    }
    return 0;
}

int otr_manifest_loader_add(otr_manifest_loader *l, size_t order, const char *file,
                            const char *data, size_t len, otr_error *err)
{
    if (!l->nthreads)
        return otr_manifest_add_file(l->set, order, file, data, len, l->diags, err);
    /* a full window is emptied by half before the next file goes in */
    size_t keep =
        l->queued - l->absorbed < OTR_LOADER_WINDOW ? OTR_LOADER_WINDOW : OTR_LOADER_WINDOW / 2;
    if (absorb_ready(l, keep, err) < 0)
        return -1;
    job *j = &l->ring[l->queued % OTR_LOADER_WINDOW];
    j->order = order;
    j->len = len;
    j->file = strdup(file);
    j->data = malloc(len ? len : 1);
    if (!j->file || !j->data) {
        job_clear(j);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    memcpy(j->data, data, len);
    pthread_mutex_lock(&l->mu);
    l->queued++;
    if (l->queued - l->claimed >= OTR_LOADER_BATCH) /* idle workers wake for a batch */
        pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int otr_manifest_loader_finish(otr_manifest_loader *l, otr_error *err)
{
    return absorb_ready(l, 0, err);
}

void otr_manifest_loader_free(otr_manifest_loader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nthreads; i++)
        pthread_join(l->threads[i], NULL);
    for (size_t i = 0; i < OTR_LOADER_WINDOW; i++)
        job_clear(&l->ring[i]);
    pthread_cond_destroy(&l->done);
    pthread_cond_destroy(&l->work);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
