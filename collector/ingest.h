/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: POST /v1/events on the ingest listener, and the single writer thread that
 * commits many requests' batches in one durable SQLite transaction (group commit). */
#pragma once

#include <event2/http.h>
#include <event2/util.h>
#include <jansson.h>
#include <stdint.h>

#include "event.h"

struct collector;
struct store;

struct ingest_writer;

/* The terminal id under which the collector stores its own events (compliance events whose
 * checks are "collector.*", e.g. a refused line of the revoked-serials file), so that the
 * dashboard shows them like a terminal's. No client certificate may claim it (403). */
#define INGEST_SELF_TERMINAL "mynaguard-collector"

/* The request decoder, without I/O (fuzzed): checks the body against the certificate's terminal
 * id and the store's limits. Returns the HTTP status to answer (200 = accepted for storing), with
 * the batch in *ret on 200 and a reason otherwise. */
int ingest_decode(const char *cert_terminal, const char *body, size_t len, struct event_batch *ret,
		  char reason[static EVENT_REASON_MAX]);

/* The answer to a batch that store_write_batch refused with err: 413/400 when the batch can
 * never be stored (retrying is pointless), 503 when the store cannot write now (busy, disk
 * full, I/O: retry later), 500 for a fault of the store itself. Never 429: that is overload. */
int ingest_store_status(int err);

/* The writer owns the writable store. retention_s 0 keeps everything. */
int ingest_writer_start(struct collector *c, struct store *store, struct ingest_writer **ret);
/* Queues one event of the collector itself (terminal INGEST_SELF_TERMINAL, seq numbered by the
 * writer, ts now) for the next commit; takes data (a reference) in every case. Does not wait:
 * a failure to store it is logged. */
int ingest_writer_self_event(struct ingest_writer *wr, enum event_kind kind, json_t *data);
/* Finishes what is queued, then ends the thread. */
void ingest_writer_stop(struct ingest_writer *w);

/* evhttp callbacks (worker thread) */
void ingest_handle(struct evhttp_request *req, void *worker);
void ingest_done_cb(evutil_socket_t fd, short what, void *worker);
