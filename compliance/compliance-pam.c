/* SPDX-License-Identifier: MIT */
/* mfa.pam_stack: parse a Linux-PAM service file with its includes and prove pam_mynaguard is needed. */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compliance.h"
#include "macro.h"

/* Linux-PAM return values in their numeric order (security/_pam_types.h), as written in
 * "[value=action]" controls. */
static const char *const pam_codes[] = {
    "success",
    "open_err",
    "symbol_err",
    "service_err",
    "system_err",
    "buf_err",
    "perm_denied",
    "auth_err",
    "cred_insufficient",
    "authinfo_unavail",
    "user_unknown",
    "maxtries",
    "new_authtok_reqd",
    "acct_expired",
    "session_err",
    "cred_unavail",
    "cred_expired",
    "cred_err",
    "no_module_data",
    "conv_err",
    "authtok_err",
    "authtok_recover_err",
    "authtok_lock_busy",
    "authtok_disable_aging",
    "try_again",
    "ignore",
    "abort",
    "authtok_expired",
    "module_unknown",
    "bad_item",
    "conv_again",
    "incomplete",
};
#define N_CODES		 ((int)ELEMENTSOF(pam_codes))
#define CODE_SUCCESS	 0
#define CODE_PERM_DENIED 6
#define CODE_AUTH_ERR	 7
#define CODE_IGNORE	 25

/* Actions as Linux-PAM numbers them: a positive number is a jump over that many modules. */
#define ACT_IGNORE 0
#define ACT_OK	   (-1)
#define ACT_DONE   (-2)
#define ACT_BAD	   (-3)
#define ACT_DIE	   (-4)
#define ACT_RESET  (-5)
#define ACT_UNDEF  (-6)

enum entry_kind {
	ENTRY_MODULE,
	ENTRY_SUBSTACK, /* the marker Linux-PAM puts before a substack's modules */
};

struct pam_entry {
	enum entry_kind kind;
	unsigned level; /* substack nesting */
	int actions[N_CODES];
	bool named[N_CODES]; /* codes written in the control (outcomes worth trying) */
	bool must_fail;	     /* malformed line: Linux-PAM forces a failure there */
	bool dash;	     /* "-auth": silently skipped when the module is missing */
	bool nullok;
	char module[64];  /* basename of the module path */
	char control[48]; /* as written, shortened, for the detail */
	char where[96];	  /* "FILE:LINE" */
};

struct pam_ctx {
	compliance_pam_load_fn load;
	void *userdata;
	struct pam_entry *entries;
	size_t n;
	unsigned files_loaded;
	const char *chain[COMPLIANCE_PAM_INCLUDE_DEPTH + 1]; /* files being loaded, for loops */
	unsigned depth;
	char problem[COMPLIANCE_DETAIL_MAX]; /* first problem found while loading */
	enum compliance_status problem_status;
	bool service_missing; /* the service's own file does not exist */
};

static void set_problem(struct pam_ctx *c, enum compliance_status st, const char *fmt, ...)
    _printf_(3, 4);
static void set_problem(struct pam_ctx *c, enum compliance_status st, const char *fmt, ...)
{
	va_list ap;

	if (c->problem[0])
		return;
	va_start(ap, fmt);
	vsnprintf(c->problem, sizeof(c->problem), fmt, ap);
	va_end(ap);
	c->problem_status = st;
}

static void set_actions(struct pam_entry *e, int success, int new_authtok, int ignore, int dflt)
{
	for (int i = 0; i < N_CODES; i++)
		e->actions[i] = dflt;
	e->actions[CODE_SUCCESS] = success;
	e->actions[12] = new_authtok; /* new_authtok_reqd */
	if (ignore != ACT_UNDEF)
		e->actions[CODE_IGNORE] = ignore;
}

static int parse_action(const char *s, int *ret)
{
	static const struct {
		const char *name;
		int act;
	} names[] = {
	    {"ignore", ACT_IGNORE}, {"ok", ACT_OK},   {"done", ACT_DONE},
	    {"bad", ACT_BAD},	    {"die", ACT_DIE}, {"reset", ACT_RESET},
	};

	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (strcasecmp(s, names[i].name) == 0) {
			*ret = names[i].act;
			return 0;
		}
	/* A jump: 1..99 (a larger jump is as wrong as a jump past the end). */
	if (s[0] >= '0' && s[0] <= '9' && strlen(s) <= 2 && strspn(s, "0123456789") == strlen(s)) {
		*ret = atoi(s);
		return 0;
	}
	return -EINVAL;
}

