/*
 * The state's model on a store (store.h): loading, the lock, the journal
 * and the snapshot, the same on every store.
 */
#include "state/internal.h"
#include "state/store.h"

#include "aws/s3.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How often a run waiting for a lock (--lock-timeout) tries again. */
#define OTR_STATE_LOCK_POLL_MS 1000

int otr_store_open(otr_store **out, const otr_state_where *w, otr_error *err)
{
    if (otr_s3_is_url(w->location))
        return otr_store_s3_open(out, w, err);
    return otr_store_file_open(out, w, err);
}

/* ---- loading --------------------------------------------------------------- */

static int load_from(otr_state **out, otr_store *st, int repair, otr_error *err)
{
    otr_state *s = otr_state_new(st->where);
    otr_buf text = OTR_BUF_INIT, journal = OTR_BUF_INIT;
    int exists = 0;
    *out = NULL;
    if (!s) {
        otr_error_set(err, OTR_ERR_NOMEM, OTR_STATE_NEW_FAILED);
        goto fail;
    }
    if (st->ops->read(st, &journal, &text, &exists, err) < 0)
        goto fail;
    if (exists) {
        size_t len = text.len;
        if (otr_state_parse_snapshot(s, otr_buf_detach(&text), len, err) < 0)
            goto fail;
    }
    if (otr_state_replay(s, otr_buf_cstr(&journal), journal.len, st->journal_where, err) < 0)
        goto fail;
    if (!repair && otr_state_check_ids(s, err) < 0)
        goto fail;
    *out = s;
    s = NULL;
fail:
    otr_buf_free(&text);
    otr_buf_free(&journal);
    otr_state_free(s);
    return *out ? 0 : -1;
}

int otr_state_load(otr_state **out, const otr_state_where *w, otr_error *err)
{
    otr_store *st;
    *out = NULL;
    if (otr_store_open(&st, w, err) < 0)
        return -1;
    if (load_from(out, st, 0, err) < 0) {
        otr_store_free(st);
        return -1;
    }
    (*out)->store = st;
    return 0;
}

/* Takes the lock, waiting for it up to w->lock_timeout_ms. */
static int take_lock(otr_store *st, const otr_state_where *w, const char *command, otr_error *err)
{
    int64_t deadline = otr_time_monotonic_ms() + w->lock_timeout_ms;
    int said = 0;
    for (;;) {
        otr_error e = OTR_ERROR_INIT;
        if (st->ops->lock(st, command, &e) == 0)
            return 0;
        if (e.code != OTR_ERR_LOCKED || otr_time_monotonic_ms() >= deadline) {
            otr_error_set(err, e.code, "%s%s", otr_error_message(&e),
                          e.code != OTR_ERR_LOCKED ? ""
                          : w->lock_timeout_ms
                              ? "; --lock-timeout passed: try again when it has finished"
                              : "; try again when it has finished, or wait for it with "
                                "--lock-timeout");
            otr_error_clear(&e);
            return -1;
        }
        if (!said++)
            otr_log(OTR_LOG_QUIET, "waiting for the lock: %s", otr_error_message(&e));
        otr_error_clear(&e);
        struct timespec ts = {OTR_STATE_LOCK_POLL_MS / 1000, 0};
        nanosleep(&ts, NULL);
    }
}

