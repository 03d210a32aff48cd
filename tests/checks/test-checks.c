/* SPDX-License-Identifier: MIT */
/* Unit tests of the compliance checks against fixture trees (sysfs, PAM dir, passwd, state). */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compliance.h"
#include "event.h"
#include "policy.h"

struct fx {
	char root[PATH_MAX];
	char sysfs[PATH_MAX];
	char pam[PATH_MAX];
	char passwd[PATH_MAX];
	char totp[PATH_MAX];
	char manifest[PATH_MAX];
	char udev[PATH_MAX];
	char policy_path[PATH_MAX];
	char flag[PATH_MAX];
	char proc[PATH_MAX];
	struct policy *p;
	struct compliance_env env;
	struct compliance_result res;
};

/* ---- fixture helpers ---- */

static void mkdirs(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			(void)mkdir(buf, 0755);
			*s = '/';
		}
	(void)mkdir(buf, 0755);
}

static void write_path(const char *path, const char *text, mode_t mode)
{
	char dir[PATH_MAX];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void fx_write(struct fx *f, const char *rel, const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	write_path(path, text, 0644);
}

static void fx_pam(struct fx *f, const char *name, const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", f->pam, name);
	write_path(path, text, 0644);
}

static void fx_set_policy(struct fx *f, const char *text)
{
	struct policy *p = NULL;
	struct policy_errors errs = {0};
	int r = policy_parse_string("test.conf", text, strlen(text), &p, &errs);

	if (r < 0) {
		for (size_t i = 0; i < errs.n; i++) {
			char buf[300];
			policy_error_format(&errs, i, buf, sizeof(buf));
			fprintf(stderr, "%s\n", buf);
		}
	}
	policy_errors_clear(&errs);
	assert_int_equal(r, 0);
	policy_free(f->p);
	f->p = p;
	f->env.policy = p;
	write_path(f->policy_path, text, 0644);
}

/* The manifest lists these absolute paths with their current hashes. */
static void fx_manifest(struct fx *f, const char *const *paths, mode_t mode)
{
	char text[8192] = "# written by the installer\n";

	for (size_t i = 0; paths[i]; i++) {
		char hex[65];
		assert_int_equal(compliance_sha256_file(paths[i], hex), 0);
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s  %s\n", hex,
			 paths[i]);
	}
	write_path(f->manifest, text, mode);
}

static void add_hub(struct fx *f, const char *hub, const char *iad)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/idVendor", hub);
	fx_write(f, rel, "1d6b\n");
	snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/idProduct", hub);
	fx_write(f, rel, "0002\n");
	snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/interface_authorized_default",
		 hub);
	fx_write(f, rel, iad);
	snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/%c-0:1.0/bInterfaceClass", hub,
		 hub[3]);
	fx_write(f, rel, "09\n");
	snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/%c-0:1.0/authorized", hub, hub[3]);
	fx_write(f, rel, "1\n");
}

static void add_device(struct fx *f, const char *dev, const char *vid, const char *pid,
		       const char *serial)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/idVendor", dev);
	fx_write(f, rel, vid);
	snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/idProduct", dev);
	fx_write(f, rel, pid);
	if (serial) {
		snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/serial", dev);
		fx_write(f, rel, serial);
	}
}

static void add_iface(struct fx *f, const char *dev, const char *ifn, const char *cls,
		      const char *authorized)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/%s:%s/bInterfaceClass", dev, dev,
		 ifn);
	fx_write(f, rel, cls);
	snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/%s:%s/bInterfaceSubClass", dev,
		 dev, ifn);
	fx_write(f, rel, "06\n");
	snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/%s:%s/bInterfaceProtocol", dev,
		 dev, ifn);
	fx_write(f, rel, "50\n");
	snprintf(rel, sizeof(rel), "sysfs/sys/bus/usb/devices/%s/%s:%s/authorized", dev, dev, ifn);
	fx_write(f, rel, authorized);
}

static int fake_adjtimex_state;
static int fake_adjtimex_status;

static int fake_adjtimex(struct timex *tx)
{
	tx->status = fake_adjtimex_status;
	tx->esterror = 1234;
	return fake_adjtimex_state;
}

static const char policy_base[] = "[terminal]\nid = t1\n[mfa]\nservices = login\n";

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	snprintf(f->root, sizeof(f->root), "%s/mg-checks-XXXXXX", tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->sysfs, sizeof(f->sysfs), "%s/sysfs", f->root);
	snprintf(f->pam, sizeof(f->pam), "%s/pam.d", f->root);
	snprintf(f->passwd, sizeof(f->passwd), "%s/etc/passwd", f->root);
	snprintf(f->totp, sizeof(f->totp), "%s/state/totp", f->root);
	snprintf(f->manifest, sizeof(f->manifest), "%s/state/installed.sha256", f->root);
	snprintf(f->udev, sizeof(f->udev), "%s/etc/udev/rules.d/70-mynaguard.rules", f->root);
	snprintf(f->policy_path, sizeof(f->policy_path), "%s/etc/mynaguard/policy.conf", f->root);
	snprintf(f->flag, sizeof(f->flag), "%s/run/timesync/synchronized", f->root);
	snprintf(f->proc, sizeof(f->proc), "%s/proc-root", f->root);
	mkdirs(f->pam);
	mkdirs(f->sysfs);
	mkdirs(f->totp);
	assert_int_equal(chmod(f->totp, 0700), 0);

	f->env = (struct compliance_env){
	    .policy_path = f->policy_path,
	    .sysfs_root = f->sysfs,
	    .pam_dir = f->pam,
	    .passwd_path = f->passwd,
	    .totp_dir = f->totp,
	    .manifest_path = f->manifest,
	    .udev_rule = f->udev,
	    .timesync_flag = f->flag,
	    .proc_root = f->proc,
	    .owner_uid = geteuid(),
	    .adjtimex = fake_adjtimex,
	};
	fx_set_policy(f, policy_base);
	fake_adjtimex_state = TIME_OK;
	fake_adjtimex_status = 0;
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	(void)chmod(f->totp, 0700);
	nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	policy_free(f->p);
	free(f);
	return 0;
}

