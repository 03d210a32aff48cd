/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the auditor's side (docs/evidence.md): the periodic log review and its
 * sign-off (review.c), the signed evidence bundle (evidence.c) and the printable monthly
 * self-inspection report (report.c). They read the collector's database through a read-only
 * connection of their own (one snapshot per request), so the CLI works offline on the file. */
#pragma once

#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"

#define REVIEW_DAY_MS	     (86400LL * 1000)
#define REVIEW_JST_MS	     (9LL * 3600 * 1000) /* periods and days are days in Japan (UTC+9) */
#define REVIEW_ITEMS_MAX     2000		 /* items listed per category (the rest counted) */
#define REVIEW_COMMENT_MAX   2000		 /* bytes */
#define EVIDENCE_CLAUSES_MAX 32
#define EVIDENCE_DAYS_MAX    400

struct worker;
struct bundle_signer;

struct review_settings {
	bool weekly;
	unsigned office_start, office_end; /* minutes after midnight, Japan time */
	unsigned days;			   /* office days: bit 0 = Sunday ... bit 6 = Saturday */
	unsigned burst_n, burst_minutes;
};
/* Writes the formatted message into err (when err) and returns r. */
int review_fail(char *err, size_t errsz, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Checks and decodes the [review] settings; -EINVAL with a message naming the key. */
int review_settings_parse(const struct collector_config *c, struct review_settings *ret, char *err,
			  size_t errsz);

struct review_period {
	char name[12]; /* "2026-11" or "2026-W47" */
	int64_t from_ms, to_ms;
};
/* "YYYY-MM" (a month) or "YYYY-Www" (an ISO week), Japan time. -EINVAL with a reason. */
int review_period_parse(const char *s, struct review_period *ret, char *err, size_t errsz);
/* The period (monthly or weekly) that holds ms. */
void review_period_of(int64_t ms, bool weekly, struct review_period *ret);
/* "YYYY-MM-DD" (Japan time) of ms. */
void review_day_name(int64_t ms, char out[11]);

/* The collector's store, read-only, inside one read transaction (a snapshot): the SQLite file,
 * or (location "pg:URL", store-pg.h) a PostgreSQL connection of its own in one REPEATABLE READ
 * READ ONLY transaction. The review, the bundle and the report run their queries through
 * review_q below, the same code on both stores; only the SQL text may differ. */
struct review_db;
int review_db_open(const char *location, struct review_db **ret);
void review_db_close(struct review_db *db);
bool review_db_is_pg(const struct review_db *db);
/* Whether the store has the table (the fleet's tables are SQLite's only). */
bool review_db_has_table(struct review_db *db, const char *name);

/* One query. sql is SQLite's text, pg PostgreSQL's (NULL: the same text); parameters ?1..?8
 * (PostgreSQL's $1..$8 are made from them). NULL (logged) when it cannot be prepared. On
 * PostgreSQL the rows are fetched through a cursor, REVIEW_Q_FETCH at a time, so several
 * queries can be stepped at once. */
/* Terminal names and users are ordered byte for byte, as SQLite does: REVIEW_Q_C after a text
 * in an ORDER BY is PostgreSQL's COLLATE "C" (a comment for SQLite), so that both stores list
 * in the same order whatever the database's collation. */
#define REVIEW_Q_C	"/*C*/"
#define REVIEW_Q_PARAMS 8
#define REVIEW_Q_FETCH	1000
struct review_q;
struct review_q *review_q_prep(struct review_db *db, const char *sql, const char *pg);
void review_q_int(struct review_q *q, int i, int64_t v);
void review_q_text(struct review_q *q, int i, const char *v); /* NULL: SQL NULL (a text) */
/* 1: a row, 0: no more, -EIO. */
int review_q_step(struct review_q *q);
/* Back to before the first row, the parameters kept. */
void review_q_reset(struct review_q *q);
int64_t review_q_int_col(struct review_q *q, int i); /* a boolean is 1 or 0 */
const char *review_q_col(struct review_q *q, int i); /* "" for NULL */
bool review_q_null(struct review_q *q, int i);
void review_q_free(struct review_q *q);

/* Each terminal's compliance snapshots (terminals in name order, each oldest first): the last
 * one before from_ms, then those in [from_ms, to_ms). data is the parsed event data (NULL when
 * it does not parse), chain the event's link as hex. Per terminal two index range reads. */
typedef int (*review_snapshot_fn)(const char *terminal, int64_t ts, uint64_t seq, const char *chain,
				  json_t *data, void *userdata);
int review_snapshots(struct review_db *db, int64_t from_ms, int64_t to_ms, review_snapshot_fn fn,
		     void *userdata);

/* What needs a human look in the period: {"period","from","to","settings","categories":{..},
 * "items":[..],"items_sha256"}; items_sha256 is the SHA-256 of the compact JSON of items. */
int review_items(struct review_db *db, const struct review_settings *rs,
		 const struct review_period *p, json_t **ret);
/* The review.signed events, newest first; period NULL for all. Each {seq,ts,chain,...data}. */
int review_signoffs(struct review_db *db, const char *period, unsigned limit, json_t **ret);

/* The reminder of alert.c: the newest period whose end is grace_ms or more before now_ms, in
 * ret; 1 when it has no sign-off while the store holds events from before its end, else 0.
 * -EIO when the store cannot answer. */
int review_overdue(struct review_db *db, bool weekly, int64_t now_ms, int64_t grace_ms,
		   struct review_period *ret);

/* The dashboard paths below (/v1/review..., /v1/evidence, /r/selfcheck): checks the token
 * itself, any method. */
bool review_api_path(const char *path);
void review_api_handle(struct evhttp_request *req, struct worker *w);

/* ---- evidence.c ---- */

struct evidence_query {
	char from[11], to[11]; /* YYYY-MM-DD, both included */
	int64_t from_ms, to_ms;
	unsigned ndays;
	char clauses[EVIDENCE_CLAUSES_MAX][33];
	size_t n_clauses; /* 0: every clause */
	/* for a hide_personal account: every line redacted by auth_redact before it is hashed
	 * and signed (the bundle still verifies), and "redacted": true in the header */
	bool hide_personal;
};
/* Checks the dates (from <= to, at most EVIDENCE_DAYS_MAX days) and the comma-separated
 * clause ids (NULL or "" for all). -EINVAL with a reason. */
int evidence_query_parse(const char *from, const char *to, const char *clauses,
			 struct evidence_query *ret, char *err, size_t errsz);
/* Writes the signed JSON-lines bundle to out. */
int evidence_write(struct review_db *db, const struct evidence_query *q,
		   const struct bundle_signer *key, FILE *out, char *err, size_t errsz);

/* One check of one terminal on one day: "fail" when it failed at any time of the day (the
 * state carried from the day before counts), else its status; reported: a snapshot that day. */
struct evidence_day {
	const char *terminal;
	unsigned day; /* index from the first day */
	const char *check;
	json_t *clause;
	const char *status;
	bool reported;
};
typedef int (*evidence_day_fn)(const struct evidence_day *d, void *userdata);
/* Calls fn in terminal, day, check order for ndays days from from_ms (a day start). */
int evidence_daily(struct review_db *db, int64_t from_ms, unsigned ndays, evidence_day_fn fn,
		   void *userdata);
bool evidence_clause_match(json_t *clause, const struct evidence_query *q);

/* ---- report.c ---- */

/* The monthly self-inspection report as one HTML document; hide_personal: the personal values
 * (auth_redact's keys) shown as "***". -EINVAL (bad month, err says why), -ENOENT (no such
 * group). */
int report_selfcheck_html(struct review_db *db, const char *month, const char *group,
			  bool hide_personal, FILE *out, char *err, size_t errsz);
