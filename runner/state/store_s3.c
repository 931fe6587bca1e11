/*
 * The state as S3 objects (s3://BUCKET/KEY):
 *
 *   KEY                 the snapshot, written only over the ETag read
 *                       (If-Match; If-None-Match: * when new), with a
 *                       SHA-256 checksum the store verifies
 *   KEY.bak             the previous snapshot (a server-side copy)
 *   KEY.lock            the lock: created with If-None-Match: *, renewed
 *                       with If-Match of its own ETag, deleted the same way
 *   KEY.journal/S-N-R   one object per journal line (S: the snapshot's
 *                       serial, N: its number, R: the run's lock id),
 *                       created with If-None-Match: *; removed after the
 *                       snapshot that holds them is written
 *
 * A lock not renewed for w->lock_stale_s (by the store's own clock: its
 * Date against the lock's Last-Modified) is stale, and is taken over with
 * If-Match of the stale lock's ETag, so two runs cannot both take it. A
 * store that does not refuse a second If-None-Match create is refused.
 */
#include "state/store.h"
#include "util/log.h"

#include "aws/s3.h"
#include "util/buf.h"
#include "util/time.h"

#include <cjson/cJSON.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest a lock's text may be. */
#define S3_MAX_LOCK_BYTES 4096
/* The longest a journal entry may be (one record's spec, and room). */
#define S3_MAX_ENTRY_BYTES ((size_t)4 << 20)
/* A running holder renews its lock at least this often (and at a third of
 * the stale time when that is shorter). */
#define S3_RENEW_EVERY_MS 10000

typedef struct s3_store {
    otr_store base;
    otr_s3 *s3;
    char *key, *lock_key, *bak_key, *journal_prefix;
    long stale_s;
    /* the snapshot's version read */
    int exists;
    char etag[OTR_S3_ETAG_MAX];
    /* the lock, when held */
    int locked;
    char lock_id[33];
    char lock_etag[OTR_S3_ETAG_MAX];
    char *command, *started_at;
    int64_t renewed_ms;
    /* the lock was found to be another run's: this store writes nothing more,
     * ever (a journal object, a snapshot, a journal reset) */
    int lost;
    /* journal objects read or written: removed after the next snapshot */
    char **journal;
    size_t njournal;
} s3_store;

static char *with_suffix(const char *key, const char *suffix)
{
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s%s", key, suffix);
    return otr_buf_detach(&b);
}

static void forget_journal(s3_store *s)
{
    for (size_t i = 0; i < s->njournal; i++)
        free(s->journal[i]);
    free(s->journal);
    s->journal = NULL;
    s->njournal = 0;
}

static int remember_journal(s3_store *s, const char *key)
{
    char **grown = realloc(s->journal, (s->njournal + 1) * sizeof(*grown));
    char *copy = strdup(key);
    if (!grown || !copy) {
        free(copy);
        if (grown)
            s->journal = grown;
        return -1;
    }
    s->journal = grown;
    s->journal[s->njournal++] = copy;
    return 0;
}

/* ---- reading ----------------------------------------------------------------- */

/* The journal's objects in key order (serial, then number), then the
 * snapshot: a save that lands between can only make the snapshot newer
 * (its journal objects are removed after it is written, and an object gone
 * between the list and its read is one the newer snapshot holds). */
