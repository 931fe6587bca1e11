/*
 * The plan (docs/DESIGN.md section 7): desired manifests vs recorded resources (vs
 * what the service reports) -> actions, for every kind alike, from the kind
 * descriptions (kinds/kind.h).
 *
 *   resume   an intent left in the journal by an interrupted run
 *   delete   a recorded resource whose manifest is gone (with --prune), or a
 *            retired one (the old resource of a create-first replace, once
 *            nothing refers to it)
 *   replace  a change the kind cannot make in place, or a revision bump: for a
 *            task DeleteOtaTask then CreateOtaTask; for a configuration the
 *            new one first, the tasks moved to it, then the old one deleted
 *   update   only fields the kind updates in place changed (a task's
 *            Description / TaskConfigurationId)
 *   create   a manifest with no resource (or whose resource the service no
 *            longer has)
 *   orphan   a recorded resource whose manifest is gone (without --prune)
 *   noop     nothing to do
 *
 * Actions are sorted by kind in that order, then by address (configurations
 * before tasks). Each action names the actions it waits for (deps): a
 * resource is created before those that refer to it, and deleted after
 * those that referred to it have moved away or gone; otherwise actions are
 * independent. The plan owns copies of everything it refers to, so it can be
 * saved, loaded and applied later; free it with otr_plan_free.
 *
 * The plan is always made whole; the guards (otr_plan_check_guards) say what
 * apply refuses to do without being told (too many deletes, cancelling a
 * running task, pruning an empty manifest set), so a plan shows them as
 * warnings and apply as errors.
 */
#ifndef OTR_PLAN_PLAN_H
#define OTR_PLAN_PLAN_H

#include "kinds/kind.h"
#include "kinds/manifest.h"
#include "state/state.h"
#include "util/error.h"

#include <cjson/cJSON.h>
#include <stddef.h>

#define OTR_PLAN_FORMAT_VERSION 1

typedef enum otr_action_kind {
    OTR_ACT_RESUME,
    OTR_ACT_DELETE,
    OTR_ACT_REPLACE,
    OTR_ACT_UPDATE,
    OTR_ACT_CREATE,
    OTR_ACT_ORPHAN,
    OTR_ACT_NOOP,
    OTR_ACT_KINDS
} otr_action_kind;

typedef struct otr_change {
    char *field;
    cJSON *old_value; /* NULL: not set */
    cJSON *new_value;
} otr_change;

typedef struct otr_action {
    otr_action_kind kind;
    const otr_kind *resource; /* the kind of what it acts on */
    char *name;
    char *reason;       /* why, when it is not plain ("drift: ...", "revision 1 -> 2") */
    otr_op resume_op;   /* resume: what is being finished */
    int retired;        /* delete (or a resumed delete): of a retired resource, old.id */
    int drift;          /* it puts back what changed behind ota-runner's back (--refresh
                           full): a resource the service changed, or one gone from it */
    int after_resume;   /* replace or delete: its old resource is what a resumed create of
                           this run makes (no id or status known before) */
    otr_record old;     /* the recorded resource (name NULL when there is none) */
    otr_record desired; /* the record wanted (name NULL for delete / orphan); its spec is
                           the manifest's, references by name: apply resolves them */
    unsigned line;      /* of the manifest, 0 when none */
    otr_change *changes;
    size_t nchanges;
    size_t *deps; /* the actions it waits for (indexes into the plan) */
    size_t ndeps;
    const otr_manifest *manifest; /* what desired was made of, in the set, while the plan is
                                     made (otr_plan_order); NULL after, and when none */
    const char *refs_text;        /* a create or replace: what its reference names, in that kind's
                                     words (the configuration's rate and abort criteria), or NULL;
                                     the plan's (words) */
} otr_action;

/* A record to write anew without a call: its manifest moved to another file
 * (git mv), its digest changed with nothing to send (an imported resource
 * that already is as the manifest says), or a kind's bookkeeping changed (a
 * rollout's wave passed its gate, or halted). */
typedef struct otr_rewrite {
    otr_record rec;
} otr_rewrite;

/* How a resource of a kind that plans itself stands (a rollout's waves),
 * for the outputs. */
typedef struct otr_detail {
    const otr_kind *kind;
    char *name;
    cJSON *view;
} otr_detail;

/* A record that moves to a manifest's new name (metadata.previousNames),
 * with no call. */
typedef struct otr_move {
    const otr_kind *kind;
    char *from, *to;
} otr_move;

