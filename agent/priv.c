/* SPDX-License-Identifier: MIT */
/* mynaguardd's monitor (root): serves the worker's fixed request set (docs/ARCHITECTURE.md). It
 * parses no text: names are checked against a fixed grammar, payloads are opaque bytes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bundle.h"
#include "escape.h"
#include "log.h"
#include "fileio.h"
#include "macro.h"
#include "priv.h"
#include "secmem.h"
#include "totp_recovery.h"
#include "totp_store.h"

#define SEQ_FILE	   "seq"
#define PENDING_DIR	   "totp"
#define PENDING_FILE	   ".pending-events"
#define PENDING_DROPS_FILE ".pending-events.dropped"
#define PENDING_MAX	   (4 * 1024 * 1024)
#define TIME_FLOOR_FILE	   "time-floor"
#define BUNDLE_DIR	   "bundle"
#define BUNDLE_CURRENT	   "current"
#define BUNDLE_APPLIED	   "applied" /* 16 bytes: body version, base version (u64 BE) */

struct priv_monitor {
	struct priv_monitor_config cfg;
	struct spool_writer *spool;
	uint64_t last_appended; /* sequence numbers only rise */
	int pending_fd;		/* locked between PENDING_READ at 0 and PENDING_DONE */
	char *pending;
	size_t pending_len;
	uint64_t refused;
	/* PRIV_BUNDLE_READ: the snapshot taken at offset 0, paged through by later offsets */
	uint8_t *bundle;
	size_t bundle_len;
	int bundle_src;		/* -1 = none */
	uint64_t floor_written; /* the largest time floor written in this run */
};

struct priv_monitor *priv_monitor_new(const struct priv_monitor_config *cfg)
{
	struct priv_monitor *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->cfg = *cfg;
	m->pending_fd = -1;
	m->bundle_src = -1;
	return m;
}

static void pending_close(struct priv_monitor *m)
{
	if (m->pending_fd >= 0)
		close(m->pending_fd);
	m->pending_fd = -1;
	free(m->pending);
	m->pending = NULL;
	m->pending_len = 0;
}

void priv_monitor_free(struct priv_monitor *m)
{
	if (!m)
		return;
	if (m->spool) {
		(void)spool_writer_sync(m->spool);
		spool_writer_free(m->spool);
	}
	pending_close(m);
	free(m->bundle);
	free(m);
}

/* ---- USB: open the named device under SYSFS/sys/bus/usb/devices and check what it is ---- */

