/* SPDX-License-Identifier: MIT */
/* mynaguardd's privilege separation: the requests the unprivileged, seccomp-filtered worker sends
 * to the privileged monitor over a SOCK_SEQPACKET socketpair, and both ends of that channel.
 * Fixed-size binary messages, length-checked; no text is parsed on the monitor's side.
 * See docs/ARCHITECTURE.md, "mynaguardd: monitor and worker". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "compliance.h"
#include "event.h"
#include "spool.h"

struct agent;

enum priv_op {
	PRIV_USB_AUTHORIZE = 1, /* name = device or interface, arg = 0/1 */
	PRIV_USB_PROBE,		/* name = interface: write it to bus/usb/drivers_probe */
	PRIV_USB_DEFAULT_DENY,	/* name = root hub "usbN": interface_authorized_default=0 */
	PRIV_SPOOL_OPEN,	/* u64 = max_bytes */
	PRIV_SPOOL_APPEND,	/* u64 = seq, arg = enum spool_class, payload = one encoded event */
	PRIV_SPOOL_SYNC,	/* */
	PRIV_SPOOL_CLOSE,	/* sync and close */
	PRIV_SEQ_READ,		/* STATE/seq → u64 (0 when missing) */
	PRIV_SEQ_WRITE,		/* u64 → STATE/seq */
	PRIV_PENDING_READ,	/* u64 = offset: a chunk of STATE/totp/.pending-events */
	PRIV_PENDING_DONE,	/* arg = 1: truncate it; unlock and close */
	PRIV_PENDING_DROPS_READ,  /* raw bytes of STATE/totp/.pending-events.dropped */
	PRIV_PENDING_DROPS_CLEAR, /* unlink it */
	PRIV_CHECK_RUN,		  /* arg = enum policy_check (priv_check_root_only) */
	PRIV_READY,		  /* the worker follows udev events: print READY, sd_notify */
	PRIV_SPOOL_TRIM_ACKED,	  /* read SPOOL/ack/acked, delete what it acknowledges */
	PRIV_BUNDLE_READ,      /* arg = enum priv_bundle_src, u64 = offset: a chunk of a snapshot */
	PRIV_BUNDLE_INSTALL,   /* u64 = body version, payload = SHA-256 of the checked bytes */
	PRIV_TIME_FLOOR_READ,  /* STATE/time-floor → raw bytes (the worker parses them) */
	PRIV_TIME_FLOOR_WRITE, /* u64 = unix seconds → STATE/time-floor, never lowered */
	PRIV_TOTP_INSTALL,     /* u64 = gen, payload = u8 n, user (n bytes), sealed secret */
	PRIV_TOTP_PRUNE,       /* remove central TOTP records the installed bundle no longer has */
	PRIV_TOTP_RECOVERY,    /* u64 = rid, payload as PRIV_TOTP_INSTALL: a recovery code */
	_PRIV_OP_MAX,
};

/* The two files PRIV_BUNDLE_READ may read (docs/fleet.md). */
enum priv_bundle_src {
	PRIV_BUNDLE_INBOX = 0,	 /* SPOOL/inbox/bundle, written by the uplink */
	PRIV_BUNDLE_CURRENT = 1, /* STATE/bundle/current, the installed one */
};

#define PRIV_NAME_MAX	   64 /* a sysfs USB name, NUL-terminated */
#define PRIV_SHA256_LEN	   32
#define PRIV_PENDING_CHUNK (32 * 1024)
#define PRIV_PAYLOAD_MAX   EVENT_MAX_BYTES
#define PRIV_DROPS_MAX	   64

struct priv_req {
	uint32_t op;
	uint32_t arg;
	uint64_t u64;
	uint32_t len; /* payload bytes after this header */
	uint32_t pad;
	char name[PRIV_NAME_MAX];
};

struct priv_resp {
	int32_t status; /* >= 0 or -errno */
	uint32_t len;	/* payload bytes after this header */
	uint64_t v[3];	/* spool: next_seq, last_seq, bytes; seq/pending: value, total */
};

/* What a spool response's payload holds. */
struct priv_spool_info {
	struct spool_recovery recovery; /* PRIV_SPOOL_OPEN */
	struct spool_drop drop;		/* PRIV_SPOOL_APPEND */
	struct spool_trim trim;		/* PRIV_SPOOL_TRIM_ACKED */
};

#define PRIV_REQ_MAX  (sizeof(struct priv_req) + PRIV_PAYLOAD_MAX)
#define PRIV_RESP_MAX (sizeof(struct priv_resp) + PRIV_PENDING_CHUNK)

/* ---- pure parts (priv-proto.c; unit-tested and fuzzed) ---- */

/* A name the monitor accepts: "B-P[.P...]" (device), "B-P[.P...]:C.I" (interface) or "usbN"
 * (root hub), numbers of at most 3 digits. Returns 'd', 'i', 'r' or 0 when refused. */
int priv_name_kind(const char *name);
/* Check one received request (n bytes in buf): the header's size, op, name (NUL-terminated and
 * valid where the op takes one), arg range and payload length (== n - header, within the op's
 * limit). 0 when acceptable, -EBADMSG otherwise; *ret points into buf. */
