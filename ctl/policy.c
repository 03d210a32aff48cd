/* SPDX-License-Identifier: MIT */
/* mynaguardctl policy check: validate the policy file and say in plain words what it enforces. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "policy.h"

static void policy_usage(FILE *f)
{
	fputs("Usage: mynaguardctl [--policy FILE] policy check\n"
	      "\n"
	      "Validate the policy (default " MYNAGUARD_POLICY_PATH ").\n"
	      "Exit 0 with a summary of what it enforces, 1 with FILE:LINE: message per error.\n",
	      f);
}

static void format_duration(uint64_t sec, char *buf, size_t size)
{
	static const struct {
		uint64_t sec;
		const char *one, *many;
	} units[] = {
	    {86400, "day", "days"},
	    {3600, "hour", "hours"},
	    {60, "minute", "minutes"},
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (sec >= units[i].sec && sec % units[i].sec == 0) {
			uint64_t n = sec / units[i].sec;
			snprintf(buf, size, "%" PRIu64 " %s", n,
				 n == 1 ? units[i].one : units[i].many);
			return;
		}
	}
	snprintf(buf, size, "%" PRIu64 " %s", sec, sec == 1 ? "second" : "seconds");
}

static void format_size(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = {"bytes", "KiB", "MiB", "GiB"};
	size_t u = 0;

	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes >= 1024 && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, size, "%" PRIu64 " %s", bytes, units[u]);
}

static const char *describe_name(const char *name)
{
	static const struct {
		const char *name, *what;
	} names[] = {
	    {"mass_storage", "USB sticks, external disks and memory-card readers"},
	    {"still_image", "cameras and phones in PTP mode"},
	    {"mtp", "phones and media players in MTP mode"},
	    {"cdc_net", "USB network adapters, tethering, modems and USB serial (CDC)"},
	    {"comm", "CDC communication: network adapters, modems, USB serial"},
	    {"cdc_data", "CDC data interfaces of network adapters and modems"},
	    {"wireless", "Bluetooth adapters and RNDIS tethering"},
	    {"rndis", "RNDIS tethering (phones sharing their network)"},
	    {"audio", "headsets, microphones and other audio devices"},
	    {"printer", "printers"},
	    {"video", "webcams"},
	    {"physical", "physical interface devices"},
	    {"content_security", "content security devices"},
	    {"personal_healthcare", "personal healthcare devices"},
	    {"audio_video", "audio/video devices"},
	    {"billboard", "USB-C billboard devices"},
	    {"type_c_bridge", "USB-C bridges"},
	    {"diagnostic", "diagnostic devices"},
	    {"misc", "miscellaneous devices"},
	    {"app_specific", "firmware-update and IrDA interfaces"},
	    {"vendor_net", "vendor-class USB network adapters (Realtek RTL8153, ASIX AX88179)"},
	    {"usbmux", "iPhone and iPad file access and sync (Apple usbmux)"},
	    {"adb", "Android debugging, which copies files off (adb)"},
	    {"vendor_specific",
	     "every other vendor-specific function (card readers: list them as reader)"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i].name, name) == 0)
			return names[i].what;
	return NULL;
}

/* One line per name: consecutive entries of one name (cdc_net = 02 + 0a) are shown together. */
static void print_block_list(const struct policy *p)
{
	for (size_t i = 0; i < p->n_usb_block;) {
		const struct policy_usb_class *c = &p->usb_block[i];
		const char *what = describe_name(c->name);
		char code[16];
		size_t j;

		policy_usb_class_code(c, code, sizeof(code));
		if (c->mtp) {
			printf("    - mtp: %s\n", what);
			i++;
			continue;
		}
		if (strcmp(c->name, code) == 0) {
			const char *cname = c->subclass < 0 && c->protocol < 0
						? policy_usb_class_name(c->cls)
						: NULL;
			printf("    - class %s%s%s%s\n", code, cname ? " (" : "",
			       cname ? cname : "", cname ? ")" : "");
			i++;
			continue;
		}
		printf("    - %s (%s", c->name, code);
		for (j = i + 1; j < p->n_usb_block && strcmp(p->usb_block[j].name, c->name) == 0;
		     j++) {
			policy_usb_class_code(&p->usb_block[j], code, sizeof(code));
			printf(", %s", code);
		}
		printf(")%s%s\n", what ? ": " : "", what ? what : "");
		i = j;
	}
}

