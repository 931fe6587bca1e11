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

/* The longest duration a manifest may give: a year. */
#define OTR_TIME_MAX_DURATION ((int64_t)366 * 86400)

/* "30s", "15m", "2h", "1d" and combinations in that order ("1h30m", "1d12h"),
 * each unit once -> seconds. 0, or -1 when s is not one (or longer than
 * OTR_TIME_MAX_DURATION). */
int otr_time_parse_duration(const char *s, int64_t *seconds);
/* The shortest such text for seconds ("1h30m", "0s"); out holds 32 bytes. */
void otr_time_format_duration(char out[32], int64_t seconds);

#endif
