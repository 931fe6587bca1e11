/*
 * The tags ota-runner puts on what it creates, so that a lost state can be
 * rebuilt from the service: ota-runner:address (KIND/NAME of the manifest)
 * and ota-runner:revision, and the ClientToken's generation when it is not
 * the manifest's own (ota-runner:generation). The prefix ota-runner: is reserved: a manifest
 * may not use it, and may use at most OTR_TAGS_USER_MAX tags, leaving room.
 */
#ifndef OTR_KINDS_TAGS_H
#define OTR_KINDS_TAGS_H

#include "kinds/kind.h"

#define OTR_TAG_PREFIX "ota-runner:"
#define OTR_TAG_ADDRESS "ota-runner:address"
#define OTR_TAG_REVISION "ota-runner:revision"
#define OTR_TAG_GENERATION "ota-runner:generation" /* only above 0 (state/state.h) */
/* Tags a resource may have (the service model's TagsMap), and what is left
 * of them to a manifest. */
#define OTR_TAGS_MAX 50
#define OTR_TAGS_RESERVED 3
#define OTR_TAGS_USER_MAX (OTR_TAGS_MAX - OTR_TAGS_RESERVED)

/* Checks a manifest's tags (the object at field, "spec.Tags"): no reserved
 * key, at most OTR_TAGS_USER_MAX; problems go to report. */
void otr_tags_check(const cJSON *tags, const char *field, otr_kind_report_fn report, void *ctx);

/* A copy of body with ota-runner's tags for the manifest owner/name at
 * revision (and a token's generation, when above 0) added to its key
 * tags_key; NULL without memory. */
OTR_MUST_USE cJSON *otr_tags_add(const cJSON *body, const char *tags_key, const otr_kind *owner,
                                 const char *name, long revision, unsigned generation);

/* The generation a resource's tags give its token (0: none, or not one). */
unsigned otr_tags_generation(const cJSON *tags);

/* Removes ota-runner's tags from tags (a resource's, as the service holds
 * them), and tags_key itself from spec when nothing is left of it. */
void otr_tags_strip(cJSON *spec, const char *tags_key);

/* The manifest a resource's tags name: its kind, name (inside tags) and
 * revision; 0 when they name none (not ota-runner's, or unknown kind). */
int otr_tags_owner(const cJSON *tags, const otr_kind **kind, const char **name, long *revision);

#endif