#define assert_status(f, st, needle)                                                               \
	do {                                                                                       \
		if ((f)->res.status != (st) || !strstr((f)->res.detail, (needle)))                 \
			fail_msg("status %s detail \"%s\", wanted %s with \"%s\"",                 \
				 compliance_status_name((f)->res.status), (f)->res.detail,         \
				 compliance_status_name(st), (needle));                            \
	} while (0)

/* ---- usb.default_deny ---- */

static void default_deny_fixture(struct fx *f)
{
	const char *paths[] = {f->udev, NULL};

	add_hub(f, "usb1", "0\n");
	add_hub(f, "usb2", "0\n");
	fx_write(f, "etc/udev/rules.d/70-mynaguard.rules", "# rule\nSUBSYSTEM!=\"usb\"\n");
	fx_manifest(f, paths, 0644);
}

static void test_default_deny_pass(void **state)
{
	struct fx *f = *state;

	default_deny_fixture(f);
	compliance_check_usb_default_deny(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "2 root hubs");
}

static void test_default_deny_hub_authorizes(void **state)
{
	struct fx *f = *state;

	default_deny_fixture(f);
	fx_write(f, "sysfs/sys/bus/usb/devices/usb2/interface_authorized_default", "1\n");
	compliance_check_usb_default_deny(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "usb2: interface_authorized_default=1");
	assert_null(strstr(f->res.detail, "usb1"));
}

static void test_default_deny_hub_unreadable(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];

	default_deny_fixture(f);
	snprintf(path, sizeof(path), "%s/sys/bus/usb/devices/usb1/interface_authorized_default",
		 f->sysfs);
	assert_int_equal(unlink(path), 0);
	compliance_check_usb_default_deny(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "usb1: interface_authorized_default unreadable");
}

static void test_default_deny_rule_modified(void **state)
{
	struct fx *f = *state;

	default_deny_fixture(f);
	fx_write(f, "etc/udev/rules.d/70-mynaguard.rules", "# emptied by someone\n");
	compliance_check_usb_default_deny(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "modified: ");
	assert_non_null(strstr(f->res.detail, "70-mynaguard.rules"));
}

static void test_default_deny_rule_missing(void **state)
{
	struct fx *f = *state;

	default_deny_fixture(f);
	assert_int_equal(unlink(f->udev), 0);
	compliance_check_usb_default_deny(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "missing");
}

static void test_default_deny_rule_not_in_manifest(void **state)
{
	struct fx *f = *state;
	const char *paths[] = {f->policy_path, NULL};

	default_deny_fixture(f);
	fx_manifest(f, paths, 0644);
	compliance_check_usb_default_deny(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "not in the install manifest");
}

static void test_default_deny_no_manifest(void **state)
{
	struct fx *f = *state;

	default_deny_fixture(f);
	assert_int_equal(unlink(f->manifest), 0);
	compliance_check_usb_default_deny(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "no install manifest");
}

static void test_default_deny_audit_mode(void **state)
{
	struct fx *f = *state;

	default_deny_fixture(f);
	fx_set_policy(f, "[terminal]\nid = t1\n[usb]\nmode = audit\n");
	compliance_check_usb_default_deny(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "policy in audit mode");
}

/* ---- usb.no_unapproved_storage ---- */

static void storage_fixture(struct fx *f, const char *stick_authorized)
{
	add_hub(f, "usb1", "0\n");
	add_device(f, "1-1", "0781\n", "5581\n", "4C530001\n"); /* a USB stick */
	add_iface(f, "1-1", "1.0", "08\n", stick_authorized);
	add_device(f, "1-2", "046d\n", "c31c\n", NULL); /* a keyboard */
	add_iface(f, "1-2", "1.0", "03\n", "1\n");
	add_iface(f, "1-2", "1.1", "03\n", "1\n");
}

static void test_storage_blocked_pass(void **state)
{
	struct fx *f = *state;

	storage_fixture(f, "0\n");
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "4 interfaces checked");
}

static void test_storage_authorized_fail(void **state)
{
	struct fx *f = *state;

	storage_fixture(f, "1\n");
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "1-1:1.0 (0781:5581 serial=4C530001) authorized");
	assert_non_null(strstr(f->res.detail, "mass_storage"));
	assert_null(strstr(f->res.detail, "1-2"));
}

static void test_storage_authorized_allow_listed(void **state)
{
	struct fx *f = *state;

	storage_fixture(f, "1\n");
	fx_set_policy(f, "[terminal]\nid = t1\n[usb]\nallow = 0781:5581 serial=4C530001\n");
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "no blocked interface authorized");
}

static void test_storage_allow_list_other_serial(void **state)
{
	struct fx *f = *state;

	storage_fixture(f, "1\n");
	fx_set_policy(f, "[terminal]\nid = t1\n[usb]\nallow = 0781:5581 serial=OTHER\n");
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "1-1:1.0");
}

static void test_storage_missing_authorized_counts_as_authorized(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];

	storage_fixture(f, "0\n");
	snprintf(path, sizeof(path), "%s/sys/bus/usb/devices/1-1/1-1:1.0/authorized", f->sysfs);
	assert_int_equal(unlink(path), 0);
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "1-1:1.0");
}

static void test_storage_hostile_serial_escaped(void **state)
{
	struct fx *f = *state;
	struct compliance_result results[1];
	json_t *data = NULL, *clauses = NULL;

	add_device(f, "2-1", "0781\n", "5581\n", "\x1b[31m\xff\"x\n");
	add_iface(f, "2-1", "1.0", "08\n", "1\n");
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_int_equal(f->res.status, COMPLIANCE_FAIL);
	f->res.check = POLICY_CHECK_USB_NO_UNAPPROVED_STORAGE;
	results[0] = f->res;
	assert_int_equal(compliance_to_json(&f->env, results, 1, &data, &clauses), 0);
	const char *detail = json_string_value(
	    json_object_get(json_array_get(json_object_get(data, "checks"), 0), "detail"));
	assert_non_null(detail);
	assert_non_null(strstr(detail, "\\x1b[31m\\xff\"x"));
	json_decref(data);
	json_decref(clauses);
}

