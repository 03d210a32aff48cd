/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: retention by kind and the signed chain heads (docs/evidence.md), on top
 * of any store backend (store.h). Used by the writer, the CLI and the dashboard API. */
#include "evidence.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "bundle.h"
#include "fleet-internal.h"
#include "macro.h"
#include "metrics.h"
#include "server.h"

#define HEADS_MAGIC "mynaguard-chain-heads-v1\n"

void evidence_policy(const struct collector_config *cfg, int64_t now_ms,
		     struct store_retention_policy *ret)
{
	for (int k = 0; k < _EVENT_KIND_MAX; k++)
		ret->cutoff_ms[k] = cfg->retention_kind[k]
					? now_ms - (int64_t)(cfg->retention_kind[k] * 1000)
					: INT64_MIN;
	ret->hold = (const char *const *)cfg->retention_hold;
	ret->n_hold = cfg->n_retention_hold;
}

uint64_t evidence_shortest_period(const struct collector_config *cfg)
{
	uint64_t p = 0;

	for (int k = 0; k < _EVENT_KIND_MAX; k++)
		if (cfg->retention_kind[k] && (!p || cfg->retention_kind[k] < p))
			p = cfg->retention_kind[k];
	return p;
}

/* The key that checks signed heads: [evidence] heads_public_key, else the public half of
 * heads_key. 0 with *ret_keyed false when neither is configured. */
static int public_key(const struct collector_config *cfg, uint8_t out[BUNDLE_PUBKEY_LEN],
		      bool *ret_keyed, char err[static EVIDENCE_ERROR_MAX])
{
	struct bundle_signer *signer = NULL;
	int r;

	*ret_keyed = false;
	if (cfg->heads_public_key) {
		r = bundle_pubkey_load(cfg->heads_public_key, out, err, EVIDENCE_ERROR_MAX);
		if (r < 0)
			return r;
	} else if (cfg->heads_key) {
		r = bundle_signer_load(cfg->heads_key, &signer, err, EVIDENCE_ERROR_MAX);
		if (r < 0)
			return r;
		bundle_signer_pubkey(signer, out);
		bundle_signer_free(signer);
	} else
		return 0;
	*ret_keyed = true;
	return 0;
}

int evidence_check_keys(const struct collector_config *cfg, char err[static EVIDENCE_ERROR_MAX])
{
	uint8_t pub[BUNDLE_PUBKEY_LEN], own[BUNDLE_PUBKEY_LEN];
	struct bundle_signer *signer = NULL;
	bool keyed;
	int r;

	err[0] = '\0';
	r = public_key(cfg, pub, &keyed, err);
	if (r < 0 || !keyed || !cfg->heads_key || !cfg->heads_public_key)
		return r;
	r = bundle_signer_load(cfg->heads_key, &signer, err, EVIDENCE_ERROR_MAX);
	if (r < 0)
		return r;
	bundle_signer_pubkey(signer, own);
	bundle_signer_free(signer);
	if (memcmp(own, pub, sizeof(pub)) != 0) {
		snprintf(err, EVIDENCE_ERROR_MAX,
			 "[evidence] heads_public_key is not the public key of heads_key");
		return -EKEYREJECTED;
	}
	return 0;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdef", s[2 * i]) ||
		    !strchr("0123456789abcdef", s[2 * i + 1]))
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

