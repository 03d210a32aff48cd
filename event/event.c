/* SPDX-License-Identifier: MIT */
/* The event model and its strict JSON codec (jansson); pure, never logs. Used by agent, uplink, collector. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "event.h"
#include "macro.h"

static const char *const kind_names[_EVENT_KIND_MAX] = {
    [EVENT_USB_BLOCKED] = "usb.blocked",
    [EVENT_USB_ALLOWED] = "usb.allowed",
    [EVENT_USB_REMOVED] = "usb.removed",
    [EVENT_AUTH_SUCCESS] = "auth.success",
    [EVENT_AUTH_FAILURE] = "auth.failure",
    [EVENT_AUTH_REPLAY] = "auth.replay",
    [EVENT_AUTH_LOCKED] = "auth.locked",
    [EVENT_AGENT_STARTED] = "agent.started",
    [EVENT_AGENT_STOPPED] = "agent.stopped",
    [EVENT_SPOOL_DROPPED] = "spool.dropped",
    [EVENT_COMPLIANCE] = "compliance",
    [EVENT_BUNDLE_APPLIED] = "bundle.applied",
    [EVENT_BUNDLE_REFUSED] = "bundle.refused",
    [EVENT_USB_EXCEPTION_EXPIRED] = "usb.exception_expired",
    [EVENT_USB_EXCEPTION_REVOKED] = "usb.exception_revoked",
    [EVENT_FLEET_GROUP] = "fleet.group",
    [EVENT_FLEET_POLICY] = "fleet.policy",
    [EVENT_FLEET_REQUEST] = "fleet.request",
    [EVENT_FLEET_GRANT] = "fleet.grant",
    [EVENT_FLEET_REFUSE] = "fleet.refuse",
    [EVENT_FLEET_REVOKE] = "fleet.revoke",
    [EVENT_FLEET_LEDGER] = "fleet.ledger",
    [EVENT_ENROLL_ISSUED] = "enroll.issued",
    [EVENT_ENROLL_REFUSED] = "enroll.refused",
    [EVENT_FLEET_TOTP] = "fleet.totp",
    [EVENT_TOTP_INSTALLED] = "totp.installed",
    [EVENT_REVIEW_SIGNED] = "review.signed",
    [EVENT_ACCOUNT_LOGIN] = "account.login",
    [EVENT_ACCOUNT_LOGIN_FAILURE] = "account.login_failure",
    [EVENT_ACCOUNT_LOGOUT] = "account.logout",
    [EVENT_ACCOUNT_CREATED] = "account.created",
    [EVENT_ACCOUNT_DISABLED] = "account.disabled",
    [EVENT_ACCOUNT_TOKEN] = "account.token",
};

const char *event_kind_name(enum event_kind k)
{
	if ((unsigned)k >= _EVENT_KIND_MAX)
		return NULL;
	return kind_names[k];
}

int event_kind_from_name(const char *name, enum event_kind *ret)
{
	if (!name)
		return -EINVAL;
	for (unsigned i = 0; i < _EVENT_KIND_MAX; i++)
		if (strcmp(kind_names[i], name) == 0) {
			*ret = (enum event_kind)i;
			return 0;
		}
	return -EINVAL;
}

bool event_kind_is_collector_own(enum event_kind k)
{
	return (k >= EVENT_FLEET_GROUP && k <= EVENT_ENROLL_REFUSED) || k == EVENT_FLEET_TOTP ||
	       k == EVENT_REVIEW_SIGNED || (k >= EVENT_ACCOUNT_LOGIN && k <= EVENT_ACCOUNT_TOKEN);
}

bool event_kind_is_auth(enum event_kind k)
{
	return k == EVENT_AUTH_SUCCESS || k == EVENT_AUTH_FAILURE || k == EVENT_AUTH_REPLAY ||
	       k == EVENT_AUTH_LOCKED;
}

void event_clear(struct event *e)
{
	if (!e)
		return;
	json_decref(e->clause);
	json_decref(e->data);
	e->clause = NULL;
	e->data = NULL;
}

void event_batch_clear(struct event_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		event_clear(&b->events[i]);
	free(b->events);
	b->events = NULL;
	b->n = 0;
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	*ret_y = y + (m <= 2);
	*ret_m = m;
	*ret_d = d;
}

void event_format_ts(int64_t ts_ms, char buf[static 32])
{
	if (ts_ms < 0)
		ts_ms = 0;
	if (ts_ms > EVENT_TS_MAX_MS)
		ts_ms = EVENT_TS_MAX_MS;
	int64_t days = ts_ms / 86400000;
	int64_t rem = ts_ms % 86400000;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	unsigned short yy = (unsigned short)(y % 10000);
	unsigned char mm = (unsigned char)(m % 13), dd = (unsigned char)(d % 32);
	unsigned char hh = (unsigned char)(rem / 3600000 % 24),
		      mi = (unsigned char)(rem / 60000 % 60);
	unsigned char ss = (unsigned char)(rem / 1000 % 60);
	unsigned short ms = (unsigned short)(rem % 1000);
	snprintf(buf, 32, "%04hu-%02hhu-%02hhuT%02hhu:%02hhu:%02hhu.%03huZ", yy, mm, dd, hh, mi, ss,
		 ms);
}

static bool digits(const char *s, size_t n, unsigned *ret)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*ret = v;
	return true;
}

int event_parse_ts(const char *s, int64_t *ret_ms)
{
	static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, mo, d, h, mi, se, ms = 0;

	if (!s)
		return -EINVAL;
	size_t n = strlen(s);
	if (n != 20 && n != 24)
		return -EINVAL;
	if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return -EINVAL;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return -EINVAL;
	if (n == 24) {
		if (s[19] != '.' || s[23] != 'Z' || !digits(s + 20, 3, &ms))
			return -EINVAL;
	} else if (s[19] != 'Z')
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59)
		return -EINVAL;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	unsigned dim = mdays[mo - 1] + (mo == 2 && leap);
	if (d > dim)
		return -EINVAL;
	int64_t days = days_from_civil(y, mo, d);
	*ret_ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)se * 1000 + ms;
	return 0;
}

/* 1..max characters of [A-Za-z0-9._-]. */
static bool id_valid(const char *s, size_t max)
{
	if (!s || !*s)
		return false;
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= max)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool event_terminal_id_valid(const char *s)
{
	return id_valid(s, EVENT_TERMINAL_MAX) && *s != '.' && *s != '-';
}

