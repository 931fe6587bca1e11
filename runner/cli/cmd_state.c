/* ota-runner state list | show NAME | rm NAME | import NAME TASK_ID */
#include "cli/commands.h"
#include "cli/planning.h"
#include "manifest/schema.h"
#include "manifest/token.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(const char *msg)
{
    fprintf(stderr, "ota-runner state: %s (see 'ota-runner state --help')\n", msg);
    return OTR_EXIT_ERROR;
}

static int fail(otr_error *err)
{
    int rc = otr_exit_code_of(err);
    otr_print_error(err);
    otr_error_clear(err);
    return rc;
}

static int fail_nomem(otr_error *err)
{
    otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    return fail(err);
}

static int cmd_list(otr_state *s, const otr_options *o)
{
    if (o->output == OTR_OUT_JSON) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < s->count; i++) {
            cJSON *x = otr_record_to_json(&s->records[i]);
            cJSON_AddStringToObject(x, "name", s->records[i].name);
            cJSON_AddItemToArray(arr, x);
        }
        char *text = cJSON_Print(arr);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(arr);
        return OTR_EXIT_OK;
    }
    int w = 4;
    for (size_t i = 0; i < s->count; i++)
        if ((int)strlen(s->records[i].name) > w)
            w = (int)strlen(s->records[i].name);
    printf("%-*s  %-22s %-9s %s\n", w, "NAME", "TASK", "PHASE", "FILE");
    for (size_t i = 0; i < s->count; i++) {
        const otr_record *r = &s->records[i];
        printf("%-*s  %-22s %-9s %s\n", w, r->name, r->task_id, r->phase, r->file ? r->file : "-");
    }
    printf("%zu task%s; state %s serial %ld", s->count, s->count == 1 ? "" : "s", s->lineage,
           s->serial);
    otr_buf holder = OTR_BUF_INIT;
    if (otr_state_lock_holder(s->path, &holder))
        printf(" (a run is in progress: %s%s)", otr_buf_cstr(&holder),
               s->npending ? "; its calls in flight are in the journal" : "");
    else if (s->npending)
        printf(" (an interrupted run left work: run apply)");
    printf("\n");
    otr_buf_free(&holder);
    return OTR_EXIT_OK;
}

static int cmd_show(otr_state *s, const char *name)
{
    const otr_record *r = otr_state_find(s, name);
    if (!r) {
        fprintf(stderr,
                "ota-runner: error: no task named %s in the state (ota-runner state list "
                "shows them)\n",
                name);
        return OTR_EXIT_ERROR;
    }
    cJSON *x = otr_record_to_json(r);
    cJSON_AddStringToObject(x, "name", r->name);
    otr_canonical_sort(x);
    char *text = cJSON_Print(x);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(x);
    return OTR_EXIT_OK;
}

