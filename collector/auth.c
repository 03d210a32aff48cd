/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: authentication and roles of the dashboard listener (auth.h): sessions,
 * CSRF, scoped tokens, login and logout, the account.* events. Runs on the dashboard thread. */
#include "auth.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "ingest.h"
#include "macro.h"
#include "metrics.h"
#include "secmem.h"
#include "server.h"

#define LOGIN_BODY_MAX 4096
/* Each login costs a PBKDF2 of ~0.2 s on the dashboard thread: at most a burst of
 * LOGIN_BURST, then LOGIN_PER_S a second, so a flood of logins (any names) leaves the
 * dashboard answering; the surplus gets 429. */
#define LOGIN_BURST 10
#define LOGIN_PER_S 2

/* The dashboard thread's login budget (only that thread logs in). */
static struct {
	double tokens;
	uint64_t at_us;
	bool started;
} login_budget;

static bool login_allowed(void)
{
	uint64_t now = server_mono_us();

	if (!login_budget.started) {
		login_budget.tokens = LOGIN_BURST;
		login_budget.started = true;
	} else {
		login_budget.tokens += (double)(now - login_budget.at_us) * LOGIN_PER_S / 1e6;
		if (login_budget.tokens > LOGIN_BURST)
			login_budget.tokens = LOGIN_BURST;
	}
	login_budget.at_us = now;
	if (login_budget.tokens < 1)
		return false;
	login_budget.tokens -= 1;
	return true;
}

/* ---- the Cookie header ---- */

