/* SPDX-License-Identifier: MIT */
/* The bundle's framing, Ed25519 keys and signatures (OpenSSL) and the install checks. Used by the
 * agent's monitor and worker, the collector and mynaguardctl. Never logs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "bundle.h"
#include "fileio.h"
#include "macro.h"
#include "secmem.h"

#define BASE_CONTEXT "mynaguard-base-v1"
#define BODY_CONTEXT "mynaguard-body-v1"
#define SHA256_LEN   32
/* The fixed part of a body: version, issued, id_len, json_len. */
#define BODY_FIXED (8 + 8 + 2 + 4)
#define PEM_MAX	   4096

struct bundle_signer {
	EVP_PKEY *pkey;
};

static int fail(char *err, size_t errsz, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errsz, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && errsz > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return r;
}

static bool id_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '.' || ch == '-';
}

static bool valid_id(const char *s, size_t n)
{
	if (n < 1 || n > POLICY_TERMINAL_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!id_char(s[i]))
			return false;
	return true;
}

/* ---- framing ---- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	return put32(put32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

/* magic, base_len, base, root_sig: shared by both kinds of file. *ret_pos = where the rest
 * starts. */
static int decode_head(const uint8_t *buf, size_t len, const char *magic, struct bundle_frame *f,
		       size_t *ret_pos, char *err, size_t errsz)
{
	size_t pos = 0;
	uint32_t base_len;

	if (!buf && len > 0)
		return fail(err, errsz, -EINVAL, "no buffer");
	if (len > BUNDLE_MAX_BYTES)
		return fail(err, errsz, -EFBIG, "too large (%zu bytes): at most %d", len,
			    BUNDLE_MAX_BYTES);
	if (len < BUNDLE_MAGIC_LEN || memcmp(buf, magic, BUNDLE_MAGIC_LEN) != 0)
		return fail(err, errsz, -EBADMSG, "bad magic: expected %s", magic);
	pos = BUNDLE_MAGIC_LEN;
	if (len - pos < 4)
		return fail(err, errsz, -EBADMSG, "truncated in the base length");
	base_len = get32(buf + pos);
	pos += 4;
	if (base_len < 1 || base_len > BUNDLE_MAX_BYTES)
		return fail(err, errsz, -EBADMSG, "base length %" PRIu32 " out of range", base_len);
	if (len - pos < base_len)
		return fail(err, errsz, -EBADMSG,
			    "truncated in the base (%" PRIu32 " bytes announced, %zu present)",
			    base_len, len - pos);
	f->base = buf + pos;
	f->base_len = base_len;
	pos += base_len;
	if (len - pos < BUNDLE_SIG_LEN)
		return fail(err, errsz, -EBADMSG, "truncated in the root signature");
	f->root_sig = buf + pos;
	pos += BUNDLE_SIG_LEN;
	*ret_pos = pos;
	return 0;
}

int bundle_decode(const uint8_t *buf, size_t len, struct bundle_frame *ret, char *err, size_t errsz)
{
	struct bundle_frame f = {0};
	size_t pos, bpos, rest;
	uint32_t body_len;
	int r;

	r = decode_head(buf, len, BUNDLE_MAGIC, &f, &pos, err, errsz);
	if (r < 0)
		return r;
	if (len - pos < 4)
		return fail(err, errsz, -EBADMSG, "truncated in the body length");
	body_len = get32(buf + pos);
	pos += 4;
	if (body_len < BODY_FIXED + 1 || body_len > BUNDLE_MAX_BYTES)
		return fail(err, errsz, -EBADMSG, "body length %" PRIu32 " out of range", body_len);
	if (len - pos < body_len)
		return fail(err, errsz, -EBADMSG,
			    "truncated in the body (%" PRIu32 " bytes announced, %zu present)",
			    body_len, len - pos);
	f.body = buf + pos;
	f.body_len = body_len;

	/* The body's fields, each within body_len. */
	f.version = get64(f.body);
	f.issued = (int64_t)get64(f.body + 8);
	f.terminal_id_len = get16(f.body + 16);
	bpos = 18;
	rest = body_len - bpos;
	if (f.terminal_id_len == 0)
		return fail(err, errsz, -EBADMSG, "empty terminal id");
	if (f.terminal_id_len > POLICY_TERMINAL_ID_MAX)
		return fail(err, errsz, -EBADMSG, "terminal id length %u out of range: at most %d",
			    (unsigned)f.terminal_id_len, POLICY_TERMINAL_ID_MAX);
	if (rest < (size_t)f.terminal_id_len + 4)
		return fail(err, errsz, -EBADMSG, "body truncated in the terminal id");
	f.terminal_id = (const char *)f.body + bpos;
	if (!valid_id(f.terminal_id, f.terminal_id_len))
		return fail(err, errsz, -EBADMSG,
			    "bad terminal id: expected letters, digits, '.', '_' or '-'");
	bpos += f.terminal_id_len;
	f.json_len = get32(f.body + bpos);
	bpos += 4;
	if (f.json_len != body_len - bpos)
		return fail(err, errsz, -EBADMSG,
			    "JSON length %" PRIu32 " does not match the body (%zu bytes left)",
			    f.json_len, body_len - bpos);
	f.json = (const char *)f.body + bpos;
	pos += body_len;

	if (len - pos < BUNDLE_SIG_LEN)
		return fail(err, errsz, -EBADMSG, "truncated in the grant signature");
	f.grant_sig = buf + pos;
	pos += BUNDLE_SIG_LEN;
	if (pos != len)
		return fail(err, errsz, -EBADMSG, "%zu trailing bytes after the grant signature",
			    len - pos);
	*ret = f;
	return 0;
}

