/* Manifests + state + refresh -> plan, for plan and apply. */
#include "cli/planning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/time.h"

int otr_exit_code_of(const otr_error *err)
{
    return err->code == OTR_ERR_LOCKED ? OTR_EXIT_LOCKED : OTR_EXIT_ERROR;
}

static int fail(otr_error *err)
{
    int rc = otr_exit_code_of(err);
    otr_print_error(err);
    otr_error_clear(err);
    return rc;
}

int otr_planning_open_state(otr_planning *pl, const otr_options *o, const char *lock_for)
{
    otr_error err = OTR_ERROR_INIT;
    if (otr_state_open(&pl->state, otr_options_state_path(o), lock_for, 0, &err) < 0)
        return fail(&err);
    return 0;
}

/* A state made for one endpoint and region is not used with another
 * silently: every task would look gone, and apply would create the fleet
 * again there. */
static int check_service(const otr_planning *pl, const otr_options *o, const char *region,
                         const char *endpoint)
{
    const otr_state *s = pl->state;
    const char *was_endpoint =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s->service, "endpoint"));
    const char *was_region =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s->service, "region"));
    if (!was_endpoint || !was_region || (s->count == 0 && s->npending == 0) ||
        o->migrate_endpoint)
        return 0;
    if (!strcmp(was_endpoint, endpoint) && !strcmp(was_region, region))
        return 0;
    fprintf(stderr,
            "ota-runner: error: state %s was made for %s (region %s), and this run would use %s "
            "(region %s); its %zu task%s live there. Use the endpoint and region it was made "
            "with (--endpoint-url, --region), or give --migrate-endpoint to start the fleet anew "
            "at %s (the tasks at %s are left alone)\n",
            s->path, was_endpoint, was_region, endpoint, region, s->count,
            s->count == 1 ? "" : "s", endpoint, was_endpoint);
    return OTR_EXIT_ERROR;
}

int otr_planning_check_service(const otr_planning *pl, const otr_options *o)
{
    otr_error err = OTR_ERROR_INIT;
    char *region = NULL, *endpoint = NULL;
    if (!pl->state)
        return 0;
    if (pl->service_open)
        return check_service(pl, o, pl->service.region, pl->service.endpoint);
    if (otr_service_resolve(&region, &endpoint, o, &err) < 0)
        return fail(&err);
    int rc = check_service(pl, o, region, endpoint);
    free(region);
    free(endpoint);
    return rc;
}

int otr_planning_open_service(otr_planning *pl, const otr_options *o)
{
    otr_error err = OTR_ERROR_INIT;
    if (pl->service_open)
        return 0;
    if (otr_service_open(&pl->service, o, &err) < 0)
        return fail(&err);
    pl->service_open = 1;
    return otr_planning_check_service(pl, o);
}

typedef struct full_refresh {
    otr_remote_task *remote;
    size_t n;
    otr_ota_task *got; /* one per remote entry */
    int failed;
    otr_buf errors;
} full_refresh;

static int remote_cmp(const void *a, const void *b)
{
    return strcmp(((const otr_remote_task *)a)->task_id, ((const otr_remote_task *)b)->task_id);
}

static void on_get(otr_aws_call *call, void *ctx)
{
    full_refresh *fr = ctx;
    otr_remote_task key = {call->subject, NULL, NULL};
    otr_remote_task *hit = bsearch(&key, fr->remote, fr->n, sizeof(key), remote_cmp);
    otr_error err = OTR_ERROR_INIT;
    if (!hit)
        return;
    size_t i = (size_t)(hit - fr->remote);
    if (otr_ota_parse_get_task(call, &fr->got[i], &err) == 0) {
        fr->remote[i].fields = fr->got[i].fields;
    } else if (call->status != 404) {
        fr->failed = 1;
        otr_buf_printf(&fr->errors, "%s\n", otr_error_message(&err));
    }
    otr_error_clear(&err);
}

/* --refresh list: one paginated ListOtaTasks; full: also GetOtaTask for each
 * recorded task that the list shows. */
static int refresh(otr_planning *pl, const otr_options *o, otr_remote_view *view, full_refresh *fr)
{
    otr_error err = OTR_ERROR_INIT;
    int rc = otr_planning_open_service(pl, o);
    if (rc)
        return rc;
    if (otr_ota_list_all_tasks(pl->service.client, &pl->tasks, &pl->ntasks, &err) < 0) {
        otr_error_prefix(&err, "refresh (use --refresh none to plan without the service)");
        return fail(&err);
    }
    fr->remote = calloc(pl->ntasks + 1, sizeof(*fr->remote));
    fr->got = calloc(pl->ntasks + 1, sizeof(*fr->got));
    if (!fr->remote || !fr->got)
        return OTR_EXIT_ERROR;
    for (size_t i = 0; i < pl->ntasks; i++) {
        fr->remote[i].task_id = pl->tasks[i].task_id;
        fr->remote[i].status = pl->tasks[i].status;
    }
    fr->n = pl->ntasks;
    if (fr->n > 1)
        qsort(fr->remote, fr->n, sizeof(*fr->remote), remote_cmp);
    view->tasks = fr->remote;
    view->count = fr->n;
    if (o->refresh != OTR_REFRESH_FULL)
        return 0;
    otr_aws_call **calls = calloc(pl->state->count + 1, sizeof(*calls));
    size_t ncalls = 0;
    for (size_t i = 0; i < pl->state->count; i++) {
        const otr_record *r = &pl->state->records[i];
        otr_remote_task key = {r->task_id, NULL, NULL};
        if (!r->task_id || !bsearch(&key, fr->remote, fr->n, sizeof(key), remote_cmp))
            continue;
        otr_aws_call *c = otr_ota_get_task(r->task_id, r->task_id);
        if (!c)
            continue;
        c->done = on_get;
        c->ctx = fr;
        calls[ncalls++] = c;
        otr_aws_client_submit(pl->service.client, c);
    }
    rc = otr_aws_client_run(pl->service.client, &err) < 0 ? fail(&err) : 0;
    for (size_t i = 0; i < ncalls; i++)
        otr_aws_call_free(calls[i]);
    free(calls);
    if (rc == 0 && fr->failed) {
        fprintf(stderr, "ota-runner: error: refresh: %s", otr_buf_cstr(&fr->errors));
        rc = OTR_EXIT_ERROR;
    }
    return rc;
}

