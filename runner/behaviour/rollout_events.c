/* What a rollout did between two of its records, for notifications
 * (see rollout_view.h): a wave started, a wave passed, a halt, the end. */
#include "behaviour/rollout_view.h"

#include "kinds/ota_rollout.h"
#include "kinds/record.h"
#include "util/buf.h"

#include <stdio.h>
#include <string.h>

static const cJSON *wave_named(const cJSON *waves, const char *name)
{
    const cJSON *w;
    cJSON_ArrayForEach(w, waves)
    {
        const char *n = otr_rollout_str(w, "name");
        if (n && name && !strcmp(n, name))
            return w;
    }
    return NULL;
}

/* Appends an event of type (key: what makes it one of a kind) with data
 * (extra, taken, or a new object) and a summary: "NAME (revision R): what". */
static void add(cJSON *out, const char *type, const char *key, const otr_record *after,
                const char *wave, cJSON *extra, const char *what)
{
    otr_buf summary = OTR_BUF_INIT;
    otr_buf_printf(&summary, "%s (revision %ld): %s", after->name, after->revision, what);
    cJSON *e = cJSON_CreateObject(), *data = extra ? extra : cJSON_CreateObject();
    if (e && data && !otr_buf_failed(&summary)) {
        cJSON_AddStringToObject(data, "summary", summary.ptr);
        cJSON_AddStringToObject(data, "rollout", after->name);
        cJSON_AddNumberToObject(data, "revision", (double)after->revision);
        if (wave)
            cJSON_AddStringToObject(data, "wave", wave);
        cJSON_AddStringToObject(e, "type", type);
        cJSON_AddStringToObject(e, "key", key);
        cJSON_AddItemToObject(e, "data", data);
        cJSON_AddItemToArray(out, e);
        e = data = NULL;
    }
    cJSON_Delete(e);
    cJSON_Delete(data);
    otr_buf_free(&summary);
}

/* The key of an event: the revision, and what makes it one of a kind. */
static void key_of(char *out, size_t size, const otr_record *after, const char *what,
                   const char *more)
{
    snprintf(out, size, "r%ld/%s/%s", after->revision, what, more ? more : "");
}

cJSON *otr_rollout_events(const otr_record *before, const otr_record *after)
{
    cJSON *out = cJSON_CreateArray();
    char key[512];
    if (!out || !after)
        return out;
    int same = before && before->revision == after->revision;
    const cJSON *was = same ? otr_rollout_started(before) : NULL, *w;
    cJSON_ArrayForEach(w, otr_rollout_started(after))
    {
        const char *name = otr_rollout_str(w, "name");
        const cJSON *then = wave_named(was, name);
        if (otr_rollout_str(w, "taskId") && !(then && otr_rollout_str(then, "taskId"))) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "taskId", otr_rollout_str(w, "taskId"));
            key_of(key, sizeof(key), after, "started", name);
            otr_buf what = OTR_BUF_INIT;
            otr_buf_printf(&what, "wave %s started", name);
            add(out, "wave.started", key, after, name, d, otr_buf_cstr(&what));
            otr_buf_free(&what);
        }
        if (otr_rollout_str(w, "passedAt") && !(then && otr_rollout_str(then, "passedAt"))) {
            key_of(key, sizeof(key), after, "passed", name);
            otr_buf what = OTR_BUF_INIT;
            otr_buf_printf(&what, "wave %s passed", name);
            add(out, "wave.passed", key, after, name, NULL, otr_buf_cstr(&what));
            otr_buf_free(&what);
        }
    }
    const cJSON *halt = cJSON_GetObjectItemCaseSensitive(after->progress, "halt");
    const cJSON *halt_was =
        same ? cJSON_GetObjectItemCaseSensitive(before->progress, "halt") : NULL;
    const char *at = otr_rollout_str(halt, "at");
    if (at && !(halt_was && otr_rollout_str(halt_was, "at") &&
                !strcmp(otr_rollout_str(halt_was, "at"), at))) {
        cJSON *d = cJSON_CreateObject();
        const char *reason = otr_rollout_str(halt, "reason");
        cJSON_AddStringToObject(d, "reason", reason ? reason : "");
        cJSON_AddStringToObject(d, "at", at);
        const cJSON *counts = cJSON_GetObjectItemCaseSensitive(halt, "counts");
        if (counts)
            cJSON_AddItemToObject(d, "counts", cJSON_Duplicate(counts, 1));
        otr_buf what = OTR_BUF_INIT;
        otr_buf_printf(&what, "halted at wave %s: %s", otr_rollout_str(halt, "wave"),
                       reason ? reason : "");
        snprintf(key, sizeof(key), "r%ld/halted/%s/%s", after->revision,
                 otr_rollout_str(halt, "wave") ? otr_rollout_str(halt, "wave") : "", at);
        add(out, "rollout.halted", key, after, otr_rollout_str(halt, "wave"), d,
            otr_buf_cstr(&what));
        otr_buf_free(&what);
    }
    /* the end: the last wave of its manifest passed in this change */
    cJSON *spec = otr_record_spec(after);
    const cJSON *waves = spec ? otr_rollout_waves(spec) : NULL;
    const char *last =
        otr_rollout_str(cJSON_GetArrayItem(waves, cJSON_GetArraySize(waves) - 1), "name");
    const cJSON *now_last = wave_named(otr_rollout_started(after), last);
    const cJSON *then_last = wave_named(was, last);
    if (now_last && otr_rollout_str(now_last, "passedAt") &&
        !(then_last && otr_rollout_str(then_last, "passedAt"))) {
        key_of(key, sizeof(key), after, "completed", NULL);
        add(out, "rollout.completed", key, after, NULL, NULL, "complete, every wave passed");
    }
    cJSON_Delete(spec);
    return out;
}
