/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: entry point — options, configuration, store, threads, signals, READY. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "alert.h"
#include "account-store.h"
#include "auth.h"
#include "backup.h"
#include "bundle.h"
#include "conf.h"
#include "config.h"
#include "enroll.h"
#include "evidence.h"
#include "fleet.h"
#include "ingest.h"
#include "macro.h"
#include "review.h"
#include "secmem.h"
#include "server.h"
#include "store-pg.h"
#include "store.h"

/* Reachable until exit, so leak checkers see what the threads still hold. */
static struct collector collector;
static struct collector_config cfg;

static void store_closep(struct store **s)
{
	store_close(*s);
	*s = NULL;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: mynaguard-collector --config FILE [--check]\n"
	    "  -c, --config FILE  configuration (see mynaguard-collector(8))\n"
	    "  -n, --check        validate the configuration, TLS files, token and database, then exit\n"
	    "      --backup FILE  copy the database to FILE (online: safe while the collector runs)\n"
	    "      --restore FILE put the backup FILE back as the database (the collector stopped)\n"
	    "      --verify       recompute the events' hash chains; name the first broken link\n"
	    "      --terminal ID  with --verify: only this terminal's chain\n"
	    "      --retention-run  dispose of expired events now (as the daily run does), then exit\n"
	    "      --sign-heads   verify the store, then sign its chain heads ([evidence] heads_key)\n"
	    "      --migrate-to-postgresql URL  copy the SQLite store into an empty PostgreSQL one\n"
	    "      --evidence FROM TO  write the signed evidence bundle of days FROM..TO (YYYY-MM-DD)\n"
	    "      --clauses LIST  with --evidence: only these clause ids (comma-separated)\n"
	    "  -o, --output FILE  with --evidence: the bundle's file (created, not overwritten)\n"
	    "      --account-add NAME --role auditor|approver|admin [--hide-personal]\n"
	    "                     a dashboard account; the password is read from stdin, the\n"
	    "                     authenticator's otpauth:// URI is printed once\n"
	    "      --account-reset NAME    new password (stdin) and TOTP secret, unlocked\n"
	    "      --account-disable NAME  its sessions and tokens stop at once\n"
	    "      --account-token NAME --scope read|approve|admin  a script token, printed once\n"
	    "      --account-list          the accounts (no secrets)\n"
	    "  -h, --help         this text\n"
	    "      --version      print the version\n");
}

/* --verify: read-only, safe while the collector runs. Exit 0 intact, 1 broken or error. */
static int verify(const char *terminal)
{
	_cleanup_(store_closep) struct store *s = NULL;
	char err[EVIDENCE_ERROR_MAX];
	struct evidence_verify v;
	int r;

	r = store_open(cfg.database, false, &s);
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: database %s: %s\n", cfg.database,
			r == -EPROTO
			    ? "another schema version (start the collector once to migrate)"
			    : strerror(-r));
		return 1;
	}
	r = evidence_verify(s, &cfg, server_now_ms(), terminal, false, &v, err);
	if (r == -ENOENT) {
		fprintf(stderr, "mynaguard-collector: verify: no such terminal: %s\n", terminal);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: verify: %s\n", err[0] ? err : strerror(-r));
		return 1;
	}
	if (v.v.broken) {
		printf("BROKEN terminal=%s seq=%llu: %s (checked %llu terminals, %llu events)\n",
		       v.v.terminal, (unsigned long long)v.v.seq, v.v.reason,
		       (unsigned long long)v.v.terminals, (unsigned long long)v.v.events);
		evidence_verify_done(&v);
		return 1;
	}
	printf("OK %llu terminals, %llu events, %llu chains start at a disposal anchor, "
	       "%llu tombstones",
	       (unsigned long long)v.v.terminals, (unsigned long long)v.v.events,
	       (unsigned long long)v.v.anchored, (unsigned long long)v.v.tombstones);
	if (v.keyed)
		printf("; signed heads of %lld ms: %llu of %zu on their chains, %llu disposed of "
		       "since",
		       (long long)v.signed_at, (unsigned long long)v.v.heads_checked,
		       v.signed_heads, (unsigned long long)v.v.heads_disposed);
	printf("\n");
	evidence_verify_done(&v);
	return 0;
}

