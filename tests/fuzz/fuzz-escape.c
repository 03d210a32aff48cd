/* SPDX-License-Identifier: MIT */
/* Fuzz target for base/escape.c: the first two bytes choose the input limit and the buffer
 * size, the rest is the text. The output must be NUL-terminated inside the buffer, valid UTF-8,
 * free of raw control bytes (C0, DEL, C1), and the bytes after the buffer untouched. */
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "fuzz.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[ESCAPE_SIZE(256) + 16];

	if (size < 2)
		return 0;
	size_t max_in = data[0] == 0xff ? SIZE_MAX : data[0];
	size_t bufsize = data[1] == 0xff ? ESCAPE_SIZE(256) : data[1];
	const char *s = (const char *)data + 2;
	size_t len = size - 2;
	if (len > 256)
		len = 256;

	memset(buf, 'Z', sizeof(buf));
	for (unsigned flags = 0; flags <= ESCAPE_QUOTES; flags++) {
		const char *r = escape_text(s, len, max_in, flags, buf, bufsize);
		size_t n = strlen(r);
		if (bufsize > 0 && (r != buf || n >= bufsize))
			abort();
		if (!utf8_valid(r, n))
			abort();
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)r[i];
			if (c < 0x20 || c == 0x7f || (c == 0xc2 && (unsigned char)r[i + 1] < 0xa0))
				abort();
		}
		for (size_t i = bufsize; i < sizeof(buf); i++)
			if (buf[i] != 'Z')
				abort();
		/* with a buffer for everything and no input limit, nothing is cut */
		if (bufsize == ESCAPE_SIZE(256) && max_in == SIZE_MAX && strstr(r, "...") &&
		    !memmem(s, len, "...", 3))
			abort();
	}
	return 0;
}
