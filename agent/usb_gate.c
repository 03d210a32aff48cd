/* SPDX-License-Identifier: MIT */
/* The USB gate of mynaguardd (root): udev monitor + coldplug → policy matcher → sysfs authorized /
 * drivers_probe writes → usb.* events. One greppable stderr line per decision. */
#include <errno.h>
#include <fcntl.h>
#include <libudev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "fleet.h"
#include "log.h"
#include "macro.h"
#include "notify.h"
#include "usb_dev.h"
#include "priv.h"
#include "usb_gate.h"
#include "usb_str.h"

#define GATE_MAX_ENTRIES 8192 /* devices + interfaces remembered; beyond this nothing is cached */
#define CLAUSE_A	 "2-6-3-a"
#define CLAUSE_B	 "2-3-2"

/* What the gate remembers per sysfs path: the authorized value it left (to recognise the change
 * uevent its own write causes and duplicates from the startup scan), and for devices what
 * usb.removed reports. */
struct gate_entry {
	char *syspath;
	bool is_iface;
	int applied; /* authorized value we decided: 0, 1, or -1 (device: no device-level decision) */
	struct usb_dev_info dev; /* devices only */
	/* interfaces authorized by a fleet exception: its id and data.exception, "" = none */
	char exception[BUNDLE_EXCEPTION_ID_MAX + 1];
	json_t *exception_json;
	char cls[12]; /* interfaces: class:subclass:protocol, for the expiry/revocation event */
	struct gate_entry *next;
};

struct agent_usb {
	struct udev *udev;
	struct udev_monitor *mon;
	int fd;
	struct gate_entry *entries;
	size_t n_entries;
	json_t *extra; /* merged into the next usb.* event's data (fleet exceptions), then freed */
};

static struct gate_entry *entry_find(struct agent_usb *u, const char *syspath)
{
	for (struct gate_entry *e = u->entries; e; e = e->next)
		if (strcmp(e->syspath, syspath) == 0)
			return e;
	return NULL;
}

static void entry_free(struct gate_entry *e)
{
	if (!e)
		return;
	usb_dev_info_clear(&e->dev);
	json_decref(e->exception_json);
	free(e->syspath);
	free(e);
}

static void entry_drop(struct agent_usb *u, const char *syspath)
{
	for (struct gate_entry **pp = &u->entries; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->syspath, syspath) == 0) {
			struct gate_entry *e = *pp;
			*pp = e->next;
			entry_free(e);
			u->n_entries--;
			return;
		}
	}
}

/* Find or create; NULL when full or out of memory (the caller goes on without caching). */
static struct gate_entry *entry_get(struct agent_usb *u, const char *syspath, bool is_iface)
{
	struct gate_entry *e = entry_find(u, syspath);

	if (e)
		return e;
	if (u->n_entries >= GATE_MAX_ENTRIES)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->syspath = strdup(syspath);
	if (!e->syspath) {
		free(e);
		return NULL;
	}
	e->is_iface = is_iface;
	e->applied = -1;
	e->next = u->entries;
	u->entries = e;
	u->n_entries++;
	return e;
}

static bool audit_mode(const struct agent *a)
{
	return agent_policy(a)->usb_mode == POLICY_USB_AUDIT;
}

static const char *mode_name(const struct agent *a)
{
	return audit_mode(a) ? "audit" : "enforce";
}

static json_t *json_str_or_null(const char *s)
{
	_cleanup_free_ char *clean = usb_str_sanitize(s, POLICY_SERIAL_MAX);

	return clean ? json_string(clean) : json_null();
}

static json_t *json_hex4(const struct usb_dev_info *dev, bool vendor)
{
	char buf[8];

	if (!dev->have_ids)
		return json_null();
	snprintf(buf, sizeof(buf), "%04x", vendor ? dev->vendor : dev->product);
	return json_string(buf);
}

