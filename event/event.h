/* SPDX-License-Identifier: MIT */
/* The wire: event model and strict JSON codec (jansson). Used by agent, uplink and collector. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENT_VERSION		1
#define EVENT_MAX_BYTES		(64 * 1024) /* one encoded event */
#define EVENT_MAX_DEPTH		8	    /* nesting inside "data" counts from the event object */
#define EVENT_BATCH_MAX_BYTES	(4 * 1024 * 1024) /* one POST body */
#define EVENT_BATCH_MAX_EVENTS	1000
#define EVENT_TERMINAL_MAX	64
#define EVENT_MAX_CLAUSES	16
#define EVENT_REASON_MAX	160
#define EVENT_CLAUSE_MAX	32		  /* length of one clause id, [A-Za-z0-9._-] */
#define EVENT_MAX_CHECKS	64		  /* entries in a compliance event's data.checks */
#define EVENT_TS_MAX_MS		253402300799999LL /* 9999-12-31T23:59:59.999Z */
#define EVENT_DATAGRAM_MAX_KEYS 16		  /* keys in a datagram's data object */

enum event_kind {
	EVENT_USB_BLOCKED,
	EVENT_USB_ALLOWED,
	EVENT_USB_REMOVED,
	EVENT_AUTH_SUCCESS,
	EVENT_AUTH_FAILURE,
	EVENT_AUTH_REPLAY,
	EVENT_AUTH_LOCKED,
	EVENT_AGENT_STARTED,
	EVENT_AGENT_STOPPED,
	EVENT_SPOOL_DROPPED,
	EVENT_COMPLIANCE,
	EVENT_BUNDLE_APPLIED,	     /* the agent installed a fleet bundle (docs/fleet.md) */
	EVENT_BUNDLE_REFUSED,	     /* a fleet bundle failed a check; the old policy stays */
	EVENT_USB_EXCEPTION_EXPIRED, /* an exception's `until` passed: the device was deauthorized */
	EVENT_USB_EXCEPTION_REVOKED, /* a newer bundle dropped an exception in force */
	/* The collector's own (source mynaguard-collector; a terminal may not send them): */
	EVENT_FLEET_GROUP, /* fleet administration (docs/fleet.md) */
	EVENT_FLEET_POLICY,
	EVENT_FLEET_REQUEST,
	EVENT_FLEET_GRANT,
	EVENT_FLEET_REFUSE,
	EVENT_FLEET_REVOKE,
	EVENT_FLEET_LEDGER,
	EVENT_ENROLL_ISSUED, /* the collector's own: a certificate issued (enrollment or renewal) */
	EVENT_ENROLL_REFUSED, /* the collector's own: an enrollment or renewal refused */
	EVENT_FLEET_TOTP, /* the collector's own: a central TOTP enrollment, revocation, recovery */
	EVENT_TOTP_INSTALLED, /* the agent installed or removed a central TOTP secret */
	EVENT_REVIEW_SIGNED,  /* the collector's own: a log review signed off (docs/evidence.md) */
	EVENT_ACCOUNT_LOGIN, /* the collector's own: the dashboard's accounts (docs/ARCHITECTURE.md) */
	EVENT_ACCOUNT_LOGIN_FAILURE,
	EVENT_ACCOUNT_LOGOUT,
	EVENT_ACCOUNT_CREATED,
	EVENT_ACCOUNT_DISABLED,
	EVENT_ACCOUNT_TOKEN,
	_EVENT_KIND_MAX,
};

/* "usb.blocked" etc.; event_kind_from_name returns -EINVAL for an unknown name. */
const char *event_kind_name(enum event_kind k);
int event_kind_from_name(const char *name, enum event_kind *ret);
/* auth.success, auth.failure, auth.replay, auth.locked: the kinds the PAM module may send. */
bool event_kind_is_auth(enum event_kind k);
/* fleet.*, enroll.* and account.*: written by the collector under its own source id; ingest refuses them
 * from a terminal. */
bool event_kind_is_collector_own(enum event_kind k);

/* One event. Owns clause and data (jansson references). */
struct event {
	char terminal[EVENT_TERMINAL_MAX + 1];
	uint64_t seq;
	int64_t ts_ms; /* Unix time in ms, UTC */
	enum event_kind kind;
	json_t *clause; /* array of strings, may be empty */
	json_t *data;	/* object */
};

