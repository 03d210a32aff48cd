/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the SQLite store (schema, migrations, the writer's batched inserts, the
 * dashboard's read queries). One struct store per thread; the writer owns the only writable one. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "account-store.h"
#include "ingest.h"
#include "macro.h"
#include "store-pg.h"
#include "store-verify.h"

/* Each entry moves the schema from version i to i+1; never edit a released one. */
static const char *const migrations[] = {
    /* 0 → 1 */
    "CREATE TABLE terminals ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  max_seq INTEGER NOT NULL DEFAULT 0,"
    "  policy_hash TEXT,"
    "  report_interval INTEGER," /* ms, from the last compliance event */
    "  compliance_seq INTEGER NOT NULL DEFAULT 0,"
    "  compliance_ts INTEGER,"
    "  drift_ms INTEGER," /* received - newest ts of the last batch */
    "  conflicts INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY," /* receive order: the pagination cursor */
    "  tid INTEGER NOT NULL REFERENCES terminals(id),"
    "  seq INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL,"	      /* terminal's clock, ms since the epoch, UTC */
    "  received_at INTEGER NOT NULL," /* collector's clock */
    "  kind TEXT NOT NULL,"
    "  clause TEXT NOT NULL," /* JSON array */
    "  data TEXT NOT NULL,"   /* JSON object */
    "  UNIQUE (tid, seq));"
    /* only the kinds the dashboard counts per 24 h: the others cost no index upkeep */
    "CREATE INDEX events_counted ON events (kind, ts, tid)"
    " WHERE kind IN ('usb.blocked', 'auth.failure');"
    "CREATE TABLE checks ("
    "  tid INTEGER NOT NULL REFERENCES terminals(id),"
    "  check_id TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  clause TEXT NOT NULL,"
    "  detail TEXT,"
    "  since INTEGER NOT NULL," /* ts of the first report with this status */
    "  updated_at INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  PRIMARY KEY (tid, check_id)) WITHOUT ROWID;"
    "CREATE TABLE gaps ("
    "  id INTEGER PRIMARY KEY,"
    "  tid INTEGER NOT NULL REFERENCES terminals(id),"
    "  first INTEGER NOT NULL,"
    "  last INTEGER NOT NULL,"
    "  detected_at INTEGER NOT NULL,"
    "  announced INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX gaps_tid ON gaps (tid, first);",
    /* 1 → 2: the dashboard's triage and event filters stay index lookups at 10,000 terminals and
     * millions of events (docs/benchmarks.md); lockouts are counted like blocks and failures. */
    "DROP INDEX events_counted;"
    "CREATE INDEX events_kind_ts ON events (kind, ts);"
    "CREATE INDEX events_tid_ts ON events (tid, ts);"
    "CREATE INDEX events_ts ON events (ts);"
    "CREATE INDEX checks_failing ON checks (check_id, tid) WHERE status IN ('fail', 'error');"
    "ALTER TABLE terminals ADD COLUMN description TEXT;" /* the policy's, from its snapshot */
    /* the list's state per terminal, kept by the writer so that a page of 10,000 terminals
     * is one scan of this table: failing checks, the newest lockout, the gaps */
    "ALTER TABLE terminals ADD COLUMN n_failing INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE terminals ADD COLUMN locked_at INTEGER;" /* ts of the newest auth.locked */
    "ALTER TABLE terminals ADD COLUMN n_gaps INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE terminals ADD COLUMN n_gaps_unannounced INTEGER NOT NULL DEFAULT 0;"
    "UPDATE terminals SET n_failing = (SELECT count(*) FROM checks c WHERE c.tid = terminals.id"
    " AND c.status IN ('fail', 'error')),"
    " n_gaps = (SELECT count(*) FROM gaps g WHERE g.tid = terminals.id),"
    " n_gaps_unannounced = (SELECT count(*) FROM gaps g WHERE g.tid = terminals.id"
    " AND g.announced = 0);"
    "UPDATE terminals SET locked_at = l.ts FROM (SELECT tid, max(ts) AS ts FROM events"
    " WHERE kind = 'auth.locked' GROUP BY tid) l WHERE l.tid = terminals.id;",
    /* 2 → 3: tamper evidence (docs/evidence.md). Each event row carries the link of its
     * terminal's hash chain, in storage order; terminals.chain_head is the newest link, and
     * chain_anchors the link before the oldest kept event after a disposal. The existing rows
     * are chained by chain_backfill() in the same transaction. */
    "ALTER TABLE events ADD COLUMN chain BLOB;"
    "ALTER TABLE terminals ADD COLUMN chain_head BLOB;"
    "CREATE TABLE chain_anchors ("
    "  tid INTEGER PRIMARY KEY REFERENCES terminals(id),"
    "  first_seq INTEGER,"	   /* seq of the first kept event; NULL when none was left */
    "  chain BLOB NOT NULL,"	   /* the link of the last disposed event */
    "  disposed INTEGER NOT NULL," /* events disposed of, in total */
    "  at INTEGER NOT NULL);",	   /* collector's clock, ms, of the last disposal */
    /* 3 → 4: retention by kind (docs/evidence.md). A link now covers the digest of the event's
     * body (clause and data), so that an event disposed of in the middle of a chain leaves a
     * tombstone (its metadata, the body digest in `body`, its link) that verify still checks.
     * The chains are recomputed by chain_backfill() in the same transaction. chain_collapse
     * lists the terminals whose leading tombstones are still to be folded into the anchor;
     * signed_heads holds the Ed25519-signed sets of chain heads. */
    "ALTER TABLE events ADD COLUMN body BLOB;" /* NULL: kept; else a tombstone's body digest */
    "ALTER TABLE events ADD COLUMN disposed_at INTEGER;"
    "CREATE INDEX events_expiry ON events (kind, received_at) WHERE body IS NULL;"
    "CREATE INDEX events_tid ON events (tid);"
    "CREATE TABLE chain_collapse (tid INTEGER PRIMARY KEY);"
    "CREATE TABLE signed_heads ("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL," /* collector's clock, ms */
    "  body TEXT NOT NULL,"  /* the signed text (docs/evidence.md) */
    "  signature BLOB NOT NULL);",
    /* 4 → 5: the daily history (docs/evidence.md "History"), kept by the writer in the batch's
     * transaction so that 30 or 90 days at 10,000 terminals are a few index ranges. day: days
     * since the epoch in Japan (UTC+9, STORE_DAY_OFFSET_MS) of the event's ts; status 1 pass, 2
     * fail (fail or error): the worst of the day's snapshots, in whatever order they arrived.
     * The summaries hold no personal data and outlive the disposal of the events. */
    /* the group filter (fleet_members) checks the terminal inside these indexes, without
     * reading each event row: 8 times faster for a group's CSV (docs/benchmarks.md) */
    "DROP INDEX events_kind_ts;"
    "CREATE INDEX events_kind_ts ON events (kind, ts, tid);"
    "DROP INDEX events_ts;"
    "CREATE INDEX events_ts ON events (ts, tid);"
    "CREATE TABLE check_days ("
    "  tid INTEGER NOT NULL,"
    "  day INTEGER NOT NULL,"
    "  check_id TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  PRIMARY KEY (tid, day, check_id)) WITHOUT ROWID;"
    "CREATE TABLE clause_terminal_days (" /* the worst of a clause's checks, per terminal */
    "  day INTEGER NOT NULL,"
    "  clause TEXT NOT NULL,"
    "  tid INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  PRIMARY KEY (day, clause, tid)) WITHOUT ROWID;"
    "CREATE TABLE clause_days ("
    "  day INTEGER NOT NULL,"
    "  clause TEXT NOT NULL,"
    "  reporting INTEGER NOT NULL," /* terminals with a snapshot that day */
    "  failing INTEGER NOT NULL,"   /* of which one failed a check of the clause */
    "  PRIMARY KEY (day, clause)) WITHOUT ROWID;"
    "CREATE TABLE kind_days (" /* usb.blocked, auth.failure, auth.locked per terminal */
    "  kind TEXT NOT NULL,"
    "  day INTEGER NOT NULL,"
    "  tid INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY (kind, day, tid)) WITHOUT ROWID;"
    "CREATE TABLE kind_totals ("
    "  kind TEXT NOT NULL,"
    "  day INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY (kind, day)) WITHOUT ROWID;"
    "INSERT INTO check_days (tid, day, check_id, status)"
    " SELECT e.tid, (e.ts + 32400000) / 86400000, json_extract(c.value, '$.id'),"
    "  max(CASE json_extract(c.value, '$.status') WHEN 'pass' THEN 1 ELSE 2 END)"
    " FROM events e, json_each(e.data, '$.checks') c WHERE e.kind = 'compliance'"
    "  AND json_type(c.value, '$.id') = 'text'"
    "  AND json_extract(c.value, '$.status') IN ('pass', 'fail', 'error')"
    " GROUP BY 1, 2, 3;"
    "INSERT INTO clause_terminal_days (day, clause, tid, status)"
    " SELECT (e.ts + 32400000) / 86400000, cl.value, e.tid,"
    "  max(CASE json_extract(c.value, '$.status') WHEN 'pass' THEN 1 ELSE 2 END)"
    " FROM events e, json_each(e.data, '$.checks') c, json_each(c.value, '$.clause') cl"
    " WHERE e.kind = 'compliance' AND json_type(c.value, '$.id') = 'text'"
    "  AND json_extract(c.value, '$.status') IN ('pass', 'fail', 'error')"
    "  AND cl.type = 'text'"
    " GROUP BY 1, 2, 3;"
    "INSERT INTO clause_days (day, clause, reporting, failing)"
    " SELECT day, clause, count(*), sum(status = 2) FROM clause_terminal_days GROUP BY 1, 2;"
    "INSERT INTO kind_days (kind, day, tid, n)"
    " SELECT kind, (ts + 32400000) / 86400000, tid, count(*) FROM events"
    " WHERE kind IN ('usb.blocked', 'auth.failure', 'auth.locked') GROUP BY 1, 2, 3;"
    "INSERT INTO kind_totals (kind, day, n) SELECT kind, day, sum(n) FROM kind_days GROUP BY 1, 2;",
    /* 5 → 6: the dashboard's personal accounts, sessions and scoped tokens (account-store.c) */
    ACCOUNT_STORE_SCHEMA,
    /* 6 → 7: what the self-inspection report counts, in the daily history (docs/evidence.md
     * "History"), so that it reads no snapshot: per terminal and day the newest snapshot's
     * (ts, seq), and per check its newest status of the day in event time (not_applicable
     * included), the worst of the day (0 not_applicable, 1 pass, 2 fail or error) and the
     * clause ids of that newest snapshot. A late older snapshot raises the worst only.
     * Backfilled from the kept snapshots; the status stays text, as the events say it. */
    "CREATE TABLE snapshot_days ("
    "  tid INTEGER NOT NULL,"
    "  day INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  PRIMARY KEY (tid, day)) WITHOUT ROWID;"
    "CREATE TABLE check_last_days ("
    "  tid INTEGER NOT NULL,"
    "  day INTEGER NOT NULL,"
    "  check_id TEXT NOT NULL,"
    "  ts INTEGER NOT NULL," /* of the newest snapshot of the day with the check */
    "  seq INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  worst INTEGER NOT NULL,"
    "  clause TEXT NOT NULL," /* a JSON array */
    "  PRIMARY KEY (tid, day, check_id)) WITHOUT ROWID;"
    "INSERT INTO snapshot_days (tid, day, ts, seq)"
    " SELECT tid, day, ts, seq FROM (SELECT tid, (ts + 32400000) / 86400000 AS day, ts, seq,"
    "  row_number() OVER (PARTITION BY tid, (ts + 32400000) / 86400000"
    "  ORDER BY ts DESC, seq DESC) AS n FROM events"
    "  WHERE kind = 'compliance' AND body IS NULL) WHERE n = 1;"
    "INSERT INTO check_last_days (tid, day, check_id, ts, seq, status, worst, clause)"
    " SELECT tid, day, id, ts, seq, status, worst, clause FROM (SELECT *,"
    "  row_number() OVER (PARTITION BY tid, day, id ORDER BY ts DESC, seq DESC, k DESC) AS n,"
    "  max(code) OVER (PARTITION BY tid, day, id) AS worst FROM (SELECT e.tid,"
    "  (e.ts + 32400000) / 86400000 AS day, e.ts, e.seq, c.key AS k,"
    "  json_extract(c.value, '$.id') AS id, json_extract(c.value, '$.status') AS status,"
    "  CASE json_extract(c.value, '$.status') WHEN 'pass' THEN 1 WHEN 'fail' THEN 2"
    "  WHEN 'error' THEN 2 ELSE 0 END AS code,"
    "  CASE json_type(c.value, '$.clause') WHEN 'array' THEN json_extract(c.value, '$.clause')"
    "  ELSE '[]' END AS clause"
    "  FROM events e, json_each(e.data, '$.checks') c WHERE e.kind = 'compliance'"
    "  AND e.body IS NULL AND json_type(e.data, '$.checks') = 'array'"
    "  AND json_type(c.value, '$.id') = 'text' AND json_type(c.value, '$.status') = 'text'))"
    " WHERE n = 1;",
};

enum stmt_id {
	ST_TERMINAL_GET,
	ST_TERMINAL_ADD,
	ST_TERMINAL_UPDATE,
	ST_EVENT_INSERT,
	ST_EVENT_GET,
	ST_GAP_ADD,
	ST_GAP_FIND,
	ST_GAP_DELETE,
	ST_GAP_ANNOUNCE,
	ST_CHECK_GET,
	ST_CHECK_PUT,
	ST_CHECK_PRUNE,
	ST_TERMINAL_COMPLIANCE,
	ST_TERMINAL_LOCKED,
	ST_TERMINAL_GAPS,
	ST_CHECK_DAY,
	ST_CLAUSE_DAY_GET,
	ST_CLAUSE_DAY_PUT,
	ST_CLAUSE_DAYS_ADD,
	ST_KIND_DAY,
	ST_KIND_TOTAL,
	ST_SNAPSHOT_DAY,
	ST_CHECK_LAST_DAY,
	_ST_MAX,
};

static const char *const stmt_sql[_ST_MAX] = {
    [ST_TERMINAL_GET] =
	"SELECT id, max_seq, compliance_seq, compliance_ts, chain_head FROM terminals WHERE name = ?1",
    [ST_TERMINAL_ADD] = "INSERT INTO terminals (name, first_seen, last_seen) VALUES (?1, ?2, ?2)",
    [ST_TERMINAL_UPDATE] =
	"UPDATE terminals SET last_seen = ?2, max_seq = max(max_seq, ?3),"
	" drift_ms = ?4, conflicts = conflicts + ?5, chain_head = ?6 WHERE id = ?1",
    [ST_EVENT_INSERT] =
	"INSERT OR IGNORE INTO events (tid, seq, ts, received_at, kind, clause, data, chain)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_EVENT_GET] = "SELECT ts, kind FROM events WHERE tid = ?1 AND seq = ?2",
    [ST_GAP_ADD] =
	"INSERT INTO gaps (tid, first, last, detected_at, announced) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_GAP_FIND] =
	"SELECT id, first, last, announced FROM gaps WHERE tid = ?1 AND first <= ?2 AND last >= ?2",
    [ST_GAP_DELETE] = "DELETE FROM gaps WHERE id = ?1",
    [ST_GAP_ANNOUNCE] =
	"UPDATE gaps SET announced = 1 WHERE tid = ?1 AND first <= ?3 AND last >= ?2",
    [ST_CHECK_GET] = "SELECT status, since FROM checks WHERE tid = ?1 AND check_id = ?2",
    [ST_CHECK_PUT] =
	"INSERT OR REPLACE INTO checks (tid, check_id, status, clause, detail, since, updated_at, seq)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_CHECK_PRUNE] = "DELETE FROM checks WHERE tid = ?1 AND seq != ?2",
    [ST_TERMINAL_LOCKED] =
	"UPDATE terminals SET locked_at = max(ifnull(locked_at, ?2), ?2) WHERE id = ?1",
    [ST_TERMINAL_GAPS] =
	"UPDATE terminals SET n_gaps = (SELECT count(*) FROM gaps WHERE tid = ?1),"
	" n_gaps_unannounced = (SELECT count(*) FROM gaps WHERE tid = ?1 AND announced = 0)"
	" WHERE id = ?1",
    [ST_CHECK_DAY] = "INSERT INTO check_days (tid, day, check_id, status) VALUES (?1, ?2, ?3, ?4)"
		     " ON CONFLICT DO UPDATE SET status = max(status, excluded.status)",
    [ST_CLAUSE_DAY_GET] =
	"SELECT status FROM clause_terminal_days WHERE day = ?1 AND clause = ?2 AND tid = ?3",
    [ST_CLAUSE_DAY_PUT] = "INSERT OR REPLACE INTO clause_terminal_days (day, clause, tid, status)"
			  " VALUES (?1, ?2, ?3, ?4)",
    [ST_CLAUSE_DAYS_ADD] =
	"INSERT INTO clause_days (day, clause, reporting, failing) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT DO UPDATE SET reporting = reporting + excluded.reporting,"
	" failing = failing + excluded.failing",
    [ST_KIND_DAY] = "INSERT INTO kind_days (kind, day, tid, n) VALUES (?1, ?2, ?3, 1)"
		    " ON CONFLICT DO UPDATE SET n = n + 1",
    [ST_KIND_TOTAL] = "INSERT INTO kind_totals (kind, day, n) VALUES (?1, ?2, 1)"
		      " ON CONFLICT DO UPDATE SET n = n + 1",
    /* the newest in event time wins, whatever the order of arrival; within one snapshot the
     * later entry of a check id, as the report reads them */
    [ST_SNAPSHOT_DAY] = "INSERT INTO snapshot_days (tid, day, ts, seq) VALUES (?1, ?2, ?3, ?4)"
			" ON CONFLICT DO UPDATE SET ts = excluded.ts, seq = excluded.seq"
			" WHERE (excluded.ts, excluded.seq) > (ts, seq)",
    [ST_CHECK_LAST_DAY] =
	"INSERT INTO check_last_days (tid, day, check_id, ts, seq, status, worst, clause)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO UPDATE"
	" SET worst = max(worst, excluded.worst),"
	" ts = iif((excluded.ts, excluded.seq) >= (ts, seq), excluded.ts, ts),"
	" seq = iif((excluded.ts, excluded.seq) >= (ts, seq), excluded.seq, seq),"
	" status = iif((excluded.ts, excluded.seq) >= (ts, seq), excluded.status, status),"
	" clause = iif((excluded.ts, excluded.seq) >= (ts, seq), excluded.clause, clause)",
    [ST_TERMINAL_COMPLIANCE] =
	"UPDATE terminals SET compliance_seq = ?2, compliance_ts = ?3, policy_hash = ?4,"
	" report_interval = ?5, description = ?6, n_failing = (SELECT count(*) FROM checks c"
	" WHERE c.tid = ?1 AND c.status IN ('fail', 'error')) WHERE id = ?1",
};

struct store {
	struct store_pg *pg; /* the PostgreSQL store (store-pg.c): every function dispatches */
	sqlite3 *db;
	EVP_MD_CTX *md; /* the hash chain's, reused */
	bool writable;
	/* the dashboard's summary cards, recounted at most once a second */
	struct store_view summary_view;
	char *summary_cert; /* summary_view's cert_expiring */
	json_int_t summary[6];
	/* the activity's top terminals (a sum over every terminal's days: ~200 ms at 10,000
	 * terminals), recomputed at most once per STORE_TOP_TTL_MS for the same range */
	struct {
		unsigned days;
		int64_t to_day, at_ms;
		json_t *top;
	} top_cache;
	int wal_frames;
	sqlite3_stmt *st[_ST_MAX];
	char clause_buf[4096];
	char data_buf[EVENT_MAX_BYTES];
};

static int sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

static int exec(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sqlite_errno(rc);
}

static sqlite3_stmt *stmt(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *st = s->st[id];
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_errno(rc);
}

static int prepare(struct store *s, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, ret, NULL);
	return rc == SQLITE_OK ? 0 : sqlite_errno(rc);
}

