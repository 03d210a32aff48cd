/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: strict INI parsing of collector.conf (libinih); an unknown section or key,
 * a bad value or a repeated key is an error with its line number. */
#include "conf.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "config.h" /* generated: default paths */
#include "event.h"
#include "macro.h"
#include "parse.h"
#include "store-pg.h"
#include "review.h"
#include "utf8.h"

/* "%.*s" arguments that keep at most n bytes of s without cutting a character */
#define CUT(s, n) (int)utf8_truncate((s), strlen(s), (n)), (s)

enum key_type {
	KEY_STRING,
	KEY_UINT,
	KEY_SIZE,
	KEY_DURATION,
	KEY_LISTEN,
	KEY_BOOL,
};

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	uint64_t min, max;
};

#define OFF(f) offsetof(struct collector_config, f)

static const struct key keys[] = {
    {"ingest", "listen", KEY_LISTEN, OFF(ingest_listen), 0, 0},
    {"ingest", "certificate", KEY_STRING, OFF(tls_certificate), 0, 0},
    {"ingest", "key", KEY_STRING, OFF(tls_key), 0, 0},
    {"ingest", "client_ca", KEY_STRING, OFF(client_ca), 0, 0},
    {"ingest", "revoked_serials", KEY_STRING, OFF(revoked_serials), 0, 0},
    {"ingest", "workers", KEY_UINT, OFF(workers), 1, 64},
    {"ingest", "max_connections", KEY_UINT, OFF(max_connections), 1, 1000000},
    {"ingest", "max_body", KEY_SIZE, OFF(max_body), 1024, 4 * 1024 * 1024},
    {"ingest", "max_headers", KEY_SIZE, OFF(max_headers), 1024, 1024 * 1024},
    {"ingest", "request_timeout", KEY_DURATION, OFF(request_timeout), 1, 3600},
    {"ingest", "max_queue", KEY_UINT, OFF(max_queue), 1, 100000000},
    {"ingest", "retry_after", KEY_DURATION, OFF(retry_after), 1, 3600},
    {"dashboard", "listen", KEY_LISTEN, OFF(dashboard_listen), 0, 0},
    {"dashboard", "certificate", KEY_STRING, OFF(dashboard_certificate), 0, 0},
    {"dashboard", "key", KEY_STRING, OFF(dashboard_key), 0, 0},
    {"dashboard", "token_file", KEY_STRING, OFF(token_file), 0, 0},
    {"dashboard", "max_connections", KEY_UINT, OFF(dashboard_max_connections), 1, 100000},
    {"dashboard", "web_root", KEY_STRING, OFF(web_root), 0, 0},
    {"dashboard", "session_idle", KEY_DURATION, OFF(session_idle), 10, 86400},
    {"dashboard", "session_max", KEY_DURATION, OFF(session_max), 10, 7 * 86400},
    {"store", "database", KEY_STRING, OFF(database), 0, 0},
    {"store", "backend", KEY_STRING, OFF(store_backend), 0, 0},
    {"store", "url", KEY_STRING, OFF(store_url), 0, 0},
    {"store", "read_url", KEY_STRING, OFF(store_read_url), 0, 0},
    {"store", "retention", KEY_DURATION, OFF(retention), 0, 100ULL * 365 * 86400},
    {"enroll", "listen", KEY_LISTEN, OFF(enroll_listen), 0, 0},
    {"enroll", "signer", KEY_STRING, OFF(enroll_signer), 0, 0},
    {"enroll", "database", KEY_STRING, OFF(enroll_database), 0, 0},
    {"enroll", "timeout", KEY_DURATION, OFF(enroll_timeout), 1, 300},
    {"terminals", "report_interval", KEY_DURATION, OFF(report_interval), 10, 7 * 86400},
    {"terminals", "clock_drift", KEY_DURATION, OFF(clock_drift), 1, 86400},
    {"fleet", "grant_key", KEY_STRING, OFF(fleet_grant_key), 0, 0},
    {"fleet", "root_key", KEY_STRING, OFF(fleet_root_key), 0, 0},
    {"evidence", "heads_key", KEY_STRING, OFF(heads_key), 0, 0},
    {"evidence", "heads_public_key", KEY_STRING, OFF(heads_public_key), 0, 0},
    /* the default period has two names: the older [store] retention, or this one */
    {"retention", "default", KEY_DURATION, OFF(retention), 0, 100ULL * 365 * 86400},
    {"fleet", "totp_key", KEY_STRING, OFF(fleet_totp_key), 0, 0},
    {"accounts", "secret_key", KEY_STRING, OFF(accounts_secret_key), 0, 0},
    {"alerts", "interval", KEY_DURATION, OFF(alert_interval), 1, 86400},
    {"alerts", "state", KEY_STRING, OFF(alert_state), 0, 0},
    {"alerts", "smtp", KEY_STRING, OFF(alert_smtp), 0, 0},
    {"alerts", "starttls", KEY_BOOL, OFF(alert_starttls), 0, 0},
    {"alerts", "smtp_ca", KEY_STRING, OFF(alert_smtp_ca), 0, 0},
    {"alerts", "smtp_user", KEY_STRING, OFF(alert_smtp_user), 0, 0},
    {"alerts", "smtp_password_file", KEY_STRING, OFF(alert_smtp_password_file), 0, 0},
    {"alerts", "from", KEY_STRING, OFF(alert_from), 0, 0},
    {"alerts", "to", KEY_STRING, OFF(alert_to), 0, 0},
    {"alerts", "webhook", KEY_STRING, OFF(alert_webhook), 0, 0},
    {"alerts", "digest", KEY_STRING, OFF(alert_digest), 0, 0},
    {"alerts", "timeout", KEY_DURATION, OFF(alert_timeout), 1, 300},
    {"alerts", "cert_warning", KEY_DURATION, OFF(alert_cert_warning), 86400, 365 * 86400},
    {"alerts", "review_grace", KEY_DURATION, OFF(alert_review_grace), 0, 90 * 86400},
    {"review", "period", KEY_STRING, OFF(review_period), 0, 0},
    {"review", "office_hours", KEY_STRING, OFF(office_hours), 0, 0},
    {"review", "office_days", KEY_STRING, OFF(office_days), 0, 0},
    {"review", "burst_failures", KEY_UINT, OFF(burst_failures), 2, 1000},
    {"review", "burst_minutes", KEY_UINT, OFF(burst_minutes), 1, 1440},
    {"evidence", "key", KEY_STRING, OFF(evidence_key), 0, 0},
};

