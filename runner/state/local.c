/*
 * Where the state is kept: a local file (see state.h). The snapshot is read
 * without a lock, consistently with its journal; a run takes FILE.lock
 * (flock) before it reads; the journal is appended with O_APPEND and
 * fdatasync before and after every call; the snapshot is written to
 * FILE.tmp, fsync'd, renamed into place and its folder fsync'd, the previous
 * one kept as FILE.bak.
 */
#include "state/internal.h"

#include "util/buf.h"
#include "util/file.h"
#include "util/json.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads of a snapshot that another run keeps replacing, before giving up. */
#define OTR_STATE_MAX_READ_ATTEMPTS 20
/* The lock file names its holder in a line of JSON. */
#define OTR_STATE_MAX_LOCK_BYTES 4096

static char *with_suffix(const char *path, const char *suffix)
{
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s%s", path, suffix);
    return otr_buf_detach(&b);
}

/* ---- loading --------------------------------------------------------------- */

/* Reads FILE.journal (an absent one is empty). */
static int read_journal(const char *path, otr_buf *text, otr_error *err)
{
    char *jpath = with_suffix(path, ".journal");
    otr_error ferr = OTR_ERROR_INIT;
    int rc = 0;
    if (!jpath)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    if (otr_file_read(jpath, OTR_STATE_MAX_BYTES, text, &ferr) < 0) {
        if (ferr.code != OTR_ERR_NOTFOUND)
            rc = otr_error_set(err, ferr.code, "%s", otr_error_message(&ferr));
        otr_error_clear(&ferr);
    }
    free(jpath);
    return rc;
}

/* Reads the journal, then the snapshot, then replays the one over the
 * other. In that order a run that saves meanwhile can only make the
 * snapshot newer than the journal read (whose lines it then holds already),
 * never older: a save renames the new snapshot in before it empties the
 * journal. */
static int load_once(otr_state **out, const char *path, otr_error *err)
{
    otr_state *s = otr_state_new(path);
    otr_buf text = OTR_BUF_INIT, journal = OTR_BUF_INIT;
    otr_error ferr = OTR_ERROR_INIT;
    char *jpath = with_suffix(path, ".journal");
    *out = NULL;
    if (!s || !jpath) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (read_journal(path, &journal, err) < 0)
        goto fail;
    if (otr_file_read(path, OTR_STATE_MAX_BYTES, &text, &ferr) < 0) {
        if (ferr.code != OTR_ERR_NOTFOUND) {
            otr_error_set(err, ferr.code, "state file %s: %s", path, otr_error_message(&ferr));
            otr_error_clear(&ferr);
            goto fail;
        }
        otr_error_clear(&ferr);
    } else {
        size_t len = text.len;
        if (otr_state_parse_snapshot(s, otr_buf_detach(&text), len, err) < 0)
            goto fail;
    }
    if (otr_state_replay(s, otr_buf_cstr(&journal), journal.len, jpath, err) < 0)
        goto fail;
    *out = s;
    s = NULL;
fail:
    otr_buf_free(&text);
    otr_buf_free(&journal);
    free(jpath);
    otr_state_free(s);
    return *out ? 0 : -1;
}

/* The snapshot file's identity: a save renames a new file into place. */
static int same_file(int had, const struct stat *a, int has, const struct stat *b)
{
    if (had != has)
        return 0;
    return !had ||
           (a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
            a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec);
}

/* Without the lock, a run may save its snapshot (and empty its journal)
 * while this one reads them: when the snapshot changed under the read, read
 * both again, so the pair read is one run's when a read can be had between
 * saves (and a consistent one, by load_once's order, when it cannot). */
static int load_consistent(otr_state **out, const char *path, int repair, otr_error *err)
{
    for (int attempt = 1;; attempt++) {
        struct stat before, after;
        otr_error e = OTR_ERROR_INIT;
        int had = stat(path, &before) == 0;
        int rc = load_once(out, path, &e);
        if (rc == 0 && !repair)
            rc = otr_state_check_ids(*out, &e);
        int has = stat(path, &after) == 0;
        if (same_file(had, &before, has, &after) || attempt == OTR_STATE_MAX_READ_ATTEMPTS) {
            if (rc < 0) {
                otr_state_free(*out);
                *out = NULL;
                otr_error_set(err, e.code, "%s", otr_error_message(&e));
            }
            otr_error_clear(&e);
            return rc;
        }
        otr_state_free(*out);
        *out = NULL;
        otr_error_clear(&e);
    }
}

int otr_state_load(otr_state **out, const char *path, otr_error *err)
{
    return load_consistent(out, path, 0, err);
}

/* ---- the lock ---------------------------------------------------------------- */

/* "pid 4242 on ci-7 since ... (ota-runner apply)", from the lock file. */
static void describe_holder(const char *lpath, otr_buf *out)
{
    otr_buf holder = OTR_BUF_INIT;
    otr_error ignored = OTR_ERROR_INIT;
    otr_file_read(lpath, OTR_STATE_MAX_LOCK_BYTES, &holder, &ignored);
    otr_error_clear(&ignored);
    cJSON *h = cJSON_Parse(otr_buf_cstr(&holder));
    long long pid =
        otr_json_integer_or(cJSON_GetObjectItemCaseSensitive(h, "pid"), 0, 1LL << 31, -1);
    const char *host = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "host"));
    const char *since = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "startedAt"));
    const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "command"));
    otr_buf_printf(out, "pid %lld on %s since %s (ota-runner %s)", pid, host ? host : "?",
                   since ? since : "?", cmd ? cmd : "?");
    cJSON_Delete(h);
    otr_buf_free(&holder);
}