/* Emit one usb.* event. classes is stolen. */
static void emit_usb(struct agent *a, enum event_kind kind, const struct usb_dev_info *dev,
		     const char *iface, json_t *classes, const char *rule, const char *action)
{
	json_t *data = json_object();
	json_t *clauses = json_pack("[ss]", CLAUSE_A, CLAUSE_B);
	_cleanup_free_ char *clean_rule = usb_str_sanitize(rule, 200);

	if (!data || !clauses) {
		json_decref(data);
		json_decref(clauses);
		json_decref(classes);
		fputs("usb.error op=emit error=\"out of memory\"\n", stderr);
		return;
	}
	json_object_set_new(data, "vendor", json_hex4(dev, true));
	json_object_set_new(data, "product", json_hex4(dev, false));
	json_object_set_new(data, "serial", json_str_or_null(dev->serial));
	json_object_set_new(data, "manufacturer", json_str_or_null(dev->manufacturer));
	json_object_set_new(data, "product_name", json_str_or_null(dev->product_name));
	json_object_set_new(data, "port", json_str_or_null(dev->port));
	json_object_set_new(data, "interface", json_str_or_null(iface));
	json_object_set_new(data, "classes", classes ? classes : json_array());
	if (rule)
		json_object_set_new(data, "rule",
				    clean_rule ? json_string(clean_rule) : json_null());
	json_object_set_new(data, "mode", json_string(mode_name(a)));
	if (kind == EVENT_USB_BLOCKED)
		json_object_set_new(data, "audit", json_boolean(audit_mode(a)));
	if (action)
		json_object_set_new(data, "action", json_string(action));
	if (dev->have_hash)
		json_object_set_new(data, "descriptor_hash", json_string(dev->hash));
	if (a->usb && a->usb->extra) {
		json_object_update(data, a->usb->extra);
		json_decref(a->usb->extra);
		a->usb->extra = NULL;
	}
	if (kind == EVENT_USB_BLOCKED)
		agent_notify_usb_blocked(a, data); /* data.request_code, the desktop notice */
	(void)agent_emit(a, kind, clauses, data);
}

static void log_decision(const char *what, const struct usb_dev_info *dev, const char *iface,
			 const char *cls, const char *rule, const char *mode, const char *action)
{
	char serial[160], manu[100], prod[100], rulebuf[240];
	char vid[8] = "-", pid[8] = "-";

	if (dev->have_ids) {
		snprintf(vid, sizeof(vid), "%04x", dev->vendor);
		snprintf(pid, sizeof(pid), "%04x", dev->product);
	}
	log_line(LOG_NOTICE,
		 "%s port=%s iface=%s vendor=%s product=%s serial=%s manufacturer=%s "
		 "product_name=%s class=%s rule=%s mode=%s action=%s",
		 what, dev->port, iface ? iface : "-", vid, pid,
		 usb_str_escape(dev->serial, serial, sizeof(serial)),
		 usb_str_escape(dev->manufacturer, manu, sizeof(manu)),
		 usb_str_escape(dev->product_name, prod, sizeof(prod)), cls,
		 usb_str_escape(rule, rulebuf, sizeof(rulebuf)), mode, action);
}

static void log_error(const char *port, const char *iface, const char *op, int err)
{
	log_line(LOG_ERR, "usb.error port=%s iface=%s op=%s error=\"%s\"", port,
		 iface ? iface : "-", op, strerror(-err));
}

static int probe_interface(struct agent *a, const char *name)
{
	return priv_usb_probe(name); /* the monitor writes bus/usb/drivers_probe */
}

/* Read the device an interface belongs to, fresh each time (a few small files), and keep the
 * copy in its entry for usb.removed. */
static struct usb_dev_info *device_for(struct agent *a, struct udev_device *parent,
				       struct usb_dev_info *tmp, bool *ret_tmp)
{
	struct agent_usb *u = a->usb;
	const char *syspath = udev_device_get_syspath(parent);
	struct gate_entry *e;

	*ret_tmp = false;
	if (usb_dev_read(parent, agent_paths(a)->sysfs_root, tmp) < 0)
		return NULL;
	e = entry_find(u, syspath);
	if (!e)
		e = entry_get(u, syspath, false);
	if (e && !e->is_iface) {
		usb_dev_info_clear(&e->dev);
		e->dev = *tmp;
		return &e->dev;
	}
	*ret_tmp = true;
	return tmp;
}

/* One interface decided in a pass over a device (the one the uevent is about, and its siblings). */
struct iface_pass_item {
	struct usb_iface_info ifc;
	struct policy_usb_decision dec;
	const char *act;
	bool authorized_now; /* we wrote authorized=1 in this pass */
	/* a fleet exception authorized it: its id, "" = none */
	char exception[BUNDLE_EXCEPTION_ID_MAX + 1];
};

