/* SPDX-License-Identifier: MIT */
/* The setuid helper's input parser (totp_helper.h): bytes in, four fields out, no I/O. */
#include <errno.h>
#include <string.h>

#include "totp_helper.h"

int totp_helper_parse_input(const char *buf, size_t len, const char *ret_fields[4])
{
	const char *fields[4];
	size_t i = 0;

	if (len > TOTP_HELPER_INPUT_MAX)
		return -E2BIG;
	for (size_t k = 0; k < 4; k++) {
		const char *nul = i < len ? memchr(buf + i, '\0', len - i) : NULL;
		if (!nul || (size_t)(nul - (buf + i)) > TOTP_HELPER_FIELD_MAX)
			return -EINVAL;
		fields[k] = buf + i;
		i = (size_t)(nul - buf) + 1;
	}
	if (i != len)
		return -EINVAL;
	memcpy(ret_fields, fields, sizeof(fields));
	return 0;
}
