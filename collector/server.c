/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: listeners, TLS (mutual on ingest), worker threads with one event base each,
 * connection limits and request deadlines. Shared by ingest.c and api.c. */
#include "server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include "api.h"
#include "fileio.h"
#include "ingest.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "secmem.h"
#include "store.h"
#include "utf8.h"

#define TOKEN_MIN   16
#define TOKEN_MAX   4096
#define REVOKED_MAX (16 * 1024 * 1024)

static int conn_ex_index = -1;

void server_log(int priority, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	line[utf8_truncate(line, strlen(line), sizeof(line) - 2)] = 0; /* whole characters */
	log_line(priority, "mynaguard-collector: %s", line);
}

json_t *server_error_json(const char *reason)
{
	/* a reason may quote the peer's bytes, or have been shortened by snprintf: the JSON
	 * string gets its valid UTF-8 prefix (jansson refuses anything else) */
	return json_pack("{s:s%}", "error", reason, utf8_valid_prefix(reason, strlen(reason)));
}

struct evbuffer *server_json_buffer(const json_t *body)
{
	struct evbuffer *buf = evbuffer_new();
	char *text = json_dumps(body, JSON_COMPACT);

	if (buf && text) {
		evbuffer_add(buf, text, strlen(text));
		evbuffer_add(buf, "\n", 1);
	}
	free(text);
	return buf;
}

void server_answer_init(struct server_answer *a)
{
	a->status = 0;
	TAILQ_INIT(&a->headers);
	a->body = NULL;
}

void server_answer_clear(struct server_answer *a)
{
	evhttp_clear_headers(&a->headers);
	if (a->body)
		evbuffer_free(a->body);
	server_answer_init(a);
}

