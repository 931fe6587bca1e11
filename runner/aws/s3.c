/* S3 objects for the state backend (see s3.h). */
#include "aws/s3.h"

#include "aws/client.h"
#include "aws/endpoint.h"
#include "aws/profile.h"
#include "aws/xml.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The length S3 allows a key, in bytes. */
#define S3_MAX_KEY 1024
/* The largest ListObjectsV2 answer read (1,000 keys of 1,024 bytes, and room). */
#define S3_MAX_LIST_ANSWER ((size_t)4 << 20)
/* Requests to the bucket in flight at once (a batch of journal entries). */
#define S3_PARALLELISM 32
/* One request to the state bucket, when --request-timeout does not say. */
#define S3_REQUEST_TIMEOUT_MS 30000

struct otr_s3 {
    otr_s3_url url;
    char *region;
    char *endpoint;
    int path_style;
    otr_creds_provider *creds;
    otr_aws_client *client;
};

/* ---- the URL -------------------------------------------------------------------- */

int otr_s3_is_url(const char *text)
{
    return text && !strncmp(text, "s3://", 5);
}

void otr_s3_url_clear(otr_s3_url *u)
{
    free(u->bucket);
    free(u->key);
    free(u->region);
    free(u->sse);
    free(u->kms_key_id);
    memset(u, 0, sizeof(*u));
}

/* S3's rules for a bucket name: 3-63 of [a-z0-9.-], starting and ending
 * with a letter or digit. */
static int bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63 || b[0] == '.' || b[0] == '-' || b[n - 1] == '.' || b[n - 1] == '-')
        return 0;
    return strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n;
}

static int set_param(otr_s3_url *u, const char *name, size_t nlen, const char *value,
                     otr_error *err)
{
    char **slot = NULL;
    if (nlen == 6 && !strncmp(name, "region", 6))
        slot = &u->region;
    else if (nlen == 3 && !strncmp(name, "sse", 3))
        slot = &u->sse;
    else if (nlen == 10 && !strncmp(name, "kms_key_id", 10))
        slot = &u->kms_key_id;
    else if (nlen == 10 && !strncmp(name, "path_style", 10)) {
        if (strcmp(value, "true") && strcmp(value, "false"))
            return otr_error_set(err, OTR_ERR_USAGE, "path_style=%s: use true or false", value);
        u->path_style = !strcmp(value, "true");
        return 0;
    }
    if (!slot)
        return otr_error_set(err, OTR_ERR_USAGE,
                             "unknown parameter \"%.*s\": use region, path_style, sse or "
                             "kms_key_id",
                             (int)nlen, name);
    free(*slot);
    *slot = strdup(value);
    return *slot ? 0 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
}

/* Has the key a "." or ".." segment? libcurl removes them from the path it
 * sends, so the object written would not be the one the key names (and the
 * journal's listing, by the literal prefix, would miss it). */
static int dot_segment(const char *key)
{
    for (const char *p = key; *p;) {
        size_t len = strcspn(p, "/");
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return 1;
        p += len + (p[len] == '/');
    }
    return 0;
}

