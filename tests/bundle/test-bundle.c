/* SPDX-License-Identifier: MIT */
/* Unit tests of bundle/: framing, keys (real OpenSSL), signatures, the install checks. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "bundle.h"

struct keys {
	struct bundle_signer *root, *grant, *other;
	uint8_t root_pub[32], grant_pub[32], other_pub[32];
	char grant_b64[45];
};

static struct keys K;
static char tmpdir[] = "/tmp/test-bundle-XXXXXX";

static int setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	if (bundle_signer_generate(&K.root) < 0 || bundle_signer_generate(&K.grant) < 0 ||
	    bundle_signer_generate(&K.other) < 0)
		return -1;
	bundle_signer_pubkey(K.root, K.root_pub);
	bundle_signer_pubkey(K.grant, K.grant_pub);
	bundle_signer_pubkey(K.other, K.other_pub);
	bundle_pubkey_to_base64(K.grant_pub, K.grant_b64);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	bundle_signer_free(K.root);
	bundle_signer_free(K.grant);
	bundle_signer_free(K.other);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *path_in(const char *name)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, name);
	return buf[i];
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* A base text naming grant_b64, for group, covering terminals, at version. */
static char *base_text(const char *group, const char *terminals, unsigned version,
		       const char *grant_b64)
{
	char *s = NULL;

	assert_true(asprintf(&s,
			     "[terminal]\ncontact = 内線 1234\n[usb]\nblock = mass_storage, mtp\n"
			     "[fleet]\ngroup = %s\nversion = %u\nissued = 2026-12-01T09:00:00Z\n"
			     "terminals = %s\ngrant_key = %s\ngrant_classes = mass_storage\n"
			     "grant_max_days = 30\n",
			     group, version, terminals, grant_b64) > 0);
	return s;
}

static void signed_base(const char *text, struct bundle_signer *root, uint8_t **ret,
			size_t *ret_len)
{
	assert_int_equal(bundle_sign_base(root, text, strlen(text), ret, ret_len), 0);
}

#define JSON "{\"exceptions\":[]}"

static void build(const uint8_t *sb, size_t sb_len, struct bundle_signer *grant, uint64_t version,
		  const char *id, uint8_t **ret, size_t *ret_len)
{
	char err[BUNDLE_ERR_MAX];
	int r = bundle_build(sb, sb_len, grant, version, 1764547200, id, JSON, strlen(JSON), ret,
			     ret_len, err, sizeof(err));
	if (r < 0)
		print_error("bundle_build: %s\n", err);
	assert_int_equal(r, 0);
}

/* A default good bundle: group fukushi, covering fukushi-*, base v7, body v10, id fukushi-01. */
static void good_bundle(uint8_t **ret, size_t *ret_len)
{
	char *text = base_text("fukushi", "fukushi-* kokuho-01", 7, K.grant_b64);
	uint8_t *sb;
	size_t sb_len;

	signed_base(text, K.root, &sb, &sb_len);
	build(sb, sb_len, K.grant, 10, "fukushi-01", ret, ret_len);
	free(sb);
	free(text);
}

/* ---- framing ---- */

