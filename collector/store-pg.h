/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the PostgreSQL store (libpq), the second implementation of store.h.
 * store.c's public functions dispatch here when the store was opened on a PostgreSQL location
 * (docs/postgresql.md); the meaning of each function is the one store.h gives. */
#pragma once

#include <stdbool.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "store.h"

struct store_pg;

/* The prefix of a store location that names a PostgreSQL database: "pg:" followed by a libpq
 * connection string (a postgresql:// URI or key=value conninfo). */
#define STORE_PG_PREFIX "pg:"

/* The conninfo of a PostgreSQL location, NULL for a SQLite path. */
const char *store_pg_location(const char *location);

/* Connects and (writable) creates or checks the schema; a read-only store refuses a schema of
 * another version (-EPROTO). */
int store_pg_open(const char *conninfo, bool writable, struct store_pg **ret);
void store_pg_close(struct store_pg *p);
/* The connection, for sqldb.c's statements of its own; with reconnect_broken, a broken one (a
 * server restart) is made again first (never inside a transaction: its rest would run outside
 * one). */
PGconn *store_pg_conn(struct store_pg *p, bool reconnect_broken);
int store_pg_schema_version(struct store_pg *p);

int store_pg_begin(struct store_pg *p);
void store_pg_prepare_batch(struct store_pg *p, const struct event_batch *b);
int store_pg_commit(struct store_pg *p);
void store_pg_rollback(struct store_pg *p);
int store_pg_write_batch(struct store_pg *p, const struct event_batch *b, int64_t received_ms,
			 struct store_write_result *ret);
int store_pg_terminal_max_seq(struct store_pg *p, const char *name, uint64_t *ret);

int store_pg_terminals_json(struct store_pg *p, const struct store_view *v,
			    const struct store_terminal_query *q, json_t **ret);
int store_pg_terminal_json(struct store_pg *p, const struct store_view *v, const char *id,
			   unsigned recent, json_t **ret);
int store_pg_events_json(struct store_pg *p, const struct store_filter *f, json_t **ret);
int store_pg_events_foreach(struct store_pg *p, const struct store_filter *f,
			    int (*fn)(const struct store_row *row, void *userdata), void *userdata,
			    uint64_t *ret_last);
int store_pg_stats(struct store_pg *p, const struct store_view *v, struct store_stats *ret);
int store_pg_verify(struct store_pg *p, const struct store_verify_opts *o,
		    struct store_verify *ret);
int store_pg_retention(struct store_pg *p, const struct store_retention_policy *policy,
		       int64_t now_ms, unsigned limit, unsigned *ret_disposed);
int store_pg_signed_heads_put(struct store_pg *p, int64_t at_ms, const char *body,
			      const uint8_t *sig, size_t sig_len, unsigned keep);
int store_pg_signed_heads_last(struct store_pg *p, int64_t *ret_at, char **ret_body,
			       uint8_t **ret_sig, size_t *ret_sig_len);

/* The daily history's rows in the day range [from, to] (store_day() days); store.c builds the
 * same JSON from them as from SQLite's. A terminal's checks now (clause: a JSON array's text),
 * then its status per check and day (1 pass, 2 fail); -ENOENT for an unknown terminal. */
int store_pg_history_rows(struct store_pg *p, const char *terminal, int64_t from, int64_t to,
			  int (*check)(void *u, const char *id, const char *clause),
			  int (*day)(void *u, const char *id, int64_t day, int status), void *u);
/* Each clause's days: terminals reporting it, of which failing; and the terminals in all. */
int store_pg_clause_rows(struct store_pg *p, int64_t from, int64_t to,
			 int (*fn)(void *u, int64_t day, const char *clause, int64_t reporting,
				   int64_t failing),
			 void *u, int64_t *ret_terminals);
/* A kind's events per day; with top > 0 also the top terminals of the range, most first. */
int store_pg_kind_rows(struct store_pg *p, const char *kind, int64_t from, int64_t to, unsigned top,
		       int (*day)(void *u, int64_t day, int64_t n),
		       int (*best)(void *u, const char *terminal, int64_t n), void *u);
/* store_alert_scan() on PostgreSQL */
int store_pg_alert_scan(struct store_pg *p, const struct store_view *v,
			int (*fn)(const struct store_alert_row *row, void *arg), void *arg);
/* store_totp_double_scan() on PostgreSQL; self: the collector's own terminal name */
int store_pg_totp_double_scan(struct store_pg *p, const struct store_view *v, const char *self,
			      int (*fn)(const struct store_totp_double *d, void *arg), void *arg);

/* A password in a connection string (refused: it would be logged or seen in ps). */
bool store_pg_url_has_password(const char *conninfo);

/* Copying a SQLite store (store_migrate_to_pg()): one transaction into an empty store
 * (-ENOTEMPTY otherwise); rows keep their ids; vals are texts (bytea as "\x" hex), NULL = NULL. */
int store_pg_copy_begin(struct store_pg *p);
int store_pg_copy_row(struct store_pg *p, const char *table, const char *columns, int n,
		      const char *const *vals);
int store_pg_copy_end(struct store_pg *p);

/* Alerts with several collectors on one database (store_alert_leader() and the rest). */
int store_pg_alert_leader(struct store_pg *p);
int store_pg_alert_sent_get(struct store_pg *p, const char *key, int *mail, int *hook);
int store_pg_alert_sent_put(struct store_pg *p, const char *key, int mail, int hook, int64_t at);
int store_pg_alert_sent_keep(struct store_pg *p, const char *const *keys, size_t n);
int store_pg_alert_digest_day(struct store_pg *p, char day[static 16]);
int store_pg_alert_digest_put(struct store_pg *p, const char *day);

/* store_cursor_publish() on PostgreSQL */
int store_pg_cursor_publish(struct store_pg *p);
