/* SPDX-License-Identifier: MIT */
/* The spool on disk: record framing, the agent's appending and trimming writer, the uplink's
 * reader. Never logs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "fileio.h"
#include "macro.h"
#include "parse.h"
#include "spool.h"

/* ---- record codec ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint32_t record_crc(const uint8_t *header, const void *payload, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);
	c = crc32(c, header, 16);
	c = crc32(c, payload, (uInt)len);
	return (uint32_t)c;
}

const char *spool_strerror(int r)
{
	if (r == -EPROTONOSUPPORT)
		return "the spool was written by a newer mynaguard (a later spool format than "
		       "format 1, which this version reads); it is left untouched: install the "
		       "newer version again, or move the spool directory aside";
	return strerror(r < 0 ? -r : r);
}

size_t spool_record_size(size_t payload_len)
{
	return SPOOL_HEADER_SIZE + payload_len;
}

#define LEN_MASK    0x00ffffffU
#define CLASS_SHIFT 24

int spool_record_encode(uint64_t seq, enum spool_class cls, const void *payload, size_t len,
			uint8_t *buf)
{
	if (len == 0 || len > EVENT_MAX_BYTES || (unsigned)cls >= _SPOOL_CLASS_MAX)
		return -EINVAL;
	put_u32(buf, SPOOL_MAGIC);
	put_u32(buf + 4, (uint32_t)len | (uint32_t)cls << CLASS_SHIFT);
	put_u64(buf + 8, seq);
	memcpy(buf + SPOOL_HEADER_SIZE, payload, len);
	put_u32(buf + 16, record_crc(buf, payload, len));
	return 0;
}

static int header_check(const uint8_t *buf, size_t len, uint32_t *ret_plen,
			enum spool_class *ret_cls)
{
	/* Judge what is there: a torn header is "incomplete" only if its bytes so far agree. */
	uint8_t magic[4];
	put_u32(magic, SPOOL_MAGIC);
	if (memcmp(buf, magic, len < 4 ? len : 4) != 0) {
		/* "MGS" and a later version byte: a newer format, not damage (spool.h). */
		if (len >= 4 && memcmp(buf, magic, 3) == 0 && buf[3] > magic[3] && buf[3] <= '9')
			return -EPROTONOSUPPORT;
		return -EBADMSG;
	}
	if (len < 8)
		return 0;
	uint32_t word = get_u32(buf + 4);
	uint32_t plen = word & LEN_MASK, cls = word >> CLASS_SHIFT;
	if (plen == 0 || plen > EVENT_MAX_BYTES || cls >= _SPOOL_CLASS_MAX)
		return -EBADMSG;
	*ret_plen = plen;
	if (ret_cls)
		*ret_cls = (enum spool_class)cls;
	return 1;
}

int spool_record_parse(const uint8_t *buf, size_t len, struct spool_record *ret)
{
	uint32_t plen = 0;
	enum spool_class cls = SPOOL_CLASS_PROTECTED;
	int r = header_check(buf, len, &plen, &cls);
	if (r <= 0)
		return r;
	if (len < SPOOL_HEADER_SIZE + (size_t)plen)
		return 0;
	if (get_u32(buf + 16) != record_crc(buf, buf + SPOOL_HEADER_SIZE, plen))
		return -EBADMSG;
	*ret = (struct spool_record){
	    .seq = get_u64(buf + 8),
	    .payload = (const char *)buf + SPOOL_HEADER_SIZE,
	    .len = plen,
	    .cls = cls,
	};
	return SPOOL_HEADER_SIZE + (int)plen;
}

/* ---- names, sizes, acked ---- */

void spool_segment_name(uint64_t first_seq, char buf[static SPOOL_SEGMENT_NAME_LEN + 1])
{
	snprintf(buf, SPOOL_SEGMENT_NAME_LEN + 1, SPOOL_SEGMENT_PREFIX "%020" PRIu64, first_seq);
}

int spool_segment_parse_name(const char *name, uint64_t *ret_first_seq)
{
	if (strlen(name) != SPOOL_SEGMENT_NAME_LEN ||
	    strncmp(name, SPOOL_SEGMENT_PREFIX, strlen(SPOOL_SEGMENT_PREFIX)) != 0)
		return -EINVAL;
	const char *d = name + strlen(SPOOL_SEGMENT_PREFIX);
	for (const char *p = d; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	return parse_uint64(d, 0, UINT64_MAX, ret_first_seq);
}

uint64_t spool_segment_bytes(uint64_t max_bytes)
{
	uint64_t s = max_bytes / 16;
	if (s < SPOOL_SEGMENT_MIN)
		s = SPOOL_SEGMENT_MIN;
	if (s > SPOOL_SEGMENT_MAX)
		s = SPOOL_SEGMENT_MAX;
	return s;
}

int spool_parse_acked(const char *text, size_t len, uint64_t *ret)
{
	char buf[24];
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len == 0 || len > 20)
		return -EBADMSG;
	for (size_t i = 0; i < len; i++)
		if (text[i] < '0' || text[i] > '9')
			return -EBADMSG;
	memcpy(buf, text, len);
	buf[len] = 0;
	uint64_t v;
	if (parse_uint64(buf, 0, INT64_MAX, &v) < 0)
		return -EBADMSG;
	*ret = v;
	return 0;
}

