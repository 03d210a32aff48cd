/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the fleet endpoints (docs/fleet.md, "Endpoints"): GET /v1/policy on the
 * ingest listener, groups, bases, exceptions, requests and the media ledger on the dashboard
 * listener. Every change is an event of the collector itself (fleet.*). */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "fleet-internal.h"
#include "ingest.h"
#include "macro.h"
#include "metrics.h"
#include "server.h"
#include "secmem.h"
#include "totp_record.h"
#include "utf8.h"

#define REASON_MAX   512
#define MAX_SEGMENTS 5

/* ---- answers ---- */

/* Who the request being answered comes from (auth_request), set by fleet_api_handle on the
 * dashboard thread for the handlers below. */
static _Thread_local struct auth_principal current;

static void headers(struct evhttp_request *req, const char *type)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Cache-Control", "no-store");
}

/* Takes body. */
static void reply(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer *buf;

	if (current.hide_personal)
		auth_redact(body);
	buf = server_json_buffer(body);
	headers(req, "application/json");
	evhttp_send_reply(req, status, NULL, buf);
	if (buf)
		evbuffer_free(buf);
	json_decref(body);
}

static void reply_err(struct evhttp_request *req, int status, const char *fmt, ...) _printf_(3, 4);
static void reply_err(struct evhttp_request *req, int status, const char *fmt, ...)
{
	char reason[REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	reply(req, status, server_error_json(reason));
}

static void reply_store_failed(struct evhttp_request *req)
{
	reply_err(req, 503, "the store cannot answer now; see the collector's log");
}

static int64_t now_s(void)
{
	return server_now_ms() / 1000;
}

static json_t *time_json(int64_t s)
{
	char buf[32];

	event_format_ts(s * 1000, buf);
	buf[19] = 'Z'; /* whole seconds */
	buf[20] = 0;
	return json_string(buf);
}

static json_t *col_json(struct sqldb_stmt *st, int i)
{
	const char *t = fleet_col_text(st, i);
	return t ? json_string(t) : json_null();
}

static json_t *col_time(struct sqldb_stmt *st, int i)
{
	return sqldb_column_is_null(st, i) ? json_null() : time_json(sqldb_column_int64(st, i));
}

static bool name_valid(const char *s)
{
	size_t len = s ? strlen(s) : 0;

	if (len < 1 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    s[i]))
			return false;
	return true;
}

static bool text_valid(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len > max || !utf8_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* The request body as a JSON object; NULL after answering 400. */
static json_t *body_json(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *p = len ? (const char *)evbuffer_pullup(in, -1) : "{}";
	json_error_t jerr;
	json_t *v = json_loadb(p, len ? len : 2, JSON_REJECT_DUPLICATES, &jerr);

	if (!v || !json_is_object(v)) {
		json_decref(v);
		reply_err(req, 400, "the body must be a JSON object%s%s", v ? "" : ": ",
			  v ? "" : jerr.text);
		return NULL;
	}
	return v;
}

/* Refuses keys outside allowed (NULL-terminated). */
static bool keys_known(struct evhttp_request *req, json_t *o, const char *const *allowed)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = strcmp(k, allowed[i]) == 0;
		if (!ok) {
			char safe[64];
			size_t n = utf8_valid_prefix(k, strlen(k));
			snprintf(safe, sizeof(safe), "%.*s", (int)utf8_truncate(k, n, 60), k);
			reply_err(req, 400, "unknown key \"%s\"", safe);
			return false;
		}
		(void)v;
	}
	return true;
}

/* A string member: NULL when absent or null; *bad after answering 400. */
static const char *get_str(struct evhttp_request *req, json_t *o, const char *key, size_t max,
			   bool required, bool *bad)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	if (*bad)
		return NULL;
	if (!v || json_is_null(v)) {
		if (required) {
			reply_err(req, 400, "%s: required", key);
			*bad = true;
		}
		return NULL;
	}
	s = json_string_value(v);
	if (!s || !text_valid(s, max) || (required && !s[0])) {
		reply_err(req, 400,
			  "%s: expected %stext of at most %zu bytes without control characters",
			  key, required ? "non-empty " : "", max);
		*bad = true;
		return NULL;
	}
	return s;
}

static bool get_time(struct evhttp_request *req, json_t *o, const char *key, bool end_of_day,
		     int64_t *ret, bool *bad)
{
	json_t *v = json_object_get(o, key);
	char buf[24];
	const char *s;

	if (*bad || !v || json_is_null(v))
		return false;
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		s = buf;
	} else
		s = json_string_value(v);
	if (!s || fleet_parse_time(s, end_of_day, ret) < 0) {
		reply_err(req, 400,
			  "%s: expected a date (YYYY-MM-DD, a day in Japan), RFC 3339 UTC or unix "
			  "seconds",
			  key);
		*bad = true;
		return false;
	}
	return true;
}

static bool tx_begin(struct fleet *f)
{
	if (sqldb_begin(f->db) >= 0)
		return true;
	server_log(LOG_ERR, "fleet: %s", sqldb_errmsg(f->db));
	return false;
}

static bool tx_commit(struct fleet *f)
{
	if (sqldb_commit(f->db) >= 0)
		return true;
	server_log(LOG_ERR, "fleet: %s", sqldb_errmsg(f->db));
	return false;
}

static void tx_rollback(struct fleet *f)
{
	sqldb_rollback(f->db);
}

static const char *actor(struct evhttp_request *req)
{
	(void)req;
	return current.name;
}

static int member_group(struct fleet *f, const char *terminal, char group[80])
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
	    fleet_db_prepare(f, "SELECT grp FROM fleet_members WHERE terminal = ?");
	int rc;

	if (!st)
		return -EIO;
	sqldb_bind_text(st, 1, terminal);
	rc = sqldb_step(st);
	if (rc == SQLDB_DONE)
		return -ENOENT;
	if (rc != SQLDB_ROW)
		return -EIO;
	snprintf(group, 80, "%s", fleet_col_text(st, 0));
	return 0;
}

static int group_exists(struct fleet *f, const char *g)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
	    fleet_db_prepare(f, "SELECT 1 FROM fleet_groups WHERE name = ?");
	int rc;

	if (!st)
		return -EIO;
	sqldb_bind_text(st, 1, g);
	rc = sqldb_step(st);
	return rc == SQLDB_ROW ? 1 : rc == SQLDB_DONE ? 0 : -EIO;
}

/* ---- GET /v1/policy (ingest) ---- */

static bool etag_matches(const char *inm, uint64_t version)
{
	char tag[32];
	size_t tl;

	if (!inm)
		return false;
	tl = (size_t)snprintf(tag, sizeof(tag), "\"%" PRIu64 "\"", version);
	for (const char *p = inm; *p;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, tag, tl) == 0 && (p[tl] == 0 || p[tl] == ',' || p[tl] == ' '))
			return true;
		if (*p == '*')
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

void fleet_policy_handle(struct evhttp_request *req, struct worker *w, struct conn *conn)
{
	struct fleet *f = w->c->fleet;
	_cleanup_free_ uint8_t *bundle = NULL;
	size_t len = 0;
	uint64_t version = 0;
	char reason[REASON_MAX] = "";
	char etag[32];
	int r;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
		reply_err(req, 405, "use GET");
		metrics_count_status(405);
		return;
	}
	if (!conn->terminal[0]) {
		reply_err(req, 403,
			  "the client certificate does not name a valid terminal id in its CN");
		metrics_count_status(403);
		return;
	}
	if (conn->serial[0] && server_serial_revoked(w->c, conn->serial)) {
		reply_err(req, 403, "certificate revoked");
		metrics_count_status(403);
		return;
	}
	if (!f) {
		reply_err(req, 503, FLEET_NOT_CONFIGURED);
		metrics_count_status(503);
		return;
	}
	pthread_mutex_lock(&f->lock);
	/* The agent's X25519 key for the central TOTP secrets (docs/fleet.md): the uplink sends it
	 * on every fetch; a malformed one is ignored (the secrets then stay out of its bundle). */
	const char *tk =
	    evhttp_find_header(evhttp_request_get_input_headers(req), BUNDLE_TERMINAL_KEY_HEADER);
	uint8_t tpub[BUNDLE_X25519_LEN];
	if (tk && bundle_pubkey_from_base64(tk, tpub) == 0 &&
	    fleet_terminal_key_note(f, conn->terminal, tpub, now_s()) < 0)
		server_log(LOG_WARNING, "fleet: cannot store the TOTP key of %s", conn->terminal);
	/* PostgreSQL: other collectors may build the same terminal's next version at once; the
	 * layer's writer lock makes the read of the version and the store of the new one one step
	 * (SQLite: one process, the fleet's mutex does) */
	r = sqldb_is_pg(f->db) ? sqldb_begin(f->db) : 0;
	if (r >= 0)
		r = fleet_bundle_for(f, conn->terminal, now_s(), &bundle, &len, &version, reason,
				     sizeof(reason));
	if (sqldb_is_pg(f->db)) {
		if (r >= 0 && sqldb_commit(f->db) < 0) {
			free(bundle);
			bundle = NULL;
			r = -EIO;
		} else if (r < 0) {
			sqldb_rollback(f->db);
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (r == -ENOENT) {
		reply_err(req, 404, "%s", reason);
		metrics_count_status(404);
		return;
	}
	if (r < 0) {
		reply_store_failed(req);
		metrics_count_status(503);
		return;
	}
	snprintf(etag, sizeof(etag), "\"%" PRIu64 "\"", version);
	evhttp_add_header(evhttp_request_get_output_headers(req), "ETag", etag);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-cache");
	if (etag_matches(evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match"),
			 version)) {
		evhttp_send_reply(req, 304, "Not Modified", NULL);
		metrics_count_status(304);
		return;
	}
	struct evbuffer *buf = evbuffer_new();
	if (!buf) {
		reply_err(req, 503, "out of memory");
		return;
	}
	evbuffer_add(buf, bundle, len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/vnd.mynaguard.bundle");
	evhttp_send_reply(req, 200, "OK", buf);
	evbuffer_free(buf);
	metrics_count_status(200);
}

/* ---- POST /v1/totp/claim (ingest): one-time across terminals ---- */

void fleet_claim_handle(struct evhttp_request *req, struct worker *w, struct conn *conn)
{
	static const char *const allowed[] = {"user", "step", NULL};
	static const char *const words[] = {
	    [FLEET_CLAIM_OK] = "ok",
	    [FLEET_CLAIM_USED] = "used",
	    [FLEET_CLAIM_REVOKED] = "revoked",
	    [FLEET_CLAIM_UNKNOWN] = "unknown",
	};
	struct fleet *f = w->c->fleet;
	_cleanup_(json_decrefp) json_t *in = NULL;
	enum fleet_claim res;
	const char *user;
	json_t *step;
	int r;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		reply_err(req, 405, "use POST");
		return;
	}
	if (!conn->terminal[0] || (conn->serial[0] && server_serial_revoked(w->c, conn->serial))) {
		reply_err(req, 403, "no valid terminal certificate");
		return;
	}
	if (!f || !f->have_totp_key) {
		reply_err(req, 503, "central TOTP is not configured on this collector");
		return;
	}
	if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > 512) {
		reply_err(req, 413, "too large");
		return;
	}
	in = body_json(req);
	if (!in || !keys_known(req, in, allowed))
		return;
	user = json_string_value(json_object_get(in, "user"));
	step = json_object_get(in, "step");
	if (!user || !bundle_totp_user_valid(user, strlen(user)) || !json_is_integer(step) ||
	    json_integer_value(step) < 1) {
		reply_err(req, 400, "expected {\"user\": NAME, \"step\": N}");
		return;
	}
	pthread_mutex_lock(&f->lock);
	r = fleet_totp_claim(f, user, (uint64_t)json_integer_value(step), conn->terminal, now_s(),
			     &res);
	pthread_mutex_unlock(&f->lock);
	if (r < 0) {
		reply_store_failed(req);
		return;
	}
	if (res == FLEET_CLAIM_USED)
		server_log(LOG_WARNING, "fleet: %s tried a TOTP code of %s already used elsewhere",
			   conn->terminal, user);
	reply(req, 200, json_pack("{s:s}", "result", words[res]));
}

