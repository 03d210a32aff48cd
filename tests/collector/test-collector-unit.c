/* SPDX-License-Identifier: MIT */
/* Unit tests of the collector's pure parts: config parsing, revoked list, request decoding, CSV
 * cells, event summaries, dashboard query strings. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <liboath/oath.h>

#include <cmocka.h>

#include "alert.h"
#include "account-store.h"
#include "api.h"
#include "auth.h"
#include "conf.h"
#include "config.h" /* generated: MYNAGUARD_COLLECTOR_DB */
#include "ingest.h"
#include "server.h"
#include "store.h"
#include "totp_record.h"
#include "utf8.h"

static const char base_conf[] =
    "[ingest]\ncertificate = /c.pem\nkey = /c.key\nclient_ca = /ca.pem\n"
    "[dashboard]\ntoken_file = /t\n";

static void test_config_defaults(void **state)
{
	struct collector_config c;
	char err[CONFIG_ERROR_MAX];

	assert_int_equal(config_load_string("x.conf", base_conf, &c, err), 0);
	assert_string_equal(c.ingest_listen, "0.0.0.0:8443");
	assert_string_equal(c.dashboard_listen, "127.0.0.1:8444");
	assert_string_equal(c.dashboard_certificate, "/c.pem");
	assert_int_equal(c.workers, 2);
	assert_int_equal(c.max_body, 4 * 1024 * 1024);
	assert_int_equal(c.retention, 400 * 86400);
	assert_int_equal(c.report_interval, 300);
	config_free(&c);
}

static void test_config_errors(void **state)
{
	static const struct {
		const char *extra, *want;
	} cases[] = {
	    {"[store]\nretention = forever\n", "x.conf:8: [store] retention"},
	    {"[store]\nbogus = 1\n", "x.conf:8: unknown key \"bogus\" in [store]"},
	    {"[nope]\na = b\n", "x.conf:8: unknown section [nope]"},
	    {"[ingest]\nlisten = [::1]8443\n", "x.conf:8: [ingest] listen"},
	    {"[ingest]\nworkers = 0\n", "x.conf:8: [ingest] workers"},
	    {"[terminals]\nclock_drift = 2m\nclock_drift = 3m\n",
	     "x.conf:9: [terminals] clock_drift given twice"},
	    {"[dashboard]\ncertificate = /d.pem\n", "[dashboard] certificate and key go together"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct collector_config c;
		char err[CONFIG_ERROR_MAX], text[1024];
		snprintf(text, sizeof(text), "%s%s", base_conf, cases[i].extra);
		assert_int_equal(config_load_string("x.conf", text, &c, err), -EINVAL);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
	}
}

/* Messages that quote a long name cut it between characters (61 bytes of 総 end inside one). */
static void test_config_errors_utf8(void **state)
{
	struct collector_config c;
	char err[CONFIG_ERROR_MAX], text[1024], name[200] = "k";

	for (unsigned i = 0; i < 30; i++)
		strcat(name, "\xe7\xb7\x8f");
	snprintf(text, sizeof(text), "%s[store]\n%s = 1\n", base_conf, name);
	assert_int_equal(config_load_string("x.conf", text, &c, err), -EINVAL);
	assert_true(utf8_valid(err, strlen(err)));
	assert_non_null(strstr(err, "unknown key \"k\xe7\xb7\x8f"));
	snprintf(text, sizeof(text), "%s[%s]\na = 1\n", base_conf, name);
	assert_int_equal(config_load_string("x.conf", text, &c, err), -EINVAL);
	assert_true(utf8_valid(err, strlen(err)));
	snprintf(text, sizeof(text), "%s[ingest]\nlisten = %s%s\n", base_conf, name, name);
	assert_int_equal(config_load_string("x.conf", text, &c, err), -EINVAL);
	assert_true(utf8_valid(err, strlen(err)));
}

/* An error body is JSON even when its reason was cut inside a character. */
static void test_error_json(void **state)
{
	json_t *o = server_error_json("abc\xe7\xb7");
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "error")), "abc");
	json_decref(o);
	o = server_error_json("\xe7\xb7\x8f ok");
	assert_string_equal(json_string_value(json_object_get(o, "error")), "\xe7\xb7\x8f ok");
	json_decref(o);
}

static void test_config_ipv6(void **state)
{
	struct collector_config c;
	char err[CONFIG_ERROR_MAX], text[1024];

	snprintf(text, sizeof(text), "%s[ingest]\nlisten = [::1]:0\n", base_conf);
	/* [ingest] appears twice: libinih merges sections, keys are what count */
	assert_int_equal(config_load_string("x.conf", text, &c, err), 0);
	assert_string_equal(c.ingest_listen, "[::1]:0");
	config_free(&c);
}

/* [retention]: a kind's own period, else its prefix's, else the default; [store] retention is
 * the default's older name */
