/*
 * IAM Identity Center (SSO) profiles: sso_session (or the legacy
 * sso_start_url), sso_account_id and sso_role_name; the token `aws sso
 * login` cached, exchanged for the role's credentials by GetRoleCredentials.
 */
#include "aws/creds_internal.h"

#include "aws/endpoint.h"
#include "aws/profile.h"
#include "util/file.h"
#include "util/log.h"
#include "util/time.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The token `aws sso login` cached for key (the session's name, or the
 * legacy profile's start URL): ~/.aws/sso/cache/SHA1HEX(key).json. */
static int sso_token(const otr_creds_provider *p, const char *key, const char *login, char **token,
                     otr_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char hex[41];
    const char *home = getenv("HOME");
    otr_buf path = OTR_BUF_INIT, text = OTR_BUF_INIT;
    int rc = -1;
    *token = NULL;
    if (EVP_Digest(key, strlen(key), md, &len, EVP_sha1(), NULL) != 1)
        return otr_error_set(err, OTR_ERR_GENERIC, "SHA-1 is not available");
    for (unsigned int i = 0; i < len && i < 20; i++)
        snprintf(hex + (size_t)2 * i, 3, "%02x", md[i]);
    otr_buf_printf(&path, "%s/.aws/sso/cache/%s.json", home ? home : "", hex);
    cJSON *j = NULL;
    if (!home || otr_file_read(path.ptr, OTR_CREDS_MAX_BYTES, &text, err) < 0) {
        otr_error_clear(err);
        otr_error_set(err, OTR_ERR_NOTFOUND,
                      "profile %s: no IAM Identity Center token cached for %s (%s); run %s",
                      p->profile, key, otr_buf_cstr(&path), login);
        goto done;
    }
    j = cJSON_Parse(text.ptr);
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "accessToken"));
    const char *exp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "expiresAt"));
    int64_t until = 0;
    if (!t || !exp || otr_time_parse_iso8601(exp, &until) < 0) {
        otr_error_set(err, OTR_ERR_INVALID,
                      "profile %s: %s is not a token `aws sso login` wrote; run %s", p->profile,
                      path.ptr, login);
        goto done;
    }
    if (until <= (int64_t)otr_creds_now(p)) {
        otr_error_set(err, OTR_ERR_GENERIC,
                      "profile %s: the IAM Identity Center token expired at %s; run %s", p->profile,
                      exp, login);
        goto done;
    }
    rc = (*token = strdup(t)) ? 0 : otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
done:
    cJSON_Delete(j);
    otr_buf_free_secret(&text);
    otr_buf_free(&path);
    return rc;
}

/* An IAM Identity Center profile (sso_session, or the legacy sso_start_url):
 * the role's credentials from the portal's GetRoleCredentials, with the
 * token `aws sso login` cached. */
outcome otr_creds_from_sso(otr_creds_provider *p, otr_buf *tried, otr_error *err)
{
    char *session = otr_creds_conf(p, "sso_session");
    char *account = otr_creds_conf(p, "sso_account_id");
    char *role = otr_creds_conf(p, "sso_role_name");
    otr_buf section = OTR_BUF_INIT, login = OTR_BUF_INIT, url = OTR_BUF_INIT, answer = OTR_BUF_INIT,
            auth = OTR_BUF_INIT, desc = OTR_BUF_INIT;
    if (session)
        otr_buf_printf(&section, "sso-session %s", session);
    else
        otr_buf_puts(&section, p->profile);
    char *start = otr_profile_get(OTR_AWS_CONFIG_FILE, section.ptr, "sso_start_url");
    char *region = otr_profile_get(OTR_AWS_CONFIG_FILE, section.ptr, "sso_region");
    char *token = NULL, *ea = NULL, *er = NULL;
    struct curl_slist *h = NULL;
    long status = 0;
    outcome o = NOT_CONFIGURED;
    (void)tried;
    if (!session && !start && !account && !role)
        goto done;
    o = FAILED;
    if (!account || !role || !region || (!session && !start)) {
        otr_error_set(err, OTR_ERR_USAGE,
                      "profile %s: an IAM Identity Center profile needs sso_account_id, "
                      "sso_role_name, and sso_session (with its sso_region and sso_start_url) or "
                      "sso_start_url and sso_region",
                      p->profile);
        goto done;
    }
    otr_buf_printf(&login, "'aws sso login --profile %s'", p->profile);
    if (sso_token(p, session ? session : start, login.ptr, &token, err) < 0)
        goto done;
    const char *base = getenv("AWS_ENDPOINT_URL_SSO");
    if (base && *base)
        otr_buf_puts(&url, base);
    else
        otr_buf_printf(&url, "https://portal.sso.%s.amazonaws.com", region);
    if (otr_endpoint_check(url.ptr, "the IAM Identity Center portal", err) < 0)
        goto done;
    ea = curl_easy_escape(NULL, account, 0);
    er = curl_easy_escape(NULL, role, 0);
    while (url.len && url.ptr[url.len - 1] == '/')
        url.ptr[--url.len] = '\0';
    otr_buf_printf(&url, "/federation/credentials?account_id=%s&role_name=%s", ea ? ea : "",
                   er ? er : "");
    otr_buf_printf(&auth, "x-amz-sso_bearer_token: %s", token);
    h = curl_slist_append(h, auth.ptr);
    otr_buf_printf(&desc, "IAM Identity Center role %s in account %s (profile %s)", role, account,
                   p->profile);
    otr_log(OTR_LOG_VERBOSE, "credentials: GetRoleCredentials %s %s at %s", account, role, url.ptr);
    if (otr_creds_fetch("GET", url.ptr, h, NULL, OTR_CREDS_FETCH_TIMEOUT_MS, &status, &answer,
                        err) < 0) {
        otr_error_prefix(err, "%s: GetRoleCredentials", desc.ptr);
        goto done;
    }
    if (status != 200) {
        otr_error_set(err, OTR_ERR_GENERIC, "%s: GetRoleCredentials: HTTP %ld%s", desc.ptr, status,
                      status == 401 || status == 403 ? " (the token is not valid any more: run "
                                                       "'aws sso login')"
                                                     : "");
        goto done;
    }
    cJSON *j = cJSON_Parse(answer.ptr);
    const cJSON *rc = cJSON_GetObjectItemCaseSensitive(j, "roleCredentials");
    const char *akid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rc, "accessKeyId"));
    const char *secret =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rc, "secretAccessKey"));
    const char *stoken = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rc, "sessionToken"));
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(rc, "expiration");
    if (!akid || !secret || !cJSON_IsNumber(exp))
        otr_error_set(err, OTR_ERR_INVALID, "%s: GetRoleCredentials answered without credentials",
                      desc.ptr);
    else if (otr_creds_set(&p->creds, akid, secret, stoken, (time_t)(exp->valuedouble / 1000),
                           desc.ptr) < 0)
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    else
        o = FOUND;
    cJSON_Delete(j);
done:
    otr_free_secret(token);
    otr_buf_free_secret(&auth);
    otr_buf_free_secret(&answer);
    otr_buf_free(&url);
    otr_buf_free(&section);
    otr_buf_free(&login);
    otr_buf_free(&desc);
    curl_slist_free_all(h);
    curl_free(ea);
    curl_free(er);
    free(session);
    free(account);
    free(role);
    free(start);
    free(region);
    return o;
}
