/*
 * The credentials chain (see credentials.h). Each source either is not
 * configured (the chain moves on and notes why), or is configured and then
 * answers or fails (the chain stops: a broken configuration is reported, not
 * skipped), as botocore behaves.
 */
#include "aws/credentials.h"

#include "aws/creds_internal.h"

#include "aws/endpoint.h"
#include "aws/profile.h"
#include "aws/sigv4.h"
#include "util/buf.h"
#include "util/file.h"
#include "util/log.h"
#include "util/time.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* A token file's content without its trailing newline; NULL when unreadable. */
static char *read_small_file(const char *path)
{
    otr_buf b = OTR_BUF_INIT;
    otr_error err = OTR_ERROR_INIT;
    if (otr_file_read(path, OTR_CREDS_MAX_BYTES, &b, &err) < 0) {
        otr_error_clear(&err);
        otr_buf_free(&b);
        return NULL;
    }
    while (b.len &&
           (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r' || b.ptr[b.len - 1] == ' '))
        b.ptr[--b.len] = '\0';
    return otr_buf_detach(&b);
}

/* key of the profile's section in the config file (free() it), or NULL. */
static int parse_creds_json(otr_credentials *c, const char *json, const char *desc, otr_error *err)
{
    cJSON *j = cJSON_Parse(json);
    const char *akid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "AccessKeyId"));
    const char *secret =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "SecretAccessKey"));
    const char *token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "Token"));
    const char *exp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "Expiration"));
    int64_t expiration = 0;
    int rc = 0;
    if (!token)
        token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "SessionToken"));
    if (!j || !akid || !secret || !*akid || !*secret)
        rc = otr_error_set(err, OTR_ERR_INVALID,
                           "%s: the answer has no AccessKeyId and SecretAccessKey", desc);
    else if (exp && otr_time_parse_iso8601(exp, &expiration) < 0)
        rc = otr_error_set(err, OTR_ERR_INVALID, "%s: Expiration %s is not an ISO 8601 time", desc,
                           exp);
    else if (otr_creds_set(c, akid, secret, token, (time_t)expiration, desc) < 0)
        rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    cJSON_Delete(j);
    return rc;
}

/* ---- the sources ------------------------------------------------------------ */

static outcome from_env(otr_creds_provider *p, otr_buf *tried, otr_error *err)
{
    const char *akid = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (p->explicit_profile) {
        otr_buf_puts(tried, "environment (skipped: --profile given)");
        return NOT_CONFIGURED;
    }
    if (!akid || !*akid || !secret || !*secret) {
        otr_buf_puts(tried, "environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set)");
        return NOT_CONFIGURED;
    }
    if (otr_creds_set(&p->creds, akid, secret, getenv("AWS_SESSION_TOKEN"), 0, "environment") < 0)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    return FOUND;
}

