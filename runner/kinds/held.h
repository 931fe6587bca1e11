/*
 * What the service holds, read by a kind: the spec a get's answer describes,
 * and whether a resource carries the body ota-runner sends for a manifest
 * (adoption, import). Above kind.c and tags.c: it reads tags by the kind's
 * description.
 */
#ifndef OTR_KINDS_HELD_H
#define OTR_KINDS_HELD_H

#include "kinds/kind.h"

/* The spec a get's answer describes (state import): the fields of the
 * kind's spec schema, but for references, in the schema's (sorted) order. */
cJSON *otr_kind_spec_of(const otr_kind *k, const cJSON *fields);

/* Does a resource the service holds (fields: a get's answer) carry body as
 * ota-runner sends it for a manifest at revision: its ota-runner:revision
 * tag that revision, and every field the same but those its update call
 * sets (ota-runner may have moved them since) and the ids its references
 * resolve to? 1 yes, 0 no (why names the fields that differ), -1 without
 * memory. A tagged resource that does not is not ota-runner's to adopt: a
 * tag can be copied by anyone who can create a task. */
OTR_MUST_USE int otr_kind_holds_body(const otr_kind *k, const cJSON *body, long revision,
                                     const cJSON *fields, otr_buf *why);

#endif
