/* Request builders and response parsers of the OTA operations. */
#include "ota/ota.h"

#include "manifest/token.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/time.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building ------------------------------------------------------------ */

/* An identifier as a path segment; the model's identifiers are [A-Za-z0-9]
 * but an answer is not trusted to keep to that. */
static char *segment(const char *id)
{
    return curl_easy_escape(NULL, id, 0);
}

static otr_aws_call *call_on(const char *op, const char *method, const char *body,
                             const char *prefix, const char *id, const char *suffix,
                             const char *subject)
{
    char *seg = id ? segment(id) : NULL;
    otr_aws_call *call = NULL;
    if (!id || seg)
        call = otr_aws_call_new(op, method, body, "%s%s%s%s", prefix, id ? "/" : "", seg ? seg : "",
                                suffix ? suffix : "");
    curl_free(seg);
    if (call && otr_aws_call_set_subject(call, subject ? subject : id) < 0) {
        otr_aws_call_free(call);
        call = NULL;
    }
    return call;
}

static char *page_query(const char *next_token, int max_results)
{
    otr_buf q = OTR_BUF_INIT;
    if (max_results > 0)
        otr_buf_printf(&q, "MaxResults=%d", max_results);
    if (next_token) {
        char *enc = curl_easy_escape(NULL, next_token, 0);
        otr_buf_printf(&q, "%sNextToken=%s", q.len ? "&" : "", enc ? enc : "");
        curl_free(enc);
    }
    return q.len ? otr_buf_detach(&q) : (otr_buf_free(&q), NULL);
}

static otr_aws_call *list_call(const char *op, const char *path, const char *next_token,
                               int max_results)
{
    otr_aws_call *call = otr_aws_call_new(op, "GET", NULL, "%s", path);
    char *q = page_query(next_token, max_results);
    if (call && q && otr_aws_call_set_query(call, q) < 0) {
        otr_aws_call_free(call);
        call = NULL;
    }
    free(q);
    return call;
}

static char *with_token(const cJSON *request, const char *client_token)
{
    cJSON *body = request ? cJSON_Duplicate(request, 1) : cJSON_CreateObject();
    char *out = NULL;
    if (body && cJSON_IsObject(body) &&
        (!client_token || cJSON_AddStringToObject(body, "ClientToken", client_token)))
        out = otr_canonical_json(body);
    cJSON_Delete(body);
    return out;
}

otr_aws_call *otr_ota_create_task(const cJSON *spec, const char *client_token, const char *subject)
{
    char *body = with_token(spec, client_token);
    otr_aws_call *call =
        body ? call_on("CreateOtaTask", "POST", body, "/ota-tasks", NULL, NULL, subject) : NULL;
    free(body);
    return call;
}

otr_aws_call *otr_ota_get_task(const char *task_id, const char *subject)
{
    return call_on("GetOtaTask", "GET", NULL, "/ota-tasks", task_id, NULL, subject);
}

otr_aws_call *otr_ota_list_tasks(const char *next_token)
{
    return list_call("ListOtaTasks", "/ota-tasks", next_token, OTR_OTA_MAX_PAGE);
}

const char *const otr_ota_task_update_fields[] = {"Description", "TaskConfigurationId", NULL};

otr_aws_call *otr_ota_update_task(const char *task_id, const cJSON *spec, const char *subject)
{
    cJSON *b = cJSON_CreateObject();
    for (size_t i = 0; b && otr_ota_task_update_fields[i]; i++) {
        const char *field = otr_ota_task_update_fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, field);
        if (cJSON_IsString(v))
            cJSON_AddStringToObject(b, field, v->valuestring);
    }
    char *body = b ? otr_canonical_json(b) : NULL;
    cJSON_Delete(b);
    otr_aws_call *call =
        body ? call_on("UpdateOtaTask", "PUT", body, "/ota-tasks", task_id, NULL, subject) : NULL;
    free(body);
    return call;
}

otr_aws_call *otr_ota_tag_resource(const char *arn, const cJSON *tags, const char *subject)
{
    cJSON *b = cJSON_CreateObject();
    cJSON *copy = cJSON_Duplicate(tags, 1);
    char *body = NULL;
    if (b && copy && cJSON_AddItemToObject(b, "Tags", copy))
        body = otr_canonical_json(b);
    else
        cJSON_Delete(copy);
    cJSON_Delete(b);
    otr_aws_call *call =
        body ? call_on("TagResource", "POST", body, "/tags", arn, NULL, subject) : NULL;
    free(body);
    return call;
}

