/* SPDX-License-Identifier: MIT */
/* Test fixture for the PAM tests: a temp directory with fake users, PAM services, a policy and a
 * store; re-exec under pam_wrapper + nss_wrapper + libfaketime; TOTP codes at a faked time. */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <liboath/oath.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define FX_SECRET_B32 "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
#define FX_SECRET     "Hello!\xde\xad\xbe\xefHello!\xde\xad\xbe\xef"
#define FX_SECRET_LEN 20
#define FX_T0	      INT64_C(1768471210) /* 2026-01-15 10:00:10 UTC: 10 s into a step */
#define FX_MATRIX     "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so"
#define FX_SECURITY   "/usr/lib/x86_64-linux-gnu/security"
#define FX_FAKETIME   "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

static char fx_dir[256];

static void fx_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", fx_dir, name);
}

__attribute__((format(printf, 2, 3))) static void fx_write(const char *name, const char *fmt, ...)
{
	char path[512];
	va_list ap;
	FILE *f;

	fx_path(path, sizeof(path), name);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "fixture: cannot write %s: %m\n", path);
		exit(1);
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

/* Freeze the faked clock at t (libfaketime re-reads the file on every call). */
static void fx_set_time(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[64], path[512], tmp[512];
	FILE *f;

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	fx_path(path, sizeof(path), "faketime");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		exit(1);
	fprintf(f, "%s\n", buf);
	fclose(f);
	rename(tmp, path);
}

static void fx_code(int64_t t, char out[8])
{
	if (oath_totp_generate2(FX_SECRET, FX_SECRET_LEN, (time_t)t, 30, 0, 6, 0, out) != OATH_OK)
		abort();
}

/* Re-exec this binary with the preload environment once the fixture files exist.
 * extra_preload may be NULL. Returns only in the re-executed process. */
static void fx_reexec(int argc, char **argv, bool pam_wrapper, bool faketime,
		      void (*write_services)(void))
{
	char tmpl[] = "/tmp/mg-pamtest.XXXXXX", buf[1024], asan[1024];
	const char *d = getenv("MG_FX_DIR");

	(void)argc;
	if (d) {
		snprintf(fx_dir, sizeof(fx_dir), "%s", d);
		return;
	}
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		exit(1);
	}
	chmod(tmpl, 0755);
	snprintf(fx_dir, sizeof(fx_dir), "%s", tmpl);
	fx_write("passwd",
		 "alice:x:%u:%u:Alice:/tmp:/bin/sh\nbob:x:%u:%u:Bob:/tmp:/bin/sh\n"
		 "carol:x:%u:%u:Carol:/tmp:/bin/sh\n",
		 getuid(), getgid(), getuid(), getgid(), getuid(), getgid());
	fx_write("group", "users:x:%u:\n", getgid());
	fx_set_time(FX_T0);
	setenv("MG_FX_DIR", fx_dir, 1);
	snprintf(buf, sizeof(buf), "%s%s",
		 pam_wrapper ? "libpam_wrapper.so libnss_wrapper.so " : "",
		 faketime ? FX_FAKETIME : "");
	setenv("LD_PRELOAD", buf, 1);
	if (pam_wrapper)
		setenv("PAM_WRAPPER", "1", 1);
	fx_path(buf, sizeof(buf), "svc");
	mkdir(buf, 0755);
	/* pam_wrapper copies the service directory when the process starts: write it now. */
	if (write_services)
		write_services();
	setenv("PAM_WRAPPER_SERVICE_DIR", buf, 1);
	setenv("PAM_WRAPPER_DEBUGLEVEL", "2", 1);
	/* pam_wrapper 1.1.4 reads this name; RTLD_DEEPBIND does not work under ASan. */
	setenv("UID_WRAPPER_DISABLE_DEEPBIND", "1", 1);
	fx_path(buf, sizeof(buf), "passwd");
	setenv("NSS_WRAPPER_PASSWD", buf, 1);
	fx_path(buf, sizeof(buf), "group");
	setenv("NSS_WRAPPER_GROUP", buf, 1);
	if (faketime) {
		fx_path(buf, sizeof(buf), "faketime");
		setenv("FAKETIME_TIMESTAMP_FILE", buf, 1);
		setenv("FAKETIME_NO_CACHE", "1", 1);
		setenv("DONT_FAKE_MONOTONIC", "1", 1);
	}
	setenv("TZ", "UTC", 1);
	unsetenv("LANG");
	unsetenv("LC_ALL");
	unsetenv("LC_MESSAGES");
	/* An ASan build wants libasan first in LD_PRELOAD; it may come second here. */
	snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0:detect_leaks=0",
		 getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "",
		 getenv("ASAN_OPTIONS") ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	execv("/proc/self/exe", argv);
	perror("execv");
	exit(1);
}

