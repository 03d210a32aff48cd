/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the chain walk of store_verify(), shared by both stores (store-verify.h). */
#include "store-verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void verify_break(struct store_verify *v, const char *terminal, uint64_t seq)
{
	v->broken = true;
	snprintf(v->terminal, sizeof(v->terminal), "%s", terminal);
	v->seq = seq;
}

static int cmp_head(const void *a, const void *b)
{
	const struct store_head *x = a, *y = b;
	return strcmp(x->terminal, y->terminal);
}

static struct store_head *head_find(const struct store_verify_opts *o, const char *terminal)
{
	struct store_head key;

	if (!o->n_expect)
		return NULL;
	snprintf(key.terminal, sizeof(key.terminal), "%s", terminal);
	return bsearch(&key, o->expect, o->n_expect, sizeof(*o->expect), cmp_head);
}

/* A disposal the policy allows: the kind has a period, and the event was received before it. */
static bool disposal_due(const struct store_retention_policy *p, const char *kind,
			 int64_t received_ms)
{
	enum event_kind k;

	return kind && event_kind_from_name(kind, &k) >= 0 && p->cutoff_ms[k] != INT64_MIN &&
	       received_ms < p->cutoff_ms[k];
}

void verify_walk_start(struct verify_walk *w, const struct store_verify_opts *o,
		       struct store_verify *v, const char *name, const uint8_t *anchor,
		       size_t anchor_len)
{
	*w = (struct verify_walk){.o = o, .v = v, .name = name, .want = head_find(o, name)};
	if (anchor) {
		v->anchored++;
		w->anchored = true;
		if (anchor_len == STORE_CHAIN_LEN)
			memcpy(w->link, anchor, STORE_CHAIN_LEN);
	}
}

int verify_walk_row(struct verify_walk *w, EVP_MD_CTX *md, uint64_t seq, int64_t ts,
		    int64_t received, const char *kind, const char *clause, size_t clause_len,
		    const char *data, size_t data_len, const uint8_t *body, size_t body_len,
		    const uint8_t *stored, size_t stored_len)
{
	const struct store_verify_opts *o = w->o;
	struct store_verify *v = w->v;
	uint8_t digest[STORE_CHAIN_LEN];
	int r;

	if (body) {
		if (body_len != STORE_CHAIN_LEN)
			memset(digest, 0, sizeof(digest)); /* cannot match: verify names it */
		else
			memcpy(digest, body, STORE_CHAIN_LEN);
	} else {
		r = chain_body(md, clause, clause_len, data, data_len, digest);
		if (r < 0)
			return r;
	}
	r = chain_link(md, w->link, w->name, seq, ts, received, kind, digest, w->link);
	if (r < 0)
		return r;
	v->events++;
	if (!stored || stored_len != STORE_CHAIN_LEN ||
	    memcmp(stored, w->link, STORE_CHAIN_LEN) != 0) {
		verify_break(v, w->name, seq);
		if (w->any)
			snprintf(v->reason, sizeof(v->reason),
				 "the event does not follow the one stored before it (seq %" PRIu64
				 "): it was altered, or events between them were removed",
				 w->last_seq);
		else
			snprintf(
			    v->reason, sizeof(v->reason),
			    "the first kept event does not follow the chain's start or anchor: "
			    "it was altered, or events before it were removed");
		return 1;
	}
	if (body) {
		v->tombstones++;
		/* a disposal must be one the policy allows: else it removed evidence */
		if (o->policy && !disposal_due(o->policy, kind, received)) {
			verify_break(v, w->name, seq);
			snprintf(v->reason, sizeof(v->reason),
				 "the event was disposed of before its retention period "
				 "([retention] %s) ended",
				 kind);
			return 1;
		}
	}
	if (w->want && !w->want->seen && w->want->seq == seq) {
		w->want->seen = true;
		v->heads_checked++;
		if (memcmp(w->want->link, w->link, STORE_CHAIN_LEN) != 0) {
			verify_break(v, w->name, seq);
			snprintf(v->reason, sizeof(v->reason),
				 "the chain does not pass through the signed head (seq %" PRIu64
				 "): the events up to it were rewritten",
				 seq);
			return 1;
		}
	}
	w->any = true;
	w->last_seq = seq;
	w->last_received = received;
	snprintf(w->last_kind, sizeof(w->last_kind), "%s", kind);
	return 0;
}

void verify_walk_end(struct verify_walk *w, const uint8_t *head, size_t head_len)
{
	const struct store_verify_opts *o = w->o;
	struct store_verify *v = w->v;
	struct store_head *want = w->want;

	if (head ? head_len != STORE_CHAIN_LEN || memcmp(head, w->link, STORE_CHAIN_LEN) != 0
		 : w->any) {
		verify_break(v, w->name, w->last_seq);
		snprintf(v->reason, sizeof(v->reason),
			 "the chain head does not match: events stored after seq %" PRIu64
			 " were removed",
			 w->last_seq);
		return;
	}
	if (want && !want->seen) {
		want->seen = true;
		/* disposed of and folded into the anchor, as the policy wants (the signed kind and
		 * receipt time say whether it was due); else removed */
		if (!w->anchored ||
		    (o->policy && !disposal_due(o->policy, want->kind, want->received_ms))) {
			verify_break(v, w->name, want->seq);
			snprintf(v->reason, sizeof(v->reason),
				 "the signed head (seq %" PRIu64
				 ") is not in the store and was not due for disposal: events were "
				 "removed",
				 want->seq);
			return;
		}
		v->heads_disposed++;
	}
	if (o->collect && w->any) {
		struct store_head *h = &v->heads[v->n_heads++];
		snprintf(h->terminal, sizeof(h->terminal), "%s", w->name);
		h->seq = w->last_seq;
		h->received_ms = w->last_received;
		snprintf(h->kind, sizeof(h->kind), "%s", w->last_kind);
		memcpy(h->link, w->link, STORE_CHAIN_LEN);
		h->seen = false;
	}
}

void verify_walk_missing(const struct store_verify_opts *o, struct store_verify *v)
{
	/* a signed terminal that is not in the store at all */
	for (size_t i = 0; !v->broken && i < o->n_expect; i++)
		if (!o->expect[i].seen) {
			verify_break(v, o->expect[i].terminal, o->expect[i].seq);
			snprintf(v->reason, sizeof(v->reason),
				 "the terminal of a signed head is not in the store: removed");
		}
}
