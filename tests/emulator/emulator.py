#!/usr/bin/env python3
"""A local stand-in for the OTA operations of AWS IoT Managed integrations.

Python 3 standard library only. It serves the service model's paths, methods,
status codes and error shapes (model.json, a copy of botocore's
iot-managed-integrations model), verifies SigV4, validates every input against
the model, honours ClientToken, paginates, advances task status over time,
keeps its state in a file, and injects faults on request. ota-runner's tests,
demo and benchmarks run against it; the AWS CLI works against it too:

    aws iot-managed-integrations list-ota-tasks --endpoint-url http://127.0.0.1:PORT

Control endpoint (unsigned, under a path the service does not use):
    GET  /_emulator/health        200 "ok"
    GET  /_emulator/log           every request: op, status, ClientToken, fault
    GET  /_emulator/tasks         every task, deleted ones included
    GET  /_emulator/configurations  every task configuration
    POST /_emulator/faults        {"latency_ms", "throttle_rate", "error_rate",
                                   "drop_rate", "seed", "conflict_in_use", "rate_limit",
                                   "limit_rate" (DeleteOtaTask: 410 LimitExceededException),
                                   "retry_after_ms" (a throttle's x-amz-retry-after),
                                   "normalize" (GetOtaTask writes times with milliseconds,
                                   Target in another order, and leaves Tags out, as a
                                   real service may),
                                   "error_forms": ["header", "header-namespaced", "__type",
                                                   "code", "Code"] (taken in turn),
                                   "lifecycle" (as --service-lifecycle),
                                   "deletion_seconds" (as --deletion-seconds)};
                                  rates are 0..1, but rate_limit: requests/s per operation
    POST /_emulator/outcomes      how the things of tasks created from now on end:
                                  {"share": 0..1 (the share that succeed; the rest fail),
                                   "never": true (no thing ever answers),
                                   "queries": {QUERY: {"share"|"never"}},  per target query
                                   "things": {TARGET: "SUCCEEDED" | "FAILED" | "TIMED_OUT" |
                                              "REJECTED" | "NEVER"}}
                                  (--outcomes takes the same JSON)
    POST /_emulator/forget-tokens every ClientToken (as when the idempotency window ends)
    GET  /_emulator/events        the ground truth of what changed: every create, update and
                                  delete that took effect, with its time, who sent it (its
                                  User-Agent), the task's tags and body, the status of a task
                                  when it was deleted, at a create the counts of every live
                                  task tagged with its ota-runner:address (a rollout's other
                                  waves), and the tasks that used a configuration
                                  when it was deleted
    POST /_emulator/clock         {"advance": S}: the service's time (the Date header, task
                                  progress, CreatedAt, token windows) moves S seconds ahead;
                                  with --virtual-clock it moves only so
    POST /_emulator/reset         forget every task, configuration and log entry

Things finish one per --tick, in target order (a task with a query string has
--query-things things); each ends as its outcome says (by default: succeeded),
and TaskProcessingDetails and ListOtaTaskExecutions count them as they do.
"""
import argparse
import base64
import datetime
import email.utils
import hashlib
import hmac
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

HERE = os.path.dirname(os.path.abspath(__file__))
ACCOUNT = "123456789012"
SERVICE = "iotmanagedintegrations"
MUTATING = {"CreateOtaTask", "UpdateOtaTask", "DeleteOtaTask", "CreateOtaTaskConfiguration",
            "DeleteOtaTaskConfiguration", "TagResource", "UntagResource"}
IMPLEMENTED = MUTATING | {"GetOtaTask", "ListOtaTasks", "ListOtaTaskExecutions",
                          "GetOtaTaskConfiguration", "ListOtaTaskConfigurations",
                          "TagResource", "UntagResource", "ListTagsForResource"}
MAX_BODY = 1 << 20


class Query(dict):
    """A query string: the last value of a name, and getlist for all of them."""

    def add(self, k, v):
        self[k] = v
        self.setdefault("\0" + k, []).append(v)

    def getlist(self, k):
        return self.get("\0" + k, [])


class ServiceError(Exception):
    def __init__(self, status, code, message, retry_after_ms=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after_ms = retry_after_ms


# ---- the model ---------------------------------------------------------------

def join(where, name):
    return f"{where}.{name}" if where else name


class Model:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
        self.shapes = m["shapes"]
        self.routes = []
        for name, op in m["operations"].items():
            if name not in IMPLEMENTED:
                continue
            uri = op["http"]["requestUri"]
            rx = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", uri) + "$"
            self.routes.append((op["http"]["method"], re.compile(rx), name, op))

    def route(self, method, path):
        for m, rx, name, op in self.routes:
            match = rx.match(path)
            if match and m == method:
                return name, op, {k: unquote(v) for k, v in match.groupdict().items()}
        return None, None, None

    def validate(self, shape_name, value, where, errors):
        """Appends "Value ... at 'x' failed to satisfy constraint: ..." messages."""
        shape = self.shapes[shape_name]
        t = shape["type"]
        ok_types = {"string": str, "integer": int, "long": int, "boolean": bool,
                    "structure": dict, "map": dict, "list": list, "double": (int, float),
                    "float": (int, float)}
        if t in ok_types and (not isinstance(value, ok_types[t]) or
                              (t in ("integer", "long", "double", "float") and isinstance(value, bool))):
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must be of type {t}")
            return
        if t == "timestamp" and not isinstance(value, (int, float, str)):
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must be a timestamp")
            return
        if t == "string":
            if "enum" in shape and value not in shape["enum"]:
                errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must "
                              f"satisfy enum value set: [{', '.join(shape['enum'])}]")
            if "min" in shape and len(value) < shape["min"]:
                errors.append(f"Value at '{where}' failed to satisfy constraint: Member must have "
                              f"length greater than or equal to {shape['min']}")
            if "max" in shape and len(value) > shape["max"]:
                errors.append(f"Value at '{where}' failed to satisfy constraint: Member must have "
                              f"length less than or equal to {shape['max']}")
            # a Smithy pattern is not anchored: a match anywhere satisfies it
            if "pattern" in shape and not re.search(shape["pattern"], value):
                errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must "
                              f"satisfy regular expression pattern: {shape['pattern']}")
        elif t in ("integer", "long", "double", "float"):
            bits = {"integer": 31, "long": 63}.get(t)
            if bits and not -2 ** bits <= value < 2 ** bits:  # Smithy's integer and long
                errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must "
                              f"be of type {t}")
                return
            if "min" in shape and value < shape["min"]:
                errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must "
                              f"have value greater than or equal to {shape['min']}")
            if "max" in shape and value > shape["max"]:
                errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must "
                              f"have value less than or equal to {shape['max']}")
        elif t == "list":
            for i, item in enumerate(value):
                self.validate(shape["member"]["shape"], item, f"{where}.{i + 1}.member", errors)
            self._count(shape, len(value), where, errors)
        elif t == "map":
            self._count(shape, len(value), where, errors)
            for k, v in value.items():
                self.validate(shape["key"]["shape"], k, f"{where}.key", errors)
                self.validate(shape["value"]["shape"], v, f"{where}.{k}", errors)
        elif t == "structure":
            for req in shape.get("required", []):
                if req not in value:
                    errors.append(f"Value null at '{join(where, req)}' failed to satisfy "
                                  f"constraint: Member must not be null")
            for k, v in value.items():
                member = shape["members"].get(k)
                if member is None:
                    errors.append(f"Unknown field '{join(where, k)}'")
                elif v is not None:
                    self.validate(member["shape"], v, join(where, k), errors)

    @staticmethod
    def _count(shape, n, where, errors):
        if "min" in shape and n < shape["min"]:
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must have "
                          f"length greater than or equal to {shape['min']}")
        if "max" in shape and n > shape["max"]:
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must have "
                          f"length less than or equal to {shape['max']}")

    def parse_input(self, op, labels, query, body):
        """The operation's input as a dict, typed by the model, and validated."""
        shape = self.shapes[op["input"]["shape"]] if "input" in op else {"members": {}}
        data = {}
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                raise ServiceError(400, "SerializationException", "Request body is not valid JSON")
            if not isinstance(parsed, dict):
                raise ServiceError(400, "SerializationException", "Request body must be a JSON object")
            for k, v in parsed.items():
                m = shape["members"].get(k)
                if m is not None and m.get("location"):
                    continue  # located members never come from the body
                data[k] = v
        for name, m in shape["members"].items():
            loc, wire = m.get("location"), m.get("locationName", name)
            if loc == "uri" and wire in labels:
                data[name] = labels[wire]
            elif loc == "querystring" and wire in query:
                raw = query[wire]
                if self.shapes[m["shape"]]["type"] == "list":  # repeated: ?k=a&k=b
                    raw = query.getlist(wire)
                elif self.shapes[m["shape"]]["type"] in ("integer", "long"):
                    try:
                        raw = int(raw)
                    except ValueError:
                        raise ServiceError(400, "ValidationException",
                                           f"Value '{raw}' at '{name}' failed to satisfy constraint: "
                                           f"Member must be of type integer")
                data[name] = raw
        errors = []
        if "input" in op:
            self.validate(op["input"]["shape"], data, "", errors)
        # a member the model does not know is ignored, as a service's
        # deserializer ignores it (the log names it: the fidelity tests
        # check that ota-runner sends none)
        unknown = [e[len("Unknown field '"):-1] for e in errors if e.startswith("Unknown field '")]
        errors = [e for e in errors if not e.startswith("Unknown field '")]
        for k in unknown:
            data.pop(k, None)
        if errors:
            n = len(errors)
            raise ServiceError(400, "ValidationException",
                               f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors))
        return data, unknown


