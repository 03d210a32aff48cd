/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: listeners, TLS (mutual on ingest), worker threads with one event base each,
 * connection limits and request deadlines. Shared by ingest.c and api.c. */
#pragma once

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
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
struct fleet;
struct account_store;

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
	/* dashboard: the terminals whose certificate expires soon (api.c), refreshed each second */
	char *cert_expiring;
	int64_t cert_expiring_ms;
};

/* The threads that answer the dashboard's heavy requests (the log review, the evidence bundle,
 * the self-inspection report: seconds at a thousand terminals) so that the dashboard thread
 * keeps answering the light ones. At most SERVER_HEAVY_THREADS run at once; another gets 503. */
#define SERVER_HEAVY_THREADS	 2
#define SERVER_HEAVY_RETRY_AFTER 10 /* seconds, the 503's Retry-After */

struct server_heavy_job;
struct heavy_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct server_heavy_job *queue, **tail; /* handed over, not yet taken by a thread */
	unsigned busy;				/* queued or running */
	bool stop;
	pthread_t threads[SERVER_HEAVY_THREADS];
	unsigned n_threads;
	struct server_heavy_job *done; /* run, to be answered on the dashboard thread */
	struct event *done_ev;	       /* on the dashboard's base */
};

struct collector {
	const struct collector_config *cfg;
	SSL_CTX *ingest_ctx, *dashboard_ctx;

	struct watched_file revoked_file;
	char **revoked; /* sorted upper-case hex serials without leading zeros */
	size_t n_revoked;
	bool revoked_partial; /* the list in force left out refused lines (the dashboard knows) */

	struct watched_file token_file;
	char *token;

	struct ingest_writer *writer;
	struct fleet *fleet;		/* NULL when [fleet] is not configured */
	struct account_store *accounts; /* the dashboard thread's (auth.c) */
	struct worker *workers;
	unsigned n_workers;
	struct worker dashboard;
	struct heavy_pool heavy;

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
/* Tells the dashboard (an event of INGEST_SELF_TERMINAL) that the revoked list in force has no
 * refused line; main calls it at start when an earlier run may have said otherwise. */
void server_revoked_report_clean(struct collector *c);
/* Constant-time check of an "Authorization: Bearer ..." header value against the token file. */
bool server_token_ok(struct collector *c, const char *authorization);

/* RFC 9112 framing of a request that libevent 2.1 has parsed, checked before its body is
 * trusted: libevent takes the first of two Content-Length headers, accepts "+N", ignores a
 * Transfer-Encoding other than "chunked" and a header name with a space before the colon, and
 * reads no body for HEAD and TRACE: each time another parser (a proxy, the next request on the
 * connection) would see a different request boundary. Refuses (-EBADMSG with a reason):
 * a header name that is not a token; more than one Content-Length, Transfer-Encoding or Host;
 * a Content-Length that is not 1*DIGIT; a Transfer-Encoding other than "chunked", or beside a
 * Content-Length; a body announced on HEAD or TRACE; a control character in a value.
 * The caller answers 400 and closes the connection (the rest of its bytes is not a request). */
int server_check_framing(const struct evkeyvalq *headers, enum evhttp_cmd_type method,
			 char reason[static EVENT_REASON_MAX]);
/* Answers 400 with reason as JSON and closes the connection after it. */
void server_refuse_framing(struct evhttp_request *req, const char *reason);

/* Parses a revoked-serials file: one hex serial per line ("serial=" prefix and ':' allowed),
 * '#' comments and blank lines ignored. A line that is not a serial is left out: *ret_bad says
 * how many were, *ret_line the first of them (0 when none). -ENOMEM only. */
int server_parse_revoked(const char *text, char ***ret, size_t *ret_n, unsigned *ret_bad,
			 unsigned *ret_line);
void server_free_revoked(char **list, size_t n);

/* {"error":reason}, reason cut to its valid UTF-8 prefix. */
json_t *server_error_json(const char *reason);
/* A new buffer holding body as compact JSON and a newline (the answer body of both listeners);
 * empty when body cannot be dumped, NULL without memory. */
struct evbuffer *server_json_buffer(const json_t *body);

/* An answer made on another thread and sent by the dashboard thread (evhttp is not shared
 * between threads): status, headers and body. */
struct server_answer {
	int status;
	struct evkeyvalq headers;
	struct evbuffer *body; /* NULL: none */
};
void server_answer_init(struct server_answer *a);
void server_answer_clear(struct server_answer *a);
/* Like server_reply_json and server_reply_error, into a (which is cleared first). */
void server_answer_json(struct server_answer *a, int status, json_t *body);
void server_answer_error(struct server_answer *a, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sends a (its headers added to the request's) and clears it. */
void server_answer_send(struct evhttp_request *req, struct server_answer *a);

/* A heavy request: run() on a heavy thread fills answer from what the dashboard thread put in
 * the job (never touching req), then the dashboard thread sends answer and calls release(). */
struct server_heavy_job {
	void (*run)(struct server_heavy_job *job);
	void (*release)(struct server_heavy_job *job);
	struct evhttp_request *req;
	struct server_answer answer;
	struct server_heavy_job *next;
};
/* Dashboard thread: hands job (answer initialised here) to a heavy thread. -EBUSY when
 * SERVER_HEAVY_THREADS requests are in progress: the job is still the caller's, who answers
 * with server_reply_busy. */
int server_heavy_submit(struct collector *c, struct evhttp_request *req,
			struct server_heavy_job *job);
/* 503, Retry-After and {"error": "...", "busy": true}. */
void server_reply_busy(struct evhttp_request *req);

/* Answers status with body as JSON (takes body), no-store. */
void server_reply_json(struct evhttp_request *req, int status, json_t *body);
/* Answers status with {"error": formatted reason}. */
void server_reply_error(struct evhttp_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The dashboard's bearer token: true when it is valid, else answers 401 and counts it. */
bool server_dashboard_auth(struct evhttp_request *req, struct collector *c);

int64_t server_now_ms(void);
uint64_t server_mono_us(void);

/* One line on stderr (the journal) at a syslog priority (LOG_ERR, LOG_WARNING, LOG_INFO):
 * "mynaguard-collector: ...", written by log_line (base/log.h). */
void server_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
