/* SPDX-License-Identifier: MIT */
/* Fuzz target: PAM module → agent datagrams (any local user can send them). */
#include <stdlib.h>

#include "event.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum event_kind kind;
	int64_t ts;
	json_t *d;
	char reason[EVENT_REASON_MAX];

	if (event_datagram_decode((const char *)data, size, &kind, &ts, &d, reason) < 0)
		return 0;
	if (!event_kind_is_auth(kind) || ts < 0 || !json_is_object(d))
		abort();
	json_decref(d);
	return 0;
}
