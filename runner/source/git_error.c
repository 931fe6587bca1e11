/* libgit2's last error, as ours (source/internal.h): shared by the reading
 * of a repository (source.c, verify.c) and the fetch of a URL (fetch.c). */
#include "source/internal.h"

#include <git2.h>

int otr_source_git_fail(otr_error *err, otr_error_code code, const char *what)
{
    const git_error *e = git_error_last();
    return otr_error_set(err, code, "%s: %s", what, e && e->message ? e->message : "unknown error");
}