/* The interfaces of one device, as present in sysfs (direct children of the usb_device). */
#define GATE_MAX_IFACES 32 /* USB_MAXINTERFACES */
struct iface_pass {
	struct iface_pass_item items[GATE_MAX_IFACES];
	size_t n;
	char paths[GATE_MAX_IFACES][512]; /* every present interface, sorted (probe order) */
	size_t n_paths;
};

static void policy_device(const struct usb_dev_info *dev, struct policy_usb_device *ret)
{
	*ret = (struct policy_usb_device){.vendor = dev->vendor,
					  .product = dev->product,
					  .serial = dev->serial,
					  .descriptor_hash = dev->have_hash ? dev->hash : NULL,
					  .mtp = dev->mtp};
}

/* A class block that a fleet exception in force opens for this device (docs/fleet.md). */
static void apply_exception(struct agent *a, const struct usb_dev_info *dev,
			    struct iface_pass_item *it)
{
	struct policy_usb_device pd;
	const struct bundle_exception *ex;
	char rule[sizeof(it->dec.rule)];

	it->exception[0] = 0;
	if (it->dec.verdict != POLICY_USB_BLOCK ||
	    it->dec.reason != POLICY_USB_REASON_BLOCKED_CLASS || !it->dec.block || !dev->have_ids ||
	    dev->invalid[0])
		return;
	policy_device(dev, &pd);
	ex = agent_fleet_exception_for(a, &pd, it->dec.block, rule, sizeof(rule));
	if (!ex)
		return;
	it->dec.verdict = POLICY_USB_ALLOW;
	memcpy(it->dec.rule, rule, sizeof(rule));
	snprintf(it->exception, sizeof(it->exception), "%s", ex->id);
}

/* Decide ifc (taken over by the pass) and write `authorized` when it differs. Logs and events
 * come later, in report_pass(), once the probes have run. */
static void decide_into(struct agent *a, const struct usb_dev_info *dev, const char *syspath,
			struct usb_iface_info *ifc, struct iface_pass *p)
{
	struct iface_pass_item *it;
	struct gate_entry *e;
	int want, r;

	if (p->n >= GATE_MAX_IFACES) {
		usb_iface_info_clear(ifc);
		return;
	}
	it = &p->items[p->n++];
	it->ifc = *ifc;
	memset(ifc, 0, sizeof(*ifc));
	it->authorized_now = false;

	usb_dev_decide_iface(agent_policy(a), dev, &it->ifc, &it->dec);
	apply_exception(a, dev, it);
	/* In audit mode blocked interfaces are reported but left usable. */
	want = (it->dec.verdict == POLICY_USB_ALLOW || audit_mode(a)) ? 1 : 0;

	if (it->ifc.authorized != want) {
		r = priv_usb_authorize(it->ifc.name, want);
		if (r < 0) {
			log_error(dev->port, it->ifc.name, "write-authorized", r);
			it->act = "failed";
		} else if (want) {
			it->act = "authorized"; /* ",probed" once probe_unbound() has run */
			it->authorized_now = true;
		} else {
			it->act = "deauthorized";
		}
	} else {
		it->act = want ? "none" : "left-unauthorized";
	}

	e = entry_get(a->usb, syspath, true);
	if (e) {
		e->applied = strcmp(it->act, "failed") == 0 ? -1 : want;
		json_decref(e->exception_json);
		e->exception_json = NULL;
		snprintf(e->exception, sizeof(e->exception), "%s", it->exception);
		usb_dev_class_string(it->ifc.cls, it->ifc.subclass, it->ifc.protocol, e->cls);
		if (it->exception[0])
			e->exception_json = agent_fleet_exception_json(a, it->exception);
	}
}