static bool cookie_octet(unsigned char c)
{
	/* RFC 6265 cookie-octet: no CTLs, whitespace, DQUOTE, comma, semicolon or backslash */
	return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
	       (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

static bool token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

int auth_cookie_find(const char *header, const char *name, char *out, size_t size)
{
	const char *p = header;
	size_t nlen = strlen(name);
	bool found = false;

	if (!header || size == 0)
		return -EINVAL;
	for (;;) {
		const char *n0, *v0;
		size_t klen, vlen;
		bool quoted = false;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		n0 = p;
		while (token_char((unsigned char)*p))
			p++;
		klen = (size_t)(p - n0);
		if (klen == 0 || *p != '=')
			return -EINVAL;
		p++;
		if (*p == '"') {
			quoted = true;
			p++;
		}
		v0 = p;
		while (cookie_octet((unsigned char)*p))
			p++;
		vlen = (size_t)(p - v0);
		if (quoted) {
			if (*p != '"')
				return -EINVAL;
			p++;
		}
		if (klen == nlen && memcmp(n0, name, nlen) == 0) {
			/* two values of one name: which one the browser meant is unknown */
			if (found || vlen >= size)
				return -EINVAL;
			memcpy(out, v0, vlen);
			out[vlen] = 0;
			found = true;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		if (*p != ';')
			return -EINVAL;
		p++;
	}
	return found ? 0 : -ENOENT;
}

/* ---- answers and events ---- */

static void refuse(struct evhttp_request *req, int status, const char *reason)
{
	if (status == 401) {
		atomic_fetch_add(&metrics.dashboard_unauthorized, 1);
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
				  "Bearer realm=\"mynaguard\"");
	}
	api_send_error(req, status, reason);
}

static void emit(struct collector *c, enum event_kind kind, json_t *data)
{
	if (!c->writer || !data) {
		json_decref(data);
		return;
	}
	if (ingest_writer_self_event(c->writer, kind, data) < 0)
		server_log(LOG_ERR, "accounts: cannot queue the %s event", event_kind_name(kind));
}

static void outbox_one(const char *kind, json_t *data, void *userdata)
{
	enum event_kind k;

	if (event_kind_from_name(kind, &k) < 0 || k < EVENT_ACCOUNT_LOGIN) {
		json_decref(data);
		return;
	}
	emit(userdata, k, data);
}

void auth_outbox_flush(struct collector *c)
{
	int r;

	if (!c->accounts || !c->writer)
		return;
	r = account_outbox_drain(c->accounts, outbox_one, c);
	if (r < 0)
		server_log(LOG_ERR, "accounts: cannot read the events of the admin commands: %s",
			   strerror(-r));
}

static const char *peer(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const char *addr = NULL;
	ev_uint16_t port = 0;

	if (evcon)
		evhttp_connection_get_peer(evcon, (char **)&addr, &port);
	return addr ? addr : "";
}

/* ---- authentication ---- */

static int64_t now_s(void)
{
	return server_now_ms() / 1000;
}

/* The Origin of a browser's change must be this listener: https://HOST as the browser sent it
 * in Host (a cross-site page cannot choose either). */
static bool origin_ok(struct evhttp_request *req, bool required)
{
	const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *origin = evhttp_find_header(in, "Origin");
	const char *host = evhttp_find_header(in, "Host");

	if (!origin)
		return !required;
	return host && strncmp(origin, "https://", 8) == 0 && strcmp(origin + 8, host) == 0;
}

static int session_of(struct evhttp_request *req, struct worker *w, char id[ACCOUNT_ID_HEX + 1],
		      struct account *ret, char csrf[ACCOUNT_ID_HEX + 1])
{
	const char *cookie = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
	const struct collector_config *cfg = w->c->cfg;

	if (!cookie || !w->c->accounts ||
	    auth_cookie_find(cookie, AUTH_COOKIE, id, ACCOUNT_ID_HEX + 1) < 0 ||
	    strlen(id) != ACCOUNT_ID_HEX)
		return -ENOENT;
	return account_session_find(w->c->accounts, id, now_s(), (int64_t)cfg->session_idle,
				    (int64_t)cfg->session_max, ret, csrf);
}

/* auth_request(); own: the change is to the asker's own session (a logout), which every role
 * may make, an auditor included (still with the CSRF check of a change) */
static int authorise(struct evhttp_request *req, struct worker *w, enum auth_role need, bool change,
		     bool own, struct auth_principal *who)
{
	const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *authz = evhttp_find_header(in, "Authorization");
	struct auth_principal p = {0};
	struct account a;
	int r = -ENOENT;

	if (authz) {
		/* a script: no ambient credential, so no CSRF to fear */
		enum auth_role scope;
		if (server_token_ok(w->c, authz)) {
			snprintf(p.name, sizeof(p.name), "%s", AUTH_LEGACY_NAME);
			p.role = AUTH_ADMIN;
		} else if (strncmp(authz, "Bearer ", 7) == 0 && w->c->accounts &&
			   (r = account_token_find(w->c->accounts, authz + 7, &a, &scope)) >= 0) {
			snprintf(p.name, sizeof(p.name), "%s", a.name);
			p.role = scope;
			p.hide_personal = a.hide_personal;
		} else if (w->c->accounts && strncmp(authz, "Bearer ", 7) == 0 && r != -ENOENT &&
			   r != -EBADMSG) {
			server_log(LOG_ERR, "accounts: token lookup: %s", strerror(-r));
			refuse(req, 503, "the store cannot answer now");
			return -EIO;
		} else {
			refuse(req, 401, "a valid bearer token is required");
			return -EACCES;
		}
	} else {
		char id[ACCOUNT_ID_HEX + 1], csrf[ACCOUNT_ID_HEX + 1];
		const char *sent = evhttp_find_header(in, AUTH_CSRF_HEADER);

		r = session_of(req, w, id, &a, csrf);
		secmem_wipe(id, sizeof(id));
		if (r == -ENOENT || r == -EBADMSG) {
			refuse(req, 401, "log in first (or send a bearer token)");
			return -EACCES;
		}
		if (r < 0) {
			server_log(LOG_ERR, "accounts: session lookup: %s", strerror(-r));
			refuse(req, 503, "the store cannot answer now");
			return -EIO;
		}
		if (change && (!sent || !secmem_streq(sent, csrf) || !origin_ok(req, true))) {
			secmem_wipe(csrf, sizeof(csrf));
			refuse(req, 403,
			       "CSRF check failed: send X-CSRF-Token from the session and "
			       "an Origin of this dashboard");
			return -EPERM;
		}
		secmem_wipe(csrf, sizeof(csrf));
		snprintf(p.name, sizeof(p.name), "%s", a.name);
		p.role = a.role;
		p.hide_personal = a.hide_personal;
	}
	/* an auditor changes nothing, whatever need says, but may end its own session */
	if (p.role < need || (change && !own && p.role == AUTH_AUDITOR)) {
		char reason[EVENT_REASON_MAX];
		snprintf(reason, sizeof(reason), "the role %s may not do this (%s needed)",
			 account_role_name(p.role), account_role_name(need));
		refuse(req, 403, reason);
		return -EPERM;
	}
	*who = p;
	return 0;
}

int auth_request(struct evhttp_request *req, struct worker *w, enum auth_role need, bool change,
		 struct auth_principal *who)
{
	return authorise(req, w, need, change, false, who);
}

/* ---- /v1/session ---- */

static json_t *principal_json(const struct auth_principal *p)
{
	return json_pack("{s:s, s:s, s:b}", "name", p->name, "role", account_role_name(p->role),
			 "hide_personal", p->hide_personal);
}

static void set_cookie(struct evhttp_request *req, const char *id, uint64_t max_age)
{
	char buf[256];

	/* __Host-: Secure, Path=/ and no Domain, so no sibling host can set or shadow it */
	snprintf(buf, sizeof(buf),
		 AUTH_COOKIE "=%s; Path=/; Max-Age=%llu; Secure; HttpOnly; SameSite=Strict", id,
		 (unsigned long long)max_age);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", buf);
	secmem_wipe(buf, sizeof(buf));
}

static void login(struct evhttp_request *req, struct worker *w)
{
	struct collector *c = w->c;
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(body);
	_cleanup_(json_decrefp) json_t *v = NULL;
	const char *name = NULL, *password = NULL, *code = NULL;
	enum account_login_result res;
	struct account a = {0};
	char id[ACCOUNT_ID_HEX + 1], csrf[ACCOUNT_ID_HEX + 1];
	int r;

	if (!origin_ok(req, false)) {
		refuse(req, 403, "login from another origin");
		return;
	}
	if (!c->accounts) {
		refuse(req, 503, "accounts are not available");
		return;
	}
	if (len == 0 || len > LOGIN_BODY_MAX) {
		refuse(req, 400, "expected {\"name\", \"password\", \"code\"}");
		return;
	}
	uint8_t *raw = evbuffer_pullup(body, -1);
	v = raw ? json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	/* it holds the password: gone before anything else happens */
	if (raw)
		secmem_wipe(raw, len);
	evbuffer_drain(body, len);
	if (v && json_unpack(v, "{s:s, s:s, s:s !}", "name", &name, "password", &password, "code",
			     &code) < 0)
		name = NULL;
	if (!v || !name) {
		refuse(req, 400, "expected {\"name\", \"password\", \"code\"}");
		return;
	}
	if (!login_allowed()) {
		secmem_wipe_string((char *)password);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
		refuse(req, 429, "too many logins at once: retry in a few seconds");
		return;
	}
	auth_outbox_flush(c);
	r = account_login(c->accounts, name, password, code, now_s(), &res, &a);
	secmem_wipe_string((char *)password);
	if (r < 0) {
		server_log(LOG_ERR, "accounts: login: %s",
			   r == -EKEYREJECTED ? "the TOTP secret does not open with [accounts] "
						"secret_key (not the key it was sealed with)"
					      : strerror(-r));
		refuse(req, 503, "the store cannot answer now");
		return;
	}
	if (res != ACCOUNT_LOGIN_OK) {
		static const char *const why[] = {
		    [ACCOUNT_LOGIN_WRONG] = "wrong",
		    [ACCOUNT_LOGIN_REPLAY] = "replay",
		    [ACCOUNT_LOGIN_LOCKED] = "locked",
		};
		emit(c, EVENT_ACCOUNT_LOGIN_FAILURE,
		     json_pack("{s:s?, s:s, s:s}", "name", account_name_valid(name) ? name : NULL,
			       "reason", why[res], "peer", peer(req)));
		if (res == ACCOUNT_LOGIN_LOCKED)
			refuse(req, 429, "too many failures: the account is locked for a while");
		else
			refuse(req, 401, "wrong name, password or code");
		return;
	}
	r = account_session_create(c->accounts, a.name, now_s(), id, csrf);
	if (r < 0) {
		server_log(LOG_ERR, "accounts: session: %s", strerror(-r));
		refuse(req, 503, "the store cannot answer now");
		return;
	}
	set_cookie(req, id, c->cfg->session_max);
	secmem_wipe(id, sizeof(id));
	emit(c, EVENT_ACCOUNT_LOGIN,
	     json_pack("{s:s, s:s, s:s}", "name", a.name, "role", account_role_name(a.role), "peer",
		       peer(req)));
	struct auth_principal p = {.role = a.role, .hide_personal = a.hide_personal};
	snprintf(p.name, sizeof(p.name), "%s", a.name);
	json_t *out = principal_json(&p);
	if (out) {
		json_object_set_new(out, "csrf", json_string(csrf));
		json_object_set_new(out, "idle_s", json_integer((json_int_t)c->cfg->session_idle));
		json_object_set_new(out, "max_s", json_integer((json_int_t)c->cfg->session_max));
	}
	secmem_wipe(csrf, sizeof(csrf));
	api_send_json(req, 200, out);
	json_decref(out);
}

static void whoami(struct evhttp_request *req, struct worker *w)
{
	struct auth_principal p;
	char id[ACCOUNT_ID_HEX + 1], csrf[ACCOUNT_ID_HEX + 1];
	struct account a;
	json_t *out;

	if (auth_request(req, w, AUTH_AUDITOR, false, &p) < 0)
		return;
	out = principal_json(&p);
	/* a page reloaded in the same session gets its CSRF token again (same origin only) */
	if (out && session_of(req, w, id, &a, csrf) >= 0)
		json_object_set_new(out, "csrf", json_string(csrf));
	secmem_wipe(id, sizeof(id));
	secmem_wipe(csrf, sizeof(csrf));
	api_send_json(req, 200, out);
	json_decref(out);
}

static void logout(struct evhttp_request *req, struct worker *w)
{
	struct auth_principal p;
	char id[ACCOUNT_ID_HEX + 1];
	const char *cookie = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");

	if (authorise(req, w, AUTH_AUDITOR, true, true, &p) < 0)
		return;
	if (cookie && auth_cookie_find(cookie, AUTH_COOKIE, id, sizeof(id)) >= 0 &&
	    account_session_delete(w->c->accounts, id) >= 0) {
		set_cookie(req, "", 0);
		emit(w->c, EVENT_ACCOUNT_LOGOUT,
		     json_pack("{s:s, s:s}", "name", p.name, "peer", peer(req)));
		json_t *out = principal_json(&p);
		api_send_json(req, 200, out);
		json_decref(out);
	} else
		refuse(req, 400, "not a login session (a bearer token stays valid)");
	secmem_wipe(id, sizeof(id));
}

void auth_session_handle(struct evhttp_request *req, struct worker *w)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);

	if (m == EVHTTP_REQ_POST)
		login(req, w);
	else if (m == EVHTTP_REQ_GET)
		whoami(req, w);
	else if (m == EVHTTP_REQ_DELETE)
		logout(req, w);
	else {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
				  "GET, POST, DELETE");
		api_send_error(req, 405, "use POST (log in), GET or DELETE (log out)");
	}
}

