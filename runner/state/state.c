/*
 * The state file: snapshot, journal, lock (see state.h). The journal's two
 * steps are named as DESIGN section 6 names them: an intent appended and
 * fsync'd before each mutating call, a result after it; loading replays the
 * journal over the snapshot; an intent without a result is left pending for
 * the next run to finish.
 */
#include "state/state.h"

#include "manifest/schema.h"
#include "manifest/token.h"
#include "util/buf.h"
#include "util/file.h"
#include "util/json.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_STATE_BYTES ((size_t)1 << 30)
/* Reads of a snapshot that another run keeps replacing, before giving up. */
#define OTR_STATE_MAX_READ_ATTEMPTS 20
/* The lock file names its holder in a line of JSON. */
#define OTR_STATE_MAX_LOCK_BYTES 4096

static const char *const op_names[] = {"create", "update", "delete"};

const char *otr_op_name(otr_op op)
{
    return op_names[op];
}

static int op_from_name(const char *s, otr_op *op)
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, op_names[i])) {
            *op = (otr_op)i;
            return 0;
        }
    return -1;
}

/* ---- records ------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void otr_record_clear(otr_record *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->phase);
    free(r->client_token);
    cJSON_Delete(r->spec);
    free(r->spec_digest);
    free(r->task_id);
    free(r->task_arn);
    free(r->file);
    free(r->commit);
    free(r->created_at);
    free(r->updated_at);
    free(r->remote_status);
    free(r->remote_checked_at);
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
    dst->revision = src->revision;
    if (src->spec && !(dst->spec = cJSON_Duplicate(src->spec, 1)))
        goto nomem;
    if (copy_str(&dst->name, src->name) < 0 || copy_str(&dst->phase, src->phase) < 0 ||
        copy_str(&dst->client_token, src->client_token) < 0 ||
        copy_str(&dst->spec_digest, src->spec_digest) < 0 ||
        copy_str(&dst->task_id, src->task_id) < 0 || copy_str(&dst->task_arn, src->task_arn) < 0 ||
        copy_str(&dst->file, src->file) < 0 || copy_str(&dst->commit, src->commit) < 0 ||
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


static void add_str(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
}

cJSON *otr_record_to_json(const otr_record *r)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "phase", r->phase);
    add_str(o, "clientToken", r->client_token);
    if (r->revision)
        cJSON_AddNumberToObject(o, "revision", (double)r->revision);
    if (r->spec)
        cJSON_AddItemToObject(o, "spec", cJSON_Duplicate(r->spec, 1));
    add_str(o, "specDigest", r->spec_digest);
    add_str(o, "taskId", r->task_id);
    add_str(o, "taskArn", r->task_arn);
    add_str(o, "file", r->file);
    add_str(o, "commit", r->commit);
    add_str(o, "createdAt", r->created_at);
    add_str(o, "updatedAt", r->updated_at);
    if (r->remote_status) {
        cJSON *remote = cJSON_AddObjectToObject(o, "remote");
        add_str(remote, "status", r->remote_status);
        add_str(remote, "checkedAt", r->remote_checked_at);
    }
    return o;
}

/* Reads a record; what is missing or of the wrong type is named in why. A
 * snapshot's records all have a task id; an intent to create one does not
 * have it yet (in_journal). The spec is taken out of o, not copied. */