static int s3_read(otr_store *st, otr_buf *journal, otr_buf *snapshot, int *exists, otr_error *err)
{
    s3_store *s = (s3_store *)st;
    char **keys = NULL;
    size_t n = 0;
    int rc = 0;
    otr_buf_clear(journal);
    forget_journal(s);
    if (otr_s3_list(s->s3, s->journal_prefix, &keys, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        otr_s3_object obj = {0};
        int r = otr_s3_get(s->s3, keys[i], S3_MAX_ENTRY_BYTES, &obj, err);
        if (r < 0)
            rc = -1;
        else if (r == OTR_S3_OK && (otr_buf_append(journal, obj.body.ptr, obj.body.len) < 0 ||
                                    remember_journal(s, keys[i]) < 0))
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        otr_s3_object_clear(&obj);
    }
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    if (rc < 0)
        return -1;
    otr_s3_object obj = {0};
    int r = otr_s3_get(s->s3, s->key, OTR_STATE_MAX_BYTES, &obj, err);
    if (r < 0)
        return -1;
    s->exists = *exists = r == OTR_S3_OK;
    snprintf(s->etag, sizeof(s->etag), "%s", r == OTR_S3_OK ? obj.etag : "");
    otr_buf_free(snapshot);
    *snapshot = obj.body;
    memset(&obj.body, 0, sizeof(obj.body));
    otr_s3_object_clear(&obj);
    if (*exists && !s->etag[0])
        return otr_error_set(err, OTR_ERR_IO,
                             "%s: the store sent no ETag; a snapshot cannot be written safely "
                             "without one",
                             st->where);
    return 0;
}

/* ---- the lock ---------------------------------------------------------------- */

/* "pid 4242 on ci-7 since T (ota-runner apply), lock id X, renewed N s ago" */
static void describe_holder(const otr_s3_object *lock, otr_buf *out)
{
    cJSON *h = cJSON_ParseWithLength(lock->body.ptr ? lock->body.ptr : "", lock->body.len);
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(h, "pid");
    const char *host = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "host"));
    const char *since = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "startedAt"));
    const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "command"));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "id"));
    otr_buf_printf(out, "pid %lld on %s since %s (ota-runner %s), lock id %s",
                   cJSON_IsNumber(pid) ? (long long)pid->valuedouble : -1LL, host ? host : "?",
                   since ? since : "?", cmd ? cmd : "?", id ? id : "?");
    if (lock->date && lock->last_modified)
        otr_buf_printf(out, ", renewed %llds ago", lock->date - lock->last_modified);
    cJSON_Delete(h);
}

static int lock_age_s(const otr_s3_object *lock)
{
    return lock->date && lock->last_modified ? (int)(lock->date - lock->last_modified) : 0;
}

/* -1 when OpenSSL has no random bytes: a guessable lock id could be taken
 * for another run's. */
static int new_lock_id(char out[33])
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return -1;
    otr_hex(out, r, sizeof(r));
    return 0;
}

/* Puts the lock's text: created (if_match NULL) or over if_match. */
static int put_lock(s3_store *s, const char *if_match, otr_error *err)
{
    char *text = otr_state_lock_text(s->command, s->lock_id, s->started_at);
    if (!text)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    int r =
        otr_s3_put(s->s3, s->lock_key, text, strlen(text), if_match, !if_match, s->lock_etag, err);
    free(text);
    return r;
}

/* A second create of the lock must be refused: a store that ignores
 * If-None-Match would let two runs both hold it. */
static int check_conditional(s3_store *s, otr_error *err)
{
    char *text = otr_state_lock_text(s->command, s->lock_id, s->started_at);
    char etag[OTR_S3_ETAG_MAX];
    if (!text)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    int r = otr_s3_put(s->s3, s->lock_key, text, strlen(text), NULL, 1, etag, err);
    free(text);
    if (r == OTR_S3_PRECONDITION)
        return 0;
    if (r == OTR_S3_OK) {
        otr_error ignored = OTR_ERROR_INIT;
        if (otr_s3_delete(s->s3, s->lock_key, NULL, &ignored) < 0)
            otr_error_clear(&ignored);
        return otr_error_set(err, OTR_ERR_IO,
                             "%s: the store ignores conditional writes (a second create of the "
                             "lock with If-None-Match: * was not refused), so two runs could both "
                             "hold the lock and overwrite each other's state; nothing was "
                             "written. Keep the state on Amazon S3 or a store that honours "
                             "If-None-Match and If-Match",
                             s->base.where);
    }
    return -1;
}