static void test_config_retention(void **state)
{
	struct collector_config c;
	char err[CONFIG_ERROR_MAX], text[1024];

	snprintf(text, sizeof(text),
		 "%s[retention]\ndefault = 30d\nauth.* = 5y\nauth.locked = 0\ncompliance = 1y\n",
		 base_conf);
	assert_int_equal(config_load_string("x.conf", text, &c, err), 0);
	assert_int_equal(c.retention_kind[EVENT_AUTH_FAILURE], 5ULL * 365 * 86400);
	assert_int_equal(c.retention_kind[EVENT_AUTH_LOCKED], 0);
	assert_int_equal(c.retention_kind[EVENT_COMPLIANCE], 365ULL * 86400);
	assert_int_equal(c.retention_kind[EVENT_USB_BLOCKED], 30ULL * 86400);
	assert_int_equal(c.n_retention_rules, 3);
	config_free(&c);

	snprintf(text, sizeof(text), "%s[store]\nretention = 7d\n", base_conf);
	assert_int_equal(config_load_string("x.conf", text, &c, err), 0);
	assert_int_equal(c.retention_kind[EVENT_FLEET_GRANT], 7ULL * 86400);
	config_free(&c);

	snprintf(text, sizeof(text), "%s[retention]\n.* = 1d\n", base_conf);
	assert_int_equal(config_load_string("x.conf", text, &c, err), -EINVAL);
	assert_non_null(strstr(err, "unknown key"));
	snprintf(text, sizeof(text), "%s[retention]\nauth = 1d\n", base_conf);
	assert_int_equal(config_load_string("x.conf", text, &c, err), -EINVAL);
	assert_non_null(strstr(err, "unknown key"));
}

static void test_revoked(void **state)
{
	char **list;
	size_t n;
	unsigned line = 0, bad = 0;

	assert_int_equal(
	    server_parse_revoked("# c\n\n 01:ab \nserial=00FF\n0x1f\n0\n", &list, &n, &bad, &line),
	    0);
	assert_int_equal(bad, 0);
	assert_int_equal(line, 0);
	assert_int_equal(n, 4);
	assert_string_equal(list[0], "0");
	assert_string_equal(list[1], "1AB");
	assert_string_equal(list[2], "1F");
	assert_string_equal(list[3], "FF");
	server_free_revoked(list, n);
	/* a bad line is refused, the others still apply (the old list was kept: fail open) */
	assert_int_equal(
	    server_parse_revoked("AB\nnot hex\n12\nserial=\nCD\n", &list, &n, &bad, &line), 0);
	assert_int_equal(bad, 2);
	assert_int_equal(line, 2);
	assert_int_equal(n, 3);
	assert_string_equal(list[0], "12");
	assert_string_equal(list[1], "AB");
	assert_string_equal(list[2], "CD");
	server_free_revoked(list, n);
}

static void test_decode(void **state)
{
	struct event_batch b;
	char reason[EVENT_REASON_MAX];
	const char ok[] =
	    "{\"v\":1,\"terminal\":\"t1\",\"events\":[{\"v\":1,\"terminal\":\"t1\",\"seq\":7,"
	    "\"ts\":\"2026-11-25T00:00:00.000Z\",\"kind\":\"usb.blocked\",\"clause\":[],\"data\":{}}]}";
	const char big[] =
	    "{\"v\":1,\"terminal\":\"t1\",\"events\":[{\"v\":1,\"terminal\":\"t1\",\"seq\":9223372036854775808,"
	    "\"ts\":\"2026-11-25T00:00:00.000Z\",\"kind\":\"usb.blocked\",\"clause\":[],\"data\":{}}]}";

	assert_int_equal(ingest_decode("t1", ok, strlen(ok), &b, reason), 200);
	assert_int_equal(b.n, 1);
	assert_int_equal(b.events[0].seq, 7);
	event_batch_clear(&b);
	assert_int_equal(ingest_decode("t2", ok, strlen(ok), &b, reason), 403);
	assert_int_equal(ingest_decode("", ok, strlen(ok), &b, reason), 403);
	/* the collector's own id is not for certificates */
	assert_int_equal(ingest_decode(INGEST_SELF_TERMINAL, ok, strlen(ok), &b, reason), 403);
	assert_non_null(strstr(reason, "reserved"));
	assert_int_equal(ingest_decode("t1", "{", 1, &b, reason), 400);
	int st = ingest_decode("t1", big, strlen(big), &b, reason);
	assert_true(st == 400);

	/* one event over 64 KiB inside a small batch: 413 from the decoder (it was accepted and
	 * then failed in the store, answered 503 Retry-After: retried forever) */
	size_t n = 70 * 1024;
	char *huge = malloc(n + 300);
	assert_non_null(huge);
	int o = snprintf(huge, 300,
			 "{\"v\":1,\"terminal\":\"t1\",\"events\":[{\"v\":1,\"terminal\":\"t1\","
			 "\"seq\":1,\"ts\":\"2026-11-25T00:00:00.000Z\",\"kind\":\"usb.blocked\","
			 "\"data\":{\"x\":\"");
	memset(huge + o, 'a', n);
	strcpy(huge + o + n, "\"}}]}");
	assert_int_equal(ingest_decode("t1", huge, strlen(huge), &b, reason), 413);
	assert_non_null(strstr(reason, "events[0].event too large"));
	/* just under the limit is fine */
	size_t fit =
	    EVENT_MAX_BYTES - (size_t)o + strlen("{\"v\":1,\"terminal\":\"t1\",\"events\":[") - 3;
	memset(huge + o, 'a', fit);
	strcpy(huge + o + fit, "\"}}]}");
	assert_int_equal(ingest_decode("t1", huge, strlen(huge), &b, reason), 200);
	event_batch_clear(&b);
	memset(huge + o, 'a', fit + 1);
	strcpy(huge + o + fit + 1, "\"}}]}");
	assert_int_equal(ingest_decode("t1", huge, strlen(huge), &b, reason), 413);
	free(huge);
}

