/*
 * Manifests: YAML documents -> validated otr_manifest records.
 *
 * An otr_manifest_set owns its manifests (and each manifest its strings and
 * JSON); free it with otr_manifest_set_free. Problems go to an otr_diags the
 * caller owns; a manifest with any error is not added to the set.
 */
#ifndef OTR_KINDS_MANIFEST_H
#define OTR_KINDS_MANIFEST_H

#include "util/error.h"
#include "manifest/token.h"

#include <cjson/cJSON.h>
#include <stddef.h>

#define OTR_MANIFEST_MAX_FILE_SIZE ((size_t)1 << 20)
#define OTR_MANIFEST_MAX_COUNT 100000
#define OTR_API_VERSION "ota-runner/v1"

typedef struct otr_kind otr_kind; /* kinds/kind.h */

/* A field of the spec that names another manifest (TaskConfigurationRef). */
typedef struct otr_manifest_ref {
    const char *field; /* the kind's ref field */
    const otr_kind *kind;
    char *target; /* the name it gives */
    unsigned line, col;
} otr_manifest_ref;

typedef struct otr_manifest {
    const otr_kind *kind;
    char *name;
    char **previous; /* metadata.previousNames: its records move to name */
    size_t nprevious;
    long revision;                     /* 1 when not written */
    char *spec_json;                   /* the kind's spec as written (references by name), as
                                          canonical JSON (token.h); otr_manifest_spec parses it */
    char client_token[OTR_TOKEN_SIZE]; /* over the spec with each reference replaced by the token of
                              the manifest it names, so the token covers what is sent */
    char spec_digest[72];              /* "sha256:" + 64 hex digits, of the same */
    otr_manifest_ref *refs;
    size_t nrefs;
    char *file;
    size_t file_order; /* the file's place in path order */
    unsigned line;     /* where the document's mapping starts */
    unsigned col;
} otr_manifest;

typedef struct otr_name_ref {
    const otr_kind *kind;
    const char *name; /* owned */
    int valid;        /* its manifest was added to the set */
    size_t file_index;
    unsigned line, col;
    size_t seq;
} otr_name_ref;

typedef struct otr_manifest_set {
    otr_manifest **items;
    size_t count;
    size_t alloc;
    size_t documents;  /* manifests seen, valid or not */
    size_t files;      /* files added */
    char **file_names; /* by file order, for messages; NULL where none was added (until
                          finish, as names) */
    size_t file_names_alloc;
    otr_name_ref *names; /* every metadata.name seen, for the duplicate check (until finish) */
    size_t nnames, names_alloc;
    int limit_reported;
    otr_manifest **by_name; /* after finish: sorted by kind and name, for look-ups */
} otr_manifest_set;

#define OTR_MANIFEST_SET_INIT                                                                      \
    {                                                                                              \
        .items = NULL, .count = 0, .alloc = 0                                                      \
    }

/*
 * Parses and validates every document of one file. order is the file's place
 * in path order (files may be added in any order, each order once); file is
 * the path shown in messages. Returns -1 only when memory runs out (or when an
 * order comes twice).
 */
int otr_manifest_add_file(otr_manifest_set *set, size_t order, const char *file, const char *data,
                          size_t len, otr_diags *diags, otr_error *err);

/* The parsing half of otr_manifest_add_file, for a set of its own (a
 * worker's part, see kinds/loader.h): the file is not named in set. */
OTR_MUST_USE int otr_manifest_parse_file(otr_manifest_set *set, size_t order, const char *file,
                                         const char *data, size_t len, otr_diags *diags,
                                         otr_error *err);

/* Moves what part (one file, parsed by otr_manifest_parse_file) holds into
 * set, as if the file had been added to set: its manifests, names and
 * problems (from part_diags into diags). part is freed. Returns 1 (part
 * and part_diags untouched: the caller frees them) when the file would
 * cross the manifest limit: add it with otr_manifest_add_file instead,
 * which reports where; -1 with err. */
OTR_MUST_USE int otr_manifest_set_absorb(otr_manifest_set *set, size_t order, const char *file,
                                         otr_manifest_set *part, otr_diags *diags,
                                         otr_diags *part_diags, otr_error *err);

/* Checks what needs every file: names unique within a kind, references
 * that name a manifest of the set (a manifest whose reference does not is
 * taken out, with an error at the reference); then computes the tokens of
 * manifests with references. Call once after the last file (none may come
 * after: the names it checked are released); it also sorts
 * the manifests and diags in file order. */
OTR_MUST_USE int otr_manifest_set_finish(otr_manifest_set *set, otr_diags *diags);

void otr_manifest_set_free(otr_manifest_set *set);

/* The manifest of kind that lists name in metadata.previousNames, or NULL. */
otr_manifest *otr_manifest_set_find_previous(const otr_manifest_set *set, const otr_kind *kind,
                                             const char *name);
/* The manifest of kind called name, or NULL (after otr_manifest_set_finish). */
otr_manifest *otr_manifest_set_find(const otr_manifest_set *set, const otr_kind *kind,
                                    const char *name);
void otr_manifest_free(otr_manifest *m);
/* A new tree of m's spec (the caller deletes it), or NULL (none, or no
 * memory). */
cJSON *otr_manifest_spec(const otr_manifest *m);

#endif