/* The text of the first <tag>...</tag> in an STS answer, XML entities decoded. */
static char *xml_text(const char *xml, const char *tag)
{
    otr_buf open = OTR_BUF_INIT, close = OTR_BUF_INIT, out = OTR_BUF_INIT;
    otr_buf_printf(&open, "<%s>", tag);
    otr_buf_printf(&close, "</%s>", tag);
    const char *s = strstr(xml, open.ptr), *e = s ? strstr(s, close.ptr) : NULL;
    char *result = NULL;
    if (s && e) {
        static const struct {
            const char *ent;
            char c;
        } ents[] = {
            {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        for (const char *q = s + open.len; q < e;) {
            size_t k = 0;
            for (; k < sizeof(ents) / sizeof(ents[0]); k++)
                if (!strncmp(q, ents[k].ent, strlen(ents[k].ent)))
                    break;
            if (k < sizeof(ents) / sizeof(ents[0])) {
                otr_buf_putc(&out, ents[k].c);
                q += strlen(ents[k].ent);
            } else {
                otr_buf_putc(&out, *q++);
            }
        }
        result = otr_buf_detach(&out);
    }
    otr_buf_free(&open);
    otr_buf_free(&close);
    otr_buf_free(&out);
    return result;
}

static int append_param(otr_buf *b, const char *name, const char *value)
{
    char *enc = curl_easy_escape(NULL, value, 0);
    int rc = enc ? otr_buf_printf(b, "&%s=%s", name, enc) : -1;
    curl_free(enc);
    return rc;
}

/* An STS answer (what: the action, for messages): an error's Code and
 * Message, or the Credentials it holds into p. */
static int sts_answer(otr_creds_provider *p, long status, const otr_buf *answer, const char *what,
                      const char *desc, otr_error *err)
{
    if (status != 200) {
        char *code = xml_text(otr_buf_cstr(answer), "Code");
        char *msg = xml_text(otr_buf_cstr(answer), "Message");
        otr_error_set(err, OTR_ERR_GENERIC, "%s: STS %s: HTTP %ld %s: %s", desc, what, status,
                      code ? code : "error", msg ? msg : "no message");
        free(code);
        free(msg);
        return -1;
    }
    char *akid = xml_text(answer->ptr, "AccessKeyId"),
         *secret = xml_text(answer->ptr, "SecretAccessKey");
    char *stoken = xml_text(answer->ptr, "SessionToken"),
         *exp = xml_text(answer->ptr, "Expiration");
    int64_t expiration = 0;
    int rc = 0;
    if (!akid || !secret || !stoken || !exp || otr_time_parse_iso8601(exp, &expiration) < 0)
        rc = otr_error_set(err, OTR_ERR_INVALID, "%s: STS answered without credentials", desc);
    else if (otr_creds_set(&p->creds, akid, secret, stoken, (time_t)expiration, desc) < 0)
        rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    free(akid);
    otr_free_secret(secret);
    otr_free_secret(stoken);
    free(exp);
    return rc;
}

/* STS AssumeRoleWithWebIdentity: what GitHub Actions' OIDC and EKS IRSA use.
 * The call is not signed; the token file is read on every fetch, since the
 * platform rotates it. */
static int assume_role_with_web_identity(otr_creds_provider *p, const char *token_file,
                                         const char *role_arn, const char *session_name,
                                         const char *desc, otr_error *err)
{
    char *token = read_small_file(token_file);
    otr_buf body = OTR_BUF_INIT, answer = OTR_BUF_INIT, url = OTR_BUF_INIT;
    struct curl_slist *h = NULL;
    long status = 0;
    int rc = -1;
    char session[80];
    if (!token || !*token) {
        otr_error_set(err, OTR_ERR_IO, "%s: cannot read the token file %s", desc, token_file);
        goto done;
    }
    if (!session_name || !*session_name) {
        snprintf(session, sizeof(session), "ota-runner-%ld", (long)otr_creds_now(p));
        session_name = session;
    }
    const char *sts = getenv("AWS_ENDPOINT_URL_STS");
    if (sts && *sts)
        otr_buf_puts(&url, sts);
    else if (p->region)
        otr_buf_printf(&url, "https://sts.%s.amazonaws.com", p->region);
    else
        otr_buf_puts(&url, "https://sts.amazonaws.com");
    if (otr_endpoint_check(url.ptr, "the STS endpoint", err) < 0)
        goto done;
    otr_buf_puts(&body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15");
    append_param(&body, "RoleArn", role_arn);
    append_param(&body, "RoleSessionName", session_name);
    append_param(&body, "WebIdentityToken", token);
    h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
    h = curl_slist_append(h, "Accept: text/xml");
    otr_log(OTR_LOG_VERBOSE, "credentials: AssumeRoleWithWebIdentity %s at %s", role_arn, url.ptr);
    if (otr_creds_fetch("POST", url.ptr, h, body.ptr, OTR_CREDS_FETCH_TIMEOUT_MS, &status, &answer,
                        err) < 0) {
        otr_error_prefix(err, "%s: STS AssumeRoleWithWebIdentity", desc);
        goto done;
    }
    if (sts_answer(p, status, &answer, "AssumeRoleWithWebIdentity", desc, err) < 0)
        goto done;
    rc = 0;
done:
    otr_free_secret(token);
    otr_buf_free_secret(&body);
    otr_buf_free_secret(&answer);
    otr_buf_free(&url);
    curl_slist_free_all(h);
    return rc;
}

static outcome from_web_identity(otr_creds_provider *p, otr_buf *tried, otr_error *err)
{
    const char *file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = getenv("AWS_ROLE_ARN");
    if (!file || !*file || !role || !*role) {
        otr_buf_puts(tried, "web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN not set)");
        return NOT_CONFIGURED;
    }
    return assume_role_with_web_identity(p, file, role, getenv("AWS_ROLE_SESSION_NAME"),
                                         "web identity", err) < 0
               ? FAILED
               : FOUND;
}

/* ---- assume-role profiles: role_arn with source_profile or credential_source -- */

static int resolve(otr_creds_provider *p, otr_error *err);
static outcome from_role(otr_creds_provider *p, otr_error *err);
static outcome from_container(otr_creds_provider *p, otr_buf *tried, otr_error *err);
static outcome from_imds(otr_creds_provider *p, otr_buf *tried, otr_error *err);
static outcome from_file(otr_creds_provider *p, otr_aws_file which, otr_buf *tried, otr_error *err);

/* The credentials a role is assumed with, into src (a provider of its own):
 * those of source_profile (resolved as a profile, so it may be a role in
 * turn; a loop is refused), or of credential_source. */
static int source_creds(otr_creds_provider *p, const char *source_profile,
                        const char *credential_source, otr_creds_provider **src, otr_error *err)
{
    otr_buf chain = OTR_BUF_INIT, tried = OTR_BUF_INIT;
    otr_creds_options so = {.profile = source_profile ? source_profile : p->profile,
                            .region = p->region,
                            .now = p->now,
                            .now_ctx = p->now_ctx};
    int rc = -1;
    otr_buf_printf(&chain, "%s%s%s", p->chain ? p->chain : "", p->chain ? " -> " : "", p->profile);
    if (otr_creds_provider_new(src, &so, err) < 0)
        goto done;
    if (source_profile && strcmp(source_profile, p->profile)) {
        otr_buf probe = OTR_BUF_INIT; /* " -> a -> b -> " holds " -> NAME -> " once per name */
        otr_buf_printf(&probe, " -> %s -> ", source_profile);
        otr_buf whole = OTR_BUF_INIT;
        otr_buf_printf(&whole, " -> %s -> ", otr_buf_cstr(&chain));
        int loop = strstr(whole.ptr, probe.ptr) != NULL;
        otr_buf_free(&probe);
        otr_buf_free(&whole);
        if (loop) {
            otr_error_set(err, OTR_ERR_USAGE, "profile %s: a loop of source profiles: %s -> %s",
                          p->profile, otr_buf_cstr(&chain), source_profile);
            goto done;
        }
        (*src)->chain = otr_buf_detach(&chain);
        rc = resolve(*src, err);
        goto done;
    }
    outcome o = NOT_CONFIGURED;
    if (source_profile) /* the profile itself: its own keys (botocore allows it) */
        o = from_file(*src, OTR_AWS_CREDENTIALS_FILE, &tried, err) == FOUND
                ? FOUND
                : from_file(*src, OTR_AWS_CONFIG_FILE, &tried, err);
    else if (!strcmp(credential_source, "Environment"))
        o = getenv("AWS_ACCESS_KEY_ID") && getenv("AWS_SECRET_ACCESS_KEY") &&
                    otr_creds_set(&(*src)->creds, getenv("AWS_ACCESS_KEY_ID"),
                                  getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN"), 0,
                                  "environment") == 0
                ? FOUND
                : NOT_CONFIGURED;
    else if (!strcmp(credential_source, "Ec2InstanceMetadata"))
        o = from_imds(*src, &tried, err);
    else if (!strcmp(credential_source, "EcsContainer"))
        o = from_container(*src, &tried, err);
    else {
        otr_error_set(err, OTR_ERR_USAGE,
                      "profile %s: credential_source %s: use Environment, Ec2InstanceMetadata or "
                      "EcsContainer",
                      p->profile, credential_source);
        goto done;
    }
    if (o == NOT_CONFIGURED)
        otr_error_set(err, OTR_ERR_NOTFOUND, "profile %s: no credentials for its role from %s%s%s",
                      p->profile, source_profile ? "the profile itself" : credential_source,
                      tried.len ? ": " : "", otr_buf_cstr(&tried));
    (*src)->src = SRC_STATIC;
    rc = o == FOUND ? 0 : -1;
done:
    otr_buf_free(&chain);
    otr_buf_free(&tried);
    return rc;
}

/* The headers of a signed request, for libcurl. */
static struct curl_slist *curl_headers(const otr_headers *h)
{
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < h->count; i++) {
        otr_buf line = OTR_BUF_INIT;
        otr_buf_printf(&line, "%s: %s", h->items[i].name, h->items[i].value);
        list = curl_slist_append(list, otr_buf_cstr(&line));
        otr_buf_free_secret(&line);
    }
    return list;
}

/* STS AssumeRole, signed (SigV4, service sts) with src's credentials. */
static int assume_role(otr_creds_provider *p, const otr_credentials *src, const char *role_arn,
                       const char *session_name, const char *external_id, const char *duration,
                       const char *desc, otr_error *err)
{
    otr_buf body = OTR_BUF_INIT, answer = OTR_BUF_INIT, url = OTR_BUF_INIT;
    otr_headers h = OTR_HEADERS_INIT;
    struct curl_slist *list = NULL;
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, session[80];
    long status = 0;
    int rc = -1;
    const char *region = p->region && *p->region ? p->region : "us-east-1";
    if (!session_name || !*session_name) {
        snprintf(session, sizeof(session), "ota-runner-%ld", (long)otr_creds_now(p));
        session_name = session;
    }
    const char *sts = getenv("AWS_ENDPOINT_URL_STS");
    if (sts && *sts)
        otr_buf_puts(&url, sts);
    else
        otr_buf_printf(&url, "https://sts.%s.amazonaws.com", region);
    if (otr_endpoint_check(url.ptr, "the STS endpoint", err) < 0)
        goto done;
    if (!u || curl_url_set(u, CURLUPART_URL, url.ptr, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        otr_error_set(err, OTR_ERR_USAGE, "the STS endpoint %s is not a URL", url.ptr);
        goto done;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    otr_buf_puts(&body, "Action=AssumeRole&Version=2011-06-15");
    append_param(&body, "RoleArn", role_arn);
    append_param(&body, "RoleSessionName", session_name);
    if (external_id)
        append_param(&body, "ExternalId", external_id);
    if (duration)
        append_param(&body, "DurationSeconds", duration);
    otr_buf hostport = OTR_BUF_INIT;
    otr_buf_printf(&hostport, "%s%s%s", host, port ? ":" : "", port ? port : "");
    int signed_ok = otr_headers_add(&h, "Host", hostport.ptr) == 0 &&
                    otr_headers_add(&h, "Content-Type",
                                    "application/x-www-form-urlencoded; charset=utf-8") == 0 &&
                    otr_sigv4_sign(&h, "POST", "/", NULL, body.ptr, body.len, src, region, "sts",
                                   otr_creds_now(p)) == 0;
    otr_buf_free(&hostport);
    if (!signed_ok || !(list = curl_headers(&h))) {
        otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        goto done;
    }
    list = curl_slist_append(list, "Accept: text/xml");
    otr_log(OTR_LOG_VERBOSE, "credentials: AssumeRole %s at %s with %s", role_arn, url.ptr,
            src->source);
    if (otr_creds_fetch("POST", url.ptr, list, body.ptr, OTR_CREDS_FETCH_TIMEOUT_MS, &status,
                        &answer, err) < 0) {
        otr_error_prefix(err, "%s: STS AssumeRole", desc);
        goto done;
    }
    otr_buf what = OTR_BUF_INIT;
    otr_buf_printf(&what, "AssumeRole of %s", role_arn);
    int got = sts_answer(p, status, &answer, otr_buf_cstr(&what), desc, err);
    otr_buf_free(&what);
    if (got < 0)
        goto done;
    rc = 0;
done:
    otr_buf_free_secret(&body);
    otr_buf_free_secret(&answer);
    otr_buf_free(&url);
    otr_headers_free(&h);
    curl_slist_free_all(list);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* A profile with role_arn and source_profile or credential_source: the role,
 * assumed with those credentials (renewed before they expire). */
static outcome from_profile_assume_role(otr_creds_provider *p, otr_buf *tried, otr_error *err)
{
    char *role = otr_creds_conf(p, "role_arn");
    char *source = otr_creds_conf(p, "source_profile");
    char *cred_src = otr_creds_conf(p, "credential_source");
    char *session = otr_creds_conf(p, "role_session_name");
    char *external = otr_creds_conf(p, "external_id");
    char *duration = otr_creds_conf(p, "duration_seconds");
    otr_creds_provider *src = NULL;
    otr_buf desc = OTR_BUF_INIT;
    outcome o = NOT_CONFIGURED;
    (void)tried; /* only worth a mention when the profile sets it */
    if (!role || (!source && !cred_src))
        goto done;
    o = FAILED;
    if (source && cred_src) {
        otr_error_set(err, OTR_ERR_USAGE,
                      "profile %s has both source_profile and credential_source; give one",
                      p->profile);
        goto done;
    }
    const otr_credentials *c = NULL;
    otr_buf_printf(&desc, "role %s of profile %s", role, p->profile);
    if (source_creds(p, source, cred_src, &src, err) < 0 || otr_creds_get(src, &c, err) < 0 ||
        assume_role(p, c, role, session, external, duration, desc.ptr, err) < 0)
        goto done;
    o = FOUND;
done:
    otr_creds_provider_free(src);
    free(role);
    free(source);
    free(cred_src);
    free(session);
    free(external);
    free(duration);
    otr_buf_free(&desc);
    return o;
}

static outcome from_profile_web_identity(otr_creds_provider *p, otr_buf *tried, otr_error *err)
{
    char *file = otr_creds_conf(p, "web_identity_token_file");
    char *role = otr_creds_conf(p, "role_arn");
    char *session = otr_creds_conf(p, "role_session_name");
    outcome o = NOT_CONFIGURED;
    (void)tried; /* only worth a mention when the profile sets it */
    if (file && role) {
        otr_buf desc = OTR_BUF_INIT;
        otr_buf_printf(&desc, "web identity of profile %s", p->profile);
        o = assume_role_with_web_identity(p, file, role, session, desc.ptr, err) < 0 ? FAILED
                                                                                     : FOUND;
        otr_buf_free(&desc);
    }
    free(file);
    free(role);
    free(session);
    return o;
}

static outcome from_file(otr_creds_provider *p, otr_aws_file which, otr_buf *tried, otr_error *err)
{
    char *path = otr_profile_path(which);
    char *akid = otr_profile_get(which, p->profile, "aws_access_key_id");
    char *secret = otr_profile_get(which, p->profile, "aws_secret_access_key");
    char *token = otr_profile_get(which, p->profile, "aws_session_token");
    outcome o = NOT_CONFIGURED;
    otr_buf desc = OTR_BUF_INIT;
    otr_buf_printf(&desc, "profile %s in %s", p->profile, path ? path : "(no HOME)");
    if (akid && secret) {
        o = otr_creds_set(&p->creds, akid, secret, token, 0, desc.ptr) < 0
                ? otr_error_set(err, OTR_ERR_NOMEM, "out of memory")
                : FOUND;
    } else {
        otr_buf_printf(tried, "%s (no aws_access_key_id and aws_secret_access_key)", desc.ptr);
    }
    free(path);
    free(akid);
    otr_free_secret(secret);
    otr_free_secret(token);
    otr_buf_free(&desc);
    return o;
}

/* How long credential_process may take (OTA_RUNNER_CREDENTIAL_PROCESS_TIMEOUT,
 * seconds; default 60): one that never answers must not hold a run that
 * holds the state lock for ever. */
static long process_timeout_ms(void)
{
    const char *v = getenv("OTA_RUNNER_CREDENTIAL_PROCESS_TIMEOUT");
    char *end = NULL;
    long s = v && *v ? strtol(v, &end, 10) : 0;
    return s > 0 && end && !*end && s <= 3600 ? s * 1000 : 60 * 1000L;
}

/* Runs cmd (sh -c) in a process group of its own, its output into out, for
 * at most timeout_ms; the whole group is killed at the end (a child left
 * holding the output, one that outlives it) and, through the parent-death
 * signal, when ota-runner dies. Returns the exit status, -2 on a timeout,
 * -1 when it cannot be run. */
static int run_bounded(const char *cmd, long timeout_ms, otr_buf *out)
{
    int fds[2], status = -1;
    if (pipe(fds) < 0)
        return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC); /* dup2 makes the child's stdout without it */
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], STDOUT_FILENO);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* either side may win the race: both ask for the same */
    close(fds[1]);
    int64_t deadline = otr_time_monotonic_ms() + timeout_ms;
    int timed_out = 0;
    for (;;) {
        int64_t left = deadline - otr_time_monotonic_ms();
        struct pollfd pf = {fds[0], POLLIN, 0};
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        int r = poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        char chunk[4096];
        ssize_t n = read(fds[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || otr_buf_append(out, chunk, (size_t)n) < 0)
            break; /* the end, or more than the buffer's cap */
    }
    close(fds[0]);
    if (timed_out)
        kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    kill(-pid, SIGKILL); /* what it left running in its group */
    return timed_out ? -2 : status;
}

/* credential_process: run the command, read the credentials JSON it prints. */
static outcome from_process(otr_creds_provider *p, otr_buf *tried, otr_error *err)
{
    char *cmd = otr_creds_conf(p, "credential_process");
    if (!cmd) {
        otr_buf_printf(tried, "credential_process of profile %s (not set)", p->profile);
        return NOT_CONFIGURED;
    }
    otr_buf out = OTR_BUF_INIT, desc = OTR_BUF_INIT;
    out.cap = OTR_CREDS_MAX_BYTES;
    otr_buf_printf(&desc, "credential_process of profile %s", p->profile);
    outcome o = FAILED;
    long timeout = process_timeout_ms();
    int status = run_bounded(cmd, timeout, &out);
    if (status == -1) {
        otr_error_set(err, OTR_ERR_IO, "%s: cannot run it", desc.ptr);
    } else if (status == -2) {
        otr_error_set(err, OTR_ERR_GENERIC,
                      "%s: no answer after %ld s; it was stopped (its process group killed). "
                      "OTA_RUNNER_CREDENTIAL_PROCESS_TIMEOUT sets how long it may take",
                      desc.ptr, timeout / 1000);
    } else {
        cJSON *j = cJSON_Parse(otr_buf_cstr(&out));
        const cJSON *version = cJSON_GetObjectItemCaseSensitive(j, "Version");
        if (status != 0)
            otr_error_set(err, OTR_ERR_GENERIC, "%s: the command failed (exit %d)", desc.ptr,
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        else if (!cJSON_IsNumber(version) || version->valuedouble != 1)
            otr_error_set(err, OTR_ERR_INVALID, "%s: the output must be JSON with \"Version\": 1",
                          desc.ptr);
        else if (parse_creds_json(&p->creds, out.ptr, desc.ptr, err) == 0)
            o = FOUND;
        cJSON_Delete(j);
    }
    otr_buf_free_secret(&out);
    otr_buf_free(&desc);
    free(cmd);
    return o;
}

static int container_host_allowed(const char *url)
{
    /* http only to loopback or the ECS / EKS agent addresses, as botocore allows */
    static const char *const agents[] = {"http://169.254.170.2/", "http://169.254.170.23/",
                                         "http://[fd00:ec2::23]/", NULL};
    for (size_t i = 0; agents[i]; i++)
        if (!strncmp(url, agents[i], strlen(agents[i])))
            return 1;
    return 0;
}

static outcome from_container(otr_creds_provider *p, otr_buf *tried, otr_error *err)
{
    const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    otr_buf url = OTR_BUF_INIT, answer = OTR_BUF_INIT, auth = OTR_BUF_INIT;
    struct curl_slist *h = NULL;
    long status = 0;
    outcome o = FAILED;
    if (rel && *rel) {
        otr_buf_printf(&url, "http://169.254.170.2%s", rel);
    } else if (full && *full) {
        otr_buf_puts(&url, full);
    } else {
        otr_buf_puts(tried,
                     "container (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI not set)");
        return NOT_CONFIGURED;
    }
    if (!container_host_allowed(url.ptr) &&
        otr_endpoint_check(url.ptr, "AWS_CONTAINER_CREDENTIALS_FULL_URI", err) < 0)
        goto done;
    const char *token_file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *token = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    char *file_token = token_file && *token_file ? read_small_file(token_file) : NULL;
    if (token_file && *token_file && !file_token) {
        otr_error_set(err, OTR_ERR_IO, "container credentials: cannot read %s", token_file);
        goto done;
    }
    if (file_token || (token && *token)) {
        otr_buf_printf(&auth, "Authorization: %s", file_token ? file_token : token);
        h = curl_slist_append(h, auth.ptr);
    }
    otr_free_secret(file_token);
    otr_log(OTR_LOG_VERBOSE, "credentials: container endpoint %s", url.ptr);
    if (otr_creds_fetch("GET", url.ptr, h, NULL, 2000, &status, &answer, err) < 0) {
        otr_error_prefix(err, "container credentials from %s", url.ptr);
        goto done;
    }
    if (status != 200) {
        otr_error_set(err, OTR_ERR_GENERIC, "container credentials from %s: HTTP %ld", url.ptr,
                      status);
        goto done;
    }
    if (parse_creds_json(&p->creds, answer.ptr, "container credentials", err) == 0)
        o = FOUND;
done:
    otr_buf_free(&url);
    otr_buf_free_secret(&answer);
    otr_buf_free_secret(&auth);
    curl_slist_free_all(h);
    return o;
}

/* IMDSv2: a session token (PUT), the role name, then the role's credentials. */
static outcome from_imds(otr_creds_provider *p, otr_buf *tried, otr_error *err)
{
    const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");
    if (disabled && !strcasecmp(disabled, "true")) {
        otr_buf_puts(tried, "EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)");
        return NOT_CONFIGURED;
    }
    const char *base = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!base || !*base)
        base = "http://169.254.169.254";
    const char *t = getenv("AWS_METADATA_SERVICE_TIMEOUT");
    char *end = NULL;
    long secs = t ? strtol(t, &end, 10) : 0;
    long timeout_ms = t && end && !*end && secs > 0 && secs < 3600 ? secs * 1000 : 1000;
    otr_buf url = OTR_BUF_INIT, token = OTR_BUF_INIT, hdr = OTR_BUF_INIT, role = OTR_BUF_INIT,
            answer = OTR_BUF_INIT;
    struct curl_slist *h = NULL;
    long status = 0;
    outcome o = NOT_CONFIGURED;
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;

    otr_buf_printf(&url, "%.*s/latest/api/token", (int)blen, base);
    h = curl_slist_append(h, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
    if (otr_creds_fetch("PUT", url.ptr, h, "", timeout_ms, &status, &token, err) < 0 ||
        status != 200) {
        otr_buf_printf(tried, "EC2 instance metadata at %.*s (%s)", (int)blen, base,
                       status ? "no token" : otr_error_message(err));
        otr_error_clear(err);
        goto done;
    }
    curl_slist_free_all(h);
    h = NULL;
    otr_buf_printf(&hdr, "X-aws-ec2-metadata-token: %s", token.ptr);
    h = curl_slist_append(h, hdr.ptr);
    otr_buf_clear(&url);
    otr_buf_printf(&url, "%.*s/latest/meta-data/iam/security-credentials/", (int)blen, base);
    if (otr_creds_fetch("GET", url.ptr, h, NULL, timeout_ms, &status, &role, err) < 0 ||
        status != 200 || role.len == 0) {
        otr_buf_printf(tried, "EC2 instance metadata (no instance role)");
        otr_error_clear(err);
        goto done;
    }
    char *nl = strchr(role.ptr, '\n');
    if (nl)
        *nl = '\0';
    otr_buf_clear(&url);
    otr_buf_printf(&url, "%.*s/latest/meta-data/iam/security-credentials/%s", (int)blen, base,
                   role.ptr);
    o = FAILED;
    if (otr_creds_fetch("GET", url.ptr, h, NULL, timeout_ms, &status, &answer, err) < 0 ||
        status != 200) {
        if (status)
            otr_error_set(err, OTR_ERR_GENERIC, "EC2 instance metadata: HTTP %ld for role %s",
                          status, role.ptr);
        goto done;
    }
    otr_buf desc = OTR_BUF_INIT;
    otr_buf_printf(&desc, "EC2 instance metadata (role %s)", role.ptr);
    if (parse_creds_json(&p->creds, answer.ptr, desc.ptr, err) == 0)
        o = FOUND;
    otr_buf_free(&desc);
done:
    otr_buf_free_secret(&answer);
    otr_buf_free(&url);
    otr_buf_free_secret(&token);
    otr_buf_free(&hdr);
    otr_buf_free(&role);
    curl_slist_free_all(h);
    return o;
}

/* ---- the chain ------------------------------------------------------------- */

static outcome run_source(otr_creds_provider *p, source s, otr_buf *tried, otr_error *err)
{
    switch (s) {
    case SRC_ENV: return from_env(p, tried, err);
    case SRC_WEB_IDENTITY: return from_web_identity(p, tried, err);
    case SRC_PROFILE_ASSUME_ROLE: return from_profile_assume_role(p, tried, err);
    case SRC_PROFILE_WEB_IDENTITY: return from_profile_web_identity(p, tried, err);
    case SRC_PROFILE_SSO: return otr_creds_from_sso(p, tried, err);
    case SRC_CREDENTIALS_FILE: return from_file(p, OTR_AWS_CREDENTIALS_FILE, tried, err);
    case SRC_PROCESS: return from_process(p, tried, err);
    case SRC_CONFIG_FILE: return from_file(p, OTR_AWS_CONFIG_FILE, tried, err);
    case SRC_CONTAINER: return from_container(p, tried, err);
    case SRC_IMDS: return from_imds(p, tried, err);
    case SRC_ROLE: return from_role(p, err);
    default: return NOT_CONFIGURED;
    }
}

/* --role-arn: the role, assumed with what the chain (the profile) gives. */
static outcome from_role(otr_creds_provider *p, otr_error *err)
{
    otr_creds_options so = {.profile = p->explicit_profile ? p->profile : NULL,
                            .region = p->region,
                            .now = p->now,
                            .now_ctx = p->now_ctx};
    otr_creds_provider *src = NULL;
    const otr_credentials *c = NULL;
    otr_buf desc = OTR_BUF_INIT;
    otr_buf_printf(&desc, "role %s (--role-arn)", p->role_arn);
    outcome o = otr_creds_provider_new(&src, &so, err) < 0 || otr_creds_get(src, &c, err) < 0 ||
                        assume_role(p, c, p->role_arn, NULL, NULL, NULL, desc.ptr, err) < 0
                    ? FAILED
                    : FOUND;
    otr_creds_provider_free(src);
    otr_buf_free(&desc);
    return o;
}

static int resolve(otr_creds_provider *p, otr_error *err)
{
    otr_buf tried = OTR_BUF_INIT;
    if (p->role_arn) {
        if (from_role(p, err) != FOUND)
            return -1;
        p->src = SRC_ROLE;
        p->fetches++;
        otr_log(OTR_LOG_VERBOSE, "credentials: %s (access key %s)", p->creds.source,
                p->creds.access_key_id);
        return 0;
    }
    if (p->explicit_profile && !otr_profile_exists(OTR_AWS_CONFIG_FILE, p->profile) &&
        !otr_profile_exists(OTR_AWS_CREDENTIALS_FILE, p->profile)) {
        char *c = otr_profile_path(OTR_AWS_CONFIG_FILE),
             *k = otr_profile_path(OTR_AWS_CREDENTIALS_FILE);
        otr_error_set(err, OTR_ERR_NOTFOUND, "profile %s is in neither %s nor %s", p->profile,
                      c ? c : "~/.aws/config", k ? k : "~/.aws/credentials");
        free(c);
        free(k);
        return -1;
    }
    for (source src = SRC_ENV; src <= SRC_IMDS; src++) {
        size_t before = tried.len;
        outcome o = run_source(p, src, &tried, err);
        if (o == FOUND) {
            p->src = src;
            p->fetches++;
            otr_buf_free(&tried);
            otr_log(OTR_LOG_VERBOSE, "credentials: %s (access key %s)", p->creds.source,
                    p->creds.access_key_id);
            return 0;
        }
        if (o == FAILED) {
            otr_buf_free(&tried);
            return -1;
        }
        if (tried.len > before)
            otr_buf_puts(&tried, "; ");
    }
    while (tried.len >= 2 && tried.ptr[tried.len - 2] == ';')
        tried.ptr[tried.len -= 2] = '\0';
    otr_error_set(err, OTR_ERR_NOTFOUND, "no AWS credentials found; tried: %s",
                  otr_buf_cstr(&tried));
    otr_buf_free(&tried);
    return -1;
}

int otr_creds_provider_new(otr_creds_provider **out, const otr_creds_options *o, otr_error *err)
{
    otr_creds_provider *p = calloc(1, sizeof(*p));
    if (!p)
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    p->explicit_profile = o->profile && *o->profile;
    p->profile = strdup(otr_profile_name(o->profile));
    p->region = o->region ? strdup(o->region) : NULL;
    p->now = o->now;
    p->now_ctx = o->now_ctx;
    if (o->role_arn && *o->role_arn && !(p->role_arn = strdup(o->role_arn))) {
        otr_creds_provider_free(p);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    *out = p;
    return 0;
}

int otr_creds_provider_static(otr_creds_provider **out, const char *access_key_id,
                              const char *secret_access_key, const char *session_token)
{
    otr_creds_provider *p = calloc(1, sizeof(*p));
    if (!p || otr_creds_set(&p->creds, access_key_id, secret_access_key, session_token, 0,
                            "static") < 0) {
        otr_creds_provider_free(p);
        return -1;
    }
    p->src = SRC_STATIC;
    *out = p;
    return 0;
}

int otr_creds_get(otr_creds_provider *p, const otr_credentials **out, otr_error *err)
{
    if (p->src == SRC_NONE) {
        if (resolve(p, err) < 0)
            return -1;
    } else if (p->creds.expiration &&
               p->creds.expiration - otr_creds_now(p) < OTR_CREDS_REFRESH_SECONDS) {
        otr_error rerr = OTR_ERROR_INIT;
        otr_buf ignored = OTR_BUF_INIT;
        otr_credentials old = p->creds;
        memset(&p->creds, 0, sizeof(p->creds));
        outcome o = run_source(p, p->src, &ignored, &rerr);
        otr_buf_free(&ignored);
        if (o == FOUND) {
            p->fetches++;
            otr_credentials_clear(&old);
            otr_log(OTR_LOG_VERBOSE, "credentials: refreshed from %s", p->creds.source);
        } else {
            otr_credentials_clear(&p->creds);
            p->creds = old;
            if (old.expiration <= otr_creds_now(p)) {
                otr_error_set(err, OTR_ERR_GENERIC,
                              "credentials from %s expired and could not "
                              "be refreshed: %s",
                              old.source, otr_error_message(&rerr));
                otr_error_clear(&rerr);
                return -1;
            }
            otr_log(OTR_LOG_VERBOSE, "credentials: refresh failed, using the current ones: %s",
                    otr_error_message(&rerr));
            otr_error_clear(&rerr);
        }
    }
    *out = &p->creds;
    return 0;
}

int otr_creds_fetches(const otr_creds_provider *p)
{
    return p->fetches;
}

void otr_creds_provider_free(otr_creds_provider *p)
{
    if (!p)
        return;
    otr_credentials_clear(&p->creds);
    free(p->profile);
    free(p->region);
    free(p->chain);
    free(p->role_arn);
    free(p);
}
