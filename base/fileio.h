/* SPDX-License-Identifier: MIT */
/* Bounded reads, atomic durable writes, open-and-verify. libc only; never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* What a file or directory must look like to be trusted. */
struct fileio_expect {
	bool check_owner; /* owner must be uid */
	uid_t uid;
	mode_t
	    forbidden_mode; /* bits that must be clear, e.g. 0077 (no group/other access) or 0022 */
};

/* Read all of fd into a NUL-terminated buffer of at most max bytes.
 * -EFBIG when the file holds more than max bytes. */
int fileio_read_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* Open path (relative to dirfd, or absolute) and read it, at most max bytes. Follows symlinks;
 * use fileio_open_verified first where the file must be trusted. */
int fileio_read_file(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len);

/* Open a regular file with O_NOFOLLOW|O_CLOEXEC and flags, then check it with fstat:
 *   -ELOOP   path is a symlink
 *   -EBADFD  not a regular file
 *   -EPERM   wrong owner
 *   -EACCES  a forbidden mode bit is set
 * e may be NULL (only the symlink and type checks). */
int fileio_open_verified(int dirfd, const char *path, int flags, const struct fileio_expect *e,
			 int *ret_fd);

/* Same for a directory (O_DIRECTORY|O_NOFOLLOW); -ENOTDIR when it is not one. */
int fileio_open_dir_verified(int dirfd, const char *path, const struct fileio_expect *e,
			     int *ret_fd);

/* Check an already open fd against e (and that it is a regular file or a directory, per want_dir). */
int fileio_verify_fd(int fd, bool want_dir, const struct fileio_expect *e);

/* Replace dirfd/name with data atomically and durably: write a temp file in the same directory
 * (mode applied with fchmod, so the caller's umask does not matter; owner set when uid/gid are
 * not (uid_t)-1/(gid_t)-1), fsync it, rename over name, fsync the directory. On any failure the
 * old file is untouched and the temp file is removed. */
int fileio_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			uid_t uid, gid_t gid);

/* Convenience: split path into directory and name and call fileio_write_atomic. */
int fileio_write_atomic_path(const char *path, const void *data, size_t len, mode_t mode);

/* write() all of buf, retrying on EINTR and short writes. */
int fileio_write_all(int fd, const void *buf, size_t len);

/* flock(fd, LOCK_EX), retrying on EINTR. 0 or -errno. */
int fileio_lock_exclusive(int fd);
