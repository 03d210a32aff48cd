# SPDX-License-Identifier: MIT
# The rule in an early udev (as when the installer puts it into the initramfs): udevd runs
# before the USB drivers load, so every root hub gets interface_authorized_default=0 as it
# appears and devices present at boot are held back too; keyboards present at boot (needed for
# a disk passphrase or the login) still work, behind a hub as well. No agent.
#@udev-first
#@qemu -device usb-storage,bus=xhci.0,port=1,drive=stick8,id=cold1,serial=COLD1
#@qemu -device usb-kbd,bus=xhci.0,port=2,id=coldkbd,serial=COLDKBD
#@qemu -device usb-hub,bus=xhci.0,port=4,id=hub1,serial=HUB1
#@qemu -device usb-storage,bus=xhci.0,port=4.1,drive=stick7,id=cold2,serial=COLD2
#@qemu -device usb-kbd,bus=xhci.0,port=4.2,id=coldkbd2,serial=COLDKBD2

vm_check "boot: every root hub has interface_authorized_default=0" roothubs_deny
for r in $(roothubs); do
	n=${r#usb}
	vm_check "boot: root hub $r's own interface is bound to the hub driver" \
		vm_wait 30 intf_driver_is "$n-0:1.0" hub
done
expect_hid_bound COLDKBD "boot keyboard"
expect_hub_bound HUB1 "boot hub"
expect_hid_bound COLDKBD2 "boot keyboard behind hub"
sleep 3
expect_stick_blocked COLD1 "boot stick"
expect_stick_blocked COLD2 "boot stick behind hub"

# A plain `udevadm trigger` (action change) restores a default that someone switched back on.
echo 1 >"$U/usb1/interface_authorized_default"
vm_check "control: usb1's default switched back on" vm_not roothubs_deny
udevadm trigger --action=change "$U/usb1"
udevadm settle --timeout=30
vm_check "udevadm trigger (change) restores interface_authorized_default=0" roothubs_deny
