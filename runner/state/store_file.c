/*
 * The state in a local file (see state.h). The snapshot is read without a
 * lock, consistently with its journal; a run takes FILE.lock (flock,
 * released by the kernel if the process dies, and explicitly on every path)
 * before it reads; the journal is appended with O_APPEND and fdatasync; the
 * snapshot is written to FILE.tmp, fsync'd, renamed into place and its
 * folder fsync'd, the previous one kept as FILE.bak.
 */
#include "state/store.h"

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

typedef struct file_store {
    otr_store base;
    char *path, *jpath, *lpath, *bpath;
    int lock_fd;
    int journal_fd;
    int exists; /* the snapshot was there when read */
} file_store;

static char *with_suffix(const char *path, const char *suffix)
{
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s%s", path, suffix);
    return otr_buf_detach(&b);
}

/* ---- reading ----------------------------------------------------------------- */

/* Reads path into text; an absent file is empty (*exists 0). */
static int read_file(const char *path, otr_buf *text, int *exists, otr_error *err)
{
    otr_error ferr = OTR_ERROR_INIT;
    *exists = 1;
    otr_buf_clear(text);
    if (otr_file_read(path, OTR_STATE_MAX_BYTES, text, &ferr) == 0)
        return 0;
    *exists = 0;
    int rc = 0;
    if (ferr.code != OTR_ERR_NOTFOUND)
        rc = otr_error_set(err, ferr.code, "state file %s: %s", path, otr_error_message(&ferr));
    otr_error_clear(&ferr);
    return rc;
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

/* The journal, then the snapshot: a run that saves meanwhile can only make
 * the snapshot newer than the journal read (whose lines it then holds
 * already), never older, since a save renames the new snapshot in before it
 * empties the journal. When the snapshot changed under the read, both are
 * read again, so the pair is one run's when a read can be had between
 * saves. */
static int file_read(otr_store *st, otr_buf *journal, otr_buf *snapshot, int *exists,
                     otr_error *err)
{
    file_store *f = (file_store *)st;
    for (int attempt = 1;; attempt++) {
        struct stat before, after;
        int jexists;
        int had = stat(f->path, &before) == 0;
        if (read_file(f->jpath, journal, &jexists, err) < 0 ||
            read_file(f->path, snapshot, exists, err) < 0)
            return -1;
        int has = stat(f->path, &after) == 0;
        if (same_file(had, &before, has, &after) || attempt == OTR_STATE_MAX_READ_ATTEMPTS) {
            f->exists = *exists;
            return 0;
        }
    }
}

/* ---- the lock ---------------------------------------------------------------- */

/* "pid 4242 on ci-7 since ... (ota-runner apply)", from the lock file. */
static void describe_holder(const char *lpath, otr_buf *out)
{
    otr_buf holder = OTR_BUF_INIT;
    otr_error ignored = OTR_ERROR_INIT;
    if (otr_file_read(lpath, OTR_STATE_MAX_LOCK_BYTES, &holder, &ignored) < 0)
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

static int file_holder(otr_store *st, otr_buf *holder)
{
    file_store *f = (file_store *)st;
    int fd = open(f->lpath, O_RDONLY | O_CLOEXEC);
    int held = 0;
    /* a shared lock is refused only while a run holds the exclusive one; it
     * is let go at once */
    if (fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
        held = 1;
        describe_holder(f->lpath, holder);
    }
    if (fd >= 0)
        close(fd);
    return held;
}

/* Takes FILE.lock (flock) and writes its holder into it. */
static int file_lock(otr_store *st, const char *command, otr_error *err)
{
    file_store *f = (file_store *)st;
    int fd = open(f->lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return otr_error_set(err, OTR_ERR_IO,
                             "cannot open the lock file %s: %s; check the folder's "
                             "permissions and owner",
                             f->lpath, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        otr_buf holder = OTR_BUF_INIT;
        describe_holder(f->lpath, &holder);
        otr_error_set(err, OTR_ERR_LOCKED, "state %s is locked by another run: %s", f->path,
                      otr_buf_cstr(&holder));
        otr_buf_free(&holder);
        close(fd);
        return -1;
    }
    /* the holder's name is for messages only: a lock without it still holds */
    char *text = otr_state_lock_text(command, NULL, NULL);
    if (ftruncate(fd, 0) == 0 && text)
        (void)!otr_file_write_all(fd, text, strlen(text));
    free(text);
    f->lock_fd = fd;
    return 0;
}

static int file_unlock(otr_store *st, otr_error *err)
{
    file_store *f = (file_store *)st;
    (void)err;
    if (f->lock_fd >= 0)
        close(f->lock_fd); /* releases the flock */
    f->lock_fd = -1;
    return 0;
}

static int file_break_lock(otr_store *st, const char *lock_id, otr_error *err)
{
    (void)lock_id;
    return otr_error_set(err, OTR_ERR_USAGE,
                         "state %s is a local file: its lock (flock) is released when the run "
                         "holding it ends, so there is nothing to unlock by hand",
                         st->where);
}

/* ---- the journal --------------------------------------------------------------- */

static int file_append(otr_store *st, const char *text, size_t len, size_t n, long serial,
                       long first, otr_error *err)
{
    file_store *f = (file_store *)st;
    (void)n; /* the lines' numbers and serial are in their text */
    (void)serial;
    (void)first;
    if (f->journal_fd < 0) {
        f->journal_fd = open(f->jpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (f->journal_fd < 0)
            return otr_error_set(err, OTR_ERR_IO, "cannot open the journal %s: %s", f->jpath,
                                 strerror(errno));
    }
    if (otr_file_write_all(f->journal_fd, text, len) == 0 && fdatasync(f->journal_fd) == 0)
        return 0;
    return otr_error_set(err, OTR_ERR_IO,
                         "cannot write the journal of %s: %s; nothing more will be sent until it "
                         "can be written",
                         f->path, strerror(errno));
}

static int file_reset(otr_store *st, const char *lines, size_t len, long serial, otr_error *err)
{
    file_store *f = (file_store *)st;
    (void)serial;
    if (f->journal_fd >= 0) {
        close(f->journal_fd);
        f->journal_fd = -1;
    }
    if (len)
        return otr_file_write_atomic(f->jpath, lines, len, err);
    int fd = open(f->jpath, O_WRONLY | O_TRUNC | O_CLOEXEC), rc = 0;
    if (fd >= 0) {
        if (fsync(fd) < 0)
            rc = otr_error_set(err, OTR_ERR_IO, "cannot empty %s: %s", f->jpath, strerror(errno));
        close(fd);
    } else if (errno != ENOENT) {
        rc = otr_error_set(err, OTR_ERR_IO, "cannot empty %s: %s", f->jpath, strerror(errno));
    }
    return rc;
}

/* ---- the snapshot -------------------------------------------------------------------- */

/* Keeps the previous snapshot as FILE.bak (a hard link: no copy, no gap). */
static int keep_backup(const file_store *f, otr_error *err)
{
    unlink(f->bpath);
    if (link(f->path, f->bpath) < 0 && errno != ENOENT && errno != EEXIST)
        return otr_error_set(err, OTR_ERR_IO, "cannot keep the previous state as %s: %s", f->bpath,
                             strerror(errno));
    return 0;
}

static int file_write(otr_store *st, const char *text, size_t len, otr_error *err)
{
    file_store *f = (file_store *)st;
    if (f->exists && keep_backup(f, err) < 0)
        return -1;
    if (otr_file_write_atomic(f->path, text, len, err) < 0)
        return otr_error_prefix(err, "cannot save the state");
    f->exists = 1;
    return 0;
}

static void file_free(otr_store *st)
{
    file_store *f = (file_store *)st;
    if (f->journal_fd >= 0)
        close(f->journal_fd);
    free(f->path);
    free(f->jpath);
    free(f->lpath);
    free(f->bpath);
}

static const otr_store_ops file_ops = {
    .read = file_read,
    .lock = file_lock,
    .unlock = file_unlock,
    .holder = file_holder,
    .break_lock = file_break_lock,
    .append = file_append,
    .write = file_write,
    .reset = file_reset,
    .free = file_free,
};

int otr_store_file_open(otr_store **out, const otr_state_where *w, otr_error *err)
{
    file_store *f = calloc(1, sizeof(*f));
    *out = NULL;
    if (!f)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    f->base.ops = &file_ops;
    f->lock_fd = f->journal_fd = -1;
    f->path = strdup(w->location);
    f->jpath = with_suffix(w->location, ".journal");
    f->lpath = with_suffix(w->location, ".lock");
    f->bpath = with_suffix(w->location, ".bak");
    f->base.where = strdup(w->location);
    f->base.journal_where = f->jpath ? strdup(f->jpath) : NULL;
    if (!f->path || !f->jpath || !f->lpath || !f->bpath || !f->base.where ||
        !f->base.journal_where) {
        otr_store_free(&f->base);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    *out = &f->base;
    return 0;
}