/* --retention-run: what the writer does hourly, from cron or a test; safe beside a running
 * collector (SQLite's lock, or PostgreSQL's advisory lock of a retention round, serialises the
 * two). */
static int retention_run(void)
{
	_cleanup_(store_closep) struct store *s = NULL;
	struct store_retention_policy policy;
	int64_t now = server_now_ms();
	uint64_t total = 0;
	unsigned disposed;
	int r;

	if (!evidence_shortest_period(&cfg)) {
		printf("retention: every kind is kept (no period configured)\n");
		return 0;
	}
	r = store_open(cfg.database, true, &s);
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: database %s: %s\n", cfg.database,
			r == -EPROTO ? "made by a newer version" : strerror(-r));
		return 1;
	}
	evidence_policy(&cfg, now, &policy);
	do {
		r = store_retention(s, &policy, now, 5000, &disposed);
		if (r < 0) {
			fprintf(stderr, "mynaguard-collector: retention: %s\n", strerror(-r));
			return 1;
		}
		total += disposed;
	} while (r > 0);
	printf("retention: disposed of %llu events past their period; %zu terminals on hold\n",
	       (unsigned long long)total, cfg.n_retention_hold);
	return 0;
}

/* --sign-heads: what the collector does daily; safe beside a running collector. */
static int sign_heads(void)
{
	_cleanup_(store_closep) struct store *ro = NULL;
	_cleanup_(store_closep) struct store *rw = NULL;
	char err[EVIDENCE_ERROR_MAX] = "", digest[65];
	size_t n = 0;
	bool first = false;
	int r;

	r = store_open(cfg.database, true, &rw);
	if (r >= 0)
		r = store_open(cfg.database, false, &ro);
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: database %s: %s\n", cfg.database,
			strerror(-r));
		return 1;
	}
	r = evidence_sign(ro, rw, &cfg, server_now_ms(), &n, &first, digest, err);
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: sign-heads: %s\n",
			err[0] ? err : strerror(-r));
		return 1;
	}
	printf("signed the chain heads of %zu terminals, sha256 %s%s\n", n, digest,
	       first && n > 0
		   ? " (no earlier signed heads: the first signing, or they were deleted)"
		   : "");
	return 0;
}

/* --migrate-to-postgresql URL: the configured SQLite store, copied into an empty PostgreSQL
 * database in one transaction (docs/postgresql.md); check both with --verify. */
static int migrate_to_postgresql(const char *url)
{
	_cleanup_(store_closep) struct store *s = NULL;
	_cleanup_free_ char *loc = NULL;
	uint64_t rows = 0;
	int r;

	if (store_pg_location(cfg.database)) {
		fprintf(stderr, "mynaguard-collector: migrate: the configured store is already "
				"PostgreSQL\n");
		return 1;
	}
	if (store_pg_url_has_password(url)) {
		fprintf(stderr, "mynaguard-collector: migrate: the url must not hold a password "
				"(others can read the command line): use a password file\n");
		return 1;
	}
	if (asprintf(&loc, "%s%s", STORE_PG_PREFIX, url) < 0)
		return 1;
	r = store_open(cfg.database, false, &s);
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: database %s: %s\n", cfg.database,
			strerror(-r));
		return 1;
	}
	r = store_migrate_to_pg(s, loc, &rows);
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: migrate: %s\n",
			r == -ENOTEMPTY	     ? "the PostgreSQL database already holds a store"
			: r == -ECONNREFUSED ? "cannot connect to PostgreSQL"
					     : strerror(-r));
		return 1;
	}
	printf("migrated %llu rows from %s into PostgreSQL; check both with --verify\n",
	       (unsigned long long)rows, cfg.database);
	return 0;
}

/* --evidence FROM TO: the signed bundle from the database file (read-only, offline or beside a
 * running collector). */
