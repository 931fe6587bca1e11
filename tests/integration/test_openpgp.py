#!/usr/bin/env python3
"""OpenPGP-signed commits and tags (issue 26), held to `git verify-commit`.

Keys are made with gpg (RSA 3072, ed25519, nistp256) in a temporary home;
commits and tags are signed by `git commit -S` / `git tag -s` with
gpg.format openpgp. The oracle is `git verify-commit` (verify-tag) run with
a second gpg home that holds only the keys file given to ota-runner (and
`weak-digest SHA1`, as ota-runner refuses SHA-1). On each case both must
agree, except where ota-runner is stricter by design (a key listed for
another e-mail: gpg does not compare the committer):

- good signatures by each key type, and by a signing subkey;
- a tampered commit, a key not in the keys file, a key listed for another
  e-mail, an expired key, a revoked key, an expired signature, a SHA-1
  signature, a critical notation and a critical subpacket of an unknown type
  (written here with the `cryptography` package), a v3 signature, a signing
  subkey whose binding was removed;
- signed tags;
- a merge by a platform key (GitHub's web-flow, played by a key made here)
  over an unsigned commit: accepted by --verify-commits range, refused with
  --require-author-signatures, naming the commit.
"""
import base64
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import PLUG_MANIFEST, check, finish, program, write_raw_commit  # noqa: E402
from harness import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Emulator  # noqa: E402

RUNNER = program("OTA_RUNNER")
if not shutil.which("gpg"):
    print("SKIP: gpg is not installed (ci/bootstrap installs gnupg)")
    sys.exit(77)
try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
except ImportError:  # moto needs it, so it is on every machine that runs the tests
    print("SKIP: python3 cryptography is not installed")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="otr-pgp-")
HOME = os.path.join(tmp, "signer")      # the keys and their secrets
VERIFY = os.path.join(tmp, "verifiers")  # homes that hold only what a keys file holds
for d in (HOME, VERIFY):
    os.makedirs(d, mode=0o700)
ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "TZ": "UTC",
       "GNUPGHOME": HOME}
MANIFEST = PLUG_MANIFEST


