/* SPDX-License-Identifier: MIT */
/* mynaguardd (root): the local event socket where PAM modules (any process, any user) send datagrams. */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "config.h"
#include "emit-internal.h"
#include "escape.h"
#include "macro.h"

/* Per sending uid: a token bucket. Root (sshd, login, gdm) gets more: it speaks for every
 * remote login; a screen locker running as a user speaks only for itself. */
#define EVSOCK_RATE_USER       20 /* datagrams per second, steady */
#define EVSOCK_BURST_USER      100
#define EVSOCK_RATE_ROOT       500
#define EVSOCK_BURST_ROOT      2000
#define EVSOCK_BUCKETS	       64
#define EVSOCK_BATCH	       256 /* datagrams per wakeup, then one fdatasync */
#define EVSOCK_LOG_INTERVAL_MS 10000
#define EVSOCK_RCVBUF	       (1024 * 1024)

struct evsock_bucket {
	uid_t uid;
	bool used;
	double tokens;
	int64_t last_ms;
	uint64_t dropped; /* since the last log line about this uid */
	bool limited;
	/* The uid's user name, looked up once per bucket (NSS may be slow): "" = none. */
	char name[64];
	bool name_looked_up;
};

#define PENDING_WATCH_MASK (IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW)

struct agent_evsock {
	int fd;
	char *path;
	dev_t dev;
	ino_t ino;
	uint64_t received, accepted, malformed, rate_limited;
	struct evsock_bucket buckets[EVSOCK_BUCKETS];
	int64_t last_log_ms;
	uint64_t log_suppressed;
	/* The PAM fallback file: STATE (for "totp" appearing) and STATE/totp are watched. */
	int ino_fd;
	int wd_state;
	int wd_totp;
	char *totp_dir;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* At most one malformed-datagram line per interval; the rest are counted into the next one. */
static void log_malformed(struct agent_evsock *s, int64_t now, long uid, long pid,
			  const char *reason)
{
	char shown[ESCAPE_SIZE(EVENT_REASON_MAX)];
	if (s->last_log_ms != 0 && now - s->last_log_ms < EVSOCK_LOG_INTERVAL_MS) {
		s->log_suppressed++;
		return;
	}
	escape_text(reason, strlen(reason), EVENT_REASON_MAX, 0, shown, sizeof shown);
	log_line(LOG_WARNING,
		 "evsock.malformed uid=%ld pid=%ld reason=\"%s\" total=%" PRIu64
		 " suppressed=%" PRIu64 " (dropped, next report in 10 s at most)",
		 uid, pid, shown, s->malformed, s->log_suppressed);
	s->last_log_ms = now;
	s->log_suppressed = 0;
}

static struct evsock_bucket *bucket_for(struct agent_evsock *s, uid_t uid, int64_t now)
{
	struct evsock_bucket *victim = NULL;
	for (size_t i = 0; i < EVSOCK_BUCKETS; i++) {
		struct evsock_bucket *b = &s->buckets[i];
		if (b->used && b->uid == uid)
			return b;
		if (!victim || !b->used || (victim->used && b->last_ms < victim->last_ms))
			victim = b;
	}
	/* The least recently seen uid gives its slot up (a full bucket is its natural state). */
	double burst = uid == 0 ? EVSOCK_BURST_ROOT : EVSOCK_BURST_USER;
	*victim = (struct evsock_bucket){.uid = uid, .used = true, .tokens = burst, .last_ms = now};
	return victim;
}

static bool rate_allow(struct agent_evsock *s, uid_t uid, int64_t now)
{
	struct evsock_bucket *b = bucket_for(s, uid, now);
	double rate = uid == 0 ? EVSOCK_RATE_ROOT : EVSOCK_RATE_USER;
	double burst = uid == 0 ? EVSOCK_BURST_ROOT : EVSOCK_BURST_USER;
	b->tokens += (double)(now - b->last_ms) * rate / 1000.0;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last_ms = now;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		if (b->limited) {
			log_line(LOG_WARNING,
				 "evsock.rate-limit-end uid=%u dropped=%" PRIu64
				 " (accepting again)",
				 (unsigned)uid, b->dropped);
			b->limited = false;
			b->dropped = 0;
		}
		return true;
	}
	if (!b->limited) {
		fprintf(
		    stderr,
		    "evsock.rate-limited uid=%u limit=%d/s burst=%d (dropping its datagrams until "
		    "it slows down)\n",
		    (unsigned)uid, uid == 0 ? EVSOCK_RATE_ROOT : EVSOCK_RATE_USER,
		    uid == 0 ? EVSOCK_BURST_ROOT : EVSOCK_BURST_USER);
		b->limited = true;
	}
	b->dropped++;
	return false;
}

/* May this uid speak about `user`? Root speaks for every login (sshd, login, gdm); any other
 * uid only about itself (a screen locker running as that user). */
