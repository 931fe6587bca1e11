/* A plan for people (text, markdown for a pull-request comment), for tools
 * (json) and for GitHub Actions (annotations + the step summary). */
#ifndef OTR_CLI_RENDER_PLAN_H
#define OTR_CLI_RENDER_PLAN_H

#include "util/escape.h"
#include "cli/options.h"
#include "plan/plan.h"
#include "util/buf.h"

#include <stdio.h>

/* warnings: what apply would refuse (otr_plan_check_guards' lines), or NULL. */
void otr_render_plan_text(const otr_plan *p, const char *warnings, otr_buf *out, int color);
/* The same written to stream as it is made (a large plan is never held whole). */
void otr_render_plan_text_to(FILE *stream, const otr_plan *p, const char *warnings, int color);
void otr_render_plan_markdown(const otr_plan *p, const char *warnings, otr_buf *out);
void otr_render_plan_github(const otr_plan *p, const char *warnings, otr_buf *out);
/* Rows of a markdown list or table shown before the rest is folded in a
 * <details> block. */
#define OTR_MARKDOWN_FOLD_AFTER 20

/* GitHub's limit on a pull-request comment, in characters (bytes here: a
 * byte count is never smaller). */
#define OTR_MARKDOWN_MAX_COMMENT 65536

/* Cuts markdown that out holds from start on to at most limit bytes, at the
 * end of a line outside a code fence (a <details> block cut there is closed
 * after the last line kept), and says what was cut and where the whole is
 * (what: "plan", "diff"). */
void otr_markdown_cap(otr_buf *out, size_t start, size_t limit, const char *what);

/* "Devices: 3 tasks to create send firmware to 5 things by name and the
 * things of 1 target query." (nothing when no task is created). */
void otr_render_plan_reach(const otr_plan *p, otr_buf *out);
/* What a create or a replace makes, in words (its kind's describe), or nothing. */
void otr_render_action_describe(otr_buf *out, const otr_action *a);

/* The one-line summary: "Plan: 1 to create, ..." or "No changes. ..." */
void otr_render_plan_summary(const otr_plan *p, otr_buf *out);

/* "signed by alice@example.com, ED25519 SHA256:..." or "..., OpenPGP RSA
 * FINGERPRINT" from a signedBy object (nothing for NULL). */
void otr_render_signer(const cJSON *signed_by, otr_buf *out);

#endif
