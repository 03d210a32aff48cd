/* SPDX-License-Identifier: MIT */
/* Unit tests of policy/: every key, every kind of error with its line, defaults, the matcher. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"

#define HEAD "[terminal]\nid = t1\n"

static char *cat(const char *a, const char *b)
{
	char *s = malloc(strlen(a) + strlen(b) + 1);

	assert_non_null(s);
	strcpy(s, a);
	strcat(s, b);
	return s;
}

static struct policy *parse_ok(const char *text)
{
	struct policy *p = NULL;
	struct policy_errors errs = {0};
	char buf[512];
	int r;

	r = policy_parse_string("t.conf", text, strlen(text), &p, &errs);
	for (size_t i = 0; i < errs.n; i++) {
		policy_error_format(&errs, i, buf, sizeof(buf));
		print_error("unexpected: %s\n", buf);
	}
	assert_int_equal(r, 0);
	assert_int_equal(errs.n, 0);
	assert_non_null(p);
	policy_errors_clear(&errs);
	return p;
}

/* Body after HEAD parses. */
static struct policy *body_ok(const char *body)
{
	char *text = cat(HEAD, body);
	struct policy *p = parse_ok(text);

	free(text);
	return p;
}

/* text fails with exactly these "t.conf:LINE: message" lines, in order (NULL-terminated). */
static void expect_errors_v(const char *text, size_t len, const char *const *want)
{
	struct policy *p = NULL;
	struct policy_errors errs = {0};
	char buf[512];
	size_t n = 0;
	int r;

	r = policy_parse_string("t.conf", text, len, &p, &errs);
	assert_null(p);
	while (want[n])
		n++;
	for (size_t i = 0; i < errs.n; i++) {
		policy_error_format(&errs, i, buf, sizeof(buf));
		if (i >= n || strcmp(buf, want[i]) != 0)
			print_error("got:  %s\nwant: %s\n", buf, i < n ? want[i] : "(nothing)");
	}
	assert_int_equal(errs.n, n);
	for (size_t i = 0; i < n; i++) {
		policy_error_format(&errs, i, buf, sizeof(buf));
		assert_string_equal(buf, want[i]);
	}
	assert_true(r == -EINVAL || r == -EFBIG);
	policy_errors_clear(&errs);
}

#define expect_errors(text, ...)                                                                   \
	expect_errors_v((text), strlen(text), (const char *const[]){__VA_ARGS__, NULL})

/* HEAD + body fails with one error at line (counted in the whole text) and this message. */
static void body_error(const char *body, unsigned line, const char *message)
{
	char *text = cat(HEAD, body);
	char want[512];

	snprintf(want, sizeof(want), "t.conf:%u: %s", line, message);
	expect_errors(text, want);
	free(text);
}

/* ---- defaults, clauses ---- */

static void test_defaults(void **state)
{
	struct policy *p = NULL;

	assert_int_equal(policy_new_default(&p), 0);
	assert_null(p->terminal_id);
	assert_null(p->description);
	assert_int_equal(p->usb_mode, POLICY_USB_ENFORCE);
	assert_int_equal(p->n_usb_block, 1);
	assert_int_equal(p->usb_block[0].cls, 0x08);
	assert_int_equal(p->usb_block[0].subclass, -1);
	assert_int_equal(p->usb_block[0].protocol, -1);
	assert_false(p->usb_block[0].mtp);
	assert_string_equal(p->usb_block[0].name, "mass_storage");
	assert_int_equal(p->n_usb_allow, 0);
	assert_false(p->usb_strict_modprobe);
	assert_int_equal(p->n_mfa_services, 3);
	assert_string_equal(p->mfa_services[0], "login");
	assert_string_equal(p->mfa_services[1], "gdm-password");
	assert_string_equal(p->mfa_services[2], "sshd");
	assert_int_equal(p->mfa_window, 1);
	assert_int_equal(p->mfa_step, 30);
	assert_int_equal(p->mfa_digits, 6);
	assert_int_equal(p->mfa_max_failures, 5);
	assert_int_equal(p->mfa_lockout_sec, 900);
	assert_false(p->mfa_nullok);
	assert_null(p->report_collector);
	assert_string_equal(p->report_ca, "/etc/mynaguard/tls/ca.pem");
	assert_string_equal(p->report_cert, "/etc/mynaguard/tls/terminal.pem");
	assert_string_equal(p->report_key, "/etc/mynaguard/tls/terminal.key");
	assert_int_equal(p->report_interval_sec, 900);
	assert_int_equal(p->report_spool_max, 64 * 1024 * 1024);
	assert_int_equal(p->report_batch_max, 500);
	for (int i = 0; i < _POLICY_CHECK_MAX; i++)
		assert_int_equal(p->checks_enabled[i], i != POLICY_CHECK_NET_ISOLATION);
	assert_int_equal(p->checks_min_uid, 1000);
	assert_string_equal(p->checks_pam_dir, "/etc/pam.d");
	assert_string_equal(p->checks_sysfs_root, "/");
	policy_free(p);
	policy_free(NULL);
}

static void test_minimal_file_has_defaults(void **state)
{
	struct policy *p = parse_ok("[terminal]\nid = t1\n");

	assert_string_equal(p->path, "t.conf");
	assert_string_equal(p->terminal_id, "t1");
	assert_int_equal(p->n_usb_block, 1);
	assert_int_equal(p->usb_block[0].cls, 0x08);
	assert_int_equal(p->n_mfa_services, 3);
	assert_int_equal(p->mfa_lockout_sec, 900);
	assert_false(p->checks_enabled[POLICY_CHECK_NET_ISOLATION]);
	policy_free(p);
}

static void test_clauses(void **state)
{
	static const struct {
		enum policy_check c;
		const char *id;
		const char *clauses;
	} want[] = {
	    {POLICY_CHECK_USB_DEFAULT_DENY, "usb.default_deny", "2-6-3-a 2-3-2"},
	    {POLICY_CHECK_USB_NO_UNAPPROVED_STORAGE, "usb.no_unapproved_storage", "2-6-3-a 2-3-2"},
	    {POLICY_CHECK_MFA_PAM_STACK, "mfa.pam_stack", "2-6-3-a 2-6-6"},
	    {POLICY_CHECK_MFA_ENROLLMENT, "mfa.enrollment", "2-6-3-a"},
	    {POLICY_CHECK_TIME_SYNCHRONIZED, "time.synchronized", "2-6-6"},
	    {POLICY_CHECK_AGENT_INTEGRITY, "agent.integrity", "2-2-7 2-6-7"},
	    {POLICY_CHECK_NET_ISOLATION, "net.isolation", "2-6-3-a"},
	};
	enum policy_check c;

	assert_int_equal(sizeof(want) / sizeof(want[0]), _POLICY_CHECK_MAX);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *const *cl = policy_check_clauses(want[i].c);
		char joined[64] = "";
		assert_string_equal(policy_check_id(want[i].c), want[i].id);
		assert_int_equal(policy_check_from_id(want[i].id, &c), 0);
		assert_int_equal(c, want[i].c);
		for (size_t j = 0; cl[j]; j++) {
			if (j)
				strcat(joined, " ");
			strcat(joined, cl[j]);
		}
		assert_string_equal(joined, want[i].clauses);
		assert_int_equal(policy_check_default(want[i].c),
				 want[i].c != POLICY_CHECK_NET_ISOLATION);
	}
	assert_int_equal(policy_check_from_id("usb.nope", &c), -EINVAL);
	assert_int_equal(policy_check_from_id(NULL, &c), -EINVAL);
	assert_null(policy_check_id(_POLICY_CHECK_MAX));
	assert_null(policy_check_clauses(_POLICY_CHECK_MAX)[0]);
}

/* ---- [terminal] ---- */

static void test_terminal(void **state)
{
	char id64[65], text[200];
	struct policy *p;

	p = parse_ok("[terminal]\nid = A-b_c.9\ndescription = 総務課 窓口 2\n");
	assert_string_equal(p->terminal_id, "A-b_c.9");
	assert_string_equal(p->description, "総務課 窓口 2");
	policy_free(p);

	memset(id64, 'x', 64);
	id64[64] = '\0';
	snprintf(text, sizeof(text), "[terminal]\nid = %s\n", id64);
	p = parse_ok(text);
	assert_string_equal(p->terminal_id, id64);
	policy_free(p);

	snprintf(text, sizeof(text), "[terminal]\nid = %sy\n", id64);
	expect_errors(text, "t.conf:2: [terminal] id: bad value "
			    "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\": expected 1 to 64 "
			    "letters, digits, '.', '_' or '-'");
	expect_errors("[terminal]\nid = a b\n",
		      "t.conf:2: [terminal] id: bad value \"a b\": "
		      "expected 1 to 64 letters, digits, '.', '_' or '-'");
	expect_errors("[terminal]\nid = 端末\n",
		      "t.conf:2: [terminal] id: bad value \"端末\": "
		      "expected 1 to 64 letters, digits, '.', '_' or '-'");
	expect_errors("[terminal]\nid =\n", "t.conf:2: [terminal] id: empty value: expected 1 to "
					    "64 letters, digits, '.', '_' or '-'");
	expect_errors("[terminal]\nid = t\ndescription =\n",
		      "t.conf:3: [terminal] description: empty value: expected a text of 1 to 256 "
		      "bytes");
}

static void test_missing_id(void **state)
{
	static const char missing[] = "t.conf: [terminal] id is missing: every policy must name "
				      "its terminal (id = 1 to 64 letters, digits, '.', '_' or "
				      "'-')";

	expect_errors("", missing);
	expect_errors("; only a comment\n", missing);
	expect_errors("[terminal]\ndescription = x\n", missing);
	expect_errors("[usb]\nmode = audit\n", missing);
	/* An invalid id is one error, not two. */
	expect_errors("[terminal]\nid = !\n", "t.conf:2: [terminal] id: bad value \"!\": expected "
					      "1 to 64 letters, digits, '.', '_' or '-'");
}

/* ---- [usb] ---- */

static void test_usb_mode(void **state)
{
	struct policy *p = body_ok("[usb]\nmode = audit\n");

	assert_int_equal(p->usb_mode, POLICY_USB_AUDIT);
	policy_free(p);
	p = body_ok("[usb]\nmode = enforce\n");
	assert_int_equal(p->usb_mode, POLICY_USB_ENFORCE);
	policy_free(p);
	body_error("[usb]\nmode = Enforce\n", 4,
		   "[usb] mode: bad value \"Enforce\": expected enforce or audit");
	body_error("[usb]\nmode = enforce # strict\n", 4,
		   "[usb] mode: bad value \"enforce # strict\": expected enforce or audit");
}

static void test_usb_block_names(void **state)
{
	struct policy *p = body_ok("[usb]\nblock = mass_storage, still_image mtp,cdc_net, "
				   "wireless, rndis, audio, printer, video, vendor_specific\n");
	static const struct {
		int cls, sub, prot;
		bool mtp;
		const char *name;
	} want[] = {
	    {0x08, -1, -1, false, "mass_storage"},
	    {0x06, -1, -1, false, "still_image"},
	    {-1, -1, -1, true, "mtp"},
	    {0x02, -1, -1, false, "cdc_net"},
	    {0x0a, -1, -1, false, "cdc_net"},
	    {0xe0, -1, -1, false, "wireless"},
	    {0xe0, 0x01, 0x03, false, "rndis"},
	    {0xef, 0x04, 0x01, false, "rndis"},
	    {0x01, -1, -1, false, "audio"},
	    {0x07, -1, -1, false, "printer"},
	    {0x0e, -1, -1, false, "video"},
	    {0xff, -1, -1, false, "vendor_specific"},
	};

	assert_int_equal(p->n_usb_block, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < p->n_usb_block; i++) {
		assert_int_equal(p->usb_block[i].cls, want[i].cls);
		assert_int_equal(p->usb_block[i].subclass, want[i].sub);
		assert_int_equal(p->usb_block[i].protocol, want[i].prot);
		assert_int_equal(p->usb_block[i].mtp, want[i].mtp);
		assert_string_equal(p->usb_block[i].name, want[i].name);
	}
	policy_free(p);

	p = body_ok("[usb]\nblock = none\n");
	assert_int_equal(p->n_usb_block, 0);
	policy_free(p);
	p = body_ok("[usb]\nblock = None\n");
	assert_int_equal(p->n_usb_block, 0);
	policy_free(p);

	p = body_ok("[usb]\nblock = comm cdc_data physical content_security personal_healthcare "
		    "audio_video billboard type_c_bridge diagnostic misc app_specific\n");
	assert_int_equal(p->n_usb_block, 11);
	assert_int_equal(p->usb_block[0].cls, 0x02);
	assert_int_equal(p->usb_block[10].cls, 0xfe);
	policy_free(p);
}

