/*
 * Reading manifests from git: repositories made by the test with the git
 * command (branches, tags, abbreviated ids, nested folders, bare clones,
 * symlinks, submodules, file:// remotes fetched twice).
 */
#include "helpers.h"
#include "source/source.h"
#include "util/buf.h"

#include <git2.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANIFEST(name) "apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: " name "}\n"

typedef struct fixture {
    char *dir;            /* the test's scratch folder */
    char *repo;           /* dir/fleet, a repository with a work tree */
    char *first, *second; /* commit ids */
} fixture;

/* What the source hands out, placed by each file's place in path order (files
 * arrive in the order the object store keeps them). */
#define MAX_FILES 16
typedef struct handed {
    char *slot[MAX_FILES]; /* "path=content" */
    int first_line_only;
} handed;

static int collect(size_t order, const char *path, const char *data, size_t len, void *ctx)
{
    handed *h = ctx;
    assert_true(order < MAX_FILES);
    assert_null(h->slot[order]); /* each place once */
    const char *nl = h->first_line_only ? memchr(data, '\n', len) : NULL;
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s=%.*s", path, (int)(nl ? (size_t)(nl - data) : len), data);
    h->slot[order] = otr_buf_detach(&b);
    return 0;
}

/* The files in path order, joined by sep; frees the slots. */
static void join_handed(handed *h, otr_buf *out, const char *sep)
{
    for (size_t i = 0; i < MAX_FILES; i++) {
        if (h->slot[i])
            otr_buf_printf(out, "%s%s", out->len ? sep : "", h->slot[i]);
        free(h->slot[i]);
        h->slot[i] = NULL;
    }
}

/* "path=first line|...|!diagnostic|..." of everything the source reports. */
static char *list(const otr_source_opts *o, char *commit_out)
{
    otr_source *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    otr_diags d = OTR_DIAGS_INIT;
    otr_buf b = OTR_BUF_INIT;
    handed h = {.first_line_only = 1};
    if (otr_source_open(&s, o, &err) < 0)
        fail_msg("open failed: %s", otr_error_message(&err));
    assert_int_equal(otr_source_each_file(s, &d, collect, &h, &err), 0);
    join_handed(&h, &b, "|");
    for (size_t i = 0; i < d.count; i++) {
        otr_buf line = OTR_BUF_INIT;
        otr_diag_format(&d.items[i], &line);
        otr_buf_printf(&b, "%s!%s", b.len ? "|" : "", line.ptr);
        otr_buf_free(&line);
    }
    if (commit_out)
        strcpy(commit_out, otr_source_commit(s));
    otr_diags_free(&d);
    otr_source_free(s);
    return otr_buf_detach(&b);
}

static char *open_error(const otr_source_opts *o)
{
    otr_source *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    assert_int_equal(otr_source_open(&s, o, &err), -1);
    assert_null(s);
    char *msg = strdup(otr_error_message(&err));
    otr_error_clear(&err);
    return msg;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    setenv("GIT_AUTHOR_NAME", "Test", 1);
    setenv("GIT_AUTHOR_EMAIL", "test@example.com", 1);
    setenv("GIT_COMMITTER_NAME", "Test", 1);
    setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    f->dir = otr_test_mkdtemp();
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s/fleet", f->dir);
    f->repo = otr_buf_detach(&b);
    otr_test_sh(f->dir, "git init -q -b main fleet");
    otr_test_write(f->repo, "manifests/b.yaml", MANIFEST("b") "first\n");
    otr_test_write(f->repo, "manifests/a/z.yml", MANIFEST("z") "first\n");
    otr_test_write(f->repo, "manifests/a/y.yaml", MANIFEST("y") "first\n");
    otr_test_write(f->repo, "manifests/notes.txt", "not a manifest\n");
    otr_test_write(f->repo, "manifests/a-b.yaml", MANIFEST("ab") "first\n");
    otr_test_write(f->repo, "README.md", "fleet\n");
    otr_test_sh(f->repo, "git add -A && git commit -qm first && git tag -a v1 -m v1");
    f->first = otr_test_sh_out(f->repo, "git rev-parse HEAD");
    otr_test_sh(f->repo,
                "git checkout -q -b feature && printf '" MANIFEST(
                    "b") "feature\\n' > "
                         "manifests/b.yaml && git commit -qam feature && git checkout -q main");
    otr_test_write(f->repo, "manifests/b.yaml", MANIFEST("b") "second\n");
    otr_test_sh(f->repo, "git commit -qam second");
    f->second = otr_test_sh_out(f->repo, "git rev-parse HEAD");
    *state = f;
    git_libgit2_init();
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    otr_test_rmdir(f->dir);
    free(f->dir);
    free(f->repo);
    free(f->first);
    free(f->second);
    free(f);
    git_libgit2_shutdown();
    return 0;
}

