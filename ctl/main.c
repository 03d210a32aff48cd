/* SPDX-License-Identifier: MIT */
/* mynaguardctl: the admin CLI entry point; dispatches to one file per subcommand. Runs as root. */
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"

static void usage(FILE *f)
{
	fputs("Usage: mynaguardctl [--policy FILE] [--yes] COMMAND ...\n"
	      "\n"
	      "Commands:\n"
	      "  policy check                 validate the policy and say what it enforces\n"
	      "  totp enroll USER [...]       create a TOTP secret and show its QR code\n"
	      "  totp verify USER             the clerk types a code once: the enrollment counts\n"
	      "  totp status|reset|remove USER\n"
	      "  totp list [--json]           who is enrolled, verified or pending, locked\n"
	      "  totp import FILE             enroll hardware tokens from a seed file (CSV)\n"
	      "  usb list                     present USB devices and the policy's verdict\n"
	      "  usb allow VID:PID [...]      add a device to the allow-list\n"
	      "  status                       what this terminal enforces right now\n"
	      "  fleet keygen|sign-base|show  fleet keys, signing a group's base policy\n"
	      "\n"
	      "See mynaguardctl(8).\n",
	      f);
}

bool ctl_confirm(const struct ctl_opts *o, const char *question)
{
	char line[16];

	if (o->assume_yes)
		return true;
	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\n")] = '\0';
	return strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 || strcmp(line, "yes") == 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"policy", required_argument, NULL, 'p'},
	    {"yes", no_argument, NULL, 'y'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	struct ctl_opts o = {.policy_path = MYNAGUARD_POLICY_PATH};
	int c;

	setlocale(LC_ALL, "");
	/* '+': stop at the first non-option so subcommands parse their own options. */
	while ((c = getopt_long(argc, argv, "+p:yhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o.policy_path = optarg;
			break;
		case 'y':
			o.assume_yes = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			puts("mynaguardctl " MYNAGUARD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	argc -= optind;
	argv += optind;
	optind = 1; /* subcommands call getopt again on their own argv */

	if (strcmp(argv[0], "policy") == 0)
		return ctl_policy(&o, argc, argv);
	if (strcmp(argv[0], "totp") == 0)
		return ctl_totp(&o, argc, argv);
	if (strcmp(argv[0], "usb") == 0)
		return ctl_usb(&o, argc, argv);
	if (strcmp(argv[0], "status") == 0)
		return ctl_status(&o, argc, argv);
	if (strcmp(argv[0], "fleet") == 0)
		return ctl_fleet(&o, argc, argv);
	fprintf(stderr, "mynaguardctl: unknown command '%s'\n", argv[0]);
	usage(stderr);
	return 2;
}
