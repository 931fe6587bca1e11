#!/usr/bin/env python3
"""An independent implementation of ota-runner's ClientToken (DESIGN section 5).

Reads manifests with PyYAML (not libyaml's event API as the runner does) and
computes, from the documented preimage only:

    canonical   = JSON of spec, keys sorted, no whitespace, minimal escaping
    ClientToken = base64url_nopad(SHA-256("ota-runner/v1\\0" name "\\0" revision "\\0" canonical))

Usage: tokens.py FILE... -> a JSON array like `ota-runner tokens --output json`
(name, clientToken, specDigest), in the order the documents appear.
"""
import base64
import hashlib
import json
import sys

import yaml


def canonical(spec):
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def token(name, revision, spec):
    pre = b"ota-runner/v1\0" + name.encode() + b"\0" + str(revision).encode() + b"\0"
    pre += canonical(spec).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(pre).digest()).rstrip(b"=").decode()


def digest(spec):
    return "sha256:" + hashlib.sha256(canonical(spec).encode()).hexdigest()


def main(paths):
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc is None:
                    continue
                meta = doc["metadata"]
                rev = meta.get("revision", 1)
                out.append({"name": meta["name"], "clientToken": token(meta["name"], rev, doc["spec"]),
                            "specDigest": digest(doc["spec"])})
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
