#!/usr/bin/env python3
"""The chaos test: random sequences of what happens to a fleet under
ota-runner, checked after every step against the invariants that are its
promise (docs/operations.md, "The promise"). Seeded: a seed gives the same sequence.

Steps: manifests edited and committed (a task's fields, a configuration, a
rollout's revision, image, gate, holdAfter, pause and waves; files renamed
and removed); plan and apply with random flags (--prune, --allow-cancel,
--max-deletes, --parallelism, --refresh); applies killed at random moments
(SIGKILL, SIGTERM); with the state on S3 (moto), one apply stopped past
--lock-stale-after while another takes the lock over; the state lost, then
rebuilt or adopted; tasks made by hand, foreign or with a forged
ota-runner:address tag; devices' outcomes changed; the service's clock
advanced; ClientTokens forgotten (the idempotency window ended); the
service's moods (errors in every form, throttles with x-amz-retry-after,
LimitExceededException on deletes, deletes that stay DELETION_IN_PROGRESS,
answers written its own way). The emulator runs the service's lifecycle
(rollout rates, an ended task refusing updates).

The emulator runs a virtual clock (counts change only between steps; soaks
and deadlines follow it, as ota-runner judges them by the service's) and
keeps a ground-truth event log of every create, update and delete; the
invariants are checked on it:

  I1  no wave of a rollout revision is created before the wave before it
      passed its gate (on the counts at that moment) and soaked, nor past
      holdAfter, nor while paused;
  I2  no SCHEDULED or IN_PROGRESS task is deleted by a run without
      --allow-cancel, nor a removed manifest's task without --prune;
  I3  at most one live task for a manifest's body (address, revision and
      the fields a create sends: no duplicate);
  I4  after an apply that exited 0, plan --refresh full shows nothing to do
      but waves whose soak ended since and old configurations a replace
      retired (deleted by a later run once nothing uses them), and the state
      records every live
      resource ota-runner made (but those it says it leaves alone) and
      nothing that is gone;
  I5  no configuration is deleted while a live task refers to it;
  I6  no resource ota-runner did not create is updated or deleted;
  and no run crashes (a signal, a sanitizer report).

A failure prints the seed and a shrunk sequence (steps dropped while it
still fails) as a replayable JSON file: chaos.py --replay FILE.

  chaos.py --seeds 1-8 [--steps 40] [--s3-every 3]   fixed seeds (ci/test)
  chaos.py --minutes 30                               new seeds for as long (ci/chaos)
"""
import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
from fleet import ARN, Fleet, service  # noqa: E402
from harness import Emulator  # noqa: E402

RUNNING = ("SCHEDULED", "IN_PROGRESS")
SLOW = os.environ.get("OTR_SANITIZED") == "1"


class Violation(Exception):
    pass


# ---- manifests -----------------------------------------------------------------------

def task_text(name, t):
    lines = ["apiVersion: ota-runner/v1", "kind: OtaTask", f"metadata: {{name: {name}, revision: {t['rev']}}}",
             "spec:", f"  S3Url: s3://fw/{t['image']}.json", "  OtaType: ONE_TIME",
             "  Target: [" + ", ".join(ARN + x for x in t["targets"]) + "]"]
    if t.get("desc"):
        lines.append(f"  Description: {t['desc']}")
    if t.get("ref"):
        lines.append(f"  TaskConfigurationRef: {t['ref']}")
    return "\n".join(lines) + "\n"


def config_text(name, c):
    return ("apiVersion: ota-runner/v1\nkind: OtaTaskConfiguration\n"
            f"metadata: {{name: {name}}}\nspec:\n  Name: {name}\n  PushConfig:\n    RolloutConfig:\n"
            f"      ExponentialRolloutRate: {{BaseRatePerMinute: {c['rate']}, IncrementFactor: 2}}\n")


def gate_text(g):
    return ("{" + ", ".join(f"{k}: {v}" for k, v in (("minSucceededPercent", g["ok"]), ("maxFailedPercent", g["bad"]),
                                                      ("minFinished", g["fin"]), ("soak", f"{g['soak']}s"))) + "}")


def rollout_text(name, r):
    lines = ["apiVersion: ota-runner/v1", "kind: OtaRollout", f"metadata: {{name: {name}, revision: {r['rev']}}}",
             "spec:", "  task:", f"    S3Url: s3://fw/{r['image']}.json", "    OtaType: ONE_TIME"]
    if r.get("ref"):
        lines.append(f"    TaskConfigurationRef: {r['ref']}")
    lines.append(f"  gate: {gate_text(r['gate'])}")
    if r.get("hold"):
        lines.append(f"  holdAfter: {r['hold']}")
    if r.get("paused"):
        lines.append("  paused: true")
    lines.append("  waves:")
    for w in r["waves"]:
        lines += [f"    - name: {w['name']}", "      Target: [" + ", ".join(ARN + x for x in w["targets"]) + "]"]
        if w.get("gate"):
            lines.append(f"      gate: {gate_text(w['gate'])}")
    return "\n".join(lines) + "\n"