static void test_usb_block_codes(void **state)
{
	struct policy *p = body_ok("[usb]\nblock = 08, 0x06, e0:01:03, ff:*:*, FE:01, 2:*:01\n");
	char code[16];

	assert_int_equal(p->n_usb_block, 6);
	assert_int_equal(p->usb_block[0].cls, 0x08);
	assert_string_equal(p->usb_block[0].name, "08");
	assert_int_equal(p->usb_block[1].cls, 0x06);
	assert_string_equal(p->usb_block[1].name, "06");
	assert_int_equal(p->usb_block[2].cls, 0xe0);
	assert_int_equal(p->usb_block[2].subclass, 0x01);
	assert_int_equal(p->usb_block[2].protocol, 0x03);
	assert_string_equal(p->usb_block[2].name, "e0:01:03");
	assert_int_equal(p->usb_block[3].cls, 0xff);
	assert_int_equal(p->usb_block[3].subclass, -1);
	assert_int_equal(p->usb_block[3].protocol, -1);
	assert_string_equal(p->usb_block[3].name, "ff");
	assert_int_equal(p->usb_block[4].subclass, 0x01);
	assert_int_equal(p->usb_block[4].protocol, -1);
	assert_string_equal(p->usb_block[4].name, "fe:01:*");
	assert_string_equal(p->usb_block[5].name, "02:*:01");
	policy_usb_class_code(&p->usb_block[5], code, sizeof(code));
	assert_string_equal(code, "02:*:01");
	policy_free(p);
}

static void test_usb_block_errors(void **state)
{
	static const char protect[] = "cannot be blocked: hubs, keyboards, mice and My Number card "
				      "readers must keep working";
	static const char expected[] = "expected a class name (mass_storage, still_image, mtp, "
				       "cdc_net, wireless, ...) or a code like 08, 0x08, e0:01:03 "
				       "or ff:*:*";
	char want[3][300];
	char body[4096];
	size_t o;

	snprintf(want[0], sizeof(want[0]), "t.conf:4: [usb] block: \"hid\": class 03 (hid) %s",
		 protect);
	snprintf(want[1], sizeof(want[1]), "t.conf:4: [usb] block: \"0x09\": class 09 (hub) %s",
		 protect);
	snprintf(want[2], sizeof(want[2]),
		 "t.conf:4: [usb] block: \"0b:*:*\": class 0b (smart_card) %s", protect);
	expect_errors(HEAD "[usb]\nblock = hid, mass_storage, 0x09, 0b:*:*\n", want[0], want[1],
		      want[2]);
	snprintf(want[0], sizeof(want[0]),
		 "t.conf:4: [usb] block: \"smart_card\": class 0b (smart_card) %s", protect);
	snprintf(want[1], sizeof(want[1]), "t.conf:4: [usb] block: \"hub\": class 09 (hub) %s",
		 protect);
	snprintf(want[2], sizeof(want[2]), "t.conf:4: [usb] block: \"03:01:01\": class 03 (hid) %s",
		 protect);
	expect_errors(HEAD "[usb]\nblock = smart_card hub 03:01:01\n", want[0], want[1], want[2]);

	snprintf(want[0], sizeof(want[0]), "t.conf:4: [usb] block: \"bogus\": %s", expected);
	snprintf(want[1], sizeof(want[1]), "t.conf:4: [usb] block: \"*\": %s", expected);
	snprintf(want[2], sizeof(want[2]), "t.conf:4: [usb] block: \"100\": %s", expected);
	expect_errors(HEAD "[usb]\nblock = bogus * 100\n", want[0], want[1], want[2]);
	snprintf(want[0], sizeof(want[0]), "t.conf:4: [usb] block: \"e0:01:03:04\": %s", expected);
	snprintf(want[1], sizeof(want[1]), "t.conf:4: [usb] block: \"08:\": %s", expected);
	snprintf(want[2], sizeof(want[2]), "t.conf:4: [usb] block: \"0xzz\": %s", expected);
	expect_errors(HEAD "[usb]\nblock = e0:01:03:04 08: 0xzz\n", want[0], want[1], want[2]);

	body_error("[usb]\nblock = mass_storage 08\n", 4,
		   "[usb] block: \"08\": \"08\" blocks what \"mass_storage\" already blocks: list "
		   "it once");
	body_error(
	    "[usb]\nblock = mtp, MTP\n", 4,
	    "[usb] block: \"MTP\": \"mtp\" blocks what \"mtp\" already blocks: list it once");
	body_error("[usb]\nblock = none, mtp\n", 4, "[usb] block: \"none\" must stand alone");
	body_error("[usb]\nblock = ,\n", 4,
		   "[usb] block: bad value \",\": expected class names like mass_storage, or none");
	body_error("[usb]\nblock =\n", 4,
		   "[usb] block: empty value: expected class names like mass_storage, or none");
	body_error("[usb]\nblock = 08\nblock = 06\n", 5,
		   "[usb] block: duplicate key (first set on line 4): it may appear only once");

	/* 64 entries fit, the 65th does not. */
	o = (size_t)snprintf(body, sizeof(body), HEAD "[usb]\nblock =");
	for (int i = 0; i < 65; i++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, " 01:%02x", i);
	snprintf(body + o, sizeof(body) - o, "\n");
	expect_errors(body, "t.conf:4: [usb] block: \"01:40\": too many classes: at most 64");
}

static void test_usb_allow(void **state)
{
	static const char hash[] =
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct policy *p = body_ok(
	    "[usb]\n"
	    "allow = 0781:5581\n"
	    "allow = 0781:5581 serial=4C530001 ledger=MB-0012 name=SanDisk, 総務課 1 ; comment\n"
	    "allow = ABCD:ef01 serial=\"two words \\\"q\\\" \\\\\" "
	    "hash=sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n"
	    "allow = 0781:5581 hash=sha256:0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef serial=x\n");

	assert_int_equal(p->n_usb_allow, 4);
	assert_int_equal(p->usb_allow[0].vendor, 0x0781);
	assert_int_equal(p->usb_allow[0].product, 0x5581);
	assert_null(p->usb_allow[0].serial);
	assert_null(p->usb_allow[0].descriptor_hash);
	assert_null(p->usb_allow[0].name);
	assert_int_equal(p->usb_allow[0].line, 4);
	assert_string_equal(p->usb_allow[1].serial, "4C530001");
	assert_string_equal(p->usb_allow[1].name, "SanDisk, 総務課 1");
	assert_string_equal(p->usb_allow[1].ledger, "MB-0012");
	assert_null(p->usb_allow[0].ledger);
	assert_int_equal(p->usb_allow[1].line, 5);
	assert_int_equal(p->usb_allow[2].vendor, 0xabcd);
	assert_int_equal(p->usb_allow[2].product, 0xef01);
	assert_string_equal(p->usb_allow[2].serial, "two words \"q\" \\");
	assert_string_equal(p->usb_allow[2].descriptor_hash, hash);
	assert_null(p->usb_allow[2].name);
	assert_string_equal(p->usb_allow[3].serial, "x");
	assert_string_equal(p->usb_allow[3].descriptor_hash, hash);
	policy_free(p);
}

static void test_usb_allow_long_line(void **state)
{
	/* Longer than libinih's 200-byte line buffer: must parse the same as a short line. */
	char body[1200], serial[127], name[300];
	struct policy *p;

	memset(serial, 'S', 126);
	serial[126] = '\0';
	memset(name, 'n', 299);
	name[299] = '\0';
	snprintf(body, sizeof(body),
		 "[usb]\nallow = 0781:5581 serial=%s hash=sha256:%064d name=%s  ; comment\n"
		 "mode = audit\n",
		 serial, 0, name);
	p = body_ok(body);
	assert_int_equal(p->n_usb_allow, 1);
	assert_string_equal(p->usb_allow[0].serial, serial);
	assert_string_equal(p->usb_allow[0].name, name);
	assert_int_equal(p->usb_allow[0].line, 4);
	assert_int_equal(p->usb_mode, POLICY_USB_AUDIT);
	policy_free(p);

	/* A long line with a bad value names the right line. */
	snprintf(body, sizeof(body), "[usb]\nallow = 0781:5581 serial=%s%s\nmode = x\n", serial,
		 "X");
	{
		char text[1300];
		snprintf(text, sizeof(text), HEAD "%s", body);
		expect_errors(text,
			      "t.conf:4: [usb] allow: serial= must hold 1 to 126 characters (use "
			      "serial=\"...\" for spaces)",
			      "t.conf:5: [usb] mode: bad value \"x\": expected enforce or audit");
	}
}

static void test_line_length_boundary(void **state)
{
	/* Around libinih's 200-byte buffer the value must come out the same, by either path. */
	for (size_t len = 150; len <= 260; len++) {
		char text[400], want[300];
		struct policy *p;
		size_t vlen = len - strlen("description = ");
		memset(want, 'd', vlen);
		want[vlen] = '\0';
		want[0] = 'D';
		want[vlen / 2] = ';'; /* not a comment: no space before it */
		snprintf(text, sizeof(text), "[terminal]\ndescription = %s ; comment\nid = t\n",
			 want);
		p = parse_ok(text);
		assert_string_equal(p->description, want);
		policy_free(p);
		snprintf(text, sizeof(text), "[terminal]\ndescription = %s\t\r\nid = t\n", want);
		p = parse_ok(text);
		assert_string_equal(p->description, want);
		policy_free(p);
		snprintf(text, sizeof(text), "[terminal]\ndescription =;%s\nid = t\n", want);
		p = parse_ok(text);
		assert_int_equal(p->description[0], ';');
		assert_string_equal(p->description + 1, want);
		policy_free(p);
	}
}

