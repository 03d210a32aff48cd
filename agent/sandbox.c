/* SPDX-License-Identifier: MIT */
/* mynaguardd's worker sandbox: drop the user and every capability, no_new_privs, seccomp. */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "priv.h"

/* What the worker does: read files (sysfs, policy, /etc for the checks, /proc), udev netlink,
 * the event socket, the notice socket, epoll/timerfd/signalfd/inotify, memory, time, and the monitor channel. */
static const int allowed[] = {
    SCMP_SYS(read),
    SCMP_SYS(readv),
    SCMP_SYS(pread64),
    SCMP_SYS(write),
    SCMP_SYS(writev),
    SCMP_SYS(close),
    SCMP_SYS(openat),
    SCMP_SYS(open),
    SCMP_SYS(fstat),
    SCMP_SYS(fstatfs),
    SCMP_SYS(statfs),
    SCMP_SYS(fadvise64),
    SCMP_SYS(stat),
    SCMP_SYS(lstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(statx),
    SCMP_SYS(lseek),
    SCMP_SYS(access),
    SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2),
    SCMP_SYS(readlink),
    SCMP_SYS(readlinkat),
    SCMP_SYS(getdents64),
    SCMP_SYS(fcntl),
    SCMP_SYS(ioctl),
    SCMP_SYS(dup),
    SCMP_SYS(dup3),
    SCMP_SYS(unlink), /* evsock.c removes its socket path at exit (DAC decides) */
    SCMP_SYS(getcwd),
    SCMP_SYS(umask),
    SCMP_SYS(brk),
    SCMP_SYS(mmap),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),
    SCMP_SYS(mprotect),
    SCMP_SYS(madvise),
    SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(timerfd_create),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_gettime),
    SCMP_SYS(signalfd4),
    SCMP_SYS(inotify_init1),
    SCMP_SYS(inotify_add_watch),
    SCMP_SYS(inotify_rm_watch),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(recvmsg),
    SCMP_SYS(recvfrom),
    SCMP_SYS(sendmsg),
    SCMP_SYS(sendto),
    SCMP_SYS(bind),
    SCMP_SYS(accept4), /* notify.c: mynaguard-notify connecting to the notice socket */
    SCMP_SYS(accept),
    SCMP_SYS(connect),
    SCMP_SYS(getsockname),
    SCMP_SYS(getsockopt),
    SCMP_SYS(setsockopt),
    SCMP_SYS(shutdown),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(time),
    SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(adjtimex), /* time.synchronized reads the clock state; setting needs a capability */
    SCMP_SYS(clock_adjtime),
    SCMP_SYS(getpid),
    SCMP_SYS(getppid),
    SCMP_SYS(gettid),
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid),
    SCMP_SYS(getgid),
    SCMP_SYS(getegid),
    SCMP_SYS(getresuid),
    SCMP_SYS(getresgid),
    SCMP_SYS(getgroups),
    SCMP_SYS(uname),
    SCMP_SYS(getrandom),
    SCMP_SYS(futex),
    SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(prlimit64),
    SCMP_SYS(getrlimit),
    SCMP_SYS(sysinfo),
    SCMP_SYS(rseq),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
};

/* A forbidden call: say which, in one line, then die (the monitor exits with it). */
static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	char msg[] = "worker.seccomp forbidden syscall=00000 (exiting)\n";
	char *p = strstr(msg, "00000");
	int nr = si->si_syscall;

	for (int i = 4; i >= 0; i--, nr /= 10)
		p[i] = (char)('0' + nr % 10);
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(128 + SIGSYS);
}

/* "argument 0 == v", spelled out: libseccomp's SCMP_A0() leaves datum_b to the compiler, which
 * clang's -Wmissing-field-initializers refuses. */
static struct scmp_arg_cmp arg0_eq(scmp_datum_t v)
{
	return (struct scmp_arg_cmp){.arg = 0, .op = SCMP_CMP_EQ, .datum_a = v, .datum_b = 0};
}

static int seccomp_install(void)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	scmp_filter_ctx ctx;
	int r;

	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return negative_errno();
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(allowed); i++) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
		if (r < 0 && r != -EDOM) /* -EDOM: not on this architecture */
			goto out;
	}
	/* Sockets: AF_UNIX (the event socket, sd-daemon-free logging) and AF_NETLINK (udev). */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, arg0_eq(AF_UNIX));
	if (r >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, arg0_eq(AF_NETLINK));
	/* abort() and raise(): signals to itself only. */
	if (r >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				     arg0_eq((scmp_datum_t)getpid()));
	if (r >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
				     arg0_eq((scmp_datum_t)getpid()));
	if (r >= 0)
		r = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	return r;
}

/* The bounding and ambient sets: while still able to (CAP_SETPCAP), before the uid change. */
static int caps_drop_bounding(void)
{
	for (int c = 0; c <= CAP_LAST_CAP; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL && errno != EPERM)
			return negative_errno();
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return negative_errno();
	return 0;
}

/* Effective, permitted, inheritable: empty (after the uid change, which needs CAP_SETUID). */
static int caps_clear(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};

	if (syscall(SYS_capset, &hdr, data) < 0)
		return negative_errno();
	return 0;
}

int priv_sandbox_enter(uid_t uid, gid_t gid, bool change_user, pid_t monitor)
{
	int r;

	/* While still root: the bounding and ambient sets (the effective, permitted and
	 * inheritable sets go with the uid change, or with capset below when staying uid 0). */
	if (geteuid() == 0) {
		r = caps_drop_bounding();
		if (r < 0)
			return r;
	}
	if (change_user) {
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			return negative_errno();
		/* Fail closed: never run the worker with the old identity. */
		if (geteuid() != uid || getegid() != gid || (uid != 0 && setresuid(0, 0, 0) == 0))
			return -EPERM;
	}
	r = caps_clear();
	if (r < 0)
		return r;
	/* The credential change above clears the parent-death signal: set it now. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return negative_errno();
	if (getppid() != monitor)
		return -ESRCH; /* the monitor is already gone */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return negative_errno();
	return seccomp_install();
}
