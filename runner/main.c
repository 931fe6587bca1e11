/* ota-runner: subcommand dispatch only. */
#include "cli/commands.h"
#include "cli/options.h"
#include "heap.h"
#include "util/log.h"

#include <curl/curl.h>
#include <git2.h>
#include <stdio.h>
#include <sys/prctl.h>

int main(int argc, char **argv)
{
    otr_options o;
    int rc = OTR_EXIT_ERROR;

    /* The secret key and session token live in this process's memory while it
     * signs: no core dump, no ptrace by other users. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    otr_heap_setup();

    /* Before the options: finding the default state's folder opens the
     * repository, and a libgit2 shut down and started again reads every CA
     * certificate of the system a second time (a tenth of a 10k plan's
     * start). */
    git_libgit2_init();
    if (otr_options_parse(&o, argc, argv) < 0)
        goto done;
    if (!o.command) {
        if (o.help || argc == 1) {
            otr_options_print_help(NULL);
            rc = o.help ? OTR_EXIT_OK : OTR_EXIT_ERROR;
        } else {
            fprintf(stderr, "ota-runner: no command given (see 'ota-runner --help')\n");
        }
        goto done;
    }
    if (o.help) {
        otr_options_print_help(o.command);
        rc = OTR_EXIT_OK;
        goto done;
    }
    otr_log_set_level(o.debug ? OTR_LOG_DEBUG : o.verbose ? OTR_LOG_VERBOSE : OTR_LOG_QUIET);
    /* Like git itself, trust the object store's ids on read (1/20 of a plan
     * went to hashing every blob again); fetches still check every object
     * as they index the pack. */
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
    /* Each manifest's blob is read once: libgit2's object cache kept every one
     * (65 MB of a 100k plan's peak, by massif) for nothing. */
    git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_BLOB, (size_t)0);
    /* libcurl starts when the first request is made (aws/curl_lazy.c) */
    rc = o.env ? otr_envs_dispatch(&o, argc, argv) : o.command->run(&o);
    curl_global_cleanup(); /* nothing, when nothing was sent */
done:
    git_libgit2_shutdown();
    otr_options_free(&o);
    fflush(stdout);
    return rc;
}
