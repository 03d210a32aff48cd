/* SPDX-License-Identifier: MIT */
/* Unit tests of the agent's USB pieces: descriptor parser, device strings, the decision. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "usb_desc.h"
#include "usb_dev.h"
#include "usb_str.h"

/* Device descriptor + one configuration with the given interfaces (cls, sub, proto triples). */
static size_t build_desc(uint8_t *buf, uint16_t vid, uint16_t pid, const uint8_t (*ifs)[3],
			 size_t n)
{
	size_t o = 0, cfg;
	const uint8_t dev[18] = {18,
				 1,
				 0x00,
				 0x02,
				 0,
				 0,
				 0,
				 64,
				 (uint8_t)vid,
				 (uint8_t)(vid >> 8),
				 (uint8_t)pid,
				 (uint8_t)(pid >> 8),
				 0x00,
				 0x01,
				 1,
				 2,
				 3,
				 1};

	memcpy(buf, dev, sizeof(dev));
	o = sizeof(dev);
	cfg = o;
	const uint8_t c[9] = {9, 2, 0, 0, (uint8_t)n, 1, 0, 0x80, 50};
	memcpy(buf + o, c, sizeof(c));
	o += sizeof(c);
	for (size_t i = 0; i < n; i++) {
		const uint8_t d[9] = {9, 4, (uint8_t)i, 0, 1, ifs[i][0], ifs[i][1], ifs[i][2], 0};
		const uint8_t ep[7] = {7, 5, 0x81, 2, 0, 2, 0};
		memcpy(buf + o, d, sizeof(d));
		o += sizeof(d);
		memcpy(buf + o, ep, sizeof(ep));
		o += sizeof(ep);
	}
	buf[cfg + 2] = (uint8_t)(o - cfg);
	buf[cfg + 3] = (uint8_t)((o - cfg) >> 8);
	return o;
}

static void test_desc_composite(void **state)
{
	const uint8_t ifs[2][3] = {{0x03, 0x01, 0x01}, {0x08, 0x06, 0x50}};
	uint8_t buf[256];
	struct usb_desc d;
	size_t n = build_desc(buf, 0x0781, 0x5581, ifs, 2);

	(void)state;
	assert_int_equal(usb_desc_parse(buf, n, &d), 0);
	assert_int_equal(d.vendor, 0x0781);
	assert_int_equal(d.product, 0x5581);
	assert_int_equal(d.n_ifaces, 2);
	assert_int_equal(d.ifaces[0].cls, 0x03);
	assert_int_equal(d.ifaces[1].cls, 0x08);
	assert_int_equal(d.ifaces[1].subclass, 0x06);
	assert_int_equal(d.ifaces[1].protocol, 0x50);
	assert_int_equal(d.ifaces[1].config, 1);
}

static void test_desc_malformed(void **state)
{
	const uint8_t ifs[1][3] = {{0x08, 0x06, 0x50}};
	uint8_t buf[256], bad[256];
	struct usb_desc d;
	size_t n = build_desc(buf, 1, 2, ifs, 1);

	(void)state;
	/* short device descriptor */
	assert_int_equal(usb_desc_parse(buf, 17, &d), -EBADMSG);
	/* zero-length descriptor would loop forever */
	memcpy(bad, buf, n);
	bad[18 + 9] = 0;
	assert_int_equal(usb_desc_parse(bad, n, &d), -EBADMSG);
	/* length beyond the end */
	memcpy(bad, buf, n);
	bad[18 + 9] = 200;
	assert_int_equal(usb_desc_parse(bad, n, &d), -EBADMSG);
	/* truncated in the middle of an interface descriptor */
	assert_int_equal(usb_desc_parse(buf, 18 + 9 + 5, &d), -EBADMSG);
	/* interface before any configuration */
	memcpy(bad, buf, 18);
	memcpy(bad + 18, buf + 27, 9);
	assert_int_equal(usb_desc_parse(bad, 27, &d), -EBADMSG);
	/* a second device descriptor */
	memcpy(bad, buf, n);
	memcpy(bad + n, buf, 18);
	assert_int_equal(usb_desc_parse(bad, n + 18, &d), -EBADMSG);
	/* too big */
	assert_int_equal(usb_desc_parse(buf, USB_DESC_MAX_BYTES + 1, &d), -E2BIG);
}

