/*
 * log — see log.h. Formats into a fixed buffer and writes it with one write(2), so lines
 * from one process never interleave mid-line.
 */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static enum log_prio max_prio = LOG_PRIO_INFO;
static bool journal;

void log_setup(enum log_prio max)
{
	max_prio = max;
	journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_msg(enum log_prio prio, const char *fmt, ...)
{
	static const char *const names[8] = {"", "", "", "error", "warning", "", "info", "debug"};
	char line[1024];
	int n;
	va_list ap;

	if (prio > max_prio)
		return;
	n = journal ? snprintf(line, sizeof(line), "<%d>", prio)
		    : snprintf(line, sizeof(line), "jouled: %s: ", names[prio & 7]);
	if (n < 0)
		return;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