static int usb_open_dir(struct priv_monitor *m, const char *name, int kind)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *root = m->cfg.sysfs_root;
	_cleanup_close_ int dfd = -1;
	struct stat st;
	const char *want;
	ssize_t n;

	if (!root || strcmp(root, "/") == 0)
		root = "";
	if ((size_t)snprintf(path, sizeof(path), "%s/sys/bus/usb/devices/%s", root, name) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	/* name has no '/' and no "..": the only link followed is the bus's own entry. */
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return negative_errno();
	/* It must be a USB device or interface (subsystem -> .../bus/usb; the grammar of the name
	 * already told which) with the attribute to be written: the kernel's own. */
	n = readlinkat(dfd, "subsystem", link, sizeof(link) - 1);
	if (n < 0)
		return -ENODEV;
	link[n] = 0;
	if (n < 8 || strcmp(link + n - 8, "/bus/usb") != 0)
		return -ENODEV;
	want = kind == 'r' ? "interface_authorized_default" : "authorized";
	if (fstatat(dfd, want, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return -ENODEV;
	return TAKE_FD(dfd);
}

static int write_attr_at(int dfd, const char *attr, const char *value)
{
	_cleanup_close_ int fd = openat(dfd, attr, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return negative_errno();
	return fileio_write_all(fd, value, strlen(value));
}

static int usb_write(struct priv_monitor *m, const struct priv_req *q)
{
	int kind = priv_name_kind(q->name);
	_cleanup_close_ int dfd = usb_open_dir(m, q->name, kind);

	if (dfd < 0)
		return dfd;
	if (q->op == PRIV_USB_AUTHORIZE)
		return write_attr_at(dfd, "authorized", q->arg ? "1" : "0");
	if (q->op == PRIV_USB_DEFAULT_DENY)
		return write_attr_at(dfd, "interface_authorized_default", "0");
	/* PRIV_USB_PROBE: the interface exists; its name goes to bus/usb/drivers_probe. */
	char path[PATH_MAX];
	const char *root = m->cfg.sysfs_root;
	_cleanup_close_ int bfd = -1;

	if (!root || strcmp(root, "/") == 0)
		root = "";
	if ((size_t)snprintf(path, sizeof(path), "%s/sys/bus/usb", root) >= sizeof(path))
		return -ENAMETOOLONG;
	bfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0)
		return negative_errno();
	return write_attr_at(bfd, "drivers_probe", q->name);
}

/* ---- state files ---- */

static int state_dir_open(struct priv_monitor *m, int *ret)
{
	if (mkdir(m->cfg.state_dir, 0755) < 0 && errno != EEXIST)
		return negative_errno();
	return fileio_open_dir_verified(AT_FDCWD, m->cfg.state_dir, NULL, ret);
}

/* A small file's raw bytes into the response: the worker parses them. */
static int small_read(int dfd, const char *name, const struct fileio_expect *ex,
		      struct priv_resp *resp, uint8_t *payload)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = fileio_open_verified(dfd, name, O_RDONLY, ex, &fd);

	if (r >= 0)
		r = fileio_read_fd(fd, PRIV_DROPS_MAX, &text, &len);
	if (r < 0)
		return r;
	memcpy(payload, text, len);
	resp->len = (uint32_t)len;
	return 0;
}

static int seq_read(struct priv_monitor *m, struct priv_resp *resp, uint8_t *payload)
{
	_cleanup_close_ int sfd = -1;
	int r = state_dir_open(m, &sfd);

	return r < 0 ? r : small_read(sfd, SEQ_FILE, NULL, resp, payload);
}

static int seq_write(struct priv_monitor *m, uint64_t v)
{
	_cleanup_close_ int sfd = -1;
	char buf[32];
	int n, r = state_dir_open(m, &sfd);

	if (r < 0)
		return r;
	n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", v);
	return fileio_write_atomic(sfd, SEQ_FILE, buf, (size_t)n, 0644, (uid_t)-1, (gid_t)-1);
}

static int totp_dir_open(struct priv_monitor *m, int *ret)
{
	_cleanup_close_ int sfd = -1;
	int r = state_dir_open(m, &sfd);

	if (r < 0)
		return r;
	return fileio_open_dir_verified(sfd, PENDING_DIR, NULL, ret);
}

static const struct fileio_expect *pending_expect(void)
{
	static struct fileio_expect ex;

	ex = (struct fileio_expect){.check_owner = true, .uid = geteuid(), .forbidden_mode = 0077};
	return &ex;
}

/* The whole file is read and locked at offset 0; later offsets page through that copy. */
static int pending_read(struct priv_monitor *m, uint64_t off, struct priv_resp *resp,
			uint8_t *payload)
{
	size_t n;
	int r;

	if (off == 0) {
		_cleanup_close_ int dfd = -1, fd = -1;

		pending_close(m);
		r = totp_dir_open(m, &dfd);
		if (r >= 0)
			r = fileio_open_verified(dfd, PENDING_FILE, O_RDWR, pending_expect(), &fd);
		if (r >= 0)
			r = fileio_lock_exclusive(fd);
		if (r >= 0)
			r = fileio_read_fd(fd, PENDING_MAX, &m->pending, &m->pending_len);
		if (r < 0)
			return r;
		m->pending_fd = TAKE_FD(fd);
	}
	if (m->pending_fd < 0 || off > m->pending_len)
		return -EINVAL;
	n = m->pending_len - off;
	if (n > PRIV_PENDING_CHUNK)
		n = PRIV_PENDING_CHUNK;
	memcpy(payload, m->pending + off, n);
	resp->len = (uint32_t)n;
	resp->v[0] = m->pending_len;
	return 0;
}

static int pending_done(struct priv_monitor *m, bool truncate)
{
	int r = 0;

	if (m->pending_fd < 0)
		return -EINVAL;
	if (truncate && (ftruncate(m->pending_fd, 0) < 0 || fsync(m->pending_fd) < 0))
		r = negative_errno();
	pending_close(m);
	return r;
}

static int drops_read(struct priv_monitor *m, struct priv_resp *resp, uint8_t *payload)
{
	_cleanup_close_ int dfd = -1;
	int r = totp_dir_open(m, &dfd);

	return r < 0 ? r : small_read(dfd, PENDING_DROPS_FILE, pending_expect(), resp, payload);
}

static int drops_clear(struct priv_monitor *m)
{
	_cleanup_close_ int dfd = -1;
	int r = totp_dir_open(m, &dfd);

	if (r < 0)
		return r;
	if (unlinkat(dfd, PENDING_DROPS_FILE, 0) < 0)
		return negative_errno();
	(void)fsync(dfd);
	return 0;
}

/* ---- the spool ---- */

static void spool_state(struct priv_monitor *m, struct priv_resp *resp)
{
	resp->v[0] = spool_writer_next_seq(m->spool);
	resp->v[1] = spool_writer_last_seq(m->spool);
	resp->v[2] = spool_writer_bytes(m->spool);
}

static int spool_open(struct priv_monitor *m, uint64_t max_bytes, struct priv_resp *resp,
		      uint8_t *payload)
{
	struct priv_spool_info info = {0};
	int r;

	if (m->spool) {
		spool_writer_free(m->spool);
		m->spool = NULL;
	}
	if (max_bytes < 2 * SPOOL_RECORD_MAX)
		max_bytes = 2 * SPOOL_RECORD_MAX;
	r = spool_prepare_dir(m->cfg.spool_dir);
	if (r < 0)
		return r;
	r = spool_writer_open(m->cfg.spool_dir, max_bytes, &m->spool, &info.recovery);
	if (r < 0)
		return r;
	m->last_appended = spool_writer_last_seq(m->spool);
	spool_state(m, resp);
	memcpy(payload, &info, sizeof(info));
	resp->len = sizeof(info);
	return 0;
}

static int spool_append(struct priv_monitor *m, const struct priv_req *q, const uint8_t *data,
			struct priv_resp *resp, uint8_t *payload)
{
	struct priv_spool_info info = {0};
	int r;

	if (!m->spool)
		return -ENODEV;
	/* A worker may lose events, but never rewrite or reuse a number. */
	if (q->u64 == 0 || q->u64 <= m->last_appended || q->u64 < spool_writer_next_seq(m->spool)) {
		log_line(LOG_WARNING,
			 "monitor.refused op=spool-append seq=%" PRIu64 " last=%" PRIu64
			 " (sequence numbers only rise)",
			 q->u64, m->last_appended);
		return -ERANGE;
	}
	r = spool_writer_append(m->spool, q->u64, (enum spool_class)q->arg, data, q->len,
				&info.drop);
	if (r < 0)
		return r;
	m->last_appended = q->u64;
	spool_state(m, resp);
	memcpy(payload, &info, sizeof(info));
	resp->len = sizeof(info);
	return 0;
}

static int spool_trim(struct priv_monitor *m, struct priv_resp *resp, uint8_t *payload)
{
	struct priv_spool_info info = {0};

	if (!m->spool)
		return -ENODEV;
	int r = spool_writer_trim_acked(m->spool, &info.trim);
	/* Logged here, answered as success: the worker needs the refusal it may carry. */
	if (r < 0)
		log_line(LOG_ERR, "spool.error op=trim dir=%s error=\"%s\"", m->cfg.spool_dir,
			 strerror(-r));
	spool_state(m, resp);
	memcpy(payload, &info, sizeof(info));
	resp->len = sizeof(info);
	return 0;
}

static void reload_policy(const struct priv_monitor_config *cfg);

/* ---- the fleet bundle (docs/fleet.md) and the trusted-time floor ---- */

/* One snapshot of SPOOL/inbox/bundle or STATE/bundle/current: opened once without following a
 * symlink, a regular file of at most BUNDLE_MAX_BYTES. The installed copy must be ours and
 * private; the inbox belongs to the uplink. */
static int bundle_snapshot(struct priv_monitor *m, int src, uint8_t **ret, size_t *ret_len)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	char *text = NULL;
	size_t len;
	int r;

	if (src == PRIV_BUNDLE_INBOX) {
		_cleanup_close_ int sfd = -1;

		r = fileio_open_dir_verified(AT_FDCWD, m->cfg.spool_dir, NULL, &sfd);
		if (r >= 0)
			r = fileio_open_dir_verified(sfd, SPOOL_INBOX_DIR, NULL, &dfd);
		if (r >= 0)
			r = fileio_open_verified(dfd, SPOOL_INBOX_BUNDLE, O_RDONLY, NULL, &fd);
	} else {
		_cleanup_close_ int sfd = -1;

		r = state_dir_open(m, &sfd);
		if (r >= 0)
			r = fileio_open_dir_verified(sfd, BUNDLE_DIR, pending_expect(), &dfd);
		if (r >= 0)
			r = fileio_open_verified(dfd, BUNDLE_CURRENT, O_RDONLY, pending_expect(),
						 &fd);
	}
	if (r >= 0)
		r = fileio_read_fd(fd, BUNDLE_MAX_BYTES, &text, &len);
	if (r < 0)
		return r;
	*ret = (uint8_t *)text;
	*ret_len = len;
	return 0;
}

