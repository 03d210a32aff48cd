/* SPDX-License-Identifier: MIT */
/* The policy parser: text in, struct policy out (libinih, strict validation). No I/O, never logs. */
#include <errno.h>
#include <fnmatch.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "escape.h"
#include "internal.h"
#include "macro.h"
#include "parse.h"
#include "policy.h"
#include "utf8.h"

/* The reader hands libinih one physical line per call, so libinih's line count is ours. Lines
 * libinih would misread (too long for its 200-byte buffer, indented continuations, ':' separators,
 * junk) are reported here and handed over as empty lines. */

enum section {
	SEC_TERMINAL,
	SEC_USB,
	SEC_MFA,
	SEC_REPORT,
	SEC_CHECKS,
	SEC_FLEET,
	_SEC_MAX,
};

static const char *const section_names[_SEC_MAX] = {"terminal", "usb",	  "mfa",
						    "report",	"checks", "fleet"};
#define SECTION_LIST "[terminal], [usb], [mfa], [report], [checks] or [fleet]"

/* Section name handed to libinih for an unknown or broken section header: its keys are ignored
 * (the header line already has its error). */
#define SECTION_IGNORED "?"

enum key {
	K_TERMINAL_ID,
	K_TERMINAL_DESCRIPTION,
	K_TERMINAL_CONTACT,
	K_USB_MODE,
	K_USB_BLOCK,
	K_USB_ALLOW,
	K_USB_READER,
	K_USB_STRICT_MODPROBE,
	K_MFA_SERVICES,
	K_MFA_WINDOW,
	K_MFA_STEP,
	K_MFA_DIGITS,
	K_MFA_MAX_FAILURES,
	K_MFA_LOCKOUT,
	K_MFA_NULLOK,
	K_REPORT_COLLECTOR,
	K_REPORT_CA,
	K_REPORT_CERT,
	K_REPORT_KEY,
	K_REPORT_INTERVAL,
	K_REPORT_SPOOL_MAX,
	K_REPORT_BATCH_MAX,
	K_CHECKS_MIN_UID,
	K_CHECKS_PAM_DIR,
	K_CHECKS_SYSFS_ROOT,
	K_FLEET_GROUP,
	K_FLEET_VERSION,
	K_FLEET_ISSUED,
	K_FLEET_TERMINALS,
	K_FLEET_GRANT_KEY,
	K_FLEET_GRANT_CLASSES,
	K_FLEET_GRANT_MAX_DAYS,
	K_CHECK_FIRST, /* K_CHECK_FIRST + enum policy_check: the per-check switches */
	_K_MAX = K_CHECK_FIRST + _POLICY_CHECK_MAX,
};

static const struct key_def {
	enum section sec;
	const char *name;
	bool repeatable;
} key_defs[K_CHECK_FIRST] = {
    [K_TERMINAL_ID] = {SEC_TERMINAL, "id", false},
    [K_TERMINAL_DESCRIPTION] = {SEC_TERMINAL, "description", false},
    [K_TERMINAL_CONTACT] = {SEC_TERMINAL, "contact", false},
    [K_USB_MODE] = {SEC_USB, "mode", false},
    [K_USB_BLOCK] = {SEC_USB, "block", false},
    [K_USB_ALLOW] = {SEC_USB, "allow", true},
    [K_USB_READER] = {SEC_USB, "reader", true},
    [K_USB_STRICT_MODPROBE] = {SEC_USB, "strict_modprobe", false},
    [K_MFA_SERVICES] = {SEC_MFA, "services", false},
    [K_MFA_WINDOW] = {SEC_MFA, "window", false},
    [K_MFA_STEP] = {SEC_MFA, "step", false},
    [K_MFA_DIGITS] = {SEC_MFA, "digits", false},
    [K_MFA_MAX_FAILURES] = {SEC_MFA, "max_failures", false},
    [K_MFA_LOCKOUT] = {SEC_MFA, "lockout", false},
    [K_MFA_NULLOK] = {SEC_MFA, "nullok", false},
    [K_REPORT_COLLECTOR] = {SEC_REPORT, "collector", false},
    [K_REPORT_CA] = {SEC_REPORT, "ca", false},
    [K_REPORT_CERT] = {SEC_REPORT, "cert", false},
    [K_REPORT_KEY] = {SEC_REPORT, "key", false},
    [K_REPORT_INTERVAL] = {SEC_REPORT, "interval", false},
    [K_REPORT_SPOOL_MAX] = {SEC_REPORT, "spool_max", false},
    [K_REPORT_BATCH_MAX] = {SEC_REPORT, "batch_max", false},
    [K_CHECKS_MIN_UID] = {SEC_CHECKS, "min_uid", false},
    [K_CHECKS_PAM_DIR] = {SEC_CHECKS, "pam_dir", false},
    [K_CHECKS_SYSFS_ROOT] = {SEC_CHECKS, "sysfs_root", false},
    [K_FLEET_GROUP] = {SEC_FLEET, "group", false},
    [K_FLEET_VERSION] = {SEC_FLEET, "version", false},
    [K_FLEET_ISSUED] = {SEC_FLEET, "issued", false},
    [K_FLEET_TERMINALS] = {SEC_FLEET, "terminals", false},
    [K_FLEET_GRANT_KEY] = {SEC_FLEET, "grant_key", false},
    [K_FLEET_GRANT_CLASSES] = {SEC_FLEET, "grant_classes", false},
    [K_FLEET_GRANT_MAX_DAYS] = {SEC_FLEET, "grant_max_days", false},
};

#define MAX_KEY_NAME 48
#define MAX_TEXT     256
#define MAX_PATH_LEN 4095
#define MAX_URL	     1000