int otr_record_from_json(otr_record *r, const char *name, cJSON *o, int in_journal, otr_buf *why)
{
    memset(r, 0, sizeof(*r));
    if (!cJSON_IsObject(o)) {
        otr_buf_printf(why, "tasks.%s is not an object", name);
        return -1;
    }
    static const char *const required[] = {"phase", "specDigest", "taskId", NULL};
    for (size_t i = 0; required[i]; i++)
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, required[i])) &&
            !(in_journal && !strcmp(required[i], "taskId") &&
              !cJSON_GetObjectItemCaseSensitive(o, required[i]))) {
            otr_buf_printf(why, "tasks.%s.%s is missing or not a string", name, required[i]);
            return -1;
        }
    static const char *const optional[] = {"clientToken", "taskId",    "taskArn",   "file",
                                           "commit",      "createdAt", "updatedAt", NULL};
    for (size_t i = 0; optional[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, optional[i]);
        if (v && !cJSON_IsString(v)) {
            otr_buf_printf(why, "tasks.%s.%s is not a string", name, optional[i]);
            return -1;
        }
    }
    const char *phase = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "phase"));
    if (strcmp(phase, "created") != 0 && strcmp(phase, "imported") != 0) {
        otr_buf_printf(why, "tasks.%s.phase is \"%s\", not \"created\" or \"imported\"", name,
                       phase);
        return -1;
    }
    otr_buf name_why = OTR_BUF_INIT;
    int name_ok = otr_schema_check_name_value(name, &name_why);
    if (!name_ok)
        otr_buf_printf(why, "tasks.\"%s\" is not a manifest name (%s)", name,
                       otr_buf_cstr(&name_why));
    otr_buf_free(&name_why);
    if (!name_ok)
        return -1;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
    if (!cJSON_IsObject(spec)) {
        otr_buf_printf(why, "tasks.%s.spec is missing or not an object", name);
        return -1;
    }
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(o, "revision");
    long long revision = 1;
    if (rev && otr_json_integer(rev, 1, 2147483647LL, &revision) < 0) {
        otr_buf_printf(why, "tasks.%s.revision is not an integer from 1 to 2147483647", name);
        return -1;
    }
#define S(k) dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k)))
    r->name = strdup(name);
    r->phase = S("phase");
    r->client_token = S("clientToken");
    r->revision = (long)revision;
    r->spec = cJSON_DetachItemViaPointer(o, (cJSON *)spec); /* taken, not copied */
    r->spec_digest = S("specDigest");
    r->task_id = S("taskId");
    r->task_arn = S("taskArn");
    r->file = S("file");
    r->commit = S("commit");
    r->created_at = S("createdAt");
    r->updated_at = S("updatedAt");
#undef S
    const cJSON *remote = cJSON_GetObjectItemCaseSensitive(o, "remote");
    if (cJSON_IsObject(remote)) {
        r->remote_status =
            dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(remote, "status")));
        r->remote_checked_at = dup_or_null(
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(remote, "checkedAt")));
    }
    return 0;
}

/* ---- the record table (sorted by name) -------------------------------------- */

