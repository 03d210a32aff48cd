/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the fleet channel (docs/fleet.md): groups and members, each group's signed
 * base, USB exceptions, requests from usb.blocked events, the media ledger, and the per-terminal
 * bundles served on GET /v1/policy. Its tables live in the collector's database (created
 * idempotently, beside the store's schema) and are reached through one connection of its own. */
#pragma once

#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

struct collector;
struct collector_config;
struct conn;
struct worker;
struct fleet;

#define FLEET_NOT_CONFIGURED                                                                       \
	"the fleet is not configured on this collector ([fleet] grant_key and root_key)"

/* Loads the grant key and the root public key and opens the fleet tables. *ret = NULL (and 0)
 * when [fleet] is not configured. Logs what failed. */
int fleet_open(struct collector *c, const struct collector_config *cfg, struct fleet **ret);
void fleet_close(struct fleet *f);

/* The dashboard paths that fleet_api_handle answers (/v1/groups..., /v1/exceptions...,
 * /v1/requests..., /v1/ledger...). */
bool fleet_api_path(const char *path);
/* Dashboard listener: checks the bearer token itself, any method. */
void fleet_api_handle(struct evhttp_request *req, struct worker *w);
/* Ingest listener: GET /v1/policy for the terminal of the client certificate. */
void fleet_policy_handle(struct evhttp_request *req, struct worker *w, struct conn *conn);
/* Ingest listener: POST /v1/totp/claim {"user","step"} for the terminal of the client
 * certificate: {"result":"ok"|"used"|"revoked"|"unknown"} (docs/fleet.md). */
void fleet_claim_handle(struct evhttp_request *req, struct worker *w, struct conn *conn);
/* Writer thread, after a commit: usb.blocked events become requests, usb.* events that name a
 * ledger device update its last-seen terminal and time. Failures are logged. */
void fleet_note_batch(struct fleet *f, const struct event_batch *b);

/* ---- The media ledger's CSV (pure; fuzzed as fuzz-ledger-csv) ---- */

#define FLEET_LEDGER_COLUMNS	13
#define FLEET_LEDGER_MAX_ROWS	10000
#define FLEET_LEDGER_NUMBER_MAX 32
#define FLEET_LEDGER_TEXT_MAX	256
#define FLEET_LEDGER_ERR_MAX	200

struct fleet_ledger_row {
	char *number;	   /* 登録番号: [A-Za-z0-9._-]{1,32} */
	char *holder;	   /* 保管者 */
	char *department;  /* 所属 */
	char *model;	   /* 型番 */
	char vendor[5];	   /* ベンダーID: 4 lowercase hex digits */
	char product[5];   /* プロダクトID */
	char *serial;	   /* シリアル, non-empty */
	bool encrypted;	   /* 暗号化: はい / いいえ */
	char lent[11];	   /* 貸出日: YYYY-MM-DD or "" */
	char returned[11]; /* 返却日 */
	char *note;	   /* 備考 */
	/* written by the collector only (ignored on import) */
	char *last_terminal;  /* 最終確認端末 */
	int64_t last_seen_ms; /* 最終確認日時, 0 = never */
};

/* The header line (UTF-8, without BOM and line end). */
extern const char fleet_ledger_csv_header[];

/* Checks one row's fields (number, ids, lengths, dates, valid UTF-8 without control
 * characters). -EINVAL with a reason naming the column. */
int fleet_ledger_row_check(const struct fleet_ledger_row *r, char *err, size_t errsz);
/* Strict parse of a whole file: optional UTF-8 BOM, the exact header, CRLF or LF line ends,
 * RFC 4180 quoting, exactly FLEET_LEDGER_COLUMNS cells a line, every row checked, no duplicate
 * numbers, at most FLEET_LEDGER_MAX_ROWS rows. The export's formula guard (a leading ' before
 * = + - @) is taken off. -EINVAL with "line N: reason" and nothing returned on any error. */
int fleet_ledger_csv_parse(const char *text, size_t len, struct fleet_ledger_row **ret,
			   size_t *ret_n, char *err, size_t errsz);
/* The file the export writes (BOM, header, CRLF), malloc'd. */
int fleet_ledger_csv_write(const struct fleet_ledger_row *rows, size_t n, char **ret,
			   size_t *ret_len);
void fleet_ledger_row_clear(struct fleet_ledger_row *r);
void fleet_ledger_rows_free(struct fleet_ledger_row *rows, size_t n);

/* "YYYY-MM-DD" (a day in Japan, UTC+9), RFC 3339 UTC ("2026-12-01T00:00:00Z") or unix seconds:
 * the start of that day, or with end_of_day the start of the next one (an exclusive until). */
int fleet_parse_time(const char *s, bool end_of_day, int64_t *ret);
