/*
 * Manifests from git with libgit2: open or mirror a repository, resolve a
 * ref to a commit, list *.yaml / *.yml below a path in sorted order, and read
 * the blobs (or the working-tree files) one at a time, in the order that
 * reads fastest, each with its place in path order.
 */
#include "source/source.h"
#include "util/alloc.h"
#include "source/internal.h"

#include "util/buf.h"
#include "util/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *otr_source_root(const char *repo)
{
    git_repository *r = NULL;
    char *root = NULL;
    if (!repo || otr_source_is_url(repo) || git_libgit2_init() < 0)
        return NULL;
    if (git_repository_open_ext(&r, repo, 0, NULL) == 0 && git_repository_workdir(r))
        root = strdup(git_repository_workdir(r));
    git_repository_free(r);
    git_libgit2_shutdown();
    return root;
}

int otr_source_is_url(const char *repo)
{
    if (strstr(repo, "://"))
        return 1;
    /* scp-like ssh: user@host:path (but not a local path with a colon) */
    const char *at = strchr(repo, '@'), *colon = strchr(repo, ':'), *slash = strchr(repo, '/');
    return at && colon && at < colon && (!slash || colon < slash);
}

static int has_manifest_ext(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static int add_entry(otr_source *s, const char *dir, const char *name, entry_kind kind,
                     const git_oid *oid, size_t size)
{
    if (OTR_GROW(s->entries, s->count, s->alloc, 64) < 0)
        return -1;
    otr_buf b = OTR_BUF_INIT;
    if (dir[0] && otr_buf_printf(&b, "%s/", dir) < 0)
        return -1;
    if (otr_buf_puts(&b, name) < 0) {
        otr_buf_free(&b);
        return -1;
    }
    entry *e = &s->entries[s->count++];
    e->path = otr_buf_detach(&b);
    e->kind = kind;
    e->size = size;
    if (oid)
        git_oid_cpy(&e->oid, oid);
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->path, ((const entry *)b)->path);
}

/* ---- listing ------------------------------------------------------------------ */

typedef struct walk_ctx {
    otr_source *s;
    const char *prefix; /* the path, "" for the root */
    int failed;
} walk_ctx;

static int tree_cb(const char *root, const git_tree_entry *e, void *payload)
{
    walk_ctx *w = payload;
    const char *name = git_tree_entry_name(e);
    git_filemode_t mode = git_tree_entry_filemode(e);
    otr_buf dir = OTR_BUF_INIT;
    int rc = 0;
    otr_buf_puts(&dir, w->prefix);
    if (*root) {
        if (dir.len)
            otr_buf_putc(&dir, '/');
        otr_buf_append(&dir, root, strlen(root) - 1); /* root ends in '/' */
    }
    if (mode == GIT_FILEMODE_LINK)
        rc = add_entry(w->s, otr_buf_cstr(&dir), name, ENTRY_SYMLINK, NULL, 0);
    else if (mode == GIT_FILEMODE_COMMIT)
        rc = add_entry(w->s, otr_buf_cstr(&dir), name, ENTRY_SUBMODULE, NULL, 0);
    else if (mode != GIT_FILEMODE_TREE && has_manifest_ext(name))
        rc = add_entry(w->s, otr_buf_cstr(&dir), name, ENTRY_FILE, git_tree_entry_id(e), 0);
    otr_buf_free(&dir);
    if (rc < 0) {
        w->failed = 1;
        return -1;
    }
    /* A submodule is an entry of its own; never descend into it. */
    return mode == GIT_FILEMODE_COMMIT ? 1 : 0;
}

/* The manifest files under one path of the commit's tree. */
static int list_tree_path(otr_source *s, git_tree *root, const char *path, const char *short_id,
                          otr_error *err)
{
    git_tree *tree = NULL;
    git_tree_entry *te = NULL;
    int rc = -1;
    if (!path[0]) {
        if (git_tree_dup(&tree, root) < 0) {
            otr_source_git_fail(err, OTR_ERR_IO, "cannot read the tree of the commit");
            goto done;
        }
    } else {
        if (git_tree_entry_bypath(&te, root, path) < 0) {
            otr_error_set(err, OTR_ERR_NOTFOUND, "--path %s does not exist in commit %s", path,
                          short_id);
            goto done;
        }
        if (git_tree_entry_type(te) != GIT_OBJECT_TREE ||
            git_tree_lookup(&tree, s->repo, git_tree_entry_id(te)) < 0) {
            otr_error_set(err, OTR_ERR_NOTFOUND, "--path %s is not a folder in commit %s", path,
                          short_id);
            goto done;
        }
    }
    walk_ctx w = {s, path, 0};
    if (git_tree_walk(tree, GIT_TREEWALK_PRE, tree_cb, &w) < 0) {
        if (w.failed)
            otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        else
            otr_source_git_fail(err, OTR_ERR_IO, "cannot walk the tree");
        goto done;
    }
    rc = 0;
done:
    git_tree_entry_free(te);
    git_tree_free(tree);
    return rc;
}

