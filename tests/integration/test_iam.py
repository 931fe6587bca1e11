#!/usr/bin/env python3
"""The IAM kit (examples/iam/) is exactly what ota-runner needs (issue 28).

- Every policy file is valid IAM: moto's IAM validates the identity policies
  (create_policy), the OIDC trust policies (create_role) and the bucket
  policy (put_bucket_policy); the trust policies name the subjects the docs
  say (main for apply, pull requests for plan).
- The emulator judges every call by the shipped policy of its caller
  (--principals), and moto, with its IAM enforcement on, judges the state's
  S3 calls by the same files: plan, diff and status as the plan role; apply
  (configurations, a rollout, tags in place, an update, a replace, a prune)
  and state rebuild as the apply role. No call is refused.
- The plan role cannot apply: the error names the refused action and the
  policy file that grants it; a policy without ListOtaTaskConfigurations
  fails the very first plan the same way (and does not point at --refresh
  none).
"""
import json
import os
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "emulator"))
from checks import check, finish, program  # noqa: E402
from fleet import Fleet, config, rollout, task  # noqa: E402
from harness import Emulator, MotoS3  # noqa: E402

RUNNER = program("OTA_RUNNER")
SOURCE = os.environ.get("OTR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
KIT = os.path.join(SOURCE, "examples", "iam")
ACCOUNT = "123456789012"
BUCKET = "ota-state"
KEY = "fleets/prod/state.json"
FILL = {"ACCOUNT_ID": ACCOUNT, "BUCKET": BUCKET, "STATE_KEY": KEY, "ORG/REPO": "acme/fleet",
        "GROUP/PROJECT": "acme/fleet"}

tmp = tempfile.mkdtemp(prefix="otr-iam-")


def filled(name):
    """The kit's file with its placeholders filled, as a user would."""
    with open(os.path.join(KIT, name)) as f:
        text = f.read()
    for k, v in FILL.items():
        text = text.replace(k, v)
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path, text


def boto(s3, service, keys=None):
    """A client of moto's; any key works until its IAM enforcement is on, then keys."""
    import boto3
    keys = keys or {"accessKeyId": "AKIDADMIN", "secretAccessKey": "admin-secret"}
    return boto3.client(service, endpoint_url=s3.url, region_name="us-east-1",
                        aws_access_key_id=keys["accessKeyId"], aws_secret_access_key=keys["secretAccessKey"])


def user(iam, name, policy_text):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="ota-runner", PolicyDocument=policy_text)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return {"accessKeyId": k["AccessKeyId"], "secretAccessKey": k["SecretAccessKey"]}


def kit_is_valid(s3):
    iam = boto(s3, "iam")
    names = sorted(os.listdir(KIT))
    for name in ("plan-policy.json", "apply-policy.json"):
        _, text = filled(name)
        got = iam.create_policy(PolicyName=name[:-5], PolicyDocument=text)
        check(got["Policy"]["Arn"].endswith(name[:-5]), f"kit: {name} is a valid identity policy")
    trusts = [n for n in names if "-trust-" in n]
    for name in trusts:
        _, text = filled(name)
        iam.create_role(RoleName=name[:-5], AssumeRolePolicyDocument=text)
        doc = json.loads(text)["Statement"][0]
        cond = json.dumps(doc["Condition"])
        want = "refs/heads/main" if name.startswith("github") and "apply" in name else \
            ":pull_request" if name.startswith("github") else \
            "ref_type:branch:ref:main" if "apply" in name else "ref_type:branch:ref:*"
        check(doc["Action"] == "sts:AssumeRoleWithWebIdentity" and want in cond and "sts.amazonaws.com" in cond,
              f"kit: {name} is a valid trust policy for {want}", cond)
    check(len(trusts) == 4, "kit: trust policies for GitHub and GitLab, plan and apply", str(trusts))
    _, text = filled("state-bucket-policy.json")
    boto(s3, "s3").put_bucket_policy(Bucket=BUCKET, Policy=text)
    check(json.loads(boto(s3, "s3").get_bucket_policy(Bucket=BUCKET)["Policy"]) == json.loads(text),
          "kit: state-bucket-policy.json is taken as the bucket's policy")
    # (moto judges it too, and its first statement refuses this test's plain HTTP)
    boto(s3, "s3").delete_bucket_policy(Bucket=BUCKET)
    check(os.path.exists(os.path.join(KIT, "README.md")), "kit: a README says how to use the files")


