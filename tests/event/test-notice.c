/* SPDX-License-Identifier: MIT */
/* The desktop notice's wire format (event/notice.h): what the agent encodes parses back, and the
 * parser refuses each broken rule with a reason. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "notice.h"

static const char GOOD[] = "{\"v\":1,\"kind\":\"usb.blocked\",\"device\":\"0781:5581\","
			   "\"name\":\"Ultra\",\"request_code\":\"7K3M9QXD\","
			   "\"contact\":\"情報政策課 内線 1234\",\"ts\":1764900000123}";

static void test_roundtrip(void **state)
{
	struct notice n = {.vendor = 0x0781, .product = 0x5581, .ts_ms = 1764900000123};
	struct notice back;
	char reason[EVENT_REASON_MAX];
	char *text;
	size_t len;

	notice_text_set(n.name, NOTICE_NAME_MAX, "USB メモリ");
	notice_text_set(n.contact, NOTICE_CONTACT_MAX, "情報政策課 内線 1234");
	strcpy(n.request_code, "7K3M9QXD");
	assert_int_equal(notice_encode(&n, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(text, "\"device\":\"0781:5581\""));
	assert_non_null(strstr(text, "\"request_code\":\"7K3M9QXD\""));
	assert_int_equal(notice_parse(text, len, &back, reason), 0);
	assert_memory_equal(&n, &back, sizeof n);
	free(text);

	/* no name, no contact: null on the wire */
	n.name[0] = n.contact[0] = '\0';
	assert_int_equal(notice_encode(&n, &text, &len), 0);
	assert_non_null(strstr(text, "\"name\":null"));
	assert_non_null(strstr(text, "\"contact\":null"));
	assert_int_equal(notice_parse(text, len, &back, reason), 0);
	assert_string_equal(back.name, "");
	free(text);

	assert_int_equal(notice_parse(GOOD, strlen(GOOD), &back, reason), 0);
	assert_string_equal(back.contact, "情報政策課 内線 1234");
	assert_int_equal(back.vendor, 0x0781);
	assert_int_equal(back.product, 0x5581);
	assert_true(back.ts_ms == 1764900000123);
}

static void test_text_set(void **state)
{
	char buf[16];

	notice_text_set(buf, 7,
			"a\x01"
			"b\xff"
			"c");
	assert_string_equal(buf, "a\xef\xbf\xbd"
				 "b");	 /* the second U+FFFD no longer fits */
	notice_text_set(buf, 7, "ああ"); /* 6 bytes */
	assert_string_equal(buf, "ああ");
	notice_text_set(buf, 5, "ああ"); /* cut between characters */
	assert_string_equal(buf, "あ");
	notice_text_set(buf, 5, NULL);
	assert_string_equal(buf, "");
	/* C1 control (U+0085) */
	notice_text_set(buf, 15, "x\xc2\x85y");
	assert_string_equal(buf, "x\xef\xbf\xbdy");
}

static void test_encode_refuses(void **state)
{
	struct notice n = {.vendor = 1, .product = 2, .ts_ms = 1};
	char *text = NULL;
	size_t len;

	strcpy(n.request_code, "7K3M9QXU"); /* U is not Crockford */
	assert_int_equal(notice_encode(&n, &text, &len), -EINVAL);
	strcpy(n.request_code, "7K3M9QXD");
	strcpy(n.name, "a\nb");
	assert_int_equal(notice_encode(&n, &text, &len), -EINVAL);
	assert_null(text);
}

/* Replace the first `from` in GOOD by `to` and expect a refusal mentioning `why`. */
static void refused(const char *from, const char *to, const char *why)
{
	char buf[NOTICE_MAX + 64], reason[EVENT_REASON_MAX];
	const char *p = strstr(GOOD, from);
	struct notice n;

	assert_non_null(p);
	snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - GOOD), GOOD, to, p + strlen(from));
	assert_int_equal(notice_parse(buf, strlen(buf), &n, reason), -EBADMSG);
	if (!strstr(reason, why)) {
		fprintf(stderr, "message %s\nreason \"%s\" lacks \"%s\"\n", buf, reason, why);
		fail();
	}
}

static void test_parse_refuses(void **state)
{
	char big[NOTICE_MAX + 2], reason[EVENT_REASON_MAX];
	struct notice n;

	refused("\"v\":1", "\"v\":2", "\"v\"");
	refused("\"v\":1", "\"v\":\"1\"", "\"v\"");
	refused("\"v\":1,", "", "missing \"v\"");
	refused("usb.blocked", "usb.allowed", "\"kind\"");
	refused("0781:5581", "0781:558G", "\"device\"");
	refused("0781:5581", "0781:55810", "\"device\"");
	refused("0781:5581", "0781-5581", "\"device\"");
	refused("0781:5581", "0781:558A", "\"device\""); /* uppercase hex */
	refused("\"Ultra\"", "\"\"", "\"name\"");
	refused("\"Ultra\"", "\"a\\u001bb\"", "\"name\"");
	refused("\"Ultra\"", "\"a\\u0000b\"", "not JSON");
	refused("\"Ultra\"", "5", "\"name\"");
	refused("7K3M9QXD", "7K3M9QX", "request_code");
	refused("7K3M9QXD", "7k3m9qxd", "request_code");
	refused("7K3M9QXD", "7K3M9QXO", "request_code");
	refused("\"request_code\":\"7K3M9QXD\"", "\"request_code\":null", "request_code");
	refused("1764900000123", "1.5", "\"ts\"");
	refused("1764900000123", "-1", "\"ts\"");
	refused("1764900000123", "253402300800000", "\"ts\"");
	refused("\"ts\"", "\"tz\"", "unknown key");
	refused("\"contact\":", "\"name\":\"x\",\"contact\":", "duplicate");
	refused("{", "[", "not JSON");

	memset(big, ' ', sizeof big);
	memcpy(big, GOOD, strlen(GOOD));
	assert_int_equal(notice_parse(big, NOTICE_MAX + 1, &n, reason), -EBADMSG);
	assert_non_null(strstr(reason, "too large"));
	/* trailing spaces up to the limit are still one JSON object */
	assert_int_equal(notice_parse(big, NOTICE_MAX, &n, reason), 0);
	/* a name of NOTICE_NAME_MAX + 1 bytes */
	char longname[NOTICE_NAME_MAX + 2];
	memset(longname, 'x', NOTICE_NAME_MAX + 1);
	longname[NOTICE_NAME_MAX + 1] = '\0';
	char quoted[NOTICE_NAME_MAX + 8];
	snprintf(quoted, sizeof quoted, "\"%s\"", longname);
	refused("\"Ultra\"", quoted, "longer than 256");
	quoted[NOTICE_NAME_MAX + 1] = '"';
	quoted[NOTICE_NAME_MAX + 2] = '\0';
	char msg[NOTICE_MAX];
	const char *p = strstr(GOOD, "\"Ultra\"");
	snprintf(msg, sizeof msg, "%.*s%s%s", (int)(p - GOOD), GOOD, quoted, p + 7);
	assert_int_equal(notice_parse(msg, strlen(msg), &n, reason), 0);
	assert_int_equal(strlen(n.name), NOTICE_NAME_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_text_set),
	    cmocka_unit_test(test_encode_refuses),
	    cmocka_unit_test(test_parse_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
