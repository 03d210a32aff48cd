/* SPDX-License-Identifier: MIT */
/* mynaguardd internals shared by its files: the main loop, event emission, paths. Runs in the
 * unprivileged worker (priv.h has the monitor and the requests it serves). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "policy.h"

struct agent;

/* Paths; every one can be pointed elsewhere on the command line so tests run without root. */
struct agent_paths {
	const char *policy; /* --policy FILE (required) */
	const char *socket; /* --socket PATH, default /run/mynaguard/event.sock */
	const char *spool;  /* --spool DIR, default /var/spool/mynaguard */
	const char *state;  /* --state DIR, default /var/lib/mynaguard (seq counter, TOTP store at
				 * STATE/totp, PAM fallback events at STATE/totp/.pending-events) */
	const char *sysfs_root;	   /* --sysfs-root DIR, default "/" ("" under umockdev) */
	const char *notify_socket; /* --notify-socket PATH, default notify.sock beside the event
				    * socket (/run/mynaguard/notify.sock) */
};

/* Called when fd is readable (events as from epoll). */
typedef void (*agent_io_fn)(struct agent *a, int fd, uint32_t events, void *userdata);
/* Called when a timer fires. */
typedef void (*agent_timer_fn)(struct agent *a, void *userdata);

/* Watch fd for EPOLLIN in the main loop. */
int agent_watch_fd(struct agent *a, int fd, agent_io_fn fn, void *userdata);
int agent_unwatch_fd(struct agent *a, int fd);
/* Call fn every interval_ms (timerfd, CLOCK_MONOTONIC); first call after first_ms. */
int agent_add_timer(struct agent *a, uint64_t first_ms, uint64_t interval_ms, agent_timer_fn fn,
		    void *userdata);

const struct policy *agent_policy(const struct agent *a);
const struct agent_paths *agent_paths(const struct agent *a);

/* Record one event: assigns the next sequence number (durable across restarts), stamps the
 * time, appends it durably to the spool, and logs one greppable line to stderr
 * ("event seq=N kind=K ..."). clauses (array of strings) and data (object) are stolen; clauses
 * may be NULL. Returns the sequence number (>= 0) or -errno; an event that cannot be stored is
 * logged, never fatal. Implemented in agent/emit.c. */
int64_t agent_emit(struct agent *a, enum event_kind kind, json_t *clauses, json_t *data);

/* Set up the event side at start (spool, sequence, PAM fallback collection, event socket);
 * implemented in emit.c / evsock.c. Called by main before coldplug. */
int agent_emit_init(struct agent *a);
/* Before the split, as root: make the spool directory and SPOOL/ack, and watch ack/ for the
 * uplink's acknowledgements (the worker may not be able to read the spool directory). */
int agent_emit_watch_ack(struct agent *a);
void agent_emit_done(struct agent *a);
int agent_evsock_init(struct agent *a);
void agent_evsock_done(struct agent *a);
/* The monitor's side after the worker ended: remove the socket path (the worker may not), free,
 * log nothing (the worker logged its counters). */
void agent_evsock_forget(struct agent *a);

/* Compliance checks (checks.c): run once at start and every report interval, emitting one
 * "compliance" event per run. */
int agent_checks_init(struct agent *a);
void agent_checks_done(struct agent *a);
/* One snapshot now (e.g. right after a bundle was applied, so data.bundle reaches the collector
 * without waiting for the interval). */
void agent_checks_run_now(struct agent *a);

/* Per-file private state hangs off the agent through these slots (no globals). */
struct agent_emit;
struct agent_evsock;
struct agent_checks;
struct agent_usb;
struct agent_emit **agent_emit_slot(struct agent *a);
struct agent_evsock **agent_evsock_slot(struct agent *a);
struct agent_checks **agent_checks_slot(struct agent *a);
int *agent_ack_ino_slot(struct agent *a);
