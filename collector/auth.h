/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: who is asking the dashboard listener, and may they: login sessions
 * (cookie + CSRF header + Origin), scoped script tokens, the token file's admin token. Every
 * dashboard endpoint calls auth_request() before it answers. Runs on the dashboard thread. */
#pragma once

#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "account-store.h"

struct worker;
struct collector;

#define AUTH_COOKIE	 "__Host-mg_session"
#define AUTH_CSRF_HEADER "X-CSRF-Token"
#define AUTH_LEGACY_NAME "admin" /* the principal of the token file's token */

struct auth_principal {
	char name[ACCOUNT_NAME_MAX + 1];
	enum auth_role role;
	bool hide_personal; /* an auditor that must not see user names */
};

/* Authenticates req (a session cookie, or "Authorization: Bearer" with a scoped token or the
 * token file's token) and authorises it for need; change: the request changes something, so a
 * session must also carry its CSRF token in X-CSRF-Token and an Origin of this listener.
 * 0 and *who filled when allowed; otherwise the answer (401, 403, 503) has been sent and a
 * negative errno is returned (-EACCES not authenticated, -EPERM not allowed, -EIO store). */
int auth_request(struct evhttp_request *req, struct worker *w, enum auth_role need, bool change,
		 struct auth_principal *who);

/* /v1/session: POST logs in ({"name","password","code"} → cookie), GET says who is logged in
 * (and the CSRF token), DELETE logs out. */
void auth_session_handle(struct evhttp_request *req, struct worker *w);

/* For hide_personal: replaces every value of a key that names a person ("user", "holder",
 * "reviewer", a sign-off's free-text "comment", "by", ...) anywhere inside v with "***", and
 * the "name" in the data of every account.* event ({"kind", "data"}) inside v. The JSON
 * answers, the review, the self-inspection report and the evidence bundle all use it. */
void auth_redact(json_t *v);

/* auth_redact for the data of one event of kind: also the "name" of an account.* event (the
 * person who logged in, was created, ...). The CSV export, which has kind and data apart. */
void auth_redact_event(const char *kind, json_t *data);

/* Queues the admin commands' account.* events (account_outbox) to the writer. */
void auth_outbox_flush(struct collector *c);

/* The value of cookie name in a Cookie header (RFC 6265 section 5.4 syntax: "a=b; c=d"), copied
 * into out (size bytes, NUL-terminated). -ENOENT when absent, -EINVAL when the header is
 * malformed, the cookie is given twice, or its value does not fit. Pure; fuzzed as
 * fuzz-cookie. */
int auth_cookie_find(const char *header, const char *name, char *out, size_t size);
