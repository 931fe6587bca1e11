/*
 * --env and `ota-runner envs`: the environments of ota-runner.yaml (envs/).
 *
 * One environment is run in this process, its region, profile, endpoint,
 * paths and state filling what the command line leaves unset. Several are
 * each their own process (this program again, with --env NAME), up to
 * --parallel-envs at once: its own credentials, state and lock, its output
 * kept apart and printed whole under its name when it ends, one failure
 * not stopping the others; a closing table says how each ended, and the
 * exit code is the worst of theirs. A signal is passed on to every unit
 * running (each finishes its calls in flight), and none is started after.
 */
#include "cli/environments.h"

#include "cli/commands.h"
#include "cli/load.h"
#include "envs/envs.h"
#include "kinds/kind.h"
#include "kinds/ota_rollout.h"
#include "kinds/record.h"
#include "state/state.h"
#include "source/source.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/signals.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PARALLEL_ENVS 4

/* ota-runner.yaml at the commit the command reads (0), or -1 with the
 * problems printed. */
static int read_envs(const otr_options *o, otr_envs *envs)
{
    otr_source_opts so = {.repo = o->repo,
                          .ref = o->ref,
                          .worktree = o->worktree,
                          .cache_dir = o->cache_dir,
                          .fetch_idle_s = o->fetch_idle_s,
                          .fetch_total_s = o->fetch_total_s,
                          .max_file_size = OTR_ENVS_MAX_FILE};
    otr_buf text = OTR_BUF_INIT;
    otr_error err = OTR_ERROR_INIT;
    otr_diags diags = OTR_DIAGS_INIT;
    int got = otr_source_read_root(&so, OTR_ENVS_FILE, &text, &err), rc = -1;
    if (got < 0) {
        otr_print_error(&err);
    } else if (got == 0) {
        fprintf(stderr,
                "ota-runner: error: --env: there is no %s at the root of %s%s%s; write one "
                "(see docs/environments.md)\n",
                OTR_ENVS_FILE, o->repo ? o->repo : "the repository", o->ref ? " at " : "",
                o->ref ? o->ref : "");
    } else if (otr_envs_parse(envs, OTR_ENVS_FILE, otr_buf_cstr(&text), text.len, &diags, &err) <
               0) {
        otr_diags_sort(&diags);
        if (diags.count)
            otr_print_diags_text(&diags, o);
        else
            otr_print_error(&err);
    } else {
        rc = 0;
    }
    otr_diags_free(&diags);
    otr_error_clear(&err);
    otr_buf_free(&text);
    return rc;
}

/* The environment's settings where the command line gives none. */
static void take_env(otr_options *o, const otr_env *e)
{
    if (!o->path)
        o->path = e->path;
    if (!o->region)
        o->region = e->region;
    if (!o->profile)
        o->profile = e->profile;
    if (!o->role_arn)
        o->role_arn = e->role;
    if (!o->endpoint_url)
        o->endpoint_url = e->endpoint;
    if (!o->state_path)
        o->state_path = e->state;
    o->config_file = OTR_ENVS_FILE;
}

/* ---- several environments ------------------------------------------------------- */

typedef struct unit {
    const otr_env *env;
    pid_t pid;
    int out, err; /* the child's stdout and stderr; -1 once at their end */
    otr_buf stdout_text, stderr_text;
    int status; /* exit code, or 128 + signal */
    int done;
    double started, took;
} unit;

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* argv without --env and --parallel-envs (and their values), then --env NAME. */
static char **child_args(int argc, char **argv, const char *name)
{
    char **args = calloc((size_t)argc + 3, sizeof(*args));
    int n = 0;
    if (!args)
        return NULL;
    args[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            while (i < argc)
                args[n++] = argv[i++];
            break;
        }
        if (!strcmp(a, "--env") || !strcmp(a, "--parallel-envs")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--env=", 6) || !strncmp(a, "--parallel-envs=", 16))
            continue;
        args[n++] = argv[i];
    }
    /* options go before a "--" */
    int at = n;
    for (int i = 1; i < n; i++)
        if (!strcmp(args[i], "--")) {
            at = i;
            break;
        }
    memmove(args + at + 2, args + at, (size_t)(n - at) * sizeof(*args));
    args[at] = "--env";
    args[at + 1] = (char *)name;
    args[n + 2] = NULL;
    return args;
}

