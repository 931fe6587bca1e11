#!/usr/bin/env python3
"""The JSON Schema for editors accepts what `ota-runner validate` accepts.

- every sample manifest and every token-style manifest is valid under the schema;
- every case of the bad-input corpus is rejected by it, except those marked
  `[schema: skip]` (duplicate keys, cross-field rules, YAML-level errors);
- the schema's limits are the service model's (shared/api), field by field.
"""
import glob
import json
import os
import sys

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import SRC, check, finish  # noqa: E402

SHARED = os.environ.get("OTR_SHARED_DIR") or os.path.join(SRC, "..", "shared")


def docs(path):
    with open(path, encoding="utf-8-sig") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


schema = json.load(open(os.path.join(SRC, "manifests/schema/ota-runner-v1.schema.json")))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)

good = sorted(glob.glob(os.path.join(SRC, "manifests/**/*.y*ml"), recursive=True))
good += sorted(glob.glob(os.path.join(SRC, "tests/data/tokens/**/*.yaml"), recursive=True))
check(len(good) >= 10, "found the good manifests")
for path in good:
    for d in docs(path):
        errors = [e.message for e in validator.iter_errors(d)]
        check(not errors, f"{path}: schema rejects a valid manifest: {errors}")

bad = sorted(glob.glob(os.path.join(SRC, "tests/data/bad/*.yaml")))
checked = 0
for path in bad:
    header = open(path, encoding="utf-8").readline()
    if "[schema: skip]" in header:
        continue
    checked += 1
    try:
        ds = docs(path)
    except yaml.YAMLError as e:
        check(False, f"{path}: not YAML ({e}); mark it [schema: skip]")
        continue
    rejected = not ds or any(list(validator.iter_errors(d)) for d in ds)
    check(rejected, f"{path}: the schema accepts a manifest ota-runner rejects")
check(checked >= 25, f"at least 25 bad cases checked against the schema, got {checked}")

# The limits come from the service model.
model_path = os.path.join(SHARED, "api/iot-managed-integrations-ota.json")
if os.path.exists(model_path):
    model = json.load(open(model_path))
    shapes = model["shapes"]
    req = shapes["CreateOtaTaskRequest"]
    spec = schema["properties"]["spec"]
    members = set(req["members"]) - {"ClientToken"}
    check(set(spec["properties"]) == members, "spec fields are CreateOtaTask's without ClientToken")
    check(set(spec["required"]) == set(req["required"]), "required fields match the model")
    for name, m in req["members"].items():
        if name == "ClientToken":
            continue
        shape = shapes[m["shape"]]
        prop = spec["properties"][name]
        if "enum" in shape:
            check(prop["enum"] == shape["enum"], f"{name}: enum matches the model")
        if shape["type"] == "string":
            if "min" in shape:
                check(prop.get("minLength") == shape["min"], f"{name}: minLength")
            if "max" in shape:
                check(prop.get("maxLength") == shape["max"], f"{name}: maxLength")
        if shape["type"] == "map":
            check(prop.get("minProperties") == shape.get("min"), f"{name}: min entries")
            check(prop.get("maxProperties") == shape.get("max"), f"{name}: max entries")
    window = shapes["ScheduleMaintenanceWindow"]["members"]["DurationInMinutes"]["shape"]
    props = spec["properties"]["OtaSchedulingConfig"]["properties"]["MaintenanceWindows"]["items"]["properties"]
    check(props["DurationInMinutes"]["minimum"] == shapes[window]["min"] and
          props["DurationInMinutes"]["maximum"] == shapes[window]["max"], "DurationInMinutes range")
else:
    print(f"skipping the model comparison: {model_path} is absent", file=sys.stderr)

finish()
