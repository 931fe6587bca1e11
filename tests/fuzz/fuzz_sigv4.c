/* libFuzzer: bytes -> the SigV4 canonicalizer. Lines: method, path, query,
 * then "Name:value" headers. */
#include "aws/sigv4.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *lines[3] = {"GET", "/", ""};
    char *p = text;
    for (int i = 0; i < 3 && p; i++) {
        char *nl = strchr(p, '\n');
        lines[i] = p;
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : NULL;
    }
    otr_headers h = OTR_HEADERS_INIT;
    otr_headers_add(&h, "Host", "example.amazonaws.com");
    while (p && *p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        char *colon = strchr(p, ':');
        if (colon) {
            *colon = '\0';
            otr_headers_add(&h, p, colon + 1);
        }
        p = nl ? nl + 1 : NULL;
    }
    otr_headers_add(&h, "X-Amz-Date", "20261128T120000Z");
    char payload[65];
    otr_sha256_hex(payload, data, size);
    otr_sigv4_request r = {
        lines[0],       lines[1],           lines[2],    &h,
        payload,        "20261128T120000Z", "us-east-1", "iotmanagedintegrations",
        (int)(size & 1)};
    otr_buf cr = OTR_BUF_INIT, sh = OTR_BUF_INIT, sts = OTR_BUF_INIT;
    char sig[65];
    if (otr_sigv4_canonical_request(&cr, &sh, &r) == 0 &&
        otr_sigv4_string_to_sign(&sts, &r, cr.ptr) == 0)
        otr_sigv4_signature(sig, "secret", &r, sts.ptr);
    otr_buf_free(&cr);
    otr_buf_free(&sh);
    otr_buf_free(&sts);
    otr_headers_free(&h);
    free(text);
    return 0;
}
