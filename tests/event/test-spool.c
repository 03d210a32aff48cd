/* SPDX-License-Identifier: MIT */
/* Unit tests of the spool: framing, torn tails at every byte, full spool accounting, record
 * classes and the unprivileged share, reader/ack, the writer's trimming and refused acks. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool.h"

static char *mkdtemp_dir(void)
{
	char *d = strdup("/tmp/mg-spool-test-XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_rf(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

static size_t payload_for(uint64_t seq, char *buf, size_t size, size_t pad)
{
	int n = snprintf(buf, size, "{\"seq\":%" PRIu64 ",\"pad\":\"", seq);
	size_t o = (size_t)n;
	for (size_t i = 0; i < pad && o + 3 < size; i++)
		buf[o++] = 'a' + (char)((seq + i) % 26);
	buf[o++] = '"';
	buf[o++] = '}';
	buf[o] = 0;
	return o;
}

static void append_n(struct spool_writer *w, uint64_t from, uint64_t n, size_t pad,
		     struct spool_drop *total)
{
	char buf[8192];
	for (uint64_t s = from; s < from + n; s++) {
		struct spool_drop d;
		size_t len = payload_for(s, buf, sizeof buf, pad);
		assert_int_equal(spool_writer_append(w, s, SPOOL_CLASS_PROTECTED, buf, len, &d), 0);
		if (total && d.count > 0) {
			if (total->count == 0)
				total->first_seq = d.first_seq;
			total->last_seq = d.last_seq;
			total->count += d.count;
		}
		if (total)
			total->segments += d.segments;
	}
	assert_int_equal(spool_writer_sync(w), 0);
}

/* Read everything the reader offers; check payloads; return count and first/last seq. */
static uint64_t read_all(struct spool_reader *r, uint64_t *ret_first, uint64_t *ret_last,
			 size_t pad)
{
	uint64_t n = 0, prev = 0;
	struct spool_record rec;
	int k;
	char want[8192];
	while ((k = spool_reader_next(r, &rec)) == 1) {
		size_t len = payload_for(rec.seq, want, sizeof want, pad);
		assert_int_equal(rec.len, len);
		assert_memory_equal(rec.payload, want, len);
		if (n == 0 && ret_first)
			*ret_first = rec.seq;
		if (n > 0)
			assert_int_equal(rec.seq, prev + 1);
		prev = rec.seq;
		n++;
		free((void *)rec.payload);
	}
	assert_int_equal(k, 0);
	if (ret_last)
		*ret_last = prev;
	return n;
}

static void test_record_codec(void **state)
{
	(void)state;
	const char *p = "{\"x\":1}";
	uint8_t buf[64];
	struct spool_record rec;
	assert_int_equal(spool_record_size(7), 27);
	assert_int_equal(spool_record_encode(9, SPOOL_CLASS_PROTECTED, p, 7, buf), 0);
	assert_memory_equal(buf, "MGS1", 4);
	assert_int_equal(spool_record_parse(buf, 27, &rec), 27);
	assert_int_equal(rec.seq, 9);
	assert_int_equal(rec.len, 7);
	assert_memory_equal(rec.payload, p, 7);
	for (size_t cut = 0; cut < 27; cut++)
		assert_int_equal(spool_record_parse(buf, cut, &rec), 0);
	for (size_t i = 0; i < 27; i++) {
		buf[i] ^= 0x40;
		/* a damaged length may read as "more to come"; never as a record */
		int r = spool_record_parse(buf, 27, &rec);
		if (i >= 4 && i < 8)
			assert_true(r == 0 || r == -EBADMSG);
		else
			assert_int_equal(r, -EBADMSG);
		buf[i] ^= 0x40;
	}
	assert_int_equal(spool_record_encode(1, SPOOL_CLASS_PROTECTED, p, 0, buf), -EINVAL);
	assert_int_equal(spool_record_encode(1, _SPOOL_CLASS_MAX, p, 7, buf), -EINVAL);
	/* the class is in the header's length word and covered by the checksum */
	assert_int_equal(spool_record_encode(9, SPOOL_CLASS_UNPRIVILEGED, p, 7, buf), 0);
	assert_int_equal(buf[7], SPOOL_CLASS_UNPRIVILEGED);
	assert_int_equal(spool_record_parse(buf, 27, &rec), 27);
	assert_int_equal(rec.cls, SPOOL_CLASS_UNPRIVILEGED);
	buf[7] = 0;
	assert_int_equal(spool_record_parse(buf, 27, &rec), -EBADMSG);
	buf[7] = 7; /* an unknown class is not a record */
	assert_int_equal(spool_record_parse(buf, 27, &rec), -EBADMSG);
	/* a zero-filled tail (what a power cut can leave) is damage, not a record start */
	uint8_t zeros[32] = {0};
	assert_int_equal(spool_record_parse(zeros, 32, &rec), -EBADMSG);

	char name[SPOOL_SEGMENT_NAME_LEN + 1];
	uint64_t first;
	spool_segment_name(42, name);
	assert_string_equal(name, "seg-00000000000000000042");
	assert_int_equal(spool_segment_parse_name(name, &first), 0);
	assert_int_equal(first, 42);
	assert_int_equal(spool_segment_parse_name("seg-0000000000000000004x", &first), -EINVAL);
	assert_int_equal(spool_segment_parse_name("seg-42", &first), -EINVAL);
	assert_int_equal(spool_segment_parse_name("acked", &first), -EINVAL);
	assert_int_equal(spool_segment_bytes(64 << 20), 4 << 20);
	assert_int_equal(spool_segment_bytes(1 << 20), 64 << 10);
	assert_int_equal(spool_segment_bytes(16 << 20), 1 << 20);
}

