/* apply --notify: the events of a run into the state's outbox, then out to
 * every URL (see notifying.h and notify/notify.h). */
#include "cli/notifying.h"

#include "behaviour/behaviour.h"
#include "notify/notify.h"
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Per attempt, and attempts per URL and event. */
#define NOTIFY_TIMEOUT_MS 10000L
#define NOTIFY_ATTEMPTS 3

int otr_notifying_before(otr_notifying *nt, const otr_state *s, const otr_options *o)
{
    memset(nt, 0, sizeof(*nt));
    if (!o->nnotify)
        return 0;
    nt->before = calloc(s->count + 1, sizeof(*nt->before));
    if (!nt->before)
        return -1;
    for (size_t i = 0; i < s->count; i++) {
        const otr_kind_behaviour *bh = otr_behaviour_of(s->records[i].kind);
        if (!bh || !bh->events)
            continue;
        if (otr_record_copy(&nt->before[nt->n], &s->records[i]) < 0)
            return -1;
        nt->n++;
    }
    return 0;
}

static const otr_record *before_of(const otr_notifying *nt, const otr_record *rec)
{
    for (size_t i = 0; i < nt->n; i++)
        if (nt->before[i].kind == rec->kind && !strcmp(nt->before[i].name, rec->name))
            return &nt->before[i];
    return NULL;
}

static int queued(const cJSON *outbox, const char *id)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, outbox)
    {
        const char *has = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(x, "event"), "id"));
        if (has && !strcmp(has, id))
            return 1;
    }
    return 0;
}

/* Puts event (taken) in the outbox, once; the oldest go past the limit. */
static void enqueue(otr_state *s, cJSON *event)
{
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, "id"));
    if (!event || !id || (s->outbox && queued(s->outbox, id))) {
        cJSON_Delete(event);
        return;
    }
    if (!s->outbox && !(s->outbox = cJSON_CreateArray())) {
        cJSON_Delete(event);
        return;
    }
    cJSON *entry = cJSON_CreateObject();
    if (!entry || !cJSON_AddItemToObject(entry, "event", event)) {
        cJSON_Delete(entry);
        cJSON_Delete(event);
        return;
    }
    cJSON_AddArrayToObject(entry, "sentTo");
    cJSON_AddItemToArray(s->outbox, entry);
    while (cJSON_GetArraySize(s->outbox) > OTR_NOTIFY_OUTBOX_MAX) {
        fprintf(stderr,
                "ota-runner: warning: more than %d notifications wait to be delivered; "
                "the oldest is dropped\n",
                OTR_NOTIFY_OUTBOX_MAX);
        cJSON_DeleteItemFromArray(s->outbox, 0);
    }
}

