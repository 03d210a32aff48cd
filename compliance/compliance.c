/* SPDX-License-Identifier: MIT */
/* The compliance checks over sysfs, PAM, passwd, the TOTP store and the install manifest. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compliance.h"
#include "fileio.h"
#include "macro.h"
#include "parse.h"
#include "usb_desc.h"
#include "usb_dev.h"
#include "usb_str.h"
#include "utf8.h"

const char *compliance_status_name(enum compliance_status s)
{
	switch (s) {
	case COMPLIANCE_PASS:
		return "pass";
	case COMPLIANCE_FAIL:
		return "fail";
	case COMPLIANCE_NOT_APPLICABLE:
		return "not_applicable";
	case COMPLIANCE_ERROR:
		return "error";
	}
	return "error";
}

/* ---- small helpers ---- */

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

static void set_result(struct compliance_result *r, enum compliance_status st, const char *fmt, ...)
    _printf_(3, 4);
static void set_result(struct compliance_result *r, enum compliance_status st, const char *fmt, ...)
{
	va_list ap;

	r->status = st;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

/* A detail built from several findings: "a; b; c", cut with "..." when full. */
struct detail {
	char buf[COMPLIANCE_DETAIL_MAX];
	size_t len;
	unsigned n;
	bool full;
	const char *sep; /* between findings; NULL = "; " */
};

static void detail_add(struct detail *d, const char *fmt, ...) _printf_(2, 3);
static void detail_add(struct detail *d, const char *fmt, ...)
{
	char item[COMPLIANCE_DETAIL_MAX];
	va_list ap;
	size_t l;

	d->n++;
	if (d->full)
		return;
	va_start(ap, fmt);
	vsnprintf(item, sizeof(item), fmt, ap);
	va_end(ap);
	l = strlen(item);
	/* keep room for "; " and the "..." marker */
	if (d->len + l + 2 + 4 >= sizeof(d->buf)) {
		snprintf(d->buf + d->len, sizeof(d->buf) - d->len, "%s...",
			 d->len ? (d->sep ? d->sep : "; ") : "");
		d->len = strlen(d->buf);
		d->full = true;
		return;
	}
	d->len += (size_t)snprintf(d->buf + d->len, sizeof(d->buf) - d->len, "%s%s",
				   d->len ? (d->sep ? d->sep : "; ") : "", item);
}

/* root + "/" + rel without doubled slashes; root "" or "/" both mean the real root. */
static int join(char *buf, size_t size, const char *root, const char *rel)
{
	size_t rl = root ? strlen(root) : 0;
	int n;

	while (rl > 0 && root[rl - 1] == '/')
		rl--;
	while (*rel == '/')
		rel++;
	n = snprintf(buf, size, "%.*s/%s", (int)rl, root ? root : "", rel);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* Copy src into dst[size]; false when it does not fit. */
static bool copy_str(char *dst, size_t size, const char *src)
{
	size_t l = strlen(src);

	if (l >= size)
		return false;
	memcpy(dst, src, l + 1);
	return true;
}

/* Read a small sysfs-style attribute, trailing whitespace removed. */
static int read_attr(const char *dir, const char *name, char *buf, size_t size)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	ssize_t l;
	int r;

	r = join(path, sizeof(path), dir, name);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	do
		l = read(fd, buf, size - 1);
	while (l < 0 && errno == EINTR);
	if (l < 0)
		return negative_errno();
	while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == ' ' || buf[l - 1] == '\r'))
		l--;
	buf[l] = '\0';
	return 0;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void md_ctx_freep(EVP_MD_CTX **c)
{
	EVP_MD_CTX_free(*c);
}

static int sha256_fd(int fd, size_t max, char ret_hex[static 65])
{
	_cleanup_(md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char buf[16384], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	size_t total = 0;

	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		return -ENOMEM;
	for (;;) {
		ssize_t l = read(fd, buf, sizeof(buf));

		if (l < 0 && errno == EINTR)
			continue;
		if (l < 0)
			return negative_errno();
		if (l == 0)
			break;
		total += (size_t)l;
		if (total > max)
			return -EFBIG;
		if (EVP_DigestUpdate(ctx, buf, (size_t)l) != 1)
			return -EIO;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		return -EIO;
	hex_encode(md, 32, ret_hex);
	return 0;
}

int compliance_sha256_file(const char *path, char ret_hex[static 65])
{
	_cleanup_close_ int fd = -1;
	char hex[65];
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	r = sha256_fd(fd, COMPLIANCE_HASH_FILE_MAX, hex);
	if (r < 0)
		return r;
	memcpy(ret_hex, hex, sizeof(hex));
	return 0;
}

/* ---- the install manifest ---- */

void compliance_manifest_clear(struct compliance_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->entries[i].path);
	free(m->entries);
	m->entries = NULL;
	m->n = 0;
}

int compliance_manifest_parse(const char *text, size_t len, struct compliance_manifest *ret,
			      unsigned *ret_line)
{
	_cleanup_(compliance_manifest_clear) struct compliance_manifest m = {0};
	unsigned lineno = 0;
	size_t pos = 0;

	if (len > COMPLIANCE_MANIFEST_MAX)
		return -EFBIG;
	m.entries = calloc(COMPLIANCE_MANIFEST_ENTRIES, sizeof(*m.entries));
	if (!m.entries)
		return -ENOMEM;

	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - line) : len - pos;

		pos += ll + (nl ? 1 : 0);
		lineno++;
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll == 0 || line[0] == '#')
			continue;
		/* 64 hex digits, a space, ' ' or '*', an absolute path without NUL. */
		bool ok = ll > 67 && line[64] == ' ' && (line[65] == ' ' || line[65] == '*') &&
			  line[66] == '/' && !memchr(line, '\0', ll);
		for (size_t i = 0; ok && i < 64; i++)
			ok = (line[i] >= '0' && line[i] <= '9') ||
			     (line[i] >= 'a' && line[i] <= 'f') ||
			     (line[i] >= 'A' && line[i] <= 'F');
		if (!ok || ll - 66 >= PATH_MAX || m.n >= COMPLIANCE_MANIFEST_ENTRIES) {
			if (ret_line)
				*ret_line = lineno;
			return m.n >= COMPLIANCE_MANIFEST_ENTRIES ? -E2BIG : -EINVAL;
		}
		struct compliance_manifest_entry *e = &m.entries[m.n];
		for (size_t i = 0; i < 64; i++)
			e->hex[i] = (char)(line[i] | 0x20); /* lowercase */
		e->hex[64] = '\0';
		e->path = strndup(line + 66, ll - 66);
		if (!e->path)
			return -ENOMEM;
		m.n++;
	}
	*ret = m;
	m = (struct compliance_manifest){0};
	return 0;
}

