/* Shared helpers of the unit tests. */
#include "helpers.h"

#include "util/buf.h"
#include "util/file.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *otr_test_mkdtemp(void)
{
    const char *tmp = getenv("TMPDIR");
    otr_buf b = OTR_BUF_INIT;
    otr_buf_printf(&b, "%s/otr-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    char *dir = otr_buf_detach(&b);
    assert_non_null(mkdtemp(dir));
    return dir;
}

void otr_test_rmdir(const char *dir)
{
    otr_test_sh("/", "rm -rf '%s'", dir);
}

void otr_test_write(const char *dir, const char *rel, const char *text)
{
    otr_buf path = OTR_BUF_INIT;
    otr_buf_printf(&path, "%s/%s", dir, rel);
    /* make the parent folders */
    char *slash = strrchr(path.ptr, '/');
    *slash = '\0';
    otr_test_sh("/", "mkdir -p '%s'", path.ptr);
    *slash = '/';
    FILE *f = fopen(path.ptr, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    otr_buf_free(&path);
}

static char *vcommand(const char *dir, const char *fmt, va_list ap)
{
    otr_buf cmd = OTR_BUF_INIT;
    otr_buf_printf(&cmd, "cd '%s' && ", dir);
    otr_buf_vprintf(&cmd, fmt, ap);
    return otr_buf_detach(&cmd);
}

void otr_test_sh(const char *dir, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = vcommand(dir, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (%d): %s", rc, cmd);
    free(cmd);
}

char *otr_test_sh_out(const char *dir, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = vcommand(dir, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    otr_buf out = OTR_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        otr_buf_append(&out, chunk, n);
    assert_int_equal(pclose(p), 0);
    free(cmd);
    while (out.len && out.ptr[out.len - 1] == '\n')
        out.ptr[--out.len] = '\0';
    return otr_buf_detach(&out);
}

char *otr_test_slurp(const char *path)
{
    otr_buf b = OTR_BUF_INIT;
    otr_error err = OTR_ERROR_INIT;
    if (otr_file_read(path, 1 << 24, &b, &err) < 0) {
        otr_error_clear(&err);
        otr_buf_free(&b);
        return NULL;
    }
    return otr_buf_detach(&b);
}
