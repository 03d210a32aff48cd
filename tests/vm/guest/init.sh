#!/bin/sh
# SPDX-License-Identifier: MIT
# /init of the test guest: mounts, USB/SCSI/HID modules, udevd with the rules under test, then
# the scenario (/vmtest/scenario.sh, which reports through /vmtest/lib.sh), then power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
hostname vmtest
. /vmtest/env
. /vmtest/lib.sh
echo "vmtest: init on kernel $(uname -r)"
vm_ctl_open

load_modules() {
	for m in $(cat /vmtest/modules); do
		modprobe "$m" || echo "vmtest: modprobe $m failed"
	done
}

# Default: controllers enumerate before udevd runs, as after the switch from an initramfs that
# lacks our rule: root hubs that exist before udevd get the rule from the coldplug trigger.
# VM_UDEV_FIRST=1 (#@udev-first): udevd runs before the USB drivers load, as in an initramfs
# that carries the rule, so root hubs get it as they appear.
[ "$VM_UDEV_FIRST" = 1 ] || load_modules
/usr/lib/systemd/systemd-udevd --daemon --resolve-names=never
udevadm trigger --type=subsystems --action=add
udevadm trigger --type=devices --action=add
[ "$VM_UDEV_FIRST" = 1 ] && load_modules
udevadm settle --timeout=120 || echo "vmtest: udevadm settle timed out"
echo "vmtest: udev settled after $(cut -d' ' -f1 /proc/uptime) s"

. /vmtest/scenario.sh

vm_end