struct parse_ctx {
	const char *text;
	size_t len;
	size_t pos;
	unsigned line; /* physical line last handed to libinih */
	bool is_long;  /* that line was too long for libinih: its value is in long_value */
	const char *long_value;
	size_t long_len;
	unsigned section_line[_SEC_MAX];
	unsigned key_line[_K_MAX];
	bool block_set;
	bool services_set;
	bool base; /* policy_parse_base */
	struct policy *p;
	struct policy_errors *errs;
	size_t n_errors;
	bool oom;
};

static void error_at(struct parse_ctx *c, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void error_at(struct parse_ctx *c, unsigned line, const char *fmt, ...)
{
	char msg[sizeof(((struct policy_error *)0)->message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->n_errors++;
	policy_errors_add(c->errs, line, "%s", msg);
}

/* An untrusted string for a message: escape_text() (base/escape.h), at most 40 input bytes. */
static const char *escape(const char *s, size_t n, bool quotes, char *buf, size_t size)
{
	return escape_text(s, n, 40, quotes ? ESCAPE_QUOTES : 0, buf, size);
}

static const char *quote(const char *s, size_t n, char *buf, size_t size)
{
	return escape(s, n, true, buf, size);
}

#define Q(s) quote((s), strlen(s), (char[64]){0}, 64)

/* ---- the reader ---- */

static bool check_bytes(struct parse_ctx *c, const char *line, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)line[i];
		if (ch == '\0') {
			error_at(c, c->line, "line contains a NUL byte");
			return false;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			error_at(c, c->line, "line contains the control character 0x%02x", ch);
			return false;
		}
	}
	if (!utf8_valid(line, n)) {
		error_at(c, c->line, "line is not valid UTF-8");
		return false;
	}
	return true;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

static int section_from_name(const char *s, size_t n)
{
	for (int i = 0; i < _SEC_MAX; i++)
		if (strlen(section_names[i]) == n && memcmp(section_names[i], s, n) == 0)
			return i;
	return -1;
}

static char *hand(char *str, int num, const char *s, size_t n)
{
	if (n + 1 > (size_t)num)
		n = 0; /* cannot happen: callers check; hand an empty line rather than a cut one */
	memcpy(str, s, n);
	str[n] = '\0';
	return str;
}

static char *reader_section(struct parse_ctx *c, char *str, int num, const char *line,
			    const char *end)
{
	const char *close = memchr(line, ']', (size_t)(end - line));
	const char *rest, *name = line + 1;
	char q[64];
	size_t n;
	int s;

	if (!close) {
		error_at(c, c->line, "expected [section]: the closing ']' is missing");
		return hand(str, num, "[" SECTION_IGNORED "]", 3);
	}
	n = (size_t)(close - name);
	for (rest = close + 1; rest < end && is_space(*rest); rest++)
		;
	s = section_from_name(name, n);
	if (s < 0) {
		error_at(c, c->line, "unknown section [%s]: expected " SECTION_LIST,
			 escape(name, n, false, q, sizeof(q)));
		return hand(str, num, "[" SECTION_IGNORED "]", 3);
	}
	if (rest < end && *rest != ';' && *rest != '#')
		error_at(c, c->line, "unexpected text after [%s]: expected only a comment",
			 section_names[s]);
	if (c->section_line[s])
		error_at(
		    c, c->line,
		    "duplicate section [%s] (first on line %u): put all its keys in one section",
		    section_names[s], c->section_line[s]);
	else
		c->section_line[s] = c->line;
	snprintf(str, (size_t)num, "[%s]", section_names[s]);
	return str;
}

static bool key_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '.' || ch == '-';
}

static char *reader_key(struct parse_ctx *c, char *str, int num, const char *line, const char *end)
{
	const char *s = line, *kend;
	bool was_space = false;
	char q[64];

	/* Find the separator as libinih does: the first '=' or ':' before an inline " ;" comment. */
	while (s < end && *s != '=' && *s != ':' && !(was_space && *s == ';')) {
		was_space = is_space(*s);
		s++;
	}
	if (s < end && *s == ':') {
		error_at(c, c->line, "expected KEY = VALUE: use '=' rather than ':'");
		return hand(str, num, "", 0);
	}
	if (s == end || *s != '=') {
		error_at(
		    c, c->line,
		    "expected KEY = VALUE, a [section] line, or a comment starting with ';' or "
		    "'#'");
		return hand(str, num, "", 0);
	}
	for (kend = s; kend > line && is_space(kend[-1]); kend--)
		;
	if (kend == line) {
		error_at(c, c->line, "expected KEY = VALUE: the key name is missing");
		return hand(str, num, "", 0);
	}
	for (const char *k = line; k < kend; k++) {
		if (!key_char(*k)) {
			error_at(
			    c, c->line,
			    "expected KEY = VALUE: %s is not a key name (letters, digits, '_', "
			    "'.', '-')",
			    quote(line, (size_t)(kend - line), q, sizeof(q)));
			return hand(str, num, "", 0);
		}
	}
	if (kend - line > MAX_KEY_NAME) {
		error_at(c, c->line, "unknown key %s: key names are short",
			 quote(line, (size_t)(kend - line), q, sizeof(q)));
		return hand(str, num, "", 0);
	}
	if ((size_t)(end - line) + 1 <= (size_t)num)
		return hand(str, num, line, (size_t)(end - line));
	/* Too long for libinih's line buffer: hand it "KEY=" and keep the value aside. */
	c->is_long = true;
	c->long_value = s + 1;
	c->long_len = (size_t)(end - (s + 1));
	hand(str, num, line, (size_t)(kend - line));
	str[kend - line] = '=';
	str[kend - line + 1] = '\0';
	return str;
}

static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *c = stream;
	const char *line, *end, *nl, *p;

	if (c->pos >= c->len)
		return NULL;
	if (num < 2 * MAX_KEY_NAME + 4) {
		/* A libinih built with a tiny line buffer: refuse rather than skip the rest. */
		error_at(c, 0, "libinih's line buffer is too small (%d bytes)", num);
		c->pos = c->len;
		return NULL;
	}
	line = c->text + c->pos;
	nl = memchr(line, '\n', c->len - c->pos);
	end = nl ? nl : c->text + c->len;
	c->pos = (size_t)(end - c->text) + (nl ? 1 : 0);
	c->line++;
	c->is_long = false;

	if (end > line && end[-1] == '\r')
		end--;
	if (c->line == 1 && end - line >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0)
		line += 3;
	if ((size_t)(end - line) > POLICY_MAX_LINE) {
		error_at(c, c->line, "line too long (%zu bytes): at most %d", (size_t)(end - line),
			 POLICY_MAX_LINE);
		return hand(str, num, "", 0);
	}
	if (!check_bytes(c, line, (size_t)(end - line)))
		return hand(str, num, "", 0);
	for (p = line; p < end && is_space(*p); p++)
		;
	if (p == end || *p == ';' || *p == '#')
		return hand(str, num, "", 0);
	if (p > line) {
		error_at(
		    c, c->line,
		    "line starts with white space: continuation lines are not supported; write "
		    "KEY = VALUE on one line, starting at the first column");
		return hand(str, num, "", 0);
	}
	if (*p == '[')
		return reader_section(c, str, num, line, end);
	return reader_key(c, str, num, line, end);
}

