/* The state's journal: an intent line before each mutating call, a result
 * line after it, and the lines replayed over a snapshot (state/internal.h,
 * docs/DESIGN.md section 6). */
#include "state/internal.h"

#include "manifest/token.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/time.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- the journal ------------------------------------------------------------- */

/* The fields every journal line has (added to e, which is taken, with b's
 * failures so far); the line itself, with its newline, or NULL. */
static char *line_of(const otr_state *s, otr_jb *b, cJSON *e, const otr_intent *in, long seq)
{
    char *text = NULL, *line = NULL;
    otr_jb_str(b, e, "op", otr_op_name(in->op));
    otr_jb_str(b, e, "kind", in->rec.kind->name);
    otr_jb_str(b, e, "name", in->rec.name);
    if (in->retired)
        otr_jb_bool(b, e, "retired", 1);
    otr_jb_num(b, e, "seq", (double)seq);
    otr_jb_str(b, e, "lineage", s->lineage);
    otr_jb_num(b, e, "serial", (double)s->serial);
    if (e && !b->failed && otr_canonical_sort(e) == 0)
        text = cJSON_PrintUnformatted(e);
    if (text) {
        otr_buf lb = OTR_BUF_INIT;
        otr_buf_printf(&lb, "%s\n", text);
        line = otr_buf_detach(&lb);
    }
    free(text);
    cJSON_Delete(e);
    return line;
}

char *otr_state_intent_line(const otr_state *s, const otr_intent *in, long seq)
{
    otr_jb b = OTR_JB_INIT;
    cJSON *e = cJSON_CreateObject();
    otr_jb_str(&b, e, "type", "intent");
    otr_jb_add(&b, e, "record", otr_record_to_json(&in->rec));
    otr_jb_str(&b, e, "replaces", in->replaces);
    return line_of(s, &b, e, in, seq);
}

char *otr_state_result_line(const otr_state *s, const otr_intent *in, const otr_record *rec, int ok,
                            int conflict, const char *error, long seq)
{
    otr_jb b = OTR_JB_INIT;
    cJSON *e = cJSON_CreateObject();
    char *now = otr_time_now_iso8601();
    const otr_kind *k = in->rec.kind;
    if (!now)
        b.failed = 1;
    otr_jb_str(&b, e, "type", "result");
    otr_jb_bool(&b, e, "ok", ok);
    if (conflict)
        otr_jb_bool(&b, e, "conflict", 1);
    if (rec) {
        otr_jb_str(&b, e, k->id_key, rec->id);
        if (k->arn_key)
            otr_jb_str(&b, e, k->arn_key, rec->arn);
    }
    otr_jb_str(&b, e, "error", error);
    otr_jb_str(&b, e, "at", now);
    free(now);
    return line_of(s, &b, e, in, seq);
}

static int damaged(otr_error *err, const char *jpath, size_t lineno)
{
    return otr_error_set(err, OTR_ERR_INVALID,
                         "journal %s: line %zu is damaged; it was left as it "
                         "is (look at it, then move it away to continue without it)",
                         jpath, lineno);
}

/* An intent line's intent (the record taken out of j). */
static int read_intent(cJSON *j, otr_intent *in, size_t lineno, const char *jpath, otr_error *err)
{
    cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "record");
    const char *name = in->rec.name;
    const otr_kind *k = in->rec.kind;
    otr_buf why = OTR_BUF_INIT;
    in->rec.name = NULL;
    if (in->op == OTR_OP_DELETE && cJSON_IsObject(r)) {
        in->rec.kind = k;
        in->rec.name = strdup(name);
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, k->id_key));
        in->rec.id = id ? strdup(id) : NULL;
    } else if (otr_record_from_json(&in->rec, k, name, r, 1, &why) < 0) {
        otr_error_set(err, OTR_ERR_INVALID, "journal %s: line %zu: %s", jpath, lineno,
                      otr_buf_cstr(&why));
        otr_buf_free(&why);
        return -1;
    }
    otr_buf_free(&why);
    const char *replaces = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "replaces"));
    in->replaces = replaces ? strdup(replaces) : NULL;
    return in->rec.name ? 0 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
}

/* The pending intent a result line settles, with the result's ids on its
 * record, applied. */
static int replay_result(otr_state *s, cJSON *j, const otr_intent *key)
{
    const otr_kind *k = key->rec.kind;
    const otr_intent *pending = NULL;
    for (size_t i = 0; i < s->npending && !pending; i++)
        if (otr_intent_same(&s->pending[i], key))
            pending = &s->pending[i];
    if (!pending)
        return 0; /* a result without its intent: nothing to settle */
    otr_intent in;
    if (otr_intent_copy(&in, pending) < 0)
        return -1;
    int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"));
    int conflict = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "conflict"));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, k->id_key));
    const char *arn =
        k->arn_key ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, k->arn_key)) : NULL;
    int rc = 0;
    if (ok && id && !in.retired && otr_replace_str(&in.rec.id, id) < 0)
        rc = -1;
    if (ok && arn && otr_replace_str(&in.rec.arn, arn) < 0)
        rc = -1;
    if (rc == 0)
        rc = otr_state_settle(s, &in, &in.rec, ok, conflict,
                              cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "error")));
    otr_intent_clear(&in);
    return rc;
}

/* The header every line has; fills what the line is about. Returns 1 when
 * the line belongs to an older snapshot (skip it). */