static int read_acked_at(int dirfd, const char *path, uint64_t *ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *text = NULL;
	size_t len;

	/* O_NONBLOCK: a FIFO planted there must not hang the reader (it is refused after fstat). */
	int r = fileio_open_verified(dirfd, path, O_RDONLY | O_NONBLOCK, NULL, &fd);
	if (r < 0)
		return r;
	r = fileio_read_fd(fd, 64, &text, &len);
	if (r == -EFBIG)
		return -EBADMSG;
	if (r < 0)
		return r;
	return spool_parse_acked(text, len, ret);
}

int spool_read_acked(int dirfd, uint64_t *ret)
{
	int r = read_acked_at(dirfd, SPOOL_ACKED_PATH, ret);
	if (r == -ENOENT || r == -ENOTDIR)
		r = read_acked_at(dirfd, SPOOL_ACKED_FILE, ret);
	if (r == -ENOENT || r == -ENOTDIR) {
		*ret = 0;
		return 0;
	}
	return r;
}

static int open_ack_dir(int dirfd, int *ret_fd)
{
	int r = fileio_open_dir_verified(dirfd, SPOOL_ACK_DIR, NULL, ret_fd);
	if (r != -ENOENT)
		return r;
	/* Not made yet (the agent makes it at start, the installer at install): possible only
	 * while the spool directory is still writable by us, i.e. a spool laid out before. */
	if (mkdirat(dirfd, SPOOL_ACK_DIR, 0750) < 0 && errno != EEXIST)
		return negative_errno();
	return fileio_open_dir_verified(dirfd, SPOOL_ACK_DIR, NULL, ret_fd);
}

int spool_write_acked(int dirfd, uint64_t acked)
{
	char buf[32];
	_cleanup_close_ int afd = -1;
	int r = open_ack_dir(dirfd, &afd);
	if (r < 0)
		return r;
	int n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", acked);
	return fileio_write_atomic(afd, SPOOL_ACKED_FILE, buf, (size_t)n, 0644, (uid_t)-1,
				   (gid_t)-1);
}

/* Replace ack/acked atomically but without waiting for the disk. Losing it to a power cut only
 * moves it back: those events are sent again and the collector keeps one copy. */
static int write_acked_fast(int dirfd, uint64_t acked)
{
	char buf[32];
	_cleanup_close_ int afd = -1;
	int r = open_ack_dir(dirfd, &afd);
	if (r < 0)
		return r;
	int n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", acked);
	_cleanup_close_ int fd =
	    openat(afd, SPOOL_ACKED_FILE ".tmp",
		   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return negative_errno();
	r = fileio_write_all(fd, buf, (size_t)n);
	if (r < 0)
		return r;
	if (renameat(afd, SPOOL_ACKED_FILE ".tmp", afd, SPOOL_ACKED_FILE) < 0)
		return negative_errno();
	return 0;
}

/* ---- listing segments ---- */

struct segment {
	uint64_t first;
	uint64_t size;
};

static int cmp_segment(const void *a, const void *b)
{
	uint64_t x = ((const struct segment *)a)->first, y = ((const struct segment *)b)->first;
	return x < y ? -1 : x > y;
}

/* Sorted list of segment files in dirfd. With owner_uid != -1, files not owned by it (or with
 * more than one link) are left out and counted in *ret_foreign. */
static int list_segments(int dirfd, uid_t owner_uid, struct segment **ret, size_t *ret_n,
			 uint64_t *ret_foreign)
{
	int fd = dup(dirfd);
	if (fd < 0)
		return negative_errno();
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return negative_errno();
	}
	rewinddir(d);
	struct segment *segs = NULL;
	size_t n = 0, cap = 0;
	uint64_t foreign = 0;
	struct dirent *de;
	int r = 0;
	while ((errno = 0, de = readdir(d))) {
		uint64_t first;
		struct stat st;
		if (spool_segment_parse_name(de->d_name, &first) < 0)
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			r = negative_errno();
			break;
		}
		if (!S_ISREG(st.st_mode) ||
		    (owner_uid != (uid_t)-1 && (st.st_uid != owner_uid || st.st_nlink != 1))) {
			foreign++;
			continue;
		}
		if (n >= SPOOL_MAX_SEGMENTS) {
			r = -E2BIG;
			break;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct segment *ns = realloc(segs, nc * sizeof *ns);
			if (!ns) {
				r = -ENOMEM;
				break;
			}
			segs = ns;
			cap = nc;
		}
		segs[n++] = (struct segment){.first = first, .size = (uint64_t)st.st_size};
	}
	if (r == 0 && errno != 0)
		r = negative_errno();
	closedir(d);
	if (r < 0) {
		free(segs);
		return r;
	}
	if (n > 1)
		qsort(segs, n, sizeof *segs, cmp_segment);
	*ret = segs;
	*ret_n = n;
	if (ret_foreign)
		*ret_foreign = foreign;
	return 0;
}

