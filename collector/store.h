/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the SQLite store (schema, migrations, the writer's batched inserts, the
 * dashboard's read queries). One struct store per thread; the writer owns the only writable one. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "chain.h"
#include "event.h"

#define STORE_SCHEMA_VERSION 7

/* The history's days are days in Japan (UTC+9, no daylight saving): a snapshot at 23:30 JST
 * counts for that day, not the next one in UTC. */
#define STORE_DAY_OFFSET_MS    (9 * 3600 * 1000LL)
#define STORE_DAY_MS	       (86400 * 1000LL)
#define STORE_HISTORY_DAYS_MAX 400
/* /v1/activity's top terminals are a sum over every terminal's days of the range: recomputed at
 * most once a minute per dashboard connection (the day totals are always current) */
#define STORE_TOP_TTL_MS (60 * 1000LL)

static inline int64_t store_day(int64_t ts_ms)
{
	int64_t t = ts_ms + STORE_DAY_OFFSET_MS;
	return t >= 0 ? t / STORE_DAY_MS : -((-t + STORE_DAY_MS - 1) / STORE_DAY_MS);
}

struct store;

/* Opens (creating when writable) and migrates to STORE_SCHEMA_VERSION. A read-only store refuses
 * a database that is older or newer than this binary (-EPROTO). */
int store_open(const char *path, bool writable, struct store **ret);
void store_close(struct store *s);
/* -errno for an SQLite result code (for the collector's other SQLite files, alert.c). */
int store_sqlite_errno(int rc);
int store_schema_version(struct store *s);

/* Transactions for the writer: one BEGIN IMMEDIATE ... COMMIT around many batches, each batch in
 * its own savepoint so that one failing batch does not undo the others. */
/* Before store_begin, per batch of the round: what the store makes outside a round (the
 * PostgreSQL store's month partitions); nothing on SQLite. Best effort, no result. */
void store_prepare_batch(struct store *s, const struct event_batch *b);
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

struct store_write_result {
	uint64_t acked_through; /* highest seq of the batch (0 for an empty batch) */
	unsigned stored;	/* new events */
	unsigned duplicates;	/* (terminal, seq) already present */
	unsigned conflicts;	/* duplicates whose ts or kind differ from the stored event */
	unsigned gaps;		/* new gaps recorded */
};

/* Store one decoded batch inside the open transaction. received_ms: the collector's clock.
 * On failure the batch's savepoint is rolled back and nothing of it remains. */
int store_write_batch(struct store *s, const struct event_batch *b, int64_t received_ms,
		      struct store_write_result *ret);

/* The highest seq stored for terminal name (0 when it is unknown): the writer numbers the
 * collector's own events with it. */
int store_terminal_max_seq(struct store *s, const char *name, uint64_t *ret);

/* WAL upkeep. The writer's connection never checkpoints by itself (a checkpoint inside a commit
 * would stall every waiting terminal); store_wal_frames() is what its last commit left in the
 * WAL, store_checkpoint() copies the WAL into the database from another connection (passive:
 * never blocks the writer) or, with restart, from the writer itself when the WAL grew too
 * large because passive checkpoints could not catch up. */
int store_wal_frames(struct store *s);
int store_checkpoint(struct store *s, bool restart);

/* ---- retention by kind and tamper evidence (docs/evidence.md) ----
 * A second backend implements these with the same meaning; the chain's definition is the one
 * in docs/evidence.md, independent of SQLite. */

struct store_retention_policy {
	/* per enum event_kind: events received (collector's clock) before this are disposed of;
	 * INT64_MIN keeps that kind */
	int64_t cutoff_ms[_EVENT_KIND_MAX];
	const char *const *hold; /* legal hold: terminal ids whose events are never disposed of */
	size_t n_hold;
};

/* One bounded round of disposal in its own transaction, touching at most limit rows: expired
 * events become tombstones (metadata, body digest and link kept; clause and data removed), then
 * each terminal's leading tombstones are deleted and folded into its anchor. *ret_disposed:
 * events whose content this round removed. Returns 1 when the round used its whole budget (call
 * again), 0 when nothing is left to do. */
int store_retention(struct store *s, const struct store_retention_policy *p, int64_t now_ms,
		    unsigned limit, unsigned *ret_disposed);

#define STORE_KIND_MAX 32 /* longest event kind name */

/* One terminal's chain head: its newest stored event (seq, when received, kind) and that
 * event's link. */
struct store_head {
	char terminal[EVENT_TERMINAL_MAX + 1];
	uint64_t seq;
	int64_t received_ms;
	char kind[STORE_KIND_MAX + 1];
	uint8_t link[STORE_CHAIN_LEN];
	bool seen; /* store_verify()'s bookkeeping */
};

struct store_verify_opts {
	const char *terminal; /* NULL: every terminal */
	/* NULL: a tombstone's age is not checked; else a disposal before its kind's period (or of
	 * a kind kept forever) breaks the chain */
	const struct store_retention_policy *policy;
	/* the last signed heads, sorted by terminal (strcmp): the chain must pass through each */
	struct store_head *expect;
	size_t n_expect;
	bool collect; /* fill heads: one per terminal with events kept, sorted */
};

struct store_verify {
	uint64_t terminals, events; /* checked */
	uint64_t anchored;	    /* terminals whose chain starts at a disposal anchor */
	uint64_t tombstones;	    /* disposed events whose links were checked */
	uint64_t heads_checked;	    /* signed heads found on their chains */
	uint64_t heads_disposed;    /* signed heads disposed of since (not checkable) */
	bool broken;
	char terminal[EVENT_TERMINAL_MAX + 1]; /* the first broken link: terminal and seq */
	uint64_t seq;
	char reason[192];
	struct store_head *heads; /* with collect: malloc'd, freed by store_verify_done() */
	size_t n_heads;
};

/* Recomputes every terminal's chain or one (-ENOENT when unknown) in one read snapshot, and
 * stops at the first broken link. Works on a read-only store. */
int store_verify(struct store *s, const struct store_verify_opts *o, struct store_verify *ret);
void store_verify_done(struct store_verify *v);

/* The signed chain heads (heads.c makes and checks them): put keeps the newest keep records;
 * last answers -ENOENT when none was stored. */
int store_signed_heads_put(struct store *s, int64_t at_ms, const char *body, const uint8_t *sig,
			   size_t sig_len, unsigned keep);
int store_signed_heads_last(struct store *s, int64_t *ret_at, char **ret_body, uint8_t **ret_sig,
			    size_t *ret_sig_len);

/* ---- dashboard queries (read-only) ---- */

struct store_view {
	int64_t now_ms;
	int64_t default_interval_ms; /* when a terminal did not report its interval */
	int64_t drift_ms;	     /* |drift| beyond this raises the flag */
	/* a JSON array of the terminals whose certificate expires within [alerts] cert_warning
	 * (enroll_cert_expiring_json()): a problem on the dashboard; NULL = none */
	const char *cert_expiring;
};

enum store_sort {
	STORE_SORT_PROBLEM, /* non-compliant, stale, other problems, no report, compliant; then name */
	STORE_SORT_NAME,
	STORE_SORT_STATUS,
	STORE_SORT_LAST_SEEN,
	STORE_SORT_FAILING, /* number of failing checks */
	STORE_SORT_GAPS,
	STORE_SORT_DESCRIPTION,
	_STORE_SORT_MAX,
};

enum store_status_filter {
	STORE_STATUS_ALL,
	STORE_STATUS_NONCOMPLIANT,
	STORE_STATUS_STALE,
	STORE_STATUS_PROBLEM, /* non-compliant, stale, no report, clock drift, lockout, unannounced gap,
			       * double use of a code, certificate near expiry */
	STORE_STATUS_COMPLIANT,
	STORE_STATUS_UNKNOWN,
	_STORE_STATUS_MAX,
};

/* One page of the terminal list, filtered and sorted by the store. */
struct store_terminal_query {
	enum store_status_filter status;
	enum store_sort sort;
	bool desc;
	char search[129]; /* substring of the id or the policy's description; "" = all */
	char check[EVENT_TERMINAL_MAX + 1]; /* only terminals failing this check id; "" = all */
	/* only terminals that failed a check of this clause on day (store_day()); "" = all */
	char clause[EVENT_TERMINAL_MAX + 1];
	int64_t clause_day;
	unsigned offset, limit; /* limit 0: every row (the CSV export) */
};

/* {"generated_at","summary":{total,compliant,noncompliant,unknown,stale,problem},"matched":N,
 *  "offset","limit","terminals":[...]}: the summary counts every terminal, matched the filter's. */
int store_terminals_json(struct store *s, const struct store_view *v,
			 const struct store_terminal_query *q, json_t **ret);
/* One terminal with checks, gaps and recent events; -ENOENT when unknown. */
int store_terminal_json(struct store *s, const struct store_view *v, const char *id,
			unsigned recent, json_t **ret);

struct store_filter {
	uint64_t after;			       /* cursor: the event's row id; 0 = from the start */
	bool newest;			       /* newest first by ts (then id); cursor below */
	int64_t before_ts;		       /* newest: rows before (before_ts, before_id) */
	uint64_t before_id;		       /* 0 = from the newest */
	char terminal[EVENT_TERMINAL_MAX + 1]; /* "" = all */
	char
	    group[EVENT_TERMINAL_MAX + 1]; /* the fleet group's members (docs/fleet.md); "" = all */
	int kind;			   /* -1 = all, else enum event_kind */
	int64_t since_ms;		   /* inclusive, on ts; INT64_MIN = open */
	int64_t until_ms;		   /* exclusive, on ts; INT64_MAX = open */
	unsigned limit;
};

/* {"events":[...],"next":"CURSOR"|null} */
int store_events_json(struct store *s, const struct store_filter *f, json_t **ret);

/* PostgreSQL: publishes in the database the event id up to which every row is committed (or
 * never will be), for cursor reads on a streaming replica (docs/postgresql.md, "The cursor");
 * waits for the writer rounds under way. The writer, between its rounds. SQLite: nothing. */
int store_cursor_publish(struct store *s);

struct store_row {
	uint64_t id;
	const char *terminal;
	uint64_t seq;
	int64_t ts_ms, received_ms;
	const char *kind;
	const char *clause; /* JSON text */
	const char *data;   /* JSON text */
};
/* Calls fn for up to f->limit rows after f->after; *ret_last is the last row id seen (0 when none). */
int store_events_foreach(struct store *s, const struct store_filter *f,
			 int (*fn)(const struct store_row *row, void *userdata), void *userdata,
			 uint64_t *ret_last);

struct store_stats {
	uint64_t terminals, events, gaps;
	uint64_t compliant, noncompliant, unknown, stale;
	/* per enum event_kind: when the oldest kept event was received (ms), INT64_MIN if none */
	int64_t oldest_ms[_EVENT_KIND_MAX];
};
int store_stats(struct store *s, const struct store_view *v, struct store_stats *ret);

/* Copies this SQLite store, row for row (ids, links, tombstones, anchors, signed heads), into
 * an empty PostgreSQL store at location (STORE_PG_PREFIX conninfo; created when new) in one
 * transaction; -ENOTEMPTY when it holds anything. *ret_rows: rows copied. */
int store_migrate_to_pg(struct store *s, const char *location, uint64_t *ret_rows);
/* ---- alerts (alert.c): the terminals with a condition ---- */

struct store_alert_row {
	const char *terminal;
	const char *description; /* the policy's; NULL when none */
	bool noncompliant;	 /* a check fails in the newest compliance snapshot */
	bool stale;		 /* no report for longer than twice its interval */
	int64_t last_seen_ms, interval_ms;
	int64_t locked_at_ms;	 /* ts of the newest auth.locked of the last 24 h; 0 = none */
	const char *locked_user; /* its data.user; NULL when unknown */
	uint64_t gaps_unannounced;
	const char *failing; /* the failing check ids, space-separated; NULL when compliant */
};

/* Calls fn for every terminal that is non-compliant, stale, locked out (last 24 h) or has an
 * unannounced gap, by name; the row's strings live until fn returns. Read-only store. */
int store_alert_scan(struct store *s, const struct store_view *v,
		     int (*fn)(const struct store_alert_row *row, void *arg), void *arg);
/* Several collectors on one PostgreSQL database (docs/alerts.md, "Several collectors"): 1 when
 * this process is the one that sends the alerts, 0 when another collector is; 2 on SQLite (the
 * only collector). On PostgreSQL the sender holds a session advisory lock on s's connection: taken at the
 * first round that finds it free, kept while the connection lives (a collector that dies
 * releases it, and another takes it at its next round). -errno when unknown. */
int store_alert_leader(struct store *s);
/* The deliveries of a condition (by key) that any sender recorded, shared by the collectors on
 * a PostgreSQL database so that a new sender does not send again: *mail and *hook take the
 * recorded values (alert.c's delivery states), 1 when there is a record. SQLite: 0, none. */
int store_alert_sent_get(struct store *s, const char *key, int *mail, int *hook);
/* Records a condition's deliveries (each channel keeps the greater state); SQLite: nothing. */
int store_alert_sent_put(struct store *s, const char *key, int mail, int hook, int64_t at_ms);
/* Forgets the records of the conditions not in keys[n] (they ended). SQLite: nothing. */
int store_alert_sent_keep(struct store *s, const char *const *keys, size_t n);
/* The local day of the last digest sent by any sender ("" when none); SQLite: "". */
int store_alert_digest_day(struct store *s, char day[static 16]);
int store_alert_digest_put(struct store *s, const char *day);
struct store_totp_double {
	const char *user;
	uint64_t step; /* the TOTP time step (or 2^62 + rid: a recovery code) */
	const char *first,
	    *second;   /* the terminal that used it first, the one that used it again */
	int64_t ts_ms; /* when the collector noticed */
};

/* Calls fn for every double use of a one-time code of the last 24 h (fleet.totp double_use, the
 * collector's own events), oldest first (either backend). Read-only store. */
int store_totp_double_scan(struct store *s, const struct store_view *v,
			   int (*fn)(const struct store_totp_double *d, void *arg), void *arg);
/* ---- the daily history (docs/evidence.md "History"); days: 1..STORE_HISTORY_DAYS_MAX, ending
 * with today (v->now_ms, a day in Japan) ---- */

/* {"terminal","from","to","days":N,"checks":[{"id","clause":[...],"days":"pf-..."}]}: one
 * character per day, oldest first: p pass, f fail (fail or error), - no report. -ENOENT when the
 * terminal is unknown. */
int store_history_json(struct store *s, const struct store_view *v, const char *id, unsigned days,
		       json_t **ret);
/* {"from","to","days":N,"dates":[...],"terminals":T,"clauses":[{"clause","reporting":[N],
 *  "complied":[N]}]}: per clause and day, the terminals that reported and those whose every check
 *  of the clause passed all day. */
int store_clauses_json(struct store *s, const struct store_view *v, unsigned days, json_t **ret);
/* {"from","to","days":N,"dates":[...],"usb_blocked":[N],"auth_failure":[N],"auth_locked":[N],
 *  "top":{"usb_blocked":[{"terminal","n"}],"auth_failure":[...]}}: the fleet's counts per day and
 *  the top terminals over the whole range (at most STORE_TOP_TTL_MS old). */
int store_activity_json(struct store *s, const struct store_view *v, unsigned days, unsigned top,
			json_t **ret);