# ---- SigV4 verification (as botocore signs: see ota-runner's runner/aws/sigv4.c) ----

def remove_dot_segments(path):
    out = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
        else:
            out.append(seg)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return (first + "/".join(out) + last) or "/"


def canonical_request(method, raw_path, raw_query, headers, signed, payload_hash):
    pairs = sorted(p.partition("=")[::2] for p in raw_query.split("&")) if raw_query else []
    cq = "&".join(f"{k}={v}" for k, v in pairs)
    lines = []
    for name in signed:
        values = headers.get_all(name) or []
        lines.append(name + ":" + ",".join(" ".join(v.split()) for v in values))
    return "\n".join([method, quote(remove_dot_segments(raw_path), safe="/~"), cq,
                      "\n".join(lines) + "\n", ";".join(signed), payload_hash])


def signing_key(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


AUTH_RX = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?"
                     r"SignedHeaders=([a-z0-9;\-]+), ?Signature=([0-9a-f]{64})$")


def verify_sigv4(cfg, method, raw_path, raw_query, headers, body):
    """Returns the access key id; raises ServiceError(403) as AWS would."""
    auth = headers.get("Authorization")
    if not auth:
        raise ServiceError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    m = AUTH_RX.match(auth.strip())
    if not m:
        raise ServiceError(403, "IncompleteSignatureException",
                           "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'")
    akid, date, region, service, signed, sig = m.groups()
    principal = getattr(cfg, "principals", {}).get(akid)
    if akid != cfg.access_key_id and not principal:
        raise ServiceError(403, "UnrecognizedClientException",
                           "The security token included in the request is invalid.")
    secret = principal.secret if principal else cfg.secret_access_key
    amz_date = headers.get("X-Amz-Date", "")
    try:
        t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise ServiceError(403, "IncompleteSignatureException", "X-Amz-Date is missing or malformed")
    now = datetime.datetime.now(datetime.timezone.utc)
    if abs((now - t).total_seconds()) > 300:
        raise ServiceError(403, "InvalidSignatureException",
                           f"Signature expired: {amz_date} is now earlier than "
                           f"{(now - datetime.timedelta(minutes=5)).strftime('%Y%m%dT%H%M%SZ')} "
                           f"({now.strftime('%Y%m%dT%H%M%SZ')} - 5 min.)")
    if region != cfg.region or service != SERVICE or date != amz_date[:8]:
        raise ServiceError(403, "InvalidSignatureException",
                           f"Credential should be scoped to a valid region and service "
                           f"({cfg.region}/{SERVICE}), not '{region}/{service}'.")
    names = signed.split(";")
    if "host" not in names:
        raise ServiceError(403, "InvalidSignatureException", "The Host header must be signed")
    payload = headers.get("X-Amz-Content-Sha256") or hashlib.sha256(body).hexdigest()
    cr = canonical_request(method, raw_path, raw_query, headers, names, payload)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, f"{date}/{region}/{service}/aws4_request",
                     hashlib.sha256(cr.encode()).hexdigest()])
    want = hmac.new(signing_key(secret, date, region, service), sts.encode(),
                    hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig):
        raise ServiceError(403, "InvalidSignatureException",
                           "The request signature we calculated does not match the signature you "
                           "provided. Check your AWS Secret Access Key and signing method.")
    return akid


# ---- who may call what (--principals) ------------------------------------------

# Creates that carry Tags are also authorised as TagResource (tag on create).
TAGGED_CREATES = ("CreateOtaTask", "CreateOtaTaskConfiguration")
# Operations whose model lists UnauthorizedException (401) and not AccessDeniedException.
UNAUTHORIZED_OPS = ("ListTagsForResource", "TagResource", "UntagResource")


class Principal:
    """An IAM user of the emulator: a key pair and identity-based policies
    (the statements whose actions are this service's are the ones judged)."""

    def __init__(self, name, d):
        self.name = name
        self.key_id = d["accessKeyId"]
        self.secret = d["secretAccessKey"]
        self.statements = []
        for path in d["policies"]:
            with open(path) as f:
                doc = json.load(f)
            st = doc["Statement"]
            self.statements += st if isinstance(st, list) else [st]
        for st in self.statements:
            if "NotAction" in st or "NotResource" in st or st.get("Effect") not in ("Allow", "Deny"):
                raise ValueError(f"principal {name}: a statement the emulator cannot judge: {st}")

    def arn(self):
        return f"arn:aws:iam::{ACCOUNT}:user/{self.name}"


def load_principals(path):
    """{key id: Principal} from a JSON file {NAME: {"accessKeyId", "secretAccessKey",
    "policies": [FILE, ...]}}, or {} without one."""
    if not path:
        return {}
    with open(path) as f:
        d = json.load(f)
    out = {}
    for name, p in d.items():
        out[p["accessKeyId"]] = Principal(name, p)
    return out


def iam_like(pattern, value, case=True):
    rx = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(rx, value, 0 if case else re.IGNORECASE) is not None


def iam_allows(statements, action, resource):
    """IAM's rule for identity policies: an explicit Deny wins, else an Allow
    is needed. A statement with a Condition is not judged here (none of this
    service's statements in the shipped policies has one): it allows nothing."""
    allowed = False
    for st in statements:
        actions = st.get("Action", [])
        resources = st.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if not any(iam_like(a, action, case=False) for a in actions):
            continue
        if not any(iam_like(r, resource) for r in resources):
            continue
        if st["Effect"] == "Deny":
            return False
        allowed = allowed or "Condition" not in st
    return allowed


def resource_of(cfg, op_name, labels):
    """The ARN a call acts on, as IAM judges it ("*" for lists and creates)."""
    ident = labels.get("Identifier")
    if labels.get("ResourceArn"):
        return labels["ResourceArn"]
    if ident and "Configuration" in op_name:
        return f"arn:aws:iotmanagedintegrations:{cfg.region}:{ACCOUNT}:ota-task-configuration/{ident}"
    if ident:
        return f"arn:aws:iotmanagedintegrations:{cfg.region}:{ACCOUNT}:ota-task/{ident}"
    return "*"