/* ---- groups ---- */

static void groups_list(struct evhttp_request *req, struct fleet *f)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
	    fleet_db_prepare(f, "SELECT name, created_at, base_version, base_issued, base_sha256,"
				" (SELECT count(*) FROM fleet_members m WHERE m.grp = g.name)"
				" FROM fleet_groups g ORDER BY name");
	json_t *list = json_array();
	int rc;

	if (!st || !list) {
		json_decref(list);
		reply_store_failed(req);
		return;
	}
	while ((rc = sqldb_step(st)) == SQLDB_ROW)
		json_array_append_new(
		    list,
		    json_pack("{s:o,s:o,s:o,s:o,s:o,s:I}", "name", col_json(st, 0), "created_at",
			      col_time(st, 1), "base_version",
			      sqldb_column_is_null(st, 2) ? json_null()
							  : json_integer(sqldb_column_int64(st, 2)),
			      "base_issued", col_time(st, 3), "base_sha256", col_json(st, 4),
			      "members", (json_int_t)sqldb_column_int64(st, 5)));
	if (rc != SQLDB_DONE) {
		json_decref(list);
		reply_store_failed(req);
		return;
	}
	reply(req, 200, json_pack("{s:o}", "groups", list));
}

static void group_create(struct evhttp_request *req, struct fleet *f)
{
	static const char *const allowed[] = {"name", NULL};
	_cleanup_(json_decrefp) json_t *in = body_json(req);
	bool bad = false;
	const char *name;
	int r;

	if (!in || !keys_known(req, in, allowed))
		return;
	name = get_str(req, in, "name", 64, true, &bad);
	if (bad)
		return;
	if (!name_valid(name)) {
		reply_err(req, 400, "name: expected 1 to 64 of A-Z a-z 0-9 . _ -");
		return;
	}
	if (!tx_begin(f)) {
		reply_store_failed(req);
		return;
	}
	r = group_exists(f, name);
	if (r != 0) {
		tx_rollback(f);
		if (r > 0)
			reply_err(req, 409, "group %s exists", name);
		else
			reply_store_failed(req);
		return;
	}
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
	    fleet_db_prepare(f, "INSERT INTO fleet_groups (name, created_at) VALUES (?, ?)");
	if (!st) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	sqldb_bind_text(st, 1, name);
	sqldb_bind_int64(st, 2, now_s());
	if (sqldb_step(st) != SQLDB_DONE || !tx_commit(f)) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	fleet_emit(f, EVENT_FLEET_GROUP,
		   json_pack("{s:s,s:s,s:s}", "action", "create", "group", name, "by", actor(req)));
	reply(req, 201, json_pack("{s:s}", "name", name));
}

static void group_show(struct evhttp_request *req, struct fleet *f, const char *g)
{
	_cleanup_policy_ struct policy *base = NULL;
	json_t *out, *members = json_array(), *b = json_null();
	int r = group_exists(f, g);
	int rc;

	if (r <= 0) {
		json_decref(members);
		if (r == 0)
			reply_err(req, 404, "no group %s", g);
		else
			reply_store_failed(req);
		return;
	}
	r = fleet_load_base(f, g, NULL, NULL, &base);
	if (r >= 0) {
		json_t *terms = json_array(), *classes = json_array();
		char key[45];
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "SELECT base_version, base_issued, base_sha256, base_uploaded_at"
		       " FROM fleet_groups WHERE name = ?");
		for (size_t i = 0; i < base->n_fleet_terminals; i++)
			json_array_append_new(terms, json_string(base->fleet_terminals[i]));
		for (size_t i = 0; i < base->n_fleet_grant_classes; i++)
			json_array_append_new(classes,
					      json_string(base->fleet_grant_classes[i].name));
		bundle_pubkey_to_base64(base->fleet_grant_key, key);
		json_decref(b);
		b = json_pack("{s:o,s:o,s:s,s:I}", "terminals", terms, "grant_classes", classes,
			      "grant_key", key, "grant_max_days",
			      (json_int_t)base->fleet_grant_max_days);
		if (st) {
			sqldb_bind_text(st, 1, g);
			if (sqldb_step(st) == SQLDB_ROW) {
				json_object_set_new(b, "version",
						    json_integer(sqldb_column_int64(st, 0)));
				json_object_set_new(b, "issued", col_time(st, 1));
				json_object_set_new(b, "sha256", col_json(st, 2));
				json_object_set_new(b, "uploaded_at", col_time(st, 3));
			}
		}
	} else if (r != -ENODATA) {
		json_decref(members);
		json_decref(b);
		reply_store_failed(req);
		return;
	}
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
	    f, "SELECT m.terminal, m.added_at, b.version FROM fleet_members m"
	       " LEFT JOIN fleet_bundles b ON b.terminal = m.terminal WHERE m.grp = ?"
	       " ORDER BY m.terminal");
	if (!st) {
		json_decref(members);
		json_decref(b);
		reply_store_failed(req);
		return;
	}
	sqldb_bind_text(st, 1, g);
	while ((rc = sqldb_step(st)) == SQLDB_ROW)
		json_array_append_new(
		    members,
		    json_pack("{s:o,s:o,s:o,s:b}", "terminal", col_json(st, 0), "added_at",
			      col_time(st, 1), "bundle_version",
			      sqldb_column_is_null(st, 2) ? json_null()
							  : json_integer(sqldb_column_int64(st, 2)),
			      "covered",
			      base ? policy_fleet_covers(base, fleet_col_text(st, 0)) : 0));
	out = json_pack("{s:s,s:o,s:o}", "name", g, "base", b, "members", members);
	reply(req, 200, out);
}

static void member_put(struct evhttp_request *req, struct fleet *f, const char *g, const char *id)
{
	char old[80] = "";
	int r;

	if (!event_terminal_id_valid(id)) {
		reply_err(req, 400, "not a terminal id: 1 to 64 of A-Z a-z 0-9 . _ -");
		return;
	}
	if (!tx_begin(f)) {
		reply_store_failed(req);
		return;
	}
	r = group_exists(f, g);
	if (r <= 0) {
		tx_rollback(f);
		if (r == 0)
			reply_err(req, 404, "no group %s", g);
		else
			reply_store_failed(req);
		return;
	}
	r = member_group(f, id, old);
	if (r == 0 && strcmp(old, g) == 0) {
		tx_rollback(f);
		reply(req, 200,
		      json_pack("{s:s,s:s,s:b}", "group", g, "terminal", id, "changed", 0));
		return;
	}
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
	    f, "INSERT INTO fleet_members (terminal, grp, added_at) VALUES (?, ?, ?)"
	       " ON CONFLICT (terminal) DO UPDATE SET grp = excluded.grp,"
	       " added_at = excluded.added_at");
	if (!st || (r < 0 && r != -ENOENT)) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	sqldb_bind_text(st, 1, id);
	sqldb_bind_text(st, 2, g);
	sqldb_bind_int64(st, 3, now_s());
	if (sqldb_step(st) != SQLDB_DONE || !tx_commit(f)) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	fleet_emit(f, EVENT_FLEET_GROUP,
		   json_pack("{s:s,s:s,s:s,s:s?,s:s}", "action", "add", "group", g, "terminal", id,
			     "from_group", old[0] ? old : NULL, "by", actor(req)));
	reply(req, 200, json_pack("{s:s,s:s,s:b}", "group", g, "terminal", id, "changed", 1));
}

static void member_delete(struct evhttp_request *req, struct fleet *f, const char *g,
			  const char *id)
{
	char old[80] = "";

	if (!tx_begin(f)) {
		reply_store_failed(req);
		return;
	}
	if (!event_terminal_id_valid(id) || member_group(f, id, old) < 0 || strcmp(old, g) != 0) {
		tx_rollback(f);
		reply_err(req, 404, "terminal %s is not in group %s",
			  event_terminal_id_valid(id) ? id : "(invalid id)", g);
		return;
	}
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
	    fleet_db_prepare(f, "DELETE FROM fleet_members WHERE terminal = ?");
	if (!st) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	sqldb_bind_text(st, 1, id);
	if (sqldb_step(st) != SQLDB_DONE || !tx_commit(f)) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	fleet_emit(f, EVENT_FLEET_GROUP,
		   json_pack("{s:s,s:s,s:s,s:s}", "action", "remove", "group", g, "terminal", id,
			     "by", actor(req)));
	reply(req, 200, json_pack("{s:s,s:s}", "group", g, "removed", id));
}