bool event_clause_id_valid(const char *s)
{
	return id_valid(s, EVENT_CLAUSE_MAX);
}

/* ---- encoding ---- */

json_t *event_to_json(const struct event *e)
{
	char ts[32];
	const char *kind = event_kind_name(e->kind);

	if (!kind || e->seq > (uint64_t)INT64_MAX)
		return NULL;
	event_format_ts(e->ts_ms, ts);
	json_t *clause = e->clause ? json_incref(e->clause) : json_array();
	json_t *data = e->data ? json_incref(e->data) : json_object();
	/* "o" steals the references, also on failure. */
	return json_pack("{s:i, s:s, s:I, s:s, s:s, s:o, s:o}", "v", EVENT_VERSION, "terminal",
			 e->terminal, "seq", (json_int_t)e->seq, "ts", ts, "kind", kind, "clause",
			 clause, "data", data);
}

int event_encode(const struct event *e, char **ret, size_t *ret_len)
{
	if (!event_terminal_id_valid(e->terminal) || (unsigned)e->kind >= _EVENT_KIND_MAX ||
	    e->seq > (uint64_t)INT64_MAX)
		return -EINVAL;
	if ((e->clause && !json_is_array(e->clause)) || (e->data && !json_is_object(e->data)))
		return -EINVAL;
	json_t *o = event_to_json(e);
	if (!o)
		return -ENOMEM;
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!s)
		return -ENOMEM;
	size_t n = strlen(s);
	if (n > EVENT_MAX_BYTES) {
		free(s);
		return -EMSGSIZE;
	}
	*ret = s;
	if (ret_len)
		*ret_len = n;
	return 0;
}

