/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the PostgreSQL store (docs/postgresql.md). The same tables as the SQLite
 * store (store.c), except that events are partitioned by month of the event's time (ts), so that
 * retention can drop a partition; a (terminal, seq) keeps its ts across retries, so the unique
 * key (tid, seq, ts) that the partitioning requires is the dedup key (tid, seq). */
#include "store-pg.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest.h"
#include "macro.h"
#include "store-verify.h"

#define PG_SCHEMA_VERSION 5
#define PG_MONTHS_CACHED  64
/* pg_advisory_xact_lock key of the schema and of partition creation ("mgev") */
#define PG_DDL_LOCK "1835492726"

static const char pg_schema[] =
    "CREATE TABLE mg_schema (version integer NOT NULL);"
    "CREATE TABLE terminals ("
    "  id bigserial PRIMARY KEY,"
    "  name text NOT NULL UNIQUE,"
    "  first_seen bigint NOT NULL,"
    "  last_seen bigint NOT NULL,"
    "  max_seq bigint NOT NULL DEFAULT 0,"
    "  policy_hash text,"
    "  report_interval bigint,"
    "  compliance_seq bigint NOT NULL DEFAULT 0,"
    "  compliance_ts bigint,"
    "  drift_ms bigint,"
    "  conflicts bigint NOT NULL DEFAULT 0,"
    "  description text,"
    "  n_failing integer NOT NULL DEFAULT 0,"
    "  locked_at bigint,"
    "  n_gaps integer NOT NULL DEFAULT 0,"
    "  n_gaps_unannounced integer NOT NULL DEFAULT 0,"
    "  chain_head bytea);"
    /* id: receive order (the API's cursor); ts: the terminal's clock, ms (the partition key) */
    "CREATE TABLE events ("
    "  id bigint GENERATED ALWAYS AS IDENTITY,"
    "  tid bigint NOT NULL REFERENCES terminals(id),"
    "  seq bigint NOT NULL,"
    "  ts bigint NOT NULL,"
    "  received_at bigint NOT NULL,"
    "  kind text NOT NULL,"
    "  clause text NOT NULL,"
    "  data text NOT NULL,"
    "  chain bytea,"
    "  body bytea,"
    "  disposed_at bigint,"
    "  UNIQUE (tid, seq, ts)"
    ") PARTITION BY RANGE (ts);"
    "CREATE INDEX events_id ON events (id);"
    "CREATE INDEX events_tid_id ON events (tid, id);"
    "CREATE INDEX events_kind_ts ON events (kind, ts);"
    "CREATE INDEX events_ts ON events (ts);"
    "CREATE INDEX events_expiry ON events (kind, received_at) WHERE body IS NULL;"
    /* the API's time format (event_format_ts): 2026-11-25T18:58:36.123Z */
    "CREATE FUNCTION mg_ts(ms bigint) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS"
    " $$SELECT to_char(to_timestamp(ms / 1000) AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS') || '.' || lpad((ms % 1000)::text, 3, '0') || 'Z'$$;"
    "CREATE TABLE checks ("
    "  tid bigint NOT NULL REFERENCES terminals(id),"
    "  check_id text NOT NULL,"
    "  status text NOT NULL,"
    "  clause text NOT NULL,"
    "  detail text,"
    "  since bigint NOT NULL,"
    "  updated_at bigint NOT NULL,"
    "  seq bigint NOT NULL,"
    "  PRIMARY KEY (tid, check_id));"
    "CREATE TABLE gaps ("
    "  id bigserial PRIMARY KEY,"
    "  tid bigint NOT NULL REFERENCES terminals(id),"
    "  first bigint NOT NULL,"
    "  last bigint NOT NULL,"
    "  detected_at bigint NOT NULL,"
    "  announced integer NOT NULL DEFAULT 0);"
    "CREATE INDEX gaps_tid ON gaps (tid, first);"
    "CREATE TABLE chain_anchors ("
    "  tid bigint PRIMARY KEY REFERENCES terminals(id),"
    "  first_seq bigint,"
    "  chain bytea NOT NULL,"
    "  disposed bigint NOT NULL,"
    "  at bigint NOT NULL);"
    "CREATE TABLE signed_heads ("
    "  id bigserial PRIMARY KEY,"
    "  at bigint NOT NULL,"
    "  body text NOT NULL,"
    "  signature bytea NOT NULL);"
    "INSERT INTO mg_schema VALUES (1);";

/* Each entry moves the schema from version i + 1 to i + 2 (pg_schema is version 1); never edit a
 * released one. */
static const char *const pg_migrations[] = {
    /* 1 → 2: the daily history, as store.c's 4 → 5 (docs/evidence.md "History"): kept by the
     * writer in the batch's transaction; day: days since the epoch in Japan (store_day()) of the
     * event's ts; status 1 pass, 2 fail. The shared day counters (clause_days, kind_totals) are
     * added to at commit, in key order (history_flush()). Backfilled from the kept events. */
    "CREATE TABLE check_days ("
    "  tid bigint NOT NULL,"
    "  day bigint NOT NULL,"
    "  check_id text NOT NULL,"
    "  status smallint NOT NULL,"
    "  PRIMARY KEY (tid, day, check_id));"
    "CREATE TABLE clause_terminal_days ("
    "  day bigint NOT NULL,"
    "  clause text NOT NULL,"
    "  tid bigint NOT NULL,"
    "  status smallint NOT NULL,"
    "  PRIMARY KEY (day, clause, tid));"
    "CREATE TABLE clause_days ("
    "  day bigint NOT NULL,"
    "  clause text NOT NULL,"
    "  reporting bigint NOT NULL,"
    "  failing bigint NOT NULL,"
    "  PRIMARY KEY (day, clause));"
    "CREATE TABLE kind_days ("
    "  kind text NOT NULL,"
    "  day bigint NOT NULL,"
    "  tid bigint NOT NULL,"
    "  n bigint NOT NULL,"
    "  PRIMARY KEY (kind, day, tid));"
    "CREATE TABLE kind_totals ("
    "  kind text NOT NULL,"
    "  day bigint NOT NULL,"
    "  n bigint NOT NULL,"
    "  PRIMARY KEY (kind, day));"
    "CREATE FUNCTION mg_day(ms bigint) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT AS"
    " $$SELECT floor((ms + 32400000) / 86400000.0)::bigint$$;"
    "CREATE TEMPORARY TABLE mg_checks ON COMMIT DROP AS"
    " SELECT e.tid, mg_day(e.ts) AS day, c->>'id' AS id,"
    "  CASE c->>'status' WHEN 'pass' THEN 1 ELSE 2 END AS code, c->'clause' AS clause"
    " FROM events e, jsonb_array_elements(CASE WHEN jsonb_typeof(e.data::jsonb->'checks')"
    "  = 'array' THEN e.data::jsonb->'checks' ELSE '[]' END) c"
    " WHERE e.kind = 'compliance' AND e.body IS NULL AND jsonb_typeof(c->'id') = 'string'"
    "  AND c->>'status' IN ('pass', 'fail', 'error');"
    "INSERT INTO check_days (tid, day, check_id, status)"
    " SELECT tid, day, id, max(code) FROM mg_checks GROUP BY 1, 2, 3;"
    "INSERT INTO clause_terminal_days (day, clause, tid, status)"
    " SELECT c.day, cl #>> '{}', c.tid, max(c.code) FROM mg_checks c,"
    "  jsonb_array_elements(CASE WHEN jsonb_typeof(c.clause) = 'array' THEN c.clause"
    "  ELSE '[]' END) cl WHERE jsonb_typeof(cl) = 'string' GROUP BY 1, 2, 3;"
    "INSERT INTO clause_days (day, clause, reporting, failing)"
    " SELECT day, clause, count(*), count(*) FILTER (WHERE status = 2)"
    " FROM clause_terminal_days GROUP BY 1, 2;"
    "INSERT INTO kind_days (kind, day, tid, n)"
    " SELECT kind, mg_day(ts), tid, count(*) FROM events"
    " WHERE kind IN ('usb.blocked', 'auth.failure', 'auth.locked') AND body IS NULL"
    " GROUP BY 1, 2, 3;"
    "INSERT INTO kind_totals (kind, day, n) SELECT kind, day, sum(n) FROM kind_days GROUP BY 1, 2;"
    "INSERT INTO mg_schema VALUES (2);",
    /* 2 → 3: the dashboard's personal accounts (account-store.c through sqldb.c), the tables of
     * ACCOUNT_STORE_SCHEMA (SQLite's 5 → 6), the TOTP secrets sealed from the start; times Unix
     * seconds (bigint), flags 0/1, the sealed TOTP secret bytea. */
    "CREATE TABLE accounts ("
    "  name text PRIMARY KEY,"
    "  role integer NOT NULL,"
    "  hide_personal integer NOT NULL DEFAULT 0,"
    "  disabled integer NOT NULL DEFAULT 0,"
    "  password text NOT NULL,"
    "  totp_secret bytea NOT NULL,"
    "  totp_last_step bigint NOT NULL DEFAULT 0,"
    "  failures integer NOT NULL DEFAULT 0,"
    "  locked_until bigint NOT NULL DEFAULT 0,"
    "  created bigint NOT NULL);"
    "CREATE TABLE account_sessions ("
    "  id_sha256 text PRIMARY KEY,"
    "  name text NOT NULL REFERENCES accounts(name),"
    "  csrf text NOT NULL,"
    "  created bigint NOT NULL,"
    "  last_used bigint NOT NULL);"
    "CREATE INDEX account_sessions_name ON account_sessions (name);"
    "CREATE TABLE account_tokens ("
    "  id_sha256 text PRIMARY KEY,"
    "  name text NOT NULL REFERENCES accounts(name),"
    "  scope integer NOT NULL,"
    "  created bigint NOT NULL);"
    "CREATE TABLE account_outbox ("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  kind text NOT NULL,"
    "  data text NOT NULL);"
    "INSERT INTO mg_schema VALUES (3);",
    /* 3 → 4: the fleet's workflow tables (fleet-store.c's schema through sqldb.c; docs/fleet.md),
     * times Unix seconds (bigint), blobs bytea; "user" quoted as the fleet's SQL quotes it */
    "CREATE TABLE fleet_groups ("
    "  name text PRIMARY KEY,"
    "  created_at bigint NOT NULL,"
    "  base bytea,"
    "  base_version bigint,"
    "  base_issued bigint,"
    "  base_sha256 text,"
    "  base_uploaded_at bigint);"
    "CREATE TABLE fleet_members ("
    "  terminal text PRIMARY KEY,"
    "  grp text NOT NULL,"
    "  added_at bigint NOT NULL);"
    "CREATE TABLE fleet_exceptions ("
    "  id text PRIMARY KEY,"
    "  year bigint NOT NULL,"
    "  num bigint NOT NULL,"
    "  scope text NOT NULL,"
    "  grp text NOT NULL,"
    "  terminal text,"
    "  vendor bigint NOT NULL,"
    "  product bigint NOT NULL,"
    "  serial text NOT NULL,"
    "  hash text,"
    "  class text NOT NULL,"
    "  users text NOT NULL,"
    "  valid_from bigint NOT NULL,"
    "  valid_until bigint NOT NULL,"
    "  purpose text NOT NULL,"
    "  approved_by text NOT NULL,"
    "  ledger text,"
    "  request text,"
    "  state text NOT NULL,"
    "  created_at bigint NOT NULL,"
    "  created_by text NOT NULL,"
    "  revoked_at bigint,"
    "  revoked_by text,"
    "  revoke_reason text);"
    "CREATE TABLE fleet_requests ("
    "  terminal text NOT NULL,"
    "  code text NOT NULL,"
    "  vendor bigint NOT NULL,"
    "  product bigint NOT NULL,"
    "  serial text,"
    "  hash text,"
    "  class text,"
    "  rule text,"
    "  manufacturer text,"
    "  product_name text,"
    "  first_seen bigint NOT NULL,"
    "  last_seen bigint NOT NULL,"
    "  count bigint NOT NULL,"
    "  state text NOT NULL,"
    "  exception text,"
    "  reason text,"
    "  decided_by text,"
    "  decided_at bigint,"
    "  PRIMARY KEY (terminal, code));"
    "CREATE TABLE fleet_ledger ("
    "  number text PRIMARY KEY,"
    "  holder text NOT NULL,"
    "  department text NOT NULL,"
    "  model text NOT NULL,"
    "  vendor text NOT NULL,"
    "  product text NOT NULL,"
    "  serial text NOT NULL,"
    "  encrypted bigint NOT NULL,"
    "  lent text NOT NULL,"
    "  returned text NOT NULL,"
    "  note text NOT NULL,"
    "  last_terminal text,"
    "  last_seen bigint,"
    "  updated_at bigint NOT NULL);"
    "CREATE INDEX fleet_ledger_device ON fleet_ledger (vendor, product, serial);"
    "CREATE TABLE fleet_bundles ("
    "  terminal text PRIMARY KEY,"
    "  version bigint NOT NULL,"
    "  content text,"
    "  bundle bytea,"
    "  built_at bigint);"
    "CREATE TABLE fleet_totp ("
    "  \"user\" text PRIMARY KEY,"
    "  groups text NOT NULL,"
    "  gen bigint NOT NULL,"
    "  secret bytea,"
    "  enrolled_at bigint NOT NULL,"
    "  enrolled_by text NOT NULL,"
    "  revoked_at bigint,"
    "  revoked_by text,"
    "  revoke_reason text,"
    "  verified_at bigint,"
    "  verify_failures bigint NOT NULL DEFAULT 0);"
    "CREATE TABLE fleet_totp_recovery ("
    "  \"user\" text PRIMARY KEY,"
    "  rid bigint NOT NULL,"
    "  secret bytea NOT NULL,"
    "  until bigint NOT NULL,"
    "  issued_at bigint NOT NULL,"
    "  issued_by text NOT NULL);"
    "CREATE TABLE fleet_totp_claims ("
    "  \"user\" text NOT NULL,"
    "  step bigint NOT NULL,"
    "  terminal text NOT NULL,"
    "  at bigint NOT NULL,"
    "  PRIMARY KEY (\"user\", step));"
    "CREATE TABLE fleet_terminal_keys ("
    "  terminal text PRIMARY KEY,"
    "  x25519 bytea NOT NULL,"
    "  updated_at bigint NOT NULL);"
    "INSERT INTO mg_schema VALUES (4);",
    /* 4 → 5: what the self-inspection report counts, as store.c's 6 → 7 (docs/evidence.md
     * "History"): per terminal and day the newest snapshot's (ts, seq); per check its newest
     * status of the day in event time, the worst of the day (0 not_applicable, 1 pass, 2 fail)
     * and the clause ids (a JSON array's text). Backfilled from the kept snapshots. */
    "CREATE TABLE snapshot_days ("
    "  tid bigint NOT NULL,"
    "  day bigint NOT NULL,"
    "  ts bigint NOT NULL,"
    "  seq bigint NOT NULL,"
    "  PRIMARY KEY (tid, day));"
    "CREATE TABLE check_last_days ("
    "  tid bigint NOT NULL,"
    "  day bigint NOT NULL,"
    "  check_id text NOT NULL,"
    "  ts bigint NOT NULL,"
    "  seq bigint NOT NULL,"
    "  status text NOT NULL,"
    "  worst smallint NOT NULL,"
    "  clause text NOT NULL,"
    "  PRIMARY KEY (tid, day, check_id));"
    "INSERT INTO snapshot_days (tid, day, ts, seq)"
    " SELECT DISTINCT ON (tid, mg_day(ts)) tid, mg_day(ts), ts, seq FROM events"
    " WHERE kind = 'compliance' AND body IS NULL ORDER BY tid, mg_day(ts), ts DESC, seq DESC;"
    "INSERT INTO check_last_days (tid, day, check_id, ts, seq, status, worst, clause)"
    " SELECT DISTINCT ON (tid, day, id) tid, day, id, ts, seq, status,"
    "  max(code) OVER (PARTITION BY tid, day, id), clause FROM (SELECT e.tid, mg_day(e.ts) AS day,"
    "  e.ts, e.seq, c.k, c.v->>'id' AS id, c.v->>'status' AS status,"
    "  CASE c.v->>'status' WHEN 'pass' THEN 1 WHEN 'fail' THEN 2 WHEN 'error' THEN 2 ELSE 0"
    "  END AS code, CASE WHEN jsonb_typeof(c.v->'clause') = 'array' THEN (c.v->'clause')::text"
    "  ELSE '[]' END AS clause FROM events e, jsonb_array_elements(CASE WHEN"
    "  jsonb_typeof(e.data::jsonb->'checks') = 'array' THEN e.data::jsonb->'checks' ELSE '[]'"
    "  END) WITH ORDINALITY c(v, k) WHERE e.kind = 'compliance' AND e.body IS NULL"
    "  AND jsonb_typeof(c.v->'id') = 'string' AND jsonb_typeof(c.v->'status') = 'string') x"
    " ORDER BY tid, day, id, ts DESC, seq DESC, k DESC;"
    "INSERT INTO mg_schema VALUES (5);",
};

