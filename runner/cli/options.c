/* Command-line parsing and help, driven by the command and option tables. */
#include "cli/options.h"

#include "cli/commands.h"
#include "manifest/schema.h"
#include "notify/notify.h"
#include "plan/plan.h"
#include "source/source.h"
#include "util/buf.h"
#include "util/time.h"
#include "state/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_GLOBAL = 1u << 0,
    OPT_SOURCE = 1u << 1,
    OPT_OUTPUT = 1u << 2,
    OPT_SERVICE = 1u << 3,
    OPT_STATE = 1u << 4,
    OPT_PLAN = 1u << 5, /* plan and apply */
    OPT_PLAN_ONLY = 1u << 6,
    OPT_APPLY_ONLY = 1u << 7,
    OPT_STATUS_ONLY = 1u << 8,
    OPT_EXITCODE = 1u << 9,   /* plan and diff */
    OPT_STATE_CMD = 1u << 10, /* the state command */
    OPT_GUARD = 1u << 11,     /* the refusals a plan is checked against (plan, apply, show) */
};

#define OUT(x) (1u << (x))

static const otr_command commands[] = {
    {"init", OPT_SOURCE, "",
     "write a starting fleet into a repository (and the next commands to run)",
     "Writes, under --path (default manifests) at the root of the repository at or\n"
     "above --repo (default the current folder; a new repository there when there is\n"
     "none): a task configuration, a staged rollout, a one-off task, each commented\n"
     "and valid, and the manifests' JSON Schema that their first line points editors\n"
     "at; adds the state file to .gitignore. Refuses a --path that exists: nothing is\n"
     "overwritten. Prints the next commands.\n",
     OUT(OTR_OUT_TEXT), otr_cmd_init},
    {"validate", OPT_SOURCE | OPT_OUTPUT, "",
     "load and validate every manifest (no network, no state)",
     "Reads the manifests from one commit of the repository, checks every rule of the\n"
     "service model and of the manifest format, and reports every problem as\n"
     "file:line:col: error: field: message. Exits 0 when all are valid, 1 otherwise.\n"
     "It reads one commit alone: whether an edit may be made to what has started (a\n"
     "rollout's task at the same revision) is for plan, with the state, or diff BASE.\n",
     OUT(OTR_OUT_TEXT) | OUT(OTR_OUT_JSON) | OUT(OTR_OUT_GITHUB), otr_cmd_validate},
    {"tokens", OPT_SOURCE | OPT_OUTPUT, "",
     "print address, ClientToken and file:line of every manifest (no network)",
     "The ClientToken is derived from the manifest's name, revision and canonical\n"
     "spec (a reference replaced by the token of the manifest it names): the same\n"
     "manifest gives the same token on every machine and every run; any change to the\n"
     "spec, the name, metadata.revision or what it refers to gives a new one.\n",
     OUT(OTR_OUT_TEXT) | OUT(OTR_OUT_JSON), otr_cmd_tokens},
    {"plan",
     OPT_SOURCE | OPT_OUTPUT | OPT_SERVICE | OPT_STATE | OPT_PLAN | OPT_PLAN_ONLY | OPT_EXITCODE,
     "", "show what apply would do",
     "Compares the manifests of one commit with the tasks and task configurations\n"
     "recorded in the state file (and, with --refresh, with what the service reports)\n"
     "and prints the actions: create, update (a task's Description /\n"
     "TaskConfigurationId only), replace (a task: delete, then create; a\n"
     "configuration: the new one, its tasks moved, the old one deleted), delete\n"
     "(--prune), orphan, and resume (finish an interrupted run).\n"
     "The whole plan is shown even when apply would refuse it (--max-deletes,\n"
     "--allow-cancel, --allow-empty); the refusal is shown as a warning. plan takes no\n"
     "lock: it works while an apply runs.\n"
     "With --detailed-exitcode: exit 0 when there are no changes, 2 when there are.\n",
     OUT(OTR_OUT_TEXT) | OUT(OTR_OUT_JSON) | OUT(OTR_OUT_MARKDOWN) | OUT(OTR_OUT_GITHUB),
     otr_cmd_plan},
    {"diff", OPT_SOURCE | OPT_OUTPUT | OPT_EXITCODE, "BASE [HEAD]",
     "compare the manifests of two commits (no state, no network)",
     "What a change does to the fleet, for a pull request that gets no credentials\n"
     "or state (one from a fork): every address added, removed or changed between\n"
     "BASE and HEAD (default --ref, else HEAD), and for a change whether it is made\n"
     "in place (an update) or by a replace (the plan's rules), field by field; a\n"
     "configuration's replace with the tasks it moves; for a rollout, the waves added\n"
     "or removed and a promotion (holdAfter moved on).\n"
     "With --detailed-exitcode: exit 0 when nothing changed, 2 when something did.\n",
     OUT(OTR_OUT_TEXT) | OUT(OTR_OUT_JSON) | OUT(OTR_OUT_MARKDOWN) | OUT(OTR_OUT_GITHUB),
     otr_cmd_diff},
    {"show", OPT_OUTPUT | OPT_EXITCODE | OPT_GUARD, "PLANFILE",
     "print a plan saved by plan --out, in any output format (no network, no state)",
     "Reads the plan that plan --out saved and prints it as plan would have: so a\n"
     "pipeline plans once and shows that plan twice (annotations, and a comment), and\n"
     "what is posted is what apply PLANFILE carries out. The refusals (--max-deletes,\n"
     "--allow-cancel, --allow-empty) are checked as plan checks them.\n"
     "With --detailed-exitcode: exit 0 when there are no changes, 2 when there are.\n",
     OUT(OTR_OUT_TEXT) | OUT(OTR_OUT_JSON) | OUT(OTR_OUT_MARKDOWN) | OUT(OTR_OUT_GITHUB),
     otr_cmd_show},
    {"apply", OPT_SOURCE | OPT_OUTPUT | OPT_SERVICE | OPT_STATE | OPT_PLAN | OPT_APPLY_ONLY,
     "[PLANFILE]", "create, update, replace and delete tasks, and record them in the state",
     "Makes the plan (or reads one saved with plan --out, which is applied only if the\n"
     "state and the source commit are unchanged since) and carries it out, each action\n"
     "after those it depends on (a configuration before its tasks). Every mutating call\n"
     "is journaled before it is sent, with a ClientToken derived from the manifest, so a\n"
     "retry, a crash or a second run never creates a duplicate.\n"
     "Refuses, before any call, a plan that deletes more than --max-deletes tasks,\n"
     "deletes a task the service reports running (without --allow-cancel), or prunes\n"
     "every task because no manifest is left (without --allow-empty).\n"
     "SIGINT / SIGTERM: starts nothing new, finishes the calls in flight, records them\n"
     "and exits 130 / 143; a second signal stops at once (the journal covers it).\n"
     "Each staged rollout's standing is shown, and a halted one is named in a warning\n"
     "and in the JSON's \"halted\".\n"
     "Exit 1 when any action failed (what succeeded is recorded), 3 when another run\n"
     "holds the state lock, 4 with --fail-on-halt when a rollout is halted and all\n"
     "else succeeded.\n",
     OUT(OTR_OUT_TEXT) | OUT(OTR_OUT_JSON), otr_cmd_apply},
    {"status", OPT_SOURCE | OPT_OUTPUT | OPT_SERVICE | OPT_STATE | OPT_STATUS_ONLY, "[ADDRESS...]",
     "recorded tasks, configurations and rollouts with their live status",
     "Asks the service (GetOtaTask, GetOtaTaskConfiguration) about every task,\n"
     "configuration and rollout's newest wave in the state file and prints its status\n"
     "and, for a task, its TaskProcessingDetails counts; for a staged rollout, each\n"
     "wave's state as the next apply would judge it (done, running, passed and\n"
     "soaking, held, halted and why).\n"
     "Text shows a bar of each task's devices: # succeeded, x failed, > running,\n"
     ". queued (in colour on a terminal); markdown the same table for a job summary.\n"
     "With --fail-on-halt: exit 4 when any rollout is halted.\n"
     "With --devices: each recorded task's devices (ListOtaTaskExecutions), or those of\n"
     "the ADDRESSes given (a rollout's wave by wave), by status: failed, timed out and\n"
     "rejected first, then in progress, queued, succeeded, canceled, removed; each with\n"
     "its managed thing id, retry attempt and last update. The first 50 of each status\n"
     "and every count are shown; --all shows every device.\n"
     "The source options are accepted, so that one set of flags works for every\n"
     "command in a script; status reads no manifest.\n",
     OUT(OTR_OUT_TEXT) | OUT(OTR_OUT_JSON) | OUT(OTR_OUT_MARKDOWN), otr_cmd_status},
    {"state", OPT_SOURCE | OPT_OUTPUT | OPT_SERVICE | OPT_STATE | OPT_STATE_CMD,
     "list | show ADDRESS | rm ADDRESS | mv ADDRESS ADDRESS | import ADDRESS ID | rebuild | "
     "unlock LOCK_ID | migrate --to URL",
     "read or change the state",
     "An ADDRESS is KIND/NAME (OtaTaskConfiguration/staged-push) or a task's NAME.\n"
     "list              every recorded task, configuration and rollout, and the retired\n"
     "                  configurations\n"
     "show ADDRESS      one record, as JSON\n"
     "rm ADDRESS        forget it (the resource itself is left in the service)\n"
     "mv ADDRESS NEW    record it under another name, with no call (a rename; a\n"
     "                  manifest's metadata.previousNames does the same in plan and apply)\n"
     "import ADDRESS ID\n"
     "                  adopt an existing task or configuration for that manifest, after\n"
     "                  checking it with a get; the next plan shows whether it matches\n"
     "rebuild           a lost state, from the service: each task and rollout wave by its\n"
     "                  ota-runner:address tag, each configuration by its content (the\n"
     "                  manifests at --ref); for a state that records nothing\n"
     "unlock LOCK_ID    break the S3 lock LOCK_ID of a run that is gone (the lock\n"
     "                  message names it)\n"
     "migrate --to URL  copy the state and its journal to another place (a file or\n"
     "                  s3://BUCKET/KEY) that holds none yet; the source is left as it is\n",
     OUT(OTR_OUT_TEXT) | OUT(OTR_OUT_JSON), otr_cmd_state},
    {"envs", OPT_SOURCE | OPT_OUTPUT, "",
     "list the environments of ota-runner.yaml, for a CI engine's fan-out",
     "Reads ota-runner.yaml at the root of the repository (at --ref) and prints its\n"
     "environments (those --env picks: all by default): a table (text), json, a\n"
     "GitHub Actions matrix (github-matrix: {\"include\": [{\"env\": ...}]}, for\n"
     "fromJSON), a GitLab parallel:matrix block (gitlab), or one name a line (names,\n"
     "for a Kubernetes Indexed Job's completion index). Each is a unit of its own:\n"
     "its credentials, its state and its lock.\n",
     OUT(OTR_OUT_TEXT) | OUT(OTR_OUT_JSON) | OUT(OTR_OUT_GITHUB_MATRIX) | OUT(OTR_OUT_GITLAB) |
         OUT(OTR_OUT_NAMES),
     otr_cmd_envs},
    {"version", 0, "", "print the version of ota-runner and of the libraries it runs with", "",
     OUT(OTR_OUT_TEXT), otr_cmd_version},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

typedef enum opt_id {
    O_HELP,
    O_VERBOSE,
    O_DEBUG,
    O_NO_COLOR,
    O_REPO,
    O_REF,
    O_PATH,
    O_WORKTREE,
    O_CACHE_DIR,
    O_FETCH_TIMEOUT,
    O_FETCH_IDLE_TIMEOUT,
    O_OUTPUT,
    O_REGION,
    O_ROLE_ARN,
    O_PROFILE,
    O_ENDPOINT_URL,
    O_PARALLELISM,
    O_MAX_RPS,
    O_MAX_ATTEMPTS,
    O_CONNECT_TIMEOUT,
    O_REQUEST_TIMEOUT,
    O_STATE,
    O_PRUNE,
    O_MAX_DELETES,
    O_TARGET,
    O_REFRESH,
    O_OUT,
    O_DETAILED_EXITCODE,
    O_FAIL_FAST,
    O_AUTO_APPROVE,
    O_ALLOW_CANCEL,
    O_ALLOW_EMPTY,
    O_ALLOW_OLDER,
    O_NO_ADOPT,
    O_MIGRATE_ENDPOINT,
    O_FAIL_ON_HALT,
    O_DEVICES,
    O_ALL,
    O_NOTIFY,
    O_NOTIFY_REQUIRED,
    O_METRICS_FILE,
    O_PUSHGATEWAY,
    O_ENV,
    O_PARALLEL_ENVS,
    O_ALLOWED_SIGNERS,
    O_OPENPGP_KEYS,
    O_VERIFY_COMMITS,
    O_REQUIRE_AUTHORS,
    O_RETRY_MODE,
    O_LOCK_TIMEOUT,
    O_LOCK_STALE_AFTER,
    O_TO,
} opt_id;

typedef struct option_spec {
    opt_id id;
    const char *name;
    char short_name;
    unsigned group;
    const char *arg; /* NULL: a flag */
    const char *help;
} option_spec;

static const option_spec options[] = {
    {O_HELP, "help", 'h', OPT_GLOBAL, NULL, "show help and exit"},
    {O_VERBOSE, "verbose", 'v', OPT_GLOBAL, NULL, "say more on stderr"},
    {O_DEBUG, "debug", 0, OPT_GLOBAL, NULL, "say everything on stderr (never secrets)"},
    {O_NO_COLOR, "no-color", 0, OPT_GLOBAL, NULL, "no colour (also when NO_COLOR is set)"},
    {O_REPO, "repo", 0, OPT_SOURCE, "PATH|URL",
     "repository to read (default: the one around the current folder); a URL is\n"
     "mirrored into --cache-dir and fetched on every run"},
    {O_REF, "ref", 0, OPT_SOURCE, "REF",
     "branch, tag, remote-tracking branch or commit id (default HEAD)"},
    {O_PATH, "path", 0, OPT_SOURCE, "DIR",
     "folder of manifests in the repository (default manifests); every *.yaml\n"
     "and *.yml below it is read. Several, side by side: DIR:DIR, or the option\n"
     "given again (a shared folder and an environment's own)"},
    {O_WORKTREE, "worktree", 0, OPT_SOURCE, NULL,
     "read the working tree instead of the commit (for local authoring)"},
    {O_CACHE_DIR, "cache-dir", 0, OPT_SOURCE, "DIR",
     "where URLs are mirrored (default $XDG_CACHE_HOME/ota-runner or\n"
     "~/.cache/ota-runner)"},
    {O_FETCH_TIMEOUT, "fetch-timeout", 0, OPT_SOURCE, "DURATION",
     "stop a URL's fetch that takes longer than this (default 10m)"},
    {O_FETCH_IDLE_TIMEOUT, "fetch-idle-timeout", 0, OPT_SOURCE, "DURATION",
     "stop a URL's fetch that makes no progress for this long (default 60s)"},
    {O_ENV, "env", 0, OPT_SOURCE, "NAME|all|KEY=VALUE",
     "run for environments of ota-runner.yaml at the repository's root: one\n"
     "(its region, profile, paths and state), or each of several as its own run\n"
     "(all, or those with the labels), in parallel, output grouped, a closing table"},
    {O_PARALLEL_ENVS, "parallel-envs", 0, OPT_SOURCE, "N",
     "with several environments: how many run at once (default 4)"},
    {O_ALLOWED_SIGNERS, "allowed-signers", 0, OPT_SOURCE, "FILE",
     "read only a commit signed (git commit -S, SSH or OpenPGP) by a key\n"
     "this file lists for its committer (git's allowed-signers format; an\n"
     "OpenPGP key as 'openpgp FINGERPRINT'; default: OTA_RUNNER_ALLOWED_SIGNERS)"},
    {O_OPENPGP_KEYS, "openpgp-keys", 0, OPT_SOURCE, "FILE",
     "the OpenPGP public keys (armored, as gpg exports them) the allowed\n"
     "signers name by fingerprint (default: OTA_RUNNER_OPENPGP_KEYS)"},
    {O_VERIFY_COMMITS, "verify-commits", 0, OPT_SOURCE, "MODE",
     "with --allowed-signers: head (default), or range: also every commit\n"
     "since the state's last applied one, along first parents, that changes\n"
     "a manifest (plan, apply; a merge's signer vouches for what it brings in)"},
    {O_REQUIRE_AUTHORS, "require-author-signatures", 0, OPT_SOURCE, NULL,
     "with --verify-commits range: a merge is trusted only when each commit\n"
     "it brings in that changes a manifest is signed by an allowed signer too"},
    {O_OUTPUT, "output", 'o', OPT_OUTPUT, "FORMAT", "output format: see above"},
    {O_REGION, "region", 0, OPT_SERVICE, "REGION",
     "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's)"},
    {O_PROFILE, "profile", 0, OPT_SERVICE, "NAME", "profile of ~/.aws/config and credentials"},
    {O_ROLE_ARN, "role-arn", 0, OPT_SERVICE, "ARN",
     "assume this role (sts:AssumeRole) with the credentials otherwise found"},
    {O_ENDPOINT_URL, "endpoint-url", 0, OPT_SERVICE, "URL",
     "the service's URL (https; http only to loopback)"},
    {O_PARALLELISM, "parallelism", 0, OPT_SERVICE, "N", "calls in flight at once (default 8)"},
    {O_MAX_RPS, "max-rps", 0, OPT_SERVICE, "R", "at most R calls per second (default: no limit)"},
    {O_MAX_ATTEMPTS, "max-attempts", 0, OPT_SERVICE, "N",
     "attempts per call, retries included (default 3)"},
    {O_RETRY_MODE, "retry-mode", 0, OPT_SERVICE, "MODE",
     "standard (default) or adaptive: a client-side rate limiter that\nfollows the service's "
     "throttling (also AWS_RETRY_MODE, a profile's retry_mode)"},
    {O_CONNECT_TIMEOUT, "connect-timeout", 0, OPT_SERVICE, "S", "seconds to connect (default 10)"},
    {O_REQUEST_TIMEOUT, "request-timeout", 0, OPT_SERVICE, "S",
     "seconds for one attempt (default 60)"},
    {O_STATE, "state", 0, OPT_STATE, "FILE|URL",
     "state file, or s3://BUCKET/KEY[?region=R] (default: OTA_RUNNER_STATE,\n"
     "else ota-runner.state.json at the repository's root)"},
    {O_LOCK_TIMEOUT, "lock-timeout", 0, OPT_STATE, "DURATION",
     "wait this long (30s, 5m) for a lock another run holds (default: exit 3 at once)"},
    {O_LOCK_STALE_AFTER, "lock-stale-after", 0, OPT_STATE, "DURATION",
     "an S3 lock not renewed for this long is taken over (default 15m)"},
    {O_TO, "to", 0, OPT_STATE_CMD, "FILE|URL", "state migrate: where to copy the state to"},
    {O_PRUNE, "prune", 0, OPT_PLAN, NULL, "delete tasks whose manifest is gone"},
    {O_MAX_DELETES, "max-deletes", 0, OPT_PLAN | OPT_GUARD, "N",
     "refuse a run that would delete more than N tasks,\nreplacements included (default 10)"},
    {O_ALLOW_CANCEL, "allow-cancel", 0, OPT_PLAN | OPT_GUARD, NULL,
     "replace or delete tasks the service reports SCHEDULED or\nIN_PROGRESS (their devices' "
     "executions are cancelled)"},
    {O_ALLOW_EMPTY, "allow-empty", 0, OPT_PLAN | OPT_GUARD, NULL,
     "let --prune delete every task when no manifest is left"},
    {O_ALLOW_OLDER, "allow-older", 0, OPT_PLAN, NULL,
     "apply a commit that does not contain the one the state's last apply\nread (an older "
     "commit, or a rewritten history): a rollback on purpose"},
    {O_NO_ADOPT, "no-adopt", 0, OPT_PLAN, NULL,
     "with --refresh none and a state that records nothing: create every\nmanifest's "
     "resource without looking for the ones the service holds (a lost\nstate is then made "
     "twice once the service forgot its ClientTokens)"},
    {O_MIGRATE_ENDPOINT, "migrate-endpoint", 0, OPT_PLAN, NULL,
     "use a state made for another endpoint or region here\n(its tasks are created anew)"},
    {O_TARGET, "target", 0, OPT_PLAN, "ADDRESS",
     "only this manifest (repeatable): KIND/NAME, or a task's NAME"},
    {O_REFRESH, "refresh", 0, OPT_PLAN, "MODE",
     "none, list (default: one list call per kind), or full\n(also a get per recorded resource: "
     "drift)"},
    {O_OUT, "out", 0, OPT_PLAN_ONLY, "FILE", "save the plan for apply FILE"},
    {O_DETAILED_EXITCODE, "detailed-exitcode", 0, OPT_EXITCODE, NULL,
     "exit 0: no changes, 2: changes, 1: error"},
    {O_FAIL_FAST, "fail-fast", 0, OPT_APPLY_ONLY, NULL, "stop at the first failed action"},
    {O_NOTIFY, "notify", 0, OPT_APPLY_ONLY, "URL",
     "tell URL what the rollouts did and a failed apply (repeatable): a CloudEvent,\nsigned "
     "with OTA_RUNNER_NOTIFY_SECRET; slack+https://... posts a Slack message"},
    {O_NOTIFY_REQUIRED, "notify-required", 0, OPT_APPLY_ONLY, NULL,
     "exit 1 when a notification could not be delivered (default: a warning)"},
    {O_METRICS_FILE, "metrics-file", 0, OPT_APPLY_ONLY, "PATH",
     "write the run's metrics (Prometheus text format) to PATH, atomically,\nfor "
     "node_exporter's textfile collector"},
    {O_PUSHGATEWAY, "pushgateway", 0, OPT_APPLY_ONLY, "URL",
     "push the run's metrics to this Prometheus Pushgateway (job ota-runner)"},
    {O_AUTO_APPROVE, "auto-approve", 0, OPT_APPLY_ONLY, NULL,
     "on a terminal, apply without asking (no terminal, or a saved plan: never asks)"},
    {O_DEVICES, "devices", 0, OPT_STATUS_ONLY, NULL,
     "each task's devices (a rollout's, wave by wave), failed first; ADDRESS...\nnames which"},
    {O_ALL, "all", 0, OPT_STATUS_ONLY, NULL,
     "with --devices: every device (default: the first 50 of each status)"},
    {O_FAIL_ON_HALT, "fail-on-halt", 0, OPT_STATUS_ONLY | OPT_APPLY_ONLY, NULL,
     "exit 4 when a staged rollout is halted (apply: once all else succeeded)"},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static const char *const output_names[] = {"text",          "json",   "markdown", "github",
                                           "github-matrix", "gitlab", "names",    NULL};

static const otr_command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static unsigned accepted_groups(const otr_command *cmd)
{
    return OPT_GLOBAL | (cmd ? cmd->options : 0);
}

static const option_spec *find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].name) == len && !strncmp(options[i].name, name, len))
            return &options[i];
    return NULL;
}

