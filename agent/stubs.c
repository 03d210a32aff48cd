/* SPDX-License-Identifier: MIT */
/* mynaguardd placeholders for the parts whose files have not landed yet (emit.c, evsock.c,
 * checks.c); meson compiles each section only while the real file is missing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent.h"

#if AGENT_STUB_EMIT
/* The placeholder counter lives in the emit slot, like the real emit state would. */
struct agent_emit {
	int64_t seq;
};

static const char *stub_kind_name(enum event_kind k)
{
	switch (k) {
	case EVENT_USB_BLOCKED:
		return "usb.blocked";
	case EVENT_USB_ALLOWED:
		return "usb.allowed";
	case EVENT_USB_REMOVED:
		return "usb.removed";
	case EVENT_AUTH_SUCCESS:
		return "auth.success";
	case EVENT_AUTH_FAILURE:
		return "auth.failure";
	case EVENT_AUTH_REPLAY:
		return "auth.replay";
	case EVENT_AUTH_LOCKED:
		return "auth.locked";
	case EVENT_AGENT_STARTED:
		return "agent.started";
	case EVENT_AGENT_STOPPED:
		return "agent.stopped";
	case EVENT_SPOOL_DROPPED:
		return "spool.dropped";
	case EVENT_COMPLIANCE:
		return "compliance";
	case _EVENT_KIND_MAX:
		break;
	}
	return "unknown";
}

int agent_emit_init(struct agent *a)
{
	struct agent_emit *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	*agent_emit_slot(a) = e;
	return 0;
}

void agent_emit_done(struct agent *a)
{
	free(*agent_emit_slot(a));
	*agent_emit_slot(a) = NULL;
}

int64_t agent_emit(struct agent *a, enum event_kind kind, json_t *clauses, json_t *data)
{
	struct agent_emit *e = *agent_emit_slot(a);
	char *text = data ? json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	int64_t seq = e ? e->seq++ : 0;

	fprintf(stderr, "event seq=%lld kind=%s data=%s\n", (long long)seq, stub_kind_name(kind),
		text ? text : "{}");
	free(text);
	json_decref(clauses);
	json_decref(data);
	return seq;
}
#endif

#if AGENT_STUB_EVSOCK
int agent_evsock_init(struct agent *a)
{
	(void)a;
	return 0;
}

void agent_evsock_done(struct agent *a)
{
	(void)a;
}
#endif

#if AGENT_STUB_CHECKS
int agent_checks_init(struct agent *a)
{
	(void)a;
	return 0;
}

void agent_checks_done(struct agent *a)
{
	(void)a;
}
#endif
