/*
 * Working-tree edits under the source's paths that the commit read does not
 * hold (git status), checked on the caller's thread or on one of its own.
 */
#include "source/internal.h"
#include "source/source.h"

#include "util/buf.h"

#include <git2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A check running beside the caller, on a repository handle of its own
 * (libgit2's handles are not shared between threads). */
struct uncommitted_check {
    pthread_t thread;
    int running; /* else done on the caller's thread */
    git_repository *repo;
    char *const *paths; /* the source's, which outlives the check */
    size_t npaths, max_names;
    long n;
    otr_buf names;
};

/* Is the commit read the one the working tree's HEAD names? */
static int reads_head(otr_source *s)
{
    git_oid head, read;
    return git_reference_name_to_id(&head, s->repo, "HEAD") == 0 &&
           git_oid_fromstr(&read, s->commit) == 0 && git_oid_equal(&head, &read);
}

/* Whether the check means anything: files read from the commit a working
 * tree has checked out. */
static int applies(otr_source *s)
{
    return s->repo && !s->worktree && !git_repository_is_bare(s->repo) && reads_head(s);
}

static long count(git_repository *repo, char *const *paths, size_t npaths, otr_buf *names,
                  size_t max_names)
{
    git_status_options so;
    git_status_list *list = NULL;
    otr_buf spec = OTR_BUF_INIT;
    char **specs = NULL;
    long n = 0;
    /* one buffer, the paths NUL-separated: "a/\0b/\0" */
    for (size_t i = 0; i < npaths; i++)
        if (otr_buf_printf(&spec, "%s/", paths[i]) < 0 || otr_buf_putc(&spec, '\0') < 0)
            return (otr_buf_free(&spec), -1);
    if (!(specs = calloc(npaths + 1, sizeof(*specs))))
        return (otr_buf_free(&spec), -1);
    for (size_t i = 0, at = 0; i < npaths; i++) {
        specs[i] = spec.ptr + at;
        at += strlen(specs[i]) + 1;
    }
    git_status_options_init(&so, GIT_STATUS_OPTIONS_VERSION);
    so.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
    so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS;
    so.pathspec.strings = specs;
    so.pathspec.count = npaths;
    if (git_status_list_new(&list, repo, &so) < 0) {
        free(specs);
        otr_buf_free(&spec);
        return 0; /* a warning's worth only: nothing to say */
    }
    for (size_t i = 0; i < git_status_list_entrycount(list); i++) {
        const git_status_entry *e = git_status_byindex(list, i);
        const git_diff_delta *d = e->index_to_workdir ? e->index_to_workdir : e->head_to_index;
        if (e->status == GIT_STATUS_CURRENT || (e->status & GIT_STATUS_IGNORED) || !d)
            continue;
        if ((size_t)n < max_names)
            otr_buf_printf(names, "%s%s", n ? ", " : "", d->new_file.path);
        n++;
    }
    git_status_list_free(list);
    free(specs);
    otr_buf_free(&spec);
    return n;
}

static void *run(void *arg)
{
    struct uncommitted_check *c = arg;
    c->n = count(c->repo, c->paths, c->npaths, &c->names, c->max_names);
    /* its index, caches and pack maps go now, not at the join: a 100k plan
     * reaches its peak meanwhile */
    git_repository_free(c->repo);
    c->repo = NULL;
    return NULL;
}

static void check_free(struct uncommitted_check *c)
{
    git_repository_free(c->repo);
    otr_buf_free(&c->names);
    free(c);
}

/* A handle of its own on s's working tree: the same tree, or NULL. */
static git_repository *second_handle(otr_source *s)
{
    const char *workdir = git_repository_workdir(s->repo);
    git_repository *r = NULL;
    if (!workdir || git_repository_open_ext(&r, workdir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
        return NULL;
    if (!git_repository_workdir(r) || strcmp(git_repository_workdir(r), workdir) != 0 ||
        strcmp(git_repository_path(r), git_repository_path(s->repo)) != 0) {
        git_repository_free(r); /* a core.worktree elsewhere: checked on the caller's thread */
        return NULL;
    }
    return r;
}

void otr_source_uncommitted_start(otr_source *s, size_t max_names)
{
    struct uncommitted_check *c;
    if (s->check || !applies(s) || !(c = calloc(1, sizeof(*c))))
        return;
    c->paths = s->paths;
    c->npaths = s->npaths;
    c->max_names = max_names;
    /* two handles on two threads need a libgit2 built for threads */
    c->repo = git_libgit2_features() & GIT_FEATURE_THREADS ? second_handle(s) : NULL;
    c->running = c->repo && pthread_create(&c->thread, NULL, run, c) == 0;
    if (!c->running) /* now, while s's repository is open */
        c->n = count(s->repo, s->paths, s->npaths, &c->names, max_names);
    s->check = c;
}

void otr_source_uncommitted_stop(otr_source *s)
{
    if (!s->check)
        return;
    if (s->check->running)
        pthread_join(s->check->thread, NULL);
    check_free(s->check);
    s->check = NULL;
}

long otr_source_uncommitted(otr_source *s, otr_buf *names, size_t max_names)
{
    struct uncommitted_check *c = s->check;
    if (!c)
        return applies(s) ? count(s->repo, s->paths, s->npaths, names, max_names) : 0;
    if (c->running)
        pthread_join(c->thread, NULL);
    s->check = NULL;
    long n = c->n;
    if (n > 0 && otr_buf_append(names, c->names.ptr, c->names.len) < 0)
        n = -1;
    check_free(c);
    return n;
}
