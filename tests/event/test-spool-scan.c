/* SPDX-License-Identifier: MIT */
/* Unit tests of the read-only spool scan (event/spool_scan.c): counts, backlog, copies, damage. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool.h"
#include "spool_scan.h"

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A segment with the records first_seq.. (one payload each); extra bytes appended as is. */
static size_t segment(const char *dir, uint64_t first_seq, const char *const *payloads, size_t n,
		      const char *extra)
{
	uint8_t buf[4096];
	char name[SPOOL_SEGMENT_NAME_LEN + 1];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(payloads[i]);
		assert_true(o + spool_record_size(len) <= sizeof(buf));
		assert_int_equal(spool_record_encode(first_seq + i, SPOOL_CLASS_PROTECTED,
						     payloads[i], len, buf + o),
				 0);
		o += spool_record_size(len);
	}
	if (extra) {
		memcpy(buf + o, extra, strlen(extra));
		o += strlen(extra);
	}
	spool_segment_name(first_seq, name);
	write_file(dir, name, buf, o);
	return o;
}

static void test_scan(void **state)
{
	static const char *const seg1[] = {
	    "{\"v\":1,\"seq\":1,\"kind\":\"agent.started\"}",
	    "{\"v\":1,\"seq\":2,\"kind\":\"compliance\",\"n\":1}",
	};
	static const char *const seg3[] = {
	    "{\"v\":1,\"seq\":3,\"kind\":\"usb.blocked\"}",
	    "{\"v\":1,\"seq\":4,\"kind\":\"compliance\",\"n\":2}",
	    "{\"v\":1,\"seq\":5,\"kind\":\"usb.allowed\"}",
	};
	char dir[] = "/tmp/mg-spool-scan-XXXXXX";
	struct spool_scan s = {.acked = 77};
	size_t bytes;
	char cmd[128];

	assert_non_null(mkdtemp(dir));

	/* empty spool: all zero, no copies */
	assert_int_equal(spool_scan_dir(dir, &s), 0);
	assert_int_equal(s.acked, 0);
	assert_int_equal(s.segments, 0);
	assert_int_equal(s.records, 0);
	assert_null(s.last);
	spool_scan_clear(&s);

	bytes = segment(dir, 1, seg1, 2, NULL);
	bytes += segment(dir, 3, seg3, 3, NULL);
	write_file(dir, SPOOL_ACKED_FILE, "3\n", 2);
	assert_int_equal(spool_scan_dir(dir, &s), 0);
	assert_int_equal(s.acked, 3);
	assert_int_equal(s.segments, 2);
	assert_int_equal(s.records, 5);
	assert_int_equal(s.bytes, bytes);
	assert_int_equal(s.damaged, 0);
	assert_int_equal(s.unacked, 2);
	assert_int_equal(s.unacked_bytes,
			 spool_record_size(strlen(seg3[1])) + spool_record_size(strlen(seg3[2])));
	assert_string_equal(s.first_unacked, seg3[1]);
	assert_string_equal(s.last, seg3[2]);
	assert_string_equal(s.last_compliance, seg3[1]);
	spool_scan_clear(&s);
	spool_scan_clear(&s); /* twice is harmless */
	spool_scan_clear(NULL);

	/* garbage after the records of a segment counts as damage; what came before is read */
	segment(dir, 6, (const char *const[]){"{\"kind\":\"compliance\",\"n\":3}"}, 1,
		"not a record at all, longer than a header");
	assert_int_equal(spool_scan_dir(dir, &s), 0);
	assert_int_equal(s.records, 6);
	assert_int_equal(s.damaged, 1);
	assert_string_equal(s.last_compliance, "{\"kind\":\"compliance\",\"n\":3}");
	spool_scan_clear(&s);

	/* an acked file that is not a number, and a missing directory: errors, *ret untouched */
	write_file(dir, SPOOL_ACKED_FILE, "x\n", 2);
	s = (struct spool_scan){.acked = 42};
	assert_int_equal(spool_scan_dir(dir, &s), -EBADMSG);
	assert_int_equal(s.acked, 42);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(spool_scan_dir(dir, &s), -ENOENT);
	assert_int_equal(s.acked, 42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