/* "[value=action ...]" without the brackets. */
static int parse_bracket_control(char *s, struct pam_entry *e)
{
	int dflt = ACT_UNDEF;
	char *save = NULL;

	for (int i = 0; i < N_CODES; i++)
		e->actions[i] = ACT_UNDEF;
	for (char *tok = strtok_r(s, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '=');
		int act;

		if (!eq)
			return -EINVAL;
		*eq = '\0';
		if (parse_action(eq + 1, &act) < 0)
			return -EINVAL;
		if (strcasecmp(tok, "default") == 0) {
			dflt = act;
			continue;
		}
		int code = -1;
		for (int i = 0; i < N_CODES; i++)
			if (strcasecmp(tok, pam_codes[i]) == 0)
				code = i;
		if (code < 0)
			return -EINVAL;
		e->actions[code] = act;
		e->named[code] = true;
	}
	/* Linux-PAM: codes left out take default=, and without one "bad". */
	for (int i = 0; i < N_CODES; i++)
		if (e->actions[i] == ACT_UNDEF)
			e->actions[i] = dflt == ACT_UNDEF ? ACT_BAD : dflt;
	return 0;
}

/* Next token of a PAM line: whitespace-separated, except that "[...]" (with "\]" escapes) is
 * one token even with spaces inside. Returns NULL at the end. */
