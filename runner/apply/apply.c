/* Plan execution: per-name step sequences, journaled, run concurrently. */
#include "apply/apply.h"

#include "ota/ota.h"
#include "util/buf.h"
#include "util/signals.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum step {
    STEP_CREATE,
    STEP_UPDATE,
    STEP_DELETE,
    STEP_CHECK_UPDATE, /* resume: GetOtaTask, then update only if still needed */
    STEP_CHECK_DELETE, /* resume: GetOtaTask, then delete only if still there */
} step;

struct run;

typedef struct jstep {
    step kind;
    const otr_action *a; /* the action the step carries out */
} jstep;

/* One name's work: a resume, if an interrupted run left one, then the
 * planned action; the task id travels from step to step. */
typedef struct job {
    const char *name;
    jstep steps[4];
    int nsteps, cur;
    int journaled;   /* the current step's intent is in the journal */
    int reported;    /* its failure is in the result */
    char *task_id;   /* the name's task as the steps go */
    char *deleted;   /* the task a delete step of this chain removed */
    otr_record work; /* what the current step records when it succeeds */
    otr_aws_call *call;
    struct run *run;
} job;

typedef struct run {
    otr_aws_client *c;
    otr_state *s;
    const otr_apply_options *o;
    otr_apply_result *r;
    job *jobs;
    size_t njobs, next, active;
    int64_t started_ms;
} run;

/* Where a failed chain stopped, and what the next run does about it. */
static void chain_note(const job *j, otr_buf *out)
{
    step st = j->steps[j->cur].kind;
    const otr_action *a = j->steps[j->cur].a;
    switch (st) {
    case STEP_CREATE:
        if (j->deleted)
            otr_buf_printf(out, "its old task %s was deleted and the new one is not created yet: "
                                "the next apply creates it",
                           j->deleted);
        else
            otr_buf_puts(out, "no task was created: the next apply tries again");
        break;
    case STEP_DELETE:
        if (a->kind == OTR_ACT_REPLACE)
            otr_buf_printf(out, "task %s is still in place and nothing was created: the next "
                                "apply tries the replace again",
                           j->task_id ? j->task_id : "?");
        else
            otr_buf_printf(out, "task %s is still in place: the next apply tries again",
                           j->task_id ? j->task_id : "?");
        break;
    case STEP_UPDATE:
        otr_buf_printf(out, "task %s keeps its old fields: the next apply tries again",
                       j->task_id ? j->task_id : "?");
        break;
    case STEP_CHECK_UPDATE:
    case STEP_CHECK_DELETE:
        otr_buf_puts(out, "the interrupted call is still unfinished: the next apply tries again");
        break;
    }
}

/* The failure of the job's current step: what failed, and where its chain
 * stopped. One per job. */
static void add_failure(job *j, const char *what)
{
    otr_apply_result *r = j->run->r;
    if (j->reported)
        return;
    j->reported = 1;
    otr_apply_failure *f = realloc(r->failures, (r->nfailures + 1) * sizeof(*f));
    if (!f)
        return;
    r->failures = f;
    otr_buf msg = OTR_BUF_INIT, subject = OTR_BUF_INIT;
    otr_buf_printf(&subject, "(%s)", j->name);
    /* a call's description names its manifest; anything else gets the name */
    if (!strstr(what, otr_buf_cstr(&subject)))
        otr_buf_printf(&msg, "%s: ", j->name);
    otr_buf_free(&subject);
    otr_buf_printf(&msg, "%s; ", what);
    chain_note(j, &msg);
    f[r->nfailures].name = strdup(j->name);
    f[r->nfailures].description = otr_buf_detach(&msg);
    if (!f[r->nfailures].description)
        f[r->nfailures].description = strdup(what);
    r->nfailures++;
}

static void stop(run *rn, const char *why)
{
    if (!rn->r->stopped)
        rn->r->stopped = strdup(why);
}

static void start_next_jobs(run *rn);

static void count(otr_apply_stats *st, otr_action_kind kind)
{
    switch (kind) {
    case OTR_ACT_CREATE: st->created++; break;
    case OTR_ACT_UPDATE: st->updated++; break;
    case OTR_ACT_REPLACE: st->replaced++; break;
    case OTR_ACT_DELETE: st->deleted++; break;
    case OTR_ACT_RESUME: st->resumed++; break;
    default: break;
    }
}

static void set_task_id(job *j, const char *id)
{
    char *copy = id ? strdup(id) : NULL;
    free(j->task_id);
    j->task_id = copy;
}

