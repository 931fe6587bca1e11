/* The graph a plan runs on: one node per address, its chain of steps, the
 * edges it waits on; and what a run reports (apply/internal.h). */
#include "apply/internal.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reporting ----------------------------------------------------------- */

void otr_apply_address(otr_buf *out, const node *n)
{
    otr_address_short(out, n->first->resource, n->first->name);
}

void otr_apply_stop(apply_run *rn, const char *why)
{
    if (!rn->r->stopped)
        rn->r->stopped = strdup(why);
}

void otr_apply_note(apply_run *rn, const char *text)
{
    char **x = realloc(rn->r->notes, (rn->r->nnotes + 1) * sizeof(*x));
    if (!x)
        return;
    rn->r->notes = x;
    if ((x[rn->r->nnotes] = strdup(text)))
        rn->r->nnotes++;
}

/* Where a failed chain stopped, and what the next run does about it. */
static void chain_note(const node *n, otr_buf *out)
{
    const jstep *st = &n->steps[n->cur];
    const otr_kind *k = st->a->resource;
    switch (st->kind) {
    case STEP_CREATE:
        if (n->deleted)
            otr_buf_printf(out,
                           "its old %s %s was deleted and the new one is not created yet: the "
                           "next apply creates it",
                           k->noun, n->deleted);
        else
            otr_buf_printf(out, "no %s was created: the next apply tries again", k->noun);
        break;
    case STEP_DELETE:
        if (st->a->kind == OTR_ACT_REPLACE)
            otr_buf_printf(out,
                           "%s %s is still in place and nothing was created: the next apply "
                           "tries the replace again",
                           k->noun, n->id ? n->id : "?");
        else
            otr_buf_printf(out, "%s %s is still in place: the next apply tries again", k->noun,
                           n->id ? n->id : "?");
        break;
    case STEP_UPDATE:
        otr_buf_printf(out, "%s %s keeps its old fields: the next apply tries again", k->noun,
                       n->id ? n->id : "?");
        break;
    case STEP_CHECK_UPDATE:
    case STEP_CHECK_DELETE:
        otr_buf_puts(out, "the interrupted call is still unfinished: the next apply tries again");
        break;
    }
}

/* The failure of a node: what failed, and where its chain stopped. One per
 * node; a call's description names its address, anything else gets it. */
void otr_apply_add_failure(node *n, const char *what, int with_note)
{
    otr_apply_result *r = n->run->r;
    if (n->reported)
        return;
    n->reported = 1;
    otr_apply_failure *f = realloc(r->failures, (r->nfailures + 1) * sizeof(*f));
    if (!f)
        return;
    r->failures = f;
    otr_buf msg = OTR_BUF_INIT, subject = OTR_BUF_INIT, name = OTR_BUF_INIT;
    otr_apply_address(&name, n);
    otr_buf_printf(&subject, "(%s)", otr_buf_cstr(&name));
    if (!strstr(what, otr_buf_cstr(&subject)))
        otr_buf_printf(&msg, "%s: ", otr_buf_cstr(&name));
    otr_buf_puts(&msg, what);
    if (with_note) {
        otr_buf_puts(&msg, "; ");
        chain_note(n, &msg);
    }
    f[r->nfailures].name = otr_buf_detach(&name);
    f[r->nfailures].description = otr_buf_detach(&msg);
    if (f[r->nfailures].name && f[r->nfailures].description)
        r->nfailures++;
    else {
        free(f[r->nfailures].name);
        free(f[r->nfailures].description);
    }
    otr_buf_free(&subject);
}

void otr_apply_set_str(char **slot, const char *value)
{
    char *copy = value ? strdup(value) : NULL;
    free(*slot);
    *slot = copy;
}

void otr_apply_push_ready(apply_run *rn, size_t i)
{
    rn->nodes[i].state = READY;
    rn->ready[rn->nready++] = i;
}

/* ---- building the graph --------------------------------------------------------- */

static void add_step(node *n, step kind, const otr_action *a)
{
    if (n->nsteps == APPLY_MAX_STEPS)
        return;
    n->steps[n->nsteps] = (jstep){kind, a, NULL};
    n->nsteps++;
}

