/* Manifests + state + refresh -> plan, for plan and apply. */
#include "cli/planning.h"

#include "cli/environments.h"
#include "behaviour/behaviour.h"

#include "aws/s3.h"
#include "sync/adopt.h"
#include "util/file.h"

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

int otr_planning_where(otr_planning *pl, const otr_options *o, otr_state_where *w)
{
    otr_error err = OTR_ERROR_INIT;
    otr_options_state_where(o, w);
    if (!otr_s3_is_url(w->location))
        return 0;
    if ((!pl->creds && otr_service_creds(&pl->creds, o, &err) < 0) ||
        otr_service_adaptive(o, &w->adaptive, &err) < 0)
        return fail(&err);
    w->creds = pl->creds;
    return 0;
}

int otr_planning_open_state(otr_planning *pl, const otr_options *o, const char *lock_for)
{
    otr_error err = OTR_ERROR_INIT;
    otr_state_where w;
    int rc = otr_planning_where(pl, o, &w);
    if (rc)
        return rc;
    int64_t asked = otr_time_monotonic_ms();
    rc = otr_state_open(&pl->state, &w, lock_for, 0, &err);
    pl->lock_wait_ms = otr_time_monotonic_ms() - asked; /* the lock, and the state's read */
    return rc < 0 ? fail(&err) : 0;
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
    if (!was_endpoint || !was_region || (s->count == 0 && s->npending == 0) || o->migrate_endpoint)
        return 0;
    if (!strcmp(was_endpoint, endpoint) && !strcmp(was_region, region))
        return 0;
    fprintf(stderr,
            "ota-runner: error: state %s was made for %s (region %s), and this run would use %s "
            "(region %s); its %zu task%s live there. Use the endpoint and region it was made "
            "with (--endpoint-url, --region), or give --migrate-endpoint to start the fleet anew "
            "at %s (the tasks at %s are left alone)\n",
            s->path, was_endpoint, was_region, endpoint, region, s->count, s->count == 1 ? "" : "s",
            endpoint, was_endpoint);
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
    if ((!pl->creds && otr_service_creds(&pl->creds, o, &err) < 0) ||
        otr_service_open(&pl->service, o, pl->creds, &err) < 0)
        return fail(&err);
    pl->service_open = 1;
    return otr_planning_check_service(pl, o);
}

/* --refresh list / full, from the service; returns an exit code. */
static int refresh(otr_planning *pl, const otr_options *o)
{
    otr_error err = OTR_ERROR_INIT;
    int rc = otr_planning_open_service(pl, o);
    if (rc)
        return rc;
    if (otr_refresh_read(&pl->refresh, pl->service.client, pl->state,
                         o->refresh == OTR_REFRESH_FULL, &err) < 0) {
        /* a refusal names the policy that is missing: that is the fix, not --refresh none */
        otr_error_prefix(&err, strstr(otr_error_message(&err), "examples/iam/")
                                   ? "refresh"
                                   : "refresh (use --refresh none to plan without the service)");
        return fail(&err);
    }
    pl->refreshed = 1;
    return 0;
}

/* A state that records nothing (deleted, lost, or not written yet) takes
 * what the service holds of ours, and the refresh is read again for it (a
 * rollout's newest wave is judged on its counts); returns an exit code. */
static int adopt(otr_planning *pl, const otr_options *o)
{
    otr_error err = OTR_ERROR_INIT;
    const otr_state *s = pl->state;
    if (!pl->refreshed || s->count || s->npending || s->nretired)
        return 0;
    long n =
        otr_adopt(pl->state, &pl->refresh, pl->service.client, &pl->loaded.set, &pl->adopted, &err);
    if (n < 0)
        return fail(&err);
    pl->nadopted = (size_t)n;
    if (n == 0)
        return 0;
    otr_refresh_free(&pl->refresh);
    pl->refreshed = 0;
    return refresh(pl, o);
}

/* Creates an interrupted run left pending that had reached the service are
 * recorded, not sent again (journaled when this run holds the lock); the
 * refresh is read again for what they record. Returns an exit code. */
