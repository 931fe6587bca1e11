/*
 * Kinds: one description per kind of manifest (OtaTask, OtaTaskConfiguration,
 * OtaRollout: the otr_kinds table), and everything that works across kinds
 * works from it: validation and tokens (the schema, the cross-field checks,
 * the references), the state (where its records live and which ids they
 * keep), the plan (which fields update in place, the replace order, what a
 * delete would cancel), apply (the API it uses, the check a resumed step
 * makes), refresh, status and import (the fields a GetX answer holds).
 * Adding a kind is adding a description and its tests: plan and apply have
 * no branch per kind. A kind that plans itself (a rollout) has a behaviour
 * too, above the plan (runner/behaviour/).
 *
 * Addresses name a resource across kinds: "KIND/NAME"
 * ("OtaTaskConfiguration/staged-push"); a bare NAME means OtaTask/NAME, so
 * command lines written before there were kinds keep working.
 *
 * Every description is static and read-only.
 */
#ifndef OTR_KINDS_KIND_H
#define OTR_KINDS_KIND_H

#include "aws/client.h"
#include "manifest/token.h"
#include "manifest/schema.h"
#include "ota/ota.h"
#include "util/buf.h"
#include "util/error.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* A field of a manifest's spec that names another manifest, and the
 * service's field it becomes once that one exists. */
typedef struct otr_kind_ref {
    const char *field;    /* "TaskConfigurationRef", or a path ("task.TaskConfigurationRef") */
    const char *kind;     /* "OtaTaskConfiguration" */
    const char *id_field; /* "TaskConfigurationId" */
} otr_kind_ref;

/* Which comes first when a change needs a new resource. */
typedef enum otr_replace_order {
    OTR_REPLACE_DELETE_FIRST, /* tasks: the old one goes, then the new one comes */
    OTR_REPLACE_CREATE_FIRST, /* configurations: the new one comes, the tasks move
                                 to it, then the old one goes */
} otr_replace_order;

struct otr_record;
struct otr_manifest;
struct otr_manifest_set;

/* The most ids one record holds (a rollout: one task per wave). */
#define OTR_KIND_MAX_IDS OTR_ROLLOUT_MAX_WAVES

/* A manifest's own checks across fields; problems go to report(ctx, field
 * path, message). */