static int evidence(const char *from, const char *to, const char *clauses, const char *output)
{
	struct evidence_query q;
	struct bundle_signer *key = NULL;
	struct review_db *db = NULL;
	char err[256];
	FILE *f = NULL;
	int fd, r;

	if (evidence_query_parse(from, to, clauses, &q, err, sizeof(err)) < 0) {
		fprintf(stderr, "mynaguard-collector: --evidence: %s\n", err);
		return 2;
	}
	if (!cfg.evidence_key) {
		fprintf(stderr, "mynaguard-collector: --evidence: no [evidence] key in the "
				"configuration\n");
		return 1;
	}
	if (bundle_signer_load(cfg.evidence_key, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "mynaguard-collector: [evidence] key: %s\n", err);
		return 1;
	}
	r = review_db_open(cfg.database, &db);
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: database %s: cannot be read\n", cfg.database);
		bundle_signer_free(key);
		return 1;
	}
	fd = open(output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		fprintf(stderr, "mynaguard-collector: %s: %s\n", output, strerror(errno));
		if (fd >= 0)
			close(fd);
		review_db_close(db);
		bundle_signer_free(key);
		return 1;
	}
	r = evidence_write(db, &q, key, f, err, sizeof(err));
	if (fclose(f) != 0 && r >= 0) {
		r = -EIO;
		snprintf(err, sizeof(err), "%s: cannot be written", output);
	}
	review_db_close(db);
	bundle_signer_free(key);
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: --evidence: %s\n", err);
		unlink(output);
		return 1;
	}
	printf("evidence %s to %s written to %s\n", q.from, q.to, output);
	return 0;
}

/* ---- --account-*: admin commands beside a running collector (SQLite serialises the two) ---- */

enum account_cmd {
	ACCT_NONE,
	ACCT_ADD,
	ACCT_RESET,
	ACCT_DISABLE,
	ACCT_TOKEN,
	ACCT_LIST
};

static void account_store_closep(struct account_store **s)
{
	account_store_close(*s);
	*s = NULL;
}

/* One line from stdin, without echo when it is a terminal. */
static int read_password(char *buf, size_t size)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	size_t n;

	if (tty) {
		fprintf(stderr, "password (%d characters at least): ", ACCOUNT_PASSWORD_MIN);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (!fgets(buf, (int)size, stdin))
		buf[0] = 0;
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	if (n < ACCOUNT_PASSWORD_MIN || n > ACCOUNT_PASSWORD_MAX) {
		fprintf(stderr, "mynaguard-collector: the password must have %d to %d characters\n",
			ACCOUNT_PASSWORD_MIN, ACCOUNT_PASSWORD_MAX);
		return -EINVAL;
	}
	return 0;
}

static const char *operator_name(void)
{
	struct passwd *pw = getpwuid(geteuid());
	return pw ? pw->pw_name : "?";
}

