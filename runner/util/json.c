/* Checked integer reads from cJSON numbers (which are doubles); members by path. */
#include "util/json.h"

#include <math.h>
#include <string.h>

int otr_json_integer(const cJSON *v, long long min, long long max, long long *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    /* compare as doubles before converting: a cast out of range is undefined */
    if (!isfinite(d) || d != floor(d) || d < (double)min || d > (double)max)
        return -1;
    *out = (long long)d;
    return 0;
}

long long otr_json_integer_or(const cJSON *v, long long min, long long max, long long fallback)
{
    long long x;
    return otr_json_integer(v, min, max, &x) == 0 ? x : fallback;
}

cJSON *otr_json_at(const cJSON *obj, const char *path, cJSON **parent)
{
    char part[128];
    cJSON *at = (cJSON *)obj;
    if (parent)
        *parent = NULL;
    for (const char *p = path; at && *p;) {
        size_t len = strcspn(p, ".");
        if (len >= sizeof(part))
            return NULL;
        memcpy(part, p, len);
        part[len] = '\0';
        if (parent)
            *parent = at;
        at = cJSON_GetObjectItemCaseSensitive(at, part);
        p += len + (p[len] == '.');
    }
    return at;
}