static void finalizep(sqlite3_stmt **st)
{
	sqlite3_finalize(*st);
}
#define _cleanup_stmt_ _cleanup_(finalizep)

static int user_version(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int v = -EIO;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* ---- the hash chain (docs/evidence.md) ---- */

/* The columns chain_row() reads, in this order. */
#define CHAIN_COLUMNS "seq, ts, received_at, kind, clause, data, chain, body"

/* Recomputes the link of one row of `SELECT CHAIN_COLUMNS`: a kept event from its clause and
 * data, a tombstone from the body digest it kept. */
static int chain_row(EVP_MD_CTX *md, sqlite3_stmt *st, const char *terminal,
		     const uint8_t prev[STORE_CHAIN_LEN], uint8_t out[STORE_CHAIN_LEN])
{
	const unsigned char *kind = sqlite3_column_text(st, 3);
	uint8_t body[STORE_CHAIN_LEN];

	if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
		if (sqlite3_column_bytes(st, 7) != STORE_CHAIN_LEN)
			memset(body, 0, sizeof(body)); /* cannot match: verify names it */
		else
			memcpy(body, sqlite3_column_blob(st, 7), STORE_CHAIN_LEN);
	} else {
		const void *clause = sqlite3_column_text(st, 4);
		size_t clause_len = (size_t)sqlite3_column_bytes(st, 4);
		const void *data = sqlite3_column_text(st, 5);
		size_t data_len = (size_t)sqlite3_column_bytes(st, 5);
		int r = chain_body(md, clause ? clause : "", clause_len, data ? data : "", data_len,
				   body);
		if (r < 0)
			return r;
	}
	return chain_link(md, prev, terminal, (uint64_t)sqlite3_column_int64(st, 0),
			  sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
			  kind ? (const char *)kind : "", body, out);
}

/* Migration 3 → 4: chains the rows already stored, per terminal in storage (row id) order, from
 * the terminal's anchor (an earlier disposal) or from zeros. */
static int chain_backfill(struct store *s)
{
	sqlite3_stmt *terms = NULL, *rows = NULL, *upd = NULL, *head = NULL, *anchor = NULL;
	int rc = SQLITE_DONE, r = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT id, name FROM terminals ORDER BY id", -1, &terms,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(
		s->db, "SELECT " CHAIN_COLUMNS ", id FROM events WHERE tid = ?1 ORDER BY id", -1,
		&rows, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT chain FROM chain_anchors WHERE tid = ?1", -1, &anchor,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "UPDATE events SET chain = ?2 WHERE id = ?1", -1, &upd,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "UPDATE terminals SET chain_head = ?2 WHERE id = ?1", -1,
			       &head, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	while (r >= 0 && (rc = sqlite3_step(terms)) == SQLITE_ROW) {
		int64_t tid = sqlite3_column_int64(terms, 0);
		const char *name = (const char *)sqlite3_column_text(terms, 1);
		uint8_t link[STORE_CHAIN_LEN] = {0};
		bool any = false;

		sqlite3_bind_int64(anchor, 1, tid);
		if (sqlite3_step(anchor) == SQLITE_ROW &&
		    sqlite3_column_bytes(anchor, 0) == STORE_CHAIN_LEN)
			memcpy(link, sqlite3_column_blob(anchor, 0), STORE_CHAIN_LEN);
		sqlite3_reset(anchor);
		sqlite3_bind_int64(rows, 1, tid);
		while (r >= 0 && (rc = sqlite3_step(rows)) == SQLITE_ROW) {
			r = chain_row(s->md, rows, name, link, link);
			if (r < 0)
				break;
			sqlite3_bind_int64(upd, 1, sqlite3_column_int64(rows, 8));
			sqlite3_bind_blob(upd, 2, link, STORE_CHAIN_LEN, SQLITE_TRANSIENT);
			r = step_done(upd);
			any = true;
		}
		if (r >= 0 && rc != SQLITE_DONE)
			r = sqlite_errno(rc);
		sqlite3_reset(rows);
		if (r >= 0 && any) {
			sqlite3_bind_int64(head, 1, tid);
			sqlite3_bind_blob(head, 2, link, STORE_CHAIN_LEN, SQLITE_TRANSIENT);
			r = step_done(head);
		}
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = sqlite_errno(rc);
out:
	sqlite3_finalize(terms);
	sqlite3_finalize(rows);
	sqlite3_finalize(upd);
	sqlite3_finalize(head);
	sqlite3_finalize(anchor);
	return r;
}

static int migrate(struct store *s)
{
	int v, r;

	r = exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	v = user_version(s);
	if (v < 0 || v > (int)ELEMENTSOF(migrations)) {
		exec(s, "ROLLBACK");
		return v < 0 ? v : -EPROTO;
	}
	for (; v < (int)ELEMENTSOF(migrations); v++) {
		char sql[64];
		r = exec(s, migrations[v]);
		if (r >= 0 && v == 3)
			r = chain_backfill(s);
		if (r < 0) {
			exec(s, "ROLLBACK");
			return r;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		r = exec(s, sql);
		if (r < 0) {
			exec(s, "ROLLBACK");
			return r;
		}
	}
	return exec(s, "COMMIT");
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store *s = arg;
	s->wal_frames = frames;
	return SQLITE_OK;
}

int store_wal_frames(struct store *s)
{
	if (s->pg)
		return 0;
	return s->wal_frames;
}

int store_checkpoint(struct store *s, bool restart)
{
	if (s->pg)
		return 0; /* the server checkpoints */
	int log = 0, done = 0;
	int rc = sqlite3_wal_checkpoint_v2(
	    s->db, NULL, restart ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE, &log,
	    &done);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return sqlite_errno(rc);
	if (restart && rc == SQLITE_OK)
		s->wal_frames = 0;
	return log > done ? 1 : 0; /* 1: frames left behind */
}

int store_sqlite_errno(int rc)
{
	return sqlite_errno(rc);
}

int store_open(const char *path, bool writable, struct store **ret)
{
	struct store *s;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	int r, rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->writable = writable;
	if (store_pg_location(path)) {
		r = store_pg_open(store_pg_location(path), writable, &s->pg);
		if (r < 0) {
			free(s);
			return r;
		}
		*ret = s;
		return 0;
	}
	s->md = EVP_MD_CTX_new();
	if (!s->md) {
		free(s);
		return -ENOMEM;
	}
	if (writable)
		flags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (rc != SQLITE_OK) {
		r = sqlite_errno(rc);
		store_close(s);
		return r;
	}
	sqlite3_busy_timeout(s->db, 10000);
	sqlite3_extended_result_codes(s->db, 1);
	if (writable) {
		/* WAL: readers never block the writer; FULL: the WAL is fsynced at every commit, so
		 * an acknowledged batch survives a power loss. */
		r = exec(s, "PRAGMA journal_mode = WAL");
		if (r >= 0)
			r = exec(s, "PRAGMA synchronous = FULL");
		/* keep the hot index pages of a large store in memory (64 MiB) */
		if (r >= 0)
			r = exec(s, "PRAGMA cache_size = -65536");
		/* replaces the automatic checkpoint: see store_checkpoint() */
		if (r >= 0)
			sqlite3_wal_hook(s->db, wal_hook, s);
		if (r >= 0)
			r = migrate(s);
		if (r < 0) {
			store_close(s);
			return r;
		}
		for (size_t i = 0; i < _ST_MAX; i++) {
			rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
						&s->st[i], NULL);
			if (rc != SQLITE_OK) {
				store_close(s);
				return -EIO;
			}
		}
	} else {
		r = exec(s, "PRAGMA query_only = ON");
		/* the dashboard reads the whole terminals table for every list: keep it cached */
		if (r >= 0)
			r = exec(s, "PRAGMA cache_size = -65536");
		if (r < 0) {
			store_close(s);
			return r;
		}
		if (user_version(s) != STORE_SCHEMA_VERSION) {
			store_close(s);
			return -EPROTO;
		}
	}
	*ret = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	store_pg_close(s->pg);
	for (size_t i = 0; i < _ST_MAX; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close_v2(s->db);
	EVP_MD_CTX_free(s->md);
	json_decref(s->top_cache.top);
	free(s->summary_cert);
	free(s);
}

int store_schema_version(struct store *s)
{
	if (s->pg)
		return store_pg_schema_version(s->pg);
	return user_version(s);
}

int store_terminal_max_seq(struct store *s, const char *name, uint64_t *ret)
{
	if (s->pg)
		return store_pg_terminal_max_seq(s->pg, name, ret);
	sqlite3_stmt *st = stmt(s, ST_TERMINAL_GET);
	uint64_t max = 0;
	int rc;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		max = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_errno(rc);
	*ret = max;
	return 0;
}

void store_prepare_batch(struct store *s, const struct event_batch *b)
{
	if (s->pg)
		store_pg_prepare_batch(s->pg, b);
}

int store_begin(struct store *s)
{
	if (s->pg)
		return store_pg_begin(s->pg);
	return exec(s, "BEGIN IMMEDIATE");
}

int store_commit(struct store *s)
{
	if (s->pg)
		return store_pg_commit(s->pg);
	int r = exec(s, "COMMIT");
	if (r < 0)
		store_rollback(s);
	return r;
}

void store_rollback(struct store *s)
{
	if (s->pg) {
		store_pg_rollback(s->pg);
		return;
	}
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static int gap_add(struct store *s, int64_t tid, uint64_t first, uint64_t last, int64_t now,
		   bool announced)
{
	sqlite3_stmt *st = stmt(s, ST_GAP_ADD);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, (int64_t)first);
	sqlite3_bind_int64(st, 3, (int64_t)last);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int(st, 5, announced);
	return step_done(st);
}

/* An event arrived whose seq lies below the terminal's highest: if a recorded gap holds it,
 * split the gap around it. */
static int gap_fill(struct store *s, int64_t tid, uint64_t seq, int64_t now)
{
	sqlite3_stmt *st = stmt(s, ST_GAP_FIND);
	int64_t id, first, last;
	bool announced;
	int rc, r;

	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return sqlite_errno(rc);
	}
	id = sqlite3_column_int64(st, 0);
	first = sqlite3_column_int64(st, 1);
	last = sqlite3_column_int64(st, 2);
	announced = sqlite3_column_int(st, 3);
	sqlite3_reset(st);

	st = stmt(s, ST_GAP_DELETE);
	sqlite3_bind_int64(st, 1, id);
	r = step_done(st);
	if (r >= 0 && first < (int64_t)seq)
		r = gap_add(s, tid, (uint64_t)first, seq - 1, now, announced);
	if (r >= 0 && (int64_t)seq < last)
		r = gap_add(s, tid, seq + 1, (uint64_t)last, now, announced);
	return r;
}

static int compliance_apply(struct store *s, int64_t tid, const struct event *e, int64_t now)
{
	json_t *checks = json_object_get(e->data, "checks");
	json_t *hash = json_object_get(e->data, "policy_hash");
	json_t *interval = json_object_get(e->data, "interval_s");
	json_t *description = json_object_get(e->data, "description");
	sqlite3_stmt *st;
	size_t i;
	json_t *c;
	int r;

	json_array_foreach(checks, i, c)
	{
		const char *id = json_string_value(json_object_get(c, "id"));
		const char *status = json_string_value(json_object_get(c, "status"));
		const char *detail = json_string_value(json_object_get(c, "detail"));
		json_t *clause = json_object_get(c, "clause");
		_cleanup_free_ char *clause_text = NULL;
		int64_t since = e->ts_ms;
		int rc;

		if (!id || !status)
			continue; /* the codec already refused these; belt and braces */
		clause_text =
		    json_is_array(clause) ? json_dumps(clause, JSON_COMPACT) : strdup("[]");
		if (!clause_text)
			return -ENOMEM;

		st = stmt(s, ST_CHECK_GET);
		sqlite3_bind_int64(st, 1, tid);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW &&
		    strcmp((const char *)sqlite3_column_text(st, 0), status) == 0)
			since = sqlite3_column_int64(st, 1);
		else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			sqlite3_reset(st);
			return sqlite_errno(rc);
		}
		sqlite3_reset(st);

		st = stmt(s, ST_CHECK_PUT);
		sqlite3_bind_int64(st, 1, tid);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, clause_text, -1, SQLITE_STATIC);
		if (detail)
			sqlite3_bind_text(st, 5, detail, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, since);
		sqlite3_bind_int64(st, 7, now);
		sqlite3_bind_int64(st, 8, (int64_t)e->seq);
		r = step_done(st);
		if (r < 0)
			return r;
	}
	/* A check that this snapshot no longer lists is gone from the terminal. */
	st = stmt(s, ST_CHECK_PRUNE);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, (int64_t)e->seq);
	r = step_done(st);
	if (r < 0)
		return r;

	st = stmt(s, ST_TERMINAL_COMPLIANCE);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, (int64_t)e->seq);
	sqlite3_bind_int64(st, 3, e->ts_ms);
	if (json_is_string(hash))
		sqlite3_bind_text(st, 4, json_string_value(hash), -1, SQLITE_STATIC);
	if (json_is_integer(interval) && json_integer_value(interval) > 0 &&
	    json_integer_value(interval) <= 7 * 86400)
		sqlite3_bind_int64(st, 5, json_integer_value(interval) * 1000);
	if (json_is_string(description))
		sqlite3_bind_text(st, 6, json_string_value(description), -1, SQLITE_STATIC);
	return step_done(st);
}

