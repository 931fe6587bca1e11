/*
 * A record: what ota-runner keeps of one resource it created (or adopted)
 * for a manifest, whatever the kind. Below the state (state.h keeps records
 * per kind, with their snapshot and journal text) and beside the kinds,
 * whose hooks read and change a record of theirs (a rollout's progress).
 */
#ifndef OTR_KINDS_RECORD_H
#define OTR_KINDS_RECORD_H

#include "util/error.h"

#include <cjson/cJSON.h>

typedef struct otr_kind otr_kind;

/* One resource ota-runner created (or adopted) for a manifest. */
typedef struct otr_record {
    const otr_kind *kind;
    char *name;
    char *phase;        /* "created" or "imported" */
    char *client_token; /* the token it was created with ("" when imported) */
    long revision;
    char *spec_json;   /* what the service holds, as canonical JSON (manifest/token.h): the
                          body it was created or last updated with, references resolved
                          (TaskConfigurationId, not ...Ref); parsed where it is read
                          (otr_record_spec), so 100k records stay small */
    char *spec_digest; /* the manifest's digest when it was */
    char *id;          /* the kind's id_key in the file: taskId, taskConfigurationId */
    char *arn;
    char *file;   /* the manifest's file, when known */
    char *commit; /* the commit the spec came from */
    char *created_at;
    char *updated_at;
    char *remote_status; /* the status last seen in the service, or NULL */
    char *remote_checked_at;
    cJSON *progress; /* a kind's own bookkeeping (a rollout's waves and halt), or NULL */
} otr_record;

void otr_record_clear(otr_record *r);
/* A new tree of r's spec (the caller deletes it), or NULL when r has none
 * or memory runs out. */
cJSON *otr_record_spec(const otr_record *r);
/* The string at path (dotted, util/json.h) in r's spec, copied (the caller
 * frees it), or NULL when there is none (or memory runs out). */
char *otr_record_spec_string(const otr_record *r, const char *path);
/* 1 when the string at path in r's spec is value (a quick look at the text
 * first: most records do not hold it), else 0. */
int otr_record_spec_is(const otr_record *r, const char *path, const char *value);
/* On failure dst is left empty (nothing to free) and src is untouched. */
OTR_MUST_USE int otr_record_copy(otr_record *dst, const otr_record *src);

#endif