/* Raw descriptors of a one-interface mass-storage device with the given ids. */
static void write_descriptors(struct fx *f, const char *dev, uint16_t vendor, uint16_t product)
{
	const unsigned char d[] = {/* device */
				   18, 1, 0x00, 0x02, 0, 0, 0, 64, vendor & 0xff, vendor >> 8,
				   product & 0xff, product >> 8, 0x00, 0x01, 1, 2, 3, 1,
				   /* configuration, total length 18 */
				   9, 2, 18, 0, 1, 1, 0, 0x80, 50,
				   /* interface 0: 08/06/50 */
				   9, 4, 0, 0, 2, 0x08, 0x06, 0x50, 0};
	char path[PATH_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/sys/bus/usb/devices/%s/descriptors", f->sysfs, dev);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(d, 1, sizeof(d), fp), sizeof(d));
	assert_int_equal(fclose(fp), 0);
}

static void test_storage_allow_listed_by_hash(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX], hex[65], policy[512];

	storage_fixture(f, "1\n");
	write_descriptors(f, "1-1", 0x0781, 0x5581);
	snprintf(path, sizeof(path), "%s/sys/bus/usb/devices/1-1/descriptors", f->sysfs);
	assert_int_equal(compliance_sha256_file(path, hex), 0);
	snprintf(policy, sizeof(policy),
		 "[terminal]\nid = t1\n[usb]\nallow = 0781:5581 hash=sha256:%s\n", hex);
	fx_set_policy(f, policy);
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "no blocked interface authorized");

	/* other descriptors, other hash: no longer the approved stick */
	hex[0] = hex[0] == '0' ? '1' : '0';
	snprintf(policy, sizeof(policy),
		 "[terminal]\nid = t1\n[usb]\nallow = 0781:5581 hash=sha256:%s\n", hex);
	fx_set_policy(f, policy);
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "1-1:1.0");
}

/* What the gate refuses as impossible (fail closed) counts as blocked here too, even on an
 * allow-listed device or for a keyboard. */
static void test_storage_invalid_devices(void **state)
{
	struct fx *f = *state;

	storage_fixture(f, "1\n");
	fx_set_policy(f, "[terminal]\nid = t1\n[usb]\nallow = 0781:5581\n");
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "no blocked interface authorized");

	fx_write(f, "sysfs/sys/bus/usb/devices/1-1/serial", "\xc3\x28\n");
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(
	    f, COMPLIANCE_FAIL,
	    "1-1:1.0 (0781:5581 serial=\xc3\x28) authorized: invalid: serial is not valid UTF-8");

	fx_write(f, "sysfs/sys/bus/usb/devices/1-1/serial", "4C530001\n");
	write_descriptors(f, "1-1", 0x1234, 0x5678);
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "invalid: descriptors disagree with idVendor/idProduct");

	write_descriptors(f, "1-1", 0x0781, 0x5581);
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "no blocked interface authorized");

	/* a keyboard interface with a class the kernel would never show */
	fx_write(f, "sysfs/sys/bus/usb/devices/1-2/1-2:1.1/bInterfaceClass", "3\n");
	compliance_check_usb_no_unapproved_storage(&f->env, &f->res);
	assert_status(
	    f, COMPLIANCE_FAIL,
	    "1-2:1.1 (046d:c31c) authorized: invalid: bInterfaceClass missing or not 2 hex digits");
	assert_null(strstr(f->res.detail, "1-2:1.0"));
}

/* ---- mfa.pam_stack ---- */

/* Debian's common-auth after pam-auth-update with the installer's profile (Auth-Type:
 * Additional, required). */
static const char debian_common_auth[] =
    "#\n# /etc/pam.d/common-auth\n#\n"
    "# here are the per-package modules (the \"Primary\" block)\n"
    "auth\t[success=1 default=ignore]\tpam_unix.so nullok\n"
    "# here's the fallback if no module succeeds\n"
    "auth\trequisite\t\t\tpam_deny.so\n"
    "auth\trequired\t\t\tpam_permit.so\n"
    "# and here are more per-package modules (the \"Additional\" block)\n"
    "auth\trequired\t\t\tpam_mynaguard.so\n"
    "# end of pam-auth-update config\n";

static const char debian_login[] =
    "# The PAM configuration file for the Shadow `login' service\n"
    "auth       optional   pam_faildelay.so  delay=3000000\n"
    "auth       requisite  pam_nologin.so\n"
    "session [success=ok ignore=ignore module_unknown=ignore default=bad] pam_selinux.so close\n"
    "@include common-auth\n"
    "auth       optional   pam_group.so\n"
    "@include common-account\n"
    "@include common-session\n"
    "@include common-password\n";

static void pam_debian(struct fx *f, const char *common_auth)
{
	fx_pam(f, "login", debian_login);
	fx_pam(f, "common-auth", common_auth);
	fx_pam(f, "common-account", "account required pam_unix.so\n");
	fx_pam(f, "common-session", "session required pam_unix.so\n");
	fx_pam(f, "common-password", "password required pam_unix.so\n");
}

static void run_pam(struct fx *f)
{
	compliance_check_mfa_pam_stack(&f->env, &f->res);
}

static void test_pam_debian_profile_pass(void **state)
{
	struct fx *f = *state;

	pam_debian(f, debian_common_auth);
	run_pam(f);
	assert_status(
	    f, COMPLIANCE_PASS,
	    "login: pam_unix.so at common-auth:5, then pam_mynaguard at common-auth:10 (required)");
}

static void test_pam_direct_pass(void **state)
{
	struct fx *f = *state;
	static const char *const stacks[] = {
	    "auth required pam_unix.so\nauth required pam_mynaguard.so\n",
	    "auth requisite pam_unix.so\nauth requisite /lib/security/pam_mynaguard.so\n",
	    "auth required pam_unix.so\nauth [success=ok default=die] pam_mynaguard.so\n",
	    "auth required pam_sss.so \\\n   use_first_pass\nAUTH REQUIRED pam_mynaguard.so debug # note\n",
	    ("auth required pam_unix.so\nauth [success=ok default=bad] pam_mynaguard.so "
	     "store=/var/lib/mynaguard/totp\nauth optional pam_permit.so\n"),
	};

	for (size_t i = 0; i < sizeof(stacks) / sizeof(stacks[0]); i++) {
		fx_pam(f, "login", stacks[i]);
		run_pam(f);
		if (f->res.status != COMPLIANCE_PASS)
			fail_msg("stack %zu: %s", i, f->res.detail);
	}
}

