/* SPDX-License-Identifier: MIT */
/* The one escaper for untrusted text in log lines and human messages. libc only, never logs. */
#pragma once

#include <stddef.h>

/* Surround the text with double quotes (a NULL string is still written as - without them). */
#define ESCAPE_QUOTES 0x1u

/* A buffer that holds max_in input bytes however they escape (4 output bytes each at most),
 * the quotes, the "..." cut mark and the NUL. */
#define ESCAPE_SIZE(max_in) ((max_in)*4 + 6)

/* Write the first len bytes of s (NUL bytes included) into buf as one printable token:
 * - valid UTF-8 is kept as it is (Japanese device and user names stay readable), except
 *   '"' and '\\', written \" and \\;
 * - control characters (bytes < 0x20, 0x7f, and the C1 controls U+0080..U+009F) and every
 *   byte that is not part of a valid UTF-8 sequence are written \xHH (lowercase hex);
 * - at most max_in input bytes are shown: when len is larger the text is cut on a character
 *   boundary (a character that crosses max_in is left out whole) and "..." marks the cut;
 * - when the escaped text does not fit in size bytes it is cut after the last whole character
 *   or escape that fits, again marked "...";
 * - with ESCAPE_QUOTES the text (cut mark included) is surrounded by '"'.
 * buf is always NUL-terminated when size > 0; when not even the quotes and "..." fit, it is
 * the empty string. s == NULL is written as - . Returns buf ("" when size is 0). The output is
 * valid UTF-8 and holds no control byte. */
const char *escape_text(const char *s, size_t len, size_t max_in, unsigned flags, char *buf,
			size_t size);
