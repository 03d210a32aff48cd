/* SPDX-License-Identifier: MIT */
/* Test helper: run every compliance check against a tree made by `install.sh --root ROOT`. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compliance.h"
#include "policy.h"

/* Usage: check-tree ROOT
 * Every path the checks read is taken under ROOT (policy ROOT/etc/mynaguard/policy.conf, PAM
 * ROOT/etc/pam.d, users ROOT/etc/passwd, state ROOT/var/lib/mynaguard, sysfs ROOT/sys, ...),
 * and the manifest's paths too. Prints the compliance event's data on stdout; exit 0 when
 * compliant, 1 when not, 2 on a usage or policy error. */
int main(int argc, char **argv)
{
	char policy_path[PATH_MAX], pam[PATH_MAX], passwd[PATH_MAX], totp[PATH_MAX],
	    manifest[PATH_MAX], udev[PATH_MAX], flag[PATH_MAX];
	struct compliance_result results[_POLICY_CHECK_MAX];
	struct policy_errors errs = {0};
	struct policy *p = NULL;
	json_t *data = NULL, *clauses = NULL;
	const char *root;
	char *text;
	bool compliant;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: %s ROOT\n", argv[0]);
		return 2;
	}
	root = argv[1];
	snprintf(policy_path, sizeof(policy_path), "%s/etc/mynaguard/policy.conf", root);
	snprintf(pam, sizeof(pam), "%s/etc/pam.d", root);
	snprintf(passwd, sizeof(passwd), "%s/etc/passwd", root);
	snprintf(totp, sizeof(totp), "%s/var/lib/mynaguard/totp", root);
	snprintf(manifest, sizeof(manifest), "%s/var/lib/mynaguard/installed.sha256", root);
	snprintf(udev, sizeof(udev), "%s%s", root, COMPLIANCE_UDEV_RULE);
	snprintf(flag, sizeof(flag), "%s%s", root, COMPLIANCE_TIMESYNC_FLAG);

	r = policy_load(policy_path, &p, &errs);
	if (r < 0) {
		for (size_t i = 0; i < errs.n; i++) {
			char buf[300];
			policy_error_format(&errs, i, buf, sizeof(buf));
			fprintf(stderr, "%s\n", buf);
		}
		policy_errors_clear(&errs);
		return 2;
	}
	policy_errors_clear(&errs);

	const struct compliance_env env = {
	    .policy = p,
	    .policy_path = policy_path,
	    .sysfs_root = root,
	    .pam_dir = pam,
	    .passwd_path = passwd,
	    .totp_dir = totp,
	    .manifest_path = manifest,
	    .udev_rule = udev,
	    .timesync_flag = flag,
	    .proc_root = root,
	    .manifest_root = root,
	    .owner_uid = geteuid(),
	    .adjtimex = adjtimex,
	};
	compliance_run_all(&env, results);
	r = compliance_to_json(&env, results, _POLICY_CHECK_MAX, &data, &clauses);
	policy_free(p);
	if (r < 0) {
		fprintf(stderr, "check-tree: %s\n", strerror(-r));
		return 2;
	}
	compliant = json_is_true(json_object_get(data, "compliant"));
	text = json_dumps(data, JSON_INDENT(1));
	if (text)
		puts(text);
	free(text);
	json_decref(data);
	json_decref(clauses);
	return compliant ? 0 : 1;
}