static int bundle_read(struct priv_monitor *m, const struct priv_req *q, struct priv_resp *resp,
		       uint8_t *payload)
{
	size_t n;

	if (q->u64 == 0) {
		free(m->bundle);
		m->bundle = NULL;
		m->bundle_src = -1;
		int r = bundle_snapshot(m, (int)q->arg, &m->bundle, &m->bundle_len);
		if (r < 0)
			return r;
		m->bundle_src = (int)q->arg;
	}
	if (!m->bundle || m->bundle_src != (int)q->arg || q->u64 > m->bundle_len)
		return -EINVAL;
	n = m->bundle_len - q->u64;
	if (n > PRIV_PENDING_CHUNK)
		n = PRIV_PENDING_CHUNK;
	memcpy(payload, m->bundle + q->u64, n);
	resp->len = (uint32_t)n;
	resp->v[0] = m->bundle_len;
	if (q->u64 + n == m->bundle_len) { /* handed over whole: forget it */
		free(m->bundle);
		m->bundle = NULL;
		m->bundle_src = -1;
	}
	return 0;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* The monitor's own record of what it installed: 16 binary bytes (no text to parse here). */
static int applied_read(int bdfd, uint64_t *ret_version, uint64_t *ret_base)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = fileio_open_verified(bdfd, BUNDLE_APPLIED, O_RDONLY, pending_expect(), &fd);

	*ret_version = *ret_base = 0;
	if (r == -ENOENT)
		return 0;
	if (r >= 0)
		r = fileio_read_fd(fd, 64, &data, &len);
	if (r < 0)
		return r;
	if (len != 16)
		return -EBADMSG;
	*ret_version = be64((const uint8_t *)data);
	*ret_base = be64((const uint8_t *)data + 8);
	return 0;
}

static void log_install_refused(const char *why, const char *detail)
{
	char esc[ESCAPE_SIZE(BUNDLE_ERR_MAX)];

	log_line(LOG_WARNING, "monitor.refused op=bundle-install error=\"%s\"%s%s", why,
		 detail ? " reason=" : "",
		 detail ? escape_text(detail, strlen(detail), BUNDLE_ERR_MAX, ESCAPE_QUOTES, esc,
				      sizeof(esc))
			: "");
}

