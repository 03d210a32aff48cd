/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the SQLite store (schema, migrations, the writer's batched inserts, the
 * dashboard's read queries). One struct store per thread; the writer owns the only writable one. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "event.h"

#define STORE_SCHEMA_VERSION 4

/* SHA-256: one link of a terminal's hash chain (docs/evidence.md) */
#define STORE_CHAIN_LEN 32

struct store;

/* Opens (creating when writable) and migrates to STORE_SCHEMA_VERSION. A read-only store refuses
 * a database that is older or newer than this binary (-EPROTO). */
int store_open(const char *path, bool writable, struct store **ret);
void store_close(struct store *s);
int store_schema_version(struct store *s);

/* Transactions for the writer: one BEGIN IMMEDIATE ... COMMIT around many batches, each batch in
 * its own savepoint so that one failing batch does not undo the others. */
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

/* Delete events received before cutoff_ms, at most limit rows per call (own transaction), none of
 * the n_hold terminals named in hold (legal hold). Each
 * terminal loses a prefix of its chain, and chain_anchors records the link before the first
 * kept event so that store_verify() still checks what remains. */
int store_retention(struct store *s, int64_t cutoff_ms, const char *const *hold, size_t n_hold,
		    unsigned limit, unsigned *ret_deleted);

struct store_verify {
	uint64_t terminals, events; /* checked */
	uint64_t anchored;	    /* terminals whose chain starts at a disposal anchor */
	bool broken;
	char terminal[EVENT_TERMINAL_MAX + 1]; /* the first broken link: terminal and seq */
	uint64_t seq;
	char reason[192];
};

/* Recomputes every terminal's chain (terminal NULL) or one (-ENOENT when unknown) in one read
 * snapshot, and stops at the first broken link. Works on a read-only store. */
int store_verify(struct store *s, const char *terminal, struct store_verify *ret);

/* ---- dashboard queries (read-only) ---- */

struct store_view {
	int64_t now_ms;
	int64_t default_interval_ms; /* when a terminal did not report its interval */
	int64_t drift_ms;	     /* |drift| beyond this raises the flag */
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
	STORE_STATUS_PROBLEM, /* non-compliant, stale, no report, clock drift, lockout, unannounced gap */
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
	unsigned offset, limit;		    /* limit 0: every row (the CSV export) */
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
	int kind;			       /* -1 = all, else enum event_kind */
	int64_t since_ms;		       /* inclusive, on ts; INT64_MIN = open */
	int64_t until_ms;		       /* exclusive, on ts; INT64_MAX = open */
	unsigned limit;
};

/* {"events":[...],"next":"CURSOR"|null} */
int store_events_json(struct store *s, const struct store_filter *f, json_t **ret);

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
	/* per enum event_kind: the event time (ts, ms) of the oldest kept event, INT64_MIN if none */
	int64_t oldest_ms[_EVENT_KIND_MAX];
};
int store_stats(struct store *s, const struct store_view *v, struct store_stats *ret);
