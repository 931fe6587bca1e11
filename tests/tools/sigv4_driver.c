/*
 * Test driver: signs requests with ota-runner's SigV4 code so a script can
 * compare the result with another signer (botocore). Reads JSON lines
 *   {"method", "path", "query", "headers": [[name, value], ...], "body_hex",
 *    "access_key_id", "secret_access_key", "session_token", "time", "region",
 *    "service"}
 * and writes JSON lines {"canonical_request", "authorization", "headers"}.
 */
#include "aws/sigv4.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static size_t unhex(unsigned char *out, const char *hex)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    return n;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        cJSON *in = cJSON_Parse(line);
        if (!in)
            return 2;
        otr_headers h = OTR_HEADERS_INIT;
        const cJSON *pair;
        cJSON_ArrayForEach(pair, cJSON_GetObjectItemCaseSensitive(in, "headers")) otr_headers_add(
            &h, cJSON_GetArrayItem(pair, 0)->valuestring, cJSON_GetArrayItem(pair, 1)->valuestring);
        const char *body_hex = str(in, "body_hex");
        unsigned char *body = malloc(strlen(body_hex) / 2 + 1);
        size_t body_len = unhex(body, body_hex);
        otr_credentials c = {(char *)str(in, "access_key_id"), (char *)str(in, "secret_access_key"),
                             (char *)str(in, "session_token"), 0, NULL};
        time_t t = (time_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(in, "time"));
        const char *query = str(in, "query");
        if (otr_sigv4_sign(&h, str(in, "method"), str(in, "path"), query, body, body_len, &c,
                           str(in, "region"), str(in, "service"), t) < 0)
            return 3;
        /* recompute the canonical request the signature was made from */
        char payload[65];
        otr_sha256_hex(payload, body, body_len);
        otr_buf cr = OTR_BUF_INIT, sh = OTR_BUF_INIT;
        otr_sigv4_request r = {str(in, "method"),
                               str(in, "path"),
                               query,
                               &h,
                               payload,
                               otr_headers_get(&h, "X-Amz-Date"),
                               str(in, "region"),
                               str(in, "service"),
                               !strcmp(str(in, "service"), "s3") ? OTR_SIGV4_URI_AS_SENT
                                                                 : OTR_SIGV4_URI_NORMALIZED};
        otr_headers signed_h = OTR_HEADERS_INIT;
        for (size_t i = 0; i < h.count; i++)
            if (strcasecmp(h.items[i].name, "Authorization") != 0)
                otr_headers_add(&signed_h, h.items[i].name, h.items[i].value);
        r.headers = &signed_h;
        otr_sigv4_canonical_request(&cr, &sh, &r);
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "canonical_request", cr.ptr);
        cJSON_AddStringToObject(out, "authorization", otr_headers_get(&h, "Authorization"));
        char *s = cJSON_PrintUnformatted(out);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(out);
        otr_buf_free(&cr);
        otr_buf_free(&sh);
        otr_headers_free(&signed_h);
        otr_headers_free(&h);
        free(body);
        cJSON_Delete(in);
    }
    free(line);
    return 0;
}
