/* SPDX-License-Identifier: MIT */
/* The real mynaguardd under umockdev and its desktop notice socket: a client connected to it
 * gets one JSON notice per blocked device with the right request code; a client that never
 * reads does not hold the agent up; usb.blocked events carry data.request_code. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "bundle.h"
#include "notice.h"
#include "umock.h"

#define WAIT 15000
#define ROOT "/sys/devices/usb1"

#define CHECKS_OFF                                                                                 \
	"[checks]\nusb.default_deny = no\nusb.no_unapproved_storage = no\nmfa.pam_stack = no\n"    \
	"mfa.enrollment = no\ntime.synchronized = no\nagent.integrity = no\nnet.isolation = no\n"

static const char POL_CONTACT[] =
    "[terminal]\nid = t1\ncontact = 情報政策課 内線 1234\n" CHECKS_OFF;
static const char POL_PLAIN[] = "[terminal]\nid = t1\n" CHECKS_OFF;
static const char POL_AUDIT[] = "[terminal]\nid = t1\n[usb]\nmode = audit\n" CHECKS_OFF;
static const uint8_t STICK[1][3] = {{0x08, 0x06, 0x50}};

static int setup(void **state)
{
	struct umock *u = calloc(1, sizeof(*u));
	umock_setup(u);
	*state = u;
	return 0;
}

static int teardown(void **state)
{
	struct umock *u = *state;
	umock_teardown(u);
	free(u);
	return 0;
}

#define EXPECT_LOG(u, needle)                                                                      \
	do {                                                                                       \
		if (!umock_wait_err((u), (needle), WAIT)) {                                        \
			fprintf(stderr, "missing in the agent's log: %s\n--- log ---\n%s\n",       \
				(needle), (u)->err);                                               \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

static void stop_ok(struct umock *u)
{
	assert_int_equal(umock_stop(u), 0);
	assert_non_null(strstr(u->err, "kind=agent.stopped"));
}

static char *plug_stick(struct umock *u, const char *name, const char *serial)
{
	char *dev = umock_add_device(u, ROOT, name, "0781", "5581", serial, "1", STICK, 1, NULL);
	char ifname[64];
	snprintf(ifname, sizeof(ifname), "%s:1.0", name);
	char *ifc = umock_add_iface(u, dev, ifname, "08", "06", "50", NULL, "1");
	g_free(dev);
	return ifc;
}

/* umock_spawn_agent passes --socket TMP/event.sock: the notice socket goes beside it. */
static int connect_notice(struct umock *u)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(u->tmp) + sizeof "/notify.sock" <= sizeof sa.sun_path);
	memcpy(sa.sun_path, u->tmp, strlen(u->tmp));
	memcpy(sa.sun_path + strlen(u->tmp), "/notify.sock", sizeof "/notify.sock");
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

/* One message within WAIT ms, parsed strictly (what mynaguard-notify accepts). */
static void read_notice(int fd, struct notice *n)
{
	char buf[NOTICE_MAX + 1], reason[EVENT_REASON_MAX];
	struct pollfd p = {.fd = fd, .events = POLLIN};

	assert_int_equal(poll(&p, 1, WAIT), 1);
	ssize_t len = recv(fd, buf, sizeof buf, 0);
	assert_true(len > 0 && len <= NOTICE_MAX);
	if (notice_parse(buf, (size_t)len, n, reason) < 0) {
		fprintf(stderr, "notice %.*s: %s\n", (int)len, buf, reason);
		fail();
	}
}

static bool nothing_to_read(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) == 0;
}

