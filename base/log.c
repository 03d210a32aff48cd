/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	uintmax_t dev, ino;
	char tail;
	struct stat st;

	if (!e || sscanf(e, "%ju:%ju%c", &dev, &ino, &tail) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

void log_vline(int priority, const char *fmt, va_list ap)
{
	int saved = errno;
	char line[LOG_LINE_MAX + 8];
	size_t n = 0;

	if (priority < LOG_EMERG || priority > LOG_DEBUG)
		priority = LOG_ERR;
	if (log_stderr_is_journal())
		n = (size_t)snprintf(line, sizeof line, "<%d>", priority);
	int r = vsnprintf(line + n, LOG_LINE_MAX + 1, fmt, ap);
	if (r < 0)
		r = 0;
	size_t len = n + ((size_t)r > LOG_LINE_MAX ? LOG_LINE_MAX : (size_t)r);
	for (size_t i = n; i < len; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[len++] = '\n';
	for (size_t off = 0; off < len;) {
		ssize_t w = write(STDERR_FILENO, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	errno = saved;
}

void log_line(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(priority, fmt, ap);
	va_end(ap);
}