static void test_roundtrip_and_restart(void **state)
{
	(void)state;
	char *dir = mkdtemp_dir();
	struct spool_writer *w;
	struct spool_recovery info;
	assert_int_equal(spool_writer_open(dir, 64 << 20, &w, &info), 0);
	assert_int_equal(info.segments, 0);
	assert_int_equal(spool_writer_next_seq(w), 1);
	assert_int_equal(spool_writer_last_seq(w), 0);
	append_n(w, 1, 1000, 100, NULL);
	assert_int_equal(spool_writer_next_seq(w), 1001);
	/* numbers never go back */
	assert_int_equal(spool_writer_append(w, 5, SPOOL_CLASS_PROTECTED, "{}", 2, NULL), -EINVAL);
	spool_writer_free(w);

	assert_int_equal(spool_writer_open(dir, 64 << 20, &w, &info), 0);
	assert_int_equal(info.records, 1000);
	assert_int_equal(info.truncated_bytes, 0);
	assert_int_equal(spool_writer_next_seq(w), 1001);
	append_n(w, 1001, 10, 100, NULL);

	struct spool_reader *r;
	uint64_t first, last;
	assert_int_equal(spool_reader_open(dir, &r), 0);
	assert_int_equal(read_all(r, &first, &last, 100), 1010);
	assert_int_equal(first, 1);
	assert_int_equal(last, 1010);
	/* appended while the reader waits */
	append_n(w, 1011, 5, 100, NULL);
	assert_int_equal(read_all(r, &first, &last, 100), 5);
	assert_int_equal(first, 1011);
	assert_int_equal(spool_reader_sync(r), 0);
	assert_int_equal(spool_reader_ack(r, 1015), 0);
	spool_reader_free(r);
	spool_writer_free(w);

	/* all acked: the writer continues after its last record */
	assert_int_equal(spool_writer_open(dir, 64 << 20, &w, NULL), 0);
	assert_int_equal(spool_writer_next_seq(w), 1016);
	spool_writer_free(w);
	uint64_t acked;
	int dfd = open(dir, O_DIRECTORY | O_RDONLY);
	assert_int_equal(spool_read_acked(dfd, &acked), 0);
	assert_int_equal(acked, 1015);
	/* an acknowledgement beyond what is stored never moves the sequence */
	assert_int_equal(spool_write_acked(dfd, 2000), 0);
	close(dfd);
	assert_int_equal(spool_writer_open(dir, 64 << 20, &w, NULL), 0);
	assert_int_equal(spool_writer_next_seq(w), 1016);
	struct spool_trim t;
	assert_int_equal(spool_writer_trim_acked(w, &t), 0);
	assert_int_equal(t.refused, -ERANGE);
	assert_int_equal(t.claimed, 2000);
	assert_true(t.new_refusal);
	spool_writer_free(w);
	rm_rf(dir);
	free(dir);
}

