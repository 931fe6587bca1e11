/* Every kind's behaviour, and a kind's (behaviour.h). */
#include "behaviour/behaviour.h"

#include <stddef.h>

const otr_kind_behaviour *const otr_behaviours[] = {&otr_behaviour_ota_rollout, NULL};

const otr_kind_behaviour *otr_behaviour_of(const otr_kind *k)
{
    for (size_t i = 0; otr_behaviours[i]; i++)
        if (otr_behaviours[i]->kind == k)
            return otr_behaviours[i];
    return NULL;
}
