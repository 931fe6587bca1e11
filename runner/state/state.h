/*
 * The state file (DESIGN section 6): what ota-runner has done, as one JSON
 * document with a deterministic key order, plus a journal of the calls made
 * since that document was written.
 *
 *   FILE          the snapshot: {"format", "version", "lineage", "serial",
 *                 "updatedAt", "source", "service", "tasks": {name: record}}
 *   FILE.journal  JSON lines, appended and fsync'd before each mutating call
 *                 (an intent) and after it (a result); replayed on load
 *   FILE.lock     held with flock for a whole run; names its holder
 *   FILE.bak      the previous snapshot
 *
 * A file with an unknown version, a wrong shape or a truncated body is
 * refused and never overwritten. otr_state owns its records and the open
 * journal; free it with otr_state_free (which also releases the lock).
 */
#ifndef OTR_STATE_STATE_H
#define OTR_STATE_STATE_H

#include "util/error.h"

#include <cjson/cJSON.h>
#include <stddef.h>

#define OTR_STATE_FORMAT "ota-runner-state"
#define OTR_STATE_VERSION 1
#define OTR_STATE_DEFAULT_PATH "ota-runner.state.json"

/* One task ota-runner created (or adopted) for a manifest. */
typedef struct otr_record {
    char *name;
    char *phase;        /* "created" or "imported" */
    char *client_token; /* the token the task was created with ("" when imported) */
    long revision;
    cJSON *spec; /* the CreateOtaTask fields it was created or last updated with */
    char *spec_digest;
    char *task_id;
    char *task_arn;
    char *file;   /* the manifest's file, when known */
    char *commit; /* the commit the spec came from */
    char *created_at;
    char *updated_at;
    char *remote_status; /* the status last seen in the service, or NULL */
    char *remote_checked_at;
} otr_record;

/* A mutating call whose intent is in the journal but whose result is not. */
typedef enum otr_op { OTR_OP_CREATE, OTR_OP_UPDATE, OTR_OP_DELETE } otr_op;

typedef struct otr_intent {
    otr_op op;
    otr_record rec; /* create/update: the record as it will be; delete: name, task_id */
} otr_intent;

typedef struct otr_state {
    char *path;
    char lineage[40];
    long serial;
    char *updated_at;
    cJSON *source;       /* {"repo", "ref", "commit", "path"} of the last apply */
    cJSON *service;      /* {"region", "endpoint"} */
    otr_record *records; /* sorted by name */
    size_t count, alloc;
    otr_intent *pending; /* intents left by an interrupted run, in journal order */
    size_t npending;
    size_t journal_entries; /* lines replayed (a saved plan records this) */
    int exists;             /* the snapshot file existed */
    /* the run's resources */
    int lock_fd;
    int journal_fd;
    long journal_seq;
} otr_state;

/* Loads FILE (an absent file is an empty state with a new lineage) and
 * replays FILE.journal. Nothing is written, and no lock is needed: when
 * another run saves its snapshot during the read, the read starts again, so
 * the snapshot and journal read belong together. A state that records one
 * task under two names is refused. On failure *out is NULL. */
OTR_MUST_USE int otr_state_load(otr_state **out, const char *path, otr_error *err);
/* Takes FILE.lock for the rest of the run (when lock_for names the command,
 * "apply"; NULL: no lock), then loads the state: loaded under the lock, it
 * cannot change before the run saves it. repair accepts a state that records
 * one task under two names, so that 'state list / show / rm' can mend it.
 * When another run holds the lock, fails at once with OTR_ERR_LOCKED and a
 * message naming the holder. On failure *out is NULL and no lock is held. */
OTR_MUST_USE int otr_state_open(otr_state **out, const char *path, const char *lock_for,
                                int repair, otr_error *err);

/* 1 when a run holds FILE.lock now, with holder set to "pid N on HOST since
 * T (ota-runner CMD)"; else 0. Takes no lock that a run could trip over for
 * longer than the probe. */
int otr_state_lock_holder(const char *path, otr_buf *holder);

/* The same from memory (journal may be NULL): for tests and fuzzing. path
 * only names the state in messages. */
OTR_MUST_USE int otr_state_from_text(otr_state **out, const char *path, const char *snapshot, size_t slen,
                        const char *journal, size_t jlen, otr_error *err);


/* Looks up a record; NULL when there is none. */
otr_record *otr_state_find(otr_state *s, const char *name);

/* The journal. An intent is appended and fsync'd before the call it
 * announces; the result after the call. */
OTR_MUST_USE int otr_state_journal_intent(otr_state *s, otr_op op, const otr_record *rec, otr_error *err);
/* Records the outcome: ok with rec (create: the new record with task id;
 * update: the updated record; delete: name) applied to the state; or not ok
 * (nothing changed, the intent is settled). */
OTR_MUST_USE int otr_state_journal_result(otr_state *s, otr_op op, const otr_record *rec, int ok,
                             const char *error, otr_error *err);

/* Applies a settled result to the records in memory (also used by replay). */
OTR_MUST_USE int otr_state_apply_result(otr_state *s, otr_op op, const otr_record *rec);

/* Writes the snapshot: serial + 1, FILE.tmp, fsync, FILE -> FILE.bak, rename,
 * fsync of the folder; then empties the journal. source and service may be
 * NULL (kept as they were). */
OTR_MUST_USE int otr_state_save(otr_state *s, const cJSON *source, const cJSON *service, otr_error *err);

/* Removes a record (state rm); 0 when it existed. */
int otr_state_remove(otr_state *s, const char *name);
/* Adds or replaces a record; rec is copied (put) or taken, leaving it empty
 * (put_move). On failure the state is unchanged and rec is still the
 * caller's. */
OTR_MUST_USE int otr_state_put(otr_state *s, const otr_record *rec);
OTR_MUST_USE int otr_state_put_move(otr_state *s, otr_record *rec);

void otr_state_free(otr_state *s);

void otr_record_clear(otr_record *r);
/* On failure dst is left empty (nothing to free) and src is untouched. */
OTR_MUST_USE int otr_record_copy(otr_record *dst, const otr_record *src);
/* The record as the snapshot stores it (without the name), and back; the
 * spec is taken out of o. task_id_optional: a record not created yet. On
 * failure why says what is wrong. */
cJSON *otr_record_to_json(const otr_record *r);
OTR_MUST_USE int otr_record_from_json(otr_record *r, const char *name, cJSON *o, int task_id_optional,
                         otr_buf *why);

const char *otr_op_name(otr_op op);

#endif
