/* libFuzzer: (status, error-type header, body) -> every response parser. The
 * first byte picks the status, bytes up to the first newline are the
 * x-amzn-ErrorType header, the rest is the body. */
#include "ota/ota.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const long statuses[] = {200, 201, 204, 400, 403, 404, 409, 429, 500, 503};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    long status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    const char *nl = memchr(rest, '\n', len);
    char *header = nl ? strndup(rest, (size_t)(nl - rest)) : NULL;
    const char *body = nl ? nl + 1 : rest;
    size_t blen = nl ? len - (size_t)(nl - rest) - 1 : len;

    otr_aws_call *call = otr_aws_call_new("Fuzz", "GET", NULL, "/ota-tasks");
    call->status = status;
    call->ok = status >= 200 && status < 300;
    otr_buf_append(&call->response, body, blen);
    otr_error err = OTR_ERROR_INIT;

    char *type, *message;
    otr_aws_parse_error(header, body, blen, &type, &message);
    free(type);
    free(message);

    char *id, *arn, *next;
    if (otr_ota_parse_create_task(call, &id, &arn, &err) == 0) {
        free(id);
        free(arn);
    }
    otr_error_clear(&err);
    if (otr_ota_parse_create_task_configuration(call, &id, &arn, &err) == 0)
        free(id);
    otr_error_clear(&err);
    otr_remote r;
    if (otr_ota_parse_get_task(call, &r, &err) == 0)
        otr_remote_clear(&r);
    otr_error_clear(&err);
    if (otr_ota_parse_get_task_configuration(call, &r, &err) == 0)
        otr_remote_clear(&r);
    otr_error_clear(&err);
    otr_remote *items;
    size_t n;
    if (otr_ota_parse_list_tasks(call, &items, &n, &next, &err) == 0) {
        otr_remotes_free(items, n);
        free(next);
    }
    otr_error_clear(&err);
    if (otr_ota_parse_list_task_configurations(call, &items, &n, &next, &err) == 0) {
        otr_remotes_free(items, n);
        free(next);
    }
    otr_error_clear(&err);
    otr_ota_execution *e;
    if (otr_ota_parse_list_task_executions(call, &e, &n, &next, &err) == 0) {
        otr_ota_executions_free(e, n);
        free(next);
    }
    otr_error_clear(&err);
    cJSON *tags;
    if (otr_ota_parse_list_tags(call, &tags, &err) == 0)
        cJSON_Delete(tags);
    otr_error_clear(&err);
    otr_buf desc = OTR_BUF_INIT;
    otr_aws_call_describe(call, &desc);
    otr_buf_free(&desc);
    otr_aws_call_free(call);
    free(header);
    return 0;
}