static const option_spec *find_short(char c)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].short_name == c)
            return &options[i];
    return NULL;
}

static const char *prog_name(const otr_command *cmd)
{
    static char buf[64];
    snprintf(buf, sizeof(buf), "ota-runner%s%s", cmd ? " " : "", cmd ? cmd->name : "");
    return buf;
}

static int usage_error(const otr_command *cmd, const char *fmt, const char *arg,
                       const char *suggestion)
{
    fprintf(stderr, "%s: ", prog_name(cmd));
    fprintf(stderr, fmt, arg);
    if (suggestion)
        fprintf(stderr, "; did you mean %s?", suggestion);
    fprintf(stderr, " (see '%s --help')\n", prog_name(cmd));
    return -1;
}

static const char *suggest_option(const otr_command *cmd, const char *name, size_t len)
{
    static char buf[64];
    const char *words[NOPTIONS + 1];
    size_t n = 0;
    unsigned groups = accepted_groups(cmd);
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].group & groups)
            words[n++] = options[i].name;
    words[n] = NULL;
    char given[64];
    snprintf(given, sizeof(given), "%.*s", (int)(len < 63 ? len : 63), name);
    const char *near = otr_schema_suggest_word(words, given);
    if (!near)
        return NULL;
    snprintf(buf, sizeof(buf), "--%s", near);
    return buf;
}

