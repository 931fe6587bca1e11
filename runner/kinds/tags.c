/* ota-runner's own tags on what it creates (see tags.h). */
#include "kinds/tags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void otr_tags_check(const cJSON *tags, const char *field, otr_kind_report_fn report, void *ctx)
{
    const cJSON *t;
    char path[256];
    if (!cJSON_IsObject(tags))
        return;
    cJSON_ArrayForEach(t, tags)
    {
        if (t->string && !strncmp(t->string, OTR_TAG_PREFIX, strlen(OTR_TAG_PREFIX))) {
            snprintf(path, sizeof(path), "%s.%s", field, t->string);
            report(ctx, path,
                   "the tag prefix %s is ota-runner's own: it tags what it creates with %s and "
                   "%s, to find it again if the state is lost; use another key",
                   OTR_TAG_PREFIX, OTR_TAG_ADDRESS, OTR_TAG_REVISION);
        }
    }
    int n = cJSON_GetArraySize(tags);
    if (n > OTR_TAGS_USER_MAX)
        report(ctx, field,
               "has %d tags; at most %d: the service takes %d, and ota-runner adds its own %d", n,
               OTR_TAGS_USER_MAX, OTR_TAGS_MAX, OTR_TAGS_RESERVED);
}

cJSON *otr_tags_add(const cJSON *body, const char *tags_key, const otr_kind *owner,
                    const char *name, long revision, unsigned generation)
{
    cJSON *out = cJSON_Duplicate(body, 1);
    cJSON *tags = cJSON_GetObjectItemCaseSensitive(out, tags_key);
    char rev[24];
    otr_buf address = OTR_BUF_INIT;
    if (out && !tags)
        tags = cJSON_AddObjectToObject(out, tags_key);
    otr_address_full(&address, owner, name);
    snprintf(rev, sizeof(rev), "%ld", revision);
    if (!tags || otr_buf_failed(&address) ||
        !cJSON_AddStringToObject(tags, OTR_TAG_ADDRESS, otr_buf_cstr(&address)) ||
        !cJSON_AddStringToObject(tags, OTR_TAG_REVISION, rev) ||
        (generation && (snprintf(rev, sizeof(rev), "%u", generation) < 0 ||
                        !cJSON_AddStringToObject(tags, OTR_TAG_GENERATION, rev)))) {
        cJSON_Delete(out);
        out = NULL;
    }
    otr_buf_free(&address);
    return out;
}

void otr_tags_strip(cJSON *spec, const char *tags_key)
{
    cJSON *tags = cJSON_GetObjectItemCaseSensitive(spec, tags_key), *t = tags ? tags->child : NULL;
    while (t) {
        cJSON *next = t->next;
        if (t->string && !strncmp(t->string, OTR_TAG_PREFIX, strlen(OTR_TAG_PREFIX)))
            cJSON_Delete(cJSON_DetachItemViaPointer(tags, t));
        t = next;
    }
    if (tags && !tags->child)
        cJSON_DeleteItemFromObjectCaseSensitive(spec, tags_key);
}

int otr_tags_owner(const cJSON *tags, const otr_kind **kind, const char **name, long *revision)
{
    const char *address =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tags, OTR_TAG_ADDRESS));
    const char *rev =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tags, OTR_TAG_REVISION));
    const char *slash = address ? strchr(address, '/') : NULL;
    char kname[64];
    if (!slash || (size_t)(slash - address) >= sizeof(kname) || !slash[1])
        return 0;
    memcpy(kname, address, (size_t)(slash - address));
    kname[slash - address] = '\0';
    *kind = otr_kind_find(kname);
    *name = slash + 1;
    char *end = NULL;
    *revision = rev ? strtol(rev, &end, 10) : 1;
    if (rev && (*end || *revision < 1))
        *revision = 1;
    return *kind != NULL;
}

unsigned otr_tags_generation(const cJSON *tags)
{
    const char *g =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tags, OTR_TAG_GENERATION));
    char *end = NULL;
    if (!g || *g < '1' || *g > '9' || strlen(g) > 9)
        return 0;
    unsigned long v = strtoul(g, &end, 10);
    return *end ? 0 : (unsigned)v;
}