static int open_segment(int dirfd, uint64_t first, int flags, uid_t owner, int *ret_fd)
{
	char name[SPOOL_SEGMENT_NAME_LEN + 1];
	struct fileio_expect e = {.check_owner = owner != (uid_t)-1, .uid = owner};
	_cleanup_close_ int fd = -1;

	spool_segment_name(first, name);
	int r = fileio_open_verified(dirfd, name, flags, owner != (uid_t)-1 ? &e : NULL, &fd);
	if (r < 0)
		return r;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (owner != (uid_t)-1 && st.st_nlink != 1)
		return -EPERM;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* Read a whole segment (bounded) into memory. */
static int read_segment(int fd, uint8_t **ret, size_t *ret_len)
{
	char *buf;
	size_t len;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return negative_errno();
	int r = fileio_read_fd(fd, SPOOL_SEGMENT_MAX + 2 * SPOOL_RECORD_MAX, &buf, &len);
	if (r < 0)
		return r;
	*ret = (uint8_t *)buf;
	*ret_len = len;
	return 0;
}

/* Walk the records of buf: count, last seq, and where the valid prefix ends. */
struct scan {
	size_t valid_end;
	uint64_t records;
	uint64_t last_seq;
	uint64_t unpriv_bytes;
	bool corrupt; /* stopped at bad bytes rather than at the end or a torn tail */
	bool newer;   /* stopped at a record of a newer format (spool.h) */
};

static void scan_buffer(const uint8_t *buf, size_t len, uint64_t above, uint64_t *ret_count_above,
			uint64_t *ret_min_above, struct scan *ret)
{
	struct scan s = {0};
	uint64_t count_above = 0, min_above = 0;
	size_t off = 0;
	for (;;) {
		struct spool_record rec;
		int r = spool_record_parse(buf + off, len - off, &rec);
		if (r == -EPROTONOSUPPORT)
			s.newer = true;
		else if (r < 0)
			s.corrupt = true;
		if (r <= 0)
			break;
		off += (size_t)r;
		s.records++;
		s.last_seq = rec.seq;
		if (rec.cls == SPOOL_CLASS_UNPRIVILEGED)
			s.unpriv_bytes += (uint64_t)r;
		if (rec.seq > above) {
			if (count_above == 0)
				min_above = rec.seq;
			count_above++;
		}
	}
	s.valid_end = off;
	*ret = s;
	if (ret_count_above)
		*ret_count_above = count_above;
	if (ret_min_above)
		*ret_min_above = min_above;
}

static int fsync_dir(int dirfd)
{
	return fsync(dirfd) < 0 ? negative_errno() : 0;
}

/* ---- writer ---- */

struct wseg {
	uint64_t first;
	uint64_t size;
	uint64_t unpriv; /* bytes of unprivileged records in it */
};

struct spool_writer {
	int dirfd;
	uid_t uid;
	gid_t gid; /* group of the directory: segments are readable by it */
	uint64_t max_bytes;
	uint64_t segment_bytes;
	/* Every segment of ours, oldest first. Only the agent creates or deletes them, so this list
	 * is the truth; the last one is the head while head_fd >= 0. */
	struct wseg *segs;
	size_t nsegs, cap;
	int head_fd; /* -1 = no segment yet */
	uint64_t total_bytes;
	uint64_t unpriv_bytes;
	uint64_t last_seq; /* 0 = none */
	uint64_t next_seq;
	uint64_t acked; /* the uplink's last accepted acknowledgement */
	int refused;	/* the last refusal (0 = the last read was accepted) */
	uint64_t refused_value;
	bool refusal_unreported;
	bool head_dirty;
	bool head_torn; /* a failed write may have left bytes after the head's size */
};

static struct wseg *writer_head(struct spool_writer *w)
{
	return w->head_fd >= 0 && w->nsegs > 0 ? &w->segs[w->nsegs - 1] : NULL;
}

static int writer_push(struct spool_writer *w, struct wseg seg)
{
	if (w->nsegs >= SPOOL_MAX_SEGMENTS)
		return -E2BIG;
	if (w->nsegs == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 16;
		struct wseg *ns = realloc(w->segs, nc * sizeof *ns);
		if (!ns)
			return -ENOMEM;
		w->segs = ns;
		w->cap = nc;
	}
	w->segs[w->nsegs++] = seg;
	w->total_bytes += seg.size;
	w->unpriv_bytes += seg.unpriv;
	return 0;
}

/* Forget segs[i] (its file is gone). */
static void writer_forget(struct spool_writer *w, size_t i)
{
	w->total_bytes -= w->segs[i].size < w->total_bytes ? w->segs[i].size : w->total_bytes;
	w->unpriv_bytes -=
	    w->segs[i].unpriv < w->unpriv_bytes ? w->segs[i].unpriv : w->unpriv_bytes;
	memmove(w->segs + i, w->segs + i + 1, (w->nsegs - i - 1) * sizeof *w->segs);
	w->nsegs--;
}

static int writer_create_segment(struct spool_writer *w, uint64_t first)
{
	char name[SPOOL_SEGMENT_NAME_LEN + 1];
	spool_segment_name(first, name);
	_cleanup_close_ int fd = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		fd = openat(w->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0640);
		if (fd >= 0 || errno != EEXIST || attempt > 0)
			break;
		/* Not one of ours (we never reuse a first number): only the agent may create
		 * files here, so whatever was planted under our next name goes. */
		if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT)
			return negative_errno();
	}
	if (fd < 0)
		return negative_errno();
	if (fchmod(fd, 0640) < 0 || (w->gid != (gid_t)-1 && fchown(fd, (uid_t)-1, w->gid) < 0)) {
		int r = negative_errno();
		unlinkat(w->dirfd, name, 0);
		return r;
	}
	int r = fsync_dir(w->dirfd);
	if (r < 0)
		return r;
	if (w->head_fd >= 0) {
		if (w->head_dirty && fdatasync(w->head_fd) < 0)
			return negative_errno();
		close(w->head_fd);
		w->head_fd = -1;
	}
	r = writer_push(w, (struct wseg){.first = first});
	if (r < 0) {
		unlinkat(w->dirfd, name, 0);
		return r;
	}
	w->head_fd = TAKE_FD(fd);
	w->head_dirty = false;
	w->head_torn = false;
	return 0;
}

