/*
 * A command's last frees, just before the process ends.
 *
 * Freeing everything a 10k-manifest plan built, one allocation at a time,
 * took a fifth of `ota-runner plan` (ci/bench, perf: the frees and malloc's
 * consolidation of them at exit); the kernel takes the memory back at once.
 * Builds that look for leaks (OTR_FREE_AT_EXIT: sanitizers, fuzzing, Debug)
 * still free it all, so the test suite under LeakSanitizer proves that every
 * owner frees what it owns. Files and locks are closed by the exit either way.
 */
#ifndef OTR_UTIL_TEARDOWN_H
#define OTR_UTIL_TEARDOWN_H

#ifdef OTR_FREE_AT_EXIT
#define OTR_FREE_BEFORE_EXIT(call) call
#else
#define OTR_FREE_BEFORE_EXIT(call) ((void)0)
#endif

#endif
