/* SPDX-License-Identifier: MIT */
/* Unit tests of mynaguardd's main loop: fds, timers, unwatch during dispatch, signals. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"

struct ctx {
	int pipe[2];
	int ticks;
	int reads;
	int reloads;
	int other_fd_calls;
};

static void on_read(struct agent *a, int fd, uint32_t events, void *userdata)
{
	struct ctx *c = userdata;
	char buf[16];

	assert_true(events & 1u);
	assert_true(read(fd, buf, sizeof(buf)) > 0);
	c->reads++;
	/* unwatching itself while its batch is dispatched must be safe */
	assert_int_equal(agent_unwatch_fd(a, fd), 0);
	assert_int_equal(agent_unwatch_fd(a, fd), -ENOENT);
	kill(getpid(), SIGHUP);
	kill(getpid(), SIGTERM);
}

static void on_tick(struct agent *a, void *userdata)
{
	struct ctx *c = userdata;

	if (++c->ticks == 3)
		assert_int_equal(write(c->pipe[1], "x", 1), 1);
}

static struct ctx *reload_ctx;

static void on_reload(struct agent *a)
{
	(void)a;
	reload_ctx->reloads++;
}

static void test_loop(void **state)
{
	struct agent a = {0};
	struct ctx c = {0};

	(void)state;
	reload_ctx = &c;
	assert_int_equal(pipe(c.pipe), 0);
	assert_int_equal(agent_loop_new(&a.loop), 0);
	assert_int_equal(agent_watch_fd(&a, c.pipe[0], on_read, &c), 0);
	assert_int_equal(agent_watch_fd(&a, c.pipe[0], on_read, &c), -EEXIST);
	assert_int_equal(agent_watch_fd(&a, -1, on_read, &c), -EINVAL);
	assert_int_equal(agent_add_timer(&a, 5, 5, on_tick, &c), 0);
	assert_int_equal(agent_loop_run(&a, on_reload), SIGTERM);
	assert_int_equal(c.ticks, 3);
	assert_int_equal(c.reads, 1);
	assert_int_equal(c.reloads, 1);
	/* the accessors hand out the slots of this agent */
	assert_ptr_equal(agent_emit_slot(&a), &a.emit);
	assert_ptr_equal(agent_paths(&a), &a.paths);
	agent_loop_free(a.loop);
	close(c.pipe[0]);
	close(c.pipe[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
