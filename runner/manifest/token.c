/* Canonical JSON, ClientToken and spec digest (DESIGN section 5). */
#include "manifest/token.h"

#include "util/buf.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_cmp(const void *a, const void *b)
{
    const cJSON *const *x = a, *const *y = b;
    return strcmp((*x)->string, (*y)->string); /* strcmp compares as unsigned char */
}

void otr_canonical_sort(cJSON *v)
{
    if (!v)
        return;
    size_t n = 0;
    for (cJSON *c = v->child; c; c = c->next) {
        otr_canonical_sort(c);
        n++;
    }
    if (!cJSON_IsObject(v) || n < 2)
        return;
    cJSON **items = malloc(n * sizeof(*items));
    if (!items)
        return;
    n = 0;
    for (cJSON *c = v->child; c; c = c->next)
        items[n++] = c;
    qsort(items, n, sizeof(*items), key_cmp);
    for (size_t i = 0; i < n; i++) {
        items[i]->prev = i ? items[i - 1] : items[n - 1]; /* cJSON keeps the tail in head->prev */
        items[i]->next = i + 1 < n ? items[i + 1] : NULL;
    }
    v->child = items[0];
    free(items);
}

char *otr_canonical_json(cJSON *v)
{
    otr_canonical_sort(v);
    /* cJSON prints integral numbers in plain decimal, escapes only '"', '\\'
     * and control characters, and adds no whitespace when unformatted. */
    return cJSON_PrintUnformatted(v);
}

void otr_base64url(char *out, const unsigned char *in, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = alphabet[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
}

int otr_client_token(char out[44], const char *name, long revision, const char *canonical)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    char rev[24];
    int ok = 0;
    snprintf(rev, sizeof(rev), "%ld", revision);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
        EVP_DigestUpdate(ctx, "ota-runner/v1", sizeof("ota-runner/v1")) && /* with its NUL */
        EVP_DigestUpdate(ctx, name, strlen(name) + 1) &&
        EVP_DigestUpdate(ctx, rev, strlen(rev) + 1) &&
        EVP_DigestUpdate(ctx, canonical, strlen(canonical)) &&
        EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == sizeof(md))
        ok = 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    otr_base64url(out, md, sizeof(md));
    return 0;
}

int otr_spec_digest(char out[72], const char *canonical)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(canonical, strlen(canonical), md, &mdlen, EVP_sha256(), NULL))
        return -1;
    memcpy(out, "sha256:", 7);
    otr_hex(out + 7, md, sizeof(md));
    return 0;
}