static int list_commit(otr_source *s, git_commit *commit, otr_error *err)
{
    git_tree *root = NULL;
    int rc = 0;
    char short_id[13];
    git_oid_tostr(short_id, sizeof(short_id), git_commit_id(commit));
    if (git_commit_tree(&root, commit) < 0)
        return otr_source_git_fail(err, OTR_ERR_IO, "cannot read the tree of the commit");
    for (size_t i = 0; rc == 0 && i < s->npaths; i++)
        rc = list_tree_path(s, root, s->paths[i], short_id, err);
    git_tree_free(root);
    return rc;
}

static int list_dir(otr_source *s, const char *workdir, const char *rel, otr_error *err)
{
    otr_buf full = OTR_BUF_INIT;
    otr_buf_printf(&full, "%s%s", workdir, rel);
    DIR *d = opendir(otr_buf_cstr(&full));
    int rc = 0;
    if (!d) {
        rc = otr_error_set(err, errno == ENOENT ? OTR_ERR_NOTFOUND : OTR_ERR_IO,
                           "--path %s: cannot read %s in the working tree: %s", rel,
                           otr_buf_cstr(&full), strerror(errno));
        otr_buf_free(&full);
        return rc;
    }
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        const char *name = de->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, ".git"))
            continue;
        otr_buf child = OTR_BUF_INIT;
        otr_buf_printf(&child, "%s%s%s", rel, *rel ? "/" : "", name);
        otr_buf path = OTR_BUF_INIT;
        otr_buf_printf(&path, "%s%s", workdir, otr_buf_cstr(&child));
        struct stat st;
        if (lstat(otr_buf_cstr(&path), &st) < 0)
            rc = otr_error_set(err, OTR_ERR_IO, "cannot stat %s: %s", otr_buf_cstr(&path),
                               strerror(errno));
        else if (S_ISLNK(st.st_mode))
            rc = add_entry(s, rel, name, ENTRY_SYMLINK, NULL, 0);
        else if (S_ISDIR(st.st_mode))
            rc = list_dir(s, workdir, otr_buf_cstr(&child), err);
        else if (S_ISREG(st.st_mode) && has_manifest_ext(name))
            rc = add_entry(s, rel, name, ENTRY_FILE, NULL, (size_t)st.st_size);
        otr_buf_free(&child);
        otr_buf_free(&path);
    }
    closedir(d);
    otr_buf_free(&full);
    return rc;
}

/* ---- open ------------------------------------------------------------------------ */

/* "manifests/", "./manifests" and "manifests" name one folder; "." the root. */
static char *normalize_path(const char *p)
{
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    if (!strcmp(p, "."))
        p = "";
    char *out = strdup(p);
    if (!out)
        return NULL;
    size_t n = strlen(out);
    while (n && out[n - 1] == '/')
        out[--n] = '\0';
    return out;
}

/* libgit2 refuses a repository another user owns (git's safe.directory rule)
 * but, in 1.5, reports it as "not found": look for one above path. */
static int owned_by_another_user(const char *path)
{
    static const char *const marks[] = {"/.git", "/HEAD"}; /* a work tree; a bare repository */
    char *dir = realpath(path, NULL);
    int verdict = 0; /* 1: another user's repository, -1: ours */
    while (dir && !verdict) {
        for (size_t i = 0; i < 2 && !verdict; i++) {
            otr_buf probe = OTR_BUF_INIT;
            struct stat st;
            otr_buf_printf(&probe, "%s%s", strcmp(dir, "/") ? dir : "", marks[i]);
            if (lstat(probe.ptr, &st) == 0)
                verdict = st.st_uid != geteuid() ? 1 : -1;
            otr_buf_free(&probe);
        }
        char *slash = strrchr(dir, '/');
        if (!strcmp(dir, "/") || !slash)
            break;
        slash[slash == dir ? 1 : 0] = '\0'; /* up one folder ("/a" -> "/") */
    }
    free(dir);
    return verdict == 1;
}