/* ---- decoding ---- */

_printf_(3, 4) static int fail(char reason[static EVENT_REASON_MAX], const char *prefix,
			       const char *fmt, ...)
{
	char msg[EVENT_REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(reason, EVENT_REASON_MAX, "%s%s", prefix ? prefix : "", msg);
	return -EINVAL;
}

/* At most 32 bytes of an untrusted string for a reason, escaped (base/escape.h). */
#define QUOTE_MAX 32
static const char *quote_untrusted(const char *s, char buf[static ESCAPE_SIZE(QUOTE_MAX)])
{
	return escape_text(s, strlen(s), QUOTE_MAX, 0, buf, ESCAPE_SIZE(QUOTE_MAX));
}

/* Deepest nesting of v, where v itself is at depth `depth`; stops counting past limit. */
static bool depth_ok(json_t *v, unsigned depth, unsigned limit)
{
	if (depth > limit)
		return false;
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		json_object_foreach(v, k, c) if ((json_is_object(c) || json_is_array(c)) &&
						 !depth_ok(c, depth + 1, limit)) return false;
	} else if (json_is_array(v)) {
		size_t i;
		json_t *c;
		json_array_foreach(v, i, c) if ((json_is_object(c) || json_is_array(c)) &&
						!depth_ok(c, depth + 1, limit)) return false;
	}
	return true;
}

static int parse_error(const json_error_t *err, const char *prefix,
		       char reason[static EVENT_REASON_MAX])
{
	return fail(reason, prefix, "invalid JSON at line %d column %d: %s", err->line, err->column,
		    err->text);
}

static int check_clause_array(json_t *a, const char *prefix, const char *key,
			      char reason[static EVENT_REASON_MAX])
{
	size_t i;
	json_t *c;

	if (!json_is_array(a))
		return fail(reason, prefix, "%s: expected an array of strings", key);
	if (json_array_size(a) > EVENT_MAX_CLAUSES)
		return fail(reason, prefix, "%s: more than %d clause ids", key, EVENT_MAX_CLAUSES);
	json_array_foreach(a, i, c)
	{
		if (!json_is_string(c))
			return fail(reason, prefix, "%s[%zu]: expected a string", key, i);
		if (!event_clause_id_valid(json_string_value(c)))
			return fail(reason, prefix, "%s[%zu]: invalid clause id", key, i);
	}
	return 0;
}

static const char *const check_statuses[] = {"pass", "fail", "not_applicable", "error"};

