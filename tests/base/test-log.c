/* SPDX-License-Identifier: MIT */
/* Unit tests for base/log.h: the priority prefix exactly when stderr is the journal stream
 * named by $JOURNAL_STREAM, one line per call, cut at LOG_LINE_MAX, errno kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"

struct capture {
	char path[64];
	int fd;	   /* the file stderr now writes to */
	int saved; /* the test runner's stderr */
};

static int setup(void **state)
{
	struct capture *c = calloc(1, sizeof *c);
	assert_non_null(c);
	snprintf(c->path, sizeof c->path, "/tmp/mg-test-log.XXXXXX");
	c->fd = mkstemp(c->path);
	assert_true(c->fd >= 0);
	c->saved = dup(STDERR_FILENO);
	assert_true(dup2(c->fd, STDERR_FILENO) == STDERR_FILENO);
	unsetenv("JOURNAL_STREAM");
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct capture *c = *state;
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	close(c->fd);
	unlink(c->path);
	unsetenv("JOURNAL_STREAM");
	free(c);
	return 0;
}

static char *captured(struct capture *c)
{
	char *text = NULL;
	assert_int_equal(fileio_read_file(AT_FDCWD, c->path, 1 << 20, &text, NULL), 0);
	return text;
}

/* JOURNAL_STREAM naming the capture file, as systemd sets it for a service's stderr. */
static void as_journal(struct capture *c, long ino_delta)
{
	struct stat st;
	char v[64];
	assert_int_equal(fstat(c->fd, &st), 0);
	snprintf(v, sizeof v, "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino + ino_delta);
	setenv("JOURNAL_STREAM", v, 1);
}

static void test_plain_without_journal(void **state)
{
	struct capture *c = *state;
	assert_false(log_stderr_is_journal());
	log_line(LOG_ERR, "collector: %s", "down");
	log_line(LOG_INFO, "started");
	char *t = captured(c);
	assert_string_equal(t, "collector: down\nstarted\n");
	free(t);
}

static void test_prefix_on_journal(void **state)
{
	struct capture *c = *state;
	as_journal(c, 0);
	assert_true(log_stderr_is_journal());
	log_line(LOG_ERR, "e %d", 1);
	log_line(LOG_WARNING, "w");
	log_line(LOG_INFO, "i");
	log_line(99, "out of range is an error");
	char *t = captured(c);
	assert_string_equal(t, "<3>e 1\n<4>w\n<6>i\n<3>out of range is an error\n");
	free(t);
}

static void test_other_stream_or_garbage(void **state)
{
	struct capture *c = *state;
	as_journal(c, 1); /* another inode: stderr was redirected away from the journal */
	assert_false(log_stderr_is_journal());
	setenv("JOURNAL_STREAM", "12:34x", 1);
	assert_false(log_stderr_is_journal());
	setenv("JOURNAL_STREAM", "", 1);
	assert_false(log_stderr_is_journal());
	log_line(LOG_ERR, "plain");
	char *t = captured(c);
	assert_string_equal(t, "plain\n");
	free(t);
}

static void test_one_line_cut_errno_kept(void **state)
{
	struct capture *c = *state;
	char big[LOG_LINE_MAX + 100];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	as_journal(c, 0);
	errno = EILSEQ;
	log_line(LOG_WARNING, "a\nb\nc");
	log_line(LOG_INFO, "%s", big);
	assert_int_equal(errno, EILSEQ);
	char *t = captured(c);
	assert_true(strncmp(t, "<4>a b c\n<6>", 12) == 0);
	size_t n = strlen(t + 12);
	assert_int_equal(n, LOG_LINE_MAX + 1); /* cut at LOG_LINE_MAX, then the newline */
	assert_int_equal(t[12 + n - 1], '\n');
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_plain_without_journal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prefix_on_journal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_stream_or_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_line_cut_errno_kept, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
