/* SPDX-License-Identifier: MIT */
/* mynaguardd: the desktop notice socket. Any local user may connect (mynaguard-notify in each
 * desktop session); the worker accepts, writes one JSON notice per usb.blocked (event/notice.h)
 * to every client without ever blocking, and reads nothing: a client that sends anything or
 * hangs up is closed, one that falls behind is dropped, and the number of clients is bounded. */
#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "notice.h"
#include "notify.h"

#define NOTIFY_SNDBUF	       32768 /* asked for each client (the kernel doubles it) */
#define NOTIFY_ACCEPT_BATCH    16
#define NOTIFY_LOG_INTERVAL_MS 10000

struct notify_client {
	int fd;
	uid_t uid;
};

struct agent_notify {
	int fd;
	char *path;
	dev_t dev;
	ino_t ino;
	struct notify_client clients[NOTIFY_MAX_CLIENTS];
	size_t n_clients;
	uint64_t sent, slow, refused;
	int64_t last_refusal_log_ms;
	uint64_t refusals_unlogged;
};

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void client_close(struct agent *a, struct agent_notify *s, size_t i)
{
	(void)agent_unwatch_fd(a, s->clients[i].fd);
	close(s->clients[i].fd);
	s->clients[i] = s->clients[--s->n_clients];
}

/* Clients send nothing: readable means hung up (or talking, which is not allowed either). */
static void on_client(struct agent *a, int fd, uint32_t events, void *userdata)
{
	struct agent_notify *s = userdata;

	for (size_t i = 0; i < s->n_clients; i++)
		if (s->clients[i].fd == fd) {
			client_close(a, s, i);
			return;
		}
}

static void log_refusal(struct agent_notify *s, uid_t uid, const char *why)
{
	int64_t now = clock_ms(CLOCK_MONOTONIC);

	s->refused++;
	if (s->last_refusal_log_ms != 0 && now - s->last_refusal_log_ms < NOTIFY_LOG_INTERVAL_MS) {
		s->refusals_unlogged++;
		return;
	}
	log_line(LOG_WARNING,
		 "notify.refused uid=%u reason=\"%s\" refused=%" PRIu64 " suppressed=%" PRIu64
		 " (connection closed; next report in 10 s at most)",
		 (unsigned)uid, why, s->refused, s->refusals_unlogged);
	s->last_refusal_log_ms = now;
	s->refusals_unlogged = 0;
}

static void accept_clients(struct agent *a, struct agent_notify *s)
{
	for (int k = 0; k < NOTIFY_ACCEPT_BATCH; k++) {
		struct ucred cred = {0};
		socklen_t clen = sizeof cred;
		size_t same = 0;
		_cleanup_close_ int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_line(LOG_ERR, "notify.error op=accept error=\"%m\"");
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
			log_line(LOG_ERR, "notify.error op=peercred error=\"%m\"");
			continue;
		}
		for (size_t i = 0; i < s->n_clients; i++)
			same += s->clients[i].uid == cred.uid;
		if (same >= NOTIFY_MAX_PER_UID) {
			log_refusal(s, cred.uid, "too many connections of this user (limit 4)");
			continue;
		}
		if (s->n_clients >= NOTIFY_MAX_CLIENTS) {
			log_refusal(s, cred.uid, "too many connections (limit 32)");
			continue;
		}
		int sndbuf = NOTIFY_SNDBUF;
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
		if (agent_watch_fd(a, fd, on_client, s) < 0) {
			log_line(LOG_ERR, "notify.error op=watch-client error=\"out of memory\"");
			continue;
		}
		s->clients[s->n_clients++] =
		    (struct notify_client){.fd = TAKE_FD(fd), .uid = cred.uid};
	}
}

static void on_listen(struct agent *a, int fd, uint32_t events, void *userdata)
{
	accept_clients(a, userdata);
}

/* One message to every client, never waiting: one that has NOTIFY_CLIENT_QUEUE bytes unread,
 * or a full socket buffer, is dropped (it reconnects when it reads again). */
