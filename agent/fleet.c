/* SPDX-License-Identifier: MIT */
/* mynaguardd's worker side of the fleet channel (docs/fleet.md, "Checks on the terminal" and
 * "Exceptions"): reads SPOOL/inbox/bundle through the monitor, checks it whole (signatures,
 * terminal, coverage, versions, the exceptions JSON and its limits), asks the monitor to install
 * it, reloads the policy, and keeps the exceptions: matched by the USB gate, ended by a timer at
 * the nearest `until` (trusted clock) and when a newer bundle no longer carries them. */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-login.h>
#endif

#include "bundle.h"
#include "escape.h"
#include "fleet.h"
#include "log.h"
#include "macro.h"
#include "priv.h"
#include "spool.h"
#include "usb_gate.h"

struct agent_fleet {
	bool have_key;
	uint8_t root_pub[BUNDLE_PUBKEY_LEN];
	int ino;      /* inotify on SPOOL/inbox (taken as root before the split), -1 = none */
	int timer_fd; /* CLOCK_REALTIME, absolute, cancelled when the clock is set */
	/* The installed bundle (STATE/bundle/current) */
	bool applied;
	char group[72];
	uint64_t version, base_version;
	char policy_sha256[65];
	uint8_t current_sha[32];
	struct bundle_exceptions ex;
	/* The last inbox content looked at (refused or applied): not refused twice. */
	bool have_seen;
	uint8_t seen_sha[32];
	int64_t armed_at; /* trusted time when the timer was last armed */
#ifdef HAVE_SYSTEMD
	sd_login_monitor *login; /* seat changes: exceptions with a users list are decided again */
#endif
};

static void sha256(const uint8_t *buf, size_t len, uint8_t out[32])
{
	unsigned n = 0;

	if (!EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) || n != 32)
		memset(out, 0, 32);
}

static void hex(const uint8_t *buf, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[buf[i] >> 4];
		out[2 * i + 1] = digits[buf[i] & 15];
	}
	out[2 * len] = 0;
}

/* ---- checking a bundle ---- */

struct checked {
	struct bundle_frame f;
	struct policy *base;
	struct bundle_exceptions ex;
	char policy_sha256[65];
};

static void checked_clear(struct checked *c)
{
	policy_free(c->base);
	bundle_exceptions_free(&c->ex);
	memset(c, 0, sizeof(*c));
}

/* Everything the worker checks (docs/fleet.md, step 1). applied_version/applied_base: 0 for
 * the installed bundle re-read at start. */
static int check_bundle(struct agent *a, const uint8_t *buf, size_t len, uint64_t applied_version,
			uint64_t applied_base, struct checked *c, char *err, size_t errsz)
{
	struct agent_fleet *fl = a->fleet;
	_cleanup_free_ char *text = NULL;
	uint8_t digest[32];
	size_t tlen;
	int r;

	memset(c, 0, sizeof(*c));
	err[0] = 0;
	if (!fl->have_key) {
		snprintf(err, errsz, "no fleet root key is pinned (--fleet-key)");
		return -ENOKEY;
	}
	r = bundle_decode(buf, len, &c->f, err, errsz);
	if (r < 0)
		return r;
	r = bundle_check_install(&c->f, fl->root_pub, agent_policy(a)->terminal_id, applied_version,
				 applied_base, &c->base, err, errsz);
	if (r < 0)
		return r;
	r = bundle_exceptions_parse(c->f.json, c->f.json_len, &c->ex, err, errsz);
	if (r >= 0)
		r = bundle_check_limits(c->base, &c->ex, err, errsz);
	if (r >= 0)
		r = policy_install_text((const char *)c->f.base, c->f.base_len,
					agent_policy(a)->terminal_id, &text, &tlen);
	if (r < 0) {
		if (!err[0])
			snprintf(err, errsz, "%s", strerror(-r));
		checked_clear(c);
		return r;
	}
	sha256((const uint8_t *)text, tlen, digest);
	hex(digest, sizeof(digest), c->policy_sha256);
	return 0;
}