/* Kind-specific data rules: only what readers of the data rely on. */
static int check_data(enum event_kind kind, json_t *data, const char *prefix,
		      char reason[static EVENT_REASON_MAX])
{
	switch (kind) {
	case EVENT_COMPLIANCE: {
		json_t *checks = json_object_get(data, "checks");
		json_t *hash = json_object_get(data, "policy_hash");
		size_t i;
		json_t *c;

		if (hash && !json_is_string(hash))
			return fail(reason, prefix, "data.policy_hash: expected a string");
		if (!json_is_array(checks))
			return fail(reason, prefix, "data.checks: expected an array");
		if (json_array_size(checks) > EVENT_MAX_CHECKS)
			return fail(reason, prefix, "data.checks: more than %d checks",
				    EVENT_MAX_CHECKS);
		json_array_foreach(checks, i, c)
		{
			char key[48];
			if (!json_is_object(c))
				return fail(reason, prefix, "data.checks[%zu]: expected an object",
					    i);
			json_t *id = json_object_get(c, "id");
			json_t *status = json_object_get(c, "status");
			json_t *clause = json_object_get(c, "clause");
			json_t *detail = json_object_get(c, "detail");
			if (!json_is_string(id) || json_string_length(id) == 0)
				return fail(reason, prefix,
					    "data.checks[%zu].id: expected a string", i);
			bool known = false;
			for (size_t j = 0; json_is_string(status) && j < ELEMENTSOF(check_statuses);
			     j++)
				known = known ||
					strcmp(json_string_value(status), check_statuses[j]) == 0;
			if (!known)
				return fail(reason, prefix,
					    "data.checks[%zu].status: expected "
					    "pass|fail|not_applicable|error",
					    i);
			snprintf(key, sizeof key, "data.checks[%zu].clause", i);
			if (clause && check_clause_array(clause, prefix, key, reason) < 0)
				return -EINVAL;
			if (detail && !json_is_string(detail))
				return fail(reason, prefix,
					    "data.checks[%zu].detail: expected a string", i);
		}
		return 0;
	}
	case EVENT_SPOOL_DROPPED: {
		json_t *count = json_object_get(data, "count");
		if (!json_is_integer(count) || json_integer_value(count) < 0)
			return fail(reason, prefix, "data.count: expected a non-negative integer");
		const char *keys[] = {"first_seq", "last_seq"};
		for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
			json_t *v = json_object_get(data, keys[i]);
			if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
				return fail(reason, prefix,
					    "data.%s: expected a non-negative integer", keys[i]);
		}
		return 0;
	}
	case EVENT_USB_BLOCKED:
	case EVENT_USB_ALLOWED:
	case EVENT_USB_REMOVED:
	case EVENT_AUTH_SUCCESS:
	case EVENT_AUTH_FAILURE:
	case EVENT_AUTH_REPLAY:
	case EVENT_AUTH_LOCKED:
	case EVENT_AGENT_STARTED:
	case EVENT_AGENT_STOPPED:
	case EVENT_BUNDLE_APPLIED:
	case EVENT_BUNDLE_REFUSED:
	case EVENT_USB_EXCEPTION_EXPIRED:
	case EVENT_USB_EXCEPTION_REVOKED:
	case EVENT_FLEET_GROUP:
	case EVENT_FLEET_POLICY:
	case EVENT_FLEET_REQUEST:
	case EVENT_FLEET_GRANT:
	case EVENT_FLEET_REFUSE:
	case EVENT_FLEET_REVOKE:
	case EVENT_FLEET_LEDGER:
	case EVENT_ENROLL_ISSUED:
	case EVENT_ENROLL_REFUSED:
	case EVENT_FLEET_TOTP:
	case EVENT_TOTP_INSTALLED:
	case EVENT_REVIEW_SIGNED:
	case EVENT_ACCOUNT_LOGIN:
	case EVENT_ACCOUNT_LOGIN_FAILURE:
	case EVENT_ACCOUNT_LOGOUT:
	case EVENT_ACCOUNT_CREATED:
	case EVENT_ACCOUNT_DISABLED:
	case EVENT_ACCOUNT_TOKEN:
	case _EVENT_KIND_MAX:
		return 0;
	}
	return 0;
}

/* Fails on the first key of object o that is not in keys[0..n). */
static int check_keys(json_t *o, const char *const *keys, size_t n, const char *prefix,
		      char reason[static EVENT_REASON_MAX])
{
	const char *k;
	json_t *v;
	char q[ESCAPE_SIZE(QUOTE_MAX)];

	json_object_foreach(o, k, v)
	{
		bool known = false;
		for (size_t i = 0; i < n && !known; i++)
			known = strcmp(k, keys[i]) == 0;
		if (!known)
			return fail(reason, prefix, "unknown key \"%s\"", quote_untrusted(k, q));
	}
	return 0;
}

/* Clears reason, then parses buf as JSON if it is at most limit bytes; `what` names it in the
 * size error. */
static int load_json(const char *buf, size_t len, size_t limit, const char *what, json_t **ret,
		     char reason[static EVENT_REASON_MAX])
{
	json_error_t err;

	reason[0] = 0;
	if (len > limit) {
		snprintf(reason, EVENT_REASON_MAX, "%s too large (%zu bytes, limit %zu)", what, len,
			 limit);
		return -EMSGSIZE;
	}
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (!o)
		return parse_error(&err, NULL, reason);
	*ret = o;
	return 0;
}

static const char *const event_keys[] = {"v", "terminal", "seq", "ts", "kind", "clause", "data"};

