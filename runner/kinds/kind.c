/* Looking kinds up, addresses, and what every kind does the same way. */
#include "kinds/kind.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the kinds others refer to come first, so a plan meets them first */
const otr_kind *const otr_kinds[] = {&otr_kind_ota_task_configuration, &otr_kind_ota_task,
                                     &otr_kind_ota_rollout, NULL};

const otr_kind *otr_kind_find(const char *name)
{
    for (size_t i = 0; otr_kinds[i]; i++)
        if (!strcmp(otr_kinds[i]->name, name))
            return otr_kinds[i];
    return NULL;
}

size_t otr_kind_index(const otr_kind *k)
{
    size_t i = 0;
    while (otr_kinds[i] && otr_kinds[i] != k)
        i++;
    return i;
}

int otr_address_parse(const char *address, const otr_kind **kind, const char **name, otr_buf *why)
{
    const char *slash = strchr(address, '/');
    *kind = NULL;
    *name = NULL;
    if (!slash) {
        *kind = &otr_kind_ota_task;
        *name = address;
        return 0;
    }
    const char *words[8];
    size_t n = 0;
    for (size_t i = 0; otr_kinds[i] && n < 7; i++) {
        if (strlen(otr_kinds[i]->name) == (size_t)(slash - address) &&
            !strncmp(otr_kinds[i]->name, address, (size_t)(slash - address))) {
            *kind = otr_kinds[i];
            *name = slash + 1;
            return 0;
        }
        words[n++] = otr_kinds[i]->name;
    }
    words[n] = NULL;
    char given[64];
    snprintf(given, sizeof(given), "%.*s", (int)(slash - address < 63 ? slash - address : 63),
             address);
    const char *near = otr_schema_suggest_word(words, given);
    otr_buf_printf(why, "%s is not a kind", given);
    if (near)
        otr_buf_printf(why, "; did you mean %s?", near);
    else
        for (size_t i = 0; i < n; i++) /* every kind, so the list cannot fall behind */
            otr_buf_printf(why, "%s%s", i ? ", " : " (", words[i]);
    if (!near && n)
        otr_buf_putc(why, ')');
    return -1;
}

void otr_address_short(otr_buf *out, const otr_kind *kind, const char *name)
{
    if (kind == &otr_kind_ota_task)
        otr_buf_puts(out, name);
    else
        otr_address_full(out, kind, name);
}

void otr_address_full(otr_buf *out, const otr_kind *kind, const char *name)
{
    otr_buf_printf(out, "%s/%s", kind->name, name);
}

static int in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list && s && list[i]; i++)
        if (!strcmp(list[i], s))
            return 1;
    return 0;
}

const otr_kind *otr_kind_sent(const otr_kind *k)
{
    return k->body_kind ? k->body_kind : k;
}

int otr_kind_updatable(const otr_kind *k, const char *field)
{
    return in_list(k->updatable, field) ||
           (k->tags_in_place && k->tags_key && field && !strcmp(field, k->tags_key));
}

int otr_kind_running(const otr_kind *k, const char *status)
{
    return in_list(k->running, status);
}

const otr_kind_ref *otr_kind_ref_of(const otr_kind *k, const char *field)
{
    for (size_t i = 0; i < k->nrefs; i++)
        if (!strcmp(k->refs[i].field, field))
            return &k->refs[i];
    return NULL;
}

/* Appends a page to *all; takes the page's items. */
static int append_page(otr_remote **all, size_t *n, otr_remote *page, size_t np, otr_error *err)
{
    if (!np) {
        free(page);
        return 0;
    }
    otr_remote *grown = realloc(*all, (*n + np) * sizeof(*grown));
    if (!grown) {
        otr_remotes_free(page, np);
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    }
    memcpy(grown + *n, page, np * sizeof(*page));
    *all = grown;
    *n += np;
    free(page);
    return 0;
}

int otr_kind_list_all(const otr_kind *k, otr_aws_client *c, otr_remote **items, size_t *n,
                      otr_error *err)
{
    char *token = NULL;
    size_t pages = 0;
    int rc = 0;
    *items = NULL;
    *n = 0;
    do {
        otr_aws_call *call = k->api->list_call(token);
        otr_remote *page = NULL;
        size_t np = 0;
        char *next = NULL;
        if (!call)
            rc = otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
        else if (otr_aws_client_call(c, call, err) < 0 ||
                 k->api->parse_list(call, &page, &np, &next, err) < 0)
            rc = -1;
        else
            rc = append_page(items, n, page, np, err);
        if (rc < 0 || !call)
            free(next), next = NULL;
        const char *op = call ? call->operation : k->name;
        /* as botocore: a token answered with itself would loop; one seen
         * before, further back, is the service's business, up to a bound */
        if (rc == 0 && next && token && !strcmp(next, token))
            rc = otr_error_set(err, OTR_ERR_INVALID,
                               "%s: the service sent the same NextToken twice (after %zu "
                               "items); stopping instead of looping",
                               op, *n);
        else if (rc == 0 && next && ++pages >= OTR_LIST_MAX_PAGES)
            rc = otr_error_set(err, OTR_ERR_INVALID,
                               "%s: more than %d pages (%zu items); stopping: the service's "
                               "NextTokens do not end",
                               op, OTR_LIST_MAX_PAGES, *n);
        otr_aws_call_free(call);
        free(token);
        token = rc == 0 ? next : (free(next), NULL);
    } while (rc == 0 && token);
    free(token);
    if (rc < 0) {
        otr_remotes_free(*items, *n);
        *items = NULL;
        *n = 0;
    }
    return rc;
}

static int str_item_cmp(const void *a, const void *b)
{
    return strcmp((*(cJSON *const *)a)->valuestring, (*(cJSON *const *)b)->valuestring);
}

int otr_spec_normalise(cJSON *v)
{
    cJSON *c;
    if (cJSON_IsString(v)) {
        int64_t t;
        char iso[21];
        if (otr_time_parse_iso8601(v->valuestring, &t) == 0) {
            otr_time_format_iso8601(iso, (time_t)t);
            if (!cJSON_SetValuestring(v, iso))
                return -1;
        }
        return 0;
    }
    cJSON_ArrayForEach(c, v) if (otr_spec_normalise(c) < 0) return -1;
    cJSON *target = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "Target") : NULL;
    int n = cJSON_GetArraySize(target), strings = 1;
    cJSON_ArrayForEach(c, target) strings &= cJSON_IsString(c);
    if (n > 1 && strings) {
        cJSON **items = malloc((size_t)n * sizeof(*items));
        if (!items)
            return -1;
        for (int i = 0; i < n; i++)
            items[i] = cJSON_DetachItemFromArray(target, 0);
        qsort(items, (size_t)n, sizeof(*items), str_item_cmp);
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(target, items[i]);
        free(items);
    }
    return 0;
}
