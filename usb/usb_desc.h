/* SPDX-License-Identifier: MIT */
/* Parser of a USB device's raw descriptors (sysfs `descriptors`): bytes in, struct out, no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define USB_DESC_MAX_BYTES  (64 * 1024) /* more than any real device: 18 + configs */
#define USB_DESC_MAX_IFACES 64		/* interface descriptors (all configs, all alt settings) */

struct usb_desc_iface {
	uint8_t config; /* bConfigurationValue of the configuration it belongs to */
	uint8_t number;
	uint8_t altsetting;
	uint8_t cls;
	uint8_t subclass;
	uint8_t protocol;
};

struct usb_desc {
	uint16_t vendor;
	uint16_t product;
	uint16_t bcd_device;
	uint8_t dev_class;
	uint8_t dev_subclass;
	uint8_t dev_protocol;
	uint8_t num_configs;
	size_t n_configs_seen;
	struct usb_desc_iface ifaces[USB_DESC_MAX_IFACES];
	size_t n_ifaces;
};

/* Parse a device descriptor followed by configuration descriptors and everything they contain.
 * Returns 0 and fills *ret, or:
 *   -EBADMSG  malformed (short device descriptor, bad lengths, interface outside a configuration)
 *   -E2BIG    more than USB_DESC_MAX_BYTES or USB_DESC_MAX_IFACES
 * A device that cannot be parsed must be treated as blocked. */
int usb_desc_parse(const uint8_t *buf, size_t len, struct usb_desc *ret);
