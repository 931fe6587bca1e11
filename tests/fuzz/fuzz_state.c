/* libFuzzer: bytes -> the state loader -> a state or an error; a loaded state
 * is written back out and read again. */
#include "state/state.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
            otr_state_find(s, s->records[i].name);
        }
    }
    otr_error_clear(&err);
    otr_state_free(s);
    return 0;
}
