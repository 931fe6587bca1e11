/*
 * The OTA operations of AWS IoT Managed integrations, with the service model's
 * methods, paths and success codes: request builders that return an
 * otr_aws_call (the caller runs it on an otr_aws_client and frees it), and
 * parsers that turn an answer into typed values, refusing answers of the
 * wrong shape. Parsed values own their strings; free them with the matching
 * _free / _clear.
 */
#ifndef OTR_OTA_OTA_H
#define OTR_OTA_OTA_H

#include "aws/client.h"
#include "util/error.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct otr_ota_counts {
    int present;
    long queued, in_progress, succeeded, failed, timed_out, canceled, rejected, removed;
} otr_ota_counts;

/* What the service says of one task or configuration, from a list or a get.
 * Owns its strings; clear it with otr_remote_clear. */
typedef struct otr_remote {
    char *id;          /* TaskId / TaskConfigurationId */
    char *arn;         /* TaskArn, or NULL */
    char *name;        /* a configuration's Name, or NULL */
    char *status;      /* a task's: IN_PROGRESS, CANCELED, COMPLETED, DELETION_IN_PROGRESS,
                          SCHEDULED; NULL for a configuration */
    char *uses_id;     /* a task's TaskConfigurationId (a list says it too), or NULL */
    double created_at; /* seconds since 1970; 0 when absent */
    double last_updated_at;
    otr_ota_counts counts;
    cJSON *fields; /* a get: the whole answer (for drift and import); NULL from a list */
} otr_remote;

void otr_remote_clear(otr_remote *r);
void otr_remotes_free(otr_remote *r, size_t n);

/* The largest page the model allows for the list operations. */
#define OTR_OTA_MAX_PAGE 1000

typedef struct otr_ota_execution {
    char *managed_thing_id;
    char *status;
    long execution_number;
    long retry_attempt;
    double last_updated_at; /* epoch seconds; 0 when the service left it out */
} otr_ota_execution;

void otr_ota_executions_free(otr_ota_execution *e, size_t n);

/* CreateOtaTask: POST /ota-tasks -> 201. The body is spec (CreateOtaTask's
 * fields, without ClientToken) plus ClientToken, in canonical form. */
otr_aws_call *otr_ota_create_task(const cJSON *spec, const char *client_token, const char *subject);
OTR_MUST_USE int otr_ota_parse_create_task(const otr_aws_call *call, char **task_id,
                                           char **task_arn, otr_error *err);

/* GetOtaTask: GET /ota-tasks/{Identifier} -> 200. */
otr_aws_call *otr_ota_get_task(const char *task_id, const char *subject);
OTR_MUST_USE int otr_ota_parse_get_task(const otr_aws_call *call, otr_remote *out, otr_error *err);

/* ListOtaTasks: GET /ota-tasks?MaxResults&NextToken -> 200, pages of
 * OTR_OTA_MAX_PAGE. */
otr_aws_call *otr_ota_list_tasks(const char *next_token);
OTR_MUST_USE int otr_ota_parse_list_tasks(const otr_aws_call *call, otr_remote **tasks, size_t *n,
                                          char **next_token, otr_error *err);

/* The members an UpdateOtaTask sets (UpdateOtaTaskRequest's, but for its
 * Identifier), NULL-ended: what a task's kind updates in place. */
extern const char *const otr_ota_task_update_fields[];

/* UpdateOtaTask: PUT /ota-tasks/{Identifier} -> 204, with the Description
 * and TaskConfigurationId of spec (those it has). */
otr_aws_call *otr_ota_update_task(const char *task_id, const cJSON *spec, const char *subject);

/* DeleteOtaTask: DELETE /ota-tasks/{Identifier} -> 200. */
otr_aws_call *otr_ota_delete_task(const char *task_id, const char *subject);
/* TagResource: sets tags (added or changed keys) on the task arn; and
 * UntagResource: removes the n keys (n > 0). Tags are changed in place:
 * UpdateOtaTask cannot, and a replace would cancel the task's devices. */
otr_aws_call *otr_ota_tag_resource(const char *arn, const cJSON *tags, const char *subject);
otr_aws_call *otr_ota_untag_resource(const char *arn, const char *const *keys, size_t n,
                                     const char *subject);