static int set_output(otr_options *o, const char *value)
{
    for (size_t i = 0; output_names[i]; i++) {
        if (strcmp(output_names[i], value) != 0)
            continue;
        if (o->command && !(o->command->outputs & OUT(i)))
            break;
        o->output = (otr_output)i;
        return 0;
    }
    return usage_error(o->command, "--output %s is not available here", value, NULL);
}

static int number(const otr_options *o, const option_spec *opt, const char *value, double min,
                  double max, double *out)
{
    char *end;
    double v = strtod(value, &end);
    if (!*value || *end || v < min || v > max) {
        char msg[160];
        snprintf(msg, sizeof(msg), "--%s needs a number from %g to %g, got '%%s'", opt->name, min,
                 max);
        return usage_error(o->command, msg, value, NULL);
    }
    *out = v;
    return 0;
}

/* value at the end of a NULL-ended list of n (a repeatable option). */
static int append(const otr_options *o, const char ***list, size_t *n, const char *value)
{
    const char **t = realloc(*list, (*n + 2) * sizeof(*t));
    if (!t)
        return usage_error(o->command, "%s", "out of memory", NULL);
    t[(*n)++] = value;
    t[*n] = NULL;
    *list = t;
    return 0;
}

static int add_notify(otr_options *o, const char *value)
{
    otr_error err = OTR_ERROR_INIT;
    if (otr_notify_check_url(value, &err) < 0) {
        int rc = usage_error(o->command, "%s", otr_error_message(&err), NULL);
        otr_error_clear(&err);
        return rc;
    }
    return append(o, &o->notify, &o->nnotify, value);
}