int otr_state_open(otr_state **out, const otr_state_where *w, const char *lock_for, int repair,
                   otr_error *err)
{
    otr_store *st;
    *out = NULL;
    if (otr_store_open(&st, w, err) < 0)
        return -1;
    if ((lock_for && take_lock(st, w, lock_for, err) < 0) || load_from(out, st, repair, err) < 0) {
        otr_store_free(st); /* releases the lock */
        return -1;
    }
    (*out)->store = st;
    /* a lock taken over: its holder's journal is folded into a snapshot of
     * this run before anything else, so the holder, should it wake, finds the
     * snapshot changed and can write over nothing this run does */
    if (st->took_over && otr_state_save(*out, NULL, NULL, err) < 0) {
        otr_error_prefix(err, "saving the journal of the run whose lock was taken over");
        otr_state_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int otr_state_lock_holder(const otr_state_where *w, otr_buf *holder)
{
    otr_store *st;
    otr_error ignored = OTR_ERROR_INIT;
    if (otr_store_open(&st, w, &ignored) < 0) {
        otr_error_clear(&ignored);
        return 0;
    }
    int held = st->ops->holder(st, holder);
    otr_store_free(st);
    return held;
}

int otr_state_break_lock(const otr_state_where *w, const char *lock_id, otr_error *err)
{
    otr_store *st;
    if (otr_store_open(&st, w, err) < 0)
        return -1;
    int rc = st->ops->break_lock(st, lock_id, err);
    otr_store_free(st);
    return rc;
}

/* ---- the journal --------------------------------------------------------------- */

/* Appends a line (NULL: no memory) as entry journal_seq + 1 and makes it
 * durable, or queues it while the journal is held. */
static int journal_append(otr_state *s, char *line, otr_error *err)
{
    int rc;
    if (!line)
        rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    else if (!s->store)
        rc = otr_error_set(err, OTR_ERR_GENERIC, "state %s has no store to write to", s->path);
    else if (s->journal_held) {
        if (!s->queued)
            s->queue_first = s->journal_seq + 1;
        rc = otr_buf_puts(&s->journal_queue, line) < 0
                 ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory")
                 : 0;
        s->queued += rc == 0;
    } else {
        rc = s->store->ops->append(s->store, line, strlen(line), 1, s->serial, s->journal_seq + 1,
                                   err);
    }
    free(line);
    return rc;
}

void otr_state_journal_hold(otr_state *s, int held)
{
    s->journal_held = held;
}

int otr_state_journal_flush(otr_state *s, otr_error *err)
{
    if (!s->queued)
        return 0;
    int64_t t0 = otr_time_monotonic_ms();
    int rc = s->store->ops->append(s->store, s->journal_queue.ptr, s->journal_queue.len, s->queued,
                                   s->serial, s->queue_first, err);
    otr_log(OTR_LOG_VERBOSE, "   journal: %zu entr%s written at once (%lld ms)", s->queued,
            s->queued == 1 ? "y" : "ies", (long long)(otr_time_monotonic_ms() - t0));
    otr_buf_clear(&s->journal_queue);
    s->queued = 0;
    return rc;
}

int otr_state_journal_intent(otr_state *s, const otr_intent *in, otr_error *err)
{
    if (journal_append(s, otr_state_intent_line(s, in, s->journal_seq + 1), err) < 0)
        return -1;
    s->journal_seq++;
    if (otr_state_add_pending(s, in) < 0)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    return 0;
}

int otr_state_journal_result(otr_state *s, const otr_intent *in, const otr_record *rec, int ok,
                             int conflict, const char *error, otr_error *err)
{
    int rc = journal_append(
        s, otr_state_result_line(s, in, rec, ok, conflict, error, s->journal_seq + 1), err);
    if (rc == 0)
        s->journal_seq++;
    /* the outcome is applied in memory even if the journal could not take it:
     * the snapshot at the end of the run will still tell the truth */
    if (otr_state_settle(s, in, rec, ok, conflict, error) < 0 && rc == 0)
        rc = otr_error_set(err, OTR_ERR_NOMEM,
                           "out of memory while recording %s; the journal holds it", in->rec.name);
    return rc;
}

/* ---- the snapshot -------------------------------------------------------------------- */

/* Rewrites the journal to hold only the intents still pending, against the
 * new serial (normally none: the journal is emptied). */
static int reset_journal(otr_state *s, otr_error *err)
{
    otr_buf lines = OTR_BUF_INIT;
    int nomem = 0;
    for (size_t i = 0; i < s->npending; i++) {
        char *line = otr_state_intent_line(s, &s->pending[i], (long)(i + 1));
        if (!line || otr_buf_puts(&lines, line) < 0)
            nomem = 1;
        free(line);
    }
    int rc = nomem ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory")
                   : s->store->ops->reset(s->store, lines.ptr, lines.len, s->serial, err);
    s->journal_seq = (long)s->npending;
    otr_buf_free(&lines);
    return rc;
}

int otr_state_save(otr_state *s, const cJSON *source, const cJSON *service, otr_error *err)
{
    char *text = NULL;
    otr_buf b = OTR_BUF_INIT;
    int rc = -1;
    if (!s->store)
        return otr_error_set(err, OTR_ERR_GENERIC, "state %s has no store to write to", s->path);
    s->serial++;
    free(s->updated_at);
    s->updated_at = otr_time_now_iso8601();
    if (source) {
        cJSON_Delete(s->source);
        s->source = cJSON_Duplicate(source, 1);
    }
    if (service) {
        cJSON_Delete(s->service);
        s->service = cJSON_Duplicate(service, 1);
    }
    text = otr_state_snapshot_text(s);
    if (!text || otr_buf_printf(&b, "%s\n", text) < 0) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (s->store->ops->write(s->store, b.ptr, b.len, err) < 0)
        goto fail;
    s->exists = 1;
    rc = reset_journal(s, err);
    s->journal_entries = 0;
    goto done;
fail:
    s->serial--;
    rc = -1;
done:
    otr_buf_free(&b);
    free(text);
    return rc;
}

/* ---- moving a state -------------------------------------------------------------- */

/* Is every line of a journal one of this state's (its lineage)? A target
 * holding only such a journal is an interrupted copy of this very state. */
static int journal_is_ours(const otr_state *s, const otr_buf *journal)
{
    for (const char *p = journal->ptr; p && p < journal->ptr + journal->len;) {
        const char *nl = memchr(p, '\n', (size_t)(journal->ptr + journal->len - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(journal->ptr + journal->len - p);
        cJSON *j = cJSON_ParseWithLength(p, len);
        const char *lineage = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "lineage"));
        int ours = lineage && !strcmp(lineage, s->lineage);
        cJSON_Delete(j);
        if (!ours && len)
            return 0;
        p = nl ? nl + 1 : journal->ptr + journal->len;
    }
    return 1;
}

/* The copy is written journal first, snapshot last: killed part-way, the
 * target holds no snapshot, only this state's journal (what plan and state
 * list read as an interrupted run's), and a second migrate takes it up. */
int otr_state_copy_to(otr_state *s, const otr_state_where *to, otr_error *err)
{
    otr_store *target;
    otr_buf journal = OTR_BUF_INIT, snapshot = OTR_BUF_INIT, lines = OTR_BUF_INIT;
    char *text = NULL;
    int exists = 0, rc = -1;
    long serial = s->serial;
    if (otr_store_open(&target, to, err) < 0)
        return -1;
    if (target->ops->lock(target, "state migrate", err) < 0 ||
        target->ops->read(target, &journal, &snapshot, &exists, err) < 0)
        goto done;
    if (exists || (journal.len && !journal_is_ours(s, &journal))) {
        otr_error_set(err, OTR_ERR_USAGE,
                      "%s holds a state already (%s); nothing was copied. Move it away first, or "
                      "choose another place",
                      target->where, exists ? "a snapshot" : "another state's journal");
        goto done;
    }
    s->serial = serial + 1; /* what the target's snapshot and journal are numbered by */
    for (size_t i = 0; i < s->npending; i++) {
        char *line = otr_state_intent_line(s, &s->pending[i], (long)(i + 1));
        if (!line || otr_buf_puts(&lines, line) < 0) {
            free(line);
            otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
            goto done;
        }
        free(line);
    }
    if (!(text = otr_state_snapshot_text(s))) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* an interrupted copy's journal is replaced; then the pending calls; then
     * the snapshot, which makes the target a state */
    if ((journal.len || s->npending) &&
        target->ops->reset(target, lines.ptr, lines.len, s->serial, err) < 0)
        goto done;
    otr_buf_clear(&snapshot);
    if (otr_buf_printf(&snapshot, "%s\n", text) < 0) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto done;
    }
    rc = target->ops->write(target, snapshot.ptr, snapshot.len, err);
done:
    if (rc < 0)
        s->serial = serial;
    free(text);
    otr_buf_free(&lines);
    otr_buf_free(&journal);
    otr_buf_free(&snapshot);
    otr_store_free(target);
    return rc;
}
