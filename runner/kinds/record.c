/* A record: freeing, copying, and reading its spec (record.h). */
#include "kinds/record.h"

#include "util/json.h"

#include <stdlib.h>
#include <string.h>

void otr_record_clear(otr_record *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->phase);
    free(r->client_token);
    free(r->spec_json);
    free(r->spec_digest);
    free(r->id);
    free(r->arn);
    free(r->file);
    free(r->commit);
    free(r->created_at);
    free(r->updated_at);
    free(r->remote_status);
    free(r->remote_checked_at);
    cJSON_Delete(r->progress);
    memset(r, 0, sizeof(*r));
}

/* Copies one optional string; 0, or -1 when memory runs out. */
static int copy_str(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? -1 : 0;
}

int otr_record_copy(otr_record *dst, const otr_record *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->kind = src->kind;
    dst->revision = src->revision;
    if (src->progress && !(dst->progress = cJSON_Duplicate(src->progress, 1)))
        goto nomem;
    if (copy_str(&dst->name, src->name) < 0 || copy_str(&dst->phase, src->phase) < 0 ||
        copy_str(&dst->client_token, src->client_token) < 0 ||
        copy_str(&dst->spec_json, src->spec_json) < 0 ||
        copy_str(&dst->spec_digest, src->spec_digest) < 0 || copy_str(&dst->id, src->id) < 0 ||
        copy_str(&dst->arn, src->arn) < 0 || copy_str(&dst->file, src->file) < 0 ||
        copy_str(&dst->commit, src->commit) < 0 ||
        copy_str(&dst->created_at, src->created_at) < 0 ||
        copy_str(&dst->updated_at, src->updated_at) < 0 ||
        copy_str(&dst->remote_status, src->remote_status) < 0 ||
        copy_str(&dst->remote_checked_at, src->remote_checked_at) < 0)
        goto nomem;
    return 0;
nomem:
    otr_record_clear(dst);
    return -1;
}

cJSON *otr_record_spec(const otr_record *r)
{
    return r->spec_json ? cJSON_Parse(r->spec_json) : NULL;
}

char *otr_record_spec_string(const otr_record *r, const char *path)
{
    const char *at;
    size_t len, bad;
    if (!r->spec_json || !otr_json_member_at(r->spec_json, strlen(r->spec_json), path, &at, &len) ||
        *at != '"')
        return NULL; /* found in the text: no tree of the whole spec */
    cJSON *v = otr_json_parse_span(at, len, &bad);
    char *copy = cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
    cJSON_Delete(v);
    return copy;
}

/* 1 when canonical JSON writes s as it is (no escapes). */
static int written_plain(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return 0;
    return 1;
}

int otr_record_spec_is(const otr_record *r, const char *path, const char *value)
{
    if (!r->spec_json || (written_plain(value) && !strstr(r->spec_json, value)))
        return 0;
    char *v = otr_record_spec_string(r, path);
    int is = v && !strcmp(v, value);
    free(v);
    return is;
}
