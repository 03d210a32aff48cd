/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the dashboard listener: read-only JSON API, CSV export, metrics and the web
 * page, behind auth_request() (static page assets excepted: they hold no data). */
#include "api.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account-api.h"
#include "alert.h"
#include "auth.h"
#include "fileio.h"
#include "macro.h"
#include "enroll.h"
#include "evidence.h"
#include "fleet.h"
#include "metrics.h"
#include "parse.h"
#include "review.h"
#include "server.h"
#include "utf8.h"

#define EXPORT_CHUNK_ROWS 2000
#define WEB_FILE_MAX	  (4 * 1024 * 1024)
#define SUMMARY_MAX	  1000 /* bytes of the CSV summary cell, "..." included */

static const char csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

static void common_headers(struct evhttp_request *req, const char *type, bool no_store)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Content-Security-Policy", csp);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Cache-Control", no_store ? "no-store" : "no-cache");
}

void api_send_json(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer *buf = server_json_buffer(body);

	common_headers(req, "application/json", true);
	evhttp_send_reply(req, status, NULL, buf);
	evbuffer_free(buf);
}

void api_send_error(struct evhttp_request *req, int status, const char *reason)
{
	json_t *body = server_error_json(reason);
	api_send_json(req, status, body);
	json_decref(body);
}

/* ---- query strings ---- */

static void unknown_parameter(const char *key, char reason[static EVENT_REASON_MAX])
{
	size_t klen = strlen(key);
	/* the reason goes into a JSON string: whole characters only */
	if (utf8_valid(key, klen))
		snprintf(reason, EVENT_REASON_MAX, "unknown parameter \"%.*s\"",
			 (int)utf8_truncate(key, klen, 40), key);
	else
		snprintf(reason, EVENT_REASON_MAX, "unknown parameter (not UTF-8)");
}

int api_parse_filter(const char *query, struct store_filter *ret,
		     char reason[static EVENT_REASON_MAX])
{
	struct evkeyvalq params;
	struct evkeyval *kv;
	struct store_filter f = {
	    .kind = -1,
	    .since_ms = INT64_MIN,
	    .until_ms = INT64_MAX,
	    .limit = API_LIMIT_DEFAULT,
	};
	unsigned seen = 0;
	int r = 0;

	TAILQ_INIT(&params);
	/* libevent decodes %00 into a NUL that ends the value early ("terminal=a%00x" would
	 * select a's events): a query that carries one means something else than it says. */
	if (query && strstr(query, "%00")) {
		snprintf(reason, EVENT_REASON_MAX, "query string contains %%00 (a NUL byte)");
		return -EINVAL;
	}
	if (query && evhttp_parse_query_str(query, &params) < 0) {
		snprintf(reason, EVENT_REASON_MAX, "malformed query string");
		evhttp_clear_headers(&params);
		return -EINVAL;
	}
	TAILQ_FOREACH(kv, &params, next)
	{
		static const char *const names[] = {"after", "limit", "terminal", "kind",
						    "since", "until", "order",	  "group"};
		unsigned i;

		for (i = 0; i < ELEMENTSOF(names); i++)
			if (strcmp(kv->key, names[i]) == 0)
				break;
		if (i == ELEMENTSOF(names)) {
			unknown_parameter(kv->key, reason);
			r = -EINVAL;
			break;
		}
		if (seen & (1u << i)) {
			snprintf(reason, EVENT_REASON_MAX, "parameter \"%s\" given twice",
				 names[i]);
			r = -EINVAL;
			break;
		}
		seen |= 1u << i;
		switch (i) {
		case 0:
			/* newest first: the cursor is "TS.ID" (checked once the order is known) */
			if (strchr(kv->value, '.')) {
				_cleanup_free_ char *ts = strdup(kv->value);
				char *dot = ts ? strchr(ts, '.') : NULL;
				uint64_t tsv;
				if (!dot) {
					r = -ENOMEM;
					snprintf(reason, EVENT_REASON_MAX, "out of memory");
					break;
				}
				*dot = 0;
				if (parse_uint64(ts, 0, INT64_MAX, &tsv) < 0 ||
				    parse_uint64(dot + 1, 1, INT64_MAX, &f.before_id) < 0) {
					snprintf(reason, EVENT_REASON_MAX,
						 "after: expected a cursor from a previous answer");
					r = -EINVAL;
				}
				f.before_ts = (int64_t)tsv;
			} else if (kv->value[0] &&
				   parse_uint64(kv->value, 0, INT64_MAX, &f.after) < 0) {
				snprintf(reason, EVENT_REASON_MAX,
					 "after: expected a cursor from a previous answer");
				r = -EINVAL;
			}
			break;
		case 1:
			if (parse_uint(kv->value, 1, API_LIMIT_MAX, &f.limit) < 0) {
				snprintf(reason, EVENT_REASON_MAX, "limit: expected 1 to %d",
					 API_LIMIT_MAX);
				r = -EINVAL;
			}
			break;
		case 2:
			if (!event_terminal_id_valid(kv->value)) {
				snprintf(reason, EVENT_REASON_MAX,
					 "terminal: not a valid terminal id");
				r = -EINVAL;
			} else
				snprintf(f.terminal, sizeof(f.terminal), "%s", kv->value);
			break;
		case 3: {
			enum event_kind k;
			if (event_kind_from_name(kv->value, &k) < 0) {
				snprintf(reason, EVENT_REASON_MAX, "kind: unknown event kind");
				r = -EINVAL;
			} else
				f.kind = (int)k;
			break;
		}
		case 4:
		case 5: {
			int64_t ms;
			if (event_parse_ts(kv->value, &ms) < 0) {
				snprintf(reason, EVENT_REASON_MAX,
					 "%s: expected a UTC time like 2026-04-01T00:00:00Z",
					 names[i]);
				r = -EINVAL;
			} else if (i == 4)
				f.since_ms = ms;
			else
				f.until_ms = ms;
			break;
		}
		case 7:
			/* group names look like terminal ids (docs/fleet.md) */
			if (!event_terminal_id_valid(kv->value)) {
				snprintf(reason, EVENT_REASON_MAX, "group: not a valid group name");
				r = -EINVAL;
			} else
				snprintf(f.group, sizeof(f.group), "%s", kv->value);
			break;
		case 6:
			if (strcmp(kv->value, "newest") == 0)
				f.newest = true;
			else if (strcmp(kv->value, "id") != 0) {
				snprintf(reason, EVENT_REASON_MAX, "order: expected id or newest");
				r = -EINVAL;
			}
			break;
		default:
			break;
		}
		if (r < 0)
			break;
	}
	evhttp_clear_headers(&params);
	if (r == 0 && (f.newest ? f.after != 0 : f.before_id != 0)) {
		snprintf(reason, EVENT_REASON_MAX, "after: a cursor of the other order");
		r = -EINVAL;
	}
	if (r < 0)
		return r;
	*ret = f;
	return 0;
}