const struct compliance_manifest_entry *
compliance_manifest_find(const struct compliance_manifest *m, const char *path)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->entries[i].path, path) == 0)
			return &m->entries[i];
	return NULL;
}

/* Load the manifest, checking it is owned by owner_uid and writable by nobody else. On failure
 * writes a fail/error result and returns < 0. */
static int manifest_load(const struct compliance_env *env, struct compliance_manifest *ret,
			 struct compliance_result *res)
{
	const struct fileio_expect expect = {
	    .check_owner = true,
	    .uid = env->owner_uid,
	    .forbidden_mode = 0022,
	};
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	unsigned line = 0;
	int r;

	r = fileio_open_verified(AT_FDCWD, env->manifest_path, O_RDONLY, &expect, &fd);
	if (r == -ENOENT) {
		set_result(res, COMPLIANCE_FAIL, "no install manifest %s", env->manifest_path);
		return r;
	}
	if (r == -EPERM || r == -EACCES || r == -ELOOP || r == -EBADFD) {
		set_result(res, COMPLIANCE_FAIL, "install manifest %s is %s", env->manifest_path,
			   r == -EPERM	  ? "not owned by root"
			   : r == -EACCES ? "writable by group or others"
			   : r == -ELOOP  ? "a symlink"
					  : "not a regular file");
		return r;
	}
	if (r < 0) {
		set_result(res, COMPLIANCE_ERROR, "cannot open install manifest %s: %s",
			   env->manifest_path, strerror(-r));
		return r;
	}
	r = fileio_read_fd(fd, COMPLIANCE_MANIFEST_MAX, &text, &len);
	if (r < 0) {
		set_result(res, COMPLIANCE_ERROR, "cannot read install manifest %s: %s",
			   env->manifest_path, strerror(-r));
		return r;
	}
	r = compliance_manifest_parse(text, len, ret, &line);
	if (r < 0) {
		set_result(res, COMPLIANCE_FAIL, "install manifest %s:%u: malformed line",
			   env->manifest_path, line);
		return r;
	}
	return 0;
}

/* Where a manifest entry is on this system: the path itself, or under env->manifest_root. */
static int manifest_local_path(const struct compliance_env *env,
			       const struct compliance_manifest_entry *e, char buf[static PATH_MAX])
{
	if (!env->manifest_root || !env->manifest_root[0] || strcmp(env->manifest_root, "/") == 0)
		return copy_str(buf, PATH_MAX, e->path) ? 0 : -ENAMETOOLONG;
	return join(buf, PATH_MAX, env->manifest_root, e->path);
}

/* The entry for local file path (as given, or with symlinks resolved), or NULL. */
static const struct compliance_manifest_entry *
manifest_find_local(const struct compliance_env *env, const struct compliance_manifest *m,
		    const char *path)
{
	char real[PATH_MAX], local[PATH_MAX], local_real[PATH_MAX];
	bool have_real = realpath(path, real) != NULL;

	for (size_t i = 0; i < m->n; i++) {
		if (manifest_local_path(env, &m->entries[i], local) < 0)
			continue;
		if (strcmp(local, path) == 0 ||
		    (have_real && realpath(local, local_real) && strcmp(local_real, real) == 0))
			return &m->entries[i];
	}
	return NULL;
}

/* Compare one file with its manifest entry; adds a finding to d when it differs. */
static bool manifest_file_matches(const struct compliance_env *env,
				  const struct compliance_manifest_entry *e, struct detail *d)
{
	char hex[65], local[PATH_MAX];
	int r = manifest_local_path(env, e, local);

	if (r >= 0)
		r = compliance_sha256_file(local, hex);
	if (r == -ENOENT) {
		detail_add(d, "missing: %s", e->path);
		return false;
	}
	if (r < 0) {
		detail_add(d, "unreadable: %s (%s)", e->path, strerror(-r));
		return false;
	}
	if (strcmp(hex, e->hex) != 0) {
		detail_add(d, "modified: %s", e->path);
		return false;
	}
	return true;
}

/* ---- usb.default_deny ---- */

static bool is_root_hub(const char *name)
{
	return strncmp(name, "usb", 3) == 0 && name[3] &&
	       strspn(name + 3, "0123456789") == strlen(name + 3);
}

