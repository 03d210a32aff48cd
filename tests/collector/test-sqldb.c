/* SPDX-License-Identifier: MIT */
/* collector/sqldb.c on the store at argv[1] (a SQLite file, or "pg:" + conninfo of a real
 * PostgreSQL server that test-sqldb.py starts): binding, stepping, reading every type, the
 * errors (unique violation apart, a bad text, a bare ?), ?N inside a literal left alone,
 * transactions. "test-sqldb LOCATION inc N" adds 1 to a counter N times, each in its own
 * read-modify-write transaction: several at once must not lose one (test-sqldb.py). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqldb.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: failed: %s (%s)\n", __FILE__, __LINE__, #c,        \
				db ? sqldb_errmsg(db) : "");                                       \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static struct sqldb *db;

static struct sqldb_stmt *prep(const char *sql, const char *pg_sql)
{
	struct sqldb_stmt *st = NULL;
	CHECK(sqldb_prepare(db, sql, pg_sql, &st) == 0);
	return st;
}

static int64_t scalar(const char *sql)
{
	struct sqldb_stmt *st = prep(sql, NULL);
	int64_t v;

	CHECK(sqldb_step(st) == SQLDB_ROW);
	v = sqldb_column_int64(st, 0);
	CHECK(sqldb_step(st) == SQLDB_DONE);
	sqldb_finalize(st);
	return v;
}

static void schema(void)
{
	bool pg = sqldb_is_pg(db);

	/* as the collector's store (store.c) */
	if (!pg)
		CHECK(sqldb_exec(db, "PRAGMA journal_mode = WAL") == 0);
	CHECK(sqldb_exec(db, "DROP TABLE IF EXISTS t; DROP TABLE IF EXISTS counter") == 0);
	CHECK(sqldb_exec(db, pg ? "CREATE TABLE t (k text PRIMARY KEY, n bigint NOT NULL,"
				  " b bytea, s text, f integer NOT NULL DEFAULT 0)"
				: "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL,"
				  " b BLOB, s TEXT, f INTEGER NOT NULL DEFAULT 0)") == 0);
	CHECK(sqldb_exec(db, "CREATE TABLE counter (id integer PRIMARY KEY, n bigint NOT NULL);"
			     "INSERT INTO counter VALUES (1, 0)") == 0);
}

