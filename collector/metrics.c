/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: process-wide counters (atomics, any thread) and their Prometheus text. */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "alert.h"
#include "enroll.h"
#include "macro.h"

struct metrics metrics;

static const double latency_bounds[METRICS_LATENCY_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};

static const struct {
	int code;
	enum metrics_status idx;
} status_map[] = {
    {200, METRICS_200}, {400, METRICS_400}, {403, METRICS_403},
    {404, METRICS_404}, {405, METRICS_405}, {413, METRICS_413},
    {429, METRICS_429}, {500, METRICS_500}, {503, METRICS_503},
};

void metrics_count_status(int http_status)
{
	for (size_t i = 0; i < ELEMENTSOF(status_map); i++)
		if (status_map[i].code == http_status) {
			atomic_fetch_add(&metrics.ingest_requests[status_map[i].idx], 1);
			return;
		}
	atomic_fetch_add(&metrics.ingest_requests[METRICS_500], 1);
}

void metrics_observe_latency(uint64_t us)
{
	double s = (double)us / 1e6;
	for (size_t i = 0; i < METRICS_LATENCY_BUCKETS; i++)
		if (s <= latency_bounds[i])
			atomic_fetch_add(&metrics.latency_bucket[i], 1);
	atomic_fetch_add(&metrics.latency_count, 1);
	atomic_fetch_add(&metrics.latency_sum_us, us);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
		(unsigned long long)v);
}

static void gauge(FILE *f, const char *name, const char *help, uint64_t v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, help, name, name,
		(unsigned long long)v);
}

