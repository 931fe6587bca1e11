/* The subcommands; each returns an exit code (OTR_EXIT_*). */
#ifndef OTR_CLI_COMMANDS_H
#define OTR_CLI_COMMANDS_H

#include "cli/options.h"

int otr_cmd_validate(const otr_options *o);
int otr_cmd_tokens(const otr_options *o);
int otr_cmd_version(const otr_options *o);
int otr_cmd_plan(const otr_options *o);
int otr_cmd_show(const otr_options *o);
int otr_cmd_diff(const otr_options *o);
int otr_cmd_apply(const otr_options *o);
int otr_cmd_status(const otr_options *o);
/* status --devices (cli/status_devices.c) */
int otr_status_devices(const otr_options *o);
int otr_cmd_state(const otr_options *o);
int otr_cmd_init(const otr_options *o);
int otr_cmd_envs(const otr_options *o);

/* --env: the command for one environment of ota-runner.yaml, or for each of
 * several in a process of its own (cli/environments.c). */
int otr_envs_dispatch(otr_options *o, int argc, char **argv);

#endif
