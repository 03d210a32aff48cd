/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the read-write SQL layer over SQLite and PostgreSQL (sqldb.h). */
#include "sqldb.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-pg.h"
#include "store.h"

/* pg_advisory_xact_lock key of sqldb's writers ("mgsq"), another than store-pg.c's DDL lock */
#define SQLDB_PG_LOCK "1835496305"
/* as SQLite's busy timeout (sqlite3_busy_timeout), ms */
#define SQLDB_LOCK_WAIT_MS  10000
#define SQLDB_LOCK_WAIT_TXT "10000"

#define PG_BYTEA_OID	    17
#define PG_INT8_OID	    20
#define PG_BOOL_OID	    16

struct sqldb {
	sqlite3 *lite;
	struct store_pg *pg;
	bool in_tx;
	int64_t changes; /* PostgreSQL: of the last INSERT, UPDATE or DELETE */
	char err[512];
};

struct sqldb_stmt {
	struct sqldb *db;
	sqlite3_stmt *lite;
	int64_t changes;
	/* PostgreSQL: the text with $N, the parameters, the result and the current row */
	char *sql;
	int nparams;
	char *vals[SQLDB_PARAMS_MAX];
	int lens[SQLDB_PARAMS_MAX];
	int formats[SQLDB_PARAMS_MAX];
	Oid types[SQLDB_PARAMS_MAX];
	PGresult *res;
	int row;      /* -1 before the first step */
	void **blobs; /* decoded bytea of the current row, per column (PQfreemem) */
	size_t *blob_lens;
};

static void set_err(struct sqldb *db, const char *msg)
{
	size_t n;

	snprintf(db->err, sizeof(db->err), "%s", msg ? msg : "");
	n = strlen(db->err);
	while (n > 0 && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
		db->err[--n] = 0;
}

/* ---- SQLite ---- */

static int lite_errno(struct sqldb *db, int rc)
{
	set_err(db, sqlite3_errmsg(db->lite));
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return -EEXIST;
	default:
		break;
	}
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return -EINVAL;
	return store_sqlite_errno(rc);
}

/* ---- PostgreSQL ---- */

static int pg_errno(struct sqldb *db, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	PGconn *c = store_pg_conn(db->pg, false);

	set_err(db, res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
							: PQerrorMessage(c));
	if (!state)
		return -EIO;
	if (strcmp(state, "23505") == 0)
		return -EEXIST;
	if (strncmp(state, "23", 2) == 0)
		return -EINVAL;
	/* serialization failure, deadlock, lock not available (lock_timeout) */
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0)
		return -EBUSY;
	return -EIO;
}

/* The connection; outside a transaction, a broken one (a server restart) is made again. */
static PGconn *pg_conn(struct sqldb *db)
{
	return store_pg_conn(db->pg, !db->in_tx);
}

static int pg_exec(struct sqldb *db, const char *sql)
{
	PGresult *res = PQexec(pg_conn(db), sql);
	ExecStatusType s = PQresultStatus(res);
	int r = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? 0 : pg_errno(db, res);

	PQclear(res);
	return r;
}

/* ?N → $N outside quotes, a bare ? numbered as SQLite does (one above the highest so far); the
 * highest N, or -EINVAL for an N out of range. A NULL out only checks; out has room for twice
 * sql's length. */
static int translate(const char *sql, char *out)
{
	char quote = 0;
	int max = 0;

	for (const char *p = sql; *p; p++) {
		char c = *p;
		if (quote) {
			if (c == quote)
				quote = 0;
		} else if (c == '\'' || c == '"') {
			quote = c;
		} else if (c == '?' && (p[1] < '0' || p[1] > '9')) {
			if (max >= SQLDB_PARAMS_MAX)
				return -EINVAL;
			max++;
			if (out)
				out += sprintf(out, "$%d", max);
			continue;
		} else if (c == '?') {
			long n = strtol(p + 1, NULL, 10);
			if (n < 1 || n > SQLDB_PARAMS_MAX)
				return -EINVAL;
			if (n > max)
				max = (int)n;
			c = '$';
		}
		if (out)
			*out++ = c;
	}
	if (out)
		*out = 0;
	return max;
}