static void test_refs(void **state)
{
    fixture *f = *state;
    char commit[64];
    otr_source_opts o = {.repo = f->repo};
    char *got = list(&o, commit);
    /* sorted by path, only *.yaml / *.yml, read from the commit */
    assert_string_equal(got, "manifests/a-b.yaml=apiVersion: ota-runner/v1|"
                             "manifests/a/y.yaml=apiVersion: ota-runner/v1|"
                             "manifests/a/z.yml=apiVersion: ota-runner/v1|"
                             "manifests/b.yaml=apiVersion: ota-runner/v1");
    assert_string_equal(commit, f->second);
    free(got);

    /* closed once read (libgit2's caches go): what was learnt stays */
    otr_source *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    otr_diags d = OTR_DIAGS_INIT;
    handed h = {0};
    assert_int_equal(otr_source_open(&s, &o, &err), 0);
    assert_int_equal(otr_source_each_file(s, &d, collect, &h, &err), 0);
    otr_source_close_repository(s);
    assert_string_equal(otr_source_commit(s), f->second);
    assert_string_equal(otr_source_path(s), "manifests");
    assert_int_equal(otr_source_file_count(s), 4);
    assert_int_equal(otr_source_each_file(s, &d, collect, &h, &err), -1);
    assert_string_equal(otr_error_message(&err), "the repository is closed: the files were read");
    otr_error_clear(&err);
    otr_buf joined = OTR_BUF_INIT;
    join_handed(&h, &joined, "|");
    otr_buf_free(&joined);
    otr_diags_free(&d);
    otr_source_free(s);

    struct {
        const char *ref;
        const char *commit; /* NULL: the feature branch */
        const char *b_line;
    } refs[] = {
        {"HEAD", f->second, "second"}, {"main", f->second, "second"},
        {"v1", f->first, "first"},     {"refs/tags/v1", f->first, "first"},
        {"feature", NULL, "feature"},  {"HEAD~1", f->first, "first"},
    };
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        otr_source_opts ro = {.repo = f->repo, .ref = refs[i].ref};
        otr_source *s = NULL;
        otr_error err = OTR_ERROR_INIT;
        if (otr_source_open(&s, &ro, &err) < 0)
            fail_msg("ref %s: %s", refs[i].ref, otr_error_message(&err));
        if (refs[i].commit)
            assert_string_equal(otr_source_commit(s), refs[i].commit);
        otr_source_free(s);
        char *content =
            otr_test_sh_out(f->repo, "git show %s:manifests/b.yaml | tail -1", refs[i].ref);
        assert_string_equal(content, refs[i].b_line);
        free(content);
    }

    /* full and abbreviated commit ids */
    char abbrev[8];
    snprintf(abbrev, sizeof(abbrev), "%.7s", f->first);
    otr_source_opts full = {.repo = f->repo, .ref = f->first};
    otr_source_opts ab = {.repo = f->repo, .ref = abbrev};
    free(list(&full, commit));
    assert_string_equal(commit, f->first);
    free(list(&ab, commit));
    assert_string_equal(commit, f->first);
}

