/* Small file helpers: read a whole file with a size cap, durable writes. */
#ifndef OTR_UTIL_FILE_H
#define OTR_UTIL_FILE_H

#include "util/buf.h"
#include "util/error.h"

#include <stddef.h>

/* Reads path into out (appending). Fails with OTR_ERR_NOTFOUND when the file
 * does not exist, OTR_ERR_INVALID when it is larger than max bytes. */
OTR_MUST_USE int otr_file_read(const char *path, size_t max, otr_buf *out, otr_error *err);

/* Writes all of data to fd, retrying short writes. */
OTR_MUST_USE int otr_file_write_all(int fd, const void *data, size_t len);

/* fsync of the folder that holds path, so a rename in it is durable. */
OTR_MUST_USE int otr_file_sync_dir(const char *path);

/* Writes path atomically: path.tmp, fsync, rename, fsync of the folder. */
OTR_MUST_USE int otr_file_write_atomic(const char *path, const void *data, size_t len,
                                       otr_error *err);

#endif
