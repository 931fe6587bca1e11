/*
 * apply --notify: the records before the run, the events of what changed
 * queued in the state's outbox (saved with the change), then delivered to
 * every --notify URL once the state is saved; what each URL took is noted,
 * and an event every URL took leaves the outbox.
 */
#ifndef OTR_CLI_NOTIFYING_H
#define OTR_CLI_NOTIFYING_H

#include "apply/apply.h"
#include "cli/options.h"
#include "plan/plan.h"
#include "state/state.h"

typedef struct otr_notifying {
    otr_record *before; /* copies of the records whose kinds tell events */
    size_t n;
} otr_notifying;

/* Copies what the events compare against (nothing without --notify). */
OTR_MUST_USE int otr_notifying_before(otr_notifying *nt, const otr_state *s, const otr_options *o);
/* The events of the run (its records against nt; a failed apply, r may be
 * NULL) into s's outbox, each once; call before the state is saved. */
void otr_notifying_queue(otr_notifying *nt, otr_state *s, const otr_plan *p,
                         const otr_apply_result *r, const otr_options *o);
/* Delivers the outbox to every --notify URL; counts what went and what did
 * not (a warning each). Returns 1 when the outbox changed (save it again). */
int otr_notifying_send(otr_state *s, const otr_options *o, size_t *sent, size_t *failed);
void otr_notifying_free(otr_notifying *nt);

#endif