static void basics(void)
{
	static const uint8_t blob[] = {0, 1, 0x5c, 0x78, 0x7f, 0x80, 0xff, 0};
	const char *text = "it's \"quoted\" ?1 \\x00 日本語";
	struct sqldb_stmt *ins = prep("INSERT INTO t (k, n, b, s) VALUES (?1, ?2, ?3, ?4)", NULL);
	struct sqldb_stmt *sel;
	const void *b;
	size_t len;

	/* every type in, every type out */
	CHECK(sqldb_bind_text(ins, 1, "a") == 0);
	CHECK(sqldb_bind_int64(ins, 2, INT64_MIN) == 0);
	CHECK(sqldb_bind_blob(ins, 3, blob, sizeof(blob)) == 0);
	CHECK(sqldb_bind_text(ins, 4, text) == 0);
	CHECK(sqldb_bind_int64(ins, 5, 1) == -ERANGE);
	CHECK(sqldb_bind_int64(ins, 0, 1) == -ERANGE);
	CHECK(sqldb_step(ins) == SQLDB_DONE);
	CHECK(sqldb_changes(ins) == 1);
	/* the same key again: the distinct unique-violation code (the API's 409) */
	sqldb_reset(ins);
	CHECK(sqldb_step(ins) == -EEXIST);
	CHECK(strlen(sqldb_errmsg(db)) > 0);
	/* again with other values: a statement that failed runs again */
	sqldb_reset(ins);
	CHECK(sqldb_bind_text(ins, 1, "b") == 0);
	CHECK(sqldb_bind_int64(ins, 2, INT64_MAX) == 0);
	CHECK(sqldb_bind_null(ins, 3) == 0);
	CHECK(sqldb_bind_null(ins, 4) == 0);
	CHECK(sqldb_step(ins) == SQLDB_DONE);
	/* a NOT NULL violation is another constraint: not a conflict */
	sqldb_reset(ins);
	sqldb_clear_bindings(ins);
	CHECK(sqldb_bind_text(ins, 1, "c") == 0);
	CHECK(sqldb_step(ins) == -EINVAL);
	sqldb_finalize(ins);

	sel = prep("SELECT k, n, b, s, f FROM t ORDER BY k", NULL);
	CHECK(sqldb_step(sel) == SQLDB_ROW);
	CHECK(strcmp(sqldb_column_text(sel, 0), "a") == 0);
	CHECK(sqldb_column_int64(sel, 1) == INT64_MIN);
	b = sqldb_column_blob(sel, 2, &len);
	CHECK(len == sizeof(blob) && memcmp(b, blob, len) == 0);
	CHECK(strcmp(sqldb_column_text(sel, 3), text) == 0);
	CHECK(!sqldb_column_is_null(sel, 4) && sqldb_column_int64(sel, 4) == 0);
	CHECK(sqldb_step(sel) == SQLDB_ROW);
	CHECK(strcmp(sqldb_column_text(sel, 0), "b") == 0);
	CHECK(sqldb_column_int64(sel, 1) == INT64_MAX);
	CHECK(sqldb_column_is_null(sel, 2) && sqldb_column_is_null(sel, 3));
	CHECK(sqldb_column_blob(sel, 2, &len) == NULL && len == 0);
	CHECK(sqldb_column_text(sel, 3) == NULL);
	CHECK(sqldb_step(sel) == SQLDB_DONE);
	/* reset: the same rows again */
	sqldb_reset(sel);
	CHECK(sqldb_step(sel) == SQLDB_ROW);
	CHECK(strcmp(sqldb_column_text(sel, 0), "a") == 0);
	sqldb_finalize(sel);

	/* ?N inside a literal or a quoted name stays; a comparison reads as 1/0 on both */
	sel = prep("SELECT '?1', ?1 = 5, ?1 + 1 AS \"?2\"", NULL);
	CHECK(sqldb_bind_int64(sel, 1, 5) == 0);
	CHECK(sqldb_step(sel) == SQLDB_ROW);
	CHECK(strcmp(sqldb_column_text(sel, 0), "?1") == 0);
	CHECK(sqldb_column_int64(sel, 1) == 1);
	CHECK(sqldb_column_int64(sel, 2) == 6);
	sqldb_finalize(sel);

	/* one text for both: an upsert with RETURNING */
	sel = prep("INSERT INTO t (k, n) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET"
		   " n = t.n + excluded.n RETURNING n",
		   NULL);
	CHECK(sqldb_bind_text(sel, 1, "u") == 0);
	CHECK(sqldb_bind_int64(sel, 2, 40) == 0);
	CHECK(sqldb_step(sel) == SQLDB_ROW && sqldb_column_int64(sel, 0) == 40);
	CHECK(sqldb_step(sel) == SQLDB_DONE);
	sqldb_reset(sel);
	CHECK(sqldb_bind_int64(sel, 2, 2) == 0);
	CHECK(sqldb_step(sel) == SQLDB_ROW && sqldb_column_int64(sel, 0) == 42);
	sqldb_finalize(sel);
	sel = prep("INSERT INTO t (k, n) VALUES (?1, 1) ON CONFLICT DO NOTHING", NULL);
	CHECK(sqldb_bind_text(sel, 1, "u") == 0);
	CHECK(sqldb_step(sel) == SQLDB_DONE && sqldb_changes(sel) == 0);
	sqldb_finalize(sel);

	/* rows changed */
	sel = prep("UPDATE t SET f = f + 1 WHERE k <> ?1", NULL);
	CHECK(sqldb_bind_text(sel, 1, "zzz") == 0);
	CHECK(sqldb_step_done(sel) == 0 && sqldb_changes(sel) == 3);
	sqldb_finalize(sel);

	/* a bare ? is numbered as SQLite does: one above the highest so far */
	sel = prep("SELECT ?, ?2 || ?, ?", NULL);
	CHECK(sqldb_bind_int64(sel, 1, 1) == 0);
	CHECK(sqldb_bind_text(sel, 2, "two") == 0);
	CHECK(sqldb_bind_text(sel, 3, "three") == 0);
	CHECK(sqldb_bind_int64(sel, 4, 4) == 0);
	CHECK(sqldb_bind_int64(sel, 5, 5) == -ERANGE);
	CHECK(sqldb_step(sel) == SQLDB_ROW);
	CHECK(sqldb_column_int64(sel, 0) == 1);
	CHECK(strcmp(sqldb_column_text(sel, 1), "twothree") == 0);
	CHECK(sqldb_column_int64(sel, 2) == 4);
	sqldb_finalize(sel);
	/* the connection's last change: a SELECT leaves it */
	CHECK(sqldb_last_changes(db) == 3);
	CHECK(scalar("SELECT count(*) FROM t") == 3);
	CHECK(sqldb_last_changes(db) == 3);

	/* a second text where the dialects differ */
	sel = prep("SELECT typeof(?1)", "SELECT pg_typeof(?1::bigint)::text");
	CHECK(sqldb_bind_int64(sel, 1, 7) == 0);
	CHECK(sqldb_step(sel) == SQLDB_ROW);
	CHECK(strcmp(sqldb_column_text(sel, 0), sqldb_is_pg(db) ? "bigint" : "integer") == 0);
	sqldb_finalize(sel);

	/* the session's time zone is UTC on PostgreSQL */
	if (sqldb_is_pg(db)) {
		sel = prep("SELECT current_setting('TimeZone')", NULL);
		CHECK(sqldb_step(sel) == SQLDB_ROW);
		CHECK(strcmp(sqldb_column_text(sel, 0), "UTC") == 0);
		sqldb_finalize(sel);
	}
}

