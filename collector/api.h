/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the dashboard listener: read-only JSON API, CSV export, metrics and the web
 * page, behind auth_request() (static page assets excepted: they hold no data). */
#pragma once

#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>

#include "event.h"
#include "store.h"

#define API_LIMIT_DEFAULT 100
#define API_LIMIT_MAX	  1000
#define API_RECENT_EVENTS 50
#define API_TOP_TERMINALS 10 /* /v1/activity: the top terminals per kind */

struct web_asset {
	const char *path; /* "/app.js" */
	const char *content_type;
	const unsigned char *data;
	size_t len;
};
extern const struct web_asset web_assets[];
extern const size_t web_assets_n;

/* Parses the query string of /v1/events and /v1/export.csv (after, limit, terminal, kind, since,
 * until). Unknown or repeated parameters and bad values are refused (-EINVAL, with a reason). */
/* "2026-04-01" → days since the epoch (the history's day numbers, store_day()) */
int api_parse_day(const char *text, int64_t *ret);

int api_parse_filter(const char *query, struct store_filter *ret,
		     char reason[static EVENT_REASON_MAX]);

/* Parses the query string of /v1/terminals and /v1/terminals.csv (page, limit, sort, dir, status,
 * q, check); refuses what it does not know like api_parse_filter(). */
int api_parse_terminal_query(const char *query, struct store_terminal_query *ret,
			     char reason[static EVENT_REASON_MAX]);

/* One CSV cell: always quoted, quotes doubled, and a leading = + - @ TAB CR neutralised with '
 * so that spreadsheet programs never run it as a formula. */
struct evbuffer;
void api_csv_cell(struct evbuffer *out, const char *text);
/* A human-readable one-line summary of an event's data for the CSV; malloc'd. */
char *api_event_summary(const char *kind, const char *data_json);

void api_handle(struct evhttp_request *req, void *worker);

/* The dashboard's answers: body as JSON (not taken), or {"error":reason}; with the page's
 * security headers and Cache-Control: no-store. */
struct evhttp_request;
void api_send_json(struct evhttp_request *req, int status, json_t *body);
void api_send_error(struct evhttp_request *req, int status, const char *reason);
