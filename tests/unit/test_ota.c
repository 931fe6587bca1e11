/*
 * The OTA operations: each request builder's method, path, query and
 * canonical body (with the ClientToken, ids escaped in the path, an update
 * sending only what UpdateOtaTask sets), and each parser on good answers and
 * on answers of the wrong shape; and the kinds' descriptions that use them.
 */
#include "kinds/kind.h"
#include "kinds/held.h"
#include "ota/ota.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

/* A call answered with status and body, as the client leaves it. */
static otr_aws_call *answered(otr_aws_call *call, long status, const char *body)
{
    assert_non_null(call);
    call->status = status;
    call->ok = status >= 200 && status < 300;
    if (body)
        assert_int_equal(otr_buf_puts(&call->response, body), 0);
    return call;
}

static void test_builders(void **state)
{
    (void)state;
    cJSON *spec = cJSON_Parse("{\"S3Url\":\"s3://b/k\",\"OtaType\":\"ONE_TIME\","
                              "\"Description\":\"D\",\"Target\":[\"a\"]}");
    otr_aws_call *c = otr_ota_create_task(spec, "tok", "thermostat");
    assert_string_equal(c->method, "POST");
    assert_string_equal(c->path, "/ota-tasks");
    assert_string_equal(c->subject, "thermostat");
    /* canonical: keys sorted, ClientToken among them */
    assert_string_equal(c->body, "{\"ClientToken\":\"tok\",\"Description\":\"D\",\"OtaType\":"
                                 "\"ONE_TIME\",\"S3Url\":\"s3://b/k\",\"Target\":[\"a\"]}");
    otr_aws_call_free(c);
    /* an update sends Description and TaskConfigurationId, nothing else */
    cJSON_AddStringToObject(spec, "TaskConfigurationId", "cfg1");
    c = otr_ota_update_task("ota1", spec, NULL);
    assert_string_equal(c->method, "PUT");
    assert_string_equal(c->path, "/ota-tasks/ota1");
    assert_string_equal(c->body, "{\"Description\":\"D\",\"TaskConfigurationId\":\"cfg1\"}");
    otr_aws_call_free(c);
    /* an id from an answer is escaped as a path segment */
    c = otr_ota_get_task("a/../b c", NULL);
    assert_string_equal(c->path, "/ota-tasks/a%2F..%2Fb%20c");
    otr_aws_call_free(c);
    c = otr_ota_delete_task_configuration("cfg1", "OtaTaskConfiguration/x");
    assert_string_equal(c->method, "DELETE");
    assert_string_equal(c->path, "/ota-task-configurations/cfg1");
    otr_aws_call_free(c);
    /* lists ask for the largest page the model allows; the token is escaped */
    c = otr_ota_list_tasks("a+b/c=");
    assert_string_equal(c->query, "MaxResults=1000&NextToken=a%2Bb%2Fc%3D");
    otr_aws_call_free(c);
    c = otr_ota_list_task_configurations(NULL);
    assert_string_equal(c->path, "/ota-task-configurations");
    assert_string_equal(c->query, "MaxResults=1000");
    otr_aws_call_free(c);
    /* a configuration's doubles in the body as RFC 8785 writes them */
    cJSON *cfg = cJSON_Parse("{\"Name\":\"N\",\"PushConfig\":{\"RolloutConfig\":{"
                             "\"ExponentialRolloutRate\":{\"IncrementFactor\":2.50,"
                             "\"BaseRatePerMinute\":1e1}}}}");
    c = otr_ota_create_task_configuration(cfg, "t", NULL);
    assert_string_equal(c->body, "{\"ClientToken\":\"t\",\"Name\":\"N\",\"PushConfig\":{"
                                 "\"RolloutConfig\":{\"ExponentialRolloutRate\":{"
                                 "\"BaseRatePerMinute\":10,\"IncrementFactor\":2.5}}}}");
    otr_aws_call_free(c);
    cJSON_Delete(cfg);
    cJSON_Delete(spec);
}

