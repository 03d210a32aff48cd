/* SPDX-License-Identifier: MIT */
/* The policy file: data model, strict parser (libinih) and the USB matcher. Never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define POLICY_MAX_FILE_SIZE	   (1024 * 1024)
#define POLICY_MAX_LINE		   1024
#define POLICY_MAX_ALLOW	   1024
#define POLICY_MAX_BLOCK	   64
#define POLICY_MAX_SERVICES	   32
#define POLICY_MAX_ERRORS	   100
#define POLICY_TERMINAL_ID_MAX	   64
#define POLICY_SERIAL_MAX	   126 /* a USB string descriptor holds at most 126 UTF-16 units */
#define POLICY_FLEET_GROUP_MAX	   64
#define POLICY_FLEET_TERMINALS_MAX 1024
#define POLICY_FLEET_KEY_LEN	   32 /* an Ed25519 public key */

/* Compliance checks that [checks] can switch on or off (ids as in policy-clauses.md). */
enum policy_check {
	POLICY_CHECK_USB_DEFAULT_DENY,
	POLICY_CHECK_USB_NO_UNAPPROVED_STORAGE,
	POLICY_CHECK_MFA_PAM_STACK,
	POLICY_CHECK_MFA_ENROLLMENT,
	POLICY_CHECK_TIME_SYNCHRONIZED,
	POLICY_CHECK_AGENT_INTEGRITY,
	POLICY_CHECK_NET_ISOLATION,
	_POLICY_CHECK_MAX,
};

/* "usb.default_deny" etc. */
const char *policy_check_id(enum policy_check c);
/* NULL-terminated list of clause ids, e.g. {"2-6-3-a", "2-3-2", NULL}. */
const char *const *policy_check_clauses(enum policy_check c);
/* -EINVAL for an unknown id. */
int policy_check_from_id(const char *id, enum policy_check *ret);
/* Whether [checks] enables it when the file does not say (all but net.isolation). */
bool policy_check_default(enum policy_check c);

enum policy_usb_mode {
	POLICY_USB_ENFORCE,
	POLICY_USB_AUDIT,
};

/* One blocked interface class. subclass/protocol -1 = any. mtp: matches MTP interfaces
 * (vendor class with an "MTP" interface string, or udev's ID_MTP_DEVICE) instead of a class. */
struct policy_usb_class {
	int16_t cls;
	int16_t subclass;
	int16_t protocol;
	bool mtp;
	char name[24]; /* as written or canonical name, e.g. "mass_storage" or "e0:01:03" */
};

/* One allow-list entry:
 * "allow = VVVV:PPPP [serial=S] [hash=sha256:HEX] [ledger=NUMBER] [name=TEXT]" */
struct policy_usb_allow {
	uint16_t vendor;
	uint16_t product;
	char *serial; /* NULL = any serial */
	/* NULL = any; else 64 lowercase hex chars (SHA-256 of descriptors) */
	char *descriptor_hash;
	char *name; /* free text for humans, may be NULL */
	/* the medium's registration number in the ledger (記録媒体管理台帳), may be NULL:
	 * [A-Za-z0-9._-]{1,32}, as the collector's ledger */
	char *ledger;
	unsigned line; /* where it was written */
};

struct policy {
	char *path; /* file it was read from */

	/* [terminal] */
	char *terminal_id; /* required (but refused in a base); [A-Za-z0-9._-], 1..64 */
	char *description;
	char *terminal_contact; /* whom a clerk asks (desktop notice, lockout message); optional */

	/* [usb] */
	enum policy_usb_mode usb_mode;			     /* default enforce */
	struct policy_usb_class usb_block[POLICY_MAX_BLOCK]; /* default: mass_storage */
	size_t n_usb_block;
	struct policy_usb_allow *usb_allow; /* repeatable key */
	size_t n_usb_allow;
	/* "reader = ..." (same syntax as allow): card and NFC readers whose vendor-specific (ff)
	 * interfaces are authorized even when a block entry matches them; MTP never is. */
	struct policy_usb_allow *usb_readers;
	size_t n_usb_readers;
	/* refuse usb-storage/uas modules when no storage is allowed; default no */
	bool usb_strict_modprobe;

