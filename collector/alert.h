/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: alerts (docs/alerts.md) — a thread of its own, off the writer's path,
 * that finds the open conditions each [alerts] interval, keeps them in an SQLite file of its
 * own (raised once, cleared when they end), logs each, and delivers mail and webhook posts. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"

enum alert_kind {
	ALERT_NONCOMPLIANT, /* a check fails in the newest compliance snapshot */
	ALERT_STALE,	    /* no report for longer than twice the terminal's interval */
	ALERT_LOCKED,	    /* a clerk locked out (auth.locked) in the last 24 h */
	ALERT_GAP,	    /* evidence missing: an unannounced sequence gap */
	ALERT_CERT,	    /* the terminal's certificate expires within [alerts] cert_warning */
	ALERT_TOTP_DOUBLE,  /* a one-time code accepted on two terminals (fleet.totp double_use) */
	ALERT_REVIEW_OVERDUE, /* a review period ended [alerts] review_grace ago, not signed off */
	_ALERT_KIND_MAX,
};

const char *alert_kind_name(enum alert_kind k);

/* Part of config_load: checks the [alerts] keys as a whole (the URLs' schemes, from/to with
 * smtp, the digest's HH:MM) and fills the defaults. -EINVAL with "NAME: message" in err. */
int alert_config_check(struct collector_config *c, const char *name,
		       char err[static CONFIG_ERROR_MAX]);

/* --check: the state file opens read-write, or its directory can take it. -errno. */
int alert_check(const struct collector_config *cfg);
/* Opens the state file and a read-only store on database, and starts the thread. Logs. */
int alert_start(const struct collector_config *cfg);
/* Ends the thread (a delivery under way finishes within [alerts] timeout). */
void alert_stop(void);

/* GET /v1/alerts: {"generated_at","open":N,"alerts":[{key,kind,terminal,raised_at,message:{ja,en},
 * mail,webhook}],"channels":{"mail"|"webhook":{configured,digest,recent:[{at,kind,terminal,
 * count,result,error}]}}} as of the last round; no address, relay or URL. A condition that names
 * a person (locked, totp_double_use) has "user"; hide_personal replaces it with "***" there,
 * in the messages and in the key. */
int alert_json(bool hide_personal, json_t **ret);
/* Prometheus lines: open conditions per kind, raised and cleared totals, deliveries. */
void alert_metrics_write(FILE *f);

/* ---- alert-send.c: one delivery each, bounded by cfg->alert_timeout ---- */

#define ALERT_ERROR_MAX 256

/* One mail (text/plain, UTF-8, base64) to every [alerts] to through [alerts] smtp.
 * -EIO with the reason (libcurl's, the relay's answer) in err. */
int alert_send_mail(const struct collector_config *cfg, const char *subject, const char *body,
		    char err[static ALERT_ERROR_MAX]);
/* POST of json to [alerts] webhook; a 2xx answer is success. */
int alert_send_webhook(const struct collector_config *cfg, const char *json,
		       char err[static ALERT_ERROR_MAX]);
/* [alerts] smtp_user and smtp_password_file, part of config_load: both or neither, only with an
 * smtps:// relay or starttls, and the file readable, mode 0600, one line. -EINVAL with
 * "NAME: message" in err. */
int alert_smtp_auth_check(const struct collector_config *c, const char *name,
			  char err[static CONFIG_ERROR_MAX]);
/* The SMTP password from path (no access for group or others, no symlink, one line): a new
 * string to free with secmem_free_string(). The reason in err, never the content. */
int alert_smtp_password(const char *path, char **ret, char *err, size_t errsz);
/* The mail as sent: headers (Subject as RFC 2047 words) and the base64 body; for tests too. */
int alert_mail_format(const struct collector_config *cfg, const char *subject, const char *body,
		      int64_t now_ms, char **ret);