int api_parse_day(const char *text, int64_t *ret)
{
	unsigned y, m, d;
	int n = 0;
	struct tm tm = {0};
	time_t t;

	/* exactly YYYY-MM-DD: sscanf alone takes " 2026", "+4" */
	for (int i = 0; i < 10; i++)
		if (!text[i] ||
		    (i == 4 || i == 7 ? text[i] != '-' : text[i] < '0' || text[i] > '9'))
			return -EINVAL;
	if (sscanf(text, "%4u-%2u-%2u%n", &y, &m, &d, &n) != 3 || n != 10 || text[n] ||
	    strlen(text) != 10 || y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
		return -EINVAL;
	tm.tm_year = (int)y - 1900;
	tm.tm_mon = (int)m - 1;
	tm.tm_mday = (int)d;
	t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != (int)d) /* 2026-02-30 */
		return -EINVAL;
	*ret = (int64_t)t / 86400;
	return 0;
}

/* ?days=N (1..STORE_HISTORY_DAYS_MAX, default def) and nothing else */
static int parse_days(const char *query, unsigned def, unsigned *ret,
		      char reason[static EVENT_REASON_MAX])
{
	struct evkeyvalq params;
	struct evkeyval *kv;
	int r = 0;

	*ret = def;
	TAILQ_INIT(&params);
	if (query && (strstr(query, "%00") || evhttp_parse_query_str(query, &params) < 0)) {
		snprintf(reason, EVENT_REASON_MAX, "malformed query string");
		evhttp_clear_headers(&params);
		return -EINVAL;
	}
	TAILQ_FOREACH(kv, &params, next)
	{
		if (strcmp(kv->key, "days") != 0 || r == 1) {
			snprintf(reason, EVENT_REASON_MAX,
				 "unknown or repeated parameter (only days)");
			r = -EINVAL;
			break;
		}
		if (parse_uint(kv->value, 1, STORE_HISTORY_DAYS_MAX, ret) < 0) {
			snprintf(reason, EVENT_REASON_MAX, "days: expected 1 to %d",
				 STORE_HISTORY_DAYS_MAX);
			r = -EINVAL;
			break;
		}
		r = 1;
	}
	evhttp_clear_headers(&params);
	return r < 0 ? r : 0;
}

static int lookup(const char *const *names, size_t n, const char *value)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], value) == 0)
			return (int)i;
	return -1;
}

