/* SPDX-License-Identifier: MIT */
/* Parser of a USB device's raw descriptors (sysfs `descriptors`): bytes in, struct out, no I/O. */
#include <errno.h>
#include <string.h>

#include "usb_desc.h"

#define USB_DT_DEVICE	      0x01
#define USB_DT_CONFIG	      0x02
#define USB_DT_INTERFACE      0x04
#define USB_DT_DEVICE_SIZE    18
#define USB_DT_CONFIG_SIZE    9
#define USB_DT_INTERFACE_SIZE 9

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

int usb_desc_parse(const uint8_t *buf, size_t len, struct usb_desc *ret)
{
	struct usb_desc d;
	size_t off;
	int cur_config = -1;

	if (len > USB_DESC_MAX_BYTES)
		return -E2BIG;
	if (len < USB_DT_DEVICE_SIZE || buf[0] != USB_DT_DEVICE_SIZE || buf[1] != USB_DT_DEVICE)
		return -EBADMSG;

	memset(&d, 0, sizeof(d));
	d.dev_class = buf[4];
	d.dev_subclass = buf[5];
	d.dev_protocol = buf[6];
	d.vendor = le16(buf + 8);
	d.product = le16(buf + 10);
	d.bcd_device = le16(buf + 12);
	d.num_configs = buf[17];

	for (off = USB_DT_DEVICE_SIZE; off < len;) {
		const uint8_t *p = buf + off;
		size_t dlen;

		if (len - off < 2)
			return -EBADMSG;
		dlen = p[0];
		if (dlen < 2 || dlen > len - off)
			return -EBADMSG;

		switch (p[1]) {
		case USB_DT_CONFIG:
			if (dlen < USB_DT_CONFIG_SIZE)
				return -EBADMSG;
			/* wTotalLength covers this configuration; it must fit in what we were given. */
			if (le16(p + 2) < USB_DT_CONFIG_SIZE || le16(p + 2) > len - off)
				return -EBADMSG;
			cur_config = p[5];
			d.n_configs_seen++;
			break;
		case USB_DT_INTERFACE:
			if (dlen < USB_DT_INTERFACE_SIZE || cur_config < 0)
				return -EBADMSG;
			if (d.n_ifaces >= USB_DESC_MAX_IFACES)
				return -E2BIG;
			d.ifaces[d.n_ifaces++] = (struct usb_desc_iface){
			    .config = (uint8_t)cur_config,
			    .number = p[2],
			    .altsetting = p[3],
			    .cls = p[5],
			    .subclass = p[6],
			    .protocol = p[7],
			};
			break;
		case USB_DT_DEVICE:
			return -EBADMSG; /* only one, at the start */
		default:
			break; /* endpoints, class-specific, IADs, BOS...: not needed for the decision */
		}
		off += dlen;
	}
	if (d.n_configs_seen == 0 && d.num_configs > 0)
		return -EBADMSG;

	*ret = d;
	return 0;
}