static size_t lower_bound(const otr_state *s, const char *name)
{
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->records[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

otr_record *otr_state_find(otr_state *s, const char *name)
{
    size_t i = lower_bound(s, name);
    return i < s->count && !strcmp(s->records[i].name, name) ? &s->records[i] : NULL;
}

/* Puts rec at its place; takes its fields (rec is left empty). */
int otr_state_put_move(otr_state *s, otr_record *rec)
{
    size_t i = lower_bound(s, rec->name);
    if (i < s->count && !strcmp(s->records[i].name, rec->name)) {
        otr_record_clear(&s->records[i]);
        s->records[i] = *rec;
        memset(rec, 0, sizeof(*rec));
        return 0;
    }
    if (s->count == s->alloc) {
        size_t n = s->alloc ? s->alloc * 2 : 64;
        otr_record *p = realloc(s->records, n * sizeof(*p));
        if (!p)
            return -1;
        s->records = p;
        s->alloc = n;
    }
    memmove(&s->records[i + 1], &s->records[i], (s->count - i) * sizeof(*s->records));
    s->count++;
    s->records[i] = *rec;
    memset(rec, 0, sizeof(*rec));
    return 0;
}

int otr_state_put(otr_state *s, const otr_record *rec)
{
    otr_record copy;
    if (otr_record_copy(&copy, rec) < 0)
        return -1;
    if (otr_state_put_move(s, &copy) < 0) {
        otr_record_clear(&copy);
        return -1;
    }
    return 0;
}

int otr_state_remove(otr_state *s, const char *name)
{
    size_t i = lower_bound(s, name);
    if (i >= s->count || strcmp(s->records[i].name, name) != 0)
        return -1;
    otr_record_clear(&s->records[i]);
    memmove(&s->records[i], &s->records[i + 1], (s->count - i - 1) * sizeof(*s->records));
    s->count--;
    return 0;
}

int otr_state_apply_result(otr_state *s, otr_op op, const otr_record *rec)
{
    if (op == OTR_OP_DELETE) {
        otr_state_remove(s, rec->name);
        return 0;
    }
    return otr_state_put(s, rec);
}

/* ---- paths ----------------------------------------------------------------------- */

static char *with_suffix(const char *path, const char *suffix)
{
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s%s", path, suffix);
    return otr_buf_detach(&b);
}

static void new_lineage(char out[40])
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (unsigned char)rand();
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80); /* variant 1 */
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

/* ---- loading --------------------------------------------------------------------- */

static int refuse(otr_error *err, const char *path, const char *what)
{
    return otr_error_set(err, OTR_ERR_INVALID,
                         "state file %s %s; it was left as it is. Restore it from %s.bak or "
                         "from version control, or move it away to start a new state",
                         path, what, path);
}

/* Takes text (NUL-terminated, freed once parsed: a 10k-task state is 9 MB
 * of text and more of tree, and the peak is the sum). */
static int parse_snapshot(otr_state *s, char *text, size_t len, otr_error *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    otr_buf why = OTR_BUF_INIT;
    int rc = -1;
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        if (!end)
            at = len;
        otr_buf_printf(&why, "is not valid JSON (at byte %zu of %zu: truncated or damaged)", at,
                       len);
        refuse(err, s->path, why.ptr);
        goto done;
    }
    free(text);
    text = NULL;
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!cJSON_IsObject(root) || !cJSON_IsString(format) ||
        strcmp(format->valuestring, OTR_STATE_FORMAT)) {
        refuse(err, s->path,
               "is not an ota-runner state file (no \"format\": \"ota-runner-state\")");
        goto done;
    }
    if (!cJSON_IsNumber(version)) {
        refuse(err, s->path, "has no version");
        goto done;
    }
    if (version->valuedouble != OTR_STATE_VERSION) {
        otr_buf_printf(&why, "has version %g, and this ota-runner reads version %d%s",
                       version->valuedouble, OTR_STATE_VERSION,
                       version->valuedouble > OTR_STATE_VERSION
                           ? " (written by a newer ota-runner: upgrade)"
                           : "");
        refuse(err, s->path, why.ptr);
        goto done;
    }
    const cJSON *lineage = cJSON_GetObjectItemCaseSensitive(root, "lineage");
    const cJSON *serial = cJSON_GetObjectItemCaseSensitive(root, "serial");
    cJSON *tasks = cJSON_GetObjectItemCaseSensitive(root, "tasks");
    if (!cJSON_IsString(lineage) || strlen(lineage->valuestring) != 36) {
        refuse(err, s->path, "has no valid lineage");
        goto done;
    }
    long long serial_value;
    if (otr_json_integer(serial, 0, 1LL << 53, &serial_value) < 0) {
        refuse(err, s->path, "has no valid serial");
        goto done;
    }
    if (!cJSON_IsObject(tasks)) {
        refuse(err, s->path, "has no \"tasks\" object");
        goto done;
    }
    snprintf(s->lineage, sizeof(s->lineage), "%s", lineage->valuestring);
    s->serial = (long)serial_value;
    s->updated_at =
        dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "updatedAt")));
    s->source = cJSON_DetachItemFromObjectCaseSensitive(root, "source");
    s->service = cJSON_DetachItemFromObjectCaseSensitive(root, "service");
    /* each task's part of the tree is freed once it is a record, so the
     * records grow into the memory the tree gives back */
    for (cJSON *t; (t = tasks->child);) {
        otr_record r;
        int bad = otr_record_from_json(&r, t->string, t, 0, &why) < 0;
        int put = bad ? 0 : otr_state_put_move(s, &r);
        otr_record_clear(&r);
        cJSON_Delete(cJSON_DetachItemViaPointer(tasks, t));
        if (bad) {
            otr_buf msg = OTR_BUF_INIT;
            otr_buf_printf(&msg, "has a bad record: %s", why.ptr);
            refuse(err, s->path, msg.ptr);
            otr_buf_free(&msg);
            goto done;
        }
        if (put < 0) {
            otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    rc = 0;
done:
    free(text);
    otr_buf_free(&why);
    cJSON_Delete(root);
    return rc;
}

static int push_pending(otr_state *s, otr_op op, const otr_record *rec)
{
    otr_intent *p = realloc(s->pending, (s->npending + 1) * sizeof(*p));
    if (!p)
        return -1;
    s->pending = p;
    p[s->npending].op = op;
    if (otr_record_copy(&p[s->npending].rec, rec) < 0)
        return -1;
    s->npending++;
    return 0;
}

/* Settles the oldest pending intent of name and op; returns it (the caller
 * clears it) or -1 when there is none. */
static int take_pending(otr_state *s, otr_op op, const char *name, otr_intent *out)
{
    for (size_t i = 0; i < s->npending; i++) {
        if (s->pending[i].op != op || strcmp(s->pending[i].rec.name, name) != 0)
            continue;
        *out = s->pending[i];
        memmove(&s->pending[i], &s->pending[i + 1], (s->npending - i - 1) * sizeof(*s->pending));
        s->npending--;
        return 0;
    }
    return -1;
}

static int replay_line(otr_state *s, const char *line, size_t lineno, const char *jpath,
                       otr_error *err)
{
    cJSON *j = cJSON_Parse(line);
    otr_op op;
    int rc = -1;
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
    const char *lineage = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "lineage"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "name"));
    long long jserial = 0;
    if (!j || !type || !lineage || !name ||
        otr_json_integer(cJSON_GetObjectItemCaseSensitive(j, "serial"), 0, 1LL << 53, &jserial) <
            0 ||
        op_from_name(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "op")), &op) < 0) {
        otr_error_set(err, OTR_ERR_INVALID,
                      "journal %s: line %zu is damaged; it was left as it "
                      "is (look at it, then move it away to continue without it)",
                      jpath, lineno);
        goto done;
    }
    if (!s->exists && s->journal_entries == 0 && strlen(lineage) < sizeof(s->lineage)) {
        /* a run that died before its first snapshot: the journal is all there
         * is of this state, so its lineage is the state's */
        snprintf(s->lineage, sizeof(s->lineage), "%s", lineage);
    }
    if (strcmp(lineage, s->lineage) != 0) {
        otr_error_set(err, OTR_ERR_INVALID,
                      "journal %s belongs to another state (lineage %s, "
                      "the state's is %s); move one of them away",
                      jpath, lineage, s->lineage);
        goto done;
    }
    if (jserial < s->serial) { /* written before the snapshot we loaded: already in it */
        rc = 0;
        goto done;
    }
    if (jserial > s->serial) {
        otr_error_set(err, OTR_ERR_INVALID,
                      "journal %s is newer (serial %lld) than the state "
                      "file (serial %ld): the state file is older than its journal; restore "
                      "the newest state file",
                      jpath, jserial, s->serial);
        goto done;
    }
    s->journal_entries++;
    if (!strcmp(type, "intent")) {
        otr_record rec;
        otr_buf why = OTR_BUF_INIT;
        cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "record");
        if (op == OTR_OP_DELETE && cJSON_IsObject(r)) {
            memset(&rec, 0, sizeof(rec));
            rec.name = strdup(name);
            rec.task_id =
                dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "taskId")));
        } else if (otr_record_from_json(&rec, name, r, 1, &why) < 0) {
            otr_error_set(err, OTR_ERR_INVALID, "journal %s: line %zu: %s", jpath, lineno, why.ptr);
            otr_buf_free(&why);
            goto done;
        }
        otr_buf_free(&why);
        rc = push_pending(s, op, &rec);
        otr_record_clear(&rec);
    } else if (!strcmp(type, "result")) {
        otr_intent in;
        if (take_pending(s, op, name, &in) < 0) {
            rc = 0; /* a result without its intent: nothing to settle */
            goto done;
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"))) {
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "taskId"));
            const char *arn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "taskArn"));
            if (id) {
                free(in.rec.task_id);
                in.rec.task_id = strdup(id);
            }
            if (arn) {
                free(in.rec.task_arn);
                in.rec.task_arn = strdup(arn);
            }
            if (otr_state_apply_result(s, op, &in.rec) < 0) {
                otr_record_clear(&in.rec);
                otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
                goto done;
            }
        }
        otr_record_clear(&in.rec);
        rc = 0;
    } else {
        otr_error_set(err, OTR_ERR_INVALID, "journal %s: line %zu has an unknown type", jpath,
                      lineno);
        goto done;
    }
    long long seq =
        otr_json_integer_or(cJSON_GetObjectItemCaseSensitive(j, "seq"), 0, 1LL << 53, 0);
    if (seq > s->journal_seq)
        s->journal_seq = (long)seq;