def authorize(cfg, akid, op_name, labels, body):
    """Raises the model's error for a call the caller's policies do not allow."""
    p = getattr(cfg, "principals", {}).get(akid)
    if not p:
        return
    needed = [(op_name, resource_of(cfg, op_name, labels))]
    if op_name in TAGGED_CREATES:
        try:
            tagged = bool(json.loads(body or b"{}").get("Tags"))
        except (ValueError, AttributeError):
            tagged = False
        if tagged:
            needed.append(("TagResource", "*"))
    for name, resource in needed:
        action = f"{SERVICE}:{name}"
        if iam_allows(p.statements, action, resource):
            continue
        message = (f"User: {p.arn()} is not authorized to perform: {action} on resource: {resource} "
                   f"because no identity-based policy allows the {action} action")
        if op_name in UNAUTHORIZED_OPS:
            raise ServiceError(401, "UnauthorizedException", message)
        raise ServiceError(403, "AccessDeniedException", message)


# ---- the service's state -----------------------------------------------------

TASK_FIELDS = ["Description", "S3Url", "OtaType", "Protocol", "OtaMechanism", "Target",
               "OtaTargetQueryString", "TaskConfigurationId", "OtaSchedulingConfig",
               "OtaTaskExecutionRetryConfig", "Tags"]


# ---- schedules: maintenance windows, rollout rates, EndTime ----------------------

CRON_NAMES = {name: i for i, name in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}
CRON_NAMES.update({name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)})
CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199)]


def cron_field(text, lo, hi):
    """The values one field of an AWS cron expression allows ('*', '?',
    lists, ranges, steps and names); ValueError for what it cannot read."""
    if text in ("*", "?"):
        return None
    allowed = set()
    for item in text.split(","):
        part, _, step = item.partition("/")
        if part == "*":
            a, b = lo, hi
        else:
            first, dash, last = part.partition("-")
            a = CRON_NAMES.get(first.upper()) or int(first)
            b = (CRON_NAMES.get(last.upper()) or int(last)) if dash else (hi if step else a)
        if not lo <= a <= hi or not lo <= b <= hi:
            raise ValueError(f"{item} is out of {lo}-{hi}")
        allowed.update(range(a, b + 1, int(step) if step else 1))
    return allowed


def parse_cron(expr):
    """cron(minutes hours day-of-month month day-of-week year), as
    EventBridge writes it (day-of-week 1-7 is SUN-SAT)."""
    m = re.fullmatch(r"cron\(\s*(.*?)\s*\)", expr or "")
    fields = m.group(1).split() if m else []
    if len(fields) != 6:
        raise ValueError("not a cron expression with six fields")
    return [cron_field(f, lo, hi) for f, (lo, hi) in zip(fields, CRON_RANGES)]


def cron_matches(fields, minute):
    """Does the minute (seconds since 1970 / 60) start a window?"""
    t = datetime.datetime.fromtimestamp(minute * 60, datetime.timezone.utc)
    values = [t.minute, t.hour, t.day, t.month, (t.weekday() + 1) % 7 + 1, t.year]
    return all(f is None or v in f for f, v in zip(fields, values))


def date_time(v):
    """A schedule's date-time in seconds (UTC when it names no zone), or None."""
    try:
        t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.timestamp()


