/* SPDX-License-Identifier: MIT */
/* Benchmark load generator (not a test): N simulated terminals, each with its own client
 * certificate and one kept-alive TLS connection, sending M events each.
 *   loadgen http   URL CA CERTDIR N M BATCH [INTERVAL_MS]
 *                   POST /v1/events batches (libcurl multi); each terminal sends its next batch
 *                   when the last is acknowledged, or every INTERVAL_MS (paced, latency is then
 *                   counted from when the batch was due); prints events/s and latency
 *   loadgen syslog HOST PORT CA CERTDIR N M     — the same events as RFC 5424 lines over TLS
 *                                                (OpenSSL), for rsyslog's imtcp + ossl driver
 * Certificates: CERTDIR/term-NNNN.pem and .key (NNNN = 0000..N-1). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARMUP_S       10.0
#define MAX_CONNECTING 200

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One event of about 369 bytes, like the rsyslog figure in the notes. */
static int make_event(char *buf, size_t size, unsigned term, unsigned long seq)
{
	time_t t = time(NULL);
	struct tm tm;
	char ts[40];

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	return snprintf(
	    buf, size,
	    "{\"v\":1,\"terminal\":\"term-%04u\",\"seq\":%lu,\"ts\":\"%s\",\"kind\":\"usb.blocked\","
	    "\"clause\":[\"2-6-3-a\",\"2-3-2\"],\"data\":{\"vendor\":\"0781\",\"product\":\"5567\","
	    "\"serial\":\"4C530001230414117283\",\"class\":\"08\",\"port\":\"1-2\","
	    "\"reason\":\"interface class 08 (mass storage) blocked by policy\",\"pad\":\"%s\"}}",
	    term, seq, ts, "0123456789abcdef0123456789abcdef0123456789abcdef01234567890123");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ---- http ---- */

struct term {
	CURL *h;
	unsigned id;
	unsigned long next_seq, last_seq;
	char *body;
	size_t len;
	char resp[256];
	size_t resp_len;
	double t0;
	double next_at; /* paced mode: when the next batch is due */
	unsigned long requests;
	struct curl_slist *hdr;
};

static size_t write_cb(char *p, size_t sz, size_t n, void *ud)
{
	struct term *t = ud;
	size_t len = sz * n, room = sizeof(t->resp) - 1 - t->resp_len;
	if (len > room)
		len = room;
	memcpy(t->resp + t->resp_len, p, len);
	t->resp_len += len;
	t->resp[t->resp_len] = 0;
	return sz * n;
}

static void build_batch(struct term *t, unsigned batch, unsigned long total)
{
	size_t cap = (size_t)batch * 512 + 128, len;
	unsigned long end = t->next_seq + batch - 1;
	char ev[600];

	if (end > total)
		end = total;
	free(t->body);
	t->body = malloc(cap);
	len = (size_t)snprintf(t->body, cap, "{\"v\":1,\"terminal\":\"term-%04u\",\"events\":[",
			       t->id);
	for (unsigned long s = t->next_seq; s <= end; s++) {
		int n = make_event(ev, sizeof(ev), t->id, s);
		if (s != t->next_seq)
			t->body[len++] = ',';
		memcpy(t->body + len, ev, (size_t)n);
		len += (size_t)n;
	}
	len += (size_t)snprintf(t->body + len, cap - len, "]}");
	t->len = len;
	t->last_seq = end;
}

static int run_http(int argc, char **argv)
{
	const char *url, *ca, *dir;
	unsigned n, batch;
	unsigned long m;
	struct term *terms;
	CURLM *multi;
	double *lat, t_start, t_end;
	size_t n_lat = 0, cap_lat;
	unsigned long acked = 0, errors = 0;
	int running;

	double interval = 0; /* seconds between a terminal's batches; 0 = as fast as acknowledged */
	double *lat_first;
	size_t n_first = 0;

	if (argc != 8 && argc != 9)
		return 2;
	if (argc == 9)
		interval = atof(argv[8]) / 1000.0;
	url = argv[2];
	ca = argv[3];
	dir = argv[4];
	n = (unsigned)atoi(argv[5]);
	m = strtoul(argv[6], NULL, 10);
	batch = (unsigned)atoi(argv[7]);
	cap_lat = (size_t)n * (m / batch + 2);
	lat = calloc(cap_lat, sizeof(*lat));
	lat_first = calloc(n, sizeof(*lat_first));
	terms = calloc(n, sizeof(*terms));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)n * 2);
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);

	t_start = now_s();
	for (unsigned i = 0; i < n; i++) {
		struct term *t = &terms[i];
		char cert[512], key[512];
		snprintf(cert, sizeof(cert), "%s/term-%04u.pem", dir, i);
		snprintf(key, sizeof(key), "%s/term-%04u.key", dir, i);
		t->id = i;
		t->next_seq = 1;
		t->h = curl_easy_init();
		t->hdr = curl_slist_append(NULL, "Content-Type: application/json");
		t->hdr = curl_slist_append(t->hdr, "Expect:");
		curl_easy_setopt(t->h, CURLOPT_URL, url);
		curl_easy_setopt(t->h, CURLOPT_CAINFO, ca);
		curl_easy_setopt(t->h, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(t->h, CURLOPT_SSLKEY, key);
		curl_easy_setopt(t->h, CURLOPT_HTTPHEADER, t->hdr);
		curl_easy_setopt(t->h, CURLOPT_WRITEFUNCTION, write_cb);
		curl_easy_setopt(t->h, CURLOPT_WRITEDATA, t);
		curl_easy_setopt(t->h, CURLOPT_PRIVATE, t);
		curl_easy_setopt(t->h, CURLOPT_TIMEOUT, 120L);
		curl_easy_setopt(t->h, CURLOPT_TCP_NODELAY, 1L);
		build_batch(t, batch, m);
		curl_easy_setopt(t->h, CURLOPT_POSTFIELDS, t->body);
		curl_easy_setopt(t->h, CURLOPT_POSTFIELDSIZE, (long)t->len);
		t->t0 = now_s();
		if (interval > 0) {
			/* spread the terminals evenly over one interval */
			t->next_at = t_start + interval * i / n;
			t->t0 = t->next_at;
		}
	}
	/* closed loop: terminals connect MAX_CONNECTING at a time (10,000 handshakes at once
	 * outlast the server's handshake timeout); each sends its next batch at once */
	unsigned waiting = interval > 0 ? n : 0, next_term = 0, connecting = 0;
	do {
		while (interval <= 0 && next_term < n && connecting < MAX_CONNECTING) {
			struct term *t = &terms[next_term++];
			t->t0 = now_s();
			curl_multi_add_handle(multi, t->h);
			connecting++;
			running = 1;
		}
		if (waiting) {
			double now = now_s();
			for (unsigned i = 0; i < n; i++) {
				struct term *t = &terms[i];
				if (t->next_at > 0 && t->next_at <= now) {
					t->next_at = 0;
					waiting--;
					curl_multi_add_handle(multi, t->h);
				}
			}
		}
		CURLMsg *msg;
		int left;
		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &left))) {
			struct term *t;
			long code = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			curl_multi_remove_handle(multi, t->h);
			if (msg->data.result == CURLE_OK && code == 200) {
				char want[64];
				snprintf(want, sizeof(want), "{\"acked_through\":%lu}",
					 t->last_seq);
				if (strncmp(t->resp, want, strlen(want)) != 0) {
					fprintf(stderr, "term-%04u: unexpected answer %s\n", t->id,
						t->resp);
					errors++;
				}
				/* the first request of a terminal carries its TLS handshake; in paced
				 * mode the first WARMUP_S seconds (all terminals connecting) are not
				 * counted as steady state */
				if (t->requests++ == 0) {
					lat_first[n_first++] = now_s() - t->t0;
					connecting--;
				} else if (n_lat < cap_lat &&
					   (interval == 0 || t->t0 - t_start >= WARMUP_S))
					lat[n_lat++] = now_s() - t->t0;
				acked += t->last_seq - t->next_seq + 1;
				t->next_seq = t->last_seq + 1;
			} else {
				errors++;
				if (errors < 10)
					fprintf(stderr, "term-%04u: %s, HTTP %ld %s\n", t->id,
						curl_easy_strerror(msg->data.result), code,
						t->resp);
				usleep(10000);
			}
			t->resp_len = 0;
			t->resp[0] = 0;
			if (t->next_seq <= m) {
				build_batch(t, batch, m);
				curl_easy_setopt(t->h, CURLOPT_POSTFIELDS, t->body);
				curl_easy_setopt(t->h, CURLOPT_POSTFIELDSIZE, (long)t->len);
				if (interval > 0) {
					/* t0 = when it was due, so queueing in the generator counts too */
					t->next_at = t->t0 + interval;
					t->t0 = t->next_at;
					waiting++;
				} else {
					t->t0 = now_s();
					curl_multi_add_handle(multi, t->h);
				}
				running = 1;
			}
		}
		if (running || waiting)
			curl_multi_poll(multi, NULL, 0, waiting ? 5 : 100, NULL);
	} while (running || waiting || (interval <= 0 && next_term < n));
	t_end = now_s();

	qsort(lat, n_lat, sizeof(*lat), cmp_double);
	qsort(lat_first, n_first, sizeof(*lat_first), cmp_double);
	printf(
	    "http terminals=%u events_per_terminal=%lu batch=%u interval_ms=%.0f events_acked=%lu errors=%lu "
	    "seconds=%.2f events_per_s=%.0f requests=%zu steady_p50_ms=%.1f steady_p99_ms=%.1f steady_max_ms=%.1f "
	    "first_request_p50_ms=%.1f first_request_p99_ms=%.1f\n",
	    n, m, batch, interval * 1000, acked, errors, t_end - t_start,
	    (double)acked / (t_end - t_start), (size_t)(acked / batch),
	    n_lat ? lat[n_lat / 2] * 1000 : 0,
	    n_lat ? lat[(size_t)((double)n_lat * 0.99)] * 1000 : 0,
	    n_lat ? lat[n_lat - 1] * 1000 : 0, n_first ? lat_first[n_first / 2] * 1000 : 0,
	    n_first ? lat_first[(size_t)((double)n_first * 0.99)] * 1000 : 0);
	return errors ? 1 : 0;
}

