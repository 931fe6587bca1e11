/* Endpoint resolution and the https-or-loopback rule, with libcurl's URL parser. */
#include "aws/endpoint.h"

#include "util/buf.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    char buf[64];
    if (!strcasecmp(host, "localhost"))
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    size_t n = strlen(host);
    if (n > 2 && n < sizeof(buf) && host[0] == '[' && host[n - 1] == ']') {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    return 0;
}

int otr_endpoint_check(const char *url, const char *what, otr_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *query = NULL;
    char *shown = otr_url_redact(url); /* a password in it is never printed */
    int rc = -1;
    if (!u || !shown) {
        curl_url_cleanup(u);
        free(shown);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        otr_error_set(err, OTR_ERR_USAGE, "%s %s is not a valid URL", what, shown);
    } else if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query) {
        otr_error_set(err, OTR_ERR_USAGE, "%s %s must not have a query string", what, shown);
    } else if (!strcasecmp(scheme, "https")) {
        rc = 0;
    } else if (!strcasecmp(scheme, "http")) {
        if (is_loopback(host))
            rc = 0;
        else
            otr_error_set(err, OTR_ERR_USAGE,
                          "%s %s: plain http is allowed only to loopback addresses (127.0.0.1, "
                          "::1, localhost); use https",
                          what, shown);
    } else {
        otr_error_set(err, OTR_ERR_USAGE, "%s %s: the scheme must be https (or http to loopback)",
                      what, shown);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(query);
    curl_url_cleanup(u);
    free(shown);
    return rc;
}

static int truthy(const char *v)
{
    return v && (!strcasecmp(v, "true") || !strcmp(v, "1"));
}

/* The partitions of botocore's partitions.json: a region's pattern, and the
 * DNS suffix the service's endpoint rules use (dualStackDnsSuffix). A region
 * no pattern matches is of the first, "aws", as aws.partition has it. */
static const struct {
    const char *regex; /* regionRegex, \w and \d spelled for POSIX */
    const char *suffix;
} partitions[] = {
    {"^(us|eu|ap|sa|ca|me|af|il|mx)-[A-Za-z0-9_]+-[0-9]+$", "api.aws"},
    {"^cn-[A-Za-z0-9_]+-[0-9]+$", "api.amazonwebservices.com.cn"},
    {"^eusc-(de)-[A-Za-z0-9_]+-[0-9]+$", "api.amazonwebservices.eu"},
    {"^us-iso-[A-Za-z0-9_]+-[0-9]+$", "api.aws.ic.gov"},
    {"^us-isob-[A-Za-z0-9_]+-[0-9]+$", "api.aws.scloud"},
    {"^eu-isoe-[A-Za-z0-9_]+-[0-9]+$", "api.cloud-aws.adc-e.uk"},
    {"^us-isof-[A-Za-z0-9_]+-[0-9]+$", "api.aws.hci.ic.gov"},
    {"^us-gov-[A-Za-z0-9_]+-[0-9]+$", "api.aws"},
};

const char *otr_endpoint_dns_suffix(const char *region)
{
    for (size_t i = 0; i < sizeof(partitions) / sizeof(*partitions); i++) {
        regex_t rx;
        if (regcomp(&rx, partitions[i].regex, REG_EXTENDED | REG_NOSUB) != 0)
            continue;
        int hit = regexec(&rx, region, 0, NULL, 0) == 0;
        regfree(&rx);
        if (hit)
            return partitions[i].suffix;
    }
    return partitions[0].suffix;
}

int otr_endpoint_resolve(char **out, const char *flag_url, const char *region, otr_error *err)
{
    const char *what = "--endpoint-url";
    const char *url = flag_url;
    otr_buf b = OTR_BUF_INIT;
    *out = NULL;
    if (!url || !*url) {
        what = "AWS_ENDPOINT_URL_IOT_MANAGED_INTEGRATIONS";
        url = getenv(what);
    }
    if (!url || !*url) {
        what = "AWS_ENDPOINT_URL";
        url = getenv(what);
    }
    if (url && *url && truthy(getenv("AWS_USE_FIPS_ENDPOINT")))
        return otr_error_set(err, OTR_ERR_USAGE,
                             "AWS_USE_FIPS_ENDPOINT and %s together: FIPS and a custom endpoint "
                             "are not supported (as the service's endpoint rules say); drop one",
                             what);
    if (url && *url) {
        /* a user name or password in it is never used (SigV4 signs), stored or shown */
        char *bare = otr_url_redact(url);
        if (!bare)
            return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        otr_buf_puts(&b, bare);
        free(bare);
    } else {
        if (!region || !*region)
            return otr_error_set(err, OTR_ERR_USAGE,
                                 "no region: use --region, AWS_REGION, AWS_DEFAULT_REGION or a "
                                 "profile's region");
        if (strspn(region, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
            strlen(region))
            return otr_error_set(err, OTR_ERR_USAGE,
                                 "region %s is not a region's name (letters, digits and '-', as "
                                 "in us-east-1)",
                                 region);
        what = NULL; /* https to a host of letters, digits, '-' and '.': a URL by making */
        otr_buf_printf(&b, "https://api.iotmanagedintegrations%s.%s.%s",
                       truthy(getenv("AWS_USE_FIPS_ENDPOINT")) ? "-fips" : "", region,
                       otr_endpoint_dns_suffix(region));
    }
    while (b.len && b.ptr[b.len - 1] == '/')
        b.ptr[--b.len] = '\0';
    if (what && otr_endpoint_check(b.ptr, what, err) < 0) {
        otr_buf_free(&b);
        return -1;
    }
    *out = otr_buf_detach(&b);
    return 0;
}