static bool blocks_all_vendor_specific(const struct policy *p)
{
	for (size_t i = 0; i < p->n_usb_block; i++)
		if (!p->usb_block[i].mtp && p->usb_block[i].cls == 0xff &&
		    p->usb_block[i].subclass < 0 && p->usb_block[i].protocol < 0)
			return true;
	return false;
}

static void print_summary(const struct policy *p)
{
	char a[64], b[64];
	size_t n;

	printf("%s: valid.\n\n", p->path);
	printf("Terminal: %s\n", p->terminal_id);
	if (strncmp(p->terminal_id, "CHANGE-ME", 9) == 0)
		printf("  (still the shipped placeholder: give each terminal its own id)\n");
	if (p->description)
		printf("  %s\n", p->description);
	if (p->terminal_contact)
		printf("  Contact (shown when a device is blocked or an account locked): %s\n",
		       p->terminal_contact);
	if (p->fleet) {
		printf("  Managed by the fleet: group %s, base version %" PRIu64
		       "; exceptions may open ",
		       p->fleet_group, p->fleet_version);
		if (p->n_fleet_grant_classes == 0)
			printf("nothing");
		for (size_t i = 0; i < p->n_fleet_grant_classes; i++)
			printf("%s%s", i ? ", " : "", p->fleet_grant_classes[i].name);
		printf(" (at most %u days)\n", p->fleet_grant_max_days);
	}
	printf("\n");

	if (p->usb_mode == POLICY_USB_ENFORCE)
		printf(
		    "USB (mode enforce): these USB functions are blocked; devices that have them "
		    "cannot be used\nunless they are on the allow-list:\n");
	else
		printf(
		    "USB (mode audit): nothing is blocked. Devices that enforce mode would block "
		    "are only reported:\n");
	if (p->n_usb_block == 0)
		printf("    (none: block = none)\n");
	print_block_list(p);
	printf("  Never blocked: hubs (09), keyboards and mice (HID, 03) and smart-card readers "
	       "(0b),\n  so clerks can always type and read My Number cards.\n");
	if (p->n_usb_allow == 0)
		printf("  Allow-list: empty; no device is exempt.\n");
	else
		printf("  Allow-list (%zu %s; their blocked functions are allowed):\n",
		       p->n_usb_allow, p->n_usb_allow == 1 ? "device" : "devices");
	for (size_t i = 0; i < p->n_usb_allow; i++) {
		const struct policy_usb_allow *al = &p->usb_allow[i];
		printf("    - line %u: %04x:%04x", al->line, (unsigned)al->vendor,
		       (unsigned)al->product);
		printf(", %s%s", al->serial ? "serial " : "any serial",
		       al->serial ? al->serial : "");
		if (al->descriptor_hash)
			printf(", descriptors sha256:%.16s...", al->descriptor_hash);
		if (al->name)
			printf(" (%s)", al->name);
		printf("\n");
	}
	if (p->n_usb_readers > 0)
		printf("  Card and NFC readers (%zu; their vendor-specific functions are allowed, "
		       "MTP is not):\n",
		       p->n_usb_readers);
	for (size_t i = 0; i < p->n_usb_readers; i++) {
		const struct policy_usb_allow *r = &p->usb_readers[i];
		printf("    - line %u: %04x:%04x%s%s%s%s%s\n", r->line, (unsigned)r->vendor,
		       (unsigned)r->product, r->serial ? ", serial " : "",
		       r->serial ? r->serial : "", r->name ? " (" : "", r->name ? r->name : "",
		       r->name ? ")" : "");
	}
	if (p->n_usb_readers == 0 && blocks_all_vendor_specific(p))
		printf("  No reader is listed: NFC card readers of the vendor-specific class (e.g. "
		       "Sony PaSoRi)\n  are blocked too; add them with \"reader = VVVV:PPPP\".\n");
	if (p->usb_strict_modprobe)
		printf(
		    "  strict_modprobe: the usb-storage and uas kernel modules are refused when no "
		    "storage device is allowed.\n");
	printf("\n");

	n = p->n_mfa_services;
	if (n == 0) {
		printf("Login (MFA): no service requires a one-time code (services = none).\n\n");
	} else {
		/* "  for: SERVICES." stays on a line of its own: install.sh reads it. */
		printf(
		    "Login (MFA): password plus a %u-digit one-time code (TOTP, %u-second steps,\n"
		    "  %u %s either side accepted)\n  for: ",
		    p->mfa_digits, p->mfa_step, p->mfa_window,
		    p->mfa_window == 1 ? "step" : "steps");
		for (size_t i = 0; i < n; i++)
			printf("%s%s", p->mfa_services[i], i + 1 < n ? ", " : ".\n");
		format_duration(p->mfa_lockout_sec, a, sizeof(a));
		printf("  After %u wrong %s in a row the second factor is locked for %s.\n",
		       p->mfa_max_failures, p->mfa_max_failures == 1 ? "code" : "codes", a);
		if (p->mfa_nullok)
			printf(
			    "  nullok = yes: users WITHOUT an enrolled authenticator log in with the "
			    "password alone.\n\n");
		else
			printf("  Users without an enrolled authenticator cannot log in (nullok = "
			       "no).\n\n");
	}

	format_duration(p->report_interval_sec, a, sizeof(a));
	format_size(p->report_spool_max, b, sizeof(b));
	if (p->report_collector)
		printf("Reports: events and a compliance report every %s go to %s\n"
		       "  (client certificate %s, key %s, CA %s).\n",
		       a, p->report_collector, p->report_cert, p->report_key, p->report_ca);
	else
		printf("Reports: no collector set ([report] collector); events and a compliance "
		       "report every %s\n  stay in the local spool.\n",
		       a);
	printf("  The spool keeps at most %s; uploads carry at most %u events.\n\n", b,
	       p->report_batch_max);

	printf("Compliance checks (clauses of the security policy):\n");
	for (unsigned i = 0; i < _POLICY_CHECK_MAX; i++) {
		const char *const *cl = policy_check_clauses((enum policy_check)i);
		printf("  %-26s %-3s ", policy_check_id((enum policy_check)i),
		       p->checks_enabled[i] ? "on" : "off");
		for (size_t j = 0; cl[j]; j++)
			printf("%s%s", j ? ", " : "", cl[j]);
		printf("\n");
	}
	printf("  Interactive users are those with uid %u and above.\n",
	       (unsigned)p->checks_min_uid);
}

int ctl_policy(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	_cleanup_policy_ struct policy *p = NULL;
	struct policy_errors errs = {0};
	int c, r;

	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			policy_usage(stdout);
			return 0;
		}
		policy_usage(stderr);
		return 2;
	}
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			policy_usage(stdout);
			return 0;
		default:
			policy_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mynaguardctl: policy check: unexpected argument '%s'\n",
			argv[optind]);
		policy_usage(stderr);
		return 2;
	}

	r = policy_load(o->policy_path, &p, &errs);
	if (r == -ENOMEM) {
		fputs("mynaguardctl: out of memory\n", stderr);
		policy_errors_clear(&errs);
		return 1;
	}
	if (r < 0) {
		char line[512];
		for (size_t i = 0; i < errs.n; i++) {
			policy_error_format(&errs, i, line, sizeof(line));
			fprintf(stderr, "%s\n", line);
		}
		if (errs.n_dropped > 0)
			fprintf(stderr, "%s: ... and %zu more errors\n", o->policy_path,
				errs.n_dropped);
		policy_errors_clear(&errs);
		return 1;
	}
	policy_errors_clear(&errs);
	print_summary(p);
	return fflush(stdout) == 0 ? 0 : 1;
}
