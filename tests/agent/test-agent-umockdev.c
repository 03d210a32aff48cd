/* SPDX-License-Identifier: MIT */
/* The real mynaguardd under umockdev: plug simulated USB devices and check sysfs and its log. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <time.h>

#include "bundle.h"
#include "umock.h"

#define WAIT 15000 /* ms; generous for ASan on a busy machine */
#define ROOT "/sys/devices/usb1"

#define CHECKS_OFF                                                                                 \
	"[checks]\nusb.default_deny = no\nusb.no_unapproved_storage = no\nmfa.pam_stack = no\n"    \
	"mfa.enrollment = no\ntime.synchronized = no\nagent.integrity = no\nnet.isolation = no\n"

static const char POL_DEFAULT[] = "[terminal]\nid = t1\n" CHECKS_OFF;
static const char POL_EXTENDED[] =
    "[terminal]\nid = t1\n[usb]\n"
    "block = mass_storage, still_image, mtp, cdc_net, wireless\n" CHECKS_OFF;
static const char POL_ALLOW[] =
    "[terminal]\nid = t1\n[usb]\nallow = 0781:5581 serial=GOOD1\n" CHECKS_OFF;
static const char POL_AUDIT[] = "[terminal]\nid = t1\n[usb]\nmode = audit\n" CHECKS_OFF;

static const uint8_t STICK[1][3] = {{0x08, 0x06, 0x50}};
static const uint8_t KBD[1][3] = {{0x03, 0x01, 0x01}};
static const uint8_t COMBO[2][3] = {{0x03, 0x01, 0x01}, {0x08, 0x06, 0x50}};
static const uint8_t CCID[1][3] = {{0x0b, 0x00, 0x00}};

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

/* Fails the test with the agent's log in the output. */
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

static char *plug_stick(struct umock *u, const char *name, const char *serial, const char *auth)
{
	char *dev = umock_add_device(u, ROOT, name, "0781", "5581", serial, "1", STICK, 1, NULL);
	char ifname[64];
	snprintf(ifname, sizeof(ifname), "%s:1.0", name);
	char *ifc = umock_add_iface(u, dev, ifname, "08", "06", "50", NULL, auth);
	g_free(dev);
	return ifc;
}

static void test_storage_blocked(void **state)
{
	struct umock *u = *state;

	umock_start_agent(u, POL_DEFAULT);
	/* The agent's second layer: interfaces on this bus start unauthorized from now on. */
	assert_string_equal(umock_attr(u, ROOT, "interface_authorized_default"), "0");
	assert_non_null(strstr(u->err, "usb.roothub port=usb1 interface_authorized_default=0"));

	/* As if the kernel had authorized it (no udev rule): the agent must deauthorize it. */
	char *ifc = plug_stick(u, "1-1", "S1", "1");
	EXPECT_LOG(u, "usb.blocked port=1-1 iface=1-1:1.0 vendor=0781 product=5581 serial=\"S1\"");
	EXPECT_LOG(u, "kind=usb.blocked");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	assert_non_null(strstr(u->err, "rule=\"block mass_storage (08)\""));
	assert_non_null(strstr(u->err, "action=deauthorized"));
	assert_string_equal(umock_probe_file(u), "");
	g_free(ifc);

	/* Already unauthorized by the kernel default: left so. */
	ifc = plug_stick(u, "1-2", "S2", "0");
	EXPECT_LOG(u, "usb.blocked port=1-2 iface=1-2:1.0");
	EXPECT_LOG(u, "action=left-unauthorized");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	g_free(ifc);

	/* A controller that appears later gets the same kernel default. */
	const char *hub[] = {"idVendor",
			     "1d6b",
			     "idProduct",
			     "0003",
			     "authorized",
			     "1",
			     "interface_authorized_default",
			     "1",
			     NULL};
	char *usb2 = umock_add_device_attrs(u, NULL, "usb2", hub, NULL);
	EXPECT_LOG(u, "usb.roothub port=usb2 interface_authorized_default=0");
	assert_string_equal(umock_attr(u, usb2, "interface_authorized_default"), "0");
	g_free(usb2);
	/* root hubs' own interfaces are not reported as events */
	assert_int_equal(umock_count_err(u, "kind=usb.allowed"), 0);
	stop_ok(u);
}

static void test_keyboard_untouched(void **state)
{
	struct umock *u = *state;

	umock_start_agent(u, POL_DEFAULT);
	char *dev = umock_add_device(u, ROOT, "1-1", "046d", "c31c", NULL, "1", KBD, 1, NULL);
	char *ifc = umock_add_iface(u, dev, "1-1:1.0", "03", "01", "01", NULL, "1");
	EXPECT_LOG(u, "usb.allowed port=1-1 iface=1-1:1.0 vendor=046d product=c31c serial=-");
	EXPECT_LOG(u, "action=none");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "1");
	assert_string_equal(umock_probe_file(u), "");
	g_free(dev);
	g_free(ifc);
	stop_ok(u);
}

static void test_composite(void **state)
{
	struct umock *u = *state;

	umock_start_agent(u, POL_DEFAULT);
	char *dev = umock_add_device(u, ROOT, "1-3", "1234", "5678", "C1", "1", COMBO, 2, NULL);
	char *kbd = umock_add_iface(u, dev, "1-3:1.0", "03", "01", "01", NULL, "1");
	char *sto = umock_add_iface(u, dev, "1-3:1.1", "08", "06", "50", NULL, "1");
	EXPECT_LOG(u, "usb.blocked port=1-3 iface=1-3:1.1");
	EXPECT_LOG(u, "usb.allowed port=1-3 iface=1-3:1.0");
	assert_string_equal(umock_attr(u, kbd, "authorized"), "1");
	assert_string_equal(umock_attr(u, sto, "authorized"), "0");
	g_free(dev);
	g_free(kbd);
	g_free(sto);
	stop_ok(u);
}

static void test_smartcard_untouched(void **state)
{
	struct umock *u = *state;

	umock_start_agent(u, POL_EXTENDED);
	char *dev = umock_add_device(u, ROOT, "1-4", "04e6", "5116", "CARD1", "1", CCID, 1, NULL);
	char *ifc = umock_add_iface(u, dev, "1-4:1.0", "0b", "00", "00", NULL, "1");
	EXPECT_LOG(u, "usb.allowed port=1-4 iface=1-4:1.0 vendor=04e6 product=5116");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "1");
	g_free(dev);
	g_free(ifc);
	stop_ok(u);
}

static void test_allow_listed_probed(void **state)
{
	struct umock *u = *state;

	umock_start_agent(u, POL_ALLOW);
	/* Kernel default deny left it unauthorized; the allow-list authorizes and probes it. */
	char *ifc = plug_stick(u, "1-5", "GOOD1", "0");
	EXPECT_LOG(u,
		   "usb.allowed port=1-5 iface=1-5:1.0 vendor=0781 product=5581 serial=\"GOOD1\"");
	EXPECT_LOG(u, "action=authorized,probed");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "1");
	assert_string_equal(umock_probe_file(u), "1-5:1.0");
	assert_non_null(strstr(u->err, "rule=\"allow line"));
	g_free(ifc);

	/* Same vendor:product, other serial: blocked. */
	ifc = plug_stick(u, "1-6", "BAD2", "0");
	EXPECT_LOG(u, "usb.blocked port=1-6 iface=1-6:1.0");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	g_free(ifc);
	stop_ok(u);
}

/* MTP phone (vendor class + "MTP" string + ID_MTP_DEVICE), camera (PTP), USB Ethernet (CDC). */
static void plug_others(struct umock *u, char **mtp, char **cam, char **net)
{
	static const uint8_t MTP[1][3] = {{0xff, 0xff, 0x00}};
	static const uint8_t CAM[1][3] = {{0x06, 0x01, 0x01}};
	static const uint8_t NET[2][3] = {{0x02, 0x06, 0x00}, {0x0a, 0x00, 0x00}};
	const char *mtp_props[] = {"ID_MTP_DEVICE", "1", "ID_MEDIA_PLAYER", "1", NULL};
	char *d;

	d = umock_add_device(u, ROOT, "1-7", "0fce", "0193", "PHONE1", "1", MTP, 1, mtp_props);
	*mtp = umock_add_iface(u, d, "1-7:1.0", "ff", "ff", "00", "MTP", "1");
	g_free(d);
	d = umock_add_device(u, ROOT, "1-8", "04a9", "3218", "CAM1", "1", CAM, 1, NULL);
	*cam = umock_add_iface(u, d, "1-8:1.0", "06", "01", "01", NULL, "1");
	g_free(d);
	d = umock_add_device(u, ROOT, "1-9", "0bda", "8153", "NET1", "1", NET, 2, NULL);
	net[0] = umock_add_iface(u, d, "1-9:1.0", "02", "06", "00", NULL, "1");
	net[1] = umock_add_iface(u, d, "1-9:1.1", "0a", "00", "00", NULL, "1");
	g_free(d);
}

static void test_phone_camera_net_default(void **state)
{
	struct umock *u = *state;
	char *mtp, *cam, *net[2];

	umock_start_agent(u, POL_DEFAULT);
	plug_others(u, &mtp, &cam, net);
	EXPECT_LOG(u, "usb.allowed port=1-7 iface=1-7:1.0");
	EXPECT_LOG(u, "usb.allowed port=1-8 iface=1-8:1.0");
	EXPECT_LOG(u, "usb.allowed port=1-9 iface=1-9:1.1");
	assert_string_equal(umock_attr(u, mtp, "authorized"), "1");
	assert_string_equal(umock_attr(u, cam, "authorized"), "1");
	assert_string_equal(umock_attr(u, net[0], "authorized"), "1");
	assert_int_equal(umock_count_err(u, "usb.blocked"), 0);
	g_free(mtp);
	g_free(cam);
	g_free(net[0]);
	g_free(net[1]);
	stop_ok(u);
}

static void test_phone_camera_net_extended(void **state)
{
	struct umock *u = *state;
	char *mtp, *cam, *net[2];

	umock_start_agent(u, POL_EXTENDED);
	plug_others(u, &mtp, &cam, net);
	EXPECT_LOG(u, "usb.blocked port=1-7 iface=1-7:1.0");
	EXPECT_LOG(u, "usb.blocked port=1-8 iface=1-8:1.0");
	EXPECT_LOG(u, "usb.blocked port=1-9 iface=1-9:1.0");
	EXPECT_LOG(u, "usb.blocked port=1-9 iface=1-9:1.1");
	assert_string_equal(umock_attr(u, mtp, "authorized"), "0");
	assert_string_equal(umock_attr(u, cam, "authorized"), "0");
	assert_string_equal(umock_attr(u, net[0], "authorized"), "0");
	assert_string_equal(umock_attr(u, net[1], "authorized"), "0");
	g_free(mtp);
	g_free(cam);
	g_free(net[0]);
	g_free(net[1]);
	stop_ok(u);
}

