# SPDX-License-Identifier: MIT
# A fleet exception in the real kernel (docs/fleet.md, "Exceptions"): mynaguardd with a pinned
# fleet root key and a policy that blocks mass storage; a stick stays blocked until a signed
# bundle with an exception for its vendor:product:serial arrives in SPOOL/inbox/bundle (written
# as the uplink does: temp file + rename); then usb-storage binds and its disk appears; when the
# exception's `until` passes the interface is deauthorized, the driver unbinds and the disk goes.
# A second stick of the same model (another serial) stays blocked throughout.
# The keys and the bundle are made in the guest by vm-fleet-bundle (tests/vm/vm-fleet-bundle.c,
# the bundle library), so that `from` and `until` are read from the guest's own clock.
#@agent
#@policy [terminal]
#@policy id = vm-test
#@policy [usb]
#@policy mode = enforce
#@policy block = mass_storage

# Seconds from the bundle's making to the exception's end: long enough for the apply, the
# re-decision and usb-storage's scan under TCG, short enough to keep the test quick.
GRANT_SECONDS=40
EX=EX-VM-0001
SPOOL=/tmp/agent/spool

have_bundle_tool() {
	command -v vm-fleet-bundle >/dev/null
}

agent_log_has() {
	grep "$1" /tmp/agent.err | grep -q "$2"
}

spool_has() {
	cat "$SPOOL"/seg-* 2>/dev/null | grep -a "$1" | grep -aq "$2"
}

if ! have_bundle_tool; then
	vm_fail "vm-fleet-bundle is not in the guest (vmtest.py --binary)"
	return 0
fi

# --- the admin's keys, the pinned root key, the agent --------------------------------------
mkdir -p /tmp/fleet /tmp/agent/spool /tmp/agent/state /run/mynaguard
chmod 700 /tmp/fleet
vm_check "fleet: throwaway root and grant keys" vm-fleet-bundle keygen /tmp/fleet
cp /tmp/fleet/root.pub /etc/mynaguard/fleet-root.pub
: >/tmp/agent.out
mynaguardd --policy /etc/mynaguard/policy.conf --foreground \
	--fleet-key /etc/mynaguard/fleet-root.pub --socket /run/mynaguard/event.sock \
	--spool "$SPOOL" --state /tmp/agent/state \
	>/tmp/agent.out 2>/tmp/agent.err &
agent_pid=$!
if vm_wait 60 grep -qx READY /tmp/agent.out; then
	vm_pass "start: mynaguardd printed READY"
else
	vm_fail "start: mynaguardd printed no READY"
fi
vm_check "start: the fleet root key is pinned" \
	grep -q "agent.fleet root key /etc/mynaguard/fleet-root.pub" /tmp/agent.err
vm_check "start: the agent made SPOOL/inbox" [ -d "$SPOOL/inbox" ]

# --- before the grant: both sticks blocked ---------------------------------------------------
vm_hmp device_add usb-storage,bus=xhci.0,drive=stick1,id=grant1,serial=GRANT1
vm_hmp device_add usb-storage,bus=xhci.0,drive=stick2,id=other1,serial=OTHER1
vm_wait 30 usb_intf GRANT1 >/dev/null
vm_wait 30 usb_intf OTHER1 >/dev/null
sleep 3
expect_stick_blocked GRANT1 "no bundle yet"
expect_stick_blocked OTHER1 "no bundle yet"
vm_check "no bundle yet: usb.blocked for GRANT1" vm_wait 10 agent_log_has "kind=usb.blocked" GRANT1
g=$(usb_intf GRANT1)
o=$(usb_intf OTHER1)
d=$(usb_dev GRANT1)
echo "vmtest: GRANT1 is $d ($(cat "$U/$d/idVendor"):$(cat "$U/$d/idProduct")), interface $g"