/* A short --ref that names two refs (a tag and a branch "prod") would be
 * read as whichever git's rules put first, which git only warns about; a
 * firmware's ref must be one thing. 1 (err set) when it is ambiguous. */
static int ambiguous_ref(otr_source *s, const char *ref, otr_error *err)
{
    static const char *const where[] = {"refs/%s", "refs/tags/%s", "refs/heads/%s",
                                        "refs/remotes/%s"};
    char names[4][300];
    size_t found = 0;
    if (!strncmp(ref, "refs/", 5) || strlen(ref) > 250)
        return 0;
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        git_reference *r = NULL;
        snprintf(names[found], sizeof(names[found]), where[i], ref);
        if (git_reference_lookup(&r, s->repo, names[found]) == 0)
            found++;
        git_reference_free(r);
    }
    if (found < 2)
        return 0;
    otr_error_set(err, OTR_ERR_USAGE,
                  "--ref %s is ambiguous in %s: %s and %s both exist; name the one meant in full "
                  "(--ref %s or --ref %s)",
                  ref, s->repo_name, names[0], names[1], names[0], names[1]);
    return 1;
}

static int open_repo(otr_source *s, const otr_source_opts *o, otr_error *err)
{
    if (otr_source_is_url(s->repo_url)) {
        if (o->worktree)
            return otr_error_set(err, OTR_ERR_USAGE,
                                 "--worktree reads a local working tree; it cannot be used "
                                 "with a URL (%s)",
                                 s->repo_name);
        return otr_source_open_url(&s->repo, s->repo_url, s->repo_name, o->cache_dir,
                                   o->fetch_idle_s > 0 ? o->fetch_idle_s : OTR_FETCH_IDLE_S,
                                   o->fetch_total_s > 0 ? o->fetch_total_s : OTR_FETCH_TOTAL_S,
                                   err);
    }
    int rc = git_repository_open_ext(&s->repo, s->repo_url, 0, NULL);
    if (rc == GIT_EOWNER || (rc < 0 && owned_by_another_user(s->repo_name)))
        return otr_error_set(err, OTR_ERR_NOTFOUND,
                             "%s is owned by another user, and git does not trust it; if you do, "
                             "run: git config --global --add safe.directory <its path>",
                             s->repo_name);
    if (rc < 0)
        return otr_error_set(err, OTR_ERR_NOTFOUND,
                             "%s is not a git repository (nor is any folder above it); "
                             "use --repo to name one",
                             s->repo_name);
    return 0;
}

/* Does folder a hold b (or is it b)? "" holds everything. */
static int holds(const char *a, const char *b)
{
    size_t n = strlen(a);
    return !n || (!strncmp(a, b, n) && (b[n] == '/' || !b[n]));
}

/* --path A[:B...]: each a folder inside the repository, none inside another
 * (a file would be read twice), joined again as s->path. */
static int split_paths(otr_source *s, const char *given, otr_error *err)
{
    otr_buf joined = OTR_BUF_INIT;
    for (const char *p = given;; p++) {
        size_t len = strcspn(p, ":");
        char *one = strndup(p, len), *path = one ? normalize_path(one) : NULL;
        char **grown = path ? realloc(s->paths, (s->npaths + 1) * sizeof(*grown)) : NULL;
        free(one);
        if (!grown) {
            free(path);
            otr_buf_free(&joined);
            return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        }
        s->paths = grown;
        s->paths[s->npaths++] = path;
        if (strstr(path, "..") || path[0] == '/') {
            otr_buf_free(&joined);
            return otr_error_set(err, OTR_ERR_USAGE,
                                 "--path %s must be a folder inside the repository, without '..'",
                                 path);
        }
        for (size_t i = 0; i + 1 < s->npaths; i++)
            if (holds(s->paths[i], path) || holds(path, s->paths[i])) {
                otr_buf_free(&joined);
                return otr_error_set(err, OTR_ERR_USAGE,
                                     "--path %s and %s overlap: give folders side by side, none "
                                     "inside another",
                                     s->paths[i][0] ? s->paths[i] : ".", path[0] ? path : ".");
            }
        otr_buf_printf(&joined, "%s%s", s->npaths > 1 ? ":" : "", path);
        p += len;
        if (!*p)
            break;
    }
    if (!(s->path = otr_buf_detach(&joined)))
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    return 0;
}

