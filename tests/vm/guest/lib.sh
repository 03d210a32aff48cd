# SPDX-License-Identifier: MIT
# Guest side of the VM tests (busybox sh): the control channel to the host (ttyS1), results,
# and USB checks by sysfs. Devices are found by the serial= that the host gave them in QEMU.

# --- control channel: one request line out, one answer line back ---------------------------
vm_ctl_open() {
	exec 3<>/dev/ttyS1
	stty raw -echo <&3
}

vm_send() {
	printf '%s\n' "$*" >&3
}

# vm_hmp COMMAND...: run a QEMU human monitor command on the host (device_add, device_del, ...)
vm_hmp() {
	vm_send "HMP $*"
	IFS= read -r vm_reply <&3
	case $vm_reply in
	OK*) return 0 ;;
	esac
	echo "vmtest: hmp '$*' failed: $vm_reply"
	return 1
}

vm_pass() {
	echo "VMTEST PASS $*"
	vm_send "RESULT PASS $*"
}

vm_fail() {
	echo "VMTEST FAIL $*"
	vm_send "RESULT FAIL $*"
}

# vm_check NAME COMMAND...: PASS if the command succeeds
vm_check() {
	vm_name=$1
	shift
	if "$@"; then vm_pass "$vm_name"; else vm_fail "$vm_name"; fi
}

# vm_not COMMAND...: succeeds when the command fails
vm_not() {
	! "$@"
}

# vm_wait SECONDS COMMAND...: poll every 0.1 s until the command succeeds
vm_wait() {
	vm_t=$(($1 * 10))
	shift
	while ! "$@"; do
		vm_t=$((vm_t - 1))
		[ "$vm_t" -gt 0 ] || return 1
		sleep 0.1
	done
}

vm_end() {
	echo "vmtest: scenario done after $(cut -d' ' -f1 /proc/uptime) s"
	vm_send "END"
	sync
	poweroff -f
}

# --- USB by sysfs -----------------------------------------------------------------------------
U=/sys/bus/usb/devices

# usb_dev SERIAL: the device's sysfs name (e.g. 3-1)
usb_dev() {
	for d in "$U"/*; do
		[ -r "$d/serial" ] || continue
		[ "$(cat "$d/serial")" = "$1" ] || continue
		echo "${d##*/}"
		return 0
	done
	return 1
}

# usb_intf SERIAL: the device's first interface (e.g. 3-1:1.0), once it exists
usb_intf() {
	usb_d=$(usb_dev "$1") || return 1
	[ -e "$U/$usb_d:1.0" ] || return 1
	echo "$usb_d:1.0"
}

usb_gone() {
	! usb_dev "$1" >/dev/null
}

intf_attr() {
	cat "$U/$1/$2" 2>/dev/null
}

intf_attr_is() {
	[ "$(intf_attr "$1" "$2")" = "$3" ]
}

intf_driver() {
	usb_l=$(readlink "$U/$1/driver") || return 1
	echo "${usb_l##*/}"
}

intf_driver_is() {
	[ "$(intf_driver "$1")" = "$2" ]
}

intf_unbound() {
	[ ! -e "$U/$1/driver" ]
}

# intf_disks INTF: block devices (sda ...) behind a storage interface
intf_disks() {
	for b in "$U/$1"/host*/target*/*/block/*; do
		[ -e "$b" ] && echo "${b##*/}"
	done
}

intf_has_disk() {
	[ -n "$(intf_disks "$1")" ]
}

intf_no_disk() {
	[ -z "$(intf_disks "$1")" ] && [ -z "$(ls -d "$U/$1"/host* 2>/dev/null)" ]
}

# intf_never_probed INTF: usb-storage never got as far as its probe for this interface
intf_never_probed() {
	! dmesg | grep -q "$1: USB Mass Storage device detected"
}

intf_input_event() {
	ls -d "$U/$1"/*/input/input*/event* >/dev/null 2>&1
}

roothubs() {
	for d in "$U"/usb*; do
		[ -e "$d/interface_authorized_default" ] && echo "${d##*/}"
	done
}

# roothubs_deny: every root hub has interface_authorized_default=0
roothubs_deny() {
	rh_n=0
	for r in $(roothubs); do
		rh_n=$((rh_n + 1))
		[ "$(cat "$U/$r/interface_authorized_default")" = 0 ] || {
			echo "vmtest: $r has interface_authorized_default=$(cat "$U/$r/interface_authorized_default")"
			return 1
		}
	done
	[ "$rh_n" -gt 0 ]
}

roothub_count() {
	roothubs | wc -l
}

roothub_count_is() {
	[ "$(roothub_count)" -eq "$1" ]
}

# usb_intfs SERIAL: all interfaces of the device
usb_intfs() {
	usb_d=$(usb_dev "$1") || return 1
	for x in "$U/$usb_d":*; do
		[ -e "$x" ] && echo "${x##*/}"
	done
}

# all_intfs SERIAL TEST ARGS...: TEST INTF ARGS... holds for every interface (and there is one)
all_intfs() {
	all_s=$1
	shift
	all_l=$(usb_intfs "$all_s") || return 1
	[ -n "$all_l" ] || return 1
	for all_i in $all_l; do
		"$1" "$all_i" "$2" "$3" || return 1
	done
}

