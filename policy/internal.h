/* SPDX-License-Identifier: MIT */
/* policy/: declarations shared between the parser and the USB class table. Not installed. */
#pragma once

#include <stddef.h>

#include "policy.h"

/* Parse one word of a "block =" list ("mass_storage", "08", "0x08", "e0:01:03", "ff:*:*") and
 * append its entries to list (*n entries, at most POLICY_MAX_BLOCK): [usb] block and [fleet]
 * grant_classes. Returns 0, or -EINVAL/-E2BIG/-EEXIST/-EPERM with a message (what was expected)
 * in err. */
int policy_usb_class_parse(struct policy_usb_class *list, size_t *n, const char *word, char *err,
			   size_t errsize);

/* The names accepted in "block =", for messages and the man page: "audio, cdc_net, ...". */
const char *policy_usb_class_names(void);

/* Append one error (or count it as dropped beyond POLICY_MAX_ERRORS). errs may be NULL. */
void policy_errors_add(struct policy_errors *errs, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