/* The uplink owns what is inside ack/ and inbox/, never the spool directory: make them when
 * missing (0770, the spool directory's group). Errors only mean the uplink cannot report
 * progress or hand over a fleet bundle. */
static void ensure_shared_dir(int dirfd, const char *name, gid_t gid)
{
	if (mkdirat(dirfd, name, 0770) < 0)
		return;
	_cleanup_close_ int fd = -1;
	if (fileio_open_dir_verified(dirfd, name, NULL, &fd) < 0)
		return;
	if (fchown(fd, (uid_t)-1, gid) < 0)
		return;
	(void)fchmod(fd, 0770);
}

/* Open the spool directory; only the agent may create or remove files here, so it must be ours.
 * Makes ack/ and inbox/ when missing. */
static int open_own_dir(const char *dir, int *ret_fd, struct stat *ret_st)
{
	_cleanup_close_ int dirfd = -1;
	int r = fileio_open_dir_verified(AT_FDCWD, dir, NULL, &dirfd);

	if (r < 0)
		return r;
	if (fstat(dirfd, ret_st) < 0)
		return negative_errno();
	if (ret_st->st_uid != geteuid())
		return -EPERM;
	ensure_shared_dir(dirfd, SPOOL_ACK_DIR, ret_st->st_gid);
	ensure_shared_dir(dirfd, SPOOL_INBOX_DIR, ret_st->st_gid);
	*ret_fd = TAKE_FD(dirfd);
	return 0;
}

int spool_prepare_dir(const char *dir)
{
	_cleanup_close_ int dirfd = -1;
	struct stat dst;

	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return negative_errno();
	return open_own_dir(dir, &dirfd, &dst);
}

/* Read the uplink's acknowledgement and take it when it is believable. */
static void writer_read_ack(struct spool_writer *w)
{
	uint64_t v = 0;
	int r = spool_read_acked(w->dirfd, &v);
	if (r == 0 && v > w->last_seq)
		r = -ERANGE;
	if (r == 0) {
		if (v > w->acked)
			w->acked = v;
		w->refused = 0;
		return;
	}
	if (r != w->refused || (r == -ERANGE && v != w->refused_value))
		w->refusal_unreported = true;
	w->refused = r;
	w->refused_value = r == -ERANGE ? v : 0;
}

int spool_writer_open(const char *dir, uint64_t max_bytes, struct spool_writer **ret,
		      struct spool_recovery *ret_info)
{
	struct spool_recovery info = {0};
	_cleanup_close_ int dirfd = -1;
	_cleanup_free_ struct segment *segs = NULL;
	size_t n = 0;