static int start(unit *u, int argc, char **argv)
{
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    char **args = child_args(argc, argv, u->env->name);
    if (!args || pipe(out) < 0 || pipe(err) < 0) {
        free(args);
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0)
                close(out[i]);
            if (err[i] >= 0)
                close(err[i]);
        }
        return -1;
    }
    /* close-on-exec: a unit gets its own two pipes (dup2 clears the flag), not the others' */
    for (int i = 0; i < 2; i++) {
        fcntl(out[i], F_SETFD, FD_CLOEXEC);
        fcntl(err[i], F_SETFD, FD_CLOEXEC);
    }
    fflush(NULL);
    u->pid = fork();
    if (u->pid == 0) {
        /* a group of its own: a Ctrl-C reaches this process alone, which passes it on
         * once (a unit that got it twice would stop at once, not finish its calls) */
        setpgid(0, 0);
        int null = open("/dev/null", O_RDONLY); /* no unit reads the terminal */
        if (null >= 0)
            dup2(null, STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        execv("/proc/self/exe", args);
        fprintf(stderr, "ota-runner: cannot run itself again: %s\n", strerror(errno));
        _exit(127);
    }
    free(args);
    close(out[1]);
    close(err[1]);
    if (u->pid < 0) {
        close(out[0]);
        close(err[0]);
        return -1;
    }
    u->out = out[0];
    u->err = err[0];
    u->started = seconds_now();
    return 0;
}