static int s3_lock(otr_store *st, const char *command, otr_error *err)
{
    s3_store *s = (s3_store *)st;
    free(s->command);
    free(s->started_at);
    s->command = strdup(command);
    s->started_at = otr_time_now_iso8601();
    if (new_lock_id(s->lock_id) < 0)
        return otr_error_set(err, OTR_ERR_GENERIC,
                             "%s: no random bytes for a lock id (OpenSSL's RAND_bytes failed)",
                             s->base.where);
    if (!s->command || !s->started_at)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    int r = put_lock(s, NULL, err);
    if (r == OTR_S3_OK) {
        s->locked = 1; /* from here on released (deleted) on every path */
        s->renewed_ms = otr_time_monotonic_ms();
        return check_conditional(s, err) < 0 ? -1 : 0;
    }
    if (r < 0)
        return -1;
    /* held: by a live run, or stale */
    otr_s3_object held = {0};
    r = otr_s3_get(s->s3, s->lock_key, S3_MAX_LOCK_BYTES, &held, err);
    if (r == OTR_S3_NOT_FOUND) /* released meanwhile: the caller tries again */
        return otr_error_set(err, OTR_ERR_LOCKED, "state %s was locked by another run just now",
                             st->where);
    if (r < 0)
        return -1;
    otr_buf who = OTR_BUF_INIT;
    describe_holder(&held, &who);
    if (lock_age_s(&held) >= s->stale_s && held.etag[0]) {
        r = put_lock(s, held.etag, err);
        if (r == OTR_S3_OK) {
            otr_log_warn("took over the stale lock of %s: %s (not renewed for %ds; "
                         "--lock-stale-after is %lds); its journal is replayed and saved "
                         "before anything else",
                         st->where, otr_buf_cstr(&who), lock_age_s(&held), s->stale_s);
            s->locked = 1;
            st->took_over = 1;
            s->renewed_ms = otr_time_monotonic_ms();
            otr_buf_free(&who);
            otr_s3_object_clear(&held);
            return 0;
        }
    }
    if (r >= 0)
        otr_error_set(err, OTR_ERR_LOCKED,
                      "state %s is locked by another run: %s; if that run is gone, break the "
                      "lock with 'ota-runner state unlock ID', or wait: a lock not renewed for "
                      "%lds is taken over",
                      st->where, otr_buf_cstr(&who), s->stale_s);
    otr_buf_free(&who);
    otr_s3_object_clear(&held);
    return -1;
}

static int lock_lost(s3_store *s, otr_error *err)
{
    return otr_error_set(err, OTR_ERR_LOCKED,
                         "the lock on %s is not this run's any more (it was broken by hand or "
                         "taken over as stale): this run sends and writes nothing more; what it "
                         "did is in the journal %s, which the lock's holder replays",
                         s->base.where, s->base.journal_where);
}

/* Renews the lock when it is due, or at once with now set: a run that stops
 * renewing (killed, or stopped) lets it go stale. A renewal refused means
 * the lock is not this run's any more: from then on the store refuses every
 * write (a lost lock is never "found" again). */
static int renew(s3_store *s, int now_set, otr_error *err)
{
    int64_t now = otr_time_monotonic_ms();
    int64_t every =
        s->stale_s * 1000 / 3 < S3_RENEW_EVERY_MS ? s->stale_s * 1000 / 3 : S3_RENEW_EVERY_MS;
    if (s->lost)
        return lock_lost(s, err);
    if (!s->locked || (!now_set && now - s->renewed_ms < every))
        return 0;
    int r = put_lock(s, s->lock_etag, err);
    if (r == OTR_S3_OK) {
        s->renewed_ms = now;
        return 0;
    }
    if (r == OTR_S3_PRECONDITION || r == OTR_S3_NOT_FOUND) {
        s->locked = 0;
        s->lost = 1;
        otr_error_clear(err);
        return lock_lost(s, err);
    }
    return -1;
}

static int s3_unlock(otr_store *st, otr_error *err)
{
    s3_store *s = (s3_store *)st;
    if (!s->locked)
        return 0;
    s->locked = 0;
    int r = otr_s3_delete(s->s3, s->lock_key, s->lock_etag, err);
    if (r == OTR_S3_PRECONDITION)
        return otr_error_set(err, OTR_ERR_LOCKED,
                             "the lock on %s was not this run's any more when it ended; it was "
                             "left to its new holder",
                             st->where);
    return r < 0 ? -1 : 0;
}

