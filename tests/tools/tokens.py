#!/usr/bin/env python3
"""An independent implementation of ota-runner's ClientToken (docs/DESIGN.md section 5).

Reads manifests with PyYAML (not libyaml's event API as the runner does) and
computes, from the documented preimage only:

    canonical   = JSON of spec, keys sorted, no whitespace, minimal escaping,
                  numbers as RFC 8785 writes them (ECMAScript's shortest form)
    ClientToken = base64url_nopad(SHA-256("ota-runner/v1\\0" name "\\0" revision "\\0" canonical))

A reference to another manifest (a task's TaskConfigurationRef, a rollout's
task.TaskConfigurationRef) is replaced
in the canonical input by the ClientToken of the manifest it names. Fields the
service model types as double are numbers whatever YAML 1.1 made of them
(PyYAML reads 1e1 as a string).

A rollout's waves are each sent with a token of their own, over NAME/WAVE and
the body of the wave's task: the rollout's task (its reference replaced) with
the wave's Target and OtaTargetQueryString.

Usage: tokens.py FILE... -> a JSON array like `ota-runner tokens --output json`
(name, kind, file, clientToken, specDigest, and a rollout's calls), in the
order the documents appear.
"""
import base64
import hashlib
import json
import os
import sys

import yaml

MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "emulator", "model.json")
SPEC_SHAPES = {"OtaTask": "CreateOtaTaskRequest", "OtaTaskConfiguration": "CreateOtaTaskConfigurationRequest",
               "OtaRollout": None}
# each reference by its path in the spec
REFS = {"OtaTask": {("TaskConfigurationRef",): "OtaTaskConfiguration"},
        "OtaRollout": {("task", "TaskConfigurationRef"): "OtaTaskConfiguration"}}


def spec_numbers(kind, spec, shapes):
    """The spec with the model's doubles as floats; a rollout's task is a task's."""
    if kind == "OtaRollout":
        return {**spec, "task": doubles_as_numbers(spec["task"], "CreateOtaTaskRequest", shapes)}
    return doubles_as_numbers(spec, SPEC_SHAPES[kind], shapes)


def replaced(spec, path, tokens, target):
    """spec with the reference at path replaced by the token of what it names."""
    key = path[0]
    if key not in spec:
        return spec
    if len(path) > 1:
        return {**spec, key: replaced(spec[key], path[1:], tokens, target)}
    return {**spec, key: tokens[(target, spec[key])]}


def es_number(x):
    """ECMAScript's Number::toString, as RFC 8785 section 3.2.2.3 asks."""
    if isinstance(x, int):
        return str(x)
    if x == 0:
        return "0"
    if x < 0:
        return "-" + es_number(-x)
    mantissa, _, exp = repr(x).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    n = len(whole) - (len(whole + frac) - len(digits)) + int(exp or 0)  # x = 0.DIGITS * 10^n
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    return digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))


def canonical(v):
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(canonical(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return es_number(v)
    return json.dumps(v, ensure_ascii=False)


def doubles_as_numbers(value, shape, shapes):
    """The value with every field of a double shape made a float."""
    s = shapes[shape]
    if s["type"] == "double":
        return float(value)
    if s["type"] == "structure" and isinstance(value, dict):
        return {k: doubles_as_numbers(v, s["members"][k]["shape"], shapes) if k in s["members"] else v
                for k, v in value.items()}
    if s["type"] == "list" and isinstance(value, list):
        return [doubles_as_numbers(x, s["member"]["shape"], shapes) for x in value]
    return value


def token(name, revision, text):
    pre = b"ota-runner/v1\0" + name.encode() + b"\0" + str(revision).encode() + b"\0" + text.encode()
    return base64.urlsafe_b64encode(hashlib.sha256(pre).digest()).rstrip(b"=").decode()


def wave_tokens(meta, spec):
    """A rollout's waves: each the token of its task's body (the rollout's task,
    its reference replaced, with the wave's targets) under NAME/WAVE."""
    calls = []
    for wave in spec["waves"]:
        body = {**spec["task"], **{k: wave[k] for k in ("Target", "OtaTargetQueryString") if k in wave}}
        calls.append({"name": wave["name"],
                      "clientToken": token(f"{meta['name']}/{wave['name']}", meta.get("revision", 1),
                                           canonical(body))})
    return calls


def main(paths):
    shapes = json.load(open(MODEL))["shapes"]
    docs, files = [], []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for d in yaml.safe_load_all(f):
                if d is not None:
                    docs.append(d)
                    files.append(path)
    tokens = {}
    out = []
    # the kinds others refer to first: their tokens go into the others'
    for i, d in sorted(enumerate(docs), key=lambda x: x[1]["kind"] in REFS):
        kind, meta = d["kind"], d["metadata"]
        spec = spec_numbers(kind, d["spec"], shapes)
        for path, target in REFS.get(kind, {}).items():
            spec = replaced(spec, path, tokens, target)
        text = canonical(spec)
        tok = token(meta["name"], meta.get("revision", 1), text)
        tokens[(kind, meta["name"])] = tok
        row = {"name": meta["name"], "kind": kind, "file": files[i], "clientToken": tok,
               "specDigest": "sha256:" + hashlib.sha256(text.encode()).hexdigest()}
        if kind == "OtaRollout":
            row["calls"] = wave_tokens(meta, spec)
        out.append((i, row))
    json.dump([r for _, r in sorted(out, key=lambda x: x[0])], sys.stdout, indent=2, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
