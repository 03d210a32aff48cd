/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the audit evidence bundle (監査証跡, docs/evidence.md "Evidence bundle"):
 * one JSON-lines file for a date range and a set of clauses, with each terminal's status per
 * day and check, the failures, the review sign-offs, the policy hashes and the chain heads,
 * closed by a manifest (counts and SHA-256 per section and of the whole body) and an Ed25519
 * signature over the manifest. evidence-verify.c checks it offline. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "bundle.h"
#include "evidence-verify.h"
#include "ingest.h"
#include "macro.h"
#include "review.h"
#include "server.h"

/* ---- the query ---- */

static int parse_day(const char *s, int64_t *ret)
{
	int y, m, d;
	struct tm tm = {0};

	if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-' || strspn(s, "0123456789-") != 10)
		return -EINVAL;
	y = atoi(s);
	m = atoi(s + 5);
	d = atoi(s + 8);
	if (y < 2000 || y > 9998 || m < 1 || m > 12 || d < 1 || d > 31)
		return -EINVAL;
	tm = (struct tm){.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
	time_t t = timegm(&tm);
	gmtime_r(&t, &tm);
	if (tm.tm_mday != d) /* 2026-02-30 */
		return -EINVAL;
	*ret = (int64_t)t * 1000 - REVIEW_JST_MS;
	return 0;
}

static bool clause_id_valid(const char *s, size_t n)
{
	if (n < 1 || n > EVENT_CLAUSE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    s[i]))
			return false;
	return true;
}

int evidence_query_parse(const char *from, const char *to, const char *clauses,
			 struct evidence_query *ret, char *err, size_t errsz)
{
	struct evidence_query q = {0};

	if (parse_day(from, &q.from_ms) < 0)
		return review_fail(err, errsz, -EINVAL, "from: expected a date YYYY-MM-DD");
	if (parse_day(to, &q.to_ms) < 0)
		return review_fail(err, errsz, -EINVAL, "to: expected a date YYYY-MM-DD");
	if (q.to_ms < q.from_ms)
		return review_fail(err, errsz, -EINVAL, "to is before from");
	q.to_ms += REVIEW_DAY_MS; /* the last day is included */
	q.ndays = (unsigned)((q.to_ms - q.from_ms) / REVIEW_DAY_MS);
	if (q.ndays > EVIDENCE_DAYS_MAX)
		return review_fail(err, errsz, -EINVAL, "at most %d days in one bundle",
				   EVIDENCE_DAYS_MAX);
	snprintf(q.from, sizeof(q.from), "%s", from);
	snprintf(q.to, sizeof(q.to), "%s", to);
	for (const char *p = clauses; p && *p;) {
		size_t n = strcspn(p, ",");
		if (!clause_id_valid(p, n))
			return review_fail(err, errsz, -EINVAL,
					   "clauses: comma-separated clause ids like 2-6-3-a");
		if (q.n_clauses == EVIDENCE_CLAUSES_MAX)
			return review_fail(err, errsz, -EINVAL, "clauses: at most %d",
					   EVIDENCE_CLAUSES_MAX);
		memcpy(q.clauses[q.n_clauses], p, n);
		q.clauses[q.n_clauses++][n] = 0;
		p += n;
		if (*p == ',' && !*++p)
			return review_fail(err, errsz, -EINVAL, "clauses: empty clause id");
	}
	*ret = q;
	return 0;
}

bool evidence_clause_match(json_t *clause, const struct evidence_query *q)
{
	size_t i;
	json_t *c;

	if (!q || q->n_clauses == 0)
		return true;
	json_array_foreach(clause, i, c)
	{
		const char *s = json_string_value(c);
		for (size_t k = 0; s && k < q->n_clauses; k++)
			if (strcmp(s, q->clauses[k]) == 0)
				return true;
	}
	return false;
}

static const char *col(struct review_q *st, int i)
{
	return review_q_col(st, i);
}

/* ---- status per day ---- */

struct check_state {
	char *id;
	json_t *clause;
	char status[16], worst[16];
	bool reported;
};

