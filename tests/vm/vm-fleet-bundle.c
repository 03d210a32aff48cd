/* SPDX-License-Identifier: MIT */
/* The vm-fleet-grant scenario's stand-in for the admin and the collector, run inside the guest:
 * throwaway fleet keys and a full bundle (signed base + exceptions), written atomically where the
 * uplink would write it. Built on the bundle library only (bundle/bundle.h); a test tool. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bundle.h"
#include "fileio.h"
#include "macro.h"
#include "parse.h"

static void usage(FILE *fp)
{
	fputs("usage: vm-fleet-bundle keygen DIR\n"
	      "       vm-fleet-bundle build DIR BASE VERSION TERMINAL OUT "
	      "[ID,VENDOR,PRODUCT,SERIAL,CLASS,FROM,UNTIL]...\n"
	      "keygen writes DIR/root.key, DIR/grant.key (0600), DIR/root.pub, DIR/grant.pub.\n"
	      "build signs the base file BASE with DIR/root.key and the body with DIR/grant.key,\n"
	      "and writes the bundle to OUT (temp file + rename).\n",
	      fp);
}

static void signer_freep(struct bundle_signer **s)
{
	bundle_signer_free(*s);
}

static void exceptions_freep(struct bundle_exceptions *ex)
{
	bundle_exceptions_free(ex);
}

static int write_pub(const char *dir, const char *name, const struct bundle_signer *s)
{
	uint8_t pub[BUNDLE_PUBKEY_LEN];
	char b64[45], line[48], path[4096];
	int r;

	bundle_signer_pubkey(s, pub);
	bundle_pubkey_to_base64(pub, b64);
	snprintf(line, sizeof(line), "%s\n", b64);
	snprintf(path, sizeof(path), "%s/%s.pub", dir, name);
	r = fileio_write_atomic_path(path, line, strlen(line), 0644);
	if (r < 0)
		fprintf(stderr, "vm-fleet-bundle: %s: %s\n", path, strerror(-r));
	return r;
}

static int keygen(const char *dir)
{
	static const char *const names[] = {"root", "grant"};

	for (size_t i = 0; i < 2; i++) {
		_cleanup_(signer_freep) struct bundle_signer *s = NULL;
		char path[4096], err[BUNDLE_ERR_MAX] = "";
		int r;

		r = bundle_signer_generate(&s);
		if (r < 0) {
			fprintf(stderr, "vm-fleet-bundle: key generation: %s\n", strerror(-r));
			return r;
		}
		snprintf(path, sizeof(path), "%s/%s.key", dir, names[i]);
		r = bundle_signer_save(s, path, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "vm-fleet-bundle: %s: %s\n", path,
				err[0] ? err : strerror(-r));
			return r;
		}
		r = write_pub(dir, names[i], s);
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_signer(const char *dir, const char *name, struct bundle_signer **ret)
{
	char path[4096], err[BUNDLE_ERR_MAX] = "";
	int r;

	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	r = bundle_signer_load(path, ret, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "vm-fleet-bundle: %s: %s\n", path, err[0] ? err : strerror(-r));
	return r;
}

static int parse_hex4(const char *s, uint16_t *ret)
{
	uint64_t v;

	if (strlen(s) != 4 || parse_hex(s, 0xffff, &v) < 0)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

/* ID,VENDOR,PRODUCT,SERIAL,CLASS,FROM,UNTIL: users [] (anyone), no hash, no ledger. The
 * library's own parser checks the result (bundle_exceptions_parse in build). */
