/* SPDX-License-Identifier: MIT */
/* Fuzz target: the setuid helper's stdin parser (totp_helper_parse_input). What it accepts is
 * four fields inside the input, each within its limit, that put back together are the input. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "totp_helper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *fields[4];
	char again[TOTP_HELPER_INPUT_MAX];
	size_t len = 0;

	if (totp_helper_parse_input(buf, size, fields) < 0)
		return 0;
	for (size_t k = 0; k < 4; k++) {
		size_t n;
		if (fields[k] < buf || fields[k] >= buf + size)
			abort();
		n = strnlen(fields[k], (size_t)(buf + size - fields[k]));
		if (n > TOTP_HELPER_FIELD_MAX || fields[k] + n >= buf + size)
			abort();
		if (len + n + 1 > sizeof(again))
			abort();
		memcpy(again + len, fields[k], n + 1);
		len += n + 1;
	}
	if (len != size || memcmp(again, buf, size) != 0)
		abort();
	return 0;
}
