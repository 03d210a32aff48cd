/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: POST /v1/events on the ingest listener, and the single writer thread that
 * commits many requests' batches in one durable SQLite transaction (group commit). */
#include "ingest.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enroll.h"
#include "evidence.h"
#include "macro.h"
#include "fleet.h"
#include "metrics.h"
#include "server.h"
#include "store-pg.h"
#include "store.h"

#define RETENTION_PERIOD_S    3600  /* how often the writer looks for expired events */
#define RETENTION_CHUNK	      5000  /* rows per retention transaction, so ingest never waits long */
#define GROUP_MAX_EVENTS      50000 /* events in one transaction */
#define WAL_CHECKPOINT_FRAMES 1000  /* ~4 MiB of WAL: the background checkpoint copies it */
#define WAL_RESTART_FRAMES    65536 /* ~256 MiB: the writer restarts the WAL itself */

struct ingest_pending {
	struct ingest_pending *next;
	struct worker *w;
	struct evhttp_request *req;
	struct event_batch batch;
	uint64_t t0_us;
	int status;
	struct store_write_result res;
};

struct ingest_writer {
	struct collector *c;
	struct store *store;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ingest_pending *head, **tail;
	uint64_t queued_events;
	bool stop;
	bool retention_pending; /* the writer's own: a retention run yielded to ingest */

	/* background checkpoints, on a connection of their own */
	struct store *ckpt_store;
	pthread_t ckpt_thread;
	pthread_cond_t ckpt_cond;
	unsigned ckpt_kicks;
	bool ckpt_running;
	bool thread_running;
};

static void reply_json(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer *buf = server_json_buffer(body);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, status, NULL, buf);
	evbuffer_free(buf);
}

static void reply_error(struct evhttp_request *req, int status, const char *reason)
{
	json_t *body = server_error_json(reason);
	reply_json(req, status, body);
	json_decref(body);
	metrics_count_status(status);
}

int ingest_decode(const char *cert_terminal, const char *body, size_t len, struct event_batch *ret,
		  char reason[static EVENT_REASON_MAX])
{
	struct event_batch b = {0};
	int r;

	if (!cert_terminal || !cert_terminal[0]) {
		snprintf(reason, EVENT_REASON_MAX,
			 "the client certificate does not name a valid terminal id in its CN");
		return 403;
	}
	if (strcmp(cert_terminal, INGEST_SELF_TERMINAL) == 0) {
		snprintf(reason, EVENT_REASON_MAX,
			 "the terminal id %s is reserved for the collector's own events",
			 INGEST_SELF_TERMINAL);
		return 403;
	}
	r = event_batch_decode(body, len, &b, reason);
	if (r == -EMSGSIZE)
		return 413;
	if (r < 0)
		return 400;
	if (strcmp(b.terminal, cert_terminal) != 0) {
		snprintf(reason, EVENT_REASON_MAX,
			 "terminal does not match the client certificate");
		event_batch_clear(&b);
		return 403;
	}
	for (size_t i = 0; i < b.n; i++)
		if (event_kind_is_collector_own(b.events[i].kind)) {
			snprintf(reason, EVENT_REASON_MAX,
				 "events[%zu].kind: %s events are the collector's own", i,
				 event_kind_name(b.events[i].kind));
			event_batch_clear(&b);
			return 400;
		}
	for (size_t i = 0; i < b.n; i++)
		if (b.events[i].seq > (uint64_t)INT64_MAX) {
			snprintf(reason, EVENT_REASON_MAX, "events[%zu].seq: too large", i);
			event_batch_clear(&b);
			return 400;
		}
	*ret = b;
	return 200;
}

int ingest_store_status(int err)
{
	switch (err) {
	case -EMSGSIZE:
		return 413;
	case -ERANGE:
	case -EINVAL:
		return 400;
	case -EBUSY:
	case -ENOSPC:
	case -EIO:
	case -ENOMEM:
	case -EACCES:
		return 503;
	default:
		return 500;
	}
}

