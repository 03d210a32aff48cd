/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: enrollment listener (POST /v1/enroll with a one-time token, GET
 * /v1/enroll/ca), renewal on the ingest listener (POST /v1/renew), certificate expiry tracking.
 * Signing is done by mynaguard-signer over its Unix socket: this process never opens the CA key. */
#include "enroll.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "enroll-db.h"
#include "fileio.h"
#include "ingest.h"
#include "macro.h"
#include "secmem.h"
#include "server.h"
#include "signer-proto.h"

#define BODY_MAX       16384
#define CA_MAX	       (256 * 1024)
#define MAX_CONNS      64
#define SIGNER_TIMEOUT 10
#define RL_SLOTS       256
#define RL_WINDOW_S    60
#define RL_PER_PEER    10  /* refused tokens per peer address per window */
#define RL_GLOBAL      100 /* refused tokens from everyone per window */
#define RENEW_MIN_S    60  /* between two renewals of one terminal */
#define REFUSED_ANSWER "enrollment refused: the token is not valid (unknown, used or expired)"

struct cert_entry {
	char terminal[EVENT_TERMINAL_MAX + 1];
	char serial[80];
	int64_t not_after;
	int64_t last_renew; /* monotonic seconds, 0 = never in this run */
};

struct rl_slot {
	char peer[64];
	int64_t window;
	unsigned count;
	bool logged;
};

static struct {
	struct collector *c;
	pthread_mutex_t lock; /* db, certs, rate limits */
	struct enroll_db *db;
	struct cert_entry *certs;
	size_t n_certs, cap_certs;
	size_t *index, index_cap; /* a power of two */
	int64_t ingest_not_after, dashboard_not_after, enroll_not_after;
	char *ca_pem;
	size_t ca_len;

	SSL_CTX *ctx;
	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *listener;
	pthread_t thread;
	bool running;
	unsigned conns;
	bool paused;
	char ready[96];

	struct rl_slot slots[RL_SLOTS];
	int64_t global_window;
	unsigned global_count;

	atomic_uint_fast64_t issued, refused, limited;
} E = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int conn_index = -1;

/* Per enrollment connection, hung on its SSL object (freed with it): the deadline of the whole
 * connection, from accept to the last byte of the answer. A client trickling a byte at a time
 * keeps libevent's per-read timeout from firing; this one does not move. */