static int landed(otr_planning *pl, const otr_options *o, int journal)
{
    otr_error err = OTR_ERROR_INIT;
    if (!pl->refreshed || !pl->state->npending)
        return 0;
    long n =
        otr_adopt_landed(pl->state, &pl->refresh, pl->service.client, journal, &pl->adopted, &err);
    if (n < 0)
        return fail(&err);
    if (n == 0)
        return 0;
    otr_refresh_free(&pl->refresh);
    pl->refreshed = 0;
    return refresh(pl, o);
}

/* A state that records nothing is adopted from the service first; with
 * --refresh none that cannot be, and an apply would make a lost state's
 * fleet a second time once the service forgot its ClientTokens: refused,
 * unless --no-adopt says the service holds none of it. A plan warns. */
static int blind_on_empty(const otr_planning *pl, const otr_options *o, const char *lock_for)
{
    const otr_state *s = pl->state;
    if (o->refresh != OTR_REFRESH_NONE || o->no_adopt || s->count || s->npending || s->nretired ||
        !pl->loaded.set.count)
        return 0;
    fprintf(stderr,
            "ota-runner: %s: state %s records nothing, and --refresh none does not look for what "
            "the service already holds of these manifests: were the state lost, %s create the "
            "fleet a second time once the service has forgotten its ClientTokens. Run without "
            "--refresh none to adopt what is there, or give --no-adopt if the service holds "
            "none of it\n",
            lock_for ? "error" : "warning", s->path, lock_for ? "this apply would" : "apply would");
    return lock_for ? OTR_EXIT_ERROR : 0;
}

/* The commit the state's last apply read, or NULL. */
static const char *last_commit(const otr_state *s)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s->source, "commit"));
}

/* A commit that does not contain the one the state's last apply read would
 * undo what came since (a re-run of an old CI job, a rewritten history, a
 * state branch moved back): an apply refuses it unless --allow-older, a plan
 * warns. Returns an exit code. */
static int older_commit(const otr_planning *pl, const otr_options *o, const char *lock_for)
{
    const char *last = last_commit(pl->state);
    const char *now = otr_source_commit(pl->loaded.source);
    if (!last || !*last || !now || !*now || o->worktree)
        return 0;
    otr_relation rel = otr_source_relation(pl->loaded.source, last);
    if (rel == OTR_REL_SAME || rel == OTR_REL_NEWER)
        return 0;
    int refuse = lock_for && !o->allow_older && rel != OTR_REL_UNKNOWN;
    const char *level = refuse ? "error" : "warning";
    if (rel == OTR_REL_UNKNOWN)
        fprintf(stderr,
                "ota-runner: warning: whether commit %.12s comes after %.12s, the one the "
                "state's last apply read, cannot be told here (a shallow clone, or another "
                "repository); fetch the whole history to know\n",
                now, last);
    else
        fprintf(
            stderr,
            "ota-runner: %s: commit %.12s does not contain %.12s, the commit the state's last "
            "apply read (%s): applying it undoes what came since%s\n",
            level, now, last, rel == OTR_REL_OLDER ? "it is older" : "the history was rewritten",
            refuse ? "; give --allow-older to roll back on purpose, or apply a newer commit" : "");
    return refuse ? OTR_EXIT_ERROR : 0;
}