static void test_coldplug(void **state)
{
	struct umock *u = *state;

	/* Present before the agent starts: decided before READY. */
	char *sto = plug_stick(u, "1-1", "S1", "1");
	char *dev = umock_add_device(u, ROOT, "1-2", "046d", "c31c", NULL, "1", KBD, 1, NULL);
	char *kbd = umock_add_iface(u, dev, "1-2:1.0", "03", "01", "01", NULL, "1");
	/* A device left unauthorized as a whole (authorized_default=0 somewhere): no interfaces,
	 * its classes come from the descriptors. */
	char *ud = umock_add_device(u, ROOT, "1-3", "0781", "5581", "U1", "0", STICK, 1, NULL);
	char *uk = umock_add_device(u, ROOT, "1-4", "046d", "c31d", NULL, "0", KBD, 1, NULL);

	umock_start_agent(u, POL_DEFAULT);
	assert_non_null(strstr(u->err, "usb.blocked port=1-1 iface=1-1:1.0"));
	assert_non_null(strstr(u->err, "usb.allowed port=1-2 iface=1-2:1.0"));
	assert_non_null(strstr(u->err, "usb.blocked port=1-3 iface=- vendor=0781"));
	assert_non_null(strstr(u->err, "class=08:06:50 rule=\"block mass_storage (08)\""));
	assert_non_null(strstr(u->err, "usb.allowed port=1-4 iface=- vendor=046d"));
	assert_string_equal(umock_attr(u, sto, "authorized"), "0");
	assert_string_equal(umock_attr(u, kbd, "authorized"), "1");
	assert_string_equal(umock_attr(u, ud, "authorized"), "0");
	assert_string_equal(umock_attr(u, uk, "authorized"), "1");
	g_free(sto);
	g_free(dev);
	g_free(kbd);
	g_free(ud);
	g_free(uk);
	stop_ok(u);
}

static void test_plug_during_scan(void **state)
{
	struct umock *u = *state;
	char *policy = umock_write_file(u, "policy.conf", POL_DEFAULT);
	char sock[300];
	snprintf(sock, sizeof(sock), "%s/event.sock", u->tmp);
	char *argv[] = {
	    getenv("MYNAGUARDD"), "--policy", policy, "--spool", u->tmp, "--state", u->tmp,
	    "--socket",		  sock,	      NULL};

	/* The agent holds after enabling its monitor and before scanning: a device plugged in
	 * that window is seen by both; it must be decided exactly once. */
	setenv("MYNAGUARDD_TEST_HOLD_SCAN", "1", 1);
	umock_spawn(u, argv);
	unsetenv("MYNAGUARDD_TEST_HOLD_SCAN");
	assert_true(umock_wait_out(u, "SCANNING\n", WAIT));
	char *ifc = plug_stick(u, "1-1", "S1", "1");
	assert_int_equal(write(u->in_fd, "go\n", 3), 3);
	assert_true(umock_wait_out(u, "READY\n", WAIT));
	EXPECT_LOG(u, "usb.blocked port=1-1 iface=1-1:1.0");
	/* a marker device after it: once its line is there, every earlier event was handled */
	char *m = plug_stick(u, "1-2", "S2", "1");
	EXPECT_LOG(u, "usb.blocked port=1-2 iface=1-2:1.0");
	assert_int_equal(umock_count_err(u, "usb.blocked port=1-1 iface=1-1:1.0"), 1);
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	g_free(ifc);
	g_free(m);
	free(policy);
	stop_ok(u);
}

/* Lines of the agent's log that contain needle but not without. */
static size_t count_lines(struct umock *u, const char *needle, const char *without)
{
	size_t n = 0;

	for (const char *p = u->err; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *line = strndup(p, len);

		assert_non_null(line);
		if (strstr(line, needle) && !strstr(line, without))
			n++;
		free(line);
		p = nl ? nl + 1 : NULL;
	}
	return n;
}

/* Plug a burst of sticks while the agent starts, without waiting for it: each is decided exactly
 * once, whether the scan, the monitor queue or both saw it. Small, because umockdev delivers
 * uevents over a Unix datagram socket whose queue holds net.unix.max_dgram_qlen (often 10)
 * messages, and it aborts when the agent (busy scanning) has not read them yet. */
#define BURST 4
static void test_plug_burst_at_start(void **state)
{
	struct umock *u = *state;
	char *policy = umock_write_file(u, "policy.conf", POL_DEFAULT);
	char sock[300], name[32], needle[96];
	char *ifc[BURST];

	snprintf(sock, sizeof(sock), "%s/event.sock", u->tmp);
	char *argv[] = {
	    getenv("MYNAGUARDD"), "--policy", policy, "--spool", u->tmp, "--state", u->tmp,
	    "--socket",		  sock,	      NULL};
	umock_spawn(u, argv);
	for (int i = 0; i < BURST; i++) {
		snprintf(name, sizeof(name), "1-%d", i + 1);
		ifc[i] = plug_stick(u, name, "B", "1");
	}
	assert_true(umock_wait_out(u, "READY\n", WAIT));
	for (int i = 0; i < BURST; i++) {
		snprintf(needle, sizeof(needle), "usb.blocked port=1-%d iface=1-%d:1.0 ", i + 1,
			 i + 1);
		EXPECT_LOG(u, needle);
	}
	/* marker: everything queued before it has been handled */
	char *m = plug_stick(u, "2-1", "M", "1");
	EXPECT_LOG(u, "usb.blocked port=2-1 iface=2-1:1.0 ");
	for (int i = 0; i < BURST; i++) {
		snprintf(needle, sizeof(needle), "usb.blocked port=1-%d iface=1-%d:1.0 ", i + 1,
			 i + 1);
		/* umockdev creates a device's files one by one: a scan that catches one half made
		 * fails closed (action=failed) and the add event decides it again; every
		 * decision that took effect happens once */
		assert_int_equal(count_lines(u, needle, "action=failed"), 1);
		assert_string_equal(umock_attr(u, ifc[i], "authorized"), "0");
		g_free(ifc[i]);
	}
	g_free(m);
	free(policy);
	stop_ok(u);
}

static void test_remove(void **state)
{
	struct umock *u = *state;

	umock_start_agent(u, POL_DEFAULT);
	char *ifc = plug_stick(u, "1-1", "S1", "1");
	EXPECT_LOG(u, "usb.blocked port=1-1 iface=1-1:1.0");
	umock_remove(u, ifc);
	umock_remove(u, "/sys/devices/usb1/1-1");
	EXPECT_LOG(u, "usb.removed port=1-1 iface=- vendor=0781 product=5581 serial=\"S1\"");
	EXPECT_LOG(u, "kind=usb.removed");
	/* plugged again at the same port: a new decision */
	g_free(ifc);
	ifc = plug_stick(u, "1-1", "S1", "1");
	EXPECT_LOG(u, "action=deauthorized");
	assert_true(umock_wait_err_n(u, "usb.blocked port=1-1 iface=1-1:1.0", 2, WAIT));
	g_free(ifc);
	stop_ok(u);
}

static void test_change_no_loop(void **state)
{
	struct umock *u = *state;

	umock_start_agent(u, POL_DEFAULT);
	char *ifc = plug_stick(u, "1-1", "S1", "1");
	EXPECT_LOG(u, "usb.blocked port=1-1 iface=1-1:1.0");
	/* The kernel (>= 5.9) sends "change" after a write to authorized. */
	for (int i = 0; i < 3; i++)
		umockdev_testbed_uevent(u->tb, ifc, "change");
	char *m = plug_stick(u, "1-2", "S2", "1");
	EXPECT_LOG(u, "usb.blocked port=1-2 iface=1-2:1.0");
	assert_true(umock_wait_err_n(u, "kind=usb.blocked", 2, WAIT));
	assert_int_equal(umock_count_err(u, "iface=1-1:1.0"), 1);
	assert_int_equal(umock_count_err(u, "kind=usb.blocked"), 2);

	/* Someone authorizes it behind the agent's back: the change is enforced again, once. */
	umock_set_attr(u, ifc, "authorized", "1");
	umockdev_testbed_uevent(u->tb, ifc, "change");
	assert_true(umock_wait_err_n(u, "usb.blocked port=1-1 iface=1-1:1.0", 2, WAIT));
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	umockdev_testbed_uevent(u->tb, ifc, "change");
	g_free(m);
	m = plug_stick(u, "1-3", "S3", "1");
	EXPECT_LOG(u, "usb.blocked port=1-3 iface=1-3:1.0");
	assert_int_equal(umock_count_err(u, "iface=1-1:1.0"), 2);
	g_free(ifc);
	g_free(m);
	stop_ok(u);
}

