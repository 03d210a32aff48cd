# SPDX-License-Identifier: MIT
# Benchmark scenario (not part of meson test): idle footprint of mynaguardd in the real kernel,
# and of usbguard-daemon when the guest has it (see docs/benchmarks.md for the command).
# Resident memory from /proc/PID/status; wake-ups = voluntary + involuntary context switches of
# all threads over a quiet window (no device plugged, no event).
#@agent
#@policy [terminal]
#@policy id = vm-bench
#@policy [usb]
#@policy mode = enforce
#@policy allow = 46f4:0001 serial=ALLOW1

WINDOW=60

ctxsw() {
	c=0
	for t in /proc/$1/task/*; do
		v=$(sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' "$t/status")
		n=$(sed -n 's/^nonvoluntary_ctxt_switches:[[:space:]]*//p' "$t/status")
		c=$((c + v + n))
	done
	echo "$c"
}

cputicks() {
	# utime + stime (fields 14, 15 of /proc/PID/stat; the comm field has no spaces here)
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

measure() {
	name=$1 pid=$2
	sleep 5 # let start-up work finish
	c0=$(ctxsw "$pid") t0=$(cputicks "$pid")
	sleep "$WINDOW"
	c1=$(ctxsw "$pid") t1=$(cputicks "$pid")
	rss=$(sed -n 's/^VmRSS:[[:space:]]*//p' "/proc/$pid/status")
	anon=$(sed -n "s/^RssAnon:[[:space:]]*//p" "/proc/$pid/status")
	hwm=$(sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$pid/status")
	thr=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$pid/status")
	line="BENCH $name rss=$rss rss_anon=$anon peak_rss=$hwm threads=$thr wakeups=$((c1 - c0))/${WINDOW}s cpu_ticks=$((t1 - t0))/${WINDOW}s"
	echo "$line"
	vm_send "$line"
	vm_pass "$name measured"
}

# mynaguardd after coldplug of a keyboard and a (blocked) stick, then idle.
vm_hmp device_add usb-kbd,bus=xhci.0,id=kbd1,serial=KBD1
vm_hmp device_add usb-storage,bus=xhci.0,drive=stick1,id=stick1,serial=BLOCK1
vm_wait 30 usb_intf BLOCK1 >/dev/null
mkdir -p /tmp/agent/spool /tmp/agent/state /run/mynaguard
mynaguardd --policy /etc/mynaguard/policy.conf --foreground --socket /run/mynaguard/event.sock \
	--spool /tmp/agent/spool --state /tmp/agent/state >/tmp/agent.out 2>/tmp/agent.err &
agent_pid=$!
vm_wait 60 grep -qx READY /tmp/agent.out || vm_fail "mynaguardd printed no READY"
measure mynaguardd "$agent_pid"
kill "$agent_pid"
wait "$agent_pid"

if [ -x /usr/sbin/usbguard-daemon ]; then
	mkdir -p /etc/usbguard/IPCAccessControl.d /var/log/usbguard
	: >/etc/usbguard/rules.conf
	chmod 0600 /etc/usbguard/rules.conf
	cat >/etc/usbguard/usbguard-daemon.conf <<'CONF'
RuleFile=/etc/usbguard/rules.conf
ImplicitPolicyTarget=block
PresentDevicePolicy=apply-policy
PresentControllerPolicy=keep
InsertedDevicePolicy=apply-policy
AuthorizedDefault=none
RestoreControllerDeviceState=false
DeviceManagerBackend=uevent
IPCAllowedUsers=root
IPCAccessControlFiles=/etc/usbguard/IPCAccessControl.d/
AuditBackend=FileAudit
AuditFilePath=/var/log/usbguard/usbguard-audit.log
CONF
	chmod 0600 /etc/usbguard/usbguard-daemon.conf
	usbguard-daemon -k -c /etc/usbguard/usbguard-daemon.conf >/tmp/usbguard.log 2>&1 &
	ug_pid=$!
	sleep 5
	if [ -d "/proc/$ug_pid" ]; then
		measure usbguard-daemon "$ug_pid"
		kill "$ug_pid"
	else
		vm_fail "usbguard-daemon did not stay up"
		sed 's/^/usbguard| /' /tmp/usbguard.log
	fi
fi
