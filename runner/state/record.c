/* Records and intents: copies, and their JSON in the snapshot and journal. */
#include "state/state.h"

#include "kinds/held.h"
#include "manifest/schema.h"
#include "manifest/token.h"
#include "util/json.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *record_dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static const char *const op_names[] = {"create", "update", "delete"};

const char *otr_op_name(otr_op op)
{
    return op_names[op];
}

void otr_intent_clear(otr_intent *in)
{
    if (!in)
        return;
    otr_record_clear(&in->rec);
    free(in->replaces);
    memset(in, 0, sizeof(*in));
}

int otr_record_set_spec(otr_record *r, cJSON *spec)
{
    char *text = NULL;
    if (spec && !(text = otr_canonical_json(spec)))
        return -1;
    free(r->spec_json);
    r->spec_json = text;
    return 0;
}

cJSON *otr_record_to_json(const otr_record *r)
{
    otr_jb b = OTR_JB_INIT;
    cJSON *o = cJSON_CreateObject();
    otr_jb_str(&b, o, "phase", r->phase);
    otr_jb_str(&b, o, "clientToken", r->client_token);
    if (r->revision)
        otr_jb_num(&b, o, "revision", (double)r->revision);
    if (r->spec_json)
        otr_jb_add(&b, o, "spec", otr_record_spec(r));
    otr_jb_str(&b, o, "specDigest", r->spec_digest);
    otr_jb_str(&b, o, r->kind->id_key, r->id);
    if (r->kind->arn_key)
        otr_jb_str(&b, o, r->kind->arn_key, r->arn);
    otr_jb_str(&b, o, "file", r->file);
    otr_jb_str(&b, o, "commit", r->commit);
    otr_jb_str(&b, o, "createdAt", r->created_at);
    otr_jb_str(&b, o, "updatedAt", r->updated_at);
    if (r->remote_status) {
        cJSON *remote = otr_jb_object(&b, o, "remote");
        otr_jb_str(&b, remote, "status", r->remote_status);
        otr_jb_str(&b, remote, "checkedAt", r->remote_checked_at);
    }
    if (r->progress)
        otr_jb_add(&b, o, "progress", cJSON_Duplicate(r->progress, 1));
    if (!o || b.failed) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static char *get_dup(const cJSON *o, const char *key)
{
    const char *v = key ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key)) : NULL;
    return v ? strdup(v) : NULL;
}

/* What a record must have, with the right types; the failure in why. */
static int check_members(const otr_kind *kind, const char *name, const cJSON *o, int in_journal,
                         otr_buf *why)
{
    const char *required[] = {"phase", "specDigest", kind->id_key, NULL};
    const char *optional[] = {"clientToken", kind->id_key, "file",        "commit",
                              "createdAt",   "updatedAt",  kind->arn_key, NULL};
    for (size_t i = 0; required[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, required[i]);
        int may_lack = in_journal && required[i] == kind->id_key && !v;
        if (!cJSON_IsString(v) && !may_lack) {
            otr_buf_printf(why, "%s.%s.%s is missing or not a string", kind->state_key, name,
                           required[i]);
            return -1;
        }
    }
    for (size_t i = 0; optional[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, optional[i]);
        if (v && !cJSON_IsString(v)) {
            otr_buf_printf(why, "%s.%s.%s is not a string", kind->state_key, name, optional[i]);
            return -1;
        }
    }
    const char *phase = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "phase"));
    if (strcmp(phase, "created") != 0 && strcmp(phase, "imported") != 0) {
        otr_buf_printf(why, "%s.%s.phase is \"%s\", not \"created\" or \"imported\"",
                       kind->state_key, name, phase);
        return -1;
    }
    otr_buf name_why = OTR_BUF_INIT;
    int name_ok = otr_schema_check_name_value(name, &name_why);
    if (!name_ok)
        otr_buf_printf(why, "%s.\"%s\" is not a manifest name (%s)", kind->state_key, name,
                       otr_buf_cstr(&name_why));
    otr_buf_free(&name_why);
    if (!name_ok)
        return -1;
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "spec"))) {
        otr_buf_printf(why, "%s.%s.spec is missing or not an object", kind->state_key, name);
        return -1;
    }
    return 0;
}

