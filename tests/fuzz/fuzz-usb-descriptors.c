/* SPDX-License-Identifier: MIT */
/* Fuzz target: the USB descriptor parser (sysfs `descriptors`, device-controlled bytes) and the
 * device-string helpers (serial, manufacturer, product: device-controlled too). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "usb_desc.h"
#include "usb_str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usb_desc d;
	char esc[160];
	char *s, *clean;

	if (usb_desc_parse(data, size, &d) == 0) {
		if (d.n_ifaces > USB_DESC_MAX_IFACES)
			abort();
		for (size_t i = 0; i < d.n_ifaces; i++)
			if (d.ifaces[i].config == 0 && d.n_configs_seen == 0)
				abort(); /* an interface outside any configuration was accepted */
	}

	/* The same bytes as a device string. */
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)usb_str_valid_utf8(s, strlen(s));
	usb_str_escape(s, esc, sizeof(esc));
	if (strlen(esc) >= sizeof(esc) || esc[0] == '\0')
		abort();
	clean = usb_str_sanitize(s, 126);
	if (clean) {
		if (strlen(clean) > 126 || !usb_str_valid_utf8(clean, strlen(clean)))
			abort();
		for (const unsigned char *p = (const unsigned char *)clean; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				abort();
	}
	free(clean);
	free(s);
	return 0;
}
