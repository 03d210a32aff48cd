/* SPDX-License-Identifier: MIT */
/* The desktop notice (docs/fleet.md): one JSON object per SOCK_SEQPACKET message from mynaguardd
 * (encoder) to mynaguard-notify (strict parser). Pure functions over bytes; never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define NOTICE_VERSION	   1
#define NOTICE_MAX	   4096 /* one encoded message; anything longer is refused */
#define NOTICE_NAME_MAX	   256	/* bytes of the device's product string */
#define NOTICE_CONTACT_MAX 512	/* bytes of [terminal] contact */
#define NOTICE_CODE_LEN	   8	/* the request code: Crockford base32 */

/* {"v":1,"kind":"usb.blocked","device":"vvvv:pppp","name":"..."|null,
 *  "request_code":"XXXXXXXX","contact":"..."|null,"ts":UNIX_MS} */
struct notice {
	uint16_t vendor;
	uint16_t product;
	char name[NOTICE_NAME_MAX + 1]; /* "" = unknown (null on the wire) */
	char request_code[NOTICE_CODE_LEN + 1];
	char contact[NOTICE_CONTACT_MAX + 1]; /* "" = none (null on the wire) */
	int64_t ts_ms;			      /* the agent's clock, unix milliseconds */
};

/* Copy text for a notice into dst (max + 1 bytes): at most max bytes, cut on a character
 * boundary; bytes that are not valid UTF-8 and control characters (C0, DEL, C1) become U+FFFD
 * when it fits. NULL gives "". */
void notice_text_set(char *dst, size_t max, const char *src);

/* True when s is 8 characters of the Crockford base32 alphabet (0-9, A-Z without I L O U). */
bool notice_code_valid(const char *s);

/* The message text (malloc'd, NUL-terminated, at most NOTICE_MAX bytes). -EINVAL when a field
 * breaks the rules notice_parse checks (so what the agent sends always parses). */
int notice_encode(const struct notice *n, char **ret, size_t *ret_len);

/* Strict: at most NOTICE_MAX bytes; one JSON object with exactly the seven keys above, no
 * duplicates; v the integer 1, kind "usb.blocked", device four lowercase hex digits ':' four,
 * name and contact null or 1..max bytes of UTF-8 without control characters, request_code
 * notice_code_valid, ts an integer in 0..EVENT_TS_MAX_MS. -EBADMSG with a reason otherwise;
 * *ret written only on success. */
int notice_parse(const char *buf, size_t len, struct notice *ret,
		 char reason[static EVENT_REASON_MAX]);
