/* ota-runner state list | show ADDRESS | rm ADDRESS | import ADDRESS ID */
#include "cli/commands.h"
#include "cli/planning.h"
#include "cli/render_state.h"
#include "aws/s3.h"
#include "manifest/schema.h"
#include "manifest/token.h"
#include "util/json.h"
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

/* KIND/NAME or a task's NAME; prints why not and returns -1. */
static int parse_address(const char *address, const otr_kind **kind, const char **name)
{
    otr_buf why = OTR_BUF_INIT;
    int rc = otr_address_parse(address, kind, name, &why);
    if (rc < 0)
        fprintf(stderr, "ota-runner: error: %s: %s\n", address, otr_buf_cstr(&why));
    otr_buf_free(&why);
    return rc;
}

/* Prints j (taken); exit 1 when it could not be made whole. */
static int print_json(cJSON *j, int whole)
{
    char *text = j && whole ? cJSON_Print(j) : NULL;
    if (text)
        printf("%s\n", text);
    else
        fprintf(stderr, "ota-runner: error: out of memory while writing JSON\n");
    free(text);
    cJSON_Delete(j);
    return text ? OTR_EXIT_OK : OTR_EXIT_ERROR;
}

static cJSON *record_json(const otr_record *r)
{
    cJSON *x = otr_record_to_json(r);
    otr_buf address = OTR_BUF_INIT;
    otr_jb b = OTR_JB_INIT;
    otr_address_full(&address, r->kind, r->name);
    otr_jb_str(&b, x, "name", r->name);
    otr_jb_str(&b, x, "kind", r->kind->name);
    otr_jb_str(&b, x, "address", otr_buf_failed(&address) ? NULL : otr_buf_cstr(&address));
    otr_buf_free(&address);
    if (!x || b.failed || otr_canonical_sort(x) < 0) {
        cJSON_Delete(x);
        return NULL;
    }
    return x;
}

static int cmd_list(otr_state *s, const otr_options *o, const otr_state_where *where)
{
    otr_buf a = OTR_BUF_INIT;
    if (o->output == OTR_OUT_JSON) {
        otr_jb b = OTR_JB_INIT;
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < s->count && !b.failed; i++)
            otr_jb_add(&b, arr, NULL, record_json(&s->records[i]));
        return print_json(arr, !b.failed);
    }
    int w = 4;
    for (size_t i = 0; i < s->count; i++) {
        otr_buf_clear(&a);
        otr_address_short(&a, s->records[i].kind, s->records[i].name);
        if ((int)a.len > w)
            w = (int)a.len;
    }
    printf("%-*s  %-22s %-9s %s\n", w, "NAME", "ID", "PHASE", "FILE");
    for (size_t i = 0; i < s->count; i++) {
        const otr_record *r = &s->records[i];
        otr_buf_clear(&a);
        otr_address_short(&a, r->kind, r->name);
        printf("%-*s  %-22s %-9s %s\n", w, otr_buf_cstr(&a), r->id ? r->id : "-", r->phase,
               r->file ? r->file : "-");
    }
    for (size_t i = 0; i < s->nretired; i++) {
        const otr_retired *r = &s->retired[i];
        otr_buf_clear(&a);
        otr_address_short(&a, r->kind, r->name);
        printf("%-*s  %-22s %-9s %s\n", w, otr_buf_cstr(&a), r->id, "retired",
               r->last_error ? r->last_error : "to delete once nothing uses it");
    }
    otr_buf_clear(&a);
    otr_render_state_counts(s, &a);
    printf("%s; state %s serial %ld", otr_buf_cstr(&a), s->lineage, s->serial);
    otr_buf_free(&a);
    otr_buf holder = OTR_BUF_INIT;
    if (otr_state_lock_holder(where, &holder))
        printf(" (a run is in progress: %s%s)", otr_buf_cstr(&holder),
               s->npending ? "; its calls in flight are in the journal" : "");
    else if (s->npending)
        printf(" (an interrupted run left work: run apply)");
    printf("\n");
    otr_buf_free(&holder);
    return OTR_EXIT_OK;
}

/* The record at address, its kind and name; NULL (said on stderr) when the
 * address is bad or nothing is recorded there. */