/* The commit ref names (a short name both a tag and a branch refused), into
 * *obj (as named: an annotated tag stays one) and *commit; s->commit and
 * s->tag say which. 0, or -1 with err. */
static int resolve_ref(otr_source *s, const char *ref, git_object **obj, git_commit **commit,
                       otr_error *err)
{
    if (ambiguous_ref(s, ref, err))
        return -1;
    if (git_revparse_single(obj, s->repo, ref) < 0) {
        if (!strcmp(ref, "HEAD") && git_repository_head_unborn(s->repo) == 1)
            return otr_error_set(err, OTR_ERR_NOTFOUND,
                                 "the repository %s has no commit yet: commit the manifests "
                                 "(git add -A && git commit), or give --worktree to read the "
                                 "files",
                                 s->repo_name);
        return otr_error_set(err, OTR_ERR_NOTFOUND,
                             "unknown ref %s in %s (a branch, tag, remote-tracking branch or "
                             "commit id)",
                             ref, s->repo_name);
    }
    if (git_object_peel((git_object **)commit, *obj, GIT_OBJECT_COMMIT) < 0)
        return otr_error_set(err, OTR_ERR_NOTFOUND, "ref %s in %s does not name a commit", ref,
                             s->repo_name);
    git_oid_tostr(s->commit, sizeof(s->commit), git_commit_id(*commit));
    if (git_object_type(*obj) == GIT_OBJECT_TAG)
        git_oid_tostr(s->tag, sizeof(s->tag), git_object_id(*obj));
    return 0;
}

/* A source of o's repository, not opened yet; NULL without memory. */
static otr_source *source_new(const otr_source_opts *o)
{
    otr_source *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->repo_url = strdup(o->repo ? o->repo : ".");
    s->repo_name = otr_url_redact(o->repo ? o->repo : "."); /* what messages and files show */
    s->worktree = o->worktree;
    s->max_file_size = o->max_file_size;
    if (!s->repo_url || !s->repo_name) {
        otr_source_free(s);
        return NULL;
    }
    return s;
}

int otr_source_open(otr_source **out, const otr_source_opts *o, otr_error *err)
{
    otr_source *s = source_new(o);
    git_object *obj = NULL;
    git_commit *commit = NULL;
    const char *ref = o->ref ? o->ref : "HEAD";
    int rc = -1;
    *out = NULL;
    if (!s)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    if (o->config_file && !(s->config_file = strdup(o->config_file))) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (split_paths(s, o->path ? o->path : "manifests", err) < 0 || open_repo(s, o, err) < 0)
        goto done;

    if (s->worktree) {
        const char *workdir = git_repository_workdir(s->repo);
        if (!workdir) {
            otr_error_set(err, OTR_ERR_USAGE, "--worktree: %s is a bare repository", s->repo_name);
            goto done;
        }
        if (git_revparse_single(&obj, s->repo, "HEAD") == 0 &&
            git_object_peel((git_object **)&commit, obj, GIT_OBJECT_COMMIT) == 0)
            git_oid_tostr(s->commit, sizeof(s->commit), git_commit_id(commit));
        for (size_t i = 0; i < s->npaths; i++)
            if (list_dir(s, workdir, s->paths[i], err) < 0)
                goto done;
    } else {
        if (resolve_ref(s, ref, &obj, &commit, err) < 0 || list_commit(s, commit, err) < 0)
            goto done;
    }
    if (s->count > 1)
        qsort(s->entries, s->count, sizeof(*s->entries), entry_cmp);
    for (size_t i = 1; i < s->count; i++)
        if (!strcmp(s->entries[i - 1].path, s->entries[i].path)) {
            /* git fsck's duplicateEntries: a damaged or forged tree; which
             * of the two git would read is not for ota-runner to guess */
            otr_error_set(err, OTR_ERR_INVALID,
                          "commit %.12s holds %s twice (a tree with two entries of one name, "
                          "which git fsck reports as duplicateEntries): the commit is damaged "
                          "or forged",
                          s->commit, s->entries[i].path);
            goto done;
        }
    rc = 0;
done:
    git_commit_free(commit);
    git_object_free(obj);
    if (rc < 0)
        otr_source_free(s);
    else
        *out = s;
    return rc;
}

