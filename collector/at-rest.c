/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: at-rest encryption of the database's secrets (at-rest.h). */
#include "at-rest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "fileio.h"
#include "macro.h"
#include "secmem.h"

int at_rest_key_load(const char *path, uint8_t key[AT_REST_KEY_LEN], char *err, size_t errsz)
{
	const struct fileio_expect ex = {.forbidden_mode = 0077};
	_cleanup_close_ int fd = -1;
	char *text = NULL;
	size_t len;
	int r = fileio_open_verified(AT_FDCWD, path, O_RDONLY, &ex, &fd);

	if (r < 0) {
		snprintf(err, errsz, "%s",
			 r == -EACCES  ? "group or others may read it (chmod 600)"
			 : r == -ELOOP ? "is a symlink"
				       : strerror(-r));
		return r;
	}
	r = fileio_read_fd(fd, 128, &text, &len);
	if (r < 0) {
		snprintf(err, errsz, "%s", strerror(-r));
		return r;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	r = len == 2 * AT_REST_KEY_LEN ? 0 : -EBADMSG;
	for (size_t i = 0; r == 0 && i < AT_REST_KEY_LEN; i++) {
		unsigned v;
		if (sscanf(text + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdefABCDEF", text[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", text[2 * i + 1]))
			r = -EBADMSG;
		else
			key[i] = (uint8_t)v;
	}
	secmem_wipe(text, len);
	free(text);
	if (r < 0) {
		secmem_wipe(key, AT_REST_KEY_LEN);
		snprintf(err, errsz, "expected 64 hex digits (openssl rand -hex 32)");
	}
	return r;
}

int at_rest_key_create(const char *path, uid_t uid, gid_t gid, uint8_t key[AT_REST_KEY_LEN],
		       char *err, size_t errsz)
{
	char hex[2 * AT_REST_KEY_LEN + 2];
	int r;

	if (access(path, F_OK) == 0) {
		snprintf(err, errsz, "exists already");
		return -EEXIST;
	}
	if (RAND_bytes(key, AT_REST_KEY_LEN) != 1) {
		snprintf(err, errsz, "no random bytes");
		return -EIO;
	}
	for (size_t i = 0; i < AT_REST_KEY_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	hex[2 * AT_REST_KEY_LEN] = '\n';
	hex[2 * AT_REST_KEY_LEN + 1] = 0;
	r = fileio_write_atomic_path(path, hex, 2 * AT_REST_KEY_LEN + 1, 0600);
	if (r >= 0 && (uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) < 0)
		r = -errno;
	secmem_wipe(hex, sizeof(hex));
	if (r < 0) {
		secmem_wipe(key, AT_REST_KEY_LEN);
		snprintf(err, errsz, "cannot write it: %s", strerror(-r));
	}
	return r;
}

static size_t aad(const char *context, const char *user, uint64_t gen, uint8_t *out, size_t size)
{
	int n = snprintf((char *)out, size, "%s%c%s%c%020" PRIu64, context, 0, user, 0, gen);
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

int at_rest_seal(const uint8_t key[AT_REST_KEY_LEN], const char *context, const char *user,
		 uint64_t gen, const void *plain, size_t plen, uint8_t **ret, size_t *ret_len)
{
	uint8_t a[160];
	size_t alen = aad(context, user, gen, a, sizeof(a));

	if (!alen)
		return -EINVAL;
	return bundle_aead_seal(key, a, alen, plain, plen, ret, ret_len);
}

int at_rest_open(const uint8_t key[AT_REST_KEY_LEN], const char *context, const char *user,
		 uint64_t gen, const void *blob, size_t len, uint8_t *out, size_t outsz,
		 size_t *ret_len)
{
	uint8_t a[160];
	size_t alen = aad(context, user, gen, a, sizeof(a));

	if (!alen)
		return -EINVAL;
	return bundle_aead_open(key, a, alen, blob, len, out, outsz, ret_len);
}
