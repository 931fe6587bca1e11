/*
 * What validate, tokens (and later plan and apply) share: open the source
 * named by the options, load and validate every manifest, and print the
 * diagnostics. otr_loaded owns everything; free it with otr_loaded_free.
 */
#ifndef OTR_CLI_LOAD_H
#define OTR_CLI_LOAD_H

#include "cli/options.h"
#include "kinds/manifest.h"
#include "source/source.h"
#include "util/error.h"

#include <cjson/cJSON.h>

typedef struct otr_loaded {
    otr_source *source;
    otr_manifest_set set;
    otr_diags diags;
    int verified;           /* the commit's signature was checked (--allowed-signers) */
    otr_source_trust trust; /* who signed it */
    int warned;             /* otr_loaded_warn was called */
} otr_loaded;

/* Returns 0 when the source could be read (diags may still hold errors),
 * -1 with a message printed when it could not, or when its commit is not
 * signed as --allowed-signers asks (checked before any manifest is read).
 * With --verify-commits range the repository stays open for
 * otr_loaded_verify_range. On failure l is freed (freeing it again is
 * harmless). */
OTR_MUST_USE int otr_load(otr_loaded *l, const otr_options *o);

/* otr_load, but the check for uncommitted files under the path runs on
 * beside the caller (otr_source_uncommitted_start) until otr_loaded_warn,
 * which the caller calls before it exits. */
OTR_MUST_USE int otr_load_deferred(otr_loaded *l, const otr_options *o);

/* Warns (once) of files under the path that differ from the commit read,
 * waiting for the check otr_load_deferred began. */
void otr_loaded_warn(otr_loaded *l);

/* With --allowed-signers: otr_source_verify against that file (0 without
 * it). On failure err says the commit is not trusted, and why. */
OTR_MUST_USE int otr_verify_source(otr_source *src, const otr_options *o, int range,
                                   const char *since, otr_source_trust *out, otr_error *err);

/* --verify-commits range: every commit since the state's last applied one
 * (since) that changes a manifest. 0, or -1 with a message printed. Closes
 * the repository. */
OTR_MUST_USE int otr_loaded_verify_range(otr_loaded *l, const otr_options *o, const char *since);

/* {"principal", "key", "fingerprint", "format", "commits"}, or NULL when
 * unchecked (otr_render_signer says it in words). */
cJSON *otr_loaded_signed_by_json(const otr_loaded *l);

void otr_loaded_free(otr_loaded *l);

/* Prints diagnostics as text on stderr (in colour on a terminal). */
void otr_print_diags_text(const otr_diags *d, const otr_options *o);

/* "a1b2c3d4e5f6" or "a1b2c3d4e5f6+worktree". */
const char *otr_loaded_commit_label(const otr_loaded *l, char *buf, size_t size);

/* Prints "ota-runner: message" on stderr. */
void otr_print_error(const otr_error *err);

#endif
