/* SPDX-License-Identifier: MIT */
/* Unit tests for base/escape.c: the one escaper of untrusted text for log lines and messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "escape.h"
#include "utf8.h"

/* Escape the NUL-terminated s with no input limit into a roomy buffer. */
static const char *esc(const char *s, unsigned flags)
{
	static char buf[512];
	return escape_text(s, strlen(s), SIZE_MAX, flags, buf, sizeof(buf));
}

static void test_plain_and_quotes(void **state)
{
	(void)state;
	assert_string_equal(esc("abc", 0), "abc");
	assert_string_equal(esc("abc", ESCAPE_QUOTES), "\"abc\"");
	assert_string_equal(esc("", 0), "");
	assert_string_equal(esc("", ESCAPE_QUOTES), "\"\"");
	assert_string_equal(esc("a\"b\\c", 0), "a\\\"b\\\\c");
	assert_string_equal(esc("\"", ESCAPE_QUOTES), "\"\\\"\"");
	assert_string_equal(esc("~ !", 0), "~ !");
}

static void test_controls(void **state)
{
	char buf[64];
	(void)state;
	assert_string_equal(esc("a\nb\tc\rd\x1b[31m\x7f", 0), "a\\x0ab\\x09c\\x0dd\\x1b[31m\\x7f");
	assert_string_equal(esc("\x01\x1f", ESCAPE_QUOTES), "\"\\x01\\x1f\"");
	/* a NUL byte inside the given length is a control byte too */
	assert_string_equal(escape_text("a\0b", 3, SIZE_MAX, 0, buf, sizeof(buf)), "a\\x00b");
	/* C1 controls (U+0080..U+009F, e.g. U+009B CSI) are shown byte by byte; U+00A0 is kept */
	assert_string_equal(esc("x\xc2\x9by\xc2\x80\xc2\xa0", 0), "x\\xc2\\x9by\\xc2\\x80\xc2\xa0");
}

static void test_utf8_kept_invalid_escaped(void **state)
{
	(void)state;
	/* Japanese names stay readable, 4-byte characters too */
	assert_string_equal(esc("\xe6\x9d\xb1\xe4\xba\xac USB \xf0\x9f\x92\xbe", ESCAPE_QUOTES),
			    "\"\xe6\x9d\xb1\xe4\xba\xac USB \xf0\x9f\x92\xbe\"");
	/* invalid bytes: stray continuation, 0xff, overlong, surrogate, beyond U+10FFFF */
	assert_string_equal(esc("\x80\xff", 0), "\\x80\\xff");
	assert_string_equal(esc("\xc0\xaf", 0), "\\xc0\\xaf");
	assert_string_equal(esc("\xed\xa0\x80", 0), "\\xed\\xa0\\x80");
	assert_string_equal(esc("\xf4\x90\x80\x80", 0), "\\xf4\\x90\\x80\\x80");
	/* a sequence that the string ends inside is invalid, not a cut */
	assert_string_equal(esc("ab\xe6\x9d", 0), "ab\\xe6\\x9d");
	/* a broken sequence followed by a good character: only the bad bytes are escaped */
	assert_string_equal(esc("\xe6\x9d\xe6\x9d\xb1", 0), "\\xe6\\x9d\xe6\x9d\xb1");
}

static void test_max_in(void **state)
{
	char buf[64];
	const char *jp = "a\xe6\x9d\xb1\xe4\xba\xac"; /* a東京: 7 bytes */
	(void)state;

	assert_string_equal(escape_text("abcdef", 6, 6, 0, buf, sizeof(buf)), "abcdef");
	assert_string_equal(escape_text("abcdef", 6, 3, 0, buf, sizeof(buf)), "abc...");
	assert_string_equal(escape_text("abcdef", 6, 3, ESCAPE_QUOTES, buf, sizeof(buf)),
			    "\"abc...\"");
	assert_string_equal(escape_text("abcdef", 6, 0, 0, buf, sizeof(buf)), "...");
	/* len limits too: bytes after len are never read */
	assert_string_equal(escape_text("abcdef", 2, 3, 0, buf, sizeof(buf)), "ab");
	/* the cut never splits a character: one crossing max_in is left out whole */
	assert_string_equal(escape_text(jp, 7, 7, 0, buf, sizeof(buf)), jp);
	assert_string_equal(escape_text(jp, 7, 6, 0, buf, sizeof(buf)), "a\xe6\x9d\xb1...");
	assert_string_equal(escape_text(jp, 7, 5, 0, buf, sizeof(buf)), "a\xe6\x9d\xb1...");
	assert_string_equal(escape_text(jp, 7, 4, 0, buf, sizeof(buf)), "a\xe6\x9d\xb1...");
	assert_string_equal(escape_text(jp, 7, 3, 0, buf, sizeof(buf)), "a...");
	assert_string_equal(escape_text(jp, 7, 1, 0, buf, sizeof(buf)), "a...");
	/* max_in counts input bytes, not output: an escaped byte counts once */
	assert_string_equal(escape_text("\n\n\n", 3, 2, 0, buf, sizeof(buf)), "\\x0a\\x0a...");
	/* invalid bytes just before max_in are shown, one at a time */
	assert_string_equal(escape_text("a\xff\xfe", 3, 2, 0, buf, sizeof(buf)), "a\\xff...");
}