int otr_s3_url_parse(otr_s3_url *u, const char *text, otr_error *err)
{
    memset(u, 0, sizeof(*u));
    if (!otr_s3_is_url(text))
        return otr_error_set(err, OTR_ERR_USAGE, "%s is not an s3:// URL", text);
    const char *b = text + 5, *slash = strchr(b, '/'), *q = strchr(b, '?');
    if (!slash || (q && q < slash) || slash == b)
        return otr_error_set(err, OTR_ERR_USAGE, "%s: say s3://BUCKET/KEY", text);
    u->bucket = strndup(b, (size_t)(slash - b));
    u->key = q ? strndup(slash + 1, (size_t)(q - slash - 1)) : strdup(slash + 1);
    if (!u->bucket || !u->key) {
        otr_s3_url_clear(u);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    int rc = 0;
    if (!bucket_ok(u->bucket))
        rc = otr_error_set(err, OTR_ERR_USAGE,
                           "%s: the bucket name \"%s\" is not one S3 allows (3-63 lower-case "
                           "letters, digits, '.' and '-')",
                           text, u->bucket);
    else if (!*u->key || strlen(u->key) > S3_MAX_KEY - 64 || u->key[strlen(u->key) - 1] == '/')
        rc = otr_error_set(err, OTR_ERR_USAGE,
                           "%s: the key must name an object (not empty, not ending in '/', "
                           "at most %d bytes)",
                           text, S3_MAX_KEY - 64);
    else if (dot_segment(u->key))
        rc = otr_error_set(err, OTR_ERR_USAGE,
                           "%s: the key has a \".\" or \"..\" segment, which HTTP clients "
                           "resolve away (x/../y.json is sent as y.json): name the object "
                           "without them",
                           text);
    for (const char *p = q ? q + 1 : NULL; rc == 0 && p && *p;) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        if (!eq) {
            rc = otr_error_set(err, OTR_ERR_USAGE, "%s: say NAME=VALUE in the query", text);
            break;
        }
        char *value = strndup(eq + 1, len - (size_t)(eq - p) - 1);
        rc = value ? set_param(u, p, (size_t)(eq - p), value, err)
                   : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        free(value);
        p += len + (p[len] == '&');
    }
    if (rc == 0 && u->kms_key_id && !u->sse)
        rc = otr_error_set(err, OTR_ERR_USAGE, "%s: kms_key_id needs sse=aws:kms", text);
    if (rc == 0 && u->sse && strcmp(u->sse, "aws:kms") && strcmp(u->sse, "AES256") &&
        strcmp(u->sse, "aws:kms:dsse"))
        rc = otr_error_set(err, OTR_ERR_USAGE, "%s: sse=%s: use aws:kms, aws:kms:dsse or AES256",
                           text, u->sse);
    if (rc < 0)
        otr_s3_url_clear(u);
    return rc;
}

/* ---- the bucket ----------------------------------------------------------------- */

static int copy_url(otr_s3_url *dst, const otr_s3_url *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->bucket = strdup(src->bucket);
    dst->key = strdup(src->key);
    dst->region = src->region ? strdup(src->region) : NULL;
    dst->sse = src->sse ? strdup(src->sse) : NULL;
    dst->kms_key_id = src->kms_key_id ? strdup(src->kms_key_id) : NULL;
    dst->path_style = src->path_style;
    return dst->bucket && dst->key && (!src->region || dst->region) && (!src->sse || dst->sse) &&
                   (!src->kms_key_id || dst->kms_key_id)
               ? 0
               : -1;
}

