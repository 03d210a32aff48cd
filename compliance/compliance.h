/* SPDX-License-Identifier: MIT */
/* Compliance checks as pure functions over root paths (sysfs, PAM dir, state); run by mynaguardd. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/timex.h>
#include <sys/types.h>

#include "policy.h"

/* Bounds on what the checks read; every input file is local and root-owned, but still. */
#define COMPLIANCE_DETAIL_MAX	     512	 /* one check's detail, truncated with "..." */
#define COMPLIANCE_MANIFEST_MAX	     (64 * 1024) /* install manifest bytes */
#define COMPLIANCE_MANIFEST_ENTRIES  256
#define COMPLIANCE_HASH_FILE_MAX     (64 * 1024 * 1024) /* a file hashed for the manifest */
#define COMPLIANCE_PAM_FILE_MAX	     (64 * 1024)	/* one PAM config file */
#define COMPLIANCE_PAM_LINE_MAX	     4096 /* one logical PAM line (after continuations) */
#define COMPLIANCE_PAM_INCLUDE_DEPTH 8
#define COMPLIANCE_PAM_MAX_FILES     64	 /* files loaded for one service, includes counted */
#define COMPLIANCE_PAM_MAX_ENTRIES   256 /* auth entries of one service after flattening */
#define COMPLIANCE_PASSWD_MAX_USERS  4096
#define COMPLIANCE_USB_MAX_DEVICES   512
#define COMPLIANCE_USB_MAX_IFACES    64 /* per device */

/* The installed-files manifest (sha256sum format) and the udev rule it must cover. */
#define COMPLIANCE_MANIFEST_NAME "installed.sha256" /* in the state dir */
#define COMPLIANCE_UDEV_RULE	 "/etc/udev/rules.d/70-mynaguard.rules"
#define COMPLIANCE_TIMESYNC_FLAG "/run/systemd/timesync/synchronized"
/* The first line of a TOTP record and its size limit (pam_module/totp_record.h, version 1);
 * version 2 has the lifecycle lines (type, serial, enrolled, verified) before the secret. */
#define COMPLIANCE_TOTP_RECORD_HEADER	 "mynaguard-totp 1"
#define COMPLIANCE_TOTP_RECORD_HEADER_V2 "mynaguard-totp 2"
#define COMPLIANCE_TOTP_RECORD_MAX	 1024

enum compliance_status {
	COMPLIANCE_PASS,
	COMPLIANCE_FAIL,
	COMPLIANCE_NOT_APPLICABLE,
	COMPLIANCE_ERROR,
};

/* "pass", "fail", "not_applicable", "error" */
const char *compliance_status_name(enum compliance_status s);

struct compliance_result {
	enum policy_check check;
	enum compliance_status status;
	char detail[COMPLIANCE_DETAIL_MAX];
};

/* Where each check looks. Every path is absolute (tests point them into a temp dir). */
struct compliance_env {
	const struct policy *policy;
	const char *policy_path;   /* the policy file in use (agent.integrity, the event's hash) */
	const char *sysfs_root;	   /* "/" in production: SYSFS/sys/bus/usb/devices */
	const char *pam_dir;	   /* /etc/pam.d */
	const char *passwd_path;   /* /etc/passwd */
	const char *totp_dir;	   /* STATE/totp: one record per user */
	const char *manifest_path; /* STATE/installed.sha256 */
	const char *udev_rule;	   /* COMPLIANCE_UDEV_RULE */
	const char *timesync_flag; /* COMPLIANCE_TIMESYNC_FLAG */
	const char *proc_root;	   /* "/" in production: PROC/proc/net/route (net.isolation) */
	const char *manifest_root; /* NULL in production; a tree made by `install.sh --root DIR`:
				    * the manifest's (target) paths are looked up under DIR */
	uid_t owner_uid; /* owner required of TOTP records and the manifest: 0 in production */
	/* Reads the kernel clock state; adjtimex in production, a fake in tests. */
	int (*adjtimex)(struct timex *tx);
};

/* Fill env with the production defaults for policy p and state directory state_dir. Strings
 * point into p, into static storage, or into buf (which must outlive env). */
int compliance_env_default(struct compliance_env *env, const struct policy *p,
			   const char *policy_path, const char *state_dir, char *buf,
			   size_t buf_size);

/* The checks. Each fills ret (never fails: problems become status error with a detail). */
void compliance_check_usb_default_deny(const struct compliance_env *env,
				       struct compliance_result *ret);
void compliance_check_usb_no_unapproved_storage(const struct compliance_env *env,
						struct compliance_result *ret);
void compliance_check_mfa_pam_stack(const struct compliance_env *env,
				    struct compliance_result *ret);
void compliance_check_mfa_enrollment(const struct compliance_env *env,
				     struct compliance_result *ret);
void compliance_check_time_synchronized(const struct compliance_env *env,
					struct compliance_result *ret);
void compliance_check_agent_integrity(const struct compliance_env *env,
				      struct compliance_result *ret);
void compliance_check_net_isolation(const struct compliance_env *env,
				    struct compliance_result *ret);