static void policy_put(struct evhttp_request *req, struct fleet *f, const char *g)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const uint8_t *body = len ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
	struct bundle_frame fr;
	struct policy_errors errs = {0};
	_cleanup_policy_ struct policy *base = NULL;
	char err[BUNDLE_ERR_MAX], sha[65];
	int r;

	if (bundle_decode_base(body, len, &fr, err, sizeof(err)) < 0) {
		reply_err(req, 400, "not a signed base file: %s", err);
		return;
	}
	if (bundle_verify_root(&fr, f->root_pub) < 0) {
		reply_err(req, 400,
			  "the base is not signed by the fleet root key of this collector ([fleet] "
			  "root_key)");
		return;
	}
	r = policy_parse_base(g, (const char *)fr.base, fr.base_len, &base, &errs);
	if (r < 0) {
		reply_err(req, 400, "the base policy does not parse: %s",
			  errs.n ? errs.items[0].message : "invalid");
		policy_errors_clear(&errs);
		return;
	}
	policy_errors_clear(&errs);
	if (!base->fleet_group || strcmp(base->fleet_group, g) != 0) {
		reply_err(req, 400, "the base is for group %s, not %s",
			  base->fleet_group ? base->fleet_group : "(none)", g);
		return;
	}
	if (!base->has_fleet_grant_key ||
	    memcmp(base->fleet_grant_key, f->grant_pub, BUNDLE_PUBKEY_LEN) != 0) {
		reply_err(req, 400,
			  "the base's [fleet] grant_key is not this collector's grant key ([fleet] "
			  "grant_key): terminals would refuse every bundle");
		return;
	}
	fleet_sha256_hex(fr.base, fr.base_len, NULL, 0, sha);
	if (!tx_begin(f)) {
		reply_store_failed(req);
		return;
	}
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
		    fleet_db_prepare(f, "SELECT base_version FROM fleet_groups WHERE name = ?");
		int rc;
		if (!st) {
			tx_rollback(f);
			reply_store_failed(req);
			return;
		}
		sqldb_bind_text(st, 1, g);
		rc = sqldb_step(st);
		if (rc == SQLDB_DONE) {
			tx_rollback(f);
			reply_err(req, 404, "no group %s (create it first)", g);
			return;
		}
		if (rc != SQLDB_ROW) {
			tx_rollback(f);
			reply_store_failed(req);
			return;
		}
		if (!sqldb_column_is_null(st, 0) &&
		    (uint64_t)sqldb_column_int64(st, 0) >= base->fleet_version) {
			uint64_t have = (uint64_t)sqldb_column_int64(st, 0);
			tx_rollback(f);
			reply_err(req, 400,
				  "version %" PRIu64
				  " is not newer than the group's base version %" PRIu64,
				  base->fleet_version, have);
			return;
		}
	}
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
	    f, "UPDATE fleet_groups SET base = ?, base_version = ?, base_issued = ?,"
	       " base_sha256 = ?, base_uploaded_at = ? WHERE name = ?");
	if (!st) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	sqldb_bind_blob(st, 1, body, len);
	sqldb_bind_int64(st, 2, (int64_t)base->fleet_version);
	sqldb_bind_int64(st, 3, base->fleet_issued);
	sqldb_bind_text(st, 4, sha);
	sqldb_bind_int64(st, 5, now_s());
	sqldb_bind_text(st, 6, g);
	if (sqldb_step(st) != SQLDB_DONE || !tx_commit(f)) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	fleet_emit(f, EVENT_FLEET_POLICY,
		   json_pack("{s:s,s:I,s:s,s:s}", "group", g, "version",
			     (json_int_t)base->fleet_version, "sha256", sha, "by", actor(req)));
	reply(req, 200,
	      json_pack("{s:s,s:I,s:s}", "group", g, "version", (json_int_t)base->fleet_version,
			"sha256", sha));
}

/* ---- exceptions ---- */

#define EXC_ALL                                                                                    \
	"id, scope, grp, terminal, vendor, product, serial, hash, class, users, valid_from,"       \
	" valid_until, purpose, approved_by, ledger, request, state, created_at, created_by,"      \
	" revoked_at, revoked_by, revoke_reason"

static json_t *exception_json(struct sqldb_stmt *st)
{
	char v[5], p[5];
	json_t *users = json_loads(fleet_col_text(st, 9), 0, NULL);

	snprintf(v, sizeof(v), "%04x", (int)sqldb_column_int64(st, 4) & 0xffff);
	snprintf(p, sizeof(p), "%04x", (int)sqldb_column_int64(st, 5) & 0xffff);
	return json_pack("{s:o,s:o,s:o,s:o,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,"
			 "s:o,s:o,s:o,s:o,s:o}",
			 "id", col_json(st, 0), "scope", col_json(st, 1), "group", col_json(st, 2),
			 "terminal", col_json(st, 3), "vendor", v, "product", p, "serial",
			 col_json(st, 6), "hash", col_json(st, 7), "class", col_json(st, 8),
			 "users", users ? users : json_array(), "from", col_time(st, 10), "until",
			 col_time(st, 11), "purpose", col_json(st, 12), "approved_by",
			 col_json(st, 13), "ledger", col_json(st, 14), "request", col_json(st, 15),
			 "state", col_json(st, 16), "created_at", col_time(st, 17), "created_by",
			 col_json(st, 18), "revoked_at", col_time(st, 19), "revoked_by",
			 col_json(st, 20), "revoke_reason", col_json(st, 21));
}

static json_t *exception_get(struct fleet *f, const char *id)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
	    fleet_db_prepare(f, "SELECT " EXC_ALL " FROM fleet_exceptions WHERE id = ?");

	if (!st)
		return NULL;
	sqldb_bind_text(st, 1, id);
	return sqldb_step(st) == SQLDB_ROW ? exception_json(st) : NULL;
}

static const char *state_filter(struct evhttp_request *req, const char *const *states)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq params;
	const char *ret = "all";

	if (!q || !q[0])
		return ret;
	if (evhttp_parse_query_str(q, &params) < 0)
		return NULL;
	for (struct evkeyval *kv = params.tqh_first; kv; kv = kv->next.tqe_next) {
		bool ok = false;
		if (strcmp(kv->key, "state") != 0) {
			evhttp_clear_headers(&params);
			return NULL;
		}
		for (size_t i = 0; states[i]; i++)
			if (strcmp(kv->value, states[i]) == 0) {
				ret = states[i];
				ok = true;
			}
		if (!ok) {
			evhttp_clear_headers(&params);
			return NULL;
		}
	}
	evhttp_clear_headers(&params);
	return ret;
}

/* GET of a list filtered by ?state=: sql takes the state twice ("? = 'all' OR state = ?"),
 * row() turns one row into its JSON object; the answer is {key: [...]}. */
static void list_by_state(struct evhttp_request *req, struct fleet *f, const char *const *states,
			  const char *usage, const char *sql, json_t *(*row)(struct sqldb_stmt *st),
			  const char *key)
{
	const char *state = state_filter(req, states);
	json_t *list;
	int rc;

	if (!state) {
		reply_err(req, 400, "%s", usage);
		return;
	}
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(f, sql);
	list = json_array();
	if (!st || !list) {
		json_decref(list);
		reply_store_failed(req);
		return;
	}
	sqldb_bind_text(st, 1, state);
	sqldb_bind_text(st, 2, state);
	while ((rc = sqldb_step(st)) == SQLDB_ROW)
		json_array_append_new(list, row(st));
	if (rc != SQLDB_DONE) {
		json_decref(list);
		reply_store_failed(req);
		return;
	}
	reply(req, 200, json_pack("{s:o}", key, list));
}

static void exceptions_list(struct evhttp_request *req, struct fleet *f)
{
	static const char *const states[] = {"all", "active", "revoked", NULL};

	list_by_state(req, f, states, "the only parameter is state=all|active|revoked",
		      "SELECT " EXC_ALL " FROM fleet_exceptions WHERE ? = 'all' OR state = ?"
		      " ORDER BY year, num",
		      exception_json, "exceptions");
}

struct exc_in {
	const char *scope; /* terminal | group */
	const char *group; /* scope group */
	const char *terminal;
	uint16_t vendor, product;
	const char *serial, *hash, *cls;
	json_t *users; /* array of strings or NULL */
	int64_t from, until;
	const char *purpose, *approved_by, *ledger, *request;
};

/* Checks and stores one exception inside the open transaction. The HTTP status (201) and the
 * new id, or a status and reason. */
