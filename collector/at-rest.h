/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: at-rest encryption of secrets in the collector's database (the central
 * TOTP secrets under [fleet] totp_key, the dashboard accounts' TOTP secrets under [accounts]
 * secret_key): AES-256-GCM (bundle_aead_seal) with the AAD context "\0" user "\0" gen (20
 * digits), so that a sealed value opens only in its own row. Never logs. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AT_REST_KEY_LEN 32

/* The key file: 64 hex digits (openssl rand -hex 32), a regular file no one but its owner may
 * read. err gets the reason ("group or others may read it (chmod 600)", ...). */
int at_rest_key_load(const char *path, uint8_t key[AT_REST_KEY_LEN], char *err, size_t errsz);
/* A new random key written to path (mode 0600, owner uid/gid unless -1); -EEXIST when path
 * exists. err gets the reason. */
int at_rest_key_create(const char *path, uid_t uid, gid_t gid, uint8_t key[AT_REST_KEY_LEN],
		       char *err, size_t errsz);

/* *ret malloc'd: nonce (12) || ciphertext || tag (16). */
int at_rest_seal(const uint8_t key[AT_REST_KEY_LEN], const char *context, const char *user,
		 uint64_t gen, const void *plain, size_t plen, uint8_t **ret, size_t *ret_len);
/* -EBADMSG when it does not open (another key, row or context). */
int at_rest_open(const uint8_t key[AT_REST_KEY_LEN], const char *context, const char *user,
		 uint64_t gen, const void *blob, size_t len, uint8_t *out, size_t outsz,
		 size_t *ret_len);