typedef struct otr_plan {
    otr_action *actions;
    size_t count;
    size_t counts[OTR_ACT_KINDS];
    size_t retired_deletes; /* deletes of retired resources (also in counts[DELETE]) */
    size_t adopted;         /* records a state that recorded nothing took from the service
                               before the plan was made (sync/adopt.h) */
    char lineage[40];
    long serial;
    size_t journal_entries;
    char *repo, *ref, *commit, *path;
    cJSON *signed_by; /* who signed the commit ({"principal", "key", "fingerprint",
                         "commits"}), or NULL when no --allowed-signers */
    char **notes;     /* status changes and other observations, sorted */
    size_t nnotes;
    otr_rewrite *rewrites;
    size_t nrewrites;
    otr_detail *details;
    size_t ndetails;
    /* deletes an interrupted run left in the journal whose resource may still
     * be there: not finished blindly, but judged anew by this plan with this
     * run's guards; apply takes them out of the journal (kind, name, id and
     * retired are set) */
    otr_intent *dropped;
    size_t ndropped;
    long manifests;  /* manifests read; -1 when not known (an older saved plan) */
    otr_move *moves; /* records apply renames first, saving the state before any call */
    size_t nmoves;
    char **words; /* what actions' refs_text point at: one text for each configuration
                     that tasks name, however many of them do */
    size_t nwords;
} otr_plan;

/* What the service said of one resource, when the plan was refreshed. */
typedef struct otr_remote_item {
    const char *id;
    const char *status;
    const cJSON *fields;          /* the get's answer with --refresh full, else NULL */
    const otr_ota_counts *counts; /* the get's TaskProcessingDetails, else NULL */
    const char *uses_id;          /* what it refers to (a task's TaskConfigurationId), or NULL */
    const char *failed_devices;   /* its first failed devices ("th1, th2 and 3 more"), read
                                     when its counts show failures (a rollout's wave), or NULL */
} otr_remote_item;

/* One kind's resources in the service, sorted by id. */
typedef struct otr_remote_view {
    const otr_kind *kind;
    const otr_remote_item *items;
    size_t count;
} otr_remote_view;

typedef struct otr_plan_options {
    int prune;
    int64_t now;                   /* the runner's clock (seconds since 1970), for gates */
    const char *const *targets;    /* addresses (KIND/NAME or a task's NAME), NULL-ended;
                                      NULL: every one */
    const otr_remote_view *remote; /* one per kind, ended by kind NULL; NULL: --refresh none */
    const char *repo, *ref, *commit, *path;
    const cJSON *signed_by; /* copied into the plan */
    int compare;            /* the records were made from another commit's manifests, not
                               applied (ota-runner diff): compare manifests only */
    int blind;              /* --no-adopt: with no refresh, an interrupted run's create is
                               sent again on its ClientToken alone (else it is refused) */
    /* how the kinds that plan themselves behave (behaviour/behaviour.h:
     * otr_behaviours), NULL-ended; NULL: none (a kind that plans itself is
     * then refused) */
    const struct otr_kind_behaviour *const *behaviours;
    /* what other environments' states say of the rollouts this fleet's wait
     * for (spec.after): {"ENV/ROLLOUT": {"revision", "s3Url", "passed":
     * [WAVE...], "halted"} or {"error": WHY}}; NULL: none read */
    const cJSON *gates;
} otr_plan_options;

#define OTR_PLAN_OPTIONS_INIT                                                                      \
    {                                                                                              \
        .prune = 0, .now = 0, .targets = NULL, .remote = NULL, .repo = NULL, .ref = NULL,          \
        .commit = NULL, .path = NULL, .signed_by = NULL, .compare = 0, .blind = 0,                 \
        .behaviours = NULL, .gates = NULL                                                          \
    }

#define OTR_PLAN_DEFAULT_MAX_DELETES 10

/* What apply does only when told to. */
typedef struct otr_plan_guards {
    int max_deletes;  /* task deletes, replacements included; negative: no limit */
    int allow_cancel; /* replace or delete a task the service reports running */
    int allow_empty;  /* prune when no manifest is left */
} otr_plan_guards;

#define OTR_PLAN_GUARDS_INIT                                                                       \
    {                                                                                              \
        .max_deletes = OTR_PLAN_DEFAULT_MAX_DELETES, .allow_cancel = 0, .allow_empty = 0           \
    }

/* What a kind that plans itself (kind->plan) is given and gives back, for
 * one address. */
typedef struct otr_kind_plan {
    /* what there is */
    const otr_record *rec;         /* the recorded resource, or NULL */
    const otr_manifest *m;         /* its manifest, or NULL when it is gone */
    const cJSON *spec;             /* m's spec, parsed, or NULL */
    const cJSON *rec_spec;         /* rec's spec, parsed, or NULL */
    const otr_remote_item *remote; /* what the service said of it, or NULL */
    const otr_manifest_set *set;   /* every manifest (for the tokens references take) */
    int refreshed;                 /* the service was asked (not --refresh none) */
    int prune;
    int compare;     /* ota-runner diff: rec was made from the older manifest */
    int status_only; /* status: judged now, recorded by no one (a pass or halt not yet
                        recorded gets no time: the apply that records it gives it one) */
    int64_t now;
    const char *commit;
    const cJSON *gates; /* otr_plan_options.gates */
    /* what to do */
    otr_action_kind kind; /* NOOP: no call */
    otr_record desired;   /* the record the action leaves (with NOOP and rewrite: the
                             record to write without a call) */
    int rewrite;
    otr_buf reason;
    cJSON *view;     /* how it stands, for the outputs */
    otr_buf refused; /* a change that cannot be made: the plan fails with this */
} otr_kind_plan;