static void test_pam_mynaguard_before_password(void **state)
{
	struct fx *f = *state;

	fx_pam(f, "login", "auth required pam_mynaguard.so\nauth required pam_unix.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL,
		      "login: pam_mynaguard at login:1 does not come after a password module");
}

static void test_pam_nullok(void **state)
{
	struct fx *f = *state;

	pam_debian(f, "auth required pam_unix.so\nauth required pam_mynaguard.so nullok\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "login: pam_mynaguard at common-auth:2 has nullok");
}

static void test_pam_optional(void **state)
{
	struct fx *f = *state;

	fx_pam(f, "login", "auth required pam_unix.so\nauth optional pam_mynaguard.so\n");
	run_pam(f);
	assert_status(
	    f, COMPLIANCE_FAIL,
	    "pam_mynaguard at login:2 (optional) lets a failed code through (auth_err -> ignore)");
}

static void test_pam_dash_auth(void **state)
{
	struct fx *f = *state;

	fx_pam(f, "login", "auth required pam_unix.so\n-auth required pam_mynaguard.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "is '-auth'");
}

static void test_pam_sufficient_skips(void **state)
{
	struct fx *f = *state;

	fx_pam(f, "login", "auth sufficient pam_unix.so\nauth required pam_mynaguard.so\n");
	run_pam(f);
	assert_status(
	    f, COMPLIANCE_FAIL,
	    "login: pam_unix.so at login:1 (sufficient) skips pam_mynaguard (success -> done)");
}

static void test_pam_sufficient_after_password(void **state)
{
	struct fx *f = *state;

	fx_pam(
	    f, "login",
	    "auth required pam_unix.so\nauth sufficient pam_rootok.so\nauth required pam_mynaguard.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL,
		      "pam_rootok.so at login:2 (sufficient) skips pam_mynaguard");
}

static void test_pam_jump_over(void **state)
{
	struct fx *f = *state;

	fx_pam(f, "login",
	       "auth [success=2 default=ignore] pam_unix.so\nauth requisite pam_deny.so\n"
	       "auth required pam_mynaguard.so\nauth required pam_permit.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL,
		      "pam_unix.so at login:1 ([success=2 default=ignore]) skips");
}

static void test_pam_substack_scoped(void **state)
{
	struct fx *f = *state;

	/* "sufficient" inside a substack ends only the substack: pam_mynaguard still runs. */
	fx_pam(f, "login", "auth substack system-auth\nauth required pam_mynaguard.so\n");
	fx_pam(f, "system-auth", "auth sufficient pam_unix.so\nauth requisite pam_deny.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_PASS, "login: pam_unix.so");

	/* the same through include ends the whole stack */
	fx_pam(f, "login", "auth include system-auth\nauth required pam_mynaguard.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "skips pam_mynaguard");
}

static void test_pam_jump_counts_substack_as_one(void **state)
{
	struct fx *f = *state;

	/* Linux-PAM counts a substack as one module for a jump: "success=2" skips the substack
	 * and pam_mynaguard and lands on pam_permit. */
	fx_pam(f, "login",
	       "auth [success=2 default=ignore] pam_unix.so\nauth substack two\n"
	       "auth required pam_mynaguard.so\nauth required pam_permit.so\n");
	fx_pam(f, "two", "auth optional pam_env.so\nauth optional pam_group.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL,
		      "pam_unix.so at login:1 ([success=2 default=ignore]) skips");

	/* sssd next to pam_unix as pam-auth-update writes it: both jump to pam_permit */
	fx_pam(f, "login", "@include common-auth\n");
	fx_pam(f, "common-auth",
	       "auth [success=2 default=ignore] pam_unix.so nullok\n"
	       "auth [success=1 default=ignore] pam_sss.so use_first_pass\n"
	       "auth requisite pam_deny.so\nauth required pam_permit.so\n"
	       "auth required pam_mynaguard.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_PASS, "then pam_mynaguard at common-auth:5 (required)");
}

static void test_pam_missing_service(void **state)
{
	struct fx *f = *state;

	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL,
		      "login: service file 'login' not found, nor 'other' (PAM's fallback)");
}

static void test_pam_missing_include(void **state)
{
	struct fx *f = *state;

	fx_pam(f, "login", "@include common-auth\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "login: login:1: include 'common-auth' not found");
}

static void test_pam_include_loop(void **state)
{
	struct fx *f = *state;

	fx_pam(f, "login", "auth include a\n");
	fx_pam(f, "a", "auth required pam_unix.so\n@include b\n");
	fx_pam(f, "b", "auth include a\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "include loop through 'a'");

	fx_pam(f, "login", "@include login\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "include loop through 'login'");
}

static void test_pam_include_depth(void **state)
{
	struct fx *f = *state;
	char name[16], text[64];

	fx_pam(f, "login", "@include f0\n");
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		snprintf(text, sizeof(text), "@include f%d\n", i + 1);
		fx_pam(f, name, text);
	}
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "includes nested deeper than 8");
}

static void test_pam_not_in_stack(void **state)
{
	struct fx *f = *state;

	pam_debian(
	    f, "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n"
	       "auth required pam_permit.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "login: pam_mynaguard not in the auth stack");
}

static void test_pam_only_in_other_type(void **state)
{
	struct fx *f = *state;

	fx_pam(f, "login", "auth required pam_unix.so\naccount required pam_mynaguard.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "not in the auth stack");
}

static void test_pam_comment_and_continuation(void **state)
{
	struct fx *f = *state;

	/* the module is commented out; a continued comment line does not hide the next line */
	fx_pam(f, "login", "auth required pam_unix.so\n#auth required pam_mynaguard.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "not in the auth stack");

	fx_pam(f, "login", "auth required pam_unix.so\nauth \\\n required \\\n pam_mynaguard.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_PASS, "pam_mynaguard at login:2");
}

static void test_pam_several_services(void **state)
{
	struct fx *f = *state;

	fx_set_policy(f, "[terminal]\nid = t1\n[mfa]\nservices = login, sshd, gdm-password\n");
	pam_debian(f, debian_common_auth);
	fx_pam(f, "sshd", "@include common-auth\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "gdm-password: service file 'gdm-password' not found");
	assert_null(strstr(f->res.detail, "sshd"));

	fx_pam(f, "gdm-password", "auth requisite pam_nologin.so\n@include common-auth\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_PASS, "sshd: pam_unix.so");
}

/* A service without a file of its own runs PAM's 'other' stack: that is what is checked. */
static void test_pam_missing_service_uses_other(void **state)
{
	struct fx *f = *state;

	fx_set_policy(f, "[terminal]\nid = t1\n[mfa]\nservices = login, gdm-password\n");
	pam_debian(f, debian_common_auth);
	fx_pam(f, "other", "auth required pam_deny.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL,
		      "gdm-password (no service file; PAM uses 'other'): pam_mynaguard not in the "
		      "auth stack");

	fx_pam(f, "other", "@include common-auth\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_PASS, "gdm-password (no service file; PAM uses 'other'): ");
}

static void test_pam_reset_after(void **state)
{
	struct fx *f = *state;

	fx_pam(f, "login",
	       "auth required pam_unix.so\nauth required pam_mynaguard.so\n"
	       "auth [success=reset default=ignore] pam_env.so\nauth required pam_permit.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_FAIL, "resets the stack after pam_mynaguard");
}

static void test_pam_malformed_lines(void **state)
{
	struct fx *f = *state;

	/* broken lines in the stack only make authentication fail: still compliant */
	fx_pam(f, "login",
	       "auth required pam_unix.so\nauth bogus pam_x.so\nauth [success=nonsense] pam_y.so\n"
	       "auth required\nauth required pam_mynaguard.so\n");
	run_pam(f);
	assert_status(f, COMPLIANCE_PASS, "pam_mynaguard at login:5");
}

/* ---- mfa.enrollment ---- */

static void users_fixture(struct fx *f)
{
	char path[PATH_MAX];

	fx_write(f, "etc/passwd",
		 "root:x:0:0:root:/root:/bin/bash\n"
		 "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
		 "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
		 "bob:x:1001:1001:Bob:/home/bob:\n"
		 "svc:x:1002:1002::/var/svc:/bin/false\n"
		 "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n");
	snprintf(path, sizeof(path), "%s/alice", f->totp);
	write_path(path, "mynaguard-totp 1\nsecret JBSWY3DPEHPK3PXP\n", 0600);
	snprintf(path, sizeof(path), "%s/bob", f->totp);
	write_path(path, "mynaguard-totp 1\nsecret JBSWY3DPEHPK3PXP\n", 0600);
}

static void test_enrollment_pass(void **state)
{
	struct fx *f = *state;

	users_fixture(f);
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "2 interactive users enrolled");
}

static void test_enrollment_missing(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];

	users_fixture(f);
	snprintf(path, sizeof(path), "%s/bob", f->totp);
	assert_int_equal(unlink(path), 0);
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "not enrolled: bob");
	assert_null(strstr(f->res.detail, "alice"));
}

static void test_enrollment_world_readable(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];

	users_fixture(f);
	snprintf(path, sizeof(path), "%s/alice", f->totp);
	assert_int_equal(chmod(path, 0644), 0);
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL,
		      "bad record: alice (record readable or writable by others)");
}

static void test_enrollment_empty_and_symlink(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX], target[PATH_MAX];

	users_fixture(f);
	snprintf(path, sizeof(path), "%s/alice", f->totp);
	write_path(path, "", 0600);
	snprintf(path, sizeof(path), "%s/bob", f->totp);
	assert_int_equal(unlink(path), 0);
	snprintf(target, sizeof(target), "%s/alice", f->totp);
	assert_int_equal(symlink(target, path), 0);
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL,
		      "bad record: alice (empty record); bob (record is a symlink)");
}

static void test_enrollment_not_a_record(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX], big[2048];

	users_fixture(f);
	snprintf(path, sizeof(path), "%s/alice", f->totp);
	write_path(path, "mynaguard-totp 2\nsecret JBSWY3DPEHPK3PXP\n", 0600);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(path, sizeof(path), "%s/bob", f->totp);
	write_path(path, big, 0600);
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL,
		      "bad record: alice (not a \"mynaguard-totp 2\" record); bob (record larger "
		      "than 1024 bytes)");
	snprintf(path, sizeof(path), "%s/alice", f->totp);
	write_path(path, "mynaguard-totp\nsecret JBSWY3DPEHPK3PXP\n", 0600);
	snprintf(path, sizeof(path), "%s/bob", f->totp);
	write_path(path, "mynaguard-totp 3\nwhatever comes\n", 0600);
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(
	    f, COMPLIANCE_FAIL,
	    "bad record: alice (not a \"mynaguard-totp 1\" record); bob (record version 3 "
	    "is newer than this mynaguard)");
}

/* Version 2: a verified enrollment counts, a pending one does not (mynaguardctl totp verify). */
static void test_enrollment_pending(void **state)
{
	struct fx *f = *state;
	struct compliance_enrollment e;
	char path[PATH_MAX];

	users_fixture(f);
	snprintf(path, sizeof(path), "%s/alice", f->totp);
	write_path(path,
		   "mynaguard-totp 2\ntype totp\nserial -\nenrolled 1764097538\nverified "
		   "1764097600\nsecret JBSWY3DPEHPK3PXP\n",
		   0600);
	snprintf(path, sizeof(path), "%s/bob", f->totp);
	write_path(path,
		   "mynaguard-totp 2\ntype hardware\nserial TK-0001\nenrolled 1764097538\n"
		   "verified 0\nsecret JBSWY3DPEHPK3PXP\n",
		   0600);
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "not enrolled: bob (enrollment pending verification)");
	assert_null(strstr(f->res.detail, "alice"));
	assert_int_equal(compliance_enrollment_scan(&f->env, NULL, NULL, &e), 0);
	assert_int_equal(e.enrolled, 1);
	assert_int_equal(e.missing, 1);
	assert_int_equal(e.pending, 1);
	/* verified: both count */
	write_path(path,
		   "mynaguard-totp 2\ntype hardware\nserial TK-0001\nenrolled 1764097538\n"
		   "verified 1764097601\nsecret JBSWY3DPEHPK3PXP\n",
		   0600);
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "2 interactive users enrolled");
	/* a malformed version 2 head is a bad record: a line missing (the read stops at the
	 * unexpected "secret" line), a leading zero */
	write_path(path,
		   "mynaguard-totp 2\ntype hardware\nsecret JBSWY3DPEHPK3PXP\nenrolled 1\n"
		   "verified 1\n",
		   0600);
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "bad record: bob (not a \"mynaguard-totp 2\" record)");
	write_path(
	    path,
	    "mynaguard-totp 2\ntype totp\nserial -\nenrolled 1\nverified 01\nsecret JBSWY3DP\n",
	    0600);
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "bad record: bob (not a \"mynaguard-totp 2\" record)");
}