static void test_torn_tail_every_byte(void **state)
{
	(void)state;
	char *dir = mkdtemp_dir();
	struct spool_writer *w;
	const uint64_t n = 20;
	assert_int_equal(spool_writer_open(dir, 64 << 20, &w, NULL), 0);
	append_n(w, 1, n, 150, NULL);
	spool_writer_free(w);

	char seg[600];
	char name[SPOOL_SEGMENT_NAME_LEN + 1];
	spool_segment_name(1, name);
	snprintf(seg, sizeof seg, "%s/%s", dir, name);
	uint8_t *orig;
	size_t orig_len;
	{
		FILE *f = fopen(seg, "rb");
		assert_non_null(f);
		orig = malloc(1 << 20);
		orig_len = fread(orig, 1, 1 << 20, f);
		fclose(f);
	}
	char last_payload[8192];
	size_t last_rec = spool_record_size(payload_for(n, last_payload, sizeof last_payload, 150));
	size_t last_start = orig_len - last_rec;

	for (size_t cut = last_start; cut <= orig_len; cut++) {
		FILE *f = fopen(seg, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(orig, 1, cut, f), cut);
		fclose(f);
		struct spool_recovery info;
		assert_int_equal(spool_writer_open(dir, 64 << 20, &w, &info), 0);
		uint64_t complete = cut == orig_len ? n : n - 1;
		assert_int_equal(info.records, complete);
		assert_int_equal(info.truncated_bytes, cut == orig_len ? 0 : cut - last_start);
		assert_int_equal(spool_writer_next_seq(w), complete + 1);
		/* the spool goes on after recovery */
		append_n(w, complete + 1, 2, 150, NULL);
		struct spool_reader *r;
		uint64_t first, last;
		assert_int_equal(spool_reader_open(dir, &r), 0);
		assert_int_equal(read_all(r, &first, &last, 150), complete + 2);
		assert_int_equal(first, 1);
		assert_int_equal(last, complete + 2);
		spool_reader_free(r);
		spool_writer_free(w);
	}
	/* garbage instead of a tail: cut too */
	{
		FILE *f = fopen(seg, "wb");
		fwrite(orig, 1, last_start, f);
		uint8_t junk[37];
		memset(junk, 0, sizeof junk);
		fwrite(junk, 1, sizeof junk, f);
		fclose(f);
		struct spool_recovery info;
		assert_int_equal(spool_writer_open(dir, 64 << 20, &w, &info), 0);
		assert_int_equal(info.records, n - 1);
		assert_int_equal(info.truncated_bytes, 37);
		spool_writer_free(w);
	}
	free(orig);
	rm_rf(dir);
	free(dir);
}

static void test_full_drops_oldest(void **state)
{
	(void)state;
	char *dir = mkdtemp_dir();
	struct spool_writer *w;
	const uint64_t max = 256 * 1024; /* 64 KiB segments */
	assert_int_equal(spool_writer_open(dir, max, &w, NULL), 0);
	struct spool_drop total = {0};
	/* ~1 KiB records: about 260 fit */
	append_n(w, 1, 1000, 1000, &total);
	assert_true(spool_writer_bytes(w) <= max);
	assert_true(total.count > 0);
	assert_int_equal(total.first_seq, 1);
	assert_int_equal(total.last_seq, total.count);

	struct spool_reader *r;
	uint64_t first, last;
	assert_int_equal(spool_reader_open(dir, &r), 0);
	uint64_t have = read_all(r, &first, &last, 1000);
	/* exactly the dropped ones are missing, nothing else */
	assert_int_equal(first, total.last_seq + 1);
	assert_int_equal(last, 1000);
	assert_int_equal(have + total.count, 1000);

	/* acknowledged records are not counted as dropped */
	assert_int_equal(spool_reader_ack(r, 900), 0);
	spool_reader_free(r);
	struct spool_drop total2 = {0};
	append_n(w, 1001, 300, 1000, &total2);
	assert_true(total2.count > 0);
	assert_int_equal(total2.first_seq, 901);
	assert_int_equal(spool_reader_open(dir, &r), 0);
	have = read_all(r, &first, &last, 1000);
	assert_int_equal(first, total2.last_seq + 1);
	assert_int_equal(have + total2.count, 400);
	spool_reader_free(r);

	/* a record that can never fit */
	char *big = malloc(EVENT_MAX_BYTES);
	memset(big, 'x', EVENT_MAX_BYTES);
	assert_int_equal(
	    spool_writer_append(w, 5000, SPOOL_CLASS_PROTECTED, big, EVENT_MAX_BYTES + 1, NULL),
	    -EINVAL);
	free(big);
	spool_writer_free(w);
	rm_rf(dir);
	free(dir);
}

