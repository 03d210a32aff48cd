/* SPDX-License-Identifier: MIT */
/* mynaguardd's monitor (root): serves the worker's fixed request set (docs/ARCHITECTURE.md). It
 * parses no text: names are checked against a fixed grammar, payloads are opaque bytes. */
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
