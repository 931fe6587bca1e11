/* ota-runner apply [PLANFILE]: carry out the plan and record it. */
#include "apply/apply.h"
#include "behaviour/behaviour.h"
#include "cli/commands.h"
#include "cli/metrics.h"
#include "cli/notifying.h"
#include "cli/planning.h"
#include "cli/render_plan.h"
#include "util/file.h"
#include "util/signals.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct progress {
    int tty;
    int64_t last_ms;
    int shown;
} progress;

/* A progress line on stderr, on a terminal only, at most ten times a second. */
static void on_progress(const otr_apply_stats *st, void *ctx)
{
    progress *pr = ctx;
    int64_t now = otr_time_monotonic_ms();
    if (!pr->tty || (now - pr->last_ms < 100 && st->done < st->total))
        return;
    pr->last_ms = now;
    double secs = st->elapsed_ms > 0 ? st->elapsed_ms / 1000.0 : 0.001;
    fprintf(stderr, "\r\033[Kapplying: %zu/%zu done, %.1f/s, %zu failed", st->done, st->total,
            st->done / secs, st->failed);
    pr->shown = 1;
}

/* The addresses of the plan's halted resources (a staged rollout's wave
 * that failed its gate), as its kinds' behaviours judge their views; each
 * also added to names (a JSON array) when it is given. */
static size_t halted(const otr_plan *p, cJSON *names)
{
    size_t n = 0;
    for (size_t i = 0; i < p->ndetails; i++) {
        const otr_detail *d = &p->details[i];
        const otr_kind_behaviour *bh = otr_behaviour_of(d->kind);
        if (!bh || !bh->view_halted || !d->view || !bh->view_halted(d->view))
            continue;
        n++;
        otr_buf a = OTR_BUF_INIT;
        otr_address_full(&a, d->kind, d->name);
        if (names && !otr_buf_failed(&a))
            cJSON_AddItemToArray(names, cJSON_CreateString(a.ptr));
        otr_buf_free(&a);
    }
    return n;
}

/* Says, after the summary, that a rollout is halted: the apply moved it no
 * further, and a person must act (its block above says why). */
static void warn_halted(const otr_plan *p, const otr_options *o)
{
    cJSON *names = cJSON_CreateArray();
    halted(p, names);
    for (int i = 0; i < cJSON_GetArraySize(names); i++)
        fprintf(stderr,
                "ota-runner: warning: %s is halted: this apply moved it no further (its block "
                "above says why; 'ota-runner status' shows its devices' counts)%s\n",
                cJSON_GetStringValue(cJSON_GetArrayItem(names, i)),
                o->fail_on_halt ? "" : "; --fail-on-halt makes apply exit 4");
    cJSON_Delete(names);
}

/* A saved plan is applied only onto the state and the commit it was made from. */
static int check_saved_plan(const otr_plan *p, const otr_state *s, const otr_options *o)
{
    otr_error err = OTR_ERROR_INIT;
    if (p->adopted) {
        fprintf(stderr,
                "ota-runner: error: the saved plan adopted %zu resources from the service, which "
                "this state does not record; run 'ota-runner state rebuild', then make a new "
                "plan\n",
                p->adopted);
        return OTR_EXIT_ERROR;
    }
    /* a state not yet written gets a new lineage on every read: a plan made on
     * one is for any state that still holds nothing */
    int both_new = !s->exists && p->serial == 0 && s->serial == 0 && !s->journal_entries;
    if ((!both_new && strcmp(p->lineage, s->lineage) != 0) || p->serial != s->serial ||
        p->journal_entries != s->journal_entries) {
        fprintf(stderr,
                "ota-runner: error: the saved plan is stale: it was made for state %s "
                "serial %ld (%zu journal entries), and the state is now %s serial %ld "
                "(%zu journal entries); make a new plan\n",
                p->lineage, p->serial, p->journal_entries, s->lineage, s->serial,
                s->journal_entries);
        return OTR_EXIT_ERROR;
    }
    otr_options so = *o;
    /* the plan keeps the URL without its user name or password: the one given
     * here, when it is the same repository, brings them back */
    char *given = o->repo ? otr_url_redact(o->repo) : NULL;
    so.repo = given && p->repo && !strcmp(given, p->repo) ? o->repo : p->repo;
    free(given);
    so.ref = p->ref;
    so.path = p->path;
    otr_source_opts src = {
        .repo = so.repo,
        .ref = so.ref,
        .path = so.path,
        .cache_dir = o->cache_dir,
        .fetch_idle_s = o->fetch_idle_s,
        .fetch_total_s = o->fetch_total_s,
        .config_file = o->config_file,
    };
    otr_source *source = NULL;
    if (otr_source_open(&source, &src, &err) < 0) {
        otr_error_prefix(&err, "the saved plan's source");
        otr_print_error(&err);
        otr_error_clear(&err);
        return OTR_EXIT_ERROR;
    }
    int rc = OTR_EXIT_OK;
    otr_source_trust trust;
    const char *since = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s->source, "commit"));
    if (otr_verify_source(source, o, o->verify_range, since, &trust, &err) < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
        rc = OTR_EXIT_ERROR;
    } else if (!p->commit || strcmp(otr_source_commit(source), p->commit) != 0) {
        fprintf(stderr,
                "ota-runner: error: the saved plan is stale: %s in %s was at %.12s when "
                "it was made and is now at %.12s; make a new plan\n",
                p->ref ? p->ref : "HEAD", p->repo ? p->repo : ".", p->commit ? p->commit : "?",
                otr_source_commit(source));
        rc = OTR_EXIT_ERROR;
    }
    otr_source_free(source);
    return rc;
}