/* Take a fresh snapshot of the inbox, check it is what the worker checked, check it again here
 * (root signature before the base is parsed, grant signature, terminal, versions against our
 * own record), then write the policy file, STATE/bundle/current and STATE/bundle/applied. The
 * exceptions JSON is never parsed here. */
static int bundle_install(struct priv_monitor *m, const struct priv_req *q, const uint8_t *sha)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int sfd = -1, bdfd = -1;
	struct policy *base = NULL;
	struct bundle_frame f;
	uint8_t digest[EVP_MAX_MD_SIZE], rec[16];
	unsigned dlen = 0;
	uint64_t applied, applied_base;
	char err[BUNDLE_ERR_MAX];
	size_t len, tlen;
	int r;

	if (!m->cfg.have_fleet_key) {
		log_install_refused("no fleet root key is pinned", NULL);
		return -ENOKEY;
	}
	if (!m->cfg.policy || !*m->cfg.policy || !(*m->cfg.policy)->terminal_id)
		return -EINVAL;
	r = bundle_snapshot(m, PRIV_BUNDLE_INBOX, &buf, &len);
	if (r < 0)
		return r;
	if (!EVP_Digest(buf, len, digest, &dlen, EVP_sha256(), NULL) || dlen != PRIV_SHA256_LEN)
		return -EIO;
	if (memcmp(digest, sha, PRIV_SHA256_LEN) != 0) {
		log_install_refused("the inbox changed since the worker checked it", NULL);
		return -ESTALE;
	}
	r = state_dir_open(m, &sfd);
	if (r < 0)
		return r;
	if (mkdirat(sfd, BUNDLE_DIR, 0700) < 0 && errno != EEXIST)
		return negative_errno();
	r = fileio_open_dir_verified(sfd, BUNDLE_DIR, pending_expect(), &bdfd);
	if (r >= 0)
		r = applied_read(bdfd, &applied, &applied_base);
	if (r < 0)
		return r;
	err[0] = 0;
	r = bundle_decode(buf, len, &f, err, sizeof(err));
	if (r >= 0)
		r = bundle_check_install(&f, m->cfg.fleet_key, (*m->cfg.policy)->terminal_id,
					 applied, applied_base, &base, err, sizeof(err));
	if (r < 0) {
		log_install_refused("the bundle does not pass the monitor's checks", err);
		return r;
	}
	if (f.version != q->u64) {
		policy_free(base);
		log_install_refused("the version differs from the worker's", NULL);
		return -ESTALE;
	}
	put_be64(rec, f.version);
	put_be64(rec + 8, base->fleet_version);
	policy_free(base);
	r = policy_install_text((const char *)f.base, f.base_len, (*m->cfg.policy)->terminal_id,
				&text, &tlen);
	if (r < 0)
		return r;
	/* The policy first: a crash before `applied` only lets the same bundle be installed again. */
	r = fileio_write_atomic_path(m->cfg.policy_path, text, tlen, 0644);
	if (r >= 0)
		r = fileio_write_atomic(bdfd, BUNDLE_CURRENT, buf, len, 0600, (uid_t)-1, (gid_t)-1);
	if (r >= 0)
		r = fileio_write_atomic(bdfd, BUNDLE_APPLIED, rec, sizeof(rec), 0600, (uid_t)-1,
					(gid_t)-1);
	if (r < 0) {
		log_line(LOG_ERR, "monitor.error op=bundle-install error=\"%s\"", strerror(-r));
		return r;
	}
	/* A signed, deliberate change: agent.integrity must not call it tampering. */
	unsigned mline = 0;
	int mr = compliance_manifest_update_policy(m->cfg.state_dir, m->cfg.policy_path, &mline);
	if (mr < 0)
		log_line(LOG_WARNING,
			 "monitor.warning op=manifest-update error=\"%s\" line=%u (agent.integrity "
			 "will report the new policy)",
			 strerror(-mr), mline);
	log_line(LOG_INFO, "monitor.bundle-installed version=%" PRIu64 " policy=%s manifest=%s",
		 f.version, m->cfg.policy_path, mr > 0 ? "updated" : "unchanged");
	return 0;
}

static int floor_read(struct priv_monitor *m, struct priv_resp *resp, uint8_t *payload)
{
	_cleanup_close_ int sfd = -1;
	int r = state_dir_open(m, &sfd);

	return r < 0 ? r : small_read(sfd, TIME_FLOOR_FILE, pending_expect(), resp, payload);
}

static int floor_write(struct priv_monitor *m, uint64_t v)
{
	_cleanup_close_ int sfd = -1;
	char buf[32];
	int n, r;

	if (v <= m->floor_written)
		return 0; /* never lowered */
	r = state_dir_open(m, &sfd);
	if (r < 0)
		return r;
	n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", v);
	r = fileio_write_atomic(sfd, TIME_FLOOR_FILE, buf, (size_t)n, 0600, (uid_t)-1, (gid_t)-1);
	if (r >= 0)
		m->floor_written = v;
	return r;
}

/* ---- central TOTP (docs/fleet.md, "Central TOTP enrollment") ---- */

#define TERMINAL_KEY   "terminal-key" /* the X25519 private key: 32 raw bytes, root 0600 */
#define CENTRAL_DIR    "totp-central" /* USER: 8 bytes, the installed generation (u64 BE) */
#define TOTP_STORE_DIR PENDING_DIR    /* STATE/totp, the store the PAM module reads */