struct store_pg {
	PGconn *c;
	EVP_MD_CTX *md;
	bool writable;
	/* month partitions known to exist (start of the month, ms); forgotten on a rollback,
	 * which may have undone their creation */
	int64_t months[PG_MONTHS_CACHED];
	size_t n_months;
	bool resetting;
	bool cursor_locked; /* this writer round holds the cursor lock (cursor_writer_lock()) */
	bool cursor_table;  /* mg_cursor exists (store_pg_cursor_publish()) */
	/* the round's additions to the shared day counters ([day, clause, reporting, failing] and
	 * [kind, day]), written at commit (history_flush()) */
	json_t *pend_clause, *pend_kind;
	char clause_buf[4096];
	char data_buf[EVENT_MAX_BYTES];
};

const char *store_pg_location(const char *location)
{
	if (location && strncmp(location, STORE_PG_PREFIX, strlen(STORE_PG_PREFIX)) == 0)
		return location + strlen(STORE_PG_PREFIX);
	return NULL;
}

static int pg_errno(const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (!state)
		return -EIO;
	/* no partition for the row (the schema has no CHECK): another collector's retention dropped
	 * a month this one had cached; the failed batch forgets the cache and is answered 503 */
	if (strcmp(state, "23514") == 0)
		return -EBUSY;
	if (strncmp(state, "23", 2) == 0)
		return -EEXIST;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0)
		return -EBUSY;
	if (strcmp(state, "53100") == 0)
		return -ENOSPC;
	if (strcmp(state, "53200") == 0)
		return -ENOMEM;
	if (strcmp(state, "42501") == 0 || strncmp(state, "28", 2) == 0)
		return -EACCES;
	return -EIO;
}

/* Runs sql with text parameters; NULL with *err set on failure. */
static int reconnect(struct store_pg *p);

static PGresult *pq(struct store_pg *p, const char *sql, int n, const char *const *vals, int *err)
{
	for (int attempt = 0;; attempt++) {
		/* without parameters: the simple protocol, which also runs several statements */
		PGresult *res =
		    n ? PQexecParams(p->c, sql, n, NULL, vals, NULL, NULL, 0) : PQexec(p->c, sql);
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			return res;
		*err = pg_errno(res);
		PQclear(res);
		/* A reader whose connection broke (a server restart) connects again and retries its
		 * statement once: it runs none inside a transaction of the writer's kind. The
		 * writer reconnects only in store_pg_begin(): a retry inside its transaction would
		 * run the rest of the round outside one. */
		if (attempt > 0 || p->writable || p->resetting ||
		    PQstatus(p->c) != CONNECTION_BAD || reconnect(p) < 0)
			return NULL;
	}
}

static int pq_do(struct store_pg *p, const char *sql, int n, const char *const *vals)
{
	int r = 0;
	PGresult *res = pq(p, sql, n, vals, &r);
	PQclear(res);
	return r;
}

static void pgresult_freep(PGresult **res)
{
	PQclear(*res);
}
#define _cleanup_pgresult_ _cleanup_(pgresult_freep)

struct i64text {
	char s[24];
};

static struct i64text i64(int64_t v)
{
	struct i64text t;
	snprintf(t.s, sizeof(t.s), "%" PRId64, v);
	return t;
}

static int64_t col_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* bytea as a text parameter: "\x" and hex */
static void hex_param(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	out[0] = '\\';
	out[1] = 'x';
	for (size_t i = 0; i < n; i++) {
		out[2 + 2 * i] = digits[b[i] >> 4];
		out[3 + 2 * i] = digits[b[i] & 15];
	}
	out[2 + 2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A bytea column read as text ("\x..."): true when it holds exactly STORE_CHAIN_LEN bytes. */
static bool col_link(const PGresult *res, int row, int col, uint8_t out[STORE_CHAIN_LEN])
{
	const char *t;

	if (PQgetisnull(res, row, col))
		return false;
	t = PQgetvalue(res, row, col);
	if (strncmp(t, "\\x", 2) != 0 || strlen(t) != 2 + 2 * STORE_CHAIN_LEN)
		return false;
	for (size_t i = 0; i < STORE_CHAIN_LEN; i++) {
		int hi = hexval(t[2 + 2 * i]), lo = hexval(t[3 + 2 * i]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static int schema_version(struct store_pg *p)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	int r = 0;

	res = pq(p, "SELECT to_regclass('mg_schema') IS NOT NULL", 0, NULL, &r);
	if (!res)
		return r;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		return 0;
	PQclear(res);
	res = pq(p, "SELECT max(version) FROM mg_schema", 0, NULL, &r);
	if (!res)
		return r;
	return PQntuples(res) == 1 ? (int)col_i64(res, 0, 0) : -EIO;
}

int store_pg_schema_version(struct store_pg *p)
{
	return schema_version(p);
}

/* Creates the schema once, under a lock that other collectors starting at once also take. */
static int schema_create(struct store_pg *p)
{
	int r, v;

	r = pq_do(p, "BEGIN", 0, NULL);
	if (r < 0)
		return r;
	r = pq_do(p, "SELECT pg_advisory_xact_lock(" PG_DDL_LOCK ")", 0, NULL);
	if (r >= 0) {
		v = schema_version(p);
		if (v < 0)
			r = v;
		else if (v > PG_SCHEMA_VERSION)
			r = -EPROTO;
		else if (v == 0) {
			r = pq_do(p, pg_schema, 0, NULL);
			v = 1;
		}
		/* the steps in order, in this one transaction */
		for (; r >= 0 && v < PG_SCHEMA_VERSION; v++)
			r = pq_do(p, pg_migrations[v - 1], 0, NULL);
	}
	if (r < 0) {
		pq_do(p, "ROLLBACK", 0, NULL);
		return r;
	}
	return pq_do(p, "COMMIT", 0, NULL);
}

/* The connection's settings, again after a reconnection. */
static int session_setup(struct store_pg *p)
{
	/* an acknowledged batch is on disk: never let a server default weaken the commit; no JIT:
	 * the collector's queries are short, and the large cost estimates of the dashboard's
	 * counts over events made PostgreSQL compile them for longer than they run */
	return pq_do(p,
		     p->writable ? "SET synchronous_commit = on; SET client_encoding = 'UTF8';"
				   " SET TIME ZONE 'UTC'; SET jit = off"
				 : "SET synchronous_commit = on; SET client_encoding = 'UTF8';"
				   " SET TIME ZONE 'UTC'; SET jit = off;"
				   " SET default_transaction_read_only = on",
		     0, NULL);
}

static int reconnect(struct store_pg *p)
{
	int r;

	p->resetting = true;
	p->n_months = 0;
	PQreset(p->c);
	r = PQstatus(p->c) == CONNECTION_OK ? session_setup(p) : -EIO;
	p->resetting = false;
	return r < 0 ? -EIO : 0;
}

int store_pg_open(const char *conninfo, bool writable, struct store_pg **ret)
{
	struct store_pg *p;
	int r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->writable = writable;
	p->md = EVP_MD_CTX_new();
	p->pend_clause = json_array();
	p->pend_kind = json_array();
	if (!p->md || !p->pend_clause || !p->pend_kind) {
		json_decref(p->pend_clause);
		json_decref(p->pend_kind);
		EVP_MD_CTX_free(p->md);
		free(p);
		return -ENOMEM;
	}
	p->c = PQconnectdb(conninfo);
	if (!p->c || PQstatus(p->c) != CONNECTION_OK) {
		store_pg_close(p);
		return -ECONNREFUSED;
	}
	r = session_setup(p);
	if (r >= 0 && writable)
		r = schema_create(p);
	if (r >= 0 && !writable && schema_version(p) != PG_SCHEMA_VERSION)
		r = -EPROTO;
	if (r < 0) {
		store_pg_close(p);
		return r;
	}
	*ret = p;
	return 0;
}

void store_pg_close(struct store_pg *p)
{
	if (!p)
		return;
	if (p->c)
		PQfinish(p->c);
	EVP_MD_CTX_free(p->md);
	json_decref(p->pend_clause);
	json_decref(p->pend_kind);
	free(p);
}

PGconn *store_pg_conn(struct store_pg *p, bool reconnect_broken)
{
	if (reconnect_broken && !p->resetting && PQstatus(p->c) != CONNECTION_OK)
		(void)reconnect(p);
	return p->c;
}

int store_pg_begin(struct store_pg *p)
{
	/* a server restart broke the connection: one new attempt per writer round */
	if (PQstatus(p->c) != CONNECTION_OK && reconnect(p) < 0)
		return -EIO;
	return pq_do(p, "BEGIN", 0, NULL);
}

static int history_flush(struct store_pg *p);

int store_pg_commit(struct store_pg *p)
{
	int r;

	p->cursor_locked = false;
	r = history_flush(p);
	if (r >= 0)
		r = pq_do(p, "COMMIT", 0, NULL);
	if (r < 0)
		store_pg_rollback(p);
	return r;
}

void store_pg_rollback(struct store_pg *p)
{
	p->cursor_locked = false;
	p->n_months = 0;
	json_array_clear(p->pend_clause);
	json_array_clear(p->pend_kind);
	if (PQtransactionStatus(p->c) != PQTRANS_IDLE)
		pq_do(p, "ROLLBACK", 0, NULL);
}

int store_pg_terminal_max_seq(struct store_pg *p, const char *name, uint64_t *ret)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	const char *v[] = {name};
	int r = 0;

	res = pq(p, "SELECT max_seq FROM terminals WHERE name = $1", 1, v, &r);
	if (!res)
		return r;
	*ret = PQntuples(res) == 1 ? (uint64_t)col_i64(res, 0, 0) : 0;
	return 0;
}

/* ---- ingest ---- */

/* The first millisecond of ts's month (UTC), and that month in tm; -ERANGE out of 1..9999. */
static int month_of(int64_t ts_ms, struct tm *tm, int64_t *ret_from)
{
	time_t t = (time_t)(ts_ms >= 0 ? ts_ms / 1000 : (ts_ms - 999) / 1000);

	if (!gmtime_r(&t, tm) || tm->tm_year + 1900 < 1 || tm->tm_year + 1900 > 9999)
		return -ERANGE;
	tm->tm_mday = 1;
	tm->tm_hour = tm->tm_min = tm->tm_sec = 0;
	*ret_from = (int64_t)timegm(tm) * 1000;
	return 0;
}

static bool month_cached(const struct store_pg *p, int64_t from)
{
	for (size_t i = 0; i < p->n_months; i++)
		if (p->months[i] == from)
			return true;
	return false;
}

/* The month partition that holds ts exists (created on demand, under the DDL lock). */
static int partition_ensure(struct store_pg *p, int64_t ts_ms)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	struct tm tm;
	int64_t from, to;
	char name[32], sql[256];
	int r = month_of(ts_ms, &tm, &from);

	if (r < 0)
		return r;
	if (month_cached(p, from))
		return 0;
	snprintf(name, sizeof(name), "events_p%04d%02d", tm.tm_year + 1900, tm.tm_mon + 1);
	tm.tm_mon++;
	to = (int64_t)timegm(&tm) * 1000;

	const char *v[] = {name};
	res = pq(p, "SELECT to_regclass($1) IS NOT NULL", 1, v, &r);
	if (!res)
		return r;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		r = pq_do(p, "SELECT pg_advisory_xact_lock(" PG_DDL_LOCK ")", 0, NULL);
		snprintf(sql, sizeof(sql),
			 "CREATE TABLE IF NOT EXISTS %s PARTITION OF events"
			 " FOR VALUES FROM (%" PRId64 ") TO (%" PRId64 ")",
			 name, from, to);
		if (r >= 0)
			r = pq_do(p, sql, 0, NULL);
		if (r < 0)
			return r;
	}
	if (p->n_months < PG_MONTHS_CACHED)
		p->months[p->n_months++] = from;
	return 0;
}

/* Before a writer round: the months a batch needs are created in a short transaction of
 * their own. Inside a round that has inserted into events, CREATE ... PARTITION OF waits for
 * every other round's lock on events, and two collectors each creating a month deadlock
 * (40P01, a 503 for their batches). Best effort: what fails here is tried again, and
 * reported, inside the round. */
void store_pg_prepare_batch(struct store_pg *p, const struct event_batch *b)
{
	struct tm tm;
	int64_t from;

	if (PQstatus(p->c) != CONNECTION_OK || PQtransactionStatus(p->c) != PQTRANS_IDLE)
		return;
	for (size_t i = 0; i < b->n; i++) {
		if (month_of(b->events[i].ts_ms, &tm, &from) < 0 || month_cached(p, from))
			continue;
		int r = pq_do(p, "BEGIN", 0, NULL);
		if (r >= 0)
			r = partition_ensure(p, b->events[i].ts_ms);
		if (r >= 0)
			r = pq_do(p, "COMMIT", 0, NULL);
		if (r < 0) {
			store_pg_rollback(p);
			return;
		}
	}
}

static int gap_add(struct store_pg *p, const char *tid, uint64_t first, uint64_t last, int64_t now,
		   bool announced)
{
	struct i64text f = i64((int64_t)first), l = i64((int64_t)last), n = i64(now);
	const char *v[] = {tid, f.s, l.s, n.s, announced ? "1" : "0"};
	return pq_do(p,
		     "INSERT INTO gaps (tid, first, last, detected_at, announced)"
		     " VALUES ($1, $2, $3, $4, $5)",
		     5, v);
}

static int gap_fill(struct store_pg *p, const char *tid, uint64_t seq, int64_t now)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	struct i64text sq = i64((int64_t)seq);
	const char *v[] = {tid, sq.s};
	int64_t first, last;
	bool announced;
	int r = 0;

	res = pq(p,
		 "DELETE FROM gaps WHERE id = (SELECT id FROM gaps WHERE tid = $1 AND first <= $2"
		 " AND last >= $2 LIMIT 1) RETURNING first, last, announced",
		 2, v, &r);
	if (!res)
		return r;
	if (PQntuples(res) == 0)
		return 0;
	first = col_i64(res, 0, 0);
	last = col_i64(res, 0, 1);
	announced = col_i64(res, 0, 2) != 0;
	if (first < (int64_t)seq)
		r = gap_add(p, tid, (uint64_t)first, seq - 1, now, announced);
	if (r >= 0 && (int64_t)seq < last)
		r = gap_add(p, tid, seq + 1, (uint64_t)last, now, announced);
	return r;
}

