/* SPDX-License-Identifier: MIT */
/* Fuzz target: the dashboard's Cookie header parser (auth_cookie_find, collector/auth.c). What it
 * returns fits the buffer, holds only cookie-octets, and is found again in a header that has
 * only that cookie. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *header = malloc(size + 1);
	char out[ACCOUNT_ID_HEX + 1], small[4], again[ACCOUNT_ID_HEX + 1];
	char one[sizeof(AUTH_COOKIE) + ACCOUNT_ID_HEX + 2];
	int r;

	if (!header)
		return 0;
	memcpy(header, data, size);
	header[size] = 0;
	r = auth_cookie_find(header, AUTH_COOKIE, out, sizeof(out));
	if (r == 0) {
		size_t n = strlen(out);
		if (n >= sizeof(out))
			abort();
		for (size_t i = 0; i < n; i++)
			if (out[i] <= 0x20 || out[i] >= 0x7f || strchr("\";,\\", out[i]))
				abort();
		snprintf(one, sizeof(one), AUTH_COOKIE "=%s", out);
		if (auth_cookie_find(one, AUTH_COOKIE, again, sizeof(again)) != 0 ||
		    strcmp(again, out) != 0)
			abort();
	} else if (r != -ENOENT && r != -EINVAL)
		abort();
	r = auth_cookie_find(header, "a", small, sizeof(small));
	if (r == 0 && strlen(small) >= sizeof(small))
		abort();
	free(header);
	return 0;
}
