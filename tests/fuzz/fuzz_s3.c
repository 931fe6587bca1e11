/* libFuzzer: S3's answers and the state URL -> their parsers. The first
 * byte picks what the rest is: a ListObjectsV2 answer, an XML error (with
 * otr_aws_parse_error), an element lookup, or an s3:// URL. */
#include "aws/client.h"
#include "aws/s3.h"
#include "aws/xml.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 4) {
    case 0: {
        char **keys = NULL, *next = NULL;
        size_t n = 0;
        (void)!otr_s3_parse_list(body, len, &keys, &n, &next);
        for (size_t i = 0; i < n; i++)
            free(keys[i]);
        free(keys);
        free(next);
        break;
    }
    case 1: {
        char *type, *message;
        otr_aws_parse_error(NULL, body, len, &type, &message);
        free(type);
        free(message);
        break;
    }
    case 2: {
        size_t pos = 0;
        char *v;
        while ((v = otr_xml_next(body, len, &pos, "Key")))
            free(v);
        break;
    }
    default: {
        char *text = strndup(body, len);
        otr_s3_url u;
        otr_error err = OTR_ERROR_INIT;
        if (text && otr_s3_url_parse(&u, text, &err) == 0)
            otr_s3_url_clear(&u);
        otr_error_clear(&err);
        free(text);
    }
    }
    return 0;
}