static int compliance_apply(struct store_pg *p, const char *tid, const struct event *e, int64_t now)
{
	json_t *checks = json_object_get(e->data, "checks");
	json_t *hash = json_object_get(e->data, "policy_hash");
	json_t *interval = json_object_get(e->data, "interval_s");
	json_t *description = json_object_get(e->data, "description");
	struct i64text seq = i64((int64_t)e->seq), ts = i64(e->ts_ms), nw = i64(now), iv = {""};
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

		if (!id || !status)
			continue;
		clause_text =
		    json_is_array(clause) ? json_dumps(clause, JSON_COMPACT) : strdup("[]");
		if (!clause_text)
			return -ENOMEM;
		/* "since" stays while the status does */
		const char *v[] = {tid, id, status, clause_text, detail, ts.s, nw.s, seq.s};
		r = pq_do(p,
			  "INSERT INTO checks (tid, check_id, status, clause, detail, since,"
			  " updated_at, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
			  " ON CONFLICT (tid, check_id) DO UPDATE SET status = excluded.status,"
			  " clause = excluded.clause, detail = excluded.detail,"
			  " since = CASE WHEN checks.status = excluded.status THEN checks.since"
			  " ELSE excluded.since END, updated_at = excluded.updated_at,"
			  " seq = excluded.seq",
			  8, v);
		if (r < 0)
			return r;
	}
	const char *prune[] = {tid, seq.s};
	r = pq_do(p, "DELETE FROM checks WHERE tid = $1 AND seq != $2", 2, prune);
	if (r < 0)
		return r;
	if (json_is_integer(interval) && json_integer_value(interval) > 0 &&
	    json_integer_value(interval) <= 7 * 86400)
		iv = i64(json_integer_value(interval) * 1000);
	const char *v[] = {tid,
			   seq.s,
			   ts.s,
			   json_is_string(hash) ? json_string_value(hash) : NULL,
			   iv.s[0] ? iv.s : NULL,
			   json_is_string(description) ? json_string_value(description) : NULL};
	return pq_do(
	    p,
	    "UPDATE terminals SET compliance_seq = $2, compliance_ts = $3, policy_hash = $4,"
	    " report_interval = $5, description = $6, n_failing = (SELECT count(*)"
	    " FROM checks c WHERE c.tid = $1 AND c.status IN ('fail', 'error'))"
	    " WHERE id = $1",
	    6, v);
}

/* ---- the daily history (migration 1 → 2) ---- */

/* A batch's new snapshots ([day, checks] each) into the terminal's own day rows, as store.c's
 * history_snapshot(): a terminal's status for a check or clause on a day only gets worse, in
 * whatever order the events arrive. The shared counters' additions go to p->pend_clause
 * (history_flush()). The counted events ([kind, day] each, store.c's history_count()) go into
 * kind_days with the batch's last statements (PG_KIND_DAYS, write_batch()). */
#define PG_KIND_DAYS                                                                               \
	"INSERT INTO kind_days (kind, day, tid, n) SELECT k->>0, (k->>1)::bigint, $1::bigint,"     \
	" count(*) FROM jsonb_array_elements($2::jsonb) k GROUP BY 1, 2"                           \
	" ON CONFLICT (kind, day, tid) DO UPDATE SET n = kind_days.n + excluded.n"

/* The report's part of the batch's snapshots ([day, checks, ts, seq] each; schema step 4 → 5,
 * store.c's history_last()): the newest in event time wins, whatever the order of arrival, and
 * the worst of the day only gets worse. */
static int history_last(struct store_pg *p, const char *tid, const char *snaps)
{
	const char *v[] = {tid, snaps};

	return pq_do(
	    p,
	    "WITH s AS (SELECT (s->>0)::bigint AS day, s->1 AS checks, (s->>2)::bigint AS ts,"
	    "  (s->>3)::bigint AS seq FROM jsonb_array_elements($2::jsonb) s),"
	    " sd AS (INSERT INTO snapshot_days (tid, day, ts, seq)"
	    "  SELECT DISTINCT ON (day) $1::bigint, day, ts, seq FROM s ORDER BY day, ts DESC, seq DESC"
	    "  ON CONFLICT (tid, day) DO UPDATE SET ts = excluded.ts, seq = excluded.seq"
	    "  WHERE (excluded.ts, excluded.seq) > (snapshot_days.ts, snapshot_days.seq)),"
	    " c AS (SELECT s.day, s.ts, s.seq, c.k, c.v->>'id' AS id, c.v->>'status' AS status,"
	    "  CASE c.v->>'status' WHEN 'pass' THEN 1 WHEN 'fail' THEN 2 WHEN 'error' THEN 2"
	    "  ELSE 0 END AS code, CASE WHEN jsonb_typeof(c.v->'clause') = 'array'"
	    "  THEN (c.v->'clause')::text ELSE '[]' END AS clause FROM s,"
	    "  jsonb_array_elements(CASE WHEN jsonb_typeof(s.checks) = 'array' THEN s.checks"
	    "  ELSE '[]' END) WITH ORDINALITY c(v, k) WHERE jsonb_typeof(c.v->'id') = 'string'"
	    "  AND jsonb_typeof(c.v->'status') = 'string'),"
	    " n AS (SELECT DISTINCT ON (day, id) day, id, ts, seq, status, clause,"
	    "  max(code) OVER (PARTITION BY day, id) AS worst FROM c"
	    "  ORDER BY day, id, ts DESC, seq DESC, k DESC)"
	    " INSERT INTO check_last_days AS o (tid, day, check_id, ts, seq, status, worst, clause)"
	    " SELECT $1::bigint, day, id, ts, seq, status, worst, clause FROM n"
	    " ON CONFLICT (tid, day, check_id) DO UPDATE SET worst = greatest(o.worst, excluded.worst),"
	    " ts = CASE WHEN (excluded.ts, excluded.seq) >= (o.ts, o.seq) THEN excluded.ts ELSE o.ts END,"
	    " seq = CASE WHEN (excluded.ts, excluded.seq) >= (o.ts, o.seq) THEN excluded.seq"
	    "  ELSE o.seq END,"
	    " status = CASE WHEN (excluded.ts, excluded.seq) >= (o.ts, o.seq) THEN excluded.status"
	    "  ELSE o.status END,"
	    " clause = CASE WHEN (excluded.ts, excluded.seq) >= (o.ts, o.seq) THEN excluded.clause"
	    "  ELSE o.clause END",
	    2, v);
}

static int history_write(struct store_pg *p, const char *tid, json_t *snaps)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	_cleanup_free_ char *text = NULL;
	int r = 0;

	if (json_array_size(snaps)) {
		text = json_dumps(snaps, JSON_COMPACT);
		if (!text)
			return -ENOMEM;
		const char *v[] = {tid, text};
		res = pq(p,
			 "WITH c AS (SELECT (s->>0)::bigint AS day, c->>'id' AS id,"
			 "  CASE c->>'status' WHEN 'pass' THEN 1 ELSE 2 END AS code,"
			 "  c->'clause' AS clause FROM jsonb_array_elements($2::jsonb) s,"
			 "  jsonb_array_elements(CASE WHEN jsonb_typeof(s->1) = 'array' THEN s->1"
			 "  ELSE '[]' END) c WHERE jsonb_typeof(c->'id') = 'string'"
			 "  AND c->>'status' IN ('pass', 'fail', 'error')),"
			 " cd AS (INSERT INTO check_days (tid, day, check_id, status)"
			 "  SELECT $1::bigint, day, id, max(code) FROM c GROUP BY day, id"
			 "  ON CONFLICT (tid, day, check_id) DO UPDATE"
			 "  SET status = greatest(check_days.status, excluded.status)),"
			 " w AS (SELECT c.day, cl #>> '{}' AS clause, max(c.code) AS status FROM c,"
			 "  jsonb_array_elements(CASE WHEN jsonb_typeof(c.clause) = 'array'"
			 "  THEN c.clause ELSE '[]' END) cl WHERE jsonb_typeof(cl) = 'string'"
			 "  GROUP BY 1, 2),"
			 " ch AS (SELECT w.day, w.clause, w.status, coalesce(t.status, 0) AS old"
			 "  FROM w LEFT JOIN clause_terminal_days t ON t.day = w.day"
			 "  AND t.clause = w.clause AND t.tid = $1::bigint"
			 "  WHERE w.status > coalesce(t.status, 0)),"
			 " ct AS (INSERT INTO clause_terminal_days (day, clause, tid, status)"
			 "  SELECT day, clause, $1::bigint, status FROM ch"
			 "  ON CONFLICT (day, clause, tid) DO UPDATE SET status = excluded.status)"
			 " SELECT day, clause, (old = 0)::int, (status = 2)::int FROM ch",
			 2, v, &r);
		if (!res)
			return r;
		r = history_last(p, tid, text);
		if (r < 0)
			return r;
		for (int i = 0; i < PQntuples(res); i++)
			if (json_array_append_new(
				p->pend_clause,
				json_pack("[I, s, i, i]", (json_int_t)col_i64(res, i, 0),
					  PQgetvalue(res, i, 1), (int)col_i64(res, i, 2),
					  (int)col_i64(res, i, 3))) < 0)
				return -ENOMEM;
	}
	return 0;
}

/* The round's additions to the counters every terminal shares, just before the commit and in
 * the key's order: collectors writing into one database lock these rows only for their commit,
 * always in the same order, so they never deadlock on them. */
static int history_flush(struct store_pg *p)
{
	_cleanup_free_ char *text = NULL;
	int r;

	if (json_array_size(p->pend_clause)) {
		text = json_dumps(p->pend_clause, JSON_COMPACT);
		if (!text)
			return -ENOMEM;
		const char *v[] = {text};
		r = pq_do(
		    p,
		    "INSERT INTO clause_days (day, clause, reporting, failing)"
		    " SELECT (x->>0)::bigint, x->>1, sum((x->>2)::bigint), sum((x->>3)::bigint)"
		    " FROM jsonb_array_elements($1::jsonb) x GROUP BY 1, 2 ORDER BY 1, 2"
		    " ON CONFLICT (day, clause) DO UPDATE"
		    " SET reporting = clause_days.reporting + excluded.reporting,"
		    " failing = clause_days.failing + excluded.failing",
		    1, v);
		if (r < 0)
			return r;
		json_array_clear(p->pend_clause);
	}
	if (json_array_size(p->pend_kind)) {
		free(text);
		text = json_dumps(p->pend_kind, JSON_COMPACT);
		if (!text)
			return -ENOMEM;
		const char *v[] = {text};
		r = pq_do(p,
			  "INSERT INTO kind_totals (kind, day, n) SELECT x->>0, (x->>1)::bigint,"
			  " count(*) FROM jsonb_array_elements($1::jsonb) x GROUP BY 1, 2"
			  " ORDER BY 1, 2 ON CONFLICT (kind, day) DO UPDATE"
			  " SET n = kind_totals.n + excluded.n",
			  1, v);
		if (r < 0)
			return r;
		json_array_clear(p->pend_kind);
	}
	return 0;
}

static int cmp_event_seq(const void *a, const void *b)
{
	const struct event *const *x = a, *const *y = b;
	return (*x)->seq < (*y)->seq ? -1 : (*x)->seq > (*y)->seq;
}

static int cmp_event_time(const void *a, const void *b)
{
	const struct event *const *x = a, *const *y = b;
	if ((*x)->ts_ms != (*y)->ts_ms)
		return (*x)->ts_ms < (*y)->ts_ms ? -1 : 1;
	return cmp_event_seq(a, b);
}

struct stored {
	uint64_t seq;
	int64_t ts;
	char kind[STORE_KIND_MAX + 1];
};

static int cmp_stored(const void *a, const void *b)
{
	const struct stored *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Statements sent together and answered together (libpq's pipeline mode): one round trip. The
 * first failure is returned; the statements after it are not run; *ok (if ok): how many ran
 * without error. The result of statement keep (if ret) is returned in *ret. */
struct pq_stmt {
	const char *sql;
	int n;
	const char *const *vals;
};

static int pq_pipeline(struct store_pg *p, const struct pq_stmt *st, size_t n, size_t keep,
		       PGresult **ret, size_t *ok)
{
	size_t sent = 0;
	int r = 0;

	if (ok)
		*ok = 0;
	if (PQenterPipelineMode(p->c) != 1)
		return -EIO;
	for (; sent < n; sent++)
		if (PQsendQueryParams(p->c, st[sent].sql, st[sent].n, NULL, st[sent].vals, NULL,
				      NULL, 0) != 1)
			break;
	if (sent < n || PQpipelineSync(p->c) != 1) {
		/* the connection is broken: the next round connects again */
		PQexitPipelineMode(p->c);
		return -EIO;
	}
	for (size_t i = 0; i < n; i++) {
		PGresult *res = PQgetResult(p->c), *end;
		ExecStatusType s = PQresultStatus(res);

		if (!res) {
			r = r ?: -EIO;
			break;
		}
		if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
			if (r == 0)
				r = s == PGRES_PIPELINE_ABORTED ? -EIO : pg_errno(res);
			PQclear(res);
		} else {
			if (r == 0 && ok)
				(*ok)++;
			if (ret && i == keep)
				*ret = res;
			else
				PQclear(res);
		}
		while ((end = PQgetResult(p->c))) /* NULL ends each statement's results */
			PQclear(end);
	}
	for (;;) {
		PGresult *res = PQgetResult(p->c);
		ExecStatusType s = PQresultStatus(res);

		PQclear(res);
		if (!res || s == PGRES_PIPELINE_SYNC)
			break;
	}
	if (PQexitPipelineMode(p->c) != 1)
		r = r ?: -EIO;
	if (r < 0 && ret && *ret) {
		PQclear(*ret);
		*ret = NULL;
	}
	return r;
}

#define PG_TERMINAL_GET                                                                            \
	"SELECT id, max_seq, compliance_seq, compliance_ts, chain_head FROM terminals"             \
	" WHERE name = $1 FOR UPDATE"

/* The batch's savepoint, and the terminal's row locked until the transaction ends, in one round
 * trip: one writer per terminal at a time, also across several collectors on one database.
 * *saved: the savepoint exists. */
static int terminal_lock(struct store_pg *p, const char *name, int64_t now, bool *saved,
			 PGresult **ret)
{
	struct i64text n = i64(now);
	const char *v[] = {name, n.s};
	const struct pq_stmt st[] = {{"SAVEPOINT batch", 0, NULL}, {PG_TERMINAL_GET, 1, v}};
	PGresult *res = NULL;
	size_t ok;
	int r = 0;

	r = pq_pipeline(p, st, 2, 1, &res, &ok);
	*saved = ok >= 1;
	if (r < 0)
		return r;
	if (PQntuples(res) == 1) {
		*ret = res;
		return 0;
	}
	PQclear(res);
	r = pq_do(p,
		  "INSERT INTO terminals (name, first_seen, last_seen) VALUES ($1, $2, $2)"
		  " ON CONFLICT (name) DO NOTHING",
		  2, v);
	if (r < 0)
		return r;
	res = pq(p, PG_TERMINAL_GET, 1, v, &r);
	if (!res)
		return r;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return -EIO;
	}
	*ret = res;
	return 0;
}

/* The batch's new events, written by one COPY in storage order, so that their ids follow the
 * chain: no statement to parse and plan per batch (a multi-row INSERT of 600 parameters spent a
 * quarter of the server's CPU there), and two round trips. */