static int exception_create(struct fleet *f, const struct exc_in *in, const char *by, char id[32],
			    char *reason, size_t rsz)
{
	_cleanup_policy_ struct policy *base = NULL;
	_cleanup_free_ char *json = NULL;
	_cleanup_free_ char *users_text = NULL;
	struct bundle_exception e = {0};
	struct bundle_exceptions one = {.items = &e, .n = 1}, back = {0};
	char group[80], err[BUNDLE_ERR_MAX];
	int64_t year_now;
	int r, status = 400;

	if (strcmp(in->scope, "terminal") == 0) {
		if (!in->terminal || !event_terminal_id_valid(in->terminal)) {
			snprintf(reason, rsz,
				 "terminal: a terminal id is required for scope terminal");
			return 400;
		}
		r = member_group(f, in->terminal, group);
		if (r == -ENOENT) {
			snprintf(reason, rsz, "terminal %s is in no group", in->terminal);
			return 400;
		}
		if (r < 0)
			return 503;
	} else if (strcmp(in->scope, "group") == 0) {
		if (!in->group || !name_valid(in->group)) {
			snprintf(reason, rsz, "group: a group name is required for scope group");
			return 400;
		}
		snprintf(group, sizeof(group), "%s", in->group);
	} else {
		snprintf(reason, rsz, "scope: expected terminal or group");
		return 400;
	}
	r = fleet_load_base(f, group, NULL, NULL, &base);
	if (r == -ENOENT) {
		snprintf(reason, rsz, "no group %s", group);
		return 400;
	}
	if (r == -ENODATA) {
		snprintf(reason, rsz, "group %s has no signed base: its limits are unknown", group);
		return 400;
	}
	if (r < 0)
		return 503;
	if (in->terminal && strcmp(in->scope, "terminal") == 0 &&
	    !policy_fleet_covers(base, in->terminal)) {
		snprintf(reason, rsz, "the base of group %s does not name terminal %s", group,
			 in->terminal);
		return 400;
	}
	if (in->from >= in->until) {
		snprintf(reason, rsz, "from must be before until");
		return 400;
	}
	if (in->ledger) {
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
		    fleet_db_prepare(f, "SELECT 1 FROM fleet_ledger WHERE number = ?");
		if (!st)
			return 503;
		sqldb_bind_text(st, 1, in->ledger);
		if (sqldb_step(st) != SQLDB_ROW) {
			snprintf(reason, rsz, "ledger: no entry %s in the media ledger",
				 in->ledger);
			return 400;
		}
	}
	{
		time_t t = (time_t)(now_s() + 9 * 3600);
		struct tm tm;
		gmtime_r(&t, &tm);
		year_now = tm.tm_year + 1900;
	}
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "SELECT coalesce(max(num), 0) + 1 FROM fleet_exceptions WHERE year = ?");
		if (!st)
			return 503;
		sqldb_bind_int64(st, 1, year_now);
		if (sqldb_step(st) != SQLDB_ROW)
			return 503;
		snprintf(id, 32, "EX-%04" PRId64 "-%04" PRId64, year_now,
			 (int64_t)sqldb_column_int64(st, 0));
	}

	/* the exception as the terminal will read it: within the base's limits, and what the
	 * terminal's strict parser accepts */
	snprintf(e.id, sizeof(e.id), "%s", id);
	e.vendor = in->vendor;
	e.product = in->product;
	e.serial = (char *)in->serial;
	e.descriptor_hash = (char *)in->hash;
	snprintf(e.cls, sizeof(e.cls), "%s", in->cls);
	for (size_t i = 0; in->users && i < json_array_size(in->users); i++) {
		if (i >= BUNDLE_MAX_USERS) {
			snprintf(reason, rsz, "users: at most %d", BUNDLE_MAX_USERS);
			return 400;
		}
		e.users[e.n_users++] = (char *)json_string_value(json_array_get(in->users, i));
	}
	e.from = in->from;
	e.until = in->until;
	e.purpose = (char *)in->purpose;
	e.approved_by = (char *)in->approved_by;
	e.ledger = (char *)in->ledger;
	if (bundle_check_limits(base, &one, err, sizeof(err)) < 0) {
		snprintf(reason, rsz, "outside the limits of group %s's base: %s", group, err);
		return 400;
	}
	r = bundle_exceptions_to_json(&one, &json);
	if (r < 0)
		return 503;
	if (bundle_exceptions_parse(json, strlen(json), &back, err, sizeof(err)) < 0) {
		snprintf(reason, rsz, "terminals would refuse this exception: %s", err);
		return 400;
	}
	bundle_exceptions_free(&back);

	users_text = in->users ? json_dumps(in->users, JSON_COMPACT) : strdup("[]");
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
	    f,
	    "INSERT INTO fleet_exceptions (id, year, num, scope, grp, terminal, vendor, product,"
	    " serial, hash, class, users, valid_from, valid_until, purpose, approved_by, ledger,"
	    " request, state, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
	    " ?, ?, ?, ?, ?, ?, 'active', ?, ?)");
	if (!st || !users_text)
		return 503;
	sqldb_bind_text(st, 1, id);
	sqldb_bind_int64(st, 2, year_now);
	sqldb_bind_int64(st, 3, atoll(id + 8));
	sqldb_bind_text(st, 4, in->scope);
	sqldb_bind_text(st, 5, group);
	sqldb_bind_text(st, 6, strcmp(in->scope, "terminal") == 0 ? in->terminal : NULL);
	sqldb_bind_int64(st, 7, in->vendor);
	sqldb_bind_int64(st, 8, in->product);
	sqldb_bind_text(st, 9, in->serial);
	sqldb_bind_text(st, 10, in->hash);
	sqldb_bind_text(st, 11, in->cls);
	sqldb_bind_text(st, 12, users_text);
	sqldb_bind_int64(st, 13, in->from);
	sqldb_bind_int64(st, 14, in->until);
	sqldb_bind_text(st, 15, in->purpose);
	sqldb_bind_text(st, 16, in->approved_by);
	sqldb_bind_text(st, 17, in->ledger);
	sqldb_bind_text(st, 18, in->request);
	sqldb_bind_int64(st, 19, now_s());
	sqldb_bind_text(st, 20, by);
	if (sqldb_step(st) != SQLDB_DONE)
		return 503;
	status = 201;
	return status;
}

static bool parse_hex4(const char *s, uint16_t *ret)
{
	unsigned v = 0;

	if (!s || strlen(s) != 4)
		return false;
	for (size_t i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v * 16 + (unsigned)d;
	}
	*ret = (uint16_t)v;
	return true;
}

static bool users_ok(struct evhttp_request *req, json_t *users)
{
	if (!users || json_is_null(users))
		return true;
	if (!json_is_array(users) || json_array_size(users) > BUNDLE_MAX_USERS) {
		reply_err(req, 400, "users: expected an array of at most %d user names",
			  BUNDLE_MAX_USERS);
		return false;
	}
	for (size_t i = 0; i < json_array_size(users); i++) {
		const char *u = json_string_value(json_array_get(users, i));
		if (!u || !u[0] || !text_valid(u, 64)) {
			reply_err(req, 400, "users[%zu]: expected a user name", i);
			return false;
		}
	}
	return true;
}

static void exception_post(struct evhttp_request *req, struct fleet *f)
{
	static const char *const allowed[] = {
	    "scope", "group", "terminal", "vendor",  "product",	    "serial", "hash", "class",
	    "users", "from",  "until",	  "purpose", "approved_by", "ledger", NULL};
	_cleanup_(json_decrefp) json_t *in = body_json(req);
	struct exc_in x = {0};
	char id[32], reason[REASON_MAX];
	bool bad = false;
	int status;

	if (!in || !keys_known(req, in, allowed))
		return;
	x.scope = get_str(req, in, "scope", 16, false, &bad);
	x.group = get_str(req, in, "group", 64, false, &bad);
	x.terminal = get_str(req, in, "terminal", EVENT_TERMINAL_MAX, false, &bad);
	const char *vendor = get_str(req, in, "vendor", 4, true, &bad);
	const char *product = get_str(req, in, "product", 4, true, &bad);
	x.serial = get_str(req, in, "serial", 255, true, &bad);
	x.hash = get_str(req, in, "hash", 71, false, &bad);
	x.cls = get_str(req, in, "class", 23, true, &bad);
	x.purpose = get_str(req, in, "purpose", BUNDLE_TEXT_MAX, true, &bad);
	x.approved_by = get_str(req, in, "approved_by", BUNDLE_TEXT_MAX, false, &bad);
	x.ledger = get_str(req, in, "ledger", FLEET_LEDGER_NUMBER_MAX, false, &bad);
	if (bad)
		return;
	if (!parse_hex4(vendor, &x.vendor) || !parse_hex4(product, &x.product)) {
		reply_err(req, 400, "vendor, product: expected 4 lowercase hex digits");
		return;
	}
	if (x.hash && strncmp(x.hash, "sha256:", 7) == 0)
		x.hash += 7;
	x.from = now_s();
	get_time(req, in, "from", false, &x.from, &bad);
	if (!get_time(req, in, "until", true, &x.until, &bad)) {
		if (!bad)
			reply_err(req, 400, "until: required");
		return;
	}
	if (bad)
		return;
	x.users = json_object_get(in, "users");
	if (!users_ok(req, x.users))
		return;
	if (json_is_null(x.users))
		x.users = NULL;
	if (!x.scope)
		x.scope = x.terminal ? "terminal" : "group";
	if (!x.approved_by)
		x.approved_by = actor(req);
	if (!tx_begin(f)) {
		reply_store_failed(req);
		return;
	}
	status = exception_create(f, &x, actor(req), id, reason, sizeof(reason));
	if (status != 201 || !tx_commit(f)) {
		tx_rollback(f);
		if (status == 400)
			reply_err(req, 400, "%s", reason);
		else
			reply_store_failed(req);
		return;
	}
	json_t *ex = exception_get(f, id);
	fleet_emit(f, EVENT_FLEET_GRANT,
		   json_pack("{s:s,s:O?,s:s}", "exception", id, "detail", ex, "by", actor(req)));
	reply(req, 201, ex ? ex : json_pack("{s:s}", "id", id));
}

static void exception_revoke(struct evhttp_request *req, struct fleet *f, const char *id)
{
	static const char *const allowed[] = {"reason", NULL};
	_cleanup_(json_decrefp) json_t *in = body_json(req);
	bool bad = false;
	const char *why;

	if (!in || !keys_known(req, in, allowed))
		return;
	why = get_str(req, in, "reason", BUNDLE_TEXT_MAX, false, &bad);
	if (bad)
		return;
	if (!tx_begin(f)) {
		reply_store_failed(req);
		return;
	}
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
	    f, "UPDATE fleet_exceptions SET state = 'revoked', revoked_at = ?, revoked_by = ?,"
	       " revoke_reason = ? WHERE id = ? AND state = 'active'");
	if (!st) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	sqldb_bind_int64(st, 1, now_s());
	sqldb_bind_text(st, 2, actor(req));
	sqldb_bind_text(st, 3, why);
	sqldb_bind_text(st, 4, id);
	if (sqldb_step(st) != SQLDB_DONE) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	if (sqldb_changes(st) == 0) {
		json_t *ex = exception_get(f, id);
		tx_rollback(f);
		if (ex) {
			json_decref(ex);
			reply_err(req, 409, "exception %s is already revoked", id);
		} else
			reply_err(req, 404, "no exception %s", id);
		return;
	}
	if (!tx_commit(f)) {
		reply_store_failed(req);
		return;
	}
	fleet_emit(f, EVENT_FLEET_REVOKE,
		   json_pack("{s:s,s:s?,s:s}", "exception", id, "reason", why, "by", actor(req)));
	json_t *ex = exception_get(f, id);
	reply(req, 200, ex ? ex : json_pack("{s:s}", "id", id));
}

/* ---- requests ---- */

#define REQ_ALL                                                                                    \
	"terminal, code, vendor, product, serial, hash, class, manufacturer, product_name,"        \
	" first_seen, last_seen, count, state, exception, reason, decided_by, decided_at, rule"

static json_t *ms_json(struct sqldb_stmt *st, int i)
{
	char buf[32];

	if (sqldb_column_is_null(st, i))
		return json_null();
	event_format_ts(sqldb_column_int64(st, i), buf);
	return json_string(buf);
}