static int fx_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf without starting a process (which would start pam_wrapper again). */
static void fx_rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	nftw(path, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fx_cleanup(void)
{
	if (getenv("MG_KEEP_FIXTURE"))
		return;
	fx_rm_rf(fx_dir);
}

/* A state slot line, by hand with zlib's CRC-32 (the test must not trust the code under test). */
static void fx_slot(char *out, size_t size, unsigned idx, unsigned long long seq,
		    unsigned long long last_step, unsigned failures, long long locked_until)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "state%u %020llu %020llu %04u %020lld ", idx, seq,
			 last_step, failures, locked_until);

	snprintf(out, size, "%s%08lx\n", line,
		 (unsigned long)crc32(0, (const Bytef *)line, (uInt)(n - 1)));
}

/* The text of a record with the secret above (the state in state0). */
static void fx_record_text(char *out, size_t size, uint64_t last_step, unsigned failures,
			   int64_t locked_until)
{
	char s0[128], s1[128];

	fx_slot(s0, sizeof(s0), 0, 7, last_step, failures, locked_until);
	fx_slot(s1, sizeof(s1), 1, 6, 0, 0, 0);
	snprintf(out, size,
		 "mynaguard-totp 1\nsecret " FX_SECRET_B32
		 "\ndigits 6\nperiod 30\nenrolled 1700000000\n"
		 "%s%s",
		 s0, s1);
}

/* Write a record by hand. */
static void fx_record(const char *store, const char *user, uint64_t last_step, unsigned failures,
		      int64_t locked_until, mode_t mode)
{
	char path[512], text[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", fx_dir, store, user);
	unlink(path);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "fixture: %s: %m\n", path);
		exit(1);
	}
	fx_record_text(text, sizeof(text), last_step, failures, locked_until);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static void fx_policy(const char *name, unsigned window, unsigned max_failures, const char *lockout,
		      bool nullok)
{
	fx_write(name,
		 "[terminal]\nid = test-terminal\n[mfa]\nwindow = %u\nmax_failures = %u\n"
		 "lockout = %s\nnullok = %s\n",
		 window, max_failures, lockout, nullok ? "yes" : "no");
}

/* A version 2 slot line (with LAST_USED), by hand with zlib's CRC-32. */
__attribute__((unused)) static void fx_slot2(char *out, size_t size, unsigned idx,
					     unsigned long long seq, unsigned long long last_step,
					     unsigned failures, long long locked_until,
					     long long last_used)
{
	char line[160];
	int n = snprintf(line, sizeof(line), "state%u %020llu %020llu %04u %020lld %020lld ", idx,
			 seq, last_step, failures, locked_until, last_used);

	snprintf(out, size, "%s%08lx\n", line,
		 (unsigned long)crc32(0, (const Bytef *)line, (uInt)(n - 1)));
}

/* Write a version 2 record of the secret above by hand: verified 0 = pending. version_line
 * NULL: "mynaguard-totp 2". */
__attribute__((unused)) static void fx_record_v2(const char *store, const char *user,
						 const char *version_line, int64_t verified)
{
	char path[512], s0[160], s1[160];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", fx_dir, store, user);
	unlink(path);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "fixture: %s: %m\n", path);
		exit(1);
	}
	fx_slot2(s0, sizeof(s0), 0, 1, 0, 0, 0, 0);
	fx_slot2(s1, sizeof(s1), 1, 0, 0, 0, 0, 0);
	fprintf(f,
		"%s\ntype totp\nserial -\nenrolled 1700000000\nverified %lld\nsecret " FX_SECRET_B32
		"\ndigits 6\nperiod 30\n%s%s",
		version_line ? version_line : "mynaguard-totp 2", (long long)verified, s0, s1);
	fclose(f);
	chmod(path, 0600);
}

/* The whole file as a string (for "did it change?"). */
__attribute__((unused)) static void fx_read(const char *name, char *out, size_t size)
{
	char path[512];
	ssize_t n;
	int fd;

	fx_path(path, sizeof(path), name);
	out[0] = '\0';
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	n = read(fd, out, size - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
}
