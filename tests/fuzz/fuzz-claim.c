/* SPDX-License-Identifier: MIT */
/* Fuzz target: the claim socket's messages (base/claim.h): a request as the uplink reads it from
 * a local client (claim_request_decode) and a reply as the PAM module reads it
 * (claim_reply_decode). A decoded request encodes back to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "claim.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char user[CLAIM_USER_MAX + 1];
	uint8_t back[CLAIM_REQUEST_MAX];
	enum claim_result res;
	uint64_t step;

	if (claim_request_decode(data, size, user, &step) == 0) {
		int n = claim_request_encode(user, step, back);
		if (n < 0 || (size_t)n != size || memcmp(back, data, size) != 0 || step == 0)
			abort();
	}
	if (claim_reply_decode(data, size, &res) == 0) {
		if (size != 1 || res >= _CLAIM_MAX || claim_reply_byte(res) != data[0])
			abort();
	}
	return 0;
}