static void finish_job(job *j, int ok)
{
    run *rn = j->run;
    otr_apply_stats *st = &rn->r->stats;
    st->done++;
    if (!ok) {
        st->failed++;
        add_failure(j, "failed"); /* every failed name is listed, whatever failed */
        if (rn->o->fail_fast)
            stop(rn, "--fail-fast: stopped after the first failure");
    } else {
        const otr_action *last = NULL;
        for (int i = 0; i < j->nsteps; i++)
            if (j->steps[i].a != last)
                count(st, (last = j->steps[i].a)->kind);
    }
    st->elapsed_ms = otr_time_monotonic_ms() - rn->started_ms;
    otr_aws_call_free(j->call);
    j->call = NULL;
    otr_record_clear(&j->work);
    set_task_id(j, NULL);
    free(j->deleted);
    j->deleted = NULL;
    rn->active--;
    if (rn->o->progress)
        rn->o->progress(st, rn->o->progress_ctx);
    start_next_jobs(rn);
}

static void on_call_done(otr_aws_call *call, void *ctx);

/* Journals the intent of the current step (unless a resumed intent already
 * is there) and sends its call. Returns 0 when a call is on its way, 1 when
 * nothing is left to do, -1 on failure. */
static int start_step(job *j)
{
    run *rn = j->run;
    const otr_action *a = j->steps[j->cur].a;
    otr_error err = OTR_ERROR_INIT;
    step st = j->steps[j->cur].kind;
    otr_op op = st == STEP_CREATE   ? OTR_OP_CREATE
                : st == STEP_UPDATE ? OTR_OP_UPDATE
                                    : OTR_OP_DELETE;
    const char *task_id = j->task_id;

    /* no check of rn->r->stopped here: a chain that has started is carried
     * to its end (start_next_jobs starts no new one) */
    if (st == STEP_DELETE && !task_id) { /* nothing to delete: a create never made it */
        if (++j->cur >= j->nsteps)
            return 1;
        return start_step(j);
    }
    otr_record_clear(&j->work);
    switch (st) {
    case STEP_CREATE:
        if (otr_record_copy(&j->work, &a->desired) < 0)
            break;
        free(j->work.task_id);
        free(j->work.task_arn);
        j->work.task_id = j->work.task_arn = NULL;
        j->call = otr_ota_create_task(a->desired.spec, a->desired.client_token, a->name);
        break;
    case STEP_UPDATE: {
        /* the recorded task, with the manifest's spec */
        if (otr_record_copy(&j->work, a->old.name ? &a->old : &a->desired) < 0)
            break;
        cJSON_Delete(j->work.spec);
        free(j->work.spec_digest);
        free(j->work.file);
        free(j->work.commit);
        j->work.spec = cJSON_Duplicate(a->desired.spec, 1);
        j->work.spec_digest = a->desired.spec_digest ? strdup(a->desired.spec_digest) : NULL;
        j->work.file = a->desired.file ? strdup(a->desired.file) : NULL;
        j->work.commit = a->desired.commit ? strdup(a->desired.commit) : NULL;
        if (!j->work.task_id && task_id)
            j->work.task_id = strdup(task_id);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(a->desired.spec, "Description");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(a->desired.spec, "TaskConfigurationId");
        j->call = otr_ota_update_task(j->work.task_id, cJSON_GetStringValue(d),
                                      cJSON_GetStringValue(t), a->name);
        break;
    }
    case STEP_DELETE:
        j->work.name = strdup(a->name);
        j->work.task_id = task_id ? strdup(task_id) : NULL;
        j->call = otr_ota_delete_task(task_id, a->name);
        break;
    case STEP_CHECK_UPDATE:
    case STEP_CHECK_DELETE:
        j->call = otr_ota_get_task(task_id, a->name);
        j->journaled = 1;
        break;
    }
    if (!j->call) {
        stop(rn, "out of memory");
        add_failure(j, "out of memory");
        return -1;
    }
    if (!j->journaled && st != STEP_CHECK_UPDATE && st != STEP_CHECK_DELETE) {
        if (otr_state_journal_intent(rn->s, op, &j->work, &err) < 0) {
            stop(rn, otr_error_message(&err));
            add_failure(j, otr_error_message(&err));
            otr_error_clear(&err);
            return -1;
        }
    }
    j->journaled = 0;
    j->call->done = on_call_done;
    j->call->ctx = j;
    otr_aws_client_submit(rn->c, j->call);
    return 0;
}

/* Writes the step's result to the journal (and the state in memory). */
static void settle(job *j, otr_op op, int ok, const char *error)
{
    otr_error err = OTR_ERROR_INIT;
    if (otr_state_journal_result(j->run->s, op, &j->work, ok, error, &err) < 0) {
        stop(j->run, otr_error_message(&err));
        otr_error_clear(&err);
    }
}

static int is_not_found(const otr_aws_call *call)
{
    return call->status == 404 ||
           (call->error_type && !strcmp(call->error_type, "ResourceNotFoundException"));
}

