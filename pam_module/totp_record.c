/* SPDX-License-Identifier: MIT */
/* The per-user TOTP record: strict parser and formatter (see totp_record.h). Pure; never logs. */
#include "totp_record.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"
#include "secmem.h"

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int totp_base32_decode(const char *s, size_t len, uint8_t *out, size_t out_size)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;

	/* 1, 3 and 6 characters of a final group cannot come from whole bytes. */
	switch (len % 8) {
	case 1:
	case 3:
	case 6:
		return -EINVAL;
	default:
		break;
	}
	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned v;
		char c = s[i];
		if (c >= 'A' && c <= 'Z')
			v = (unsigned)(c - 'A');
		else if (c >= '2' && c <= '7')
			v = (unsigned)(c - '2') + 26;
		else
			return -EINVAL;
		acc = (acc << 5) | v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (n >= out_size)
				return -ENOBUFS;
			out[n++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Non-canonical: leftover bits must be zero. */
	if (acc != 0)
		return -EINVAL;
	return (int)n;
}

int totp_base32_encode(const uint8_t *in, size_t len, char *out, size_t out_size)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			if (n + 1 >= out_size)
				return -ENOBUFS;
			out[n++] = b32_alphabet[(acc >> bits) & 31];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0) {
		if (n + 1 >= out_size)
			return -ENOBUFS;
		out[n++] = b32_alphabet[(acc << (5 - bits)) & 31];
	}
	if (n >= out_size)
		return -ENOBUFS;
	out[n] = '\0';
	return (int)n;
}

bool totp_user_valid(const char *user)
{
	size_t n;

	if (!user || user[0] == '\0' || user[0] == '.' || user[0] == '-')
		return false;
	n = strlen(user);
	if (n > TOTP_USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = user[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '@'))
			return false;
	}
	return true;
}

void totp_record_wipe(struct totp_record *r)
{
	secmem_wipe(r, sizeof(*r));
}

/* Cut the next line "KEY VALUE\n" from [*p, end): copy VALUE (at most max-1 bytes) into val. */
static int next_field(const char **p, const char *end, const char *key, char *val, size_t max)
{
	size_t klen = strlen(key);
	const char *nl, *v;
	size_t vlen;

	nl = memchr(*p, '\n', (size_t)(end - *p));
	if (!nl)
		return -EBADMSG;
	if ((size_t)(nl - *p) < klen + 2 || memcmp(*p, key, klen) != 0 || (*p)[klen] != ' ')
		return -EBADMSG;
	v = *p + klen + 1;
	vlen = (size_t)(nl - v);
	if (vlen == 0 || vlen >= max || memchr(v, '\0', vlen))
		return -EBADMSG;
	memcpy(val, v, vlen);
	val[vlen] = '\0';
	*p = nl + 1;
	return 0;
}

static int field_u64(const char **p, const char *end, const char *key, uint64_t min, uint64_t max,
		     uint64_t *ret)
{
	char val[24];
	int r = next_field(p, end, key, val, sizeof(val));

	if (r < 0)
		return r;
	/* One spelling per number: no leading zeros. */
	if (val[0] == '0' && val[1] != '\0')
		return -EBADMSG;
	if (parse_uint64(val, min, max, ret) < 0)
		return -EBADMSG;
	return 0;
}

uint32_t totp_crc32(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return c ^ 0xffffffffu;
}

/* Fixed-width decimal: exactly n digits. */
static int fixed_u64(const char *s, size_t n, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EBADMSG;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -EBADMSG;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -EBADMSG;
	*ret = v;
	return 0;
}

static int hex_u32(const char *s, uint32_t *ret)
{
	uint32_t v = 0;

	for (size_t i = 0; i < 8; i++) {
		unsigned d;
		if (s[i] >= '0' && s[i] <= '9')
			d = (unsigned)(s[i] - '0');
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = (unsigned)(s[i] - 'a' + 10);
		else
			return -EBADMSG;
		v = (v << 4) | d;
	}
	*ret = v;
	return 0;
}