int otr_state_lock_holder(const char *path, otr_buf *holder)
{
    char *lpath = with_suffix(path, ".lock");
    int fd = lpath ? open(lpath, O_RDONLY | O_CLOEXEC) : -1;
    int held = 0;
    /* a shared lock is refused only while a run holds the exclusive one; it
     * is let go at once */
    if (fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
        held = 1;
        describe_holder(lpath, holder);
    }
    if (fd >= 0)
        close(fd);
    free(lpath);
    return held;
}

/* Takes FILE.lock (flock, released by the kernel when the process dies) and
 * writes its holder into it; *fd holds it. */
static int lock_file(const char *path, const char *command, int *fd_out, otr_error *err)
{
    char *lpath = with_suffix(path, ".lock");
    int fd = lpath ? open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    int rc = -1;
    *fd_out = -1;
    if (fd < 0) {
        otr_error_set(err, OTR_ERR_IO,
                      "cannot open the lock file %s: %s; check the folder's "
                      "permissions and owner",
                      lpath ? lpath : path, strerror(errno));
        goto done;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        otr_buf holder = OTR_BUF_INIT;
        describe_holder(lpath, &holder);
        otr_error_set(err, OTR_ERR_LOCKED,
                      "state %s is locked by another run: %s; try again when it has finished", path,
                      otr_buf_cstr(&holder));
        otr_buf_free(&holder);
        close(fd);
        goto done;
    }
    char host[256] = "unknown";
    gethostname(host, sizeof(host) - 1);
    char *now = otr_time_now_iso8601();
    cJSON *h = cJSON_CreateObject();
    cJSON_AddNumberToObject(h, "pid", (double)getpid());
    cJSON_AddStringToObject(h, "host", host);
    cJSON_AddStringToObject(h, "startedAt", now ? now : "");
    cJSON_AddStringToObject(h, "command", command);
    char *text = cJSON_PrintUnformatted(h);
    if (ftruncate(fd, 0) == 0 && text)
        otr_file_write_all(fd, text, strlen(text));
    free(text);
    free(now);
    cJSON_Delete(h);
    *fd_out = fd;
    rc = 0;
done:
    free(lpath);
    return rc;
}

int otr_state_open(otr_state **out, const char *path, const char *lock_for, int repair,
                   otr_error *err)
{
    int fd = -1;
    *out = NULL;
    if (lock_for && lock_file(path, lock_for, &fd, err) < 0)
        return -1;
    if (load_consistent(out, path, repair, err) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    (*out)->lock_fd = fd;
    return 0;
}

/* ---- the journal --------------------------------------------------------------- */

/* Appends a line (NULL: no memory) and makes it durable. */
static int journal_append(otr_state *s, char *line, otr_error *err)
{
    int rc = -1;
    if (!line) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (s->journal_fd < 0) {
        char *jpath = with_suffix(s->path, ".journal");
        s->journal_fd = jpath ? open(jpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
        if (s->journal_fd < 0) {
            otr_error_set(err, OTR_ERR_IO, "cannot open the journal %s: %s",
                          jpath ? jpath : s->path, strerror(errno));
            free(jpath);
            goto done;
        }
        free(jpath);
    }
    if (otr_file_write_all(s->journal_fd, line, strlen(line)) == 0 && fdatasync(s->journal_fd) == 0)
        rc = 0;
    else
        otr_error_set(err, OTR_ERR_IO,
                      "cannot write the journal of %s: %s; nothing more will be "
                      "sent until it can be written",
                      s->path, strerror(errno));
done:
    free(line);
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
    char *jpath = with_suffix(s->path, ".journal");
    int rc = 0;
    if (!jpath)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    if (s->journal_fd >= 0) {
        close(s->journal_fd);
        s->journal_fd = -1;
    }
    if (s->npending == 0) {
        int fd = open(jpath, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd >= 0) {
            if (fsync(fd) < 0)
                rc = otr_error_set(err, OTR_ERR_IO, "cannot empty %s: %s", jpath, strerror(errno));
            close(fd);
        } else if (errno != ENOENT) {
            rc = otr_error_set(err, OTR_ERR_IO, "cannot empty %s: %s", jpath, strerror(errno));
        }
    } else {
        otr_buf lines = OTR_BUF_INIT;
        int nomem = 0;
        for (size_t i = 0; i < s->npending; i++) {
            char *line = otr_state_intent_line(s, &s->pending[i], (long)(i + 1));
            if (!line || otr_buf_puts(&lines, line) < 0)
                nomem = 1;
            free(line);
        }
        if (nomem)
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        else
            rc = otr_file_write_atomic(jpath, lines.ptr, lines.len, err);
        s->journal_seq = (long)s->npending;
        otr_buf_free(&lines);
    }
    free(jpath);
    return rc;
}

/* Keeps the previous snapshot as FILE.bak (a hard link: no copy, no gap). */
static int keep_backup(const otr_state *s, otr_error *err)
{
    char *bak = with_suffix(s->path, ".bak");
    int rc = 0;
    if (!bak)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    unlink(bak);
    if (link(s->path, bak) < 0 && errno != ENOENT && errno != EEXIST)
        rc = otr_error_set(err, OTR_ERR_IO, "cannot keep the previous state as %s: %s", bak,
                           strerror(errno));
    free(bak);
    return rc;
}

int otr_state_save(otr_state *s, const cJSON *source, const cJSON *service, otr_error *err)
{
    char *text = NULL;
    otr_buf b = OTR_BUF_INIT;
    int rc = -1;
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
    if (s->exists && keep_backup(s, err) < 0)
        goto fail;
    if (otr_file_write_atomic(s->path, b.ptr, b.len, err) < 0) {
        otr_error_prefix(err, "cannot save the state");
        goto fail;
    }
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