/* ---- syslog over TLS ---- */

struct sys_args {
	const char *host, *ca, *dir;
	int port;
	unsigned first, step, n;
	unsigned long m;
	unsigned long sent;
	int failed;
};

static void *syslog_thread(void *arg)
{
	struct sys_args *a = arg;
	unsigned count = 0;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL **ssl;
	unsigned *ids;
	char line[800], ev[600], hdr[200];

	SSL_CTX_load_verify_locations(ctx, a->ca, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	for (unsigned i = a->first; i < a->n; i += a->step)
		count++;
	ssl = calloc(count, sizeof(*ssl));
	ids = calloc(count, sizeof(*ids));
	count = 0;
	for (unsigned i = a->first; i < a->n; i += a->step) {
		char cert[512], key[512];
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons((uint16_t)a->port)};
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		SSL *s = SSL_new(ctx);
		snprintf(cert, sizeof(cert), "%s/term-%04u.pem", a->dir, i);
		snprintf(key, sizeof(key), "%s/term-%04u.key", a->dir, i);
		SSL_use_certificate_chain_file(s, cert);
		SSL_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM);
		inet_pton(AF_INET, a->host, &sa.sin_addr);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("connect");
			a->failed = 1;
			return NULL;
		}
		SSL_set_fd(s, fd);
		if (SSL_connect(s) != 1) {
			ERR_print_errors_fp(stderr);
			a->failed = 1;
			return NULL;
		}
		ssl[count] = s;
		ids[count++] = i;
	}
	/* round robin, 100 lines per write burst, as a terminal flushing its spool would */
	for (unsigned long seq = 1; seq <= a->m; seq += 100) {
		for (unsigned c = 0; c < count; c++) {
			char buf[100 * 800];
			size_t len = 0;
			for (unsigned long s = seq; s < seq + 100 && s <= a->m; s++) {
				int n = make_event(ev, sizeof(ev), ids[c], s);
				int h = snprintf(hdr, sizeof(hdr),
						 "<134>1 - term-%04u mynaguard - - - ", ids[c]);
				memcpy(line, hdr, (size_t)h);
				memcpy(line + h, ev, (size_t)n);
				line[h + n] = '\n';
				memcpy(buf + len, line, (size_t)(h + n + 1));
				len += (size_t)(h + n + 1);
				a->sent++;
			}
			if (SSL_write(ssl[c], buf, (int)len) <= 0) {
				ERR_print_errors_fp(stderr);
				a->failed = 1;
			}
		}
	}
	/* Close cleanly: send close_notify, then read until the server closes too. Closing with
	 * unread bytes (TLS 1.3 session tickets) would make the kernel send a reset, and the server
	 * would lose what it had not read yet. */
	for (unsigned c = 0; c < count; c++) {
		int fd = SSL_get_fd(ssl[c]);
		struct timeval tv = {.tv_sec = 60};
		char sink[4096];
		SSL_shutdown(ssl[c]);
		shutdown(fd, SHUT_WR);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (SSL_read(ssl[c], sink, sizeof(sink)) > 0)
			;
		close(fd);
		SSL_free(ssl[c]);
	}
	SSL_CTX_free(ctx);
	free(ssl);
	free(ids);
	return NULL;
}