static int set_refresh(otr_options *o, const char *value)
{
    if (!strcmp(value, "none"))
        o->refresh = OTR_REFRESH_NONE;
    else if (!strcmp(value, "list"))
        o->refresh = OTR_REFRESH_LIST;
    else if (!strcmp(value, "full"))
        o->refresh = OTR_REFRESH_FULL;
    else
        return usage_error(o->command, "--refresh must be none, list or full, got '%s'", value,
                           NULL);
    return 0;
}

int otr_options_uses_state(const otr_options *o)
{
    return o->command && (o->command->options & OPT_STATE);
}

const char *otr_options_state_path(const otr_options *o)
{
    const char *env = getenv("OTA_RUNNER_STATE");
    if (o->state_path)
        return o->state_path;
    if (env && *env)
        return env;
    return o->default_state ? o->default_state : OTR_STATE_DEFAULT_PATH;
}

/* The default state file: at the root of the repository's working tree,
 * wherever in it ota-runner is run from (a URL's: the folder run from). */
static void default_state(otr_options *o)
{
    char *root = otr_source_root(o->repo ? o->repo : ".");
    otr_buf b = OTR_BUF_INIT;
    if (root && otr_buf_printf(&b, "%s%s", root, OTR_STATE_DEFAULT_PATH) == 0)
        o->default_state = otr_buf_detach(&b);
    otr_buf_free(&b);
    free(root);
}