static int load_saved_plan(otr_planning *pl, const otr_options *o, const char *path)
{
    int rc;
    memset(pl, 0, sizeof(*pl));
    if ((rc = otr_planning_read_plan(&pl->plan, path)) != 0 ||
        (rc = otr_planning_open_state(pl, o, "apply")) != 0)
        return rc;
    return check_saved_plan(pl->plan, pl->state, o);
}

/* Writes the records the plan says to write without a call (a manifest
 * moved by git mv, an imported resource that already is as its manifest, a
 * rollout's wave that passed its gate or halted). */
static size_t apply_rewrites(otr_state *s, const otr_plan *p)
{
    size_t done = 0;
    for (size_t i = 0; i < p->nrewrites; i++) {
        const otr_record *w = &p->rewrites[i].rec;
        if (otr_state_find(s, w->kind, w->name) && otr_state_put(s, w) == 0)
            done++;
    }
    return done;
}

static int interrupted(void *ctx)
{
    (void)ctx;
    return otr_signals_received();
}

static void print_json(const otr_apply_result *r, const otr_plan *p, int saved)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "formatVersion", 1);
    cJSON *names = cJSON_CreateArray();
    size_t nhalted = halted(p, names);
    cJSON *s = cJSON_AddObjectToObject(root, "summary");
    cJSON_AddNumberToObject(s, "actions", (double)r->stats.total);
    cJSON_AddNumberToObject(s, "created", (double)r->stats.created);
    cJSON_AddNumberToObject(s, "updated", (double)r->stats.updated);
    cJSON_AddNumberToObject(s, "replaced", (double)r->stats.replaced);
    cJSON_AddNumberToObject(s, "deleted", (double)r->stats.deleted);
    cJSON_AddNumberToObject(s, "resumed", (double)r->stats.resumed);
    cJSON_AddNumberToObject(s, "keptRetired", (double)r->stats.retired);
    cJSON_AddNumberToObject(s, "failed", (double)r->stats.failed);
    cJSON_AddNumberToObject(s, "notStarted", (double)r->stats.not_started);
    cJSON_AddNumberToObject(s, "elapsedMs", (double)r->stats.elapsed_ms);
    cJSON_AddNumberToObject(s, "halted", (double)nhalted);
    cJSON_AddItemToObject(root, "halted", names);
    cJSON_AddBoolToObject(root, "stateSaved", saved);
    if (r->stopped)
        cJSON_AddStringToObject(root, "stopped", r->stopped);
    if (r->signal)
        cJSON_AddStringToObject(root, "signal", otr_signal_name(r->signal));
    cJSON *left = cJSON_AddArrayToObject(root, "notStarted");
    for (size_t i = 0; i < r->nnot_started; i++)
        cJSON_AddItemToArray(left, cJSON_CreateString(r->not_started[i]));
    cJSON *notes = cJSON_AddArrayToObject(root, "notes");
    for (size_t i = 0; i < r->nnotes; i++)
        cJSON_AddItemToArray(notes, cJSON_CreateString(r->notes[i]));
    cJSON *f = cJSON_AddArrayToObject(root, "failures");
    for (size_t i = 0; i < r->nfailures; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", r->failures[i].name);
        cJSON_AddStringToObject(x, "error", r->failures[i].description);
        cJSON_AddItemToArray(f, x);
    }
    char *text = cJSON_Print(root);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
}

