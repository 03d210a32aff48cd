/* SPDX-License-Identifier: MIT */
/* Benchmark (not a test): per-login latency and the same-code race for pam_mynaguard,
 * pam_oath and pam_google_authenticator (DISALLOW_REUSE), same stack shape (one auth line),
 * same run, on tmpfs and on disk. Real libpam via pam_start_confdir; the clock is faked with
 * libfaketime (FAKETIME, re-read on every call) so every login has a fresh valid code.
 * Run through run.sh, which builds it and sets the environment. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <liboath/oath.h>
#include <security/pam_appl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define SECRET_B32 "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
#define SECRET	   "Hello!\xde\xad\xbe\xefHello!\xde\xad\xbe\xef"
#define SECRET_HEX "48656c6c6f21deadbeef48656c6c6f21deadbeef"
#define SEC	   "/usr/lib/x86_64-linux-gnu/security"

static const char *mg_module;
static int64_t fake_now = INT64_C(1768471210); /* advanced 30 s per login */
/* --claim (tests/bench/totp/run.sh): the module's claim= option and the row's label */
static const char *claim_opt = "";
static const char *row_label;
static const char *answer;
static int agent_fd = -1;

static void set_time(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[64];

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	setenv("FAKETIME", buf, 1);
}

static void code_at(int64_t t, char out[8])
{
	if (oath_totp_generate2(SECRET, 20, (time_t)t, 30, 0, 6, 0, out) != OATH_OK)
		abort();
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *d)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	(void)d;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
		    msg[i]->msg_style == PAM_PROMPT_ECHO_ON)
			r[i].resp = strdup(answer);
	*resp = r;
	return PAM_SUCCESS;
}