/* "path=content\npath=content..." of every file, whole. */
static char *contents(const otr_source_opts *o)
{
    otr_source *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    otr_diags d = OTR_DIAGS_INIT;
    otr_buf b = OTR_BUF_INIT;
    handed h = {0};
    if (otr_source_open(&s, o, &err) < 0)
        fail_msg("open failed: %s", otr_error_message(&err));
    assert_int_equal(otr_source_each_file(s, &d, collect, &h, &err), 0);
    join_handed(&h, &b, "\n");
    otr_diags_free(&d);
    otr_source_free(s);
    return otr_buf_detach(&b);
}

static void test_commit_not_worktree(void **state)
{
    fixture *f = *state;
    otr_test_write(f->repo, "manifests/b.yaml", MANIFEST("b") "edited, not committed\n");
    otr_test_write(f->repo, "manifests/new.yaml", MANIFEST("new") "\n");
    otr_source_opts o = {.repo = f->repo, .path = "manifests/a/../"};
    /* ".." is refused: the path must stay inside the repository */
    char *msg = open_error(&o);
    assert_string_equal(msg, "--path manifests/a/.. must be a folder inside the repository, "
                             "without '..'");
    free(msg);

    otr_source_opts c = {.repo = f->repo, .path = "./manifests/"};
    char *got = contents(&c);
    assert_non_null(strstr(got, "second\n"));
    assert_null(strstr(got, "edited"));
    assert_null(strstr(got, "manifests/new.yaml="));
    free(got);

    otr_source_opts w = {.repo = f->repo, .worktree = 1};
    got = contents(&w);
    assert_non_null(strstr(got, "manifests/b.yaml=" MANIFEST("b") "edited, not committed\n"));
    assert_non_null(strstr(got, "manifests/new.yaml="));
    free(got);
    otr_test_sh(f->repo, "git checkout -q -- . && rm manifests/new.yaml");
}

static void test_found_from_a_subfolder_and_bare(void **state)
{
    fixture *f = *state;
    char commit[64];
    otr_buf sub = OTR_BUF_INIT;
    otr_buf_printf(&sub, "%s/manifests/a", f->repo);
    otr_source_opts o = {.repo = sub.ptr};
    free(list(&o, commit));
    assert_string_equal(commit, f->second);
    otr_buf_free(&sub);

    otr_test_sh(f->dir, "git clone -q --bare fleet fleet.git");
    otr_buf bare = OTR_BUF_INIT;
    otr_buf_printf(&bare, "%s/fleet.git", f->dir);
    otr_source_opts b = {.repo = bare.ptr, .ref = "feature", .path = "manifests"};
    char *got = contents(&b);
    assert_non_null(strstr(got, "manifests/b.yaml=" MANIFEST("b") "feature\n"));
    free(got);
    otr_source_opts bw = {.repo = bare.ptr, .worktree = 1};
    char *msg = open_error(&bw);
    assert_non_null(strstr(msg, "--worktree: "));
    assert_non_null(strstr(msg, "is a bare repository"));
    free(msg);
    otr_buf_free(&bare);
}

/* Opening o fails with the message fmt makes of arg. */
static void expect_open_error(const otr_source_opts *o, const char *fmt, const char *arg)
{
    char *msg = open_error(o);
    otr_buf want = OTR_BUF_INIT;
    otr_buf_printf(&want, fmt, arg);
    assert_string_equal(msg, want.ptr);
    free(msg);
    otr_buf_free(&want);
}

