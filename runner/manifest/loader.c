/* Manifest files parsed on worker threads, moved into the set in order. */
#include "manifest/loader.h"

#include "util/parallel.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
    pthread_cond_t work; /* a job was queued, or the workers stop */
    pthread_cond_t done; /* a job is done */
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

/* Moves done jobs into the set, in order; with wait, until at most keep
 * are still in flight. */
static int absorb_ready(otr_manifest_loader *l, size_t keep, otr_error *err)
{
    while (l->absorbed < l->queued) {
        job *j = &l->ring[l->absorbed % OTR_LOADER_WINDOW];
        pthread_mutex_lock(&l->mu);
        while (!j->done && l->queued - l->absorbed > keep)
            pthread_cond_wait(&l->done, &l->mu);
        int done = j->done;
        pthread_mutex_unlock(&l->mu);
        if (!done)
            return 0;
        l->absorbed++;
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
    if (absorb_ready(l, OTR_LOADER_WINDOW - 1, err) < 0)
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
    pthread_cond_signal(&l->work);
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