static int terminal_key_load(struct priv_monitor *m, uint8_t priv[BUNDLE_X25519_LEN])
{
	_cleanup_close_ int sfd = -1, fd = -1;
	char *data = NULL;
	size_t len = 0;
	int r = state_dir_open(m, &sfd);

	if (r >= 0)
		r = fileio_open_verified(sfd, TERMINAL_KEY, O_RDONLY, pending_expect(), &fd);
	if (r >= 0)
		r = fileio_read_fd(fd, 64, &data, &len);
	if (r >= 0 && len != BUNDLE_X25519_LEN)
		r = -EBADMSG;
	if (r >= 0)
		memcpy(priv, data, BUNDLE_X25519_LEN);
	secmem_wipe(data, len);
	free(data);
	return r;
}

/* At start: STATE/terminal-key (made once) and its public half in SPOOL/terminal-key.pub for
 * the uplink to report. */
static void terminal_key_init(struct priv_monitor *m)
{
	_cleanup_close_ int sfd = -1, spfd = -1;
	uint8_t priv[BUNDLE_X25519_LEN], pub[BUNDLE_X25519_LEN];
	char line[64];
	int r = terminal_key_load(m, priv);

	if (r == -ENOENT) {
		r = bundle_x25519_generate(priv, pub);
		if (r >= 0)
			r = state_dir_open(m, &sfd);
		if (r >= 0)
			r = fileio_write_atomic(sfd, TERMINAL_KEY, priv, sizeof(priv), 0600,
						(uid_t)-1, (gid_t)-1);
		if (r >= 0)
			log_line(LOG_INFO, "monitor.terminal-key generated %s/%s", m->cfg.state_dir,
				 TERMINAL_KEY);
	}
	if (r >= 0)
		r = bundle_x25519_public(priv, pub);
	secmem_wipe(priv, sizeof(priv));
	if (r >= 0) {
		bundle_pubkey_to_base64(pub, line);
		strcat(line, "\n");
		r = fileio_open_dir_verified(AT_FDCWD, m->cfg.spool_dir, NULL, &spfd);
	}
	if (r >= 0)
		r = fileio_write_atomic(spfd, SPOOL_TERMINAL_KEY, line, strlen(line), 0644,
					(uid_t)-1, (gid_t)-1);
	if (r < 0)
		log_line(LOG_WARNING,
			 "monitor.warning op=terminal-key error=\"%s\" (no central TOTP secret "
			 "can reach this terminal)",
			 strerror(-r));
}

static int central_dir_open(struct priv_monitor *m, int *ret)
{
	_cleanup_close_ int sfd = -1;
	int r = state_dir_open(m, &sfd);

	if (r < 0)
		return r;
	if (mkdirat(sfd, CENTRAL_DIR, 0700) < 0 && errno != EEXIST)
		return negative_errno();
	return fileio_open_dir_verified(sfd, CENTRAL_DIR, pending_expect(), ret);
}

static int store_dir_open(struct priv_monitor *m, int *ret)
{
	_cleanup_close_ int sfd = -1;
	int r = state_dir_open(m, &sfd);

	if (r < 0)
		return r;
	if (mkdirat(sfd, TOTP_STORE_DIR, 0700) < 0 && errno != EEXIST)
		return negative_errno();
	const struct fileio_expect e = {
	    .check_owner = true, .uid = geteuid(), .forbidden_mode = 0022};
	return fileio_open_dir_verified(sfd, TOTP_STORE_DIR, &e, ret);
}

/* The generation installed for user (0 = none). */
static uint64_t central_gen(int cdfd, const char *user)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *data = NULL;
	size_t len;

	if (fileio_open_verified(cdfd, user, O_RDONLY, pending_expect(), &fd) < 0 ||
	    fileio_read_fd(fd, 16, &data, &len) < 0 || len != 8)
		return 0;
	return be64((const uint8_t *)data);
}

/* The installed bundle's JSON (STATE/bundle/current, checked by us when it was installed):
 * *ret_buf owns the bytes, *ret_json and *ret_len point into it. */
static int current_json(struct priv_monitor *m, uint8_t **ret_buf, const char **ret_json,
			size_t *ret_len)
{
	struct bundle_frame f;
	uint8_t *buf = NULL;
	size_t len;
	int r = bundle_snapshot(m, PRIV_BUNDLE_CURRENT, &buf, &len);

	if (r >= 0)
		r = bundle_decode(buf, len, &f, NULL, 0);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret_buf = buf;
	*ret_json = f.json;
	*ret_len = f.json_len;
	return 0;
}

/* The worker's entry is looked up in the installed bundle as the collector writes it (compact,
 * keys in this order, docs/fleet.md): no JSON is parsed here. */
static int entry_in_current(struct priv_monitor *m, const char *user, const char *gen_key,
			    uint64_t gen, const uint8_t *sealed, size_t len)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_free_ char *needle = NULL;
	char b64[4 * ((BUNDLE_SEALED_MAX + 2) / 3) + 1];
	const char *json;
	size_t jlen;
	int r = current_json(m, &buf, &json, &jlen);

	if (r < 0)
		return r;
	EVP_EncodeBlock((unsigned char *)b64, sealed, (int)len);
	if (asprintf(&needle, "{\"user\":\"%s\",\"sealed\":\"%s\",\"%s\":%" PRIu64 "}", user, b64,
		     gen_key, gen) < 0)
		return -ENOMEM;
	return memmem(json, jlen, needle, strlen(needle)) ? 0 : -EPERM;
}