/* Find the interfaces of parent in sysfs. Sorted by syspath, which is the probe order. */
static void list_ifaces(struct agent *a, struct udev_device *parent, struct iface_pass *p)
{
	struct agent_usb *u = a->usb;
	const char *psys = udev_device_get_syspath(parent);
	struct udev_enumerate *en = udev_enumerate_new(u->udev);
	struct udev_list_entry *le;

	p->n_paths = 0;
	if (!en)
		return;
	if (udev_enumerate_add_match_parent(en, parent) < 0 ||
	    udev_enumerate_add_match_subsystem(en, "usb") < 0 ||
	    udev_enumerate_scan_devices(en) < 0) {
		udev_enumerate_unref(en);
		return;
	}
	udev_list_entry_foreach(le, udev_enumerate_get_list_entry(en))
	{
		const char *sp = udev_list_entry_get_name(le);
		const char *slash = strrchr(sp, '/');
		size_t plen = strlen(psys);

		/* Direct children only (not a hub's downstream devices), and only interfaces. */
		if (p->n_paths >= GATE_MAX_IFACES || !slash || (size_t)(slash - sp) != plen ||
		    strncmp(sp, psys, plen) != 0 || !strchr(slash, ':'))
			continue;
		if (strlen(sp) >= sizeof(p->paths[0]))
			continue;
		strcpy(p->paths[p->n_paths++], sp);
	}
	udev_enumerate_unref(en);
}

/* The siblings of the interface just authorized that were not decided yet (their uevents may
 * still be queued): decide them now, so a driver that claims its siblings while probing the
 * first interface (cdc_ether, snd-usb-audio) finds them authorized. Their own add/change uevents
 * then come as duplicates and are skipped, so each interface still gets one decision. */
static void decide_siblings(struct agent *a, const struct usb_dev_info *dev, struct iface_pass *p)
{
	struct agent_usb *u = a->usb;

	for (size_t k = 0; k < p->n_paths; k++) {
		struct udev_device *s;
		struct usb_iface_info ifc;
		struct gate_entry *e;
		bool done = false;
		const char *devtype;

		for (size_t j = 0; j < p->n; j++)
			if (strcmp(strrchr(p->paths[k], '/') + 1, p->items[j].ifc.name) == 0)
				done = true;
		if (done)
			continue;
		s = udev_device_new_from_syspath(u->udev, p->paths[k]);
		if (!s)
			continue;
		devtype = udev_device_get_devtype(s);
		if (!devtype || strcmp(devtype, "usb_interface") != 0 ||
		    usb_iface_read(s, agent_paths(a)->sysfs_root, &ifc) < 0) {
			udev_device_unref(s);
			continue;
		}
		udev_device_unref(s);
		e = entry_find(u, p->paths[k]);
		if (e && e->applied >= 0 && ifc.authorized == e->applied) {
			usb_iface_info_clear(&ifc); /* decided before */
			continue;
		}
		decide_into(a, dev, p->paths[k], &ifc, p);
	}
}

static bool iface_bound(const char *syspath)
{
	char path[600];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/driver", syspath) >= (int)sizeof(path))
		return false;
	return lstat(path, &st) == 0;
}

/* Probe every authorized interface of the device that has no driver yet, in interface order:
 * the ones just authorized, and any whose driver failed earlier because a sibling it claims was
 * still unauthorized (cdc_ether gives up on the control interface then). An interface claimed
 * by a sibling's driver during this loop is bound by the time its turn comes. */
static void probe_unbound(struct agent *a, const struct usb_dev_info *dev, struct iface_pass *p)
{
	for (size_t k = 0; k < p->n_paths; k++) {
		char dir[600], buf[8];
		const char *name = strrchr(p->paths[k], '/') + 1;
		int r;

		if (usb_dev_path(agent_paths(a)->sysfs_root, p->paths[k], dir, sizeof(dir)) < 0)
			continue;
		if (usb_dev_read_attr(dir, "authorized", buf, sizeof(buf)) < 0 ||
		    strcmp(buf, "1") != 0 || iface_bound(dir))
			continue;
		r = probe_interface(a, name);
		if (r < 0)
			log_error(dev->port, name, "drivers-probe", r);
		for (size_t j = 0; j < p->n; j++)
			if (p->items[j].authorized_now && strcmp(p->items[j].ifc.name, name) == 0)
				p->items[j].act = r < 0 ? "authorized" : "authorized,probed";
	}
	/* Claimed by a sibling's driver: probed along with it. */
	for (size_t j = 0; j < p->n; j++)
		if (p->items[j].authorized_now && strcmp(p->items[j].act, "authorized") == 0 &&
		    iface_bound(p->items[j].ifc.syspath))
			p->items[j].act = "authorized,probed";
}

