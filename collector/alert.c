/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the alert thread (docs/alerts.md). Each [alerts] interval it reads the
 * conditions from a read-only store (the writer never waits for it), records them in a state
 * file of its own so that a restart sends nothing twice, logs each raised and cleared one, and
 * delivers mail (one each, or one digest a day) and webhook posts with retries. */
#include "alert.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "enroll.h"
#include "escape.h"
#include "event.h"
#include "ingest.h"
#include "macro.h"
#include "review.h"
#include "server.h"
#include "store.h"

#define ALERT_MAX_CONDITIONS 100000 /* per round: more is a broken fleet, not more news */
#define ALERT_DELIVERIES_MAX 100    /* per round, so that stop and the next scan stay timely */
#define ALERT_BACKOFF_MAX_S  3600
#define ALERT_LIST_MAX	     10000 /* conditions listed by GET /v1/alerts (all are counted) */
#define ALERT_TEXT_MAX	     1536
#define ALERT_SENT_KEPT	     50 /* deliveries kept per channel for GET /v1/alerts */

enum delivery {
	DELIVERY_NONE,	  /* the channel is not configured (or the digest carries it) */
	DELIVERY_PENDING, /* to be sent (again) */
	DELIVERY_SENT,
};

static const char *const kind_names[_ALERT_KIND_MAX] = {
    [ALERT_NONCOMPLIANT] = "noncompliant",
    [ALERT_STALE] = "stale",
    [ALERT_LOCKED] = "locked",
    [ALERT_GAP] = "gap",
    [ALERT_CERT] = "cert_expiry",
    [ALERT_TOTP_DOUBLE] = "totp_double_use",
    [ALERT_REVIEW_OVERDUE] = "review_overdue",
};

/* the subject's words, Japanese first */
static const char *const kind_titles[_ALERT_KIND_MAX][2] = {
    [ALERT_NONCOMPLIANT] = {"非準拠", "not compliant"},
    [ALERT_STALE] = {"報告途絶", "no reports (stale)"},
    [ALERT_LOCKED] = {"ロックアウト", "clerk locked out"},
    [ALERT_GAP] = {"証跡の欠落", "evidence missing"},
    [ALERT_CERT] = {"証明書の期限切れ間近", "certificate expiring"},
    [ALERT_TOTP_DOUBLE] = {"確認コードの二重使用", "one-time code used twice"},
    [ALERT_REVIEW_OVERDUE] = {"ログ点検の承認待ち", "log review overdue"},
};

const char *alert_kind_name(enum alert_kind k)
{
	return k < _ALERT_KIND_MAX ? kind_names[k] : "?";
}

static int kind_from_name(const char *s)
{
	for (int k = 0; s && k < _ALERT_KIND_MAX; k++)
		if (strcmp(kind_names[k], s) == 0)
			return k;
	return -EINVAL;
}

/* ---- configuration ---- */

static bool scheme_is(const char *url, const char *const *schemes)
{
	for (; *schemes; schemes++)
		if (strncmp(url, *schemes, strlen(*schemes)) == 0 && url[strlen(*schemes)])
			return true;
	return false;
}

static bool address_list_valid(const char *s)
{
	bool any = false, at = false;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == ' ' || ch == ',' || ch == '\t') {
			if (any && !at)
				return false;
			any = at = false;
			continue;
		}
		/* no header or SMTP syntax in a configured address */
		if (ch < 0x21 || ch == 0x7f || ch == '<' || ch == '>' || ch == '"' || ch == '(' ||
		    ch == ')' || ch == ';' || ch == ':')
			return false;
		at |= ch == '@';
		any = true;
	}
	return !any || at;
}

int alert_config_check(struct collector_config *c, const char *name,
		       char err[static CONFIG_ERROR_MAX])
{
	static const char *const smtp_schemes[] = {"smtp://", "smtps://", NULL};
	static const char *const http_schemes[] = {"http://", "https://", NULL};

	if (c->alert_smtp && !scheme_is(c->alert_smtp, smtp_schemes)) {
		snprintf(err, CONFIG_ERROR_MAX,
			 "%s: [alerts] smtp: expected smtp://HOST[:PORT] or smtps://", name);
		return -EINVAL;
	}
	if (c->alert_smtp && strchr(c->alert_smtp, '@')) {
		/* the relay's URL is logged with each failure: it must hold no password */
		snprintf(
		    err, CONFIG_ERROR_MAX,
		    "%s: [alerts] smtp: no user or password in the URL (the city's relay takes "
		    "mail from the collector's address)",
		    name);
		return -EINVAL;
	}
	if (c->alert_webhook && !scheme_is(c->alert_webhook, http_schemes)) {
		snprintf(err, CONFIG_ERROR_MAX,
			 "%s: [alerts] webhook: expected an http:// or https:// URL", name);
		return -EINVAL;
	}
	if (!c->alert_smtp != !c->alert_from || !c->alert_smtp != !c->alert_to) {
		snprintf(err, CONFIG_ERROR_MAX, "%s: [alerts] smtp, from and to go together", name);
		return -EINVAL;
	}
	if ((c->alert_from &&
	     (!address_list_valid(c->alert_from) || strpbrk(c->alert_from, " ,\t"))) ||
	    (c->alert_to && !address_list_valid(c->alert_to))) {
		snprintf(
		    err, CONFIG_ERROR_MAX,
		    "%s: [alerts] from/to: expected plain addresses (user@host), to separated by spaces",
		    name);
		return -EINVAL;
	}
	if ((c->alert_starttls || c->alert_smtp_ca || c->alert_digest) && !c->alert_smtp) {
		snprintf(err, CONFIG_ERROR_MAX,
			 "%s: [alerts] starttls, smtp_ca and digest need smtp", name);
		return -EINVAL;
	}
	c->alert_digest_minute = -1;
	if (c->alert_digest) {
		const char *d = c->alert_digest;
		if (strlen(d) != 5 || d[2] != ':' || d[0] < '0' || d[0] > '2' || d[1] < '0' ||
		    d[1] > '9' || d[3] < '0' || d[3] > '5' || d[4] < '0' || d[4] > '9' ||
		    (d[0] - '0') * 10 + (d[1] - '0') > 23) {
			snprintf(err, CONFIG_ERROR_MAX,
				 "%s: [alerts] digest: expected a time of day HH:MM (like 08:30)",
				 name);
			return -EINVAL;
		}
		c->alert_digest_minute =
		    ((d[0] - '0') * 10 + (d[1] - '0')) * 60 + (d[3] - '0') * 10 + (d[4] - '0');
	}
	/* per collector process: each one sends what it raised (docs/alerts.md) */
	if (!c->alert_state && c->database &&
	    config_state_file(c, "alerts.db", &c->alert_state) < 0)
		return -ENOMEM;
	return 0;
}

/* ---- the conditions of one round ---- */

struct cond {
	char key[EVENT_TERMINAL_MAX + 112]; /* totp_double_use: a user of 64 bytes and a step */
	enum alert_kind kind;
	char terminal[EVENT_TERMINAL_MAX + 1];
	char *ja, *en; /* the message, Japanese first */
	char *user;    /* the person it names (locked, totp_double_use), or NULL */
	bool grace;    /* holds an open condition, raises none (stale, just after start) */
};