static void test_hostile(void **state)
{
	struct umock *u = *state;
	char longserial[400];
	char *d, *i;

	umock_start_agent(u, POL_DEFAULT);

	/* garbage class */
	d = umock_add_device(u, ROOT, "1-1", "1234", "0001", "G1", "1", KBD, 1, NULL);
	i = umock_add_iface(u, d, "1-1:1.0", "zz", "01", "01", NULL, "1");
	EXPECT_LOG(u, "usb.blocked port=1-1 iface=1-1:1.0");
	EXPECT_LOG(u, "rule=\"invalid: bInterfaceClass missing or not 2 hex digits\"");
	assert_string_equal(umock_attr(u, i, "authorized"), "0");
	g_free(d);
	g_free(i);

	/* overlong serial on a "keyboard": impossible for a real device, fail closed */
	memset(longserial, 'A', sizeof(longserial) - 1);
	longserial[sizeof(longserial) - 1] = '\0';
	d = umock_add_device(u, ROOT, "1-2", "046d", "c31c", longserial, "1", KBD, 1, NULL);
	i = umock_add_iface(u, d, "1-2:1.0", "03", "01", "01", NULL, "1");
	EXPECT_LOG(u, "usb.blocked port=1-2 iface=1-2:1.0");
	EXPECT_LOG(u, "rule=\"invalid: serial longer than 126 characters\"");
	EXPECT_LOG(u, "AAAA...\"");
	assert_string_equal(umock_attr(u, i, "authorized"), "0");
	g_free(d);
	g_free(i);

	/* invalid UTF-8 and control characters in the serial: escaped in the log */
	d = umock_add_device(u, ROOT, "1-3", "046d", "c31c", "X\xff\xfe\"\nY", "1", KBD, 1, NULL);
	i = umock_add_iface(u, d, "1-3:1.0", "03", "01", "01", NULL, "1");
	EXPECT_LOG(u, "usb.blocked port=1-3 iface=1-3:1.0");
	EXPECT_LOG(u, "serial=\"X\\xff\\xfe\\\"\\x0aY\"");
	EXPECT_LOG(u, "rule=\"invalid: serial is not valid UTF-8\"");
	g_free(d);
	g_free(i);

	/* missing idVendor/idProduct */
	const char *attrs[] = {"authorized", "1", NULL};
	d = umock_add_device_attrs(u, ROOT, "1-4", attrs, NULL);
	i = umock_add_iface(u, d, "1-4:1.0", "03", "01", "01", NULL, "1");
	EXPECT_LOG(u, "usb.blocked port=1-4 iface=1-4:1.0 vendor=- product=-");
	g_free(d);
	g_free(i);

	/* missing bInterfaceClass and missing authorized */
	d = umock_add_device(u, ROOT, "1-5", "1234", "0001", "M1", "1", KBD, 1, NULL);
	i = umock_add_iface(u, d, "1-5:1.0", NULL, "01", "01", NULL, "1");
	EXPECT_LOG(u, "usb.blocked port=1-5 iface=1-5:1.0");
	assert_string_equal(umock_attr(u, i, "authorized"), "0");
	g_free(i);
	i = umock_add_iface(u, d, "1-5:1.1", "08", "06", "50", "\xc0\xaf", NULL);
	EXPECT_LOG(u, "usb.blocked port=1-5 iface=1-5:1.1");
	g_free(d);
	g_free(i);

	/* still alive and deciding */
	i = plug_stick(u, "1-6", "S6", "1");
	EXPECT_LOG(u, "usb.blocked port=1-6 iface=1-6:1.0");
	g_free(i);
	stop_ok(u);
}

/* Descriptors a real kernel would not show: unparsable, or naming other ids than idVendor. */
static void test_hostile_descriptors(void **state)
{
	struct umock *u = *state;
	const char *attrs[] = {"idVendor", "1234", "idProduct", "0001", "authorized", "0", NULL};
	static uint8_t garbage[] = {18, 1, 0, 2, 0, 0, 0, 64, 0x34, 0x12, 1,
				    0,	0, 1, 1, 2, 3, 1, 9,  2,    200};
	uint8_t desc[64];

	/* present at start, unauthorized as a whole, descriptors cut off */
	char *d1 = umock_add_device_attrs(u, ROOT, "1-1", attrs, NULL);
	umockdev_testbed_set_attribute_binary(u->tb, d1, "descriptors", garbage, sizeof(garbage));
	umock_start_agent(u, POL_DEFAULT);
	assert_non_null(strstr(u->err, "usb.blocked port=1-1 iface=- vendor=1234 product=0001"));
	assert_non_null(strstr(u->err, "rule=\"invalid: descriptors unreadable or malformed"));
	assert_string_equal(umock_attr(u, d1, "authorized"), "0");

	/* a "keyboard" whose descriptors name another device */
	const char *kattrs[] = {"idVendor", "046d", "idProduct", "c31c", "authorized", "1", NULL};
	char *d2 = umock_add_device_attrs(u, ROOT, "1-2", kattrs, NULL);
	size_t n = umock_build_desc(desc, 0x0781, 0x5581, KBD, 1);
	umockdev_testbed_set_attribute_binary(u->tb, d2, "descriptors", desc, (gssize)n);
	char *i2 = umock_add_iface(u, d2, "1-2:1.0", "03", "01", "01", NULL, "1");
	EXPECT_LOG(u, "usb.blocked port=1-2 iface=1-2:1.0");
	EXPECT_LOG(u, "rule=\"invalid: descriptors disagree with idVendor/idProduct\"");
	assert_string_equal(umock_attr(u, i2, "authorized"), "0");
	g_free(d1);
	g_free(d2);
	g_free(i2);
	stop_ok(u);
}

static void test_audit(void **state)
{
	struct umock *u = *state;

	umock_start_agent(u, POL_AUDIT);
	/* audit mode does not set the kernel default either */
	assert_string_equal(umock_attr(u, ROOT, "interface_authorized_default"), "1");
	char *ifc = plug_stick(u, "1-1", "S1", "0");
	EXPECT_LOG(u, "usb.blocked port=1-1 iface=1-1:1.0");
	EXPECT_LOG(u, "mode=audit action=authorized,probed");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "1");
	assert_string_equal(umock_probe_file(u), "1-1:1.0");
	g_free(ifc);
	stop_ok(u);
}

static void test_reload(void **state)
{
	struct umock *u = *state;

	umock_start_agent(u, POL_DEFAULT);
	char *ifc = plug_stick(u, "1-1", "GOOD1", "1");
	EXPECT_LOG(u, "usb.blocked port=1-1 iface=1-1:1.0");
	/* add it to the allow-list and reload: re-decided under the new policy */
	free(umock_write_file(u, "policy.conf", POL_ALLOW));
	kill(u->pid, SIGHUP);
	EXPECT_LOG(u, "agent.reload ok");
	EXPECT_LOG(u, "usb.allowed port=1-1 iface=1-1:1.0");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "1");
	/* a broken policy is refused, the old one stays */
	free(umock_write_file(u, "policy.conf", "[terminal]\nid = t1\n[usb]\nmode = maybe\n"));
	kill(u->pid, SIGHUP);
	EXPECT_LOG(u, "agent.reload failed");
	g_free(ifc);
	stop_ok(u);
}

static void test_check_and_bad_policy(void **state)
{
	struct umock *u = *state;
	char *good = umock_write_file(u, "good.conf", POL_DEFAULT);
	char *bad = umock_write_file(u, "bad.conf", "[terminal]\nid = t1\n[usb]\nmode = maybe\n");
	char *argv_good[] = {getenv("MYNAGUARDD"), "-n", "--policy", good, NULL};
	char *argv_bad[] = {getenv("MYNAGUARDD"), "--policy", bad, NULL};

	umock_spawn(u, argv_good);
	assert_int_equal(umock_wait_exit(u, WAIT), 0);
	umock_spawn(u, argv_bad);
	assert_int_equal(umock_wait_exit(u, WAIT), 1);
	assert_non_null(strstr(u->err, "bad.conf:4: "));
	assert_null(strstr(u->out, "READY"));
	free(good);
	free(bad);
}

/* Readiness reaches systemd's notify socket too (Type=notify). */
static void test_notify(void **state)
{
	struct umock *u = *state;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[256];
	int fd;

	assert_true(strlen(u->tmp) + 8 < sizeof(sa.sun_path));
	memcpy(sa.sun_path, u->tmp, strlen(u->tmp));
	memcpy(sa.sun_path + strlen(u->tmp), "/notify", 8);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	umock_start_agent(u, POL_DEFAULT);
	unsetenv("NOTIFY_SOCKET");
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, WAIT), 1);
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "READY=1"));
	stop_ok(u);
	assert_int_equal(poll(&p, 1, WAIT), 1);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "STOPPING=1"));
	close(fd);
}

static int run_ctl(struct umock *u, const char *policy, const char *input, const char *const *args)
{
	char *argv[16];
	size_t k = 0;

	argv[k++] = getenv("MYNAGUARDCTL");
	argv[k++] = "--policy";
	argv[k++] = (char *)policy;
	for (size_t i = 0; args[i] && k < 15; i++)
		argv[k++] = (char *)args[i];
	argv[k] = NULL;
	umock_spawn(u, argv);
	if (input)
		assert_int_equal(write(u->in_fd, input, strlen(input)), (ssize_t)strlen(input));
	close(u->in_fd);
	u->in_fd = -1;
	return umock_wait_exit(u, WAIT);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	assert_non_null(f);
	assert_non_null(buf);
	if (fread(buf, 1, 65535, f) == 0 && ferror(f))
		fail();
	fclose(f);
	return buf;
}

static void test_ctl_list(void **state)
{
	struct umock *u = *state;
	char *policy = umock_write_file(u, "policy.conf", POL_ALLOW);

	g_free(plug_stick(u, "1-1", "S1", "0"));
	g_free(plug_stick(u, "1-2", "GOOD1", "0"));
	char *dev = umock_add_device(u, ROOT, "1-3", "046d", "c31c", NULL, "1", KBD, 1, NULL);
	g_free(umock_add_iface(u, dev, "1-3:1.0", "03", "01", "01", NULL, "1"));
	g_free(dev);
	g_free(umock_add_device(u, ROOT, "1-4", "1234", "0001", "U 1\"", "0", STICK, 1, NULL));

	const char *args[] = {"usb", "list", NULL};
	assert_int_equal(run_ctl(u, policy, NULL, args), 0);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "%s", u->out);
	assert_non_null(strstr(u->out, "1-1 0781:5581 manufacturer=\"Test Maker\""));
	assert_non_null(strstr(
	    u->out,
	    "    1-1:1.0 08:06:50 mass_storage authorized=0 block rule=\"block mass_storage (08)\"\n"));
	assert_non_null(strstr(u->out, "    allow = 0781:5581 serial=S1\n"));
	assert_non_null(strstr(
	    u->out,
	    "    1-2:1.0 08:06:50 mass_storage authorized=0 allow rule=\"allow line 4: 0781:5581 serial=GOOD1\"\n"));
	assert_non_null(strstr(u->out, "    1-3:1.0 03:01:01 hid authorized=1 allow"));
	/* unauthorized as a whole: classes from the descriptors; serial needs quoting */
	assert_non_null(strstr(u->out, "(descriptor) config 1 interface 0.0 08:06:50 block"));
	assert_non_null(strstr(u->out, "    allow = 1234:0001 serial=\"U 1\\\"\"\n"));
	free(policy);
}

/* usb list suggests reader = only for a device whose blocked functions are all vendor-specific
 * and not MTP (a card or NFC reader): not for a phone, not for a device with storage. */