def sh(*args, cwd=None, input=None, env=None, binary=False):
    p = subprocess.run(args, cwd=cwd, input=input, capture_output=True, text=not binary, env=env or ENV,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def gpg(*args, home=HOME, input=None):
    return sh("gpg", "--batch", "--yes", "--passphrase", "", "--pinentry-mode", "loopback", *args,
              input=input, env={**ENV, "GNUPGHOME": home})


def fingerprints(uid):
    rc, out, _ = gpg("--with-colons", "--fingerprint", "--fingerprint", uid)
    return [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]


def make_key(uid, algo, expire="never", at=None):
    faked = ["--faked-system-time", at + "!"] if at else []
    rc, out, err = gpg(*faked, "--quick-gen-key", uid, algo, "sign", expire)
    assert rc == 0, err
    return err.split("openpgp-revocs.d/")[1].split(".rev")[0]  # its revocation certificate's name


ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
KEYS = {"ed25519": make_key(f"Alice <{ALICE}>", "ed25519"),
        "rsa3072": make_key(f"Alice RSA <{ALICE}>", "rsa3072"),
        "nistp256": make_key(f"Alice P-256 <{ALICE}>", "nistp256"),
        "bob": make_key(f"Bob <{BOB}>", "ed25519"),
        "stranger": make_key(f"Stranger <{CAROL}>", "ed25519"),
        "expired": make_key("Old <old@example.com>", "ed25519", "1d", at="20240101T000000"),
        "dated": make_key("Dated <dated@example.com>", "ed25519", at="20240101T000000"),
        "revoked": make_key("Gone <gone@example.com>", "ed25519"),
        "web-flow": make_key("GitHub <noreply@github.com>", "rsa3072")}
# a signing subkey under its own primary key
MAIN = make_key("Sub <sub@example.com>", "ed25519")
gpg("--quick-add-key", MAIN, "ed25519", "sign")
SUBKEY = fingerprints(MAIN)[1]


def keys_file(name, *fprs, strip_binding_of=None):
    rc, out, err = sh("gpg", "--armor", "--export", *fprs, env=ENV, binary=True)
    if strip_binding_of:
        out = armor(drop_binding(dearmor(out), strip_binding_of), "PUBLIC KEY BLOCK")
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(out)
    return path


def allowed(lines):
    path = os.path.join(tmp, f"allowed-{abs(hash(tuple(lines)))}")
    with open(path, "w") as f:
        f.write("# who may send firmware\n" + "\n".join(lines) + "\n")
    return path


# ---- OpenPGP bytes, for the fixtures gpg will not make ------------------------------------

def dearmor(text):
    lines = text.decode().strip().splitlines()
    body = lines[lines.index("") + 1:-1]
    return base64.b64decode("".join(x for x in body if not x.startswith("=")))


def crc24(data):
    crc = 0xB704CE
    for b in data:
        crc ^= b << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def armor(data, label):
    b64 = base64.b64encode(data).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    crc = base64.b64encode(struct.pack(">I", crc24(data))[1:]).decode()
    return (f"-----BEGIN PGP {label}-----\n\n" + "\n".join(lines) + f"\n={crc}\n-----END PGP {label}-----\n").encode()


def packets(data):
    """(tag, header+body bytes, body) of each packet."""
    i, out = 0, []
    while i < len(data):
        b, start = data[i], i
        if b & 0x40:
            tag, o = b & 0x3F, data[i + 1]
            if o < 192:
                n, i = o, i + 2
            elif o < 224:
                n, i = ((o - 192) << 8) + data[i + 2] + 192, i + 3
            else:
                n, i = struct.unpack(">I", data[i + 2:i + 6])[0], i + 6
        else:
            tag, size = (b >> 2) & 0xF, [1, 2, 4][b & 3]
            n, i = int.from_bytes(data[i + 1:i + 1 + size], "big"), i + 1 + size
        out.append((tag, data[start:i + n], data[i:i + n]))
        i += n
    return out


def drop_binding(data, subkey_fpr):
    """The keys without the binding signature of the subkey subkey_fpr."""
    out, after_sub = b"", False
    for tag, whole, body in packets(data):
        if tag == 14:
            after_sub = hashlib.sha1(b"\x99" + struct.pack(">H", len(body)) + body).hexdigest().upper() == subkey_fpr
        elif tag == 2 and after_sub:
            continue
        else:
            after_sub = after_sub and tag == 2
        out += whole
    return out


def new_packet(tag, body):
    return bytes([0xC0 | tag, 0xFF]) + struct.pack(">I", len(body)) + body


def sub(t, value, critical=False):
    data = bytes([t | (0x80 if critical else 0)]) + value
    return bytes([len(data)]) + data


class CraftedKey:
    """An Ed25519 key (the legacy EdDSA encoding gpg writes) whose signatures
    are written here, subpacket by subpacket."""
    OID = bytes.fromhex("2B06010401DA470F01")

    def __init__(self, uid):
        self.sk = Ed25519PrivateKey.generate()
        pub = self.sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.created = int(time.time()) - 3600
        self.body = (b"\x04" + struct.pack(">I", self.created) + b"\x16" + bytes([len(self.OID)]) + self.OID
                     + struct.pack(">H", 263) + b"\x40" + pub)
        self.fpr = hashlib.sha1(b"\x99" + struct.pack(">H", len(self.body)) + self.body).digest()
        self.uid = uid.encode()
        prefix = b"\x99" + struct.pack(">H", len(self.body)) + self.body
        uid_part = b"\xb4" + struct.pack(">I", len(self.uid)) + self.uid
        self_sig = self.sign(prefix + uid_part, 0x13, [sub(27, b"\x03")])
        self.public = armor(new_packet(6, self.body) + new_packet(13, self.uid) + new_packet(2, self_sig),
                            "PUBLIC KEY BLOCK")

    def sign(self, data, sigtype=0x00, extra=()):
        hashed = sub(2, struct.pack(">I", int(time.time()) - 60)) + sub(33, b"\x04" + self.fpr) + b"".join(extra)
        head = bytes([4, sigtype, 22, 8]) + struct.pack(">H", len(hashed)) + hashed
        digest = hashlib.sha256(data + head + b"\x04\xff" + struct.pack(">I", len(head))).digest()
        sig = self.sk.sign(digest)
        unhashed = sub(16, self.fpr[-8:])
        mpi = lambda v: struct.pack(">H", int.from_bytes(v, "big").bit_length()) + v.lstrip(b"\0")  # noqa: E731
        return head + struct.pack(">H", len(unhashed)) + unhashed + digest[:2] + mpi(sig[:32]) + mpi(sig[32:])

    def hex(self):
        return self.fpr.hex().upper()


# ---- the repository --------------------------------------------------------------------

repo = os.path.join(tmp, "fleet")
sh("git", "init", "-q", "-b", "main", repo)
counter = [0]


def git(*args, key=None, who=ALICE, name="Alice", program=None):
    cfg = ["-c", f"user.name={name}", "-c", f"user.email={who}", "-c", "gpg.format=openpgp"]
    if key:
        cfg += ["-c", f"user.signingkey={key}"]
    if program:
        cfg += ["-c", f"gpg.program={program}"]
    return sh("git", *cfg, *args, cwd=repo)


def commit(key=None, msg="change", who=ALICE, program=None, name="Alice", path="manifests/plug.yaml"):
    counter[0] += 1
    os.makedirs(os.path.dirname(os.path.join(repo, path)), exist_ok=True)
    with open(os.path.join(repo, path), "w") as f:
        f.write(MANIFEST % counter[0])
    git("add", "-A")
    rc, out, err = git("commit", "-q", *(["-S"] if key else []), "-m", msg, key=key, who=who,
                       program=program, name=name)
    assert rc == 0, err
    return git("rev-parse", "HEAD")[1].strip()


def wrapper(name, *options):
    """A gpg.program that signs with extra options (git calls it with its own)."""
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec gpg " + " ".join(options) + ' "$@"\n')
    os.chmod(path, 0o755)
    return path


def raw(rev):
    return subprocess.run(["git", "cat-file", "commit", rev], cwd=repo, capture_output=True, env=ENV).stdout


def write_commit(data, branch):
    return write_raw_commit(repo, data, branch, ENV)


def with_gpgsig(payload, sig):
    head, _, body = payload.partition(b"\n\n")
    return head + b"\n" + b"gpgsig " + b"\n ".join(sig.rstrip(b"\n").split(b"\n")) + b"\n\n" + body


def unsigned_payload(rev):
    """A signed commit's bytes without its gpgsig header (what the signature covers)."""
    out, skipping = [], False
    for line in raw(rev).split(b"\n"):
        if line.startswith(b"gpgsig "):
            skipping = True
            continue
        if skipping and line.startswith(b" "):
            continue
        skipping = False
        out.append(line)
    return b"\n".join(out)


def oracle(rev, keys, tag=False):
    """git verify-commit with a gpg home holding only the keys file."""
    home = os.path.join(VERIFY, str(len(os.listdir(VERIFY))))  # a new home each time
    os.makedirs(home, mode=0o700)
    with open(os.path.join(home, "gpg.conf"), "w") as f:
        f.write("weak-digest SHA1\nno-autostart\n")
    gpg("--import", keys, home=home)
    rc, out, err = sh("git", "verify-tag" if tag else "verify-commit", rev, cwd=repo,
                      env={**ENV, "GNUPGHOME": home})
    return rc == 0, out + err


def runner(*args, signers, keys, ref="HEAD", env_extra=None):
    p = subprocess.run([RUNNER, *args, "--repo", repo, "--ref", ref, "--allowed-signers", signers,
                        "--openpgp-keys", keys], capture_output=True, text=True,
                       env={**ENV, **(env_extra or {})}, timeout=120)
    return p.returncode, p.stdout, p.stderr


def agree(rev, what, signers, keys, want=True, reason=None, tag=False, git_too=True):
    good, said = oracle(rev, keys, tag)
    rc, out, err = runner("validate", signers=signers, keys=keys, ref=rev)
    ok = (rc == 0) == want and (good == want or not git_too) and (reason is None or reason in out + err)
    check(ok, f"{what}: git {'accepts' if good else 'refuses'}, ota-runner {'accepts' if rc == 0 else 'refuses'}",
          f"git: {said}\nota-runner: {out}{err}")
    return out, err


ALL = keys_file("keys.asc", *KEYS.values(), MAIN)
ALLOWED = allowed([f"{ALICE} openpgp {KEYS[k]}" for k in ("ed25519", "rsa3072", "nistp256")] +
                  [f"{BOB} openpgp {KEYS['bob']}", f"old@example.com openpgp {KEYS['expired']}",
                   f"dated@example.com openpgp {KEYS['dated']}", f"gone@example.com openpgp {KEYS['revoked']}",
                   f"sub@example.com openpgp {MAIN}", f"noreply@github.com openpgp {KEYS['web-flow']}"])

# ---- each key type
families = {"ed25519": "ED25519", "rsa3072": "RSA", "nistp256": "ECDSA"}
for k, family in families.items():
    rev = commit(KEYS[k], f"signed with {k}")
    out, err = agree(rev, f"{k}: a good signature", ALLOWED, ALL)
    check(f"signed by {ALICE}, OpenPGP {family} {KEYS[k]}" in out, f"{k}: the signer, the family and the fingerprint",
          out + err)
signed = rev
rc, out, err = runner("validate", "-o", "json", signers=ALLOWED, keys=ALL, ref=signed)
check(rc == 0 and json.loads(out).get("signedBy", {}).get("format") == "openpgp" and KEYS["nistp256"] in out,
      "validate -o json says the signature is OpenPGP", out + err)

# a signing subkey: the allowed signers name its primary key
rev = commit(SUBKEY + "!", "signed by a subkey", who="sub@example.com")
out, _ = agree(rev, "a signing subkey with its binding", ALLOWED, ALL)
check(f"signed by sub@example.com, OpenPGP ED25519 {MAIN}" in out, "a subkey's signature names its primary key", out)
subkey_signed = rev
no_binding = keys_file("no-binding.asc", *KEYS.values(), MAIN, strip_binding_of=SUBKEY)
agree(subkey_signed, "a signing subkey without its binding", ALLOWED, no_binding, want=False,
      reason="has no valid binding signature")

# ---- refusals
data = raw(signed)
tampered = write_commit(data.replace(b"signed with nistp256", b"signed with NISTP256"), "tampered")
agree(tampered, "a tampered commit", ALLOWED, ALL, want=False, reason="does not match the signed data")
stranger = commit(KEYS["stranger"], "a key not in the file", who=CAROL)
only_alice = keys_file("alice.asc", KEYS["ed25519"], KEYS["rsa3072"], KEYS["nistp256"])
agree(stranger, "a key not in the keys file", allowed([f"{CAROL} openpgp {KEYS['stranger']}"]), only_alice,
      want=False, reason=f"which is not in {only_alice}")
as_bob = commit(KEYS["ed25519"], "alice's key, bob's name", who=BOB)
agree(as_bob, "a key listed for another e-mail (gpg does not compare the committer)", ALLOWED, ALL, want=False,
      reason=f"lists the key for {ALICE}, not {BOB}", git_too=False)
window = allowed([f'{ALICE} valid-before="20240101" openpgp {KEYS["ed25519"]}'])
first = git("rev-list", "--max-parents=0", "HEAD")[1].split()[0]
agree(first, "an openpgp line whose valid-before has passed", window, ALL, want=False,
      reason="makes the key expire at 2024-01-01", git_too=False)
unlisted = commit(KEYS["stranger"], "in the keys file, not in the allowed signers", who=CAROL)
agree(unlisted, "a key in the keys file that the allowed signers do not list", ALLOWED, ALL, want=False,
      reason="the key is not in", git_too=False)

# an expired key: made in 2024 to expire a day later, the commit signed then
old_time = wrapper("gpg-2024", "--faked-system-time", "20240101T060000!")
expired = commit(KEYS["expired"], "signed before the key expired", who="old@example.com", program=old_time)
agree(expired, "an expired key", ALLOWED, ALL, want=False, reason="expired on 2024-01-02")
# an expired signature: a key that never expires, a signature that lasted a day in 2024
sig_expires = wrapper("gpg-sig-expire", "--faked-system-time", "20240102T000000!", "--default-sig-expire", "1d")
exp_sig = commit(KEYS["dated"], "a signature that expires", who="dated@example.com", program=sig_expires)
agree(exp_sig, "an expired signature", ALLOWED, ALL, want=False, reason="the signature expired on 2024-01-03")
# a revoked key: the commit signed before, the key revoked by the certificate gpg stored
revoked = commit(KEYS["revoked"], "signed before the revocation", who="gone@example.com")
with open(os.path.join(HOME, "openpgp-revocs.d", KEYS["revoked"] + ".rev")) as f:
    cert = f.read().replace(":-----BEGIN", "-----BEGIN")
gpg("--import", input=cert)
REVOKED = keys_file("revoked.asc", *KEYS.values(), MAIN)
agree(revoked, "a revoked key", ALLOWED, REVOKED, want=False, reason=f"the key {KEYS['revoked']} is revoked")
# the key twice, a copy exported before the revocation first: the revocation still counts
both = os.path.join(tmp, "stale-and-revoked.asc")
with open(both, "wb") as f:
    f.write(open(ALL, "rb").read() + open(REVOKED, "rb").read())
agree(revoked, "a revoked key beside a stale copy of it", ALLOWED, both, want=False,
      reason=f"the key {KEYS['revoked']} is revoked")
# a SHA-1 signature (gpg makes one when asked; its verifier here says weak-digest SHA1)
sha1 = commit(KEYS["ed25519"], "a SHA-1 signature", program=wrapper("gpg-sha1", "--digest-algo", "SHA1"))
agree(sha1, "a SHA-1 signature", ALLOWED, ALL, want=False, reason="a signature by SHA1 is refused")
# a critical notation: gpg marks it critical and refuses what it does not know
notation = commit(KEYS["ed25519"], "a critical notation",
                  program=wrapper("gpg-notation", "--sig-notation", "'!ota@example.com=1'"))
agree(notation, "a critical notation", ALLOWED, ALL, want=False, reason="critical subpacket of type 20")
# a v3 signature: gpg makes none today; its version byte is what is refused
good_sig = raw(signed).split(b"gpgsig ", 1)[1].split(b"\n\n", 1)[0].replace(b"\n ", b"\n")
pkts = packets(dearmor(good_sig))
body = bytearray(pkts[0][2])
body[0] = 3
v3 = write_commit(with_gpgsig(unsigned_payload(signed), armor(new_packet(2, bytes(body)), "SIGNATURE")), "v3")
agree(v3, "a v3 signature", ALLOWED, ALL, want=False, reason="a v3 signature is refused")
# a critical subpacket of a type no one knows (100), and the same signature with it not critical
crafted = CraftedKey("Crafted <crafted@example.com>")
crafted_keys = os.path.join(tmp, "crafted.asc")
with open(crafted_keys, "wb") as f:
    f.write(crafted.public)
crafted_ok = allowed([f"crafted@example.com openpgp {crafted.hex()}"])
base = commit(None, "to be signed by hand", who="crafted@example.com")
payload = raw(base)
for critical in (False, True):
    sig = armor(new_packet(2, crafted.sign(payload, extra=[sub(100, b"x", critical)])), "SIGNATURE")
    rev = write_commit(with_gpgsig(payload, sig), f"crafted-{critical}")
    agree(rev, f"an unknown subpacket, {'critical' if critical else 'not critical'}", crafted_ok, crafted_keys,
          want=not critical, reason="critical subpacket of type 100" if critical else None)
sig = armor(new_packet(2, crafted.sign(payload, sigtype=0x01)), "SIGNATURE")
agree(write_commit(with_gpgsig(payload, sig), "crafted-text"), "a text-mode signature", crafted_ok, crafted_keys,
      want=False, reason="not of a binary document", git_too=False)

# ---- keys files and allowed-signers lines
rc, out, err = runner("validate", signers=ALLOWED, keys=os.path.join(tmp, "no-such-file"), ref=signed)
check(rc != 0 and "--openpgp-keys" in err, "a keys file that is missing is an error", err)
bad_line = allowed([f"{ALICE} openpgp {KEYS['ed25519'][:39]}"])
rc, out, err = runner("validate", signers=bad_line, keys=ALL, ref=signed)
check(rc != 0 and f"{bad_line}:2:" in err and "40-hex-digit fingerprint" in err,
      "a short fingerprint is refused naming file:line", err)
secret = os.path.join(tmp, "secret.asc")
with open(secret, "w") as f:
    f.write(gpg("--armor", "--export-secret-keys", KEYS["ed25519"])[1])
rc, out, err = runner("validate", signers=ALLOWED, keys=secret, ref=signed)
check(rc != 0 and "secret key" in err, "a keys file with a secret key is refused", err)
p = subprocess.run([RUNNER, "validate", "--repo", repo, "--ref", signed, "--allowed-signers", ALLOWED],
                   capture_output=True, text=True, env=ENV, timeout=60)
check(p.returncode != 0 and "--openpgp-keys" in p.stderr, "openpgp lines without --openpgp-keys: an error", p.stderr)
p = subprocess.run([RUNNER, "validate", "--repo", repo, "--ref", signed, "--allowed-signers", ALLOWED],
                   capture_output=True, text=True, env={**ENV, "OTA_RUNNER_OPENPGP_KEYS": ALL}, timeout=60)
check(p.returncode == 0, "OTA_RUNNER_OPENPGP_KEYS gives the keys file", p.stderr)

rc, out, err = runner("plan", "--require-author-signatures", signers=ALLOWED, keys=ALL, ref=signed)
check(rc == 1 and "--require-author-signatures needs --verify-commits range" in err,
      "--require-author-signatures alone is a usage error, not a check silently skipped", err)

# ---- signed tags
git("checkout", "-q", "-B", "main", signed)
rc, out, err = git("tag", "-s", "-m", "release", "v1", key=KEYS["rsa3072"])
check(rc == 0, "fixture: git tag -s", err)
agree("v1", "a signed tag", ALLOWED, ALL, tag=True)
git("tag", "-a", "-m", "not signed", "v0")
agree("v0", "an unsigned tag over a signed commit", ALLOWED, ALL, want=False, tag=True, reason="is not signed")

# ---- a merge by the platform's key
with Emulator("--tick", "0.2") as emu:
    state = os.path.join(tmp, "state.json")
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
           "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": emu.url, "AWS_EC2_METADATA_DISABLED": "true",
           "OTA_RUNNER_STATE": state, "NO_COLOR": "1"}
    rc, out, err = runner("apply", signers=ALLOWED, keys=ALL, env_extra=env)
    check(rc == 0, "apply at a signed commit", out + err)
    applied = signed
    git("checkout", "-q", "-b", "feature")
    author = commit(None, "the author's change, not signed")
    git("checkout", "-q", "main")
    rc, out, err = git("merge", "--no-ff", "-S", "-m", "Merge pull request #7 from feature", "feature",
                       key=KEYS["web-flow"], who="noreply@github.com", name="GitHub")
    merge = git("rev-parse", "HEAD")[1].strip()
    good, said = oracle(merge, ALL)
    check(rc == 0 and good, "fixture: the platform's merge commit, signed by its key", out + err + said)
    rc, out, err = runner("plan", "--verify-commits", "range", signers=ALLOWED, keys=ALL, env_extra=env)
    check(rc in (0, 2) and f"signed by noreply@github.com, OpenPGP RSA {KEYS['web-flow']}" in out,
          "range mode: a merge by a listed platform key is trusted", out + err)
    before = len(emu.log())
    rc, out, err = runner("apply", "--verify-commits", "range", "--require-author-signatures", "--allow-cancel",
                          signers=ALLOWED, keys=ALL, env_extra=env)
    check(rc == 1 and f"{author[:12]}, brought in by merge {merge[:12]}, changes manifests since {applied[:12]}" in err
          and "is not signed" in err and len(emu.log()) == before,
          "--require-author-signatures: the unsigned commit the merge brings in is refused, no call made", out + err)
    # the author signs: the same merge is then trusted with the stricter option too
    git("checkout", "-q", "-B", "feature2", applied)
    commit(KEYS["ed25519"], "the author's change, signed")
    git("checkout", "-q", "main")
    git("reset", "-q", "--hard", applied)
    git("merge", "--no-ff", "-S", "-m", "Merge pull request #8", "feature2", key=KEYS["web-flow"],
        who="noreply@github.com", name="GitHub")
    rc, out, err = runner("apply", "--verify-commits", "range", "--require-author-signatures", "--allow-cancel",
                          signers=ALLOWED, keys=ALL, env_extra=env)
    check(rc == 0 and "signed by noreply@github.com" in out,
          "--require-author-signatures: a merge whose brought-in commits are signed is applied", out + err)

for home in [HOME] + [os.path.join(VERIFY, d) for d in os.listdir(VERIFY)]:
    sh("gpgconf", "--kill", "gpg-agent", env={**ENV, "GNUPGHOME": home})
shutil.rmtree(tmp, ignore_errors=True)
finish()
