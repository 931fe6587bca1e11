/*
 * The service endpoint (docs/DESIGN.md section 8): --endpoint-url, then
 * AWS_ENDPOINT_URL_IOT_MANAGED_INTEGRATIONS, then AWS_ENDPOINT_URL, then
 * https://api.iotmanagedintegrations[-fips].{region}.{suffix}, the suffix the
 * region's partition gives (the service's endpoint rules in botocore: api.aws,
 * api.amazonwebservices.com.cn, ...). AWS_USE_FIPS_ENDPOINT with a custom
 * endpoint is refused, as those rules refuse it. Plain http is allowed only
 * to loopback addresses.
 */
#ifndef OTR_AWS_ENDPOINT_H
#define OTR_AWS_ENDPOINT_H

#include "util/error.h"

/* *out (free() it) is the base URL without a trailing '/', and without a
 * user name or password (otr_url_redact): they are never used, stored or
 * shown. */
OTR_MUST_USE int otr_endpoint_resolve(char **out, const char *flag_url, const char *region,
                                      otr_error *err);

/* The DNS suffix of region's partition (botocore's partitions.json). */
const char *otr_endpoint_dns_suffix(const char *region);

/* Checks a URL can be talked to: https, or http to 127.0.0.0/8, ::1 or localhost. */
OTR_MUST_USE int otr_endpoint_check(const char *url, const char *what, otr_error *err);

#endif
