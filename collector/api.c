/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the dashboard listener: read-only JSON API, CSV export, metrics and the web
 * page, behind a bearer token (static page assets excepted: they hold no data). */
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

#include "fileio.h"
#include "macro.h"
#include "fleet.h"
#include "metrics.h"
#include "parse.h"
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

static void send_json(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer *buf = server_json_buffer(body);

	common_headers(req, "application/json", true);
	evhttp_send_reply(req, status, NULL, buf);
	evbuffer_free(buf);
}

static void send_error(struct evhttp_request *req, int status, const char *reason)
{
	json_t *body = server_error_json(reason);
	send_json(req, status, body);
	json_decref(body);
}

/* ---- query strings ---- */

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
		static const char *const names[] = {"after", "limit", "terminal",
						    "kind",  "since", "until"};
		unsigned i;

		for (i = 0; i < ELEMENTSOF(names); i++)
			if (strcmp(kv->key, names[i]) == 0)
				break;
		if (i == ELEMENTSOF(names)) {
			size_t klen = strlen(kv->key);
			/* the reason goes into a JSON string: whole characters only */
			if (utf8_valid(kv->key, klen))
				snprintf(reason, EVENT_REASON_MAX, "unknown parameter \"%.*s\"",
					 (int)utf8_truncate(kv->key, klen, 40), kv->key);
			else
				snprintf(reason, EVENT_REASON_MAX, "unknown parameter (not UTF-8)");
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
			if (kv->value[0] && parse_uint64(kv->value, 0, INT64_MAX, &f.after) < 0) {
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
		default:
			break;
		}
		if (r < 0)
			break;
	}
	evhttp_clear_headers(&params);
	if (r < 0)
		return r;
	*ret = f;
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
	struct store_filter filter;
	bool done;
};

static int export_row(const struct store_row *row, void *userdata)
{
	struct evbuffer *out = userdata;
	char num[32], ts[32];
	_cleanup_free_ char *summary = api_event_summary(row->kind, row->data);
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
	api_csv_cell(out, row->kind);
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, clauses ? clauses : "");
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, summary ? summary : "");
	evbuffer_add(out, ",", 1);
	api_csv_cell(out, row->data);
	evbuffer_add(out, "\r\n", 2);
	free(clauses);
	return 0;
}

static void export_close_cb(struct evhttp_connection *evcon, void *arg);

static void export_finish(struct export_state *st)
{
	if (st->evcon)
		evhttp_connection_set_closecb(st->evcon, NULL, NULL);
	evhttp_send_reply_end(st->req);
	free(st);
}

static void export_next(struct evhttp_connection *evcon, void *arg)
{
	struct export_state *st = arg;
	struct evbuffer *out = evbuffer_new();
	uint64_t last = 0;
	int r;

	if (!out) {
		export_finish(st);
		return;
	}
	r = store_events_foreach(st->w->store, &st->filter, export_row, out, &last);
	if (r < 0) {
		server_log(LOG_ERR, "export: %s", strerror(-r));
		/* the client sees a truncated file: chunked encoding ends without the last chunk */
		evbuffer_free(out);
		export_finish(st);
		return;
	}
	if (last == 0) {
		evbuffer_free(out);
		export_finish(st);
		return;
	}
	st->filter.after = last;
	evhttp_send_reply_chunk_with_cb(st->req, out, export_next, st);
	evbuffer_free(out);
}

static void export_abort_cb(evutil_socket_t fd, short what, void *arg)
{
	struct export_state *st = arg;
	/* the connection is gone; the request is ours now and reply_end frees it */
	evhttp_send_reply_end(st->req);
	free(st);
}

static void export_close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct export_state *st = arg;
	struct timeval zero = {0};

	st->evcon = NULL;
	event_base_once(st->w->base, -1, EV_TIMEOUT, export_abort_cb, st, &zero);
}