struct conds {
	struct cond *v;
	size_t n, cap;
	int64_t now_ms, cert_warning_ms;
	int64_t started_ms; /* this process's start */
	int err;
};

static struct cond *cond_add(struct conds *cs, enum alert_kind kind, const char *terminal)
{
	struct cond *c;

	if (cs->n == ALERT_MAX_CONDITIONS) {
		cs->err = -E2BIG;
		return NULL;
	}
	if (cs->n == cs->cap) {
		size_t cap = cs->cap ? cs->cap * 2 : 64;
		struct cond *v = reallocarray(cs->v, cap, sizeof(*v));
		if (!v) {
			cs->err = -ENOMEM;
			return NULL;
		}
		cs->v = v;
		cs->cap = cap;
	}
	c = &cs->v[cs->n++];
	*c = (struct cond){.kind = kind};
	snprintf(c->terminal, sizeof(c->terminal), "%s", terminal);
	snprintf(c->key, sizeof(c->key), "%s:%s", kind_names[kind], terminal);
	return c;
}

/* A user's name as the messages show it (escaped, quoted): the same text that hide_personal
 * finds and hides in them (alert_json). */
static const char *user_text(const char *user, char out[static ESCAPE_SIZE(64)])
{
	return escape_text(user, user ? strlen(user) : 0, 64, ESCAPE_QUOTES, out, ESCAPE_SIZE(64));
}

static int cond_user(struct conds *cs, struct cond *c, const char *user)
{
	if (user && user[0] && !(c->user = strdup(user)))
		cs->err = -ENOMEM;
	return cs->err;
}

static int cond_text(struct conds *cs, struct cond *c, const char *ja, const char *en)
{
	c->ja = strdup(ja);
	c->en = strdup(en);
	if (!c->ja || !c->en)
		cs->err = -ENOMEM;
	return cs->err;
}

static void conds_free(struct conds *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		free(cs->v[i].ja);
		free(cs->v[i].en);
		free(cs->v[i].user);
	}
	free(cs->v);
}

static int scan_row(const struct store_alert_row *row, void *arg)
{
	struct conds *cs = arg;
	char esc[ESCAPE_SIZE(200)], at[32], ja[ALERT_TEXT_MAX], en[ALERT_TEXT_MAX];
	char name[EVENT_TERMINAL_MAX + ESCAPE_SIZE(80) + 2];
	struct cond *c;

	/* the id, and where the terminal stands as its policy describes it (department, desk);
	 * the description comes from the terminal: escaped */
	if (row->description && row->description[0])
		snprintf(name, sizeof(name), "%s %s", row->terminal,
			 escape_text(row->description, strlen(row->description), 80, ESCAPE_QUOTES,
				     esc, sizeof(esc)));
	else
		snprintf(name, sizeof(name), "%s", row->terminal);

	if (row->noncompliant) {
		c = cond_add(cs, ALERT_NONCOMPLIANT, row->terminal);
		if (!c)
			return cs->err;
		/* check ids come from the terminal: escaped like any untrusted text */
		escape_text(row->failing ? row->failing : "",
			    strlen(row->failing ? row->failing : ""), 200, 0, esc, sizeof(esc));
		snprintf(
		    ja, sizeof(ja),
		    "端末 %s が非準拠になりました(失敗した検査: %s)。ダッシュボードで理由と対処を確認してください。",
		    name, esc);
		snprintf(
		    en, sizeof(en),
		    "Terminal %s is not compliant (failing checks: %s). See the dashboard for the "
		    "reason and what to do.",
		    name, esc);
		if (cond_text(cs, c, ja, en) < 0)
			return cs->err;
	}
	if (row->stale) {
		c = cond_add(cs, ALERT_STALE, row->terminal);
		if (!c)
			return cs->err;
		event_format_ts(row->last_seen_ms, at);
		snprintf(
		    ja, sizeof(ja),
		    "端末 %s から報告がありません(最終報告 %s、報告間隔 %lld 秒)。電源とネットワーク、"
		    "mynaguard-uplink を確認してください。",
		    name, at, (long long)(row->interval_ms / 1000));
		snprintf(
		    en, sizeof(en),
		    "Terminal %s has not reported since %s (report interval %lld s). Check its "
		    "power, network and mynaguard-uplink.",
		    name, at, (long long)(row->interval_ms / 1000));
		/* a collector that was down saw no reports either: every terminal looks stale until
		 * it has had two intervals to upload again; such a condition is not raised yet,
		 * but one raised before the restart stays open */
		c->grace = cs->now_ms - cs->started_ms <= 2 * row->interval_ms;
		if (cond_text(cs, c, ja, en) < 0)
			return cs->err;
	}
	if (row->locked_at_ms) {
		c = cond_add(cs, ALERT_LOCKED, row->terminal);
		if (!c)
			return cs->err;
		/* each lockout is a condition of its own: a second one within the day is news */
		snprintf(c->key, sizeof(c->key), "%s:%s:%lld", kind_names[ALERT_LOCKED],
			 row->terminal, (long long)row->locked_at_ms);
		if (cond_user(cs, c, row->locked_user) < 0)
			return cs->err;
		user_text(row->locked_user, esc);
		event_format_ts(row->locked_at_ms, at);
		snprintf(
		    ja, sizeof(ja),
		    "端末 %s で利用者 %s がロックアウトされました(%s)。本人確認のうえ解除してください。",
		    name, esc, at);
		snprintf(en, sizeof(en),
			 "User %s was locked out on terminal %s at %s. Confirm who it was before "
			 "unlocking.",
			 esc, name, at);
		if (cond_text(cs, c, ja, en) < 0)
			return cs->err;
	}
	if (row->gaps_unannounced > 0) {
		c = cond_add(cs, ALERT_GAP, row->terminal);
		if (!c)
			return cs->err;
		snprintf(
		    ja, sizeof(ja),
		    "端末 %s の証跡に欠落があります(通知のない欠番 %llu 件)。端末の記録が失われた"
		    "可能性があります。",
		    name, (unsigned long long)row->gaps_unannounced);
		snprintf(
		    en, sizeof(en),
		    "Evidence is missing from terminal %s (%llu unannounced sequence gaps): its "
		    "events may have been lost.",
		    name, (unsigned long long)row->gaps_unannounced);
		if (cond_text(cs, c, ja, en) < 0)
			return cs->err;
	}
	return 0;
}

static void cert_row(const char *terminal, int64_t not_after, void *arg)
{
	struct conds *cs = arg;
	char at[32], ja[ALERT_TEXT_MAX], en[ALERT_TEXT_MAX];
	struct cond *c;

	if (cs->err < 0 || not_after * 1000 - cs->now_ms >= cs->cert_warning_ms)
		return;
	c = cond_add(cs, ALERT_CERT, terminal);
	if (!c)
		return;
	event_format_ts(not_after * 1000, at);
	snprintf(
	    ja, sizeof(ja),
	    "端末 %s の証明書の有効期限が近づいています(%s まで)。更新されているか確認してください。",
	    terminal, at);
	snprintf(en, sizeof(en),
		 "The certificate of terminal %s expires at %s. Check that it is renewed.",
		 terminal, at);
	cond_text(cs, c, ja, en);
}

