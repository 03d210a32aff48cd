/* SPDX-License-Identifier: MIT */
/* mynaguardd's own internals beside agent.h: the agent struct, the epoll main loop, the gate. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent.h"

struct agent_loop;

struct agent {
	struct agent_paths paths;
	struct policy *policy;
	struct agent_loop *loop;
	bool foreground;
	/* The worker's identity (main.c): change_user false = keep the uid (not root, or root
	 * without the agent user: then only the capabilities go). */
	bool change_user;
	uid_t worker_uid;
	gid_t worker_gid;
	int ack_ino; /* inotify on SPOOL/ack, taken as root before the split (emit.c) */
	struct agent_emit *emit;
	struct agent_evsock *evsock;
	struct agent_checks *checks;
	struct agent_usb *usb;
	struct agent_notify *notify; /* the desktop notice socket (notify.c) */
	/* The fleet channel (fleet.c, tclock.c): the pinned root key (--fleet-key), the inotify
	 * watch on SPOOL/inbox taken as root before the split, the worker's state. */
	bool have_fleet_key;
	uint8_t fleet_key[32];
	int inbox_ino;
	struct agent_fleet *fleet;
	struct agent_tclock *tclock;
};

/* Re-read the policy file and decide every present device again (SIGHUP, and after the monitor
 * installed a fleet bundle). A bad file is refused and the old policy stays. main.c. */
void agent_reload_policy(struct agent *a);

/* Called on SIGHUP from the loop. */
typedef void (*agent_reload_fn)(struct agent *a);

/* Blocks SIGTERM, SIGINT, SIGHUP (they arrive through a signalfd) and ignores SIGPIPE. */
int agent_loop_new(struct agent_loop **ret);
void agent_loop_free(struct agent_loop *l);
/* In a forked child: a new epoll instance and signalfd with the same watches (an inherited
 * epoll instance is shared with the parent, and a signalfd wakes the process that added it). */
int agent_loop_reopen(struct agent_loop *l);
/* Run until SIGTERM/SIGINT; returns the signal number that stopped it, or -errno. */
int agent_loop_run(struct agent *a, agent_reload_fn on_reload);
