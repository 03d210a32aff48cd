/* SPDX-License-Identifier: MIT */
/* mynaguard-collector-token: the admin's tool on the collector host for one-time enrollment
 * tokens (create, list, delete, prune) in the collector's enrollment database. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "config.h"
#include "enroll-db.h"
#include "macro.h"
#include "parse.h"

#define DEFAULT_CONFIG "/etc/mynaguard-collector/collector.conf"
#define MAX_COUNT      10000

static void usage(FILE *f)
{
	fputs("Usage: mynaguard-collector-token [--config FILE | --database FILE] COMMAND\n"
	      "  create [--count N] [--expires DURATION] [--terminal ID]\n"
	      "                   print N new one-time tokens (default 1, valid 7d), one a line;\n"
	      "                   with --terminal only that terminal id may use it\n"
	      "  list             every token: id, state (valid, used, expired), expiry, terminal\n"
	      "  delete ID        withdraw a token before it is used\n"
	      "  prune            delete unused tokens that have expired\n"
	      "  -c, --config FILE    the collector's configuration (default " DEFAULT_CONFIG ")\n"
	      "  -d, --database FILE  the enrollment database ([enroll] database) instead\n"
	      "See mynaguard-collector-token(8).\n",
	      f);
}

/* As root, the database belongs to whoever owns its directory (the collector's user). */
static void own_like_dir(const char *path)
{
	_cleanup_free_ char *copy = strdup(path);
	struct stat st;

	if (geteuid() != 0 || !copy || stat(dirname(copy), &st) < 0)
		return;
	if (chown(path, st.st_uid, st.st_gid) < 0)
		fprintf(stderr, "mynaguard-collector-token: warning: chown %s: %s\n", path,
			strerror(errno));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"database", required_argument, NULL, 'd'},
	    {"count", required_argument, NULL, 'N'},
	    {"expires", required_argument, NULL, 'e'},
	    {"terminal", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *config_path = DEFAULT_CONFIG, *db_path = NULL, *terminal = NULL, *cmd;
	struct collector_config cfg = {0};
	struct enroll_db *db = NULL;
	char err[CONFIG_ERROR_MAX];
	unsigned count = 1;
	uint64_t expires = 7 * 86400;
	int64_t now = (int64_t)time(NULL);
	int opt, r, rc = 0;

	while ((opt = getopt_long(argc, argv, "+c:d:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'd':
			db_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	optind--; /* getopt_long starts after argv[0]: let the command stand in for it */
	argv += optind;
	argc -= optind;
	optind = 0; /* glibc: start over */
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'N':
			if (strcmp(cmd, "create") != 0 ||
			    parse_uint(optarg, 1, MAX_COUNT, &count) < 0) {
				fprintf(
				    stderr,
				    "mynaguard-collector-token: --count: 1 to %d (create only)\n",
				    MAX_COUNT);
				return 2;
			}
			break;
		case 'e':
			if (strcmp(cmd, "create") != 0 ||
			    parse_duration(optarg, 60, 366 * 86400ULL, &expires) < 0) {
				fprintf(stderr, "mynaguard-collector-token: --expires: a duration "
						"from 1m to 366d, like 12h or 7d (create only)\n");
				return 2;
			}
			break;
		case 't':
			if (strcmp(cmd, "create") != 0 || !event_terminal_id_valid(optarg) ||
			    strcmp(optarg, "mynaguard-collector") == 0) {
				fprintf(stderr,
					"mynaguard-collector-token: --terminal: a terminal id "
					"([A-Za-z0-9._-], up to 64; create only)\n");
				return 2;
			}
			terminal = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!db_path) {
		r = config_load(config_path, &cfg, err);
		if (r < 0) {
			fprintf(stderr, "mynaguard-collector-token: %s\n", err);
			return 1;
		}
		db_path = cfg.enroll_database;
	}
	r = enroll_db_open(db_path, strcmp(cmd, "create") == 0, &db);
	if (r < 0) {
		fprintf(stderr, "mynaguard-collector-token: %s: %s\n", db_path, strerror(-r));
		config_free(&cfg);
		return 1;
	}
	if (strcmp(cmd, "create") == 0 && optind == argc) {
		own_like_dir(db_path);
		for (unsigned i = 0; i < count; i++) {
			char tok[ENROLL_TOKEN_LEN + 1];
			r = enroll_token_create(db, now, now + (int64_t)expires, terminal, tok);
			if (r < 0) {
				fprintf(stderr, "mynaguard-collector-token: %s: %s\n", db_path,
					strerror(-r));
				rc = 1;
				r = 0; /* said */
				break;
			}
			printf("%s\n", tok);
			explicit_bzero(tok, sizeof(tok));
		}
	} else if (strcmp(cmd, "list") == 0 && optind == argc) {
		r = enroll_token_list(db, now, stdout);
		rc = r < 0;
	} else if (strcmp(cmd, "delete") == 0 && optind + 1 == argc) {
		r = enroll_token_delete(db, argv[optind], now);
		if (r == 0)
			fprintf(stderr, "mynaguard-collector-token: no token with id %s\n",
				argv[optind]);
		rc = r <= 0;
	} else if (strcmp(cmd, "prune") == 0 && optind == argc) {
		r = enroll_token_delete(db, NULL, now);
		if (r >= 0)
			printf("deleted %d expired token%s\n", r, r == 1 ? "" : "s");
		rc = r < 0;
	} else {
		usage(stderr);
		rc = 2;
	}
	if (r < 0 && rc == 1)
		fprintf(stderr, "mynaguard-collector-token: %s: %s\n", db_path, strerror(-r));
	enroll_db_close(db);
	config_free(&cfg);
	return rc;
}