static int count_segments(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "exit $(ls '%s' | grep -c '^seg-')", dir);
	int st = system(cmd);
	return WEXITSTATUS(st);
}

static void test_ack_trimmed_by_writer(void **state)
{
	(void)state;
	char *dir = mkdtemp_dir();
	struct spool_writer *w;
	struct spool_trim t;
	assert_int_equal(spool_writer_open(dir, 4 << 20, &w, NULL), 0); /* 256 KiB segments */
	append_n(w, 1, 2000, 500, NULL);
	int before = count_segments(dir);
	assert_true(before > 3);
	struct spool_reader *r;
	assert_int_equal(spool_reader_open(dir, &r), 0);
	assert_int_equal(read_all(r, NULL, NULL, 500), 2000);
	/* partial ack keeps the segment holding 1001; the reader itself deletes nothing */
	assert_int_equal(spool_reader_ack(r, 1000), 0);
	assert_int_equal(count_segments(dir), before);
	assert_int_equal(spool_writer_trim_acked(w, &t), 0);
	assert_int_equal(t.refused, 0);
	assert_int_equal(t.acked, 1000);
	assert_true(t.segments > 0);
	spool_reader_free(r);
	assert_int_equal(spool_reader_open(dir, &r), 0);
	assert_int_equal(spool_reader_acked(r), 1000);
	uint64_t first, last;
	assert_int_equal(read_all(r, &first, &last, 500), 1000);
	assert_int_equal(first, 1001);
	/* full ack: the writer leaves just the newest segment */
	assert_int_equal(spool_reader_ack(r, 2000), 0);
	spool_reader_free(r);
	assert_int_equal(spool_writer_trim_acked(w, &t), 0);
	assert_int_equal(count_segments(dir), 1);
	/* the writer still continues, and a restarted reader finds nothing old */
	append_n(w, 2001, 3, 500, NULL);
	assert_int_equal(spool_reader_open(dir, &r), 0);
	assert_int_equal(read_all(r, &first, &last, 500), 3);
	assert_int_equal(first, 2001);
	/* rewind goes back to just above acked */
	spool_reader_rewind(r);
	assert_int_equal(read_all(r, &first, &last, 500), 3);
	spool_reader_free(r);
	spool_writer_free(w);
	/* writer restart after the newest segment was fully acked and others deleted */
	assert_int_equal(spool_writer_open(dir, 4 << 20, &w, NULL), 0);
	assert_int_equal(spool_writer_next_seq(w), 2004);
	spool_writer_free(w);
	rm_rf(dir);
	free(dir);
}

/* What the uplink's user can do to the spool: write any ack, plant files in ack/ and, on an
 * old install whose directory was group-writable, files named like segments. */
