/* SPDX-License-Identifier: MIT */
/* The exceptions JSON of a bundle (strict parser and canonical encoder, jansson), the checks
 * against a base's limits, the matcher and the request codes. The parser runs in the agent's
 * unprivileged worker only; the encoder in the collector. Never logs. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "bundle.h"
#include "macro.h"
#include "utf8.h"

#define CLS_MAX	   ((int)sizeof(((struct bundle_exception *)0)->cls) - 1)
#define USER_MAX   32
#define LEDGER_MAX 64

static int fail(char *err, size_t errsz, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errsz, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && errsz > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return r;
}

static bool id_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '.' || ch == '-';
}

static bool valid_token(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n < 1 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!id_char(s[i]))
			return false;
	return true;
}

/* A class word as written in [usb] block: a name or a code like 08, e0:01:03, ff:*:*. */
static bool valid_class(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > (size_t)CLS_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!id_char(s[i]) && s[i] != ':' && s[i] != '*')
			return false;
	return true;
}

/* Printable text: no control characters (shown on dashboards and in events). */
static bool valid_text(const char *s, size_t len, size_t max)
{
	if (len < 1 || len > max || strlen(s) != len || !utf8_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			return false;
	}
	return true;
}

static void exception_clear(struct bundle_exception *e)
{
	free(e->serial);
	free(e->descriptor_hash);
	for (size_t i = 0; i < e->n_users; i++)
		free(e->users[i]);
	free(e->purpose);
	free(e->approved_by);
	free(e->ledger);
	memset(e, 0, sizeof(*e));
}

void bundle_exceptions_free(struct bundle_exceptions *ex)
{
	if (!ex)
		return;
	for (size_t i = 0; i < ex->n; i++)
		exception_clear(&ex->items[i]);
	free(ex->items);
	ex->items = NULL;
	ex->n = 0;
	for (size_t i = 0; i < ex->n_totp; i++)
		free(ex->totp[i].sealed);
	free(ex->totp);
	ex->totp = NULL;
	ex->n_totp = 0;
	for (size_t i = 0; i < ex->n_recovery; i++)
		free(ex->recovery[i].sealed);
	free(ex->recovery);
	ex->recovery = NULL;
	ex->n_recovery = 0;
}

/* ---- the "totp" list ---- */

/* Strict base64 (padding required, nothing else) of at most max bytes; *ret malloc'd. */
static int base64_decode(const char *s, size_t max, uint8_t **ret, size_t *ret_len)
{
	size_t n = strlen(s), out;
	uint8_t *buf;
	int k;

	if (n == 0 || n % 4 || n / 4 * 3 > max + 2)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
			    s[i]) &&
		    !(s[i] == '=' && i >= n - 2 && (i == n - 1 || s[n - 1] == '=')))
			return -EBADMSG;
	buf = malloc(n / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	k = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n);
	out = k < 0 ? 0 : (size_t)k - (s[n - 1] == '=') - (s[n - 2] == '=');
	if (k < 0 || out > max) {
		free(buf);
		return -EBADMSG;
	}
	*ret = buf;
	*ret_len = out;
	return 0;
}

/* gen_key: "gen" (the "totp" list) or "rid" ("totp_recovery") */
static int parse_totp(json_t *o, size_t i, const char *gen_key, struct bundle_totp *t, char *err,
		      size_t errsz)
{
	const char *key, *user, *sealed;
	json_t *v, *gen;

	if (!json_is_object(o))
		return fail(err, errsz, -EBADMSG, "totp entry %zu: expected an object", i);
	json_object_foreach(o, key, v)
	{
		if (strcmp(key, "user") && strcmp(key, "sealed") && strcmp(key, gen_key))
			return fail(err, errsz, -EBADMSG, "totp entry %zu: unknown key", i);
	}
	user = json_string_value(json_object_get(o, "user"));
	sealed = json_string_value(json_object_get(o, "sealed"));
	gen = json_object_get(o, gen_key);
	if (!user || !bundle_totp_user_valid(user, strlen(user)))
		return fail(err, errsz, -EBADMSG, "totp entry %zu: user: expected a user name", i);
	snprintf(t->user, sizeof(t->user), "%s", user);
	if (!json_is_integer(gen) || json_integer_value(gen) < 1 ||
	    (uint64_t)json_integer_value(gen) >= BUNDLE_RECOVERY_GEN)
		return fail(err, errsz, -EBADMSG, "totp %s: %s: expected a whole number >= 1",
			    t->user, gen_key);
	t->gen = (uint64_t)json_integer_value(gen);
	if (!sealed || base64_decode(sealed, BUNDLE_SEALED_MAX, &t->sealed, &t->sealed_len) < 0)
		return fail(err, errsz, -EBADMSG, "totp %s: sealed: expected base64", t->user);
	return 0;
}

