/* SPDX-License-Identifier: MIT */
/* mynaguardctl fleet group|policy|exception|request|ledger: the collector's fleet endpoints
 * (docs/fleet.md, "Endpoints") over HTTPS with the dashboard's bearer token (libcurl). What the
 * collector answers is shown escaped (base/escape.h); its reason is the error message. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "escape.h"
#include "fileio.h"
#include "macro.h"
#include "secmem.h"

#define ANSWER_MAX (16 * 1024 * 1024)
#define FILE_MAX   (1024 * 1024)

#define E(s)                                                                                       \
	escape_text((s) ? (s) : "-", strlen((s) ? (s) : "-"), 200, 0, (char[ESCAPE_SIZE(200)]){0}, \
		    ESCAPE_SIZE(200))

enum opt_id {
	O_COLLECTOR,
	O_TOKEN_FILE,
	O_CA,
	O_STATE,
	O_UNTIL,
	O_FROM,
	O_SCOPE,
	O_PURPOSE,
	O_LEDGER,
	O_APPROVED_BY,
	O_REASON,
	O_GROUP,
	O_TERMINAL,
	O_VENDOR,
	O_PRODUCT,
	O_SERIAL,
	O_CLASS,
	O_USERS,
	O_HASH,
	O_NUMBER,
	O_HOLDER,
	O_DEPARTMENT,
	O_MODEL,
	O_ENCRYPTED,
	O_LENT,
	O_RETURNED,
	O_NOTE,
	O_GROUPS,
	O_DIGITS,
	O_PERIOD,
	O_HOURS,
	_O_MAX,
};

static const char *const opt_names[_O_MAX] = {
    "collector",  "token-file", "ca",	       "state",	 "until",    "from",	 "scope",
    "purpose",	  "ledger",	"approved-by", "reason", "group",    "terminal", "vendor",
    "product",	  "serial",	"class",       "users",	 "hash",     "number",	 "holder",
    "department", "model",	"encrypted",   "lent",	 "returned", "note",	 "groups",
    "digits",	  "period",	"hours",
};

struct remote {
	const char *cmd; /* "fleet group list", for messages */
	const char *opt[_O_MAX];
	char **args; /* the words after the options */
	int n_args;
	CURL *curl;
	char *auth; /* "Authorization: Bearer ..." (secret) */
	char errbuf[CURL_ERROR_SIZE];
};

struct answer {
	long status;
	char *body;
	size_t len;
	bool overflow;
};

static void remote_usage(FILE *f)
{
	fputs(
	    "Usage: mynaguardctl fleet COMMAND --collector URL --token-file FILE --ca FILE ...\n"
	    "\n"
	    "  group list | create G | show G | add G ID... | remove G ID...\n"
	    "  policy upload G FILE.signed\n"
	    "  exception list [--state all|active|revoked]\n"
	    "  exception add --scope terminal|group (--terminal ID | --group G) --vendor VID\n"
	    "      --product PID --serial S --class CLASS --until DATE [--from DATE]\n"
	    "      --purpose TEXT [--users U1,U2] [--hash HEX] [--ledger N] [--approved-by NAME]\n"
	    "  exception revoke ID [--reason TEXT]\n"
	    "  request list [--state all|pending|granted|refused]\n"
	    "  request grant CODE --until DATE [--from DATE] [--scope terminal|group]\n"
	    "      --purpose TEXT [--ledger N] [--approved-by NAME]\n"
	    "  request refuse CODE --reason TEXT\n"
	    "  totp enroll USER --groups G1,G2 [--digits 6..8] [--period SECONDS]\n"
	    "  totp list | verify USER [CODE] | revoke USER [--reason TEXT]\n"
	    "  totp recovery USER [--hours 1..72]\n"
	    "  ledger list | export [FILE] | import FILE\n"
	    "  ledger add --number N --vendor VID --product PID --serial S [--holder TEXT]\n"
	    "      [--department TEXT] [--model TEXT] [--encrypted yes|no] [--lent DATE]\n"
	    "      [--returned DATE] [--note TEXT]\n"
	    "\n"
	    "DATE: YYYY-MM-DD (a day in Japan; --until includes that day), RFC 3339 UTC or unix\n"
	    "seconds. See mynaguardctl(8) and docs/fleet.md.\n",
	    f);
}

/* Options anywhere after the command words; only those in allowed (plus the three
 * connection options) are accepted. */