static void test_ctl_list_reader_hint(void **state)
{
	static const uint8_t NFC[1][3] = {{0xff, 0x00, 0x00}};
	static const uint8_t MIXED[2][3] = {{0xff, 0x00, 0x00}, {0x08, 0x06, 0x50}};
	struct umock *u = *state;
	char *policy = umock_write_file(
	    u, "policy.conf", "[terminal]\nid = t1\n[usb]\nblock = mass_storage, mtp, ff\n");
	const char *mtp_props[] = {"ID_MTP_DEVICE", "1", NULL};
	const char *args[] = {"usb", "list", NULL};
	char *dev;
	const char *p;

	dev = umock_add_device(u, ROOT, "1-1", "054c", "0dc9", NULL, "1", NFC, 1, NULL);
	g_free(umock_add_iface(u, dev, "1-1:1.0", "ff", "00", "00", NULL, "0"));
	g_free(dev);
	dev = umock_add_device(u, ROOT, "1-2", "1234", "0002", "M1", "1", MIXED, 2, NULL);
	g_free(umock_add_iface(u, dev, "1-2:1.0", "ff", "00", "00", NULL, "0"));
	g_free(umock_add_iface(u, dev, "1-2:1.1", "08", "06", "50", NULL, "0"));
	g_free(dev);
	dev = umock_add_device(u, ROOT, "1-3", "04e8", "6860", "P1", "1", NFC, 1, mtp_props);
	g_free(umock_add_iface(u, dev, "1-3:1.0", "ff", "00", "00", NULL, "0"));
	g_free(dev);
	/* unauthorized as a whole: decided from its descriptors */
	g_free(umock_add_device(u, ROOT, "1-4", "054c", "06c3", NULL, "0", NFC, 1, NULL));

	assert_int_equal(run_ctl(u, policy, NULL, args), 0);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "%s", u->out);
	assert_non_null(strstr(u->out, "    reader = 054c:0dc9\n"));
	assert_non_null(strstr(u->out, "    reader = 054c:06c3\n"));
	assert_null(strstr(u->out, "reader = 1234:0002"));
	assert_null(strstr(u->out, "reader = 04e8:6860"));
	p = strstr(u->out, "1-3 04e8:6860");
	assert_non_null(p);
	assert_non_null(strstr(p, "rule=\"block mtp (ID_MTP_DEVICE)\""));
	free(policy);
}

static void test_ctl_allow(void **state)
{
	struct umock *u = *state;
	char *policy =
	    umock_write_file(u, "policy.conf",
			     "[terminal]\nid = t1\n[usb]\nmode = enforce\n; a comment\n\n"
			     "[mfa]\nnullok = no\n");
	char *text;

	g_free(plug_stick(u, "1-1", "S 1", "0"));

	/* refused at the prompt: nothing written */
	const char *a1[] = {"usb", "allow", "1-1", NULL};
	assert_int_equal(run_ctl(u, policy, "n\n", a1), 1);
	text = slurp(policy);
	assert_null(strstr(text, "allow ="));
	free(text);

	/* by port, confirmed: the serial comes from the device */
	assert_int_equal(run_ctl(u, policy, "y\n", a1), 0);
	text = slurp(policy);
	assert_string_equal(
	    text, "[terminal]\nid = t1\n[usb]\nmode = enforce\n"
		  "allow = 0781:5581 serial=\"S 1\"\n; a comment\n\n[mfa]\nnullok = no\n");
	free(text);

	/* the same again: the policy would hold a duplicate; refused, file unchanged */
	const char *a2[] = {"--yes", "usb", "allow", "0781:5581", "--serial", "S 1", NULL};
	assert_int_equal(run_ctl(u, policy, NULL, a2), 1);
	assert_non_null(strstr(u->err, "would not be valid"));

	/* by VID:PID with the present device's descriptor hash and a name */
	const char *a3[] = {"--yes",  "usb",	"allow",    "0781:5581",
			    "--hash", "--name", "総務課 1", NULL};
	assert_int_equal(run_ctl(u, policy, NULL, a3), 0);
	text = slurp(policy);
	if (!strstr(text, "allow = 0781:5581 serial=\"S 1\" hash=sha256:"))
		fail_msg("policy now:\n%s", text);
	assert_non_null(strstr(text, " name=総務課 1\n"));
	free(text);

	/* the file is still valid for the agent, and the device is now allowed */
	const char *chk[] = {"usb", "list", NULL};
	assert_int_equal(run_ctl(u, policy, NULL, chk), 0);
	assert_non_null(strstr(u->out, "1-1:1.0 08:06:50 mass_storage authorized=0 allow"));

	/* by device path, with an explicit serial overriding the device's */
	const char *a7[] = {"--yes",	"usb",	 "allow", "/sys/bus/usb/devices/1-1",
			    "--serial", "OTHER", NULL};
	assert_int_equal(run_ctl(u, policy, NULL, a7), 0);
	text = slurp(policy);
	assert_non_null(strstr(text, "allow = 0781:5581 serial=OTHER\n"));
	free(text);

	/* no such device; a policy without [usb] gets one */
	const char *a4[] = {"--yes", "usb", "allow", "9-9", NULL};
	assert_int_equal(run_ctl(u, policy, NULL, a4), 1);
	free(policy);
	policy = umock_write_file(u, "p2.conf", "[terminal]\nid = t1");
	const char *a6[] = {"--yes", "usb", "allow", "abcd:0001", NULL};
	assert_int_equal(run_ctl(u, policy, NULL, a6), 1);
	assert_non_null(strstr(u->err, "give --serial S or --any-serial"));
	const char *a5[] = {"--yes", "usb", "allow", "abcd:0001", "--any-serial", NULL};
	assert_int_equal(run_ctl(u, policy, NULL, a5), 0);
	text = slurp(policy);
	assert_string_equal(text, "[terminal]\nid = t1\n\n[usb]\nallow = abcd:0001\n");
	free(text);
	free(policy);
}

/* drivers_probe as a FIFO: nobody can write it before the test opens the read end (open()
 * blocks), so the test sees what the agent did before its first probe, and then every probe
 * in order (names back to back: the agent writes each without a newline). */
static void probe_fifo_make(struct umock *u)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/sys/bus/usb/drivers_probe", u->root);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
}