static int rank(const char *status)
{
	return strcmp(status, "error") == 0 || strcmp(status, "fail") == 0 ? 2
	       : strcmp(status, "pass") == 0				   ? 1
									   : 0;
}

struct daily {
	struct check_state *c;
	size_t n, cap;
	char terminal[EVENT_TERMINAL_MAX + 1];
	unsigned day; /* the next day to flush */
	unsigned ndays;
	int64_t from_ms;
	evidence_day_fn fn;
	void *userdata;
};

static void daily_clear(struct daily *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->c[i].id);
		json_decref(d->c[i].clause);
	}
	d->n = 0;
	d->day = 0;
}

/* Emits the days before day `until` (exclusive). */
static int daily_flush(struct daily *d, unsigned until)
{
	for (; d->day < until && d->day < d->ndays; d->day++)
		for (size_t i = 0; i < d->n; i++) {
			struct check_state *c = &d->c[i];
			struct evidence_day ev = {.terminal = d->terminal,
						  .day = d->day,
						  .check = c->id,
						  .clause = c->clause,
						  .status = c->worst,
						  .reported = c->reported};
			int r = d->fn(&ev, d->userdata);
			if (r < 0)
				return r;
			snprintf(c->worst, sizeof(c->worst), "%s", c->status);
			c->reported = false;
		}
	return 0;
}

static int daily_apply(struct daily *d, json_t *checks)
{
	size_t i;
	json_t *c;

	json_array_foreach(checks, i, c)
	{
		const char *id = json_string_value(json_object_get(c, "id"));
		const char *status = json_string_value(json_object_get(c, "status"));
		json_t *clause = json_object_get(c, "clause");
		struct check_state *s = NULL;

		if (!id || !status)
			continue;
		for (size_t k = 0; k < d->n && !s; k++)
			if (strcmp(d->c[k].id, id) == 0)
				s = &d->c[k];
		if (!s) {
			if (d->n == d->cap) {
				size_t cap = d->cap ? d->cap * 2 : 16;
				struct check_state *n = realloc(d->c, cap * sizeof(*n));
				if (!n)
					return -ENOMEM;
				d->c = n;
				d->cap = cap;
			}
			s = &d->c[d->n];
			*s = (struct check_state){.id = strdup(id)};
			if (!s->id)
				return -ENOMEM;
			d->n++;
			snprintf(s->worst, sizeof(s->worst), "%s", status);
		}
		json_decref(s->clause);
		s->clause = json_is_array(clause) ? json_incref(clause) : json_array();
		snprintf(s->status, sizeof(s->status), "%s", status);
		if (rank(status) > rank(s->worst))
			snprintf(s->worst, sizeof(s->worst), "%s", status);
		s->reported = true;
	}
	return 0;
}

static int daily_snapshot(const char *terminal, int64_t ts, uint64_t seq, const char *chain,
			  json_t *data, void *userdata)
{
	struct daily *d = userdata;
	int r = 0;

	(void)seq;
	(void)chain;
	if (strcmp(d->terminal, terminal) != 0) {
		r = daily_flush(d, d->ndays);
		daily_clear(d);
		snprintf(d->terminal, sizeof(d->terminal), "%s", terminal);
		if (r < 0)
			return r;
	}
	if (ts >= d->from_ms)
		r = daily_flush(d, (unsigned)((ts - d->from_ms) / REVIEW_DAY_MS));
	if (r >= 0)
		r = daily_apply(d, json_object_get(data, "checks"));
	return r;
}

int evidence_daily(struct review_db *db, int64_t from_ms, unsigned ndays, evidence_day_fn fn,
		   void *userdata)
{
	struct daily d = {.ndays = ndays, .from_ms = from_ms, .fn = fn, .userdata = userdata};
	int r = review_snapshots(db, from_ms, from_ms + (int64_t)ndays * REVIEW_DAY_MS,
				 daily_snapshot, &d);

	if (r >= 0)
		r = daily_flush(&d, ndays);
	daily_clear(&d);
	free(d.c);
	return r;
}

/* ---- the writer ---- */