GATE_DEFAULTS = {"ok": 95, "bad": 5, "fin": 1, "soak": 0}


class Model:
    """What the manifests say, to make random edits of; each edit becomes a
    step with the files' whole text, so a sequence replays without it."""

    def __init__(self, rng):
        self.rng = rng
        self.tasks, self.configs, self.rollouts, self.files = {}, {}, {}, {}
        self.things = 0
        for i in range(rng.randint(1, 2)):
            self.configs[f"cfg{i}"] = {"rate": rng.choice([5, 10, 20])}
        for i in range(rng.randint(2, 4)):
            self.tasks[f"task{i}"] = self.new_task()
        for i in range(rng.randint(1, 2)):
            self.rollouts[f"roll{i}"] = self.new_rollout(f"roll{i}")
        for kind, names in (("t", self.tasks), ("c", self.configs), ("r", self.rollouts)):
            for n in names:
                self.files[(kind, n)] = f"{kind}-{n}.yaml"

    def thing(self):
        self.things += 1
        return f"th{self.things:03d}"

    def new_task(self):
        rng = self.rng
        return {"rev": 1, "image": f"img{rng.randint(1, 9)}", "targets": [self.thing() for _ in range(rng.randint(1, 2))],
                "desc": rng.choice([None, "First", "Second"]), "ref": rng.choice([None] + sorted(self.configs))}

    def gate(self):
        rng = self.rng
        return {"ok": rng.choice([50, 95, 100]), "bad": rng.choice([0, 10, 50]), "fin": rng.choice([1, 2]),
                "soak": rng.choice([0, 0, 1, 2])}

    def new_rollout(self, name):
        rng = self.rng
        # two things a wave: a gate may wait for two (one that waits for more than its
        # wave names is refused by validate)
        waves = [{"name": f"w{i}", "targets": [self.thing(), self.thing()]} for i in range(rng.randint(2, 4))]
        return {"rev": 1, "image": f"img{rng.randint(1, 9)}", "ref": rng.choice([None] + sorted(self.configs)),
                "gate": self.gate(), "hold": None, "paused": False, "waves": waves}

    def text(self, key):
        kind, name = key
        if kind == "t":
            return task_text(name, self.tasks[name]) if name in self.tasks else None
        if kind == "c":
            return config_text(name, self.configs[name]) if name in self.configs else None
        return rollout_text(name, self.rollouts[name]) if name in self.rollouts else None

    def all_files(self):
        return {self.files[k]: self.text(k) for k in self.files}

    def edit(self):
        """One random edit; the files it changes (None: removed)."""
        rng = self.rng
        choices = ["task", "task", "config", "rollout", "rollout", "rollout", "rename", "remove", "add"]
        what = rng.choice(choices)
        if what == "task" and self.tasks:
            name = rng.choice(sorted(self.tasks))
            t = self.tasks[name]
            field = rng.choice(["image", "desc", "targets", "ref", "rev"])
            if field == "image":
                t["image"] = f"img{rng.randint(1, 9)}"
            elif field == "desc":
                t["desc"] = rng.choice([None, "First", "Second", "Third"])
            elif field == "targets":
                t["targets"] = [self.thing() for _ in range(rng.randint(1, 2))]
            elif field == "ref":
                t["ref"] = rng.choice([None] + sorted(self.configs))
            else:
                t["rev"] += 1
            return {self.files[("t", name)]: self.text(("t", name))}
        if what == "config" and self.configs:
            name = rng.choice(sorted(self.configs))
            self.configs[name]["rate"] = rng.choice([5, 10, 20, 40])
            return {self.files[("c", name)]: self.text(("c", name))}
        if what == "rollout" and self.rollouts:
            name = rng.choice(sorted(self.rollouts))
            r = self.rollouts[name]
            field = rng.choice(["gate", "hold", "hold", "paused", "add_wave", "drop_wave", "swap", "image", "bump",
                                "wave_gate"])
            if field == "gate":
                r["gate"] = self.gate()
            elif field == "hold":
                r["hold"] = rng.choice([None] + [w["name"] for w in r["waves"]])
            elif field == "paused":
                r["paused"] = not r["paused"]
            elif field == "add_wave":
                r["waves"].append({"name": f"w{len(r['waves'])}x{rng.randint(0, 99)}",
                                   "targets": [self.thing(), self.thing()]})
            elif field == "drop_wave" and len(r["waves"]) > 1:
                gone = r["waves"].pop()
                if r["hold"] == gone["name"]:
                    r["hold"] = None
            elif field == "swap" and len(r["waves"]) > 1:
                i = rng.randrange(len(r["waves"]) - 1)
                r["waves"][i], r["waves"][i + 1] = r["waves"][i + 1], r["waves"][i]
            elif field == "image":
                r["image"] = f"img{rng.randint(1, 9)}"
            elif field == "wave_gate":
                w = rng.choice(r["waves"])
                w["gate"] = self.gate() if not w.get("gate") else None
            else:
                r["rev"] += 1
                r["image"] = f"img{rng.randint(1, 9)}"
            return {self.files[("r", name)]: self.text(("r", name))}
        if what == "rename":
            key = rng.choice(sorted(self.files))
            old = self.files[key]
            self.files[key] = f"moved{rng.randint(0, 999)}-{old.split('-', 1)[-1]}"
            return {old: None, self.files[key]: self.text(key)}
        if what == "remove":
            keys = [k for k in sorted(self.files) if k[0] != "c" or not self.uses(k[1])]
            if keys:
                key = rng.choice(keys)
                kind, name = key
                {"t": self.tasks, "c": self.configs, "r": self.rollouts}[kind].pop(name, None)
                return {self.files.pop(key): None}
        if what == "add" or not self.tasks:
            if rng.random() < 0.5:
                name = f"task{len(self.files)}x{rng.randint(0, 99)}"
                self.tasks[name] = self.new_task()
                self.files[("t", name)] = f"t-{name}.yaml"
                return {self.files[("t", name)]: self.text(("t", name))}
            name = f"roll{len(self.files)}x{rng.randint(0, 99)}"
            self.rollouts[name] = self.new_rollout(name)
            self.files[("r", name)] = f"r-{name}.yaml"
            return {self.files[("r", name)]: self.text(("r", name))}
        return {}

    def uses(self, cfg):
        return any(t.get("ref") == cfg for t in self.tasks.values()) or \
            any(r.get("ref") == cfg for r in self.rollouts.values())