otr_aws_call *otr_ota_untag_resource(const char *arn, const char *const *keys, size_t n,
                                     const char *subject)
{
    otr_buf q = OTR_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        char *enc = curl_easy_escape(NULL, keys[i], 0);
        if (!enc) {
            otr_buf_free(&q);
            return NULL;
        }
        otr_buf_printf(&q, "%stagKeys=%s", i ? "&" : "", enc);
        curl_free(enc);
    }
    otr_aws_call *call = otr_buf_failed(&q) || !n ? NULL
                                                  : call_on("UntagResource", "DELETE", NULL,
                                                            "/tags", arn, NULL, subject);
    if (call && otr_aws_call_set_query(call, q.ptr) < 0) {
        otr_aws_call_free(call);
        call = NULL;
    }
    otr_buf_free(&q);
    return call;
}

otr_aws_call *otr_ota_list_tags(const char *arn, const char *subject)
{
    return call_on("ListTagsForResource", "GET", NULL, "/tags", arn, NULL, subject);
}

otr_aws_call *otr_ota_delete_task(const char *task_id, const char *subject)
{
    return call_on("DeleteOtaTask", "DELETE", NULL, "/ota-tasks", task_id, NULL, subject);
}

otr_aws_call *otr_ota_list_task_executions(const char *task_id, const char *next_token,
                                           int max_results)
{
    char *seg = segment(task_id);
    otr_buf path = OTR_BUF_INIT;
    otr_buf_printf(&path, "/ota-tasks/%s/devices", seg ? seg : "");
    curl_free(seg);
    otr_aws_call *call = list_call("ListOtaTaskExecutions", path.ptr, next_token, max_results);
    otr_buf_free(&path);
    if (call && otr_aws_call_set_subject(call, task_id) < 0) {
        otr_aws_call_free(call);
        return NULL;
    }
    return call;
}

otr_aws_call *otr_ota_create_task_configuration(const cJSON *request, const char *client_token,
                                                const char *subject)
{
    char *body = with_token(request, client_token);
    otr_aws_call *call = body ? call_on("CreateOtaTaskConfiguration", "POST", body,
                                        "/ota-task-configurations", NULL, NULL, subject)
                              : NULL;
    free(body);
    return call;
}

otr_aws_call *otr_ota_get_task_configuration(const char *id, const char *subject)
{
    return call_on("GetOtaTaskConfiguration", "GET", NULL, "/ota-task-configurations", id, NULL,
                   subject);
}

otr_aws_call *otr_ota_list_task_configurations(const char *next_token)
{
    return list_call("ListOtaTaskConfigurations", "/ota-task-configurations", next_token,
                     OTR_OTA_MAX_PAGE);
}

otr_aws_call *otr_ota_delete_task_configuration(const char *id, const char *subject)
{
    return call_on("DeleteOtaTaskConfiguration", "DELETE", NULL, "/ota-task-configurations", id,
                   NULL, subject);
}

/* ---- parsing ---------------------------------------------------------------- */

static cJSON *answer(const otr_aws_call *call, otr_error *err)
{
    if (!call->ok) {
        otr_buf msg = OTR_BUF_INIT;
        otr_aws_call_describe(call, &msg);
        otr_error_set(err, OTR_ERR_GENERIC, "%s", msg.ptr);
        otr_buf_free(&msg);
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(otr_buf_cstr(&call->response), call->response.len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        otr_error_set(err, OTR_ERR_INVALID, "%s: the answer is not a JSON object", call->operation);
        return NULL;
    }
    return j;
}

/* What the model allows a string member read from an answer: its longest
 * length and, for ids and tokens, its characters (its pattern's class). */
typedef struct str_shape {
    size_t max;
    const char *chars; /* NULL: any */
} str_shape;

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
static const str_shape TASK_ID = {200, ALNUM};              /* OtaTaskId */
static const str_shape CONFIG_ID = {64, ALNUM};             /* OtaTaskConfigurationId */
static const str_shape NEXT_TOKEN = {65535, ALNUM "=_+/-"}; /* OtaNextToken */
static const str_shape ARN = {1011, NULL};                  /* OtaTaskArn */
#define OTR_OTA_MAX_TEXT 2048 /* the longest name, status or thing read from an answer */
static const str_shape TEXT = {OTR_OTA_MAX_TEXT, NULL};

/* A string member: absent, null or empty is none (an error only when
 * required: what ota-runner cannot do without); present, a string within
 * shape. */
static int get_str(const otr_aws_call *call, const cJSON *o, const char *name, int required,
                   const str_shape *shape, char **out, otr_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    *out = NULL;
    if (v && !cJSON_IsNull(v) && !cJSON_IsString(v))
        return otr_error_set(err, OTR_ERR_INVALID, "%s: %s in the answer is not a valid string",
                             call->operation, name);
    if (!v || cJSON_IsNull(v) || !*v->valuestring) {
        if (required)
            return otr_error_set(err, OTR_ERR_INVALID, "%s: the answer has no %s", call->operation,
                                 name);
        return 0;
    }
    size_t len = strlen(v->valuestring);
    if (len > shape->max)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "%s: %s in the answer is longer than the model allows (%zu > %zu)",
                             call->operation, name, len, shape->max);
    if (shape->chars && strspn(v->valuestring, shape->chars) != len)
        return otr_error_set(err, OTR_ERR_INVALID, "%s: %s in the answer is not %s",
                             call->operation, name,
                             shape == &NEXT_TOKEN ? "a valid token" : "alphanumeric");
    *out = strdup(v->valuestring);
    return *out ? 0 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
}