static void test_errors_name_what_was_asked(void **state)
{
    fixture *f = *state;
    otr_source_opts o = {.repo = f->dir};
    expect_open_error(
        &o, "%s is not a git repository (nor is any folder above it); use --repo to name one",
        f->dir);

    /* a tag and a branch of one name: ambiguous, never a guess (issue 29) */
    otr_test_sh(f->repo, "git tag prod HEAD~1 && git branch prod HEAD");
    otr_source_opts amb = {.repo = f->repo, .ref = "prod"};
    expect_open_error(
        &amb,
        "--ref prod is ambiguous in %s: refs/tags/prod and refs/heads/prod both exist; "
        "name the one meant in full (--ref refs/tags/prod or --ref refs/heads/prod)",
        f->repo);
    char commit[64];
    otr_source_opts full = {.repo = f->repo, .ref = "refs/heads/prod"};
    free(list(&full, commit));
    assert_string_equal(commit, f->second);
    otr_test_sh(f->repo, "git tag -d prod && git branch -D prod");

    otr_source_opts r = {.repo = f->repo, .ref = "no-such-branch"};
    expect_open_error(&r,
                      "unknown ref no-such-branch in %s (a branch, tag, remote-tracking branch or "
                      "commit id)",
                      f->repo);
    char second[13];
    snprintf(second, sizeof(second), "%.12s", f->second);
    otr_source_opts p = {.repo = f->repo, .path = "rollouts"};
    expect_open_error(&p, "--path rollouts does not exist in commit %s", second);
    otr_source_opts file = {.repo = f->repo, .path = "README.md"};
    expect_open_error(&file, "--path README.md is not a folder in commit %s", second);
}

static void test_unreadable_blob(void **state)
{
    fixture *f = *state;
    otr_test_sh(f->dir, "git clone -q --no-local fleet broken");
    otr_buf repo = OTR_BUF_INIT;
    otr_buf_printf(&repo, "%s/broken", f->dir);
    /* unpack, then delete the blob of manifests/b.yaml */
    otr_test_sh(repo.ptr, "mkdir ../packs && mv .git/objects/pack/* ../packs/ && "
                          "for p in ../packs/*.pack; do git unpack-objects -q < $p; done && "
                          "rm -rf ../packs && oid=$(git rev-parse HEAD:manifests/b.yaml) && "
                          "rm .git/objects/$(echo $oid | cut -c1-2)/$(echo $oid | cut -c3-)");
    char *oid =
        otr_test_sh_out(repo.ptr, "git ls-tree HEAD manifests/b.yaml | cut -f1 | cut -d' ' -f3");
    otr_source_opts o = {.repo = repo.ptr};
    char *got = list(&o, NULL);
    otr_buf want = OTR_BUF_INIT;
    otr_buf_printf(&want, "!manifests/b.yaml: error: cannot read blob %s: ", oid);
    assert_non_null(strstr(got, want.ptr));
    assert_non_null(strstr(got, "manifests/a/z.yml=")); /* the others are still read */
    free(got);
    free(oid);
    otr_buf_free(&want);
    otr_buf_free(&repo);
}

static void test_symlinks_and_submodules_are_reported(void **state)
{
    fixture *f = *state;
    otr_test_sh(f->dir,
                "git init -q -b main other && cd other && git commit -q --allow-empty -m x");
    otr_test_sh(f->repo,
                "git checkout -q -b links && ln -s b.yaml manifests/link.yaml && "
                "git -c protocol.file.allow=always submodule add -q ../other manifests/sub "
                ">/dev/null 2>&1 && git add -A && git commit -qm links");
    otr_source_opts o = {.repo = f->repo};
    char *got = list(&o, NULL);
    assert_string_equal(got,
                        "manifests/a-b.yaml=apiVersion: ota-runner/v1|"
                        "manifests/a/y.yaml=apiVersion: ota-runner/v1|"
                        "manifests/a/z.yml=apiVersion: ota-runner/v1|"
                        "manifests/b.yaml=apiVersion: ota-runner/v1|"
                        "!manifests/link.yaml: error: symbolic link under --path manifests is not "
                        "followed; keep manifests as regular files|"
                        "!manifests/sub: error: submodule under --path manifests is not followed; "
                        "keep manifests as regular files");
    free(got);
    otr_source_opts w = {.repo = f->repo, .worktree = 1};
    got = list(&w, NULL);
    assert_non_null(strstr(got, "!manifests/link.yaml: error: symbolic link under --path"));
    free(got);
    otr_test_sh(f->repo,
                "git checkout -q main 2>/dev/null; rm -rf manifests/sub manifests/link.yaml");
}

