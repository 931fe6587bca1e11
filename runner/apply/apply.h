/*
 * Executing a plan: each address becomes a node with a short chain of calls
 * (a task's replace is DeleteOtaTask then CreateOtaTask; a resumed update or
 * delete first asks the service with a get), every mutating call journaled
 * before it is sent and after it answers, with the calls of its kind
 * (kinds/kind.h). A node waits for the nodes its actions depend on (a
 * configuration before the tasks that refer to it; an old configuration's
 * delete after the tasks moved away); the others run concurrently, at most
 * `parallelism` at a time. A failure does not stop the others unless
 * fail_fast; what waits for a failed node is not started, and says why.
 *
 * A stop (--fail-fast, a signal, a journal that cannot be written) starts no
 * new name, but a name whose chain has started is carried to its end or to a
 * failure that says where it stopped: a replace never stops between its
 * delete and its create by choice. The caller saves the state's snapshot
 * afterwards.
 */
#ifndef OTR_APPLY_APPLY_H
#define OTR_APPLY_APPLY_H

#include "aws/client.h"
#include "plan/plan.h"
#include "state/state.h"

typedef struct otr_apply_failure {
    char *name;        /* the address, for people */
    char *description; /* "CreateOtaTask (x): HTTP 400 ValidationException: ..." */
} otr_apply_failure;

typedef struct otr_apply_stats {
    size_t total, done, failed, not_started;
    size_t created, updated, replaced, deleted, resumed;
    size_t retired; /* deletes refused as in use: kept, retired, for a later run */
    int64_t elapsed_ms;
} otr_apply_stats;

typedef void (*otr_apply_progress_fn)(const otr_apply_stats *st, void *ctx);

/* Nonzero (a signal number) once the run is asked to stop. */
typedef int (*otr_apply_interrupted_fn)(void *ctx);

typedef struct otr_apply_options {
    int parallelism; /* 0: 8 */
    int fail_fast;
    otr_apply_progress_fn progress;
    void *progress_ctx;
    otr_apply_interrupted_fn interrupted; /* NULL: never */
    void *interrupted_ctx;
} otr_apply_options;

#define OTR_APPLY_OPTIONS_INIT                                                                     \
    {                                                                                              \
        .parallelism = 0, .fail_fast = 0, .progress = NULL, .progress_ctx = NULL,                  \
        .interrupted = NULL, .interrupted_ctx = NULL                                               \
    }

typedef struct otr_apply_result {
    otr_apply_stats stats;
    otr_apply_failure *failures; /* one per failed name, saying where its chain stopped */
    size_t nfailures;
    char **not_started; /* addresses left for the next run by a stop */
    size_t nnot_started;
    char **notes; /* what went otherwise than planned but is no failure (an old
                     configuration still in use, kept retired) */
    size_t nnotes;
    char *stopped; /* why the run stopped early (journal failure, --fail-fast, a signal), or NULL */
    int signal;    /* the signal that stopped it, or 0 */
} otr_apply_result;

/* Where apply's calls go: the AWS client (otr_apply_run), or a stand-in
 * that answers them (the unit tests). submit queues a call; run answers every
 * queued call, and those their callbacks queue, calling each one's done, and
 * after each round of answers the idle function set (NULL: after each). */
typedef struct otr_apply_transport {
    void (*submit)(void *ctx, otr_aws_call *call);
    int (*run)(void *ctx, otr_error *err);
    void (*set_idle)(void *ctx, void (*fn)(void *arg), void *arg); /* may be NULL */
    void *ctx;
} otr_apply_transport;

/* Runs every change of the plan. Returns -1 only when the run could not be
 * carried out at all; failed actions are in r. */
OTR_MUST_USE int otr_apply_run(otr_aws_client *c, otr_state *s, const otr_plan *p,
                               const otr_apply_options *o, otr_apply_result *r, otr_error *err);
/* The same through another transport. */
OTR_MUST_USE int otr_apply_run_on(const otr_apply_transport *t, otr_state *s, const otr_plan *p,
                                  const otr_apply_options *o, otr_apply_result *r, otr_error *err);

void otr_apply_result_clear(otr_apply_result *r);

#endif
