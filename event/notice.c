/* SPDX-License-Identifier: MIT */
/* The desktop notice's wire format (notice.h): encoder for mynaguardd, strict parser for
 * mynaguard-notify. Pure; jansson only. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "notice.h"
#include "utf8.h"

static const char CROCKFORD[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static const char REPLACEMENT[] = "\xef\xbf\xbd"; /* U+FFFD */

/* A control character at s (len bytes of one valid sequence): C0, DEL, or C1 (U+0080..U+009F). */
static bool is_control(const unsigned char *s, size_t len)
{
	if (len == 1)
		return s[0] < 0x20 || s[0] == 0x7f;
	return len == 2 && s[0] == 0xc2 && s[1] < 0xa0;
}

void notice_text_set(char *dst, size_t max, const char *src)
{
	size_t o = 0;

	dst[0] = '\0';
	if (!src)
		return;
	const unsigned char *s = (const unsigned char *)src;
	size_t len = strlen(src);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len(s + i, len - i);
		const char *piece = (const char *)s + i;
		size_t plen = n;
		if (n == 0 || is_control(s + i, n)) {
			piece = REPLACEMENT;
			plen = sizeof(REPLACEMENT) - 1;
			if (n == 0)
				n = 1;
		}
		if (o + plen > max)
			break;
		memcpy(dst + o, piece, plen);
		o += plen;
		i += n;
	}
	dst[o] = '\0';
}

bool notice_code_valid(const char *s)
{
	if (!s || strlen(s) != NOTICE_CODE_LEN)
		return false;
	for (size_t i = 0; i < NOTICE_CODE_LEN; i++)
		if (!strchr(CROCKFORD, s[i]) || s[i] == '\0')
			return false;
	return true;
}

/* 1..max bytes of valid UTF-8 without control characters. */
static bool text_valid(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
		if (n == 0 || is_control((const unsigned char *)s + i, n))
			return false;
		i += n;
	}
	return true;
}

static json_t *text_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

int notice_encode(const struct notice *n, char **ret, size_t *ret_len)
{
	char device[10];
	size_t nlen = strnlen(n->name, sizeof(n->name)),
	       clen = strnlen(n->contact, sizeof(n->contact));

	if (nlen > NOTICE_NAME_MAX || clen > NOTICE_CONTACT_MAX ||
	    (nlen > 0 && !text_valid(n->name, nlen, NOTICE_NAME_MAX)) ||
	    (clen > 0 && !text_valid(n->contact, clen, NOTICE_CONTACT_MAX)) ||
	    !notice_code_valid(n->request_code) || n->ts_ms < 0 || n->ts_ms > EVENT_TS_MAX_MS)
		return -EINVAL;
	snprintf(device, sizeof(device), "%04x:%04x", n->vendor, n->product);
	json_t *o = json_pack("{s:i, s:s, s:s, s:o, s:s, s:o, s:I}", "v", NOTICE_VERSION, "kind",
			      "usb.blocked", "device", device, "name", text_or_null(n->name),
			      "request_code", n->request_code, "contact", text_or_null(n->contact),
			      "ts", (json_int_t)n->ts_ms);
	if (!o)
		return -ENOMEM;
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return -ENOMEM;
	size_t len = strlen(text);
	if (len > NOTICE_MAX) {
		free(text);
		return -E2BIG;
	}
	*ret = text;
	*ret_len = len;
	return 0;
}

static int hex4(const char *s, uint16_t *ret)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9')
			v = v * 16 + (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (unsigned)(c - 'a' + 10);
		else
			return -EBADMSG;
	}
	*ret = (uint16_t)v;
	return 0;
}

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(reason, EVENT_REASON_MAX, __VA_ARGS__);                                   \
		return -EBADMSG;                                                                   \
	} while (0)

/* A key that must be a string of 1..max bytes (or null when nullable); copied into dst. */
static int get_text(json_t *o, const char *key, bool nullable, size_t max, char *dst,
		    char reason[static EVENT_REASON_MAX])
{
	json_t *v = json_object_get(o, key);

	if (nullable && json_is_null(v)) {
		dst[0] = '\0';
		return 0;
	}
	if (!json_is_string(v))
		FAIL("\"%s\" is not a string%s", key, nullable ? " or null" : "");
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (!text_valid(s, len, max))
		FAIL("\"%s\" is empty, longer than %zu bytes or holds control characters", key,
		     max);
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

int notice_parse(const char *buf, size_t len, struct notice *ret,
		 char reason[static EVENT_REASON_MAX])
{
	static const char *const keys[] = {"v",	      "kind", "device", "name", "request_code",
					   "contact", "ts"};
	struct notice n = {0};
	json_error_t jerr;
	char code[64];
	int r;

	reason[0] = '\0';
	if (len > NOTICE_MAX)
		FAIL("message too large (%zu bytes, limit %d)", len, NOTICE_MAX);
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		FAIL("not JSON: %.120s", jerr.text);
	if (!json_is_object(o)) {
		json_decref(o);
		FAIL("not a JSON object");
	}
	/* Exactly the known keys: a newer agent that says more says v = 2. */
	const char *k;
	json_t *val;
	json_object_foreach(o, k, val)
	{
		bool known = false;
		for (size_t i = 0; i < ELEMENTSOF(keys); i++)
			known = known || strcmp(k, keys[i]) == 0;
		if (!known) {
			char shown[40];
			notice_text_set(shown, 32, k);
			json_decref(o);
			FAIL("unknown key \"%s\"", shown);
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		if (!json_object_get(o, keys[i])) {
			json_decref(o);
			FAIL("missing \"%s\"", keys[i]);
		}
	val = json_object_get(o, "v");
	if (!json_is_integer(val) || json_integer_value(val) != NOTICE_VERSION) {
		json_decref(o);
		FAIL("\"v\" is not the integer %d", NOTICE_VERSION);
	}
	val = json_object_get(o, "kind");
	if (!json_is_string(val) || strcmp(json_string_value(val), "usb.blocked") != 0 ||
	    json_string_length(val) != strlen("usb.blocked")) {
		json_decref(o);
		FAIL("\"kind\" is not \"usb.blocked\"");
	}
	val = json_object_get(o, "device");
	if (!json_is_string(val) || json_string_length(val) != 9 ||
	    json_string_value(val)[4] != ':' || hex4(json_string_value(val), &n.vendor) < 0 ||
	    hex4(json_string_value(val) + 5, &n.product) < 0) {
		json_decref(o);
		FAIL("\"device\" is not vvvv:pppp (lowercase hex)");
	}
	r = get_text(o, "name", true, NOTICE_NAME_MAX, n.name, reason);
	if (r >= 0)
		r = get_text(o, "contact", true, NOTICE_CONTACT_MAX, n.contact, reason);
	if (r >= 0)
		r = get_text(o, "request_code", false, sizeof(code) - 1, code, reason);
	if (r < 0) {
		json_decref(o);
		return r;
	}
	if (!notice_code_valid(code)) {
		json_decref(o);
		FAIL("\"request_code\" is not 8 characters of Crockford base32");
	}
	memcpy(n.request_code, code, NOTICE_CODE_LEN + 1);
	val = json_object_get(o, "ts");
	if (!json_is_integer(val) || json_integer_value(val) < 0 ||
	    json_integer_value(val) > EVENT_TS_MAX_MS) {
		json_decref(o);
		FAIL("\"ts\" is not an integer in 0..%lld", (long long)EVENT_TS_MAX_MS);
	}
	n.ts_ms = (int64_t)json_integer_value(val);
	json_decref(o);
	*ret = n;
	return 0;
}
