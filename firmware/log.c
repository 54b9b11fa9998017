/* log.c - the daemon's log (sl_log.h). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "sl_log.h"

static const char *const names[] = {"error", "warn", "info", "debug"};
static atomic_int g_level = SL_LOG_INFO;

void sl_log_set_level(int level) { atomic_store(&g_level, level); }

void sl_log(int level, const char *fmt, ...)
{
    if (level > atomic_load(&g_level) || level < 0 || level > SL_LOG_DEBUG)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sluiced: %s: %s\n", names[level], line); /* one call: lines from two threads never mix */
}