/* The checked bundle becomes the state; its exceptions are taken over. */
static void take_state(struct agent_fleet *fl, struct checked *c, const uint8_t sha[32])
{
	bundle_exceptions_free(&fl->ex);
	fl->ex = c->ex;
	memset(&c->ex, 0, sizeof(c->ex));
	fl->applied = true;
	snprintf(fl->group, sizeof(fl->group), "%s",
		 c->base->fleet_group ? c->base->fleet_group : "");
	fl->version = c->f.version;
	fl->base_version = c->base->fleet_version;
	memcpy(fl->policy_sha256, c->policy_sha256, sizeof(fl->policy_sha256));
	memcpy(fl->current_sha, sha, 32);
}

/* ---- the expiry timer ---- */

static void arm_timer(struct agent *a)
{
	struct agent_fleet *fl = a->fleet;
	struct itimerspec its = {0};
	int64_t now = tclock_now(a), next = INT64_MAX;
	struct timespec wall;

	if (fl->timer_fd < 0)
		return;
	fl->armed_at = now;
	for (size_t i = 0; i < fl->ex.n; i++) {
		/* The nearest end of an exception in force, or the start of one to come (a
		 * device plugged in early is then authorized when it begins: re-plugging is
		 * not needed). */
		int64_t t =
		    fl->ex.items[i].from > now ? fl->ex.items[i].from : fl->ex.items[i].until;
		if (t > now && t < next)
			next = t;
	}
	if (next != INT64_MAX && clock_gettime(CLOCK_REALTIME, &wall) == 0) {
		/* The trusted clock may be ahead of the wall clock: it runs at the same rate. */
		its.it_value.tv_sec = wall.tv_sec + (time_t)(next - now);
		its.it_value.tv_nsec = 0;
		if (its.it_value.tv_sec <= 0)
			its.it_value.tv_sec = 1;
	}
	if (timerfd_settime(fl->timer_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) <
	    0)
		log_line(LOG_ERR, "fleet.error op=arm-timer error=\"%m\"");
}

static void on_timer(struct agent *a, int fd, uint32_t events, void *userdata)
{
	struct agent_fleet *fl = a->fleet;
	int64_t now = tclock_now(a);
	bool began = false;
	uint64_t n;

	/* ECANCELED: the wall clock was set; the trusted clock decides again. */
	(void)!read(fd, &n, sizeof(n));
	tclock_persist(a, true);
	usb_gate_recheck_exceptions(a);
	/* An exception that began since: devices plugged before it are decided again. */
	for (size_t i = 0; i < fl->ex.n; i++)
		began = began || (fl->ex.items[i].from > fl->armed_at &&
				  fl->ex.items[i].from <= now && now < fl->ex.items[i].until);
	if (began) {
		log_line(LOG_INFO, "fleet.exception-began: deciding every device again");
		usb_gate_rescan(a);
	}
	arm_timer(a);
}

/* ---- central TOTP secrets (docs/fleet.md, "Central TOTP enrollment") ---- */

/* The installed bundle's "totp" entries go to the monitor, which opens and installs what is
 * new; then it removes the central records the bundle no longer carries (revoked, or the
 * terminal left the enrollment's groups). The secrets never pass through the worker in clear. */