struct enroll_conn {
	struct bufferevent *bev;
	struct event *deadline;
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static int64_t asn1_unix(const ASN1_TIME *t)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

static void rfc3339(int64_t t, char out[static 32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- certificates seen or issued ---- */

static size_t cert_hash(const char *terminal)
{
	uint64_t h = 14695981039346656037ULL;
	for (const char *p = terminal; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (size_t)h;
}

/* Open addressing over E.certs: E.index[i] is an entry's position + 1, 0 = free. Every ingest
 * request looks its terminal up here, so the lookup must not grow with the fleet. */
static struct cert_entry *cert_find_locked(const char *terminal)
{
	if (!E.index_cap)
		return NULL;
	for (size_t i = cert_hash(terminal) & (E.index_cap - 1);; i = (i + 1) & (E.index_cap - 1)) {
		size_t k = E.index[i];
		if (!k)
			return NULL;
		if (strcmp(E.certs[k - 1].terminal, terminal) == 0)
			return &E.certs[k - 1];
	}
}

static void cert_index_put(size_t pos)
{
	size_t i = cert_hash(E.certs[pos].terminal) & (E.index_cap - 1);
	while (E.index[i])
		i = (i + 1) & (E.index_cap - 1);
	E.index[i] = pos + 1;
}

/* Room for one more entry in the array and in the index (kept at most half full). */
static int cert_reserve_locked(void)
{
	if (E.n_certs == E.cap_certs) {
		size_t cap = E.cap_certs ? E.cap_certs * 2 : 64;
		struct cert_entry *n = realloc(E.certs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		E.certs = n;
		E.cap_certs = cap;
	}
	if ((E.n_certs + 1) * 2 > E.index_cap) {
		size_t cap = E.index_cap ? E.index_cap * 2 : 128;
		size_t *idx = calloc(cap, sizeof(*idx));
		if (!idx)
			return -ENOMEM;
		free(E.index);
		E.index = idx;
		E.index_cap = cap;
		for (size_t k = 0; k < E.n_certs; k++)
			cert_index_put(k);
	}
	return 0;
}

/* Keeps the certificate with the latest not-after (an old one is still valid after renewal). */
static void cert_note_locked(const char *terminal, const char *serial, int64_t not_after,
			     bool persist)
{
	struct cert_entry *e = cert_find_locked(terminal);

	if (e && (strcmp(e->serial, serial) == 0 || not_after < e->not_after))
		return;
	if (!e) {
		if (cert_reserve_locked() < 0)
			return;
		e = &E.certs[E.n_certs];
		*e = (struct cert_entry){0};
		snprintf(e->terminal, sizeof(e->terminal), "%s", terminal);
		cert_index_put(E.n_certs++);
	}
	snprintf(e->serial, sizeof(e->serial), "%s", serial);
	e->not_after = not_after;
	if (persist && E.db && enroll_cert_note(E.db, terminal, serial, not_after, now_s()) < 0)
		server_log(LOG_WARNING, "enroll database: cannot record the certificate of %s",
			   terminal);
}

static void cert_load_cb(const char *terminal, const char *serial, int64_t not_after, void *arg)
{
	if (terminal && serial && event_terminal_id_valid(terminal))
		cert_note_locked(terminal, serial, not_after, false);
}

void enroll_note_peer(struct conn *conn)
{
	struct cert_entry *e;
	SSL *ssl;
	X509 *x;
	int64_t na;

	if (!conn->terminal[0] || !conn->serial[0])
		return;
	pthread_mutex_lock(&E.lock);
	e = cert_find_locked(conn->terminal);
	if (e && strcmp(e->serial, conn->serial) == 0) {
		pthread_mutex_unlock(&E.lock);
		return;
	}
	pthread_mutex_unlock(&E.lock);
	ssl = bufferevent_openssl_get_ssl(conn->bev);
	x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	na = x ? asn1_unix(X509_get0_notAfter(x)) : 0;
	if (!na)
		return;
	pthread_mutex_lock(&E.lock);
	cert_note_locked(conn->terminal, conn->serial, na, true);
	pthread_mutex_unlock(&E.lock);
}

void enroll_annotate_terminal(const char *terminal, json_t *obj)
{
	struct cert_entry *e;
	char ts[32];

	pthread_mutex_lock(&E.lock);
	e = cert_find_locked(terminal);
	if (e) {
		rfc3339(e->not_after, ts);
		json_object_set_new(obj, "cert_not_after", json_string(ts));
		json_object_set_new(obj, "cert_serial", json_string(e->serial));
	} else {
		json_object_set_new(obj, "cert_not_after", json_null());
		json_object_set_new(obj, "cert_serial", json_null());
	}
	pthread_mutex_unlock(&E.lock);
}

void enroll_cert_foreach(void (*fn)(const char *terminal, int64_t not_after, void *arg), void *arg)
{
	pthread_mutex_lock(&E.lock);
	for (size_t i = 0; i < E.n_certs; i++)
		fn(E.certs[i].terminal, E.certs[i].not_after, arg);
	pthread_mutex_unlock(&E.lock);
}

char *enroll_cert_expiring_json(int64_t now_ms, int64_t warning_ms)
{
	json_t *a = json_array();
	char *text;

	if (!a)
		return NULL;
	pthread_mutex_lock(&E.lock);
	for (size_t i = 0; i < E.n_certs; i++)
		if (E.certs[i].not_after * 1000 - now_ms < warning_ms)
			json_array_append_new(a, json_string(E.certs[i].terminal));
	pthread_mutex_unlock(&E.lock);
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return text;
}

void enroll_metrics_write(FILE *f)
{
	fputs("# HELP mynaguard_collector_cert_not_after_seconds Expiry (unix time) of the "
	      "collector's own certificate, per listener.\n"
	      "# TYPE mynaguard_collector_cert_not_after_seconds gauge\n",
	      f);
	if (E.ingest_not_after)
		fprintf(f, "mynaguard_collector_cert_not_after_seconds{listener=\"ingest\"} %lld\n",
			(long long)E.ingest_not_after);
	if (E.dashboard_not_after)
		fprintf(f,
			"mynaguard_collector_cert_not_after_seconds{listener=\"dashboard\"} %lld\n",
			(long long)E.dashboard_not_after);
	if (E.enroll_not_after)
		fprintf(f, "mynaguard_collector_cert_not_after_seconds{listener=\"enroll\"} %lld\n",
			(long long)E.enroll_not_after);
	fputs("# HELP mynaguard_collector_terminal_cert_not_after_seconds Expiry (unix time) of "
	      "each terminal's client certificate, as last seen at ingest or issued.\n"
	      "# TYPE mynaguard_collector_terminal_cert_not_after_seconds gauge\n",
	      f);
	pthread_mutex_lock(&E.lock);
	for (size_t i = 0; i < E.n_certs; i++)
		/* terminal ids are [A-Za-z0-9._-]: nothing to escape in a label */
		fprintf(
		    f,
		    "mynaguard_collector_terminal_cert_not_after_seconds{terminal=\"%s\"} %lld\n",
		    E.certs[i].terminal, (long long)E.certs[i].not_after);
	pthread_mutex_unlock(&E.lock);
	fprintf(
	    f,
	    "# HELP mynaguard_collector_enroll_issued_total Certificates issued (enrollment "
	    "and renewal).\n# TYPE mynaguard_collector_enroll_issued_total counter\n"
	    "mynaguard_collector_enroll_issued_total %llu\n"
	    "# HELP mynaguard_collector_enroll_refused_total Enrollments and renewals refused.\n"
	    "# TYPE mynaguard_collector_enroll_refused_total counter\n"
	    "mynaguard_collector_enroll_refused_total %llu\n"
	    "# HELP mynaguard_collector_enroll_rate_limited_total Enrollment requests answered "
	    "429 (too many refused tokens).\n"
	    "# TYPE mynaguard_collector_enroll_rate_limited_total counter\n"
	    "mynaguard_collector_enroll_rate_limited_total %llu\n",
	    (unsigned long long)atomic_load(&E.issued), (unsigned long long)atomic_load(&E.refused),
	    (unsigned long long)atomic_load(&E.limited));
}

/* ---- answers and events ---- */

static void reply(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer *buf = server_json_buffer(body);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, status, NULL, buf);
	if (buf)
		evbuffer_free(buf);
	json_decref(body);
}

static void reply_error(struct evhttp_request *req, int status, const char *reason)
{
	reply(req, status, server_error_json(reason));
}

static void self_event(enum event_kind kind, json_t *data)
{
	if (!E.c || !E.c->writer || !data) {
		json_decref(data);
		return;
	}
	if (ingest_writer_self_event(E.c->writer, kind, data) < 0)
		server_log(LOG_ERR, "enroll: cannot queue the %s event", event_kind_name(kind));
}

static void refused(const char *method, const char *terminal, const char *peer, const char *why,
		    const char *token_id)
{
	atomic_fetch_add(&E.refused, 1);
	server_log(LOG_WARNING, "enroll.refused method=%s terminal=%s peer=%s reason=%s%s%s",
		   method, terminal, peer, why, token_id ? " token_id=" : "",
		   token_id ? token_id : "");
	json_t *data = json_pack("{s:s,s:s,s:s,s:s}", "method", method, "terminal", terminal,
				 "peer", peer, "reason", why);
	if (data && token_id)
		json_object_set_new(data, "token_id", json_string(token_id));
	self_event(EVENT_ENROLL_REFUSED, data);
}

static const char *peer_of(struct evhttp_request *req, char *buf, size_t size)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (evcon)
		evhttp_connection_get_peer(evcon, &addr, &port);
	snprintf(buf, size, "%s", addr ? addr : "?");
	return buf;
}

/* {"csr": PEM} → DER of one certificate request. */
static int csr_der(const char *pem, uint8_t *out, size_t *ret_len)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	int len = req ? i2d_X509_REQ(req, &der) : -1;
	int r = 0;

	if (len <= 0)
		r = -EINVAL;
	else if ((size_t)len > SIGNER_CSR_MAX)
		r = -EMSGSIZE;
	else {
		memcpy(out, der, (size_t)len);
		*ret_len = (size_t)len;
	}
	OPENSSL_free(der);
	X509_REQ_free(req);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

/* The signer's DER answer as PEM, malloc'd. */
static char *cert_pem(const struct signer_answer *a)
{
	const unsigned char *p = a->cert;
	X509 *x = d2i_X509(NULL, &p, (long)a->cert_len);
	BIO *mem = x ? BIO_new(BIO_s_mem()) : NULL;
	char *data, *out = NULL;
	long len;

	if (mem && PEM_write_bio_X509(mem, x) == 1 && (len = BIO_get_mem_data(mem, &data)) > 0)
		out = strndup(data, (size_t)len);
	BIO_free(mem);
	X509_free(x);
	return out;
}

/* Signs and answers 200, or answers the failure. Returns 0 when a certificate was issued. */
static int issue(struct evhttp_request *req, enum signer_op op, const char *terminal,
		 const uint8_t *csr, size_t csr_len, const char *peer, const char *token_id,
		 const char *previous_serial)
{
	static _Thread_local struct signer_request sreq;
	static _Thread_local struct signer_answer ans;
	const char *method = op == SIGNER_OP_ENROLL ? "token" : "renewal";
	_cleanup_free_ char *pem = NULL;
	char na[32];
	int r;

	sreq = (struct signer_request){.op = op, .csr_len = csr_len};
	snprintf(sreq.terminal, sizeof(sreq.terminal), "%s", terminal);
	memcpy(sreq.csr, csr, csr_len);
	r = signer_call(E.c->cfg->enroll_signer, &sreq, SIGNER_TIMEOUT, &ans);
	if (r == -EINVAL || r == -EBADMSG) {
		/* the signer refused the request itself: a bad or weak key, a bad signature */
		refused(method, terminal, peer, "csr_refused_by_signer", token_id);
		reply_error(req, 400,
			    "the certificate request was refused (bad signature or key type: "
			    "EC P-256/P-384, RSA 2048-4096 or Ed25519)");
		return r;
	}
	if (r < 0) {
		server_log(LOG_ERR, "enroll: signer %s: %s; %s for %s not answered",
			   E.c->cfg->enroll_signer, strerror(-r), method, terminal);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "60");
		reply_error(req, 503, "the signer is not available; try again later");
		return r;
	}
	pem = cert_pem(&ans);
	if (!pem) {
		reply_error(req, 500, "the signer's certificate cannot be read");
		return -EBADMSG;
	}
	pthread_mutex_lock(&E.lock);
	cert_note_locked(terminal, ans.serial, ans.not_after, true);
	pthread_mutex_unlock(&E.lock);
	rfc3339(ans.not_after, na);
	atomic_fetch_add(&E.issued, 1);
	server_log(LOG_INFO, "enroll.issued method=%s terminal=%s serial=%s not_after=%s peer=%s",
		   method, terminal, ans.serial, na, peer);
	json_t *data = json_pack("{s:s,s:s,s:s,s:s,s:s}", "method", method, "terminal", terminal,
				 "serial", ans.serial, "not_after", na, "peer", peer);
	if (data && token_id)
		json_object_set_new(data, "token_id", json_string(token_id));
	if (data && previous_serial)
		json_object_set_new(data, "previous_serial", json_string(previous_serial));
	self_event(EVENT_ENROLL_ISSUED, data);
	reply(req, 200,
	      json_pack("{s:s,s:s%,s:s,s:s}", "certificate", pem, "ca", E.ca_pem, E.ca_len,
			"serial", ans.serial, "not_after", na));
	return 0;
}

/* ---- rate limit of refused tokens (enroll thread only) ---- */

static struct rl_slot *rl_slot(const char *peer)
{
	uint32_t h = 2166136261U;
	for (const char *p = peer; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619U;
	return &E.slots[h % RL_SLOTS];
}

/* true when this peer (or everyone) has had too many refusals in this window */
static bool rl_blocked(const char *peer)
{
	struct rl_slot *s = rl_slot(peer);
	int64_t w = mono_s() / RL_WINDOW_S;

	if (E.global_window != w) {
		E.global_window = w;
		E.global_count = 0;
	}
	if (s->window != w || strcmp(s->peer, peer) != 0)
		return E.global_count >= RL_GLOBAL;
	return s->count >= RL_PER_PEER || E.global_count >= RL_GLOBAL;
}

static void rl_count(const char *peer)
{
	struct rl_slot *s = rl_slot(peer);
	int64_t w = mono_s() / RL_WINDOW_S;

	if (s->window != w || strcmp(s->peer, peer) != 0) {
		*s = (struct rl_slot){.window = w};
		snprintf(s->peer, sizeof(s->peer), "%s", peer);
	}
	s->count++;
	E.global_count++;
}

/* ---- the enrollment listener ---- */

static void handle_enroll(struct evhttp_request *req, const char *peer)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	static uint8_t der[SIGNER_CSR_MAX];
	char token_id[ENROLL_ID_LEN + 1] = "";
	const char *terminal, *csr, *tok;
	_cleanup_secret_ char *token = NULL;
	enum enroll_refusal why;
	json_error_t jerr;
	json_t *o;
	size_t der_len;
	int r;

	if (rl_blocked(peer)) {
		struct rl_slot *s = rl_slot(peer);
		atomic_fetch_add(&E.limited, 1);
		if (!s->logged) {
			s->logged = true;
			server_log(LOG_WARNING,
				   "enroll.rate_limited peer=%s: more than %d refused tokens "
				   "(or %d from everyone) within %d s; answering 429",
				   peer, RL_PER_PEER, RL_GLOBAL, RL_WINDOW_S);
			refused("token", "", peer, "rate_limited", NULL);
		}
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "60");
		reply_error(req, 429, "too many refused enrollments; try again later");
		return;
	}
	o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o || json_unpack_ex(o, &jerr, JSON_STRICT, "{s:s,s:s,s:s}", "terminal", &terminal,
				 "token", &tok, "csr", &csr) < 0) {
		json_decref(o);
		if (body)
			secmem_wipe((void *)body, len);
		reply_error(req, 400,
			    "expected {\"terminal\":ID,\"token\":TOKEN,\"csr\":PEM} as JSON");
		return;
	}
	/* The token: one copy that is wiped after use; jansson's copy and the request body are
	 * wiped now. */
	token = strdup(tok);
	secmem_wipe((void *)tok, strlen(tok));
	secmem_wipe((void *)body, len);
	if (!token) {
		json_decref(o);
		reply_error(req, 503, "out of memory");
		return;
	}
	if (!event_terminal_id_valid(terminal) || strcmp(terminal, INGEST_SELF_TERMINAL) == 0) {
		json_decref(o);
		reply_error(req, 400, "terminal: expected an id of [A-Za-z0-9._-], up to 64");
		return;
	}
	r = csr_der(csr, der, &der_len);
	if (r < 0) {
		json_decref(o);
		reply_error(req, 400,
			    r == -EMSGSIZE ? "csr: too large"
					   : "csr: expected one PEM certificate request");
		return;
	}
	char term[EVENT_TERMINAL_MAX + 1];
	snprintf(term, sizeof(term), "%s", terminal);
	json_decref(o);