int api_parse_terminal_query(const char *query, struct store_terminal_query *ret,
			     char reason[static EVENT_REASON_MAX])
{
	static const char *const names[] = {"page", "limit", "sort",   "dir", "status",
					    "q",    "check", "clause", "day"};
	static const char *const sorts[_STORE_SORT_MAX] = {
	    [STORE_SORT_PROBLEM] = "problem",	      [STORE_SORT_NAME] = "id",
	    [STORE_SORT_STATUS] = "status",	      [STORE_SORT_LAST_SEEN] = "last_seen",
	    [STORE_SORT_FAILING] = "failing",	      [STORE_SORT_GAPS] = "gaps",
	    [STORE_SORT_DESCRIPTION] = "description",
	};
	static const char *const statuses[_STORE_STATUS_MAX] = {
	    [STORE_STATUS_ALL] = "all",
	    [STORE_STATUS_NONCOMPLIANT] = "noncompliant",
	    [STORE_STATUS_STALE] = "stale",
	    [STORE_STATUS_PROBLEM] = "problem",
	    [STORE_STATUS_COMPLIANT] = "compliant",
	    [STORE_STATUS_UNKNOWN] = "unknown",
	};
	struct evkeyvalq params;
	struct evkeyval *kv;
	struct store_terminal_query q = {.limit = API_LIMIT_DEFAULT};
	unsigned seen = 0, page = 1;
	int r = 0, i;

	TAILQ_INIT(&params);
	if (query && strstr(query, "%00")) {
		snprintf(reason, EVENT_REASON_MAX, "query string contains %%00 (a NUL byte)");
		return -EINVAL;
	}
	if (query && evhttp_parse_query_str(query, &params) < 0) {
		snprintf(reason, EVENT_REASON_MAX, "malformed query string");
		evhttp_clear_headers(&params);
		return -EINVAL;
	}
	TAILQ_FOREACH(kv, &params, next)
	{
		i = lookup(names, ELEMENTSOF(names), kv->key);
		if (i < 0) {
			unknown_parameter(kv->key, reason);
			r = -EINVAL;
			break;
		}
		if (seen & (1u << i)) {
			snprintf(reason, EVENT_REASON_MAX, "parameter \"%s\" given twice",
				 names[i]);
			r = -EINVAL;
			break;
		}
		seen |= 1u << i;
		switch (i) {
		case 0:
			if (parse_uint(kv->value, 1, 1000000, &page) < 0) {
				snprintf(reason, EVENT_REASON_MAX, "page: expected 1 or more");
				r = -EINVAL;
			}
			break;
		case 1:
			if (parse_uint(kv->value, 1, API_LIMIT_MAX, &q.limit) < 0) {
				snprintf(reason, EVENT_REASON_MAX, "limit: expected 1 to %d",
					 API_LIMIT_MAX);
				r = -EINVAL;
			}
			break;
		case 2:
			if ((i = lookup(sorts, ELEMENTSOF(sorts), kv->value)) < 0) {
				snprintf(reason, EVENT_REASON_MAX,
					 "sort: expected problem, id, status, last_seen, failing,"
					 " gaps or description");
				r = -EINVAL;
			} else
				q.sort = (enum store_sort)i;
			break;
		case 3:
			if (strcmp(kv->value, "asc") != 0 && strcmp(kv->value, "desc") != 0) {
				snprintf(reason, EVENT_REASON_MAX, "dir: expected asc or desc");
				r = -EINVAL;
			} else
				q.desc = kv->value[0] == 'd';
			break;
		case 4:
			if ((i = lookup(statuses, ELEMENTSOF(statuses), kv->value)) < 0) {
				snprintf(reason, EVENT_REASON_MAX,
					 "status: expected all, noncompliant, stale, problem,"
					 " compliant or unknown");
				r = -EINVAL;
			} else
				q.status = (enum store_status_filter)i;
			break;
		case 5:
			if (strlen(kv->value) >= sizeof(q.search) ||
			    !utf8_valid(kv->value, strlen(kv->value))) {
				snprintf(reason, EVENT_REASON_MAX,
					 "q: expected UTF-8 text of at most %zu bytes",
					 sizeof(q.search) - 1);
				r = -EINVAL;
			} else
				snprintf(q.search, sizeof(q.search), "%s", kv->value);
			break;
		case 6:
			/* check ids look like terminal ids: [A-Za-z0-9._-] */
			if (!event_terminal_id_valid(kv->value)) {
				snprintf(reason, EVENT_REASON_MAX, "check: not a valid check id");
				r = -EINVAL;
			} else
				snprintf(q.check, sizeof(q.check), "%s", kv->value);
			break;
		case 7:
			if (!event_terminal_id_valid(kv->value)) {
				snprintf(reason, EVENT_REASON_MAX, "clause: not a valid clause id");
				r = -EINVAL;
			} else
				snprintf(q.clause, sizeof(q.clause), "%s", kv->value);
			break;
		case 8:
			if (api_parse_day(kv->value, &q.clause_day) < 0) {
				snprintf(reason, EVENT_REASON_MAX,
					 "day: expected a day like 2026-04-01");
				r = -EINVAL;
			}
			break;
		default:
			break;
		}
		if (r < 0)
			break;
	}
	evhttp_clear_headers(&params);
	if (r < 0)
		return r;
	/* a clause's failures are a day's: one without the other means nothing */
	if (!!(seen & (1u << 7)) != !!(seen & (1u << 8))) {
		snprintf(reason, EVENT_REASON_MAX, "clause and day go together");
		return -EINVAL;
	}
	q.offset = (page - 1) * q.limit;
	if (page - 1 > UINT_MAX / q.limit) {
		snprintf(reason, EVENT_REASON_MAX, "page: too far");
		return -EINVAL;
	}
	*ret = q;
	return 0;
}

/* ---- CSV ---- */

void api_csv_cell(struct evbuffer *out, const char *text)
{
	const char *p = text ? text : "";

	evbuffer_add(out, "\"", 1);
	if (*p == '=' || *p == '+' || *p == '-' || *p == '@' || *p == '\t' || *p == '\r')
		evbuffer_add(out, "'", 1);
	for (;;) {
		const char *q = strchr(p, '"');
		if (!q) {
			evbuffer_add(out, p, strlen(p));
			break;
		}
		evbuffer_add(out, p, (size_t)(q - p) + 1);
		evbuffer_add(out, "\"", 1);
		p = q + 1;
	}
	evbuffer_add(out, "\"", 1);
}

