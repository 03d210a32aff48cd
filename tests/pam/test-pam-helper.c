/* SPDX-License-Identifier: MIT */
/* The screen-locker path: pam_mynaguard.so running as an ordinary user (nobody) cannot read the
 * root-owned store and asks the setuid helper mynaguard-totp-check. Needs root to set up (CI runs
 * as root; exit 77 = skipped otherwise): a private mount namespace puts the built helper (setuid
 * root) at its installed path and a fresh root-owned store at the default path, so the installed
 * binary's checks are tested exactly as they ship — no test-only switches. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <liboath/oath.h>
#include <libgen.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "config.h"

#define SECRET_B32 "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
#define SECRET	   "Hello!\xde\xad\xbe\xefHello!\xde\xad\xbe\xef"
#define NOBODY	   65534
#define SECURITY   "/usr/lib/x86_64-linux-gnu/security"

static char fx[64];
static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static void die(const char *what)
{
	fprintf(stderr, "setup: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_file(const char *path, mode_t mode, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void write_file(const char *path, mode_t mode, const char *fmt, ...)
{
	va_list ap;
	FILE *f = fopen(path, "w");

	if (!f)
		die(path);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	if (chmod(path, mode) < 0)
		die(path);
}

static void mkdir_p(const char *path, mode_t mode)
{
	char p[512];

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		die(p);
	chmod(p, mode);
}

/* Put a fresh tmpfs where path (a directory) is, or on its nearest existing ancestor, and create
 * path inside. Refuse to hide a top-level directory. */
static void fresh_dir(const char *path)
{
	char anc[512];
	struct stat st;

	snprintf(anc, sizeof(anc), "%s", path);
	while (stat(anc, &st) < 0) {
		char *slash = strrchr(anc, '/');
		if (!slash || slash == anc) {
			fprintf(stderr, "no ancestor of %s to mount on\n", path);
			exit(77);
		}
		*slash = '\0';
	}
	if (strchr(anc + 1, '/') == NULL) {
		fprintf(stderr, "would have to hide %s for %s; skipping\n", anc, path);
		exit(77);
	}
	if (mount("tmpfs", anc, "tmpfs", MS_NODEV, "mode=0755,size=4m") < 0)
		die(anc);
	mkdir_p(path, 0755);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0700);
	ssize_t n;

	if (in < 0 || out < 0)
		die(to);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			die(to);
	close(in);
	if (fchown(out, 0, 0) < 0 || fchmod(out, mode) < 0)
		die(to);
	close(out);
}

static void slot(char *out, size_t size, unsigned idx, unsigned long long seq,
		 unsigned long long last_step, unsigned failures_, long long locked)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "state%u %020llu %020llu %04u %020lld ", idx, seq,
			 last_step, failures_, locked);

	snprintf(out, size, "%s%08lx\n", line,
		 (unsigned long)crc32(0, (const Bytef *)line, (uInt)(n - 1)));
}

static void record(const char *user, uint64_t last_step, unsigned failures_, int64_t locked)
{
	char p[512], s0[128], s1[128];

	snprintf(p, sizeof(p), "%s/%s", MYNAGUARD_TOTP_STORE, user);
	slot(s0, sizeof(s0), 0, 1, last_step, failures_, locked);
	slot(s1, sizeof(s1), 1, 0, 0, 0, 0);
	write_file(p, 0600,
		   "mynaguard-totp 1\nsecret " SECRET_B32 "\ndigits 6\nperiod 30\n"
		   "enrolled 1700000000\n%s%s",
		   s0, s1);
}

static void code_at(int64_t t, char out[8])
{
	if (oath_totp_generate2(SECRET, 20, (time_t)t, 30, 0, 6, 0, out) != OATH_OK)
		abort();
}

static char asan_lib[256];

static void find_asan(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "/");
		if (p && strstr(p, "libasan")) {
			p[strcspn(p, "\n")] = '\0';
			snprintf(asan_lib, sizeof(asan_lib), "%s", p);
			break;
		}
	}
	if (f)
		fclose(f);
}

/* Run argv as nobody with len bytes of input on stdin; collect stdout+stderr; return the exit
 * status. */