void compliance_check_usb_default_deny(const struct compliance_env *env,
				       struct compliance_result *ret)
{
	_cleanup_(compliance_manifest_clear) struct compliance_manifest m = {0};
	_cleanup_closedir_ DIR *dir = NULL;
	struct detail d = {0};
	char devices[PATH_MAX];
	unsigned hubs = 0;
	struct dirent *de;

	if (env->policy->usb_mode == POLICY_USB_AUDIT) {
		set_result(ret, COMPLIANCE_FAIL, "policy in audit mode");
		return;
	}
	if (join(devices, sizeof(devices), env->sysfs_root, "sys/bus/usb/devices") < 0) {
		set_result(ret, COMPLIANCE_ERROR, "sysfs root too long");
		return;
	}
	dir = opendir(devices);
	if (!dir && errno != ENOENT) {
		set_result(ret, COMPLIANCE_ERROR, "cannot read %s: %s", devices, strerror(errno));
		return;
	}
	while (dir && (de = readdir(dir))) {
		char hub[PATH_MAX], v[16];
		int r;

		if (!is_root_hub(de->d_name))
			continue;
		if (++hubs > COMPLIANCE_USB_MAX_DEVICES)
			break;
		if (join(hub, sizeof(hub), devices, de->d_name) < 0)
			continue;
		r = read_attr(hub, "interface_authorized_default", v, sizeof(v));
		if (r < 0)
			detail_add(&d, "%s: interface_authorized_default unreadable (%s)",
				   de->d_name, strerror(-r));
		else if (strcmp(v, "0") != 0)
			detail_add(&d, "%s: interface_authorized_default=%s", de->d_name, v);
	}

	/* The udev rule that sets it at every boot and hotplug, unmodified since install. */
	struct compliance_result mres = {0};
	if (access(env->udev_rule, F_OK) < 0)
		detail_add(&d, "udev rule %s missing", env->udev_rule);
	else if (manifest_load(env, &m, &mres) < 0)
		detail_add(&d, "udev rule unverifiable: %s", mres.detail);
	else {
		const struct compliance_manifest_entry *e =
		    manifest_find_local(env, &m, env->udev_rule);
		if (!e)
			detail_add(&d, "udev rule %s not in the install manifest", env->udev_rule);
		else
			(void)manifest_file_matches(env, e, &d);
	}

	if (d.n > 0) {
		set_result(ret, COMPLIANCE_FAIL, "%s", d.buf);
		return;
	}
	set_result(ret, COMPLIANCE_PASS,
		   "%u root hub%s with interface_authorized_default=0; udev rule unmodified", hubs,
		   hubs == 1 ? "" : "s");
}

/* ---- usb.no_unapproved_storage ---- */

/* Devices and interfaces are read by the gate's own reader (usb/usb_dev.c, with udev's
 * properties such as ID_MTP_DEVICE) and decided by the gate's own usb_dev_decide_iface, so
 * "would the gate block it" has one answer. */

static void usb_dev_info_clearp(struct usb_dev_info *i)
{
	usb_dev_info_clear(i);
}

static void usb_iface_info_clearp(struct usb_iface_info *i)
{
	usb_iface_info_clear(i);
}

static int check_device(const struct compliance_env *env, struct udev *udev, const char *devpath,
			const char *devname, struct detail *d, unsigned *ret_ifaces)
{
	_cleanup_(usb_dev_info_clearp) struct usb_dev_info dev = {0};
	_cleanup_closedir_ DIR *dir = NULL;
	unsigned nif = 0;
	struct dirent *de;
	int r;

	r = usb_dev_read_name(udev, env->sysfs_root, devname, &dev);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		detail_add(d, "%.64s: unreadable (%s), not checked", devname, strerror(-r));
		return 0;
	}

	dir = opendir(devpath);
	while (dir && (de = readdir(dir)) && nif < COMPLIANCE_USB_MAX_IFACES) {
		_cleanup_(usb_iface_info_clearp) struct usb_iface_info ifc = {0};
		struct policy_usb_decision dec;
		char ipath[PATH_MAX];

		/* interfaces are "<bus>-<port>:<config>.<number>" (a root hub usbN has N-0:1.0);
		 * child devices and attributes have no ':' */
		if (de->d_name[0] == '.' || !strchr(de->d_name, ':'))
			continue;
		if (join(ipath, sizeof(ipath), devpath, de->d_name) < 0) {
			detail_add(d, "%.64s: sysfs path too long, not checked", de->d_name);
			continue;
		}
		nif++;
		if (usb_iface_read_dir(ipath, de->d_name, &ifc) < 0)
			return -ENOMEM;
		usb_dev_decide_iface(env->policy, &dev, &ifc, &dec);
		/* an interface without "authorized" (kernel < 4.4) cannot be blocked: count it
		 * as authorized. Device strings go into the detail raw: compliance_to_json
		 * escapes them. */
		if (dec.verdict == POLICY_USB_BLOCK && ifc.authorized != 0)
			detail_add(d, "%s (%04x:%04x%s%.64s) authorized: %s", ifc.name, dev.vendor,
				   dev.product, dev.serial ? " serial=" : "",
				   dev.serial ? dev.serial : "", dec.rule);
	}
	*ret_ifaces += nif;
	return 0;
}

static void udev_unrefp(struct udev **u)
{
	udev_unref(*u);
}

void compliance_check_usb_no_unapproved_storage(const struct compliance_env *env,
						struct compliance_result *ret)
{
	_cleanup_closedir_ DIR *dir = NULL;
	__attribute__((cleanup(udev_unrefp))) struct udev *udev = NULL;
	struct detail d = {0};
	char devices[PATH_MAX];
	unsigned ndev = 0, nif = 0;
	struct dirent *de;

