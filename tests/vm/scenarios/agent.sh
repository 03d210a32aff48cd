# SPDX-License-Identifier: MIT
# mynaguardd with the udev rules in the real kernel: coldplug of a stick bound before the agent
# started, an allow-listed stick (by serial) gets its disk, others stay blocked; then the agent
# is killed (a crash) and the rules alone still block sticks and let keyboards in; a restarted
# agent keeps the allowed stick and the blocks; a controller hot-plugged later with a hub and
# sticks behind it; audit mode lets a stick bind.
#@agent
#@qemu -device usb-storage,bus=xhci.0,drive=stick8,id=cold1,serial=COLD1
#@qemu -device pcie-root-port,id=rp1,chassis=1,slot=1
#@qemu -audiodev none,id=snd0 -netdev hubport,id=n0,hubid=0
#@policy [terminal]
#@policy id = vm-test
#@policy [usb]
#@policy mode = enforce
#@policy block = mass_storage, cdc_net
#@policy allow = 46f4:0001 serial=ALLOW1 name=vm test stick

agent_start() {
	mkdir -p /tmp/agent/spool /tmp/agent/state /run/mynaguard
	: >/tmp/agent.out
	mynaguardd --policy /etc/mynaguard/policy.conf --foreground \
		--socket /run/mynaguard/event.sock --spool /tmp/agent/spool \
		--state /tmp/agent/state >/tmp/agent.out 2>>/tmp/agent.err &
	agent_pid=$!
	if vm_wait 60 grep -qx READY /tmp/agent.out; then
		vm_pass "$1: mynaguardd printed READY"
	else
		vm_fail "$1: mynaguardd printed no READY"
		sed 's/^/agent| /' /tmp/agent.err
	fi
}

# The stick present at boot was bound before udevd and the agent ran (the boot window that the
# agent's coldplug scan closes). Only a note: the test below is meaningful either way.
i=$(usb_intf COLD1)
echo "vmtest: before the agent: COLD1 ($i) authorized=$(intf_attr "$i" authorized)" \
	"driver=$(intf_driver "$i") disks=$(intf_disks "$i")"

agent_start "start"
vm_check "coldplug: COLD1 ($i) present at boot is deauthorized" \
	vm_wait 20 intf_attr_is "$i" authorized 0
vm_check "coldplug: COLD1 ($i) loses driver and disk" vm_wait 20 intf_no_disk "$i"
vm_check "coldplug: COLD1 ($i) is unbound" intf_unbound "$i"

vm_hmp device_add usb-storage,bus=xhci.0,drive=stick1,id=allow1,serial=ALLOW1
vm_hmp device_add usb-storage,bus=xhci.0,drive=stick2,id=block1,serial=BLOCK1
vm_hmp device_add usb-kbd,bus=xhci.0,id=kbd1,serial=KBD1
expect_stick_allowed ALLOW1 "agent: allow-listed stick"
expect_hid_bound KBD1 "agent: keyboard"
sleep 3
expect_stick_blocked BLOCK1 "agent: stick with another serial"

# A crash: SIGKILL. The rules alone keep working.
kill -9 "$agent_pid"
wait "$agent_pid" 2>/dev/null
vm_hmp device_add usb-storage,bus=xhci.0,drive=stick3,id=block2,serial=BLOCK2
vm_hmp device_add usb-kbd,bus=xhci.0,id=kbd2,serial=KBD2
expect_hid_bound KBD2 "agent killed: keyboard"
sleep 4
expect_stick_blocked BLOCK2 "agent killed: stick"

# Restart: the coldplug scan keeps what is allowed and what is blocked.
agent_start "restart"
sleep 3
a=$(usb_intf ALLOW1)
vm_check "restart: ALLOW1 ($a) keeps its disk" intf_has_disk "$a"
for s in COLD1 BLOCK1 BLOCK2; do
	b=$(usb_intf "$s")
	vm_check "restart: $s ($b) stays unauthorized and unbound" \
		eval 'intf_attr_is "$b" authorized 0 && intf_unbound "$b" && intf_no_disk "$b"'
done

vm_hmp device_del allow1
vm_check "unplug: ALLOW1 is gone" vm_wait 30 usb_gone ALLOW1
vm_check "unplug: mynaguardd logged usb.removed" \
	vm_wait 10 eval 'grep "kind=usb.removed" /tmp/agent.err | grep -q ALLOW1'

