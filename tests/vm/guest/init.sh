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

# Controllers enumerate before udevd runs, as on a real boot: root hubs that exist before udev
# get the rule from the coldplug trigger below.
for m in $(cat /vmtest/modules); do
	modprobe "$m" || echo "vmtest: modprobe $m failed"
done

/usr/lib/systemd/systemd-udevd --daemon --resolve-names=never
udevadm trigger --type=subsystems --action=add
udevadm trigger --type=devices --action=add
udevadm settle --timeout=120 || echo "vmtest: udevadm settle timed out"
echo "vmtest: udev settled after $(cut -d' ' -f1 /proc/uptime) s"

. /vmtest/scenario.sh

vm_end
