/* SPDX-License-Identifier: MIT */
/* The TOTP store: verified directory, per-user lock files, record read/write. Never logs. */
#include "totp_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "secmem.h"

int totp_store_open(const char *path, uid_t owner, int *ret_dirfd)
{
	const struct fileio_expect e = {.check_owner = true, .uid = owner, .forbidden_mode = 0022};

	if (!path || path[0] == '\0')
		return -EINVAL;
	return fileio_open_dir_verified(AT_FDCWD, path, &e, ret_dirfd);
}

static int lock_name(const char *user, char *buf, size_t size)
{
	int n;

	if (!totp_user_valid(user))
		return -EINVAL;
	n = snprintf(buf, size, TOTP_STORE_LOCK_PREFIX "%s" TOTP_STORE_LOCK_SUFFIX, user);
	if (n < 0 || (size_t)n >= size)
		return -EINVAL;
	return 0;
}

int totp_store_lock(int dirfd, const char *user, uid_t owner, int *ret_lockfd)
{
	const struct fileio_expect e = {.check_owner = true, .uid = owner, .forbidden_mode = 0077};
	char name[TOTP_USER_MAX + 16];
	_cleanup_close_ int fd = -1;
	int r;

	r = lock_name(user, name, sizeof(name));
	if (r < 0)
		return r;
	/* O_CREAT without O_EXCL: whoever comes first creates it; nobody ever unlinks it, so every
	 * process locks the same inode. */
	fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		    0600);
	if (fd < 0) {
		if (errno != EROFS)
			return negative_errno();
		/* A read-only store can still be locked (and then fail on the write). */
		r = fileio_open_verified(dirfd, name, O_RDONLY, &e, &fd);
		if (r < 0)
			return r;
	} else {
		r = fileio_verify_fd(fd, false, &e);
		if (r < 0)
			return r;
	}
	r = fileio_lock_exclusive(fd);
	if (r < 0)
		return r;
	*ret_lockfd = TAKE_FD(fd);
	return 0;
}

int totp_store_exists(int dirfd, const char *user)
{
	struct stat st;

	if (!totp_user_valid(user))
		return -EINVAL;
	if (fstatat(dirfd, user, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : negative_errno();
	return 1;
}

int totp_store_open_record(int dirfd, const char *user, uid_t owner, int flags, int *ret_fd)
{
	const struct fileio_expect e = {.check_owner = true, .uid = owner, .forbidden_mode = 0077};

	int r;

	if (!totp_user_valid(user))
		return -EINVAL;
	r = fileio_open_verified(dirfd, user, flags, &e, ret_fd);
	/* Opening a directory for writing fails before the type check: same verdict. */
	return r == -EISDIR ? -EBADFD : r;
}

int totp_store_read_fd(int fd, struct totp_record *ret)
{
	char buf[TOTP_RECORD_MAX_SIZE + 1];
	size_t len = 0;
	int r;

	/* A record is tiny: read into the stack so no heap copy of the secret is left behind. */
	for (;;) {
		ssize_t n = pread(fd, buf + len, sizeof(buf) - len, (off_t)len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = negative_errno();
			secmem_wipe(buf, sizeof(buf));
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf)) {
			/* A newer version may be larger: say so rather than "corrupt". */
			r = totp_record_version(buf, len) > TOTP_RECORD_VERSION ? -EPROTONOSUPPORT
										: -EFBIG;
			secmem_wipe(buf, sizeof(buf));
			return r;
		}
	}
	r = totp_record_parse(buf, len, ret);
	secmem_wipe(buf, sizeof(buf));
	return r;
}

int totp_store_read(int dirfd, const char *user, uid_t owner, struct totp_record *ret)
{
	_cleanup_close_ int fd = -1;
	int r;

	r = totp_store_open_record(dirfd, user, owner, O_RDONLY, &fd);
	if (r < 0)
		return r;
	return totp_store_read_fd(fd, ret);
}

int totp_store_update(int fd, struct totp_record *rec)
{
	char line[TOTP_SLOT_LEN_MAX + 1];
	size_t off, len;
	ssize_t n;
	int r;

	r = totp_record_next_slot(rec, line, &len, &off);
	if (r < 0)
		return r;
	do
		n = pwrite(fd, line, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return negative_errno();
	if ((size_t)n != len)
		return -EIO;
	/* Same size, same blocks: fdatasync flushes the data without a journal commit. */
	if (fdatasync(fd) < 0)
		return negative_errno();
	totp_record_slot_written(rec);
	return 0;
}

int totp_store_write(int dirfd, const char *user, const struct totp_record *rec)
{
	char buf[TOTP_RECORD_MAX_SIZE];
	size_t len;
	int r;

	if (!totp_user_valid(user))
		return -EINVAL;
	r = totp_record_format(rec, buf, sizeof(buf), &len);
	if (r < 0)
		return r;
	r = fileio_write_atomic(dirfd, user, buf, len, 0600, (uid_t)-1, (gid_t)-1);
	secmem_wipe(buf, sizeof(buf));
	return r;
}

int totp_store_remove(int dirfd, const char *user)
{
	if (!totp_user_valid(user))
		return -EINVAL;
	if (unlinkat(dirfd, user, 0) < 0)
		return negative_errno();
	if (fsync(dirfd) < 0)
		return negative_errno();
	return 0;
}

const char *totp_store_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case ENOENT:
		return "no such file";
	case ELOOP:
		return "is a symlink";
	case EBADFD:
		return "is not a regular file";
	case ENOTDIR:
		return "is not a directory";
	case EPERM:
		return "has the wrong owner";
	case EACCES:
		return "is not accessible or has group/other mode bits";
	case EBADMSG:
		return "is corrupt";
	case EFBIG:
		return "is too large (corrupt)";
	case EPROTONOSUPPORT:
		return "was written by a newer mynaguard (unknown record version); upgrade";
	case ENOMEM:
		return "out of memory";
	case ENOSPC:
		return "no space left on device";
	case EDQUOT:
		return "disk quota exceeded";
	case EROFS:
		return "read-only file system";
	case EIO:
		return "I/O error";
	case EINVAL:
		return "invalid name or value";
	default:
		return strerror(err < 0 ? -err : err);
	}
}