static void test_small_buffers(void **state)
{
	char buf[16];
	(void)state;

	/* size 0: nothing written, "" returned */
	memset(buf, 'Z', sizeof(buf));
	assert_string_equal(escape_text("abc", 3, SIZE_MAX, 0, buf, 0), "");
	assert_int_equal(buf[0], 'Z');
	/* exactly fits: no cut mark */
	assert_string_equal(escape_text("abc", 3, SIZE_MAX, ESCAPE_QUOTES, buf, 6), "\"abc\"");
	assert_string_equal(escape_text("abc", 3, SIZE_MAX, 0, buf, 4), "abc");
	/* one byte short: cut, and the mark needs its room */
	assert_string_equal(escape_text("abcd", 4, SIZE_MAX, 0, buf, 4), "...");
	assert_string_equal(escape_text("abcdefgh", 8, SIZE_MAX, 0, buf, 6), "ab...");
	assert_string_equal(escape_text("abcdefgh", 8, SIZE_MAX, ESCAPE_QUOTES, buf, 8),
			    "\"ab...\"");
	/* too small for the mark: the empty string, still terminated */
	assert_string_equal(escape_text("abcd", 4, SIZE_MAX, 0, buf, 3), "");
	assert_string_equal(escape_text("abcd", 4, SIZE_MAX, ESCAPE_QUOTES, buf, 5), "");
	assert_string_equal(escape_text("abcd", 4, SIZE_MAX, 0, buf, 1), "");
	/* but what fits whole is written whole */
	assert_string_equal(escape_text("a", 1, SIZE_MAX, 0, buf, 2), "a");
	assert_string_equal(escape_text("", 0, SIZE_MAX, ESCAPE_QUOTES, buf, 3), "\"\"");
	/* an escape is never split: \x0a needs 4 bytes */
	assert_string_equal(escape_text("a\nbcdef", 7, SIZE_MAX, 0, buf, 8), "a...");
	assert_string_equal(escape_text("a\nbcdef", 7, SIZE_MAX, 0, buf, 9), "a\\x0a...");
	/* nor a character: 東 needs 3 bytes */
	assert_string_equal(escape_text("a\xe6\x9d\xb1"
					"bcde",
					8, SIZE_MAX, 0, buf, 7),
			    "a...");
	assert_string_equal(escape_text("a\xe6\x9d\xb1"
					"bcde",
					8, SIZE_MAX, 0, buf, 8),
			    "a\xe6\x9d\xb1...");
	/* both limits: whichever cuts first */
	assert_string_equal(escape_text("abcdefgh", 8, 2, 0, buf, 16), "ab...");
	assert_string_equal(escape_text("abcdefgh", 8, 6, 0, buf, 7), "abc...");
}

static void test_null(void **state)
{
	char buf[8];
	(void)state;
	assert_string_equal(escape_text(NULL, 0, SIZE_MAX, ESCAPE_QUOTES, buf, sizeof(buf)), "-");
	assert_string_equal(escape_text(NULL, 5, 3, 0, buf, sizeof(buf)), "-");
	assert_string_equal(escape_text(NULL, 0, SIZE_MAX, 0, buf, 1), "");
	assert_string_equal(escape_text(NULL, 0, SIZE_MAX, 0, buf, 0), "");
}

/* Every byte value, at every buffer size: terminated inside the buffer, valid UTF-8, no raw
 * control byte, and for a buffer of ESCAPE_SIZE(max_in) never cut by the buffer. */
static void test_all_bytes_all_sizes(void **state)
{
	char in[256], buf[ESCAPE_SIZE(256)];
	(void)state;

	for (int i = 0; i < 256; i++)
		in[i] = (char)(255 - i);
	for (size_t size = 1; size <= sizeof(buf); size++) {
		memset(buf, 'Z', sizeof(buf));
		const char *r = escape_text(in, sizeof(in), SIZE_MAX, ESCAPE_QUOTES, buf, size);
		size_t n = strlen(r);
		assert_ptr_equal(r, buf);
		assert_true(n < size);
		assert_true(utf8_valid(r, n));
		for (size_t k = 0; k < n; k++)
			assert_true((unsigned char)r[k] >= 0x20 && (unsigned char)r[k] != 0x7f);
		for (size_t k = size; k < sizeof(buf); k++)
			assert_int_equal(buf[k], 'Z');
	}
	escape_text(in, sizeof(in), SIZE_MAX, ESCAPE_QUOTES, buf, sizeof(buf));
	assert_null(strstr(buf, "..."));
	/* 93 printable ASCII bytes as they are, '"' and '\\' as 2, the other 161 as \xHH (no
	 * valid multi-byte sequence in descending order), and the quotes */
	assert_int_equal(strlen(buf), 93 + 2 * 2 + 161 * 4 + 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_and_quotes),
	    cmocka_unit_test(test_controls),
	    cmocka_unit_test(test_utf8_kept_invalid_escaped),
	    cmocka_unit_test(test_max_in),
	    cmocka_unit_test(test_small_buffers),
	    cmocka_unit_test(test_null),
	    cmocka_unit_test(test_all_bytes_all_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
