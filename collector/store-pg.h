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
int store_pg_schema_version(struct store_pg *p);

int store_pg_begin(struct store_pg *p);
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

/* A password in a connection string (refused: it would be logged or seen in ps). */
bool store_pg_url_has_password(const char *conninfo);

/* Copying a SQLite store (store_migrate_to_pg()): one transaction into an empty store
 * (-ENOTEMPTY otherwise); rows keep their ids; vals are texts (bytea as "\x" hex), NULL = NULL. */
int store_pg_copy_begin(struct store_pg *p);
int store_pg_copy_row(struct store_pg *p, const char *table, const char *columns, int n,
		      const char *const *vals);
int store_pg_copy_end(struct store_pg *p);