static json_t *request_json(struct sqldb_stmt *st)
{
	char v[5], p[5];

	snprintf(v, sizeof(v), "%04x", (int)sqldb_column_int64(st, 2) & 0xffff);
	snprintf(p, sizeof(p), "%04x", (int)sqldb_column_int64(st, 3) & 0xffff);
	return json_pack(
	    "{s:o,s:o,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "terminal",
	    col_json(st, 0), "code", col_json(st, 1), "vendor", v, "product", p, "serial",
	    col_json(st, 4), "hash", col_json(st, 5), "class", col_json(st, 6), "manufacturer",
	    col_json(st, 7), "product_name", col_json(st, 8), "first_seen", ms_json(st, 9),
	    "last_seen", ms_json(st, 10), "count", (json_int_t)sqldb_column_int64(st, 11), "state",
	    col_json(st, 12), "exception", col_json(st, 13), "reason", col_json(st, 14),
	    "decided_by", col_json(st, 15), "decided_at", col_time(st, 16), "rule",
	    col_json(st, 17));
}

static void requests_list(struct evhttp_request *req, struct fleet *f)
{
	static const char *const states[] = {"all", "pending", "granted", "refused", NULL};

	list_by_state(req, f, states, "the only parameter is state=all|pending|granted|refused",
		      "SELECT " REQ_ALL " FROM fleet_requests WHERE ? = 'all' OR state = ?"
		      " ORDER BY last_seen DESC, terminal, code",
		      request_json, "requests");
}

/* The one pending request with this code; answers and returns NULL otherwise. */
static json_t *request_find(struct evhttp_request *req, struct fleet *f, const char *code)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
	    fleet_db_prepare(f, "SELECT " REQ_ALL " FROM fleet_requests WHERE code = ?");
	json_t *found = NULL;
	int rc, n = 0;

	if (!st) {
		reply_store_failed(req);
		return NULL;
	}
	sqldb_bind_text(st, 1, code);
	while ((rc = sqldb_step(st)) == SQLDB_ROW) {
		n++;
		if (!found)
			found = request_json(st);
	}
	if (rc != SQLDB_DONE) {
		json_decref(found);
		reply_store_failed(req);
		return NULL;
	}
	if (n == 0) {
		reply_err(req, 404, "no request %s", code);
		return NULL;
	}
	if (n > 1) {
		json_decref(found);
		reply_err(req, 409, "request code %s names devices on %d terminals", code, n);
		return NULL;
	}
	if (strcmp(json_string_value(json_object_get(found, "state")), "pending") != 0) {
		reply_err(req, 409, "request %s is already %s", code,
			  json_string_value(json_object_get(found, "state")));
		json_decref(found);
		return NULL;
	}
	return found;
}

/* The grant class (a name in the base's [fleet] grant_classes) that opens what the request's
 * device was blocked for: the block entry its rule names ("block mass_storage (08)",
 * "block mtp (...)"), else the first grant class that covers its interface class ("08:06:50"),
 * else a class the request already names. NULL when none does. */
static const char *grant_class_for(const struct policy *base, const char *cls, const char *rule)
{
	unsigned c, s, p;

	if (rule && strncmp(rule, "block ", 6) == 0) {
		size_t n = strcspn(rule + 6, " ");
		for (size_t i = 0; i < base->n_fleet_grant_classes; i++)
			if (strlen(base->fleet_grant_classes[i].name) == n &&
			    strncmp(base->fleet_grant_classes[i].name, rule + 6, n) == 0)
				return base->fleet_grant_classes[i].name;
	}
	if (cls && sscanf(cls, "%2x:%2x:%2x", &c, &s, &p) == 3)
		for (size_t i = 0; i < base->n_fleet_grant_classes; i++) {
			const struct policy_usb_class *g = &base->fleet_grant_classes[i];
			if (!g->mtp && g->cls == (int)c &&
			    (g->subclass < 0 || g->subclass == (int)s) &&
			    (g->protocol < 0 || g->protocol == (int)p))
				return g->name;
		}
	for (size_t i = 0; cls && i < base->n_fleet_grant_classes; i++)
		if (strcmp(base->fleet_grant_classes[i].name, cls) == 0)
			return base->fleet_grant_classes[i].name;
	return NULL;
}

static bool request_decide(struct fleet *f, json_t *r, const char *state, const char *exception,
			   const char *why, const char *by)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
	    f, "UPDATE fleet_requests SET state = ?, exception = ?, reason = ?, decided_by = ?,"
	       " decided_at = ? WHERE terminal = ? AND code = ?");

	if (!st)
		return false;
	sqldb_bind_text(st, 1, state);
	sqldb_bind_text(st, 2, exception);
	sqldb_bind_text(st, 3, why);
	sqldb_bind_text(st, 4, by);
	sqldb_bind_int64(st, 5, now_s());
	sqldb_bind_text(st, 6, json_string_value(json_object_get(r, "terminal")));
	sqldb_bind_text(st, 7, json_string_value(json_object_get(r, "code")));
	return sqldb_step(st) == SQLDB_DONE;
}

static void request_grant(struct evhttp_request *req, struct fleet *f, const char *code)
{
	static const char *const allowed[] = {"from",	     "until",  "scope", "purpose",
					      "approved_by", "ledger", "users", NULL};
	_cleanup_(json_decrefp) json_t *in = body_json(req);
	_cleanup_(json_decrefp) json_t *r = NULL;
	struct exc_in x = {0};
	char id[32], reason[REASON_MAX], group[80], cls_name[24];
	bool bad = false;
	int status;

	if (!in || !keys_known(req, in, allowed))
		return;
	x.scope = get_str(req, in, "scope", 16, false, &bad);
	x.purpose = get_str(req, in, "purpose", BUNDLE_TEXT_MAX, true, &bad);
	x.approved_by = get_str(req, in, "approved_by", BUNDLE_TEXT_MAX, false, &bad);
	x.ledger = get_str(req, in, "ledger", FLEET_LEDGER_NUMBER_MAX, false, &bad);
	x.from = now_s();
	get_time(req, in, "from", false, &x.from, &bad);
	if (!get_time(req, in, "until", true, &x.until, &bad)) {
		if (!bad)
			reply_err(req, 400, "until: required");
		return;
	}
	if (bad)
		return;
	x.users = json_object_get(in, "users");
	if (!users_ok(req, x.users))
		return;
	if (json_is_null(x.users))
		x.users = NULL;
	if (!x.scope)
		x.scope = "terminal";
	if (!x.approved_by)
		x.approved_by = actor(req);
	if (!tx_begin(f)) {
		reply_store_failed(req);
		return;
	}
	r = request_find(req, f, code);
	if (!r) {
		tx_rollback(f);
		return;
	}
	x.terminal = json_string_value(json_object_get(r, "terminal"));
	parse_hex4(json_string_value(json_object_get(r, "vendor")), &x.vendor);
	parse_hex4(json_string_value(json_object_get(r, "product")), &x.product);
	x.serial = json_string_value(json_object_get(r, "serial"));
	x.hash = json_string_value(json_object_get(r, "hash"));
	x.request = code;
	if (!x.serial) {
		tx_rollback(f);
		reply_err(req, 400, "request %s names no serial number: it cannot be granted",
			  code);
		return;
	}
	if (member_group(f, x.terminal, group) < 0) {
		tx_rollback(f);
		reply_err(req, 400, "terminal %s is in no group", x.terminal);
		return;
	}
	if (strcmp(x.scope, "group") == 0)
		x.group = group;
	{
		_cleanup_policy_ struct policy *base = NULL;
		const char *cls = json_string_value(json_object_get(r, "class"));
		const char *rule = json_string_value(json_object_get(r, "rule"));
		const char *name;
		if (fleet_load_base(f, group, NULL, NULL, &base) < 0) {
			tx_rollback(f);
			reply_err(req, 400, "group %s has no signed base: its limits are unknown",
				  group);
			return;
		}
		name = grant_class_for(base, cls, rule);
		if (!name) {
			tx_rollback(f);
			reply_err(
			    req, 400,
			    "request %s: what blocked the device (class %s, %s) is not a class "
			    "the base of group %s lets an exception open ([fleet] grant_classes)",
			    code, cls ? cls : "unknown", rule ? rule : "no rule", group);
			return;
		}
		snprintf(cls_name, sizeof(cls_name), "%s", name);
		x.cls = cls_name;
	}
	status = exception_create(f, &x, actor(req), id, reason, sizeof(reason));
	if (status != 201 || !request_decide(f, r, "granted", id, NULL, actor(req)) ||
	    !tx_commit(f)) {
		tx_rollback(f);
		if (status == 400)
			reply_err(req, 400, "%s", reason);
		else
			reply_store_failed(req);
		return;
	}
	json_t *ex = exception_get(f, id);
	fleet_emit(f, EVENT_FLEET_GRANT,
		   json_pack("{s:s,s:s,s:s,s:O?,s:s}", "exception", id, "request", code, "terminal",
			     x.terminal, "detail", ex, "by", actor(req)));
	reply(req, 201, ex ? ex : json_pack("{s:s}", "id", id));
}

static void request_refuse(struct evhttp_request *req, struct fleet *f, const char *code)
{
	static const char *const allowed[] = {"reason", NULL};
	_cleanup_(json_decrefp) json_t *in = body_json(req);
	_cleanup_(json_decrefp) json_t *r = NULL;
	bool bad = false;
	const char *why;

	if (!in || !keys_known(req, in, allowed))
		return;
	why = get_str(req, in, "reason", BUNDLE_TEXT_MAX, true, &bad);
	if (bad)
		return;
	if (!tx_begin(f)) {
		reply_store_failed(req);
		return;
	}
	r = request_find(req, f, code);
	if (!r) {
		tx_rollback(f);
		return;
	}
	if (!request_decide(f, r, "refused", NULL, why, actor(req)) || !tx_commit(f)) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	fleet_emit(f, EVENT_FLEET_REFUSE,
		   json_pack("{s:s,s:O,s:s,s:s}", "request", code, "terminal",
			     json_object_get(r, "terminal"), "reason", why, "by", actor(req)));
	reply(req, 200,
	      json_pack("{s:s,s:s,s:s}", "code", code, "state", "refused", "reason", why));
}

/* ---- media ledger ---- */

#define LEDGER_ALL                                                                                 \
	"number, holder, department, model, vendor, product, serial, encrypted, lent, returned,"   \
	" note, last_terminal, last_seen"