static void errors(void)
{
	struct sqldb_stmt *st = NULL;
	int r;

	CHECK(sqldb_prepare(db, "SELECT ?, ?40, ?", NULL, &st) == -EINVAL);
	CHECK(sqldb_prepare(db, "SELECT ?0", NULL, &st) == -EINVAL);
	CHECK(sqldb_prepare(db, "SELECT ?33", NULL, &st) == -EINVAL);
	/* a bad text: at prepare on SQLite, at the first step on PostgreSQL */
	r = sqldb_prepare(db, "SELEKT 1", NULL, &st);
	if (r == 0) {
		r = sqldb_step(st);
		sqldb_finalize(st);
	}
	CHECK(r == -EIO);
	CHECK(strstr(sqldb_errmsg(db), "syntax") != NULL);
	CHECK(sqldb_exec(db, "SELECT * FROM no_such_table") == -EIO);
	CHECK(scalar("SELECT 1") == 1);
}

static void transactions(void)
{
	struct sqldb_stmt *ins = prep("INSERT INTO t (k, n) VALUES (?1, 1)", NULL);

	CHECK(sqldb_begin(db) == 0);
	CHECK(sqldb_begin(db) == -EALREADY);
	CHECK(sqldb_bind_text(ins, 1, "rolled-back") == 0);
	CHECK(sqldb_step(ins) == SQLDB_DONE);
	sqldb_rollback(db);
	CHECK(scalar("SELECT count(*) FROM t WHERE k = 'rolled-back'") == 0);

	/* an error inside: the caller rolls back, the connection goes on */
	CHECK(sqldb_begin(db) == 0);
	sqldb_reset(ins);
	CHECK(sqldb_bind_text(ins, 1, "x1") == 0);
	CHECK(sqldb_step(ins) == SQLDB_DONE);
	sqldb_reset(ins);
	CHECK(sqldb_bind_text(ins, 1, "a") == 0);
	CHECK(sqldb_step(ins) == -EEXIST);
	sqldb_rollback(db);
	sqldb_rollback(db);
	CHECK(scalar("SELECT count(*) FROM t WHERE k = 'x1'") == 0);

	CHECK(sqldb_begin(db) == 0);
	sqldb_reset(ins);
	CHECK(sqldb_bind_text(ins, 1, "kept") == 0);
	CHECK(sqldb_step(ins) == SQLDB_DONE);
	CHECK(sqldb_commit(db) == 0);
	CHECK(scalar("SELECT count(*) FROM t WHERE k = 'kept'") == 1);
	sqldb_finalize(ins);
}

/* read, then write what was read: only correct when no other process writes in between */
static void increment(long n)
{
	struct sqldb_stmt *get = prep("SELECT n FROM counter WHERE id = 1", NULL);
	struct sqldb_stmt *put = prep("UPDATE counter SET n = ?1 WHERE id = 1", NULL);

	for (long i = 0; i < n; i++) {
		int64_t v;
		CHECK(sqldb_begin(db) == 0);
		sqldb_reset(get);
		CHECK(sqldb_step(get) == SQLDB_ROW);
		v = sqldb_column_int64(get, 0);
		sqldb_reset(get);
		sqldb_reset(put);
		CHECK(sqldb_bind_int64(put, 1, v + 1) == 0);
		CHECK(sqldb_step(put) == SQLDB_DONE && sqldb_changes(put) == 1);
		CHECK(sqldb_commit(db) == 0);
	}
	sqldb_finalize(get);
	sqldb_finalize(put);
}

int main(int argc, char **argv)
{
	int r;

	if (argc != 2 && !(argc == 4 && strcmp(argv[2], "inc") == 0) &&
	    !(argc == 3 && strcmp(argv[2], "count") == 0)) {
		fprintf(stderr, "usage: test-sqldb LOCATION [inc N | count]\n");
		return 2;
	}
	r = sqldb_open(argv[1], &db);
	if (r < 0) {
		fprintf(stderr, "open %s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	if (argc == 4) {
		increment(strtol(argv[3], NULL, 10));
	} else if (argc == 3) {
		printf("%" PRId64 "\n", scalar("SELECT n FROM counter WHERE id = 1"));
	} else {
		schema();
		basics();
		errors();
		transactions();
		printf("ok %s\n", sqldb_is_pg(db) ? "postgresql" : "sqlite");
	}
	sqldb_close(db);
	return 0;
}
