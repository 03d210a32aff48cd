/* SPDX-License-Identifier: MIT */
/* mynaguardd's side of the fleet channel (docs/fleet.md): the bundle in SPOOL/inbox, checked by
 * the worker and installed by the monitor; the exceptions it carries; the trusted clock. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "loop.h"
#include "policy.h"

/* ---- the trusted clock (tclock.c) ---- */

/* Read the persisted floor (through the monitor) and write it back every few minutes. */
int tclock_init(struct agent *a);
void tclock_done(struct agent *a);
/* max(wall clock, floor advanced by CLOCK_BOOTTIME since it was taken), unix seconds. */
int64_t tclock_now(struct agent *a);
/* Write the floor through the monitor: when force, or when the last write is a few minutes old. */
void tclock_persist(struct agent *a, bool force);

/* ---- the bundle and its exceptions (fleet.c) ---- */

/* Before the split, as root (after agent_emit_watch_ack made SPOOL/inbox): the inotify watch on
 * SPOOL/inbox. */
int agent_fleet_watch_inbox(struct agent *a);
/* In the worker, once events can be stored: reload the installed bundle's exceptions, follow
 * the inbox, take what arrived while the agent was down. */
int agent_fleet_init(struct agent *a);
/* After the USB gate started: take a bundle that arrived while the agent was down. */
void agent_fleet_start(struct agent *a);
void agent_fleet_done(struct agent *a);

/* An exception that authorizes an interface of dev blocked by the block entry `block` (of the
 * installed policy): when an exception in force (trusted now, the users list) opens that entry
 * (bundle_exception_opens) for this device, returns it and writes the rule text
 * "exception ID: until YYYY-MM-DD" into rule. NULL otherwise. */
struct bundle_exception;
const struct bundle_exception *agent_fleet_exception_for(struct agent *a,
							 const struct policy_usb_device *dev,
							 const struct policy_usb_class *block,
							 char *rule, size_t rule_size);
/* Whether the exception with this id is still in force for dev: 1 yes, 0 expired (or not yet
 * in force), -1 no longer in the bundle (revoked), -2 not for the active local session's user. */
int agent_fleet_exception_state(struct agent *a, const char *id,
				const struct policy_usb_device *dev);
/* data.exception for a usb.* event: {id, until, users, purpose, approved_by, ledger}. */
json_t *agent_fleet_exception_json(struct agent *a, const char *id);
/* data.bundle of the compliance snapshot, NULL when no bundle was ever applied. */
json_t *agent_fleet_bundle_json(struct agent *a);
