/* SPDX-License-Identifier: MIT */
/* mynaguardd main loop: epoll over watched fds, timerfd timers and a signalfd. No polling. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "loop.h"
#include "macro.h"

struct agent_watch {
	int fd;
	bool dead;   /* unwatched while its batch was being dispatched; freed after it */
	bool own_fd; /* timers: the loop closes the timerfd */
	agent_io_fn fn;
	agent_timer_fn timer_fn;
	void *userdata;
	struct agent_watch *next;
};

struct agent_loop {
	int epfd;
	int sigfd;
	struct agent_watch *watches;
};

static void loop_sigset(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGHUP);
}

/* A new epoll instance with a signalfd in it (data NULL marks the signalfd) and every live
 * watch of l (none for a new loop); replaces l's. */
static int loop_open(struct agent_loop *l)
{
	_cleanup_close_ int epfd = -1, sigfd = -1;
	struct epoll_event ev = {.events = EPOLLIN};
	sigset_t mask;

	loop_sigset(&mask);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return negative_errno();
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0)
		return negative_errno();
	ev.data.ptr = NULL;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, sigfd, &ev) < 0)
		return negative_errno();
	for (struct agent_watch *w = l->watches; w; w = w->next) {
		if (w->dead)
			continue;
		ev.data.ptr = w;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0)
			return negative_errno();
	}
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->sigfd >= 0)
		close(l->sigfd);
	l->epfd = TAKE_FD(epfd);
	l->sigfd = TAKE_FD(sigfd);
	return 0;
}

int agent_loop_new(struct agent_loop **ret)
{
	struct agent_loop *l;
	sigset_t mask;
	int r;

	loop_sigset(&mask);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return negative_errno();
	signal(SIGPIPE, SIG_IGN);

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->epfd = l->sigfd = -1;
	r = loop_open(l);
	if (r < 0) {
		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

int agent_loop_reopen(struct agent_loop *l)
{
	return loop_open(l);
}

static void free_dead(struct agent_loop *l)
{
	struct agent_watch **pp = &l->watches;

	while (*pp) {
		struct agent_watch *w = *pp;
		if (w->dead) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

void agent_loop_free(struct agent_loop *l)
{
	if (!l)
		return;
	for (struct agent_watch *w = l->watches; w; w = w->next) {
		if (w->own_fd && !w->dead)
			close(w->fd);
		w->dead = true;
	}
	free_dead(l);
	close(l->epfd);
	close(l->sigfd);
	free(l);
}

static int add_watch(struct agent_loop *l, int fd, struct agent_watch **ret)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct agent_watch *w;

	for (w = l->watches; w; w = w->next)
		if (!w->dead && w->fd == fd)
			return -EEXIST;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	ev.data.ptr = w;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = negative_errno();
		free(w);
		return r;
	}
	w->next = l->watches;
	l->watches = w;
	*ret = w;
	return 0;
}

int agent_watch_fd(struct agent *a, int fd, agent_io_fn fn, void *userdata)
{
	struct agent_watch *w;
	int r;

	if (!a || !a->loop || fd < 0 || !fn)
		return -EINVAL;
	r = add_watch(a->loop, fd, &w);
	if (r < 0)
		return r;
	w->fn = fn;
	w->userdata = userdata;
	return 0;
}

int agent_unwatch_fd(struct agent *a, int fd)
{
	if (!a || !a->loop)
		return -EINVAL;
	for (struct agent_watch *w = a->loop->watches; w; w = w->next) {
		if (w->dead || w->fd != fd)
			continue;
		(void)epoll_ctl(a->loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		if (w->own_fd)
			close(w->fd);
		w->dead = true;
		return 0;
	}
	return -ENOENT;
}

int agent_add_timer(struct agent *a, uint64_t first_ms, uint64_t interval_ms, agent_timer_fn fn,
		    void *userdata)
{
	struct itimerspec its = {0};
	_cleanup_close_ int fd = -1;
	struct agent_watch *w;
	int r;

	if (!a || !a->loop || !fn)
		return -EINVAL;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return negative_errno();
	if (first_ms == 0)
		first_ms = 1; /* 0 would disarm the timer */
	its.it_value.tv_sec = (time_t)(first_ms / 1000);
	its.it_value.tv_nsec = (long)(first_ms % 1000) * 1000000L;
	its.it_interval.tv_sec = (time_t)(interval_ms / 1000);
	its.it_interval.tv_nsec = (long)(interval_ms % 1000) * 1000000L;
	if (timerfd_settime(fd, 0, &its, NULL) < 0)
		return negative_errno();
	r = add_watch(a->loop, fd, &w);
	if (r < 0)
		return r;
	w->own_fd = true;
	w->timer_fn = fn;
	w->userdata = userdata;
	TAKE_FD(fd);
	return 0;
}

/* Returns the stopping signal, 0 to go on. */
static int handle_signals(struct agent *a, agent_reload_fn on_reload)
{
	struct signalfd_siginfo si;

	for (;;) {
		ssize_t n = read(a->loop->sigfd, &si, sizeof(si));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(si))
			return 0;
		switch (si.ssi_signo) {
		case SIGHUP:
			fputs("agent.reload signal=SIGHUP\n", stderr);
			if (on_reload)
				on_reload(a);
			break;
		case SIGTERM:
		case SIGINT:
			return (int)si.ssi_signo;
		default:
			break;
		}
	}
}

int agent_loop_run(struct agent *a, agent_reload_fn on_reload)
{
	struct agent_loop *l = a->loop;

	for (;;) {
		struct epoll_event evs[16];
		int n = epoll_wait(l->epfd, evs, (int)ELEMENTSOF(evs), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		for (int i = 0; i < n; i++) {
			struct agent_watch *w = evs[i].data.ptr;

			if (!w) {
				int sig = handle_signals(a, on_reload);
				if (sig > 0)
					return sig;
				continue;
			}
			if (w->dead)
				continue;
			if (w->timer_fn) {
				uint64_t expirations;
				if (read(w->fd, &expirations, sizeof(expirations)) !=
				    (ssize_t)sizeof(expirations))
					continue;
				w->timer_fn(a, w->userdata);
			} else {
				w->fn(a, w->fd, evs[i].events, w->userdata);
			}
		}
		free_dead(l);
	}
}

const struct policy *agent_policy(const struct agent *a)
{
	return a->policy;
}

const struct agent_paths *agent_paths(const struct agent *a)
{
	return &a->paths;
}

struct agent_emit **agent_emit_slot(struct agent *a)
{
	return &a->emit;
}

struct agent_evsock **agent_evsock_slot(struct agent *a)
{
	return &a->evsock;
}

int *agent_ack_ino_slot(struct agent *a)
{
	return &a->ack_ino;
}

struct agent_checks **agent_checks_slot(struct agent *a)
{
	return &a->checks;
}
