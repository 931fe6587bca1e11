/* What changed between two specs, field by field; drift (the service's
 * against the manifest's); and an ended resource's update (plan/internal.h). */
#include "plan/internal.h"

#include "kinds/tags.h"
#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

int otr_action_add_change(otr_action *a, const char *field, const cJSON *old_v, const cJSON *new_v)
{
    otr_change *c = realloc(a->changes, (a->nchanges + 1) * sizeof(*c));
    if (!c)
        return -1;
    a->changes = c;
    c[a->nchanges].field = strdup(field);
    c[a->nchanges].old_value = old_v ? cJSON_Duplicate(old_v, 1) : NULL;
    c[a->nchanges].new_value = new_v ? cJSON_Duplicate(new_v, 1) : NULL;
    a->nchanges++;
    return c[a->nchanges - 1].field ? 0 : -1;
}

void otr_changes_free(otr_change *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].field);
        cJSON_Delete(c[i].old_value);
        cJSON_Delete(c[i].new_value);
    }
    free(c);
}

int otr_plan_key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The differences between two values at path, appended to a: objects
 * member by member (so a change deep in a configuration is named where it
 * is), anything else whole. -1 without memory. */
static int diff_value(otr_action *a, otr_buf *path, const cJSON *o, const cJSON *w)
{
    if (o && w && cJSON_Compare(o, w, 1))
        return 0;
    if (!cJSON_IsObject(o) || !cJSON_IsObject(w))
        return otr_buf_failed(path) ? -1 : otr_action_add_change(a, path->ptr, o, w);
    const char *keys[64];
    size_t n = 0, base = path->len;
    const cJSON *c;
    cJSON_ArrayForEach(c, o) if (n < 64) keys[n++] = c->string;
    cJSON_ArrayForEach(c, w)
    {
        if (n < 64 && !cJSON_GetObjectItemCaseSensitive(o, c->string))
            keys[n++] = c->string;
    }
    qsort(keys, n, sizeof(*keys), otr_plan_key_cmp);
    for (size_t i = 0; i < n; i++) {
        otr_buf_printf(path, ".%s", keys[i]);
        int rc = diff_value(a, path, cJSON_GetObjectItemCaseSensitive(o, keys[i]),
                            cJSON_GetObjectItemCaseSensitive(w, keys[i]));
        path->len = base;
        path->ptr[base] = '\0';
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Field-level differences between two specs, appended to a (nested objects
 * down to the member that changed). Returns 1 when the kind can make every
 * difference in place (judged by the top-level field), 0 when not, -1
 * without memory. */
int otr_plan_diff_specs(otr_action *a, const otr_kind *k, const cJSON *old_spec,
                        const cJSON *new_spec)
{
    const char *keys[64];
    size_t n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, old_spec) if (n < 64) keys[n++] = c->string;
    cJSON_ArrayForEach(c, new_spec)
    {
        if (n < 64 && !cJSON_GetObjectItemCaseSensitive(old_spec, c->string))
            keys[n++] = c->string;
    }
    qsort(keys, n, sizeof(*keys), otr_plan_key_cmp);
    int updatable = 1;
    for (size_t i = 0; i < n; i++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(old_spec, keys[i]);
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(new_spec, keys[i]);
        if (o && w && cJSON_Compare(o, w, 1))
            continue;
        otr_buf path = OTR_BUF_INIT;
        otr_buf_puts(&path, keys[i]);
        int rc = diff_value(a, &path, o, w);
        otr_buf_free(&path);
        if (rc < 0)
            return -1;
        /* an update sets a field; it cannot unset one (but for tags, which
         * are removed in place) */
        if (!otr_kind_updatable(k, keys[i]) ||
            (!w && !(k->tags_in_place && k->tags_key && !strcmp(keys[i], k->tags_key))))
            updatable = 0;
    }
    return updatable;
}

/* --refresh full: what the service holds vs the manifest (want; had is the
 * record's spec). Adds the drifted
 * fields to probe and their names to why; returns 1 when there is drift
 * (*updatable says whether the kind can mend it in place), 0 when none, -1
 * without memory. */
int otr_plan_drift(otr_action *probe, const otr_record *rec, const cJSON *had,
                   const cJSON *want_spec, const cJSON *fields, int *updatable, otr_buf *why)
{
    otr_action drift = {0};
    cJSON *live = cJSON_CreateObject(), *want = cJSON_Duplicate(want_spec, 1);
    const cJSON *f;
    int rc = -1;
    if (!live || !want)
        goto done;
    cJSON_ArrayForEach(f, had)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, f->string);
        if (v)
            cJSON_AddItemToObject(live, f->string, cJSON_Duplicate(v, 1));
        else /* a field the answer leaves out is not known to differ */
            cJSON_DeleteItemFromObjectCaseSensitive(want, f->string);
    }
    cJSON_ArrayForEach(f, fields)
    {
        if (!cJSON_GetObjectItemCaseSensitive(live, f->string) &&
            !cJSON_GetObjectItemCaseSensitive(want, f->string) &&
            otr_kind_updatable(rec->kind, f->string))
            cJSON_AddItemToObject(live, f->string, cJSON_Duplicate(f, 1));
    }
    const otr_kind *sent = otr_kind_sent(rec->kind);
    if (sent->tags_key) /* ota-runner's own tags are not drift */
        otr_tags_strip(live, sent->tags_key);
    if (otr_spec_normalise(live) < 0 || otr_spec_normalise(want) < 0)
        goto done;
    int up = otr_plan_diff_specs(&drift, rec->kind, live, want);
    if (up < 0)
        goto done;
    *updatable = up;
    if (drift.nchanges) {
        otr_buf_printf(why, "drift: the service's %s differs from the manifest in",
                       rec->kind->noun);
        for (size_t i = 0; i < drift.nchanges; i++) {
            otr_buf_printf(why, "%s %s", i ? "," : "", drift.changes[i].field);
            if (otr_action_add_change(probe, drift.changes[i].field, drift.changes[i].old_value,
                                      drift.changes[i].new_value) < 0)
                goto done;
        }
    }
    rc = drift.nchanges > 0;
