/*
 * Environments: the optional file ota-runner.yaml at the root of the fleet's
 * repository names the units a fleet is split into, each its own region,
 * credentials, manifests and state (so its own lock), for `--env` and for a
 * CI engine's fan-out (`ota-runner envs`):
 *
 *   apiVersion: ota-runner/v1
 *   kind: Environments
 *   environments:
 *     - name: staging                 # [a-z0-9][a-z0-9-]*, at most 63
 *       region: eu-west-1
 *       profile: fleet-staging        # optional: a profile of ~/.aws/config
 *       role: arn:aws:iam::...:role/x # optional: assumed with the profile's (or the chain's)
 *       paths: [manifests/shared, manifests/staging]
 *       state: s3://acme-ota-state/staging/state.json
 *       endpoint: https://...         # optional: the service's endpoint
 *       labels: {stage: pre-production}
 *
 * otr_envs owns what it holds; free it with otr_envs_free.
 */
#ifndef OTR_ENVS_ENVS_H
#define OTR_ENVS_ENVS_H

#include "util/buf.h"
#include "util/error.h"

#include <stddef.h>

#define OTR_ENVS_FILE "ota-runner.yaml"
#define OTR_ENVS_MAX_FILE ((size_t)1024 * 1024)
#define OTR_ENVS_MAX 1000

typedef struct otr_env_label {
    char *key, *value;
} otr_env_label;

typedef struct otr_env {
    char *name, *region, *profile, *role, *state, *endpoint;
    char *path; /* the paths joined by ':', as --path reads them */
    otr_env_label *labels;
    size_t nlabels;
    unsigned line;
} otr_env;

typedef struct otr_envs {
    otr_env *items;
    size_t count;
} otr_envs;

/* Reads the file's text; every problem goes to diags as file:line:col.
 * -1 when there is one (or memory runs out: err). */
OTR_MUST_USE int otr_envs_parse(otr_envs *out, const char *file, const char *text, size_t len,
                                otr_diags *diags, otr_error *err);

/* The environments sel picks, in the file's order: "all", a name, or labels
 * "KEY=VALUE[,KEY=VALUE...]" (each must match). *picked is a new array of
 * indexes (free it); an empty pick, or an unknown name, is an error naming
 * what there is. */
OTR_MUST_USE int otr_envs_select(const otr_envs *e, const char *sel, size_t **picked, size_t *n,
                                 otr_error *err);

/* Is sel a single environment's name (not "all" nor labels)? */
int otr_envs_is_name(const char *sel);

void otr_envs_free(otr_envs *e);

#endif