static void test_usb_allow_errors(void **state)
{
	static const char syntax[] =
	    "expected VVVV:PPPP [serial=S] [hash=sha256:HEX] [ledger=NUMBER] [name=TEXT]";
	char want[300];

	snprintf(want, sizeof(want), "[usb] allow: bad value \"781:5581\": %s", syntax);
	body_error("[usb]\nallow = 781:5581\n", 4, want);
	snprintf(want, sizeof(want), "[usb] allow: bad value \"0781-5581\": %s", syntax);
	body_error("[usb]\nallow = 0781-5581\n", 4, want);
	snprintf(want, sizeof(want), "[usb] allow: bad value \"0781:5581x\": %s", syntax);
	body_error("[usb]\nallow = 0781:5581x\n", 4, want);
	snprintf(want, sizeof(want), "[usb] allow: bad value \"0781:558g\": %s", syntax);
	body_error("[usb]\nallow = 0781:558g\n", 4, want);
	snprintf(want, sizeof(want), "[usb] allow: empty value: %s", syntax);
	body_error("[usb]\nallow =\n", 4, want);
	snprintf(want, sizeof(want), "[usb] allow: unexpected \"vendor=x\": %s", syntax);
	body_error("[usb]\nallow = 0781:5581 vendor=x\n", 4, want);
	body_error("[usb]\nallow = 0781:5581 serial=a serial=b\n", 4,
		   "[usb] allow: serial= given twice");
	body_error("[usb]\nallow = 0781:5581 serial=\n", 4,
		   "[usb] allow: serial= must hold 1 to 126 characters (use serial=\"...\" for "
		   "spaces)");
	body_error("[usb]\nallow = 0781:5581 serial=\"\"\n", 4,
		   "[usb] allow: serial= must hold 1 to 126 characters (use serial=\"...\" for "
		   "spaces)");
	body_error("[usb]\nallow = 0781:5581 serial=\"abc\n", 4,
		   "[usb] allow: serial=\"... has no closing quote or is longer than 126 "
		   "characters");
	body_error("[usb]\nallow = 0781:5581 serial=\"abc\"def\n", 4,
		   "[usb] allow: expected a space after the quoted serial");
	body_error("[usb]\nallow = 0781:5581 hash=abc\n", 4,
		   "[usb] allow: bad hash \"hash=abc\": expected hash=sha256: followed by 64 hex "
		   "digits");
	body_error("[usb]\nallow = 0781:5581 hash=sha256:"
		   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\n",
		   4, "[usb] allow: bad hash: expected hash=sha256: followed by 64 hex digits");
	body_error("[usb]\nallow = 0781:5581 hash=sha256:" /* 64 + 0 */
		   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef "
		   "hash=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
		   4, "[usb] allow: hash= given twice");
	body_error("[usb]\nallow = 0781:5581 name=\n", 4,
		   "[usb] allow: name= is empty: expected a text");
	body_error("[usb]\nallow = 0781:5581 ledger=MB/12\n", 4,
		   "[usb] allow: bad ledger \"ledger=MB/12\": expected ledger= followed by the "
		   "registration number (1 to 32 letters, digits, '.', '_' or '-')");
	body_error("[usb]\nallow = 0781:5581 ledger=A ledger=B\n", 4,
		   "[usb] allow: ledger= given twice");
	body_error("[usb]\nallow = 0781:5581 serial=A\nallow = 0781:5581 serial=A name=again\n", 5,
		   "[usb] allow: same device as the allow entry on line 4");
}

static void test_usb_allow_limit(void **state)
{
	size_t size = 40 + (POLICY_MAX_ALLOW + 1) * 40, o;
	char *text = malloc(size);
	struct policy *p;

	assert_non_null(text);
	o = (size_t)snprintf(text, size, HEAD "[usb]\n");
	for (int i = 0; i < POLICY_MAX_ALLOW; i++)
		o += (size_t)snprintf(text + o, size - o, "allow = 1234:%04x\n", i);
	p = parse_ok(text);
	assert_int_equal(p->n_usb_allow, POLICY_MAX_ALLOW);
	assert_int_equal(p->usb_allow[POLICY_MAX_ALLOW - 1].product, POLICY_MAX_ALLOW - 1);
	policy_free(p);
	snprintf(text + o, size - o, "allow = 1234:ffff\n");
	expect_errors(text, "t.conf:1028: [usb] allow: too many allow entries: at most 1024");
	free(text);
}

static void test_usb_strict_modprobe(void **state)
{
	struct policy *p = body_ok("[usb]\nstrict_modprobe = yes\n");

	assert_true(p->usb_strict_modprobe);
	policy_free(p);
	p = body_ok("[usb]\nstrict_modprobe = off\n");
	assert_false(p->usb_strict_modprobe);
	policy_free(p);
	body_error("[usb]\nstrict_modprobe = sure\n", 4,
		   "[usb] strict_modprobe: bad value \"sure\": expected yes or no");
}

/* ---- [mfa] ---- */

static void test_mfa_services(void **state)
{
	struct policy *p = body_ok("[mfa]\nservices = login sshd, xrdp-sesman,lightdm\n");
	char text[2048];
	size_t o;

	assert_int_equal(p->n_mfa_services, 4);
	assert_string_equal(p->mfa_services[0], "login");
	assert_string_equal(p->mfa_services[1], "sshd");
	assert_string_equal(p->mfa_services[2], "xrdp-sesman");
	assert_string_equal(p->mfa_services[3], "lightdm");
	policy_free(p);
	p = body_ok("[mfa]\nservices = none\n");
	assert_int_equal(p->n_mfa_services, 0);
	policy_free(p);

	expect_errors(HEAD "[mfa]\nservices = login, .hidden, a/b, sshd, login\n",
		      "t.conf:4: [mfa] services: \".hidden\" is not a PAM service name: expected "
		      "names like login, gdm-password, sshd",
		      "t.conf:4: [mfa] services: \"a/b\" is not a PAM service name: expected names "
		      "like login, gdm-password, sshd",
		      "t.conf:4: [mfa] services: \"login\" is listed twice");
	body_error("[mfa]\nservices =\n", 4,
		   "[mfa] services: empty value: expected PAM service names like login, "
		   "gdm-password, sshd, or none");

	o = (size_t)snprintf(text, sizeof(text), HEAD "[mfa]\nservices =");
	for (int i = 0; i < 33; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, " s%d", i);
	snprintf(text + o, sizeof(text) - o, "\n");
	expect_errors(text, "t.conf:4: [mfa] services: too many services: at most 32");
}

static void test_mfa_numbers(void **state)
{
	struct policy *p = body_ok("[mfa]\nwindow = 0\nstep = 15\ndigits = 8\nmax_failures = 100\n"
				   "lockout = 1d\nnullok = yes\n");

	assert_int_equal(p->mfa_window, 0);
	assert_int_equal(p->mfa_step, 15);
	assert_int_equal(p->mfa_digits, 8);
	assert_int_equal(p->mfa_max_failures, 100);
	assert_int_equal(p->mfa_lockout_sec, 86400);
	assert_true(p->mfa_nullok);
	policy_free(p);
	p = body_ok("[mfa]\nwindow = 10\nstep = 300\ndigits = 7\nmax_failures = 1\nlockout = 60\n"
		    "nullok = no\n");
	assert_int_equal(p->mfa_window, 10);
	assert_int_equal(p->mfa_step, 300);
	assert_int_equal(p->mfa_digits, 7);
	assert_int_equal(p->mfa_max_failures, 1);
	assert_int_equal(p->mfa_lockout_sec, 60);
	assert_false(p->mfa_nullok);
	policy_free(p);
	p = body_ok("[mfa]\nlockout = 2h\n");
	assert_int_equal(p->mfa_lockout_sec, 7200);
	policy_free(p);

	expect_errors(
	    HEAD "[mfa]\nwindow = 11\nstep = 14\nstep = 301\ndigits = 5\n"
		 "max_failures = 0\nlockout = 59\nnullok = 2\n",
	    "t.conf:4: [mfa] window: bad value \"11\": expected a whole number from 0 to "
	    "10",
	    "t.conf:5: [mfa] step: bad value \"14\": expected a whole number from 15 to "
	    "300",
	    "t.conf:6: [mfa] step: duplicate key (first set on line 5): it may appear "
	    "only once",
	    "t.conf:7: [mfa] digits: bad value \"5\": expected a whole number from 6 to 8",
	    "t.conf:8: [mfa] max_failures: bad value \"0\": expected a whole number from "
	    "1 to 100",
	    "t.conf:9: [mfa] lockout: bad value \"59\": expected a duration like 900, "
	    "15m or 1h, from 1m to 1d",
	    "t.conf:10: [mfa] nullok: bad value \"2\": expected yes or no");
	expect_errors(
	    HEAD "[mfa]\nstep = 301\ndigits = 9\nmax_failures = 101\nlockout = 86401\n"
		 "window = -1\nlockout = 2d\n",
	    "t.conf:4: [mfa] step: bad value \"301\": expected a whole number from 15 to "
	    "300",
	    "t.conf:5: [mfa] digits: bad value \"9\": expected a whole number from 6 to 8",
	    "t.conf:6: [mfa] max_failures: bad value \"101\": expected a whole number "
	    "from 1 to 100",
	    "t.conf:7: [mfa] lockout: bad value \"86401\": expected a duration like 900, "
	    "15m or 1h, from 1m to 1d",
	    "t.conf:8: [mfa] window: bad value \"-1\": expected a whole number from 0 to "
	    "10",
	    "t.conf:9: [mfa] lockout: duplicate key (first set on line 7): it may appear "
	    "only once");
}

/* ---- [report] ---- */

static void test_report(void **state)
{
	static const char *const good[] = {
	    "https://c.example.jp",   "https://c.example.jp:8443/v1/events", "https://[::1]:8443",
	    "https://127.0.0.1:8443", "https://COLLECTOR.lg.jp/?a=b",
	};
	static const char *const bad[] = {
	    "http://c.example.jp", "https://",	     "https:///x",
	    "https://user@host",   "https://h:0",    "https://h:99999",
	    "https://h:",	   "https://h x",    "ftp://h",
	    "https://[zz]",	   "https://[::1]x", "https://h_h",
	    "c.example.jp",	   "https://:8443",  "https://[]:8443",
	};
	char body[300], want[400];
	struct policy *p;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(body, sizeof(body), "[report]\ncollector = %s\n", good[i]);
		p = body_ok(body);
		assert_string_equal(p->report_collector, good[i]);
		policy_free(p);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "[report]\ncollector = %s\n", bad[i]);
		snprintf(want, sizeof(want),
			 "[report] collector: bad value \"%s\": expected an https:// URL like "
			 "https://collector.example.jp:8443",
			 bad[i]);
		body_error(body, 4, want);
	}

	p = body_ok("[report]\nca = /a/ca.pem\ncert = /a/t.pem\nkey = /a/t.key\ninterval = 1m\n"
		    "spool_max = 1M\nbatch_max = 1\n");
	assert_string_equal(p->report_ca, "/a/ca.pem");
	assert_string_equal(p->report_cert, "/a/t.pem");
	assert_string_equal(p->report_key, "/a/t.key");
	assert_int_equal(p->report_interval_sec, 60);
	assert_int_equal(p->report_spool_max, 1024 * 1024);
	assert_int_equal(p->report_batch_max, 1);
	policy_free(p);
	p = body_ok("[report]\ninterval = 1d\nspool_max = 10G\nbatch_max = 1000\n");
	assert_int_equal(p->report_interval_sec, 86400);
	assert_int_equal(p->report_spool_max, 10ULL << 30);
	assert_int_equal(p->report_batch_max, 1000);
	policy_free(p);

	expect_errors(
	    HEAD "[report]\nca = ca.pem\ncert = ./t.pem\nkey =\ninterval = 30s\n"
		 "spool_max = 1023K\nbatch_max = 0\n",
	    "t.conf:4: [report] ca: bad value \"ca.pem\": expected an absolute path "
	    "(starting with /)",
	    "t.conf:5: [report] cert: bad value \"./t.pem\": expected an absolute path "
	    "(starting with /)",
	    "t.conf:6: [report] key: empty value: expected an absolute path (starting "
	    "with /)",
	    "t.conf:7: [report] interval: bad value \"30s\": expected a duration like "
	    "900, 15m or 1h, from 1m to 1d",
	    "t.conf:8: [report] spool_max: bad value \"1023K\": expected a size like 64M "
	    "or 1G, from 1M to 10G",
	    "t.conf:9: [report] batch_max: bad value \"0\": expected a whole number from 1 "
	    "to 1000");
	expect_errors(
	    HEAD "[report]\ninterval = 2d\nspool_max = 11G\nbatch_max = 1001\n",
	    "t.conf:4: [report] interval: bad value \"2d\": expected a duration like 900, "
	    "15m or 1h, from 1m to 1d",
	    "t.conf:5: [report] spool_max: bad value \"11G\": expected a size like 64M or "
	    "1G, from 1M to 10G",
	    "t.conf:6: [report] batch_max: bad value \"1001\": expected a whole number "
	    "from 1 to 1000");
}