def denied(emu, since=0):
    return [e for e in emu.log()[since:] if e.get("error") in ("AccessDeniedException", "UnauthorizedException")]


def main():
    # moto 5 computes the signature of an S3 request whose query holds an
    # encoded "/" differently (boto3's own ListObjectsV2 with such a prefix is
    # refused): its signature check is left out, its policy check kept
    # (ota-runner's signatures are checked by the emulator here, and against
    # the SigV4 suite and botocore in test_sigv4_botocore)
    from moto.iam import access_control
    access_control.S3IAMRequest.check_signature = lambda self: None
    with MotoS3(BUCKET) as s3:
        kit_is_valid(s3)
        iam = boto(s3, "iam")
        admin = user(iam, "admin", json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        plan_path, plan_text = filled("plan-policy.json")
        apply_path, apply_text = filled("apply-policy.json")
        # moto authorises DeleteObjects as s3:DeleteObject on the bucket, where
        # S3 judges s3:DeleteObject on each key: for moto's S3 only, the apply
        # user also gets that one statement (the emulator judges the shipped file)
        moto_apply = json.loads(apply_text)
        moto_apply["Statement"].append({"Effect": "Allow", "Action": "s3:DeleteObject",
                                        "Resource": f"arn:aws:s3:::{BUCKET}"})
        roles = {"plan": user(iam, "ota-plan", plan_text), "apply": user(iam, "ota-apply", json.dumps(moto_apply))}
        # a role that lacks one read: the first plan must say which
        short = json.loads(plan_text)
        short["Statement"][0]["Action"].remove("iotmanagedintegrations:ListOtaTaskConfigurations")
        short_path = os.path.join(tmp, "short-policy.json")
        with open(short_path, "w") as f:
            json.dump(short, f)
        roles["short"] = user(iam, "ota-short", json.dumps(short))
        principals = {name: {**keys, "policies": [{"plan": plan_path, "apply": apply_path,
                                                   "short": short_path}[name]]}
                      for name, keys in roles.items()}
        principals_path = os.path.join(tmp, "principals.json")
        with open(principals_path, "w") as f:
            json.dump(principals, f)
        # from here moto judges every S3 call by its caller's policy
        req = urllib.request.Request(s3.url + "/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(req, timeout=10).read()
        emu = Emulator("--tick", "0", "--outcomes", '{"never": true}', "--principals", principals_path)
        f = Fleet(RUNNER, "iam", emulator=emu, state=f"s3://{BUCKET}/{KEY}", files={
            "push.yaml": config("push"),
            "t1.yaml": task("t1", ref="push"),
            "t2.yaml": task("t2", description="Two"),
            "fw.yaml": rollout("fw", waves=("w1", "w2"), ref="push")})

        def as_role(name, *args):
            keys = roles[name]
            return f.run(*args, AWS_ACCESS_KEY_ID=keys["accessKeyId"], AWS_SECRET_ACCESS_KEY=keys["secretAccessKey"],
                         AWS_ENDPOINT_URL_S3=s3.url, AWS_CONFIG_FILE="/dev/null",
                         AWS_SHARED_CREDENTIALS_FILE="/dev/null")

        try:
            rc, out, err = as_role("short", "plan")
            check(rc != 0 and "iotmanagedintegrations:ListOtaTaskConfigurations" in err
                  and "examples/iam/plan-policy.json" in err and "--refresh none" not in err,
                  "a role without ListOtaTaskConfigurations: the first plan names the action and the policy file",
                  out + err)
            before = len(emu.log())
            for args in (("plan",), ("status",)):
                rc, out, err = as_role("plan", *args)
                check(rc in (0, 2) and not denied(emu, before), f"the plan role runs {' '.join(args)} on an empty state",
                      out + err + str(denied(emu, before)))
            rc, out, err = as_role("plan", "apply")
            check(rc != 0 and ("s3:PutObject" in err or "iotmanagedintegrations:Create" in err)
                  and "examples/iam/" in err and not emu.live_tasks(),
                  "the plan role cannot apply: refused, naming the action and the kit", out + err)
            before = len(emu.log())
            rc, out, err = as_role("apply", "apply")
            check(rc == 0 and len(emu.live_tasks()) == 3 and not denied(emu, before),
                  "the apply role applies a configuration, two tasks and a rollout's first wave", out + err)
            check(all(e.get("principal") for e in emu.log()[before:]), "every call was judged by a shipped policy")
            # an update with tags changed in place, a replace, each by the apply role
            f.commit({"t1.yaml": task("t1", ref="push", description="Updated").replace(
                          "  OtaType: ONE_TIME\n", "  OtaType: ONE_TIME\n  Tags: {team: hvac}\n"),
                      "t2.yaml": task("t2", description="Two", targets=("t9",))}, "update, tag, replace")
            rc, out, err = as_role("apply", "apply", "--allow-cancel")
            ops = {e["op"] for e in emu.log()[before:]}
            check(rc == 0 and not denied(emu, before) and {"UpdateOtaTask", "TagResource", "DeleteOtaTask"} <= ops,
                  "the apply role updates, tags in place and replaces", out + err + str(sorted(ops)))
            f.commit({"t1.yaml": task("t1", ref="push", description="Updated")}, "untag")
            rc, out, err = as_role("apply", "apply")
            ops = {e["op"] for e in emu.log()[before:]}
            check(rc == 0 and not denied(emu, before) and "UntagResource" in ops,
                  "the apply role takes a tag off in place", out + err + str(sorted(ops)))
            f.commit({"t2.yaml": None, "push.yaml": config("push", rate=20)}, "prune t2, a new configuration")
            rc, out, err = as_role("apply", "apply", "--prune", "--allow-cancel")
            ops = {e["op"] for e in emu.log()[before:]}
            check(rc == 0 and not denied(emu, before) and "CreateOtaTaskConfiguration" in ops,
                  "the apply role prunes and replaces a configuration", out + err + str(sorted(ops)))
            for args in (("plan",), ("status",), ("status", "--devices"), ("diff", "HEAD~2"),
                         ("plan", "--refresh", "full")):
                rc, out, err = as_role("plan", *args)
                check(rc in (0, 2) and not denied(emu, before), f"the plan role runs {' '.join(args)} on a fleet",
                      out + err + str(denied(emu, before)))
            # the state lost: the apply role rebuilds it (ListTagsForResource and the S3 writes)
            admin_s3 = boto(s3, "s3", admin)
            for key in [o["Key"] for o in admin_s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]:
                admin_s3.delete_object(Bucket=BUCKET, Key=key)
            rc, out, err = as_role("apply", "state", "rebuild")
            check(rc == 0 and "rebuilt from the service" in out and not denied(emu, before),
                  "the apply role rebuilds a lost state", out + err)
            rc, out, err = as_role("plan", "plan")
            check(rc == 0 and "No changes" in out and not denied(emu, before),
                  "the plan role plans on the rebuilt state: no changes", out + err)
            rc, out, err = as_role("plan", "state", "rebuild")
            check(rc != 0 and "examples/iam/" in err, "the plan role cannot write a state", out + err)
        finally:
            f.stop()
            emu.stop()


main()
finish()