static int totp_install(struct priv_monitor *m, const struct priv_req *q, const uint8_t *data)
{
	_cleanup_close_ int cdfd = -1, dirfd = -1, lockfd = -1;
	uint8_t priv[BUNDLE_X25519_LEN], rec_gen[8];
	struct bundle_totp_secret s;
	struct totp_record rec = {0};
	char user[BUNDLE_TOTP_USER_MAX + 1];
	const uint8_t *sealed = data + 1 + data[0];
	size_t slen = q->len - 1 - data[0];
	int r;

	memcpy(user, data + 1, data[0]);
	user[data[0]] = 0;
	if (!totp_user_valid(user) || !(*m->cfg.policy)->terminal_id)
		return -EINVAL;
	r = central_dir_open(m, &cdfd);
	if (r < 0)
		return r;
	if (central_gen(cdfd, user) >= q->u64)
		return 0; /* installed already */
	r = entry_in_current(m, user, "gen", q->u64, sealed, slen);
	if (r < 0) {
		log_line(LOG_WARNING,
			 "monitor.refused op=totp-install user=%s error=\"not an entry of the "
			 "installed bundle\"",
			 user);
		return r;
	}
	r = terminal_key_load(m, priv);
	if (r >= 0)
		r = bundle_totp_open(priv, (*m->cfg.policy)->terminal_id, user, q->u64, sealed,
				     slen, &s);
	secmem_wipe(priv, sizeof(priv));
	if (r < 0) {
		log_line(LOG_WARNING,
			 "monitor.refused op=totp-install user=%s error=\"the sealed secret does "
			 "not open with this terminal's key\"",
			 user);
		return r;
	}
	rec.version = TOTP_RECORD_VERSION;
	rec.kind = TOTP_KIND_APP;
	memcpy(rec.secret, s.secret, s.secret_len);
	rec.secret_len = s.secret_len;
	rec.digits = s.digits;
	rec.period = s.period;
	rec.enrolled = s.enrolled;
	rec.verified = s.enrolled; /* the collector's enrollment counts (docs/fleet.md) */
	secmem_wipe(&s, sizeof(s));
	r = store_dir_open(m, &dirfd);
	if (r >= 0)
		r = totp_store_lock(dirfd, user, geteuid(), &lockfd);
	if (r >= 0)
		r = totp_store_write(dirfd, user, &rec);
	totp_record_wipe(&rec);
	if (r >= 0) {
		put_be64(rec_gen, q->u64);
		r = fileio_write_atomic(cdfd, user, rec_gen, sizeof(rec_gen), 0600, (uid_t)-1,
					(gid_t)-1);
	}
	if (r < 0) {
		log_line(LOG_ERR, "monitor.error op=totp-install user=%s error=\"%s\"", user,
			 totp_store_strerror(r));
		return r;
	}
	log_line(LOG_INFO, "monitor.totp-installed user=%s gen=%" PRIu64, user, q->u64);
	return 1;
}

/* A helpdesk recovery code: STATE/totp/.USER.recovery, unless that code (or a newer one) is
 * there already (then a used code stays used). */
static int totp_recovery_install(struct priv_monitor *m, const struct priv_req *q,
				 const uint8_t *data)
{
	_cleanup_close_ int dirfd = -1, lockfd = -1;
	uint8_t priv[BUNDLE_X25519_LEN];
	struct bundle_totp_secret s;
	struct totp_recovery rec = {0}, old;
	char user[BUNDLE_TOTP_USER_MAX + 1];
	const uint8_t *sealed = data + 1 + data[0];
	size_t slen = q->len - 1 - data[0];
	int r;

	memcpy(user, data + 1, data[0]);
	user[data[0]] = 0;
	if (!totp_user_valid(user) || !(*m->cfg.policy)->terminal_id)
		return -EINVAL;
	r = store_dir_open(m, &dirfd);
	if (r >= 0)
		r = totp_store_lock(dirfd, user, geteuid(), &lockfd);
	if (r < 0)
		return r;
	r = totp_recovery_read(dirfd, user, geteuid(), &old);
	if (r >= 0 && old.rid >= q->u64) {
		secmem_wipe(&old, sizeof(old));
		return 0;
	}
	secmem_wipe(&old, sizeof(old));
	r = entry_in_current(m, user, "rid", q->u64, sealed, slen);
	if (r < 0) {
		log_line(LOG_WARNING,
			 "monitor.refused op=totp-recovery user=%s error=\"not an entry of the "
			 "installed bundle\"",
			 user);
		return r;
	}
	r = terminal_key_load(m, priv);
	if (r >= 0)
		r = bundle_totp_open(priv, (*m->cfg.policy)->terminal_id, user,
				     BUNDLE_RECOVERY_GEN + q->u64, sealed, slen, &s);
	secmem_wipe(priv, sizeof(priv));
	if (r >= 0 && s.secret_len != TOTP_RECOVERY_DIGITS)
		r = -EBADMSG;
	for (size_t i = 0; r >= 0 && i < TOTP_RECOVERY_DIGITS; i++)
		if (s.secret[i] < '0' || s.secret[i] > '9')
			r = -EBADMSG;
	if (r < 0) {
		secmem_wipe(&s, sizeof(s));
		log_line(LOG_WARNING,
			 "monitor.refused op=totp-recovery user=%s error=\"the sealed code does "
			 "not open with this terminal's key\"",
			 user);
		return r;
	}
	rec.rid = q->u64;
	rec.until = s.enrolled;
	memcpy(rec.code, s.secret, TOTP_RECOVERY_DIGITS);
	secmem_wipe(&s, sizeof(s));
	r = totp_recovery_write(dirfd, user, &rec);
	secmem_wipe(&rec, sizeof(rec));
	if (r < 0) {
		log_line(LOG_ERR, "monitor.error op=totp-recovery user=%s error=\"%s\"", user,
			 strerror(-r));
		return r;
	}
	log_line(LOG_INFO, "monitor.totp-recovery user=%s rid=%" PRIu64, user, q->u64);
	return 1;
}