static int probe_fifo_open(struct umock *u)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/sys/bus/usb/drivers_probe", u->root);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* Everything probed since the last call. */
static const char *probe_fifo_read(int fd)
{
	static char buf[1024];
	size_t have = 0;
	ssize_t n;

	while (have < sizeof(buf) - 1 && (n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0)
		have += (size_t)n;
	buf[have] = '\0';
	return buf;
}

static bool attr_wait(struct umock *u, const char *syspath, const char *attr, const char *want)
{
	for (int i = 0; i < WAIT / 20; i++) {
		const char *v = umock_attr(u, syspath, attr);
		if (v && strcmp(v, want) == 0)
			return true;
		usleep(20 * 1000);
	}
	return false;
}

/* The agent's log line that starts with head contains what. */
static bool log_line_has(struct umock *u, const char *head, const char *what)
{
	const char *l = strstr(u->err, head);
	const char *eol = l ? strchr(l, '\n') : NULL;
	const char *w = l ? strstr(l, what) : NULL;

	return w && (!eol || w < eol);
}

static const uint8_t NET3[3][3] = {{0x02, 0x06, 0x00}, {0x0a, 0x00, 0x00}, {0x08, 0x06, 0x50}};

/* cdc_ether / snd-usb-audio claim the sibling interfaces while probing the first one, and the
 * kernel refuses an unauthorized sibling: every allowed sibling must be authorized (and every
 * blocked one deauthorized) before the first drivers_probe write. The startup scan meets the
 * control interface 1.0 first, with 1.1 (data, allowed) and 1.2 (storage, blocked) present. */
static void test_multi_siblings_before_probe(void **state)
{
	struct umock *u = *state;
	char *d = umock_add_device(u, ROOT, "1-9", "0bda", "8153", "NET1", "1", NET3, 3, NULL);
	char *i0 = umock_add_iface(u, d, "1-9:1.0", "02", "06", "00", NULL, "0");
	char *i1 = umock_add_iface(u, d, "1-9:1.1", "0a", "00", "00", NULL, "0");
	char *i2 = umock_add_iface(u, d, "1-9:1.2", "08", "06", "50", NULL, "1");

	probe_fifo_make(u);
	umock_spawn_agent(u, POL_DEFAULT);
	/* The agent now hangs in its first drivers_probe open(), whatever it decided before. */
	assert_true(attr_wait(u, i0, "authorized", "1"));
	if (!attr_wait(u, i1, "authorized", "1")) {
		fprintf(stderr, "1-9:1.1 still unauthorized at the first probe\n");
		fail();
	}
	assert_true(attr_wait(u, i2, "authorized", "0"));
	int fd = probe_fifo_open(u);
	assert_true(umock_wait_out(u, "READY\n", 20000));
	EXPECT_LOG(u, "usb.allowed port=1-9 iface=1-9:1.1");
	/* Both allowed ones probed, in interface order; the blocked one never. */
	assert_string_equal(probe_fifo_read(fd), "1-9:1.01-9:1.1");
	/* One decision (log line and event) per interface, however they were reached. */
	assert_int_equal(umock_count_err(u, "usb.allowed port=1-9 iface=1-9:1.0"), 1);
	assert_int_equal(umock_count_err(u, "usb.allowed port=1-9 iface=1-9:1.1"), 1);
	assert_int_equal(umock_count_err(u, "usb.blocked port=1-9 iface=1-9:1.2"), 1);
	assert_true(umock_wait_err_n(u, "kind=usb.allowed", 2, WAIT));
	assert_true(umock_wait_err_n(u, "kind=usb.blocked", 1, WAIT));
	assert_true(
	    log_line_has(u, "usb.allowed port=1-9 iface=1-9:1.0 ", "action=authorized,probed"));
	assert_true(
	    log_line_has(u, "usb.allowed port=1-9 iface=1-9:1.1 ", "action=authorized,probed"));
	assert_true(log_line_has(u, "usb.blocked port=1-9 iface=1-9:1.2 ", "action=deauthorized"));
	/* The change uevents the kernel sends after the writes: no second decision, no probe. */
	umockdev_testbed_uevent(u->tb, i0, "change");
	umockdev_testbed_uevent(u->tb, i1, "change");
	umockdev_testbed_uevent(u->tb, i2, "change");
	char *m = plug_stick(u, "1-2", "S2", "1");
	EXPECT_LOG(u, "usb.blocked port=1-2 iface=1-2:1.0");
	assert_int_equal(umock_count_err(u, "iface=1-9:1."), 3);
	assert_string_equal(probe_fifo_read(fd), "");
	stop_ok(u);
	assert_int_equal(umock_count_err(u, "kind=usb.allowed"), 2);
	close(fd);
	g_free(m);
	g_free(d);
	g_free(i0);
	g_free(i1);
	g_free(i2);
}

/* A sibling that appears only after the first interface was authorized and probed (its driver
 * then failed): authorizing it re-probes the device's authorized interfaces that have no driver;
 * bound ones are left alone. */
static void test_multi_late_sibling_reprobe(void **state)
{
	struct umock *u = *state;
	char link[1024];

	probe_fifo_make(u);
	int fd = probe_fifo_open(u);
	umock_start_agent(u, POL_DEFAULT);
	char *d = umock_add_device(u, ROOT, "1-9", "0bda", "8153", "NET1", "1", NET3, 3, NULL);
	char *i0 = umock_add_iface(u, d, "1-9:1.0", "02", "06", "00", NULL, "0");
	EXPECT_LOG(u, "usb.allowed port=1-9 iface=1-9:1.0");
	assert_string_equal(probe_fifo_read(fd), "1-9:1.0");
	/* cdc_ether gave up on 1.0 (its data interface was missing): no driver link. */
	char *i1 = umock_add_iface(u, d, "1-9:1.1", "0a", "00", "00", NULL, "0");
	EXPECT_LOG(u, "usb.allowed port=1-9 iface=1-9:1.1");
	assert_string_equal(probe_fifo_read(fd), "1-9:1.01-9:1.1");
	assert_string_equal(umock_attr(u, i1, "authorized"), "1");

	/* Now bound: a third (allowed) sibling is probed alone. */
	snprintf(link, sizeof(link), "%s%s/driver", u->root, i0);
	assert_int_equal(symlink("../../../bus/usb/drivers/cdc_ether", link), 0);
	snprintf(link, sizeof(link), "%s%s/driver", u->root, i1);
	assert_int_equal(symlink("../../../bus/usb/drivers/cdc_ether", link), 0);
	char *i2 = umock_add_iface(u, d, "1-9:1.2", "ff", "00", "00", NULL, "0");
	EXPECT_LOG(u, "usb.allowed port=1-9 iface=1-9:1.2");
	assert_string_equal(probe_fifo_read(fd), "1-9:1.2");
	/* A blocked sibling probes nothing. */
	char *i3 = umock_add_iface(u, d, "1-9:1.3", "08", "06", "50", NULL, "1");
	EXPECT_LOG(u, "usb.blocked port=1-9 iface=1-9:1.3");
	assert_string_equal(umock_attr(u, i3, "authorized"), "0");
	assert_string_equal(probe_fifo_read(fd), "");
	assert_int_equal(umock_count_err(u, "iface=1-9:1."), 4);
	stop_ok(u);
	close(fd);
	g_free(d);
	g_free(i0);
	g_free(i1);
	g_free(i2);
	g_free(i3);
}

/* ---- issue 10: vendor-class functions under the shipped policy, and the compliance check ---- */

/* "[terminal] id = t1" + the shipped policy's [usb] section + every check off. */
static char *shipped_usb_policy(void)
{
	gchar *text = NULL;
	const char *usb, *end;
	char *out;

	assert_true(g_file_get_contents(SHIPPED_POLICY, &text, NULL, NULL));
	usb = strstr(text, "\n[usb]\n");
	assert_non_null(usb);
	end = strstr(usb + 1, "\n[");
	assert_non_null(end);
	out = g_strdup_printf("[terminal]\nid = t1\n%.*s\n%s", (int)(end - usb), usb, CHECKS_OFF);
	g_free(text);
	return out;
}

struct plugged {
	const char *name, *vid, *pid, *cls, *sub, *proto, *label;
	const char *want_auth; /* authorized after the agent decided */
	const char *want_log;  /* in the agent's log */
};

static void test_shipped_vendor_class(void **state)
{
	static const struct plugged devs[] = {
	    /* Realtek RTL8153 in its vendor configuration (driver r8152) */
	    {"1-1", "0bda", "8153", "ff", "ff", "00", NULL, "0",
	     "usb.blocked port=1-1 iface=1-1:1.0 vendor=0bda product=8153"},
	    /* ASIX AX88179 (ax88179_178a) */
	    {"1-2", "0b95", "1790", "ff", "ff", "00", NULL, "0",
	     "usb.blocked port=1-2 iface=1-2:1.0 vendor=0b95 product=1790"},
	    /* iPhone: the usbmux interface (its PTP interface is still_image) */
	    {"1-3", "05ac", "12a8", "ff", "fe", "02", NULL, "0",
	     "usb.blocked port=1-3 iface=1-3:1.0 vendor=05ac product=12a8"},
	    /* Android phone with USB debugging on */
	    {"1-4", "18d1", "4ee7", "ff", "42", "01", "ADB Interface", "0",
	     "usb.blocked port=1-4 iface=1-4:1.0 vendor=18d1 product=4ee7"},
	    /* an unknown vendor-class gadget */
	    {"1-5", "0403", "6001", "ff", "ff", "ff", NULL, "0",
	     "usb.blocked port=1-5 iface=1-5:1.0 vendor=0403 product=6001"},
	    /* Sony PaSoRi RC-S380/S: a listed NFC My Number card reader */
	    {"1-6", "054c", "06c1", "ff", "ff", "00", NULL, "1",
	     "usb.allowed port=1-6 iface=1-6:1.0 vendor=054c product=06c1"},
	    /* keyboard and contact card reader (CCID) keep working */
	    {"1-7", "046d", "c31c", "03", "01", "01", NULL, "1",
	     "usb.allowed port=1-7 iface=1-7:1.0 vendor=046d product=c31c"},
	    {"1-8", "04e6", "5116", "0b", "00", "00", NULL, "1",
	     "usb.allowed port=1-8 iface=1-8:1.0 vendor=04e6 product=5116"},
	};
	static const char *const rules[] = {
	    "rule=\"block vendor_net (ff:ff:00)\"",
	    "rule=\"block usbmux (ff:fe:02)\"",
	    "rule=\"block adb (ff:42:01)\"",
	    "rule=\"block vendor_specific (ff)\"",
	    "rule=\"reader line ",
	};
	struct umock *u = *state;
	char *policy = shipped_usb_policy();
	char *ifc[sizeof(devs) / sizeof(devs[0])];

	umock_start_agent(u, policy);
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		const struct plugged *p = &devs[i];
		uint8_t desc[1][3] = {{(uint8_t)strtoul(p->cls, NULL, 16),
				       (uint8_t)strtoul(p->sub, NULL, 16),
				       (uint8_t)strtoul(p->proto, NULL, 16)}};
		char name[32];
		char *d;

		d = umock_add_device(u, ROOT, p->name, p->vid, p->pid, NULL, "1",
				     (const uint8_t(*)[3])desc, 1, NULL);
		snprintf(name, sizeof(name), "%s:1.0", p->name);
		/* as if the kernel had authorized it: the agent must take it back */
		ifc[i] = umock_add_iface(u, d, name, p->cls, p->sub, p->proto, p->label, "1");
		g_free(d);
		/* one device at a time: umockdev aborts when its uevent socket is full, which a
		 * burst of eight plugs can make happen on a loaded machine */
		EXPECT_LOG(u, p->want_log);
	}
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		if (strcmp(umock_attr(u, ifc[i], "authorized"), devs[i].want_auth) != 0) {
			fprintf(stderr, "%s: authorized=%s, want %s\n--- log ---\n%s\n",
				devs[i].name, umock_attr(u, ifc[i], "authorized"),
				devs[i].want_auth, u->err);
			fail();
		}
		g_free(ifc[i]);
	}
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		EXPECT_LOG(u, rules[i]);
	assert_non_null(strstr(u->err, "054c:06c1 (Sony PaSoRi RC-S380/S)"));
	assert_int_equal(umock_count_err(u, "usb.blocked port="), 5);
	free(policy);
	stop_ok(u);
}

/* usb.no_unapproved_storage reads devices as the gate does, udev properties included: an MTP
 * phone that only udev's ID_MTP_DEVICE=1 marks (no "MTP" interface name), authorized because
 * the gate is in audit mode, fails the check. A vendor-class device without the property does
 * not. */
static void test_compliance_mtp_phone(void **state)
{
	static const uint8_t VENDOR[1][3] = {{0xff, 0xff, 0x00}};
	static const char policy[] =
	    "[terminal]\nid = t1\n[usb]\nmode = audit\nblock = mass_storage, mtp\n"
	    "[checks]\nusb.default_deny = no\nusb.no_unapproved_storage = yes\n"
	    "mfa.pam_stack = no\nmfa.enrollment = no\ntime.synchronized = no\n"
	    "agent.integrity = no\nnet.isolation = no\n";
	const char *mtp_props[] = {"ID_MTP_DEVICE", "1", "ID_MEDIA_PLAYER", "1", NULL};
	struct umock *u = *state;
	char *d, *phone, *other;

	d = umock_add_device(u, ROOT, "1-7", "04e8", "6860", "PHONE1", "1", VENDOR, 1, mtp_props);
	phone = umock_add_iface(u, d, "1-7:1.0", "ff", "ff", "00", NULL, "1");
	g_free(d);
	d = umock_add_device(u, ROOT, "1-8", "1234", "0001", "GADGET", "1", VENDOR, 1, NULL);
	other = umock_add_iface(u, d, "1-8:1.0", "ff", "ff", "00", NULL, "1");
	g_free(d);

	umock_start_agent(u, policy);
	EXPECT_LOG(u, "kind=compliance");
	EXPECT_LOG(u, "\"id\":\"usb.no_unapproved_storage\"");
	EXPECT_LOG(u, "\"status\":\"fail\"");
	EXPECT_LOG(u, "1-7:1.0 (04e8:6860 serial=PHONE1) authorized: block mtp (ID_MTP_DEVICE)");
	assert_null(strstr(u->err, "1-8:1.0 (1234:0001"));
	assert_string_equal(umock_attr(u, phone, "authorized"), "1"); /* audit */
	g_free(phone);
	g_free(other);
	stop_ok(u);
}

/* The worker's pid, from its start line. */
static pid_t worker_pid(struct umock *u)
{
	const char *p = strstr(u->err, "worker.started pid=");

	assert_non_null(p);
	return (pid_t)atoi(p + strlen("worker.started pid="));
}