/* The statuses the refresh saw go into the records, so the state file (when
 * apply saves it) tells what the service said last. */
static void remember_statuses(otr_state *s, const otr_remote_view *view)
{
    char now[21];
    otr_time_format_iso8601(now, time(NULL));
    for (size_t i = 0; i < s->count; i++) {
        otr_record *r = &s->records[i];
        otr_remote_task key = {r->task_id, NULL, NULL};
        const otr_remote_task *t =
            r->task_id ? bsearch(&key, view->tasks, view->count, sizeof(key), remote_cmp) : NULL;
        if (!t || !t->status)
            continue;
        free(r->remote_status);
        free(r->remote_checked_at);
        r->remote_status = strdup(t->status);
        r->remote_checked_at = strdup(now);
    }
}

int otr_planning_prepare(otr_planning *pl, const otr_options *o, const char *lock_for)
{
    otr_error err = OTR_ERROR_INIT;
    otr_remote_view view = {NULL, 0};
    full_refresh fr = {NULL, 0, NULL, 0, OTR_BUF_INIT};
    char commit[64];
    int rc;

    memset(pl, 0, sizeof(*pl));
    if (otr_load(&pl->loaded, o) < 0)
        return OTR_EXIT_ERROR;
    pl->loaded_ok = 1;
    if (pl->loaded.diags.errors) {
        otr_print_diags_text(&pl->loaded.diags, o);
        fprintf(stderr,
                "ota-runner: error: %zu manifest error%s at %s; fix them first "
                "(ota-runner validate shows them too)\n",
                pl->loaded.diags.errors, pl->loaded.diags.errors == 1 ? "" : "s",
                otr_loaded_commit_label(&pl->loaded, commit, sizeof(commit)));
        return OTR_EXIT_ERROR;
    }
    if ((rc = otr_planning_open_state(pl, o, lock_for)) != 0 ||
        (rc = otr_planning_check_service(pl, o)) != 0)
        return rc;
    if (o->refresh != OTR_REFRESH_NONE && (rc = refresh(pl, o, &view, &fr)) != 0)
        goto done;
    otr_plan_options po = OTR_PLAN_OPTIONS_INIT;
    po.prune = o->prune;
    po.targets = o->targets;
    po.remote = o->refresh != OTR_REFRESH_NONE ? &view : NULL;
    po.repo = o->repo ? o->repo : ".";
    po.ref = o->ref ? o->ref : "HEAD";
    po.commit = otr_source_commit(pl->loaded.source);
    po.path = otr_source_path(pl->loaded.source);
    if (otr_plan_make(&pl->plan, pl->state, &pl->loaded.set, &po, &err) < 0)
        rc = fail(&err);
    else if (po.remote)
        remember_statuses(pl->state, &view);
done:
    for (size_t i = 0; i < fr.n; i++)
        otr_ota_task_clear(&fr.got[i]);
    free(fr.got);
    free(fr.remote);
    otr_buf_free(&fr.errors);
    return rc;
}

otr_plan_guards otr_planning_guards(const otr_options *o)
{
    otr_plan_guards g = OTR_PLAN_GUARDS_INIT;
    g.max_deletes = o->max_deletes;
    g.allow_cancel = o->allow_cancel;
    g.allow_empty = o->allow_empty;
    return g;
}

cJSON *otr_planning_source_json(const otr_plan *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "repo", p->repo ? p->repo : ".");
    cJSON_AddStringToObject(o, "ref", p->ref ? p->ref : "HEAD");
    cJSON_AddStringToObject(o, "commit", p->commit ? p->commit : "");
    cJSON_AddStringToObject(o, "path", p->path ? p->path : "manifests");
    return o;
}

void otr_planning_free(otr_planning *pl)
{
    if (pl->loaded_ok)
        otr_loaded_free(&pl->loaded);
    otr_plan_free(pl->plan);
    otr_ota_tasks_free(pl->tasks, pl->ntasks);
    otr_state_free(pl->state);
    if (pl->service_open)
        otr_service_close(&pl->service);
    memset(pl, 0, sizeof(*pl));
}