static void sync_totp(struct agent *a)
{
	struct agent_fleet *fl = a->fleet;
	char removed[PRIV_PENDING_CHUNK];
	size_t len = 0;
	int r;

	for (size_t i = 0; i < fl->ex.n_totp; i++) {
		const struct bundle_totp *t = &fl->ex.totp[i];
		r = priv_totp_install(t->user, t->gen, t->sealed, t->sealed_len);
		if (r == 0)
			continue;
		if (r < 0)
			log_line(LOG_ERR,
				 "fleet.totp user=%s gen=%" PRIu64 " error=\"%s\" (not installed)",
				 t->user, t->gen, strerror(-r));
		else
			log_line(LOG_INFO, "fleet.totp user=%s gen=%" PRIu64 " installed", t->user,
				 t->gen);
		(void)agent_emit(a, EVENT_TOTP_INSTALLED, json_pack("[s]", "2-3-2"),
				 json_pack("{s:s, s:s, s:I, s:s?}", "action",
					   r < 0 ? "refused" : "installed", "user", t->user, "gen",
					   (json_int_t)t->gen, "error",
					   r < 0 ? strerror(-r) : NULL));
	}
	for (size_t i = 0; i < fl->ex.n_recovery; i++) {
		const struct bundle_totp *t = &fl->ex.recovery[i];
		r = priv_totp_recovery(t->user, t->gen, t->sealed, t->sealed_len);
		if (r == 0)
			continue;
		if (r < 0)
			log_line(LOG_ERR,
				 "fleet.totp user=%s recovery=%" PRIu64
				 " error=\"%s\" (not installed)",
				 t->user, t->gen, strerror(-r));
		(void)agent_emit(a, EVENT_TOTP_INSTALLED, json_pack("[s]", "2-3-2"),
				 json_pack("{s:s, s:s, s:I, s:s?}", "action",
					   r < 0 ? "recovery_refused" : "recovery_installed",
					   "user", t->user, "rid", (json_int_t)t->gen, "error",
					   r < 0 ? strerror(-r) : NULL));
	}
	r = priv_totp_prune(removed, sizeof(removed), &len);
	if (r < 0) {
		log_line(LOG_ERR, "fleet.totp op=prune error=\"%s\"", strerror(-r));
		return;
	}
	for (size_t off = 0; off < len;) {
		const char *user = removed + off;
		size_t k = strnlen(user, len - off);
		if (k == len - off)
			break;
		log_line(LOG_INFO, "fleet.totp user=%s removed (no longer in the bundle)", user);
		(void)agent_emit(a, EVENT_TOTP_INSTALLED, json_pack("[s]", "2-3-2"),
				 json_pack("{s:s, s:s}", "action", "removed", "user", user));
		off += k + 1;
	}
}

/* ---- the inbox ---- */

static void refuse(struct agent *a, const char *why, const struct bundle_frame *f)
{
	/* The reason may quote the bundle's own bytes (a terminal id): escaped, valid UTF-8. */
	char reason[ESCAPE_SIZE(BUNDLE_ERR_MAX + 64)];
	json_t *data;

	escape_text(why, strlen(why), BUNDLE_ERR_MAX + 64, 0, reason, sizeof(reason));
	data = json_pack("{s:s}", "reason", reason);
	log_line(LOG_WARNING, "bundle.refused reason=\"%s\", keeping the current policy", reason);
	if (data && f && f->base)
		json_object_set_new(data, "version", json_integer((json_int_t)f->version));
	(void)agent_emit(a, EVENT_BUNDLE_REFUSED, json_pack("[s]", "2-3-2"), data);
}

