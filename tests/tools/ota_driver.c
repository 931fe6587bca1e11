/*
 * Test driver over runner/aws and runner/ota: one OTA operation (or many
 * creates at once) against an endpoint, with the real credentials chain,
 * retries and rate limit. The integration tests use it to prove the AWS layer
 * against the emulator, moto's STS and local credential servers before plan
 * and apply build on it. Prints JSON on stdout; errors on stderr, exit 1.
 *
 *   ota_driver [--endpoint-url U] [--region R] [--profile P] [--max-attempts N]
 *              [--max-rps R] [--parallelism N] [-v] [--debug] OP [ARGS]
 *   OP: endpoint | whoami | create NAME TOKEN SPEC_JSON | create-many N PREFIX | get ID | list
 *       | update ID DESCRIPTION | delete ID | executions ID
 *       | create-config NAME TOKEN | get-config ID | list-configs | delete-config ID
 */
#include "aws/client.h"
#include "aws/endpoint.h"
#include "aws/profile.h"
#include "kinds/kind.h"
#include "ota/ota.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_json(cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(j);
}

static int fail(otr_error *err)
{
    fprintf(stderr, "ota_driver: %s\n", otr_error_message(err));
    otr_error_clear(err);
    return 1;
}

typedef struct many {
    int ok, failed, attempts;
    cJSON *errors;
} many;

static void on_create(otr_aws_call *call, void *ctx)
{
    many *m = ctx;
    m->attempts += call->attempts;
    if (call->ok) {
        m->ok++;
    } else {
        otr_buf b = OTR_BUF_INIT;
        otr_aws_call_describe(call, &b);
        cJSON_AddItemToArray(m->errors, cJSON_CreateString(b.ptr));
        otr_buf_free(&b);
        m->failed++;
    }
}