/* The value of "Key:" in /proc/PID/status, whitespace skipped; static buffer. */
static const char *proc_status(pid_t pid, const char *key)
{
	static char line[256];
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
			char *v = line + strlen(key) + 1;
			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = 0;
			fclose(f);
			return v;
		}
	}
	fclose(f);
	fail_msg("no %s in %s", key, path);
	return NULL;
}

/* Two processes: the monitor we started, and its worker, filtered and without privileges. */
static void test_split_sandboxed(void **state)
{
	struct umock *u = *state;
	char ppid[16];

	umock_start_agent(u, POL_DEFAULT);
	pid_t w = worker_pid(u);
	assert_true(w > 0 && w != u->pid);
	snprintf(ppid, sizeof(ppid), "%d", (int)u->pid);
	assert_string_equal(proc_status(w, "PPid"), ppid);
	assert_string_equal(proc_status(w, "Seccomp"), "2");
	assert_string_equal(proc_status(w, "NoNewPrivs"), "1");
	/* No capability at all, also when the test runs as root (here without the agent user,
	 * so the worker keeps uid 0: the loud warning says so). */
	assert_string_equal(proc_status(w, "CapEff"), "0000000000000000");
	assert_string_equal(proc_status(w, "CapPrm"), "0000000000000000");
	if (geteuid() == 0) {
		assert_string_equal(proc_status(w, "CapBnd"), "0000000000000000");
		assert_non_null(strstr(u->err, "agent.warning user=mynaguard-agent"));
	}
	/* The monitor is not filtered (it writes sysfs); it parses nothing. */
	assert_string_equal(proc_status(u->pid, "Seccomp"), "0");
	/* The worker still decides: blocking goes through the monitor. */
	char *ifc = plug_stick(u, "1-1", "S1", "1");
	EXPECT_LOG(u, "action=deauthorized");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	g_free(ifc);
	stop_ok(u);
	assert_null(strstr(u->err, "monitor.worker-died"));
}

/* A dead worker (crash, seccomp kill) ends the monitor with an error, so systemd restarts it;
 * meanwhile nothing authorizes anything: the kernel default holds. */
static void test_worker_killed(void **state)
{
	struct umock *u = *state;

	umock_start_agent(u, POL_ALLOW);
	pid_t w = worker_pid(u);
	assert_int_equal(kill(w, SIGKILL), 0);
	assert_int_equal(umock_wait_exit(u, WAIT), 1);
	assert_non_null(strstr(u->err, "monitor.worker-died signal=KILL"));
	/* the device the policy would allow stays unauthorized */
	char *ifc = plug_stick(u, "1-1", "GOOD1", "0");
	usleep(300 * 1000);
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	assert_string_equal(umock_probe_file(u), "");
	g_free(ifc);
}

/* The filter holds: a worker that tries execve dies of it, and takes the monitor along. */
static void test_seccomp_kills(void **state)
{
	struct umock *u = *state;

	setenv("MYNAGUARDD_TEST_EXEC", "1", 1);
	umock_spawn_agent(u, POL_DEFAULT);
	unsetenv("MYNAGUARDD_TEST_EXEC");
	assert_int_equal(umock_wait_exit(u, WAIT), 1);
	char want[64];
	snprintf(want, sizeof(want), "worker.seccomp forbidden syscall=%05d", (int)SYS_execve);
	assert_non_null(strstr(u->err, want));
	assert_non_null(strstr(u->err, "monitor.worker-died status=159"));
	assert_null(strstr(u->out, "READY"));
}

/* --user naming a user that does not exist: refused before anything starts. */
static void test_user_missing(void **state)
{
	struct umock *u = *state;
	char *pol = umock_write_file(u, "policy.conf", POL_DEFAULT);
	char *argv[] = {getenv("MYNAGUARDD"), "--policy", pol, "--user", "no-such-user-mg", NULL};

	umock_spawn(u, argv);
	assert_int_equal(umock_wait_exit(u, WAIT), 2);
	assert_non_null(strstr(u->err, "--user no-such-user-mg: no such user"));
	assert_null(strstr(u->out, "READY"));
	free(pol);
}

/* ---- the fleet channel (docs/fleet.md): real bundles, throwaway keys ---- */

static void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ __attribute__((cleanup(freep)))

struct fleet {
	struct bundle_signer *root, *grant;
	char key_path[300];
	char grant_b64[45];
};

static void fleet_setup(struct umock *u, struct fleet *k)
{
	uint8_t pub[BUNDLE_PUBKEY_LEN];
	char b64[45];
	FILE *fp;

	assert_int_equal(bundle_signer_generate(&k->root), 0);
	assert_int_equal(bundle_signer_generate(&k->grant), 0);
	bundle_signer_pubkey(k->grant, pub);
	bundle_pubkey_to_base64(pub, k->grant_b64);
	bundle_signer_pubkey(k->root, pub);
	bundle_pubkey_to_base64(pub, b64);
	snprintf(k->key_path, sizeof(k->key_path), "%s/fleet-root.pub", u->tmp);
	fp = fopen(k->key_path, "w");
	assert_non_null(fp);
	fprintf(fp, "%s\n", b64);
	fclose(fp);
	u->fleet_key = k->key_path;
}

static void fleet_done(struct fleet *k)
{
	bundle_signer_free(k->root);
	bundle_signer_free(k->grant);
}

/* A group's base: mass storage and still images blocked, mass storage grantable. */
static char *fleet_base(const struct fleet *k, unsigned version, const char *terminals)
{
	char *text;

	assert_true(asprintf(&text,
			     "[usb]\nblock = mass_storage, still_image\n"
			     "[fleet]\ngroup = fukushi\nversion = %u\n"
			     "issued = 2026-12-01T09:00:00Z\nterminals = %s\ngrant_key = %s\n"
			     "grant_classes = mass_storage\ngrant_max_days = 366\n" CHECKS_OFF,
			     version, terminals, k->grant_b64) > 0);
	return text;
}

/* {"exceptions":[...]} with one exception for the stick 0781:5581 serial S1, or none. */
static char *fleet_json(const char *id, int64_t from, int64_t until)
{
	char *json;

	if (!id)
		return strdup("{\"exceptions\":[]}");
	assert_true(asprintf(&json,
			     "{\"exceptions\":[{\"id\":\"%s\",\"vendor\":\"0781\",\"product\":"
			     "\"5581\",\"serial\":\"S1\",\"hash\":null,\"class\":\"mass_storage\","
			     "\"users\":[],\"from\":%lld,\"until\":%lld,\"purpose\":\"test\","
			     "\"approved_by\":\"sato\",\"ledger\":null}]}",
			     id, (long long)from, (long long)until) > 0);
	return json;
}

/* Sign, build and drop the bundle into SPOOL/inbox/bundle as the uplink does (tmp + rename).
 * signer: the root key that signs the base (NULL = the pinned one). */
static void fleet_send(struct umock *u, const struct fleet *k, struct bundle_signer *signer,
		       const char *base, uint64_t version, const char *terminal, const char *json)
{
	uint8_t *sb = NULL, *b = NULL;
	size_t sblen = 0, blen = 0;
	char err[BUNDLE_ERR_MAX], tmp[400], dst[400];
	FILE *fp;

	assert_int_equal(
	    bundle_sign_base(signer ? signer : k->root, base, strlen(base), &sb, &sblen), 0);
	if (bundle_build(sb, sblen, k->grant, version, (int64_t)time(NULL), terminal, json,
			 strlen(json), &b, &blen, err, sizeof(err)) < 0) {
		fprintf(stderr, "bundle_build: %s\n", err);
		fail();
	}
	snprintf(tmp, sizeof(tmp), "%s/spool/inbox/.bundle.tmp", u->tmp);
	snprintf(dst, sizeof(dst), "%s/spool/inbox/bundle", u->tmp);
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(b, 1, blen, fp), blen);
	fclose(fp);
	assert_int_equal(rename(tmp, dst), 0);
	free(sb);
	free(b);
}

/* The n-th decision pass over the present devices is done (start, then one per reload): the
 * root hub's interface is decided once in each. Plugging a device before that races the scan. */
static void wait_scan(struct umock *u, size_t n)
{
	if (!umock_wait_err_n(u, "usb.allowed port=usb1 iface=1-0:1.0", n, WAIT)) {
		fprintf(stderr, "scan %zu not done\n--- log ---\n%s\n", n, u->err);
		fail();
	}
}

static char *policy_now(struct umock *u)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/policy.conf", u->tmp);
	return slurp(path);
}