int evidence_heads_parse(const char *body, struct store_head **ret, size_t *ret_n, int64_t *ret_at)
{
	_cleanup_free_ struct store_head *h = NULL;
	const char *p = body;
	size_t n = 0, cap = 0;
	long long at;
	char *end;

	if (strncmp(p, HEADS_MAGIC, strlen(HEADS_MAGIC)) != 0)
		return -EBADMSG;
	p += strlen(HEADS_MAGIC);
	if (strncmp(p, "at=", 3) != 0 || p[3] < '0' || p[3] > '9' || (p[3] == '0' && p[4] != '\n'))
		return -EBADMSG;
	errno = 0;
	at = strtoll(p + 3, &end, 10);
	if (errno || *end != '\n')
		return -EBADMSG;
	p = end + 1;
	while (*p) {
		const char *nl = strchr(p, '\n'), *f[5];
		struct store_head *x;
		size_t len[5];
		long long received;
		char num[24];

		if (!nl)
			return -EBADMSG;
		/* TERMINAL SEQ RECEIVED KIND LINKHEX: five fields, one space between */
		f[0] = p;
		for (int i = 1; i < 5; i++) {
			const char *sp = memchr(f[i - 1], ' ', (size_t)(nl - f[i - 1]));
			if (!sp)
				return -EBADMSG;
			len[i - 1] = (size_t)(sp - f[i - 1]);
			f[i] = sp + 1;
		}
		len[4] = (size_t)(nl - f[4]);
		if (len[0] == 0 || len[0] > EVENT_TERMINAL_MAX || len[1] == 0 || len[1] > 20 ||
		    len[2] == 0 || len[2] > 19 || len[3] == 0 || len[3] > STORE_KIND_MAX ||
		    len[4] != 2 * STORE_CHAIN_LEN)
			return -EBADMSG;
		if (n == cap) {
			struct store_head *g;
			cap = cap ? 2 * cap : 64;
			g = realloc(h, cap * sizeof(*h));
			if (!g)
				return -ENOMEM;
			h = g;
		}
		x = &h[n];
		memset(x, 0, sizeof(*x));
		memcpy(x->terminal, f[0], len[0]);
		memcpy(x->kind, f[3], len[3]);
		memcpy(num, f[1], len[1]);
		num[len[1]] = '\0';
		if (strspn(num, "0123456789") != len[1] || (len[1] > 1 && num[0] == '0'))
			return -EBADMSG;
		errno = 0;
		x->seq = strtoull(num, &end, 10);
		if (errno)
			return -EBADMSG;
		memcpy(num, f[2], len[2]);
		num[len[2]] = '\0';
		if (strspn(num, "0123456789") != len[2] || (len[2] > 1 && num[0] == '0'))
			return -EBADMSG;
		errno = 0;
		received = strtoll(num, &end, 10);
		if (errno)
			return -EBADMSG;
		x->received_ms = received;
		if (!event_terminal_id_valid(x->terminal) ||
		    strspn(x->kind, "abcdefghijklmnopqrstuvwxyz._") != len[3] ||
		    unhex(f[4], x->link, STORE_CHAIN_LEN) < 0 ||
		    (n > 0 && strcmp(h[n - 1].terminal, x->terminal) >= 0))
			return -EBADMSG;
		n++;
		p = nl + 1;
	}
	*ret = TAKE_PTR(h);
	*ret_n = n;
	*ret_at = at;
	return 0;
}

void evidence_verify_done(struct evidence_verify *v)
{
	store_verify_done(&v->v);
}

int evidence_verify(struct store *s, const struct collector_config *cfg, int64_t now_ms,
		    const char *terminal, bool collect, struct evidence_verify *ret,
		    char err[static EVIDENCE_ERROR_MAX])
{
	struct store_retention_policy policy;
	struct store_verify_opts o = {.terminal = terminal, .policy = &policy, .collect = collect};
	struct evidence_verify res = {0};
	_cleanup_free_ struct store_head *heads = NULL;
	_cleanup_free_ char *body = NULL;
	_cleanup_free_ uint8_t *sig = NULL;
	uint8_t pub[BUNDLE_PUBKEY_LEN];
	size_t sig_len = 0, n = 0;
	const char *why = NULL;
	int r;

	err[0] = '\0';
	evidence_policy(cfg, now_ms, &policy);
	r = public_key(cfg, pub, &res.keyed, err);
	if (r < 0)
		return r;
	if (res.keyed) {
		r = store_signed_heads_last(s, &res.signed_at, &body, &sig, &sig_len);
		if (r == -ENOENT)
			why = "no signed chain heads in the store: deleted, or none signed yet "
			      "(mynaguard-collector --sign-heads)";
		else if (r < 0)
			return r;
		else if (sig_len != BUNDLE_SIG_LEN ||
			 bundle_verify_detached(pub, (const uint8_t *)body, strlen(body), sig) < 0)
			why = "the last signed chain heads do not verify with the heads key: the "
			      "record was altered or signed by another key";
		else if (evidence_heads_parse(body, &heads, &n, &res.signed_at) < 0)
			why = "the last signed chain heads are not readable";
		o.expect = heads;
		o.n_expect = n;
		res.signed_heads = n;
	}
	r = store_verify(s, &o, &res.v);
	if (r < 0)
		return r;
	if (why && !res.v.broken) {
		res.v.broken = true;
		snprintf(res.v.terminal, sizeof(res.v.terminal), "-");
		res.v.seq = 0;
		snprintf(res.v.reason, sizeof(res.v.reason), "%s", why);
	}
	*ret = res;
	return 0;
}

int evidence_heads_text(const struct store_head *heads, size_t n, int64_t at_ms, char **ret,
			size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	fprintf(f, HEADS_MAGIC "at=%" PRId64 "\n", at_ms);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s %" PRIu64 " %" PRId64 " %s ", heads[i].terminal, heads[i].seq,
			heads[i].received_ms, heads[i].kind);
		for (size_t j = 0; j < STORE_CHAIN_LEN; j++)
			fprintf(f, "%02x", heads[i].link[j]);
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

