#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A tiny org.freedesktop.Notifications server for the tests (python3-dbus with python3-gi): owns
# the name on the session bus of DBUS_SESSION_BUS_ADDRESS, records every Notify call as one JSON
# line in RECORD and answers with rising ids. Prints READY once the name is owned.
# Usage: notification-server.py RECORD CAPABILITY[,CAPABILITY...]
import json
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.Notifications"


class Server(dbus.service.Object):
    def __init__(self, bus, record, caps):
        super().__init__(bus, "/org/freedesktop/Notifications")
        self.record = record
        self.caps = caps
        self.next_id = 1

    @dbus.service.method(IFACE, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return self.caps

    @dbus.service.method(IFACE, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("mynaguard-test", "mynaguard", "1", "1.2")

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces_id, icon, summary, body, actions, hints, timeout):
        nid = int(replaces_id) if replaces_id else self.next_id
        if not replaces_id:
            self.next_id += 1
        hints_plain = {}
        for k, v in hints.items():
            if isinstance(v, (dbus.Byte, dbus.Int32, dbus.UInt32, dbus.Int64)):
                hints_plain[str(k)] = int(v)
            else:
                hints_plain[str(k)] = str(v)
        with open(self.record, "a", encoding="utf-8") as f:
            f.write(json.dumps({"app": str(app), "replaces_id": int(replaces_id), "id": nid,
                                "icon": str(icon), "summary": str(summary), "body": str(body),
                                "actions": [str(a) for a in actions], "hints": hints_plain,
                                "timeout": int(timeout)}, ensure_ascii=False) + "\n")
        return dbus.UInt32(nid)

    @dbus.service.method(IFACE, in_signature="u", out_signature="")
    def CloseNotification(self, nid):
        pass


def main():
    record, caps = sys.argv[1], [c for c in sys.argv[2].split(",") if c]
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    name = dbus.service.BusName(IFACE, bus, do_not_queue=True)
    server = Server(bus, record, caps)
    print("READY", flush=True)
    GLib.MainLoop().run()
    del name, server


if __name__ == "__main__":
    main()
