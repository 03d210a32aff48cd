/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: process-wide counters (atomics, any thread) and their Prometheus text. */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

#include "store.h"

enum metrics_status {
	METRICS_200,
	METRICS_400,
	METRICS_403,
	METRICS_404,
	METRICS_405,
	METRICS_413,
	METRICS_429,
	METRICS_500,
	METRICS_503,
	_METRICS_STATUS_MAX,
};

#define METRICS_LATENCY_BUCKETS 12

struct metrics {
	atomic_uint_fast64_t ingest_requests[_METRICS_STATUS_MAX];
	atomic_uint_fast64_t events_stored;
	atomic_uint_fast64_t events_duplicate;
	atomic_uint_fast64_t events_conflicting;
	atomic_uint_fast64_t gaps_detected;
	atomic_uint_fast64_t commits;
	atomic_uint_fast64_t commit_batches;
	atomic_uint_fast64_t handshakes_failed;
	atomic_uint_fast64_t revoked_refused;
	atomic_uint_fast64_t heavy_busy; /* review/report/evidence answered 503 busy */
	atomic_uint_fast64_t connections_open;
	atomic_uint_fast64_t connections_total;
	atomic_uint_fast64_t queue_events; /* waiting for the writer now */
	atomic_uint_fast64_t retention_deleted;
	atomic_int_fast64_t retention_last_run_ms;    /* 0: not yet in this process */
	atomic_uint_fast64_t retention_last_disposed; /* events disposed of by the last run */
	atomic_int_fast64_t heads_signed_ms;	      /* last signing of the chain heads; 0: none */
	atomic_uint_fast64_t heads_sign_failures;     /* signings refused or failed */
	atomic_uint_fast64_t dashboard_requests;
	atomic_uint_fast64_t dashboard_unauthorized;
	/* ingest latency from the handler to the reply (seconds), cumulative buckets */
	atomic_uint_fast64_t latency_bucket[METRICS_LATENCY_BUCKETS];
	atomic_uint_fast64_t latency_count;
	atomic_uint_fast64_t latency_sum_us;
};

extern struct metrics metrics;

void metrics_count_status(int http_status);
void metrics_observe_latency(uint64_t us);
/* Appends the Prometheus text exposition (version 0.0.4) to a malloc'd string. periods: the
 * retention period of each enum event_kind in seconds (0 keeps), or NULL. */
int metrics_render(const struct store_stats *stats, const uint64_t *periods, char **ret,
		   size_t *ret_len);
