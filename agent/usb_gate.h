/* SPDX-License-Identifier: MIT */
/* The USB gate of mynaguardd: udev monitor + coldplug scan → policy → sysfs writes → events. */
#pragma once

#include "loop.h"

/* Enable the udev monitor, then scan every present device (so nothing plugged during the scan
 * is missed; events queued meanwhile are deduplicated), then watch the monitor in the loop. */
int usb_gate_start(struct agent *a);
/* Decide every present device again (after the policy was reloaded). */
void usb_gate_rescan(struct agent *a);
void usb_gate_stop(struct agent *a);
/* Interfaces authorized by a fleet exception that is no longer in force (expired by the trusted
 * clock, or dropped by a newer bundle): deauthorize them now, one usb.exception_expired or
 * usb.exception_revoked event each. */
void usb_gate_recheck_exceptions(struct agent *a);