static int ledger_rows(struct fleet *f, struct fleet_ledger_row **ret, size_t *ret_n)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
	    fleet_db_prepare(f, "SELECT " LEDGER_ALL " FROM fleet_ledger ORDER BY number");
	struct fleet_ledger_row *rows = NULL;
	size_t n = 0;
	int rc;

	if (!st)
		return -EIO;
	while ((rc = sqldb_step(st)) == SQLDB_ROW) {
		struct fleet_ledger_row *bigger = realloc(rows, (n + 1) * sizeof(*rows));
		if (!bigger) {
			fleet_ledger_rows_free(rows, n);
			return -ENOMEM;
		}
		rows = bigger;
		struct fleet_ledger_row *r = &rows[n++];
		*r = (struct fleet_ledger_row){0};
		r->number = strdup(fleet_col_text(st, 0));
		r->holder = strdup(fleet_col_text(st, 1));
		r->department = strdup(fleet_col_text(st, 2));
		r->model = strdup(fleet_col_text(st, 3));
		snprintf(r->vendor, sizeof(r->vendor), "%s", fleet_col_text(st, 4));
		snprintf(r->product, sizeof(r->product), "%s", fleet_col_text(st, 5));
		r->serial = strdup(fleet_col_text(st, 6));
		r->encrypted = (int)sqldb_column_int64(st, 7) != 0;
		snprintf(r->lent, sizeof(r->lent), "%s", fleet_col_text(st, 8));
		snprintf(r->returned, sizeof(r->returned), "%s", fleet_col_text(st, 9));
		r->note = strdup(fleet_col_text(st, 10));
		if (fleet_col_text(st, 11))
			r->last_terminal = strdup(fleet_col_text(st, 11));
		r->last_seen_ms = sqldb_column_int64(st, 12);
		if (!r->number || !r->holder || !r->department || !r->model || !r->serial ||
		    !r->note) {
			fleet_ledger_rows_free(rows, n);
			return -ENOMEM;
		}
	}
	if (rc != SQLDB_DONE) {
		fleet_ledger_rows_free(rows, n);
		return -EIO;
	}
	*ret = rows;
	*ret_n = n;
	return 0;
}

static json_t *ledger_json(const struct fleet_ledger_row *r)
{
	char seen[32];

	if (r->last_seen_ms > 0)
		event_format_ts(r->last_seen_ms, seen);
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:s?,s:s?,s:s,s:s?,s:s?}", "number",
			 r->number, "holder", r->holder, "department", r->department, "model",
			 r->model, "vendor", r->vendor, "product", r->product, "serial", r->serial,
			 "encrypted", r->encrypted, "lent", r->lent[0] ? r->lent : NULL, "returned",
			 r->returned[0] ? r->returned : NULL, "note", r->note, "last_terminal",
			 r->last_terminal, "last_seen", r->last_seen_ms > 0 ? seen : NULL);
}

static void ledger_list(struct evhttp_request *req, struct fleet *f)
{
	struct fleet_ledger_row *rows = NULL;
	size_t n = 0;
	json_t *list;

	if (ledger_rows(f, &rows, &n) < 0) {
		reply_store_failed(req);
		return;
	}
	list = json_array();
	for (size_t i = 0; list && i < n; i++)
		json_array_append_new(list, ledger_json(&rows[i]));
	fleet_ledger_rows_free(rows, n);
	reply(req, 200, json_pack("{s:o}", "ledger", list));
}

static bool ledger_put(struct fleet *f, const struct fleet_ledger_row *r)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
	    f, "INSERT INTO fleet_ledger (number, holder, department, model, vendor, product,"
	       " serial, encrypted, lent, returned, note, updated_at)"
	       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (number) DO UPDATE SET"
	       " holder = excluded.holder, department = excluded.department,"
	       " model = excluded.model, vendor = excluded.vendor, product = excluded.product,"
	       " serial = excluded.serial, encrypted = excluded.encrypted, lent = excluded.lent,"
	       " returned = excluded.returned, note = excluded.note,"
	       " updated_at = excluded.updated_at");

	if (!st)
		return false;
	sqldb_bind_text(st, 1, r->number);
	sqldb_bind_text(st, 2, r->holder);
	sqldb_bind_text(st, 3, r->department);
	sqldb_bind_text(st, 4, r->model);
	sqldb_bind_text(st, 5, r->vendor);
	sqldb_bind_text(st, 6, r->product);
	sqldb_bind_text(st, 7, r->serial);
	sqldb_bind_int64(st, 8, r->encrypted);
	sqldb_bind_text(st, 9, r->lent);
	sqldb_bind_text(st, 10, r->returned);
	sqldb_bind_text(st, 11, r->note);
	sqldb_bind_int64(st, 12, now_s());
	return sqldb_step(st) == SQLDB_DONE;
}

static void ledger_post(struct evhttp_request *req, struct fleet *f)
{
	static const char *const allowed[] = {"number", "holder",   "department", "model",
					      "vendor", "product",  "serial",	  "encrypted",
					      "lent",	"returned", "note",	  NULL};
	_cleanup_(json_decrefp) json_t *in = body_json(req);
	struct fleet_ledger_row r = {0};
	char err[FLEET_LEDGER_ERR_MAX];
	bool bad = false;
	const char *s;
	json_t *enc;

	if (!in || !keys_known(req, in, allowed))
		return;
	r.number = (char *)get_str(req, in, "number", FLEET_LEDGER_NUMBER_MAX, true, &bad);
	r.holder = (char *)get_str(req, in, "holder", FLEET_LEDGER_TEXT_MAX, false, &bad);
	r.department = (char *)get_str(req, in, "department", FLEET_LEDGER_TEXT_MAX, false, &bad);
	r.model = (char *)get_str(req, in, "model", FLEET_LEDGER_TEXT_MAX, false, &bad);
	r.serial = (char *)get_str(req, in, "serial", FLEET_LEDGER_TEXT_MAX, true, &bad);
	r.note = (char *)get_str(req, in, "note", FLEET_LEDGER_TEXT_MAX, false, &bad);
	s = get_str(req, in, "vendor", 4, true, &bad);
	snprintf(r.vendor, sizeof(r.vendor), "%s", s ? s : "");
	s = get_str(req, in, "product", 4, true, &bad);
	snprintf(r.product, sizeof(r.product), "%s", s ? s : "");
	s = get_str(req, in, "lent", 10, false, &bad);
	snprintf(r.lent, sizeof(r.lent), "%s", s ? s : "");
	s = get_str(req, in, "returned", 10, false, &bad);
	snprintf(r.returned, sizeof(r.returned), "%s", s ? s : "");
	if (bad)
		return;
	enc = json_object_get(in, "encrypted");
	if (enc && !json_is_boolean(enc)) {
		reply_err(req, 400, "encrypted: expected true or false");
		return;
	}
	r.encrypted = json_is_true(enc);
	r.holder = r.holder ? r.holder : (char *)"";
	r.department = r.department ? r.department : (char *)"";
	r.model = r.model ? r.model : (char *)"";
	r.note = r.note ? r.note : (char *)"";
	if (fleet_ledger_row_check(&r, err, sizeof(err)) < 0) {
		reply_err(req, 400, "%s", err);
		return;
	}
	if (!tx_begin(f)) {
		reply_store_failed(req);
		return;
	}
	if (!ledger_put(f, &r) || !tx_commit(f)) {
		tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	fleet_emit(
	    f, EVENT_FLEET_LEDGER,
	    json_pack("{s:s,s:s,s:s}", "action", "put", "number", r.number, "by", actor(req)));
	r.last_terminal = NULL;
	reply(req, 200, ledger_json(&r));
}

static void ledger_csv_get(struct evhttp_request *req, struct fleet *f)
{
	struct fleet_ledger_row *rows = NULL;
	size_t n = 0, len = 0;
	_cleanup_free_ char *text = NULL;
	struct evbuffer *buf;

	if (ledger_rows(f, &rows, &n) < 0) {
		reply_store_failed(req);
		return;
	}
	/* as auth_redact does for the JSON answers: the holder is a person */
	for (size_t i = 0; current.hide_personal && i < n; i++) {
		char *hidden = strdup("***");
		if (!hidden) {
			fleet_ledger_rows_free(rows, n);
			reply_err(req, 503, "out of memory");
			return;
		}
		free(rows[i].holder);
		rows[i].holder = hidden;
	}
	int r = fleet_ledger_csv_write(rows, n, &text, &len);
	fleet_ledger_rows_free(rows, n);
	buf = r >= 0 ? evbuffer_new() : NULL;
	if (!buf) {
		reply_err(req, 503, "out of memory");
		return;
	}
	evbuffer_add(buf, text, len);
	headers(req, "text/csv; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Disposition",
			  "attachment; filename=\"mynaguard-ledger.csv\"");
	evhttp_send_reply(req, 200, "OK", buf);
	evbuffer_free(buf);
}

static void ledger_csv_post(struct evhttp_request *req, struct fleet *f)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	struct fleet_ledger_row *rows = NULL;
	size_t n = 0;
	char err[FLEET_LEDGER_ERR_MAX];

	if (fleet_ledger_csv_parse(body, len, &rows, &n, err, sizeof(err)) < 0) {
		reply_err(req, 400, "nothing imported: %s", err);
		return;
	}
	if (!tx_begin(f)) {
		fleet_ledger_rows_free(rows, n);
		reply_store_failed(req);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!ledger_put(f, &rows[i])) {
			tx_rollback(f);
			fleet_ledger_rows_free(rows, n);
			reply_store_failed(req);
			return;
		}
	fleet_ledger_rows_free(rows, n);
	if (!tx_commit(f)) {
		reply_store_failed(req);
		return;
	}
	fleet_emit(f, EVENT_FLEET_LEDGER,
		   json_pack("{s:s,s:I,s:s}", "action", "import", "rows", (json_int_t)n, "by",
			     actor(req)));
	reply(req, 200, json_pack("{s:I}", "imported", (json_int_t)n));
}

/* ---- central TOTP (docs/fleet.md, "Central TOTP enrollment") ---- */

static json_t *totp_row_json(struct sqldb_stmt *st)
{
	/* columns: user, groups, gen, secret IS NOT NULL, enrolled_at, enrolled_by, revoked_at,
	 * revoked_by, revoke_reason, double uses, the newest one (s), verified_at, verify_failures */
	json_t *groups = json_loads(fleet_col_text(st, 1), 0, NULL);
	const char *state = !(int)sqldb_column_int64(st, 3) ? "revoked"
			    : sqldb_column_is_null(st, 11)  ? "pending"
							    : "active";

	return json_pack(
	    "{s:o,s:o,s:I,s:s,s:o,s:o,s:o,s:I,s:o,s:o,s:o,s:I,s:o}", "user", col_json(st, 0),
	    "groups", groups ? groups : json_array(), "gen", (json_int_t)sqldb_column_int64(st, 2),
	    "state", state, "enrolled_at", col_time(st, 4), "enrolled_by", col_json(st, 5),
	    "verified_at", col_time(st, 11), "verify_failures",
	    (json_int_t)sqldb_column_int64(st, 12), "revoked_at", col_time(st, 6), "revoked_by",
	    col_json(st, 7), "revoke_reason", col_json(st, 8), "double_uses",
	    (json_int_t)sqldb_column_int64(st, 9), "last_double_use", col_time(st, 10));
}