	pthread_mutex_lock(&E.lock);
	r = E.db ? enroll_token_consume(E.db, token, term, now_s(), &why, token_id) : -EIO;
	pthread_mutex_unlock(&E.lock);
	if (r == -EACCES) {
		rl_count(peer);
		refused("token", term, peer, enroll_refusal_name(why),
			token_id[0] ? token_id : NULL);
		reply_error(req, 403, REFUSED_ANSWER);
		return;
	}
	if (r < 0) {
		server_log(LOG_ERR, "enroll database: %s; enrollment of %s not answered",
			   strerror(-r), term);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "60");
		reply_error(req, 503, "the enrollment database is not available; try again later");
		return;
	}
	if (issue(req, SIGNER_OP_ENROLL, term, der, der_len, peer, token_id, NULL) < 0) {
		/* no certificate was made: the token can be used again */
		pthread_mutex_lock(&E.lock);
		r = enroll_token_restore(E.db, token_id);
		pthread_mutex_unlock(&E.lock);
		if (r < 0)
			server_log(LOG_ERR, "enroll database: cannot give token %s back: %s",
				   token_id, strerror(-r));
	}
}

static void enroll_handle(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	char reason[EVENT_REASON_MAX] = "", peer[64];

	peer_of(req, peer, sizeof(peer));
	if (server_check_framing(evhttp_request_get_input_headers(req), method, reason) < 0) {
		server_refuse_framing(req, reason);
		return;
	}
	if (path && strcmp(path, "/v1/enroll/ca") == 0) {
		if (method != EVHTTP_REQ_GET) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
			reply_error(req, 405, "use GET");
			return;
		}
		struct evbuffer *buf = evbuffer_new();
		if (!buf) {
			reply_error(req, 503, "out of memory");
			return;
		}
		evbuffer_add(buf, E.ca_pem, E.ca_len);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "application/x-pem-file");
		evhttp_send_reply(req, 200, NULL, buf);
		evbuffer_free(buf);
		return;
	}
	if (!path || strcmp(path, "/v1/enroll") != 0) {
		reply_error(req, 404, "not found");
		return;
	}
	if (method != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		reply_error(req, 405, "use POST");
		return;
	}
	handle_enroll(req, peer);
}

