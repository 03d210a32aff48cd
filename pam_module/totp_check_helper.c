/* SPDX-License-Identifier: MIT */
/* mynaguard-totp-check: setuid-root helper in the spirit of pam_unix's unix_chkpwd. A user's
 * process (screen locker) asks it to check that user's own code; it applies the same one-time
 * and rate-limit rules on the root-owned store and sends the event. Protocol: totp_helper.h. */
#include <errno.h>
#include <liboath/oath.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "secmem.h"
#include "claim.h"
#include "totp_attempt.h"
#include "totp_helper.h"

static int answer(enum totp_helper_result res, const char *msg)
{
	printf("%s %s\n", totp_helper_words[res], msg);
	fflush(stdout);
	return (int)res;
}

/* Read all of stdin (at most size - 1 bytes count; more is -E2BIG) and split it. */
static int read_input(char *buf, size_t size, const char *fields[4])
{
	size_t len = 0;

	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf + len, size - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len >= size)
			return -E2BIG;
	}
	return totp_helper_parse_input(buf, len, fields);
}

static enum totp_helper_result outcome_word(enum totp_outcome o)
{
	switch (o) {
	case TOTP_OUT_SUCCESS:
		return TOTP_HELPER_SUCCESS;
	case TOTP_OUT_NULLOK:
	case TOTP_OUT_NO_RECORD:
		return TOTP_HELPER_NO_RECORD;
	case TOTP_OUT_WRONG:
		return TOTP_HELPER_FAILURE;
	case TOTP_OUT_REPLAY:
		return TOTP_HELPER_REPLAY;
	case TOTP_OUT_LOCKED:
		return TOTP_HELPER_LOCKED;
	case TOTP_OUT_CONFIG:
	case TOTP_OUT_ERROR:
	case TOTP_OUT_NOMEM:
		return TOTP_HELPER_ERROR;
	}
	return TOTP_HELPER_ERROR;
}

int main(int argc, char **argv)
{
	char input[TOTP_HELPER_INPUT_MAX + 1];
	const char *fields[4] = {0};
	struct totp_attempt a = {0};
	struct passwd *pw;
	char caller[TOTP_USER_MAX + 1];
	int r;

	/* Only fds 0-2 are ours; the caller's other descriptors must not leak into a root process. */
	close_range(3, ~0U, 0);
	signal(SIGPIPE, SIG_IGN);
	openlog("mynaguard-totp-check", LOG_PID, LOG_AUTHPRIV);

	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "nullok") != 0) ||
	    !totp_user_valid(argv[1]))
		return answer(TOTP_HELPER_DENIED, "bad invocation");
	/* The real uid is the caller: it may check only its own name (root may check any). */
	pw = getpwuid(getuid());
	if (!pw || strlen(pw->pw_name) > TOTP_USER_MAX)
		return answer(TOTP_HELPER_DENIED, "caller has no user name");
	snprintf(caller, sizeof(caller), "%s", pw->pw_name);
	if (getuid() != 0 && strcmp(caller, argv[1]) != 0) {
		syslog(LOG_AUTHPRIV | LOG_WARNING, "uid %u asked to check user %s: refused",
		       (unsigned)getuid(), argv[1]);
		return answer(TOTP_HELPER_DENIED, "a user may check only their own code");
	}
	if (geteuid() != 0)
		return answer(TOTP_HELPER_ERROR, "helper is not setuid root");

	r = read_input(input, sizeof(input), fields);
	if (r < 0) {
		secmem_wipe(input, sizeof(input));
		return answer(TOTP_HELPER_DENIED, "bad input");
	}

	totp_attempt_init(&a);
	a.user = argv[1];
	a.store = MYNAGUARD_TOTP_STORE;
	a.policy = MYNAGUARD_POLICY_PATH;
	a.policy_explicit = false;
	a.socket = MYNAGUARD_SOCKET_PATH;
	a.claim_socket = MYNAGUARD_SPOOL_DIR "/" CLAIM_SOCKET_NAME;
	a.nullok = argc == 3;
	a.info.user = argv[1];
	/* The caller chose these three: the event says so (totp_notify.h), with the real uid. */
	a.info.service = fields[1];
	a.info.rhost = fields[2];
	a.info.tty = fields[3];
	a.info.via_helper = true;
	a.info.caller_uid = (unsigned)getuid();

	if (oath_init() != OATH_OK) {
		secmem_wipe(input, sizeof(input));
		return answer(TOTP_HELPER_ERROR, "liboath initialisation failed");
	}
	if (totp_attempt_prepare(&a) == 1)
		totp_attempt_check(&a, fields[0]);
	/* The code goes now; service, rhost and tty (also in input) are still needed. */
	secmem_wipe_string((char *)fields[0]);
	oath_done();
	(void)totp_attempt_report(&a);
	secmem_wipe(input, sizeof(input));
	totp_attempt_done(&a);
	if (a.outcome == TOTP_OUT_LOCKED) {
		/* For the module's lockout message (totp_helper.h). */
		printf("%s %s\nminutes %u\n", totp_helper_words[TOTP_HELPER_LOCKED], a.message,
		       totp_lock_minutes(a.locked_until, a.now));
		if (a.contact[0])
			printf("contact %s\n", a.contact);
		fflush(stdout);
		return TOTP_HELPER_LOCKED;
	}
	return answer(outcome_word(a.outcome), a.message);
}