struct section {
	const char *name;
	EVP_MD_CTX *md;
	unsigned long long count;
};

struct writer {
	FILE *out;
	EVP_MD_CTX *body;
	struct section sec[EVIDENCE_SECTIONS];
	unsigned long long lines, bytes;
	const struct evidence_query *q;
	int64_t from_ms;
	bool failed;
};

static int emit(struct writer *w, unsigned section, json_t *o)
{
	char *text;
	size_t len;

	if (!o)
		return -ENOMEM;
	if (w->q->hide_personal)
		auth_redact(o);
	json_object_set_new(o, "type", json_string(evidence_sections[section]));
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return -ENOMEM;
	len = strlen(text);
	text[len] = '\n'; /* the NUL becomes the line end; written with it */
	if (fwrite(text, 1, len + 1, w->out) != len + 1 ||
	    EVP_DigestUpdate(w->body, text, len + 1) != 1 ||
	    EVP_DigestUpdate(w->sec[section].md, text, len + 1) != 1) {
		free(text);
		return -EIO;
	}
	free(text);
	w->sec[section].count++;
	w->lines++;
	w->bytes += len + 1;
	return 0;
}

static json_t *ts_json(int64_t ms)
{
	char buf[32];
	event_format_ts(ms, buf);
	return json_string(buf);
}

static int status_line(const struct evidence_day *d, void *userdata)
{
	struct writer *w = userdata;
	char day[11];

	if (!evidence_clause_match(d->clause, w->q))
		return 0;
	review_day_name(w->from_ms + (int64_t)d->day * REVIEW_DAY_MS, day);
	return emit(w, EVIDENCE_STATUS,
		    json_pack("{s:s, s:s, s:s, s:O, s:s, s:b}", "terminal", d->terminal, "day", day,
			      "check", d->check, "clause", d->clause, "status", d->status,
			      "reported", d->reported));
}

static json_t *parse_col(struct review_q *st, int i)
{
	json_t *v = json_loads(col(st, i), JSON_DECODE_ANY, NULL);
	return v ? v : json_null();
}

/* The checks of one terminal that are failing now (ids), while its snapshots are walked. */
struct turned {
	struct writer *w;
	char terminal[EVENT_TERMINAL_MAX + 1];
	char **failing;
	size_t n, cap;
};

static bool turned_was(struct turned *t, const char *id, bool now)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->failing[i], id) == 0) {
			if (!now) {
				free(t->failing[i]);
				t->failing[i] = t->failing[--t->n];
			}
			return true;
		}
	if (now && t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **n = realloc(t->failing, cap * sizeof(char *));
		if (!n)
			return false; /* then it is named again next time: never less evidence */
		t->failing = n;
		t->cap = cap;
	}
	if (now && (t->failing[t->n] = strdup(id)))
		t->n++;
	return false;
}

static int turned_snapshot(const char *terminal, int64_t ts, uint64_t seq, const char *chain,
			   json_t *data, void *userdata)
{
	struct turned *t = userdata;
	json_t *ck;
	size_t i;
	int r = 0;

	if (strcmp(t->terminal, terminal) != 0) {
		for (size_t k = 0; k < t->n; k++)
			free(t->failing[k]);
		t->n = 0;
		snprintf(t->terminal, sizeof(t->terminal), "%s", terminal);
	}
	json_array_foreach(json_object_get(data, "checks"), i, ck)
	{
		const char *id = json_string_value(json_object_get(ck, "id"));
		const char *status = json_string_value(json_object_get(ck, "status"));
		json_t *clause = json_object_get(ck, "clause");
		bool now;

		if (!id || !status)
			continue;
		now = rank(status) == 2;
		if (turned_was(t, id, now) || !now || ts < t->w->q->from_ms ||
		    !evidence_clause_match(clause, t->w->q))
			continue;
		r = emit(t->w, EVIDENCE_FAILURE,
			 json_pack("{s:s, s:I, s:o, s:s, s:s, s:s, s:o, s:s?, s:s}", "terminal",
				   terminal, "seq", (json_int_t)seq, "ts", ts_json(ts), "kind",
				   "compliance", "check", id, "status", status, "clause",
				   json_is_array(clause) ? json_incref(clause) : json_array(),
				   "detail", json_string_value(json_object_get(ck, "detail")),
				   "chain", chain));
		if (r < 0)
			break;
	}
	return r;
}