void otr_options_state_where(const otr_options *o, otr_state_where *w)
{
    otr_state_where init = OTR_STATE_WHERE_INIT;
    *w = init;
    w->location = otr_options_state_path(o);
    w->region = o->region;
    w->profile = o->profile;
    w->lock_timeout_ms = o->lock_timeout_ms;
    w->lock_stale_s = o->lock_stale_s;
    w->max_attempts = o->max_attempts;
    w->connect_timeout_ms = o->connect_timeout_ms;
    w->request_timeout_ms = o->request_timeout_ms;
}

const char *otr_options_allowed_signers(const otr_options *o)
{
    const char *env = getenv("OTA_RUNNER_ALLOWED_SIGNERS");
    if (o->allowed_signers)
        return o->allowed_signers;
    return env && *env ? env : NULL;
}

const char *otr_options_openpgp_keys(const otr_options *o)
{
    const char *env = getenv("OTA_RUNNER_OPENPGP_KEYS");
    if (o->openpgp_keys)
        return o->openpgp_keys;
    return env && *env ? env : NULL;
}

/* --path again: the folders joined by ':', as one --path A:B. */
static int add_path(otr_options *o, const char *value)
{
    if (!o->path) {
        o->path = value;
        return 0;
    }
    size_t n = strlen(o->path) + strlen(value) + 2;
    char *joined = malloc(n);
    if (!joined)
        return usage_error(o->command, "%s", "out of memory", NULL);
    snprintf(joined, n, "%s:%s", o->path, value);
    free(o->paths_joined);
    o->path = o->paths_joined = joined;
    return 0;
}

