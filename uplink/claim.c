/* SPDX-License-Identifier: MIT */
/* mynaguard-uplink: the local claim socket (docs/fleet.md, "One-time across terminals"). The
 * PAM module asks here before it accepts a code; the uplink asks the collector over its mutual
 * TLS connection (POST /v1/totp/claim) with a bounded wait and answers one byte. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "uplink.h"

/* The collector's part of the PAM module's CLAIM_TIMEOUT_MS. */
#define COLLECTOR_TIMEOUT_MS 1200
/* How long a connected client may take to send its request. */
#define REQUEST_TIMEOUT_MS 200

int uplink_claim_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	(void)unlink(path); /* a stale socket of an earlier run */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 16) < 0) {
		int r = negative_errno();
		close(fd);
		return r;
	}
	return fd;
}

static void serve_one(int fd, struct uplink_client *c)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	uint8_t req[CLAIM_REQUEST_MAX + 1], rep;
	char user[CLAIM_USER_MAX + 1];
	enum claim_result res = CLAIM_OFFLINE;
	uint64_t step;
	ssize_t n;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != 0) {
		log_line(LOG_WARNING, "uplink.claim refused: peer uid %d is not root",
			 (int)cred.uid);
		return;
	}
	if (poll(&p, 1, REQUEST_TIMEOUT_MS) <= 0)
		return;
	n = recv(fd, req, sizeof(req), 0);
	if (n <= 0 || claim_request_decode(req, (size_t)n, user, &step) < 0) {
		log_line(LOG_WARNING, "uplink.claim refused: malformed request");
		return;
	}
	res = uplink_client_claim(c, user, step, COLLECTOR_TIMEOUT_MS);
	log_line(LOG_INFO, "uplink.claim user=%s step=%llu result=%s", user,
		 (unsigned long long)step, claim_result_name(res));
	rep = claim_reply_byte(res);
	(void)send(fd, &rep, 1, MSG_NOSIGNAL);
}

void uplink_claim_serve(int lfd, struct uplink_client *c)
{
	int fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		serve_one(fd, c);
		close(fd);
	}
}