int evidence_sign(struct store *ro, struct store *rw, const struct collector_config *cfg,
		  int64_t now_ms, size_t *ret_heads, bool *ret_first, char ret_digest[65],
		  char err[static EVIDENCE_ERROR_MAX])
{
	struct bundle_signer *signer = NULL;
	struct evidence_verify v;
	_cleanup_free_ char *text = NULL;
	uint8_t sig[BUNDLE_SIG_LEN];
	size_t len;
	int r;

	if (!cfg->heads_key) {
		snprintf(err, EVIDENCE_ERROR_MAX, "no [evidence] heads_key configured");
		return -ENOKEY;
	}
	r = evidence_verify(ro, cfg, now_ms, NULL, true, &v, err);
	if (r < 0)
		return r;
	/* the very first record has nothing to be checked against */
	*ret_first = v.v.broken && v.signed_at == 0 && strcmp(v.v.terminal, "-") == 0 &&
		     v.signed_heads == 0 && strstr(v.v.reason, "no signed chain heads");
	if (v.v.broken && !*ret_first) {
		snprintf(err, EVIDENCE_ERROR_MAX,
			 "the store does not verify (terminal=%s seq=%" PRIu64 ": %s): not signed",
			 v.v.terminal, v.v.seq, v.v.reason);
		evidence_verify_done(&v);
		return -EBADMSG;
	}
	r = evidence_heads_text(v.v.heads, v.v.n_heads, now_ms, &text, &len);
	*ret_heads = v.v.n_heads;
	evidence_verify_done(&v);
	if (r < 0)
		return r;
	r = bundle_signer_load(cfg->heads_key, &signer, err, EVIDENCE_ERROR_MAX);
	if (r < 0)
		return r;
	r = bundle_sign_detached(signer, (const uint8_t *)text, len, sig);
	bundle_signer_free(signer);
	if (r < 0) {
		snprintf(err, EVIDENCE_ERROR_MAX, "signing failed");
		return r;
	}
	r = store_signed_heads_put(rw, now_ms, text, sig, sizeof(sig), EVIDENCE_HEADS_KEEP);
	if (r < 0) {
		snprintf(err, EVIDENCE_ERROR_MAX, "storing the signed heads: %s", strerror(-r));
		return r;
	}
	fleet_sha256_hex(text, len, NULL, 0, ret_digest);
	return 0;
}

/* ---- the collector's own signing thread ---- */

struct evidence_signer {
	const struct collector_config *cfg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};

static void sign_once(const struct collector_config *cfg)
{
	struct store *ro = NULL, *rw = NULL;
	char err[EVIDENCE_ERROR_MAX] = "", digest[65];
	size_t n = 0;
	bool first = false;
	int r;

	r = store_open(cfg->database, false, &ro);
	if (r >= 0)
		r = store_open(cfg->database, true, &rw);
	if (r >= 0)
		r = evidence_sign(ro, rw, cfg, server_now_ms(), &n, &first, digest, err);
	if (r >= 0 && first && n > 0)
		server_log(
		    LOG_WARNING,
		    "chain heads: the store holds events but no signed heads (first signing, "
		    "or the records were deleted): signing the chains as they are");
	if (r < 0) {
		atomic_fetch_add(&metrics.heads_sign_failures, 1);
		server_log(LOG_ERR, "chain heads not signed: %s; retrying in %d s",
			   err[0] ? err : strerror(-r), EVIDENCE_SIGN_PERIOD);
	} else {
		atomic_store(&metrics.heads_signed_ms, server_now_ms());
		server_log(LOG_INFO, "chain heads signed: %zu terminals, sha256 %s", n, digest);
	}
	store_close(ro);
	store_close(rw);
}

static void *signer_main(void *arg)
{
	struct evidence_signer *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		struct timespec until = {.tv_sec = time(NULL) + EVIDENCE_SIGN_PERIOD};
		pthread_mutex_unlock(&s->lock);
		sign_once(s->cfg);
		pthread_mutex_lock(&s->lock);
		while (!s->stop && time(NULL) < until.tv_sec)
			pthread_cond_timedwait(&s->cond, &s->lock, &until);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int evidence_signer_start(const struct collector_config *cfg, struct evidence_signer **ret)
{
	struct evidence_signer *s;

	*ret = NULL;
	if (!cfg->heads_key)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = cfg;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (pthread_create(&s->thread, NULL, signer_main, s) != 0) {
		free(s);
		return -EAGAIN;
	}
	*ret = s;
	return 0;
}

void evidence_signer_stop(struct evidence_signer *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}