static const char *store_status_reason(int status)
{
	switch (status) {
	case 413:
		return "an event is too large to store";
	case 400:
		return "cannot store this batch";
	case 503:
		return "the store cannot write; try again later";
	default:
		return "the store failed; see the collector's log";
	}
}

static void log_refusal(struct evhttp_request *req, const struct conn *conn, int status,
			const char *reason)
{
	char *addr = NULL;
	ev_uint16_t port = 0;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);

	if (evcon)
		evhttp_connection_get_peer(evcon, &addr, &port);
	/* reason is ours or the codec's (printable, bounded); the terminal id is validated. */
	server_log(LOG_WARNING, "ingest refused peer=%s terminal=%s status=%d reason=\"%s\"",
		   addr ? addr : "?", conn && conn->terminal[0] ? conn->terminal : "-", status,
		   reason);
}

void ingest_handle(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	struct collector *c = w->c;
	struct ingest_writer *wr = c->writer;
	struct conn *conn = server_conn(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	char reason[EVENT_REASON_MAX] = "";
	struct ingest_pending *p;
	size_t len;
	const char *body;
	int status;

	server_request_begin(req, conn);
	if (server_check_framing(evhttp_request_get_input_headers(req),
				 evhttp_request_get_command(req), reason) < 0) {
		log_refusal(req, conn, 400, reason);
		server_refuse_framing(req, reason);
		metrics_count_status(400);
		return;
	}
	if (!conn) {
		reply_error(req, 403, "no TLS connection");
		return;
	}
	server_conn_identity(conn);
	if (path && strcmp(path, "/v1/renew") == 0) {
		enroll_renew_handle(req, w, conn); /* enroll.c */
		return;
	}
	if (path && strcmp(path, "/v1/policy") == 0) {
		fleet_policy_handle(req, w, conn);
		return;
	}
	if (path && strcmp(path, "/v1/totp/claim") == 0) {
		fleet_claim_handle(req, w, conn);
		return;
	}
	if (!path || strcmp(path, "/v1/events") != 0) {
		reply_error(req, 404, "not found");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		reply_error(req, 405, "use POST");
		return;
	}
	if (conn->serial[0] && server_serial_revoked(c, conn->serial)) {
		atomic_fetch_add(&metrics.revoked_refused, 1);
		log_refusal(req, conn, 403, "certificate revoked");
		reply_error(req, 403, "certificate revoked");
		return;
	}
	enroll_note_peer(conn); /* the certificate's expiry, for /metrics and the API */

	p = calloc(1, sizeof(*p));
	if (!p) {
		reply_error(req, 503, "out of memory");
		return;
	}
	len = evbuffer_get_length(in);
	body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	status = ingest_decode(conn->terminal, body ? body : "", len, &p->batch, reason);
	if (status != 200) {
		free(p);
		log_refusal(req, conn, status, reason);
		reply_error(req, status, reason);
		return;
	}
	evbuffer_drain(in, len);

	p->w = w;
	p->req = req;
	p->t0_us = server_mono_us();
	pthread_mutex_lock(&wr->lock);
	if (wr->queued_events + p->batch.n > c->cfg->max_queue || wr->stop) {
		bool stopping = wr->stop;
		pthread_mutex_unlock(&wr->lock);
		event_batch_clear(&p->batch);
		free(p);
		char ra[24];
		snprintf(ra, sizeof(ra), "%llu", (unsigned long long)c->cfg->retry_after);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
		if (stopping)
			reply_error(req, 503, "the collector is stopping; try again later");
		else
			reply_error(req, 429, "overloaded; try again later");
		return;
	}
	wr->queued_events += p->batch.n;
	atomic_store(&metrics.queue_events, wr->queued_events);
	*wr->tail = p;
	wr->tail = &p->next;
	pthread_cond_signal(&wr->cond);
	pthread_mutex_unlock(&wr->lock);
}

/* Worker thread: send the answers that the writer finished. */
void ingest_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct ingest_pending *list, *next;

	pthread_mutex_lock(&w->done_lock);
	list = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->done_lock);

	for (struct ingest_pending *p = list; p; p = next) {
		next = p->next;
		if (p->status == 200) {
			json_t *body =
			    json_pack("{s:I}", "acked_through", (json_int_t)p->res.acked_through);
			reply_json(p->req, 200, body);
			json_decref(body);
			metrics_count_status(200);
		} else {
			if (p->status == 503) {
				char ra[24];
				snprintf(ra, sizeof(ra), "%llu",
					 (unsigned long long)w->c->cfg->retry_after);
				evhttp_add_header(evhttp_request_get_output_headers(p->req),
						  "Retry-After", ra);
			}
			reply_error(p->req, p->status, store_status_reason(p->status));
		}
		metrics_observe_latency(server_mono_us() - p->t0_us);
		event_batch_clear(&p->batch);
		free(p);
	}
}

