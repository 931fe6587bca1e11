/*
 * How the kinds that plan themselves behave (a staged rollout), above the
 * plan: each kind's description is in kinds/, its behaviour here. The plan
 * gets them from its caller (otr_plan_options.behaviours); sync/ and cli/
 * look a kind's up.
 */
#ifndef OTR_BEHAVIOUR_BEHAVIOUR_H
#define OTR_BEHAVIOUR_BEHAVIOUR_H

#include "plan/plan.h"

extern const otr_kind_behaviour otr_behaviour_ota_rollout;

/* Every behaviour, NULL-ended (for otr_plan_options.behaviours). */
extern const otr_kind_behaviour *const otr_behaviours[];

/* The behaviour of kind k, or NULL for a kind that does not plan itself. */
const otr_kind_behaviour *otr_behaviour_of(const otr_kind *k);

#endif
