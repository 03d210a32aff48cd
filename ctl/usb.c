/* SPDX-License-Identifier: MIT */
/* mynaguardctl usb: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "ctl.h"

int ctl_usb(const struct ctl_opts *o, int argc, char **argv)
{
	(void)o;
	(void)argc;
	(void)argv;
	fputs("mynaguardctl: 'usb' is not available in this build yet\n", stderr);
	return 2;
}
