/*
 * What validate, tokens (and later plan and apply) share: open the source
 * named by the options, load and validate every manifest, and print the
 * diagnostics. otr_loaded owns everything; free it with otr_loaded_free.
 */
#ifndef OTR_CLI_LOAD_H
#define OTR_CLI_LOAD_H

#include "cli/options.h"
#include "manifest/manifest.h"
#include "source/source.h"
#include "util/error.h"

typedef struct otr_loaded {
    otr_source *source;
    otr_manifest_set set;
    otr_diags diags;
} otr_loaded;

/* Returns 0 when the source could be read (diags may still hold errors),
 * -1 with a message printed when it could not. */
int otr_load(otr_loaded *l, const otr_options *o);

void otr_loaded_free(otr_loaded *l);

/* Prints diagnostics as text on stderr (in colour on a terminal). */
void otr_print_diags_text(const otr_diags *d, const otr_options *o);

/* "a1b2c3d4e5f6" or "a1b2c3d4e5f6+worktree". */
const char *otr_loaded_commit_label(const otr_loaded *l, char *buf, size_t size);

/* Prints "ota-runner: message" on stderr. */
void otr_print_error(const otr_error *err);

#endif