static int parse(struct remote *r, int argc, char **argv, const enum opt_id *allowed,
		 size_t n_allowed)
{
	struct option longopts[_O_MAX + 2];
	int c;

	for (size_t i = 0; i < _O_MAX; i++)
		longopts[i] = (struct option){opt_names[i], required_argument, NULL, (int)i + 1};
	longopts[_O_MAX] = (struct option){"help", no_argument, NULL, 'h'};
	longopts[_O_MAX + 1] = (struct option){0};
	optind =
	    0; /* a full restart: main() parsed with "+" (stop at the first word), we permute */
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			remote_usage(stdout);
			return -2;
		}
		if (c < 1 || c > _O_MAX) {
			remote_usage(stderr);
			return -1;
		}
		enum opt_id id = (enum opt_id)(c - 1);
		bool ok = id == O_COLLECTOR || id == O_TOKEN_FILE || id == O_CA;
		for (size_t i = 0; i < n_allowed && !ok; i++)
			ok = allowed[i] == id;
		if (!ok) {
			fprintf(stderr, "mynaguardctl: %s: --%s does not apply here\n", r->cmd,
				opt_names[id]);
			return -1;
		}
		if (r->opt[id]) {
			fprintf(stderr, "mynaguardctl: %s: --%s given twice\n", r->cmd,
				opt_names[id]);
			return -1;
		}
		r->opt[id] = optarg;
	}
	if (!r->opt[O_COLLECTOR] || !r->opt[O_TOKEN_FILE] || !r->opt[O_CA]) {
		fprintf(stderr,
			"mynaguardctl: %s: --collector URL, --token-file FILE and --ca FILE "
			"are required\n",
			r->cmd);
		return -1;
	}
	if (strncmp(r->opt[O_COLLECTOR], "https://", 8) != 0) {
		fprintf(stderr, "mynaguardctl: %s: --collector must be an https:// URL\n", r->cmd);
		return -1;
	}
	r->args = argv + optind;
	r->n_args = argc - optind;
	return 0;
}

static bool need(struct remote *r, enum opt_id id)
{
	if (r->opt[id])
		return true;
	fprintf(stderr, "mynaguardctl: %s: --%s is required\n", r->cmd, opt_names[id]);
	return false;
}

static bool word_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    s[i]))
			return false;
	return true;
}

static bool check_word(struct remote *r, const char *what, const char *s)
{
	if (word_ok(s))
		return true;
	fprintf(stderr, "mynaguardctl: %s: not a %s: %s (1 to 64 of A-Z a-z 0-9 . _ -)\n", r->cmd,
		what, E(s));
	return false;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct answer *a = userdata;
	size_t n = size * nmemb;

	if (a->len + n > ANSWER_MAX) {
		a->overflow = true;
		return 0;
	}
	char *nb = realloc(a->body, a->len + n + 1);
	if (!nb)
		return 0;
	memcpy(nb + a->len, ptr, n);
	a->body = nb;
	a->len += n;
	a->body[a->len] = 0;
	return n;
}

static int connect_setup(struct remote *r)
{
	_cleanup_free_ char *token = NULL;
	size_t len = 0;
	int k;

	k = fileio_read_file(AT_FDCWD, r->opt[O_TOKEN_FILE], 4096, &token, &len);
	if (k < 0) {
		fprintf(stderr, "mynaguardctl: %s: token file %s: %s\n", r->cmd,
			r->opt[O_TOKEN_FILE], strerror(-k));
		return -1;
	}
	token[strcspn(token, "\r\n")] = 0;
	if (!token[0] || strchr(token, ' ')) {
		secmem_wipe(token, len);
		fprintf(stderr, "mynaguardctl: %s: token file %s: expected one line\n", r->cmd,
			r->opt[O_TOKEN_FILE]);
		return -1;
	}
	k = asprintf(&r->auth, "Authorization: Bearer %s", token);
	secmem_wipe(token, len);
	if (k < 0) {
		r->auth = NULL;
		return -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(r->curl = curl_easy_init())) {
		fprintf(stderr, "mynaguardctl: %s: cannot start libcurl\n", r->cmd);
		return -1;
	}
	return 0;
}

static void remote_done(struct remote *r)
{
	if (r->curl)
		curl_easy_cleanup(r->curl);
	secmem_free_string(r->auth);
	r->auth = NULL;
}