/* The CreateOtaTask fields of a GetOtaTask answer: what the task was made of. */
static cJSON *create_fields(const cJSON *got)
{
    static const char *const fields[] = {"Description",
                                         "OtaMechanism",
                                         "OtaSchedulingConfig",
                                         "OtaTargetQueryString",
                                         "OtaTaskExecutionRetryConfig",
                                         "OtaType",
                                         "Protocol",
                                         "S3Url",
                                         "Tags",
                                         "Target",
                                         "TaskConfigurationId",
                                         NULL};
    cJSON *spec = cJSON_CreateObject();
    for (size_t i = 0; fields[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(got, fields[i]);
        if (v && !cJSON_IsNull(v))
            cJSON_AddItemToObject(spec, fields[i], cJSON_Duplicate(v, 1));
    }
    otr_canonical_sort(spec);
    return spec;
}

static int cmd_import(otr_planning *pl, const otr_options *o, const char *name, const char *id)
{
    otr_error err = OTR_ERROR_INIT;
    otr_buf why = OTR_BUF_INIT;
    otr_ota_task t;
    int rc;
    if (otr_schema_check_name_value(name, &why) == 0) {
        fprintf(stderr, "ota-runner: error: %s is not a manifest name: %s\n", name,
                otr_buf_cstr(&why));
        otr_buf_free(&why);
        return OTR_EXIT_ERROR;
    }
    otr_buf_free(&why);
    if (otr_state_find(pl->state, name)) {
        fprintf(stderr,
                "ota-runner: error: %s is already in the state (task %s); 'ota-runner "
                "state rm %s' first\n",
                name, otr_state_find(pl->state, name)->task_id, name);
        return OTR_EXIT_ERROR;
    }
    for (size_t i = 0; i < pl->state->count; i++) {
        const otr_record *owner = &pl->state->records[i];
        if (owner->task_id && !strcmp(owner->task_id, id)) {
            fprintf(stderr,
                    "ota-runner: error: task %s is already recorded as %s; one task belongs to "
                    "one manifest, so it cannot be imported as %s too (a plan for %s could "
                    "delete %s's task)\n",
                    id, owner->name, name, name, owner->name);
            return OTR_EXIT_ERROR;
        }
    }
    if ((rc = otr_planning_open_service(pl, o)) != 0)
        return rc;
    otr_aws_call *call = otr_ota_get_task(id, name);
    if (otr_aws_client_call(pl->service.client, call, &err) < 0 ||
        otr_ota_parse_get_task(call, &t, &err) < 0) {
        otr_aws_call_free(call);
        otr_error_prefix(&err, "cannot import %s", id);
        return fail(&err);
    }
    otr_aws_call_free(call);
    otr_record r = {0};
    char now[21];
    otr_time_format_iso8601(now, time(NULL));
    r.name = strdup(name);
    r.phase = strdup("imported");
    r.client_token = strdup("");
    r.revision = 1;
    r.spec = create_fields(t.fields);
    char *canonical = otr_canonical_json(r.spec);
    char digest[72];
    otr_spec_digest(digest, canonical ? canonical : "{}");
    free(canonical);
    r.spec_digest = strdup(digest);
    r.task_id = strdup(t.task_id);
    r.task_arn = t.task_arn ? strdup(t.task_arn) : NULL;
    r.created_at = strdup(now);
    r.remote_status = t.status ? strdup(t.status) : NULL;
    r.remote_checked_at = strdup(now);
    otr_ota_task_clear(&t);
    /* the service the task was checked with is the state's, from now on */
    cJSON *service = otr_service_json(&pl->service);
    if (otr_state_put(pl->state, &r) < 0)
        rc = fail_nomem(&err);
    else
        rc = otr_state_save(pl->state, NULL, service, &err) < 0 ? fail(&err) : OTR_EXIT_OK;
    cJSON_Delete(service);
    if (rc == OTR_EXIT_OK)
        printf("Imported task %s as %s (state serial %ld). Run ota-runner plan to compare it with "
               "the manifest.\n",
               r.task_id, name, pl->state->serial);
    otr_record_clear(&r);
    return rc;
}

int otr_cmd_state(const otr_options *o)
{
    otr_planning pl;
    otr_error err = OTR_ERROR_INIT;
    int rc;
    memset(&pl, 0, sizeof(pl));
    if (o->nargs == 0)
        return usage("a subcommand is needed: list, show NAME, rm NAME or import NAME TASK_ID");
    const char *sub = o->args[0];
    size_t want = !strcmp(sub, "list")                         ? 1
                  : !strcmp(sub, "show") || !strcmp(sub, "rm") ? 2
                  : !strcmp(sub, "import")                     ? 3
                                                               : 0;
    if (!want)
        return usage("unknown subcommand; use list, show NAME, rm NAME or import NAME TASK_ID");
    if (o->nargs != want)
        return usage("wrong number of arguments");
    /* rm and import change the state: under the lock; list, show and rm
     * accept a state that records one task twice, to mend it */
    const char *lock_for = !strcmp(sub, "rm") || !strcmp(sub, "import") ? sub : NULL;
    int repair = strcmp(sub, "import") != 0;
    if (otr_state_open(&pl.state, otr_options_state_path(o), lock_for, repair, &err) < 0) {
        rc = fail(&err);
        goto done;
    }
    if (!strcmp(sub, "list")) {
        rc = cmd_list(pl.state, o);
    } else if (!strcmp(sub, "show")) {
        rc = cmd_show(pl.state, o->args[1]);
    } else if (!strcmp(sub, "rm")) {
        const otr_record *r = otr_state_find(pl.state, o->args[1]);
        if (!r) {
            fprintf(stderr, "ota-runner: error: no task named %s in the state\n", o->args[1]);
            rc = OTR_EXIT_ERROR;
            goto done;
        }
        char *task = strdup(r->task_id);
        otr_state_remove(pl.state, o->args[1]);
        rc = otr_state_save(pl.state, NULL, NULL, &err) < 0 ? fail(&err) : OTR_EXIT_OK;
        if (rc == OTR_EXIT_OK)
            printf("Removed %s from the state; task %s is left in the service (state serial "
                   "%ld).\n",
                   o->args[1], task, pl.state->serial);
        free(task);
    } else {
        rc = cmd_import(&pl, o, o->args[1], o->args[2]);
    }
done:
    otr_planning_free(&pl);
    return rc;
}