int bundle_decode_base(const uint8_t *buf, size_t len, struct bundle_frame *ret, char *err,
		       size_t errsz)
{
	struct bundle_frame f = {0};
	size_t pos;
	int r;

	r = decode_head(buf, len, BUNDLE_BASE_MAGIC, &f, &pos, err, errsz);
	if (r < 0)
		return r;
	if (pos != len)
		return fail(err, errsz, -EBADMSG, "%zu trailing bytes after the root signature",
			    len - pos);
	*ret = f;
	return 0;
}

/* ---- keys ---- */

int bundle_pubkey_from_base64(const char *b64, uint8_t out[BUNDLE_PUBKEY_LEN])
{
	return policy_key_from_base64(b64, out);
}

void bundle_pubkey_to_base64(const uint8_t key[BUNDLE_PUBKEY_LEN], char out[45])
{
	EVP_EncodeBlock((unsigned char *)out, key, BUNDLE_PUBKEY_LEN);
	out[44] = '\0';
}

int bundle_pubkey_load(const char *path, uint8_t out[BUNDLE_PUBKEY_LEN], char *err, size_t errsz)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r;

	if (!path)
		return fail(err, errsz, -EINVAL, "no path");
	r = fileio_read_file(AT_FDCWD, path, 128, &text, &len);
	if (r == -EFBIG)
		return fail(err, errsz, -EBADMSG, "%s: not a public key (too long)", path);
	if (r < 0)
		return fail(err, errsz, r, "%s: %s", path, strerror(-r));
	if (len > 0 && text[len - 1] == '\n')
		text[--len] = '\0';
	if (strlen(text) != len || bundle_pubkey_from_base64(text, out) < 0)
		return fail(err, errsz, -EBADMSG,
			    "%s: not a public key: expected one line of base64 (44 characters)",
			    path);
	return 0;
}

static int signer_from_pkey(EVP_PKEY *pkey, struct bundle_signer **ret)
{
	struct bundle_signer *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->pkey = pkey;
	*ret = s;
	return 0;
}

int bundle_signer_load(const char *pem_path, struct bundle_signer **ret, char *err, size_t errsz)
{
	static const struct fileio_expect private = {.forbidden_mode = 0077};
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *pem = NULL;
	EVP_PKEY *pkey = NULL;
	size_t len = 0;
	BIO *bio;
	int r;

	if (!pem_path)
		return fail(err, errsz, -EINVAL, "no path");
	r = fileio_open_verified(AT_FDCWD, pem_path, O_RDONLY, &private, &fd);
	if (r == -EACCES)
		return fail(err, errsz, r,
			    "%s: a private key must be readable by its owner only (chmod 600)",
			    pem_path);
	if (r == -ELOOP)
		return fail(err, errsz, r, "%s: is a symbolic link", pem_path);
	if (r == -EBADFD)
		return fail(err, errsz, r, "%s: not a regular file", pem_path);
	if (r < 0)
		return fail(err, errsz, r, "%s: %s", pem_path, strerror(-r));
	r = fileio_read_fd(fd, PEM_MAX, &pem, &len);
	if (r < 0) {
		if (r == -EFBIG)
			return fail(err, errsz, -EBADMSG, "%s: not an Ed25519 private key",
				    pem_path);
		return fail(err, errsz, r, "%s: %s", pem_path, strerror(-r));
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		secmem_wipe(pem, len);
		return -ENOMEM;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	secmem_wipe(pem, len);
	if (!pkey || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		return fail(err, errsz, -EBADMSG,
			    "%s: not an Ed25519 private key (PKCS#8 PEM, unencrypted)", pem_path);
	}
	r = signer_from_pkey(pkey, ret);
	if (r < 0)
		EVP_PKEY_free(pkey);
	return r;
}

int bundle_signer_generate(struct bundle_signer **ret)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	int r;

	if (!pkey)
		return -EIO;
	r = signer_from_pkey(pkey, ret);
	if (r < 0)
		EVP_PKEY_free(pkey);
	return r;
}