	if (max_bytes < 2 * SPOOL_RECORD_MAX)
		return -EINVAL;
	struct stat dst;
	int r = open_own_dir(dir, &dirfd, &dst);
	if (r < 0)
		return r;
	if (dst.st_mode & 0022) {
		if (fchmod(dirfd, dst.st_mode & 07755) < 0)
			return negative_errno();
		info.dir_mode_fixed = dst.st_mode & 07777;
	}

	struct spool_writer *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	*w = (struct spool_writer){
	    .dirfd = -1,
	    .uid = geteuid(),
	    .gid = dst.st_gid,
	    .max_bytes = max_bytes,
	    .segment_bytes = spool_segment_bytes(max_bytes),
	    .head_fd = -1,
	};

	r = list_segments(dirfd, w->uid, &segs, &n, &info.foreign);
	if (r < 0)
		goto fail;
	info.segments = n;
	w->dirfd = TAKE_FD(dirfd);
	/* Older segments: only their class bytes matter (they were synced before the next one
	 * was made). One that cannot be read counts as protected: it is never dropped for
	 * unprivileged records. */
	for (size_t i = 0; i + 1 < n; i++) {
		_cleanup_close_ int fd = -1;
		_cleanup_free_ uint8_t *buf = NULL;
		size_t len;
		struct scan s = {0};
		if (open_segment(w->dirfd, segs[i].first, O_RDONLY, w->uid, &fd) == 0 &&
		    read_segment(fd, &buf, &len) == 0)
			scan_buffer(buf, len, 0, NULL, NULL, &s);
		if (s.newer) {
			r = -EPROTONOSUPPORT;
			goto fail;
		}
		r = writer_push(w, (struct wseg){.first = segs[i].first,
						 .size = segs[i].size,
						 .unpriv = s.unpriv_bytes});
		if (r < 0)
			goto fail;
	}
	if (n > 0) {
		struct segment *h = &segs[n - 1];
		_cleanup_free_ uint8_t *buf = NULL;
		size_t len;
		struct scan s;

		r = open_segment(w->dirfd, h->first, O_RDWR, w->uid, &w->head_fd);
		if (r < 0)
			goto fail;
		r = read_segment(w->head_fd, &buf, &len);
		if (r < 0)
			goto fail;
		scan_buffer(buf, len, 0, NULL, NULL, &s);
		if (s.newer) { /* never truncate what a newer version wrote */
			r = -EPROTONOSUPPORT;
			goto fail;
		}
		if (s.valid_end < len) {
			if (ftruncate(w->head_fd, (off_t)s.valid_end) < 0 ||
			    fsync(w->head_fd) < 0) {
				r = negative_errno();
				goto fail;
			}
			info.truncated_bytes = len - s.valid_end;
		}
		info.records = s.records;
		r = writer_push(w, (struct wseg){.first = h->first,
						 .size = s.valid_end,
						 .unpriv = s.unpriv_bytes});
		if (r < 0)
			goto fail;
		if (s.records > 0)
			w->last_seq = s.last_seq;
		else if (h->first > 0)
			w->last_seq = h->first - 1;
	}
	info.unpriv_bytes = w->unpriv_bytes;
	w->next_seq = w->last_seq + 1;
	if (w->head_fd >= 0 && w->next_seq < w->segs[w->nsegs - 1].first)
		w->next_seq = w->segs[w->nsegs - 1].first;
	/* The acknowledgement never moves the sequence: a value beyond what is stored is
	 * refused (spool_writer_trim_acked reports it). */
	writer_read_ack(w);
	*ret = w;
	if (ret_info)
		*ret_info = info;
	return 0;
fail:
	spool_writer_free(w);
	return r;
}

void spool_writer_free(struct spool_writer *w)
{
	if (!w)
		return;
	if (w->head_fd >= 0) {
		if (w->head_dirty)
			(void)fdatasync(w->head_fd);
		close(w->head_fd);
	}
	if (w->dirfd >= 0)
		close(w->dirfd);
	free(w->segs);
	free(w);
}

uint64_t spool_writer_next_seq(const struct spool_writer *w)
{
	return w->next_seq;
}

uint64_t spool_writer_last_seq(const struct spool_writer *w)
{
	return w->last_seq;
}

uint64_t spool_writer_bytes(const struct spool_writer *w)
{
	return w->total_bytes;
}

uint64_t spool_writer_unpriv_bytes(const struct spool_writer *w)
{
	return w->unpriv_bytes;
}