void enroll_renew_handle(struct evhttp_request *req, struct worker *w, struct conn *conn)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	static _Thread_local uint8_t der[SIGNER_CSR_MAX];
	char peer[64], previous[80];
	const char *csr = NULL;
	struct cert_entry *e;
	json_error_t jerr;
	size_t der_len;
	json_t *o;
	int r;

	peer_of(req, peer, sizeof(peer));
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		reply_error(req, 405, "use POST");
		return;
	}
	if (!E.c || !E.c->cfg->enroll_signer) {
		reply_error(req, 404, "renewal is not enabled on this collector ([enroll] signer)");
		return;
	}
	if (!conn->terminal[0] || strcmp(conn->terminal, INGEST_SELF_TERMINAL) == 0) {
		reply_error(req, 403, "the certificate names no valid terminal id");
		return;
	}
	if (!conn->serial[0] || server_serial_revoked(w->c, conn->serial)) {
		refused("renewal", conn->terminal, peer, "revoked", NULL);
		reply_error(req, 403, "certificate revoked");
		return;
	}
	o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o || json_unpack_ex(o, &jerr, JSON_STRICT, "{s:s}", "csr", &csr) < 0 ||
	    (r = csr_der(csr, der, &der_len)) < 0) {
		json_decref(o);
		reply_error(req, 400, "expected {\"csr\":PEM} with one certificate request");
		return;
	}
	json_decref(o);
	pthread_mutex_lock(&E.lock);
	e = cert_find_locked(conn->terminal);
	if (e && e->last_renew && mono_s() - e->last_renew < RENEW_MIN_S) {
		pthread_mutex_unlock(&E.lock);
		refused("renewal", conn->terminal, peer, "too_soon", NULL);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "60");
		reply_error(req, 429, "renewed less than a minute ago; try again later");
		return;
	}
	pthread_mutex_unlock(&E.lock);
	snprintf(previous, sizeof(previous), "%s", conn->serial);
	/* the signer's round trip (a few ms) runs on this worker thread: renewals are rare */
	if (issue(req, SIGNER_OP_RENEW, conn->terminal, der, der_len, peer, NULL, previous) == 0) {
		pthread_mutex_lock(&E.lock);
		e = cert_find_locked(conn->terminal);
		if (e)
			e->last_renew = mono_s();
		pthread_mutex_unlock(&E.lock);
	}
}

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct enroll_conn *ec = ptr;

	if (!ec)
		return;
	event_free(ec->deadline);
	free(ec);
	E.conns--;
	if (E.paused && E.conns < MAX_CONNS) {
		evconnlistener_enable(E.listener);
		E.paused = false;
	}
}

