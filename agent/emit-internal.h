/* SPDX-License-Identifier: MIT */
/* Between emit.c and evsock.c only (mynaguardd, root): emitting with a given time, group commit. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "agent.h"
#include "spool.h"

/* Like agent_emit, but with the event's own time (ts_ms > 0; 0 = now) and, with sync false,
 * without the fdatasync: the caller must call agent_emit_flush before it relies on durability
 * (group commit for a burst of datagrams). */
int64_t agent_emit_at(struct agent *a, enum event_kind kind, int64_t ts_ms, json_t *clauses,
		      json_t *data, bool sync);
/* The same with the spool class of the record (agent_emit_at: SPOOL_CLASS_PROTECTED). An
 * unprivileged record that does not fit its share returns -ENOSPC; it is counted and announced
 * in a spool.dropped event (at once, then at most every 10 s, and at stop). */
int64_t agent_emit_class(struct agent *a, enum event_kind kind, int64_t ts_ms, enum spool_class cls,
			 json_t *clauses, json_t *data, bool sync);
/* Sync, announce refused records, let the spool delete what the uplink acknowledged. (Also
 * without events: emit.c watches SPOOL/ack with inotify and arms a one-shot timer for a
 * deferred announcement.) */
int agent_emit_flush(struct agent *a);

/* Emit what the PAM module left in STATE/totp/.pending-events (when the socket was down or its
 * queue full), then empty the file. Called by evsock.c right after the socket is bound (so no
 * datagram falls between the two) and whenever inotify reports that the file changed. */
void agent_emit_collect_pending(struct agent *a);

/* Clause ids of the authentication events ("2-6-3-a", "2-3-1"), new reference. */
json_t *agent_emit_auth_clauses(void);
