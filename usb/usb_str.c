/* SPDX-License-Identifier: MIT */
/* Strings that come from a USB device: UTF-8 validation, log escaping, event sanitizing. libc only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "usb_str.h"
#include "utf8.h"

bool usb_str_valid_utf8(const char *s, size_t len)
{
	return utf8_valid(s, len);
}

const char *usb_str_escape(const char *s, char *buf, size_t size)
{
	return escape_text(s, s ? strlen(s) : 0, SIZE_MAX, ESCAPE_QUOTES, buf, size);
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
