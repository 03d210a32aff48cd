# SPDX-License-Identifier: MIT
# Kernel default deny from 70-mynaguard.rules alone (mynaguardd not running): sticks never bind,
# keyboards, hubs and card readers work; root hubs of a controller hot-plugged later too.
#@qemu -device pcie-root-port,id=rp1,chassis=1,slot=1
#@qemu -audiodev none,id=snd0 -netdev hubport,id=n0,hubid=0

vm_check "coldplug: every root hub has interface_authorized_default=0" roothubs_deny
vm_check "usb_storage is loaded (a stick is blocked by authorization, not by a missing driver)" \
	[ -d /sys/module/usb_storage ]

# Devices on the controller that was there at boot.
vm_hmp device_add usb-storage,bus=xhci.0,port=1,drive=stick1,id=stick1,serial=BLOCK1
vm_hmp device_add usb-kbd,bus=xhci.0,port=2,id=kbd1,serial=KBD1
vm_hmp device_add usb-ccid,bus=xhci.0,port=3,id=ccid1,serial=CCID1
expect_hid_bound KBD1 "keyboard"
expect_authorized CCID1 0b "smart-card reader"
sleep 4
expect_stick_blocked BLOCK1 "stick"

# A hub, and a stick and a keyboard behind it.
vm_hmp device_add usb-hub,bus=xhci.0,port=4,id=hub1,serial=HUB1
expect_hub_bound HUB1 "hub"
vm_hmp device_add usb-storage,bus=xhci.0,port=4.1,drive=stick2,id=stick2,serial=BLOCK2
vm_hmp device_add usb-kbd,bus=xhci.0,port=4.2,id=kbd2,serial=KBD2
expect_hid_bound KBD2 "keyboard behind hub"
sleep 4
expect_stick_blocked BLOCK2 "stick behind hub"

# Classes that are neither blocked nor harmless wait for the agent (here behind the hub): a USB
# network adapter (CDC Ethernet, cdc_ether loaded) gets no network interface, a sound card no card.
vm_hmp device_add usb-net,bus=xhci.0,port=4.3,netdev=n0,id=net1,serial=NET1
vm_hmp device_add usb-audio,bus=xhci.0,port=4.4,audiodev=snd0,id=audio1,serial=AUDIO1
vm_wait 30 usb_intf NET1 >/dev/null
vm_wait 30 usb_intf AUDIO1 >/dev/null
sleep 3
expect_all_blocked NET1 "network adapter"
vm_check "network adapter: no network interface appears" no_netdev_but_lo
expect_all_blocked AUDIO1 "sound card"
vm_check "sound card: no sound card appears" no_sound_card
vm_hmp device_del net1
vm_hmp device_del audio1
vm_wait 30 usb_gone NET1
vm_wait 30 usb_gone AUDIO1

# A second controller hot-plugged later gets the rule on "add".
vm_hmp device_add qemu-xhci,bus=rp1,id=xhci2
vm_check "hot-plugged controller: its root hubs appear" vm_wait 60 roothub_count_is 4
vm_check "hot-plugged controller: every root hub has interface_authorized_default=0" \
	vm_wait 10 roothubs_deny
vm_hmp device_add usb-storage,bus=xhci2.0,drive=stick3,id=stick3,serial=BLOCK3
vm_hmp device_add usb-kbd,bus=xhci2.0,id=kbd3,serial=KBD3
expect_hid_bound KBD3 "keyboard on second controller"
sleep 4
expect_stick_blocked BLOCK3 "stick on second controller"

# Control: the checks above can see a disk. Authorizing and probing by hand binds the stick;
# deauthorizing removes the disk again.
i=$(usb_intf BLOCK1)
echo 1 >"$U/$i/authorized"
vm_check "control: authorized by hand, $i is not yet bound" intf_unbound "$i"
echo "$i" >/sys/bus/usb/drivers_probe
vm_check "control: probed by hand, $i gets a disk" vm_wait 30 intf_has_disk "$i"
echo 0 >"$U/$i/authorized"
vm_check "control: deauthorized, $i loses driver and disk" vm_wait 10 intf_no_disk "$i"
vm_check "control: deauthorized, $i is unbound" intf_unbound "$i"

# Unplug.
vm_hmp device_del stick2
vm_check "unplug: the stick behind the hub is gone" vm_wait 30 usb_gone BLOCK2

# The optional strict layer (installer/modprobe/mynaguard-storage.conf, in /vmtest/strict):
# once usb-storage is unloaded, neither an explicit modprobe nor a modalias load brings it back.
rmmod uas usb_storage
vm_check "strict: usb-storage unloaded for the test" vm_not [ -d /sys/module/usb_storage ]
vm_check "strict: modprobe usb-storage is refused" vm_not modprobe -C /vmtest/strict usb-storage
vm_check "strict: modprobe uas is refused" vm_not modprobe -C /vmtest/strict uas
modprobe -C /vmtest/strict -b "$(intf_attr "$(usb_intf BLOCK3)" modalias)"
vm_check "strict: the stick's modalias loads no storage driver" \
	vm_not eval '[ -d /sys/module/usb_storage ] || [ -d /sys/module/uas ]'
vm_check "control: without the strict layer the modalias loads usb-storage" \
	modprobe -b "$(intf_attr "$(usb_intf BLOCK3)" modalias)"
vm_check "control: usb-storage is loaded again" [ -d /sys/module/usb_storage ]