# A second controller hot-plugged later, a hub on it, the allowed stick and another behind it.
vm_hmp device_add qemu-xhci,bus=rp1,id=xhci2
vm_check "second controller: its root hubs appear" vm_wait 60 roothub_count_is 4
vm_check "second controller: every root hub denies interfaces by default" vm_wait 10 roothubs_deny
vm_hmp device_add usb-hub,bus=xhci2.0,port=1,id=hub2,serial=HUB2
expect_hub_bound HUB2 "second controller: hub"
vm_hmp device_add usb-storage,bus=xhci2.0,port=1.1,drive=stick4,id=allow1b,serial=ALLOW1
vm_hmp device_add usb-storage,bus=xhci2.0,port=1.2,drive=stick5,id=block4,serial=BLOCK4
expect_stick_allowed ALLOW1 "second controller: allow-listed stick behind hub"
sleep 3
expect_stick_blocked BLOCK4 "second controller: stick behind hub"

# A class the policy blocks besides storage (cdc_net), and one it does not block (audio).
vm_hmp device_add usb-net,bus=xhci2.0,port=1.3,netdev=n0,id=net1,serial=NET1
vm_hmp device_add usb-audio,bus=xhci2.0,port=1.4,audiodev=snd0,id=audio1,serial=AUDIO1
vm_wait 30 usb_intf NET1 >/dev/null
vm_wait 30 usb_intf AUDIO1 >/dev/null
sleep 3
expect_all_blocked NET1 "agent: network adapter (cdc_net blocked)"
vm_check "agent: network adapter: no network interface appears" no_netdev_but_lo
vm_check "agent: sound card (not blocked): all interfaces authorized" \
	vm_wait 20 all_intfs AUDIO1 intf_attr_is authorized 1
a=$(usb_intf AUDIO1)
vm_check "agent: sound card: $a bound to snd-usb-audio" vm_wait 20 intf_driver_is "$a" snd-usb-audio
vm_check "agent: sound card: a sound card appears" vm_not no_sound_card

kill "$agent_pid"
wait "$agent_pid"

# Audit mode: the same devices are reported, and blocked ones are authorized and probed.
sed 's/^mode = enforce$/mode = audit/' /etc/mynaguard/policy.conf >/tmp/audit.conf
mv /tmp/agent.err /tmp/agent-enforce.err
mynaguardd --policy /tmp/audit.conf --foreground --socket /run/mynaguard/event.sock \
	--spool /tmp/agent/spool --state /tmp/agent/state >/tmp/agent.out 2>/tmp/agent.err &
agent_pid=$!
vm_check "audit: mynaguardd printed READY" vm_wait 60 grep -qx READY /tmp/agent.out
vm_hmp device_add usb-storage,bus=xhci.0,drive=stick6,id=audit1,serial=AUDIT1
expect_stick_allowed AUDIT1 "audit: a stick that enforce would block"
vm_check "audit: usb.blocked reported for AUDIT1" \
	vm_wait 10 eval 'grep "kind=usb.blocked" /tmp/agent.err | grep -q AUDIT1'
kill "$agent_pid"
wait "$agent_pid"
cat /tmp/agent.err >>/tmp/agent-enforce.err
mv /tmp/agent-enforce.err /tmp/agent.err

# Events ("event seq=N kind=K ..." on stderr, agent/agent.h): one per decision, and sequence
# numbers never reused, not even across the SIGKILL.
vm_check "events: usb.blocked for BLOCK1" \
	eval 'grep "kind=usb.blocked" /tmp/agent.err | grep -q BLOCK1'
vm_check "events: usb.blocked for COLD1 (coldplug)" \
	eval 'grep "kind=usb.blocked" /tmp/agent.err | grep -q COLD1'
vm_check "events: usb.allowed for ALLOW1" \
	eval 'grep "kind=usb.allowed" /tmp/agent.err | grep -q ALLOW1'
vm_check "events: at least 10 logged" [ "$(grep -c "^event seq=" /tmp/agent.err)" -ge 10 ]
vm_check "events: no sequence number used twice across the crash" \
	eval '[ -z "$(grep -o "^event seq=[0-9]*" /tmp/agent.err | sort | uniq -d)" ]'
vm_check "events: agent.stopped on SIGTERM" grep -q "kind=agent.stopped" /tmp/agent.err
echo "vmtest: agent log:"
sed 's/^/agent| /' /tmp/agent.err | tail -n 60
