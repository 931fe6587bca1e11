/* What an action is and does, read by every part of the plan and by its
 * users: its kind's name, the plan's count of changes, what an action
 * replaces, cancels or deletes. */
#include "plan/plan.h"

static const char *const kind_names[OTR_ACT_KINDS] = {"resume", "delete", "replace", "update",
                                                      "create", "orphan", "noop"};

const char *otr_action_kind_name(otr_action_kind k)
{
    return kind_names[k];
}

size_t otr_plan_changes(const otr_plan *p)
{
    return p->counts[OTR_ACT_RESUME] + p->counts[OTR_ACT_DELETE] + p->counts[OTR_ACT_REPLACE] +
           p->counts[OTR_ACT_UPDATE] + p->counts[OTR_ACT_CREATE];
}

const char *otr_action_replaces(const otr_action *a)
{
    return a->kind == OTR_ACT_REPLACE && a->resource->replace_order == OTR_REPLACE_CREATE_FIRST
               ? a->old.id
               : NULL;
}

const char *otr_action_cancels(const otr_action *a)
{
    const char *st = a->old.remote_status;
    int deletes =
        a->kind == OTR_ACT_DELETE ||
        (a->kind == OTR_ACT_REPLACE && a->resource->replace_order == OTR_REPLACE_DELETE_FIRST);
    if (!deletes || (!a->old.id && !a->after_resume) || !a->resource->running)
        return NULL;
    /* never seen (made since the last refresh, and --refresh none; or by a
     * resumed create of this run): may be running */
    if (!st)
        return OTR_STATUS_UNKNOWN;
    return otr_kind_running(a->resource, st) ? st : NULL;
}

const char *otr_action_old_id(const otr_action *a)
{
    return a->old.id ? a->old.id : a->after_resume ? "(the one the resumed create makes)" : "?";
}

int otr_action_deletes_task(const otr_action *a)
{
    return a->resource->guarded_deletes &&
           (a->kind == OTR_ACT_DELETE || a->kind == OTR_ACT_REPLACE);
}