static int from_json(json_t *o, const char *prefix, unsigned base_depth, struct event *ret,
		     char reason[static EVENT_REASON_MAX])
{
	json_t *v;
	char q[ESCAPE_SIZE(QUOTE_MAX)];

	if (!json_is_object(o))
		return fail(reason, prefix, "expected a JSON object");
	int r = check_keys(o, event_keys, ELEMENTSOF(event_keys), prefix, reason);
	if (r < 0)
		return r;

	v = json_object_get(o, "v");
	if (!v)
		return fail(reason, prefix, "v: missing");
	if (!json_is_integer(v))
		return fail(reason, prefix, "v: expected an integer");
	if (json_integer_value(v) != EVENT_VERSION)
		return fail(reason, prefix, "v: unsupported version %lld",
			    (long long)json_integer_value(v));

	v = json_object_get(o, "terminal");
	if (!v)
		return fail(reason, prefix, "terminal: missing");
	if (!json_is_string(v))
		return fail(reason, prefix, "terminal: expected a string");
	if (strlen(json_string_value(v)) != json_string_length(v) ||
	    !event_terminal_id_valid(json_string_value(v)))
		return fail(reason, prefix,
			    "terminal: invalid terminal id (1..64 of [A-Za-z0-9._-])");
	const char *terminal = json_string_value(v);

	v = json_object_get(o, "seq");
	if (!v)
		return fail(reason, prefix, "seq: missing");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return fail(reason, prefix, "seq: expected a non-negative integer");
	uint64_t seq = (uint64_t)json_integer_value(v);

	v = json_object_get(o, "ts");
	if (!v)
		return fail(reason, prefix, "ts: missing");
	int64_t ts_ms;
	if (!json_is_string(v) || event_parse_ts(json_string_value(v), &ts_ms) < 0)
		return fail(reason, prefix, "ts: expected \"YYYY-MM-DDTHH:MM:SS.mmmZ\"");

	v = json_object_get(o, "kind");
	if (!v)
		return fail(reason, prefix, "kind: missing");
	if (!json_is_string(v))
		return fail(reason, prefix, "kind: expected a string");
	enum event_kind kind;
	if (event_kind_from_name(json_string_value(v), &kind) < 0)
		return fail(reason, prefix, "kind: unknown kind \"%s\"",
			    quote_untrusted(json_string_value(v), q));

	json_t *clause = json_object_get(o, "clause");
	if (clause && check_clause_array(clause, prefix, "clause", reason) < 0)
		return -EINVAL;

	json_t *data = json_object_get(o, "data");
	if (!data)
		return fail(reason, prefix, "data: missing");
	if (!json_is_object(data))
		return fail(reason, prefix, "data: expected an object");
	if (!depth_ok(data, base_depth + 1, EVENT_MAX_DEPTH))
		return fail(reason, prefix, "data: nested deeper than %d levels", EVENT_MAX_DEPTH);
	if (check_data(kind, data, prefix, reason) < 0)
		return -EINVAL;

	*ret = (struct event){.seq = seq, .ts_ms = ts_ms, .kind = kind};
	memcpy(ret->terminal, terminal, strlen(terminal) + 1);
	ret->clause = clause ? json_incref(clause) : json_array();
	ret->data = json_incref(data);
	if (!ret->clause) {
		event_clear(ret);
		return -ENOMEM;
	}
	return 0;
}

int event_from_json(json_t *obj, struct event *ret, char reason[static EVENT_REASON_MAX])
{
	reason[0] = 0;
	return from_json(obj, NULL, 1, ret, reason);
}

int event_decode(const char *buf, size_t len, struct event *ret,
		 char reason[static EVENT_REASON_MAX])
{
	json_t *o;
	int r = load_json(buf, len, EVENT_MAX_BYTES, "event", &o, reason);
	if (r < 0)
		return r;
	r = from_json(o, NULL, 1, ret, reason);
	json_decref(o);
	return r;
}

