/* libFuzzer: bytes -> the state loader -> a state or an error; a loaded state
 * is written back out and must read again. */
#include "state/internal.h"
#include "state/state.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    otr_state *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    if (otr_state_from_text(&s, "fuzz.json", (const char *)data, size, NULL, 0, &err) == 0) {
        for (size_t i = 0; i < s->count; i++) {
            cJSON *j = otr_record_to_json(&s->records[i]);
            char *text = cJSON_PrintUnformatted(j);
            free(text);
            cJSON_Delete(j);
            otr_state_find(s, s->records[i].kind, s->records[i].name);
        }
        char *again = otr_state_snapshot_text(s);
        otr_state *t = NULL;
        if (again && otr_state_from_text(&t, "again.json", again, strlen(again), NULL, 0, &err) < 0)
            abort(); /* what the loader took, it must take back */
        otr_state_free(t);
        free(again);
    }
    otr_error_clear(&err);
    otr_state_free(s);
    return 0;
}