static void test_uplink_cannot_stop_recording(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("needs root: files owned by another uid\n");
		skip();
	}
	char *dir = mkdtemp_dir();
	char p[700];
	struct spool_writer *w;
	struct spool_recovery info;
	struct spool_trim t;
	/* a directory someone else owns could be rearranged under the agent: refused */
	assert_int_equal(chown(dir, 65534, 65534), 0);
	assert_int_equal(spool_writer_open(dir, 1 << 20, &w, &info), -EPERM);
	assert_int_equal(chown(dir, 0, 0), 0);
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(spool_writer_open(dir, 1 << 20, &w, &info), 0); /* 64 KiB segments */
	assert_int_equal(info.dir_mode_fixed, 0770);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	snprintf(p, sizeof p, "%s/ack", dir);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0770);
	/* inbox/ for the uplink's fleet bundle, made the same way */
	snprintf(p, sizeof p, "%s/inbox", dir);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0770);
	append_n(w, 1, 300, 500, NULL);
	int segs = count_segments(dir);
	assert_true(segs > 2);

	/* INT64_MAX: refused, reported once, nothing deleted, recording goes on */
	snprintf(p, sizeof p, "%s/ack/acked", dir);
	FILE *f = fopen(p, "w");
	fprintf(f, "%lld\n", (long long)INT64_MAX);
	fclose(f);
	assert_int_equal(spool_writer_trim_acked(w, &t), 0);
	assert_int_equal(t.refused, -ERANGE);
	assert_int_equal((long long)t.claimed, (long long)INT64_MAX);
	assert_true(t.new_refusal);
	assert_int_equal(t.acked, 0);
	assert_int_equal(t.segments, 0);
	assert_int_equal(spool_writer_trim_acked(w, &t), 0);
	assert_false(t.new_refusal);
	assert_int_equal(count_segments(dir), segs);
	append_n(w, 301, 10, 500, NULL);
	assert_int_equal(spool_writer_next_seq(w), 311);
	spool_writer_free(w);
	assert_int_equal(spool_writer_open(dir, 1 << 20, &w, NULL), 0);
	assert_int_equal(spool_writer_next_seq(w), 311);
	assert_int_equal(spool_writer_trim_acked(w, &t), 0);
	assert_int_equal(t.refused, -ERANGE);
	assert_true(t.new_refusal);

	/* garbage, a symlink, a FIFO (must not hang): refused */
	f = fopen(p, "w");
	fputs("+12\n", f);
	fclose(f);
	assert_int_equal(spool_writer_trim_acked(w, &t), 0);
	assert_int_equal(t.refused, -EBADMSG);
	assert_true(t.new_refusal);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	assert_int_equal(spool_writer_trim_acked(w, &t), 0);
	assert_int_equal(t.refused, -ELOOP);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_int_equal(spool_writer_trim_acked(w, &t), 0);
	assert_true(t.refused < 0);
	assert_int_equal(unlink(p), 0);

	/* a planted file under the next segment's name (someone else's, empty) does not stop
	 * the writer: only the agent may create files there */
	uint64_t next = spool_writer_next_seq(w);
	char name[SPOOL_SEGMENT_NAME_LEN + 1];
	for (uint64_t s = next; s < next + 200; s++) {
		spool_segment_name(s, name);
		snprintf(p, sizeof p, "%s/%s", dir, name);
		int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
		assert_true(fd >= 0);
		assert_int_equal(fchown(fd, 65534, 65534), 0);
		close(fd);
	}
	append_n(w, next, 200, 500, NULL);
	assert_int_equal(spool_writer_last_seq(w), next + 199);
	spool_writer_free(w);
	assert_int_equal(spool_writer_open(dir, 1 << 20, &w, &info), 0);
	assert_int_equal(spool_writer_next_seq(w), next + 200);
	spool_writer_free(w);
	rm_rf(dir);
	free(dir);
}

/* One unprivileged flood cannot push out protected records, and its share is bounded, also
 * after a restart (the class is in the record). */
static void test_unprivileged_share(void **state)
{
	(void)state;
	char *dir = mkdtemp_dir();
	char buf[8192];
	const uint64_t max = 1 << 20;
	struct spool_writer *w;
	struct spool_recovery info;
	struct spool_drop total = {0};
	assert_int_equal(spool_writer_open(dir, max, &w, NULL), 0);
	append_n(w, 1, 500, 500, &total); /* ~260 KB protected */
	uint64_t seq = 501, stored = 0, refused = 0;
	for (int i = 0; i < 5000; i++) {
		struct spool_drop d;
		size_t len = payload_for(seq, buf, sizeof buf, 500);
		int r = spool_writer_append(w, seq, SPOOL_CLASS_UNPRIVILEGED, buf, len, &d);
		assert_int_equal(d.count, 0);
		assert_int_equal(d.segments, 0);
		if (r == 0) {
			seq++;
			stored++;
		} else {
			assert_int_equal(r, -ENOSPC);
			refused++;
		}
	}
	assert_true(stored > 100);
	assert_int_equal(stored + refused, 5000);
	assert_true(spool_writer_unpriv_bytes(w) <= max / SPOOL_UNPRIV_SHARE_DIV);
	assert_true(spool_writer_unpriv_bytes(w) + spool_record_size(530) >
		    max / SPOOL_UNPRIV_SHARE_DIV);
	/* protected records still go in */
	append_n(w, seq, 10, 500, &total);
	seq += 10;
	assert_int_equal(total.count, 0);
	uint64_t unpriv = spool_writer_unpriv_bytes(w);
	assert_int_equal(spool_writer_sync(w), 0);
	spool_writer_free(w);

	assert_int_equal(spool_writer_open(dir, max, &w, &info), 0);
	assert_int_equal(info.unpriv_bytes, unpriv);
	size_t len = payload_for(seq, buf, sizeof buf, 500);
	assert_int_equal(spool_writer_append(w, seq, SPOOL_CLASS_UNPRIVILEGED, buf, len, NULL),
			 -ENOSPC);
	/* the reader sees every protected record (1..500, and the last 10) */
	struct spool_reader *r;
	struct spool_record rec;
	assert_int_equal(spool_reader_open(dir, &r), 0);
	uint64_t n = 0;
	while (spool_reader_next(r, &rec) == 1) {
		n++;
		free((void *)rec.payload);
	}
	assert_int_equal(n, 500 + stored + 10);
	/* once the uplink has acknowledged them, the share frees up */
	assert_int_equal(spool_reader_ack(r, seq - 1), 0);
	spool_reader_free(r);
	append_n(w, seq, 300, 500, &total); /* rolls segments so the old ones can go */
	seq += 300;
	len = payload_for(seq, buf, sizeof buf, 500);
	assert_int_equal(spool_writer_append(w, seq, SPOOL_CLASS_UNPRIVILEGED, buf, len, NULL), 0);
	assert_int_equal(total.count, 0);
	spool_writer_free(w);
	rm_rf(dir);
	free(dir);
}