	if (join(devices, sizeof(devices), env->sysfs_root, "sys/bus/usb/devices") < 0) {
		set_result(ret, COMPLIANCE_ERROR, "sysfs root too long");
		return;
	}
	dir = opendir(devices);
	if (!dir) {
		if (errno == ENOENT) {
			set_result(ret, COMPLIANCE_PASS, "no USB bus");
			return;
		}
		set_result(ret, COMPLIANCE_ERROR, "cannot read %s: %s", devices, strerror(errno));
		return;
	}
	/* The real /sys (or umockdev's): udev adds what sysfs lacks (ID_MTP_DEVICE). A fixture
	 * tree (tests) is not udev's: read it alone. */
	if (strcmp(env->sysfs_root, "/") == 0 || env->sysfs_root[0] == '\0') {
		udev = udev_new();
		if (!udev) {
			set_result(ret, COMPLIANCE_ERROR, "cannot use udev: %s", strerror(errno));
			return;
		}
	}
	while ((de = readdir(dir))) {
		char devpath[PATH_MAX];

		if (de->d_name[0] == '.' || strchr(de->d_name, ':'))
			continue;
		if (++ndev > COMPLIANCE_USB_MAX_DEVICES) {
			detail_add(&d, "more than %d USB devices, rest not checked",
				   COMPLIANCE_USB_MAX_DEVICES);
			break;
		}
		if (join(devpath, sizeof(devpath), devices, de->d_name) < 0)
			continue;
		if (check_device(env, udev, devpath, de->d_name, &d, &nif) < 0) {
			set_result(ret, COMPLIANCE_ERROR, "out of memory");
			return;
		}
	}
	if (d.n > 0) {
		set_result(ret, COMPLIANCE_FAIL, "%s", d.buf);
		return;
	}
	set_result(ret, COMPLIANCE_PASS, "no blocked interface authorized (%u interfaces checked)",
		   nif);
}

/* ---- mfa.pam_stack ---- */

struct pam_loader {
	const char *dir;
};

static int pam_load_file(void *userdata, const char *name, char **ret, size_t *ret_len)
{
	const struct pam_loader *l = userdata;
	char path[PATH_MAX];
	int r;

	if (name[0] == '/')
		r = snprintf(path, sizeof(path), "%s", name) >= (int)sizeof(path) ? -ENAMETOOLONG
										  : 0;
	else
		r = join(path, sizeof(path), l->dir, name);
	if (r < 0)
		return r;
	return fileio_read_file(AT_FDCWD, path, COMPLIANCE_PAM_FILE_MAX, ret, ret_len);
}

void compliance_check_mfa_pam_stack(const struct compliance_env *env, struct compliance_result *ret)
{
	const struct policy *p = env->policy;
	struct pam_loader l = {.dir = env->pam_dir};
	struct detail bad = {0}, good = {0};
	enum compliance_status worst = COMPLIANCE_PASS;

	if (p->n_mfa_services == 0) {
		set_result(ret, COMPLIANCE_FAIL, "no PAM service named in the policy");
		return;
	}
	for (size_t i = 0; i < p->n_mfa_services; i++) {
		char detail[COMPLIANCE_DETAIL_MAX];
		const char *svc = p->mfa_services[i];
		enum compliance_status st;

		if (!svc[0] || strchr(svc, '/') || svc[0] == '.') {
			detail_add(&bad, "%s: not a service name", svc);
			worst = COMPLIANCE_FAIL;
			continue;
		}
		st = compliance_pam_service(svc, pam_load_file, &l, detail, sizeof(detail));
		if (st == COMPLIANCE_PASS) {
			detail_add(&good, "%s", detail);
			continue;
		}
		detail_add(&bad, "%s", detail);
		if (st == COMPLIANCE_FAIL || worst == COMPLIANCE_PASS)
			worst = st;
	}
	if (worst == COMPLIANCE_PASS)
		set_result(ret, COMPLIANCE_PASS, "%s", good.buf);
	else
		set_result(ret, worst, "%s", bad.buf);
}

/* ---- mfa.enrollment ---- */

static bool shell_interactive(const char *shell)
{
	const char *base;

	if (!shell || !shell[0])
		return true; /* login uses /bin/sh */
	base = strrchr(shell, '/');
	base = base ? base + 1 : shell;
	return strcmp(base, "nologin") != 0 && strcmp(base, "false") != 0;
}

/* Only the lines before the secret, one byte at a time, each byte checked against the key its
 * line must start with: a malformed record stops the read within three bytes of a line it did
 * not expect ("sec" of a "secret" line), so not a byte of the secret is read. The agent never
 * reads it; the full parser lives in pam_module/totp_record.c, which agent/ may not use
 * (docs/ARCHITECTURE.md). A version 1 record counts as verified; version 2 says "verified 0"
 * while pending. */
#define RECORD_HEAD_MAX 200
static enum compliance_record_state totp_record_head(int fd, char *why, size_t why_size)
{
	static const char *const keys[] = {NULL, "type ", "serial ", "enrolled ", "verified "};
	char buf[RECORD_HEAD_MAX + 1];
	size_t n = 0, line_start = 0;
	unsigned lines = 0;

