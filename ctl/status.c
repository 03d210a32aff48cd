/* SPDX-License-Identifier: MIT */
/* mynaguardctl status: what this terminal enforces right now (policy, agent, compliance checks,
 * USB, MFA, uplink), read-only, without needing the agent; exit 1 with the reasons when not OK. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libudev.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "compliance.h"
#include "config.h"
#include "ctl.h"
#include "escape.h"
#include "event.h"
#include "fileio.h"
#include "macro.h"
#include "policy.h"
#include "spool.h"
#include "spool_scan.h"
#include "usb_dev.h"

/* A snapshot older than this many intervals (plus a minute) while the agent runs is stale;
 * an unacknowledged event older than this many intervals (at least an hour) is a stuck uplink. */
#define STATUS_STALE_INTERVALS	 2
#define STATUS_BACKLOG_MIN_AGE_S 3600

struct status_args {
	const char *state;
	const char *spool;
	const char *socket;
	const char *store; /* NULL: STATE/totp */
	const char *sysfs_root;
	const char *passwd;
	bool json;
};

static void usage(FILE *f)
{
	fputs(
	    "Usage: mynaguardctl [--policy FILE] status [--state DIR] [--spool DIR] [--socket PATH]\n"
	    "                    [--store DIR] [--sysfs-root DIR] [--passwd FILE] [--json]\n",
	    f);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *ts_json(int64_t ms)
{
	char buf[32];

	event_format_ts(ms, buf);
	return json_string(buf);
}

/* Safe for a terminal (strings from files and devices): escape_text() (base/escape.h), so
 * control bytes and invalid UTF-8 become \xHH, '"' and '\\' are escaped, valid UTF-8 stays. */
static json_t *json_escaped(const char *s)
{
	char buf[2048];

	return json_string(escape_text(s, strlen(s), sizeof(buf), 0, buf, sizeof(buf)));
}

/* Text that is valid UTF-8 as it is (a JSON string), else escaped. */
static json_t *json_text(const char *s)
{
	json_t *j = json_string(s);

	return j ? j : json_escaped(s);
}

static void problem(json_t *problems, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(json_t *problems, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(problems, json_text(buf));
}

/* ---- policy ---- */

static json_t *status_policy(const char *path, struct policy **ret, json_t *problems)
{
	_cleanup_free_ char *text = NULL;
	struct policy_errors errs = {0};
	struct policy *p = NULL;
	json_t *j = json_object(), *errors = json_array();
	char buf[600];
	size_t len = 0;
	int r;

	json_object_set_new(j, "path", json_text(path));
	r = fileio_read_file(AT_FDCWD, path, POLICY_MAX_FILE_SIZE, &text, &len);
	if (r < 0) {
		snprintf(buf, sizeof(buf), "%s: cannot read: %s", path, strerror(-r));
		json_array_append_new(errors, json_text(buf));
	} else {
		char hex[65], h[7 + 65];

		if (compliance_sha256_file(path, hex) == 0) {
			snprintf(h, sizeof(h), "sha256:%s", hex);
			json_object_set_new(j, "hash", json_string(h));
		}
		r = policy_parse_string(path, text, len, &p, &errs);
		if (r < 0) {
			for (size_t i = 0; i < errs.n; i++) {
				policy_error_format(&errs, i, buf, sizeof(buf));
				json_array_append_new(errors, json_text(buf));
			}
			if (errs.n == 0) {
				snprintf(buf, sizeof(buf), "%s: %s", path, strerror(-r));
				json_array_append_new(errors, json_text(buf));
			}
		}
		policy_errors_clear(&errs);
	}
	json_object_set_new(j, "valid", json_boolean(p != NULL));
	json_object_set_new(j, "errors", errors);
	if (p) {
		json_object_set_new(j, "terminal", json_string(p->terminal_id));
		json_object_set_new(
		    j, "usb_mode",
		    json_string(p->usb_mode == POLICY_USB_AUDIT ? "audit" : "enforce"));
	} else {
		problem(problems, "the policy %s is not valid (%zu error%s)", path,
			json_array_size(errors), json_array_size(errors) == 1 ? "" : "s");
		/* go on with the defaults so the rest can still be shown */
		if (policy_new_default(&p) < 0)
			p = NULL;
	}
	*ret = p;
	return j;
}

/* ---- spool (event/spool_scan.c reads it) ---- */

/* Decode a stored payload; false when it is not a valid event. */
static bool decode(const char *payload, struct event *ret)
{
	char reason[EVENT_REASON_MAX];

	return payload && event_decode(payload, strlen(payload), ret, reason) == 0;
}

/* ---- agent ---- */

/* A datagram socket answers connect() only when someone has it bound: ECONNREFUSED is a socket
 * file left behind by an agent that is gone. Nothing is sent. */
static json_t *status_agent(const struct status_args *a, const struct policy *p,
			    const char *policy_hash, const struct spool_scan *s, int spool_err,
			    json_t *problems)
{
	json_t *j = json_object();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *state, *detail = NULL;
	char dbuf[256];
	struct stat st;
	struct event ev = {0};

	json_object_set_new(j, "socket", json_text(a->socket));
	if (lstat(a->socket, &st) < 0) {
		state = "not running";
		snprintf(dbuf, sizeof(dbuf), "no event socket %s", a->socket);
		detail = dbuf;
	} else if (!S_ISSOCK(st.st_mode)) {
		state = "not running";
		snprintf(dbuf, sizeof(dbuf), "%s is not a socket", a->socket);
		detail = dbuf;
	} else if (strlen(a->socket) >= sizeof(sa.sun_path)) {
		state = "unknown";
		detail = "socket path too long to test";
	} else {
		_cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		strcpy(sa.sun_path, a->socket);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			state = "running";
		} else if (fd >= 0 && errno == ECONNREFUSED) {
			state = "not running";
			snprintf(dbuf, sizeof(dbuf), "nobody listens on %s (left behind)",
				 a->socket);
			detail = dbuf;
		} else {
			state = "unknown";
			snprintf(dbuf, sizeof(dbuf), "cannot test %s: %s", a->socket,
				 strerror(errno));
			detail = dbuf;
		}
	}
	json_object_set_new(j, "state", json_string(state));
	json_object_set_new(j, "running",
			    strcmp(state, "running") == 0   ? json_true()
			    : strcmp(state, "unknown") == 0 ? json_null()
							    : json_false());
	if (detail)
		json_object_set_new(j, "detail", json_text(detail));
	if (strcmp(state, "not running") == 0)
		problem(problems, "the agent mynaguardd is not running: %s", detail);
	if (spool_err < 0)
		return j;

	if (decode(s->last, &ev)) {
		json_object_set_new(j, "last_event",
				    json_pack("{s:I,s:o,s:s}", "seq", (json_int_t)ev.seq, "ts",
					      ts_json(ev.ts_ms), "kind", event_kind_name(ev.kind)));
		event_clear(&ev);
	}
	if (decode(s->last_compliance, &ev)) {
		json_t *snap = json_object(), *checks = json_array(), *c;
		int64_t age = (now_ms() - ev.ts_ms) / 1000;
		json_t *arr = json_object_get(ev.data, "checks");
		json_t *compliant = json_object_get(ev.data, "compliant");
		size_t i;

		json_object_set_new(snap, "seq", json_integer((json_int_t)ev.seq));
		json_object_set_new(snap, "ts", ts_json(ev.ts_ms));
		json_object_set_new(snap, "age_s", json_integer(age));
		json_object_set_new(snap, "compliant", json_boolean(json_is_true(compliant)));
		if (json_is_string(json_object_get(ev.data, "policy_hash"))) {
			const char *h = json_string_value(json_object_get(ev.data, "policy_hash"));
			json_object_set_new(snap, "policy_hash", json_escaped(h));
			if (policy_hash)
				json_object_set_new(snap, "same_policy",
						    json_boolean(strcmp(h, policy_hash) == 0));
		}
		json_array_foreach(arr, i, c)
		{
			const char *id = json_string_value(json_object_get(c, "id"));
			const char *stt = json_string_value(json_object_get(c, "status"));
			const char *det = json_string_value(json_object_get(c, "detail"));
			json_array_append_new(
			    checks, json_pack("{s:o,s:o,s:o}", "id", json_escaped(id ? id : "?"),
					      "status", json_escaped(stt ? stt : "?"), "detail",
					      json_escaped(det ? det : "")));
		}
		json_object_set_new(snap, "checks", checks);
		json_object_set_new(j, "last_compliance", snap);
		if (strcmp(state, "running") == 0 &&
		    age > (int64_t)(STATUS_STALE_INTERVALS * p->report_interval_sec + 60))
			problem(
			    problems,
			    "the agent's last compliance snapshot is %lld minutes old (one is due every %llu minutes)",
			    (long long)(age / 60),
			    (unsigned long long)(p->report_interval_sec / 60));
		event_clear(&ev);
	} else {
		json_object_set_new(j, "last_compliance", json_null());
	}
	return j;
}

/* ---- the checks, run now with the agent's own code ---- */

/* The checks' view of this terminal: production paths with the command line's overrides. */
static int status_env(const struct ctl_opts *o, const struct status_args *a, const struct policy *p,
		      struct compliance_env *env, char *buf, size_t size)
{
	int r = compliance_env_default(env, p, o->policy_path, a->state, buf, size);

	if (r < 0)
		return r;
	if (a->sysfs_root)
		env->sysfs_root = a->sysfs_root;
	if (a->store)
		env->totp_dir = a->store;
	env->passwd_path = a->passwd;
	env->owner_uid = geteuid(); /* root in production */
	return 0;
}

static json_t *status_checks_run(const struct ctl_opts *o, const struct status_args *a,
				 const struct policy *p, json_t *problems)
{
	struct compliance_result res[_POLICY_CHECK_MAX];
	struct compliance_env env;
	char buf[2 * PATH_MAX];
	json_t *j = json_array();

	if (status_env(o, a, p, &env, buf, sizeof(buf)) < 0)
		return j;
	compliance_run_all(&env, res);
	for (int i = 0; i < _POLICY_CHECK_MAX; i++) {
		json_array_append_new(j, json_pack("{s:s,s:s,s:o}", "id",
						   policy_check_id(res[i].check), "status",
						   compliance_status_name(res[i].status), "detail",
						   json_text(res[i].detail)));
		if (res[i].status == COMPLIANCE_FAIL || res[i].status == COMPLIANCE_ERROR)
			problem(problems, "%s: %s", policy_check_id(res[i].check), res[i].detail);
	}
	return j;
}

/* ---- USB ---- */

struct usb_count_ctx {
	const struct policy *p;
	const struct usb_dev_info *info;
	unsigned long *n_blocked;
	unsigned long *n_blocked_authorized;
};

static void usb_count_iface(const struct usb_iface_info *ifc, void *userdata)
{
	struct usb_count_ctx *ci = userdata;
	struct policy_usb_decision dec;

	usb_dev_decide_iface(ci->p, ci->info, ifc, &dec);
	if (dec.verdict == POLICY_USB_BLOCK) {
		(*ci->n_blocked)++;
		if (ifc->authorized != 0)
			(*ci->n_blocked_authorized)++;
	}
}

static void usb_count_device(const struct policy *p, struct udev *udev, struct udev_device *dev,
			     const char *root, json_t *hubs, unsigned long *n_devices,
			     unsigned long *n_blocked, unsigned long *n_blocked_authorized)
{
	struct usb_dev_info info;
	struct usb_count_ctx ci = {.p = p,
				   .info = &info,
				   .n_blocked = n_blocked,
				   .n_blocked_authorized = n_blocked_authorized};
	size_t n_ifaces;

	if (usb_dev_read(dev, root, &info) < 0)
		return;
	if (info.root_hub) {
		char path[600], v[32];
		ssize_t n = -ENAMETOOLONG;

		if (usb_dev_path(root, info.syspath, path, sizeof(path)) >= 0)
			n = usb_dev_read_attr(path, "interface_authorized_default", v, sizeof(v));
		json_array_append_new(hubs, json_pack("{s:o,s:o}", "name", json_escaped(info.port),
						      "interface_authorized_default",
						      n >= 0 ? json_escaped(v) : json_null()));
		usb_dev_info_clear(&info);
		return;
	}
	(*n_devices)++;
	n_ifaces = usb_dev_foreach_iface(udev, dev, root, usb_count_iface, &ci);
	if (n_ifaces == 0) {
		/* left unauthorized as a whole: what its descriptors announce */
		struct policy_usb_decision *dec = calloc(USB_DESC_MAX_IFACES, sizeof(*dec));
		size_t n = 0;
		int blocking = -1;

		if (dec) {
			usb_dev_decide_descriptors(p, &info, dec, &n, &blocking);
			for (size_t k = 0; k < n; k++)
				if (dec[k].verdict == POLICY_USB_BLOCK) {
					(*n_blocked)++;
					if (info.authorized != 0)
						(*n_blocked_authorized)++;
				}
			free(dec);
		}
	}
	usb_dev_info_clear(&info);
}

static json_t *status_usb(const struct status_args *a, const struct policy *p)
{
	json_t *j = json_object(), *hubs = json_array();
	unsigned long n_devices = 0, n_blocked = 0, n_blocked_authorized = 0;
	const char *root = a->sysfs_root ? a->sysfs_root : "/";
	struct udev *udev = udev_new();
	struct udev_enumerate *en = udev ? udev_enumerate_new(udev) : NULL;
	struct udev_list_entry *le;

	json_object_set_new(j, "mode",
			    json_string(p->usb_mode == POLICY_USB_AUDIT ? "audit" : "enforce"));
	if (!en || udev_enumerate_add_match_subsystem(en, "usb") < 0 ||
	    udev_enumerate_add_match_property(en, "DEVTYPE", "usb_device") < 0 ||
	    udev_enumerate_scan_devices(en) < 0) {
		json_object_set_new(j, "error", json_string("cannot enumerate USB devices"));
	} else {
		udev_list_entry_foreach(le, udev_enumerate_get_list_entry(en))
		{
			struct udev_device *d =
			    udev_device_new_from_syspath(udev, udev_list_entry_get_name(le));
			if (!d)
				continue;
			usb_count_device(p, udev, d, root, hubs, &n_devices, &n_blocked,
					 &n_blocked_authorized);
			udev_device_unref(d);
		}
	}
	udev_enumerate_unref(en);
	udev_unref(udev);
	json_object_set_new(j, "root_hubs", hubs);
	json_object_set_new(j, "devices", json_integer((json_int_t)n_devices));
	json_object_set_new(j, "blocked_interfaces", json_integer((json_int_t)n_blocked));
	json_object_set_new(j, "blocked_authorized",
			    json_integer((json_int_t)n_blocked_authorized));
	return j;
}

/* ---- MFA ---- */

struct mfa_lists {
	json_t *missing, *pending, *bad;
};

static void mfa_user(void *userdata, const char *user, enum compliance_record_state st,
		     const char *why)
{
	struct mfa_lists *l = userdata;
	char buf[512];

	switch (st) {
	case COMPLIANCE_RECORD_OK:
		break;
	case COMPLIANCE_RECORD_MISSING:
		json_array_append_new(l->missing, json_escaped(user));
		if (why[0]) /* enrolled, not yet verified (mynaguardctl totp verify) */
			json_array_append_new(l->pending, json_escaped(user));
		break;
	case COMPLIANCE_RECORD_BAD:
		if (user)
			snprintf(buf, sizeof(buf), "%s (%s)", user, why);
		else
			snprintf(buf, sizeof(buf), "%s", why);
		json_array_append_new(l->bad, json_escaped(buf));
		break;
	}
}

/* Counted by compliance/ as mfa.enrollment counts them: only a good record is enrolled. */
static json_t *status_mfa(const struct ctl_opts *o, const struct status_args *a,
			  const struct policy *p, const char *store)
{
	json_t *j = json_object(), *svc = json_array();
	struct mfa_lists l = {
	    .missing = json_array(), .pending = json_array(), .bad = json_array()};
	struct compliance_enrollment e;
	struct compliance_env env = {0};
	char buf[2 * PATH_MAX];
	int r;

	for (size_t i = 0; i < p->n_mfa_services; i++)
		json_array_append_new(svc, json_string(p->mfa_services[i]));
	json_object_set_new(j, "services", svc);
	json_object_set_new(j, "nullok", json_boolean(p->mfa_nullok));
	json_object_set_new(j, "store", json_text(store));

	r = status_env(o, a, p, &env, buf, sizeof(buf));
	if (r >= 0) {
		env.totp_dir = store;
		r = compliance_enrollment_scan(&env, mfa_user, &l, &e);
	} else
		e = (struct compliance_enrollment){.failed = store};
	if (r < 0 && e.failed == env.passwd_path)
		json_object_set_new(j, "passwd_error", json_string(strerror(-r)));
	else if (r < 0)
		json_object_set_new(j, "store_error", json_string(strerror(-r)));
	else if (e.store_missing)
		json_object_set_new(j, "store_error", json_string(strerror(ENOENT)));
	json_object_set_new(j, "enrolled", json_integer(e.enrolled));
	json_object_set_new(j, "interactive_users", json_integer(e.interactive));
	json_object_set_new(j, "not_enrolled", l.missing);
	json_object_set_new(j, "pending", l.pending);
	json_object_set_new(j, "bad_records", l.bad);
	return j;
}

/* ---- uplink ---- */

#define STATUS_CERT_WARN_DAYS 30

/* The terminal's client certificate: serial and expiry; a problem when it has expired or expires
 * within STATUS_CERT_WARN_DAYS (the uplink renews it at 2/3 of its life: this means renewal
 * failed; see its log). */
static void status_cert(json_t *j, const struct policy *p, json_t *problems)
{
	FILE *f = p->report_cert ? fopen(p->report_cert, "re") : NULL;
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	BIGNUM *bn = x ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	struct tm tm;

	if (f)
		fclose(f);
	json_object_set_new(j, "certificate",
			    p->report_cert ? json_text(p->report_cert) : json_null());
	if (!x || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
		json_object_set_new(
		    j, "cert_error",
		    json_string(f || !p->report_cert ? "not a PEM certificate" : strerror(errno)));
	} else {
		int64_t na = (int64_t)timegm(&tm), left = na - now_ms() / 1000;
		json_object_set_new(j, "cert_not_after", ts_json(na * 1000));
		json_object_set_new(j, "cert_serial", hex ? json_string(hex) : json_null());
		json_object_set_new(j, "cert_days_left", json_integer((json_int_t)(left / 86400)));
		if (left <= 0)
			problem(problems,
				"the client certificate %s expired on %s: the collector "
				"refuses this terminal (enroll it again)",
				p->report_cert,
				json_string_value(json_object_get(j, "cert_not_after")));
		else if (left < STATUS_CERT_WARN_DAYS * 86400)
			problem(problems,
				"the client certificate %s expires on %s (renewal failed? "
				"see the uplink's log)",
				p->report_cert,
				json_string_value(json_object_get(j, "cert_not_after")));
	}
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
}

static json_t *status_uplink(const struct status_args *a, const struct policy *p,
			     const struct spool_scan *s, int spool_err, json_t *problems)
{
	json_t *j = json_object();
	struct event ev = {0};

	json_object_set_new(j, "collector",
			    p->report_collector ? json_string(p->report_collector) : json_null());
	if (!p->report_collector)
		problem(problems, "no collector URL in [report] collector: events stay on this "
				  "terminal");
	else
		status_cert(j, p, problems);
	json_object_set_new(j, "spool", json_text(a->spool));
	if (spool_err < 0) {
		json_object_set_new(j, "spool_error", json_string(strerror(-spool_err)));
		problem(problems, "the spool %s cannot be read: %s", a->spool,
			strerror(-spool_err));
		return j;
	}
	json_object_set_new(j, "acked_through", json_integer((json_int_t)s->acked));
	json_object_set_new(j, "segments", json_integer((json_int_t)s->segments));
	json_object_set_new(j, "spool_bytes", json_integer((json_int_t)s->bytes));
	json_object_set_new(j, "damaged", json_integer((json_int_t)s->damaged));
	json_object_set_new(j, "newer_format", json_integer((json_int_t)s->newer_format));
	if (s->newer_format > 0)
		problem(problems, "the spool %s: %s", a->spool, spool_strerror(-EPROTONOSUPPORT));
	json_object_set_new(j, "backlog_records", json_integer((json_int_t)s->unacked));
	json_object_set_new(j, "backlog_bytes", json_integer((json_int_t)s->unacked_bytes));
	if (decode(s->first_unacked, &ev)) {
		int64_t age = (now_ms() - ev.ts_ms) / 1000;
		uint64_t limit = STATUS_STALE_INTERVALS * p->report_interval_sec;

		if (limit < STATUS_BACKLOG_MIN_AGE_S)
			limit = STATUS_BACKLOG_MIN_AGE_S;
		json_object_set_new(j, "backlog_oldest_ts", ts_json(ev.ts_ms));
		json_object_set_new(j, "backlog_oldest_seq", json_integer((json_int_t)ev.seq));
		if (age > (int64_t)limit)
			problem(problems,
				"%llu events are waiting for the uplink, the oldest since %s",
				(unsigned long long)s->unacked,
				json_string_value(json_object_get(j, "backlog_oldest_ts")));
		event_clear(&ev);
	} else {
		json_object_set_new(j, "backlog_oldest_ts", json_null());
	}
	return j;
}

/* ---- text output ---- */

static const char *jstr(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

static long long jint(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static void print_checks(json_t *checks, const char *indent)
{
	size_t i;
	json_t *c;

	json_array_foreach(checks, i, c)
	    printf("%s%-15s %-26s %s\n", indent, jstr(c, "status", "?"), jstr(c, "id", "?"),
		   jstr(c, "detail", ""));
}

static void print_text(json_t *st)
{
	json_t *pol = json_object_get(st, "policy"), *ag = json_object_get(st, "agent"),
	       *usb = json_object_get(st, "usb"), *mfa = json_object_get(st, "mfa"),
	       *up = json_object_get(st, "uplink"), *problems = json_object_get(st, "problems");
	json_t *v, *snap;
	size_t i;

	printf("policy:  %s (%s)\n", jstr(pol, "path", "?"),
	       json_is_true(json_object_get(pol, "valid")) ? "valid" : "NOT VALID");
	json_array_foreach(json_object_get(pol, "errors"), i, v)
	    printf("         %s\n", json_string_value(v));
	if (json_is_true(json_object_get(pol, "valid")))
		printf("         terminal %s, usb mode %s\n", jstr(pol, "terminal", "?"),
		       jstr(pol, "usb_mode", "?"));
	if (json_object_get(pol, "hash"))
		printf("         hash %s\n", jstr(pol, "hash", "?"));

	if (json_object_get(ag, "detail"))
		printf("agent:   %s: %s\n", jstr(ag, "state", "?"), jstr(ag, "detail", ""));
	else
		printf("agent:   %s, event socket %s\n", jstr(ag, "state", "?"),
		       jstr(ag, "socket", "?"));
	v = json_object_get(ag, "last_event");
	if (v)
		printf("         last event %s seq %lld %s\n", jstr(v, "ts", "?"), jint(v, "seq"),
		       jstr(v, "kind", "?"));
	snap = json_object_get(ag, "last_compliance");
	if (json_is_object(snap)) {
		printf("         last compliance snapshot %s seq %lld (%lld min ago): %s\n",
		       jstr(snap, "ts", "?"), jint(snap, "seq"), jint(snap, "age_s") / 60,
		       json_is_true(json_object_get(snap, "compliant")) ? "compliant"
									: "NOT compliant");
		if (json_is_false(json_object_get(snap, "same_policy")))
			printf("         (taken with another policy, %s: reload the agent)\n",
			       jstr(snap, "policy_hash", "?"));
		print_checks(json_object_get(snap, "checks"), "           ");
	} else if (json_is_null(snap)) {
		printf("         no compliance snapshot in the spool\n");
	}

	v = json_object_get(st, "checks");
	if (json_array_size(v) > 0) {
		printf("checks:  run now by mynaguardctl with the agent's code\n");
		print_checks(v, "           ");
	} else {
		printf("checks:  not run (the policy is not valid)\n");
	}

	printf("usb:     mode %s, %lld device%s, %lld blocked interface%s present (%lld of them "
	       "authorized)\n",
	       jstr(usb, "mode", "?"), jint(usb, "devices"), jint(usb, "devices") == 1 ? "" : "s",
	       jint(usb, "blocked_interfaces"), jint(usb, "blocked_interfaces") == 1 ? "" : "s",
	       jint(usb, "blocked_authorized"));
	json_array_foreach(json_object_get(usb, "root_hubs"), i, v)
	{
		const char *iad = jstr(v, "interface_authorized_default", NULL);
		printf("         root hub %s interface_authorized_default=%s\n",
		       jstr(v, "name", "?"), iad ? iad : "(unreadable)");
	}
	if (json_object_get(usb, "error"))
		printf("         %s\n", jstr(usb, "error", ""));

	printf("mfa:     services");
	json_array_foreach(json_object_get(mfa, "services"), i, v)
	    printf("%s %s", i ? "," : "", json_string_value(v));
	printf("%s\n",
	       json_is_true(json_object_get(mfa, "nullok")) ? " (nullok: NOT enforced)" : "");
	if (json_object_get(mfa, "store_error"))
		printf("         TOTP store %s: %s\n", jstr(mfa, "store", "?"),
		       jstr(mfa, "store_error", ""));
	else
		printf("         %lld enrolled in %s\n", jint(mfa, "enrolled"),
		       jstr(mfa, "store", "?"));
	printf("         %lld interactive user%s", jint(mfa, "interactive_users"),
	       jint(mfa, "interactive_users") == 1 ? "" : "s");
	if (json_array_size(json_object_get(mfa, "not_enrolled")) > 0) {
		printf(", without a code:");
		json_array_foreach(json_object_get(mfa, "not_enrolled"), i, v)
		    printf("%s %s", i ? "," : "", json_string_value(v));
	}
	printf("\n");
	if (json_array_size(json_object_get(mfa, "pending")) > 0) {
		printf("         pending (mynaguardctl totp verify USER):");
		json_array_foreach(json_object_get(mfa, "pending"), i, v)
		    printf("%s %s", i ? "," : "", json_string_value(v));
		printf("\n");
	}
	if (json_array_size(json_object_get(mfa, "bad_records")) > 0) {
		printf("         bad records:");
		json_array_foreach(json_object_get(mfa, "bad_records"), i, v)
		    printf("%s %s", i ? "," : "", json_string_value(v));
		printf("\n");
	}
	if (json_object_get(mfa, "passwd_error"))
		printf("         %s: %s\n", "passwd", jstr(mfa, "passwd_error", ""));

	printf("uplink:  collector %s\n", jstr(up, "collector", "(none)"));
	if (json_object_get(up, "cert_not_after"))
		printf("         certificate %s: serial %s, valid until %s (%lld days left)\n",
		       jstr(up, "certificate", "?"), jstr(up, "cert_serial", "?"),
		       jstr(up, "cert_not_after", "?"), jint(up, "cert_days_left"));
	else if (json_object_get(up, "cert_error"))
		printf("         certificate %s: %s\n", jstr(up, "certificate", "?"),
		       jstr(up, "cert_error", "?"));
	if (json_object_get(up, "spool_error")) {
		printf("         spool %s: %s\n", jstr(up, "spool", "?"),
		       jstr(up, "spool_error", ""));
	} else {
		printf("         spool %s: %lld segment%s, %lld bytes, acked through %lld\n",
		       jstr(up, "spool", "?"), jint(up, "segments"),
		       jint(up, "segments") == 1 ? "" : "s", jint(up, "spool_bytes"),
		       jint(up, "acked_through"));
		printf("         backlog %lld record%s, %lld bytes", jint(up, "backlog_records"),
		       jint(up, "backlog_records") == 1 ? "" : "s", jint(up, "backlog_bytes"));
		if (json_object_get(up, "backlog_oldest_ts") &&
		    !json_is_null(json_object_get(up, "backlog_oldest_ts")))
			printf(", oldest %s", jstr(up, "backlog_oldest_ts", "?"));
		printf("\n");
		if (jint(up, "damaged") > 0)
			printf("         %lld damaged or torn segment tail%s\n",
			       jint(up, "damaged"), jint(up, "damaged") == 1 ? "" : "s");
	}

	if (json_array_size(problems) == 0) {
		printf("OK: compliant\n");
		return;
	}
	printf("NOT COMPLIANT:\n");
	json_array_foreach(problems, i, v) printf("  - %s\n", json_string_value(v));
}

int ctl_status(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"state", required_argument, NULL, 'S'},
	    {"spool", required_argument, NULL, 'q'},
	    {"socket", required_argument, NULL, 'k'},
	    {"store", required_argument, NULL, 's'},
	    {"sysfs-root", required_argument, NULL, 'r'},
	    {"passwd", required_argument, NULL, 'P'},
	    {"json", no_argument, NULL, 'j'},
	    {0},
	};
	struct status_args a = {
	    .state = MYNAGUARD_STATE_DIR,
	    .spool = MYNAGUARD_SPOOL_DIR,
	    .socket = MYNAGUARD_SOCKET_PATH,
	    .passwd = "/etc/passwd",
	};
	_cleanup_policy_ struct policy *p = NULL;
	json_auto_t *st = json_object();
	json_t *problems = json_array();
	struct spool_scan scan = {0};
	_cleanup_free_ char *store = NULL;
	int c, spool_err;
	bool valid;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			a.state = optarg;
			break;
		case 'q':
			a.spool = optarg;
			break;
		case 'k':
			a.socket = optarg;
			break;
		case 's':
			a.store = optarg;
			break;
		case 'r':
			a.sysfs_root = optarg;
			break;
		case 'P':
			a.passwd = optarg;
			break;
		case 'j':
			a.json = true;
			break;
		default:
			usage(stderr);
			json_decref(problems);
			return 2;
		}
	}
	if (optind != argc || !st || !problems) {
		usage(stderr);
		json_decref(problems);
		return 2;
	}
	if (a.store)
		store = strdup(a.store);
	else if (asprintf(&store, "%s/totp", a.state) < 0)
		store = NULL;
	if (!store) {
		json_decref(problems);
		return 1;
	}

	json_object_set_new(st, "policy", status_policy(o->policy_path, &p, problems));
	if (!p) {
		fprintf(stderr, "mynaguardctl: out of memory\n");
		json_decref(problems);
		return 1;
	}
	valid = json_is_true(json_object_get(json_object_get(st, "policy"), "valid"));
	spool_err = spool_scan_dir(a.spool, &scan);
	json_object_set_new(
	    st, "agent",
	    status_agent(&a, p,
			 json_string_value(json_object_get(json_object_get(st, "policy"), "hash")),
			 &scan, spool_err, problems));
	json_object_set_new(st, "checks",
			    valid ? status_checks_run(o, &a, p, problems) : json_array());
	json_object_set_new(st, "usb", status_usb(&a, p));
	json_object_set_new(st, "mfa", status_mfa(o, &a, p, store));
	json_object_set_new(st, "uplink", status_uplink(&a, p, &scan, spool_err, problems));
	json_object_set_new(st, "compliant", json_boolean(json_array_size(problems) == 0));
	json_object_set_new(st, "problems", problems);
	spool_scan_clear(&scan);

	if (a.json) {
		char *s = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (!s)
			return 1;
		puts(s);
		free(s);
	} else {
		print_text(st);
	}
	fflush(stdout);
	return json_array_size(problems) == 0 ? 0 : 1;
}
