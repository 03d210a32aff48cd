/* SPDX-License-Identifier: MIT */
/* Central TOTP secrets on the fleet channel (docs/fleet.md, "Central TOTP enrollment"): the
 * plaintext encoding, sealing to a terminal's X25519 key (X25519 + HKDF-SHA256 + AES-256-GCM,
 * OpenSSL 3) and the collector's at-rest AEAD. Never logs; every buffer that held a secret or a
 * key is wiped. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "bundle.h"
#include "macro.h"
#include "secmem.h"

#define SEAL_CONTEXT  "mynaguard-totp-seal-v1"
#define SEAL_VERSION  1
#define PLAIN_VERSION 1
#define KEY_LEN	      32

bool bundle_totp_user_valid(const char *s, size_t len)
{
	static const char ok[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-";

	if (len < 1 || len > BUNDLE_TOTP_USER_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !strchr(ok, s[i]))
			return false;
	return true;
}

/* ---- the plaintext ---- */

int bundle_totp_secret_encode(const struct bundle_totp_secret *s, uint8_t *out, size_t *ret_len)
{
	uint8_t *p = out;
	uint64_t e = (uint64_t)s->enrolled;

	if (s->secret_len < BUNDLE_TOTP_SECRET_MIN || s->secret_len > BUNDLE_TOTP_SECRET_MAX ||
	    s->digits < 6 || s->digits > 8 || s->period < 10 || s->period > 300 || s->enrolled < 0)
		return -EINVAL;
	*p++ = PLAIN_VERSION;
	*p++ = (uint8_t)s->digits;
	*p++ = (uint8_t)(s->period >> 8);
	*p++ = (uint8_t)s->period;
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(e >> (8 * i));
	*p++ = (uint8_t)s->secret_len;
	memcpy(p, s->secret, s->secret_len);
	*ret_len = (size_t)(p - out) + s->secret_len;
	return 0;
}

int bundle_totp_secret_decode(const uint8_t *buf, size_t len, struct bundle_totp_secret *ret)
{
	uint64_t e = 0;
	size_t n;

	memset(ret, 0, sizeof(*ret));
	if (len < 13 || buf[0] != PLAIN_VERSION)
		return -EBADMSG;
	ret->digits = buf[1];
	ret->period = (unsigned)buf[2] << 8 | buf[3];
	for (int i = 0; i < 8; i++)
		e = e << 8 | buf[4 + i];
	n = buf[12];
	if (ret->digits < 6 || ret->digits > 8 || ret->period < 10 || ret->period > 300 ||
	    e > (uint64_t)INT64_MAX || n < BUNDLE_TOTP_SECRET_MIN || n > BUNDLE_TOTP_SECRET_MAX ||
	    len != 13 + n) {
		memset(ret, 0, sizeof(*ret));
		return -EBADMSG;
	}
	ret->enrolled = (int64_t)e;
	memcpy(ret->secret, buf + 13, n);
	ret->secret_len = n;
	return 0;
}

int bundle_sealed_decode(const uint8_t *buf, size_t len, struct bundle_sealed_frame *ret)
{
	const size_t fixed = 1 + BUNDLE_X25519_LEN + BUNDLE_SEAL_NONCE_LEN + BUNDLE_SEAL_TAG_LEN;

	memset(ret, 0, sizeof(*ret));
	if (!buf || len < fixed + 13 || len > BUNDLE_SEALED_MAX || buf[0] != SEAL_VERSION)
		return -EBADMSG;
	ret->eph_pub = buf + 1;
	ret->nonce = ret->eph_pub + BUNDLE_X25519_LEN;
	ret->ct = ret->nonce + BUNDLE_SEAL_NONCE_LEN;
	ret->ct_len = len - fixed;
	ret->tag = ret->ct + ret->ct_len;
	return 0;
}

/* ---- X25519 ---- */

static EVP_PKEY *x25519_priv(const uint8_t priv[BUNDLE_X25519_LEN])
{
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, BUNDLE_X25519_LEN);
}

int bundle_x25519_public(const uint8_t priv[BUNDLE_X25519_LEN], uint8_t pub[BUNDLE_X25519_LEN])
{
	EVP_PKEY *k = x25519_priv(priv);
	size_t n = BUNDLE_X25519_LEN;
	int ok = k && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == BUNDLE_X25519_LEN;

	EVP_PKEY_free(k);
	return ok ? 0 : -EINVAL;
}

int bundle_x25519_generate(uint8_t priv[BUNDLE_X25519_LEN], uint8_t pub[BUNDLE_X25519_LEN])
{
	if (RAND_priv_bytes(priv, BUNDLE_X25519_LEN) != 1)
		return -EIO;
	return bundle_x25519_public(priv, pub);
}

