/* SPDX-License-Identifier: MIT */
/* The one-time race: 32 logins with the same valid code released together, 20 rounds, through
 * real libpam (pam_start_confdir) and pam_mynaguard.so from the build dir: exactly one success
 * per round, the rest refused as replays, and exactly one event per attempt (datagram or, when
 * the agent's queue is full, the fallback file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <security/pam_appl.h>
#include <sys/wait.h>

#include "pam-fixture.h"

#define RACERS 32
#define ROUNDS 20

static const char *code_for_child;

static int answer_conv(int n, const struct pam_message **msg, struct pam_response **resp,
		       void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	(void)data;
	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
			r[i].resp = strdup(code_for_child);
	*resp = r;
	return PAM_SUCCESS;
}

/* What the agent does at start: read the fallback lines, then truncate (never unlink). */
static void collect_pending(const char *path, int *ev_success, int *ev_replay, int *ev_other)
{
	char line[4096];
	FILE *f = fopen(path, "r+");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "\"kind\":\"auth.success\""))
			(*ev_success)++;
		else if (strstr(line, "\"kind\":\"auth.replay\""))
			(*ev_replay)++;
		else
			(*ev_other)++;
	}
	if (ftruncate(fileno(f), 0) < 0)
		(*ev_other) += 1000;
	fclose(f);
}

static void test_race(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char confdir[512], store[512], pending[512], code[8];
	int agent, total_success = 0;

	(void)state;
	fx_path(confdir, sizeof(confdir), "pam.d");
	fx_path(store, sizeof(store), "store");
	fx_path(pending, sizeof(pending), "store/.pending-events");
	fx_path(sa.sun_path, sizeof(sa.sun_path), "agent.sock");
	agent = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_int_equal(bind(agent, (struct sockaddr *)&sa, sizeof(sa)), 0);

	for (int round = 0; round < ROUNDS; round++) {
		int64_t t = FX_T0 + 30 * round;
		int barrier[2], ready[2], success = 0, replay = 0, other = 0;
		int ev_success = 0, ev_replay = 0, ev_other = 0;
		pid_t pids[RACERS];
		char buf[4096];
		ssize_t n;

		fx_set_time(t);
		fx_code(t, code);
		code_for_child = code;
		assert_int_equal(pipe(barrier), 0);
		assert_int_equal(pipe(ready), 0);
		for (int i = 0; i < RACERS; i++) {
			pids[i] = fork();
			assert_true(pids[i] >= 0);
			if (pids[i] == 0) {
				struct pam_conv conv = {answer_conv, NULL};
				pam_handle_t *ph = NULL;
				char c;
				int rv;
				close(barrier[1]);
				close(ready[0]);
				/* Load the stack first, so the race is only about the code. */
				if (pam_start_confdir("mgrace", "alice", &conv, confdir, &ph) !=
				    PAM_SUCCESS)
					_exit(3);
				if (write(ready[1], "r", 1) != 1)
					_exit(3);
				if (read(barrier[0], &c, 1) != 0)
					_exit(3);
				rv = pam_authenticate(ph, PAM_SILENT);
				pam_end(ph, rv);
				_exit(rv == PAM_SUCCESS ? 0 : rv == PAM_AUTH_ERR ? 1 : 2);
			}
		}
		close(barrier[0]);
		close(ready[1]);
		for (int got = 0; got < RACERS;) {
			n = read(ready[0], buf, RACERS);
			assert_true(n > 0);
			got += (int)n;
		}
		close(ready[0]);
		close(barrier[1]); /* go */
		for (int i = 0; i < RACERS; i++) {
			int st;
			assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
			assert_true(WIFEXITED(st));
			if (WEXITSTATUS(st) == 0)
				success++;
			else if (WEXITSTATUS(st) == 1)
				replay++;
			else
				other++;
		}
		while ((n = recv(agent, buf, sizeof(buf) - 1, 0)) > 0) {
			buf[n] = '\0';
			if (strstr(buf, "\"kind\":\"auth.success\""))
				ev_success++;
			else if (strstr(buf, "\"kind\":\"auth.replay\""))
				ev_replay++;
			else
				ev_other++;
		}
		collect_pending(pending, &ev_success, &ev_replay, &ev_other);
		if (success != 1 || other != 0 || ev_success != 1 || ev_replay != RACERS - 1 ||
		    ev_other != 0)
			fprintf(stderr,
				"round %d: %d successes, %d refused, %d other; events %d success, "
				"%d replay, %d other\n",
				round, success, replay, other, ev_success, ev_replay, ev_other);
		assert_int_equal(success, 1);
		assert_int_equal(replay, RACERS - 1);
		assert_int_equal(ev_success, 1);
		assert_int_equal(ev_replay, RACERS - 1);
		total_success += success;
	}
	assert_int_equal(total_success, ROUNDS);
	close(agent);
}

static void write_confdir(void)
{
	const char *module = getenv("MG_PAM_MODULE");
	char p[512];

	if (!module)
		exit(1);
	fx_path(p, sizeof(p), "pam.d");
	mkdir(p, 0755);
	fx_write("pam.d/mgrace",
		 "auth required %s store=%s/store policy=%s/policy.conf socket=%s/agent.sock\n",
		 module, fx_dir, fx_dir, fx_dir);
	fx_write("pam.d/other", "auth required " FX_SECURITY "/pam_deny.so\n");
	fx_policy("policy.conf", 1, 5, "15m", false);
	fx_path(p, sizeof(p), "store");
	mkdir(p, 0700);
	chmod(p, 0700);
	fx_record("store", "alice", 0, 0, 0, 0600);
}

static int teardown(void **state)
{
	(void)state;
	fx_cleanup();
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_race),
	};

	fx_reexec(argc, argv, false, true, write_confdir);
	return cmocka_run_group_tests(tests, NULL, teardown);
}
