/* Logging: a level and a sink, set once by cli/. */
#include "util/log.h"

#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>

static otr_log_level current_level = OTR_LOG_QUIET;
static otr_log_sink current_sink = NULL;
static void *current_ctx = NULL;

void otr_log_set_level(otr_log_level level)
{
    current_level = level;
}

otr_log_level otr_log_get_level(void)
{
    return current_level;
}

void otr_log_set_sink(otr_log_sink sink, void *ctx)
{
    current_sink = sink;
    current_ctx = ctx;
}

static void emit(const char *prefix, const char *fmt, va_list ap)
{
    otr_buf b = OTR_BUF_INIT;
    otr_buf_puts(&b, prefix);
    otr_buf_vprintf(&b, fmt, ap);
    if (current_sink)
        current_sink(otr_buf_cstr(&b), current_ctx);
    else
        fprintf(stderr, "ota-runner: %s\n", otr_buf_cstr(&b));
    otr_buf_free(&b);
}

void otr_log(otr_log_level level, const char *fmt, ...)
{
    if (level > current_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit("", fmt, ap);
    va_end(ap);
}

void otr_log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("warning: ", fmt, ap);
    va_end(ap);
}
