/* SPDX-License-Identifier: MIT */
/* Fuzz target: the strict event decoder; whatever it accepts must encode and decode to the same. */
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event e;
	char reason[EVENT_REASON_MAX];

	if (event_decode((const char *)data, size, &e, reason) < 0) {
		if (strlen(reason) >= EVENT_REASON_MAX || reason[0] == 0)
			abort();
		return 0;
	}
	char *text;
	size_t len;
	if (event_encode(&e, &text, &len) == 0) {
		struct event back;
		if (event_decode(text, len, &back, reason) < 0)
			abort(); /* an accepted event must survive its own encoding */
		if (back.seq != e.seq || back.ts_ms != e.ts_ms || back.kind != e.kind ||
		    strcmp(back.terminal, e.terminal) != 0 || !json_equal(back.data, e.data))
			abort();
		event_clear(&back);
		free(text);
	}
	event_clear(&e);
	return 0;
}