int event_batch_decode(const char *buf, size_t len, struct event_batch *ret,
		       char reason[static EVENT_REASON_MAX])
{
	static const char *const batch_keys[] = {"v", "terminal", "events"};
	json_t *o, *v;

	int r = load_json(buf, len, EVENT_BATCH_MAX_BYTES, "batch", &o, reason);
	if (r < 0)
		return r;

	struct event *events = NULL;
	size_t n = 0;

	if (!json_is_object(o)) {
		r = fail(reason, NULL, "expected a JSON object");
		goto done;
	}
	r = check_keys(o, batch_keys, ELEMENTSOF(batch_keys), NULL, reason);
	if (r < 0)
		goto done;
	v = json_object_get(o, "v");
	if (!v || !json_is_integer(v)) {
		r = fail(reason, NULL, v ? "v: expected an integer" : "v: missing");
		goto done;
	}
	if (json_integer_value(v) != EVENT_VERSION) {
		r = fail(reason, NULL, "v: unsupported version %lld",
			 (long long)json_integer_value(v));
		goto done;
	}
	v = json_object_get(o, "terminal");
	if (!v || !json_is_string(v)) {
		r = fail(reason, NULL, v ? "terminal: expected a string" : "terminal: missing");
		goto done;
	}
	if (strlen(json_string_value(v)) != json_string_length(v) ||
	    !event_terminal_id_valid(json_string_value(v))) {
		r = fail(reason, NULL, "terminal: invalid terminal id (1..64 of [A-Za-z0-9._-])");
		goto done;
	}
	const char *terminal = json_string_value(v);
	json_t *arr = json_object_get(o, "events");
	if (!arr || !json_is_array(arr)) {
		r = fail(reason, NULL, arr ? "events: expected an array" : "events: missing");
		goto done;
	}
	size_t total = json_array_size(arr);
	if (total > EVENT_BATCH_MAX_EVENTS) {
		snprintf(reason, EVENT_REASON_MAX, "events: more than %d events (%zu)",
			 EVENT_BATCH_MAX_EVENTS, total);
		r = -EMSGSIZE;
		goto done;
	}
	events = calloc(total ? total : 1, sizeof *events);
	if (!events) {
		r = -ENOMEM;
		goto done;
	}
	for (; n < total; n++) {
		char prefix[32];
		snprintf(prefix, sizeof prefix, "events[%zu].", n);
		json_t *ev = json_array_get(arr, n);
		r = from_json(ev, prefix, 1, &events[n], reason);
		if (r < 0)
			goto done;
		/* the same limit as one event alone: the store keeps each event in that much */
		size_t ev_len = json_dumpb(ev, NULL, 0, JSON_COMPACT);
		if (ev_len > EVENT_MAX_BYTES) {
			n++;
			snprintf(reason, EVENT_REASON_MAX,
				 "%sevent too large (%zu bytes, limit %d)", prefix, ev_len,
				 EVENT_MAX_BYTES);
			r = -EMSGSIZE;
			goto done;
		}
		if (strcmp(events[n].terminal, terminal) != 0) {
			n++;
			r = fail(reason, prefix, "terminal: does not match the batch terminal");
			goto done;
		}
	}
	*ret = (struct event_batch){.events = events, .n = n};
	memcpy(ret->terminal, terminal, strlen(terminal) + 1);
	events = NULL;
	n = 0;
done:
	for (size_t i = 0; i < n; i++)
		event_clear(&events[i]);
	free(events);
	json_decref(o);
	return r;
}

