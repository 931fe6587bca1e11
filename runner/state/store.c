/*
 * What every store shares (store.h): freeing one, which releases its lock,
 * and the text of a lock, which names its holder. Below the stores and the
 * model: it calls neither.
 */
#include "state/store.h"

#include "util/json.h"
#include "util/log.h"
#include "util/time.h"

#include <stdlib.h>
#include <unistd.h>

void otr_store_free(otr_store *st)
{
    if (!st)
        return;
    otr_error ignored = OTR_ERROR_INIT;
    if (st->ops->unlock(st, &ignored) < 0) {
        otr_log_warn("%s", otr_error_message(&ignored));
        otr_error_clear(&ignored);
    }
    st->ops->free(st);
    free(st->where);
    free(st->journal_where);
    free(st);
}

char *otr_state_lock_text(const char *command, const char *id, const char *started_at)
{
    char host[256] = "unknown";
    gethostname(host, sizeof(host) - 1);
    char *now = otr_time_now_iso8601();
    otr_jb b = OTR_JB_INIT;
    cJSON *h = cJSON_CreateObject();
    if (!now)
        b.failed = 1;
    otr_jb_str(&b, h, "id", id);
    otr_jb_num(&b, h, "pid", (double)getpid());
    otr_jb_str(&b, h, "host", host);
    otr_jb_str(&b, h, "startedAt", started_at ? started_at : now);
    if (id)
        otr_jb_str(&b, h, "renewedAt", now);
    otr_jb_str(&b, h, "command", command);
    char *text = h && !b.failed ? cJSON_PrintUnformatted(h) : NULL;
    free(now);
    cJSON_Delete(h);
    return text;
}