static void next_step_or_finish(job *j, int ok)
{
    otr_aws_call_free(j->call);
    j->call = NULL;
    if (ok && ++j->cur < j->nsteps) {
        int rc = start_step(j);
        if (rc == 0)
            return;
        ok = rc > 0;
    }
    finish_job(j, ok);
}

/* Starts the step again after it changed kind (a resume check found work). */
static void restart_step(job *j)
{
    otr_aws_call_free(j->call);
    j->call = NULL;
    int rc = start_step(j);
    if (rc != 0)
        finish_job(j, rc > 0);
}

static void fail_step(job *j, otr_op op, const otr_aws_call *call, int journal)
{
    otr_buf msg = OTR_BUF_INIT;
    otr_aws_call_describe(call, &msg);
    if (journal)
        settle(j, op, 0, msg.ptr);
    add_failure(j, msg.ptr);
    otr_buf_free(&msg);
    next_step_or_finish(j, 0);
}

static void on_call_done(otr_aws_call *call, void *ctx)
{
    job *j = ctx;
    const otr_action *a = j->steps[j->cur].a;
    otr_error err = OTR_ERROR_INIT;
    step st = j->steps[j->cur].kind;

    switch (st) {
    case STEP_CREATE: {
        char *id = NULL, *arn = NULL;
        if (!call->ok) {
            fail_step(j, OTR_OP_CREATE, call, 1);
            return;
        }
        if (otr_ota_parse_create_task(call, &id, &arn, &err) < 0) {
            settle(j, OTR_OP_CREATE, 0, otr_error_message(&err));
            add_failure(j, otr_error_message(&err));
            otr_error_clear(&err);
            next_step_or_finish(j, 0);
            return;
        }
        j->work.task_id = id;
        j->work.task_arn = arn;
        set_task_id(j, id);
        free(j->work.created_at);
        j->work.created_at = otr_time_now_iso8601();
        free(j->work.phase);
        j->work.phase = strdup("created");
        settle(j, OTR_OP_CREATE, 1, NULL);
        next_step_or_finish(j, 1);
        return;
    }
    case STEP_UPDATE:
        if (!call->ok) {
            fail_step(j, OTR_OP_UPDATE, call, 1);
            return;
        }
        free(j->work.updated_at);
        j->work.updated_at = otr_time_now_iso8601();
        settle(j, OTR_OP_UPDATE, 1, NULL);
        next_step_or_finish(j, 1);
        return;
    case STEP_DELETE:
        if (!call->ok && !is_not_found(call)) { /* already gone is deleted */
            fail_step(j, OTR_OP_DELETE, call, 1);
            return;
        }
        free(j->deleted);
        j->deleted = j->task_id;
        j->task_id = NULL;
        settle(j, OTR_OP_DELETE, 1, NULL);
        next_step_or_finish(j, 1);
        return;
    case STEP_CHECK_DELETE:
        if (!call->ok && is_not_found(call)) {
            j->work.name = strdup(a->name);
            free(j->deleted);
            j->deleted = j->task_id;
            j->task_id = NULL;
            settle(j, OTR_OP_DELETE, 1, NULL);
            next_step_or_finish(j, 1);
            return;
        }
        if (!call->ok) {
            fail_step(j, OTR_OP_DELETE, call, 0);
            return;
        }
        j->steps[j->cur].kind = STEP_DELETE; /* still there: delete it (the intent is journaled) */
        j->journaled = 1;
        restart_step(j);
        return;
    case STEP_CHECK_UPDATE: {
        otr_ota_task t;
        if (!call->ok || otr_ota_parse_get_task(call, &t, &err) < 0) {
            otr_error_clear(&err);
            fail_step(j, OTR_OP_UPDATE, call, 0);
            return;
        }
        int done = 1;
        static const char *const fields[] = {"Description", "TaskConfigurationId"};
        for (int i = 0; i < 2; i++) {
            const cJSON *want = cJSON_GetObjectItemCaseSensitive(a->desired.spec, fields[i]);
            const cJSON *have = cJSON_GetObjectItemCaseSensitive(t.fields, fields[i]);
            if (want && (!have || !cJSON_Compare(want, have, 1)))
                done = 0;
        }
        otr_ota_task_clear(&t);
        j->steps[j->cur].kind = STEP_UPDATE;
        j->journaled = 1;
        if (done) { /* the update had reached the service: settle it */
            otr_aws_call_free(j->call);
            j->call = NULL;
            otr_record_clear(&j->work);
            if (otr_record_copy(&j->work, &a->desired) < 0) {
                stop(j->run, "out of memory");
                add_failure(j, "out of memory");
                next_step_or_finish(j, 0);
                return;
            }
            settle(j, OTR_OP_UPDATE, 1, NULL);
            next_step_or_finish(j, 1);
            return;
        }
        restart_step(j);
        return;
    }
    }
}

