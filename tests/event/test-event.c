/* SPDX-License-Identifier: MIT */
/* Unit tests of the event codec: round trip, timestamps, and every decoder error reason. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"

#define GOOD_HEAD "\"v\":1,\"terminal\":\"T-01\",\"seq\":7,\"ts\":\"2026-11-25T18:58:36.123Z\""

static void test_kind_names(void **state)
{
	(void)state;
	for (unsigned k = 0; k < _EVENT_KIND_MAX; k++) {
		enum event_kind back;
		assert_non_null(event_kind_name(k));
		assert_int_equal(event_kind_from_name(event_kind_name(k), &back), 0);
		assert_int_equal(back, k);
	}
	enum event_kind k;
	assert_int_equal(event_kind_from_name("usb.exploded", &k), -EINVAL);
	assert_null(event_kind_name(_EVENT_KIND_MAX));
	assert_true(event_kind_is_auth(EVENT_AUTH_LOCKED));
	assert_false(event_kind_is_auth(EVENT_USB_BLOCKED));
}

static void test_ts(void **state)
{
	(void)state;
	char buf[32];
	int64_t ms;

	event_format_ts(0, buf);
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	event_format_ts(1795633116123LL, buf);
	assert_string_equal(buf, "2026-11-25T18:58:36.123Z");
	assert_int_equal(event_parse_ts(buf, &ms), 0);
	assert_int_equal(ms, 1795633116123LL);
	assert_int_equal(event_parse_ts("2026-11-25T18:58:36Z", &ms), 0);
	assert_int_equal(ms, 1795633116000LL);
	assert_int_equal(event_parse_ts("2024-02-29T00:00:00.000Z", &ms), 0);
	event_format_ts(ms, buf);
	assert_string_equal(buf, "2024-02-29T00:00:00.000Z");
	event_format_ts(EVENT_TS_MAX_MS, buf);
	assert_string_equal(buf, "9999-12-31T23:59:59.999Z");

	const char *bad[] = {"",
			     "2026-11-25 18:58:36.123Z",
			     "2026-11-25T18:58:36.123",
			     "2026-11-25T18:58:36.123+09:00",
			     "2023-02-29T00:00:00Z",
			     "2026-13-01T00:00:00Z",
			     "2026-00-01T00:00:00Z",
			     "2026-01-32T00:00:00Z",
			     "2026-01-01T24:00:00Z",
			     "2026-01-01T00:60:00Z",
			     "2026-01-01T00:00:60Z",
			     "1969-12-31T23:59:59Z",
			     "2026-01-01T00:00:00.12Z",
			     "2026-1-01T00:00:00Z",
			     "+026-01-01T00:00:00Z",
			     "2026-01-01T00:00:00.1234Z"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(event_parse_ts(bad[i], &ms), -EINVAL);
}

static void test_terminal_id(void **state)
{
	(void)state;
	assert_true(event_terminal_id_valid("T-01"));
	assert_true(event_terminal_id_valid("kobe.chuo_07"));
	assert_false(event_terminal_id_valid(""));
	assert_false(event_terminal_id_valid(".x"));
	assert_false(event_terminal_id_valid("-x"));
	assert_false(event_terminal_id_valid("a b"));
	assert_false(event_terminal_id_valid("a/b"));
	char long_id[EVENT_TERMINAL_MAX + 2];
	memset(long_id, 'a', sizeof long_id);
	long_id[EVENT_TERMINAL_MAX] = 0;
	assert_true(event_terminal_id_valid(long_id));
	long_id[EVENT_TERMINAL_MAX] = 'a';
	long_id[EVENT_TERMINAL_MAX + 1] = 0;
	assert_false(event_terminal_id_valid(long_id));
}

static void test_roundtrip(void **state)
{
	(void)state;
	struct event e = {.seq = 42, .ts_ms = 1795633116123LL, .kind = EVENT_USB_BLOCKED};
	strcpy(e.terminal, "T-01");
	e.clause = json_pack("[s,s]", "2-6-3-a", "2-3-2");
	e.data = json_pack("{s:s,s:{s:i}}", "vendor", "0781", "nested", "x", 1);
	char *s;
	size_t n;
	assert_int_equal(event_encode(&e, &s, &n), 0);
	assert_string_equal(
	    s, "{\"v\":1,\"terminal\":\"T-01\",\"seq\":42,\"ts\":\"2026-11-25T18:58:36."
	       "123Z\",\"kind\":\"usb.blocked\",\"clause\":[\"2-6-3-a\",\"2-3-2\"],"
	       "\"data\":{\"vendor\":\"0781\",\"nested\":{\"x\":1}}}");
	struct event d;
	char reason[EVENT_REASON_MAX];
	assert_int_equal(event_decode(s, n, &d, reason), 0);
	assert_string_equal(d.terminal, "T-01");
	assert_int_equal(d.seq, 42);
	assert_int_equal(d.ts_ms, 1795633116123LL);
	assert_int_equal(d.kind, EVENT_USB_BLOCKED);
	assert_true(json_equal(d.clause, e.clause));
	assert_true(json_equal(d.data, e.data));
	event_clear(&d);
	event_clear(&d);
	free(s);

	/* clause absent decodes as [] */
	const char *nc = "{" GOOD_HEAD ",\"kind\":\"agent.started\",\"data\":{}}";
	assert_int_equal(event_decode(nc, strlen(nc), &d, reason), 0);
	assert_int_equal(json_array_size(d.clause), 0);
	event_clear(&d);

	/* non-ASCII is escaped on the way out and round-trips */
	json_decref(e.data);
	e.data = json_pack("{s:s}", "user", "\xe5\xb1\xb1\xe7\x94\xb0");
	assert_int_equal(event_encode(&e, &s, &n), 0);
	assert_non_null(strcasestr(s, "\\u5c71\\u7530"));
	assert_int_equal(event_decode(s, n, &d, reason), 0);
	assert_string_equal(json_string_value(json_object_get(d.data, "user")),
			    "\xe5\xb1\xb1\xe7\x94\xb0");
	event_clear(&d);
	free(s);

	/* encoder refuses what the decoder would refuse */
	strcpy(e.terminal, "bad id");
	assert_int_equal(event_encode(&e, &s, &n), -EINVAL);
	strcpy(e.terminal, "T-01");
	e.seq = (uint64_t)INT64_MAX + 1;
	assert_int_equal(event_encode(&e, &s, &n), -EINVAL);
	e.seq = 1;
	json_decref(e.data);
	char *big = malloc(EVENT_MAX_BYTES + 1);
	memset(big, 'x', EVENT_MAX_BYTES);
	big[EVENT_MAX_BYTES] = 0;
	e.data = json_pack("{s:s}", "big", big);
	free(big);
	assert_int_equal(event_encode(&e, &s, &n), -EMSGSIZE);
	event_clear(&e);
}

