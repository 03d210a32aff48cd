/* SPDX-License-Identifier: MIT */
/* Benchmark (not a test): mynaguardd decision latency from uevent to sysfs write over N simulated
 * plugs (umockdev), and its idle footprint (RSS, wake-ups per second). See run.sh. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <umockdev.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static pid_t agent_pid = -1;
static int agent_out = -1, agent_err = -1;
static char errbuf[1 << 16];
static size_t errlen;

/* Keep the agent's stderr pipe drained; remember the tail to find markers in. */
static void drain(int timeout_ms)
{
	struct pollfd p = {.fd = agent_err, .events = POLLIN};
	char tmp[8192];

	while (poll(&p, 1, timeout_ms) > 0) {
		ssize_t n = read(agent_err, tmp, sizeof(tmp));
		if (n <= 0)
			return;
		if (errlen + (size_t)n >= sizeof(errbuf)) {
			size_t keep = sizeof(errbuf) / 2;
			memmove(errbuf, errbuf + errlen - keep, keep);
			errlen = keep;
		}
		memcpy(errbuf + errlen, tmp, (size_t)n);
		errlen += (size_t)n;
		errbuf[errlen] = '\0';
		timeout_ms = 0;
	}
}

static void wait_err(const char *needle)
{
	int64_t end = now_ns() + 10LL * 1000000000;

	while (!strstr(errbuf, needle)) {
		if (now_ns() > end) {
			fprintf(stderr, "timeout waiting for '%s'\n", needle);
			exit(1);
		}
		drain(1);
	}
	errlen = 0;
	errbuf[0] = '\0';
}

static void read_status(long *rss_kb, long *switches)
{
	char path[64], line[256];
	FILE *f;

	*rss_kb = *switches = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)agent_pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		long v;
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			*rss_kb = v;
		else if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
			*switches += v;
		else if (sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
			*switches += v;
	}
	fclose(f);
}