void event_clear(struct event *e); /* drops clause and data; accepts a zeroed event */

/* "2026-11-25T18:58:36.123Z" from ms since the epoch; buf must hold 32 bytes. */
void event_format_ts(int64_t ts_ms, char buf[static 32]);
/* The reverse; accepts only that exact shape (with or without ms). -EINVAL otherwise. */
int event_parse_ts(const char *s, int64_t *ret_ms);

/* A terminal id: 1..64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool event_terminal_id_valid(const char *s);
/* A clause id: 1..32 of [A-Za-z0-9._-] (e.g. "2-6-3-a"). */
bool event_clause_id_valid(const char *s);

/* Encode one event as compact JSON (keys in the order of DESIGN.md). */
int event_encode(const struct event *e, char **ret, size_t *ret_len);
/* Build the same object as a json_t (new reference). */
json_t *event_to_json(const struct event *e);

/* Strict decode of one event: size and depth limits, required keys, exact types, known kind,
 * no unknown top-level keys, duplicate keys rejected. On error returns -EINVAL (or -EMSGSIZE
 * for too large) and writes a one-line reason ("seq: expected a non-negative integer").
 * Required: v (1), terminal, seq, ts, kind, data (object). Optional: clause (default []).
 * Kind-specific data rules (what readers rely on; other data keys are free):
 *   compliance:    data.checks = array (<= EVENT_MAX_CHECKS) of objects with "id" (non-empty
 *                  string), "status" ("pass"|"fail"|"not_applicable"|"error"), optional
 *                  "clause" (array of clause ids) and "detail" (string); optional
 *                  data.policy_hash (string, "sha256:HEX").
 *   spool.dropped: data.count (integer >= 0), optional data.first_seq, data.last_seq
 *                  (integers >= 0: the range of sequence numbers that will never arrive). */
int event_decode(const char *buf, size_t len, struct event *ret,
		 char reason[static EVENT_REASON_MAX]);
int event_from_json(json_t *obj, struct event *ret, char reason[static EVENT_REASON_MAX]);

/* A batch as POSTed to /v1/events: {"v":1,"terminal":ID,"events":[...]} */
struct event_batch {
	char terminal[EVENT_TERMINAL_MAX + 1];
	struct event *events;
	size_t n;
};

void event_batch_clear(struct event_batch *b);

/* Strict decode: every event must carry the batch's terminal; at most EVENT_BATCH_MAX_EVENTS;
 * body at most EVENT_BATCH_MAX_BYTES, each event at most EVENT_MAX_BYTES as compact JSON
 * (-EMSGSIZE). Nothing is returned unless all of it is valid. */
int event_batch_decode(const char *buf, size_t len, struct event_batch *ret,
		       char reason[static EVENT_REASON_MAX]);

/* Encode n already-encoded events (each a JSON object text) into a batch body.
 * -EMSGSIZE when n > EVENT_BATCH_MAX_EVENTS or the body would exceed EVENT_BATCH_MAX_BYTES. */
int event_batch_encode_raw(const char *terminal, const char *const *events, const size_t *lens,
			   size_t n, char **ret, size_t *ret_len);
/* Size of that body for n events whose texts total payload_bytes. */
size_t event_batch_raw_size(const char *terminal, size_t n, size_t payload_bytes);

/* ---- PAM module → agent datagrams ----
 * The PAM module does not link jansson: it writes this shape by hand, the agent decodes it.
 *   {"v":1,"kind":"auth.failure","ts_ms":N,"data":{"user":S,"service":S,"rhost":S,"tty":S,"reason":S}}
 * kind must be one of auth.*; terminal and seq are added by the agent. data: at most
 * EVENT_DATAGRAM_MAX_KEYS keys, values strings, integers or booleans; "user" and "service"
 * (strings) required; "sender" is reserved (the agent adds {"uid":N,"pid":N} from SO_PASSCRED).
 * ts_ms in 0..EVENT_TS_MAX_MS. */
#define EVENT_DATAGRAM_MAX 4096
int event_datagram_decode(const char *buf, size_t len, enum event_kind *ret_kind,
			  int64_t *ret_ts_ms, json_t **ret_data,
			  char reason[static EVENT_REASON_MAX]);