static void test_enrollment_store_missing_or_open(void **state)
{
	struct fx *f = *state;

	users_fixture(f);
	assert_int_equal(chmod(f->totp, 0755), 0);
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "accessible by group or others");

	f->env.totp_dir = "/nonexistent/mynaguard/totp";
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "not enrolled: alice, bob");
}

static void test_enrollment_nullok_policy(void **state)
{
	struct fx *f = *state;

	users_fixture(f);
	fx_set_policy(f, "[terminal]\nid = t1\n[mfa]\nnullok = yes\n");
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "policy sets nullok");
}

struct scan_seen {
	char log[512];
};

static void scan_user(void *userdata, const char *user, enum compliance_record_state st,
		      const char *why)
{
	struct scan_seen *seen = userdata;
	size_t o = strlen(seen->log);

	snprintf(seen->log + o, sizeof(seen->log) - o, "%s:%d:%s;", user ? user : "(null)", (int)st,
		 why);
}

/* The scan mynaguardctl status shares with the check: every interactive user once, counts. */
static void test_enrollment_scan(void **state)
{
	struct fx *f = *state;
	struct scan_seen seen = {{0}};
	struct compliance_enrollment e;
	char path[PATH_MAX];

	users_fixture(f);
	snprintf(path, sizeof(path), "%s/bob", f->totp);
	write_path(path, "", 0600);
	snprintf(path, sizeof(path), "%s/carol", f->totp); /* no such user: not counted */
	write_path(path, "mynaguard-totp 1\n", 0600);
	fx_write(f, "etc/passwd",
		 "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
		 "bob:x:1001:1001:Bob:/home/bob:\n"
		 "dave:x:1003:1003::/home/dave:/bin/sh\n"
		 ".hidden:x:1004:1004::/:/bin/sh\n");
	assert_int_equal(compliance_enrollment_scan(&f->env, scan_user, &seen, &e), 0);
	assert_int_equal(e.interactive, 4);
	assert_int_equal(e.enrolled, 1);
	assert_int_equal(e.missing, 1);
	assert_int_equal(e.bad, 2);
	assert_false(e.store_missing);
	assert_null(e.failed);
	assert_non_null(strstr(seen.log, "alice:0:;bob:2:empty record;dave:1:;(null):2:unusable "
					 "user name in "));
	/* fn may be NULL */
	assert_int_equal(compliance_enrollment_scan(&f->env, NULL, NULL, &e), 0);
	assert_int_equal(e.enrolled, 1);

	/* an unsafe store: the error, naming the store */
	assert_int_equal(chmod(f->totp, 0755), 0);
	assert_int_equal(compliance_enrollment_scan(&f->env, NULL, NULL, &e), -EACCES);
	assert_ptr_equal(e.failed, f->env.totp_dir);
	assert_int_equal(chmod(f->totp, 0700), 0);
	/* no store: everyone missing; no passwd: the error, naming passwd */
	f->env.totp_dir = "/nonexistent/mynaguard/totp";
	assert_int_equal(compliance_enrollment_scan(&f->env, NULL, NULL, &e), 0);
	assert_true(e.store_missing);
	assert_int_equal(e.missing, 3);
	assert_int_equal(e.bad, 1);
	f->env.passwd_path = "/nonexistent/passwd";
	assert_int_equal(compliance_enrollment_scan(&f->env, NULL, NULL, &e), -ENOENT);
	assert_ptr_equal(e.failed, f->env.passwd_path);
}

