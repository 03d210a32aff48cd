/* SPDX-License-Identifier: MIT */
/* Fuzz target: mynaguardd's monitor (root) decoding and serving one request from the worker
 * (which a memory bug in parsing may have handed to an attacker). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[PRIV_RESP_MAX];
	const struct priv_req *q;
	const uint8_t *payload;
	struct priv_resp resp;
	struct policy *policy = NULL;
	const struct priv_monitor_config cfg = {
	    .sysfs_root = "/nonexistent-mynaguard-fuzz",
	    .spool_dir = "/nonexistent-mynaguard-fuzz/spool",
	    .state_dir = "/nonexistent-mynaguard-fuzz/state",
	    .policy_path = "/nonexistent-mynaguard-fuzz/policy.conf",
	    .policy = &policy,
	};
	/* The request as it arrives: copied, so the decoder may assume nothing of alignment. */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);

	if (priv_req_decode(buf, size, &q, &payload) == 0) {
		if (q->op == 0 || q->op >= _PRIV_OP_MAX || q->len != size - sizeof(*q) ||
		    q->len > PRIV_PAYLOAD_MAX)
			abort();
		if ((q->op == PRIV_USB_AUTHORIZE || q->op == PRIV_USB_PROBE ||
		     q->op == PRIV_USB_DEFAULT_DENY) &&
		    (strchr(q->name, '/') || strstr(q->name, "..") || !priv_name_kind(q->name)))
			abort();
	}
	struct priv_monitor *m = priv_monitor_new(&cfg);
	if (m) {
		/* Every request is served or refused; none touches anything outside the
		 * nonexistent roots. PRIV_CHECK_RUN needs a policy: left to the unit tests. */
		if (size < sizeof(struct priv_req) ||
		    ((const struct priv_req *)buf)->op != PRIV_CHECK_RUN) {
			priv_monitor_handle(m, buf, size, &resp, out);
			if (resp.status >= 0 && resp.len > PRIV_PENDING_CHUNK)
				abort();
		}
		priv_monitor_free(m);
	}
	free(buf);
	return 0;
}
