/* Renames: a manifest's metadata.previousNames (see plan/internal.h). */
#include "plan/internal.h"

#include "state/state.h"
#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

static int refuse(otr_buf *refusals, const otr_buf *text)
{
    otr_buf_printf(refusals, "%s%s", refusals->len ? "\n" : "", otr_buf_cstr(text));
    return otr_buf_failed(refusals) ? -1 : 0;
}

/* The record under a previous name of m, whose own name is not recorded: 1
 * with mv set (and its note added), 0 when there is none, or a refusal
 * (two of its previous names recorded, a call of an interrupted run pending
 * on it); -1 without memory. */
static int find_move(otr_plan *p, otr_state *view, const otr_state *state, const otr_manifest *m,
                     otr_move *mv, otr_buf *refusals)
{
    otr_buf msg = OTR_BUF_INIT;
    const char *from = NULL;
    int rc = 0;
    memset(mv, 0, sizeof(*mv));
    if (!m->nprevious || otr_state_find(view, m->kind, m->name))
        return 0;
    for (size_t k = 0; k < m->nprevious && rc == 0; k++) {
        if (!otr_state_find(view, m->kind, m->previous[k]))
            continue;
        if (from) {
            otr_address_short(&msg, m->kind, m->name);
            otr_buf_printf(&msg,
                           ": its previous names %s and %s are both recorded; keep one (ota-runner "
                           "state rm the other's address, once its resource is dealt with)",
                           from, m->previous[k]);
            rc = refuse(refusals, &msg) < 0 ? -1 : 2;
        }
        from = m->previous[k];
    }
    for (size_t i = 0; rc == 0 && from && i < state->npending; i++) {
        const otr_intent *in = &state->pending[i];
        if (in->rec.kind != m->kind || strcmp(in->rec.name, from))
            continue;
        otr_address_short(&msg, m->kind, m->name);
        otr_buf_printf(&msg,
                       ": %s, its previous name, has a call an interrupted run left; apply the "
                       "commit before the rename first, then rename",
                       from);
        rc = refuse(refusals, &msg) < 0 ? -1 : 2;
    }
    if (rc || !from) {
        otr_buf_free(&msg);
        return rc < 0 ? -1 : 0;
    }
    *mv = (otr_move){m->kind, strdup(from), strdup(m->name)};
    otr_address_short(&msg, m->kind, m->name);
    otr_buf_printf(&msg,
                   ": moved from %s (metadata.previousNames): the same %s, recorded under the "
                   "new name without a call",
                   from, otr_kind_sent(m->kind)->noun);
    rc =
        !mv->from || !mv->to || otr_buf_failed(&msg) || otr_plan_add_notes(p, msg.ptr) < 0 ? -1 : 1;
    otr_buf_free(&msg);
    return rc;
}

int otr_plan_find_moves(otr_plan *p, otr_state *view, const otr_state *state,
                        const otr_manifest_set *set, otr_buf *refusals)
{
    for (size_t i = 0; i < set->count; i++) {
        otr_move mv;
        int got = find_move(p, view, state, set->items[i], &mv, refusals);
        if (got < 0) {
            free(mv.from);
            free(mv.to);
            return -1;
        }
        if (!got)
            continue;
        otr_move *grown = realloc(p->moves, (p->nmoves + 1) * sizeof(*grown));
        if (!grown) {
            free(mv.from);
            free(mv.to);
            return -1;
        }
        p->moves = grown;
        p->moves[p->nmoves++] = mv;
    }
    return 0;
}
