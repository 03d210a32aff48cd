/* SPDX-License-Identifier: MIT */
/* Strings that come from a USB device: UTF-8 validation, log escaping, event sanitizing. libc only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usb_str.h"
#include "utf8.h"

bool usb_str_valid_utf8(const char *s, size_t len)
{
	return utf8_valid(s, len);
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
