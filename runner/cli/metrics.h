/*
 * apply --metrics-file / --pushgateway: a run in the Prometheus text
 * exposition format (0.0.4), written atomically for node_exporter's textfile
 * collector, and pushed to a Pushgateway (job ota-runner, grouped by the
 * repository and path). No device id is ever a label.
 */
#ifndef OTR_CLI_METRICS_H
#define OTR_CLI_METRICS_H

#include "aws/client.h"
#include "cli/options.h"
#include "plan/plan.h"
#include "state/state.h"

typedef struct otr_run_metrics {
    int64_t started_ms; /* monotonic, when the run began */
    int64_t lock_wait_ms;
    int success;
    const otr_plan *plan;          /* NULL when none was made */
    const otr_state *state;        /* NULL when none was read */
    const otr_aws_client *client;  /* the service's, or NULL */
    size_t delivered, undelivered; /* notifications */
    const char *repo, *path;       /* the push\'s group; NULL: "." and "manifests" */
} otr_run_metrics;

/* The metrics of a run; previous: the text of the last run's metrics (its
 * last success is kept when this run failed), or NULL. The caller frees. */
char *otr_metrics_text(const otr_run_metrics *m, const char *previous);

/* Writes --metrics-file and pushes to --pushgateway, each when given; a
 * failure is a warning. */
void otr_metrics_emit(const otr_options *o, const otr_run_metrics *m);

#endif
