/*
 * The AWS client: one libcurl multi handle (connection reuse, HTTP/2 where
 * offered, TLS always verified), a SigV4 signature per attempt, the standard
 * retry mode with its quota, a token bucket for --max-rps, and rest-json
 * error parsing. Calls are queued and run concurrently, at most
 * `parallelism` in flight; each call's callback runs when it is finished
 * (successfully or not) and may queue more calls.
 *
 * The client borrows its credentials provider; the caller owns each call and
 * frees it with otr_aws_call_free after its callback (or after run returns).
 */
#ifndef OTR_AWS_CLIENT_H
#define OTR_AWS_CLIENT_H

#include "aws/credentials.h"
#include "aws/headers.h"
#include "util/buf.h"
#include "util/error.h"

#include <stddef.h>
#include <stdint.h>

/* What a client does when its options say nothing (0). */
#define OTR_CLIENT_DEFAULT_ATTEMPTS 3
#define OTR_CLIENT_DEFAULT_PARALLELISM 8
#define OTR_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define OTR_CLIENT_DEFAULT_REQUEST_TIMEOUT_MS 60000

#define OTR_AWS_SERVICE "iotmanagedintegrations"
#define OTR_AWS_MAX_RESPONSE ((size_t)8 << 20)

typedef struct otr_aws_options {
    const char *endpoint; /* base URL, from otr_endpoint_resolve */
    const char *region;
    const char *service;     /* the signing name: NULL for OTR_AWS_SERVICE; "s3" signs as S3 does */
    int max_attempts;        /* 0: 3 */
    double max_rps;          /* 0: no limit */
    int adaptive;            /* retry mode adaptive: a client-side rate limiter */
    int parallelism;         /* 0: 8 */
    long connect_timeout_ms; /* 0: 10 s */
    long request_timeout_ms; /* 0: 60 s */
    otr_creds_provider *creds; /* borrowed */
    /* hooks for tests; NULL for the real clock and randomness */
    int64_t (*now_ms)(void *ctx);
    double (*random)(void *ctx);
    void *hook_ctx;
} otr_aws_options;

typedef struct otr_aws_client otr_aws_client;
typedef struct otr_aws_call otr_aws_call;
typedef void (*otr_aws_done_fn)(otr_aws_call *call, void *ctx);

struct otr_aws_call {
    /* the request, set by otr_aws_call_new and the caller */
    char *operation; /* "CreateOtaTask" */
    char *subject;   /* the manifest or task it is about, for messages; may be NULL */
    char *method;
    char *path;
    char *query; /* without '?', may be NULL */
    char *body;  /* may be NULL */
    size_t body_len;
    otr_headers headers; /* more request headers (If-Match, ...), signed with the rest */
    otr_aws_done_fn done;
    void *ctx;
    /* the outcome */
    int ok;                    /* a 2xx answer */
    long status;               /* HTTP status of the last attempt; 0 when none came */
    otr_buf response;          /* body of the last answer */
    otr_headers reply_headers; /* headers of the last answer (ETag, Date, ...) */
    char *error_type;          /* on failure: "ValidationException", "ConnectionError", ... */
    char *error_message;
    char request_id[80];
    int attempts;
    int quota_exhausted; /* retries stopped by the retry quota */
    int64_t elapsed_ms;
    struct otr_aws_call_internal *in; /* the client's bookkeeping */
};

/* A call of operation: METHOD path (printf-style). body may be NULL; it is copied. */
otr_aws_call *otr_aws_call_new(const char *operation, const char *method, const char *body,
                               const char *path_fmt, ...) __attribute__((format(printf, 4, 5)));
OTR_MUST_USE int otr_aws_call_set_query(otr_aws_call *call, const char *query);
OTR_MUST_USE int otr_aws_call_set_subject(otr_aws_call *call, const char *subject);
void otr_aws_call_free(otr_aws_call *call);

/* "CreateOtaTask (thermostat-2-4-1): HTTP 400 ValidationException: ... (3 attempts)" */
void otr_aws_call_describe(const otr_aws_call *call, otr_buf *out);

OTR_MUST_USE int otr_aws_client_new(otr_aws_client **out, const otr_aws_options *o, otr_error *err);
void otr_aws_client_free(otr_aws_client *c);
/* A client with its own credentials provider: the chain for profile (NULL:
 * the default) at o.region; o.creds is ignored. The caller frees both. */
OTR_MUST_USE int otr_aws_client_open(otr_aws_client **client, otr_creds_provider **creds,
                                     otr_aws_options o, const char *profile, otr_error *err);

/* Queues a call; it starts when run is called. */
void otr_aws_client_submit(otr_aws_client *c, otr_aws_call *call);
/* Runs until every queued call (and every call queued by callbacks) is done.
 * Returns -1 only for a failure of the client itself. */
OTR_MUST_USE int otr_aws_client_run(otr_aws_client *c, otr_error *err);
/* Runs every call submitted, even after an earlier failure (rc < 0): the
 * client must not keep calls the caller frees next. The run's error goes
 * to err only when rc is 0. Returns rc, or -1 when the run failed. */
OTR_MUST_USE int otr_aws_client_drain(otr_aws_client *c, int rc, otr_error *err);
/* Submit and run one call; 0 when it succeeded, else -1 with err describing it. */
OTR_MUST_USE int otr_aws_client_call(otr_aws_client *c, otr_aws_call *call, otr_error *err);

/* fn(arg) is called by run after each round of answers (their callbacks
 * done), before it sends what they queued: apply writes their journal
 * lines together there. NULL: none. */
void otr_aws_client_set_idle(otr_aws_client *c, void (*fn)(void *arg), void *arg);

/*
 * The service's clock: soaks and deadlines follow it, so a runner whose own
 * clock is off judges them right, and a rehearsal on the emulator can move
 * time forward. An answer's Date header (to the second) gives the service's
 * time; apart by less than OTR_CLOCK_AGREE seconds, the clocks agree and the
 * finer local one is used.
 */
#define OTR_CLOCK_AGREE 2
/* Now by the service's clock: this machine's time moved by how far apart the
 * newest answer's Date header said the two were (0 before any answer). */
int64_t otr_aws_client_now(const otr_aws_client *c);
/* When the service answered call, by its clock (its Date header), else now. */
int64_t otr_aws_call_time(const otr_aws_call *call);

/* Requests sent (every attempt), by operation and answer: the HTTP status,
 * or "error" when none came. */
typedef struct otr_aws_tally {
    char operation[48];
    char code[16];
    long count;
} otr_aws_tally;
const otr_aws_tally *otr_aws_client_tally(const otr_aws_client *c, size_t *n);

/* Retry quota left, for tests and -v. */
int otr_aws_client_retry_quota(const otr_aws_client *c);

/* Error type and message of an error answer: type from the
 * x-amzn-ErrorType header (before any ':'), else the body's __type (after any
 * '#') or code; message from message or Message; for an XML answer (S3's),
 * the <Code> and <Message> elements. Exposed for tests. */
void otr_aws_parse_error(const char *header_type, const char *body, size_t len, char **type,
                         char **message);

#endif
