/* SPDX-License-Identifier: MIT */
/* Fuzz target: the policy parser (policy_parse_string, policy_parse_base), the matcher on whatever
 * it accepts, and installing an accepted base (policy_install_text) with a terminal id. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "policy.h"

static void exercise_matcher(const struct policy *p)
{
	struct policy_usb_interface ifc[] = {
	    {.cls = 0x08, .subclass = 0x06, .protocol = 0x50, .name = NULL},
	    {.cls = 0x03, .subclass = 0x01, .protocol = 0x01, .name = "Keyboard"},
	    {.cls = 0xff, .subclass = 0xff, .protocol = 0x00, .name = "MTP"},
	    {.cls = 0xe0, .subclass = 0x01, .protocol = 0x03, .name = NULL},
	    {.cls = 0x02, .subclass = -1, .protocol = -1, .name = ""},
	    {.cls = -1, .subclass = -1, .protocol = -1, .name = NULL},
	    {.cls = 0xff, .subclass = 0x00, .protocol = 0x00, .name = NULL}, /* NFC reader */
	};
	struct policy_usb_decision d[sizeof(ifc) / sizeof(ifc[0])];
	struct policy_usb_device dev = {.vendor = 0x0781, .product = 0x5581, .mtp = true};
	char code[16];

	if (p->n_usb_allow > 0) {
		dev.vendor = p->usb_allow[0].vendor;
		dev.product = p->usb_allow[0].product;
		dev.serial = p->usb_allow[0].serial;
		dev.descriptor_hash = p->usb_allow[0].descriptor_hash;
	}
	policy_usb_decide(p, &dev, ifc, sizeof(ifc) / sizeof(ifc[0]), d);
	for (size_t i = 0; i < sizeof(ifc) / sizeof(ifc[0]); i++) {
		if (strnlen(d[i].rule, sizeof(d[i].rule)) == sizeof(d[i].rule))
			abort();
		if (d[i].reason == POLICY_USB_REASON_INVALID && d[i].verdict != POLICY_USB_BLOCK)
			abort();
	}
	if (d[1].verdict != POLICY_USB_ALLOW) /* HID is never blocked */
		abort();
	/* A listed reader: only its vendor-specific interfaces, never MTP (the MTP-named one, or
	 * any when udev marks the device ID_MTP_DEVICE). */
	for (int mtp = 0; mtp < 2 && p->n_usb_readers > 0; mtp++) {
		struct policy_usb_device rd = {.vendor = p->usb_readers[0].vendor,
					       .product = p->usb_readers[0].product,
					       .serial = p->usb_readers[0].serial,
					       .descriptor_hash = p->usb_readers[0].descriptor_hash,
					       .mtp = mtp};
		policy_usb_decide(p, &rd, ifc, sizeof(ifc) / sizeof(ifc[0]), d);
		for (size_t i = 0; i < sizeof(ifc) / sizeof(ifc[0]); i++) {
			if (d[i].reason != POLICY_USB_REASON_READER)
				continue;
			if (ifc[i].cls != 0xff || !d[i].block || d[i].block->mtp ||
			    d[i].verdict != POLICY_USB_ALLOW)
				abort();
		}
	}
	for (size_t i = 0; i < p->n_usb_block; i++) {
		policy_usb_class_code(&p->usb_block[i], code, sizeof(code));
		if (!p->usb_block[i].mtp && policy_usb_class_protected(p->usb_block[i].cls))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy_errors errs;
	struct policy *p = NULL;
	char line[512];
	int r;

	if (size > POLICY_MAX_FILE_SIZE + 1)
		return 0;
	r = policy_parse_string("fuzz.conf", (const char *)data, size, &p, &errs);
	if (r == 0) {
		if (!p || errs.n != 0 || !p->terminal_id)
			abort();
		exercise_matcher(p);
		policy_free(p);
		p = NULL;
	} else {
		if (p)
			abort();
		if ((r == -EINVAL || r == -EFBIG) && errs.n == 0)
			abort();
		for (size_t i = 0; i < errs.n; i++) {
			policy_error_format(&errs, i, line, sizeof(line));
			if (strnlen(line, sizeof(line)) == sizeof(line))
				abort();
		}
	}
	policy_errors_clear(&errs);

	/* The same bytes as a base: what it accepts installs and parses with the id put in. */
	r = policy_parse_base("fuzz.conf", (const char *)data, size, &p, &errs);
	if (r == 0) {
		char *text = NULL;
		size_t len = 0;
		if (!p || p->terminal_id || !p->fleet || !p->has_fleet_grant_key)
			abort();
		(void)policy_fleet_covers(p, "fuzz-01");
		if (policy_install_text((const char *)data, size, "fuzz-01", &text, &len) < 0)
			abort();
		if (strlen(text) != len)
			abort();
		free(text);
		policy_free(p);
	} else if (p) {
		abort();
	}
	policy_errors_clear(&errs);
	return 0;
}