/* key = HKDF-SHA256(X25519(priv, peer), salt = eph_pub || term_pub, info = SEAL_CONTEXT) */
static int seal_key(EVP_PKEY *priv, const uint8_t peer[BUNDLE_X25519_LEN],
		    const uint8_t eph_pub[BUNDLE_X25519_LEN],
		    const uint8_t term_pub[BUNDLE_X25519_LEN], uint8_t key[KEY_LEN])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, BUNDLE_X25519_LEN);
	EVP_PKEY_CTX *dc = pk ? EVP_PKEY_CTX_new(priv, NULL) : NULL;
	uint8_t shared[BUNDLE_X25519_LEN], salt[2 * BUNDLE_X25519_LEN];
	size_t n = sizeof(shared);
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kc = NULL;
	int r = -EBADMSG;

	/* OpenSSL refuses an all-zero shared secret (a small-order peer key). */
	if (!dc || EVP_PKEY_derive_init(dc) != 1 || EVP_PKEY_derive_set_peer(dc, pk) != 1 ||
	    EVP_PKEY_derive(dc, shared, &n) != 1 || n != sizeof(shared))
		goto out;
	memcpy(salt, eph_pub, BUNDLE_X25519_LEN);
	memcpy(salt + BUNDLE_X25519_LEN, term_pub, BUNDLE_X25519_LEN);
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (kc) {
		OSSL_PARAM params[] = {
		    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared, sizeof(shared)),
		    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof(salt)),
		    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *)SEAL_CONTEXT,
						      strlen(SEAL_CONTEXT)),
		    OSSL_PARAM_construct_end(),
		};
		r = EVP_KDF_derive(kc, key, KEY_LEN, params) == 1 ? 0 : -EIO;
	}
out:
	secmem_wipe(shared, sizeof(shared));
	EVP_KDF_CTX_free(kc);
	EVP_KDF_free(kdf);
	EVP_PKEY_CTX_free(dc);
	EVP_PKEY_free(pk);
	return r;
}

/* ---- AES-256-GCM ---- */

static int gcm(bool enc, const uint8_t key[KEY_LEN], const uint8_t nonce[BUNDLE_SEAL_NONCE_LEN],
	       const void *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
	       uint8_t tag[BUNDLE_SEAL_TAG_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1 &&
	     EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) == 1 &&
	     (len == 0 || EVP_CipherUpdate(c, out, &n, in, (int)len) == 1) &&
	     (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, BUNDLE_SEAL_TAG_LEN, tag) == 1) &&
	     EVP_CipherFinal_ex(c, out + len, &n) == 1 &&
	     (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, BUNDLE_SEAL_TAG_LEN, tag) == 1);
	EVP_CIPHER_CTX_free(c);
	if (!ok && !enc)
		secmem_wipe(out, len);
	return ok ? 0 : -EBADMSG;
}

int bundle_aead_seal(const uint8_t key[32], const void *aad, size_t aad_len, const uint8_t *pt,
		     size_t pt_len, uint8_t **ret, size_t *ret_len)
{
	size_t n = BUNDLE_SEAL_NONCE_LEN + pt_len + BUNDLE_SEAL_TAG_LEN;
	uint8_t *out = malloc(n);

	if (!out)
		return -ENOMEM;
	if (RAND_bytes(out, BUNDLE_SEAL_NONCE_LEN) != 1 ||
	    gcm(true, key, out, aad, aad_len, pt, pt_len, out + BUNDLE_SEAL_NONCE_LEN,
		out + BUNDLE_SEAL_NONCE_LEN + pt_len) < 0) {
		free(out);
		return -EIO;
	}
	*ret = out;
	*ret_len = n;
	return 0;
}

int bundle_aead_open(const uint8_t key[32], const void *aad, size_t aad_len, const uint8_t *in,
		     size_t in_len, uint8_t *out, size_t out_size, size_t *ret_len)
{
	uint8_t tag[BUNDLE_SEAL_TAG_LEN];
	size_t n;

	if (in_len < BUNDLE_SEAL_NONCE_LEN + BUNDLE_SEAL_TAG_LEN)
		return -EBADMSG;
	n = in_len - BUNDLE_SEAL_NONCE_LEN - BUNDLE_SEAL_TAG_LEN;
	if (n + 1 > out_size) /* EVP_CipherFinal_ex may be given out + n */
		return -EBADMSG;
	memcpy(tag, in + in_len - BUNDLE_SEAL_TAG_LEN, sizeof(tag));
	if (gcm(false, key, in, aad, aad_len, in + BUNDLE_SEAL_NONCE_LEN, n, out, tag) < 0)
		return -EBADMSG;
	*ret_len = n;
	return 0;
}

