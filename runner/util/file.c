/* Whole-file reads and durable writes. */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int otr_file_read(const char *path, size_t max, otr_buf *out, otr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return otr_error_set(err, errno == ENOENT ? OTR_ERR_NOTFOUND : OTR_ERR_IO,
                             "cannot read %s: %s", path, strerror(errno));
    struct stat st;
    int known = fstat(fd, &st) == 0;
    if (known && !S_ISREG(st.st_mode)) {
        close(fd);
        return otr_error_set(err, OTR_ERR_IO, "%s is %s, not a regular file", path,
                             S_ISDIR(st.st_mode) ? "a folder" : "a device or a pipe");
    }
    if (known && st.st_size > 0 && (uintmax_t)st.st_size <= max)
        (void)otr_buf_reserve(out, (size_t)st.st_size); /* one allocation; if none, the
                                                           append below fails */
    char chunk[65536];
    ssize_t n;
    size_t total = 0;
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return otr_error_set(err, OTR_ERR_IO, "cannot read %s: %s", path, strerror(e));
        }
        total += (size_t)n;
        size_t cap = out->cap && out->cap < max ? out->cap : max;
        if (total > cap || total > OTR_BUF_DEFAULT_CAP) {
            close(fd);
            return otr_error_set(err, OTR_ERR_INVALID, "%s is larger than %zu bytes", path,
                                 cap < OTR_BUF_DEFAULT_CAP ? cap : OTR_BUF_DEFAULT_CAP);
        }
        if (otr_buf_append(out, chunk, (size_t)n) < 0) {
            close(fd);
            return otr_error_set(err, OTR_ERR_NOMEM, "cannot read %s: out of memory", path);
        }
    }
    close(fd);
    return 0;
}

int otr_file_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int otr_file_sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int otr_file_write_atomic(const char *path, const void *data, size_t len, otr_error *err)
{
    otr_buf tmp = OTR_BUF_INIT;
    otr_buf_printf(&tmp, "%s.tmp", path);
    int fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = -1;
    if (fd < 0) {
        otr_error_set(err, OTR_ERR_IO, "cannot write %s: %s", tmp.ptr, strerror(errno));
        goto done;
    }
    if (otr_file_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        otr_error_set(err, OTR_ERR_IO, "cannot write %s: %s", tmp.ptr, strerror(errno));
        close(fd);
        unlink(tmp.ptr);
        goto done;
    }
    close(fd);
    if (rename(tmp.ptr, path) < 0) {
        otr_error_set(err, OTR_ERR_IO, "cannot replace %s: %s", path, strerror(errno));
        unlink(tmp.ptr);
        goto done;
    }
    if (otr_file_sync_dir(path) < 0) {
        otr_error_set(err, OTR_ERR_IO, "cannot sync the folder of %s: %s", path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    otr_buf_free(&tmp);
    return rc;
}
