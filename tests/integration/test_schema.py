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
import re
import sys

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import SRC, check, finish  # noqa: E402

SHARED = os.environ.get("OTR_SHARED_DIR") or os.path.join(SRC, "..", "shared")


class Yaml12Numbers(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where 1e1 is a string; editors' language servers
    (and ota-runner, for a number field) read YAML 1.2's numbers."""


Yaml12Numbers.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"),
    list("-+0123456789."))


def docs(path):
    with open(path, encoding="utf-8-sig") as f:
        return [d for d in yaml.load_all(f, Loader=Yaml12Numbers) if d is not None]


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
    spec = schema["$defs"]["OtaTaskSpec"]
    members = set(req["members"]) - {"ClientToken"}
    check(set(spec["properties"]) - {"TaskConfigurationRef"} == members,
          "OtaTask: spec fields are CreateOtaTask's without ClientToken (and the reference)")
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
            # Tags: the model's maximum less the two ota-runner adds (kinds/tags.h)
            reserved = 2 if name == "Tags" else 0
            check(prop.get("maxProperties") == shape.get("max") - reserved, f"{name}: max entries")
    window = shapes["ScheduleMaintenanceWindow"]["members"]["DurationInMinutes"]["shape"]
    props = spec["properties"]["OtaSchedulingConfig"]["properties"]["MaintenanceWindows"]["items"]["properties"]
    check(props["DurationInMinutes"]["minimum"] == shapes[window]["min"] and
          props["DurationInMinutes"]["maximum"] == shapes[window]["max"], "DurationInMinutes range")

    def same_as_model(prop, shape_name, where):
        """The schema's property matches the model's shape, all the way down."""
        shape = shapes[shape_name]
        t = shape["type"]
        if "enum" in shape:
            check(prop.get("enum") == shape["enum"], f"{where}: enum matches the model")
        if t == "string":
            check(prop.get("minLength") == shape.get("min") and prop.get("maxLength") == shape.get("max"),
                  f"{where}: length matches the model")
        elif t in ("integer", "long", "double"):
            check(prop.get("type") == ("number" if t == "double" else "integer"), f"{where}: type {t}")
            # a Smithy integer is 32 bits: without a max of its own, that is its max
            top = shape.get("max", 2147483647 if t == "integer" else None)
            check(prop.get("minimum") == shape.get("min") and prop.get("maximum") == top,
                  f"{where}: range matches the model ({shape.get('min')}..{top})")
        elif t == "list":
            same_as_model(prop["items"], shape["member"]["shape"], where + "[]")
        elif t == "structure":
            check(set(prop["properties"]) == set(shape["members"]) - {"ClientToken"},
                  f"{where}: members match the model")
            for k, m in shape["members"].items():
                if k != "ClientToken":
                    same_as_model(prop["properties"][k], m["shape"], f"{where}.{k}")

    same_as_model(schema["$defs"]["OtaTaskConfigurationSpec"], "CreateOtaTaskConfigurationRequest",
                  "OtaTaskConfiguration.spec")
    ok = {"apiVersion": "ota-runner/v1", "kind": "OtaTask", "metadata": {"name": "t"},
          "spec": {"S3Url": "s3://x", "OtaType": "ONE_TIME", "TaskConfigurationRef": "c", "TaskConfigurationId": "a"}}
    check(list(validator.iter_errors(ok)), "a reference beside an id is refused by the schema")
    wrong_kind = {"apiVersion": "ota-runner/v1", "kind": "OtaTaskConfiguration", "metadata": {"name": "c"},
                  "spec": {"S3Url": "s3://x", "OtaType": "ONE_TIME"}}
    check(list(validator.iter_errors(wrong_kind)), "a task's spec under kind OtaTaskConfiguration is refused")
else:
    print(f"skipping the model comparison: {model_path} is absent", file=sys.stderr)

finish()
