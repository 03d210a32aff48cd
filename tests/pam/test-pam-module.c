/* SPDX-License-Identifier: MIT */
/* pam_mynaguard.so from the build dir in a real PAM stack (pam_wrapper + libpamtest + pam_matrix),
 * with a faked clock: password x code, window, one-time use, clock moved back, lockout, every
 * fail-closed case (one syslog line each, never the code), nullok, events and their fallback,
 * language of the prompt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <libpamtest.h>
#include <sched.h>
#include <security/pam_appl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "pam-fixture.h"

struct res {
	int rv;
	char log[16384];
	int nsyslog;
	char event[4096];
	int nevents;
};

static int agent_fd = -1;
static const char *module;

static void drain_agent(struct res *r)
{
	char buf[4096];
	ssize_t n;

	r->nevents = 0;
	r->event[0] = '\0';
	while ((n = recv(agent_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) >= 0) {
		buf[n] = '\0';
		if (r->nevents++ == 0)
			snprintf(r->event, sizeof(r->event), "%s", buf);
	}
}

static int count_syslog(const char *log)
{
	int n = 0;

	for (const char *p = log; (p = strstr(p, "SYSLOG(")); p++)
		n++;
	return n;
}

/* Around one authentication: pam_syslog lines go to a file (pam_wrapper prints them on stderr)
 * and the datagrams the module sent are collected. */
struct capture {
	int saved, fd;
};

static void capture_begin(struct res *r, struct capture *c)
{
	char path[512];

	drain_agent(r);
	fx_path(path, sizeof(path), "stderr.log");
	fflush(stderr);
	c->saved = dup(2);
	c->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	dup2(c->fd, 2);
}

static void capture_end(struct res *r, struct capture *c, const char *service, const char *user)
{
	ssize_t n;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	n = pread(c->fd, r->log, sizeof(r->log) - 1, 0);
	r->log[n > 0 ? n : 0] = '\0';
	close(c->fd);
	r->nsyslog = count_syslog(r->log);
	drain_agent(r);
	if (getenv("MG_TEST_VERBOSE"))
		fprintf(stderr, "[%s %s] rv=%d syslog=%d event=%s\n%s", service, user, r->rv,
			r->nsyslog, r->event, r->log);
}

/* Run one pam_authenticate through libpamtest. tokens: answers to the echo-off prompts in
 * order. */
static void auth(const char *service, const char *user, const char *t1, const char *t2,
		 struct res *r)
{
	const char *tokens[3] = {t1, t2, NULL};
	struct pamtest_conv_data conv = {.in_echo_off = tokens};
	struct pam_testcase tc[] = {pam_test(PAMTEST_AUTHENTICATE, PAM_SUCCESS)};
	struct capture c;

	capture_begin(r, &c);
	(void)run_pamtest(service, user, &conv, tc, NULL);
	r->rv = tc[0].op_rv;
	capture_end(r, &c, service, user);
}

static void expect(const struct res *r, int rv, int nsyslog, const char *log_has, const char *kind,
		   const char *reason)
{
	char k[64], rs[64];

	if (r->rv != rv || r->nsyslog != nsyslog || (log_has && !strstr(r->log, log_has)) ||
	    r->nevents != 1)
		fprintf(stderr, "rv=%d (want %d) syslog=%d (want %d, \"%s\") events=%d\n%s\n",
			r->rv, rv, r->nsyslog, nsyslog, log_has ? log_has : "", r->nevents, r->log);
	assert_int_equal(r->rv, rv);
	assert_int_equal(r->nsyslog, nsyslog);
	if (log_has)
		assert_non_null(strstr(r->log, log_has));
	assert_int_equal(r->nevents, 1);
	snprintf(k, sizeof(k), "\"kind\":\"%s\"", kind);
	snprintf(rs, sizeof(rs), "\"reason\":\"%s\"", reason);
	assert_non_null(strstr(r->event, k));
	assert_non_null(strstr(r->event, rs));
}

/* The code must never reach the log. */
static void assert_no_code(const struct res *r, const char *code)
{
	assert_null(strstr(r->log, code));
}

