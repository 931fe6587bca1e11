/* Shared helpers of the unit tests: temporary folders, files and shell. */
#ifndef OTR_TEST_HELPERS_H
#define OTR_TEST_HELPERS_H

#include <stddef.h>

/* A fresh folder under $TMPDIR; free() the result after otr_test_rmdir. */
char *otr_test_mkdtemp(void);
void otr_test_rmdir(const char *dir);
void otr_test_write(const char *dir, const char *rel, const char *text);
/* The whole of a file, or NULL when it cannot be read; free() it. */
char *otr_test_slurp(const char *path);
/* Runs a shell command in dir; fails the test when it fails. */
void otr_test_sh(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Output of a shell command in dir, trailing newline removed; free() it. */
char *otr_test_sh_out(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