static void test_enrollment_min_uid_and_no_users(void **state)
{
	struct fx *f = *state;

	users_fixture(f);
	fx_set_policy(f, "[terminal]\nid = t1\n[checks]\nmin_uid = 1001\n");
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "1 interactive user enrolled");

	fx_write(f, "etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
	compliance_check_mfa_enrollment(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "no interactive local users");
}

/* ---- time.synchronized ---- */

static void test_time(void **state)
{
	struct fx *f = *state;

	compliance_check_time_synchronized(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "kernel clock synchronized (estimated error 1234 us)");

	fake_adjtimex_status = STA_UNSYNC;
	compliance_check_time_synchronized(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "clock not synchronized");

	fake_adjtimex_status = 0;
	fake_adjtimex_state = TIME_ERROR;
	compliance_check_time_synchronized(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "clock not synchronized");

	fake_adjtimex_state = -1;
	compliance_check_time_synchronized(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "clock state unknown");

	fx_write(f, "run/timesync/synchronized", "");
	compliance_check_time_synchronized(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "systemd-timesyncd reports synchronized");
}

/* ---- agent.integrity ---- */

static void integrity_fixture(struct fx *f)
{
	char unit[PATH_MAX];
	const char *paths[] = {f->policy_path, f->udev, unit, NULL};

	snprintf(unit, sizeof(unit), "%s/etc/systemd/system/mynaguardd.service", f->root);
	fx_write(f, "etc/udev/rules.d/70-mynaguard.rules", "# rule\n");
	fx_write(f, "etc/systemd/system/mynaguardd.service",
		 "[Service]\nExecStart=/usr/sbin/mynaguardd\n");
	fx_manifest(f, paths, 0644);
}

static void test_integrity_pass(void **state)
{
	struct fx *f = *state;

	integrity_fixture(f);
	compliance_check_agent_integrity(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "3 files match");
}

static void test_integrity_tampered_policy(void **state)
{
	struct fx *f = *state;

	integrity_fixture(f);
	write_path(f->policy_path, "[terminal]\nid = t1\n[usb]\nmode = audit\n", 0644);
	compliance_check_agent_integrity(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "modified: ");
	assert_non_null(strstr(f->res.detail, "policy.conf"));
}

static void test_integrity_missing_unit(void **state)
{
	struct fx *f = *state;
	char unit[PATH_MAX];

	integrity_fixture(f);
	snprintf(unit, sizeof(unit), "%s/etc/systemd/system/mynaguardd.service", f->root);
	assert_int_equal(unlink(unit), 0);
	compliance_check_agent_integrity(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "missing: ");
}

