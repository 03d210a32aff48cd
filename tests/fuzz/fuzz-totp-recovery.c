/* SPDX-License-Identifier: MIT */
/* Fuzz target: a recovery code file (STORE/.USER.recovery, totp_recovery_decode) and what a
 * user types as a recovery code (totp_recovery_normalize). Whatever decodes encodes back to the
 * same bytes; a normalized code is 16 digits. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "totp_recovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct totp_recovery r;
	uint8_t back[TOTP_RECOVERY_SIZE];
	char text[256], code[TOTP_RECOVERY_DIGITS + 1];

	if (totp_recovery_decode(data, size, &r) == 0) {
		totp_recovery_encode(&r, back);
		if (size != TOTP_RECOVERY_SIZE || memcmp(back, data, size) != 0)
			abort();
	}
	if (size < sizeof(text)) {
		memcpy(text, data, size);
		text[size] = 0;
		if (totp_recovery_normalize(text, code)) {
			if (strlen(code) != TOTP_RECOVERY_DIGITS ||
			    strspn(code, "0123456789") != TOTP_RECOVERY_DIGITS)
				abort();
		}
	}
	return 0;
}