static void writef(const char *path, mode_t mode, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void writef(const char *path, mode_t mode, const char *fmt, ...)
{
	va_list ap;
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(1);
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	chmod(path, mode);
}

/* Fresh state for one module in dir. */
static void reset_state(const char *dir, const char *mod)
{
	char p[512], cmd[1200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s/store' '%s/ga' '%s/users.oath'*", dir, dir, dir);
	if (system(cmd) != 0)
		exit(1);
	if (strcmp(mod, "mynaguard") == 0) {
		char s0[128], s1[128];
		int n;
		snprintf(p, sizeof(p), "%s/store", dir);
		mkdir(p, 0700);
		n = snprintf(s0, sizeof(s0), "state0 %020d %020d %04d %020d ", 1, 0, 0, 0);
		snprintf(s0 + n, sizeof(s0) - (size_t)n, "%08lx\n",
			 (unsigned long)crc32(0, (const Bytef *)s0, (uInt)(n - 1)));
		n = snprintf(s1, sizeof(s1), "state1 %020d %020d %04d %020d ", 0, 0, 0, 0);
		snprintf(s1 + n, sizeof(s1) - (size_t)n, "%08lx\n",
			 (unsigned long)crc32(0, (const Bytef *)s1, (uInt)(n - 1)));
		snprintf(p, sizeof(p), "%s/store/root", dir);
		writef(p, 0600,
		       "mynaguard-totp 1\nsecret " SECRET_B32 "\ndigits 6\nperiod 30\n"
		       "enrolled 1700000000\n%s%s",
		       s0, s1);
	} else if (strcmp(mod, "oath") == 0) {
		snprintf(p, sizeof(p), "%s/users.oath", dir);
		writef(p, 0600, "HOTP/T30/6 root - " SECRET_HEX "\n");
	} else {
		snprintf(p, sizeof(p), "%s/ga", dir);
		mkdir(p, 0700);
		snprintf(p, sizeof(p), "%s/ga/root", dir);
		writef(p, 0400, SECRET_B32 "\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n\" WINDOW_SIZE 3\n");
	}
}

static void setup_dir(const char *dir)
{
	char p[512];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(p, sizeof(p), "%s/pam.d", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/pam.d/mynaguard", dir);
	writef(p, 0644,
	       "auth required %s store=%s/store policy=%s/policy.conf socket=%s/agent.sock%s\n",
	       mg_module, dir, dir, dir, claim_opt);
	snprintf(p, sizeof(p), "%s/pam.d/oath", dir);
	writef(p, 0644,
	       "auth required " SEC "/pam_oath.so usersfile=%s/users.oath window=1 digits=6\n",
	       dir);
	snprintf(p, sizeof(p), "%s/pam.d/ga", dir);
	writef(p, 0644, "auth required " SEC "/pam_google_authenticator.so secret=%s/ga/${USER}\n",
	       dir);
	snprintf(p, sizeof(p), "%s/pam.d/other", dir);
	writef(p, 0644, "auth required " SEC "/pam_deny.so\n");
	/* max_failures high so the wrong-code path is measured, not the locked one */
	snprintf(p, sizeof(p), "%s/policy.conf", dir);
	writef(p, 0644, "[terminal]\nid = bench\n[mfa]\nwindow = 1\nmax_failures = 100\n");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", dir);
	unlink(sa.sun_path);
	if (agent_fd >= 0)
		close(agent_fd);
	agent_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (bind(agent_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("bind");
		exit(1);
	}
}

static void drain(void)
{
	char buf[4096];

	while (recv(agent_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static int one_login(const char *dir, const char *mod)
{
	struct pam_conv c = {conv, NULL};
	pam_handle_t *ph = NULL;
	char confdir[512];
	int rv;

	snprintf(confdir, sizeof(confdir), "%s/pam.d", dir);
	if (pam_start_confdir(mod, "root", &c, confdir, &ph) != PAM_SUCCESS)
		return -1;
	rv = pam_authenticate(ph, PAM_SILENT);
	pam_end(ph, rv);
	return rv;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void latency(const char *fs, const char *dir, const char *mod, int n, bool right)
{
	double *lat = calloc((size_t)n, sizeof(double)), sum = 0;
	char code[8];
	int ok = 0;

	reset_state(dir, mod);
	for (int i = 0; i < n; i++) {
		double t0;
		int rv;
		fake_now += 30;
		set_time(fake_now);
		code_at(fake_now, code);
		answer = right ? code : "000000";
		drain();
		t0 = now_us();
		rv = one_login(dir, mod);
		lat[i] = now_us() - t0;
		sum += lat[i];
		ok += rv == PAM_SUCCESS;
		if (getenv("BENCH_DEBUG"))
			fprintf(stderr, "%s %s: rv=%d (%s)\n", fs, mod, rv, pam_strerror(NULL, rv));
	}
	qsort(lat, (size_t)n, sizeof(double), cmp_double);
	printf("| %-5s | %-22s | %-5s | %4d | %7.0f | %7.0f | %7.0f | %7.0f | %4d |\n", fs,
	       row_label		       ? row_label
	       : strcmp(mod, "mynaguard") == 0 ? "pam_mynaguard"
	       : strcmp(mod, "oath") == 0      ? "pam_oath"
					       : "pam_google_authenticator",
	       right ? "right" : "wrong", n, lat[n / 2], lat[n * 9 / 10], lat[n * 99 / 100],
	       sum / n, ok);
	fflush(stdout);
	free(lat);
}

/* racers logins with the same valid code released together; returns the successes per round
 * into hist (hist[k] = rounds with k successes). */
static void race(const char *fs, const char *dir, const char *mod, int rounds, int racers)
{
	int hist[129] = {0}, bad_rounds = 0, max = 0;
	char code[8], confdir[512];

	snprintf(confdir, sizeof(confdir), "%s/pam.d", dir);
	reset_state(dir, mod);
	for (int r = 0; r < rounds; r++) {
		int barrier[2], ready[2], success = 0;
		pid_t pids[128];
		char buf[128];

		fake_now += 30;
		set_time(fake_now);
		code_at(fake_now, code);
		answer = code;
		drain();
		if (pipe(barrier) < 0 || pipe(ready) < 0)
			exit(1);
		for (int i = 0; i < racers; i++) {
			pids[i] = fork();
			if (pids[i] == 0) {
				struct pam_conv c = {conv, NULL};
				pam_handle_t *ph = NULL;
				char ch;
				int rv;
				close(barrier[1]);
				close(ready[0]);
				if (pam_start_confdir(mod, "root", &c, confdir, &ph) != PAM_SUCCESS)
					_exit(3);
				if (write(ready[1], "r", 1) != 1 || read(barrier[0], &ch, 1) != 0)
					_exit(3);
				rv = pam_authenticate(ph, PAM_SILENT);
				pam_end(ph, rv);
				_exit(rv == PAM_SUCCESS ? 0 : 1);
			}
		}
		close(barrier[0]);
		close(ready[1]);
		for (int got = 0; got < racers;) {
			ssize_t k = read(ready[0], buf, sizeof(buf));
			if (k <= 0)
				exit(1);
			got += (int)k;
		}
		close(ready[0]);
		close(barrier[1]);
		for (int i = 0; i < racers; i++) {
			int st;
			waitpid(pids[i], &st, 0);
			success += WIFEXITED(st) && WEXITSTATUS(st) == 0;
		}
		hist[success]++;
		bad_rounds += success != 1;
		if (success > max)
			max = success;
		drain();
	}
	printf("| %-5s | %-24s | %6d | %6d | %14d | %6d | %8d |", fs,
	       strcmp(mod, "mynaguard") == 0 ? "pam_mynaguard"
	       : strcmp(mod, "oath") == 0    ? "pam_oath"
					     : "pam_google_authenticator",
	       rounds, racers, bad_rounds, hist[1], max);
	printf(" ");
	for (int k = 0; k <= racers; k++)
		if (hist[k])
			printf("%d×%d ", hist[k], k);
	printf("|\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const char *const mods[] = {"mynaguard", "oath", "ga"};
	const char *dirs[2], *names[2] = {"tmpfs", "disk"};
	int n, rounds, racers;

	/* One row: pam_mynaguard with claim=SOCKET (or none), right codes, the fake clock from
	 * START on (a step no earlier run used, so that every claim is a new one). */
	if (argc == 8 && strcmp(argv[1], "--claim") == 0) {
		static char opt[600];
		mg_module = argv[2];
		n = atoi(argv[4]);
		snprintf(opt, sizeof(opt), " claim=%s", argv[5]);
		claim_opt = opt;
		row_label = argv[6];
		fake_now = strtoll(argv[7], NULL, 10);
		if (n < 1)
			return 2;
		setenv("TZ", "UTC", 1);
		setup_dir(argv[3]);
		latency("tmpfs", argv[3], "mynaguard", n, true);
		return 0;
	}
	if (argc != 7) {
		fprintf(stderr, "usage: %s PAM_MYNAGUARD TMPFS_DIR DISK_DIR N ROUNDS RACERS\n",
			argv[0]);
		return 2;
	}
	mg_module = argv[1];
	dirs[0] = argv[2];
	dirs[1] = argv[3];
	n = atoi(argv[4]);
	rounds = atoi(argv[5]);
	racers = atoi(argv[6]);
	if (n < 10 || rounds < 1 || racers < 2 || racers > 128)
		return 2;
	setenv("TZ", "UTC", 1);

	printf("Per login (pam_start_confdir + pam_authenticate + pam_end), µs, N=%d each:\n\n", n);
	printf(
	    "| fs    | module                 | code  |    N |  median |     p90 |     p99 |    mean |   ok |\n");
	printf(
	    "| ----- | ---------------------- | ----- | ---- | ------- | ------- | ------- | ------- | ---- |\n");
	for (int f = 0; f < 2; f++) {
		setup_dir(dirs[f]);
		/* interleave the modules so machine noise hits all of them alike */
		for (int rep = 0; rep < 2; rep++)
			for (size_t m = 0; m < 3; m++)
				latency(names[f], dirs[f], mods[m], n / 2, true);
		for (size_t m = 0; m < 3; m++)
			latency(names[f], dirs[f], mods[m], n / 4, false);
	}
	printf("\nSame valid code, %d logins released together, %d rounds:\n\n", racers, rounds);
	printf(
	    "| fs    | module                   | rounds | racers | rounds with ≠1 | ok (1) | max/round | successes per round (rounds×successes) |\n");
	printf(
	    "| ----- | ------------------------ | ------ | ------ | -------------- | ------ | -------- | --- |\n");
	for (int f = 0; f < 2; f++) {
		setup_dir(dirs[f]);
		for (size_t m = 0; m < 3; m++)
			race(names[f], dirs[f], mods[m], rounds, racers);
	}
	return 0;
}
