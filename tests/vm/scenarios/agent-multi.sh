# SPDX-License-Identifier: MIT
# Allowed multi-interface functions in the real kernel: cdc_ether and snd-usb-audio claim their
# sibling interfaces while probing the first one, and the kernel refuses a claim on an
# unauthorized interface. So an allowed device works only if the agent authorizes all of its
# allowed interfaces before (or re-probes after) the probe, whatever order udev delivers them in.
# mynaguardd does both (agent/usb_gate.c: decide_siblings, probe_unbound); registered as vm-agent-multi.
#@agent
#@qemu -audiodev none,id=snd0 -netdev hubport,id=n0,hubid=0
#@policy [terminal]
#@policy id = vm-test
#@policy [usb]
#@policy mode = enforce
#@policy block = mass_storage

mkdir -p /tmp/agent/spool /tmp/agent/state /run/mynaguard
mynaguardd --policy /etc/mynaguard/policy.conf --foreground --socket /run/mynaguard/event.sock \
	--spool /tmp/agent/spool --state /tmp/agent/state >/tmp/agent.out 2>/tmp/agent.err &
vm_check "mynaguardd printed READY" vm_wait 60 grep -qx READY /tmp/agent.out

for round in 1 2 3; do
	vm_hmp device_add usb-net,bus=xhci.0,port=1,netdev=n0,id=net$round,serial=NET$round
	vm_hmp device_add usb-audio,bus=xhci.0,port=2,audiodev=snd0,id=audio$round,serial=AUDIO$round
	vm_wait 30 usb_intf NET$round >/dev/null
	vm_wait 30 usb_intf AUDIO$round >/dev/null
	vm_check "round $round: network adapter: every interface bound to cdc_ether" \
		vm_wait 20 all_intfs NET$round intf_driver_is cdc_ether
	vm_check "round $round: network adapter: a network interface appears" \
		vm_not no_netdev_but_lo
	vm_check "round $round: sound card: every interface bound to snd-usb-audio" \
		vm_wait 20 all_intfs AUDIO$round intf_driver_is snd-usb-audio
	vm_hmp device_del net$round
	vm_hmp device_del audio$round
	vm_wait 30 usb_gone NET$round
	vm_wait 30 usb_gone AUDIO$round
	vm_wait 10 no_netdev_but_lo
done
