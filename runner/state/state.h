/*
 * The state file (docs/DESIGN.md section 6): what ota-runner has done, as one JSON
 * document with a deterministic key order, plus a journal of the calls made
 * since that document was written.
 *
 *   FILE          the snapshot: {"format", "version", "lineage", "serial",
 *                 "updatedAt", "source", "service", and per kind its records
 *                 ("tasks": {name: record}, "configurations": {...}), and
 *                 "retired": the old resources a replace left to delete}
 *   FILE.journal  JSON lines, appended and fsync'd before each mutating call
 *                 (an intent) and after it (a result); replayed on load
 *   FILE.lock     held with flock for a whole run; names its holder
 *   FILE.bak      the previous snapshot
 *
 * or the same as S3 objects (s3://BUCKET/KEY; see store_s3.c).
 *
 * Version 2 added the kinds and "retired"; a version-1 file is read (its
 * "tasks" are OtaTasks) and written as version 2 by the next save, its .bak
 * keeping the version-1 text; a version-1 journal replays the same way.
 *
 * A file with an unknown version, a wrong shape or a truncated body is
 * refused and never overwritten. otr_state owns its records and its store;
 * free it with otr_state_free (which also releases the lock).
 */
#ifndef OTR_STATE_STATE_H
#define OTR_STATE_STATE_H

#include "kinds/kind.h"
#include "manifest/token.h"
#include "kinds/manifest.h"
#include "kinds/record.h"
#include "state/where.h"
#include "util/error.h"

#include <cjson/cJSON.h>
#include <stddef.h>

#define OTR_STATE_FORMAT "ota-runner-state"
#define OTR_STATE_VERSION 2
#define OTR_STATE_DEFAULT_PATH "ota-runner.state.json"

/* An old resource a create-first replace left behind, deleted once nothing
 * refers to it (and kept while the service refuses). */
typedef struct otr_retired {
    const otr_kind *kind;
    char *name; /* the manifest it served */
    char *id;
    char *retired_at;
    char *last_error; /* why the last delete did not go through, or NULL */
} otr_retired;

/* A mutating call whose intent is in the journal but whose result is not. */
typedef enum otr_op { OTR_OP_CREATE, OTR_OP_UPDATE, OTR_OP_DELETE } otr_op;

typedef struct otr_intent {
    otr_op op;
    otr_record rec; /* create/update: the record as it will be; delete: kind, name, id */
    char *replaces; /* create: the id it replaces (retired when it succeeds), or NULL */
    int retired;    /* delete: of a retired resource (rec.id), not of the record */
} otr_intent;

typedef struct otr_state {
    char *path;
    char lineage[40];
    long serial;
    int version_read; /* the file's version (1 or 2), 0 when new */
    char *updated_at;
    cJSON *source;       /* {"repo", "ref", "commit", "path"} of the last apply */
    cJSON *service;      /* {"region", "endpoint"} */
    otr_record *records; /* sorted by kind (otr_kinds order), then name */
    size_t count, alloc;
    otr_retired *retired;
    size_t nretired;
    char **spent; /* ClientTokens whose resources are gone (deleted, or replaced), sorted:
                     never sent again for a new resource ("spentTokens") */
    size_t nspent, spent_alloc;
    cJSON *outbox;       /* notifications not yet taken by every URL of a run, oldest first
                            ("notifications"; notify/notify.h), or NULL */
    otr_intent *pending; /* intents left by an interrupted run, in journal order */
    size_t npending;
    size_t journal_entries; /* lines replayed (a saved plan records this) */
    int exists;             /* the snapshot existed */
    /* the run's resources */
    struct otr_store *store; /* where it is kept; NULL for a state from text */
    long journal_seq;
    int journal_held;      /* lines wait in journal_queue for otr_state_journal_flush */
    otr_buf journal_queue; /* their text, in order */
    long queue_first;      /* the number of the first of them */
    size_t queued;
} otr_state;

/* Loads the snapshot (an absent one is an empty state with a new lineage)
 * and replays the journal. Nothing is written, and no lock is needed: the
 * store reads the two as a consistent pair. A state that records one
 * resource under two names is refused. On failure *out is NULL. */
OTR_MUST_USE int otr_state_load(otr_state **out, const otr_state_where *w, otr_error *err);

