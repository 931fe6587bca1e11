/* What a state holds, in words: "1 configuration, 5 tasks". */
#ifndef OTR_CLI_RENDER_STATE_H
#define OTR_CLI_RENDER_STATE_H

#include "state/state.h"
#include "util/buf.h"

/* The records of each kind that has any (tasks always), and the retired. */
void otr_render_state_counts(const otr_state *s, otr_buf *out);

#endif
