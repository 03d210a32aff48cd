/* SPDX-License-Identifier: MIT */
/* The spool on disk: segment files of length+CRC-framed event records. Written and trimmed by
 * mynaguardd (root) only; read by mynaguard-uplink (user mynaguard), which reports its progress in
 * ack/acked and never deletes anything. Format: docs/spool.md. Never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* One record: header (little-endian) then payload (one encoded event, JSON text).
 *   0  u32 magic  "MGS" + the format version as one ASCII byte ("MGS1": format 1)
 *   4  u32 bits 0..23: length of the payload, 1..EVENT_MAX_BYTES; bits 24..31: class
 *   8  u64 seq    the event's sequence number
 *   16 u32 crc    CRC-32 (zlib) of bytes 0..15 and the payload */
#define SPOOL_MAGIC 0x3153474dU
/* The format this code writes and reads. A record whose magic is "MGS" and a later version byte
 * ('2'..'9') was written by a newer mynaguard: the writer and the reader refuse the spool with
 * -EPROTONOSUPPORT and change nothing in it (an older agent must never truncate what it cannot
 * read); spool_strerror() says so in words. */
#define SPOOL_FORMAT_VERSION 1
#define SPOOL_HEADER_SIZE    20
#define SPOOL_RECORD_MAX     (SPOOL_HEADER_SIZE + EVENT_MAX_BYTES)

/* Who a record speaks for, stored in the record so that eviction after a restart still knows.
 * Old spools (before classes) read as SPOOL_CLASS_PROTECTED. */
enum spool_class {
	SPOOL_CLASS_PROTECTED = 0,    /* USB, compliance, agent, root senders: evicted only for
				       * other protected records */
	SPOOL_CLASS_UNPRIVILEGED = 1, /* datagrams from a non-root uid: a bounded share, never
				       * evicts anything */
	_SPOOL_CLASS_MAX,
};
/* Unprivileged records may occupy at most max_bytes / SPOOL_UNPRIV_SHARE_DIV of the spool. */
#define SPOOL_UNPRIV_SHARE_DIV 4

/* Segment files are named "seg-" + 20-digit zero-padded first sequence number. The uplink's
 * progress is the decimal number in ack/acked: "ack" is the only place it may write; the spool
 * directory itself is writable by the agent only. "acked" directly in the spool directory is the
 * location before that (read when ack/acked does not exist). */
#define SPOOL_SEGMENT_PREFIX   "seg-"
#define SPOOL_SEGMENT_NAME_LEN 24
#define SPOOL_ACK_DIR	       "ack"
#define SPOOL_INBOX_DIR	       "inbox" /* the uplink's fetched bundle (docs/fleet.md) */
#define SPOOL_ACKED_FILE       "acked"
#define SPOOL_ACKED_PATH       SPOOL_ACK_DIR "/" SPOOL_ACKED_FILE
/* The uplink's fleet bundle for the agent (docs/fleet.md): inbox/bundle, made like ack/. */
#define SPOOL_INBOX_DIR	   "inbox"
#define SPOOL_INBOX_BUNDLE "bundle"
/* The agent's X25519 public key for central TOTP secrets (one base64 line, docs/fleet.md),
 * written by its monitor, sent by the uplink with every bundle fetch. */
#define SPOOL_TERMINAL_KEY "terminal-key.pub"
#define SPOOL_SEGMENT_MIN  (64 * 1024)
#define SPOOL_SEGMENT_MAX  (4 * 1024 * 1024)
#define SPOOL_MAX_SEGMENTS 100000

struct spool_record {
	uint64_t seq;
	const char *payload; /* points into the parsed buffer (parse) or is owned (reader) */
	size_t len;
	enum spool_class cls;
};

/* Pure codec. spool_record_encode writes spool_record_size(len) bytes to buf. */
size_t spool_record_size(size_t payload_len);
int spool_record_encode(uint64_t seq, enum spool_class cls, const void *payload, size_t len,
			uint8_t *buf);
/* Parse the record at the start of buf. Returns the record's size (> 0) and fills *ret;
 * 0 when buf holds only the beginning of a record (a torn or still growing tail);
 * -EBADMSG when the bytes cannot be a record (bad magic, length or checksum);
 * -EPROTONOSUPPORT when they are a record of a newer format (SPOOL_FORMAT_VERSION). */
int spool_record_parse(const uint8_t *buf, size_t len, struct spool_record *ret);

/* A message for a spool function's negative errno: the newer-format refusal in words
 * ("written by a newer mynaguard ..."), strerror() for everything else. Static storage. */
const char *spool_strerror(int r);

/* "seg-00000000000000000042" */
void spool_segment_name(uint64_t first_seq, char buf[static SPOOL_SEGMENT_NAME_LEN + 1]);
int spool_segment_parse_name(const char *name, uint64_t *ret_first_seq);
/* Segment size the writer rolls at for a spool bounded by max_bytes: max/16 within
 * [SPOOL_SEGMENT_MIN, SPOOL_SEGMENT_MAX]. */
