/* Loading manifests for a command, and printing what went wrong. */
#include "cli/load.h"

#include "util/escape.h"

#include "kinds/loader.h"
#include "trust/openpgp.h"
#include "trust/signers.h"
#include "util/file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct add_ctx {
    otr_manifest_loader *loader;
    otr_error err;
} add_ctx;

static int add_file(size_t order, const char *path, const char *data, size_t len, void *ctx)
{
    add_ctx *a = ctx;
    return otr_manifest_loader_add(a->loader, order, path, data, len, &a->err);
}

/* Every file of the source into l's set, parsed on worker threads. */
static int read_files(otr_loaded *l, add_ctx *a)
{
    a->loader = otr_manifest_loader_new(&l->set, &l->diags, otr_source_file_count(l->source), 0);
    if (!a->loader)
        return otr_error_set(&a->err, OTR_ERR_NOMEM, "out of memory");
    int rc = otr_source_each_file(l->source, &l->diags, add_file, a, &a->err) < 0 ||
                     otr_manifest_loader_finish(a->loader, &a->err) < 0
                 ? -1
                 : 0;
    otr_manifest_loader_free(a->loader);
    return rc;
}

void otr_print_error(const otr_error *err)
{
    otr_print_line(stderr, "ota-runner: error: ", otr_error_message(err));
}

/* A range check waits for the state (plan and apply ask for it). */
static int range_pending(const otr_options *o)
{
    return otr_options_allowed_signers(o) && o->verify_range;
}

/* The OpenPGP keys the allowed signers name: needed when they list one. */
static int read_openpgp(const otr_options *o, const otr_signers *signers, otr_pgp_keyring **out,
                        otr_error *err)
{
    const char *file = otr_options_openpgp_keys(o);
    otr_buf text = OTR_BUF_INIT;
    *out = NULL;
    if (!file && otr_signers_has_openpgp(signers))
        return otr_error_set(err, OTR_ERR_USAGE,
                             "%s lists OpenPGP keys: give their public keys with --openpgp-keys "
                             "FILE (gpg --armor --export FINGERPRINT... > FILE)",
                             signers->file);
    if (!file)
        return 0;
    if (otr_file_read(file, OTR_PGP_MAX_KEYS_FILE, &text, err) < 0) {
        otr_error_prefix(err, "--openpgp-keys");
        return -1;
    }
    int rc =
        otr_pgp_keyring_parse(out, file, otr_buf_cstr(&text), text.len, (int64_t)time(NULL), err);
    otr_buf_free(&text);
    return rc;
}

int otr_verify_source(otr_source *src, const otr_options *o, int range, const char *since,
                      otr_source_trust *out, otr_error *err)
{
    const char *file = otr_options_allowed_signers(o);
    otr_buf text = OTR_BUF_INIT;
    otr_signers signers;
    otr_pgp_keyring *keys = NULL;
    if (!file && o->verify_asked) /* asked to verify, told to trust no one: fail closed */
        return otr_error_set(err, OTR_ERR_USAGE,
                             "--verify-commits needs the keys to trust: give --allowed-signers "
                             "FILE (or OTA_RUNNER_ALLOWED_SIGNERS); without them nothing would be "
                             "verified");
    if (!file)
        return 0;
    if (otr_file_read(file, OTR_SIGNERS_MAX_FILE, &text, err) < 0) {
        otr_error_prefix(err, "--allowed-signers");
        return -1;
    }
    int rc = otr_signers_parse(&signers, file, otr_buf_cstr(&text), text.len, err);
    otr_buf_free(&text);
    if (rc < 0)
        return -1;
    if (signers.count == 0) { /* an empty secret, a file not written: no commit is trusted */
        otr_signers_free(&signers);
        return otr_error_set(err, OTR_ERR_USAGE,
                             "the allowed-signers file %s lists no keys, so no commit can be "
                             "trusted; check that it was written (a CI secret that is empty or "
                             "not set gives an empty file)",
                             file);
    }
    otr_source_verify_options vo = {.signers = &signers,
                                    .range = range,
                                    .since = since,
                                    .require_authors = o->require_authors,
                                    .now = (int64_t)time(NULL)};
    rc = read_openpgp(o, &signers, &keys, err);
    if (rc == 0) {
        vo.openpgp = keys;
        rc = otr_source_verify(src, &vo, out, err);
        if (rc < 0)
            otr_error_prefix(err, "%s at %.12s is not trusted", otr_source_repo(src),
                             otr_source_commit(src));
    }
    otr_pgp_keyring_free(keys);
    otr_signers_free(&signers);
    return rc;
}

/* The head's signature (and with range, the commits since since). */
static int verify(otr_loaded *l, const otr_options *o, int range, const char *since, otr_error *err)
{
    int rc = otr_verify_source(l->source, o, range, since, &l->trust, err);
    l->verified = rc == 0 && otr_options_allowed_signers(o);
    return rc;
}

int otr_loaded_verify_range(otr_loaded *l, const otr_options *o, const char *since)
{
    otr_error err = OTR_ERROR_INIT;
    int rc = range_pending(o) ? verify(l, o, 1, since, &err) : 0;
    otr_source_close_repository(l->source);
    if (rc < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
    }
    return rc;
}