static int apply_option(otr_options *o, const option_spec *opt, const char *value)
{
    double v = 0;
    if (opt->arg && !value)
        return usage_error(o->command, "option --%s needs a value", opt->name, NULL);
    switch (opt->id) {
    case O_HELP: o->help = 1; break;
    case O_VERBOSE: o->verbose++; break;
    case O_DEBUG:
        o->debug = 1;
        o->verbose = 2;
        break;
    case O_NO_COLOR: o->no_color = 1; break;
    case O_REPO: o->repo = value; break;
    case O_REF: o->ref = value; break;
    case O_PATH: return add_path(o, value);
    case O_WORKTREE: o->worktree = 1; break;
    case O_CACHE_DIR: o->cache_dir = value; break;
    case O_OUTPUT: return set_output(o, value);
    case O_REGION: o->region = value; break;
    case O_PROFILE: o->profile = value; break;
    case O_ENDPOINT_URL: o->endpoint_url = value; break;
    case O_PARALLELISM:
        if (number(o, opt, value, 1, 256, &v) < 0)
            return -1;
        o->parallelism = (int)v;
        break;
    case O_PARALLEL_ENVS:
        if (number(o, opt, value, 1, 64, &v) < 0)
            return -1;
        o->parallel_envs = (int)v;
        break;
    case O_MAX_RPS:
        if (number(o, opt, value, 0, 100000, &v) < 0)
            return -1;
        o->max_rps = v;
        break;
    case O_MAX_ATTEMPTS:
        if (number(o, opt, value, 1, 20, &v) < 0)
            return -1;
        o->max_attempts = (int)v;
        break;
    case O_CONNECT_TIMEOUT:
        if (number(o, opt, value, 0.001, 3600, &v) < 0)
            return -1;
        o->connect_timeout_ms = (long)(v * 1000);
        break;
    case O_REQUEST_TIMEOUT:
        if (number(o, opt, value, 0.001, 86400, &v) < 0)
            return -1;
        o->request_timeout_ms = (long)(v * 1000);
        break;
    case O_STATE: o->state_path = value; break;
    case O_FETCH_TIMEOUT:
    case O_FETCH_IDLE_TIMEOUT: {
        int64_t seconds;
        if (otr_time_parse_duration(value, &seconds) < 0 || seconds < 1 || seconds > 24LL * 3600)
            return usage_error(o->command,
                               opt->id == O_FETCH_TIMEOUT
                                   ? "--fetch-timeout needs a duration from 1s to 24h, got '%s'"
                                   : "--fetch-idle-timeout needs a duration from 1s to 24h, "
                                     "got '%s'",
                               value, NULL);
        if (opt->id == O_FETCH_TIMEOUT)
            o->fetch_total_s = (int)seconds;
        else
            o->fetch_idle_s = (int)seconds;
        break;
    }
    case O_LOCK_TIMEOUT:
    case O_LOCK_STALE_AFTER: {
        int64_t seconds;
        if (otr_time_parse_duration(value, &seconds) < 0 || seconds > 7LL * 24 * 3600 ||
            (opt->id == O_LOCK_STALE_AFTER && seconds < 1))
            return usage_error(o->command,
                               opt->id == O_LOCK_TIMEOUT
                                   ? "--lock-timeout needs a duration such as 30s, 5m or 1h, "
                                     "got '%s'"
                                   : "--lock-stale-after needs a duration such as 5m or 1h, "
                                     "got '%s'",
                               value, NULL);
        if (opt->id == O_LOCK_TIMEOUT)
            o->lock_timeout_ms = (long)seconds * 1000;
        else
            o->lock_stale_s = (long)seconds;
        break;
    }
    case O_TO: o->to = value; break;
    case O_PRUNE: o->prune = 1; break;
    case O_MAX_DELETES:
        if (number(o, opt, value, 0, 1e9, &v) < 0)
            return -1;
        o->max_deletes = (int)v;
        break;
    case O_TARGET: return append(o, &o->targets, &o->ntargets, value);
    case O_REFRESH: return set_refresh(o, value);
    case O_OUT: o->out = value; break;
    case O_DETAILED_EXITCODE: o->detailed_exitcode = 1; break;
    case O_FAIL_FAST: o->fail_fast = 1; break;
    case O_AUTO_APPROVE: o->auto_approve = 1; break;
    case O_FAIL_ON_HALT: o->fail_on_halt = 1; break;
    case O_DEVICES: o->devices = 1; break;
    case O_NOTIFY: return add_notify(o, value);
    case O_NOTIFY_REQUIRED: o->notify_required = 1; break;
    case O_METRICS_FILE: o->metrics_file = value; break;
    case O_PUSHGATEWAY: o->pushgateway = value; break;
    case O_ALL: o->all = 1; break;
    case O_ALLOWED_SIGNERS: o->allowed_signers = value; break;
    case O_OPENPGP_KEYS: o->openpgp_keys = value; break;
    case O_ROLE_ARN: o->role_arn = value; break;
    case O_ENV: o->env = value; break;
    case O_REQUIRE_AUTHORS: o->require_authors = 1; break;
    case O_RETRY_MODE: o->retry_mode = value; break;
    case O_VERIFY_COMMITS:
        if (strcmp(value, "head") && strcmp(value, "range"))
            return usage_error(o->command, "--verify-commits must be head or range, got '%s'",
                               value, NULL);
        o->verify_range = !strcmp(value, "range");
        o->verify_asked = 1;
        break;
    case O_ALLOW_CANCEL: o->allow_cancel = 1; break;
    case O_ALLOW_EMPTY: o->allow_empty = 1; break;
    case O_ALLOW_OLDER: o->allow_older = 1; break;
    case O_NO_ADOPT: o->no_adopt = 1; break;
    case O_MIGRATE_ENDPOINT: o->migrate_endpoint = 1; break;
    }
    return 0;
}