void otr_notifying_queue(otr_notifying *nt, otr_state *s, const otr_plan *p,
                         const otr_apply_result *r, const otr_options *o)
{
    if (!o->nnotify)
        return;
    otr_buf source = OTR_BUF_INIT, subject = OTR_BUF_INIT;
    otr_buf_printf(&source, "%s#%s", p->repo ? p->repo : ".", p->path ? p->path : "manifests");
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < s->count; i++) {
        const otr_record *rec = &s->records[i];
        const otr_kind_behaviour *bh = otr_behaviour_of(rec->kind);
        cJSON *events = bh && bh->events ? bh->events(before_of(nt, rec), rec) : NULL;
        const cJSON *e;
        otr_buf_clear(&subject);
        otr_address_full(&subject, rec->kind, rec->name);
        cJSON_ArrayForEach(e, events)
        {
            const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type"));
            const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "key"));
            cJSON *data = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e, "data"), 1);
            if (type && key && data)
                enqueue(s, otr_notify_event(type, otr_buf_cstr(&source), otr_buf_cstr(&subject),
                                            key, now, data));
            else
                cJSON_Delete(data);
        }
        cJSON_Delete(events);
    }
    for (size_t i = 0; i < p->count; i++) { /* drift found (and put back by this run) */
        const otr_action *a = &p->actions[i];
        if (!a->drift)
            continue;
        char key[160];
        otr_buf summary = OTR_BUF_INIT;
        cJSON *data = cJSON_CreateObject(), *fields = cJSON_AddArrayToObject(data, "fields");
        otr_buf_clear(&subject);
        otr_address_full(&subject, a->resource, a->name);
        otr_buf_printf(&summary, "%s: ", otr_buf_cstr(&subject));
        if (a->kind == OTR_ACT_CREATE)
            otr_buf_printf(&summary,
                           "its %s %s was gone from the service; this apply makes it again",
                           a->resource->noun, a->old.id ? a->old.id : "");
        else
            otr_buf_printf(&summary, "the service's %s had changed; this apply puts it back",
                           a->resource->noun);
        for (size_t c = 0; c < a->nchanges; c++)
            cJSON_AddItemToArray(fields, cJSON_CreateString(a->changes[c].field));
        cJSON_AddStringToObject(data, "summary", otr_buf_cstr(&summary));
        cJSON_AddStringToObject(data, "what", a->kind == OTR_ACT_CREATE ? "gone" : "changed");
        snprintf(key, sizeof(key), "%s/%ld/%s", s->lineage, s->serial + 1, a->name);
        enqueue(s, otr_notify_event("drift.found", otr_buf_cstr(&source), otr_buf_cstr(&subject),
                                    key, now, data));
        otr_buf_free(&summary);
    }
    if (r && r->stats.failed) { /* one per run: its key is the state serial it writes */
        char key[96];
        cJSON *data = cJSON_CreateObject(), *errors = cJSON_AddArrayToObject(data, "errors");
        otr_buf summary = OTR_BUF_INIT;
        otr_buf_printf(&summary, "apply failed: %zu action%s failed", r->stats.failed,
                       r->stats.failed == 1 ? "" : "s");
        cJSON_AddStringToObject(data, "summary", otr_buf_cstr(&summary));
        cJSON_AddNumberToObject(data, "failed", (double)r->stats.failed);
        for (size_t i = 0; i < r->nfailures && i < 5; i++)
            cJSON_AddItemToArray(errors, cJSON_CreateString(r->failures[i].description));
        snprintf(key, sizeof(key), "%s/%ld", s->lineage, s->serial + 1);
        enqueue(s, otr_notify_event("apply.failed", otr_buf_cstr(&source), otr_buf_cstr(&source),
                                    key, now, data));
        otr_buf_free(&summary);
    }
    otr_buf_free(&source);
    otr_buf_free(&subject);
}

static int sent_to(const cJSON *entry, const char *digest)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(entry, "sentTo"))
    {
        if (cJSON_IsString(x) && !strcmp(x->valuestring, digest))
            return 1;
    }
    return 0;
}

int otr_notifying_send(otr_state *s, const otr_options *o, size_t *sent, size_t *failed)
{
    const char *secret = getenv("OTA_RUNNER_NOTIFY_SECRET");
    int changed = 0;
    *sent = *failed = 0;
    for (size_t u = 0; u < o->nnotify; u++) {
        char digest[17], shown[256];
        int down = 0; /* a URL that failed gets nothing more this run: order is kept */
        otr_notify_url_digest(o->notify[u], digest);
        otr_notify_url_shown(o->notify[u], shown, sizeof(shown));
        cJSON *entry;
        cJSON_ArrayForEach(entry, s->outbox)
        {
            if (down || sent_to(entry, digest))
                continue;
            const cJSON *event = cJSON_GetObjectItemCaseSensitive(entry, "event");
            const char *type;
            char sig[72];
            otr_error err = OTR_ERROR_INIT;
            char *body = otr_notify_body(o->notify[u], event, &type);
            otr_notify_sign(secret, body ? body : "", sig);
            if (body && otr_notify_post(o->notify[u], body, type, sig, NOTIFY_ATTEMPTS,
                                        NOTIFY_TIMEOUT_MS, &err) == 0) {
                cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(entry, "sentTo"),
                                     cJSON_CreateString(digest));
                (*sent)++;
                changed = 1;
            } else {
                fprintf(stderr,
                        "ota-runner: warning: %s; it stays in the state, and the next apply "
                        "with --notify %s sends it again\n",
                        body ? otr_error_message(&err) : "out of memory", shown);
                (*failed)++;
                down = 1;
            }
            otr_error_clear(&err);
            free(body);
        }
    }
    /* what every URL of this run took is done with */
    for (int i = cJSON_GetArraySize(s->outbox) - 1; i >= 0 && o->nnotify; i--) {
        const cJSON *entry = cJSON_GetArrayItem(s->outbox, i);
        int all = 1;
        for (size_t u = 0; u < o->nnotify && all; u++) {
            char digest[17];
            otr_notify_url_digest(o->notify[u], digest);
            all = sent_to(entry, digest);
        }
        if (all)
            cJSON_DeleteItemFromArray(s->outbox, i);
    }
    return changed;
}

void otr_notifying_free(otr_notifying *nt)
{
    for (size_t i = 0; i < nt->n; i++)
        otr_record_clear(&nt->before[i]);
    free(nt->before);
    memset(nt, 0, sizeof(*nt));
}
