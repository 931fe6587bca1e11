/*
 * What the commands ask of ota-runner.yaml beyond --env (cli/environments.c):
 * the gates of rollouts that wait for another environment (spec.after).
 */
#ifndef OTR_CLI_ENVIRONMENTS_H
#define OTR_CLI_ENVIRONMENTS_H

#include "cli/options.h"
#include "kinds/manifest.h"

#include <cjson/cJSON.h>

/* For each rollout of set with spec.after, what that environment's state
 * (read without its lock) records of the rollout it waits for, as
 * otr_plan_options.gates wants it; *out NULL when no rollout waits. A state
 * that cannot be read is recorded as an error (the rollout waits). -1 with
 * the problem printed: no ota-runner.yaml, an environment it does not name,
 * or the run's own. */
OTR_MUST_USE int otr_envs_gates(const otr_options *o, const otr_manifest_set *set, cJSON **out);

#endif