static int account_command(enum account_cmd cmd, const char *name, const char *role_name,
			   const char *scope_name, bool hide)
{
	_cleanup_(account_store_closep) struct account_store *as = NULL;
	_cleanup_(store_closep) struct store *s = NULL;
	char password[ACCOUNT_PASSWORD_MAX + 2], uri[512], token[ACCOUNT_TOKEN_LEN + 1];
	char kerr[ACCOUNT_STORE_ERROR_MAX] = "";
	enum auth_role role = AUTH_AUDITOR;
	int64_t now = server_now_ms() / 1000;
	int r;

	if ((role_name && account_role_from_name(role_name, &role) < 0) ||
	    (scope_name && account_role_from_name(scope_name, &role) < 0)) {
		fprintf(stderr, "mynaguard-collector: role: expected auditor, approver or admin\n");
		return 2;
	}
	if (name && !account_name_valid(name)) {
		fprintf(stderr,
			"mynaguard-collector: %s: not a valid account name "
			"(1..64 of A-Z a-z 0-9 . _ @ -)\n",
			name);
		return 2;
	}
	/* migrates a store made by an older version, as the collector's start does */
	r = store_open(cfg.database, true, &s);
	if (r >= 0)
		r = account_store_open(cfg.database, cfg.accounts_secret_key, false, &as, kerr,
				       sizeof(kerr));
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: database %s: %s\n", cfg.database,
			kerr[0]	       ? kerr
			: r == -EPROTO ? "made by a newer version"
				       : strerror(-r));
		return 1;
	}
	if (kerr[0])
		fprintf(stderr, "mynaguard-collector: warning: %s\n", kerr);
	switch (cmd) {
	case ACCT_ADD:
	case ACCT_RESET:
		if (read_password(password, sizeof(password)) < 0)
			return 1;
		r = cmd == ACCT_ADD
			? account_create(as, name, role, hide, password, now, uri, sizeof(uri))
			: account_reset(as, name, password, now, uri, sizeof(uri));
		secmem_wipe(password, sizeof(password));
		if (r < 0) {
			fprintf(stderr, "mynaguard-collector: %s: %s\n", name,
				r == -EEXIST   ? "the account exists already"
				: r == -ENOENT ? "no such account"
					       : strerror(-r));
			return 1;
		}
		printf("%s\n", uri);
		secmem_wipe(uri, sizeof(uri));
		fprintf(stderr,
			"Scan it into the authenticator app (qrencode -t UTF8 makes a QR code "
			"of it); it is not shown again.\n");
		r = cmd == ACCT_ADD
			? account_outbox_add(as, "account.created",
					     json_pack("{s:s, s:s, s:b, s:s}", "name", name, "role",
						       account_role_name(role), "hide_personal",
						       hide, "by", operator_name()))
			: account_outbox_add(as, "account.created",
					     json_pack("{s:s, s:s, s:s}", "name", name, "action",
						       "reset", "by", operator_name()));
		break;
	case ACCT_DISABLE:
		r = account_disable(as, name);
		if (r < 0) {
			fprintf(stderr, "mynaguard-collector: %s: %s\n", name,
				r == -ENOENT ? "no such account" : strerror(-r));
			return 1;
		}
		printf("disabled %s\n", name);
		r = account_outbox_add(
		    as, "account.disabled",
		    json_pack("{s:s, s:s}", "name", name, "by", operator_name()));
		break;
	case ACCT_TOKEN:
		r = account_token_create(as, name, role, now, token);
		if (r < 0) {
			fprintf(stderr, "mynaguard-collector: %s: %s\n", name,
				r == -ENOENT  ? "no such (enabled) account"
				: r == -EPERM ? "the scope is above the account's role"
					      : strerror(-r));
			return 1;
		}
		printf("%s\n", token);
		secmem_wipe(token, sizeof(token));
		r = account_outbox_add(as, "account.token",
				       json_pack("{s:s, s:s, s:s}", "name", name, "scope",
						 account_role_name(role), "by", operator_name()));
		break;
	case ACCT_LIST: {
		json_t *list = NULL;
		r = account_list_json(as, &list);
		if (r >= 0) {
			json_dumpf(list, stdout, JSON_INDENT(2));
			putchar('\n');
		}
		json_decref(list);
		break;
	}
	case ACCT_NONE:
		break;
	}
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}

