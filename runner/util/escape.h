/*
 * Untrusted text in each output format, on that format's own terms: what a
 * manifest, a file name, the state or the service says must never read as
 * a line, a link, a mention or markup of ota-runner's own (a pull request
 * that could forge "Plan: 0 to create" in its own review). Manifests are
 * refused with such characters (manifest/validate.c); these escape
 * whatever else reaches an output.
 *
 * "Forging" characters: C0 and C1 controls, DEL, the line and paragraph
 * separators, bidirectional overrides and isolates.
 */
#ifndef OTR_UTIL_ESCAPE_H
#define OTR_UTIL_ESCAPE_H

#include "util/buf.h"

#include <stddef.h>
#include <stdio.h>

/* Text for a terminal or a log, in place from byte start of out on: every
 * forging character but LF (and ESC, with color: the renderer's own
 * colours) shown as \r, \t, \x1b, \u202e. */
void otr_text_sanitize(otr_buf *out, size_t start, int color);

/* prefix, then text sanitized (as above, no colour), then a newline. */
void otr_print_line(FILE *f, const char *prefix, const char *text);

/* s in a markdown table cell: no cell break ('|'), no line break, no HTML
 * ('<', '&'), no link or image ('[', ']', '(', ')', '!'), no code span
 * ('`'), no @-mention, no escape of ours undone ('\'); forging characters
 * shown as \uXXXX. */
void otr_md_cell(otr_buf *out, const char *s);

/* s for a GitHub workflow command: '%', CR and LF as GitHub decodes them
 * (%25, %0D, %0A), ',' and ':' too in a property (file=..., title=...);
 * other forging characters as %XX, which GitHub leaves as they are. */
void otr_github_escape(otr_buf *out, const char *s, int property);

/* s in a Mermaid label ["..."]: quotes and markup as Mermaid's entities,
 * a backtick or a forging character as a space. */
void otr_mermaid_text(otr_buf *out, const char *s);

#endif