static void deadline_cb(evutil_socket_t fd_unused, short what, void *arg)
{
	struct enroll_conn *ec = arg;
	evutil_socket_t fd = bufferevent_getfd(ec->bev);

	/* The next read sees EOF and libevent frees the connection (and ec with its SSL). */
	if (fd >= 0) {
		server_log(LOG_NOTICE, "enroll.timeout connection cut after %" PRIu64 " s",
			   E.c->cfg->enroll_timeout);
		shutdown(fd, SHUT_RDWR);
	}
}

static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
	struct timeval tv = {.tv_sec = (time_t)E.c->cfg->enroll_timeout};
	SSL *ssl = SSL_new(E.ctx);
	struct enroll_conn *ec = calloc(1, sizeof(*ec));

	if (!ssl || !ec) {
		SSL_free(ssl);
		free(ec);
		return NULL;
	}
	ec->deadline = evtimer_new(base, deadline_cb, ec);
	if (!ec->deadline) {
		SSL_free(ssl);
		free(ec);
		return NULL;
	}
	/* From here on SSL_free(ssl) frees ec (conn_free) and does the counting. */
	SSL_set_ex_data(ssl, conn_index, ec);
	if (++E.conns >= MAX_CONNS && !E.paused) {
		evconnlistener_disable(E.listener);
		E.paused = true;
	}
	ec->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
						 BEV_OPT_CLOSE_ON_FREE);
	if (!ec->bev) {
		SSL_free(ssl);
		return NULL;
	}
	evtimer_add(ec->deadline, &tv);
	return ec->bev;
}

