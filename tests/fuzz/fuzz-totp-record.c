/* SPDX-License-Identifier: MIT */
/* Fuzz target: the TOTP record parser (totp_record_parse); whatever it accepts must format back
 * to the same bytes (one spelling per record) and parse again to the same record. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "totp_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct totp_record a, b;
	char buf[TOTP_RECORD_MAX_SIZE];
	size_t len;

	if (totp_record_parse((const char *)data, size, &a) < 0)
		return 0;
	if (totp_record_format(&a, buf, sizeof(buf), &len) < 0)
		abort();
	if (len != size || memcmp(buf, data, size) != 0)
		abort();
	if (totp_record_parse(buf, len, &b) < 0)
		abort();
	if (memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	totp_user_valid((const char *)buf);
	return 0;
}