/* ---- the daily history (migration 4 → 5) ---- */

static int check_status_code(const char *status)
{
	if (strcmp(status, "pass") == 0)
		return 1;
	if (strcmp(status, "fail") == 0 || strcmp(status, "error") == 0)
		return 2;
	return 0; /* not_applicable and the like: no evidence either way */
}

/* One terminal's status for a clause on a day can only get worse (no report → pass → fail); the
 * day's counts follow each step, so a backlog in any order ends where the events say. */
static int clause_day_update(struct store *s, int64_t tid, int64_t day, const char *clause,
			     int status)
{
	sqlite3_stmt *st = stmt(s, ST_CLAUSE_DAY_GET);
	int old = 0, rc, r;

	sqlite3_bind_int64(st, 1, day);
	sqlite3_bind_text(st, 2, clause, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, tid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		old = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_errno(rc);
	if (status <= old)
		return 0;
	st = stmt(s, ST_CLAUSE_DAY_PUT);
	sqlite3_bind_int64(st, 1, day);
	sqlite3_bind_text(st, 2, clause, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, tid);
	sqlite3_bind_int(st, 4, status);
	r = step_done(st);
	if (r < 0)
		return r;
	st = stmt(s, ST_CLAUSE_DAYS_ADD);
	sqlite3_bind_int64(st, 1, day);
	sqlite3_bind_text(st, 2, clause, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, old == 0);
	sqlite3_bind_int(st, 4, status == 2);
	return step_done(st);
}

/* The report's part of a snapshot (migration 6 → 7): its day's newest snapshot, and each
 * check's newest status of the day, worst and clause ids. */
static int history_last(struct store *s, int64_t tid, const struct event *e)
{
	json_t *checks = json_object_get(e->data, "checks"), *c;
	int64_t day = store_day(e->ts_ms);
	sqlite3_stmt *st = stmt(s, ST_SNAPSHOT_DAY);
	size_t i;
	int r;

	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, day);
	sqlite3_bind_int64(st, 3, e->ts_ms);
	sqlite3_bind_int64(st, 4, (int64_t)e->seq);
	r = step_done(st);
	json_array_foreach(checks, i, c)
	{
		const char *id = json_string_value(json_object_get(c, "id"));
		const char *status = json_string_value(json_object_get(c, "status"));
		json_t *clause = json_object_get(c, "clause");
		size_t len = 2;

		if (r < 0)
			return r;
		if (!id || !status)
			continue;
		if (json_is_array(clause)) {
			len =
			    json_dumpb(clause, s->clause_buf, sizeof(s->clause_buf), JSON_COMPACT);
			if (len == 0 || len > sizeof(s->clause_buf))
				return -EMSGSIZE;
		} else
			memcpy(s->clause_buf, "[]", 2);
		st = stmt(s, ST_CHECK_LAST_DAY);
		sqlite3_bind_int64(st, 1, tid);
		sqlite3_bind_int64(st, 2, day);
		sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, e->ts_ms);
		sqlite3_bind_int64(st, 5, (int64_t)e->seq);
		sqlite3_bind_text(st, 6, status, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 7, check_status_code(status));
		sqlite3_bind_text(st, 8, s->clause_buf, (int)len, SQLITE_STATIC);
		r = step_done(st);
	}
	return r;
}

/* Every new snapshot, late ones included, marks its day in check_days and clause_*_days. */
static int history_snapshot(struct store *s, int64_t tid, const struct event *e)
{
	json_t *checks = json_object_get(e->data, "checks"), *c, *clause, *cl;
	int64_t day = store_day(e->ts_ms);
	size_t i, j, k, n = 0;
	const char *names[32];
	int worst[32];
	int r = history_last(s, tid, e);

	if (r < 0)
		return r;
	json_array_foreach(checks, i, c)
	{
		const char *id = json_string_value(json_object_get(c, "id"));
		const char *status = json_string_value(json_object_get(c, "status"));
		int code = status ? check_status_code(status) : 0;
		sqlite3_stmt *st;

		if (!id || code == 0)
			continue;
		st = stmt(s, ST_CHECK_DAY);
		sqlite3_bind_int64(st, 1, tid);
		sqlite3_bind_int64(st, 2, day);
		sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, code);
		r = step_done(st);
		if (r < 0)
			return r;
		clause = json_object_get(c, "clause");
		json_array_foreach(clause, j, cl)
		{
			const char *name = json_string_value(cl);
			if (!name)
				continue;
			for (k = 0; k < n; k++)
				if (strcmp(names[k], name) == 0)
					break;
			if (k == n) {
				if (n == ELEMENTSOF(names)) {
					/* more clauses than a snapshot carries: settle the ones so
					 * far, start again */
					for (k = 0; k < n; k++) {
						r = clause_day_update(s, tid, day, names[k],
								      worst[k]);
						if (r < 0)
							return r;
					}
					n = 0;
					k = 0;
				}
				names[n] = name;
				worst[n++] = code;
			} else if (code > worst[k])
				worst[k] = code;
		}
	}
	for (k = 0; k < n; k++) {
		r = clause_day_update(s, tid, day, names[k], worst[k]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int history_count(struct store *s, int64_t tid, const struct event *e)
{
	const char *kind = event_kind_name(e->kind);
	int64_t day = store_day(e->ts_ms);
	sqlite3_stmt *st = stmt(s, ST_KIND_DAY);
	int r;

	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, day);
	sqlite3_bind_int64(st, 3, tid);
	r = step_done(st);
	if (r < 0)
		return r;
	st = stmt(s, ST_KIND_TOTAL);
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, day);
	return step_done(st);
}

static int cmp_event_seq(const void *a, const void *b)
{
	const struct event *const *x = a, *const *y = b;
	return (*x)->seq < (*y)->seq ? -1 : (*x)->seq > (*y)->seq;
}

/* Event-time order: a backlog's snapshots are applied oldest first, so "failing since" is the
 * time of the first snapshot that failed, not of the last one uploaded. */
static int cmp_event_time(const void *a, const void *b)
{
	const struct event *const *x = a, *const *y = b;
	if ((*x)->ts_ms != (*y)->ts_ms)
		return (*x)->ts_ms < (*y)->ts_ms ? -1 : 1;
	return cmp_event_seq(a, b);
}

static int write_batch(struct store *s, const struct event_batch *b, int64_t now,
		       struct store_write_result *res)
{
	_cleanup_free_ const struct event **order = NULL, **snapshots = NULL;
	sqlite3_stmt *st;
	int64_t tid, newest_ts = INT64_MIN, compliance_ts = INT64_MIN;
	uint64_t max_seq, compliance_seq, top = 0;
	uint8_t chain[STORE_CHAIN_LEN] = {0}, link[STORE_CHAIN_LEN], body[STORE_CHAIN_LEN];
	size_t n_snapshots = 0;
	bool gaps_changed = false;
	int rc, r;

	if (b->n == 0)
		return 0;
	order = calloc(b->n, sizeof(*order));
	snapshots = calloc(b->n, sizeof(*snapshots));
	if (!order || !snapshots)
		return -ENOMEM;
	for (size_t i = 0; i < b->n; i++)
		order[i] = &b->events[i];
	qsort(order, b->n, sizeof(*order), cmp_event_seq);

	st = stmt(s, ST_TERMINAL_GET);
	sqlite3_bind_text(st, 1, b->terminal, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		tid = sqlite3_column_int64(st, 0);
		max_seq = (uint64_t)sqlite3_column_int64(st, 1);
		compliance_seq = (uint64_t)sqlite3_column_int64(st, 2);
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			compliance_ts = sqlite3_column_int64(st, 3);
		if (sqlite3_column_bytes(st, 4) == STORE_CHAIN_LEN)
			memcpy(chain, sqlite3_column_blob(st, 4), STORE_CHAIN_LEN);
		sqlite3_reset(st);
	} else if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		st = stmt(s, ST_TERMINAL_ADD);
		sqlite3_bind_text(st, 1, b->terminal, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		r = step_done(st);
		if (r < 0)
			return r;
		tid = sqlite3_last_insert_rowid(s->db);
		max_seq = 0;
		compliance_seq = 0;
	} else {
		sqlite3_reset(st);
		return sqlite_errno(rc);
	}

	for (size_t i = 0; i < b->n; i++) {
		const struct event *e = order[i];
		size_t clause_len = 2, data_len;

		if (e->seq > (uint64_t)INT64_MAX)
			return -ERANGE;
		/* one event is at most EVENT_MAX_BYTES, so its parts fit the writer's buffers */
		if (e->clause) {
			clause_len = json_dumpb(e->clause, s->clause_buf, sizeof(s->clause_buf),
						JSON_COMPACT);
			if (clause_len == 0 || clause_len > sizeof(s->clause_buf))
				return -EMSGSIZE;
		} else
			memcpy(s->clause_buf, "[]", 2);
		data_len = json_dumpb(e->data, s->data_buf, sizeof(s->data_buf), JSON_COMPACT);
		if (data_len == 0 || data_len > sizeof(s->data_buf))
			return -EMSGSIZE;
		/* the link in storage order: a duplicate is ignored and leaves the chain as it is */
		r = chain_body(s->md, s->clause_buf, clause_len, s->data_buf, data_len, body);
		if (r >= 0)
			r = chain_link(s->md, chain, b->terminal, e->seq, e->ts_ms, now,
				       event_kind_name(e->kind), body, link);
		if (r < 0)
			return r;
		st = stmt(s, ST_EVENT_INSERT);
		sqlite3_bind_int64(st, 1, tid);
		sqlite3_bind_int64(st, 2, (int64_t)e->seq);
		sqlite3_bind_int64(st, 3, e->ts_ms);
		sqlite3_bind_int64(st, 4, now);
		sqlite3_bind_text(st, 5, event_kind_name(e->kind), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, s->clause_buf, (int)clause_len, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, s->data_buf, (int)data_len, SQLITE_STATIC);
		sqlite3_bind_blob(st, 8, link, STORE_CHAIN_LEN, SQLITE_STATIC);
		r = step_done(st);
		if (r < 0)
			return r;
		if (e->seq > top)
			top = e->seq;
		if (e->ts_ms > newest_ts)
			newest_ts = e->ts_ms;
		if (sqlite3_changes(s->db) == 0) {
			res->duplicates++;
			st = stmt(s, ST_EVENT_GET);
			sqlite3_bind_int64(st, 1, tid);
			sqlite3_bind_int64(st, 2, (int64_t)e->seq);
			if (sqlite3_step(st) == SQLITE_ROW &&
			    (sqlite3_column_int64(st, 0) != e->ts_ms ||
			     strcmp((const char *)sqlite3_column_text(st, 1),
				    event_kind_name(e->kind)) != 0))
				res->conflicts++;
			sqlite3_reset(st);
			continue;
		}
		res->stored++;
		memcpy(chain, link, STORE_CHAIN_LEN);

		/* Every hole in the sequence is recorded; a late event fills its place. */
		if (e->seq > max_seq + 1) {
			uint64_t first = max_seq + 1;
			r = gap_add(s, tid, first, e->seq - 1, now, false);
			if (r < 0)
				return r;
			res->gaps++;
			gaps_changed = true;
		} else if (e->seq <= max_seq) {
			r = gap_fill(s, tid, e->seq, now);
			gaps_changed = true;
			if (r < 0)
				return r;
		}
		if (e->seq > max_seq)
			max_seq = e->seq;

		if (e->kind == EVENT_COMPLIANCE) {
			snapshots[n_snapshots++] = e;
			r = history_snapshot(s, tid, e);
			if (r < 0)
				return r;
		}
		if (e->kind == EVENT_USB_BLOCKED || e->kind == EVENT_AUTH_FAILURE ||
		    e->kind == EVENT_AUTH_LOCKED) {
			r = history_count(s, tid, e);
			if (r < 0)
				return r;
		}
		if (e->kind == EVENT_AUTH_LOCKED) {
			st = stmt(s, ST_TERMINAL_LOCKED);
			sqlite3_bind_int64(st, 1, tid);
			sqlite3_bind_int64(st, 2, e->ts_ms);
			r = step_done(st);
			if (r < 0)
				return r;
		}
	}