static void add_step(job *j, step kind, const otr_action *a)
{
    j->steps[j->nsteps].kind = kind;
    j->steps[j->nsteps].a = a;
    j->nsteps++;
}

/* Appends the steps of an action to its name's job. */
static void plan_steps(job *j, const otr_action *a)
{
    if (!j->name) {
        j->name = a->name;
        set_task_id(j, a->old.task_id ? a->old.task_id : a->desired.task_id);
    }
    switch (a->kind) {
    case OTR_ACT_CREATE: add_step(j, STEP_CREATE, a); break;
    case OTR_ACT_UPDATE: add_step(j, STEP_UPDATE, a); break;
    case OTR_ACT_REPLACE:
        add_step(j, STEP_DELETE, a); /* skipped at run time when there is no task */
        add_step(j, STEP_CREATE, a);
        break;
    case OTR_ACT_DELETE: add_step(j, STEP_DELETE, a); break;
    case OTR_ACT_RESUME:
        /* the intent is already in the journal: finish it with the same request */
        j->journaled = 1;
        add_step(j,
                 a->resume_op == OTR_OP_CREATE   ? STEP_CREATE
                 : a->resume_op == OTR_OP_UPDATE ? STEP_CHECK_UPDATE
                                                 : STEP_CHECK_DELETE,
                 a);
        break;
    default: break;
    }
}

static void start_next_jobs(run *rn)
{
    int limit = rn->o->parallelism > 0 ? rn->o->parallelism : 8;
    int sig = rn->o->interrupted ? rn->o->interrupted(rn->o->interrupted_ctx) : 0;
    if (sig && !rn->r->signal) {
        char why[64];
        snprintf(why, sizeof(why), "interrupted by %s", otr_signal_name(sig));
        rn->r->signal = sig;
        stop(rn, why);
    }
    while (!rn->r->stopped && rn->next < rn->njobs && rn->active < (size_t)limit) {
        job *j = &rn->jobs[rn->next++];
        rn->active++;
        int rc = start_step(j);
        if (rc != 0)
            finish_job(j, rc > 0);
    }
}

/* The names a stop left for the next run. */
static void record_not_started(run *rn)
{
    otr_apply_result *r = rn->r;
    size_t n = rn->njobs - rn->next;
    r->stats.not_started = n;
    if (!n || !(r->not_started = calloc(n, sizeof(char *))))
        return;
    for (size_t i = rn->next; i < rn->njobs; i++)
        if ((r->not_started[r->nnot_started] = strdup(rn->jobs[i].name)))
            r->nnot_started++;
}

int otr_apply_run(otr_aws_client *c, otr_state *s, const otr_plan *p, const otr_apply_options *o,
                  otr_apply_result *r, otr_error *err)
{
    run rn = {c, s, o, r, NULL, 0, 0, 0, otr_time_monotonic_ms()};
    memset(r, 0, sizeof(*r));
    rn.jobs = calloc(p->count ? p->count : 1, sizeof(*rn.jobs));
    if (!rn.jobs)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    /* resumes come first in the plan; a later action of the same name joins
     * its job, so one name's calls stay in order */
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *a = &p->actions[i];
        if (a->kind == OTR_ACT_NOOP || a->kind == OTR_ACT_ORPHAN)
            continue;
        job *j = NULL;
        for (size_t k = 0; k < rn.njobs && a->kind != OTR_ACT_RESUME; k++)
            if (rn.jobs[k].steps[0].a->kind == OTR_ACT_RESUME && !strcmp(rn.jobs[k].name, a->name))
                j = &rn.jobs[k];
        if (!j) {
            j = &rn.jobs[rn.njobs++];
            j->run = &rn;
        }
        plan_steps(j, a);
    }
    r->stats.total = rn.njobs;
    start_next_jobs(&rn);
    int rc = otr_aws_client_run(c, err);
    record_not_started(&rn);
    for (size_t i = 0; i < rn.njobs; i++) {
        otr_aws_call_free(rn.jobs[i].call);
        otr_record_clear(&rn.jobs[i].work);
        free(rn.jobs[i].task_id);
        free(rn.jobs[i].deleted);
    }
    free(rn.jobs);
    r->stats.elapsed_ms = otr_time_monotonic_ms() - rn.started_ms;
    return rc;
}

void otr_apply_result_clear(otr_apply_result *r)
{
    for (size_t i = 0; i < r->nfailures; i++) {
        free(r->failures[i].name);
        free(r->failures[i].description);
    }
    free(r->failures);
    for (size_t i = 0; i < r->nnot_started; i++)
        free(r->not_started[i]);
    free(r->not_started);
    free(r->stopped);
    memset(r, 0, sizeof(*r));
}
