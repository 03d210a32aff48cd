/* SPDX-License-Identifier: MIT */
/* mynaguard-uplink: the local claim socket (docs/fleet.md, "One-time across terminals"). The
 * PAM module asks here before it accepts a code; the uplink's claim thread asks the collector
 * over a mutual TLS connection of its own (POST /v1/totp/claim) with a bounded wait and answers
 * one byte, whatever the main loop is doing (an upload, a bundle fetch, a backoff). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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

/* One request, one byte; c NULL: offline. Returns what was answered. */
static enum claim_result serve_one(int fd, struct uplink_client *c)
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
		return _CLAIM_MAX;
	}
	if (poll(&p, 1, REQUEST_TIMEOUT_MS) <= 0)
		return _CLAIM_MAX;
	n = recv(fd, req, sizeof(req), 0);
	if (n <= 0 || claim_request_decode(req, (size_t)n, user, &step) < 0) {
		log_line(LOG_WARNING, "uplink.claim refused: malformed request");
		return _CLAIM_MAX;
	}
	if (c)
		res = uplink_client_claim(c, user, step, COLLECTOR_TIMEOUT_MS);
	log_line(LOG_INFO, "uplink.claim user=%s step=%llu result=%s", user,
		 (unsigned long long)step, claim_result_name(res));
	rep = claim_reply_byte(res);
	(void)send(fd, &rep, 1, MSG_NOSIGNAL);
	return res;
}

/* The claim thread: its own client, so that a claim never waits behind an upload or a bundle
 * fetch of the main loop (docs/fleet.md, "The claim thread"). */
struct uplink_claim {
	int lfd;    /* the listening socket (owned) */
	int stopfd; /* eventfd: stop */
	pthread_t thread;
	bool started;
	char *url;
	char *ca, *cert, *key;
	long timeout_sec;
	atomic_bool renewed; /* the certificate changed: a new client before the next claim */
	struct uplink_client *client; /* the thread's only; NULL = make one at the next claim */
};

static struct uplink_client *claim_client(struct uplink_claim *cl)
{
	if (atomic_exchange(&cl->renewed, false)) {
		uplink_client_free(cl->client);
		cl->client = NULL;
	}
	if (!cl->client) {
		const struct uplink_tls tls = {.ca = cl->ca, .cert = cl->cert, .key = cl->key};
		int r = uplink_client_new(cl->url, &tls, cl->timeout_sec, &cl->client);
		if (r < 0) {
			cl->client = NULL;
			log_line(LOG_WARNING, "uplink.claim cannot make a client: %s",
				 strerror(-r));
		}
	}
	return cl->client;
}

static void *claim_thread(void *arg)
{
	struct uplink_claim *cl = arg;
	struct pollfd p[2] = {{.fd = cl->stopfd, .events = POLLIN},
			      {.fd = cl->lfd, .events = POLLIN}};
	int fd;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_line(LOG_ERR, "uplink.claim poll: %s; no more claims", strerror(errno));
			break;
		}
		if (p[0].revents)
			break;
		while ((fd = accept4(cl->lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			struct uplink_client *c = claim_client(cl);
			if (serve_one(fd, c) == CLAIM_OFFLINE && c) {
				/* a broken connection or a collector that went away: the next
				 * claim starts afresh */
				uplink_client_free(cl->client);
				cl->client = NULL;
			}
			close(fd);
		}
	}
	return NULL;
}

static void claim_free(struct uplink_claim *cl)
{
	if (cl->lfd >= 0)
		close(cl->lfd);
	if (cl->stopfd >= 0)
		close(cl->stopfd);
	uplink_client_free(cl->client);
	free(cl->url);
	free(cl->ca);
	free(cl->cert);
	free(cl->key);
	free(cl);
}

int uplink_claim_start(int lfd, const char *url, const struct uplink_tls *tls, long timeout_sec,
		       struct uplink_claim **ret)
{
	struct uplink_claim *cl = calloc(1, sizeof(*cl));
	int r;

	if (!cl) {
		close(lfd);
		return -ENOMEM;
	}
	cl->lfd = lfd;
	cl->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cl->timeout_sec = timeout_sec;
	cl->url = strdup(url);
	cl->ca = strdup(tls->ca);
	cl->cert = strdup(tls->cert);
	cl->key = strdup(tls->key);
	atomic_init(&cl->renewed, false);
	if (cl->stopfd < 0 || !cl->url || !cl->ca || !cl->cert || !cl->key) {
		r = cl->stopfd < 0 ? negative_errno() : -ENOMEM;
		claim_free(cl);
		return r;
	}
	r = -pthread_create(&cl->thread, NULL, claim_thread, cl);
	if (r < 0) {
		claim_free(cl);
		return r;
	}
	cl->started = true;
	*ret = cl;
	return 0;
}

void uplink_claim_renewed(struct uplink_claim *cl)
{
	if (cl)
		atomic_store(&cl->renewed, true);
}

void uplink_claim_stop(struct uplink_claim *cl)
{
	uint64_t one = 1;

	if (!cl)
		return;
	if (cl->started) {
		/* the thread ends after the claim it serves, at most COLLECTOR_TIMEOUT_MS */
		if (write(cl->stopfd, &one, sizeof(one)) != sizeof(one))
			log_line(LOG_WARNING, "uplink.claim stop: %s", strerror(errno));
		pthread_join(cl->thread, NULL);
	}
	claim_free(cl);
}