/* The delete of the recorded resource, or, for a kind whose record holds
 * several (a rollout's waves), of each, newest first. */
static void add_deletes(node *n, const otr_action *a)
{
    const char *ids[OTR_KIND_MAX_IDS];
    if (!a->resource->ids_of || a->retired) {
        add_step(n, STEP_DELETE, a); /* skipped at run time when there is no resource */
        return;
    }
    for (size_t i = a->resource->ids_of(&a->old, ids, OTR_KIND_MAX_IDS); i-- > 0;) {
        add_step(n, STEP_DELETE, a);
        n->steps[n->nsteps - 1].id = ids[i];
    }
}

/* Appends the steps of an action to its node's chain. */
static void plan_steps(node *n, const otr_action *a)
{
    if (!n->first) {
        n->first = a;
        otr_apply_set_str(&n->id, a->old.id ? a->old.id : a->desired.id);
    }
    switch (a->kind) {
    case OTR_ACT_CREATE: add_step(n, STEP_CREATE, a); break;
    case OTR_ACT_UPDATE: add_step(n, STEP_UPDATE, a); break;
    case OTR_ACT_REPLACE:
        /* a create-first kind's old resource is retired when the new one is
         * made, and deleted by an action of its own */
        if (a->resource->replace_order == OTR_REPLACE_DELETE_FIRST)
            add_deletes(n, a);
        add_step(n, STEP_CREATE, a);
        break;
    case OTR_ACT_DELETE: add_deletes(n, a); break;
    case OTR_ACT_RESUME:
        /* the intent is already in the journal: finish it with the same request */
        n->journaled = 1;
        add_step(n,
                 a->resume_op == OTR_OP_CREATE   ? STEP_CREATE
                 : a->resume_op == OTR_OP_UPDATE ? STEP_CHECK_UPDATE
                                                 : STEP_CHECK_DELETE,
                 a);
        break;
    default: break;
    }
}

/* The node of an action: a resume's, when the same address has one. */
static size_t node_for(apply_run *rn, const otr_action *a)
{
    for (size_t k = 0; k < rn->nnodes && a->kind != OTR_ACT_RESUME; k++) {
        const otr_action *f = rn->nodes[k].first;
        if (f->kind == OTR_ACT_RESUME && f->resource == a->resource && f->retired == a->retired &&
            !strcmp(f->name, a->name) && (!a->retired || !strcmp(f->old.id, a->old.id)))
            return k;
    }
    rn->nodes[rn->nnodes].run = rn;
    return rn->nnodes++;
}

static int add_dependent(node *on, size_t who)
{
    return otr_index_add(&on->dependents, &on->ndependents, who);
}

/* One node per address, its chain, and the edges between nodes. */
int otr_apply_build(apply_run *rn)
{
    const otr_plan *p = rn->p;
    size_t *node_of = calloc(p->count + 1, sizeof(*node_of));
    if (!node_of)
        return -1;
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *a = &p->actions[i];
        node_of[i] = (size_t)-1;
        if (a->kind == OTR_ACT_NOOP || a->kind == OTR_ACT_ORPHAN)
            continue;
        node_of[i] = node_for(rn, a);
        plan_steps(&rn->nodes[node_of[i]], a);
    }
    int rc = 0;
    for (size_t i = 0; i < p->count && rc == 0; i++)
        for (size_t d = 0; d < p->actions[i].ndeps && rc == 0; d++) {
            size_t who = node_of[i], on = node_of[p->actions[i].deps[d]];
            if (who == (size_t)-1 || on == (size_t)-1 || who == on)
                continue;
            size_t before = rn->nodes[on].ndependents;
            rc = add_dependent(&rn->nodes[on], who);
            if (rc == 0 && rn->nodes[on].ndependents > before)
                rn->nodes[who].waiting++;
        }
    for (size_t i = 0; i < rn->nnodes; i++)
        if (rn->nodes[i].waiting == 0)
            otr_apply_push_ready(rn, i);
    free(node_of);
    return rc;
}
