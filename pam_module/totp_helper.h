/* SPDX-License-Identifier: MIT */
/* The protocol between pam_mynaguard.so (running as a user, e.g. in a screen locker) and the
 * setuid-root helper mynaguard-totp-check, which checks only the calling user's own code.
 *
 *   argv:   mynaguard-totp-check USER [nullok]
 *   stdin:  CODE '\0' SERVICE '\0' RHOST '\0' TTY '\0'   (at most TOTP_HELPER_INPUT_MAX bytes)
 *   stdout: one line "RESULT MESSAGE\n"; RESULT is one of the words below, MESSAGE says why
 *           (never the code or the secret) and goes into the module's syslog line. After
 *           "locked": "minutes N\n" (whole minutes left, rounded up) and, when the policy
 *           names one, "contact TEXT\n" (control bytes removed), for the lockout message.
 *           A module ignores lines it does not know.
 *   exit:   the enum value below (the module trusts stdout, as the exit status can be lost when
 *           the host process reaps its children itself).
 * The helper always uses the compiled-in store, policy and socket, and sends the event itself. */
#pragma once

#include <stddef.h>

#define TOTP_HELPER_INPUT_MAX  1024
#define TOTP_HELPER_FIELD_MAX  255 /* bytes of one field, without its '\0' */
#define TOTP_HELPER_REPLY_MAX  1024
#define TOTP_HELPER_TIMEOUT_MS 15000

enum totp_helper_result {
	TOTP_HELPER_SUCCESS = 0,
	TOTP_HELPER_FAILURE = 1,   /* wrong code */
	TOTP_HELPER_REPLAY = 2,	   /* code already used */
	TOTP_HELPER_LOCKED = 3,	   /* rate limit */
	TOTP_HELPER_NO_RECORD = 4, /* user not enrolled */
	TOTP_HELPER_ERROR = 5,	   /* store, policy or resource error: fail closed */
	TOTP_HELPER_DENIED = 6,	   /* caller may not check this user / bad invocation */
	_TOTP_HELPER_MAX,
};

static const char *const totp_helper_words[_TOTP_HELPER_MAX] = {
    "success", "failure", "replay", "locked", "no_record", "error", "denied",
};

/* Split the helper's stdin (len bytes, untrusted: any local user can run the helper) into
 * CODE, SERVICE, RHOST, TTY. Exactly four fields, each at most TOTP_HELPER_FIELD_MAX bytes and
 * '\0'-terminated, that use up the input; ret_fields point into buf. -EINVAL otherwise,
 * -E2BIG for more than TOTP_HELPER_INPUT_MAX bytes. Never logs. */
int totp_helper_parse_input(const char *buf, size_t len, const char *ret_fields[4]);