static void export_csv(struct evhttp_request *req, struct worker *w, const char *query)
{
	struct export_state *st;
	char reason[EVENT_REASON_MAX];
	struct store_filter f;
	struct evbuffer *out;
	static const char header[] = "\xEF\xBB\xBF"
				     "terminal,seq,ts,received_at,kind,clause,summary,data\r\n";

	if (api_parse_filter(query, &f, reason) < 0) {
		send_error(req, 400, reason);
		return;
	}
	f.limit = EXPORT_CHUNK_ROWS;
	st = calloc(1, sizeof(*st));
	out = evbuffer_new();
	if (!st || !out) {
		free(st);
		evbuffer_free(out);
		send_error(req, 503, "out of memory");
		return;
	}
	st->w = w;
	st->req = req;
	st->filter = f;
	st->evcon = evhttp_request_get_connection(req);
	common_headers(req, "text/csv; charset=utf-8", true);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Disposition",
			  "attachment; filename=\"mynaguard-events.csv\"");
	evhttp_connection_set_closecb(st->evcon, export_close_cb, st);
	evhttp_send_reply_start(req, 200, "OK");
	evbuffer_add(out, header, sizeof(header) - 1);
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
		send_error(req, 503, "out of memory");
		return;
	}
	if (w->c->cfg->web_root) {
		_cleanup_free_ char *text = NULL;
		_cleanup_free_ char *file = NULL;
		size_t len;
		if (asprintf(&file, "%s%s", w->c->cfg->web_root, a->path) < 0 ||
		    fileio_read_file(AT_FDCWD, file, WEB_FILE_MAX, &text, &len) < 0) {
			evbuffer_free(buf);
			send_error(req, 404, "not found");
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

static struct store_view view_now(struct worker *w)
{
	return (struct store_view){
	    .now_ms = server_now_ms(),
	    .default_interval_ms = (int64_t)w->c->cfg->report_interval * 1000,
	    .drift_ms = (int64_t)w->c->cfg->clock_drift * 1000,
	};
}

static void store_failed(struct evhttp_request *req, int r)
{
	server_log(LOG_ERR, "dashboard: store query failed: %s", strerror(-r));
	send_error(req, 503, "the store cannot answer now");
}

void api_handle(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	struct conn *conn = server_conn(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct store_view v;
	const struct web_asset *asset;
	json_t *body = NULL;
	char reason[EVENT_REASON_MAX];
	int r;

	server_request_begin(req, conn);
	atomic_fetch_add(&metrics.dashboard_requests, 1);
	if (server_check_framing(evhttp_request_get_input_headers(req),
				 evhttp_request_get_command(req), reason) < 0) {
		server_refuse_framing(req, reason);
		return;
	}
	if (!path) {
		send_error(req, 400, "bad request");
		return;
	}
	if (fleet_api_path(path)) { /* read-write, with its own token check */
		fleet_api_handle(req, w);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		send_error(req, 405, "read-only: use GET");
		return;
	}
	asset = find_asset(path);
	if (asset) {
		send_asset(req, w, asset);
		return;
	}
	if (strncmp(path, "/v1/", 4) != 0 && strcmp(path, "/metrics") != 0) {
		send_error(req, 404, "not found");
		return;
	}
	if (!server_token_ok(
		w->c, evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"))) {
		atomic_fetch_add(&metrics.dashboard_unauthorized, 1);
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
				  "Bearer realm=\"mynaguard\"");
		send_error(req, 401, "a valid bearer token is required");
		return;
	}

	v = view_now(w);
	if (strcmp(path, "/v1/terminals") == 0) {
		r = store_terminals_json(w->store, &v, &body);
	} else if (strncmp(path, "/v1/terminals/", 14) == 0) {
		const char *id = path + 14;
		if (!event_terminal_id_valid(id)) {
			send_error(req, 404, "no such terminal");
			return;
		}
		r = store_terminal_json(w->store, &v, id, API_RECENT_EVENTS, &body);
		if (r == -ENOENT) {
			send_error(req, 404, "no such terminal");
			return;
		}
	} else if (strcmp(path, "/v1/events") == 0) {
		struct store_filter f;
		if (api_parse_filter(query, &f, reason) < 0) {
			send_error(req, 400, reason);
			return;
		}
		r = store_events_json(w->store, &f, &body);
	} else if (strcmp(path, "/v1/export.csv") == 0) {
		export_csv(req, w, query);
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
		r = metrics_render(&stats, &text, &len);
		buf = r >= 0 ? evbuffer_new() : NULL;
		if (!buf) {
			send_error(req, 503, "out of memory");
			return;
		}
		evbuffer_add(buf, text, len);
		common_headers(req, "text/plain; version=0.0.4; charset=utf-8", true);
		evhttp_send_reply(req, 200, "OK", buf);
		evbuffer_free(buf);
		return;
	} else {
		send_error(req, 404, "not found");
		return;
	}
	if (r < 0) {
		store_failed(req, r);
		return;
	}
	send_json(req, 200, body);
	json_decref(body);
}
