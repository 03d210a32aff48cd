/* SPDX-License-Identifier: MIT */
/* mynaguardd entry point (root): options, policy, the split into monitor (root) and worker
 * (unprivileged, seccomp), start-up order, readiness, shutdown. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "bundle.h"
#include "log.h"
#include "config.h"
#include "emit-internal.h"
#include "fleet.h"
#include "loop.h"
#include "macro.h"
#include "notify.h"
#include "priv.h"
#include "usb_gate.h"

static void usage(FILE *f)
{
	fputs("Usage: mynaguardd --policy FILE [--socket PATH] [--notify-socket PATH]\n"
	      "                  [--spool DIR] [--state DIR] [--sysfs-root DIR] [--user NAME]\n"
	      "                  [--fleet-key FILE]\n"
	      "                  [--foreground] [-n|--check]\n"
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
		log_line(LOG_ERR, "%s", buf);
	}
	if (errs->n_dropped > 0)
		log_line(LOG_ERR, "%s: %zu more errors not shown",
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

void agent_reload_policy(struct agent *a)
{
	struct policy_errors errs = {0};
	struct policy *p = NULL;
	int r;

	r = policy_load(a->paths.policy, &p, &errs);
	if (r < 0) {
		print_policy_errors(&errs);
		policy_errors_clear(&errs);
		log_line(LOG_INFO, "agent.reload failed policy=%s, keeping the previous policy",
			 a->paths.policy);
		return;
	}
	policy_errors_clear(&errs);
	if (strcmp(p->terminal_id, a->policy->terminal_id) != 0) {
		log_line(LOG_INFO, "agent.reload refused: terminal id changed, restart mynaguardd");
		policy_free(p);
		return;
	}
	policy_free(a->policy);
	a->policy = p;
	log_line(LOG_INFO, "agent.reload ok policy=%s mode=%s", a->paths.policy,
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

static void on_worker_ready(void)
{
	fputs("READY\n", stdout);
	fflush(stdout);
	notify("READY=1");
}

static void on_stopping(void)
{
	notify("STOPPING=1");
}

/* The worker: everything that parses. Runs after priv_sandbox_enter. */
static int worker_run(struct agent *a)
{
	int r, sig;

	r = agent_emit_init(a);
	if (r < 0) {
		log_line(LOG_ERR, "agent.error op=emit-init error=\"%s\", exiting", strerror(-r));
		goto fail_emit;
	}
	/* The socket was bound before the split, when emitting was not possible yet: what PAM
	 * left in the fallback file goes now. */
	agent_emit_collect_pending(a);
	/* The trusted clock and the installed bundle's exceptions before the first decision. */
	r = tclock_init(a);
	if (r >= 0)
		r = agent_fleet_init(a);
	if (r < 0) {
		log_line(LOG_ERR, "agent.error op=fleet-init error=\"%s\", exiting", strerror(-r));
		goto fail_fleet;
	}
	r = usb_gate_start(a);
	if (r < 0) {
		log_line(LOG_ERR, "agent.error op=usb-gate error=\"%s\", exiting", strerror(-r));
		goto fail_usb;
	}
	r = agent_checks_init(a);
	if (r < 0) {
		log_line(LOG_ERR, "agent.error op=checks-init error=\"%s\", exiting", strerror(-r));
		goto fail_checks;
	}

	agent_fleet_start(a); /* a bundle that arrived while the agent was down */
	(void)priv_ready();   /* the monitor prints READY and notifies systemd */
	log_line(LOG_INFO, "agent.ready policy=%s mode=%s", a->paths.policy,
		 a->policy->usb_mode == POLICY_USB_AUDIT ? "audit" : "enforce");
	(void)agent_emit(a, EVENT_AGENT_STARTED, NULL, started_data(a));

	sig = agent_loop_run(a, agent_reload_policy);
	log_line(LOG_INFO, "agent.stopping signal=%s", sig > 0 ? sigabbrev_np(sig) : "none");
	(void)agent_emit(a, EVENT_AGENT_STOPPED, NULL,
			 json_pack("{s:s}", "signal", sig > 0 ? sigabbrev_np(sig) : "error"));
	r = sig > 0 ? 0 : sig;

	agent_checks_done(a);
fail_checks:
	usb_gate_stop(a);
fail_usb:
fail_fleet:
	agent_fleet_done(a);
	tclock_done(a);
	agent_notify_done(a);
	agent_evsock_done(a);
	agent_emit_done(a);
fail_emit:
	return r;
}