static int parse_totp_list(json_t *list, const char *gen_key, struct bundle_totp **items,
			   size_t *n_items, char *err, size_t errsz)
{
	size_t n = json_array_size(list);
	int r = 0;

	if (!json_is_array(list))
		return fail(err, errsz, -EBADMSG, "exceptions JSON: \"totp\": expected an array");
	if (n > BUNDLE_MAX_TOTP)
		return fail(err, errsz, -EBADMSG, "exceptions JSON: more than %d totp entries",
			    BUNDLE_MAX_TOTP);
	if (n == 0)
		return 0;
	*items = calloc(n, sizeof(**items));
	if (!*items)
		return -ENOMEM;
	for (size_t i = 0; i < n && r == 0; i++) {
		*n_items = i + 1;
		r = parse_totp(json_array_get(list, i), i, gen_key, &(*items)[i], err, errsz);
		for (size_t j = 0; j < i && r == 0; j++)
			if (strcmp((*items)[j].user, (*items)[i].user) == 0)
				r = fail(err, errsz, -EBADMSG, "totp %s: user listed twice",
					 (*items)[i].user);
	}
	return r;
}

static int hex4(const char *s, uint16_t *ret)
{
	unsigned v = 0;

	if (strlen(s) != 4)
		return -EINVAL;
	for (int i = 0; i < 4; i++) {
		char ch = s[i];
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			return -EINVAL;
		v = v * 16 + d;
	}
	*ret = (uint16_t)v;
	return 0;
}

/* "sha256:" + 64 hex digits → 64 lowercase hex digits. */
static int parse_hash(const char *s, char **ret)
{
	char h[65];

	if (strlen(s) != 7 + 64 || strncmp(s, "sha256:", 7) != 0)
		return -EINVAL;
	for (int i = 0; i < 64; i++) {
		char ch = s[7 + i];
		if (ch >= 'A' && ch <= 'F')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return -EINVAL;
		h[i] = ch;
	}
	h[64] = '\0';
	*ret = strdup(h);
	return *ret ? 0 : -ENOMEM;
}

static const char *const keys[] = {"id",    "vendor",  "product",     "serial",
				   "hash",  "class",   "users",	      "from",
				   "until", "purpose", "approved_by", "ledger"};