void server_answer_json(struct server_answer *a, int status, json_t *body)
{
	server_answer_clear(a);
	a->status = status;
	a->body = server_json_buffer(body);
	evhttp_add_header(&a->headers, "Content-Type", "application/json");
	evhttp_add_header(&a->headers, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(&a->headers, "Cache-Control", "no-store");
	json_decref(body);
}

static void answer_verror(struct server_answer *a, int status, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void answer_verror(struct server_answer *a, int status, const char *fmt, va_list ap)
{
	char reason[512];

	vsnprintf(reason, sizeof(reason), fmt, ap);
	server_answer_json(a, status, server_error_json(reason));
}

void server_answer_error(struct server_answer *a, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	answer_verror(a, status, fmt, ap);
	va_end(ap);
}

void server_answer_send(struct evhttp_request *req, struct server_answer *a)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	const struct evkeyval *kv;

	TAILQ_FOREACH(kv, &a->headers, next)
	{
		evhttp_add_header(h, kv->key, kv->value);
	}
	evhttp_send_reply(req, a->status ? a->status : 503, NULL, a->body);
	server_answer_clear(a);
}

void server_reply_json(struct evhttp_request *req, int status, json_t *body)
{
	struct server_answer a;

	server_answer_init(&a);
	server_answer_json(&a, status, body);
	server_answer_send(req, &a);
}

void server_reply_error(struct evhttp_request *req, int status, const char *fmt, ...)
{
	struct server_answer a;
	va_list ap;

	server_answer_init(&a);
	va_start(ap, fmt);
	answer_verror(&a, status, fmt, ap);
	va_end(ap);
	server_answer_send(req, &a);
}

void server_reply_busy(struct evhttp_request *req)
{
	char ra[16];

	atomic_fetch_add(&metrics.heavy_busy, 1);
	snprintf(ra, sizeof(ra), "%d", SERVER_HEAVY_RETRY_AFTER);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
	server_reply_json(req, 503,
			  json_pack("{s:s, s:b, s:i}", "error",
				    "busy: the collector is already making as many reviews, "
				    "reports and evidence bundles as it makes at once; "
				    "try again in a few seconds",
				    "busy", 1, "limit", SERVER_HEAVY_THREADS));
}

/* ---- heavy requests ---- */

static void *heavy_main(void *arg)
{
	struct heavy_pool *h = arg;
	struct server_heavy_job *job;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (!h->queue && !h->stop)
			pthread_cond_wait(&h->cond, &h->lock);
		job = h->queue;
		if (!job)
			break; /* stopping, and nothing left */
		h->queue = job->next;
		if (!h->queue)
			h->tail = &h->queue;
		pthread_mutex_unlock(&h->lock);

		job->run(job);

		pthread_mutex_lock(&h->lock);
		h->busy--;
		job->next = h->done;
		h->done = job;
		event_active(h->done_ev, EV_TIMEOUT, 0);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Dashboard thread: sends the answers that the heavy threads made. */
static void heavy_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct heavy_pool *h = arg;
	struct server_heavy_job *list, *next, *rev = NULL;

	pthread_mutex_lock(&h->lock);
	list = h->done;
	h->done = NULL;
	pthread_mutex_unlock(&h->lock);
	for (; list; list = next) { /* in the order they were done */
		next = list->next;
		list->next = rev;
		rev = list;
	}
	for (; rev; rev = next) {
		next = rev->next;
		server_answer_send(rev->req, &rev->answer);
		rev->release(rev);
	}
}

int server_heavy_submit(struct collector *c, struct evhttp_request *req,
			struct server_heavy_job *job)
{
	struct heavy_pool *h = &c->heavy;

	pthread_mutex_lock(&h->lock);
	if (h->stop || h->busy >= h->n_threads) {
		pthread_mutex_unlock(&h->lock);
		return -EBUSY;
	}
	h->busy++;
	job->req = req;
	server_answer_init(&job->answer);
	job->next = NULL;
	*h->tail = job;
	h->tail = &job->next;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static void heavy_stop(struct heavy_pool *h)
{
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	for (unsigned i = 0; i < h->n_threads; i++)
		pthread_join(h->threads[i], NULL);
	h->n_threads = 0;
}

/* After the dashboard thread has stopped: the answers it never sent. */
static void heavy_free(struct heavy_pool *h)
{
	struct server_heavy_job *next;

	for (; h->done; h->done = next) {
		next = h->done->next;
		server_answer_clear(&h->done->answer);
		h->done->release(h->done);
	}
	event_free(h->done_ev);
	h->done_ev = NULL;
}

bool server_dashboard_auth(struct evhttp_request *req, struct collector *c)
{
	if (server_token_ok(
		c, evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization")))
		return true;
	atomic_fetch_add(&metrics.dashboard_unauthorized, 1);
	evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
			  "Bearer realm=\"mynaguard\"");
	server_reply_error(req, 401, "a valid bearer token is required");
	return false;
}

int64_t server_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t server_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void log_ssl_errors(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (!e) {
		server_log(LOG_ERR, "%s", what);
		return;
	}
	ERR_error_string_n(e, buf, sizeof(buf));
	server_log(LOG_ERR, "%s: %s", what, buf);
	ERR_clear_error();
}

/* ---- HTTP framing ---- */

static bool header_token(const char *s)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";

	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) || (unsigned char)*s >= 0x80)
			if (!strchr(tchar, *s))
				return false;
	return true;
}