static int totp_prune(struct priv_monitor *m, struct priv_resp *resp, uint8_t *payload)
{
	_cleanup_close_ int cdfd = -1, dirfd = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	const char *json = NULL;
	size_t jlen = 0, out = 0;
	DIR *d;
	struct dirent *de;
	int r = central_dir_open(m, &cdfd), n = 0;

	if (r < 0)
		return r;
	r = current_json(m, &buf, &json, &jlen);
	if (r < 0 && r != -ENOENT)
		return r;
	d = fdopendir(dup(cdfd));
	if (!d)
		return negative_errno();
	while ((de = readdir(d))) {
		_cleanup_free_ char *needle = NULL;
		_cleanup_close_ int lockfd = -1;

		if (!totp_user_valid(de->d_name))
			continue;
		if (asprintf(&needle, "{\"user\":\"%s\",\"sealed\":\"", de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		if (json && memmem(json, jlen, needle, strlen(needle)))
			continue; /* still carried */
		if (dirfd < 0 && (r = store_dir_open(m, &dirfd)) < 0)
			break;
		r = totp_store_lock(dirfd, de->d_name, geteuid(), &lockfd);
		if (r >= 0) {
			r = totp_store_remove(dirfd, de->d_name);
			if (r == -ENOENT)
				r = 0;
		}
		if (r >= 0 && unlinkat(cdfd, de->d_name, 0) < 0)
			r = negative_errno();
		if (r < 0)
			break;
		log_line(LOG_INFO, "monitor.totp-removed user=%s", de->d_name);
		size_t k = strlen(de->d_name) + 1;
		if (out + k <= PRIV_PENDING_CHUNK) {
			memcpy(payload + out, de->d_name, k);
			out += k;
		}
		n++;
	}
	closedir(d);
	if (r < 0)
		return r;
	resp->len = (uint32_t)out;
	return n;
}

/* ---- the root-only compliance checks ---- */

static int check_run(struct priv_monitor *m, int check, struct priv_resp *resp, uint8_t *payload)
{
	struct compliance_env env;
	struct compliance_result res;
	char buf[2 * PATH_MAX];
	int r;

	r = compliance_env_default(&env, *m->cfg.policy, m->cfg.policy_path, m->cfg.state_dir, buf,
				   sizeof(buf));
	if (r < 0)
		return r;
	if (m->cfg.sysfs_root && strcmp(m->cfg.sysfs_root, "/") != 0)
		env.sysfs_root = m->cfg.sysfs_root;
	env.owner_uid = geteuid();
	compliance_run(&env, (enum policy_check)check, &res);
	memcpy(payload, &res, sizeof(res));
	resp->len = sizeof(res);
	return 0;
}

void priv_monitor_handle(struct priv_monitor *m, const void *buf, size_t n, struct priv_resp *resp,
			 uint8_t *payload)
{
	const struct priv_req *q;
	const uint8_t *data;
	int r;

	*resp = (struct priv_resp){0};
	r = priv_req_decode(buf, n, &q, &data);
	if (r < 0) {
		m->refused++;
		log_line(LOG_WARNING, "monitor.refused size=%zu error=\"malformed request\"", n);
		resp->status = r;
		return;
	}
	switch ((enum priv_op)q->op) {
	case PRIV_USB_AUTHORIZE:
	case PRIV_USB_PROBE:
	case PRIV_USB_DEFAULT_DENY:
		r = usb_write(m, q);
		if (r == -ENODEV || r == -ENOENT || r == -ENOTDIR) {
			m->refused++;
			log_line(LOG_WARNING,
				 "monitor.refused op=%s name=%s error=\"%s\" (not a USB %s in "
				 "sysfs)",
				 priv_op_name(q->op), q->name, strerror(-r),
				 q->op == PRIV_USB_DEFAULT_DENY ? "root hub"
				 : q->op == PRIV_USB_PROBE	? "interface"
								: "device or interface");
		}
		break;
	case PRIV_SPOOL_OPEN:
		r = spool_open(m, q->u64, resp, payload);
		break;
	case PRIV_SPOOL_APPEND:
		r = spool_append(m, q, data, resp, payload);
		break;
	case PRIV_SPOOL_SYNC:
		r = m->spool ? spool_writer_sync(m->spool) : -ENODEV;
		break;
	case PRIV_SPOOL_TRIM_ACKED:
		r = spool_trim(m, resp, payload);
		break;
	case PRIV_SPOOL_CLOSE:
		r = 0;
		if (m->spool) {
			r = spool_writer_sync(m->spool);
			spool_writer_free(m->spool);
			m->spool = NULL;
		}
		break;
	case PRIV_SEQ_READ:
		r = seq_read(m, resp, payload);
		break;
	case PRIV_SEQ_WRITE:
		r = seq_write(m, q->u64);
		break;
	case PRIV_PENDING_READ:
		r = pending_read(m, q->u64, resp, payload);
		break;
	case PRIV_PENDING_DONE:
		r = pending_done(m, q->arg == 1);
		break;
	case PRIV_PENDING_DROPS_READ:
		r = drops_read(m, resp, payload);
		break;
	case PRIV_PENDING_DROPS_CLEAR:
		r = drops_clear(m);
		break;
	case PRIV_CHECK_RUN:
		r = check_run(m, (int)q->arg, resp, payload);
		break;
	case PRIV_BUNDLE_READ:
		r = bundle_read(m, q, resp, payload);
		break;
	case PRIV_BUNDLE_INSTALL:
		r = bundle_install(m, q, data);
		if (r >= 0 && m->cfg.policy)
			reload_policy(&m->cfg);
		break;
	case PRIV_TIME_FLOOR_READ:
		r = floor_read(m, resp, payload);
		break;
	case PRIV_TIME_FLOOR_WRITE:
		r = floor_write(m, q->u64);
		break;
	case PRIV_TOTP_INSTALL:
		r = totp_install(m, q, data);
		break;
	case PRIV_TOTP_PRUNE:
		r = totp_prune(m, resp, payload);
		break;
	case PRIV_TOTP_RECOVERY:
		r = totp_recovery_install(m, q, data);
		break;
	case PRIV_READY:
	case _PRIV_OP_MAX:
		r = 0; /* PRIV_READY is handled by the loop */
		break;
	}
	resp->status = r;
	if (r < 0)
		resp->len = 0;
}

/* ---- the loop ---- */

static void reload_policy(const struct priv_monitor_config *cfg)
{
	struct policy_errors errs = {0};
	struct policy *p = NULL;

	/* Same file, same root-owned trust as at start; the worker reports errors in detail. */
	if (policy_load(cfg->policy_path, &p, &errs) >= 0) {
		policy_free(*cfg->policy);
		*cfg->policy = p;
	}
	policy_errors_clear(&errs);
}

static int worker_status(pid_t worker, bool wait)
{
	int status;
	pid_t r;

	do
		r = waitpid(worker, &status, wait ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1;
	return status;
}

static void log_worker_end(int status, bool stopping)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && stopping)
		return;
	if (WIFSIGNALED(status))
		log_line(LOG_ERR,
			 "monitor.worker-died signal=%s (%s); exiting, USB stays blocked by the "
			 "kernel default until the agent is restarted",
			 sigabbrev_np(WTERMSIG(status)),
			 WTERMSIG(status) == SIGSYS ? "seccomp: a forbidden system call"
						    : "killed");
	else
		log_line(LOG_ERR,
			 "monitor.worker-died status=%d; exiting, USB stays blocked by the kernel "
			 "default until the agent is restarted",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int priv_monitor_run(const struct priv_monitor_config *cfg, int fd, pid_t worker)
{
	_cleanup_free_ uint8_t *in = malloc(PRIV_REQ_MAX + 1);
	_cleanup_free_ uint8_t *out = malloc(PRIV_RESP_MAX);
	_cleanup_close_ int sigfd = -1;
	struct priv_monitor *m;
	bool stopping = false;
	sigset_t mask;
	int status = -1, r = 0;

	if (!in || !out)
		return -ENOMEM;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return negative_errno();
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0)
		return negative_errno();
	m = priv_monitor_new(cfg);
	if (!m)
		return -ENOMEM;
	terminal_key_init(m);

	for (;;) {
		struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN},
					{.fd = sigfd, .events = POLLIN}};
		struct signalfd_siginfo si;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = negative_errno();
			break;
		}
		while (pfd[1].revents && read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGHUP) {
				reload_policy(cfg);
				(void)kill(worker, SIGHUP);
			} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
				if (!stopping && cfg->on_stopping)
					cfg->on_stopping();
				stopping = true;
				(void)kill(worker, SIGTERM);
			}
		}
		if (!pfd[0].revents)
			continue;
		ssize_t n = recv(fd, in, PRIV_REQ_MAX + 1, MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the worker closed its end: it is gone */
		struct priv_resp *resp = (struct priv_resp *)out;
		priv_monitor_handle(m, in, (size_t)n, resp, out + sizeof(*resp));
		if (resp->status >= 0 && ((const struct priv_req *)in)->op == PRIV_READY &&
		    (size_t)n == sizeof(struct priv_req) && cfg->on_ready)
			cfg->on_ready();
		if (send(fd, out, sizeof(*resp) + resp->len, MSG_NOSIGNAL) < 0)
			break;
	}
	priv_monitor_free(m);
	status = worker_status(worker, true);
	log_worker_end(status, stopping);
	if (r < 0)
		return r;
	return stopping && status == 0 ? 0 : -ECHILD;
}