/* the double uses of the user's codes: the collector's own fleet.totp events (still kept);
 * field(name): the event data's field as text (SQLite, PostgreSQL) */
#define JSON_FIELD(name)    "json_extract(e.data, '$." name "')"
#define JSON_FIELD_PG(name) "(e.data::jsonb->>'" name "')"
#define TOTP_DOUBLE_USES(what, field)                                                              \
	"(SELECT " what " FROM events e JOIN terminals c ON c.id = e.tid"                          \
	" AND c.name = '" INGEST_SELF_TERMINAL "' WHERE e.kind = 'fleet.totp' AND e.body IS NULL"  \
	" AND " field("action") " = 'double_use' AND " field("user") " = fleet_totp.\"user\")"

#define TOTP_COLS(field)                                                                           \
	"\"user\", groups, gen, secret IS NOT NULL, enrolled_at, enrolled_by, revoked_at,"         \
	" revoked_by, revoke_reason, " TOTP_DOUBLE_USES("count(*)", field) ", " TOTP_DOUBLE_USES(  \
	    "max(e.ts) / 1000", field) ", verified_at, verify_failures"

static void totp_list(struct evhttp_request *req, struct fleet *f)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare_pg(
	    f, "SELECT " TOTP_COLS(JSON_FIELD) " FROM fleet_totp ORDER BY \"user\"",
	    "SELECT " TOTP_COLS(JSON_FIELD_PG) " FROM fleet_totp ORDER BY \"user\"");
	json_t *list = json_array();
	int rc;

	if (!st || !list) {
		json_decref(list);
		reply_store_failed(req);
		return;
	}
	while ((rc = sqldb_step(st)) == SQLDB_ROW)
		json_array_append_new(list, totp_row_json(st));
	if (rc != SQLDB_DONE) {
		json_decref(list);
		reply_store_failed(req);
		return;
	}
	reply(req, 200, json_pack("{s:o}", "totp", list));
}

/* The groups of an enrollment: 1..64 existing group names, each once. NULL after answering. */
static json_t *totp_groups(struct evhttp_request *req, struct fleet *f, json_t *in)
{
	json_t *g = json_object_get(in, "groups"), *v;
	size_t i, n = json_array_size(g);

	if (!json_is_array(g) || n < 1 || n > 64) {
		reply_err(req, 400, "groups: expected 1 to 64 group names");
		return NULL;
	}
	json_array_foreach(g, i, v)
	{
		const char *name = json_string_value(v);
		int r = name_valid(name) ? group_exists(f, name) : 0;
		if (r <= 0) {
			if (r < 0)
				reply_store_failed(req);
			else if (name_valid(name))
				reply_err(req, 404, "no group %s", name);
			else
				reply_err(req, 400, "groups[%zu]: not a group name", i);
			return NULL;
		}
		for (size_t j = 0; j < i; j++)
			if (json_equal(json_array_get(g, j), v)) {
				reply_err(req, 400, "groups: %s listed twice", name);
				return NULL;
			}
	}
	return g;
}

static bool int_in(struct evhttp_request *req, json_t *in, const char *key, unsigned lo,
		   unsigned hi, unsigned *ret)
{
	json_t *v = json_object_get(in, key);

	if (!v || json_is_null(v))
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		reply_err(req, 400, "%s: expected a whole number from %u to %u", key, lo, hi);
		return false;
	}
	*ret = (unsigned)json_integer_value(v);
	return true;
}

/* POST /v1/totp {"user","groups",["digits"],["period"]}: a new secret (the old one, if any, is
 * replaced everywhere at the next fetch: gen rises). The answer carries the otpauth URI, the
 * only time the secret leaves the collector in clear. */
static void totp_enroll(struct evhttp_request *req, struct fleet *f)
{
	static const char *const allowed[] = {"user", "groups", "digits", "period", NULL};
	_cleanup_(json_decrefp) json_t *in = body_json(req);
	_cleanup_free_ char *groups_text = NULL;
	_cleanup_free_ uint8_t *blob = NULL;
	struct bundle_totp_secret s;
	unsigned digits = 6, period = 30;
	char b32[TOTP_SECRET_B32_MAX + 1], uri[512];
	const char *user;
	json_t *groups;
	uint64_t gen = 1;
	size_t blen = 0;
	bool bad = false, replaced = false;
	int rc;

	if (!in || !keys_known(req, in, allowed))
		return;
	if (!f->have_totp_key) {
		reply_err(req, 503,
			  "central TOTP is not configured on this collector ([fleet] "
			  "totp_key)");
		return;
	}
	user = get_str(req, in, "user", BUNDLE_TOTP_USER_MAX, true, &bad);
	if (bad)
		return;
	if (!bundle_totp_user_valid(user, strlen(user))) {
		reply_err(req, 400,
			  "user: expected 1 to 64 of A-Z a-z 0-9 . _ @ -, not starting "
			  "with . or -");
		return;
	}
	if (!int_in(req, in, "digits", 6, 8, &digits) ||
	    !int_in(req, in, "period", TOTP_PERIOD_MIN, TOTP_PERIOD_MAX, &period))
		return;
	if (!tx_begin(f)) {
		reply_store_failed(req);
		return;
	}
	groups = totp_groups(req, f, in);
	if (!groups) {
		tx_rollback(f);
		return;
	}
	groups_text = json_dumps(groups, JSON_COMPACT);
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
		    fleet_db_prepare(f, "SELECT gen FROM fleet_totp WHERE \"user\" = ?");
		if (!st || !groups_text) {
			tx_rollback(f);
			reply_store_failed(req);
			return;
		}
		sqldb_bind_text(st, 1, user);
		rc = sqldb_step(st);
		if (rc == SQLDB_ROW) {
			gen = (uint64_t)sqldb_column_int64(st, 0) + 1;
			replaced = true;
		} else if (rc != SQLDB_DONE) {
			tx_rollback(f);
			reply_store_failed(req);
			return;
		}
	}
	if (fleet_totp_new_secret(&s, digits, period, now_s()) < 0 ||
	    fleet_totp_encrypt(f, user, gen, &s, &blob, &blen) < 0) {
		secmem_wipe(&s, sizeof(s));
		tx_rollback(f);
		reply_err(req, 503, "cannot make or encrypt the secret");
		return;
	}
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f,
		    "INSERT INTO fleet_totp (\"user\", groups, gen, secret, enrolled_at, enrolled_by)"
		    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (\"user\") DO UPDATE SET"
		    " groups = excluded.groups, gen = excluded.gen, secret = excluded.secret,"
		    " enrolled_at = excluded.enrolled_at, enrolled_by = excluded.enrolled_by,"
		    " revoked_at = NULL, revoked_by = NULL, revoke_reason = NULL,"
		    " verified_at = NULL, verify_failures = 0");
		if (st) {
			sqldb_bind_text(st, 1, user);
			sqldb_bind_text(st, 2, groups_text);
			sqldb_bind_int64(st, 3, (int64_t)gen);
			sqldb_bind_blob(st, 4, blob, blen);
			sqldb_bind_int64(st, 5, s.enrolled);
			sqldb_bind_text(st, 6, actor(req));
		}
		if (!st || sqldb_step(st) != SQLDB_DONE || !tx_commit(f)) {
			secmem_wipe(&s, sizeof(s));
			if (st)
				tx_rollback(f);
			reply_store_failed(req);
			return;
		}
	}
	totp_base32_encode(s.secret, s.secret_len, b32, sizeof(b32));
	snprintf(uri, sizeof(uri),
		 "otpauth://totp/mynaguard:%s?secret=%s&issuer=mynaguard&algorithm=SHA1&digits=%u"
		 "&period=%u",
		 user, b32, s.digits, s.period); /* a valid user name needs no escaping */
	secmem_wipe(&s, sizeof(s));
	secmem_wipe(b32, sizeof(b32));
	fleet_emit(f, EVENT_FLEET_TOTP,
		   json_pack("{s:s,s:s,s:I,s:O,s:s}", "action", replaced ? "reenroll" : "enroll",
			     "user", user, "gen", (json_int_t)gen, "groups", groups, "by",
			     actor(req)));
	json_t *ans = json_pack("{s:s,s:I,s:O,s:b,s:s}", "user", user, "gen", (json_int_t)gen,
				"groups", groups, "replaced", replaced, "otpauth", uri);
	secmem_wipe(uri, sizeof(uri));
	reply(req, 201, ans);
}

/* POST /v1/totp/{user}/revoke {"reason"}: the secret is deleted here and left out of every
 * bundle from now on. */
static void totp_revoke(struct evhttp_request *req, struct fleet *f, const char *user)
{
	static const char *const allowed[] = {"reason", NULL};
	_cleanup_(json_decrefp) json_t *in = body_json(req);
	bool bad = false;
	const char *why;
	int changes;

	if (!in || !keys_known(req, in, allowed))
		return;
	why = get_str(req, in, "reason", BUNDLE_TEXT_MAX, false, &bad);
	if (bad)
		return;
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "UPDATE fleet_totp SET secret = NULL, revoked_at = ?, revoked_by = ?,"
		       " revoke_reason = ? WHERE \"user\" = ? AND secret IS NOT NULL");
		if (!st) {
			reply_store_failed(req);
			return;
		}
		sqldb_bind_int64(st, 1, now_s());
		sqldb_bind_text(st, 2, actor(req));
		sqldb_bind_text(st, 3, why);
		sqldb_bind_text(st, 4, user);
		if (sqldb_step(st) != SQLDB_DONE) {
			reply_store_failed(req);
			return;
		}
		changes = sqldb_changes(st);
	}
	if (changes == 0) {
		reply_err(req, 404, "no enrollment in force for %s", user);
		return;
	}
	fleet_emit(f, EVENT_FLEET_TOTP,
		   json_pack("{s:s,s:s,s:s?,s:s}", "action", "revoke", "user", user, "reason", why,
			     "by", actor(req)));
	reply(req, 200, json_pack("{s:s,s:s}", "user", user, "state", "revoked"));
}

