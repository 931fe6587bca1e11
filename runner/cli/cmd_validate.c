/* ota-runner validate: every problem of every manifest, then a summary. */
#include "cli/commands.h"
#include "cli/load.h"
#include "cli/render_plan.h"
#include "util/teardown.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static size_t files_with_errors(const otr_diags *d)
{
    size_t n = 0;
    const char *last = NULL;
    for (size_t i = 0; i < d->count; i++) {
        const otr_diag *dg = &d->items[i];
        if (dg->severity != OTR_SEV_ERROR || !dg->file)
            continue;
        if (!last || strcmp(last, dg->file) != 0)
            n++;
        last = dg->file;
    }
    return n;
}

static void print_json(const otr_loaded *l)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "formatVersion", 1);
    cJSON_AddBoolToObject(root, "valid", l->diags.errors == 0);
    cJSON_AddStringToObject(root, "repo", otr_source_repo(l->source));
    cJSON_AddStringToObject(root, "commit", otr_source_commit(l->source));
    cJSON_AddBoolToObject(root, "worktree", otr_source_is_worktree(l->source));
    cJSON_AddStringToObject(root, "path", otr_source_path(l->source));
    cJSON_AddNumberToObject(root, "files", (double)otr_source_file_count(l->source));
    cJSON_AddNumberToObject(root, "manifests", (double)l->set.documents);
    cJSON_AddNumberToObject(root, "errors", (double)l->diags.errors);
    cJSON_AddNumberToObject(root, "warnings", (double)l->diags.warnings);
    cJSON *signer = otr_loaded_signed_by_json(l);
    if (signer)
        cJSON_AddItemToObject(root, "signedBy", signer);
    cJSON *arr = cJSON_AddArrayToObject(root, "diagnostics");
    for (size_t i = 0; i < l->diags.count; i++) {
        const otr_diag *d = &l->diags.items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "severity", d->severity == OTR_SEV_ERROR ? "error" : "warning");
        if (d->file)
            cJSON_AddStringToObject(o, "file", d->file);
        if (d->line)
            cJSON_AddNumberToObject(o, "line", d->line);
        if (d->col)
            cJSON_AddNumberToObject(o, "column", d->col);
        if (d->field)
            cJSON_AddStringToObject(o, "field", d->field);
        cJSON_AddStringToObject(o, "message", d->message);
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_Print(root);
    if (s)
        printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(root);
}

static void print_github(const otr_loaded *l)
{
    otr_buf out = OTR_BUF_INIT;
    for (size_t i = 0; i < l->diags.count; i++) {
        const otr_diag *d = &l->diags.items[i];
        otr_buf_printf(&out, "::%s ", d->severity == OTR_SEV_ERROR ? "error" : "warning");
        if (d->file) {
            otr_buf_puts(&out, "file=");
            otr_github_escape(&out, d->file, 1);
            if (d->line)
                otr_buf_printf(&out, ",line=%u", d->line);
            if (d->col)
                otr_buf_printf(&out, ",col=%u", d->col);
            otr_buf_putc(&out, ',');
        }
        otr_buf_puts(&out, "title=ota-runner validate::");
        if (d->field) {
            otr_github_escape(&out, d->field, 0);
            otr_buf_puts(&out, ": ");
        }
        otr_github_escape(&out, d->message, 0);
        otr_buf_putc(&out, '\n');
    }
    fputs(otr_buf_cstr(&out), stdout);
    otr_buf_free(&out);
}

int otr_cmd_validate(const otr_options *o)
{
    otr_loaded l;
    char commit[64];
    if (otr_load(&l, o) < 0) {
        otr_loaded_free(&l);
        return OTR_EXIT_ERROR;
    }
    otr_loaded_commit_label(&l, commit, sizeof(commit));
    if (o->output == OTR_OUT_JSON) {
        print_json(&l);
    } else {
        if (o->output == OTR_OUT_GITHUB)
            print_github(&l);
        else
            otr_print_diags_text(&l.diags, o);
        if (l.diags.errors)
            printf("invalid: %zu error%s in %zu of %zu files (%zu manifests) at %s, path %s\n",
                   l.diags.errors, l.diags.errors == 1 ? "" : "s", files_with_errors(&l.diags),
                   otr_source_file_count(l.source), l.set.documents, commit,
                   otr_source_path(l.source));
        else
            printf("valid: %zu manifest%s in %zu file%s at %s, path %s\n", l.set.count,
                   l.set.count == 1 ? "" : "s", l.set.files, l.set.files == 1 ? "" : "s", commit,
                   otr_source_path(l.source));
        otr_buf who = OTR_BUF_INIT;
        cJSON *signer = otr_loaded_signed_by_json(&l);
        otr_render_signer(signer, &who);
        cJSON_Delete(signer);
        if (who.len)
            printf("commit %.12s %s\n", otr_source_commit(l.source), otr_buf_cstr(&who));
        otr_buf_free(&who);
    }
    int rc = l.diags.errors ? OTR_EXIT_ERROR : OTR_EXIT_OK;
    OTR_FREE_BEFORE_EXIT(otr_loaded_free(&l));
    return rc;
}