/* A timestamp: epoch seconds (restJson1's default), or an ISO 8601 string
 * as a service may also write it; 0 when absent or neither. */
static double get_time(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    int64_t t;
    if (cJSON_IsNumber(v))
        return v->valuedouble;
    if (cJSON_IsString(v) && otr_time_parse_iso8601(v->valuestring, &t) == 0)
        return (double)t;
    return 0;
}

static long get_count(const cJSON *o, const char *name)
{
    return (long)otr_json_integer_or(cJSON_GetObjectItemCaseSensitive(o, name), 0, 2147483647LL, 0);
}

int otr_ota_parse_create_task(const otr_aws_call *call, char **task_id, char **task_arn,
                              otr_error *err)
{
    cJSON *j = answer(call, err);
    *task_id = *task_arn = NULL;
    if (!j)
        return -1;
    int rc = get_str(call, j, "TaskId", 1, &TASK_ID, task_id, err) < 0 ||
                     get_str(call, j, "TaskArn", 0, &ARN, task_arn, err) < 0
                 ? -1
                 : 0;
    if (rc < 0) {
        free(*task_id);
        free(*task_arn);
        *task_id = *task_arn = NULL;
    }
    cJSON_Delete(j);
    return rc;
}

/* The id a get asked for (the last segment of its path), or NULL. */
static const char *asked_id(const otr_aws_call *call)
{
    const char *slash = call->path ? strrchr(call->path, '/') : NULL;
    return slash && slash[1] && !strchr(slash, '?') ? slash + 1 : NULL;
}

/* An id the model marks optional: a get's answer without it is of the id
 * asked for; a listed item without it cannot be told from another, and the
 * listing is refused (a plan would take the task for gone). */
static int get_id(const otr_aws_call *call, const cJSON *o, const char *name, const char *asked,
                  const str_shape *shape, char **out, otr_error *err)
{
    if (get_str(call, o, name, !asked, shape, out, err) < 0)
        return -1;
    if (!*out && asked && !(*out = strdup(asked)))
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    return 0;
}

static int parse_task(const otr_aws_call *call, const cJSON *o, const char *asked, otr_remote *t,
                      otr_error *err)
{
    memset(t, 0, sizeof(*t));
    if (!cJSON_IsObject(o))
        return otr_error_set(err, OTR_ERR_INVALID, "%s: a task in the answer is not an object",
                             call->operation);
    if (get_id(call, o, "TaskId", asked, &TASK_ID, &t->id, err) < 0 ||
        get_str(call, o, "TaskArn", 0, &ARN, &t->arn, err) < 0 ||
        get_str(call, o, "Status", 0, &TEXT, &t->status, err) < 0 ||
        get_str(call, o, "TaskConfigurationId", 0, &CONFIG_ID, &t->uses_id, err) < 0) {
        otr_remote_clear(t);
        return -1;
    }
    t->created_at = get_time(o, "CreatedAt");
    t->last_updated_at = get_time(o, "LastUpdatedAt");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "TaskProcessingDetails");
    if (cJSON_IsObject(d)) {
        /* the model spells these members two ways */
        t->counts.present = 1;
        t->counts.queued = get_count(d, "numberOfQueuedThings");
        t->counts.in_progress = get_count(d, "NumberOfInProgressThings");
        t->counts.succeeded = get_count(d, "numberOfSucceededThings");
        t->counts.failed = get_count(d, "NumberOfFailedThings");
        t->counts.timed_out = get_count(d, "numberOfTimedOutThings");
        t->counts.canceled = get_count(d, "NumberOfCanceledThings");
        t->counts.rejected = get_count(d, "numberOfRejectedThings");
        t->counts.removed = get_count(d, "numberOfRemovedThings");
    }
    return 0;
}