/* One exception object; i is its index for messages until its id is known. */
static int parse_one(json_t *o, size_t i, struct bundle_exception *e, char *err, size_t errsz)
{
	const char *key, *s;
	json_t *v;
	char where[BUNDLE_EXCEPTION_ID_MAX + 32];

	snprintf(where, sizeof(where), "exception %zu", i);
	if (!json_is_object(o))
		return fail(err, errsz, -EBADMSG, "%s: expected an object", where);
	json_object_foreach(o, key, v)
	{
		bool known = false;
		for (size_t k = 0; k < ELEMENTSOF(keys); k++)
			known = known || strcmp(keys[k], key) == 0;
		if (!known)
			return fail(err, errsz, -EBADMSG, "%s: unknown key \"%s\"", where,
				    valid_token(key, 40) ? key : "?");
	}
	for (size_t k = 0; k < ELEMENTSOF(keys); k++)
		if (!json_object_get(o, keys[k]))
			return fail(err, errsz, -EBADMSG, "%s: \"%s\" is missing", where, keys[k]);

	v = json_object_get(o, "id");
	if (!json_is_string(v) || !valid_token(json_string_value(v), BUNDLE_EXCEPTION_ID_MAX))
		return fail(err, errsz, -EBADMSG,
			    "%s: \"id\": expected 1 to %d letters, digits, '.', '_' or '-'", where,
			    BUNDLE_EXCEPTION_ID_MAX);
	snprintf(e->id, sizeof(e->id), "%s", json_string_value(v));
	snprintf(where, sizeof(where), "exception %s", e->id);

	v = json_object_get(o, "vendor");
	if (!json_is_string(v) || hex4(json_string_value(v), &e->vendor) < 0)
		return fail(err, errsz, -EBADMSG, "%s: \"vendor\": expected 4 hex digits", where);
	v = json_object_get(o, "product");
	if (!json_is_string(v) || hex4(json_string_value(v), &e->product) < 0)
		return fail(err, errsz, -EBADMSG, "%s: \"product\": expected 4 hex digits", where);

	v = json_object_get(o, "serial");
	if (!json_is_null(v)) {
		if (!json_is_string(v) ||
		    !valid_text(json_string_value(v), json_string_length(v),
				(size_t)POLICY_SERIAL_MAX * 4) ||
		    utf8_chars(json_string_value(v)) > POLICY_SERIAL_MAX)
			return fail(err, errsz, -EBADMSG,
				    "%s: \"serial\": expected 1 to %d printable characters or null",
				    where, POLICY_SERIAL_MAX);
		e->serial = strdup(json_string_value(v));
		if (!e->serial)
			return -ENOMEM;
	}

	v = json_object_get(o, "hash");
	if (!json_is_null(v)) {
		int r = json_is_string(v) ? parse_hash(json_string_value(v), &e->descriptor_hash)
					  : -EINVAL;
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return fail(err, errsz, -EBADMSG,
				    "%s: \"hash\": expected \"sha256:\" and 64 hex digits, or null",
				    where);
	}

	v = json_object_get(o, "class");
	if (!json_is_string(v) || !valid_class(json_string_value(v)))
		return fail(err, errsz, -EBADMSG,
			    "%s: \"class\": expected a block entry name like mass_storage", where);
	snprintf(e->cls, sizeof(e->cls), "%s", json_string_value(v));

	v = json_object_get(o, "users");
	if (!json_is_array(v))
		return fail(err, errsz, -EBADMSG, "%s: \"users\": expected an array of user names",
			    where);
	if (json_array_size(v) > BUNDLE_MAX_USERS)
		return fail(err, errsz, -EBADMSG, "%s: \"users\": at most %d users", where,
			    BUNDLE_MAX_USERS);
	for (size_t u = 0; u < json_array_size(v); u++) {
		json_t *name = json_array_get(v, u);
		s = json_string_value(name);
		if (!json_is_string(name) || !valid_token(s, USER_MAX) || s[0] == '-')
			return fail(err, errsz, -EBADMSG,
				    "%s: \"users\": expected user names (1 to %d letters, digits, "
				    "'.', '_' or '-')",
				    where, USER_MAX);
		for (size_t w = 0; w < e->n_users; w++)
			if (strcmp(e->users[w], s) == 0)
				return fail(err, errsz, -EBADMSG,
					    "%s: \"users\": \"%s\" is listed twice", where, s);
		e->users[e->n_users] = strdup(s);
		if (!e->users[e->n_users])
			return -ENOMEM;
		e->n_users++;
	}

	v = json_object_get(o, "from");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return fail(err, errsz, -EBADMSG,
			    "%s: \"from\": expected unix seconds (a whole number, 0 or more)",
			    where);
	e->from = (int64_t)json_integer_value(v);
	v = json_object_get(o, "until");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return fail(err, errsz, -EBADMSG,
			    "%s: \"until\": expected unix seconds (a whole number, 0 or more)",
			    where);
	e->until = (int64_t)json_integer_value(v);
	if (e->from >= e->until)
		return fail(err, errsz, -EBADMSG, "%s: \"from\" must be before \"until\"", where);

	v = json_object_get(o, "purpose");
	if (!json_is_string(v) ||
	    !valid_text(json_string_value(v), json_string_length(v), BUNDLE_TEXT_MAX))
		return fail(err, errsz, -EBADMSG,
			    "%s: \"purpose\": expected a text of 1 to %d bytes", where,
			    BUNDLE_TEXT_MAX);
	e->purpose = strdup(json_string_value(v));
	if (!e->purpose)
		return -ENOMEM;
	v = json_object_get(o, "approved_by");
	if (!json_is_string(v) ||
	    !valid_text(json_string_value(v), json_string_length(v), BUNDLE_TEXT_MAX))
		return fail(err, errsz, -EBADMSG,
			    "%s: \"approved_by\": expected a text of 1 to %d bytes", where,
			    BUNDLE_TEXT_MAX);
	e->approved_by = strdup(json_string_value(v));
	if (!e->approved_by)
		return -ENOMEM;

	v = json_object_get(o, "ledger");
	if (!json_is_null(v)) {
		if (!json_is_string(v) || !valid_token(json_string_value(v), LEDGER_MAX))
			return fail(err, errsz, -EBADMSG,
				    "%s: \"ledger\": expected a registration number (1 to %d "
				    "letters, digits, '.', '_' or '-') or null",
				    where, LEDGER_MAX);
		e->ledger = strdup(json_string_value(v));
		if (!e->ledger)
			return -ENOMEM;
	}
	return 0;
}

