/* SPDX-License-Identifier: MIT */
/* Test helpers: a umockdev testbed with USB devices, and a spawned process with its output. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "umock.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void mkdir_p(const char *path)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			(void)mkdir(buf, 0755);
			*p = '/';
		}
	}
	(void)mkdir(buf, 0755);
}

void umock_setup(struct umock *u)
{
	static const uint8_t hub[1][3] = {{0x09, 0x00, 0x00}};
	char path[512];

	memset(u, 0, sizeof(*u));
	u->pid = -1;
	u->in_fd = u->out_fd = u->err_fd = -1;
	snprintf(u->tmp, sizeof(u->tmp), "/tmp/mg-agent-test-XXXXXX");
	assert_non_null(mkdtemp(u->tmp));
	u->tb = umockdev_testbed_new();
	assert_non_null(u->tb);
	u->root = umockdev_testbed_get_root_dir(u->tb);

	const char *attrs[] = {"idVendor",
			       "1d6b",
			       "idProduct",
			       "0002",
			       "authorized",
			       "1",
			       "authorized_default",
			       "1",
			       "interface_authorized_default",
			       "1",
			       "manufacturer",
			       "Linux xhci-hcd",
			       "product",
			       "xHCI Host Controller",
			       NULL};
	const char *props[] = {"DEVTYPE", "usb_device", NULL};
	char *sp = umockdev_testbed_add_devicev(u->tb, "usb", "usb1", NULL, (gchar **)attrs,
						(gchar **)props);
	assert_non_null(sp);
	uint8_t desc[64];
	size_t n = umock_build_desc(desc, 0x1d6b, 0x0002, hub, 1);
	umockdev_testbed_set_attribute_binary(u->tb, sp, "descriptors", desc, (gssize)n);
	g_free(umock_add_iface(u, sp, "1-0:1.0", "09", "00", "00", NULL, "1"));
	g_free(sp);

	snprintf(path, sizeof(path), "%s/sys/bus/usb", u->root);
	mkdir_p(path);
	umock_clear_probe_file(u);
}

void umock_teardown(struct umock *u)
{
	char cmd[600];

	if (u->pid > 0)
		(void)umock_stop(u);
	if (getenv("TEST_VERBOSE") && u->err)
		fprintf(stderr, "--- stderr of the last process ---\n%s", u->err);
	if (u->tb)
		g_object_unref(u->tb);
	g_free(u->root);
	free(u->out);
	free(u->err);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", u->tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", u->tmp);
}

char *umock_write_file(struct umock *u, const char *name, const char *text)
{
	char *path = NULL;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", u->tmp, name) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	return path;
}

size_t umock_build_desc(uint8_t *buf, uint16_t vid, uint16_t pid, const uint8_t (*ifs)[3], size_t n)
{
	const uint8_t dev[18] = {18,
				 1,
				 0x00,
				 0x02,
				 0,
				 0,
				 0,
				 64,
				 (uint8_t)vid,
				 (uint8_t)(vid >> 8),
				 (uint8_t)pid,
				 (uint8_t)(pid >> 8),
				 0x00,
				 0x01,
				 1,
				 2,
				 3,
				 1};
	size_t o, cfg;

	memcpy(buf, dev, sizeof(dev));
	o = cfg = sizeof(dev);
	const uint8_t c[9] = {9, 2, 0, 0, (uint8_t)n, 1, 0, 0x80, 50};
	memcpy(buf + o, c, sizeof(c));
	o += sizeof(c);
	for (size_t i = 0; i < n; i++) {
		const uint8_t d[9] = {9, 4, (uint8_t)i, 0, 0, ifs[i][0], ifs[i][1], ifs[i][2], 0};
		memcpy(buf + o, d, sizeof(d));
		o += sizeof(d);
	}
	buf[cfg + 2] = (uint8_t)(o - cfg);
	buf[cfg + 3] = (uint8_t)((o - cfg) >> 8);
	return o;
}

char *umock_add_device_attrs(struct umock *u, const char *parent, const char *name,
			     const char *const *attrs, const char *const *props)
{
	const char *p[32];
	size_t k = 0;

	p[k++] = "DEVTYPE";
	p[k++] = "usb_device";
	for (size_t i = 0; props && props[i] && k < 30; i++)
		p[k++] = props[i];
	p[k] = NULL;
	char *sp =
	    umockdev_testbed_add_devicev(u->tb, "usb", name, parent, (gchar **)attrs, (gchar **)p);
	assert_non_null(sp);
	return sp;
}

char *umock_add_device(struct umock *u, const char *parent, const char *name, const char *vid,
		       const char *pid, const char *serial, const char *auth,
		       const uint8_t (*ifs)[3], size_t n_ifs, const char *const *props)
{
	const char *a[32];
	size_t k = 0;
	uint8_t desc[1024];
	unsigned v = 0, pr = 0;

	a[k++] = "idVendor";
	a[k++] = vid;
	a[k++] = "idProduct";
	a[k++] = pid;
	a[k++] = "authorized";
	a[k++] = auth;
	a[k++] = "manufacturer";
	a[k++] = "Test Maker";
	a[k++] = "product";
	a[k++] = "Test Device";
	if (serial) {
		a[k++] = "serial";
		a[k++] = serial;
	}
	a[k] = NULL;
	/* With authorized=0 the device decision happens on this add: write the descriptors into
	 * the testbed before the uevent by adding without them only for authorized devices. */
	char *sp = umock_add_device_attrs(u, parent, name, a, props);
	(void)sscanf(vid, "%x", &v);
	(void)sscanf(pid, "%x", &pr);
	size_t n = umock_build_desc(desc, (uint16_t)v, (uint16_t)pr, ifs, n_ifs);
	umockdev_testbed_set_attribute_binary(u->tb, sp, "descriptors", desc, (gssize)n);
	return sp;
}