static bool sender_may_report(struct agent_evsock *s, uid_t uid, const char *user, int64_t now)
{
	if (uid == 0)
		return true;
	if (!user)
		return false;
	struct evsock_bucket *b = bucket_for(s, uid, now);
	if (!b->name_looked_up) {
		char buf[4096];
		struct passwd pw, *res = NULL;
		b->name[0] = 0;
		if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res && res->pw_name &&
		    strlen(res->pw_name) < sizeof b->name)
			strcpy(b->name, res->pw_name);
		b->name_looked_up = true;
	}
	return b->name[0] != 0 && strcmp(b->name, user) == 0;
}

static void handle_datagram(struct agent *a, struct agent_evsock *s, const char *buf, size_t n,
			    bool truncated, const struct ucred *cred, int64_t now)
{
	char reason[EVENT_REASON_MAX];
	long uid = cred ? (long)cred->uid : -1, pid = cred ? (long)cred->pid : -1;

	s->received++;
	if (!cred) {
		s->malformed++;
		log_malformed(s, now, uid, pid, "no sender credentials");
		return;
	}
	if (!rate_allow(s, cred->uid, now)) {
		s->rate_limited++;
		return;
	}
	if (truncated) {
		s->malformed++;
		snprintf(reason, sizeof reason, "datagram too large (%zu bytes, limit %d)", n,
			 EVENT_DATAGRAM_MAX);
		log_malformed(s, now, uid, pid, reason);
		return;
	}
	enum event_kind kind;
	int64_t ts;
	json_t *data;
	if (event_datagram_decode(buf, n, &kind, &ts, &data, reason) < 0) {
		s->malformed++;
		log_malformed(s, now, uid, pid, reason);
		return;
	}
	/* The kernel's word about the sender, not the datagram's: the time is ours (the sender's
	 * is kept, within the decoder's bounds, as data), and a non-root sender reporting about
	 * anyone but itself is marked, so nobody counts it as that user's login. */
	json_t *sender = json_pack("{s:I, s:I, s:I}", "uid", (json_int_t)cred->uid, "pid",
				   (json_int_t)cred->pid, "ts_ms", (json_int_t)ts);
	if (sender &&
	    !sender_may_report(s, cred->uid, json_string_value(json_object_get(data, "user")), now))
		json_object_set_new(sender, "unprivileged", json_true());
	json_object_set_new(data, "sender", sender);
	enum spool_class cls = cred->uid == 0 ? SPOOL_CLASS_PROTECTED : SPOOL_CLASS_UNPRIVILEGED;
	if (agent_emit_class(a, kind, 0, cls, agent_emit_auth_clauses(), data, false) >= 0)
		s->accepted++;
}

static void on_readable(struct agent *a, int fd, uint32_t events, void *userdata)
{
	struct agent_evsock *s = userdata;
	char buf[EVENT_DATAGRAM_MAX + 1];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} control;
	unsigned handled = 0;

	for (; handled < EVSOCK_BATCH; handled++) {
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
		struct msghdr msg = {
		    .msg_iov = &iov,
		    .msg_iovlen = 1,
		    .msg_control = control.buf,
		    .msg_controllen = sizeof control.buf,
		};
		ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_line(LOG_ERR, "evsock.error op=recvmsg error=\"%s\"",
					 strerror(errno));
			break;
		}
		const struct ucred *cred = NULL;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
			    c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
				cred = (const struct ucred *)CMSG_DATA(c);
			else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				/* Nobody may park descriptors in our process. */
				int *fds = (int *)CMSG_DATA(c);
				size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t i = 0; i < nfds; i++)
					close(fds[i]);
			}
		}
		bool truncated = (size_t)n > EVENT_DATAGRAM_MAX || (msg.msg_flags & MSG_TRUNC);
		handle_datagram(a, s, buf, (size_t)n, truncated, cred, mono_ms());
	}
	if (handled > 0)
		(void)agent_emit_flush(a);
}

/* The PAM module appends to STATE/totp/.pending-events when sending fails, e.g. because the
 * socket's queue (net.unix.max_dgram_qlen, often 10) was full: collect it while running too.
 * IN_MODIFY (its appends) and IN_CREATE only: IN_CLOSE_WRITE would fire on our own close of
 * the file we opened for truncating, and wake us forever. */
static void on_pending_change(struct agent *a, int fd, uint32_t events, void *userdata)
{
	struct agent_evsock *s = userdata;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool collect = false;
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->wd == s->wd_state && ev->len > 0 && strcmp(ev->name, "totp") == 0 &&
			    s->wd_totp < 0) {
				s->wd_totp =
				    inotify_add_watch(s->ino_fd, s->totp_dir, PENDING_WATCH_MASK);
				collect = true;
			} else if (ev->wd == s->wd_totp && ev->len > 0 &&
				   strncmp(ev->name, ".pending-events", 15) == 0)
				collect = true;
			else if (ev->wd == s->wd_totp && (ev->mask & IN_IGNORED))
				s->wd_totp = -1; /* the directory went away */
			p += sizeof *ev + ev->len;
		}
	}
	if (collect)
		agent_emit_collect_pending(a);
}