int bundle_exceptions_parse(const char *json, size_t len, struct bundle_exceptions *ret, char *err,
			    size_t errsz)
{
	struct bundle_exceptions ex = {0};
	json_error_t jerr;
	json_t *root, *list;
	const char *key;
	json_t *v;
	int r = 0;

	if (!json && len > 0)
		return fail(err, errsz, -EINVAL, "no JSON");
	if (len > BUNDLE_MAX_BYTES)
		return fail(err, errsz, -EFBIG, "exceptions JSON too large");
	root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jansson quotes the input near the error: keep it printable ASCII. */
		for (char *c = jerr.text; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
				*c = '?';
		return fail(err, errsz, -EBADMSG, "exceptions JSON: %s at line %d", jerr.text,
			    jerr.line);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return fail(err, errsz, -EBADMSG, "exceptions JSON: expected an object");
	}
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "exceptions") != 0 && strcmp(key, "totp") != 0 &&
		    strcmp(key, "totp_recovery") != 0) {
			json_decref(root);
			return fail(err, errsz, -EBADMSG,
				    "exceptions JSON: unknown key: expected only \"exceptions\", "
				    "\"totp\" and \"totp_recovery\"");
		}
	}
	list = json_object_get(root, "exceptions");
	if (!json_is_array(list)) {
		json_decref(root);
		return fail(err, errsz, -EBADMSG,
			    "exceptions JSON: \"exceptions\": expected an array");
	}
	if (json_array_size(list) > BUNDLE_MAX_EXCEPTIONS) {
		json_decref(root);
		return fail(err, errsz, -EBADMSG, "exceptions JSON: more than %d exceptions",
			    BUNDLE_MAX_EXCEPTIONS);
	}
	if (json_array_size(list) > 0) {
		ex.items = calloc(json_array_size(list), sizeof(*ex.items));
		if (!ex.items) {
			json_decref(root);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < json_array_size(list) && r == 0; i++) {
		struct bundle_exception *e = &ex.items[i];
		ex.n = i + 1; /* so that the partly parsed one is freed too */
		r = parse_one(json_array_get(list, i), i, e, err, errsz);
		for (size_t j = 0; j < i && r == 0; j++)
			if (strcmp(ex.items[j].id, e->id) == 0)
				r = fail(err, errsz, -EBADMSG, "exception %s: id used twice",
					 e->id);
	}
	if (r == 0 && json_object_get(root, "totp"))
		r = parse_totp_list(json_object_get(root, "totp"), "gen", &ex.totp, &ex.n_totp, err,
				    errsz);
	if (r == 0 && json_object_get(root, "totp_recovery"))
		r = parse_totp_list(json_object_get(root, "totp_recovery"), "rid", &ex.recovery,
				    &ex.n_recovery, err, errsz);
	json_decref(root);
	if (r < 0) {
		bundle_exceptions_free(&ex);
		return r;
	}
	*ret = ex;
	return 0;
}

static json_t *opt_string(const char *s)
{
	return s ? json_string(s) : json_null();
}

static bool utf8_or_null(const char *s)
{
	return !s || utf8_valid(s, strlen(s));
}

/* What the encoder needs to write valid JSON; the parser checks the rest on the terminal. */
static bool encodable(const struct bundle_exception *e)
{
	if (!utf8_valid(e->id, strnlen(e->id, sizeof(e->id))) ||
	    !utf8_valid(e->cls, strnlen(e->cls, sizeof(e->cls))) || !utf8_or_null(e->serial) ||
	    !utf8_or_null(e->descriptor_hash) || !utf8_or_null(e->purpose) ||
	    !utf8_or_null(e->approved_by) || !utf8_or_null(e->ledger) ||
	    e->n_users > BUNDLE_MAX_USERS || strnlen(e->id, sizeof(e->id)) == sizeof(e->id) ||
	    strnlen(e->cls, sizeof(e->cls)) == sizeof(e->cls))
		return false;
	for (size_t u = 0; u < e->n_users; u++)
		if (!e->users[u] || !utf8_valid(e->users[u], strlen(e->users[u])))
			return false;
	return true;
}