/* The blob at name in the root of commit's tree: 1, 0 when there is none. */
static int read_root_blob(otr_source *s, git_commit *commit, const char *name, otr_buf *out,
                          otr_error *err)
{
    git_tree *root = NULL;
    git_tree_entry *te = NULL;
    git_blob *blob = NULL;
    int rc = 0;
    if (git_commit_tree(&root, commit) < 0)
        return otr_source_git_fail(err, OTR_ERR_IO, "cannot read the tree of the commit");
    if (git_tree_entry_bypath(&te, root, name) == 0) {
        if (git_tree_entry_type(te) != GIT_OBJECT_BLOB ||
            git_blob_lookup(&blob, s->repo, git_tree_entry_id(te)) < 0)
            rc = otr_error_set(err, OTR_ERR_INVALID, "%s in %s is not a file", name, s->repo_name);
        else if ((size_t)git_blob_rawsize(blob) > s->max_file_size)
            rc = otr_error_set(err, OTR_ERR_INVALID, "%s is larger than %zu bytes", name,
                               s->max_file_size);
        else
            rc = otr_buf_append(out, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob)) < 0
                     ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory")
                     : 1;
    }
    git_blob_free(blob);
    git_tree_entry_free(te);
    git_tree_free(root);
    return rc;
}

int otr_source_read_root(const otr_source_opts *o, const char *name, otr_buf *out, otr_error *err)
{
    otr_source *s = source_new(o);
    git_object *obj = NULL;
    git_commit *commit = NULL;
    const char *ref = o->ref ? o->ref : "HEAD";
    int rc = -1;
    if (!s)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    if (!s->max_file_size)
        s->max_file_size = (size_t)1 << 20;
    if (open_repo(s, o, err) < 0)
        goto done;
    if (s->worktree && git_repository_workdir(s->repo)) {
        otr_buf full = OTR_BUF_INIT;
        otr_buf_printf(&full, "%s%s", git_repository_workdir(s->repo), name);
        rc = access(otr_buf_cstr(&full), F_OK) < 0
                 ? 0
                 : (otr_file_read(otr_buf_cstr(&full), s->max_file_size, out, err) < 0 ? -1 : 1);
        otr_buf_free(&full);
        goto done;
    }
    if (resolve_ref(s, ref, &obj, &commit, err) == 0)
        rc = read_root_blob(s, commit, name, out, err);
done:
    git_commit_free(commit);
    git_object_free(obj);
    otr_source_free(s);
    return rc;
}

const char *otr_source_commit(const otr_source *s)
{
    return s->commit;
}

int otr_source_is_worktree(const otr_source *s)
{
    return s->worktree;
}

const char *otr_source_repo(const otr_source *s)
{
    return s->repo_name;
}

const char *otr_source_path(const otr_source *s)
{
    return s->path[0] ? s->path : ".";
}

/* The files among the entries still listed. */
static size_t listed_files(const otr_source *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->count; i++)
        n += s->entries[i].kind == ENTRY_FILE;
    return n;
}

size_t otr_source_file_count(const otr_source *s)
{
    return s->files + listed_files(s);
}

/* The listing, once every file was handed over: a path and an id per file
 * (11 MiB for 100k files) not held for the rest of the run. */
static void release_entries(otr_source *s)
{
    s->files += listed_files(s);
    for (size_t i = 0; i < s->count; i++)
        free(s->entries[i].path);
    free(s->entries);
    s->entries = NULL;
    s->count = s->alloc = 0;
}

static int read_worktree_file(otr_source *s, const entry *e, otr_buf *out, otr_error *err)
{
    otr_buf path = OTR_BUF_INIT;
    otr_buf_printf(&path, "%s%s", git_repository_workdir(s->repo), e->path);
    int rc = otr_file_read(otr_buf_cstr(&path), SIZE_MAX, out, err);
    otr_buf_free(&path);
    return rc;
}

/*
 * The order to read blobs in: backwards through the object store.
 * git_odb_foreach lists a pack's objects by offset, and a delta's base lies
 * before it. libgit2 caches the bases it inflates on the way down a delta
 * chain, so the first read of a chain from its end caches the objects before
 * it, and the next reads find theirs in the cache. Path order jumps from chain
 * to chain, and once the chains outgrow libgit2's delta-base cache (16 MiB,
 * fixed in 1.5) every read inflates its chain again: 100k manifests written
 * by git fast-import took 43x the time of 10k in path order, 10x backwards.
 * (A pack written by git repack, as a clone gets it, reads about as fast
 * either way.)
 *
 * Listing costs time in proportion to every object in the repository, so a
 * few manifests in a large repository keep path order: below PACK_ORDER_MIN
 * files (a few MiB of manifests) the delta-base cache holds their chains.
 */