static const otr_record *find_recorded(otr_state *s, const char *address, const otr_kind **k,
                                       const char **name)
{
    if (parse_address(address, k, name) < 0)
        return NULL;
    const otr_record *r = otr_state_find(s, *k, *name);
    if (!r)
        fprintf(stderr,
                "ota-runner: error: nothing named %s in the state (ota-runner state list "
                "shows what is)\n",
                address);
    return r;
}

static int cmd_show(otr_state *s, const char *address)
{
    const otr_kind *k;
    const char *name;
    const otr_record *r = find_recorded(s, address, &k, &name);
    if (!r)
        return OTR_EXIT_ERROR;
    cJSON *j = record_json(r);
    return print_json(j, j != NULL);
}

/* A state that records nothing, rebuilt from what the service holds of
 * ours (sync/adopt.h), under the lock, and saved. */
static int cmd_rebuild(const otr_options *o)
{
    otr_planning pl;
    otr_error err = OTR_ERROR_INIT;
    int rc = otr_planning_prepare(&pl, o, "state rebuild");
    /* adopted, and the plan of the manifests refused (waves reordered since
     * they started, say): what was adopted is saved all the same, so the
     * refusal stands on the next run too, instead of a fleet made anew */
    int refused = rc != 0 && pl.state && pl.adopted.len && !pl.plan;
    if (refused) {
        if (otr_state_save(pl.state, NULL, NULL, &err) < 0)
            fail(&err);
        else
            printf("%sState %s rebuilt from the service: %zu record%s (state serial %ld); the plan "
                   "of these manifests is refused (above): mend them before the next apply.\n",
                   otr_buf_cstr(&pl.adopted), pl.state->path, pl.state->count,
                   pl.state->count == 1 ? "" : "s", pl.state->serial);
    }
    if (rc == 0 && !pl.adopted.len && pl.state->count) {
        fprintf(stderr,
                "ota-runner: error: state %s records %zu resources; 'state rebuild' is for a "
                "state that is lost: move this one away first (state migrate keeps a copy)\n",
                pl.state->path, pl.state->count);
        rc = OTR_EXIT_ERROR;
    } else if (rc == 0) {
        cJSON *source = otr_planning_source_json(pl.plan);
        cJSON *service = otr_service_json(&pl.service);
        if (otr_state_save(pl.state, source, service, &err) < 0)
            rc = fail(&err);
        cJSON_Delete(source);
        cJSON_Delete(service);
    }
    if (rc == 0)
        printf("%sState %s rebuilt from the service: %zu record%s (state serial %ld). Run "
               "ota-runner plan to compare them with the manifests.\n",
               otr_buf_cstr(&pl.adopted), pl.state->path, pl.state->count,
               pl.state->count == 1 ? "" : "s", pl.state->serial);
    otr_planning_free(&pl);
    return rc;
}

/* Copies the state (its journal's pending calls too) to --to, which must
 * hold no state yet. */
static int cmd_migrate(otr_planning *pl, const otr_options *o)
{
    otr_error err = OTR_ERROR_INIT;
    otr_state *s = pl->state;
    otr_state_where to;
    otr_options_state_where(o, &to);
    to.location = o->to;
    if (otr_s3_is_url(o->to)) { /* the run's credentials and retries */
        otr_options opts = *o;
        opts.state_path = o->to;
        int rc = otr_planning_where(pl, &opts, &to);
        if (rc)
            return rc;
    }
    if (otr_state_copy_to(s, &to, &err) < 0)
        return fail(&err);
    printf("State %s (lineage %s, %zu records, %zu calls pending) copied to %s as serial %ld; "
           "%s is left as it is: point OTA_RUNNER_STATE or --state at the new place.\n",
           s->path, s->lineage, s->count, s->npending, o->to, s->serial, s->path);
    return OTR_EXIT_OK;
}

static int cmd_rm(otr_state *s, const char *address)
{
    otr_error err = OTR_ERROR_INIT;
    const otr_kind *k;
    const char *name;
    const otr_record *r = find_recorded(s, address, &k, &name);
    if (!r)
        return OTR_EXIT_ERROR;
    char *id = r->id ? strdup(r->id) : NULL;
    otr_state_remove(s, k, name);
    int rc = otr_state_save(s, NULL, NULL, &err) < 0 ? fail(&err) : OTR_EXIT_OK;
    if (rc == OTR_EXIT_OK)
        printf("Removed %s from the state; %s %s is left in the service (state serial %ld).\n",
               address, k->noun, id ? id : "-", s->serial);
    free(id);
    return rc;
}

