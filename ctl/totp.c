/* SPDX-License-Identifier: MIT */
/* mynaguardctl totp: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "ctl.h"

int ctl_totp(const struct ctl_opts *o, int argc, char **argv)
{
	(void)o;
	(void)argc;
	(void)argv;
	fputs("mynaguardctl: 'totp' is not available in this build yet\n", stderr);
	return 2;
}