cJSON *otr_loaded_signed_by_json(const otr_loaded *l)
{
    if (!l->verified)
        return NULL;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "principal", l->trust.principal);
    cJSON_AddStringToObject(j, "key", l->trust.family);
    cJSON_AddStringToObject(j, "fingerprint", l->trust.fingerprint);
    cJSON_AddStringToObject(j, "format", l->trust.format ? l->trust.format : "ssh");
    cJSON_AddNumberToObject(j, "commits", (double)l->trust.commits);
    return j;
}

/* Edits under the path that the commit read does not hold: said, since the
 * plan is of the commit, not of what the editor shows. */
void otr_loaded_warn(otr_loaded *l)
{
    otr_buf names = OTR_BUF_INIT, line = OTR_BUF_INIT;
    if (!l->source || l->warned)
        return;
    l->warned = 1;
    long n = otr_source_uncommitted(l->source, &names, 3);
    if (n > 0 && otr_buf_printf(&line,
                                "%ld file%s under %s differ%s from the commit read (%s%s): it is "
                                "what counts; commit them, or give --worktree to read the files "
                                "as they are",
                                n, n == 1 ? "" : "s", otr_source_path(l->source), n == 1 ? "s" : "",
                                otr_buf_cstr(&names), n > 3 ? ", ..." : "") == 0)
        otr_print_line(stderr, "ota-runner: warning: ", otr_buf_cstr(&line));
    otr_buf_free(&names);
    otr_buf_free(&line);
}

int otr_load_deferred(otr_loaded *l, const otr_options *o)
{
    memset(l, 0, sizeof(*l));
    otr_source_opts so = {
        .repo = o->repo,
        .ref = o->ref,
        .path = o->path,
        .worktree = o->worktree,
        .cache_dir = o->cache_dir,
        .fetch_idle_s = o->fetch_idle_s,
        .fetch_total_s = o->fetch_total_s,
        .max_file_size = OTR_MANIFEST_MAX_FILE_SIZE,
        .config_file = o->config_file,
    };
    add_ctx a = {NULL, OTR_ERROR_INIT};
    if (otr_source_open(&l->source, &so, &a.err) < 0 || verify(l, o, 0, NULL, &a.err) < 0 ||
        read_files(l, &a) < 0)
        goto fail;
    if (otr_manifest_set_finish(&l->set, &l->diags) < 0) {
        otr_error_set(&a.err, OTR_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* on a thread of its own beside what comes next (otr_loaded_warn says
     * what it found); begun once the references' tokens are hashed on every
     * processor */
    otr_source_uncommitted_start(l->source, 3);
    /* plan and apply compare the commit with the state's (otr_loaded_verify_range closes it) */
    if (!range_pending(o) && !otr_options_uses_state(o))
        otr_source_close_repository(l->source);
    return 0;
fail:
    otr_print_error(&a.err);
    otr_error_clear(&a.err);
    otr_loaded_free(l);
    return -1;
}

int otr_load(otr_loaded *l, const otr_options *o)
{
    if (otr_load_deferred(l, o) < 0)
        return -1;
    otr_loaded_warn(l);
    return 0;
}

void otr_loaded_free(otr_loaded *l)
{
    otr_source_free(l->source);
    otr_manifest_set_free(&l->set);
    otr_diags_free(&l->diags);
    memset(l, 0, sizeof(*l));
}

static int use_color(const otr_options *o)
{
    const char *nc = getenv("NO_COLOR");
    return !o->no_color && !(nc && *nc) && isatty(STDERR_FILENO);
}

/* Diagnostics are written this many bytes at a time: stderr has no buffer,
 * and a fleet's thousand warnings were a thousand writes. */
#define DIAGS_FLUSH_BYTES ((size_t)64 * 1024)

void otr_print_diags_text(const otr_diags *d, const otr_options *o)
{
    int color = use_color(o);
    otr_buf line = OTR_BUF_INIT, out = OTR_BUF_INIT;
    for (size_t i = 0; i < d->count; i++) {
        otr_buf_clear(&line);
        otr_diag_format(&d->items[i], &line);
        otr_text_sanitize(&line, 0, 0); /* a manifest's value is quoted in some messages */
        if (color) {
            /* colour only the severity word */
            const char *word = d->items[i].severity == OTR_SEV_ERROR ? "error:" : "warning:";
            const char *at = strstr(line.ptr, word);
            otr_buf_printf(&out, "%.*s\033[%sm%s\033[0m%s\n", (int)(at - line.ptr), line.ptr,
                           d->items[i].severity == OTR_SEV_ERROR ? "1;31" : "1;33", word,
                           at + strlen(word));
        } else {
            otr_buf_printf(&out, "%s\n", line.ptr);
        }
        if (out.len >= DIAGS_FLUSH_BYTES || i + 1 == d->count) {
            fputs(otr_buf_cstr(&out), stderr);
            otr_buf_clear(&out);
        }
    }
    if (d->dropped)
        fprintf(stderr, "ota-runner: %zu more problems not shown\n", d->dropped);
    otr_buf_free(&line);
    otr_buf_free(&out);
}

const char *otr_loaded_commit_label(const otr_loaded *l, char *buf, size_t size)
{
    const char *c = otr_source_commit(l->source);
    snprintf(buf, size, "%.12s%s", *c ? c : "(no commit)",
             otr_source_is_worktree(l->source) ? "+worktree" : "");
    return buf;
}