static int parse_configuration(const otr_aws_call *call, const cJSON *o, const char *asked,
                               otr_remote *t, otr_error *err)
{
    memset(t, 0, sizeof(*t));
    if (!cJSON_IsObject(o))
        return otr_error_set(err, OTR_ERR_INVALID,
                             "%s: a configuration in the answer is not an object", call->operation);
    if (get_id(call, o, "TaskConfigurationId", asked, &CONFIG_ID, &t->id, err) < 0 ||
        get_str(call, o, "Name", 0, &TEXT, &t->name, err) < 0) {
        otr_remote_clear(t);
        return -1;
    }
    t->created_at = get_time(o, "CreatedAt");
    return 0;
}

typedef int (*parse_item_fn)(const otr_aws_call *call, const cJSON *o, const char *asked,
                             otr_remote *t, otr_error *err);

/* A get: the item, with the whole answer kept in fields. */
static int parse_get(const otr_aws_call *call, parse_item_fn parse, otr_remote *out, otr_error *err)
{
    cJSON *j = answer(call, err);
    memset(out, 0, sizeof(*out));
    if (!j)
        return -1;
    if (parse(call, j, asked_id(call), out, err) < 0) {
        cJSON_Delete(j);
        return -1;
    }
    out->fields = j;
    return 0;
}

int otr_ota_parse_get_task(const otr_aws_call *call, otr_remote *out, otr_error *err)
{
    return parse_get(call, parse_task, out, err);
}

int otr_ota_parse_get_task_configuration(const otr_aws_call *call, otr_remote *out, otr_error *err)
{
    return parse_get(call, parse_configuration, out, err);
}

static int get_next_token(const otr_aws_call *call, const cJSON *j, char **next, otr_error *err)
{
    return get_str(call, j, "NextToken", 0, &NEXT_TOKEN, next, err);
}

/* A page of a list: the items of member, and the next token. */
static int parse_page(const otr_aws_call *call, const char *member, parse_item_fn parse,
                      otr_remote **items, size_t *n, char **next_token, otr_error *err)
{
    cJSON *j = answer(call, err);
    *items = NULL;
    *n = 0;
    *next_token = NULL;
    if (!j)
        return -1;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, member);
    int rc = 0;
    if (list && !cJSON_IsArray(list)) {
        rc = otr_error_set(err, OTR_ERR_INVALID, "%s: %s in the answer is not a list",
                           call->operation, member);
    } else if (get_next_token(call, j, next_token, err) < 0) {
        rc = -1;
    } else {
        size_t count = (size_t)cJSON_GetArraySize(list);
        *items = calloc(count ? count : 1, sizeof(**items));
        const cJSON *item;
        if (!*items)
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        cJSON_ArrayForEach(item, list)
        {
            if (rc < 0 || parse(call, item, NULL, &(*items)[*n], err) < 0) {
                rc = -1;
                break;
            }
            (*n)++;
        }
    }
    if (rc < 0) {
        otr_remotes_free(*items, *n);
        free(*next_token);
        *items = NULL;
        *n = 0;
        *next_token = NULL;
    }
    cJSON_Delete(j);
    return rc;
}

int otr_ota_parse_list_tasks(const otr_aws_call *call, otr_remote **tasks, size_t *n,
                             char **next_token, otr_error *err)
{
    return parse_page(call, "Tasks", parse_task, tasks, n, next_token, err);
}

int otr_ota_parse_list_task_configurations(const otr_aws_call *call, otr_remote **items, size_t *n,
                                           char **next_token, otr_error *err)
{
    return parse_page(call, "Items", parse_configuration, items, n, next_token, err);
}