/* One request; 0 with the answer (any status), -1 after reporting a transport error. */
static int call(struct remote *r, const char *method, const char *path, const void *body,
		size_t len, const char *ctype, struct answer *a)
{
	CURL *h = r->curl;
	struct curl_slist *hdr = NULL;
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *ct = NULL;
	const char *base = r->opt[O_COLLECTOR];
	size_t bl = strlen(base);
	CURLcode e;

	*a = (struct answer){0};
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	if (asprintf(&url, "%.*s%s", (int)bl, base, path) < 0 ||
	    asprintf(&ct, "Content-Type: %s", ctype ? ctype : "application/json") < 0)
		return -1;
	hdr = curl_slist_append(hdr, r->auth);
	hdr = hdr ? curl_slist_append(hdr, "Expect:") : NULL;
	hdr = hdr && body ? curl_slist_append(hdr, ct) : hdr;
	if (!hdr)
		return -1;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CAINFO, r->opt[O_CA]);
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	r->errbuf[0] = 0;
	e = curl_easy_perform(h);
	curl_slist_free_all(hdr);
	if (e != CURLE_OK) {
		fprintf(stderr, "mynaguardctl: %s: %s: %s\n", r->cmd, E(r->opt[O_COLLECTOR]),
			a->overflow ? "the answer is too large"
				    : (r->errbuf[0] ? r->errbuf : curl_easy_strerror(e)));
		free(a->body);
		a->body = NULL;
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	return 0;
}

/* The answer as JSON when it is 2xx; else reports the collector's reason and returns NULL. */
static json_t *expect_json(struct remote *r, struct answer *a)
{
	json_t *o = a->body ? json_loadb(a->body, a->len, 0, NULL) : NULL;

	if (a->status >= 200 && a->status < 300 && json_is_object(o)) {
		secmem_wipe(a->body, a->len); /* an enrollment's answer holds the secret */
		free(a->body);
		a->body = NULL;
		return o;
	}
	const char *why = json_string_value(json_object_get(o, "error"));
	if (a->status >= 200 && a->status < 300)
		fprintf(stderr, "mynaguardctl: %s: the collector's answer is not JSON\n", r->cmd);
	else
		fprintf(stderr, "mynaguardctl: %s: the collector refused (HTTP %ld): %s\n", r->cmd,
			a->status, why ? E(why) : "(no reason given)");
	json_decref(o);
	free(a->body);
	a->body = NULL;
	return NULL;
}

/* A request with a JSON body (taken) or none; the JSON answer or NULL (reported). */
static json_t *call_json(struct remote *r, const char *method, const char *path, json_t *body)
{
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct answer a;

	json_decref(body);
	if (call(r, method, path, text, text ? strlen(text) : 0, NULL, &a) < 0)
		return NULL;
	return expect_json(r, &a);
}

