/* SPDX-License-Identifier: MIT */
/* The USB class table and the matcher: device + interfaces + policy -> verdict. Pure, no I/O. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "parse.h"
#include "policy.h"

/* Names accepted in "block =". A name may stand for several entries (cdc_net, rndis). */
static const struct class_name {
	const char *name;
	int16_t cls, subclass, protocol;
	bool mtp;
} class_names[] = {
    {"audio", 0x01, -1, -1, false},
    {"cdc_net", 0x02, -1, -1, false}, /* CDC control: ECM, NCM, EEM, MBIM, ACM modems */
    {"cdc_net", 0x0a, -1, -1, false}, /* CDC data interfaces */
    {"comm", 0x02, -1, -1, false},
    {"hid", 0x03, -1, -1, false},
    {"physical", 0x05, -1, -1, false},
    {"still_image", 0x06, -1, -1, false}, /* PTP cameras, phones in PTP mode */
    {"printer", 0x07, -1, -1, false},
    {"mass_storage", 0x08, -1, -1, false},
    {"hub", 0x09, -1, -1, false},
    {"cdc_data", 0x0a, -1, -1, false},
    {"smart_card", 0x0b, -1, -1, false},
    {"content_security", 0x0d, -1, -1, false},
    {"video", 0x0e, -1, -1, false},
    {"personal_healthcare", 0x0f, -1, -1, false},
    {"audio_video", 0x10, -1, -1, false},
    {"billboard", 0x11, -1, -1, false},
    {"type_c_bridge", 0x12, -1, -1, false},
    {"diagnostic", 0xdc, -1, -1, false},
    {"wireless", 0xe0, -1, -1, false}, /* Bluetooth, RNDIS (e0:01:03) */
    {"rndis", 0xe0, 0x01, 0x03, false},
    {"rndis", 0xef, 0x04, 0x01, false}, /* RNDIS over Ethernet (misc class) */
    {"misc", 0xef, -1, -1, false},
    {"app_specific", 0xfe, -1, -1, false},
    /* Vendor-class functions that carry data off the terminal. The USB-IF leaves ff:*:* to
     * each vendor, so these triples are conventions of the drivers that bind them: */
    {"vendor_net", 0xff, 0xff, 0x00, false}, /* r8152 (RTL8152/8153), ax88179_178a, asix */
    {"usbmux", 0xff, 0xfe, 0x02, false},     /* Apple usbmux: usbmuxd, ifuse, iTunes sync */
    {"adb", 0xff, 0x42, 0x01, false},	     /* Android Debug Bridge: adb push/pull */
    {"vendor_specific", 0xff, -1, -1, false},
    {"mtp", -1, -1, -1, true},
};

const char *policy_usb_class_names(void)
{
	return "mass_storage, still_image, mtp, cdc_net, comm, cdc_data, wireless, rndis, audio, "
	       "printer, video, physical, content_security, personal_healthcare, audio_video, "
	       "billboard, type_c_bridge, diagnostic, misc, app_specific, vendor_net, usbmux, adb, "
	       "vendor_specific";
}

bool policy_usb_class_protected(int cls)
{
	return cls == 0x03 || cls == 0x09 || cls == 0x0b;
}

const char *policy_usb_class_name(int cls)
{
	switch (cls) {
	case 0x01:
		return "audio";
	case 0x02:
		return "comm";
	case 0x03:
		return "hid";
	case 0x05:
		return "physical";
	case 0x06:
		return "still_image";
	case 0x07:
		return "printer";
	case 0x08:
		return "mass_storage";
	case 0x09:
		return "hub";
	case 0x0a:
		return "cdc_data";
	case 0x0b:
		return "smart_card";
	case 0x0d:
		return "content_security";
	case 0x0e:
		return "video";
	case 0x0f:
		return "personal_healthcare";
	case 0x10:
		return "audio_video";
	case 0x11:
		return "billboard";
	case 0x12:
		return "type_c_bridge";
	case 0xdc:
		return "diagnostic";
	case 0xe0:
		return "wireless";
	case 0xef:
		return "misc";
	case 0xfe:
		return "app_specific";
	case 0xff:
		return "vendor_specific";
	default:
		return NULL;
	}
}

void policy_usb_class_code(const struct policy_usb_class *c, char *buf, size_t size)
{
	char sub[8] = "*", prot[8] = "*";

	if (c->mtp) {
		snprintf(buf, size, "mtp");
		return;
	}
	if (c->subclass < 0 && c->protocol < 0) {
		snprintf(buf, size, "%02x", (unsigned)c->cls);
		return;
	}
	if (c->subclass >= 0)
		snprintf(sub, sizeof(sub), "%02x", (unsigned)c->subclass & 0xffu);
	if (c->protocol >= 0)
		snprintf(prot, sizeof(prot), "%02x", (unsigned)c->protocol & 0xffu);
	snprintf(buf, size, "%02x:%s:%s", (unsigned)c->cls, sub, prot);
}