done:
    cJSON_Delete(j);
    return rc;
}

static int replay_text(otr_state *s, const char *text, size_t len, const char *jpath,
                       otr_error *err)
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
                               "journal %s: line %zu holds a NUL byte; it "
                               "was left as it is",
                               jpath, lineno);
        else if (line.len)
            rc = replay_line(s, line.ptr, lineno, jpath, err);
        p = nl + 1;
    }
    otr_buf_free(&line);
    return rc;
}

static int replay_journal(otr_state *s, otr_error *err)
{
    char *jpath = with_suffix(s->path, ".journal");
    otr_buf text = OTR_BUF_INIT;
    int rc = 0;
    otr_error ferr = OTR_ERROR_INIT;
    if (otr_file_read(jpath, MAX_STATE_BYTES, &text, &ferr) < 0) {
        if (ferr.code != OTR_ERR_NOTFOUND)
            rc = otr_error_set(err, ferr.code, "%s", otr_error_message(&ferr));
        otr_error_clear(&ferr);
    } else {
        rc = replay_text(s, otr_buf_cstr(&text), text.len, jpath, err);
    }
    otr_buf_free(&text);
    free(jpath);
    return rc;
}

typedef struct id_ref {
    const char *task_id;
    const char *name;
} id_ref;

static int id_ref_cmp(const void *a, const void *b)
{
    const id_ref *x = a, *y = b;
    int c = strcmp(x->task_id, y->task_id);
    return c ? c : strcmp(x->name, y->name);
}

