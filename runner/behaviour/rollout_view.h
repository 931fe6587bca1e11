/*
 * A staged rollout's waves as its kind sees them (the view of
 * kinds/ota_rollout.c: {"revision", "waves": [{"name", "state", "taskId",
 * "counts", "succeededPercent", "failedPercent", "passedAt", "soakUntil",
 * "why"}], "halt", "next", "promotes"}), for plan, status and diff: text,
 * markdown, GitHub annotations and Mermaid (the rollout's view hooks,
 * behaviour/rollout.c).
 */
#ifndef OTR_BEHAVIOUR_ROLLOUT_VIEW_H
#define OTR_BEHAVIOUR_ROLLOUT_VIEW_H

#include "util/buf.h"

#include <cjson/cJSON.h>

/* "Rollout NAME (revision N):" and one line per wave, then its halt, the
 * next action and a promotion; each line starts with indent. */
void otr_render_rollout_text(otr_buf *out, const char *name, const cJSON *view, const char *indent);
/* The same as a markdown table, for a pull-request comment. */
void otr_render_rollout_markdown(otr_buf *out, const char *name, const cJSON *view);
/* A Mermaid flowchart of the waves (GitHub and GitLab draw it): each wave's
 * targets and state, the wave this change starts or promotes to marked;
 * nothing for a view without waves. */
void otr_render_rollout_mermaid(otr_buf *out, const cJSON *view);
/* The rollout's own state, from its newest started wave: running, soaking,
 * held, paused, passed, halted, complete or unknown. */
const char *otr_rollout_view_state(const cJSON *view);

/* Is a wave of the view halted? */
int otr_rollout_view_halted(const cJSON *view);
/* The wave a change promotes the rollout to (holdAfter moved on), or NULL. */
const char *otr_rollout_view_promotes(const cJSON *view);
/* A promotion (a notice) and a halt (a warning), as GitHub workflow commands. */
void otr_render_rollout_github(otr_buf *out, const char *name, const cJSON *view);

/* Its metric families ("NAME\tTYPE\tHELP", NULL-ended), and the samples of
 * a view: [{"family", "labels": {...}, "value"}] appended to out. */
extern const char *const otr_rollout_metric_families[];
void otr_rollout_view_metrics(const char *name, const cJSON *view, cJSON *out);

struct otr_record;
/* What people are told of a rollout's change from before (NULL: new) to
 * after (behaviour/rollout_events.c): [{"type": "wave.started" |
 * "wave.passed" | "rollout.halted" | "rollout.completed", "key", "data":
 * {"summary", "rollout", "revision", "wave", ...}}]. */
cJSON *otr_rollout_events(const struct otr_record *before, const struct otr_record *after);

#endif