static void watch_pending(struct agent *a, struct agent_evsock *s)
{
	const char *state = agent_paths(a)->state ? agent_paths(a)->state : MYNAGUARD_STATE_DIR;
	if (asprintf(&s->totp_dir, "%s/totp", state) < 0) {
		s->totp_dir = NULL;
		return;
	}
	s->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ino_fd < 0)
		goto fail;
	s->wd_state = inotify_add_watch(s->ino_fd, state, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
	s->wd_totp = inotify_add_watch(s->ino_fd, s->totp_dir, PENDING_WATCH_MASK);
	if (s->wd_state < 0 && s->wd_totp < 0)
		goto fail;
	if (agent_watch_fd(a, s->ino_fd, on_pending_change, s) < 0)
		goto fail;
	return;
fail:
	log_line(LOG_WARNING,
		 "evsock.warning op=watch-pending dir=%s error=\"%s\" (the PAM fallback file is "
		 "collected at start only)",
		 s->totp_dir, strerror(errno));
	if (s->ino_fd >= 0)
		close(s->ino_fd);
	s->ino_fd = -1;
}

static int bind_socket(struct agent_evsock *s)
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
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	int one = 1, rcvbuf = EVSOCK_RCVBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
		return negative_errno();
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (bind(fd, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1)) < 0)
		return negative_errno();
	/* PAM runs inside login, sshd, gdm and screen lockers, as root and as users: everyone
	 * may send; the sender's uid and pid go into every event. */
	if (chmod(s->path, 0666) < 0 || lstat(s->path, &st) < 0) {
		int r = negative_errno();
		unlink(s->path);
		return r;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->fd = TAKE_FD(fd);
	return 0;
}

int agent_evsock_init(struct agent *a)
{
	const char *path = agent_paths(a)->socket ? agent_paths(a)->socket : MYNAGUARD_SOCKET_PATH;
	struct agent_evsock *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->ino_fd = -1;
	s->wd_state = s->wd_totp = -1;
	s->path = strdup(path);
	if (!s->path) {
		free(s);
		return -ENOMEM;
	}
	*agent_evsock_slot(a) = s;

	/* /run/mynaguard may not exist yet (tests point elsewhere; systemd's RuntimeDirectory= makes it). */
	char *slash = strrchr(s->path, '/');
	if (slash && slash != s->path) {
		*slash = 0;
		if (mkdir(s->path, 0755) < 0 && errno != EEXIST) {
			int r = negative_errno();
			*slash = '/';
			agent_evsock_done(a);
			return r;
		}
		*slash = '/';
	}
	int r = bind_socket(s);
	if (r >= 0)
		r = agent_watch_fd(a, s->fd, on_readable, s);
	if (r < 0) {
		agent_evsock_done(a);
		return r;
	}
	log_line(LOG_INFO, "evsock.listening socket=%s", s->path);
	/* From here on PAM reaches the socket; what it wrote to the fallback file before goes now,
	 * and what it writes there later (socket queue full) goes when it is written. */
	watch_pending(a, s);
	agent_emit_collect_pending(a);
	return 0;
}

void agent_evsock_done(struct agent *a)
{
	struct agent_evsock *s = *agent_evsock_slot(a);
	if (!s)
		return;
	if (s->fd >= 0) {
		struct stat st;
		(void)agent_unwatch_fd(a, s->fd);
		close(s->fd);
		/* Remove the path only while it is still our socket. */
		if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
			unlink(s->path);
		log_line(LOG_WARNING,
			 "evsock.closed received=%" PRIu64 " accepted=%" PRIu64
			 " malformed=%" PRIu64 " rate_limited=%" PRIu64 "",
			 s->received, s->accepted, s->malformed, s->rate_limited);
	}
	if (s->ino_fd >= 0) {
		(void)agent_unwatch_fd(a, s->ino_fd);
		close(s->ino_fd);
	}
	free(s->totp_dir);
	free(s->path);
	free(s);
	*agent_evsock_slot(a) = NULL;
}

void agent_evsock_forget(struct agent *a)
{
	struct agent_evsock *s = *agent_evsock_slot(a);
	struct stat st;
	if (!s)
		return;
	/* The monitor's copy: the worker counted and logged; only the path is left to remove. */
	if (s->fd >= 0 && lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	if (s->fd >= 0)
		close(s->fd);
	if (s->ino_fd >= 0)
		close(s->ino_fd);
	free(s->totp_dir);
	free(s->path);
	free(s);
	*agent_evsock_slot(a) = NULL;
}
