/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the administrators' account page's API (account-api.h): list, create,
 * reset and disable the dashboard's personal accounts, the same operations as the --account-*
 * commands, each recorded as an account.* event naming who did it. Runs on the dashboard
 * thread. */
#include "account-api.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "ingest.h"
#include "macro.h"
#include "secmem.h"
#include "server.h"

#define ACCOUNT_BODY_MAX 4096
#define ACCOUNT_URI_MAX	 512
#define QR_QUIET	 4 /* modules of white around the code (ISO/IEC 18004) */

bool account_api_path(const char *path)
{
	return strcmp(path, "/v1/accounts") == 0 || strncmp(path, "/v1/accounts/", 13) == 0;
}

char *account_qr_svg(const char *text, size_t *ret_len)
{
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	int w;

	if (!qr)
		return NULL;
	w = qr->width;
	f = open_memstream(&out, &len);
	if (!f) {
		QRcode_free(qr);
		return NULL;
	}
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
		"shape-rendering=\"crispEdges\"><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
		"<path fill=\"#000\" d=\"",
		w + 2 * QR_QUIET, w + 2 * QR_QUIET, w + 2 * QR_QUIET, w + 2 * QR_QUIET);
	for (int y = 0; y < w; y++)
		for (int x = 0; x < w; x++)
			if (qr->data[y * w + x] & 1) /* bit 0: a dark module */
				fprintf(f, "M%d %dh1v1h-1z", x + QR_QUIET, y + QR_QUIET);
	fputs("\"/></svg>", f);
	/* the modules are the secret too */
	secmem_wipe(qr->data, (size_t)w * (size_t)w);
	QRcode_free(qr);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	*ret_len = len;
	return out;
}

/* ---- answers ---- */

static void reply(struct evhttp_request *req, int status, json_t *body)
{
	/* an enrollment's answer holds the TOTP secret: never cached */
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	api_send_json(req, status, body);
	json_decref(body);
}

static void event(struct worker *w, enum event_kind kind, json_t *data)
{
	if (!data || !w->c->writer || ingest_writer_self_event(w->c->writer, kind, data) < 0)
		server_log(LOG_ERR, "accounts: cannot queue the %s event", event_kind_name(kind));
}

/* The request's JSON object, the body wiped (it may hold a password). NULL: 400 sent. */
static json_t *body_json(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	unsigned char *raw = len && len <= ACCOUNT_BODY_MAX ? evbuffer_pullup(in, -1) : NULL;
	json_t *v = raw ? json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL) : NULL;

	if (raw)
		secmem_wipe(raw, len);
	evbuffer_drain(in, len);
	if (!json_is_object(v)) {
		json_decref(v);
		api_send_error(req, 400, "the body must be a JSON object");
		return NULL;
	}
	return v;
}

static bool password_ok(struct evhttp_request *req, const char *password)
{
	size_t n = password ? strlen(password) : 0;

	if (n < ACCOUNT_PASSWORD_MIN || n > ACCOUNT_PASSWORD_MAX) {
		char reason[80];
		snprintf(reason, sizeof(reason), "password: %d to %d characters",
			 ACCOUNT_PASSWORD_MIN, ACCOUNT_PASSWORD_MAX);
		api_send_error(req, 400, reason);
		return false;
	}
	return true;
}

/* 200/201 with the enrollment (the otpauth URI and its QR code), shown this once. */
static void reply_enrollment(struct evhttp_request *req, int status, const struct account *a,
			     char *uri)
{
	size_t svg_len = 0;
	char *svg = account_qr_svg(uri, &svg_len);
	json_t *o = svg ? json_pack("{s:s, s:s, s:b, s:s, s:s}", "name", a->name, "role",
				    account_role_name(a->role), "hide_personal", a->hide_personal,
				    "otpauth", uri, "qr_svg", svg)
			: NULL;

	secmem_wipe(uri, strlen(uri));
	if (svg)
		secmem_wipe(svg, svg_len);
	free(svg);
	if (!o) {
		api_send_error(req, 503, "out of memory");
		return;
	}
	reply(req, status, o);
}