struct slot {
	uint64_t seq, last_step, failures, locked_until, last_used;
	bool crc_ok;
};

/* "stateN " SEQ(20) ' ' LAST(20) ' ' FAIL(4) ' ' LOCKED(20) ' ' [USED(20) ' '] CRC(8) '\n' */
#define SLOT_PREFIX 7

static size_t slot_len(unsigned version)
{
	return version == 1 ? TOTP_SLOT_LEN_V1 : TOTP_SLOT_LEN_V2;
}

static int parse_slot(const char *line, size_t avail, unsigned version, unsigned idx,
		      struct slot *ret)
{
	const char *f = line + SLOT_PREFIX;
	size_t len = slot_len(version), crc_at = len - 10;
	uint32_t crc;

	if (avail < len || memcmp(line, "state", 5) != 0 || line[5] != (char)('0' + idx) ||
	    line[6] != ' ' || f[20] != ' ' || f[41] != ' ' || f[46] != ' ' || f[67] != ' ' ||
	    line[crc_at] != ' ' || line[len - 1] != '\n')
		return -EBADMSG;
	if (fixed_u64(f, 20, TOTP_SEQ_MAX, &ret->seq) < 0 ||
	    fixed_u64(f + 21, 20, TOTP_LAST_STEP_MAX, &ret->last_step) < 0 ||
	    fixed_u64(f + 42, 4, TOTP_FAILURES_MAX, &ret->failures) < 0 ||
	    fixed_u64(f + 47, 20, INT64_MAX, &ret->locked_until) < 0 ||
	    hex_u32(line + crc_at + 1, &crc) < 0)
		return -EBADMSG;
	ret->last_used = 0;
	if (version >= 2 && fixed_u64(f + 68, 20, INT64_MAX, &ret->last_used) < 0)
		return -EBADMSG;
	ret->crc_ok = crc == totp_crc32(line, crc_at);
	return 0;
}

const char *totp_kind_name(enum totp_kind k)
{
	return k == TOTP_KIND_HARDWARE ? "hardware" : "totp";
}

bool totp_serial_valid(const char *s, size_t len)
{
	if (len == 0 || len > TOTP_SERIAL_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != ':' && c != '-')))
			return false;
	}
	return true;
}

int totp_record_version(const char *text, size_t len)
{
	static const char magic[] = TOTP_RECORD_MAGIC " ";
	const size_t m = sizeof(magic) - 1;
	uint64_t v = 0;
	size_t i;

	if (len < m + 2 || memcmp(text, magic, m) != 0 || text[m] < '1' || text[m] > '9')
		return -EBADMSG;
	for (i = m; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
		if (i - m >= 9)
			return -EBADMSG;
		v = v * 10 + (uint64_t)(text[i] - '0');
	}
	if (i >= len || text[i] != '\n')
		return -EBADMSG;
	return (int)v;
}

/* The lifecycle lines of version 2: type, serial, enrolled, verified. */
static int parse_lifecycle(const char **p, const char *end, struct totp_record *rec)
{
	char val[TOTP_SERIAL_MAX + 2];
	uint64_t v;

	if (next_field(p, end, "type", val, sizeof(val)) < 0)
		return -EBADMSG;
	if (strcmp(val, "totp") == 0)
		rec->kind = TOTP_KIND_APP;
	else if (strcmp(val, "hardware") == 0)
		rec->kind = TOTP_KIND_HARDWARE;
	else
		return -EBADMSG;
	if (next_field(p, end, "serial", val, sizeof(val)) < 0)
		return -EBADMSG;
	if (rec->kind == TOTP_KIND_APP) {
		if (strcmp(val, "-") != 0)
			return -EBADMSG;
	} else {
		if (!totp_serial_valid(val, strlen(val)))
			return -EBADMSG;
		memcpy(rec->serial, val, strlen(val) + 1);
	}
	if (field_u64(p, end, "enrolled", 0, INT64_MAX, &v) < 0)
		return -EBADMSG;
	rec->enrolled = (int64_t)v;
	if (field_u64(p, end, "verified", 0, INT64_MAX, &v) < 0)
		return -EBADMSG;
	rec->verified = (int64_t)v;
	return 0;
}