static const char *S(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (json_is_integer(v)) {
		static char buf[4][32];
		static unsigned k;
		char *b = buf[k++ % 4];
		snprintf(b, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return b;
	}
	return json_string_value(v);
}

/* ---- group ---- */

static int group_cmd(struct remote *r)
{
	const char *sub = r->n_args ? r->args[0] : "";
	_cleanup_free_ char *path = NULL;
	json_t *o;
	int rc = 0;

	if (strcmp(sub, "list") == 0 && r->n_args == 1) {
		o = call_json(r, "GET", "/v1/groups", NULL);
		if (!o)
			return 1;
		size_t i;
		json_t *g;
		printf("%-24s %-8s %s\n", "GROUP", "BASE", "MEMBERS");
		json_array_foreach(json_object_get(o, "groups"), i, g)
		    printf("%-24s %-8s %s\n", E(S(g, "name")),
			   S(g, "base_version") ? S(g, "base_version") : "-", S(g, "members"));
		json_decref(o);
		return 0;
	}
	if ((strcmp(sub, "create") == 0 || strcmp(sub, "show") == 0) && r->n_args == 2) {
		if (!check_word(r, "group name", r->args[1]))
			return 1;
		if (sub[0] == 'c') {
			o = call_json(r, "POST", "/v1/groups",
				      json_pack("{s:s}", "name", r->args[1]));
			if (!o)
				return 1;
			printf("group %s created\n", E(r->args[1]));
			json_decref(o);
			return 0;
		}
		if (asprintf(&path, "/v1/groups/%s", r->args[1]) < 0)
			return 1;
		o = call_json(r, "GET", path, NULL);
		if (!o)
			return 1;
		json_t *b = json_object_get(o, "base"), *m;
		size_t i;
		printf("Group:    %s\n", E(S(o, "name")));
		if (json_is_object(b))
			printf("Base:     version %s, issued %s, sha256 %s\n", S(b, "version"),
			       E(S(b, "issued")), E(S(b, "sha256")));
		else
			printf("Base:     none uploaded\n");
		json_array_foreach(json_object_get(o, "members"), i, m) printf(
		    "Member:   %s%s (bundle version %s)\n", E(S(m, "terminal")),
		    json_is_true(json_object_get(m, "covered")) ? "" : " NOT NAMED BY THE BASE",
		    S(m, "bundle_version") ? S(m, "bundle_version") : "none yet");
		json_decref(o);
		return 0;
	}
	if ((strcmp(sub, "add") == 0 || strcmp(sub, "remove") == 0) && r->n_args >= 3) {
		if (!check_word(r, "group name", r->args[1]))
			return 1;
		for (int i = 2; i < r->n_args; i++)
			if (!check_word(r, "terminal id", r->args[i]))
				return 1;
		for (int i = 2; i < r->n_args; i++) {
			_cleanup_free_ char *p = NULL;
			if (asprintf(&p, "/v1/groups/%s/terminals/%s", r->args[1], r->args[i]) < 0)
				return 1;
			o = call_json(r, sub[0] == 'a' ? "PUT" : "DELETE", p, NULL);
			if (!o) {
				rc = 1;
				continue;
			}
			printf("%s %s %s\n", E(r->args[i]),
			       sub[0] == 'a' ? "added to" : "removed from", E(r->args[1]));
			json_decref(o);
		}
		return rc;
	}
	fprintf(stderr,
		"mynaguardctl: %s: expected list, create G, show G, add G ID..., remove G "
		"ID...\n",
		r->cmd);
	return 2;
}

/* ---- policy ---- */

static int policy_cmd(struct remote *r)
{
	_cleanup_free_ char *data = NULL;
	_cleanup_free_ char *path = NULL;
	struct answer a;
	size_t len = 0;
	json_t *o;
	int k;

	if (r->n_args != 3 || strcmp(r->args[0], "upload") != 0) {
		fprintf(stderr, "mynaguardctl: %s: expected upload G FILE\n", r->cmd);
		return 2;
	}
	if (!check_word(r, "group name", r->args[1]))
		return 1;
	k = fileio_read_file(AT_FDCWD, r->args[2], FILE_MAX, &data, &len);
	if (k < 0) {
		fprintf(stderr, "mynaguardctl: %s: %s: %s\n", r->cmd, r->args[2], strerror(-k));
		return 1;
	}
	if (asprintf(&path, "/v1/groups/%s/policy", r->args[1]) < 0)
		return 1;
	if (call(r, "PUT", path, data, len, "application/octet-stream", &a) < 0)
		return 1;
	o = expect_json(r, &a);
	if (!o)
		return 1;
	printf("group %s: base version %s uploaded (sha256 %s)\n", E(r->args[1]), S(o, "version"),
	       E(S(o, "sha256")));
	json_decref(o);
	return 0;
}

/* ---- exception ---- */

static void print_exception(json_t *e)
{
	const char *target = strcmp(S(e, "scope") ? S(e, "scope") : "", "group") == 0
				 ? S(e, "group")
				 : S(e, "terminal");
	printf("%-13s %-7s %-8s %-16s %s:%s %-16s %-20s %-20s %s\n", E(S(e, "id")),
	       E(S(e, "state")), E(S(e, "scope")), E(target), E(S(e, "vendor")), E(S(e, "product")),
	       E(S(e, "serial")), E(S(e, "from")), E(S(e, "until")), E(S(e, "purpose")));
}

static int state_list(struct remote *r, const char *what, const char *key, void (*print)(json_t *),
		      const char *header)
{
	_cleanup_free_ char *path = NULL;
	json_t *o, *e;
	size_t i;

	if (r->opt[O_STATE] && !word_ok(r->opt[O_STATE]))
		return 2;
	if (asprintf(&path, "/v1/%s%s%s", what, r->opt[O_STATE] ? "?state=" : "",
		     r->opt[O_STATE] ? r->opt[O_STATE] : "") < 0)
		return 1;
	o = call_json(r, "GET", path, NULL);
	if (!o)
		return 1;
	printf("%s\n", header);
	json_array_foreach(json_object_get(o, key), i, e) print(e);
	json_decref(o);
	return 0;
}

/* Dates go as text: the collector parses YYYY-MM-DD, RFC 3339 and unix seconds alike. */
static json_t *time_value(const char *s)
{
	return json_string(s);
}

static int exception_cmd(struct remote *r)
{
	const char *sub = r->n_args ? r->args[0] : "";
	json_t *o, *body;

	if (strcmp(sub, "list") == 0 && r->n_args == 1)
		return state_list(
		    r, "exceptions", "exceptions", print_exception,
		    "ID            STATE   SCOPE    TARGET           DEVICE    "
		    "SERIAL           FROM                 UNTIL                PURPOSE");
	if (strcmp(sub, "add") == 0 && r->n_args == 1) {
		if (!need(r, O_SCOPE) || !need(r, O_VENDOR) || !need(r, O_PRODUCT) ||
		    !need(r, O_SERIAL) || !need(r, O_CLASS) || !need(r, O_UNTIL) ||
		    !need(r, O_PURPOSE))
			return 2;
		body = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:s}", "scope", r->opt[O_SCOPE],
				 "vendor", r->opt[O_VENDOR], "product", r->opt[O_PRODUCT], "serial",
				 r->opt[O_SERIAL], "class", r->opt[O_CLASS], "until",
				 time_value(r->opt[O_UNTIL]), "purpose", r->opt[O_PURPOSE]);
		if (!body)
			return 1;
		if (r->opt[O_GROUP])
			json_object_set_new(body, "group", json_string(r->opt[O_GROUP]));
		if (r->opt[O_TERMINAL])
			json_object_set_new(body, "terminal", json_string(r->opt[O_TERMINAL]));
		if (r->opt[O_FROM])
			json_object_set_new(body, "from", time_value(r->opt[O_FROM]));
		if (r->opt[O_HASH])
			json_object_set_new(body, "hash", json_string(r->opt[O_HASH]));
		if (r->opt[O_LEDGER])
			json_object_set_new(body, "ledger", json_string(r->opt[O_LEDGER]));
		if (r->opt[O_APPROVED_BY])
			json_object_set_new(body, "approved_by",
					    json_string(r->opt[O_APPROVED_BY]));
		if (r->opt[O_USERS]) {
			json_t *u = json_array();
			_cleanup_free_ char *copy = strdup(r->opt[O_USERS]);
			char *save = NULL;
			for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
			     t = strtok_r(NULL, ",", &save))
				json_array_append_new(u, json_string(t));
			json_object_set_new(body, "users", u);
		}
		o = call_json(r, "POST", "/v1/exceptions", body);
		if (!o)
			return 1;
		printf("exception %s added, until %s\n", E(S(o, "id")), E(S(o, "until")));
		json_decref(o);
		return 0;
	}
	if (strcmp(sub, "revoke") == 0 && r->n_args == 2) {
		_cleanup_free_ char *path = NULL;
		if (!check_word(r, "exception id", r->args[1]) ||
		    asprintf(&path, "/v1/exceptions/%s/revoke", r->args[1]) < 0)
			return 1;
		body = json_object();
		if (r->opt[O_REASON])
			json_object_set_new(body, "reason", json_string(r->opt[O_REASON]));
		o = call_json(r, "POST", path, body);
		if (!o)
			return 1;
		printf("exception %s revoked\n", E(S(o, "id")));
		json_decref(o);
		return 0;
	}
	fprintf(stderr, "mynaguardctl: %s: expected list, add ... or revoke ID\n", r->cmd);
	return 2;
}

