/*
 * Between apply's parts: the graph (graph.c: its nodes, their edges and
 * chains of steps, and what a run reports) and the steps that run on it
 * (apply.c: calls, answers, the journal). Not for use outside runner/apply/.
 */
#ifndef OTR_APPLY_INTERNAL_H
#define OTR_APPLY_INTERNAL_H

#include "apply/apply.h"
#include "manifest/token.h"

typedef enum step {
    STEP_CREATE,
    STEP_UPDATE,
    STEP_DELETE,
    STEP_CHECK_UPDATE, /* resume: the get, then the update only if still needed */
    STEP_CHECK_DELETE, /* resume: the get, then the delete only if still there */
} step;

typedef enum node_state { WAITING, READY, RUNNING, SUCCEEDED, FAILED, SKIPPED } node_state;

struct apply_run;

typedef struct jstep {
    step kind;
    const otr_action *a; /* the action the step carries out */
    const char *id;      /* a delete of one of a record's ids (kind->ids_of), or NULL */
} jstep;

/* A chain: a resume, then the deletes of every id a record holds, then a
 * create. */
#define APPLY_MAX_STEPS (OTR_KIND_MAX_IDS + 2)

typedef struct node {
    const otr_action *first; /* its first action: kind, name, retired */
    jstep steps[APPLY_MAX_STEPS];
    int nsteps, cur;
    node_state state;
    size_t waiting;     /* nodes it waits for, not finished yet */
    size_t *dependents; /* nodes waiting for it */
    size_t ndependents;
    int journaled;              /* the current step's intent is in the journal */
    int reported;               /* its failure is in the result */
    char *id;                   /* the resource's id as the steps go */
    char *deleted;              /* the id a delete step of this chain removed */
    otr_intent work;            /* the current step's intent; its record is what success records */
    cJSON *body;                /* what the current create or update sends (references resolved) */
    char token[OTR_TOKEN_SIZE]; /* and with which ClientToken (the manifest's) */
    char sent[OTR_TOKEN_SIZE];  /* the ClientToken a create sent: token at its generation */
    unsigned generation;
    int verifying;    /* the call is the get that checks what a create answered */
    int dead_answers; /* creates answered with a resource that is gone */
    int update_part;  /* an update's calls: UPDATE_FIELDS, UPDATE_TAG, UPDATE_UNTAG */
    int no_arn;       /* its tags were to change, and no ARN is recorded */
    int kept_retired; /* its delete was refused as in use: the resource is kept, retired */
    otr_aws_call *call;
    struct apply_run *run;
} node;

typedef struct apply_run {
    const otr_apply_transport *t;
    otr_state *s;
    const otr_plan *p;
    const otr_apply_options *o;
    otr_apply_result *r;
    node *nodes;
    size_t nnodes, active;
    size_t *ready; /* a queue of nodes to start, in plan order */
    size_t nready, ready_head;
    node **unsent; /* calls made ready whose intents wait for the next flush */
    size_t nunsent;
    int idle_flush; /* the transport flushes after each round of answers */
    int64_t started_ms;
} apply_run;

/* graph.c: a node's address for people; a stop of the whole run (the first
 * reason kept); a note in the result; a node's failure (once, naming where
 * its chain stopped); the graph of the plan's actions (-1 without memory);
 * *slot becomes a copy of value. */
void otr_apply_address(otr_buf *out, const node *n);
void otr_apply_stop(apply_run *rn, const char *why);
void otr_apply_note(apply_run *rn, const char *text);
void otr_apply_add_failure(node *n, const char *what, int with_note);
int otr_apply_build(apply_run *rn);
/* Queues node i to start (nodes start in plan order). */
void otr_apply_push_ready(apply_run *rn, size_t i);
void otr_apply_set_str(char **slot, const char *value);

#endif
