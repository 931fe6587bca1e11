/*
 * Trusted commits: the commit (and the annotated tag --ref names) must carry
 * an SSH signature in the namespace "git" by a key the allowed signers list
 * for the committer's (tagger's) e-mail, valid at the time it records; in
 * range mode, so must every commit since the state's last applied one that
 * changes a file under the path.
 */
#include "source/internal.h"
#include "source/source.h"

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

/* Checks one split object; what names it in messages ("commit 1a2b3c4d5e6f"). */
static int check(const otr_signed *o, const otr_signers *signers, const char *what,
                 otr_source_trust *out, otr_error *err)
{
    otr_sshsig sig;
    otr_buf why = OTR_BUF_INIT;
    int rc = -1;
    if (!o->signature.len)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "%s is not signed; sign it with an SSH key listed in %s (git "
                             "config gpg.format ssh; git commit -S)",
                             what, signers->file);
    if (o->bad)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "%s: its committer (tagger) line is malformed, as git fsck would say: "
                             "%s",
                             what, o->bad);
    if (!o->email)
        return otr_error_set(err, OTR_ERR_INVALID, "%s names no committer e-mail", what);
    if (otr_sshsig_parse(&sig, o->signature.ptr, o->signature.len, &why) < 0)
        goto done;
    if (otr_sshsig_verify(&sig, GIT_NAMESPACE, o->payload.ptr, o->payload.len, &why) < 0)
        goto done;
    const otr_signer *e =
        otr_signers_match(signers, sig.key.p, sig.key.len, o->email, GIT_NAMESPACE, o->when, &why);
    if (!e)
        goto done;
    if (out) {
        snprintf(out->principal, sizeof(out->principal), "%s", o->email);
        otr_ssh_fingerprint(sig.key.p, sig.key.len, out->fingerprint);
        out->family = otr_ssh_key_family(&sig.key_type);
    }
    rc = 0;
done:
    if (rc < 0)
        otr_error_set(err, OTR_ERR_INVALID, "%s (%s): %s", what, o->email ? o->email : "?",
                      otr_buf_cstr(&why));
    otr_buf_free(&why);
    otr_sshsig_clear(&sig);
    return rc;
}

static int check_object(otr_source *s, const git_oid *oid, int tag, const otr_signers *signers,
                        otr_source_trust *out, otr_error *err)
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
                 : check(&o, signers, what, out, err);
    otr_signed_clear(&o);
    git_odb_object_free(raw);
    return rc;
}

/* The id of the path's tree (or blob) in commit c; zero when absent. */
static void path_id(otr_source *s, git_commit *c, git_oid *out)
{
    git_tree *tree = NULL;
    git_tree_entry *e = NULL;
    memset(out, 0, sizeof(*out));
    if (git_commit_tree(&tree, c) < 0)
        return;
    if (!s->path[0])
        git_oid_cpy(out, git_tree_id(tree));
    else if (git_tree_entry_bypath(&e, tree, s->path) == 0)
        git_oid_cpy(out, git_tree_entry_id(e));
    git_tree_entry_free(e);
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
    git_oid mine, theirs;
    git_commit *parent = NULL;
    path_id(s, c, &mine);
    if (git_commit_parentcount(c) == 0)
        return !git_oid_is_zero(&mine);
    if (git_commit_parent(&parent, c, 0) < 0) {
        char at[13];
        snprintf(at, sizeof(at), "%.12s", git_oid_tostr_s(git_commit_id(c)));
        return incomplete(s, at, err);
    }
    path_id(s, parent, &theirs);
    git_commit_free(parent);
    return !git_oid_equal(&mine, &theirs);
}

/* Every commit reachable from the head but not from since that changes the
 * path; the walk must reach its end: a commit that cannot be read stops it
 * with an error, never with a pass. */
static int check_range(otr_source *s, const otr_signers *signers, const char *since,
                       otr_source_trust *out, otr_error *err)
{
    git_revwalk *walk = NULL;
    git_oid head, from, oid;
    int rc = 0, next = 0;
    /* libgit2 1.5 walks a hidden commit's ancestors down to the clone's
     * boundary and fails there whatever the depth (and leaks its list):
     * a shallow clone is refused before the walk, as the walk would */
    if (git_repository_is_shallow(s->repo) == 1)
        return incomplete(s, NULL, err);
    if (git_oid_fromstr(&head, s->commit) < 0 || git_revwalk_new(&walk, s->repo) < 0 ||
        git_revwalk_push(walk, &head) < 0)
        return otr_source_git_fail(err, OTR_ERR_IO, "cannot walk the history");
    if (since && *since) {
        git_commit *c = NULL;
        if (git_oid_fromstr(&from, since) < 0 || git_commit_lookup(&c, s->repo, &from) < 0) {
            git_revwalk_free(walk);
            return otr_error_set(err, OTR_ERR_INVALID,
                                 "--verify-commits range: the state's last applied commit %.12s "
                                 "is not in %s (was the branch rewritten?); check what changed, "
                                 "then run once with --verify-commits head",
                                 since, s->repo_name);
        }
        git_commit_free(c);
        git_revwalk_hide(walk, &from);
    }
    while (rc == 0 && (next = git_revwalk_next(&oid, walk)) == 0) {
        git_commit *c = NULL;
        if (git_commit_lookup(&c, s->repo, &oid) < 0) {
            rc = incomplete(s, git_oid_tostr_s(&oid), err);
            break;
        }
        int changes = git_oid_equal(&oid, &head) ? 0 : changes_path(s, c, err);
        if (changes <= 0) {
            rc = changes;
            git_commit_free(c);
            continue;
        }
        rc = check_object(s, &oid, 0, signers, NULL, err);
        if (rc < 0) {
            char since_text[24];
            snprintf(since_text, sizeof(since_text), "%.12s", since && *since ? since : "");
            otr_error_prefix(err, "--verify-commits range: %.12s changes %s since %s",
                             git_oid_tostr_s(&oid), s->path[0] ? s->path : ".",
                             since && *since ? since_text : "the first commit");
        }
        out->commits++;
        git_commit_free(c);
    }
    if (rc == 0 && next != GIT_ITEROVER) /* the walk did not reach its end */
        rc = incomplete(s, NULL, err);
    git_revwalk_free(walk);
    return rc;
}

int otr_source_verify(otr_source *s, const otr_signers *signers, int range, const char *since,
                      otr_source_trust *out, otr_error *err)
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
        (git_oid_fromstr(&oid, s->tag) < 0 || check_object(s, &oid, 1, signers, NULL, err) < 0))
        return -1;
    if (git_oid_fromstr(&oid, s->commit) < 0 || check_object(s, &oid, 0, signers, out, err) < 0)
        return -1;
    out->commits = 1;
    return range ? check_range(s, signers, since, out, err) : 0;
}
