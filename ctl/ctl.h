/* SPDX-License-Identifier: MIT */
/* mynaguardctl: shared declarations of the subcommand files (one file per subcommand). */
#pragma once

#include <stdbool.h>

struct ctl_opts {
	const char *policy_path; /* --policy, default MYNAGUARD_POLICY_PATH */
	bool assume_yes;	 /* --yes: answer confirmations with yes */
};

/* Each returns the process exit code: 0 ok, 1 failure/refusal, 2 usage error.
 * argv[0] is the subcommand word ("policy", "totp", ...). */
int ctl_policy(const struct ctl_opts *o, int argc, char **argv);
int ctl_totp(const struct ctl_opts *o, int argc, char **argv);
int ctl_usb(const struct ctl_opts *o, int argc, char **argv);
int ctl_status(const struct ctl_opts *o, int argc, char **argv);
/* fleet: keygen, sign-base, show (ctl/fleet.c); remote subcommands join its table. */
int ctl_fleet(const struct ctl_opts *o, int argc, char **argv);
/* fleet group|policy|exception|request|ledger: the collector's fleet endpoints
 * (ctl/fleet-remote.c); argv[0] is the word after "fleet". */
int ctl_fleet_remote(int argc, char **argv);

/* Print the QR code of an otpauth URI on the terminal (ctl/totp.c); wipes its copy. */
void ctl_totp_print_qr(const char *uri);
/* The code now shown in user's authenticator: one line from stdin, one byte at a time (no stdio
 * buffer keeps it), echo off on a terminal; blanks removed ("123 456"). -ENODATA at the end of
 * input. The buffer is wiped by the caller. */
int ctl_totp_read_code(const char *user, char *code, size_t size);

/* Ask "question [y/N] " on the terminal; true only for y/yes. --yes answers yes. */
bool ctl_confirm(const struct ctl_opts *o, const char *question);
