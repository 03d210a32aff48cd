/* SPDX-License-Identifier: MIT */
/* Strings that come from a USB device: UTF-8 validation, log escaping, event sanitizing. libc only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usb_str.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes available), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (n == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool usb_str_valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	while (len > 0) {
		size_t l = utf8_seq_len(p, len);
		if (l == 0)
			return false;
		p += l;
		len -= l;
	}
	return true;
}

char *usb_str_escape(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	if (size == 0)
		return buf;
	if (!s) {
		snprintf(buf, size, "-");
		return buf;
	}
	if (size < 8) {
		buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char tmp[5];
		size_t l;

		if (*p == '"' || *p == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)*p;
			l = 2;
		} else if (*p < 0x20 || *p >= 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", *p);
			l = 4;
		} else {
			tmp[0] = (char)*p;
			l = 1;
		}
		/* room for this token, the closing quote, "..." and NUL */
		if (o + l + 5 > size) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, tmp, l);
		o += l;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

char *usb_str_sanitize(const char *s, size_t max)
{
	static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
	const unsigned char *p;
	size_t n, o = 0;
	char *out;

	if (!s)
		return NULL;
	out = malloc(max + 1);
	if (!out)
		return NULL;
	p = (const unsigned char *)s;
	n = strlen(s);
	while (n > 0) {
		size_t l = utf8_seq_len(p, n);
		const char *src = (const char *)p;
		size_t outl = l;

		if (l == 0 || (l == 1 && (*p < 0x20 || *p == 0x7f))) {
			src = repl;
			outl = 3;
			l = 1;
		}
		if (o + outl > max)
			break;
		memcpy(out + o, src, outl);
		o += outl;
		p += l;
		n -= l;
	}
	out[o] = '\0';
	return out;
}
