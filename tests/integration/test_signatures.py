#!/usr/bin/env python3
"""Trusted commits (issue 15): --allowed-signers checked against git itself.

Fixtures are made here with ssh-keygen and `git commit -S` (gpg.format=ssh),
or written object by object with `git hash-object` where git will not make
them; on every one `git verify-commit` (or verify-tag) with the same
allowed-signers file is the oracle, and ota-runner must agree:

- each key type (ed25519, ecdsa p256/384/521, rsa) signs and verifies, with
  the fingerprint git prints;
- a tampered byte, a key not listed, valid-before passed, valid-after to
  come, the namespace "file" instead of "git", an unsigned commit, an
  OpenPGP signature: refused, each with its reason;
- a key listed for another principal: git calls it good (for that principal),
  ota-runner refuses it because the committer is someone else;
- the two traps of libgit2's signature extraction: a gpgsig block copied into
  the message (git: unsigned; refused), and an extra gpgsig-sha256 header
  (git: good; verified);
- annotated tags: an unsigned tag over a signed commit is refused, a signed
  one accepted;
- --verify-commits range: a signed merge over an unsigned commit that changes
  a manifest is accepted (first parents), refused with
  --require-author-signatures; head mode lets it through;
- plan names the signer; apply refuses an unsigned commit before any call,
  and records the signer of what it applied in the state.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import PLUG_MANIFEST, check, finish, program, write_raw_commit  # noqa: E402
from harness import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Emulator  # noqa: E402

RUNNER = program("OTA_RUNNER")
tmp = tempfile.mkdtemp(prefix="otr-sig-")
ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "TZ": "UTC"}
ALICE = "alice@example.com"
MANIFEST = PLUG_MANIFEST


def sh(*args, cwd=None, input=None, env=None):
    p = subprocess.run(args, cwd=cwd, input=input, capture_output=True, text=True, env=env or ENV)
    return p.returncode, p.stdout, p.stderr


def keygen(name, *args):
    path = os.path.join(tmp, name)
    sh("ssh-keygen", "-q", "-N", "", "-C", name, "-f", path, *args)
    with open(path + ".pub") as f:
        return path, " ".join(f.read().split()[:2])


KEYS = {"ed25519": keygen("ed25519", "-t", "ed25519"),
        "ecdsa256": keygen("ecdsa256", "-t", "ecdsa", "-b", "256"),
        "ecdsa384": keygen("ecdsa384", "-t", "ecdsa", "-b", "384"),
        "ecdsa521": keygen("ecdsa521", "-t", "ecdsa", "-b", "521"),
        "rsa": keygen("rsa", "-t", "rsa", "-b", "3072"),
        "carol": keygen("carol", "-t", "ed25519")}


def signers(lines):
    path = os.path.join(tmp, f"allowed-{abs(hash(tuple(lines)))}")
    with open(path, "w") as f:
        f.write("# who may send firmware\n" + "\n".join(lines) + "\n")
    return path


ALLOWED = signers([f"{ALICE} {KEYS[k][1]}" for k in ("ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa")])

repo = os.path.join(tmp, "fleet")
sh("git", "init", "-q", "-b", "main", repo)
counter = [0]


def git(*args, key=None, who=ALICE):
    cfg = ["-c", f"user.name=Alice", "-c", f"user.email={who}", "-c", "gpg.format=ssh"]
    if key:
        cfg += ["-c", f"user.signingkey={KEYS[key][0]}"]
    return sh("git", *cfg, *args, cwd=repo)


def commit(key=None, msg="change", who=ALICE):
    counter[0] += 1
    os.makedirs(os.path.join(repo, "manifests"), exist_ok=True)
    with open(os.path.join(repo, "manifests", "plug.yaml"), "w") as f:
        f.write(MANIFEST % counter[0])
    git("add", "-A")
    rc, out, err = git("commit", "-q", *(["-S"] if key else []), "-m", msg, key=key, who=who)
    assert rc == 0, err
    return git("rev-parse", "HEAD")[1].strip()


def oracle(rev, allowed, tag=False):
    rc, out, err = sh("git", "-c", f"gpg.ssh.allowedSignersFile={allowed}",
                      "verify-tag" if tag else "verify-commit", rev, cwd=repo)
    return rc == 0, out + err


def runner(*args, allowed=ALLOWED, ref="HEAD", env_extra=None):
    e = {**ENV, **(env_extra or {})}
    p = subprocess.run([RUNNER, *args, "--repo", repo, "--ref", ref, "--allowed-signers", allowed],
                       capture_output=True, text=True, env=e, timeout=120)
    return p.returncode, p.stdout, p.stderr


def agree(rev, what, allowed=ALLOWED, want=True, reason=None, tag=False):
    good, said = oracle(rev, allowed, tag)
    rc, out, err = runner("validate", allowed=allowed, ref=rev)
    ok = (rc == 0) == want and good == want and (reason is None or reason in err)
    check(ok, f"{what}: git {'accepts' if good else 'refuses'}, ota-runner "
          f"{'accepts' if rc == 0 else 'refuses'}", f"git: {said}\nota-runner: {out}{err}")
    return out, err


def raw(rev):
    return subprocess.run(["git", "cat-file", "commit", rev], cwd=repo, capture_output=True,
                          env=ENV).stdout


def write_commit(data, branch):
    return write_raw_commit(repo, data, branch, ENV)


def ssh_sign(payload, key, namespace="git", *options):
    path = os.path.join(tmp, "payload")
    with open(path, "wb") as f:
        f.write(payload)
    sh("ssh-keygen", "-Y", "sign", "-n", namespace, "-f", KEYS[key][0], *options, path)
    with open(path + ".sig", "rb") as f:
        sig = f.read()
    os.remove(path + ".sig")
    return sig


def with_gpgsig(headers_and_body, sig, header=b"gpgsig"):
    """The commit with a signature header inserted after the committer line."""
    head, _, body = headers_and_body.partition(b"\n\n")
    lines = sig.rstrip(b"\n").split(b"\n")
    block = header + b" " + b"\n ".join(lines)
    return head + b"\n" + block + b"\n\n" + body


# ---- every key type
for key in ("ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa"):
    rev = commit(key, f"signed with {key}")
    out, err = agree(rev, f"{key}: a good signature")
    good, said = oracle(rev, ALLOWED)
    fp = said.split("key ")[-1].split()[0] if "key " in said else "?"
    check(f"signed by {ALICE}, " in out and fp in out, f"{key}: the signer and git's fingerprint",
          out + said)
signed = rev

# ---- refusals both agree on
data = raw(signed)
tampered = write_commit(data.replace(b"signed with rsa", b"signed with RSA"), "tampered")
agree(tampered, "a tampered byte", want=False, reason="does not match the signed data")
carol = commit("carol", "carol signs")
agree(carol, "a key not listed", want=False, reason="the key is not in")
agree(commit("ed25519", "old key"), "valid-before passed",
      allowed=signers([f'{ALICE} valid-before="20200101Z" {KEYS["ed25519"][1]}']), want=False,
      reason="makes the key expire at 2020-01-01T00:00:00Z")
agree(commit("ed25519", "new key"), "valid-after to come",
      allowed=signers([f'{ALICE} valid-after="20991231Z" {KEYS["ed25519"][1]}']), want=False,
      reason="makes the key valid only after 2099-12-31")
agree(commit("ed25519", "a namespace option"), "namespaces=\"git\" allows it",
      allowed=signers([f'{ALICE} namespaces="git",valid-after="20200101" {KEYS["ed25519"][1]}']))
# options read exactly as ssh-keygen reads them (issue 23, defect 10): a value
# not in quotes, an option twice, a stray comma, an unknown option, a
# valid-before not after valid-after all make a bad line, which git trusts
# nothing on and ota-runner refuses naming file:line; case and \" are fine
opts_commit = commit("ed25519", "options as ssh-keygen reads them")
for opts, want in (('valid-before=20991231', False), ('namespaces=git', False),
                   ('valid-after="20200101",valid-after="20200102"', False),
                   ('valid-after="20200101",', False), ('namespaces="git"x', False),
                   ('foo="bar"', False), ('valid-after="20200101",valid-before="20200101"', False),
                   ('valid-after="2020010"', False), ('valid-after="20201301"', False),
                   ('VALID-AFTER="20200101",Namespaces="git"', True), ('namespaces="g\\"it,git"', True),
                   ('valid-after="20200101Z",valid-before="20991231235959Z"', True)):
    path = signers([f"{ALICE} {opts} {KEYS['ed25519'][1]}"])
    agree(opts_commit, f"allowed signers options {opts}", allowed=path, want=want,
          reason=None if want else f"{path}:2: ")
# a bad line elsewhere in the file: ssh-keygen complains and reads on; ota-runner
# refuses the file (stricter: a typo in the list of who may send firmware is fixed
# before anything is trusted)
path = signers([f"bob@example.com valid-before=20991231 {KEYS['rsa'][1]}", f"{ALICE} {KEYS['ed25519'][1]}"])
good, said = oracle(opts_commit, path)
rc, out, err = runner("validate", allowed=path, ref=opts_commit)
check(good and "bad options" in said and rc == 1 and f"{path}:2: valid-before=: the value must be in double "
      "quotes" in err, "a bad line for another key: git skips it, ota-runner refuses the file naming file:line",
      said + out + err)
unsigned = commit(None, "not signed")
agree(unsigned, "an unsigned commit", want=False, reason="is not signed")
payload = raw(unsigned)
file_ns = write_commit(with_gpgsig(payload, ssh_sign(payload, "ed25519", "file")), "file-namespace")
agree(file_ns, "a signature in the namespace \"file\"", want=False,
      reason='signed in the namespace "file", not "git"')
sha256 = write_commit(with_gpgsig(payload, ssh_sign(payload, "ecdsa256", "git", "-O", "hashalg=sha256")),
                      "sha256-hash")
agree(sha256, "a signature over a sha256 hash (ssh-keygen -O hashalg=sha256)")
# the gpgsig header holds one armored block and nothing else, as ssh-keygen reads it (issue 29)
good_sig = ssh_sign(payload, "ed25519")
garbage = write_commit(with_gpgsig(payload, b"garbage line\n" + good_sig), "garbage-first")
agree(garbage, "a garbage line before a good SSH block", want=False, reason="does not start with its")
pgp_first = write_commit(with_gpgsig(payload, b"-----BEGIN PGP SIGNATURE-----\n\niQEz\n=abcd\n"
                                              b"-----END PGP SIGNATURE-----\n" + good_sig), "pgp-first")
agree(pgp_first, "an OpenPGP block before a good SSH block", want=False)
# the committer's e-mail is the first <...>, as git reads it, and a line git fsck flags is refused:
# "Alice <alice@...> <mallory@...>" shows as Alice in git log, signed by Mallory's key
forged = re.sub(rb"\ncommitter [^\n]*", f"\ncommitter Alice <{ALICE}> <mallory@example.com> 1700000000 +0000".encode(),
                payload, count=1)
mallory = write_commit(with_gpgsig(forged, ssh_sign(forged, "carol")), "two-emails")
good, said = oracle(mallory, signers([f"mallory@example.com {KEYS['carol'][1]}"]))
rc, out, err = runner("validate", allowed=signers([f"mallory@example.com {KEYS['carol'][1]}"]), ref=mallory)
check(rc == 1 and "committer (tagger) line is malformed" in err,
      f"a committer line with two e-mails is refused (git: {'accepts' if good else 'refuses'})", said + out + err)
pgp = b"-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n"
pgp_commit = write_commit(with_gpgsig(payload, pgp), "pgp")
agree(pgp_commit, "an OpenPGP signature", want=False, reason="sign with SSH: git config gpg.format ssh")

# ---- a principal git does not compare with the committer
bob_file = signers([f"bob@example.com {KEYS['ed25519'][1]}"])
as_bob = commit("ed25519", "alice signs, the file says bob")
good, said = oracle(as_bob, bob_file)
rc, out, err = runner("validate", allowed=bob_file, ref=as_bob)
check(good and "bob@example.com" in said and rc == 1
      and f"lists the key for bob@example.com, not {ALICE}" in err,
      "another principal: git calls it good for bob, ota-runner refuses a commit alice made",
      said + out + err)

# ---- libgit2's traps
forged_body = payload.rstrip(b"\n") + b"\n\n" + with_gpgsig(b"x\n\n", ssh_sign(payload, "ed25519")).split(b"\n\n")[0][2:] + b"\n"
forged = write_commit(forged_body, "forged-in-message")
agree(forged, "a gpgsig block in the message, not the header", want=False, reason="is not signed")
base = raw(unsigned)
head, _, body = base.partition(b"\n\n")
with_other = head + b"\ngpgsig-sha256 -----BEGIN SSH SIGNATURE-----\n U1NIU0lH\n -----END SSH SIGNATURE-----\n\n" + body
signed_other = write_commit(with_gpgsig(with_other, ssh_sign(base, "ed25519")), "sha256-header")
agree(signed_other, "an extra gpgsig-sha256 header (not part of what is signed)")

# ---- annotated tags
sh("git", "checkout", "-q", "main", cwd=repo)
top = commit("ed25519", "to be tagged")
git("tag", "-a", "-m", "unsigned tag", "v1")
agree("v1", "an unsigned annotated tag over a signed commit", want=False, reason="tag ", tag=True)
git("tag", "-s", "-m", "signed tag", "v2", key="ed25519")
agree("v2", "a signed annotated tag", tag=True)

# ---- --verify-commits range, plan and apply
with Emulator("--tick", "0.2") as emu:
    state = os.path.join(tmp, "state.json")
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
           "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": emu.url, "AWS_EC2_METADATA_DISABLED": "true",
           "OTA_RUNNER_STATE": state, "NO_COLOR": "1"}
    rc, out, err = runner("apply", env_extra=env)
    recorded = json.load(open(state))["source"]
    check(rc == 0 and f"Commit signed by {ALICE}, ED25519 SHA256:" in out
          and recorded.get("signedBy", {}).get("principal") == ALICE and recorded["commit"] == top,
          "apply: the plan names the signer and the state records it", out + err + json.dumps(recorded))
    # range mode over signed commits only: accepted, and each one checked
    commit("ecdsa256", "signed change")
    top = commit("ed25519", "another signed change")
    rc, out, err = runner("apply", "--verify-commits", "range", "--allow-cancel", env_extra=env)
    signer = json.load(open(state))["source"].get("signedBy", {})
    check(rc == 0 and signer.get("commits") == 2, "range mode: the signed commits since the last apply pass",
          out + err + json.dumps(signer))
    # an unsigned commit on a side branch, merged by a signed merge
    sh("git", "checkout", "-q", "-b", "side", cwd=repo)
    sneaky = commit(None, "unsigned change on a branch")
    sh("git", "checkout", "-q", "main", cwd=repo)
    with open(os.path.join(repo, "README"), "w") as f:
        f.write("x\n")
    git("add", "README")
    git("commit", "-qS", "-m", "signed, outside manifests", key="ed25519")
    rc, out, err = git("merge", "-q", "-S", "--no-ff", "-m", "signed merge", "side", key="ed25519")
    merge = git("rev-parse", "HEAD")[1].strip()
    check(rc == 0 and oracle(merge, ALLOWED)[0] and not oracle(sneaky, ALLOWED)[0],
          "range fixture: a signed merge over an unsigned commit", out + err)
    rc, out, err = runner("plan", env_extra=env)
    check(rc == 0, "head mode: the signed merge is accepted", out + err)
    # range mode walks first parents: the merge's signer vouches for what it brings in (issue 26)
    rc, out, err = runner("plan", "--verify-commits", "range", env_extra=env)
    check(rc in (0, 2) and "Commit signed by" in out, "range mode: the signed merge vouches for its branch", out + err)
    before = len(emu.log())
    rc, out, err = runner("apply", "--verify-commits", "range", "--require-author-signatures", env_extra=env)
    check(rc == 1 and f"{sneaky[:12]}, brought in by merge {merge[:12]}, changes manifests since {top[:12]}" in err
          and "is not signed" in err and len(emu.log()) == before,
          "range mode with --require-author-signatures: the unsigned commit under the merge is refused, no call made",
          out + err)
    # the same range in clones (issue 29): a shallow one cannot show what is below its boundary,
    # so it is refused, never passed; a full one names the unsigned commit
    git("branch", "-f", "at-merge", merge)
    for depth in (1, 2, 3, None):
        clone = os.path.join(tmp, f"clone-{depth or 'full'}")
        sh("git", "clone", "-q", "--branch", "at-merge", *(["--depth", str(depth)] if depth else []),
           "file://" + repo, clone)
        for fresh in (True, False):
            cenv = {**env, "OTA_RUNNER_STATE": os.path.join(tmp, f"clone-{depth}-{fresh}.json")}
            if not fresh:  # the state's last applied commit is top, three commits below the merge
                shutil.copy(state, cenv["OTA_RUNNER_STATE"])
            p = subprocess.run([RUNNER, "plan", "--verify-commits", "range", "--require-author-signatures", "--repo", clone,
                                "--allowed-signers", ALLOWED], capture_output=True, text=True,
                               env={**ENV, **cenv}, timeout=120)
            named = f"{sneaky[:12]}, brought in by merge {merge[:12]}, changes manifests since " in p.stderr
            incomplete = "is incomplete (a shallow clone)" in p.stderr and "fetch-depth: 0" in p.stderr
            check(p.returncode == 1 and (named if depth is None else named or incomplete),
                  f"range mode on a clone of depth {depth or 'full'}, {'fresh' if fresh else 'applied'} state: "
                  f"{'the unsigned commit named' if depth is None else 'refused'}", p.stdout + p.stderr)
    rc, out, err = runner("plan", "--verify-commits", "range", env_extra={**env, "OTA_RUNNER_STATE": os.path.join(tmp, "fresh.json")})
    check(rc == 1 and "changes manifests since the first commit" in err,
          "range mode from the first commit says so whole", err)
    commit(None, "unsigned on top")
    before = len(emu.log())
    rc, out, err = runner("apply", env_extra=env)
    check(rc == 1 and "is not signed" in err and len(emu.log()) == before,
          "apply: an unsigned head is refused before any call", out + err)
    rc, out, err = runner("plan", "--worktree", env_extra=env)
    check(rc == 1 and "--worktree reads no commit" in err, "--worktree with --allowed-signers is refused", err)

# ---- the allowed-signers file itself
for lines, want in (([f"{ALICE} cert-authority {KEYS['ed25519'][1]}"], ":2: cert-authority: certificates are not supported"),
                    ([f"{ALICE} valid-before=\"yesterday\" {KEYS['ed25519'][1]}"], ":2: \"yesterday\" is not a time"),
                    ([f"{ALICE} ssh-ed25519 AAAA!!"], ":2: the key of type ssh-ed25519 is not base64"),
                    ([f"{ALICE}"], ":2: expected: PRINCIPALS [OPTIONS] KEYTYPE BASE64-KEY")):
    path = signers(lines)
    rc, out, err = runner("validate", allowed=path, ref=top)
    check(rc == 1 and f"{path}{want}" in err, f"allowed signers: {want.split(': ', 1)[1][:40]}", err)
finish()