	/* Announcements after the gaps of this batch exist: a spool.dropped may arrive before or
	 * after the hole it describes. */
	for (size_t i = 0; i < b->n; i++) {
		const struct event *e = order[i];
		json_t *first, *last;

		if (e->kind != EVENT_SPOOL_DROPPED)
			continue;
		first = json_object_get(e->data, "first_seq");
		last = json_object_get(e->data, "last_seq");
		if (!json_is_integer(first) || !json_is_integer(last))
			continue;
		gaps_changed = true;
		st = stmt(s, ST_GAP_ANNOUNCE);
		sqlite3_bind_int64(st, 1, tid);
		sqlite3_bind_int64(st, 2, json_integer_value(first));
		sqlite3_bind_int64(st, 3, json_integer_value(last));
		r = step_done(st);
		if (r < 0)
			return r;
	}

	if (gaps_changed) {
		st = stmt(s, ST_TERMINAL_GAPS);
		sqlite3_bind_int64(st, 1, tid);
		r = step_done(st);
		if (r < 0)
			return r;
	}

	/* Every new snapshot counts, in event-time order; one older than the state already shown
	 * (a late arrival) cannot rewrite it. */
	if (n_snapshots)
		qsort(snapshots, n_snapshots, sizeof(*snapshots), cmp_event_time);
	for (size_t i = 0; i < n_snapshots; i++) {
		const struct event *e = snapshots[i];
		if (e->ts_ms < compliance_ts ||
		    (e->ts_ms == compliance_ts && e->seq <= compliance_seq))
			continue;
		r = compliance_apply(s, tid, e, now);
		if (r < 0)
			return r;
		compliance_ts = e->ts_ms;
		compliance_seq = e->seq;
	}

	st = stmt(s, ST_TERMINAL_UPDATE);
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, (int64_t)max_seq);
	sqlite3_bind_int64(st, 4, now - newest_ts);
	sqlite3_bind_int64(st, 5, res->conflicts);
	sqlite3_bind_blob(st, 6, chain, STORE_CHAIN_LEN, SQLITE_STATIC);
	r = step_done(st);
	if (r < 0)
		return r;
	res->acked_through = top;
	return 0;
}

int store_write_batch(struct store *s, const struct event_batch *b, int64_t received_ms,
		      struct store_write_result *ret)
{
	if (s->pg)
		return store_pg_write_batch(s->pg, b, received_ms, ret);
	struct store_write_result res = {0};
	int r;

	r = exec(s, "SAVEPOINT batch");
	if (r < 0)
		return r;
	r = write_batch(s, b, received_ms, &res);
	if (r < 0) {
		exec(s, "ROLLBACK TO batch");
		exec(s, "RELEASE batch");
		return r;
	}
	r = exec(s, "RELEASE batch");
	if (r < 0)
		return r;
	*ret = res;
	return 0;
}

/* ---- retention by kind (docs/evidence.md) ---- */

static int held_json(const char *const *hold, size_t n_hold, char **ret)
{
	json_t *a = json_array();
	char *text;

	for (size_t i = 0; a && i < n_hold; i++)
		if (json_array_append_new(a, json_string(hold[i])) < 0) {
			json_decref(a);
			a = NULL;
		}
	text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	if (!text)
		return -ENOMEM;
	*ret = text;
	return 0;
}

/* Expired kept events of one kind become tombstones: clause and data removed, the body digest,
 * metadata and link kept, so the chain still links across them. The terminal is queued for
 * chain_collapse(). */