# how the service answers from a "service" step on: errors in every form
# botocore reads, some retryable (throttles that say when to retry,
# LimitExceededException on deletes); deletes that stay DELETION_IN_PROGRESS
# until the clock moves; gets that write times and lists their own way; or
# back to plain answers
SERVICE_MOODS = [
    {"error_forms": ["header", "header-namespaced", "__type", "code", "Code"], "throttle_rate": 0.15,
     "retry_after_ms": 40, "limit_rate": 0.2},
    {"deletion_seconds": 4},
    {"normalize": True},
    {"error_forms": ["header"], "throttle_rate": 0, "retry_after_ms": None, "limit_rate": 0,
     "deletion_seconds": 2, "normalize": False},
]


def generate(seed, nsteps, s3):
    """A sequence of steps, each with everything it needs to replay."""
    rng = random.Random(seed)
    model = Model(rng)
    steps = [{"op": "commit", "files": model.all_files()}]
    weights = [("edit", 6), ("apply", 8), ("plan", 2), ("advance", 5), ("kill", 3), ("outcomes", 2),
               ("lose", 1), ("forge", 1), ("forget", 1), ("service", 1)] + ([("stall", 1)] if s3 else [])
    ops = [op for op, w in weights for _ in range(w)]
    for _ in range(nsteps):
        op = rng.choice(ops)
        if op == "edit":
            files = {}
            for _ in range(rng.randint(1, 3)):
                files.update(model.edit())
            if files:
                steps.append({"op": "commit", "files": files})
        elif op in ("apply", "kill", "stall"):
            args = []
            if rng.random() < 0.4:
                args.append("--prune")
            if rng.random() < 0.4:
                args.append("--allow-cancel")
            if rng.random() < 0.2:
                args += ["--max-deletes", str(rng.choice([0, 1, 3]))]
            args += ["--parallelism", str(rng.choice([1, 2, 8]))]
            if rng.random() < 0.2:
                args += ["--refresh", rng.choice(["full", "none"])]
            step = {"op": op, "args": args}
            if op == "kill":
                step.update(signal=rng.choice([9, 9, 15]), after=round(rng.uniform(0.02, 0.6), 3),
                            latency=rng.choice([20, 50, 100]))
            steps.append(step)
        elif op == "plan":
            steps.append({"op": "plan", "args": rng.choice([[], ["--prune"], ["--refresh", "full"]])})
        elif op == "advance":
            steps.append({"op": "advance", "seconds": rng.choice([0.5, 1, 1, 2, 3, 6])})
        elif op == "outcomes":
            steps.append({"op": "outcomes", "rule": rng.choice([{}, {}, {"share": 0.5}, {"share": 0.0}, {"never": True}])})
        elif op == "lose":
            steps.append({"op": "lose", "then": rng.choice(["rebuild", "apply"])})
        elif op == "forge":
            names = [f"OtaTask/{n}" for n in model.tasks] + [f"OtaRollout/{n}" for n in model.rollouts]
            steps.append({"op": "forge", "address": rng.choice(names) if names and rng.random() < 0.7 else None,
                          "image": f"evil{rng.randint(1, 9)}", "targets": [f"victim{rng.randint(1, 9)}"]})
        elif op == "forget":
            steps.append({"op": "forget"})
        elif op == "service":
            steps.append({"op": "service", "faults": rng.choice(SERVICE_MOODS)})
    return steps


