/*
 * Between the state's model (state.c: records, the snapshot's and journal's
 * text, replay, results) and how it is kept (persist.c: loading, the lock,
 * the journal and the snapshot on a store). Not for use outside runner/state/.
 */
#ifndef OTR_STATE_INTERNAL_H
#define OTR_STATE_INTERNAL_H

#include "state/state.h"

/* Reads a snapshot into an empty state; takes text (NUL-terminated, freed
 * once parsed: a 10k-task state is 9 MB of text and more of tree). */
int otr_state_parse_snapshot(otr_state *s, char *text, size_t len, otr_error *err);
/* Replays journal lines over the snapshot; jpath names the journal in
 * messages. */
int otr_state_replay(otr_state *s, const char *text, size_t len, const char *jpath, otr_error *err);
/* One resource under two names is refused. */
int otr_state_check_ids(const otr_state *s, otr_error *err);

/* The serialisers fail as a whole: NULL when any part could not be made
 * (no memory), never a text with a record missing (otr_jb). */

/* The snapshot's text (version 2, sorted keys), without a newline. */
OTR_MUST_USE char *otr_state_snapshot_text(const otr_state *s);
/* A journal line (with its newline) for an intent, or for the result of one;
 * seq numbers it. */
OTR_MUST_USE char *otr_state_intent_line(const otr_state *s, const otr_intent *in, long seq);
OTR_MUST_USE char *otr_state_result_line(const otr_state *s, const otr_intent *in,
                                         const otr_record *rec, int ok, int conflict,
                                         const char *error, long seq);

/* Notes an intent as pending, and settles one: applies the outcome to the
 * records (as a run does, and as replay does). */
int otr_state_add_pending(otr_state *s, const otr_intent *in);
/* Adds a retired resource (at: when, NULL: now; error may be NULL). */
int otr_state_retire(otr_state *s, const otr_kind *kind, const char *name, const char *id,
                     const char *at, const char *error);
int otr_state_settle(otr_state *s, const otr_intent *in, const otr_record *rec, int ok,
                     int conflict, const char *error);

/* Do two intents name the same call (op, address, and for a retired
 * resource its id)? */
int otr_intent_same(const otr_intent *a, const otr_intent *b);
/* *slot becomes a copy of text (NULL: none); -1 without memory (*slot kept). */
int otr_replace_str(char **slot, const char *text);

#endif