/* Saves the snapshot: what was done is recorded, whatever else happened.
 * Returns 1 when saved. */
static int save_state(otr_planning *pl, const otr_options *o)
{
    otr_error err = OTR_ERROR_INIT;
    cJSON *source = otr_planning_source_json(pl->plan);
    cJSON *service = pl->service_open ? otr_service_json(&pl->service) : NULL;
    int saved = otr_state_save(pl->state, source, service, &err) == 0;
    if (!saved) {
        otr_error_prefix(&err,
                         "the journal %s.journal still holds what was done; fix this, then "
                         "run again",
                         otr_options_state_path(o));
        otr_print_error(&err);
        otr_error_clear(&err);
    }
    cJSON_Delete(source);
    cJSON_Delete(service);
    return saved;
}

/* The renames of the plan (metadata.previousNames), saved before any call:
 * the calls' journal then names each resource by its new name only. */
static int apply_moves(otr_planning *pl, const otr_options *o)
{
    const otr_plan *p = pl->plan;
    if (!p->nmoves)
        return OTR_EXIT_OK;
    for (size_t i = 0; i < p->nmoves; i++) {
        if (otr_state_rename(pl->state, p->moves[i].kind, p->moves[i].from, p->moves[i].to) < 0) {
            fprintf(stderr,
                    "ota-runner: error: %s/%s cannot move to %s: it is not recorded, or %s is; "
                    "make a new plan\n",
                    p->moves[i].kind->name, p->moves[i].from, p->moves[i].to, p->moves[i].to);
            return OTR_EXIT_ERROR;
        }
    }
    if (!save_state(pl, o))
        return OTR_EXIT_ERROR;
    for (size_t i = 0; i < p->nmoves && o->output != OTR_OUT_JSON; i++)
        printf("Moved %s/%s to %s (state serial %ld).\n", p->moves[i].kind->name, p->moves[i].from,
               p->moves[i].to, pl->state->serial);
    return OTR_EXIT_OK;
}

/* --notify: the outbox out to every URL once the state holds it, saved
 * again for what they took. Returns the exit code it asks for: 1 for a
 * delivery that failed under --notify-required. */
static int notify(otr_planning *pl, const otr_options *o, otr_run_metrics *m)
{
    size_t sent = 0, failed = 0;
    if (!o->nnotify || !cJSON_GetArraySize(pl->state->outbox))
        return OTR_EXIT_OK;
    int changed = otr_notifying_send(pl->state, o, &sent, &failed);
    m->delivered += sent;
    m->undelivered += failed;
    if (changed)
        (void)save_state(pl, o); /* unsaved, the next run sends them once more */
    if (sent && o->output != OTR_OUT_JSON)
        printf("Notified: %zu event%s delivered.\n", sent, sent == 1 ? "" : "s");
    return failed && o->notify_required ? OTR_EXIT_ERROR : OTR_EXIT_OK;
}

/* On a terminal, the person who ran apply says yes to the plan shown, as
 * Terraform asks; --auto-approve, a saved plan (reviewed when it was made),
 * JSON output or no terminal never ask. */
static int approved(const otr_options *o)
{
    char answer[16];
    if (o->auto_approve || o->nargs || o->output == OTR_OUT_JSON || !isatty(STDIN_FILENO) ||
        !isatty(STDOUT_FILENO))
        return 1;
    printf("\nDo you want to apply this plan? Only 'yes' is accepted (--auto-approve skips "
           "this): ");
    fflush(stdout);
    if (fgets(answer, sizeof(answer), stdin) && !strcmp(answer, "yes\n"))
        return 1;
    fprintf(stderr, "ota-runner: apply cancelled: nothing was changed\n");
    return 0;
}

/* What apply refuses to do without being told; returns an exit code. */
static int check_guards(const otr_plan *p, const otr_options *o)
{
    otr_plan_guards g = otr_planning_guards(o);
    otr_buf why = OTR_BUF_INIT;
    if (otr_plan_check_guards(p, &g, &why) == 0)
        return OTR_EXIT_OK;
    if (o->output != OTR_OUT_JSON) {
        otr_buf text = OTR_BUF_INIT;
        otr_render_plan_text(p, NULL, &text, 0);
        fputs(otr_buf_cstr(&text), stdout);
        otr_buf_free(&text);
        fflush(stdout);
    }
    for (const char *line = why.ptr; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        fprintf(stderr, "ota-runner: error: %.*s\n", (int)len, line);
        line += len + (nl != NULL);
    }
    fprintf(stderr, "ota-runner: error: nothing was changed\n");
    otr_buf_free(&why);
    return OTR_EXIT_ERROR;
}