/* The record at from becomes the record at to (a rename by hand; the
 * manifests say it with metadata.previousNames): no call, its resource and
 * ClientToken unchanged. */
static int cmd_mv(otr_state *s, const char *from, const char *to)
{
    otr_error err = OTR_ERROR_INIT;
    const otr_kind *k, *k2;
    const char *name, *new_name;
    if (!find_recorded(s, from, &k, &name) || parse_address(to, &k2, &new_name) < 0)
        return OTR_EXIT_ERROR;
    if (k2 != k) {
        fprintf(stderr,
                "ota-runner: error: %s and %s are of two kinds; a record moves within its "
                "kind\n",
                from, to);
        return OTR_EXIT_ERROR;
    }
    if (otr_state_find(s, k, new_name)) {
        fprintf(stderr,
                "ota-runner: error: %s is recorded already; state rm it first, or move "
                "elsewhere\n",
                to);
        return OTR_EXIT_ERROR;
    }
    for (size_t i = 0; i < s->npending; i++)
        if (s->pending[i].rec.kind == k && !strcmp(s->pending[i].rec.name, name)) {
            fprintf(stderr,
                    "ota-runner: error: %s has a call an interrupted run left; run apply "
                    "first, then move it\n",
                    from);
            return OTR_EXIT_ERROR;
        }
    if (otr_state_rename(s, k, name, new_name) < 0)
        return fail(&err);
    int rc = otr_state_save(s, NULL, NULL, &err) < 0 ? fail(&err) : OTR_EXIT_OK;
    if (rc == OTR_EXIT_OK)
        printf("Moved %s to %s, with no call (state serial %ld).\n", from, to, s->serial);
    return rc;
}

/* The one record that may keep id: refuses another name's resource. */
static int check_unowned(otr_state *s, const otr_kind *k, const char *name, const char *id)
{
    const otr_record *owner = otr_state_find_id(s, k, id);
    if (!owner)
        return 0;
    otr_buf a = OTR_BUF_INIT, b = OTR_BUF_INIT;
    otr_address_short(&a, owner->kind, owner->name);
    otr_address_short(&b, k, name);
    fprintf(stderr,
            "ota-runner: error: %s %s is already recorded as %s; one %s belongs to one manifest, "
            "so it cannot be imported as %s too (a plan for %s could delete %s's %s)\n",
            k->noun, id, otr_buf_cstr(&a), k->noun, otr_buf_cstr(&b), otr_buf_cstr(&b),
            otr_buf_cstr(&a), k->noun);
    otr_buf_free(&a);
    otr_buf_free(&b);
    return -1;
}

