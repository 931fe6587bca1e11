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

/* p in the output o asks for, into out (text goes to stdout at once). */
static int render(const otr_plan *p, const char *warnings, const otr_options *o, otr_buf *out)
{
    switch (o->output) {
    case OTR_OUT_JSON: {
        otr_jb b = OTR_JB_INIT;
        cJSON *j = otr_plan_to_json(p);
        cJSON *w = otr_jb_array(&b, j, "warnings");
        for (const char *line = warnings; line && *line;) {
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
            return OTR_EXIT_ERROR;
        }
        otr_buf_printf(out, "%s\n", text);
        free(text);
        break;
    }
    case OTR_OUT_MARKDOWN: otr_render_plan_markdown(p, warnings, out); break;
    case OTR_OUT_GITHUB:
        otr_render_plan_github(p, warnings, out);
        write_step_summary(p, warnings);
        break;
    default: {
        const char *nc = getenv("NO_COLOR");
        otr_render_plan_text_to(stdout, p, warnings,
                                !o->no_color && !(nc && *nc) && isatty(STDOUT_FILENO));
    }
    }
    return 0;
}

int otr_cmd_plan(const otr_options *o)
{
    otr_planning pl;
    int rc = otr_planning_prepare_deferred(&pl, o); /* a plan reads without the lock */
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
    if ((rc = render(p, warnings.ptr, o, &out)) != 0)
        goto done;
    otr_loaded_warn(&pl.loaded); /* the check ran beside the plan and its rendering */
    if (o->out && o->output != OTR_OUT_JSON && o->output != OTR_OUT_MARKDOWN &&
        o->output != OTR_OUT_GITHUB)
        otr_buf_printf(&out, "Saved the plan to %s; apply it with: ota-runner apply %s\n", o->out,
                       o->out);
    fputs(otr_buf_cstr(&out), stdout);
    rc =
        o->detailed_exitcode && (otr_plan_changes(p) || p->nmoves) ? OTR_EXIT_CHANGES : OTR_EXIT_OK;
done:
    otr_loaded_warn(&pl.loaded);
    otr_buf_free(&out);
    otr_buf_free(&warnings);
    OTR_FREE_BEFORE_EXIT(otr_planning_free(&pl));
    return rc;
}

int otr_cmd_show(const otr_options *o)
{
    otr_plan *p = NULL;
    otr_buf out = OTR_BUF_INIT, warnings = OTR_BUF_INIT;
    if (o->nargs != 1) {
        fprintf(stderr, "ota-runner show: give the plan file that plan --out saved: ota-runner "
                        "show FILE (see 'ota-runner show --help')\n");
        return OTR_EXIT_ERROR;
    }
    int rc = otr_planning_read_plan(&p, o->args[0]);
    if (rc)
        return rc;
    otr_plan_guards guards = otr_planning_guards(o);
    otr_plan_check_guards(p, &guards, &warnings);
    if ((rc = render(p, warnings.ptr, o, &out)) == 0) {
        fputs(otr_buf_cstr(&out), stdout);
        rc = o->detailed_exitcode && (otr_plan_changes(p) || p->nmoves) ? OTR_EXIT_CHANGES
                                                                        : OTR_EXIT_OK;
    }
    otr_buf_free(&out);
    otr_buf_free(&warnings);
    otr_plan_free(p);
    return rc;
}
