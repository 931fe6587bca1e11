/*
 * The arithmetic of a staged rollout's gate (kind OtaRollout), apart from
 * the kind so it can be read and tested on its own.
 *
 * A wave's gate is the rollout's `gate` with the wave's own keys over it, the
 * defaults under both. Judged on the wave's TaskProcessingDetails:
 *
 *   things    = every thing the task counts (queued, running, and finished)
 *   finished  = succeeded + failed + timed out + rejected + canceled
 *   failed %  = (failed + timed out + rejected) / things * 100
 *   succeeded % = succeeded / things * 100
 *
 *   halt  when finished >= minFinished and failed % > maxFailedPercent, or
 *         when the deadline (from the wave's start) passes without a pass
 *   pass  when finished >= minFinished and succeeded % >= minSucceededPercent
 *   wait  otherwise (and always while the task counts no thing)
 */
#ifndef OTR_KINDS_OTA_ROLLOUT_H
#define OTR_KINDS_OTA_ROLLOUT_H

#include "ota/ota.h"
#include "util/buf.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define OTR_GATE_DEFAULT_MIN_SUCCEEDED 95.0
#define OTR_GATE_DEFAULT_MAX_FAILED 5.0
#define OTR_GATE_DEFAULT_MIN_FINISHED 1
#define OTR_GATE_DEFAULT_SOAK 0
#define OTR_GATE_NO_DEADLINE (-1)

typedef struct otr_gate {
    double min_succeeded; /* percent */
    double max_failed;    /* percent */
    long min_finished;
    int64_t soak;     /* seconds */
    int64_t deadline; /* seconds from the wave's start; OTR_GATE_NO_DEADLINE */
} otr_gate;

/* The gate of a wave: spec.gate, then wave.gate over it (either may be NULL). */
void otr_rollout_gate(const cJSON *spec_gate, const cJSON *wave_gate, otr_gate *g);

typedef enum otr_verdict { OTR_VERDICT_WAIT, OTR_VERDICT_PASS, OTR_VERDICT_HALT } otr_verdict;

/* The verdict on a wave started at started (seconds since 1970) with counts
 * c, at now; why says what it rests on ("97.5% succeeded of 40 (minimum 95%)"). */
otr_verdict otr_rollout_judge(const otr_gate *g, const otr_ota_counts *c, int64_t started,
                              int64_t now, otr_buf *why);

/* things, finished and the two shares of c (the shares 0 when things is 0). */
void otr_rollout_shares(const otr_ota_counts *c, long *things, long *finished, double *succeeded,
                        double *failed);

/* What the rollout's description (kinds/ota_rollout.c) and its behaviour
 * (behaviour/rollout.c) both read: a spec's waves, the waves a record's
 * progress started, a member's string (or NULL), a wave's targets (its
 * Target and OtaTargetQueryString), the body of a wave's task (the
 * rollout's task with the wave's targets; NULL without memory), a string
 * member set (or removed, for NULL), and a wave's targets in words. */
struct otr_record;
const cJSON *otr_rollout_waves(const cJSON *spec);
const cJSON *otr_rollout_started(const struct otr_record *rec);
const char *otr_rollout_str(const cJSON *o, const char *key);
cJSON *otr_rollout_targets(const cJSON *wave);
cJSON *otr_rollout_wave_body(const cJSON *task, const cJSON *targets);
void otr_rollout_set(cJSON *o, const char *key, const char *value);
void otr_rollout_targets_text(const cJSON *w, otr_buf *out);

#endif