/* ---- sealing to a terminal ---- */

/* SEAL_CONTEXT \0 terminal \0 user \0 gen (u64 BE); NULL when too long. */
static size_t seal_aad(const char *terminal_id, const char *user, uint64_t gen, uint8_t *out,
		       size_t size)
{
	size_t a = strlen(SEAL_CONTEXT) + 1, t = strlen(terminal_id) + 1, u = strlen(user) + 1;
	uint8_t *p = out;

	if (a + t + u + 8 > size)
		return 0;
	memcpy(p, SEAL_CONTEXT, a);
	p += a;
	memcpy(p, terminal_id, t);
	p += t;
	memcpy(p, user, u);
	p += u;
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(gen >> (8 * i));
	return (size_t)(p - out);
}

#define AAD_MAX (sizeof(SEAL_CONTEXT) + POLICY_TERMINAL_ID_MAX + 1 + BUNDLE_TOTP_USER_MAX + 1 + 8)

int bundle_totp_seal(const uint8_t terminal_pub[BUNDLE_X25519_LEN], const char *terminal_id,
		     const char *user, uint64_t gen, const struct bundle_totp_secret *s,
		     uint8_t **ret, size_t *ret_len)
{
	uint8_t eph[BUNDLE_X25519_LEN], key[KEY_LEN], plain[BUNDLE_TOTP_PLAIN_MAX], aad[AAD_MAX];
	size_t plen = 0, alen = seal_aad(terminal_id, user, gen, aad, sizeof(aad));
	EVP_PKEY *ek = NULL;
	uint8_t *out = NULL;
	int r;

	if (!alen || !bundle_totp_user_valid(user, strlen(user)))
		return -EINVAL;
	r = bundle_totp_secret_encode(s, plain, &plen);
	if (r < 0)
		return r;
	out = malloc(BUNDLE_SEALED_MAX);
	r = out ? 0 : -ENOMEM;
	if (r >= 0) {
		out[0] = SEAL_VERSION;
		r = bundle_x25519_generate(eph, out + 1);
	}
	if (r >= 0) {
		ek = x25519_priv(eph);
		r = ek ? seal_key(ek, terminal_pub, out + 1, terminal_pub, key) : -ENOMEM;
	}
	if (r >= 0 && RAND_bytes(out + 1 + BUNDLE_X25519_LEN, BUNDLE_SEAL_NONCE_LEN) != 1)
		r = -EIO;
	if (r >= 0) {
		uint8_t *nonce = out + 1 + BUNDLE_X25519_LEN, *ct = nonce + BUNDLE_SEAL_NONCE_LEN;
		r = gcm(true, key, nonce, aad, alen, plain, plen, ct, ct + plen);
	}
	EVP_PKEY_free(ek);
	secmem_wipe(eph, sizeof(eph));
	secmem_wipe(key, sizeof(key));
	secmem_wipe(plain, sizeof(plain));
	if (r < 0) {
		free(out);
		return r;
	}
	*ret = out;
	*ret_len = 1 + BUNDLE_X25519_LEN + BUNDLE_SEAL_NONCE_LEN + plen + BUNDLE_SEAL_TAG_LEN;
	return 0;
}

int bundle_totp_open(const uint8_t terminal_priv[BUNDLE_X25519_LEN], const char *terminal_id,
		     const char *user, uint64_t gen, const uint8_t *sealed, size_t len,
		     struct bundle_totp_secret *ret)
{
	uint8_t key[KEY_LEN], plain[BUNDLE_TOTP_PLAIN_MAX + 16], aad[AAD_MAX], pub[32], tag[16];
	size_t alen = seal_aad(terminal_id, user, gen, aad, sizeof(aad));
	struct bundle_sealed_frame f;
	EVP_PKEY *k = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!alen || bundle_sealed_decode(sealed, len, &f) < 0 || f.ct_len > BUNDLE_TOTP_PLAIN_MAX)
		return -EBADMSG;
	r = bundle_x25519_public(terminal_priv, pub);
	if (r >= 0) {
		k = x25519_priv(terminal_priv);
		r = k ? seal_key(k, f.eph_pub, f.eph_pub, pub, key) : -ENOMEM;
	}
	memcpy(tag, f.tag, sizeof(tag));
	if (r >= 0)
		r = gcm(false, key, f.nonce, aad, alen, f.ct, f.ct_len, plain, tag);
	if (r >= 0)
		r = bundle_totp_secret_decode(plain, f.ct_len, ret);
	EVP_PKEY_free(k);
	secmem_wipe(key, sizeof(key));
	secmem_wipe(plain, sizeof(plain));
	return r < 0 && r != -ENOMEM ? -EBADMSG : r;
}