/* ---- [checks] ---- */

static void test_checks(void **state)
{
	struct policy *p = body_ok("[checks]\nusb.default_deny = no\nusb.no_unapproved_storage = "
				   "false\nmfa.pam_stack = off\nmfa.enrollment = 0\n"
				   "time.synchronized = no\nagent.integrity = no\n"
				   "net.isolation = yes\nmin_uid = 500\npam_dir = /tmp/pam.d\n"
				   "sysfs_root = /tmp/sys\n");

	for (int i = 0; i < _POLICY_CHECK_MAX; i++)
		assert_int_equal(p->checks_enabled[i], i == POLICY_CHECK_NET_ISOLATION);
	assert_int_equal(p->checks_min_uid, 500);
	assert_string_equal(p->checks_pam_dir, "/tmp/pam.d");
	assert_string_equal(p->checks_sysfs_root, "/tmp/sys");
	policy_free(p);
	p = body_ok("[checks]\nmin_uid = 0\n");
	assert_int_equal(p->checks_min_uid, 0);
	policy_free(p);
	p = body_ok("[checks]\nmin_uid = 4294967294\n");
	assert_int_equal(p->checks_min_uid, 4294967294u);
	policy_free(p);

	expect_errors(
	    HEAD "[checks]\nusb.default_deny = maybe\nmin_uid = 4294967295\n"
		 "pam_dir = pam.d\nsysfs_root = sys\nusb.default_deny = yes\n"
		 "usb.nothing = yes\n",
	    "t.conf:4: [checks] usb.default_deny: bad value \"maybe\": expected yes or no",
	    "t.conf:5: [checks] min_uid: bad value \"4294967295\": expected a user id "
	    "from 0 to 4294967294",
	    "t.conf:6: [checks] pam_dir: bad value \"pam.d\": expected an absolute path "
	    "(starting with /)",
	    "t.conf:7: [checks] sysfs_root: bad value \"sys\": expected an absolute path "
	    "(starting with /)",
	    "t.conf:8: [checks] usb.default_deny: duplicate key (first set on line 4): it "
	    "may appear only once",
	    "t.conf:9: [checks] unknown key \"usb.nothing\": expected a check id: "
	    "usb.default_deny, usb.no_unapproved_storage, mfa.pam_stack, mfa.enrollment, "
	    "time.synchronized, agent.integrity, net.isolation");
	expect_errors(HEAD "[checks]\nmin_gid = 1\n",
		      "t.conf:4: [checks] unknown key \"min_gid\": expected min_uid, pam_dir, "
		      "sysfs_root or a check id like usb.default_deny");
}

/* ---- structure errors ---- */

static void test_unknown_section_and_key(void **state)
{
	expect_errors(HEAD "[usbb]\nmode = x\n[usb]\nmod = enforce\n[Terminal]\n",
		      "t.conf:3: unknown section [usbb]: expected [terminal], [usb], [mfa], "
		      "[report], [checks] or [fleet]",
		      "t.conf:6: [usb] unknown key \"mod\": expected mode, block, allow, reader, "
		      "strict_modprobe",
		      "t.conf:7: unknown section [Terminal]: expected [terminal], [usb], [mfa], "
		      "[report], [checks] or [fleet]");
	expect_errors(
	    HEAD "[terminal]\n[mfa]\nwindow = 1\n[mfa] ; again\n",
	    "t.conf:3: duplicate section [terminal] (first on line 1): put all its keys "
	    "in one section",
	    "t.conf:6: duplicate section [mfa] (first on line 4): put all its keys in one "
	    "section");
	expect_errors(HEAD "[usb\n[usb] x\n[]\n",
		      "t.conf:3: expected [section]: the closing ']' is missing",
		      "t.conf:4: unexpected text after [usb]: expected only a comment",
		      "t.conf:5: unknown section []: expected [terminal], [usb], [mfa], [report], "
		      "[checks] or [fleet]");
	expect_errors(
	    "mode = audit\n" HEAD,
	    "t.conf:1: mode = ... comes before any [section]: expected [terminal], [usb], "
	    "[mfa], [report], [checks] or [fleet] first");
	expect_errors(HEAD "[terminal]\n", "t.conf:3: duplicate section [terminal] (first on "
					   "line 1): put all its keys in one section");
	expect_errors(HEAD "[mfa]\nWindow = 1\n", "t.conf:4: [mfa] unknown key \"Window\": "
						  "expected services, window, step, digits, "
						  "max_failures, lockout, nullok");
	expect_errors(HEAD "[report]\nurl = x\n",
		      "t.conf:4: [report] unknown key \"url\": expected "
		      "collector, ca, cert, key, interval, spool_max, "
		      "batch_max");
	expect_errors(HEAD "description = a\ndescr = b\n",
		      "t.conf:4: [terminal] unknown key \"descr\": expected id, description, "
		      "contact");
}

static void test_line_errors(void **state)
{
	static char line[POLICY_MAX_LINE + 2], text[2 * POLICY_MAX_LINE + 100];

	expect_errors(HEAD "junk\n", "t.conf:3: expected KEY = VALUE, a [section] line, or a "
				     "comment starting with ';' or '#'");
	expect_errors(HEAD "description: x\n",
		      "t.conf:3: expected KEY = VALUE: use '=' rather than ':'");
	expect_errors(HEAD "= x\n", "t.conf:3: expected KEY = VALUE: the key name is missing");
	expect_errors(HEAD "a b = x\n", "t.conf:3: expected KEY = VALUE: \"a b\" is not a key "
					"name (letters, digits, '_', '.', '-')");
	expect_errors(HEAD "x ; = y\n", "t.conf:3: expected KEY = VALUE, a [section] line, or a "
					"comment starting with ';' or '#'");
	expect_errors(HEAD "description = a\n  continued\n\tmore = x\n",
		      "t.conf:4: line starts with white space: continuation lines are not "
		      "supported; write KEY = VALUE on one line, starting at the first column",
		      "t.conf:5: line starts with white space: continuation lines are not "
		      "supported; write KEY = VALUE on one line, starting at the first column");
	expect_errors(HEAD "[usb]\n mode = audit\n",
		      "t.conf:4: line starts with white space: continuation lines are not "
		      "supported; write KEY = VALUE on one line, starting at the first column");
	expect_errors(HEAD "description = a\x07"
			   "b\n",
		      "t.conf:3: line contains the control character 0x07");
	expect_errors(HEAD "description = \xff\xfe\n", "t.conf:3: line is not valid UTF-8");
	expect_errors(HEAD "description = \xc0\xaf\n", "t.conf:3: line is not valid UTF-8");
	expect_errors(HEAD "description = \xed\xa0\x80\n", "t.conf:3: line is not valid UTF-8");
	expect_errors(HEAD "description = \xe3\x81\n", "t.conf:3: line is not valid UTF-8");
	expect_errors(HEAD "a\rb = c\n", "t.conf:3: line contains the control character 0x0d");
	expect_errors_v(HEAD "description = a\0b\n", sizeof(HEAD "description = a\0b\n") - 1,
			(const char *const[]){"t.conf:3: line contains a NUL byte", NULL});
	expect_errors(HEAD "[mfa]\nwindow = 1234567890123456789012345678901234567890123\n",
		      "t.conf:4: [mfa] window: bad value "
		      "\"1234567890123456789012345678901234567890...\": expected a whole number "
		      "from 0 to 10");
	expect_errors(HEAD
		      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa = 1\n",
		      "t.conf:3: unknown key \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\": key "
		      "names are short");
	/* quoted by base/escape.c: UTF-8 kept, cut at 40 bytes on a character boundary (the 14th
	 * 東 crosses it and is left out whole) */
#define EAST   "\xe6\x9d\xb1"
#define EAST13 EAST EAST EAST EAST EAST EAST EAST EAST EAST EAST EAST EAST EAST
	expect_errors(HEAD EAST13 EAST EAST " = 1\n",
		      "t.conf:3: expected KEY = VALUE: \"" EAST13
		      "...\" is not a key name (letters, digits, '_', '.', '-')");
#undef EAST13
#undef EAST

	/* Over-long lines: exactly POLICY_MAX_LINE is fine, one more is an error. */
	memset(line, ';', POLICY_MAX_LINE + 1);
	line[POLICY_MAX_LINE + 1] = '\0';
	snprintf(text, sizeof(text), HEAD "%s\n%s\n[x]\n", line + 1, line);
	expect_errors(text, "t.conf:4: line too long (1025 bytes): at most 1024",
		      "t.conf:5: unknown section [x]: expected [terminal], [usb], [mfa], [report], "
		      "[checks] or [fleet]");
}

