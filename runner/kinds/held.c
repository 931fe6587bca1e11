/* What the service holds, read by a kind (held.h). */
#include "kinds/held.h"

#include "kinds/tags.h"
#include "manifest/token.h"

#include <stdlib.h>
#include <string.h>

cJSON *otr_kind_spec_of(const otr_kind *k, const cJSON *fields)
{
    /* the spec's fields are the schema's, but for ota-runner's own references */
    const otr_field *spec_field = otr_schema_member(k->schema, "spec");
    cJSON *spec = cJSON_CreateObject();
    for (size_t i = 0; spec && spec_field && i < spec_field->nmembers; i++) {
        const char *name = spec_field->members[i].name;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, name);
        if (v && !cJSON_IsNull(v) && !otr_kind_ref_of(k, name))
            cJSON_AddItemToObject(spec, name, cJSON_Duplicate(v, 1));
    }
    if (spec && k->tags_key)
        otr_tags_strip(spec, k->tags_key); /* ota-runner's own are not the manifest's */
    return spec;
}

/* Takes out of spec what a comparison of bodies leaves aside: the fields
 * the kind's update sets, its references and the ids they resolve to. */
static void without_movable(const otr_kind *k, cJSON *spec)
{
    for (size_t i = 0; k->updatable && k->updatable[i]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(spec, k->updatable[i]);
    for (size_t i = 0; i < k->nrefs; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, k->refs[i].field);
        cJSON_DeleteItemFromObjectCaseSensitive(spec, k->refs[i].id_field);
    }
}

int otr_kind_holds_body(const otr_kind *k, const cJSON *body, long revision, const cJSON *fields,
                        otr_buf *why)
{
    const cJSON *tags = k->tags_key ? cJSON_GetObjectItemCaseSensitive(fields, k->tags_key) : NULL;
    const otr_kind *owner;
    const char *name;
    long rev = 0;
    if (!otr_tags_owner(tags, &owner, &name, &rev) || rev != revision) {
        otr_buf_printf(why, "its ota-runner:revision is %ld, not %ld", rev, revision);
        return 0;
    }
    cJSON *have = otr_kind_spec_of(k, fields), *want = cJSON_Duplicate(body, 1);
    int rc = -1;
    if (!have || !want)
        goto done;
    if (k->tags_key)
        otr_tags_strip(want, k->tags_key);
    without_movable(k, have);
    without_movable(k, want);
    if (otr_spec_normalise(have) < 0 || otr_spec_normalise(want) < 0)
        goto done;
    rc = 1;
    const cJSON *f;
    cJSON *both[2] = {want, have};
    for (int side = 0; side < 2; side++) {
        cJSON_ArrayForEach(f, both[side])
        {
            const cJSON *other = cJSON_GetObjectItemCaseSensitive(both[1 - side], f->string);
            if (side == 1 && other)
                continue; /* compared from the other side */
            cJSON *a = cJSON_Duplicate(f, 1), *b = other ? cJSON_Duplicate(other, 1) : NULL;
            char *ta = a ? otr_canonical_json(a) : NULL, *tb = b ? otr_canonical_json(b) : NULL;
            if (a && (!ta || (b && !tb)))
                rc = -1;
            else if (!tb || strcmp(ta, tb)) {
                otr_buf_printf(why, "%s%s", rc == 1 ? "its " : ", ", f->string);
                rc = rc < 0 ? rc : 0;
            }
            free(ta);
            free(tb);
            cJSON_Delete(a);
            cJSON_Delete(b);
        }
    }
    if (rc == 0)
        otr_buf_puts(why, " differ from the manifest's");
done:
    cJSON_Delete(have);
    cJSON_Delete(want);
    return rc;
}
