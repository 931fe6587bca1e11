/* ota-runner status: every recorded task with its live status. */
#include "cli/commands.h"
#include "cli/planning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct row {
    const otr_record *rec;
    otr_ota_task task;
    int missing;
    char *error;
    otr_aws_call *call;
} row;

static void on_get(otr_aws_call *call, void *ctx)
{
    row *r = ctx;
    otr_error err = OTR_ERROR_INIT;
    if (!call->ok && call->status == 404) {
        r->missing = 1;
        return;
    }
    if (otr_ota_parse_get_task(call, &r->task, &err) < 0)
        r->error = strdup(otr_error_message(&err));
    otr_error_clear(&err);
}

int otr_cmd_status(const otr_options *o)
{
    otr_planning pl;
    otr_error err = OTR_ERROR_INIT;
    int rc = OTR_EXIT_OK;
    memset(&pl, 0, sizeof(pl));
    if (otr_state_load(&pl.state, otr_options_state_path(o), &err) < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
        return OTR_EXIT_ERROR;
    }
    size_t n = pl.state->count;
    row *rows = calloc(n + 1, sizeof(*rows));
    if (n && (rc = otr_planning_open_service(&pl, o)) != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        rows[i].rec = &pl.state->records[i];
        rows[i].call = otr_ota_get_task(rows[i].rec->task_id, rows[i].rec->name);
        rows[i].call->done = on_get;
        rows[i].call->ctx = &rows[i];
        otr_aws_client_submit(pl.service.client, rows[i].call);
    }
    if (n && otr_aws_client_run(pl.service.client, &err) < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
        rc = OTR_EXIT_ERROR;
        goto done;
    }
    if (o->output == OTR_OUT_JSON) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) {
            cJSON *x = cJSON_CreateObject();
            const otr_ota_counts *c = &rows[i].task.counts;
            cJSON_AddStringToObject(x, "name", rows[i].rec->name);
            cJSON_AddStringToObject(x, "taskId", rows[i].rec->task_id);
            cJSON_AddStringToObject(x, "status",
                                    rows[i].missing       ? "MISSING"
                                    : rows[i].task.status ? rows[i].task.status
                                                          : "UNKNOWN");
            if (rows[i].error)
                cJSON_AddStringToObject(x, "error", rows[i].error);
            if (c->present) {
                cJSON *k = cJSON_AddObjectToObject(x, "counts");
                cJSON_AddNumberToObject(k, "queued", (double)c->queued);
                cJSON_AddNumberToObject(k, "inProgress", (double)c->in_progress);
                cJSON_AddNumberToObject(k, "succeeded", (double)c->succeeded);
                cJSON_AddNumberToObject(k, "failed", (double)c->failed);
                cJSON_AddNumberToObject(k, "timedOut", (double)c->timed_out);
                cJSON_AddNumberToObject(k, "canceled", (double)c->canceled);
                cJSON_AddNumberToObject(k, "rejected", (double)c->rejected);
                cJSON_AddNumberToObject(k, "removed", (double)c->removed);
            }
            cJSON_AddItemToArray(arr, x);
        }
        char *text = cJSON_Print(arr);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(arr);
    } else {
        int w = 4;
        for (size_t i = 0; i < n; i++)
            if ((int)strlen(rows[i].rec->name) > w)
                w = (int)strlen(rows[i].rec->name);
        printf("%-*s  %-22s %-12s %9s %9s %9s %9s\n", w, "NAME", "TASK", "STATUS", "SUCCEEDED",
               "FAILED", "RUNNING", "QUEUED");
        for (size_t i = 0; i < n; i++) {
            const otr_ota_counts *c = &rows[i].task.counts;
            const char *status = rows[i].missing       ? "MISSING"
                                 : rows[i].error       ? "ERROR"
                                 : rows[i].task.status ? rows[i].task.status
                                                       : "?";
            printf("%-*s  %-22s %-12s", w, rows[i].rec->name, rows[i].rec->task_id, status);
            if (c->present)
                printf(" %9ld %9ld %9ld %9ld", c->succeeded, c->failed + c->timed_out + c->rejected,
                       c->in_progress, c->queued);
            printf("\n");
        }
        printf("%zu task%s in %s\n", n, n == 1 ? "" : "s", otr_options_state_path(o));
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].error) {
            fprintf(stderr, "ota-runner: error: %s\n", rows[i].error);
            rc = OTR_EXIT_ERROR;
        } else if (rows[i].missing) {
            fprintf(stderr,
                    "ota-runner: warning: %s: task %s no longer exists in the service; "
                    "the next plan recreates it\n",
                    rows[i].rec->name, rows[i].rec->task_id);
        }
done:
    for (size_t i = 0; i < n; i++) {
        otr_ota_task_clear(&rows[i].task);
        free(rows[i].error);
        otr_aws_call_free(rows[i].call);
    }
    free(rows);
    otr_planning_free(&pl);
    return rc;
}
