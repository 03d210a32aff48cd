/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the configuration file model and its strict parser (libinih). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define CONFIG_ERROR_MAX	   512
#define CONFIG_HOLD_MAX		   1024 /* terminals on legal hold */
#define CONFIG_RETENTION_RULES_MAX 64

struct collector_config {
	/* [ingest] */
	char *ingest_listen;	  /* host:port, [v6]:port; port 0 picks a free one */
	char *tls_certificate;	  /* server certificate chain (PEM) */
	char *tls_key;		  /* its private key (PEM) */
	char *client_ca;	  /* CA that signs the terminals' certificates (PEM) */
	char *revoked_serials;	  /* optional: one hex serial per line */
	unsigned workers;	  /* ingest threads, one event base each */
	unsigned max_connections; /* ingest connections open at once (all workers) */
	uint64_t max_body;	  /* bytes */
	uint64_t max_headers;	  /* bytes */
	uint64_t request_timeout; /* seconds for handshake + one whole request */
	uint64_t max_queue;	  /* events waiting for the writer before 429 */
	uint64_t retry_after;	  /* seconds, in the 429 answer */

	/* [dashboard] */
	char *dashboard_listen;
	char *dashboard_certificate; /* default: tls_certificate */
	char *dashboard_key;	     /* default: tls_key */
	char *token_file;
	unsigned dashboard_max_connections;
	char *web_root;	       /* optional directory that replaces the embedded page */
	uint64_t session_idle; /* seconds a login session lives without a request (auth.c) */
	uint64_t session_max;  /* seconds a login session lives at most */

	/* [store] */
	char *database;		   /* SQLite file, or the PostgreSQL location (store-pg.h) */
	char *store_backend;	   /* "sqlite" (default) or "postgresql" */
	char *store_url;	   /* postgresql: libpq URI or conninfo, without a password */
	char *store_read_url;	   /* postgresql, optional: the dashboard reads there (a replica) */
	char *store_read_location; /* STORE_PG_PREFIX + store_read_url, or NULL */
	uint64_t
	    retention; /* seconds; 0 keeps everything: the default period ([retention] default) */

	/* [retention] */
	char **retention_hold; /* legal hold: terminal ids whose events are never disposed of */
	size_t n_retention_hold;
	struct config_retention_rule {
		char *pattern;	 /* a kind ("compliance") or a prefix ("auth.*") */
		uint64_t period; /* seconds; 0 keeps */
	} retention_rules[CONFIG_RETENTION_RULES_MAX];
	size_t n_retention_rules;
	/* resolved per enum event_kind: the exact kind's rule, else the longest matching prefix,
	 * else the default; seconds, 0 keeps */
	uint64_t retention_kind[_EVENT_KIND_MAX];

	/* [evidence] (optional; docs/evidence.md): the signed chain heads */
	char *heads_key;	/* Ed25519 private key, PKCS#8 PEM: signs */
	char *heads_public_key; /* its public key, one base64 line: verifies (default: from key) */

	/* [enroll] (enroll.c): no listen = no enrollment; no signer = no enrollment, no renewal */
	char *enroll_listen;	 /* the enrollment listener: server TLS, no client certificate */
	char *enroll_signer;	 /* the Unix socket of mynaguard-signer */
	char *enroll_database;	 /* tokens and certificates; default: enroll.db beside [store] */
	uint64_t enroll_timeout; /* seconds for a whole enrollment connection (slowloris cut) */

	/* [terminals] */
	uint64_t report_interval; /* seconds, when a terminal does not say */
	uint64_t clock_drift;	  /* seconds of |received - ts| that raise the flag */

	/* [fleet] (optional; docs/fleet.md): without both, the fleet endpoints answer 503 */
	char *fleet_grant_key; /* Ed25519 private key, PKCS#8 PEM */
	char *fleet_root_key;  /* the root public key, one base64 line */
	/* central TOTP: the at-rest key (64 hex digits, mode 0600); without it /v1/totp is 503 */
	char *fleet_totp_key;
	/* [accounts] secret_key: the at-rest key of the accounts' TOTP secrets (64 hex digits,
	 * mode 0600); default DATABASE.accounts-key, made on first use (account-store.h) */
	char *accounts_secret_key;

	/* [alerts] (alert.c, docs/alerts.md): a syslog line always; mail and webhook optional */
	uint64_t alert_interval; /* seconds between two rounds */
	char *alert_state; /* SQLite: the open conditions, per process; default config_state_file */
	char *alert_smtp;  /* smtp://HOST[:PORT] or smtps://; NULL = no mail */
	bool alert_starttls; /* refuse to send unless STARTTLS succeeds */
	char *alert_smtp_ca; /* CA bundle that checks the relay (default: the system's) */
	/* SMTP AUTH (only over TLS): the user, and a file (mode 0600) holding the password */
	char *alert_smtp_user, *alert_smtp_password_file;
	char *alert_from, *alert_to; /* to: addresses separated by spaces or commas */
	char *alert_webhook;	     /* http(s):// URL; NULL = no webhook */
	char *alert_digest;	     /* "HH:MM" local time: one mail a day instead of one each */
	int alert_digest_minute;     /* the same as minutes after midnight; -1 = no digest */
	uint64_t alert_timeout;	     /* seconds for one delivery */
	uint64_t alert_cert_warning; /* seconds before a certificate's not-after */
	uint64_t alert_review_grace; /* seconds after a review period without sign-off */

	/* [review] (review.c, docs/evidence.md "Log review"): checked by review_settings_parse() */
	char *review_period;	 /* "monthly" (default) or "weekly" */
	char *office_hours;	 /* "HH:MM-HH:MM" in Japan time; default 08:00-19:00 */
	char *office_days;	 /* "mon tue wed thu fri" (default) */
	unsigned burst_failures; /* auth.failure events ... */
	unsigned burst_minutes;	 /* ... within this many minutes on one terminal and user */

	/* [evidence] (evidence.c): the Ed25519 key that signs evidence bundles, PKCS#8 PEM */
	char *evidence_key;
};

/* Fills defaults, then parses path. On a syntax or value error returns -EINVAL and writes
 * "FILE:LINE: message" into err. -errno when the file cannot be read. */
int config_load(const char *path, struct collector_config *ret, char err[static CONFIG_ERROR_MAX]);
/* Same from a string (tests, fuzzing); name is used in messages. */
int config_load_string(const char *name, const char *text, struct collector_config *ret,
		       char err[static CONFIG_ERROR_MAX]);
void config_free(struct collector_config *c);
/* The default path of a file of the collector's own state (name: "alerts.db", "enroll.db"):
 * beside the SQLite store, or with the PostgreSQL store in the directory of the default SQLite
 * store (/var/lib/mynaguard-collector). -ENOMEM. */
int config_state_file(const struct collector_config *c, const char *name, char **ret);