/* "parent.key=value " (parent may be NULL); keys are written whole, the summary is cut later. */
static void summary_scalar(FILE *f, const char *parent, const char *key, json_t *v)
{
	const char *dot = parent ? "." : "";

	parent = parent ? parent : "";
	switch (json_typeof(v)) {
	case JSON_STRING:
		fprintf(f, "%s%s%s=%s ", parent, dot, key, json_string_value(v));
		break;
	case JSON_INTEGER:
		fprintf(f, "%s%s%s=%lld ", parent, dot, key, (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		fprintf(f, "%s%s%s=%g ", parent, dot, key, json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		fprintf(f, "%s%s%s=%s ", parent, dot, key, json_is_true(v) ? "yes" : "no");
		break;
	case JSON_NULL:
	case JSON_OBJECT:
	case JSON_ARRAY:
		break;
	}
}

char *api_event_summary(const char *kind, const char *data_json)
{
	json_t *data = json_loads(data_json ? data_json : "{}", 0, NULL);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *key;
	json_t *v;

	if (!f) {
		json_decref(data);
		return NULL;
	}
	if (json_is_object(data) && kind && strcmp(kind, "compliance") == 0) {
		json_t *checks = json_object_get(data, "checks"), *c;
		size_t i, failing = 0;
		json_array_foreach(checks, i, c)
		{
			const char *status = json_string_value(json_object_get(c, "status"));
			if (status &&
			    (strcmp(status, "fail") == 0 || strcmp(status, "error") == 0)) {
				fprintf(f, "%s%s %s", failing ? ", " : "",
					json_string_value(json_object_get(c, "id")) ?: "?", status);
				failing++;
			}
		}
		if (!failing)
			fprintf(f, "all %zu checks pass", json_array_size(checks));
		if (json_is_string(json_object_get(data, "policy_hash")))
			fprintf(f, "; policy %s",
				json_string_value(json_object_get(data, "policy_hash")));
	} else if (json_is_object(data)) {
		json_object_foreach(data, key, v)
		{
			if (json_is_object(v)) {
				const char *k2;
				json_t *v2;
				json_object_foreach(v, k2, v2) summary_scalar(f, key, k2, v2);
			} else
				summary_scalar(f, NULL, key, v);
		}
	}
	json_decref(data);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	while (len > 0 && buf[len - 1] == ' ')
		buf[--len] = 0;
	/* one line: a cell with a newline is legal CSV but reads badly in an audit sheet */
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	/* cut between characters: a cut inside one makes the whole export undecodable */
	if (len > SUMMARY_MAX)
		strcpy(buf + utf8_truncate(buf, len, SUMMARY_MAX - 3), "...");
	return buf;
}

struct export_state {
	struct worker *w;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	bool terminals; /* the terminal list, else events */
	bool hide_personal;
	struct store_filter filter;
	struct store_terminal_query query;
	struct store_view view;
	char *cert_expiring; /* view's, owned */
	uint64_t last_id;    /* the last event row written */
	int64_t last_ts;
	struct evbuffer *out;
};

/* The Japanese names of the event kinds (the dashboard's, collector/web/app.js), so that the
 * sheet reads like the screen; the kind's id follows in parentheses. */
static struct store_view view_now(struct worker *w);

static const char *kind_ja(const char *kind)
{
	static const char *const names[][2] = {
	    {"usb.blocked", "USB 遮断"},	   {"usb.allowed", "USB 許可"},
	    {"usb.removed", "USB 取り外し"},	   {"auth.success", "ログイン成功"},
	    {"auth.failure", "ログイン失敗"},	   {"auth.replay", "コード再利用の拒否"},
	    {"auth.locked", "ロックアウト"},	   {"agent.started", "エージェント起動"},
	    {"agent.stopped", "エージェント停止"}, {"spool.dropped", "スプール溢れ"},
	    {"compliance", "チェック報告"},
	};
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (kind && strcmp(names[i][0], kind) == 0)
			return names[i][1];
	return NULL;
}

static int export_row(const struct store_row *row, void *userdata)
{
	struct export_state *st = userdata;
	struct evbuffer *out = st->out;
	char num[32], ts[32];
	_cleanup_free_ char *redacted = NULL;
	const char *data = row->data;
	if (st->hide_personal) {
		json_t *d = json_loads(row->data ? row->data : "{}", 0, NULL);
		auth_redact_event(row->kind, d);
		redacted = d ? json_dumps(d, JSON_COMPACT) : NULL;
		json_decref(d);
		data = redacted ? redacted : "{}";
	}
	_cleanup_free_ char *summary = api_event_summary(row->kind, data);
	_cleanup_free_ char *kind = NULL;
	json_t *clause = json_loads(row->clause ? row->clause : "[]", 0, NULL), *c;
	size_t i;
	char *clauses = NULL;
	size_t clen = 0;
	FILE *f = open_memstream(&clauses, &clen);

	if (f) {
		json_array_foreach(clause, i, c)
		    fprintf(f, "%s%s", i ? " " : "", json_string_value(c) ?: "");
		fclose(f);
	}
	json_decref(clause);
	if (kind_ja(row->kind) && asprintf(&kind, "%s (%s)", kind_ja(row->kind), row->kind) < 0)
		kind = NULL;

	api_csv_cell(out, row->terminal);
	evbuffer_add(out, ",", 1);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)row->seq);
	api_csv_cell(out, num);
	evbuffer_add(out, ",", 1);
	event_format_ts(row->ts_ms, ts);
	api_csv_cell(out, ts);
	evbuffer_add(out, ",", 1);
	event_format_ts(row->received_ms, ts);
	api_csv_cell(out, ts);
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, kind ? kind : row->kind);
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, clauses ? clauses : "");
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, summary ? summary : "");
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, data);
	evbuffer_add(out, "\r\n", 2);
	free(clauses);
	st->last_id = row->id;
	st->last_ts = row->ts_ms;
	return 0;
}