struct bad_case {
	const char *json;
	const char *reason;
	int err;
};

static const struct bad_case bad_events[] = {
    {"", "invalid JSON at line 1 column 0: '[' or '{' expected near end of file", -EINVAL},
    {"[1]", "expected a JSON object", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"agent.started\",\"data\":{},\"x\":1}", "unknown key \"x\"",
     -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"agent.started\",\"data\":{},\"data\":{}}",
     "invalid JSON at line 1 column 104: duplicate object key near '\"data\"'", -EINVAL},
    {"{\"terminal\":\"T\",\"seq\":1,\"ts\":\"2026-11-25T18:58:36Z\",\"kind\":\"compliance\",\"data\":{}}",
     "v: missing", -EINVAL},
    {"{\"v\":\"1\"}", "v: expected an integer", -EINVAL},
    {"{\"v\":2}", "v: unsupported version 2", -EINVAL},
    {"{\"v\":1}", "terminal: missing", -EINVAL},
    {"{\"v\":1,\"terminal\":5}", "terminal: expected a string", -EINVAL},
    {"{\"v\":1,\"terminal\":\"../x\"}", "terminal: invalid terminal id (1..64 of [A-Za-z0-9._-])",
     -EINVAL},
    {"{\"v\":1,\"terminal\":\"T\"}", "seq: missing", -EINVAL},
    {"{\"v\":1,\"terminal\":\"T\",\"seq\":-1}", "seq: expected a non-negative integer", -EINVAL},
    {"{\"v\":1,\"terminal\":\"T\",\"seq\":1.5}", "seq: expected a non-negative integer", -EINVAL},
    {"{\"v\":1,\"terminal\":\"T\",\"seq\":\"1\"}", "seq: expected a non-negative integer", -EINVAL},
    {"{\"v\":1,\"terminal\":\"T\",\"seq\":1}", "ts: missing", -EINVAL},
    {"{\"v\":1,\"terminal\":\"T\",\"seq\":1,\"ts\":\"2026-11-25T18:58:36.123+09:00\"}",
     "ts: expected \"YYYY-MM-DDTHH:MM:SS.mmmZ\"", -EINVAL},
    {"{\"v\":1,\"terminal\":\"T\",\"seq\":1,\"ts\":17}",
     "ts: expected \"YYYY-MM-DDTHH:MM:SS.mmmZ\"", -EINVAL},
    {"{" GOOD_HEAD "}", "kind: missing", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":3}", "kind: expected a string", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"usb.exploded\"}", "kind: unknown kind \"usb.exploded\"", -EINVAL},
    /* untrusted text in a reason is escaped by base/escape.c: controls as \xHH, '"' as \",
     * UTF-8 kept, at most 32 bytes cut on a character boundary */
    {"{" GOOD_HEAD ",\"kind\":\"a\\n\\\"b\"}", "kind: unknown kind \"a\\x0a\\\"b\"", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"\\u6771\\u4eac\"}",
     "kind: unknown kind \"\xe6\x9d\xb1\xe4\xba\xac\"", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"0123456789abcdef0123456789abcd\\u6771\"}",
     "kind: unknown kind \"0123456789abcdef0123456789abcd...\"", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"agent.started\",\"clause\":\"2-3\"}",
     "clause: expected an array of strings", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"agent.started\",\"clause\":[\"a\",1]}",
     "clause[1]: expected a string", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"agent.started\",\"clause\":[\"a b\"]}",
     "clause[0]: invalid clause id", -EINVAL},
    {"{" GOOD_HEAD
     ",\"kind\":\"agent.started\",\"clause\":[\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
     "\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\"]}",
     "clause: more than 16 clause ids", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"agent.started\"}", "data: missing", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"agent.started\",\"data\":[]}", "data: expected an object", -EINVAL},
    {"{" GOOD_HEAD
     ",\"kind\":\"agent.started\",\"data\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{}}}}}}}}}",
     "data: nested deeper than 8 levels", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"compliance\",\"data\":{}}", "data.checks: expected an array",
     -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"compliance\",\"data\":{\"policy_hash\":1,\"checks\":[]}}",
     "data.policy_hash: expected a string", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"compliance\",\"data\":{\"checks\":[1]}}",
     "data.checks[0]: expected an object", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"compliance\",\"data\":{\"checks\":[{\"status\":\"pass\"}]}}",
     "data.checks[0].id: expected a string", -EINVAL},
    {"{" GOOD_HEAD
     ",\"kind\":\"compliance\",\"data\":{\"checks\":[{\"id\":\"x\",\"status\":\"ok\"}]}}",
     "data.checks[0].status: expected pass|fail|not_applicable|error", -EINVAL},
    {"{" GOOD_HEAD
     ",\"kind\":\"compliance\",\"data\":{\"checks\":[{\"id\":\"x\",\"status\":\"fail\",\"clause\":[2]}]}}",
     "data.checks[0].clause[0]: expected a string", -EINVAL},
    {"{" GOOD_HEAD
     ",\"kind\":\"compliance\",\"data\":{\"checks\":[{\"id\":\"x\",\"status\":\"fail\",\"detail\":2}]}}",
     "data.checks[0].detail: expected a string", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"spool.dropped\",\"data\":{}}",
     "data.count: expected a non-negative integer", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"spool.dropped\",\"data\":{\"count\":3,\"first_seq\":-2}}",
     "data.first_seq: expected a non-negative integer", -EINVAL},
    {"{" GOOD_HEAD ",\"kind\":\"spool.dropped\",\"data\":{\"count\":3,\"last_seq\":\"9\"}}",
     "data.last_seq: expected a non-negative integer", -EINVAL},
};

