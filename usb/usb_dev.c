/* SPDX-License-Identifier: MIT */
/* What sysfs says about one USB device and its interfaces, and the policy's decision on them.
 * Shared by mynaguardd and mynaguardctl. Never logs. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "usb_dev.h"
#include "usb_str.h"
#include "utf8.h"

int usb_dev_path(const char *root, const char *path, char *buf, size_t size)
{
	int n;

	if (!root || root[0] == '\0' || (root[0] == '/' && root[1] == '\0'))
		root = "";
	n = snprintf(buf, size, "%s%s", root, path);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* Read at most size-1 bytes; -EFBIG if there was more. */
static ssize_t read_bounded(const char *dir, const char *attr, char *buf, size_t size)
{
	char path[640];
	_cleanup_close_ int fd = -1;
	size_t have = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, attr) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	for (;;) {
		ssize_t n;

		if (have == size) {
			char extra;
			n = read(fd, &extra, 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return negative_errno();
			return n == 0 ? (ssize_t)have : -EFBIG;
		}
		n = read(fd, buf + have, size - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		if (n == 0)
			return (ssize_t)have;
		have += (size_t)n;
	}
}

ssize_t usb_dev_read_attr(const char *dir, const char *attr, char *buf, size_t size)
{
	ssize_t n;

	if (size < 2)
		return -EINVAL;
	n = read_bounded(dir, attr, buf, size - 1);
	if (n < 0)
		return n;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return n;
}

int usb_dev_write_attr(const char *dir, const char *attr, const char *value)
{
	char path[640];
	_cleanup_close_ int fd = -1;
	size_t len = strlen(value);
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s/%s", dir, attr) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return negative_errno();
	if ((size_t)n != len)
		return -EIO;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_hexn(const char *s, size_t n)
{
	int v = 0;

	if (!s || strlen(s) != n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int h = hexval(s[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

int usb_dev_parse_hex4(const char *s)
{
	return parse_hexn(s, 4);
}

int usb_dev_parse_hex2(const char *s)
{
	return parse_hexn(s, 2);
}

void usb_dev_class_string(int cls, int subclass, int protocol, char buf[static 12])
{
	char a[3] = "??", b[3] = "??", c[3] = "??";

	if (cls >= 0 && cls <= 0xff)
		snprintf(a, sizeof(a), "%02x", cls);
	if (subclass >= 0 && subclass <= 0xff)
		snprintf(b, sizeof(b), "%02x", subclass);
	if (protocol >= 0 && protocol <= 0xff)
		snprintf(c, sizeof(c), "%02x", protocol);
	snprintf(buf, 12, "%s:%s:%s", a, b, c);
}

static void set_invalid(char *buf, size_t size, const char *what)
{
	if (buf[0] == '\0')
		snprintf(buf, size, "%s", what);
}

/* Read a device string attribute: NULL when missing; marks the owner invalid when the value is
 * impossible for a real kernel (too long, invalid UTF-8). Returns -ENOMEM only. */
static int read_string(const char *dir, const char *attr, size_t max, char **ret, char *invalid,
		       size_t invalid_size)
{
	char buf[USB_DEV_ATTR_MAX + 1];
	char what[64];
	ssize_t n;

	*ret = NULL;
	n = usb_dev_read_attr(dir, attr, buf, sizeof(buf));
	if (n == -ENOENT)
		return 0;
	if (n == -EFBIG) {
		snprintf(what, sizeof(what), "%s longer than %zu characters", attr, max);
		set_invalid(invalid, invalid_size, what);
		/* keep a truncated copy so the log shows what it was */
		buf[USB_DEV_ATTR_MAX] = '\0';
		n = USB_DEV_ATTR_MAX;
	} else if (n < 0) {
		snprintf(what, sizeof(what), "%s unreadable", attr);
		set_invalid(invalid, invalid_size, what);
		return 0;
	}
	if ((size_t)n != strlen(buf)) {
		snprintf(what, sizeof(what), "%s contains NUL", attr);
		set_invalid(invalid, invalid_size, what);
	} else if (!usb_str_valid_utf8(buf, (size_t)n)) {
		snprintf(what, sizeof(what), "%s is not valid UTF-8", attr);
		set_invalid(invalid, invalid_size, what);
	} else if ((size_t)n > USB_DEV_STRING_MAX || utf8_chars(buf) > max) {
		snprintf(what, sizeof(what), "%s longer than %zu characters", attr, max);
		set_invalid(invalid, invalid_size, what);
	}
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

static int read_authorized(const char *dir)
{
	char buf[16];

	if (usb_dev_read_attr(dir, "authorized", buf, sizeof(buf)) < 0)
		return -1;
	if (strcmp(buf, "0") == 0)
		return 0;
	if (strcmp(buf, "1") == 0)
		return 1;
	return -1;
}

static void read_descriptors(struct usb_dev_info *i)
{
	char path[640];
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_close_ int fd = -1;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	size_t have = 0;

	i->desc_error = -ENOENT;
	if (snprintf(path, sizeof(path), "%s/descriptors", i->syspath) >= (int)sizeof(path))
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return;
	buf = malloc(USB_DESC_MAX_BYTES + 1);
	if (!buf) {
		i->desc_error = -ENOMEM;
		return;
	}
	/* libudev would stop at the first NUL: read the binary file ourselves. */
	while (have <= USB_DESC_MAX_BYTES) {
		ssize_t n = read(fd, buf + have, USB_DESC_MAX_BYTES + 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			i->desc_error = negative_errno();
			return;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	if (have > USB_DESC_MAX_BYTES) {
		i->desc_error = -E2BIG;
		return;
	}
	if (EVP_Digest(buf, have, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32) {
		for (unsigned k = 0; k < mdlen; k++)
			snprintf(i->hash + 2 * k, 3, "%02x", md[k]);
		i->have_hash = true;
	}
	i->desc_error = usb_desc_parse(buf, have, &i->desc);
}

static bool is_root_hub_name(const char *name)
{
	return strncmp(name, "usb", 3) == 0 && name[3] &&
	       strspn(name + 3, "0123456789") == strlen(name + 3);
}

int usb_dev_read_dir(const char *syspath, const char *sysname, struct usb_dev_info *ret)
{
	char buf[64];
	int v, p, r;

	memset(ret, 0, sizeof(*ret));
	if (snprintf(ret->syspath, sizeof(ret->syspath), "%s", syspath) >=
	    (int)sizeof(ret->syspath))
		set_invalid(ret->invalid, sizeof(ret->invalid), "sysfs path too long");
	snprintf(ret->port, sizeof(ret->port), "%s", sysname);
	ret->root_hub = is_root_hub_name(sysname);

	v = usb_dev_read_attr(ret->syspath, "idVendor", buf, sizeof(buf)) >= 0
		? usb_dev_parse_hex4(buf)
		: -1;
	p = usb_dev_read_attr(ret->syspath, "idProduct", buf, sizeof(buf)) >= 0
		? usb_dev_parse_hex4(buf)
		: -1;
	if (v >= 0 && p >= 0) {
		ret->have_ids = true;
		ret->vendor = (uint16_t)v;
		ret->product = (uint16_t)p;
	} else {
		set_invalid(ret->invalid, sizeof(ret->invalid),
			    "idVendor/idProduct missing or not 4 hex digits");
	}

	r = read_string(ret->syspath, "serial", POLICY_SERIAL_MAX, &ret->serial, ret->invalid,
			sizeof(ret->invalid));
	if (r < 0)
		goto oom;
	r = read_string(ret->syspath, "manufacturer", POLICY_SERIAL_MAX, &ret->manufacturer,
			ret->invalid, sizeof(ret->invalid));
	if (r < 0)
		goto oom;
	r = read_string(ret->syspath, "product", POLICY_SERIAL_MAX, &ret->product_name,
			ret->invalid, sizeof(ret->invalid));
	if (r < 0)
		goto oom;
	ret->authorized = read_authorized(ret->syspath);

	read_descriptors(ret);
	if (ret->desc_error == -ENOMEM)
		goto oom;
	if (ret->desc_error == 0 && ret->have_ids &&
	    (ret->desc.vendor != ret->vendor || ret->desc.product != ret->product))
		set_invalid(ret->invalid, sizeof(ret->invalid),
			    "descriptors disagree with idVendor/idProduct");
	return 0;
oom:
	usb_dev_info_clear(ret);
	return -ENOMEM;
}

int usb_dev_read(struct udev_device *d, const char *root, struct usb_dev_info *ret)
{
	char path[sizeof(ret->syspath)];
	const char *mtp;
	bool too_long;
	int r;

	too_long = usb_dev_path(root, udev_device_get_syspath(d), path, sizeof(path)) < 0;
	r = usb_dev_read_dir(path, udev_device_get_sysname(d), ret);
	if (r < 0)
		return r;
	if (too_long) {
		ret->invalid[0] = '\0';
		set_invalid(ret->invalid, sizeof(ret->invalid), "sysfs path too long");
	}
	ret->root_hub = !udev_device_get_parent_with_subsystem_devtype(d, "usb", "usb_device");
	mtp = udev_device_get_property_value(d, "ID_MTP_DEVICE");
	ret->mtp = mtp && strcmp(mtp, "1") == 0;
	return 0;
}

int usb_dev_read_name(struct udev *udev, const char *root, const char *sysname,
		      struct usb_dev_info *ret)
{
	struct udev_device *d = NULL;
	char path[sizeof(ret->syspath)];
	char rel[128];
	int r;

	if (strchr(sysname, '/') ||
	    snprintf(rel, sizeof(rel), "/sys/bus/usb/devices/%s", sysname) >= (int)sizeof(rel))
		return -EINVAL;
	if (udev)
		d = udev_device_new_from_subsystem_sysname(udev, "usb", sysname);
	if (d) {
		r = usb_dev_read(d, root, ret);
		udev_device_unref(d);
		return r;
	}
	if (usb_dev_path(root, rel, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	r = usb_dev_read_dir(path, sysname, ret);
	if (r < 0)
		return r;
	/* udev was asked and does not know the device: its properties (ID_MTP_DEVICE) are
	 * unknown, so nothing of it may pass as allowed. */
	if (udev)
		set_invalid(ret->invalid, sizeof(ret->invalid),
			    "udev does not know the device (properties unknown)");
	return 0;
}

void usb_dev_info_clear(struct usb_dev_info *i)
{
	if (!i)
		return;
	free(i->serial);
	free(i->manufacturer);
	free(i->product_name);
	i->serial = i->manufacturer = i->product_name = NULL;
}

static int16_t read_class_attr(const char *dir, const char *attr)
{
	char buf[16];

	if (usb_dev_read_attr(dir, attr, buf, sizeof(buf)) < 0)
		return -1;
	return (int16_t)usb_dev_parse_hex2(buf);
}

int usb_iface_read_dir(const char *syspath, const char *sysname, struct usb_iface_info *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (snprintf(ret->syspath, sizeof(ret->syspath), "%s", syspath) >=
	    (int)sizeof(ret->syspath))
		set_invalid(ret->invalid, sizeof(ret->invalid), "sysfs path too long");
	snprintf(ret->name, sizeof(ret->name), "%s", sysname);
	ret->cls = read_class_attr(ret->syspath, "bInterfaceClass");
	ret->subclass = read_class_attr(ret->syspath, "bInterfaceSubClass");
	ret->protocol = read_class_attr(ret->syspath, "bInterfaceProtocol");
	if (ret->cls < 0)
		set_invalid(ret->invalid, sizeof(ret->invalid),
			    "bInterfaceClass missing or not 2 hex digits");
	if (read_string(ret->syspath, "interface", POLICY_SERIAL_MAX, &ret->label, ret->invalid,
			sizeof(ret->invalid)) < 0)
		return -ENOMEM;
	ret->authorized = read_authorized(ret->syspath);
	return 0;
}

int usb_iface_read(struct udev_device *d, const char *root, struct usb_iface_info *ret)
{
	char path[sizeof(ret->syspath)];
	bool too_long;
	int r;

	too_long = usb_dev_path(root, udev_device_get_syspath(d), path, sizeof(path)) < 0;
	r = usb_iface_read_dir(path, udev_device_get_sysname(d), ret);
	if (r >= 0 && too_long) {
		ret->invalid[0] = '\0';
		set_invalid(ret->invalid, sizeof(ret->invalid), "sysfs path too long");
	}
	return r;
}

void usb_iface_info_clear(struct usb_iface_info *i)
{
	if (!i)
		return;
	free(i->label);
	i->label = NULL;
}

size_t usb_dev_foreach_iface(struct udev *udev, struct udev_device *dev, const char *root,
			     void (*fn)(const struct usb_iface_info *iface, void *userdata),
			     void *userdata)
{
	struct udev_enumerate *en = udev_enumerate_new(udev);
	struct udev_list_entry *le;
	size_t n = 0;

	if (en && udev_enumerate_add_match_parent(en, dev) >= 0 &&
	    udev_enumerate_add_match_subsystem(en, "usb") >= 0 &&
	    udev_enumerate_scan_devices(en) >= 0) {
		udev_list_entry_foreach(le, udev_enumerate_get_list_entry(en))
		{
			struct udev_device *i =
			    udev_device_new_from_syspath(udev, udev_list_entry_get_name(le));
			const char *dt = i ? udev_device_get_devtype(i) : NULL;
			struct usb_iface_info ifc;

			if (!dt || strcmp(dt, "usb_interface") != 0 ||
			    udev_device_get_parent(i) == NULL ||
			    strcmp(udev_device_get_syspath(udev_device_get_parent(i)),
				   udev_device_get_syspath(dev)) != 0 ||
			    usb_iface_read(i, root, &ifc) < 0) {
				udev_device_unref(i);
				continue;
			}
			fn(&ifc, userdata);
			n++;
			usb_iface_info_clear(&ifc);
			udev_device_unref(i);
		}
	}
	udev_enumerate_unref(en);
	return n;
}

static void decide_invalid(const char *why, struct policy_usb_decision *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->verdict = POLICY_USB_BLOCK;
	ret->reason = POLICY_USB_REASON_INVALID;
	snprintf(ret->rule, sizeof(ret->rule), "invalid: %s", why);
}

static void to_policy_device(const struct usb_dev_info *dev, struct policy_usb_device *ret)
{
	*ret = (struct policy_usb_device){
	    .vendor = dev->vendor,
	    .product = dev->product,
	    .serial = dev->serial,
	    .descriptor_hash = dev->have_hash ? dev->hash : NULL,
	    .mtp = dev->mtp,
	};
}

void usb_dev_decide_iface(const struct policy *p, const struct usb_dev_info *dev,
			  const struct usb_iface_info *iface, struct policy_usb_decision *ret)
{
	struct policy_usb_device pd;
	struct policy_usb_interface pi;

	if (dev->invalid[0]) {
		decide_invalid(dev->invalid, ret);
		return;
	}
	if (iface->invalid[0]) {
		decide_invalid(iface->invalid, ret);
		return;
	}
	to_policy_device(dev, &pd);
	pi = (struct policy_usb_interface){
	    .cls = iface->cls,
	    .subclass = iface->subclass,
	    .protocol = iface->protocol,
	    .name = iface->label,
	};
	policy_usb_decide(p, &pd, &pi, 1, ret);
}

void usb_dev_decide_descriptors(const struct policy *p, const struct usb_dev_info *dev,
				struct policy_usb_decision *ret, size_t *ret_n, int *ret_blocking)
{
	struct policy_usb_interface pi[USB_DESC_MAX_IFACES];
	struct policy_usb_device pd;
	size_t n = dev->desc.n_ifaces;

	*ret_blocking = -1;
	if (dev->invalid[0] || dev->desc_error != 0 || n == 0) {
		char why[128];

		if (dev->invalid[0])
			snprintf(why, sizeof(why), "%s", dev->invalid);
		else if (dev->desc_error != 0)
			snprintf(why, sizeof(why), "descriptors unreadable or malformed (%s)",
				 strerror(-dev->desc_error));
		else
			snprintf(why, sizeof(why), "descriptors list no interfaces");
		decide_invalid(why, &ret[0]);
		*ret_n = 1;
		*ret_blocking = 0;
		return;
	}
	to_policy_device(dev, &pd);
	for (size_t k = 0; k < n; k++)
		pi[k] = (struct policy_usb_interface){
		    .cls = dev->desc.ifaces[k].cls,
		    .subclass = dev->desc.ifaces[k].subclass,
		    .protocol = dev->desc.ifaces[k].protocol,
		    .name = NULL, /* iInterface strings are not in `descriptors` */
		};
	policy_usb_decide(p, &pd, pi, n, ret);
	for (size_t k = 0; k < n; k++)
		if (ret[k].verdict == POLICY_USB_BLOCK) {
			*ret_blocking = (int)k;
			break;
		}
	*ret_n = n;
}
