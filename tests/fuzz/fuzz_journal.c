/* libFuzzer: bytes -> the journal replay over a small valid snapshot. */
#include "state/state.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const char snapshot[] =
    "{\"format\":\"ota-runner-state\",\"version\":2,\"lineage\":"
    "\"123e4567-e89b-42d3-a456-426614174000\",\"serial\":3,\"tasks\":{\"a\":{\"phase\":\"created\","
    "\"clientToken\":\"t\",\"spec\":{\"S3Url\":\"s3://b/k\",\"OtaType\":\"ONE_TIME\","
    "\"TaskConfigurationId\":\"C1\"},\"specDigest\":\"sha256:00\",\"taskId\":\"T1\"}},"
    "\"configurations\":{\"c\":{\"phase\":\"created\",\"spec\":{\"Name\":\"N\"},"
    "\"specDigest\":\"sha256:01\",\"taskConfigurationId\":\"C1\"}},"
    "\"retired\":[{\"kind\":\"OtaTaskConfiguration\",\"name\":\"c\",\"id\":\"C0\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    otr_state *s = NULL;
    otr_error err = OTR_ERROR_INIT;
    if (otr_state_from_text(&s, "fuzz.json", snapshot, strlen(snapshot), (const char *)data, size,
                            &err) == 0) {
        for (size_t i = 0; i < s->npending; i++)
            otr_state_find(s, s->pending[i].rec.kind, s->pending[i].rec.name);
    }
    otr_error_clear(&err);
    otr_state_free(s);
    return 0;
}
