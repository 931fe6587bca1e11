/* ota-runner tokens: name, ClientToken and file:line of every manifest. */
#include "cli/commands.h"
#include "behaviour/behaviour.h"
#include "cli/load.h"
#include "kinds/kind.h"
#include "util/teardown.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static void print_json(const otr_manifest_set *set)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < set->count; i++) {
        const otr_manifest *m = set->items[i];
        cJSON *o = cJSON_CreateObject();
        otr_buf address = OTR_BUF_INIT;
        otr_address_full(&address, m->kind, m->name);
        cJSON_AddStringToObject(o, "name", m->name);
        cJSON_AddStringToObject(o, "kind", m->kind->name);
        cJSON_AddStringToObject(o, "address", otr_buf_cstr(&address));
        otr_buf_free(&address);
        cJSON_AddStringToObject(o, "file", m->file);
        cJSON_AddNumberToObject(o, "line", m->line);
        cJSON_AddStringToObject(o, "clientToken", m->client_token);
        cJSON_AddStringToObject(o, "specDigest", m->spec_digest);
        const otr_kind_behaviour *bh = otr_behaviour_of(m->kind);
        if (bh && bh->call_tokens)
            cJSON_AddItemToObject(o, "calls", bh->call_tokens(m, set));
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_Print(arr);
    if (s)
        printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(arr);
}

/* The tokens of the calls a manifest makes under its own (a rollout's
 * waves), one line each under it. */
static void print_calls(const otr_manifest *m, const otr_manifest_set *set, int width)
{
    const otr_kind_behaviour *bh = otr_behaviour_of(m->kind);
    cJSON *calls = bh && bh->call_tokens ? bh->call_tokens(m, set) : NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, calls)
    {
        otr_buf label = OTR_BUF_INIT;
        otr_buf_printf(&label, "  %s", cJSON_GetStringValue(cJSON_GetObjectItem(c, "name")));
        printf("%-*s  %s\n", width, otr_buf_cstr(&label),
               cJSON_GetStringValue(cJSON_GetObjectItem(c, "clientToken")));
        otr_buf_free(&label);
    }
    cJSON_Delete(calls);
}

static void print_text(const otr_manifest_set *set)
{
    int width = 4;
    otr_buf address = OTR_BUF_INIT;
    for (size_t i = 0; i < set->count; i++) {
        otr_buf_clear(&address);
        otr_address_short(&address, set->items[i]->kind, set->items[i]->name);
        if ((int)address.len > width)
            width = (int)address.len;
    }
    printf("%-*s  %-43s  %s\n", width, "NAME", "CLIENT TOKEN", "FILE");
    for (size_t i = 0; i < set->count; i++) {
        const otr_manifest *m = set->items[i];
        otr_buf_clear(&address);
        otr_address_short(&address, m->kind, m->name);
        printf("%-*s  %s  %s:%u\n", width, otr_buf_cstr(&address), m->client_token, m->file,
               m->line);
        print_calls(m, set, width);
    }
    otr_buf_free(&address);
}

int otr_cmd_tokens(const otr_options *o)
{
    otr_loaded l;
    int rc = OTR_EXIT_ERROR;
    if (otr_load(&l, o) < 0)
        goto done;
    if (l.diags.errors) {
        otr_print_diags_text(&l.diags, o);
        fprintf(stderr,
                "ota-runner: error: %zu invalid manifest error%s; no tokens printed "
                "(run 'ota-runner validate' for details)\n",
                l.diags.errors, l.diags.errors == 1 ? "" : "s");
        goto done;
    }
    if (o->output == OTR_OUT_JSON)
        print_json(&l.set);
    else
        print_text(&l.set);
    rc = OTR_EXIT_OK;
done:
    OTR_FREE_BEFORE_EXIT(otr_loaded_free(&l));
    return rc;
}