char *umock_add_iface(struct umock *u, const char *dev, const char *name, const char *cls,
		      const char *sub, const char *proto, const char *label, const char *auth)
{
	const char *a[16];
	size_t k = 0;
	const char *props[] = {"DEVTYPE", "usb_interface", NULL};

	if (cls) {
		a[k++] = "bInterfaceClass";
		a[k++] = cls;
	}
	a[k++] = "bInterfaceSubClass";
	a[k++] = sub;
	a[k++] = "bInterfaceProtocol";
	a[k++] = proto;
	if (auth) {
		a[k++] = "authorized";
		a[k++] = auth;
	}
	if (label) {
		a[k++] = "interface";
		a[k++] = label;
	}
	a[k] = NULL;
	char *sp =
	    umockdev_testbed_add_devicev(u->tb, "usb", name, dev, (gchar **)a, (gchar **)props);
	assert_non_null(sp);
	return sp;
}

void umock_remove(struct umock *u, const char *syspath)
{
	umockdev_testbed_uevent(u->tb, syspath, "remove");
	umockdev_testbed_remove_device(u->tb, syspath);
}

const char *umock_attr(struct umock *u, const char *syspath, const char *attr)
{
	static char buf[4096];
	char path[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s%s/%s", u->root, syspath, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

void umock_set_attr(struct umock *u, const char *syspath, const char *attr, const char *value)
{
	umockdev_testbed_set_attribute(u->tb, syspath, attr, value);
}

const char *umock_probe_file(struct umock *u)
{
	return umock_attr(u, "/sys/bus/usb", "drivers_probe");
}

void umock_clear_probe_file(struct umock *u)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/sys/bus/usb/drivers_probe", u->root);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
}

void umock_spawn(struct umock *u, char *const *argv)
{
	int in[2], out[2], err[2];

	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	u->pid = fork();
	assert_true(u->pid >= 0);
	if (u->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	u->in_fd = in[1];
	u->out_fd = out[0];
	u->err_fd = err[0];
	free(u->out);
	free(u->err);
	u->out = calloc(1, 1);
	u->err = calloc(1, 1);
	u->out_len = u->err_len = 0;
}

static bool drain_fd(int *fd, char **buf, size_t *len)
{
	char tmp[4096];
	ssize_t n = read(*fd, tmp, sizeof(tmp));

	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return false;
	}
	*buf = realloc(*buf, *len + (size_t)n + 1);
	assert_non_null(*buf);
	memcpy(*buf + *len, tmp, (size_t)n);
	*len += (size_t)n;
	(*buf)[*len] = '\0';
	return true;
}

/* Read whatever is available within timeout_ms; false when both pipes are closed. */
static bool pump(struct umock *u, int timeout_ms)
{
	struct pollfd p[2] = {{.fd = u->out_fd, .events = POLLIN},
			      {.fd = u->err_fd, .events = POLLIN}};

	if (u->out_fd < 0 && u->err_fd < 0)
		return false;
	if (poll(p, 2, timeout_ms) <= 0)
		return true;
	if (u->out_fd >= 0 && (p[0].revents & (POLLIN | POLLHUP)))
		drain_fd(&u->out_fd, &u->out, &u->out_len);
	if (u->err_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP)))
		drain_fd(&u->err_fd, &u->err, &u->err_len);
	return true;
}