int bundle_signer_save(const struct bundle_signer *s, const char *pem_path, char *err, size_t errsz)
{
	_cleanup_close_ int fd = -1;
	BIO *bio;
	char *data = NULL;
	long n;
	int r;

	if (!s || !pem_path)
		return fail(err, errsz, -EINVAL, "no key or path");
	bio = BIO_new(BIO_s_mem());
	if (!bio)
		return -ENOMEM;
	if (PEM_write_bio_PrivateKey(bio, s->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		BIO_free(bio); /* BIO_s_mem clears its buffer on free */
		return fail(err, errsz, -EIO, "cannot encode the private key");
	}
	n = BIO_get_mem_data(bio, &data);
	fd = open(pem_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		BIO_free(bio);
		if (r == -EEXIST)
			return fail(err, errsz, r, "%s: already exists: not overwritten", pem_path);
		return fail(err, errsz, r, "%s: %s", pem_path, strerror(-r));
	}
	r = fchmod(fd, 0600) < 0 ? -errno : 0;
	if (r == 0)
		r = fileio_write_all(fd, data, (size_t)n);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	secmem_wipe(data, (size_t)n);
	BIO_free(bio);
	if (r < 0) {
		unlink(pem_path);
		return fail(err, errsz, r, "%s: %s", pem_path, strerror(-r));
	}
	return 0;
}

void bundle_signer_pubkey(const struct bundle_signer *s, uint8_t out[BUNDLE_PUBKEY_LEN])
{
	size_t n = BUNDLE_PUBKEY_LEN;

	if (!s || EVP_PKEY_get_raw_public_key(s->pkey, out, &n) != 1 || n != BUNDLE_PUBKEY_LEN)
		memset(out, 0, BUNDLE_PUBKEY_LEN);
}

void bundle_signer_free(struct bundle_signer *s)
{
	if (!s)
		return;
	EVP_PKEY_free(s->pkey);
	free(s);
}

/* ---- signatures ---- */

/* The signed messages: context string with its NUL, then the parts. */
static int base_message(const uint8_t *base, size_t base_len, uint8_t **ret, size_t *ret_len)
{
	size_t n = sizeof(BASE_CONTEXT) + base_len;
	uint8_t *m = malloc(n);

	if (!m)
		return -ENOMEM;
	memcpy(m, BASE_CONTEXT, sizeof(BASE_CONTEXT));
	memcpy(m + sizeof(BASE_CONTEXT), base, base_len);
	*ret = m;
	*ret_len = n;
	return 0;
}

static int body_message(const uint8_t *base, size_t base_len, const uint8_t *body, size_t body_len,
			uint8_t **ret, size_t *ret_len)
{
	size_t n = sizeof(BODY_CONTEXT) + SHA256_LEN + body_len;
	uint8_t *m = malloc(n);

	if (!m)
		return -ENOMEM;
	memcpy(m, BODY_CONTEXT, sizeof(BODY_CONTEXT));
	if (EVP_Digest(base, base_len, m + sizeof(BODY_CONTEXT), NULL, EVP_sha256(), NULL) != 1) {
		free(m);
		return -EIO;
	}
	memcpy(m + sizeof(BODY_CONTEXT) + SHA256_LEN, body, body_len);
	*ret = m;
	*ret_len = n;
	return 0;
}

static int sign(EVP_PKEY *pkey, const uint8_t *m, size_t n, uint8_t sig[BUNDLE_SIG_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = BUNDLE_SIG_LEN;
	int ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
	     EVP_DigestSign(ctx, sig, &siglen, m, n) == 1 && siglen == BUNDLE_SIG_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

static int verify(const uint8_t pub[BUNDLE_PUBKEY_LEN], const uint8_t *m, size_t n,
		  const uint8_t sig[BUNDLE_SIG_LEN])
{
	EVP_PKEY *pkey =
	    EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, BUNDLE_PUBKEY_LEN);
	EVP_MD_CTX *ctx;
	int ok;

	if (!pkey)
		return -EBADMSG; /* not a point on the curve */
	ctx = EVP_MD_CTX_new();
	if (!ctx) {
		EVP_PKEY_free(pkey);
		return -ENOMEM;
	}
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
	     EVP_DigestVerify(ctx, sig, BUNDLE_SIG_LEN, m, n) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return ok ? 0 : -EBADMSG;
}

int bundle_sign_base(const struct bundle_signer *root, const char *base, size_t base_len,
		     uint8_t **ret, size_t *ret_len)
{
	_cleanup_free_ uint8_t *m = NULL;
	_cleanup_free_ uint8_t *out = NULL;
	size_t mlen, n;
	uint8_t *p;
	int r;

	if (!root || !base || base_len < 1 ||
	    base_len > BUNDLE_MAX_BYTES - BUNDLE_MAGIC_LEN - 4 - BUNDLE_SIG_LEN)
		return -EINVAL;
	r = base_message((const uint8_t *)base, base_len, &m, &mlen);
	if (r < 0)
		return r;
	n = BUNDLE_MAGIC_LEN + 4 + base_len + BUNDLE_SIG_LEN;
	out = malloc(n);
	if (!out)
		return -ENOMEM;
	memcpy(out, BUNDLE_BASE_MAGIC, BUNDLE_MAGIC_LEN);
	p = put32(out + BUNDLE_MAGIC_LEN, (uint32_t)base_len);
	memcpy(p, base, base_len);
	p += base_len;
	r = sign(root->pkey, m, mlen, p);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(out);
	*ret_len = n;
	return 0;
}

int bundle_build(const uint8_t *signed_base, size_t signed_base_len,
		 const struct bundle_signer *grant, uint64_t version, int64_t issued,
		 const char *terminal_id, const char *json, size_t json_len, uint8_t **ret,
		 size_t *ret_len, char *err, size_t errsz)
{
	_cleanup_free_ uint8_t *m = NULL;
	_cleanup_free_ uint8_t *out = NULL;
	struct bundle_frame f;
	size_t id_len, body_len, n, mlen;
	uint8_t *p, *body;
	int r;

	if (!grant || !terminal_id || (!json && json_len > 0))
		return fail(err, errsz, -EINVAL, "no grant key, terminal id or JSON");
	r = bundle_decode_base(signed_base, signed_base_len, &f, err, errsz);
	if (r < 0)
		return r;
	id_len = strlen(terminal_id);
	if (!valid_id(terminal_id, id_len))
		return fail(err, errsz, -EINVAL, "bad terminal id");
	if (version < 1)
		return fail(err, errsz, -EINVAL, "version must be at least 1");
	body_len = BODY_FIXED + id_len + json_len;
	if (json_len > BUNDLE_MAX_BYTES ||
	    signed_base_len + 4 + body_len + BUNDLE_SIG_LEN > BUNDLE_MAX_BYTES)
		return fail(err, errsz, -EFBIG, "bundle would exceed %d bytes", BUNDLE_MAX_BYTES);
	n = signed_base_len + 4 + body_len + BUNDLE_SIG_LEN;
	out = malloc(n);
	if (!out)
		return -ENOMEM;
	memcpy(out, BUNDLE_MAGIC, BUNDLE_MAGIC_LEN);
	memcpy(out + BUNDLE_MAGIC_LEN, signed_base + BUNDLE_MAGIC_LEN,
	       signed_base_len - BUNDLE_MAGIC_LEN);
	p = put32(out + signed_base_len, (uint32_t)body_len);
	body = p;
	p = put64(p, version);
	p = put64(p, (uint64_t)issued);
	p = put16(p, (uint16_t)id_len);
	memcpy(p, terminal_id, id_len);
	p += id_len;
	p = put32(p, (uint32_t)json_len);
	if (json_len > 0)
		memcpy(p, json, json_len);
	p += json_len;
	r = body_message(f.base, f.base_len, body, body_len, &m, &mlen);
	if (r < 0)
		return r;
	r = sign(grant->pkey, m, mlen, p);
	if (r < 0)
		return fail(err, errsz, r, "cannot sign");
	*ret = TAKE_PTR(out);
	*ret_len = n;
	return 0;
}

int bundle_sign_detached(const struct bundle_signer *s, const void *m, size_t n,
			 uint8_t sig[BUNDLE_SIG_LEN])
{
	if (!s)
		return -EINVAL;
	return sign(s->pkey, m, n, sig);
}

int bundle_verify_detached(const uint8_t pub[BUNDLE_PUBKEY_LEN], const void *m, size_t n,
			   const uint8_t sig[BUNDLE_SIG_LEN])
{
	return verify(pub, m, n, sig);
}

int bundle_verify_root(const struct bundle_frame *f, const uint8_t root_pub[BUNDLE_PUBKEY_LEN])
{
	_cleanup_free_ uint8_t *m = NULL;
	size_t n;
	int r;

	if (!f || !f->base || !f->root_sig)
		return -EBADMSG;
	r = base_message(f->base, f->base_len, &m, &n);
	if (r < 0)
		return r;
	return verify(root_pub, m, n, f->root_sig);
}

int bundle_verify_grant(const struct bundle_frame *f, const uint8_t grant_pub[BUNDLE_PUBKEY_LEN])
{
	_cleanup_free_ uint8_t *m = NULL;
	size_t n;
	int r;

	if (!f || !f->base || !f->body || !f->grant_sig)
		return -EBADMSG;
	r = body_message(f->base, f->base_len, f->body, f->body_len, &m, &n);
	if (r < 0)
		return r;
	return verify(grant_pub, m, n, f->grant_sig);
}

int bundle_check_install(const struct bundle_frame *f, const uint8_t root_pub[BUNDLE_PUBKEY_LEN],
			 const char *own_id, uint64_t applied_version,
			 uint64_t applied_base_version, struct policy **ret_base, char *err,
			 size_t errsz)
{
	_cleanup_policy_ struct policy *base = NULL;
	struct policy_errors *errs = NULL;
	char line[300];
	int r;

	if (!f || !f->body || !own_id)
		return fail(err, errsz, -EBADMSG, "not a bundle (no signed body)");
	r = bundle_verify_root(f, root_pub);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return fail(err, errsz, -EBADMSG, "root signature does not verify");

	/* Only now is the base worth parsing: its text is the root key holder's. */
	errs = calloc(1, sizeof(*errs));
	if (!errs)
		return -ENOMEM;
	r = policy_parse_base("base", (const char *)f->base, f->base_len, &base, errs);
	if (r < 0) {
		if (errs->n > 0)
			policy_error_format(errs, 0, line, sizeof(line));
		else
			snprintf(line, sizeof(line), "%s", strerror(-r));
		policy_errors_clear(errs);
		free(errs);
		if (r == -ENOMEM)
			return r;
		return fail(err, errsz, -EBADMSG, "base policy does not parse: %s", line);
	}
	policy_errors_clear(errs);
	free(errs);

	r = bundle_verify_grant(f, base->fleet_grant_key);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return fail(err, errsz, -EBADMSG,
			    "grant signature does not verify with the key the base names");
	if (f->terminal_id_len != strlen(own_id) ||
	    memcmp(f->terminal_id, own_id, f->terminal_id_len) != 0)
		return fail(err, errsz, -EACCES, "bundle is for terminal %.*s",
			    (int)f->terminal_id_len, f->terminal_id);
	if (!policy_fleet_covers(base, own_id))
		return fail(err, errsz, -EACCES,
			    "base of group %s (version %" PRIu64 ") does not cover terminal %s",
			    base->fleet_group, base->fleet_version, own_id);
	if (f->version <= applied_version)
		return fail(err, errsz, -ESTALE,
			    "version %" PRIu64 " is not newer than the applied %" PRIu64,
			    f->version, applied_version);
	if (base->fleet_version < applied_base_version)
		return fail(err, errsz, -ESTALE,
			    "base version %" PRIu64 " is older than the applied %" PRIu64,
			    base->fleet_version, applied_base_version);
	if (ret_base)
		*ret_base = TAKE_PTR(base);
	return 0;
}
