/*
 * Loading many manifest files on several threads, with the outcome of
 * otr_manifest_add_file in reading order.
 *
 * The caller (one thread) hands each file to otr_manifest_loader_add;
 * worker threads parse, validate and compute the tokens of files, each into
 * a set of its own; the caller's thread moves each finished file into the
 * set in the order the files were handed over (otr_manifest_set_absorb), so
 * the set, its diagnostics and the manifest limit come out exactly as if
 * every file had been added there one after another. At most
 * OTR_LOADER_WINDOW files are in flight: memory does not grow with the
 * repository.
 */
#ifndef OTR_KINDS_LOADER_H
#define OTR_KINDS_LOADER_H

#include "kinds/manifest.h"
#include "util/error.h"

#include <stddef.h>

/* Files handed over but not yet moved into the set, at most. */
#define OTR_LOADER_WINDOW 256
/* Fewer files than this are read on the caller's thread alone. */
#define OTR_LOADER_MIN_FILES 64

typedef struct otr_manifest_loader otr_manifest_loader;

/* A loader into set and diags with threads workers (0: otr_threads(),
 * util/parallel.h; 1: none, every file is added on the caller's thread). files is how many will
 * come (fewer than OTR_LOADER_MIN_FILES: no workers). NULL without memory. */
otr_manifest_loader *otr_manifest_loader_new(otr_manifest_set *set, otr_diags *diags, size_t files,
                                             int threads);

/* Hands one file over (data is copied). Returns -1 with err when memory
 * ran out, now or in a file handed over before. */
OTR_MUST_USE int otr_manifest_loader_add(otr_manifest_loader *l, size_t order, const char *file,
                                         const char *data, size_t len, otr_error *err);

/* Waits for every file handed over and moves the last ones into the set;
 * 0, or -1 with err. */
OTR_MUST_USE int otr_manifest_loader_finish(otr_manifest_loader *l, otr_error *err);

/* Stops the workers (after finish, or to give up) and frees the loader. */
void otr_manifest_loader_free(otr_manifest_loader *l);

#endif