/* How a kind that plans itself behaves, above the plan: its planner, and
 * what the commands above ask of it. The kind's description is kinds/; its
 * behaviour is runner/behaviour/, handed to the plan by its caller. */
typedef struct otr_kind_behaviour {
    const otr_kind *kind;
    int (*plan)(otr_kind_plan *kp);
    /* A lost state rebuilt (sync/adopt.c): the record manifest m has, from
     * the n resources the service tags with its address (gets, oldest
     * first); -1 with why when they do not fit it. */
    int (*adopt)(const otr_manifest *m, const otr_manifest_set *set, const otr_remote *found,
                 size_t n, otr_record *out, otr_buf *why);
    /* how a record stands, for status: as its plan's view, judged on what
     * the service said of its resource (remote), at now */
    cJSON *(*status_view)(const otr_record *rec, const otr_remote_item *remote, int64_t now);
    /* the ClientTokens of the calls its manifest makes ([{"name",
     * "clientToken"}]: a rollout's waves), for `tokens` */
    cJSON *(*call_tokens)(const otr_manifest *m, const otr_manifest_set *set);
    /* Its view (the plan's details, status's rows), rendered by its owner:
     * the renderers iterate and never read a view's keys. The heading of
     * the views in a plan's markdown; the view as text (each line starting
     * with indent), as markdown, as GitHub workflow annotations, as a
     * Mermaid flowchart (nothing when there is nothing to draw); whether it
     * is halted (status --fail-on-halt); what a change promotes it to, or
     * NULL. */
    const char *views_title;
    void (*view_text)(otr_buf *out, const char *name, const cJSON *view, const char *indent);
    void (*view_markdown)(otr_buf *out, const char *name, const cJSON *view);
    void (*view_github)(otr_buf *out, const char *name, const cJSON *view);
    void (*view_mermaid)(otr_buf *out, const cJSON *view);
    int (*view_halted)(const cJSON *view);
    const char *(*view_state)(const cJSON *view); /* its own state, in a word, for status */
    const char *(*view_promotes)(const cJSON *view);
    /* what people are told of a change of its record (before: NULL for a
     * new one), for notifications: [{"type", "key", "data": {"summary",
     * ...}}]; NULL hook: nothing */
    cJSON *(*events)(const otr_record *before, const otr_record *after);
    /* its metric families ("NAME\tTYPE\tHELP", NULL-ended) and the samples
     * of its view ([{"family", "labels", "value"}] appended to out) */
    const char *const *metric_families;
    void (*view_metrics)(const char *name, const cJSON *view, cJSON *out);
} otr_kind_behaviour;

/* The plan takes the specs of the manifests it acts on (they are left NULL in
 * set): a plan of 100k creates holds each spec once. On failure *out is NULL. */
OTR_MUST_USE int otr_plan_make(otr_plan **out, otr_state *state, otr_manifest_set *set,
                               const otr_plan_options *o, otr_error *err);

/* Changes: resume + delete + replace + update + create. */
size_t otr_plan_changes(const otr_plan *p);

const char *otr_action_kind_name(otr_action_kind k);

/* Appends one line per guard the plan trips (each says what to do) to out;
 * returns how many it trips. */
size_t otr_plan_check_guards(const otr_plan *p, const otr_plan_guards *g, otr_buf *out);

/* The status of the resource an action would delete (a delete, or a
 * delete-first replace) when the service last reported it in one of its
 * kind's running statuses: its devices' executions are cancelled by the
 * delete; OTR_STATUS_UNKNOWN when the service never reported one (a task
 * made since the last refresh, planned with --refresh none): it may be
 * running, and the guard holds it so. NULL otherwise. */
#define OTR_STATUS_UNKNOWN "of a status not known"
const char *otr_action_cancels(const otr_action *a);

/* Does the service's resource (fields: a get's answer) differ from what rec
 * records (ota-runner's own tags aside)? 1 with the fields that differ in
 * names ("Description, Tags.team"), 0 when not, -1 without memory. */
int otr_record_drift(const otr_record *rec, const cJSON *fields, otr_buf *names);

/* The id of the resource an action deletes, for messages (never NULL). */
const char *otr_action_old_id(const otr_action *a);

/* Does the action delete a resource whose deletes --max-deletes counts? */
int otr_action_deletes_task(const otr_action *a);

/* The id a create-first replace retires (the old resource), or NULL. */
const char *otr_action_replaces(const otr_action *a);

/* Adds a note per line of text (after the plan is made: what was done to
 * the state before it, such as adoption). -1 without memory. */
OTR_MUST_USE int otr_plan_add_notes(otr_plan *p, const char *text);

/* The plan as JSON (the documented, versioned schema: docs/reference.md, "Plan JSON"). */
cJSON *otr_plan_to_json(const otr_plan *p);
/* An action's field changes: [{"field", "old", "new"}] (null for absent). */
cJSON *otr_action_changes_json(const otr_action *a);
/* A plan saved with plan --out. On failure *out is NULL. */
OTR_MUST_USE int otr_plan_from_json(otr_plan **out, const cJSON *j, otr_error *err);

void otr_plan_free(otr_plan *p);

#endif