static void print_report(const otr_apply_result *r, const otr_state *s)
{
    for (size_t i = 0; i < r->nnotes; i++)
        otr_print_line(stderr, "ota-runner: note: ", r->notes[i]);
    for (size_t i = 0; i < r->nfailures; i++)
        otr_print_line(stderr, "ota-runner: error: ", r->failures[i].description);
    if (r->stopped)
        fprintf(stderr, "ota-runner: error: stopped early: %s\n", r->stopped);
    if (r->nnot_started) {
        fprintf(stderr,
                "ota-runner: %zu action%s not started (the next apply does them):", r->nnot_started,
                r->nnot_started == 1 ? "" : "s");
        for (size_t i = 0; i < r->nnot_started; i++)
            fprintf(stderr, "%s %s", i ? "," : "", r->not_started[i]);
        fputc('\n', stderr);
    }
    const char *how = r->signal                       ? "interrupted"
                      : r->stats.failed || r->stopped ? "incomplete"
                                                      : "complete";
    printf("Apply %s: %zu created, %zu updated, %zu replaced, %zu deleted, %zu resumed; "
           "%zu failed",
           how, r->stats.created, r->stats.updated, r->stats.replaced, r->stats.deleted,
           r->stats.resumed, r->stats.failed);
    if (r->stats.retired)
        printf(", %zu kept retired (still in use)", r->stats.retired);
    if (r->stats.not_started)
        printf(", %zu not started", r->stats.not_started);
    printf(" (%.1f s). State serial %ld.\n", r->stats.elapsed_ms / 1000.0, s->serial);
}