static void service(const char *name, const char *lines_fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void service(const char *name, const char *lines_fmt, ...)
{
	char path[512], body[2048];
	va_list ap;
	FILE *f;

	va_start(ap, lines_fmt);
	vsnprintf(body, sizeof(body), lines_fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/svc/%s", fx_dir, name);
	f = fopen(path, "w");
	if (!f)
		exit(1);
	fputs(body, f);
	fclose(f);
}

#define MG_ARGS "store=%s/store policy=%s/policy.conf socket=%s/agent.sock"

static void write_services(void)
{
	const char *d = fx_dir;

	module = getenv("MG_PAM_MODULE");
	if (!module)
		exit(1);
	fx_write("passdb", "alice:pw:mg\nbob:pw:mg\nalice:pw:mgreq\nbob:pw:mgnullok\n"
			   "carol:pw:mgnullok\n");
	fx_policy("policy.conf", 1, 3, "60s", false);
	fx_write("bad-policy.conf", "[mfa]\nwindow = eleven\n");
	service("other", "auth required " FX_SECURITY "/pam_deny.so\n"
			 "account required " FX_SECURITY "/pam_deny.so\n");
	service("mg",
		"auth requisite " FX_MATRIX " passdb=%s/passdb\nauth required %s " MG_ARGS "\n", d,
		module, d, d, d);
	service("mgreq",
		"auth required " FX_MATRIX " passdb=%s/passdb\nauth required %s " MG_ARGS "\n", d,
		module, d, d, d);
	service("mgonly", "auth required %s " MG_ARGS "\n", module, d, d, d);
	service("mgnullok",
		"auth requisite " FX_MATRIX " passdb=%s/passdb\nauth required %s " MG_ARGS
		" nullok\nauth required " FX_SECURITY "/pam_permit.so\n",
		d, module, d, d, d);
	service("mgbadopt", "auth required %s " MG_ARGS " frobnicate\n", module, d, d, d);
	service("mgnopolicy",
		"auth required %s store=%s/store policy=%s/missing.conf socket=%s/agent.sock\n",
		module, d, d, d);
	service("mgbadpolicy",
		"auth required %s store=%s/store policy=%s/bad-policy.conf socket=%s/agent.sock\n",
		module, d, d, d);
	service("mgsymstore",
		"auth required %s store=%s/store-link policy=%s/policy.conf socket=%s/agent.sock\n",
		module, d, d, d);
	service("mgnoagent",
		"auth required %s store=%s/store policy=%s/policy.conf socket=%s/nobody.sock\n",
		module, d, d, d);
	service("mgfull",
		"auth required %s store=%s/store policy=%s/policy.conf socket=%s/full.sock\n",
		module, d, d, d);
	service("mgns",
		"auth required %s store=%s/ns/store policy=%s/policy.conf socket=%s/agent.sock\n",
		module, d, d, d);
}

static int setup_fixture(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char p[512];

	(void)state;
	module = getenv("MG_PAM_MODULE");
	assert_non_null(module);
	fx_path(p, sizeof(p), "agent.sock");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	agent_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(agent_fd >= 0);
	assert_int_equal(bind(agent_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return 0;
}

static int teardown_fixture(void **state)
{
	(void)state;
	close(agent_fd);
	fx_cleanup();
	return 0;
}

/* A fresh store with alice enrolled, at T0, before every test. */
static int setup_store(void **state)
{
	char p[512];

	(void)state;
	fx_path(p, sizeof(p), "store-link");
	fx_rm_rf(p);
	fx_path(p, sizeof(p), "store");
	fx_rm_rf(p);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(chmod(p, 0700), 0);
	fx_record("store", "alice", 0, 0, 0, 0600);
	fx_policy("policy.conf", 1, 3, "60s", false);
	fx_set_time(FX_T0);
	return 0;
}

static void test_password_and_code(void **state)
{
	struct res r;
	char code[8];
	int64_t t = FX_T0;

	(void)state;
	/* wrong password, right code: requisite stops before the code, which stays unused */
	fx_code(t, code);
	auth("mg", "alice", "nope", code, &r);
	assert_int_equal(r.rv, PAM_AUTH_ERR);
	assert_int_equal(r.nevents, 0);
	/* right password, right code */
	auth("mg", "alice", "pw", code, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
	assert_no_code(&r, code);
	/* right password, wrong code */
	t += 30;
	fx_set_time(t);
	auth("mg", "alice", "pw", "000000", &r);
	expect(&r, PAM_AUTH_ERR, 1, "wrong code", "auth.failure", "wrong_code");
	/* wrong password, wrong code */
	auth("mg", "alice", "nope", "000000", &r);
	assert_int_equal(r.rv, PAM_AUTH_ERR);
	/* with "required" the code is still asked for and checked: the result still fails */
	fx_code(t, code);
	auth("mgreq", "alice", "nope", code, &r);
	assert_int_equal(r.rv, PAM_AUTH_ERR);
	/* blanks inside the code are ignored ("123 456") */
	t += 30;
	fx_set_time(t);
	fx_code(t, code);
	{
		char spaced[16];
		snprintf(spaced, sizeof(spaced), "%.3s %s", code, code + 3);
		auth("mg", "alice", "pw", spaced, &r);
	}
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
}

static void test_window_edges(void **state)
{
	struct res r;
	char code[8];

	(void)state;
	/* window = 1: two steps away is refused on both sides */
	fx_code(FX_T0 - 60, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "wrong code", "auth.failure", "wrong_code");
	fx_code(FX_T0 + 60, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "wrong code", "auth.failure", "wrong_code");
	/* last second of the previous step and first second of the next one are inside */
	fx_code(FX_T0 - 11, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
	fx_code(FX_T0, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
	fx_code(FX_T0 + 20, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
	/* window = 0 from the policy: only the current step */
	fx_policy("policy.conf", 0, 3, "60s", false);
	fx_set_time(FX_T0 + 60);
	fx_code(FX_T0 + 90, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "wrong code", "auth.failure", "wrong_code");
	fx_code(FX_T0 + 60, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
}

static void test_replay(void **state)
{
	struct res r;
	char code[8];

	(void)state;
	fx_code(FX_T0, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "already used", "auth.replay", "replay");
	assert_no_code(&r, code);
	/* still the same code a step later (inside the window): still refused */
	fx_set_time(FX_T0 + 30);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "already used", "auth.replay", "replay");
	/* replays do not count toward the lockout (3 failures) */
	auth("mgonly", "alice", code, NULL, &r);
	auth("mgonly", "alice", code, NULL, &r);
	fx_code(FX_T0 + 30, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
}

static void test_older_code_after_newer(void **state)
{
	struct res r;
	char newer[8], older[8], oldest[8];

	(void)state;
	fx_code(FX_T0 + 30, newer);
	fx_code(FX_T0, older);
	fx_code(FX_T0 - 30, oldest);
	auth("mgonly", "alice", newer, NULL, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
	/* never used, inside the window, but older than the accepted one */
	auth("mgonly", "alice", older, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "already used", "auth.replay", "replay");
	auth("mgonly", "alice", oldest, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "already used", "auth.replay", "replay");
}

static void test_clock_moved_back(void **state)
{
	struct res r;
	char code[8];

	(void)state;
	fx_code(FX_T0, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
	/* someone sets the clock back an hour: the code of that time was never used, and is still
	 * refused, and so is the one just used */
	fx_set_time(FX_T0 - 3600);
	fx_code(FX_T0 - 3600, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "already used", "auth.replay", "replay");
	fx_set_time(FX_T0 - 30);
	fx_code(FX_T0 - 30, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "already used", "auth.replay", "replay");
	/* back to normal time: the next step works */
	fx_set_time(FX_T0 + 30);
	fx_code(FX_T0 + 30, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
}

static void test_lockout_and_expiry(void **state)
{
	struct res r;
	char code[8];

	(void)state;
	/* max_failures = 3, lockout 60 s */
	for (int i = 0; i < 3; i++) {
		auth("mgonly", "alice", "111111", NULL, &r);
		expect(&r, PAM_AUTH_ERR, 1, "wrong code", "auth.failure", "wrong_code");
	}
	fx_code(FX_T0, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "locked", "auth.locked", "locked");
	assert_non_null(strstr(r.log, "not checked"));
	/* still locked 59 s later, even with the right code */
	fx_set_time(FX_T0 + 59);
	fx_code(FX_T0 + 59, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "locked", "auth.locked", "locked");
	/* the lock expires */
	fx_set_time(FX_T0 + 60);
	fx_code(FX_T0 + 60, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
	/* a success resets the count: two more failures do not lock */
	auth("mgonly", "alice", "222222", NULL, &r);
	auth("mgonly", "alice", "222222", NULL, &r);
	fx_set_time(FX_T0 + 90);
	fx_code(FX_T0 + 90, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
}

static void test_lockout_state_in_record(void **state)
{
	struct res r;
	char code[8];

	(void)state;
	/* state survives "restarts": a record that says locked is honoured by a new process */
	fx_record("store", "alice", 0, 3, FX_T0 + 100, 0600);
	fx_code(FX_T0, code);
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "locked", "auth.locked", "locked");
	fx_record("store", "alice", 0, 2, 0, 0600);
	auth("mgonly", "alice", "333333", NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "wrong code", "auth.failure", "wrong_code");
	auth("mgonly", "alice", code, NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "locked", "auth.locked", "locked");
}

/* ---- fail closed ---- */

static void fail_closed(const char *svc, const char *user, int rv, const char *log_has,
			const char *reason)
{
	struct res r;
	char code[8];

	fx_code(FX_T0, code);
	auth(svc, user, code, NULL, &r);
	expect(&r, rv, 1, log_has, "auth.failure", reason);
	assert_no_code(&r, code);
	assert_null(strstr(r.log, FX_SECRET_B32));
}

static void test_no_record(void **state)
{
	(void)state;
	fail_closed("mgonly", "bob", PAM_AUTH_ERR, "not enrolled", "no_record");
}

static void test_corrupt_record(void **state)
{
	char p[512];
	FILE *f;

	(void)state;
	fx_path(p, sizeof(p), "store/alice");
	f = fopen(p, "w");
	fputs("mynaguard-totp 1\nsecret " FX_SECRET_B32 "\ndigits 6\nperiod 30\n", f);
	fclose(f);
	chmod(p, 0600);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "is corrupt", "record_error");
	/* too large */
	f = fopen(p, "w");
	for (int i = 0; i < 200; i++)
		fputs("0123456789", f);
	fclose(f);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "too large", "record_error");
}

static void test_record_mode(void **state)
{
	(void)state;
	fx_record("store", "alice", 0, 0, 0, 0640);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "mode", "record_error");
	fx_record("store", "alice", 0, 0, 0, 0604);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "mode", "record_error");
}

static void test_record_unreadable(void **state)
{
	char p[512];

	(void)state;
	fx_path(p, sizeof(p), "store/alice");
	unlink(p);
	/* root reads any mode, so "unreadable" is an entry that is not a file: a directory, a FIFO */
	assert_int_equal(mkdir(p, 0700), 0);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "not a regular file", "record_error");
	rmdir(p);
	assert_int_equal(mkfifo(p, 0600), 0);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "not a regular file", "record_error");
	unlink(p);
	if (geteuid() != 0) {
		fx_record("store", "alice", 0, 0, 0, 0000);
		fail_closed("mgonly", "alice", PAM_AUTH_ERR, "not accessible", "record_error");
	}
}

static void test_record_symlink(void **state)
{
	char p[512], target[512];

	(void)state;
	fx_record("store", "alice", 0, 0, 0, 0600);
	fx_path(p, sizeof(p), "store/alice");
	fx_path(target, sizeof(target), "store/alice.real");
	assert_int_equal(rename(p, target), 0);
	assert_int_equal(symlink(target, p), 0);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "symlink", "record_error");
}

static void test_wrong_owner(void **state)
{
	char p[512];

	(void)state;
	if (geteuid() != 0) {
		skip(); /* chown needs root; CI runs as root */
		return;
	}
	fx_path(p, sizeof(p), "store/alice");
	assert_int_equal(chown(p, 12345, 12345), 0);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "wrong owner", "record_error");
	fx_record("store", "alice", 0, 0, 0, 0600);
	fx_path(p, sizeof(p), "store");
	assert_int_equal(chown(p, 12345, 12345), 0);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "wrong owner", "store_error");
	assert_int_equal(chown(p, 0, 0), 0);
}

static void test_store_writable_by_others(void **state)
{
	char p[512];

	(void)state;
	fx_path(p, sizeof(p), "store");
	chmod(p, 0777);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "writable by group or other", "store_error");
	chmod(p, 0770);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "writable by group or other", "store_error");
	chmod(p, 0700);
}

static void test_store_symlink(void **state)
{
	char p[512], target[512];

	(void)state;
	fx_path(p, sizeof(p), "store-link");
	fx_path(target, sizeof(target), "store");
	assert_int_equal(symlink(target, p), 0);
	fail_closed("mgsymstore", "alice", PAM_AUTH_ERR, "symlink", "store_error");
}

static void test_unknown_option(void **state)
{
	struct res r;

	(void)state;
	auth("mgbadopt", "alice", "123456", NULL, &r);
	assert_int_equal(r.rv, PAM_SERVICE_ERR);
	assert_int_equal(r.nsyslog, 1);
	assert_non_null(strstr(r.log, "frobnicate"));
}

static void test_policy_missing_or_bad(void **state)
{
	(void)state;
	fail_closed("mgnopolicy", "alice", PAM_SERVICE_ERR, "missing.conf", "policy_error");
	fail_closed("mgbadpolicy", "alice", PAM_SERVICE_ERR, "bad-policy.conf", "policy_error");
}

static void test_nullok(void **state)
{
	struct res r;

	(void)state;
	/* bob has no record: nullok lets the password alone through (PAM_IGNORE, no prompt) */
	auth("mgnullok", "bob", "pw", NULL, &r);
	expect(&r, PAM_SUCCESS, 1, "nullok", "auth.success", "nullok");
	/* without nullok he is refused */
	auth("mgonly", "bob", "123456", NULL, &r);
	expect(&r, PAM_AUTH_ERR, 1, "not enrolled", "auth.failure", "no_record");
	/* nullok does not help an enrolled user with a wrong code */
	fx_record("store", "carol", 0, 0, 0, 0600);
	auth("mgnullok", "carol", "pw", "000000", &r);
	expect(&r, PAM_AUTH_ERR, 1, "wrong code", "auth.failure", "wrong_code");
	/* nullok from the policy works the same */
	fx_policy("policy.conf", 1, 3, "60s", true);
	auth("mgonly", "bob", NULL, NULL, &r);
	assert_int_equal(r.nevents, 1);
	assert_non_null(strstr(r.event, "\"reason\":\"nullok\""));
}

static int count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, c;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void test_events_without_agent(void **state)
{
	struct res r;
	char code[8], p[512], line[4096];
	struct timespec a, b;
	FILE *f;

	(void)state;
	/* no socket: the event goes to STORE/.pending-events, the login is not held up */
	fx_code(FX_T0, code);
	clock_gettime(CLOCK_MONOTONIC, &a);
	auth("mgnoagent", "alice", code, NULL, &r);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(r.rv, PAM_SUCCESS);
	assert_true((b.tv_sec - a.tv_sec) < 2);
	fx_path(p, sizeof(p), "store/.pending-events");
	assert_int_equal(count_lines(p), 1);
	auth("mgnoagent", "alice", code, NULL, &r);
	assert_int_equal(r.rv, PAM_AUTH_ERR);
	assert_int_equal(count_lines(p), 2);
	f = fopen(p, "r");
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "{\"v\":1,\"kind\":\"auth.success\",\"ts_ms\":"));
	assert_non_null(strstr(line, "\"data\":{\"user\":\"alice\",\"service\":\"mgnoagent\""));
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "\"kind\":\"auth.replay\""));
	fclose(f);
	{
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		assert_int_equal(st.st_uid, geteuid());
	}
}

