/* SPDX-License-Identifier: MIT */
/* Test helper: fill a spool like the agent would, dump it, or show acked. Not installed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "spool.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fill DIR TERMINAL COUNT [SLEEP_US] [MAX_BYTES] [SYNC_EVERY]: append COUNT events continuing the
 * sequence, synced every SYNC_EVERY records (default 1, like agent_emit); prints the last number. */
static int fill(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	const char *dir = argv[2], *terminal = argv[3];
	uint64_t count = strtoull(argv[4], NULL, 10);
	unsigned long sleep_us = argc > 5 ? strtoul(argv[5], NULL, 10) : 0;
	uint64_t max = argc > 6 ? strtoull(argv[6], NULL, 10) : 64ULL << 20;
	uint64_t sync_every = argc > 7 ? strtoull(argv[7], NULL, 10) : 1;
	if (max == 0)
		max = 64ULL << 20;
	if (sync_every == 0)
		sync_every = 1;
	struct spool_writer *w;
	int r = spool_writer_open(dir, max, &w, NULL);
	if (r < 0) {
		fprintf(stderr, "spool-tool: open %s: %s\n", dir, strerror(-r));
		return 1;
	}
	uint64_t seq = spool_writer_next_seq(w);
	for (uint64_t i = 0; i < count; i++, seq++) {
		struct event e = {.seq = seq, .ts_ms = now_ms(), .kind = EVENT_USB_BLOCKED};
		snprintf(e.terminal, sizeof e.terminal, "%s", terminal);
		e.clause = json_pack("[s,s]", "2-6-3-a", "2-3-2");
		e.data = json_pack("{s:s,s:s,s:s,s:s,s:I}", "vendor", "0781", "product", "5581",
				   "serial", "4C530001090515116423", "rule",
				   "block mass_storage (08)", "n", (json_int_t)i);
		char *text;
		size_t len;
		r = event_encode(&e, &text, &len);
		event_clear(&e);
		if (r < 0)
			return 1;
		struct spool_drop d;
		r = spool_writer_append(w, seq, SPOOL_CLASS_PROTECTED, text, len, &d);
		free(text);
		if (r >= 0 && ((i + 1) % sync_every == 0 || i + 1 == count))
			r = spool_writer_sync(w);
		if (r < 0) {
			fprintf(stderr, "spool-tool: append %" PRIu64 ": %s\n", seq, strerror(-r));
			return 1;
		}
		if (d.count > 0)
			fprintf(stderr, "dropped %" PRIu64 " %" PRIu64 "..%" PRIu64 "\n", d.count,
				d.first_seq, d.last_seq);
		if (sleep_us)
			usleep((useconds_t)sleep_us);
	}
	printf("%" PRIu64 "\n", seq - 1);
	spool_writer_free(w);
	return 0;
}

/* trim DIR: what the agent does with the uplink's acknowledgement; prints
 * "acked=N removed=M refused=ERRNO claimed=C". */
static int trim(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	struct spool_writer *w;
	struct spool_trim t;
	int r = spool_writer_open(argv[2], 64ULL << 20, &w, NULL);
	if (r < 0) {
		fprintf(stderr, "spool-tool: open %s: %s\n", argv[2], strerror(-r));
		return 1;
	}
	r = spool_writer_trim_acked(w, &t);
	spool_writer_free(w);
	if (r < 0) {
		fprintf(stderr, "spool-tool: trim %s: %s\n", argv[2], strerror(-r));
		return 1;
	}
	printf("acked=%" PRIu64 " removed=%" PRIu64 " refused=%d claimed=%" PRIu64 "\n", t.acked,
	       t.segments, -t.refused, t.claimed);
	return 0;
}

/* dump DIR: every record above acked, "SEQ PAYLOAD" per line. */
static int dump(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	struct spool_reader *r;
	int k = spool_reader_open(argv[2], &r);
	if (k < 0) {
		fprintf(stderr, "spool-tool: open %s: %s\n", argv[2], strerror(-k));
		return 1;
	}
	struct spool_record rec;
	while ((k = spool_reader_next(r, &rec)) == 1) {
		printf("%" PRIu64 " %.*s\n", rec.seq, (int)rec.len, rec.payload);
		free((void *)rec.payload);
	}
	spool_reader_free(r);
	return k < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "fill") == 0)
		return fill(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "dump") == 0)
		return dump(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "trim") == 0)
		return trim(argc, argv);
	fprintf(stderr, "usage: spool-tool fill DIR TERMINAL COUNT [SLEEP_US] [MAX_BYTES] | dump "
			"DIR | trim DIR\n");
	return 2;
}
