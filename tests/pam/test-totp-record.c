/* SPDX-License-Identifier: MIT */
/* Unit tests: the record format (parse/format/base32/user names), verification with RFC 6238
 * vectors, one-time and lockout rules, the store's file checks, the event JSON, and failing
 * closed when memory runs out (allocation failure injection with -Wl,--wrap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "totp_attempt.h"
#include "totp_helper.h"
#include "event.h"
#include "totp_notify.h"
#include "totp_record.h"
#include "totp_store.h"
#include "totp_messages.h"
#include "totp_verify.h"
#include <zlib.h>

/* ---- allocation failure injection ---- */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
static int fail_countdown = -1; /* -1: never fail; 0: fail the next allocation */
static int allocations;

static bool should_fail(void)
{
	allocations++;
	if (fail_countdown < 0)
		return false;
	return fail_countdown-- == 0;
}
void *__wrap_malloc(size_t n)
{
	return should_fail() ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m)
{
	return should_fail() ? NULL : __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n)
{
	return should_fail() ? NULL : __real_realloc(p, n);
}

#define SECRET_B32 "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
#define HEAD	   "mynaguard-totp 1\nsecret " SECRET_B32 "\ndigits 6\nperiod 30\nenrolled 1764097538\n"
#define HEAD2                                                                                                 \
	"mynaguard-totp 2\ntype totp\nserial -\nenrolled 1764097538\nverified 1764097538\nsecret " SECRET_B32 \
	"\ndigits 6\nperiod 30\n"

/* A slot line by hand (zlib's CRC-32); crc_delta != 0 spoils the CRC. */
#define SLOT_BUF 128 /* a slot line is 84 bytes */

static void slot(char *out, unsigned idx, unsigned long long seq, unsigned long long last_step,
		 unsigned failures, long long locked, unsigned crc_delta)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "state%u %020llu %020llu %04u %020lld ", idx, seq,
			 last_step, failures, locked);

	snprintf(out, SLOT_BUF, "%s%08lx\n", line,
		 (unsigned long)(crc32(0, (const Bytef *)line, (uInt)(n - 1)) ^ crc_delta));
}

static char valid[512];

static void make_valid(void)
{
	char s0[SLOT_BUF], s1[SLOT_BUF];

	slot(s0, 0, 5, 58949040, 2, 0, 0);
	slot(s1, 1, 4, 58949000, 1, 0, 0);
	snprintf(valid, sizeof(valid), HEAD "%s%s", s0, s1);
}