static void test_integrity_manifest_problems(void **state)
{
	struct fx *f = *state;
	const char *no_policy[] = {f->udev, NULL};

	integrity_fixture(f);
	assert_int_equal(chmod(f->manifest, 0666), 0);
	compliance_check_agent_integrity(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "writable by group or others");

	write_path(f->manifest, "not a manifest line\n", 0644);
	compliance_check_agent_integrity(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "installed.sha256:1: malformed line");

	fx_manifest(f, no_policy, 0644);
	compliance_check_agent_integrity(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "policy.conf not in the install manifest");

	assert_int_equal(unlink(f->manifest), 0);
	compliance_check_agent_integrity(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "no install manifest");
}

static void test_manifest_parse(void **state)
{
	struct compliance_manifest m = {0};
	unsigned line = 0;
	char text[1024];
	const char hex[] = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";

	(void)state;
	snprintf(text, sizeof(text), "# comment\n\n%s  /etc/a b\r\n%s */etc/c\n", hex, hex);
	assert_int_equal(compliance_manifest_parse(text, strlen(text), &m, &line), 0);
	assert_int_equal(m.n, 2);
	assert_string_equal(m.entries[0].path, "/etc/a b");
	assert_string_equal(m.entries[0].hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_string_equal(m.entries[1].path, "/etc/c");
	assert_non_null(compliance_manifest_find(&m, "/etc/c"));
	assert_null(compliance_manifest_find(&m, "/etc/d"));
	compliance_manifest_clear(&m);

	static const char *const bad[] = {
	    "e3b0  /etc/a\n",
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g  /etc/a\n",
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  relative\n",
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 /etc/one-space\n",
	    "\\e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  /etc/esc\\\\n\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		line = 0;
		assert_int_equal(compliance_manifest_parse(bad[i], strlen(bad[i]), &m, &line),
				 -EINVAL);
		assert_int_equal(line, 1);
	}
}

/* ---- net.isolation ---- */

static void test_net_isolation(void **state)
{
	struct fx *f = *state;
	static const char header[] =
	    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
	char text[1024];

	snprintf(text, sizeof(text), "%s%s", header,
		 "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
	fx_write(f, "proc-root/proc/net/route", text);
	fx_write(f, "proc-root/proc/net/ipv6_route",
		 "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
		 "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n");
	compliance_check_net_isolation(&f->env, &f->res);
	assert_status(f, COMPLIANCE_PASS, "no default route");

	snprintf(text, sizeof(text), "%s%s%s", header,
		 "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
		 "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
	fx_write(f, "proc-root/proc/net/route", text);
	compliance_check_net_isolation(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "IPv4 default route via eth0");

	snprintf(text, sizeof(text), "%s", header);
	fx_write(f, "proc-root/proc/net/route", text);
	fx_write(f, "proc-root/proc/net/ipv6_route",
		 "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
		 "fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth1\n");
	compliance_check_net_isolation(&f->env, &f->res);
	assert_status(f, COMPLIANCE_FAIL, "IPv6 default route via eth1");
}

/* ---- running everything, the event data ---- */

static void test_run_all_and_json(void **state)
{
	struct fx *f = *state;
	struct compliance_result results[_POLICY_CHECK_MAX];
	json_t *data = NULL, *clauses = NULL, *checks, *c;
	char hex[65], want[80];
	size_t i;

	default_deny_fixture(f);
	storage_fixture(f, "0\n");
	pam_debian(f, debian_common_auth);
	users_fixture(f);
	{
		const char *paths[] = {f->policy_path, f->udev, NULL};
		fx_manifest(f, paths, 0644);
	}
	compliance_run_all(&f->env, results);
	for (i = 0; i < _POLICY_CHECK_MAX; i++) {
		assert_int_equal(results[i].check, i);
		if (i == POLICY_CHECK_NET_ISOLATION) {
			assert_int_equal(results[i].status, COMPLIANCE_NOT_APPLICABLE);
			assert_string_equal(results[i].detail, "disabled by policy");
		} else if (results[i].status != COMPLIANCE_PASS)
			fail_msg("%s: %s", policy_check_id(results[i].check), results[i].detail);
	}

	assert_int_equal(compliance_to_json(&f->env, results, _POLICY_CHECK_MAX, &data, &clauses),
			 0);
	assert_int_equal(compliance_sha256_file(f->policy_path, hex), 0);
	snprintf(want, sizeof(want), "sha256:%s", hex);
	assert_string_equal(json_string_value(json_object_get(data, "policy_hash")), want);
	assert_string_equal(json_string_value(json_object_get(data, "policy_path")),
			    f->policy_path);
	assert_true(json_is_true(json_object_get(data, "compliant")));
	assert_int_equal(json_integer_value(json_object_get(data, "interval_s")), 900);
	assert_int_equal(json_object_size(data), 5);
	checks = json_object_get(data, "checks");
	assert_int_equal(json_array_size(checks), _POLICY_CHECK_MAX);
	json_array_foreach(checks, i, c)
	{
		assert_string_equal(json_string_value(json_object_get(c, "id")),
				    policy_check_id((enum policy_check)i));
		assert_true(json_is_array(json_object_get(c, "clause")));
		assert_true(json_array_size(json_object_get(c, "clause")) > 0);
		assert_non_null(json_string_value(json_object_get(c, "status")));
		assert_non_null(json_string_value(json_object_get(c, "detail")));
		assert_int_equal(json_object_size(c), 4);
	}
	/* the union of the clauses of the checks that ran: net.isolation (2-6-3-a only) adds
	 * nothing new, the others give these five */
	assert_int_equal(json_array_size(clauses), 5);
	for (const char *const *cl =
		 (const char *const[]){"2-6-3-a", "2-3-2", "2-6-6", "2-2-7", "2-6-7", NULL};
	     *cl; cl++) {
		bool found = false;
		json_t *v;
		json_array_foreach(clauses, i, v)
		{
			if (strcmp(json_string_value(v), *cl) == 0)
				found = true;
		}
		assert_true(found);
	}

	/* the strict event codec (what the collector runs) accepts it */
	{
		struct event e = {.seq = 7, .ts_ms = 1764097538000, .kind = EVENT_COMPLIANCE};
		struct event back = {0};
		char reason[EVENT_REASON_MAX] = "";
		char *text = NULL;
		size_t len = 0;

		snprintf(e.terminal, sizeof(e.terminal), "t1");
		e.clause = clauses;
		e.data = data;
		assert_int_equal(event_encode(&e, &text, &len), 0);
		if (event_decode(text, len, &back, reason) < 0)
			fail_msg("codec refused the event: %s", reason);
		assert_int_equal(back.kind, EVENT_COMPLIANCE);
		assert_true(json_equal(back.data, data));
		event_clear(&back);
		free(text);
	}
	json_decref(data);
	json_decref(clauses);

	/* one failing check makes the snapshot non-compliant */
	fx_write(f, "sysfs/sys/bus/usb/devices/usb1/interface_authorized_default", "1\n");
	compliance_run_all(&f->env, results);
	assert_int_equal(results[POLICY_CHECK_USB_DEFAULT_DENY].status, COMPLIANCE_FAIL);
	assert_int_equal(compliance_to_json(&f->env, results, _POLICY_CHECK_MAX, &data, &clauses),
			 0);
	assert_true(json_is_false(json_object_get(data, "compliant")));
	json_decref(data);
	json_decref(clauses);
}

static void test_disabled_checks(void **state)
{
	struct fx *f = *state;
	struct compliance_result results[_POLICY_CHECK_MAX];
	json_t *data = NULL, *clauses = NULL;

	fx_set_policy(f, "[terminal]\nid = t1\n[checks]\nusb.default_deny = no\n"
			 "usb.no_unapproved_storage = no\nmfa.pam_stack = no\nmfa.enrollment = no\n"
			 "time.synchronized = yes\nagent.integrity = no\nnet.isolation = no\n");
	compliance_run_all(&f->env, results);
	for (size_t i = 0; i < _POLICY_CHECK_MAX; i++)
		if (i != POLICY_CHECK_TIME_SYNCHRONIZED)
			assert_int_equal(results[i].status, COMPLIANCE_NOT_APPLICABLE);
	assert_int_equal(compliance_to_json(&f->env, results, _POLICY_CHECK_MAX, &data, &clauses),
			 0);
	assert_int_equal(json_array_size(clauses), 1);
	assert_string_equal(json_string_value(json_array_get(clauses, 0)), "2-6-6");
	assert_true(json_is_true(json_object_get(data, "compliant")));
	json_decref(data);
	json_decref(clauses);

	/* an unreadable policy file: no policy_hash at all (the codec wants a string) */
	assert_int_equal(unlink(f->policy_path), 0);
	assert_int_equal(compliance_to_json(&f->env, results, _POLICY_CHECK_MAX, &data, &clauses),
			 0);
	assert_null(json_object_get(data, "policy_hash"));
	assert_string_equal(json_string_value(json_object_get(data, "policy_path")),
			    f->policy_path);
	json_decref(data);
	json_decref(clauses);
}

static void test_env_default(void **state)
{
	struct fx *f = *state;
	struct compliance_env env;
	char buf[2 * PATH_MAX];

	assert_int_equal(compliance_env_default(&env, f->p, "/etc/mynaguard/policy.conf",
						"/var/lib/mynaguard/", buf, sizeof(buf)),
			 0);
	assert_string_equal(env.totp_dir, "/var/lib/mynaguard/totp");
	assert_string_equal(env.manifest_path, "/var/lib/mynaguard/installed.sha256");
	assert_string_equal(env.udev_rule, "/etc/udev/rules.d/70-mynaguard.rules");
	assert_string_equal(env.pam_dir, "/etc/pam.d");
	assert_string_equal(env.passwd_path, "/etc/passwd");
	assert_int_equal(env.owner_uid, 0);
	assert_non_null(env.adjtimex);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_default_deny_pass),
	    T(test_default_deny_hub_authorizes),
	    T(test_default_deny_hub_unreadable),
	    T(test_default_deny_rule_modified),
	    T(test_default_deny_rule_missing),
	    T(test_default_deny_rule_not_in_manifest),
	    T(test_default_deny_no_manifest),
	    T(test_default_deny_audit_mode),
	    T(test_storage_blocked_pass),
	    T(test_storage_authorized_fail),
	    T(test_storage_authorized_allow_listed),
	    T(test_storage_allow_list_other_serial),
	    T(test_storage_missing_authorized_counts_as_authorized),
	    T(test_storage_hostile_serial_escaped),
	    T(test_storage_allow_listed_by_hash),
	    T(test_storage_invalid_devices),
	    T(test_pam_debian_profile_pass),
	    T(test_pam_direct_pass),
	    T(test_pam_mynaguard_before_password),
	    T(test_pam_nullok),
	    T(test_pam_optional),
	    T(test_pam_dash_auth),
	    T(test_pam_sufficient_skips),
	    T(test_pam_sufficient_after_password),
	    T(test_pam_jump_over),
	    T(test_pam_substack_scoped),
	    T(test_pam_jump_counts_substack_as_one),
	    T(test_pam_missing_service),
	    T(test_pam_missing_include),
	    T(test_pam_include_loop),
	    T(test_pam_include_depth),
	    T(test_pam_not_in_stack),
	    T(test_pam_only_in_other_type),
	    T(test_pam_comment_and_continuation),
	    T(test_pam_several_services),
	    T(test_pam_missing_service_uses_other),
	    T(test_pam_reset_after),
	    T(test_pam_malformed_lines),
	    T(test_enrollment_pass),
	    T(test_enrollment_missing),
	    T(test_enrollment_world_readable),
	    T(test_enrollment_empty_and_symlink),
	    T(test_enrollment_not_a_record),
	    T(test_enrollment_pending),
	    T(test_enrollment_store_missing_or_open),
	    T(test_enrollment_nullok_policy),
	    T(test_enrollment_scan),
	    T(test_enrollment_min_uid_and_no_users),
	    T(test_time),
	    T(test_integrity_pass),
	    T(test_integrity_tampered_policy),
	    T(test_integrity_missing_unit),
	    T(test_integrity_manifest_problems),
	    T(test_manifest_parse),
	    T(test_net_isolation),
	    T(test_run_all_and_json),
	    T(test_disabled_checks),
	    T(test_env_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