class Windows:
    """A task's maintenance windows: things are notified only inside one."""

    LOOKAHEAD = 31 * 24 * 60  # minutes searched for the next window

    def __init__(self, windows):
        self.windows = [(parse_cron(w.get("StartTime")), int(w.get("DurationInMinutes") or 1)) for w in windows]
        self.until = (0.0, 0.0)

    def open_at(self, t):
        """Is a window open at t? (The last window found is kept: things are
        asked about in time order, most of them inside it.)"""
        if self.until[0] <= t < self.until[1]:
            return True
        minute = int(t // 60)
        for f, d in self.windows:
            for m in range(minute, minute - d, -1):
                if cron_matches(f, m):
                    self.until = (m * 60.0, (m + d) * 60.0)
                    return True
        return False

    def next_open(self, t):
        """t when a window is open then, else the start of the next one (None: none within a month)."""
        if not self.windows or self.open_at(t):
            return t
        minute = int(t // 60) + 1
        for m in range(minute, minute + self.LOOKAHEAD):
            if any(cron_matches(f, m) for f, _ in self.windows):
                return m * 60.0
        return None


class Rate:
    """The configuration's rollout rate: no more things notified in a minute
    (counted from the task's start) than MaximumPerMinute, or than an
    exponential rate that starts at BaseRatePerMinute and, from the minute
    after RateIncreaseCriteria's number of things were notified (or
    succeeded) since the last increase, is multiplied by IncrementFactor
    (and held under MaximumPerMinute when both are given)."""

    def __init__(self, rollout, start):
        exp = rollout.get("ExponentialRolloutRate") or {}
        self.cap = rollout.get("MaximumPerMinute")
        self.rate = self.next_rate = float(exp.get("BaseRatePerMinute") or self.cap or 0)
        self.factor = float(exp.get("IncrementFactor") or 1)
        crit = exp.get("RateIncreaseCriteria") or {}
        self.goals = (crit.get("numberOfNotifiedThings"), crit.get("numberOfSucceededThings"))
        self.start, self.minute, self.used = start, 0, 0
        self.notified = self.succeeded = 0

    def next_slot(self, t):
        """t, or the start of the next minute when this one is used up."""
        if not self.rate:
            return t
        minute = int((t - self.start) // 60)
        if minute != self.minute:
            self.minute, self.used, self.rate = minute, 0, self.next_rate
        limit = max(1, int(self.rate))
        if self.cap:
            limit = min(limit, self.cap)
        return t if self.used < limit else self.start + 60.0 * (minute + 1)

    def took(self, outcome):
        if not self.rate:
            return
        self.used += 1
        self.notified += 1
        self.succeeded += outcome == "SUCCEEDED"
        if (self.goals[0] and self.notified >= self.goals[0]) or (self.goals[1] and self.succeeded >= self.goals[1]):
            self.next_rate *= self.factor
            self.notified = self.succeeded = 0


class Clock:
    """The service's time, in its answers' Date header and every time it
    keeps: the real one moved forward by POST /_emulator/clock, or (with
    --virtual-clock) one that moves only when told to, so a test sees the
    same counts for as long as it looks. ota-runner judges soaks and
    deadlines by it, so moving it rehearses a week in a minute. The SigV4
    check keeps the real time (the signing clock is not the rehearsal's)."""

    def __init__(self):
        self.virtual = False
        self.at = time.time()
        self.ahead = 0.0

    def now(self):
        return self.at if self.virtual else time.time() + self.ahead

    def advance(self, seconds):
        self.at += seconds
        self.ahead += seconds
        return self.now()


CLOCK = Clock()
CALLER = threading.local()  # the User-Agent of the request being served


class Store:
    """Tasks, configurations and ClientTokens, kept in a JSON file."""

    def __init__(self, path, tick):
        self.path, self.tick = path, tick
        self.lock = threading.RLock()
        self.tasks, self.configs, self.tokens, self.log = {}, {}, {}, []
        self.events = []
        self.seq = 0
        self.conflict_in_use = False  # DeleteOtaTaskConfiguration: refused (400) while a task uses it
        self.normalize = False  # GetOtaTask answers as a real service may (see normalised)
        self.lifecycle = False  # --service-lifecycle: rates, windows, timeouts, EndTime; no update once ended
        self.deletion_seconds = 2.0  # --deletion-seconds: a deleted task's DELETION_IN_PROGRESS
        self.token_ttl = TOKEN_TTL  # --token-ttl: seconds a ClientToken is remembered (0: for ever)
        self.outcomes = {}  # how things of new tasks end (POST /_emulator/outcomes)
        self.query_things = 4
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
            self.tasks, self.configs, self.tokens = d["tasks"], d["configs"], d["tokens"]
            self.seq = d.get("seq", 0)

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"tasks": self.tasks, "configs": self.configs, "tokens": self.tokens,
                       "seq": self.seq}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def new_id(self, prefix):
        self.seq += 1
        return f"{prefix}{self.seq:06d}{uuid.uuid4().hex[:10]}"

    def event(self, op, rid, **more):
        """Notes a change that took effect (the ground truth of /_emulator/events)."""
        self.events.append({"seq": len(self.events) + 1, "time": CLOCK.now(), "real": time.time(), "op": op,
                            "id": rid, "ua": getattr(CALLER, "ua", None), **more})

    def live_counts(self, now, address):
        """The status and counts at now of every live task tagged with address
        (a rollout's waves share one); none for an untagged task. Only these:
        every live task's at every create made 1,000 creates quadratic."""
        out = {}
        if not address:
            return out
        for t in self.tasks.values():
            if not t.get("Deleted") and (t.get("Tags") or {}).get("ota-runner:address") == address:
                status, details, _, _ = self.progress(t, now)
                out[t["TaskId"]] = {"status": status, "details": details, "createdAt": t["CreatedAt"]}
        return out

    def targets_of(self, task):
        return task.get("Target") or [f"thing{i}" for i in range(self.query_things)]

    def outcomes_for(self, task):
        """How each target of a new task ends, frozen when it is created."""
        rules = self.outcomes
        query = task.get("OtaTargetQueryString")
        rule = rules.get("queries", {}).get(query, rules) if query else rules
        targets = self.targets_of(task)
        n = len(targets)
        succeed = n if "share" not in rule else round(float(rule["share"]) * n)
        out = []
        for i, target in enumerate(targets):
            if target in rules.get("things", {}):
                out.append(rules["things"][target])
            elif rule.get("never"):
                out.append("NEVER")
            else:
                out.append("SUCCEEDED" if i < succeed else "FAILED")
        return out

    def push_config(self, task):
        """The PushConfig of the configuration the task uses."""
        cfg = self.configs.get(task.get("TaskConfigurationId") or "") or {}
        return cfg.get("PushConfig") or {}

    def abort_criteria(self, task):
        """The CANCEL criteria of the configuration the task uses."""
        abort = (self.push_config(task).get("AbortConfig") or {}).get("AbortConfigCriteriaList") or []
        return [c for c in abort if c.get("Action") == "CANCEL"]

    @staticmethod
    def aborts(criteria, ended):
        """Does the list of outcomes that have ended meet a criterion?"""
        for c in criteria:
            kinds = {"ALL": ("FAILED", "REJECTED", "TIMED_OUT")}.get(c.get("FailureType"), (c.get("FailureType"),))
            bad = sum(1 for x in ended if x in kinds)
            if len(ended) >= c.get("MinNumberOfExecutedThings", 1) and \
                    100.0 * bad / len(ended) >= c.get("ThresholdPercentage", 100):
                return True
        return False

    def starts(self, task, outcomes, start):
        """When each target is notified (None: not before the EndTime): one
        tick after the one before; with --service-lifecycle also no faster
        than the configuration's rollout rate, only inside a maintenance
        window, and never at or past the EndTime."""
        n, tick = len(outcomes), self.tick
        if not self.lifecycle:
            return [start + tick * (i + 1) for i in range(n)]
        sched = task.get("OtaSchedulingConfig") or {}
        end = date_time(sched.get("EndTime"))
        windows = Windows(sched.get("MaintenanceWindows") or [])
        rate = Rate(self.push_config(task).get("RolloutConfig") or {}, start)
        out, t = [], start
        for i in range(n):
            t += tick
            while t is not None:
                slot = windows.next_open(rate.next_slot(t))
                if slot == t:
                    break
                t = slot
            if t is None or (end is not None and t >= end):
                return out + [None] * (n - len(out))
            out.append(t)
            rate.took(outcomes[i])
        return out

    def finishes(self, task, outcomes, starts):
        """When and how each target's execution ends (None: not yet known):
        a tick after it started; one that never answers times out after the
        configuration's InProgressTimeoutInMinutes (--service-lifecycle)."""
        timeout = (self.push_config(task).get("TimeoutConfig") or {}).get("InProgressTimeoutInMinutes")
        out = []
        for s, outcome in zip(starts, outcomes):
            if s is None:
                out.append(None)
            elif outcome == "NEVER":
                out.append((s + 60.0 * timeout, "TIMED_OUT") if timeout and self.lifecycle else None)
            else:
                out.append((s + self.tick, outcome))
        return out

    def aborted(self, task, finishes, now):
        """The targets whose end counted before the configuration's abort
        criteria were met (None: never met), in the order they ended."""
        criteria = self.abort_criteria(task)
        done, kept = [], set()
        order = sorted((f[0], i) for i, f in enumerate(finishes) if f and f[0] <= now)
        for _, i in order:
            done.append(finishes[i][1])
            kept.add(i)
            if self.aborts(criteria, done):
                return kept
        return None

    def timeline(self, task, now):
        """Status, counts, targets, each target's state and notification time
        at now: from the schedule's StartTime on (SCHEDULED before it), one
        target ends per tick; when the configuration's abort criteria are met
        the rest is CANCELED. With --service-lifecycle, the rollout rate,
        maintenance windows, in-progress timeout and EndTime (with its
        EndBehavior: STOP_ROLLOUT notifies no more things, CANCEL cancels
        those not started, FORCE_CANCEL those in progress too) hold too."""
        targets = self.targets_of(task)
        n = len(targets)
        outcomes = task.get("_outcomes") or ["SUCCEEDED"] * n
        start = max(task["CreatedAt"], schedule_start(task))
        starts = self.starts(task, outcomes, start)
        finishes = self.finishes(task, outcomes, starts)
        kept = self.aborted(task, finishes, now)
        sched = task.get("OtaSchedulingConfig") or {}
        end = date_time(sched.get("EndTime")) if self.lifecycle else None
        behaviour = sched.get("EndBehavior") or "STOP_ROLLOUT" if end is not None and now >= end else None
        states = []
        for i in range(n):
            s, f = starts[i], finishes[i]
            if kept is not None:
                states.append(f[1] if i in kept else "CANCELED")
            elif f and f[0] <= now:
                states.append(f[1])
            elif s is not None and s <= now:
                states.append("CANCELED" if behaviour == "FORCE_CANCEL" else "IN_PROGRESS")
            elif behaviour == "STOP_ROLLOUT":
                states.append("NOT_NOTIFIED")  # no execution is made for it
            else:
                states.append("CANCELED" if behaviour else "QUEUED")
        if now < start + self.tick:
            status = "SCHEDULED"
        elif kept is not None or behaviour in ("CANCEL", "FORCE_CANCEL"):
            status = "CANCELED"
        elif any(st in ("IN_PROGRESS", "QUEUED") for st in states) or \
                (task["OtaType"] == "CONTINUOUS" and not behaviour):
            status = "IN_PROGRESS"
        else:
            status = "COMPLETED"
        count = lambda st: sum(1 for x in states if x == st)
        details = {"NumberOfCanceledThings": count("CANCELED"), "NumberOfFailedThings": count("FAILED"),
                   "NumberOfInProgressThings": count("IN_PROGRESS"),
                   "numberOfQueuedThings": count("QUEUED"),
                   "numberOfRejectedThings": count("REJECTED"),
                   "numberOfRemovedThings": 0, "numberOfSucceededThings": count("SUCCEEDED"),
                   "numberOfTimedOutThings": count("TIMED_OUT"), "processingTargets": targets}
        return status, details, targets, states, starts, finishes

    def progress(self, task, now):
        """Status, counts, targets and each target's state at now (timeline)."""
        return self.timeline(task, now)[:4]


# ---- the operations ------------------------------------------------------------

MAX_PAGE = [1000]  # the model's largest MaxResults; --max-page lowers it


def page(items, data, default=100):
    start = 0
    token = data.get("NextToken")
    if token:
        try:
            start = int(base64.b64decode(token).decode())
        except ValueError:
            raise ServiceError(400, "ValidationException", "The pagination token is invalid")
    size = min(data.get("MaxResults") or default, MAX_PAGE[0])
    chunk = items[start:start + size]
    nxt = base64.b64encode(str(start + size).encode()).decode() if start + size < len(items) else None
    return chunk, nxt


def body_without_token(data):
    return {k: v for k, v in data.items() if k != "ClientToken"}


# How long a ClientToken is answered with its first resource. The model says
# only that a retry with the same token "will succeed without performing any
# further actions"; a day is longer than any window AWS documents for its
# idempotency tokens, so the tests err on the side of a token remembered.
TOKEN_TTL = 24 * 3600.0


def known_token(store, token):
    """What a ClientToken was first used for, or None: absent, or older than
    --token-ttl (the real service's idempotency window ends too)."""
    prev = store.tokens.get(token) if token else None
    if prev and store.token_ttl and CLOCK.now() - prev.get("at", 0) > store.token_ttl:
        return None
    return prev


def schedule_start(task):
    """The schedule's StartTime in seconds (UTC when it names no zone), or 0."""
    return date_time((task.get("OtaSchedulingConfig") or {}).get("StartTime")) or 0


DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?")


def check_times(data):
    """A schedule's StartTime and EndTime are date-times, its maintenance
    windows' StartTime cron expressions (the model types them as strings; a
    service that cannot read one refuses the request)."""
    sched = data.get("OtaSchedulingConfig") or {}
    for k in ("StartTime", "EndTime"):
        v = sched.get(k)
        if v is not None and not DATE_TIME.fullmatch(v):
            raise ServiceError(400, "ValidationException",
                               f"Value '{v}' at 'otaSchedulingConfig.{k[0].lower() + k[1:]}' is not a date-time")
    for i, w in enumerate(sched.get("MaintenanceWindows") or []):
        try:
            parse_cron(w.get("StartTime"))
        except ValueError as e:
            raise ServiceError(400, "ValidationException",
                               f"Value '{w.get('StartTime')}' at 'otaSchedulingConfig.maintenanceWindows."
                               f"{i + 1}.member.startTime' is not a cron expression: {e}")


def op_create_ota_task(cfg, store, data):
    check_times(data)
    token = data.get("ClientToken")
    request = body_without_token(data)
    with store.lock:
        prev = known_token(store, token)
        if prev:
            task = store.tasks.get(prev["id"])
            if prev["request"] != request:
                raise ServiceError(409, "ConflictException",
                                   "ClientToken was already used with a different request")
            # the first answer, as the service gives it within its idempotency
            # window: even for a task deleted since (a dead task handed back)
            return 201, {"TaskId": prev["id"], "TaskArn": prev.get("arn") or (task or {}).get("TaskArn", ""),
                         **({"Description": request["Description"]} if "Description" in request else {})}
        task_id = store.new_id("ota")
        now = CLOCK.now()
        counts = store.live_counts(now, (request.get("Tags") or {}).get("ota-runner:address"))
        task = {k: request[k] for k in TASK_FIELDS if k in request}
        task["_outcomes"] = store.outcomes_for(task)
        task.update({"TaskId": task_id, "CreatedAt": now, "LastUpdatedAt": now,
                     "TaskArn": f"arn:aws:iotmanagedintegrations:{cfg.region}:{ACCOUNT}:ota-task/{task_id}"})
        store.tasks[task_id] = task
        if token:
            store.tokens[token] = {"id": task_id, "arn": task["TaskArn"], "request": request, "at": now}
        store.event("CreateOtaTask", task_id, body=request, counts=counts)
        store.save()
    out = {"TaskId": task_id, "TaskArn": task["TaskArn"]}
    if "Description" in task:
        out["Description"] = task["Description"]
    return 201, out


def deleting(store, task, now):
    """A deleted task stays visible for --deletion-seconds, its status
    DELETION_IN_PROGRESS (the model's asynchronous delete)."""
    return task.get("Deleted") and now - task.get("DeletedAt", 0) < store.deletion_seconds


def live_task(store, task_id):
    task = store.tasks.get(task_id)
    if not task or task.get("Deleted"):
        raise ServiceError(404, "ResourceNotFoundException", f"OTA task {task_id} not found")
    return task


def normalised(task):
    """A task as a real service may hand it back without changing it: its
    date-times written with milliseconds, its Target in another order, and
    no Tags (read with ListTagsForResource)."""
    def times(v):
        if isinstance(v, dict):
            return {k: times(x) for k, x in v.items()}
        if isinstance(v, list):
            return [times(x) for x in v]
        m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d)(:\d\d)?Z?", v) if isinstance(v, str) else None
        if m:
            return m.group(1) + (m.group(2) or ":00") + ".000Z"
        return v
    out = {k: v for k, v in task.items() if k != "Tags"}
    if "OtaSchedulingConfig" in out:
        out["OtaSchedulingConfig"] = times(out["OtaSchedulingConfig"])
    if isinstance(out.get("Target"), list):
        out["Target"] = list(reversed(out["Target"]))
    return out


def op_get_ota_task(cfg, store, data):
    now = CLOCK.now()
    with store.lock:
        found = store.tasks.get(data["Identifier"])
        task = dict(found if found and deleting(store, found, now) else live_task(store, data["Identifier"]))
    status, details, _, _ = store.progress(task, now)
    if task.get("Deleted"):
        status = "DELETION_IN_PROGRESS"
    task.pop("Deleted", None)
    task.pop("DeletedAt", None)
    task = {k: v for k, v in task.items() if not k.startswith("_")}
    task.update({"Status": status, "TaskProcessingDetails": details})
    return 200, normalised(task) if store.normalize else task


def op_list_ota_tasks(cfg, store, data):
    now = CLOCK.now()
    with store.lock:
        live = [t for t in store.tasks.values() if not t.get("Deleted") or deleting(store, t, now)]
    live.sort(key=lambda t: (t["CreatedAt"], t["TaskId"]))
    chunk, nxt = page(live, data)
    out = {"Tasks": [{"TaskId": t["TaskId"], "TaskArn": t["TaskArn"], "CreatedAt": t["CreatedAt"],
                      "LastUpdatedAt": t["LastUpdatedAt"],
                      "Status": "DELETION_IN_PROGRESS" if t.get("Deleted") else store.progress(t, now)[0],
                      **({"TaskConfigurationId": t["TaskConfigurationId"]}
                         if "TaskConfigurationId" in t else {})} for t in chunk]}
    if nxt:
        out["NextToken"] = nxt
    return 200, out


def op_update_ota_task(cfg, store, data):
    """With --service-lifecycle an ended task (COMPLETED, CANCELED) takes no
    update: a service refuses it (ValidationException, the model's only
    such error)."""
    with store.lock:
        task = live_task(store, data["Identifier"])
        status = store.progress(task, CLOCK.now())[0]
        if store.lifecycle and status not in ("SCHEDULED", "IN_PROGRESS"):
            raise ServiceError(400, "ValidationException",
                               f"OTA task {task['TaskId']} is {status}: an ended task cannot be updated")
        for k in ("Description", "TaskConfigurationId"):
            if k in data:
                task[k] = data[k]
        task["LastUpdatedAt"] = CLOCK.now()
        store.event("UpdateOtaTask", task["TaskId"], body={k: data[k] for k in data if k != "Identifier"},
                    tags=task.get("Tags"))
        store.save()
    return 204, None


def op_delete_ota_task(cfg, store, data):
    with store.lock:
        task = live_task(store, data["Identifier"])
        status = store.progress(task, CLOCK.now())[0]
        task["Deleted"] = True
        task["DeletedAt"] = task["LastUpdatedAt"] = CLOCK.now()
        store.event("DeleteOtaTask", task["TaskId"], status=status, tags=task.get("Tags"))
        store.save()
    return 200, None


def op_list_ota_task_executions(cfg, store, data):
    now = CLOCK.now()
    with store.lock:
        task = dict(live_task(store, data["Identifier"]))
    _, _, targets, states, starts, finishes = store.timeline(task, now)
    rows = []
    for i, target in enumerate(targets):
        if states[i] == "NOT_NOTIFIED":
            continue  # stopped by the EndTime before it was notified: no execution
        thing = re.sub(r"[^a-zA-Z0-9:_-]", "", target.rsplit("/", 1)[-1])[:64] or f"thing{i}"
        status = states[i]
        started = starts[i] is not None and starts[i] <= now
        ended = finishes[i] is not None and finishes[i][0] <= now
        # its last change: its end, its start, or its queueing (a cancel: now, at the latest)
        last = finishes[i][0] if ended else starts[i] if started else task["CreatedAt"]
        summary = {"ExecutionNumber": 1, "LastUpdatedAt": min(last, now), "QueuedAt": task["CreatedAt"],
                   "RetryAttempt": 0, "Status": status}
        if started:
            summary["StartedAt"] = starts[i]
        rows.append({"ManagedThingId": thing, "TaskExecutionSummary": summary})
    chunk, nxt = page(rows, data)
    out = {"ExecutionSummaries": chunk}
    if nxt:
        out["NextToken"] = nxt
    return 200, out


def op_create_ota_task_configuration(cfg, store, data):
    token = data.get("ClientToken")
    request = body_without_token(data)
    with store.lock:
        prev = known_token(store, token)
        if prev:
            if prev["request"] != request:
                raise ServiceError(409, "ConflictException",
                                   "ClientToken was already used with a different request")
            return 201, {"TaskConfigurationId": prev["id"]}  # deleted since or not
        cid = store.new_id("cfg")
        store.configs[cid] = {**request, "TaskConfigurationId": cid, "CreatedAt": CLOCK.now()}
        if token:
            store.tokens[token] = {"id": cid, "request": request, "at": CLOCK.now()}
        store.event("CreateOtaTaskConfiguration", cid, body=request)
        store.save()
    return 201, {"TaskConfigurationId": cid}


def live_config(store, cid):
    if cid not in store.configs:
        raise ServiceError(404, "ResourceNotFoundException", f"OTA task configuration {cid} not found")
    return store.configs[cid]


def op_get_ota_task_configuration(cfg, store, data):
    with store.lock:
        return 200, dict(live_config(store, data["Identifier"]))


def op_list_ota_task_configurations(cfg, store, data):
    with store.lock:
        items = sorted(store.configs.values(), key=lambda c: (c["CreatedAt"], c["TaskConfigurationId"]))
    chunk, nxt = page(items, data)
    out = {"Items": [{k: c[k] for k in ("TaskConfigurationId", "Name", "CreatedAt") if k in c} for c in chunk]}
    if nxt:
        out["NextToken"] = nxt
    return 200, out


def op_delete_ota_task_configuration(cfg, store, data):
    cid = data["Identifier"]
    with store.lock:
        live_config(store, cid)
        users = [t["TaskId"] for t in store.tasks.values()
                 if not t.get("Deleted") and t.get("TaskConfigurationId") == cid]
        if users and store.conflict_in_use:
            # the model lists no ConflictException here: a refusal can only be
            # one of the errors it lists, and a ValidationException is the one
            raise ServiceError(400, "ValidationException",
                               f"OTA task configuration {cid} is in use by {len(users)} task(s): {users[0]}")
        del store.configs[cid]
        store.event("DeleteOtaTaskConfiguration", cid, inUseBy=users)
        store.save()
    return 204, None


def tagged_task(store, arn):
    """The live task whose ARN is arn (the only resources here that take tags)."""
    for t in store.tasks.values():
        if t.get("TaskArn") == arn and not t.get("Deleted"):
            return t
    raise ServiceError(404, "ResourceNotFoundException", f"Resource {arn} not found")


def op_tag_resource(cfg, store, data):
    with store.lock:
        task = tagged_task(store, data["ResourceArn"])
        tags = dict(task.get("Tags") or {})
        tags.update(data["Tags"])
        if len(tags) > 50:
            raise ServiceError(400, "InvalidRequestException", "A resource takes at most 50 tags")
        task["Tags"] = tags
        store.event("TagResource", task["TaskId"], body={"Tags": data["Tags"]}, tags=tags)
        store.save()
    return 200, {}


def op_untag_resource(cfg, store, data):
    with store.lock:
        task = tagged_task(store, data["ResourceArn"])
        tags = {k: v for k, v in (task.get("Tags") or {}).items() if k not in data["TagKeys"]}
        if tags:
            task["Tags"] = tags
        else:
            task.pop("Tags", None)
        store.event("UntagResource", task["TaskId"], body={"TagKeys": data["TagKeys"]}, tags=tags)
        store.save()
    return 200, {}


def op_list_tags_for_resource(cfg, store, data):
    with store.lock:
        task = tagged_task(store, data["ResourceArn"])
        return 200, {"tags": dict(task.get("Tags") or {})} if task.get("Tags") else {}


OPERATIONS = {
    "TagResource": op_tag_resource, "UntagResource": op_untag_resource,
    "ListTagsForResource": op_list_tags_for_resource,
    "CreateOtaTask": op_create_ota_task, "GetOtaTask": op_get_ota_task,
    "ListOtaTasks": op_list_ota_tasks, "UpdateOtaTask": op_update_ota_task,
    "DeleteOtaTask": op_delete_ota_task, "ListOtaTaskExecutions": op_list_ota_task_executions,
    "CreateOtaTaskConfiguration": op_create_ota_task_configuration,
    "GetOtaTaskConfiguration": op_get_ota_task_configuration,
    "ListOtaTaskConfigurations": op_list_ota_task_configurations,
    "DeleteOtaTaskConfiguration": op_delete_ota_task_configuration,
}


# ---- HTTP -------------------------------------------------------------------------

ERROR_FORMS = ("header", "header-namespaced", "__type", "code", "Code")


class Faults:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.buckets = {}  # operation -> [tokens, last time]: --rate-limit
        self.set({"latency_ms": args.latency_ms, "throttle_rate": args.throttle_rate,
                  "error_rate": args.error_rate, "drop_rate": args.drop_rate, "seed": args.seed,
                  "rate_limit": args.rate_limit})

    def over_limit(self, op):
        """A token bucket per operation, rate_limit a second (burst: one second's):
        True when this request finds it empty."""
        with self.lock:
            if self.rate_limit <= 0:
                return False
            now = time.monotonic()
            tokens, last = self.buckets.get(op, (self.rate_limit, now))
            tokens = min(self.rate_limit, tokens + (now - last) * self.rate_limit)
            over = tokens < 1
            self.buckets[op] = (tokens if over else tokens - 1, now)
            return over

    def set(self, d):
        with self.lock:
            self.latency_ms = float(d.get("latency_ms", getattr(self, "latency_ms", 0)))
            self.throttle_rate = float(d.get("throttle_rate", getattr(self, "throttle_rate", 0)))
            self.error_rate = float(d.get("error_rate", getattr(self, "error_rate", 0)))
            self.drop_rate = float(d.get("drop_rate", getattr(self, "drop_rate", 0)))
            self.rate_limit = float(d.get("rate_limit", getattr(self, "rate_limit", 0)))
            # {operation: status}: every call of it answered so, with no effect
            self.fail_ops = dict(d.get("fail_ops", getattr(self, "fail_ops", {})))
            # the forms errors are sent in, in turn (see send_error_shape)
            self.error_forms = list(d.get("error_forms", getattr(self, "error_forms", ["header"])))
            if not self.error_forms or set(self.error_forms) - set(ERROR_FORMS):
                raise ValueError(f"error_forms: a list of {', '.join(ERROR_FORMS)}")
            self.error_turn = 0
            # a throttle answer's x-amz-retry-after (ms), or None
            self.retry_after_ms = d.get("retry_after_ms", getattr(self, "retry_after_ms", None))
            # the share of DeleteOtaTask calls answered 410 LimitExceededException
            self.limit_rate = float(d.get("limit_rate", getattr(self, "limit_rate", 0)))
            if "seed" in d:
                self.rng = random.Random(d["seed"])

    def next_error_form(self):
        with self.lock:
            form = self.error_forms[self.error_turn % len(self.error_forms)]
            self.error_turn += 1
            return form

    def draw(self):
        with self.lock:
            return self.rng.random(), self.rng.random(), self.rng.random(), self.latency_ms

    def as_dict(self):
        return {"latency_ms": self.latency_ms, "throttle_rate": self.throttle_rate,
                "error_rate": self.error_rate, "drop_rate": self.drop_rate, "rate_limit": self.rate_limit,
                "fail_ops": self.fail_ops, "error_forms": self.error_forms, "limit_rate": self.limit_rate,
                "retry_after_ms": self.retry_after_ms}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ota-emulator"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def date_time_string(self, timestamp=None):
        """The Date header, by the service's clock."""
        return email.utils.formatdate(CLOCK.now() if timestamp is None else timestamp, usegmt=True)

    def log_message(self, fmt, *args):
        if self.server.cfg.verbose:
            sys.stderr.write("emulator: " + fmt % args + "\n")

    def send_json(self, status, obj, extra=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        # headers and body in one write: two writes meet the client's delayed
        # ACK (Nagle) and hold the answer back ~40 ms
        self._headers_buffer.append(b"\r\n")
        if body and self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def send_error_shape(self, e):
        """A restJson1 error in one of the forms a service may use (faults
        "error_forms", taken in turn): the type in x-amzn-ErrorType, bare or
        namespaced ("ns#Code"), with the ':' suffix a Coral service adds; or
        only in the body as __type (namespaced), code or Code."""
        form = self.server.faults.next_error_form()
        ns = "aws.iotmanagedintegrations#"
        suffix = ":http://internal.amazon.com/coral/com.amazonaws.iotmanagedintegrations/"
        extra = {} if getattr(e, "retry_after_ms", None) is None else {"x-amz-retry-after": str(e.retry_after_ms)}
        if form == "header":
            self.send_json(e.status, {"Message": e.message}, {"x-amzn-ErrorType": e.code + suffix, **extra})
        elif form == "header-namespaced":
            self.send_json(e.status, {"message": e.message},
                           {"x-amzn-ErrorType": ns + e.code + suffix, **extra})
        elif form == "__type":
            self.send_json(e.status, {"__type": ns + e.code, "message": e.message}, extra)
        elif form == "code":
            self.send_json(e.status, {"code": e.code, "message": e.message}, extra)
        else:  # "Code"
            self.send_json(e.status, {"Code": e.code, "Message": e.message}, extra)

    def drop_connection(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def handle_any(self):
        srv = self.server
        raw_path, _, raw_query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error_shape(ServiceError(413, "ValidationException", "Request body too large"))
            return
        body = self.rfile.read(length) if length else b""
        if raw_path.startswith("/_emulator/"):
            return self.control(raw_path, body)
        entry = {"method": self.command, "path": raw_path, "op": None, "status": None,
                 "clientToken": None, "fault": None, "time": time.time()}
        if srv.cfg.log_bodies:  # the request as sent, for the fidelity tests
            entry.update(query=raw_query, body=body.decode("utf-8", "replace"),
                         contentType=self.headers.get("Content-Type"))
        try:
            op_name, op, labels = srv.model.route(self.command, raw_path)
            entry["op"] = op_name
            m = AUTH_RX.match((self.headers.get("Authorization") or "").strip())
            entry["accessKeyId"] = m.group(1) if m else None
            entry["sessionToken"] = bool(self.headers.get("X-Amz-Security-Token"))
            akid = verify_sigv4(srv.cfg, self.command, raw_path, raw_query, self.headers, body)
            if not op_name:
                raise ServiceError(404, "UnknownOperationException", f"No operation at {self.command} {raw_path}")
            principal = getattr(srv.cfg, "principals", {}).get(akid)
            if principal:
                entry["principal"] = principal.name
            authorize(srv.cfg, akid, op_name, labels, body)
            try:  # the token of a call a fault answers too, for the log
                entry["clientToken"] = json.loads(body).get("ClientToken") if body else None
            except (ValueError, AttributeError):
                pass
            throttle, error, drop, latency = srv.faults.draw()
            if latency:
                time.sleep(latency / 1000.0)
            if srv.faults.over_limit(op_name):
                entry["fault"] = "rate-limit"
                raise ServiceError(429, "ThrottlingException", "Rate exceeded")
            if op_name in srv.faults.fail_ops:
                entry["fault"] = "fail-op"
                raise ServiceError(int(srv.faults.fail_ops[op_name]), "ServiceUnavailableException",
                                   "Service unavailable")
            if throttle < srv.faults.throttle_rate:
                entry["fault"] = "throttle"
                raise ServiceError(429, "ThrottlingException", "Rate exceeded",
                                   retry_after_ms=srv.faults.retry_after_ms)
            if op_name == "DeleteOtaTask" and error < srv.faults.limit_rate:
                entry["fault"] = "limit"
                raise ServiceError(410, "LimitExceededException", "Limit exceeded")
            if error < srv.faults.error_rate:
                entry["fault"] = "error"
                raise ServiceError(500, "InternalServerException", "Internal server error")
            query = Query()
            for pair in raw_query.split("&") if raw_query else []:
                k, _, v = pair.partition("=")
                query.add(unquote(k), unquote(v))
            data, unknown = srv.model.parse_input(op, labels, query, body)
            if srv.cfg.log_bodies:
                entry["params"] = data
            if unknown:
                entry["unknown"] = unknown
            CALLER.ua = self.headers.get("User-Agent")
            entry["clientToken"] = data.get("ClientToken")
            status, out = OPERATIONS[op_name](srv.cfg, srv.store, data)
            entry["status"] = status
            if op_name in MUTATING and drop < srv.faults.drop_rate:
                entry["fault"] = "drop"  # committed, but the answer is lost
                srv.record(entry)
                self.drop_connection()
                return
            srv.record(entry)
            self.send_json(status, out)
        except ServiceError as e:
            entry["status"] = e.status
            entry["error"] = e.code
            srv.record(entry)
            self.send_error_shape(e)

    def control(self, path, body):
        srv = self.server
        if path == "/_emulator/health":
            return self.send_json(200, {"status": "ok"})
        if path == "/_emulator/log":
            with srv.log_lock:
                return self.send_json(200, list(srv.log))
        if path == "/_emulator/tasks":
            with srv.store.lock:
                return self.send_json(200, list(srv.store.tasks.values()))
        if path == "/_emulator/configurations":
            with srv.store.lock:
                return self.send_json(200, list(srv.store.configs.values()))
        if path == "/_emulator/faults" and self.command == "POST":
            d = json.loads(body or b"{}")
            try:
                srv.faults.set(d)
            except ValueError as e:
                return self.send_json(400, {"Message": str(e)})
            if "conflict_in_use" in d:
                srv.store.conflict_in_use = bool(d["conflict_in_use"])
            if "normalize" in d:
                srv.store.normalize = bool(d["normalize"])
            if "lifecycle" in d:
                srv.store.lifecycle = bool(d["lifecycle"])
            if "deletion_seconds" in d:
                srv.store.deletion_seconds = float(d["deletion_seconds"])
            return self.send_json(200, {**srv.faults.as_dict(), "conflict_in_use": srv.store.conflict_in_use})
        if path == "/_emulator/outcomes" and self.command == "POST":
            try:
                d = check_outcomes(json.loads(body or b"{}"))
            except ValueError as e:
                return self.send_json(400, {"Message": str(e)})
            with srv.store.lock:
                srv.store.outcomes = d
            return self.send_json(200, srv.store.outcomes)
        if path == "/_emulator/events":
            with srv.store.lock:
                return self.send_json(200, list(srv.store.events))
        if path == "/_emulator/clock" and self.command == "POST":
            d = json.loads(body or b"{}")
            with srv.store.lock:
                now = CLOCK.advance(float(d.get("advance", 0)))
            return self.send_json(200, {"now": now, "virtual": CLOCK.virtual})
        if path == "/_emulator/forget-tokens" and self.command == "POST":
            with srv.store.lock:
                n = len(srv.store.tokens)
                srv.store.tokens.clear()
                srv.store.save()
            return self.send_json(200, {"forgotten": n})
        if path == "/_emulator/reset" and self.command == "POST":
            with srv.store.lock:
                srv.store.tasks.clear()
                srv.store.configs.clear()
                srv.store.tokens.clear()
                srv.store.save()
                srv.store.events.clear()
            with srv.log_lock:
                srv.log.clear()
            return self.send_json(200, {"status": "reset"})
        self.send_json(404, {"Message": "unknown control path"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


OUTCOMES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "NEVER")


def check_outcomes(d):
    """The outcome rules of POST /_emulator/outcomes or --outcomes, checked."""
    def rule(r):
        if not isinstance(r, dict) or not set(r) <= {"share", "never"}:
            raise ValueError(f"an outcome rule is {{\"share\": 0..1}} or {{\"never\": true}}: {r!r}")
        if "share" in r and not 0 <= float(r["share"]) <= 1:
            raise ValueError(f"share must be within 0..1: {r['share']!r}")
        return r
    if not isinstance(d, dict) or not set(d) <= {"share", "never", "queries", "things"}:
        raise ValueError(f"outcomes: unknown keys in {d!r}")
    rule({k: v for k, v in d.items() if k in ("share", "never")})
    for r in d.get("queries", {}).values():
        rule(r)
    for target, o in d.get("things", {}).items():
        if o not in OUTCOMES:
            raise ValueError(f"outcome of {target}: {o!r} is not one of {', '.join(OUTCOMES)}")
    return d


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: 64 clients connecting at once overflow
    # it, and the kernel's SYN retransmits (1 s, 3 s) look like a slow service
    request_queue_size = 256

    def __init__(self, cfg):
        super().__init__(("127.0.0.1", cfg.port), Handler)
        self.cfg = cfg
        self.model = Model(cfg.model)
        self.store = Store(cfg.state, cfg.tick)
        self.faults = Faults(cfg)
        self.log, self.log_lock = [], threading.Lock()
        self.log_file = open(cfg.log, "a", encoding="utf-8") if cfg.log else None

    def handle_error(self, request, client_address):
        # a client killed mid-request (the crash tests do that) is not our error
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def record(self, entry):
        with self.log_lock:
            entry["seq"] = len(self.log) + 1
            self.log.append(entry)
            if self.log_file:
                self.log_file.write(json.dumps(entry) + "\n")
                self.log_file.flush()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    p.add_argument("--access-key-id", default="AKIDOTAEMULATOR", help="the one key id accepted")
    p.add_argument("--secret-access-key", default="ota-emulator-secret-key",
                   help="its secret key")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--principals",
                   help="more callers, each judged by IAM policy files: JSON {NAME: {\"accessKeyId\", "
                        "\"secretAccessKey\", \"policies\": [FILE, ...]}}; a call its policies do not allow "
                        "(a create with Tags needs TagResource too) is answered AccessDeniedException "
                        "(UnauthorizedException for the tag operations, as the model lists). The key "
                        "above stays allowed everything")
    p.add_argument("--state", help="keep tasks in this JSON file")
    p.add_argument("--log", help="append every request to this file (JSON lines)")
    p.add_argument("--model", default=os.path.join(HERE, "model.json"))
    p.add_argument("--tick", type=float, default=2.0,
                   help="seconds for one target of a task to finish (0: at once)")
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--throttle-rate", type=float, default=0, help="share of calls answered 429")
    p.add_argument("--rate-limit", type=float, default=0,
                   help="requests a second per operation (a token bucket, one second's burst); "
                        "beyond it 429 ThrottlingException with no effect (0: none)")
    p.add_argument("--error-rate", type=float, default=0, help="share of calls answered 500")
    p.add_argument("--drop-rate", type=float, default=0,
                   help="share of mutating calls committed, then the connection dropped")
    p.add_argument("--seed", type=int, default=1, help="seed of the fault dice")
    p.add_argument("--conflict-in-use", action="store_true",
                   help="DeleteOtaTaskConfiguration answers 400 ValidationException while a task uses it "
                        "(the model lists no ConflictException for it)")
    p.add_argument("--max-page", type=int, default=1000,
                   help="at most this many items a page, whatever MaxResults asks (a service may "
                        "answer fewer)")
    p.add_argument("--outcomes", type=lambda t: check_outcomes(json.loads(t)), default={},
                   help="how the things of new tasks end (JSON; see POST /_emulator/outcomes)")
    p.add_argument("--query-things", type=int, default=4,
                   help="how many things a task with a target query string reaches")
    p.add_argument("--token-ttl", type=float, default=TOKEN_TTL,
                   help="seconds a ClientToken is remembered (0: for ever; default a day). Within "
                        "it a create with a used token gets the first answer again, even for a "
                        "resource deleted since; after it, a new resource")
    p.add_argument("--deletion-seconds", type=float, default=2.0,
                   help="a deleted task is listed and got with status DELETION_IN_PROGRESS for this "
                        "long (the model's delete is asynchronous), then is gone")
    p.add_argument("--service-lifecycle", action="store_true",
                   help="a task's life as the service runs it: things are notified no faster than "
                        "the configuration's rollout rate (MaximumPerMinute, ExponentialRolloutRate), "
                        "only inside the task's maintenance windows and before its EndTime (then "
                        "EndBehavior holds), and time out after InProgressTimeoutInMinutes; an "
                        "ended task refuses UpdateOtaTask. Off by default, so that the sample "
                        "fleet (its windows are at night) and the fast tests (--tick 0 ends a task "
                        "at once) run; the fidelity and chaos tests turn it on (POST "
                        "/_emulator/faults {\"lifecycle\": true} does too)")
    p.add_argument("--virtual-clock", action="store_true",
                   help="the service's time moves only by POST /_emulator/clock {\"advance\": S}")
    p.add_argument("--log-bodies", action="store_true",
                   help="the log keeps each request's query, body, Content-Type and its input as read")
    p.add_argument("--verbose", action="store_true")
    cfg = p.parse_args(argv)
    cfg.principals = load_principals(cfg.principals)
    MAX_PAGE[0] = cfg.max_page

    srv = Server(cfg)
    srv.store.conflict_in_use = cfg.conflict_in_use
    srv.store.token_ttl = cfg.token_ttl
    srv.store.deletion_seconds = cfg.deletion_seconds
    srv.store.outcomes = cfg.outcomes
    srv.store.query_things = cfg.query_things
    srv.store.lifecycle = cfg.service_lifecycle
    CLOCK.virtual = cfg.virtual_clock
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"listening on http://127.0.0.1:{srv.server_address[1]}", flush=True)
    srv.serve_forever(poll_interval=0.2)
    with srv.store.lock:
        srv.store.save()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