int otr_ota_parse_list_task_executions(const otr_aws_call *call, otr_ota_execution **items,
                                       size_t *n, char **next_token, otr_error *err)
{
    cJSON *j = answer(call, err);
    *items = NULL;
    *n = 0;
    *next_token = NULL;
    if (!j)
        return -1;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "ExecutionSummaries");
    int rc = 0;
    if (list && !cJSON_IsArray(list))
        rc = otr_error_set(err, OTR_ERR_INVALID,
                           "ListOtaTaskExecutions: ExecutionSummaries is not a list");
    else
        rc = get_next_token(call, j, next_token, err);
    if (rc == 0) {
        size_t count = (size_t)cJSON_GetArraySize(list);
        *items = calloc(count ? count : 1, sizeof(**items));
        const cJSON *row;
        cJSON_ArrayForEach(row, list)
        {
            otr_ota_execution *e = &(*items)[*n];
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(row, "TaskExecutionSummary");
            if (!cJSON_IsObject(row) ||
                get_str(call, row, "ManagedThingId", 0, &TEXT, &e->managed_thing_id, err) < 0 ||
                (s && get_str(call, s, "Status", 0, &TEXT, &e->status, err) < 0)) {
                rc = -1;
                break;
            }
            e->execution_number = get_count(s, "ExecutionNumber");
            e->retry_attempt = get_count(s, "RetryAttempt");
            e->last_updated_at = get_time(s, "LastUpdatedAt");
            (*n)++;
        }
    }
    if (rc < 0) {
        otr_ota_executions_free(*items, *n + 1);
        free(*next_token);
        *items = NULL;
        *n = 0;
        *next_token = NULL;
    }
    cJSON_Delete(j);
    return rc;
}

int otr_ota_parse_create_task_configuration(const otr_aws_call *call, char **id, char **arn,
                                            otr_error *err)
{
    cJSON *j = answer(call, err);
    *id = NULL;
    if (arn)
        *arn = NULL;
    if (!j)
        return -1;
    int rc = get_str(call, j, "TaskConfigurationId", 1, &CONFIG_ID, id, err);
    cJSON_Delete(j);
    return rc;
}

int otr_ota_parse_list_tags(const otr_aws_call *call, cJSON **tags, otr_error *err)
{
    cJSON *j = answer(call, err);
    *tags = NULL;
    if (!j)
        return -1;
    cJSON *t = cJSON_DetachItemFromObjectCaseSensitive(j, "tags");
    const cJSON *v;
    int rc = 0;
    if (!t || cJSON_IsNull(t)) {
        cJSON_Delete(t);
        t = cJSON_CreateObject();
    } else if (!cJSON_IsObject(t)) {
        rc = otr_error_set(err, OTR_ERR_INVALID, "%s: tags is not a map", call->operation);
    } else {
        cJSON_ArrayForEach(v, t) if (!cJSON_IsString(v)) rc = otr_error_set(
            err, OTR_ERR_INVALID, "%s: the tag %s is not a string", call->operation, v->string);
    }
    cJSON_Delete(j);
    if (rc < 0 || !t) {
        cJSON_Delete(t);
        return rc < 0 ? -1 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    *tags = t;
    return 0;
}

void otr_remote_clear(otr_remote *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->arn);
    free(r->name);
    free(r->status);
    free(r->uses_id);
    cJSON_Delete(r->fields);
    memset(r, 0, sizeof(*r));
}

void otr_remotes_free(otr_remote *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        otr_remote_clear(&r[i]);
    free(r);
}

void otr_ota_executions_free(otr_ota_execution *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++) {
        free(e[i].managed_thing_id);
        free(e[i].status);
    }
    free(e);
}

const otr_ota_api otr_ota_task_api = {
    .create_call = otr_ota_create_task,
    .parse_create = otr_ota_parse_create_task,
    .update_call = otr_ota_update_task,
    .get_call = otr_ota_get_task,
    .parse_get = otr_ota_parse_get_task,
    .tag_call = otr_ota_tag_resource,
    .untag_call = otr_ota_untag_resource,
    .list_tags_call = otr_ota_list_tags,
    .parse_list_tags = otr_ota_parse_list_tags,
    .delete_call = otr_ota_delete_task,
    .list_call = otr_ota_list_tasks,
    .parse_list = otr_ota_parse_list_tasks,
    .devices_call = otr_ota_list_task_executions,
    .parse_devices = otr_ota_parse_list_task_executions,
};

/* CreateOtaTaskConfiguration takes no tags, and no configuration is updated */
const otr_ota_api otr_ota_task_configuration_api = {
    .create_call = otr_ota_create_task_configuration,
    .parse_create = otr_ota_parse_create_task_configuration,
    .get_call = otr_ota_get_task_configuration,
    .parse_get = otr_ota_parse_get_task_configuration,
    .delete_call = otr_ota_delete_task_configuration,
    .list_call = otr_ota_list_task_configurations,
    .parse_list = otr_ota_parse_list_task_configurations,
};
