/* SPDX-License-Identifier: MIT */
/* mynaguardd entry point (root): options, policy, start-up order, readiness, shutdown. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "config.h"
#include "loop.h"
#include "macro.h"
#include "usb_gate.h"

static void usage(FILE *f)
{
	fputs("Usage: mynaguardd --policy FILE [--socket PATH] [--spool DIR] [--state DIR]\n"
	      "                  [--sysfs-root DIR] [--foreground] [-n|--check]\n"
	      "\n"
	      "Enforces the USB part of the policy, collects events and runs compliance checks.\n"
	      "Prints READY on stdout once it follows udev events. See mynaguardd(8).\n",
	      f);
}

static void print_policy_errors(const struct policy_errors *errs)
{
	char buf[512];

	for (size_t i = 0; i < errs->n; i++) {
		policy_error_format(errs, i, buf, sizeof(buf));
		fprintf(stderr, "%s\n", buf);
	}
	if (errs->n_dropped > 0)
		fprintf(stderr, "%s: %zu more errors not shown\n",
			errs->path ? errs->path : "policy", errs->n_dropped);
}

/* READY=1 to systemd: libsystemd when built with it, else the datagram by hand. */
static void notify(const char *msg)
{
#ifdef HAVE_SYSTEMD
	(void)sd_notify(0, msg);
#else
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	size_t len;

	if (!path || (path[0] != '/' && path[0] != '@'))
		return;
	len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
#endif
}

static void on_reload(struct agent *a)
{
	struct policy_errors errs = {0};
	struct policy *p = NULL;
	int r;

	r = policy_load(a->paths.policy, &p, &errs);
	if (r < 0) {
		print_policy_errors(&errs);
		policy_errors_clear(&errs);
		fprintf(stderr, "agent.reload failed policy=%s, keeping the previous policy\n",
			a->paths.policy);
		return;
	}
	policy_errors_clear(&errs);
	if (strcmp(p->terminal_id, a->policy->terminal_id) != 0) {
		fprintf(stderr, "agent.reload refused: terminal id changed, restart mynaguardd\n");
		policy_free(p);
		return;
	}
	policy_free(a->policy);
	a->policy = p;
	fprintf(stderr, "agent.reload ok policy=%s mode=%s\n", a->paths.policy,
		p->usb_mode == POLICY_USB_AUDIT ? "audit" : "enforce");
	usb_gate_rescan(a);
}

static json_t *started_data(const struct agent *a)
{
	return json_pack("{s:s, s:s, s:s, s:i}", "version", MYNAGUARD_VERSION, "policy",
			 a->paths.policy, "usb_mode",
			 a->policy->usb_mode == POLICY_USB_AUDIT ? "audit" : "enforce", "pid",
			 (int)getpid());
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"policy", required_argument, NULL, 'p'},
	    {"socket", required_argument, NULL, 's'},
	    {"spool", required_argument, NULL, 'S'},
	    {"state", required_argument, NULL, 't'},
	    {"sysfs-root", required_argument, NULL, 'r'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"check", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	struct agent a = {
	    .paths =
		{
		    .policy = NULL,
		    .socket = MYNAGUARD_SOCKET_PATH,
		    .spool = MYNAGUARD_SPOOL_DIR,
		    .state = MYNAGUARD_STATE_DIR,
		    .sysfs_root = "/",
		},
	};
	struct policy_errors errs = {0};
	bool check = false;
	int c, r, sig;

	while ((c = getopt_long(argc, argv, "p:fnhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			a.paths.policy = optarg;
			break;
		case 's':
			a.paths.socket = optarg;
			break;
		case 'S':
			a.paths.spool = optarg;
			break;
		case 't':
			a.paths.state = optarg;
			break;
		case 'r':
			a.paths.sysfs_root = optarg;
			break;
		case 'f':
			a.foreground = true; /* always in the foreground; accepted for clarity */
			break;
		case 'n':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			puts("mynaguardd " MYNAGUARD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mynaguardd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!a.paths.policy)
		a.paths.policy = MYNAGUARD_POLICY_PATH;

	r = policy_load(a.paths.policy, &a.policy, &errs);
	if (r < 0) {
		print_policy_errors(&errs);
		if (errs.n == 0)
			fprintf(stderr, "%s: %s\n", a.paths.policy, strerror(-r));
		policy_errors_clear(&errs);
		return 1;
	}
	policy_errors_clear(&errs);
	if (check) {
		fprintf(stderr, "mynaguardd: %s is valid\n", a.paths.policy);
		policy_free(a.policy);
		return 0;
	}

	/* The loop first: it blocks the signals that the signalfd then delivers. */
	r = agent_loop_new(&a.loop);
	if (r < 0) {
		fprintf(stderr, "agent.error op=loop error=\"%s\"\n", strerror(-r));
		policy_free(a.policy);
		return 1;
	}
	r = agent_emit_init(&a);
	if (r < 0) {
		fprintf(stderr, "agent.error op=emit-init error=\"%s\", exiting\n", strerror(-r));
		goto fail_emit;
	}
	r = agent_evsock_init(&a);
	if (r < 0) {
		fprintf(stderr, "agent.error op=evsock-init socket=%s error=\"%s\", exiting\n",
			a.paths.socket, strerror(-r));
		goto fail_evsock;
	}
	r = usb_gate_start(&a);
	if (r < 0) {
		fprintf(stderr, "agent.error op=usb-gate error=\"%s\", exiting\n", strerror(-r));
		goto fail_usb;
	}
	r = agent_checks_init(&a);
	if (r < 0) {
		fprintf(stderr, "agent.error op=checks-init error=\"%s\", exiting\n", strerror(-r));
		goto fail_checks;
	}

	fputs("READY\n", stdout);
	fflush(stdout);
	notify("READY=1");
	fprintf(stderr, "agent.ready policy=%s mode=%s\n", a.paths.policy,
		a.policy->usb_mode == POLICY_USB_AUDIT ? "audit" : "enforce");
	(void)agent_emit(&a, EVENT_AGENT_STARTED, NULL, started_data(&a));

	sig = agent_loop_run(&a, on_reload);
	notify("STOPPING=1");
	fprintf(stderr, "agent.stopping signal=%s\n", sig > 0 ? sigabbrev_np(sig) : "none");
	(void)agent_emit(&a, EVENT_AGENT_STOPPED, NULL,
			 json_pack("{s:s}", "signal", sig > 0 ? sigabbrev_np(sig) : "error"));
	r = sig > 0 ? 0 : sig;

	agent_checks_done(&a);
fail_checks:
	usb_gate_stop(&a);
fail_usb:
	agent_evsock_done(&a);
fail_evsock:
	agent_emit_done(&a);
fail_emit:
	agent_loop_free(a.loop);
	policy_free(a.policy);
	return r < 0 ? 1 : 0;
}
