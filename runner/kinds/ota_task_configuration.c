/* The OtaTaskConfiguration kind: a task configuration
 * (CreateOtaTaskConfiguration). The service cannot update one, so any change
 * is a replace, new first: the new configuration is created, the tasks that
 * refer to it are moved to it with UpdateOtaTask, and the old one is deleted
 * once no recorded task refers to it (a delete the service refuses with 409,
 * still in use, leaves it retired for a later run). */
#include "kinds/kind.h"

const otr_kind otr_kind_ota_task_configuration = {
    .name = "OtaTaskConfiguration",
    .noun = "configuration",
    .state_key = "configurations",
    .id_key = "taskConfigurationId",
    .arn_key = NULL,
    .tags_key = NULL, /* CreateOtaTaskConfiguration takes no tags */
    .schema = &otr_schema_ota_task_configuration,
    .check = NULL,
    .refs = NULL,
    .nrefs = 0,
    .updatable = NULL,
    .replace_order = OTR_REPLACE_CREATE_FIRST,
    .running = NULL,
    .conflict_retires = 1,
    .guarded_deletes = 0,
    .describe = otr_describe_configuration,
    .api = &otr_ota_task_configuration_api,
};
