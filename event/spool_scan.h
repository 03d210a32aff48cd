/* SPDX-License-Identifier: MIT */
/* A read-only pass over a spool directory: counts, the uplink's backlog and the payloads a
 * status report needs (mynaguardctl status). Takes no lock and changes nothing, so it may run
 * while the agent writes and the uplink trims. Never logs. */
#pragma once

#include <stdint.h>

struct spool_scan {
	uint64_t
	    acked; /* the uplink's progress (ack/acked, else the old "acked"; 0 when missing) */
	uint64_t segments; /* segment files read */
	uint64_t records;  /* valid records in them */
	uint64_t bytes;	   /* size of all segment files read */
	/* segments with bytes that are not a valid record before their end, or that vanished
	 * or could not be read during the pass (the uplink removes segments it has delivered) */
	uint64_t damaged;
	/* segments with records of a newer spool format (SPOOL_FORMAT_VERSION): not damage, but
	 * this version's agent and uplink refuse the spool until the newer one is back */
	uint64_t newer_format;
	uint64_t unacked; /* records with seq above acked */
	uint64_t unacked_bytes;
	/* payload copies (NUL-terminated), NULL when there is none: */
	char *first_unacked;   /* the oldest record the collector has not acknowledged */
	char *last;	       /* the newest record */
	char *last_compliance; /* the newest record of kind "compliance" */
};

/* Read every record of every segment in dir, oldest first (at most SPOOL_MAX_SEGMENTS segments;
 * the spool itself is bounded by [report] spool_max). Fills *ret only on success; free it with
 * spool_scan_clear(). -errno when dir or its acked file cannot be read (-EBADMSG: acked is not
 * a number), -ENOMEM. */
int spool_scan_dir(const char *dir, struct spool_scan *ret);
void spool_scan_clear(struct spool_scan *s);