/* Events of the failure kinds whose clauses match, and each check that turned failing. */
static int failures(struct review_db *db, struct writer *w)
{
#define FAILURES(chain)                                                                            \
	"SELECT t.name, e.seq, e.ts, e.kind, e.clause, e.data, " chain                             \
	" FROM events e JOIN terminals t ON t.id = e.tid"                                          \
	" WHERE e.ts >= ?1 AND e.ts < ?2 AND e.kind IN ('auth.failure',"                           \
	" 'auth.locked', 'auth.replay', 'usb.blocked', 'bundle.refused',"                          \
	" 'spool.dropped') ORDER BY t.name " REVIEW_Q_C ", e.ts, e.seq"
	struct review_q *st =
	    review_q_prep(db, FAILURES("hex(e.chain)"), FAILURES("upper(encode(e.chain, 'hex'))"));
	int rc, r = 0;

	if (!st)
		return -EIO;
	review_q_int(st, 1, w->q->from_ms);
	review_q_int(st, 2, w->q->to_ms);
	while (r >= 0 && (rc = review_q_step(st)) == 1) {
		json_t *clause = parse_col(st, 4);
		if (evidence_clause_match(clause, w->q))
			r = emit(w, EVIDENCE_FAILURE,
				 json_pack("{s:s, s:I, s:o, s:s, s:o, s:o, s:s}", "terminal",
					   col(st, 0), "seq", (json_int_t)review_q_int_col(st, 1),
					   "ts", ts_json(review_q_int_col(st, 2)), "kind",
					   col(st, 3), "clause", json_incref(clause), "data",
					   parse_col(st, 5), "chain", col(st, 6)));
		json_decref(clause);
	}
	if (r >= 0 && rc != 0)
		r = -EIO;
	review_q_free(st);
	if (r < 0)
		return r;

	return r;
}

static int reviews(struct review_db *db, struct writer *w)
{
	json_t *list = NULL, *o;
	size_t i;
	int r = review_signoffs(db, NULL, 100000, &list);

	if (r < 0)
		return r;
	/* oldest first; the periods that overlap the range */
	for (i = json_array_size(list); r >= 0 && i-- > 0;) {
		struct review_period p;
		o = json_array_get(list, i);
		if (review_period_parse(json_string_value(json_object_get(o, "period")), &p, NULL,
					0) < 0 ||
		    p.to_ms <= w->q->from_ms || p.from_ms >= w->q->to_ms)
			continue;
		r = emit(w, EVIDENCE_REVIEW, json_incref(o));
	}
	json_decref(list);
	return r;
}

/* One walk over the snapshots writes the status lines and the checks that turned failing, and
 * collects the policy hashes (emitted after the review lines). */
struct walk {
	struct writer *w;
	struct daily d;
	struct turned t;
	char terminal[EVENT_TERMINAL_MAX + 1];
	json_t *cur;	  /* policy_hash -> {first, last, snapshots} of the terminal */
	json_t *policies; /* the policy lines */
};

static int policy_flush(struct walk *k)
{
	const char *h;
	json_t *v;

	json_object_foreach(k->cur, h, v)
	{
		json_t *line =
		    json_pack("{s:s, s:o, s:o, s:o, s:O}", "terminal", k->terminal, "policy_hash",
			      strcmp(h, "") == 0 ? json_null() : json_string(h), "first",
			      ts_json(json_integer_value(json_object_get(v, "first"))), "last",
			      ts_json(json_integer_value(json_object_get(v, "last"))), "snapshots",
			      json_object_get(v, "snapshots"));
		if (!line || json_array_append_new(k->policies, line) < 0)
			return -ENOMEM;
	}
	json_object_clear(k->cur);
	return 0;
}

