/* SPDX-License-Identifier: MIT */
/* Fuzz target: the TOTP record parser (totp_record_parse), versions 1 and 2. Whatever it accepts
 * must format (as version 2) to a record that parses to the same values, and its next state slot, written in place over the
 * input, must parse back as the current state with SEQ + 1. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "totp_record.h"

static void same_state(const struct totp_record *a, const struct totp_record *b)
{
	if (a->secret_len != b->secret_len || memcmp(a->secret, b->secret, a->secret_len) != 0 ||
	    a->digits != b->digits || a->period != b->period || a->enrolled != b->enrolled ||
	    a->last_step != b->last_step || a->failures != b->failures ||
	    a->locked_until != b->locked_until || a->last_used != b->last_used ||
	    a->verified != b->verified || a->kind != b->kind || strcmp(a->serial, b->serial) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct totp_record a, b;
	char buf[TOTP_RECORD_MAX_SIZE + 1], line[TOTP_SLOT_LEN_MAX + 1];
	size_t len, off, slen;

	if (totp_record_parse((const char *)data, size, &a) < 0)
		return 0;
	if (totp_record_format(&a, buf, sizeof(buf), &len) < 0)
		abort();
	if (totp_record_parse(buf, len, &b) < 0)
		abort();
	same_state(&a, &b);
	if (a.seq + 1 >= TOTP_SEQ_MAX)
		return 0;
	if (totp_record_next_slot(&a, line, &slen, &off) < 0 || off + slen > size)
		abort();
	memcpy(buf, data, size);
	memcpy(buf + off, line, slen);
	if (totp_record_parse(buf, size, &b) < 0)
		abort();
	same_state(&a, &b);
	if (b.seq != a.seq + 1 || b.current == a.current)
		abort();
	return 0;
}