static void int_cell(struct evbuffer *out, json_t *v)
{
	char num[32];
	snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
	api_csv_cell(out, num);
}

/* One terminal as on the list: id, description, status, failing checks, ... */
static void export_terminal(struct evbuffer *out, json_t *t)
{
	static const char *const status_ja[][2] = {
	    {"noncompliant", "非準拠"}, {"compliant", "準拠"}, {"unknown", "未報告"}};
	const char *status = json_string_value(json_object_get(t, "status"));
	char *failing = NULL;
	size_t flen = 0, i;
	FILE *f = open_memstream(&failing, &flen);
	json_t *c;

	if (f) {
		json_array_foreach(json_object_get(t, "failing"), i, c) fprintf(
		    f, "%s%s (%s)", i ? " " : "", json_string_value(json_object_get(c, "id")) ?: "",
		    json_string_value(json_object_get(c, "since")) ?: "");
		fclose(f);
	}
	for (i = 0; i < ELEMENTSOF(status_ja); i++)
		if (status && strcmp(status, status_ja[i][0]) == 0)
			status = status_ja[i][1];
	api_csv_cell(out, json_string_value(json_object_get(t, "id")));
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, json_string_value(json_object_get(t, "description")));
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, status);
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, json_is_true(json_object_get(t, "stale")) ? "報告途絶" : "");
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, json_string_value(json_object_get(t, "last_seen")));
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, failing ? failing : "");
	evbuffer_add(out, ",", 1);
	int_cell(out, json_object_get(t, "usb_blocked_24h"));
	evbuffer_add(out, ",", 1);
	int_cell(out, json_object_get(t, "auth_failures_24h"));
	evbuffer_add(out, ",", 1);
	int_cell(out, json_object_get(t, "locked_24h"));
	evbuffer_add(out, ",", 1);
	int_cell(out, json_object_get(t, "gaps_unannounced"));
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, json_is_true(json_object_get(t, "clock_drift")) ? "ずれ" : "");
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, json_string_value(json_object_get(t, "policy_hash")));
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, json_is_true(json_object_get(t, "cert_expiring")) ? "期限切れ間近" : "");
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, json_is_true(json_object_get(t, "totp_double_use")) ? "二重使用" : "");
	evbuffer_add(out, "\r\n", 2);
	free(failing);
}

static void export_close_cb(struct evhttp_connection *evcon, void *arg);

static void export_finish(struct export_state *st)
{
	if (st->evcon)
		evhttp_connection_set_closecb(st->evcon, NULL, NULL);
	evhttp_send_reply_end(st->req);
	free(st->cert_expiring);
	free(st);
}

/* One chunk of EXPORT_CHUNK_ROWS rows per call: the next is read from the store only once the
 * previous one left for the socket, so a large export never sits in memory whole. */
static void export_next(struct evhttp_connection *evcon, void *arg)
{
	struct export_state *st = arg;
	unsigned n = 0;
	int r;

	st->out = evbuffer_new();
	if (!st->out) {
		export_finish(st);
		return;
	}
	if (st->terminals) {
		_cleanup_(json_decrefp) json_t *page = NULL;
		json_t *t;
		size_t i;
		r = store_terminals_json(st->w->store, &st->view, &st->query, &page);
		if (r >= 0) {
			json_array_foreach(json_object_get(page, "terminals"), i, t)
			    export_terminal(st->out, t);
			n = (unsigned)json_array_size(json_object_get(page, "terminals"));
			st->query.offset += n;
		}
	} else {
		uint64_t before = st->last_id;
		uint64_t last = 0;
		r = store_events_foreach(st->w->store, &st->filter, export_row, st, &last);
		n = st->last_id != before ? 1 : 0;
		if (st->filter.newest) {
			st->filter.before_ts = st->last_ts;
			st->filter.before_id = st->last_id;
		} else
			st->filter.after = st->last_id;
	}
	if (r < 0) {
		server_log(LOG_ERR, "export: %s", strerror(-r));
		/* the client sees a truncated file: chunked encoding ends without the last chunk */
		evbuffer_free(st->out);
		export_finish(st);
		return;
	}
	if (n == 0) {
		evbuffer_free(st->out);
		export_finish(st);
		return;
	}
	evhttp_send_reply_chunk_with_cb(st->req, st->out, export_next, st);
	evbuffer_free(st->out);
	st->out = NULL;
}

static void export_abort_cb(evutil_socket_t fd, short what, void *arg)
{
	struct export_state *st = arg;
	/* the connection is gone; the request is ours now and reply_end frees it */
	evhttp_send_reply_end(st->req);
	free(st->cert_expiring);
	free(st);
}

static void export_close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct export_state *st = arg;
	struct timeval zero = {0};

	st->evcon = NULL;
	event_base_once(st->w->base, -1, EV_TIMEOUT, export_abort_cb, st, &zero);
}

/* UTF-8 with a BOM and CRLF line ends: what Excel opens as UTF-8 with a double click. */
static const char events_header[] = "\xEF\xBB\xBF"
				    "端末,通番,発生時刻,受信時刻,種別,条項,概要,データ\r\n";
