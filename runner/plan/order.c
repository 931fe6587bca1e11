/* A plan's actions in order (resumes, deletes, ..., by kind and name), the
 * edges between them (a create before the tasks that refer to it), and
 * what their references name, in words (plan/internal.h). */
#include "plan/internal.h"

#include "util/alloc.h"
#include "util/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int action_cmp(const void *x, const void *y)
{
    const otr_action *a = x, *b = y;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    size_t ka = otr_kind_index(a->resource), kb = otr_kind_index(b->resource);
    if (ka != kb)
        return ka < kb ? -1 : 1;
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    return a->retired - b->retired;
}

static int add_dep(otr_action *a, size_t on)
{
    return otr_index_add(&a->deps, &a->ndeps, on);
}

static int creates(const otr_action *a)
{
    return (a->kind == OTR_ACT_CREATE || a->kind == OTR_ACT_REPLACE ||
            (a->kind == OTR_ACT_RESUME && a->resume_op == OTR_OP_CREATE)) &&
           !a->retired;
}

/* The name action a's reference f gives (free it), or NULL: read when its
 * manifest was (set, when there is one: no parse of each spec again), else
 * from its spec. */
static char *ref_target(const otr_manifest_set *set, const otr_action *a, size_t f)
{
    const char *field = a->resource->refs[f].field;
    int from_manifest =
        a->kind == OTR_ACT_CREATE || a->kind == OTR_ACT_REPLACE || a->kind == OTR_ACT_UPDATE;
    const otr_manifest *m = !set || !from_manifest ? NULL
                            : a->manifest          ? a->manifest
                                          : otr_manifest_set_find(set, a->resource, a->name);
    if (!m)
        return otr_record_spec_string(&a->desired, field);
    for (size_t i = 0; i < m->nrefs; i++)
        if (!strcmp(m->refs[i].field, field))
            return strdup(m->refs[i].target);
    return NULL;
}

/* An action under a key: its address, or the id it refers to. */
typedef struct link_key {
    size_t kind;      /* otr_kind_index */
    const char *text; /* by_address: the action's name; by_ref: owned */
    size_t action;
} link_key;

static int link_key_cmp(const void *a, const void *b)
{
    const link_key *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->text, y->text);
    return c ? c : (x->action > y->action) - (x->action < y->action);
}