/* One task belongs to one name: a state where two names record the same task
 * would let a plan for one of them delete the other's running task. */
static int check_unique_task_ids(const otr_state *s, otr_error *err)
{
    id_ref *refs = malloc((s->count + 1) * sizeof(*refs));
    size_t n = 0;
    int rc = 0;
    if (!refs)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->count; i++)
        if (s->records[i].task_id)
            refs[n++] = (id_ref){s->records[i].task_id, s->records[i].name};
    if (n > 1)
        qsort(refs, n, sizeof(*refs), id_ref_cmp);
    for (size_t i = 1; i < n && rc == 0; i++)
        if (!strcmp(refs[i - 1].task_id, refs[i].task_id))
            rc = otr_error_set(err, OTR_ERR_INVALID,
                               "state file %s records task %s under two names, %s and %s; one "
                               "task belongs to one manifest, so the state was left as it is. "
                               "Remove the wrong one with 'ota-runner state rm NAME'",
                               s->path, refs[i].task_id, refs[i - 1].name, refs[i].name);
    free(refs);
    return rc;
}

/* Reads the snapshot, then replays the journal over it. */
static int load_once(otr_state **out, const char *path, otr_error *err)
{
    otr_state *s = calloc(1, sizeof(*s));
    otr_buf text = OTR_BUF_INIT;
    otr_error ferr = OTR_ERROR_INIT;
    *out = NULL;
    if (!s)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    s->lock_fd = s->journal_fd = -1;
    s->path = strdup(path);
    if (!s->path) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (otr_file_read(path, MAX_STATE_BYTES, &text, &ferr) < 0) {
        if (ferr.code != OTR_ERR_NOTFOUND) {
            otr_error_set(err, ferr.code, "state file %s: %s", path, otr_error_message(&ferr));
            otr_error_clear(&ferr);
            goto fail;
        }
        otr_error_clear(&ferr);
        new_lineage(s->lineage);
    } else {
        s->exists = 1;
        size_t len = text.len;
        if (parse_snapshot(s, otr_buf_detach(&text), len, err) < 0)
            goto fail;
    }
    otr_buf_free(&text);
    if (replay_journal(s, err) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    otr_buf_free(&text);
    otr_state_free(s);
    return -1;
}

/* The snapshot file's identity: a save renames a new file into place. */
static int same_file(int had, const struct stat *a, int has, const struct stat *b)
{
    if (had != has)
        return 0;
    return !had || (a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
                    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
                    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec);
}

/* Without the lock, a run may save its snapshot (and empty its journal)
 * while this one reads them: when the snapshot changed under the read, read
 * both again, so the pair read is always one run's. */
static int load_consistent(otr_state **out, const char *path, int repair, otr_error *err)
{
    for (int attempt = 1;; attempt++) {
        struct stat before, after;
        otr_error e = OTR_ERROR_INIT;
        int had = stat(path, &before) == 0;
        int rc = load_once(out, path, &e);
        if (rc == 0 && !repair)
            rc = check_unique_task_ids(*out, &e);
        int has = stat(path, &after) == 0;
        if (same_file(had, &before, has, &after) || attempt == OTR_STATE_MAX_READ_ATTEMPTS) {
            if (rc < 0) {
                otr_state_free(*out);
                *out = NULL;
                otr_error_set(err, e.code, "%s", otr_error_message(&e));
            }
            otr_error_clear(&e);
            return rc;
        }
        otr_state_free(*out);
        *out = NULL;
        otr_error_clear(&e);
    }
}

int otr_state_load(otr_state **out, const char *path, otr_error *err)
{
    return load_consistent(out, path, 0, err);
}


/* ---- the lock ----------------------------------------------------------------------- */

/* "pid 4242 on ci-7 since ... (ota-runner apply)", from the lock file. */
static void describe_holder(const char *lpath, otr_buf *out)
{
    otr_buf holder = OTR_BUF_INIT;
    otr_error ignored = OTR_ERROR_INIT;
    otr_file_read(lpath, OTR_STATE_MAX_LOCK_BYTES, &holder, &ignored);
    otr_error_clear(&ignored);
    cJSON *h = cJSON_Parse(otr_buf_cstr(&holder));
    long long pid =
        otr_json_integer_or(cJSON_GetObjectItemCaseSensitive(h, "pid"), 0, 1LL << 31, -1);
    const char *host = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "host"));
    const char *since = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "startedAt"));
    const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "command"));
    otr_buf_printf(out, "pid %lld on %s since %s (ota-runner %s)", pid, host ? host : "?",
                   since ? since : "?", cmd ? cmd : "?");
    cJSON_Delete(h);
    otr_buf_free(&holder);
}

