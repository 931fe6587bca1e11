/* libFuzzer: bytes -> the manifest loader and validator -> diagnostics;
 * and the same bytes as ota-runner.yaml (the environments' file), selected
 * from as --env would. */
#include "envs/envs.h"
#include "kinds/manifest.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    otr_manifest_set set = OTR_MANIFEST_SET_INIT;
    otr_diags d = OTR_DIAGS_INIT;
    otr_error err = OTR_ERROR_INIT;
    /* the same bytes as two files, so the cross-file name check runs too;
     * out of path order, as files come from a pack */
    otr_manifest_add_file(&set, 1, "b.yaml", (const char *)data, size, &d, &err);
    otr_manifest_add_file(&set, 0, "a.yaml", (const char *)data, size, &d, &err);
    if (otr_manifest_set_finish(&set, &d) < 0)
        abort(); /* only without memory */
    otr_buf out = OTR_BUF_INIT;
    for (size_t i = 0; i < d.count; i++)
        otr_diag_format(&d.items[i], &out);
    otr_buf_free(&out);
    otr_error_clear(&err);
    otr_diags_free(&d);
    otr_manifest_set_free(&set);
    otr_envs envs;
    otr_diags ed = OTR_DIAGS_INIT;
    if (otr_envs_parse(&envs, "ota-runner.yaml", (const char *)data, size, &ed, &err) == 0) {
        size_t *picked = NULL, n = 0;
        static const char *const sel[] = {"all", "staging", "stage=production,tier=1"};
        for (size_t i = 0; i < 3; i++) {
            if (otr_envs_select(&envs, sel[i], &picked, &n, &err) == 0)
                free(picked);
            otr_error_clear(&err);
        }
        otr_envs_free(&envs);
    }
    otr_error_clear(&err);
    otr_diags_free(&ed);
    return 0;
}