static int prepare(otr_planning *pl, const otr_options *o, const char *lock_for)
{
    otr_error err = OTR_ERROR_INIT;
    char commit[64];
    int rc;

    memset(pl, 0, sizeof(*pl));
    if (otr_load_deferred(&pl->loaded, o) < 0)
        return OTR_EXIT_ERROR;
    pl->loaded_ok = 1;
    if (pl->loaded.diags.errors) {
        otr_loaded_warn(&pl->loaded);
        otr_print_diags_text(&pl->loaded.diags, o);
        fprintf(stderr,
                "ota-runner: error: %zu manifest error%s at %s; fix them first "
                "(ota-runner validate shows them too)\n",
                pl->loaded.diags.errors, pl->loaded.diags.errors == 1 ? "" : "s",
                otr_loaded_commit_label(&pl->loaded, commit, sizeof(commit)));
        return OTR_EXIT_ERROR;
    }
    if (pl->loaded.diags.warnings)
        otr_print_diags_text(&pl->loaded.diags, o);
    if ((rc = otr_planning_open_state(pl, o, lock_for)) != 0 ||
        (rc = otr_planning_check_service(pl, o)) != 0)
        return rc;
    if ((rc = older_commit(pl, o, lock_for)) != 0)
        return rc;
    if (otr_loaded_verify_range(&pl->loaded, o, last_commit(pl->state)) < 0)
        return OTR_EXIT_ERROR;
    if (o->refresh != OTR_REFRESH_NONE && ((rc = refresh(pl, o)) != 0 || (rc = adopt(pl, o)) != 0 ||
                                           (rc = landed(pl, o, lock_for != NULL)) != 0))
        return rc;
    if ((rc = blind_on_empty(pl, o, lock_for)) != 0)
        return rc;
    otr_plan_options po = OTR_PLAN_OPTIONS_INIT;
    po.behaviours = otr_behaviours;
    po.prune = o->prune;
    po.blind = o->no_adopt;
    po.now = otr_aws_client_now(pl->service_open ? pl->service.client : NULL);
    po.targets = o->targets;
    po.remote = pl->refreshed ? pl->refresh.views : NULL;
    po.repo = otr_source_repo(pl->loaded.source); /* no user name or password in a URL */
    po.ref = o->ref ? o->ref : "HEAD";
    po.commit = otr_source_commit(pl->loaded.source);
    po.path = otr_source_path(pl->loaded.source);
    cJSON *gates = NULL;
    if (otr_envs_gates(o, &pl->loaded.set, &gates) < 0)
        return OTR_EXIT_ERROR;
    po.gates = gates;
    cJSON *signer = otr_loaded_signed_by_json(&pl->loaded);
    po.signed_by = signer;
    rc = otr_plan_make(&pl->plan, pl->state, &pl->loaded.set, &po, &err);
    cJSON_Delete(signer);
    cJSON_Delete(gates);
    if (rc < 0)
        return fail(&err);
    if (pl->adopted.len && otr_plan_add_notes(pl->plan, otr_buf_cstr(&pl->adopted)) < 0)
        return fail(&err);
    pl->plan->adopted = pl->nadopted;
    if (pl->refreshed)
        otr_refresh_remember(&pl->refresh, pl->state);
    return 0;
}

int otr_planning_prepare(otr_planning *pl, const otr_options *o, const char *lock_for)
{
    int rc = prepare(pl, o, lock_for);
    otr_loaded_warn(&pl->loaded);
    return rc;
}

int otr_planning_prepare_deferred(otr_planning *pl, const otr_options *o)
{
    return prepare(pl, o, NULL);
}

int otr_planning_read_plan(otr_plan **out, const char *path)
{
    otr_error err = OTR_ERROR_INIT;
    otr_buf text = OTR_BUF_INIT;
    *out = NULL;
    if (otr_file_read(path, OTR_SAVED_PLAN_MAX_BYTES, &text, &err) < 0)
        return fail(&err);
    cJSON *j = cJSON_Parse(otr_buf_cstr(&text));
    otr_buf_free(&text);
    if (!j || otr_plan_from_json(out, j, &err) < 0) {
        if (!j)
            otr_error_set(&err, OTR_ERR_INVALID, "%s is not JSON", path);
        otr_error_prefix(&err, "plan file %s", path);
        cJSON_Delete(j);
        return fail(&err);
    }
    cJSON_Delete(j);
    return 0;
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
    if (p->signed_by)
        cJSON_AddItemToObject(o, "signedBy", cJSON_Duplicate(p->signed_by, 1));
    return o;
}

void otr_planning_free(otr_planning *pl)
{
    if (pl->loaded_ok)
        otr_loaded_free(&pl->loaded);
    otr_plan_free(pl->plan);
    otr_refresh_free(&pl->refresh);
    otr_buf_free(&pl->adopted);
    otr_state_free(pl->state); /* its S3 client first: it borrows the credentials */
    if (pl->service_open)
        otr_service_close(&pl->service);
    otr_creds_provider_free(pl->creds);
    memset(pl, 0, sizeof(*pl));
}