struct ins_row {
	struct i64text seq;
	char ts[24];
	const char *kind;
	char *clause, *data;
	char link[2 * STORE_CHAIN_LEN + 3];
};

struct ins {
	struct ins_row *rows;
	size_t n;
};

static void ins_clear(struct ins *ins)
{
	for (size_t i = 0; ins->rows && i < ins->n; i++) {
		free(ins->rows[i].clause);
		free(ins->rows[i].data);
	}
	free(ins->rows);
}

/* One field of COPY's text format: backslash, tab, newline and carriage return escaped. out has
 * room for 2 * strlen(v) + 1 bytes; returns the bytes written, without a terminator. */
static size_t copy_field(char *out, const char *v, char end)
{
	size_t w = 0;

	for (; *v; v++) {
		char c = *v;
		if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
			out[w++] = '\\';
			c = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
		}
		out[w++] = c;
	}
	out[w++] = end;
	return w;
}

static int copy_result(struct store_pg *p)
{
	PGresult *res;
	int r = 0;

	while ((res = PQgetResult(p->c))) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && r == 0)
			r = pg_errno(res);
		PQclear(res);
	}
	return r;
}

static int ins_flush(struct store_pg *p, const struct ins *ins, const char *tid, int64_t now)
{
	_cleanup_free_ char *buf = NULL;
	struct i64text nw = i64(now);
	size_t size = 0, w = 0;
	PGresult *res;
	int r;

	if (ins->n == 0)
		return 0;
	for (size_t i = 0; i < ins->n; i++)
		size += 2 * (strlen(tid) + strlen(nw.s) + strlen(ins->rows[i].seq.s) +
			     strlen(ins->rows[i].ts) + strlen(ins->rows[i].kind) +
			     strlen(ins->rows[i].clause) + strlen(ins->rows[i].data) +
			     strlen(ins->rows[i].link)) +
			16;
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < ins->n; i++) {
		const struct ins_row *row = &ins->rows[i];
		w += copy_field(buf + w, tid, '\t');
		w += copy_field(buf + w, row->seq.s, '\t');
		w += copy_field(buf + w, row->ts, '\t');
		w += copy_field(buf + w, nw.s, '\t');
		w += copy_field(buf + w, row->kind, '\t');
		w += copy_field(buf + w, row->clause, '\t');
		w += copy_field(buf + w, row->data, '\t');
		w += copy_field(buf + w, row->link, '\n');
	}
	res = PQexec(p->c, "COPY events (tid, seq, ts, received_at, kind, clause, data, chain)"
			   " FROM STDIN");
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		r = pg_errno(res);
		PQclear(res);
		return copy_result(p) ?: (r ?: -EIO);
	}
	PQclear(res);
	if (PQputCopyData(p->c, buf, (int)w) != 1) {
		PQputCopyEnd(p->c, "mynaguard: sending the batch failed");
		copy_result(p);
		return -EIO;
	}
	if (PQputCopyEnd(p->c, NULL) != 1) {
		copy_result(p);
		return -EIO;
	}
	return copy_result(p);
}

/* *saved: the batch's savepoint exists (made with the terminal's lock, released with the last
 * statements when the batch succeeds) */
static int write_batch(struct store_pg *p, const struct event_batch *b, int64_t now,
		       struct store_write_result *res, bool *saved)
{
	_cleanup_free_ const struct event **order = NULL, **snapshots = NULL;
	_cleanup_free_ struct stored *have = NULL;
	_cleanup_pgresult_ PGresult *term = NULL, *old = NULL;
	_cleanup_(ins_clear) struct ins ins = {0};
	_cleanup_(json_decrefp) json_t *hist_snaps = json_array(), *hist_kinds = json_array();
	int64_t newest_ts = INT64_MIN, compliance_ts = INT64_MIN;
	uint64_t max_seq, compliance_seq, top = 0;
	uint8_t chain[STORE_CHAIN_LEN] = {0}, link[STORE_CHAIN_LEN], body[STORE_CHAIN_LEN];
	char link_hex[2 * STORE_CHAIN_LEN + 3], tid[24];
	size_t n_snapshots = 0, n_have;
	bool gaps_changed = false;
	int r;

	if (b->n == 0)
		return 0;
	order = calloc(b->n, sizeof(*order));
	snapshots = calloc(b->n, sizeof(*snapshots));
	ins.rows = calloc(b->n, sizeof(*ins.rows));
	if (!order || !snapshots || !ins.rows || !hist_snaps || !hist_kinds)
		return -ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		if (b->events[i].seq > (uint64_t)INT64_MAX)
			return -ERANGE;
		order[i] = &b->events[i];
	}
	qsort(order, b->n, sizeof(*order), cmp_event_seq);

	r = terminal_lock(p, b->terminal, now, saved, &term);
	if (r < 0)
		return r;
	snprintf(tid, sizeof(tid), "%s", PQgetvalue(term, 0, 0));
	max_seq = (uint64_t)col_i64(term, 0, 1);
	compliance_seq = (uint64_t)col_i64(term, 0, 2);
	if (!PQgetisnull(term, 0, 3))
		compliance_ts = col_i64(term, 0, 3);
	col_link(term, 0, 4, chain);

	/* the batch's seqs already stored: duplicates (a conflict when ts or kind differ). None
	 * when the batch starts above max_seq (the usual batch): every stored event of the
	 * terminal has a seq <= max_seq, which is written with them under the row's lock. */
	if (order[0]->seq <= max_seq) {
		struct i64text lo = i64((int64_t)order[0]->seq),
			       hi = i64((int64_t)order[b->n - 1]->seq);
		const char *v[] = {tid, lo.s, hi.s};
		old = pq(p,
			 "SELECT seq, ts, kind FROM events WHERE tid = $1 AND seq BETWEEN $2 AND $3"
			 " ORDER BY seq",
			 3, v, &r);
		if (!old)
			return r;
	}
	n_have = old ? (size_t)PQntuples(old) : 0;
	have = calloc(n_have + b->n + 1, sizeof(*have));
	if (!have)
		return -ENOMEM;
	for (size_t i = 0; i < n_have; i++) {
		have[i].seq = (uint64_t)col_i64(old, (int)i, 0);
		have[i].ts = col_i64(old, (int)i, 1);
		snprintf(have[i].kind, sizeof(have[i].kind), "%s", PQgetvalue(old, (int)i, 2));
	}

	for (size_t i = 0; i < b->n; i++) {
		const struct event *e = order[i];
		const char *kind = event_kind_name(e->kind);
		struct stored key = {.seq = e->seq}, *dup;
		size_t clause_len = 2, data_len;

		if (e->seq > top)
			top = e->seq;
		if (e->ts_ms > newest_ts)
			newest_ts = e->ts_ms;
		dup = bsearch(&key, have, n_have, sizeof(*have), cmp_stored);
		if (!dup && i > 0 && order[i - 1]->seq == e->seq)
			dup = &have[n_have + i - 1]; /* twice in this batch: the first one counts */
		if (dup) {
			res->duplicates++;
			if (dup->ts != e->ts_ms || strcmp(dup->kind, kind) != 0)
				res->conflicts++;
			have[n_have + i] = *dup;
			continue;
		}
		have[n_have + i].seq = e->seq;
		have[n_have + i].ts = e->ts_ms;
		snprintf(have[n_have + i].kind, sizeof(have[n_have + i].kind), "%s", kind);

		if (e->clause) {
			clause_len = json_dumpb(e->clause, p->clause_buf, sizeof(p->clause_buf) - 1,
						JSON_COMPACT);
			if (clause_len == 0 || clause_len > sizeof(p->clause_buf) - 1)
				return -EMSGSIZE;
		} else
			memcpy(p->clause_buf, "[]", 2);
		p->clause_buf[clause_len] = '\0';
		data_len = json_dumpb(e->data, p->data_buf, sizeof(p->data_buf) - 1, JSON_COMPACT);
		if (data_len == 0 || data_len > sizeof(p->data_buf) - 1)
			return -EMSGSIZE;
		p->data_buf[data_len] = '\0';
		/* the link in storage order, exactly as the SQLite store makes it (chain.c) */
		r = chain_body(p->md, p->clause_buf, clause_len, p->data_buf, data_len, body);
		if (r >= 0)
			r = chain_link(p->md, chain, b->terminal, e->seq, e->ts_ms, now, kind, body,
				       link);
		if (r >= 0)
			r = partition_ensure(p, e->ts_ms);
		if (r < 0)
			return r;
		struct ins_row *row = &ins.rows[ins.n++];
		struct i64text ts = i64(e->ts_ms);
		row->seq = i64((int64_t)e->seq);
		memcpy(row->ts, ts.s, sizeof(row->ts));
		row->kind = kind;
		hex_param(link, STORE_CHAIN_LEN, row->link);
		row->clause = strndup(p->clause_buf, clause_len);
		row->data = strndup(p->data_buf, data_len);
		if (!row->clause || !row->data)
			return -ENOMEM;
		res->stored++;
		memcpy(chain, link, STORE_CHAIN_LEN);

		if (e->seq > max_seq + 1) {
			r = gap_add(p, tid, max_seq + 1, e->seq - 1, now, false);
			if (r < 0)
				return r;
			res->gaps++;
			gaps_changed = true;
		} else if (e->seq <= max_seq) {
			r = gap_fill(p, tid, e->seq, now);
			gaps_changed = true;
			if (r < 0)
				return r;
		}
		if (e->seq > max_seq)
			max_seq = e->seq;
		if (e->kind == EVENT_COMPLIANCE) {
			snapshots[n_snapshots++] = e;
			if (json_array_append_new(
				hist_snaps,
				json_pack("[I, O, I, I]", (json_int_t)store_day(e->ts_ms),
					  json_object_get(e->data, "checks") ?: json_null(),
					  (json_int_t)e->ts_ms, (json_int_t)e->seq)) < 0)
				return -ENOMEM;
		}
		if ((e->kind == EVENT_USB_BLOCKED || e->kind == EVENT_AUTH_FAILURE ||
		     e->kind == EVENT_AUTH_LOCKED) &&
		    json_array_append_new(
			hist_kinds, json_pack("[s, I]", kind, (json_int_t)store_day(e->ts_ms))) < 0)
			return -ENOMEM;
		if (e->kind == EVENT_AUTH_LOCKED) {
			const char *lv[] = {tid, ts.s};
			r = pq_do(
			    p,
			    "UPDATE terminals SET locked_at = greatest(coalesce(locked_at, $2),"
			    " $2) WHERE id = $1",
			    2, lv);
			if (r < 0)
				return r;
		}
	}

	r = ins_flush(p, &ins, tid, now);
	if (r >= 0)
		r = history_write(p, tid, hist_snaps);
	if (r < 0)
		return r;

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
		struct i64text f = i64(json_integer_value(first)),
			       l = i64(json_integer_value(last));
		const char *v[] = {tid, f.s, l.s};
		r = pq_do(p,
			  "UPDATE gaps SET announced = 1 WHERE tid = $1 AND first <= $3"
			  " AND last >= $2",
			  3, v);
		if (r < 0)
			return r;
	}
	if (gaps_changed) {
		const char *v[] = {tid};
		r = pq_do(
		    p,
		    "UPDATE terminals SET n_gaps = (SELECT count(*) FROM gaps WHERE tid = $1),"
		    " n_gaps_unannounced = (SELECT count(*) FROM gaps WHERE tid = $1"
		    " AND announced = 0) WHERE id = $1",
		    1, v);
		if (r < 0)
			return r;
	}

	if (n_snapshots)
		qsort(snapshots, n_snapshots, sizeof(*snapshots), cmp_event_time);
	for (size_t i = 0; i < n_snapshots; i++) {
		const struct event *e = snapshots[i];
		if (e->ts_ms < compliance_ts ||
		    (e->ts_ms == compliance_ts && e->seq <= compliance_seq))
			continue;
		r = compliance_apply(p, tid, e, now);
		if (r < 0)
			return r;
		compliance_ts = e->ts_ms;
		compliance_seq = e->seq;
	}

	/* the last round trip: the terminal's day counts, its row, the savepoint's release */
	_cleanup_free_ char *kinds_text = NULL;
	struct pq_stmt st[3];
	size_t n_st = 0;

	if (json_array_size(hist_kinds)) {
		kinds_text = json_dumps(hist_kinds, JSON_COMPACT);
		if (!kinds_text)
			return -ENOMEM;
	}
	const char *kv[] = {tid, kinds_text};
	if (kinds_text)
		st[n_st++] = (struct pq_stmt){PG_KIND_DAYS, 2, kv};
	hex_param(chain, STORE_CHAIN_LEN, link_hex);
	struct i64text nw = i64(now), mx = i64((int64_t)max_seq), dr = i64(now - newest_ts),
		       cf = i64(res->conflicts);
	const char *v[] = {tid, nw.s, mx.s, dr.s, cf.s, link_hex};
	st[n_st++] = (struct pq_stmt){
	    "UPDATE terminals SET last_seen = $2, max_seq = greatest(max_seq, $3),"
	    " drift_ms = $4, conflicts = conflicts + $5, chain_head = $6 WHERE id = $1",
	    6, v};
	st[n_st++] = (struct pq_stmt){"RELEASE batch", 0, NULL};
	r = pq_pipeline(p, st, n_st, 0, NULL, NULL);
	if (r < 0)
		return r;
	*saved = false;
	for (size_t i = 0; i < json_array_size(hist_kinds); i++)
		if (json_array_append(p->pend_kind, json_array_get(hist_kinds, i)) < 0)
			return -ENOMEM;
	res->acked_through = top;
	return 0;
}

/* ---- the events cursor with several writers (docs/postgresql.md, "The cursor") ----
 * Event ids come from the identity sequence at insert, but transactions commit in another
 * order: a reader of ?after=100 must not return 100 while 99 may still commit. Every writer
 * round takes this lock shared before its first id and holds it to its commit; a cursor read
 * first reads the sequence, then takes the lock exclusively for a moment, which waits for every
 * round that was under way: each id up to what it read is then committed or will never be. */
#define PG_CURSOR_LOCK "1835492213"
/* lock_timeout of a cursor read (ms), and of the writer publishing the mark between its rounds */
#define PG_CURSOR_READ_WAIT    "1000"
#define PG_CURSOR_PUBLISH_WAIT "200"

static int cursor_writer_lock(struct store_pg *p)
{
	int r;

	if (p->cursor_locked)
		return 0;
	/* outside the batch's savepoint: a savepoint rolled back would release it */
	r = pq_do(p, "SELECT pg_advisory_xact_lock_shared(" PG_CURSOR_LOCK ")", 0, NULL);
	if (r >= 0)
		p->cursor_locked = true;
	return r;
}

/* The highest id at or below which every row is committed (or never will be): on the primary
 * as above; on a streaming replica, where the primary's locks do not show, the mark a writer on
 * the primary published (store_pg_cursor_publish()), replayed after the rows it covers. */
