/* SPDX-License-Identifier: MIT */
/* Unit tests of mynaguardd's monitor (agent/priv.c, priv-proto.c): what a worker may ask for,
 * on a sysfs tree made of real directories, files and symlinks in a temp dir. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "bundle.h"
#include "priv.h"

struct fx {
	char root[64];
	char path[2 * PATH_MAX];
	struct policy *policy;
	struct priv_monitor_config cfg;
	struct priv_monitor *m;
	uint8_t out[PRIV_RESP_MAX];
	struct priv_resp resp;
};

static const char *at(struct fx *f, const char *rel)
{
	snprintf(f->path, sizeof(f->path), "%s/%s", f->root, rel);
	return f->path;
}

static void mkdirs(struct fx *f, const char *rel)
{
	char p[2 * PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", f->root, rel);
	for (char *s = p + strlen(f->root) + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		(void)mkdir(p, 0755);
		*s = '/';
	}
	(void)mkdir(p, 0755);
}

static void put(struct fx *f, const char *rel, const char *text)
{
	FILE *fp = fopen(at(f, rel), "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static const char *get(struct fx *f, const char *rel)
{
	static char buf[256];
	FILE *fp = fopen(at(f, rel), "r");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = 0;
	fclose(fp);
	return buf;
}

static void link_to(struct fx *f, const char *target, const char *rel)
{
	assert_int_equal(symlink(target, at(f, rel)), 0);
}

/* A device dir under sys/devices with subsystem -> bus/SUBSYS and its bus/usb entry. */
static void device(struct fx *f, const char *dir, const char *name, const char *subsys,
		   const char *attr)
{
	char rel[PATH_MAX], target[PATH_MAX];

	snprintf(rel, sizeof(rel), "sys/devices/%s", dir);
	mkdirs(f, rel);
	snprintf(target, sizeof(target), "%s/sys/bus/%s", f->root, subsys);
	snprintf(rel, sizeof(rel), "sys/devices/%s/subsystem", dir);
	link_to(f, target, rel);
	snprintf(rel, sizeof(rel), "sys/devices/%s/%s", dir, attr);
	put(f, rel, "1"); /* sysfs-like: a write replaces the value without truncating */
	snprintf(target, sizeof(target), "../../../devices/%s", dir);
	snprintf(rel, sizeof(rel), "sys/bus/usb/devices/%s", name);
	link_to(f, target, rel);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char dir[PATH_MAX];

	strcpy(f->root, "/tmp/mg-priv-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	mkdirs(f, "sys/bus/usb/devices");
	mkdirs(f, "sys/bus/pci");
	put(f, "sys/bus/usb/drivers_probe", "");
	device(f, "pci0/usb1", "usb1", "usb", "interface_authorized_default");
	device(f, "pci0/usb1/1-1", "1-1", "usb", "authorized");
	device(f, "pci0/usb1/1-1/1-1:1.0", "1-1:1.0", "usb", "authorized");
	/* a bus entry that is not a USB device */
	device(f, "pci0/0000:00:01.0", "1-9", "pci", "authorized");
	/* a USB device whose attribute is a symlink to a file elsewhere */
	device(f, "pci0/usb1/1-7", "1-7", "usb", "idVendor");
	put(f, "secret", "keep\n");
	snprintf(dir, sizeof(dir), "%s/secret", f->root);
	link_to(f, dir, "sys/devices/pci0/usb1/1-7/authorized");
	/* an entry leading out of sysfs */
	link_to(f, "/etc", "sys/bus/usb/devices/1-8");

	put(f, "policy.conf", "[terminal]\nid = t1\n");
	struct policy_errors errs = {0};
	assert_int_equal(policy_load(at(f, "policy.conf"), &f->policy, &errs), 0);
	policy_errors_clear(&errs);
	static char spool[PATH_MAX], st[PATH_MAX], pol[PATH_MAX];
	snprintf(spool, sizeof(spool), "%s/spool", f->root);
	snprintf(st, sizeof(st), "%s/state", f->root);
	snprintf(pol, sizeof(pol), "%s/policy.conf", f->root);
	f->cfg = (struct priv_monitor_config){.sysfs_root = f->root,
					      .spool_dir = spool,
					      .state_dir = st,
					      .policy_path = pol,
					      .policy = &f->policy};
	f->m = priv_monitor_new(&f->cfg);
	assert_non_null(f->m);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[PATH_MAX];

	priv_monitor_free(f->m);
	policy_free(f->policy);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int ask(struct fx *f, uint32_t op, const char *name, uint32_t arg, uint64_t u64,
	       const void *payload, size_t len)
{
	uint8_t buf[sizeof(struct priv_req) + 256];
	struct priv_req q = {.op = op, .arg = arg, .u64 = u64, .len = (uint32_t)len};

	assert_true(len <= 256);
	if (name)
		memcpy(q.name, name, strnlen(name, sizeof(q.name))); /* may lack the NUL */
	memcpy(buf, &q, sizeof(q));
	if (len)
		memcpy(buf + sizeof(q), payload, len);
	priv_monitor_handle(f->m, buf, sizeof(q) + len, &f->resp, f->out);
	return f->resp.status;
}

static void test_names(void **state)
{
	assert_int_equal(priv_name_kind("usb1"), 'r');
	assert_int_equal(priv_name_kind("usb12"), 'r');
	assert_int_equal(priv_name_kind("1-1"), 'd');
	assert_int_equal(priv_name_kind("3-1.2.4"), 'd');
	assert_int_equal(priv_name_kind("1-1:1.0"), 'i');
	assert_int_equal(priv_name_kind("10-2.3:2.11"), 'i');
	static const char *const bad[] = {"",
					  "..",
					  "../1-1",
					  "1-1/..",
					  "1-1:1.0/../..",
					  "usb1/..",
					  "usb",
					  "usb1a",
					  "1-1 ",
					  "1-1\n",
					  "1-",
					  "-1",
					  "1-1.",
					  "1-1..2",
					  "1-1:1",
					  "1-1:1.0:1.0",
					  "1-1:.0",
					  "1234-1",
					  "1-1:1.0x",
					  "usb-1",
					  "1-0:1.0/x",
					  "/sys/1-1",
					  "1-1/authorized"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(priv_name_kind(bad[i]), 0);
}

static void test_usb_writes(void **state)
{
	struct fx *f = *state;

	assert_int_equal(ask(f, PRIV_USB_AUTHORIZE, "1-1:1.0", 0, 0, NULL, 0), 0);
	assert_string_equal(get(f, "sys/devices/pci0/usb1/1-1/1-1:1.0/authorized"), "0");
	assert_int_equal(ask(f, PRIV_USB_AUTHORIZE, "1-1", 1, 0, NULL, 0), 0);
	assert_string_equal(get(f, "sys/devices/pci0/usb1/1-1/authorized"), "1");
	assert_int_equal(ask(f, PRIV_USB_DEFAULT_DENY, "usb1", 0, 0, NULL, 0), 0);
	assert_string_equal(get(f, "sys/devices/pci0/usb1/interface_authorized_default"), "0");
	assert_int_equal(ask(f, PRIV_USB_PROBE, "1-1:1.0", 0, 0, NULL, 0), 0);
	assert_string_equal(get(f, "sys/bus/usb/drivers_probe"), "1-1:1.0");
}

static void test_usb_refused(void **state)
{
	struct fx *f = *state;

	/* bad names never reach the file system */
	assert_int_equal(ask(f, PRIV_USB_AUTHORIZE, "../../secret", 1, 0, NULL, 0), -EBADMSG);
	assert_int_equal(ask(f, PRIV_USB_AUTHORIZE, "1-1/../../../..", 1, 0, NULL, 0), -EBADMSG);
	assert_int_equal(ask(f, PRIV_USB_AUTHORIZE, "usb1", 1, 0, NULL, 0), -EBADMSG);
	assert_int_equal(ask(f, PRIV_USB_AUTHORIZE, "1-1:1.0", 2, 0, NULL, 0), -EBADMSG);
	assert_int_equal(ask(f, PRIV_USB_PROBE, "1-1", 0, 0, NULL, 0), -EBADMSG);
	assert_int_equal(ask(f, PRIV_USB_DEFAULT_DENY, "1-1", 0, 0, NULL, 0), -EBADMSG);
	/* good names that are not USB devices of this sysfs */
	assert_int_equal(ask(f, PRIV_USB_AUTHORIZE, "1-9", 1, 0, NULL, 0), -ENODEV);
	assert_string_equal(get(f, "sys/devices/pci0/0000:00:01.0/authorized"), "1");
	assert_int_equal(ask(f, PRIV_USB_AUTHORIZE, "1-8", 1, 0, NULL, 0), -ENODEV);
	assert_int_equal(ask(f, PRIV_USB_AUTHORIZE, "1-5", 1, 0, NULL, 0), -ENOENT);
	/* the attribute itself must not be a symlink */
	assert_int_equal(ask(f, PRIV_USB_AUTHORIZE, "1-7", 0, 0, NULL, 0), -ENODEV);
	assert_string_equal(get(f, "secret"), "keep\n");
	/* a non-USB device as drivers_probe argument */
	assert_int_equal(ask(f, PRIV_USB_PROBE, "1-9:1.0", 0, 0, NULL, 0), -ENOENT);
	assert_string_equal(get(f, "sys/bus/usb/drivers_probe"), "");
}

static void test_malformed(void **state)
{
	struct fx *f = *state;
	uint8_t buf[sizeof(struct priv_req) + 8] = {0};
	struct priv_req *q = (struct priv_req *)buf;
	char name[PRIV_NAME_MAX];

	memset(name, '1', sizeof(name));
	assert_int_equal(ask(f, PRIV_USB_PROBE, name, 0, 0, NULL, 0), -EBADMSG); /* no NUL */
	assert_int_equal(ask(f, 0, NULL, 0, 0, NULL, 0), -EBADMSG);
	assert_int_equal(ask(f, _PRIV_OP_MAX, NULL, 0, 0, NULL, 0), -EBADMSG);
	assert_int_equal(ask(f, PRIV_SPOOL_SYNC, "1-1", 0, 0, NULL, 0), -EBADMSG);
	assert_int_equal(ask(f, PRIV_SEQ_READ, NULL, 0, 0, "x", 1), -EBADMSG); /* no payload */
	assert_int_equal(ask(f, PRIV_CHECK_RUN, NULL, POLICY_CHECK_NET_ISOLATION, 0, NULL, 0),
			 -EBADMSG);
	assert_int_equal(ask(f, PRIV_CHECK_RUN, NULL, _POLICY_CHECK_MAX, 0, NULL, 0), -EBADMSG);
	/* short, length field disagreeing with the size, padding set */
	priv_monitor_handle(f->m, buf, sizeof(*q) - 1, &f->resp, f->out);
	assert_int_equal(f->resp.status, -EBADMSG);
	q->op = PRIV_SPOOL_APPEND;
	q->u64 = 1;
	q->len = 4;
	priv_monitor_handle(f->m, buf, sizeof(*q) + 8, &f->resp, f->out);
	assert_int_equal(f->resp.status, -EBADMSG);
	q->op = PRIV_SPOOL_SYNC;
	q->len = 0;
	q->pad = 1;
	priv_monitor_handle(f->m, buf, sizeof(*q), &f->resp, f->out);
	assert_int_equal(f->resp.status, -EBADMSG);
}

static void test_spool_seq_rises(void **state)
{
	struct fx *f = *state;
	const char ev[] = "{\"x\":1}";

	assert_int_equal(ask(f, PRIV_SPOOL_APPEND, NULL, 0, 5, ev, sizeof(ev) - 1), -ENODEV);
	assert_int_equal(ask(f, PRIV_SPOOL_OPEN, NULL, 0, 1 << 20, NULL, 0), 0);
	assert_int_equal(f->resp.v[0], 1); /* next_seq */
	assert_int_equal(ask(f, PRIV_SPOOL_APPEND, NULL, 0, 5, ev, sizeof(ev) - 1), 0);
	assert_int_equal(f->resp.v[1], 5); /* last_seq */
	assert_int_equal(ask(f, PRIV_SPOOL_APPEND, NULL, 0, 5, ev, sizeof(ev) - 1), -ERANGE);
	assert_int_equal(ask(f, PRIV_SPOOL_APPEND, NULL, 0, 4, ev, sizeof(ev) - 1), -ERANGE);
	assert_int_equal(ask(f, PRIV_SPOOL_APPEND, NULL, 0, 6, ev, sizeof(ev) - 1), 0);
	assert_int_equal(ask(f, PRIV_SPOOL_SYNC, NULL, 0, 0, NULL, 0), 0);
	/* reopened: still only upwards */
	assert_int_equal(ask(f, PRIV_SPOOL_OPEN, NULL, 0, 1 << 20, NULL, 0), 0);
	assert_int_equal(f->resp.v[0], 7);
	assert_int_equal(ask(f, PRIV_SPOOL_APPEND, NULL, 0, 6, ev, sizeof(ev) - 1), -ERANGE);
	/* STATE/seq: written by the monitor, read back raw */
	assert_int_equal(ask(f, PRIV_SEQ_READ, NULL, 0, 0, NULL, 0), -ENOENT);
	assert_int_equal(ask(f, PRIV_SEQ_WRITE, NULL, 0, 2048, NULL, 0), 0);
	assert_int_equal(ask(f, PRIV_SEQ_READ, NULL, 0, 0, NULL, 0), 0);
	assert_int_equal(f->resp.len, 5);
	assert_memory_equal(f->out, "2048\n", 5);
}

static void test_pending(void **state)
{
	struct fx *f = *state;
	char big[3 * PRIV_PENDING_CHUNK];
	FILE *fp;

	mkdirs(f, "state/totp");
	chmod(at(f, "state/totp"), 0700);
	memset(big, 'a', sizeof(big));
	fp = fopen(at(f, "state/totp/.pending-events"), "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(big, 1, sizeof(big), fp), sizeof(big));
	fclose(fp);
	chmod(at(f, "state/totp/.pending-events"), 0600);
	assert_int_equal(ask(f, PRIV_PENDING_DONE, NULL, 1, 0, NULL, 0), -EINVAL); /* not open */
	assert_int_equal(ask(f, PRIV_PENDING_READ, NULL, 0, 0, NULL, 0), 0);
	assert_int_equal(f->resp.v[0], sizeof(big));
	assert_int_equal(f->resp.len, PRIV_PENDING_CHUNK);
	assert_int_equal(ask(f, PRIV_PENDING_READ, NULL, 0, 2 * PRIV_PENDING_CHUNK, NULL, 0), 0);
	assert_int_equal(f->resp.len, PRIV_PENDING_CHUNK);
	assert_int_equal(ask(f, PRIV_PENDING_READ, NULL, 0, sizeof(big) + 1, NULL, 0), -EINVAL);
	assert_int_equal(ask(f, PRIV_PENDING_DONE, NULL, 1, 0, NULL, 0), 0);
	assert_string_equal(get(f, "state/totp/.pending-events"), "");
	/* readable by others: refused */
	put(f, "state/totp/.pending-events", "x\n");
	chmod(at(f, "state/totp/.pending-events"), 0644);
	assert_true(ask(f, PRIV_PENDING_READ, NULL, 0, 0, NULL, 0) < 0);
}

static void put_bytes(struct fx *f, const char *rel, const void *data, size_t len, mode_t mode)
{
	FILE *fp = fopen(at(f, rel), "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	fclose(fp);
	assert_int_equal(chmod(at(f, rel), mode), 0);
}

static void test_bundle_read(void **state)
{
	struct fx *f = *state;
	size_t total = 2 * PRIV_PENDING_CHUNK + 100;
	uint8_t *data = malloc(BUNDLE_MAX_BYTES + 1);

	assert_non_null(data);
	for (size_t i = 0; i < BUNDLE_MAX_BYTES + 1; i++)
		data[i] = (uint8_t)i;
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, NULL, PRIV_BUNDLE_INBOX, 0, NULL, 0), -ENOENT);
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, NULL, 2, 0, NULL, 0), -EBADMSG);
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, "1-1", 0, 0, NULL, 0), -EBADMSG);
	mkdirs(f, "spool/inbox");
	put_bytes(f, "spool/inbox/bundle", data, total, 0640);
	/* later offsets need the snapshot of offset 0 */
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, NULL, 0, PRIV_PENDING_CHUNK, NULL, 0), -EINVAL);
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, NULL, 0, 0, NULL, 0), 0);
	assert_int_equal(f->resp.v[0], total);
	assert_int_equal(f->resp.len, PRIV_PENDING_CHUNK);
	assert_memory_equal(f->out, data, PRIV_PENDING_CHUNK);
	/* the file changes under it: the snapshot does not */
	put_bytes(f, "spool/inbox/bundle", "x", 1, 0640);
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, NULL, 0, PRIV_PENDING_CHUNK, NULL, 0), 0);
	assert_memory_equal(f->out, data + PRIV_PENDING_CHUNK, PRIV_PENDING_CHUNK);
	/* the other source's offsets do not page through this snapshot */
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, NULL, 1, 2 * PRIV_PENDING_CHUNK, NULL, 0),
			 -EINVAL);
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, NULL, 0, 2 * PRIV_PENDING_CHUNK, NULL, 0), 0);
	assert_int_equal(f->resp.len, 100);
	assert_memory_equal(f->out, data + 2 * PRIV_PENDING_CHUNK, 100);
	/* too large, a symlink, not a regular file */
	put_bytes(f, "spool/inbox/bundle", data, BUNDLE_MAX_BYTES + 1, 0640);
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, NULL, 0, 0, NULL, 0), -EFBIG);
	put(f, "secret", "keep\n");
	unlink(at(f, "spool/inbox/bundle"));
	link_to(f, "../../secret", "spool/inbox/bundle");
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, NULL, 0, 0, NULL, 0), -ELOOP);
	unlink(at(f, "spool/inbox/bundle"));
	mkdirs(f, "spool/inbox/bundle");
	assert_true(ask(f, PRIV_BUNDLE_READ, NULL, 0, 0, NULL, 0) < 0);
	/* the installed copy must be private */
	mkdirs(f, "state/bundle");
	chmod(at(f, "state/bundle"), 0700);
	put_bytes(f, "state/bundle/current", data, 10, 0644);
	assert_true(ask(f, PRIV_BUNDLE_READ, NULL, 1, 0, NULL, 0) < 0);
	chmod(at(f, "state/bundle/current"), 0600);
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, NULL, 1, 0, NULL, 0), 0);
	assert_int_equal(f->resp.len, 10);
	free(data);
}

