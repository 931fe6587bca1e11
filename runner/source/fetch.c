/* A URL's repository: a mirror in the cache, brought up to date by a fetch
 * that runs in a child process and is stopped when it hangs (source.h). */
#include "source/internal.h"
#include "source/source.h"
#include "util/buf.h"
#include "util/file.h"
#include "util/time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- URLs: a mirror in the cache ------------------------------------------ */

char *otr_source_cache_path(const char *cache_dir, const char *url)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(url, strlen(url), md, &mdlen, EVP_sha256(), NULL))
        return NULL;
    /* A readable tail (the repository's name) after a hash of the whole URL. */
    const char *base = url + strlen(url);
    while (base > url && (base[-1] == '/' || base[-1] == ':'))
        base--;
    const char *end = base;
    while (base > url && base[-1] != '/' && base[-1] != ':')
        base--;
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s/", cache_dir);
    for (int i = 0; i < 8; i++)
        otr_buf_printf(&b, "%02x", md[i]);
    otr_buf_putc(&b, '-');
    for (const char *p = base; p < end && p < base + 64; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        otr_buf_putc(&b, ok ? c : '_');
    }
    return otr_buf_detach(&b);
}

static char *default_cache_dir(void)
{
    otr_buf b = OTR_BUF_INIT;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        otr_buf_printf(&b, "%s/ota-runner", xdg);
    else if (home && *home)
        otr_buf_printf(&b, "%s/.cache/ota-runner", home);
    else
        return NULL;
    return otr_buf_detach(&b);
}

static int mkdir_p(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
            free(copy);
            return -1;
        }
        *p = '/';
    }
    int rc = mkdir(copy, 0700) < 0 && errno != EEXIST ? -1 : 0;
    free(copy);
    return rc;
}

typedef struct cred_state {
    int attempts;
    char *token; /* OTA_RUNNER_GIT_TOKEN, or the content of OTA_RUNNER_GIT_TOKEN_FILE */
} cred_state;

/* The https token: OTA_RUNNER_GIT_TOKEN, else the file OTA_RUNNER_GIT_TOKEN_FILE
 * names (a systemd credential, a mounted secret), its trailing newline cut.
 * NULL in *token when neither is set. */
static int read_token(char **token, otr_error *err)
{
    const char *env = getenv("OTA_RUNNER_GIT_TOKEN"), *file = getenv("OTA_RUNNER_GIT_TOKEN_FILE");
    otr_buf text = OTR_BUF_INIT;
    *token = NULL;
    if (env && *env)
        return (*token = strdup(env)) ? 0 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    if (!file || !*file)
        return 0;
    if (otr_file_read(file, (size_t)64 << 10, &text, err) < 0) {
        otr_error_prefix(err, "OTA_RUNNER_GIT_TOKEN_FILE");
        return -1;
    }
    while (text.len && strchr("\r\n \t", text.ptr[text.len - 1]))
        text.ptr[--text.len] = '\0';
    if (!text.len) {
        otr_buf_free(&text);
        return otr_error_set(err, OTR_ERR_USAGE, "OTA_RUNNER_GIT_TOKEN_FILE %s is empty", file);
    }
    *token = otr_buf_detach(&text);
    return *token ? 0 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
}

/*
 * libgit2 asks again after every refusal; give each kind of credential one
 * chance so a wrong token ends in an error rather than a loop.
 * https: the token (read_token; user OTA_RUNNER_GIT_USERNAME, default
 * x-access-token). ssh: the agent, or OTA_RUNNER_SSH_KEY (a private key file,
 * passphrase in OTA_RUNNER_SSH_KEY_PASSPHRASE).
 */
static int credentials(git_credential **out, const char *url, const char *user_from_url,
                       unsigned int allowed, void *payload)
{
    cred_state *st = payload;
    (void)url;
    if (st->attempts++ >= 2)
        return GIT_EUSER;
    const char *user = user_from_url && *user_from_url ? user_from_url : NULL;
    if (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
        const char *token = st->token;
        const char *name = getenv("OTA_RUNNER_GIT_USERNAME");
        if (!token)
            return GIT_PASSTHROUGH;
        return git_credential_userpass_plaintext_new(out,
                                                     name && *name ? name
                                                     : user        ? user
                                                                   : "x-access-token",
                                                     token);
    }
    if (allowed & GIT_CREDENTIAL_SSH_KEY) {
        const char *key = getenv("OTA_RUNNER_SSH_KEY");
        if (key && *key)
            return git_credential_ssh_key_new(out, user ? user : "git", NULL, key,
                                              getenv("OTA_RUNNER_SSH_KEY_PASSPHRASE"));
        return git_credential_ssh_key_from_agent(out, user ? user : "git");
    }
    if (allowed & GIT_CREDENTIAL_USERNAME)
        return git_credential_username_new(out, user ? user : "git");
    return GIT_PASSTHROUGH;
}

/* A file:// URL to a shallow clone cannot be fetched whole (libgit2 says
 * only "object not found"): say what it is and what to do. */