	while (n < RECORD_HEAD_MAX && lines < 5) {
		ssize_t l = pread(fd, buf + n, 1, (off_t)n);
		size_t pos;
		if (l < 0 && errno == EINTR)
			continue;
		if (l <= 0)
			break;
		pos = n - line_start;
		n++;
		if (lines > 0 && pos < strlen(keys[lines]) && buf[n - 1] != keys[lines][pos])
			break;
		if (buf[n - 1] != '\n')
			continue;
		lines++;
		line_start = n;
		if (lines > 1)
			continue;
		/* The first line: version 1 has the secret on its second line, so stop here. */
		buf[n] = '\0';
		if (strcmp(buf, COMPLIANCE_TOTP_RECORD_HEADER "\n") == 0)
			return COMPLIANCE_RECORD_OK;
		if (strcmp(buf, COMPLIANCE_TOTP_RECORD_HEADER_V2 "\n") != 0) {
			unsigned long v;
			char *end;
			if (strncmp(buf, "mynaguard-totp ", 15) == 0 && buf[15] >= '1' &&
			    buf[15] <= '9' && (v = strtoul(buf + 15, &end, 10)) > 2 &&
			    *end == '\n') {
				snprintf(why, why_size,
					 "record version %lu is newer than this mynaguard", v);
				return COMPLIANCE_RECORD_BAD;
			}
			snprintf(why, why_size, "not a \"%s\" record",
				 COMPLIANCE_TOTP_RECORD_HEADER);
			return COMPLIANCE_RECORD_BAD;
		}
	}
	buf[n] = '\0';
	if (lines == 0) {
		snprintf(why, why_size, "not a \"%s\" record", COMPLIANCE_TOTP_RECORD_HEADER);
		return COMPLIANCE_RECORD_BAD;
	}
	/* Version 2: the fifth line, "verified N" (decimal, no leading zero), ends the read. */
	{
		const char *v = lines == 5 ? buf + n - 1 : NULL, *start;
		while (v && v > buf && v[-1] >= '0' && v[-1] <= '9')
			v--;
		start = v;
		if (!v || v == buf + n - 1 || (size_t)(v - buf) < 9 ||
		    memcmp(v - 9, "verified ", 9) != 0 || (start[0] == '0' && start[1] != '\n')) {
			snprintf(why, why_size, "not a \"%s\" record",
				 COMPLIANCE_TOTP_RECORD_HEADER_V2);
			return COMPLIANCE_RECORD_BAD;
		}
		if (start[0] == '0') {
			snprintf(why, why_size, "enrollment pending verification");
			return COMPLIANCE_RECORD_MISSING;
		}
	}
	return COMPLIANCE_RECORD_OK;
}

static bool user_name_usable(const char *name)
{
	return name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) < 256;
}

/* One record: COMPLIANCE_RECORD_OK, or _BAD with why. */
static enum compliance_record_state check_record(int dirfd, const char *user,
						 const struct fileio_expect *expect, char *why,
						 size_t why_size)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	why[0] = '\0';
	r = fileio_open_verified(dirfd, user, O_RDONLY, expect, &fd);
	if (r == -ENOENT)
		return COMPLIANCE_RECORD_MISSING;
	if (r == -EPERM)
		snprintf(why, why_size, "record not owned by root");
	else if (r == -EACCES)
		snprintf(why, why_size, "record readable or writable by others");
	else if (r == -ELOOP)
		snprintf(why, why_size, "record is a symlink");
	else if (r < 0)
		snprintf(why, why_size, "%s", strerror(-r));
	else if (fstat(fd, &st) < 0 || st.st_size == 0)
		snprintf(why, why_size, "empty record");
	else if (st.st_size > COMPLIANCE_TOTP_RECORD_MAX)
		snprintf(why, why_size, "record larger than %d bytes", COMPLIANCE_TOTP_RECORD_MAX);
	else
		return totp_record_head(fd, why, why_size);
	return COMPLIANCE_RECORD_BAD;
}

int compliance_enrollment_scan(const struct compliance_env *env, compliance_enrollment_fn fn,
			       void *userdata, struct compliance_enrollment *ret)
{
	const struct fileio_expect expect = {
	    .check_owner = true,
	    .uid = env->owner_uid,
	    .forbidden_mode = 0077,
	};
	struct compliance_enrollment e = {.failed = env->totp_dir};
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_close_ int dirfd = -1;
	int r;

	r = fileio_open_dir_verified(AT_FDCWD, env->totp_dir, &expect, &dirfd);
	if (r == -ENOENT)
		e.store_missing = true;
	else if (r < 0) {
		*ret = e;
		return r;
	}
	e.failed = env->passwd_path;
	f = fopen(env->passwd_path, "re");
	if (!f) {
		r = negative_errno();
		*ret = e;
		return r;
	}
	for (unsigned count = 0; count < COMPLIANCE_PASSWD_MAX_USERS; count++) {
		struct passwd pw, *pwp = NULL;
		char buf[4096], why[96];
		enum compliance_record_state st;

		r = fgetpwent_r(f, &pw, buf, sizeof(buf), &pwp);
		if (r == ENOENT || !pwp)
			break;
		if (r != 0) {
			e.passwd_unparsable = true;
			*ret = e;
			return -r;
		}
		if (pw.pw_uid < env->policy->checks_min_uid || pw.pw_uid >= 60000 ||
		    !shell_interactive(pw.pw_shell))
			continue;
		e.interactive++;
		if (!user_name_usable(pw.pw_name)) {
			st = COMPLIANCE_RECORD_BAD;
			snprintf(why, sizeof(why), "unusable user name in %s", env->passwd_path);
		} else if (e.store_missing) {
			st = COMPLIANCE_RECORD_MISSING;
			why[0] = '\0';
		} else
			st = check_record(dirfd, pw.pw_name, &expect, why, sizeof(why));
		if (st == COMPLIANCE_RECORD_OK)
			e.enrolled++;
		else if (st == COMPLIANCE_RECORD_MISSING) {
			e.missing++;
			if (why[0])
				e.pending++;
		} else
			e.bad++;
		if (fn)
			fn(userdata, user_name_usable(pw.pw_name) ? pw.pw_name : NULL, st, why);
	}
	e.failed = NULL;
	*ret = e;
	return 0;
}