static void create(struct evhttp_request *req, struct worker *w, const struct auth_principal *who)
{
	_cleanup_(json_decrefp) json_t *v = body_json(req);
	const char *name = NULL, *role_name = NULL, *password = NULL;
	int hide = 0;
	struct account a = {0};
	char uri[ACCOUNT_URI_MAX] = "";
	int r;

	if (!v)
		return;
	if (json_unpack(v, "{s:s, s:s, s:s, s?b !}", "name", &name, "role", &role_name, "password",
			&password, "hide_personal", &hide) < 0) {
		api_send_error(
		    req, 400,
		    "expected {\"name\", \"role\", \"password\"} and optionally \"hide_personal\"");
		return;
	}
	if (!account_name_valid(name)) {
		api_send_error(req, 400, "name: 1..64 of A-Z a-z 0-9 . _ @ - (not first . or -)");
		goto out;
	}
	if (account_role_from_name(role_name, &a.role) < 0 || strcmp(role_name, "read") == 0 ||
	    strcmp(role_name, "approve") == 0) {
		api_send_error(req, 400, "role: auditor, approver or admin");
		goto out;
	}
	if (!password_ok(req, password))
		goto out;
	snprintf(a.name, sizeof(a.name), "%s", name);
	a.hide_personal = hide;
	r = account_create(w->c->accounts, name, a.role, a.hide_personal, password,
			   server_now_ms() / 1000, uri, sizeof(uri));
	secmem_wipe_string((char *)password);
	if (r == -EEXIST) {
		api_send_error(req, 409, "the account exists already");
		goto out;
	}
	if (r < 0) {
		server_log(LOG_ERR, "accounts: create %s: %s", name, strerror(-r));
		api_send_error(req, r == -EINVAL ? 400 : 503,
			       r == -EINVAL ? "name or password refused"
					    : "the store cannot answer now");
		goto out;
	}
	event(w, EVENT_ACCOUNT_CREATED,
	      json_pack("{s:s, s:s, s:b, s:s}", "name", a.name, "role", account_role_name(a.role),
			"hide_personal", a.hide_personal, "by", who->name));
	server_log(LOG_INFO, "accounts: %s created %s (%s) on the dashboard", who->name, a.name,
		   account_role_name(a.role));
	reply_enrollment(req, 201, &a, uri);
out:
	if (password)
		secmem_wipe_string((char *)password);
}

/* The account's row as account_list_json shows it; -ENOENT. */
static int find(struct worker *w, const char *name, struct account *ret)
{
	json_t *list = NULL, *x;
	size_t i;
	int r = account_list_json(w->c->accounts, &list);

	if (r < 0)
		return r;
	r = -ENOENT;
	json_array_foreach(list, i, x)
	{
		const char *n = json_string_value(json_object_get(x, "name"));
		if (n && strcmp(n, name) == 0 &&
		    account_role_from_name(json_string_value(json_object_get(x, "role")),
					   &ret->role) >= 0) {
			snprintf(ret->name, sizeof(ret->name), "%s", n);
			ret->hide_personal = json_is_true(json_object_get(x, "hide_personal"));
			ret->disabled = json_is_true(json_object_get(x, "disabled"));
			r = 0;
			break;
		}
	}
	json_decref(list);
	return r;
}

