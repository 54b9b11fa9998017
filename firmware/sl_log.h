/* sl_log.h - the daemon's log: one line per event on stderr,
 * "sluiced: LEVEL: message", filtered by a level that SIGHUP may change.
 * Any thread may log (stdio locks each call). */
#ifndef SL_LOG_H
#define SL_LOG_H

enum { SL_LOG_ERROR, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG };

void sl_log_set_level(int level);
void sl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