static void test_bad_events(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_events / sizeof bad_events[0]; i++) {
		struct event e;
		char reason[EVENT_REASON_MAX];
		const struct bad_case *c = &bad_events[i];
		int r = event_decode(c->json, strlen(c->json), &e, reason);
		if (r != c->err || strcmp(reason, c->reason) != 0)
			fail_msg("case %zu: %s\n  got %d \"%s\"\n  want %d \"%s\"", i, c->json, r,
				 reason, c->err, c->reason);
	}
	/* valid compliance and spool.dropped */
	const char *ok[] = {
	    "{" GOOD_HEAD
	    ",\"kind\":\"compliance\",\"clause\":[],\"data\":{\"policy_hash\":\"sha256:ab\","
	    "\"checks\":[{\"id\":\"usb.default_deny\",\"clause\":[\"2-6-3-a\"],\"status\":\"pass\",\"detail\":\"ok\"}]}}",
	    "{" GOOD_HEAD
	    ",\"kind\":\"spool.dropped\",\"data\":{\"count\":3,\"first_seq\":4,\"last_seq\":6}}",
	    "{" GOOD_HEAD
	    ",\"kind\":\"agent.started\",\"data\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":1}}}}}}}",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct event e;
		char reason[EVENT_REASON_MAX];
		if (event_decode(ok[i], strlen(ok[i]), &e, reason) != 0)
			fail_msg("ok case %zu: %s", i, reason);
		event_clear(&e);
	}
	/* too large */
	size_t n = EVENT_MAX_BYTES + 1;
	char *big = calloc(1, n + 1);
	memset(big, ' ', n);
	struct event e;
	char reason[EVENT_REASON_MAX];
	assert_int_equal(event_decode(big, n, &e, reason), -EMSGSIZE);
	assert_string_equal(reason, "event too large (65537 bytes, limit 65536)");
	free(big);
}