static char *next_token(char **p)
{
	char *s = *p, *start;

	s += strspn(s, " \t\r\n");
	if (!*s) {
		*p = s;
		return NULL;
	}
	start = s;
	if (*s == '[') {
		char *w = s + 1, *rest;
		bool closed;

		for (s++; *s && *s != ']'; s++) {
			if (*s == '\\' && s[1] == ']')
				s++;
			*w++ = *s;
		}
		closed = *s == ']';
		if (closed)
			s++;
		/* "[a]b": Linux-PAM keeps glued text in the token; we only need to move on */
		s += strcspn(s, " \t\r\n");
		rest = *s ? s + 1 : s;
		/* w never passes s, so these writes only touch bytes already consumed */
		if (closed)
			*w++ = ']';
		*w = '\0';
		*p = rest;
		return start;
	}
	s += strcspn(s, " \t\r\n");
	if (*s)
		*s++ = '\0';
	*p = s;
	return start;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static int load_file(struct pam_ctx *c, const char *name, const char *from, unsigned level,
		     bool substack);

/* One logical line (comments and continuations already handled). */
static int parse_line(struct pam_ctx *c, char *line, const char *file, unsigned lineno,
		      unsigned level)
{
	char where[96];
	char *p = line, *tok;
	bool dash = false;

	snprintf(where, sizeof(where), "%s:%u", file, lineno);
	tok = next_token(&p);
	if (!tok)
		return 0;

	if (tok[0] == '@') {
		if (strcasecmp(tok, "@include") != 0)
			return 0; /* Linux-PAM ignores unknown directives with a log line */
		tok = next_token(&p);
		if (!tok) {
			set_problem(c, COMPLIANCE_FAIL, "%s: @include without a file name", where);
			return 0;
		}
		return load_file(c, tok, where, level, false);
	}

	if (tok[0] == '-') {
		dash = true;
		tok++;
	}
	if (strcasecmp(tok, "auth") != 0)
		return 0; /* account/password/session, or a bad type: not the auth stack */

	struct pam_entry e = {
	    .kind = ENTRY_MODULE,
	    .level = level,
	    .dash = dash,
	};
	snprintf(e.where, sizeof(e.where), "%s", where);

	tok = next_token(&p);
	if (!tok) {
		e.must_fail = true;
		set_actions(&e, ACT_BAD, ACT_BAD, ACT_BAD, ACT_BAD);
		snprintf(e.module, sizeof(e.module), "(missing control)");
		goto add;
	}
	snprintf(e.control, sizeof(e.control), "%s", tok);

	if (tok[0] == '[') {
		size_t l = strlen(tok);
		char inner[COMPLIANCE_PAM_LINE_MAX];

		if (l < 2 || tok[l - 1] != ']') {
			e.must_fail = true;
			set_actions(&e, ACT_BAD, ACT_BAD, ACT_BAD, ACT_BAD);
		} else {
			snprintf(inner, sizeof(inner), "%.*s", (int)(l - 2), tok + 1);
			if (parse_bracket_control(inner, &e) < 0) {
				memset(e.named, 0, sizeof(e.named));
				e.must_fail = true;
				set_actions(&e, ACT_BAD, ACT_BAD, ACT_BAD, ACT_BAD);
			}
		}
	} else if (strcasecmp(tok, "required") == 0) {
		set_actions(&e, ACT_OK, ACT_OK, ACT_IGNORE, ACT_BAD);
	} else if (strcasecmp(tok, "requisite") == 0) {
		set_actions(&e, ACT_OK, ACT_OK, ACT_IGNORE, ACT_DIE);
	} else if (strcasecmp(tok, "sufficient") == 0) {
		set_actions(&e, ACT_DONE, ACT_DONE, ACT_UNDEF, ACT_IGNORE);
	} else if (strcasecmp(tok, "optional") == 0) {
		set_actions(&e, ACT_OK, ACT_OK, ACT_UNDEF, ACT_IGNORE);
	} else if (strcasecmp(tok, "include") == 0 || strcasecmp(tok, "substack") == 0) {
		bool sub = strcasecmp(tok, "substack") == 0;

		tok = next_token(&p);
		if (!tok) {
			set_problem(c, COMPLIANCE_FAIL, "%s: %s without a file name", where,
				    sub ? "substack" : "include");
			return 0;
		}
		if (sub) {
			if (c->n >= COMPLIANCE_PAM_MAX_ENTRIES) {
				set_problem(c, COMPLIANCE_ERROR, "more than %d auth entries",
					    COMPLIANCE_PAM_MAX_ENTRIES);
				return -E2BIG;
			}
			c->entries[c->n++] = (struct pam_entry){
			    .kind = ENTRY_SUBSTACK,
			    .level = level,
			};
			snprintf(c->entries[c->n - 1].where, sizeof(e.where), "%s", where);
			return load_file(c, tok, where, level + 1, true);
		}
		return load_file(c, tok, where, level, false);
	} else {
		e.must_fail = true;
		set_actions(&e, ACT_BAD, ACT_BAD, ACT_BAD, ACT_BAD);
	}

	tok = next_token(&p);
	if (!tok) {
		e.must_fail = true;
		set_actions(&e, ACT_BAD, ACT_BAD, ACT_BAD, ACT_BAD);
		snprintf(e.module, sizeof(e.module), "(missing module)");
		goto add;
	}
	snprintf(e.module, sizeof(e.module), "%s", base_name(tok));
	while ((tok = next_token(&p)))
		if (strcmp(tok, "nullok") == 0)
			e.nullok = true;

add:
	if (c->n >= COMPLIANCE_PAM_MAX_ENTRIES) {
		set_problem(c, COMPLIANCE_ERROR, "more than %d auth entries",
			    COMPLIANCE_PAM_MAX_ENTRIES);
		return -E2BIG;
	}
	c->entries[c->n++] = e;
	return 0;
}

/* Split text into logical lines the way Linux-PAM does: '#' starts a comment, a backslash at
 * the end of a line joins the next one. */
static int parse_text(struct pam_ctx *c, const char *text, size_t len, const char *file,
		      unsigned level)
{
	char line[COMPLIANCE_PAM_LINE_MAX];
	size_t ll = 0;
	unsigned lineno = 0, start_line = 1;
	bool in_comment = false;

	for (size_t i = 0; i <= len; i++) {
		char ch = i < len ? text[i] : '\n';

		if (ch == '\0')
			ch = ' '; /* a NUL must not cut the line short unseen */
		if (ch == '\n') {
			lineno++;
			if (!in_comment && ll > 0 && line[ll - 1] == '\\') {
				line[ll - 1] = ' '; /* continuation */
				continue;
			}
			line[ll] = '\0';
			int r = parse_line(c, line, file, start_line, level);
			if (r < 0)
				return r;
			ll = 0;
			in_comment = false;
			start_line = lineno + 1;
			continue;
		}
		if (in_comment)
			continue;
		if (ch == '#') {
			in_comment = true;
			continue;
		}
		if (ll + 1 >= sizeof(line)) {
			set_problem(c, COMPLIANCE_ERROR, "%s:%u: line longer than %d bytes", file,
				    start_line, COMPLIANCE_PAM_LINE_MAX);
			return -E2BIG;
		}
		line[ll++] = ch;
	}
	return 0;
}

static int load_file(struct pam_ctx *c, const char *name, const char *from, unsigned level,
		     bool substack)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r;

	for (unsigned i = 0; i < c->depth; i++)
		if (strcmp(c->chain[i], name) == 0) {
			set_problem(c, COMPLIANCE_FAIL, "%s: include loop through '%s'", from,
				    name);
			return -ELOOP;
		}
	if (c->depth >= COMPLIANCE_PAM_INCLUDE_DEPTH) {
		set_problem(c, COMPLIANCE_FAIL, "%s: includes nested deeper than %d", from,
			    COMPLIANCE_PAM_INCLUDE_DEPTH);
		return -ELOOP;
	}
	if (++c->files_loaded > COMPLIANCE_PAM_MAX_FILES) {
		set_problem(c, COMPLIANCE_ERROR, "more than %d files included",
			    COMPLIANCE_PAM_MAX_FILES);
		return -E2BIG;
	}
	r = c->load(c->userdata, name, &text, &len);
	if (r == -ENOENT) {
		if (from)
			set_problem(c, COMPLIANCE_FAIL, "%s: %s '%s' not found", from,
				    substack ? "substack" : "include", name);
		else {
			set_problem(c, COMPLIANCE_FAIL, "service file '%s' not found", name);
			c->service_missing = true;
		}
		return r;
	}
	if (r == -EFBIG) {
		set_problem(c, COMPLIANCE_ERROR, "'%s' larger than %d bytes", name,
			    COMPLIANCE_PAM_FILE_MAX);
		return r;
	}
	if (r < 0) {
		set_problem(c, COMPLIANCE_ERROR, "cannot read '%s': %s", name, strerror(-r));
		return r;
	}

	c->chain[c->depth++] = name;
	r = parse_text(c, text, len, base_name(name), level);
	c->depth--;
	return r;
}

