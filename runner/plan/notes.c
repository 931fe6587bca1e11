/* What a plan shows beside its actions: its notes, and each kind's view
 * (see plan.h and plan/internal.h). */
#include "plan/internal.h"

#include <stdlib.h>
#include <string.h>

int otr_plan_add_notes(otr_plan *p, const char *text)
{
    for (const char *line = text; line && *line;) {
        size_t len = strcspn(line, "\n");
        char **x = realloc(p->notes, (p->nnotes + 1) * sizeof(*x));
        if (!x)
            return -1;
        p->notes = x;
        if (len && !(p->notes[p->nnotes++] = strndup(line, len)))
            return -1;
        line += len + (line[len] == '\n');
    }
    return 0;
}

int otr_plan_add_detail(otr_plan *p, const otr_kind *k, const char *name, cJSON *view)
{
    otr_detail *x = realloc(p->details, (p->ndetails + 1) * sizeof(*x));
    if (!x)
        return -1;
    p->details = x;
    x[p->ndetails].kind = k;
    x[p->ndetails].view = view;
    if (!(x[p->ndetails].name = strdup(name)))
        return -1;
    p->ndetails++;
    return 0;
}