struct enrollment_details {
	struct detail missing, bad;
};

static void enrollment_detail(void *userdata, const char *user, enum compliance_record_state st,
			      const char *why)
{
	struct enrollment_details *d = userdata;

	switch (st) {
	case COMPLIANCE_RECORD_OK:
		break;
	case COMPLIANCE_RECORD_MISSING: /* never with a NULL user */
		if (why[0])
			detail_add(&d->missing, "%s (%s)", user, why);
		else
			detail_add(&d->missing, "%s", user);
		break;
	case COMPLIANCE_RECORD_BAD:
		if (!user) /* an unusable name is not shown: it may hold anything */
			detail_add(&d->bad, "%s", why);
		else
			detail_add(&d->bad, "%s (%s)", user, why);
		break;
	}
}

void compliance_check_mfa_enrollment(const struct compliance_env *env,
				     struct compliance_result *ret)
{
	struct enrollment_details d = {.missing = {.sep = ", "}};
	struct compliance_enrollment e;
	int r;

	if (env->policy->mfa_nullok) {
		set_result(
		    ret, COMPLIANCE_FAIL,
		    "policy sets nullok: users without a record log in with the password alone");
		return;
	}

	r = compliance_enrollment_scan(env, enrollment_detail, &d, &e);
	if (r < 0 && e.failed == env->totp_dir &&
	    (r == -EPERM || r == -EACCES || r == -ELOOP || r == -ENOTDIR)) {
		set_result(ret, COMPLIANCE_FAIL, "TOTP store %s is %s", env->totp_dir,
			   r == -EPERM	  ? "not owned by root"
			   : r == -EACCES ? "accessible by group or others"
			   : r == -ELOOP  ? "a symlink"
					  : "not a directory");
		return;
	}
	if (r < 0 && e.failed == env->totp_dir) {
		set_result(ret, COMPLIANCE_ERROR, "cannot open TOTP store %s: %s", env->totp_dir,
			   strerror(-r));
		return;
	}
	if (r < 0) {
		set_result(ret, COMPLIANCE_ERROR, "cannot %s %s: %s",
			   e.passwd_unparsable ? "parse" : "read", env->passwd_path, strerror(-r));
		return;
	}

	if (d.missing.n == 0 && d.bad.n == 0) {
		if (e.interactive == 0)
			set_result(ret, COMPLIANCE_PASS, "no interactive local users");
		else
			set_result(ret, COMPLIANCE_PASS, "%u interactive user%s enrolled",
				   e.interactive, e.interactive == 1 ? "" : "s");
		return;
	}
	set_result(ret, COMPLIANCE_FAIL, "%s%s%s%s%s", d.missing.n ? "not enrolled: " : "",
		   d.missing.buf, d.missing.n && d.bad.n ? "; " : "", d.bad.n ? "bad record: " : "",
		   d.bad.buf);
}

/* ---- time.synchronized ---- */

void compliance_check_time_synchronized(const struct compliance_env *env,
					struct compliance_result *ret)
{
	struct timex tx = {0};
	int state = env->adjtimex ? env->adjtimex(&tx) : -1;
	bool kernel_synced = state >= 0 && state != TIME_ERROR && !(tx.status & STA_UNSYNC);

	if (kernel_synced) {
		set_result(ret, COMPLIANCE_PASS,
			   "kernel clock synchronized (estimated error %ld us)", (long)tx.esterror);
		return;
	}
	if (env->timesync_flag && access(env->timesync_flag, F_OK) == 0) {
		set_result(ret, COMPLIANCE_PASS, "systemd-timesyncd reports synchronized (%s)",
			   env->timesync_flag);
		return;
	}
	if (state < 0)
		set_result(ret, COMPLIANCE_FAIL, "clock state unknown (adjtimex failed) and no %s",
			   env->timesync_flag);
	else
		set_result(ret, COMPLIANCE_FAIL,
			   "clock not synchronized (kernel reports unsynchronized, no %s)",
			   env->timesync_flag);
}

/* ---- the install manifest: re-recording the policy after a deliberate change ---- */

/* Whether manifest path mp names the policy file (as agent.integrity compares: the same string,
 * or the same file after resolving symlinks). */
static bool manifest_path_is(const char *mp, const char *policy_real, const char *policy_path)
{
	char real[PATH_MAX];

	if (strcmp(mp, policy_path) == 0)
		return true;
	return policy_real && realpath(mp, real) && strcmp(real, policy_real) == 0;
}

