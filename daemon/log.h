/*
 * log — one line per event worth a human's attention, on standard error.
 *
 * Owns: the process-wide level and format. Under systemd (JOURNAL_STREAM set) each line
 * starts with the syslog priority "<N>" that journald understands; otherwise plain
 * "jouled: LEVEL: message". Never: allocates, logs per request at the default level.
 */
#ifndef JOULE_LOG_H
#define JOULE_LOG_H

enum log_prio { LOG_PRIO_ERR = 3, LOG_PRIO_WARNING = 4, LOG_PRIO_INFO = 6, LOG_PRIO_DEBUG = 7 };

/* max: the highest priority number still printed (LOG_PRIO_INFO by default). */
void log_setup(enum log_prio max);
void log_msg(enum log_prio prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_PRIO_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_PRIO_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_PRIO_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_PRIO_DEBUG, __VA_ARGS__)

#endif