/* One condition per (user, step): a third terminal that used the same code is the same news. */
static int totp_double_row(const struct store_totp_double *d, void *arg)
{
	struct conds *cs = arg;
	char user[ESCAPE_SIZE(64)], at[32], ja[ALERT_TEXT_MAX], en[ALERT_TEXT_MAX];
	struct cond *c = cond_add(cs, ALERT_TOTP_DOUBLE, d->second);

	if (!c)
		return cs->err;
	snprintf(c->key, sizeof(c->key), "%s:%s:%llu", kind_names[ALERT_TOTP_DOUBLE], d->user,
		 (unsigned long long)d->step);
	for (size_t i = 0; i + 1 < cs->n; i++)
		if (strcmp(cs->v[i].key, c->key) == 0) {
			cs->n--; /* a later double use of the same step: already listed */
			return 0;
		}
	if (cond_user(cs, c, d->user) < 0)
		return cs->err;
	user_text(d->user, user);
	event_format_ts(d->ts_ms, at);
	snprintf(
	    ja, sizeof(ja),
	    "同じ確認コードが2台で使われました(利用者 %s、端末 %s と %s、%s)。認証器の盗用の疑いがあります。"
	    "利用者に確認し、必要なら登録を失効してください。",
	    user, d->first, d->second, at);
	snprintf(en, sizeof(en),
		 "The same one-time code of user %s was accepted on two terminals (%s and %s, "
		 "%s): the authenticator may be stolen. Ask the user and revoke the enrollment "
		 "if needed.",
		 user, d->first, d->second, at);
	return cond_text(cs, c, ja, en);
}

/* The log review of the newest period whose [alerts] review_grace has passed has no sign-off
 * (docs/evidence.md, "Scheduling"): one condition per period, cleared by the sign-off. */
static int review_scan(const struct collector_config *cfg, struct conds *cs)
{
	char ja[ALERT_TEXT_MAX], en[ALERT_TEXT_MAX], from[11], to[11];
	struct review_settings rs;
	struct review_period p;
	struct review_db *db = NULL;
	struct cond *c;
	int r;

	if (review_settings_parse(cfg, &rs, NULL, 0) < 0) /* config_load checked them */
		return -EINVAL;
	r = review_db_open(cfg->database, &db);
	if (r >= 0)
		r = review_overdue(db, rs.weekly, cs->now_ms,
				   (int64_t)cfg->alert_review_grace * 1000, &p);
	review_db_close(db);
	if (r <= 0)
		return r;
	c = cond_add(cs, ALERT_REVIEW_OVERDUE, INGEST_SELF_TERMINAL);
	if (!c)
		return cs->err;
	snprintf(c->key, sizeof(c->key), "%s:%s", kind_names[ALERT_REVIEW_OVERDUE], p.name);
	review_day_name(p.from_ms, from);
	review_day_name(p.to_ms - 1, to);
	snprintf(ja, sizeof(ja),
		 "ログの点検 %s(%s〜%s)が承認されていません(期間終了から %lld 日以上)。"
		 "ダッシュボードの「ログの点検」で確認し、承認してください。",
		 p.name, from, to, (long long)(cfg->alert_review_grace / 86400));
	snprintf(en, sizeof(en),
		 "The log review of %s (%s to %s) has no sign-off %lld days or more after the "
		 "period ended. Review it on the dashboard's log review page and sign it off.",
		 p.name, from, to, (long long)(cfg->alert_review_grace / 86400));
	return cond_text(cs, c, ja, en);
}

static int cond_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cond *)a)->key, ((const struct cond *)b)->key);
}

/* ---- the thread ---- */

static struct {
	pthread_mutex_t lock; /* stop, snapshot */
	pthread_cond_t wake;
	bool stop, running;
	pthread_t thread;
	const struct collector_config *cfg;
	struct store *store;
	sqlite3 *db;
	json_t *snapshot;			/* /v1/alerts */
	uint64_t open_by_kind[_ALERT_KIND_MAX]; /* under lock */
	bool store_failing;			/* logged once until it recovers */
	int leader; /* this process sends (store_alert_leader()); -1 before the first round */
	int64_t started_ms; /* alert_start: the stale grace period counts from it */
	atomic_uint_fast64_t raised, cleared, rounds;
	atomic_uint_fast64_t sent[2], failed[2]; /* [0] mail, [1] webhook */
	atomic_uint_fast64_t digests;
} A = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .leader = -1};

static const char state_schema[] = "PRAGMA journal_mode = WAL;"
				   "CREATE TABLE IF NOT EXISTS alerts ("
				   "  key TEXT PRIMARY KEY,"
				   "  kind TEXT NOT NULL,"
				   "  terminal TEXT NOT NULL,"
				   "  ja TEXT NOT NULL,"
				   "  en TEXT NOT NULL,"
				   "  raised_at INTEGER NOT NULL," /* collector's clock, ms */
				   "  mail INTEGER NOT NULL,"	   /* enum delivery */
				   "  webhook INTEGER NOT NULL,"
				   "  attempts INTEGER NOT NULL DEFAULT 0,"
				   "  next_try INTEGER NOT NULL DEFAULT 0);"
				   /* the last deliveries per channel, for the dashboard; no
				    * address, URL or message: when, what, and how it went */
				   "CREATE TABLE IF NOT EXISTS sent ("
				   "  id INTEGER PRIMARY KEY,"
				   "  at INTEGER NOT NULL,"   /* collector's clock, ms */
				   "  channel TEXT NOT NULL," /* mail, webhook */
				   "  kind TEXT NOT NULL,"    /* an alert kind, or digest */
				   "  terminal TEXT NOT NULL,"
				   "  count INTEGER NOT NULL," /* conditions the message carried */
				   "  ok INTEGER NOT NULL,"
				   "  error TEXT);"
				   "CREATE TABLE IF NOT EXISTS digest ("
				   "  id INTEGER PRIMARY KEY CHECK (id = 1),"
				   "  day TEXT NOT NULL," /* local date of the last digest sent */
				   "  attempts INTEGER NOT NULL DEFAULT 0,"
				   "  next_try INTEGER NOT NULL DEFAULT 0);";

static void finalizep(sqlite3_stmt **st)
{
	sqlite3_finalize(*st);
}
#define _cleanup_stmt_ _cleanup_(finalizep)

static int sql_errno(int rc)
{
	return rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW ? 0
									: store_sqlite_errno(rc);
}

static int exec(const char *sql)
{
	return sql_errno(sqlite3_exec(A.db, sql, NULL, NULL, NULL));
}

static int64_t backoff_ms(int attempts)
{
	int64_t s = (int64_t)A.cfg->alert_interval;
	for (int i = 0; i < attempts && s < ALERT_BACKOFF_MAX_S; i++)
		s *= 2;
	return (s < ALERT_BACKOFF_MAX_S ? s : ALERT_BACKOFF_MAX_S) * 1000;
}