int metrics_render(const struct store_stats *st, const uint64_t *periods, char **ret,
		   size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint64_t cum;

	if (!f)
		return -ENOMEM;
	fprintf(f,
		"# HELP mynaguard_collector_ingest_requests_total Ingest requests by HTTP status.\n"
		"# TYPE mynaguard_collector_ingest_requests_total counter\n");
	for (size_t i = 0; i < ELEMENTSOF(status_map); i++)
		fprintf(
		    f, "mynaguard_collector_ingest_requests_total{code=\"%d\"} %llu\n",
		    status_map[i].code,
		    (unsigned long long)atomic_load(&metrics.ingest_requests[status_map[i].idx]));
	counter(f, "mynaguard_collector_events_stored_total", "Events stored durably (new).",
		atomic_load(&metrics.events_stored));
	counter(f, "mynaguard_collector_events_duplicate_total",
		"Events received again and not stored twice.",
		atomic_load(&metrics.events_duplicate));
	counter(f, "mynaguard_collector_events_conflicting_total",
		"Duplicates whose content differs from the stored event (terminal reused a seq).",
		atomic_load(&metrics.events_conflicting));
	counter(f, "mynaguard_collector_gaps_detected_total", "Sequence gaps recorded.",
		atomic_load(&metrics.gaps_detected));
	counter(f, "mynaguard_collector_commits_total",
		"SQLite transactions committed by the writer.", atomic_load(&metrics.commits));
	counter(f, "mynaguard_collector_commit_batches_total",
		"Batches written in those transactions.", atomic_load(&metrics.commit_batches));
	counter(f, "mynaguard_collector_tls_handshakes_failed_total",
		"Ingest TLS handshakes that failed (no, unknown or revoked certificate).",
		atomic_load(&metrics.handshakes_failed));
	counter(f, "mynaguard_collector_revoked_refused_total",
		"Connections or requests refused because the certificate serial is revoked.",
		atomic_load(&metrics.revoked_refused));
	counter(f, "mynaguard_collector_heavy_busy_total",
		"Reviews, reports and evidence bundles answered 503 busy (two already running).",
		atomic_load(&metrics.heavy_busy));
	counter(f, "mynaguard_collector_connections_total", "Ingest connections accepted.",
		atomic_load(&metrics.connections_total));
	gauge(f, "mynaguard_collector_connections_open", "Ingest connections open now.",
	      atomic_load(&metrics.connections_open));
	gauge(f, "mynaguard_collector_queue_events", "Events waiting for the writer.",
	      atomic_load(&metrics.queue_events));
	counter(f, "mynaguard_collector_retention_deleted_total", "Events deleted by retention.",
		atomic_load(&metrics.retention_deleted));
	gauge(f, "mynaguard_collector_retention_last_run_seconds",
	      "Unix time of this process's last retention run (0: none yet).",
	      (uint64_t)atomic_load(&metrics.retention_last_run_ms) / 1000);
	gauge(f, "mynaguard_collector_retention_last_disposed",
	      "Events disposed of by this process's last retention run.",
	      atomic_load(&metrics.retention_last_disposed));
	if (periods) {
		fprintf(f,
			"# HELP mynaguard_collector_retention_period_seconds Retention period by "
			"kind (0: kept).\n"
			"# TYPE mynaguard_collector_retention_period_seconds gauge\n");
		for (int k = 0; k < _EVENT_KIND_MAX; k++)
			fprintf(
			    f, "mynaguard_collector_retention_period_seconds{kind=\"%s\"} %llu\n",
			    event_kind_name((enum event_kind)k), (unsigned long long)periods[k]);
	}
	gauge(f, "mynaguard_collector_heads_signed_seconds",
	      "Unix time of this process's last signing of the chain heads (0: none yet).",
	      (uint64_t)atomic_load(&metrics.heads_signed_ms) / 1000);
	counter(f, "mynaguard_collector_heads_sign_failures_total",
		"Signings of the chain heads refused (the store did not verify) or failed.",
		atomic_load(&metrics.heads_sign_failures));
	counter(f, "mynaguard_collector_dashboard_requests_total", "Dashboard requests.",
		atomic_load(&metrics.dashboard_requests));
	counter(f, "mynaguard_collector_dashboard_unauthorized_total",
		"Dashboard requests refused for a missing or wrong token.",
		atomic_load(&metrics.dashboard_unauthorized));

	fprintf(
	    f,
	    "# HELP mynaguard_collector_ingest_latency_seconds Time from a complete request to its answer.\n"
	    "# TYPE mynaguard_collector_ingest_latency_seconds histogram\n");
	for (size_t i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
		cum = atomic_load(&metrics.latency_bucket[i]);
		fprintf(f, "mynaguard_collector_ingest_latency_seconds_bucket{le=\"%g\"} %llu\n",
			latency_bounds[i], (unsigned long long)cum);
	}
	cum = atomic_load(&metrics.latency_count);
	fprintf(f, "mynaguard_collector_ingest_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
		(unsigned long long)cum);
	fprintf(f, "mynaguard_collector_ingest_latency_seconds_sum %.6f\n",
		(double)atomic_load(&metrics.latency_sum_us) / 1e6);
	fprintf(f, "mynaguard_collector_ingest_latency_seconds_count %llu\n",
		(unsigned long long)cum);

	if (st) {
		gauge(f, "mynaguard_collector_terminals", "Terminals known to the store.",
		      st->terminals);
		fprintf(
		    f,
		    "# HELP mynaguard_collector_terminals_by_state Terminals by compliance state (stale counted separately).\n"
		    "# TYPE mynaguard_collector_terminals_by_state gauge\n"
		    "mynaguard_collector_terminals_by_state{state=\"compliant\"} %llu\n"
		    "mynaguard_collector_terminals_by_state{state=\"noncompliant\"} %llu\n"
		    "mynaguard_collector_terminals_by_state{state=\"unknown\"} %llu\n"
		    "mynaguard_collector_terminals_by_state{state=\"stale\"} %llu\n",
		    (unsigned long long)st->compliant, (unsigned long long)st->noncompliant,
		    (unsigned long long)st->unknown, (unsigned long long)st->stale);
		gauge(f, "mynaguard_collector_events", "Events held in the store.", st->events);
		gauge(f, "mynaguard_collector_gaps", "Sequence gaps held in the store.", st->gaps);
		fprintf(
		    f,
		    "# HELP mynaguard_collector_oldest_event_seconds When the oldest event kept was received, by kind.\n"
		    "# TYPE mynaguard_collector_oldest_event_seconds gauge\n");
		for (int k = 0; k < _EVENT_KIND_MAX; k++)
			if (st->oldest_ms[k] != INT64_MIN)
				fprintf(
				    f,
				    "mynaguard_collector_oldest_event_seconds{kind=\"%s\"} %.3f\n",
				    event_kind_name((enum event_kind)k),
				    (double)st->oldest_ms[k] / 1000.0);
	}
	enroll_metrics_write(f);
	alert_metrics_write(f);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
