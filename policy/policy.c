/* SPDX-License-Identifier: MIT */
/* The policy model: defaults, destructor, check ids and clauses, error list, loading a file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fileio.h"
#include "macro.h"
#include "internal.h"
#include "policy.h"

static const char *const clauses_usb[] = {"2-6-3-a", "2-3-2", NULL};
static const char *const clauses_pam_stack[] = {"2-6-3-a", "2-6-6", NULL};
static const char *const clauses_enrollment[] = {"2-6-3-a", NULL};
static const char *const clauses_time[] = {"2-6-6", NULL};
static const char *const clauses_integrity[] = {"2-2-7", "2-6-7", NULL};
static const char *const clauses_net[] = {"2-6-3-a", NULL};

static const struct {
	const char *id;
	const char *const *clauses;
	bool enabled_by_default;
} checks[_POLICY_CHECK_MAX] = {
    [POLICY_CHECK_USB_DEFAULT_DENY] = {"usb.default_deny", clauses_usb, true},
    [POLICY_CHECK_USB_NO_UNAPPROVED_STORAGE] = {"usb.no_unapproved_storage", clauses_usb, true},
    [POLICY_CHECK_MFA_PAM_STACK] = {"mfa.pam_stack", clauses_pam_stack, true},
    [POLICY_CHECK_MFA_ENROLLMENT] = {"mfa.enrollment", clauses_enrollment, true},
    [POLICY_CHECK_TIME_SYNCHRONIZED] = {"time.synchronized", clauses_time, true},
    [POLICY_CHECK_AGENT_INTEGRITY] = {"agent.integrity", clauses_integrity, true},
    [POLICY_CHECK_NET_ISOLATION] = {"net.isolation", clauses_net, false},
};

const char *policy_check_id(enum policy_check c)
{
	if ((unsigned)c >= _POLICY_CHECK_MAX)
		return NULL;
	return checks[c].id;
}

const char *const *policy_check_clauses(enum policy_check c)
{
	static const char *const none[] = {NULL};

	if ((unsigned)c >= _POLICY_CHECK_MAX)
		return none;
	return checks[c].clauses;
}

int policy_check_from_id(const char *id, enum policy_check *ret)
{
	if (!id)
		return -EINVAL;
	for (unsigned i = 0; i < _POLICY_CHECK_MAX; i++) {
		if (strcmp(checks[i].id, id) == 0) {
			*ret = (enum policy_check)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool policy_check_default(enum policy_check c)
{
	if ((unsigned)c >= _POLICY_CHECK_MAX)
		return false;
	return checks[c].enabled_by_default;
}

int policy_new_default(struct policy **ret)
{
	static const char *const services[] = {"login", "gdm-password", "sshd"};
	_cleanup_policy_ struct policy *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->usb_mode = POLICY_USB_ENFORCE;
	p->usb_block[0] = (struct policy_usb_class){.cls = 0x08, .subclass = -1, .protocol = -1};
	snprintf(p->usb_block[0].name, sizeof(p->usb_block[0].name), "mass_storage");
	p->n_usb_block = 1;
	p->usb_strict_modprobe = false;

	for (size_t i = 0; i < ELEMENTSOF(services); i++) {
		p->mfa_services[i] = strdup(services[i]);
		if (!p->mfa_services[i])
			return -ENOMEM;
		p->n_mfa_services++;
	}
	p->mfa_window = 1;
	p->mfa_step = 30;
	p->mfa_digits = 6;
	p->mfa_max_failures = 5;
	p->mfa_lockout_sec = 15 * 60;
	p->mfa_nullok = false;

	p->report_ca = strdup(MYNAGUARD_SYSCONFDIR "/tls/ca.pem");
	p->report_cert = strdup(MYNAGUARD_SYSCONFDIR "/tls/terminal.pem");
	p->report_key = strdup(MYNAGUARD_SYSCONFDIR "/tls/terminal.key");
	if (!p->report_ca || !p->report_cert || !p->report_key)
		return -ENOMEM;
	p->report_interval_sec = 15 * 60;
	p->report_spool_max = UINT64_C(64) * 1024 * 1024;
	p->report_batch_max = 500;

	for (unsigned i = 0; i < _POLICY_CHECK_MAX; i++)
		p->checks_enabled[i] = checks[i].enabled_by_default;
	p->checks_min_uid = 1000;
	p->checks_pam_dir = strdup("/etc/pam.d");
	p->checks_sysfs_root = strdup("/");
	if (!p->checks_pam_dir || !p->checks_sysfs_root)
		return -ENOMEM;

	p->fleet_grant_max_days = 366;

	*ret = TAKE_PTR(p);
	return 0;
}

static void allow_list_free(struct policy_usb_allow *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].serial);
		free(list[i].descriptor_hash);
		free(list[i].name);
		free(list[i].ledger);
	}
	free(list);
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->path);
	free(p->terminal_id);
	free(p->description);
	free(p->terminal_contact);
	allow_list_free(p->usb_allow, p->n_usb_allow);
	allow_list_free(p->usb_readers, p->n_usb_readers);
	for (size_t i = 0; i < p->n_mfa_services; i++)
		free(p->mfa_services[i]);
	free(p->report_collector);
	free(p->report_ca);
	free(p->report_cert);
	free(p->report_key);
	free(p->checks_pam_dir);
	free(p->checks_sysfs_root);
	free(p->fleet_group);
	for (size_t i = 0; i < p->n_fleet_terminals; i++)
		free(p->fleet_terminals[i]);
	free(p->fleet_terminals);
	free(p);
}

void policy_errors_clear(struct policy_errors *errs)
{
	if (!errs)
		return;
	free(errs->path);
	errs->path = NULL;
	errs->n = 0;
	errs->n_dropped = 0;
}

void policy_errors_add(struct policy_errors *errs, unsigned line, const char *fmt, ...)
{
	struct policy_error *e;
	va_list ap;

	if (!errs)
		return;
	if (errs->n >= POLICY_MAX_ERRORS) {
		errs->n_dropped++;
		return;
	}
	e = &errs->items[errs->n++];
	e->line = line;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

void policy_error_format(const struct policy_errors *errs, size_t i, char *buf, size_t size)
{
	const char *path;

	if (size == 0)
		return;
	if (!errs || i >= errs->n) {
		buf[0] = '\0';
		return;
	}
	path = errs->path ? errs->path : "policy";
	if (errs->items[i].line > 0)
		snprintf(buf, size, "%s:%u: %s", path, errs->items[i].line, errs->items[i].message);
	else
		snprintf(buf, size, "%s: %s", path, errs->items[i].message);
}

int policy_load(const char *path, struct policy **ret, struct policy_errors *errs)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r;

	if (!path)
		return -EINVAL;
	r = fileio_read_file(AT_FDCWD, path, POLICY_MAX_FILE_SIZE, &text, &len);
	if (r < 0) {
		if (errs) {
			policy_errors_clear(errs);
			errs->path = strdup(path);
			if (!errs->path)
				return -ENOMEM;
			if (r == -EFBIG)
				policy_errors_add(errs, 0, "file too large: at most %d bytes",
						  POLICY_MAX_FILE_SIZE);
			else
				policy_errors_add(errs, 0, "cannot read the policy: %s",
						  strerror(-r));
		}
		return r;
	}
	return policy_parse_string(path, text, len, ret, errs);
}