static int dispose_kind(struct store *s, const char *kind, int64_t cutoff_ms, const char *held,
			int64_t now_ms, unsigned budget, unsigned *done)
{
	_cleanup_stmt_ sqlite3_stmt *pick = NULL, *tomb = NULL, *queue = NULL;
	int rc, r;

	/* events_expiry holds kept events only: disposed ones leave it */
	r = prepare(s,
		    "SELECT id, tid, clause, data FROM events WHERE kind = ?1 AND received_at < ?2"
		    " AND body IS NULL AND tid NOT IN (SELECT t.id FROM terminals t"
		    " JOIN json_each(?3) h ON h.value = t.name) ORDER BY received_at LIMIT ?4",
		    &pick);
	if (r >= 0)
		r = prepare(s,
			    "UPDATE events SET clause = '', data = '', body = ?2, disposed_at = ?3"
			    " WHERE id = ?1",
			    &tomb);
	if (r >= 0)
		r = prepare(s, "INSERT OR IGNORE INTO chain_collapse (tid) VALUES (?1)", &queue);
	if (r < 0)
		return r;
	sqlite3_bind_text(pick, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(pick, 2, cutoff_ms);
	sqlite3_bind_text(pick, 3, held, -1, SQLITE_STATIC);
	sqlite3_bind_int(pick, 4, (int)budget);
	while ((rc = sqlite3_step(pick)) == SQLITE_ROW) {
		uint8_t body[STORE_CHAIN_LEN];
		const void *clause = sqlite3_column_text(pick, 2);
		const void *data = sqlite3_column_text(pick, 3);

		r = chain_body(s->md, clause ? clause : "", (size_t)sqlite3_column_bytes(pick, 2),
			       data ? data : "", (size_t)sqlite3_column_bytes(pick, 3), body);
		if (r < 0)
			return r;
		sqlite3_bind_int64(tomb, 1, sqlite3_column_int64(pick, 0));
		sqlite3_bind_blob(tomb, 2, body, STORE_CHAIN_LEN, SQLITE_TRANSIENT);
		sqlite3_bind_int64(tomb, 3, now_ms);
		r = step_done(tomb);
		if (r < 0)
			return r;
		sqlite3_bind_int64(queue, 1, sqlite3_column_int64(pick, 1));
		r = step_done(queue);
		if (r < 0)
			return r;
		(*done)++;
	}
	return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

/* A terminal's leading tombstones (those before its first kept event in storage order) are
 * deleted and replaced by the anchor: the link of the last one deleted. Tombstones between kept
 * events stay until the events before them are disposed of too. */
static int collapse_terminal(struct store *s, int64_t tid, int64_t now_ms, unsigned budget,
			     unsigned *done, bool *ret_finished)
{
	_cleanup_stmt_ sqlite3_stmt *first = NULL, *lead = NULL, *del = NULL, *rec = NULL,
				    *dequeue = NULL;
	int64_t first_live = INT64_MAX, last_id = 0;
	uint8_t link[STORE_CHAIN_LEN];
	unsigned n = 0;
	int rc, r;

	r = prepare(
	    s, "SELECT id, seq FROM events WHERE tid = ?1 AND body IS NULL ORDER BY id LIMIT 1",
	    &first);
	if (r >= 0)
		r = prepare(s,
			    "SELECT id, chain FROM events WHERE tid = ?1 AND id < ?2 ORDER BY id"
			    " LIMIT ?3",
			    &lead);
	if (r >= 0)
		r = prepare(s, "DELETE FROM events WHERE tid = ?1 AND id <= ?2", &del);
	if (r >= 0)
		r = prepare(s,
			    "INSERT INTO chain_anchors (tid, first_seq, chain, disposed, at)"
			    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tid) DO UPDATE"
			    " SET first_seq = excluded.first_seq, chain = excluded.chain,"
			    " disposed = disposed + excluded.disposed, at = excluded.at",
			    &rec);
	if (r >= 0)
		r = prepare(s, "DELETE FROM chain_collapse WHERE tid = ?1", &dequeue);
	if (r < 0)
		return r;
	sqlite3_bind_int64(first, 1, tid);
	rc = sqlite3_step(first);
	if (rc == SQLITE_ROW)
		first_live = sqlite3_column_int64(first, 0);
	else if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	sqlite3_bind_int64(lead, 1, tid);
	sqlite3_bind_int64(lead, 2, first_live);
	sqlite3_bind_int(lead, 3, (int)budget);
	while ((rc = sqlite3_step(lead)) == SQLITE_ROW) {
		last_id = sqlite3_column_int64(lead, 0);
		if (sqlite3_column_bytes(lead, 1) == STORE_CHAIN_LEN)
			memcpy(link, sqlite3_column_blob(lead, 1), STORE_CHAIN_LEN);
		else
			memset(link, 0, sizeof(link)); /* cannot match: verify names the next one */
		n++;
	}
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	*ret_finished = n < budget;
	if (n > 0) {
		sqlite3_bind_int64(del, 1, tid);
		sqlite3_bind_int64(del, 2, last_id);
		r = step_done(del);
		if (r < 0)
			return r;
		sqlite3_bind_int64(rec, 1, tid);
		/* the first kept event, when the whole leading run went */
		if (*ret_finished && first_live != INT64_MAX)
			sqlite3_bind_int64(rec, 2, sqlite3_column_int64(first, 1));
		sqlite3_bind_blob(rec, 3, link, STORE_CHAIN_LEN, SQLITE_TRANSIENT);
		sqlite3_bind_int64(rec, 4, n);
		sqlite3_bind_int64(rec, 5, now_ms);
		r = step_done(rec);
		if (r < 0)
			return r;
		*done += n;
	}
	if (*ret_finished) {
		sqlite3_bind_int64(dequeue, 1, tid);
		r = step_done(dequeue);
		if (r < 0)
			return r;
	}
	return 0;
}

static int collapse(struct store *s, int64_t now_ms, unsigned budget, unsigned *done)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ int64_t *tids = NULL;
	size_t n = 0;
	int rc, r;

	tids = calloc(budget ? budget : 1, sizeof(*tids));
	if (!tids)
		return -ENOMEM;
	r = prepare(s, "SELECT tid FROM chain_collapse ORDER BY tid LIMIT ?1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int(st, 1, (int)budget);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		tids[n++] = sqlite3_column_int64(st, 0);
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	/* a terminal left unfinished used up the budget: the next round goes on with it */
	for (size_t i = 0; i < n && *done < budget; i++) {
		bool finished = false;
		r = collapse_terminal(s, tids[i], now_ms, budget - *done, done, &finished);
		if (r < 0)
			return r;
	}
	return 0;
}

int store_retention(struct store *s, const struct store_retention_policy *p, int64_t now_ms,
		    unsigned limit, unsigned *ret_disposed)
{
	if (s->pg)
		return store_pg_retention(s->pg, p, now_ms, limit, ret_disposed);
	_cleanup_free_ char *held = NULL;
	unsigned disposed = 0, done = 0;
	int r;

	if (limit == 0)
		return -EINVAL;
	r = held_json(p->hold, p->n_hold, &held);
	if (r < 0)
		return r;
	r = store_begin(s);
	if (r < 0)
		return r;
	for (int k = 0; r >= 0 && k < _EVENT_KIND_MAX && disposed < limit; k++)
		if (p->cutoff_ms[k] != INT64_MIN)
			r = dispose_kind(s, event_kind_name((enum event_kind)k), p->cutoff_ms[k],
					 held, now_ms, limit - disposed, &disposed);
	done = disposed;
	if (r >= 0 && done < limit)
		r = collapse(s, now_ms, limit - done, &done);
	if (r < 0) {
		store_rollback(s);
		return r;
	}
	r = store_commit(s);
	if (r < 0)
		return r;
	*ret_disposed = disposed;
	return done >= limit ? 1 : 0;
}

/* ---- verify ---- */

static int verify_terminal(struct store *s, int64_t tid, const char *name,
			   const uint8_t head[STORE_CHAIN_LEN], bool has_head,
			   const struct store_verify_opts *o, struct store_verify *v)
{
	_cleanup_stmt_ sqlite3_stmt *anchor = NULL, *rows = NULL;
	struct verify_walk w;
	int rc, r;

	r = prepare(s, "SELECT chain FROM chain_anchors WHERE tid = ?1", &anchor);
	if (r >= 0)
		r = prepare(s, "SELECT " CHAIN_COLUMNS " FROM events WHERE tid = ?1 ORDER BY id",
			    &rows);
	if (r < 0)
		return r;
	sqlite3_bind_int64(anchor, 1, tid);
	if (sqlite3_step(anchor) == SQLITE_ROW)
		verify_walk_start(&w, o, v, name, sqlite3_column_blob(anchor, 0),
				  (size_t)sqlite3_column_bytes(anchor, 0));
	else
		verify_walk_start(&w, o, v, name, NULL, 0);
	sqlite3_bind_int64(rows, 1, tid);
	while ((rc = sqlite3_step(rows)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(rows, 3);
		const char *clause = (const char *)sqlite3_column_text(rows, 4);
		const char *data = (const char *)sqlite3_column_text(rows, 5);
		bool tombstone = sqlite3_column_type(rows, 7) != SQLITE_NULL;
		r = verify_walk_row(
		    &w, s->md, (uint64_t)sqlite3_column_int64(rows, 0),
		    sqlite3_column_int64(rows, 1), sqlite3_column_int64(rows, 2), kind ? kind : "",
		    clause ? clause : "", (size_t)sqlite3_column_bytes(rows, 4), data ? data : "",
		    (size_t)sqlite3_column_bytes(rows, 5),
		    tombstone ? sqlite3_column_blob(rows, 7) : NULL,
		    (size_t)sqlite3_column_bytes(rows, 7), sqlite3_column_blob(rows, 6),
		    (size_t)sqlite3_column_bytes(rows, 6));
		if (r != 0)
			return r < 0 ? r : 0;
	}
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	verify_walk_end(&w, has_head ? head : NULL, has_head ? STORE_CHAIN_LEN : 0);
	return 0;
}

void store_verify_done(struct store_verify *v)
{
	free(v->heads);
	v->heads = NULL;
	v->n_heads = 0;
}

int store_verify(struct store *s, const struct store_verify_opts *o, struct store_verify *ret)
{
	if (s->pg)
		return store_pg_verify(s->pg, o, ret);
	struct store_verify v = {0};
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_DONE, r;

	for (size_t i = 0; i < o->n_expect; i++)
		o->expect[i].seen = false;
	/* one read transaction: a consistent snapshot while the writer goes on */
	r = exec(s, "BEGIN");
	if (r < 0)
		return r;
	if (o->collect) {
		int64_t n = 0;
		if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM terminals", -1, &st, NULL) ==
			SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		st = NULL;
		v.heads = calloc(n > 0 ? (size_t)n : 1, sizeof(*v.heads));
		if (!v.heads) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (sqlite3_prepare_v2(s->db,
			       o->terminal
				   ? "SELECT id, name, chain_head FROM terminals WHERE name = ?1"
				   : "SELECT id, name, chain_head FROM terminals ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	if (o->terminal)
		sqlite3_bind_text(st, 1, o->terminal, -1, SQLITE_STATIC);
	while (!v.broken && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint8_t head[STORE_CHAIN_LEN] = {0};
		bool has_head = sqlite3_column_bytes(st, 2) == STORE_CHAIN_LEN;
		if (has_head)
			memcpy(head, sqlite3_column_blob(st, 2), STORE_CHAIN_LEN);
		v.terminals++;
		r = verify_terminal(s, sqlite3_column_int64(st, 0),
				    (const char *)sqlite3_column_text(st, 1), head, has_head, o,
				    &v);
		if (r < 0)
			goto out;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		r = sqlite_errno(rc);
		goto out;
	}
	if (o->terminal && v.terminals == 0) {
		r = -ENOENT;
		goto out;
	}
	if (!o->terminal)
		verify_walk_missing(o, &v);
out:
	sqlite3_finalize(st);
	exec(s, "COMMIT");
	if (r < 0) {
		store_verify_done(&v);
		return r;
	}
	*ret = v;
	return 0;
}

/* ---- signed heads ---- */

int store_signed_heads_put(struct store *s, int64_t at_ms, const char *body, const uint8_t *sig,
			   size_t sig_len, unsigned keep)
{
	if (s->pg)
		return store_pg_signed_heads_put(s->pg, at_ms, body, sig, sig_len, keep);
	_cleanup_stmt_ sqlite3_stmt *ins = NULL, *prune = NULL;
	int r;

	r = prepare(s, "INSERT INTO signed_heads (at, body, signature) VALUES (?1, ?2, ?3)", &ins);
	if (r >= 0)
		r = prepare(
		    s,
		    "DELETE FROM signed_heads WHERE id <= (SELECT max(id) FROM signed_heads)"
		    " - ?1",
		    &prune);
	if (r < 0)
		return r;
	r = store_begin(s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(ins, 1, at_ms);
	sqlite3_bind_text(ins, 2, body, -1, SQLITE_STATIC);
	sqlite3_bind_blob(ins, 3, sig, (int)sig_len, SQLITE_STATIC);
	r = step_done(ins);
	if (r >= 0) {
		sqlite3_bind_int64(prune, 1, keep);
		r = step_done(prune);
	}
	if (r < 0) {
		store_rollback(s);
		return r;
	}
	return store_commit(s);
}

int store_signed_heads_last(struct store *s, int64_t *ret_at, char **ret_body, uint8_t **ret_sig,
			    size_t *ret_sig_len)
{
	if (s->pg)
		return store_pg_signed_heads_last(s->pg, ret_at, ret_body, ret_sig, ret_sig_len);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char *body = NULL;
	_cleanup_free_ uint8_t *sig = NULL;
	size_t n;
	int rc, r;

	r = prepare(s, "SELECT at, body, signature FROM signed_heads ORDER BY id DESC LIMIT 1",
		    &st);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return sqlite_errno(rc);
	body = strdup(sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
	n = (size_t)sqlite3_column_bytes(st, 2);
	sig = malloc(n ? n : 1);
	if (!body || !sig)
		return -ENOMEM;
	if (n)
		memcpy(sig, sqlite3_column_blob(st, 2), n);
	*ret_at = sqlite3_column_int64(st, 0);
	*ret_body = TAKE_PTR(body);
	*ret_sig = TAKE_PTR(sig);
	*ret_sig_len = n;
	return 0;
}

/* ---- reads ---- */

static json_t *ts_json(int64_t ms)
{
	char buf[32];
	event_format_ts(ms, buf);
	return json_string(buf);
}

static json_t *json_text_or(const unsigned char *text, json_t *fallback)
{
	json_t *j = text ? json_loads((const char *)text, 0, NULL) : NULL;
	if (j) {
		json_decref(fallback);
		return j;
	}
	return fallback;
}

static int64_t terminal_interval(sqlite3_stmt *st, int col, const struct store_view *v)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return v->default_interval_ms;
	return sqlite3_column_int64(st, col);
}

/* A double use (the fleet.totp event e) ends when the user's authenticator is revoked or enrolled
 * again after it (a later fleet.totp revoke, enroll or reenroll of the same user, written by the
 * collector itself): the secret that was used twice is then no longer accepted anywhere. */
#define TOTP_DOUBLE_IN_FORCE                                                                       \
	"AND NOT EXISTS (SELECT 1 FROM events e2 WHERE e2.tid = e.tid AND e2.kind = 'fleet.totp'"  \
	" AND e2.id > e.id AND e2.body IS NULL"                                                    \
	" AND json_extract(e2.data, '$.user') = json_extract(e.data, '$.user')"                    \
	" AND json_extract(e2.data, '$.action') IN ('revoke', 'enroll', 'reenroll'))"

/* Every terminal with its derived state, from which the list, its summary and one terminal are
 * read: one scan of the terminals table (the writer keeps the counts). ?1..?2: the last 24 h,
 * ?3: now, ?4: the default report interval, ?5: the drift limit. st: 0 non-compliant,
 * 1 compliant, 2 no report yet. dbl: a terminal named in a double use of a one-time code
 * (fleet.totp double_use of the last 24 h, written by the collector itself, docs/fleet.md) whose
 * authenticator is still the one in force (TOTP_DOUBLE_IN_FORCE).
 * cert: the terminal's certificate expires within [alerts] cert_warning (?12, a JSON array of
 * names from enroll.c: the certificates are not in this store). rank: the triage order. */
#define TERMINAL_VIEW                                                                               \
	"WITH dbl AS (SELECT DISTINCT j.value AS name FROM events e"                                \
	"  JOIN terminals c ON c.id = e.tid AND c.name = '" INGEST_SELF_TERMINAL "',"               \
	"  json_each(e.data, '$.terminals') j WHERE e.kind = 'fleet.totp' AND e.ts >= ?1"           \
	"  AND e.ts < ?2 AND e.body IS NULL AND json_extract(e.data, '$.action') = 'double_use'"    \
	"  " TOTP_DOUBLE_IN_FORCE "),"                                                              \
	" v AS (SELECT t.id, t.name, t.first_seen, t.last_seen, t.max_seq, t.policy_hash,"          \
	"  t.report_interval, t.compliance_ts, ifnull(t.drift_ms, 0) AS drift_ms, t.conflicts,"     \
	"  t.n_gaps AS gaps_all, t.n_gaps_unannounced AS gaps_un, t.description,"                   \
	"  ifnull(t.locked_at >= ?1 AND t.locked_at < ?2, 0) AS locked, t.n_failing,"               \
	"  (?3 - t.last_seen > 2 * ifnull(t.report_interval, ?4)) AS stale,"                        \
	"  (ifnull(t.drift_ms, 0) > ?5 OR ifnull(t.drift_ms, 0) < -?5) AS drift,"                   \
	"  CASE WHEN t.compliance_ts IS NULL THEN 2 WHEN t.n_failing > 0 THEN 0 ELSE 1 END AS st,"  \
	"  t.name IN (SELECT name FROM dbl) AS dbl,"                                                \
	"  t.name IN (SELECT value FROM json_each(ifnull(?12, '[]'))) AS cert"                      \
	"  FROM terminals t),"                                                                      \
	" w AS (SELECT *, (st <> 1 OR stale OR drift OR locked OR gaps_un > 0 OR dbl OR cert)"      \
	"  AS problem, CASE WHEN st = 0 THEN 0 WHEN stale THEN 1"                                   \
	"  WHEN drift OR locked OR gaps_un > 0 OR dbl OR cert THEN 2 WHEN st = 2 THEN 3 ELSE 4 END" \
	"  AS rank FROM v) "

/* the columns terminal_row_json() reads, in its order */
#define TERMINAL_COLUMNS                                                                           \
	"id, name, first_seen, last_seen, max_seq, policy_hash, report_interval, compliance_ts,"   \
	" drift_ms, conflicts, gaps_all, gaps_un, description, locked, stale, drift, st, problem," \
	" dbl, cert"

static void view_bind(sqlite3_stmt *st, const struct store_view *v)
{
	sqlite3_bind_int64(st, 1, v->now_ms - 86400 * 1000LL);
	sqlite3_bind_int64(st, 2, v->now_ms + 86400 * 1000LL);
	sqlite3_bind_int64(st, 3, v->now_ms);
	sqlite3_bind_int64(st, 4, v->default_interval_ms);
	sqlite3_bind_int64(st, 5, v->drift_ms);
	if (v->cert_expiring)
		sqlite3_bind_text(st, 12, v->cert_expiring, -1, SQLITE_STATIC);
}

/* Builds the per-terminal object from a row of TERMINAL_COLUMNS; failing checks and the 24 h
 * counts are filled in by terminals_decorate(). */
static json_t *terminal_row_json(sqlite3_stmt *st, const struct store_view *v)
{
	static const char *const states[] = {"noncompliant", "compliant", "unknown"};
	int64_t interval = terminal_interval(st, 6, v);
	int state = sqlite3_column_int(st, 16);
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string((const char *)sqlite3_column_text(st, 1)));
	json_object_set_new(o, "description",
			    sqlite3_column_type(st, 12) == SQLITE_NULL
				? json_null()
				: json_string((const char *)sqlite3_column_text(st, 12)));
	json_object_set_new(o, "first_seen", ts_json(sqlite3_column_int64(st, 2)));
	json_object_set_new(o, "last_seen", ts_json(sqlite3_column_int64(st, 3)));
	json_object_set_new(o, "last_seq", json_integer(sqlite3_column_int64(st, 4)));
	json_object_set_new(o, "policy_hash",
			    sqlite3_column_type(st, 5) == SQLITE_NULL
				? json_null()
				: json_string((const char *)sqlite3_column_text(st, 5)));
	json_object_set_new(o, "report_interval_s", json_integer(interval / 1000));
	json_object_set_new(o, "last_compliance",
			    sqlite3_column_type(st, 7) == SQLITE_NULL
				? json_null()
				: ts_json(sqlite3_column_int64(st, 7)));
	json_object_set_new(o, "clock_drift_ms", json_integer(sqlite3_column_int64(st, 8)));
	json_object_set_new(o, "clock_drift", json_boolean(sqlite3_column_int(st, 15)));
	json_object_set_new(o, "seq_conflicts", json_integer(sqlite3_column_int64(st, 9)));
	json_object_set_new(o, "gaps", json_integer(sqlite3_column_int64(st, 10)));
	json_object_set_new(o, "gaps_unannounced", json_integer(sqlite3_column_int64(st, 11)));
	json_object_set_new(o, "stale", json_boolean(sqlite3_column_int(st, 14)));
	json_object_set_new(o, "locked_24h", json_integer(0)); /* counted by terminals_decorate */
	json_object_set_new(o, "problem", json_boolean(sqlite3_column_int(st, 17)));
	json_object_set_new(o, "totp_double_use", json_boolean(sqlite3_column_int(st, 18)));
	json_object_set_new(o, "cert_expiring", json_boolean(sqlite3_column_int(st, 19)));
	json_object_set_new(o, "failing", json_array());
	json_object_set_new(o, "usb_blocked_24h", json_integer(0));
	json_object_set_new(o, "auth_failures_24h", json_integer(0));
	json_object_set_new(o, "status", json_string(states[state >= 0 && state <= 2 ? state : 2]));
	return o;
}

static json_t *check_json(sqlite3_stmt *st, int col0)
{
	json_t *c = json_object();
	json_object_set_new(c, "id", json_string((const char *)sqlite3_column_text(st, col0)));
	json_object_set_new(c, "status",
			    json_string((const char *)sqlite3_column_text(st, col0 + 1)));
	json_object_set_new(c, "clause",
			    json_text_or(sqlite3_column_text(st, col0 + 2), json_array()));
	json_object_set_new(c, "detail",
			    sqlite3_column_type(st, col0 + 3) == SQLITE_NULL
				? json_null()
				: json_string((const char *)sqlite3_column_text(st, col0 + 3)));
	json_object_set_new(c, "since", ts_json(sqlite3_column_int64(st, col0 + 4)));
	return c;
}

#define _cleanup_json_ _cleanup_(json_decrefp)

/* Adds failing checks and 24 h counts to the terminal objects in byid (tid → object), for the
 * terminals whose tids the JSON array tids lists (one page: never the whole fleet). */
static int terminals_decorate(struct store *s, const struct store_view *v, json_t *byid,
			      const char *tids)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char key[32];
	int rc, r;

	r = prepare(s,
		    "SELECT tid, check_id, status, clause, detail, since FROM checks"
		    " WHERE tid IN (SELECT value FROM json_each(?1))"
		    " AND status IN ('fail','error') ORDER BY tid, check_id",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, tids, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *t;
		snprintf(key, sizeof(key), "%lld", (long long)sqlite3_column_int64(st, 0));
		t = json_object_get(byid, key);
		if (t)
			json_array_append_new(json_object_get(t, "failing"), check_json(st, 1));
	}
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	sqlite3_finalize(st);
	st = NULL;

	/* The last 24 h, not the future (a date far ahead would count forever); a failure that a
	 * non-root process reported about someone else (sender.unprivileged) is nobody's failed
	 * login: it stays in the history, marked. One range of events_tid_ts per terminal and kind
	 * (the + keeps the planner off events_kind_ts, which would walk the whole fleet's day). */
	r = prepare(
	    s,
	    "SELECT j.value, k.kind, (SELECT count(*) FROM events e WHERE +e.kind = k.kind"
	    " AND e.ts >= ?1 AND e.ts < ?3 AND e.tid = j.value AND e.body IS NULL AND NOT (e.kind ="
	    " 'auth.failure' AND json_extract(e.data, '$.sender.unprivileged') IS 1))"
	    " FROM json_each(?2) j, (SELECT 'usb.blocked' AS kind UNION ALL"
	    " SELECT 'auth.failure' UNION ALL SELECT 'auth.locked') k",
	    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, v->now_ms - 86400 * 1000LL);
	sqlite3_bind_text(st, 2, tids, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, v->now_ms + 86400 * 1000LL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *t;
		const char *kind = (const char *)sqlite3_column_text(st, 1);
		snprintf(key, sizeof(key), "%lld", (long long)sqlite3_column_int64(st, 0));
		t = json_object_get(byid, key);
		if (!t)
			continue;
		json_object_set_new(t,
				    strcmp(kind, "usb.blocked") == 0   ? "usb_blocked_24h"
				    : strcmp(kind, "auth.locked") == 0 ? "locked_24h"
								       : "auth_failures_24h",
				    json_integer(sqlite3_column_int64(st, 2)));
	}
	return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

/* " WHERE ..." for the query's filter; ?6: the LIKE pattern, ?7: the check id. */
static const char *terminal_filter_sql(const struct store_terminal_query *q, char *buf, size_t n)
{
	static const char *const status_sql[_STORE_STATUS_MAX] = {
	    [STORE_STATUS_ALL] = "1",
	    [STORE_STATUS_NONCOMPLIANT] = "st = 0",
	    [STORE_STATUS_STALE] = "stale",
	    [STORE_STATUS_PROBLEM] = "problem",
	    [STORE_STATUS_COMPLIANT] = "st = 1",
	    [STORE_STATUS_UNKNOWN] = "st = 2",
	};
	snprintf(buf, n, "(%s%s%s%s)", status_sql[q->status],
		 q->search[0] ? " AND (name LIKE ?6 ESCAPE '\\' OR ifnull(description, '') LIKE ?6"
				" ESCAPE '\\')"
			      : "",
		 q->check[0] ? " AND id IN (SELECT tid FROM checks WHERE check_id = ?7"
			       " AND status IN ('fail', 'error'))"
			     : "",
		 q->clause[0] ? " AND id IN (SELECT tid FROM clause_terminal_days WHERE day = ?10"
				" AND clause = ?11 AND status = 2)"
			      : "");
	return buf;
}

static void terminal_query_bind(sqlite3_stmt *st, const struct store_view *v,
				const struct store_terminal_query *q)
{
	char pattern[2 * sizeof(q->search) + 3], *p = pattern;

	view_bind(st, v);
	if (q->search[0]) {
		*p++ = '%';
		for (const char *c = q->search; *c; c++) {
			if (*c == '%' || *c == '_' || *c == '\\')
				*p++ = '\\';
			*p++ = *c;
		}
		*p++ = '%';
		*p = 0;
		sqlite3_bind_text(st, 6, pattern, -1, SQLITE_TRANSIENT);
	}
	if (q->check[0])
		sqlite3_bind_text(st, 7, q->check, -1, SQLITE_TRANSIENT);
	if (q->clause[0]) {
		sqlite3_bind_int64(st, 10, q->clause_day);
		sqlite3_bind_text(st, 11, q->clause, -1, SQLITE_TRANSIENT);
	}
}

/* One page in two steps: the ids of the page (sorting only the sort key: a deep page skips
 * thousands of rows, and skipping a whole row costs its columns), then those rows by id. */
static int terminals_page(struct store *s, const struct store_view *v,
			  const struct store_terminal_query *q, json_t *list)
{
	static const char *const sort_sql[_STORE_SORT_MAX] = {
	    [STORE_SORT_PROBLEM] = "rank",
	    [STORE_SORT_NAME] = "name",
	    [STORE_SORT_STATUS] = "st",
	    [STORE_SORT_LAST_SEEN] = "last_seen",
	    [STORE_SORT_FAILING] = "n_failing",
	    [STORE_SORT_GAPS] = "gaps_all",
	    [STORE_SORT_DESCRIPTION] = "ifnull(description, '')",
	};
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_json_ json_t *byid = json_object(), *tids = json_array();
	_cleanup_free_ char *tids_text = NULL;
	char where[512], sql[4096], key[32];
	size_t i;
	json_t *id;
	int rc, r;

	if (!byid || !tids)
		return -ENOMEM;
	snprintf(sql, sizeof(sql),
		 TERMINAL_VIEW
		 "SELECT id FROM w WHERE %s ORDER BY %s %s, name %s LIMIT ?8 OFFSET ?9",
		 terminal_filter_sql(q, where, sizeof(where)), sort_sql[q->sort],
		 q->desc ? "DESC" : "ASC", q->sort == STORE_SORT_NAME && q->desc ? "DESC" : "ASC");
	r = prepare(s, sql, &st);
	if (r < 0)
		return r;
	terminal_query_bind(st, v, q);
	sqlite3_bind_int64(st, 8, q->limit ? (int64_t)q->limit : -1);
	sqlite3_bind_int64(st, 9, q->offset);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(tids, json_integer(sqlite3_column_int64(st, 0)));
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	if (json_array_size(tids) == 0)
		return 0;
	tids_text = json_dumps(tids, JSON_COMPACT);
	if (!tids_text)
		return -ENOMEM;
	sqlite3_finalize(st);
	st = NULL;

	r = prepare(s,
		    TERMINAL_VIEW "SELECT " TERMINAL_COLUMNS " FROM w"
				  " WHERE id IN (SELECT value FROM json_each(?10))",
		    &st);
	if (r < 0)
		return r;
	view_bind(st, v);
	sqlite3_bind_text(st, 10, tids_text, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(key, sizeof(key), "%lld", (long long)sqlite3_column_int64(st, 0));
		json_object_set_new(byid, key, terminal_row_json(st, v));
	}
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	json_array_foreach(tids, i, id)
	{
		json_t *t;
		snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(id));
		t = json_object_get(byid, key);
		if (t)
			json_array_append(list, t);
	}
	return terminals_decorate(s, v, byid, tids_text);
}

/* The summary cards count every terminal; at most once a second per connection (the page polls
 * every 10 s, and every filter and page would count the same 10,000 rows again). */
static int terminals_summary(struct store *s, const struct store_view *v)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (s->summary_view.now_ms <= v->now_ms && v->now_ms - s->summary_view.now_ms < 1000 &&
	    s->summary_view.default_interval_ms == v->default_interval_ms &&
	    s->summary_view.drift_ms == v->drift_ms &&
	    strcmp(s->summary_cert ? s->summary_cert : "",
		   v->cert_expiring ? v->cert_expiring : "") == 0)
		return 0;
	r = prepare(s,
		    TERMINAL_VIEW "SELECT count(*), ifnull(sum(st = 1), 0), ifnull(sum(st = 0), 0),"
				  " ifnull(sum(st = 2), 0), ifnull(sum(stale), 0),"
				  " ifnull(sum(problem), 0) FROM w",
		    &st);
	if (r < 0)
		return r;
	view_bind(st, v);
	if (sqlite3_step(st) != SQLITE_ROW)
		return -EIO;
	for (int i = 0; i < 6; i++)
		s->summary[i] = sqlite3_column_int64(st, i);
	free(s->summary_cert);
	s->summary_cert = v->cert_expiring ? strdup(v->cert_expiring) : NULL;
	s->summary_view = *v;
	s->summary_view.cert_expiring = NULL; /* compared through summary_cert */
	return 0;
}

int store_terminals_json(struct store *s, const struct store_view *v,
			 const struct store_terminal_query *q, json_t **ret)
{
	if (s->pg)
		return store_pg_terminals_json(s->pg, v, q, ret);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_json_ json_t *list = json_array();
	char where[512], sql[4096];
	int64_t matched = -1;
	int r;

	if (!list)
		return -ENOMEM;
	r = terminals_summary(s, v);
	if (r < 0)
		return r;
	r = terminals_page(s, v, q, list);
	if (r < 0)
		return r;
	/* the filter's count, for the pager (a window count(*) OVER () copies every row: slower) */
	if (q->status == STORE_STATUS_ALL && !q->search[0] && !q->check[0] && !q->clause[0])
		matched = s->summary[0];
	else {
		snprintf(sql, sizeof(sql), TERMINAL_VIEW "SELECT count(*) FROM w WHERE %s",
			 terminal_filter_sql(q, where, sizeof(where)));
		r = prepare(s, sql, &st);
		if (r < 0)
			return r;
		terminal_query_bind(st, v, q);
		if (sqlite3_step(st) != SQLITE_ROW)
			return -EIO;
		matched = sqlite3_column_int64(st, 0);
	}

	json_t *o = json_object();
	json_object_set_new(o, "generated_at", ts_json(v->now_ms));
	json_object_set_new(o, "summary",
			    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "total", s->summary[0],
				      "compliant", s->summary[1], "noncompliant", s->summary[2],
				      "unknown", s->summary[3], "stale", s->summary[4], "problem",
				      s->summary[5]));
	json_object_set_new(o, "matched", json_integer(matched));
	json_object_set_new(o, "offset", json_integer(q->offset));
	json_object_set_new(o, "limit", json_integer(q->limit));
	json_object_set(o, "terminals", list);
	*ret = o;
	return 0;
}

static json_t *event_row_json(sqlite3_stmt *st, int col0, const char *terminal)
{
	json_t *e = json_object();
	char cursor[32];

	snprintf(cursor, sizeof(cursor), "%lld", (long long)sqlite3_column_int64(st, col0));
	json_object_set_new(e, "cursor", json_string(cursor));
	json_object_set_new(
	    e, "terminal",
	    json_string(terminal ? terminal : (const char *)sqlite3_column_text(st, col0 + 1)));
	json_object_set_new(e, "seq", json_integer(sqlite3_column_int64(st, col0 + 2)));
	json_object_set_new(e, "ts", ts_json(sqlite3_column_int64(st, col0 + 3)));
	json_object_set_new(e, "received_at", ts_json(sqlite3_column_int64(st, col0 + 4)));
	json_object_set_new(e, "kind",
			    json_string((const char *)sqlite3_column_text(st, col0 + 5)));
	json_object_set_new(e, "clause",
			    json_text_or(sqlite3_column_text(st, col0 + 6), json_array()));
	json_object_set_new(e, "data",
			    json_text_or(sqlite3_column_text(st, col0 + 7), json_object()));
	return e;
}

/* Finalizes *st and prepares sql in its place, with ?1 bound to the terminal tid. */
static int prepare_for_tid(struct store *s, const char *sql, int64_t tid, sqlite3_stmt **st)
{
	sqlite3_finalize(*st);
	*st = NULL;
	int r = prepare(s, sql, st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(*st, 1, tid);
	return 0;
}

int store_terminal_json(struct store *s, const struct store_view *v, const char *id,
			unsigned recent, json_t **ret)
{
	if (s->pg)
		return store_pg_terminal_json(s->pg, v, id, recent, ret);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_json_ json_t *byid = json_object(), *t = NULL;
	json_t *arr;
	int64_t tid;
	char key[32], tids[32];
	int rc, r;

	r = prepare(s, TERMINAL_VIEW "SELECT " TERMINAL_COLUMNS " FROM w WHERE name = ?6", &st);
	if (r < 0)
		return r;
	view_bind(st, v);
	sqlite3_bind_text(st, 6, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return sqlite_errno(rc);
	tid = sqlite3_column_int64(st, 0);
	t = terminal_row_json(st, v);
	snprintf(key, sizeof(key), "%lld", (long long)tid);
	json_object_set(byid, key, t);
	snprintf(tids, sizeof(tids), "[%lld]", (long long)tid);
	r = terminals_decorate(s, v, byid, tids);
	if (r < 0)
		return r;

	r = prepare_for_tid(s,
			    "SELECT check_id, status, clause, detail, since, updated_at FROM checks"
			    " WHERE tid = ?1 ORDER BY check_id",
			    tid, &st);
	if (r < 0)
		return r;
	arr = json_array();
	json_object_set_new(t, "checks", arr);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *c = check_json(st, 0);
		json_object_set_new(c, "updated_at", ts_json(sqlite3_column_int64(st, 5)));
		json_array_append_new(arr, c);
	}
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);

	r = prepare_for_tid(s,
			    "SELECT first, last, detected_at, announced FROM gaps WHERE tid = ?1"
			    " ORDER BY first DESC LIMIT 100",
			    tid, &st);
	if (r < 0)
		return r;
	arr = json_array();
	json_object_set_new(t, "gap_list", arr);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(arr,
				      json_pack("{s:I,s:I,s:o,s:b}", "first",
						(json_int_t)sqlite3_column_int64(st, 0), "last",
						(json_int_t)sqlite3_column_int64(st, 1),
						"detected_at", ts_json(sqlite3_column_int64(st, 2)),
						"announced", sqlite3_column_int(st, 3)));
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);

	r = prepare_for_tid(s,
			    "SELECT id, NULL, seq, ts, received_at, kind, clause, data FROM events"
			    " WHERE tid = ?1 AND body IS NULL ORDER BY seq DESC LIMIT ?2",
			    tid, &st);
	if (r < 0)
		return r;
	sqlite3_bind_int(st, 2, (int)recent);
	arr = json_array();
	json_object_set_new(t, "recent_events", arr);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(arr, event_row_json(st, 0, id));
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);

	*ret = TAKE_PTR(t);
	return 0;
}