/* ---- totp (docs/fleet.md, "Central TOTP enrollment") ---- */

static void print_totp(json_t *t)
{
	_cleanup_free_ char *groups = json_dumps(json_object_get(t, "groups"), JSON_COMPACT);

	printf("%-20s %-8s %-4s %-20s %-20s %-20s %s\n", E(S(t, "user")), E(S(t, "state")),
	       E(S(t, "gen")), E(S(t, "enrolled_at")), E(S(t, "verified_at")),
	       E(S(t, "revoked_at")), E(groups));
}

static int totp_cmd(struct remote *r)
{
	const char *sub = r->n_args ? r->args[0] : "";
	json_t *o, *body;

	if (strcmp(sub, "list") == 0 && r->n_args == 1)
		return state_list(r, "totp", "totp", print_totp,
				  "USER                 STATE    GEN  ENROLLED             "
				  "VERIFIED             REVOKED              GROUPS");
	if (strcmp(sub, "enroll") == 0 && r->n_args == 2) {
		json_t *groups = json_array();
		_cleanup_free_ char *copy = NULL;
		char *save = NULL;
		const char *uri;

		if (!need(r, O_GROUPS) || !(copy = strdup(r->opt[O_GROUPS]))) {
			json_decref(groups);
			return 2;
		}
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
			json_array_append_new(groups, json_string(t));
		body = json_pack("{s:s,s:o}", "user", r->args[1], "groups", groups);
		if (body && r->opt[O_DIGITS])
			json_object_set_new(body, "digits", json_integer(atoi(r->opt[O_DIGITS])));
		if (body && r->opt[O_PERIOD])
			json_object_set_new(body, "period", json_integer(atoi(r->opt[O_PERIOD])));
		o = call_json(r, "POST", "/v1/totp", body);
		if (!o)
			return 1;
		uri = json_string_value(json_object_get(o, "otpauth"));
		if (!uri || strncmp(uri, "otpauth://totp/", 15) != 0) {
			fprintf(stderr, "mynaguardctl: %s: the answer has no otpauth URI\n",
				r->cmd);
			json_decref(o);
			return 1;
		}
		/* shown once: the collector keeps the secret encrypted and never shows it again */
		puts(uri);
		if (isatty(STDOUT_FILENO))
			ctl_totp_print_qr(uri);
		fflush(stdout);
		secmem_wipe_string((char *)uri);
		fprintf(stderr,
			"mynaguardctl: %s %s (generation %s) for the terminals of %s; pending "
			"until the clerk proves the app: mynaguardctl fleet totp verify %s\n",
			json_is_true(json_object_get(o, "replaced")) ? "re-enrolled" : "enrolled",
			E(S(o, "user")), E(S(o, "gen")), E(r->opt[O_GROUPS]), E(S(o, "user")));
		json_decref(o);
		return 0;
	}
	if (strcmp(sub, "recovery") == 0 && r->n_args == 2) {
		_cleanup_free_ char *path = NULL;
		const char *code;
		if (!check_word(r, "user", r->args[1]) ||
		    asprintf(&path, "/v1/totp/%s/recovery", r->args[1]) < 0)
			return 1;
		body = json_object();
		if (r->opt[O_HOURS])
			json_object_set_new(body, "hours", json_integer(atoi(r->opt[O_HOURS])));
		o = call_json(r, "POST", path, body);
		if (!o)
			return 1;
		code = json_string_value(json_object_get(o, "code"));
		if (!code) {
			json_decref(o);
			return 1;
		}
		/* shown once: tell it to the clerk; it works once per terminal until it ends */
		puts(code);
		fflush(stdout);
		secmem_wipe_string((char *)code);
		fprintf(stderr, "mynaguardctl: recovery code %s for %s, valid until %s\n",
			E(S(o, "rid")), E(S(o, "user")), E(S(o, "until")));
		json_decref(o);
		return 0;
	}
	if (strcmp(sub, "verify") == 0 && (r->n_args == 2 || r->n_args == 3)) {
		_cleanup_free_ char *path = NULL;
		char code[32] = "";
		int k = 0;
		if (!check_word(r, "user", r->args[1]) ||
		    asprintf(&path, "/v1/totp/%s/verify", r->args[1]) < 0)
			return 1;
		if (r->n_args == 3)
			snprintf(code, sizeof(code), "%s", r->args[2]);
		else
			k = ctl_totp_read_code(r->args[1], code, sizeof(code));
		if (k < 0) {
			secmem_wipe(code, sizeof(code));
			fprintf(stderr, "mynaguardctl: %s: no code read: %s; %s stays pending\n",
				r->cmd, k == -ENODATA ? "end of input" : strerror(-k), r->args[1]);
			return 1;
		}
		body = json_pack("{s:s}", "code", code);
		secmem_wipe(code, sizeof(code));
		o = call_json(r, "POST", path, body);
		if (!o)
			return 1;
		if (json_is_true(json_object_get(o, "already")))
			printf("%s: already verified (%s)\n", E(S(o, "user")),
			       E(S(o, "verified_at")));
		else
			printf("%s: code accepted; the enrollment is verified and reaches the "
			       "terminals of its groups at their next bundle fetch\n",
			       E(S(o, "user")));
		json_decref(o);
		return 0;
	}
	if (strcmp(sub, "revoke") == 0 && r->n_args == 2) {
		_cleanup_free_ char *path = NULL;
		if (!check_word(r, "user", r->args[1]) ||
		    asprintf(&path, "/v1/totp/%s/revoke", r->args[1]) < 0)
			return 1;
		body = json_object();
		if (r->opt[O_REASON])
			json_object_set_new(body, "reason", json_string(r->opt[O_REASON]));
		o = call_json(r, "POST", path, body);
		if (!o)
			return 1;
		printf("totp of %s revoked; every terminal removes it at its next bundle fetch\n",
		       E(S(o, "user")));
		json_decref(o);
		return 0;
	}
	fprintf(stderr,
		"mynaguardctl: %s: expected list, enroll USER --groups G, verify USER [CODE], "
		"recovery USER or revoke USER\n",
		r->cmd);
	return 2;
}