/* Store errors: a batch that can never be stored is refused for good (4xx); only a store that
 * cannot write now gets 503 Retry-After; nothing is answered 429 (that is the queue). */
static void test_store_status(void **state)
{
	assert_int_equal(ingest_store_status(-EMSGSIZE), 413);
	assert_int_equal(ingest_store_status(-ERANGE), 400);
	assert_int_equal(ingest_store_status(-EINVAL), 400);
	assert_int_equal(ingest_store_status(-EBUSY), 503);
	assert_int_equal(ingest_store_status(-ENOSPC), 503);
	assert_int_equal(ingest_store_status(-EIO), 503);
	assert_int_equal(ingest_store_status(-ENOMEM), 503);
	assert_int_equal(ingest_store_status(-EEXIST), 500);
	assert_int_equal(ingest_store_status(-EBADMSG), 500);
}

static char *cell(const char *in)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *out;

	api_csv_cell(b, in);
	len = evbuffer_get_length(b);
	out = calloc(1, len + 1);
	evbuffer_remove(b, out, len);
	evbuffer_free(b);
	return out;
}

static void test_csv(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain", "\"plain\""},
	    {"", "\"\""},
	    {"a,b", "\"a,b\""},
	    {"say \"hi\"", "\"say \"\"hi\"\"\""},
	    {"=1+2", "\"'=1+2\""},
	    {"+81", "\"'+81\""},
	    {"-x", "\"'-x\""},
	    {"@SUM(A1)", "\"'@SUM(A1)\""},
	    {"\tTAB", "\"'\tTAB\""},
	    {"a=b", "\"a=b\""},
	    {"line\nbreak", "\"line\nbreak\""},
	    {"日本語", "\"日本語\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = cell(cases[i].in);
		assert_string_equal(got, cases[i].out);
		free(got);
	}
}

static void test_summary(void **state)
{
	char *s =
	    api_event_summary("auth.failure", "{\"user\":\"taro\",\"service\":\"login\",\"n\":3,"
					      "\"ok\":false,\"sender\":{\"uid\":0}}");
	assert_string_equal(s, "user=taro service=login n=3 ok=no sender.uid=0");
	free(s);
	s = api_event_summary(
	    "compliance",
	    "{\"policy_hash\":\"sha256:ab\",\"checks\":["
	    "{\"id\":\"a\",\"status\":\"pass\"},{\"id\":\"b\",\"status\":\"fail\"}]}");
	assert_string_equal(s, "b fail; policy sha256:ab");
	free(s);
	s = api_event_summary("compliance", "{\"checks\":[{\"id\":\"a\",\"status\":\"pass\"}]}");
	assert_string_equal(s, "all 1 checks pass");
	free(s);
	s = api_event_summary("usb.blocked", "{\"note\":\"a\\nb\"}");
	assert_string_equal(s, "note=a b");
	free(s);
}

/* A long summary is cut between characters whatever the offset of the cut (the export was
 * undecodable when the cut fell inside a 3-byte character). */
static void test_summary_cut_utf8(void **state)
{
	for (unsigned pad = 0; pad < 3; pad++) {
		char data[4000];
		size_t o = (size_t)snprintf(data, sizeof(data), "{\"n\":\"%.*s", pad, "xx");
		char *s;

		for (unsigned i = 0; i < 600; i++) {
			memcpy(data + o, "\xe7\xb7\x8f", 3); /* 総 */
			o += 3;
		}
		memcpy(data + o, "\"}", 3);
		s = api_event_summary("usb.blocked", data);
		assert_non_null(s);
		assert_true(strlen(s) <= 1000 && strlen(s) >= 995);
		assert_true(utf8_valid(s, strlen(s)));
		assert_string_equal(s + strlen(s) - 3, "...");
		free(s);
	}
	/* nested keys are no longer cut at 127 bytes */
	char data[600], *s;
	memset(data, 0, sizeof(data));
	strcpy(data, "{\"a\":{\"");
	for (unsigned i = 0; i < 50; i++)
		strcat(data, "\xe7\xb7\x8f");
	strcat(data, "\":1}}");
	s = api_event_summary("usb.blocked", data);
	assert_non_null(s);
	assert_true(utf8_valid(s, strlen(s)));
	assert_int_equal(strlen(s), 2 + 150 + 2);
	free(s);
}