static int walk_snapshot(const char *terminal, int64_t ts, uint64_t seq, const char *chain,
			 json_t *data, void *userdata)
{
	struct walk *k = userdata;
	const char *h = json_string_value(json_object_get(data, "policy_hash"));
	json_t *v;
	int r;

	if (strcmp(k->terminal, terminal) != 0) {
		r = policy_flush(k);
		snprintf(k->terminal, sizeof(k->terminal), "%s", terminal);
		if (r < 0)
			return r;
	}
	r = daily_snapshot(terminal, ts, seq, chain, data, &k->d);
	if (r >= 0)
		r = turned_snapshot(terminal, ts, seq, chain, data, &k->t);
	if (r < 0 || ts < k->w->q->from_ms)
		return r;
	v = json_object_get(k->cur, h ? h : "");
	if (!v) {
		v = json_pack("{s:I, s:I, s:I}", "first", (json_int_t)ts, "last", (json_int_t)ts,
			      "snapshots", (json_int_t)0);
		if (!v || json_object_set_new(k->cur, h ? h : "", v) < 0)
			return -ENOMEM;
	}
	json_object_set_new(v, "last", json_integer(ts));
	json_object_set_new(v, "snapshots",
			    json_integer(json_integer_value(json_object_get(v, "snapshots")) + 1));
	return 0;
}

static int walk(struct review_db *db, struct writer *w, json_t **ret_policies)
{
	struct walk k = {
	    .w = w,
	    .d = {.ndays = w->q->ndays, .from_ms = w->q->from_ms, .fn = status_line, .userdata = w},
	    .t = {.w = w},
	    .cur = json_object(),
	    .policies = json_array()};
	int r = k.cur && k.policies ? 0 : -ENOMEM;

	if (r >= 0)
		r = review_snapshots(db, w->q->from_ms, w->q->to_ms, walk_snapshot, &k);
	if (r >= 0)
		r = daily_flush(&k.d, k.d.ndays);
	if (r >= 0)
		r = policy_flush(&k);
	daily_clear(&k.d);
	free(k.d.c);
	for (size_t i = 0; i < k.t.n; i++)
		free(k.t.failing[i]);
	free(k.t.failing);
	json_decref(k.cur);
	if (r < 0) {
		json_decref(k.policies);
		return r;
	}
	*ret_policies = k.policies;
	return 0;
}