static void reset(struct evhttp_request *req, struct worker *w, const struct auth_principal *who,
		  const char *name)
{
	_cleanup_(json_decrefp) json_t *v = body_json(req);
	const char *password = NULL;
	struct account a = {0};
	char uri[ACCOUNT_URI_MAX] = "";
	int r;

	if (!v)
		return;
	if (json_unpack(v, "{s:s !}", "password", &password) < 0) {
		api_send_error(req, 400, "expected {\"password\"}");
		return;
	}
	if (!password_ok(req, password))
		goto out;
	r = find(w, name, &a);
	if (r >= 0)
		r = account_reset(w->c->accounts, name, password, server_now_ms() / 1000, uri,
				  sizeof(uri));
	secmem_wipe_string((char *)password);
	if (r == -ENOENT) {
		api_send_error(req, 404, "no such account");
		goto out;
	}
	if (r < 0) {
		server_log(LOG_ERR, "accounts: reset %s: %s", name, strerror(-r));
		api_send_error(req, 503, "the store cannot answer now");
		goto out;
	}
	event(w, EVENT_ACCOUNT_CREATED,
	      json_pack("{s:s, s:s, s:s}", "name", a.name, "action", "reset", "by", who->name));
	server_log(LOG_INFO, "accounts: %s reset %s on the dashboard", who->name, a.name);
	reply_enrollment(req, 200, &a, uri);
out:
	if (password)
		secmem_wipe_string((char *)password);
}

static void disable(struct evhttp_request *req, struct worker *w, const struct auth_principal *who,
		    const char *name)
{
	int r;

	if (strcmp(name, who->name) == 0) {
		api_send_error(req, 409, "an administrator does not disable their own account");
		return;
	}
	r = account_disable(w->c->accounts, name);
	if (r == -ENOENT) {
		api_send_error(req, 404, "no such account");
		return;
	}
	if (r < 0) {
		server_log(LOG_ERR, "accounts: disable %s: %s", name, strerror(-r));
		api_send_error(req, 503, "the store cannot answer now");
		return;
	}
	event(w, EVENT_ACCOUNT_DISABLED, json_pack("{s:s, s:s}", "name", name, "by", who->name));
	server_log(LOG_INFO, "accounts: %s disabled %s on the dashboard", who->name, name);
	reply(req, 200, json_pack("{s:s, s:b}", "name", name, "disabled", 1));
}

void account_api_handle(struct evhttp_request *req, struct worker *w)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	bool get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
	char name[ACCOUNT_NAME_MAX + 1];
	const char *rest = path + 12, *action = NULL;
	struct auth_principal who;
	json_t *list = NULL;
	int r;

	if (strcmp(path, "/v1/accounts") != 0) {
		/* /v1/accounts/NAME/reset, /v1/accounts/NAME/disable */
		const char *slash = strchr(rest + 1, '/');
		size_t n = slash ? (size_t)(slash - rest - 1) : 0;
		if (!slash || n == 0 || n > ACCOUNT_NAME_MAX ||
		    (strcmp(slash, "/reset") != 0 && strcmp(slash, "/disable") != 0)) {
			api_send_error(req, 404, "not found");
			return;
		}
		memcpy(name, rest + 1, n);
		name[n] = 0;
		action = slash + 1;
	}
	if (!get && m != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
				  action ? "POST" : "GET, POST");
		api_send_error(req, 405, action ? "use POST" : "use GET (list) or POST (create)");
		return;
	}
	if (action && get) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		api_send_error(req, 405, "use POST");
		return;
	}
	/* every account operation is the administrators' (an auditor changes nothing anyway) */
	if (auth_request(req, w, AUTH_ADMIN, !get, &who) < 0)
		return;
	if (!w->c->accounts) {
		api_send_error(req, 503, "accounts are not available");
		return;
	}
	if (get) {
		r = account_list_json(w->c->accounts, &list);
		if (r < 0) {
			api_send_error(req, 503, "the store cannot answer now");
			return;
		}
		reply(req, 200, json_pack("{s:o}", "accounts", list));
	} else if (!action)
		create(req, w, &who);
	else if (!account_name_valid(name))
		api_send_error(req, 404, "no such account");
	else if (strcmp(action, "reset") == 0)
		reset(req, w, &who, name);
	else
		disable(req, w, &who, name);
}