/* The first key not before (kind, text). */
static size_t link_lower(const link_key *keys, size_t n, size_t kind, const char *text)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const link_key *k = &keys[mid];
        if (k->kind < kind || (k->kind == kind && strcmp(k->text, text) < 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Actions by address, and by the id each (moving away) refers to: the
 * lookups of link_actions, so that linking stays O(n log n). */
typedef struct link_index {
    link_key *by_address, *by_ref;
    size_t naddress, nref;
} link_index;

static int index_actions(const otr_plan *p, link_index *ix)
{
    size_t nrefs = 0;
    for (size_t i = 0; i < p->count; i++)
        nrefs += p->actions[i].resource->nrefs;
    ix->by_address = malloc((p->count + 1) * sizeof(*ix->by_address));
    ix->by_ref = malloc((nrefs + 1) * sizeof(*ix->by_ref));
    if (!ix->by_address || !ix->by_ref)
        return -1;
    for (size_t i = 0; i < p->count; i++) {
        const otr_action *d = &p->actions[i];
        ix->by_address[ix->naddress++] = (link_key){otr_kind_index(d->resource), d->name, i};
        if (d->kind == OTR_ACT_NOOP || d->kind == OTR_ACT_ORPHAN || d->kind == OTR_ACT_CREATE)
            continue; /* moves_off: these do not move away from what they use */
        for (size_t f = 0; f < d->resource->nrefs; f++) {
            char *uses = otr_record_spec_string(&d->old, d->resource->refs[f].id_field);
            const otr_kind *target = otr_kind_find(d->resource->refs[f].kind);
            if (uses && target)
                ix->by_ref[ix->nref++] = (link_key){otr_kind_index(target), uses, i};
            else
                free(uses);
        }
    }
    qsort(ix->by_address, ix->naddress, sizeof(*ix->by_address), link_key_cmp);
    if (ix->nref)
        qsort(ix->by_ref, ix->nref, sizeof(*ix->by_ref), link_key_cmp);
    return 0;
}

static int dep_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* The edges of action i (see link_actions). */
static int link_one(otr_plan *p, const otr_manifest_set *set, const link_index *ix, size_t i)
{
    otr_action *a = &p->actions[i];
    /* a reference to something (re)created in this run */
    for (size_t f = 0; f < a->resource->nrefs; f++) {
        char *target = ref_target(set, a, f);
        const otr_kind *tk = otr_kind_find(a->resource->refs[f].kind);
        size_t k = tk ? otr_kind_index(tk) : 0;
        for (size_t j = target && tk ? link_lower(ix->by_address, ix->naddress, k, target)
                                     : ix->naddress;
             j < ix->naddress && ix->by_address[j].kind == k &&
             !strcmp(ix->by_address[j].text, target);
             j++) {
            size_t d = ix->by_address[j].action;
            if (d != i && creates(&p->actions[d]) && add_dep(a, d) < 0) {
                free(target);
                return -1;
            }
        }
        free(target);
    }
    if (a->kind != OTR_ACT_DELETE)
        return 0;
    /* a delete waits for those that used the resource to move away */
    size_t k = otr_kind_index(a->resource);
    for (size_t j = a->old.id ? link_lower(ix->by_ref, ix->nref, k, a->old.id) : ix->nref;
         j < ix->nref && ix->by_ref[j].kind == k && !strcmp(ix->by_ref[j].text, a->old.id); j++)
        if (ix->by_ref[j].action != i && add_dep(a, ix->by_ref[j].action) < 0)
            return -1;
    /* a delete waits for the deletes of retired resources of kinds that may
     * refer to it: a retired record keeps no spec to say what it uses (an
     * older revision's wave on an old configuration: chaos, I5) */
    int referred = 0; /* only a kind others refer to (a configuration: few deletes) looks */
    for (size_t k2 = 0; otr_kinds[k2]; k2++)
        for (size_t f = 0; f < otr_kinds[k2]->nrefs; f++)
            referred |= !strcmp(otr_kinds[k2]->refs[f].kind, a->resource->name);
    for (size_t j = 0; referred && j < p->count; j++) {
        const otr_action *d = &p->actions[j];
        int refers = 0;
        for (size_t f = 0; d->kind == OTR_ACT_DELETE && d->retired && f < d->resource->nrefs; f++)
            refers |= !strcmp(d->resource->refs[f].kind, a->resource->name);
        if (j != i && refers && add_dep(a, j) < 0)
            return -1;
    }
    /* a retired delete waits for the replace that retires it, or for the
     * resumed create of an interrupted replace (it retires the id when it
     * settles: deleted first, the id came back as retired, gone at the
     * service; chaos, I4) */
    for (size_t j = a->retired && a->old.id ? link_lower(ix->by_address, ix->naddress, k, a->name)
                                            : ix->naddress;
         j < ix->naddress && ix->by_address[j].kind == k &&
         !strcmp(ix->by_address[j].text, a->name);
         j++) {
        const otr_action *d = &p->actions[ix->by_address[j].action];
        const char *retires =
            d->kind == OTR_ACT_RESUME && d->resume_op == OTR_OP_CREATE && !d->retired
                ? d->old.id
                : otr_action_replaces(d);
        if (retires && !strcmp(retires, a->old.id) && add_dep(a, ix->by_address[j].action) < 0)
            return -1;
    }
    return 0;
}

/* Links each action to those it waits for: what it refers to is created
 * first; what referred to a resource moves away before it is deleted; a
 * retired resource is deleted after the replace that retires it. Deps are
 * in plan order. */
static int link_actions(otr_plan *p, const otr_manifest_set *set)
{
    link_index ix = {NULL, NULL, 0, 0};
    int rc = index_actions(p, &ix);
    for (size_t i = 0; rc == 0 && i < p->count; i++) {
        rc = link_one(p, set, &ix, i);
        if (p->actions[i].ndeps > 1)
            qsort(p->actions[i].deps, p->actions[i].ndeps, sizeof(size_t), dep_cmp);
    }
    free(ix.by_address);
    for (size_t i = 0; i < ix.nref; i++)
        free((char *)ix.by_ref[i].text);
    free(ix.by_ref);
    return rc;
}

/* The spec (canonical JSON) of the manifest kind/name: in the set, or
 * (taken by the plan) in its action; or NULL. */
static const char *spec_named(const otr_plan *p, const otr_manifest_set *set, const otr_kind *kind,
                              const char *name)
{
    const otr_manifest *m = otr_manifest_set_find(set, kind, name);
    if (m && m->spec_json)
        return m->spec_json;
    for (size_t i = 0; i < p->count; i++) /* (a retired one's delete has no spec) */
        if (p->actions[i].resource == kind && p->actions[i].desired.spec_json &&
            !strcmp(p->actions[i].name, name))
            return p->actions[i].desired.spec_json;
    return NULL;
}

/* What references name, described once each (a fleet's tasks name few
 * configurations, each many times): by kind and name, in a table that
 * doubles. */
typedef struct described_ref {
    const otr_kind *kind;
    char *name; /* NULL: an empty slot */
    char *text; /* NULL: nothing to say */
} described_ref;

typedef struct described_refs {
    described_ref *slots;
    size_t size, used; /* size: a power of two, or 0 */
} described_refs;

static size_t described_slot(const described_refs *t, const otr_kind *k, const char *name)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)otr_kind_index(k);
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    size_t i = (size_t)h & (t->size - 1);
    while (t->slots[i].name && (t->slots[i].kind != k || strcmp(t->slots[i].name, name) != 0))
        i = (i + 1) & (t->size - 1);
    return i;
}