/* The endpoint: a custom one (path-style), or AWS's for the bucket. */
static int resolve_endpoint(otr_s3 *s, otr_error *err)
{
    const char *what = "AWS_ENDPOINT_URL_S3", *url = getenv(what);
    otr_buf b = OTR_BUF_INIT;
    if (!url || !*url) {
        what = "AWS_ENDPOINT_URL";
        url = getenv(what);
    }
    if (url && *url) {
        char *bare = otr_url_redact(url); /* userinfo: never used (SigV4 signs) nor shown */
        if (!bare)
            return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        otr_buf_puts(&b, bare);
        free(bare);
        s->path_style = 1;
    } else {
        what = "the S3 endpoint";
        s->path_style = s->url.path_style || strchr(s->url.bucket, '.') != NULL;
        if (s->path_style)
            otr_buf_printf(&b, "https://s3.%s.amazonaws.com", s->region);
        else
            otr_buf_printf(&b, "https://%s.s3.%s.amazonaws.com", s->url.bucket, s->region);
    }
    while (b.len && b.ptr[b.len - 1] == '/')
        b.ptr[--b.len] = '\0';
    if (otr_buf_failed(&b)) {
        otr_buf_free(&b);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    if (otr_endpoint_check(b.ptr, what, err) < 0) {
        otr_buf_free(&b);
        return -1;
    }
    s->endpoint = otr_buf_detach(&b);
    return 0;
}

int otr_s3_open(otr_s3 **out, const otr_s3_url *u, const otr_s3_options *o, otr_error *err)
{
    otr_s3 *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (!s || copy_url(&s->url, u) < 0) {
        otr_s3_close(s);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    s->region = u->region ? strdup(u->region) : otr_region_resolve(o->region, o->profile);
    if (!s->region) {
        otr_s3_close(s);
        return otr_error_set(err, OTR_ERR_USAGE,
                             "no region for the state bucket %s: add ?region=R to the state URL, "
                             "or use --region, AWS_REGION or a profile's region",
                             u->bucket);
    }
    if (resolve_endpoint(s, err) < 0)
        goto fail;
    otr_aws_options ao = {
        .endpoint = s->endpoint,
        .region = s->region,
        .service = "s3",
        .max_attempts = o->max_attempts,
        .adaptive = o->adaptive,
        .parallelism = S3_PARALLELISM,
        .connect_timeout_ms = o->connect_timeout_ms,
        .request_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms : S3_REQUEST_TIMEOUT_MS,
        .creds = o->creds,
    };
    if (o->creds ? otr_aws_client_new(&s->client, &ao, err) < 0
                 : otr_aws_client_open(&s->client, &s->creds, ao, o->profile, err) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    otr_s3_close(s);
    return -1;
}

void otr_s3_close(otr_s3 *s)
{
    if (!s)
        return;
    otr_aws_client_free(s->client);
    otr_creds_provider_free(s->creds);
    otr_s3_url_clear(&s->url);
    free(s->region);
    free(s->endpoint);
    free(s);
}

void otr_s3_name(const otr_s3 *s, const char *key, otr_buf *out)
{
    otr_buf_printf(out, "s3://%s/%s", s->url.bucket, key);
}

const char *otr_s3_key(const otr_s3 *s)
{
    return s->url.key;
}

/* ---- calls ---------------------------------------------------------------------- */

/* Percent-encodes s but for unreserved characters (and '/' when keep_slash). */
static void encode(otr_buf *out, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/'))
            otr_buf_putc(out, (char)*p);
        else
            otr_buf_printf(out, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
    }
}

/* A call on key (NULL: the bucket) in the bucket's addressing. */
static otr_aws_call *new_call(otr_s3 *s, const char *operation, const char *method, const char *key,
                              const char *body, size_t len)
{
    otr_buf path = OTR_BUF_INIT;
    if (s->path_style) {
        otr_buf_putc(&path, '/');
        encode(&path, s->url.bucket, 0);
    }
    otr_buf_putc(&path, '/');
    if (key)
        encode(&path, key, 1);
    otr_aws_call *call =
        otr_buf_failed(&path) ? NULL : otr_aws_call_new(operation, method, NULL, "%s", path.ptr);
    otr_buf_free(&path);
    if (call && body) {
        call->body = malloc(len + 1);
        if (!call->body) {
            otr_aws_call_free(call);
            return NULL;
        }
        memcpy(call->body, body, len);
        call->body[len] = '\0';
        call->body_len = len;
    }
    if (call)
        call->response.cap = S3_MAX_LIST_ANSWER;
    return call;
}

static int run(otr_s3 *s, otr_aws_call *call, const char *key, otr_error *err)
{
    otr_error e = OTR_ERROR_INIT;
    otr_aws_client_submit(s->client, call);
    if (otr_aws_client_run(s->client, &e) < 0) {
        otr_buf name = OTR_BUF_INIT;
        otr_s3_name(s, key ? key : "", &name);
        otr_error_set(err, e.code, "%s: %s", otr_buf_cstr(&name), otr_error_message(&e));
        otr_buf_free(&name);
        otr_error_clear(&e);
        return -1;
    }
    return 0;
}

/* What a finished call says: ok, a refused condition, absent, or -1 with err. */
static int outcome(otr_s3 *s, otr_aws_call *call, const char *key, otr_error *err)
{
    if (call->ok)
        return OTR_S3_OK;
    if (call->status == 412 || (call->status == 409 && call->error_type &&
                                !strcmp(call->error_type, "ConditionalRequestConflict")))
        return OTR_S3_PRECONDITION;
    if (call->status == 404 && call->error_type && !strcmp(call->error_type, "NoSuchKey"))
        return OTR_S3_NOT_FOUND;
    otr_buf name = OTR_BUF_INIT, what = OTR_BUF_INIT;
    otr_s3_name(s, key ? key : "", &name);
    otr_aws_call_describe(call, &what);
    otr_error_set(err, OTR_ERR_IO, "%s: %s", otr_buf_cstr(&name), otr_buf_cstr(&what));
    otr_buf_free(&name);
    otr_buf_free(&what);
    return -1;
}

/* Sends call about key, once its headers are set (headers_failed: one could
 * not be added), and says what came of it: OTR_S3_OK, _PRECONDITION,
 * _NOT_FOUND, or -1 with err. The caller reads the answer and frees call. */
static int send_call(otr_s3 *s, otr_aws_call *call, const char *key, int headers_failed,
                     otr_error *err)
{
    if (headers_failed)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    if (run(s, call, key, err) < 0)
        return -1;
    return outcome(s, call, key, err);
}

/* The server-side encryption the URL asks for; non-zero when a header could
 * not be added. */
static int add_sse(const otr_s3 *s, otr_aws_call *call)
{
    int rc = 0;
    if (s->url.sse)
        rc |= otr_headers_add(&call->headers, "x-amz-server-side-encryption", s->url.sse);
    if (s->url.kms_key_id)
        rc |= otr_headers_add(&call->headers, "x-amz-server-side-encryption-aws-kms-key-id",
                              s->url.kms_key_id);
    return rc;
}

static void copy_etag(char out[OTR_S3_ETAG_MAX], const otr_aws_call *call)
{
    const char *etag = otr_headers_get(&call->reply_headers, "ETag");
    snprintf(out, OTR_S3_ETAG_MAX, "%s", etag && strlen(etag) < OTR_S3_ETAG_MAX ? etag : "");
}

static long long http_date(const otr_aws_call *call, const char *header)
{
    const char *v = otr_headers_get(&call->reply_headers, header);
    time_t t = v ? curl_getdate(v, NULL) : -1;
    return t < 0 ? 0 : (long long)t;
}

void otr_s3_object_clear(otr_s3_object *obj)
{
    otr_buf_free(&obj->body);
    memset(obj, 0, sizeof(*obj));
}

int otr_s3_get(otr_s3 *s, const char *key, size_t max, otr_s3_object *obj, otr_error *err)
{
    otr_aws_call *call = new_call(s, "GetObject", "GET", key, NULL, 0);
    int rc;
    otr_s3_object_clear(obj);
    if (!call)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    call->response.cap = max + 1;
    rc = send_call(s, call, key, 0, err);
    if (rc == OTR_S3_OK) {
        copy_etag(obj->etag, call);
        obj->last_modified = http_date(call, "Last-Modified");
        obj->date = http_date(call, "Date");
        obj->body = call->response;
        memset(&call->response, 0, sizeof(call->response));
    }
    otr_aws_call_free(call);
    return rc;
}

/* base64 of the body's SHA-256, for x-amz-checksum-sha256. */
static void checksum(char out[48], const char *body, size_t len)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)body, len, digest);
    EVP_EncodeBlock((unsigned char *)out, digest, SHA256_DIGEST_LENGTH);
}