static int cursor_mark(struct store_pg *p, const char *timeout, int64_t *ret)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	int r = 0;

	res = pq(p,
		 /* NULL until the first id after a setval(..., false) (--migrate-to-postgresql):
		  * then no id was taken since, and the rows are all there is */
		 "SELECT pg_is_in_recovery(), coalesce(pg_sequence_last_value("
		 "pg_get_serial_sequence('events', 'id')::regclass),"
		 " (SELECT max(id) FROM events), 0),"
		 " to_regclass('mg_cursor') IS NOT NULL",
		 0, NULL, &r);
	if (!res)
		return r;
	*ret = col_i64(res, 0, 1);
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		bool published = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
		PQclear(res);
		res = NULL; /* _cleanup_pgresult_ frees it again otherwise */
		*ret = 0;
		if (!published)
			return 0;
		res = pq(p, "SELECT safe FROM mg_cursor WHERE id = 1", 0, NULL, &r);
		if (!res)
			return r;
		*ret = PQntuples(res) == 1 ? col_i64(res, 0, 0) : 0;
		return 0;
	}
	/* A session lock taken and given back in one statement: whatever transaction the reader
	 * is in, writers wait for it only while it waits. New rounds queue behind a waiting
	 * reader, so it waits a bounded time: a round that takes longer (stuck, or a psql session
	 * left open) gives -EBUSY (lock_timeout), and the caller shows nothing past it yet. */
	PQclear(res);
	res = pq(p,
		 "SELECT set_config('lock_timeout', $1, true), pg_advisory_lock(" PG_CURSOR_LOCK
		 "), pg_advisory_unlock(" PG_CURSOR_LOCK ")",
		 1, &timeout, &r);
	return res ? 0 : r;
}

int store_pg_cursor_publish(struct store_pg *p)
{
	int64_t mark = 0;
	int r = 0;

	if (!p->cursor_table)
		r = pq_do(
		    p,
		    "BEGIN; SELECT pg_advisory_xact_lock(" PG_DDL_LOCK ");"
		    " CREATE TABLE IF NOT EXISTS mg_cursor ("
		    "  id integer PRIMARY KEY CHECK (id = 1), safe bigint NOT NULL);"
		    " INSERT INTO mg_cursor VALUES (1, 0) ON CONFLICT (id) DO NOTHING; COMMIT",
		    0, NULL);
	if (r < 0) {
		store_pg_rollback(p);
		return r;
	}
	p->cursor_table = true;
	r = cursor_mark(p, PG_CURSOR_PUBLISH_WAIT, &mark);
	if (r >= 0) {
		struct i64text m = i64(mark);
		const char *vals[] = {m.s};
		r = pq_do(p, "UPDATE mg_cursor SET safe = greatest(safe, $1::bigint) WHERE id = 1",
			  1, vals);
	}
	return r;
}

int store_pg_write_batch(struct store_pg *p, const struct event_batch *b, int64_t received_ms,
			 struct store_write_result *ret)
{
	struct store_write_result res = {0};
	size_t n_clause = json_array_size(p->pend_clause), n_kind = json_array_size(p->pend_kind);
	bool saved = false;
	int r;

	if (b->n == 0) {
		*ret = res;
		return 0;
	}
	r = cursor_writer_lock(p);
	if (r < 0)
		return r;
	r = write_batch(p, b, received_ms, &res, &saved);
	if (r < 0) {
		p->n_months = 0; /* the savepoint may undo a partition's creation */
		/* and the batch's history rows, whose counts are forgotten with them */
		while (json_array_size(p->pend_clause) > n_clause)
			json_array_remove(p->pend_clause, json_array_size(p->pend_clause) - 1);
		while (json_array_size(p->pend_kind) > n_kind)
			json_array_remove(p->pend_kind, json_array_size(p->pend_kind) - 1);
		if (saved) {
			pq_do(p, "ROLLBACK TO batch", 0, NULL);
			pq_do(p, "RELEASE batch", 0, NULL);
		}
		return r;
	}
	*ret = res;
	return 0;
}

/* ---- dashboard queries: the JSON of a row is built by PostgreSQL (json_build_object), in the
 * shapes store.c builds for SQLite (store.h) ---- */

static json_t *col_json(const PGresult *res, int row, int col)
{
	return json_loads(PQgetvalue(res, row, col), 0, NULL);
}

/* TOTP_DOUBLE_IN_FORCE of store.c: no later revoke or (re)enrolment of the user's authenticator */
#define PG_TOTP_DOUBLE_IN_FORCE                                                                    \
	"AND NOT EXISTS (SELECT 1 FROM events e2 WHERE e2.tid = e.tid AND e2.kind = 'fleet.totp'"  \
	" AND e2.id > e.id AND e2.body IS NULL"                                                    \
	" AND e2.data::json ->> 'user' = e.data::json ->> 'user'"                                  \
	" AND e2.data::json ->> 'action' IN ('revoke', 'enroll', 'reenroll'))"

/* Every terminal with its derived state, as store.c's TERMINAL_VIEW: $1..$2 the 24 h around now,
 * $3 now, $4 the default report interval, $5 the drift limit, $6 the terminals whose certificate
 * expires soon (a JSON array). dbl: a terminal named in a double use of a one-time code still
 * in force (the collector's fleet.totp double_use events of the 24 h). */
#define PG_TERMINAL_VIEW                                                                             \
	"WITH dbl AS (SELECT DISTINCT j.name FROM events e"                                          \
	"  JOIN terminals c ON c.id = e.tid AND c.name = '" INGEST_SELF_TERMINAL "',"                \
	"  json_array_elements_text(CASE WHEN json_typeof(e.data::json -> 'terminals') = 'array'"    \
	"  THEN e.data::json -> 'terminals' END) AS j(name)"                                         \
	"  WHERE e.kind = 'fleet.totp' AND e.ts >= $1::bigint AND e.ts < $2::bigint"                 \
	"  AND e.body IS NULL AND e.data::json ->> 'action' = 'double_use' " PG_TOTP_DOUBLE_IN_FORCE \
	"),"                                                                                         \
	" v AS (SELECT t.id, t.name, t.first_seen, t.last_seen, t.max_seq, t.policy_hash,"           \
	"  t.report_interval, t.compliance_ts, coalesce(t.drift_ms, 0) AS drift_ms, t.conflicts,"    \
	"  t.n_gaps AS gaps_all, t.n_gaps_unannounced AS gaps_un, t.description,"                    \
	"  coalesce(t.locked_at >= $1::bigint AND t.locked_at < $2::bigint, false) AS locked,"       \
	"  t.n_failing,"                                                                             \
	"  ($3::bigint - t.last_seen > 2 * coalesce(t.report_interval, $4::bigint)) AS stale,"       \
	"  (coalesce(t.drift_ms, 0) > $5::bigint OR coalesce(t.drift_ms, 0) < -$5::bigint)"          \
	"  AS drift,"                                                                                \
	"  CASE WHEN t.compliance_ts IS NULL THEN 2 WHEN t.n_failing > 0 THEN 0 ELSE 1 END AS st,"   \
	"  t.name IN (SELECT name FROM dbl) AS dbl,"                                                 \
	"  t.name IN (SELECT json_array_elements_text($6::json)) AS cert"                            \
	"  FROM terminals t),"                                                                       \
	" w AS (SELECT *, (st <> 1 OR stale OR drift OR locked OR gaps_un > 0 OR dbl OR cert)"       \
	"  AS problem, CASE WHEN st = 0 THEN 0 WHEN stale THEN 1"                                    \
	"  WHEN drift OR locked OR gaps_un > 0 OR dbl OR cert THEN 2 WHEN st = 2 THEN 3 ELSE 4 END"  \
	"  AS rank FROM v) "

#define PG_COUNT_24H(kind, extra)                                                                  \
	"(SELECT count(*) FROM events e WHERE e.tid = w.id AND e.kind = '" kind "'"                \
	" AND e.ts >= $1::bigint AND e.ts < $2::bigint AND e.body IS NULL" extra ")"

#define PG_CHECK_JSON                                                                              \
	"json_build_object('id', c.check_id, 'status', c.status, 'clause', c.clause::json,"        \
	" 'detail', c.detail, 'since', mg_ts(c.since)"

/* one terminal as JSON, from a row of w */
#define PG_TERMINAL_JSON                                                                                       \
	"json_build_object('id', name, 'description', description, 'first_seen',"                              \
	" mg_ts(first_seen), 'last_seen', mg_ts(last_seen), 'last_seq', max_seq, 'policy_hash',"               \
	" policy_hash, 'report_interval_s', coalesce(report_interval, $4::bigint) / 1000,"                     \
	" 'last_compliance', mg_ts(compliance_ts), 'clock_drift_ms', drift_ms, 'clock_drift',"                 \
	" drift, 'seq_conflicts', conflicts, 'gaps', gaps_all, 'gaps_unannounced', gaps_un,"                   \
	" 'stale', stale, 'locked_24h', " PG_COUNT_24H(                                                        \
	    "auth.locked",                                                                                     \
	    "") ", 'problem', problem, 'totp_double_use', dbl, 'cert_expiring', cert,"                         \
		" 'failing', (SELECT coalesce(json_agg(" PG_CHECK_JSON                                         \
		") ORDER BY c.check_id), '[]')"                                                                \
		" FROM checks c WHERE c.tid = w.id AND c.status IN ('fail', 'error')),"                        \
		" 'usb_blocked_24h', " PG_COUNT_24H("usb.blocked", "") ", 'auth_failures_24h', " PG_COUNT_24H( \
		    "auth.failure",                                                                            \
		    " AND coalesce((e.data::jsonb #> '{sender,unprivileged}')"                                 \
		    " NOT IN ('true'::jsonb, '1'::jsonb), true)") ", 'status', (ARRAY['noncompliant', 'compliant', 'unknown'])[st + 1])::text"

struct pg_view_params {
	struct i64text from, to, now, interval, drift;
};

static void view_params(const struct store_view *v, struct pg_view_params *t, const char **vals)
{
	t->from = i64(v->now_ms - 86400 * 1000LL);
	t->to = i64(v->now_ms + 86400 * 1000LL);
	t->now = i64(v->now_ms);
	t->interval = i64(v->default_interval_ms);
	t->drift = i64(v->drift_ms);
	vals[0] = t->from.s;
	vals[1] = t->to.s;
	vals[2] = t->now.s;
	vals[3] = t->interval.s;
	vals[4] = t->drift.s;
	vals[5] = v->cert_expiring ? v->cert_expiring : "[]";
}

/* $7: the LIKE pattern (NULL: any), $8: a failing check id (NULL: any) */
static const char *pg_filter_sql(const struct store_terminal_query *q)
{
	static const char *const status_sql[_STORE_STATUS_MAX] = {
	    [STORE_STATUS_ALL] = "true",	 [STORE_STATUS_NONCOMPLIANT] = "st = 0",
	    [STORE_STATUS_STALE] = "stale",	 [STORE_STATUS_PROBLEM] = "problem",
	    [STORE_STATUS_COMPLIANT] = "st = 1", [STORE_STATUS_UNKNOWN] = "st = 2",
	};
	return status_sql[q->status];
}

#define PG_SEARCH_SQL                                                                              \
	" AND ($7::text IS NULL OR name LIKE $7 ESCAPE '\\' OR coalesce(description, '') LIKE $7"  \
	" ESCAPE '\\') AND ($8::text IS NULL OR id IN (SELECT tid FROM checks WHERE"               \
	" check_id = $8 AND status IN ('fail', 'error')))"                                         \
	" AND ($9::text IS NULL OR id IN (SELECT tid FROM clause_terminal_days"                    \
	" WHERE day = $10::bigint AND clause = $9 AND status = 2))"

int store_pg_terminals_json(struct store_pg *p, const struct store_view *v,
			    const struct store_terminal_query *q, json_t **ret)
{
	static const char *const sort_sql[_STORE_SORT_MAX] = {
	    [STORE_SORT_PROBLEM] = "rank",
	    [STORE_SORT_NAME] = "name",
	    [STORE_SORT_STATUS] = "st",
	    [STORE_SORT_LAST_SEEN] = "last_seen",
	    [STORE_SORT_FAILING] = "n_failing",
	    [STORE_SORT_GAPS] = "gaps_all",
	    [STORE_SORT_DESCRIPTION] = "coalesce(description, '')",
	};
	_cleanup_pgresult_ PGresult *sum = NULL, *page = NULL, *matched = NULL;
	struct pg_view_params t;
	char pattern[2 * sizeof(q->search) + 3], *pp = pattern, sql[8192];
	struct i64text lim = i64(q->limit), off = i64(q->offset), day = i64(q->clause_day);
	const char *vals[12];
	json_t *list, *o;
	int r = 0;

	view_params(v, &t, vals);
	if (q->search[0]) {
		*pp++ = '%';
		for (const char *c = q->search; *c; c++) {
			if (*c == '%' || *c == '_' || *c == '\\')
				*pp++ = '\\';
			*pp++ = *c;
		}
		*pp++ = '%';
		*pp = 0;
	}
	vals[6] = q->search[0] ? pattern : NULL;
	vals[7] = q->check[0] ? q->check : NULL;
	vals[8] = q->clause[0] ? q->clause : NULL;
	vals[9] = day.s;
	vals[10] = q->limit ? lim.s : NULL;
	vals[11] = off.s;

	sum = pq(p,
		 PG_TERMINAL_VIEW "SELECT count(*), count(*) FILTER (WHERE st = 1),"
				  " count(*) FILTER (WHERE st = 0), count(*) FILTER (WHERE st = 2),"
				  " count(*) FILTER (WHERE stale), count(*) FILTER (WHERE problem)"
				  " FROM w",
		 6, vals, &r);
	if (!sum)
		return r;
	if (snprintf(sql, sizeof(sql),
		     PG_TERMINAL_VIEW "SELECT count(*) FROM w WHERE %s" PG_SEARCH_SQL,
		     pg_filter_sql(q)) >= (int)sizeof(sql))
		return -E2BIG;
	matched = pq(p, sql, 10, vals, &r);
	if (!matched)
		return r;
	/* in two steps, as store.c: the page's rows sorted and cut first (a subquery with a LIMIT
	 * is never merged into the outer query), then the JSON, with its counts over events, of
	 * only those rows, sorted again in the same order (name is unique: the order is total) */
	const char *dir = q->desc ? "DESC" : "ASC",
		   *name_dir = q->sort == STORE_SORT_NAME && q->desc ? "DESC" : "ASC";
	if (snprintf(sql, sizeof(sql),
		     PG_TERMINAL_VIEW
		     "SELECT " PG_TERMINAL_JSON " FROM (SELECT * FROM w WHERE %s" PG_SEARCH_SQL
		     " ORDER BY %s %s, name %s LIMIT $11::bigint OFFSET $12::bigint) w"
		     " ORDER BY %s %s, name %s",
		     pg_filter_sql(q), sort_sql[q->sort], dir, name_dir, sort_sql[q->sort], dir,
		     name_dir) >= (int)sizeof(sql))
		return -E2BIG;
	page = pq(p, sql, 12, vals, &r);
	if (!page)
		return r;
	list = json_array();
	for (int i = 0; i < PQntuples(page); i++)
		json_array_append_new(list, col_json(page, i, 0));
	o = json_object();
	char now[32];
	event_format_ts(v->now_ms, now);
	json_object_set_new(o, "generated_at", json_string(now));
	json_object_set_new(
	    o, "summary",
	    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "total", (json_int_t)col_i64(sum, 0, 0),
		      "compliant", (json_int_t)col_i64(sum, 0, 1), "noncompliant",
		      (json_int_t)col_i64(sum, 0, 2), "unknown", (json_int_t)col_i64(sum, 0, 3),
		      "stale", (json_int_t)col_i64(sum, 0, 4), "problem",
		      (json_int_t)col_i64(sum, 0, 5)));
	json_object_set_new(o, "matched", json_integer(col_i64(matched, 0, 0)));
	json_object_set_new(o, "offset", json_integer(q->offset));
	json_object_set_new(o, "limit", json_integer(q->limit));
	json_object_set_new(o, "terminals", list);
	*ret = o;
	return 0;
}