/* Remove segs[i] (not the head), counting the records in it that were never acknowledged. */
static int writer_drop_segment(struct spool_writer *w, size_t i, struct spool_drop *drop)
{
	char name[SPOOL_SEGMENT_NAME_LEN + 1];
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0;

	spool_segment_name(w->segs[i].first, name);
	int r = open_segment(w->dirfd, w->segs[i].first, O_RDONLY, w->uid, &fd);
	if (r == -ENOENT) {
		writer_forget(
		    w, i); /* removed by someone else (an administrator): not ours to count */
		return 0;
	}
	if (r < 0)
		return r;
	r = read_segment(fd, &buf, &len);
	if (r < 0)
		return r;
	struct scan s;
	uint64_t count, min_seq;
	scan_buffer(buf, len, w->acked, &count, &min_seq, &s);
	if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT)
		return negative_errno();
	writer_forget(w, i);
	drop->segments++;
	if (count > 0) {
		if (drop->count == 0 || min_seq < drop->first_seq)
			drop->first_seq = min_seq;
		if (s.last_seq > drop->last_seq)
			drop->last_seq = s.last_seq;
		drop->count += count;
	}
	return 0;
}

static int writer_trim(struct spool_writer *w, uint64_t *ret_removed)
{
	uint64_t removed = 0;
	writer_read_ack(w);
	/* Segment i holds only numbers below segment i+1's first; the head is never removed. */
	while (w->nsegs >= 2 && w->segs[1].first <= w->acked + 1) {
		char name[SPOOL_SEGMENT_NAME_LEN + 1];
		spool_segment_name(w->segs[0].first, name);
		if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT)
			return negative_errno();
		writer_forget(w, 0);
		removed++;
	}
	if (ret_removed)
		*ret_removed = removed;
	return removed > 0 ? fsync_dir(w->dirfd) : 0;
}

int spool_writer_trim_acked(struct spool_writer *w, struct spool_trim *ret)
{
	uint64_t removed = 0;
	int r = writer_trim(w, &removed);
	if (ret) {
		*ret = (struct spool_trim){
		    .acked = w->acked,
		    .segments = removed,
		    .refused = w->refused,
		    .claimed = w->refused_value,
		    .new_refusal = w->refused != 0 && w->refusal_unreported,
		};
		if (w->refused != 0)
			w->refusal_unreported = false;
	}
	return r;
}

/* Make room for a protected record: oldest segments first, never the head unless it alone is
 * too big (then a new head is started first). */
