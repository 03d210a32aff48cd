/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: listeners, TLS (mutual on ingest), worker threads with one event base each,
 * connection limits and request deadlines. Shared by ingest.c and api.c. */
#pragma once

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <syslog.h> /* the priorities of server_log */

#include "conf.h"
#include "event.h"

struct ingest_writer;
struct ingest_pending;
struct store;

/* A file that is re-read when it changes (checked by stat before each use). */
struct watched_file {
	pthread_mutex_t lock;
	const char *path;
	struct stat st;
	bool loaded;
};

struct worker {
	struct collector *c;
	unsigned index;
	bool dashboard;
	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *listener;
	unsigned conns, max_conns;
	bool paused;
	pthread_t thread;
	bool running;

	/* ingest: answers that the writer thread has completed, sent from this thread */
	pthread_mutex_t done_lock;
	struct ingest_pending *done;
	struct event *done_ev;

	/* dashboard: a read-only store of its own */
	struct store *store;
};

struct collector {
	const struct collector_config *cfg;
	SSL_CTX *ingest_ctx, *dashboard_ctx;

	struct watched_file revoked_file;
	char **revoked; /* sorted upper-case hex serials without leading zeros */
	size_t n_revoked;

	struct watched_file token_file;
	char *token;

	struct ingest_writer *writer;
	struct worker *workers;
	unsigned n_workers;
	struct worker dashboard;

	char ingest_addr[80], dashboard_addr[80]; /* as printed in the READY line */
};

/* Per connection, hung on the SSL object (freed with it). */
struct conn {
	struct worker *w;
	struct bufferevent *bev;
	struct event *deadline;
	bool identity_checked;
	char terminal[EVENT_TERMINAL_MAX + 1]; /* "" when the certificate names no valid id */
	char serial[80];
};

/* Loads TLS material, the revoked list and the token; binds both listeners unless check_only
 * (--check must work beside a running collector). Logs what failed. */
int server_setup(struct collector *c, const struct collector_config *cfg, bool check_only);
/* Starts the worker threads and the dashboard thread. */
int server_start(struct collector *c);
/* Stops accepting, ends the threads. */
void server_stop(struct collector *c);

/* The connection of a request; NULL when it is gone. */
struct conn *server_conn(struct evhttp_request *req);
/* A request has been read completely: stop its deadline and re-arm it after the answer. */
void server_request_begin(struct evhttp_request *req, struct conn *conn);
/* Fills conn->terminal and conn->serial from the client certificate (once per connection). */
void server_conn_identity(struct conn *conn);
/* true when the serial is listed in the revoked file (re-read when it changed). */
bool server_serial_revoked(struct collector *c, const char *serial);
/* Constant-time check of an "Authorization: Bearer ..." header value against the token file. */
bool server_token_ok(struct collector *c, const char *authorization);

/* Loads a revoked-serials file: one hex serial per line ("serial=" prefix and ':' allowed),
 * '#' comments and blank lines ignored. -EINVAL with the line in *ret_line on a bad line. */
int server_parse_revoked(const char *text, char ***ret, size_t *ret_n, unsigned *ret_line);
void server_free_revoked(char **list, size_t n);

/* A new buffer holding body as compact JSON and a newline (the answer body of both listeners);
 * empty when body cannot be dumped, NULL without memory. */
struct evbuffer *server_json_buffer(const json_t *body);

int64_t server_now_ms(void);
uint64_t server_mono_us(void);

/* One line on stderr (the journal) at a syslog priority (LOG_ERR, LOG_WARNING, LOG_INFO):
 * "mynaguard-collector: ...", written by log_line (base/log.h). */
void server_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
