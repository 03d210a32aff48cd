/* SPDX-License-Identifier: MIT */
/* mynaguardd monitor/worker channel: the checks every request passes before the monitor acts. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bundle.h"
#include "priv.h"

static const char *const op_names[_PRIV_OP_MAX] = {
    [PRIV_USB_AUTHORIZE] = "usb-authorize",
    [PRIV_USB_PROBE] = "usb-probe",
    [PRIV_USB_DEFAULT_DENY] = "usb-default-deny",
    [PRIV_SPOOL_OPEN] = "spool-open",
    [PRIV_SPOOL_APPEND] = "spool-append",
    [PRIV_SPOOL_TRIM_ACKED] = "spool-trim-acked",
    [PRIV_SPOOL_SYNC] = "spool-sync",
    [PRIV_SPOOL_CLOSE] = "spool-close",
    [PRIV_SEQ_READ] = "seq-read",
    [PRIV_SEQ_WRITE] = "seq-write",
    [PRIV_PENDING_READ] = "pending-read",
    [PRIV_PENDING_DONE] = "pending-done",
    [PRIV_PENDING_DROPS_READ] = "pending-drops-read",
    [PRIV_PENDING_DROPS_CLEAR] = "pending-drops-clear",
    [PRIV_CHECK_RUN] = "check-run",
    [PRIV_READY] = "ready",
    [PRIV_BUNDLE_READ] = "bundle-read",
    [PRIV_BUNDLE_INSTALL] = "bundle-install",
    [PRIV_TIME_FLOOR_READ] = "time-floor-read",
    [PRIV_TIME_FLOOR_WRITE] = "time-floor-write",
    [PRIV_TOTP_INSTALL] = "totp-install",
    [PRIV_TOTP_PRUNE] = "totp-prune",
    [PRIV_TOTP_RECOVERY] = "totp-recovery",
};

const char *priv_op_name(uint32_t op)
{
	return op > 0 && op < _PRIV_OP_MAX ? op_names[op] : "unknown";
}

/* 1 to 3 decimal digits at *p; advances p. */
static bool number(const char **p)
{
	size_t n = 0;

	while (n < 3 && (*p)[n] >= '0' && (*p)[n] <= '9')
		n++;
	if (n == 0)
		return false;
	*p += n;
	return true;
}

int priv_name_kind(const char *name)
{
	const char *p = name;

	if (strncmp(p, "usb", 3) == 0) {
		p += 3;
		return number(&p) && *p == 0 ? 'r' : 0;
	}
	if (!number(&p) || *p++ != '-' || !number(&p))
		return 0;
	while (*p == '.') {
		p++;
		if (!number(&p))
			return 0;
	}
	if (*p == 0)
		return 'd';
	if (*p++ != ':' || !number(&p) || *p++ != '.' || !number(&p))
		return 0;
	return *p == 0 ? 'i' : 0;
}

bool priv_check_root_only(int check)
{
	return check == POLICY_CHECK_USB_DEFAULT_DENY || check == POLICY_CHECK_MFA_ENROLLMENT ||
	       check == POLICY_CHECK_AGENT_INTEGRITY;
}

int priv_req_decode(const void *buf, size_t n, const struct priv_req **ret,
		    const uint8_t **ret_payload)
{
	const struct priv_req *q = buf;
	size_t max_payload = 0;
	int kind = 0;

	if (!buf || n < sizeof(*q) || n > PRIV_REQ_MAX)
		return -EBADMSG;
	if (q->op == 0 || q->op >= _PRIV_OP_MAX || q->pad != 0)
		return -EBADMSG;
	if (q->len != n - sizeof(*q))
		return -EBADMSG;
	if (!memchr(q->name, 0, sizeof(q->name)))
		return -EBADMSG;
	switch ((enum priv_op)q->op) {
	case PRIV_USB_AUTHORIZE:
		kind = priv_name_kind(q->name);
		if ((kind != 'd' && kind != 'i') || q->arg > 1)
			return -EBADMSG;
		break;
	case PRIV_USB_PROBE:
		if (priv_name_kind(q->name) != 'i')
			return -EBADMSG;
		break;
	case PRIV_USB_DEFAULT_DENY:
		if (priv_name_kind(q->name) != 'r')
			return -EBADMSG;
		break;
	case PRIV_SPOOL_APPEND:
		max_payload = PRIV_PAYLOAD_MAX;
		if (q->len == 0 || q->arg >= _SPOOL_CLASS_MAX)
			return -EBADMSG;
		break;
	case PRIV_PENDING_DONE:
		if (q->arg > 1)
			return -EBADMSG;
		break;
	case PRIV_CHECK_RUN:
		if (q->arg >= _POLICY_CHECK_MAX || !priv_check_root_only((int)q->arg))
			return -EBADMSG;
		break;
	case PRIV_BUNDLE_READ:
		if (q->arg > PRIV_BUNDLE_CURRENT)
			return -EBADMSG;
		break;
	case PRIV_BUNDLE_INSTALL:
		if (q->arg != 0 || q->len != PRIV_SHA256_LEN)
			return -EBADMSG;
		max_payload = PRIV_SHA256_LEN;
		break;
	case PRIV_TIME_FLOOR_WRITE:
		if (q->arg != 0 || q->u64 > INT64_MAX)
			return -EBADMSG;
		break;
	case PRIV_TOTP_INSTALL:
	case PRIV_TOTP_RECOVERY: {
		const uint8_t *p = (const uint8_t *)buf + sizeof(*q);
		max_payload = 1 + BUNDLE_TOTP_USER_MAX + BUNDLE_SEALED_MAX;
		if (q->arg != 0 || q->u64 == 0 || q->u64 >= BUNDLE_RECOVERY_GEN || q->len < 2 ||
		    (size_t)p[0] + 1 >= q->len || q->len - 1 - p[0] > BUNDLE_SEALED_MAX ||
		    !bundle_totp_user_valid((const char *)p + 1, p[0]))
			return -EBADMSG;
		break;
	}
	case PRIV_TOTP_PRUNE:
		if (q->arg != 0)
			return -EBADMSG;
		break;
	case PRIV_TIME_FLOOR_READ:
	case PRIV_SPOOL_OPEN:
	case PRIV_SPOOL_SYNC:
	case PRIV_SPOOL_TRIM_ACKED:
	case PRIV_SPOOL_CLOSE:
	case PRIV_SEQ_READ:
	case PRIV_SEQ_WRITE:
	case PRIV_PENDING_READ:
	case PRIV_PENDING_DROPS_READ:
	case PRIV_PENDING_DROPS_CLEAR:
	case PRIV_READY:
		break;
	case _PRIV_OP_MAX:
		return -EBADMSG;
	}
	if (q->len > max_payload)
		return -EBADMSG;
	/* Ops without a name must not carry one either. */
	if (kind == 0 && q->op != PRIV_USB_PROBE && q->op != PRIV_USB_DEFAULT_DENY && q->name[0])
		return -EBADMSG;
	*ret = q;
	if (ret_payload)
		*ret_payload = (const uint8_t *)buf + sizeof(*q);
	return 0;
}