#define PG_EVENT_JSON                                                                              \
	"json_build_object('cursor', e.id::text, 'terminal', t.name, 'seq', e.seq, 'ts',"          \
	" mg_ts(e.ts), 'received_at', mg_ts(e.received_at), 'kind', e.kind, 'clause',"             \
	" e.clause::json, 'data', e.data::json)::text"

int store_pg_terminal_json(struct store_pg *p, const struct store_view *v, const char *id,
			   unsigned recent, json_t **ret)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	struct pg_view_params t;
	struct i64text n = i64(recent);
	const char *vals[8];
	int r = 0;

	view_params(v, &t, vals);
	vals[6] = id;
	vals[7] = n.s;
	res = pq(
	    p,
	    PG_TERMINAL_VIEW
	    "SELECT " PG_TERMINAL_JSON ","
	    " (SELECT coalesce(json_agg(" PG_CHECK_JSON ", 'updated_at', mg_ts(c.updated_at))"
	    " ORDER BY c.check_id), '[]') FROM checks c WHERE c.tid = w.id)::text,"
	    " (SELECT coalesce(json_agg(json_build_object('first', g.first, 'last', g.last,"
	    " 'detected_at', mg_ts(g.detected_at), 'announced', g.announced <> 0)"
	    " ORDER BY g.first DESC), '[]') FROM (SELECT * FROM gaps WHERE tid = w.id"
	    " ORDER BY first DESC LIMIT 100) g)::text,"
	    " (SELECT coalesce(json_agg(j ORDER BY seq DESC), '[]') FROM (SELECT e.seq, " PG_EVENT_JSON
	    "::json AS j FROM events e JOIN terminals t ON t.id = e.tid"
	    " WHERE e.tid = w.id AND e.body IS NULL ORDER BY e.seq DESC LIMIT $8::bigint) x)"
	    "::text FROM w WHERE name = $7",
	    8, vals, &r);
	if (!res)
		return r;
	if (PQntuples(res) == 0)
		return -ENOENT;
	json_t *o = col_json(res, 0, 0);
	if (!o)
		return -EIO;
	json_object_set_new(o, "checks", col_json(res, 0, 1));
	json_object_set_new(o, "gap_list", col_json(res, 0, 2));
	json_object_set_new(o, "recent_events", col_json(res, 0, 3));
	*ret = o;
	return 0;
}

/* The columns: 0 id, 1 JSON, 2 terminal, 3 seq, 4 ts, 5 received, 6 kind, 7 clause, 8 data */
static PGresult *events_query(struct store_pg *p, const struct store_filter *f, int *err)
{
	char sql[1024], where[512] = "";
	const char *vals[8];
	struct i64text a = i64((int64_t)f->after), bt = i64(f->before_ts),
		       bi = i64((int64_t)f->before_id), since = i64(f->since_ms),
		       until = i64(f->until_ms), lim = i64(f->limit), mark = {"0"};
	int64_t safe = 0;
	int n = 0;
	size_t w = 0;

	if (!f->newest) { /* the cursor by id: not past a row that may still commit */
		*err = cursor_mark(p, PG_CURSOR_READ_WAIT, &safe);
		if (*err == -EBUSY) /* nothing past the cursor yet: the client asks again */
			*err = 0, safe = 0;
		if (*err < 0)
			return NULL;
		mark = i64(safe);
	}

#define ADD(fmt, val)                                                                              \
	do {                                                                                       \
		vals[n++] = (val);                                                                 \
		w += (size_t)snprintf(where + w, sizeof(where) - w, fmt, n);                       \
	} while (0)
	if (!f->newest) {
		ADD(" AND e.id > $%d::bigint", a.s);
		ADD(" AND e.id <= $%d::bigint", mark.s);
	} else if (f->before_id) {
		ADD(" AND e.ts <= $%d::bigint", bt.s);
		w += (size_t)snprintf(where + w, sizeof(where) - w,
				      " AND (e.ts < $%d::bigint OR e.id < $%d::bigint)", n, n + 1);
		vals[n++] = bi.s;
	}
	if (f->terminal[0])
		ADD(" AND t.name = $%d", f->terminal);
	if (f->group[0]) /* the fleet's groups (schema step 4), by tid as on SQLite */
		ADD(" AND e.tid IN (SELECT t2.id FROM fleet_members m JOIN terminals t2"
		    " ON t2.name = m.terminal WHERE m.grp = $%d)",
		    f->group);
	if (f->kind >= 0)
		ADD(" AND e.kind = $%d", event_kind_name((enum event_kind)f->kind));
	if (f->since_ms != INT64_MIN)
		ADD(" AND e.ts >= $%d::bigint", since.s);
	if (f->until_ms != INT64_MAX)
		ADD(" AND e.ts < $%d::bigint", until.s);
#undef ADD
	vals[n++] = lim.s;
	snprintf(sql, sizeof(sql),
		 "SELECT e.id, " PG_EVENT_JSON ", t.name, e.seq, e.ts, e.received_at, e.kind,"
		 " e.clause, e.data FROM events e JOIN terminals t ON t.id = e.tid"
		 " WHERE e.body IS NULL%s ORDER BY %s LIMIT $%d::bigint",
		 where, f->newest ? "e.ts DESC, e.id DESC" : "e.id", n);
	return pq(p, sql, n, vals, err);
}

int store_pg_events_json(struct store_pg *p, const struct store_filter *f, json_t **ret)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	json_t *arr, *o;
	int r = 0, n;

	res = events_query(p, f, &r);
	if (!res)
		return r;
	n = PQntuples(res);
	arr = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, col_json(res, i, 1));
	o = json_object();
	json_object_set_new(o, "events", arr);
	if ((unsigned)n == f->limit && n > 0) {
		char cursor[48];
		if (f->newest)
			snprintf(cursor, sizeof(cursor), "%" PRId64 ".%" PRId64,
				 col_i64(res, n - 1, 4), col_i64(res, n - 1, 0));
		else
			snprintf(cursor, sizeof(cursor), "%" PRId64, col_i64(res, n - 1, 0));
		json_object_set_new(o, "next", json_string(cursor));
	} else
		json_object_set_new(o, "next", json_null());
	*ret = o;
	return 0;
}

int store_pg_events_foreach(struct store_pg *p, const struct store_filter *f,
			    int (*fn)(const struct store_row *row, void *userdata), void *userdata,
			    uint64_t *ret_last)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	uint64_t last = 0;
	int r = 0;

	res = events_query(p, f, &r);
	if (!res)
		return r;
	for (int i = 0; i < PQntuples(res); i++) {
		struct store_row row = {
		    .id = (uint64_t)col_i64(res, i, 0),
		    .terminal = PQgetvalue(res, i, 2),
		    .seq = (uint64_t)col_i64(res, i, 3),
		    .ts_ms = col_i64(res, i, 4),
		    .received_ms = col_i64(res, i, 5),
		    .kind = PQgetvalue(res, i, 6),
		    .clause = PQgetvalue(res, i, 7),
		    .data = PQgetvalue(res, i, 8),
		};
		r = fn(&row, userdata);
		if (r < 0)
			return r;
		last = row.id;
	}
	*ret_last = last;
	return 0;
}

int store_pg_stats(struct store_pg *p, const struct store_view *v, struct store_stats *ret)
{
	_cleanup_pgresult_ PGresult *res = NULL, *oldest = NULL;
	struct pg_view_params t;
	const char *vals[6];
	int r = 0;

	view_params(v, &t, vals);
	res = pq(p,
		 PG_TERMINAL_VIEW "SELECT count(*), count(*) FILTER (WHERE st = 1),"
				  " count(*) FILTER (WHERE st = 0), count(*) FILTER (WHERE st = 2),"
				  " count(*) FILTER (WHERE stale),"
				  " coalesce((SELECT max(id) - min(id) + 1 FROM events), 0),"
				  " (SELECT count(*) FROM gaps) FROM w",
		 6, vals, &r);
	if (!res)
		return r;
	*ret = (struct store_stats){
	    .terminals = (uint64_t)col_i64(res, 0, 0),
	    .compliant = (uint64_t)col_i64(res, 0, 1),
	    .noncompliant = (uint64_t)col_i64(res, 0, 2),
	    .unknown = (uint64_t)col_i64(res, 0, 3),
	    .stale = (uint64_t)col_i64(res, 0, 4),
	    .events = (uint64_t)col_i64(res, 0, 5),
	    .gaps = (uint64_t)col_i64(res, 0, 6),
	};
	for (int k = 0; k < _EVENT_KIND_MAX; k++) {
		const char *kv[] = {event_kind_name((enum event_kind)k)};
		ret->oldest_ms[k] = INT64_MIN;
		oldest =
		    pq(p, "SELECT min(received_at) FROM events WHERE kind = $1 AND body IS NULL", 1,
		       kv, &r);
		if (!oldest)
			return r;
		if (PQntuples(oldest) == 1 && !PQgetisnull(oldest, 0, 0))
			ret->oldest_ms[k] = col_i64(oldest, 0, 0);
		PQclear(oldest);
		oldest = NULL;
	}
	return 0;
}

/* ---- the daily history's and the alert thread's reads (store.c builds the JSON) ---- */

int store_pg_history_rows(struct store_pg *p, const char *terminal, int64_t from, int64_t to,
			  int (*check)(void *u, const char *id, const char *clause),
			  int (*day)(void *u, const char *id, int64_t day, int status), void *u)
{
	_cleanup_pgresult_ PGresult *t = NULL, *checks = NULL, *days = NULL;
	struct i64text f = i64(from), l = i64(to);
	const char *v[] = {terminal};
	int r = 0;

	t = pq(p, "SELECT id FROM terminals WHERE name = $1", 1, v, &r);
	if (!t)
		return r;
	if (PQntuples(t) != 1)
		return -ENOENT;
	const char *tv[] = {PQgetvalue(t, 0, 0), f.s, l.s};
	checks = pq(
	    p, "SELECT check_id, clause FROM checks WHERE tid = $1 ORDER BY check_id COLLATE \"C\"",
	    1, tv, &r);
	if (!checks)
		return r;
	for (int i = 0; r >= 0 && i < PQntuples(checks); i++)
		r = check(u, PQgetvalue(checks, i, 0), PQgetvalue(checks, i, 1));
	if (r < 0)
		return r;
	days = pq(p,
		  "SELECT check_id, day, status FROM check_days WHERE tid = $1"
		  " AND day >= $2 AND day <= $3 ORDER BY day, check_id COLLATE \"C\"",
		  3, tv, &r);
	if (!days)
		return r;
	for (int i = 0; r >= 0 && i < PQntuples(days); i++)
		r = day(u, PQgetvalue(days, i, 0), col_i64(days, i, 1), (int)col_i64(days, i, 2));
	return r;
}

int store_pg_clause_rows(struct store_pg *p, int64_t from, int64_t to,
			 int (*fn)(void *u, int64_t day, const char *clause, int64_t reporting,
				   int64_t failing),
			 void *u, int64_t *ret_terminals)
{
	_cleanup_pgresult_ PGresult *res = NULL, *n = NULL;
	struct i64text f = i64(from), l = i64(to);
	const char *v[] = {f.s, l.s};
	int r = 0;

	res = pq(p,
		 "SELECT day, clause, reporting, failing FROM clause_days"
		 " WHERE day >= $1 AND day <= $2 ORDER BY clause COLLATE \"C\", day",
		 2, v, &r);
	if (!res)
		return r;
	for (int i = 0; r >= 0 && i < PQntuples(res); i++)
		r = fn(u, col_i64(res, i, 0), PQgetvalue(res, i, 1), col_i64(res, i, 2),
		       col_i64(res, i, 3));
	if (r < 0)
		return r;
	n = pq(p, "SELECT count(*) FROM terminals", 0, NULL, &r);
	if (!n)
		return r;
	*ret_terminals = col_i64(n, 0, 0);
	return 0;
}

int store_pg_kind_rows(struct store_pg *p, const char *kind, int64_t from, int64_t to, unsigned top,
		       int (*day)(void *u, int64_t day, int64_t n),
		       int (*best)(void *u, const char *terminal, int64_t n), void *u)
{
	_cleanup_pgresult_ PGresult *res = NULL, *tops = NULL;
	struct i64text f = i64(from), l = i64(to), lim = i64(top);
	const char *v[] = {kind, f.s, l.s, lim.s};
	int r = 0;

	res = pq(p, "SELECT day, n FROM kind_totals WHERE kind = $1 AND day >= $2 AND day <= $3", 3,
		 v, &r);
	if (!res)
		return r;
	for (int i = 0; r >= 0 && i < PQntuples(res); i++)
		r = day(u, col_i64(res, i, 0), col_i64(res, i, 1));
	if (r < 0 || top == 0)
		return r;
	tops = pq(p,
		  "SELECT t.name, x.n FROM (SELECT tid, sum(n) AS n FROM kind_days"
		  " WHERE kind = $1 AND day >= $2 AND day <= $3 GROUP BY tid"
		  " ORDER BY n DESC, tid LIMIT $4::bigint) x JOIN terminals t ON t.id = x.tid"
		  " ORDER BY x.n DESC, t.name COLLATE \"C\"",
		  4, v, &r);
	if (!tops)
		return r;
	for (int i = 0; r >= 0 && i < PQntuples(tops); i++)
		r = best(u, PQgetvalue(tops, i, 0), col_i64(tops, i, 1));
	return r;
}

static const char *col_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static bool col_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

/* By the dashboard list's definitions (PG_TERMINAL_VIEW), as store.c's store_alert_scan(). */
int store_pg_alert_scan(struct store_pg *p, const struct store_view *v,
			int (*fn)(const struct store_alert_row *row, void *arg), void *arg)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	struct pg_view_params t;
	const char *vals[6];
	int r = 0;

	view_params(v, &t, vals);
	res = pq(
	    p,
	    PG_TERMINAL_VIEW
	    "SELECT w.name, w.description, w.st = 0, w.stale, w.last_seen,"
	    " coalesce(w.report_interval, $4::bigint), CASE WHEN w.locked THEN t.locked_at END,"
	    " CASE WHEN w.locked THEN (SELECT e.data::json ->> 'user' FROM events e"
	    "  WHERE e.tid = w.id AND e.kind = 'auth.locked' AND e.ts = t.locked_at"
	    "  AND e.body IS NULL LIMIT 1) END,"
	    " w.gaps_un,"
	    " CASE WHEN w.st = 0 THEN (SELECT string_agg(c.check_id, ' ' ORDER BY c.check_id"
	    "  COLLATE \"C\") FROM checks c WHERE c.tid = w.id AND c.status IN ('fail', 'error'))"
	    " END FROM w JOIN terminals t ON t.id = w.id"
	    " WHERE w.st = 0 OR w.stale OR w.locked OR w.gaps_un > 0 ORDER BY w.name COLLATE \"C\"",
	    6, vals, &r);
	if (!res)
		return r;
	for (int i = 0; i < PQntuples(res); i++) {
		struct store_alert_row row = {
		    .terminal = PQgetvalue(res, i, 0),
		    .description = col_text(res, i, 1),
		    .noncompliant = col_bool(res, i, 2),
		    .stale = col_bool(res, i, 3),
		    .last_seen_ms = col_i64(res, i, 4),
		    .interval_ms = col_i64(res, i, 5),
		    .locked_at_ms = col_i64(res, i, 6),
		    .locked_user = col_text(res, i, 7),
		    .gaps_unannounced = (uint64_t)col_i64(res, i, 8),
		    .failing = col_text(res, i, 9),
		};
		r = fn(&row, arg);
		if (r < 0)
			return r;
	}
	return 0;
}

