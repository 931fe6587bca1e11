/* ota-runner.yaml: the environments a fleet is split into (see envs.h). */
#include "envs/envs.h"

#include "manifest/yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reading {
    otr_envs *out;
    const char *file;
    otr_diags *diags;
    int docs, failed;
} reading;

static void problem(reading *r, const otr_ynode *at, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void problem(reading *r, const otr_ynode *at, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    (void)otr_diags_add(r->diags, OTR_SEV_ERROR, 0, r->file, at ? at->line : 1, at ? at->col : 1,
                        field, "%s", msg);
    r->failed = 1;
}

static int scalar(const otr_ynode *n)
{
    return n && n->type == OTR_YSCALAR && !otr_ynode_is_null(n);
}

/* A mapping key's text ("" for a key that is not a scalar). */
static const char *key_of(const otr_ynode *k)
{
    return k->type == OTR_YSCALAR && k->value ? k->value : "";
}

static const otr_ynode *get(const otr_ynode *map, const char *key)
{
    for (size_t i = 0; map && map->type == OTR_YMAP && i + 1 < map->count; i += 2)
        if (!strcmp(key_of(map->items[i]), key))
            return map->items[i + 1];
    return NULL;
}

static int chars_in(const char *s, const char *set, size_t min, size_t max)
{
    size_t n = strlen(s);
    return n >= min && n <= max && strspn(s, set) == n;
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"

/* A region as AWS spells them: us-east-1, eu-central-2, us-gov-west-1. */
static int region_ok(const char *s)
{
    size_t n = strlen(s);
    const char *dash = strrchr(s, '-');
    return n >= 6 && n <= 32 && dash && dash > s && dash[1] >= '1' && dash[1] <= '9' &&
           chars_in(dash + 1, "0123456789", 1, 2) && chars_in(s, LOWER_DIGITS "-", n, n) &&
           strchr(s, '-') < dash;
}

/* A path inside the repository, as --path reads one. */
static const char *path_problem(const char *p)
{
    if (!*p)
        return "is empty (the repository's root is \".\")";
    if (p[0] == '/' || strstr(p, ".."))
        return "must be a folder inside the repository, without '..'";
    if (strchr(p, ':'))
        return "holds a ':' (which joins paths)";
    return NULL;
}

static char *text_of(reading *r, const otr_ynode *n, const char *field, int required)
{
    if (!n && !required)
        return NULL;
    if (!scalar(n) || n->style == OTR_YBLOCK) {
        problem(r, n, field, "%s, expected a string", n ? otr_ynode_describe(n) : "missing");
        return NULL;
    }
    return strdup(n->value);
}

static void labels(reading *r, otr_env *e, const otr_ynode *n)
{
    if (!n)
        return;
    if (n->type != OTR_YMAP) {
        problem(r, n, "labels", "%s, expected a mapping of KEY: VALUE", otr_ynode_describe(n));
        return;
    }
    e->labels = calloc(n->count / 2 + 1, sizeof(*e->labels));
    for (size_t i = 0; e->labels && i + 1 < n->count; i += 2) {
        const otr_ynode *k = n->items[i], *v = n->items[i + 1];
        if (!chars_in(key_of(k), LOWER_DIGITS "-_./", 1, 63))
            problem(r, k, "labels", "the key \"%s\" must be 1 to 63 of a-z 0-9 - _ . /", key_of(k));
        else if (!scalar(v) || strchr(v->value, ',') || strchr(v->value, '='))
            problem(r, v, key_of(k), "a label's value is a string without ',' or '='");
        else
            e->labels[e->nlabels++] = (otr_env_label){strdup(k->value), strdup(v->value)};
    }
}

static void paths(reading *r, otr_env *e, const otr_ynode *n)
{
    otr_buf joined = OTR_BUF_INIT;
    if (!n || n->type != OTR_YSEQ || n->count == 0 || n->count > 16) {
        problem(r, n, "paths", "%s, expected a list of 1 to 16 folders",
                n ? otr_ynode_describe(n) : "missing");
        return;
    }
    for (size_t i = 0; i < n->count; i++) {
        const otr_ynode *p = n->items[i];
        const char *bad = scalar(p) ? path_problem(p->value) : "is not a string";
        if (bad)
            problem(r, p, "paths", "\"%s\" %s", scalar(p) ? p->value : "", bad);
        else
            otr_buf_printf(&joined, "%s%s", joined.len ? ":" : "", p->value);
    }
    e->path = otr_buf_detach(&joined);
}

static const char *const FIELDS[] = {"name",  "region",   "profile", "role", "paths",
                                     "state", "endpoint", "labels",  NULL};

static void environment(reading *r, const otr_ynode *n)
{
    otr_envs *out = r->out;
    if (n->type != OTR_YMAP) {
        problem(r, n, "environments", "%s, expected a mapping", otr_ynode_describe(n));
        return;
    }
    for (size_t i = 0; i + 1 < n->count; i += 2) {
        size_t f = 0;
        while (FIELDS[f] && strcmp(FIELDS[f], key_of(n->items[i])))
            f++;
        if (!FIELDS[f])
            problem(r, n->items[i], key_of(n->items[i]),
                    "unknown field (an environment has name, region, profile, role, paths, "
                    "state, endpoint, labels)");
    }
    otr_env *e = &out->items[out->count++];
    e->line = n->line;
    e->name = text_of(r, get(n, "name"), "name", 1);
    e->region = text_of(r, get(n, "region"), "region", 1);
    e->profile = text_of(r, get(n, "profile"), "profile", 0);
    e->role = text_of(r, get(n, "role"), "role", 0);
    e->state = text_of(r, get(n, "state"), "state", 1);
    e->endpoint = text_of(r, get(n, "endpoint"), "endpoint", 0);
    paths(r, e, get(n, "paths"));
    labels(r, e, get(n, "labels"));
    if (e->name && (!chars_in(e->name, LOWER_DIGITS "-", 1, 63) || e->name[0] == '-' ||
                    e->name[strlen(e->name) - 1] == '-' || !strcmp(e->name, "all")))
        problem(r, get(n, "name"), "name",
                "\"%s\": a name is 1 to 63 of a-z 0-9 and '-', not starting or ending with '-', "
                "and not \"all\"",
                e->name);
    for (size_t i = 0; e->name && i + 1 < out->count; i++)
        if (out->items[i].name && !strcmp(out->items[i].name, e->name))
            problem(r, get(n, "name"), "name", "\"%s\" is named twice (line %u first)", e->name,
                    out->items[i].line);
    if (e->region && !region_ok(e->region))
        problem(r, get(n, "region"), "region", "\"%s\" is not a region (us-east-1, eu-west-1, ...)",
                e->region);
    if (e->role && (strncmp(e->role, "arn:aws", 7) || !strstr(e->role, ":role/")))
        problem(r, get(n, "role"), "role",
                "\"%s\" is not a role's ARN (arn:aws:iam::ACCOUNT:role/NAME)", e->role);
    if (e->endpoint && strncmp(e->endpoint, "https://", 8) && strncmp(e->endpoint, "http://", 7))
        problem(r, get(n, "endpoint"), "endpoint", "\"%s\" is not an http(s) URL", e->endpoint);
    for (size_t i = 0; e->state && i + 1 < out->count; i++)
        if (out->items[i].state && !strcmp(out->items[i].state, e->state))
            problem(r, get(n, "state"), "state",
                    "\"%s\" is also %s's state: each environment needs its own (its own lock)",
                    e->state, out->items[i].name ? out->items[i].name : "another environment's");
}

static int document(otr_ydoc *doc, void *ctx)
{
    reading *r = ctx;
    const otr_ynode *root = doc->root, *list = get(root, "environments");
    const otr_ynode *version = get(root, "apiVersion"), *kind = get(root, "kind");
    if (r->docs++) {
        problem(r, root, NULL, "the file holds more than one document");
    } else if (!root || root->type != OTR_YMAP) {
        problem(r, root, NULL, "expected a mapping with apiVersion, kind and environments");
    } else if (!scalar(version) || strcmp(version->value, "ota-runner/v1")) {
        problem(r, version ? version : root, "apiVersion", "expected ota-runner/v1");
    } else if (!scalar(kind) || strcmp(kind->value, "Environments")) {
        problem(r, kind ? kind : root, "kind", "expected Environments");
    } else if (!list || list->type != OTR_YSEQ || !list->count || list->count > OTR_ENVS_MAX) {
        problem(r, list ? list : root, "environments", "expected a list of 1 to %d environments",
                OTR_ENVS_MAX);
    } else {
        for (size_t i = 0; i + 1 < root->count; i += 2)
            if (strcmp(key_of(root->items[i]), "apiVersion") &&
                strcmp(key_of(root->items[i]), "kind") &&
                strcmp(key_of(root->items[i]), "environments"))
                problem(r, root->items[i], key_of(root->items[i]),
                        "unknown field (the file has apiVersion, kind and environments)");
        r->out->items = calloc(list->count, sizeof(otr_env));
        for (size_t i = 0; r->out->items && i < list->count; i++)
            environment(r, list->items[i]);
    }
    otr_ydoc_free(doc);
    return 0;
}

int otr_envs_parse(otr_envs *out, const char *file, const char *text, size_t len, otr_diags *diags,
                   otr_error *err)
{
    reading r = {.out = out, .file = file, .diags = diags};
    memset(out, 0, sizeof(*out));
    if (len > OTR_ENVS_MAX_FILE) {
        problem(&r, NULL, NULL, "larger than %zu bytes", OTR_ENVS_MAX_FILE);
        return -1;
    }
    size_t before = diags->errors;
    if (otr_yaml_parse(text, len, file, 0, diags, document, &r, err) < 0)
        return -1;
    if (!r.docs && diags->errors == before)
        problem(&r, NULL, NULL, "the file is empty: give apiVersion, kind and environments");
    if (r.failed || diags->errors > before) {
        otr_envs_free(out);
        return -1;
    }
    return 0;
}

int otr_envs_is_name(const char *sel)
{
    return strcmp(sel, "all") && !strchr(sel, '=');
}

/* Does e carry every KEY=VALUE of sel? */
static int has_labels(const otr_env *e, const char *sel)
{
    for (const char *p = sel; *p;) {
        size_t len = strcspn(p, ","), eq = strcspn(p, "=");
        int found = 0;
        for (size_t i = 0; eq < len && i < e->nlabels; i++)
            found |= strlen(e->labels[i].key) == eq && !strncmp(e->labels[i].key, p, eq) &&
                     strlen(e->labels[i].value) == len - eq - 1 &&
                     !strncmp(e->labels[i].value, p + eq + 1, len - eq - 1);
        if (!found)
            return 0;
        p += len + (p[len] == ',');
    }
    return 1;
}

int otr_envs_select(const otr_envs *e, const char *sel, size_t **picked, size_t *n, otr_error *err)
{
    otr_buf names = OTR_BUF_INIT;
    *n = 0;
    if (!(*picked = calloc(e->count + 1, sizeof(**picked))))
        return otr_error_set(err, OTR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < e->count; i++) {
        int take = !strcmp(sel, "all") || (otr_envs_is_name(sel) ? !strcmp(e->items[i].name, sel)
                                                                 : has_labels(&e->items[i], sel));
        if (take)
            (*picked)[(*n)++] = i;
        otr_buf_printf(&names, "%s%s", i ? ", " : "", e->items[i].name);
    }
    if (*n == 0) {
        otr_error_set(err, OTR_ERR_USAGE, "--env %s: %s in %s (there are: %s)", sel,
                      otr_envs_is_name(sel) ? "no environment of that name"
                                            : "no environment has those labels",
                      OTR_ENVS_FILE, otr_buf_cstr(&names));
        free(*picked);
        *picked = NULL;
    }
    otr_buf_free(&names);
    return *n ? 0 : -1;
}

void otr_envs_free(otr_envs *e)
{
    for (size_t i = 0; e->items && i < e->count; i++) {
        otr_env *x = &e->items[i];
        free(x->name);
        free(x->region);
        free(x->profile);
        free(x->role);
        free(x->state);
        free(x->endpoint);
        free(x->path);
        for (size_t j = 0; j < x->nlabels; j++) {
            free(x->labels[j].key);
            free(x->labels[j].value);
        }
        free(x->labels);
    }
    free(e->items);
    memset(e, 0, sizeof(*e));
}
