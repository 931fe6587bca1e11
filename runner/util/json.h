/* Reading cJSON values: integers without undefined behaviour, members by path. */
#ifndef OTR_UTIL_JSON_H
#define OTR_UTIL_JSON_H

#include <cjson/cJSON.h>

/* 0 and *out when v is a number, finite, whole and within [min, max];
 * -1 otherwise (also for NULL). */
int otr_json_integer(const cJSON *v, long long min, long long max, long long *out);

/* The integer, or fallback when v is not one in [min, max]. */
long long otr_json_integer_or(const cJSON *v, long long min, long long max, long long fallback);

/* The member at a dotted path ("task.TaskConfigurationRef") of obj, or NULL;
 * *parent (when given) gets the object that holds it. */
cJSON *otr_json_at(const cJSON *obj, const char *path, cJSON **parent);

#endif