/* Writes a repository "name" of n files m/fNNNN.yaml (each holding its own
 * name) with git fast-import, which packs blobs in the order they come: here
 * (k * 7919) mod n, far from path order. */
static char *scattered_repo(const fixture *f, const char *name, int n)
{
    otr_test_write(
        f->dir, "scatter.awk",
        "BEGIN { printf \"commit refs/heads/main\\ncommitter T <t@example.com> 0 "
        "+0000\\ndata 0\\n\";\n"
        "  for (k = 0; k < n; k++) { i = (k * 7919) % n;\n"
        "    t = sprintf(\"apiVersion: ota-runner/v1 # f%04d\", i);\n"
        "    printf \"M 100644 inline m/f%04d.yaml\\ndata %d\\n%s\\n\", i, length(t), t } }\n");
    otr_test_sh(f->dir,
                "git init -q -b main %s && awk -v n=%d -f scatter.awk | "
                "git -C %s -c fastimport.unpackLimit=1 fast-import --quiet",
                name, n, name);
    otr_buf repo = OTR_BUF_INIT;
    otr_buf_printf(&repo, "%s/%s", f->dir, name);
    return otr_buf_detach(&repo);
}

/* The paths in the order the source handed them out; counts files handed
 * with a place in path order that is not their own. */
typedef struct arrivals {
    otr_buf paths;
    size_t count;
    size_t misplaced;
} arrivals;

static int note_arrival(size_t order, const char *path, const char *data, size_t len, void *ctx)
{
    arrivals *a = ctx;
    char own[32];
    snprintf(own, sizeof(own), "# f%04zu", order);
    otr_buf_printf(&a->paths, "%s%s", a->count++ ? " " : "", path);
    size_t n = strlen(own);
    a->misplaced += len < n || memcmp(data + len - n, own, n) != 0;
    return 0;
}

static char *arrival_order(const char *repo, size_t *count)
{
    otr_source_opts o = {.repo = repo, .path = "m"};
    otr_source *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    otr_diags d = OTR_DIAGS_INIT;
    arrivals a = {OTR_BUF_INIT, 0, 0};
    assert_int_equal(otr_source_open(&s, &o, &err), 0);
    assert_int_equal(otr_source_each_file(s, &d, note_arrival, &a, &err), 0);
    assert_int_equal(d.count, 0);
    assert_int_equal(a.misplaced, 0);
    otr_diags_free(&d);
    otr_source_free(s);
    *count = a.count;
    return otr_buf_detach(&a.paths);
}

/* Many files are read backwards through the pack (each delta chain inflated
 * once), a few in path order; each comes with its place in path order. */
static void test_read_order(void **state)
{
    fixture *f = *state;
    size_t count;
    char *few = scattered_repo(f, "few", 10);
    char *got = arrival_order(few, &count);
    assert_int_equal(count, 10);
    assert_string_equal(got, "m/f0000.yaml m/f0001.yaml m/f0002.yaml m/f0003.yaml m/f0004.yaml "
                             "m/f0005.yaml m/f0006.yaml m/f0007.yaml m/f0008.yaml m/f0009.yaml");
    free(got);

    char *many = scattered_repo(f, "many", 5000);
    /* the pack's order, last first, from git itself */
    char *want = otr_test_sh_out(
        many, "git ls-tree -r HEAD m > ../tree.txt && cat .git/objects/pack/*.idx | "
              "git show-index | sort -rn | awk 'NR == FNR { split($0, a, \"\\t\"); "
              "split(a[1], b, \" \"); path[b[3]] = a[2]; next } ($2 in path) { print path[$2] }' "
              "../tree.txt - | paste -sd ' ' -");
    assert_int_equal(strncmp(want, "m/f2081.yaml m/f4162.yaml m/f1243.yaml ", 39), 0);
    got = arrival_order(many, &count);
    assert_int_equal(count, 5000);
    assert_string_equal(got, want);
    free(got);
    free(want);
    free(many);
    free(few);
}