/* A PutObject of body under key, with its checksum and the URL's
 * encryption, conditional as asked; NULL without memory. */
static otr_aws_call *put_call(otr_s3 *s, const char *key, const char *body, size_t len,
                              const char *if_match, int if_none_match)
{
    otr_aws_call *call = new_call(s, "PutObject", "PUT", key, body, len);
    char sum[48];
    int rc = 0;
    if (!call)
        return NULL;
    checksum(sum, body, len);
    rc |= otr_headers_add(&call->headers, "Content-Type", "application/json");
    rc |= otr_headers_add(&call->headers, "x-amz-checksum-sha256", sum);
    if (if_match)
        rc |= otr_headers_add(&call->headers, "If-Match", if_match);
    if (if_none_match)
        rc |= otr_headers_add(&call->headers, "If-None-Match", "*");
    if (rc | add_sse(s, call)) {
        otr_aws_call_free(call);
        return NULL;
    }
    return call;
}

int otr_s3_put(otr_s3 *s, const char *key, const char *body, size_t len, const char *if_match,
               int if_none_match, char etag[OTR_S3_ETAG_MAX], otr_error *err)
{
    otr_aws_call *call = put_call(s, key, body, len, if_match, if_none_match);
    if (!call)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    int rc = send_call(s, call, key, 0, err);
    if (rc == OTR_S3_OK && etag)
        copy_etag(etag, call);
    otr_aws_call_free(call);
    return rc == OTR_S3_NOT_FOUND ? OTR_S3_PRECONDITION : rc;
}

