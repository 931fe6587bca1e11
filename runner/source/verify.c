/*
 * Trusted commits: the commit (and the annotated tag --ref names) must carry
 * a signature, SSH in the namespace "git" or OpenPGP, by a key the allowed
 * signers list for the committer's (tagger's) e-mail, valid at the time it
 * records; in range mode, so must every commit since the state's last
 * applied one on the first-parent chain that changes a file under the path,
 * and with require_authors every such commit a merge brings in.
 */
#include "source/internal.h"
#include "source/source.h"

#include "trust/openpgp.h"
#include "trust/signed.h"
#include "trust/signers.h"
#include "trust/sshsig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIT_NAMESPACE "git"

/* The raw bytes of an object. */
static int read_raw(otr_source *s, const git_oid *oid, git_odb_object **out, otr_error *err)
{
    git_odb *odb = NULL;
    int rc = git_repository_odb(&odb, s->repo) < 0 || git_odb_read(out, odb, oid) < 0
                 ? otr_source_git_fail(err, OTR_ERR_IO, "cannot read an object to verify")
                 : 0;
    git_odb_free(odb);
    return rc;
}

#define PGP_BEGIN "-----BEGIN PGP SIGNATURE-----"

/* An SSH signature: verified, then its key looked up. */
static int check_ssh(const otr_signed *o, const otr_signers *signers, otr_source_trust *out,
                     otr_buf *why)
{
    otr_sshsig sig;
    int rc = -1;
    if (otr_sshsig_parse(&sig, o->signature.ptr, o->signature.len, why) < 0 ||
        otr_sshsig_verify(&sig, GIT_NAMESPACE, o->payload.ptr, o->payload.len, why) < 0 ||
        !otr_signers_match(signers, sig.key.p, sig.key.len, o->email, GIT_NAMESPACE, o->when, why))
        goto done;
    otr_ssh_fingerprint(sig.key.p, sig.key.len, out->fingerprint);
    out->family = otr_ssh_key_family(&sig.key_type);
    out->format = "ssh";
    rc = 0;
done:
    otr_sshsig_clear(&sig);
    return rc;
}

/* An OpenPGP signature: verified by a key of the keyring, whose primary
 * key's fingerprint the signers must list. */
static int check_openpgp(const otr_signed *o, const otr_source_verify_options *vo,
                         otr_source_trust *out, otr_buf *why)
{
    otr_pgp_signer by;
    unsigned char blob[OTR_SIGNERS_OPENPGP_LEN];
    if (!vo->openpgp) {
        otr_buf_puts(why, "it carries an OpenPGP signature, and no --openpgp-keys file gives the "
                          "keys to check it by (list the key as 'openpgp FINGERPRINT' and give "
                          "--openpgp-keys, or sign with SSH: git config gpg.format ssh)");
        return -1;
    }
    if (otr_pgp_verify(vo->openpgp, o->signature.ptr, o->signature.len, o->payload.ptr,
                       o->payload.len, vo->now, &by, why) < 0)
        return -1;
    otr_signers_openpgp_key(by.primary, blob);
    if (!otr_signers_match(vo->signers, blob, sizeof(blob), o->email, GIT_NAMESPACE, o->when,
                           why)) {
        otr_buf_printf(why, " (OpenPGP key %s)", by.primary_hex);
        return -1;
    }
    snprintf(out->fingerprint, sizeof(out->fingerprint), "%s", by.primary_hex);
    out->family = by.family;
    out->format = "openpgp";
    return 0;
}

/* Checks one split object; what names it in messages ("commit 1a2b3c4d5e6f"). */
static int check(const otr_signed *o, const otr_source_verify_options *vo, const char *what,
                 otr_source_trust *out, otr_error *err)
{
    otr_buf why = OTR_BUF_INIT;
    otr_source_trust seen = {0};
    if (!o->signature.len)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "%s is not signed; sign it with a key listed in %s (SSH: git config "
                             "gpg.format ssh; OpenPGP: gpg.format openpgp; then git commit -S)",
                             what, vo->signers->file);
    if (o->bad)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "%s: its committer (tagger) line is malformed, as git fsck would say: "
                             "%s",
                             what, o->bad);
    if (!o->email)
        return otr_error_set(err, OTR_ERR_INVALID, "%s names no committer e-mail", what);
    int pgp = o->signature.len >= strlen(PGP_BEGIN) &&
              !memcmp(o->signature.ptr, PGP_BEGIN, strlen(PGP_BEGIN));
    int rc = pgp ? check_openpgp(o, vo, &seen, &why) : check_ssh(o, vo->signers, &seen, &why);
    if (rc < 0) {
        otr_error_set(err, OTR_ERR_INVALID, "%s (%s): %s", what, o->email, otr_buf_cstr(&why));
    } else if (out) {
        snprintf(seen.principal, sizeof(seen.principal), "%s", o->email);
        seen.commits = out->commits;
        *out = seen;
    }
    otr_buf_free(&why);
    return rc;
}