static int s3_holder(otr_store *st, otr_buf *holder)
{
    s3_store *s = (s3_store *)st;
    otr_s3_object held = {0};
    otr_error ignored = OTR_ERROR_INIT;
    int r = otr_s3_get(s->s3, s->lock_key, S3_MAX_LOCK_BYTES, &held, &ignored);
    otr_error_clear(&ignored);
    if (r == OTR_S3_OK)
        describe_holder(&held, holder);
    otr_s3_object_clear(&held);
    return r == OTR_S3_OK;
}

static int s3_break_lock(otr_store *st, const char *lock_id, otr_error *err)
{
    s3_store *s = (s3_store *)st;
    otr_s3_object held = {0};
    int r = otr_s3_get(s->s3, s->lock_key, S3_MAX_LOCK_BYTES, &held, err);
    if (r < 0)
        return -1;
    if (r == OTR_S3_NOT_FOUND)
        return otr_error_set(err, OTR_ERR_NOTFOUND, "state %s is not locked", st->where);
    cJSON *h = cJSON_ParseWithLength(held.body.ptr ? held.body.ptr : "", held.body.len);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "id"));
    if (!id || strcmp(id, lock_id) != 0) {
        otr_buf who = OTR_BUF_INIT;
        describe_holder(&held, &who);
        otr_error_set(err, OTR_ERR_USAGE,
                      "state %s is locked by %s, not by lock id %s; nothing "
                      "was changed",
                      st->where, otr_buf_cstr(&who), lock_id);
        otr_buf_free(&who);
        r = -1;
    } else {
        r = otr_s3_delete(s->s3, s->lock_key, held.etag, err);
        if (r == OTR_S3_PRECONDITION)
            r = otr_error_set(err, OTR_ERR_LOCKED,
                              "the lock on %s changed while it was being broken (its holder "
                              "renewed it: it is alive); nothing was changed",
                              st->where);
    }
    cJSON_Delete(h);
    otr_s3_object_clear(&held);
    return r < 0 ? -1 : 0;
}

/* ---- the journal --------------------------------------------------------------- */

static char *journal_key(const s3_store *s, long serial, long seq)
{
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s%012ld-%010ld-%.8s", s->journal_prefix, serial, seq,
                   s->lock_id[0] ? s->lock_id : "nolock00");
    return otr_buf_detach(&b);
}

/* The n lines of text, each its own object, written at once. */
static int s3_append(otr_store *st, const char *text, size_t len, size_t n, long serial, long first,
                     otr_error *err)
{
    s3_store *s = (s3_store *)st;
    char **keys = calloc(n + 1, sizeof(*keys));
    const char **lines = calloc(n + 1, sizeof(*lines));
    size_t *lens = calloc(n + 1, sizeof(*lens)), k = 0;
    int rc = keys && lines && lens ? renew(s, 0, err)
                                   : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    for (const char *p = text; rc == 0 && k < n && p < text + len; k++) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        lines[k] = p;
        lens[k] = nl ? (size_t)(nl - p) + 1 : (size_t)(text + len - p);
        if (!(keys[k] = journal_key(s, serial, first + (long)k)))
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        p += lens[k];
    }
    if (rc == 0 && otr_s3_create_many(s->s3, keys, lines, lens, k, err) < 0)
        rc = -1;
    /* a run paused during the write may have lost the lock meanwhile: asked
     * again when due, so no call is sent on an entry its successor skips */
    if (rc == 0 && renew(s, 0, err) < 0)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < k; i++)
        if (remember_journal(s, keys[i]) < 0)
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    if (rc < 0 && !s->lost)
        otr_error_prefix(err, "cannot write the journal; nothing more will be sent until it can "
                              "be written");
    for (size_t i = 0; keys && i < k; i++)
        free(keys[i]);
    free(keys);
    free(lines);
    free(lens);
    return rc < 0 ? -1 : 0;
}

/* Writes the pending lines as entries 1.. against serial, then removes the
 * journal objects read or written before. */
static int s3_reset(otr_store *st, const char *lines, size_t len, long serial, otr_error *err)
{
    s3_store *s = (s3_store *)st;
    if (s->lost) /* the journal is the holder's now: not one object of it is removed */
        return lock_lost(s, err);
    char **old = s->journal;
    size_t nold = s->njournal;
    int rc = 0;
    s->journal = NULL;
    s->njournal = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += lines[i] == '\n';
    if (n && s3_append(st, lines, len, n, serial, 1, err) < 0)
        rc = -1;
    /* what is left is older than the snapshot: skipped, removed next time */
    if (rc == 0 && nold && otr_s3_delete_many(s->s3, old, nold, err) < 0)
        rc = -1;
    for (size_t i = 0; i < nold; i++)
        free(old[i]);
    free(old);
    return rc;
}