static void test_parse_valid_and_roundtrip(void **state)
{
	struct totp_record r, back;
	char buf[TOTP_RECORD_MAX_SIZE];
	size_t len;

	(void)state;
	make_valid();
	assert_int_equal(totp_record_parse(valid, strlen(valid), &r), 0);
	assert_int_equal(r.secret_len, 20);
	assert_memory_equal(r.secret, "Hello!\xde\xad\xbe\xefHello!\xde\xad\xbe\xef", 20);
	assert_int_equal(r.digits, 6);
	assert_int_equal(r.period, 30);
	assert_int_equal(r.last_step, 58949040);
	assert_int_equal(r.failures, 2);
	assert_int_equal(r.locked_until, 0);
	assert_int_equal(r.enrolled, 1764097538);
	assert_int_equal(r.seq, 5);
	assert_int_equal(r.current, 0);
	assert_int_equal(r.slot_offset[0], strlen(HEAD));
	assert_int_equal(r.slot_offset[1], strlen(HEAD) + TOTP_SLOT_LEN_V1);
	/* version 1: an app, verified when enrolled, last use unknown */
	assert_int_equal(r.version, 1);
	assert_int_equal(r.kind, TOTP_KIND_APP);
	assert_string_equal(r.serial, "");
	assert_int_equal(r.verified, 1764097538);
	assert_int_equal(r.last_used, 0);
	/* a fresh record is version 2 and keeps the state, in state0 */
	assert_int_equal(totp_record_format(&r, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, strlen(HEAD2) + 2 * TOTP_SLOT_LEN_V2);
	assert_memory_equal(buf, HEAD2, strlen(HEAD2));
	assert_int_equal(totp_record_parse(buf, len, &back), 0);
	assert_int_equal(back.version, 2);
	assert_int_equal(back.verified, 1764097538);
	assert_int_equal(back.last_step, r.last_step);
	assert_int_equal(back.failures, r.failures);
	assert_memory_equal(back.secret, r.secret, 20);
	assert_int_equal(totp_record_format(&r, buf, 40, &len), -ENOBUFS);
	r.digits = 9;
	assert_int_equal(totp_record_format(&r, buf, sizeof(buf), &len), -EINVAL);
	r.digits = 6;
	r.secret_len = 15;
	assert_int_equal(totp_record_format(&r, buf, sizeof(buf), &len), -EINVAL);
	/* the CRC is zlib's */
	assert_int_equal(totp_crc32("123456789", 9), 0xcbf43926);
}

static void test_slots(void **state)
{
	char s0[SLOT_BUF], s1[SLOT_BUF], text[512], next[TOTP_SLOT_LEN_MAX + 1];
	struct totp_record r;
	size_t off, slen;

	(void)state;
	/* the newer slot wins, whichever line it is on */
	slot(s0, 0, 8, 100, 0, 0, 0);
	slot(s1, 1, 9, 200, 3, 0, 0);
	snprintf(text, sizeof(text), HEAD "%s%s", s0, s1);
	assert_int_equal(totp_record_parse(text, strlen(text), &r), 0);
	assert_int_equal(r.current, 1);
	assert_int_equal(r.last_step, 200);
	assert_int_equal(r.failures, 3);
	/* the next state goes over the older slot, with SEQ + 1 */
	r.last_step = 300;
	assert_int_equal(totp_record_next_slot(&r, next, &slen, &off), 0);
	assert_int_equal(off, strlen(HEAD));
	assert_int_equal(slen, TOTP_SLOT_LEN_V1); /* a version 1 record keeps its layout */
	assert_int_equal(strlen(next), TOTP_SLOT_LEN_V1);
	memcpy(text + off, next, slen);
	totp_record_slot_written(&r);
	assert_int_equal(totp_record_parse(text, strlen(text), &r), 0);
	assert_int_equal(r.current, 0);
	assert_int_equal(r.seq, 10);
	assert_int_equal(r.last_step, 300);
	/* a torn (bad CRC) newer slot: the older one is used */
	slot(s0, 0, 8, 100, 0, 0, 0);
	slot(s1, 1, 9, 200, 0, 0, 1);
	snprintf(text, sizeof(text), HEAD "%s%s", s0, s1);
	assert_int_equal(totp_record_parse(text, strlen(text), &r), 0);
	assert_int_equal(r.current, 0);
	assert_int_equal(r.last_step, 100);
	/* both bad, or the same SEQ twice: corrupt */
	slot(s0, 0, 8, 100, 0, 0, 2);
	snprintf(text, sizeof(text), HEAD "%s%s", s0, s1);
	assert_int_equal(totp_record_parse(text, strlen(text), &r), -EBADMSG);
	slot(s0, 0, 9, 100, 0, 0, 0);
	slot(s1, 1, 9, 200, 0, 0, 0);
	snprintf(text, sizeof(text), HEAD "%s%s", s0, s1);
	assert_int_equal(totp_record_parse(text, strlen(text), &r), -EBADMSG);
	/* slots in the wrong order */
	slot(s0, 1, 8, 100, 0, 0, 0);
	slot(s1, 0, 9, 200, 0, 0, 0);
	snprintf(text, sizeof(text), HEAD "%s%s", s0, s1);
	assert_int_equal(totp_record_parse(text, strlen(text), &r), -EBADMSG);
}

static void test_parse_rejects(void **state)
{
	char s0[SLOT_BUF], s1[SLOT_BUF];
	struct totp_record r;
	char big[TOTP_RECORD_MAX_SIZE + 2], text[1024];
	const char *heads[] = {
	    "",
	    /* version: 0, a leading zero, version 2 without its lifecycle lines */
	    "mynaguard-totp 0\nsecret " SECRET_B32 "\ndigits 6\nperiod 30\nenrolled 1\n",
	    "mynaguard-totp 01\nsecret " SECRET_B32 "\ndigits 6\nperiod 30\nenrolled 1\n",
	    "mynaguard-totp 2\nsecret " SECRET_B32 "\ndigits 6\nperiod 30\nenrolled 1\n",
	    /* order */
	    "mynaguard-totp 1\nsecret " SECRET_B32 "\nperiod 30\ndigits 6\nenrolled 1\n",
	    /* secret too short (80 bits), lower case, padding */
	    "mynaguard-totp 1\nsecret JBSWY3DPEHPK3PXP\ndigits 6\nperiod 30\nenrolled 1\n",
	    "mynaguard-totp 1\nsecret jbswy3dpehpk3pxpjbswy3dpehpk3pxp\ndigits 6\nperiod 30\n"
	    "enrolled 1\n",
	    "mynaguard-totp 1\nsecret JBSWY3DPEHPK3PXPJBSWY3DPEE======\ndigits 6\nperiod 30\n"
	    "enrolled 1\n",
	    /* digits, period out of range; leading zero; CR; double space */
	    "mynaguard-totp 1\nsecret " SECRET_B32 "\ndigits 5\nperiod 30\nenrolled 1\n",
	    "mynaguard-totp 1\nsecret " SECRET_B32 "\ndigits 6\nperiod 301\nenrolled 1\n",
	    "mynaguard-totp 1\nsecret " SECRET_B32 "\ndigits 6\nperiod 030\nenrolled 1\n",
	    "mynaguard-totp 1\r\nsecret " SECRET_B32 "\ndigits 6\nperiod 30\nenrolled 1\n",
	    "mynaguard-totp 1\nsecret  " SECRET_B32 "\ndigits 6\nperiod 30\nenrolled 1\n",
	    "mynaguard-totp 1\nsecret " SECRET_B32 "\ndigits 6\nperiod 30\nenrolled -1\n",
	};

	(void)state;
	slot(s0, 0, 1, 0, 0, 0, 0);
	slot(s1, 1, 0, 0, 0, 0, 0);
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		snprintf(text, sizeof(text), "%s%s%s", heads[i], s0, s1);
		memset(&r, 0x5a, sizeof(r));
		if (totp_record_parse(text, strlen(text), &r) != -EBADMSG)
			fail_msg("accepted bad record %zu", i);
		/* the secret is never left behind on failure */
		for (size_t k = 0; k < sizeof(r.secret); k++)
			assert_int_equal(r.secret[k], 0);
	}
	/* bad slots: missing, one only, trailing line, out of range, no final newline */
	{
		const char *tails[] = {"", "X", "\n"};
		for (size_t i = 0; i < 3; i++) {
			snprintf(text, sizeof(text), HEAD "%s%s%s", s0, i ? s1 : "", tails[i]);
			assert_int_equal(totp_record_parse(text, strlen(text), &r), -EBADMSG);
		}
		slot(s0, 0, 1, 0, 1001, 0, 0);
		snprintf(text, sizeof(text), HEAD "%s%s", s0, s1);
		assert_int_equal(totp_record_parse(text, strlen(text), &r), -EBADMSG);
		slot(s0, 0, 1, 0, 0, 0, 0);
		snprintf(text, sizeof(text), HEAD "%s%s", s0, s1);
		text[strlen(text) - 1] = '\0';
		assert_int_equal(totp_record_parse(text, strlen(text), &r), -EBADMSG);
	}
	/* an embedded NUL */
	make_valid();
	{
		char v[512];
		size_t n = strlen(valid);
		memcpy(v, valid, n);
		v[30] = '\0';
		assert_int_equal(totp_record_parse(v, n, &r), -EBADMSG);
	}
	memset(big, 'a', sizeof(big));
	assert_int_equal(totp_record_parse(big, sizeof(big), &r), -EFBIG);
}