int otr_s3_create_many(otr_s3 *s, char *const *keys, const char *const *bodies, const size_t *lens,
                       size_t n, otr_error *err)
{
    otr_aws_call **calls = calloc(n + 1, sizeof(*calls));
    int rc = calls ? 0 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!(calls[i] = put_call(s, keys[i], bodies[i], lens[i], NULL, 1)))
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        else
            otr_aws_client_submit(s->client, calls[i]);
    }
    /* run even after a failure: the client must not keep calls freed below */
    otr_error e = OTR_ERROR_INIT;
    if (calls && otr_aws_client_run(s->client, &e) < 0 && rc == 0)
        rc = otr_error_set(err, e.code, "%s", otr_error_message(&e));
    otr_error_clear(&e);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int r = outcome(s, calls[i], keys[i], err);
        if (r != OTR_S3_OK)
            rc = r < 0 ? -1
                       : otr_error_set(err, OTR_ERR_IO, "s3://%s/%s is there already",
                                       s->url.bucket, keys[i]);
    }
    for (size_t i = 0; calls && i < n; i++)
        otr_aws_call_free(calls[i]);
    free(calls);
    return rc;
}

int otr_s3_delete(otr_s3 *s, const char *key, const char *if_match, otr_error *err)
{
    otr_aws_call *call = new_call(s, "DeleteObject", "DELETE", key, NULL, 0);
    if (!call)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    int rc = send_call(s, call, key,
                       if_match && otr_headers_add(&call->headers, "If-Match", if_match) < 0, err);
    otr_aws_call_free(call);
    return rc == OTR_S3_NOT_FOUND ? OTR_S3_OK : rc;
}

/* XML's special characters, written as entities (a key in DeleteObjects). */
static const otr_escape xml_escapes[] = {{'&', "&amp;"}, {'<', "&lt;"}, {'>', "&gt;"}, {0, NULL}};

/* base64 of the body's MD5, for Content-MD5 (DeleteObjects requires it). */
static int content_md5(char out[32], const char *body, size_t len)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(body, len, digest, &n, EVP_md5(), NULL) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, digest, (int)n);
    return 0;
}

/* Where the first <Error> of a DeleteObjects answer starts, or (size_t)-1. */
static size_t error_element(const otr_buf *answer)
{
    static const char tag[] = "<Error>";
    for (size_t i = 0; answer->ptr && i + sizeof(tag) - 1 <= answer->len; i++)
        if (!memcmp(answer->ptr + i, tag, sizeof(tag) - 1))
            return i;
    return (size_t)-1;
}

/* One DeleteObjects request for keys[0, n). */
static int delete_batch(otr_s3 *s, char *const *keys, size_t n, otr_error *err)
{
    otr_buf body = OTR_BUF_INIT;
    char md5[32];
    otr_buf_puts(&body, "<Delete><Quiet>true</Quiet>");
    for (size_t i = 0; i < n; i++) {
        otr_buf_puts(&body, "<Object><Key>");
        otr_buf_put_escaped(&body, keys[i], xml_escapes);
        otr_buf_puts(&body, "</Key></Object>");
    }
    otr_buf_puts(&body, "</Delete>");
    otr_aws_call *call = otr_buf_failed(&body)
                             ? NULL
                             : new_call(s, "DeleteObjects", "POST", NULL, body.ptr, body.len);
    int rc =
        !call
            ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory")
            : send_call(s, call, keys[0],
                        content_md5(md5, body.ptr, body.len) < 0 ||
                            otr_aws_call_set_query(call, "delete=") < 0 ||
                            otr_headers_add(&call->headers, "Content-MD5", md5) < 0 ||
                            otr_headers_add(&call->headers, "Content-Type", "application/xml") < 0,
                        err);
    /* the answer's <Error> elements name the keys that were not deleted */
    size_t at = rc == OTR_S3_OK ? error_element(&call->response) : (size_t)-1;
    char *failed =
        at != (size_t)-1 ? otr_xml_next(call->response.ptr, call->response.len, &at, "Key") : NULL;
    if (failed) {
        char *code = otr_xml_next(call->response.ptr, call->response.len, &at, "Code");
        rc = otr_error_set(err, OTR_ERR_IO, "cannot delete s3://%s/%s: %s", s->url.bucket, failed,
                           code ? code : "refused");
        free(code);
        free(failed);
    } else if (rc > 0) {
        rc = otr_error_set(err, OTR_ERR_IO, "DeleteObjects on s3://%s was refused", s->url.bucket);
    }
    otr_aws_call_free(call);
    otr_buf_free(&body);
    return rc;
}

