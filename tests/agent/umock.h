/* SPDX-License-Identifier: MIT */
/* Test helpers: a umockdev testbed with USB devices, and a spawned process with its output. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <umockdev.h>

struct umock {
	UMockdevTestbed *tb;
	char *root;    /* testbed root directory (its sys/ is what /sys shows under the wrapper) */
	char tmp[256]; /* scratch directory: policy, spool, state */
	/* the spawned process */
	pid_t pid;
	int in_fd, out_fd, err_fd;
	char *out, *err;
	size_t out_len, err_len;
	const char *fleet_key;	 /* umock_spawn_agent passes --fleet-key FILE when set */
	const char *const *wrap; /* NULL-terminated command run before the agent's argv, or NULL */
};

/* Fresh testbed with root hub usb1 (interface_authorized_default=1) and an empty drivers_probe. */
void umock_setup(struct umock *u);
void umock_teardown(struct umock *u);

/* Write text to DIR/name in the scratch dir; returns the path (static buffer per call site is the
 * caller's job: the result is malloc'ed). */
char *umock_write_file(struct umock *u, const char *name, const char *text);

/* Descriptor blob: device descriptor + one configuration with n interfaces (cls, sub, proto). */
size_t umock_build_desc(uint8_t *buf, uint16_t vid, uint16_t pid, const uint8_t (*ifs)[3],
			size_t n);

/* A usb_device under parent ("/sys/devices/usb1" for the root hub). serial/manufacturer/product
 * may be NULL (attribute missing); vid/pid as text so tests can pass garbage; auth "1"/"0".
 * props: NULL-terminated key, value list of extra udev properties (may be NULL).
 * The descriptors are set before any interface is added. Returns the syspath (g_free). */
char *umock_add_device(struct umock *u, const char *parent, const char *name, const char *vid,
		       const char *pid, const char *serial, const char *auth,
		       const uint8_t (*ifs)[3], size_t n_ifs, const char *const *props);
/* Same, with every attribute given as a NULL-terminated key, value list (for hostile ones). */
char *umock_add_device_attrs(struct umock *u, const char *parent, const char *name,
			     const char *const *attrs, const char *const *props);
/* A usb_interface; cls etc. as text ("08"); label NULL = no `interface` attribute. */
char *umock_add_iface(struct umock *u, const char *dev, const char *name, const char *cls,
		      const char *sub, const char *proto, const char *label, const char *auth);
void umock_remove(struct umock *u, const char *syspath);

/* Read syspath/attr from the testbed (newline stripped); static buffer. */
const char *umock_attr(struct umock *u, const char *syspath, const char *attr);
void umock_set_attr(struct umock *u, const char *syspath, const char *attr, const char *value);
const char *umock_probe_file(struct umock *u);
void umock_clear_probe_file(struct umock *u);

/* Spawn argv[0] with argv (environment inherited), stdin/stdout/stderr piped. */
void umock_spawn(struct umock *u, char *const *argv);
/* Wait until stdout contains needle (draining stderr meanwhile); false on timeout/exit. */
bool umock_wait_out(struct umock *u, const char *needle, int timeout_ms);
/* Wait until stderr contains needle n times in all. */
bool umock_wait_err_n(struct umock *u, const char *needle, size_t n, int timeout_ms);
static inline bool umock_wait_err(struct umock *u, const char *needle, int timeout_ms)
{
	return umock_wait_err_n(u, needle, 1, timeout_ms);
}
size_t umock_count_err(struct umock *u, const char *needle);
/* SIGTERM, wait; returns the exit status (or 128+signal). */
int umock_stop(struct umock *u);
/* Wait for exit without a signal (for commands that end by themselves). */
int umock_wait_exit(struct umock *u, int timeout_ms);

/* The agent: policy text → spawn mynaguardd (path from $MYNAGUARDD) and wait for READY. */
void umock_start_agent(struct umock *u, const char *policy_text);
/* The same without waiting for READY (the startup scan may still be running). */
void umock_spawn_agent(struct umock *u, const char *policy_text);