/* Global options may come before or after the command (ota-runner -v
 * validate); a command's own options come after it, as with git and
 * terraform. */
int otr_options_parse(otr_options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->max_deletes = OTR_PLAN_DEFAULT_MAX_DELETES;
    o->args = calloc((size_t)argc + 1, sizeof(char *));
    const char *output_value = NULL;
    if (!o->args)
        return usage_error(NULL, "%s", "out of memory", NULL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const option_spec *opt = NULL;
        const char *value = NULL;
        if (!strcmp(a, "--")) {
            while (++i < argc)
                o->args[o->nargs++] = argv[i];
            break;
        }
        if (a[0] == '-' && a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            opt = find_long(name, len);
            if (!opt || !(opt->group & accepted_groups(o->command))) {
                char shown[80];
                snprintf(shown, sizeof(shown), "--%.*s", (int)(len < 64 ? len : 64), name);
                return usage_error(o->command, "unknown option %s", shown,
                                   suggest_option(o->command, name, len));
            }
            if (eq && !opt->arg)
                return usage_error(o->command, "option --%s takes no value", opt->name, NULL);
            value = eq ? eq + 1 : NULL;
        } else if (a[0] == '-' && a[1] && !a[2]) {
            opt = find_short(a[1]);
            if (!opt || !(opt->group & accepted_groups(o->command)))
                return usage_error(o->command, "unknown option %s", a, NULL);
        } else if (!o->command) {
            o->command = find_command(a);
            if (!o->command) {
                const char *words[NCOMMANDS + 1];
                for (size_t k = 0; k < NCOMMANDS; k++)
                    words[k] = commands[k].name;
                words[NCOMMANDS] = NULL;
                return usage_error(NULL, "unknown command '%s'", a,
                                   otr_schema_suggest_word(words, a));
            }
            continue;
        } else {
            o->args[o->nargs++] = a;
            continue;
        }
        if (opt->arg && !value) {
            if (i + 1 >= argc)
                return usage_error(o->command, "option --%s needs a value", opt->name, NULL);
            value = argv[++i];
        }
        if (opt->id == O_OUTPUT) {
            output_value = value; /* checked against the command below */
            continue;
        }
        if (apply_option(o, opt, value) < 0)
            return -1;
    }
    if (output_value && set_output(o, output_value) < 0)
        return -1;
    if (o->require_authors && !o->verify_range) /* asked for a check that would not run */
        return usage_error(o->command, "%s needs --verify-commits range",
                           "--require-author-signatures", NULL);
    if (o->command && !o->help && o->nargs && !o->command->args[0])
        return usage_error(o->command, "unexpected argument '%s'", o->args[0], NULL);
    if (o->command && !o->help && (o->command->options & OPT_STATE) && !o->state_path)
        default_state(o);
    return 0;
}