static void test_task_parsers(void **state)
{
    (void)state;
    otr_error err = OTR_ERROR_INIT;
    char *id = NULL, *arn = NULL;
    otr_aws_call *c = answered(otr_ota_create_task(NULL, "t", NULL), 201,
                               "{\"TaskId\":\"ota1\",\"TaskArn\":\"arn:x\"}");
    assert_int_equal(otr_ota_parse_create_task(c, &id, &arn, &err), 0);
    assert_string_equal(id, "ota1");
    assert_string_equal(arn, "arn:x");
    free(id);
    free(arn);
    otr_aws_call_free(c);
    static const struct {
        const char *body;
        const char *why;
    } bad[] = {
        {"[1]", "the answer is not a JSON object"},
        {"{\"TaskArn\":\"arn\"}", "the answer has no TaskId"},
        {"{\"TaskId\":12}", "TaskId in the answer is not a valid string"},
        {"{\"TaskId\":\"a/b\"}", "TaskId in the answer is not alphanumeric"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = answered(otr_ota_create_task(NULL, "t", NULL), 201, bad[i].body);
        assert_int_equal(otr_ota_parse_create_task(c, &id, &arn, &err), -1);
        assert_null(id);
        assert_non_null(strstr(otr_error_message(&err), bad[i].why));
        otr_error_clear(&err);
        otr_aws_call_free(c);
    }
    otr_remote t;
    c = answered(otr_ota_get_task("ota1", NULL), 200,
                 "{\"TaskId\":\"ota1\",\"Status\":\"IN_PROGRESS\",\"TaskProcessingDetails\":{"
                 "\"numberOfSucceededThings\":3,\"NumberOfFailedThings\":1,"
                 "\"numberOfQueuedThings\":2,\"NumberOfInProgressThings\":4}}");
    assert_int_equal(otr_ota_parse_get_task(c, &t, &err), 0);
    assert_string_equal(t.status, "IN_PROGRESS");
    assert_true(t.counts.present);
    assert_int_equal(t.counts.succeeded, 3);
    assert_int_equal(t.counts.failed, 1);
    assert_int_equal(t.counts.queued, 2);
    assert_int_equal(t.counts.in_progress, 4);
    assert_non_null(t.fields);
    otr_remote_clear(&t);
    otr_aws_call_free(c);
    otr_remote *items;
    size_t n;
    char *next;
    c = answered(otr_ota_list_tasks(NULL), 200,
                 "{\"Tasks\":[{\"TaskId\":\"a\"},{\"TaskId\":\"b\",\"Status\":\"COMPLETED\"}],"
                 "\"NextToken\":\"n1\"}");
    assert_int_equal(otr_ota_parse_list_tasks(c, &items, &n, &next, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(items[1].status, "COMPLETED");
    assert_string_equal(next, "n1");
    otr_remotes_free(items, n);
    free(next);
    otr_aws_call_free(c);
    c = answered(otr_ota_list_tasks(NULL), 200, "{\"Tasks\":{}}");
    assert_int_equal(otr_ota_parse_list_tasks(c, &items, &n, &next, &err), -1);
    assert_string_equal(otr_error_message(&err), "ListOtaTasks: Tasks in the answer is not a list");
    assert_null(items);
    otr_error_clear(&err);
    otr_aws_call_free(c);
}

/* Members read as the model has them (issue 30, items 3 and 11): a
 * NextToken up to 65,535 characters of its pattern; an empty optional string
 * is none; a get's answer without its id is of the id asked for; an ISO
 * 8601 timestamp is read; a listed task without an id is refused. */
static void test_answers_as_the_model_has_them(void **state)
{
    (void)state;
    otr_error err = OTR_ERROR_INIT;
    otr_remote *items;
    size_t n;
    char *next;
    otr_buf b = OTR_BUF_INIT;
    otr_buf_puts(&b, "{\"Tasks\":[],\"NextToken\":\"");
    for (int i = 0; i < 65535; i++)
        otr_buf_putc(&b, "aZ09=_+/-"[i % 9]);
    otr_buf_puts(&b, "\"}");
    otr_aws_call *c = answered(otr_ota_list_tasks(NULL), 200, otr_buf_cstr(&b));
    assert_int_equal(otr_ota_parse_list_tasks(c, &items, &n, &next, &err), 0);
    assert_int_equal(strlen(next), 65535);
    free(next);
    otr_remotes_free(items, n);
    otr_aws_call_free(c);
    b.len -= 2; /* one character more than the model allows */
    otr_buf_puts(&b, "a\"}");
    c = answered(otr_ota_list_tasks(NULL), 200, otr_buf_cstr(&b));
    assert_int_equal(otr_ota_parse_list_tasks(c, &items, &n, &next, &err), -1);
    assert_non_null(strstr(otr_error_message(&err), "NextToken in the answer is longer than the "
                                                    "model allows (65536 > 65535)"));
    otr_error_clear(&err);
    otr_aws_call_free(c);
    otr_buf_free(&b);
    c = answered(otr_ota_list_tasks(NULL), 200, "{\"Tasks\":[],\"NextToken\":\"a b\"}");
    assert_int_equal(otr_ota_parse_list_tasks(c, &items, &n, &next, &err), -1);
    assert_non_null(
        strstr(otr_error_message(&err), "NextToken in the answer is not a valid token"));
    otr_error_clear(&err);
    otr_aws_call_free(c);
    c = answered(otr_ota_list_tasks(NULL), 200,
                 "{\"Tasks\":[{\"TaskId\":\"a\",\"TaskArn\":\"\",\"Status\":\"\","
                 "\"CreatedAt\":\"2025-12-01T10:00:00.250Z\",\"LastUpdatedAt\":1764583200.5}],"
                 "\"NextToken\":\"\"}");
    assert_int_equal(otr_ota_parse_list_tasks(c, &items, &n, &next, &err), 0);
    assert_null(items[0].arn);
    assert_null(items[0].status);
    assert_null(next);
    assert_true(items[0].created_at == 1764583200.0);
    assert_true(items[0].last_updated_at == 1764583200.5);
    otr_remotes_free(items, n);
    otr_aws_call_free(c);
    c = answered(otr_ota_list_tasks(NULL), 200, "{\"Tasks\":[{\"Status\":\"COMPLETED\"}]}");
    assert_int_equal(otr_ota_parse_list_tasks(c, &items, &n, &next, &err), -1);
    assert_non_null(strstr(otr_error_message(&err), "the answer has no TaskId"));
    otr_error_clear(&err);
    otr_aws_call_free(c);
    otr_remote t;
    c = answered(otr_ota_get_task("ota7", NULL), 200, "{\"Status\":\"SCHEDULED\"}");
    assert_int_equal(otr_ota_parse_get_task(c, &t, &err), 0);
    assert_string_equal(t.id, "ota7");
    otr_remote_clear(&t);
    otr_aws_call_free(c);
    c = answered(otr_ota_get_task_configuration("cfg7", NULL), 200, "{\"Name\":\"N\"}");
    assert_int_equal(otr_ota_parse_get_task_configuration(c, &t, &err), 0);
    assert_string_equal(t.id, "cfg7");
    otr_remote_clear(&t);
    otr_aws_call_free(c);
}

static void test_configuration_parsers(void **state)
{
    (void)state;
    otr_error err = OTR_ERROR_INIT;
    char *id = NULL, *arn = (char *)"untouched";
    otr_aws_call *c = answered(otr_ota_create_task_configuration(NULL, "t", NULL), 201,
                               "{\"TaskConfigurationId\":\"cfg1\"}");
    assert_int_equal(otr_ota_parse_create_task_configuration(c, &id, &arn, &err), 0);
    assert_string_equal(id, "cfg1");
    assert_null(arn); /* configurations have no ARN */
    free(id);
    otr_aws_call_free(c);
    otr_remote r;
    c = answered(otr_ota_get_task_configuration("cfg1", NULL), 200,
                 "{\"TaskConfigurationId\":\"cfg1\",\"Name\":\"Staged push\",\"PushConfig\":{}}");
    assert_int_equal(otr_ota_parse_get_task_configuration(c, &r, &err), 0);
    assert_string_equal(r.id, "cfg1");
    assert_string_equal(r.name, "Staged push");
    assert_null(r.status);
    /* import: the kind's fields of the answer are the spec */
    cJSON *spec = otr_kind_spec_of(&otr_kind_ota_task_configuration, r.fields);
    char *text = cJSON_PrintUnformatted(spec);
    assert_string_equal(text, "{\"Name\":\"Staged push\",\"PushConfig\":{}}");
    free(text);
    cJSON_Delete(spec);
    otr_remote_clear(&r);
    otr_aws_call_free(c);
    otr_remote *items;
    size_t n;
    char *next;
    c = answered(otr_ota_list_task_configurations(NULL), 200,
                 "{\"Items\":[{\"TaskConfigurationId\":\"cfg1\",\"Name\":\"A\"}]}");
    assert_int_equal(otr_ota_parse_list_task_configurations(c, &items, &n, &next, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].name, "A");
    assert_null(next);
    otr_remotes_free(items, n);
    otr_aws_call_free(c);
    c = answered(otr_ota_list_task_configurations(NULL), 200, "{\"Items\":[{\"Name\":\"A\"}]}");
    assert_int_equal(otr_ota_parse_list_task_configurations(c, &items, &n, &next, &err), -1);
    assert_non_null(strstr(otr_error_message(&err), "the answer has no TaskConfigurationId"));
    otr_error_clear(&err);
    otr_aws_call_free(c);
}

/* The kinds' descriptions are whole, and addresses read both ways. */
/* ListTagsForResource: the map read; none is an empty map; a tag that is
 * not a string, or a map that is not one, is refused. */
static void test_list_tags(void **state)
{
    (void)state;
    otr_aws_call *c = otr_ota_list_tags("arn:aws:x:us-east-1:1:ota-task/t1", "door");
    assert_string_equal(c->method, "GET");
    assert_string_equal(c->path, "/tags/arn%3Aaws%3Ax%3Aus-east-1%3A1%3Aota-task%2Ft1");
    answered(c, 200, "{\"tags\":{\"team\":\"a\",\"ota-runner:generation\":\"2\"}}");
    otr_error err = OTR_ERROR_INIT;
    cJSON *tags;
    assert_int_equal(otr_ota_parse_list_tags(c, &tags, &err), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(tags, "team")->valuestring, "a");
    assert_int_equal(cJSON_GetArraySize(tags), 2);
    cJSON_Delete(tags);
    otr_aws_call_free(c);
    c = answered(otr_ota_list_tags("arn", NULL), 200, "{}");
    assert_int_equal(otr_ota_parse_list_tags(c, &tags, &err), 0);
    assert_true(cJSON_IsObject(tags) && cJSON_GetArraySize(tags) == 0);
    cJSON_Delete(tags);
    otr_aws_call_free(c);
    const char *bad[] = {"{\"tags\":{\"team\":1}}", "{\"tags\":[\"a\"]}", "[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = answered(otr_ota_list_tags("arn", NULL), 200, bad[i]);
        assert_int_equal(otr_ota_parse_list_tags(c, &tags, &err), -1);
        assert_null(tags);
        otr_error_clear(&err);
        otr_aws_call_free(c);
    }
}

static void test_kinds_and_addresses(void **state)
{
    (void)state;
    for (size_t i = 0; otr_kinds[i]; i++) {
        const otr_kind *k = otr_kinds[i];
        assert_ptr_equal(otr_kind_find(k->name), k);
        assert_non_null(k->api->create_call);
        assert_non_null(k->api->get_call);
        assert_non_null(k->api->delete_call);
        assert_non_null(k->api->list_call);
        assert_true(!k->updatable || k->api->update_call); /* updatable fields need the call */
        assert_true(!k->tags_in_place || (k->api->tag_call && k->api->untag_call));
    }
    assert_true(otr_kind_updatable(&otr_kind_ota_task, "TaskConfigurationId"));
    assert_false(otr_kind_updatable(&otr_kind_ota_task, "Target"));
    assert_false(otr_kind_updatable(&otr_kind_ota_task_configuration, "Name"));
    assert_true(otr_kind_running(&otr_kind_ota_task, "IN_PROGRESS"));
    assert_false(otr_kind_running(&otr_kind_ota_task, "COMPLETED"));
    const otr_kind *k;
    const char *name;
    otr_buf why = OTR_BUF_INIT;
    assert_int_equal(otr_address_parse("hub-7-0-0", &k, &name, &why), 0);
    assert_ptr_equal(k, &otr_kind_ota_task);
    assert_string_equal(name, "hub-7-0-0");
    assert_int_equal(otr_address_parse("OtaTaskConfiguration/staged-push", &k, &name, &why), 0);
    assert_ptr_equal(k, &otr_kind_ota_task_configuration);
    assert_string_equal(name, "staged-push");
    assert_int_equal(otr_address_parse("OtaTsk/x", &k, &name, &why), -1);
    assert_string_equal(why.ptr, "OtaTsk is not a kind; did you mean OtaTask?");
    otr_buf_clear(&why);
    otr_address_short(&why, &otr_kind_ota_task, "a");
    otr_buf_puts(&why, " ");
    otr_address_short(&why, &otr_kind_ota_task_configuration, "b");
    assert_string_equal(why.ptr, "a OtaTaskConfiguration/b");
    otr_buf_free(&why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_task_parsers),
        cmocka_unit_test(test_configuration_parsers),
        cmocka_unit_test(test_answers_as_the_model_has_them),
        cmocka_unit_test(test_list_tags),
        cmocka_unit_test(test_kinds_and_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