/* Takes the state's lock for the rest of the run (when lock_for names the
 * command, "apply"; NULL: no lock), waiting up to w->lock_timeout_ms for a
 * held one, then loads the state: loaded under the lock, it cannot change
 * before the run saves it. repair accepts a state that records one resource
 * under two names, so that 'state list / show / rm' can mend it. When
 * another run holds the lock, fails with OTR_ERR_LOCKED and a message naming
 * the holder. On failure *out is NULL and no lock is held. */
OTR_MUST_USE int otr_state_open(otr_state **out, const otr_state_where *w, const char *lock_for,
                                int repair, otr_error *err);

/* 1 when a run holds the state's lock now, with holder set to "pid N on
 * HOST since T (ota-runner CMD)"; else 0. Takes no lock that a run could
 * trip over for longer than the probe. */
int otr_state_lock_holder(const otr_state_where *w, otr_buf *holder);

/* Breaks the lock lock_id by hand (state unlock): for a run that is gone. */
OTR_MUST_USE int otr_state_break_lock(const otr_state_where *w, const char *lock_id,
                                      otr_error *err);

/* The same from memory (journal may be NULL): for tests and fuzzing. path
 * only names the state in messages. */
OTR_MUST_USE int otr_state_from_text(otr_state **out, const char *path, const char *snapshot,
                                     size_t slen, const char *journal, size_t jlen, otr_error *err);

/* Looks up a record; NULL when there is none. */
otr_record *otr_state_find(otr_state *s, const otr_kind *kind, const char *name);
/* The record that holds id among resources of kind's kind (a task's id, or
 * a rollout wave's: both are tasks), or NULL. */
otr_record *otr_state_find_id(otr_state *s, const otr_kind *kind, const char *id);

/* The journal. An intent is appended and fsync'd before the call it
 * announces; the result after the call. While the journal is held (a run
 * that starts several calls at once), each line waits in memory and
 * otr_state_journal_flush writes them together (the local file: one write
 * and one fsync; S3: their objects at once): the caller sends a call only
 * after the flush that holds its intent succeeded. */
void otr_state_journal_hold(otr_state *s, int held);
OTR_MUST_USE int otr_state_journal_flush(otr_state *s, otr_error *err);
OTR_MUST_USE int otr_state_journal_intent(otr_state *s, const otr_intent *in, otr_error *err);
/* Records the outcome of the intent in (same op, address, retired flag): ok
 * with rec (create: the new record with its id; update: the updated record;
 * delete: kind, name, id) applied to the state; or not ok (nothing changed,
 * the intent is settled). conflict: a delete the service refused because
 * the resource is in use; a kind that retires on conflict keeps it retired.
 * error is recorded with a failure. */
OTR_MUST_USE int otr_state_journal_result(otr_state *s, const otr_intent *in, const otr_record *rec,
                                          int ok, int conflict, const char *error, otr_error *err);

/* ClientTokens. A service answers a token it has seen with the resource it
 * made then, even one deleted since; so a token whose resource is gone is
 * spent, and a create sends the manifest's token at its first generation
 * that is not (manifest/token.h). A record's tokens are spent when it lets
 * go of their resources (a delete, a replace, state rm).
 *
 * The token a create of the manifest token sends: the first generation not
 * spent, or with skip_held, the one after it (the address's record still
 * holds the resource the first one made: a create that replaces it, or one
 * that vanished). -1 without memory. */
OTR_MUST_USE int otr_state_send_token(const otr_state *s, const char *token, int skip_held,
                                      char out[OTR_TOKEN_SIZE], unsigned *generation);
/* 1 when the record of kind/name holds a resource made with the manifest
 * token token (the kind's token_of). */
int otr_state_holds_token(otr_state *s, const otr_kind *kind, const char *name, const char *token);
/* Spends the token sent, as sent (a service answered it with a dead resource),
 * or generations 0 to below-1 of a manifest token (a resource adopted at
 * generation below). -1 without memory. */
OTR_MUST_USE int otr_state_spend(otr_state *s, const char *sent);
OTR_MUST_USE int otr_state_spend_below(otr_state *s, const char *token, unsigned below);
/* The resource id, adopted into the record of kind/name, was created at
 * generation g of its token (its ota-runner:generation tag): the ones below
 * are spent. -1 without memory. */
OTR_MUST_USE int otr_state_adopted_generation(otr_state *s, const otr_kind *kind, const char *name,
                                              const char *id, unsigned g);

/* Every id s holds (its records', a rollout's every wave, the retired
 * ones), sorted by strcmp for bsearch, in *ids (free() the array; the ids
 * are the records' own, valid until they change). -1 without memory. */