/* One log line and one event per interface decided in the pass. */
static void report_pass(struct agent *a, const struct usb_dev_info *dev, struct iface_pass *p)
{
	for (size_t j = 0; j < p->n; j++) {
		struct iface_pass_item *it = &p->items[j];
		bool blocked = it->dec.verdict == POLICY_USB_BLOCK;
		char cls[12];

		usb_dev_class_string(it->ifc.cls, it->ifc.subclass, it->ifc.protocol, cls);
		log_decision(blocked ? "usb.blocked" : "usb.allowed", dev, it->ifc.name, cls,
			     it->dec.rule, mode_name(a), it->act);
		/* A root hub's own interface is part of the controller, not something plugged
		 * in: decided and logged like any other, but not worth an event at every start. */
		if (!dev->root_hub && it->exception[0]) {
			json_decref(a->usb->extra);
			a->usb->extra = json_pack("{s:o}", "exception",
						  agent_fleet_exception_json(a, it->exception));
		}
		if (!dev->root_hub)
			emit_usb(a, blocked ? EVENT_USB_BLOCKED : EVENT_USB_ALLOWED, dev,
				 it->ifc.name, json_pack("[s]", cls), it->dec.rule, it->act);
		usb_iface_info_clear(&it->ifc);
	}
	p->n = 0;
}

static void handle_iface(struct agent *a, struct udev_device *d, const char *action)
{
	struct agent_usb *u = a->usb;
	const char *syspath = udev_device_get_syspath(d);
	struct udev_device *parent;
	struct usb_dev_info tmpdev, *dev;
	struct usb_iface_info ifc;
	struct gate_entry *e;
	_cleanup_free_ struct iface_pass *p = NULL;
	bool tmp = false;

	if (strcmp(action, "remove") == 0) {
		entry_drop(u, syspath);
		return;
	}
	if (strcmp(action, "add") != 0 && strcmp(action, "change") != 0)
		return; /* bind, unbind, move: not a decision */

	parent = udev_device_get_parent_with_subsystem_devtype(d, "usb", "usb_device");
	if (!parent) {
		log_error("-", udev_device_get_sysname(d), "find-parent", -ENODEV);
		return;
	}
	if (usb_iface_read(d, agent_paths(a)->sysfs_root, &ifc) < 0) {
		log_error("-", udev_device_get_sysname(d), "read", -ENOMEM);
		return;
	}
	e = entry_find(u, syspath);
	if (e && e->applied >= 0 && ifc.authorized == e->applied) {
		/* Our own write's change uevent, or the startup scan already handled this add. */
		usb_iface_info_clear(&ifc);
		return;
	}
	p = calloc(1, sizeof(*p));
	dev = p ? device_for(a, parent, &tmpdev, &tmp) : NULL;
	if (!dev) {
		log_error("-", ifc.name, "read", -ENOMEM);
		usb_iface_info_clear(&ifc);
		return;
	}

	decide_into(a, dev, syspath, &ifc, p);
	if (p->items[0].authorized_now) {
		/* Allowed: its allowed siblings first, then the probes. */
		bool listed = false;

		list_ifaces(a, parent, p);
		for (size_t k = 0; k < p->n_paths; k++)
			listed = listed || strcmp(p->paths[k], syspath) == 0;
		/* Not listed (yet): probe it anyway. */
		if (!listed && p->n_paths < GATE_MAX_IFACES &&
		    strlen(syspath) < sizeof(p->paths[0]))
			strcpy(p->paths[p->n_paths++], syspath);
		decide_siblings(a, dev, p);
		probe_unbound(a, dev, p);
	}
	report_pass(a, dev, p);
	if (tmp)
		usb_dev_info_clear(&tmpdev);
}

/* A second layer beside the udev rule: interfaces of devices on this bus start unauthorized. */
static void root_hub_default_deny(struct agent *a, const struct usb_dev_info *dev)
{
	char buf[16];
	int r;

	if (audit_mode(a))
		return;
	r = (int)usb_dev_read_attr(dev->syspath, "interface_authorized_default", buf, sizeof(buf));
	if (r >= 0 && strcmp(buf, "0") == 0)
		return;
	r = priv_usb_default_deny(dev->port);
	if (r < 0) {
		log_error(dev->port, NULL, "write-interface_authorized_default", r);
		return;
	}
	log_line(LOG_INFO, "usb.roothub port=%s interface_authorized_default=0", dev->port);
}