/* ---- values ---- */

/* What libinih does to a value, for the lines it never saw whole. */
static char *long_value_dup(const struct parse_ctx *c)
{
	const char *s = c->long_value, *end = c->long_value + c->long_len;
	const char *v = s;
	bool was_space = false;

	while (v < end && !(was_space && *v == ';')) {
		was_space = is_space(*v);
		v++;
	}
	end = v;
	while (s < end && is_space(*s))
		s++;
	while (end > s && is_space(end[-1]))
		end--;
	return strndup(s, (size_t)(end - s));
}

static void bad_value(struct parse_ctx *c, enum key k, const char *name, const char *value,
		      const char *expected)
{
	enum section sec = k >= K_CHECK_FIRST ? SEC_CHECKS : key_defs[k].sec;

	if (value[0] == '\0')
		error_at(c, c->line, "[%s] %s: empty value: %s", section_names[sec], name,
			 expected);
	else
		error_at(c, c->line, "[%s] %s: bad value %s: %s", section_names[sec], name,
			 Q(value), expected);
}

static int set_string(struct parse_ctx *c, char **field, const char *value)
{
	char *s = strdup(value);

	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

static bool valid_terminal_id(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > POLICY_TERMINAL_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!key_char(s[i]))
			return false;
	return true;
}

static bool valid_service(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 64 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!key_char(s[i]) && s[i] != '+')
			return false;
	return true;
}

static bool valid_path(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= MAX_PATH_LEN && s[0] == '/';
}

static bool valid_port(const char *s, size_t n)
{
	unsigned v = 0;

	if (n < 1 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

static bool valid_https_url(const char *s)
{
	const char *host, *hend, *port = NULL;
	size_t n = strlen(s);

	if (n > MAX_URL || strncmp(s, "https://", 8) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '"' || s[i] == '<' || s[i] == '>' ||
		    s[i] == '\\')
			return false;
	host = s + 8;
	hend = host + strcspn(host, "/?#");
	if (hend == host || memchr(host, '@', (size_t)(hend - host)))
		return false;
	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(hend - host));
		if (!close || close == host + 1)
			return false;
		for (const char *h = host + 1; h < close; h++)
			if (!strchr("0123456789abcdefABCDEF:.", *h))
				return false;
		if (close + 1 < hend) {
			if (close[1] != ':')
				return false;
			port = close + 2;
		}
	} else {
		const char *colon = memchr(host, ':', (size_t)(hend - host));
		const char *h_end = colon ? colon : hend;
		if (h_end == host)
			return false;
		for (const char *h = host; h < h_end; h++)
			if (!key_char(*h) || *h == '_')
				return false;
		if (colon)
			port = colon + 1;
	}
	if (port && !valid_port(port, (size_t)(hend - port)))
		return false;
	return true;
}

static int set_bool(struct parse_ctx *c, enum key k, const char *name, const char *value, bool *b)
{
	if (parse_bool(value, b) < 0)
		bad_value(c, k, name, value, "expected yes or no");
	return 0;
}

static int set_uint(struct parse_ctx *c, enum key k, const char *value, unsigned min, unsigned max,
		    unsigned *field)
{
	char expected[80];

	if (parse_uint(value, min, max, field) < 0) {
		snprintf(expected, sizeof(expected), "expected a whole number from %u to %u", min,
			 max);
		bad_value(c, k, key_defs[k].name, value, expected);
	}
	return 0;
}

static int set_duration(struct parse_ctx *c, enum key k, const char *value, uint64_t *field)
{
	if (parse_duration(value, 60, 86400, field) < 0)
		bad_value(c, k, key_defs[k].name, value,
			  "expected a duration like 900, 15m or 1h, from 1m to 1d");
	return 0;
}

static int set_path(struct parse_ctx *c, enum key k, const char *value, char **field)
{
	if (!valid_path(value)) {
		bad_value(c, k, key_defs[k].name, value,
			  "expected an absolute path (starting with /)");
		return 0;
	}
	return set_string(c, field, value);
}

/* Split a list on commas and white space; "none" alone = empty. Calls fn per word. */
static int for_each_word(struct parse_ctx *c, enum key k, const char *value,
			 int (*fn)(struct parse_ctx *c, enum key k, const char *word),
			 const char *expected, bool *ret_none)
{
	_cleanup_free_ char *copy = strdup(value);
	char *save = NULL;
	size_t n = 0;

	if (!copy)
		return -ENOMEM;
	*ret_none = false;
	if (strcasecmp(value, "none") == 0) {
		*ret_none = true;
		return 0;
	}
	for (char *w = strtok_r(copy, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save)) {
		int r = fn(c, k, w);
		if (r < 0)
			return r;
		n++;
	}
	if (n == 0)
		bad_value(c, k, key_defs[k].name, value, expected);
	return 0;
}