/* ---- request ---- */

static void print_request(json_t *q)
{
	printf("%-9s %-8s %-16s %s:%s %-16s %-13s %-20s %s\n", E(S(q, "code")), E(S(q, "state")),
	       E(S(q, "terminal")), E(S(q, "vendor")), E(S(q, "product")), E(S(q, "serial")),
	       E(S(q, "class")), E(S(q, "last_seen")),
	       S(q, "exception") ? E(S(q, "exception")) : E(S(q, "reason")));
}

static int request_cmd(struct remote *r)
{
	const char *sub = r->n_args ? r->args[0] : "";
	_cleanup_free_ char *path = NULL;
	json_t *o, *body;

	if (strcmp(sub, "list") == 0 && r->n_args == 1)
		return state_list(r, "requests", "requests", print_request,
				  "CODE      STATE    TERMINAL         DEVICE    SERIAL           "
				  "CLASS         LAST SEEN            EXCEPTION/REASON");
	if ((strcmp(sub, "grant") == 0 || strcmp(sub, "refuse") == 0) && r->n_args == 2) {
		if (!check_word(r, "request code", r->args[1]) ||
		    asprintf(&path, "/v1/requests/%s/%s", r->args[1], sub) < 0)
			return 1;
		if (sub[0] == 'g') {
			if (!need(r, O_UNTIL) || !need(r, O_PURPOSE))
				return 2;
			body = json_pack("{s:o,s:s}", "until", time_value(r->opt[O_UNTIL]),
					 "purpose", r->opt[O_PURPOSE]);
			if (r->opt[O_FROM])
				json_object_set_new(body, "from", time_value(r->opt[O_FROM]));
			if (r->opt[O_SCOPE])
				json_object_set_new(body, "scope", json_string(r->opt[O_SCOPE]));
			if (r->opt[O_LEDGER])
				json_object_set_new(body, "ledger", json_string(r->opt[O_LEDGER]));
			if (r->opt[O_APPROVED_BY])
				json_object_set_new(body, "approved_by",
						    json_string(r->opt[O_APPROVED_BY]));
			o = call_json(r, "POST", path, body);
			if (!o)
				return 1;
			printf("request %s granted: exception %s until %s\n", E(r->args[1]),
			       E(S(o, "id")), E(S(o, "until")));
		} else {
			if (!need(r, O_REASON))
				return 2;
			o = call_json(r, "POST", path,
				      json_pack("{s:s}", "reason", r->opt[O_REASON]));
			if (!o)
				return 1;
			printf("request %s refused\n", E(r->args[1]));
		}
		json_decref(o);
		return 0;
	}
	fprintf(stderr, "mynaguardctl: %s: expected list, grant CODE ... or refuse CODE ...\n",
		r->cmd);
	return 2;
}

