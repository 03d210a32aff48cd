#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# demo-usb.py: a simulated USB bus for the demo (umockdev testbed), runs the agent on it and
# plugs devices in when told. No root, no hardware, nothing on the host's /sys is touched.
#
# Usage: umockdev-wrapper /usr/bin/python3 demo-usb.py CMD_FIFO -- AGENT [ARGS...]
# Creates one root hub with interface_authorized_default=0 (what the udev rule sets), starts
# AGENT (it inherits the mock environment), waits for its READY line, prints "usb-sim: ready",
# then reads commands from CMD_FIFO, one per line:
#   stick [SERIAL]  plug in a USB stick (mass storage, class 08); another SERIAL, another stick
#   keyboard   plug in a USB keyboard (HID, class 03)
#   show       print the authorized state of every interface
#   quit       stop the agent (SIGTERM) and exit
# The agent's stdout/stderr are passed through.
import os
import signal
import subprocess
import sys
import time

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev  # noqa: E402


def out(msg):
    print("usb-sim: " + msg, flush=True)


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__ or "usage: demo-usb.py FIFO -- AGENT ARGS", file=sys.stderr)
        return 2
    fifo = sys.argv[1]
    agent_argv = sys.argv[3:]

    tb = UMockdev.Testbed.new()
    hub = tb.add_device(
        "usb", "usb1", None,
        ["busnum", "1", "devnum", "1", "idVendor", "1d6b", "idProduct", "0002",
         "bDeviceClass", "09", "speed", "480", "version", " 2.00",
         "manufacturer", "Linux xhci-hcd", "product", "xHCI Host Controller",
         "authorized", "1", "authorized_default", "1", "interface_authorized_default", "0"],
        ["DEVTYPE", "usb_device", "BUSNUM", "001", "DEVNUM", "001",
         "PRODUCT", "1d6b/2/600", "TYPE", "9/0/1", "DRIVER", "usb"])
    tb.add_device(
        "usb", "1-0:1.0", hub,
        ["bInterfaceClass", "09", "bInterfaceSubClass", "00", "bInterfaceProtocol", "00",
         "bInterfaceNumber", "00", "bAlternateSetting", " 0", "bNumEndpoints", "01",
         "authorized", "1"],
        ["DEVTYPE", "usb_interface", "INTERFACE", "9/0/0", "DRIVER", "hub"])

    # umockdev_testbed_new() set UMOCKDEV_DIR with setenv(); Python's os.environ does not see it.
    env = dict(os.environ)
    env["UMOCKDEV_DIR"] = tb.get_root_dir()
    agent = subprocess.Popen(agent_argv, stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    for line in agent.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.strip() == "READY":
            break
        if time.monotonic() > deadline:
            break
    else:
        out("the agent exited before READY (status %s)" % agent.wait())
        return 1

    # Pass the rest of the agent's output through without blocking the command loop.
    import threading

    def pump():
        for l2 in agent.stdout:
            sys.stdout.write(l2)
            sys.stdout.flush()

    threading.Thread(target=pump, daemon=True).start()
    out("ready")

    devnum = [1]
    plugged = []

    def plug(name, vid, pid, serial, manuf, product, cls, sub, proto, iface_label, dev_props):
        devnum[0] += 1
        port = "1-%d" % (devnum[0] - 1)
        out("plugged %s %s:%s (%s %s) at %s, interface class %s" %
            (name, vid, pid, manuf, product, port, cls))
        dev = tb.add_device(
            "usb", port, hub,
            ["busnum", "1", "devnum", str(devnum[0]), "idVendor", vid, "idProduct", pid,
             "bDeviceClass", "00", "bDeviceSubClass", "00", "bDeviceProtocol", "00",
             "bNumInterfaces", " 1", "bConfigurationValue", "1", "speed", "480",
             "serial", serial, "manufacturer", manuf, "product", product, "authorized", "1"],
            ["DEVTYPE", "usb_device", "BUSNUM", "001", "DEVNUM", "%03d" % devnum[0],
             "PRODUCT", "%x/%x/100" % (int(vid, 16), int(pid, 16)),
             "ID_VENDOR_ID", vid, "ID_MODEL_ID", pid, "ID_SERIAL_SHORT", serial] + dev_props)
        # The kernel creates interfaces unauthorized (interface_authorized_default=0).
        iface = tb.add_device(
            "usb", port + ":1.0", dev,
            ["bInterfaceClass", cls, "bInterfaceSubClass", sub, "bInterfaceProtocol", proto,
             "bInterfaceNumber", "00", "bAlternateSetting", " 0", "bNumEndpoints", "02",
             "interface", iface_label, "authorized", "0"],
            ["DEVTYPE", "usb_interface",
             "INTERFACE", "%d/%d/%d" % (int(cls, 16), int(sub, 16), int(proto, 16)),
             "PRODUCT", "%x/%x/100" % (int(vid, 16), int(pid, 16))])
        plugged.append((name, dev, iface))

    def show():
        for name, _dev, iface in plugged:
            path = os.path.join(tb.get_root_dir(), iface.lstrip("/"), "authorized")
            try:
                with open(path) as f:
                    state = f.read().strip()
            except OSError:
                state = "?"
            out("%s interface authorized=%s (%s)" %
                (name, state, "allowed" if state == "1" else "blocked"))

    with open(fifo) as cmds:
        while True:
            line = cmds.readline()
            if not line:
                time.sleep(0.05)
                continue
            cmd, _, arg = line.strip().partition(" ")
            if cmd == "stick":
                serial = arg or "4C530001090515116423"
                plug("stick" if not arg else "stick-" + serial, "0781", "5581", serial, "SanDisk",
                     "Ultra", "08", "06", "50", "Mass Storage", ["ID_USB_INTERFACES", ":080650:"])
            elif cmd == "keyboard":
                plug("keyboard", "046d", "c31c", "", "Logitech", "USB Keyboard",
                     "03", "01", "01", "HID Keyboard", ["ID_USB_INTERFACES", ":030101:"])
            elif cmd == "show":
                show()
            elif cmd == "quit":
                break
            elif cmd:
                out("unknown command " + cmd)

    agent.send_signal(signal.SIGTERM)
    try:
        agent.wait(timeout=10)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()
    out("agent stopped (status %d)" % agent.returncode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
