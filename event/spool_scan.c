/* SPDX-License-Identifier: MIT */
/* A read-only pass over a spool directory (see spool_scan.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "fileio.h"
#include "macro.h"
#include "spool.h"
#include "spool_scan.h"

void spool_scan_clear(struct spool_scan *s)
{
	if (!s)
		return;
	free(s->first_unacked);
	free(s->last);
	free(s->last_compliance);
	s->first_unacked = s->last = s->last_compliance = NULL;
}

static void spool_scan_clearp(struct spool_scan *s)
{
	spool_scan_clear(s);
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int replace_copy(char **dst, const char *p, size_t len)
{
	char *c = strndup(p, len);

	if (!c)
		return -ENOMEM;
	free(*dst);
	*dst = c;
	return 0;
}

static int scan_segment(int dirfd, uint64_t first, const char *compliance_kind,
			struct spool_scan *s)
{
	_cleanup_free_ char *buf = NULL;
	char name[SPOOL_SEGMENT_NAME_LEN + 1];
	size_t len = 0, off = 0, kind_len = strlen(compliance_kind);
	int r;

	spool_segment_name(first, name);
	r = fileio_read_file(dirfd, name, SPOOL_SEGMENT_MAX + SPOOL_RECORD_MAX, &buf, &len);
	if (r < 0)
		return r;
	s->bytes += len;
	while (off < len) {
		struct spool_record rec;
		int n = spool_record_parse((const uint8_t *)buf + off, len - off, &rec);

		if (n == -EPROTONOSUPPORT) {
			s->newer_format++;
			break;
		}
		if (n <= 0) {
			/* a torn tail of the head is normal while the agent writes; else damage */
			s->damaged++;
			break;
		}
		s->records++;
		if (rec.seq > s->acked) {
			if (s->unacked == 0 &&
			    replace_copy(&s->first_unacked, rec.payload, rec.len) < 0)
				return -ENOMEM;
			s->unacked++;
			s->unacked_bytes += (uint64_t)n;
		}
		if (replace_copy(&s->last, rec.payload, rec.len) < 0)
			return -ENOMEM;
		if (memmem(rec.payload, rec.len, compliance_kind, kind_len) &&
		    replace_copy(&s->last_compliance, rec.payload, rec.len) < 0)
			return -ENOMEM;
		off += (size_t)n;
	}
	return 0;
}

int spool_scan_dir(const char *dir, struct spool_scan *ret)
{
	_cleanup_(spool_scan_clearp) struct spool_scan s = {0};
	_cleanup_close_ int dirfd = -1;
	_cleanup_(closedirp) DIR *d = NULL;
	_cleanup_free_ uint64_t *firsts = NULL;
	char compliance_kind[64];
	size_t n = 0, cap = 0;
	struct dirent *de;
	int r;

	/* how the event codec writes the kind (event_encode: compact JSON) */
	snprintf(compliance_kind, sizeof(compliance_kind), "\"kind\":\"%s\"",
		 event_kind_name(EVENT_COMPLIANCE));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return negative_errno();
	r = spool_read_acked(dirfd, &s.acked);
	if (r < 0)
		return r;
	d = opendir(dir);
	if (!d)
		return negative_errno();
	while ((de = readdir(d))) {
		uint64_t first;

		if (spool_segment_parse_name(de->d_name, &first) < 0)
			continue;
		if (n == cap) {
			uint64_t *nf;

			if (cap >= SPOOL_MAX_SEGMENTS)
				break;
			cap = cap ? 2 * cap : 16;
			nf = realloc(firsts, cap * sizeof(*firsts));
			if (!nf)
				return -ENOMEM;
			firsts = nf;
		}
		firsts[n++] = first;
	}
	if (n > 1) /* qsort wants a non-NULL array even for 0 elements */
		qsort(firsts, n, sizeof(*firsts), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		r = scan_segment(dirfd, firsts[i], compliance_kind, &s);
		if (r == -ENOMEM)
			return r;
		if (r < 0) /* removed by the uplink meanwhile, or unreadable */
			s.damaged++;
		else
			s.segments++;
	}
	*ret = s;
	s = (struct spool_scan){0};
	return 0;
}