void otr_options_free(otr_options *o)
{
    free(o->paths_joined);
    o->paths_joined = NULL;
    free(o->default_state);
    o->default_state = NULL;
    free(o->args);
    free(o->targets);
    free(o->notify);
    o->notify = NULL;
    o->args = NULL;
    o->targets = NULL;
}

static void print_options(unsigned groups)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const option_spec *opt = &options[i];
        if (!(opt->group & groups))
            continue;
        char head[64];
        if (opt->short_name)
            snprintf(head, sizeof(head), "-%c, --%s%s%s", opt->short_name, opt->name,
                     opt->arg ? " " : "", opt->arg ? opt->arg : "");
        else
            snprintf(head, sizeof(head), "    --%s%s%s", opt->name, opt->arg ? " " : "",
                     opt->arg ? opt->arg : "");
        printf("  %-26s ", head);
        for (const char *p = opt->help; *p; p++) {
            putchar(*p);
            if (*p == '\n')
                printf("  %-26s ", "");
        }
        putchar('\n');
    }
}

void otr_options_print_help(const otr_command *cmd)
{
    if (!cmd) {
        printf(
            "ota-runner %s: declarative firmware OTA rollouts for AWS IoT Managed integrations\n\n"
            "Usage: ota-runner [global options] <command> [options]\n\nCommands:\n",
            OTR_VERSION);
        for (size_t i = 0; i < NCOMMANDS; i++)
            printf("  %-10s %s\n", commands[i].name, commands[i].summary);
        printf("\nGlobal options:\n");
        print_options(OPT_GLOBAL);
        printf("\nRun 'ota-runner <command> --help' for a command's options.\n"
               "Exit codes: 0 success, 1 error, 2 plan has changes (--detailed-exitcode),\n"
               "3 another run holds the state lock, 4 a staged rollout is halted (status or\n"
               "apply --fail-on-halt), 130 / 143 apply stopped by SIGINT / SIGTERM (what was done\n"
               "is recorded).\n");
        return;
    }
    printf("Usage: ota-runner %s [options]%s%s\n\n%s.\n\n%s", cmd->name, cmd->args[0] ? " " : "",
           cmd->args, cmd->summary, cmd->details);
    if (cmd->options & OPT_OUTPUT) {
        printf("\nOutput formats (--output):");
        for (size_t i = 0; output_names[i]; i++)
            if (cmd->outputs & OUT(i))
                printf(" %s", output_names[i]);
        printf("\n");
    }
    printf("\nOptions:\n");
    print_options(cmd->options | OPT_GLOBAL);
}
