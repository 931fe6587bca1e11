/*
 * Logging for -v and --debug. Modules below cli/ never print; they log
 * through here, and cli/ decides where lines go (stderr by default). The
 * level and the sink are the only mutable globals of the program.
 */
#ifndef OTR_UTIL_LOG_H
#define OTR_UTIL_LOG_H

typedef enum otr_log_level {
    OTR_LOG_QUIET = 0,
    OTR_LOG_VERBOSE = 1,
    OTR_LOG_DEBUG = 2
} otr_log_level;

typedef void (*otr_log_sink)(const char *line, void *ctx);

void otr_log_set_level(otr_log_level level);
otr_log_level otr_log_get_level(void);
/* NULL restores the default sink (stderr). */
void otr_log_set_sink(otr_log_sink sink, void *ctx);

/* Writes one line (no newline needed) when level <= the current level. */
void otr_log(otr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line every run shows, whatever the level: "warning: ...". */
void otr_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