/* The record of an imported resource, from the service's answer. */
static int cmd_import(otr_planning *pl, const otr_options *o, const char *address, const char *id)
{
    otr_error err = OTR_ERROR_INIT;
    otr_buf why = OTR_BUF_INIT;
    const otr_kind *k;
    const char *name;
    otr_remote got;
    int rc;
    if (parse_address(address, &k, &name) < 0)
        return OTR_EXIT_ERROR;
    if (k->plans_itself) {
        fprintf(stderr,
                "ota-runner: error: a %s cannot be imported: its record holds what only its "
                "applies know (its waves, their passes and halts); apply its manifest instead, "
                "or import a task as an OtaTask\n",
                k->noun);
        return OTR_EXIT_ERROR;
    }
    if (otr_schema_check_name_value(name, &why) == 0) {
        fprintf(stderr, "ota-runner: error: %s is not a manifest name: %s\n", name,
                otr_buf_cstr(&why));
        otr_buf_free(&why);
        return OTR_EXIT_ERROR;
    }
    otr_buf_free(&why);
    const otr_record *had = otr_state_find(pl->state, k, name);
    if (had) {
        fprintf(stderr,
                "ota-runner: error: %s is already in the state (%s %s); 'ota-runner "
                "state rm %s' first\n",
                address, k->noun, had->id ? had->id : "-", address);
        return OTR_EXIT_ERROR;
    }
    if (check_unowned(pl->state, k, name, id) < 0)
        return OTR_EXIT_ERROR;
    if ((rc = otr_planning_open_service(pl, o)) != 0)
        return rc;
    otr_aws_call *call = k->api->get_call(id, address);
    if (!call || otr_aws_client_call(pl->service.client, call, &err) < 0 ||
        k->api->parse_get(call, &got, &err) < 0) {
        if (!call)
            otr_error_set(&err, OTR_ERR_NOMEM, "out of memory");
        otr_aws_call_free(call);
        otr_error_prefix(&err, "cannot import %s", id);
        return fail(&err);
    }
    otr_aws_call_free(call);
    otr_record r;
    int made = otr_record_from_remote(&r, k, name, &got, 1);
    otr_remote_clear(&got);
    /* the service the resource was checked with is the state's, from now on */
    cJSON *service = otr_service_json(&pl->service);
    if (made < 0 || otr_state_put(pl->state, &r) < 0) {
        otr_error_set(&err, OTR_ERR_NOMEM, "out of memory");
        rc = fail(&err);
    } else {
        rc = otr_state_save(pl->state, NULL, service, &err) < 0 ? fail(&err) : OTR_EXIT_OK;
    }
    cJSON_Delete(service);
    if (rc == OTR_EXIT_OK)
        printf("Imported %s %s as %s (state serial %ld). Run ota-runner plan to compare it with "
               "the manifest.\n",
               k->noun, r.id, address, pl->state->serial);
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
        return usage("a subcommand is needed: list, show ADDRESS, rm ADDRESS or import ADDRESS "
                     "ID");
    const char *sub = o->args[0];
    if (!strcmp(sub, "rebuild"))
        return o->nargs == 1 ? cmd_rebuild(o) : usage("wrong number of arguments");
    size_t want = !strcmp(sub, "list") || !strcmp(sub, "migrate")                        ? 1
                  : !strcmp(sub, "show") || !strcmp(sub, "rm") || !strcmp(sub, "unlock") ? 2
                  : !strcmp(sub, "import") || !strcmp(sub, "mv")                         ? 3
                                                                                         : 0;
    if (!want)
        return usage("unknown subcommand; use list, show ADDRESS, rm ADDRESS, mv ADDRESS "
                     "ADDRESS, import ADDRESS ID, unlock LOCK_ID or migrate --to URL");
    if (o->nargs != want)
        return usage("wrong number of arguments");
    if (!strcmp(sub, "migrate") != !!o->to)
        return usage(o->to ? "--to is for state migrate" : "state migrate needs --to URL");
    otr_state_where w;
    if ((rc = otr_planning_where(&pl, o, &w)) != 0)
        goto done;
    if (!strcmp(sub, "unlock")) {
        if (otr_state_break_lock(&w, o->args[1], &err) < 0)
            rc = fail(&err);
        else
            printf("Lock %s on %s broken.\n", o->args[1], w.location);
        goto done;
    }
    /* rm and import change the state: under the lock; list, show and rm
     * accept a state that records one resource twice, to mend it */
    const char *lock_for = !strcmp(sub, "rm") || !strcmp(sub, "mv") || !strcmp(sub, "import") ||
                                   !strcmp(sub, "migrate")
                               ? sub
                               : NULL;
    int repair = strcmp(sub, "import") != 0;
    if (otr_state_open(&pl.state, &w, lock_for, repair, &err) < 0) {
        rc = fail(&err);
        goto done;
    }
    if (!strcmp(sub, "list"))
        rc = cmd_list(pl.state, o, &w);
    else if (!strcmp(sub, "show"))
        rc = cmd_show(pl.state, o->args[1]);
    else if (!strcmp(sub, "rm"))
        rc = cmd_rm(pl.state, o->args[1]);
    else if (!strcmp(sub, "mv"))
        rc = cmd_mv(pl.state, o->args[1], o->args[2]);
    else if (!strcmp(sub, "migrate"))
        rc = cmd_migrate(&pl, o);
    else
        rc = cmd_import(&pl, o, o->args[1], o->args[2]);
done:
    otr_planning_free(&pl);
    return rc;
}
