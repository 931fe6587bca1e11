/*
 * Executing a plan: each action becomes a short sequence of calls (a replace
 * is DeleteOtaTask then CreateOtaTask; a resumed update or delete first asks
 * GetOtaTask), every mutating call journaled before it is sent and after it
 * answers. Names run concurrently, at most `parallelism` at a time; one name's
 * calls stay in order. A failure does not stop the others unless fail_fast.
 * The caller saves the state's snapshot afterwards.
 */
#ifndef OTR_APPLY_APPLY_H
#define OTR_APPLY_APPLY_H

#include "aws/client.h"
#include "plan/plan.h"
#include "state/state.h"

typedef struct otr_apply_failure {
    char *name;
    char *description; /* "CreateOtaTask (x): HTTP 400 ValidationException: ..." */
} otr_apply_failure;

typedef struct otr_apply_stats {
    size_t total, done, failed;
    size_t created, updated, replaced, deleted, resumed;
    int64_t elapsed_ms;
} otr_apply_stats;

typedef void (*otr_apply_progress_fn)(const otr_apply_stats *st, void *ctx);

typedef struct otr_apply_options {
    int parallelism; /* 0: 8 */
    int fail_fast;
    otr_apply_progress_fn progress;
    void *progress_ctx;
} otr_apply_options;

typedef struct otr_apply_result {
    otr_apply_stats stats;
    otr_apply_failure *failures;
    size_t nfailures;
    char *stopped; /* why the run stopped early (journal failure, --fail-fast), or NULL */
} otr_apply_result;

/* Runs every change of the plan. Returns -1 only when the run could not be
 * carried out at all; failed actions are in r. */
int otr_apply_run(otr_aws_client *c, otr_state *s, const otr_plan *p, const otr_apply_options *o,
                  otr_apply_result *r, otr_error *err);

void otr_apply_result_clear(otr_apply_result *r);

#endif
