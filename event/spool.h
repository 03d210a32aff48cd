/* SPDX-License-Identifier: MIT */
/* The spool on disk: segment files of length+CRC-framed event records. Written by mynaguardd
 * (root), read and trimmed by mynaguard-uplink (user mynaguard). Format: docs/spool.md. Never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* One record: header (little-endian) then payload (one encoded event, JSON text).
 *   0  u32 magic  "MGS1"
 *   4  u32 length of the payload, 1..EVENT_MAX_BYTES
 *   8  u64 seq    the event's sequence number
 *   16 u32 crc    CRC-32 (zlib) of bytes 0..15 and the payload */
#define SPOOL_MAGIC	  0x3153474dU
#define SPOOL_HEADER_SIZE 20
#define SPOOL_RECORD_MAX  (SPOOL_HEADER_SIZE + EVENT_MAX_BYTES)

/* Segment files are named "seg-" + 20-digit zero-padded first sequence number; the uplink's
 * progress is the decimal number in "acked". */
#define SPOOL_SEGMENT_PREFIX   "seg-"
#define SPOOL_SEGMENT_NAME_LEN 24
#define SPOOL_ACKED_FILE       "acked"
#define SPOOL_SEGMENT_MIN      (64 * 1024)
#define SPOOL_SEGMENT_MAX      (4 * 1024 * 1024)
#define SPOOL_MAX_SEGMENTS     100000

struct spool_record {
	uint64_t seq;
	const char *payload; /* points into the parsed buffer (parse) or is owned (reader) */
	size_t len;
};

/* Pure codec. spool_record_encode writes spool_record_size(len) bytes to buf. */
size_t spool_record_size(size_t payload_len);
int spool_record_encode(uint64_t seq, const void *payload, size_t len, uint8_t *buf);
/* Parse the record at the start of buf. Returns the record's size (> 0) and fills *ret;
 * 0 when buf holds only the beginning of a record (a torn or still growing tail);
 * -EBADMSG when the bytes cannot be a record (bad magic, length or checksum). */
int spool_record_parse(const uint8_t *buf, size_t len, struct spool_record *ret);

/* "seg-00000000000000000042" */
void spool_segment_name(uint64_t first_seq, char buf[static SPOOL_SEGMENT_NAME_LEN + 1]);
int spool_segment_parse_name(const char *name, uint64_t *ret_first_seq);
/* Segment size the writer rolls at for a spool bounded by max_bytes: max/16 within
 * [SPOOL_SEGMENT_MIN, SPOOL_SEGMENT_MAX]. */
uint64_t spool_segment_bytes(uint64_t max_bytes);

/* The acked file: 0 when it does not exist. -EBADMSG when it holds anything but a number. */
int spool_read_acked(int dirfd, uint64_t *ret);
int spool_write_acked(int dirfd, uint64_t acked);

/* ---- writer (mynaguardd) ---- */

struct spool_writer;

struct spool_recovery {
	uint64_t truncated_bytes; /* torn tail cut off the newest segment */
	uint64_t records;	  /* valid records in the newest segment */
	uint64_t segments;	  /* segment files found */
	uint64_t foreign;	  /* files named like segments but not ours (skipped) */
};

/* What spool_writer_append dropped to stay within max_bytes: records that were never acked. */
struct spool_drop {
	uint64_t count;
	uint64_t first_seq; /* valid when count > 0 */
	uint64_t last_seq;
	uint64_t segments; /* segment files removed (also fully acked ones) */
};

/* Open (creating nothing but what is missing) the spool directory dir, recover the newest
 * segment (cut a torn tail) and find where the sequence stands. Segment files must be owned by
 * the caller's euid (others are skipped and counted in foreign). ret_info may be NULL. */
int spool_writer_open(const char *dir, uint64_t max_bytes, struct spool_writer **ret,
		      struct spool_recovery *ret_info);
void spool_writer_free(struct spool_writer *w);

/* Smallest sequence number that can be used next: one past the last record, never below the
 * newest segment's first number nor the uplink's acked number + 1, never 0. */
uint64_t spool_writer_next_seq(const struct spool_writer *w);
/* Last sequence number stored (0 = none). */
uint64_t spool_writer_last_seq(const struct spool_writer *w);
/* Bytes of all segments (as last counted). */
uint64_t spool_writer_bytes(const struct spool_writer *w);

/* Append one record (seq must be above every stored one, payload 1..EVENT_MAX_BYTES). Makes
 * room first by removing the oldest segments when the spool would exceed max_bytes, reporting
 * in *ret_drop (may be NULL) exactly which unacknowledged records went. Not yet durable:
 * call spool_writer_sync. -EMSGSIZE when the record can never fit. */
int spool_writer_append(struct spool_writer *w, uint64_t seq, const void *payload, size_t len,
			struct spool_drop *ret_drop);
/* fdatasync the newest segment: every appended record is durable when this returns 0. */
int spool_writer_sync(struct spool_writer *w);

/* ---- reader (mynaguard-uplink) ---- */

struct spool_reader;

int spool_reader_open(const char *dir, struct spool_reader **ret);
void spool_reader_free(struct spool_reader *r);
/* Directory fd (for inotify the caller watches the path itself). */
int spool_reader_dirfd(const struct spool_reader *r);
uint64_t spool_reader_acked(const struct spool_reader *r);
/* Corrupt records skipped so far (a damaged older segment). */
uint64_t spool_reader_skipped(const struct spool_reader *r);

/* The next record above everything returned so far (starting above "acked"). Returns 1 and an
 * owned copy in *ret (free ret->payload), 0 when there is nothing more right now, or -errno. */
int spool_reader_next(struct spool_reader *r, struct spool_record *ret);
/* Make what was read durable before it leaves the machine (fdatasync of the segment being read;
 * the agent may not have synced its last appends yet). */
int spool_reader_sync(struct spool_reader *r);
/* Record that the collector holds everything through `through`: replace "acked" atomically
 * (durably at most once a second, and when the reader is freed: a power cut may move it back,
 * which only means resending what the collector already has), then unlink every segment that
 * is not the newest and holds nothing above it. */
int spool_reader_ack(struct spool_reader *r, uint64_t through);
/* Forget the read position so the next spool_reader_next starts again just above acked. */
void spool_reader_rewind(struct spool_reader *r);