struct parse_state {
	struct collector_config *c;
	const char *name;
	bool seen[ELEMENTSOF(keys)];
	char *err;
	int line_hint; /* libinih reports the line; we only write the message */
};

static void set_err(struct parse_state *s, const char *fmt, ...) _printf_(2, 3);
static void set_err(struct parse_state *s, const char *fmt, ...)
{
	va_list ap;

	if (s->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(s->err, CONFIG_ERROR_MAX, fmt, ap);
	va_end(ap);
	s->err[utf8_truncate(s->err, strlen(s->err), CONFIG_ERROR_MAX - 2)] = 0;
}

static bool listen_valid(const char *v)
{
	const char *colon;
	unsigned port;

	if (v[0] == '[') {
		const char *end = strchr(v, ']');
		if (!end || end == v + 1 || end[1] != ':')
			return false;
		colon = end + 1;
	} else {
		colon = strrchr(v, ':');
		if (!colon || colon == v || memchr(v, ':', (size_t)(colon - v)))
			return false;
	}
	return parse_uint(colon + 1, 0, 65535, &port) >= 0;
}

/* [retention] hold = ID ID ...: terminal ids separated by spaces, each once. */
static int parse_hold(struct parse_state *s, const char *value)
{
	struct collector_config *c = s->c;
	_cleanup_free_ char *copy = strdup(value);
	char *save = NULL;

	if (!copy) {
		set_err(s, "out of memory");
		return 0;
	}
	if (c->retention_hold) {
		set_err(s, "[retention] hold given twice");
		return 0;
	}
	c->retention_hold = calloc(CONFIG_HOLD_MAX, sizeof(*c->retention_hold));
	if (!c->retention_hold) {
		set_err(s, "out of memory");
		return 0;
	}
	for (char *id = strtok_r(copy, " \t", &save); id; id = strtok_r(NULL, " \t", &save)) {
		if (!event_terminal_id_valid(id)) {
			set_err(s, "[retention] hold: \"%.*s\" is not a terminal id", CUT(id, 80));
			return 0;
		}
		for (size_t i = 0; i < c->n_retention_hold; i++)
			if (strcmp(c->retention_hold[i], id) == 0) {
				set_err(s, "[retention] hold: %s named twice", id);
				return 0;
			}
		if (c->n_retention_hold == CONFIG_HOLD_MAX) {
			set_err(s, "[retention] hold: more than %d terminals", CONFIG_HOLD_MAX);
			return 0;
		}
		c->retention_hold[c->n_retention_hold] = strdup(id);
		if (!c->retention_hold[c->n_retention_hold]) {
			set_err(s, "out of memory");
			return 0;
		}
		c->n_retention_hold++;
	}
	if (c->n_retention_hold == 0) {
		set_err(s, "[retention] hold: empty (name terminal ids separated by spaces)");
		return 0;
	}
	return 1;
}

/* [retention] KIND = PERIOD or PREFIX.* = PERIOD: a known kind, or a prefix of one. */
static int parse_retention_rule(struct parse_state *s, const char *name, const char *value)
{
	struct collector_config *c = s->c;
	size_t len = strlen(name);
	bool prefix = len > 2 && strcmp(name + len - 2, ".*") == 0, known = false;
	struct config_retention_rule *rule;
	uint64_t v;

	for (int k = 0; k < _EVENT_KIND_MAX && !known; k++) {
		const char *kind = event_kind_name((enum event_kind)k);
		known = prefix ? strncmp(kind, name, len - 1) == 0 : strcmp(kind, name) == 0;
	}
	if (!known) {
		set_err(
		    s,
		    "unknown key \"%.*s\" in [retention] (expected default, hold, an event kind "
		    "or a kind prefix like auth.*)",
		    CUT(name, 60));
		return 0;
	}
	for (size_t i = 0; i < c->n_retention_rules; i++)
		if (strcmp(c->retention_rules[i].pattern, name) == 0) {
			set_err(s, "[retention] %s given twice", name);
			return 0;
		}
	if (c->n_retention_rules == CONFIG_RETENTION_RULES_MAX) {
		set_err(s, "[retention]: more than %d periods", CONFIG_RETENTION_RULES_MAX);
		return 0;
	}
	if (parse_duration(value, 0, 100ULL * 365 * 86400, &v) < 0) {
		set_err(s,
			"[retention] %s: expected a duration (like 400d, 5y; 0 keeps) up to 100y",
			name);
		return 0;
	}
	rule = &c->retention_rules[c->n_retention_rules];
	rule->pattern = strdup(name);
	if (!rule->pattern) {
		set_err(s, "out of memory");
		return 0;
	}
	rule->period = v;
	c->n_retention_rules++;
	return 1;
}

/* The period of each kind: its own rule, else the longest prefix rule, else the default. */
static void retention_resolve(struct collector_config *c)
{
	for (int k = 0; k < _EVENT_KIND_MAX; k++) {
		const char *kind = event_kind_name((enum event_kind)k);
		size_t best = 0;

		c->retention_kind[k] = c->retention;
		for (size_t i = 0; i < c->n_retention_rules; i++) {
			const struct config_retention_rule *r = &c->retention_rules[i];
			size_t len = strlen(r->pattern);
			if (strcmp(r->pattern, kind) == 0) {
				c->retention_kind[k] = r->period;
				break;
			}
			if (len > 2 && strcmp(r->pattern + len - 2, ".*") == 0 &&
			    strncmp(kind, r->pattern, len - 1) == 0 && len > best) {
				best = len;
				c->retention_kind[k] = r->period;
			}
		}
	}
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *s = user;

	if (strcmp(section, "retention") == 0) {
		if (strcmp(name, "hold") == 0)
			return parse_hold(s, value);
		if (strcmp(name, "default") != 0)
			return parse_retention_rule(s, name, value);
	}

	for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
		const struct key *k = &keys[i];
		void *field = (char *)s->c + k->offset;
		int r;

		if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
			continue;
		if (s->seen[i]) {
			set_err(s, "[%s] %s given twice", section, name);
			return 0;
		}
		s->seen[i] = true;
		switch (k->type) {
		case KEY_LISTEN:
			if (!listen_valid(value)) {
				set_err(s,
					"[%s] %s: expected HOST:PORT or [IPV6]:PORT, got \"%.*s\"",
					section, name, CUT(value, 80));
				return 0;
			}
			__attribute__((fallthrough));
		case KEY_STRING: {
			char **p = field;
			if (!value[0]) {
				set_err(s, "[%s] %s: empty value", section, name);
				return 0;
			}
			free(*p);
			*p = strdup(value);
			if (!*p) {
				set_err(s, "out of memory");
				return 0;
			}
			return 1;
		}
		case KEY_BOOL: {
			if (parse_bool(value, (bool *)field) < 0) {
				set_err(s, "[%s] %s: expected yes or no", section, name);
				return 0;
			}
			return 1;
		}
		case KEY_UINT: {
			unsigned v;
			r = parse_uint(value, (unsigned)k->min, (unsigned)k->max, &v);
			if (r < 0) {
				set_err(s, "[%s] %s: expected a whole number from %llu to %llu",
					section, name, (unsigned long long)k->min,
					(unsigned long long)k->max);
				return 0;
			}
			*(unsigned *)field = v;
			return 1;
		}
		case KEY_SIZE: {
			uint64_t v;
			r = parse_size(value, k->min, k->max, &v);
			if (r < 0) {
				set_err(
				    s,
				    "[%s] %s: expected a size (like 512K or 4M) from %llu to %llu bytes",
				    section, name, (unsigned long long)k->min,
				    (unsigned long long)k->max);
				return 0;
			}
			*(uint64_t *)field = v;
			return 1;
		}
		case KEY_DURATION: {
			uint64_t v;
			r = parse_duration(value, k->min, k->max, &v);
			if (r < 0) {
				set_err(
				    s,
				    "[%s] %s: expected a duration (like 30s, 5m, 400d) from %llu to %llu seconds",
				    section, name, (unsigned long long)k->min,
				    (unsigned long long)k->max);
				return 0;
			}
			*(uint64_t *)field = v;
			return 1;
		}
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		if (strcmp(keys[i].section, section) == 0) {
			set_err(s, "unknown key \"%.*s\" in [%s]", CUT(name, 60), section);
			return 0;
		}
	if (!section[0])
		set_err(s, "key \"%.*s\" outside a section", CUT(name, 60));
	else
		set_err(s, "unknown section [%.*s]", CUT(section, 60));
	return 0;
}

static void config_defaults(struct collector_config *c)
{
	*c = (struct collector_config){
	    .workers = 2,
	    .max_connections = 4096,
	    .max_body = 4 * 1024 * 1024,
	    .max_headers = 16 * 1024,
	    .request_timeout = 30,
	    .max_queue = 200000,
	    .retry_after = 5,
	    .dashboard_max_connections = 256,
	    .retention = 400 * 86400ULL,
	    .enroll_timeout = 10,
	    .report_interval = 300,
	    .session_idle = 900,
	    .session_max = 8 * 3600,
	    .clock_drift = 120,
	    .alert_interval = 60,
	    .alert_digest_minute = -1,
	    .alert_timeout = 10,
	    .alert_cert_warning = 30 * 86400,
	    .alert_review_grace = 5 * 86400,
	    .burst_failures = 5,
	    .burst_minutes = 10,
	};
}

static int dup_default(char **p, const char *v)
{
	if (*p)
		return 0;
	*p = strdup(v);
	return *p ? 0 : -ENOMEM;
}

/* Checks the result r of ini_parse_*() and the parsed values as a whole. */
static bool key_seen(const struct parse_state *s, const char *section, const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return s->seen[i];
	return false;
}

/* [store] backend = sqlite (database = PATH) | postgresql (url = a libpq URI or conninfo): for
 * PostgreSQL, database becomes the store location STORE_PG_PREFIX + url (store-pg.h), and the
 * enrollment database's default stays beside the default SQLite path. A password in the url is
 * refused: it would be logged with the location; libpq reads it from a password file. */
static int pg_url_check(struct parse_state *s, const char *key, const char *url)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &errmsg);

	if (!opts) {
		snprintf(s->err, CONFIG_ERROR_MAX, "%s: [store] %s: %s", s->name, key,
			 errmsg ? errmsg : "out of memory");
		PQfreemem(errmsg);
		return -EINVAL;
	}
	PQconninfoFree(opts);
	if (store_pg_url_has_password(url)) {
		snprintf(s->err, CONFIG_ERROR_MAX,
			 "%s: [store] %s must not hold a password: use a password file "
			 "(passfile=..., PGPASSFILE) or a client certificate",
			 s->name, key);
		return -EINVAL;
	}
	return 0;
}

