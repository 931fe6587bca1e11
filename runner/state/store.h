/*
 * Where a state is kept: the storage under the state's model (state.c). Two
 * stores: a local file (store_file.c) and an S3 object (store_s3.c). Both
 * keep the same guarantees: a lock held for a run that names its holder;
 * the journal durable before each call; the snapshot written only over the
 * version the run read, the previous one kept as a backup. Not for use
 * outside runner/state/.
 */
#ifndef OTR_STATE_STORE_H
#define OTR_STATE_STORE_H

#include "state/where.h"
#include "util/buf.h"
#include "util/error.h"

typedef struct otr_store otr_store;

typedef struct otr_store_ops {
    /* The journal's lines, then the snapshot (*exists 0 when there is none),
     * as one consistent pair: a save that lands during the read can only
     * make the snapshot newer than the journal read. The version read is
     * what write is conditional on. */
    int (*read)(otr_store *st, otr_buf *journal, otr_buf *snapshot, int *exists, otr_error *err);
    /* Takes the lock for command ("apply"); OTR_ERR_LOCKED naming the holder
     * when another run has it. */
    int (*lock)(otr_store *st, const char *command, otr_error *err);
    /* Releases the lock this store holds (nothing when it holds none). */
    int (*unlock)(otr_store *st, otr_error *err);
    /* 1 when a run holds the lock, with holder set; else 0. */
    int (*holder)(otr_store *st, otr_buf *holder);
    /* Breaks the lock whose id is lock_id (state unlock). */
    int (*break_lock)(otr_store *st, const char *lock_id, otr_error *err);
    /* Appends n journal lines (each with its newline, in text), durably, as
     * entries first.. of the journal against snapshot serial. */
    int (*append)(otr_store *st, const char *text, size_t len, size_t n, long serial, long first,
                  otr_error *err);
    /* Writes the snapshot over the version read (or where none was), the
     * previous one kept as the backup. */
    int (*write)(otr_store *st, const char *text, size_t len, otr_error *err);
    /* Replaces the journal with these lines (the intents still pending, as
     * entries 1.. against serial; none: empty). */
    int (*reset)(otr_store *st, const char *lines, size_t len, long serial, otr_error *err);
    void (*free)(otr_store *st);
} otr_store_ops;

struct otr_store {
    const otr_store_ops *ops;
    int took_over;       /* lock: the lock was taken over from a run that stopped renewing it */
    char *where;         /* the state's name in messages: a path or s3://bucket/key */
    char *journal_where; /* its journal's: FILE.journal or s3://bucket/key.journal/ */
};

/* The store for w->location (a path, or s3://...); nothing is read yet. */
OTR_MUST_USE int otr_store_open(otr_store **out, const otr_state_where *w, otr_error *err);
/* Releases the lock (if held) and frees the store (store.c). */
void otr_store_free(otr_store *st);
/* The lock's holder as a line of JSON: {"id" (when given), "pid", "host",
 * "startedAt" (now when NULL), "renewedAt" (now, with an id), "command"}. */
OTR_MUST_USE char *otr_state_lock_text(const char *command, const char *id, const char *started_at);

/* Each store's opening (store_file.c, store_s3.c). */
OTR_MUST_USE int otr_store_file_open(otr_store **out, const otr_state_where *w, otr_error *err);
OTR_MUST_USE int otr_store_s3_open(otr_store **out, const otr_state_where *w, otr_error *err);

#endif