static int events_prepare(struct store *s, const struct store_filter *f, sqlite3_stmt **ret)
{
	/* the fleet's tables exist once [fleet] was configured (collector/fleet-store.c) */
	bool fleet =
	    f->group[0] && sqlite3_table_column_metadata(s->db, NULL, "fleet_members", "grp", NULL,
							 NULL, NULL, NULL, NULL) == SQLITE_OK;
	char sql[1024];
	int r;

	/* id order: the receive order, for scripts that follow the store; newest: by the terminal's
	 * clock, for people (an index range on ts, kind or terminal in every case) */
	snprintf(
	    sql, sizeof(sql),
	    "SELECT e.id, t.name, e.seq, e.ts, e.received_at, e.kind, e.clause, e.data"
	    " FROM events e JOIN terminals t ON t.id = e.tid WHERE e.body IS NULL AND %s%s%s%s%s%s",
	    f->newest ? (f->before_id ? "e.ts <= ?7 AND (e.ts < ?7 OR e.id < ?8)" : "1")
		      : "e.id > ?1",
	    f->terminal[0] ? " AND t.name = ?2" : "",
	    /* with a terminal, its own events (events_tid_ts) are fewer than the kind's */
	    f->kind < 0	     ? ""
	    : f->terminal[0] ? " AND +e.kind = ?3"
			     : " AND e.kind = ?3",
	    f->since_ms != INT64_MIN ? " AND e.ts >= ?4" : "",
	    f->until_ms != INT64_MAX ? " AND e.ts < ?5" : "",
	    f->newest ? " ORDER BY e.ts DESC, e.id DESC LIMIT ?6" : " ORDER BY e.id LIMIT ?6");
	snprintf(sql, sizeof(sql),
		 "SELECT e.id, t.name, e.seq, e.ts, e.received_at, e.kind, e.clause, e.data"
		 " FROM events e JOIN terminals t ON t.id = e.tid WHERE %s%s%s%s%s%s%s",
		 f->newest ? (f->before_id ? "e.ts <= ?7 AND (e.ts < ?7 OR e.id < ?8)" : "1")
			   : "e.id > ?1",
		 f->terminal[0] ? " AND t.name = ?2" : "",
		 !f->group[0] ? ""
		 /* by tid: a name compared per event row costs 8 times more */
		 : fleet ? " AND e.tid IN (SELECT t2.id FROM fleet_members m JOIN terminals t2"
			   " ON t2.name = m.terminal WHERE m.grp = ?9)"
			 : " AND 0",
		 /* with a terminal, its own events (events_tid_ts) are fewer than the kind's */
		 f->kind < 0	  ? ""
		 : f->terminal[0] ? " AND +e.kind = ?3"
				  : " AND e.kind = ?3",
		 f->since_ms != INT64_MIN ? " AND e.ts >= ?4" : "",
		 f->until_ms != INT64_MAX ? " AND e.ts < ?5" : "",
		 f->newest ? " ORDER BY e.ts DESC, e.id DESC LIMIT ?6" : " ORDER BY e.id LIMIT ?6");
	r = prepare(s, sql, ret);
	if (r < 0)
		return r;
	if (!f->newest)
		sqlite3_bind_int64(*ret, 1, (int64_t)f->after);
	else if (f->before_id) {
		sqlite3_bind_int64(*ret, 7, f->before_ts);
		sqlite3_bind_int64(*ret, 8, (int64_t)f->before_id);
	}
	if (f->terminal[0])
		sqlite3_bind_text(*ret, 2, f->terminal, -1, SQLITE_TRANSIENT);
	if (fleet)
		sqlite3_bind_text(*ret, 9, f->group, -1, SQLITE_TRANSIENT);
	if (f->kind >= 0)
		sqlite3_bind_text(*ret, 3, event_kind_name((enum event_kind)f->kind), -1,
				  SQLITE_STATIC);
	if (f->since_ms != INT64_MIN)
		sqlite3_bind_int64(*ret, 4, f->since_ms);
	if (f->until_ms != INT64_MAX)
		sqlite3_bind_int64(*ret, 5, f->until_ms);
	sqlite3_bind_int(*ret, 6, (int)f->limit);
	return 0;
}