static int check_object(otr_source *s, const git_oid *oid, int tag,
                        const otr_source_verify_options *vo, otr_source_trust *out, otr_error *err)
{
    git_odb_object *raw = NULL;
    otr_signed o;
    char what[64];
    snprintf(what, sizeof(what), "%s %.12s", tag ? "tag" : "commit", git_oid_tostr_s(oid));
    if (read_raw(s, oid, &raw, err) < 0)
        return -1;
    const char *data = git_odb_object_data(raw);
    size_t len = git_odb_object_size(raw);
    int rc = (tag ? otr_signed_tag(&o, data, len) : otr_signed_commit(&o, data, len)) < 0
                 ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory")
                 : check(&o, vo, what, out, err);
    otr_signed_clear(&o);
    git_odb_object_free(raw);
    return rc;
}

/* The ids of the paths' trees (or blobs) in commit c, then the config
 * file's; zero when absent. */
static void path_ids(otr_source *s, git_commit *c, git_oid *out)
{
    git_tree *tree = NULL;
    size_t n = s->npaths + (s->config_file != NULL);
    memset(out, 0, n * sizeof(*out));
    if (git_commit_tree(&tree, c) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *path = i < s->npaths ? s->paths[i] : s->config_file;
        git_tree_entry *e = NULL;
        if (!path[0])
            git_oid_cpy(&out[i], git_tree_id(tree));
        else if (git_tree_entry_bypath(&e, tree, path) == 0)
            git_oid_cpy(&out[i], git_tree_entry_id(e));
        git_tree_entry_free(e);
    }
    git_tree_free(tree);
}

/* A range that cannot be walked whole is refused: a shallow clone (GitHub's
 * checkout fetches one commit) would otherwise hide the unsigned commits
 * below its boundary. */
static int incomplete(otr_source *s, const char *at, otr_error *err)
{
    return otr_error_set(err, OTR_ERR_INVALID,
                         "--verify-commits range: the history of %s is incomplete%s%s%s, so the "
                         "commits since the last applied one cannot all be checked: fetch with "
                         "enough depth (git fetch --unshallow; actions/checkout: fetch-depth: 0), "
                         "or give --verify-commits head",
                         s->repo_name, at ? " at " : "", at ? at : "",
                         git_repository_is_shallow(s->repo) == 1 ? " (a shallow clone)" : "");
}

/* Does commit c change a file under the path (against its first parent)?
 * -1 (with err) when its parent cannot be read: the history is incomplete. */
static int changes_path(otr_source *s, git_commit *c, otr_error *err)
{
    size_t n = s->npaths + (s->config_file != NULL);
    git_oid *mine = calloc(2 * n, sizeof(*mine)), *theirs = mine + n;
    git_commit *parent = NULL;
    int changes = 0;
    if (!mine)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    path_ids(s, c, mine);
    if (git_commit_parentcount(c) > 0 && git_commit_parent(&parent, c, 0) < 0) {
        char at[13];
        snprintf(at, sizeof(at), "%.12s", git_oid_tostr_s(git_commit_id(c)));
        free(mine);
        return incomplete(s, at, err);
    }
    if (parent)
        path_ids(s, parent, theirs);
    for (size_t i = 0; i < n; i++)
        changes |= !git_oid_equal(&mine[i], &theirs[i]);
    git_commit_free(parent);
    free(mine);
    return changes;
}

/* Checks commit oid when it changes the path (the head was checked apart);
 * err then says which range it stands in. */
static int check_if_changed(otr_source *s, git_commit *c, const otr_source_verify_options *vo,
                            const git_oid *head, const char *how, otr_source_trust *out,
                            otr_error *err)
{
    const git_oid *oid = git_commit_id(c);
    int changes = git_oid_equal(oid, head) ? 0 : changes_path(s, c, err);
    if (changes <= 0)
        return changes;
    out->commits++;
    if (check_object(s, oid, 0, vo, NULL, err) == 0)
        return 0;
    char since_text[24];
    snprintf(since_text, sizeof(since_text), "%.12s", vo->since && *vo->since ? vo->since : "");
    otr_error_prefix(err, "--verify-commits range: %.12s%s changes %s since %s",
                     git_oid_tostr_s(oid), how, s->path[0] ? s->path : ".",
                     vo->since && *vo->since ? since_text : "the first commit");
    return -1;
}

/* A walk from push, hiding hide (NULL: nothing) and since; first: along
 * first parents only. */
static int walk_new(otr_source *s, git_revwalk **walk, const git_oid *push, size_t npush,
                    const git_oid *hide, const otr_source_verify_options *vo, int first,
                    otr_error *err)
{
    git_oid from;
    if (git_revwalk_new(walk, s->repo) < 0)
        return otr_source_git_fail(err, OTR_ERR_IO, "cannot walk the history");
    if (first)
        git_revwalk_simplify_first_parent(*walk);
    for (size_t i = 0; i < npush; i++)
        if (git_revwalk_push(*walk, &push[i]) < 0)
            return otr_source_git_fail(err, OTR_ERR_IO, "cannot walk the history");
    if ((hide && git_revwalk_hide(*walk, hide) < 0) ||
        (vo->since && *vo->since &&
         (git_oid_fromstr(&from, vo->since) < 0 || git_revwalk_hide(*walk, &from) < 0)))
        return otr_source_git_fail(err, OTR_ERR_IO, "cannot walk the history");
    return 0;
}

