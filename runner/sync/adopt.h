/*
 * A lost state rebuilt from what the service holds: the resources ota-runner
 * created carry their manifest's address in a tag (kinds/tags.h); a kind
 * without tags (a task configuration) is found by its content, equal to a
 * manifest's. Used by 'state rebuild', and by plan and apply when the state
 * records nothing, so that a deleted state file never makes a second copy
 * of a running fleet.
 */
#ifndef OTR_SYNC_ADOPT_H
#define OTR_SYNC_ADOPT_H

#include "sync/refresh.h"
#include "kinds/manifest.h"
#include "state/state.h"

/* Reads (a get each, all in flight) what r lists, and records in s every
 * resource that is ours and has a manifest in set: one record per address
 * (the newest when the service holds several, which report names), as
 * imported; a kind that plans itself rebuilds its record from all of them
 * (kind->adopt). One tagged for a name with no manifest here is left alone
 * (another fleet's in the same account, or one whose manifest is gone):
 * recorded, a --prune would delete it. report receives a line per address.
 * Returns how many records were made, or -1 with err. s must record
 * nothing yet. */
OTR_MUST_USE long otr_adopt(otr_state *s, const otr_refresh_result *r, otr_aws_client *c,
                            const otr_manifest_set *set, otr_buf *report, otr_error *err);

/* The creates an interrupted run left in the journal (s->pending) that had
 * reached the service: found among the tasks r lists that s does not record
 * (a get each, only when such a create is pending), by their tags and body
 * (otr_kind_holds_body); each is recorded as its create's result, journaled
 * when journal is set (apply, under the lock), so it is never sent again:
 * once the service's idempotency window has passed, the same ClientToken
 * would make a second task. report gets a line per one found. Returns how
 * many were found, or -1 with err. */
OTR_MUST_USE long otr_adopt_landed(otr_state *s, const otr_refresh_result *r, otr_aws_client *c,
                                   int journal, otr_buf *report, otr_error *err);

#endif