/* ---- hide_personal ---- */

static bool personal_key(const char *k)
{
	/* a sign-off's reviewer is a person, and its comment is free text that may name users;
	 * "by" names the account (or the operator) that made a change */
	static const char *const keys[] = {"user",  "users",	"username", "holder",
					   "login", "reviewer", "comment",  "by"};
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		if (strcmp(k, keys[i]) == 0)
			return true;
	return false;
}

static void hide(json_t *o, const char *k)
{
	json_t *x = json_object_get(o, k);

	if (x && !json_is_null(x))
		json_object_set_new(o, k, json_string("***"));
}

/* the dashboard accounts' events: "name" is the person who logged in, was created, ...;
 * "peer" the address they logged in (or failed to, or logged out) from, which points at a
 * person's desk */
static void hide_account_name(const char *kind, json_t *data)
{
	if (kind && strncmp(kind, "account.", 8) == 0 && json_is_object(data)) {
		hide(data, "name");
		hide(data, "peer");
	}
}

void auth_redact_event(const char *kind, json_t *data)
{
	auth_redact(data);
	hide_account_name(kind, data);
}

void auth_redact(json_t *v)
{
	const char *k;
	json_t *x;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach(v, k, x)
		{
			if (personal_key(k) && !json_is_null(x))
				json_object_set_new(v, k, json_string("***"));
			else
				auth_redact(x);
		}
		/* an event ({"kind", "data"}: the answers, the evidence bundle's lines) */
		hide_account_name(json_string_value(json_object_get(v, "kind")),
				  json_object_get(v, "data"));
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x) auth_redact(x);
	}
}