uint64_t spool_segment_bytes(uint64_t max_bytes);

/* The text of an acked file: decimal digits (at most 20, value <= INT64_MAX), optionally one
 * trailing newline, nothing else. -EBADMSG otherwise. */
int spool_parse_acked(const char *text, size_t len, uint64_t *ret);
/* The uplink's acked number (dirfd = the spool directory): ack/acked, else the old "acked"; 0
 * when neither exists. Never follows a symlink, never blocks on a FIFO, reads at most 64 bytes.
 * -EBADMSG when it holds anything but a decimal number (optionally + newline) <= INT64_MAX. */
int spool_read_acked(int dirfd, uint64_t *ret);
/* Replace ack/acked atomically and durably (the uplink). */
int spool_write_acked(int dirfd, uint64_t acked);

/* ---- writer (mynaguardd) ---- */

struct spool_writer;

struct spool_recovery {
	uint64_t truncated_bytes; /* torn tail cut off the newest segment */
	uint64_t records;	  /* valid records in the newest segment */
	uint64_t segments;	  /* segment files found */
	uint64_t foreign;	  /* files named like segments but not ours (skipped) */
	uint64_t unpriv_bytes;	  /* bytes of unprivileged records found */
	unsigned dir_mode_fixed;  /* old mode when group/other write was removed, else 0 */
};

/* What spool_writer_append dropped to stay within max_bytes: records that were never acked. */
struct spool_drop {
	uint64_t count;
	uint64_t first_seq; /* valid when count > 0 */
	uint64_t last_seq;
	uint64_t segments; /* segment files removed (also fully acked ones) */
};

/* What spool_writer_trim_acked found. */
struct spool_trim {
	uint64_t acked;	   /* acknowledged number in use (never beyond the last stored one) */
	uint64_t segments; /* acknowledged segments deleted by this call */
	int refused;	   /* 0, or why the uplink's value was refused: -ERANGE beyond the last
			    * stored sequence, -EBADMSG not a number, other -errno unreadable */
	uint64_t claimed;  /* with -ERANGE: the refused value */
	bool new_refusal;  /* refused and different from the previous refusal (report it once) */
};

/* Open the spool directory dir (creating ack/ when missing: mode 0770, the directory's group),
 * recover the newest segment (cut a torn tail), count every segment's unprivileged bytes and find
 * where the sequence stands. The directory must be owned by the caller's euid; group/other write
 * is removed from it (reported in dir_mode_fixed). Segment files must be owned by the caller's
 * euid (others are skipped and counted in foreign). An acked number beyond the last stored
 * sequence is not used. ret_info may be NULL. */
/* Before the spool is opened (mynaguardd, as root, before it splits): make the spool directory
 * (0750) when missing and ack/ in it, so that ack/ can be watched from the start. The directory
 * must be owned by the caller. Returns 0 or -errno. */
int spool_prepare_dir(const char *dir);
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

/* Bytes of unprivileged records in all segments. */
uint64_t spool_writer_unpriv_bytes(const struct spool_writer *w);

/* Append one record of class cls (seq must be above every stored one, payload
 * 1..EVENT_MAX_BYTES). First deletes acknowledged segments when room is needed
 * (spool_writer_trim_acked). A protected record then makes room by removing the oldest segments
 * when the spool would exceed max_bytes, reporting in *ret_drop (may be NULL) exactly which
 * unacknowledged records went. An unprivileged record never removes anything: when it would
 * exceed max_bytes or the unprivileged share (max_bytes / SPOOL_UNPRIV_SHARE_DIV) it is not
 * stored and -ENOSPC is returned (seq is not used; the caller counts it). Not yet durable: call
 * spool_writer_sync. -EMSGSIZE when the record can never fit. */
int spool_writer_append(struct spool_writer *w, uint64_t seq, enum spool_class cls,
			const void *payload, size_t len, struct spool_drop *ret_drop);
/* fdatasync the newest segment: every appended record is durable when this returns 0. */
int spool_writer_sync(struct spool_writer *w);
/* Read the uplink's ack/acked and delete every segment that is not the newest and holds nothing
 * above it. A value beyond the last stored sequence (or unreadable) is refused: nothing is
 * deleted for it and the previous value stays in use; ret->new_refusal says whether to report
 * it. Returns 0 (also when refused) or -errno for a failed deletion. ret may be NULL. */
int spool_writer_trim_acked(struct spool_writer *w, struct spool_trim *ret);

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
/* Record that the collector holds everything through `through`: replace ack/acked atomically
 * (durably at most once a second, and when the reader is freed: a power cut may move it back,
 * which only means resending what the collector already has). Deletes nothing: the agent does
 * (spool_writer_trim_acked). */
int spool_reader_ack(struct spool_reader *r, uint64_t through);
/* Forget the read position so the next spool_reader_next starts again just above acked. */
void spool_reader_rewind(struct spool_reader *r);