/* ---- The stack walk ---- */

enum impression {
	IMP_UNDEF,
	IMP_POS_SUCCESS, /* positive, status PAM_SUCCESS */
	IMP_POS_OTHER,	 /* positive, another status: the stack still fails */
	IMP_NEG,
	_IMP_MAX,
};

static bool is_mynaguard(const struct pam_entry *e)
{
	return e->kind == ENTRY_MODULE && !e->must_fail &&
	       (strcmp(e->module, "pam_mynaguard.so") == 0 ||
		strcmp(e->module, "pam_mynaguard") == 0);
}

static bool is_password_module(const struct pam_entry *e)
{
	static const char *const mods[] = {"pam_unix.so", "pam_sss.so", "pam_ldap.so",
					   "pam_winbind.so", "pam_krb5.so"};

	if (e->kind != ENTRY_MODULE || e->must_fail)
		return false;
	for (size_t i = 0; i < ELEMENTSOF(mods); i++)
		if (strcmp(e->module, mods[i]) == 0)
			return true;
	return false;
}

struct step {
	size_t entry;
	int code;
	size_t next; /* index the walk went on at */
	int action;
};

struct walk {
	const struct pam_entry *e;
	size_t n;
	bool visited[COMPLIANCE_PAM_MAX_ENTRIES + 1][_IMP_MAX];
	struct step path[COMPLIANCE_PAM_MAX_ENTRIES + 1];
	size_t path_len;
};

/* The return codes worth trying for entry e: each named code, success, ignore and one code
 * that stands for every unnamed failure. pam_mynaguard never succeeds here (the attacker does
 * not know the code) and never returns PAM_IGNORE (it does only with nullok, refused before). */