	/* [mfa] */
	char *mfa_services[POLICY_MAX_SERVICES]; /* default: login, gdm-password, sshd */
	size_t n_mfa_services;
	unsigned mfa_window;	   /* time steps accepted either side of now; default 1, 0..10 */
	unsigned mfa_step;	   /* TOTP period in seconds; default 30 */
	unsigned mfa_digits;	   /* 6 (default), 7 or 8 */
	unsigned mfa_max_failures; /* consecutive failures before lockout; default 5, 1..100 */
	uint64_t mfa_lockout_sec;  /* default 900 (15m) */
	bool mfa_nullok;	   /* default no */

	/* [report] */
	char *report_collector; /* https:// URL; required for the uplink, optional otherwise */
	char *report_ca;	/* default /etc/mynaguard/tls/ca.pem */
	char *report_cert;	/* default /etc/mynaguard/tls/terminal.pem */
	char *report_key;	/* default /etc/mynaguard/tls/terminal.key */
	uint64_t report_interval_sec; /* compliance interval; default 900 (15m) */
	uint64_t report_spool_max;    /* bytes; default 64M */
	unsigned report_batch_max;    /* events per upload; default 500 */

	/* [checks] */
	bool checks_enabled[_POLICY_CHECK_MAX]; /* default: all on except net.isolation */
	uid_t checks_min_uid;	 /* users from this uid up are "interactive"; default 1000 */
	char *checks_pam_dir;	 /* default /etc/pam.d */
	char *checks_sysfs_root; /* default / (tests point it at a fixture tree) */

	/* [fleet] (docs/fleet.md): present in a group's base policy and in the policy installed
	 * from it. When fleet is true, group, version, issued, terminals and grant_key are set. */
	bool fleet;
	char *fleet_group;	/* [A-Za-z0-9._-]{1,64} */
	uint64_t fleet_version; /* 1..INT64_MAX */
	int64_t fleet_issued;	/* RFC 3339 UTC ("2026-12-01T09:00:00Z") as unix seconds */
	char **fleet_terminals; /* terminal ids or fnmatch(3) globs */
	size_t n_fleet_terminals;
	uint8_t fleet_grant_key[POLICY_FLEET_KEY_LEN]; /* the collector's grant public key */
	bool has_fleet_grant_key;
	/* block entries an exception may open (same syntax as [usb] block); default none */
	struct policy_usb_class fleet_grant_classes[POLICY_MAX_BLOCK];
	size_t n_fleet_grant_classes;
	unsigned fleet_grant_max_days; /* longest exception, 1..3660; default 366 */
};

/* One error: "FILE:LINE: message". line 0 = about the whole file (e.g. a missing key). */
struct policy_error {
	unsigned line;
	char message[200];
};

struct policy_errors {
	char *path;
	struct policy_error items[POLICY_MAX_ERRORS];
	size_t n;
	size_t n_dropped; /* errors beyond POLICY_MAX_ERRORS */
};

/* A policy with every default and no terminal id. */
int policy_new_default(struct policy **ret);
void policy_free(struct policy *p);
static inline void policy_freep(struct policy **p)
{
	policy_free(*p);
}
#define _cleanup_policy_ __attribute__((cleanup(policy_freep)))

/* Parse text (len bytes, need not be NUL-terminated). path names it in errors.
 * On success returns 0 and *ret; on any error -EINVAL with every error in *errs (when not NULL),
 * -EFBIG when len > POLICY_MAX_FILE_SIZE (one error at line 0), or -ENOMEM.
 * errs must be zero-initialized before its first use ({0}); each parse clears it first. */
int policy_parse_string(const char *path, const char *text, size_t len, struct policy **ret,
			struct policy_errors *errs);

/* Parse a group's base policy (docs/fleet.md): as policy_parse_string, but [fleet] is required
 * and [terminal] id is refused (the terminal's id is put in when it is installed). */
int policy_parse_base(const char *path, const char *text, size_t len, struct policy **ret,
		      struct policy_errors *errs);

/* Whether base's [fleet] terminals names terminal_id (an id or an fnmatch(3) glob matches).
 * false without a [fleet] section or for an id outside [A-Za-z0-9._-]{1,64}. */
