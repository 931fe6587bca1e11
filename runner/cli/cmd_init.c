/* ota-runner init: a starting fleet in a repository (a configuration, a
 * staged rollout, a one-off task, the schema and a .gitignore), and the next
 * commands to run. Nothing that exists is overwritten. */
#include "cli/commands.h"
#include "cli/load.h"
#include "source/source.h"
#include "util/buf.h"

#include <errno.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* build/generated/schema_text.c, from manifests/schema/ota-runner-v1.schema.json */
extern const unsigned char otr_schema_text[];
extern const size_t otr_schema_text_len;

#define SCHEMA_COMMENT "# yaml-language-server: $schema=../schema/ota-runner-v1.schema.json\n"
#define CHANGE_ARN "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/"

static const char configuration[] = SCHEMA_COMMENT
    "# How a task's devices are reached: start slow, speed up as they succeed, stop\n"
    "# when more than one in ten fails. Tasks and rollouts name it with\n"
    "# TaskConfigurationRef: push. An edit here makes a new configuration and moves\n"
    "# the tasks that use it there.\n"
    "apiVersion: ota-runner/v1\n"
    "kind: OtaTaskConfiguration\n"
    "metadata:\n"
    "  name: push\n"
    "spec:\n"
    "  Name: Staged push\n"
    "  PushConfig:\n"
    "    RolloutConfig:\n"
    "      ExponentialRolloutRate:\n"
    "        BaseRatePerMinute: 10\n"
    "        IncrementFactor: 2\n"
    "        RateIncreaseCriteria: {numberOfSucceededThings: 50}\n"
    "      MaximumPerMinute: 200\n"
    "    AbortConfig:\n"
    "      AbortConfigCriteriaList:\n"
    "        - {Action: CANCEL, FailureType: FAILED, MinNumberOfExecutedThings: 10, "
    "ThresholdPercentage: 10}\n";

static const char rollout[] = SCHEMA_COMMENT
    "# A firmware image, staged: a canary of two devices, then 10% of the fleet (a\n"
    "# ring attribute), then everyone. Each wave is one OTA task; an apply starts\n"
    "# the next wave only once the one before passed its gate on the service's\n"
    "# counts and soaked. Run apply on a schedule (examples/) so it moves on.\n"
    "# change: the name, S3Url (the job document), the canary's things, the queries.\n"
    "apiVersion: ota-runner/v1\n"
    "kind: OtaRollout\n"
    "metadata:\n"
    "  name: firmware-1-0-0\n"
    "  revision: 1                # a new image: bump it (a new rollout from its canary)\n"
    "spec:\n"
    "  task:                      # every wave's CreateOtaTask fields, but the targets\n"
    "    Description: Firmware 1-0-0\n"
    "    S3Url: s3://CHANGE-firmware-bucket/1.0.0/job-document.json\n"
    "    OtaType: ONE_TIME\n"
    "    TaskConfigurationRef: push\n"
    "  gate:                      # checked before each next wave\n"
    "    minSucceededPercent: 98  # succeeded / the wave's things\n"
    "    maxFailedPercent: 2      # (failed + timed out + rejected) / the wave's things\n"
    "    minFinished: 2           # no verdict before this many things reached an end\n"
    "    soak: 1h                 # after the gate first passes, wait this long\n"
    "    deadline: 24h            # no pass within this time after the wave started: halt\n"
    "  holdAfter: canary          # start no wave after this one until a commit moves it\n"
    "  waves:\n"
    "    - name: canary\n"
    "      Target:\n"
    "        - " CHANGE_ARN "thCHANGE0001\n"
    "        - " CHANGE_ARN "thCHANGE0002\n"
    "    - name: ten-percent\n"
    "      OtaTargetQueryString: \"thingType:Device AND attributes.ring:early\"\n"
    "    - name: everyone\n"
    "      OtaTargetQueryString: \"thingType:Device AND attributes.ring:general\"\n"
    "      gate: {soak: 0s}\n";

static const char task[] =
    SCHEMA_COMMENT "# A one-off task: one image to a list of things, at once. Removing this file\n"
                   "# and applying with --prune deletes the task (--allow-cancel while it runs).\n"
                   "# change: the name, S3Url and Target.\n"
                   "apiVersion: ota-runner/v1\n"
                   "kind: OtaTask\n"
                   "metadata:\n"
                   "  name: hotfix-1-0-1\n"
                   "spec:\n"
                   "  Description: Hotfix 1-0-1 for two devices\n"
                   "  S3Url: s3://CHANGE-firmware-bucket/1.0.1/job-document.json\n"
                   "  OtaType: ONE_TIME\n"
                   "  TaskConfigurationRef: push\n"
                   "  Target:\n"
                   "    - " CHANGE_ARN "thCHANGE0003\n";

static const char ignore_line[] = "ota-runner.state.json*\n";

typedef struct planned_file {
    const char *rel; /* under the manifest folder, or NULL for .gitignore */
    const char *text;
    size_t len;
} planned_file;

/* mkdir -p of the folders above path (which is under root). */
static int make_parents(const char *path, otr_error *err)
{
    char *p = strdup(path);
    if (!p)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0777) < 0 && errno != EEXIST) {
            int e = errno;
            otr_error_set(err, OTR_ERR_IO, "cannot make %s: %s", p, strerror(e));
            free(p);
            return -1;
        }
        *s = '/';
    }
    free(p);
    return 0;
}

