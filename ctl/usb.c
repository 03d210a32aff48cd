/* SPDX-License-Identifier: MIT */
/* mynaguardctl usb list|allow (root): present USB devices with the policy's verdict, and adding
 * allow-list entries to the policy file (re-validated, written atomically). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libudev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compliance.h"
#include "config.h"
#include "ctl.h"
#include "fileio.h"
#include "macro.h"
#include "policy.h"
#include "usb_dev.h"
#include "usb_str.h"

static void usage(FILE *f)
{
	fputs(
	    "Usage: mynaguardctl [--policy FILE] usb list [--sysfs-root DIR]\n"
	    "       mynaguardctl [--policy FILE] [--yes] usb allow VID:PID|PORT [--serial S | --any-serial]\n"
	    "                    [--hash[=sha256:HEX]] [--name TEXT] [--sysfs-root DIR] [--state DIR]\n",
	    f);
}

static int load_policy(const struct ctl_opts *o, struct policy **ret)
{
	struct policy_errors errs = {0};
	char buf[512];
	int r = policy_load(o->policy_path, ret, &errs);

	if (r < 0) {
		for (size_t i = 0; i < errs.n; i++) {
			policy_error_format(&errs, i, buf, sizeof(buf));
			fprintf(stderr, "%s\n", buf);
		}
		if (errs.n == 0)
			fprintf(stderr, "%s: %s\n", o->policy_path, strerror(-r));
	}
	policy_errors_clear(&errs);
	return r;
}

/* serial as a policy value: bare when it has no space or quote, else "..." with \" and \\. */
static void policy_serial(const char *s, char *buf, size_t size)
{
	size_t o = 0;
	bool quote = s[strcspn(s, " \t\"\\")] != '\0';

	if (!quote) {
		snprintf(buf, size, "%s", s);
		return;
	}
	buf[o++] = '"';
	for (; *s && o + 3 < size; s++) {
		if (*s == '"' || *s == '\\')
			buf[o++] = '\\';
		buf[o++] = *s;
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

/* Whether the serial can be written into the policy at all (printable, valid, not too long). */
static bool serial_expressible(const struct usb_dev_info *d)
{
	if (!d->serial || d->invalid[0])
		return false;
	for (const unsigned char *p = (const unsigned char *)d->serial; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static void print_allow_line(const struct usb_dev_info *d)
{
	char ser[POLICY_SERIAL_MAX * 8 + 8];

	if (!d->have_ids)
		return;
	if (serial_expressible(d)) {
		policy_serial(d->serial, ser, sizeof(ser));
		printf("    allow = %04x:%04x serial=%s\n", d->vendor, d->product, ser);
	} else if (d->have_hash) {
		printf("    allow = %04x:%04x hash=sha256:%s\n", d->vendor, d->product, d->hash);
	}
}

static const char *verdict_word(const struct policy_usb_decision *d, bool audit)
{
	if (d->verdict == POLICY_USB_ALLOW)
		return "allow";
	return audit ? "block(audit)" : "block";
}

struct list_iface_ctx {
	const struct policy *p;
	const struct usb_dev_info *info;
	bool audit;
	bool any_blocked;
	bool other_blocked; /* a blocked interface that reader = would not cover */
};

/* reader = covers a blocked vendor-specific (ff) interface that mtp did not match. */
static bool reader_would_cover(int cls, const struct policy_usb_decision *d)
{
	return d->verdict != POLICY_USB_BLOCK ||
	       (cls == 0xff && d->reason == POLICY_USB_REASON_BLOCKED_CLASS && d->block &&
		!d->block->mtp);
}

static void list_iface(const struct usb_iface_info *ifc, void *userdata)
{
	struct list_iface_ctx *li = userdata;
	struct policy_usb_decision dec;
	char cls[12], rule[240];

	usb_dev_decide_iface(li->p, li->info, ifc, &dec);
	usb_dev_class_string(ifc->cls, ifc->subclass, ifc->protocol, cls);
	printf("    %s %s %s authorized=%d %s rule=%s\n", ifc->name, cls,
	       ifc->cls >= 0 && policy_usb_class_name(ifc->cls) ? policy_usb_class_name(ifc->cls)
								: "-",
	       ifc->authorized, verdict_word(&dec, li->audit),
	       usb_str_escape(dec.rule, rule, sizeof(rule)));
	li->any_blocked |= dec.verdict == POLICY_USB_BLOCK;
	li->other_blocked |= !reader_would_cover(ifc->cls, &dec);
}

static void list_device(const struct policy *p, struct udev *udev, struct udev_device *dev,
			const char *root)
{
	struct usb_dev_info info;
	char ser[200], manu[120], prod[120], cls[12], rule[240];
	bool any_blocked, other_blocked, audit = p->usb_mode == POLICY_USB_AUDIT;
	struct list_iface_ctx li = {.p = p, .info = &info, .audit = audit};
	size_t n_ifaces;

	if (usb_dev_read(dev, root, &info) < 0) {
		fprintf(stderr, "mynaguardctl: out of memory\n");
		return;
	}
	if (info.have_ids)
		printf("%s %04x:%04x", info.port, info.vendor, info.product);
	else
		printf("%s ????:????", info.port);
	printf(" manufacturer=%s product=%s serial=%s authorized=%d%s\n",
	       usb_str_escape(info.manufacturer, manu, sizeof(manu)),
	       usb_str_escape(info.product_name, prod, sizeof(prod)),
	       usb_str_escape(info.serial, ser, sizeof(ser)), info.authorized,
	       info.root_hub ? " root-hub" : "");
	if (info.invalid[0])
		printf("    invalid: %s\n", usb_str_escape(info.invalid, rule, sizeof(rule)));
	if (info.have_hash)
		printf("    descriptors sha256:%s\n", info.hash);

	n_ifaces = usb_dev_foreach_iface(udev, dev, root, list_iface, &li);
	any_blocked = li.any_blocked;
	other_blocked = li.other_blocked;

	if (n_ifaces == 0 && !info.root_hub) {
		/* unauthorized as a whole: what its descriptors announce */
		struct policy_usb_decision *dec = calloc(USB_DESC_MAX_IFACES, sizeof(*dec));
		size_t n = 0;
		int blocking = -1;

		if (dec) {
			usb_dev_decide_descriptors(p, &info, dec, &n, &blocking);
			for (size_t k = 0; k < n && k < info.desc.n_ifaces; k++) {
				const struct usb_desc_iface *d = &info.desc.ifaces[k];
				usb_dev_class_string(d->cls, d->subclass, d->protocol, cls);
				printf("    (descriptor) config %u interface %u.%u %s %s rule=%s\n",
				       d->config, d->number, d->altsetting, cls,
				       verdict_word(&dec[k], audit),
				       usb_str_escape(dec[k].rule, rule, sizeof(rule)));
			}
			if (blocking >= 0 && (info.desc_error || info.invalid[0] || n == 0 ||
					      info.desc.n_ifaces == 0))
				printf("    block rule=%s\n",
				       usb_str_escape(dec[0].rule, rule, sizeof(rule)));
			any_blocked |= blocking >= 0;
			for (size_t k = 0; k < n; k++)
				other_blocked |=
				    k >= info.desc.n_ifaces ||
				    !reader_would_cover(info.desc.ifaces[k].cls, &dec[k]);
			free(dec);
		}
	}
	if (any_blocked && !info.root_hub) {
		printf("    to allow it, add to [usb] (or run: mynaguardctl usb allow %s):\n",
		       info.port);
		print_allow_line(&info);
		if (!other_blocked && info.have_ids)
			printf(
			    "    if it is a card or NFC reader, this allows only its vendor-specific "
			    "functions instead:\n    reader = %04x:%04x\n",
			    info.vendor, info.product);
	}
	usb_dev_info_clear(&info);
}

static int usb_list(const struct ctl_opts *o, const char *root)
{
	_cleanup_policy_ struct policy *p = NULL;
	struct udev *udev;
	struct udev_enumerate *en;
	struct udev_list_entry *le;
	size_t n = 0;

	if (load_policy(o, &p) < 0)
		return 1;
	udev = udev_new();
	if (!udev)
		return 1;
	en = udev_enumerate_new(udev);
	if (!en || udev_enumerate_add_match_subsystem(en, "usb") < 0 ||
	    udev_enumerate_add_match_property(en, "DEVTYPE", "usb_device") < 0 ||
	    udev_enumerate_scan_devices(en) < 0) {
		fprintf(stderr, "mynaguardctl: cannot enumerate USB devices\n");
		udev_enumerate_unref(en);
		udev_unref(udev);
		return 1;
	}
	printf("policy %s: usb mode %s\n", o->policy_path,
	       p->usb_mode == POLICY_USB_AUDIT ? "audit" : "enforce");
	udev_list_entry_foreach(le, udev_enumerate_get_list_entry(en))
	{
		struct udev_device *d =
		    udev_device_new_from_syspath(udev, udev_list_entry_get_name(le));
		if (!d)
			continue;
		list_device(p, udev, d, root);
		udev_device_unref(d);
		n++;
	}
	if (n == 0)
		printf("no USB devices\n");
	udev_enumerate_unref(en);
	udev_unref(udev);
	return 0;
}

/* Find the present device: by port name ("1-1.2"), syspath, or the only one with VID:PID. */
static int find_device(const char *root, const char *what, bool by_ids, uint16_t vid, uint16_t pid,
		       struct usb_dev_info *ret)
{
	struct udev *udev = udev_new();
	struct udev_enumerate *en = udev ? udev_enumerate_new(udev) : NULL;
	struct udev_list_entry *le;
	int found = 0;

	if (!en || udev_enumerate_add_match_subsystem(en, "usb") < 0 ||
	    udev_enumerate_add_match_property(en, "DEVTYPE", "usb_device") < 0 ||
	    udev_enumerate_scan_devices(en) < 0) {
		udev_enumerate_unref(en);
		udev_unref(udev);
		return -EIO;
	}
	udev_list_entry_foreach(le, udev_enumerate_get_list_entry(en))
	{
		struct udev_device *d =
		    udev_device_new_from_syspath(udev, udev_list_entry_get_name(le));
		struct usb_dev_info info;
		bool match;

		if (!d)
			continue;
		if (usb_dev_read(d, root, &info) < 0) {
			udev_device_unref(d);
			continue;
		}
		if (by_ids)
			match = info.have_ids && info.vendor == vid && info.product == pid;
		else /* "1-1.2", or a path ending in it (/sys/bus/usb/devices/1-1.2) */
			match =
			    strcmp(info.port, what) == 0 ||
			    strcmp(udev_device_get_syspath(d), what) == 0 ||
			    (strchr(what, '/') && strcmp(info.port, strrchr(what, '/') + 1) == 0);
		if (match) {
			if (found)
				usb_dev_info_clear(ret);
			*ret = info;
			found++;
		} else {
			usb_dev_info_clear(&info);
		}
		udev_device_unref(d);
	}
	udev_enumerate_unref(en);
	udev_unref(udev);
	if (found == 0)
		return -ENODEV;
	if (found > 1) {
		usb_dev_info_clear(ret);
		return -ENOTUNIQ;
	}
	return 0;
}

/* The policy text with line inserted at the end of [usb] (after its last key), or a new [usb]
 * section at the end. */
static char *insert_allow(const char *text, size_t len, const char *line)
{
	const char *in_usb_end = NULL; /* just after the last key line of [usb] */
	bool in_usb = false, have_usb = false;
	const char *p = text, *end = text + len;
	char *out;
	size_t n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl ? nl + 1 : end;
		const char *s = p;

		while (s < next && (*s == ' ' || *s == '\t'))
			s++;
		if (s < next && *s == '[') {
			in_usb = strncmp(s, "[usb]", 5) == 0;
			if (in_usb) {
				have_usb = true;
				in_usb_end = next;
			}
		} else if (in_usb && s < next && *s != ';' && *s != '#' && *s != '\n' &&
			   *s != '\r') {
			in_usb_end = next;
		}
		p = next;
	}
	n = len + strlen(line) + 16;
	out = malloc(n);
	if (!out)
		return NULL;
	if (have_usb) {
		size_t head = (size_t)(in_usb_end - text);
		bool need_nl = head > 0 && text[head - 1] != '\n';
		snprintf(out, n, "%.*s%s%s\n%.*s", (int)head, text, need_nl ? "\n" : "", line,
			 (int)(len - head), text + head);
	} else {
		bool need_nl = len > 0 && text[len - 1] != '\n';
		snprintf(out, n, "%.*s%s\n[usb]\n%s\n", (int)len, text, need_nl ? "\n" : "", line);
	}
	return out;
}

static int usb_allow(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"serial", required_argument, NULL, 's'},
	    {"any-serial", no_argument, NULL, 'a'},
	    {"hash", optional_argument, NULL, 'H'},
	    {"name", required_argument, NULL, 'N'},
	    {"sysfs-root", required_argument, NULL, 'r'},
	    {"state", required_argument, NULL, 'S'},
	    {0},
	};
	const char *serial = NULL, *hash = NULL, *name = NULL, *root = "/";
	const char *state = MYNAGUARD_STATE_DIR;
	unsigned mline = 0;
	bool any_serial = false, want_hash = false, by_ids;
	unsigned vid = 0, pid = 0;
	char ids_end;
	struct usb_dev_info dev = {0};
	bool have_dev = false;
	_cleanup_policy_ struct policy *p = NULL;
	_cleanup_free_ char *text = NULL, *newtext = NULL;
	struct policy_errors errs = {0};
	struct policy *np = NULL;
	char line[1024], ser[POLICY_SERIAL_MAX * 8 + 8], buf[512];
	size_t len;
	struct stat st;
	int c, r;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			serial = optarg;
			break;
		case 'a':
			any_serial = true;
			break;
		case 'H':
			want_hash = true;
			hash = optarg;
			break;
		case 'N':
			name = optarg;
			break;
		case 'r':
			root = optarg;
			break;
		case 'S':
			state = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc || (serial && any_serial)) {
		usage(stderr);
		return 2;
	}
	if (hash && (strncmp(hash, "sha256:", 7) != 0 || strlen(hash) != 7 + 64)) {
		fprintf(stderr, "mynaguardctl: --hash=sha256:HEX needs 64 hex digits\n");
		return 2;
	}
	if (name && strchr(name, '\n')) {
		fprintf(stderr, "mynaguardctl: --name must be one line\n");
		return 2;
	}
	by_ids = sscanf(argv[optind], "%4x:%4x%c", &vid, &pid, &ids_end) == 2 &&
		 strlen(argv[optind]) == 9 && argv[optind][4] == ':';

	if (load_policy(o, &p) < 0)
		return 1;

	/* A device is needed for a port argument, for the serial when none is given, or to take
	 * its descriptor hash. */
	if (!by_ids || (want_hash && !hash) || (!serial && !any_serial)) {
		r = find_device(root, argv[optind], by_ids, (uint16_t)vid, (uint16_t)pid, &dev);
		if (r == -ENOTUNIQ) {
			fprintf(
			    stderr,
			    "mynaguardctl: several %s devices are present; name one by its port (see 'usb list')\n",
			    argv[optind]);
			return 1;
		}
		if (r < 0) {
			fprintf(stderr,
				"mynaguardctl: no USB device %s is present (see 'usb list')%s\n",
				argv[optind],
				by_ids ? "; give --serial S or --any-serial to add it anyway" : "");
			return 1;
		}
		have_dev = true;
		if (!dev.have_ids) {
			fprintf(stderr,
				"mynaguardctl: %s has no valid vendor/product id; refusing\n",
				dev.port);
			usb_dev_info_clear(&dev);
			return 1;
		}
		vid = dev.vendor;
		pid = dev.product;
		if (!serial && !any_serial) {
			if (!serial_expressible(&dev) && !(want_hash && dev.have_hash)) {
				fprintf(
				    stderr,
				    "mynaguardctl: %s has no usable serial number; use --hash or --any-serial\n",
				    dev.port);
				usb_dev_info_clear(&dev);
				return 1;
			}
			if (serial_expressible(&dev))
				serial = dev.serial;
		}
		if (want_hash && !hash) {
			if (!dev.have_hash) {
				fprintf(stderr, "mynaguardctl: cannot read the descriptors of %s\n",
					dev.port);
				usb_dev_info_clear(&dev);
				return 1;
			}
		}
	}

	len = (size_t)snprintf(line, sizeof(line), "allow = %04x:%04x", vid, pid);
	if (serial) {
		policy_serial(serial, ser, sizeof(ser));
		len += (size_t)snprintf(line + len, sizeof(line) - len, " serial=%s", ser);
	}
	if (want_hash)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " hash=%s%s",
					hash ? "" : "sha256:", hash ? hash : dev.hash);
	if (name)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " name=%s", name);
	if (have_dev)
		usb_dev_info_clear(&dev);
	if (len >= sizeof(line)) {
		fprintf(stderr, "mynaguardctl: the allow line would be too long\n");
		return 1;
	}

	r = fileio_read_file(AT_FDCWD, o->policy_path, POLICY_MAX_FILE_SIZE, &text, &len);
	if (r < 0 || stat(o->policy_path, &st) < 0) {
		fprintf(stderr, "mynaguardctl: cannot read %s: %s\n", o->policy_path,
			strerror(r < 0 ? -r : errno));
		return 1;
	}
	newtext = insert_allow(text, len, line);
	if (!newtext)
		return 1;
	/* The result must be a valid policy, or nothing is written. */
	r = policy_parse_string(o->policy_path, newtext, strlen(newtext), &np, &errs);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl: the policy would not be valid with this line:\n");
		for (size_t i = 0; i < errs.n; i++) {
			policy_error_format(&errs, i, buf, sizeof(buf));
			fprintf(stderr, "%s\n", buf);
		}
		policy_errors_clear(&errs);
		return 1;
	}
	policy_free(np);
	policy_errors_clear(&errs);

	printf("add to %s, section [usb]:\n  %s\n", o->policy_path, line);
	if (!serial && !want_hash)
		printf("note: without serial= every %04x:%04x device is allowed\n", vid, pid);
	if (!ctl_confirm(o, "Write it?")) {
		fprintf(stderr, "mynaguardctl: nothing written\n");
		return 1;
	}
	r = fileio_write_atomic_path(o->policy_path, newtext, strlen(newtext), st.st_mode & 07777);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl: cannot write %s: %s\n", o->policy_path,
			strerror(-r));
		return 1;
	}
	printf("written\n");
	r = compliance_manifest_update_policy(state, o->policy_path, &mline);
	if (r > 0) {
		printf("updated its hash in the install manifest %s/%s\n", state,
		       COMPLIANCE_MANIFEST_NAME);
	} else if (r == 0) {
		printf("note: the install manifest %s/%s does not exist or does not list %s; the "
		       "agent's agent.integrity check will report the policy\n",
		       state, COMPLIANCE_MANIFEST_NAME, o->policy_path);
	} else {
		if (mline > 0)
			fprintf(stderr, "mynaguardctl: %s/%s:%u: malformed line; not updated\n",
				state, COMPLIANCE_MANIFEST_NAME, mline);
		else
			fprintf(stderr, "mynaguardctl: cannot update %s/%s: %s\n", state,
				COMPLIANCE_MANIFEST_NAME, strerror(-r));
		fprintf(stderr, "mynaguardctl: the agent's agent.integrity check will report the "
				"policy as modified\n");
		printf("apply it with: systemctl reload mynaguardd\n");
		return 1;
	}
	printf("apply it with: systemctl reload mynaguardd\n");
	return 0;
}

int ctl_usb(const struct ctl_opts *o, int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "list") == 0) {
		static const struct option longopts[] = {
		    {"sysfs-root", required_argument, NULL, 'r'},
		    {0},
		};
		const char *root = "/";
		int c;

		optind = 0;
		while ((c = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
			if (c != 'r') {
				usage(stderr);
				return 2;
			}
			root = optarg;
		}
		if (optind != argc - 1) {
			usage(stderr);
			return 2;
		}
		return usb_list(o, root);
	}
	if (strcmp(argv[1], "allow") == 0) {
		optind = 0; /* full reinitialisation: options may follow the device */
		return usb_allow(o, argc - 1, argv + 1);
	}
	usage(stderr);
	return 2;
}