int otr_s3_delete_many(otr_s3 *s, char *const *keys, size_t n, otr_error *err)
{
    for (size_t i = 0; i < n; i += OTR_S3_DELETE_BATCH)
        if (delete_batch(s, keys + i, n - i < OTR_S3_DELETE_BATCH ? n - i : OTR_S3_DELETE_BATCH,
                         err) < 0)
            return -1;
    return 0;
}

int otr_s3_copy(otr_s3 *s, const char *from, const char *to, const char *if_match, otr_error *err)
{
    otr_aws_call *call = new_call(s, "CopyObject", "PUT", to, NULL, 0);
    otr_buf source = OTR_BUF_INIT;
    int rc = 0;
    if (!call)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    otr_buf_putc(&source, '/');
    encode(&source, s->url.bucket, 0);
    otr_buf_putc(&source, '/');
    encode(&source, from, 1);
    rc |= otr_buf_failed(&source);
    rc |= otr_headers_add(&call->headers, "x-amz-copy-source", otr_buf_cstr(&source));
    if (if_match)
        rc |= otr_headers_add(&call->headers, "x-amz-copy-source-if-match", if_match);
    otr_buf_free(&source);
    rc = send_call(s, call, from, rc | add_sse(s, call), err);
    /* a copy can fail after its 200 (S3 says so in the body) */
    char *etag =
        rc == OTR_S3_OK ? otr_xml_first(call->response.ptr, call->response.len, "ETag") : NULL;
    if (rc == OTR_S3_OK && !etag) {
        char *code = otr_xml_first(call->response.ptr, call->response.len, "Code");
        rc = otr_error_set(err, OTR_ERR_IO, "copying %s to %s failed: %s", from, to,
                           code ? code : "no ETag in the answer");
        free(code);
    }
    free(etag);
    otr_aws_call_free(call);
    return rc;
}

int otr_s3_parse_list(const char *body, size_t len, char ***keys, size_t *n, char **next)
{
    size_t pos = 0;
    char *key;
    *next = NULL;
    char *truncated = otr_xml_first(body, len, "IsTruncated");
    if (!truncated || (strcmp(truncated, "true") && strcmp(truncated, "false"))) {
        free(truncated);
        return -1;
    }
    int more = !strcmp(truncated, "true");
    free(truncated);
    while ((key = otr_xml_next(body, len, &pos, "Key"))) {
        char **grown = realloc(*keys, (*n + 1) * sizeof(**keys));
        if (!grown) {
            free(key);
            return -1;
        }
        *keys = grown;
        (*keys)[(*n)++] = key;
    }
    if (more && !(*next = otr_xml_first(body, len, "NextContinuationToken")))
        return -1;
    return 0;
}

int otr_s3_list(otr_s3 *s, const char *prefix, char ***keys, size_t *n, otr_error *err)
{
    char *token = NULL;
    int rc = 0;
    *keys = NULL;
    *n = 0;
    for (int page = 0; rc == 0; page++) {
        otr_aws_call *call = new_call(s, "ListObjectsV2", "GET", NULL, NULL, 0);
        otr_buf q = OTR_BUF_INIT;
        if (!call) {
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
            break;
        }
        if (token) {
            otr_buf_puts(&q, "continuation-token=");
            encode(&q, token, 0);
            otr_buf_putc(&q, '&');
        }
        otr_buf_printf(&q, "list-type=2&max-keys=%d&prefix=", OTR_S3_LIST_PAGE);
        encode(&q, prefix, 0);
        rc = send_call(s, call, prefix,
                       otr_buf_failed(&q) || otr_aws_call_set_query(call, q.ptr) < 0, err);
        otr_buf_free(&q);
        free(token);
        token = NULL;
        if (rc == OTR_S3_OK &&
            otr_s3_parse_list(call->response.ptr, call->response.len, keys, n, &token) < 0)
            rc = otr_error_set(err, OTR_ERR_IO,
                               "listing s3://%s/%s*: the answer is not a ListObjectsV2 answer",
                               s->url.bucket, prefix);
        else if (rc > 0)
            rc = otr_error_set(err, OTR_ERR_IO, "listing s3://%s/%s*: the bucket is not there",
                               s->url.bucket, prefix);
        otr_aws_call_free(call);
        if (!token)
            break;
    }
    free(token);
    if (rc < 0) {
        for (size_t i = 0; i < *n; i++)
            free((*keys)[i]);
        free(*keys);
        *keys = NULL;
        *n = 0;
    }
    return rc;
}