static size_t outcomes(const struct pam_entry *e, int ret[N_CODES])
{
	size_t n = 0;
	bool mg = is_mynaguard(e);

	if (e->must_fail) {
		ret[n++] = CODE_PERM_DENIED;
		return n;
	}
	if (strcmp(e->module, "pam_permit.so") == 0) {
		ret[n++] = CODE_SUCCESS;
		return n;
	}
	if (strcmp(e->module, "pam_deny.so") == 0) {
		ret[n++] = CODE_AUTH_ERR;
		return n;
	}
	for (int i = 0; i < N_CODES; i++) {
		bool want = e->named[i] || i == CODE_SUCCESS || i == CODE_IGNORE;

		if (mg && (i == CODE_SUCCESS || i == CODE_IGNORE))
			want = false;
		if (want)
			ret[n++] = i;
	}
	/* An unnamed failure code (all share the default action); auth_err reads best. */
	if (!e->named[CODE_AUTH_ERR]) {
		ret[n++] = CODE_AUTH_ERR;
		return n;
	}
	for (int i = 1; i < N_CODES; i++)
		if (i != CODE_IGNORE && !e->named[i] && i != 12) {
			ret[n++] = i;
			break;
		}
	return n;
}

/* Index after the end of the (sub)stack that entry i belongs to. */
static size_t level_end(const struct walk *w, size_t i)
{
	unsigned level = w->e[i].level;

	while (i + 1 < w->n && w->e[i + 1].level >= level)
		i++;
	return i + 1;
}

static bool reach_success(struct walk *w, size_t i, enum impression imp)
{
	if (i >= w->n)
		return imp == IMP_POS_SUCCESS;
	if (w->visited[i][imp])
		return false;
	w->visited[i][imp] = true;

	const struct pam_entry *e = &w->e[i];
	if (e->kind == ENTRY_SUBSTACK)
		return reach_success(w, i + 1, imp);

	int codes[N_CODES + 1];
	size_t nc = outcomes(e, codes);
	for (size_t k = 0; k < nc; k++) {
		int code = codes[k], act = e->actions[code];
		enum impression ni = imp;
		size_t next = i + 1;

		switch (act) {
		case ACT_RESET:
			/* Linux-PAM restores the state at substack entry; undefined is the most
			 * permissive choice and exact at the top level. */
			ni = IMP_UNDEF;
			break;
		case ACT_OK:
		case ACT_DONE:
			if (imp == IMP_UNDEF || imp == IMP_POS_SUCCESS)
				ni = code == CODE_SUCCESS ? IMP_POS_SUCCESS : IMP_POS_OTHER;
			if (act == ACT_DONE && (ni == IMP_POS_SUCCESS || ni == IMP_POS_OTHER))
				next = level_end(w, i);
			break;
		case ACT_BAD:
		case ACT_DIE:
			ni = IMP_NEG;
			if (act == ACT_DIE)
				next = level_end(w, i);
			break;
		case ACT_IGNORE:
			break;
		default:
			if (act > 0) {
				/* Skip act modules of this level; a substack counts as one. */
				size_t j = i;
				int left = act;
				unsigned level = e->level;

				while (j + 1 < w->n && w->e[j + 1].level >= level && left > 0) {
					do
						j++;
					while (j + 1 < w->n && w->e[j + 1].level > level);
					left--;
				}
				if (left > 0)
					ni = IMP_NEG; /* "bad jump in stack" */
				next = j + 1;
			}
			break;
		}

		w->path[w->path_len++] = (struct step){
		    .entry = i,
		    .code = code,
		    .next = next,
		    .action = act,
		};
		if (reach_success(w, next, ni))
			return true;
		w->path_len--;
	}
	return false;
}

static const char *action_name(int act)
{
	switch (act) {
	case ACT_IGNORE:
		return "ignore";
	case ACT_OK:
		return "ok";
	case ACT_DONE:
		return "done";
	case ACT_BAD:
		return "bad";
	case ACT_DIE:
		return "die";
	case ACT_RESET:
		return "reset";
	default:
		return "jump";
	}
}