static void broadcast(struct agent *a, struct agent_notify *s, const char *msg, size_t len)
{
	for (size_t i = 0; i < s->n_clients;) {
		struct notify_client *c = &s->clients[i];
		int unread = 0;
		const char *why = NULL;

		if (ioctl(c->fd, SIOCOUTQ, &unread) == 0 && unread > NOTIFY_CLIENT_QUEUE)
			why = "slow";
		else if (send(c->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			why = (errno == EAGAIN || errno == EWOULDBLOCK) ? "slow" : "gone";
		if (!why) {
			s->sent++;
			i++;
			continue;
		}
		if (strcmp(why, "slow") == 0) {
			s->slow++;
			log_line(LOG_WARNING,
				 "notify.dropped uid=%u reason=slow unread=%d (the client reads "
				 "nothing; closed)",
				 (unsigned)c->uid, unread);
		}
		client_close(a, s, i);
	}
}

/* "vvvv" of data.vendor or data.product; 0 when absent (a device without ids). */
static uint16_t data_hex4(json_t *data, const char *key)
{
	const char *v = json_string_value(json_object_get(data, key));
	unsigned long x;
	char *end;

	if (!v || strlen(v) != 4)
		return 0;
	x = strtoul(v, &end, 16);
	return *end == '\0' && x <= 0xffff ? (uint16_t)x : 0;
}

void agent_notify_usb_blocked(struct agent *a, json_t *data)
{
	const struct policy *p = agent_policy(a);
	struct agent_notify *s = a->notify;
	struct notice n = {0};
	const char *serial = json_string_value(json_object_get(data, "serial"));
	_cleanup_free_ char *msg = NULL;
	size_t len;
	int r;

	/* From the values the event carries, so anyone holding the event can compute it again. */
	n.vendor = data_hex4(data, "vendor");
	n.product = data_hex4(data, "product");
	bundle_request_code(p->terminal_id, n.vendor, n.product, serial ? serial : "",
			    n.request_code);
	json_object_set_new(data, "request_code", json_string(n.request_code));

	/* In audit mode the device works: telling the clerk it is blocked would be wrong. */
	if (!s || s->fd < 0 || p->usb_mode == POLICY_USB_AUDIT)
		return;
	accept_clients(a, s); /* whoever connected before this decision hears about it */
	if (s->n_clients == 0)
		return;
	notice_text_set(n.name, NOTICE_NAME_MAX,
			json_string_value(json_object_get(data, "product_name")));
	notice_text_set(n.contact, NOTICE_CONTACT_MAX, p->terminal_contact);
	n.ts_ms = clock_ms(CLOCK_REALTIME);
	r = notice_encode(&n, &msg, &len);
	if (r < 0) {
		log_line(LOG_ERR, "notify.error op=encode error=\"%s\"", strerror(-r));
		return;
	}
	broadcast(a, s, msg, len);
}

static int bind_socket(struct agent_notify *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t plen = strlen(s->path);
	struct stat st;

	if (plen >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, s->path, plen);
	/* A stale socket from an earlier run goes; anything else at that path is not ours. */
	if (lstat(s->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		if (unlink(s->path) < 0)
			return negative_errno();
	}
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	if (bind(fd, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1)) < 0)
		return negative_errno();
	/* Every desktop user may listen; nothing they send is ever read. */
	if (chmod(s->path, 0666) < 0 || lstat(s->path, &st) < 0 ||
	    listen(fd, NOTIFY_MAX_CLIENTS) < 0) {
		int r = negative_errno();
		unlink(s->path);
		return r;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->fd = TAKE_FD(fd);
	return 0;
}

int agent_notify_init(struct agent *a)
{
	struct agent_notify *s = calloc(1, sizeof *s);
	int r;

	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->path = strdup(a->paths.notify_socket);
	if (!s->path) {
		free(s);
		return -ENOMEM;
	}
	a->notify = s;
	char *slash = strrchr(s->path, '/');
	if (slash && slash != s->path) {
		*slash = '\0';
		r = mkdir(s->path, 0755) < 0 && errno != EEXIST ? negative_errno() : 0;
		*slash = '/';
		if (r < 0) {
			agent_notify_forget(a);
			return r;
		}
	}
	r = bind_socket(s);
	if (r >= 0)
		r = agent_watch_fd(a, s->fd, on_listen, s);
	if (r < 0) {
		agent_notify_forget(a);
		return r;
	}
	log_line(LOG_INFO, "notify.listening socket=%s", s->path);
	return 0;
}

void agent_notify_done(struct agent *a)
{
	struct agent_notify *s = a->notify;

	if (!s || s->fd < 0)
		return;
	while (s->n_clients > 0)
		client_close(a, s, s->n_clients - 1);
	(void)agent_unwatch_fd(a, s->fd);
	log_line(LOG_INFO,
		 "notify.closed sent=%" PRIu64 " dropped_slow=%" PRIu64 " refused=%" PRIu64,
		 s->sent, s->slow, s->refused);
	close(s->fd);
	s->fd = -1;
}

void agent_notify_forget(struct agent *a)
{
	struct agent_notify *s = a->notify;
	struct stat st;

	if (!s)
		return;
	if (s->fd >= 0) {
		if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
			unlink(s->path);
		close(s->fd);
	}
	free(s->path);
	free(s);
	a->notify = NULL;
}