/* Shared by `mynaguardctl usb allow` and mynaguardd's monitor (a fleet bundle installed). */
int compliance_manifest_update_policy(const char *state, const char *policy_path,
				      unsigned *ret_line)
{
	struct compliance_manifest m = {0};
	_cleanup_free_ char *text = NULL, *out = NULL;
	_cleanup_close_ int dirfd = -1;
	char hex[65], policy_real[PATH_MAX];
	const char *preal = realpath(policy_path, policy_real) ? policy_real : NULL;
	size_t len = 0, o = 0, pos = 0;
	bool found = false;
	struct stat st;
	int r;

	*ret_line = 0;
	dirfd = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return errno == ENOENT ? 0 : negative_errno();
	if (fstatat(dirfd, COMPLIANCE_MANIFEST_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	r = fileio_read_file(dirfd, COMPLIANCE_MANIFEST_NAME, COMPLIANCE_MANIFEST_MAX, &text, &len);
	if (r < 0)
		return r;
	r = compliance_manifest_parse(text, len, &m, ret_line);
	if (r < 0)
		return r;
	compliance_manifest_clear(&m);
	r = compliance_sha256_file(policy_path, hex);
	if (r < 0)
		return r;

	out = malloc(len + 1);
	if (!out)
		return -ENOMEM;
	/* Same lines; only the hex of the policy's lines changes (the parser accepted every line). */
	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - line) + 1 : len - pos;
		size_t pl = ll - (nl ? 1 : 0);

		memcpy(out + o, line, ll);
		if (pl > 0 && line[pl - 1] == '\r')
			pl--;
		if (pl > 66 && line[0] != '#' && line[64] == ' ' &&
		    (line[65] == ' ' || line[65] == '*')) {
			_cleanup_free_ char *mp = strndup(line + 66, pl - 66);

			if (!mp)
				return -ENOMEM;
			if (manifest_path_is(mp, preal, policy_path)) {
				memcpy(out + o, hex, 64);
				found = true;
			}
		}
		o += ll;
		pos += ll;
	}
	if (!found)
		return 0;
	r = fileio_write_atomic(dirfd, COMPLIANCE_MANIFEST_NAME, out, o, st.st_mode & 07777,
				st.st_uid, st.st_gid);
	return r < 0 ? r : 1;
}

/* ---- agent.integrity ---- */

void compliance_check_agent_integrity(const struct compliance_env *env,
				      struct compliance_result *ret)
{
	_cleanup_(compliance_manifest_clear) struct compliance_manifest m = {0};
	struct detail d = {0};
	size_t ok = 0;

	if (manifest_load(env, &m, ret) < 0)
		return;

	/* The policy in use must be the one installed (or re-recorded after a deliberate change). */
	if (env->policy_path && !manifest_find_local(env, &m, env->policy_path))
		detail_add(&d, "policy %s not in the install manifest", env->policy_path);

	for (size_t i = 0; i < m.n; i++)
		if (manifest_file_matches(env, &m.entries[i], &d))
			ok++;

	if (d.n > 0) {
		set_result(ret, COMPLIANCE_FAIL, "%s", d.buf);
		return;
	}
	set_result(ret, COMPLIANCE_PASS, "%zu file%s match %s", ok, ok == 1 ? "" : "s",
		   env->manifest_path);
}

/* ---- net.isolation ---- */

void compliance_check_net_isolation(const struct compliance_env *env, struct compliance_result *ret)
{
	char path[PATH_MAX], line[512];
	_cleanup_fclose_ FILE *f = NULL;
	struct detail d = {0};
	unsigned lines = 0;

	if (join(path, sizeof(path), env->proc_root, "proc/net/route") < 0) {
		set_result(ret, COMPLIANCE_ERROR, "proc root too long");
		return;
	}
	f = fopen(path, "re");
	if (!f) {
		set_result(ret, COMPLIANCE_ERROR, "cannot read %s: %s", path, strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f) && lines++ < 4096) {
		char ifname[32];
		unsigned long dest, gw, mask;
		unsigned flags;

		/* Iface Destination Gateway Flags RefCnt Use Metric Mask ... (hex, first line a
		 * header that does not scan) */
		if (sscanf(line, "%31s %lx %lx %x %*d %*d %*d %lx", ifname, &dest, &gw, &flags,
			   &mask) != 5)
			continue;
		if (dest == 0 && mask == 0 && (flags & 0x1 /* RTF_UP */))
			detail_add(&d, "IPv4 default route via %s", ifname);
	}
	fclose(f);
	f = NULL;

	if (join(path, sizeof(path), env->proc_root, "proc/net/ipv6_route") == 0 &&
	    (f = fopen(path, "re"))) {
		lines = 0;
		while (fgets(line, sizeof(line), f) && lines++ < 4096) {
			char dest[33], ifname[32];
			unsigned plen, flags;

			/* dest plen src splen nexthop metric refcnt use flags iface */
			if (sscanf(line, "%32s %x %*s %*x %*s %*x %*x %*x %x %31s", dest, &plen,
				   &flags, ifname) != 4)
				continue;
			if (strspn(dest, "0") == 32 && plen == 0 && (flags & 0x1) &&
			    !(flags & 0x200 /* RTF_REJECT */))
				detail_add(&d, "IPv6 default route via %s", ifname);
		}
	}

	if (d.n > 0) {
		set_result(ret, COMPLIANCE_FAIL, "%s", d.buf);
		return;
	}
	set_result(
	    ret, COMPLIANCE_PASS,
	    "no default route (interfaces not checked: the policy has no interface allow-list)");
}

/* ---- running and reporting ---- */

int compliance_env_default(struct compliance_env *env, const struct policy *p,
			   const char *policy_path, const char *state_dir, char *buf,
			   size_t buf_size)
{
	size_t half = buf_size / 2;
	int r;

	*env = (struct compliance_env){
	    .policy = p,
	    .policy_path = policy_path,
	    .sysfs_root = p->checks_sysfs_root ? p->checks_sysfs_root : "/",
	    .pam_dir = p->checks_pam_dir ? p->checks_pam_dir : "/etc/pam.d",
	    .passwd_path = "/etc/passwd",
	    .udev_rule = COMPLIANCE_UDEV_RULE,
	    .timesync_flag = COMPLIANCE_TIMESYNC_FLAG,
	    .proc_root = "/",
	    .owner_uid = 0,
	    .adjtimex = adjtimex,
	};
	r = join(buf, half, state_dir, "totp");
	if (r < 0)
		return r;
	r = join(buf + half, buf_size - half, state_dir, COMPLIANCE_MANIFEST_NAME);
	if (r < 0)
		return r;
	env->totp_dir = buf;
	env->manifest_path = buf + half;
	return 0;
}