static const char terminals_header[] =
    "\xEF\xBB\xBF"
    "端末,説明,状態,報告途絶,最終受信,不合格のチェック（開始）,USB遮断 24h,ログイン失敗 24h,"
    "ロックアウト 24h,未通知の欠番,時刻,ポリシー,証明書,確認コード\r\n";

static void export_csv(struct evhttp_request *req, struct worker *w, const char *query,
		       bool terminals, bool hide_personal)
{
	struct export_state *st;
	char reason[EVENT_REASON_MAX];
	struct store_filter f = {0};
	struct store_terminal_query q = {0};
	struct evbuffer *out;

	if (terminals ? api_parse_terminal_query(query, &q, reason) < 0
		      : api_parse_filter(query, &f, reason) < 0) {
		api_send_error(req, 400, reason);
		return;
	}
	/* exactly the filtered list, every page of it */
	f.limit = EXPORT_CHUNK_ROWS;
	q.offset = 0;
	q.limit = EXPORT_CHUNK_ROWS / 4;
	st = calloc(1, sizeof(*st));
	out = evbuffer_new();
	if (!st || !out) {
		free(st);
		evbuffer_free(out);
		api_send_error(req, 503, "out of memory");
		return;
	}
	st->w = w;
	st->req = req;
	st->terminals = terminals;
	st->hide_personal = hide_personal;
	st->filter = f;
	st->query = q;
	st->view = view_now(w);
	/* the export outlives the worker's list, which the next request may replace */
	st->cert_expiring = st->view.cert_expiring ? strdup(st->view.cert_expiring) : NULL;
	st->view.cert_expiring = st->cert_expiring;
	st->evcon = evhttp_request_get_connection(req);
	common_headers(req, "text/csv; charset=utf-8", true);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Disposition",
			  terminals ? "attachment; filename=\"mynaguard-terminals.csv\""
				    : "attachment; filename=\"mynaguard-events.csv\"");
	evhttp_connection_set_closecb(st->evcon, export_close_cb, st);
	evhttp_send_reply_start(req, 200, "OK");
	if (terminals)
		evbuffer_add(out, terminals_header, sizeof(terminals_header) - 1);
	else
		evbuffer_add(out, events_header, sizeof(events_header) - 1);
	evhttp_send_reply_chunk_with_cb(req, out, export_next, st);
	evbuffer_free(out);
}

/* ---- static page ---- */

static const struct web_asset *find_asset(const char *path)
{
	if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
		path = "/index.html";
	for (size_t i = 0; i < web_assets_n; i++)
		if (strcmp(web_assets[i].path, path) == 0)
			return &web_assets[i];
	return NULL;
}

static void send_asset(struct evhttp_request *req, struct worker *w, const struct web_asset *a)
{
	struct evbuffer *buf = evbuffer_new();

	if (!buf) {
		api_send_error(req, 503, "out of memory");
		return;
	}
	if (w->c->cfg->web_root) {
		_cleanup_free_ char *text = NULL;
		_cleanup_free_ char *file = NULL;
		size_t len;
		if (asprintf(&file, "%s%s", w->c->cfg->web_root, a->path) < 0 ||
		    fileio_read_file(AT_FDCWD, file, WEB_FILE_MAX, &text, &len) < 0) {
			evbuffer_free(buf);
			api_send_error(req, 404, "not found");
			return;
		}
		evbuffer_add(buf, text, len);
	} else
		evbuffer_add_reference(buf, a->data, a->len, NULL, NULL);
	common_headers(req, a->content_type, false);
	evhttp_send_reply(req, 200, "OK", buf);
	evbuffer_free(buf);
}

/* ---- dispatch ---- */

/* The view of now; the list of certificates near expiry ([alerts] cert_warning, as the
 * cert_expiry alert) is the worker's, read again at most once a second. */
static struct store_view view_now(struct worker *w)
{
	int64_t now = server_now_ms();

	if (!w->cert_expiring || now - w->cert_expiring_ms >= 1000 || now < w->cert_expiring_ms) {
		char *list =
		    enroll_cert_expiring_json(now, (int64_t)w->c->cfg->alert_cert_warning * 1000);
		if (list) {
			free(w->cert_expiring);
			w->cert_expiring = list;
			w->cert_expiring_ms = now;
		}
	}
	return (struct store_view){
	    .now_ms = now,
	    .default_interval_ms = (int64_t)w->c->cfg->report_interval * 1000,
	    .drift_ms = (int64_t)w->c->cfg->clock_drift * 1000,
	    .cert_expiring = w->cert_expiring,
	};
}

static void store_failed(struct evhttp_request *req, int r)
{
	if (r == -EOPNOTSUPP) {
		api_send_error(req, 501,
			       "not available on the PostgreSQL store yet (docs/postgresql.md)");
		return;
	}
	server_log(LOG_ERR, "dashboard: store query failed: %s", strerror(-r));
	api_send_error(req, 503, "the store cannot answer now");
}

/* GET /v1/retention: the disposal settings, this process's last run and the oldest event kept
 * per kind (docs/evidence.md). */
static json_t *ts_json_ms(int64_t ms)
{
	char buf[32];
	event_format_ts(ms, buf);
	return json_string(buf);
}