static char *make_event(unsigned seq, const char *terminal)
{
	struct event e = {.seq = seq, .ts_ms = 1795633116123LL, .kind = EVENT_AUTH_FAILURE};
	strcpy(e.terminal, terminal);
	e.data = json_pack("{s:s}", "user", "alice");
	char *s;
	assert_int_equal(event_encode(&e, &s, NULL), 0);
	event_clear(&e);
	return s;
}

static void test_batch(void **state)
{
	(void)state;
	char *evs[3];
	size_t lens[3];
	for (unsigned i = 0; i < 3; i++) {
		evs[i] = make_event(i + 1, "T-01");
		lens[i] = strlen(evs[i]);
	}
	char *body;
	size_t n;
	assert_int_equal(
	    event_batch_encode_raw("T-01", (const char *const *)evs, lens, 3, &body, &n), 0);
	assert_int_equal(n, strlen(body));
	assert_int_equal(n, event_batch_raw_size("T-01", 3, lens[0] + lens[1] + lens[2]));
	struct event_batch b;
	char reason[EVENT_REASON_MAX];
	assert_int_equal(event_batch_decode(body, n, &b, reason), 0);
	assert_string_equal(b.terminal, "T-01");
	assert_int_equal(b.n, 3);
	assert_int_equal(b.events[2].seq, 3);
	event_batch_clear(&b);
	event_batch_clear(&b);
	free(body);

	assert_int_equal(event_batch_encode_raw("T-01", NULL, NULL, 0, &body, &n), 0);
	assert_string_equal(body, "{\"v\":1,\"terminal\":\"T-01\",\"events\":[]}");
	assert_int_equal(n, event_batch_raw_size("T-01", 0, 0));
	assert_int_equal(event_batch_decode(body, n, &b, reason), 0);
	assert_int_equal(b.n, 0);
	event_batch_clear(&b);
	free(body);
	assert_int_equal(event_batch_encode_raw("bad id", NULL, NULL, 0, &body, &n), -EINVAL);

	/* a foreign event inside the batch */
	free(evs[1]);
	evs[1] = make_event(2, "T-02");
	lens[1] = strlen(evs[1]);
	assert_int_equal(
	    event_batch_encode_raw("T-01", (const char *const *)evs, lens, 3, &body, &n), 0);
	assert_int_equal(event_batch_decode(body, n, &b, reason), -EINVAL);
	assert_string_equal(reason, "events[1].terminal: does not match the batch terminal");
	free(body);
	for (unsigned i = 0; i < 3; i++)
		free(evs[i]);

	struct bad_case bad[] = {
	    {"[7]", "expected a JSON object", -EINVAL},
	    {"{\"v\":1,\"terminal\":\"T\",\"events\":[],\"x\":0}", "unknown key \"x\"", -EINVAL},
	    {"{\"terminal\":\"T\",\"events\":[]}", "v: missing", -EINVAL},
	    {"{\"v\":true,\"terminal\":\"T\",\"events\":[]}", "v: expected an integer", -EINVAL},
	    {"{\"v\":3,\"terminal\":\"T\",\"events\":[]}", "v: unsupported version 3", -EINVAL},
	    {"{\"v\":1,\"events\":[]}", "terminal: missing", -EINVAL},
	    {"{\"v\":1,\"terminal\":[],\"events\":[]}", "terminal: expected a string", -EINVAL},
	    {"{\"v\":1,\"terminal\":\"\",\"events\":[]}",
	     "terminal: invalid terminal id (1..64 of [A-Za-z0-9._-])", -EINVAL},
	    {"{\"v\":1,\"terminal\":\"T\"}", "events: missing", -EINVAL},
	    {"{\"v\":1,\"terminal\":\"T\",\"events\":{}}", "events: expected an array", -EINVAL},
	    {"{\"v\":1,\"terminal\":\"T\",\"events\":[{\"v\":1,\"terminal\":\"T\",\"seq\":-3}]}",
	     "events[0].seq: expected a non-negative integer", -EINVAL},
	    {"{\"v\":1,\"terminal\":\"T\",\"events\":[{\"v\":1,\"terminal\":\"T\",\"seq\":1,\"ts\":\"2026-11-25T18:58:36Z\","
	     "\"kind\":\"agent.started\",\"data\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":[[]]}}}}}}}]}",
	     "events[0].data: nested deeper than 8 levels", -EINVAL},
	    {"{\"v\":1,\"v\":1}",
	     "invalid JSON at line 1 column 10: duplicate object key near '\"v\"'", -EINVAL},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = event_batch_decode(bad[i].json, strlen(bad[i].json), &b, reason);
		if (r != bad[i].err || strcmp(reason, bad[i].reason) != 0)
			fail_msg("batch case %zu: %s\n  got %d \"%s\"\n  want \"%s\"", i,
				 bad[i].json, r, reason, bad[i].reason);
	}

	/* more than EVENT_BATCH_MAX_EVENTS */
	size_t cap = 64 + (EVENT_BATCH_MAX_EVENTS + 1) * 3;
	char *many = malloc(cap);
	size_t o = (size_t)sprintf(many, "{\"v\":1,\"terminal\":\"T\",\"events\":[");
	for (int i = 0; i <= EVENT_BATCH_MAX_EVENTS; i++)
		o += (size_t)sprintf(many + o, "%s{}", i ? "," : "");
	o += (size_t)sprintf(many + o, "]}");
	assert_int_equal(event_batch_decode(many, o, &b, reason), -EMSGSIZE);
	assert_string_equal(reason, "events: more than 1000 events (1001)");
	free(many);
	assert_int_equal(event_batch_decode("x", EVENT_BATCH_MAX_BYTES + 1, &b, reason), -EMSGSIZE);
	assert_string_equal(reason, "batch too large (4194305 bytes, limit 4194304)");
	const char *dummy = "{}";
	size_t dl = 2;
	assert_int_equal(
	    event_batch_encode_raw("T", &dummy, &dl, EVENT_BATCH_MAX_EVENTS + 1, &body, &n),
	    -EMSGSIZE);
}

