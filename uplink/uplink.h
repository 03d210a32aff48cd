/* SPDX-License-Identifier: MIT */
/* mynaguard-uplink internals (runs as user mynaguard): the HTTPS client beside the main loop and
 * the claim thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "claim.h"

struct uplink_tls {
	const char *ca;	  /* the only trusted CA */
	const char *cert; /* client certificate (terminal identity) */
	const char *key;
};

struct uplink_client;

/* url: the collector base (https://host:port), "/v1/events" is appended. */
int uplink_client_new(const char *url, const struct uplink_tls *tls, long timeout_sec,
		      struct uplink_client **ret);
void uplink_client_free(struct uplink_client *c);

enum uplink_result {
	UPLINK_OK,	    /* 200 with a valid acked_through */
	UPLINK_RETRY_AFTER, /* 429 (or 503) with Retry-After */
	UPLINK_REJECTED,    /* 4xx: the collector refused the batch */
	UPLINK_FAILED,	    /* transport, TLS, 5xx, or a bad answer */
};

struct uplink_answer {
	enum uplink_result result;
	long status;		/* HTTP status, 0 without one */
	uint64_t acked_through; /* UPLINK_OK */
	long retry_after_sec;	/* UPLINK_RETRY_AFTER; -1 without the header */
	char message[256];	/* for the log: curl's error or the collector's reason */
};

/* POST one batch body. Never fails otherwise than through ret->result. */
void uplink_client_post(struct uplink_client *c, const char *body, size_t len,
			struct uplink_answer *ret);

struct uplink_fetch {
	long status;   /* HTTP status, 0 without one (transport error, answer too large) */
	char etag[64]; /* the ETag header, "" without one */
	char *body;    /* 200: the body (malloc'd, the caller frees) */
	size_t len;
	char message[256]; /* for the log when not 200/304 */
	char what[64];	   /* the kind of failure without details (timings), to log it once */
};

/* GET path (e.g. "/v1/policy") on the same connection as the uploads, with If-None-Match when
 * given and extra_header ("Name: value") when not NULL; a 200 body beyond max bytes is refused (status 0). */
void uplink_client_get(struct uplink_client *c, const char *path, const char *if_none_match,
		       const char *extra_header, size_t max, struct uplink_fetch *ret);

/* POST /v1/totp/claim for the PAM module (base/claim.h), waiting at most timeout_ms. */
enum claim_result uplink_client_claim(struct uplink_client *c, const char *user, uint64_t step,
				      long timeout_ms);

/* ---- claim.c: the local claim socket (docs/fleet.md, "One-time across terminals") ---- */

struct uplink_claim;

/* Bind PATH (SOCK_SEQPACKET, mode 0600, a stale socket replaced); the listening fd or -errno. */
int uplink_claim_listen(const char *path);
/* Start the claim thread on lfd (owned from here on, closed even on failure): it serves every
 * connection as it comes, only root (SO_PEERCRED) may claim, one request, one byte, asking the
 * collector at url over a client of its own (made at the first claim, made again after a claim
 * that could not ask the collector). 0 or -errno. */
int uplink_claim_start(int lfd, const char *url, const struct uplink_tls *tls, long timeout_sec,
		       struct uplink_claim **ret);
/* The certificate was renewed (same paths, new contents): the thread makes a new client before
 * its next claim. Safe from any thread; NULL is ignored. */
void uplink_claim_renewed(struct uplink_claim *cl);
/* Stop the thread (after the claim it is serving), close the socket, free; NULL is ignored. */
void uplink_claim_stop(struct uplink_claim *cl);

/* ---- inbox.c: the fleet bundle (docs/fleet.md, "The uplink") ---- */

struct uplink_inbox;

/* spool: the spool directory; SPOOL/inbox is opened (made 0770 when missing and possible) at
 * each fetch. */
int uplink_inbox_new(const char *spool, bool verbose, struct uplink_inbox **ret);
void uplink_inbox_free(struct uplink_inbox *in);
/* The terminal's own id: a bundle for another one is not stored. */
void uplink_inbox_set_terminal(struct uplink_inbox *in, const char *terminal);
/* GET /v1/policy with the stored ETag; 200 replaces SPOOL/inbox/bundle (tmp + fsync + rename,
 * mode 0640) and then SPOOL/inbox/etag; 304 and 404 change nothing. Errors are logged (once
 * while they repeat), never fatal. */
void uplink_inbox_fetch(struct uplink_inbox *in, struct uplink_client *c);