static void test_base32(void **state)
{
	static const struct {
		const char *raw, *b32;
	} v[] = {
	    {"f", "MY"},	 {"fo", "MZXQ"},	{"foo", "MZXW6"},
	    {"foob", "MZXW6YQ"}, {"fooba", "MZXW6YTB"}, {"foobar", "MZXW6YTBOI"},
	};
	uint8_t out[16];
	char enc[32];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = strlen(v[i].raw);
		assert_int_equal(totp_base32_encode((const uint8_t *)v[i].raw, n, enc, sizeof(enc)),
				 (int)strlen(v[i].b32));
		assert_string_equal(enc, v[i].b32);
		assert_int_equal(totp_base32_decode(v[i].b32, strlen(v[i].b32), out, sizeof(out)),
				 (int)n);
		assert_memory_equal(out, v[i].raw, n);
	}
	assert_int_equal(totp_base32_decode("MZ", 2, out, sizeof(out)), -EINVAL); /* bits left */
	assert_int_equal(totp_base32_decode("M", 1, out, sizeof(out)), -EINVAL);
	assert_int_equal(totp_base32_decode("my", 2, out, sizeof(out)), -EINVAL);
	assert_int_equal(totp_base32_decode("MY======", 8, out, sizeof(out)), -EINVAL);
	assert_int_equal(totp_base32_decode("M1", 2, out, sizeof(out)), -EINVAL);
	assert_int_equal(totp_base32_decode("MZXW6YTBOI", 10, out, 3), -ENOBUFS);
	assert_int_equal(totp_base32_encode((const uint8_t *)"foobar", 6, enc, 10), -ENOBUFS);
}

