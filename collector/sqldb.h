/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: a small read-write SQL layer over both stores (docs/ARCHITECTURE.md
 * "Storage"): a connection of its own to the collector's database, SQLite (a path) or
 * PostgreSQL ("pg:" + conninfo, store-pg.h), with one statement interface, so that the state
 * kept beside the events (the dashboard's accounts, account-store.c) does not know which is in
 * use. Not thread-safe: one connection per thread.
 *
 * SQL: one text for both where it can be (SQLite 3.40 and PostgreSQL 15 share INSERT ... ON
 * CONFLICT, RETURNING, LIMIT); parameters are ?1..?N or ? (numbered as SQLite does: one above
 * the highest so far), turned into $1..$N for PostgreSQL; an optional second text for PostgreSQL where the dialects differ. Integers are
 * int64 on both (PostgreSQL: bigint/integer columns, read back as text and parsed). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SQLDB_PARAMS_MAX 32

struct sqldb;
struct sqldb_stmt;

/* sqldb_step()'s answers; errors are negative errnos: -EEXIST a unique (or primary key)
 * violation (the API's 409), -EINVAL another constraint (NOT NULL, foreign key, check), -EBUSY
 * a lock not had in time, -EIO anything else (sqldb_errmsg() says what). */
enum {
	SQLDB_DONE = 0,
	SQLDB_ROW = 1,
};

/* Opens location: a SQLite file (must exist; the store made and migrated it) or a PostgreSQL
 * location (connected through store_pg_open(), which creates or migrates the schema; session
 * time zone UTC). -ENOENT, -ECONNREFUSED, -EPROTO (a schema of a newer version). */
int sqldb_open(const char *location, struct sqldb **ret);
void sqldb_close(struct sqldb *db);
bool sqldb_is_pg(const struct sqldb *db);
/* The last error's text (the server's or SQLite's), "" when none. */
const char *sqldb_errmsg(const struct sqldb *db);

/* One or more statements without parameters or rows (PRAGMA, DDL, ...). */
int sqldb_exec(struct sqldb *db, const char *sql);

/* A transaction that writes: SQLite's BEGIN IMMEDIATE (the write lock at once); on PostgreSQL
 * BEGIN and a transaction-scoped advisory lock that every sqldb writer takes, so that a
 * read-modify-write is serialised across the collectors sharing the database as on SQLite
 * (no serialization failures to retry). Statements outside one commit alone. */
int sqldb_begin(struct sqldb *db);
int sqldb_commit(struct sqldb *db);
/* Harmless without a transaction. */
void sqldb_rollback(struct sqldb *db);

/* pg_sql: NULL for the same text on both. -EINVAL for more than SQLDB_PARAMS_MAX parameters, SQLite's errors as sqldb_step()'s (PostgreSQL checks the text at the first step). */
int sqldb_prepare(struct sqldb *db, const char *sql, const char *pg_sql, struct sqldb_stmt **ret);
void sqldb_finalize(struct sqldb_stmt *st);
static inline void sqldb_finalizep(struct sqldb_stmt **st)
{
	sqldb_finalize(*st);
	*st = NULL;
}
/* The values are copied; i is 1-based. -ERANGE for a parameter the statement does not have. */
int sqldb_bind_int64(struct sqldb_stmt *st, int i, int64_t v);
int sqldb_bind_text(struct sqldb_stmt *st, int i, const char *v);
int sqldb_bind_blob(struct sqldb_stmt *st, int i, const void *v, size_t len);
int sqldb_bind_null(struct sqldb_stmt *st, int i);
/* SQLDB_ROW, SQLDB_DONE or a negative errno (above). */
int sqldb_step(struct sqldb_stmt *st);
/* Runs the statement to its end: 0 or the error. */
int sqldb_step_done(struct sqldb_stmt *st);
/* Ready to run again with the same bindings (sqldb_clear_bindings() forgets them). */
void sqldb_reset(struct sqldb_stmt *st);
void sqldb_clear_bindings(struct sqldb_stmt *st);
/* Rows changed by the statement's last run (INSERT, UPDATE, DELETE). */
int64_t sqldb_changes(const struct sqldb_stmt *st);
/* Rows changed by the connection's last INSERT, UPDATE or DELETE (sqlite3_changes()). */
int64_t sqldb_last_changes(const struct sqldb *db);

/* The current row's columns (0-based); valid until the next step, reset or finalize. A NULL is
 * 0, NULL text, NULL blob of length 0. PostgreSQL booleans read as 1/0. */
bool sqldb_column_is_null(struct sqldb_stmt *st, int i);
int64_t sqldb_column_int64(struct sqldb_stmt *st, int i);
const char *sqldb_column_text(struct sqldb_stmt *st, int i);
const void *sqldb_column_blob(struct sqldb_stmt *st, int i, size_t *ret_len);