done:
    otr_changes_free(drift.changes, drift.nchanges);
    cJSON_Delete(live);
    cJSON_Delete(want);
    return rc;
}

/* Is a change one of the tags (which TagResource changes on an ended
 * resource too)? */
static int is_tag_change(const otr_kind *k, const otr_change *c)
{
    size_t len = k->tags_key ? strlen(k->tags_key) : 0;
    return k->tags_in_place && len && !strncmp(c->field, k->tags_key, len) &&
           (c->field[len] == '\0' || c->field[len] == '.');
}

/* An update of a resource that has ended (a task COMPLETED or CANCELED):
 * the service refuses to change its fields, so those changes are dropped
 * from probe, and note says which (its tags still change). Returns the
 * action kind left: OTR_ACT_UPDATE while tag changes remain, else
 * OTR_ACT_NOOP (with *all_dropped set); -1 without memory. */
int otr_plan_ended_update(const otr_record *rec, const otr_remote_item *remote, otr_action *probe,
                          otr_buf *note, int *all_dropped)
{
    const otr_kind *k = rec->kind;
    if (!remote || !remote->status || !k->running || otr_kind_running(k, remote->status))
        return OTR_ACT_UPDATE;
    otr_buf text = OTR_BUF_INIT;
    size_t kept = 0, dropped = 0;
    otr_address_short(&text, k, rec->name);
    otr_buf_printf(&text,
                   ": the %s has ended (%s), and the service changes no field of an "
                   "ended %s, so",
                   k->noun, remote->status, k->noun);
    for (size_t i = 0; i < probe->nchanges; i++) {
        otr_change *c = &probe->changes[i];
        if (is_tag_change(k, c)) {
            probe->changes[kept++] = *c;
            continue;
        }
        otr_buf_printf(&text, "%s %s", dropped++ ? "," : "", c->field);
        free(c->field);
        cJSON_Delete(c->old_value);
        cJSON_Delete(c->new_value);
    }
    probe->nchanges = kept;
    otr_buf_printf(&text, " stay%s as the service has %s; a new metadata.revision makes a new %s",
                   dropped == 1 ? "s" : "", dropped == 1 ? "it" : "them", k->noun);
    if (dropped)
        otr_buf_puts(note, otr_buf_cstr(&text));
    int failed = otr_buf_failed(&text) || otr_buf_failed(note);
    otr_buf_free(&text);
    if (failed)
        return -1;
    *all_dropped = !kept;
    return kept ? OTR_ACT_UPDATE : OTR_ACT_NOOP;
}

int otr_record_drift(const otr_record *rec, const cJSON *fields, otr_buf *names)
{
    otr_action probe = {0};
    otr_buf why = OTR_BUF_INIT;
    int updatable = 1;
    cJSON *had = otr_record_spec(rec);
    int rc = had ? otr_plan_drift(&probe, rec, had, had, fields, &updatable, &why) : -1;
    for (size_t i = 0; rc > 0 && i < probe.nchanges; i++)
        otr_buf_printf(names, "%s%s", i ? ", " : "", probe.changes[i].field);
    otr_changes_free(probe.changes, probe.nchanges);
    otr_buf_free(&why);
    cJSON_Delete(had);
    return rc;
}