/* err without what the configuration may hold that is not for the dashboard's readers (the
 * webhook's URL: its path or query may carry a token; libcurl names it in some errors). */
static void error_scrub(const char *err, char out[static ALERT_ERROR_MAX])
{
	const char *url = A.cfg->alert_webhook, *at;
	size_t n = url ? strlen(url) : 0;

	snprintf(out, ALERT_ERROR_MAX, "%s", err);
	while (n && (at = strstr(out, url))) {
		char rest[ALERT_ERROR_MAX];
		snprintf(rest, sizeof(rest), "%s", at + n);
		snprintf(out + (at - out), ALERT_ERROR_MAX - (size_t)(at - out), "(webhook)%s",
			 rest);
	}
}

/* One delivery, kept for GET /v1/alerts (the newest ALERT_SENT_KEPT per channel). A failure to
 * keep it is logged; the delivery itself stands. */
static void sent_record(const char *channel, const char *kind, const char *terminal, unsigned count,
			int64_t at, const char *err)
{
	_cleanup_stmt_ sqlite3_stmt *ins = NULL, *prune = NULL;
	char scrubbed[ALERT_ERROR_MAX];
	int rc;

	static const char *const sql[] = {
	    "INSERT INTO sent (at, channel, kind, terminal, count, ok, error)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	    "DELETE FROM sent WHERE channel = ?1 AND id <= (SELECT id FROM sent WHERE"
	    " channel = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
	};
	sqlite3_stmt **st[] = {&ins, &prune};

	rc = SQLITE_OK;
	for (size_t i = 0; rc == SQLITE_OK && i < ELEMENTSOF(sql); i++)
		rc = sqlite3_prepare_v2(A.db, sql[i], -1, st[i], NULL);
	if (rc == SQLITE_OK) {
		if (err)
			error_scrub(err, scrubbed);
		sqlite3_bind_int64(ins, 1, at);
		sqlite3_bind_text(ins, 2, channel, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, terminal, -1, SQLITE_STATIC);
		sqlite3_bind_int(ins, 5, (int)count);
		sqlite3_bind_int(ins, 6, !err);
		if (err)
			sqlite3_bind_text(ins, 7, scrubbed, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(ins, 7);
		rc = sqlite3_step(ins) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(A.db);
	}
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(prune, 1, channel, -1, SQLITE_STATIC);
		sqlite3_bind_int(prune, 2, ALERT_SENT_KEPT);
		rc = sqlite3_step(prune) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(A.db);
	}
	if (rc != SQLITE_OK)
		server_log(LOG_ERR, "alerts: state %s: cannot keep the delivery: %s",
			   A.cfg->alert_state, strerror(-sql_errno(rc)));
}

/* Records the round's conditions: new ones raised, vanished ones cleared. */
static int reconcile(struct conds *cs)
{
	const struct collector_config *cfg = A.cfg;
	int mail =
	    cfg->alert_smtp && cfg->alert_digest_minute < 0 ? DELIVERY_PENDING : DELIVERY_NONE;
	int hook = cfg->alert_webhook ? DELIVERY_PENDING : DELIVERY_NONE;
	int r;

	r = exec("BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	{
		_cleanup_stmt_ sqlite3_stmt *sel = NULL, *del = NULL, *ins = NULL;
		int rc = sqlite3_prepare_v2(A.db, "SELECT key, kind, terminal FROM alerts", -1,
					    &sel, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_prepare_v2(A.db, "DELETE FROM alerts WHERE key = ?1", -1, &del,
						NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_prepare_v2(
			    A.db,
			    "INSERT OR IGNORE INTO alerts (key, kind, terminal, ja, en, raised_at,"
			    " mail, webhook, user) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
			    -1, &ins, NULL);
		while ((rc == SQLITE_OK || rc == SQLITE_ROW) &&
		       (rc = sqlite3_step(sel)) == SQLITE_ROW) {
			struct cond probe;
			const char *key = (const char *)sqlite3_column_text(sel, 0);
			snprintf(probe.key, sizeof(probe.key), "%s", key ? key : "");
			if (cs->n && bsearch(&probe, cs->v, cs->n, sizeof(*cs->v), cond_cmp))
				continue;
			server_log(LOG_INFO, "alert cleared kind=%s terminal=%s key=%s",
				   (const char *)sqlite3_column_text(sel, 1),
				   (const char *)sqlite3_column_text(sel, 2), probe.key);
			atomic_fetch_add(&A.cleared, 1);
			sqlite3_reset(del);
			sqlite3_bind_text(del, 1, probe.key, -1, SQLITE_TRANSIENT);
			rc = sqlite3_step(del) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(A.db);
		}
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
		for (size_t i = 0; rc == SQLITE_OK && i < cs->n; i++) {
			const struct cond *c = &cs->v[i];
			if (c->grace)
				continue;
			sqlite3_reset(ins);
			sqlite3_bind_text(ins, 1, c->key, -1, SQLITE_STATIC);
			sqlite3_bind_text(ins, 2, kind_names[c->kind], -1, SQLITE_STATIC);
			sqlite3_bind_text(ins, 3, c->terminal, -1, SQLITE_STATIC);
			sqlite3_bind_text(ins, 4, c->ja, -1, SQLITE_STATIC);
			sqlite3_bind_text(ins, 5, c->en, -1, SQLITE_STATIC);
			sqlite3_bind_int64(ins, 6, cs->now_ms);
			sqlite3_bind_int(ins, 7, mail);
			sqlite3_bind_int(ins, 8, hook);
			sqlite3_bind_text(ins, 9, c->user, -1, SQLITE_STATIC);
			if (sqlite3_step(ins) != SQLITE_DONE) {
				rc = sqlite3_errcode(A.db);
				break;
			}
			if (sqlite3_changes(A.db) == 1) {
				/* the syslog line: always, whatever else is configured */
				server_log(LOG_WARNING, "alert raised kind=%s terminal=%s: %s / %s",
					   kind_names[c->kind], c->terminal, c->ja, c->en);
				atomic_fetch_add(&A.raised, 1);
			}
		}
		r = sql_errno(rc);
	}
	if (r < 0) {
		exec("ROLLBACK");
		return r;
	}
	return exec("COMMIT");
}

struct pending {
	char *key, *terminal, *ja, *en;
	int kind, mail, hook, attempts;
	int64_t raised_at;
};

static void pending_free(struct pending *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p[i].key);
		free(p[i].terminal);
		free(p[i].ja);
		free(p[i].en);
	}
	free(p);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return strdup(t ? (const char *)t : "");
}

static char *webhook_body(const struct pending *p)
{
	char at[32];
	_cleanup_(json_decrefp) json_t *o = NULL;

	event_format_ts(p->raised_at, at);
	o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "v", 1, "event", "raised",
		      "key", p->key, "kind", p->kind >= 0 ? kind_names[p->kind] : "?", "terminal",
		      p->terminal, "raised_at", at, "message", "ja", p->ja, "en", p->en);
	return o ? json_dumps(o, JSON_COMPACT) : NULL;
}

/* down[0] mail, down[1] webhook: a channel that failed once this round is not tried again
 * before the next (a relay that drops packets would cost the timeout for every alert) */
