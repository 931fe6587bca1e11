/*
 * The service connection a command needs: region, endpoint, credentials and
 * the AWS client, from the command-line options and the environment.
 * otr_service owns them; close it with otr_service_close.
 */
#ifndef OTR_CLI_SERVICE_H
#define OTR_CLI_SERVICE_H

#include "aws/client.h"
#include "cli/options.h"

#include <cjson/cJSON.h>

typedef struct otr_service {
    char *region;
    char *endpoint;
    otr_creds_provider *creds; /* its own, when it was given none */
    otr_aws_client *client;
} otr_service;

/* The region and endpoint the options name, without credentials or a
 * connection; the caller frees both. */
OTR_MUST_USE int otr_service_resolve(char **region, char **endpoint, const otr_options *o,
                                     otr_error *err);
/* creds: the run's credentials (borrowed: the state's S3 client shares them,
 * so a run resolves them once), or NULL for a chain of the service's own. */
OTR_MUST_USE int otr_service_open(otr_service *s, const otr_options *o, otr_creds_provider *creds,
                                  otr_error *err);
/* The run's credentials chain (--profile, the region's STS); resolved at
 * first use. */
OTR_MUST_USE int otr_service_creds(otr_creds_provider **out, const otr_options *o, otr_error *err);
/* Is the retry mode (--retry-mode, AWS_RETRY_MODE, the profile's) adaptive?
 * -1 for a mode that is none of standard, legacy, adaptive. */
OTR_MUST_USE int otr_service_adaptive(const otr_options *o, int *adaptive, otr_error *err);
void otr_service_close(otr_service *s);

/* {"region", "endpoint"} for the state file. */
cJSON *otr_service_json(const otr_service *s);

#endif