static void process_inbox(struct agent *a)
{
	struct agent_fleet *fl = a->fleet;
	_cleanup_free_ uint8_t *buf = NULL;
	struct checked c;
	char err[BUNDLE_ERR_MAX + 64];
	uint8_t sha[32];
	size_t len;
	int r;

	r = priv_bundle_read(PRIV_BUNDLE_INBOX, &buf, &len);
	if (r == -ENOENT)
		return; /* nothing fetched yet, or the uplink is between its write and rename */
	if (r < 0) {
		char reason[128];
		snprintf(reason, sizeof(reason), "the inbox could not be read: %s", strerror(-r));
		refuse(a, reason, NULL);
		return;
	}
	sha256(buf, len, sha);
	if ((fl->have_seen && memcmp(sha, fl->seen_sha, 32) == 0) ||
	    (fl->applied && memcmp(sha, fl->current_sha, 32) == 0))
		return; /* looked at already */
	fl->have_seen = true;
	memcpy(fl->seen_sha, sha, 32);

	r = check_bundle(a, buf, len, fl->applied ? fl->version : 0,
			 fl->applied ? fl->base_version : 0, &c, err, sizeof(err));
	if (r < 0) {
		refuse(a, err, NULL);
		return;
	}
	r = priv_bundle_install(c.f.version, sha);
	if (r < 0) {
		snprintf(err, sizeof(err), "the monitor refused to install it: %s", strerror(-r));
		refuse(a, err, &c.f);
		checked_clear(&c);
		return;
	}
	take_state(fl, &c, sha);
	checked_clear(&c);
	log_line(LOG_INFO,
		 "bundle.applied group=%s base_version=%" PRIu64 " version=%" PRIu64
		 " exceptions=%zu policy_sha256=%s",
		 fl->group, fl->base_version, fl->version, fl->ex.n, fl->policy_sha256);
	(void)agent_emit(a, EVENT_BUNDLE_APPLIED, json_pack("[s]", "2-3-2"),
			 json_pack("{s:s, s:I, s:I, s:s, s:I}", "group", fl->group, "base_version",
				   (json_int_t)fl->base_version, "version", (json_int_t)fl->version,
				   "policy_sha256", fl->policy_sha256, "exceptions",
				   (json_int_t)fl->ex.n));
	sync_totp(a);
	/* Exceptions the new bundle dropped end now; then the new policy, as on SIGHUP. */
	tclock_persist(a, true);
	usb_gate_recheck_exceptions(a);
	agent_reload_policy(a);
	arm_timer(a);
	agent_checks_run_now(a); /* data.bundle at once, not at the next interval */
}

#ifdef HAVE_SYSTEMD
/* The active session on a seat changed: interfaces opened for a listed user close, and every
 * device is decided again (a listed user may have logged in). Only when some exception has a
 * users list. */
static void on_login(struct agent *a, int fd, uint32_t events, void *userdata)
{
	struct agent_fleet *fl = a->fleet;
	bool users = false;

	(void)sd_login_monitor_flush(fl->login);
	for (size_t i = 0; i < fl->ex.n; i++)
		users = users || fl->ex.items[i].n_users > 0;
	if (!users)
		return;
	log_line(LOG_INFO, "fleet.session-change: deciding the exceptions with a users list again");
	usb_gate_recheck_exceptions(a);
	usb_gate_rescan(a);
}
#endif

static void on_inbox(struct agent *a, int fd, uint32_t events, void *userdata)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool ours = false;
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->len && strcmp(ev->name, SPOOL_INBOX_BUNDLE) == 0)
				ours = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (ours)
		process_inbox(a);
}

int agent_fleet_watch_inbox(struct agent *a)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;

	if (asprintf(&path, "%s/%s", a->paths.spool, SPOOL_INBOX_DIR) < 0)
		return -ENOMEM;
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0 || inotify_add_watch(
			  fd, path, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW) < 0)
		return -errno;
	a->inbox_ino = TAKE_FD(fd);
	return 0;
}

/* The installed bundle: checked again (signatures, terminal, limits; not the versions, which
 * are its own), its exceptions loaded. */
static void load_current(struct agent *a)
{
	struct agent_fleet *fl = a->fleet;
	_cleanup_free_ uint8_t *buf = NULL;
	struct checked c;
	char err[BUNDLE_ERR_MAX + 64];
	uint8_t sha[32];
	size_t len;
	int r = priv_bundle_read(PRIV_BUNDLE_CURRENT, &buf, &len);

	if (r == -ENOENT)
		return;
	if (r >= 0) {
		sha256(buf, len, sha);
		r = check_bundle(a, buf, len, 0, 0, &c, err, sizeof(err));
	} else {
		snprintf(err, sizeof(err), "%s", strerror(-r));
	}
	if (r < 0) {
		char esc[ESCAPE_SIZE(BUNDLE_ERR_MAX + 64)];

		log_line(LOG_ERR,
			 "fleet.error op=load-current error=\"%s\" (no exception is in force)",
			 escape_text(err, strlen(err), BUNDLE_ERR_MAX + 64, 0, esc, sizeof(esc)));
		return;
	}
	take_state(fl, &c, sha);
	checked_clear(&c);
	log_line(LOG_INFO,
		 "fleet.current group=%s base_version=%" PRIu64 " version=%" PRIu64
		 " exceptions=%zu",
		 fl->group, fl->base_version, fl->version, fl->ex.n);
}