int store_events_json(struct store *s, const struct store_filter *f, json_t **ret)
{
	if (s->pg)
		return store_pg_events_json(s->pg, f, ret);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *arr = json_array(), *o;
	int64_t last = 0, last_ts = 0;
	unsigned n = 0;
	int rc, r;

	if (!arr)
		return -ENOMEM;
	r = events_prepare(s, f, &st);
	if (r < 0) {
		json_decref(arr);
		return r;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_array_append_new(arr, event_row_json(st, 0, NULL));
		last = sqlite3_column_int64(st, 0);
		last_ts = sqlite3_column_int64(st, 3);
		n++;
	}
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return sqlite_errno(rc);
	}
	o = json_object();
	json_object_set_new(o, "events", arr);
	if (n == f->limit && n > 0) {
		char cursor[48];
		if (f->newest)
			snprintf(cursor, sizeof(cursor), "%lld.%lld", (long long)last_ts,
				 (long long)last);
		else
			snprintf(cursor, sizeof(cursor), "%lld", (long long)last);
		json_object_set_new(o, "next", json_string(cursor));
	} else
		json_object_set_new(o, "next", json_null());
	*ret = o;
	return 0;
}

int store_events_foreach(struct store *s, const struct store_filter *f,
			 int (*fn)(const struct store_row *row, void *userdata), void *userdata,
			 uint64_t *ret_last)
{
	if (s->pg)
		return store_pg_events_foreach(s->pg, f, fn, userdata, ret_last);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	uint64_t last = 0;
	int rc, r;

	r = events_prepare(s, f, &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_row row = {
		    .id = (uint64_t)sqlite3_column_int64(st, 0),
		    .terminal = (const char *)sqlite3_column_text(st, 1),
		    .seq = (uint64_t)sqlite3_column_int64(st, 2),
		    .ts_ms = sqlite3_column_int64(st, 3),
		    .received_ms = sqlite3_column_int64(st, 4),
		    .kind = (const char *)sqlite3_column_text(st, 5),
		    .clause = (const char *)sqlite3_column_text(st, 6),
		    .data = (const char *)sqlite3_column_text(st, 7),
		};
		r = fn(&row, userdata);
		if (r < 0)
			return r;
		last = row.id;
	}
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	*ret_last = last;
	return 0;
}

int store_stats(struct store *s, const struct store_view *v, struct store_stats *ret)
{
	if (s->pg)
		return store_pg_stats(s->pg, v, ret);
	static const struct store_terminal_query all = {.status = STORE_STATUS_ALL, .limit = 1};
	_cleanup_json_ json_t *page = NULL;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *summary;
	int r;

	r = store_terminals_json(s, v, &all, &page);
	if (r < 0)
		return r;
	summary = json_object_get(page, "summary");
	r = prepare(
	    s,
	    "SELECT ifnull((SELECT max(id) FROM events) - (SELECT min(id) FROM events) + 1, 0),"
	    " (SELECT count(*) FROM gaps)",
	    &st);
	if (r < 0)
		return r;
	if (sqlite3_step(st) != SQLITE_ROW)
		return -EIO;
	*ret = (struct store_stats){
	    .terminals = (uint64_t)json_integer_value(json_object_get(summary, "total")),
	    .compliant = (uint64_t)json_integer_value(json_object_get(summary, "compliant")),
	    .noncompliant = (uint64_t)json_integer_value(json_object_get(summary, "noncompliant")),
	    .unknown = (uint64_t)json_integer_value(json_object_get(summary, "unknown")),
	    .stale = (uint64_t)json_integer_value(json_object_get(summary, "stale")),
	    .events = (uint64_t)sqlite3_column_int64(st, 0),
	    .gaps = (uint64_t)sqlite3_column_int64(st, 1),
	};
	/* one index lookup per kind (events_expiry: kept events only), never a scan */
	for (int k = 0; k < _EVENT_KIND_MAX; k++) {
		_cleanup_stmt_ sqlite3_stmt *o = NULL;
		ret->oldest_ms[k] = INT64_MIN;
		r = prepare(
		    s, "SELECT min(received_at) FROM events WHERE kind = ?1 AND body IS NULL", &o);
		if (r < 0)
			return r;
		sqlite3_bind_text(o, 1, event_kind_name((enum event_kind)k), -1, SQLITE_STATIC);
		if (sqlite3_step(o) == SQLITE_ROW && sqlite3_column_type(o, 0) != SQLITE_NULL)
			ret->oldest_ms[k] = sqlite3_column_int64(o, 0);
	}
	return 0;
}

/* ---- migration into PostgreSQL (docs/postgresql.md) ---- */

/* What is copied, table by table (chain_collapse, retention's to-do list, is not: PostgreSQL's
 * retention finds the chains that start with a tombstone by themselves); events' column 3 is ts
 * (store_pg_copy_row() makes its partition). */
static const struct {
	const char *table, *columns;
	int n;
	bool keyed;    /* WITHOUT ROWID: copied in key order */
	bool optional; /* made only with [fleet]: skipped when missing */
} copy_tables[] = {
    {"terminals",
     "id, name, first_seen, last_seen, max_seq, policy_hash, report_interval, compliance_seq,"
     " compliance_ts, drift_ms, conflicts, description, n_failing, locked_at, n_gaps,"
     " n_gaps_unannounced, chain_head",
     17, false, false},
    {"events", "id, tid, seq, ts, received_at, kind, clause, data, chain, body, disposed_at", 11,
     false, false},
    {"checks", "tid, check_id, status, clause, detail, since, updated_at, seq", 8, true, false},
    {"gaps", "id, tid, first, last, detected_at, announced", 6, false, false},
    {"chain_anchors", "tid, first_seq, chain, disposed, at", 5, false, false},
    {"signed_heads", "id, at, body, signature", 4, false, false},
    /* the daily history: its summaries outlive the events (store_pg's schema step 1 → 2) */
    {"check_days", "tid, day, check_id, status", 4, true, false},
    {"clause_terminal_days", "day, clause, tid, status", 4, true, false},
    {"clause_days", "day, clause, reporting, failing", 4, true, false},
    {"kind_days", "kind, day, tid, n", 4, true, false},
    {"kind_totals", "kind, day, n", 3, true, false},
    /* the report's (store_pg's schema step 4 → 5) */
    {"snapshot_days", "tid, day, ts, seq", 4, true, false},
    {"check_last_days", "tid, day, check_id, ts, seq, status, worst, clause", 8, true, false},
    /* the dashboard's accounts (store_pg's schema step 2 → 3), secrets still sealed under the
     * same [accounts] secret_key; not the outbox, which the collector drains at its start */
    {"accounts",
     "name, role, hide_personal, disabled, password, totp_secret, totp_last_step, failures,"
     " locked_until, created",
     10, false, false},
    {"account_sessions", "id_sha256, name, csrf, created, last_used", 5, false, false},
    {"account_tokens", "id_sha256, name, scope, created", 4, false, false},
    /* the fleet's tables (fleet-store.c; store_pg's schema step 3 → 4) */
    {"fleet_groups",
     "name, created_at, base, base_version, base_issued, base_sha256, base_uploaded_at", 7, false,
     true},
    {"fleet_members", "terminal, grp, added_at", 3, false, true},
    {"fleet_exceptions",
     "id, year, num, scope, grp, terminal, vendor, product, serial, hash, class, users,"
     " valid_from, valid_until, purpose, approved_by, ledger, request, state, created_at,"
     " created_by, revoked_at, revoked_by, revoke_reason",
     24, false, true},
    {"fleet_requests",
     "terminal, code, vendor, product, serial, hash, class, rule, manufacturer, product_name,"
     " first_seen, last_seen, count, state, exception, reason, decided_by, decided_at",
     18, false, true},
    {"fleet_ledger",
     "number, holder, department, model, vendor, product, serial, encrypted, lent, returned,"
     " note, last_terminal, last_seen, updated_at",
     14, false, true},
    {"fleet_bundles", "terminal, version, content, bundle, built_at", 5, false, true},
    {"fleet_totp",
     "\"user\", groups, gen, secret, enrolled_at, enrolled_by, revoked_at, revoked_by,"
     " revoke_reason, verified_at, verify_failures",
     11, false, true},
    {"fleet_totp_recovery", "\"user\", rid, secret, until, issued_at, issued_by", 6, false, true},
    {"fleet_totp_claims", "\"user\", step, terminal, at", 4, false, true},
    {"fleet_terminal_keys", "terminal, x25519, updated_at", 3, false, true},
};
#define COPY_COLUMNS_MAX 24

int store_migrate_to_pg(struct store *s, const char *location, uint64_t *ret_rows)
{
	struct store *dst = NULL;
	uint64_t rows = 0;
	int r;

	if (s->pg)
		return -EINVAL;
	r = store_open(location, true, &dst);
	if (r < 0)
		return r;
	if (!dst->pg) {
		store_close(dst);
		return -EINVAL;
	}
	r = exec(s, "BEGIN"); /* one snapshot of the source */
	if (r >= 0)
		r = store_pg_copy_begin(dst->pg);
	for (size_t t = 0; r >= 0 && t < ELEMENTSOF(copy_tables); t++) {
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		char sql[512];
		int rc;

		if (copy_tables[t].optional &&
		    sqlite3_table_column_metadata(s->db, NULL, copy_tables[t].table, NULL, NULL,
						  NULL, NULL, NULL, NULL) != SQLITE_OK)
			continue;
		snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY rowid",
			 copy_tables[t].columns, copy_tables[t].table);
		if (copy_tables[t].keyed)
			snprintf(sql, sizeof(sql), "SELECT %s FROM %s", copy_tables[t].columns,
				 copy_tables[t].table);
		r = prepare(s, sql, &st);
		while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *vals[COPY_COLUMNS_MAX];
			char *bufs[COPY_COLUMNS_MAX] = {0};
			for (int i = 0; i < copy_tables[t].n; i++) {
				int type = sqlite3_column_type(st, i), len;
				const uint8_t *b;
				vals[i] = NULL;
				if (type == SQLITE_NULL)
					continue;
				if (type != SQLITE_BLOB) {
					vals[i] = (const char *)sqlite3_column_text(st, i);
					continue;
				}
				b = sqlite3_column_blob(st, i);
				len = sqlite3_column_bytes(st, i);
				bufs[i] = malloc(2 * (size_t)len + 3);
				if (!bufs[i]) {
					r = -ENOMEM;
					break;
				}
				strcpy(bufs[i], "\\x");
				for (int j = 0; j < len; j++)
					snprintf(bufs[i] + 2 + 2 * j, 3, "%02x", b[j]);
				vals[i] = bufs[i];
			}
			if (r >= 0)
				r = store_pg_copy_row(dst->pg, copy_tables[t].table,
						      copy_tables[t].columns, copy_tables[t].n,
						      vals);
			for (int i = 0; i < copy_tables[t].n; i++)
				free(bufs[i]);
			rows++;
		}
		if (r >= 0 && rc != SQLITE_DONE)
			r = sqlite_errno(rc);
	}
	if (r >= 0)
		r = store_pg_copy_end(dst->pg);
	else
		store_pg_rollback(dst->pg);
	exec(s, "COMMIT");
	store_close(dst);
	if (r >= 0)
		*ret_rows = rows;
	return r;
}

/* The alert thread's round (alert.c): every terminal with a condition, by the same definitions
 * as the dashboard's list (TERMINAL_VIEW), so that an alert and a red row never disagree. */
int store_alert_scan(struct store *s, const struct store_view *v,
		     int (*fn)(const struct store_alert_row *row, void *arg), void *arg)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	if (s->pg)
		return store_pg_alert_scan(s->pg, v, fn, arg);

	r = prepare(
	    s,
	    TERMINAL_VIEW
	    "SELECT w.name, w.description, w.st = 0, w.stale, w.last_seen,"
	    " ifnull(w.report_interval, ?4), CASE WHEN w.locked THEN t.locked_at END,"
	    " CASE WHEN w.locked THEN (SELECT json_extract(e.data, '$.user') FROM events e"
	    "  WHERE e.tid = w.id AND e.kind = 'auth.locked' AND e.ts = t.locked_at LIMIT 1) END,"
	    " w.gaps_un,"
	    " CASE WHEN w.st = 0 THEN (SELECT group_concat(c.check_id, ' ') FROM checks c"
	    "  WHERE c.tid = w.id AND c.status IN ('fail', 'error')) END"
	    " FROM w JOIN terminals t ON t.id = w.id"
	    " WHERE w.st = 0 OR w.stale OR w.locked OR w.gaps_un > 0 ORDER BY w.name",
	    &st);
	if (r < 0)
		return r;
	view_bind(st, v);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_alert_row row = {
		    .terminal = (const char *)sqlite3_column_text(st, 0),
		    .description = (const char *)sqlite3_column_text(st, 1),
		    .noncompliant = sqlite3_column_int(st, 2) != 0,
		    .stale = sqlite3_column_int(st, 3) != 0,
		    .last_seen_ms = sqlite3_column_int64(st, 4),
		    .interval_ms = sqlite3_column_int64(st, 5),
		    .locked_at_ms =
			sqlite3_column_type(st, 6) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 6),
		    .locked_user = (const char *)sqlite3_column_text(st, 7),
		    .gaps_unannounced = (uint64_t)sqlite3_column_int64(st, 8),
		    .failing = (const char *)sqlite3_column_text(st, 9),
		};
		if (!row.terminal)
			return -ENOMEM;
		r = fn(&row, arg);
		if (r < 0)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