int server_check_framing(const struct evkeyvalq *headers, enum evhttp_cmd_type method,
			 char reason[static EVENT_REASON_MAX])
{
	const struct evkeyval *kv;
	const char *cl = NULL, *te = NULL;
	unsigned n_cl = 0, n_te = 0, n_host = 0;

	TAILQ_FOREACH(kv, headers, next)
	{
		if (!header_token(kv->key)) {
			snprintf(reason, EVENT_REASON_MAX,
				 "a header name is not a token (a space before the colon?)");
			return -EBADMSG;
		}
		for (const char *v = kv->value; *v; v++)
			if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f) {
				snprintf(reason, EVENT_REASON_MAX,
					 "a control character in a header value");
				return -EBADMSG;
			}
		if (strcasecmp(kv->key, "Content-Length") == 0) {
			n_cl++;
			cl = kv->value;
		} else if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
			n_te++;
			te = kv->value;
		} else if (strcasecmp(kv->key, "Host") == 0)
			n_host++;
	}
	if (n_cl > 1 || n_te > 1 || n_host > 1) {
		snprintf(reason, EVENT_REASON_MAX, "more than one %s header",
			 n_cl > 1   ? "Content-Length"
			 : n_te > 1 ? "Transfer-Encoding"
				    : "Host");
		return -EBADMSG;
	}
	if (cl && (!*cl || strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 18)) {
		snprintf(reason, EVENT_REASON_MAX, "Content-Length: expected decimal digits");
		return -EBADMSG;
	}
	if (te && strcasecmp(te, "chunked") != 0) {
		snprintf(reason, EVENT_REASON_MAX,
			 "Transfer-Encoding: only \"chunked\" is accepted");
		return -EBADMSG;
	}
	if (te && cl) {
		snprintf(reason, EVENT_REASON_MAX,
			 "both Transfer-Encoding and Content-Length: the length is ambiguous");
		return -EBADMSG;
	}
	/* libevent reads no body for these: a body would be taken for the next request */
	if ((method == EVHTTP_REQ_HEAD || method == EVHTTP_REQ_TRACE) &&
	    (te || (cl && strspn(cl, "0") != strlen(cl)))) {
		snprintf(reason, EVENT_REASON_MAX, "a body on %s",
			 method == EVHTTP_REQ_HEAD ? "HEAD" : "TRACE");
		return -EBADMSG;
	}
	return 0;
}

void server_refuse_framing(struct evhttp_request *req, const char *reason)
{
	json_t *body = server_error_json(reason);
	struct evbuffer *buf = server_json_buffer(body);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	/* libevent closes the connection after an answer that carries this header, before it
	 * parses anything more from it */
	evhttp_add_header(h, "Connection", "close");
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, 400, NULL, buf);
	evbuffer_free(buf);
	json_decref(body);
}

/* ---- revoked serials ---- */

static int normalize_serial(const char *in, size_t len, char *out, size_t outsz)
{
	size_t n = 0;
	bool leading = true;

	if (len >= 7 && strncasecmp(in, "serial=", 7) == 0) {
		in += 7;
		len -= 7;
	}
	if (len >= 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) {
		in += 2;
		len -= 2;
	}
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		if (ch == ':')
			continue;
		if (!isxdigit((unsigned char)ch))
			return -EINVAL;
		if (leading && ch == '0')
			continue;
		leading = false;
		if (n + 1 >= outsz)
			return -EINVAL;
		out[n++] = (char)toupper((unsigned char)ch);
	}
	if (n == 0) {
		/* serial 0 (or only zeros): still a serial */
		bool any = false;
		for (size_t i = 0; i < len; i++)
			any |= in[i] == '0';
		if (!any)
			return -EINVAL;
		out[n++] = '0';
	}
	out[n] = 0;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void server_free_revoked(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

int server_parse_revoked(const char *text, char ***ret, size_t *ret_n, unsigned *ret_bad,
			 unsigned *ret_line)
{
	char **list = NULL;
	size_t n = 0, cap = 0;
	unsigned line = 0, bad = 0, first_bad = 0;
	const char *p = text;

	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *s = p, *e = p + len;
		char serial[80];

		line++;
		p = eol ? eol + 1 : p + len;
		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s == e || *s == '#')
			continue;
		if (normalize_serial(s, (size_t)(e - s), serial, sizeof(serial)) < 0) {
			/* refuse this line, keep the others: keeping the whole old list would leave a
			 * serial added in the same edit unrevoked */
			if (!bad++)
				first_bad = line;
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nl = realloc(list, ncap * sizeof(*nl));
			if (!nl) {
				server_free_revoked(list, n);
				return -ENOMEM;
			}
			list = nl;
			cap = ncap;
		}
		list[n] = strdup(serial);
		if (!list[n]) {
			server_free_revoked(list, n);
			return -ENOMEM;
		}
		n++;
	}
	if (n)
		qsort(list, n, sizeof(*list), cmp_str);
	*ret = list;
	*ret_n = n;
	*ret_bad = bad;
	*ret_line = first_bad;
	return 0;
}

/* Tells the auditors on the dashboard: a compliance event of the collector itself whose one
 * check says whether the whole revoked-serials file applies. */
