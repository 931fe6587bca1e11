/*
 * SigV4, header form. The steps are named as in the AWS documentation
 * ("Create a canonical request", "Create a string to sign", "Calculate the
 * signature", "Add the signature to the request").
 */
#include "aws/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void otr_credentials_clear(otr_credentials *c)
{
    if (!c)
        return;
    free(c->access_key_id);
    otr_free_secret(c->secret_access_key);
    otr_free_secret(c->session_token);
    free(c->source);
    memset(c, 0, sizeof(*c));
}

void otr_sha256_hex(char out[65], const void *data, size_t len)
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    otr_hex(out, md, sizeof(md));
}

void otr_sigv4_amz_date(char out[17], time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* Unreserved characters (RFC 3986) are never encoded. */
static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static int uri_encode(otr_buf *out, const char *s, size_t len, int keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            if (otr_buf_putc(out, (char)c) < 0)
                return -1;
        } else {
            char e[3] = {'%', digits[c >> 4], digits[c & 15]};
            if (otr_buf_append(out, e, 3) < 0)
                return -1;
        }
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into out ("+" stays "+": this is not a form). */
static int uri_decode(otr_buf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            if (otr_buf_putc(out, (char)(hi * 16 + lo)) < 0)
                return -1;
            i += 2;
        } else if (otr_buf_putc(out, s[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

/* RFC 3986 5.2.4 "Remove Dot Segments", and empty segments removed too, as
 * AWS services require: "//a/./b/../c/" -> "/a/c/". */
static int normalize_path(otr_buf *out, const char *path)
{
    size_t len = strlen(path);
    const char **seg = malloc((len / 2 + 2) * sizeof(*seg));
    size_t *seglen = malloc((len / 2 + 2) * sizeof(*seglen));
    size_t n = 0;
    int rc = 0;
    if (!seg || !seglen) {
        free(seg);
        free(seglen);
        return -1;
    }
    for (const char *p = path; *p;) {
        const char *end = strchr(p, '/');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        if (l == 0 || (l == 1 && p[0] == '.')) {
            /* skip */
        } else if (l == 2 && p[0] == '.' && p[1] == '.') {
            if (n)
                n--;
        } else {
            seg[n] = p;
            seglen[n++] = l;
        }
        p += l;
        if (*p == '/')
            p++;
    }
    if (path[0] == '/')
        rc |= otr_buf_putc(out, '/');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rc |= otr_buf_putc(out, '/');
        rc |= otr_buf_append(out, seg[i], seglen[i]);
    }
    if (n && len && path[len - 1] == '/')
        rc |= otr_buf_putc(out, '/');
    free(seg);
    free(seglen);
    return rc ? -1 : 0;
}

static int canonical_uri(otr_buf *out, const char *path, int normalize)
{
    otr_buf norm = OTR_BUF_INIT;
    int rc;
    if (!path || !*path)
        path = "/";
    if (normalize == OTR_SIGV4_URI_AS_SENT)
        return otr_buf_puts(out, path);
    if (normalize == OTR_SIGV4_URI_NORMALIZED) {
        rc = normalize_path(&norm, path);
        if (rc == 0 && norm.len == 0)
            rc = otr_buf_putc(&norm, '/');
    } else {
        rc = otr_buf_puts(&norm, path);
    }
    if (rc == 0)
        rc = uri_encode(out, norm.ptr, norm.len, 1);
    otr_buf_free(&norm);
    return rc;
}

typedef struct qpair {
    char *key;
    char *value;
} qpair;

static int qpair_cmp(const void *a, const void *b)
{
    const qpair *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

/* Each key and value decoded, then encoded the one canonical way, then
 * sorted by key and value: "b=2&a=1&a=0" -> "a=0&a=1&b=2"; "k" -> "k=". */
static int canonical_query(otr_buf *out, const char *query)
{
    if (!query || !*query)
        return 0;
    size_t n = 1;
    for (const char *p = query; *p; p++)
        n += *p == '&';
    qpair *pairs = calloc(n, sizeof(*pairs));
    if (!pairs)
        return -1;
    size_t count = 0;
    int rc = 0;
    for (const char *p = query; rc == 0;) {
        const char *end = strchr(p, '&');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        { /* an empty pair ("a&&b") counts as "=", as botocore counts it */
            const char *eq = memchr(p, '=', l);
            size_t kl = eq ? (size_t)(eq - p) : l;
            otr_buf k = OTR_BUF_INIT, v = OTR_BUF_INIT, ek = OTR_BUF_INIT, ev = OTR_BUF_INIT;
            rc |= uri_decode(&k, p, kl);
            if (eq)
                rc |= uri_decode(&v, eq + 1, l - kl - 1);
            rc |= uri_encode(&ek, otr_buf_cstr(&k), k.len, 0);
            rc |= uri_encode(&ev, otr_buf_cstr(&v), v.len, 0);
            pairs[count].key = otr_buf_detach(&ek);
            pairs[count].value = otr_buf_detach(&ev);
            count++;
            otr_buf_free(&k);
            otr_buf_free(&v);
        }
        if (!end)
            break;
        p = end + 1;
    }
    if (count > 1)
        qsort(pairs, count, sizeof(*pairs), qpair_cmp);
    for (size_t i = 0; i < count; i++) {
        if (rc == 0)
            rc = otr_buf_printf(out, "%s%s=%s", i ? "&" : "", pairs[i].key, pairs[i].value);
        free(pairs[i].key);
        free(pairs[i].value);
    }
    free(pairs);
    return rc;
}

/* Hop-by-hop headers, and those a proxy or the client may rewrite. */
static int unsigned_header(const char *lname)
{
    static const char *const skip[] = {"connection",
                                       "expect",
                                       "keep-alive",
                                       "proxy-authenticate",
                                       "proxy-authorization",
                                       "te",
                                       "trailer",
                                       "transfer-encoding",
                                       "upgrade",
                                       "user-agent",
                                       "x-amzn-trace-id",
                                       "authorization",
                                       NULL};
    for (size_t i = 0; skip[i]; i++)
        if (!strcmp(lname, skip[i]))
            return 1;
    return 0;
}

typedef struct hentry {
    char *lname;
    const char *value;
    size_t order;
} hentry;

static int hentry_cmp(const void *a, const void *b)
{
    const hentry *x = a, *y = b;
    int c = strcmp(x->lname, y->lname);
    return c ? c : (x->order < y->order ? -1 : x->order > y->order);
}

/* Trimall: no whitespace before or after, inner runs folded to one space. */
static int trimall(otr_buf *out, const char *v)
{
    int pending = 0, any = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r' || *v == '\v' || *v == '\f') {
            pending = any;
            continue;
        }
        if (pending && otr_buf_putc(out, ' ') < 0)
            return -1;
        pending = 0;
        any = 1;
        if (otr_buf_putc(out, *v) < 0)
            return -1;
    }
    return 0;
}

/* Canonical headers and the signed-header list: names lowercased and sorted,
 * the values of a repeated name joined with ',' in the order sent. */
static int canonical_headers(otr_buf *out, otr_buf *signed_headers, const otr_headers *h)
{
    hentry *e = calloc(h->count + 1, sizeof(*e));
    size_t n = 0;
    int rc = 0;
    if (!e)
        return -1;
    for (size_t i = 0; i < h->count; i++) {
        char *l = strdup(h->items[i].name);
        if (!l) {
            rc = -1;
            break;
        }
        for (char *p = l; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        if (unsigned_header(l)) {
            free(l);
            continue;
        }
        e[n].lname = l;
        e[n].value = h->items[i].value;
        e[n].order = i;
        n++;
    }
    if (n > 1)
        qsort(e, n, sizeof(*e), hentry_cmp);
    for (size_t i = 0; i < n && rc == 0; i++) {
        int first = i == 0 || strcmp(e[i - 1].lname, e[i].lname) != 0;
        if (first) {
            if (i)
                rc |= otr_buf_putc(out, '\n');
            rc |= otr_buf_printf(out, "%s:", e[i].lname);
            rc |= otr_buf_printf(signed_headers, "%s%s", i ? ";" : "", e[i].lname);
        } else {
            rc |= otr_buf_putc(out, ',');
        }
        rc |= trimall(out, e[i].value);
    }
    rc |= otr_buf_putc(out, '\n');
    for (size_t i = 0; i < n; i++)
        free(e[i].lname);
    free(e);
    return rc ? -1 : 0;
}

int otr_sigv4_canonical_request(otr_buf *out, otr_buf *signed_headers, const otr_sigv4_request *r)
{
    /* CanonicalRequest = Method \n CanonicalURI \n CanonicalQueryString \n
     *   CanonicalHeaders \n SignedHeaders \n HashedPayload */
    int rc = otr_buf_printf(out, "%s\n", r->method);
    rc |= canonical_uri(out, r->path, r->normalize_path);
    rc |= otr_buf_putc(out, '\n');
    rc |= canonical_query(out, r->query);
    rc |= otr_buf_putc(out, '\n');
    rc |= canonical_headers(out, signed_headers, r->headers);
    rc |= otr_buf_printf(out, "\n%s\n%s", otr_buf_cstr(signed_headers), r->payload_hash);
    return rc ? -1 : 0;
}

int otr_sigv4_string_to_sign(otr_buf *out, const otr_sigv4_request *r,
                             const char *canonical_request)
{
    /* StringToSign = Algorithm \n RequestDateTime \n CredentialScope \n
     *   HashedCanonicalRequest */
    char h[65];
    otr_sha256_hex(h, canonical_request, strlen(canonical_request));
    return otr_buf_printf(out, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", r->amz_date,
                          r->amz_date, r->region, r->service, h);
}

static int hmac(unsigned char out[32], const void *key, size_t keylen, const char *msg)
{
    unsigned int n = 0;
    return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &n) &&
                   n == 32
               ? 0
               : -1;
}

int otr_sigv4_signature(char out[65], const char *secret, const otr_sigv4_request *r,
                        const char *string_to_sign)
{
    /* kDate = HMAC("AWS4" + secret, Date); kRegion = HMAC(kDate, Region);
     * kService = HMAC(kRegion, Service); kSigning = HMAC(kService, "aws4_request");
     * signature = hex(HMAC(kSigning, StringToSign)) */
    otr_buf key = OTR_BUF_INIT;
    char date[9];
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    snprintf(date, sizeof(date), "%.8s", r->amz_date);
    int rc = otr_buf_printf(&key, "AWS4%s", secret);
    rc |= hmac(k1, key.ptr, key.len, date);
    rc |= hmac(k2, k1, 32, r->region);
    rc |= hmac(k3, k2, 32, r->service);
    rc |= hmac(k4, k3, 32, "aws4_request");
    rc |= hmac(sig, k4, 32, string_to_sign);
    otr_buf_free_secret(&key);
    if (rc == 0)
        otr_hex(out, sig, 32);
    /* the derived keys sign for a whole day: none is left in memory */
    otr_wipe(k1, sizeof(k1));
    otr_wipe(k2, sizeof(k2));
    otr_wipe(k3, sizeof(k3));
    otr_wipe(k4, sizeof(k4));
    otr_wipe(sig, sizeof(sig));
    return rc ? -1 : 0;
}

int otr_sigv4_sign(otr_headers *headers, const char *method, const char *path, const char *query,
                   const void *body, size_t body_len, const otr_credentials *creds,
                   const char *region, const char *service, time_t now)
{
    char amz_date[17], payload[65], signature[65];
    otr_buf cr = OTR_BUF_INIT, sh = OTR_BUF_INIT, sts = OTR_BUF_INIT, auth = OTR_BUF_INIT;
    int rc = -1;
    otr_sigv4_amz_date(amz_date, now);
    otr_sha256_hex(payload, body ? body : "", body ? body_len : 0);
    if (otr_headers_set(headers, "X-Amz-Date", amz_date) < 0)
        goto done;
    if (creds->session_token &&
        otr_headers_set(headers, "X-Amz-Security-Token", creds->session_token) < 0)
        goto done;
    otr_headers_remove(headers, "Authorization");
    /* S3 signs the payload's hash as a header, and its path as it is */
    int s3 = !strcmp(service, "s3");
    if (s3 && otr_headers_set(headers, "X-Amz-Content-SHA256", payload) < 0)
        goto done;
    otr_sigv4_request r = {method,  path,    query,
                           headers, payload, amz_date,
                           region,  service, s3 ? OTR_SIGV4_URI_AS_SENT : OTR_SIGV4_URI_NORMALIZED};
    if (otr_sigv4_canonical_request(&cr, &sh, &r) < 0 ||
        otr_sigv4_string_to_sign(&sts, &r, cr.ptr) < 0 ||
        otr_sigv4_signature(signature, creds->secret_access_key, &r, sts.ptr) < 0)
        goto done;
    /* Authorization: Algorithm Credential=AKID/scope, SignedHeaders=..., Signature=... */
    if (otr_buf_printf(&auth,
                       "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
                       "SignedHeaders=%s, Signature=%s",
                       creds->access_key_id, amz_date, region, service, sh.ptr, signature) < 0 ||
        otr_headers_add(headers, "Authorization", auth.ptr) < 0)
        goto done;
    rc = 0;
done:
    otr_buf_free(&cr);
    otr_buf_free(&sh);
    otr_buf_free(&sts);
    otr_buf_free(&auth);
    return rc;
}