static void deliver_one(struct pending *p, bool down[static 2])
{
	const struct collector_config *cfg = A.cfg;
	char err[ALERT_ERROR_MAX];
	bool failed = false;
	int r;

	if (p->mail == DELIVERY_PENDING && down[0])
		failed = true;
	else if (p->mail == DELIVERY_PENDING) {
		_cleanup_free_ char *subject = NULL, *body = NULL;
		int k = p->kind >= 0 ? p->kind : ALERT_NONCOMPLIANT;
		if (asprintf(&subject, "[mynaguard] %s %s / %s: %s", kind_titles[k][0], p->terminal,
			     kind_titles[k][1], p->terminal) < 0)
			subject = NULL;
		if (asprintf(&body, "%s\n\n%s\n\n-- \nmynaguard-collector: %s\n", p->ja, p->en,
			     p->key) < 0)
			body = NULL;
		r = subject && body ? alert_send_mail(cfg, subject, body, err) : -ENOMEM;
		if (r == -ENOMEM)
			snprintf(err, sizeof(err), "out of memory");
		sent_record("mail", kind_names[k], p->terminal, 1, server_now_ms(),
			    r >= 0 ? NULL : err);
		if (r >= 0) {
			p->mail = DELIVERY_SENT;
			atomic_fetch_add(&A.sent[0], 1);
			server_log(LOG_INFO, "alert mailed kind=%s terminal=%s to %s",
				   kind_names[k], p->terminal, cfg->alert_to);
		} else {
			failed = down[0] = true;
			atomic_fetch_add(&A.failed[0], 1);
			server_log(
			    LOG_WARNING,
			    "alert mail failed kind=%s terminal=%s relay=%s: %s; retrying in "
			    "%lld s",
			    kind_names[k], p->terminal, cfg->alert_smtp, err,
			    (long long)(backoff_ms(p->attempts) / 1000));
		}
	}
	if (p->hook == DELIVERY_PENDING && down[1])
		failed = true;
	else if (p->hook == DELIVERY_PENDING) {
		_cleanup_free_ char *json = webhook_body(p);
		r = json ? alert_send_webhook(cfg, json, err) : -ENOMEM;
		if (r == -ENOMEM)
			snprintf(err, sizeof(err), "out of memory");
		sent_record("webhook", p->kind >= 0 ? kind_names[p->kind] : "?", p->terminal, 1,
			    server_now_ms(), r >= 0 ? NULL : err);
		if (r >= 0) {
			p->hook = DELIVERY_SENT;
			atomic_fetch_add(&A.sent[1], 1);
			server_log(LOG_INFO, "alert posted kind=%s terminal=%s to the webhook",
				   p->kind >= 0 ? kind_names[p->kind] : "?", p->terminal);
		} else {
			failed = down[1] = true;
			atomic_fetch_add(&A.failed[1], 1);
			server_log(
			    LOG_WARNING,
			    "alert webhook failed kind=%s terminal=%s: %s; retrying in %lld s",
			    p->kind >= 0 ? kind_names[p->kind] : "?", p->terminal, err,
			    (long long)(backoff_ms(p->attempts) / 1000));
		}
	}
	if (failed)
		p->attempts++;
}

/* Sends what is pending when this process is the sender (lead); with several collectors on
 * one PostgreSQL database, first takes over what any sender already sent (so a new sender does
 * not send it again, and the others' dashboards show it sent) and records what it sends. */
static int deliver(int64_t now, bool lead)
{
	_cleanup_stmt_ sqlite3_stmt *sel = NULL, *upd = NULL;
	struct pending *p = NULL;
	bool down[2] = {false, false};
	size_t n = 0;
	int rc;

	rc = sqlite3_prepare_v2(
	    A.db,
	    "SELECT key, kind, terminal, ja, en, raised_at, mail, webhook, attempts"
	    " FROM alerts WHERE (mail = 1 OR webhook = 1) AND next_try <= ?1"
	    " ORDER BY raised_at, key LIMIT ?2",
	    -1, &sel, NULL);
	if (rc != SQLITE_OK)
		return sql_errno(rc);
	sqlite3_bind_int64(sel, 1, now);
	sqlite3_bind_int(sel, 2, ALERT_DELIVERIES_MAX);
	p = calloc(ALERT_DELIVERIES_MAX, sizeof(*p));
	if (!p)
		return -ENOMEM;
	while (n < ALERT_DELIVERIES_MAX && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		struct pending *q = &p[n++];
		q->key = col_dup(sel, 0);
		q->kind = kind_from_name((const char *)sqlite3_column_text(sel, 1));
		q->terminal = col_dup(sel, 2);
		q->ja = col_dup(sel, 3);
		q->en = col_dup(sel, 4);
		q->raised_at = sqlite3_column_int64(sel, 5);
		q->mail = sqlite3_column_int(sel, 6);
		q->hook = sqlite3_column_int(sel, 7);
		q->attempts = sqlite3_column_int(sel, 8);
		if (!q->key || !q->terminal || !q->ja || !q->en) {
			pending_free(p, n);
			return -ENOMEM;
		}
	}
	sqlite3_reset(sel); /* no read transaction held while sending */
	rc = sqlite3_prepare_v2(A.db,
				"UPDATE alerts SET mail = ?2, webhook = ?3, attempts = ?4,"
				" next_try = ?5 WHERE key = ?1",
				-1, &upd, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
		struct pending *q = &p[i];
		int before = q->attempts, mail = q->mail, hook = q->hook, r;
		int shared_mail = DELIVERY_NONE, shared_hook = DELIVERY_NONE;
		bool stop;

		r = store_alert_sent_get(A.store, q->key, &shared_mail, &shared_hook);
		if (r < 0) {
			rc = SQLITE_OK;
			pending_free(p, n);
			return r; /* not known what was sent: nothing is sent */
		}
		if (shared_mail == DELIVERY_SENT && q->mail == DELIVERY_PENDING)
			q->mail = DELIVERY_SENT;
		if (shared_hook == DELIVERY_SENT && q->hook == DELIVERY_PENDING)
			q->hook = DELIVERY_SENT;
		if (lead) {
			mail = q->mail;
			hook = q->hook;
			deliver_one(q, down);
			if ((q->mail != mail || q->hook != hook) &&
			    (r = store_alert_sent_put(A.store, q->key, q->mail, q->hook, now)) < 0)
				server_log(LOG_ERR, "alerts: cannot record a delivery of %s: %s",
					   q->key, strerror(-r));
		} else if (q->mail == mail && q->hook == hook)
			continue;
		sqlite3_reset(upd);
		sqlite3_bind_text(upd, 1, q->key, -1, SQLITE_STATIC);
		sqlite3_bind_int(upd, 2, q->mail);
		sqlite3_bind_int(upd, 3, q->hook);
		sqlite3_bind_int(upd, 4, q->attempts);
		sqlite3_bind_int64(upd, 5, q->attempts > before ? now + backoff_ms(before) : 0);
		if (sqlite3_step(upd) != SQLITE_DONE)
			rc = sqlite3_errcode(A.db);
		pthread_mutex_lock(&A.lock);
		stop = A.stop;
		pthread_mutex_unlock(&A.lock);
		if (stop)
			break;
	}
	pending_free(p, n);
	return sql_errno(rc);
}

