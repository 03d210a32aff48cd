/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: enrollment with one-time tokens (a listener of its own: server TLS, no
 * client certificate), certificate renewal on the ingest listener (mutual TLS), and the expiry
 * dates of terminals' certificates (metrics, API). The CA key stays in mynaguard-signer. */
#pragma once

#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct collector;
struct conn;
struct worker;

/* Opens the enrollment database, loads the known certificates, reads the CA to hand out and
 * binds the enrollment listener when [enroll] listen is set (unless check_only). Logs. */
int enroll_setup(struct collector *c, bool check_only);
/* Starts the listener's thread (when there is a listener). */
int enroll_start(void);
void enroll_stop(void);
/* " enroll=ADDR" for the READY line, "" without a listener. */
const char *enroll_ready_text(void);

/* POST /v1/renew on the ingest listener (worker thread): a new certificate for the terminal of
 * the connection's valid, unrevoked client certificate. */
void enroll_renew_handle(struct evhttp_request *req, struct worker *w, struct conn *conn);
/* At ingest: remembers the not-after of the connection's client certificate. */
void enroll_note_peer(struct conn *conn);
/* Adds "cert_not_after" (RFC 3339 or null) and "cert_serial" to a terminal's API object. */
void enroll_annotate_terminal(const char *terminal, json_t *obj);
/* Calls fn for every terminal's known certificate (under the table's lock: fn must not call
 * back into enroll). */
void enroll_cert_foreach(void (*fn)(const char *terminal, int64_t not_after, void *arg), void *arg);
/* A JSON array (malloc'd text) of the terminals whose certificate expires before
 * now_ms + warning_ms, or has expired; NULL when out of memory. */
char *enroll_cert_expiring_json(int64_t now_ms, int64_t warning_ms);
/* Prometheus lines: the collector's own certificates' and every terminal's not-after, and the
 * enrollment counters. */
void enroll_metrics_write(FILE *f);