no_netdev_but_lo() {
	[ "$(ls /sys/class/net)" = lo ]
}

no_sound_card() {
	! ls -d /sys/class/sound/card* >/dev/null 2>&1
}

# --- expectations (each reports PASS/FAIL lines) --------------------------------------------

# expect_all_blocked SERIAL WHAT: every interface of the device is unauthorized and unbound
expect_all_blocked() {
	if ! vm_wait 30 usb_intf "$1" >/dev/null; then
		vm_fail "$2: device $1 never enumerated"
		return
	fi
	vm_check "$2: $1 interfaces ($(usb_intfs "$1" | tr '\n' ' ')) stay unauthorized" \
		all_intfs "$1" intf_attr_is authorized 0
	vm_check "$2: $1 interfaces have no driver" all_intfs "$1" intf_unbound
}

# expect_stick_blocked SERIAL WHAT: a storage stick enumerates, but its interface stays
# unauthorized, no driver probes it and no disk appears. Call it a few seconds after the plug of
# all sticks to check (usb-storage binds and scans within about 1.6 s when allowed).
expect_stick_blocked() {
	if ! vm_wait 30 usb_intf "$1" >/dev/null; then
		vm_fail "$2: stick $1 never enumerated"
		return
	fi
	i=$(usb_intf "$1")
	vm_check "$2: $1 ($i) is mass storage" [ "$(intf_attr "$i" bInterfaceClass)" = 08 ]
	vm_check "$2: $1 ($i) interface stays unauthorized" [ "$(intf_attr "$i" authorized)" = 0 ]
	vm_check "$2: $1 ($i) has no driver" intf_unbound "$i"
	vm_check "$2: $1 ($i) has no SCSI host and no disk" intf_no_disk "$i"
	vm_check "$2: $1 ($i) never reached usb-storage's probe" intf_never_probed "$i"
}

# expect_hid_bound SERIAL WHAT: a keyboard's HID interface is authorized, bound to usbhid and
# has an input event device
expect_hid_bound() {
	if ! vm_wait 30 usb_intf "$1" >/dev/null; then
		vm_fail "$2: keyboard $1 never enumerated"
		return
	fi
	i=$(usb_intf "$1")
	vm_wait 30 intf_driver_is "$i" usbhid
	vm_check "$2: $1 ($i) is HID" [ "$(intf_attr "$i" bInterfaceClass)" = 03 ]
	vm_check "$2: $1 ($i) is authorized" [ "$(intf_attr "$i" authorized)" = 1 ]
	vm_check "$2: $1 ($i) is bound to usbhid" intf_driver_is "$i" usbhid
	vm_check "$2: $1 ($i) has an input event device" vm_wait 10 intf_input_event "$i"
}

# expect_hub_bound SERIAL WHAT: a hub's interface is authorized and bound to the hub driver
expect_hub_bound() {
	if ! vm_wait 30 usb_intf "$1" >/dev/null; then
		vm_fail "$2: hub $1 never enumerated"
		return
	fi
	i=$(usb_intf "$1")
	vm_wait 30 intf_driver_is "$i" hub
	vm_check "$2: $1 ($i) is a hub" [ "$(intf_attr "$i" bInterfaceClass)" = 09 ]
	vm_check "$2: $1 ($i) is authorized" [ "$(intf_attr "$i" authorized)" = 1 ]
	vm_check "$2: $1 ($i) is bound to the hub driver" intf_driver_is "$i" hub
}

# expect_authorized SERIAL CLASS WHAT: the first interface has that class and is authorized
# (a CCID reader has no kernel driver: pcscd claims it from user space)
expect_authorized() {
	if ! vm_wait 30 usb_intf "$1" >/dev/null; then
		vm_fail "$3: device $1 never enumerated"
		return
	fi
	i=$(usb_intf "$1")
	vm_check "$3: $1 ($i) has class $2" [ "$(intf_attr "$i" bInterfaceClass)" = "$2" ]
	vm_check "$3: $1 ($i) is authorized" vm_wait 10 intf_attr_is "$i" authorized 1
}

# expect_stick_allowed SERIAL WHAT: a stick's interface is authorized, bound to usb-storage and
# its disk can be mounted
expect_stick_allowed() {
	if ! vm_wait 30 usb_intf "$1" >/dev/null; then
		vm_fail "$2: stick $1 never enumerated"
		return
	fi
	i=$(usb_intf "$1")
	vm_wait 30 intf_has_disk "$i"
	vm_check "$2: $1 ($i) is authorized" [ "$(intf_attr "$i" authorized)" = 1 ]
	vm_check "$2: $1 ($i) is bound to usb-storage" intf_driver_is "$i" usb-storage
	vm_check "$2: $1 ($i) has a disk" intf_has_disk "$i"
	disk=$(intf_disks "$i" | head -n 1)
	vm_wait 10 [ -b "/dev/$disk" ]
	mkdir -p "/mnt/$1"
	vm_check "$2: $1 (/dev/$disk) mounts" mount -t vfat -o ro "/dev/$disk" "/mnt/$1"
	umount "/mnt/$1" 2>/dev/null
}