static void test_url_cached_and_fetched_again(void **state)
{
    fixture *f = *state;
    otr_buf url = OTR_BUF_INIT, cache = OTR_BUF_INIT;
    otr_buf_printf(&url, "file://%s", f->repo);
    otr_buf_printf(&cache, "%s/cache", f->dir);
    char commit[64];
    otr_source_opts o = {.repo = url.ptr, .cache_dir = cache.ptr};
    free(list(&o, commit));
    assert_string_equal(commit, f->second);

    /* a new commit upstream is seen on the next run, through the same cache */
    otr_test_write(f->repo, "manifests/c.yaml", MANIFEST("c") "\n");
    otr_test_sh(f->repo, "git add -A && git commit -qm third");
    char *third = otr_test_sh_out(f->repo, "git rev-parse HEAD");
    char *got = list(&o, commit);
    assert_string_equal(commit, third);
    assert_non_null(strstr(got, "manifests/c.yaml="));
    free(got);
    char *entries = otr_test_sh_out(cache.ptr, "ls | grep -v '\\.lock$' | wc -l");
    assert_string_equal(entries, "1");
    free(entries);

    /* branches and tags of the remote resolve in the cache */
    otr_source_opts t = {.repo = url.ptr, .cache_dir = cache.ptr, .ref = "v1"};
    free(list(&t, commit));
    assert_string_equal(commit, f->first);
    otr_source_opts b = {.repo = url.ptr, .cache_dir = cache.ptr, .ref = "feature"};
    got = contents(&b);
    assert_non_null(strstr(got, "feature\n"));
    free(got);

    /* another URL gets its own cache entry */
    otr_test_sh(f->dir, "git clone -q --bare fleet fleet2.git");
    otr_buf url2 = OTR_BUF_INIT;
    otr_buf_printf(&url2, "file://%s/fleet2.git", f->dir);
    otr_source_opts o2 = {.repo = url2.ptr, .cache_dir = cache.ptr};
    free(list(&o2, commit));
    assert_string_equal(commit, third);
    entries = otr_test_sh_out(cache.ptr, "ls | grep -v '\\.lock$' | wc -l");
    assert_string_equal(entries, "2");
    free(entries);

    otr_source_opts wt = {.repo = url.ptr, .cache_dir = cache.ptr, .worktree = 1};
    char *msg = open_error(&wt);
    assert_non_null(strstr(msg, "--worktree reads a local working tree"));
    free(msg);

    otr_source_opts bad = {.repo = "file:///nonexistent/repo.git", .cache_dir = cache.ptr};
    msg = open_error(&bad);
    assert_non_null(strstr(msg, "repository file:///nonexistent/repo.git: "));
    free(msg);

    otr_test_sh(f->repo, "git reset -q --hard HEAD~1");
    free(third);
    otr_buf_free(&url);
    otr_buf_free(&url2);
    otr_buf_free(&cache);
}

static void test_cache_paths(void **state)
{
    (void)state;
    char *a = otr_source_cache_path("/c", "https://example.com/org/fleet.git");
    char *b = otr_source_cache_path("/c", "https://example.com/other/fleet.git");
    assert_string_not_equal(a, b);
    assert_int_equal(strncmp(a, "/c/", 3), 0);
    assert_string_equal(a + strlen(a) - 10, "-fleet.git");
    free(a);
    free(b);
    assert_true(otr_source_is_url("https://h/x"));
    assert_true(otr_source_is_url("git@github.com:org/fleet.git"));
    assert_true(otr_source_is_url("file:///srv/fleet"));
    assert_false(otr_source_is_url("./fleet"));
    assert_false(otr_source_is_url("/srv/fleet:old"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_commit_not_worktree),
        cmocka_unit_test(test_found_from_a_subfolder_and_bare),
        cmocka_unit_test(test_errors_name_what_was_asked),
        cmocka_unit_test(test_unreadable_blob),
        cmocka_unit_test(test_symlinks_and_submodules_are_reported),
        cmocka_unit_test(test_read_order),
        cmocka_unit_test(test_url_cached_and_fetched_again),
        cmocka_unit_test(test_cache_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