static void complete(struct ingest_pending *list)
{
	struct ingest_pending *next;

	for (struct ingest_pending *p = list; p; p = next) {
		struct worker *w = p->w;
		next = p->next;
		if (!w) {
			if (p->status != 200)
				server_log(
				    LOG_ERR,
				    "store: cannot store the collector's own %s event (status %d)",
				    event_kind_name(p->batch.events[0].kind), p->status);
			event_batch_clear(&p->batch);
			free(p);
			continue;
		}
		pthread_mutex_lock(&w->done_lock);
		p->next = w->done;
		w->done = p;
		pthread_mutex_unlock(&w->done_lock);
		event_active(w->done_ev, EV_TIMEOUT, 0);
	}
}

static void write_group(struct ingest_writer *wr, struct ingest_pending *list)
{
	int64_t now = server_now_ms();
	uint64_t stored = 0, dup = 0, conflicts = 0, gaps = 0, batches = 0;
	int r;

	for (struct ingest_pending *p = list; p; p = p->next)
		store_prepare_batch(wr->store, &p->batch);
	r = store_begin(wr->store);
	for (struct ingest_pending *p = list; p; p = p->next) {
		int q = 0;
		if (r < 0) {
			p->status = 503;
			continue;
		}
		if (!p->w) {
			/* the collector's own event: next in its sequence, without gaps */
			uint64_t max = 0;
			q = store_terminal_max_seq(wr->store, p->batch.terminal, &max);
			if (q >= 0)
				p->batch.events[0].seq = max + 1;
		}
		q = q < 0 ? q : store_write_batch(wr->store, &p->batch, now, &p->res);
		if (q < 0) {
			server_log(LOG_ERR, "store: cannot write a batch of %zu events from %s: %s",
				   p->batch.n, p->batch.terminal, strerror(-q));
			p->status = ingest_store_status(q);
			continue;
		}
		p->status = 200;
		batches++;
		stored += p->res.stored;
		dup += p->res.duplicates;
		conflicts += p->res.conflicts;
		gaps += p->res.gaps;
	}
	if (r >= 0)
		r = store_commit(wr->store);
	if (r < 0) {
		server_log(LOG_ERR, "store: commit failed: %s; the terminals will retry",
			   strerror(-r));
		for (struct ingest_pending *p = list; p; p = p->next)
			if (p->status == 200)
				p->status = 503;
		return;
	}
	for (struct ingest_pending *p = list; p; p = p->next)
		if (p->w && p->status == 200 && p->res.stored)
			fleet_note_batch(wr->c->fleet, &p->batch);
	atomic_fetch_add(&metrics.commits, 1);
	atomic_fetch_add(&metrics.commit_batches, batches);
	atomic_fetch_add(&metrics.events_stored, stored);
	atomic_fetch_add(&metrics.events_duplicate, dup);
	atomic_fetch_add(&metrics.events_conflicting, conflicts);
	atomic_fetch_add(&metrics.gaps_detected, gaps);
}

