/*
 * The credentials chain's insides, shared by its parts: credentials.c (the
 * chain, and each source but one) and sso.c (IAM Identity Center profiles).
 * Not for use outside runner/aws/.
 */
#ifndef OTR_AWS_CREDS_INTERNAL_H
#define OTR_AWS_CREDS_INTERNAL_H

#include "aws/credentials.h"
#include "util/buf.h"
#include "util/error.h"

#include <curl/curl.h>
#include <time.h>

/* The most a credentials file, process or endpoint may give (1 MiB), and how
 * long a credentials endpoint may take. */
#define OTR_CREDS_MAX_BYTES ((size_t)1 << 20)
#define OTR_CREDS_FETCH_TIMEOUT_MS 10000

/* Where credentials come from. SRC_ENV to SRC_IMDS are the chain, in
 * botocore's order: resolve tries them in the order they are listed here. */
typedef enum source {
    SRC_NONE,
    SRC_STATIC,
    SRC_ENV,
    SRC_WEB_IDENTITY,
    SRC_PROFILE_ASSUME_ROLE,
    SRC_PROFILE_WEB_IDENTITY,
    SRC_PROFILE_SSO,
    SRC_CREDENTIALS_FILE,
    SRC_PROCESS,
    SRC_CONFIG_FILE,
    SRC_CONTAINER,
    SRC_IMDS,
    SRC_ROLE, /* --role-arn, over the chain */
} source;

struct otr_creds_provider {
    char *profile;
    int explicit_profile;
    char *region;
    time_t (*now)(void *);
    void *now_ctx;
    source src; /* where the current credentials came from */
    otr_credentials creds;
    int fetches;
    char *chain;    /* the profiles whose roles this one's credentials serve ("a -> b"), or NULL */
    char *role_arn; /* --role-arn, or NULL */
};

typedef enum { NOT_CONFIGURED = 1, FOUND = 0, FAILED = -1 } outcome;

/* The provider's clock (the tests' when they give one). */
time_t otr_creds_now(const otr_creds_provider *p);
/* Fills c (copies); -1 without memory. */
int otr_creds_set(otr_credentials *c, const char *akid, const char *secret, const char *token,
                  time_t expiration, const char *source_desc);
/* The profile's key in the config file; free() it. NULL when unset. */
char *otr_creds_conf(const otr_creds_provider *p, const char *key);
/* One HTTP request (STS, SSO, the container endpoint, IMDS): its status and
 * body (at most OTR_CREDS_MAX_BYTES); -1 with err when it was not answered. */
int otr_creds_fetch(const char *method, const char *url, struct curl_slist *headers,
                    const char *body, long timeout_ms, long *status, otr_buf *out, otr_error *err);

/* An IAM Identity Center profile (sso.c). */
outcome otr_creds_from_sso(otr_creds_provider *p, otr_buf *tried, otr_error *err);

#endif