/* Say which line lets authentication succeed without pam_mynaguard. */
static void explain(const struct walk *w, const char *service, char *detail, size_t size)
{
	const struct step *why = NULL;
	bool ran_mynaguard = false;

	for (size_t s = 0; s < w->path_len; s++) {
		const struct step *st = &w->path[s];
		const struct pam_entry *e = &w->e[st->entry];

		if (is_mynaguard(e)) {
			ran_mynaguard = true;
			why = st;
			continue;
		}
		for (size_t j = st->entry + 1; j < st->next && j < w->n; j++)
			if (is_mynaguard(&w->e[j])) {
				why = st;
				break;
			}
		if (st->action == ACT_RESET && ran_mynaguard)
			why = st;
	}
	if (!why) {
		snprintf(detail, size, "%s: authentication can succeed without pam_mynaguard",
			 service);
		return;
	}
	const struct pam_entry *e = &w->e[why->entry];
	if (is_mynaguard(e))
		snprintf(detail, size,
			 "%s: pam_mynaguard at %s (%s) lets a failed code through (%s -> %s)",
			 service, e->where, e->control, pam_codes[why->code],
			 action_name(why->action));
	else if (why->action == ACT_RESET)
		snprintf(detail, size, "%s: %s at %s (%s) resets the stack after pam_mynaguard",
			 service, e->module, e->where, e->control);
	else
		snprintf(detail, size, "%s: %s at %s (%s) skips pam_mynaguard (%s -> %s)", service,
			 e->module, e->where, e->control, pam_codes[why->code],
			 action_name(why->action));
}

enum compliance_status compliance_pam_service(const char *service, compliance_pam_load_fn load,
					      void *userdata, char *detail, size_t detail_size)
{
	_cleanup_free_ struct pam_entry *entries = NULL;
	_cleanup_free_ struct walk *w = NULL;
	struct pam_ctx c = {
	    .load = load,
	    .userdata = userdata,
	};
	const struct pam_entry *mg = NULL, *pw = NULL;
	char via_other[COMPLIANCE_DETAIL_MAX / 2];

	entries = calloc(COMPLIANCE_PAM_MAX_ENTRIES, sizeof(*entries));
	w = calloc(1, sizeof(*w));
	if (!entries || !w) {
		snprintf(detail, detail_size, "%s: out of memory", service);
		return COMPLIANCE_ERROR;
	}
	c.entries = entries;

	(void)load_file(&c, service, NULL, 0, false);
	if (c.service_missing && strcmp(service, "other") != 0) {
		/* libpam runs the 'other' stack for a service that has no file of its own, so
		 * that is the stack a login through this service meets (Debian's 'other'
		 * includes common-auth). */
		c.problem[0] = '\0';
		c.files_loaded = 0;
		c.service_missing = false;
		(void)load_file(&c, "other", NULL, 0, false);
		if (c.service_missing) {
			snprintf(detail, detail_size,
				 "%s: service file '%s' not found, nor 'other' (PAM's fallback)",
				 service, service);
			return COMPLIANCE_FAIL;
		}
		snprintf(via_other, sizeof(via_other), "%s (no service file; PAM uses 'other')",
			 service);
		service = via_other;
	}
	if (c.problem[0]) {
		snprintf(detail, detail_size, "%s: %s", service, c.problem);
		return c.problem_status;
	}

	for (size_t i = 0; i < c.n; i++) {
		const struct pam_entry *e = &c.entries[i];

		if (is_password_module(e) && !pw && !mg)
			pw = e;
		if (!is_mynaguard(e))
			continue;
		if (!mg)
			mg = e;
		if (e->nullok) {
			snprintf(detail, detail_size, "%s: pam_mynaguard at %s has nullok", service,
				 e->where);
			return COMPLIANCE_FAIL;
		}
		if (e->dash) {
			snprintf(
			    detail, detail_size,
			    "%s: pam_mynaguard at %s is '-auth' (skipped if the module is missing)",
			    service, e->where);
			return COMPLIANCE_FAIL;
		}
	}
	if (!mg) {
		snprintf(detail, detail_size, "%s: pam_mynaguard not in the auth stack", service);
		return COMPLIANCE_FAIL;
	}
	if (!pw) {
		snprintf(detail, detail_size,
			 "%s: pam_mynaguard at %s does not come after a password module", service,
			 mg->where);
		return COMPLIANCE_FAIL;
	}

	w->e = c.entries;
	w->n = c.n;
	if (reach_success(w, 0, IMP_UNDEF)) {
		explain(w, service, detail, detail_size);
		return COMPLIANCE_FAIL;
	}
	snprintf(detail, detail_size, "%s: %s at %s, then pam_mynaguard at %s (%s)", service,
		 pw->module, pw->where, mg->where, mg->control);
	return COMPLIANCE_PASS;
}