OTR_MUST_USE int otr_state_ids(const otr_state *s, const char ***ids, size_t *n);

/* Forgets a pending intent like in (op, address; a retired delete's id): a
 * plan judged it anew (otr_plan's dropped); the next save's journal no
 * longer holds it. Returns 0 when one was pending. */
int otr_state_forget_pending(otr_state *s, const otr_intent *in);

/* Writes the snapshot (serial + 1) over the version loaded, the previous one
 * kept as the backup; then empties the journal. source and service may be
 * NULL (kept as they were). */
OTR_MUST_USE int otr_state_save(otr_state *s, const cJSON *source, const cJSON *service,
                                otr_error *err);

/* Writes the state (its pending intents as the new journal) where to
 * says, which must hold no snapshot and no journal yet: taken under to's
 * lock, refused otherwise. The state's own store is left as it is. */
OTR_MUST_USE int otr_state_copy_to(otr_state *s, const otr_state_where *to, otr_error *err);

/* Removes a record (state rm); 0 when it existed. */
int otr_state_remove(otr_state *s, const otr_kind *kind, const char *name);
/* The record from becomes the record to (a rename, metadata.previousNames),
 * nothing else changed; -1 when from is not recorded, to is, or no memory. */
OTR_MUST_USE int otr_state_rename(otr_state *s, const otr_kind *kind, const char *from,
                                  const char *to);
/* Adds or replaces a record; rec is copied (put) or taken, leaving it empty
 * (put_move). On failure the state is unchanged and rec is still the
 * caller's. */
OTR_MUST_USE int otr_state_put(otr_state *s, const otr_record *rec);
OTR_MUST_USE int otr_state_put_move(otr_state *s, otr_record *rec);

/* The retired resource of kind with id, or NULL. */
otr_retired *otr_state_find_retired(otr_state *s, const otr_kind *kind, const char *id);

/* A copy of s's records and retired resources (no pending intents, no
 * store), for a plan to project its resumes on; NULL without memory. */
otr_state *otr_state_copy_records(const otr_state *s);
/* Records in view what intent in leaves once it is done (a resume's
 * projection); -1 without memory. */
OTR_MUST_USE int otr_state_project(otr_state *view, const otr_intent *in);

/* A new, empty state with a random lineage; NULL without memory or when
 * OpenSSL's RAND_bytes fails (OTR_STATE_NEW_FAILED says so). */
otr_state *otr_state_new(const char *path);
#define OTR_STATE_NEW_FAILED                                                                       \
    "cannot make a state: out of memory, or no random bytes for its lineage"

void otr_state_free(otr_state *s);

/* The record a manifest asks for (commit: where it was read). The spec is
 * copied, or taken from m with otr_record_take_manifest. */
OTR_MUST_USE int otr_record_from_manifest(otr_record *r, const otr_manifest *m, const char *commit);
OTR_MUST_USE int otr_record_take_manifest(otr_record *r, otr_manifest *m, const char *commit);
/* The record of a resource adopted from the service (state import, a
 * rebuilt state): phase "imported", its spec what the get's answer says
 * (ota-runner's own tags left out), at revision. The next plan compares it
 * with the manifest. On failure r may hold parts: clear it. */
OTR_MUST_USE int otr_record_from_remote(otr_record *r, const otr_kind *k, const char *name,
                                        const otr_remote *got, long revision);
/* Stores spec (sorted in place; NULL: none) as r's spec; -1 without memory
 * (r unchanged). */
OTR_MUST_USE int otr_record_set_spec(otr_record *r, cJSON *spec);
void otr_intent_clear(otr_intent *in);
OTR_MUST_USE int otr_intent_copy(otr_intent *dst, const otr_intent *src);

/* Records in memory only that the pending intent in succeeded with rec (as
 * a journal's result line would): a plan's view of a create found done. */
OTR_MUST_USE int otr_state_settle_done(otr_state *s, const otr_intent *in, const otr_record *rec,
                                       otr_error *err);

/* The record as the snapshot stores it (without the name), and back; the
 * spec is taken out of o. in_journal: a record not created yet (no id). On
 * failure why says what is wrong; to_json fails as a whole (NULL), never
 * leaving a member out. */
OTR_MUST_USE cJSON *otr_record_to_json(const otr_record *r);
OTR_MUST_USE int otr_record_from_json(otr_record *r, const otr_kind *kind, const char *name,
                                      cJSON *o, int in_journal, otr_buf *why);

const char *otr_op_name(otr_op op);

#endif
