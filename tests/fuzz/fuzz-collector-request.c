/* SPDX-License-Identifier: MIT */
/* Fuzz target: what the collector decodes from peers — the ingest body checked against the
 * certificate's terminal (ingest_decode), the dashboard query strings (api_parse_filter and
 * api_parse_terminal_query and the history's day api_parse_day, all on the same input), the CSV
 * summary of stored data (api_event_summary + api_csv_cell), the revoked-serials file and the
 * HTTP framing check of a parsed header block (server_check_framing).
 * The first byte picks the decoder; the rest is its input. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "api.h"
#include "fuzz.h"
#include "ingest.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char reason[EVENT_REASON_MAX];
	char *text;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	text = malloc(len + 1);
	if (!text)
		return 0;
	memcpy(text, data + 1, len);
	text[len] = 0;

	switch (data[0] % 5) {
	case 0: {
		struct event_batch b;
		if (ingest_decode("term-001", text, len, &b, reason) == 200)
			event_batch_clear(&b);
		break;
	}
	case 1: {
		struct store_filter f;
		struct store_terminal_query q;
		int64_t day;
		(void)api_parse_filter(text, &f, reason);
		(void)api_parse_terminal_query(text, &q, reason);
		(void)api_parse_day(text, &day);
		break;
	}
	case 2: {
		/* "kind\ndata" → summary, then quoted as a CSV cell */
		const char *kind = text, *json = "";
		char *nl = strchr(text, '\n');
		struct evbuffer *out = evbuffer_new();
		char *summary;
		if (nl) {
			*nl = 0;
			json = nl + 1;
		}
		summary = api_event_summary(kind, json);
		if (out) {
			api_csv_cell(out, summary);
			api_csv_cell(out, json);
			evbuffer_free(out);
		}
		free(summary);
		break;
	}
	case 3: {
		char **list;
		size_t n;
		unsigned bad, line;
		if (server_parse_revoked(text, &list, &n, &bad, &line) == 0)
			server_free_revoked(list, n);
		break;
	}
	case 4: {
		/* "METHOD\nName: value\n...", split the way libevent splits a header line */
		static const enum evhttp_cmd_type methods[] = {EVHTTP_REQ_GET, EVHTTP_REQ_POST,
							       EVHTTP_REQ_HEAD, EVHTTP_REQ_TRACE};
		struct evkeyvalq h;
		char *save = NULL, *line = strtok_r(text, "\n", &save);
		enum evhttp_cmd_type method = methods[(line ? strlen(line) : 0) % 4];

		TAILQ_INIT(&h);
		while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
			char *value = line;
			char *key = strsep(&value, ":");
			if (!value)
				continue;
			value += strspn(value, " ");
			evhttp_add_header(&h, key, value);
		}
		(void)server_check_framing(&h, method, reason);
		evhttp_clear_headers(&h);
		break;
	}
	default:
		break;
	}
	free(text);
	return 0;
}