static int is_shallow_local(const char *url)
{
    git_repository *r = NULL;
    if (strncmp(url, "file://", 7) != 0 || git_repository_open(&r, url + 7) < 0)
        return 0;
    int shallow = git_repository_is_shallow(r) == 1;
    git_repository_free(r);
    return shallow;
}

/* Brings the mirror up to date: every branch and tag of the remote, as its
 * own local branch and tag, and HEAD at the remote's default branch. Each
 * sign of progress is written to progress_fd (one byte, at most ten a
 * second), for the parent that bounds it (sync_bounded). */
static int progress_fd = -1;
static int64_t progress_last_ms;

static void tick(void)
{
    int64_t now = otr_time_monotonic_ms();
    if (progress_fd >= 0 && now - progress_last_ms >= 100) {
        progress_last_ms = now;
        (void)!write(progress_fd, "P", 1);
    }
}

static int on_transfer(const git_indexer_progress *stats, void *payload)
{
    (void)stats;
    (void)payload;
    tick();
    return 0;
}

static int on_sideband(const char *str, int len, void *payload)
{
    (void)str;
    (void)len;
    (void)payload;
    tick();
    return 0;
}

/* A refusal for want of credentials says where they come from. */
static void auth_hint(otr_error *err)
{
    const char *m = otr_error_message(err);
    if (!m || !strstr(m, "authentication"))
        return;
    char *was = strdup(m);
    if (was)
        otr_error_set(err, err->code,
                      "%s; give the token in OTA_RUNNER_GIT_TOKEN or a file named by "
                      "OTA_RUNNER_GIT_TOKEN_FILE (https), or a key by ssh-agent or "
                      "OTA_RUNNER_SSH_KEY (ssh)",
                      was);
    free(was);
}

static int sync_mirror(git_repository *repo, const char *url, otr_error *err)
{
    git_remote *remote = NULL;
    git_buf head = GIT_BUF_INIT;
    cred_state cs = {0};
    int rc = -1;

    if (read_token(&cs.token, err) < 0)
        return -1;
    if (git_remote_lookup(&remote, repo, "origin") < 0) {
        if (git_remote_create_with_fetchspec(&remote, repo, "origin", url,
                                             "+refs/heads/*:refs/heads/*") < 0 ||
            git_remote_add_fetch(repo, "origin", "+refs/tags/*:refs/tags/*") < 0) {
            otr_source_git_fail(err, OTR_ERR_IO, "cannot set up the cache");
            goto done;
        }
    }
    git_remote_callbacks cb;
    git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
    cb.credentials = credentials;
    cb.transfer_progress = on_transfer;
    cb.sideband_progress = on_sideband;
    cb.payload = &cs;
    git_proxy_options proxy;
    git_proxy_options_init(&proxy, GIT_PROXY_OPTIONS_VERSION);
    proxy.type = GIT_PROXY_AUTO;
    if (git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, &proxy, NULL) < 0) {
        otr_source_git_fail(err, OTR_ERR_NOTFOUND, "cannot reach the repository");
        auth_hint(err);
        goto done;
    }
    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.callbacks = cb;
    fo.proxy_opts = proxy;
    fo.prune = GIT_FETCH_PRUNE;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
    int have_head = git_remote_default_branch(&head, remote) == 0;
    if (git_remote_download(remote, NULL, &fo) < 0 ||
        git_remote_update_tips(remote, &cb, 0, GIT_REMOTE_DOWNLOAD_TAGS_ALL, NULL) < 0 ||
        (fo.prune == GIT_FETCH_PRUNE && git_remote_prune(remote, &cb) < 0)) {
        otr_source_git_fail(err, OTR_ERR_IO, "fetch failed");
        auth_hint(err);
        if (is_shallow_local(url))
            otr_error_set(err, OTR_ERR_IO,
                          "fetch failed: %s is a shallow clone (made with --depth), which cannot "
                          "be mirrored; give its folder itself as --repo %s (a shallow clone is "
                          "read in place), or fetch its whole history first (git fetch "
                          "--unshallow)",
                          url + 7, url + 7);
        goto done;
    }
    if (have_head && git_repository_set_head(repo, head.ptr) < 0) {
        otr_source_git_fail(err, OTR_ERR_IO, "cannot update HEAD of the cache");
        goto done;
    }
    rc = 0;
done:
    if (remote)
        git_remote_disconnect(remote);
    git_remote_free(remote);
    git_buf_dispose(&head);
    if (cs.token)
        OPENSSL_cleanse(cs.token, strlen(cs.token));
    free(cs.token);
    return rc;
}

/* Removes the lock files a killed fetch left inside the cache entry (its
 * refs, packed-refs, FETCH_HEAD): the entry is this run's alone (the flock
 * beside it), so any is stale. */
static void remove_stale_locks(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        otr_buf path = OTR_BUF_INIT;
        otr_buf_printf(&path, "%s/%s", dir, e->d_name);
        struct stat st;
        size_t n = strlen(e->d_name);
        if (!otr_buf_failed(&path) && lstat(path.ptr, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                remove_stale_locks(path.ptr);
            else if (n > 5 && !strcmp(e->d_name + n - 5, ".lock"))
                unlink(path.ptr);
        }
        otr_buf_free(&path);
    }
    if (d)
        closedir(d);
}