/* ListTagsForResource: GET /tags/{ResourceArn} -> 200 {"tags": {...}}, for
 * a get that leaves the tags out (a service may). *tags: the map (maybe
 * empty), the caller's. */
otr_aws_call *otr_ota_list_tags(const char *arn, const char *subject);
int otr_ota_parse_list_tags(const otr_aws_call *call, cJSON **tags, otr_error *err);

/* ListOtaTaskExecutions: GET /ota-tasks/{Identifier}/devices -> 200. */
otr_aws_call *otr_ota_list_task_executions(const char *task_id, const char *next_token,
                                           int max_results);
OTR_MUST_USE int otr_ota_parse_list_task_executions(const otr_aws_call *call,
                                                    otr_ota_execution **items, size_t *n,
                                                    char **next_token, otr_error *err);

/* CreateOtaTaskConfiguration: POST /ota-task-configurations -> 201. request
 * holds Name, Description, PushConfig. arn is always NULL (configurations
 * have none). */
otr_aws_call *otr_ota_create_task_configuration(const cJSON *request, const char *client_token,
                                                const char *subject);
OTR_MUST_USE int otr_ota_parse_create_task_configuration(const otr_aws_call *call, char **id,
                                                         char **arn, otr_error *err);
/* GetOtaTaskConfiguration: GET /ota-task-configurations/{Identifier} -> 200. */
otr_aws_call *otr_ota_get_task_configuration(const char *id, const char *subject);
OTR_MUST_USE int otr_ota_parse_get_task_configuration(const otr_aws_call *call, otr_remote *out,
                                                      otr_error *err);
/* ListOtaTaskConfigurations: GET /ota-task-configurations -> 200. */
otr_aws_call *otr_ota_list_task_configurations(const char *next_token);
OTR_MUST_USE int otr_ota_parse_list_task_configurations(const otr_aws_call *call,
                                                        otr_remote **items, size_t *n,
                                                        char **next_token, otr_error *err);
/* DeleteOtaTaskConfiguration: DELETE /ota-task-configurations/{Identifier} -> 204. */
otr_aws_call *otr_ota_delete_task_configuration(const char *id, const char *subject);

/* One resource type's calls and their parsers, as the kinds use them: a
 * task's (a rollout's waves are tasks) and a task configuration's. A NULL
 * member: the service has no such call for it. */
typedef struct otr_ota_api {
    otr_aws_call *(*create_call)(const cJSON *body, const char *token, const char *subject);
    int (*parse_create)(const otr_aws_call *call, char **id, char **arn, otr_error *err);
    otr_aws_call *(*update_call)(const char *id, const cJSON *spec, const char *subject);
    otr_aws_call *(*get_call)(const char *id, const char *subject);
    int (*parse_get)(const otr_aws_call *call, otr_remote *out, otr_error *err);
    /* tags changed in place on the resource's ARN, and read apart when a get
     * leaves them out */
    otr_aws_call *(*tag_call)(const char *arn, const cJSON *tags, const char *subject);
    otr_aws_call *(*untag_call)(const char *arn, const char *const *keys, size_t n,
                                const char *subject);
    otr_aws_call *(*list_tags_call)(const char *arn, const char *subject);
    int (*parse_list_tags)(const otr_aws_call *call, cJSON **tags, otr_error *err);
    otr_aws_call *(*delete_call)(const char *id, const char *subject);
    otr_aws_call *(*list_call)(const char *next_token);
    int (*parse_list)(const otr_aws_call *call, otr_remote **items, size_t *n, char **next_token,
                      otr_error *err);
    /* the devices of a resource, a page at a time (a task's executions); NULL
     * for a kind without devices */
    otr_aws_call *(*devices_call)(const char *id, const char *next_token, int max_results);
    int (*parse_devices)(const otr_aws_call *call, otr_ota_execution **items, size_t *n,
                         char **next_token, otr_error *err);
} otr_ota_api;

extern const otr_ota_api otr_ota_task_api;
extern const otr_ota_api otr_ota_task_configuration_api;

#endif
