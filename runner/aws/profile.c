/* Reading ~/.aws/config and ~/.aws/credentials (INI, as the AWS CLI writes them). */
#include "aws/profile.h"

#include "util/buf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *otr_profile_path(otr_aws_file which)
{
    const char *env =
        getenv(which == OTR_AWS_CONFIG_FILE ? "AWS_CONFIG_FILE" : "AWS_SHARED_CREDENTIALS_FILE");
    if (env && *env)
        return strdup(env);
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s/.aws/%s", home, which == OTR_AWS_CONFIG_FILE ? "config" : "credentials");
    return otr_buf_detach(&b);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Does a "[...]" header name the profile? In the config file a profile is
 * [profile NAME], except [default]; in the credentials file it is [NAME]. */
static int section_matches(otr_aws_file which, char *inside, const char *profile)
{
    inside = trim(inside);
    /* [sso-session NAME] sections, asked for as "sso-session NAME" */
    if (which == OTR_AWS_CONFIG_FILE && !strncmp(profile, "sso-session ", 12))
        return !strncmp(inside, "sso-session", 11) && isspace((unsigned char)inside[11]) &&
               !strcmp(trim(inside + 12), profile + 12);
    if (which == OTR_AWS_CREDENTIALS_FILE || !strcmp(inside, "default"))
        return !strcmp(inside, profile);
    if (strncmp(inside, "profile", 7) != 0 || !isspace((unsigned char)inside[7]))
        return 0;
    return !strcmp(trim(inside + 8), profile);
}

/* Walks the file; with key NULL answers whether the section exists. */
static char *lookup(otr_aws_file which, const char *profile, const char *key, int *found)
{
    char *path = otr_profile_path(which);
    FILE *f = path ? fopen(path, "r") : NULL;
    char *line = NULL, *value = NULL;
    size_t cap = 0;
    int in_section = 0;
    *found = 0;
    free(path);
    if (!f)
        return NULL;
    while (getline(&line, &cap, f) > 0) {
        char *l = line;
        if (isspace((unsigned char)l[0]) && in_section)
            continue; /* a nested sub-setting ("s3 =\n  max_concurrency = 4") */
        l = trim(l);
        if (!*l || *l == '#' || *l == ';')
            continue;
        if (*l == '[') {
            char *end = strchr(l, ']');
            if (end)
                *end = '\0';
            in_section = end && section_matches(which, l + 1, profile);
            *found |= in_section;
            continue;
        }
        if (!in_section || !key)
            continue;
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq = '\0';
        if (!strcmp(trim(l), key)) {
            free(value);
            value = strdup(trim(eq + 1));
        }
    }
    free(line);
    fclose(f);
    return value;
}

int otr_profile_exists(otr_aws_file which, const char *profile)
{
    int found;
    lookup(which, profile, NULL, &found);
    return found;
}

char *otr_profile_get(otr_aws_file which, const char *profile, const char *key)
{
    int found;
    char *v = lookup(which, profile, key, &found);
    if (v && !*v) {
        free(v);
        return NULL;
    }
    return v;
}

const char *otr_profile_name(const char *explicit_profile)
{
    if (explicit_profile && *explicit_profile)
        return explicit_profile;
    const char *env = getenv("AWS_PROFILE");
    return env && *env ? env : "default";
}

char *otr_region_resolve(const char *flag, const char *profile)
{
    const char *v = flag && *flag ? flag : getenv("AWS_REGION");
    if (!v || !*v)
        v = getenv("AWS_DEFAULT_REGION");
    if (v && *v)
        return strdup(v);
    return otr_profile_get(OTR_AWS_CONFIG_FILE, otr_profile_name(profile), "region");
}

char *otr_retry_mode_resolve(const char *flag, const char *profile)
{
    const char *v = flag && *flag ? flag : getenv("AWS_RETRY_MODE");
    if (v && *v)
        return strdup(v);
    return otr_profile_get(OTR_AWS_CONFIG_FILE, otr_profile_name(profile), "retry_mode");
}