/* Reads what is ready from a unit's pipes; closes one at its end. */
static void drain(int *fd, otr_buf *into)
{
    char chunk[65536];
    ssize_t n = read(*fd, chunk, sizeof(chunk));
    if (n > 0) {
        otr_buf_append(into, chunk, (size_t)n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(*fd);
        *fd = -1;
    }
}

static void reap(unit *u)
{
    int status = 0;
    while (waitpid(u->pid, &status, 0) < 0 && errno == EINTR)
        ;
    u->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    u->took = seconds_now() - u->started;
    u->done = 1;
}

static const char *result_of(int status)
{
    switch (status) {
    case 0: return "ok";
    case 2: return "changes";
    case 3: return "locked";
    case 4: return "halted";
    case 130:
    case 143: return "stopped";
    default: return "failed";
    }
}

/* A unit in the JSON document: its fields, its own JSON output as it wrote
 * it (null when it wrote none), its stderr; first opens the document. The
 * document is written a unit at a time, so memory holds only the units
 * running, however many environments there are. */
static void print_unit_json(const unit *u, int first)
{
    cJSON *e = cJSON_CreateObject(), *check = cJSON_Parse(otr_buf_cstr(&u->stdout_text));
    cJSON_AddStringToObject(e, "name", u->env->name);
    cJSON_AddStringToObject(e, "region", u->env->region);
    cJSON_AddStringToObject(e, "result", u->done ? result_of(u->status) : "not run");
    cJSON_AddNumberToObject(e, "exitCode", u->status);
    cJSON_AddNumberToObject(e, "seconds", u->took);
    cJSON_AddStringToObject(e, "errors", otr_buf_cstr(&u->stderr_text));
    char *head = cJSON_PrintUnformatted(e);
    size_t n = head ? strlen(head) : 0;
    printf("%s", first ? "{\"environments\": [\n" : ",\n");
    if (n > 1) { /* "{...}": the output goes in before the last brace */
        fwrite(head, 1, n - 1, stdout);
        printf(",\"output\":");
        if (check)
            fwrite(u->stdout_text.ptr, 1, u->stdout_text.len, stdout);
        else
            printf("null");
        printf("}");
    }
    free(head);
    cJSON_Delete(check);
    cJSON_Delete(e);
}

/* A unit's output, whole, under its name; then its buffers are let go. */
static void print_unit(unit *u, otr_output out, size_t *printed)
{
    const otr_env *e = u->env;
    if (out == OTR_OUT_JSON) {
        print_unit_json(u, *printed == 0);
    } else {
        if (out == OTR_OUT_GITHUB)
            printf("::group::environment %s (%s)\n", e->name, e->region);
        else if (out == OTR_OUT_MARKDOWN)
            printf("## Environment `%s` (%s)\n\n", e->name, e->region);
        else
            printf("== environment %s (%s) ==\n", e->name, e->region);
        fwrite(u->stdout_text.ptr ? u->stdout_text.ptr : "", 1, u->stdout_text.len, stdout);
        fflush(stdout);
        fwrite(u->stderr_text.ptr ? u->stderr_text.ptr : "", 1, u->stderr_text.len, stderr);
        fflush(stderr);
        if (out == OTR_OUT_GITHUB)
            printf("::endgroup::\n");
        printf("\n");
    }
    fflush(stdout);
    (*printed)++;
    otr_buf_free(&u->stdout_text);
    otr_buf_free(&u->stderr_text);
}

/* The exit code of them all: a stop, then a failure, a lock, a halt, then
 * changes (2) over none (0). */
static int worst(const unit *u, size_t n)
{
    static const int rank[] = {130, 143, 1, 3, 4};
    for (size_t r = 0; r < sizeof(rank) / sizeof(rank[0]); r++)
        for (size_t i = 0; i < n; i++)
            if (u[i].status == rank[r])
                return rank[r];
    int changes = 0;
    for (size_t i = 0; i < n; i++) {
        if (u[i].status != 0 && u[i].status != 2)
            return 1;
        changes |= u[i].status == 2;
    }
    return changes ? 2 : 0;
}

static void print_table(const unit *u, size_t n, otr_output out)
{
    size_t w = strlen("ENVIRONMENT");
    for (size_t i = 0; i < n; i++)
        if (strlen(u[i].env->name) > w)
            w = strlen(u[i].env->name);
    if (out == OTR_OUT_MARKDOWN) {
        printf("| Environment | Region | Result | Exit | Time |\n|---|---|---|---|---|\n");
        for (size_t i = 0; i < n; i++)
            printf("| `%s` | %s | %s | %d | %.1fs |\n", u[i].env->name, u[i].env->region,
                   u[i].done ? result_of(u[i].status) : "not run", u[i].status, u[i].took);
        return;
    }
    printf("%-*s  %-15s  %-8s  %4s  %s\n", (int)w, "ENVIRONMENT", "REGION", "RESULT", "EXIT",
           "TIME");
    for (size_t i = 0; i < n; i++)
        printf("%-*s  %-15s  %-8s  %4d  %.1fs\n", (int)w, u[i].env->name, u[i].env->region,
               u[i].done ? result_of(u[i].status) : "not run", u[i].status, u[i].took);
}

/* Waits for the units' output and ends, printing each as it ends, passing
 * a signal on; starts the next units while there is room. */
static int run_all(unit *u, size_t n, int parallel, int argc, char **argv, otr_output out,
                   size_t *printed)
{
    size_t next = 0, running = 0, finished = 0;
    int passed_on = 0;
    otr_signals_graceful("the environments");
    while (finished < n) {
        int stop = otr_signals_received();
        while (!stop && running < (size_t)parallel && next < n) {
            if (start(&u[next], argc, argv) < 0) {
                fprintf(stderr, "ota-runner: error: cannot start the run of environment %s: %s\n",
                        u[next].env->name, strerror(errno));
                u[next].status = 1;
                u[next].done = 1;
                print_unit(&u[next], out, printed);
                finished++;
            } else {
                running++;
            }
            next++;
        }
        if (stop && !passed_on) {
            for (size_t i = 0; i < next; i++)
                if (!u[i].done && u[i].pid > 0)
                    kill(u[i].pid, stop);
            passed_on = 1;
        }
        if (stop && running == 0) {
            for (size_t i = next; i < n; i++) /* never started */
                u[i].status = 128 + stop;
            break;
        }
        struct pollfd fds[2 * 64];
        size_t nfds = 0;
        for (size_t i = 0; i < next && nfds + 2 <= sizeof(fds) / sizeof(fds[0]); i++) {
            if (u[i].done)
                continue;
            if (u[i].out >= 0)
                fds[nfds++] = (struct pollfd){.fd = u[i].out, .events = POLLIN};
            if (u[i].err >= 0)
                fds[nfds++] = (struct pollfd){.fd = u[i].err, .events = POLLIN};
        }
        if (nfds && poll(fds, nfds, 200) < 0 && errno != EINTR)
            break;
        for (size_t i = 0; i < next; i++) {
            if (u[i].done || u[i].pid <= 0)
                continue;
            for (size_t f = 0; f < nfds; f++) {
                if (!(fds[f].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                if (fds[f].fd == u[i].out)
                    drain(&u[i].out, &u[i].stdout_text);
                else if (fds[f].fd == u[i].err)
                    drain(&u[i].err, &u[i].stderr_text);
            }
            if (u[i].out < 0 && u[i].err < 0) {
                reap(&u[i]);
                print_unit(&u[i], out, printed);
                running--;
                finished++;
            }
        }
    }
    return 0;
}

static int run_several(otr_options *o, const otr_envs *envs, const size_t *picked, size_t n,
                       int argc, char **argv)
{
    static const char *const one_each[] = {
        "--state", "--path", "--out", "--metrics-file", "--region", "--profile", "--endpoint-url"};
    const char *given[] = {o->state_path, o->path,    o->out,         o->metrics_file,
                           o->region,     o->profile, o->endpoint_url};
    if (o->nargs && (!strcmp(o->command->name, "apply") || !strcmp(o->command->name, "show"))) {
        fprintf(stderr,
                "ota-runner %s: a plan file is one environment's: give --env NAME with it, not "
                "--env %s\n",
                o->command->name, o->env);
        return OTR_EXIT_ERROR;
    }
    if (!strcmp(o->command->name, "apply") && !o->auto_approve && o->output != OTR_OUT_JSON &&
        isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
        /* a single apply on a terminal asks first; the units cannot ask one by one */
        fprintf(stderr,
                "ota-runner apply: --env %s applies %zu environments without asking each: read "
                "`ota-runner plan --env %s` first, then give --auto-approve\n",
                o->env, n, o->env);
        return OTR_EXIT_ERROR;
    }
    for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++)
        if (given[i]) {
            fprintf(stderr,
                    "ota-runner %s: %s cannot be given with --env %s: each environment has its "
                    "own (see ota-runner.yaml), or give --env NAME for one\n",
                    o->command->name, one_each[i], o->env);
            return OTR_EXIT_ERROR;
        }
    unit *u = calloc(n, sizeof(*u));
    if (!u)
        return OTR_EXIT_ERROR;
    for (size_t i = 0; i < n; i++) {
        u[i].env = &envs->items[picked[i]];
        u[i].out = u[i].err = -1;
    }
    int parallel = o->parallel_envs ? o->parallel_envs : DEFAULT_PARALLEL_ENVS;
    size_t printed = 0;
    run_all(u, n, parallel, argc, argv, o->output, &printed);
    int rc = worst(u, n);
    if (o->output == OTR_OUT_JSON) {
        for (size_t i = 0; i < n; i++) /* those a signal kept from starting */
            if (!u[i].done)
                print_unit_json(&u[i], printed++ == 0);
        printf("%s], \"exitCode\": %d}\n", printed ? "\n" : "{\"environments\": [", rc);
    } else {
        print_table(u, n, o->output);
    }
    for (size_t i = 0; i < n; i++) {
        otr_buf_free(&u[i].stdout_text);
        otr_buf_free(&u[i].stderr_text);
    }
    free(u);
    return rc;
}

int otr_envs_dispatch(otr_options *o, int argc, char **argv)
{
    otr_envs envs;
    otr_error err = OTR_ERROR_INIT;
    size_t *picked = NULL, n = 0;
    int rc = OTR_EXIT_ERROR;
    if (!strcmp(o->command->name, "envs"))
        return o->command->run(o); /* --env picks what it lists */
    if (!strcmp(o->command->name, "init")) {
        fprintf(stderr, "ota-runner init: --env is for the commands that read a fleet\n");
        return OTR_EXIT_ERROR;
    }
    if (read_envs(o, &envs) < 0)
        return OTR_EXIT_ERROR;
    if (otr_envs_select(&envs, o->env, &picked, &n, &err) < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
    } else if (otr_envs_is_name(o->env)) {
        take_env(o, &envs.items[picked[0]]);
        rc = o->command->run(o);
    } else {
        rc = run_several(o, &envs, picked, n, argc, argv);
    }
    free(picked);
    otr_envs_free(&envs);
    return rc;
}

/* ---- waiting for another environment (spec.after) ------------------------------------ */

/* What env's state records of rollout name, into gates["ENV/NAME"]. */
static void gate_of(cJSON *gates, const char *env, const char *name, otr_state *st,
                    const char *error)
{
    otr_buf key = OTR_BUF_INIT;
    otr_buf_printf(&key, "%s/%s", env, name);
    if (cJSON_GetObjectItemCaseSensitive(gates, otr_buf_cstr(&key))) {
        otr_buf_free(&key);
        return;
    }
    cJSON *g = cJSON_AddObjectToObject(gates, otr_buf_cstr(&key));
    otr_buf_free(&key);
    otr_record *rec = st ? otr_state_find(st, &otr_kind_ota_rollout, name) : NULL;
    if (error) {
        cJSON_AddStringToObject(g, "error", error);
        return;
    }
    if (!rec)
        return;
    cJSON *spec = otr_record_spec(rec), *passed = cJSON_AddArrayToObject(g, "passed");
    const char *url = otr_rollout_str(cJSON_GetObjectItemCaseSensitive(spec, "task"), "S3Url");
    if (url)
        cJSON_AddStringToObject(g, "s3Url", url);
    cJSON_Delete(spec);
    cJSON_AddNumberToObject(g, "revision", (double)rec->revision);
    const cJSON *w;
    cJSON_ArrayForEach(w, otr_rollout_started(rec))
    {
        if (otr_rollout_str(w, "passedAt") && otr_rollout_str(w, "name"))
            cJSON_AddItemToArray(passed, cJSON_CreateString(otr_rollout_str(w, "name")));
    }
    cJSON_AddBoolToObject(g, "halted",
                          cJSON_GetObjectItemCaseSensitive(rec->progress, "halt") != NULL);
}

/* One environment's state, read without its lock: NULL with error set. */
static otr_state *state_of(const otr_env *e, otr_buf *error)
{
    otr_state_where w = OTR_STATE_WHERE_INIT;
    otr_error err = OTR_ERROR_INIT;
    otr_state *st = NULL;
    w.location = e->state;
    w.region = e->region;
    w.profile = e->profile;
    if (otr_state_load(&st, &w, &err) < 0) {
        otr_buf_printf(error, "%s's state %s cannot be read: %s", e->name, e->state,
                       otr_error_message(&err));
        st = NULL;
    }
    otr_error_clear(&err);
    return st;
}

/* The environment spec.after names, checked: -1 with the problem printed. */
static const otr_env *after_env(const otr_options *o, const otr_envs *envs, const otr_manifest *m,
                                const char *name)
{
    for (size_t i = 0; i < envs->count; i++)
        if (!strcmp(envs->items[i].name, name)) {
            if (o->env && !strcmp(o->env, name)) {
                fprintf(stderr,
                        "ota-runner: error: %s:%u: rollout %s: spec.after.env names %s, the "
                        "environment this run is for; name another one\n",
                        m->file, m->line, m->name, name);
                return NULL;
            }
            return &envs->items[i];
        }
    fprintf(stderr,
            "ota-runner: error: %s:%u: rollout %s: spec.after.env names %s, which %s does not "
            "have\n",
            m->file, m->line, m->name, name, OTR_ENVS_FILE);
    return NULL;
}

int otr_envs_gates(const otr_options *o, const otr_manifest_set *set, cJSON **out)
{
    otr_envs envs = {0};
    int have_envs = 0, rc = 0;
    *out = NULL;
    for (size_t i = 0; rc == 0 && i < set->count; i++) {
        const otr_manifest *m = set->items[i];
        const char *at;
        size_t len;
        if (m->kind != &otr_kind_ota_rollout ||
            !otr_json_member_at(m->spec_json, strlen(m->spec_json), "after", &at, &len))
            continue; /* (found in the text: most rollouts have no gate, and stay unparsed) */
        cJSON *spec = otr_manifest_spec(m);
        const cJSON *after = cJSON_GetObjectItemCaseSensitive(spec, "after");
        const char *env = otr_rollout_str(after, "env"), *name = otr_rollout_str(after, "rollout");
        if (env && name) {
            const otr_env *e = NULL;
            if (!have_envs && read_envs(o, &envs) < 0)
                rc = -1;
            have_envs = rc == 0;
            if (rc == 0 && !(e = after_env(o, &envs, m, env)))
                rc = -1;
            if (rc == 0 && !*out && !(*out = cJSON_CreateObject()))
                rc = -1;
            if (rc == 0) {
                otr_buf error = OTR_BUF_INIT;
                otr_state *st = state_of(e, &error);
                gate_of(*out, env, name, st, error.len ? otr_buf_cstr(&error) : NULL);
                otr_state_free(st);
                otr_buf_free(&error);
            }
        }
        cJSON_Delete(spec);
    }
    if (have_envs)
        otr_envs_free(&envs);
    if (rc < 0) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- ota-runner envs -------------------------------------------------------------- */

static cJSON *env_json(const otr_env *e)
{
    cJSON *j = cJSON_CreateObject(), *labels = cJSON_CreateObject();
    cJSON *paths = cJSON_AddArrayToObject(j, "paths");
    cJSON_AddStringToObject(j, "name", e->name);
    cJSON_AddStringToObject(j, "region", e->region);
    if (e->profile)
        cJSON_AddStringToObject(j, "profile", e->profile);
    if (e->role)
        cJSON_AddStringToObject(j, "role", e->role);
    for (const char *p = e->path; *p;) {
        size_t len = strcspn(p, ":");
        char *one = strndup(p, len);
        cJSON_AddItemToArray(paths, cJSON_CreateString(one ? one : ""));
        free(one);
        p += len + (p[len] == ':');
    }
    cJSON_AddStringToObject(j, "state", e->state);
    if (e->endpoint)
        cJSON_AddStringToObject(j, "endpoint", e->endpoint);
    for (size_t i = 0; i < e->nlabels; i++)
        cJSON_AddStringToObject(labels, e->labels[i].key, e->labels[i].value);
    cJSON_AddItemToObject(j, "labels", labels);
    return j;
}

static void print_envs(const otr_envs *envs, const size_t *picked, size_t n, otr_output out)
{
    if (out == OTR_OUT_JSON || out == OTR_OUT_GITHUB_MATRIX) {
        cJSON *list = cJSON_CreateArray(), *root = list;
        for (size_t i = 0; i < n; i++) {
            const otr_env *e = &envs->items[picked[i]];
            cJSON *item = out == OTR_OUT_JSON ? env_json(e) : cJSON_CreateObject();
            if (out == OTR_OUT_GITHUB_MATRIX) {
                cJSON_AddStringToObject(item, "env", e->name);
                cJSON_AddStringToObject(item, "region", e->region);
            }
            cJSON_AddItemToArray(list, item);
        }
        if (out == OTR_OUT_GITHUB_MATRIX) { /* one line, for $GITHUB_OUTPUT */
            root = cJSON_CreateObject();
            cJSON_AddItemToObject(root, "include", list);
        }
        char *text = out == OTR_OUT_JSON ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
        if (text)
            printf("%s\n", text);
        free(text);
        cJSON_Delete(root);
        return;
    }
    if (out == OTR_OUT_GITLAB)
        printf("parallel:\n  matrix:\n");
    size_t w = strlen("NAME");
    for (size_t i = 0; i < n; i++)
        if (strlen(envs->items[picked[i]].name) > w)
            w = strlen(envs->items[picked[i]].name);
    if (out == OTR_OUT_TEXT)
        printf("%-*s  %-15s  %-16s  %s\n", (int)w, "NAME", "REGION", "PROFILE", "PATHS / STATE");
    for (size_t i = 0; i < n; i++) {
        const otr_env *e = &envs->items[picked[i]];
        if (out == OTR_OUT_GITLAB)
            printf("    - OTA_ENV: %s\n      OTA_REGION: %s\n", e->name, e->region);
        else if (out == OTR_OUT_NAMES)
            printf("%s\n", e->name);
        else
            printf("%-*s  %-15s  %-16s  %s  %s\n", (int)w, e->name, e->region,
                   e->profile ? e->profile : "-", e->path, e->state);
    }
}

int otr_cmd_envs(const otr_options *o)
{
    otr_envs envs;
    otr_error err = OTR_ERROR_INIT;
    size_t *picked = NULL, n = 0;
    if (read_envs(o, &envs) < 0)
        return OTR_EXIT_ERROR;
    int rc = otr_envs_select(&envs, o->env ? o->env : "all", &picked, &n, &err);
    if (rc < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
    } else {
        print_envs(&envs, picked, n, o->output);
    }
    free(picked);
    otr_envs_free(&envs);
    return rc < 0 ? OTR_EXIT_ERROR : OTR_EXIT_OK;
}
