/*
 * The command line: one table of commands and one of options, from which the
 * parser, the did-you-mean hints and every --help text are made.
 * otr_options borrows its strings from argv; free it with otr_options_free.
 */
#ifndef OTR_CLI_OPTIONS_H
#define OTR_CLI_OPTIONS_H

#include "state/state.h"

#include <stddef.h>

#define OTR_VERSION "0.1.0"

/* Exit codes scripts can rely on (docs/reference.md, "Exit codes"). */
enum {
    OTR_EXIT_OK = 0,
    OTR_EXIT_ERROR = 1,   /* an error, invalid input, or a partial failure */
    OTR_EXIT_CHANGES = 2, /* plan --detailed-exitcode: there are changes */
    OTR_EXIT_LOCKED = 3,  /* another run holds the state lock */
    OTR_EXIT_HALTED = 4,  /* status --fail-on-halt: a staged rollout is halted */
    /* apply stopped by SIGINT / SIGTERM: 128 + the signal (130, 143) */
    OTR_EXIT_SIGNAL_BASE = 128,
};

typedef enum otr_output {
    OTR_OUT_TEXT,
    OTR_OUT_JSON,
    OTR_OUT_MARKDOWN,
    OTR_OUT_GITHUB,
    OTR_OUT_GITHUB_MATRIX, /* envs */
    OTR_OUT_GITLAB,        /* envs */
    OTR_OUT_NAMES,         /* envs */
} otr_output;

typedef enum otr_refresh { OTR_REFRESH_LIST, OTR_REFRESH_NONE, OTR_REFRESH_FULL } otr_refresh;

typedef struct otr_command otr_command;

typedef struct otr_options {
    const otr_command *command;
    int help;
    int verbose;
    int debug;
    int no_color;
    /* source */
    const char *repo;
    const char *ref;
    const char *path;
    const char *cache_dir;
    int worktree;
    const char *allowed_signers; /* --allowed-signers (see otr_options_allowed_signers) */
    const char *retry_mode;      /* --retry-mode (see otr_retry_mode_resolve) */
    const char *openpgp_keys;    /* --openpgp-keys (see otr_options_openpgp_keys) */
    int verify_range;            /* --verify-commits range */
    int require_authors;         /* --require-author-signatures */
    int verify_asked;            /* --verify-commits given (head or range) */
    /* output */
    otr_output output;
    /* service */
    const char *region;
    const char *profile;
    const char *role_arn; /* --role-arn */
    const char *endpoint_url;
    int parallelism; /* 0: the default */
    double max_rps;
    int max_attempts;
    long connect_timeout_ms;
    long request_timeout_ms;
    /* state */
    const char *state_path;  /* NULL: OTA_RUNNER_STATE, else ota-runner.state.json at the
                                root of the repository's working tree (the folder run from
                                for a URL) */
    char *default_state;     /* that default, made once (otr_options_state_path) */
    char *paths_joined;      /* --path given more than once: the folders joined by ':' */
    const char *env;         /* --env NAME|all|KEY=VALUE,...: from ota-runner.yaml */
    int parallel_envs;       /* --parallel-envs (0: the default) */
    const char *config_file; /* set for an environment's run: verified with the manifests */
    long lock_timeout_ms;    /* --lock-timeout */
    long lock_stale_s;       /* --lock-stale-after; 0: the default */
    const char *to;          /* state migrate --to */
    /* plan and apply */
    int prune;
    int max_deletes; /* default OTR_PLAN_DEFAULT_MAX_DELETES */
    int allow_cancel;
    int allow_empty;
    int allow_older;
    int fetch_total_s; /* --fetch-timeout, 0: the default */
    int fetch_idle_s;  /* --fetch-idle-timeout, 0: the default */
    int no_adopt;      /* --refresh none on an empty state: create without adopting */
    int migrate_endpoint;
    const char **targets; /* NULL-terminated */
    size_t ntargets;
    otr_refresh refresh;
    const char *out;
    int detailed_exitcode;
    int fail_fast;
    int auto_approve;
    int fail_on_halt;
    int devices;         /* status --devices */
    int all;             /* status --devices --all */
    const char **notify; /* apply --notify URLs, NULL-terminated */
    size_t nnotify;
    int notify_required;
    const char *metrics_file; /* apply --metrics-file */
    const char *pushgateway;  /* apply --pushgateway */
    /* positional arguments after the command */
    const char **args;
    size_t nargs;
} otr_options;

struct otr_command {
    const char *name;
    unsigned options; /* OPT_* groups it accepts */
    const char *args; /* positional arguments, for usage */
    const char *summary;
    const char *details;
    unsigned outputs; /* bit per otr_output it can render */
    int (*run)(const otr_options *o);
};

/*
 * Parses argv. Returns 0 and fills o (o->command NULL means "no command":
 * top-level help or an error already reported). On a usage error prints a
 * one-line message and a hint to stderr and returns -1.
 */
int otr_options_parse(otr_options *o, int argc, char **argv);
void otr_options_free(otr_options *o);

/* The state file: --state, else OTA_RUNNER_STATE, else ota-runner.state.json. */
const char *otr_options_state_path(const otr_options *o);

/* Does the command read a state (plan, apply, status, state)? */
int otr_options_uses_state(const otr_options *o);
/* Where the state is, with what its store needs (region, profile, lock
 * timings), from the options. */
void otr_options_state_where(const otr_options *o, otr_state_where *w);
/* --allowed-signers, else OTA_RUNNER_ALLOWED_SIGNERS, else NULL (no check). */
const char *otr_options_allowed_signers(const otr_options *o);
/* --openpgp-keys, else OTA_RUNNER_OPENPGP_KEYS, else NULL. */
const char *otr_options_openpgp_keys(const otr_options *o);

/* Help text: the top level (cmd NULL) or one command's. */
void otr_options_print_help(const otr_command *cmd);

#endif