static int read_header(otr_state *s, const cJSON *j, otr_intent *key, const char **type,
                       size_t lineno, const char *jpath, otr_error *err)
{
    const char *lineage = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "lineage"));
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "kind"));
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "op"));
    long long jserial = 0;
    *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
    key->rec.name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "name"));
    key->rec.kind = kind ? otr_kind_find(kind) : &otr_kind_ota_task; /* version 1: tasks */
    key->retired = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "retired"));
    int known_op = 0;
    for (int i = 0; op && i < 3; i++)
        if (!strcmp(op, otr_op_name((otr_op)i))) {
            key->op = (otr_op)i;
            known_op = 1;
        }
    if (!j || !*type || !lineage || !key->rec.name || !key->rec.kind || !known_op ||
        otr_json_integer(cJSON_GetObjectItemCaseSensitive(j, "serial"), 0, 1LL << 53, &jserial) < 0)
        return damaged(err, jpath, lineno);
    if (!s->exists && s->journal_entries == 0 && strlen(lineage) < sizeof(s->lineage)) {
        /* a run that died before its first snapshot: the journal is all there
         * is of this state, so its lineage is the state's */
        snprintf(s->lineage, sizeof(s->lineage), "%s", lineage);
    }
    if (strcmp(lineage, s->lineage) != 0)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "journal %s belongs to another state (lineage %s, the state's is "
                             "%s); move one of them away",
                             jpath, lineage, s->lineage);
    if (jserial < s->serial) /* written before the snapshot we loaded: already in it */
        return 1;
    if (jserial > s->serial && !s->exists)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "journal %s (serial %lld) has no state file beside it: a state "
                             "migrate to here was interrupted (it writes the journal first); run "
                             "it again, or move the journal away",
                             jpath, jserial);
    if (jserial > s->serial)
        return otr_error_set(err, OTR_ERR_INVALID,
                             "journal %s is newer (serial %lld) than the state file (serial %ld): "
                             "the state file is older than its journal; restore the newest state "
                             "file",
                             jpath, jserial, s->serial);
    return 0;
}

static int replay_line(otr_state *s, const char *text, size_t lineno, const char *jpath,
                       otr_error *err)
{
    cJSON *j = cJSON_Parse(text);
    otr_intent key;
    const char *type = NULL;
    int rc;
    memset(&key, 0, sizeof(key));
    rc = j ? read_header(s, j, &key, &type, lineno, jpath, err) : damaged(err, jpath, lineno);
    if (rc != 0) {
        cJSON_Delete(j);
        return rc < 0 ? -1 : 0;
    }
    s->journal_entries++;
    if (!strcmp(type, "intent")) {
        otr_intent in;
        memset(&in, 0, sizeof(in));
        in.op = key.op;
        in.retired = key.retired;
        in.rec.kind = key.rec.kind;
        in.rec.name = (char *)key.rec.name; /* read_intent copies it */
        rc = read_intent(j, &in, lineno, jpath, err);
        if (rc == 0 && otr_state_add_pending(s, &in) < 0)
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        otr_intent_clear(&in);
    } else if (!strcmp(type, "result")) {
        /* a retired delete is told apart by its id */
        if (key.retired)
            key.rec.id =
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, key.rec.kind->id_key));
        rc = replay_result(s, j, &key) < 0 ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory") : 0;
    } else {
        rc = otr_error_set(err, OTR_ERR_INVALID, "journal %s: line %zu has an unknown type", jpath,
                           lineno);
    }
    long long seq =
        otr_json_integer_or(cJSON_GetObjectItemCaseSensitive(j, "seq"), 0, 1LL << 53, 0);
    if (seq > s->journal_seq)
        s->journal_seq = (long)seq;
    cJSON_Delete(j);
    return rc;
}

int otr_state_replay(otr_state *s, const char *text, size_t len, const char *jpath, otr_error *err)
{
    otr_buf line = OTR_BUF_INIT;
    size_t lineno = 0;
    int rc = 0;
    for (const char *p = text; p < text + len && rc == 0;) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        lineno++;
        if (!nl) {
            /* the last line has no newline: the run died while writing it,
             * before the call it announces (or after the answer it records).
             * Ignoring it is safe: an unsettled intent is finished next run. */
            break;
        }
        otr_buf_clear(&line);
        if (otr_buf_append(&line, p, (size_t)(nl - p)) < 0)
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        else if (line.len && memchr(line.ptr, '\0', line.len))
            rc = otr_error_set(err, OTR_ERR_INVALID,
                               "journal %s: line %zu holds a NUL byte; it was left as it is", jpath,
                               lineno);
        else if (line.len)
            rc = replay_line(s, line.ptr, lineno, jpath, err);
        p = nl + 1;
    }
    otr_buf_free(&line);
    return rc;
}

int otr_state_from_text(otr_state **out, const char *path, const char *snapshot, size_t slen,
                        const char *journal, size_t jlen, otr_error *err)
{
    otr_state *s = otr_state_new(path);
    *out = NULL;
    if (!s)
        return otr_error_set(err, OTR_ERR_NOMEM, OTR_STATE_NEW_FAILED);
    if (snapshot) {
        /* cJSON wants a terminated string */
        char *copy = malloc(slen + 1);
        if (!copy) {
            otr_state_free(s);
            return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        }
        memcpy(copy, snapshot, slen);
        copy[slen] = '\0';
        if (otr_state_parse_snapshot(s, copy, slen, err) < 0) {
            otr_state_free(s);
            return -1;
        }
    }
    if ((journal && otr_state_replay(s, journal, jlen, "(journal)", err) < 0) ||
        otr_state_check_ids(s, err) < 0) {
        otr_state_free(s);
        return -1;
    }
    *out = s;
    return 0;
}