# ---- running -----------------------------------------------------------------------------

class World:
    def __init__(self, runner, seed, s3):
        self.runner, self.seed, self.s3 = runner, seed, s3
        state = None
        if s3:
            state = f"s3://{s3.bucket}/seed{seed}-{os.getpid()}/state.json"
        self.fleet = Fleet(runner, f"chaos{seed}", "--tick", "1", "--virtual-clock", "--token-ttl", "60",
                           "--service-lifecycle", state=state)
        if s3:
            self.fleet.extra_env = {"AWS_ENDPOINT_URL_S3": s3.url, "AWS_CONFIG_FILE": "/dev/null",
                                    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        self.emu = self.fleet.emu
        self.runs = []          # {"start", "end", "args", "files", "rc"}
        self.foreign = set()    # ids of tasks made by hand
        self.let_go = set()     # ids ota-runner said it leaves alone (not adopted, older revisions)
        self.checked_events = 0
        # the service's clock a day ahead of this machine's, as a real service's
        # would be when they disagree: ota-runner then judges soaks and deadlines
        # by the Date of the service's answers. Within 2 s of each other it takes
        # the clocks to agree and counts on its own, which keeps moving while the
        # virtual one is frozen between steps (a false I1, seed 1796549230).
        self.vnow = self.emu.control("clock", {"advance": 86400})["now"]
        self.files = {}         # the manifests of HEAD: file -> text

    def close(self):
        self.fleet.stop()

    # -- steps

    def run(self, *args, grace=0.0):
        start = time.time()
        rc, out, err = self.fleet.run(*args, timeout=600)
        self.note_run(start, args, rc, out, err, grace)
        return rc, out, err

    def note_run(self, start, args, rc, out, err, grace=0.0):
        self.runs.append({"start": start, "end": time.time() + grace, "args": list(args), "files": dict(self.files),
                          "rc": rc, "vnow": self.vnow, "out": (out + err)[-4000:]})
        self.let_go_from(out + err)
        if (rc < 0 and rc not in (-9, -15)) or rc in (134, 139) or "Sanitizer" in err:
            raise Violation(f"ota-runner {' '.join(args)} crashed (rc {rc}):\n{out}{err}")
        if re.search(r"manifest errors? at", err):
            # every sequence is made of valid manifests: one refused would leave the runs
            # testing nothing (a driver behind validate's rules)
            raise Violation(f"the driver wrote manifests validate refuses:\n{err}")

    def let_go_from(self, text):
        for line in text.splitlines():
            if ("is tagged with it, but" in line or "is tagged so too" in line or "not adopted" in line):
                self.let_go.update(re.findall(r"\bota[0-9a-f]{6,}\b", line))

    def step(self, st):
        op = st["op"]
        f = self.fleet
        if op == "commit":
            for name, text in st["files"].items():
                if text is None:
                    self.files.pop(name, None)
                else:
                    self.files[name] = text
            f.commit(st["files"])
        elif op == "apply":
            rc, out, err = self.run("apply", *st["args"])
            if rc == 0:
                self.check_settled(out + err)
        elif op == "plan":
            self.run("plan", *st["args"])
        elif op == "advance":
            self.vnow = self.emu.control("clock", {"advance": st["seconds"]})["now"]
        elif op == "outcomes":
            self.emu.control("outcomes", st["rule"])
        elif op == "kill":
            self.emu.control("faults", {"latency_ms": st["latency"]})
            start = time.time()
            p = f.popen("apply", *st["args"])
            try:
                out, err = p.communicate(timeout=st["after"] * (3 if SLOW else 1))
            except subprocess.TimeoutExpired:
                p.send_signal(st["signal"])
                out, err = p.communicate(timeout=120)
            self.emu.control("faults", {"latency_ms": 0})
            self.note_run(start, ["apply", *st["args"]], p.returncode, out, err, grace=0.3)
        elif op == "stall":
            self.stall(st)
        elif op == "lose":
            self.lose()
            if st["then"] == "rebuild":
                self.run("state", "rebuild")
        elif op == "forge":
            self.forge(st)
        elif op == "forget":
            self.emu.control("forget-tokens", {})
        elif op == "service":
            self.emu.control("faults", st["faults"])

    def stall(self, st):
        """A run stopped past --lock-stale-after; another takes the lock over."""
        f = self.fleet
        self.emu.control("faults", {"latency_ms": 60})
        args = ["apply", "--lock-stale-after", "1s", *st["args"]]
        start = time.time()
        a = f.popen(*args)
        time.sleep(0.3)
        if a.poll() is not None:
            out, err = a.communicate()
            self.emu.control("faults", {"latency_ms": 0})
            self.note_run(start, args, a.returncode, out, err)
            return
        a.send_signal(signal.SIGSTOP)
        time.sleep(1.3)
        self.emu.control("faults", {"latency_ms": 0})
        self.run(*args)
        a.send_signal(signal.SIGCONT)
        out, err = a.communicate(timeout=300)
        self.note_run(start, args, a.returncode, out, err)

    def lose(self):
        f = self.fleet
        if self.s3:
            prefix = f.state[len(f"s3://{self.s3.bucket}/"):].rsplit("/", 1)[0] + "/"
            c = self.s3.client()
            for k in self.s3.keys(prefix):
                c.delete_object(Bucket=self.s3.bucket, Key=k)
        else:
            f.lose_state()

    def forge(self, st):
        tags = {"team": "hand"}
        if st["address"]:
            tags.update({"ota-runner:address": st["address"], "ota-runner:revision": "1"})
        got = service(self.emu).create_ota_task(S3Url=f"s3://fw/{st['image']}.json", OtaType="ONE_TIME",
                                                Target=[ARN + t for t in st["targets"]], Tags=tags)
        self.foreign.add(got["TaskId"])

    # -- the invariants

    def events(self):
        return self.emu.control("events")

    def runs_at(self, t):
        return [r for r in self.runs if r["start"] - 0.05 <= t <= r["end"] + 0.05]

    def check(self):
        events = self.events()
        tasks = {t["TaskId"]: t for t in self.emu.control("tasks")}
        for e in events[self.checked_events:]:
            ours = (e.get("ua") or "").startswith("ota-runner/")
            if not ours:
                continue
            if e["op"] in ("UpdateOtaTask", "DeleteOtaTask") and e["id"] in self.foreign:
                raise Violation(f"I6: {e['op']} of {e['id']}, a task ota-runner did not create")
            if e["op"] == "DeleteOtaTaskConfiguration" and e.get("inUseBy"):
                raise Violation(f"I5: configuration {e['id']} deleted while {e['inUseBy']} used it")
            if e["op"] == "DeleteOtaTask":
                self.check_delete(e)
            if e["op"] == "CreateOtaTask":
                self.check_wave(e, events, tasks)
        self.checked_events = len(events)
        self.check_duplicates(tasks)

    def check_delete(self, e):
        runs = self.runs_at(e["real"])
        tags = e.get("tags") or {}
        address = tags.get("ota-runner:address", "")
        if e.get("status") in RUNNING and runs and not any("--allow-cancel" in r["args"] for r in runs):
            raise Violation(f"I2: task {e['id']} ({address}) was {e['status']} and deleted by a run without "
                            f"--allow-cancel: {[r['args'] for r in runs]}")
        kind, _, name = address.partition("/")
        if runs and address and not any(self.has_manifest(r["files"], kind, name) or "--prune" in r["args"]
                                        for r in runs):
            raise Violation(f"I2: task {e['id']} of {address}, whose manifest is gone, deleted without --prune")

    @staticmethod
    def has_manifest(files, kind, name):
        return any(f"kind: {kind}\n" in t and f"metadata: {{name: {name}," in t for t in files.values())

    @staticmethod
    def rollout_of(files, name):
        for t in files.values():
            if "kind: OtaRollout\n" in t and f"metadata: {{name: {name}," in t:
                return t
        return None

    def check_wave(self, e, events, tasks):
        """I1 for a wave's create, judged by the manifests of the run that
        sent it (when runs overlap, one that allows it is enough)."""
        tags = (e.get("body") or {}).get("Tags") or {}
        address = tags.get("ota-runner:address", "")
        if not address.startswith("OtaRollout/"):
            return
        runs = [r for r in self.runs_at(e["real"]) if r["args"] and r["args"][0] == "apply"]
        why = [self.wave_fault(e, events, tasks, address, tags.get("ota-runner:revision"), r) for r in runs]
        if why and all(why):
            raise Violation(why[0])

    def wave_fault(self, e, events, tasks, address, rev, run):
        """What is wrong with the create e of a wave, by run's manifests; None when nothing."""
        name = address.split("/", 1)[1]
        text = self.rollout_of(run["files"], name)
        if not text or f"revision: {rev}}}" not in text:
            return None  # another revision's: a resume of an older intent
        spec = parse_rollout(text)
        targets = sorted(e["body"].get("Target", []))
        idx = next((i for i, w in enumerate(spec["waves"]) if sorted(ARN + x for x in w["targets"]) == targets), None)
        if idx is None or idx == 0:
            return None
        names = [w["name"] for w in spec["waves"]]
        prev_targets = sorted(ARN + x for x in spec["waves"][idx - 1]["targets"])
        prev = [x for x in events if x["op"] == "CreateOtaTask" and x["seq"] < e["seq"]
                and ((x.get("body") or {}).get("Tags") or {}).get("ota-runner:address") == address
                and ((x.get("body") or {}).get("Tags") or {}).get("ota-runner:revision") == rev
                and sorted(x["body"].get("Target", [])) == prev_targets]
        if not prev:
            return f"I1: {address} revision {rev}: wave {names[idx]} created before wave {names[idx - 1]}"
        counts = e["counts"].get(prev[-1]["id"])
        gate = dict(GATE_DEFAULTS, **spec["gate"])
        gate.update(spec["waves"][idx - 1].get("gate") or {})
        verdict = judge(gate, counts["details"] if counts else None)
        hold = spec.get("hold")
        if hold in names and names.index(hold) <= idx - 1:
            return f"I1: {address}: wave {names[idx]} created past holdAfter {hold}"
        if spec.get("paused"):
            return f"I1: {address}: wave {names[idx]} created while paused"
        if verdict != "pass":
            return (f"I1: {address} revision {rev}: wave {names[idx]} created while wave {names[idx - 1]} was "
                    f"'{verdict}' by its gate {gate}: {counts}")
        if gate["soak"]:
            first = self.first_pass(prev[-1]["id"], tasks, gate)
            if first is not None and e["time"] < first + gate["soak"] - 0.05:
                return (f"I1: {address}: wave {names[idx]} created {e['time'] - first:.2f}s after "
                        f"{names[idx - 1]} passed, before its soak of {gate['soak']}s")
        return None

    def first_pass(self, task_id, tasks, gate):
        """The service's (frozen) moment of the first run at which the task passed."""
        t = tasks.get(task_id)
        if not t:
            return None
        configs = {c["TaskConfigurationId"]: c for c in self.emu.control("configurations")}
        for r in self.runs:
            if r["vnow"] and r["vnow"] >= t["CreatedAt"] and judge(gate, progress(t, r["vnow"], configs)) == "pass":
                return r["vnow"]
        return None

    def check_duplicates(self, tasks):
        seen = {}
        for t in tasks.values():
            if t.get("Deleted") or t["TaskId"] in self.foreign:
                continue
            tags = t.get("Tags") or {}
            key = json.dumps([tags.get("ota-runner:address"), tags.get("ota-runner:revision"), t.get("S3Url"),
                              sorted(t.get("Target") or []), t.get("OtaTargetQueryString"),
                              {k: v for k, v in tags.items() if not k.startswith("ota-runner:")}], sort_keys=True)
            if key in seen:
                raise Violation(f"I3: tasks {seen[key]} and {t['TaskId']} are live for one body: {key}")
            seen[key] = t["TaskId"]

    def check_settled(self, apply_out):
        """I4, right after an apply that exited 0."""
        rc, out, err = self.fleet.run("plan", "--refresh", "full", "--output", "json")
        if rc != 0:
            raise Violation(f"I4: plan --refresh full after a successful apply failed (rc {rc}): {err}")
        plan = json.loads(out)
        for a in plan["actions"]:
            soak_ended = a["resource"] == "OtaRollout" and a["kind"] == "create" and \
                (a.get("reason") or "").startswith("starts wave")
            # an old configuration kept while something used it, or by --refresh none: a later run
            # deletes it (docs/reference.md: retired)
            retired_left = a["kind"] == "delete" and a.get("retired")
            if not soak_ended and not retired_left and a["kind"] != "orphan":  # an orphan waits for --prune
                raise Violation(f"I4: after a successful apply the plan still wants {a['kind']} "
                                f"{a['address']} ({a.get('reason')})\napply said:\n{apply_out}")
        state = self.read_state()
        if state is None:
            return
        recorded = set()
        for section in ("tasks", "configurations", "rollouts"):
            for rec in state.get(section, {}).values():
                for key in ("taskId", "taskConfigurationId"):
                    if rec.get(key):
                        recorded.add(rec[key])
                for w in (rec.get("progress") or {}).get("waves", []):
                    if w.get("taskId"):
                        recorded.add(w["taskId"])
        recorded |= {r["id"] for r in state.get("retired", [])}
        live = {t["TaskId"]: t for t in self.emu.control("tasks") if not t.get("Deleted")}
        configs = {c["TaskConfigurationId"] for c in self.emu.control("configurations")}
        gone = [i for i in recorded if i not in live and i not in configs]
        if gone:
            raise Violation(f"I4: the state records {gone}, which the service no longer has")
        for tid, t in live.items():
            if tid in self.foreign or tid in recorded or tid in self.let_go:
                continue
            tags = t.get("Tags") or {}
            address = tags.get("ota-runner:address", "")
            if address.startswith("OtaRollout/"):
                rec = state.get("rollouts", {}).get(address.split("/", 1)[1])
                if rec and str(rec.get("revision")) != tags.get("ota-runner:revision"):
                    continue  # an older revision's wave: left alone (--prune deletes them)
                if rec is None and not self.has_manifest(self.files, "OtaRollout", address.split("/", 1)[1]):
                    continue  # a pruned rollout's older revision
            raise Violation(f"I4: the service has task {tid} ({address}), which ota-runner made, and the state "
                            f"does not record it")

    def read_state(self):
        f = self.fleet
        if not self.s3:
            return f.read_state()
        key = f.state[len(f"s3://{self.s3.bucket}/"):]
        try:
            return json.loads(self.s3.get(key))
        except Exception:  # noqa: BLE001 - no snapshot yet
            return None


def parse_rollout(text):
    """The parts of a rollout manifest the invariants read (its waves,
    targets, gates, holdAfter, paused), from the text this driver writes."""
    spec = {"waves": [], "gate": {}, "hold": None, "paused": False}
    wave = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("gate:") and line.startswith("  gate"):
            spec["gate"] = parse_gate(s[5:])
        elif s.startswith("holdAfter:"):
            spec["hold"] = s.split(":", 1)[1].strip()
        elif s == "paused: true":
            spec["paused"] = True
        elif s.startswith("- name:"):
            wave = {"name": s.split(":", 1)[1].strip(), "targets": [], "gate": None}
            spec["waves"].append(wave)
        elif s.startswith("Target:") and wave is not None:
            spec_targets = s.split(":", 1)[1].strip().strip("[]").split(", ")
            wave["targets"] = [x[len(ARN):] for x in spec_targets]
        elif s.startswith("gate:") and wave is not None:
            wave["gate"] = parse_gate(s[5:])
    return spec


def parse_gate(text):
    names = {"minSucceededPercent": "ok", "maxFailedPercent": "bad", "minFinished": "fin", "soak": "soak"}
    out = {}
    for part in text.strip().strip("{}").split(","):
        k, v = (x.strip() for x in part.split(":"))
        out[names[k]] = int(v.rstrip("s"))
    return out


def judge(g, d):
    """The gate on a task's counts (docs/rollouts.md)."""
    if not d:
        return "wait"
    succeeded = d["numberOfSucceededThings"]
    failed = d["NumberOfFailedThings"] + d["numberOfTimedOutThings"] + d["numberOfRejectedThings"]
    things = (succeeded + failed + d["numberOfQueuedThings"] + d["NumberOfInProgressThings"] +
              d["NumberOfCanceledThings"] + d["numberOfRemovedThings"])
    finished = succeeded + failed + d["NumberOfCanceledThings"]
    if not things:
        return "wait"
    if finished >= g["fin"] and failed * 100.0 / things > g["bad"]:
        return "halt"
    if finished >= g["fin"] and succeeded * 100.0 / things >= g["ok"]:
        return "pass"
    return "wait"


def progress(task, now, configs, tick=1.0):
    """The emulator's counts of task at now (its Store.progress, with the
    configurations its rollout rate comes from)."""
    import emulator
    store = emulator.Store(None, tick)
    store.lifecycle = True
    store.configs = configs
    return store.progress(task, now)[1]


def record(seed, w):
    """What a failing sequence did, for reading afterwards (a failure that
    hangs on timing may not replay): every run's output and the service's
    events, in chaos-seedN-record.json beside the replay file."""
    out = os.path.join(tempfile.gettempdir(), f"chaos-seed{seed}-record.json")
    try:
        events = w.events()
    except Exception as e:  # the emulator may be what broke
        events = [{"error": str(e)}]
    with open(out, "w") as f:
        json.dump({"seed": seed, "runs": w.runs, "events": events}, f, indent=1)


def run_sequence(runner, seed, steps, s3, verbose=False):
    """Runs steps in a new world; returns None, or (the failing step's index, why)."""
    w = World(runner, seed, s3)
    try:
        for i, st in enumerate(steps):
            try:
                w.step(st)
                w.check()
            except Violation as v:
                said = "".join(f"\n--- ota-runner {' '.join(r['args'])} (exit {r['rc']}):\n{r['out']}"
                               for r in w.runs[-3:])
                record(seed, w)
                return i, str(v) + (said if verbose else "")
            if verbose:
                print(f"  step {i}: {json.dumps(st)[:100]}", flush=True)
        return None
    finally:
        w.close()


def shrink(runner, seed, steps, s3, budget_s):
    """Drops steps while the sequence still fails (delta debugging, by halves
    then one at a time), within budget_s seconds."""
    deadline = time.time() + budget_s
    n = 2
    while len(steps) >= 2 and time.time() < deadline:
        chunk = max(1, len(steps) // n)
        shrunk = False
        for start in range(1, len(steps), chunk):  # the first commit stays
            trial = steps[:start] + steps[start + chunk:]
            if time.time() > deadline:
                break
            if run_sequence(runner, seed, trial, s3):
                steps, shrunk = trial, True
                break
        if not shrunk:
            if chunk == 1:
                break
            n = min(len(steps), n * 2)
    return steps


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default=None, help="A-B or a list: fixed seeds")
    p.add_argument("--minutes", type=float, default=None, help="new seeds for this long")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--s3-every", type=int, default=3, help="every Nth sequence keeps its state on S3 (moto)")
    p.add_argument("--replay", help="a failing sequence written by an earlier run")
    p.add_argument("--shrink-seconds", type=float, default=240)
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    runner = os.environ.get("OTA_RUNNER")
    if not runner:
        print("SKIP: OTA_RUNNER is not set (run under ctest, or export it)")
        return 77
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    s3 = None
    try:
        from harness import MotoS3
        s3 = MotoS3(bucket="ota-chaos")
    except ImportError:
        print("note: moto is not installed: every sequence keeps its state in a file")
    try:
        if a.replay:
            seq = json.load(open(a.replay))
            got = run_sequence(runner, seq["seed"], seq["steps"], s3 if seq.get("s3") else None, a.verbose)
            print("replayed: " + ("passes" if not got else f"fails at step {got[0]}: {got[1]}"))
            return 1 if got else 0
        if a.seeds:
            if "-" in a.seeds:
                lo, hi = a.seeds.split("-")
                seeds = list(range(int(lo), int(hi) + 1))
            else:
                seeds = [int(x) for x in a.seeds.split(",")]
        else:
            base = int(time.time())
            seeds = (base + i for i in range(10 ** 9))
        deadline = time.time() + a.minutes * 60 if a.minutes else None
        total_steps = sequences = 0
        for n, seed in enumerate(seeds):
            if deadline and time.time() > deadline:
                break
            on_s3 = bool(s3) and a.s3_every and n % a.s3_every == a.s3_every - 1
            steps = generate(seed, a.steps, on_s3)
            t0 = time.time()
            got = run_sequence(runner, seed, steps, s3 if on_s3 else None, a.verbose)
            sequences += 1
            total_steps += len(steps) if not got else got[0] + 1
            print(f"seed {seed}{' (S3)' if on_s3 else ''}: {len(steps)} steps, "
                  f"{'ok' if not got else 'FAILED at step %d' % got[0]} ({time.time() - t0:.1f} s)", flush=True)
            if got:
                print(f"  {got[1]}", flush=True)
                small = shrink(runner, seed, steps[:got[0] + 1], s3 if on_s3 else None, a.shrink_seconds)
                out = os.path.join(tempfile.gettempdir(), f"chaos-seed{seed}.json")
                with open(out, "w") as f:
                    json.dump({"seed": seed, "s3": on_s3, "steps": small}, f, indent=1)
                print(f"  shrunk to {len(small)} steps: replay with {sys.argv[0]} --replay {out}\n"
                      + json.dumps(small, indent=1), flush=True)
                return 1
        print(f"chaos: {sequences} sequences, {total_steps} steps, no invariant broken")
        return 0
    finally:
        if s3:
            s3.stop()


if __name__ == "__main__":
    sys.exit(main())
