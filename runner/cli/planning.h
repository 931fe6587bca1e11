/*
 * What plan and apply share: load the manifests, load and lock the state,
 * refresh from the service, make the plan. Every failure is printed here and
 * turned into the exit code the command returns. otr_planning owns it all;
 * free it with otr_planning_free.
 */
#ifndef OTR_CLI_PLANNING_H
#define OTR_CLI_PLANNING_H

#include "cli/load.h"
#include "cli/options.h"
#include "sync/refresh.h"
#include "cli/service.h"
#include "ota/ota.h"
#include "plan/plan.h"
#include "state/state.h"

/* The largest saved plan read (plan --out): a 100k-task fleet's is ~100 MB. */
#define OTR_SAVED_PLAN_MAX_BYTES ((size_t)1 << 30)

/* A plan saved by plan --out, read (apply FILE, show FILE); the error is
 * printed. 0, or the exit code. */
OTR_MUST_USE int otr_planning_read_plan(otr_plan **out, const char *path);

typedef struct otr_planning {
    otr_loaded loaded;
    int loaded_ok;
    otr_state *state;
    otr_creds_provider *creds; /* the run's, shared by the state's S3 client and the service */
    otr_service service;
    int service_open;
    otr_refresh_result refresh; /* what the service holds, for --refresh */
    int refreshed;
    otr_buf adopted; /* what a state that recorded nothing adopted (a line each) */
    size_t nadopted;
    otr_plan *plan;
    int64_t lock_wait_ms; /* taking the state's lock (and reading it) took this long */
} otr_planning;

/* Where the state is, from the options, with the run's credentials (made
 * once, in pl) and retries for an S3 state; returns an exit code. */
int otr_planning_where(otr_planning *pl, const otr_options *o, otr_state_where *w);
/* Loads the state and, when lock_for names the command ("apply"), locks it
 * for the run; NULL reads it without the lock. Returns an exit code (0 when
 * all is well). */
int otr_planning_open_state(otr_planning *pl, const otr_options *o, const char *lock_for);
/* Opens the service (once), and refuses a state made for another endpoint
 * or region (otr_planning_check_service); returns an exit code. */
int otr_planning_open_service(otr_planning *pl, const otr_options *o);
/* Refuses, unless --migrate-endpoint, a state whose tasks were made at
 * another endpoint or region than the options name; returns an exit code. */
int otr_planning_check_service(const otr_planning *pl, const otr_options *o);
/* Everything up to the plan; the state is locked for lock_for (NULL: read
 * without the lock, as plan does). A state that records nothing adopts what
 * the service holds of ours first (sync/adopt.h): the plan then shows those
 * as adopted, not as creates. Returns an exit code. */
int otr_planning_prepare(otr_planning *pl, const otr_options *o, const char *lock_for);
/* otr_planning_prepare without the lock, leaving the warning of uncommitted
 * files (and the check behind it, which runs on beside) to otr_loaded_warn:
 * plan renders in the meantime. */
int otr_planning_prepare_deferred(otr_planning *pl, const otr_options *o);
/* The guards apply enforces and plan warns of, from the options. */
otr_plan_guards otr_planning_guards(const otr_options *o);
/* {"repo", "ref", "commit", "path"} of the source, for the state file. */
cJSON *otr_planning_source_json(const otr_plan *p);
void otr_planning_free(otr_planning *pl);

/* The exit code of an error: 3 when the state is locked, else 1. */
int otr_exit_code_of(const otr_error *err);

#endif
