/* SPDX-License-Identifier: MIT */
/* mynaguardd's worker side of the monitor channel: one request, one response, synchronously. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bundle.h"
#include "log.h"
#include "macro.h"
#include "parse.h"
#include "priv.h"

static int channel_fd = -1;

void priv_client_set_fd(int fd)
{
	channel_fd = fd;
}

/* Send q (+ payload), receive the response into resp and up to size bytes of payload into out.
 * Returns the response's status. A broken channel means the monitor is gone: the worker ends. */
static int call(struct priv_req *q, const void *data, size_t len, struct priv_resp *resp, void *out,
		size_t size)
{
	static uint8_t buf[PRIV_RESP_MAX];
	struct iovec iov[2] = {{.iov_base = q, .iov_len = sizeof(*q)},
			       {.iov_base = (void *)data, .iov_len = len}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	ssize_t n;

	if (channel_fd < 0)
		return -ENOTCONN;
	if (len > PRIV_PAYLOAD_MAX)
		return -EMSGSIZE;
	q->len = (uint32_t)len;
	do
		n = sendmsg(channel_fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0) {
		do
			n = recv(channel_fd, buf, sizeof(buf), 0);
		while (n < 0 && errno == EINTR);
	}
	if (n <= 0) {
		log_line(LOG_ERR, "worker.error op=%s error=\"monitor gone\", exiting",
			 priv_op_name(q->op));
		_exit(1);
	}
	if ((size_t)n < sizeof(*resp)) {
		log_line(LOG_ERR, "worker.error op=%s error=\"short response\", exiting",
			 priv_op_name(q->op));
		_exit(1);
	}
	memcpy(resp, buf, sizeof(*resp));
	if (resp->len != (size_t)n - sizeof(*resp) || resp->len > size)
		return -EBADMSG;
	if (out && resp->len)
		memcpy(out, buf + sizeof(*resp), resp->len);
	return resp->status;
}

static int simple(enum priv_op op, const char *name, uint32_t arg, uint64_t u64)
{
	struct priv_req q = {.op = op, .arg = arg, .u64 = u64};
	struct priv_resp resp;

	if (name) {
		if (strlen(name) >= sizeof(q.name))
			return -ENAMETOOLONG;
		strcpy(q.name, name);
	}
	return call(&q, NULL, 0, &resp, NULL, 0);
}

int priv_usb_authorize(const char *name, bool on)
{
	return simple(PRIV_USB_AUTHORIZE, name, on ? 1 : 0, 0);
}

int priv_usb_probe(const char *name)
{
	return simple(PRIV_USB_PROBE, name, 0, 0);
}

int priv_usb_default_deny(const char *name)
{
	return simple(PRIV_USB_DEFAULT_DENY, name, 0, 0);
}

/* NUL-terminated raw bytes of a small file (size includes the NUL). */
static int small_read(enum priv_op op, char *buf, size_t size)
{
	struct priv_req q = {.op = op};
	struct priv_resp resp;
	int r = call(&q, NULL, 0, &resp, buf, size - 1);

	if (r < 0)
		return r;
	buf[resp.len] = 0;
	return (int)resp.len;
}

int priv_seq_read(uint64_t *ret)
{
	char text[PRIV_DROPS_MAX + 1];
	int r = small_read(PRIV_SEQ_READ, text, sizeof(text));

	if (r == -ENOENT) {
		*ret = 0;
		return 0;
	}
	if (r < 0)
		return r;
	text[strcspn(text, "\n")] = 0;
	return parse_uint64(text, 0, INT64_MAX, ret) < 0 ? -EBADMSG : 0;
}

int priv_seq_write(uint64_t v)
{
	return simple(PRIV_SEQ_WRITE, NULL, 0, v);
}

/* A snapshot the monitor hands out in chunks (q->u64 = offset; resp.v[0] = the total size,
 * the same in every answer). *ret is malloc'd and NUL-terminated after *ret_len bytes. */
static int read_chunked(struct priv_req *q, uint8_t **ret, size_t *ret_len)
{
	struct priv_resp resp;
	uint8_t *data = NULL;
	size_t total = 0, off = 0;
	int r;

	do {
		static uint8_t chunk[PRIV_PENDING_CHUNK];

		q->u64 = off;
		r = call(q, NULL, 0, &resp, chunk, sizeof(chunk));
		if (r < 0)
			break;
		if (off == 0) {
			total = resp.v[0];
			data = malloc(total + 1);
			if (!data) {
				r = -ENOMEM;
				break;
			}
		}
		if (resp.v[0] != total || resp.len > total - off ||
		    (resp.len == 0 && off < total)) {
			r = -EBADMSG;
			break;
		}
		memcpy(data + off, chunk, resp.len);
		off += resp.len;
	} while (off < total);
	if (r < 0) {
		free(data);
		return r;
	}
	data[total] = 0;
	*ret = data;
	*ret_len = total;
	return 0;
}

int priv_pending_read(char **ret, size_t *ret_len)
{
	struct priv_req q = {.op = PRIV_PENDING_READ};

	return read_chunked(&q, (uint8_t **)ret, ret_len);
}

int priv_pending_done(bool truncate)
{
	return simple(PRIV_PENDING_DONE, NULL, truncate ? 1 : 0, 0);
}

int priv_pending_drops_read(char *buf, size_t size)
{
	return small_read(PRIV_PENDING_DROPS_READ, buf, size);
}

int priv_pending_drops_clear(void)
{
	return simple(PRIV_PENDING_DROPS_CLEAR, NULL, 0, 0);
}

int priv_check_run(int check, struct compliance_result *ret)
{
	struct priv_req q = {.op = PRIV_CHECK_RUN, .arg = (uint32_t)check};
	struct priv_resp resp;
	int r = call(&q, NULL, 0, &resp, ret, sizeof(*ret));

	if (r >= 0 && resp.len != sizeof(*ret))
		return -EBADMSG;
	if (r >= 0)
		ret->detail[sizeof(ret->detail) - 1] = 0;
	return r;
}

int priv_ready(void)
{
	return simple(PRIV_READY, NULL, 0, 0);
}

/* ---- the spool ---- */

struct priv_spool {
	uint64_t next_seq, last_seq, bytes;
};

static void spool_update(struct priv_spool *w, const struct priv_resp *resp)
{
	w->next_seq = resp->v[0];
	w->last_seq = resp->v[1];
	w->bytes = resp->v[2];
}

int priv_spool_open(const char *dir, uint64_t max_bytes, struct priv_spool **ret,
		    struct spool_recovery *ret_info)
{
	struct priv_req q = {.op = PRIV_SPOOL_OPEN, .u64 = max_bytes};
	struct priv_spool_info info;
	struct priv_resp resp;
	struct priv_spool *w;
	int r = call(&q, NULL, 0, &resp, &info, sizeof(info));

	if (r < 0)
		return r;
	if (resp.len != sizeof(info))
		return -EBADMSG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	spool_update(w, &resp);
	if (ret_info)
		*ret_info = info.recovery;
	*ret = w;
	return 0;
}

void priv_spool_free(struct priv_spool *w)
{
	if (!w)
		return;
	(void)simple(PRIV_SPOOL_CLOSE, NULL, 0, 0);
	free(w);
}

uint64_t priv_spool_next_seq(const struct priv_spool *w)
{
	return w->next_seq;
}

uint64_t priv_spool_last_seq(const struct priv_spool *w)
{
	return w->last_seq;
}

uint64_t priv_spool_bytes(const struct priv_spool *w)
{
	return w->bytes;
}

int priv_spool_append(struct priv_spool *w, uint64_t seq, enum spool_class cls, const void *payload,
		      size_t len, struct spool_drop *ret_drop)
{
	struct priv_req q = {.op = PRIV_SPOOL_APPEND, .arg = (uint32_t)cls, .u64 = seq};
	struct priv_spool_info info;
	struct priv_resp resp;
	int r;

	if (len == 0 || len > PRIV_PAYLOAD_MAX)
		return -EMSGSIZE;
	r = call(&q, payload, len, &resp, &info, sizeof(info));
	if (r < 0)
		return r;
	if (resp.len != sizeof(info))
		return -EBADMSG;
	spool_update(w, &resp);
	if (ret_drop)
		*ret_drop = info.drop;
	return 0;
}

int priv_spool_trim_acked(struct priv_spool *w, struct spool_trim *ret)
{
	struct priv_req q = {.op = PRIV_SPOOL_TRIM_ACKED};
	struct priv_spool_info info;
	struct priv_resp resp;
	int r = call(&q, NULL, 0, &resp, &info, sizeof(info));

	*ret = (struct spool_trim){0};
	if (resp.len == sizeof(info)) {
		spool_update(w, &resp);
		*ret = info.trim;
	}
	return r;
}

int priv_spool_sync(struct priv_spool *w)
{
	return simple(PRIV_SPOOL_SYNC, NULL, 0, 0);
}

/* ---- the fleet bundle and the time floor ---- */

int priv_bundle_read(enum priv_bundle_src src, uint8_t **ret, size_t *ret_len)
{
	struct priv_req q = {.op = PRIV_BUNDLE_READ, .arg = (uint32_t)src};

	return read_chunked(&q, ret, ret_len);
}

int priv_bundle_install(uint64_t version, const uint8_t sha256[PRIV_SHA256_LEN])
{
	struct priv_req q = {.op = PRIV_BUNDLE_INSTALL, .u64 = version};
	struct priv_resp resp;

	return call(&q, sha256, PRIV_SHA256_LEN, &resp, NULL, 0);
}

int priv_time_floor_read(int64_t *ret)
{
	char text[PRIV_DROPS_MAX + 1];
	uint64_t v;
	int r = small_read(PRIV_TIME_FLOOR_READ, text, sizeof(text));

	*ret = 0;
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	text[strcspn(text, "\n")] = 0;
	if (parse_uint64(text, 0, INT64_MAX, &v) < 0)
		return -EBADMSG;
	*ret = (int64_t)v;
	return 0;
}

int priv_time_floor_write(int64_t v)
{
	return v < 0 ? -EINVAL : simple(PRIV_TIME_FLOOR_WRITE, NULL, 0, (uint64_t)v);
}

static int totp_send(uint32_t op, const char *user, uint64_t gen, const uint8_t *sealed, size_t len)
{
	struct priv_req q = {.op = op, .u64 = gen};
	struct priv_resp resp;
	uint8_t buf[1 + BUNDLE_TOTP_USER_MAX + BUNDLE_SEALED_MAX];
	size_t n = strlen(user);

	if (n > BUNDLE_TOTP_USER_MAX || len > BUNDLE_SEALED_MAX)
		return -EINVAL;
	buf[0] = (uint8_t)n;
	memcpy(buf + 1, user, n);
	memcpy(buf + 1 + n, sealed, len);
	return call(&q, buf, 1 + n + len, &resp, NULL, 0);
}

int priv_totp_install(const char *user, uint64_t gen, const uint8_t *sealed, size_t len)
{
	return totp_send(PRIV_TOTP_INSTALL, user, gen, sealed, len);
}

int priv_totp_recovery(const char *user, uint64_t rid, const uint8_t *sealed, size_t len)
{
	return totp_send(PRIV_TOTP_RECOVERY, user, rid, sealed, len);
}

int priv_totp_prune(char *buf, size_t size, size_t *ret_len)
{
	struct priv_req q = {.op = PRIV_TOTP_PRUNE};
	struct priv_resp resp;
	int r = call(&q, NULL, 0, &resp, buf, size);

	*ret_len = r >= 0 ? resp.len : 0;
	return r;
}