static void test_time_floor(void **state)
{
	struct fx *f = *state;
	struct stat st;

	assert_int_equal(ask(f, PRIV_TIME_FLOOR_READ, NULL, 0, 0, NULL, 0), -ENOENT);
	assert_int_equal(ask(f, PRIV_TIME_FLOOR_WRITE, NULL, 0, 1800000000, NULL, 0), 0);
	assert_int_equal(ask(f, PRIV_TIME_FLOOR_READ, NULL, 0, 0, NULL, 0), 0);
	assert_int_equal(f->resp.len, 11);
	assert_memory_equal(f->out, "1800000000\n", 11);
	assert_int_equal(stat(at(f, "state/time-floor"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* never lowered */
	assert_int_equal(ask(f, PRIV_TIME_FLOOR_WRITE, NULL, 0, 1700000000, NULL, 0), 0);
	assert_string_equal(get(f, "state/time-floor"), "1800000000\n");
	assert_int_equal(ask(f, PRIV_TIME_FLOOR_WRITE, NULL, 0, (uint64_t)INT64_MAX + 1, NULL, 0),
			 -EBADMSG);
	assert_int_equal(ask(f, PRIV_TIME_FLOOR_WRITE, NULL, 1, 1, NULL, 0), -EBADMSG);
}

static void sha256_of(const void *data, size_t len, uint8_t out[32])
{
	unsigned n = 0;

	assert_int_equal(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL), 1);
}

static void test_bundle_install_refused(void **state)
{
	struct fx *f = *state;
	const char junk[] = "MYNABND1 but nothing else";
	uint8_t sha[32];
	const char *before;

	before = strdup(get(f, "policy.conf"));
	mkdirs(f, "spool/inbox");
	put_bytes(f, "spool/inbox/bundle", junk, sizeof(junk) - 1, 0640);
	sha256_of(junk, sizeof(junk) - 1, sha);
	/* the hash is the payload, nothing else */
	assert_int_equal(ask(f, PRIV_BUNDLE_INSTALL, NULL, 0, 1, sha, 31), -EBADMSG);
	assert_int_equal(ask(f, PRIV_BUNDLE_INSTALL, NULL, 1, 1, sha, 32), -EBADMSG);
	/* no pinned root key */
	assert_int_equal(ask(f, PRIV_BUNDLE_INSTALL, NULL, 0, 1, sha, 32), -ENOKEY);
	f->cfg.have_fleet_key = true;
	memset(f->cfg.fleet_key, 7, sizeof(f->cfg.fleet_key));
	priv_monitor_free(f->m);
	f->m = priv_monitor_new(&f->cfg);
	/* other bytes than the worker checked */
	sha[0] ^= 1;
	assert_int_equal(ask(f, PRIV_BUNDLE_INSTALL, NULL, 0, 1, sha, 32), -ESTALE);
	sha[0] ^= 1;
	/* what the worker checked, but not a bundle */
	assert_int_equal(ask(f, PRIV_BUNDLE_INSTALL, NULL, 0, 1, sha, 32), -EBADMSG);
	assert_string_equal(get(f, "policy.conf"), before);
	assert_int_equal(access(at(f, "state/bundle/current"), F_OK), -1);
	free((char *)before);
}

/* A real bundle for terminal id, base version 2, body version v. */
static void make_bundle(struct bundle_signer *root, struct bundle_signer *grant, const char *id,
			uint64_t v, uint8_t **ret, size_t *ret_len)
{
	uint8_t pub[BUNDLE_PUBKEY_LEN], *sb = NULL;
	char b64[45], base[512], err[BUNDLE_ERR_MAX];
	size_t sblen = 0;

	bundle_signer_pubkey(grant, pub);
	bundle_pubkey_to_base64(pub, b64);
	snprintf(base, sizeof(base),
		 "[usb]\nblock = mass_storage, still_image\n[fleet]\ngroup = g1\nversion = 2\n"
		 "issued = 2026-12-01T09:00:00Z\nterminals = t*\ngrant_key = %s\n"
		 "grant_classes = mass_storage\n",
		 b64);
	assert_int_equal(bundle_sign_base(root, base, strlen(base), &sb, &sblen), 0);
	assert_int_equal(bundle_build(sb, sblen, grant, v, 1764547200, id, "{\"exceptions\":[]}",
				      17, ret, ret_len, err, sizeof(err)),
			 0);
	free(sb);
}

static void test_bundle_install(void **state)
{
	struct fx *f = *state;
	struct bundle_signer *root = NULL, *grant = NULL;
	uint8_t *b = NULL, sha[32], sha5[32], rec[16];
	size_t len = 0;
	struct stat st;
	FILE *fp;

	assert_int_equal(bundle_signer_generate(&root), 0);
	assert_int_equal(bundle_signer_generate(&grant), 0);
	f->cfg.have_fleet_key = true;
	bundle_signer_pubkey(root, f->cfg.fleet_key);
	priv_monitor_free(f->m);
	f->m = priv_monitor_new(&f->cfg);
	mkdirs(f, "spool/inbox");

	make_bundle(root, grant, "t1", 5, &b, &len);
	put_bytes(f, "spool/inbox/bundle", b, len, 0640);
	sha256_of(b, len, sha);
	/* the version the worker names must be the bundle's */
	assert_int_equal(ask(f, PRIV_BUNDLE_INSTALL, NULL, 0, 6, sha, 32), -ESTALE);
	assert_string_equal(get(f, "policy.conf"), "[terminal]\nid = t1\n");
	assert_int_equal(ask(f, PRIV_BUNDLE_INSTALL, NULL, 0, 5, sha, 32), 0);
	memcpy(sha5, sha, 32);
	/* the policy file: the base with this terminal's id; the monitor's own copy reloaded */
	assert_non_null(strstr(get(f, "policy.conf"), "[terminal]\nid = t1\n[usb]\nblock = "));
	assert_true(f->policy->fleet);
	assert_int_equal(f->policy->fleet_version, 2);
	assert_int_equal(stat(at(f, "state/bundle/current"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, len);
	fp = fopen(at(f, "state/bundle/applied"), "r");
	assert_non_null(fp);
	assert_int_equal(fread(rec, 1, sizeof(rec), fp), 16);
	fclose(fp);
	assert_memory_equal(rec, "\0\0\0\0\0\0\0\5\0\0\0\0\0\0\0\2", 16);
	/* handed out again through BUNDLE_READ(current) */
	assert_int_equal(ask(f, PRIV_BUNDLE_READ, NULL, PRIV_BUNDLE_CURRENT, 0, NULL, 0), 0);
	assert_int_equal(f->resp.v[0], len);
	/* the same bundle again, or an older one: the monitor's own record refuses it */
	assert_int_equal(ask(f, PRIV_BUNDLE_INSTALL, NULL, 0, 5, sha, 32), -ESTALE);
	free(b);
	make_bundle(root, grant, "t1", 4, &b, &len);
	put_bytes(f, "spool/inbox/bundle", b, len, 0640);
	sha256_of(b, len, sha);
	assert_int_equal(ask(f, PRIV_BUNDLE_INSTALL, NULL, 0, 4, sha, 32), -ESTALE);
	free(b);
	/* another terminal's */
	make_bundle(root, grant, "t2", 9, &b, &len);
	put_bytes(f, "spool/inbox/bundle", b, len, 0640);
	sha256_of(b, len, sha);
	assert_true(ask(f, PRIV_BUNDLE_INSTALL, NULL, 0, 9, sha, 32) < 0);
	free(b);
	/* what is installed is still version 5 */
	fp = fopen(at(f, "state/bundle/current"), "r");
	assert_non_null(fp);
	uint8_t *cur = malloc(BUNDLE_MAX_BYTES);
	size_t n = fread(cur, 1, BUNDLE_MAX_BYTES, fp);
	fclose(fp);
	sha256_of(cur, n, sha);
	assert_memory_equal(sha, sha5, 32);
	free(cur);
	bundle_signer_free(root);
	bundle_signer_free(grant);
}

/* A bundle for t1 (base version 2, body version v) whose JSON is json. */
static void make_bundle_json(struct bundle_signer *root, struct bundle_signer *grant, uint64_t v,
			     const char *json, uint8_t **ret, size_t *ret_len)
{
	uint8_t pub[BUNDLE_PUBKEY_LEN], *sb = NULL;
	char b64[45], base[512], err[BUNDLE_ERR_MAX];
	size_t sblen = 0;

	bundle_signer_pubkey(grant, pub);
	bundle_pubkey_to_base64(pub, b64);
	snprintf(base, sizeof(base),
		 "[usb]\nblock = mass_storage\n[fleet]\ngroup = g1\nversion = 2\n"
		 "issued = 2026-12-01T09:00:00Z\nterminals = t*\ngrant_key = %s\n",
		 b64);
	assert_int_equal(bundle_sign_base(root, base, strlen(base), &sb, &sblen), 0);
	assert_int_equal(bundle_build(sb, sblen, grant, v, 1764547200, "t1", json, strlen(json),
				      ret, ret_len, err, sizeof(err)),
			 0);
	free(sb);
}

static size_t totp_payload(uint8_t *buf, const char *user, const uint8_t *sealed, size_t len)
{
	buf[0] = (uint8_t)strlen(user);
	memcpy(buf + 1, user, buf[0]);
	memcpy(buf + 1 + buf[0], sealed, len);
	return 1 + buf[0] + len;
}

/* Central TOTP: only an entry of the installed bundle that opens with the terminal's key is
 * installed, once per generation; a bundle without it removes the record (docs/fleet.md). */
static void test_totp_install(void **state)
{
	struct fx *f = *state;
	struct bundle_signer *root = NULL, *grant = NULL;
	uint8_t priv[32], pub[32], *sealed = NULL, *other = NULL, *b = NULL, sha[32], pl[256];
	struct bundle_totp_secret s = {
	    .secret_len = 20, .digits = 6, .period = 30, .enrolled = 1764900000};
	struct bundle_totp t = {.user = "clerk1", .gen = 3};
	struct bundle_exceptions ex = {.totp = &t, .n_totp = 1};
	size_t slen = 0, olen = 0, len = 0, n;
	char *json = NULL;
	struct stat st;

	assert_int_equal(bundle_signer_generate(&root), 0);
	assert_int_equal(bundle_signer_generate(&grant), 0);
	f->cfg.have_fleet_key = true;
	bundle_signer_pubkey(root, f->cfg.fleet_key);
	priv_monitor_free(f->m);
	f->m = priv_monitor_new(&f->cfg);
	mkdirs(f, "spool/inbox");
	assert_int_equal(bundle_x25519_generate(priv, pub), 0);
	mkdirs(f, "state");
	put_bytes(f, "state/terminal-key", priv, sizeof(priv), 0600);
	memset(s.secret, 0x5a, 20);
	assert_int_equal(bundle_totp_seal(pub, "t1", "clerk1", 3, &s, &sealed, &slen), 0);
	assert_int_equal(bundle_totp_seal(pub, "t1", "clerk1", 3, &s, &other, &olen), 0);
	t.sealed = sealed;
	t.sealed_len = slen;
	assert_int_equal(bundle_exceptions_to_json(&ex, &json), 0);

	/* no bundle installed yet: nothing to match */
	n = totp_payload(pl, "clerk1", sealed, slen);
	assert_true(ask(f, PRIV_TOTP_INSTALL, NULL, 0, 3, pl, n) < 0);
	make_bundle_json(root, grant, 5, json, &b, &len);
	put_bytes(f, "spool/inbox/bundle", b, len, 0640);
	sha256_of(b, len, sha);
	assert_int_equal(ask(f, PRIV_BUNDLE_INSTALL, NULL, 0, 5, sha, 32), 0);
	free(b);
	/* a sealing the bundle does not carry, another generation, another user: refused */
	n = totp_payload(pl, "clerk1", other, olen);
	assert_int_equal(ask(f, PRIV_TOTP_INSTALL, NULL, 0, 3, pl, n), -EPERM);
	n = totp_payload(pl, "clerk1", sealed, slen);
	assert_int_equal(ask(f, PRIV_TOTP_INSTALL, NULL, 0, 4, pl, n), -EPERM);
	n = totp_payload(pl, "clerk2", sealed, slen);
	assert_int_equal(ask(f, PRIV_TOTP_INSTALL, NULL, 0, 3, pl, n), -EPERM);
	assert_int_not_equal(stat(at(f, "state/totp/clerk1"), &st), 0);
	/* malformed: a bad user name, generation 0 */
	n = totp_payload(pl, "-x", sealed, slen);
	assert_int_equal(ask(f, PRIV_TOTP_INSTALL, NULL, 0, 3, pl, n), -EBADMSG);
	n = totp_payload(pl, "clerk1", sealed, slen);
	assert_int_equal(ask(f, PRIV_TOTP_INSTALL, NULL, 0, 0, pl, n), -EBADMSG);
	/* the entry: installed once, root 0600, verified */
	assert_int_equal(ask(f, PRIV_TOTP_INSTALL, NULL, 0, 3, pl, n), 1);
	assert_int_equal(stat(at(f, "state/totp/clerk1"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_non_null(strstr(get(f, "state/totp/clerk1"), "\nverified 1764900000\n"));
	assert_int_equal(ask(f, PRIV_TOTP_INSTALL, NULL, 0, 3, pl, n), 0);
	/* still carried: nothing pruned */
	assert_int_equal(ask(f, PRIV_TOTP_PRUNE, NULL, 0, 0, NULL, 0), 0);
	assert_int_equal(stat(at(f, "state/totp/clerk1"), &st), 0);
	/* a bundle without it: the record goes, its name is reported */
	make_bundle_json(root, grant, 6, "{\"exceptions\":[]}", &b, &len);
	put_bytes(f, "spool/inbox/bundle", b, len, 0640);
	sha256_of(b, len, sha);
	assert_int_equal(ask(f, PRIV_BUNDLE_INSTALL, NULL, 0, 6, sha, 32), 0);
	free(b);
	assert_int_equal(ask(f, PRIV_TOTP_PRUNE, NULL, 0, 0, NULL, 0), 1);
	assert_int_equal(f->resp.len, 7);
	assert_string_equal((const char *)f->out, "clerk1");
	assert_int_not_equal(stat(at(f, "state/totp/clerk1"), &st), 0);
	/* a record made locally (not in totp-central/) is never pruned */
	mkdirs(f, "state/totp");
	put(f, "state/totp/local1", "x");
	assert_int_equal(ask(f, PRIV_TOTP_PRUNE, NULL, 0, 0, NULL, 0), 0);
	assert_int_equal(stat(at(f, "state/totp/local1"), &st), 0);
	free(json);
	free(sealed);
	free(other);
	bundle_signer_free(root);
	bundle_signer_free(grant);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test_setup_teardown(test_usb_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_usb_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spool_seq_rises, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bundle_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_time_floor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bundle_install_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bundle_install, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_totp_install, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
