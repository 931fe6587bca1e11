/* Opening the service connection from the options. */
#include "cli/service.h"

#include "aws/endpoint.h"
#include "aws/profile.h"
#include "aws/retry.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

int otr_service_resolve(char **region, char **endpoint, const otr_options *o, otr_error *err)
{
    *endpoint = NULL;
    *region = otr_region_resolve(o->region, o->profile);
    if (otr_endpoint_resolve(endpoint, o->endpoint_url, *region, err) < 0) {
        free(*region);
        *region = NULL;
        return -1;
    }
    if (!*region)
        *region = strdup("us-east-1"); /* an explicit endpoint needs no region; signing does */
    if (!*region) {
        free(*endpoint);
        *endpoint = NULL;
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    return 0;
}

int otr_service_adaptive(const otr_options *o, int *adaptive, otr_error *err)
{
    char *name = otr_retry_mode_resolve(o->retry_mode, o->profile);
    otr_retry_mode mode;
    const char *note;
    int rc = otr_retry_mode_parse(name, &mode, &note);
    *adaptive = mode == OTR_RETRY_ADAPTIVE;
    if (rc < 0)
        otr_error_set(err, OTR_ERR_USAGE,
                      "retry mode \"%s\" (from --retry-mode, AWS_RETRY_MODE or the profile's "
                      "retry_mode): %s",
                      name, note);
    else if (note)
        otr_log_warn("%s", note);
    free(name);
    return rc;
}

int otr_service_creds(otr_creds_provider **out, const otr_options *o, otr_error *err)
{
    char *region = otr_region_resolve(o->region, o->profile);
    otr_creds_options co = {.profile = o->profile,
                            .region = region,
                            .now = NULL,
                            .now_ctx = NULL,
                            .role_arn = o->role_arn};
    int rc = otr_creds_provider_new(out, &co, err);
    free(region);
    return rc;
}

int otr_service_open(otr_service *s, const otr_options *o, otr_creds_provider *creds,
                     otr_error *err)
{
    int adaptive;
    memset(s, 0, sizeof(*s));
    if (otr_service_resolve(&s->region, &s->endpoint, o, err) < 0 ||
        otr_service_adaptive(o, &adaptive, err) < 0)
        goto fail;
    otr_aws_options ao = {
        .endpoint = s->endpoint,
        .region = s->region,
        .max_attempts = o->max_attempts,
        .max_rps = o->max_rps,
        .adaptive = adaptive,
        .parallelism = o->parallelism,
        .connect_timeout_ms = o->connect_timeout_ms,
        .request_timeout_ms = o->request_timeout_ms,
        .creds = creds,
    };
    if (creds ? otr_aws_client_new(&s->client, &ao, err) < 0
              : otr_aws_client_open(&s->client, &s->creds, ao, o->profile, err) < 0)
        goto fail;
    return 0;
fail:
    otr_service_close(s);
    return -1;
}

void otr_service_close(otr_service *s)
{
    otr_aws_client_free(s->client);
    otr_creds_provider_free(s->creds);
    free(s->region);
    free(s->endpoint);
    memset(s, 0, sizeof(*s));
}

cJSON *otr_service_json(const otr_service *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "region", s->region);
    cJSON_AddStringToObject(o, "endpoint", s->endpoint);
    return o;
}
