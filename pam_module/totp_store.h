/* SPDX-License-Identifier: MIT */
/* The TOTP store: a directory of per-user records, each with a lock file that is never unlinked.
 * Used by the module, the helper and mynaguardctl. libc + base only; never logs. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "totp_record.h"

#define TOTP_STORE_LOCK_PREFIX	 "."
#define TOTP_STORE_LOCK_SUFFIX	 ".lock"
#define TOTP_STORE_PENDING	 ".pending-events"
#define TOTP_STORE_PENDING_DROPS ".pending-events.dropped"
#define TOTP_STORE_PENDING_MAX	 (1024 * 1024)

/* Open the store directory. It must be a real directory (not a symlink), owned by owner, and
 * not writable by group or other. Errors: -ENOENT, -ELOOP (symlink), -ENOTDIR, -EPERM (owner),
 * -EACCES (group/other may write), other -errno. */
int totp_store_open(const char *path, uid_t owner, int *ret_dirfd);

/* Open (creating when missing, mode 0600) STORE/.USER.lock and take an exclusive flock on it.
 * The lock is released when the returned fd is closed. The file is checked like a record. */
int totp_store_lock(int dirfd, const char *user, uid_t owner, int *ret_lockfd);

/* true when a record for user exists (as any kind of directory entry). Does not read it. */
int totp_store_exists(int dirfd, const char *user);

/* Read and parse STORE/USER. Errors: -ENOENT (no record), -ELOOP (symlink), -EBADFD (not a
 * regular file), -EPERM (owner), -EACCES (group/other bits), -EBADMSG/-EFBIG (corrupt),
 * -EPROTONOSUPPORT (written by a newer mynaguard: a record version this build does not know),
 * other -errno (-ENOMEM, -EIO). */
int totp_store_read(int dirfd, const char *user, uid_t owner, struct totp_record *ret);

/* Open STORE/USER (O_RDONLY or O_RDWR) and check it like totp_store_read does. */
int totp_store_open_record(int dirfd, const char *user, uid_t owner, int flags, int *ret_fd);

/* Read and parse an open record (from offset 0). */
int totp_store_read_fd(int fd, struct totp_record *ret);

/* Write r's state into the record's other slot in place and fdatasync it; then that slot is
 * current in r. Needs no new disk space and no rename. Call with the user's lock held, on an
 * fd opened O_RDWR, with r as read from it. */
int totp_store_update(int fd, struct totp_record *r);

/* Replace STORE/USER with a new record atomically and durably (temp file, fsync, rename, fsync
 * dir), mode 0600. For enrollment. Call with the user's lock held. */
int totp_store_write(int dirfd, const char *user, const struct totp_record *r);

/* Remove STORE/USER (the lock file stays). Call with the lock held. -ENOENT when absent. */
int totp_store_remove(int dirfd, const char *user);

/* A short English phrase for a store error, for logs: "record has the wrong owner". */
const char *totp_store_strerror(int err);