static void test_datagram(void **state)
{
	(void)state;
	enum event_kind k;
	int64_t ts;
	json_t *data;
	char reason[EVENT_REASON_MAX];
	const char *good =
	    "{\"v\":1,\"kind\":\"auth.failure\",\"ts_ms\":1795633116123,\"data\":{\"user\":"
	    "\"alice\",\"service\":\"login\",\"rhost\":\"\",\"tty\":\"tty1\",\"reason\":\"bad code\"}}";
	assert_int_equal(event_datagram_decode(good, strlen(good), &k, &ts, &data, reason), 0);
	assert_int_equal(k, EVENT_AUTH_FAILURE);
	assert_int_equal(ts, 1795633116123LL);
	assert_string_equal(json_string_value(json_object_get(data, "tty")), "tty1");
	json_decref(data);

	struct bad_case bad[] = {
	    {"{", "invalid JSON at line 1 column 1: string or '}' expected near end of file",
	     -EINVAL},
	    {"[]", "expected a JSON object", -EINVAL},
	    {"{\"v\":1,\"seq\":1}", "unknown key \"seq\"", -EINVAL},
	    {"{\"v\":2}", "v: expected 1", -EINVAL},
	    {"{\"v\":1}", "kind: missing", -EINVAL},
	    {"{\"v\":1,\"kind\":1}", "kind: expected a string", -EINVAL},
	    {"{\"v\":1,\"kind\":\"usb.blocked\"}",
	     "kind: expected auth.success|auth.failure|auth.replay|auth.locked", -EINVAL},
	    {"{\"v\":1,\"kind\":\"auth.success\",\"ts_ms\":-1}",
	     "ts_ms: expected a non-negative integer", -EINVAL},
	    {"{\"v\":1,\"kind\":\"auth.success\",\"ts_ms\":1}", "data: missing", -EINVAL},
	    {"{\"v\":1,\"kind\":\"auth.success\",\"ts_ms\":1,\"data\":\"x\"}",
	     "data: expected an object", -EINVAL},
	    {"{\"v\":1,\"kind\":\"auth.success\",\"ts_ms\":1,\"data\":{\"sender\":\"x\"}}",
	     "data.sender: reserved for the agent", -EINVAL},
	    {"{\"v\":1,\"kind\":\"auth.success\",\"ts_ms\":1,\"data\":{\"user\":{}}}",
	     "data.user: expected a string, integer or boolean", -EINVAL},
	    {"{\"v\":1,\"kind\":\"auth.success\",\"ts_ms\":1,\"data\":{\"user\":1,\"service\":\"x\"}}",
	     "data.user: expected a string", -EINVAL},
	    {"{\"v\":1,\"kind\":\"auth.success\",\"ts_ms\":1,\"data\":{\"user\":\"a\"}}",
	     "data.service: expected a string", -EINVAL},
	    {"{\"v\":1,\"kind\":\"auth.success\",\"ts_ms\":1,\"data\":{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,"
	     "\"h\":1,\"i\":1,\"j\":1,\"k\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"q\":1}}",
	     "data: more than 16 keys", -EINVAL},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r =
		    event_datagram_decode(bad[i].json, strlen(bad[i].json), &k, &ts, &data, reason);
		if (r != bad[i].err || strcmp(reason, bad[i].reason) != 0)
			fail_msg("datagram case %zu: %s\n  got %d \"%s\"\n  want \"%s\"", i,
				 bad[i].json, r, reason, bad[i].reason);
	}
	assert_int_equal(
	    event_datagram_decode(good, EVENT_DATAGRAM_MAX + 1, &k, &ts, &data, reason), -EMSGSIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kind_names),	cmocka_unit_test(test_ts),
	    cmocka_unit_test(test_terminal_id), cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_bad_events),	cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_datagram),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