static int run(otr_aws_client *c, otr_creds_provider *creds, int argc, char **argv)
{
    otr_error err = OTR_ERROR_INIT;
    const char *op = argv[0];
    otr_aws_call *call = NULL;
    cJSON *out = cJSON_CreateObject();
    int rc = 0;

    if (!strcmp(op, "whoami")) {
        const otr_credentials *cr;
        if (otr_creds_get(creds, &cr, &err) < 0) {
            cJSON_Delete(out);
            return fail(&err);
        }
        cJSON_AddStringToObject(out, "source", cr->source);
        cJSON_AddStringToObject(out, "accessKeyId", cr->access_key_id);
        cJSON_AddBoolToObject(out, "sessionToken", cr->session_token != NULL);
        cJSON_AddNumberToObject(out, "expiration", (double)cr->expiration);
        print_json(out);
        return 0;
    }
    if (!strcmp(op, "create-many") && argc == 3) {
        int n = atoi(argv[1]);
        many m = {0, 0, 0, cJSON_CreateArray()};
        otr_aws_call **calls = calloc((size_t)n, sizeof(*calls));
        for (int i = 0; i < n; i++) {
            char token[64], url[128];
            snprintf(token, sizeof(token), "%s-%d", argv[2], i);
            snprintf(url, sizeof(url), "s3://fw/%s-%d.json", argv[2], i);
            cJSON *spec = cJSON_CreateObject();
            cJSON_AddStringToObject(spec, "S3Url", url);
            cJSON_AddStringToObject(spec, "OtaType", "ONE_TIME");
            calls[i] = otr_ota_create_task(spec, token, token);
            cJSON_Delete(spec);
            calls[i]->done = on_create;
            calls[i]->ctx = &m;
            otr_aws_client_submit(c, calls[i]);
        }
        if (otr_aws_client_run(c, &err) < 0)
            rc = fail(&err);
        for (int i = 0; i < n; i++)
            otr_aws_call_free(calls[i]);
        free(calls);
        cJSON_AddNumberToObject(out, "ok", m.ok);
        cJSON_AddNumberToObject(out, "failed", m.failed);
        cJSON_AddNumberToObject(out, "attempts", m.attempts);
        cJSON_AddNumberToObject(out, "retryQuota", otr_aws_client_retry_quota(c));
        cJSON_AddItemToObject(out, "errors", m.errors);
        print_json(out);
        return rc ? rc : (m.failed ? 1 : 0);
    }
    if (!strcmp(op, "create") && argc == 4) {
        cJSON *spec = cJSON_Parse(argv[3]);
        call = otr_ota_create_task(spec, argv[2], argv[1]);
        cJSON_Delete(spec);
    } else if (!strcmp(op, "get") && argc == 2) {
        call = otr_ota_get_task(argv[1], NULL);
    } else if ((!strcmp(op, "list") || !strcmp(op, "list-configs")) && argc == 1) {
        int tasks = !strcmp(op, "list");
        const otr_kind *k = tasks ? &otr_kind_ota_task : &otr_kind_ota_task_configuration;
        otr_remote *items;
        size_t n;
        if (otr_kind_list_all(k, c, &items, &n, &err) < 0) {
            cJSON_Delete(out);
            return fail(&err);
        }
        cJSON *arr = cJSON_AddArrayToObject(out, tasks ? "Tasks" : "Items");
        for (size_t i = 0; i < n; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, tasks ? "TaskId" : "TaskConfigurationId", items[i].id);
            if (items[i].status)
                cJSON_AddStringToObject(t, "Status", items[i].status);
            if (items[i].name)
                cJSON_AddStringToObject(t, "Name", items[i].name);
            cJSON_AddItemToArray(arr, t);
        }
        otr_remotes_free(items, n);
        print_json(out);
        return 0;
    } else if (!strcmp(op, "update") && argc == 3) {
        cJSON *spec = cJSON_CreateObject();
        cJSON_AddStringToObject(spec, "Description", argv[2]);
        call = otr_ota_update_task(argv[1], spec, NULL);
        cJSON_Delete(spec);
    } else if (!strcmp(op, "delete") && argc == 2) {
        call = otr_ota_delete_task(argv[1], NULL);
    } else if (!strcmp(op, "executions") && argc == 2) {
        call = otr_ota_list_task_executions(argv[1], NULL, 0);
    } else if (!strcmp(op, "create-config") && argc == 3) {
        cJSON *req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "Name", argv[1]);
        call = otr_ota_create_task_configuration(req, argv[2], argv[1]);
        cJSON_Delete(req);
    } else if (!strcmp(op, "get-config") && argc == 2) {
        call = otr_ota_get_task_configuration(argv[1], NULL);
    } else if (!strcmp(op, "delete-config") && argc == 2) {
        call = otr_ota_delete_task_configuration(argv[1], NULL);
    } else {
        fprintf(stderr, "ota_driver: unknown operation or wrong arguments: %s\n", op);
        cJSON_Delete(out);
        return 2;
    }
    if (otr_aws_client_call(c, call, &err) < 0) {
        rc = fail(&err);
        cJSON_Delete(out);
        otr_aws_call_free(call);
        return rc;
    }
    cJSON_AddNumberToObject(out, "status", call->status);
    cJSON_AddNumberToObject(out, "attempts", call->attempts);
    if (!strcmp(op, "create")) {
        char *id, *arn;
        if (otr_ota_parse_create_task(call, &id, &arn, &err) < 0) {
            rc = fail(&err);
        } else {
            cJSON_AddStringToObject(out, "TaskId", id);
            cJSON_AddStringToObject(out, "TaskArn", arn ? arn : "");
            free(id);
            free(arn);
        }
    } else if (!strcmp(op, "get")) {
        otr_remote t;
        if (otr_ota_parse_get_task(call, &t, &err) < 0) {
            rc = fail(&err);
        } else {
            cJSON_AddStringToObject(out, "TaskId", t.id);
            cJSON_AddStringToObject(out, "Status", t.status ? t.status : "");
            cJSON_AddNumberToObject(out, "succeeded", (double)t.counts.succeeded);
            cJSON_AddItemToObject(out, "fields", cJSON_Duplicate(t.fields, 1));
            otr_remote_clear(&t);
        }
    } else if (!strcmp(op, "executions")) {
        otr_ota_execution *e;
        size_t n;
        char *next;
        if (otr_ota_parse_list_task_executions(call, &e, &n, &next, &err) < 0) {
            rc = fail(&err);
        } else {
            cJSON *arr = cJSON_AddArrayToObject(out, "Executions");
            for (size_t i = 0; i < n; i++)
                cJSON_AddItemToArray(arr, cJSON_CreateString(e[i].status ? e[i].status : ""));
            otr_ota_executions_free(e, n);
            free(next);
        }
    } else if (!strcmp(op, "create-config")) {
        char *id;
        if (otr_ota_parse_create_task_configuration(call, &id, NULL, &err) < 0) {
            rc = fail(&err);
        } else {
            cJSON_AddStringToObject(out, "TaskConfigurationId", id);
            free(id);
        }
    } else if (!strcmp(op, "get-config")) {
        otr_remote cfg;
        if (otr_ota_parse_get_task_configuration(call, &cfg, &err) < 0) {
            rc = fail(&err);
        } else {
            cJSON_AddItemToObject(out, "Configuration", cJSON_Duplicate(cfg.fields, 1));
            otr_remote_clear(&cfg);
        }
    }
    otr_aws_call_free(call);
    if (rc)
        cJSON_Delete(out);
    else
        print_json(out);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"endpoint-url", required_argument, 0, 'e'},
                                             {"region", required_argument, 0, 'r'},
                                             {"profile", required_argument, 0, 'p'},
                                             {"max-attempts", required_argument, 0, 'a'},
                                             {"max-rps", required_argument, 0, 'm'},
                                             {"parallelism", required_argument, 0, 'j'},
                                             {"debug", no_argument, 0, 'd'},
                                             {"verbose", no_argument, 0, 'v'},
                                             {0, 0, 0, 0}};
    const char *endpoint_flag = NULL, *region_flag = NULL, *profile = NULL;
    otr_aws_options o = {0};
    int c;
    while ((c = getopt_long(argc, argv, "+v", longopts, NULL)) != -1) {
        switch (c) {
        case 'e': endpoint_flag = optarg; break;
        case 'r': region_flag = optarg; break;
        case 'p': profile = optarg; break;
        case 'a': o.max_attempts = atoi(optarg); break;
        case 'm': o.max_rps = atof(optarg); break;
        case 'j': o.parallelism = atoi(optarg); break;
        case 'd': otr_log_set_level(OTR_LOG_DEBUG); break;
        case 'v': otr_log_set_level(OTR_LOG_VERBOSE); break;
        default: return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "ota_driver: no operation\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    otr_error err = OTR_ERROR_INIT;
    char *region = otr_region_resolve(region_flag, profile);
    char *endpoint = NULL;
    otr_creds_provider *creds = NULL;
    otr_aws_client *client = NULL;
    otr_creds_options co = {.profile = profile, .region = region};
    int rc;
    if (otr_endpoint_resolve(&endpoint, endpoint_flag, region, &err) < 0) {
        rc = fail(&err);
        goto done;
    }
    if (!strcmp(argv[optind], "endpoint")) { /* where the calls would go; nothing is sent */
        printf("%s\n", endpoint);
        rc = 0;
        goto done;
    }
    if (otr_creds_provider_new(&creds, &co, &err) < 0) {
        rc = fail(&err);
        goto done;
    }
    o.endpoint = endpoint;
    o.region = region ? region : "us-east-1";
    o.creds = creds;
    if (otr_aws_client_new(&client, &o, &err) < 0) {
        rc = fail(&err);
        goto done;
    }
    rc = run(client, creds, argc - optind, argv + optind);
done:
    otr_aws_client_free(client);
    otr_creds_provider_free(creds);
    free(endpoint);
    free(region);
    curl_global_cleanup();
    return rc;
}