/* A device that is itself unauthorized has no interfaces: decide on its descriptors. */
static void decide_unauthorized_device(struct agent *a, struct gate_entry *e)
{
	struct policy_usb_decision *dec;
	size_t n = 0;
	int blocking = -1;
	json_t *classes;
	char cls[12], allcls[USB_DESC_MAX_IFACES * 12 + 1] = "";
	const char *act;
	bool audit = audit_mode(a);
	int want, r;

	dec = calloc(USB_DESC_MAX_IFACES, sizeof(*dec));
	if (!dec) {
		log_error(e->dev.port, NULL, "decide", -ENOMEM);
		return;
	}
	usb_dev_decide_descriptors(agent_policy(a), &e->dev, dec, &n, &blocking);
	classes = json_array();
	if (e->dev.desc_error == 0 && !e->dev.invalid[0]) {
		for (size_t k = 0; k < e->dev.desc.n_ifaces; k++) {
			const struct usb_desc_iface *i = &e->dev.desc.ifaces[k];
			usb_dev_class_string(i->cls, i->subclass, i->protocol, cls);
			json_array_append_new(classes, json_string(cls));
			if (k)
				strcat(allcls, ",");
			strcat(allcls, cls);
		}
	}
	if (!allcls[0])
		strcpy(allcls, "??:??:??");

	/* All allowed: authorize the device; its interfaces then appear and are decided one by one
	 * (the kernel creates them unauthorized where interface_authorized_default=0). */
	want = (blocking < 0 || audit) ? 1 : 0;
	if (want) {
		r = priv_usb_authorize(e->dev.port, true);
		act = r < 0 ? "failed" : "authorized-device";
		if (r < 0)
			log_error(e->dev.port, NULL, "write-authorized", r);
	} else {
		act = "left-unauthorized";
	}
	e->applied = strcmp(act, "failed") == 0 ? -1 : want;

	const struct policy_usb_decision *d = blocking >= 0 ? &dec[blocking] : &dec[0];
	const char *rule = n > 0 ? d->rule : "no interfaces";
	log_decision(blocking >= 0 ? "usb.blocked" : "usb.allowed", &e->dev, NULL, allcls, rule,
		     mode_name(a), act);
	emit_usb(a, blocking >= 0 ? EVENT_USB_BLOCKED : EVENT_USB_ALLOWED, &e->dev, NULL, classes,
		 rule, act);
	free(dec);
}

static void handle_device(struct agent *a, struct udev_device *d, const char *action)
{
	struct agent_usb *u = a->usb;
	const char *syspath = udev_device_get_syspath(d);
	struct gate_entry *e;
	struct usb_dev_info info;

	if (strcmp(action, "remove") == 0) {
		e = entry_find(u, syspath);
		if (e) {
			log_decision("usb.removed", &e->dev, NULL, "-", NULL, mode_name(a), "none");
			emit_usb(a, EVENT_USB_REMOVED, &e->dev, NULL, NULL, NULL, NULL);
			entry_drop(u, syspath);
		} else {
			/* Never seen (e.g. cache full): report what the uevent itself says. */
			struct usb_dev_info min = {0};
			snprintf(min.port, sizeof(min.port), "%s", udev_device_get_sysname(d));
			log_decision("usb.removed", &min, NULL, "-", NULL, mode_name(a), "none");
			emit_usb(a, EVENT_USB_REMOVED, &min, NULL, NULL, NULL, NULL);
		}
		/* Interfaces go first in the kernel's order; drop any the cache still holds. */
		size_t len = strlen(syspath);
		for (struct gate_entry **pp = &u->entries; *pp;) {
			if (strncmp((*pp)->syspath, syspath, len) == 0 &&
			    (*pp)->syspath[len] == '/') {
				struct gate_entry *x = *pp;
				*pp = x->next;
				entry_free(x);
				u->n_entries--;
			} else {
				pp = &(*pp)->next;
			}
		}
		return;
	}
	if (strcmp(action, "add") != 0 && strcmp(action, "change") != 0)
		return;

	if (usb_dev_read(d, agent_paths(a)->sysfs_root, &info) < 0) {
		log_error(udev_device_get_sysname(d), NULL, "read", -ENOMEM);
		return;
	}
	if (info.root_hub)
		root_hub_default_deny(a, &info);

	e = entry_find(u, syspath);
	if (e && !e->is_iface && e->applied >= 0 && info.authorized == e->applied) {
		usb_dev_info_clear(&info); /* our own write or a duplicate add */
		return;
	}
	if (strcmp(action, "change") == 0 && e && e->applied < 0 && info.authorized != 0) {
		usb_dev_info_clear(&info);
		return;
	}
	e = entry_get(u, syspath, false);
	if (!e) {
		/* Cache full: decide anyway, remember nothing. */
		struct gate_entry tmp = {.applied = -1, .dev = info};
		if (info.authorized == 0)
			decide_unauthorized_device(a, &tmp);
		usb_dev_info_clear(&info);
		return;
	}
	usb_dev_info_clear(&e->dev);
	e->dev = info;
	e->applied = -1;
	if (info.authorized == 0)
		decide_unauthorized_device(a, e);
}