bool policy_fleet_covers(const struct policy *base, const char *terminal_id);

/* The policy file a terminal installs from a base: the base text with "id = TERMINAL" put into
 * [terminal], right after its header line, or a "[terminal]" + id block put first when the base
 * has no [terminal] section (after a UTF-8 BOM, if any). Nothing else of the text changes. The
 * result is checked to parse (policy_parse_string) with that id. *ret is malloc'd and
 * NUL-terminated. -EINVAL for a bad id or a base that is not a valid base policy. */
int policy_install_text(const char *base, size_t len, const char *terminal_id, char **ret,
			size_t *ret_len);

/* Strict base64 of exactly 32 bytes (44 characters, one '=' of padding, no white space): the
 * public keys of the fleet channel. 0 or -EINVAL. */
int policy_key_from_base64(const char *b64, uint8_t ret[POLICY_FLEET_KEY_LEN]);

/* Read (at most POLICY_MAX_FILE_SIZE) and parse. An unreadable file is one error at line 0
 * and returns its -errno. */
int policy_load(const char *path, struct policy **ret, struct policy_errors *errs);

/* Format error i as "FILE:LINE: message" (or "FILE: message" for line 0) into buf. */
void policy_error_format(const struct policy_errors *errs, size_t i, char *buf, size_t size);
void policy_errors_clear(struct policy_errors *errs);

/* ---- The USB matcher: a pure function, no I/O. ---- */

/* What the agent knows of a device. Strings may be NULL (missing); they are compared byte-wise. */
struct policy_usb_device {
	uint16_t vendor;
	uint16_t product;
	const char *serial;
	const char *descriptor_hash; /* lowercase hex SHA-256 of the descriptors, or NULL */
	bool mtp;		     /* udev said ID_MTP_DEVICE=1 */
};

struct policy_usb_interface {
	int16_t cls; /* -1 = unknown / unparsable: treated as blocked (fail closed) */
	int16_t subclass;
	int16_t protocol;
	const char *name; /* iInterface string, may be NULL; "MTP" marks an MTP interface */
};

enum policy_usb_verdict {
	POLICY_USB_ALLOW, /* authorize (and probe) */
	POLICY_USB_BLOCK, /* leave or make unauthorized */
};

/* Which rule decided. */
enum policy_usb_reason {
	POLICY_USB_REASON_NOT_BLOCKED,	 /* class not in the block list */
	POLICY_USB_REASON_BLOCKED_CLASS, /* class in the block list */
	POLICY_USB_REASON_ALLOW_LIST,	 /* blocked class, but the device is allow-listed */
	POLICY_USB_REASON_READER,  /* blocked vendor-specific (ff) interface of a listed reader */
	POLICY_USB_REASON_INVALID, /* class could not be read: fail closed */
};

struct policy_usb_decision {
	enum policy_usb_verdict verdict; /* in audit mode still the verdict enforce would give */
	enum policy_usb_reason reason;
	const struct policy_usb_class *block; /* the matching block entry, if any */
	const struct policy_usb_allow *allow; /* the matching allow or reader entry, if any */
	/* human and event text: "block mass_storage (08)", "allow line 12: 0781:5581 serial=...",
	 * "reader line 30: 054c:06c1 (Sony PaSoRi RC-S380/S)" */
	char rule[160];
};

/* Decide every interface of one device. ret must hold n entries. Pure; never fails. */
void policy_usb_decide(const struct policy *p, const struct policy_usb_device *dev,
		       const struct policy_usb_interface *ifaces, size_t n,
		       struct policy_usb_decision *ret);

/* Classes that are never blockable (hub 09, HID 03, smart card 0b): the parser refuses them. */
bool policy_usb_class_protected(int cls);

/* Canonical name of a class code, e.g. 0x08 → "mass_storage"; NULL if none. */
const char *policy_usb_class_name(int cls);

/* A block entry as a code: "08", "e0:01:03", "ff:*:01"; "mtp" for the MTP entry. */
void policy_usb_class_code(const struct policy_usb_class *c, char *buf, size_t size);
