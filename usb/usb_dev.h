/* SPDX-License-Identifier: MIT */
/* What sysfs says about one USB device and its interfaces, and the policy's decision on them.
 * The one USB reader: mynaguardd's gate and its compliance checks, and mynaguardctl (usb list,
 * usb allow, status). Reads with read(), never through libudev's attribute cache; writes
 * nothing. Never logs. */
#pragma once

#include <libudev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy.h"
#include "usb_desc.h"

#define USB_DEV_ATTR_MAX   4096			   /* any text attribute we read */
#define USB_DEV_STRING_MAX (3 * POLICY_SERIAL_MAX) /* bytes: 126 UTF-16 units as UTF-8 */
#define USB_DEV_NAME_MAX   64

/* One usb_device. Strings are as read (newline stripped), NULL when the attribute is missing. */
struct usb_dev_info {
	char syspath[512];
	char port[USB_DEV_NAME_MAX]; /* sysname: "1-1.2", "usb1" for a root hub */
	bool have_ids;
	uint16_t vendor;
	uint16_t product;
	char *serial;
	char *manufacturer;
	char *product_name;
	bool mtp;	/* udev property ID_MTP_DEVICE=1 */
	int authorized; /* 0, 1, or -1 when unreadable */
	bool root_hub;	/* no usb_device parent */
	bool have_hash;
	char hash[65];	/* SHA-256 of `descriptors`, lowercase hex */
	int desc_error; /* 0 when desc is valid, else the parser's -errno */
	struct usb_desc desc;
	char invalid[96]; /* non-empty: the device's attributes are impossible; fail closed */
};

struct usb_iface_info {
	char syspath[512];
	char name[USB_DEV_NAME_MAX]; /* sysname: "1-1.2:1.0" */
	int16_t cls;		     /* -1 when missing or not two hex digits */
	int16_t subclass;
	int16_t protocol;
	char *label;	/* the `interface` string (iInterface), NULL when missing */
	int authorized; /* 0, 1, or -1 when unreadable */
	char invalid[96];
};

/* Read a device (a udev_device of devtype usb_device). root is prefixed to its syspath ("" or
 * "/" = none; umockdev redirects /sys by itself). Missing attributes are recorded, not errors;
 * only -ENOMEM is returned. ret is cleared first; free with usb_dev_info_clear(). */
int usb_dev_read(struct udev_device *d, const char *root, struct usb_dev_info *ret);
void usb_dev_info_clear(struct usb_dev_info *i);

/* The one reader under usb_dev_read(): every attribute of the device directory syspath (root
 * already applied), named sysname. Knows nothing of udev: mtp stays false, root_hub comes from
 * the name ("usbN"). */
int usb_dev_read_dir(const char *syspath, const char *sysname, struct usb_dev_info *ret);

/* The device sysname ("1-1.2") as usb_dev_read() sees it, for callers that walk
 * ROOT/sys/bus/usb/devices instead of holding a udev_device (the compliance check).
 * With udev, the device is looked up there (its properties included); a device udev cannot
 * find is read from the directory and marked invalid, so it is decided blocked (fail closed).
 * udev NULL: a fixture tree udev does not know, read from the directory only. -EINVAL when
 * sysname holds '/', -ENOMEM. */
int usb_dev_read_name(struct udev *udev, const char *root, const char *sysname,
		      struct usb_dev_info *ret);

int usb_iface_read(struct udev_device *d, const char *root, struct usb_iface_info *ret);
/* The one interface reader under usb_iface_read(): the directory syspath, named sysname. */
int usb_iface_read_dir(const char *syspath, const char *sysname, struct usb_iface_info *ret);
void usb_iface_info_clear(struct usb_iface_info *i);

/* Call fn for each interface directly under dev that usb_iface_read() can read (match_parent
 * also yields dev itself and the interfaces of devices behind a hub: those are skipped, as are
 * interfaces that cannot be read). iface is cleared after fn returns. Returns how many
 * interfaces were passed to fn. */
size_t usb_dev_foreach_iface(struct udev *udev, struct udev_device *dev, const char *root,
			     void (*fn)(const struct usb_iface_info *iface, void *userdata),
			     void *userdata);

/* Read sysfs attribute dir/attr with read() into buf (size bytes incl. NUL), one trailing
 * newline stripped. Returns the length, -ENOENT when missing, -EFBIG when longer than size-1. */
ssize_t usb_dev_read_attr(const char *dir, const char *attr, char *buf, size_t size);
/* Write value to dir/attr (one write()). */
int usb_dev_write_attr(const char *dir, const char *attr, const char *value);

/* root + path, root "" or "/" meaning none. -ENAMETOOLONG when it does not fit. */
int usb_dev_path(const char *root, const char *path, char *buf, size_t size);

/* Exactly four hex digits (idVendor) / two hex digits (bInterfaceClass). -1 when not. */
int usb_dev_parse_hex4(const char *s);
int usb_dev_parse_hex2(const char *s);

/* "08:06:50", or "??" parts for unknown values; buf holds at least 12 bytes. */
void usb_dev_class_string(int cls, int subclass, int protocol, char buf[static 12]);

/* Decide one present interface of dev (fail closed on dev->invalid / iface->invalid). */
void usb_dev_decide_iface(const struct policy *p, const struct usb_dev_info *dev,
			  const struct usb_iface_info *iface, struct policy_usb_decision *ret);

/* Decide a device that has no interfaces in sysfs (left unauthorized): every interface of every
 * configuration in its descriptors. *ret_blocking is set to the index of the first blocked one
 * (or -1 when all are allowed); ret must hold USB_DESC_MAX_IFACES entries. Unparsable
 * descriptors or none at all → one synthetic "invalid" decision in ret[0], *ret_n = 1. */
void usb_dev_decide_descriptors(const struct policy *p, const struct usb_dev_info *dev,
				struct policy_usb_decision *ret, size_t *ret_n, int *ret_blocking);
