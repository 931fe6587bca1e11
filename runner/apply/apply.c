/*
 * Plan execution as a graph: one node per address (a resume and the planned
 * action of the same address share one), each a short chain of steps, each
 * waiting for the nodes its actions depend on (plan.h). Every mutating step
 * is journaled before its call and after its answer. Ready nodes run
 * concurrently, at most `parallelism` at a time.
 */
#include "apply/internal.h"
#include "kinds/tags.h"

#include "manifest/token.h"
#include "util/buf.h"
#include "util/signals.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void start_ready(apply_run *rn);
static void on_call_done(otr_aws_call *call, void *ctx);

/* ---- the graph as it runs --------------------------------------------------------------- */

static void count(otr_apply_stats *st, const otr_action *a, int kept_retired)
{
    if (a->kind == OTR_ACT_DELETE && kept_retired) {
        st->retired++;
        return;
    }
    switch (a->kind) {
    case OTR_ACT_CREATE: st->created++; break;
    case OTR_ACT_UPDATE: st->updated++; break;
    case OTR_ACT_REPLACE: st->replaced++; break;
    case OTR_ACT_DELETE: st->deleted++; break;
    case OTR_ACT_RESUME: st->resumed++; break;
    default: break;
    }
}

static void skip_dependents(node *n);

/* A node is done: its dependents may start, or are skipped when it failed. */
static void finish_node(node *n, int ok)
{
    apply_run *rn = n->run;
    otr_apply_stats *st = &rn->r->stats;
    n->state = ok ? SUCCEEDED : FAILED;
    st->done++;
    if (!ok) {
        st->failed++;
        otr_apply_add_failure(n, "failed", 1); /* every failed node is listed, whatever failed */
        if (rn->o->fail_fast)
            otr_apply_stop(rn, "--fail-fast: stopped after the first failure");
        skip_dependents(n);
    } else {
        const otr_action *last = NULL;
        for (int i = 0; i < n->nsteps; i++)
            if (n->steps[i].a != last)
                count(st, (last = n->steps[i].a), n->kept_retired);
        for (size_t d = 0; d < n->ndependents; d++) {
            node *dep = &rn->nodes[n->dependents[d]];
            if (dep->state == WAITING && --dep->waiting == 0)
                otr_apply_push_ready(rn, n->dependents[d]);
        }
    }
    st->elapsed_ms = otr_time_monotonic_ms() - rn->started_ms;
    otr_aws_call_free(n->call);
    n->call = NULL;
    otr_intent_clear(&n->work);
    rn->active--;
    if (rn->o->progress)
        rn->o->progress(st, rn->o->progress_ctx);
    start_ready(rn);
}

/* What waits for a failed node is not started: it says why. */
static void skip_dependents(node *n)
{
    apply_run *rn = n->run;
    for (size_t d = 0; d < n->ndependents; d++) {
        node *dep = &rn->nodes[n->dependents[d]];
        if (dep->state != WAITING && dep->state != READY)
            continue;
        otr_buf why = OTR_BUF_INIT;
        otr_buf_puts(&why, "not started: it waits for ");
        otr_apply_address(&why, n);
        otr_buf_puts(&why, ", which failed; the next apply tries again");
        dep->state = SKIPPED;
        rn->r->stats.failed++;
        rn->r->stats.done++;
        otr_apply_add_failure(dep, otr_buf_cstr(&why), 0);
        otr_buf_free(&why);
        skip_dependents(dep);
    }
}

/* ---- steps ------------------------------------------------------------------- */

/* The body the service gets: spec (taken) with each reference by name
 * replaced by the id the state now records for what it names (its node ran
 * first); NULL (why set, unless memory ran out) when one has no id. */