static void revoked_report(struct collector *c, unsigned bad, unsigned line, size_t n)
{
	char detail[256];
	json_t *data;

	if (!c->writer)
		return;
	if (bad)
		snprintf(
		    detail, sizeof(detail),
		    "revoked_serials: %u line%s refused (first: line %u, not a hexadecimal "
		    "serial); the other %zu serials are revoked. A serial on a refused line is "
		    "NOT revoked: fix the file.",
		    bad, bad == 1 ? "" : "s", line, n);
	else
		snprintf(detail, sizeof(detail), "revoked_serials: all %zu serials apply", n);
	data =
	    json_pack("{s:[{s:s,s:s,s:s}],s:i}", "checks", "id", "collector.revoked_serials",
		      "status", bad ? "error" : "pass", "detail", detail, "interval_s", 7 * 86400);
	if (ingest_writer_self_event(c->writer, EVENT_COMPLIANCE, data) < 0)
		server_log(LOG_ERR, "revoked serials: cannot queue the dashboard event");
}

/* Caller holds revoked_file.lock. At start a bad line is an error; later the good lines apply,
 * the bad ones are refused and the dashboard gets an event. Keeps the old list only when the
 * file cannot be read. */
static int revoked_reload_locked(struct collector *c, bool startup)
{
	struct watched_file *wf = &c->revoked_file;
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	char **list;
	size_t n;
	unsigned bad = 0, line = 0;
	int r;

	fd = open(wf->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = negative_errno();
		if (startup || wf->loaded)
			server_log(LOG_ERR, "revoked serials %s: %s%s", wf->path, strerror(-r),
				   startup ? "" : "; keeping the previous list");
		if (!startup && stat(wf->path, &st) < 0)
			wf->loaded = false; /* log once until it comes back */
		return r;
	}
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (wf->loaded && st.st_ino == wf->st.st_ino && st.st_dev == wf->st.st_dev &&
	    st.st_size == wf->st.st_size && st.st_mtim.tv_sec == wf->st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == wf->st.st_mtim.tv_nsec)
		return 0;
	r = fileio_read_fd(fd, REVOKED_MAX, &text, NULL);
	if (r < 0) {
		server_log(LOG_ERR, "revoked serials %s: %s", wf->path, strerror(-r));
		return r;
	}
	r = server_parse_revoked(text, &list, &n, &bad, &line);
	if (r < 0) {
		server_log(LOG_ERR, "revoked serials %s: %s; keeping the previous list", wf->path,
			   strerror(-r));
		return r;
	}
	if (bad && startup) {
		server_log(LOG_ERR, "revoked serials %s:%u: not a hexadecimal serial", wf->path,
			   line);
		server_free_revoked(list, n);
		return -EINVAL;
	}
	server_free_revoked(c->revoked, c->n_revoked);
	c->revoked = list;
	c->n_revoked = n;
	wf->st = st; /* a bad file is not re-parsed (nor reported again) until it changes */
	wf->loaded = true;
	if (startup)
		return 0;
	if (bad)
		server_log(
		    LOG_WARNING,
		    "revoked serials %s:%u: not a hexadecimal serial; %u line%s refused, %zu "
		    "serials revoked; a serial on a refused line is NOT revoked",
		    wf->path, line, bad, bad == 1 ? "" : "s", n);
	else
		server_log(LOG_INFO, "revoked serials %s reloaded: %zu serials", wf->path, n);
	if (bad || c->revoked_partial)
		revoked_report(c, bad, line, n);
	c->revoked_partial = bad > 0;
	return 0;
}

void server_revoked_report_clean(struct collector *c)
{
	pthread_mutex_lock(&c->revoked_file.lock);
	revoked_report(c, 0, 0, c->n_revoked);
	pthread_mutex_unlock(&c->revoked_file.lock);
}

bool server_serial_revoked(struct collector *c, const char *serial)
{
	const char *key = serial;
	bool found;

	if (!c->cfg->revoked_serials)
		return false;
	pthread_mutex_lock(&c->revoked_file.lock);
	revoked_reload_locked(c, false);
	found = c->n_revoked &&
		bsearch(&key, c->revoked, c->n_revoked, sizeof(*c->revoked), cmp_str) != NULL;
	pthread_mutex_unlock(&c->revoked_file.lock);
	return found;
}

