/* SPDX-License-Identifier: MIT */
/* Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). libc only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the valid UTF-8 sequence at s, of which n bytes are available; 0 when the
 * bytes there are not valid UTF-8 (or n is 0). */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* true when all len bytes of s are valid UTF-8 (NUL bytes count as valid: check them apart). */
bool utf8_valid(const char *s, size_t len);

/* How many leading bytes of s (len bytes) are valid UTF-8, ending on a character boundary. */
size_t utf8_valid_prefix(const char *s, size_t len);

/* Number of characters in a NUL-terminated string (counts lead bytes; for valid UTF-8). */
size_t utf8_chars(const char *s);

/* Where to cut s (len bytes) to keep at most max bytes without splitting a character: len when
 * it fits, else the largest n <= max with s[n] not a continuation byte (at most 3 steps back;
 * for valid UTF-8 the prefix s[0..n) is valid). Callers that add "..." reserve room first. */
size_t utf8_truncate(const char *s, size_t len, size_t max);