/* ---- the snapshot -------------------------------------------------------------------- */

static int s3_write(otr_store *st, const char *text, size_t len, otr_error *err)
{
    s3_store *s = (s3_store *)st;
    char etag[OTR_S3_ETAG_MAX];
    /* the lock is asked for at once, whenever it was last renewed: a run
     * paused past --lock-stale-after must not write over its successor's */
    if (renew(s, 1, err) < 0)
        return -1;
    int r = s->exists ? otr_s3_copy(s->s3, s->key, s->bak_key, s->etag, err) : OTR_S3_OK;
    if (r == OTR_S3_OK)
        r = otr_s3_put(s->s3, s->key, text, len, s->exists ? s->etag : NULL, !s->exists, etag, err);
    if (r == OTR_S3_PRECONDITION || r == OTR_S3_NOT_FOUND) {
        s->lost = 1; /* someone wrote it without this run's lock: write nothing more */
        return otr_error_set(err, OTR_ERR_LOCKED,
                             "cannot save the state: %s was written by another run while this "
                             "one held the lock (HTTP 412); this run's snapshot was not written, "
                             "and its journal was left in %s for the next run to replay; check "
                             "that only ota-runner writes there",
                             st->where, st->journal_where);
    }
    if (r < 0)
        return otr_error_prefix(err, "cannot save the state");
    snprintf(s->etag, sizeof(s->etag), "%s", etag);
    s->exists = 1;
    return 0;
}

static void s3_free(otr_store *st)
{
    s3_store *s = (s3_store *)st;
    forget_journal(s);
    otr_s3_close(s->s3);
    free(s->key);
    free(s->lock_key);
    free(s->bak_key);
    free(s->journal_prefix);
    free(s->command);
    free(s->started_at);
}

static const otr_store_ops s3_ops = {
    .read = s3_read,
    .lock = s3_lock,
    .unlock = s3_unlock,
    .holder = s3_holder,
    .break_lock = s3_break_lock,
    .append = s3_append,
    .write = s3_write,
    .reset = s3_reset,
    .free = s3_free,
};

int otr_store_s3_open(otr_store **out, const otr_state_where *w, otr_error *err)
{
    otr_s3_url u;
    otr_s3_options so = OTR_S3_OPTIONS_INIT;
    s3_store *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (!s)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    s->base.ops = &s3_ops;
    s->stale_s = w->lock_stale_s > 0 ? w->lock_stale_s : OTR_STATE_LOCK_STALE_S;
    if (otr_s3_url_parse(&u, w->location, err) < 0) {
        free(s);
        return otr_error_prefix(err, "--state");
    }
    so.region = w->region;
    so.profile = w->profile;
    so.creds = w->creds;
    so.max_attempts = w->max_attempts;
    so.adaptive = w->adaptive;
    so.connect_timeout_ms = w->connect_timeout_ms;
    so.request_timeout_ms = w->request_timeout_ms;
    int rc = otr_s3_open(&s->s3, &u, &so, err);
    if (rc == 0) {
        otr_buf where = OTR_BUF_INIT;
        s->key = strdup(u.key);
        s->lock_key = with_suffix(u.key, ".lock");
        s->bak_key = with_suffix(u.key, ".bak");
        s->journal_prefix = with_suffix(u.key, ".journal/");
        otr_s3_name(s->s3, u.key, &where);
        s->base.where = otr_buf_detach(&where);
        s->base.journal_where = s->base.where ? with_suffix(s->base.where, ".journal/") : NULL;
        if (!s->key || !s->lock_key || !s->bak_key || !s->journal_prefix || !s->base.where ||
            !s->base.journal_where)
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    otr_s3_url_clear(&u);
    if (rc < 0) {
        otr_store_free(&s->base);
        return -1;
    }
    *out = &s->base;
    return 0;
}