bool umock_wait_out(struct umock *u, const char *needle, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (!strstr(u->out, needle)) {
		if (now_ms() > end || !pump(u, 50))
			return strstr(u->out, needle) != NULL;
	}
	return true;
}

size_t umock_count_err(struct umock *u, const char *needle)
{
	size_t n = 0;
	for (const char *p = u->err; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

bool umock_wait_err_n(struct umock *u, const char *needle, size_t n, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (umock_count_err(u, needle) < n) {
		if (now_ms() > end || !pump(u, 50))
			return umock_count_err(u, needle) >= n;
	}
	return true;
}

int umock_wait_exit(struct umock *u, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(u->pid, &status, WNOHANG);
		if (r == u->pid)
			break;
		if (now_ms() > end) {
			kill(u->pid, SIGKILL);
			waitpid(u->pid, &status, 0);
			break;
		}
		pump(u, 20);
	}
	while (pump(u, 10) && (u->out_fd >= 0 || u->err_fd >= 0))
		;
	if (u->in_fd >= 0)
		close(u->in_fd);
	u->in_fd = -1;
	u->pid = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int umock_stop(struct umock *u)
{
	if (u->pid <= 0)
		return -1;
	kill(u->pid, SIGTERM);
	return umock_wait_exit(u, 10000);
}

void umock_start_agent(struct umock *u, const char *policy_text)
{
	umock_spawn_agent(u, policy_text);
	if (!umock_wait_out(u, "READY\n", 20000)) {
		fprintf(stderr, "agent did not get ready; stderr:\n%s\n", u->err);
		fail();
	}
}

void umock_spawn_agent(struct umock *u, const char *policy_text)
{
	char *policy = umock_write_file(u, "policy.conf", policy_text);
	char spool[300], state[300], sock[300];
	const char *bin = getenv("MYNAGUARDD");

	assert_non_null(bin);
	snprintf(spool, sizeof(spool), "%s/spool", u->tmp);
	snprintf(state, sizeof(state), "%s/state", u->tmp);
	snprintf(sock, sizeof(sock), "%s/event.sock", u->tmp);
	mkdir(spool, 0700);
	mkdir(state, 0700);
	char *args[] = {(char *)bin, "--policy",     policy,	    "--spool",
			spool,	     "--state",	     state,	    "--socket",
			sock,	     "--foreground", "--fleet-key", (char *)u->fleet_key,
			NULL};
	char *argv[32];
	size_t n = 0;

	if (!u->fleet_key)
		args[10] = NULL;
	for (size_t i = 0; u->wrap && u->wrap[i] && n < 16; i++)
		argv[n++] = (char *)u->wrap[i];
	for (size_t i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	umock_spawn(u, argv);
	free(policy);
}