static void test_fleet_apply(void **state)
{
	struct umock *u = *state;
	struct fleet k;
	char path[400];
	struct stat st;

	fleet_setup(u, &k);
	/* An install manifest that lists the policy (as the installer writes it). */
	snprintf(path, sizeof(path), "%s/state", u->tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/state/installed.sha256", u->tmp);
	FILE *mf = fopen(path, "w");
	assert_non_null(mf);
	fprintf(mf, "%064d  %s/policy.conf\n", 0, u->tmp);
	fclose(mf);
	umock_start_agent(u, POL_DEFAULT);
	_cleanup_free_ char *base = fleet_base(&k, 3, "t*");
	_cleanup_free_ char *json = fleet_json(NULL, 0, 0);
	fleet_send(u, &k, NULL, base, 10, "t1", json);
	EXPECT_LOG(u, "kind=bundle.applied");
	EXPECT_LOG(u,
		   "\"group\":\"fukushi\",\"base_version\":3,\"version\":10,\"policy_sha256\":\"");
	EXPECT_LOG(u, "agent.reload ok");
	/* a snapshot at once names the bundle (not only at the next report interval) */
	EXPECT_LOG(u, "\"bundle\":{\"group\":\"fukushi\",\"base_version\":3,\"version\":10,");
	wait_scan(u, 2);
	_cleanup_free_ char *pol = policy_now(u);
	assert_non_null(strstr(pol, "[terminal]\nid = t1\n"));
	assert_non_null(strstr(pol, "block = mass_storage, still_image"));
	snprintf(path, sizeof(path), "%s/state/bundle/current", u->tmp);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* agent.integrity will not call the signed change tampering: the manifest follows it. */
	EXPECT_LOG(u, "manifest=updated");
	snprintf(path, sizeof(path), "%s/state/installed.sha256", u->tmp);
	_cleanup_free_ char *manifest = slurp(path);
	assert_null(strstr(manifest, "0000000000000000"));
	/* The new policy is the one enforced: a camera is blocked now. */
	static const uint8_t CAM[1][3] = {{0x06, 0x01, 0x01}};
	char *dev = umock_add_device(u, ROOT, "1-3", "04a9", "3218", "C1", "1", CAM, 1, NULL);
	char *ifc = umock_add_iface(u, dev, "1-3:1.0", "06", "01", "01", NULL, "1");
	EXPECT_LOG(u, "usb.blocked port=1-3 iface=1-3:1.0");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	g_free(dev);
	g_free(ifc);
	stop_ok(u);

	/* At the next start the installed bundle is re-read: data.bundle in the snapshot. */
	free(u->out);
	free(u->err);
	u->out = u->err = NULL;
	u->out_len = u->err_len = 0;
	umock_spawn_agent(u, pol);
	assert_true(umock_wait_out(u, "READY\n", 20000));
	EXPECT_LOG(u, "fleet.current group=fukushi base_version=3 version=10 exceptions=0");
	EXPECT_LOG(u, "\"bundle\":{\"group\":\"fukushi\",\"base_version\":3,\"version\":10,"
		      "\"policy_sha256\":\"");
	/* The same bundle again is not news. */
	assert_int_equal(umock_count_err(u, "kind=bundle.refused"), 0);
	stop_ok(u);
	fleet_done(&k);
}

/* Each refused bundle: one bundle.refused event with its reason, the policy file untouched. */
static void expect_refused(struct umock *u, size_t n, const char *pol_before, const char *why)
{
	if (!umock_wait_err_n(u, "kind=bundle.refused", n, WAIT)) {
		fprintf(stderr, "no bundle.refused #%zu (%s)\n--- log ---\n%s\n", n, why, u->err);
		fail();
	}
	EXPECT_LOG(u, why);
	_cleanup_free_ char *pol = policy_now(u);
	assert_string_equal(pol, pol_before);
}

static void test_fleet_refused(void **state)
{
	struct umock *u = *state;
	struct fleet k;
	struct bundle_signer *other = NULL;

	fleet_setup(u, &k);
	assert_int_equal(bundle_signer_generate(&other), 0);
	umock_start_agent(u, POL_DEFAULT);
	_cleanup_free_ char *before = policy_now(u);
	_cleanup_free_ char *base = fleet_base(&k, 3, "t*");
	_cleanup_free_ char *none = fleet_json(NULL, 0, 0);
	int64_t now = (int64_t)time(NULL);

	/* a base signed by another root key */
	fleet_send(u, &k, other, base, 10, "t1", none);
	expect_refused(u, 1, before, "reason=\"root signature does not verify\"");
	/* for another terminal */
	fleet_send(u, &k, NULL, base, 11, "t2", none);
	expect_refused(u, 2, before, "reason=\"bundle is for terminal t2\"");
	/* a base that does not cover this terminal */
	_cleanup_free_ char *other_group = fleet_base(&k, 3, "kokuho-*");
	fleet_send(u, &k, NULL, other_group, 12, "t1", none);
	expect_refused(u, 3, before, "does not cover terminal t1");
	/* an exception longer than grant_max_days */
	_cleanup_free_ char *long_ex = fleet_json("EX-LONG", now, now + 400 * 86400LL);
	fleet_send(u, &k, NULL, base, 13, "t1", long_ex);
	expect_refused(u, 4, before, "exception EX-LONG: longer than");
	assert_int_equal(umock_count_err(u, "kind=bundle.applied"), 0);

	/* rollback: version 20 applied, then 19 refused */
	fleet_send(u, &k, NULL, base, 20, "t1", none);
	EXPECT_LOG(u, "kind=bundle.applied");
	_cleanup_free_ char *applied = policy_now(u);
	fleet_send(u, &k, NULL, base, 19, "t1", none);
	expect_refused(u, 5, applied, "version 19 is not newer than the applied 20");
	stop_ok(u);
	bundle_signer_free(other);
	fleet_done(&k);
}

static void test_fleet_no_key(void **state)
{
	struct umock *u = *state;
	struct fleet k;

	fleet_setup(u, &k);
	u->fleet_key = NULL; /* nothing pinned (and no default key on the test machine) */
	umock_start_agent(u, POL_DEFAULT);
	_cleanup_free_ char *before = policy_now(u);
	_cleanup_free_ char *base = fleet_base(&k, 1, "t1");
	_cleanup_free_ char *none = fleet_json(NULL, 0, 0);
	fleet_send(u, &k, NULL, base, 1, "t1", none);
	expect_refused(u, 1, before, "no fleet root key is pinned");
	stop_ok(u);
	fleet_done(&k);
}

/* An exception authorizes the stick's mass-storage interface, and its end deauthorizes it. */
static void test_fleet_exception_expires(void **state)
{
	struct umock *u = *state;
	struct fleet k;
	int64_t now = (int64_t)time(NULL);

	fleet_setup(u, &k);
	umock_start_agent(u, POL_DEFAULT);
	_cleanup_free_ char *base = fleet_base(&k, 1, "t1");
	_cleanup_free_ char *json = fleet_json("EX-2026-0001", now - 60, now + 5);
	fleet_send(u, &k, NULL, base, 1, "t1", json);
	EXPECT_LOG(u, "kind=bundle.applied");
	wait_scan(u, 2);

	char *ifc = plug_stick(u, "1-1", "S1", "0");
	EXPECT_LOG(u, "usb.allowed port=1-1 iface=1-1:1.0 vendor=0781 product=5581 serial=\"S1\"");
	EXPECT_LOG(u, "rule=\"exception EX-2026-0001: until ");
	EXPECT_LOG(u, "\"exception\":{\"id\":\"EX-2026-0001\"");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "1");
	/* another stick of the same model: not covered */
	char *other = plug_stick(u, "1-2", "S2", "0");
	EXPECT_LOG(u, "usb.blocked port=1-2 iface=1-2:1.0");
	assert_string_equal(umock_attr(u, other, "authorized"), "0");

	/* at `until`: deauthorized at once, one event */
	EXPECT_LOG(u, "kind=usb.exception_expired");
	EXPECT_LOG(u, "\"rule\":\"exception EX-2026-0001: expired\"");
	EXPECT_LOG(u, "\"classes\":[\"08:06:50\"]"); /* the class it had, not [] */
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	assert_int_equal(umock_count_err(u, "kind=usb.exception_revoked"), 0);
	g_free(ifc);
	g_free(other);
	stop_ok(u);
	fleet_done(&k);
}

/* A newer bundle without the exception revokes it at once. */
static void test_fleet_exception_revoked(void **state)
{
	struct umock *u = *state;
	struct fleet k;
	int64_t now = (int64_t)time(NULL);

	fleet_setup(u, &k);
	umock_start_agent(u, POL_DEFAULT);
	_cleanup_free_ char *base = fleet_base(&k, 1, "t1");
	_cleanup_free_ char *json = fleet_json("EX-2026-0002", now - 60, now + 3600);
	_cleanup_free_ char *none = fleet_json(NULL, 0, 0);
	fleet_send(u, &k, NULL, base, 1, "t1", json);
	EXPECT_LOG(u, "kind=bundle.applied");
	wait_scan(u, 2);
	char *ifc = plug_stick(u, "1-1", "S1", "0");
	EXPECT_LOG(u, "rule=\"exception EX-2026-0002: until ");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "1");

	fleet_send(u, &k, NULL, base, 2, "t1", none);
	EXPECT_LOG(u, "kind=usb.exception_revoked");
	EXPECT_LOG(u, "\"exception\":{\"id\":\"EX-2026-0002\"");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	g_free(ifc);
	stop_ok(u);
	fleet_done(&k);
}

/* The wall clock set back behind the persisted floor: the exception, over by the trusted clock,
 * authorizes nothing. */
static void test_fleet_clock_back(void **state)
{
	struct umock *u = *state;
	struct fleet k;
	int64_t now = (int64_t)time(NULL);
	char path[400];
	FILE *fp;

	fleet_setup(u, &k);
	/* The agent saw a time two hours ahead of this clock before. */
	snprintf(path, sizeof(path), "%s/state", u->tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/state/time-floor", u->tmp);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "%lld\n", (long long)(now + 7200));
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);

	umock_start_agent(u, POL_DEFAULT);
	EXPECT_LOG(u, "tclock.behind");
	_cleanup_free_ char *base = fleet_base(&k, 1, "t1");
	_cleanup_free_ char *json = fleet_json("EX-2026-0003", now - 60, now + 3600);
	fleet_send(u, &k, NULL, base, 1, "t1", json);
	EXPECT_LOG(u, "kind=bundle.applied");
	wait_scan(u, 2);
	char *ifc = plug_stick(u, "1-1", "S1", "0");
	EXPECT_LOG(u, "usb.blocked port=1-1 iface=1-1:1.0");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	assert_null(strstr(u->err, "rule=\"exception EX-2026-0003"));
	/* the floor is never lowered */
	_cleanup_free_ char *floor = slurp(path);
	assert_true(strtoll(floor, NULL, 10) >= now + 7200);
	g_free(ifc);
	stop_ok(u);
	fleet_done(&k);
}

/* The users list: enforced against the user of seat0's active session (sd-login reads
 * /run/systemd/seats/seat0). The agent runs in its own user and mount namespace with a seats
 * directory of the test's bound over /run/systemd, so the test decides who is logged in. */
static void seat_write(const char *dir, const char *text)
{
	char tmp[400], dst[400];
	FILE *fp;

	snprintf(tmp, sizeof(tmp), "%s/systemd/seats/.seat0.tmp", dir);
	snprintf(dst, sizeof(dst), "%s/systemd/seats/seat0", dir);
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(rename(tmp, dst), 0); /* as logind does */
}

