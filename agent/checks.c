/* SPDX-License-Identifier: MIT */
/* mynaguardd's worker: runs the compliance checks at start and every report interval, one event
 * each run. The checks that read root-only files run in the monitor (priv.h, PRIV_CHECK_RUN). */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "agent.h"
#include "compliance.h"
#include "fleet.h"
#include "priv.h"

struct agent_checks {
	struct compliance_env env;
	char paths[2 * PATH_MAX]; /* TOTP store and manifest paths, pointed to by env */
	unsigned runs;
};

/* Rebuilt before every run: a reload (SIGHUP) frees the old policy, whose strings env uses. */
static int checks_env(struct agent *a, struct agent_checks *c)
{
	const struct agent_paths *paths = agent_paths(a);
	int r;

	r = compliance_env_default(&c->env, agent_policy(a), paths->policy, paths->state, c->paths,
				   sizeof(c->paths));
	if (r < 0)
		return r;
	/* --sysfs-root (tests, umockdev) wins over the policy's [checks] sysfs_root. */
	if (paths->sysfs_root && strcmp(paths->sysfs_root, "/") != 0)
		c->env.sysfs_root = paths->sysfs_root;
	/* Records and the manifest must belong to the user the agent runs as: root in
	 * production; the test user when the test suite runs the agent unprivileged. */
	c->env.owner_uid = geteuid();
	return 0;
}

static void run_all(const struct compliance_env *env,
		    struct compliance_result results[_POLICY_CHECK_MAX])
{
	for (int c = 0; c < _POLICY_CHECK_MAX; c++) {
		/* The ones reading root-only files run in the monitor. */
		if (!priv_check_root_only(c) || !env->policy->checks_enabled[c]) {
			compliance_run(env, (enum policy_check)c, &results[c]);
			continue;
		}
		int r = priv_check_run(c, &results[c]);
		if (r < 0 || results[c].check != (enum policy_check)c ||
		    (unsigned)results[c].status > COMPLIANCE_ERROR) {
			results[c] = (struct compliance_result){.check = (enum policy_check)c,
								.status = COMPLIANCE_ERROR};
			snprintf(results[c].detail, sizeof(results[c].detail),
				 "the agent's monitor did not run it: %s",
				 strerror(r < 0 ? -r : EBADMSG));
		}
	}
}

static void checks_run(struct agent *a, void *userdata)
{
	struct agent_checks *c = userdata;
	struct compliance_result results[_POLICY_CHECK_MAX];
	json_t *data = NULL, *clauses = NULL;
	unsigned failing = 0;
	int r;

	r = checks_env(a, c);
	if (r >= 0) {
		run_all(&c->env, results);
		r = compliance_to_json(&c->env, results, _POLICY_CHECK_MAX, &data, &clauses);
	}
	if (r < 0) {
		log_line(LOG_ERR,
			 "agent.error op=compliance error=\"%s\", retrying at the next interval",
			 strerror(-r));
		return;
	}
	/* docs/fleet.md: which fleet bundle the terminal runs, once one was ever applied. */
	json_t *bundle = agent_fleet_bundle_json(a);
	if (bundle)
		json_object_set_new(data, "bundle", bundle);
	for (size_t i = 0; i < _POLICY_CHECK_MAX; i++)
		if (results[i].status == COMPLIANCE_FAIL || results[i].status == COMPLIANCE_ERROR)
			failing++;
	c->runs++;
	/* agent_emit logs the event line and never fails fatally. */
	(void)agent_emit(a, EVENT_COMPLIANCE, clauses, data);
	if (failing > 0 && c->runs == 1)
		log_line(LOG_INFO, "agent.compliance failing=%u, see the compliance event",
			 failing);
}

int agent_checks_init(struct agent *a)
{
	struct agent_checks *c;
	uint64_t interval_ms;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	r = checks_env(a, c); /* fail at start on paths that cannot work */
	if (r < 0) {
		free(c);
		return r;
	}
	/* The interval is read once: a reload that changes it takes effect at the next start. */
	interval_ms = agent_policy(a)->report_interval_sec * 1000;
	if (interval_ms == 0)
		interval_ms = 900 * 1000;
	/* First run as soon as the main loop runs (0 = next tick), so start-up is not delayed. */
	r = agent_add_timer(a, 0, interval_ms, checks_run, c);
	if (r < 0) {
		free(c);
		return r;
	}
	*agent_checks_slot(a) = c;
	return 0;
}

void agent_checks_run_now(struct agent *a)
{
	struct agent_checks *c = *agent_checks_slot(a);

	if (c) /* the periodic timer keeps its own phase */
		checks_run(a, c);
}

void agent_checks_done(struct agent *a)
{
	struct agent_checks **slot = agent_checks_slot(a);

	/* The timer belongs to the loop, which is torn down after us and never fires again. */
	free(*slot);
	*slot = NULL;
}