static int parse_exception(const char *arg, struct bundle_exception *e)
{
	_cleanup_free_ char *copy = strdup(arg);
	char *f[7], *save = NULL, *p = copy;
	size_t n = 0;

	if (!copy)
		return -ENOMEM;
	while (n < 7 && (f[n] = strtok_r(p, ",", &save)) != NULL) {
		p = NULL;
		n++;
	}
	if (n != 7 || strtok_r(NULL, ",", &save) || strlen(f[0]) > BUNDLE_EXCEPTION_ID_MAX ||
	    strlen(f[4]) >= sizeof(e->cls) || parse_hex4(f[1], &e->vendor) < 0 ||
	    parse_hex4(f[2], &e->product) < 0 || parse_int64(f[5], 0, INT64_MAX, &e->from) < 0 ||
	    parse_int64(f[6], 0, INT64_MAX, &e->until) < 0)
		return -EINVAL;
	snprintf(e->id, sizeof(e->id), "%s", f[0]);
	snprintf(e->cls, sizeof(e->cls), "%s", f[4]);
	e->serial = strdup(f[3]);
	e->purpose = strdup("vm-fleet-grant test");
	e->approved_by = strdup("vmtest");
	return e->serial && e->purpose && e->approved_by ? 0 : -ENOMEM;
}

/* argv: DIR BASE VERSION TERMINAL OUT [EXCEPTION...] */
static int build(int argc, char **argv)
{
	const char *dir = argv[0], *base_path = argv[1], *terminal = argv[3], *out = argv[4];
	_cleanup_(exceptions_freep) struct bundle_exceptions ex = {0};
	_cleanup_(exceptions_freep) struct bundle_exceptions check = {0};
	_cleanup_(signer_freep) struct bundle_signer *root = NULL;
	_cleanup_(signer_freep) struct bundle_signer *grant = NULL;
	_cleanup_free_ char *base = NULL, *json = NULL;
	_cleanup_free_ uint8_t *signed_base = NULL, *bundle = NULL;
	char err[BUNDLE_ERR_MAX] = "";
	size_t base_len = 0, signed_len = 0, bundle_len = 0;
	uint64_t version;
	int r;

	if (parse_uint64(argv[2], 1, INT64_MAX, &version) < 0) {
		fprintf(stderr, "vm-fleet-bundle: bad version '%s'\n", argv[2]);
		return -EINVAL;
	}
	ex.items = calloc((size_t)argc - 5 + 1, sizeof(*ex.items));
	if (!ex.items)
		return -ENOMEM;
	for (int i = 5; i < argc; i++) {
		r = parse_exception(argv[i], &ex.items[ex.n++]);
		if (r < 0) {
			fprintf(stderr, "vm-fleet-bundle: bad exception '%s'\n", argv[i]);
			return r;
		}
	}
	r = bundle_exceptions_to_json(&ex, &json);
	if (r < 0) {
		fprintf(stderr, "vm-fleet-bundle: exceptions JSON: %s\n", strerror(-r));
		return r;
	}
	r = bundle_exceptions_parse(json, strlen(json), &check, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "vm-fleet-bundle: exceptions JSON: %s\n", err);
		return r;
	}
	r = fileio_read_file(AT_FDCWD, base_path, BUNDLE_MAX_BYTES, &base, &base_len);
	if (r < 0) {
		fprintf(stderr, "vm-fleet-bundle: %s: %s\n", base_path, strerror(-r));
		return r;
	}
	r = load_signer(dir, "root", &root);
	if (r < 0)
		return r;
	r = load_signer(dir, "grant", &grant);
	if (r < 0)
		return r;
	r = bundle_sign_base(root, base, base_len, &signed_base, &signed_len);
	if (r < 0) {
		fprintf(stderr, "vm-fleet-bundle: signing the base: %s\n", strerror(-r));
		return r;
	}
	r = bundle_build(signed_base, signed_len, grant, version, (int64_t)time(NULL), terminal,
			 json, strlen(json), &bundle, &bundle_len, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "vm-fleet-bundle: bundle_build: %s\n", err[0] ? err : strerror(-r));
		return r;
	}
	/* As the uplink does: a temp file in the same directory, fsync, rename. */
	r = fileio_write_atomic_path(out, bundle, bundle_len, 0640);
	if (r < 0)
		fprintf(stderr, "vm-fleet-bundle: %s: %s\n", out, strerror(-r));
	return r;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "keygen") == 0)
		return keygen(argv[2]) < 0 ? 1 : 0;
	if (argc >= 7 && strcmp(argv[1], "build") == 0)
		return build(argc - 2, argv + 2) < 0 ? 1 : 0;
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