int event_batch_encode_raw(const char *terminal, const char *const *events, const size_t *lens,
			   size_t n, char **ret, size_t *ret_len)
{
	if (!event_terminal_id_valid(terminal))
		return -EINVAL;
	if (n > EVENT_BATCH_MAX_EVENTS)
		return -EMSGSIZE;
	size_t head = strlen("{\"v\":1,\"terminal\":\"\",\"events\":[") + strlen(terminal);
	size_t total = head + 2 + 1;
	for (size_t i = 0; i < n; i++) {
		if (lens[i] == 0 || lens[i] > EVENT_MAX_BYTES)
			return -EINVAL;
		total += lens[i] + 1;
	}
	if (total - 1 > EVENT_BATCH_MAX_BYTES)
		return -EMSGSIZE;
	char *buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	size_t o =
	    (size_t)snprintf(buf, total, "{\"v\":1,\"terminal\":\"%s\",\"events\":[", terminal);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf[o++] = ',';
		memcpy(buf + o, events[i], lens[i]);
		o += lens[i];
	}
	buf[o++] = ']';
	buf[o++] = '}';
	buf[o] = 0;
	*ret = buf;
	if (ret_len)
		*ret_len = o;
	return 0;
}

size_t event_batch_raw_size(const char *terminal, size_t n, size_t payload_bytes)
{
	return strlen("{\"v\":1,\"terminal\":\"\",\"events\":[]}") + strlen(terminal) +
	       payload_bytes + (n > 0 ? n - 1 : 0);
}

/* ---- PAM module → agent datagrams ---- */

int event_datagram_decode(const char *buf, size_t len, enum event_kind *ret_kind,
			  int64_t *ret_ts_ms, json_t **ret_data,
			  char reason[static EVENT_REASON_MAX])
{
	static const char *const datagram_keys[] = {"v", "kind", "ts_ms", "data"};
	const char *k;
	json_t *o, *v;
	char q[ESCAPE_SIZE(QUOTE_MAX)];

	int r = load_json(buf, len, EVENT_DATAGRAM_MAX, "datagram", &o, reason);
	if (r < 0)
		return r;

	if (!json_is_object(o)) {
		r = fail(reason, NULL, "expected a JSON object");
		goto done;
	}
	r = check_keys(o, datagram_keys, ELEMENTSOF(datagram_keys), NULL, reason);
	if (r < 0)
		goto done;
	v = json_object_get(o, "v");
	if (!json_is_integer(v) || json_integer_value(v) != EVENT_VERSION) {
		r = fail(reason, NULL, "v: expected 1");
		goto done;
	}
	v = json_object_get(o, "kind");
	enum event_kind kind;
	if (!json_is_string(v)) {
		r = fail(reason, NULL, v ? "kind: expected a string" : "kind: missing");
		goto done;
	}
	if (event_kind_from_name(json_string_value(v), &kind) < 0 || !event_kind_is_auth(kind)) {
		r = fail(reason, NULL,
			 "kind: expected auth.success|auth.failure|auth.replay|auth.locked");
		goto done;
	}
	v = json_object_get(o, "ts_ms");
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > EVENT_TS_MAX_MS) {
		r = fail(reason, NULL, "ts_ms: expected a non-negative integer");
		goto done;
	}
	int64_t ts_ms = json_integer_value(v);
	json_t *data = json_object_get(o, "data");
	if (!json_is_object(data)) {
		r = fail(reason, NULL, data ? "data: expected an object" : "data: missing");
		goto done;
	}
	if (json_object_size(data) > EVENT_DATAGRAM_MAX_KEYS) {
		r = fail(reason, NULL, "data: more than %d keys", EVENT_DATAGRAM_MAX_KEYS);
		goto done;
	}
	json_object_foreach(data, k, v)
	{
		if (strcmp(k, "sender") == 0) {
			r = fail(reason, NULL, "data.sender: reserved for the agent");
			goto done;
		}
		if (!json_is_string(v) && !json_is_integer(v) && !json_is_boolean(v)) {
			r = fail(reason, NULL, "data.%s: expected a string, integer or boolean",
				 quote_untrusted(k, q));
			goto done;
		}
	}
	const char *required[] = {"user", "service"};
	for (size_t i = 0; i < ELEMENTSOF(required); i++)
		if (!json_is_string(json_object_get(data, required[i]))) {
			r = fail(reason, NULL, "data.%s: expected a string", required[i]);
			goto done;
		}
	*ret_kind = kind;
	*ret_ts_ms = ts_ms;
	*ret_data = json_incref(data);
	r = 0;
done:
	json_decref(o);
	return r;
}