static int store_backend_resolve(struct collector_config *c, struct parse_state *s)
{
	char *loc = NULL;
	int r;

	if (!c->store_backend || strcmp(c->store_backend, "sqlite") == 0) {
		if (c->store_url || c->store_read_url) {
			snprintf(s->err, CONFIG_ERROR_MAX,
				 "%s: [store] url and read_url need [store] backend = postgresql",
				 s->name);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(c->store_backend, "postgresql") != 0) {
		snprintf(s->err, CONFIG_ERROR_MAX,
			 "%s: [store] backend must be sqlite or postgresql", s->name);
		return -EINVAL;
	}
	if (!c->store_url) {
		snprintf(s->err, CONFIG_ERROR_MAX,
			 "%s: [store] backend = postgresql needs [store] url", s->name);
		return -EINVAL;
	}
	if (key_seen(s, "store", "database")) {
		snprintf(s->err, CONFIG_ERROR_MAX,
			 "%s: [store] database is the SQLite file: leave it out with backend = "
			 "postgresql",
			 s->name);
		return -EINVAL;
	}
	r = pg_url_check(s, "url", c->store_url);
	if (r >= 0 && c->store_read_url)
		r = pg_url_check(s, "read_url", c->store_read_url);
	if (r < 0)
		return r;
	if (c->store_read_url &&
	    asprintf(&c->store_read_location, "%s%s", STORE_PG_PREFIX, c->store_read_url) < 0) {
		c->store_read_location = NULL;
		return -ENOMEM;
	}
	if (asprintf(&loc, "%s%s", STORE_PG_PREFIX, c->store_url) < 0)
		return -ENOMEM;
	free(c->database);
	c->database = loc;
	return 0;
}

int config_state_file(const struct collector_config *c, const char *name, char **ret)
{
	/* on PostgreSQL [store] database is the server's location, not a file */
	const char *base = store_pg_location(c->database) ? MYNAGUARD_COLLECTOR_DB : c->database;
	const char *slash = strrchr(base, '/');
	int n = slash ? (int)(slash - base + 1) : 0;

	if (asprintf(ret, "%.*s%s", n, base, name) < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int config_check(struct parse_state *s, int r)
{
	struct collector_config *c = s->c;

	if (r > 0) {
		char msg[200];
		snprintf(msg, sizeof(msg), "%s", s->err[0] ? s->err : "syntax error");
		snprintf(s->err, CONFIG_ERROR_MAX, "%.*s:%d: %s", CUT(s->name, 280), r, msg);
		return -EINVAL;
	}
	if (r < 0) {
		snprintf(s->err, CONFIG_ERROR_MAX, "%s: cannot read the file", s->name);
		return -EIO;
	}
	if (dup_default(&c->ingest_listen, "0.0.0.0:8443") < 0 ||
	    dup_default(&c->dashboard_listen, "127.0.0.1:8444") < 0 ||
	    dup_default(&c->database, MYNAGUARD_COLLECTOR_DB) < 0)
		return -ENOMEM;
	static const struct {
		size_t off;
		const char *what;
	} required[] = {
	    {OFF(tls_certificate), "[ingest] certificate"},
	    {OFF(tls_key), "[ingest] key"},
	    {OFF(client_ca), "[ingest] client_ca"},
	    {OFF(token_file), "[dashboard] token_file"},
	};
	for (size_t i = 0; i < ELEMENTSOF(required); i++)
		if (!*(char **)((char *)c + required[i].off)) {
			snprintf(s->err, CONFIG_ERROR_MAX, "%s: %s is required", s->name,
				 required[i].what);
			return -EINVAL;
		}
	if (!c->dashboard_certificate != !c->dashboard_key) {
		snprintf(
		    s->err, CONFIG_ERROR_MAX,
		    "%s: [dashboard] certificate and key go together (or leave both out to use the ingest ones)",
		    s->name);
		return -EINVAL;
	}
	if (dup_default(&c->dashboard_certificate, c->tls_certificate) < 0 ||
	    dup_default(&c->dashboard_key, c->tls_key) < 0)
		return -ENOMEM;
	r = store_backend_resolve(c, s);
	if (r < 0)
		return r;
	/* beside the SQLite file; on PostgreSQL where it was beside the default SQLite file, so
	 * that a store moved by --migrate-to-postgresql keeps its key (every collector sharing
	 * the database needs the same key, docs/postgresql.md) */
	if (!c->accounts_secret_key &&
	    asprintf(&c->accounts_secret_key, "%s.accounts-key",
		     store_pg_location(c->database) ? MYNAGUARD_COLLECTOR_DB : c->database) < 0) {
		c->accounts_secret_key = NULL;
		return -ENOMEM;
	}
	if (!c->enroll_database && config_state_file(c, "enroll.db", &c->enroll_database) < 0)
		return -ENOMEM;
	if (c->enroll_listen && !c->enroll_signer) {
		snprintf(s->err, CONFIG_ERROR_MAX, "%s: [enroll] listen needs [enroll] signer",
			 s->name);
		return -EINVAL;
	}
	if (!c->fleet_grant_key != !c->fleet_root_key) {
		snprintf(s->err, CONFIG_ERROR_MAX,
			 "%s: [fleet] grant_key and root_key go together (or leave both out)",
			 s->name);
		return -EINVAL;
	}
	if (key_seen(s, "store", "retention") && key_seen(s, "retention", "default")) {
		snprintf(
		    s->err, CONFIG_ERROR_MAX,
		    "%s: [retention] default and [store] retention are the same period: give one",
		    s->name);
		return -EINVAL;
	}
	retention_resolve(c);
	r = alert_config_check(c, s->name, s->err);
	if (r >= 0)
		r = alert_smtp_auth_check(c, s->name, s->err);
	if (r < 0)
		return r;
	{
		struct review_settings rs;
		char msg[200];
		if (review_settings_parse(c, &rs, msg, sizeof(msg)) < 0) {
			snprintf(s->err, CONFIG_ERROR_MAX, "%s: %s", s->name, msg);
			return -EINVAL;
		}
	}
	if (c->max_connections < c->workers) {
		snprintf(s->err, CONFIG_ERROR_MAX,
			 "%s: [ingest] max_connections must be at least workers", s->name);
		return -EINVAL;
	}
	return 0;
}

/* Moves the parsed configuration to ret if it checks out, frees it otherwise. */
static int config_finish(struct parse_state *s, int r, struct collector_config *ret)
{
	r = config_check(s, r);
	if (r < 0) {
		config_free(s->c);
		return r;
	}
	*ret = *s->c;
	return 0;
}

int config_load(const char *path, struct collector_config *ret, char err[static CONFIG_ERROR_MAX])
{
	struct collector_config c;
	struct parse_state s = {.c = &c, .name = path, .err = err};
	_cleanup_fclose_ FILE *f = NULL;
	int r;

	err[0] = 0;
	config_defaults(&c);
	f = fopen(path, "re");
	if (!f) {
		r = negative_errno();
		snprintf(err, CONFIG_ERROR_MAX, "%s: %s", path, strerror(-r));
		return r;
	}
	return config_finish(&s, ini_parse_file(f, handler, &s), ret);
}

int config_load_string(const char *name, const char *text, struct collector_config *ret,
		       char err[static CONFIG_ERROR_MAX])
{
	struct collector_config c;
	struct parse_state s = {.c = &c, .name = name, .err = err};

	err[0] = 0;
	config_defaults(&c);
	return config_finish(&s, ini_parse_string(text, handler, &s), ret);
}

void config_free(struct collector_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_retention_hold; i++)
		free(c->retention_hold[i]);
	free(c->retention_hold);
	free(c->ingest_listen);
	free(c->tls_certificate);
	free(c->tls_key);
	free(c->client_ca);
	free(c->revoked_serials);
	free(c->dashboard_listen);
	free(c->dashboard_certificate);
	free(c->dashboard_key);
	free(c->token_file);
	free(c->web_root);
	free(c->database);
	free(c->store_backend);
	free(c->store_url);
	free(c->store_read_url);
	free(c->store_read_location);
	free(c->enroll_listen);
	free(c->enroll_signer);
	free(c->enroll_database);
	free(c->fleet_grant_key);
	free(c->fleet_root_key);
	free(c->heads_key);
	free(c->heads_public_key);
	for (size_t i = 0; i < c->n_retention_rules; i++)
		free(c->retention_rules[i].pattern);
	free(c->fleet_totp_key);
	free(c->accounts_secret_key);
	free(c->alert_state);
	free(c->alert_smtp);
	free(c->alert_smtp_ca);
	free(c->alert_smtp_user);
	free(c->alert_smtp_password_file);
	free(c->alert_from);
	free(c->alert_to);
	free(c->alert_webhook);
	free(c->alert_digest);
	free(c->review_period);
	free(c->office_hours);
	free(c->office_days);
	free(c->evidence_key);
	*c = (struct collector_config){0};
}
