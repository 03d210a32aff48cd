/* SPDX-License-Identifier: MIT */
/* Recovery codes (totp_recovery.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "secmem.h"
#include "totp_recovery.h"
#include "totp_store.h"

#define OFF_USED 40

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

int totp_recovery_decode(const uint8_t *buf, size_t len, struct totp_recovery *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (len != TOTP_RECOVERY_SIZE || memcmp(buf, TOTP_RECOVERY_MAGIC, 8) != 0)
		return -EBADMSG;
	for (size_t i = 0; i < TOTP_RECOVERY_DIGITS; i++)
		if (buf[24 + i] < '0' || buf[24 + i] > '9')
			return -EBADMSG;
	ret->rid = get64(buf + 8);
	ret->until = (int64_t)get64(buf + 16);
	memcpy(ret->code, buf + 24, TOTP_RECOVERY_DIGITS);
	ret->used = (int64_t)get64(buf + OFF_USED);
	return 0;
}

void totp_recovery_encode(const struct totp_recovery *r, uint8_t out[TOTP_RECOVERY_SIZE])
{
	memcpy(out, TOTP_RECOVERY_MAGIC, 8);
	put64(out + 8, r->rid);
	put64(out + 16, (uint64_t)r->until);
	memcpy(out + 24, r->code, TOTP_RECOVERY_DIGITS);
	put64(out + OFF_USED, (uint64_t)r->used);
}

bool totp_recovery_normalize(const char *in, char out[TOTP_RECOVERY_DIGITS + 1])
{
	size_t n = 0;

	for (const char *p = in; p && *p; p++) {
		if (*p == '-' || *p == ' ')
			continue;
		if (*p < '0' || *p > '9' || n == TOTP_RECOVERY_DIGITS) {
			secmem_wipe(out, TOTP_RECOVERY_DIGITS + 1);
			return false;
		}
		out[n++] = *p;
	}
	out[n] = 0;
	return n == TOTP_RECOVERY_DIGITS;
}

static int file_name(const char *user, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s%s%s", TOTP_STORE_LOCK_PREFIX, user, TOTP_RECOVERY_SUFFIX);
	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

bool totp_recovery_exists(int dirfd, const char *user)
{
	char name[TOTP_USER_MAX + 16];
	struct stat st;

	return file_name(user, name, sizeof(name)) == 0 &&
	       fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int open_file(int dirfd, const char *user, uid_t owner, int flags, int *ret_fd,
		     struct totp_recovery *ret)
{
	const struct fileio_expect e = {.check_owner = true, .uid = owner, .forbidden_mode = 0077};
	char name[TOTP_USER_MAX + 16];
	uint8_t buf[TOTP_RECOVERY_SIZE + 1];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	int r = file_name(user, name, sizeof(name));

	if (r >= 0)
		r = fileio_open_verified(dirfd, name, flags, &e, &fd);
	if (r < 0)
		return r;
	n = pread(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return negative_errno();
	r = totp_recovery_decode(buf, (size_t)n, ret);
	secmem_wipe(buf, sizeof(buf));
	if (r >= 0 && ret_fd)
		*ret_fd = TAKE_FD(fd);
	return r;
}

int totp_recovery_read(int dirfd, const char *user, uid_t owner, struct totp_recovery *ret)
{
	return open_file(dirfd, user, owner, O_RDONLY, NULL, ret);
}

int totp_recovery_write(int dirfd, const char *user, const struct totp_recovery *r)
{
	char name[TOTP_USER_MAX + 16];
	uint8_t buf[TOTP_RECOVERY_SIZE];
	int k = file_name(user, name, sizeof(name));

	if (k < 0)
		return k;
	totp_recovery_encode(r, buf);
	k = fileio_write_atomic(dirfd, name, buf, sizeof(buf), 0600, (uid_t)-1, (gid_t)-1);
	secmem_wipe(buf, sizeof(buf));
	return k;
}

int totp_recovery_try(int dirfd, const char *user, uid_t owner, const char *code, int64_t now,
		      enum totp_recovery_result *ret, uint64_t *ret_rid)
{
	_cleanup_close_ int fd = -1;
	struct totp_recovery rec;
	uint8_t used[8];
	int r = open_file(dirfd, user, owner, O_RDWR, &fd, &rec);

	if (r == -ENOENT) {
		*ret = TOTP_RECOVERY_NONE;
		return 0;
	}
	if (r < 0)
		return r;
	if (!secmem_equal(rec.code, code, TOTP_RECOVERY_DIGITS))
		*ret = TOTP_RECOVERY_WRONG;
	else if (rec.used != 0)
		*ret = TOTP_RECOVERY_USED;
	else if (now >= rec.until)
		*ret = TOTP_RECOVERY_EXPIRED;
	else
		*ret = TOTP_RECOVERY_OK;
	*ret_rid = rec.rid;
	secmem_wipe(&rec, sizeof(rec));
	if (*ret != TOTP_RECOVERY_OK)
		return 0;
	/* used before success: a crash after this line costs the code, never reuses it */
	put64(used, (uint64_t)(now > 0 ? now : 1));
	if (pwrite(fd, used, sizeof(used), OFF_USED) != (ssize_t)sizeof(used) || fdatasync(fd) < 0)
		return -EIO;
	return 0;
}
