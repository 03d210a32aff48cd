/* SPDX-License-Identifier: MIT */
/* mynaguardd's desktop notice socket (docs/fleet.md, "Requests and the desktop notice"): bound
 * by main before the split, served by the worker, removed by the monitor. */
#pragma once

#include <jansson.h>

#include "loop.h"

#define NOTIFY_MAX_CLIENTS  32	 /* connections in all */
#define NOTIFY_MAX_PER_UID  4	 /* connections of one user (one per session, and some spare) */
#define NOTIFY_CLIENT_QUEUE 8192 /* unread bytes a client may leave before it counts as slow */

/* As root, before the split: bind --notify-socket (SOCK_SEQPACKET, mode 0666), listen, and
 * watch it in the loop. A failure is the caller's to log: the agent runs on without notices. */
int agent_notify_init(struct agent *a);
/* The worker at stop: close every client and the socket (the path stays: the monitor's). */
void agent_notify_done(struct agent *a);
/* The monitor after the worker ended: remove the path while it is still our socket, free. */
void agent_notify_forget(struct agent *a);

/* A usb.blocked event's data (the gate's, before agent_emit): add data.request_code, computed
 * from the terminal id and what data carries (vendor, product, serial), and, unless the policy
 * is in audit mode, send the notice to every connected client. Never blocks, never fails the
 * event. */
void agent_notify_usb_blocked(struct agent *a, json_t *data);