static void test_events_agent_not_reading(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct res r;
	char p[512], big[2048] = {0};
	int fd, n = 0;

	(void)state;
	/* an agent that stopped reading: the send would block; it must not, and falls back */
	fx_path(p, sizeof(p), "full.sock");
	unlink(p);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	{
		int tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		while (sendto(tx, big, sizeof(big), 0, (struct sockaddr *)&sa, sizeof(sa)) > 0 &&
		       n < 100000)
			n++;
		assert_int_equal(errno, EAGAIN);
		close(tx);
	}
	auth("mgfull", "alice", "000000", NULL, &r);
	assert_int_equal(r.rv, PAM_AUTH_ERR);
	fx_path(p, sizeof(p), "store/.pending-events");
	assert_int_equal(count_lines(p), 1);
	close(fd);
}

static void test_event_escaping(void **state)
{
	struct res r;

	(void)state;
	/* a user name that cannot have a record is refused, never logged raw, escaped in the event */
	auth("mgonly", "ev\"il\\\x01\xff", "123456", NULL, &r);
	assert_int_equal(r.rv, PAM_AUTH_ERR);
	assert_int_equal(r.nsyslog, 1);
	assert_non_null(strstr(r.log, "(invalid name)"));
	assert_int_equal(r.nevents, 1);
	assert_non_null(strstr(r.event, "\"user\":\"ev\\\"il\\\\\\u0001\\ufffd\""));
	assert_non_null(strstr(r.event, "\"reason\":\"bad_user\""));
}