static int retention_json(struct worker *w, json_t **ret)
{
	const struct collector_config *cfg = w->c->cfg;
	struct store_view v = view_now(w);
	struct store_stats stats;
	int64_t last = atomic_load(&metrics.retention_last_run_ms);
	json_t *hold = json_array(), *kinds = json_object(), *oldest = json_object();
	json_t *rules = json_object();
	int r;

	r = store_stats(w->store, &v, &stats);
	for (size_t i = 0; r >= 0 && hold && i < cfg->n_retention_hold; i++)
		json_array_append_new(hold, json_string(cfg->retention_hold[i]));
	for (size_t i = 0; r >= 0 && rules && i < cfg->n_retention_rules; i++)
		json_object_set_new(rules, cfg->retention_rules[i].pattern,
				    json_integer((json_int_t)cfg->retention_rules[i].period));
	for (int k = 0; r >= 0 && kinds && oldest && k < _EVENT_KIND_MAX; k++) {
		const char *name = event_kind_name((enum event_kind)k);
		json_t *o =
		    stats.oldest_ms[k] != INT64_MIN ? ts_json_ms(stats.oldest_ms[k]) : json_null();
		if (stats.oldest_ms[k] != INT64_MIN)
			json_object_set(oldest, name, o);
		json_object_set_new(kinds, name,
				    json_pack("{s:I, s:o}", "period_s",
					      (json_int_t)cfg->retention_kind[k], "oldest", o));
	}
	if (r < 0 || !hold || !kinds || !oldest || !rules) {
		json_decref(hold);
		json_decref(kinds);
		json_decref(oldest);
		json_decref(rules);
		return r < 0 ? r : -ENOMEM;
	}
	*ret = json_pack("{s:I, s:o, s:o, s:o, s:o, s:I, s:I, s:o}", "period_s",
			 (json_int_t)cfg->retention, "rules", rules, "kinds", kinds, "hold", hold,
			 "last_run", last ? ts_json_ms(last) : json_null(), "last_disposed",
			 (json_int_t)atomic_load(&metrics.retention_last_disposed), "deleted_total",
			 (json_int_t)atomic_load(&metrics.retention_deleted), "oldest", oldest);
	return *ret ? 0 : -ENOMEM;
}

/* GET /v1/verify[?terminal=ID]: the hash chains recomputed, against the last signed heads when
 * [evidence] names a key (docs/evidence.md). */
static int verify_json(struct worker *w, const char *query, json_t **ret,
		       char reason[static EVENT_REASON_MAX])
{
	struct evkeyvalq params;
	struct evkeyval *kv;
	const char *terminal = NULL;
	struct evidence_verify v;
	char err[EVIDENCE_ERROR_MAX] = "";
	int r = 0;

	TAILQ_INIT(&params);
	if (query && strstr(query, "%00")) {
		snprintf(reason, EVENT_REASON_MAX, "query string contains %%00 (a NUL byte)");
		return -EINVAL;
	}
	if (query && evhttp_parse_query_str(query, &params) < 0) {
		snprintf(reason, EVENT_REASON_MAX, "malformed query string");
		evhttp_clear_headers(&params);
		return -EINVAL;
	}
	TAILQ_FOREACH(kv, &params, next)
	{
		if (strcmp(kv->key, "terminal") != 0 || terminal) {
			snprintf(reason, EVENT_REASON_MAX,
				 "unknown or repeated parameter (only terminal)");
			r = -EINVAL;
			break;
		}
		terminal = kv->value;
		if (!event_terminal_id_valid(terminal)) {
			snprintf(reason, EVENT_REASON_MAX, "terminal: not a valid terminal id");
			r = -EINVAL;
			break;
		}
	}
	if (r >= 0)
		r = evidence_verify(w->store, w->c->cfg, server_now_ms(), terminal, false, &v, err);
	evhttp_clear_headers(&params);
	if (r == -ENOENT)
		snprintf(reason, EVENT_REASON_MAX, "no such terminal");
	if (r < 0) {
		if (err[0])
			server_log(LOG_ERR, "dashboard: verify: %s", err);
		return r;
	}
	*ret = json_pack("{s:b, s:I, s:I, s:I, s:I}", "ok", !v.v.broken, "terminals",
			 (json_int_t)v.v.terminals, "events", (json_int_t)v.v.events, "anchored",
			 (json_int_t)v.v.anchored, "tombstones", (json_int_t)v.v.tombstones);
	if (*ret && v.keyed)
		json_object_set_new(*ret, "signed",
				    json_pack("{s:o, s:I, s:I, s:I}", "at",
					      v.signed_at ? ts_json_ms(v.signed_at) : json_null(),
					      "heads", (json_int_t)v.signed_heads, "checked",
					      (json_int_t)v.v.heads_checked, "disposed",
					      (json_int_t)v.v.heads_disposed));
	if (*ret && v.v.broken)
		json_object_set_new(*ret, "broken",
				    json_pack("{s:s, s:I, s:s}", "terminal", v.v.terminal, "seq",
					      (json_int_t)v.v.seq, "reason", v.v.reason));
	evidence_verify_done(&v);
	return *ret ? 0 : -ENOMEM;
}

/* "ID/history" → ID */
static bool history_path(const char *rest, char *ret, size_t n)
{
	const char *slash = strchr(rest, '/');
	if (!slash || strcmp(slash, "/history") != 0 || (size_t)(slash - rest) >= n)
		return false;
	memcpy(ret, rest, (size_t)(slash - rest));
	ret[slash - rest] = 0;
	return true;
}