static void cert_serial(X509 *cert, char *out, size_t outsz)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	out[0] = 0;
	if (hex && normalize_serial(hex, strlen(hex), out, outsz) < 0)
		out[0] = 0;
	OPENSSL_free(hex);
	BN_free(bn);
}

/* ---- token ---- */

static int token_reload_locked(struct collector *c, bool startup)
{
	struct watched_file *wf = &c->token_file;
	const struct fileio_expect expect = {.forbidden_mode = 0007};
	_cleanup_close_ int fd = -1;
	struct stat st;
	char *text = NULL;
	size_t len;
	int r;

	r = fileio_open_verified(AT_FDCWD, wf->path, O_RDONLY, &expect, &fd);
	if (r < 0) {
		if (startup || wf->loaded)
			server_log(LOG_ERR, "token file %s: %s%s", wf->path,
				   r == -EACCES ? "readable by others (chmod o-rwx)" : strerror(-r),
				   startup ? "" : "; keeping the previous token");
		wf->loaded = startup ? false : wf->loaded;
		return r;
	}
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (wf->loaded && st.st_ino == wf->st.st_ino && st.st_size == wf->st.st_size &&
	    st.st_mtim.tv_sec == wf->st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == wf->st.st_mtim.tv_nsec)
		return 0;
	r = fileio_read_fd(fd, TOKEN_MAX, &text, &len);
	if (r < 0)
		return r;
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		text[--len] = 0;
	if (len < TOKEN_MIN || strpbrk(text, " \t\r\n")) {
		server_log(
		    LOG_ERR,
		    "token file %s: the token must be one line of at least %d characters without spaces",
		    wf->path, TOKEN_MIN);
		secmem_free_string(text);
		wf->st = st;
		return -EINVAL;
	}
	secmem_free_string(c->token);
	c->token = text;
	wf->st = st;
	wf->loaded = true;
	return 0;
}

bool server_token_ok(struct collector *c, const char *authorization)
{
	bool ok;

	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
		return false;
	authorization += 7;
	while (*authorization == ' ')
		authorization++;
	pthread_mutex_lock(&c->token_file.lock);
	token_reload_locked(c, false);
	ok = c->token && secmem_streq(authorization, c->token);
	pthread_mutex_unlock(&c->token_file.lock);
	return ok;
}

/* ---- TLS ---- */

static int verify_cb(int preverify_ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct collector *c = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
	char serial[80];

	if (!preverify_ok || !c)
		return 0;
	if (X509_STORE_CTX_get_error_depth(x) != 0)
		return 1;
	cert_serial(X509_STORE_CTX_get_current_cert(x), serial, sizeof(serial));
	if (!serial[0] || server_serial_revoked(c, serial)) {
		atomic_fetch_add(&metrics.revoked_refused, 1);
		X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REVOKED);
		return 0;
	}
	return 1;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
	/* A fatal alert that we send ends a handshake: count it (no, unknown or revoked cert). */
	if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE) && (ret >> 8) == SSL3_AL_FATAL)
		atomic_fetch_add(&metrics.handshakes_failed, 1);
}

static SSL_CTX *tls_context(struct collector *c, const char *cert, const char *key,
			    const char *client_ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		log_ssl_errors("cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_app_data(ctx, c);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		log_ssl_errors(cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		log_ssl_errors(key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (client_ca) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
		if (!names || SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
			log_ssl_errors(client_ca);
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   verify_cb);
		SSL_CTX_set_verify_depth(ctx, 4);
		SSL_CTX_set_info_callback(ctx, info_cb);
		/* Terminals reconnect after every outage; resumption saves a full handshake. The
		 * revoked list is checked again on every request, so a resumed session of a revoked
		 * certificate still gets 403. */
		SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"mynaguard-ingest", 16);
	}
	return ctx;
}

/* ---- connections ---- */

