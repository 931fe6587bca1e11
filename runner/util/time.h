/* Calendar arithmetic and ISO 8601 parsing, without the process's time zone. */
#ifndef OTR_UTIL_TIME_H
#define OTR_UTIL_TIME_H

#include <stdint.h>
#include <time.h>

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
int64_t otr_time_days_from_civil(int y, int m, int d);

/*
 * Parses YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM|-HH:MM] (a value without a zone
 * is UTC) into seconds since 1970. Returns 0 on success, -1 when s is not
 * such a date-time (or names a day that does not exist).
 */
int otr_time_parse_iso8601(const char *s, int64_t *out);

/* "2026-11-28T18:00:00Z" of t; out holds 21 bytes. */
void otr_time_format_iso8601(char out[21], time_t t);

/* The current time as otr_time_format_iso8601 writes it; free() the result. */
char *otr_time_now_iso8601(void);

/* Milliseconds of a clock that never goes back (for durations and timers). */
int64_t otr_time_monotonic_ms(void);

#endif
