/* SPDX-License-Identifier: MIT */
/* mynaguard-uplink internals (runs as user mynaguard): the HTTPS client beside the main loop. */
#pragma once

#include <stddef.h>
#include <stdint.h>

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
