/* SPDX-License-Identifier: MIT */
/* Unit tests for base/: parsing, file I/O with its refusals, secret handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "parse.h"
#include "secmem.h"
#include "utf8.h"

/* ---- parse ---- */

static void test_parse_uint64(void **state)
{
	uint64_t v = 77;

	(void)state;
	assert_int_equal(parse_uint64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	v = 77;
	assert_int_equal(parse_uint64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_uint64("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_uint64("11", 0, 10, &v), -ERANGE);
	assert_int_equal(parse_uint64("4", 5, 10, &v), -ERANGE);
	assert_int_equal(parse_uint64("", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64(NULL, 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64("1x", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64(" 1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64("1 ", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64("-1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64("+1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64("0x1", 0, 10, &v), -EINVAL);
	assert_int_equal(v, 77); /* untouched on failure */
}

static void test_parse_uint(void **state)
{
	unsigned v = 5;

	(void)state;
	assert_int_equal(parse_uint("4294967295", 0, UINT_MAX, &v), 0);
	assert_true(v == UINT_MAX);
	assert_int_equal(parse_uint("4294967296", 0, UINT_MAX, &v), -ERANGE);
	assert_int_equal(parse_uint("7", 1, 6, &v), -ERANGE);
}

static void test_parse_int64(void **state)
{
	int64_t v = 3;

	(void)state;
	assert_int_equal(parse_int64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(parse_int64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(parse_int64("9223372036854775808", INT64_MIN, INT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_int64("-9223372036854775809", INT64_MIN, INT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_int64("-5", -4, 4, &v), -ERANGE);
	assert_int_equal(parse_int64("-", -4, 4, &v), -EINVAL);
	assert_int_equal(parse_int64("--1", -4, 4, &v), -EINVAL);
	assert_int_equal(parse_int64("-3", -4, 4, &v), 0);
	assert_int_equal(v, -3);
}

static void test_parse_hex(void **state)
{
	uint64_t v = 9;

	(void)state;
	assert_int_equal(parse_hex("0781", 0xffff, &v), 0);
	assert_int_equal(v, 0x781);
	assert_int_equal(parse_hex("0xFF", 0xff, &v), 0);
	assert_int_equal(v, 0xff);
	assert_int_equal(parse_hex("100", 0xff, &v), -ERANGE);
	assert_int_equal(parse_hex("12345678123456781", UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_hex("0x", 0xff, &v), -EINVAL);
	assert_int_equal(parse_hex("", 0xff, &v), -EINVAL);
	assert_int_equal(parse_hex("g1", 0xff, &v), -EINVAL);
	assert_int_equal(parse_hex("1 ", 0xff, &v), -EINVAL);
	assert_int_equal(v, 0xff);
}

static void test_parse_duration_size_bool(void **state)
{
	uint64_t v;
	bool b = false;

	(void)state;
	assert_int_equal(parse_duration("90", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 90);
	assert_int_equal(parse_duration("15m", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 900);
	assert_int_equal(parse_duration("2h", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 7200);
	assert_int_equal(parse_duration("1d", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 86400);
	assert_int_equal(parse_duration("1d", 0, 3600, &v), -ERANGE);
	assert_int_equal(parse_duration("1w", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_duration("1mm", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_duration("m", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_duration("999999999999999999d", 0, UINT64_MAX, &v), -ERANGE);

	assert_int_equal(parse_size("64M", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 64u << 20);
	assert_int_equal(parse_size("1G", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 1u << 30);
	assert_int_equal(parse_size("512K", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 512u << 10);
	assert_int_equal(parse_size("12", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(parse_size("1T", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_size("17179869184G", 0, UINT64_MAX, &v), -ERANGE);

	assert_int_equal(parse_bool("yes", &b), 0);
	assert_true(b);
	assert_int_equal(parse_bool("OFF", &b), 0);
	assert_false(b);
	assert_int_equal(parse_bool("1", &b), 0);
	assert_true(b);
	assert_int_equal(parse_bool("yess", &b), -EINVAL);
	assert_int_equal(parse_bool("", &b), -EINVAL);
	assert_true(b);
}

/* ---- secmem ---- */

static void test_secmem(void **state)
{
	char buf[16] = "secret-value";
	char *s;

	(void)state;
	secmem_wipe(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	secmem_wipe(NULL, 10);

	s = strdup("123456");
	assert_non_null(s);
	secmem_wipe_string(s);
	assert_int_equal(s[0], 0);
	assert_int_equal(s[5], 0);
	secmem_free_string(s);
	secmem_free_string(NULL);

	assert_true(secmem_equal("abc", "abc", 3));
	assert_false(secmem_equal("abc", "abd", 3));
	assert_true(secmem_equal("", "", 0));
	assert_true(secmem_streq("123456", "123456"));
	assert_false(secmem_streq("123456", "123457"));
	assert_false(secmem_streq("12345", "123456"));
	assert_false(secmem_streq("123456", "12345"));
	assert_true(secmem_streq("", ""));
	assert_false(secmem_streq("", "1"));
}

/* ---- utf8 ---- */

static void test_utf8(void **state)
{
	static const struct {
		const char *s;
		bool valid;
	} cases[] = {
	    {"", true},
	    {"plain ascii", true},
	    {"\xe3\x83\xaf\xe3\x83\xb3", true}, /* ワン */
	    {"\xf0\x9f\x94\x91", true},		/* U+1F511 */
	    {"\xf4\x8f\xbf\xbf", true},		/* U+10FFFF */
	    {"\x80", false},			/* lone continuation */
	    {"\xc0\xaf", false},		/* overlong '/' */
	    {"\xc1\xbf", false},		/* overlong */
	    {"\xe0\x80\xaf", false},		/* overlong, 3 bytes */
	    {"\xf0\x80\x80\xaf", false},	/* overlong, 4 bytes */
	    {"\xed\xa0\x80", false},		/* surrogate U+D800 */
	    {"\xf4\x90\x80\x80", false},	/* U+110000 */
	    {"\xf5\x80\x80\x80", false},	/* lead byte beyond U+10FFFF */
	    {"\xe3\x83", false},		/* truncated */
	    {"ok\xe3\x83\xafx\xff", false},	/* invalid after valid */
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		assert_int_equal(utf8_valid(cases[i].s, strlen(cases[i].s)), cases[i].valid);
	assert_int_equal(utf8_valid_prefix("ok\xe3\x83\xafx\xff", 7), 6);
	assert_int_equal(utf8_valid_prefix("ab\xe3\x83", 4), 2);
	assert_int_equal(utf8_seq_len((const unsigned char *)"\xe3\x83\xaf", 3), 3);
	assert_int_equal(utf8_seq_len((const unsigned char *)"\xe3\x83\xaf", 2), 0);
	assert_int_equal(utf8_seq_len((const unsigned char *)"a", 0), 0);
	assert_int_equal(utf8_chars("\xe3\x83\xaf\xe3\x83\xb3x"), 3);
	assert_int_equal(utf8_chars(""), 0);
}

static void test_utf8_truncate(void **state)
{
	/* "aワン" = 61 e3 83 af e3 83 b3 */
	const char *s = "a\xe3\x83\xaf\xe3\x83\xb3";
	const char *four = "\xf0\x9f\x98\x80\xf0\x9f\x98\x80"; /* two U+1F600 */

	assert_int_equal(utf8_truncate(s, 7, 7), 7);
	assert_int_equal(utf8_truncate(s, 7, 100), 7);
	assert_int_equal(utf8_truncate(s, 7, 6), 4); /* inside ン: keep "aワ" */
	assert_int_equal(utf8_truncate(s, 7, 5), 4);
	assert_int_equal(utf8_truncate(s, 7, 4), 4); /* ends exactly after ワ */
	assert_int_equal(utf8_truncate(s, 7, 3), 1);
	assert_int_equal(utf8_truncate(s, 7, 2), 1);
	assert_int_equal(utf8_truncate(s, 7, 1), 1);
	assert_int_equal(utf8_truncate(s, 7, 0), 0);
	assert_int_equal(utf8_truncate(four, 8, 7), 4);
	assert_int_equal(utf8_truncate(four, 8, 5), 4);
	assert_int_equal(utf8_truncate(four, 8, 3), 0);
	/* every cut of valid text is valid text */
	for (size_t max = 0; max <= 8; max++) {
		assert_true(utf8_valid(s, utf8_truncate(s, 7, max)));
		assert_true(utf8_valid(four, utf8_truncate(four, 8, max)));
	}
	/* invalid input: never more than max, never steps back more than 3 bytes */
	assert_int_equal(utf8_truncate("ab\x80\x80\x80\x80\x80", 7, 6), 3);
}

/* ---- fileio ---- */

struct tmpdir {
	char path[64];
	int fd;
};

static int setup_tmpdir(void **state)
{
	struct tmpdir *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	strcpy(t->path, "/tmp/mg-base-test.XXXXXX");
	if (!mkdtemp(t->path))
		return -1;
	t->fd = open(t->path, O_RDONLY | O_DIRECTORY);
	if (t->fd < 0)
		return -1;
	*state = t;
	return 0;
}

static int teardown_tmpdir(void **state)
{
	struct tmpdir *t = *state;
	char cmd[128];

	close(t->fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->path);
	if (system(cmd) != 0)
		return -1;
	free(t);
	return 0;
}

static void write_file(int dirfd, const char *name, const char *content, mode_t mode)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(fileio_write_all(fd, content, strlen(content)), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_read_bounded(void **state)
{
	struct tmpdir *t = *state;
	_cleanup_free_ char *big = malloc(10001);
	char *buf = NULL;
	size_t len = 0;

	assert_non_null(big);
	write_file(t->fd, "small", "hello", 0644);
	assert_int_equal(fileio_read_file(t->fd, "small", 5, &buf, &len), 0);
	assert_string_equal(buf, "hello");
	assert_int_equal(len, 5);
	free(buf);
	buf = NULL;

	/* One byte over the bound is refused, not truncated. */
	assert_int_equal(fileio_read_file(t->fd, "small", 4, &buf, &len), -EFBIG);
	assert_null(buf);

	memset(big, 'x', 10000);
	big[10000] = '\0';
	write_file(t->fd, "big", big, 0644);
	assert_int_equal(fileio_read_file(t->fd, "big", 9999, &buf, &len), -EFBIG);
	assert_int_equal(fileio_read_file(t->fd, "big", 10000, &buf, &len), 0);
	assert_int_equal(len, 10000);
	free(buf);
	buf = NULL;

	write_file(t->fd, "empty", "", 0644);
	assert_int_equal(fileio_read_file(t->fd, "empty", 10, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);

	assert_int_equal(fileio_read_file(t->fd, "missing", 10, &buf, &len), -ENOENT);
}

static void test_open_verified(void **state)
{
	struct tmpdir *t = *state;
	struct fileio_expect mine = {.check_owner = true, .uid = getuid(), .forbidden_mode = 0077};
	struct fileio_expect other = {
	    .check_owner = true, .uid = getuid() + 1, .forbidden_mode = 0};
	int fd = -1;

	write_file(t->fd, "rec", "data", 0600);
	assert_int_equal(fileio_open_verified(t->fd, "rec", O_RDONLY, &mine, &fd), 0);
	assert_true(fd >= 0);
	close(fd);
	fd = -1;

	/* Wrong owner. */
	assert_int_equal(fileio_open_verified(t->fd, "rec", O_RDONLY, &other, &fd), -EPERM);
	assert_int_equal(fd, -1);

	/* Group/other bits. */
	write_file(t->fd, "loose", "data", 0640);
	assert_int_equal(fileio_open_verified(t->fd, "loose", O_RDONLY, &mine, &fd), -EACCES);
	write_file(t->fd, "worldw", "data", 0602);
	assert_int_equal(fileio_open_verified(t->fd, "worldw", O_RDONLY, &mine, &fd), -EACCES);

	/* Symlink, even to a good file. */
	assert_int_equal(symlinkat("rec", t->fd, "link"), 0);
	assert_int_equal(fileio_open_verified(t->fd, "link", O_RDONLY, &mine, &fd), -ELOOP);

	/* Not a regular file: a directory and a FIFO (must not hang). */
	assert_int_equal(mkdirat(t->fd, "sub", 0700), 0);
	assert_int_equal(fileio_open_verified(t->fd, "sub", O_RDONLY, &mine, &fd), -EBADFD);
	assert_int_equal(mkfifoat(t->fd, "fifo", 0600), 0);
	assert_int_equal(fileio_open_verified(t->fd, "fifo", O_RDONLY, &mine, &fd), -EBADFD);

	assert_int_equal(fileio_open_verified(t->fd, "missing", O_RDONLY, &mine, &fd), -ENOENT);
	assert_int_equal(fd, -1);

	/* A verified fd is blocking again. */
	assert_int_equal(fileio_open_verified(t->fd, "rec", O_RDONLY, NULL, &fd), 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);
}

static void test_open_dir_verified(void **state)
{
	struct tmpdir *t = *state;
	struct fileio_expect strict = {
	    .check_owner = true, .uid = getuid(), .forbidden_mode = 0022};
	int fd = -1;

	assert_int_equal(mkdirat(t->fd, "store", 0700), 0);
	assert_int_equal(fileio_open_dir_verified(t->fd, "store", &strict, &fd), 0);
	close(fd);
	fd = -1;

	assert_int_equal(mkdirat(t->fd, "open", 0700), 0);
	assert_int_equal(fchmodat(t->fd, "open", 0777, 0), 0);
	assert_int_equal(fileio_open_dir_verified(t->fd, "open", &strict, &fd), -EACCES);

	assert_int_equal(symlinkat("store", t->fd, "storelink"), 0);
	assert_int_equal(fileio_open_dir_verified(t->fd, "storelink", &strict, &fd), -ELOOP);

	write_file(t->fd, "file", "x", 0600);
	assert_int_equal(fileio_open_dir_verified(t->fd, "file", &strict, &fd), -ENOTDIR);
	assert_int_equal(fd, -1);
}

static void test_write_atomic(void **state)
{
	struct tmpdir *t = *state;
	char path[128];
	struct stat st;
	char *buf = NULL;
	mode_t old = umask(0);

	assert_int_equal(fileio_write_atomic(t->fd, "state", "one", 3, 0600, (uid_t)-1, (gid_t)-1),
			 0);
	umask(old);
	assert_int_equal(fstatat(t->fd, "state", &st, 0), 0);
	/* Mode as asked, whatever the umask was. */
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(fileio_read_file(t->fd, "state", 100, &buf, NULL), 0);
	assert_string_equal(buf, "one");
	free(buf);

	/* Replace: new content, no temp file left behind. */
	assert_int_equal(fileio_write_atomic(t->fd, "state", "two!", 4, 0644, (uid_t)-1, (gid_t)-1),
			 0);
	assert_int_equal(fileio_read_file(t->fd, "state", 100, &buf, NULL), 0);
	assert_string_equal(buf, "two!");
	free(buf);
	{
		FILE *p;
		char cmd[128], line[256];
		size_t n = 0;

		snprintf(cmd, sizeof(cmd), "ls -A '%s'", t->path);
		p = popen(cmd, "r");
		assert_non_null(p);
		while (fgets(line, sizeof(line), p))
			n++;
		pclose(p);
		assert_int_equal(n, 1);
	}

	/* Names with a slash or empty are refused. */
	assert_int_equal(fileio_write_atomic(t->fd, "a/b", "x", 1, 0600, (uid_t)-1, (gid_t)-1),
			 -EINVAL);
	assert_int_equal(fileio_write_atomic(t->fd, "", "x", 1, 0600, (uid_t)-1, (gid_t)-1),
			 -EINVAL);

	/* Path variant. */
	snprintf(path, sizeof(path), "%s/viapath", t->path);
	assert_int_equal(fileio_write_atomic_path(path, "p", 1, 0640), 0);
	assert_int_equal(fileio_read_file(AT_FDCWD, path, 10, &buf, NULL), 0);
	assert_string_equal(buf, "p");
	free(buf);

	/* A directory that does not exist: error, nothing created. */
	snprintf(path, sizeof(path), "%s/nodir/x", t->path);
	assert_int_equal(fileio_write_atomic_path(path, "p", 1, 0640), -ENOENT);
}

static void test_lock_exclusive(void **state)
{
	struct tmpdir *t = *state;
	_cleanup_close_ int a = -1, b = -1;

	write_file(t->fd, "lock", "", 0600);
	a = openat(t->fd, "lock", O_RDWR | O_CLOEXEC);
	b = openat(t->fd, "lock", O_RDWR | O_CLOEXEC);
	assert_true(a >= 0 && b >= 0);
	assert_int_equal(fileio_lock_exclusive(a), 0);
	/* Held: a second open file description cannot take it. */
	assert_int_equal(flock(b, LOCK_EX | LOCK_NB), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_int_equal(flock(a, LOCK_UN), 0);
	assert_int_equal(fileio_lock_exclusive(b), 0);
	assert_int_equal(fileio_lock_exclusive(-1), -EBADF);
}

static void test_write_atomic_readonly_dir(void **state)
{
	struct tmpdir *t = *state;
	_cleanup_close_ int dfd = -1;
	char *buf = NULL;

	if (geteuid() == 0)
		skip(); /* root writes through a read-only mode */
	assert_int_equal(mkdirat(t->fd, "ro", 0700), 0);
	dfd = openat(t->fd, "ro", O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(fileio_write_atomic(dfd, "keep", "old", 3, 0600, (uid_t)-1, (gid_t)-1), 0);
	assert_int_equal(fchmod(dfd, 0500), 0);
	assert_int_equal(fileio_write_atomic(dfd, "keep", "new", 3, 0600, (uid_t)-1, (gid_t)-1),
			 -EACCES);
	/* The old content survives a failed replace. */
	assert_int_equal(fileio_read_file(dfd, "keep", 10, &buf, NULL), 0);
	assert_string_equal(buf, "old");
	free(buf);
	assert_int_equal(fchmod(dfd, 0700), 0);
}

static void test_macros(void **state)
{
	int fd;

	(void)state;
	{
		_cleanup_close_ int c = open("/dev/null", O_RDONLY);
		fd = c;
		assert_true(c >= 0);
	}
	/* Closed by the cleanup attribute. */
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	{
		_cleanup_free_ char *p = strdup("x");
		char *q = TAKE_PTR(p);
		assert_null(p);
		free(q);
	}
	errno = 0;
	assert_int_equal(negative_errno(), -EIO);
	errno = ENOENT;
	assert_int_equal(negative_errno(), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_uint64),
	    cmocka_unit_test(test_parse_uint),
	    cmocka_unit_test(test_parse_int64),
	    cmocka_unit_test(test_parse_hex),
	    cmocka_unit_test(test_parse_duration_size_bool),
	    cmocka_unit_test(test_secmem),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_utf8_truncate),
	    cmocka_unit_test(test_macros),
	    cmocka_unit_test_setup_teardown(test_read_bounded, setup_tmpdir, teardown_tmpdir),
	    cmocka_unit_test_setup_teardown(test_open_verified, setup_tmpdir, teardown_tmpdir),
	    cmocka_unit_test_setup_teardown(test_open_dir_verified, setup_tmpdir, teardown_tmpdir),
	    cmocka_unit_test_setup_teardown(test_lock_exclusive, setup_tmpdir, teardown_tmpdir),
	    cmocka_unit_test_setup_teardown(test_write_atomic, setup_tmpdir, teardown_tmpdir),
	    cmocka_unit_test_setup_teardown(test_write_atomic_readonly_dir, setup_tmpdir,
					    teardown_tmpdir),
	};
	return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