typedef void (*otr_kind_report_fn)(void *ctx, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
typedef void (*otr_kind_check_fn)(const cJSON *spec, otr_kind_report_fn report, void *ctx);

typedef struct otr_kind {
    const char *name;         /* "OtaTask": the manifest's kind, and addresses' prefix */
    const char *noun;         /* "task": in messages */
    const char *state_key;    /* "tasks": where its records live in the state */
    const char *id_key;       /* "taskId": a record's id in the state and the plan */
    const char *arn_key;      /* "taskArn", or NULL */
    const char *tags_key;     /* the spec member with its resource's tags ("Tags"), or NULL:
                                 ota-runner tags what it creates (kinds/tags.h) */
    const otr_field *schema;  /* the whole manifest */
    otr_kind_check_fn check;  /* rules across fields, or NULL */
    otr_kind_check_fn advise; /* what is allowed but likely not meant: warnings, or NULL */
    const otr_kind_ref *refs; /* what its spec may refer to */
    size_t nrefs;
    const char *const *updatable; /* fields its update call sets in place (it cannot unset
                                     them); NULL: no update call, any change replaces */
    otr_replace_order replace_order;
    const char *const *running; /* statuses in which a delete cancels work on devices */
    int conflict_retires;       /* a delete refused as still in use (a ValidationException,
                                   the error the model lists; or a 409) leaves the old
                                   resource retired, to be deleted by a later run */
    int guarded_deletes;        /* --max-deletes counts its deletes */
    int retires_dropped;        /* a kind with several ids (ids_of): those a newly created
                                   record drops (an old revision's waves, left running
                                   without --prune) stay recorded, retired, and are
                                   deleted only by a --prune run (--allow-cancel while
                                   they run) */
    /* A kind whose record is not the body it sends (a rollout: one manifest,
     * one task per wave) says what a create sends, where the new id goes, and
     * which ids a delete removes; and it plans itself. NULL for the others:
     * their record's spec is the body, its id the one; it plans itself
     * (plans_itself, below). */
    int (*body_of)(const struct otr_record *rec, cJSON **body, char token[OTR_TOKEN_SIZE]);
    const struct otr_kind *body_kind; /* whose references the body has */
    int (*created)(struct otr_record *rec);
    size_t (*ids_of)(const struct otr_record *rec, const char **ids, size_t max);
    /* the manifest ClientToken the resource id of rec was created with (a
     * rollout: its wave's), or NULL; NULL hook: rec's client_token for its id */
    const char *(*token_of)(const struct otr_record *rec, const char *id);
    /* what id is to the record, in a word (a rollout: its wave's name), or NULL */
    const char *(*id_name)(const struct otr_record *rec, const char *id);
    /* after a delete of one of them: forgets id, and says how many are left */
    size_t (*forget_id)(struct otr_record *rec, const char *id);
    /* notes in rec what the body a create sends refers to (the ids its
     * references resolved to), so a resource it names is kept while one of
     * rec's resources uses it; NULL: the record's spec is the body */
    int (*sent)(struct otr_record *rec, const cJSON *body);
    /* does one of rec's resources refer to id through id_field (what sent
     * noted; a resource from before that, to anything its manifest could
     * name)? NULL: the record's spec says (otr_record_spec_is) */
    int (*refers_to)(const struct otr_record *rec, const char *id_field, const char *id);
    /* it plans itself (a rollout): its behaviour (plan.h, otr_kind_behaviour;
     * runner/behaviour/) says how, and a plan without it refuses the kind */
    int plans_itself;
    /* what a reviewer reads first about a spec, in words (the firmware, who
     * gets it, when; how fast and when it stops), or NULL; spec_json: its
     * canonical JSON; refs: what its reference names, in that kind's words,
     * or NULL */
    void (*describe)(const char *spec_json, const char *refs, otr_buf *out);
    const struct otr_kind *listed_as; /* its resources are in this kind's listing */
    int needs_counts; /* a refresh reads its newest resource even without --refresh full */
    /* the service's calls for its resources, and their parsers */
    const otr_ota_api *api;
    /* its tags change in place (TagResource, UntagResource: its tags_key is
     * then updatable, removals too); 0: a tag edit replaces the resource */
    int tags_in_place;
} otr_kind;

extern const otr_kind otr_kind_ota_task;
extern const otr_kind otr_kind_ota_task_configuration;
extern const otr_kind otr_kind_ota_rollout;

/* Every kind, those that others refer to first; NULL-ended, at most
 * OTR_KIND_LIMIT. */
#define OTR_KIND_LIMIT 8
extern const otr_kind *const otr_kinds[];

/* The describe hooks of the kinds (kinds/describe.c); a task's spec given
 * as json[0..len) (a rollout's task member; NULL: none). */
void otr_describe_task(const char *spec_json, const char *refs, otr_buf *out);
void otr_describe_task_json(const char *json, size_t len, const char *refs, otr_buf *out);
void otr_describe_configuration(const char *spec_json, const char *refs, otr_buf *out);

/* The kind called name, or NULL. */
const otr_kind *otr_kind_find(const char *name);
/* The kind's place in otr_kinds (for sorting). */
size_t otr_kind_index(const otr_kind *k);

/* "KIND/NAME" or a bare NAME (an OtaTask) -> the kind and a pointer to the
 * name inside address. On failure why says what is wrong (an unknown kind,
 * with did-you-mean). */
OTR_MUST_USE int otr_address_parse(const char *address, const otr_kind **kind, const char **name,
                                   otr_buf *why);
/* The address for people: a bare name for an OtaTask, else KIND/NAME. */
void otr_address_short(otr_buf *out, const otr_kind *kind, const char *name);
/* The full address, KIND/NAME, for JSON. */
void otr_address_full(otr_buf *out, const otr_kind *kind, const char *name);

/* The kind of the bodies a create of k sends (a rollout's: tasks), and so of
 * the resources it makes in the service: k itself but for a kind whose
 * record is not its body (body_kind). */
const otr_kind *otr_kind_sent(const otr_kind *k);

/* Is field one its update call sets? */
int otr_kind_updatable(const otr_kind *k, const char *field);
/* Is status one in which a delete cancels work on devices? */
int otr_kind_running(const otr_kind *k, const char *status);
/* The reference its spec makes through field, or NULL. */
const otr_kind_ref *otr_kind_ref_of(const otr_kind *k, const char *field);

/* What a service may write otherwise without changing it, written one way
 * (in place), for both sides of a comparison (drift, adoption): a date-time
 * as "YYYY-MM-DDTHH:MM:SSZ" (UTC, whatever its zone or fraction), a Target
 * list in sorted order (a set of things). -1 without memory. */
int otr_spec_normalise(cJSON *v);

/* Every page of the kind's list call, in order. A NextToken answered with
 * itself is an error (as botocore has it), and so are more than
 * OTR_LIST_MAX_PAGES pages (10 million tasks at the largest page). */
#define OTR_LIST_MAX_PAGES 10000
OTR_MUST_USE int otr_kind_list_all(const otr_kind *k, otr_aws_client *c, otr_remote **items,
                                   size_t *n, otr_error *err);

#endif
