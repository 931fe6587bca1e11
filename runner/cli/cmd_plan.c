/* ota-runner plan: what apply would do. */
#include "cli/commands.h"
#include "cli/planning.h"
#include "cli/render_plan.h"
#include "util/file.h"
#include "util/json.h"
#include "util/teardown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Appends the markdown plan to $GITHUB_STEP_SUMMARY, when it is set. */
static void write_step_summary(const otr_plan *p, const char *warnings)
{
    const char *path = getenv("GITHUB_STEP_SUMMARY");
    if (!path || !*path)
        return;
    FILE *f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "ota-runner: warning: cannot append to GITHUB_STEP_SUMMARY %s\n", path);
        return;
    }
    otr_buf md = OTR_BUF_INIT;
    otr_render_plan_markdown(p, warnings, &md);
    fputs(otr_buf_cstr(&md), f);
    fclose(f);
    otr_buf_free(&md);
}

int otr_cmd_plan(const otr_options *o)
{
    otr_planning pl;
    int rc = otr_planning_prepare(&pl, o, NULL); /* a plan reads without the lock */
    otr_buf out = OTR_BUF_INIT, warnings = OTR_BUF_INIT;
    if (rc)
        goto done;
    const otr_plan *p = pl.plan;
    otr_plan_guards guards = otr_planning_guards(o);
    otr_plan_check_guards(p, &guards, &warnings);
    if (o->out) {
        otr_error err = OTR_ERROR_INIT;
        cJSON *j = otr_plan_to_json(p);
        char *text = j ? cJSON_Print(j) : NULL;
        cJSON_Delete(j);
        if (!text)
            otr_error_set(&err, OTR_ERR_NOMEM, "out of memory: the plan was not saved to %s",
                          o->out);
        if (!text || otr_file_write_atomic(o->out, text, strlen(text), &err) < 0) {
            otr_print_error(&err);
            otr_error_clear(&err);
            free(text);
            rc = OTR_EXIT_ERROR;
            goto done;
        }
        free(text);
    }
    switch (o->output) {
    case OTR_OUT_JSON: {
        otr_jb b = OTR_JB_INIT;
        cJSON *j = otr_plan_to_json(p);
        cJSON *w = otr_jb_array(&b, j, "warnings");
        for (const char *line = warnings.ptr; line && *line;) {
            const char *nl = strchr(line, '\n');
            char *one = strndup(line, nl ? (size_t)(nl - line) : strlen(line));
            otr_jb_add(&b, w, NULL, one ? cJSON_CreateString(one) : NULL);
            free(one);
            line = nl ? nl + 1 : line + strlen(line);
        }
        char *text = j && !b.failed ? cJSON_Print(j) : NULL;
        cJSON_Delete(j);
        if (!text) {
            fprintf(stderr, "ota-runner: error: out of memory while writing the plan as JSON\n");
            rc = OTR_EXIT_ERROR;
            goto done;
        }
        otr_buf_printf(&out, "%s\n", text);
        free(text);
        break;
    }
    case OTR_OUT_MARKDOWN: otr_render_plan_markdown(p, warnings.ptr, &out); break;
    case OTR_OUT_GITHUB:
        otr_render_plan_github(p, warnings.ptr, &out);
        write_step_summary(p, warnings.ptr);
        break;
    default: {
        const char *nc = getenv("NO_COLOR");
        otr_render_plan_text_to(stdout, p, warnings.ptr,
                                !o->no_color && !(nc && *nc) && isatty(STDOUT_FILENO));
        if (o->out)
            otr_buf_printf(&out, "Saved the plan to %s; apply it with: ota-runner apply %s\n",
                           o->out, o->out);
    }
    }
    fputs(otr_buf_cstr(&out), stdout);
    rc = o->detailed_exitcode && otr_plan_changes(p) ? OTR_EXIT_CHANGES : OTR_EXIT_OK;
done:
    otr_buf_free(&out);
    otr_buf_free(&warnings);
    OTR_FREE_BEFORE_EXIT(otr_planning_free(&pl));
    return rc;
}