static int chain_heads(struct review_db *db, struct writer *w)
{
#define HEADS(head)                                                                                \
	"SELECT t.name, t.max_seq, " head ","                                                      \
	" EXISTS (SELECT 1 FROM chain_anchors a WHERE a.tid = t.id)"                               \
	" FROM terminals t ORDER BY t.name " REVIEW_Q_C
	struct review_q *st = review_q_prep(db, HEADS("lower(hex(t.chain_head))"),
					    HEADS("encode(t.chain_head, 'hex')"));
	int rc, r = 0;

	if (!st)
		return -EIO;
	while (r >= 0 && (rc = review_q_step(st)) == 1)
		r = emit(w, EVIDENCE_CHAIN_HEAD,
			 json_pack("{s:s, s:I, s:s, s:b}", "terminal", col(st, 0), "max_seq",
				   (json_int_t)review_q_int_col(st, 1), "head", col(st, 2),
				   "anchored", review_q_int_col(st, 3) != 0));
	if (r >= 0 && rc != 0)
		r = -EIO;
	review_q_free(st);
	return r;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int finish_md(EVP_MD_CTX *md, char out[65])
{
	uint8_t d[32];
	unsigned n = 0;

	if (EVP_DigestFinal_ex(md, d, &n) != 1 || n != 32)
		return -EIO;
	hex(d, 32, out);
	return 0;
}

int evidence_write(struct review_db *db, const struct evidence_query *q,
		   const struct bundle_signer *key, FILE *out, char *err, size_t errsz)
{
	struct writer w = {.out = out, .q = q, .from_ms = q->from_ms};
	uint8_t pub[BUNDLE_PUBKEY_LEN], sig[BUNDLE_SIG_LEN];
	char key_id[EVIDENCE_KEY_ID_LEN + 1], sha[65], sighex[2 * BUNDLE_SIG_LEN + 1];
	json_t *clauses = json_array(), *sections = json_object(), *manifest, *policies = NULL;
	_cleanup_free_ char *mtext = NULL, *msg = NULL;
	int r = 0;

	bundle_signer_pubkey(key, pub);
	evidence_key_id(pub, key_id);
	w.body = EVP_MD_CTX_new();
	for (unsigned i = 0; i < EVIDENCE_SECTIONS; i++) {
		w.sec[i].md = EVP_MD_CTX_new();
		if (!w.sec[i].md || EVP_DigestInit_ex(w.sec[i].md, EVP_sha256(), NULL) != 1)
			r = -ENOMEM;
	}
	if (!w.body || EVP_DigestInit_ex(w.body, EVP_sha256(), NULL) != 1 || !clauses || !sections)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < q->n_clauses; i++)
		json_array_append_new(clauses, json_string(q->clauses[i]));
	if (r >= 0) {
		json_t *header =
		    json_pack("{s:s, s:i, s:s, s:s, s:O, s:o, s:s, s:s}", "format", EVIDENCE_FORMAT,
			      "version", EVIDENCE_VERSION, "from", q->from, "to", q->to, "clauses",
			      clauses, "generated_at", ts_json(server_now_ms()), "timezone",
			      "+09:00", "key_id", key_id);
		if (header && q->hide_personal)
			json_object_set_new(header, "redacted", json_true());
		r = emit(&w, EVIDENCE_HEADER, header);
	}
	if (r >= 0)
		r = walk(db, &w, &policies);
	if (r >= 0)
		r = failures(db, &w);
	if (r >= 0)
		r = reviews(db, &w);
	for (size_t i = 0; r >= 0 && i < json_array_size(policies); i++)
		r = emit(&w, EVIDENCE_POLICY, json_incref(json_array_get(policies, i)));
	if (r >= 0)
		r = chain_heads(db, &w);
	for (unsigned i = 0; r >= 0 && i < EVIDENCE_SECTIONS; i++) {
		r = finish_md(w.sec[i].md, sha);
		if (r >= 0)
			json_object_set_new(sections, evidence_sections[i],
					    json_pack("{s:I, s:s}", "count",
						      (json_int_t)w.sec[i].count, "sha256", sha));
	}
	if (r >= 0)
		r = finish_md(w.body, sha);
	if (r >= 0) {
		manifest = json_pack("{s:s, s:I, s:I, s:s, s:O}", "type", "manifest", "lines",
				     (json_int_t)w.lines, "bytes", (json_int_t)w.bytes, "sha256",
				     sha, "sections", sections);
		mtext = manifest ? json_dumps(manifest, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(manifest);
		r = mtext ? 0 : -ENOMEM;
	}
	if (r >= 0) {
		size_t n = strlen(mtext);
		msg = malloc(sizeof(EVIDENCE_CONTEXT) + n);
		if (!msg)
			r = -ENOMEM;
		else {
			memcpy(msg, EVIDENCE_CONTEXT, sizeof(EVIDENCE_CONTEXT));
			memcpy(msg + sizeof(EVIDENCE_CONTEXT), mtext, n);
			r = bundle_sign_detached(key, msg, sizeof(EVIDENCE_CONTEXT) + n, sig);
		}
	}
	if (r >= 0) {
		hex(sig, sizeof(sig), sighex);
		if (fprintf(out,
			    "%s\n{\"alg\":\"ed25519\",\"key_id\":\"%s\",\"type\":\"signature\","
			    "\"value\":\"%s\"}\n",
			    mtext, key_id, sighex) < 0)
			r = -EIO;
	}
	json_decref(clauses);
	json_decref(sections);
	json_decref(policies);
	EVP_MD_CTX_free(w.body);
	for (unsigned i = 0; i < EVIDENCE_SECTIONS; i++)
		EVP_MD_CTX_free(w.sec[i].md);
	if (r < 0)
		return review_fail(err, errsz, r, "cannot write the bundle: %s", strerror(-r));
	return 0;
}
