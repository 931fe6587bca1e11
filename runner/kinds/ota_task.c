/* The OtaTask kind: one OTA task (CreateOtaTask), updated in place only in
 * its Description and TaskConfigurationId, replaced (delete, then create)
 * for anything else. */
#include "kinds/kind.h"
#include "kinds/tags.h"

#include <string.h>

/* EndTime later than StartTime; TaskConfigurationId or TaskConfigurationRef,
 * not both. */
static void check_task(const cJSON *spec, otr_kind_report_fn report, void *ctx)
{
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(spec, "OtaSchedulingConfig");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(sc, "StartTime");
    const cJSON *et = cJSON_GetObjectItemCaseSensitive(sc, "EndTime");
    if (cJSON_IsString(st) && cJSON_IsString(et) &&
        otr_schema_datetime_epoch(et->valuestring) <= otr_schema_datetime_epoch(st->valuestring))
        report(ctx, "spec.OtaSchedulingConfig.EndTime",
               "must be later than StartTime (%s), got \"%s\"", st->valuestring, et->valuestring);
    if (cJSON_GetObjectItemCaseSensitive(spec, "TaskConfigurationId") &&
        cJSON_GetObjectItemCaseSensitive(spec, "TaskConfigurationRef"))
        report(ctx, "spec.TaskConfigurationRef",
               "give TaskConfigurationRef (a configuration in this repository) or "
               "TaskConfigurationId (one made elsewhere), not both");
    otr_tags_check(cJSON_GetObjectItemCaseSensitive(spec, "Tags"), "spec.Tags", report, ctx);
}

static const otr_kind_ref task_refs[] = {
    {"TaskConfigurationRef", "OtaTaskConfiguration", "TaskConfigurationId"},
};
static const char *const task_running[] = {"SCHEDULED", "IN_PROGRESS", NULL};
const otr_kind otr_kind_ota_task = {
    .name = "OtaTask",
    .noun = "task",
    .state_key = "tasks",
    .id_key = "taskId",
    .arn_key = "taskArn",
    .tags_key = "Tags",
    .schema = &otr_schema_ota_task,
    .check = check_task,
    .refs = task_refs,
    .nrefs = sizeof(task_refs) / sizeof(task_refs[0]),
    .updatable = otr_ota_task_update_fields,
    .replace_order = OTR_REPLACE_DELETE_FIRST,
    .running = task_running,
    .conflict_retires = 0,
    .guarded_deletes = 1,
    .describe = otr_describe_task,
    .api = &otr_ota_task_api,
    .tags_in_place = 1,
};