static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			 void *argp)
{
	struct conn *conn = ptr;
	struct worker *w;

	if (!conn)
		return;
	w = conn->w;
	event_free(conn->deadline);
	free(conn);
	w->conns--;
	if (!w->dashboard)
		atomic_fetch_sub(&metrics.connections_open, 1);
	if (w->paused && w->conns < w->max_conns) {
		evconnlistener_enable(w->listener);
		w->paused = false;
	}
}

static void deadline_cb(evutil_socket_t fd_unused, short what, void *arg)
{
	struct conn *conn = arg;
	evutil_socket_t fd = bufferevent_getfd(conn->bev);

	/* The peer took too long for the handshake or one whole request (one byte a second, or
	 * silence on a kept-alive connection): the next read sees EOF and libevent frees it. */
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static void deadline_arm(struct conn *conn)
{
	struct timeval tv = {.tv_sec = (time_t)conn->w->c->cfg->request_timeout};
	evtimer_add(conn->deadline, &tv);
}

static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
	struct worker *w = arg;
	SSL *ssl = SSL_new(w->dashboard ? w->c->dashboard_ctx : w->c->ingest_ctx);
	struct conn *conn = calloc(1, sizeof(*conn));
	struct bufferevent *bev;

	if (!ssl || !conn) {
		SSL_free(ssl);
		free(conn);
		return NULL; /* libevent then makes a plain socket; its TLS-less bytes fail */
	}
	conn->w = w;
	conn->deadline = evtimer_new(base, deadline_cb, conn);
	if (!conn->deadline) {
		SSL_free(ssl);
		free(conn);
		return NULL;
	}
	/* From here on SSL_free(ssl) frees conn (conn_ex_free) and does the counting. */
	SSL_set_ex_data(ssl, conn_ex_index, conn);
	w->conns++;
	if (!w->dashboard) {
		atomic_fetch_add(&metrics.connections_open, 1);
		atomic_fetch_add(&metrics.connections_total, 1);
	}
	if (w->conns >= w->max_conns && !w->paused) {
		/* Over the limit the kernel's backlog holds new connections until one closes. */
		evconnlistener_disable(w->listener);
		w->paused = true;
	}
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	conn->bev = bev;
	deadline_arm(conn);
	return bev;
}

struct conn *server_conn(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;

	return ssl ? SSL_get_ex_data(ssl, conn_ex_index) : NULL;
}

static void request_complete_cb(struct evhttp_request *req, void *arg)
{
	struct conn *conn = server_conn(req);
	if (conn)
		deadline_arm(conn); /* the next request on this connection gets its own time */
}

void server_request_begin(struct evhttp_request *req, struct conn *conn)
{
	if (!conn)
		return;
	evtimer_del(conn->deadline);
	evhttp_request_set_on_complete_cb(req, request_complete_cb, NULL);
}

void server_conn_identity(struct conn *conn)
{
	SSL *ssl;
	X509 *cert;
	X509_NAME *name;
	int idx;

	if (conn->identity_checked)
		return;
	conn->identity_checked = true;
	ssl = bufferevent_openssl_get_ssl(conn->bev);
	cert = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	if (!cert)
		return;
	cert_serial(cert, conn->serial, sizeof(conn->serial));
	/* The terminal id is the subject's one and only commonName. */
	name = X509_get_subject_name(cert);
	idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (idx >= 0 && X509_NAME_get_index_by_NID(name, NID_commonName, idx) < 0) {
		ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
		unsigned char *utf8 = NULL;
		int len = ASN1_STRING_to_UTF8(&utf8, s);
		if (len > 0 && len <= EVENT_TERMINAL_MAX && memchr(utf8, 0, (size_t)len) == NULL &&
		    event_terminal_id_valid((const char *)utf8))
			memcpy(conn->terminal, utf8, (size_t)len + 1);
		OPENSSL_free(utf8);
	}
	X509_free(cert);
}

/* ---- listeners and threads ---- */