static int digest_put(const char *day, int attempts, int64_t next_try)
{
	_cleanup_stmt_ sqlite3_stmt *upd = NULL;
	int rc = sqlite3_prepare_v2(
	    A.db,
	    "INSERT INTO digest (id, day, attempts, next_try) VALUES (1, ?1, ?2, ?3)"
	    " ON CONFLICT (id) DO UPDATE SET day = ?1, attempts = ?2, next_try = ?3",
	    -1, &upd, NULL);

	if (rc != SQLITE_OK)
		return sql_errno(rc);
	sqlite3_bind_text(upd, 1, day, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(upd, 2, attempts);
	sqlite3_bind_int64(upd, 3, next_try);
	return sqlite3_step(upd) == SQLITE_DONE ? 0 : sql_errno(sqlite3_errcode(A.db));
}

/* One mail a day, at the first round at or after [alerts] digest (local time) that finds
 * something open; a day with nothing open sends nothing. */
static int digest(int64_t now)
{
	const struct collector_config *cfg = A.cfg;
	_cleanup_stmt_ sqlite3_stmt *st = NULL, *rows = NULL;
	_cleanup_free_ char *body = NULL, *subject = NULL;
	char day[16], shared_day[16], err[ALERT_ERROR_MAX];
	time_t t = (time_t)(now / 1000);
	size_t size = 0;
	unsigned count = 0;
	int attempts = 0, rc, r;
	struct tm tm;
	FILE *f;

	if (cfg->alert_digest_minute < 0 || !cfg->alert_smtp)
		return 0;
	localtime_r(&t, &tm);
	if (tm.tm_hour * 60 + tm.tm_min < cfg->alert_digest_minute)
		return 0;
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	r = store_alert_digest_day(A.store, shared_day);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(A.db, "SELECT day, attempts, next_try FROM digest WHERE id = 1", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return sql_errno(rc);
	if (strcmp(shared_day, day) == 0) /* another collector on the database sent today's */
		return digest_put(day, 0, 0);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *last = (const char *)sqlite3_column_text(st, 0);
		if (last && strcmp(last, day) == 0)
			return 0; /* sent today */
		attempts = sqlite3_column_int(st, 1);
		if (sqlite3_column_int64(st, 2) > now)
			return 0; /* retrying later */
	}
	sqlite3_reset(st);
	rc = sqlite3_prepare_v2(A.db,
				"SELECT kind, terminal, ja, en, raised_at FROM alerts"
				" ORDER BY kind, terminal, raised_at",
				-1, &rows, NULL);
	if (rc != SQLITE_OK)
		return sql_errno(rc);
	f = open_memstream(&body, &size);
	if (!f)
		return -ENOMEM;
	fprintf(f, "mynaguard: %s の未解決の警告 / open alerts on %s\n\n", day, day);
	while (sqlite3_step(rows) == SQLITE_ROW) {
		char at[32];
		event_format_ts(sqlite3_column_int64(rows, 4), at);
		fprintf(f, "- [%s] %s (%s)\n  %s\n  %s\n", sqlite3_column_text(rows, 0),
			sqlite3_column_text(rows, 1), at, sqlite3_column_text(rows, 2),
			sqlite3_column_text(rows, 3));
		count++;
	}
	sqlite3_reset(rows);
	if (fclose(f) != 0)
		return -ENOMEM;
	if (count == 0)
		return 0;
	if (asprintf(&subject, "[mynaguard] 未解決の警告 %u 件 / %u open alerts (%s)", count, count,
		     day) < 0) {
		subject = NULL;
		return -ENOMEM;
	}
	r = alert_send_mail(cfg, subject, body, err);
	sent_record("mail", "digest", "", count, server_now_ms(), r >= 0 ? NULL : err);
	if (r >= 0) {
		atomic_fetch_add(&A.digests, 1);
		atomic_fetch_add(&A.sent[0], 1);
		r = store_alert_digest_put(A.store, day);
		if (r < 0)
			server_log(LOG_ERR, "alerts: cannot record the digest of %s: %s", day,
				   strerror(-r));
		r = 0;
		server_log(LOG_INFO, "alert digest mailed: %u open conditions to %s", count,
			   cfg->alert_to);
		attempts = 0;
	} else {
		atomic_fetch_add(&A.failed[0], 1);
		server_log(LOG_WARNING, "alert digest mail failed relay=%s: %s; retrying in %lld s",
			   cfg->alert_smtp, err, (long long)(backoff_ms(attempts) / 1000));
	}
	/* a failure keeps the last day sent: only the retry time moves */
	if (r < 0) {
		_cleanup_stmt_ sqlite3_stmt *keep = NULL;
		const char *last = "";
		rc = sqlite3_prepare_v2(A.db, "SELECT day FROM digest WHERE id = 1", -1, &keep,
					NULL);
		if (rc == SQLITE_OK && sqlite3_step(keep) == SQLITE_ROW &&
		    sqlite3_column_text(keep, 0))
			last = (const char *)sqlite3_column_text(keep, 0);
		return digest_put(last, attempts + 1, now + backoff_ms(attempts));
	}
	return digest_put(day, 0, 0);
}

static const char *delivery_name(int d)
{
	return d == DELIVERY_PENDING ? "pending" : d == DELIVERY_SENT ? "sent" : "none";
}

/* o's "channels": per channel whether it is configured (never its address or URL) and its
 * last deliveries, newest first. */
static int snapshot_channels(json_t *o)
{
	static const char *const names[] = {"mail", "webhook"};
	const struct collector_config *cfg = A.cfg;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *chs = json_object();
	char at[32];
	int rc = SQLITE_OK;

	if (!chs || json_object_set_new(o, "channels", chs) < 0)
		return -ENOMEM;
	rc = sqlite3_prepare_v2(A.db,
				"SELECT at, kind, terminal, count, ok, error FROM sent"
				" WHERE channel = ?1 ORDER BY id DESC LIMIT ?2",
				-1, &st, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < ELEMENTSOF(names); i++) {
		bool on = i == 0 ? cfg->alert_smtp != NULL : cfg->alert_webhook != NULL;
		json_t *ch = json_pack("{s:b, s:s?, s:[]}", "configured", on, "digest",
				       i == 0 && on ? cfg->alert_digest : NULL, "recent");
		json_t *recent = json_object_get(ch, "recent");

		if (!ch || json_object_set_new(chs, names[i], ch) < 0)
			return -ENOMEM;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, ALERT_SENT_KEPT);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			event_format_ts(sqlite3_column_int64(st, 0), at);
			json_array_append_new(
			    recent, json_pack("{s:s, s:s, s:s, s:i, s:s, s:s?}", "at", at, "kind",
					      (const char *)sqlite3_column_text(st, 1), "terminal",
					      (const char *)sqlite3_column_text(st, 2), "count",
					      sqlite3_column_int(st, 3), "result",
					      sqlite3_column_int(st, 4) ? "sent" : "failed",
					      "error", (const char *)sqlite3_column_text(st, 5)));
		}
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	return sql_errno(rc);
}

