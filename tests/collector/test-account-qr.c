/* SPDX-License-Identifier: MIT */
/* The enrollment QR code of the account page (collector/account-api.c): the SVG's dark modules
 * are exactly libqrencode's for the same text (bit 0 of each module), inside a 4-module quiet
 * zone, and a text too long for a QR code gives NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <qrencode.h>

#include "account-api.h"

static void test_svg_modules(void **state)
{
	static const char uri[] = "otpauth://totp/mynaguard-dashboard:yui?secret="
				  "WQ7C3C37L72IWIQZ7AXFWVEP4J6V6HZF&issuer=mynaguard-dashboard"
				  "&algorithm=SHA1&digits=6&period=30";
	QRcode *qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	size_t len = 0, dark = 0, want = 0;
	char *svg = account_qr_svg(uri, &len), *p, head[128];
	int w, x, y, n;
	unsigned char *seen;

	(void)state;
	assert_non_null(qr);
	assert_non_null(svg);
	assert_int_equal(strlen(svg), len);
	w = qr->width;
	snprintf(head, sizeof(head),
		 "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\"", w + 8, w + 8);
	assert_memory_equal(svg, head, strlen(head));
	assert_non_null(strstr(svg, "</svg>"));
	seen = calloc((size_t)w * (size_t)w, 1);
	assert_non_null(seen);
	p = strstr(svg, " d=\"");
	assert_non_null(p);
	p += 4;
	while (sscanf(p, "M%d %dh1v1h-1z%n", &x, &y, &n) == 2) {
		assert_true(x >= 4 && x < w + 4 && y >= 4 && y < w + 4);
		assert_int_equal(seen[(y - 4) * w + (x - 4)], 0);
		seen[(y - 4) * w + (x - 4)] = 1;
		dark++;
		p += n;
	}
	assert_memory_equal(p, "\"/></svg>", 9);
	for (int i = 0; i < w * w; i++) {
		assert_int_equal(seen[i], qr->data[i] & 1);
		want += qr->data[i] & 1;
	}
	assert_int_equal(dark, want);
	/* the three finder patterns' corners are dark */
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[w - 1], 1);
	assert_int_equal(seen[(w - 1) * w], 1);
	free(seen);
	free(svg);
	QRcode_free(qr);
}

static void test_svg_too_long(void **state)
{
	char *text = malloc(4001), *svg;
	size_t len = 0;

	(void)state;
	assert_non_null(text);
	memset(text, 'A', 4000);
	text[4000] = 0;
	svg = account_qr_svg(text, &len);
	assert_null(svg);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_svg_modules),
	    cmocka_unit_test(test_svg_too_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
