/* SPDX-License-Identifier: MIT */
/* The one escaper for untrusted text in log lines and human messages. libc only, never logs. */
#include "escape.h"

#include <stdbool.h>
#include <string.h>

#include "utf8.h"

/* The next token of s[i..len): how many input bytes it takes (*in, 0 when the character at i
 * crosses max_in and the text is cut there) and its escaped text in tok; returns its length. */
static size_t next_token(const unsigned char *s, size_t i, size_t len, size_t max_in, char tok[4],
			 size_t *in)
{
	static const char hex[] = "0123456789abcdef";
	size_t k = utf8_seq_len(s + i, len - i);
	unsigned char ch = s[i];

	if (k > 1 && i + k > max_in) {
		*in = 0;
		return 0;
	}
	*in = 1;
	if (ch == '"' || ch == '\\') {
		tok[0] = '\\';
		tok[1] = (char)ch;
		return 2;
	}
	/* k == 0: not valid UTF-8; k == 2 from 0xc2 0x80..0x9f: a C1 control character (the
	 * C1 escape is then shown one byte at a time, like an invalid sequence). */
	if (k == 0 || ch < 0x20 || ch == 0x7f || (k == 2 && ch == 0xc2 && s[i + 1] < 0xa0)) {
		tok[0] = '\\';
		tok[1] = 'x';
		tok[2] = hex[ch >> 4];
		tok[3] = hex[ch & 0xf];
		return 4;
	}
	*in = k;
	memcpy(tok, s + i, k);
	return k;
}

const char *escape_text(const char *s, size_t len, size_t max_in, unsigned flags, char *buf,
			size_t size)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t q = (flags & ESCAPE_QUOTES) ? 1 : 0;
	size_t total = 0, o = 0, i, in;
	bool cut = false;
	char tok[4];

	if (size == 0)
		return "";
	if (!s) {
		if (size >= 2)
			memcpy(buf, "-", 2);
		else
			buf[0] = '\0';
		return buf;
	}
	/* First pass: the escaped length of everything shown, and whether max_in cuts it. */
	for (i = 0; i < len; i += in) {
		if (i >= max_in) {
			cut = true;
			break;
		}
		size_t t = next_token(u, i, len, max_in, tok, &in);
		if (in == 0) {
			cut = true;
			break;
		}
		total += t;
	}
	if (!cut && q + total + q + 1 <= size) {
		/* It all fits: no cut mark needed. */
		if (q)
			buf[o++] = '"';
		for (i = 0; i < len; i += in) {
			size_t t = next_token(u, i, len, max_in, tok, &in);
			memcpy(buf + o, tok, t);
			o += t;
		}
	} else {
		/* Room for the quotes, "..." and the NUL, or nothing at all. */
		if (q + 3 + q + 1 > size) {
			buf[0] = '\0';
			return buf;
		}
		if (q)
			buf[o++] = '"';
		for (i = 0; i < len && i < max_in; i += in) {
			size_t t = next_token(u, i, len, max_in, tok, &in);
			if (in == 0 || o + t + 3 + q + 1 > size)
				break;
			memcpy(buf + o, tok, t);
			o += t;
		}
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	if (q)
		buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