static int block_word(struct parse_ctx *c, enum key k, const char *word)
{
	char err[160];

	if (strcasecmp(word, "none") == 0) {
		error_at(c, c->line, "[usb] block: \"none\" must stand alone");
		return 0;
	}
	if (policy_usb_class_parse(c->p->usb_block, &c->p->n_usb_block, word, err, sizeof(err)) < 0)
		error_at(c, c->line, "[usb] block: %s: %s", Q(word), err);
	return 0;
}

static int grant_class_word(struct parse_ctx *c, enum key k, const char *word)
{
	struct policy *p = c->p;
	char err[160];

	if (strcasecmp(word, "none") == 0) {
		error_at(c, c->line, "[fleet] grant_classes: \"none\" must stand alone");
		return 0;
	}
	if (policy_usb_class_parse(p->fleet_grant_classes, &p->n_fleet_grant_classes, word, err,
				   sizeof(err)) < 0)
		error_at(c, c->line, "[fleet] grant_classes: %s: %s", Q(word), err);
	return 0;
}

/* Terminal ids and the fnmatch(3) globs that name them: the id characters plus * ? [ ] !. */
static bool valid_terminal_glob(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > POLICY_TERMINAL_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!key_char(s[i]) && !strchr("*?[]!", s[i]))
			return false;
	return true;
}

static int terminal_word(struct parse_ctx *c, enum key k, const char *word)
{
	struct policy *p = c->p;
	char **na, *s;

	if (!valid_terminal_glob(word)) {
		error_at(c, c->line,
			 "[fleet] terminals: %s is not a terminal id or glob: expected 1 to 64 "
			 "letters, digits, '.', '_', '-' and the wildcards * ? [ ]",
			 Q(word));
		return 0;
	}
	for (size_t i = 0; i < p->n_fleet_terminals; i++) {
		if (strcmp(p->fleet_terminals[i], word) == 0) {
			error_at(c, c->line, "[fleet] terminals: %s is listed twice", Q(word));
			return 0;
		}
	}
	if (p->n_fleet_terminals >= POLICY_FLEET_TERMINALS_MAX) {
		error_at(c, c->line, "[fleet] terminals: too many entries: at most %d",
			 POLICY_FLEET_TERMINALS_MAX);
		return 0;
	}
	na = reallocarray(p->fleet_terminals, p->n_fleet_terminals + 1, sizeof(*na));
	if (!na)
		return -ENOMEM;
	p->fleet_terminals = na;
	s = strdup(word);
	if (!s)
		return -ENOMEM;
	p->fleet_terminals[p->n_fleet_terminals++] = s;
	return 0;
}

static int digits(const char *s, size_t n, int min, int max, int *ret)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

/* "2026-12-01T09:00:00Z" exactly: RFC 3339 in UTC, whole seconds, years 2000 to 9999. */
static int parse_rfc3339_utc(const char *s, int64_t *ret)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, dim;
	struct tm tm = {0};
	time_t t;

	if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != 'Z')
		return -EINVAL;
	if (digits(s, 4, 2000, 9999, &y) < 0 || digits(s + 5, 2, 1, 12, &mo) < 0 ||
	    digits(s + 11, 2, 0, 23, &h) < 0 || digits(s + 14, 2, 0, 59, &mi) < 0 ||
	    digits(s + 17, 2, 0, 59, &sec) < 0)
		return -EINVAL;
	dim = mdays[mo - 1];
	if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		dim = 29;
	if (digits(s + 8, 2, 1, dim, &d) < 0)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret = (int64_t)t;
	return 0;
}

static int b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

int policy_key_from_base64(const char *b64, uint8_t ret[POLICY_FLEET_KEY_LEN])
{
	uint8_t out[POLICY_FLEET_KEY_LEN + 1];
	uint32_t acc = 0;
	size_t o = 0;

	/* 32 bytes = 43 characters of data (the last carries 4 bits, its low 2 must be 0) + '='. */
	if (!b64 || strlen(b64) != 44 || b64[43] != '=')
		return -EINVAL;
	for (size_t i = 0; i < 43; i++) {
		int v = b64_value(b64[i]);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		if (i % 4 == 3) {
			out[o++] = (uint8_t)(acc >> 16);
			out[o++] = (uint8_t)(acc >> 8);
			out[o++] = (uint8_t)acc;
			acc = 0;
		}
	}
	/* 43 = 10 * 4 + 3: the last three characters hold 18 bits, 16 of them data. */
	if (acc & 0x3)
		return -EINVAL;
	out[o++] = (uint8_t)(acc >> 10);
	out[o++] = (uint8_t)(acc >> 2);
	memcpy(ret, out, POLICY_FLEET_KEY_LEN);
	return 0;
}

static int service_word(struct parse_ctx *c, enum key k, const char *word)
{
	struct policy *p = c->p;
	char *s;

	if (!valid_service(word)) {
		error_at(c, c->line,
			 "[mfa] services: %s is not a PAM service name: expected names like login, "
			 "gdm-password, sshd",
			 Q(word));
		return 0;
	}
	for (size_t i = 0; i < p->n_mfa_services; i++) {
		if (strcmp(p->mfa_services[i], word) == 0) {
			error_at(c, c->line, "[mfa] services: %s is listed twice", Q(word));
			return 0;
		}
	}
	if (p->n_mfa_services >= POLICY_MAX_SERVICES) {
		error_at(c, c->line, "[mfa] services: too many services: at most %d",
			 POLICY_MAX_SERVICES);
		return 0;
	}
	s = strdup(word);
	if (!s)
		return -ENOMEM;
	p->mfa_services[p->n_mfa_services++] = s;
	return 0;
}

