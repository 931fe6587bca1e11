/* ota-runner version: ours and the libraries' we run with (not built with). */
#include "cli/commands.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <git2.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <yaml.h>

int otr_cmd_version(const otr_options *o)
{
    (void)o;
    int major, minor, rev;
    git_libgit2_version(&major, &minor, &rev);
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    printf("ota-runner %s\n", OTR_VERSION);
    printf("libgit2 %d.%d.%d\n", major, minor, rev);
    printf("libcurl %s (%s)\n", cv->version, cv->ssl_version ? cv->ssl_version : "no TLS");
    printf("OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
    printf("libyaml %s\n", yaml_get_version_string());
    printf("cJSON %s\n", cJSON_Version());
    return OTR_EXIT_OK;
}
