/* SPDX-License-Identifier: MIT */
/* Bounded reads, atomic durable writes, open-and-verify. libc only; never logs. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

int fileio_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fileio_lock_exclusive(int fd)
{
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return negative_errno();
	return 0;
}

int fileio_read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	if (max >= SIZE_MAX - 1)
		return -EINVAL;
	for (;;) {
		ssize_t n;
		if (len == cap) {
			/* Grow geometrically but never past max + 1: one extra byte detects overlong files. */
			size_t ncap = cap ? cap * 2 : 4096;
			char *nbuf;
			if (ncap > max + 1)
				ncap = max + 1;
			if (ncap <= cap)
				return -EFBIG;
			nbuf = realloc(buf, ncap + 1);
			if (!nbuf)
				return -ENOMEM;
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf)
			return -ENOMEM;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int fileio_read_file(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return negative_errno();
	return fileio_read_fd(fd, max, ret, ret_len);
}

int fileio_verify_fd(int fd, bool want_dir, const struct fileio_expect *e)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		return want_dir ? -ENOTDIR : -EBADFD;
	if (!e)
		return 0;
	if (e->check_owner && st.st_uid != e->uid)
		return -EPERM;
	if (st.st_mode & e->forbidden_mode)
		return -EACCES;
	return 0;
}

static int open_nofollow(int dirfd, const char *path, int flags, int *ret_fd)
{
	int fd = openat(dirfd, path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);

	if (fd < 0) {
		/* O_NOFOLLOW on a symlink gives ELOOP; O_DIRECTORY|O_NOFOLLOW on a symlink to a
		 * directory gives ENOTDIR: tell the caller it is a link in both cases. */
		if (errno == ENOTDIR && (flags & O_DIRECTORY)) {
			struct stat st;
			if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				return -ELOOP;
			return -ENOTDIR;
		}
		return negative_errno();
	}
	*ret_fd = fd;
	return 0;
}

int fileio_open_verified(int dirfd, const char *path, int flags, const struct fileio_expect *e,
			 int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	int r;

	/* O_NONBLOCK so that opening a FIFO planted in place of the file cannot hang us. */
	r = open_nofollow(dirfd, path, flags | O_NONBLOCK, &fd);
	if (r < 0)
		return r;
	r = fileio_verify_fd(fd, false, e);
	if (r < 0)
		return r;
	if (!(flags & O_NONBLOCK)) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
			return negative_errno();
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int fileio_open_dir_verified(int dirfd, const char *path, const struct fileio_expect *e,
			     int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	int r;

	r = open_nofollow(dirfd, path, O_RDONLY | O_DIRECTORY, &fd);
	if (r < 0)
		return r;
	r = fileio_verify_fd(fd, true, e);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int fileio_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			uid_t uid, gid_t gid)
{
	char tmp[256];
	uint64_t rnd;
	_cleanup_close_ int fd = -1;
	int r;

	if (!name || !*name || strchr(name, '/') || strlen(name) > 200)
		return -EINVAL;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&rnd;
	snprintf(tmp, sizeof(tmp), ".%s.%016llx.tmp", name, (unsigned long long)rnd);

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return negative_errno();

	r = fileio_write_all(fd, data, len);
	if (r >= 0 && (uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0)
		r = negative_errno();
	if (r >= 0 && fchmod(fd, mode) < 0)
		r = negative_errno();
	if (r >= 0 && fsync(fd) < 0)
		r = negative_errno();
	if (r >= 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = negative_errno();
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	if (fsync(dirfd) < 0)
		return negative_errno();
	return 0;
}

int fileio_write_atomic_path(const char *path, const void *data, size_t len, mode_t mode)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_close_ int dfd = -1;
	const char *slash, *name;

	if (!path)
		return -EINVAL;
	slash = strrchr(path, '/');
	if (slash) {
		dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
		if (!dir)
			return -ENOMEM;
		name = slash + 1;
	} else {
		dir = strdup(".");
		if (!dir)
			return -ENOMEM;
		name = path;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return negative_errno();
	return fileio_write_atomic(dfd, name, data, len, mode, (uid_t)-1, (gid_t)-1);
}