static void test_all_errors_reported(void **state)
{
	char *text = malloc(200 * 20);
	struct policy_errors errs = {0};
	struct policy *p = NULL;
	size_t o = 0;

	assert_non_null(text);
	o += (size_t)sprintf(text + o, HEAD "[mfa]\n");
	for (int i = 0; i < 150; i++)
		o += (size_t)sprintf(text + o, "junk%d\n", i);
	assert_int_equal(policy_parse_string("t.conf", text, o, &p, &errs), -EINVAL);
	assert_null(p);
	assert_int_equal(errs.n, POLICY_MAX_ERRORS);
	assert_int_equal(errs.n_dropped, 50);
	for (size_t i = 0; i < errs.n; i++)
		assert_int_equal(errs.items[i].line, 4 + i);
	/* Reusing errs clears it. */
	assert_int_equal(policy_parse_string("u.conf", HEAD, strlen(HEAD), &p, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_int_equal(errs.n_dropped, 0);
	policy_free(p);
	p = NULL;
	policy_errors_clear(&errs);
	/* errs may be NULL. */
	assert_int_equal(policy_parse_string("t.conf", text, o, &p, NULL), -EINVAL);
	assert_null(p);
	free(text);
}

static void test_syntax_variants(void **state)
{
	struct policy *p;

	/* CRLF, a BOM, comments of both kinds, inline comments, no final newline, spaces. */
	p = parse_ok("\xef\xbb\xbf; comment\r\n# comment\r\n[terminal] ; c\r\nid=t2 ; inline\r\n"
		     "description = a;b ;c\r\n\r\n   \r\n[usb]\r\nmode\t=\taudit\r\nblock = 08");
	assert_string_equal(p->terminal_id, "t2");
	assert_string_equal(p->description, "a;b");
	assert_int_equal(p->usb_mode, POLICY_USB_AUDIT);
	policy_free(p);
	expect_errors(HEAD "[usb]\nblock = 08;x\n",
		      "t.conf:4: [usb] block: \"08;x\": expected a class name (mass_storage, "
		      "still_image, mtp, cdc_net, wireless, ...) or a code like 08, 0x08, "
		      "e0:01:03 or ff:*:*");
	/* The path appears in errors and in the policy. */
	p = NULL;
	{
		struct policy_errors errs = {0};
		char buf[300];
		assert_int_equal(policy_parse_string("/etc/x.conf", "", 0, &p, &errs), -EINVAL);
		policy_error_format(&errs, 0, buf, sizeof(buf));
		assert_string_equal(buf, "/etc/x.conf: [terminal] id is missing: every policy must "
					 "name its terminal (id = 1 to 64 letters, digits, '.', "
					 "'_' or '-')");
		policy_error_format(&errs, 5, buf, sizeof(buf));
		assert_string_equal(buf, "");
		policy_errors_clear(&errs);
	}
}

static void test_file_too_large(void **state)
{
	size_t len = POLICY_MAX_FILE_SIZE + 1;
	char *text = malloc(len);
	struct policy_errors errs = {0};
	struct policy *p = NULL;
	char path[] = "/tmp/test-policy-XXXXXX", buf[300];
	int fd;

	assert_non_null(text);
	memset(text, '\n', len);
	memcpy(text, HEAD, strlen(HEAD));
	assert_int_equal(policy_parse_string("t.conf", text, len, &p, &errs), -EFBIG);
	assert_null(p);
	assert_int_equal(errs.n, 1);
	policy_error_format(&errs, 0, buf, sizeof(buf));
	assert_string_equal(buf, "t.conf: file too large (1048577 bytes): at most 1048576");
	/* Exactly the limit is fine. */
	assert_int_equal(policy_parse_string("t.conf", text, len - 1, &p, &errs), 0);
	policy_free(p);
	p = NULL;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	assert_int_equal(policy_load(path, &p, &errs), -EFBIG);
	assert_null(p);
	assert_int_equal(errs.n, 1);
	policy_error_format(&errs, 0, buf, sizeof(buf));
	{
		char want[300];
		snprintf(want, sizeof(want), "%s: file too large: at most 1048576 bytes", path);
		assert_string_equal(buf, want);
	}
	unlink(path);
	policy_errors_clear(&errs);
	free(text);
}

static void test_load(void **state)
{
	char dir[] = "/tmp/test-policy-XXXXXX", path[300], buf[400], want[400];
	struct policy_errors errs = {0};
	struct policy *p = NULL;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	assert_int_equal(policy_load(path, &p, &errs), -ENOENT);
	assert_null(p);
	assert_int_equal(errs.n, 1);
	policy_error_format(&errs, 0, buf, sizeof(buf));
	snprintf(want, sizeof(want), "%s: cannot read the policy: No such file or directory", path);
	assert_string_equal(buf, want);

	assert_int_equal(policy_load(dir, &p, &errs), -EISDIR);
	policy_error_format(&errs, 0, buf, sizeof(buf));
	snprintf(want, sizeof(want), "%s: cannot read the policy: Is a directory", dir);
	assert_string_equal(buf, want);

	snprintf(path, sizeof(path), "%s/p.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(HEAD "[usb]\nmode = audit\n", f);
	fclose(f);
	assert_int_equal(policy_load(path, &p, &errs), 0);
	assert_string_equal(p->path, path);
	assert_int_equal(p->usb_mode, POLICY_USB_AUDIT);
	policy_free(p);
	p = NULL;

	if (geteuid() != 0) {
		chmod(path, 0);
		assert_int_equal(policy_load(path, &p, &errs), -EACCES);
		policy_error_format(&errs, 0, buf, sizeof(buf));
		snprintf(want, sizeof(want), "%s: cannot read the policy: Permission denied", path);
		assert_string_equal(buf, want);
	}
	unlink(path);
	rmdir(dir);
	assert_int_equal(policy_load(path, &p, NULL), -ENOENT);
	policy_errors_clear(&errs);
}

static void test_shipped_policy(void **state)
{
	struct policy_errors errs = {0};
	struct policy *p = NULL;
	int r = policy_load(SHIPPED_POLICY, &p, &errs);
	char buf[400];

	for (size_t i = 0; i < errs.n; i++) {
		policy_error_format(&errs, i, buf, sizeof(buf));
		print_error("%s\n", buf);
	}
	assert_int_equal(r, 0);
	assert_int_equal(p->usb_mode, POLICY_USB_ENFORCE);
	assert_int_equal(p->usb_block[0].cls, 0x08);
	assert_int_equal(p->n_usb_allow, 0);
	/* issue 10: vendor-class network adapters, usbmux and adb are closed, every other
	 * vendor-specific function too, and the common NFC My Number card readers still work */
	{
		static const char *const want[] = {
		    "mass_storage", "still_image", "mtp",   "cdc_net",
		    "cdc_net",	    "wireless",	   "rndis", "rndis",
		    "vendor_net",   "usbmux",	   "adb",   "vendor_specific"};
		static const uint16_t readers[] = {0x06c1, 0x06c3, 0x0dc8, 0x0dc9};

		assert_int_equal(p->n_usb_block, sizeof(want) / sizeof(want[0]));
		for (size_t i = 0; i < p->n_usb_block; i++)
			assert_string_equal(p->usb_block[i].name, want[i]);
		assert_int_equal(p->n_usb_readers, 4);
		for (size_t i = 0; i < 4; i++) {
			assert_int_equal(p->usb_readers[i].vendor, 0x054c);
			assert_int_equal(p->usb_readers[i].product, readers[i]);
			assert_null(p->usb_readers[i].serial);
		}
	}
	assert_int_equal(p->n_mfa_services, 3);
	assert_string_equal(p->mfa_services[0], "login");
	assert_string_equal(p->mfa_services[1], "gdm-password");
	assert_string_equal(p->mfa_services[2], "sshd");
	assert_false(p->mfa_nullok);
	policy_free(p);
	policy_errors_clear(&errs);
}

/* ---- the matcher ---- */

static struct policy *matcher_policy(void)
{
	return body_ok("[usb]\nblock = mass_storage, still_image, mtp, e0:01:03, ff:42:*\n"
		       "allow = 0781:5581 serial=ABC name=stick\n"
		       "allow = 090c:1000\n"
		       "allow = 1234:5678 hash=sha256:"
		       "00000000000000000000000000000000000000000000000000000000000000ff\n");
}

static void test_match_reasons(void **state)
{
	struct policy *p = matcher_policy();
	struct policy_usb_device dev = {.vendor = 0x1111, .product = 0x2222, .serial = "X"};
	struct policy_usb_interface ifc[] = {
	    {.cls = 0x08, .subclass = 0x06, .protocol = 0x50}, /* storage */
	    {.cls = 0x03, .subclass = 0x01, .protocol = 0x01}, /* keyboard */
	    {.cls = 0x0e, .subclass = 0x01, .protocol = 0x00}, /* webcam */
	    {.cls = -1, .subclass = -1, .protocol = -1},       /* unreadable */
	    {.cls = 0x09, .subclass = 0x00, .protocol = 0x00}, /* hub */
	    {.cls = 0x0b, .subclass = 0x00, .protocol = 0x00}, /* card reader */
	    {.cls = 0x100, .subclass = 0, .protocol = 0},      /* out of range */
	    {.cls = 0x42, .subclass = 0, .protocol = 0},       /* no name */
	};
	struct policy_usb_decision d[8];

	policy_usb_decide(p, &dev, ifc, 8, d);
	assert_int_equal(d[0].verdict, POLICY_USB_BLOCK);
	assert_int_equal(d[0].reason, POLICY_USB_REASON_BLOCKED_CLASS);
	assert_ptr_equal(d[0].block, &p->usb_block[0]);
	assert_null(d[0].allow);
	assert_string_equal(d[0].rule, "block mass_storage (08)");
	assert_int_equal(d[1].verdict, POLICY_USB_ALLOW);
	assert_int_equal(d[1].reason, POLICY_USB_REASON_NOT_BLOCKED);
	assert_string_equal(d[1].rule, "not blocked: class 03 (hid) is never blocked");
	assert_int_equal(d[2].verdict, POLICY_USB_ALLOW);
	assert_int_equal(d[2].reason, POLICY_USB_REASON_NOT_BLOCKED);
	assert_null(d[2].block);
	assert_string_equal(d[2].rule, "not blocked: class 0e (video) is not in the block list");
	assert_int_equal(d[3].verdict, POLICY_USB_BLOCK);
	assert_int_equal(d[3].reason, POLICY_USB_REASON_INVALID);
	assert_string_equal(d[3].rule, "block: interface class unreadable (fail closed)");
	assert_int_equal(d[4].verdict, POLICY_USB_ALLOW);
	assert_string_equal(d[4].rule, "not blocked: class 09 (hub) is never blocked");
	assert_int_equal(d[5].verdict, POLICY_USB_ALLOW);
	assert_string_equal(d[5].rule, "not blocked: class 0b (smart_card) is never blocked");
	assert_int_equal(d[6].verdict, POLICY_USB_BLOCK);
	assert_int_equal(d[6].reason, POLICY_USB_REASON_INVALID);
	assert_int_equal(d[7].verdict, POLICY_USB_ALLOW);
	assert_string_equal(d[7].rule, "not blocked: class 42 is not in the block list");

	/* Allow-listed: blocked classes are allowed; an unreadable class still is not. */
	dev = (struct policy_usb_device){.vendor = 0x0781, .product = 0x5581, .serial = "ABC"};
	policy_usb_decide(p, &dev, ifc, 4, d);
	assert_int_equal(d[0].verdict, POLICY_USB_ALLOW);
	assert_int_equal(d[0].reason, POLICY_USB_REASON_ALLOW_LIST);
	assert_ptr_equal(d[0].allow, &p->usb_allow[0]);
	assert_ptr_equal(d[0].block, &p->usb_block[0]);
	assert_string_equal(d[0].rule, "allow line 5: 0781:5581 serial=ABC");
	assert_int_equal(d[1].reason, POLICY_USB_REASON_NOT_BLOCKED);
	assert_null(d[1].allow);
	assert_int_equal(d[3].verdict, POLICY_USB_BLOCK);
	assert_int_equal(d[3].reason, POLICY_USB_REASON_INVALID);
	policy_free(p);
}

static void test_match_serial_hash(void **state)
{
	struct policy *p = matcher_policy();
	struct policy_usb_interface ifc = {.cls = 0x08, .subclass = 0x06, .protocol = 0x50};
	struct policy_usb_device dev = {.vendor = 0x0781, .product = 0x5581};
	struct policy_usb_decision d;

	/* serial must match exactly when the entry names one. */
	policy_usb_decide(p, &dev, &ifc, 1, &d);
	assert_int_equal(d.verdict, POLICY_USB_BLOCK);
	dev.serial = "abc";
	policy_usb_decide(p, &dev, &ifc, 1, &d);
	assert_int_equal(d.verdict, POLICY_USB_BLOCK);
	dev.serial = "ABCD";
	policy_usb_decide(p, &dev, &ifc, 1, &d);
	assert_int_equal(d.verdict, POLICY_USB_BLOCK);
	dev.serial = "ABC";
	policy_usb_decide(p, &dev, &ifc, 1, &d);
	assert_int_equal(d.verdict, POLICY_USB_ALLOW);
	/* Other product, same vendor and serial: blocked. */
	dev.product = 0x5582;
	policy_usb_decide(p, &dev, &ifc, 1, &d);
	assert_int_equal(d.verdict, POLICY_USB_BLOCK);

	/* An entry without serial matches any serial, also none. */
	dev = (struct policy_usb_device){.vendor = 0x090c, .product = 0x1000};
	policy_usb_decide(p, &dev, &ifc, 1, &d);
	assert_int_equal(d.verdict, POLICY_USB_ALLOW);
	assert_string_equal(d.rule, "allow line 6: 090c:1000");
	dev.serial = "whatever";
	policy_usb_decide(p, &dev, &ifc, 1, &d);
	assert_int_equal(d.verdict, POLICY_USB_ALLOW);

	/* hash must match when given. */
	dev = (struct policy_usb_device){.vendor = 0x1234, .product = 0x5678};
	policy_usb_decide(p, &dev, &ifc, 1, &d);
	assert_int_equal(d.verdict, POLICY_USB_BLOCK);
	dev.descriptor_hash = "00000000000000000000000000000000000000000000000000000000000000fe";
	policy_usb_decide(p, &dev, &ifc, 1, &d);
	assert_int_equal(d.verdict, POLICY_USB_BLOCK);
	dev.descriptor_hash = "00000000000000000000000000000000000000000000000000000000000000ff";
	policy_usb_decide(p, &dev, &ifc, 1, &d);
	assert_int_equal(d.verdict, POLICY_USB_ALLOW);
	assert_string_equal(d.rule, "allow line 7: 1234:5678 hash=sha256:"
				    "00000000000000000000000000000000000000000000000000000000000000"
				    "ff");
	policy_free(p);
}

static void test_match_composite_and_mtp(void **state)
{
	struct policy *p = matcher_policy();
	/* A phone: MTP interface (vendor class), ADB (ff:42:01), HID, and a still-image one. */
	struct policy_usb_interface ifc[] = {
	    {.cls = 0xff, .subclass = 0xff, .protocol = 0x00, .name = "MTP"},
	    {.cls = 0xff, .subclass = 0x42, .protocol = 0x01, .name = "ADB Interface"},
	    {.cls = 0x03, .subclass = 0x00, .protocol = 0x00, .name = "MTP"},
	    {.cls = 0x06, .subclass = 0x01, .protocol = 0x01, .name = NULL},
	    {.cls = 0xff, .subclass = 0x00, .protocol = 0x00, .name = "mtp device"},
	    {.cls = 0xff, .subclass = 0x00, .protocol = 0x00, .name = "MTPX"},
	    {.cls = 0xe0, .subclass = 0x01, .protocol = 0x03, .name = NULL},
	    {.cls = 0xe0, .subclass = 0x01, .protocol = 0x01, .name = NULL},
	    {.cls = 0xe0, .subclass = -1, .protocol = -1, .name = NULL},
	};
	struct policy_usb_device dev = {.vendor = 0x18d1, .product = 0x4ee2};
	struct policy_usb_decision d[9];

	policy_usb_decide(p, &dev, ifc, 9, d);
	assert_int_equal(d[0].verdict, POLICY_USB_BLOCK);
	assert_true(d[0].block->mtp);
	assert_string_equal(d[0].rule, "block mtp (MTP interface)");
	assert_int_equal(d[1].verdict, POLICY_USB_BLOCK);
	assert_string_equal(d[1].rule, "block ff:42:*");
	assert_int_equal(d[2].verdict, POLICY_USB_ALLOW); /* HID is never blocked */
	assert_int_equal(d[3].verdict, POLICY_USB_BLOCK);
	assert_string_equal(d[3].rule, "block still_image (06)");
	assert_int_equal(d[4].verdict, POLICY_USB_BLOCK);
	assert_string_equal(d[4].rule, "block mtp (MTP interface)");
	assert_int_equal(d[5].verdict, POLICY_USB_ALLOW);
	assert_int_equal(d[6].verdict, POLICY_USB_BLOCK);
	assert_string_equal(d[6].rule, "block e0:01:03");
	assert_int_equal(d[7].verdict, POLICY_USB_ALLOW);
	/* Unknown subclass/protocol match an entry of that class: fail closed. */
	assert_int_equal(d[8].verdict, POLICY_USB_BLOCK);

	/* udev's ID_MTP_DEVICE marks every (non-protected) interface. */
	dev.mtp = true;
	policy_usb_decide(p, &dev, ifc, 9, d);
	assert_int_equal(d[5].verdict, POLICY_USB_BLOCK);
	assert_string_equal(d[5].rule, "block mtp (ID_MTP_DEVICE)");
	assert_int_equal(d[2].verdict, POLICY_USB_ALLOW);
	assert_int_equal(d[7].verdict, POLICY_USB_BLOCK);
	policy_free(p);
}

static void test_match_audit_and_empty(void **state)
{
	struct policy *p = body_ok("[usb]\nmode = audit\nblock = 08, cdc_net\n");
	struct policy_usb_interface ifc[] = {
	    {.cls = 0x08, .subclass = 0x06, .protocol = 0x50},
	    {.cls = 0x0a, .subclass = 0x00, .protocol = 0x00},
	};
	struct policy_usb_device dev = {.vendor = 1, .product = 2};
	struct policy_usb_decision d[2];

	/* Audit mode does not change the verdict; the agent decides what to do with it. */
	policy_usb_decide(p, &dev, ifc, 2, d);
	assert_int_equal(d[0].verdict, POLICY_USB_BLOCK);
	assert_string_equal(d[0].rule, "block 08 (mass_storage)");
	assert_int_equal(d[1].verdict, POLICY_USB_BLOCK);
	assert_string_equal(d[1].rule, "block cdc_net (0a)");
	policy_free(p);

	p = body_ok("[usb]\nblock = none\n");
	policy_usb_decide(p, &dev, ifc, 2, d);
	assert_int_equal(d[0].verdict, POLICY_USB_ALLOW);
	assert_int_equal(d[0].reason, POLICY_USB_REASON_NOT_BLOCKED);
	assert_string_equal(d[0].rule, "not blocked: class 08 (mass_storage) is not in the block "
				       "list");
	policy_usb_decide(p, &dev, ifc, 0, d); /* n = 0 is fine */
	policy_free(p);
}

static void test_class_helpers(void **state)
{
	assert_true(policy_usb_class_protected(0x03));
	assert_true(policy_usb_class_protected(0x09));
	assert_true(policy_usb_class_protected(0x0b));
	assert_false(policy_usb_class_protected(0x08));
	assert_false(policy_usb_class_protected(-1));
	assert_string_equal(policy_usb_class_name(0x08), "mass_storage");
	assert_string_equal(policy_usb_class_name(0xe0), "wireless");
	assert_string_equal(policy_usb_class_name(0xff), "vendor_specific");
	assert_null(policy_usb_class_name(0x42));
	assert_null(policy_usb_class_name(-1));
}

/* ---- vendor-class functions and card readers (issue 10) ---- */

static void test_usb_vendor_names_and_readers(void **state)
{
	struct policy *p = body_ok("[usb]\nblock = vendor_net, usbmux, adb, vendor_specific\n"
				   "reader = 054c:06c1 name=Sony PaSoRi RC-S380/S\n"
				   "reader = 054C:0DC9 serial=R1\n"
				   "allow = 054c:06c1\n");
	char code[16];

	assert_int_equal(p->n_usb_block, 4);
	policy_usb_class_code(&p->usb_block[0], code, sizeof(code));
	assert_string_equal(code, "ff:ff:00");
	assert_string_equal(p->usb_block[0].name, "vendor_net");
	policy_usb_class_code(&p->usb_block[1], code, sizeof(code));
	assert_string_equal(code, "ff:fe:02");
	assert_string_equal(p->usb_block[1].name, "usbmux");
	policy_usb_class_code(&p->usb_block[2], code, sizeof(code));
	assert_string_equal(code, "ff:42:01");
	assert_string_equal(p->usb_block[2].name, "adb");
	policy_usb_class_code(&p->usb_block[3], code, sizeof(code));
	assert_string_equal(code, "ff");
	assert_int_equal(p->n_usb_readers, 2);
	assert_int_equal(p->usb_readers[0].vendor, 0x054c);
	assert_int_equal(p->usb_readers[0].product, 0x06c1);
	assert_int_equal(p->usb_readers[0].line, 5);
	assert_string_equal(p->usb_readers[0].name, "Sony PaSoRi RC-S380/S");
	assert_null(p->usb_readers[0].serial);
	assert_int_equal(p->usb_readers[1].product, 0x0dc9);
	assert_string_equal(p->usb_readers[1].serial, "R1");
	/* allow and reader are separate lists: the same ids in both are not a duplicate */
	assert_int_equal(p->n_usb_allow, 1);
	policy_free(p);

	/* names are case-insensitive like the others; a name and its code are one entry */
	p = body_ok("[usb]\nblock = VENDOR_NET, Adb\n");
	assert_string_equal(p->usb_block[0].name, "vendor_net");
	policy_free(p);
}

static void test_usb_reader_errors(void **state)
{
	body_error("[usb]\nreader = 054c\n", 4,
		   "[usb] reader: bad value \"054c\": expected VVVV:PPPP [serial=S] "
		   "[hash=sha256:HEX] [ledger=NUMBER] [name=TEXT]");
	body_error("[usb]\nreader =\n", 4,
		   "[usb] reader: empty value: expected VVVV:PPPP [serial=S] [hash=sha256:HEX] "
		   "[ledger=NUMBER] [name=TEXT]");
	body_error("[usb]\nreader = 054c:06c1 model=x\n", 4,
		   "[usb] reader: unexpected \"model=x\": expected VVVV:PPPP [serial=S] "
		   "[hash=sha256:HEX] [ledger=NUMBER] [name=TEXT]");
	body_error("[usb]\nreader = 054c:06c1 name=A\nreader = 054c:06c1 name=B\n", 5,
		   "[usb] reader: same device as the reader entry on line 4");
	body_error("[usb]\nreader = 054c:06c1 serial=\n", 4,
		   "[usb] reader: serial= must hold 1 to 126 characters (use serial=\"...\" for "
		   "spaces)");
	body_error("[usb]\nblock = vendor_net, ff:ff:00\n", 4,
		   "[usb] block: \"ff:ff:00\": \"ff:ff:00\" blocks what \"vendor_net\" already "
		   "blocks: list it once");
	body_error("[usb]\nblock = vendor-net\n", 4,
		   "[usb] block: \"vendor-net\": expected a class name (mass_storage, still_image, "
		   "mtp, cdc_net, wireless, ...) or a code like 08, 0x08, e0:01:03 or ff:*:*");
	body_error("[mfa]\nreader = 054c:06c1\n", 4,
		   "[mfa] unknown key \"reader\": expected services, window, step, digits, "
		   "max_failures, lockout, nullok");
}

/* The shipped block list and readers, decided on the devices of the issue. */
static void test_match_vendor_class_devices(void **state)
{
	struct policy *p = body_ok("[usb]\nblock = mass_storage, still_image, mtp, cdc_net, "
				   "wireless, rndis, vendor_net, usbmux, adb, vendor_specific\n"
				   "reader = 054c:06c1 name=Sony PaSoRi RC-S380/S\n"
				   "reader = 054c:0dc8\n");
	static const struct {
		uint16_t vid, pid;
		bool mtp;
		int16_t cls, sub, prot;
		const char *name;
		enum policy_usb_verdict verdict;
		enum policy_usb_reason reason;
		const char *rule;
	} cases[] = {
	    /* Realtek RTL8153 in its vendor configuration (driver r8152) */
	    {0x0bda, 0x8153, false, 0xff, 0xff, 0x00, NULL, POLICY_USB_BLOCK,
	     POLICY_USB_REASON_BLOCKED_CLASS, "block vendor_net (ff:ff:00)"},
	    /* ASIX AX88179 (ax88179_178a) */
	    {0x0b95, 0x1790, false, 0xff, 0xff, 0x00, NULL, POLICY_USB_BLOCK,
	     POLICY_USB_REASON_BLOCKED_CLASS, "block vendor_net (ff:ff:00)"},
	    /* iPhone: usbmux */
	    {0x05ac, 0x12a8, false, 0xff, 0xfe, 0x02, NULL, POLICY_USB_BLOCK,
	     POLICY_USB_REASON_BLOCKED_CLASS, "block usbmux (ff:fe:02)"},
	    /* Android phone: ADB */
	    {0x18d1, 0x4ee7, false, 0xff, 0x42, 0x01, "ADB Interface", POLICY_USB_BLOCK,
	     POLICY_USB_REASON_BLOCKED_CLASS, "block adb (ff:42:01)"},
	    /* some other vendor-class function */
	    {0x0403, 0x6001, false, 0xff, 0xff, 0xff, NULL, POLICY_USB_BLOCK,
	     POLICY_USB_REASON_BLOCKED_CLASS, "block vendor_specific (ff)"},
	    /* Sony PaSoRi RC-S380: a listed reader, even with the vendor_net triple */
	    {0x054c, 0x06c1, false, 0xff, 0xff, 0x00, NULL, POLICY_USB_ALLOW,
	     POLICY_USB_REASON_READER, "reader line 5: 054c:06c1 (Sony PaSoRi RC-S380/S)"},
	    {0x054c, 0x0dc8, false, 0xff, 0x00, 0x00, NULL, POLICY_USB_ALLOW,
	     POLICY_USB_REASON_READER, "reader line 6: 054c:0dc8"},
	    /* a reader's ids on a storage interface: reader covers only class ff */
	    {0x054c, 0x06c1, false, 0x08, 0x06, 0x50, NULL, POLICY_USB_BLOCK,
	     POLICY_USB_REASON_BLOCKED_CLASS, "block mass_storage (08)"},
	    /* a reader's ids on an MTP interface or an ID_MTP_DEVICE device: still blocked */
	    {0x054c, 0x06c1, false, 0xff, 0xff, 0x00, "MTP", POLICY_USB_BLOCK,
	     POLICY_USB_REASON_BLOCKED_CLASS, "block mtp (MTP interface)"},
	    {0x054c, 0x06c1, true, 0xff, 0xff, 0x00, NULL, POLICY_USB_BLOCK,
	     POLICY_USB_REASON_BLOCKED_CLASS, "block mtp (ID_MTP_DEVICE)"},
	    /* an unlisted Sony product */
	    {0x054c, 0x02e1, false, 0xff, 0x00, 0x00, NULL, POLICY_USB_BLOCK,
	     POLICY_USB_REASON_BLOCKED_CLASS, "block vendor_specific (ff)"},
	    /* contact My Number card reader, keyboard, hub: never blocked */
	    {0x04e6, 0x5116, false, 0x0b, 0x00, 0x00, NULL, POLICY_USB_ALLOW,
	     POLICY_USB_REASON_NOT_BLOCKED, "not blocked: class 0b (smart_card) is never blocked"},
	    {0x046d, 0xc31c, false, 0x03, 0x01, 0x01, NULL, POLICY_USB_ALLOW,
	     POLICY_USB_REASON_NOT_BLOCKED, "not blocked: class 03 (hid) is never blocked"},
	    {0x05e3, 0x0608, false, 0x09, 0x00, 0x00, NULL, POLICY_USB_ALLOW,
	     POLICY_USB_REASON_NOT_BLOCKED, "not blocked: class 09 (hub) is never blocked"},
	    /* the RTL8153's CDC ECM configuration is caught by cdc_net */
	    {0x0bda, 0x8153, false, 0x02, 0x06, 0x00, NULL, POLICY_USB_BLOCK,
	     POLICY_USB_REASON_BLOCKED_CLASS, "block cdc_net (02)"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_usb_device dev = {
		    .vendor = cases[i].vid, .product = cases[i].pid, .mtp = cases[i].mtp};
		struct policy_usb_interface ifc = {.cls = cases[i].cls,
						   .subclass = cases[i].sub,
						   .protocol = cases[i].prot,
						   .name = cases[i].name};
		struct policy_usb_decision d;

		policy_usb_decide(p, &dev, &ifc, 1, &d);
		if (strcmp(d.rule, cases[i].rule) != 0 || d.verdict != cases[i].verdict)
			print_error("case %zu: got %s\n", i, d.rule);
		assert_int_equal(d.verdict, cases[i].verdict);
		assert_int_equal(d.reason, cases[i].reason);
		assert_string_equal(d.rule, cases[i].rule);
		if (cases[i].reason == POLICY_USB_REASON_READER)
			assert_ptr_equal(d.allow, &p->usb_readers[cases[i].pid == 0x06c1 ? 0 : 1]);
	}
	policy_free(p);

	/* A reader entry with serial= only covers that reader. */
	p = body_ok("[usb]\nblock = vendor_specific\nreader = 054c:06c1 serial=R1\n");
	{
		struct policy_usb_device dev = {
		    .vendor = 0x054c, .product = 0x06c1, .serial = "R2"};
		struct policy_usb_interface ifc = {.cls = 0xff, .subclass = 0, .protocol = 0};
		struct policy_usb_decision d;

		policy_usb_decide(p, &dev, &ifc, 1, &d);
		assert_int_equal(d.verdict, POLICY_USB_BLOCK);
		dev.serial = "R1";
		policy_usb_decide(p, &dev, &ifc, 1, &d);
		assert_int_equal(d.verdict, POLICY_USB_ALLOW);
		assert_int_equal(d.reason, POLICY_USB_REASON_READER);
	}
	policy_free(p);
}

/* ---- [fleet], base policies, installing a base ---- */

#define KEY_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

#define FLEET                                                                                      \
	"[fleet]\n"                                                                                \
	"group = fukushi\n"                                                                        \
	"version = 7\n"                                                                            \
	"issued = 2026-12-01T09:00:00Z\n"                                                          \
	"terminals = fukushi-* kokuho-01, k[0-9]?\n"                                               \
	"grant_key = " KEY_B64 "\n"                                                                \
	"grant_classes = mass_storage\n"                                                           \
	"grant_max_days = 90\n"

#define BASE                                                                                       \
	"[terminal]\ndescription = 福祉課\ncontact = 情報政策課 内線 1234\n"             \
	"[usb]\nblock = mass_storage, mtp\n" FLEET

static struct policy *base_ok(const char *text)
{
	struct policy *p = NULL;
	struct policy_errors errs = {0};
	char buf[512];
	int r;

	r = policy_parse_base("b.conf", text, strlen(text), &p, &errs);
	for (size_t i = 0; i < errs.n; i++) {
		policy_error_format(&errs, i, buf, sizeof(buf));
		print_error("unexpected: %s\n", buf);
	}
	assert_int_equal(r, 0);
	assert_non_null(p);
	policy_errors_clear(&errs);
	return p;
}

/* A base that fails with exactly these "b.conf:LINE: message" lines (NULL-terminated). */
static void base_errors_v(const char *text, const char *const *want)
{
	struct policy *p = NULL;
	struct policy_errors errs = {0};
	char buf[512];
	size_t n = 0;
	int r;

	r = policy_parse_base("b.conf", text, strlen(text), &p, &errs);
	assert_null(p);
	while (want[n])
		n++;
	for (size_t i = 0; i < errs.n; i++) {
		policy_error_format(&errs, i, buf, sizeof(buf));
		if (i >= n || strcmp(buf, want[i]) != 0)
			print_error("got:  %s\nwant: %s\n", buf, i < n ? want[i] : "(nothing)");
	}
	assert_int_equal(errs.n, n);
	for (size_t i = 0; i < n; i++) {
		policy_error_format(&errs, i, buf, sizeof(buf));
		assert_string_equal(buf, want[i]);
	}
	assert_int_equal(r, -EINVAL);
	policy_errors_clear(&errs);
}

#define base_errors(text, ...) base_errors_v((text), (const char *const[]){__VA_ARGS__, NULL})

static void test_fleet_base(void **state)
{
	struct policy *p = base_ok(BASE);
	uint8_t key[32];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	assert_true(p->fleet);
	assert_null(p->terminal_id);
	assert_string_equal(p->description, "福祉課");
	assert_string_equal(p->terminal_contact, "情報政策課 内線 1234");
	assert_string_equal(p->fleet_group, "fukushi");
	assert_int_equal(p->fleet_version, 7);
	assert_int_equal(p->fleet_issued, 1796115600); /* 2026-12-01T09:00:00Z */
	assert_int_equal(p->n_fleet_terminals, 3);
	assert_string_equal(p->fleet_terminals[0], "fukushi-*");
	assert_string_equal(p->fleet_terminals[1], "kokuho-01");
	assert_string_equal(p->fleet_terminals[2], "k[0-9]?");
	assert_true(p->has_fleet_grant_key);
	assert_memory_equal(p->fleet_grant_key, key, 32);
	assert_int_equal(p->n_fleet_grant_classes, 1);
	assert_int_equal(p->fleet_grant_classes[0].cls, 0x08);
	assert_string_equal(p->fleet_grant_classes[0].name, "mass_storage");
	assert_int_equal(p->fleet_grant_max_days, 90);

	assert_true(policy_fleet_covers(p, "fukushi-01"));
	assert_true(policy_fleet_covers(p, "fukushi-"));
	assert_true(policy_fleet_covers(p, "kokuho-01"));
	assert_true(policy_fleet_covers(p, "k7x"));
	assert_false(policy_fleet_covers(p, "kokuho-02"));
	assert_false(policy_fleet_covers(p, "k7"));
	assert_false(policy_fleet_covers(p, "Fukushi-01"));
	assert_false(policy_fleet_covers(p, "x-fukushi-01"));
	assert_false(policy_fleet_covers(p, "fukushi-a/b"));
	assert_false(policy_fleet_covers(p, ""));
	assert_false(policy_fleet_covers(p, NULL));
	assert_false(policy_fleet_covers(NULL, "fukushi-01"));
	policy_free(p);

	/* Defaults: no grant classes, 366 days. A normal policy has no [fleet]. */
	p = base_ok("[fleet]\ngroup = g\nversion = 1\nissued = 2028-02-29T23:59:59Z\n"
		    "terminals = t1\ngrant_key = " KEY_B64 "\n");
	assert_int_equal(p->n_fleet_grant_classes, 0);
	assert_int_equal(p->fleet_grant_max_days, 366);
	assert_int_equal(p->fleet_issued, 1835481599);
	assert_true(policy_fleet_covers(p, "t1"));
	assert_false(policy_fleet_covers(p, "t2"));
	policy_free(p);
	p = body_ok("[usb]\n");
	assert_false(p->fleet);
	assert_null(p->fleet_group);
	assert_int_equal(p->fleet_grant_max_days, 366);
	assert_false(policy_fleet_covers(p, "t1"));
	policy_free(p);
	p = base_ok("[fleet]\ngroup = g\nversion = 9223372036854775807\n"
		    "issued = 2026-12-01T09:00:00Z\nterminals = *\ngrant_key = " KEY_B64
		    "\ngrant_classes = none\n");
	assert_int_equal(p->fleet_version, INT64_MAX);
	assert_true(policy_fleet_covers(p, "anything.at-all_1"));
	policy_free(p);

	/* A normal policy with a [fleet] section (the installed file) parses; contact anywhere */
	p = body_ok("contact = 内線 1\n" FLEET);
	assert_true(p->fleet);
	assert_string_equal(p->terminal_id, "t1");
	assert_string_equal(p->terminal_contact, "内線 1");
	policy_free(p);
}

static void test_fleet_errors(void **state)
{
	/* A base: no id, [fleet] required; a normal policy still needs its id. */
	base_errors("[terminal]\nid = t1\n" FLEET,
		    "b.conf:2: [terminal] id: a base policy names no terminal: each terminal's id "
		    "is put in when it installs the base");
	base_errors("[usb]\nmode = audit\n",
		    "b.conf: [fleet] is missing: a base policy needs group, version, issued, "
		    "terminals and grant_key");
	expect_errors(FLEET, "t.conf: [terminal] id is missing: every policy must name its "
			     "terminal (id = 1 to 64 letters, digits, '.', '_' or '-')");
	base_errors("[fleet]\ngroup = g\n",
		    "b.conf: [fleet] version is missing: a [fleet] section needs group, version, "
		    "issued, terminals and grant_key",
		    "b.conf: [fleet] issued is missing: a [fleet] section needs group, version, "
		    "issued, terminals and grant_key",
		    "b.conf: [fleet] terminals is missing: a [fleet] section needs group, version, "
		    "issued, terminals and grant_key",
		    "b.conf: [fleet] grant_key is missing: a [fleet] section needs group, version, "
		    "issued, terminals and grant_key");

	/* Every value, with its line. */
	body_error(FLEET "group = x\n", 11,
		   "[fleet] group: duplicate key (first set on line 4): it may appear only once");
	body_error("contact =\n", 3,
		   "[terminal] contact: empty value: expected a text of 1 to "
		   "256 bytes");
	base_errors(
	    "[fleet]\ngroup = a/b\nversion = 0\nissued = 2026-12-01T09:00:00z\n"
	    "terminals = a/b\ngrant_key = AAAA\ngrant_classes = hid\ngrant_max_days = 3661\n",
	    "b.conf:2: [fleet] group: bad value \"a/b\": expected 1 to 64 letters, digits, '.', "
	    "'_' or '-'",
	    "b.conf:3: [fleet] version: bad value \"0\": expected a whole number from 1 to "
	    "9223372036854775807",
	    "b.conf:4: [fleet] issued: bad value \"2026-12-01T09:00:00z\": expected a UTC time "
	    "like 2026-12-01T09:00:00Z",
	    "b.conf:5: [fleet] terminals: \"a/b\" is not a terminal id or glob: expected 1 to 64 "
	    "letters, digits, '.', '_', '-' and the wildcards * ? [ ]",
	    "b.conf:6: [fleet] grant_key: bad value \"AAAA\": expected the base64 of a 32-byte "
	    "Ed25519 public key (44 characters, as in the .pub file)",
	    "b.conf:7: [fleet] grant_classes: \"hid\": class 03 (hid) cannot be blocked: hubs, "
	    "keyboards, mice and My Number card readers must keep working",
	    "b.conf:8: [fleet] grant_max_days: bad value \"3661\": expected a whole number from 1 "
	    "to 3660");
	{
		static const char *const bad_times[] = {
		    "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z",	 "2026-12-01 09:00:00Z",
		    "2026-12-01T09:00:00",  "2026-12-01T09:00:00+09:00", "2026-12-01T24:00:00Z",
		    "1999-12-31T23:59:59Z", "2026-12-01T09:00:60Z",	 "2026-12-01T09:00:00.5Z",
		    "2026-04-31T00:00:00Z", "2100-02-29T00:00:00Z",	 "+026-12-01T09:00:00Z"};
		for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
			char text[300], want[300];
			snprintf(text, sizeof(text),
				 "[fleet]\ngroup = g\nversion = 1\nissued = %s\nterminals = a\n"
				 "grant_key = " KEY_B64 "\n",
				 bad_times[i]);
			snprintf(want, sizeof(want),
				 "b.conf:4: [fleet] issued: bad value \"%s\": expected a UTC time "
				 "like 2026-12-01T09:00:00Z",
				 bad_times[i]);
			base_errors(text, want);
		}
	}
	base_errors(
	    "[fleet]\ngroup = g\nversion = 1\nissued = 2026-12-01T09:00:00Z\n"
	    "terminals = none\ngrant_key = " KEY_B64 "\n",
	    "b.conf:5: [fleet] terminals: bad value \"none\": expected terminal ids or globs "
	    "like fukushi-*");
	base_errors("[fleet]\ngroup = g\nversion = 1\nissued = 2026-12-01T09:00:00Z\n"
		    "terminals = a b a\ngrant_key = " KEY_B64 "\n",
		    "b.conf:5: [fleet] terminals: \"a\" is listed twice");
	base_errors("[usb]\nblock = mtp\n[fleet]\ngroup = g\nversion = 1\n"
		    "issued = 2026-12-01T09:00:00Z\nterminals = a\ngrant_key = " KEY_B64 "\n"
		    "grant_classes = mtp, mass_storage, mass_storage\n",
		    "b.conf:9: [fleet] grant_classes: \"mass_storage\": \"mass_storage\" blocks "
		    "what \"mass_storage\" already blocks: list it once",
		    "b.conf:9: [fleet] grant_classes: mass_storage (08) is not blocked by [usb] "
		    "block: an exception can only open a blocked class");
	base_errors("[fleet]\ngroup = g\nversion = 1\nissued = 2026-12-01T09:00:00Z\n"
		    "terminals = a\ngrant_key = " KEY_B64 "\ngrant_classes = none, mtp\n",
		    "b.conf:7: [fleet] grant_classes: \"none\" must stand alone",
		    "b.conf:7: [fleet] grant_classes: mtp (mtp) is not blocked by [usb] block: an "
		    "exception can only open a blocked class");
}

static void test_fleet_key_base64(void **state)
{
	uint8_t key[32], want[32];

	for (int i = 0; i < 32; i++)
		want[i] = (uint8_t)i;
	assert_int_equal(policy_key_from_base64(KEY_B64, key), 0);
	assert_memory_equal(key, want, 32);
	memset(want, 0xff, 32);
	assert_int_equal(
	    policy_key_from_base64("//////////////////////////////////////////8=", key), 0);
	assert_memory_equal(key, want, 32);
	/* 31 and 33 bytes, bits past the end, bad characters, white space, no padding */
	assert_int_equal(
	    policy_key_from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", key), -EINVAL);
	assert_int_equal(
	    policy_key_from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", key), -EINVAL);
	assert_int_equal(
	    policy_key_from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", key), -EINVAL);
	assert_int_equal(
	    policy_key_from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-=", key), -EINVAL);
	assert_int_equal(
	    policy_key_from_base64(" AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", key), -EINVAL);
	assert_int_equal(policy_key_from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", key),
			 -EINVAL);
	assert_int_equal(policy_key_from_base64("", key), -EINVAL);
	assert_int_equal(policy_key_from_base64(NULL, key), -EINVAL);
}

/* Installing: the result parses as a normal policy with the id and everything of the base. */
static void check_installed(const char *base, const char *id, const char *want_text)
{
	struct policy *b = base_ok(base), *p = NULL;
	struct policy_errors errs = {0};
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(policy_install_text(base, strlen(base), id, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	if (want_text)
		assert_string_equal(text, want_text);
	assert_int_equal(policy_parse_string("i.conf", text, len, &p, &errs), 0);
	assert_string_equal(p->terminal_id, id);
	assert_true(p->fleet);
	assert_string_equal(p->fleet_group, b->fleet_group);
	assert_int_equal(p->fleet_version, b->fleet_version);
	assert_int_equal(p->fleet_issued, b->fleet_issued);
	assert_int_equal(p->n_fleet_terminals, b->n_fleet_terminals);
	assert_memory_equal(p->fleet_grant_key, b->fleet_grant_key, 32);
	assert_int_equal(p->n_fleet_grant_classes, b->n_fleet_grant_classes);
	assert_int_equal(p->fleet_grant_max_days, b->fleet_grant_max_days);
	assert_int_equal(p->n_usb_block, b->n_usb_block);
	assert_int_equal(p->usb_mode, b->usb_mode);
	assert_int_equal(p->mfa_max_failures, b->mfa_max_failures);
	if (b->description)
		assert_string_equal(p->description, b->description);
	if (b->terminal_contact)
		assert_string_equal(p->terminal_contact, b->terminal_contact);
	/* Not a base any more. */
	policy_free(p);
	p = NULL;
	assert_int_equal(policy_parse_base("i.conf", text, len, &p, &errs), -EINVAL);
	policy_errors_clear(&errs);
	free(text);
	policy_free(b);
}

static void test_install_text(void **state)
{
	char *text = (char *)"untouched";
	size_t len = 7;

	/* After the [terminal] header, wherever it is. */
	check_installed(BASE, "fukushi-01",
			"[terminal]\nid = fukushi-01\ndescription = 福祉課\n"
			"contact = 情報政策課 内線 1234\n[usb]\nblock = mass_storage, mtp\n" FLEET);
	check_installed("[usb]\nmode = audit\n" FLEET "[terminal] ; here\ncontact = x\n", "k1x",
			"[usb]\nmode = audit\n" FLEET "[terminal] ; here\nid = k1x\ncontact = x\n");
	/* Header on the last line without a newline; CRLF lines; a BOM; no [terminal] at all */
	check_installed(FLEET "[terminal]", "kokuho-01", FLEET "[terminal]\nid = kokuho-01\n");
	check_installed("[terminal]\r\ncontact = x\r\n" FLEET, "kokuho-01",
			"[terminal]\r\nid = kokuho-01\ncontact = x\r\n" FLEET);
	check_installed("\xef\xbb\xbf[usb]\nmode = audit\n" FLEET, "kokuho-01",
			"\xef\xbb\xbf[terminal]\nid = kokuho-01\n[usb]\nmode = audit\n" FLEET);
	check_installed("\xef\xbb\xbf[terminal]\n" FLEET, "kokuho-01",
			"\xef\xbb\xbf[terminal]\nid = kokuho-01\n" FLEET);
	check_installed(FLEET, "fukushi-x", "[terminal]\nid = fukushi-x\n" FLEET);
	/* "[terminal]" in a comment or a value is not the header. */
	check_installed("; [terminal]\n[usb]\nallow = 0781:5581 name=[terminal]\n" FLEET, "k1x",
			"[terminal]\nid = k1x\n; [terminal]\n[usb]\n"
			"allow = 0781:5581 name=[terminal]\n" FLEET);

	/* Refused: a bad id, a text that is no valid base; nothing written. */
	assert_int_equal(policy_install_text(BASE, strlen(BASE), "a/b", &text, &len), -EINVAL);
	assert_int_equal(policy_install_text(BASE, strlen(BASE), "", &text, &len), -EINVAL);
	assert_int_equal(policy_install_text(BASE, strlen(BASE), NULL, &text, &len), -EINVAL);
	assert_int_equal(policy_install_text("[terminal]\nid = x\n" FLEET,
					     strlen("[terminal]\nid = x\n" FLEET), "k1x", &text,
					     &len),
			 -EINVAL);
	assert_int_equal(policy_install_text("[usb]\n", 6, "k1x", &text, &len), -EINVAL);
	assert_int_equal(policy_install_text(BASE "junk\n", strlen(BASE) + 5, "k1x", &text, &len),
			 -EINVAL);
	assert_string_equal(text, "untouched");
	assert_int_equal(len, 7);
	/* A base that does not cover the id still installs: coverage is the bundle's check. */
	check_installed(BASE, "other", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_minimal_file_has_defaults),
	    cmocka_unit_test(test_clauses),
	    cmocka_unit_test(test_terminal),
	    cmocka_unit_test(test_missing_id),
	    cmocka_unit_test(test_usb_mode),
	    cmocka_unit_test(test_usb_block_names),
	    cmocka_unit_test(test_usb_block_codes),
	    cmocka_unit_test(test_usb_block_errors),
	    cmocka_unit_test(test_usb_allow),
	    cmocka_unit_test(test_usb_allow_long_line),
	    cmocka_unit_test(test_line_length_boundary),
	    cmocka_unit_test(test_usb_allow_errors),
	    cmocka_unit_test(test_usb_allow_limit),
	    cmocka_unit_test(test_usb_strict_modprobe),
	    cmocka_unit_test(test_mfa_services),
	    cmocka_unit_test(test_mfa_numbers),
	    cmocka_unit_test(test_report),
	    cmocka_unit_test(test_checks),
	    cmocka_unit_test(test_unknown_section_and_key),
	    cmocka_unit_test(test_line_errors),
	    cmocka_unit_test(test_all_errors_reported),
	    cmocka_unit_test(test_syntax_variants),
	    cmocka_unit_test(test_file_too_large),
	    cmocka_unit_test(test_load),
	    cmocka_unit_test(test_shipped_policy),
	    cmocka_unit_test(test_match_reasons),
	    cmocka_unit_test(test_match_serial_hash),
	    cmocka_unit_test(test_match_composite_and_mtp),
	    cmocka_unit_test(test_match_audit_and_empty),
	    cmocka_unit_test(test_class_helpers),
	    cmocka_unit_test(test_usb_vendor_names_and_readers),
	    cmocka_unit_test(test_usb_reader_errors),
	    cmocka_unit_test(test_match_vendor_class_devices),
	    cmocka_unit_test(test_fleet_base),
	    cmocka_unit_test(test_fleet_errors),
	    cmocka_unit_test(test_fleet_key_base64),
	    cmocka_unit_test(test_install_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
