/*
 * Between the plan's parts: building (plan.c), order and edges (order.c),
 * guards and JSON (json.c). Not for use outside runner/plan/.
 */
#ifndef OTR_PLAN_INTERNAL_H
#define OTR_PLAN_INTERNAL_H

#include "plan/plan.h"

/* Appends an action of kind for (resource, name), growing p->actions by
 * doubling *alloc; NULL without memory. */
otr_action *otr_plan_push_action(otr_plan *p, size_t *alloc, otr_action_kind kind,
                                 const otr_kind *resource, const char *name);
/* Appends a record apply writes without a call (takes rec's contents); -1
 * without memory. */
int otr_plan_push_rewrite(otr_plan *p, size_t *alloc, otr_record *rec);
/* Appends a field's change (the values copied; NULL: not set) to a; -1
 * without memory. */
int otr_action_add_change(otr_action *a, const char *field, const cJSON *old_v, const cJSON *new_v);
/* Appends a kind's view of name (taken on success) to the plan's details; -1
 * without memory. */
int otr_plan_add_detail(otr_plan *p, const otr_kind *k, const char *name, cJSON *view);
/* The renames the manifests ask for (metadata.previousNames) against the
 * records of view (state: for its pending intents) into p->moves, each with
 * its note; a refusal (a line each) into refusals. -1 without memory. */
int otr_plan_find_moves(otr_plan *p, otr_state *view, const otr_state *state,
                        const otr_manifest_set *set, otr_buf *refusals);
/* Frees n changes and their array. */
void otr_changes_free(otr_change *c, size_t n);
/* strcmp for qsort of an array of strings. */
int otr_plan_key_cmp(const void *a, const void *b);
/* Field-level differences between two specs, appended to a (nested objects
 * down to the member that changed). Returns 1 when the kind can make every
 * difference in place (judged by the top-level field), 0 when not, -1
 * without memory. */
int otr_plan_diff_specs(otr_action *a, const otr_kind *k, const cJSON *old_spec,
                        const cJSON *new_spec);
/* --refresh full: what the service holds (fields) vs the manifest (want;
 * had is the record's spec): the drifted fields added to probe, their names
 * to why; 1 when there is drift (*updatable: the kind mends it in place),
 * 0 when none, -1 without memory. */
int otr_plan_drift(otr_action *probe, const otr_record *rec, const cJSON *had,
                   const cJSON *want_spec, const cJSON *fields, int *updatable, otr_buf *why);
/* An update of a resource the refresh shows ended: its fields' changes
 * dropped from probe (note says which), its tags' kept. The kind left:
 * OTR_ACT_UPDATE, or OTR_ACT_NOOP with *all_dropped; -1 without memory. */
int otr_plan_ended_update(const otr_record *rec, const otr_remote_item *remote, otr_action *probe,
                          otr_buf *note, int *all_dropped);
/* Links each action to those it waits for (set: NULL for a plan read back,
 * whose references are no longer known); -1 without memory. */
int otr_plan_link(otr_plan *p, const otr_manifest_set *set);
/* Sorts the actions, links each to those it waits for, and words their
 * references; -1 without memory. */
int otr_plan_order(otr_plan *p, const otr_manifest_set *set);

#endif