static void test_foreign_files(void **state)
{
	(void)state;
	char *dir = mkdtemp_dir();
	char p[600];
	/* a symlink named like a segment is never followed */
	snprintf(p, sizeof p, "%s/seg-00000000000000000099", dir);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	struct spool_writer *w;
	struct spool_recovery info;
	assert_int_equal(spool_writer_open(dir, 64 << 20, &w, &info), 0);
	assert_int_equal(info.foreign, 1);
	assert_int_equal(info.segments, 0);
	append_n(w, 1, 3, 10, NULL);
	spool_writer_free(w);
	/* a bad acked file is an error for readers of it, not a crash */
	snprintf(p, sizeof p, "%s/ack/acked", dir);
	FILE *f = fopen(p, "w");
	fputs("12x\n", f);
	fclose(f);
	int dfd = open(dir, O_DIRECTORY | O_RDONLY);
	uint64_t acked;
	assert_int_equal(spool_read_acked(dfd, &acked), -EBADMSG);
	close(dfd);
	rm_rf(dir);
	free(dir);
}

static void test_parse_acked(void **state)
{
	(void)state;
	uint64_t v = 7;
	assert_int_equal(spool_parse_acked("42\n", 3, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(spool_parse_acked("9223372036854775807", 19, &v), 0);
	assert_int_equal(v, (uint64_t)INT64_MAX);
	const char *bad[] = {"",
			     "\n",
			     "42\n\n",
			     " 42",
			     "+42",
			     "-1",
			     "4 2",
			     "0x10",
			     "9223372036854775808",
			     "184467440737095516160"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(spool_parse_acked(bad[i], strlen(bad[i]), &v), -EBADMSG);
	assert_int_equal(spool_parse_acked("12\0003", 4, &v), -EBADMSG);
}

static void test_damaged_older_segment(void **state)
{
	(void)state;
	char *dir = mkdtemp_dir();
	struct spool_writer *w;
	assert_int_equal(spool_writer_open(dir, 1 << 20, &w, NULL), 0); /* 64 KiB segments */
	append_n(w, 1, 400, 500, NULL);
	spool_writer_free(w);
	/* flip a byte in the 10th record of the first segment */
	char p[600];
	snprintf(p, sizeof p, "%s/seg-00000000000000000001", dir);
	FILE *f = fopen(p, "r+b");
	assert_non_null(f);
	char buf[8192];
	size_t rec = spool_record_size(payload_for(1, buf, sizeof buf, 500));
	fseek(f, (long)(9 * rec + SPOOL_HEADER_SIZE + 5), SEEK_SET);
	int c = fgetc(f);
	fseek(f, (long)(9 * rec + SPOOL_HEADER_SIZE + 5), SEEK_SET);
	fputc(c ^ 0x01, f);
	fclose(f);
	/* the reader skips the rest of that segment, counts it, and goes on with the next */
	struct spool_reader *r;
	assert_int_equal(spool_reader_open(dir, &r), 0);
	struct spool_record got;
	uint64_t n = 0, prev = 0, jumps = 0;
	while (spool_reader_next(r, &got) == 1) {
		if (n > 0 && got.seq != prev + 1)
			jumps++;
		prev = got.seq;
		n++;
		free((void *)got.payload);
	}
	assert_int_equal(spool_reader_skipped(r), 1);
	assert_int_equal(jumps, 1);
	assert_int_equal(prev, 400);
	assert_true(n >= 9 && n < 400);
	spool_reader_free(r);
	rm_rf(dir);
	free(dir);
}

/* Bytes of a file, for comparing before and after. */
static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = malloc(1 << 20);
	assert_non_null(buf);
	*ret_len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

/* A record of a newer spool format ("MGS2"): the writer refuses the spool and truncates nothing
 * (an older agent after a downgrade), the reader refuses it, spool_strerror says why. */
static void test_newer_format_refused(void **state)
{
	(void)state;
	uint8_t rec[SPOOL_HEADER_SIZE + 4];
	assert_int_equal(spool_record_encode(7, SPOOL_CLASS_PROTECTED, "{}  ", 4, rec), 0);
	struct spool_record got;
	assert_int_equal(spool_record_parse(rec, sizeof rec, &got), (int)sizeof rec);
	assert_int_equal(rec[3], '0' + SPOOL_FORMAT_VERSION);
	rec[3] = '2';
	assert_int_equal(spool_record_parse(rec, sizeof rec, &got), -EPROTONOSUPPORT);
	rec[3] = 0x01; /* not a version byte: damage */
	assert_int_equal(spool_record_parse(rec, sizeof rec, &got), -EBADMSG);
	rec[3] = '0';
	assert_int_equal(spool_record_parse(rec, sizeof rec, &got), -EBADMSG);
	assert_non_null(strstr(spool_strerror(-EPROTONOSUPPORT), "newer mynaguard"));
	assert_string_equal(spool_strerror(-ENOENT), strerror(ENOENT));

	for (int where = 0; where < 2; where++) {
		/* where 0: in the head segment after good records; 1: in an older segment */
		char *dir = mkdtemp_dir();
		struct spool_writer *w;
		assert_int_equal(spool_writer_open(dir, 1 << 20, &w, NULL),
				 0); /* 64 KiB segments */
		append_n(w, 1, where == 0 ? 10 : 400, 500, NULL);
		spool_writer_free(w);
		char p[600];
		snprintf(p, sizeof p, "%s/seg-00000000000000000001", dir);
		FILE *f = fopen(p, "r+b");
		assert_non_null(f);
		char buf[8192];
		size_t one = spool_record_size(payload_for(1, buf, sizeof buf, 500));
		fseek(f, (long)(5 * one + 3), SEEK_SET);
		fputc('2', f); /* record 6 claims format 2 */
		fclose(f);
		size_t len0, len1;
		char *before = slurp(p, &len0);

		struct spool_recovery info;
		assert_int_equal(spool_writer_open(dir, 1 << 20, &w, &info), -EPROTONOSUPPORT);
		char *after = slurp(p, &len1);
		assert_int_equal(len0, len1);
		assert_memory_equal(before, after, len0);

		struct spool_reader *r;
		assert_int_equal(spool_reader_open(dir, &r), 0);
		uint64_t n = 0;
		int k;
		while ((k = spool_reader_next(r, &got)) == 1) {
			free((void *)got.payload);
			n++;
		}
		assert_int_equal(k, -EPROTONOSUPPORT);
		assert_int_equal(n, 5);
		spool_reader_free(r);
		free(before);
		free(after);
		rm_rf(dir);
		free(dir);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_record_codec),
	    cmocka_unit_test(test_roundtrip_and_restart),
	    cmocka_unit_test(test_torn_tail_every_byte),
	    cmocka_unit_test(test_full_drops_oldest),
	    cmocka_unit_test(test_ack_trimmed_by_writer),
	    cmocka_unit_test(test_uplink_cannot_stop_recording),
	    cmocka_unit_test(test_unprivileged_share),
	    cmocka_unit_test(test_foreign_files),
	    cmocka_unit_test(test_damaged_older_segment),
	    cmocka_unit_test(test_newer_format_refused),
	    cmocka_unit_test(test_parse_acked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