/* ---- the connection ---- */

static void notice_ignore(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int sqldb_open(const char *location, struct sqldb **ret)
{
	const char *conninfo = store_pg_location(location);
	struct sqldb *db = calloc(1, sizeof(*db));
	int r = 0;

	if (!db)
		return -ENOMEM;
	if (conninfo) {
		r = store_pg_open(conninfo, true, &db->pg);
		/* NOTICEs (a DROP ... IF EXISTS of nothing) are not errors: not on stderr */
		if (r >= 0)
			PQsetNoticeProcessor(store_pg_conn(db->pg, false), notice_ignore, NULL);
	} else if (sqlite3_open_v2(location, &db->lite, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		r = -ENOENT;
	} else {
		sqlite3_extended_result_codes(db->lite, 1);
		sqlite3_busy_timeout(db->lite, SQLDB_LOCK_WAIT_MS);
	}
	if (r < 0) {
		sqldb_close(db);
		return r;
	}
	*ret = db;
	return 0;
}

void sqldb_close(struct sqldb *db)
{
	if (!db)
		return;
	if (db->lite)
		sqlite3_close_v2(db->lite);
	store_pg_close(db->pg);
	free(db);
}

bool sqldb_is_pg(const struct sqldb *db)
{
	return db->pg != NULL;
}

const char *sqldb_errmsg(const struct sqldb *db)
{
	return db->err;
}

int sqldb_exec(struct sqldb *db, const char *sql)
{
	int rc;

	if (db->pg)
		return pg_exec(db, sql);
	rc = sqlite3_exec(db->lite, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : lite_errno(db, rc);
}

int sqldb_begin(struct sqldb *db)
{
	int r;

	if (db->in_tx)
		return -EALREADY;
	if (!db->pg) {
		r = sqldb_exec(db, "BEGIN IMMEDIATE");
	} else {
		r = pg_exec(db, "BEGIN");
		if (r >= 0)
			db->in_tx = true;
		if (r >= 0)
			r = pg_exec(db, "SET LOCAL lock_timeout = " SQLDB_LOCK_WAIT_TXT ";"
					"SELECT pg_advisory_xact_lock(" SQLDB_PG_LOCK ")");
		if (r < 0)
			sqldb_rollback(db);
	}
	if (r >= 0)
		db->in_tx = true;
	return r;
}

int sqldb_commit(struct sqldb *db)
{
	int r = sqldb_exec(db, "COMMIT");

	if (r < 0)
		sqldb_rollback(db);
	db->in_tx = false;
	return r;
}

void sqldb_rollback(struct sqldb *db)
{
	if (db->pg) {
		PGconn *c = store_pg_conn(db->pg, false);
		if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
			PQclear(PQexec(c, "ROLLBACK"));
	} else if (!sqlite3_get_autocommit(db->lite)) {
		sqlite3_exec(db->lite, "ROLLBACK", NULL, NULL, NULL);
	}
	db->in_tx = false;
}

/* ---- statements ---- */

int sqldb_prepare(struct sqldb *db, const char *sql, const char *pg_sql, struct sqldb_stmt **ret)
{
	struct sqldb_stmt *st;
	const char *text = db->pg && pg_sql ? pg_sql : sql;
	int n = translate(text, NULL), rc;

	if (n < 0) {
		set_err(db, "a parameter beyond SQLDB_PARAMS_MAX");
		return n;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->db = db;
	st->row = -1;
	st->nparams = n;
	if (db->pg) {
		st->sql = malloc(2 * strlen(text) + 1);
		if (!st->sql) {
			free(st);
			return -ENOMEM;
		}
		translate(text, st->sql);
	} else {
		rc = sqlite3_prepare_v2(db->lite, text, -1, &st->lite, NULL);
		if (rc != SQLITE_OK) {
			int r = lite_errno(db, rc);
			free(st);
			return r;
		}
		st->nparams = sqlite3_bind_parameter_count(st->lite);
	}
	*ret = st;
	return 0;
}

static void pg_row_clear(struct sqldb_stmt *st)
{
	if (st->blobs && st->res) {
		for (int i = 0; i < PQnfields(st->res); i++)
			PQfreemem(st->blobs[i]);
		memset(st->blobs, 0, sizeof(void *) * (size_t)PQnfields(st->res));
	}
}

static void pg_result_clear(struct sqldb_stmt *st)
{
	pg_row_clear(st);
	free(st->blobs);
	free(st->blob_lens);
	st->blobs = NULL;
	st->blob_lens = NULL;
	PQclear(st->res);
	st->res = NULL;
	st->row = -1;
}

void sqldb_clear_bindings(struct sqldb_stmt *st)
{
	if (st->lite) {
		sqlite3_clear_bindings(st->lite);
		return;
	}
	for (int i = 0; i < SQLDB_PARAMS_MAX; i++) {
		free(st->vals[i]);
		st->vals[i] = NULL;
		st->lens[i] = st->formats[i] = 0;
		st->types[i] = 0;
	}
}

void sqldb_finalize(struct sqldb_stmt *st)
{
	if (!st)
		return;
	if (st->lite) {
		sqlite3_finalize(st->lite);
	} else {
		pg_result_clear(st);
		sqldb_clear_bindings(st);
		free(st->sql);
	}
	free(st);
}

void sqldb_reset(struct sqldb_stmt *st)
{
	if (st->lite)
		sqlite3_reset(st->lite);
	else
		pg_result_clear(st);
}

static int lite_bind(struct sqldb_stmt *st, int rc)
{
	return rc == SQLITE_OK ? 0 : rc == SQLITE_RANGE ? -ERANGE : lite_errno(st->db, rc);
}

static int pg_bind(struct sqldb_stmt *st, int i, const void *v, size_t len, int format, Oid type)
{
	char *copy = NULL;

	if (i < 1 || i > st->nparams)
		return -ERANGE;
	if (len > INT32_MAX)
		return -E2BIG;
	if (v) {
		copy = malloc(len + 1);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, v, len);
		copy[len] = 0;
	}
	free(st->vals[i - 1]);
	st->vals[i - 1] = copy;
	st->lens[i - 1] = (int)len;
	st->formats[i - 1] = format;
	st->types[i - 1] = type;
	return 0;
}

int sqldb_bind_int64(struct sqldb_stmt *st, int i, int64_t v)
{
	char s[24];

	if (st->lite)
		return lite_bind(st, sqlite3_bind_int64(st->lite, i, v));
	snprintf(s, sizeof(s), "%" PRId64, v);
	return pg_bind(st, i, s, strlen(s), 0, PG_INT8_OID);
}

int sqldb_bind_text(struct sqldb_stmt *st, int i, const char *v)
{
	if (!v)
		return sqldb_bind_null(st, i);
	if (st->lite)
		return lite_bind(st, sqlite3_bind_text(st->lite, i, v, -1, SQLITE_TRANSIENT));
	/* the type is the server's guess from the context, as SQLite's affinity */
	return pg_bind(st, i, v, strlen(v), 0, 0);
}

int sqldb_bind_blob(struct sqldb_stmt *st, int i, const void *v, size_t len)
{
	static const uint8_t empty;

	if (!v)
		v = &empty;
	if (st->lite)
		return len > INT32_MAX ? -E2BIG
				       : lite_bind(st, sqlite3_bind_blob(st->lite, i, v, (int)len,
									 SQLITE_TRANSIENT));
	return pg_bind(st, i, v, len, 1, PG_BYTEA_OID);
}

int sqldb_bind_null(struct sqldb_stmt *st, int i)
{
	if (st->lite)
		return lite_bind(st, sqlite3_bind_null(st->lite, i));
	return pg_bind(st, i, NULL, 0, 0, 0);
}

static int pg_run(struct sqldb_stmt *st)
{
	struct sqldb *db = st->db;
	ExecStatusType s;

	st->res = PQexecParams(pg_conn(db), st->sql, st->nparams, st->types,
			       (const char *const *)st->vals, st->lens, st->formats, 0);
	s = PQresultStatus(st->res);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		int r = pg_errno(db, st->res);
		PQclear(st->res);
		st->res = NULL;
		return r;
	}
	st->changes = strtoll(PQcmdTuples(st->res), NULL, 10);
	if (strncmp(PQcmdStatus(st->res), "INSERT", 6) == 0 ||
	    strncmp(PQcmdStatus(st->res), "UPDATE", 6) == 0 ||
	    strncmp(PQcmdStatus(st->res), "DELETE", 6) == 0)
		db->changes = st->changes;
	if (PQnfields(st->res) > 0) {
		st->blobs = calloc((size_t)PQnfields(st->res), sizeof(void *));
		st->blob_lens = calloc((size_t)PQnfields(st->res), sizeof(size_t));
		if (!st->blobs || !st->blob_lens) {
			pg_result_clear(st);
			return -ENOMEM;
		}
	}
	return 0;
}

int sqldb_step(struct sqldb_stmt *st)
{
	int rc, r;

	if (st->lite) {
		rc = sqlite3_step(st->lite);
		if (rc == SQLITE_ROW)
			return SQLDB_ROW;
		if (rc == SQLITE_DONE) {
			st->changes = sqlite3_changes(st->db->lite);
			return SQLDB_DONE;
		}
		r = lite_errno(st->db, rc);
		/* as PostgreSQL: a statement that failed is reset, ready to run again */
		sqlite3_reset(st->lite);
		return r;
	}
	if (!st->res) {
		r = pg_run(st);
		if (r < 0)
			return r;
	}
	pg_row_clear(st);
	if (st->row + 1 < PQntuples(st->res)) {
		st->row++;
		return SQLDB_ROW;
	}
	st->row = PQntuples(st->res);
	return SQLDB_DONE;
}

int sqldb_step_done(struct sqldb_stmt *st)
{
	int r;

	while ((r = sqldb_step(st)) == SQLDB_ROW)
		;
	return r;
}

int64_t sqldb_changes(const struct sqldb_stmt *st)
{
	return st->changes;
}

int64_t sqldb_last_changes(const struct sqldb *db)
{
	return db->lite ? sqlite3_changes(db->lite) : db->changes;
}

/* ---- columns ---- */

static bool pg_cell(struct sqldb_stmt *st, int i)
{
	return st->res && st->row >= 0 && st->row < PQntuples(st->res) && i >= 0 &&
	       i < PQnfields(st->res) && !PQgetisnull(st->res, st->row, i);
}

bool sqldb_column_is_null(struct sqldb_stmt *st, int i)
{
	if (st->lite)
		return sqlite3_column_type(st->lite, i) == SQLITE_NULL;
	return !pg_cell(st, i);
}

int64_t sqldb_column_int64(struct sqldb_stmt *st, int i)
{
	const char *v;

	if (st->lite)
		return sqlite3_column_int64(st->lite, i);
	if (!pg_cell(st, i))
		return 0;
	v = PQgetvalue(st->res, st->row, i);
	if (PQftype(st->res, i) == PG_BOOL_OID)
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

const char *sqldb_column_text(struct sqldb_stmt *st, int i)
{
	if (st->lite)
		return (const char *)sqlite3_column_text(st->lite, i);
	return pg_cell(st, i) ? PQgetvalue(st->res, st->row, i) : NULL;
}

const void *sqldb_column_blob(struct sqldb_stmt *st, int i, size_t *ret_len)
{
	const char *v;
	size_t n;

	*ret_len = 0;
	if (st->lite) {
		const void *b = sqlite3_column_blob(st->lite, i);
		*ret_len = (size_t)sqlite3_column_bytes(st->lite, i);
		return b;
	}
	if (!pg_cell(st, i))
		return NULL;
	v = PQgetvalue(st->res, st->row, i);
	n = (size_t)PQgetlength(st->res, st->row, i);
	if (PQftype(st->res, i) != PG_BYTEA_OID) {
		*ret_len = n;
		return v;
	}
	/* text results: a bytea comes escaped ("\x" and hex) */
	if (!st->blobs[i]) {
		size_t len = 0;
		st->blobs[i] = PQunescapeBytea((const unsigned char *)v, &len);
		if (!st->blobs[i])
			return NULL;
		st->blob_lens[i] = len;
	}
	*ret_len = st->blob_lens[i];
	return st->blobs[i];
}