/* POST /v1/totp/{user}/verify {"code"}: the clerk proves the app shows the enrollment's codes
 * once; only then does the enrollment go into the bundles. The step is used up (claimed). */
static void totp_verify_post(struct evhttp_request *req, struct fleet *f, const char *user)
{
	static const char *const allowed[] = {"code", NULL};
	_cleanup_(json_decrefp) json_t *in = body_json(req);
	enum fleet_verify res = FLEET_VERIFY_NONE;
	unsigned failures = 0;
	int64_t at = 0;
	bool bad = false;
	const char *code;
	int r;

	if (!in || !keys_known(req, in, allowed))
		return;
	code = get_str(req, in, "code", 16, true, &bad);
	if (bad)
		return;
	if (!f->have_totp_key) {
		reply_err(req, 503,
			  "central TOTP is not configured on this collector ([fleet] "
			  "totp_key)");
		return;
	}
	if (!tx_begin(f)) {
		reply_store_failed(req);
		return;
	}
	r = fleet_totp_verify(f, user, code, now_s(), &res, &failures, &at);
	if (r < 0 || !tx_commit(f)) {
		if (r < 0)
			tx_rollback(f);
		reply_store_failed(req);
		return;
	}
	switch (res) {
	case FLEET_VERIFY_NONE:
		reply_err(req, 404, "no enrollment in force for %s", user);
		return;
	case FLEET_VERIFY_LOCKED:
		reply_err(req, 429, "%u wrong codes for this enrollment of %s; enroll %s again",
			  failures, user, user);
		return;
	case FLEET_VERIFY_USED:
		reply_err(req, 409,
			  "that code's time step was already used; wait for the next code and "
			  "verify again");
		return;
	case FLEET_VERIFY_WRONG:
		fleet_emit(f, EVENT_FLEET_TOTP,
			   json_pack("{s:s,s:s,s:I,s:s}", "action", "verify_failed", "user", user,
				     "failures", (json_int_t)failures, "by", actor(req)));
		reply_err(req, 422,
			  "wrong code; the enrollment of %s stays pending (check the app's clock "
			  "and that the code belongs to %s; %u of %u wrong codes before it must be "
			  "enrolled again)",
			  user, user, failures, FLEET_TOTP_VERIFY_MAX_FAILURES);
		return;
	case FLEET_VERIFY_OK:
		fleet_emit(f, EVENT_FLEET_TOTP,
			   json_pack("{s:s,s:s,s:s}", "action", "verified", "user", user, "by",
				     actor(req)));
		__attribute__((fallthrough));
	case FLEET_VERIFY_ALREADY:
		reply(req, 200,
		      json_pack("{s:s,s:s,s:o,s:b}", "user", user, "state", "active", "verified_at",
				time_json(at), "already", res == FLEET_VERIFY_ALREADY));
		return;
	}
}

/* POST /v1/totp/{user}/recovery {"hours"?: 1..72}: a helpdesk recovery code for one clerk,
 * shown in this answer only, delivered sealed to the terminals of the clerk's groups; it works
 * once per terminal until it ends, also offline. */
static void totp_recovery(struct evhttp_request *req, struct fleet *f, const char *user)
{
	static const char *const allowed[] = {"hours", NULL};
	_cleanup_(json_decrefp) json_t *in = body_json(req);
	unsigned hours = 24;
	uint64_t rid = 0;
	char code[17], shown[20];
	int64_t now = now_s();
	int r;

	if (!in || !keys_known(req, in, allowed) || !int_in(req, in, "hours", 1, 72, &hours))
		return;
	if (!f->have_totp_key) {
		reply_err(req, 503,
			  "central TOTP is not configured on this collector ([fleet] "
			  "totp_key)");
		return;
	}
	r = fleet_totp_recovery_new(f, user, now, (int64_t)hours * 3600, actor(req), &rid, code);
	if (r == -ENOENT) {
		reply_err(req, 404, "%s was never enrolled centrally", user);
		return;
	}
	if (r < 0) {
		reply_store_failed(req);
		return;
	}
	snprintf(shown, sizeof(shown), "%.4s-%.4s-%.4s-%.4s", code, code + 4, code + 8, code + 12);
	secmem_wipe(code, sizeof(code));
	fleet_emit(f, EVENT_FLEET_TOTP,
		   json_pack("{s:s,s:s,s:I,s:o,s:s}", "action", "recovery", "user", user, "rid",
			     (json_int_t)rid, "until", time_json(now + (int64_t)hours * 3600), "by",
			     actor(req)));
	json_t *ans = json_pack("{s:s,s:I,s:o,s:s}", "user", user, "rid", (json_int_t)rid, "until",
				time_json(now + (int64_t)hours * 3600), "code", shown);
	secmem_wipe(shown, sizeof(shown));
	reply(req, 201, ans);
}

/* ---- dispatch ---- */

static const char *const prefixes[] = {"/v1/groups", "/v1/exceptions", "/v1/requests", "/v1/ledger",
				       "/v1/totp"};

bool fleet_api_path(const char *path)
{
	if (!path)
		return false;
	for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
		size_t n = strlen(prefixes[i]);
		if (strncmp(path, prefixes[i], n) == 0 &&
		    (path[n] == 0 || path[n] == '/' || strcmp(path + n, ".csv") == 0))
			return true;
	}
	return false;
}

static void method_not_allowed(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	reply_err(req, 405, "use %s", allow);
}

static void dispatch(struct evhttp_request *req, struct fleet *f, char **seg, size_t n)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	bool get = m == EVHTTP_REQ_GET, post = m == EVHTTP_REQ_POST;

	if (strcmp(seg[0], "groups") == 0) {
		if (n == 1) {
			if (get)
				groups_list(req, f);
			else if (post)
				group_create(req, f);
			else
				method_not_allowed(req, "GET, POST");
			return;
		}
		if (!name_valid(seg[1])) {
			reply_err(req, 404, "not a group name");
			return;
		}
		if (n == 2) {
			if (get)
				group_show(req, f, seg[1]);
			else
				method_not_allowed(req, "GET");
			return;
		}
		if (n == 3 && strcmp(seg[2], "policy") == 0) {
			if (m == EVHTTP_REQ_PUT)
				policy_put(req, f, seg[1]);
			else
				method_not_allowed(req, "PUT");
			return;
		}
		if (n == 4 && strcmp(seg[2], "terminals") == 0) {
			if (m == EVHTTP_REQ_PUT)
				member_put(req, f, seg[1], seg[3]);
			else if (m == EVHTTP_REQ_DELETE)
				member_delete(req, f, seg[1], seg[3]);
			else
				method_not_allowed(req, "PUT, DELETE");
			return;
		}
	} else if (strcmp(seg[0], "exceptions") == 0) {
		if (n == 1) {
			if (get)
				exceptions_list(req, f);
			else if (post)
				exception_post(req, f);
			else
				method_not_allowed(req, "GET, POST");
			return;
		}
		if (n == 3 && strcmp(seg[2], "revoke") == 0) {
			if (post)
				exception_revoke(req, f, seg[1]);
			else
				method_not_allowed(req, "POST");
			return;
		}
	} else if (strcmp(seg[0], "requests") == 0) {
		if (n == 1) {
			if (get)
				requests_list(req, f);
			else
				method_not_allowed(req, "GET");
			return;
		}
		if (n == 3 && (strcmp(seg[2], "grant") == 0 || strcmp(seg[2], "refuse") == 0)) {
			if (!post)
				method_not_allowed(req, "POST");
			else if (seg[2][0] == 'g')
				request_grant(req, f, seg[1]);
			else
				request_refuse(req, f, seg[1]);
			return;
		}
	} else if (strcmp(seg[0], "ledger") == 0 && n == 1) {
		if (get)
			ledger_list(req, f);
		else if (post)
			ledger_post(req, f);
		else
			method_not_allowed(req, "GET, POST");
		return;
	} else if (strcmp(seg[0], "totp") == 0) {
		if (n == 1) {
			if (get)
				totp_list(req, f);
			else if (post)
				totp_enroll(req, f);
			else
				method_not_allowed(req, "GET, POST");
			return;
		}
		if (n == 3 &&
		    (strcmp(seg[2], "revoke") == 0 || strcmp(seg[2], "recovery") == 0 ||
		     strcmp(seg[2], "verify") == 0) &&
		    bundle_totp_user_valid(seg[1], strlen(seg[1]))) {
			if (!post)
				method_not_allowed(req, "POST");
			else if (strcmp(seg[2], "revoke") == 0)
				totp_revoke(req, f, seg[1]);
			else if (strcmp(seg[2], "verify") == 0)
				totp_verify_post(req, f, seg[1]);
			else
				totp_recovery(req, f, seg[1]);
			return;
		}
	} else if (strcmp(seg[0], "ledger.csv") == 0 && n == 1) {
		if (get)
			ledger_csv_get(req, f);
		else if (post)
			ledger_csv_post(req, f);
		else
			method_not_allowed(req, "GET, POST");
		return;
	}
	reply_err(req, 404, "not found");
}

void fleet_api_handle(struct evhttp_request *req, struct worker *w)
{
	struct fleet *f = w->c->fleet;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	char copy[256], *seg[MAX_SEGMENTS], *save = NULL;
	size_t n = 0;

	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	bool change = m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD;
	/* reads: any role; groups and their policies, central TOTP: admin; the rest (exceptions, requests,
	 * the media ledger): approver */
	enum auth_role need =
	    !change ? AUTH_AUDITOR
	    : path && (strncmp(path, "/v1/groups", 10) == 0 || strncmp(path, "/v1/totp", 8) == 0)
		? AUTH_ADMIN
		: AUTH_APPROVER;

	if (auth_request(req, w, need, change, &current) < 0)
		return;
	if (!f) {
		reply_err(req, 503, FLEET_NOT_CONFIGURED);
		return;
	}
	if (!path || strlen(path) >= sizeof(copy)) {
		reply_err(req, 404, "not found");
		return;
	}
	snprintf(copy, sizeof(copy), "%s", path + 4); /* after "/v1/" */
	for (char *s = strtok_r(copy, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (n == MAX_SEGMENTS) {
			reply_err(req, 404, "not found");
			return;
		}
		seg[n++] = s;
	}
	if (n == 0) {
		reply_err(req, 404, "not found");
		return;
	}
	pthread_mutex_lock(&f->lock);
	dispatch(req, f, seg, n);
	pthread_mutex_unlock(&f->lock);
}