int priv_req_decode(const void *buf, size_t n, const struct priv_req **ret,
		    const uint8_t **ret_payload);
const char *priv_op_name(uint32_t op);
/* The compliance checks that read root-only files (the install manifest in STATE, the TOTP
 * store, files other users own): usb.default_deny, mfa.enrollment, agent.integrity. The monitor
 * runs them (PRIV_CHECK_RUN) and refuses every other. */
bool priv_check_root_only(int check);

/* ---- monitor (priv.c; root) ---- */

struct priv_monitor_config {
	const char *sysfs_root;
	const char *spool_dir;
	const char *state_dir;
	const char *policy_path;
	struct policy *
	    *policy; /* the monitor's copy, for the root-only checks; reloaded on SIGHUP */
	/* The pinned fleet root key (--fleet-key); without one PRIV_BUNDLE_INSTALL is refused. */
	bool have_fleet_key;
	uint8_t fleet_key[32];
	void (*on_ready)(void);	   /* the worker sent PRIV_READY */
	void (*on_stopping)(void); /* SIGTERM or SIGINT arrived */
};
/* Serve requests on fd until the worker closes its end or dies. Returns 0 after a clean worker
 * exit, or -errno. pid: the worker (signals are forwarded to it). */
int priv_monitor_run(const struct priv_monitor_config *cfg, int fd, pid_t worker);

/* One request, the monitor's way (used by priv_monitor_run; exported for the tests). Writes the
 * response into resp (payload after it, at most PRIV_PENDING_CHUNK bytes). */
struct priv_monitor;
struct priv_monitor *priv_monitor_new(const struct priv_monitor_config *cfg);
void priv_monitor_free(struct priv_monitor *m);
void priv_monitor_handle(struct priv_monitor *m, const void *req, size_t n, struct priv_resp *resp,
			 uint8_t *payload);

/* ---- worker side (privclient.c) ---- */

/* The channel to the monitor; -1 when running without one (only the tests of single pieces). */
void priv_client_set_fd(int fd);
int priv_usb_authorize(const char *name, bool on);
int priv_usb_probe(const char *name);
int priv_usb_default_deny(const char *name);
int priv_seq_read(uint64_t *ret);
int priv_seq_write(uint64_t v);
/* The PAM fallback file: its whole content (bounded by the monitor), locked until done. */
int priv_pending_read(char **ret, size_t *ret_len);
int priv_pending_done(bool truncate);
int priv_pending_drops_read(char *buf, size_t size);
int priv_pending_drops_clear(void);
int priv_check_run(int check, struct compliance_result *ret);
int priv_ready(void);
/* A whole bundle file (≤ BUNDLE_MAX_BYTES) from one snapshot the monitor took; -ENOENT when
 * there is none. *ret is malloc'd. */
int priv_bundle_read(enum priv_bundle_src src, uint8_t **ret, size_t *ret_len);
/* Install SPOOL/inbox/bundle if it still hashes to sha256 and passes the monitor's own checks. */
int priv_bundle_install(uint64_t version, const uint8_t sha256[PRIV_SHA256_LEN]);
/* Central TOTP (docs/fleet.md): install user's sealed secret of generation gen into the TOTP
 * store, if the installed bundle carries exactly this entry and it opens with the terminal's
 * key. 1 = installed, 0 = that generation (or a newer one) is there already. */
int priv_totp_install(const char *user, uint64_t gen, const uint8_t *sealed, size_t len);
/* The same for a helpdesk recovery code (the "totp_recovery" list): STORE/.USER.recovery. */
int priv_totp_recovery(const char *user, uint64_t rid, const uint8_t *sealed, size_t len);
/* Remove the central records whose user the installed bundle no longer carries; their names
 * ('\0'-separated) go to buf. Returns how many were removed. */
int priv_totp_prune(char *buf, size_t size, size_t *ret_len);
/* The persisted trusted-time floor (0 when none); writing never lowers it. */
int priv_time_floor_read(int64_t *ret);
int priv_time_floor_write(int64_t v);

/* The spool, through the monitor: mirrors event/spool.h's spool_writer_* (dir must be the
 * directory the monitor was started with). */
struct priv_spool;
int priv_spool_open(const char *dir, uint64_t max_bytes, struct priv_spool **ret,
		    struct spool_recovery *ret_info);
void priv_spool_free(struct priv_spool *w);
uint64_t priv_spool_next_seq(const struct priv_spool *w);
uint64_t priv_spool_last_seq(const struct priv_spool *w);
uint64_t priv_spool_bytes(const struct priv_spool *w);
int priv_spool_append(struct priv_spool *w, uint64_t seq, enum spool_class cls, const void *payload,
		      size_t len, struct spool_drop *ret_drop);
int priv_spool_trim_acked(struct priv_spool *w, struct spool_trim *ret);
int priv_spool_sync(struct priv_spool *w);

/* ---- the worker's sandbox (sandbox.c) ---- */

/* Drop to uid/gid (change_user false: keep the uid; uid 0 then loses every capability all the
 * same), set the parent-death signal (monitor: the pid of the parent before the fork), set
 * no_new_privs and install the seccomp filter. Returns 0 or -errno (the caller exits). */
int priv_sandbox_enter(uid_t uid, gid_t gid, bool change_user, pid_t monitor);
