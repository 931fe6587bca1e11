/*
 * Notifications: what a rollout did (a wave started or passed, a halt, the
 * end) and a failed apply, told to webhooks as CloudEvents 1.0 in structured
 * mode (application/cloudevents+json), or, for a URL written
 * slack+https://..., as a Slack incoming-webhook message.
 *
 * With a secret (OTA_RUNNER_NOTIFY_SECRET), every body is signed: the header
 *   X-Ota-Runner-Signature: sha256=HEX
 * holds HMAC-SHA256(secret, the body's bytes) in lowercase hex, so a receiver
 * recomputes it over the raw body and compares in constant time.
 *
 * Delivery is at least once: an event waits in the state's outbox, saved
 * with the change that caused it, until every URL of a run took it (a 2xx
 * answer); a crash after sending and before saving sends it once more. Its
 * id is stable, so a receiver drops the repeat.
 */
#ifndef OTR_NOTIFY_NOTIFY_H
#define OTR_NOTIFY_NOTIFY_H

#include "util/error.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define OTR_NOTIFY_TYPE_PREFIX "dev.ota-runner."
#define OTR_NOTIFY_SIGNATURE_HEADER "X-Ota-Runner-Signature"
/* The events an outbox keeps at most; the oldest go first. */
#define OTR_NOTIFY_OUTBOX_MAX 200

/* A CloudEvent: type (after the prefix: "rollout.halted"), source (the
 * repository and path), subject (an address), a stable id made from key, the
 * time and data (taken). NULL without memory. */
cJSON *otr_notify_event(const char *type, const char *source, const char *subject, const char *key,
                        int64_t time, cJSON *data);

/* Is url one ota-runner posts to? https://, or http:// to loopback; either
 * with slack+ in front. Says why not in err. */
OTR_MUST_USE int otr_notify_check_url(const char *url, otr_error *err);

/* url for messages: its scheme and host (a webhook's path is its secret). */
void otr_notify_url_shown(const char *url, char *out, size_t size);

/* A short digest of url, kept in the outbox to say who took an event. */
void otr_notify_url_digest(const char *url, char out[17]);

/* The body and content type url gets for event, signed with secret (may be
 * NULL) into sig ("sha256=HEX", "" without a secret). The caller frees the
 * body. */
char *otr_notify_body(const char *url, const cJSON *event, const char **content_type);
void otr_notify_sign(const char *secret, const char *body, char sig[72]);

/* POSTs body to url (the slack+ prefix taken off), attempts times at most,
 * waiting between them, each bounded by timeout_ms; 0 once a 2xx answer
 * came, -1 with err saying what the last attempt got. */
OTR_MUST_USE int otr_notify_post(const char *url, const char *body, const char *content_type,
                                 const char *sig, int attempts, long timeout_ms, otr_error *err);

#endif
