/* SPDX-License-Identifier: MIT */
/* Event datagrams to the agent, with a bounded fallback file. Never blocks, never logs. */
#include "totp_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "parse.h"
#include "totp_store.h"
#include "utf8.h"

struct out {
	char *buf;
	size_t size;
	size_t len;
	bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->overflow || o->len + n >= o->size) {
		o->overflow = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void puts_raw(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* The escaped text of one field is cut at NOTIFY_FIELD_MAX bytes, on a character boundary and
 * never inside an escape: five such fields always fit in NOTIFY_MAX, so a peer that chooses the
 * strings (a user name typed at a login prompt, the helper's caller) cannot make the datagram
 * overflow and the event go missing. */
static void put_json_string(struct out *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), used = 0;

	puts_raw(o, "\"");
	while (n > 0) {
		size_t k = utf8_seq_len(p, n);
		char esc[8];
		const char *piece = esc;
		size_t plen;

		if (k == 0) {
			piece = "\\ufffd";
			k = 1;
		} else if (*p == '"')
			piece = "\\\"";
		else if (*p == '\\')
			piece = "\\\\";
		else if (*p < 0x20 || *p == 0x7f)
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
		else
			piece = NULL;
		plen = piece ? strlen(piece) : k;
		if (used + plen > NOTIFY_FIELD_MAX)
			break;
		if (piece)
			puts_raw(o, piece);
		else
			put(o, (const char *)p, k);
		used += plen;
		p += k;
		n -= k;
	}
	puts_raw(o, "\"");
}

int notify_format(char *buf, size_t size, const char *kind, int64_t ts_ms,
		  const struct notify_info *info, const char *reason, size_t *ret_len)
{
	struct out o = {.buf = buf, .size = size};
	char num[32];

	if (size == 0)
		return -ENOBUFS;
	buf[0] = '\0';
	puts_raw(&o, "{\"v\":1,\"kind\":");
	put_json_string(&o, kind);
	snprintf(num, sizeof(num), ",\"ts_ms\":%" PRId64, ts_ms);
	puts_raw(&o, num);
	puts_raw(&o, ",\"data\":{\"user\":");
	put_json_string(&o, info->user);
	if (info->via_helper) {
		/* The helper's caller chose the next three: they go under caller_ keys. */
		puts_raw(&o, ",\"service\":\"" NOTIFY_HELPER_SERVICE "\"");
		snprintf(num, sizeof(num), ",\"caller_uid\":%u", info->caller_uid);
		puts_raw(&o, num);
	}
	puts_raw(&o, info->via_helper ? ",\"caller_service\":" : ",\"service\":");
	put_json_string(&o, info->service);
	puts_raw(&o, info->via_helper ? ",\"caller_rhost\":" : ",\"rhost\":");
	put_json_string(&o, info->rhost);
	puts_raw(&o, info->via_helper ? ",\"caller_tty\":" : ",\"tty\":");
	put_json_string(&o, info->tty);
	puts_raw(&o, ",\"reason\":");
	put_json_string(&o, reason);
	if (info->step && info->claim) {
		snprintf(num, sizeof(num), ",\"step\":%" PRIu64, info->step);
		puts_raw(&o, num);
		puts_raw(&o, ",\"claim\":");
		put_json_string(&o, info->claim);
	}
	puts_raw(&o, "}}");
	if (o.overflow)
		return -ENOBUFS;
	if (ret_len)
		*ret_len = o.len;
	return 0;
}

int notify_send(const char *socket_path, const char *buf, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	size_t plen;

	if (!socket_path || socket_path[0] == '\0')
		return -EINVAL;
	plen = strlen(socket_path);
	if (plen >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, socket_path, plen);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	/* Our effective uid, not the real one the kernel would fill in: in su or sudo (setuid
	 * root) the module runs as root on behalf of the target user, and the agent trusts only
	 * root to report about others. The kernel lets a process name only its own real,
	 * effective or saved uid, so this claims nothing it is not. */
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} control;
	memset(&control, 0, sizeof(control));
	struct msghdr msg = {
	    .msg_name = &sa,
	    .msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1),
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = control.buf,
	    .msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
	const struct ucred cred = {.pid = getpid(), .uid = geteuid(), .gid = getegid()};
	memcpy(CMSG_DATA(c), &cred, sizeof(cred));
	if (sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return negative_errno();
	return 0;
}

static int bump_drops(int dirfd, unsigned owner)
{
	const struct fileio_expect e = {.check_owner = true, .uid = owner, .forbidden_mode = 0077};
	_cleanup_close_ int fd = -1;
	char buf[32] = "";
	uint64_t n = 0;
	ssize_t k;
	int len;

	fd = openat(dirfd, TOTP_STORE_PENDING_DROPS,
		    O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
	if (fd < 0)
		return negative_errno();
	if (fileio_verify_fd(fd, false, &e) < 0)
		return -EPERM;
	k = pread(fd, buf, sizeof(buf) - 1, 0);
	if (k > 0) {
		buf[k] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (parse_uint64(buf, 0, UINT64_MAX - 1, &n) < 0)
			n = 0;
	}
	len = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", n + 1);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len)
		return negative_errno();
	return 1;
}

int notify_append_pending(int dirfd, unsigned owner, const char *buf, size_t len)
{
	const struct fileio_expect e = {.check_owner = true, .uid = owner, .forbidden_mode = 0077};
	_cleanup_close_ int fd = -1;
	struct stat st;
	char line[NOTIFY_MAX + 1];
	int r;

	if (len > NOTIFY_MAX)
		return -EMSGSIZE;
	fd = openat(dirfd, TOTP_STORE_PENDING,
		    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		    0600);
	if (fd < 0)
		return negative_errno();
	r = fileio_verify_fd(fd, false, &e);
	if (r < 0)
		return r;
	r = fileio_lock_exclusive(fd);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if ((uint64_t)st.st_size + len + 1 > TOTP_STORE_PENDING_MAX)
		return bump_drops(dirfd, owner);
	memcpy(line, buf, len);
	line[len] = '\n';
	/* One write() of one line: O_APPEND keeps lines whole even for readers without the lock. */
	return fileio_write_all(fd, line, len + 1);
}

int notify_deliver(const char *socket_path, int store_dirfd, unsigned owner, const char *buf,
		   size_t len)
{
	int r;

	if (notify_send(socket_path, buf, len) >= 0)
		return 0;
	if (store_dirfd < 0)
		return -ENOTCONN;
	r = notify_append_pending(store_dirfd, owner, buf, len);
	if (r < 0)
		return r;
	return r == 0 ? 1 : 2;
}

int64_t notify_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