int store_pg_totp_double_scan(struct store_pg *p, const struct store_view *v, const char *self,
			      int (*fn)(const struct store_totp_double *d, void *arg), void *arg)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	struct i64text from = i64(v->now_ms - 86400 * 1000LL), to = i64(v->now_ms + 86400 * 1000LL);
	const char *vals[] = {self, from.s, to.s};
	int r = 0;

	res = pq(
	    p,
	    "SELECT e.data::json ->> 'user', e.data::json ->> 'step',"
	    " e.data::json -> 'terminals' ->> 0, e.data::json -> 'terminals' ->> 1, e.ts"
	    " FROM events e JOIN terminals c ON c.id = e.tid AND c.name = $1"
	    " WHERE e.kind = 'fleet.totp' AND e.ts >= $2::bigint AND e.ts < $3::bigint"
	    " AND e.body IS NULL AND e.data::json ->> 'action' = 'double_use' " PG_TOTP_DOUBLE_IN_FORCE
	    " ORDER BY e.id",
	    3, vals, &r);
	if (!res)
		return r;
	for (int i = 0; i < PQntuples(res); i++) {
		struct store_totp_double d = {
		    .user = col_text(res, i, 0),
		    .step = PQgetisnull(res, i, 1) ? 0 : strtoull(PQgetvalue(res, i, 1), NULL, 10),
		    .first = col_text(res, i, 2),
		    .second = col_text(res, i, 3),
		    .ts_ms = col_i64(res, i, 4),
		};
		if (!d.user || !d.first || !d.second)
			continue; /* not one the collector wrote */
		r = fn(&d, arg);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- tamper evidence (docs/evidence.md): the same walk as SQLite's (store-verify.c) ---- */

static int verify_terminal(struct store_pg *p, const char *tid, const char *name,
			   const PGresult *term, int trow, const struct store_verify_opts *o,
			   struct store_verify *v)
{
	_cleanup_pgresult_ PGresult *anchor = NULL, *rows = NULL;
	uint8_t a[STORE_CHAIN_LEN], head[STORE_CHAIN_LEN];
	struct verify_walk w;
	const char *vals[] = {tid};
	bool has_head;
	int r = 0;

	anchor = pq(p, "SELECT chain FROM chain_anchors WHERE tid = $1", 1, vals, &r);
	if (!anchor)
		return r;
	if (PQntuples(anchor) == 1)
		verify_walk_start(&w, o, v, name, a,
				  col_link(anchor, 0, 0, a) ? STORE_CHAIN_LEN : 0);
	else
		verify_walk_start(&w, o, v, name, NULL, 0);
	rows = pq(p,
		  "SELECT seq, ts, received_at, kind, clause, data, chain, body FROM events"
		  " WHERE tid = $1 ORDER BY id",
		  1, vals, &r);
	if (!rows)
		return r;
	for (int i = 0; i < PQntuples(rows); i++) {
		uint8_t link[STORE_CHAIN_LEN], body[STORE_CHAIN_LEN];
		bool tombstone = !PQgetisnull(rows, i, 7);
		bool body_ok = tombstone && col_link(rows, i, 7, body);
		bool link_ok = col_link(rows, i, 6, link);
		r = verify_walk_row(&w, p->md, (uint64_t)col_i64(rows, i, 0), col_i64(rows, i, 1),
				    col_i64(rows, i, 2), PQgetvalue(rows, i, 3),
				    PQgetvalue(rows, i, 4), (size_t)PQgetlength(rows, i, 4),
				    PQgetvalue(rows, i, 5), (size_t)PQgetlength(rows, i, 5),
				    tombstone ? body : NULL, body_ok ? STORE_CHAIN_LEN : 0,
				    link_ok ? link : NULL, link_ok ? STORE_CHAIN_LEN : 0);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	has_head = col_link(term, trow, 2, head);
	verify_walk_end(&w, has_head ? head : NULL, has_head ? STORE_CHAIN_LEN : 0);
	return 0;
}

int store_pg_verify(struct store_pg *p, const struct store_verify_opts *o, struct store_verify *ret)
{
	_cleanup_pgresult_ PGresult *terms = NULL;
	struct store_verify v = {0};
	const char *vals[] = {o->terminal};
	int r = 0, n;

	for (size_t i = 0; i < o->n_expect; i++)
		o->expect[i].seen = false;
	/* one snapshot while the writers go on */
	r = pq_do(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
	if (r < 0)
		return r;
	terms =
	    o->terminal
		? pq(p, "SELECT id, name, chain_head FROM terminals WHERE name = $1", 1, vals, &r)
		: pq(p, "SELECT id, name, chain_head FROM terminals ORDER BY name", 0, NULL, &r);
	if (!terms)
		goto out;
	n = PQntuples(terms);
	if (o->collect) {
		v.heads = calloc(n > 0 ? (size_t)n : 1, sizeof(*v.heads));
		if (!v.heads) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (int i = 0; i < n && !v.broken; i++) {
		v.terminals++;
		r = verify_terminal(p, PQgetvalue(terms, i, 0), PQgetvalue(terms, i, 1), terms, i,
				    o, &v);
		if (r < 0)
			goto out;
	}
	if (o->terminal && v.terminals == 0)
		r = -ENOENT;
	else if (!o->terminal)
		verify_walk_missing(o, &v);
out:
	pq_do(p, "COMMIT", 0, NULL);
	if (r < 0) {
		store_verify_done(&v);
		return r;
	}
	*ret = v;
	return 0;
}

int store_pg_signed_heads_put(struct store_pg *p, int64_t at_ms, const char *body,
			      const uint8_t *sig, size_t sig_len, unsigned keep)
{
	_cleanup_free_ char *hex = malloc(2 * sig_len + 3);
	struct i64text at = i64(at_ms), k = i64(keep);
	int r;

	if (!hex)
		return -ENOMEM;
	hex_param(sig, sig_len, hex);
	const char *ins[] = {at.s, body, hex}, *prune[] = {k.s};
	r = store_pg_begin(p);
	if (r < 0)
		return r;
	r = pq_do(p, "INSERT INTO signed_heads (at, body, signature) VALUES ($1, $2, $3)", 3, ins);
	if (r >= 0)
		r = pq_do(p,
			  "DELETE FROM signed_heads WHERE id <= (SELECT max(id) FROM signed_heads)"
			  " - $1::bigint",
			  1, prune);
	if (r < 0) {
		store_pg_rollback(p);
		return r;
	}
	return store_pg_commit(p);
}

int store_pg_signed_heads_last(struct store_pg *p, int64_t *ret_at, char **ret_body,
			       uint8_t **ret_sig, size_t *ret_sig_len)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	_cleanup_free_ char *body = NULL;
	uint8_t *sig;
	size_t n;
	int r = 0;

	res = pq(p, "SELECT at, body, signature FROM signed_heads ORDER BY id DESC LIMIT 1", 0,
		 NULL, &r);
	if (!res)
		return r;
	if (PQntuples(res) == 0)
		return -ENOENT;
	body = strdup(PQgetvalue(res, 0, 1));
	sig = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 2), &n);
	if (!body || !sig) {
		PQfreemem(sig);
		return -ENOMEM;
	}
	*ret_sig = malloc(n ? n : 1);
	if (!*ret_sig) {
		PQfreemem(sig);
		return -ENOMEM;
	}
	memcpy(*ret_sig, sig, n);
	PQfreemem(sig);
	*ret_at = col_i64(res, 0, 0);
	*ret_body = TAKE_PTR(body);
	*ret_sig_len = n;
	return 0;
}

/* ---- retention by kind (docs/evidence.md): the same tombstones and anchors as store.c; a month
 * partition whose every event is past its kind's period is dropped instead of deleted row by
 * row ---- */

/* pg_advisory_xact_lock key of a retention round ("mgrt"): one at a time, like SQLite's lock */
#define PG_RETENTION_LOCK "1835495028"

/* The policy as array parameters: $1 kinds with a period (text[]), $2 their cutoffs (bigint[]),
 * $3 the held terminals (text[]). */
struct pg_policy {
	char *kinds, *cutoffs, *held;
};

static void pg_policy_done(struct pg_policy *q)
{
	free(q->kinds);
	free(q->cutoffs);
	free(q->held);
}

/* {"a","b"}: every element quoted, '"' and '\' escaped */
static char *text_array(const char *const *v, size_t n)
{
	size_t len = 3;
	char *out, *o;

	for (size_t i = 0; i < n; i++)
		len += 2 * strlen(v[i]) + 3;
	out = malloc(len);
	if (!out)
		return NULL;
	o = out;
	*o++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*o++ = ',';
		*o++ = '"';
		for (const char *c = v[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				*o++ = '\\';
			*o++ = *c;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

static int pg_policy_make(const struct store_retention_policy *p, struct pg_policy *q)
{
	const char *names[_EVENT_KIND_MAX];
	size_t n = 0, len = 3, off;

	*q = (struct pg_policy){0};
	for (int k = 0; k < _EVENT_KIND_MAX; k++)
		if (p->cutoff_ms[k] != INT64_MIN) {
			names[n++] = event_kind_name((enum event_kind)k);
			len += 22;
		}
	q->kinds = text_array(names, n);
	q->held = text_array(p->hold, p->n_hold);
	q->cutoffs = malloc(len);
	if (!q->kinds || !q->held || !q->cutoffs) {
		pg_policy_done(q);
		return -ENOMEM;
	}
	off = (size_t)snprintf(q->cutoffs, len, "{");
	for (int k = 0, i = 0; k < _EVENT_KIND_MAX; k++)
		if (p->cutoff_ms[k] != INT64_MIN)
			off += (size_t)snprintf(q->cutoffs + off, len - off, "%s%" PRId64,
						i++ ? "," : "", p->cutoff_ms[k]);
	snprintf(q->cutoffs + off, len - off, "}");
	return 0;
}

/* An event the policy keeps: not yet a tombstone, and its kind has no period or it is younger */
#define PG_POLICY_CTE "WITH c(kind, cutoff) AS (SELECT * FROM unnest($1::text[], $2::bigint[])) "
#define PG_KEPT(e)                                                                                 \
	e ".body IS NULL AND NOT EXISTS (SELECT 1 FROM c WHERE c.kind = " e ".kind AND " e         \
	  ".received_at < c.cutoff)"
#define PG_HELD(e) e ".tid IN (SELECT id FROM terminals WHERE name = ANY($3::text[]))"

static bool partition_name_ok(const char *name)
{
	if (strlen(name) != strlen("events_p") + 6 || strncmp(name, "events_p", 8) != 0)
		return false;
	for (const char *c = name + 8; *c; c++)
		if (*c < '0' || *c > '9')
			return false;
	return true;
}

/* True when partition name can go whole: it holds events, none of a held terminal, none that
 * the policy keeps, and for each of its terminals every event stored before its last one there
 * (in any partition) may be disposed of too, so that the drop removes a leading run of the
 * chain and the anchor takes its place. */
static int partition_droppable(struct store_pg *p, const struct pg_policy *q, const char *name,
			       bool *ret)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	const char *v[] = {q->kinds, q->cutoffs, q->held};
	char sql[1024];
	int r = 0;

	snprintf(sql, sizeof(sql),
		 PG_POLICY_CTE "SELECT EXISTS (SELECT 1 FROM %s) AND NOT EXISTS (SELECT 1 FROM %s e"
			       " WHERE " PG_HELD("e") " OR (" PG_KEPT("e") "))",
		 name, name);
	res = pq(p, sql, 3, v, &r);
	if (!res)
		return r;
	*ret = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	if (!*ret)
		return 0;
	PQclear(res);
	snprintf(sql, sizeof(sql),
		 PG_POLICY_CTE ", m AS (SELECT tid, max(id) AS last FROM %s GROUP BY tid)"
			       " SELECT NOT EXISTS (SELECT 1 FROM m JOIN events e ON e.tid = m.tid"
			       " AND e.id < m.last WHERE " PG_KEPT("e") ")",
		 name);
	res = pq(p, sql, 2, v, &r);
	if (!res)
		return r;
	*ret = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	return 0;
}

/* Drops partition name when it can go whole (partition_droppable(), checked again under its
 * lock): each of its terminals' chains then starts at an anchor that holds the link of its last
 * event there, and the events stored before it elsewhere (expired or tombstones) are deleted. */
static int partition_drop(struct store_pg *p, const struct pg_policy *q, const char *name,
			  int64_t now_ms, unsigned *disposed, unsigned *done)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	struct i64text now = i64(now_ms);
	const char *vn[] = {now.s};
	char sql[1536];
	bool ok = false;
	int r;

	r = partition_droppable(p, q, name, &ok);
	if (r < 0 || !ok)
		return r;
	/* no writer adds to it meanwhile (a late event of that month waits, then makes it anew) */
	r = pq_do(p, "SELECT pg_advisory_xact_lock(" PG_DDL_LOCK ")", 0, NULL);
	if (r < 0)
		return r;
	snprintf(sql, sizeof(sql), "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", name);
	r = pq_do(p, sql, 0, NULL);
	if (r >= 0)
		r = partition_droppable(p, q, name, &ok);
	if (r < 0 || !ok)
		return r;
	/* the events whose content goes, and every row that goes */
	snprintf(sql, sizeof(sql),
		 "WITH m AS (SELECT tid, max(id) AS last FROM %s GROUP BY tid)"
		 " SELECT count(*) FILTER (WHERE e.body IS NULL), count(*) FROM m JOIN events e"
		 " ON e.tid = m.tid AND e.id <= m.last",
		 name);
	res = pq(p, sql, 0, NULL, &r);
	if (!res)
		return r;
	*disposed += (unsigned)col_i64(res, 0, 0);
	*done += (unsigned)col_i64(res, 0, 1);
	/* the anchor: the link of the terminal's last event in the partition; first_seq when the
	 * next one is kept (a tombstone next is folded in later by collapse) */
	snprintf(sql, sizeof(sql),
		 "WITH m AS (SELECT tid, max(id) AS last FROM %s GROUP BY tid)"
		 " INSERT INTO chain_anchors (tid, first_seq, chain, disposed, at)"
		 " SELECT m.tid, CASE WHEN nx.body IS NULL THEN nx.seq END,"
		 " coalesce((SELECT chain FROM %s l WHERE l.tid = m.tid AND l.id = m.last),"
		 " decode(repeat('00', %d), 'hex')),"
		 " (SELECT count(*) FROM events d WHERE d.tid = m.tid AND d.id <= m.last), $1"
		 " FROM m LEFT JOIN LATERAL (SELECT seq, body FROM events n WHERE n.tid = m.tid"
		 " AND n.id > m.last ORDER BY n.id LIMIT 1) nx ON true"
		 " ON CONFLICT (tid) DO UPDATE SET first_seq = excluded.first_seq,"
		 " chain = excluded.chain, disposed = chain_anchors.disposed + excluded.disposed,"
		 " at = excluded.at",
		 name, name, STORE_CHAIN_LEN);
	r = pq_do(p, sql, 1, vn);
	if (r < 0)
		return r;
	snprintf(sql, sizeof(sql),
		 "WITH m AS (SELECT tid, max(id) AS last FROM %s GROUP BY tid)"
		 " DELETE FROM events e USING m WHERE e.tid = m.tid AND e.id < m.last"
		 " AND e.tableoid <> '%s'::regclass",
		 name, name);
	r = pq_do(p, sql, 0, NULL);
	if (r < 0)
		return r;
	snprintf(sql, sizeof(sql), "DROP TABLE %s", name);
	r = pq_do(p, sql, 0, NULL);
	if (r < 0)
		return r;
	p->n_months = 0; /* its month is no longer there */
	return 0;
}

static int partitions_drop(struct store_pg *p, const struct pg_policy *q, int64_t now_ms,
			   unsigned limit, unsigned *disposed, unsigned *done)
{
	_cleanup_pgresult_ PGresult *parts = NULL;
	int r = 0;

	parts = pq(p,
		   "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
		   " WHERE i.inhparent = 'events'::regclass ORDER BY c.relname",
		   0, NULL, &r);
	if (!parts)
		return r;
	for (int i = 0; i < PQntuples(parts) && *done < limit; i++) {
		const char *name = PQgetvalue(parts, i, 0);
		if (!partition_name_ok(name))
			continue;
		r = partition_drop(p, q, name, now_ms, disposed, done);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Expired kept events of one kind become tombstones (store.c's dispose_kind()). */
static int dispose_kind(struct store_pg *p, const struct pg_policy *q, const char *kind,
			int64_t cutoff_ms, int64_t now_ms, unsigned budget, unsigned *done)
{
	_cleanup_pgresult_ PGresult *pick = NULL;
	_cleanup_free_ char *ids = NULL, *bodies = NULL;
	struct i64text cut = i64(cutoff_ms), lim = i64(budget), now = i64(now_ms);
	const char *v[] = {kind, cut.s, q->held, lim.s};
	size_t n, io = 0, bo = 0;
	int r = 0;

	pick = pq(p,
		  "SELECT id, clause, data FROM events WHERE kind = $1 AND received_at < $2"
		  " AND body IS NULL AND tid NOT IN (SELECT id FROM terminals"
		  " WHERE name = ANY($3::text[])) ORDER BY received_at LIMIT $4",
		  4, v, &r);
	if (!pick)
		return r;
	n = (size_t)PQntuples(pick);
	if (n == 0)
		return 0;
	ids = malloc(n * 22 + 3);
	bodies = malloc(n * (2 * STORE_CHAIN_LEN + 1) + 3);
	if (!ids || !bodies)
		return -ENOMEM;
	ids[io++] = '{';
	bodies[bo++] = '{';
	for (size_t i = 0; i < n; i++) {
		uint8_t body[STORE_CHAIN_LEN];
		char hex[2 * STORE_CHAIN_LEN + 3];

		r = chain_body(p->md, PQgetvalue(pick, (int)i, 1),
			       (size_t)PQgetlength(pick, (int)i, 1), PQgetvalue(pick, (int)i, 2),
			       (size_t)PQgetlength(pick, (int)i, 2), body);
		if (r < 0)
			return r;
		hex_param(body, STORE_CHAIN_LEN, hex);
		io += (size_t)sprintf(ids + io, "%s%s", i ? "," : "", PQgetvalue(pick, (int)i, 0));
		bo += (size_t)sprintf(bodies + bo, "%s%s", i ? "," : "", hex + 2);
	}
	strcpy(ids + io, "}");
	strcpy(bodies + bo, "}");
	const char *u[] = {ids, bodies, now.s};
	r = pq_do(p,
		  "UPDATE events e SET clause = '', data = '', body = decode(t.body, 'hex'),"
		  " disposed_at = $3 FROM unnest($1::bigint[], $2::text[]) t(id, body)"
		  " WHERE e.id = t.id",
		  3, u);
	if (r < 0)
		return r;
	*done += (unsigned)n;
	return 0;
}

/* A terminal's leading tombstones are deleted and replaced by the anchor (store.c's
 * collapse_terminal()). */
static int collapse_terminal(struct store_pg *p, const char *tid, int64_t now_ms, unsigned budget,
			     unsigned *done)
{
	_cleanup_pgresult_ PGresult *first = NULL, *lead = NULL;
	struct i64text lim = i64(budget), now = i64(now_ms);
	const char *v[] = {tid};
	uint8_t link[STORE_CHAIN_LEN];
	char hex[2 * STORE_CHAIN_LEN + 3];
	const char *first_live = "9223372036854775807";
	int n, r = 0;

	first =
	    pq(p, "SELECT id, seq FROM events WHERE tid = $1 AND body IS NULL ORDER BY id LIMIT 1",
	       1, v, &r);
	if (!first)
		return r;
	if (PQntuples(first) == 1)
		first_live = PQgetvalue(first, 0, 0);
	const char *vl[] = {tid, first_live, lim.s};
	lead = pq(p, "SELECT id, chain FROM events WHERE tid = $1 AND id < $2 ORDER BY id LIMIT $3",
		  3, vl, &r);
	if (!lead)
		return r;
	n = PQntuples(lead);
	if (n == 0)
		return 0;
	if (!col_link(lead, n - 1, 1, link))
		memset(link, 0, sizeof(link)); /* cannot match: verify names the next one */
	hex_param(link, STORE_CHAIN_LEN, hex);
	const char *vd[] = {tid, PQgetvalue(lead, n - 1, 0)};
	r = pq_do(p, "DELETE FROM events WHERE tid = $1 AND id <= $2", 2, vd);
	if (r < 0)
		return r;
	struct i64text cnt = i64(n);
	/* the first kept event, when the whole leading run went */
	bool finished = (unsigned)n < budget && PQntuples(first) == 1;
	const char *va[] = {tid, finished ? PQgetvalue(first, 0, 1) : NULL, hex, cnt.s, now.s};
	r = pq_do(p,
		  "INSERT INTO chain_anchors (tid, first_seq, chain, disposed, at)"
		  " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tid) DO UPDATE"
		  " SET first_seq = excluded.first_seq, chain = excluded.chain,"
		  " disposed = chain_anchors.disposed + excluded.disposed, at = excluded.at",
		  5, va);
	if (r < 0)
		return r;
	*done += (unsigned)n;
	return 0;
}

/* The terminals (not on hold) whose chain starts with a tombstone: no to-do table as SQLite's
 * chain_collapse, so a round cut short, or a store copied from SQLite, is found again. */
static int collapse(struct store_pg *p, const struct pg_policy *q, int64_t now_ms, unsigned budget,
		    unsigned *done)
{
	_cleanup_pgresult_ PGresult *tids = NULL;
	struct i64text lim = i64(budget);
	const char *v[] = {q->held, lim.s};
	int r = 0;

	tids = pq(p,
		  "SELECT t.id FROM terminals t WHERE t.name <> ALL($1::text[])"
		  " AND (SELECT e.body IS NOT NULL FROM events e WHERE e.tid = t.id"
		  " ORDER BY e.id LIMIT 1) ORDER BY t.id LIMIT $2",
		  2, v, &r);
	if (!tids)
		return r;
	/* a terminal left unfinished used up the budget: the next round goes on with it */
	for (int i = 0; i < PQntuples(tids) && *done < budget; i++) {
		r = collapse_terminal(p, PQgetvalue(tids, i, 0), now_ms, budget - *done, done);
		if (r < 0)
			return r;
	}
	return 0;
}

int store_pg_retention(struct store_pg *p, const struct store_retention_policy *policy,
		       int64_t now_ms, unsigned limit, unsigned *ret_disposed)
{
	struct pg_policy q;
	unsigned disposed = 0, done = 0;
	int r;

	if (limit == 0)
		return -EINVAL;
	r = pg_policy_make(policy, &q);
	if (r < 0)
		return r;
	r = store_pg_begin(p);
	if (r < 0) {
		pg_policy_done(&q);
		return r;
	}
	r = pq_do(p, "SELECT pg_advisory_xact_lock(" PG_RETENTION_LOCK ")", 0, NULL);
	if (r >= 0)
		r = partitions_drop(p, &q, now_ms, limit, &disposed, &done);
	for (int k = 0; r >= 0 && k < _EVENT_KIND_MAX && done < limit; k++)
		if (policy->cutoff_ms[k] != INT64_MIN) {
			unsigned n = 0;
			r = dispose_kind(p, &q, event_kind_name((enum event_kind)k),
					 policy->cutoff_ms[k], now_ms, limit - done, &n);
			disposed += n;
			done += n;
		}
	if (r >= 0 && done < limit)
		r = collapse(p, &q, now_ms, limit - done, &done);
	pg_policy_done(&q);
	if (r < 0) {
		store_pg_rollback(p);
		return r;
	}
	r = store_pg_commit(p);
	if (r < 0)
		return r;
	*ret_disposed = disposed;
	return done >= limit ? 1 : 0;
}

/* ---- migration from SQLite (store_migrate_to_pg(), store.c) ---- */

bool store_pg_url_has_password(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	bool password = false;

	if (!opts)
		return false; /* libpq refuses it anyway */
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
			password = true;
	PQconninfoFree(opts);
	return password;
}

int store_pg_copy_begin(struct store_pg *p)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	int r = store_pg_begin(p);

	if (r < 0)
		return r;
	/* into an empty store only: never merged into existing evidence */
	res = pq(p, "SELECT (SELECT count(*) FROM terminals) + (SELECT count(*) FROM signed_heads)",
		 0, NULL, &r);
	if (!res || col_i64(res, 0, 0) != 0) {
		store_pg_rollback(p);
		return res ? -ENOTEMPTY : r;
	}
	return 0;
}

int store_pg_copy_row(struct store_pg *p, const char *table, const char *columns, int n,
		      const char *const *vals)
{
	char sql[1024], *w = sql;
	size_t left = sizeof(sql);
	int k, r;

	if (strcmp(table, "events") == 0) {
		/* the partition of its ts; column 3 is ts (store.c's copy list) */
		r = partition_ensure(p, strtoll(vals[3], NULL, 10));
		if (r < 0)
			return r;
	}
	k = snprintf(w, left, "INSERT INTO %s (%s)%s VALUES (", table, columns,
		     strcmp(table, "events") == 0 ? " OVERRIDING SYSTEM VALUE" : "");
	for (int i = 0; i < n && k > 0 && (size_t)k < left; i++) {
		w += k;
		left -= (size_t)k;
		k = snprintf(w, left, "%s$%d", i ? ", " : "", i + 1);
	}
	if (k < 0 || (size_t)k >= left ||
	    snprintf(w + k, left - (size_t)k, ")") >= (int)(left - (size_t)k))
		return -ENAMETOOLONG;
	return pq_do(p, sql, n, vals);
}

/* The identities continue after the copied rows. */
int store_pg_copy_end(struct store_pg *p)
{
	int r = pq_do(p,
		      "SELECT setval(pg_get_serial_sequence('terminals', 'id'),"
		      " coalesce((SELECT max(id) FROM terminals), 0) + 1, false);"
		      "SELECT setval(pg_get_serial_sequence('events', 'id'),"
		      " coalesce((SELECT max(id) FROM events), 0) + 1, false);"
		      "SELECT setval(pg_get_serial_sequence('gaps', 'id'),"
		      " coalesce((SELECT max(id) FROM gaps), 0) + 1, false);"
		      "SELECT setval(pg_get_serial_sequence('signed_heads', 'id'),"
		      " coalesce((SELECT max(id) FROM signed_heads), 0) + 1, false)",
		      0, NULL);
	if (r < 0) {
		store_pg_rollback(p);
		return r;
	}
	return store_pg_commit(p);
}

/* ---- alerts: one sender among the collectors on one database (docs/alerts.md) ---- */

/* pg_advisory_lock key of the alert sender ("mgal"); a session lock: held while the connection
 * of the collector that took it lives */
#define PG_ALERT_LOCK "1835491692"

static const char pg_alert_tables[] =
    "BEGIN READ WRITE;"
    "SELECT pg_advisory_xact_lock(" PG_DDL_LOCK ");"
    /* a condition's deliveries: what any sender has sent, kept while the condition is open */
    "CREATE TABLE IF NOT EXISTS mg_alert_sent ("
    "  key text PRIMARY KEY,"
    "  mail integer NOT NULL,"
    "  webhook integer NOT NULL,"
    "  at bigint NOT NULL);"
    "CREATE TABLE IF NOT EXISTS mg_alert_digest ("
    "  id integer PRIMARY KEY CHECK (id = 1),"
    "  day text NOT NULL);"
    "COMMIT";

/* One statement in a read-write transaction (the alert thread's store is read-only). */
static int alert_rw(struct store_pg *p, const char *sql, int n, const char *const *vals)
{
	int r = pq_do(p, "BEGIN READ WRITE", 0, NULL);

	if (r >= 0)
		r = pq_do(p, sql, n, vals);
	if (r >= 0)
		r = pq_do(p, "COMMIT", 0, NULL);
	if (r < 0 && PQtransactionStatus(p->c) != PQTRANS_IDLE)
		pq_do(p, "ROLLBACK", 0, NULL);
	return r;
}

int store_pg_alert_leader(struct store_pg *p)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	int r = 0;

	res = pq(p, "SELECT to_regclass('mg_alert_digest') IS NOT NULL", 0, NULL, &r);
	if (!res)
		return r;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		r = pq_do(p, pg_alert_tables, 0, NULL);
		if (r < 0) {
			if (PQtransactionStatus(p->c) != PQTRANS_IDLE)
				pq_do(p, "ROLLBACK", 0, NULL);
			return r;
		}
	}
	PQclear(res);
	/* held already (not taken twice: a session lock counts its takings), or free now */
	res = pq(p,
		 "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
		 " AND pid = pg_backend_pid() AND granted AND classid = 0"
		 " AND objid = " PG_ALERT_LOCK " AND objsubid = 1)"
		 " OR pg_try_advisory_lock(" PG_ALERT_LOCK ")",
		 0, NULL, &r);
	if (!res)
		return r;
	return strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? 1 : 0;
}

int store_pg_alert_sent_get(struct store_pg *p, const char *key, int *mail, int *hook)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	int r = 0;

	res = pq(p, "SELECT mail, webhook FROM mg_alert_sent WHERE key = $1", 1, &key, &r);
	if (!res)
		return r;
	if (PQntuples(res) == 0)
		return 0;
	*mail = (int)col_i64(res, 0, 0);
	*hook = (int)col_i64(res, 0, 1);
	return 1;
}

int store_pg_alert_sent_put(struct store_pg *p, const char *key, int mail, int hook, int64_t at)
{
	struct i64text m = i64(mail), h = i64(hook), t = i64(at);
	const char *vals[] = {key, m.s, h.s, t.s};

	return alert_rw(p,
			"INSERT INTO mg_alert_sent (key, mail, webhook, at) VALUES ($1, $2, $3, $4)"
			" ON CONFLICT (key) DO UPDATE SET"
			" mail = greatest(mg_alert_sent.mail, EXCLUDED.mail),"
			" webhook = greatest(mg_alert_sent.webhook, EXCLUDED.webhook), at = $4",
			4, vals);
}

int store_pg_alert_sent_keep(struct store_pg *p, const char *const *keys, size_t n)
{
	_cleanup_free_ char *arr = text_array(keys, n);
	const char *vals[] = {arr};

	if (!arr)
		return -ENOMEM;
	return alert_rw(p, "DELETE FROM mg_alert_sent WHERE NOT (key = ANY ($1::text[]))", 1, vals);
}

int store_pg_alert_digest_day(struct store_pg *p, char day[static 16])
{
	_cleanup_pgresult_ PGresult *res = NULL;
	int r = 0;

	day[0] = '\0';
	res = pq(p, "SELECT day FROM mg_alert_digest WHERE id = 1", 0, NULL, &r);
	if (!res)
		return r;
	if (PQntuples(res) == 1)
		snprintf(day, 16, "%s", PQgetvalue(res, 0, 0));
	return 0;
}

int store_pg_alert_digest_put(struct store_pg *p, const char *day)
{
	return alert_rw(p,
			"INSERT INTO mg_alert_digest (id, day) VALUES (1, $1)"
			" ON CONFLICT (id) DO UPDATE SET day = $1",
			1, &day);
}
