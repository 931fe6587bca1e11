/* A state's counts in words (see render_state.h). */
#include "cli/render_state.h"

#include <string.h>

void otr_render_state_counts(const otr_state *s, otr_buf *out)
{
    size_t shown = 0;
    for (size_t k = 0; otr_kinds[k]; k++) {
        size_t n = 0;
        for (size_t i = 0; i < s->count; i++)
            n += s->records[i].kind == otr_kinds[k];
        if (n || otr_kinds[k] == &otr_kind_ota_task)
            otr_buf_printf(out, "%s%zu %s%s", shown++ ? ", " : "", n, otr_kinds[k]->noun,
                           n == 1 ? "" : "s");
    }
    if (s->nretired)
        otr_buf_printf(out, ", %zu retired", s->nretired);
}