static void test_user_names(void **state)
{
	(void)state;
	assert_true(totp_user_valid("alice"));
	assert_true(totp_user_valid("taro.yamada@city"));
	assert_true(totp_user_valid("a_b-c1"));
	assert_false(totp_user_valid(""));
	assert_false(totp_user_valid(".alice"));
	assert_false(totp_user_valid("-alice"));
	assert_false(totp_user_valid("../etc"));
	assert_false(totp_user_valid("a/b"));
	assert_false(totp_user_valid("a b"));
	assert_false(totp_user_valid("山田"));
	assert_false(
	    totp_user_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static struct totp_record rfc_record(void)
{
	struct totp_record r = {.digits = 8, .period = 30, .enrolled = 1};

	memcpy(r.secret, "12345678901234567890", 20);
	r.secret_len = 20;
	return r;
}

static void test_verify_rfc6238_vectors(void **state)
{
	static const struct {
		int64_t t;
		const char *code;
	} v[] = {
	    {59, "94287082"},	      {1111111109, "07081804"}, {1111111111, "14050471"},
	    {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	};
	const struct totp_params p = {.window = 0, .max_failures = 5, .lockout_sec = 900};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct totp_record r = rfc_record();
		enum totp_result res;
		int changed;
		assert_int_equal(totp_verify(&r, v[i].code, v[i].t, &p, &res, &changed), 0);
		assert_int_equal(res, TOTP_SUCCESS);
		assert_true(changed);
		assert_int_equal(r.last_step, (uint64_t)v[i].t / 30);
		/* the same code again: replay, nothing changes */
		assert_int_equal(totp_verify(&r, v[i].code, v[i].t, &p, &res, &changed), 0);
		assert_int_equal(res, TOTP_REPLAY);
		assert_false(changed);
	}
}

static void test_verify_rules(void **state)
{
	const struct totp_params p = {.window = 1, .max_failures = 3, .lockout_sec = 100};
	struct totp_record r = rfc_record();
	enum totp_result res;
	int changed;

	(void)state;
	/* malformed input is just a wrong code */
	assert_int_equal(totp_verify(&r, "9428708", 59, &p, &res, &changed), 0);
	assert_int_equal(res, TOTP_WRONG);
	assert_int_equal(r.failures, 1);
	assert_int_equal(totp_verify(&r, "9428708x", 59, &p, &res, &changed), 0);
	assert_int_equal(res, TOTP_WRONG);
	assert_int_equal(totp_verify(&r, "", 59, &p, &res, &changed), 0);
	assert_int_equal(res, TOTP_WRONG);
	assert_int_equal(r.failures, 3);
	assert_int_equal(r.locked_until, 159);
	/* locked: even the right code is not looked at */
	assert_int_equal(totp_verify(&r, "94287082", 100, &p, &res, &changed), 0);
	assert_int_equal(res, TOTP_LOCKED);
	assert_false(changed);
	assert_int_equal(r.last_step, 0);
	/* expiry: the count restarts */
	assert_int_equal(totp_verify(&r, "00000000", 159, &p, &res, &changed), 0);
	assert_int_equal(res, TOTP_WRONG);
	assert_int_equal(r.failures, 1);
	assert_int_equal(r.locked_until, 0);
	/* success resets */
	assert_int_equal(totp_verify(&r, "94287082", 80, &p, &res, &changed), 0);
	assert_int_equal(res, TOTP_SUCCESS);
	assert_int_equal(r.failures, 0);
	assert_int_equal(r.last_step, 1);
}

static char tmpdir[64];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mg-totp-unit.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_store_roundtrip_and_checks(void **state)
{
	struct totp_record r, back;
	char p[256];
	struct stat st;
	int dirfd, lockfd;

	(void)state;
	make_valid();
	assert_int_equal(totp_record_parse(valid, strlen(valid), &r), 0);
	assert_int_equal(totp_store_open(tmpdir, geteuid(), &dirfd), 0);
	assert_int_equal(totp_store_exists(dirfd, "alice"), 0);
	assert_int_equal(totp_store_lock(dirfd, "alice", geteuid(), &lockfd), 0);
	assert_int_equal(totp_store_write(dirfd, "alice", &r), 0);
	assert_int_equal(totp_store_read(dirfd, "alice", geteuid(), &back), 0);
	assert_memory_equal(back.secret, r.secret, sizeof(r.secret));
	assert_int_equal(back.last_step, r.last_step);
	assert_int_equal(back.failures, r.failures);
	/* in-place update: the file keeps its inode and size, the state moves to the other slot */
	{
		struct stat before, after;
		int fd;
		snprintf(p, sizeof(p), "%s/alice", tmpdir);
		assert_int_equal(stat(p, &before), 0);
		assert_int_equal(totp_store_open_record(dirfd, "alice", geteuid(), O_RDWR, &fd), 0);
		back.last_step = 99;
		back.failures = 7;
		assert_int_equal(totp_store_update(fd, &back), 0);
		back.last_step = 100;
		assert_int_equal(totp_store_update(fd, &back), 0);
		close(fd);
		assert_int_equal(stat(p, &after), 0);
		assert_int_equal(before.st_ino, after.st_ino);
		assert_int_equal(before.st_size, after.st_size);
		assert_int_equal(totp_store_read(dirfd, "alice", geteuid(), &back), 0);
		assert_int_equal(back.last_step, 100);
		assert_int_equal(back.failures, 7);
		assert_int_equal(back.seq, 7); /* written with SEQ 5, then two updates */
	}
	snprintf(p, sizeof(p), "%s/alice", tmpdir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(totp_store_remove(dirfd, "alice"), 0);
	assert_int_equal(totp_store_read(dirfd, "alice", geteuid(), &back), -ENOENT);
	close(lockfd);
	/* the lock file stays */
	snprintf(p, sizeof(p), "%s/.alice.lock", tmpdir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* a record other users may read is refused */
	assert_int_equal(totp_store_write(dirfd, "bob", &r), 0);
	snprintf(p, sizeof(p), "%s/bob", tmpdir);
	chmod(p, 0644);
	assert_int_equal(totp_store_read(dirfd, "bob", geteuid(), &back), -EACCES);
	/* someone else's record is refused */
	chmod(p, 0600);
	assert_int_equal(totp_store_read(dirfd, "bob", geteuid() + 1, &back), -EPERM);
	/* names that could escape the store are refused before any I/O */
	assert_int_equal(totp_store_read(dirfd, "../x", geteuid(), &back), -EINVAL);
	close(dirfd);
	/* a store others can write to is refused */
	chmod(tmpdir, 0733);
	assert_int_equal(totp_store_open(tmpdir, geteuid(), &dirfd), -EACCES);
	chmod(tmpdir, 0700);
}

/* Version 2: the lifecycle lines, the wider slot, a newer version refused. */
static void test_version2(void **state)
{
	struct totp_record r = {.kind = TOTP_KIND_HARDWARE,
				.enrolled = 1764097538,
				.verified = 0,
				.digits = 8,
				.period = 60,
				.secret_len = 20,
				.last_step = 5,
				.last_used = 1764097600,
				.seq = 3},
			   back;
	char buf[TOTP_RECORD_MAX_SIZE], line[TOTP_SLOT_LEN_MAX + 1], big[TOTP_RECORD_MAX_SIZE + 50];
	size_t len, slen, off;

	(void)state;
	memcpy(r.secret, "Hello!\xde\xad\xbe\xefHello!\xde\xad\xbe\xef", 20);
	/* a hardware token needs a serial, an app must not have one */
	assert_int_equal(totp_record_format(&r, buf, sizeof(buf), &len), -EINVAL);
	snprintf(r.serial, sizeof(r.serial), "TK-0001");
	assert_int_equal(totp_record_format(&r, buf, sizeof(buf), &len), 0);
	assert_memory_equal(buf,
			    "mynaguard-totp 2\ntype hardware\nserial TK-0001\nenrolled 1764097538\n"
			    "verified 0\nsecret " SECRET_B32 "\ndigits 8\nperiod 60\nstate0 ",
			    strlen("mynaguard-totp 2\ntype hardware\nserial TK-0001\nenrolled "
				   "1764097538\nverified 0\nsecret " SECRET_B32
				   "\ndigits 8\nperiod 60\nstate0 "));
	assert_int_equal(totp_record_parse(buf, len, &back), 0);
	assert_int_equal(back.version, 2);
	assert_int_equal(back.kind, TOTP_KIND_HARDWARE);
	assert_string_equal(back.serial, "TK-0001");
	assert_int_equal(back.verified, 0);
	assert_int_equal(back.last_used, 1764097600);
	assert_int_equal(back.seq, 3);
	assert_int_equal(back.slot_offset[1] - back.slot_offset[0], TOTP_SLOT_LEN_V2);
	/* the next slot keeps the version 2 layout and carries last_used */
	back.last_used = 1764097700;
	assert_int_equal(totp_record_next_slot(&back, line, &slen, &off), 0);
	assert_int_equal(slen, TOTP_SLOT_LEN_V2);
	assert_int_equal(off, back.slot_offset[1]);
	memcpy(buf + off, line, slen);
	assert_int_equal(totp_record_parse(buf, len, &back), 0);
	assert_int_equal(back.last_used, 1764097700);
	assert_int_equal(back.current, 1);
	r.kind = TOTP_KIND_APP;
	assert_int_equal(totp_record_format(&r, buf, sizeof(buf), &len), -EINVAL);
	r.serial[0] = '\0';
	r.verified = 1764097601;
	assert_int_equal(totp_record_format(&r, buf, sizeof(buf), &len), 0);
	assert_non_null(strstr(buf, "type totp\nserial -\n"));
	/* bad lifecycle lines */
	{
		static const char *const bad[] = {"type app\n",
						  "type hardware\nserial -\n",
						  "type totp\nserial TK-1\n",
						  "type hardware\nserial -bad\n",
						  "type totp\nserial -\nenrolled 1\nverified -1\n",
						  "type totp\nserial -\nenrolled 1\nverified 01\n"};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char text[1024];
			snprintf(text, sizeof(text), "mynaguard-totp 2\n%s", bad[i]);
			assert_int_equal(totp_record_parse(text, strlen(text), &back), -EBADMSG);
		}
	}
	/* a newer version: refused as such, whatever follows, even when larger than the limit */
	assert_int_equal(totp_record_parse("mynaguard-totp 3\n", 17, &back), -EPROTONOSUPPORT);
	assert_int_equal(totp_record_parse("mynaguard-totp 12\nx", 19, &back), -EPROTONOSUPPORT);
	assert_int_equal(totp_record_version("mynaguard-totp 3x\n", 18), -EBADMSG);
	memset(big, 'y', sizeof(big));
	memcpy(big, "mynaguard-totp 4\n", 17);
	assert_int_equal(totp_record_parse(big, sizeof(big), &back), -EFBIG);
	{
		char p[256];
		int dirfd;
		FILE *f;
		snprintf(p, sizeof(p), "%s/newer", tmpdir);
		f = fopen(p, "w");
		fwrite(big, 1, sizeof(big), f);
		fclose(f);
		chmod(p, 0600);
		assert_int_equal(totp_store_open(tmpdir, geteuid(), &dirfd), 0);
		assert_int_equal(totp_store_read(dirfd, "newer", geteuid(), &back),
				 -EPROTONOSUPPORT);
		close(dirfd);
	}
	assert_true(totp_serial_valid("SN:42.a_b-c", 11));
	assert_false(totp_serial_valid("", 0));
	assert_false(totp_serial_valid(".x", 2));
	assert_false(totp_serial_valid("a b", 3));
}

static int64_t clock_t0(void)
{
	return 1768471210;
}

/* totp_check: a pending record is not a factor (nothing read from the code, nothing written);
 * the lock's end is reported for the message. */
static void test_check_pending_and_info(void **state)
{
	struct totp_record r = {.kind = TOTP_KIND_APP,
				.enrolled = 1,
				.verified = 0,
				.digits = 6,
				.period = 30,
				.secret_len = 20};
	const struct totp_params p = {.window = 1, .max_failures = 1, .lockout_sec = 900};
	struct totp_check_info info = {0};
	enum totp_result res;
	char before[TOTP_RECORD_MAX_SIZE], after[TOTP_RECORD_MAX_SIZE], path[256];
	int dirfd, fd;
	ssize_t n1, n2;

	(void)state;
	memcpy(r.secret, "Hello!\xde\xad\xbe\xefHello!\xde\xad\xbe\xef", 20);
	assert_int_equal(totp_store_open(tmpdir, geteuid(), &dirfd), 0);
	assert_int_equal(totp_store_write(dirfd, "alice", &r), 0);
	snprintf(path, sizeof(path), "%s/alice", tmpdir);
	fd = open(path, O_RDONLY);
	n1 = read(fd, before, sizeof(before));
	close(fd);
	assert_int_equal(totp_check(dirfd, "alice", geteuid(), "000000", clock_t0, &p, &res, &info),
			 0);
	assert_int_equal(res, TOTP_PENDING);
	assert_string_equal(totp_result_name(res), "pending");
	assert_int_equal(info.now, 1768471210);
	fd = open(path, O_RDONLY);
	n2 = read(fd, after, sizeof(after));
	close(fd);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, (size_t)n1);
	/* verified: a wrong code locks (max_failures 1), and says until when */
	r.verified = 2;
	assert_int_equal(totp_store_write(dirfd, "alice", &r), 0);
	assert_int_equal(totp_check(dirfd, "alice", geteuid(), "000000", clock_t0, &p, &res, &info),
			 0);
	assert_int_equal(res, TOTP_WRONG);
	assert_int_equal(info.locked_until, 1768471210 + 900);
	assert_int_equal(totp_lock_minutes(info.locked_until, info.now), 15);
	close(dirfd);
}

static void test_lockout_text(void **state)
{
	char out[TOTP_CONTACT_MAX + 1], msg[768], in[400];

	(void)state;
	assert_int_equal(totp_lock_minutes(0, 100), 0);
	assert_int_equal(totp_lock_minutes(100, 100), 1);
	assert_int_equal(totp_lock_minutes(160, 100), 1);
	assert_int_equal(totp_lock_minutes(161, 100), 2);
	assert_int_equal(totp_lock_minutes(100 + 900, 100), 15);
	assert_int_equal(totp_lock_minutes(INT64_MAX, 0), 1000000);
	/* control bytes go, UTF-8 is cut only at a character boundary */
	totp_contact_clean("a\x1b[31mb\n\x7f"
			   "c",
			   out);
	assert_string_equal(out, "a[31mbc");
	totp_contact_clean(NULL, out);
	assert_string_equal(out, "");
	memset(in, 'x', TOTP_CONTACT_MAX - 1);
	strcpy(in + TOTP_CONTACT_MAX - 1, "課課");
	totp_contact_clean(in, out);
	assert_int_equal(strlen(out), TOTP_CONTACT_MAX - 1);
	strcpy(in + TOTP_CONTACT_MAX - 2, "課");
	totp_contact_clean(in, out);
	assert_int_equal(strlen(out), TOTP_CONTACT_MAX - 2);
	strcpy(in + TOTP_CONTACT_MAX - 3, "課");
	totp_contact_clean(in, out);
	assert_int_equal(strlen(out), TOTP_CONTACT_MAX);
	assert_string_equal(out + TOTP_CONTACT_MAX - 3, "課");
	totp_locked_message(TOTP_LANG_EN, 3, "IT desk, ext. 1234", msg, sizeof(msg));
	assert_string_equal(msg, "Too many wrong codes. Locked for 3 more minute(s). To unlock "
				 "sooner, ask IT desk, ext. 1234.");
	totp_locked_message(TOTP_LANG_EN, 0, "", msg, sizeof(msg));
	assert_string_equal(msg, "Too many wrong codes. Try again later. To unlock sooner, ask "
				 "your administrator.");
	totp_locked_message(TOTP_LANG_JA, 2, "", msg, sizeof(msg));
	assert_string_equal(msg,
			    "ワンタイムパスワードの誤りが多すぎます。あと2分間ロックされています。"
			    "すぐに解除が必要な場合は管理者にお問い合わせください。");
}

static void test_notify_json(void **state)
{
	const struct notify_info info = {
	    .user = "a\"b\\c\n\x01\xc3\xa9\xff", .service = "login", .rhost = NULL, .tty = "tty1"};
	char buf[NOTIFY_MAX], longname[1000];
	size_t len;

	(void)state;
	assert_int_equal(notify_format(buf, sizeof(buf), "auth.failure", 1764097538123, &info,
				       "wrong_code", &len),
			 0);
	assert_string_equal(buf, "{\"v\":1,\"kind\":\"auth.failure\",\"ts_ms\":1764097538123,"
				 "\"data\":{\"user\":\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\\ufffd\","
				 "\"service\":\"login\",\"rhost\":\"\",\"tty\":\"tty1\","
				 "\"reason\":\"wrong_code\"}}");
	assert_int_equal(len, strlen(buf));
	/* long fields are cut, the datagram stays bounded */
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	{
		const struct notify_info big = {
		    .user = longname, .service = longname, .rhost = longname, .tty = longname};
		assert_int_equal(
		    notify_format(buf, sizeof(buf), "auth.success", 1, &big, "ok", &len), 0);
		assert_true(len < 4 * NOTIFY_FIELD_MAX + 200);
	}
	assert_int_equal(notify_format(buf, 20, "auth.success", 1, &info, "ok", &len), -ENOBUFS);
}

/* su and sudo run the module with euid 0 and the caller's real uid: the datagram must carry
 * the effective uid (the agent trusts only root to report about other users). */
static void test_notify_sends_effective_uid(void **state)
{
	char dir[] = "/tmp/mg-notify-XXXXXX", path[128], buf[64];
	(void)state;
	if (geteuid() != 0) {
		print_message("needs root: a real uid different from the effective one\n");
		skip();
	}
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	int rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, path);
	assert_true(rx >= 0);
	assert_int_equal(setsockopt(rx, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	assert_int_equal(bind(rx, (struct sockaddr *)&sa, sizeof(sa)), 0);
	chmod(dir, 0755);
	chmod(path, 0666);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* like su: real uid the caller's, effective root */
		if (setresuid(65534, 0, 0) < 0)
			_exit(2);
		_exit(notify_send(path, "{}", 2) == 0 ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf)};
	assert_int_equal(recvmsg(rx, &msg, 0), 2);
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	assert_non_null(c);
	assert_int_equal(c->cmsg_type, SCM_CREDENTIALS);
	struct ucred cred;
	memcpy(&cred, CMSG_DATA(c), sizeof(cred));
	assert_int_equal(cred.uid, 0);
	assert_int_equal(cred.pid, pid);
	close(rx);
	unlink(path);
	rmdir(dir);
}

/* What the setuid helper writes: the caller's words under caller_*, the real uid, the helper's
 * own service name; the agent's decoder accepts it. */
static void test_notify_json_helper(void **state)
{
	const struct notify_info info = {.user = "alice",
					 .service = "sshd",
					 .rhost = "10.0.0.1",
					 .tty = "pts/3",
					 .via_helper = true,
					 .caller_uid = 1000};
	char buf[NOTIFY_MAX], reason[EVENT_REASON_MAX];
	enum event_kind kind;
	int64_t ts;
	json_t *data = NULL;
	size_t len;

	(void)state;
	assert_int_equal(
	    notify_format(buf, sizeof(buf), "auth.failure", 5, &info, "wrong_code", &len), 0);
	assert_string_equal(buf, "{\"v\":1,\"kind\":\"auth.failure\",\"ts_ms\":5,\"data\":{"
				 "\"user\":\"alice\",\"service\":\"mynaguard-totp-check\","
				 "\"caller_uid\":1000,\"caller_service\":\"sshd\","
				 "\"caller_rhost\":\"10.0.0.1\",\"caller_tty\":\"pts/3\","
				 "\"reason\":\"wrong_code\"}}");
	assert_int_equal(event_datagram_decode(buf, len, &kind, &ts, &data, reason), 0);
	assert_string_equal(json_string_value(json_object_get(data, "service")),
			    "mynaguard-totp-check");
	assert_int_equal(json_integer_value(json_object_get(data, "caller_uid")), 1000);
	assert_null(json_object_get(data, "rhost"));
	json_decref(data);
}

/* Strings a peer chooses (the user typed at a prompt, the helper's caller) cannot make an
 * event too large to send: each escapes to 6 bytes per input byte, and is cut. */
static void test_notify_worst_case_fits(void **state)
{
	char ctl[300], bad[300], buf[NOTIFY_MAX], reason[EVENT_REASON_MAX];
	enum event_kind kind;
	int64_t ts;
	json_t *data = NULL;
	size_t len;

	(void)state;
	memset(ctl, '\x01', sizeof(ctl) - 1);
	ctl[sizeof(ctl) - 1] = '\0';
	memset(bad, '\xff', sizeof(bad) - 1);
	bad[sizeof(bad) - 1] = '\0';
	for (int helper = 0; helper < 2; helper++) {
		const struct notify_info info = {.user = ctl,
						 .service = bad,
						 .rhost = ctl,
						 .tty = bad,
						 .via_helper = helper,
						 .caller_uid = 4294967294u};
		assert_int_equal(notify_format(buf, sizeof(buf), "auth.failure", INT64_C(1) << 40,
					       &info, "wrong_code", &len),
				 0);
		assert_true(len <= EVENT_DATAGRAM_MAX);
		/* cut on an escape boundary: 256 / 6 = 42 escapes, never half of one */
		assert_non_null(strstr(buf, "\\u0001\""));
		assert_int_equal(event_datagram_decode(buf, len, &kind, &ts, &data, reason), 0);
		assert_int_equal(strlen(json_string_value(json_object_get(data, "user"))), 42);
		json_decref(data);
	}
}

static void test_pending_file_bounded(void **state)
{
	char p[256], buf[64];
	int dirfd, fd;
	ssize_t n;

	(void)state;
	assert_int_equal(totp_store_open(tmpdir, geteuid(), &dirfd), 0);
	assert_int_equal(notify_append_pending(dirfd, geteuid(), "{\"a\":1}", 7), 0);
	/* fill it up to the limit: the next one is counted, not written */
	snprintf(p, sizeof(p), "%s/" TOTP_STORE_PENDING, tmpdir);
	assert_int_equal(truncate(p, TOTP_STORE_PENDING_MAX - 4), 0);
	assert_int_equal(notify_append_pending(dirfd, geteuid(), "{\"a\":1}", 7), 1);
	assert_int_equal(notify_append_pending(dirfd, geteuid(), "{\"a\":1}", 7), 1);
	snprintf(p, sizeof(p), "%s/" TOTP_STORE_PENDING_DROPS, tmpdir);
	fd = open(p, O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	assert_string_equal(buf, "2\n");
	close(dirfd);
}

static void test_helper_input(void **state)
{
	static const char ok[] = "123456\0login\0\0tty1";
	char big[TOTP_HELPER_INPUT_MAX + 1], field[300];
	const char *f[4] = {0};

	(void)state;
	assert_int_equal(totp_helper_parse_input(ok, sizeof(ok), f), 0);
	assert_string_equal(f[0], "123456");
	assert_string_equal(f[1], "login");
	assert_string_equal(f[2], "");
	assert_string_equal(f[3], "tty1");
	/* exactly four fields that use up the input */
	assert_int_equal(totp_helper_parse_input("", 0, f), -EINVAL);
	assert_int_equal(totp_helper_parse_input("no NUL", 6, f), -EINVAL);
	assert_int_equal(totp_helper_parse_input("a\0b\0c\0", 6, f), -EINVAL);
	assert_int_equal(totp_helper_parse_input("a\0b\0c\0d", 7, f), -EINVAL);
	assert_int_equal(totp_helper_parse_input("a\0b\0c\0d\0e\0", 10, f), -EINVAL);
	assert_int_equal(totp_helper_parse_input("a\0b\0c\0d\0e", 9, f), -EINVAL);
	/* a field of 255 bytes is the longest */
	memset(field, 'x', sizeof(field));
	field[255] = '\0';
	memcpy(big, field, 256);
	memcpy(big + 256, "\0\0\0", 3);
	assert_int_equal(totp_helper_parse_input(big, 259, f), 0);
	assert_int_equal(strlen(f[0]), 255);
	memset(big, 'x', 256);
	big[256] = '\0';
	memcpy(big + 257, "\0\0\0", 3);
	assert_int_equal(totp_helper_parse_input(big, 260, f), -EINVAL);
	memset(big, '\0', sizeof(big));
	assert_int_equal(totp_helper_parse_input(big, sizeof(big), f), -E2BIG);
}

static int64_t fixed_clock(void)
{
	return 1768471210;
}

static void test_out_of_memory(void **state)
{
	char p[256];
	FILE *f;
	int n, nomem = 0;

	(void)state;
	snprintf(p, sizeof(p), "%s/policy.conf", tmpdir);
	f = fopen(p, "w");
	fputs("[terminal]\nid = t1\n[mfa]\nwindow = 1\nmax_failures = 5\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/alice", tmpdir);
	make_valid();
	f = fopen(p, "w");
	fputs(valid, f);
	fclose(f);
	chmod(p, 0600);

	/* Fail the 1st, 2nd, ... allocation of an attempt until one runs without a failure:
	 * every failing run must end in "out of memory, failing closed" (or, where a library
	 * turns the failure into a parse error, in a closed failure), never in a success. */
	for (n = 0; n < 500; n++) {
		struct totp_attempt a = {0};
		char policy[256];
		int r;

		snprintf(policy, sizeof(policy), "%s/policy.conf", tmpdir);
		totp_attempt_init(&a);
		a.user = "alice";
		a.store = tmpdir;
		a.policy = policy;
		a.policy_explicit = true;
		a.socket = "/nonexistent/sock";
		a.info = (struct notify_info){
		    .user = "alice", .service = "login", .rhost = "", .tty = ""};
		a.clock = fixed_clock;
		allocations = 0;
		fail_countdown = n;
		r = totp_attempt_prepare(&a);
		if (r == 1)
			totp_attempt_check(&a, "000000");
		fail_countdown = -1;
		totp_attempt_done(&a);
		if (allocations <= n) {
			/* no allocation failed in this run: done */
			assert_int_equal(r, 1);
			assert_int_equal(a.outcome, TOTP_OUT_WRONG);
			break;
		}
		assert_int_not_equal(a.outcome, TOTP_OUT_SUCCESS);
		assert_int_not_equal(a.outcome, TOTP_OUT_NULLOK);
		if (a.outcome == TOTP_OUT_NOMEM) {
			nomem++;
			assert_string_equal(a.reason, "no_memory");
			assert_non_null(strstr(a.message, "out of memory, failing closed"));
		}
	}
	assert_true(n < 500);
	assert_true(nomem > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_valid_and_roundtrip),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_slots),
	    cmocka_unit_test(test_base32),
	    cmocka_unit_test(test_user_names),
	    cmocka_unit_test(test_verify_rfc6238_vectors),
	    cmocka_unit_test(test_verify_rules),
	    cmocka_unit_test_setup_teardown(test_store_roundtrip_and_checks, setup_dir,
					    teardown_dir),
	    cmocka_unit_test_setup_teardown(test_version2, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_check_pending_and_info, setup_dir, teardown_dir),
	    cmocka_unit_test(test_lockout_text),
	    cmocka_unit_test(test_notify_json),
	    cmocka_unit_test(test_notify_sends_effective_uid),
	    cmocka_unit_test(test_notify_json_helper),
	    cmocka_unit_test(test_helper_input),
	    cmocka_unit_test(test_notify_worst_case_fits),
	    cmocka_unit_test_setup_teardown(test_pending_file_bounded, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_out_of_memory, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