static int described_grow(described_refs *t)
{
    described_refs bigger = {NULL, t->size ? t->size * 2 : 64, t->used};
    if (!(bigger.slots = calloc(bigger.size, sizeof(*bigger.slots))))
        return -1;
    for (size_t i = 0; i < t->size; i++)
        if (t->slots[i].name)
            bigger.slots[described_slot(&bigger, t->slots[i].kind, t->slots[i].name)] = t->slots[i];
    free(t->slots);
    *t = bigger;
    return 0;
}

/* Hands the table's words to the plan (actions point at them) and frees the
 * rest; -1 without memory (the words then freed here). */
static int described_to_plan(described_refs *t, otr_plan *p)
{
    size_t alloc = p->nwords;
    int rc = 0;
    for (size_t i = 0; i < t->size; i++) {
        free(t->slots[i].name);
        if (!t->slots[i].text)
            continue;
        if (rc == 0 && OTR_GROW(p->words, p->nwords, alloc, 16) == 0)
            p->words[p->nwords++] = t->slots[i].text;
        else
            rc = -1;
    }
    free(t->slots);
    return rc;
}

/* The words for kind/name (described before, or now), or NULL. */
static const char *ref_words(const otr_plan *p, const otr_manifest_set *set, const otr_kind *k,
                             const char *name, described_refs *seen)
{
    if ((seen->used + 1) * 2 > seen->size && described_grow(seen) < 0)
        return NULL;
    described_ref *d = &seen->slots[described_slot(seen, k, name)];
    if (d->name)
        return d->text;
    const char *spec = k->describe ? spec_named(p, set, k, name) : NULL;
    otr_buf text = OTR_BUF_INIT;
    if (spec)
        k->describe(spec, NULL, &text);
    if (!(d->name = strdup(name))) {
        otr_buf_free(&text);
        return NULL;
    }
    d->kind = k;
    d->text = text.len ? otr_buf_detach(&text) : NULL;
    otr_buf_free(&text);
    seen->used++;
    return d->text;
}

/* For each create and replace: what its references name, in the named
 * kind's words (kind->describe), for a reviewer. */
static int describe_refs(otr_plan *p, const otr_manifest_set *set)
{
    described_refs seen = {NULL, 0, 0};
    int rc = 0;
    for (size_t i = 0; i < p->count && rc == 0; i++) {
        otr_action *a = &p->actions[i];
        otr_buf text = OTR_BUF_INIT;
        const char *only = NULL; /* the words of its one reference: pointed at, not copied */
        if ((a->kind != OTR_ACT_CREATE && a->kind != OTR_ACT_REPLACE) || !a->desired.spec_json)
            continue;
        for (size_t r = 0; r < a->resource->nrefs; r++) {
            const otr_kind_ref *ref = &a->resource->refs[r];
            const otr_kind *k = otr_kind_find(ref->kind);
            char *name = ref_target(set, a, r);
            const char *words = k && name ? ref_words(p, set, k, name, &seen) : NULL;
            free(name);
            if (words && !only && !text.len) {
                only = words;
                continue;
            }
            if (words && !text.len)
                otr_buf_puts(&text, only);
            if (words) {
                otr_buf_puts(&text, "; ");
                otr_buf_puts(&text, words);
            }
        }
        size_t alloc = p->nwords;
        if (text.len && (otr_buf_failed(&text) || OTR_GROW(p->words, p->nwords, alloc, 16) < 0))
            rc = -1;
        else if (text.len)
            only = p->words[p->nwords++] = otr_buf_detach(&text);
        a->refs_text = only;
        otr_buf_free(&text);
    }
    return described_to_plan(&seen, p) < 0 ? -1 : rc;
}

int otr_plan_link(otr_plan *p, const otr_manifest_set *set)
{
    return link_actions(p, set);
}

int otr_plan_order(otr_plan *p, const otr_manifest_set *set)
{
    if (p->count > 1)
        qsort(p->actions, p->count, sizeof(*p->actions), action_cmp);
    int rc = link_actions(p, set) < 0 || describe_refs(p, set) < 0 ? -1 : 0;
    for (size_t i = 0; i < p->count; i++)
        p->actions[i].manifest = NULL; /* the set may go before the plan */
    return rc;
}