static bool is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static int hex4(const char *s, uint16_t *ret)
{
	uint64_t v;
	char buf[5];

	for (int i = 0; i < 4; i++)
		if (!is_hex(s[i]))
			return -EINVAL;
	memcpy(buf, s, 4);
	buf[4] = '\0';
	if (parse_hex(buf, 0xffff, &v) < 0)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

static bool same_opt(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

#define ALLOW_SYNTAX "expected VVVV:PPPP [serial=S] [hash=sha256:HEX] [ledger=NUMBER] [name=TEXT]"

/* "allow = ..." and "reader = ..." share one syntax; k says which list the entry goes to. */
static int set_allow(struct parse_ctx *c, enum key k, const char *value)
{
	struct policy *p = c->p;
	const char *key = key_defs[k].name;
	struct policy_usb_allow **list = k == K_USB_READER ? &p->usb_readers : &p->usb_allow;
	size_t *n_list = k == K_USB_READER ? &p->n_usb_readers : &p->n_usb_allow;
	struct policy_usb_allow a = {.line = c->line};
	_cleanup_free_ char *serial = NULL, *hash = NULL, *name = NULL, *ledger = NULL;
	const char *s = value;

	if (strlen(value) < 9 || hex4(value, &a.vendor) < 0 || value[4] != ':' ||
	    hex4(value + 5, &a.product) < 0 || (value[9] != '\0' && !is_space(value[9]))) {
		bad_value(c, k, key, value, ALLOW_SYNTAX);
		return 0;
	}
	s = value + 9;
	for (;;) {
		const char *tok;
		size_t n;
		while (is_space(*s))
			s++;
		if (*s == '\0')
			break;
		tok = s;
		if (strncmp(s, "name=", 5) == 0) {
			if (name) {
				error_at(c, c->line, "[usb] %s: name= given twice", key);
				return 0;
			}
			if (s[5] == '\0') {
				error_at(c, c->line, "[usb] %s: name= is empty: expected a text",
					 key);
				return 0;
			}
			name = strdup(s + 5);
			if (!name)
				return -ENOMEM;
			break; /* name= runs to the end of the line */
		} else if (strncmp(s, "serial=", 7) == 0) {
			char buf[POLICY_SERIAL_MAX * 4 + 1];
			size_t o = 0;
			if (serial) {
				error_at(c, c->line, "[usb] %s: serial= given twice", key);
				return 0;
			}
			s += 7;
			if (*s == '"') {
				for (s++; *s && *s != '"'; s++) {
					if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
						s++;
					if (o + 1 >= sizeof(buf))
						break;
					buf[o++] = *s;
				}
				if (*s != '"') {
					error_at(
					    c, c->line,
					    "[usb] %s: serial=\"... has no closing quote or is "
					    "longer than %d characters",
					    key, POLICY_SERIAL_MAX);
					return 0;
				}
				s++;
				if (*s && !is_space(*s)) {
					error_at(
					    c, c->line,
					    "[usb] %s: expected a space after the quoted serial",
					    key);
					return 0;
				}
			} else {
				for (; *s && !is_space(*s); s++) {
					if (o + 1 >= sizeof(buf))
						break;
					buf[o++] = *s;
				}
			}
			buf[o] = '\0';
			if (o == 0 || utf8_chars(buf) > POLICY_SERIAL_MAX ||
			    (*s && !is_space(*s))) {
				error_at(c, c->line,
					 "[usb] %s: serial= must hold 1 to %d characters (use "
					 "serial=\"...\" for spaces)",
					 key, POLICY_SERIAL_MAX);
				return 0;
			}
			serial = strdup(buf);
			if (!serial)
				return -ENOMEM;
		} else if (strncmp(s, "ledger=", 7) == 0) {
			if (ledger) {
				error_at(c, c->line, "[usb] %s: ledger= given twice", key);
				return 0;
			}
			s += 7;
			n = strcspn(s, " \t");
			if (n < 1 || n > 32 ||
			    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789._-") < n) {
				error_at(
				    c, c->line,
				    "[usb] %s: bad ledger %s: expected ledger= followed by the "
				    "registration number (1 to 32 letters, digits, '.', '_' or '-')",
				    key, quote(tok, n + 7, (char[64]){0}, 64));
				return 0;
			}
			ledger = strndup(s, n);
			if (!ledger)
				return -ENOMEM;
			s += n;
		} else if (strncmp(s, "hash=", 5) == 0) {
			char h[65];
			if (hash) {
				error_at(c, c->line, "[usb] %s: hash= given twice", key);
				return 0;
			}
			s += 5;
			n = strcspn(s, " \t");
			if (n != 7 + 64 || strncmp(s, "sha256:", 7) != 0) {
				error_at(c, c->line,
					 "[usb] %s: bad hash %s: expected hash=sha256: followed by "
					 "64 hex digits",
					 key, quote(tok, n + 5, (char[64]){0}, 64));
				return 0;
			}
			for (size_t i = 0; i < 64; i++) {
				char ch = s[7 + i];
				if (!is_hex(ch)) {
					error_at(
					    c, c->line,
					    "[usb] %s: bad hash: expected hash=sha256: followed "
					    "by 64 hex digits",
					    key);
					return 0;
				}
				h[i] = (ch >= 'A' && ch <= 'F') ? (char)(ch - 'A' + 'a') : ch;
			}
			h[64] = '\0';
			hash = strdup(h);
			if (!hash)
				return -ENOMEM;
			s += n;
		} else {
			n = strcspn(s, " \t");
			error_at(c, c->line, "[usb] %s: unexpected %s: %s", key,
				 quote(tok, n, (char[64]){0}, 64), ALLOW_SYNTAX);
			return 0;
		}
	}

	for (size_t i = 0; i < *n_list; i++) {
		const struct policy_usb_allow *o = &(*list)[i];
		if (o->vendor == a.vendor && o->product == a.product &&
		    same_opt(o->serial, serial) && same_opt(o->descriptor_hash, hash)) {
			error_at(c, c->line, "[usb] %s: same device as the %s entry on line %u",
				 key, key, o->line);
			return 0;
		}
	}
	if (*n_list >= POLICY_MAX_ALLOW) {
		error_at(c, c->line, "[usb] %s: too many %s entries: at most %d", key, key,
			 POLICY_MAX_ALLOW);
		return 0;
	}
	if ((*n_list & (*n_list - 1)) == 0) {
		/* Grow at powers of two. */
		size_t cap = *n_list ? *n_list * 2 : 4;
		struct policy_usb_allow *na = reallocarray(*list, cap, sizeof(*na));
		if (!na)
			return -ENOMEM;
		*list = na;
	}
	a.serial = TAKE_PTR(serial);
	a.descriptor_hash = TAKE_PTR(hash);
	a.name = TAKE_PTR(name);
	a.ledger = TAKE_PTR(ledger);
	(*list)[(*n_list)++] = a;
	return 0;
}

static int set_key(struct parse_ctx *c, enum key k, const char *value)
{
	struct policy *p = c->p;
	bool none;
	int r;

	if (k >= K_CHECK_FIRST) {
		enum policy_check ch = (enum policy_check)(k - K_CHECK_FIRST);
		return set_bool(c, k, policy_check_id(ch), value, &p->checks_enabled[ch]);
	}
	switch (k) {
	case K_TERMINAL_ID:
		if (!valid_terminal_id(value)) {
			bad_value(c, k, "id", value,
				  "expected 1 to 64 letters, digits, '.', '_' or '-'");
			return 0;
		}
		return set_string(c, &p->terminal_id, value);
	case K_TERMINAL_DESCRIPTION:
		if (value[0] == '\0' || strlen(value) > MAX_TEXT) {
			bad_value(c, k, "description", value, "expected a text of 1 to 256 bytes");
			return 0;
		}
		return set_string(c, &p->description, value);
	case K_TERMINAL_CONTACT:
		if (value[0] == '\0' || strlen(value) > MAX_TEXT) {
			bad_value(c, k, "contact", value, "expected a text of 1 to 256 bytes");
			return 0;
		}
		return set_string(c, &p->terminal_contact, value);
	case K_USB_MODE:
		if (strcmp(value, "enforce") == 0)
			p->usb_mode = POLICY_USB_ENFORCE;
		else if (strcmp(value, "audit") == 0)
			p->usb_mode = POLICY_USB_AUDIT;
		else
			bad_value(c, k, "mode", value, "expected enforce or audit");
		return 0;
	case K_USB_BLOCK:
		p->n_usb_block = 0;
		r = for_each_word(c, k, value, block_word,
				  "expected class names like mass_storage, or none", &none);
		if (r < 0)
			return r;
		return 0;
	case K_USB_ALLOW:
	case K_USB_READER:
		return set_allow(c, k, value);
	case K_USB_STRICT_MODPROBE:
		return set_bool(c, k, "strict_modprobe", value, &p->usb_strict_modprobe);
	case K_MFA_SERVICES:
		for (size_t i = 0; i < p->n_mfa_services; i++)
			free(p->mfa_services[i]);
		p->n_mfa_services = 0;
		return for_each_word(c, k, value, service_word,
				     "expected PAM service names like login, gdm-password, sshd, "
				     "or none",
				     &none);
	case K_MFA_WINDOW:
		return set_uint(c, k, value, 0, 10, &p->mfa_window);
	case K_MFA_STEP:
		return set_uint(c, k, value, 15, 300, &p->mfa_step);
	case K_MFA_DIGITS:
		return set_uint(c, k, value, 6, 8, &p->mfa_digits);
	case K_MFA_MAX_FAILURES:
		return set_uint(c, k, value, 1, 100, &p->mfa_max_failures);
	case K_MFA_LOCKOUT:
		return set_duration(c, k, value, &p->mfa_lockout_sec);
	case K_MFA_NULLOK:
		return set_bool(c, k, "nullok", value, &p->mfa_nullok);
	case K_REPORT_COLLECTOR:
		if (!valid_https_url(value)) {
			bad_value(
			    c, k, "collector", value,
			    "expected an https:// URL like https://collector.example.jp:8443");
			return 0;
		}
		return set_string(c, &p->report_collector, value);
	case K_REPORT_CA:
		return set_path(c, k, value, &p->report_ca);
	case K_REPORT_CERT:
		return set_path(c, k, value, &p->report_cert);
	case K_REPORT_KEY:
		return set_path(c, k, value, &p->report_key);
	case K_REPORT_INTERVAL:
		return set_duration(c, k, value, &p->report_interval_sec);
	case K_REPORT_SPOOL_MAX:
		if (parse_size(value, UINT64_C(1) << 20, UINT64_C(10) << 30, &p->report_spool_max) <
		    0)
			bad_value(c, k, "spool_max", value,
				  "expected a size like 64M or 1G, from 1M to 10G");
		return 0;
	case K_REPORT_BATCH_MAX:
		return set_uint(c, k, value, 1, 1000, &p->report_batch_max);
	case K_CHECKS_MIN_UID: {
		uint64_t v;
		if (parse_uint64(value, 0, UINT32_MAX - 1, &v) < 0)
			bad_value(c, k, "min_uid", value,
				  "expected a user id from 0 to 4294967294");
		else
			p->checks_min_uid = (uid_t)v;
		return 0;
	}
	case K_CHECKS_PAM_DIR:
		return set_path(c, k, value, &p->checks_pam_dir);
	case K_CHECKS_SYSFS_ROOT:
		return set_path(c, k, value, &p->checks_sysfs_root);
	case K_FLEET_GROUP:
		if (!valid_terminal_id(value)) {
			bad_value(c, k, "group", value,
				  "expected 1 to 64 letters, digits, '.', '_' or '-'");
			return 0;
		}
		return set_string(c, &p->fleet_group, value);
	case K_FLEET_VERSION:
		if (parse_uint64(value, 1, INT64_MAX, &p->fleet_version) < 0)
			bad_value(c, k, "version", value,
				  "expected a whole number from 1 to 9223372036854775807");
		return 0;
	case K_FLEET_ISSUED:
		if (parse_rfc3339_utc(value, &p->fleet_issued) < 0)
			bad_value(c, k, "issued", value,
				  "expected a UTC time like 2026-12-01T09:00:00Z");
		return 0;
	case K_FLEET_TERMINALS:
		r = for_each_word(c, k, value, terminal_word,
				  "expected terminal ids or globs like fukushi-*", &none);
		if (r < 0)
			return r;
		if (none)
			bad_value(c, k, "terminals", value,
				  "expected terminal ids or globs like fukushi-*");
		return 0;
	case K_FLEET_GRANT_KEY:
		if (policy_key_from_base64(value, p->fleet_grant_key) < 0) {
			bad_value(c, k, "grant_key", value,
				  "expected the base64 of a 32-byte Ed25519 public key (44 "
				  "characters, as in the .pub file)");
			return 0;
		}
		p->has_fleet_grant_key = true;
		return 0;
	case K_FLEET_GRANT_CLASSES:
		p->n_fleet_grant_classes = 0;
		return for_each_word(c, k, value, grant_class_word,
				     "expected class names like mass_storage, or none", &none);
	case K_FLEET_GRANT_MAX_DAYS:
		return set_uint(c, k, value, 1, 3660, &p->fleet_grant_max_days);
	case K_CHECK_FIRST:
	case _K_MAX:
		break;
	}
	return 0;
}

static int key_lookup(enum section sec, const char *name)
{
	enum policy_check ch;

	for (int k = 0; k < K_CHECK_FIRST; k++)
		if (key_defs[k].sec == sec && strcmp(key_defs[k].name, name) == 0)
			return k;
	if (sec == SEC_CHECKS && policy_check_from_id(name, &ch) == 0)
		return K_CHECK_FIRST + (int)ch;
	return -1;
}

static void expected_keys(enum section sec, bool check_like, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int k = 0; k < K_CHECK_FIRST && o < size; k++)
		if (key_defs[k].sec == sec)
			o += (size_t)snprintf(buf + o, size - o, "%s%s", o ? ", " : "",
					      key_defs[k].name);
	if (sec == SEC_CHECKS && !check_like)
		snprintf(buf + o, size - o, " or a check id like usb.default_deny");
	if (sec == SEC_CHECKS && check_like) {
		/* The message has room for the check ids or the other keys, not both. */
		o = (size_t)snprintf(buf, size, "a check id:");
		for (int i = 0; i < _POLICY_CHECK_MAX && o < size; i++)
			o += (size_t)snprintf(buf + o, size - o, "%s %s", i ? "," : "",
					      policy_check_id((enum policy_check)i));
	}
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *c = user;
	_cleanup_free_ char *long_copy = NULL;
	char expected[200];
	int sec, k, r;

	if (c->oom)
		return 1;
	if (c->is_long) {
		long_copy = long_value_dup(c);
		if (!long_copy) {
			c->oom = true;
			return 1;
		}
		value = long_copy;
	}
	if (strcmp(section, SECTION_IGNORED) == 0)
		return 1;
	if (section[0] == '\0') {
		error_at(c, c->line,
			 "%s = ... comes before any [section]: expected " SECTION_LIST " first",
			 name);
		return 1;
	}
	sec = section_from_name(section, strlen(section));
	if (sec < 0) /* cannot happen: the reader hands only known names */
		return 1;
	k = key_lookup((enum section)sec, name);
	if (k < 0) {
		expected_keys((enum section)sec, strchr(name, '.') != NULL, expected,
			      sizeof(expected));
		error_at(c, c->line, "[%s] unknown key %s: expected %s", section_names[sec],
			 Q(name), expected);
		return 1;
	}
	if (k >= K_CHECK_FIRST || !key_defs[k].repeatable) {
		if (c->key_line[k]) {
			error_at(
			    c, c->line,
			    "[%s] %s: duplicate key (first set on line %u): it may appear only "
			    "once",
			    section_names[sec], name, c->key_line[k]);
			return 1;
		}
		c->key_line[k] = c->line;
	}
	r = set_key(c, (enum key)k, value);
	if (r < 0)
		c->oom = true;
	return 1;
}

static bool class_equal(const struct policy_usb_class *a, const struct policy_usb_class *b)
{
	return a->cls == b->cls && a->subclass == b->subclass && a->protocol == b->protocol &&
	       a->mtp == b->mtp;
}

/* What can only be checked once the whole file is read. */
static void check_fleet(struct parse_ctx *c)
{
	static const enum key required[] = {K_FLEET_GROUP, K_FLEET_VERSION, K_FLEET_ISSUED,
					    K_FLEET_TERMINALS, K_FLEET_GRANT_KEY};
	struct policy *p = c->p;

	if (!c->section_line[SEC_FLEET])
		return;
	p->fleet = true;
	for (size_t i = 0; i < ELEMENTSOF(required); i++)
		if (!c->key_line[required[i]])
			error_at(c, 0,
				 "[fleet] %s is missing: a [fleet] section needs group, "
				 "version, issued, terminals and grant_key",
				 key_defs[required[i]].name);
	/* An exception opens a class the base blocks; a grant class the base does not block
	 * would open nothing and hide a mistake. */
	for (size_t i = 0; i < p->n_fleet_grant_classes; i++) {
		const struct policy_usb_class *g = &p->fleet_grant_classes[i];
		bool blocked = false;
		char code[16];
		for (size_t j = 0; j < p->n_usb_block && !blocked; j++)
			blocked = class_equal(g, &p->usb_block[j]);
		if (!blocked) {
			policy_usb_class_code(g, code, sizeof(code));
			error_at(c, c->key_line[K_FLEET_GRANT_CLASSES],
				 "[fleet] grant_classes: %s (%s) is not blocked by [usb] block: an "
				 "exception can only open a blocked class",
				 g->name, code);
		}
	}
}

static int parse(const char *path, const char *text, size_t len, bool base, struct policy **ret,
		 struct policy_errors *errs)
{
	_cleanup_policy_ struct policy *p = NULL;
	struct parse_ctx c = {.text = text, .len = len, .base = base};
	int r;

	if (!path)
		path = "policy";
	if (errs) {
		policy_errors_clear(errs);
		errs->path = strdup(path);
		if (!errs->path)
			return -ENOMEM;
	}
	c.errs = errs;
	if (len > POLICY_MAX_FILE_SIZE) {
		error_at(&c, 0, "file too large (%zu bytes): at most %d", len,
			 POLICY_MAX_FILE_SIZE);
		return -EFBIG;
	}
	r = policy_new_default(&p);
	if (r < 0)
		return r;
	p->path = strdup(path);
	if (!p->path)
		return -ENOMEM;
	c.p = p;

	r = ini_parse_stream(reader, &c, handler, &c);
	if (c.oom || r == -2)
		return -ENOMEM;
	if (r > 0 && c.n_errors == 0)
		error_at(&c, (unsigned)r, "syntax error");

	if (base) {
		if (c.key_line[K_TERMINAL_ID])
			error_at(&c, c.key_line[K_TERMINAL_ID],
				 "[terminal] id: a base policy names no terminal: each terminal's "
				 "id is put in when it installs the base");
		if (!c.section_line[SEC_FLEET])
			error_at(&c, 0,
				 "[fleet] is missing: a base policy needs group, version, issued, "
				 "terminals and grant_key");
	} else if (!c.key_line[K_TERMINAL_ID]) {
		error_at(&c, 0,
			 "[terminal] id is missing: every policy must name its terminal (id = 1 to "
			 "64 letters, digits, '.', '_' or '-')");
	}
	check_fleet(&c);
	if (c.n_errors > 0)
		return -EINVAL;
	*ret = TAKE_PTR(p);
	return 0;
}

int policy_parse_string(const char *path, const char *text, size_t len, struct policy **ret,
			struct policy_errors *errs)
{
	return parse(path, text, len, false, ret, errs);
}

int policy_parse_base(const char *path, const char *text, size_t len, struct policy **ret,
		      struct policy_errors *errs)
{
	return parse(path, text, len, true, ret, errs);
}

bool policy_fleet_covers(const struct policy *base, const char *terminal_id)
{
	if (!base || !base->fleet || !terminal_id || !valid_terminal_id(terminal_id))
		return false;
	for (size_t i = 0; i < base->n_fleet_terminals; i++)
		if (fnmatch(base->fleet_terminals[i], terminal_id, 0) == 0)
			return true;
	return false;
}

/* The offset just past the "[terminal]" header line of a valid policy text, or -1. A valid
 * file has its headers at the first column, so a line starting "[terminal]" is the header. */
static ssize_t terminal_header_end(const char *text, size_t len)
{
	static const char hdr[] = "[terminal]";
	size_t pos = 0;

	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		if (n >= sizeof(hdr) - 1 && memcmp(line, hdr, sizeof(hdr) - 1) == 0)
			return (ssize_t)(pos + n + (nl ? 1 : 0));
		pos += n + (nl ? 1 : 0);
	}
	return -1;
}