static int run_syslog(int argc, char **argv)
{
	enum {
		THREADS = 8
	};
	struct sys_args a[THREADS];
	pthread_t th[THREADS];
	unsigned long sent = 0;
	int failed = 0;
	double t0;

	if (argc != 8)
		return 2;
	t0 = now_s();
	for (unsigned i = 0; i < THREADS; i++) {
		a[i] = (struct sys_args){.host = argv[2],
					 .port = atoi(argv[3]),
					 .ca = argv[4],
					 .dir = argv[5],
					 .n = (unsigned)atoi(argv[6]),
					 .m = strtoul(argv[7], NULL, 10),
					 .first = i,
					 .step = THREADS};
		pthread_create(&th[i], NULL, syslog_thread, &a[i]);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		sent += a[i].sent;
		failed |= a[i].failed;
	}
	printf("syslog sent=%lu seconds_to_send=%.2f\n", sent, now_s() - t0);
	return failed;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && strcmp(argv[1], "http") == 0)
		return run_http(argc, argv);
	if (argc > 1 && strcmp(argv[1], "syslog") == 0)
		return run_syslog(argc, argv);
	fprintf(
	    stderr,
	    "usage: loadgen http URL CA CERTDIR N M BATCH [INTERVAL_MS] | loadgen syslog HOST PORT CA CERTDIR N M\n");
	return 2;
}