static int protected_error(int cls, char *err, size_t errsize)
{
	snprintf(
	    err, errsize,
	    "class %02x (%s) cannot be blocked: hubs, keyboards, mice and My Number card readers "
	    "must keep working",
	    (unsigned)cls, policy_usb_class_name(cls));
	return -EPERM;
}

static int append(struct policy_usb_class *list, size_t *n, int16_t cls, int16_t sub, int16_t prot,
		  bool mtp, const char *name, char *err, size_t errsize)
{
	struct policy_usb_class *c;

	for (size_t i = 0; i < *n; i++) {
		const struct policy_usb_class *o = &list[i];
		if (o->cls == cls && o->subclass == sub && o->protocol == prot && o->mtp == mtp) {
			snprintf(err, errsize,
				 "\"%s\" blocks what \"%s\" already blocks: list it once", name,
				 o->name);
			return -EEXIST;
		}
	}
	if (*n >= POLICY_MAX_BLOCK) {
		snprintf(err, errsize, "too many classes: at most %d", POLICY_MAX_BLOCK);
		return -E2BIG;
	}
	c = &list[(*n)++];
	*c = (struct policy_usb_class){.cls = cls, .subclass = sub, .protocol = prot, .mtp = mtp};
	snprintf(c->name, sizeof(c->name), "%s", name);
	return 0;
}

static int parse_part(const char *s, bool star_ok, int16_t *ret)
{
	uint64_t v;
	int r;

	if (star_ok && strcmp(s, "*") == 0) {
		*ret = -1;
		return 0;
	}
	r = parse_hex(s, 0xff, &v);
	if (r < 0)
		return r;
	*ret = (int16_t)v;
	return 0;
}