static void handle(struct agent *a, struct udev_device *d, const char *action)
{
	const char *devtype = udev_device_get_devtype(d);

	if (!devtype || !action)
		return;
	if (strcmp(devtype, "usb_device") == 0)
		handle_device(a, d, action);
	else if (strcmp(devtype, "usb_interface") == 0)
		handle_iface(a, d, action);
}

static int coldplug(struct agent *a);

static void on_monitor(struct agent *a, int fd, uint32_t events, void *userdata)
{
	struct agent_usb *u = userdata;

	/* Bounded per wake-up so a flood cannot starve signals; the fd stays readable. */
	for (int i = 0; i < 256; i++) {
		struct udev_device *d;

		errno = 0;
		d = udev_monitor_receive_device(u->mon);
		if (!d) {
			/* Events were lost (socket buffer overrun): what they would have shown is in
			 * sysfs, so scan again; decided interfaces are skipped as duplicates. */
			if (errno == ENOBUFS) {
				fputs("usb.error op=monitor error=\"events lost\", rescanning\n",
				      stderr);
				(void)coldplug(a);
			}
			break;
		}
		handle(a, d, udev_device_get_action(d));
		udev_device_unref(d);
	}
}

static int coldplug(struct agent *a)
{
	struct agent_usb *u = a->usb;
	struct udev_enumerate *en = udev_enumerate_new(u->udev);
	struct udev_list_entry *le;
	int r;

	if (!en)
		return -ENOMEM;
	r = udev_enumerate_add_match_subsystem(en, "usb");
	if (r >= 0)
		r = udev_enumerate_scan_devices(en);
	if (r < 0) {
		udev_enumerate_unref(en);
		return r;
	}
	/* Sorted by syspath: a device comes before its interfaces. */
	udev_list_entry_foreach(le, udev_enumerate_get_list_entry(en))
	{
		struct udev_device *d =
		    udev_device_new_from_syspath(u->udev, udev_list_entry_get_name(le));
		if (!d)
			continue;
		handle(a, d, "add");
		udev_device_unref(d);
	}
	udev_enumerate_unref(en);
	return 0;
}

/* Test hook: hold between enabling the monitor and the scan until a line arrives on stdin, so a
 * test can plug a device into exactly that window. Only with MYNAGUARDD_TEST_HOLD_SCAN=1. */
static void test_hold_scan(void)
{
	const char *e = getenv("MYNAGUARDD_TEST_HOLD_SCAN");
	char line[16];

	if (!e || strcmp(e, "1") != 0)
		return;
	fputs("SCANNING\n", stdout);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return;
}