/* The double uses of a one-time code of the last 24 h still in force (the dbl of TERMINAL_VIEW),
 * oldest first. */
int store_totp_double_scan(struct store *s, const struct store_view *v,
			   int (*fn)(const struct store_totp_double *d, void *arg), void *arg)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	if (s->pg)
		return store_pg_totp_double_scan(s->pg, v, INGEST_SELF_TERMINAL, fn, arg);
	r = prepare(
	    s,
	    "SELECT json_extract(e.data, '$.user'), json_extract(e.data, '$.step'),"
	    " json_extract(e.data, '$.terminals[0]'), json_extract(e.data, '$.terminals[1]'),"
	    " e.ts FROM events e JOIN terminals c ON c.id = e.tid"
	    " AND c.name = '" INGEST_SELF_TERMINAL "' WHERE e.kind = 'fleet.totp'"
	    " AND e.ts >= ?1 AND e.ts < ?2 AND e.body IS NULL"
	    " AND json_extract(e.data, '$.action') = 'double_use' " TOTP_DOUBLE_IN_FORCE
	    " ORDER BY e.id",
	    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, v->now_ms - 86400 * 1000LL);
	sqlite3_bind_int64(st, 2, v->now_ms + 86400 * 1000LL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_totp_double d = {
		    .user = (const char *)sqlite3_column_text(st, 0),
		    .step = (uint64_t)sqlite3_column_int64(st, 1),
		    .first = (const char *)sqlite3_column_text(st, 2),
		    .second = (const char *)sqlite3_column_text(st, 3),
		    .ts_ms = sqlite3_column_int64(st, 4),
		};
		if (!d.user || !d.first || !d.second)
			continue; /* not one the collector wrote */
		r = fn(&d, arg);
		if (r < 0)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

/* ---- the daily history ---- */

static int prepare_again(struct store *s, const char *sql, sqlite3_stmt **st)
{
	sqlite3_finalize(*st);
	*st = NULL;
	return prepare(s, sql, st);
}

static json_t *day_json(int64_t day)
{
	char buf[16];
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%d", &tm) == 0)
		return json_null();
	return json_string(buf);
}

static json_t *dates_json(int64_t from, unsigned days)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < days; i++)
		json_array_append_new(a, day_json(from + i));
	return a;
}

static json_t *zeros_json(unsigned days)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < days; i++)
		json_array_append_new(a, json_integer(0));
	return a;
}

static json_t *range_json(const struct store_view *v, unsigned days, int64_t *ret_from)
{
	int64_t to = store_day(v->now_ms), from = to - (int64_t)days + 1;
	*ret_from = from;
	return json_pack("{s:o, s:o, s:I, s:o}", "from", day_json(from), "to", day_json(to), "days",
			 (json_int_t)days, "dates", dates_json(from, days));
}

/* The rows of both stores become the same JSON here (store-pg.c reads its rows by callbacks). */
struct history_build {
	json_t *byid;
	const char *blank;
	int64_t from;
};

/* a check the terminal reports now, with its clauses (a JSON array's text) */
static int history_check(void *u, const char *cid, const char *clause)
{
	struct history_build *h = u;
	json_t *c =
	    json_pack("{s:s, s:o, s:s}", "id", cid, "clause",
		      json_text_or((const unsigned char *)clause, json_array()), "days", h->blank);
	if (!c)
		return -ENOMEM;
	return json_object_set_new(h->byid, cid, c) < 0 ? -ENOMEM : 0;
}

/* its status on a day of the range: 1 pass, 2 fail */
static int history_day(void *u, const char *cid, int64_t day, int status)
{
	struct history_build *h = u;
	json_t *c = json_object_get(h->byid, cid);
	char *text;

	if (!c) {
		c = json_pack("{s:s, s:[], s:s}", "id", cid, "clause", "days", h->blank);
		if (!c || json_object_set_new(h->byid, cid, c) < 0)
			return -ENOMEM;
	}
	text = strdup(json_string_value(json_object_get(c, "days")));
	if (!text)
		return -ENOMEM;
	text[day - h->from] = status == 2 ? 'f' : 'p';
	json_object_set_new(c, "days", json_string(text));
	free(text);
	return 0;
}

static int history_rows(struct store *s, const char *id, int64_t from, int64_t to,
			struct history_build *h)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int64_t tid;
	int rc, r;

	r = prepare(s, "SELECT id FROM terminals WHERE name = ?1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return sqlite_errno(rc);
	tid = sqlite3_column_int64(st, 0);

	/* the checks it reports now first (with their clauses), then any it reported before */
	r = prepare_for_tid(s, "SELECT check_id, clause FROM checks WHERE tid = ?1", tid, &st);
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = history_check(h, (const char *)sqlite3_column_text(st, 0),
				  (const char *)sqlite3_column_text(st, 1));
	if (r < 0)
		return r;
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	r = prepare_for_tid(s,
			    "SELECT check_id, day, status FROM check_days"
			    " WHERE tid = ?1 AND day >= ?2 AND day <= ?3",
			    tid, &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = history_day(h, (const char *)sqlite3_column_text(st, 0),
				sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2));
	if (r < 0)
		return r;
	return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

int store_history_json(struct store *s, const struct store_view *v, const char *id, unsigned days,
		       json_t **ret)
{
	_cleanup_json_ json_t *o = NULL, *byid = json_object(), *list = json_array();
	_cleanup_free_ char *blank = NULL;
	struct history_build h;
	int64_t from;
	const char *key;
	json_t *c;
	int r;

	if (days < 1 || days > STORE_HISTORY_DAYS_MAX)
		return -EINVAL;
	o = range_json(v, days, &from);
	blank = malloc(days + 1);
	if (!o || !byid || !list || !blank)
		return -ENOMEM;
	memset(blank, '-', days);
	blank[days] = 0;
	h = (struct history_build){.byid = byid, .blank = blank, .from = from};
	r = s->pg ? store_pg_history_rows(s->pg, id, from, from + days - 1, history_check,
					  history_day, &h)
		  : history_rows(s, id, from, from + days - 1, &h);
	if (r < 0)
		return r;
	json_object_foreach(byid, key, c) json_array_append(list, c);
	json_object_set_new(o, "terminal", json_string(id));
	json_object_set(o, "checks", list);
	*ret = TAKE_PTR(o);
	return 0;
}

struct clauses_build {
	json_t *byclause;
	unsigned days;
	int64_t from;
};

/* a clause's day: the terminals that reported it, of which failing failed one of its checks */
static int clauses_day(void *u, int64_t day, const char *name, int64_t reporting, int64_t failing)
{
	struct clauses_build *b = u;
	size_t i = (size_t)(day - b->from);
	json_t *c = json_object_get(b->byclause, name);

	if (!c) {
		c = json_pack("{s:s, s:o, s:o}", "clause", name, "reporting", zeros_json(b->days),
			      "complied", zeros_json(b->days));
		if (!c || json_object_set_new(b->byclause, name, c) < 0)
			return -ENOMEM;
	}
	json_array_set_new(json_object_get(c, "reporting"), i, json_integer(reporting));
	json_array_set_new(json_object_get(c, "complied"), i, json_integer(reporting - failing));
	return 0;
}

static int clause_rows(struct store *s, int64_t from, int64_t to, struct clauses_build *b,
		       int64_t *ret_terminals)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int rc, r;

	r = prepare(s,
		    "SELECT day, clause, reporting, failing FROM clause_days"
		    " WHERE day >= ?1 AND day <= ?2 ORDER BY clause",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, to);
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = clauses_day(b, sqlite3_column_int64(st, 0),
				(const char *)sqlite3_column_text(st, 1),
				sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3));
	if (r < 0)
		return r;
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	r = prepare_again(s, "SELECT count(*) FROM terminals", &st);
	if (r < 0)
		return r;
	if (sqlite3_step(st) != SQLITE_ROW)
		return -EIO;
	*ret_terminals = sqlite3_column_int64(st, 0);
	return 0;
}

int store_clauses_json(struct store *s, const struct store_view *v, unsigned days, json_t **ret)
{
	_cleanup_json_ json_t *o = NULL, *byclause = json_object(), *list = json_array();
	struct clauses_build b;
	int64_t from, terminals = 0;
	const char *key;
	json_t *c;
	int r;

	if (days < 1 || days > STORE_HISTORY_DAYS_MAX)
		return -EINVAL;
	o = range_json(v, days, &from);
	if (!o || !byclause || !list)
		return -ENOMEM;
	b = (struct clauses_build){.byclause = byclause, .days = days, .from = from};
	r = s->pg ? store_pg_clause_rows(s->pg, from, from + days - 1, clauses_day, &b, &terminals)
		  : clause_rows(s, from, from + days - 1, &b, &terminals);
	if (r < 0)
		return r;
	json_object_foreach(byclause, key, c) json_array_append(list, c);
	json_object_set(o, "clauses", list);
	json_object_set_new(o, "terminals", json_integer(terminals));
	*ret = TAKE_PTR(o);
	return 0;
}

struct activity_build {
	json_t *per, *best;
	int64_t from;
};

static int activity_day(void *u, int64_t day, int64_t n)
{
	struct activity_build *a = u;
	return json_array_set_new(a->per, (size_t)(day - a->from), json_integer(n)) < 0 ? -ENOMEM
											: 0;
}

static int activity_top(void *u, const char *terminal, int64_t n)
{
	struct activity_build *a = u;
	return json_array_append_new(
		   a->best, json_pack("{s:s, s:I}", "terminal", terminal, "n", (json_int_t)n)) < 0
		   ? -ENOMEM
		   : 0;
}

/* a kind's count per day of the range, and (top > 0) the terminals with the most */
static int kind_rows(struct store *s, const char *kind, int64_t from, int64_t to, unsigned top,
		     struct activity_build *a)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int rc, r;

	r = prepare(s, "SELECT day, n FROM kind_totals WHERE kind = ?1 AND day >= ?2 AND day <= ?3",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = activity_day(a, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
	if (r < 0)
		return r;
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	if (top == 0)
		return 0;
	r = prepare_again(s,
			  "SELECT t.name, x.n FROM (SELECT tid, sum(n) AS n FROM kind_days"
			  " WHERE kind = ?1 AND day >= ?2 AND day <= ?3 GROUP BY tid"
			  " ORDER BY n DESC, tid LIMIT ?4) x JOIN terminals t ON t.id = x.tid"
			  " ORDER BY x.n DESC, t.name",
			  &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	sqlite3_bind_int(st, 4, (int)top);
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = activity_top(a, (const char *)sqlite3_column_text(st, 0),
				 sqlite3_column_int64(st, 1));
	if (r < 0)
		return r;
	return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

int store_activity_json(struct store *s, const struct store_view *v, unsigned days, unsigned top,
			json_t **ret)
{
	static const char *const kinds[] = {"usb.blocked", "auth.failure", "auth.locked"};
	static const char *const keys[] = {"usb_blocked", "auth_failure", "auth_locked"};
	_cleanup_json_ json_t *o = NULL, *tops = json_object();
	int64_t from;
	bool cached;
	int r;

	if (days < 1 || days > STORE_HISTORY_DAYS_MAX)
		return -EINVAL;
	o = range_json(v, days, &from);
	if (!o || !tops)
		return -ENOMEM;
	cached = s->top_cache.top && s->top_cache.days == days &&
		 s->top_cache.to_day == from + days - 1 && s->top_cache.at_ms <= v->now_ms &&
		 v->now_ms - s->top_cache.at_ms < STORE_TOP_TTL_MS;
	for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
		/* no top list of lockouts */
		unsigned n = top == 0 || k == 2 || cached ? 0 : top;
		struct activity_build a = {
		    .per = zeros_json(days), .best = json_array(), .from = from};
		if (!a.per || !a.best) {
			json_decref(a.per);
			json_decref(a.best);
			return -ENOMEM;
		}
		json_object_set_new(o, keys[k], a.per);
		json_object_set_new(tops, keys[k], a.best);
		r = s->pg ? store_pg_kind_rows(s->pg, kinds[k], from, from + days - 1, n,
					       activity_day, activity_top, &a)
			  : kind_rows(s, kinds[k], from, from + days - 1, n, &a);
		if (r < 0)
			return r;
	}
	if (cached)
		json_object_set(o, "top", s->top_cache.top);
	else {
		json_object_del(tops, "auth_locked");
		json_object_set(o, "top", tops);
		json_decref(s->top_cache.top);
		s->top_cache.top = json_incref(tops);
		s->top_cache.days = days;
		s->top_cache.to_day = from + days - 1;
		s->top_cache.at_ms = v->now_ms;
	}
	*ret = TAKE_PTR(o);
	return 0;
}

/* ---- alerts with several collectors (PostgreSQL only; docs/alerts.md) ---- */

int store_alert_leader(struct store *s)
{
	return s->pg ? store_pg_alert_leader(s->pg) : 2;
}

int store_alert_sent_get(struct store *s, const char *key, int *mail, int *hook)
{
	return s->pg ? store_pg_alert_sent_get(s->pg, key, mail, hook) : 0;
}

int store_alert_sent_put(struct store *s, const char *key, int mail, int hook, int64_t at_ms)
{
	return s->pg ? store_pg_alert_sent_put(s->pg, key, mail, hook, at_ms) : 0;
}

int store_alert_sent_keep(struct store *s, const char *const *keys, size_t n)
{
	return s->pg ? store_pg_alert_sent_keep(s->pg, keys, n) : 0;
}

int store_alert_digest_day(struct store *s, char day[static 16])
{
	day[0] = '\0';
	return s->pg ? store_pg_alert_digest_day(s->pg, day) : 0;
}

int store_alert_digest_put(struct store *s, const char *day)
{
	return s->pg ? store_pg_alert_digest_put(s->pg, day) : 0;
}

int store_cursor_publish(struct store *s)
{
	return s->pg ? store_pg_cursor_publish(s->pg) : 0;
}