int policy_usb_class_parse(struct policy_usb_class *list, size_t *n, const char *word, char *err,
			   size_t errsize)
{
	static const char expected[] = "expected a class name (mass_storage, still_image, mtp, "
				       "cdc_net, wireless, ...) or a code like 08, 0x08, e0:01:03 "
				       "or ff:*:*";
	char buf[32], code[16];
	char *parts[3] = {NULL, NULL, NULL};
	int16_t v[3] = {-1, -1, -1};
	size_t nparts = 0;
	bool found = false;

	for (size_t i = 0; i < sizeof(class_names) / sizeof(class_names[0]); i++) {
		const struct class_name *cn = &class_names[i];
		int r;
		if (strcasecmp(cn->name, word) != 0)
			continue;
		if (cn->cls >= 0 && policy_usb_class_protected(cn->cls))
			return protected_error(cn->cls, err, errsize);
		r = append(list, n, cn->cls, cn->subclass, cn->protocol, cn->mtp, cn->name, err,
			   errsize);
		if (r < 0)
			return r;
		found = true;
	}
	if (found)
		return 0;

	if (strlen(word) >= sizeof(buf)) {
		snprintf(err, errsize, "%s", expected);
		return -EINVAL;
	}
	strcpy(buf, word);
	for (char *s = buf, *tok; nparts < 3 && (tok = strsep(&s, ":"));) {
		parts[nparts++] = tok;
		if (s && nparts == 3) {
			snprintf(err, errsize, "%s", expected);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < nparts; i++) {
		if (parse_part(parts[i], i > 0, &v[i]) < 0) {
			snprintf(err, errsize, "%s", expected);
			return -EINVAL;
		}
	}
	if (policy_usb_class_protected(v[0]))
		return protected_error(v[0], err, errsize);
	{
		struct policy_usb_class tmp = {.cls = v[0], .subclass = v[1], .protocol = v[2]};
		policy_usb_class_code(&tmp, code, sizeof(code));
	}
	return append(list, n, v[0], v[1], v[2], false, code, err, errsize);
}

/* ---- the matcher ---- */

static bool name_is_mtp(const char *name)
{
	if (!name || strncasecmp(name, "MTP", 3) != 0)
		return false;
	return name[3] == '\0' || name[3] == ' ';
}

static bool class_matches(const struct policy_usb_class *c, const struct policy_usb_device *dev,
			  const struct policy_usb_interface *ifc)
{
	if (c->mtp)
		return name_is_mtp(ifc->name) || dev->mtp;
	if (c->cls != ifc->cls)
		return false;
	/* An unknown subclass or protocol matches any entry of its class: fail closed. */
	if (c->subclass >= 0 && ifc->subclass >= 0 && c->subclass != ifc->subclass)
		return false;
	if (c->protocol >= 0 && ifc->protocol >= 0 && c->protocol != ifc->protocol)
		return false;
	return true;
}

static bool allow_matches(const struct policy_usb_allow *a, const struct policy_usb_device *dev)
{
	if (a->vendor != dev->vendor || a->product != dev->product)
		return false;
	if (a->serial && (!dev->serial || strcmp(a->serial, dev->serial) != 0))
		return false;
	if (a->descriptor_hash &&
	    (!dev->descriptor_hash || strcasecmp(a->descriptor_hash, dev->descriptor_hash) != 0))
		return false;
	return true;
}

static const struct policy_usb_allow *find_allow(const struct policy_usb_allow *list, size_t n,
						 const struct policy_usb_device *dev)
{
	for (size_t i = 0; i < n; i++)
		if (allow_matches(&list[i], dev))
			return &list[i];
	return NULL;
}

static void decide_one(const struct policy *p, const struct policy_usb_device *dev,
		       const struct policy_usb_interface *ifc, struct policy_usb_decision *d)
{
	const char *cname;
	char code[16];

	*d = (struct policy_usb_decision){0};
	if (ifc->cls < 0 || ifc->cls > 0xff || ifc->subclass > 0xff || ifc->protocol > 0xff) {
		d->verdict = POLICY_USB_BLOCK;
		d->reason = POLICY_USB_REASON_INVALID;
		snprintf(d->rule, sizeof(d->rule),
			 "block: interface class unreadable (fail closed)");
		return;
	}
	cname = policy_usb_class_name(ifc->cls);
	if (policy_usb_class_protected(ifc->cls)) {
		d->verdict = POLICY_USB_ALLOW;
		d->reason = POLICY_USB_REASON_NOT_BLOCKED;
		snprintf(d->rule, sizeof(d->rule), "not blocked: class %02x (%s) is never blocked",
			 (unsigned)ifc->cls, cname);
		return;
	}
	for (size_t i = 0; i < p->n_usb_block; i++) {
		if (class_matches(&p->usb_block[i], dev, ifc)) {
			d->block = &p->usb_block[i];
			break;
		}
	}
	if (!d->block) {
		d->verdict = POLICY_USB_ALLOW;
		d->reason = POLICY_USB_REASON_NOT_BLOCKED;
		snprintf(d->rule, sizeof(d->rule),
			 "not blocked: class %02x%s%s%s is not in the block list",
			 (unsigned)ifc->cls, cname ? " (" : "", cname ? cname : "",
			 cname ? ")" : "");
		return;
	}
	d->allow = find_allow(p->usb_allow, p->n_usb_allow, dev);
	if (d->allow) {
		const struct policy_usb_allow *a = d->allow;
		d->verdict = POLICY_USB_ALLOW;
		d->reason = POLICY_USB_REASON_ALLOW_LIST;
		snprintf(d->rule, sizeof(d->rule), "allow line %u%s%s%s: %04x:%04x%s%s%s%s",
			 a->line, a->ledger ? " (ledger " : "", a->ledger ? a->ledger : "",
			 a->ledger ? ")" : "", (unsigned)a->vendor, (unsigned)a->product,
			 a->serial ? " serial=" : "", a->serial ? a->serial : "",
			 a->descriptor_hash ? " hash=sha256:" : "",
			 a->descriptor_hash ? a->descriptor_hash : "");
		return;
	}
	/* A listed card/NFC reader: only its vendor-specific interfaces, and never one that the
	 * mtp entry matched (a phone that claims a reader's ids stays blocked). */
	if (ifc->cls == 0xff && !d->block->mtp)
		d->allow = find_allow(p->usb_readers, p->n_usb_readers, dev);
	if (d->allow) {
		const struct policy_usb_allow *a = d->allow;
		d->verdict = POLICY_USB_ALLOW;
		d->reason = POLICY_USB_REASON_READER;
		snprintf(d->rule, sizeof(d->rule), "reader line %u: %04x:%04x%s%s%s", a->line,
			 (unsigned)a->vendor, (unsigned)a->product, a->name ? " (" : "",
			 a->name ? a->name : "", a->name ? ")" : "");
		return;
	}
	d->verdict = POLICY_USB_BLOCK;
	d->reason = POLICY_USB_REASON_BLOCKED_CLASS;
	policy_usb_class_code(d->block, code, sizeof(code));
	if (d->block->mtp)
		snprintf(d->rule, sizeof(d->rule), "block mtp (%s)",
			 name_is_mtp(ifc->name) ? "MTP interface" : "ID_MTP_DEVICE");
	else if (strcmp(d->block->name, code) == 0 && d->block->subclass < 0 &&
		 d->block->protocol < 0 && policy_usb_class_name(d->block->cls))
		snprintf(d->rule, sizeof(d->rule), "block %s (%s)", code,
			 policy_usb_class_name(d->block->cls));
	else if (strcmp(d->block->name, code) == 0)
		snprintf(d->rule, sizeof(d->rule), "block %s", code);
	else
		snprintf(d->rule, sizeof(d->rule), "block %s (%s)", d->block->name, code);
}

void policy_usb_decide(const struct policy *p, const struct policy_usb_device *dev,
		       const struct policy_usb_interface *ifaces, size_t n,
		       struct policy_usb_decision *ret)
{
	for (size_t i = 0; i < n; i++)
		decide_one(p, dev, &ifaces[i], &ret[i]);
}