int otr_state_lock_holder(const char *path, otr_buf *holder)
{
    char *lpath = with_suffix(path, ".lock");
    int fd = lpath ? open(lpath, O_RDONLY | O_CLOEXEC) : -1;
    int held = 0;
    /* a shared lock is refused only while a run holds the exclusive one; it
     * is let go at once */
    if (fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
        held = 1;
        describe_holder(lpath, holder);
    }
    if (fd >= 0)
        close(fd);
    free(lpath);
    return held;
}

/* Takes FILE.lock (flock, released by the kernel when the process dies) and
 * writes its holder into it; *fd holds it. */
static int lock_file(const char *path, const char *command, int *fd_out, otr_error *err)
{
    char *lpath = with_suffix(path, ".lock");
    int fd = lpath ? open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    int rc = -1;
    *fd_out = -1;
    if (fd < 0) {
        otr_error_set(err, OTR_ERR_IO,
                      "cannot open the lock file %s: %s; check the folder's "
                      "permissions and owner",
                      lpath ? lpath : path, strerror(errno));
        goto done;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        otr_buf holder = OTR_BUF_INIT;
        describe_holder(lpath, &holder);
        otr_error_set(err, OTR_ERR_LOCKED,
                      "state %s is locked by another run: %s; try again when it has finished",
                      path, otr_buf_cstr(&holder));
        otr_buf_free(&holder);
        close(fd);
        goto done;
    }
    char host[256] = "unknown";
    gethostname(host, sizeof(host) - 1);
    char *now = otr_time_now_iso8601();
    cJSON *h = cJSON_CreateObject();
    cJSON_AddNumberToObject(h, "pid", (double)getpid());
    cJSON_AddStringToObject(h, "host", host);
    cJSON_AddStringToObject(h, "startedAt", now ? now : "");
    cJSON_AddStringToObject(h, "command", command);
    char *text = cJSON_PrintUnformatted(h);
    if (ftruncate(fd, 0) == 0 && text)
        otr_file_write_all(fd, text, strlen(text));
    free(text);
    free(now);
    cJSON_Delete(h);
    *fd_out = fd;
    rc = 0;
done:
    free(lpath);
    return rc;
}