static int snapshot(int64_t now)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	uint64_t by_kind[_ALERT_KIND_MAX] = {0}, total = 0;
	json_t *arr = json_array(), *o;
	char at[32];
	int rc, r;

	if (!arr)
		return -ENOMEM;
	rc = sqlite3_prepare_v2(
	    A.db,
	    "SELECT key, kind, terminal, ja, en, raised_at, mail, webhook, user FROM alerts"
	    " ORDER BY raised_at, key",
	    -1, &st, NULL);
	while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		int k = kind_from_name((const char *)sqlite3_column_text(st, 1));
		if (k >= 0)
			by_kind[k]++;
		total++;
		if (json_array_size(arr) >= ALERT_LIST_MAX)
			continue; /* counted, not listed: the oldest are listed */
		event_format_ts(sqlite3_column_int64(st, 5), at);
		json_array_append_new(
		    arr,
		    json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s?}", "key",
			      sqlite3_column_text(st, 0), "kind", sqlite3_column_text(st, 1),
			      "terminal", sqlite3_column_text(st, 2), "raised_at", at, "message",
			      "ja", sqlite3_column_text(st, 3), "en", sqlite3_column_text(st, 4),
			      "mail", delivery_name(sqlite3_column_int(st, 6)), "webhook",
			      delivery_name(sqlite3_column_int(st, 7)), "user",
			      (const char *)sqlite3_column_text(st, 8)));
	}
	if (rc != SQLITE_OK) {
		json_decref(arr);
		return sql_errno(rc);
	}
	event_format_ts(now, at);
	o = json_pack("{s:s, s:I, s:o}", "generated_at", at, "open", (json_int_t)total, "alerts",
		      arr);
	if (!o)
		return -ENOMEM;
	r = snapshot_channels(o);
	if (r < 0) {
		json_decref(o);
		return r;
	}
	pthread_mutex_lock(&A.lock);
	json_decref(A.snapshot);
	A.snapshot = o;
	memcpy(A.open_by_kind, by_kind, sizeof(by_kind));
	pthread_mutex_unlock(&A.lock);
	return 0;
}

/* Whether this process sends this round (several collectors on one database: one of them);
 * the sender forgets the shared records of the conditions that ended. */
static bool leader_round(const struct conds *cs)
{
	int lead = store_alert_leader(A.store), r;

	if (lead < 0) {
		server_log(LOG_ERR,
			   "alerts: cannot tell whether this collector sends: %s; sending "
			   "nothing this round",
			   strerror(-lead));
		lead = 0;
	} else if (lead != A.leader && lead < 2) /* 2: SQLite, the only collector */
		server_log(LOG_INFO, lead ? "alerts: this collector sends the alerts"
					  : "alerts: another collector on the database sends the "
					    "alerts");
	pthread_mutex_lock(&A.lock);
	A.leader = lead;
	pthread_mutex_unlock(&A.lock);
	if (lead == 1) { /* on PostgreSQL */
		_cleanup_free_ const char **keys = calloc(cs->n ? cs->n : 1, sizeof(*keys));
		if (!keys)
			return false;
		for (size_t i = 0; i < cs->n; i++)
			keys[i] = cs->v[i].key;
		r = store_alert_sent_keep(A.store, keys, cs->n);
		if (r < 0) {
			server_log(LOG_ERR,
				   "alerts: cannot forget the ended conditions: %s; sending "
				   "nothing this round",
				   strerror(-r));
			return false;
		}
	}
	return lead > 0;
}

static void round_once(void)
{
	const struct collector_config *cfg = A.cfg;
	struct conds cs = {
	    .now_ms = server_now_ms(),
	    .cert_warning_ms = (int64_t)cfg->alert_cert_warning * 1000,
	    .started_ms = A.started_ms,
	};
	struct store_view v = {
	    .now_ms = cs.now_ms,
	    .default_interval_ms = (int64_t)cfg->report_interval * 1000,
	    .drift_ms = (int64_t)cfg->clock_drift * 1000,
	};
	bool lead;
	int r;

	atomic_fetch_add(&A.rounds, 1);
	r = store_alert_scan(A.store, &v, scan_row, &cs);
	if (r >= 0)
		r = store_totp_double_scan(A.store, &v, totp_double_row, &cs);
	if (r >= 0) {
		enroll_cert_foreach(cert_row, &cs);
		r = cs.err;
	}
	if (r >= 0)
		r = review_scan(cfg, &cs);
	if (r < 0) {
		/* the conditions are unknown: nothing is raised or cleared this round */
		if (!A.store_failing)
			server_log(LOG_ERR,
				   "alerts: cannot read the conditions: %s; next round in "
				   "%llu s",
				   strerror(-r), (unsigned long long)cfg->alert_interval);
		A.store_failing = true;
		conds_free(&cs);
		return;
	}
	A.store_failing = false;
	if (cs.n)
		qsort(cs.v, cs.n, sizeof(*cs.v), cond_cmp);
	lead = leader_round(&cs);
	r = reconcile(&cs);
	conds_free(&cs);
	if (r < 0) {
		server_log(LOG_ERR, "alerts: state %s: %s; next round in %llu s", cfg->alert_state,
			   strerror(-r), (unsigned long long)cfg->alert_interval);
		return;
	}
	r = deliver(cs.now_ms, lead);
	if (r >= 0 && lead)
		r = digest(cs.now_ms);
	if (r >= 0)
		r = snapshot(cs.now_ms);
	if (r < 0)
		server_log(LOG_ERR, "alerts: state %s: %s; next round in %llu s", cfg->alert_state,
			   strerror(-r), (unsigned long long)cfg->alert_interval);
}

static void *alert_thread(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec until;

		round_once();
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)A.cfg->alert_interval;
		pthread_mutex_lock(&A.lock);
		while (!A.stop && pthread_cond_timedwait(&A.wake, &A.lock, &until) != ETIMEDOUT)
			;
		if (A.stop) {
			pthread_mutex_unlock(&A.lock);
			return NULL;
		}
		pthread_mutex_unlock(&A.lock);
	}
}