static void retention(struct ingest_writer *wr)
{
	struct store_retention_policy policy;
	int64_t now = server_now_ms();
	unsigned disposed = 0;
	uint64_t total = 0;
	int more;

	if (!evidence_shortest_period(wr->c->cfg))
		return;
	atomic_store(&metrics.retention_last_run_ms, now);
	evidence_policy(wr->c->cfg, now, &policy);
	do {
		more = store_retention(wr->store, &policy, now, RETENTION_CHUNK, &disposed);
		if (more < 0) {
			server_log(LOG_ERR, "retention: %s; retrying at the next run",
				   strerror(-more));
			wr->retention_pending = false;
			break;
		}
		total += disposed;
		/* let waiting batches in between rounds */
		pthread_mutex_lock(&wr->lock);
		bool busy = wr->head != NULL || wr->stop;
		pthread_mutex_unlock(&wr->lock);
		if (busy && more) {
			wr->retention_pending = true; /* resume after this group */
			break;
		}
		wr->retention_pending = false;
	} while (more);
	atomic_fetch_add(&metrics.retention_deleted, total);
	atomic_store(&metrics.retention_last_disposed, total);
	if (total)
		server_log(LOG_INFO, "retention: disposed of %llu events past their period",
			   (unsigned long long)total);
}

static void *writer_main(void *arg)
{
	struct ingest_writer *wr = arg;
	/* A short retention (tests, demos) is enforced at its own pace, a long one hourly; the
	 * first run soon after start. */
	uint64_t keep = evidence_shortest_period(wr->c->cfg);
	time_t period = keep && keep < RETENTION_PERIOD_S ? (time_t)keep : RETENTION_PERIOD_S;
	time_t next_retention = time(NULL) + (period < 2 ? period : 2);
	/* PostgreSQL: the cursor's mark for replicas (store_cursor_publish()), at most once a
	 * second after rounds that stored, and once more when ingest goes quiet */
	bool publish = store_pg_location(wr->c->cfg->database) != NULL, publish_due = false,
	     publish_failing = false;
	time_t last_publish = 0;

	for (;;) {
		struct ingest_pending *list = NULL, **lt = &list;
		uint64_t n_events = 0;

		pthread_mutex_lock(&wr->lock);
		while (!wr->head && !wr->stop && !wr->retention_pending) {
			struct timespec until = {.tv_sec = next_retention};
			if (publish_due && last_publish + 1 < until.tv_sec)
				until.tv_sec = last_publish + 1;
			if (time(NULL) >= until.tv_sec)
				break;
			pthread_cond_timedwait(&wr->cond, &wr->lock, &until);
		}
		if (!wr->head && wr->stop) {
			pthread_mutex_unlock(&wr->lock);
			break;
		}
		/* Take everything that queued while the last commit was in fsync, up to a bound. */
		while (wr->head && n_events < GROUP_MAX_EVENTS) {
			struct ingest_pending *p = wr->head;
			wr->head = p->next;
			if (!wr->head)
				wr->tail = &wr->head;
			p->next = NULL;
			*lt = p;
			lt = &p->next;
			n_events += p->batch.n;
		}
		pthread_mutex_unlock(&wr->lock);

		if (list) {
			int frames;
			write_group(wr, list);
			publish_due = publish;
			frames = store_wal_frames(wr->store);
			if (frames >= WAL_RESTART_FRAMES) {
				int r = store_checkpoint(wr->store, true);
				if (r < 0)
					server_log(LOG_WARNING, "store: WAL checkpoint: %s",
						   strerror(-r));
			} else if (frames >= WAL_CHECKPOINT_FRAMES) {
				pthread_mutex_lock(&wr->lock);
				wr->ckpt_kicks++;
				pthread_cond_signal(&wr->ckpt_cond);
				pthread_mutex_unlock(&wr->lock);
			}
			pthread_mutex_lock(&wr->lock);
			wr->queued_events -= n_events;
			atomic_store(&metrics.queue_events, wr->queued_events);
			pthread_mutex_unlock(&wr->lock);
			complete(list);
		}
		if (time(NULL) >= next_retention || wr->retention_pending) {
			retention(wr);
			if (!wr->retention_pending)
				next_retention = time(NULL) + period;
		}
		if (publish_due && time(NULL) > last_publish) {
			int r = store_cursor_publish(wr->store);
			if (r < 0 && r != -EBUSY && !publish_failing)
				server_log(LOG_WARNING,
					   "store: cannot publish the events cursor's mark: %s",
					   strerror(-r));
			publish_failing = r < 0 && r != -EBUSY;
			publish_due = r == -EBUSY; /* a round under way elsewhere: next second */
			last_publish = time(NULL);
		}
	}
	return NULL;
}