int agent_fleet_init(struct agent *a)
{
	struct agent_fleet *fl = calloc(1, sizeof(*fl));
	int r;

	if (!fl)
		return -ENOMEM;
	fl->ino = -1;
	fl->timer_fd = -1;
	fl->have_key = a->have_fleet_key;
	memcpy(fl->root_pub, a->fleet_key, sizeof(fl->root_pub));
	a->fleet = fl;
	load_current(a);

	fl->timer_fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fl->timer_fd < 0)
		return negative_errno();
	r = agent_watch_fd(a, fl->timer_fd, on_timer, NULL);
	if (r < 0)
		return r;
	arm_timer(a);

#ifdef HAVE_SYSTEMD
	r = sd_login_monitor_new("seat", &fl->login);
	if (r >= 0)
		r = agent_watch_fd(a, sd_login_monitor_get_fd(fl->login), on_login, NULL);
	if (r < 0)
		log_line(LOG_WARNING,
			 "fleet.warning op=login-monitor error=\"%s\" (a session change is seen at "
			 "the next USB decision only)",
			 strerror(-r));
#endif
	if (a->inbox_ino >= 0) {
		fl->ino = a->inbox_ino;
		a->inbox_ino = -1;
		r = agent_watch_fd(a, fl->ino, on_inbox, NULL);
		if (r < 0)
			return r;
	} else {
		log_line(LOG_WARNING,
			 "fleet.warning op=watch-inbox error=\"no watch on %s/%s\" "
			 "(bundles are taken at the next start)",
			 a->paths.spool, SPOOL_INBOX_DIR);
	}
	return 0;
}

/* After the USB gate started: what arrived while the agent was down. */
void agent_fleet_start(struct agent *a)
{
	if (!a->fleet)
		return;
	if (a->fleet->applied)
		sync_totp(a); /* what the installed bundle carries (a crash, a restored state) */
	process_inbox(a);
}

void agent_fleet_done(struct agent *a)
{
	struct agent_fleet *fl = a->fleet;

	if (!fl)
		return;
	if (fl->ino >= 0) {
		(void)agent_unwatch_fd(a, fl->ino);
		close(fl->ino);
	}
	if (fl->timer_fd >= 0) {
		(void)agent_unwatch_fd(a, fl->timer_fd);
		close(fl->timer_fd);
	}
#ifdef HAVE_SYSTEMD
	if (fl->login) {
		(void)agent_unwatch_fd(a, sd_login_monitor_get_fd(fl->login));
		sd_login_monitor_unref(fl->login);
	}
#endif
	bundle_exceptions_free(&fl->ex);
	free(fl);
	a->fleet = NULL;
}

/* ---- what the gate and the checks ask ---- */

static const struct bundle_exception *find(struct agent_fleet *fl, const char *id)
{
	for (size_t i = 0; fl && i < fl->ex.n; i++)
		if (strcmp(fl->ex.items[i].id, id) == 0)
			return &fl->ex.items[i];
	return NULL;
}

/* The user of the active session on seat0 (the local desktop), by name. -errno when there is
 * none or it cannot be told (then an exception with a users list opens nothing). */