/* sync_mirror in a child process, so that a fetch that hangs can be stopped
 * (libgit2 1.5 has no network timeout): after idle_s seconds without a sign
 * of progress, or total_s in all. The child writes 'P' for progress, and
 * 'E' and its error's message when it fails. */
static int sync_bounded(git_repository *repo, const char *dir, const char *url, int idle_s,
                        int total_s, otr_error *err)
{
    int fds[2];
    if (pipe(fds) < 0)
        return otr_error_set(err, OTR_ERR_IO, "cannot fetch: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return otr_error_set(err, OTR_ERR_IO, "cannot fetch: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        otr_error cerr = OTR_ERROR_INIT;
        close(fds[0]);
        progress_fd = fds[1];
        if (sync_mirror(repo, url, &cerr) == 0)
            _exit(0);
        const char *m = otr_error_message(&cerr);
        (void)!write(fds[1], "E", 1);
        (void)!write(fds[1], m, strlen(m));
        _exit(cerr.code == OTR_ERR_NOTFOUND ? 3 : 2);
    }
    close(fds[1]);
    otr_buf said = OTR_BUF_INIT;
    int64_t start = otr_time_monotonic_ms(), last = start;
    const char *stopped = NULL;
    for (;;) {
        int64_t now = otr_time_monotonic_ms();
        int64_t left = (int64_t)idle_s * 1000 - (now - last);
        if ((int64_t)total_s * 1000 - (now - start) < left)
            left = (int64_t)total_s * 1000 - (now - start);
        if (left <= 0) {
            stopped = now - last >= (int64_t)idle_s * 1000 ? "idle" : "total";
            break;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int r = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        char buf[512];
        ssize_t got = read(fds[0], buf, sizeof(buf));
        if (got <= 0)
            break; /* the child is done */
        for (ssize_t i = 0; i < got; i++)
            if (said.len || buf[i] != 'P')
                otr_buf_append(&said, buf + i, 1);
        last = otr_time_monotonic_ms();
    }
    close(fds[0]);
    int status = 0;
    if (stopped)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int rc = 0;
    if (stopped) {
        remove_stale_locks(dir);
        rc = otr_error_set(err, OTR_ERR_IO,
                           stopped[0] == 'i'
                               ? "fetch made no progress for %ds and was stopped (a network or "
                                 "server that hangs; --fetch-idle-timeout sets the limit)"
                               : "fetch took longer than %ds and was stopped "
                                 "(--fetch-timeout sets the limit)",
                           stopped[0] == 'i' ? idle_s : total_s);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = otr_error_set(
            err, WIFEXITED(status) && WEXITSTATUS(status) == 3 ? OTR_ERR_NOTFOUND : OTR_ERR_IO,
            "%s", said.len > 1 ? otr_buf_cstr(&said) + 1 : "fetch failed");
    }
    otr_buf_free(&said);
    return rc;
}

/* Opens the cache entry of url, creating and fetching it. Two runs on the
 * same URL take turns through a lock file beside the entry. */
/* shown: url as messages name it (without a user name or password). */
int otr_source_open_url(git_repository **out, const char *url, const char *shown,
                        const char *cache_dir, int idle_s, int total_s, otr_error *err)
{
    char *dflt = NULL, *dir = NULL, *lock_path = NULL;
    int lock_fd = -1, rc = -1;
    if (!cache_dir) {
        cache_dir = dflt = default_cache_dir();
        if (!cache_dir) {
            otr_error_set(err, OTR_ERR_USAGE,
                          "no cache folder for %s: set --cache-dir, "
                          "XDG_CACHE_HOME or HOME",
                          shown);
            goto done;
        }
    }
    dir = otr_source_cache_path(cache_dir, url);
    if (!dir || mkdir_p(cache_dir) < 0) {
        otr_error_set(err, OTR_ERR_IO, "cannot create the cache folder %s: %s", cache_dir,
                      strerror(errno));
        goto done;
    }
    otr_buf lb = OTR_BUF_INIT;
    otr_buf_printf(&lb, "%s.lock", dir);
    lock_path = otr_buf_detach(&lb);
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0) {
        otr_error_set(err, OTR_ERR_IO, "cannot lock %s: %s", lock_path, strerror(errno));
        goto done;
    }
    if (git_repository_open_bare(out, dir) < 0 && git_repository_init(out, dir, 1) < 0) {
        otr_source_git_fail(err, OTR_ERR_IO, "cannot create the cache");
        goto done;
    }
    int synced = sync_bounded(*out, dir, url, idle_s, total_s, err);
    git_repository_free(*out); /* the child wrote the refs and packs: opened again for them */
    *out = NULL;
    if (synced < 0)
        goto done;
    if (git_repository_open_bare(out, dir) < 0) {
        otr_source_git_fail(err, OTR_ERR_IO, "cannot open the cache");
        goto done;
    }
    rc = 0;
done:
    if (rc < 0)
        otr_error_prefix(err, "repository %s", shown);
    if (lock_fd >= 0)
        close(lock_fd);
    free(lock_path);
    free(dir);
    free(dflt);
    return rc;
}