static int parse_listen(const char *spec, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	_cleanup_free_ char *host = NULL;
	const char *colon, *port;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	int rc;

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		if (!end)
			return -EINVAL;
		host = strndup(spec + 1, (size_t)(end - spec - 1));
		port = end + 2;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return -EINVAL;
		host = strndup(spec, (size_t)(colon - spec));
		port = colon + 1;
	}
	if (!host)
		return -ENOMEM;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0 || !ai)
		return -EADDRNOTAVAIL;
	memcpy(ret, ai->ai_addr, ai->ai_addrlen);
	*ret_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, outsz, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, outsz, "%s:%u", host, ntohs(s4->sin_port));
	}
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	/* EMFILE and friends: stop accepting for a moment instead of spinning. */
	server_log(LOG_WARNING, "accept: %s", evutil_socket_error_to_string(err));
}

static int worker_init(struct collector *c, struct worker *w, bool dashboard, unsigned index,
		       struct sockaddr_storage *addr, socklen_t addrlen, unsigned max_conns)
{
	const struct collector_config *cfg = c->cfg;
	struct timeval tv = {.tv_sec = (time_t)cfg->request_timeout};

	w->c = c;
	w->index = index;
	w->dashboard = dashboard;
	w->max_conns = max_conns;
	pthread_mutex_init(&w->done_lock, NULL);
	w->base = event_base_new();
	w->http = w->base ? evhttp_new(w->base) : NULL;
	if (!w->http)
		return -ENOMEM;
	w->listener = evconnlistener_new_bind(w->base, NULL, NULL,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
						  LEV_OPT_REUSEABLE |
						  (dashboard ? 0 : LEV_OPT_REUSEABLE_PORT),
					      1024, (struct sockaddr *)addr, (int)addrlen);
	if (!w->listener)
		return negative_errno();
	evconnlistener_set_error_cb(w->listener, accept_error_cb);
	/* Accepted sockets inherit TCP_NODELAY (Linux): an answer leaves as several TLS records
	 * (headers, body), and Nagle held the last one for the client's delayed ACK (~40 ms). */
	if (setsockopt(evconnlistener_get_fd(w->listener), IPPROTO_TCP, TCP_NODELAY, &(int){1},
		       sizeof(int)) < 0)
		return negative_errno();
	if (!evhttp_bind_listener(w->http, w->listener))
		return -ENOMEM;
	/* The first listener may have picked the port (port 0): the others share it. */
	if (index == 0) {
		socklen_t len = sizeof(*addr);
		if (getsockname(evconnlistener_get_fd(w->listener), (struct sockaddr *)addr, &len) <
		    0)
			return negative_errno();
	}
	evhttp_set_bevcb(w->http, bev_cb, w);
	evhttp_set_timeout_tv(w->http, &tv);
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg->max_headers);
	evhttp_set_default_content_type(w->http, NULL);
	/* every method HTTP defines reaches the handlers, which answer 405 with Allow and a JSON
	 * reason (libevent would answer 501 with an HTML page) */
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
						EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	if (dashboard) {
		/* a signed base (at most 1 MiB) or a media ledger CSV (FLEET_LEDGER_MAX_ROWS rows) */
		evhttp_set_max_body_size(w->http, 2 * 1024 * 1024);

		evhttp_set_gencb(w->http, api_handle, w);
	} else {
		evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->max_body);

		evhttp_set_gencb(w->http, ingest_handle, w);
		w->done_ev = event_new(w->base, -1, 0, ingest_done_cb, w);
		if (!w->done_ev)
			return -ENOMEM;
	}
	return 0;
}