/* ---- ledger ---- */

static void print_ledger(json_t *l)
{
	printf("%-12s %-16s %-12s %s:%s %-16s %-3s %-16s %s\n", E(S(l, "number")),
	       E(S(l, "holder")), E(S(l, "department")), E(S(l, "vendor")), E(S(l, "product")),
	       E(S(l, "serial")), json_is_true(json_object_get(l, "encrypted")) ? "yes" : "no",
	       E(S(l, "last_terminal")), E(S(l, "last_seen")));
}

static int ledger_cmd(struct remote *r)
{
	const char *sub = r->n_args ? r->args[0] : "";
	struct answer a;
	json_t *o, *body;

	if (strcmp(sub, "list") == 0 && r->n_args == 1)
		return state_list(r, "ledger", "ledger", print_ledger,
				  "NUMBER       HOLDER           DEPARTMENT   DEVICE    SERIAL     "
				  "      ENC LAST TERMINAL    LAST SEEN");
	if (strcmp(sub, "add") == 0 && r->n_args == 1) {
		if (!need(r, O_NUMBER) || !need(r, O_VENDOR) || !need(r, O_PRODUCT) ||
		    !need(r, O_SERIAL))
			return 2;
		const char *enc = r->opt[O_ENCRYPTED] ? r->opt[O_ENCRYPTED] : "no";
		if (strcmp(enc, "yes") != 0 && strcmp(enc, "no") != 0) {
			fprintf(stderr, "mynaguardctl: %s: --encrypted yes|no\n", r->cmd);
			return 2;
		}
		body = json_pack("{s:s,s:s,s:s,s:s,s:b}", "number", r->opt[O_NUMBER], "vendor",
				 r->opt[O_VENDOR], "product", r->opt[O_PRODUCT], "serial",
				 r->opt[O_SERIAL], "encrypted", enc[0] == 'y');
		static const enum opt_id texts[] = {O_HOLDER, O_DEPARTMENT, O_MODEL,
						    O_LENT,   O_RETURNED,   O_NOTE};
		for (size_t i = 0; body && i < ELEMENTSOF(texts); i++)
			if (r->opt[texts[i]])
				json_object_set_new(body, opt_names[texts[i]],
						    json_string(r->opt[texts[i]]));
		o = call_json(r, "POST", "/v1/ledger", body);
		if (!o)
			return 1;
		printf("ledger %s saved\n", E(S(o, "number")));
		json_decref(o);
		return 0;
	}
	if (strcmp(sub, "export") == 0 && r->n_args <= 2) {
		if (call(r, "GET", "/v1/ledger.csv", NULL, 0, NULL, &a) < 0)
			return 1;
		if (a.status != 200) {
			json_decref(expect_json(r, &a));
			return 1;
		}
		int k = 0;
		if (r->n_args == 2)
			k = fileio_write_atomic_path(r->args[1], a.body, a.len, 0640);
		else if (fwrite(a.body, 1, a.len, stdout) != a.len || fflush(stdout) != 0)
			k = -EIO;
		free(a.body);
		if (k < 0) {
			fprintf(stderr, "mynaguardctl: %s: %s: %s\n", r->cmd,
				r->n_args == 2 ? r->args[1] : "stdout", strerror(-k));
			return 1;
		}
		return 0;
	}
	if (strcmp(sub, "import") == 0 && r->n_args == 2) {
		_cleanup_free_ char *data = NULL;
		size_t len = 0;
		int k = fileio_read_file(AT_FDCWD, r->args[1], 16 * 1024 * 1024, &data, &len);
		if (k < 0) {
			fprintf(stderr, "mynaguardctl: %s: %s: %s\n", r->cmd, r->args[1],
				strerror(-k));
			return 1;
		}
		if (call(r, "POST", "/v1/ledger.csv", data, len, "text/csv; charset=utf-8", &a) < 0)
			return 1;
		o = expect_json(r, &a);
		if (!o)
			return 1;
		printf("ledger: %s rows imported\n", S(o, "imported"));
		json_decref(o);
		return 0;
	}
	fprintf(stderr, "mynaguardctl: %s: expected list, add ..., export [FILE] or import FILE\n",
		r->cmd);
	return 2;
}

