/* SPDX-License-Identifier: MIT */
/* mynaguard-uplink (user mynaguard): fetch this terminal's fleet bundle (GET /v1/policy) into
 * SPOOL/inbox/ for the agent, which verifies and applies it (docs/fleet.md, "The uplink"). The
 * uplink only checks the framing and the terminal id: it holds no key and decides nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "escape.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "spool.h"
#include "uplink.h"

#define INBOX_BUNDLE "bundle"
#define INBOX_ETAG   "etag"
#define ETAG_MAX     48

struct uplink_inbox {
	char *spool;
	char *terminal;
	bool verbose;
	char last_error[64]; /* its kind: logged once while it repeats */
};

int uplink_inbox_new(const char *spool, bool verbose, struct uplink_inbox **ret)
{
	struct uplink_inbox *in = calloc(1, sizeof(*in));

	if (!in)
		return -ENOMEM;
	in->spool = strdup(spool);
	if (!in->spool) {
		free(in);
		return -ENOMEM;
	}
	in->verbose = verbose;
	*ret = in;
	return 0;
}

void uplink_inbox_set_terminal(struct uplink_inbox *in, const char *terminal)
{
	free(in->terminal);
	in->terminal = terminal ? strdup(terminal) : NULL;
}

void uplink_inbox_free(struct uplink_inbox *in)
{
	if (!in)
		return;
	free(in->spool);
	free(in->terminal);
	free(in);
}

/* what: the kind of failure (the same kind is logged once while it repeats) */
static void fail(struct uplink_inbox *in, const char *what, const char *fmt, ...) _printf_(3, 4);
static void fail(struct uplink_inbox *in, const char *what, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (strncmp(what, in->last_error, sizeof in->last_error) != 0)
		log_line(LOG_WARNING, "uplink.fleet %s (the terminal keeps its current bundle)",
			 msg);
	snprintf(in->last_error, sizeof in->last_error, "%.*s", (int)sizeof in->last_error - 1,
		 what);
}

/* A strong ETag as the collector sends it: "DIGITS". */
static bool etag_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 3 || n > ETAG_MAX || s[0] != '"' || s[n - 1] != '"')
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int open_inbox(struct uplink_inbox *in, int *ret_fd)
{
	_cleanup_close_ int sfd = -1;
	int r = fileio_open_dir_verified(AT_FDCWD, in->spool, NULL, &sfd);

	if (r < 0)
		return r;
	r = fileio_open_dir_verified(sfd, SPOOL_INBOX_DIR, NULL, ret_fd);
	if (r != -ENOENT)
		return r;
	/* made by the agent and the installer; by us only on a spool we may write */
	if (mkdirat(sfd, SPOOL_INBOX_DIR, 0770) < 0 && errno != EEXIST)
		return negative_errno();
	return fileio_open_dir_verified(sfd, SPOOL_INBOX_DIR, NULL, ret_fd);
}

static void read_etag(int dfd, char out[ETAG_MAX + 1])
{
	_cleanup_close_ int fd = openat(dfd, INBOX_ETAG, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char buf[ETAG_MAX + 2];
	ssize_t n;

	out[0] = 0;
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return;
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	if (etag_valid(buf))
		memcpy(out, buf, strlen(buf) + 1); /* at most ETAG_MAX bytes */
}

/* SPOOL/terminal-key.pub, the agent's X25519 public key for the central TOTP secrets (written
 * by its monitor), as the header the collector reads; "" when there is none (yet). */
static void read_terminal_key(struct uplink_inbox *in, char out[96])
{
	_cleanup_close_ int sfd = -1, fd = -1;
	uint8_t pub[BUNDLE_X25519_LEN];
	char buf[64];
	ssize_t n;

	out[0] = 0;
	if (fileio_open_dir_verified(AT_FDCWD, in->spool, NULL, &sfd) < 0 ||
	    fileio_open_verified(sfd, SPOOL_TERMINAL_KEY, O_RDONLY, NULL, &fd) < 0)
		return;
	n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return;
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	if (bundle_pubkey_from_base64(buf, pub) == 0)
		snprintf(out, 96, "%s: %s", BUNDLE_TERMINAL_KEY_HEADER, buf);
}

void uplink_inbox_fetch(struct uplink_inbox *in, struct uplink_client *c)
{
	_cleanup_close_ int dfd = -1;
	char etag[ETAG_MAX + 1], err[BUNDLE_ERR_MAX], key_header[96];
	struct uplink_fetch ans;
	struct bundle_frame fr;
	int r;

	r = open_inbox(in, &dfd);
	if (r < 0) {
		fail(in, "inbox", "op=inbox dir=%s/%s error=\"%s\"", in->spool, SPOOL_INBOX_DIR,
		     strerror(-r));
		return;
	}
	read_etag(dfd, etag);
	read_terminal_key(in, key_header);
	uplink_client_get(c, "/v1/policy", etag[0] ? etag : NULL, key_header[0] ? key_header : NULL,
			  BUNDLE_MAX_BYTES, &ans);
	if (ans.status == 304 || ans.status == 404) {
		if (in->verbose)
			log_line(LOG_INFO, "uplink.fleet status=%ld etag=%s", ans.status,
				 etag[0] ? etag : "-");
		in->last_error[0] = 0;
		free(ans.body);
		return;
	}
	if (ans.status != 200) {
		fail(in, ans.what, "op=fetch error=\"%s\"", ans.message);
		free(ans.body);
		return;
	}
	_cleanup_free_ char *body = ans.body;
	if (!etag_valid(ans.etag)) {
		fail(in, "etag", "op=fetch error=\"200 without a valid ETag\"");
		return;
	}
	r = bundle_decode((const uint8_t *)body, ans.len, &fr, err, sizeof err);
	if (r < 0) {
		char safe[BUNDLE_ERR_MAX * 4];
		escape_text(err, strlen(err), BUNDLE_ERR_MAX, 0, safe, sizeof safe);
		fail(in, "decode", "op=fetch error=\"not a bundle: %s\"", safe);
		return;
	}
	if (in->terminal && (fr.terminal_id_len != strlen(in->terminal) ||
			     memcmp(fr.terminal_id, in->terminal, fr.terminal_id_len) != 0)) {
		fail(in, "terminal", "op=fetch error=\"the bundle is for another terminal\"");
		return;
	}
	r = fileio_write_atomic(dfd, INBOX_BUNDLE, body, ans.len, 0640, (uid_t)-1, (gid_t)-1);
	if (r >= 0) {
		char line[ETAG_MAX + 2];
		int n = snprintf(line, sizeof line, "%s\n", ans.etag);
		r = fileio_write_atomic(dfd, INBOX_ETAG, line, (size_t)n, 0640, (uid_t)-1,
					(gid_t)-1);
	}
	if (r < 0) {
		fail(in, "store", "op=store dir=%s/%s error=\"%s\"", in->spool, SPOOL_INBOX_DIR,
		     strerror(-r));
		return;
	}
	in->last_error[0] = 0;
	log_line(LOG_INFO, "uplink.fleet stored bundle version=%s bytes=%zu", ans.etag, ans.len);
}
