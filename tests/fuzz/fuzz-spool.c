/* SPDX-License-Identifier: MIT */
/* Fuzz target: spool segment bytes (the uplink reads files a crash may have damaged), and the
 * same bytes as the uplink's ack/acked file (the agent reads what a less trusted user wrote). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t acked;
	if (size <= 64 && spool_parse_acked((const char *)data, size, &acked) == 0 &&
	    acked > INT64_MAX)
		abort();
	size_t off = 0;
	while (off < size) {
		struct spool_record rec;
		int r = spool_record_parse(data + off, size - off, &rec);
		if (r <= 0)
			break;
		if ((size_t)r > size - off || rec.len == 0 || rec.len > EVENT_MAX_BYTES ||
		    (size_t)r != spool_record_size(rec.len) ||
		    (unsigned)rec.cls >= _SPOOL_CLASS_MAX)
			abort();
		struct event e;
		char reason[EVENT_REASON_MAX];
		if (event_decode(rec.payload, rec.len, &e, reason) == 0)
			event_clear(&e);
		off += (size_t)r;
	}
	return 0;
}