/* RUN, RUN/systemd and RUN/systemd/seats */
static void seat_dir(const char *run)
{
	char p[400];

	assert_int_equal(mkdir(run, 0755), 0);
	snprintf(p, sizeof(p), "%s/systemd", run);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/systemd/seats", run);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void test_fleet_users(void **state)
{
	struct umock *u = *state;
	struct fleet k;
	int64_t now = (int64_t)time(NULL);
	char run[300], path[400];
	static const char script[] =
	    "if [ -d /run/systemd ]; then mount --bind \"$0/systemd\" "
	    "/run/systemd; else mount --bind \"$0\" /run; fi && exec \"$@\"";

	snprintf(run, sizeof(run), "%s/run", u->tmp);
	seat_dir(run);
	/* root is at the desk (the agent's namespace maps it; names come from /etc/passwd) */
	seat_write(run, "ACTIVE=c1\nACTIVE_UID=0\n");
	/* A private mount namespace for the fake seat; as root (CI runs in a chroot, where user
	 * namespaces are refused) no user namespace is needed. */
	const char *wrap_user[] = {"/usr/bin/unshare",
				   "--user",
				   "--map-root-user",
				   "--mount",
				   "--",
				   "/bin/sh",
				   "-c",
				   script,
				   run,
				   NULL};
	const char *wrap_root[] = {
	    "/usr/bin/unshare", "--mount", "--", "/bin/sh", "-c", script, run, NULL};
	u->wrap = geteuid() == 0 ? wrap_root : wrap_user;

	fleet_setup(u, &k);
	umock_start_agent(u, POL_DEFAULT);
	_cleanup_free_ char *base = fleet_base(&k, 1, "t1");
	char *json;
	assert_true(
	    asprintf(&json,
		     "{\"exceptions\":[{\"id\":\"EX-A\",\"vendor\":\"0781\",\"product\":"
		     "\"5581\",\"serial\":\"S1\",\"hash\":null,\"class\":\"mass_storage\","
		     "\"users\":[\"root\"],\"from\":%lld,\"until\":%lld,\"purpose\":\"t\","
		     "\"approved_by\":\"sato\",\"ledger\":null},"
		     "{\"id\":\"EX-B\",\"vendor\":\"0781\",\"product\":\"5581\",\"serial\":"
		     "\"S2\",\"hash\":null,\"class\":\"mass_storage\",\"users\":[\"tanaka\"],"
		     "\"from\":%lld,\"until\":%lld,\"purpose\":\"t\",\"approved_by\":\"sato\","
		     "\"ledger\":null}]}",
		     (long long)now - 60, (long long)now + 3600, (long long)now - 60,
		     (long long)now + 3600) > 0);
	fleet_send(u, &k, NULL, base, 1, "t1", json);
	free(json);
	EXPECT_LOG(u, "kind=bundle.applied");
	wait_scan(u, 2);

	/* listed user at the seat: authorized */
	char *s1 = plug_stick(u, "1-1", "S1", "0");
	EXPECT_LOG(u, "rule=\"exception EX-A: until ");
	EXPECT_LOG(u, "\"users\":[\"root\"],\"users_enforced\":true");
	assert_string_equal(umock_attr(u, s1, "authorized"), "1");
	/* the other stick's exception is for tanaka: stays blocked */
	char *s2 = plug_stick(u, "1-2", "S2", "0");
	EXPECT_LOG(u, "fleet.exception id=EX-B not applied: the active local session user is not "
		      "listed");
	EXPECT_LOG(u, "usb.blocked port=1-2 iface=1-2:1.0");
	assert_string_equal(umock_attr(u, s2, "authorized"), "0");

	/* another user takes the seat: S1 closes at once */
	seat_write(run, "ACTIVE=c2\nACTIVE_UID=65534\n");
	EXPECT_LOG(u, "rule=\"exception EX-A: session user not listed\"");
	assert_string_equal(umock_attr(u, s1, "authorized"), "0");
	/* nobody at the seat: fails closed, and root coming back opens it again */
	snprintf(path, sizeof(path), "%s/systemd/seats/seat0", run);
	assert_int_equal(unlink(path), 0);
	seat_write(run, "ACTIVE=c3\nACTIVE_UID=0\n");
	if (!umock_wait_err_n(u, "rule=\"exception EX-A: until ", 2, WAIT)) {
		fprintf(stderr, "S1 not opened again\n--- log ---\n%s\n", u->err);
		fail();
	}
	assert_string_equal(umock_attr(u, s1, "authorized"), "1");
	g_free(s1);
	g_free(s2);
	stop_ok(u);
	fleet_done(&k);
}

/* Without any active session on seat0, an exception with a users list opens nothing. */
static void test_fleet_users_no_session(void **state)
{
	struct umock *u = *state;
	struct fleet k;
	int64_t now = (int64_t)time(NULL);
	char run[300];
	static const char script[] =
	    "if [ -d /run/systemd ]; then mount --bind \"$0/systemd\" "
	    "/run/systemd; else mount --bind \"$0\" /run; fi && exec \"$@\"";

	snprintf(run, sizeof(run), "%s/run", u->tmp);
	seat_dir(run);
	/* A private mount namespace for the fake seat; as root (CI runs in a chroot, where user
	 * namespaces are refused) no user namespace is needed. */
	const char *wrap_user[] = {"/usr/bin/unshare",
				   "--user",
				   "--map-root-user",
				   "--mount",
				   "--",
				   "/bin/sh",
				   "-c",
				   script,
				   run,
				   NULL};
	const char *wrap_root[] = {
	    "/usr/bin/unshare", "--mount", "--", "/bin/sh", "-c", script, run, NULL};
	u->wrap = geteuid() == 0 ? wrap_root : wrap_user;

	fleet_setup(u, &k);
	umock_start_agent(u, POL_DEFAULT);
	_cleanup_free_ char *base = fleet_base(&k, 1, "t1");
	char *json;
	assert_true(asprintf(&json,
			     "{\"exceptions\":[{\"id\":\"EX-A\",\"vendor\":\"0781\",\"product\":"
			     "\"5581\",\"serial\":\"S1\",\"hash\":null,\"class\":\"mass_storage\","
			     "\"users\":[\"root\"],\"from\":%lld,\"until\":%lld,\"purpose\":\"t\","
			     "\"approved_by\":\"sato\",\"ledger\":null}]}",
			     (long long)now - 60, (long long)now + 3600) > 0);
	fleet_send(u, &k, NULL, base, 1, "t1", json);
	free(json);
	EXPECT_LOG(u, "kind=bundle.applied");
	wait_scan(u, 2);
	char *s1 = plug_stick(u, "1-1", "S1", "0");
	EXPECT_LOG(u, "fleet.exception id=EX-A not applied: no active local session user");
	EXPECT_LOG(u, "usb.blocked port=1-1 iface=1-1:1.0");
	assert_string_equal(umock_attr(u, s1, "authorized"), "0");
	g_free(s1);
	stop_ok(u);
	fleet_done(&k);
}

/* An exception that begins later: the stick plugged before is opened when it begins. */
static void test_fleet_exception_begins(void **state)
{
	struct umock *u = *state;
	struct fleet k;
	int64_t now = (int64_t)time(NULL);

	fleet_setup(u, &k);
	umock_start_agent(u, POL_DEFAULT);
	_cleanup_free_ char *base = fleet_base(&k, 1, "t1");
	_cleanup_free_ char *json = fleet_json("EX-LATER", now + 4, now + 3600);
	fleet_send(u, &k, NULL, base, 1, "t1", json);
	EXPECT_LOG(u, "kind=bundle.applied");
	wait_scan(u, 2);
	char *ifc = plug_stick(u, "1-1", "S1", "0");
	EXPECT_LOG(u, "usb.blocked port=1-1 iface=1-1:1.0");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "0");
	EXPECT_LOG(u, "fleet.exception-began");
	EXPECT_LOG(u, "rule=\"exception EX-LATER: until ");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "1");
	g_free(ifc);
	stop_ok(u);
	fleet_done(&k);
}

/* A --fleet-key that cannot be read is a usage error, before anything starts. */
static void test_fleet_bad_key(void **state)
{
	struct umock *u = *state;
	char *bad = umock_write_file(u, "bad.pub", "not base64 at all\n");

	u->fleet_key = "/nonexistent/fleet-root.pub";
	umock_spawn_agent(u, POL_DEFAULT);
	assert_int_equal(umock_wait_exit(u, WAIT), 2);
	assert_non_null(strstr(u->err, "--fleet-key /nonexistent/fleet-root.pub"));
	u->fleet_key = bad;
	umock_spawn_agent(u, POL_DEFAULT);
	assert_int_equal(umock_wait_exit(u, WAIT), 2);
	assert_non_null(strstr(u->err, "bad.pub"));
	u->fleet_key = NULL;
	free(bad);
}

/* A bundle that arrived while the agent was down is taken at start; the installed bundle's
 * exceptions hold across a restart. */
static void test_fleet_at_start(void **state)
{
	struct umock *u = *state;
	struct fleet k;
	int64_t now = (int64_t)time(NULL);
	char path[400];

	fleet_setup(u, &k);
	snprintf(path, sizeof(path), "%s/spool", u->tmp);
	assert_int_equal(mkdir(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/spool/inbox", u->tmp);
	assert_int_equal(mkdir(path, 0770), 0);
	_cleanup_free_ char *base = fleet_base(&k, 1, "t1");
	_cleanup_free_ char *json = fleet_json("EX-2026-0009", now - 60, now + 3600);
	fleet_send(u, &k, NULL, base, 1, "t1", json);

	umock_start_agent(u, POL_DEFAULT);
	EXPECT_LOG(u, "kind=bundle.applied");
	wait_scan(u, 2);
	char *ifc = plug_stick(u, "1-1", "S1", "0");
	EXPECT_LOG(u, "rule=\"exception EX-2026-0009: until ");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "1");
	stop_ok(u);
	_cleanup_free_ char *pol = policy_now(u);

	/* restarted with the stick still in: the exception is loaded before the first decision */
	umock_set_attr(u, ifc, "authorized", "0");
	free(u->out);
	free(u->err);
	u->out = u->err = NULL;
	u->out_len = u->err_len = 0;
	umock_spawn_agent(u, pol);
	assert_true(umock_wait_out(u, "READY\n", 20000));
	EXPECT_LOG(u, "fleet.current group=fukushi base_version=1 version=1 exceptions=1");
	EXPECT_LOG(u, "rule=\"exception EX-2026-0009: until ");
	assert_string_equal(umock_attr(u, ifc, "authorized"), "1");
	assert_int_equal(umock_count_err(u, "kind=bundle."), 0); /* the inbox is not news */
	g_free(ifc);
	stop_ok(u);
	fleet_done(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_storage_blocked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keyboard_untouched, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_composite, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smartcard_untouched, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_allow_listed_probed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_phone_camera_net_default, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_phone_camera_net_extended, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_coldplug, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plug_during_scan, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plug_burst_at_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_no_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_descriptors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_and_bad_policy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctl_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctl_allow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctl_list_reader_hint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_multi_siblings_before_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_multi_late_sibling_reprobe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shipped_vendor_class, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_compliance_mtp_phone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_split_sandboxed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_worker_killed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_user_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_seccomp_kills, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet_apply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet_no_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet_bad_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet_exception_expires, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet_exception_revoked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet_exception_begins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet_at_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet_clock_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet_users, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet_users_no_session, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