void compliance_run(const struct compliance_env *env, enum policy_check c,
		    struct compliance_result *ret)
{
	*ret = (struct compliance_result){.check = c};
	if (!env->policy->checks_enabled[c]) {
		set_result(ret, COMPLIANCE_NOT_APPLICABLE, "disabled by policy");
		return;
	}
	switch (c) {
	case POLICY_CHECK_USB_DEFAULT_DENY:
		compliance_check_usb_default_deny(env, ret);
		break;
	case POLICY_CHECK_USB_NO_UNAPPROVED_STORAGE:
		compliance_check_usb_no_unapproved_storage(env, ret);
		break;
	case POLICY_CHECK_MFA_PAM_STACK:
		compliance_check_mfa_pam_stack(env, ret);
		break;
	case POLICY_CHECK_MFA_ENROLLMENT:
		compliance_check_mfa_enrollment(env, ret);
		break;
	case POLICY_CHECK_TIME_SYNCHRONIZED:
		compliance_check_time_synchronized(env, ret);
		break;
	case POLICY_CHECK_AGENT_INTEGRITY:
		compliance_check_agent_integrity(env, ret);
		break;
	case POLICY_CHECK_NET_ISOLATION:
		compliance_check_net_isolation(env, ret);
		break;
	case _POLICY_CHECK_MAX:
		set_result(ret, COMPLIANCE_ERROR, "unknown check");
		break;
	}
}

void compliance_run_all(const struct compliance_env *env,
			struct compliance_result results[_POLICY_CHECK_MAX])
{
	for (int c = 0; c < _POLICY_CHECK_MAX; c++)
		compliance_run(env, (enum policy_check)c, &results[c]);
}

#define _cleanup_json_ _cleanup_(json_decrefp) /* from jansson.h */

static bool json_array_has_string(json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
	{
		if (strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

/* Details can quote device strings and user names: keep printable ASCII, escape the rest. */
static json_t *json_detail(const char *s)
{
	char buf[COMPLIANCE_DETAIL_MAX * 4 + 1];
	size_t o = 0;

	for (; *s && o + 5 < sizeof(buf); s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", ch);
	}
	buf[o] = '\0';
	return json_string(buf);
}

int compliance_to_json(const struct compliance_env *env, const struct compliance_result *results,
		       size_t n, json_t **ret_data, json_t **ret_clauses)
{
	_cleanup_json_ json_t *data = json_object(), *checks = json_array(),
			      *clauses = json_array();
	bool compliant = true;
	char hex[65];

	if (!data || !checks || !clauses)
		return -ENOMEM;

	for (size_t i = 0; i < n; i++) {
		const struct compliance_result *r = &results[i];
		const char *const *cl = policy_check_clauses(r->check);
		json_t *item, *cla = json_array();

		if (!cla)
			return -ENOMEM;
		for (size_t k = 0; cl && cl[k]; k++) {
			if (json_array_append_new(cla, json_string(cl[k])) < 0) {
				json_decref(cla);
				return -ENOMEM;
			}
			if (r->status != COMPLIANCE_NOT_APPLICABLE &&
			    !json_array_has_string(clauses, cl[k]) &&
			    json_array_append_new(clauses, json_string(cl[k])) < 0) {
				json_decref(cla);
				return -ENOMEM;
			}
		}
		if (r->status == COMPLIANCE_FAIL || r->status == COMPLIANCE_ERROR)
			compliant = false;
		item = json_pack("{s:s, s:o, s:s, s:o}", "id", policy_check_id(r->check), "clause",
				 cla, "status", compliance_status_name(r->status), "detail",
				 json_detail(r->detail));
		if (!item || json_array_append_new(checks, item) < 0)
			return -ENOMEM;
	}

	/* Left out when the file cannot be read: the event codec wants a string when present. */
	if (env->policy_path && compliance_sha256_file(env->policy_path, hex) == 0) {
		char h[72];
		snprintf(h, sizeof(h), "sha256:%s", hex);
		if (json_object_set_new(data, "policy_hash", json_string(h)) < 0)
			return -ENOMEM;
	}
	if (env->policy_path &&
	    json_object_set_new(data, "policy_path", json_detail(env->policy_path)) < 0)
		return -ENOMEM;
	/* the [terminal] description (department, desk; Japanese): what the dashboard searches by.
	 * Left out when it is not UTF-8 (json_string() refuses it). */
	if (env->policy->description) {
		json_t *d = json_string(env->policy->description);
		if (d && json_object_set_new(data, "description", d) < 0)
			return -ENOMEM;
	}
	/* The collector marks a terminal stale when no snapshot came for a few intervals. */
	if (json_object_set_new(data, "interval_s",
				json_integer((json_int_t)env->policy->report_interval_sec)) < 0 ||
	    json_object_set_new(data, "checks", TAKE_PTR(checks)) < 0 ||
	    json_object_set_new(data, "compliant", json_boolean(compliant)) < 0)
		return -ENOMEM;

	*ret_data = TAKE_PTR(data);
	*ret_clauses = TAKE_PTR(clauses);
	return 0;
}