static void *thread_main(void *arg)
{
	event_base_dispatch(E.base);
	return NULL;
}

static int64_t ctx_not_after(SSL_CTX *ctx)
{
	X509 *x = ctx ? SSL_CTX_get0_certificate(ctx) : NULL;
	return x ? asn1_unix(X509_get0_notAfter(x)) : 0;
}

static int listen_on(const char *spec)
{
	char host[256];
	const char *colon, *port;
	struct evutil_addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		snprintf(host, sizeof(host), "%.*s", (int)(end - spec - 1), spec + 1);
		port = end + 2;
	} else {
		colon = strrchr(spec, ':');
		snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
		port = colon + 1;
	}
	if (evutil_getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
		return -EADDRNOTAVAIL;
	E.listener = evconnlistener_new_bind(
	    E.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
	    128, ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (!E.listener)
		return negative_errno();
	if (getsockname(evconnlistener_get_fd(E.listener), (struct sockaddr *)&ss, &sl) == 0) {
		char a[64] = "?";
		if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof(a));
			snprintf(E.ready, sizeof(E.ready), " enroll=[%s]:%u", a,
				 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
		} else {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
			snprintf(E.ready, sizeof(E.ready), " enroll=%s:%u", a,
				 ntohs(((struct sockaddr_in *)&ss)->sin_port));
		}
	}
	return 0;
}