static int parse_fields(const char *text, size_t len, struct totp_record *rec)
{
	const char *p = text, *end = text + len;
	char secret[TOTP_SECRET_B32_MAX + 2];
	struct slot sl[2];
	uint64_t v;
	int r;

	r = totp_record_version(text, len);
	if (r > TOTP_RECORD_VERSION)
		return -EPROTONOSUPPORT;
	if (r < 1)
		return -EBADMSG;
	rec->version = (unsigned)r;
	r = field_u64(&p, end, TOTP_RECORD_MAGIC, 1, TOTP_RECORD_VERSION, &v);
	if (r < 0)
		return r;
	if (rec->version >= 2 && parse_lifecycle(&p, end, rec) < 0)
		return -EBADMSG;
	r = next_field(&p, end, "secret", secret, sizeof(secret));
	if (r < 0)
		return r;
	r = totp_base32_decode(secret, strlen(secret), rec->secret, sizeof(rec->secret));
	secmem_wipe(secret, sizeof(secret));
	if (r < TOTP_SECRET_MIN_BYTES)
		return -EBADMSG;
	rec->secret_len = (size_t)r;
	if (field_u64(&p, end, "digits", 6, 8, &v) < 0)
		return -EBADMSG;
	rec->digits = (unsigned)v;
	if (field_u64(&p, end, "period", TOTP_PERIOD_MIN, TOTP_PERIOD_MAX, &v) < 0)
		return -EBADMSG;
	rec->period = (unsigned)v;
	if (rec->version == 1) {
		if (field_u64(&p, end, "enrolled", 0, INT64_MAX, &v) < 0)
			return -EBADMSG;
		rec->enrolled = (int64_t)v;
		/* It predates `totp verify`, and its user has been logging in with it. */
		rec->kind = TOTP_KIND_APP;
		rec->verified = rec->enrolled;
	}
	for (unsigned i = 0; i < 2; i++) {
		if (parse_slot(p, (size_t)(end - p), rec->version, i, &sl[i]) < 0)
			return -EBADMSG;
		rec->slot_offset[i] = (size_t)(p - text);
		p += slot_len(rec->version);
	}
	if (p != end)
		return -EBADMSG;
	if (!sl[0].crc_ok && !sl[1].crc_ok)
		return -EBADMSG;
	if (sl[0].crc_ok && sl[1].crc_ok && sl[0].seq == sl[1].seq)
		return -EBADMSG;
	rec->current = !sl[0].crc_ok || (sl[1].crc_ok && sl[1].seq > sl[0].seq) ? 1 : 0;
	rec->seq = sl[rec->current].seq;
	rec->last_step = sl[rec->current].last_step;
	rec->failures = (unsigned)sl[rec->current].failures;
	rec->locked_until = (int64_t)sl[rec->current].locked_until;
	rec->last_used = (int64_t)sl[rec->current].last_used;
	return 0;
}

static bool state_valid(const struct totp_record *r)
{
	return r->last_step <= TOTP_LAST_STEP_MAX && r->failures <= TOTP_FAILURES_MAX &&
	       r->locked_until >= 0 && r->last_used >= 0 && r->seq < TOTP_SEQ_MAX;
}