static int writer_make_room(struct spool_writer *w, uint64_t next_first, size_t need,
			    struct spool_drop *drop)
{
	int r;
	/* segs[0] is never the head while another segment exists, nor when the head is gone */
	while (w->total_bytes + need > w->max_bytes && w->nsegs >= (w->head_fd >= 0 ? 2u : 1u)) {
		r = writer_drop_segment(w, 0, drop);
		if (r < 0)
			return r;
	}
	const struct wseg *h = writer_head(w);
	if (w->total_bytes + need > w->max_bytes && h && h->size > 0) {
		r = writer_create_segment(w, next_first);
		if (r < 0)
			return r;
		r = writer_drop_segment(w, w->nsegs - 2, drop);
		if (r < 0)
			return r;
	}
	if (drop->segments > 0) {
		r = fsync_dir(w->dirfd);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool unpriv_fits(const struct spool_writer *w, size_t need)
{
	return w->unpriv_bytes + need <= w->max_bytes / SPOOL_UNPRIV_SHARE_DIV &&
	       w->total_bytes + need <= w->max_bytes;
}

int spool_writer_append(struct spool_writer *w, uint64_t seq, enum spool_class cls,
			const void *payload, size_t len, struct spool_drop *ret_drop)
{
	struct spool_drop drop = {0};
	if (ret_drop)
		*ret_drop = drop;
	if (len == 0 || len > EVENT_MAX_BYTES || seq < w->next_seq ||
	    (unsigned)cls >= _SPOOL_CLASS_MAX)
		return -EINVAL;
	size_t need = spool_record_size(len);
	if (need > w->max_bytes / 2 ||
	    (cls == SPOOL_CLASS_UNPRIVILEGED && need > w->max_bytes / SPOOL_UNPRIV_SHARE_DIV))
		return -EMSGSIZE;

	struct wseg *h = writer_head(w);
	if (h && w->head_torn) {
		if (ftruncate(w->head_fd, (off_t)h->size) < 0)
			return negative_errno();
		w->head_torn = false;
	}
	if (h) {
		/* Someone removed our head segment (a wiped spool): start a new one. */
		struct stat st;
		if (fstat(w->head_fd, &st) < 0)
			return negative_errno();
		if (st.st_nlink == 0) {
			close(w->head_fd);
			w->head_fd = -1;
			w->head_dirty = false;
			writer_forget(w, w->nsegs - 1);
		}
	}

	int r;
	bool fits = cls == SPOOL_CLASS_UNPRIVILEGED ? unpriv_fits(w, need)
						    : w->total_bytes + need <= w->max_bytes;
	if (!fits) {
		/* What the uplink has acknowledged goes first: it costs nothing. */
		r = writer_trim(w, NULL);
		if (r < 0)
			return r;
	}
	if (cls == SPOOL_CLASS_UNPRIVILEGED) {
		if (!unpriv_fits(w, need))
			return -ENOSPC;
	} else {
		r = writer_make_room(w, seq, need, &drop);
		if (ret_drop)
			*ret_drop = drop;
		if (r < 0)
			return r;
	}
	h = writer_head(w);
	if (!h || (h->size > 0 && h->size + need > w->segment_bytes)) {
		r = writer_create_segment(w, seq);
		if (r < 0)
			return r;
		h = writer_head(w);
	}

	_cleanup_free_ uint8_t *buf = malloc(need);
	if (!buf)
		return -ENOMEM;
	r = spool_record_encode(seq, cls, payload, len, buf);
	if (r < 0)
		return r;
	size_t done = 0;
	while (done < need) {
		ssize_t k = pwrite(w->head_fd, buf + done, need - done, (off_t)(h->size + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			r = k < 0 ? negative_errno() : -EIO;
			/* retried before the next append if this fails too */
			w->head_torn = ftruncate(w->head_fd, (off_t)h->size) < 0;
			return r;
		}
		done += (size_t)k;
	}
	h->size += need;
	w->total_bytes += need;
	if (cls == SPOOL_CLASS_UNPRIVILEGED) {
		h->unpriv += need;
		w->unpriv_bytes += need;
	}
	w->head_dirty = true;
	w->last_seq = seq;
	w->next_seq = seq + 1;
	return 0;
}

int spool_writer_sync(struct spool_writer *w)
{
	if (w->head_fd < 0 || !w->head_dirty)
		return 0;
	if (fdatasync(w->head_fd) < 0)
		return negative_errno();
	w->head_dirty = false;
	return 0;
}

/* ---- reader ---- */

struct spool_reader {
	int dirfd;
	uint64_t acked;
	uint64_t last_seq; /* highest returned so far (starts at acked) */
	int cur_fd;	   /* segment being read, -1 = none */
	uint64_t cur_first;
	uint64_t cur_off;
	uint64_t skipped;
	uint64_t durable_acked; /* what "acked" holds for sure after a power cut */
	struct timespec durable_at;
};

int spool_reader_open(const char *dir, struct spool_reader **ret)
{
	_cleanup_close_ int dirfd = -1;
	int r = fileio_open_dir_verified(AT_FDCWD, dir, NULL, &dirfd);
	if (r < 0)
		return r;
	uint64_t acked = 0;
	r = spool_read_acked(dirfd, &acked);
	if (r < 0 && r != -EBADMSG)
		return r;
	struct spool_reader *sr = calloc(1, sizeof *sr);
	if (!sr)
		return -ENOMEM;
	*sr = (struct spool_reader){
	    .dirfd = TAKE_FD(dirfd),
	    .acked = acked,
	    .last_seq = acked,
	    .cur_fd = -1,
	};
	*ret = sr;
	return 0;
}

void spool_reader_free(struct spool_reader *r)
{
	if (!r)
		return;
	if (r->dirfd >= 0 && r->acked > r->durable_acked)
		(void)spool_write_acked(r->dirfd, r->acked);
	if (r->cur_fd >= 0)
		close(r->cur_fd);
	if (r->dirfd >= 0)
		close(r->dirfd);
	free(r);
}

int spool_reader_dirfd(const struct spool_reader *r)
{
	return r->dirfd;
}

uint64_t spool_reader_acked(const struct spool_reader *r)
{
	return r->acked;
}

uint64_t spool_reader_skipped(const struct spool_reader *r)
{
	return r->skipped;
}

void spool_reader_rewind(struct spool_reader *r)
{
	if (r->cur_fd >= 0)
		close(r->cur_fd);
	r->cur_fd = -1;
	r->last_seq = r->acked;
}

static int reader_switch(struct spool_reader *r, uint64_t first)
{
	int fd;
	int ret = open_segment(r->dirfd, first, O_RDONLY, (uid_t)-1, &fd);
	if (ret < 0)
		return ret;
	if (r->cur_fd >= 0)
		close(r->cur_fd);
	r->cur_fd = fd;
	r->cur_first = first;
	r->cur_off = 0;
	return 0;
}

/* Choose the segment to continue in: the one that may hold last_seq + 1, else the first after
 * the current one. Returns 1 when switched (or staying), 0 when there is none. */
static int reader_pick(struct spool_reader *r, bool after_current, bool *ret_is_newest)
{
	_cleanup_free_ struct segment *segs = NULL;
	size_t n = 0;
	int ret = list_segments(r->dirfd, (uid_t)-1, &segs, &n, NULL);
	if (ret < 0)
		return ret;
	for (;;) {
		ssize_t pick = -1;
		if (after_current) {
			for (size_t i = 0; i < n; i++)
				if (segs[i].first > r->cur_first) {
					pick = (ssize_t)i;
					break;
				}
		} else {
			for (size_t i = 0; i < n; i++)
				if (segs[i].first <= r->last_seq + 1)
					pick = (ssize_t)i;
			if (pick < 0 && n > 0)
				pick = 0;
		}
		if (pick < 0)
			return 0;
		ret = reader_switch(r, segs[pick].first);
		if (ret == -ENOENT) {
			/* removed meanwhile: try the next one */
			memmove(segs + pick, segs + pick + 1,
				(n - (size_t)pick - 1) * sizeof *segs);
			n--;
			continue;
		}
		if (ret < 0)
			return ret;
		*ret_is_newest = (size_t)pick == n - 1;
		return 1;
	}
}

static bool reader_newer_exists(struct spool_reader *r)
{
	_cleanup_free_ struct segment *segs = NULL;
	size_t n = 0;
	if (list_segments(r->dirfd, (uid_t)-1, &segs, &n, NULL) < 0)
		return false;
	return n > 0 && segs[n - 1].first > r->cur_first;
}

/* Try to read one record at cur_off: 1 = got one, 0 = end or torn tail, -EBADMSG corrupt. */
static int reader_read_one(struct spool_reader *r, struct spool_record *ret)
{
	uint8_t h[SPOOL_HEADER_SIZE];
	ssize_t k = pread(r->cur_fd, h, sizeof h, (off_t)r->cur_off);
	if (k < 0)
		return negative_errno();
	if (k == 0)
		return 0;
	uint32_t plen = 0;
	int c = header_check(h, (size_t)k, &plen, NULL);
	if (c <= 0)
		return c;
	if ((size_t)k < sizeof h)
		return 0;
	uint8_t *buf = malloc(SPOOL_HEADER_SIZE + (size_t)plen + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, h, sizeof h);
	k = pread(r->cur_fd, buf + SPOOL_HEADER_SIZE, plen,
		  (off_t)(r->cur_off + SPOOL_HEADER_SIZE));
	if (k < 0) {
		int e = negative_errno();
		free(buf);
		return e;
	}
	struct spool_record rec;
	c = spool_record_parse(buf, SPOOL_HEADER_SIZE + (size_t)k, &rec);
	if (c <= 0) {
		free(buf);
		return c;
	}
	/* hand out an owned copy of the payload */
	memmove(buf, buf + SPOOL_HEADER_SIZE, rec.len);
	buf[rec.len] = 0;
	r->cur_off += (uint64_t)c;
	*ret = (struct spool_record){.seq = rec.seq, .payload = (char *)buf, .len = rec.len};
	return 1;
}

int spool_reader_next(struct spool_reader *r, struct spool_record *ret)
{
	bool newest = false;
	unsigned moves = 0;
	for (;;) {
		if (r->cur_fd < 0) {
			int p = reader_pick(r, false, &newest);
			if (p <= 0)
				return p;
		}
		struct spool_record rec;
		int c = reader_read_one(r, &rec);
		if (c != 1 && (c == 0 || c == -EBADMSG)) {
			/* End of this segment, a torn tail or damage. Move on only if a newer segment
			 * exists; its existence means this one is complete (the agent rolls after its
			 * last write here), so read once more before leaving. */
			if (!reader_newer_exists(r))
				return 0;
			c = reader_read_one(r, &rec);
		}
		if (c == 1) {
			if (rec.seq <=
			    r->last_seq) { /* already sent (below acked or before a rewind) */
				free((void *)rec.payload);
				continue;
			}
			r->last_seq = rec.seq;
			*ret = rec;
			return 1;
		}
		if (c < 0 && c != -EBADMSG)
			return c;
		struct stat st;
		if (fstat(r->cur_fd, &st) == 0 && (uint64_t)st.st_size > r->cur_off)
			r->skipped++;
		if (++moves > SPOOL_MAX_SEGMENTS)
			return -ELOOP;
		int p = reader_pick(r, true, &newest);
		if (p <= 0)
			return p;
	}
}

int spool_reader_sync(struct spool_reader *r)
{
	if (r->cur_fd >= 0 && fdatasync(r->cur_fd) < 0)
		return negative_errno();
	return 0;
}

int spool_reader_ack(struct spool_reader *r, uint64_t through)
{
	if (through > r->acked) {
		/* Durably at most about once a second; in between the rename alone. */
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		bool durable = now.tv_sec - r->durable_at.tv_sec >= 1;
		int ret = durable ? spool_write_acked(r->dirfd, through)
				  : write_acked_fast(r->dirfd, through);
		if (ret < 0)
			return ret;
		r->acked = through;
		if (durable) {
			r->durable_acked = through;
			r->durable_at = now;
		}
	}
	if (r->last_seq < r->acked)
		r->last_seq = r->acked;
	return 0;
}