int otr_state_open(otr_state **out, const char *path, const char *lock_for, int repair,
                   otr_error *err)
{
    int fd = -1;
    *out = NULL;
    if (lock_for && lock_file(path, lock_for, &fd, err) < 0)
        return -1;
    if (load_consistent(out, path, repair, err) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    (*out)->lock_fd = fd;
    return 0;
}

/* ---- the journal ------------------------------------------------------------------- */

static int journal_append(otr_state *s, cJSON *entry, otr_error *err)
{
    if (s->journal_fd < 0) {
        char *jpath = with_suffix(s->path, ".journal");
        s->journal_fd = open(jpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (s->journal_fd < 0) {
            otr_error_set(err, OTR_ERR_IO, "cannot open the journal %s: %s", jpath,
                          strerror(errno));
            free(jpath);
            return -1;
        }
        free(jpath);
    }
    cJSON_AddNumberToObject(entry, "seq", (double)++s->journal_seq);
    cJSON_AddStringToObject(entry, "lineage", s->lineage);
    cJSON_AddNumberToObject(entry, "serial", (double)s->serial);
    otr_canonical_sort(entry);
    char *line = cJSON_PrintUnformatted(entry);
    otr_buf b = OTR_BUF_INIT;
    int rc = -1;
    if (line && otr_buf_printf(&b, "%s\n", line) == 0 &&
        otr_file_write_all(s->journal_fd, b.ptr, b.len) == 0 && fdatasync(s->journal_fd) == 0)
        rc = 0;
    else
        otr_error_set(err, OTR_ERR_IO,
                      "cannot write the journal of %s: %s; nothing more will be "
                      "sent until it can be written",
                      s->path, strerror(errno));
    free(line);
    otr_buf_free(&b);
    return rc;
}

int otr_state_journal_intent(otr_state *s, otr_op op, const otr_record *rec, otr_error *err)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", "intent");
    cJSON_AddStringToObject(e, "op", otr_op_name(op));
    cJSON_AddStringToObject(e, "name", rec->name);
    cJSON_AddItemToObject(e, "record", otr_record_to_json(rec));
    int rc = journal_append(s, e, err);
    cJSON_Delete(e);
    if (rc == 0 && push_pending(s, op, rec) < 0)
        rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    return rc;
}

int otr_state_journal_result(otr_state *s, otr_op op, const otr_record *rec, int ok,
                             const char *error, otr_error *err)
{
    cJSON *e = cJSON_CreateObject();
    char *now = otr_time_now_iso8601();
    cJSON_AddStringToObject(e, "type", "result");
    cJSON_AddStringToObject(e, "op", otr_op_name(op));
    cJSON_AddStringToObject(e, "name", rec->name);
    cJSON_AddBoolToObject(e, "ok", ok);
    add_str(e, "taskId", rec->task_id);
    add_str(e, "taskArn", rec->task_arn);
    add_str(e, "error", error);
    add_str(e, "at", now);
    free(now);
    int rc = journal_append(s, e, err);
    cJSON_Delete(e);
    /* the outcome is applied in memory even if the journal could not take it:
     * the snapshot at the end of the run will still tell the truth */
    otr_intent in;
    if (take_pending(s, op, rec->name, &in) == 0)
        otr_record_clear(&in.rec);
    if (ok && otr_state_apply_result(s, op, rec) < 0 && rc == 0)
        rc = otr_error_set(err, OTR_ERR_NOMEM,
                           "out of memory while recording %s; the journal holds it", rec->name);
    return rc;
}

/* ---- the snapshot -------------------------------------------------------------------- */

static char *snapshot_text(const otr_state *s)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", OTR_STATE_FORMAT);
    cJSON_AddNumberToObject(root, "version", OTR_STATE_VERSION);
    cJSON_AddStringToObject(root, "lineage", s->lineage);
    cJSON_AddNumberToObject(root, "serial", (double)s->serial);
    add_str(root, "updatedAt", s->updated_at);
    if (s->source)
        cJSON_AddItemToObject(root, "source", cJSON_Duplicate(s->source, 1));
    if (s->service)
        cJSON_AddItemToObject(root, "service", cJSON_Duplicate(s->service, 1));
    cJSON *tasks = cJSON_AddObjectToObject(root, "tasks");
    for (size_t i = 0; i < s->count; i++)
        cJSON_AddItemToObject(tasks, s->records[i].name, otr_record_to_json(&s->records[i]));
    otr_canonical_sort(root);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

/* Rewrites the journal to hold only the intents still pending, against the
 * new serial (normally none: the journal is emptied). */
static int reset_journal(otr_state *s, otr_error *err)
{
    char *jpath = with_suffix(s->path, ".journal");
    int rc = 0;
    if (s->journal_fd >= 0) {
        close(s->journal_fd);
        s->journal_fd = -1;
    }
    if (s->npending == 0) {
        int fd = open(jpath, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd >= 0) {
            if (fsync(fd) < 0)
                rc = otr_error_set(err, OTR_ERR_IO, "cannot empty %s: %s", jpath, strerror(errno));
            close(fd);
        } else if (errno != ENOENT) {
            rc = otr_error_set(err, OTR_ERR_IO, "cannot empty %s: %s", jpath, strerror(errno));
        }
    } else {
        otr_buf lines = OTR_BUF_INIT;
        for (size_t i = 0; i < s->npending; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "type", "intent");
            cJSON_AddStringToObject(e, "op", otr_op_name(s->pending[i].op));
            cJSON_AddStringToObject(e, "name", s->pending[i].rec.name);
            cJSON_AddItemToObject(e, "record", otr_record_to_json(&s->pending[i].rec));
            cJSON_AddNumberToObject(e, "seq", (double)(i + 1));
            cJSON_AddStringToObject(e, "lineage", s->lineage);
            cJSON_AddNumberToObject(e, "serial", (double)s->serial);
            otr_canonical_sort(e);
            char *line = cJSON_PrintUnformatted(e);
            otr_buf_printf(&lines, "%s\n", line);
            free(line);
            cJSON_Delete(e);
        }
        rc = otr_file_write_atomic(jpath, lines.ptr, lines.len, err);
        s->journal_seq = (long)s->npending;
        otr_buf_free(&lines);
    }
    free(jpath);
    return rc;
}