# --- the grant: a bundle with an exception for GRANT1 until now + GRANT_SECONDS ---------------
cat >/tmp/fleet/base.conf <<EOF
[usb]
mode = enforce
block = mass_storage
[fleet]
group = vm
version = 1
issued = 2026-12-01T09:00:00Z
terminals = vm-*
grant_key = $(cat /tmp/fleet/grant.pub)
grant_classes = mass_storage
grant_max_days = 1
EOF
now=$(date +%s)
until=$((now + GRANT_SECONDS))
vm_check "grant: bundle made and dropped into SPOOL/inbox/bundle (until = now + ${GRANT_SECONDS} s)" \
	vm-fleet-bundle build /tmp/fleet /tmp/fleet/base.conf 1 vm-test "$SPOOL/inbox/bundle" \
	"$EX,$(cat "$U/$d/idVendor"),$(cat "$U/$d/idProduct"),GRANT1,mass_storage,$((now - 60)),$until"
vm_check "grant: bundle.applied" vm_wait 20 agent_log_has "kind=bundle.applied" '"group":"vm"'
vm_check "grant: the installed policy is the base with this terminal's id" \
	eval 'grep -qx "id = vm-test" /etc/mynaguard/policy.conf && grep -qx "group = vm" /etc/mynaguard/policy.conf'
vm_check "grant: GRANT1 ($g) becomes authorized" vm_wait 20 intf_attr_is "$g" authorized 1
expect_stick_allowed GRANT1 "grant"
t_open=$(date +%s)
disk=$(intf_disks "$g" | head -n 1)
vm_check "grant: /dev/$disk is a block device" eval '[ -n "$disk" ] && [ -b "/dev/$disk" ]'
vm_check "grant: the disk came before until (at $t_open, until $until)" [ "$t_open" -lt "$until" ]
vm_check "grant: usb.allowed for GRANT1 by the exception" \
	agent_log_has "kind=usb.allowed" "exception $EX: until "
vm_check "grant: OTHER1 ($o) stays unauthorized, unbound, without a disk" \
	eval 'intf_attr_is "$o" authorized 0 && intf_unbound "$o" && intf_no_disk "$o"'

# --- the end of the grant: at until, deauthorized, unbound, the disk gone -----------------------
left=$((until - $(date +%s)))
echo "vmtest: waiting for the exception's end ($left s)"
vm_check "expiry: GRANT1 ($g) is deauthorized" vm_wait $((left + 30)) intf_attr_is "$g" authorized 0
t_closed=$(date +%s)
vm_check "expiry: not before until (at $t_closed, until $until)" [ "$t_closed" -ge "$until" ]
vm_check "expiry: usb-storage unbinds from GRANT1 ($g)" vm_wait 10 intf_unbound "$g"
vm_check "expiry: GRANT1's SCSI host and disk are gone" vm_wait 10 intf_no_disk "$g"
vm_check "expiry: /dev/$disk is gone" vm_wait 10 eval '[ ! -e "/dev/$disk" ]'
vm_check "expiry: GRANT1 is still plugged in" usb_intf GRANT1
vm_check "expiry: usb.exception_expired logged" \
	vm_wait 10 agent_log_has "kind=usb.exception_expired" "\"rule\":\"exception $EX: expired\""
vm_check "expiry: usb.exception_expired in the spool" vm_wait 10 spool_has usb.exception_expired "$EX"
vm_check "expiry: bundle.applied in the spool" vm_wait 10 spool_has bundle.applied '"group":"vm"'
vm_check "expiry: OTHER1 ($o) still blocked" \
	eval 'intf_attr_is "$o" authorized 0 && intf_unbound "$o" && intf_no_disk "$o"'

kill "$agent_pid"
wait "$agent_pid"
vm_check "stop: agent.stopped on SIGTERM" grep -q "kind=agent.stopped" /tmp/agent.err
vm_check "stop: no bundle refused" vm_not grep -q "kind=bundle.refused" /tmp/agent.err
echo "vmtest: agent log:"
sed 's/^/agent| /' /tmp/agent.err | tail -n 40