/* The monitor's channel: anything readable outside a request means the monitor is gone. */
static void on_monitor_gone(struct agent *a, int fd, uint32_t events, void *userdata)
{
	fputs("worker.error error=\"monitor gone\", exiting\n", stderr);
	_exit(1);
}

static int split(struct agent *a)
{
	struct priv_monitor_config cfg = {
	    .sysfs_root = a->paths.sysfs_root,
	    .spool_dir = a->paths.spool,
	    .state_dir = a->paths.state,
	    .policy_path = a->paths.policy,
	    .policy = &a->policy,
	    .on_ready = on_worker_ready,
	    .on_stopping = on_stopping,
	    .have_fleet_key = a->have_fleet_key,
	};
	pid_t pid, monitor = getpid();
	int sv[2], r;

	memcpy(cfg.fleet_key, a->fleet_key, sizeof(cfg.fleet_key));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_line(LOG_ERR, "agent.error op=socketpair error=\"%m\"");
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		log_line(LOG_ERR, "agent.error op=fork error=\"%m\"");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		priv_client_set_fd(sv[1]);
		r = agent_loop_reopen(a->loop);
		if (r >= 0)
			r = priv_sandbox_enter(a->worker_uid, a->worker_gid, a->change_user,
					       monitor);
		if (r < 0) {
			log_line(LOG_ERR, "worker.error op=sandbox error=\"%s\", exiting",
				 strerror(-r));
			_exit(1);
		}
		log_line(LOG_INFO, "worker.started pid=%d uid=%u seccomp=on", (int)getpid(),
			 (unsigned)geteuid());
		/* Tests only: show that the filter holds (execve is not allowed). */
		if (getenv("MYNAGUARDD_TEST_EXEC"))
			(void)execl("/bin/true", "true", (char *)NULL);
		r = agent_watch_fd(a, sv[1], on_monitor_gone, NULL);
		if (r >= 0)
			r = worker_run(a);
		fflush(stdout);
		fflush(stderr);
		_exit(r < 0 ? 1 : 0);
	}
	close(sv[1]);
	if (a->ack_ino >= 0) { /* the worker's */
		close(a->ack_ino);
		a->ack_ino = -1;
	}
	if (a->inbox_ino >= 0) {
		close(a->inbox_ino);
		a->inbox_ino = -1;
	}
	log_line(LOG_INFO, "monitor.started pid=%d worker=%d", (int)getpid(), (int)pid);
	r = priv_monitor_run(&cfg, sv[0], pid);
	close(sv[0]);
	return r;
}

/* The pinned fleet root key: --fleet-key FILE (must load), else the default path when present.
 * Without one every fleet bundle is refused (docs/fleet.md). */
static int load_fleet_key(struct agent *a, const char *path)
{
	char err[BUNDLE_ERR_MAX];
	bool given = path != NULL;
	int r;

	if (!path) {
		path = MYNAGUARD_FLEET_KEY_PATH;
		if (access(path, F_OK) < 0) {
			log_line(LOG_INFO,
				 "agent.fleet no root key at %s: fleet bundles will be refused",
				 path);
			return 0;
		}
	}
	err[0] = 0;
	r = bundle_pubkey_load(path, a->fleet_key, err, sizeof(err));
	if (r < 0) {
		log_line(LOG_ERR, "mynaguardd: --fleet-key %s: %s", path,
			 err[0] ? err : strerror(-r));
		return given ? r : 0;
	}
	a->have_fleet_key = true;
	log_line(LOG_INFO, "agent.fleet root key %s", path);
	return 0;
}

