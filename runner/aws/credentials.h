/*
 * Credentials, found in botocore's order: the environment; web identity
 * (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or a profile's
 * web_identity_token_file + role_arn) through STS AssumeRoleWithWebIdentity;
 * the shared credentials file; credential_process; the config file;
 * container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI);
 * EC2 instance metadata (IMDSv2). An explicit --profile skips the environment,
 * as the AWS CLI does.
 *
 * Temporary credentials are refreshed from the same source when they have
 * less than OTR_CREDS_REFRESH_SECONDS left, so a long run keeps going.
 * The provider owns the credentials it hands out; they stay valid until the
 * next otr_creds_get or otr_creds_provider_free. Secrets are never logged.
 */
#ifndef OTR_AWS_CREDENTIALS_H
#define OTR_AWS_CREDENTIALS_H

#include "aws/sigv4.h"
#include "util/error.h"

#include <time.h>

#define OTR_CREDS_REFRESH_SECONDS 300

typedef struct otr_creds_options {
    const char *profile; /* --profile, or NULL */
    const char *region;  /* for STS; may be NULL */
    /* for tests: the clock; NULL for time(NULL) */
    time_t (*now)(void *ctx);
    void *now_ctx;
    /* --role-arn: this role, assumed (sts:AssumeRole) with the credentials
     * the chain (or the profile) gives, and assumed again before it expires;
     * NULL: none */
    const char *role_arn;
} otr_creds_options;

typedef struct otr_creds_provider otr_creds_provider;

OTR_MUST_USE int otr_creds_provider_new(otr_creds_provider **out, const otr_creds_options *o,
                                        otr_error *err);
/* A provider that always hands out these keys (for tests and tools). */
OTR_MUST_USE int otr_creds_provider_static(otr_creds_provider **out, const char *access_key_id,
                                           const char *secret_access_key,
                                           const char *session_token);
void otr_creds_provider_free(otr_creds_provider *p);

/* Resolves (first use) or refreshes (when expiring) and returns the credentials. */
OTR_MUST_USE int otr_creds_get(otr_creds_provider *p, const otr_credentials **out, otr_error *err);

/* How many times credentials were fetched from their source (for tests, -v). */
int otr_creds_fetches(const otr_creds_provider *p);

#endif