static int run_as_nobody_input(char *const argv[], const char *input, size_t len, char *out,
			       size_t size)
{
	char svc[256], preload[512];
	int in[2], outp[2], st;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	snprintf(svc, sizeof(svc), "PAM_WRAPPER_SERVICE_DIR=%s/svc", fx);
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s%slibpam_wrapper.so", asan_lib,
		 asan_lib[0] ? " " : "");
	char *envp[] = {preload,
			(char *)"PAM_WRAPPER=1",
			svc,
			(char *)"PAM_WRAPPER_DEBUGLEVEL=2",
			(char *)"UID_WRAPPER_DISABLE_DEEPBIND=1",
			(char *)"ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0",
			(char *)"PATH=/usr/bin:/bin",
			NULL};
	if (pipe(in) < 0 || pipe(outp) < 0)
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(outp[1], 1);
		dup2(outp[1], 2);
		close(in[1]);
		close(outp[0]);
		if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(120);
		execve(argv[0], argv, envp);
		_exit(121);
	}
	close(in[0]);
	close(outp[1]);
	if (input)
		(void)!write(in[1], input, len);
	close(in[1]);
	while (got + 1 < size && (n = read(outp[0], out + got, size - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(outp[0]);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run_as_nobody(char *const argv[], const char *input, char *out, size_t size)
{
	return run_as_nobody_input(argv, input, input ? strlen(input) : 0, out, size);
}

static int pamtester(const char *service, const char *user, const char *code, char *out,
		     size_t size)
{
	char input[32];
	char *const argv[] = {(char *)"/usr/bin/pamtester", (char *)service, (char *)user,
			      (char *)"authenticate", NULL};

	snprintf(input, sizeof(input), "%s\n", code ? code : "");
	return run_as_nobody(argv, input, out, size);
}

static int count_lines(const char *path, const char *needle)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

static void cases(const char *module)
{
	char out[16384], code[8], pending[512], p[512];
	int64_t now = (int64_t)time(NULL);
	struct stat st;
	int rc;

	snprintf(pending, sizeof(pending), "%s/.pending-events", MYNAGUARD_TOTP_STORE);
	(void)module;

	/* the right code, through the helper */
	code_at(now, code);
	rc = pamtester("mghelper", "nobody", code, out, sizeof(out));
	CHECK(rc == 0, "right code via helper: rc=%d\n%s", rc, out);
	CHECK(strstr(out, code) == NULL, "code in output");
	snprintf(p, sizeof(p), "%s/nobody", MYNAGUARD_TOTP_STORE);
	CHECK(stat(p, &st) == 0 && st.st_uid == 0 && (st.st_mode & 07777) == 0600,
	      "record no longer root 0600");
	CHECK(count_lines(pending, "\"kind\":\"auth.success\"") == 1, "no success event");

	/* the same code again: replay, one log line from the module */
	rc = pamtester("mghelper", "nobody", code, out, sizeof(out));
	CHECK(rc != 0, "replay accepted via helper");
	CHECK(strstr(out, "helper: user nobody: code of an already used time step") != NULL,
	      "replay log line missing:\n%s", out);
	CHECK(count_lines(pending, "\"kind\":\"auth.replay\"") == 1, "no replay event");

	/* wrong codes lock (built-in default policy: 5), then the right code is not looked at */
	for (int i = 0; i < 5; i++) {
		rc = pamtester("mghelper", "nobody", "000000", out, sizeof(out));
		CHECK(rc != 0, "wrong code accepted");
	}
	CHECK(strstr(out, "helper: user nobody: wrong code") != NULL, "wrong-code line:\n%s", out);
	code_at(now + 30, code);
	rc = pamtester("mghelper", "nobody", code, out, sizeof(out));
	CHECK(rc != 0, "locked user got in");
	CHECK(strstr(out, "locked") != NULL, "locked line missing:\n%s", out);
	CHECK(count_lines(pending, "\"kind\":\"auth.locked\"") == 1, "no locked event");
	/* the helper tells the module how long (built-in policy: 15 minutes) and there is no
	 * contact in the built-in policy: the user is told to ask the administrator */
	CHECK(strstr(out, "Too many wrong codes. Locked for 15 more minute(s). To unlock sooner, "
			  "ask your administrator.") != NULL,
	      "lockout message via the helper:\n%s", out);
	/* every event names the helper as its service and the caller's real uid; the service the
	 * caller gave is kept as the caller's word */
	rc = count_lines(pending, "\"service\":\"mynaguard-totp-check\",\"caller_uid\":65534,"
				  "\"caller_service\":\"mghelper\"");
	CHECK(rc == 8, "not one event per attempt: %d", rc);
	CHECK(count_lines(pending, "\"service\":\"mghelper\"") == 0, "service as given");
	if (rc != 8) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "cat %s >&2", pending);
		(void)!system(cmd);
	}

	/* a user without a record: the same prompt, refused; with nullok: ignored (the stack's
	 * pam_permit decides) */
	unlink(p);
	rc = pamtester("mghelper", "nobody", "123456", out, sizeof(out));
	CHECK(rc != 0, "no record accepted");
	CHECK(strstr(out, "not enrolled") != NULL, "no-record line:\n%s", out);
	CHECK(strstr(out, "One-time code: ") != NULL, "no prompt without a record:\n%s", out);
	rc = pamtester("mghelpernullok", "nobody", "123456", out, sizeof(out));
	CHECK(rc == 0, "nullok via helper: rc=%d\n%s", rc, out);

	/* the module will not hand the helper a store other than the default */
	record("nobody", 0, 0, 0);
	code_at(now, code);
	rc = pamtester("mgnondefault", "nobody", code, out, sizeof(out));
	CHECK(rc != 0, "non-default store accepted");
	CHECK(strstr(out, "helper serves only the default store") != NULL, "line:\n%s", out);

	/* the helper itself: a user may check only their own code */
	{
		char *const argv[] = {(char *)MYNAGUARD_TOTP_HELPER, (char *)"alice", NULL};
		rc = run_as_nobody(argv, "123456", out, sizeof(out));
		CHECK(rc == 6 && strstr(out, "denied a user may check only their own code"),
		      "other user: rc=%d %s", rc, out);
	}
	/* the helper run directly, claiming to be sshd from a remote host: the event says who
	 * really asked */
	{
		char *const argv[] = {(char *)MYNAGUARD_TOTP_HELPER, (char *)"nobody", NULL};
		static const char input[] = "000000\0sshd\0"
					    "203.0.113.9\0ssh\0";
		int before = count_lines(pending, "\"caller_uid\":65534");
		rc = run_as_nobody_input(argv, input, sizeof(input) - 1, out, sizeof(out));
		CHECK(rc == 1 && strstr(out, "failure"), "forged service: rc=%d %s", rc, out);
		CHECK(count_lines(pending, "\"service\":\"mynaguard-totp-check\",\"caller_uid\":"
					   "65534,\"caller_service\":\"sshd\",\"caller_rhost\":"
					   "\"203.0.113.9\",\"caller_tty\":\"ssh\"") == 1,
		      "forged service event");
		CHECK(count_lines(pending, "\"service\":\"sshd\"") == 0, "passes for sshd");
		CHECK(count_lines(pending, "\"caller_uid\":65534") == before + 1, "event count");
	}
	/* fields full of bytes that escape to six each cannot push the event out of the datagram
	 * (a wrong code that leaves no trace) */
	{
		char *const argv[] = {(char *)MYNAGUARD_TOTP_HELPER, (char *)"nobody", NULL};
		char input[1024];
		size_t len = 0;
		int before = count_lines(pending, "\"caller_uid\":65534");
		memcpy(input, "000000", 7);
		len = 7;
		for (int f = 0; f < 3; f++) {
			memset(input + len, f == 1 ? 0xff : 0x01, 255);
			len += 255;
			input[len++] = '\0';
		}
		rc = run_as_nobody_input(argv, input, len, out, sizeof(out));
		CHECK(rc == 1, "long fields: rc=%d %s", rc, out);
		CHECK(count_lines(pending, "\"caller_uid\":65534") == before + 1,
		      "long fields: no event");
	}
	{
		char *const argv[] = {(char *)MYNAGUARD_TOTP_HELPER, (char *)"nobody", NULL};
		rc = run_as_nobody(argv, "no NUL separators", out, sizeof(out));
		CHECK(rc == 6 && strstr(out, "bad input"), "bad input: rc=%d %s", rc, out);
	}
	{
		char *const argv[] = {(char *)MYNAGUARD_TOTP_HELPER, (char *)"../x", NULL};
		rc = run_as_nobody(argv, "", out, sizeof(out));
		CHECK(rc == 6, "bad name: rc=%d %s", rc, out);
	}

	/* a group/other-writable store is refused by the helper too */
	chmod(MYNAGUARD_TOTP_STORE, 0777);
	code_at(now + 30, code);
	rc = pamtester("mghelper", "nobody", code, out, sizeof(out));
	CHECK(rc != 0, "helper used a world-writable store");
	CHECK(strstr(out, "writable by group or other") != NULL, "line:\n%s", out);
	chmod(MYNAGUARD_TOTP_STORE, 0700);
	rc = pamtester("mghelper", "nobody", code, out, sizeof(out));
	CHECK(rc == 0, "after repair: rc=%d\n%s", rc, out);
}

int main(void)
{
	const char *module = getenv("MG_PAM_MODULE"), *helper = getenv("MG_HELPER");
	char helper_dir[512], p[512];
	struct passwd *pw;
	pid_t pid;
	int st;

	if (geteuid() != 0) {
		fprintf(stderr, "needs root (mount namespace, setuid helper); skipped\n");
		return 77;
	}
	if (!module || !helper)
		return 1;
	pw = getpwnam("nobody");
	if (!pw || pw->pw_uid != NOBODY) {
		fprintf(stderr, "no user nobody with uid %d; skipped\n", NOBODY);
		return 77;
	}
	if (access("/usr/bin/pamtester", X_OK) < 0)
		return 77;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1) {
		fprintf(stderr, "no_new_privs is set: setuid cannot work here; skipped\n");
		return 77;
	}
	find_asan();
	snprintf(fx, sizeof(fx), "/tmp/mg-helper-test.XXXXXX");
	if (!mkdtemp(fx) || chmod(fx, 0755) < 0)
		die("mkdtemp");
	/* The module as nobody loads it: a copy in the test's own 0755 directory, since the build
	 * tree may be where nobody cannot enter (a clone in /root, run as root on a fresh machine). */
	static char module_copy[512];
	snprintf(module_copy, sizeof(module_copy), "%s/pam_mynaguard.so", fx);
	copy_file(module, module_copy, 0644);
	module = module_copy;
	snprintf(p, sizeof(p), "%s/svc", fx);
	mkdir_p(p, 0755);
	snprintf(p, sizeof(p), "%s/svc/mghelper", fx);
	write_file(p, 0644, "auth required %s\n", module);
	snprintf(p, sizeof(p), "%s/svc/mghelpernullok", fx);
	write_file(p, 0644, "auth required %s nullok\nauth required " SECURITY "/pam_permit.so\n",
		   module);
	snprintf(p, sizeof(p), "%s/svc/mgnondefault", fx);
	write_file(p, 0644, "auth required %s store=%s\n", module, MYNAGUARD_TOTP_STORE "-other");
	snprintf(p, sizeof(p), "%s/svc/other", fx);
	write_file(p, 0644, "auth required " SECURITY "/pam_deny.so\n");

	pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
			fprintf(stderr, "no mount namespace here (%s); skipped\n", strerror(errno));
			_exit(77);
		}
		snprintf(helper_dir, sizeof(helper_dir), "%s", MYNAGUARD_TOTP_HELPER);
		fresh_dir(dirname(helper_dir));
		copy_file(helper, MYNAGUARD_TOTP_HELPER, 04755);
		fresh_dir(MYNAGUARD_TOTP_STORE);
		chmod(MYNAGUARD_TOTP_STORE, 0700);
		snprintf(p, sizeof(p), "%s", MYNAGUARD_TOTP_STORE "-other");
		mkdir_p(p, 0700);
		/* No policy at the default path (built-in defaults) and no agent socket (events go to
		 * the fallback file): hide whatever this machine has there. */
		snprintf(p, sizeof(p), "%s", MYNAGUARD_POLICY_PATH);
		if (access(dirname(p), F_OK) == 0 && mount("tmpfs", p, "tmpfs", 0, "size=64k") < 0)
			die(p);
		snprintf(p, sizeof(p), "%s", MYNAGUARD_SOCKET_PATH);
		if (access(dirname(p), F_OK) == 0 && mount("tmpfs", p, "tmpfs", 0, "size=64k") < 0)
			die(p);
		record("nobody", 0, 0, 0);
		record("alice", 0, 0, 0);
		cases(module);
		_exit(failures ? 1 : 0);
	}
	waitpid(pid, &st, 0);
	snprintf(p, sizeof(p), "rm -rf '%s'", fx);
	if (system(p) != 0)
		fprintf(stderr, "cleanup failed\n");
	if (!WIFEXITED(st))
		return 1;
	if (WEXITSTATUS(st) == 0)
		printf("ok\n");
	return WEXITSTATUS(st);
}