int policy_install_text(const char *base, size_t len, const char *terminal_id, char **ret,
			size_t *ret_len)
{
	_cleanup_policy_ struct policy *b = NULL, *installed = NULL;
	_cleanup_free_ char *out = NULL;
	char insert[POLICY_TERMINAL_ID_MAX + 32];
	size_t at, n_insert, n = 0;
	ssize_t hdr;
	bool nl_first = false;

	if (!base || !terminal_id || !valid_terminal_id(terminal_id))
		return -EINVAL;
	if (policy_parse_base(NULL, base, len, &b, NULL) < 0)
		return -EINVAL;
	hdr = terminal_header_end(base, len);
	if (hdr >= 0) {
		at = (size_t)hdr;
		/* a header on the last line, without its newline */
		nl_first = at == len && (len == 0 || base[len - 1] != '\n');
		n_insert = (size_t)snprintf(insert, sizeof(insert), "%sid = %s\n",
					    nl_first ? "\n" : "", terminal_id);
	} else {
		at = len >= 3 && memcmp(base, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
		n_insert =
		    (size_t)snprintf(insert, sizeof(insert), "[terminal]\nid = %s\n", terminal_id);
	}
	out = malloc(len + n_insert + 1);
	if (!out)
		return -ENOMEM;
	memcpy(out, base, at);
	n = at;
	memcpy(out + n, insert, n_insert);
	n += n_insert;
	memcpy(out + n, base + at, len - at);
	n += len - at;
	out[n] = '\0';

	if (policy_parse_string(NULL, out, n, &installed, NULL) < 0 || !installed->terminal_id ||
	    strcmp(installed->terminal_id, terminal_id) != 0)
		return -EINVAL;
	*ret = TAKE_PTR(out);
	*ret_len = n;
	return 0;
}