int server_setup(struct collector *c, const struct collector_config *cfg, bool check_only)
{
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned per_worker;
	int r;

	c->cfg = cfg;
	if (evthread_use_pthreads() < 0)
		return -ENOSYS;
	if (conn_ex_index < 0)
		conn_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
	if (conn_ex_index < 0)
		return -ENOMEM;

	pthread_mutex_init(&c->revoked_file.lock, NULL);
	pthread_mutex_init(&c->token_file.lock, NULL);
	if (cfg->revoked_serials) {
		c->revoked_file.path = cfg->revoked_serials;
		r = revoked_reload_locked(c, true);
		if (r < 0)
			return r;
	}
	c->token_file.path = cfg->token_file;
	r = token_reload_locked(c, true);
	if (r < 0)
		return r;

	c->ingest_ctx = tls_context(c, cfg->tls_certificate, cfg->tls_key, cfg->client_ca);
	if (!c->ingest_ctx)
		return -EINVAL;
	c->dashboard_ctx = tls_context(c, cfg->dashboard_certificate, cfg->dashboard_key, NULL);
	if (!c->dashboard_ctx)
		return -EINVAL;

	r = parse_listen(cfg->ingest_listen, &addr, &addrlen);
	if (r < 0) {
		server_log(LOG_ERR, "[ingest] listen %s: cannot resolve", cfg->ingest_listen);
		return r;
	}
	if (check_only) {
		r = parse_listen(cfg->dashboard_listen, &addr, &addrlen);
		if (r < 0)
			server_log(LOG_ERR, "[dashboard] listen %s: cannot resolve",
				   cfg->dashboard_listen);
		return r;
	}
	c->n_workers = cfg->workers;
	c->workers = calloc(c->n_workers, sizeof(*c->workers));
	if (!c->workers)
		return -ENOMEM;
	per_worker = (cfg->max_connections + c->n_workers - 1) / c->n_workers;
	for (unsigned i = 0; i < c->n_workers; i++) {
		r = worker_init(c, &c->workers[i], false, i, &addr, addrlen, per_worker);
		if (r < 0) {
			server_log(LOG_ERR, "[ingest] listen %s: %s", cfg->ingest_listen,
				   strerror(-r));
			return r;
		}
	}
	format_addr(&addr, c->ingest_addr, sizeof(c->ingest_addr));

	r = parse_listen(cfg->dashboard_listen, &addr, &addrlen);
	if (r < 0) {
		server_log(LOG_ERR, "[dashboard] listen %s: cannot resolve", cfg->dashboard_listen);
		return r;
	}
	r = worker_init(c, &c->dashboard, true, 0, &addr, addrlen, cfg->dashboard_max_connections);
	if (r < 0) {
		server_log(LOG_ERR, "[dashboard] listen %s: %s", cfg->dashboard_listen,
			   strerror(-r));
		return r;
	}
	format_addr(&addr, c->dashboard_addr, sizeof(c->dashboard_addr));
	pthread_mutex_init(&c->heavy.lock, NULL);
	pthread_cond_init(&c->heavy.cond, NULL);
	c->heavy.tail = &c->heavy.queue;
	c->heavy.done_ev = event_new(c->dashboard.base, -1, 0, heavy_done_cb, &c->heavy);
	if (!c->heavy.done_ev)
		return -ENOMEM;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	event_base_dispatch(w->base);
	free(w->cert_expiring);
	w->cert_expiring = NULL;
	return NULL;
}

int server_start(struct collector *c)
{
	int r;

	for (unsigned i = 0; i < c->n_workers; i++) {
		r = -pthread_create(&c->workers[i].thread, NULL, worker_main, &c->workers[i]);
		if (r < 0)
			return r;
		c->workers[i].running = true;
	}
	for (unsigned i = 0; i < SERVER_HEAVY_THREADS; i++) {
		r = -pthread_create(&c->heavy.threads[i], NULL, heavy_main, &c->heavy);
		if (r < 0)
			return r;
		c->heavy.n_threads++;
	}
	r = -pthread_create(&c->dashboard.thread, NULL, worker_main, &c->dashboard);
	if (r < 0)
		return r;
	c->dashboard.running = true;
	return 0;
}

static void worker_stop(struct worker *w)
{
	if (!w->running)
		return;
	event_base_loopexit(w->base,
			    NULL); /* also when the loop has not begun: it clears a break */
	pthread_join(w->thread, NULL);
	w->running = false;
}

void server_stop(struct collector *c)
{
	for (unsigned i = 0; i < c->n_workers; i++)
		worker_stop(&c->workers[i]);
	/* a heavy request in progress is finished (its thread holds no lock of the others) */
	if (c->heavy.done_ev)
		heavy_stop(&c->heavy);
	worker_stop(&c->dashboard);
	if (c->heavy.done_ev)
		heavy_free(&c->heavy);
}