/* Copies the WAL into the database beside the writer (passive: it never blocks the writer),
 * so that commits do not stall on checkpoints. */
static void *checkpoint_main(void *arg)
{
	struct ingest_writer *wr = arg;
	unsigned seen = 0;

	pthread_mutex_lock(&wr->lock);
	for (;;) {
		while (!wr->stop && wr->ckpt_kicks == seen)
			pthread_cond_wait(&wr->ckpt_cond, &wr->lock);
		if (wr->stop)
			break;
		seen = wr->ckpt_kicks;
		pthread_mutex_unlock(&wr->lock);
		int r = store_checkpoint(wr->ckpt_store, false);
		if (r < 0)
			server_log(LOG_WARNING, "store: background checkpoint: %s", strerror(-r));
		pthread_mutex_lock(&wr->lock);
	}
	pthread_mutex_unlock(&wr->lock);
	return NULL;
}

int ingest_writer_self_event(struct ingest_writer *wr, enum event_kind kind, json_t *data)
{
	struct ingest_pending *p = calloc(1, sizeof(*p));
	struct event *e = calloc(1, sizeof(*e));
	json_t *clause = json_array();

	if (!p || !e || !clause || !data) {
		free(p);
		free(e);
		json_decref(clause);
		json_decref(data);
		return -ENOMEM;
	}
	*e = (struct event){.ts_ms = server_now_ms(), .kind = kind, .clause = clause, .data = data};
	snprintf(e->terminal, sizeof(e->terminal), "%s", INGEST_SELF_TERMINAL);
	snprintf(p->batch.terminal, sizeof(p->batch.terminal), "%s", INGEST_SELF_TERMINAL);
	p->batch.events = e;
	p->batch.n = 1;
	p->t0_us = server_mono_us();

	pthread_mutex_lock(&wr->lock);
	if (wr->stop) {
		pthread_mutex_unlock(&wr->lock);
		event_batch_clear(&p->batch);
		free(p);
		return -ESHUTDOWN;
	}
	/* one event, never refused for the queue bound: it tells the auditors something */
	wr->queued_events += 1;
	*wr->tail = p;
	wr->tail = &p->next;
	pthread_cond_signal(&wr->cond);
	pthread_mutex_unlock(&wr->lock);
	return 0;
}

int ingest_writer_start(struct collector *c, struct store *store, struct ingest_writer **ret)
{
	struct ingest_writer *wr = calloc(1, sizeof(*wr));
	pthread_condattr_t ca;
	int r;

	if (!wr)
		return -ENOMEM;
	wr->c = c;
	wr->store = store;
	wr->tail = &wr->head;
	pthread_mutex_init(&wr->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_REALTIME);
	pthread_cond_init(&wr->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&wr->ckpt_cond, NULL);
	r = store_open(c->cfg->database, true, &wr->ckpt_store);
	if (r < 0) {
		free(wr);
		return r;
	}
	r = -pthread_create(&wr->ckpt_thread, NULL, checkpoint_main, wr);
	if (r < 0) {
		store_close(wr->ckpt_store);
		free(wr);
		return r;
	}
	wr->ckpt_running = true;
	r = -pthread_create(&wr->thread, NULL, writer_main, wr);
	if (r < 0) {
		ingest_writer_stop(wr);
		return r;
	}
	wr->thread_running = true;
	*ret = wr;
	return 0;
}

void ingest_writer_stop(struct ingest_writer *wr)
{
	if (!wr)
		return;
	pthread_mutex_lock(&wr->lock);
	wr->stop = true;
	pthread_cond_signal(&wr->cond);
	pthread_cond_signal(&wr->ckpt_cond);
	pthread_mutex_unlock(&wr->lock);
	if (wr->thread_running)
		pthread_join(wr->thread, NULL);
	if (wr->ckpt_running)
		pthread_join(wr->ckpt_thread, NULL);
	store_close(wr->ckpt_store);
	free(wr);
}