static int write_new(const char *path, const char *text, size_t len, otr_error *err)
{
    if (make_parents(path, err) < 0)
        return -1;
    FILE *f = fopen(path, "wx"); /* never over a file that exists */
    if (!f)
        return otr_error_set(err, OTR_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    int ok = fwrite(text, 1, len, f) == len;
    ok &= fclose(f) == 0;
    return ok ? 0 : otr_error_set(err, OTR_ERR_IO, "cannot write %s", path);
}

/* .gitignore gets the state's line, unless it has it. */
static int ignore_state(const char *root, otr_error *err)
{
    otr_buf path = OTR_BUF_INIT;
    int rc = otr_buf_printf(&path, "%s.gitignore", root) < 0
                 ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory")
                 : 0;
    FILE *f = rc == 0 ? fopen(path.ptr, "r") : NULL;
    char line[256];
    int found = 0;
    while (f && fgets(line, sizeof(line), f))
        found |= !strcmp(line, ignore_line) || !strcmp(line, "ota-runner.state.json*");
    int newline = 1;
    if (f) {
        newline = fseek(f, -1, SEEK_END) != 0 || fgetc(f) == '\n';
        fclose(f);
    }
    if (rc == 0 && !found) {
        FILE *a = fopen(path.ptr, "a");
        if (!a || fprintf(a, "%s# ota-runner's state: not a manifest, never reviewed\n%s",
                          newline ? "" : "\n", ignore_line) < 0)
            rc = otr_error_set(err, OTR_ERR_IO, "cannot write %s", path.ptr);
        if (a && fclose(a) != 0 && rc == 0)
            rc = otr_error_set(err, OTR_ERR_IO, "cannot write %s", path.ptr);
    }
    otr_buf_free(&path);
    return rc;
}

/* The repository at or above dir, or a new one at dir; its root, with a '/'. */
static char *repository_root(const char *dir, int *made, otr_error *err)
{
    char *root = otr_source_root(dir);
    git_repository *r = NULL;
    *made = 0;
    if (root)
        return root;
    if (otr_source_is_url(dir)) {
        otr_error_set(err, OTR_ERR_USAGE, "init writes into a folder, not a URL (%s)", dir);
        return NULL;
    }
    git_libgit2_init();
    if (git_repository_init(&r, dir, 0) < 0) {
        const git_error *e = git_error_last();
        otr_error_set(err, OTR_ERR_IO, "cannot make a git repository in %s: %s", dir,
                      e ? e->message : "unknown error");
    } else {
        *made = 1;
        root = strdup(git_repository_workdir(r));
    }
    git_repository_free(r);
    git_libgit2_shutdown();
    return root;
}

int otr_cmd_init(const otr_options *o)
{
    const char *dir = o->repo ? o->repo : ".";
    const char *folder = o->path ? o->path : "manifests";
    const planned_file files[] = {
        {"schema/ota-runner-v1.schema.json", (const char *)otr_schema_text, otr_schema_text_len},
        {"configurations/push.yaml", configuration, sizeof(configuration) - 1},
        {"rollouts/firmware-1-0-0.yaml", rollout, sizeof(rollout) - 1},
        {"tasks/hotfix-1-0-1.yaml", task, sizeof(task) - 1},
    };
    const size_t nfiles = sizeof(files) / sizeof(files[0]);
    otr_error err = OTR_ERROR_INIT;
    int made = 0;
    char *root = repository_root(dir, &made, &err);
    otr_buf path = OTR_BUF_INIT;
    int rc = root ? 0 : -1;
    struct stat st;
    /* nothing lost: a manifest folder that holds anything is left as it is */
    if (rc == 0 && otr_buf_printf(&path, "%s%s", root, folder) == 0 && stat(path.ptr, &st) == 0)
        rc = otr_error_set(&err, OTR_ERR_USAGE,
                           "%s already exists: init writes a new fleet only where there is "
                           "none (give --path for another folder)",
                           path.ptr);
    for (size_t i = 0; rc == 0 && i < nfiles; i++) {
        otr_buf_clear(&path);
        rc = otr_buf_printf(&path, "%s%s/%s", root, folder, files[i].rel) < 0
                 ? otr_error_set(&err, OTR_ERR_NOMEM, "out of memory")
                 : write_new(path.ptr, files[i].text, files[i].len, &err);
    }
    if (rc == 0)
        rc = ignore_state(root, &err);
    otr_buf_free(&path);
    if (rc < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
        free(root);
        return OTR_EXIT_ERROR;
    }
    printf("%sA starting fleet in %s%s/: a task configuration (configurations/push.yaml), a\n"
           "staged rollout (rollouts/firmware-1-0-0.yaml), a one-off task\n"
           "(tasks/hotfix-1-0-1.yaml) and the schema your editor checks them with; %s.gitignore\n"
           "keeps the state file out of git.\n\n"
           "Next:\n"
           "  1. change what the comments say (names, S3 URLs, things, target queries)\n"
           "  2. ota-runner validate --worktree\n"
           "  3. git add -A && git commit -m \"A fleet\"\n"
           "  4. ota-runner plan                 (the AWS policies: examples/iam/)\n"
           "  5. ota-runner apply, then ota-runner status\n",
           made ? "Initialised a git repository. " : "", root, folder, root);
    free(root);
    return OTR_EXIT_OK;
}