static void test_notice_and_request_code(void **state)
{
	struct umock *u = *state;
	char code[9], code2[9], needle[128];
	struct notice n;
	struct stat st;

	umock_start_agent(u, POL_CONTACT);
	EXPECT_LOG(u, "notify.listening socket=");
	char path[300];
	snprintf(path, sizeof path, "%s/notify.sock", u->tmp);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0666);

	int fd = connect_notice(u);
	char *ifc = plug_stick(u, "1-1", "S1");
	read_notice(fd, &n);
	bundle_request_code("t1", 0x0781, 0x5581, "S1", code);
	assert_string_equal(n.request_code, code);
	assert_int_equal(n.vendor, 0x0781);
	assert_int_equal(n.product, 0x5581);
	assert_string_equal(n.name, "Test Device");
	assert_string_equal(n.contact, "情報政策課 内線 1234");
	assert_true(n.ts_ms > 1700000000000LL);
	/* the event says the same */
	snprintf(needle, sizeof needle, "\"request_code\":\"%s\"", code);
	EXPECT_LOG(u, needle);
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	g_free(ifc);

	/* another stick: another code; the same serial on another port: the same code */
	ifc = plug_stick(u, "1-2", "S2");
	read_notice(fd, &n);
	bundle_request_code("t1", 0x0781, 0x5581, "S2", code2);
	assert_string_equal(n.request_code, code2);
	assert_string_not_equal(code, code2);
	g_free(ifc);
	ifc = plug_stick(u, "1-3", "S1");
	read_notice(fd, &n);
	assert_string_equal(n.request_code, code);
	g_free(ifc);
	/* no serial: computed with "" */
	ifc = plug_stick(u, "1-4", NULL);
	read_notice(fd, &n);
	bundle_request_code("t1", 0x0781, 0x5581, "", code2);
	assert_string_equal(n.request_code, code2);
	g_free(ifc);

	/* a keyboard is not blocked: no notice */
	static const uint8_t KBD[1][3] = {{0x03, 0x01, 0x01}};
	char *kbd = umock_add_device(u, ROOT, "1-5", "046d", "c31c", NULL, "1", KBD, 1, NULL);
	char *kifc = umock_add_iface(u, kbd, "1-5:1.0", "03", "01", "01", NULL, "1");
	EXPECT_LOG(u, "usb.allowed port=1-5");
	assert_true(nothing_to_read(fd, 300));
	g_free(kifc);
	g_free(kbd);

	close(fd);
	stop_ok(u);
	EXPECT_LOG(u, "notify.closed sent=4 dropped_slow=0 refused=0");
	/* the monitor removed its socket */
	assert_int_equal(lstat(path, &st), -1);
}

/* A client that never reads is dropped once it has fallen behind; the agent goes on deciding
 * and a client that reads gets every notice. */
static void test_slow_client(void **state)
{
	struct umock *u = *state;
	struct notice n;
	char name[32];
	int i, got = 0;

	umock_start_agent(u, POL_PLAIN);
	int lazy = connect_notice(u);
	int reader = connect_notice(u);
	for (i = 0; i < 60 && umock_count_err(u, "notify.dropped") == 0; i++) {
		snprintf(name, sizeof name, "1-%d", i + 1);
		char *ifc = plug_stick(u, name, "LAZY");
		read_notice(reader, &n);
		got++;
		/* drains the agent's stderr, so the count below sees the newest lines */
		assert_true(umock_wait_err_n(u, "kind=usb.blocked", (size_t)got, WAIT));
		assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
		g_free(ifc);
	}
	EXPECT_LOG(u, "notify.dropped uid=");
	EXPECT_LOG(u, "reason=slow");
	assert_true(i < 60);
	/* the lazy one was closed: after its backlog it reads end of file */
	char buf[NOTICE_MAX + 1];
	ssize_t r;
	int backlog = 0;
	while ((r = recv(lazy, buf, sizeof buf, MSG_DONTWAIT)) > 0)
		backlog++;
	assert_int_equal(r, 0);
	assert_true(backlog > 0 && backlog < got);
	/* the reader still hears about the next one */
	char *ifc = plug_stick(u, "2-1", "AFTER");
	read_notice(reader, &n);
	g_free(ifc);
	close(lazy);
	close(reader);
	stop_ok(u);
}

