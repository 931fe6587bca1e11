/*
 * --refresh: what the service holds, for every kind, as the plan reads it.
 * list: one paginated list call per kind; full: also a get per recorded
 * resource the list shows (for drift). An otr_refresh owns what it read;
 * free it with otr_refresh_free.
 */
#ifndef OTR_SYNC_REFRESH_H
#define OTR_SYNC_REFRESH_H

#include "aws/client.h"
#include "kinds/kind.h"
#include "plan/plan.h"
#include "state/state.h"

#define OTR_REFRESH_MAX_KINDS OTR_KIND_LIMIT

typedef struct otr_refresh_kind {
    const otr_kind *kind;
    otr_remote *listed; /* the list's answer */
    size_t n;
    otr_remote_item *items; /* the plan's view of it, sorted by id */
    otr_remote *got;        /* full: the get's answer per item (fields NULL when none) */
    char **failed;          /* per item: its first failed devices, or NULL */
} otr_refresh_kind;

/* The devices a halt names (the first this many failed ones). */
#define OTR_FAILED_DEVICES_NAMED 3

/* The call for the first page of id's devices, when counts show failed,
 * timed-out or rejected ones and kind k has devices; NULL otherwise. */
otr_aws_call *otr_failed_devices_call(const otr_kind *k, const char *id, const otr_ota_counts *c);
/* The first failed devices in that page's answer ("th1, th2 and 3 more", the
 * more counted from c), or NULL; the caller frees it. */
char *otr_failed_devices(const otr_kind *k, const otr_aws_call *call, const otr_ota_counts *c);

typedef struct otr_refresh_result {
    otr_refresh_kind kinds[OTR_REFRESH_MAX_KINDS];
    size_t nkinds;
    otr_remote_view views[OTR_REFRESH_MAX_KINDS + 1]; /* for otr_plan_options.remote */
} otr_refresh_result;

/* Reads what the service holds of every kind (full: with a get for each
 * recorded resource it lists). On failure err says which call failed. */
OTR_MUST_USE int otr_refresh_read(otr_refresh_result *r, otr_aws_client *c, const otr_state *s,
                                  int full, otr_error *err);

/* The statuses the refresh saw go into the records, so the state file (when
 * apply saves it) tells what the service said last. */
void otr_refresh_remember(const otr_refresh_result *r, otr_state *s);

void otr_refresh_free(otr_refresh_result *r);

#endif
