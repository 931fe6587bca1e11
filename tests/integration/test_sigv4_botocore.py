#!/usr/bin/env python3
"""ota-runner's SigV4 against botocore's SigV4Auth, byte for byte.

250 randomized requests (fixed seed): methods, paths with reserved, encoded and
non-ASCII characters and dot segments, repeated and empty query keys, header
values with runs of spaces and tabs, repeated headers, empty and binary bodies,
with and without a session token. Both sign with the same timestamp; the
canonical requests and the Authorization headers must be identical.

And 150 S3 requests, against botocore's S3SigV4Auth: object keys with
reserved, non-ASCII and dot-segment characters encoded once (never twice,
never normalized), virtual-hosted and path-style hosts, the conditional and
checksum headers the state backend sends, the payload hash header.
"""
import datetime
import json
import os
import random
import subprocess
import sys
from unittest import mock
from urllib.parse import quote

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

driver = os.environ.get("OTR_SIGV4_DRIVER")
if not driver:
    print("SKIP: OTR_SIGV4_DRIVER is not set (run under ctest)")
    sys.exit(77)

rng = random.Random(20261128)
NOW = datetime.datetime(2026, 11, 28, 12, 34, 56, tzinfo=datetime.timezone.utc)
HOSTS = ["api.iotmanagedintegrations.us-east-1.api.aws", "example.amazonaws.com"]
SEGMENT_CHARS = "abcXYZ019-._~!$&'()*+,;=:@ %é✓🚀"


def segment():
    return "".join(rng.choice(SEGMENT_CHARS) for _ in range(rng.randint(0, 8)))


def path():
    segs = []
    for _ in range(rng.randint(0, 5)):
        r = rng.random()
        if r < 0.1:
            segs.append(".")
        elif r < 0.2:
            segs.append("..")
        else:
            # what goes on the wire: some reserved characters left as they are
            segs.append(quote(segment(), safe=rng.choice(["", "!$&'()*+,;=:@", "=:@"])))
    p = "/" + "/".join(segs)
    if rng.random() < 0.3:
        p += "/"
    if rng.random() < 0.1:
        p = p.replace("/", "//", 1)
    return p


def query():
    pairs = []
    keys = ["MaxResults", "NextToken", "a", "A", "b", "key with space", "ключ", "", "x*y"]
    for _ in range(rng.randint(0, 6)):
        k = rng.choice(keys)
        v = rng.choice(["", "1", "100", "a b", "ünï", "+/=", "~-._", segment()])
        enc = quote(k, safe="-_.~") + ("=" + quote(v, safe="-_.~") if rng.random() < 0.9 else "")
        pairs.append(enc)
        if rng.random() < 0.2:
            pairs.append(enc)  # repeated
    return "&".join(pairs)


def header_value():
    words = [rng.choice(["a", "b", "value", "x=y", '"quoted"', "1,2"]) for _ in range(rng.randint(1, 4))]
    v = ""
    for w in words:
        v += rng.choice([" ", "  ", "\t", " \t  "]) + w
    return rng.choice(["", " ", "  "]) + v.strip() + rng.choice(["", " ", "\t"])


def headers():
    hs = [("Content-Type", "application/json")]
    for i in range(rng.randint(0, 4)):
        name = rng.choice(["X-Custom-A", "x-custom-b", "X-CUSTOM-C", "My-Header", "Accept"])
        hs.append((name, header_value()))
    if rng.random() < 0.3:
        hs.append(("User-Agent", "ota-runner/0.1.0"))
    return hs


cases = []
for i in range(250):
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
    body = b"" if rng.random() < 0.3 else bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
    if rng.random() < 0.3:
        body = json.dumps({"OtaType": "ONE_TIME", "S3Url": "s3://b/k"}).encode()
    token = None if rng.random() < 0.5 else "FwoGZXIvYXdzE" + "".join(rng.choice("abcXYZ+/=") for _ in range(40))
    cases.append({
        "method": method, "host": rng.choice(HOSTS), "path": path(), "query": query(),
        "headers": headers(), "body": body, "token": token,
        "region": rng.choice(["us-east-1", "eu-west-1"]),
    })

S3_HOSTS = ["ota-state.s3.eu-west-1.amazonaws.com", "127.0.0.1:5000", "s3.us-east-1.amazonaws.com"]
for i in range(150):
    host = rng.choice(S3_HOSTS)
    key = "/".join(segment() or "x" for _ in range(rng.randint(1, 4))) + rng.choice(["", ".lock", ".journal/000001"])
    if rng.random() < 0.2:
        key = "a/./b/../c//" + key
    p = "/" + quote(key, safe="/~")
    if not host.startswith("ota-state."):
        p = "/ota-state" + p
    hs = []
    for name, value in (("If-Match", '"0f343b0931126a20f133d67c2b018a3b"'), ("If-None-Match", "*"),
                        ("x-amz-checksum-sha256", "LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564="),
                        ("Content-Type", "application/json"), ("x-amz-server-side-encryption", "aws:kms")):
        if rng.random() < 0.4:
            hs.append((name, value))
    method = rng.choice(["GET", "PUT", "DELETE", "HEAD"])
    body = json.dumps({"serial": i}).encode() if method == "PUT" else b""
    cases.append({
        "method": method, "host": host, "path": p,
        "query": rng.choice(["", "list-type=2&prefix=" + quote(key, safe="-_.~"), "x-id=PutObject"]),
        "headers": hs, "body": body, "token": None if rng.random() < 0.5 else "FwoGZXIvYXdzE+/=",
        "region": rng.choice(["us-east-1", "eu-west-1"]), "service": "s3",
    })

lines = []
for c in cases:
    hs = [["Host", c["host"]]] + [list(h) for h in c["headers"]]
    lines.append(json.dumps({
        "method": c["method"], "path": c["path"], "query": c["query"], "headers": hs,
        "body_hex": c["body"].hex(), "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "session_token": c["token"], "time": int(NOW.timestamp()), "region": c["region"],
        "service": c.get("service", "iotmanagedintegrations")}))
out = subprocess.run([driver], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
ours = [json.loads(l) for l in out.stdout.splitlines()]
assert len(ours) == len(cases), (len(ours), len(cases))

passed = failed = 0
for i, (c, o) in enumerate(zip(cases, ours)):
    url = f"https://{c['host']}{c['path']}" + (f"?{c['query']}" if c["query"] else "")
    req = AWSRequest(method=c["method"], url=url, data=c["body"])
    for name, value in c["headers"]:
        req.headers[name] = value  # HTTPHeaders: a second set of a name adds a value
    signer = S3SigV4Auth if c.get("service") == "s3" else SigV4Auth
    auth = signer(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", c["token"]),
                  c.get("service", "iotmanagedintegrations"), c["region"])
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        req.context["timestamp"] = NOW.strftime("%Y%m%dT%H%M%SZ")
        auth._modify_request_before_signing(req)
        canonical = auth.canonical_request(req)
        auth.add_auth(req)
    if canonical != o["canonical_request"]:
        failed += 1
        print(f"FAIL case {i}: canonical requests differ\n--- botocore\n{canonical}\n--- ota-runner\n{o['canonical_request']}", file=sys.stderr)
    elif req.headers["Authorization"] != o["authorization"]:
        failed += 1
        print(f"FAIL case {i}: Authorization differs\n{req.headers['Authorization']}\n{o['authorization']}", file=sys.stderr)
    else:
        passed += 1

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
