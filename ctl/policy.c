/* SPDX-License-Identifier: MIT */
/* mynaguardctl policy: placeholder until the policy parser lands. */
#include <stdio.h>

#include "ctl.h"

int ctl_policy(const struct ctl_opts *o, int argc, char **argv)
{
	(void)o;
	(void)argc;
	(void)argv;
	fputs("mynaguardctl: 'policy' is not available in this build yet\n", stderr);
	return 2;
}
