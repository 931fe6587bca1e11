/*
 * Where manifests come from: one commit of a git repository (libgit2), or,
 * with --worktree, the files of its working tree.
 *
 * A repository is a local path (bare or not, found from any folder inside it)
 * or a URL, which is mirrored into a cache folder and fetched on every open.
 * otr_source owns its libgit2 objects; free it with otr_source_free.
 */
#ifndef OTR_SOURCE_SOURCE_H
#define OTR_SOURCE_SOURCE_H

#include "util/buf.h"
#include "util/error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct otr_source_opts {
    const char *repo;        /* path or URL; NULL means "." */
    const char *ref;         /* NULL means "HEAD" */
    const char *path;        /* folder inside the repository; NULL means "manifests" */
    int worktree;            /* read the working tree instead of the commit */
    const char *cache_dir;   /* for URLs; NULL: $XDG_CACHE_HOME/ota-runner or ~/.cache/ota-runner */
    size_t max_file_size;    /* larger files are reported, not read; 0: no limit */
    int fetch_idle_s;        /* a URL's fetch stopped after this long without progress; 0: 60 */
    int fetch_total_s;       /* ... or this long in all; 0: 600 */
    const char *config_file; /* a file at the root that counts as part of the paths when
                                commits are verified (ota-runner.yaml); NULL: none */
} otr_source_opts;

#define OTR_FETCH_IDLE_S 60
#define OTR_FETCH_TOTAL_S 600

typedef struct otr_source otr_source;

/* Opens (or clones / fetches) the repository, resolves the ref and lists the
 * manifest files below the path. */
OTR_MUST_USE int otr_source_open(otr_source **out, const otr_source_opts *opts, otr_error *err);

/* The commit's full id (40 hex digits); with --worktree, the HEAD commit the
 * working tree is based on ("" in a repository without commits). */
const char *otr_source_commit(const otr_source *s);
int otr_source_is_worktree(const otr_source *s);
/* The file name at the root of the commit o names (its working tree's with
 * o->worktree) appended to out: 1, 0 when there is no such file, -1 with
 * err. For a file beside the manifests, such as ota-runner.yaml. */
OTR_MUST_USE int otr_source_read_root(const otr_source_opts *o, const char *name, otr_buf *out,
                                      otr_error *err);

/* The repository as the user named it, and the path in it. */
const char *otr_source_repo(const otr_source *s);
const char *otr_source_path(const otr_source *s);
size_t otr_source_file_count(const otr_source *s);

/* Called for every manifest file with its place in path order (0, 1, ...; keys
 * for whatever the caller keeps), the path relative to the repository root and
 * the file's bytes (valid during the call). Files come in the order that reads
 * fastest (where the object store keeps them), not in path order. */
typedef int (*otr_source_file_fn)(size_t order, const char *path, const char *data, size_t len,
                                  void *ctx);

/*
 * Reads every file. Symlinks, submodules, files over max_file_size and
 * unreadable files are reported in diags (keyed by their place in path order),
 * not followed. Stops and returns -1 when fn returns non-zero (err is then the
 * caller's) or when memory runs out. Files are read once: the listing is
 * released after the last (otr_source_file_count still counts them).
 */
OTR_MUST_USE int otr_source_each_file(otr_source *s, otr_diags *diags, otr_source_file_fn fn,
                                      void *ctx, otr_error *err);

/* Closes the repository once the files are read: libgit2's caches (up to
 * 16 MiB of delta bases, the pack windows) go with it. The commit, the path
 * and the names stay; otr_source_each_file then fails. */
void otr_source_close_repository(otr_source *s);

typedef enum otr_relation {
    OTR_REL_SAME,    /* the commit read is that one */
    OTR_REL_NEWER,   /* it contains that one (a descendant) */
    OTR_REL_OLDER,   /* that one contains it (an ancestor) */
    OTR_REL_APART,   /* neither contains the other (a rewritten history) */
    OTR_REL_UNKNOWN, /* that one is not in the repository (a shallow clone, another one) */
} otr_relation;

/* How the commit read stands to commit (a hex id), in history; the
 * repository must still be open. */
otr_relation otr_source_relation(otr_source *s, const char *commit);

/* How many files under the path differ from the commit read (changed,
 * staged, new) in the working tree, when that commit is HEAD's and the
 * files were read from it (not --worktree); the first max_names named in
 * names, comma-separated. 0 for a URL or a bare repository; -1 without memory. */
long otr_source_uncommitted(otr_source *s, otr_buf *names, size_t max_names);

/* Begins otr_source_uncommitted's check on a thread of its own, with a
 * handle of its own on the repository, so that it runs beside what the
 * caller does next (a status of a checked-out tree of 10,000 manifests
 * reads as many inodes: a sixth of such a plan); the next
 * otr_source_uncommitted waits for it and answers. Without a thread, that
 * call checks as before. */
void otr_source_uncommitted_start(otr_source *s, size_t max_names);

/* Who signed the commit a source was read from (otr_source_verify). */
typedef struct otr_source_trust {
    char principal[256];  /* the committer's e-mail, which the allowed signers name */
    char fingerprint[64]; /* SSH: SHA256:... of the key; OpenPGP: the primary key's 40 hex digits */
    const char *family;   /* ED25519, ECDSA, RSA */
    const char *format;   /* "ssh" or "openpgp" */
    size_t commits;       /* commits checked (range: the head and those in the range) */
} otr_source_trust;

struct otr_signers;
struct otr_pgp_keyring;

/* What otr_source_verify trusts and how far it looks. */
typedef struct otr_source_verify_options {
    const struct otr_signers *signers;     /* who may sign, for which e-mail */
    const struct otr_pgp_keyring *openpgp; /* the OpenPGP keys the signers name; NULL: none */
    int range;                             /* also the commits since `since` */
    const char *since;   /* the state's last applied commit; NULL or "": the whole history */
    int require_authors; /* range: a merge's brought-in commits must be signed too */
    int64_t now;         /* when OpenPGP keys and signatures must not have expired */
} otr_source_verify_options;

/* Checks that the commit (and the annotated tag --ref named) carries a
 * signature (SSH in the namespace "git", or OpenPGP) by a key the signers
 * list for its committer's (tagger's) e-mail, valid at its time. With
 * range, so must each commit since `since` on the first-parent chain that
 * changes a file under the path (a merge's signer vouches for what it
 * brings in); with require_authors, also each commit a merge brings in
 * (reachable from its other parents, not its first) that changes one.
 * Needs the repository open. On failure err names the commit and why. */
OTR_MUST_USE int otr_source_verify(otr_source *s, const otr_source_verify_options *vo,
                                   otr_source_trust *out, otr_error *err);

void otr_source_free(otr_source *s);

/* The root of the working tree of the local repository at or above repo
 * (git's own search), with a trailing '/'; NULL for a URL, a bare
 * repository or none. free() the result. */
char *otr_source_root(const char *repo);

/* True when repo names a URL rather than a local path. */
int otr_source_is_url(const char *repo);

/* The cache folder for url under cache_dir (distinct URLs never share one);
 * free() the result. */
char *otr_source_cache_path(const char *cache_dir, const char *url);

#endif