static void test_desc_too_many_ifaces(void **state)
{
	static uint8_t ifs[USB_DESC_MAX_IFACES + 1][3];
	static uint8_t buf[18 + 9 + (USB_DESC_MAX_IFACES + 1) * 16];
	struct usb_desc d;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(ifs) / sizeof(ifs[0]); i++)
		ifs[i][0] = 0x03;
	n = build_desc(buf, 1, 2, (const uint8_t(*)[3])ifs, USB_DESC_MAX_IFACES);
	assert_int_equal(usb_desc_parse(buf, n, &d), 0);
	assert_int_equal(d.n_ifaces, USB_DESC_MAX_IFACES);
	n = build_desc(buf, 1, 2, (const uint8_t(*)[3])ifs, USB_DESC_MAX_IFACES + 1);
	assert_int_equal(usb_desc_parse(buf, n, &d), -E2BIG);
}

static void test_str_utf8(void **state)
{
	(void)state;
	assert_true(usb_str_valid_utf8("SanDisk", 7));
	assert_true(usb_str_valid_utf8("\xe7\xb7\x8f\xe5\x8b\x99", 6)); /* 総務 */
	assert_false(usb_str_valid_utf8("\xff\xfe", 2));
	assert_false(usb_str_valid_utf8("\xc0\xaf", 2));	 /* overlong '/' */
	assert_false(usb_str_valid_utf8("\xed\xa0\x80", 3));	 /* surrogate */
	assert_false(usb_str_valid_utf8("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(usb_str_valid_utf8("\xe7\xb7", 2));	 /* truncated */
}

static void test_str_escape(void **state)
{
	char buf[64];

	(void)state;
	assert_string_equal(usb_str_escape("abc", buf, sizeof(buf)), "\"abc\"");
	assert_string_equal(usb_str_escape(NULL, buf, sizeof(buf)), "-");
	assert_string_equal(usb_str_escape("a\"b\\c\n\xff", buf, sizeof(buf)),
			    "\"a\\\"b\\\\c\\x0a\\xff\"");
	/* truncation keeps it a closed, quoted token */
	char small[12];
	usb_str_escape("0123456789abcdef", small, sizeof(small));
	assert_string_equal(small, "\"012345...\"");
	/* a Japanese product name stays readable; the cut never splits a character */
	assert_string_equal(usb_str_escape("\xe6\x9d\xb1\xe8\x8a\x9d USB", buf, sizeof(buf)),
			    "\"\xe6\x9d\xb1\xe8\x8a\x9d USB\"");
	assert_string_equal(usb_str_escape("\xe6\x9d\xb1\xe8\x8a\x9d USB", small, 10),
			    "\"\xe6\x9d\xb1...\"");
}

static void test_str_sanitize(void **state)
{
	char *s;

	(void)state;
	s = usb_str_sanitize("ok\xff\x01z", 64);
	assert_string_equal(s, "ok\xef\xbf\xbd\xef\xbf\xbdz");
	free(s);
	/* cut at a character boundary, never inside 総 */
	s = usb_str_sanitize("ab\xe7\xb7\x8f", 4);
	assert_string_equal(s, "ab");
	free(s);
	assert_null(usb_str_sanitize(NULL, 4));
}

static void test_hex(void **state)
{
	(void)state;
	assert_int_equal(usb_dev_parse_hex4("0781"), 0x0781);
	assert_int_equal(usb_dev_parse_hex4("078"), -1);
	assert_int_equal(usb_dev_parse_hex4("07811"), -1);
	assert_int_equal(usb_dev_parse_hex4("zz81"), -1);
	assert_int_equal(usb_dev_parse_hex2("08"), 8);
	assert_int_equal(usb_dev_parse_hex2("8"), -1);
	assert_int_equal(usb_dev_parse_hex2("0x"), -1);
	char cls[12];
	usb_dev_class_string(8, 6, 0x50, cls);
	assert_string_equal(cls, "08:06:50");
	usb_dev_class_string(-1, 6, 0x50, cls);
	assert_string_equal(cls, "??:06:50");
}

static struct policy *load(const char *text)
{
	struct policy *p = NULL;
	struct policy_errors errs = {0};

	assert_int_equal(policy_parse_string("t.conf", text, strlen(text), &p, &errs), 0);
	policy_errors_clear(&errs);
	return p;
}

static const char base_policy[] = "[terminal]\nid = t1\n[usb]\nblock = mass_storage, mtp\n"
				  "allow = 0781:5581 serial=GOOD1\n";

static void fill_dev(struct usb_dev_info *d, uint16_t vid, uint16_t pid, const char *serial)
{
	memset(d, 0, sizeof(*d));
	strcpy(d->port, "1-1");
	d->have_ids = true;
	d->vendor = vid;
	d->product = pid;
	d->serial = (char *)serial;
	d->authorized = 1;
}

static void fill_iface(struct usb_iface_info *i, int cls, int sub, int proto, const char *label)
{
	memset(i, 0, sizeof(*i));
	strcpy(i->name, "1-1:1.0");
	i->cls = (int16_t)cls;
	i->subclass = (int16_t)sub;
	i->protocol = (int16_t)proto;
	i->label = (char *)label;
	i->authorized = 1;
}

static void test_decide_iface(void **state)
{
	struct policy *p = load(base_policy);
	struct usb_dev_info dev;
	struct usb_iface_info ifc;
	struct policy_usb_decision dec;

	(void)state;
	/* storage blocked */
	fill_dev(&dev, 0x0781, 0x5581, "OTHER");
	fill_iface(&ifc, 0x08, 0x06, 0x50, NULL);
	usb_dev_decide_iface(p, &dev, &ifc, &dec);
	assert_int_equal(dec.verdict, POLICY_USB_BLOCK);
	assert_int_equal(dec.reason, POLICY_USB_REASON_BLOCKED_CLASS);
	/* allow-listed serial */
	dev.serial = "GOOD1";
	usb_dev_decide_iface(p, &dev, &ifc, &dec);
	assert_int_equal(dec.verdict, POLICY_USB_ALLOW);
	assert_int_equal(dec.reason, POLICY_USB_REASON_ALLOW_LIST);
	/* keyboard */
	fill_iface(&ifc, 0x03, 0x01, 0x01, NULL);
	usb_dev_decide_iface(p, &dev, &ifc, &dec);
	assert_int_equal(dec.verdict, POLICY_USB_ALLOW);
	assert_int_equal(dec.reason, POLICY_USB_REASON_NOT_BLOCKED);
	/* MTP by interface string */
	fill_dev(&dev, 0x0fce, 0x0193, "X");
	fill_iface(&ifc, 0xff, 0xff, 0x00, "MTP");
	usb_dev_decide_iface(p, &dev, &ifc, &dec);
	assert_int_equal(dec.verdict, POLICY_USB_BLOCK);
	/* MTP by udev property */
	fill_iface(&ifc, 0xff, 0xff, 0x00, NULL);
	dev.mtp = true;
	usb_dev_decide_iface(p, &dev, &ifc, &dec);
	assert_int_equal(dec.verdict, POLICY_USB_BLOCK);
	/* unknown class: fail closed */
	dev.mtp = false;
	fill_iface(&ifc, -1, -1, -1, NULL);
	usb_dev_decide_iface(p, &dev, &ifc, &dec);
	assert_int_equal(dec.verdict, POLICY_USB_BLOCK);
	assert_int_equal(dec.reason, POLICY_USB_REASON_INVALID);
	policy_free(p);
}

static void test_decide_hostile(void **state)
{
	struct policy *p = load(base_policy);
	struct usb_dev_info dev;
	struct usb_iface_info ifc;
	struct policy_usb_decision dec;

	(void)state;
	/* A keyboard whose device attributes are impossible is blocked too: fail closed. */
	fill_dev(&dev, 0x046d, 0xc31c, NULL);
	strcpy(dev.invalid, "serial is not valid UTF-8");
	fill_iface(&ifc, 0x03, 0x01, 0x01, NULL);
	usb_dev_decide_iface(p, &dev, &ifc, &dec);
	assert_int_equal(dec.verdict, POLICY_USB_BLOCK);
	assert_int_equal(dec.reason, POLICY_USB_REASON_INVALID);
	assert_non_null(strstr(dec.rule, "UTF-8"));
	/* interface-level */
	dev.invalid[0] = '\0';
	strcpy(ifc.invalid, "interface is not valid UTF-8");
	usb_dev_decide_iface(p, &dev, &ifc, &dec);
	assert_int_equal(dec.verdict, POLICY_USB_BLOCK);
	policy_free(p);
}

static void test_decide_descriptors(void **state)
{
	const uint8_t kbd[1][3] = {{0x03, 0x01, 0x01}};
	const uint8_t combo[2][3] = {{0x03, 0x01, 0x01}, {0x08, 0x06, 0x50}};
	struct policy *p = load(base_policy);
	struct policy_usb_decision dec[USB_DESC_MAX_IFACES];
	struct usb_dev_info dev;
	uint8_t buf[256];
	size_t n;
	int blocking;

	(void)state;
	fill_dev(&dev, 0x1234, 0x0001, NULL);
	assert_int_equal(usb_desc_parse(buf, build_desc(buf, 0x1234, 1, kbd, 1), &dev.desc), 0);
	usb_dev_decide_descriptors(p, &dev, dec, &n, &blocking);
	assert_int_equal(n, 1);
	assert_int_equal(blocking, -1);

	assert_int_equal(usb_desc_parse(buf, build_desc(buf, 0x1234, 1, combo, 2), &dev.desc), 0);
	usb_dev_decide_descriptors(p, &dev, dec, &n, &blocking);
	assert_int_equal(n, 2);
	assert_int_equal(blocking, 1);

	/* unparsable descriptors: blocked */
	dev.desc_error = -EBADMSG;
	usb_dev_decide_descriptors(p, &dev, dec, &n, &blocking);
	assert_int_equal(n, 1);
	assert_int_equal(blocking, 0);
	assert_int_equal(dec[0].reason, POLICY_USB_REASON_INVALID);
	policy_free(p);
}

static void put(const char *dir, const char *name, const void *data, size_t len)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void put_str(const char *dir, const char *name, const char *text)
{
	put(dir, name, text, strlen(text));
}

/* The directory reader (what the compliance check walks) and the name lookup with and without
 * udev: a fixture tree that udev does not know is read as is without udev, and decided
 * blocked (fail closed) when udev was asked and could not vouch for its properties. */
static void test_read_dir_and_name(void **state)
{
	static const uint8_t IF_VENDOR[1][3] = {{0xff, 0xff, 0x00}};
	char root[] = "/tmp/mg-usb-unit-XXXXXX";
	char dev[256], ifc[512];
	uint8_t desc[128];
	size_t n = build_desc(desc, 0x054c, 0x06c1, IF_VENDOR, 1);
	struct usb_dev_info di;
	struct usb_iface_info ii;
	struct policy_usb_decision dec;
	struct policy *p = NULL;
	struct policy_errors errs = {0};
	static const char pol[] = "[terminal]\nid = t\n[usb]\nblock = vendor_specific\n"
				  "reader = 054c:06c1 name=PaSoRi\n";
	struct udev *udev;

	assert_int_equal(policy_parse_string("t.conf", pol, strlen(pol), &p, &errs), 0);
	assert_non_null(mkdtemp(root));
	snprintf(dev, sizeof(dev), "%s/sys", root);
	assert_int_equal(mkdir(dev, 0755), 0);
	snprintf(dev, sizeof(dev), "%s/sys/bus", root);
	assert_int_equal(mkdir(dev, 0755), 0);
	snprintf(dev, sizeof(dev), "%s/sys/bus/usb", root);
	assert_int_equal(mkdir(dev, 0755), 0);
	snprintf(dev, sizeof(dev), "%s/sys/bus/usb/devices", root);
	assert_int_equal(mkdir(dev, 0755), 0);
	/* a name no real machine has, so the udev lookup below cannot find a real device */
	snprintf(dev, sizeof(dev), "%s/sys/bus/usb/devices/9-9.9.9", root);
	assert_int_equal(mkdir(dev, 0755), 0);
	put_str(dev, "idVendor", "054c\n");
	put_str(dev, "idProduct", "06c1\n");
	put_str(dev, "serial", "R1\n");
	put_str(dev, "authorized", "1\n");
	put(dev, "descriptors", desc, n);
	snprintf(ifc, sizeof(ifc), "%s/9-9.9.9:1.0", dev);
	assert_int_equal(mkdir(ifc, 0755), 0);
	put_str(ifc, "bInterfaceClass", "ff\n");
	put_str(ifc, "bInterfaceSubClass", "ff\n");
	put_str(ifc, "bInterfaceProtocol", "00\n");
	put_str(ifc, "authorized", "1\n");

	/* the directory reader */
	assert_int_equal(usb_dev_read_dir(dev, "9-9.9.9", &di), 0);
	assert_string_equal(di.invalid, "");
	assert_true(di.have_ids);
	assert_int_equal(di.vendor, 0x054c);
	assert_string_equal(di.serial, "R1");
	assert_int_equal(di.authorized, 1);
	assert_true(di.have_hash);
	assert_int_equal(di.desc_error, 0);
	assert_false(di.root_hub);
	assert_false(di.mtp);
	usb_dev_info_clear(&di);
	assert_int_equal(usb_iface_read_dir(ifc, "9-9.9.9:1.0", &ii), 0);
	assert_int_equal(ii.cls, 0xff);
	assert_int_equal(ii.subclass, 0xff);
	assert_int_equal(ii.protocol, 0x00);
	assert_null(ii.label);
	assert_int_equal(ii.authorized, 1);

	/* by name, without udev: the fixture as is; a listed reader is allowed */
	assert_int_equal(usb_dev_read_name(NULL, root, "9-9.9.9", &di), 0);
	assert_string_equal(di.port, "9-9.9.9");
	assert_string_equal(di.invalid, "");
	usb_dev_decide_iface(p, &di, &ii, &dec);
	assert_int_equal(dec.verdict, POLICY_USB_ALLOW);
	assert_int_equal(dec.reason, POLICY_USB_REASON_READER);
	usb_dev_info_clear(&di);

	/* by name, with udev that does not know it: blocked, whatever the policy says */
	udev = udev_new();
	assert_non_null(udev);
	assert_int_equal(usb_dev_read_name(udev, root, "9-9.9.9", &di), 0);
	assert_string_equal(di.invalid, "udev does not know the device (properties unknown)");
	usb_dev_decide_iface(p, &di, &ii, &dec);
	assert_int_equal(dec.verdict, POLICY_USB_BLOCK);
	assert_int_equal(dec.reason, POLICY_USB_REASON_INVALID);
	usb_dev_info_clear(&di);
	udev_unref(udev);

	/* a name that is a path is refused; a missing device is read as all-missing (invalid) */
	assert_int_equal(usb_dev_read_name(NULL, root, "../x", &di), -EINVAL);
	assert_int_equal(usb_dev_read_name(NULL, root, "7-7", &di), 0);
	assert_string_equal(di.invalid, "idVendor/idProduct missing or not 4 hex digits");
	usb_dev_info_clear(&di);
	/* root hubs by name */
	assert_int_equal(usb_dev_read_dir(dev, "usb3", &di), 0);
	assert_true(di.root_hub);
	usb_dev_info_clear(&di);

	usb_iface_info_clear(&ii);
	policy_free(p);
	policy_errors_clear(&errs);
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		assert_int_equal(system(cmd), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_desc_composite),
	    cmocka_unit_test(test_desc_malformed),
	    cmocka_unit_test(test_desc_too_many_ifaces),
	    cmocka_unit_test(test_str_utf8),
	    cmocka_unit_test(test_str_escape),
	    cmocka_unit_test(test_str_sanitize),
	    cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_decide_iface),
	    cmocka_unit_test(test_decide_hostile),
	    cmocka_unit_test(test_decide_descriptors),
	    cmocka_unit_test(test_read_dir_and_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