#define PACK_ORDER_MIN 4096

typedef struct wanted {
    git_oid oid;
    size_t entry;
} wanted;

typedef struct rank_ctx {
    const wanted *w; /* sorted by oid */
    size_t n;
    size_t *rank; /* by entry; SIZE_MAX until found */
    size_t next;
    size_t left;
} rank_ctx;

static int wanted_cmp(const void *a, const void *b)
{
    return git_oid_cmp(&((const wanted *)a)->oid, &((const wanted *)b)->oid);
}

static int rank_object(const git_oid *id, void *payload)
{
    rank_ctx *c = payload;
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (git_oid_cmp(&c->w[mid].oid, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t r = c->next++;
    for (; lo < c->n && git_oid_equal(&c->w[lo].oid, id); lo++) {
        if (c->rank[c->w[lo].entry] == SIZE_MAX) {
            c->rank[c->w[lo].entry] = r;
            c->left--;
        }
    }
    return c->left == 0; /* stop once every blob has its place */
}

typedef struct ranked {
    size_t rank, entry;
} ranked;

/* Listed last first; what was not listed after, in path order. */
static int ranked_cmp(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->rank != y->rank) {
        if (x->rank == SIZE_MAX || y->rank == SIZE_MAX)
            return x->rank == SIZE_MAX ? 1 : -1;
        return x->rank > y->rank ? -1 : 1;
    }
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

/* Reorders order (entry indexes) to read backwards through the object store;
 * leaves path order where that cannot be done. */
static void order_by_pack(otr_source *s, size_t *order)
{
    size_t *rank = malloc(s->count * sizeof(*rank));
    wanted *w = malloc(s->count * sizeof(*w));
    ranked *r = malloc(s->count * sizeof(*r));
    git_odb *odb = NULL;
    if (!rank || !w || !r || git_repository_odb(&odb, s->repo) < 0)
        goto done;
    size_t n = 0;
    for (size_t i = 0; i < s->count; i++) {
        rank[i] = SIZE_MAX;
        if (s->entries[i].kind == ENTRY_FILE) {
            git_oid_cpy(&w[n].oid, &s->entries[i].oid);
            w[n++].entry = i;
        }
    }
    qsort(w, n, sizeof(*w), wanted_cmp);
    rank_ctx c = {w, n, rank, 0, n};
    git_odb_foreach(odb, rank_object, &c); /* on failure, what is not ranked keeps path order */
    for (size_t i = 0; i < s->count; i++)
        r[i] = (ranked){rank[i], i};
    qsort(r, s->count, sizeof(*r), ranked_cmp);
    for (size_t i = 0; i < s->count; i++)
        order[i] = r[i].entry;
done:
    git_odb_free(odb);
    free(rank);
    free(w);
    free(r);
}

/* Entry indexes in reading order; free() the result. */
static size_t *read_order(otr_source *s)
{
    size_t *order = calloc(s->count ? s->count : 1, sizeof(*order));
    if (!order)
        return NULL;
    for (size_t i = 0; i < s->count; i++)
        order[i] = i;
    if (!s->worktree && listed_files(s) >= PACK_ORDER_MIN)
        order_by_pack(s, order);
    return order;
}

/* Hands one entry to fn, or reports why it cannot. Returns fn's answer. */
static int hand_entry(otr_source *s, size_t order, otr_diags *diags, otr_source_file_fn fn,
                      void *ctx)
{
    const entry *e = &s->entries[order];
    size_t at;
    if (!otr_utf8_valid(e->path, strlen(e->path))) { /* no JSON output could name it */
        otr_diags_add(diags, OTR_SEV_ERROR, order, "(a file name)", 0, 0, NULL,
                      "a file under --path %s has a name that is not UTF-8; rename it",
                      otr_source_path(s));
        return 0;
    }
    unsigned long bad = otr_forging_find(e->path, strlen(e->path), &at);
    if (bad) { /* printed raw, such a name could forge a line of a plan */
        otr_diags_add(diags, OTR_SEV_ERROR, order, "(a file name)", 0, 0, NULL,
                      "a file under --path %s has U+%04lX at character %zu of its name; rename it "
                      "without control or bidirectional characters",
                      otr_source_path(s), bad, at);
        return 0;
    }
    if (e->kind != ENTRY_FILE) {
        otr_diags_add(diags, OTR_SEV_ERROR, order, e->path, 0, 0, NULL,
                      "%s under --path %s is not followed; keep manifests as regular files",
                      e->kind == ENTRY_SYMLINK ? "symbolic link" : "submodule", otr_source_path(s));
        return 0;
    }
    if (s->worktree) {
        otr_buf data = OTR_BUF_INIT;
        otr_error ferr = OTR_ERROR_INIT;
        int stop = 0;
        if (s->max_file_size && e->size > s->max_file_size)
            otr_diags_add(diags, OTR_SEV_ERROR, order, e->path, 0, 0, NULL,
                          "file is %zu bytes; a manifest file may be at most %zu bytes", e->size,
                          s->max_file_size);
        else if (read_worktree_file(s, e, &data, &ferr) < 0)
            otr_diags_add(diags, OTR_SEV_ERROR, order, e->path, 0, 0, NULL, "%s",
                          otr_error_message(&ferr));
        else
            stop = fn(order, e->path, otr_buf_cstr(&data), data.len, ctx);
        otr_error_clear(&ferr);
        otr_buf_free(&data);
        return stop;
    }
    git_blob *blob = NULL;
    if (git_blob_lookup(&blob, s->repo, &e->oid) < 0) {
        char id[GIT_OID_HEXSZ + 1];
        git_oid_tostr(id, sizeof(id), &e->oid);
        otr_diags_add(diags, OTR_SEV_ERROR, order, e->path, 0, 0, NULL, "cannot read blob %s: %s",
                      id, git_error_last() ? git_error_last()->message : "unknown error");
        return 0;
    }
    size_t size = (size_t)git_blob_rawsize(blob);
    int stop = 0;
    if (s->max_file_size && size > s->max_file_size)
        otr_diags_add(diags, OTR_SEV_ERROR, order, e->path, 0, 0, NULL,
                      "file is %zu bytes; a manifest file may be at most %zu bytes", size,
                      s->max_file_size);
    else
        stop = fn(order, e->path, git_blob_rawcontent(blob), size, ctx);
    git_blob_free(blob);
    return stop;
}

int otr_source_each_file(otr_source *s, otr_diags *diags, otr_source_file_fn fn, void *ctx,
                         otr_error *err)
{
    if (!s->repo)
        return otr_error_set(err, OTR_ERR_GENERIC, "the repository is closed: the files were read");
    size_t *order = read_order(s);
    if (!order)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    int stop = 0;
    for (size_t i = 0; i < s->count && !stop; i++)
        stop = hand_entry(s, order[i], diags, fn, ctx);
    free(order);
    if (stop)
        return -1;
    release_entries(s);
    return 0;
}

otr_relation otr_source_relation(otr_source *s, const char *commit)
{
    git_oid read, other;
    git_commit *c = NULL;
    if (!s->repo || git_oid_fromstr(&read, s->commit) < 0 || git_oid_fromstr(&other, commit) < 0)
        return OTR_REL_UNKNOWN;
    if (git_oid_equal(&read, &other))
        return OTR_REL_SAME;
    /* a shallow clone's history stops at its boundary: a walk there cannot
     * tell older from newer (and libgit2 1.5 leaks on it) */
    if (git_repository_is_shallow(s->repo) == 1 || git_commit_lookup(&c, s->repo, &other) < 0)
        return OTR_REL_UNKNOWN;
    git_commit_free(c);
    if (git_graph_descendant_of(s->repo, &read, &other) == 1)
        return OTR_REL_NEWER;
    if (git_graph_descendant_of(s->repo, &other, &read) == 1)
        return OTR_REL_OLDER;
    return OTR_REL_APART;
}

void otr_source_close_repository(otr_source *s)
{
    git_repository_free(s->repo);
    s->repo = NULL;
}

void otr_source_free(otr_source *s)
{
    if (!s)
        return;
    otr_source_uncommitted_stop(s);
    for (size_t i = 0; i < s->count; i++)
        free(s->entries[i].path);
    free(s->entries);
    git_repository_free(s->repo);
    free(s->repo_name);
    free(s->repo_url);
    free(s->path);
    free(s->config_file);
    for (size_t i = 0; i < s->npaths; i++)
        free(s->paths[i]);
    free(s->paths);
    free(s);
}