static cJSON *resolve(const apply_run *rn, const otr_kind *k, cJSON *spec, otr_buf *why)
{
    cJSON *body = spec;
    for (size_t i = 0; body && i < k->nrefs; i++) {
        const otr_kind_ref *ref = &k->refs[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, ref->field);
        if (!cJSON_IsString(v))
            continue;
        const otr_record *target = otr_state_find(rn->s, otr_kind_find(ref->kind), v->valuestring);
        if (!target || !target->id) {
            otr_buf_printf(why, "%s/%s has no id yet (it was not created)", ref->kind,
                           v->valuestring);
            cJSON_Delete(body);
            return NULL;
        }
        cJSON *id = cJSON_CreateString(target->id);
        cJSON_DeleteItemFromObjectCaseSensitive(body, ref->field);
        if (!id || !cJSON_AddItemToObject(body, ref->id_field, id)) {
            cJSON_Delete(id);
            cJSON_Delete(body);
            return NULL;
        }
    }
    if (body && otr_canonical_sort(body) < 0) {
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

/* What the interrupted create of a resumed action replaces, as its
 * journaled intent says. */
static const char *pending_replaces(const otr_state *s, const otr_action *a)
{
    for (size_t i = 0; i < s->npending; i++) {
        const otr_intent *in = &s->pending[i];
        if (in->op == OTR_OP_CREATE && in->rec.kind == a->resource &&
            !strcmp(in->rec.name, a->name))
            return in->replaces;
    }
    return NULL;
}

/* What a create of a kind whose record is not its body sends (a rollout's
 * newest wave), references resolved, in n->body and n->token. */
static int body_of(node *n, const otr_record *desired, otr_buf *why)
{
    const otr_kind *k = desired->kind;
    cJSON *raw = NULL;
    cJSON_Delete(n->body);
    n->body = NULL;
    if (k->body_of(desired, &raw, n->token) < 0) {
        otr_buf_printf(why, "the record of %s/%s has no body to create", k->name, desired->name);
        cJSON_Delete(raw);
        return -1;
    }
    n->body = resolve(n->run, k->body_kind, raw, why);
    return n->body ? 0 : -1;
}

/* The intent of the current step, in n->work. Returns 0, or -1 with why. */
static int make_intent(node *n, otr_buf *why)
{
    const jstep *st = &n->steps[n->cur];
    const otr_action *a = st->a;
    otr_intent *w = &n->work;
    otr_intent_clear(w);
    w->rec.kind = a->resource;
    switch (st->kind) {
    case STEP_CREATE:
    case STEP_UPDATE: {
        /* create: the record wanted; update: the recorded one, with the new
         * spec (the token it was created with stays) */
        const otr_record *base = st->kind == STEP_UPDATE && a->old.name ? &a->old : &a->desired;
        if (otr_record_copy(&w->rec, base) < 0)
            return -1;
        if (a->resource->body_of) {
            if (body_of(n, &a->desired, why) < 0)
                return -1;
            /* what the body refers to is journaled with the intent */
            if (st->kind == STEP_CREATE && a->resource->sent &&
                a->resource->sent(&w->rec, n->body) < 0)
                return -1;
        } else {
            cJSON_Delete(n->body);
            n->body = resolve(n->run, a->resource, otr_record_spec(&a->desired), why);
            if (!n->body || otr_record_set_spec(&w->rec, n->body) < 0)
                return -1;
        }
        otr_apply_set_str(&w->rec.spec_digest, a->desired.spec_digest);
        otr_apply_set_str(&w->rec.file, a->desired.file);
        otr_apply_set_str(&w->rec.commit, a->desired.commit);
        if (st->kind == STEP_CREATE) {
            otr_apply_set_str(&w->rec.id, NULL);
            otr_apply_set_str(&w->rec.arn, NULL);
            const char *old =
                a->kind == OTR_ACT_RESUME ? pending_replaces(n->run->s, a) : otr_action_replaces(a);
            w->replaces = old ? strdup(old) : NULL;
        } else if (!w->rec.id) {
            otr_apply_set_str(&w->rec.id, n->id);
        }
        return 0;
    }
    case STEP_CHECK_UPDATE: /* the record the interrupted update was to write */
        w->op = OTR_OP_UPDATE;
        return otr_record_copy(&w->rec, &a->desired);
    case STEP_DELETE:
    case STEP_CHECK_DELETE:
        w->op = OTR_OP_DELETE;
        w->retired = a->retired;
        w->rec.name = strdup(a->name);
        w->rec.id = n->id ? strdup(n->id) : NULL;
        return w->rec.name && (w->rec.id || !n->id) ? 0 : -1;
    }
    return -1;
}

/* An update is up to three calls, in this order, each sent only when the
 * action needs it: UpdateOtaTask for the fields it sets, TagResource for tags
 * added or changed, UntagResource for tags removed (Tags are not updatable
 * by UpdateOtaTask, and a replace would cancel the task's devices). */
enum { UPDATE_FIELDS, UPDATE_TAG, UPDATE_UNTAG, UPDATE_DONE };

/* The key of a tag a change names ("Tags.KEY"), "" for the whole map, or
 * NULL when the change is not of tags. */
static const char *tag_key_of(const otr_change *c, const char *tags_key)
{
    size_t len = strlen(tags_key);
    if (strncmp(c->field, tags_key, len) != 0)
        return NULL;
    return c->field[len] == '.' ? c->field + len + 1 : c->field[len] ? NULL : "";
}

/* The call of part p of the update of action a (the record's id and arn,
 * the body to send), or NULL with *none set when the part has nothing to
 * do. An action without changes (an interrupted update resumed) sends the
 * fields and every tag the manifest gives. */
static otr_aws_call *update_part_call(const otr_action *a, const otr_record *rec, const cJSON *body,
                                      int p, const char *subject, int *none)
{
    const otr_kind *k = a->resource;
    const char *tags_key = k->tags_in_place ? k->tags_key : NULL;
    const cJSON *want = tags_key ? cJSON_GetObjectItemCaseSensitive(body, tags_key) : NULL;
    int fields = a->nchanges == 0, whole = a->nchanges == 0;
    const char *gone[OTR_TAGS_MAX];
    size_t ngone = 0;
    cJSON *set = cJSON_CreateObject();
    otr_aws_call *call = NULL;
    for (size_t i = 0; i < a->nchanges; i++) {
        const otr_change *c = &a->changes[i];
        const char *key = tags_key ? tag_key_of(c, tags_key) : NULL;
        if (!key) {
            fields = 1;
        } else if (!*key) { /* the whole map came or went */
            const cJSON *t;
            whole = 1;
            const cJSON *went = c->new_value ? NULL : c->old_value;
            cJSON_ArrayForEach(t, went) if (ngone < OTR_TAGS_MAX) gone[ngone++] = t->string;
        } else if (c->new_value) {
            cJSON_AddItemToObject(set, key, cJSON_Duplicate(c->new_value, 1));
        } else if (ngone < OTR_TAGS_MAX) {
            gone[ngone++] = key;
        }
    }
    if (whole && want) {
        cJSON_Delete(set);
        set = cJSON_Duplicate(want, 1);
    }
    cJSON *had_spec = NULL;
    if (!a->nchanges && tags_key && (had_spec = otr_record_spec(&a->old)) != NULL) {
        /* no changes to go by (a saved plan, a resumed update): the tags the
         * record holds against the manifest's */
        const cJSON *had = cJSON_GetObjectItemCaseSensitive(had_spec, tags_key), *t;
        cJSON_Delete(set);
        set = cJSON_CreateObject();
        cJSON_ArrayForEach(t, want)
        {
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(had, t->string);
            if (!h || !cJSON_Compare(h, t, 1))
                cJSON_AddItemToObject(set, t->string, cJSON_Duplicate(t, 1));
        }
        cJSON_ArrayForEach(t, had) if (!cJSON_GetObjectItemCaseSensitive(want, t->string) &&
                                       ngone < OTR_TAGS_MAX) gone[ngone++] = t->string;
    }
    *none = 0;
    if (p != UPDATE_FIELDS && !rec->arn &&
        ((p == UPDATE_TAG && set && set->child) || (p == UPDATE_UNTAG && ngone))) {
        *none = -1; /* tags to change, and no ARN to change them on */
    } else if (p == UPDATE_FIELDS && fields)
        call = k->api->update_call(rec->id, body, subject);
    else if (p == UPDATE_TAG && set && set->child)
        call = k->api->tag_call(rec->arn, set, subject);
    else if (p == UPDATE_UNTAG && ngone)
        call = k->api->untag_call(rec->arn, gone, ngone, subject);
    else
        *none = 1;
    cJSON_Delete(set);
    cJSON_Delete(had_spec); /* gone[] may point into it: freed after the call is made */
    return call;
}

/* The next call of the update from part n->update_part on, or NULL (with
 * n->update_part UPDATE_DONE when nothing is left, else out of memory). */
static otr_aws_call *next_update_call(node *n, const char *subject)
{
    const jstep *st = &n->steps[n->cur];
    for (; n->update_part < UPDATE_DONE; n->update_part++) {
        int none = 0;
        if (n->update_part != UPDATE_FIELDS && !st->a->resource->tags_in_place)
            continue;
        otr_aws_call *call =
            update_part_call(st->a, &n->work.rec, n->body, n->update_part, subject, &none);
        if (none < 0) {
            n->no_arn = 1;
            return NULL;
        }
        if (call || !none)
            return call;
    }
    return NULL;
}

static otr_aws_call *call_of(node *n)
{
    const jstep *st = &n->steps[n->cur];
    const otr_kind *k = st->a->resource;
    const otr_record *rec = &n->work.rec;
    otr_buf subject = OTR_BUF_INIT;
    otr_aws_call *call = NULL;
    otr_apply_address(&subject, n);
    switch (st->kind) {
    case STEP_CREATE: {
        /* a token the service has answered is never sent for a new resource:
         * the manifest's, at its first generation not spent (past the one
         * that made the resource the record still holds) */
        const char *token = k->body_of ? n->token : rec->client_token;
        int held = otr_state_holds_token(n->run->s, k, rec->name, token);
        if (otr_state_send_token(n->run->s, token, held, n->sent, &n->generation) < 0)
            break;
        /* tagged with its manifest's address, to be found again if the state is lost */
        const otr_kind *sent = otr_kind_sent(k);
        const cJSON *body = n->body;
        cJSON *tagged = sent->tags_key ? otr_tags_add(body, sent->tags_key, k, rec->name,
                                                      rec->revision, n->generation)
                                       : NULL;
        if (tagged || !sent->tags_key)
            call = k->api->create_call(tagged ? tagged : body, n->sent, otr_buf_cstr(&subject));
        cJSON_Delete(tagged);
        break;
    }
    case STEP_UPDATE:
        n->update_part = UPDATE_FIELDS;
        call = next_update_call(n, otr_buf_cstr(&subject));
        if (!call && n->update_part == UPDATE_DONE) /* nothing to send: the fields anyway */
            call = k->api->update_call(rec->id, n->body, otr_buf_cstr(&subject));
        break;
    case STEP_DELETE: call = k->api->delete_call(rec->id, otr_buf_cstr(&subject)); break;
    case STEP_CHECK_UPDATE:
    case STEP_CHECK_DELETE: call = k->api->get_call(n->id, otr_buf_cstr(&subject)); break;
    }
    otr_buf_free(&subject);
    return call;
}

/* Journals the intent of the current step (unless a resumed intent already
 * is there) and sends its call. Returns 0 when a call is on its way, 1 when
 * nothing is left to do, -1 on failure (reported). */
static int start_step(node *n)
{
    apply_run *rn = n->run;
    step st = n->steps[n->cur].kind;
    otr_error err = OTR_ERROR_INIT;
    otr_buf why = OTR_BUF_INIT;
    /* no check of a stop here: a chain that has started is carried to its
     * end (start_ready starts no new one) */
    if (n->steps[n->cur].id)
        otr_apply_set_str(&n->id, n->steps[n->cur].id);
    if (st == STEP_DELETE && !n->id) { /* nothing to delete: a create never made it */
        if (++n->cur >= n->nsteps)
            return 1;
        return start_step(n);
    }
    if (make_intent(n, &why) < 0 || !(n->call = call_of(n))) {
        if (!why.len)
            otr_buf_puts(&why, "out of memory");
        otr_apply_add_failure(n, otr_buf_cstr(&why), 1);
        otr_buf_free(&why);
        return -1;
    }
    if (st == STEP_CREATE || st == STEP_UPDATE || st == STEP_DELETE) {
        n->work.op = st == STEP_CREATE   ? OTR_OP_CREATE
                     : st == STEP_UPDATE ? OTR_OP_UPDATE
                                         : OTR_OP_DELETE;
        if (!n->journaled && otr_state_journal_intent(rn->s, &n->work, &err) < 0) {
            otr_apply_stop(rn, otr_error_message(&err));
            otr_apply_add_failure(n, otr_error_message(&err), 1);
            otr_error_clear(&err);
            return -1;
        }
    }
    n->journaled = 0;
    n->call->done = on_call_done;
    n->call->ctx = n;
    rn->unsent[rn->nunsent++] = n; /* sent by flush(), once its intent is durable */
    return 0;
}

/* Writes the intents and results made since the last flush at once (the
 * journal is held for the run), then sends the calls they announce. A
 * journal that cannot be written stops the run: none of them is sent. */
static void flush(apply_run *rn)
{
    otr_error err = OTR_ERROR_INIT;
    if (otr_state_journal_flush(rn->s, &err) < 0) {
        otr_apply_stop(rn, otr_error_message(&err));
        for (size_t i = 0; i < rn->nunsent; i++) {
            node *n = rn->unsent[i];
            otr_apply_add_failure(n, otr_error_message(&err), 1);
            otr_aws_call_free(n->call);
            n->call = NULL;
        }
        size_t count = rn->nunsent;
        rn->nunsent = 0;
        for (size_t i = 0; i < count; i++) /* finishing starts nothing: the run is stopped */
            finish_node(rn->unsent[i], 0);
        otr_error_clear(&err);
        return;
    }
    for (size_t i = 0; i < rn->nunsent; i++)
        rn->t->submit(rn->t->ctx, rn->unsent[i]->call);
    rn->nunsent = 0;
}

/* Writes the step's result to the journal (and the state in memory). */
static void settle(node *n, int ok, int conflict, const char *error)
{
    otr_error err = OTR_ERROR_INIT;
    if (otr_state_journal_result(n->run->s, &n->work, &n->work.rec, ok, conflict, error, &err) <
        0) {
        otr_apply_stop(n->run, otr_error_message(&err));
        otr_error_clear(&err);
    }
}

static void next_step_or_finish(node *n, int ok)
{
    otr_aws_call_free(n->call);
    n->call = NULL;
    if (ok && ++n->cur < n->nsteps) {
        int rc = start_step(n);
        if (rc == 0)
            return;
        ok = rc > 0;
    }
    finish_node(n, ok);
}

/* Starts the step again after it changed kind (a resume check found work). */
static void restart_step(node *n)
{
    otr_aws_call_free(n->call);
    n->call = NULL;
    int rc = start_step(n);
    if (rc != 0)
        finish_node(n, rc > 0);
}

static void fail_step(node *n, const otr_aws_call *call, int journal)
{
    otr_buf msg = OTR_BUF_INIT;
    otr_aws_call_describe(call, &msg);
    if (journal)
        settle(n, 0, 0, msg.ptr);
    otr_apply_add_failure(n, otr_buf_cstr(&msg), 1);
    otr_buf_free(&msg);
    next_step_or_finish(n, 0);
}

static int is_not_found(const otr_aws_call *call)
{
    return call->status == 404 ||
           (call->error_type && !strcmp(call->error_type, "ResourceNotFoundException"));
}

/* A delete refused because the resource is in use. The model lists no
 * ConflictException for DeleteOtaTaskConfiguration: what it can answer for
 * that is a ValidationException, whose message says why; a 409 is taken too. */
static int is_in_use(const otr_aws_call *call)
{
    return call->status == 409 ||
           (call->error_type && (!strcmp(call->error_type, "ConflictException") ||
                                 !strcmp(call->error_type, "ValidationException")));
}

/* A failure after which the call may have taken effect: no answer (a
 * dropped connection, a timeout) or a server error. */
static int may_have_landed(const otr_aws_call *call)
{
    return call->status == 0 || call->status >= 500;
}

static void verify_created(node *n);

/* A create answered with a resource that is not a new live one: its token
 * had been used (a state lost, or a resource deleted by hand). The token is
 * spent, nothing is recorded, and the create is sent again with the next
 * generation (a few times at most). */
static void on_dead_answer(node *n, const char *what)
{
    const otr_kind *k = n->steps[n->cur].a->resource;
    otr_buf msg = OTR_BUF_INIT, note = OTR_BUF_INIT;
    otr_buf_printf(&msg,
                   "the service answered ClientToken %s with %s %s, %s: a token used "
                   "before; not recorded",
                   n->sent, k->noun, n->work.rec.id ? n->work.rec.id : "?", what);
    settle(n, 0, 0, otr_buf_cstr(&msg));
    otr_apply_set_str(&n->id, NULL);
    if (otr_state_spend(n->run->s, n->sent) < 0 || ++n->dead_answers > 3) {
        otr_apply_add_failure(n, otr_buf_cstr(&msg), 1);
        otr_buf_free(&msg);
        next_step_or_finish(n, 0);
        return;
    }
    otr_apply_address(&note, n);
    otr_buf_printf(&note, ": %s; sent again with a new token", otr_buf_cstr(&msg));
    otr_apply_note(n->run, otr_buf_cstr(&note));
    otr_buf_free(&msg);
    otr_buf_free(&note);
    restart_step(n);
}

/* When the service answered call, by its clock: a wave's deadline and soak
 * are judged by that clock too (otr_aws_client_now). */
static char *service_time(const otr_aws_call *call)
{
    char at[21];
    otr_time_format_iso8601(at, (time_t)otr_aws_call_time(call));
    return strdup(at);
}

static void on_created(node *n, const otr_aws_call *call)
{
    const otr_kind *k = n->steps[n->cur].a->resource;
    otr_error err = OTR_ERROR_INIT;
    char *id = NULL, *arn = NULL;
    if (!call->ok) {
        /* a create that may have landed stays pending in the journal: the
         * next run looks for it in the service before it sends it again */
        fail_step(n, call, !may_have_landed(call));
        return;
    }
    if (k->api->parse_create(call, &id, &arn, &err) < 0) {
        /* a 2xx whose id cannot be read: the create may well have landed, so
         * it stays pending, to be looked for by its tags */
        otr_buf msg = OTR_BUF_INIT;
        otr_buf_printf(&msg,
                       "%s; the create may have landed: it stays pending, and the next apply "
                       "looks for it before it sends it again",
                       otr_error_message(&err));
        otr_apply_add_failure(n, otr_buf_cstr(&msg), 1);
        otr_buf_free(&msg);
        otr_error_clear(&err);
        next_step_or_finish(n, 0);
        return;
    }
    n->work.rec.id = id;
    n->work.rec.arn = arn;
    otr_apply_set_str(&n->id, id);
    free(n->work.rec.created_at);
    n->work.rec.created_at = service_time(call);
    otr_apply_set_str(&n->work.rec.phase, "created");
    /* what came back must be new (no resource this state holds or let go of)
     * and live: a service hands back what a token made first, even if gone */
    const otr_record *holder = otr_state_find_id(n->run->s, k, id);
    if (holder || otr_state_find_retired(n->run->s, k, id) ||
        (n->work.replaces && !strcmp(n->work.replaces, id))) {
        otr_buf why = OTR_BUF_INIT;
        otr_buf_printf(&why, "the %s this state already holds%s%s", k->noun, holder ? " for " : "",
                       holder ? holder->name : "");
        on_dead_answer(n, otr_buf_cstr(&why));
        otr_buf_free(&why);
        return;
    }
    verify_created(n);
}

/* Asks the service for the resource a create answered with. */
static void verify_created(node *n)
{
    const otr_kind *k = n->steps[n->cur].a->resource;
    otr_buf subject = OTR_BUF_INIT;
    otr_apply_address(&subject, n);
    otr_aws_call_free(n->call);
    n->call = k->api->get_call(n->work.rec.id, otr_buf_cstr(&subject));
    otr_buf_free(&subject);
    if (!n->call) {
        otr_apply_add_failure(n, "out of memory", 1);
        finish_node(n, 0);
        return;
    }
    n->verifying = 1;
    n->call->done = on_call_done;
    n->call->ctx = n;
    n->run->unsent[n->run->nunsent++] = n;
}

/* The get of what a create answered: recorded when it is live; a resource
 * gone (not found, or being deleted) was a token's first answer. Without an
 * answer, the create stays pending: the next run looks for it by its tags. */
static void on_verified(node *n, const otr_aws_call *call)
{
    const otr_kind *k = n->steps[n->cur].a->resource;
    otr_error err = OTR_ERROR_INIT;
    otr_remote got;
    n->verifying = 0;
    if (!call->ok && is_not_found(call)) {
        on_dead_answer(n, "not found");
        return;
    }
    if (!call->ok || k->api->parse_get(call, &got, &err) < 0) {
        otr_buf msg = OTR_BUF_INIT;
        otr_aws_call_describe(call, &msg);
        otr_buf_printf(&msg,
                       "%s%s; the create of %s %s stays pending, and the next apply "
                       "looks for it",
                       err.message ? ": " : "", err.message ? otr_error_message(&err) : "", k->noun,
                       n->work.rec.id);
        otr_apply_add_failure(n, otr_buf_cstr(&msg), 1);
        otr_buf_free(&msg);
        otr_error_clear(&err);
        next_step_or_finish(n, 0);
        return;
    }
    int gone = got.status && !strcmp(got.status, "DELETION_IN_PROGRESS");
    otr_remote_clear(&got);
    if (gone) {
        on_dead_answer(n, "being deleted (DELETION_IN_PROGRESS)");
        return;
    }
    settle(n, 1, 0, NULL);
    next_step_or_finish(n, 1);
}

/* A delete the service refused because the resource is still in use: for a
 * kind that retires it, not a failure (it is kept as retired, and a later
 * run deletes it). */
static void on_delete_conflict(node *n, const otr_aws_call *call)
{
    otr_buf msg = OTR_BUF_INIT, note = OTR_BUF_INIT;
    const otr_kind *k = n->steps[n->cur].a->resource;
    otr_aws_call_describe(call, &msg);
    settle(n, 0, 1, otr_buf_cstr(&msg));
    n->kept_retired = 1;
    otr_apply_address(&note, n);
    otr_buf_printf(&note,
                   ": the %s %s is still in use (%s): kept as retired; a later apply "
                   "deletes it",
                   k->noun, n->id ? n->id : "?", otr_buf_cstr(&msg));
    otr_apply_note(n->run, otr_buf_cstr(&note));
    otr_buf_free(&msg);
    otr_buf_free(&note);
    next_step_or_finish(n, 1);
}

static void on_deleted(node *n, const otr_aws_call *call)
{
    const otr_kind *k = n->steps[n->cur].a->resource;
    if (!call->ok && is_in_use(call) && k->conflict_retires) {
        on_delete_conflict(n, call);
        return;
    }
    if (!call->ok && !is_not_found(call)) { /* already gone is deleted */
        fail_step(n, call, 1);
        return;
    }
    otr_apply_set_str(&n->deleted, n->id);
    otr_apply_set_str(&n->id, NULL);
    settle(n, 1, 0, NULL);
    next_step_or_finish(n, 1);
}

/* A resumed update: done when the service already holds what it set. */
static void on_checked_update(node *n, const otr_aws_call *call)
{
    const otr_kind *k = n->steps[n->cur].a->resource;
    otr_error err = OTR_ERROR_INIT;
    otr_remote got;
    if (!call->ok || k->api->parse_get(call, &got, &err) < 0) {
        otr_error_clear(&err);
        fail_step(n, call, 0);
        return;
    }
    cJSON *spec = otr_record_spec(&n->work.rec);
    int done = spec != NULL; /* without memory, sent again */
    for (size_t i = 0; k->updatable && k->updatable[i]; i++) {
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(spec, k->updatable[i]);
        const cJSON *have = cJSON_GetObjectItemCaseSensitive(got.fields, k->updatable[i]);
        if (want && (!have || !cJSON_Compare(want, have, 1)))
            done = 0;
    }
    if (k->tags_in_place && spec) { /* the tags, without ota-runner's own */
        cJSON *have = cJSON_CreateObject(), *want = cJSON_CreateObject();
        const cJSON *ht = cJSON_GetObjectItemCaseSensitive(got.fields, k->tags_key);
        const cJSON *wt = cJSON_GetObjectItemCaseSensitive(spec, k->tags_key);
        if (have && want &&
            (!ht || cJSON_AddItemToObject(have, k->tags_key, cJSON_Duplicate(ht, 1))) &&
            (!wt || cJSON_AddItemToObject(want, k->tags_key, cJSON_Duplicate(wt, 1)))) {
            otr_tags_strip(have, k->tags_key);
            otr_tags_strip(want, k->tags_key);
            if (!cJSON_Compare(have, want, 1))
                done = 0;
        } else {
            done = 0;
        }
        cJSON_Delete(have);
        cJSON_Delete(want);
    }
    cJSON_Delete(spec);
    otr_remote_clear(&got);
    n->steps[n->cur].kind = STEP_UPDATE;
    n->journaled = 1;
    if (done) { /* the update had reached the service: settle it */
        otr_aws_call_free(n->call);
        n->call = NULL;
        n->work.op = OTR_OP_UPDATE;
        settle(n, 1, 0, NULL);
        next_step_or_finish(n, 1);
        return;
    }
    restart_step(n);
}

static void on_checked_delete(node *n, const otr_aws_call *call)
{
    if (!call->ok && is_not_found(call)) {
        otr_apply_set_str(&n->deleted, n->id);
        otr_apply_set_str(&n->id, NULL);
        settle(n, 1, 0, NULL);
        next_step_or_finish(n, 1);
        return;
    }
    if (!call->ok) {
        fail_step(n, call, 0);
        return;
    }
    n->steps[n->cur].kind = STEP_DELETE; /* still there: delete it (the intent is journaled) */
    n->journaled = 1;
    restart_step(n);
}

/* After a part of an update: sends its next call, if any (1), else 0. */
static int more_update_calls(node *n)
{
    otr_buf subject = OTR_BUF_INIT;
    otr_apply_address(&subject, n);
    n->update_part++;
    otr_aws_call *next = next_update_call(n, otr_buf_cstr(&subject));
    otr_buf_free(&subject);
    if (!next && n->update_part < UPDATE_DONE) {
        otr_apply_add_failure(n,
                              n->no_arn
                                  ? "its tags changed, and the state records no ARN to change them "
                                    "on: run ota-runner state rm and state import with its id"
                                  : "out of memory",
                              1);
        next_step_or_finish(n, 0);
        return 1;
    }
    if (!next)
        return 0;
    otr_aws_call_free(n->call);
    n->call = next;
    n->call->done = on_call_done;
    n->call->ctx = n;
    n->run->unsent[n->run->nunsent++] = n;
    return 1;
}

static void step_done(node *n, otr_aws_call *call)
{
    if (n->verifying) {
        on_verified(n, call);
        return;
    }
    switch (n->steps[n->cur].kind) {
    case STEP_CREATE: on_created(n, call); return;
    case STEP_UPDATE:
        if (!call->ok) {
            fail_step(n, call, 1);
            return;
        }
        if (n->update_part < UPDATE_DONE && more_update_calls(n))
            return;
        free(n->work.rec.updated_at);
        n->work.rec.updated_at = service_time(call);
        settle(n, 1, 0, NULL);
        next_step_or_finish(n, 1);
        return;
    case STEP_DELETE: on_deleted(n, call); return;
    case STEP_CHECK_DELETE: on_checked_delete(n, call); return;
    case STEP_CHECK_UPDATE: on_checked_update(n, call); return;
    }
}

/* A call answered: its result, and the next calls it lets start, written to
 * the journal together before those are sent. */
static void on_call_done(otr_aws_call *call, void *ctx)
{
    node *n = ctx;
    apply_run *rn = n->run;
    step_done(n, call);
    if (!rn->idle_flush)
        flush(rn);
}

static void flush_idle(void *arg)
{
    flush(arg);
}

/* ---- running ------------------------------------------------------------------- */

static void start_ready(apply_run *rn)
{
    int limit = rn->o->parallelism > 0 ? rn->o->parallelism : 8;
    int sig = rn->o->interrupted ? rn->o->interrupted(rn->o->interrupted_ctx) : 0;
    if (sig && !rn->r->signal) {
        char why[64];
        snprintf(why, sizeof(why), "interrupted by %s", otr_signal_name(sig));
        rn->r->signal = sig;
        otr_apply_stop(rn, why);
    }
    while (!rn->r->stopped && rn->ready_head < rn->nready && rn->active < (size_t)limit) {
        node *n = &rn->nodes[rn->ready[rn->ready_head++]];
        if (n->state != READY)
            continue;
        n->state = RUNNING;
        rn->active++;
        int rc = start_step(n);
        if (rc != 0)
            finish_node(n, rc > 0);
    }
}

/* The nodes a stop left for the next run. */
static void record_not_started(apply_run *rn)
{
    otr_apply_result *r = rn->r;
    size_t n = 0;
    for (size_t i = 0; i < rn->nnodes; i++)
        n += rn->nodes[i].state == WAITING || rn->nodes[i].state == READY;
    r->stats.not_started = n;
    if (!n || !(r->not_started = calloc(n, sizeof(char *))))
        return;
    for (size_t i = 0; i < rn->nnodes; i++) {
        if (rn->nodes[i].state != WAITING && rn->nodes[i].state != READY)
            continue;
        otr_buf b = OTR_BUF_INIT;
        otr_apply_address(&b, &rn->nodes[i]);
        if ((r->not_started[r->nnot_started] = otr_buf_detach(&b)))
            r->nnot_started++;
    }
}

static void client_submit(void *ctx, otr_aws_call *call)
{
    otr_aws_client_submit(ctx, call);
}

static int client_run(void *ctx, otr_error *err)
{
    return otr_aws_client_run(ctx, err);
}

static void client_set_idle(void *ctx, void (*fn)(void *arg), void *arg)
{
    otr_aws_client_set_idle(ctx, fn, arg);
}

int otr_apply_run(otr_aws_client *c, otr_state *s, const otr_plan *p, const otr_apply_options *o,
                  otr_apply_result *r, otr_error *err)
{
    otr_apply_transport t = {client_submit, client_run, client_set_idle, c};
    return otr_apply_run_on(&t, s, p, o, r, err);
}

int otr_apply_run_on(const otr_apply_transport *t, otr_state *s, const otr_plan *p,
                     const otr_apply_options *o, otr_apply_result *r, otr_error *err)
{
    apply_run rn = {.t = t, .s = s, .p = p, .o = o, .r = r, .started_ms = otr_time_monotonic_ms()};
    int rc = -1;
    memset(r, 0, sizeof(*r));
    rn.nodes = calloc(p->count + 1, sizeof(*rn.nodes));
    rn.ready = calloc(p->count + 1, sizeof(*rn.ready));
    rn.unsent = calloc(p->count + 1, sizeof(*rn.unsent));
    if (!rn.nodes || !rn.ready || !rn.unsent || otr_apply_build(&rn) < 0) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto done;
    }
    r->stats.total = rn.nnodes;
    otr_state_journal_hold(s, 1);
    if (t->set_idle) {
        t->set_idle(t->ctx, flush_idle, &rn);
        rn.idle_flush = 1;
    }
    start_ready(&rn);
    flush(&rn);
    rc = t->run(t->ctx, err);
    flush(&rn); /* results the last answers left */
    if (t->set_idle)
        t->set_idle(t->ctx, NULL, NULL);
    otr_state_journal_hold(s, 0);
    record_not_started(&rn);
done:
    for (size_t i = 0; rn.nodes && i < rn.nnodes; i++) {
        otr_aws_call_free(rn.nodes[i].call);
        otr_intent_clear(&rn.nodes[i].work);
        cJSON_Delete(rn.nodes[i].body);
        free(rn.nodes[i].id);
        free(rn.nodes[i].deleted);
        free(rn.nodes[i].dependents);
    }
    free(rn.nodes);
    free(rn.ready);
    free(rn.unsent);
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
    for (size_t i = 0; i < r->nnotes; i++)
        free(r->notes[i]);
    free(r->notes);
    free(r->stopped);
    memset(r, 0, sizeof(*r));
}