int usb_gate_start(struct agent *a)
{
	struct agent_usb *u;
	int r, flags;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->fd = -1;
	a->usb = u;

	u->udev = udev_new();
	if (!u->udev)
		return -ENOMEM;
	u->mon = udev_monitor_new_from_netlink(u->udev, "udev");
	if (!u->mon)
		return -ENOMEM;
	r = udev_monitor_filter_add_match_subsystem_devtype(u->mon, "usb", NULL);
	if (r < 0)
		return r;
	(void)udev_monitor_set_receive_buffer_size(u->mon, 16 * 1024 * 1024);
	/* Receiving starts now: everything from here on queues in the socket while we scan. */
	r = udev_monitor_enable_receiving(u->mon);
	if (r < 0)
		return r;
	u->fd = udev_monitor_get_fd(u->mon);
	flags = fcntl(u->fd, F_GETFL);
	if (flags >= 0)
		(void)fcntl(u->fd, F_SETFL, flags | O_NONBLOCK);

	test_hold_scan();
	r = coldplug(a);
	if (r < 0)
		return r;
	log_line(LOG_INFO, "usb.coldplug done entries=%zu", u->n_entries);
	return agent_watch_fd(a, u->fd, on_monitor, u);
}

void usb_gate_rescan(struct agent *a)
{
	struct agent_usb *u = a->usb;

	if (!u)
		return;
	/* Forget the decisions so each interface is decided again under the new policy. */
	while (u->entries) {
		struct gate_entry *e = u->entries;
		u->entries = e->next;
		entry_free(e);
	}
	u->n_entries = 0;
	if (coldplug(a) < 0)
		fputs("usb.error op=rescan\n", stderr);
}

void usb_gate_recheck_exceptions(struct agent *a)
{
	struct agent_usb *u = a->usb;

	if (!u)
		return;
	for (struct gate_entry *e = u->entries; e; e = e->next) {
		char devpath[sizeof(e->dev.syspath)];
		const char *cls = e->cls[0] ? e->cls : "-";
		char rule[BUNDLE_EXCEPTION_ID_MAX + 48];
		const char *slash = strrchr(e->syspath, '/');
		struct gate_entry *d;
		struct policy_usb_device pd;
		enum event_kind kind;
		const char *act = "deauthorized";
		int state, r;

		if (!e->is_iface || !e->exception[0] || !slash ||
		    (size_t)(slash - e->syspath) >= sizeof(devpath))
			continue;
		memcpy(devpath, e->syspath, (size_t)(slash - e->syspath));
		devpath[slash - e->syspath] = 0;
		d = entry_find(u, devpath);
		if (!d || d->is_iface)
			continue;
		policy_device(&d->dev, &pd);
		state = agent_fleet_exception_state(a, e->exception, &pd);
		if (state == 1)
			continue;
		/* -2: in force, but not for the user now at the seat */
		kind = state == -1  ? EVENT_USB_EXCEPTION_REVOKED
		       : state == 0 ? EVENT_USB_EXCEPTION_EXPIRED
				    : EVENT_USB_BLOCKED;
		/* At once: the driver unbinds, the disk goes away (audit mode leaves it usable). */
		if (audit_mode(a)) {
			act = "none";
		} else {
			r = priv_usb_authorize(slash + 1, false);
			if (r < 0) {
				log_error(d->dev.port, slash + 1, "write-authorized", r);
				act = "failed";
			}
		}
		e->applied = strcmp(act, "deauthorized") == 0 ? 0 : e->applied;
		snprintf(rule, sizeof(rule), "exception %s: %s", e->exception,
			 state == -1  ? "revoked"
			 : state == 0 ? "expired"
				      : "session user not listed");
		log_decision(event_kind_name(kind), &d->dev, slash + 1, cls, rule, mode_name(a),
			     act);
		json_decref(u->extra);
		u->extra =
		    json_pack("{s:o}", "exception",
			      e->exception_json ? json_incref(e->exception_json) : json_null());
		emit_usb(a, kind, &d->dev, slash + 1, e->cls[0] ? json_pack("[s]", e->cls) : NULL,
			 rule, act);
		e->exception[0] = 0;
		json_decref(e->exception_json);
		e->exception_json = NULL;
	}
}

void usb_gate_stop(struct agent *a)
{
	struct agent_usb *u = a->usb;

	if (!u)
		return;
	if (u->fd >= 0)
		(void)agent_unwatch_fd(a, u->fd);
	while (u->entries) {
		struct gate_entry *e = u->entries;
		u->entries = e->next;
		entry_free(e);
	}
	udev_monitor_unref(u->mon);
	udev_unref(u->udev);
	json_decref(u->extra);
	free(u);
	a->usb = NULL;
}