static int seat_user(char *buf, size_t size)
{
#ifdef HAVE_SYSTEMD
	struct passwd pw, *res = NULL;
	char *session = NULL, pwbuf[4096];
	uid_t uid;
	int r = sd_seat_get_active("seat0", &session, &uid);

	free(session);
	if (r < 0)
		return r;
	r = getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res);
	if (r != 0 || !res)
		return r ? -r : -ENOENT;
	if (snprintf(buf, size, "%s", pw.pw_name) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
#else
	(void)buf;
	(void)size;
	return -EOPNOTSUPP; /* built without libsystemd: sessions cannot be told */
#endif
}

/* Whether e's users list lets the active local user use the device (an empty list: everyone).
 * Fails closed when that user cannot be told. */
static bool user_allowed(const struct bundle_exception *e, char *why, size_t why_size)
{
	char user[256];
	int r;

	if (e->n_users == 0)
		return true;
	r = seat_user(user, sizeof(user));
	if (r < 0) {
		snprintf(why, why_size, "no active local session user (%s)", strerror(-r));
		return false;
	}
	for (size_t i = 0; i < e->n_users; i++)
		if (strcmp(e->users[i], user) == 0)
			return true;
	snprintf(why, why_size, "the active local session user is not listed");
	return false;
}

const struct bundle_exception *agent_fleet_exception_for(struct agent *a,
							 const struct policy_usb_device *dev,
							 const struct policy_usb_class *block,
							 char *rule, size_t rule_size)
{
	struct agent_fleet *fl = a->fleet;
	int64_t now;

	if (!fl || fl->ex.n == 0 || !block || !agent_policy(a)->fleet)
		return NULL;
	now = tclock_now(a);
	for (size_t i = 0; i < fl->ex.n; i++) {
		const struct bundle_exception *e = &fl->ex.items[i];
		struct tm tm;
		time_t until = (time_t)e->until;
		char day[16] = "?";

		char why[96];

		/* The installed policy's [fleet] grant_classes must open this block entry too. */
		if (!bundle_exception_opens(agent_policy(a), e, block) ||
		    !bundle_exception_matches(e, dev, now))
			continue;
		if (!user_allowed(e, why, sizeof(why))) {
			log_line(LOG_NOTICE, "fleet.exception id=%s not applied: %s", e->id, why);
			continue;
		}
		if (gmtime_r(&until, &tm))
			strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		snprintf(rule, rule_size, "exception %s: until %s", e->id, day);
		tclock_persist(a, true);
		return e;
	}
	return NULL;
}

int agent_fleet_exception_state(struct agent *a, const char *id,
				const struct policy_usb_device *dev)
{
	const struct bundle_exception *e = find(a->fleet, id);
	char why[96];

	if (!e)
		return -1;
	if (!bundle_exception_matches(e, dev, tclock_now(a)))
		return 0;
	return user_allowed(e, why, sizeof(why)) ? 1 : -2;
}

json_t *agent_fleet_exception_json(struct agent *a, const char *id)
{
	const struct bundle_exception *e = find(a->fleet, id);
	json_t *o, *users;

	if (!e)
		return json_null();
	users = json_array();
	for (size_t i = 0; i < e->n_users; i++)
		json_array_append_new(users, json_string(e->users[i]));
	o = json_pack("{s:s, s:s, s:I, s:I, s:o, s:b}", "id", e->id, "class", e->cls, "from",
		      (json_int_t)e->from, "until", (json_int_t)e->until, "users", users,
		      /* the active seat0 session's user (sd-login); fail closed */
		      "users_enforced", 1);
	if (o && e->approved_by)
		json_object_set_new(o, "approved_by", json_string(e->approved_by));
	if (o && e->ledger)
		json_object_set_new(o, "ledger", json_string(e->ledger));
	return o ? o : json_null();
}

json_t *agent_fleet_bundle_json(struct agent *a)
{
	struct agent_fleet *fl = a->fleet;

	if (!fl || !fl->applied)
		return NULL;
	return json_pack("{s:s, s:I, s:I, s:s}", "group", fl->group, "base_version",
			 (json_int_t)fl->base_version, "version", (json_int_t)fl->version,
			 "policy_sha256", fl->policy_sha256);
}