/* --backup / --restore: one SQLite operation on the configured database, then exit. */
static int backup_or_restore(const char *backup_path, const char *restore_path)
{
	char berr[BACKUP_ERROR_MAX];
	struct backup_info info;
	int r;

	if (backup_path)
		r = collector_backup(cfg.database, backup_path, &info, berr);
	else
		r = collector_restore(cfg.database, restore_path, &info, berr);
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector: %s failed: %s\n",
			backup_path ? "backup" : "restore", berr);
		return 1;
	}
	printf("%s %s %s %s: %d pages, schema %d, %lld events, quick_check ok\n",
	       backup_path ? "backed up" : "restored", cfg.database, backup_path ? "to" : "from",
	       backup_path ? backup_path : restore_path, info.pages, info.schema, info.rows);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"backup", required_argument, NULL, 'B'},
	    {"restore", required_argument, NULL, 'R'},
	    {"verify", no_argument, NULL, 'v'},
	    {"terminal", required_argument, NULL, 't'},
	    {"retention-run", no_argument, NULL, 'X'},
	    {"sign-heads", no_argument, NULL, 'S'},
	    {"migrate-to-postgresql", required_argument, NULL, 'M'},
	    {"evidence", required_argument, NULL, 'E'},
	    {"clauses", required_argument, NULL, 'C'},
	    {"output", required_argument, NULL, 'o'},
	    {"account-add", required_argument, NULL, 'A'},
	    {"account-reset", required_argument, NULL, 'Z'},
	    {"account-disable", required_argument, NULL, 'D'},
	    {"account-token", required_argument, NULL, 'T'},
	    {"account-list", no_argument, NULL, 'L'},
	    {"role", required_argument, NULL, 'r'},
	    {"scope", required_argument, NULL, 's'},
	    {"hide-personal", no_argument, NULL, 'H'},
	    {0},
	};
	enum account_cmd acct = ACCT_NONE;
	const char *acct_name = NULL, *role_name = NULL, *scope_name = NULL;
	bool hide = false;
	unsigned n_acct = 0;
	const char *config_path = NULL, *backup_path = NULL, *restore_path = NULL;
	const char *verify_terminal = NULL, *migrate_url = NULL;
	const char *evidence_from = NULL, *clauses = NULL, *output = NULL;
	bool check = false, do_verify = false, do_retention = false, do_sign = false;
	struct evidence_signer *heads_signer = NULL;
	char err[CONFIG_ERROR_MAX];
	_cleanup_(store_closep) struct store *wstore = NULL;
	_cleanup_(store_closep) struct store *rstore = NULL;
	sigset_t mask;
	int opt, r, sig;

	while ((opt = getopt_long(argc, argv, "c:nho:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'n':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("mynaguard-collector %s\n", MYNAGUARD_VERSION);
			return 0;
		case 'B':
			backup_path = optarg;
			break;
		case 'R':
			restore_path = optarg;
			break;
		case 'v':
			do_verify = true;
			break;
		case 't':
			verify_terminal = optarg;
			break;
		case 'X':
			do_retention = true;
			break;
		case 'S':
			do_sign = true;
			break;
		case 'M':
			migrate_url = optarg;
			break;
		case 'E':
			evidence_from = optarg;
			break;
		case 'C':
			clauses = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'A':
		case 'Z':
		case 'D':
		case 'T':
		case 'L':
			acct = opt == 'A'   ? ACCT_ADD
			       : opt == 'Z' ? ACCT_RESET
			       : opt == 'D' ? ACCT_DISABLE
			       : opt == 'T' ? ACCT_TOKEN
					    : ACCT_LIST;
			acct_name = optarg;
			n_acct++;
			break;
		case 'r':
			role_name = optarg;
			break;
		case 's':
			scope_name = optarg;
			break;
		case 'H':
			hide = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (evidence_from ? optind != argc - 1 || !output || check || backup_path || restore_path ||
				do_verify || do_retention || do_sign || migrate_url
			  : clauses || output) {
		usage(stderr);
		return 2;
	}
	if ((!evidence_from && optind < argc) || !config_path || (backup_path && restore_path) ||
	    ((backup_path || restore_path) && check) ||
	    (do_verify && (check || backup_path || restore_path)) ||
	    (verify_terminal && !do_verify) ||
	    (do_retention && (check || backup_path || restore_path || do_verify)) ||
	    (do_sign && (check || backup_path || restore_path || do_verify || do_retention)) ||
	    (migrate_url &&
	     (check || backup_path || restore_path || do_verify || do_retention || do_sign)) ||
	    (acct != ACCT_NONE &&
	     (n_acct > 1 || check || backup_path || restore_path || do_verify || do_retention ||
	      do_sign || migrate_url || evidence_from)) ||
	    (acct == ACCT_ADD) != (role_name != NULL) ||
	    (acct == ACCT_TOKEN) != (scope_name != NULL) || (hide && acct != ACCT_ADD)) {
		usage(stderr);
		return 2;
	}

	r = config_load(config_path, &cfg, err);
	if (r < 0) {
		server_log(LOG_ERR, "%s", err);
		return 1;
	}
	if (evidence_from)
		return evidence(evidence_from, argv[optind], clauses, output);
	if (backup_path || restore_path)
		return backup_or_restore(backup_path, restore_path);
	if (do_verify)
		return verify(verify_terminal);
	if (do_retention)
		return retention_run();
	if (do_sign)
		return sign_heads();
	if (migrate_url)
		return migrate_to_postgresql(migrate_url);
	if (acct != ACCT_NONE)
		return account_command(acct, acct_name, role_name, scope_name, hide);

	/* Signals go to the main thread only; every thread created below inherits the mask. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = store_open(cfg.database, true, &wstore);
	if (r < 0) {
		server_log(LOG_ERR, "database %s: %s", cfg.database,
			   r == -EPROTO ? "made by a newer version" : strerror(-r));
		return 1;
	}
	r = server_setup(&collector, &cfg, check);
	if (r < 0) {
		server_log(LOG_ERR, "cannot start: %s", strerror(-r));
		return 1;
	}
	r = enroll_setup(&collector, check);
	if (r < 0) {
		server_log(LOG_ERR, "cannot start enrollment: %s", strerror(-r));
		return 1;
	}
	r = fleet_open(&collector, &cfg, &collector.fleet);
	if (r < 0) {
		server_log(LOG_ERR, "cannot start: [fleet]: %s", strerror(-r));
		return 1;
	}
	/* the personal accounts, in the store's database (SQLite or PostgreSQL) */
	{
		char kerr[ACCOUNT_STORE_ERROR_MAX] = "";
		r = account_store_open(cfg.database, cfg.accounts_secret_key, true,
				       &collector.accounts, kerr, sizeof(kerr));
		if (r < 0) {
			server_log(LOG_ERR, "database %s (accounts): %s", cfg.database,
				   kerr[0] ? kerr : strerror(-r));
			return 1;
		}
	}
	/* the dashboard's connection: a streaming replica when [store] read_url names one */
	r = store_open(cfg.store_read_location ? cfg.store_read_location : cfg.database, false,
		       &rstore);
	if (r < 0) {
		server_log(LOG_ERR, "database %s (read-only): %s",
			   cfg.store_read_location ? cfg.store_read_location : cfg.database,
			   strerror(-r));
		return 1;
	}
	{
		char kerr[EVIDENCE_ERROR_MAX];
		r = evidence_check_keys(&cfg, kerr);
		if (r < 0) {
			server_log(LOG_ERR, "cannot start: [evidence]: %s",
				   kerr[0] ? kerr : strerror(-r));
			return 1;
		}
	}
	if (check && (r = alert_check(&cfg)) < 0) {
		server_log(LOG_ERR, "alerts: state %s: %s", cfg.alert_state, strerror(-r));
		return 1;
	}
	if (check) {
		printf("%s: OK (ingest %s, dashboard %s, database %s, schema %d)\n", config_path,
		       cfg.ingest_listen, cfg.dashboard_listen, cfg.database,
		       store_schema_version(wstore));
		return 0;
	}

	collector.dashboard.store = rstore;
	/* before the writer owns it: did an earlier run report a problem of its own? */
	uint64_t self_seq = 0;
	if (store_terminal_max_seq(wstore, INGEST_SELF_TERMINAL, &self_seq) < 0)
		self_seq = 0;
	r = ingest_writer_start(&collector, wstore, &collector.writer);
	if (r >= 0)
		r = alert_start(&cfg);
	if (r >= 0)
		r = server_start(&collector);
	if (r >= 0)
		r = enroll_start();
	if (r >= 0)
		r = evidence_signer_start(&cfg, &heads_signer);
	if (r < 0) {
		server_log(LOG_ERR, "cannot start threads: %s", strerror(-r));
		return 1;
	}
	/* what the --account-* commands did while no collector ran */
	auth_outbox_flush(&collector);
	/* this run started with a revoked list without refused lines: clear what an earlier run
	 * left on the dashboard */
	if (self_seq > 0)
		server_revoked_report_clean(&collector);
	printf("READY ingest=%s dashboard=%s%s\n", collector.ingest_addr, collector.dashboard_addr,
	       enroll_ready_text());
	fflush(stdout);
	server_log(LOG_INFO, "listening: ingest %s (%u workers), dashboard %s, database %s",
		   collector.ingest_addr, collector.n_workers, collector.dashboard_addr,
		   cfg.database);
#ifdef HAVE_SYSTEMD
	sd_notify(0, "READY=1");
#endif

	for (;;) {
		if (sigwait(&mask, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* The revoked list and the token are re-read whenever they change; HUP only
			 * confirms it in the log. */
			server_log(LOG_INFO,
				   "SIGHUP: revoked serials and token are re-read on change");
			continue;
		}
		break;
	}
	server_log(LOG_INFO, "stopping (signal %d)", sig);
#ifdef HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	evidence_signer_stop(heads_signer);
	server_stop(&collector);
	enroll_stop();
	alert_stop();
	ingest_writer_stop(collector.writer);
	collector.writer = NULL;
	collector.dashboard.store = NULL;
	fleet_close(collector.fleet);
	collector.fleet = NULL;
	account_store_close(collector.accounts);
	collector.accounts = NULL;
	return 0;
}