static int state_open(const char *path)
{
	/* made 0600 by us: the messages name terminals and clerks */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	int rc;

	if (fd < 0)
		return -errno;
	close(fd);
	rc = sqlite3_open_v2(path, &A.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(A.db, 5000);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(A.db, state_schema, NULL, NULL, NULL);
	/* a state file of before the user column: its conditions name no one to hide */
	if (rc == SQLITE_OK &&
	    sqlite3_exec(A.db, "SELECT user FROM alerts LIMIT 0", NULL, NULL, NULL) != SQLITE_OK)
		rc =
		    sqlite3_exec(A.db, "ALTER TABLE alerts ADD COLUMN user TEXT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close(A.db);
		A.db = NULL;
		return sql_errno(rc);
	}
	return 0;
}

int alert_check(const struct collector_config *cfg)
{
	_cleanup_free_ char *dir = NULL;
	char *slash;
	sqlite3 *db = NULL;
	int rc;

	dir = strdup(cfg->alert_state);

	if (!dir)
		return -ENOMEM;
	if (access(cfg->alert_state, F_OK) < 0) {
		/* made at start: its directory must take it */
		slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = 0;
		return access(slash ? dir : ".", W_OK) < 0 ? -errno : 0;
	}
	rc = sqlite3_open_v2(cfg->alert_state, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
	sqlite3_close(db);
	return sql_errno(rc);
}

int alert_start(const struct collector_config *cfg)
{
	int r;

	A.cfg = cfg;
	A.started_ms = server_now_ms();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		server_log(LOG_ERR, "alerts: cannot initialise libcurl");
		return -EIO;
	}
	r = state_open(cfg->alert_state);
	if (r < 0) {
		server_log(LOG_ERR, "alerts: state %s: %s", cfg->alert_state, strerror(-r));
		return r;
	}
	r = store_open(cfg->database, false, &A.store);
	if (r < 0) {
		server_log(LOG_ERR, "alerts: database %s (read-only): %s", cfg->database,
			   strerror(-r));
		return r;
	}
	A.stop = false;
	r = -pthread_create(&A.thread, NULL, alert_thread, NULL);
	if (r < 0)
		return r;
	A.running = true;
	server_log(LOG_INFO, "alerts: every %llu s, state %s, mail %s%s, webhook %s",
		   (unsigned long long)cfg->alert_interval, cfg->alert_state,
		   cfg->alert_smtp ? cfg->alert_smtp : "off",
		   cfg->alert_digest ? " (daily digest)" : "", cfg->alert_webhook ? "on" : "off");
	return 0;
}

void alert_stop(void)
{
	if (A.running) {
		pthread_mutex_lock(&A.lock);
		A.stop = true;
		pthread_cond_signal(&A.wake);
		pthread_mutex_unlock(&A.lock);
		pthread_join(A.thread, NULL);
		A.running = false;
	}
	store_close(A.store);
	A.store = NULL;
	sqlite3_close(A.db);
	A.db = NULL;
	pthread_mutex_lock(&A.lock);
	json_decref(A.snapshot);
	A.snapshot = NULL;
	pthread_mutex_unlock(&A.lock);
}

/* s with each what replaced by with, in place in o's key k; -ENOMEM */
static int replace_in(json_t *o, const char *k, const char *what, const char *with)
{
	const char *s = json_string_value(json_object_get(o, k)), *at;
	size_t n = strlen(what), size = 0;
	char *out = NULL;
	FILE *f;

	if (!s || !n || !strstr(s, what))
		return 0;
	f = open_memstream(&out, &size);
	if (!f)
		return -ENOMEM;
	for (; (at = strstr(s, what)); s = at + n)
		fprintf(f, "%.*s%s", (int)(at - s), s, with);
	fputs(s, f);
	if (fclose(f) != 0 || json_object_set_new(o, k, json_string(out)) < 0) {
		free(out);
		return -ENOMEM;
	}
	free(out);
	return 0;
}

/* hide_personal: the user a condition names, in its messages and its key */
static int hide_users(json_t *alerts)
{
	char esc[ESCAPE_SIZE(64)];
	json_t *a;
	size_t i;
	int r = 0;

	json_array_foreach(alerts, i, a)
	{
		const char *user = json_string_value(json_object_get(a, "user"));
		_cleanup_free_ char *u = user ? strdup(user) : NULL;
		if (!user)
			continue;
		if (!u)
			return -ENOMEM;
		user_text(u, esc);
		if (r >= 0)
			r = replace_in(json_object_get(a, "message"), "ja", esc, "\"***\"");
		if (r >= 0)
			r = replace_in(json_object_get(a, "message"), "en", esc, "\"***\"");
		if (r >= 0)
			r = replace_in(a, "key", u, "***");
		if (r >= 0 && json_object_set_new(a, "user", json_string("***")) < 0)
			r = -ENOMEM;
	}
	return r;
}

int alert_json(bool hide_personal, json_t **ret)
{
	json_t *o;
	int r = 0;

	pthread_mutex_lock(&A.lock);
	o = A.snapshot ? json_deep_copy(A.snapshot)
		       : json_pack("{s:n, s:i, s:[]}", "generated_at", "open", 0, "alerts");
	pthread_mutex_unlock(&A.lock);
	if (!o)
		return -ENOMEM;
	if (hide_personal)
		r = hide_users(json_object_get(o, "alerts"));
	if (r < 0) {
		json_decref(o);
		return r;
	}
	*ret = o;
	return 0;
}

void alert_metrics_write(FILE *f)
{
	uint64_t by_kind[_ALERT_KIND_MAX];
	int leader;

	pthread_mutex_lock(&A.lock);
	memcpy(by_kind, A.open_by_kind, sizeof(by_kind));
	pthread_mutex_unlock(&A.lock);
	fputs("# HELP mynaguard_collector_alerts_open Alert conditions open now, per kind.\n"
	      "# TYPE mynaguard_collector_alerts_open gauge\n",
	      f);
	for (int k = 0; k < _ALERT_KIND_MAX; k++)
		fprintf(f, "mynaguard_collector_alerts_open{kind=\"%s\"} %llu\n", kind_names[k],
			(unsigned long long)by_kind[k]);
	fprintf(f,
		"# HELP mynaguard_collector_alerts_raised_total Alert conditions raised by this "
		"process.\n"
		"# TYPE mynaguard_collector_alerts_raised_total counter\n"
		"mynaguard_collector_alerts_raised_total %llu\n"
		"# HELP mynaguard_collector_alerts_cleared_total Alert conditions that ended.\n"
		"# TYPE mynaguard_collector_alerts_cleared_total counter\n"
		"mynaguard_collector_alerts_cleared_total %llu\n",
		(unsigned long long)atomic_load(&A.raised),
		(unsigned long long)atomic_load(&A.cleared));
	pthread_mutex_lock(&A.lock);
	leader = A.leader;
	pthread_mutex_unlock(&A.lock);
	fprintf(f,
		"# HELP mynaguard_collector_alert_sender 1 when this process sends the alerts (one "
		"of the collectors on a PostgreSQL database), 0 when another does.\n"
		"# TYPE mynaguard_collector_alert_sender gauge\n"
		"mynaguard_collector_alert_sender %d\n",
		leader > 0);
	fputs("# HELP mynaguard_collector_alert_deliveries_total Mails (digests included) and "
	      "webhook posts, by result.\n"
	      "# TYPE mynaguard_collector_alert_deliveries_total counter\n",
	      f);
	for (int ch = 0; ch < 2; ch++) {
		const char *name = ch ? "webhook" : "mail";
		fprintf(
		    f,
		    "mynaguard_collector_alert_deliveries_total{channel=\"%s\",result=\"ok\"} %llu\n",
		    name, (unsigned long long)atomic_load(&A.sent[ch]));
		fprintf(
		    f,
		    "mynaguard_collector_alert_deliveries_total{channel=\"%s\",result=\"failed\"} "
		    "%llu\n",
		    name, (unsigned long long)atomic_load(&A.failed[ch]));
	}
}
