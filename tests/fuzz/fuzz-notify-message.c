/* SPDX-License-Identifier: MIT */
/* Fuzz target: the desktop notice mynaguard-notify reads from /run/mynaguard/notify.sock
 * (event/notice.h). What parses must satisfy every rule of the format and encode back to a
 * message that parses to the same notice. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "notice.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct notice n, again;
	char reason[EVENT_REASON_MAX];
	char *text = NULL;
	size_t len;

	if (notice_parse((const char *)data, size, &n, reason) < 0) {
		if (reason[0] == '\0' || strlen(reason) >= EVENT_REASON_MAX)
			abort();
		return 0;
	}
	if (size > NOTICE_MAX || !notice_code_valid(n.request_code) || n.ts_ms < 0 ||
	    n.ts_ms > EVENT_TS_MAX_MS || strlen(n.name) > NOTICE_NAME_MAX ||
	    strlen(n.contact) > NOTICE_CONTACT_MAX || !utf8_valid(n.name, strlen(n.name)) ||
	    !utf8_valid(n.contact, strlen(n.contact)))
		abort();
	for (const char *p = n.name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
	if (notice_encode(&n, &text, &len) < 0)
		abort();
	if (notice_parse(text, len, &again, reason) < 0 || memcmp(&n, &again, sizeof n) != 0)
		abort();
	free(text);
	return 0;
}