static double cpu_seconds(void)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)agent_pid);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return 0;
	}
	fclose(f);
	char *p = strrchr(buf, ')');
	/* fields after ")": state(3) ... utime(14) stime(15) */
	if (p &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
		return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static size_t build_desc(uint8_t *buf)
{
	const uint8_t d[] = {18, 1,    0,  2, 0, 0, 0, 64, 0x81, 0x07, 0x81, 0x55,
			     0,	 1,    1,  2, 3, 1, 9, 2,  18,	 0,    1,    1,
			     0,	 0x80, 50, 9, 4, 0, 0, 0,  8,	 6,    0x50, 0};
	memcpy(buf, d, sizeof(d));
	return sizeof(d);
}

int main(int argc, char **argv)
{
	const char *agent = argc > 1 ? argv[1] : NULL;
	int n = argc > 2 ? atoi(argv[2]) : 10000;
	int idle_s = argc > 3 ? atoi(argv[3]) : 10;
	char tmp[] = "/tmp/mg-bench-XXXXXX", policy[256], spool[256], sock[256];
	int64_t *lat, *addcost, *after;
	uint8_t desc[64];
	size_t dlen = build_desc(desc);

	if (!agent || n <= 0) {
		fprintf(stderr, "usage: bench-agent PATH-TO-MYNAGUARDD [N] [IDLE_SECONDS]\n");
		return 2;
	}
	prctl(PR_SET_TIMERSLACK, 1UL);
	if (!mkdtemp(tmp))
		return 1;
	UMockdevTestbed *tb = umockdev_testbed_new();
	char *root = umockdev_testbed_get_root_dir(tb);
	const char *hub_attrs[] = {"idVendor",
				   "1d6b",
				   "idProduct",
				   "0002",
				   "authorized",
				   "1",
				   "interface_authorized_default",
				   "0",
				   NULL};
	const char *dev_props[] = {"DEVTYPE", "usb_device", NULL};
	const char *if_props[] = {"DEVTYPE", "usb_interface", NULL};
	char *hub = umockdev_testbed_add_devicev(tb, "usb", "usb1", NULL, (gchar **)hub_attrs,
						 (gchar **)dev_props);
	char path[512];
	snprintf(path, sizeof(path), "mkdir -p %s/sys/bus/usb && : > %s/sys/bus/usb/drivers_probe",
		 root, root);
	if (system(path) != 0)
		return 1;

	snprintf(policy, sizeof(policy), "%s/policy.conf", tmp);
	snprintf(spool, sizeof(spool), "%s/spool", tmp);
	snprintf(sock, sizeof(sock), "%s/event.sock", tmp);
	mkdir(spool, 0700);
	FILE *f = fopen(policy, "w");
	fputs("[terminal]\nid = bench\n", f); /* the shipped defaults otherwise */
	fclose(f);

	int out[2], err[2];
	if (pipe(out) < 0 || pipe(err) < 0)
		return 1;
	agent_pid = fork();
	if (agent_pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		execl(agent, agent, "--policy", policy, "--spool", spool, "--state", tmp,
		      "--socket", sock, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	agent_out = out[0];
	agent_err = err[0];
	{
		char buf[64] = "";
		size_t have = 0;
		while (!strstr(buf, "READY") && have < sizeof(buf) - 1) {
			ssize_t r = read(agent_out, buf + have, sizeof(buf) - 1 - have);
			if (r <= 0) {
				fprintf(stderr, "agent did not start\n");
				drain(100);
				fprintf(stderr, "%s", errbuf);
				return 1;
			}
			have += (size_t)r;
			buf[have] = '\0';
		}
	}
	for (int k = 0; k < 20; k++)
		drain(100); /* let start-up output (first compliance run, agent.started) settle */
	errlen = 0;

	long rss0, sw0, rss1, sw1;
	/* idle before any plug */
	read_status(&rss0, &sw0);
	sleep((unsigned)idle_s);
	read_status(&rss1, &sw1);
	printf("idle_start: rss_kb=%ld wakeups=%ld in %d s (%.2f/s)\n", rss1, sw1 - sw0, idle_s,
	       (double)(sw1 - sw0) / idle_s);

	lat = calloc((size_t)n, sizeof(*lat));
	addcost = calloc((size_t)n, sizeof(*addcost));
	after = calloc((size_t)n, sizeof(*after));
	double cpu0 = cpu_seconds();
	int64_t wall0 = now_ns();
	for (int i = 0; i < n; i++) {
		const char *dev_attrs[] = {"idVendor", "0781",	 "idProduct", "5581", "authorized",
					   "1",	       "serial", "BENCH",     NULL};
		const char *if_attrs[] = {"bInterfaceClass",
					  "08",
					  "bInterfaceSubClass",
					  "06",
					  "bInterfaceProtocol",
					  "50",
					  "authorized",
					  "1",
					  NULL};
		char *dev = umockdev_testbed_add_devicev(tb, "usb", "1-1", hub, (gchar **)dev_attrs,
							 (gchar **)dev_props);
		umockdev_testbed_set_attribute_binary(tb, dev, "descriptors", desc, (gssize)dlen);
		char auth[600];
		int64_t t0 = now_ns();
		char *ifc = umockdev_testbed_add_devicev(tb, "usb", "1-1:1.0", dev,
							 (gchar **)if_attrs, (gchar **)if_props);
		int64_t t1 = now_ns();
		snprintf(auth, sizeof(auth), "%s%s/authorized", root, ifc);
		for (;;) {
			char c = 0;
			int fd = open(auth, O_RDONLY);
			if (fd >= 0) {
				if (read(fd, &c, 1) != 1)
					c = 0;
				close(fd);
			}
			if (c == '0')
				break;
			if (now_ns() - t0 > 10LL * 1000000000) {
				fprintf(stderr, "plug %d: no write within 10 s\n", i);
				return 1;
			}
			struct timespec ts = {0, 20000};
			nanosleep(&ts, NULL);
			drain(0);
		}
		int64_t t2 = now_ns();
		lat[i] = t2 - t0;
		after[i] = t2 - t1;
		addcost[i] = t1 - t0;
		/* unplug and wait until the agent has handled it, so plugs do not queue up */
		umockdev_testbed_uevent(tb, ifc, "remove");
		umockdev_testbed_remove_device(tb, ifc);
		umockdev_testbed_uevent(tb, dev, "remove");
		umockdev_testbed_remove_device(tb, dev);
		wait_err("usb.removed port=1-1");
		g_free(ifc);
		g_free(dev);
	}
	double wall = (double)(now_ns() - wall0) / 1e9;
	double cpu = cpu_seconds() - cpu0;

	qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
	qsort(addcost, (size_t)n, sizeof(*addcost), cmp_i64);
	qsort(after, (size_t)n, sizeof(*after), cmp_i64);
	printf("plugs=%d wall=%.1f s agent_cpu=%.2f s (%.0f us per plug+unplug)\n", n, wall, cpu,
	       cpu * 1e6 / n);
	printf("latency_us (umockdev add of the interface -> authorized=0 seen): p50=%.0f p90=%.0f "
	       "p99=%.0f max=%.0f\n",
	       lat[n / 2] / 1e3, lat[n * 9 / 10] / 1e3, lat[n * 99 / 100] / 1e3, lat[n - 1] / 1e3);
	printf("of which umockdev_testbed_add_device itself: p50=%.0f p99=%.0f us\n",
	       addcost[n / 2] / 1e3, addcost[n * 99 / 100] / 1e3);
	printf(
	    "latency_us (add_device returned -> authorized=0 seen; lower bound): p50=%.0f p90=%.0f "
	    "p99=%.0f max=%.0f\n",
	    after[n / 2] / 1e3, after[n * 9 / 10] / 1e3, after[n * 99 / 100] / 1e3,
	    after[n - 1] / 1e3);

	read_status(&rss0, &sw0);
	sleep((unsigned)idle_s);
	read_status(&rss1, &sw1);
	printf("idle_after: rss_kb=%ld wakeups=%ld in %d s (%.2f/s)\n", rss1, sw1 - sw0, idle_s,
	       (double)(sw1 - sw0) / idle_s);

	kill(agent_pid, SIGTERM);
	int status;
	waitpid(agent_pid, &status, 0);
	snprintf(path, sizeof(path), "rm -rf %s", tmp);
	if (system(path) != 0)
		return 1;
	g_object_unref(tb);
	return 0;
}