/* Who the worker runs as (see mynaguardd(8), PRIVILEGE SEPARATION). */
static int worker_identity(struct agent *a, const char *user, bool user_given)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (!pw && user_given) {
		log_line(LOG_ERR, "mynaguardd: --user %s: no such user", user);
		return -ENOENT;
	}
	if (geteuid() != 0)
		return 0; /* tests: same user, still split and filtered */
	if (!pw) {
		log_line(LOG_WARNING,
			 "agent.warning user=%s error=\"no such user\": THE WORKER RUNS AS ROOT, "
			 "without any capability (create the user: the installer does)",
			 user);
		return 0;
	}
	a->worker_uid = pw->pw_uid;
	a->worker_gid = pw->pw_gid;
	a->change_user = true;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"policy", required_argument, NULL, 'p'},
	    {"socket", required_argument, NULL, 's'},
	    {"notify-socket", required_argument, NULL, 'N'},
	    {"spool", required_argument, NULL, 'S'},
	    {"state", required_argument, NULL, 't'},
	    {"sysfs-root", required_argument, NULL, 'r'},
	    {"user", required_argument, NULL, 'u'},
	    {"fleet-key", required_argument, NULL, 'k'},
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
	    .ack_ino = -1,
	    .inbox_ino = -1,
	};
	struct policy_errors errs = {0};
	const char *user = MYNAGUARD_AGENT_USER;
	bool check = false, user_given = false, socket_given = false;
	_cleanup_free_ char *notify_default = NULL;
	const char *fleet_key = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "p:fnhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			a.paths.policy = optarg;
			break;
		case 's':
			a.paths.socket = optarg;
			socket_given = true;
			break;
		case 'N':
			a.paths.notify_socket = optarg;
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
		case 'u':
			user = optarg;
			user_given = true;
			break;
		case 'k':
			fleet_key = optarg;
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
		log_line(LOG_ERR, "mynaguardd: unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!a.paths.policy)
		a.paths.policy = MYNAGUARD_POLICY_PATH;
	/* The notice socket goes beside the event socket unless told otherwise, so an agent started
	 * with --socket elsewhere (tests, a second instance) never takes the system's path. */
	if (!a.paths.notify_socket) {
		const char *slash = strrchr(a.paths.socket, '/');
		if (!socket_given || !slash)
			a.paths.notify_socket = MYNAGUARD_NOTIFY_SOCKET_PATH;
		else if (asprintf(&notify_default, "%.*s/notify.sock",
				  (int)(slash - a.paths.socket), a.paths.socket) < 0) {
			notify_default = NULL;
			log_line(LOG_ERR, "mynaguardd: out of memory");
			return 1;
		} else
			a.paths.notify_socket = notify_default;
	}

	r = policy_load(a.paths.policy, &a.policy, &errs);
	if (r < 0) {
		print_policy_errors(&errs);
		if (errs.n == 0)
			log_line(LOG_ERR, "%s: %s", a.paths.policy, strerror(-r));
		policy_errors_clear(&errs);
		return 1;
	}
	policy_errors_clear(&errs);
	if (check) {
		log_line(LOG_INFO, "mynaguardd: %s is valid", a.paths.policy);
		policy_free(a.policy);
		return 0;
	}

	r = load_fleet_key(&a, fleet_key);
	if (r < 0) {
		policy_free(a.policy);
		return 2;
	}
	r = worker_identity(&a, user, user_given);
	if (r < 0) {
		policy_free(a.policy);
		return 2;
	}

	/* Before the split, as root: the loop (it blocks the signals that the signalfd then
	 * delivers), and the event socket with its inotify watches on the PAM fallback file. */
	r = agent_loop_new(&a.loop);
	if (r < 0) {
		log_line(LOG_ERR, "agent.error op=loop error=\"%s\"", strerror(-r));
		policy_free(a.policy);
		return 1;
	}
	/* STATE first: the socket's inotify watch on STATE/totp starts at STATE. */
	if (mkdir(a.paths.state, 0755) < 0 && errno != EEXIST)
		log_line(LOG_WARNING, "agent.warning state=%s error=\"%m\"", a.paths.state);
	r = agent_evsock_init(&a);
	if (r < 0) {
		log_line(LOG_ERR, "agent.error op=evsock-init socket=%s error=\"%s\", exiting",
			 a.paths.socket, strerror(-r));
		agent_loop_free(a.loop);
		policy_free(a.policy);
		return 1;
	}
	/* The desktop notice socket: a convenience for the clerk, never a reason not to enforce. */
	r = agent_notify_init(&a);
	if (r < 0)
		log_line(LOG_WARNING,
			 "agent.warning op=notify-init socket=%s error=\"%s\" (no desktop notices)",
			 a.paths.notify_socket, strerror(-r));
	r = agent_emit_watch_ack(&a);
	if (r < 0)
		fprintf(
		    stderr,
		    "agent.warning op=watch-ack spool=%s error=\"%s\" (acknowledged segments are "
		    "deleted when events are stored)\n",
		    a.paths.spool, strerror(-r));
	r = agent_fleet_watch_inbox(&a);
	if (r < 0)
		log_line(LOG_WARNING,
			 "agent.warning op=watch-inbox spool=%s error=\"%s\" (fleet bundles are "
			 "taken at the next start)",
			 a.paths.spool, strerror(-r));
	r = split(&a);
	if (a.ack_ino >= 0)
		close(a.ack_ino);
	if (a.inbox_ino >= 0)
		close(a.inbox_ino);
	agent_evsock_forget(&a);
	agent_notify_forget(&a);
	agent_loop_free(a.loop);
	policy_free(a.policy);
	return r < 0 ? 1 : 0;
}
