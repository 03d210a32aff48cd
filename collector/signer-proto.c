/* SPDX-License-Identifier: MIT */
/* mynaguard-signer protocol: strict fixed-layout encode and decode (both ends), and the client
 * call the collector makes. See signer-proto.h. */
#include "signer-proto.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"

/* INGEST_SELF_TERMINAL (ingest.h): the collector's own source id, never a certificate's */
#define SELF_TERMINAL  "mynaguard-collector"
#define TERMINAL_FIELD 72
#define SERIAL_FIELD   56

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool terminal_ok(const char *id)
{
	return event_terminal_id_valid(id) && strcmp(id, SELF_TERMINAL) != 0;
}

/* A NUL-terminated string in a fixed field, every byte after the NUL zero too. */
static bool field_ok(const uint8_t *f, size_t size)
{
	const uint8_t *nul = memchr(f, 0, size);
	if (!nul)
		return false;
	for (const uint8_t *p = nul; p < f + size; p++)
		if (*p)
			return false;
	return true;
}

int signer_request_encode(const struct signer_request *r, uint8_t *buf, size_t size,
			  size_t *ret_len)
{
	size_t idlen = strnlen(r->terminal, sizeof(r->terminal));

	if ((r->op != SIGNER_OP_ENROLL && r->op != SIGNER_OP_RENEW) || idlen >= TERMINAL_FIELD ||
	    !terminal_ok(r->terminal))
		return -EINVAL;
	if (r->csr_len == 0 || r->csr_len > SIGNER_CSR_MAX || size < SIGNER_REQ_HEADER + r->csr_len)
		return -EMSGSIZE;
	memset(buf, 0, SIGNER_REQ_HEADER);
	put32(buf, SIGNER_MAGIC);
	put32(buf + 4, (uint32_t)r->op);
	put32(buf + 8, (uint32_t)r->csr_len);
	memcpy(buf + 16, r->terminal, idlen);
	memcpy(buf + SIGNER_REQ_HEADER, r->csr, r->csr_len);
	*ret_len = SIGNER_REQ_HEADER + r->csr_len;
	return 0;
}

int signer_request_decode(const uint8_t *buf, size_t len, struct signer_request *ret)
{
	uint32_t op, csr_len;

	if (len < SIGNER_REQ_HEADER || len > SIGNER_REQUEST_MAX || get32(buf) != SIGNER_MAGIC ||
	    get32(buf + 12) != 0)
		return -EBADMSG;
	op = get32(buf + 4);
	csr_len = get32(buf + 8);
	if ((op != SIGNER_OP_ENROLL && op != SIGNER_OP_RENEW) || csr_len == 0 ||
	    csr_len > SIGNER_CSR_MAX || csr_len != len - SIGNER_REQ_HEADER ||
	    !field_ok(buf + 16, TERMINAL_FIELD))
		return -EBADMSG;
	if (strlen((const char *)buf + 16) > EVENT_TERMINAL_MAX ||
	    !terminal_ok((const char *)buf + 16))
		return -EINVAL;
	ret->op = (enum signer_op)op;
	memset(ret->terminal, 0, sizeof(ret->terminal));
	strcpy(ret->terminal, (const char *)buf + 16);
	ret->csr_len = csr_len;
	memcpy(ret->csr, buf + SIGNER_REQ_HEADER, csr_len);
	return 0;
}

int signer_answer_encode(const struct signer_answer *a, uint8_t *buf, size_t size, size_t *ret_len)
{
	size_t slen = strnlen(a->serial, sizeof(a->serial));

	if (slen >= sizeof(a->serial) || a->cert_len > SIGNER_CERT_MAX ||
	    (a->status == 0) != (a->cert_len > 0) || a->status > 0)
		return -EINVAL;
	if (size < SIGNER_ANS_HEADER + a->cert_len)
		return -EMSGSIZE;
	memset(buf, 0, SIGNER_ANS_HEADER);
	put32(buf, SIGNER_MAGIC);
	put32(buf + 4, (uint32_t)a->status);
	put32(buf + 8, (uint32_t)a->cert_len);
	put32(buf + 16, (uint32_t)((uint64_t)a->not_after & 0xffffffffU));
	put32(buf + 20, (uint32_t)((uint64_t)a->not_after >> 32));
	memcpy(buf + 24, a->serial, slen);
	memcpy(buf + SIGNER_ANS_HEADER, a->cert, a->cert_len);
	*ret_len = SIGNER_ANS_HEADER + a->cert_len;
	return 0;
}

int signer_answer_decode(const uint8_t *buf, size_t len, struct signer_answer *ret)
{
	int32_t status;
	uint32_t cert_len;
	const char *serial = (const char *)buf + 24;

	if (len < SIGNER_ANS_HEADER || len > SIGNER_ANSWER_MAX || get32(buf) != SIGNER_MAGIC ||
	    get32(buf + 12) != 0 || !field_ok(buf + 24, SERIAL_FIELD))
		return -EBADMSG;
	status = (int32_t)get32(buf + 4);
	cert_len = get32(buf + 8);
	if (status > 0 || status < -4095 || cert_len != len - SIGNER_ANS_HEADER ||
	    (status == 0) != (cert_len > 0) || strlen(serial) >= SIGNER_SERIAL_MAX ||
	    strspn(serial, "0123456789ABCDEF") != strlen(serial) || (status == 0 && !serial[0]))
		return -EBADMSG;
	ret->status = status;
	strcpy(ret->serial, serial);
	ret->not_after = (int64_t)((uint64_t)get32(buf + 16) | (uint64_t)get32(buf + 20) << 32);
	ret->cert_len = cert_len;
	memcpy(ret->cert, buf + SIGNER_ANS_HEADER, cert_len);
	return 0;
}

int signer_call(const char *socket_path, const struct signer_request *req, int timeout_s,
		struct signer_answer *ret)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_close_ int fd = -1;
	struct pollfd pfd;
	size_t len;
	ssize_t n;
	int r;

	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, socket_path);
	buf =
	    malloc(SIGNER_ANSWER_MAX > SIGNER_REQUEST_MAX ? SIGNER_ANSWER_MAX : SIGNER_REQUEST_MAX);
	if (!buf)
		return -ENOMEM;
	r = signer_request_encode(req, buf, SIGNER_REQUEST_MAX, &len);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return negative_errno();
	if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -EIO;
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	do
		r = poll(&pfd, 1, timeout_s * 1000);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return negative_errno();
	n = recv(fd, buf, SIGNER_ANSWER_MAX, MSG_TRUNC);
	if (n <= 0 || (size_t)n > SIGNER_ANSWER_MAX)
		return -EBADMSG;
	r = signer_answer_decode(buf, (size_t)n, ret);
	if (r < 0)
		return r;
	return ret->status;
}