static json_t *exception_json(const struct bundle_exception *e)
{
	json_t *o = json_object(), *users = json_array();
	char vendor[5], product[5], hash[7 + 65];
	bool ok;

	if (!o || !users || json_object_set_new(o, "id", json_string(e->id)) < 0) {
		json_decref(o);
		json_decref(users);
		return NULL;
	}
	snprintf(vendor, sizeof(vendor), "%04x", e->vendor);
	snprintf(product, sizeof(product), "%04x", e->product);
	if (e->descriptor_hash)
		snprintf(hash, sizeof(hash), "sha256:%s", e->descriptor_hash);
	ok = true;
	for (size_t u = 0; ok && u < e->n_users; u++)
		ok = json_array_append_new(users, json_string(e->users[u])) == 0;
	if (!ok) {
		json_decref(o);
		json_decref(users);
		return NULL;
	}
	/* The key order of docs/fleet.md (jansson keeps insertion order); set_new takes each
	 * value's reference, even when it fails. */
	ok = json_object_set_new(o, "vendor", json_string(vendor)) == 0 &&
	     json_object_set_new(o, "product", json_string(product)) == 0 &&
	     json_object_set_new(o, "serial", opt_string(e->serial)) == 0 &&
	     json_object_set_new(o, "hash", e->descriptor_hash ? json_string(hash) : json_null()) ==
		 0 &&
	     json_object_set_new(o, "class", json_string(e->cls)) == 0;
	if (!ok) {
		json_decref(users);
		json_decref(o);
		return NULL;
	}
	ok = json_object_set_new(o, "users", users) == 0 &&
	     json_object_set_new(o, "from", json_integer(e->from)) == 0 &&
	     json_object_set_new(o, "until", json_integer(e->until)) == 0 &&
	     json_object_set_new(o, "purpose", opt_string(e->purpose)) == 0 &&
	     json_object_set_new(o, "approved_by", opt_string(e->approved_by)) == 0 &&
	     json_object_set_new(o, "ledger", opt_string(e->ledger)) == 0;
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A "totp" or "totp_recovery" list (none when n is 0): keys in the order the monitor looks
 * for (docs/fleet.md). */
static int totp_list_json(json_t *root, const char *name, const char *gen_key,
			  const struct bundle_totp *items, size_t n)
{
	json_t *tl;

	if (n == 0)
		return 0;
	tl = json_array();
	if (!tl || json_object_set_new(root, name, tl) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct bundle_totp *t = &items[i];
		char *b64 = malloc(4 * ((t->sealed_len + 2) / 3) + 1);
		json_t *o;
		if (!b64 || !bundle_totp_user_valid(t->user, strlen(t->user)) || t->gen < 1 ||
		    t->gen >= BUNDLE_RECOVERY_GEN) {
			free(b64);
			return -EINVAL;
		}
		EVP_EncodeBlock((unsigned char *)b64, t->sealed, (int)t->sealed_len);
		o = json_pack("{s:s, s:s, s:I}", "user", t->user, "sealed", b64, gen_key,
			      (json_int_t)t->gen);
		free(b64);
		if (json_array_append_new(tl, o) < 0)
			return -ENOMEM;
	}
	return 0;
}

int bundle_exceptions_to_json(const struct bundle_exceptions *ex, char **ret)
{
	json_t *root, *list;
	char *text;

	for (size_t i = 0; ex && i < ex->n; i++)
		if (!encodable(&ex->items[i]))
			return -EINVAL;
	root = json_object();
	list = json_array();
	if (!root || !list) {
		json_decref(root);
		json_decref(list);
		return -ENOMEM;
	}
	if (json_object_set_new(root, "exceptions", list) < 0) {
		json_decref(root);
		return -ENOMEM;
	}
	for (size_t i = 0; ex && i < ex->n; i++) {
		if (json_array_append_new(list, exception_json(&ex->items[i])) < 0) {
			json_decref(root);
			return -ENOMEM;
		}
	}
	if (ex &&
	    (totp_list_json(root, "totp", "gen", ex->totp, ex->n_totp) < 0 ||
	     totp_list_json(root, "totp_recovery", "rid", ex->recovery, ex->n_recovery) < 0)) {
		json_decref(root);
		return -EINVAL;
	}
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	*ret = text;
	return 0;
}

/* The grant classes an exception's class names: entries written with that word. */
static bool grant_class_listed(const struct policy *base, const char *cls)
{
	for (size_t i = 0; i < base->n_fleet_grant_classes; i++)
		if (strcmp(base->fleet_grant_classes[i].name, cls) == 0)
			return true;
	return false;
}

int bundle_check_limits(const struct policy *base, const struct bundle_exceptions *ex, char *err,
			size_t errsz)
{
	if (!base || !ex)
		return fail(err, errsz, -EINVAL, "no base or exceptions");
	for (size_t i = 0; i < ex->n; i++) {
		const struct bundle_exception *e = &ex->items[i];
		uint64_t max = (uint64_t)base->fleet_grant_max_days * 86400;
		if (!base->fleet)
			return fail(err, errsz, -EPERM,
				    "exception %s: the base has no [fleet] section", e->id);
		if (!grant_class_listed(base, e->cls))
			return fail(err, errsz, -EPERM,
				    "exception %s: class %s is not in the base's grant_classes",
				    e->id, e->cls);
		if (!e->serial)
			return fail(err, errsz, -EPERM, "exception %s: no serial number", e->id);
		if (e->until <= e->from || (uint64_t)(e->until - e->from) > max)
			return fail(err, errsz, -EPERM,
				    "exception %s: longer than the base's grant_max_days (%u)",
				    e->id, base->fleet_grant_max_days);
	}
	return 0;
}

static bool same_string(const char *want, const char *have)
{
	return have && strcmp(want, have) == 0;
}

bool bundle_exception_matches(const struct bundle_exception *e, const struct policy_usb_device *dev,
			      int64_t now)
{
	if (!e || !dev)
		return false;
	if (now < e->from || now >= e->until)
		return false;
	if (e->vendor != dev->vendor || e->product != dev->product)
		return false;
	if (e->serial && !same_string(e->serial, dev->serial))
		return false;
	if (e->descriptor_hash && !same_string(e->descriptor_hash, dev->descriptor_hash))
		return false;
	return true;
}

bool bundle_exception_opens(const struct policy *base, const struct bundle_exception *e,
			    const struct policy_usb_class *block)
{
	if (!base || !e || !block || !base->fleet)
		return false;
	for (size_t i = 0; i < base->n_fleet_grant_classes; i++) {
		const struct policy_usb_class *g = &base->fleet_grant_classes[i];
		if (strcmp(g->name, e->cls) == 0 && g->cls == block->cls &&
		    g->subclass == block->subclass && g->protocol == block->protocol &&
		    g->mtp == block->mtp)
			return true;
	}
	return false;
}

void bundle_request_code(const char *terminal_id, uint16_t vendor, uint16_t product,
			 const char *serial, char out[9])
{
	static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char vp[10];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t bits;
	bool ok;

	snprintf(vp, sizeof(vp), "%04x", vendor);
	snprintf(vp + 5, sizeof(vp) - 5, "%04x", product);
	vp[4] = '\0';
	if (!terminal_id)
		terminal_id = "";
	if (!serial)
		serial = "";
	/* SHA-256(terminal_id "\0" vendor "\0" product "\0" serial): each part with its NUL but
	 * the last. */
	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, terminal_id, strlen(terminal_id) + 1) == 1 &&
	     EVP_DigestUpdate(ctx, vp, 5) == 1 && EVP_DigestUpdate(ctx, vp + 5, 5) == 1 &&
	     EVP_DigestUpdate(ctx, serial, strlen(serial)) == 1 &&
	     EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 5;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		memset(md, 0, 5); /* cannot happen short of memory; a fixed code, not garbage */
	}
	bits = ((uint64_t)md[0] << 32) | ((uint64_t)md[1] << 24) | ((uint64_t)md[2] << 16) |
	       ((uint64_t)md[3] << 8) | md[4];
	for (int i = 0; i < 8; i++)
		out[i] = alphabet[(bits >> (35 - 5 * i)) & 0x1f];
	out[8] = '\0';
}