int enroll_setup(struct collector *c, bool check_only)
{
	const struct collector_config *cfg = c->cfg;
	struct timeval tv = {.tv_sec = (time_t)cfg->enroll_timeout};
	int r;

	E.c = c;
	E.ingest_not_after = ctx_not_after(c->ingest_ctx);
	E.dashboard_not_after = ctx_not_after(c->dashboard_ctx);
	r = enroll_db_open(cfg->enroll_database, true, &E.db);
	if (r < 0) {
		/* without it, enrollment cannot work; expiry tracking works from memory */
		server_log(cfg->enroll_signer ? LOG_ERR : LOG_WARNING, "enroll database %s: %s",
			   cfg->enroll_database, strerror(-r));
		if (cfg->enroll_signer)
			return r;
	} else {
		pthread_mutex_lock(&E.lock);
		(void)enroll_cert_each(E.db, cert_load_cb, NULL);
		pthread_mutex_unlock(&E.lock);
	}
	if (!cfg->enroll_signer)
		return 0;
	r = fileio_read_file(AT_FDCWD, cfg->client_ca, CA_MAX, &E.ca_pem, &E.ca_len);
	if (r < 0) {
		server_log(LOG_ERR, "[ingest] client_ca %s: %s", cfg->client_ca, strerror(-r));
		return r;
	}
	if (!cfg->enroll_listen || check_only)
		return 0;
	if (conn_index < 0)
		conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
	/* the same certificate as the dashboard: server TLS, no client certificate asked */
	E.ctx = SSL_CTX_new(TLS_server_method());
	if (!E.ctx || conn_index < 0)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(E.ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(E.ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(E.ctx, cfg->dashboard_certificate) != 1 ||
	    SSL_CTX_use_PrivateKey_file(E.ctx, cfg->dashboard_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(E.ctx) != 1) {
		server_log(LOG_ERR, "[enroll] certificate %s: cannot load it with its key",
			   cfg->dashboard_certificate);
		return -EINVAL;
	}
	E.enroll_not_after = ctx_not_after(E.ctx);
	E.base = event_base_new();
	E.http = E.base ? evhttp_new(E.base) : NULL;
	if (!E.http)
		return -ENOMEM;
	r = listen_on(cfg->enroll_listen);
	if (r < 0) {
		server_log(LOG_ERR, "[enroll] listen %s: %s", cfg->enroll_listen, strerror(-r));
		return r;
	}
	if (!evhttp_bind_listener(E.http, E.listener))
		return -ENOMEM;
	evhttp_set_bevcb(E.http, bev_cb, NULL);
	evhttp_set_timeout_tv(E.http, &tv);
	evhttp_set_max_headers_size(E.http, 8192);
	evhttp_set_max_body_size(E.http, BODY_MAX);
	evhttp_set_default_content_type(E.http, NULL);
	evhttp_set_allowed_methods(E.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
					       EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
					       EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(E.http, enroll_handle, NULL);
	return 0;
}

int enroll_start(void)
{
	int r;

	if (!E.base)
		return 0;
	r = -pthread_create(&E.thread, NULL, thread_main, NULL);
	if (r < 0)
		return r;
	E.running = true;
	return 0;
}

void enroll_stop(void)
{
	if (E.running) {
		event_base_loopexit(E.base, NULL); /* a break before the loop begins is lost */
		pthread_join(E.thread, NULL);
		E.running = false;
	}
	pthread_mutex_lock(&E.lock);
	enroll_db_close(E.db);
	E.db = NULL;
	pthread_mutex_unlock(&E.lock);
}

const char *enroll_ready_text(void)
{
	return E.ready;
}