void api_handle(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	struct conn *conn = server_conn(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct store_view v;
	char terminal[EVENT_TERMINAL_MAX + 1];
	const struct web_asset *asset;
	json_t *body = NULL;
	char reason[EVENT_REASON_MAX];
	struct auth_principal who;
	int r;

	server_request_begin(req, conn);
	atomic_fetch_add(&metrics.dashboard_requests, 1);
	if (server_check_framing(evhttp_request_get_input_headers(req),
				 evhttp_request_get_command(req), reason) < 0) {
		server_refuse_framing(req, reason);
		return;
	}
	if (!path) {
		api_send_error(req, 400, "bad request");
		return;
	}
	if (fleet_api_path(path)) { /* read-write, with its own auth_request() per method */
		fleet_api_handle(req, w);
		return;
	}
	if (review_api_path(path)) { /* review, evidence, report: own token check */
		review_api_handle(req, w);
		return;
	}
	if (account_api_path(path)) { /* the administrators' account page: own auth_request() */
		account_api_handle(req, w);
		return;
	}
	if (strcmp(path, "/v1/session") == 0) { /* login, who am I, logout */
		auth_session_handle(req, w);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		api_send_error(req, 405, "read-only: use GET");
		return;
	}
	asset = find_asset(path);
	if (asset) {
		send_asset(req, w, asset);
		return;
	}
	if (strncmp(path, "/v1/", 4) != 0 && strcmp(path, "/metrics") != 0) {
		api_send_error(req, 404, "not found");
		return;
	}
	if (auth_request(req, w, AUTH_AUDITOR, false, &who) < 0)
		return;

	v = view_now(w);
	if (strcmp(path, "/v1/terminals") == 0) {
		struct store_terminal_query q;
		if (api_parse_terminal_query(query, &q, reason) < 0) {
			api_send_error(req, 400, reason);
			return;
		}
		r = store_terminals_json(w->store, &v, &q, &body);
	} else if (strncmp(path, "/v1/terminals/", 14) == 0 &&
		   history_path(path + 14, terminal, sizeof(terminal))) {
		unsigned days;
		if (!event_terminal_id_valid(terminal)) {
			api_send_error(req, 404, "no such terminal");
			return;
		}
		if (parse_days(query, 90, &days, reason) < 0) {
			api_send_error(req, 400, reason);
			return;
		}
		r = store_history_json(w->store, &v, terminal, days, &body);
		if (r == -ENOENT) {
			api_send_error(req, 404, "no such terminal");
			return;
		}
	} else if (strcmp(path, "/v1/clauses") == 0 || strcmp(path, "/v1/activity") == 0) {
		unsigned days;
		if (parse_days(query, 30, &days, reason) < 0) {
			api_send_error(req, 400, reason);
			return;
		}
		r = path[4] == 'c'
			? store_clauses_json(w->store, &v, days, &body)
			: store_activity_json(w->store, &v, days, API_TOP_TERMINALS, &body);
	} else if (strncmp(path, "/v1/terminals/", 14) == 0) {
		const char *id = path + 14;
		if (!event_terminal_id_valid(id)) {
			api_send_error(req, 404, "no such terminal");
			return;
		}
		r = store_terminal_json(w->store, &v, id, API_RECENT_EVENTS, &body);
		if (r == -ENOENT) {
			api_send_error(req, 404, "no such terminal");
			return;
		}
		if (r >= 0)
			enroll_annotate_terminal(id, body); /* cert_not_after */
	} else if (strcmp(path, "/v1/events") == 0) {
		struct store_filter f;
		if (api_parse_filter(query, &f, reason) < 0) {
			api_send_error(req, 400, reason);
			return;
		}
		r = store_events_json(w->store, &f, &body);
	} else if (strcmp(path, "/v1/alerts") == 0) {
		r = alert_json(who.hide_personal, &body);
	} else if (strcmp(path, "/v1/retention") == 0) {
		r = retention_json(w, &body);
	} else if (strcmp(path, "/v1/verify") == 0) {
		r = verify_json(w, query, &body, reason);
		if (r == -EINVAL || r == -ENOENT) {
			api_send_error(req, r == -EINVAL ? 400 : 404, reason);
			return;
		}
	} else if (strcmp(path, "/v1/export.csv") == 0) {
		export_csv(req, w, query, false, who.hide_personal);
		return;
	} else if (strcmp(path, "/v1/terminals.csv") == 0) {
		export_csv(req, w, query, true, who.hide_personal);
		return;
	} else if (strcmp(path, "/metrics") == 0) {
		struct store_stats stats;
		_cleanup_free_ char *text = NULL;
		size_t len;
		struct evbuffer *buf;

		r = store_stats(w->store, &v, &stats);
		if (r < 0) {
			store_failed(req, r);
			return;
		}
		r = metrics_render(&stats, w->c->cfg->retention_kind, &text, &len);
		buf = r >= 0 ? evbuffer_new() : NULL;
		if (!buf) {
			api_send_error(req, 503, "out of memory");
			return;
		}
		evbuffer_add(buf, text, len);
		common_headers(req, "text/plain; version=0.0.4; charset=utf-8", true);
		evhttp_send_reply(req, 200, "OK", buf);
		evbuffer_free(buf);
		return;
	} else {
		api_send_error(req, 404, "not found");
		return;
	}
	if (r < 0) {
		store_failed(req, r);
		return;
	}
	if (who.hide_personal)
		auth_redact(body);
	api_send_json(req, 200, body);
	json_decref(body);
}