static void test_terminal_query(void **state)
{
	struct store_terminal_query q;
	struct store_filter f;
	char reason[EVENT_REASON_MAX];

	assert_int_equal(api_parse_terminal_query(NULL, &q, reason), 0);
	assert_int_equal(q.limit, API_LIMIT_DEFAULT);
	assert_int_equal(q.offset, 0);
	assert_int_equal(q.sort, STORE_SORT_PROBLEM);
	assert_int_equal(q.status, STORE_STATUS_ALL);
	assert_false(q.desc);
	assert_int_equal(
	    api_parse_terminal_query("page=3&limit=50&sort=last_seen&dir=desc"
				     "&status=problem&q=%E5%B8%82%25&check=time.synchronized",
				     &q, reason),
	    0);
	assert_int_equal(q.offset, 100);
	assert_int_equal(q.limit, 50);
	assert_int_equal(q.sort, STORE_SORT_LAST_SEEN);
	assert_true(q.desc);
	assert_int_equal(q.status, STORE_STATUS_PROBLEM);
	assert_string_equal(q.search, "\xe5\xb8\x82%");
	assert_string_equal(q.check, "time.synchronized");
	assert_int_equal(api_parse_terminal_query("page=0", &q, reason), -EINVAL);
	assert_int_equal(api_parse_terminal_query("sort=color", &q, reason), -EINVAL);
	assert_int_equal(api_parse_terminal_query("status=x", &q, reason), -EINVAL);
	assert_int_equal(api_parse_terminal_query("dir=up", &q, reason), -EINVAL);
	assert_int_equal(api_parse_terminal_query("q=%ff", &q, reason), -EINVAL);
	assert_int_equal(api_parse_terminal_query("q=a%00b", &q, reason), -EINVAL);
	assert_int_equal(api_parse_terminal_query("check=a/b", &q, reason), -EINVAL);
	assert_int_equal(api_parse_terminal_query("q=a&q=b", &q, reason), -EINVAL);
	assert_int_equal(api_parse_terminal_query("page=1000000&limit=1000", &q, reason), 0);
	/* the events' newest-first cursor: TS.ID, only with order=newest */
	assert_int_equal(api_parse_filter("order=newest&after=1733380000000.42", &f, reason), 0);
	assert_true(f.newest);
	assert_int_equal(f.before_ts, 1733380000000LL);
	assert_int_equal(f.before_id, 42);
	assert_int_equal(api_parse_filter("after=1733380000000.42", &f, reason), -EINVAL);
	assert_int_equal(api_parse_filter("order=newest&after=42", &f, reason), -EINVAL);
	assert_int_equal(api_parse_filter("order=newest&after=1.x", &f, reason), -EINVAL);
	assert_int_equal(api_parse_filter("order=oldest", &f, reason), -EINVAL);
}

static void test_filter(void **state)
{
	struct store_filter f;
	char reason[EVENT_REASON_MAX];

	assert_int_equal(api_parse_filter(NULL, &f, reason), 0);
	assert_int_equal(f.limit, API_LIMIT_DEFAULT);
	assert_int_equal(f.kind, -1);
	assert_int_equal(
	    api_parse_filter("after=42&limit=5&terminal=t-1&kind=auth.failure"
			     "&since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00.000Z",
			     &f, reason),
	    0);
	assert_int_equal(f.after, 42);
	assert_int_equal(f.limit, 5);
	assert_string_equal(f.terminal, "t-1");
	assert_int_equal(f.kind, EVENT_AUTH_FAILURE);
	assert_true(f.since_ms < f.until_ms);
	assert_int_equal(api_parse_filter("limit=abc", &f, reason), -EINVAL);
	assert_int_equal(api_parse_filter("x=1", &f, reason), -EINVAL);
	assert_non_null(strstr(reason, "unknown parameter"));
	assert_int_equal(api_parse_filter("kind=a&kind=b", &f, reason), -EINVAL);
	assert_int_equal(api_parse_filter("terminal=..", &f, reason), -EINVAL);
	/* %00 would end the value early: refused, not truncated */
	assert_int_equal(api_parse_filter("terminal=term-a%00x", &f, reason), -EINVAL);
	assert_non_null(strstr(reason, "%00"));
	assert_int_equal(api_parse_filter("kind=usb.blocked%00&limit=1", &f, reason), -EINVAL);
	assert_int_equal(api_parse_filter("%00=1", &f, reason), -EINVAL);
	/* the reason of an unknown parameter is valid UTF-8 (it goes into a JSON string) */
	/* keys are not decoded by libevent: raw bytes */
	assert_int_equal(api_parse_filter("\xff\xfe=1", &f, reason), -EINVAL);
	assert_string_equal(reason, "unknown parameter (not UTF-8)");
	assert_int_equal(
	    api_parse_filter("\xe7\xb7\x8f\xe7\xb7\x8f\xe7\xb7\x8f\xe7\xb7\x8f\xe7\xb7\x8f"
			     "\xe7\xb7\x8f\xe7\xb7\x8f\xe7\xb7\x8f\xe7\xb7\x8f"
			     "\xe7\xb7\x8f\xe7\xb7\x8f\xe7\xb7\x8f\xe7\xb7\x8f\xe7\xb7\x8f=1",
			     &f, reason),
	    -EINVAL);
	assert_true(utf8_valid(reason, strlen(reason)));
	assert_non_null(strstr(reason, "\xe7\xb7\x8f\""));
}