/* Bounded: at most 4 connections per user; a client that talks is closed. */
static void test_client_limits(void **state)
{
	struct umock *u = *state;
	int fds[5];
	struct notice n;
	char buf[8];

	umock_start_agent(u, POL_PLAIN);
	for (int i = 0; i < 5; i++)
		fds[i] = connect_notice(u);
	/* the agent takes connections when it has something to say */
	char *ifc = plug_stick(u, "1-1", "S1");
	for (int i = 0; i < 4; i++)
		read_notice(fds[i], &n);
	struct pollfd p = {.fd = fds[4], .events = POLLIN};
	assert_int_equal(poll(&p, 1, WAIT), 1);
	assert_int_equal(recv(fds[4], buf, sizeof buf, 0), 0); /* refused: closed */
	EXPECT_LOG(u, "notify.refused uid=");
	EXPECT_LOG(u, "too many connections of this user (limit 4)");
	g_free(ifc);

	/* one that sends something is closed, without its bytes being looked at */
	assert_int_equal(send(fds[0], "hello", 5, 0), 5);
	assert_int_equal(poll(&(struct pollfd){.fd = fds[0], .events = POLLIN}, 1, WAIT), 1);
	ssize_t r = recv(fds[0], buf, sizeof buf, 0); /* closed with our bytes unread: a reset */
	assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
	/* which leaves room for a new one */
	close(fds[4]);
	fds[4] = connect_notice(u);
	ifc = plug_stick(u, "1-2", "S2");
	read_notice(fds[4], &n);
	for (int i = 1; i < 4; i++)
		read_notice(fds[i], &n);
	g_free(ifc);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	stop_ok(u);
}

/* Audit mode: the device works, so no notice says it is blocked; the event has its code. */
static void test_audit_no_notice(void **state)
{
	struct umock *u = *state;
	char code[9], needle[64];

	umock_start_agent(u, POL_AUDIT);
	int fd = connect_notice(u);
	char *ifc = plug_stick(u, "1-1", "S1");
	EXPECT_LOG(u, "kind=usb.blocked");
	bundle_request_code("t1", 0x0781, 0x5581, "S1", code);
	snprintf(needle, sizeof needle, "\"request_code\":\"%s\"", code);
	EXPECT_LOG(u, needle);
	assert_true(nothing_to_read(fd, 500));
	g_free(ifc);
	close(fd);
	stop_ok(u);
}

/* --notify-socket PATH; a path that cannot be bound costs the notices, not the agent. */
static void test_option_and_failure(void **state)
{
	struct umock *u = *state;
	char pol[300], spool[300], st[300], sock[300], ns[300];
	struct stat sb;

	char *policy = umock_write_file(u, "policy.conf", POL_PLAIN);
	snprintf(spool, sizeof spool, "%s/spool", u->tmp);
	snprintf(st, sizeof st, "%s/state", u->tmp);
	snprintf(sock, sizeof sock, "%s/event.sock", u->tmp);
	snprintf(ns, sizeof ns, "%s/elsewhere.sock", u->tmp);
	snprintf(pol, sizeof pol, "%s", policy);
	free(policy);
	mkdir(spool, 0700);
	mkdir(st, 0700);
	char *argv[] = {getenv("MYNAGUARDD"),
			"--policy",
			pol,
			"--spool",
			spool,
			"--state",
			st,
			"--socket",
			sock,
			"--notify-socket",
			ns,
			NULL};
	umock_spawn(u, argv);
	assert_true(umock_wait_out(u, "READY\n", 20000));
	assert_int_equal(lstat(ns, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	stop_ok(u);

	/* a regular file in the way: not ours to remove; the agent runs without notices */
	int f = open(ns, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(f >= 0);
	close(f);
	umock_spawn(u, argv);
	assert_true(umock_wait_out(u, "READY\n", 20000));
	EXPECT_LOG(u, "op=notify-init");
	EXPECT_LOG(u, "(no desktop notices)");
	char *ifc = plug_stick(u, "1-1", "S1");
	EXPECT_LOG(u, "kind=usb.blocked");
	EXPECT_LOG(u, "\"request_code\":\"");
	g_free(ifc);
	stop_ok(u);
	assert_int_equal(lstat(ns, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_notice_and_request_code, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit_no_notice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_option_and_failure, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