/* The interactive local users (passwd entries with a uid from [checks] min_uid up to 59999 and
 * a login shell, at most COMPLIANCE_PASSWD_MAX_USERS) and their TOTP records in totp_dir, as
 * mfa.enrollment judges them (owner env->owner_uid, mode, size, header; the secret is never
 * read). Shared by the check and mynaguardctl status. */
enum compliance_record_state {
	COMPLIANCE_RECORD_OK,
	COMPLIANCE_RECORD_MISSING, /* no record (or no store at all), or a pending one (not yet
				    * verified with mynaguardctl totp verify: why says so) */
	COMPLIANCE_RECORD_BAD,	   /* why says what is wrong */
};
struct compliance_enrollment {
	unsigned interactive; /* interactive users */
	unsigned enrolled;    /* of them, with a good record */
	unsigned missing;     /* including pending */
	unsigned pending;     /* of the missing: enrolled but not verified */
	unsigned bad;
	bool store_missing; /* totp_dir does not exist: every user is missing */
	/* on failure: env->totp_dir (cannot open it safely) or env->passwd_path */
	const char *failed;
	bool passwd_unparsable; /* passwd was read but an entry could not be parsed */
};
/* Called for each interactive user; why is "" unless st is COMPLIANCE_RECORD_BAD, or
 * COMPLIANCE_RECORD_MISSING for a pending enrollment. user is the
 * passwd name (not escaped for a terminal), NULL when it cannot name a record (empty, starts
 * with '.', holds '/', too long): then st is COMPLIANCE_RECORD_BAD. */
typedef void (*compliance_enrollment_fn)(void *userdata, const char *user,
					 enum compliance_record_state st, const char *why);
/* Always fills *ret (counts so far). Returns 0, or -errno with ret->failed naming the path:
 * the store is unsafe (-EPERM not owned by owner_uid, -EACCES group/other access, -ELOOP a
 * symlink, -ENOTDIR) or unreadable, or passwd unreadable/unparsable. fn may be NULL. */
int compliance_enrollment_scan(const struct compliance_env *env, compliance_enrollment_fn fn,
			       void *userdata, struct compliance_enrollment *ret);

/* Run one check by id; a check disabled in the policy gives not_applicable "disabled by policy". */
void compliance_run(const struct compliance_env *env, enum policy_check c,
		    struct compliance_result *ret);

/* Run every check (results[i] for check i, _POLICY_CHECK_MAX entries). */
void compliance_run_all(const struct compliance_env *env,
			struct compliance_result results[_POLICY_CHECK_MAX]);

/* The compliance event's data object and clause array (new references) for results:
 *   data: {"policy_hash":"sha256:HEX","policy_path":S,"interval_s":N,"checks":[{"id","clause",
 *          "status","detail"}],"compliant":B}   (policy_hash left out when unreadable)
 *   clauses: the union of the clauses of every check that ran (not not_applicable). */
int compliance_to_json(const struct compliance_env *env, const struct compliance_result *results,
		       size_t n, json_t **ret_data, json_t **ret_clauses);

/* ---- Building blocks, exported for tests and the fuzz target. ---- */

/* SHA-256 of a file (at most COMPLIANCE_HASH_FILE_MAX bytes) as 64 lowercase hex digits. */
int compliance_sha256_file(const char *path, char ret_hex[static 65]);

/* The install manifest: lines "HEX  PATH" or "HEX *PATH" (sha256sum output), '#' comments and
 * blank lines allowed, PATH absolute. -EINVAL (with the 1-based line in *ret_line) when malformed. */
struct compliance_manifest_entry {
	char hex[65];
	char *path;
};
struct compliance_manifest {
	struct compliance_manifest_entry *entries;
	size_t n;
};
/* After the policy was rewritten deliberately (mynaguardctl usb allow, a fleet bundle installed
 * by mynaguardd): give its line in the install manifest STATE/installed.sha256 the new hash, so
 * agent.integrity does not report the change as tampering. The manifest is replaced atomically
 * with its owner and mode kept. Returns 1 when updated, 0 when there is no manifest or it does
 * not list the policy, or -errno (*ret_line set when the manifest is malformed: it is then left
 * alone). */
int compliance_manifest_update_policy(const char *state, const char *policy_path,
				      unsigned *ret_line);
int compliance_manifest_parse(const char *text, size_t len, struct compliance_manifest *ret,
			      unsigned *ret_line);
void compliance_manifest_clear(struct compliance_manifest *m);
const struct compliance_manifest_entry *
compliance_manifest_find(const struct compliance_manifest *m, const char *path);

/* The PAM auth-stack analysis for one service. load(name) returns the text of a file of the PAM
 * directory (-ENOENT when missing). Writes a status and detail for that service. */
typedef int (*compliance_pam_load_fn)(void *userdata, const char *name, char **ret,
				      size_t *ret_len);
enum compliance_status compliance_pam_service(const char *service, compliance_pam_load_fn load,
					      void *userdata, char *detail, size_t detail_size);
