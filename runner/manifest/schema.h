/*
 * The shapes ota-runner validates, written down as data: each field's type,
 * whether it is required, its length / count / value range, enum, and a
 * pattern or format check. The CreateOtaTask and CreateOtaTaskConfiguration
 * tables mirror the service model (shared/api/iot-managed-integrations-ota.json)
 * field by field; the manifest envelope (apiVersion, kind, metadata) and the
 * references between manifests (TaskConfigurationRef) are ota-runner's own.
 *
 * Everything here is static and read-only.
 */
#ifndef OTR_MANIFEST_SCHEMA_H
#define OTR_MANIFEST_SCHEMA_H

#include "util/buf.h"

#include <stddef.h>

typedef enum otr_ftype {
    OTR_F_STRING,
    OTR_F_INT,
    OTR_F_DOUBLE, /* a number: 10, 10.0 and 1e1 are the same value */
    OTR_F_BOOL,   /* true or false */
    OTR_F_LIST,
    OTR_F_MAP,    /* string keys -> values */
    OTR_F_STRUCT, /* fixed member names */
    OTR_F_ANY,    /* not checked here (the envelope's spec: the kind's table checks it) */
} otr_ftype;

#define OTR_NO_LIMIT (-1L)

/* The most waves a rollout may have. */
#define OTR_ROLLOUT_MAX_WAVES 20

/* A format check: returns 1 when s is acceptable, else 0 with a reason
 * appended to why ("'.' at position 5 is not allowed"). */
typedef int (*otr_fcheck)(const char *s, size_t len, otr_buf *why);

typedef struct otr_field {
    const char *name;
    otr_ftype type;
    int required;
    long min, max; /* string: characters; list/map: entries (NO_LIMIT: any); int: value */
    const char *const *enums;        /* NULL-terminated, or NULL */
    otr_fcheck check;                /* pattern or format, or NULL */
    const char *check_desc;          /* what check wants, for messages */
    const struct otr_field *members; /* STRUCT: sorted by name */
    size_t nmembers;
    const struct otr_field *elem; /* LIST element, MAP value */
    const struct otr_field *key;  /* MAP key */
    double dmin, dmax;            /* DOUBLE: the range; NAN: no limit on that side */
    int spec_root;                /* a kind's spec: ClientToken is named in its errors */
} otr_field;

/* A whole OtaTask manifest: apiVersion, kind, metadata and spec. */
extern const otr_field otr_schema_ota_task;
/* Its spec: CreateOtaTask's input without ClientToken, plus TaskConfigurationRef. */
extern const otr_field otr_schema_ota_task_spec;
/* A whole OtaTaskConfiguration manifest, and its spec: CreateOtaTaskConfiguration's
 * input without ClientToken. */
extern const otr_field otr_schema_ota_task_configuration;
extern const otr_field otr_schema_ota_task_configuration_spec;
/* A whole OtaRollout manifest, and its spec: the task every wave is made
 * of, the gate between waves, the waves. */
extern const otr_field otr_schema_ota_rollout;
extern const otr_field otr_schema_ota_rollout_spec;
/* A rollout's gate (the rollout's, or a wave's override). */
extern const otr_field otr_schema_gate;

/* Any manifest's envelope (apiVersion, kind, metadata; spec unchecked): read
 * first, to know which kind's table to check a document against. */
extern const otr_field otr_schema_envelope;

const otr_field *otr_schema_member(const otr_field *st, const char *name);

/* The member name closest to name (edit distance, ignoring case), or NULL when
 * nothing is close enough to be a likely typo. */
const char *otr_schema_suggest(const otr_field *st, const char *name);
const char *otr_schema_suggest_word(const char *const *words, const char *name);

/* Is s a valid metadata.name? (1 when yes; else 0 and why) */
int otr_schema_check_name_value(const char *s, otr_buf *why);

/* A duration: 30s, 15m, 2h, 1d, 1h30m. */
int otr_schema_check_duration(const char *s, size_t len, otr_buf *why);

/* Exposed for tests: the date-time and cron checks. */
int otr_schema_check_datetime(const char *s, size_t len, otr_buf *why);
int otr_schema_check_cron(const char *s, size_t len, otr_buf *why);
/* Seconds since 1970 for a value that passed otr_schema_check_datetime
 * (a value without a zone is read as UTC). */
long long otr_schema_datetime_epoch(const char *s);

#endif