/* The commits merge c brings in (reachable from its other parents, not
 * from its first, nor from since) that change the path. */
static int check_brought_in(otr_source *s, git_commit *c, const otr_source_verify_options *vo,
                            const git_oid *head, otr_source_trust *out, otr_error *err)
{
    git_oid others[16], oid;
    unsigned n = git_commit_parentcount(c);
    git_revwalk *walk = NULL;
    char how[48];
    int rc = 0, next = 0;
    if (n < 2)
        return 0;
    if (n - 1 > sizeof(others) / sizeof(others[0]))
        return otr_error_set(err, OTR_ERR_INVALID, "merge %.12s has %u parents (at most %zu read)",
                             git_oid_tostr_s(git_commit_id(c)), n,
                             sizeof(others) / sizeof(others[0]) + 1);
    for (unsigned i = 1; i < n; i++)
        git_oid_cpy(&others[i - 1], git_commit_parent_id(c, i));
    snprintf(how, sizeof(how), ", brought in by merge %.12s,", git_oid_tostr_s(git_commit_id(c)));
    if (walk_new(s, &walk, others, n - 1, git_commit_parent_id(c, 0), vo, 0, err) < 0) {
        git_revwalk_free(walk);
        return -1;
    }
    while (rc == 0 && (next = git_revwalk_next(&oid, walk)) == 0) {
        git_commit *in = NULL;
        if (git_commit_lookup(&in, s->repo, &oid) < 0) {
            rc = incomplete(s, git_oid_tostr_s(&oid), err);
            break;
        }
        rc = check_if_changed(s, in, vo, head, how, out, err);
        git_commit_free(in);
    }
    if (rc == 0 && next != GIT_ITEROVER)
        rc = incomplete(s, NULL, err);
    git_revwalk_free(walk);
    return rc;
}

/* The first-parent chain from the head down to since, each commit that
 * changes the path checked (and with require_authors what each merge
 * brings in); the walk must reach its end: a commit that cannot be read
 * stops it with an error, never with a pass. */
static int check_range(otr_source *s, const otr_source_verify_options *vo, otr_source_trust *out,
                       otr_error *err)
{
    git_revwalk *walk = NULL;
    git_oid head, oid;
    int rc = 0, next = 0;
    /* libgit2 1.5 walks a hidden commit's ancestors down to the clone's
     * boundary and fails there whatever the depth (and leaks its list):
     * a shallow clone is refused before the walk, as the walk would */
    if (git_repository_is_shallow(s->repo) == 1)
        return incomplete(s, NULL, err);
    if (git_oid_fromstr(&head, s->commit) < 0)
        return otr_source_git_fail(err, OTR_ERR_IO, "cannot walk the history");
    if (vo->since && *vo->since) {
        git_commit *c = NULL;
        git_oid from;
        if (git_oid_fromstr(&from, vo->since) < 0 || git_commit_lookup(&c, s->repo, &from) < 0)
            return otr_error_set(err, OTR_ERR_INVALID,
                                 "--verify-commits range: the state's last applied commit %.12s "
                                 "is not in %s (was the branch rewritten?); check what changed, "
                                 "then run once with --verify-commits head",
                                 vo->since, s->repo_name);
        git_commit_free(c);
    }
    if (walk_new(s, &walk, &head, 1, NULL, vo, 1, err) < 0) {
        git_revwalk_free(walk);
        return -1;
    }
    while (rc == 0 && (next = git_revwalk_next(&oid, walk)) == 0) {
        git_commit *c = NULL;
        if (git_commit_lookup(&c, s->repo, &oid) < 0) {
            rc = incomplete(s, git_oid_tostr_s(&oid), err);
            break;
        }
        rc = check_if_changed(s, c, vo, &head, "", out, err);
        if (rc == 0 && vo->require_authors)
            rc = check_brought_in(s, c, vo, &head, out, err);
        git_commit_free(c);
    }
    if (rc == 0 && next != GIT_ITEROVER) /* the walk did not reach its end */
        rc = incomplete(s, NULL, err);
    git_revwalk_free(walk);
    return rc;
}

int otr_source_verify(otr_source *s, const otr_source_verify_options *vo, otr_source_trust *out,
                      otr_error *err)
{
    git_oid oid;
    memset(out, 0, sizeof(*out));
    if (s->worktree)
        return otr_error_set(err, OTR_ERR_USAGE,
                             "--worktree reads no commit, so there is no signature to check; "
                             "drop --allowed-signers or --worktree");
    if (!s->repo)
        return otr_error_set(err, OTR_ERR_GENERIC, "the repository was closed before the check");
    if (s->tag[0] &&
        (git_oid_fromstr(&oid, s->tag) < 0 || check_object(s, &oid, 1, vo, NULL, err) < 0))
        return -1;
    if (git_oid_fromstr(&oid, s->commit) < 0 || check_object(s, &oid, 0, vo, out, err) < 0)
        return -1;
    out->commits = 1;
    return vo->range ? check_range(s, vo, out, err) : 0;
}
