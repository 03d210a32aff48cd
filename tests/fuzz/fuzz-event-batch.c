/* SPDX-License-Identifier: MIT */
/* Fuzz target: the strict batch decoder (what the collector's ingest feeds it). */
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event_batch b;
	char reason[EVENT_REASON_MAX];

	if (event_batch_decode((const char *)data, size, &b, reason) < 0) {
		if (reason[0] == 0)
			abort();
		return 0;
	}
	if (b.n > EVENT_BATCH_MAX_EVENTS)
		abort();
	for (size_t i = 0; i < b.n; i++)
		if (strcmp(b.events[i].terminal, b.terminal) != 0)
			abort();
	event_batch_clear(&b);
	return 0;
}