int otr_state_save(otr_state *s, const cJSON *source, const cJSON *service, otr_error *err)
{
    char *bak = with_suffix(s->path, ".bak");
    char *text = NULL;
    int rc = -1;
    s->serial++;
    free(s->updated_at);
    s->updated_at = otr_time_now_iso8601();
    if (source) {
        cJSON_Delete(s->source);
        s->source = cJSON_Duplicate(source, 1);
    }
    if (service) {
        cJSON_Delete(s->service);
        s->service = cJSON_Duplicate(service, 1);
    }
    text = snapshot_text(s);
    if (!text) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto fail;
    }
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s\n", text);
    /* keep the previous snapshot as FILE.bak (a hard link: no copy, no gap) */
    if (s->exists) {
        unlink(bak);
        if (link(s->path, bak) < 0 && errno != ENOENT && errno != EEXIST) {
            otr_error_set(err, OTR_ERR_IO, "cannot keep the previous state as %s: %s", bak,
                          strerror(errno));
            otr_buf_free(&b);
            goto fail;
        }
    }
    rc = otr_file_write_atomic(s->path, b.ptr, b.len, err);
    otr_buf_free(&b);
    if (rc < 0) {
        otr_error_prefix(err, "cannot save the state");
        goto fail;
    }
    s->exists = 1;
    rc = reset_journal(s, err);
    s->journal_entries = 0;
    goto done;
fail:
    s->serial--;
    rc = -1;
done:
    free(text);
    free(bak);
    return rc;
}

int otr_state_from_text(otr_state **out, const char *path, const char *snapshot, size_t slen,
                        const char *journal, size_t jlen, otr_error *err)
{
    otr_state *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (!s)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    s->lock_fd = s->journal_fd = -1;
    s->path = strdup(path);
    if (snapshot) {
        s->exists = 1;
        /* cJSON wants a terminated string */
        char *copy = malloc(slen + 1);
        if (!copy) {
            otr_state_free(s);
            return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        }
        memcpy(copy, snapshot, slen);
        copy[slen] = '\0';
        if (parse_snapshot(s, copy, slen, err) < 0) {
            otr_state_free(s);
            return -1;
        }
    } else {
        new_lineage(s->lineage);
    }
    if ((journal && replay_text(s, journal, jlen, "(journal)", err) < 0) ||
        check_unique_task_ids(s, err) < 0) {
        otr_state_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void otr_state_free(otr_state *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++)
        otr_record_clear(&s->records[i]);
    free(s->records);
    for (size_t i = 0; i < s->npending; i++)
        otr_record_clear(&s->pending[i].rec);
    free(s->pending);
    if (s->journal_fd >= 0)
        close(s->journal_fd);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    cJSON_Delete(s->source);
    cJSON_Delete(s->service);
    free(s->updated_at);
    free(s->path);
    free(s);
}
