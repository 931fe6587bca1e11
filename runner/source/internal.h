/* What the source's files share: the repository and what was resolved. */
#ifndef OTR_SOURCE_INTERNAL_H
#define OTR_SOURCE_INTERNAL_H

#include "util/error.h"

#include <git2.h>
#include <stddef.h>

typedef enum entry_kind { ENTRY_FILE, ENTRY_SYMLINK, ENTRY_SUBMODULE } entry_kind;

typedef struct entry {
    char *path; /* relative to the repository root */
    entry_kind kind;
    git_oid oid;
    size_t size; /* worktree files */
} entry;

struct otr_source {
    git_repository *repo;
    char commit[GIT_OID_HEXSZ + 1];
    char tag[GIT_OID_HEXSZ + 1]; /* the annotated tag --ref named, or "" */
    char *repo_name; /* --repo as messages and files show it: no user name or password */
    char *repo_url;  /* --repo as given, to open it */
    char *path;      /* the paths as given, normalized and joined by ':' */
    char **paths;    /* each of them ("" for the repository's root) */
    size_t npaths;
    char *config_file; /* verified with the paths (otr_source_opts), or NULL */
    int worktree;
    size_t max_file_size;
    entry *entries; /* released once the files are read (otr_source_each_file) */
    size_t count, alloc;
    size_t files; /* entries that are files, counted when the entries are released */
    struct uncommitted_check *check; /* otr_source_uncommitted_start's, or NULL */
};

/* Opens the cache entry of url (shown: as messages name it), creating and
 * fetching it; the fetch is stopped after idle_s seconds without progress or
 * total_s in all (fetch.c). */
int otr_source_open_url(git_repository **out, const char *url, const char *shown,
                        const char *cache_dir, int idle_s, int total_s, otr_error *err);

/* Waits for a check otr_source_uncommitted_start began, and forgets it
 * (uncommitted.c). */
void otr_source_uncommitted_stop(struct otr_source *s);

/* err = what: libgit2's last message. Returns -1. */
int otr_source_git_fail(otr_error *err, otr_error_code code, const char *what);

#endif
