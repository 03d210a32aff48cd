/* SPDX-License-Identifier: MIT */
/* The claim of a TOTP time step (claim.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "claim.h"
#include "macro.h"

static const char words[_CLAIM_MAX] = {'o', 'u', 'r', 'n', 'x'};
static const char *const names[_CLAIM_MAX] = {"ok", "used", "revoked", "unknown", "offline"};

const char *claim_result_name(enum claim_result r)
{
	return (unsigned)r < _CLAIM_MAX ? names[r] : "offline";
}

uint8_t claim_reply_byte(enum claim_result r)
{
	return (uint8_t)((unsigned)r < _CLAIM_MAX ? words[r] : 'x');
}

static bool user_ok(const char *s, size_t n)
{
	static const char ok[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-";

	if (n < 1 || n > CLAIM_USER_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !memchr(ok, s[i], sizeof(ok) - 1))
			return false;
	return true;
}

int claim_request_encode(const char *user, uint64_t step, uint8_t *buf)
{
	size_t n = user ? strlen(user) : 0;

	if (!user_ok(user, n) || step == 0)
		return -EINVAL;
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)(step >> (56 - 8 * i));
	memcpy(buf + 8, user, n);
	return (int)(8 + n);
}

int claim_request_decode(const uint8_t *buf, size_t len, char *user_out, uint64_t *ret_step)
{
	uint64_t step = 0;

	if (len < 9 || len > CLAIM_REQUEST_MAX || !user_ok((const char *)buf + 8, len - 8))
		return -EBADMSG;
	for (int i = 0; i < 8; i++)
		step = step << 8 | buf[i];
	if (step == 0)
		return -EBADMSG;
	memcpy(user_out, buf + 8, len - 8);
	user_out[len - 8] = 0;
	*ret_step = step;
	return 0;
}

int claim_reply_decode(const uint8_t *buf, size_t len, enum claim_result *ret)
{
	if (len != 1)
		return -EBADMSG;
	for (unsigned i = 0; i < _CLAIM_MAX; i++)
		if (buf[0] == (uint8_t)words[i]) {
			*ret = (enum claim_result)i;
			return 0;
		}
	return -EBADMSG;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum claim_result claim_ask(const char *socket_path, const char *user, uint64_t step,
			    unsigned timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	uint8_t req[CLAIM_REQUEST_MAX], rep[8];
	int64_t end = mono_ms() + timeout_ms;
	enum claim_result res;
	int n = claim_request_encode(user, step, req);
	ssize_t k;

	if (n < 0 || !socket_path || strlen(socket_path) >= sizeof(sa.sun_path))
		return CLAIM_OFFLINE;
	memcpy(sa.sun_path, socket_path, strlen(socket_path));
	/* non-blocking: a full listen queue must not hold a login */
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return CLAIM_OFFLINE;
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		return CLAIM_OFFLINE;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = end - mono_ms();
		if (left <= 0)
			return CLAIM_OFFLINE;
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return CLAIM_OFFLINE;
		k = recv(fd, rep, sizeof(rep), 0);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0 || claim_reply_decode(rep, (size_t)k, &res) < 0)
			return CLAIM_OFFLINE;
		return res;
	}
}