/* ---- entry ---- */

int ctl_fleet_remote(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct remote *r);
		enum opt_id allowed[16];
		size_t n;
	} cmds[] = {
	    {"group", group_cmd, {0}, 0},
	    {"policy", policy_cmd, {0}, 0},
	    {"exception",
	     exception_cmd,
	     {O_STATE, O_UNTIL, O_FROM, O_SCOPE, O_PURPOSE, O_LEDGER, O_APPROVED_BY, O_REASON,
	      O_GROUP, O_TERMINAL, O_VENDOR, O_PRODUCT, O_SERIAL, O_CLASS, O_USERS, O_HASH},
	     16},
	    {"request",
	     request_cmd,
	     {O_STATE, O_UNTIL, O_FROM, O_SCOPE, O_PURPOSE, O_LEDGER, O_APPROVED_BY, O_REASON},
	     8},
	    {"totp", totp_cmd, {O_GROUPS, O_DIGITS, O_PERIOD, O_REASON, O_HOURS}, 5},
	    {"ledger",
	     ledger_cmd,
	     {O_NUMBER, O_HOLDER, O_DEPARTMENT, O_MODEL, O_VENDOR, O_PRODUCT, O_SERIAL, O_ENCRYPTED,
	      O_LENT, O_RETURNED, O_NOTE},
	     11},
	};
	char cmd[64];
	struct remote r = {0};
	int k, rc;

	for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
		if (strcmp(argv[0], cmds[i].name) != 0)
			continue;
		snprintf(cmd, sizeof(cmd), "fleet %s%s%s", cmds[i].name, argc > 1 ? " " : "",
			 argc > 1 && word_ok(argv[1]) ? argv[1] : "");
		r.cmd = cmd;
		k = parse(&r, argc, argv, cmds[i].allowed, cmds[i].n);
		if (k < 0)
			return k == -2 ? 0 : 2;
		if (connect_setup(&r) < 0) {
			remote_done(&r);
			return 1;
		}
		rc = cmds[i].fn(&r);
		remote_done(&r);
		curl_global_cleanup();
		return rc;
	}
	fprintf(stderr, "mynaguardctl: fleet: unknown command '%s'\n", argv[0]);
	remote_usage(stderr);
	return 2;
}
