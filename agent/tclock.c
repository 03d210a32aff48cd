/* SPDX-License-Identifier: MIT */
/* mynaguardd's trusted clock (docs/fleet.md, "Exceptions"): the largest wall-clock time ever
 * seen, persisted through the monitor (STATE/time-floor), advanced by CLOCK_BOOTTIME since it
 * was seen. Moving the wall clock back never moves the trusted clock back, so it never extends
 * an exception; moving it forward is believed (an exception then ends early, never late). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.h"
#include "log.h"
#include "priv.h"

#define FLOOR_WRITE_EVERY_SEC 300 /* at most every few minutes, and at each exception decision */

struct agent_tclock {
	int64_t floor;	      /* the largest wall-clock second seen (or persisted) */
	int64_t floor_boot;   /* CLOCK_BOOTTIME second when floor was taken */
	int64_t written;      /* last value handed to the monitor */
	int64_t written_boot; /* CLOCK_BOOTTIME second of that write */
};

static int64_t clock_sec(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec;
}

int64_t tclock_now(struct agent *a)
{
	struct agent_tclock *t = a->tclock;
	int64_t wall = clock_sec(CLOCK_REALTIME), boot = clock_sec(CLOCK_BOOTTIME), adv;

	if (!t)
		return wall;
	adv = t->floor + (boot - t->floor_boot);
	if (wall >= adv) {
		t->floor = wall;
		t->floor_boot = boot;
		return wall;
	}
	return adv;
}

void tclock_persist(struct agent *a, bool force)
{
	struct agent_tclock *t = a->tclock;
	int64_t now, boot = clock_sec(CLOCK_BOOTTIME);
	int r;

	if (!t)
		return;
	now = tclock_now(a);
	if (now <= t->written || (!force && boot - t->written_boot < FLOOR_WRITE_EVERY_SEC))
		return;
	r = priv_time_floor_write(now);
	if (r < 0) {
		log_line(LOG_WARNING, "tclock.warning op=write-floor error=\"%s\"", strerror(-r));
		return;
	}
	t->written = now;
	t->written_boot = boot;
}

static void on_persist_timer(struct agent *a, void *userdata)
{
	tclock_persist(a, false);
}

int tclock_init(struct agent *a)
{
	struct agent_tclock *t = calloc(1, sizeof(*t));
	int64_t floor = 0, wall;
	int r;

	if (!t)
		return -ENOMEM;
	r = priv_time_floor_read(&floor);
	if (r < 0)
		log_line(LOG_WARNING,
			 "tclock.warning op=read-floor error=\"%s\" (the trusted clock starts at "
			 "the wall clock)",
			 strerror(-r));
	t->floor = floor;
	t->floor_boot = clock_sec(CLOCK_BOOTTIME);
	t->written = floor;
	a->tclock = t;
	wall = clock_sec(CLOCK_REALTIME);
	if (floor > wall)
		log_line(LOG_WARNING,
			 "tclock.behind wall=%" PRId64 " floor=%" PRId64
			 " (the clock was set back; exceptions use the floor)",
			 wall, floor);
	tclock_persist(a, true);
	r = agent_add_timer(a, FLOOR_WRITE_EVERY_SEC * 1000, FLOOR_WRITE_EVERY_SEC * 1000,
			    on_persist_timer, NULL);
	if (r < 0)
		return r;
	return 0;
}

void tclock_done(struct agent *a)
{
	if (a->tclock)
		tclock_persist(a, true);
	free(a->tclock);
	a->tclock = NULL;
}