/* headers: "Name\tvalue\n"..., as libevent would have parsed them */
static int framing(enum evhttp_cmd_type method, const char *headers)
{
	struct evkeyvalq h;
	char reason[EVENT_REASON_MAX] = "";
	char *copy = strdup(headers), *save = NULL;
	int r;

	TAILQ_INIT(&h);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t');
		assert_non_null(tab);
		*tab = 0;
		evhttp_add_header(&h, line, tab + 1);
	}
	r = server_check_framing(&h, method, reason);
	assert_true(r == 0 ? reason[0] == 0 : reason[0] != 0);
	evhttp_clear_headers(&h);
	free(copy);
	return r;
}

static void test_framing(void **state)
{
	assert_int_equal(framing(EVHTTP_REQ_POST, "Host\tc\nContent-Length\t12\n"), 0);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Host\tc\nTransfer-Encoding\tChunked\n"), 0);
	assert_int_equal(framing(EVHTTP_REQ_GET, "Host\tc\n"), 0);
	assert_int_equal(framing(EVHTTP_REQ_HEAD, "Host\tc\nContent-Length\t0\n"), 0);
	assert_int_equal(framing(EVHTTP_REQ_GET, "X-Tab\ta\tb\n"), 0);

	assert_int_equal(framing(EVHTTP_REQ_POST, "Content-Length\t0\ncontent-length\t5\n"),
			 -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Content-Length\t5\nContent-Length\t5\n"),
			 -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Content-Length\t+5\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Content-Length\t-1\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Content-Length\t5 5\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Content-Length\t\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Content-Length\t0x10\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Content-Length\t1234567890123456789\n"),
			 -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Transfer-Encoding\txchunked\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Transfer-Encoding\tgzip, chunked\n"), -EBADMSG);
	assert_int_equal(
	    framing(EVHTTP_REQ_POST, "Transfer-Encoding\tchunked\nTransfer-Encoding\tchunked\n"),
	    -EBADMSG);
	assert_int_equal(
	    framing(EVHTTP_REQ_POST, "Transfer-Encoding\tchunked\nContent-Length\t3\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Content-Length \t5\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Content Length\t5\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "Host\ta\nHost\tb\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_POST, "X-A\ta\x01b\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_HEAD, "Content-Length\t5\n"), -EBADMSG);
	assert_int_equal(framing(EVHTTP_REQ_TRACE, "Transfer-Encoding\tchunked\n"), -EBADMSG);
}

/* [alerts]: defaults, the digest's time, and what is refused as a whole */
static void test_config_alerts(void **state)
{
	static const struct {
		const char *extra, *want;
	} bad[] = {
	    {"[alerts]\nsmtp = smtp://relay\n", "smtp, from and to go together"},
	    {"[alerts]\nsmtp = smtp://u:pw@relay\nfrom = a@b\nto = c@d\n", "no user or password"},
	    {"[alerts]\nsmtp = relay:25\nfrom = a@b\nto = c@d\n", "[alerts] smtp: expected"},
	    {"[alerts]\nsmtp = smtp://relay\nfrom = a@b\nto = c@d;e@f\n", "from/to"},
	    {"[alerts]\nsmtp = smtp://relay\nfrom = a@b c@d\nto = c@d\n", "from/to"},
	    {"[alerts]\nsmtp = smtp://relay\nfrom = a@b\nto = c@d\ndigest = 24:00\n", "digest"},
	    {"[alerts]\nwebhook = file:///etc/passwd\n", "webhook"},
	    {"[alerts]\ndigest = 08:00\n", "need smtp"},
	    {"[alerts]\nstarttls = maybe\n", "[alerts] starttls: expected yes or no"},
	    {"[alerts]\ncert_warning = 1h\n", "[alerts] cert_warning"},
	};
	struct collector_config c;
	char err[CONFIG_ERROR_MAX], text[1024];

	assert_int_equal(config_load_string("x.conf", base_conf, &c, err), 0);
	assert_int_equal(c.alert_interval, 60);
	assert_int_equal(c.alert_digest_minute, -1);
	assert_int_equal(c.alert_cert_warning, 30 * 86400);
	/* beside the database, whatever the build's default directory */
	assert_int_equal(strncmp(c.alert_state, c.database, strrchr(c.database, '/') - c.database),
			 0);
	assert_string_equal(strrchr(c.alert_state, '/'), "/alerts.db");
	assert_null(c.alert_smtp);
	config_free(&c);

	snprintf(text, sizeof(text), "%s%s", base_conf,
		 "[store]\ndatabase = /d/c.db\n[alerts]\nsmtp = smtps://relay:465\n"
		 "from = mg@city.test\nto = a@city.test, b@city.test\ndigest = 08:30\n"
		 "starttls = yes\n");
	assert_int_equal(config_load_string("x.conf", text, &c, err), 0);
	assert_int_equal(c.alert_digest_minute, 8 * 60 + 30);
	assert_true(c.alert_starttls);
	assert_string_equal(c.alert_state, "/d/alerts.db");
	config_free(&c);

	/* PostgreSQL: the state files go to the directory of the default SQLite store */
	snprintf(text, sizeof(text), "%s%s", base_conf,
		 "[store]\nbackend = postgresql\nurl = postgresql:///mg?host=/run/postgresql\n");
	assert_int_equal(config_load_string("x.conf", text, &c, err), 0);
	{
		const char *slash = strrchr(MYNAGUARD_COLLECTOR_DB, '/');
		int n = (int)(slash - MYNAGUARD_COLLECTOR_DB + 1);
		assert_int_equal(strncmp(c.alert_state, MYNAGUARD_COLLECTOR_DB, (size_t)n), 0);
		assert_string_equal(c.alert_state + n, "alerts.db");
		assert_int_equal(strncmp(c.enroll_database, MYNAGUARD_COLLECTOR_DB, (size_t)n), 0);
		assert_string_equal(c.enroll_database + n, "enroll.db");
	}
	config_free(&c);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", base_conf, bad[i].extra);
		assert_int_equal(config_load_string("x.conf", text, &c, err), -EINVAL);
		if (!strstr(err, bad[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i].want);
	}
}

/* The mail: a Japanese subject as RFC 2047 words cut between characters, the body base64, and
 * nothing of the text can reach the headers. */
static void test_alert_mail(void **state)
{
	struct collector_config c = {
	    .alert_from = (char *)"mg@city.test",
	    .alert_to = (char *)"a@city.test b@city.test",
	};
	char *mail = NULL, subject[256];
	const char *body_start;

	/* 15 three-byte characters: 45 bytes, then one more in a second word */
	snprintf(subject, sizeof(subject), "%s", "非準拠非準拠非準拠非準拠非準拠非 term-1");
	assert_int_equal(alert_mail_format(&c, subject, "本文\r\nBcc: x@y\r\n.\r\n", 0, &mail), 0);
	assert_non_null(strstr(mail, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"));
	assert_non_null(strstr(mail, "From: mg@city.test\r\nTo: a@city.test b@city.test\r\n"));
	/* 45 bytes = 5 groups of 9 bytes = 60 base64 characters, no padding */
	assert_non_null(strstr(mail,
			       "Subject: =?UTF-8?B?6Z2e5rqW5oug6Z2e5rqW5oug6Z2e5rqW5oug6Z2e5rqW"
			       "5oug6Z2e5rqW5oug?=\r\n =?UTF-8?B?"));
	assert_non_null(strstr(mail, "Content-Transfer-Encoding: base64\r\n"));
	body_start = strstr(mail, "\r\n\r\n");
	assert_non_null(body_start);
	/* the body is base64 only: no line of it is a header or the end of DATA */
	assert_null(strstr(body_start, "Bcc:"));
	assert_null(strstr(body_start, "\r\n.\r\n"));
	free(mail);
}

/* the history's days: Japan's (UTC+9), and api_parse_day gives the same numbers */
static void test_days(void **state)
{
	int64_t d;

	assert_int_equal(api_parse_day("2026-11-24", &d), 0);
	/* 2026-11-24 00:00 in Japan is 2026-11-23 15:00 UTC */
	assert_int_equal(store_day(1795446000000LL), d);
	assert_int_equal(store_day(1795446000000LL - 1), d - 1);
	assert_int_equal(store_day(1795446000000LL + 86400000LL - 1), d);
	assert_int_equal(store_day(-STORE_DAY_OFFSET_MS - 1), -1);
	assert_int_equal(api_parse_day("1970-01-01", &d), 0);
	assert_int_equal(d, 0);
	assert_int_equal(api_parse_day("2028-02-29", &d), 0);
	static const char *const refused[] = {
	    "2026-02-29", "2026-13-01", "2026-00-10", "2026-1-01",   "2026-01-01x", "20260101",
	    "",		  "1969-12-31", "2026-04-31", " 2026-04-01", "2026-+4-01",  "2026-04-+1"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_int_equal(api_parse_day(refused[i], &d), -EINVAL);
}

/* The Cookie header parser (auth.c): the one value, or the exact error. */
static void test_cookie(void **state)
{
	char out[8];

	assert_int_equal(auth_cookie_find("a=1; b=22", "b", out, sizeof(out)), 0);
	assert_string_equal(out, "22");
	assert_int_equal(auth_cookie_find("b=\"x\"", "b", out, sizeof(out)), 0);
	assert_string_equal(out, "x");
	assert_int_equal(auth_cookie_find("b=", "b", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(auth_cookie_find("a=1", "b", out, sizeof(out)), -ENOENT);
	assert_int_equal(auth_cookie_find("", "b", out, sizeof(out)), -ENOENT);
	assert_int_equal(auth_cookie_find("b=1; b=1", "b", out, sizeof(out)), -EINVAL);
	assert_int_equal(auth_cookie_find("b=12345678", "b", out, sizeof(out)), -EINVAL);
	assert_int_equal(auth_cookie_find("b=1 2", "b", out, sizeof(out)), -EINVAL);
	assert_int_equal(auth_cookie_find("b=\"1", "b", out, sizeof(out)), -EINVAL);
	assert_int_equal(auth_cookie_find("=1", "b", out, sizeof(out)), -EINVAL);
	assert_int_equal(auth_cookie_find("a=1;; b=2", "b", out, sizeof(out)), -EINVAL);
	assert_int_equal(auth_cookie_find("bb=1", "b", out, sizeof(out)), -ENOENT);
}

static void code_at(const char *uri, int64_t now, char out[7])
{
	uint8_t key[ACCOUNT_SECRET_BYTES];
	const char *p = strstr(uri, "secret=");
	size_t n;

	assert_non_null(p);
	p += 7;
	n = strcspn(p, "&");
	assert_int_equal(totp_base32_decode(p, n, key, sizeof(key)), ACCOUNT_SECRET_BYTES);
	assert_int_equal(
	    oath_totp_generate((const char *)key, sizeof(key), (time_t)now, 30, 0, 6, out),
	    OATH_OK);
}

static void outbox_collect(const char *kind, json_t *data, void *userdata)
{
	json_array_append_new(userdata, json_pack("[s, o]", kind, data));
}

/* The account store (account-store.c) against a real SQLite file: the exact error of each
 * refusal, the login rules (one-time codes, lockout, its end), sessions, tokens, the outbox. */
static void test_account_store(void **state)
{
	char dir[] = "/tmp/mg-account-unit-XXXXXX", path[64], key[80], uri[512], uri2[512], code[7];
	char kerr[ACCOUNT_STORE_ERROR_MAX];
	char token[ACCOUNT_TOKEN_LEN + 1], id[ACCOUNT_ID_HEX + 1], csrf[ACCOUNT_ID_HEX + 1];
	char csrf2[ACCOUNT_ID_HEX + 1];
	struct store *st = NULL;
	struct account_store *as = NULL;
	struct account a;
	enum account_login_result res;
	enum auth_role scope;
	const int64_t t0 = 1764900000;
	json_t *got = json_array();

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.db", dir);
	snprintf(key, sizeof(key), "%s/c.db.accounts-key", dir);
	assert_int_equal(account_store_open(path, key, true, &as, kerr, sizeof(kerr)), -ENOENT);
	assert_int_equal(store_open(path, true, &st), 0);
	assert_int_equal(account_store_open(path, key, true, &as, kerr, sizeof(kerr)), 0);

	assert_int_equal(account_create(as, "aki", AUTH_APPROVER, false, "correct-horse-1", t0, uri,
					sizeof(uri)),
			 0);
	assert_non_null(strstr(uri, "otpauth://totp/mynaguard-dashboard:aki?secret="));
	assert_int_equal(
	    account_create(as, "aki", AUTH_ADMIN, false, "correct-horse-1", t0, uri2, sizeof(uri2)),
	    -EEXIST);
	assert_int_equal(
	    account_create(as, "-x", AUTH_ADMIN, false, "correct-horse-1", t0, uri2, sizeof(uri2)),
	    -EINVAL);
	assert_int_equal(
	    account_create(as, "x", AUTH_ADMIN, false, "short", t0, uri2, sizeof(uri2)), -EINVAL);
	assert_int_equal(account_create(as, "x", (enum auth_role)7, false, "correct-horse-1", t0,
					uri2, sizeof(uri2)),
			 -EINVAL);
	assert_int_equal(account_token_create(as, "aki", AUTH_ADMIN, t0, token), -EPERM);
	assert_int_equal(account_token_create(as, "nobody", AUTH_AUDITOR, t0, token), -ENOENT);
	assert_int_equal(account_reset(as, "nobody", "correct-horse-1", t0, uri2, sizeof(uri2)),
			 -ENOENT);
	assert_int_equal(account_disable(as, "nobody"), -ENOENT);

	/* a good code, then the same code again */
	code_at(uri, t0, code);
	assert_int_equal(account_login(as, "aki", "correct-horse-1", code, t0, &res, &a), 0);
	assert_int_equal(res, ACCOUNT_LOGIN_OK);
	assert_string_equal(a.name, "aki");
	assert_int_equal(a.role, AUTH_APPROVER);
	assert_int_equal(account_login(as, "aki", "correct-horse-1", code, t0 + 1, &res, &a), 0);
	assert_int_equal(res, ACCOUNT_LOGIN_REPLAY);
	/* five failures lock; the right code does not help until the lock ends */
	for (int i = 0; i < ACCOUNT_MAX_FAILURES; i++) {
		assert_int_equal(
		    account_login(as, "aki", "wrong-password-x", "000000", t0 + 2, &res, &a), 0);
		assert_int_equal(res, ACCOUNT_LOGIN_WRONG);
	}
	code_at(uri, t0 + 60, code);
	assert_int_equal(account_login(as, "aki", "correct-horse-1", code, t0 + 60, &res, &a), 0);
	assert_int_equal(res, ACCOUNT_LOGIN_LOCKED);
	code_at(uri, t0 + 2 + ACCOUNT_LOCKOUT_SEC, code);
	assert_int_equal(account_login(as, "aki", "correct-horse-1", code,
				       t0 + 2 + ACCOUNT_LOCKOUT_SEC, &res, &a),
			 0);
	assert_int_equal(res, ACCOUNT_LOGIN_OK);
	/* an unknown name is just wrong */
	assert_int_equal(account_login(as, "nobody", "correct-horse-1", "123456", t0, &res, &a), 0);
	assert_int_equal(res, ACCOUNT_LOGIN_WRONG);

	/* sessions: idle and absolute expiry */
	assert_int_equal(account_session_create(as, "aki", t0, id, csrf), 0);
	assert_int_equal(strlen(id), ACCOUNT_ID_HEX);
	assert_int_equal(account_session_find(as, id, t0 + 50, 60, 100, &a, csrf2), 0);
	assert_string_equal(csrf, csrf2);
	assert_int_equal(account_session_find(as, id, t0 + 101, 60, 100, &a, csrf2), -ENOENT);
	assert_int_equal(account_session_find(as, id, t0 + 102, 60, 1000, &a, csrf2), -ENOENT);
	assert_int_equal(account_session_create(as, "aki", t0, id, csrf), 0);
	assert_int_equal(account_session_find(as, id, t0 + 61, 60, 1000, &a, csrf2), -ENOENT);

	/* tokens: scope, and gone with the account */
	assert_int_equal(account_token_create(as, "aki", AUTH_AUDITOR, t0, token), 0);
	assert_int_equal(account_token_find(as, token, &a, &scope), 0);
	assert_int_equal(scope, AUTH_AUDITOR);
	token[10] = token[10] == 'a' ? 'b' : 'a';
	assert_int_equal(account_token_find(as, token, &a, &scope), -ENOENT);
	token[10] = token[10] == 'a' ? 'b' : 'a';
	assert_int_equal(account_session_create(as, "aki", t0, id, csrf), 0);
	assert_int_equal(account_disable(as, "aki"), 0);
	assert_int_equal(account_token_find(as, token, &a, &scope), -ENOENT);
	assert_int_equal(account_session_find(as, id, t0, 60, 100, &a, csrf2), -ENOENT);
	code_at(uri, t0 + 3000, code);
	assert_int_equal(account_login(as, "aki", "correct-horse-1", code, t0 + 3000, &res, &a), 0);
	assert_int_equal(res, ACCOUNT_LOGIN_WRONG);
	assert_true(a.disabled);
	/* a reset enables it with a new secret */
	assert_int_equal(account_reset(as, "aki", "battery-staple-2", t0, uri2, sizeof(uri2)), 0);
	assert_string_not_equal(uri, uri2);
	code_at(uri2, t0 + 3000, code);
	assert_int_equal(account_login(as, "aki", "battery-staple-2", code, t0 + 3000, &res, &a),
			 0);
	assert_int_equal(res, ACCOUNT_LOGIN_OK);

	/* the outbox: in order, once */
	assert_int_equal(account_outbox_add(as, "account.created", json_pack("{s:s}", "name", "a")),
			 0);
	assert_int_equal(account_outbox_add(as, "account.token", json_pack("{s:s}", "name", "b")),
			 0);
	assert_int_equal(account_outbox_drain(as, outbox_collect, got), 0);
	assert_int_equal(account_outbox_drain(as, outbox_collect, got), 0);
	assert_int_equal(json_array_size(got), 2);
	assert_string_equal(json_string_value(json_array_get(json_array_get(got, 1), 0)),
			    "account.token");
	json_decref(got);

	account_store_close(as);
	store_close(st);
	unlink(path);
	unlink(key);
	snprintf(path, sizeof(path), "%s/c.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/c.db-shm", dir);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_defaults),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_config_ipv6),
	    cmocka_unit_test(test_config_retention),
	    cmocka_unit_test(test_config_errors_utf8),
	    cmocka_unit_test(test_error_json),
	    cmocka_unit_test(test_revoked),
	    cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_store_status),
	    cmocka_unit_test(test_csv),
	    cmocka_unit_test(test_summary),
	    cmocka_unit_test(test_summary_cut_utf8),
	    cmocka_unit_test(test_filter),
	    cmocka_unit_test(test_terminal_query),
	    cmocka_unit_test(test_framing),
	    cmocka_unit_test(test_config_alerts),
	    cmocka_unit_test(test_alert_mail),
	    cmocka_unit_test(test_days),
	    cmocka_unit_test(test_cookie),
	    cmocka_unit_test(test_account_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