int otr_cmd_apply(const otr_options *o)
{
    otr_planning pl;
    otr_apply_result r;
    otr_notifying nt;
    otr_run_metrics metrics = {.started_ms = otr_time_monotonic_ms()};
    otr_error err = OTR_ERROR_INIT;
    int rc, saved = 0;
    memset(&r, 0, sizeof(r));
    memset(&nt, 0, sizeof(nt));
    memset(&pl, 0, sizeof(pl));
    if (o->nargs > 1) {
        fprintf(stderr,
                "ota-runner apply: one plan file at most (see 'ota-runner apply --help')\n");
        return OTR_EXIT_ERROR;
    }
    /* from here on a CI system's cancel (SIGINT / SIGTERM) is a stop, not a kill */
    otr_signals_graceful("apply");
    rc = o->nargs ? load_saved_plan(&pl, o, o->args[0]) : otr_planning_prepare(&pl, o, "apply");
    if (rc)
        goto done;
    /* what was adopted is recorded before any call: a run killed after its
     * first call leaves a state that is no longer empty, which the next run
     * would not adopt into, and would create the adopted tasks again once
     * the service forgot their ClientTokens */
    if (pl.nadopted && !(saved = save_state(&pl, o))) {
        rc = OTR_EXIT_ERROR;
        goto done;
    }
    if ((rc = check_guards(pl.plan, o)) != 0 || (rc = apply_moves(&pl, o)) != 0)
        goto done;
    /* what the events compare with: the records as this run found them, renamed */
    if (otr_notifying_before(&nt, pl.state, o) < 0) {
        fprintf(stderr, "ota-runner: error: out of memory\n");
        rc = OTR_EXIT_ERROR;
        goto done;
    }
    /* deletes an interrupted run left, judged anew by this plan: out of the journal */
    for (size_t i = 0; i < pl.plan->ndropped; i++)
        (void)otr_state_forget_pending(pl.state, &pl.plan->dropped[i]);
    if (otr_plan_changes(pl.plan) == 0) {
        otr_buf text = OTR_BUF_INIT;
        /* a rollout's standing is shown whether or not this run moves it */
        if (pl.plan->counts[OTR_ACT_ORPHAN] || pl.plan->nnotes || pl.plan->ndetails)
            otr_render_plan_text(pl.plan, NULL, &text, 0);
        else
            otr_render_plan_summary(pl.plan, &text);
        size_t written = apply_rewrites(pl.state, pl.plan);
        /* a killed run's journal may hold every call: fold it into the snapshot */
        size_t replayed = pl.state->journal_entries;
        size_t adopted = pl.nadopted; /* recorded already, above */
        otr_notifying_queue(&nt, pl.state, pl.plan, NULL, o);
        if (written || replayed) {
            saved = save_state(&pl, o);
            if (!saved)
                rc = OTR_EXIT_ERROR;
        }
        if (o->output == OTR_OUT_JSON)
            print_json(&r, pl.plan, saved);
        else if (written || (adopted && saved))
            printf(
                "%s%sNothing to apply; %zu record%s written without a call (state serial %ld).\n",
                text.ptr, text.ptr[text.len - 1] == '\n' ? "" : " ", written + adopted,
                written + adopted == 1 ? "" : "s", pl.state->serial);
        else if (saved)
            printf("%s%sNothing to apply; the journal's %zu entries written into the state "
                   "(serial %ld).\n",
                   text.ptr, text.ptr[text.len - 1] == '\n' ? "" : " ", replayed, pl.state->serial);
        else
            printf("%s%sNothing to apply.\n", text.ptr, text.ptr[text.len - 1] == '\n' ? "" : " ");
        otr_buf_free(&text);
        if (o->output != OTR_OUT_JSON)
            warn_halted(pl.plan, o);
        if (!rc && (saved || !(written || replayed)))
            rc = notify(&pl, o, &metrics);
        goto done;
    }
    if (o->output != OTR_OUT_JSON) {
        otr_render_plan_text_to(stdout, pl.plan, NULL, 0);
        fflush(stdout);
    }
    if (!approved(o)) {
        rc = OTR_EXIT_ERROR;
        goto done;
    }
    if ((rc = otr_planning_open_service(&pl, o)) != 0)
        goto done;
    progress pr = {isatty(STDERR_FILENO), 0, 0};
    otr_apply_options ao = OTR_APPLY_OPTIONS_INIT;
    ao.parallelism = o->parallelism;
    ao.fail_fast = o->fail_fast;
    ao.progress = on_progress;
    ao.progress_ctx = &pr;
    ao.interrupted = interrupted;
    if (otr_apply_run(pl.service.client, pl.state, pl.plan, &ao, &r, &err) < 0) {
        otr_print_error(&err);
        otr_error_clear(&err);
        rc = OTR_EXIT_ERROR;
    }
    if (pr.shown)
        fputc('\n', stderr);
    apply_rewrites(pl.state, pl.plan);
    otr_notifying_queue(&nt, pl.state, pl.plan, &r, o);
    saved = save_state(&pl, o);
    if (!saved)
        rc = OTR_EXIT_ERROR;
    if (o->output == OTR_OUT_JSON) {
        for (size_t i = 0; i < r.nfailures; i++)
            otr_print_line(stderr, "ota-runner: error: ", r.failures[i].description);
        print_json(&r, pl.plan, saved);
    } else {
        print_report(&r, pl.state);
        warn_halted(pl.plan, o);
    }
    if (saved && notify(&pl, o, &metrics) != OTR_EXIT_OK)
        rc = OTR_EXIT_ERROR;
    if (r.stats.failed || r.stopped)
        rc = OTR_EXIT_ERROR;
    if (r.signal)
        rc = OTR_EXIT_SIGNAL_BASE + r.signal;
done:
    if (!rc && otr_signals_received())
        rc = OTR_EXIT_SIGNAL_BASE + otr_signals_received();
    if (!rc && o->fail_on_halt && pl.plan && halted(pl.plan, NULL))
        rc = OTR_EXIT_HALTED;
    metrics.success = rc == OTR_EXIT_OK || rc == OTR_EXIT_HALTED; /* a halt is the rollout's */
    metrics.lock_wait_ms = pl.lock_wait_ms;
    metrics.plan = pl.plan;
    metrics.state = pl.state;
    metrics.client = pl.service_open ? pl.service.client : NULL;
    metrics.repo = pl.loaded_ok ? otr_source_repo(pl.loaded.source)
                   : pl.plan    ? pl.plan->repo
                                : NULL;
    metrics.path = pl.loaded_ok ? otr_source_path(pl.loaded.source)
                   : pl.plan    ? pl.plan->path
                                : NULL;
    otr_metrics_emit(o, &metrics);
    otr_apply_result_clear(&r);
    otr_notifying_free(&nt);
    otr_planning_free(&pl);
    return rc;
}
