/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the configuration file model and its strict parser (libinih). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_ERROR_MAX 512
#define CONFIG_HOLD_MAX	 1024 /* terminals on legal hold */

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
	char *database;
	uint64_t retention; /* seconds; 0 keeps everything */

	/* [retention] */
	char **retention_hold; /* legal hold: terminal ids whose events are never disposed of */
	size_t n_retention_hold;

	/* [enroll] (enroll.c): no listen = no enrollment; no signer = no enrollment, no renewal */
	char *enroll_listen;   /* the enrollment listener: server TLS, no client certificate */
	char *enroll_signer;   /* the Unix socket of mynaguard-signer */
	char *enroll_database; /* tokens and certificates; default: enroll.db beside [store] */

	/* [terminals] */
	uint64_t report_interval; /* seconds, when a terminal does not say */
	uint64_t clock_drift;	  /* seconds of |received - ts| that raise the flag */

	/* [fleet] (optional; docs/fleet.md): without both, the fleet endpoints answer 503 */
	char *fleet_grant_key; /* Ed25519 private key, PKCS#8 PEM */
	char *fleet_root_key;  /* the root public key, one base64 line */
};

/* Fills defaults, then parses path. On a syntax or value error returns -EINVAL and writes
 * "FILE:LINE: message" into err. -errno when the file cannot be read. */
int config_load(const char *path, struct collector_config *ret, char err[static CONFIG_ERROR_MAX]);
/* Same from a string (tests, fuzzing); name is used in messages. */
int config_load_string(const char *name, const char *text, struct collector_config *ret,
		       char err[static CONFIG_ERROR_MAX]);
void config_free(struct collector_config *c);