static void format_slot(unsigned version, unsigned idx, uint64_t seq, const struct totp_record *r,
			char line[static TOTP_SLOT_LEN_MAX + 1])
{
	size_t len = slot_len(version), crc_at = len - 10;
	int n;

	if (!r) {
		static const struct totp_record empty = {0};
		r = &empty;
	}
	n = snprintf(line, TOTP_SLOT_LEN_MAX + 1,
		     "state%u %020" PRIu64 " %020" PRIu64 " %04u %020" PRId64 " ", idx, seq,
		     r->last_step, r->failures, r->locked_until);
	if (version >= 2 && n > 0)
		snprintf(line + n, TOTP_SLOT_LEN_MAX + 1 - (size_t)n, "%020" PRId64 " ",
			 r->last_used);
	snprintf(line + crc_at + 1, len - crc_at, "%08" PRIx32 "\n", totp_crc32(line, crc_at));
}

int totp_record_next_slot(const struct totp_record *r, char line[static TOTP_SLOT_LEN_MAX + 1],
			  size_t *ret_len, size_t *ret_offset)
{
	unsigned next = r->current ? 0 : 1;

	if (!state_valid(r) || r->current > 1 || r->slot_offset[next] == 0 || r->version < 1 ||
	    r->version > TOTP_RECORD_VERSION || (r->version == 1 && r->last_used != 0))
		return -EINVAL;
	format_slot(r->version, next, r->seq + 1, r, line);
	*ret_len = slot_len(r->version);
	*ret_offset = r->slot_offset[next];
	return 0;
}

void totp_record_slot_written(struct totp_record *r)
{
	r->current = r->current ? 0 : 1;
	r->seq++;
}

int totp_record_parse(const char *text, size_t len, struct totp_record *ret)
{
	struct totp_record rec = {0};
	int r;

	if (len > TOTP_RECORD_MAX_SIZE)
		return -EFBIG;
	r = parse_fields(text, len, &rec);
	if (r < 0) {
		totp_record_wipe(&rec);
		totp_record_wipe(ret);
		return r;
	}
	*ret = rec;
	totp_record_wipe(&rec);
	return 0;
}

int totp_record_format(const struct totp_record *r, char *buf, size_t size, size_t *ret_len)
{
	char secret[TOTP_SECRET_B32_MAX + 1], slot0[TOTP_SLOT_LEN_MAX + 1],
	    slot1[TOTP_SLOT_LEN_MAX + 1];
	size_t serial_len = strnlen(r->serial, sizeof(r->serial));
	int n;

	if (r->secret_len < TOTP_SECRET_MIN_BYTES || r->secret_len > TOTP_SECRET_MAX_BYTES ||
	    r->digits < 6 || r->digits > 8 || r->period < TOTP_PERIOD_MIN ||
	    r->period > TOTP_PERIOD_MAX || !state_valid(r) || r->enrolled < 0 || r->verified < 0 ||
	    serial_len > TOTP_SERIAL_MAX)
		return -EINVAL;
	if (r->kind == TOTP_KIND_APP	    ? serial_len != 0
	    : r->kind == TOTP_KIND_HARDWARE ? !totp_serial_valid(r->serial, serial_len)
					    : true)
		return -EINVAL;
	if (totp_base32_encode(r->secret, r->secret_len, secret, sizeof(secret)) < 0)
		return -EINVAL;
	format_slot(TOTP_RECORD_VERSION, 0, r->seq > 0 ? r->seq : 1, r, slot0);
	format_slot(TOTP_RECORD_VERSION, 1, 0, NULL, slot1);
	n = snprintf(buf, size,
		     TOTP_RECORD_MAGIC " %d\n"
				       "type %s\n"
				       "serial %s\n"
				       "enrolled %" PRId64 "\n"
				       "verified %" PRId64 "\n"
				       "secret %s\n"
				       "digits %u\n"
				       "period %u\n"
				       "%s%s",
		     TOTP_RECORD_VERSION, totp_kind_name(r->kind), serial_len ? r->serial : "-",
		     r->enrolled, r->verified, secret, r->digits, r->period, slot0, slot1);
	secmem_wipe(secret, sizeof(secret));
	if (n < 0 || (size_t)n >= size) {
		secmem_wipe(buf, size);
		return -ENOBUFS;
	}
	if (ret_len)
		*ret_len = (size_t)n;
	return 0;
}