static void test_round_trip(void **state)
{
	char *text = base_text("fukushi", "fukushi-*", 7, K.grant_b64);
	struct bundle_frame f, fb;
	char err[BUNDLE_ERR_MAX];
	uint8_t *sb, *b;
	size_t sb_len, b_len;

	signed_base(text, K.root, &sb, &sb_len);
	assert_int_equal(sb_len, 8 + 4 + strlen(text) + 64);
	assert_memory_equal(sb, "MYNABAS1", 8);
	assert_int_equal(bundle_decode_base(sb, sb_len, &fb, err, sizeof(err)), 0);
	assert_int_equal(fb.base_len, strlen(text));
	assert_memory_equal(fb.base, text, strlen(text));
	assert_null(fb.body);
	assert_null(fb.grant_sig);
	assert_int_equal(bundle_verify_root(&fb, K.root_pub), 0);
	assert_int_equal(bundle_verify_root(&fb, K.other_pub), -EBADMSG);
	assert_int_equal(bundle_verify_grant(&fb, K.grant_pub), -EBADMSG); /* no body */

	build(sb, sb_len, K.grant, UINT64_MAX, "fukushi-01", &b, &b_len);
	assert_int_equal(b_len, sb_len + 4 + 8 + 8 + 2 + 10 + 4 + strlen(JSON) + 64);
	assert_memory_equal(b, "MYNABND1", 8);
	assert_int_equal(bundle_decode(b, b_len, &f, err, sizeof(err)), 0);
	assert_int_equal(f.base_len, strlen(text));
	assert_memory_equal(f.base, text, strlen(text));
	assert_memory_equal(f.root_sig, fb.root_sig, 64);
	assert_int_equal(f.version, UINT64_MAX);
	assert_int_equal(f.issued, 1764547200);
	assert_int_equal(f.terminal_id_len, 10);
	assert_memory_equal(f.terminal_id, "fukushi-01", 10);
	assert_int_equal(f.json_len, strlen(JSON));
	assert_memory_equal(f.json, JSON, strlen(JSON));
	assert_int_equal(f.body_len, 8 + 8 + 2 + 10 + 4 + strlen(JSON));
	assert_ptr_equal(f.body, b + sb_len + 4);
	assert_ptr_equal(f.grant_sig, b + b_len - 64);
	assert_int_equal(bundle_verify_root(&f, K.root_pub), 0);
	assert_int_equal(bundle_verify_grant(&f, K.grant_pub), 0);
	assert_int_equal(bundle_verify_grant(&f, K.other_pub), -EBADMSG);
	/* A key that is not a point on the curve fails cleanly. */
	{
		uint8_t junk[32];
		memset(junk, 0xff, sizeof(junk));
		assert_int_equal(bundle_verify_root(&f, junk), -EBADMSG);
	}
	/* The kinds are not interchangeable. */
	assert_int_equal(bundle_decode(sb, sb_len, &f, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "bad magic: expected MYNABND1");
	assert_int_equal(bundle_decode_base(b, b_len, &f, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "bad magic: expected MYNABAS1");

	/* Negative issued times and an empty JSON still frame (the JSON parser refuses later). */
	free(b);
	assert_int_equal(
	    bundle_build(sb, sb_len, K.grant, 1, -5, "a", "", 0, &b, &b_len, err, sizeof(err)), 0);
	assert_int_equal(bundle_decode(b, b_len, &f, err, sizeof(err)), 0);
	assert_int_equal(f.issued, -5);
	assert_int_equal(f.json_len, 0);
	assert_int_equal(bundle_verify_grant(&f, K.grant_pub), 0);
	free(b);
	free(sb);
	free(text);
}

static char last_err[BUNDLE_ERR_MAX];

static void expect_decode(const uint8_t *b, size_t len, int want_r, const char *want_err)
{
	struct bundle_frame f;
	char *err = last_err;
	int r;

	err[0] = '\0';
	r = bundle_decode(b, len, &f, err, BUNDLE_ERR_MAX);

	if (r != want_r || (want_err && strcmp(err, want_err) != 0))
		print_error("len %zu: got %d \"%s\", want %d \"%s\"\n", len, r, err, want_r,
			    want_err ? want_err : "");
	assert_int_equal(r, want_r);
	if (want_err)
		assert_string_equal(err, want_err);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void test_malformed(void **state)
{
	uint8_t *b, *c;
	size_t len, base_len, body_off, body_len;
	struct bundle_frame f;
	char err[BUNDLE_ERR_MAX];

	good_bundle(&b, &len);
	assert_int_equal(bundle_decode(b, len, &f, err, sizeof(err)), 0);
	base_len = f.base_len;
	body_off = 8 + 4 + base_len + 64;
	body_len = f.body_len;
	c = malloc(len + 1);
	assert_non_null(c);

	/* Truncated at every byte: each field names itself. */
	for (size_t n = 0; n < len; n++) {
		const char *want;
		if (n < 8)
			want = "bad magic: expected MYNABND1";
		else if (n < 12)
			want = "truncated in the base length";
		else if (n < 12 + base_len)
			want = NULL; /* "truncated in the base (...)" */
		else if (n < 12 + base_len + 64)
			want = "truncated in the root signature";
		else if (n < body_off + 4)
			want = "truncated in the body length";
		else if (n < body_off + 4 + body_len)
			want = NULL;
		else
			want = "truncated in the grant signature";
		expect_decode(b, n, -EBADMSG, want);
		if (n >= 12 && n < 12 + base_len)
			assert_non_null(strstr(last_err, "truncated in the base ("));
		if (n >= body_off + 4 && n < body_off + 4 + body_len)
			assert_non_null(strstr(last_err, "truncated in the body ("));
	}
	expect_decode(NULL, 0, -EBADMSG, "bad magic: expected MYNABND1");

	/* One trailing byte. */
	memcpy(c, b, len);
	c[len] = 0;
	expect_decode(c, len + 1, -EBADMSG, "1 trailing bytes after the grant signature");

	/* Lengths out of range. */
	memcpy(c, b, len);
	put32(c + 8, 0);
	expect_decode(c, len, -EBADMSG, "base length 0 out of range");
	put32(c + 8, BUNDLE_MAX_BYTES + 1);
	expect_decode(c, len, -EBADMSG, "base length 1048577 out of range");
	put32(c + 8, 0xffffffff);
	expect_decode(c, len, -EBADMSG, "base length 4294967295 out of range");
	put32(c + 8, (uint32_t)len);
	assert_int_equal(bundle_decode(c, len, &f, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "truncated in the base"));

	memcpy(c, b, len);
	put32(c + body_off, 0xffffffff);
	expect_decode(c, len, -EBADMSG, "body length 4294967295 out of range");
	put32(c + body_off, 22);
	expect_decode(c, len, -EBADMSG, "body length 22 out of range");
	put32(c + body_off, (uint32_t)(body_len + 64));
	expect_decode(c, len, -EBADMSG, NULL);
	put32(c + body_off, (uint32_t)(body_len + 65));
	expect_decode(c, len, -EBADMSG, NULL);
	assert_non_null(strstr(last_err, "truncated in the body ("));

	/* body_len shorter: the JSON length no longer fits the body. */
	memcpy(c, b, len);
	put32(c + body_off, (uint32_t)(body_len - 1));
	expect_decode(c, len, -EBADMSG, "JSON length 17 does not match the body (16 bytes left)");

	/* The terminal id: empty, too long, bad characters. */
	memcpy(c, b, len);
	c[body_off + 4 + 16] = 0;
	c[body_off + 4 + 17] = 0;
	expect_decode(c, len, -EBADMSG, "empty terminal id");
	c[body_off + 4 + 17] = 65;
	expect_decode(c, len, -EBADMSG, "terminal id length 65 out of range: at most 64");
	c[body_off + 4 + 16] = 0xff;
	c[body_off + 4 + 17] = 0xff;
	expect_decode(c, len, -EBADMSG, "terminal id length 65535 out of range: at most 64");
	memcpy(c, b, len);
	c[body_off + 4 + 18] = '/';
	expect_decode(c, len, -EBADMSG,
		      "bad terminal id: expected letters, digits, '.', '_' or '-'");
	/* json_len larger and smaller than what is left in the body */
	memcpy(c, b, len);
	put32(c + body_off + 4 + 18 + 10, 0xffffffff);
	expect_decode(c, len, -EBADMSG,
		      "JSON length 4294967295 does not match the body (17 bytes left)");
	put32(c + body_off + 4 + 18 + 10, 16);
	expect_decode(c, len, -EBADMSG, "JSON length 16 does not match the body (17 bytes left)");
	/* An id length that runs past the body */
	memcpy(c, b, len);
	c[body_off + 4 + 17] = 64;
	expect_decode(c, len, -EBADMSG, "body truncated in the terminal id");

	/* The base file: truncated, trailing bytes. */
	{
		char *text = base_text("g", "t", 1, K.grant_b64);
		uint8_t *sb, *sc;
		size_t sb_len;
		signed_base(text, K.root, &sb, &sb_len);
		for (size_t n = 0; n < sb_len; n++)
			assert_int_equal(bundle_decode_base(sb, n, &f, err, sizeof(err)), -EBADMSG);
		sc = malloc(sb_len + 3);
		assert_non_null(sc);
		memcpy(sc, sb, sb_len);
		memset(sc + sb_len, 'x', 3);
		assert_int_equal(bundle_decode_base(sc, sb_len + 3, &f, err, sizeof(err)),
				 -EBADMSG);
		assert_string_equal(err, "3 trailing bytes after the root signature");
		free(sc);
		free(sb);
		free(text);
	}
	free(c);
	free(b);
}

static void test_too_large(void **state)
{
	size_t big = BUNDLE_MAX_BYTES + 1;
	uint8_t *c = calloc(1, big);
	struct bundle_frame f;
	char err[BUNDLE_ERR_MAX];
	char *text = base_text("g", "t", 1, K.grant_b64);
	uint8_t *sb, *b = NULL;
	size_t sb_len, b_len;
	char *json;

	assert_non_null(c);
	memcpy(c, "MYNABND1", 8);
	assert_int_equal(bundle_decode(c, big, &f, err, sizeof(err)), -EFBIG);
	assert_string_equal(err, "too large (1048577 bytes): at most 1048576");
	memcpy(c, "MYNABAS1", 8);
	assert_int_equal(bundle_decode_base(c, big, &f, err, sizeof(err)), -EFBIG);
	free(c);

	/* Building past the limit is refused, and a huge base cannot be signed. */
	signed_base(text, K.root, &sb, &sb_len);
	json = malloc(BUNDLE_MAX_BYTES);
	assert_non_null(json);
	memset(json, ' ', BUNDLE_MAX_BYTES);
	assert_int_equal(bundle_build(sb, sb_len, K.grant, 1, 0, "t", json,
				      BUNDLE_MAX_BYTES - sb_len - 4 - 22 - 1 - 64 + 1, &b, &b_len,
				      err, sizeof(err)),
			 -EFBIG);
	assert_null(b);
	assert_string_equal(err, "bundle would exceed 1048576 bytes");
	/* Exactly at the limit: builds and decodes. */
	assert_int_equal(bundle_build(sb, sb_len, K.grant, 1, 0, "t", json,
				      BUNDLE_MAX_BYTES - sb_len - 4 - 22 - 1 - 64, &b, &b_len, err,
				      sizeof(err)),
			 0);
	assert_int_equal(b_len, BUNDLE_MAX_BYTES);
	assert_int_equal(bundle_decode(b, b_len, &f, err, sizeof(err)), 0);
	free(b);
	assert_int_equal(bundle_sign_base(K.root, json, BUNDLE_MAX_BYTES, &b, &b_len), -EINVAL);
	assert_int_equal(bundle_sign_base(K.root, json, 0, &b, &b_len), -EINVAL);
	free(json);
	free(sb);
	free(text);
}

static void test_build_errors(void **state)
{
	char *text = base_text("g", "t", 1, K.grant_b64);
	uint8_t *sb, *b = NULL;
	size_t sb_len, b_len = 0;
	char err[BUNDLE_ERR_MAX];

	signed_base(text, K.root, &sb, &sb_len);
	assert_int_equal(bundle_build(sb, sb_len, K.grant, 1, 0, "a/b", JSON, strlen(JSON), &b,
				      &b_len, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "bad terminal id");
	assert_int_equal(bundle_build(sb, sb_len, K.grant, 0, 0, "t", JSON, strlen(JSON), &b,
				      &b_len, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "version must be at least 1");
	assert_int_equal(bundle_build(sb, sb_len - 1, K.grant, 1, 0, "t", JSON, strlen(JSON), &b,
				      &b_len, err, sizeof(err)),
			 -EBADMSG);
	assert_string_equal(err, "truncated in the root signature");
	assert_null(b);
	assert_int_equal(b_len, 0);
	free(sb);
	free(text);
}

/* ---- keys ---- */

static void test_keys(void **state)
{
	struct bundle_signer *s = NULL, *l = NULL;
	uint8_t pub[32], pub2[32], pub3[32];
	char b64[45], err[BUNDLE_ERR_MAX];
	struct stat st;
	const char *key = path_in("k1.key");

	assert_int_equal(bundle_signer_generate(&s), 0);
	bundle_signer_pubkey(s, pub);
	assert_int_equal(bundle_signer_save(s, key, err, sizeof(err)), 0);
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* Never overwritten. */
	assert_int_equal(bundle_signer_save(s, key, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "already exists: not overwritten"));
	assert_int_equal(bundle_signer_load(key, &l, err, sizeof(err)), 0);
	bundle_signer_pubkey(l, pub2);
	assert_memory_equal(pub, pub2, 32);
	bundle_signer_free(l);
	bundle_signer_free(NULL);

	/* What `openssl genpkey -algorithm ed25519` writes loads too (PKCS#8 PEM). */
	{
		EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		const char *p = path_in("ossl.key");
		FILE *fp = fopen(p, "w");
		size_t n = 32;
		assert_non_null(pk);
		assert_non_null(fp);
		assert_int_equal(chmod(p, 0600), 0);
		assert_int_equal(PEM_write_PKCS8PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL), 1);
		fclose(fp);
		assert_int_equal(EVP_PKEY_get_raw_public_key(pk, pub3, &n), 1);
		assert_int_equal(bundle_signer_load(p, &l, err, sizeof(err)), 0);
		bundle_signer_pubkey(l, pub2);
		assert_memory_equal(pub3, pub2, 32);
		bundle_signer_free(l);
		/* Another algorithm is refused. */
		EVP_PKEY_free(pk);
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		assert_non_null(pk);
		p = path_in("ec.key");
		fp = fopen(p, "w");
		assert_non_null(fp);
		assert_int_equal(chmod(p, 0600), 0);
		assert_int_equal(PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL), 1);
		fclose(fp);
		EVP_PKEY_free(pk);
		l = NULL;
		assert_int_equal(bundle_signer_load(p, &l, err, sizeof(err)), -EBADMSG);
		assert_null(l);
		assert_non_null(strstr(err, "not an Ed25519 private key"));
	}

	/* Refused: readable by others, a symlink, missing, junk. */
	assert_int_equal(chmod(key, 0640), 0);
	assert_int_equal(bundle_signer_load(key, &l, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "readable by its owner only"));
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(symlink(key, path_in("link.key")), 0);
	assert_int_equal(bundle_signer_load(path_in("link.key"), &l, err, sizeof(err)), -ELOOP);
	assert_int_equal(bundle_signer_load(path_in("none.key"), &l, err, sizeof(err)), -ENOENT);
	write_file(path_in("junk.key"), "not a key\n", 0600);
	assert_int_equal(bundle_signer_load(path_in("junk.key"), &l, err, sizeof(err)), -EBADMSG);
	assert_null(l);

	/* Public keys: base64 round trip, .pub files. */
	bundle_pubkey_to_base64(pub, b64);
	assert_int_equal(strlen(b64), 44);
	memset(pub2, 0, 32);
	assert_int_equal(bundle_pubkey_from_base64(b64, pub2), 0);
	assert_memory_equal(pub, pub2, 32);
	{
		char line[64];
		snprintf(line, sizeof(line), "%s\n", b64);
		write_file(path_in("a.pub"), line, 0644);
		write_file(path_in("b.pub"), b64, 0644);
		snprintf(line, sizeof(line), "%s\n\n", b64);
		write_file(path_in("c.pub"), line, 0644);
		snprintf(line, sizeof(line), " %s", b64);
		write_file(path_in("d.pub"), line, 0644);
	}
	memset(pub2, 0, 32);
	assert_int_equal(bundle_pubkey_load(path_in("a.pub"), pub2, err, sizeof(err)), 0);
	assert_memory_equal(pub, pub2, 32);
	memset(pub2, 0, 32);
	assert_int_equal(bundle_pubkey_load(path_in("b.pub"), pub2, err, sizeof(err)), 0);
	assert_memory_equal(pub, pub2, 32);
	assert_int_equal(bundle_pubkey_load(path_in("c.pub"), pub2, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "not a public key"));
	assert_int_equal(bundle_pubkey_load(path_in("d.pub"), pub2, err, sizeof(err)), -EBADMSG);
	assert_int_equal(bundle_pubkey_load(path_in("junk.key"), pub2, err, sizeof(err)), -EBADMSG);
	assert_int_equal(bundle_pubkey_load(path_in("none.pub"), pub2, err, sizeof(err)), -ENOENT);
	bundle_signer_free(s);
}

/* ---- the install checks ---- */

static int check(const uint8_t *b, size_t len, const char *own_id, uint64_t applied,
		 uint64_t applied_base, struct policy **ret, char *err)
{
	struct bundle_frame f;

	assert_int_equal(bundle_decode(b, len, &f, err, BUNDLE_ERR_MAX), 0);
	return bundle_check_install(&f, K.root_pub, own_id, applied, applied_base, ret, err,
				    BUNDLE_ERR_MAX);
}

static void expect_refused(const uint8_t *b, size_t len, const char *own_id, uint64_t applied,
			   uint64_t applied_base, int want_r, const char *want_err)
{
	struct policy *p = NULL;
	char err[BUNDLE_ERR_MAX] = "";
	int r = check(b, len, own_id, applied, applied_base, &p, err);

	if (r != want_r || strcmp(err, want_err) != 0)
		print_error("got %d \"%s\", want %d \"%s\"\n", r, err, want_r, want_err);
	assert_int_equal(r, want_r);
	assert_string_equal(err, want_err);
	assert_null(p);
}

/* A bundle of base text signed by root, the body by grant. */
static void make(const char *text, struct bundle_signer *root, struct bundle_signer *grant,
		 uint64_t version, const char *id, uint8_t **ret, size_t *ret_len)
{
	uint8_t *sb;
	size_t sb_len;

	signed_base(text, root, &sb, &sb_len);
	build(sb, sb_len, grant, version, id, ret, ret_len);
	free(sb);
}

static void test_check_install(void **state)
{
	struct policy *p = NULL;
	char err[BUNDLE_ERR_MAX];
	uint8_t *b, *c;
	size_t len;
	char *text;

	good_bundle(&b, &len);
	assert_int_equal(check(b, len, "fukushi-01", 9, 7, &p, err), 0);
	assert_non_null(p);
	assert_string_equal(p->fleet_group, "fukushi");
	assert_int_equal(p->fleet_version, 7);
	assert_memory_equal(p->fleet_grant_key, K.grant_pub, 32);
	assert_null(p->terminal_id);
	policy_free(p);
	p = NULL;
	assert_int_equal(check(b, len, "fukushi-01", 0, 0, NULL, err), 0);

	/* Versions: equal and older refused; the base may stay but never go back. */
	expect_refused(b, len, "fukushi-01", 10, 0, -ESTALE,
		       "version 10 is not newer than the applied 10");
	expect_refused(b, len, "fukushi-01", 11, 0, -ESTALE,
		       "version 10 is not newer than the applied 11");
	expect_refused(b, len, "fukushi-01", UINT64_MAX, 0, -ESTALE,
		       "version 10 is not newer than the applied 18446744073709551615");
	expect_refused(b, len, "fukushi-01", 9, 8, -ESTALE,
		       "base version 7 is older than the applied 8");
	/* Another terminal: the bundle names fukushi-01. */
	expect_refused(b, len, "fukushi-02", 0, 0, -EACCES, "bundle is for terminal fukushi-01");
	expect_refused(b, len, "fukushi-0", 0, 0, -EACCES, "bundle is for terminal fukushi-01");

	/* Any flipped bit: the base breaks the root signature, the body the grant signature,
	 * the signatures themselves break themselves. */
	c = malloc(len);
	assert_non_null(c);
	{
		struct bundle_frame f;
		assert_int_equal(bundle_decode(b, len, &f, err, sizeof(err)), 0);
		size_t base_off = (size_t)(f.base - b), body_off = (size_t)(f.body - b);
		size_t spots[] = {base_off,
				  base_off + f.base_len - 1,
				  (size_t)(f.root_sig - b) + 5,
				  body_off,
				  body_off + 9,
				  body_off + f.body_len - 2,
				  len - 1};
		for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
			memcpy(c, b, len);
			c[spots[i]] ^= 0x01;
			if (bundle_decode(c, len, &f, err, sizeof(err)) < 0)
				continue;
			assert_int_equal(bundle_check_install(&f, K.root_pub, "fukushi-01", 0, 0,
							      &p, err, sizeof(err)),
					 -EBADMSG);
			assert_null(p);
			if (spots[i] < body_off)
				assert_string_equal(err, "root signature does not verify");
			else
				assert_string_equal(err, "grant signature does not verify with the "
							 "key the base names");
		}
	}
	free(c);
	free(b);

	/* Wrong root key. */
	text = base_text("fukushi", "fukushi-*", 7, K.grant_b64);
	make(text, K.other, K.grant, 10, "fukushi-01", &b, &len);
	expect_refused(b, len, "fukushi-01", 0, 0, -EBADMSG, "root signature does not verify");
	free(b);
	/* A grant signed by a key the base does not name. */
	make(text, K.root, K.other, 10, "fukushi-01", &b, &len);
	expect_refused(b, len, "fukushi-01", 0, 0, -EBADMSG,
		       "grant signature does not verify with the key the base names");
	free(b);
	free(text);

	/* A base of another group that does not cover this terminal. */
	text = base_text("kokuho", "kokuho-* fukushi-9?", 3, K.grant_b64);
	make(text, K.root, K.grant, 10, "fukushi-01", &b, &len);
	expect_refused(b, len, "fukushi-01", 0, 0, -EACCES,
		       "base of group kokuho (version 3) does not cover terminal fukushi-01");
	free(b);
	make(text, K.root, K.grant, 10, "fukushi-91", &b, &len);
	assert_int_equal(check(b, len, "fukushi-91", 0, 0, NULL, err), 0);
	free(b);
	free(text);

	/* A root-signed text that is not a base: a terminal's own policy, or junk. Refused with
	 * the parser's first error. */
	text = strdup("[terminal]\nid = fukushi-01\n");
	make(text, K.root, K.grant, 10, "fukushi-01", &b, &len);
	expect_refused(b, len, "fukushi-01", 0, 0, -EBADMSG,
		       "base policy does not parse: base:2: [terminal] id: a base policy names "
		       "no terminal: each terminal's id is put in when it installs the base");
	free(b);
	free(text);
	/* Unparsable text signed by another key: the signature is checked first. */
	text = strdup("\x01 garbage that is no INI\n");
	make(text, K.other, K.grant, 10, "fukushi-01", &b, &len);
	expect_refused(b, len, "fukushi-01", 0, 0, -EBADMSG, "root signature does not verify");
	free(b);
	make(text, K.root, K.grant, 10, "fukushi-01", &b, &len);
	expect_refused(b, len, "fukushi-01", 0, 0, -EBADMSG,
		       "base policy does not parse: base:1: line contains the control character "
		       "0x01");
	free(b);
	free(text);

	/* A base file is not a bundle. */
	{
		struct bundle_frame f;
		uint8_t *sb;
		size_t sb_len;
		text = base_text("fukushi", "fukushi-*", 7, K.grant_b64);
		signed_base(text, K.root, &sb, &sb_len);
		assert_int_equal(bundle_decode_base(sb, sb_len, &f, err, sizeof(err)), 0);
		assert_int_equal(
		    bundle_check_install(&f, K.root_pub, "fukushi-01", 0, 0, &p, err, sizeof(err)),
		    -EBADMSG);
		assert_string_equal(err, "not a bundle (no signed body)");
		free(sb);
		free(text);
	}
}

/* ---- exceptions ---- */

#define EX1                                                                                        \
	"{\"id\":\"EX-2026-0001\",\"vendor\":\"0781\",\"product\":\"5581\","                       \
	"\"serial\":\"4C530001090515116423\",\"hash\":null,\"class\":\"mass_storage\","            \
	"\"users\":[\"tanaka\"],\"from\":1764547200,\"until\":1765151999,"                         \
	"\"purpose\":\"住民票データの受け渡し\",\"approved_by\":\"sato\",\"ledger\":\"MB-0012\"}"
#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define EX2                                                                                        \
	"{\"id\":\"b.2_x\",\"vendor\":\"AbCd\",\"product\":\"00ff\",\"serial\":null,"              \
	"\"hash\":\"sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\","    \
	"\"class\":\"mtp\",\"users\":[],\"from\":0,\"until\":1,\"purpose\":\"p\","                 \
	"\"approved_by\":\"a\",\"ledger\":null}"

static void expect_ex_error(const char *json, const char *want)
{
	struct bundle_exceptions ex = {0};
	char err[BUNDLE_ERR_MAX] = "";
	int r = bundle_exceptions_parse(json, strlen(json), &ex, err, sizeof(err));

	if (r != -EBADMSG || strcmp(err, want) != 0)
		print_error("json %s\ngot %d \"%s\"\nwant \"%s\"\n", json, r, err, want);
	assert_int_equal(r, -EBADMSG);
	assert_string_equal(err, want);
	assert_null(ex.items);
	assert_int_equal(ex.n, 0);
}

/* One exception object with key=value replaced (or, with value NULL, removed). */
static char *ex_with(const char *key, const char *value)
{
	static const char *const keys[] = {"id",    "vendor",  "product",     "serial",
					   "hash",  "class",   "users",	      "from",
					   "until", "purpose", "approved_by", "ledger"};
	static const char *const values[] = {
	    "\"E1\"", "\"0781\"", "\"5581\"", "\"S1\"", "null",	 "\"mass_storage\"",
	    "[]",     "10",	  "20",	      "\"p\"",	"\"a\"", "null"};
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	assert_non_null(f);
	fputs("{\"exceptions\":[{", f);
	for (size_t i = 0, o = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		bool this = strcmp(keys[i], key) == 0;
		if (this && !value)
			continue;
		fprintf(f, "%s\"%s\":%s", o++ ? "," : "", keys[i], this ? value : values[i]);
	}
	if (strcmp(key, "x-extra") == 0)
		fprintf(f, ",\"x-extra\":%s", value);
	fputs("}]}", f);
	fclose(f);
	return s;
}

static void ex_error(const char *key, const char *value, const char *want)
{
	char *json = ex_with(key, value);

	expect_ex_error(json, want);
	free(json);
}

static void test_exceptions_parse(void **state)
{
	const char *json = "{\"exceptions\":[" EX1 "," EX2 "]}";
	struct bundle_exceptions ex = {0}, ex2 = {0};
	char err[BUNDLE_ERR_MAX];
	char *text = NULL, *text2 = NULL;
	const struct bundle_exception *e;

	assert_int_equal(bundle_exceptions_parse(json, strlen(json), &ex, err, sizeof(err)), 0);
	assert_int_equal(ex.n, 2);
	e = &ex.items[0];
	assert_string_equal(e->id, "EX-2026-0001");
	assert_int_equal(e->vendor, 0x0781);
	assert_int_equal(e->product, 0x5581);
	assert_string_equal(e->serial, "4C530001090515116423");
	assert_null(e->descriptor_hash);
	assert_string_equal(e->cls, "mass_storage");
	assert_int_equal(e->n_users, 1);
	assert_string_equal(e->users[0], "tanaka");
	assert_int_equal(e->from, 1764547200);
	assert_int_equal(e->until, 1765151999);
	assert_string_equal(e->purpose, "住民票データの受け渡し");
	assert_string_equal(e->approved_by, "sato");
	assert_string_equal(e->ledger, "MB-0012");
	e = &ex.items[1];
	assert_string_equal(e->id, "b.2_x");
	assert_int_equal(e->vendor, 0xabcd);
	assert_int_equal(e->product, 0x00ff);
	assert_null(e->serial);
	assert_string_equal(e->descriptor_hash, HASH);
	assert_int_equal(e->n_users, 0);
	assert_null(e->ledger);

	/* Canonical: the documented key order, lowercase hex, compact; stable through a round
	 * trip. */
	assert_int_equal(bundle_exceptions_to_json(&ex, &text), 0);
	assert_string_equal(
	    text, "{\"exceptions\":[" EX1
		  ",{\"id\":\"b.2_x\",\"vendor\":\"abcd\",\"product\":\"00ff\",\"serial\":null,"
		  "\"hash\":\"sha256:" HASH "\",\"class\":\"mtp\",\"users\":[],\"from\":0,"
		  "\"until\":1,\"purpose\":\"p\",\"approved_by\":\"a\",\"ledger\":null}]}");
	assert_int_equal(bundle_exceptions_parse(text, strlen(text), &ex2, err, sizeof(err)), 0);
	assert_int_equal(bundle_exceptions_to_json(&ex2, &text2), 0);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	bundle_exceptions_free(&ex2);
	bundle_exceptions_free(&ex);
	bundle_exceptions_free(&ex);
	bundle_exceptions_free(NULL);

	/* Empty list, white space around. */
	json = " {\"exceptions\" : [ ] }\n";
	assert_int_equal(bundle_exceptions_parse(json, strlen(json), &ex, err, sizeof(err)), 0);
	assert_int_equal(ex.n, 0);
	assert_int_equal(bundle_exceptions_to_json(&ex, &text), 0);
	assert_string_equal(text, "{\"exceptions\":[]}");
	free(text);
	bundle_exceptions_free(&ex);
	/* The default object of ex_with parses (so each error below is the one change). */
	text = ex_with("none", NULL);
	assert_int_equal(bundle_exceptions_parse(text, strlen(text), &ex, err, sizeof(err)), 0);
	assert_int_equal(ex.n, 1);
	bundle_exceptions_free(&ex);
	free(text);
	/* The encoder refuses what would not be valid JSON text, and leaves *ret alone. */
	{
		struct bundle_exception bad = {.id = "x", .cls = "mtp", .from = 1, .until = 2};
		struct bundle_exceptions one = {.items = &bad, .n = 1};
		text = NULL;
		bad.purpose = (char *)"\xff";
		assert_int_equal(bundle_exceptions_to_json(&one, &text), -EINVAL);
		assert_null(text);
	}
	/* Not NUL-terminated: only len bytes count. */
	assert_int_equal(
	    bundle_exceptions_parse("{\"exceptions\":[]}xyz", 17, &ex, err, sizeof(err)), 0);
	bundle_exceptions_free(&ex);
}

static void test_exceptions_errors(void **state)
{
	/* The document */
	expect_ex_error("", "exceptions JSON: '[' or '{' expected near end of file at line 1");
	expect_ex_error("[]", "exceptions JSON: expected an object");
	expect_ex_error("{}", "exceptions JSON: \"exceptions\": expected an array");
	expect_ex_error("{\"exceptions\":{}}",
			"exceptions JSON: \"exceptions\": expected an array");
	expect_ex_error(
	    "{\"exceptions\":[],\"x\":1}",
	    "exceptions JSON: unknown key: expected only \"exceptions\", \"totp\" and \"totp_recovery\"");
	expect_ex_error("{\"exceptions\":[],\"exceptions\":[]}",
			"exceptions JSON: duplicate object key near '\"exceptions\"' at line 1");
	expect_ex_error("{\"exceptions\":[]} x", "exceptions JSON: end of file expected near 'x' "
						 "at line 1");
	expect_ex_error("{\"exceptions\":[1]}", "exception 0: expected an object");
	/* Keys */
	ex_error("x-extra", "1", "exception 0: unknown key \"x-extra\"");
	ex_error("serial", NULL, "exception 0: \"serial\" is missing");
	ex_error("ledger", NULL, "exception 0: \"ledger\" is missing");
	/* Values */
	ex_error("id", "\"a/b\"",
		 "exception 0: \"id\": expected 1 to 64 letters, digits, '.', '_' or '-'");
	ex_error("id", "\"\"",
		 "exception 0: \"id\": expected 1 to 64 letters, digits, '.', '_' or '-'");
	ex_error("id", "\"a1234567890123456789012345678901234567890123456789012345678901234\"",
		 "exception 0: \"id\": expected 1 to 64 letters, digits, '.', '_' or '-'");
	ex_error("id", "7",
		 "exception 0: \"id\": expected 1 to 64 letters, digits, '.', '_' or '-'");
	ex_error("vendor", "\"781\"", "exception E1: \"vendor\": expected 4 hex digits");
	ex_error("vendor", "\"078g\"", "exception E1: \"vendor\": expected 4 hex digits");
	ex_error("vendor", "1921", "exception E1: \"vendor\": expected 4 hex digits");
	ex_error("product", "\"0x55\"", "exception E1: \"product\": expected 4 hex digits");
	ex_error("serial", "\"\"",
		 "exception E1: \"serial\": expected 1 to 126 printable characters or null");
	ex_error("serial", "\"a\\nb\"",
		 "exception E1: \"serial\": expected 1 to 126 printable characters or null");
	ex_error("serial", "\"a\\u0000b\"",
		 "exceptions JSON: \\u0000 is not allowed without JSON_ALLOW_NUL near "
		 "'\"a\\u0000b\"' "
		 "at line 1");
	ex_error("serial", "5",
		 "exception E1: \"serial\": expected 1 to 126 printable characters or "
		 "null");
	ex_error("hash", "\"sha256:" HASH "0\"",
		 "exception E1: \"hash\": expected \"sha256:\" and 64 hex digits, or null");
	ex_error("hash", "\"sha1:" HASH "\"",
		 "exception E1: \"hash\": expected \"sha256:\" and 64 hex digits, or null");
	ex_error("hash",
		 "\"sha256:g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
		 "exception E1: \"hash\": expected \"sha256:\" and 64 hex digits, or null");
	ex_error("class", "\"\"",
		 "exception E1: \"class\": expected a block entry name like mass_storage");
	ex_error("class", "\"mass storage\"",
		 "exception E1: \"class\": expected a block entry name like mass_storage");
	ex_error("class", "\"a23456789012345678901234\"",
		 "exception E1: \"class\": expected a block entry name like mass_storage");
	ex_error("users", "null", "exception E1: \"users\": expected an array of user names");
	ex_error("users", "[\"a\",\"a\"]", "exception E1: \"users\": \"a\" is listed twice");
	ex_error("users", "[\"-a\"]",
		 "exception E1: \"users\": expected user names (1 to 32 "
		 "letters, digits, '.', '_' or '-')");
	ex_error("users", "[1]",
		 "exception E1: \"users\": expected user names (1 to 32 letters, "
		 "digits, '.', '_' or '-')");
	{
		char users[400] = "[";
		for (int i = 0; i < 33; i++)
			snprintf(users + strlen(users), sizeof(users) - strlen(users), "%s\"u%d\"",
				 i ? "," : "", i);
		strcat(users, "]");
		ex_error("users", users, "exception E1: \"users\": at most 32 users");
	}
	ex_error("from", "-1",
		 "exception E1: \"from\": expected unix seconds (a whole number, 0 or "
		 "more)");
	ex_error("from", "1.5",
		 "exception E1: \"from\": expected unix seconds (a whole number, 0 "
		 "or more)");
	ex_error("from", "\"10\"",
		 "exception E1: \"from\": expected unix seconds (a whole number, "
		 "0 or more)");
	ex_error("purpose", "\"\xff\"",
		 "exceptions JSON: unable to decode byte 0xff near '\"' at line 1");
	ex_error("until", "99999999999999999999",
		 "exceptions JSON: too big integer near '99999999999999999999' at line 1");
	ex_error("until", "10", "exception E1: \"from\" must be before \"until\"");
	ex_error("until", "9", "exception E1: \"from\" must be before \"until\"");
	ex_error("purpose", "\"\"", "exception E1: \"purpose\": expected a text of 1 to 512 bytes");
	ex_error("purpose", "null", "exception E1: \"purpose\": expected a text of 1 to 512 bytes");
	ex_error("approved_by", "\"a\\tb\"",
		 "exception E1: \"approved_by\": expected a text of 1 to 512 bytes");
	ex_error("ledger", "\"MB 1\"",
		 "exception E1: \"ledger\": expected a registration number "
		 "(1 to 64 letters, digits, '.', '_' or '-') or null");

	/* Duplicate ids; too many exceptions. */
	{
		const char *one = "{\"id\":\"D\",\"vendor\":\"0001\",\"product\":\"0002\","
				  "\"serial\":\"s\",\"hash\":null,\"class\":\"mtp\",\"users\":[],"
				  "\"from\":1,\"until\":2,\"purpose\":\"p\",\"approved_by\":\"a\","
				  "\"ledger\":null}";
		size_t n = strlen(one) + 1;
		char *json = malloc(20 + n * 1025);
		assert_non_null(json);
		sprintf(json, "{\"exceptions\":[%s,%s]}", one, one);
		expect_ex_error(json, "exception D: id used twice");
		strcpy(json, "{\"exceptions\":[");
		for (int i = 0; i < 1025; i++)
			strcat(strcat(json, i ? "," : ""), "1");
		strcat(json, "]}");
		expect_ex_error(json, "exceptions JSON: more than 1024 exceptions");
		free(json);
	}
}

static void test_limits_and_match(void **state)
{
	char *text = base_text("fukushi", "fukushi-*", 7, K.grant_b64);
	struct policy *base = NULL;
	struct bundle_exceptions ex = {0};
	struct bundle_exception *e;
	char err[BUNDLE_ERR_MAX];
	const char *json = "{\"exceptions\":[" EX1 "]}";

	assert_int_equal(policy_parse_base("b", text, strlen(text), &base, NULL), 0);
	assert_int_equal(bundle_exceptions_parse(json, strlen(json), &ex, err, sizeof(err)), 0);
	e = &ex.items[0];
	/* grant_max_days = 30 in base_text: exactly 30 days is allowed, a second more is not. */
	e->until = e->from + 30 * 86400;
	assert_int_equal(bundle_check_limits(base, &ex, err, sizeof(err)), 0);
	e->until++;
	assert_int_equal(bundle_check_limits(base, &ex, err, sizeof(err)), -EPERM);
	assert_string_equal(err,
			    "exception EX-2026-0001: longer than the base's grant_max_days (30)");
	e->until = e->from + 86400;
	snprintf(e->cls, sizeof(e->cls), "mtp"); /* blocked, but not a grant class */
	assert_int_equal(bundle_check_limits(base, &ex, err, sizeof(err)), -EPERM);
	assert_string_equal(err, "exception EX-2026-0001: class mtp is not in the base's "
				 "grant_classes");
	snprintf(e->cls, sizeof(e->cls), "08"); /* names are compared as written */
	assert_int_equal(bundle_check_limits(base, &ex, err, sizeof(err)), -EPERM);
	snprintf(e->cls, sizeof(e->cls), "mass_storage");
	free(e->serial);
	e->serial = NULL;
	assert_int_equal(bundle_check_limits(base, &ex, err, sizeof(err)), -EPERM);
	assert_string_equal(err, "exception EX-2026-0001: no serial number");
	e->serial = strdup("4C530001090515116423");
	assert_int_equal(bundle_check_limits(base, &ex, err, sizeof(err)), 0);
	/* A policy without [fleet] allows nothing; no exceptions is always within limits. */
	{
		struct policy *plain = NULL;
		struct bundle_exceptions none = {0};
		assert_int_equal(policy_parse_string("p", "[terminal]\nid = t\n", 18, &plain, NULL),
				 0);
		assert_int_equal(bundle_check_limits(plain, &ex, err, sizeof(err)), -EPERM);
		assert_string_equal(err, "exception EX-2026-0001: the base has no [fleet] section");
		assert_int_equal(bundle_check_limits(plain, &none, err, sizeof(err)), 0);
		policy_free(plain);
	}

	/* Matching: [from, until), ids, serial, hash. */
	{
		struct policy_usb_device dev = {.vendor = 0x0781,
						.product = 0x5581,
						.serial = "4C530001090515116423",
						.descriptor_hash = HASH};
		int64_t from = e->from, until = e->until;
		assert_true(bundle_exception_matches(e, &dev, from));
		assert_true(bundle_exception_matches(e, &dev, until - 1));
		assert_false(bundle_exception_matches(e, &dev, from - 1));
		assert_false(bundle_exception_matches(e, &dev, until));
		dev.serial = "4C530001090515116424";
		assert_false(bundle_exception_matches(e, &dev, from));
		dev.serial = NULL;
		assert_false(bundle_exception_matches(e, &dev, from));
		dev.serial = "4C530001090515116423";
		dev.product = 0x5582;
		assert_false(bundle_exception_matches(e, &dev, from));
		dev.product = 0x5581;
		dev.vendor = 0x0782;
		assert_false(bundle_exception_matches(e, &dev, from));
		dev.vendor = 0x0781;
		e->descriptor_hash = strdup(HASH);
		assert_true(bundle_exception_matches(e, &dev, from));
		dev.descriptor_hash = NULL;
		assert_false(bundle_exception_matches(e, &dev, from));
		dev.descriptor_hash =
		    "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
		assert_false(bundle_exception_matches(e, &dev, from));
		free(e->serial);
		e->serial = NULL; /* any serial */
		free(e->descriptor_hash);
		e->descriptor_hash = NULL;
		dev.serial = NULL;
		assert_true(bundle_exception_matches(e, &dev, from));
		assert_false(bundle_exception_matches(NULL, &dev, from));
		assert_false(bundle_exception_matches(e, NULL, from));
	}
	bundle_exceptions_free(&ex);
	policy_free(base);
	free(text);
}

static void test_exception_opens(void **state)
{
	const char *text =
	    "[terminal]\nid = t\n[usb]\nblock = mass_storage, cdc_net, mtp, ff:42:01\n"
	    "[fleet]\ngroup = g\nversion = 1\nissued = 2026-12-01T09:00:00Z\n"
	    "terminals = t\ngrant_key = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
	    "grant_classes = cdc_net, ff:42:01\n";
	struct policy *p = NULL;
	struct bundle_exception e = {.id = "E", .cls = "cdc_net"};
	struct policy_usb_interface ifc[] = {
	    {.cls = 0x08, .subclass = 0x06, .protocol = 0x50},
	    {.cls = 0x02, .subclass = 0x06, .protocol = 0x00},
	    {.cls = 0x0a, .subclass = 0x00, .protocol = 0x00},
	    {.cls = 0xff, .subclass = 0x42, .protocol = 0x01},
	    {.cls = 0xff, .subclass = 0xff, .protocol = 0x00, .name = "MTP"},
	};
	struct policy_usb_decision d[5];
	struct policy_usb_device dev = {.vendor = 1, .product = 2};

	assert_int_equal(policy_parse_string("p", text, strlen(text), &p, NULL), 0);
	policy_usb_decide(p, &dev, ifc, 5, d);
	for (int i = 0; i < 5; i++)
		assert_non_null(d[i].block);
	/* cdc_net stands for 02 and 0a: both open; storage and MTP do not. */
	assert_false(bundle_exception_opens(p, &e, d[0].block));
	assert_true(bundle_exception_opens(p, &e, d[1].block));
	assert_true(bundle_exception_opens(p, &e, d[2].block));
	assert_false(bundle_exception_opens(p, &e, d[3].block));
	assert_false(bundle_exception_opens(p, &e, d[4].block));
	snprintf(e.cls, sizeof(e.cls), "ff:42:01");
	assert_true(bundle_exception_opens(p, &e, d[3].block));
	assert_false(bundle_exception_opens(p, &e, d[1].block));
	snprintf(e.cls, sizeof(e.cls), "mtp"); /* blocked, but no grant class */
	assert_false(bundle_exception_opens(p, &e, d[4].block));
	assert_false(bundle_exception_opens(NULL, &e, d[1].block));
	assert_false(bundle_exception_opens(p, NULL, d[1].block));
	assert_false(bundle_exception_opens(p, &e, NULL));
	policy_free(p);
}

static void test_request_code(void **state)
{
	char code[9], again[9];

	/* Vectors computed apart (Python hashlib): SHA-256 of
	 * "fukushi-01\0" "0781\0" "5581\0" "4C530001090515116423", first 40 bits, Crockford. */
	bundle_request_code("fukushi-01", 0x0781, 0x5581, "4C530001090515116423", code);
	assert_string_equal(code, "T46T5K9G");
	bundle_request_code("fukushi-01", 0x0781, 0x5581, "4C530001090515116423", again);
	assert_string_equal(code, again);
	bundle_request_code("fukushi-01", 0x0781, 0x5581, NULL, code);
	assert_string_equal(code, "NZB7JSRF");
	bundle_request_code("fukushi-01", 0x0781, 0x5581, "", again);
	assert_string_equal(code, again);
	bundle_request_code("fukushi-02", 0x0781, 0x5581, "4C530001090515116423", code);
	assert_string_equal(code, "QSFNBNX9");
	bundle_request_code("", 0, 0, NULL, code);
	assert_string_equal(code, "XME4G2CH");
	for (int i = 0; i < 8; i++)
		assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", code[i]));
}

/* Central TOTP secrets: sealed to one terminal, bound to terminal, user and generation; the
 * corpus seed made by an independent implementation (tests/fuzz/gen-totp-sealed-corpus.py)
 * opens; the "totp" list of the bundle JSON round-trips and is strict. */
static void test_totp_seal(void **state)
{
	uint8_t priv[BUNDLE_X25519_LEN], pub[BUNDLE_X25519_LEN], priv2[32], pub2[32];
	struct bundle_totp_secret s = {.secret_len = 20,
				       .digits = 6,
				       .period = 30,
				       .enrolled = 1764900000},
				  back;
	uint8_t *sealed = NULL, seed[256];
	size_t len = 0;
	ssize_t n;
	int fd;

	(void)state;
	for (size_t i = 0; i < 20; i++)
		s.secret[i] = (uint8_t)(i + 1);
	assert_int_equal(bundle_x25519_generate(priv, pub), 0);
	assert_int_equal(bundle_x25519_generate(priv2, pub2), 0);
	assert_int_equal(bundle_totp_seal(pub, "term-1", "clerk1", 3, &s, &sealed, &len), 0);
	assert_int_equal(len, 1 + 32 + 12 + 13 + 20 + 16);
	assert_int_equal(bundle_totp_open(priv, "term-1", "clerk1", 3, sealed, len, &back), 0);
	assert_memory_equal(back.secret, s.secret, 20);
	assert_int_equal(back.digits, 6);
	assert_int_equal(back.period, 30);
	assert_int_equal(back.enrolled, 1764900000);
	/* another terminal's key, terminal id, user or generation: refused */
	assert_int_equal(bundle_totp_open(priv2, "term-1", "clerk1", 3, sealed, len, &back),
			 -EBADMSG);
	assert_int_equal(bundle_totp_open(priv, "term-2", "clerk1", 3, sealed, len, &back),
			 -EBADMSG);
	assert_int_equal(bundle_totp_open(priv, "term-1", "clerk2", 3, sealed, len, &back),
			 -EBADMSG);
	assert_int_equal(bundle_totp_open(priv, "term-1", "clerk1", 2, sealed, len, &back),
			 -EBADMSG);
	sealed[len / 2] ^= 1;
	assert_int_equal(bundle_totp_open(priv, "term-1", "clerk1", 3, sealed, len, &back),
			 -EBADMSG);
	free(sealed);
	/* out of range */
	s.digits = 9;
	assert_int_equal(bundle_totp_seal(pub, "term-1", "clerk1", 3, &s, &sealed, &len), -EINVAL);
	s.digits = 6;
	assert_int_equal(bundle_totp_seal(pub, "term-1", "-bad", 3, &s, &sealed, &len), -EINVAL);

	/* the seed of an independent implementation */
	memset(priv, 0x11, sizeof(priv));
	fd = open(SRCDIR "/tests/fuzz/corpus/totp-sealed/valid-clerk1", O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, seed, sizeof(seed));
	close(fd);
	assert_true(n > 0);
	assert_int_equal(
	    bundle_totp_open(priv, "fuzz-terminal", "clerk1", 1, seed, (size_t)n, &back), 0);
	assert_int_equal(back.secret_len, 20);
	assert_int_equal(back.secret[0], 1);
	assert_int_equal(back.secret[19], 20);

	/* the bundle JSON's "totp" list */
	struct bundle_exceptions ex = {0}, again = {0};
	struct bundle_totp t = {
	    .user = "clerk1", .gen = 2, .sealed = seed, .sealed_len = (size_t)n};
	char err[BUNDLE_ERR_MAX], *json = NULL, *json2 = NULL;
	ex.totp = &t;
	ex.n_totp = 1;
	assert_int_equal(bundle_exceptions_to_json(&ex, &json), 0);
	assert_non_null(strstr(json, "],\"totp\":[{\"user\":\"clerk1\",\"sealed\":\""));
	assert_int_equal(bundle_exceptions_parse(json, strlen(json), &again, err, sizeof(err)), 0);
	assert_int_equal(again.n_totp, 1);
	assert_int_equal(again.totp[0].gen, 2);
	assert_int_equal(again.totp[0].sealed_len, (size_t)n);
	assert_memory_equal(again.totp[0].sealed, seed, (size_t)n);
	assert_int_equal(bundle_exceptions_to_json(&again, &json2), 0);
	assert_string_equal(json, json2);
	bundle_exceptions_free(&again);
	free(json);
	free(json2);
	static const char *const bad[] = {
	    "{\"exceptions\":[],\"totp\":{}}",
	    "{\"exceptions\":[],\"totp\":[{\"user\":\"a\",\"gen\":1}]}",
	    "{\"exceptions\":[],\"totp\":[{\"user\":\"a\",\"gen\":0,\"sealed\":\"AAAA\"}]}",
	    "{\"exceptions\":[],\"totp\":[{\"user\":\".a\",\"gen\":1,\"sealed\":\"AAAA\"}]}",
	    "{\"exceptions\":[],\"totp\":[{\"user\":\"a\",\"gen\":1,\"sealed\":\"AA=A\"}]}",
	    "{\"exceptions\":[],\"totp\":[{\"user\":\"a\",\"gen\":1,\"sealed\":\"AAAA\",\"x\":1}]}",
	    ("{\"exceptions\":[],\"totp\":[{\"user\":\"a\",\"gen\":1,\"sealed\":\"AAAA\"},"
	     "{\"user\":\"a\",\"gen\":2,\"sealed\":\"AAAA\"}]}"),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    bundle_exceptions_parse(bad[i], strlen(bad[i]), &again, err, sizeof(err)),
		    -EBADMSG);
	/* the collector's at-rest AEAD */
	uint8_t key[32] = {1}, out[64], *blob = NULL;
	size_t blen = 0, olen = 0;
	assert_int_equal(
	    bundle_aead_seal(key, "aad", 3, (const uint8_t *)"secret", 6, &blob, &blen), 0);
	assert_int_equal(bundle_aead_open(key, "aad", 3, blob, blen, out, sizeof(out), &olen), 0);
	assert_int_equal(olen, 6);
	assert_memory_equal(out, "secret", 6);
	assert_int_equal(bundle_aead_open(key, "aae", 3, blob, blen, out, sizeof(out), &olen),
			 -EBADMSG);
	free(blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_too_large),
	    cmocka_unit_test(test_build_errors),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_check_install),
	    cmocka_unit_test(test_exceptions_parse),
	    cmocka_unit_test(test_exceptions_errors),
	    cmocka_unit_test(test_limits_and_match),
	    cmocka_unit_test(test_exception_opens),
	    cmocka_unit_test(test_request_code),
	    cmocka_unit_test(test_totp_seal),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