int otr_record_from_json(otr_record *r, const otr_kind *kind, const char *name, cJSON *o,
                         int in_journal, otr_buf *why)
{
    memset(r, 0, sizeof(*r));
    if (!cJSON_IsObject(o)) {
        otr_buf_printf(why, "%s.%s is not an object", kind->state_key, name);
        return -1;
    }
    if (check_members(kind, name, o, in_journal, why) < 0)
        return -1;
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(o, "revision");
    long long revision = 1;
    if (rev && otr_json_integer(rev, 1, 2147483647LL, &revision) < 0) {
        otr_buf_printf(why, "%s.%s.revision is not an integer from 1 to 2147483647",
                       kind->state_key, name);
        return -1;
    }
    r->kind = kind;
    r->name = strdup(name);
    r->phase = get_dup(o, "phase");
    r->client_token = get_dup(o, "clientToken");
    r->revision = (long)revision;
    r->spec_json = otr_canonical_json(cJSON_GetObjectItemCaseSensitive(o, "spec"));
    r->spec_digest = get_dup(o, "specDigest");
    r->id = get_dup(o, kind->id_key);
    r->arn = get_dup(o, kind->arn_key);
    r->file = get_dup(o, "file");
    r->commit = get_dup(o, "commit");
    r->created_at = get_dup(o, "createdAt");
    r->updated_at = get_dup(o, "updatedAt");
    const cJSON *remote = cJSON_GetObjectItemCaseSensitive(o, "remote");
    if (cJSON_IsObject(remote)) {
        r->remote_status = get_dup(remote, "status");
        r->remote_checked_at = get_dup(remote, "checkedAt");
    }
    cJSON *progress = cJSON_GetObjectItemCaseSensitive(o, "progress");
    if (cJSON_IsObject(progress))
        r->progress = cJSON_DetachItemViaPointer(o, progress);
    if (!r->name || !r->phase || !r->spec_json || !r->spec_digest) {
        otr_record_clear(r);
        otr_buf_printf(why, "%s.%s: out of memory, or a number in spec that is not finite",
                       kind->state_key, name);
        return -1;
    }
    return 0;
}

int otr_record_from_remote(otr_record *r, const otr_kind *k, const char *name,
                           const otr_remote *got, long revision)
{
    char now[21], digest[72];
    otr_time_format_iso8601(now, time(NULL));
    memset(r, 0, sizeof(*r));
    r->kind = k;
    r->name = strdup(name);
    r->phase = strdup("imported");
    r->client_token = strdup("");
    r->revision = revision;
    cJSON *spec = otr_kind_spec_of(k, got->fields);
    r->spec_json = spec ? otr_canonical_json(spec) : NULL;
    cJSON_Delete(spec);
    int ok = r->spec_json && otr_spec_digest(digest, r->spec_json) == 0;
    r->spec_digest = ok ? strdup(digest) : NULL;
    r->id = strdup(got->id);
    r->arn = got->arn ? strdup(got->arn) : NULL;
    r->created_at = strdup(now);
    r->remote_status = got->status ? strdup(got->status) : NULL;
    r->remote_checked_at = got->status ? strdup(now) : NULL;
    return r->name && r->phase && r->client_token && r->spec_digest && r->id ? 0 : -1;
}

int otr_record_take_manifest(otr_record *r, otr_manifest *m, const char *commit)
{
    char *spec = m->spec_json;
    m->spec_json = NULL;
    int rc = otr_record_from_manifest(r, m, commit);
    free(r->spec_json);
    r->spec_json = spec;
    return rc;
}

int otr_record_from_manifest(otr_record *r, const otr_manifest *m, const char *commit)
{
    memset(r, 0, sizeof(*r));
    r->kind = m->kind;
    r->name = strdup(m->name);
    r->phase = strdup("created");
    r->client_token = strdup(m->client_token);
    r->revision = m->revision;
    r->spec_json = record_dup_or_null(m->spec_json);
    r->spec_digest = strdup(m->spec_digest);
    r->file = strdup(m->file);
    r->commit = record_dup_or_null(commit);
    return r->name && r->phase && r->client_token && (r->spec_json || !m->spec_json) &&
                   r->spec_digest && r->file && (r->commit || !commit)
               ? 0
               : -1;
}