/* ---- the time that counts is when the code arrives ---- */

/* A conversation that answers like a person at a terminal: the password (if asked first), then
 * the code, after moving the faked clock on by delay seconds while the prompt is open. It keeps
 * a transcript of every message (style and text) the module showed. */
struct script {
	const char *password; /* answer to the first echo-off prompt; NULL: no password prompt */
	const char *code;     /* fixed answer; NULL: the code of the second the prompt opened */
	int64_t delay;	      /* seconds the prompt stays open */
	int prompts;
	char transcript[1024];
};

static int script_conv(int n, const struct pam_message **msg, struct pam_response **resp,
		       void *data)
{
	struct script *s = data;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		size_t used = strlen(s->transcript);
		snprintf(s->transcript + used, sizeof(s->transcript) - used, "%d:%s\n",
			 msg[i]->msg_style, msg[i]->msg);
		if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF &&
		    msg[i]->msg_style != PAM_PROMPT_ECHO_ON)
			continue;
		if (s->password && s->prompts++ == 0) {
			r[i].resp = strdup(s->password);
			continue;
		}
		if (!s->password)
			s->prompts++;
		{
			int64_t opened = (int64_t)time(NULL);
			char code[8];
			if (s->code)
				snprintf(code, sizeof(code), "%s", s->code);
			else
				fx_code(opened, code);
			fx_set_time(opened + s->delay);
			r[i].resp = strdup(code);
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

/* One pam_authenticate through script_conv, with the log and events as auth() collects them. */
static void run_script(const char *svc, const char *user, struct script *s, struct res *r)
{
	struct pam_conv conv = {script_conv, s};
	pam_handle_t *ph = NULL;
	struct capture c;

	s->prompts = 0;
	s->transcript[0] = '\0';
	capture_begin(r, &c);
	assert_int_equal(pam_start(svc, user, &conv, &ph), PAM_SUCCESS);
	r->rv = pam_authenticate(ph, 0);
	pam_end(ph, r->rv);
	capture_end(r, &c, svc, user);
	if (getenv("MG_TEST_VERBOSE"))
		fprintf(stderr, "%s", s->transcript);
}

static void test_slow_prompt_expired_code(void **state)
{
	struct script s = {.delay = 1000};
	struct res r;

	(void)state;
	/* the prompt opens at T0 and is answered with T0's code 1000 s later: long expired */
	run_script("mgonly", "alice", &s, &r);
	assert_int_equal(s.prompts, 1);
	assert_int_equal((int64_t)time(NULL), FX_T0 + 1000);
	expect(&r, PAM_AUTH_ERR, 1, "wrong code", "auth.failure", "wrong_code");
	/* the same conversation answered at once works (the code of the second it is typed) */
	s.delay = 0;
	run_script("mgonly", "alice", &s, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
}

static void test_slow_prompt_lockout(void **state)
{
	struct script s = {.code = "000000", .delay = 1000};
	struct res r;

	(void)state;
	/* the shipped policy: 5 wrong codes lock for 15 minutes */
	fx_policy("policy.conf", 1, 5, "15m", false);
	for (int i = 0; i < 10; i++) {
		run_script("mgonly", "alice", &s, &r);
		assert_int_equal(r.rv, PAM_AUTH_ERR);
		assert_int_equal(r.nevents, 1);
		assert_non_null(strstr(r.event, "\"reason\":\"wrong_code\""));
	}
	/* the 10th wrong code arrived at T0 + 10000 s and locked until 15 minutes later; a
	 * lock counted from when its prompt opened (T0 + 9000 s) would have run out already */
	assert_int_equal((int64_t)time(NULL), FX_T0 + 10000);
	s.code = NULL;
	s.delay = 0;
	run_script("mgonly", "alice", &s, &r);
	expect(&r, PAM_AUTH_ERR, 1, "locked", "auth.locked", "locked");
	/* the lock holds for the whole 15 minutes after the last wrong code, then lifts */
	fx_set_time(FX_T0 + 10000 + 899);
	run_script("mgonly", "alice", &s, &r);
	expect(&r, PAM_AUTH_ERR, 1, "locked", "auth.locked", "locked");
	fx_set_time(FX_T0 + 10000 + 900);
	run_script("mgonly", "alice", &s, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
}

/* ---- whoever knows the password learns nothing about enrollment from the conversation ---- */

static void test_same_prompt_without_record(void **state)
{
	struct script enrolled = {.password = "pw", .code = "000000"};
	struct script missing = {.password = "pw", .code = "000000"};
	struct res r;

	(void)state;
	/* alice is enrolled, bob is not; the same password, a wrong code */
	run_script("mg", "alice", &enrolled, &r);
	expect(&r, PAM_AUTH_ERR, 1, "wrong code", "auth.failure", "wrong_code");
	run_script("mg", "bob", &missing, &r);
	expect(&r, PAM_AUTH_ERR, 1, "not enrolled", "auth.failure", "no_record");
	assert_int_equal(enrolled.prompts, 2);
	assert_string_equal(missing.transcript, enrolled.transcript);
	assert_non_null(strstr(missing.transcript, "1:One-time code: \n"));
	/* a right code of someone else's secret does not help bob either */
	missing.code = NULL;
	run_script("mg", "bob", &missing, &r);
	expect(&r, PAM_AUTH_ERR, 1, "not enrolled", "auth.failure", "no_record");
	assert_string_equal(missing.transcript, enrolled.transcript);
	/* in Japanese too */
	setenv("LANG", "ja_JP.UTF-8", 1);
	run_script("mg", "alice", &enrolled, &r);
	run_script("mg", "bob", &missing, &r);
	unsetenv("LANG");
	assert_string_equal(missing.transcript, enrolled.transcript);
	assert_non_null(strstr(missing.transcript, "ワンタイムパスワード"));
	/* a name that can never have a record is asked the same way, and refused */
	missing.code = "000000";
	run_script("mgonly", "alice", &enrolled, &r);
	run_script("mgonly", "no/such\x01user", &missing, &r);
	assert_int_equal(r.rv, PAM_AUTH_ERR);
	assert_non_null(strstr(r.event, "\"reason\":\"bad_user\""));
	assert_string_equal(missing.transcript, enrolled.transcript);
	/* nullok keeps its behaviour: no prompt at all for a user without a record */
	missing.password = "pw";
	run_script("mgnullok", "bob", &missing, &r);
	expect(&r, PAM_SUCCESS, 1, "nullok", "auth.success", "nullok");
	assert_int_equal(missing.prompts, 1);
	assert_null(strstr(missing.transcript, "One-time code"));
}

/* ---- the record's lifecycle: pending, version 1, a newer version, the lockout message ---- */

static void test_pending_enrollment(void **state)
{
	struct script pending = {.code = NULL}, none = {.code = NULL};
	char before[2048], after[2048];
	struct res r;

	(void)state;
	/* alice enrolled but not verified: refused like an unenrolled user, the same prompt, and
	 * the record is not touched (its code is not even checked) */
	fx_record_v2("store", "alice", NULL, 0);
	fx_read("store/alice", before, sizeof(before));
	run_script("mgonly", "alice", &pending, &r);
	expect(&r, PAM_AUTH_ERR, 1, "enrollment pending", "auth.failure", "pending");
	fx_read("store/alice", after, sizeof(after));
	assert_string_equal(before, after);
	run_script("mgonly", "bob", &none, &r);
	expect(&r, PAM_AUTH_ERR, 1, "not enrolled", "auth.failure", "no_record");
	assert_string_equal(pending.transcript, none.transcript);
	/* with nullok a pending user is let through without a code, like an unenrolled one */
	fx_record_v2("store", "bob", NULL, 0);
	pending.password = "pw";
	run_script("mgnullok", "bob", &pending, &r);
	expect(&r, PAM_SUCCESS, 1, "enrollment pending", "auth.success", "nullok");
	assert_int_equal(pending.prompts, 1);
	assert_null(strstr(pending.transcript, "One-time code"));
	/* verified: the code works, and the time of the use is kept in the state slot */
	fx_record_v2("store", "alice", NULL, 1700000100);
	fx_read("store/alice", before, sizeof(before));
	pending.password = NULL;
	run_script("mgonly", "alice", &pending, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
	fx_read("store/alice", after, sizeof(after));
	assert_non_null(strstr(after, "verified 1700000100\n"));
	assert_non_null(strstr(after, " 00000000001768471210 "));
	assert_int_equal(strlen(after), strlen(before));
}

static void test_version1_record_still_works(void **state)
{
	struct script s = {.code = NULL};
	char before[2048], after[2048];
	struct res r;

	(void)state;
	/* setup_store wrote a version 1 record: it counts as verified, and the state update keeps
	 * its layout (same size, still version 1) */
	fx_read("store/alice", before, sizeof(before));
	assert_memory_equal(before, "mynaguard-totp 1\n", 17);
	run_script("mgonly", "alice", &s, &r);
	expect(&r, PAM_SUCCESS, 0, NULL, "auth.success", "ok");
	fx_read("store/alice", after, sizeof(after));
	assert_memory_equal(after, "mynaguard-totp 1\n", 17);
	assert_int_equal(strlen(after), strlen(before));
	assert_string_not_equal(after, before);
}

static void test_newer_version_fails_closed(void **state)
{
	struct script s = {.code = NULL, .password = "pw"};
	struct res r;

	(void)state;
	/* a record written by a newer mynaguard: refused with a clear line, never let through */
	fx_record_v2("store", "alice", "mynaguard-totp 3", 1700000100);
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "written by a newer mynaguard",
		    "record_error");
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "upgrade", "record_error");
	/* not even with nullok: the record exists */
	fx_record_v2("store", "bob", "mynaguard-totp 3", 1700000100);
	run_script("mgnullok", "bob", &s, &r);
	expect(&r, PAM_AUTH_ERR, 1, "written by a newer mynaguard", "auth.failure", "record_error");
	/* and the same for a newer record larger than any record of this version */
	{
		char big[2100], path[512];
		FILE *f;
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		fx_path(path, sizeof(path), "store/alice");
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "mynaguard-totp 17\n%s\n", big);
		fclose(f);
	}
	fail_closed("mgonly", "alice", PAM_AUTH_ERR, "written by a newer mynaguard",
		    "record_error");
}

static void lock_alice(void)
{
	struct res r;

	/* policy: max_failures 3 */
	for (int i = 0; i < 3; i++) {
		auth("mgonly", "alice", "111111", NULL, &r);
		expect(&r, PAM_AUTH_ERR, 1, "wrong code", "auth.failure", "wrong_code");
	}
}

static void test_lockout_message(void **state)
{
	struct script s = {.code = NULL};
	struct res r;

	(void)state;
	/* 15 minutes, and a contact in the policy */
	fx_write("policy.conf", "[terminal]\nid = test-terminal\ncontact = 情報政策課 内線 1234\n"
				"[mfa]\nwindow = 1\nmax_failures = 3\nlockout = 15m\n");
	lock_alice();
	fx_set_time(FX_T0 + 60);
	run_script("mgonly", "alice", &s, &r);
	expect(&r, PAM_AUTH_ERR, 1, "locked", "auth.locked", "locked");
	assert_non_null(strstr(s.transcript,
			       "3:Too many wrong codes. Locked for 14 more minute(s). "
			       "To unlock sooner, ask 情報政策課 内線 1234.\n"));
	setenv("LANG", "ja_JP.UTF-8", 1);
	fx_set_time(FX_T0 + 60 * 14 + 30);
	run_script("mgonly", "alice", &s, &r);
	unsetenv("LANG");
	expect(&r, PAM_AUTH_ERR, 1, "locked", "auth.locked", "locked");
	assert_non_null(strstr(s.transcript,
			       "3:ワンタイムパスワードの誤りが多すぎます。あと1分間ロック"
			       "されています。すぐに解除が必要な場合は情報政策課 内線 "
			       "1234にお問い合わせください。\n"));
	/* without a contact: the administrator */
	fx_record("store", "alice", 0, 0, 0, 0600);
	fx_set_time(FX_T0);
	fx_write("policy.conf", "[terminal]\nid = test-terminal\n"
				"[mfa]\nwindow = 1\nmax_failures = 3\nlockout = 2h\n");
	lock_alice();
	run_script("mgonly", "alice", &s, &r);
	expect(&r, PAM_AUTH_ERR, 1, "locked", "auth.locked", "locked");
	assert_non_null(strstr(s.transcript,
			       "3:Too many wrong codes. Locked for 120 more "
			       "minute(s). To unlock sooner, ask your administrator.\n"));
	setenv("LANG", "ja_JP.UTF-8", 1);
	run_script("mgonly", "alice", &s, &r);
	unsetenv("LANG");
	assert_non_null(strstr(s.transcript,
			       "あと120分間ロックされています。すぐに解除が必要な場合は"
			       "管理者にお問い合わせください。\n"));
}

/* ---- disk full and read-only: a small tmpfs in a private mount namespace (root only) ---- */

enum ns_mode {
	NS_FULL,	/* no free block: the in-place state update needs none, logins work */
	NS_FULL_NOLOCK, /* no free inode and no lock file yet: fail closed */
	NS_READ_ONLY,	/* fail closed */
};

static int ns_case(enum ns_mode mode)
{
	char ns[512], store[512], path[1200], code[8];
	struct res r;
	pid_t pid;
	int st;

	fx_path(ns, sizeof(ns), "ns");
	mkdir(ns, 0700);
	pid = fork();
	if (pid == 0) {
		int fd;
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", ns, "tmpfs", 0,
			  mode == NS_FULL_NOLOCK ? "size=16k,mode=0700,nr_inodes=4"
						 : "size=16k,mode=0700") < 0)
			_exit(77); /* root without CAP_SYS_ADMIN (some containers) */
		snprintf(store, sizeof(store), "%s/store", ns);
		mkdir(store, 0700);
		fx_record("ns/store", "alice", 0, 0, 0, 0600);
		if (mode != NS_FULL_NOLOCK) {
			snprintf(path, sizeof(path), "%s/store/.alice.lock", ns);
			close(open(path, O_CREAT | O_WRONLY, 0600));
		}
		if (mode == NS_READ_ONLY) {
			if (mount(NULL, ns, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
				_exit(11);
		} else {
			static char block[4096];
			snprintf(path, sizeof(path), "%s/filler", ns);
			fd = open(path, O_CREAT | O_WRONLY, 0600);
			while (write(fd, block, sizeof(block)) > 0)
				;
			while (write(fd, block, 1) > 0)
				;
			close(fd);
			/* really full: not one more byte, not one more file */
			fd = open(path, O_WRONLY | O_APPEND);
			if (write(fd, block, 1) > 0)
				_exit(13);
			close(fd);
		}
		fx_code(FX_T0, code);
		auth("mgns", "alice", code, NULL, &r);
		if (mode == NS_FULL) {
			/* accepted and recorded: the same code is refused next time */
			if (r.rv != PAM_SUCCESS || r.nsyslog != 0 || r.nevents != 1) {
				fprintf(stderr, "full: rv=%d syslog=%d\n%s\n", r.rv, r.nsyslog,
					r.log);
				_exit(14);
			}
			auth("mgns", "alice", code, NULL, &r);
			if (r.rv != PAM_AUTH_ERR || !strstr(r.log, "already used")) {
				fprintf(stderr, "full, replay: rv=%d\n%s\n", r.rv, r.log);
				_exit(15);
			}
			_exit(0);
		}
		if (r.rv != PAM_AUTH_ERR || r.nsyslog != 1 || r.nevents != 1 ||
		    !strstr(r.log,
			    mode == NS_READ_ONLY ? "read-only file system" : "no space left") ||
		    strstr(r.log, code)) {
			fprintf(stderr, "ns case %d: rv=%d syslog=%d events=%d\n%s\n", mode, r.rv,
				r.nsyslog, r.nevents, r.log);
			_exit(12);
		}
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

static void test_disk_full(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip(); /* mounting a tmpfs needs root; CI runs as root */
		return;
	}
	{
		int r = ns_case(NS_FULL);
		if (r == 77) {
			skip(); /* no mount namespace allowed here */
			return;
		}
		assert_int_equal(r, 0);
	}
	assert_int_equal(ns_case(NS_FULL_NOLOCK), 0);
}

static void test_read_only(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	{
		int r = ns_case(NS_READ_ONLY);
		if (r == 77) {
			skip();
			return;
		}
		assert_int_equal(r, 0);
	}
}

/* ---- the prompt's language ---- */

static char last_prompt[256];

static int capture_conv(int n, const struct pam_message **msg, struct pam_response **resp,
			void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	(void)data;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
			snprintf(last_prompt, sizeof(last_prompt), "%s", msg[i]->msg);
			r[i].resp = strdup("000000");
		}
	*resp = r;
	return PAM_SUCCESS;
}

static void prompt_with(const char *pam_env)
{
	struct pam_conv conv = {capture_conv, NULL};
	pam_handle_t *ph = NULL;
	int saved = dup(2), devnull = open("/dev/null", O_WRONLY);

	last_prompt[0] = '\0';
	assert_int_equal(pam_start("mgonly", "alice", &conv, &ph), PAM_SUCCESS);
	if (pam_env)
		assert_int_equal(pam_putenv(ph, pam_env), PAM_SUCCESS);
	dup2(devnull, 2);
	(void)pam_authenticate(ph, 0);
	dup2(saved, 2);
	close(saved);
	close(devnull);
	pam_end(ph, PAM_SUCCESS);
	{
		struct res r;
		drain_agent(&r);
	}
}

static void test_language(void **state)
{
	(void)state;
	fx_record("store", "alice", 0, 0, 0, 0600);
	prompt_with(NULL);
	assert_string_equal(last_prompt, "One-time code: ");
	setenv("LANG", "ja_JP.UTF-8", 1);
	prompt_with(NULL);
	assert_string_equal(last_prompt, "ワンタイムパスワード: ");
	/* LC_ALL wins over LANG */
	setenv("LC_ALL", "C.UTF-8", 1);
	prompt_with(NULL);
	assert_string_equal(last_prompt, "One-time code: ");
	unsetenv("LC_ALL");
	unsetenv("LANG");
	/* the user's PAM environment wins over the process's */
	setenv("LANG", "en_US.UTF-8", 1);
	prompt_with("LC_MESSAGES=ja_JP.eucJP");
	assert_string_equal(last_prompt, "ワンタイムパスワード: ");
	unsetenv("LANG");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_password_and_code, setup_store),
	    cmocka_unit_test_setup(test_window_edges, setup_store),
	    cmocka_unit_test_setup(test_replay, setup_store),
	    cmocka_unit_test_setup(test_older_code_after_newer, setup_store),
	    cmocka_unit_test_setup(test_clock_moved_back, setup_store),
	    cmocka_unit_test_setup(test_lockout_and_expiry, setup_store),
	    cmocka_unit_test_setup(test_lockout_state_in_record, setup_store),
	    cmocka_unit_test_setup(test_no_record, setup_store),
	    cmocka_unit_test_setup(test_corrupt_record, setup_store),
	    cmocka_unit_test_setup(test_record_mode, setup_store),
	    cmocka_unit_test_setup(test_record_unreadable, setup_store),
	    cmocka_unit_test_setup(test_record_symlink, setup_store),
	    cmocka_unit_test_setup(test_wrong_owner, setup_store),
	    cmocka_unit_test_setup(test_store_writable_by_others, setup_store),
	    cmocka_unit_test_setup(test_store_symlink, setup_store),
	    cmocka_unit_test_setup(test_unknown_option, setup_store),
	    cmocka_unit_test_setup(test_policy_missing_or_bad, setup_store),
	    cmocka_unit_test_setup(test_nullok, setup_store),
	    cmocka_unit_test_setup(test_events_without_agent, setup_store),
	    cmocka_unit_test_setup(test_events_agent_not_reading, setup_store),
	    cmocka_unit_test_setup(test_event_escaping, setup_store),
	    cmocka_unit_test_setup(test_disk_full, setup_store),
	    cmocka_unit_test_setup(test_read_only, setup_store),
	    cmocka_unit_test_setup(test_language, setup_store),
	    cmocka_unit_test_setup(test_slow_prompt_expired_code, setup_store),
	    cmocka_unit_test_setup(test_slow_prompt_lockout, setup_store),
	    cmocka_unit_test_setup(test_same_prompt_without_record, setup_store),
	    cmocka_unit_test_setup(test_pending_enrollment, setup_store),
	    cmocka_unit_test_setup(test_version1_record_still_works, setup_store),
	    cmocka_unit_test_setup(test_newer_version_fails_closed, setup_store),
	    cmocka_unit_test_setup(test_lockout_message, setup_store),
	};

	fx_reexec(argc, argv, true, true, write_services);
	return cmocka_run_group_tests(tests, setup_fixture, teardown_fixture);
}
