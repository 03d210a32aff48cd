#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# mynaguard-notify against a real private session bus (dbus-daemon started here) and a tiny
# notification server (notification-server.py); this script plays the agent's notice socket.
# Usage: test-notify.py CASE --notify BIN --server notification-server.py
#   forward     a notice is shown (Japanese first, English second, contact, request code, urgency
#               critical); the same code again replaces the notification
#   malformed   broken and oversized messages are dropped with a log line, a later good one shows
#   reconnect   the socket goes away and comes back: mynaguard-notify connects again
#   markup      a server with body-markup gets & < > escaped and the code in bold
#   nocontact   no contact and no device name: the administrator is named, the ids are shown;
#               then the bus goes away and mynaguard-notify ends
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

WAIT = 20.0

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def notice(code="7K3M9QXD", name="Ultra", contact="情報政策課 内線 1234", device="0781:5581"):
    return json.dumps({"v": 1, "kind": "usb.blocked", "device": device, "name": name,
                       "request_code": code, "contact": contact, "ts": 1764900000123},
                      ensure_ascii=False).encode()


class Harness:
    def __init__(self, args, caps="body"):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="mynaguard-notify-test.")
        self.procs = []
        self.record = os.path.join(self.tmp, "notifications.jsonl")
        self.sock_path = os.path.join(self.tmp, "notify.sock")
        self.log_path = os.path.join(self.tmp, "notify.log")
        self.lsock = None
        self.conn = None
        bus_path = os.path.join(self.tmp, "bus")
        conf = os.path.join(self.tmp, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONFIG.format(path=bus_path))
        daemon = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork",
                                   "--nopidfile", "--print-address=1"],
                                  stdout=subprocess.PIPE, text=True)
        self.procs.append(daemon)
        self.address = daemon.stdout.readline().strip()
        if not self.address:
            self.fail("dbus-daemon printed no address")
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.address)
        self.env.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        server = subprocess.Popen(["/usr/bin/python3", args.server, self.record, caps],
                                  stdout=subprocess.PIPE, env=self.env, text=True)
        self.procs.append(server)
        if server.stdout.readline().strip() != "READY":
            self.fail("the notification server did not start")
        self.listen()
        self.log = open(self.log_path, "w")
        self.notifier = subprocess.Popen([args.notify, "--socket", self.sock_path],
                                         stdout=self.log, stderr=self.log, env=self.env)
        self.procs.append(self.notifier)

    def fail(self, msg):
        print("FAIL: " + msg, file=sys.stderr)
        if os.path.exists(self.log_path):
            print("--- mynaguard-notify log ---\n" + self.text(), file=sys.stderr)
        if os.path.exists(self.record):
            print("--- notifications ---\n" + open(self.record).read(), file=sys.stderr)
        self.close()
        sys.exit(1)

    def text(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_log(self, needle, count=1):
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            if self.text().count(needle) >= count:
                return
            if self.notifier.poll() is not None:
                self.fail("mynaguard-notify exited with %d" % self.notifier.returncode)
            time.sleep(0.05)
        self.fail("not in the log %d time(s): %s" % (count, needle))

    def notifications(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def wait_notifications(self, n):
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            got = self.notifications()
            if len(got) >= n:
                return got
            time.sleep(0.05)
        self.fail("expected %d notification(s), got %d" % (n, len(self.notifications())))

    def listen(self):
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lsock.bind(self.sock_path)
        self.lsock.listen(4)
        self.lsock.settimeout(WAIT)

    def accept(self):
        try:
            self.conn, _ = self.lsock.accept()
        except socket.timeout:
            self.fail("mynaguard-notify did not connect")

    def send(self, data):
        self.conn.send(data)

    def go_away(self):
        self.conn.close()
        self.lsock.close()
        os.unlink(self.sock_path)

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        shutil.rmtree(self.tmp, ignore_errors=True)

    def stop_notifier(self):
        self.notifier.send_signal(signal.SIGTERM)
        rc = self.notifier.wait(10)
        if rc != 0:
            self.fail("mynaguard-notify exited with %d after SIGTERM" % rc)


def check(h, cond, msg):
    if not cond:
        h.fail(msg)


def case_forward(h):
    h.accept()
    h.send(notice())
    got = h.wait_notifications(1)[0]
    check(h, got["app"] == "mynaguard", "app name: %r" % got["app"])
    check(h, got["summary"].startswith("USB 機器は使用できません"), "summary: %r" % got["summary"])
    check(h, "USB device blocked" in got["summary"], "summary in English: %r" % got["summary"])
    body = got["body"]
    ja = body.find("この USB 機器は市のセキュリティポリシーにより使用できません")
    en = body.find("This USB device is blocked by the city's security policy")
    check(h, 0 <= ja < en, "Japanese first, English second: %r" % body)
    check(h, "情報政策課 内線 1234" in body, "contact in the body: %r" % body)
    check(h, "Ultra (0781:5581)" in body, "device in the body: %r" % body)
    check(h, body.endswith("\n7K3M9QXD"), "the code alone on the last line: %r" % body)
    check(h, got["hints"].get("urgency") == 2, "urgency critical: %r" % got["hints"])
    check(h, got["hints"].get("desktop-entry") == "mynaguard-notify", "desktop-entry hint")
    check(h, got["replaces_id"] == 0, "a new notification")
    h.wait_log("shown device=0781:5581 request_code=7K3M9QXD")
    # the same stick again (another interface, a second plug): the notification is replaced
    h.send(notice())
    again = h.wait_notifications(2)[1]
    check(h, again["replaces_id"] == got["id"], "replaces %d: %r" % (got["id"], again))
    # another stick: a notification of its own
    h.send(notice(code="ABCDEFGH", device="090c:1000", name="USB DISK"))
    other = h.wait_notifications(3)[2]
    check(h, other["replaces_id"] == 0 and "ABCDEFGH" in other["body"], "second stick: %r" % other)
    h.stop_notifier()
    check(h, "stopping shown=3 dropped=0" in h.text(), "stop line")


def case_malformed(h):
    h.accept()
    h.send(b'{"v":1,"kind":"usb.blocked"')
    h.wait_log("notice dropped: not JSON")
    bad = json.loads(notice())
    bad["request_code"] = "7K3M9QXU"
    h.send(json.dumps(bad).encode())
    h.wait_log("notice dropped: \\\"request_code\\\" is not 8 characters")
    bad = json.loads(notice())
    bad["name"] = "evil\x1b[2J"
    h.send(json.dumps(bad).encode())
    h.wait_log("notice dropped: \\\"name\\\" is empty, longer than 256 bytes or holds control")
    h.send(b"{" + b" " * 5000 + b"}")
    h.wait_log("notice dropped: message too large (5002 bytes, limit 4096)")
    check(h, h.notifications() == [], "nothing shown for broken notices")
    h.send(notice(code="G00DC0DE"))
    got = h.wait_notifications(1)
    check(h, len(got) == 1 and "G00DC0DE" in got[0]["body"], "the good one shows: %r" % got)
    h.stop_notifier()
    check(h, "stopping shown=1 dropped=4" in h.text(), "counters in the stop line")


def case_reconnect(h):
    h.accept()
    h.wait_log("connected to " + h.sock_path)
    h.send(notice(code="F1RST000"))
    h.wait_notifications(1)
    # the agent stops: the socket goes away; mynaguard-notify keeps trying
    h.go_away()
    h.wait_log("disconnected from " + h.sock_path)
    h.wait_log("cannot connect to " + h.sock_path)
    time.sleep(1.0)
    check(h, h.notifier.poll() is None, "still running while the agent is away")
    # the agent is back
    h.listen()
    h.accept()
    h.wait_log("connected to " + h.sock_path, 2)
    h.send(notice(code="SEC0ND00"))
    got = h.wait_notifications(2)
    check(h, "SEC0ND00" in got[1]["body"], "shown after the reconnect: %r" % got[1])
    # and once more, right after a hang-up (the agent restarting at once)
    h.conn.close()
    h.accept()
    h.send(notice(code="TH1RD000"))
    got = h.wait_notifications(3)
    check(h, "TH1RD000" in got[2]["body"], "shown after the second reconnect")


def case_markup(h):
    h.accept()
    h.send(notice(name="A<b>&C", contact="課 <内線> & 1234"))
    got = h.wait_notifications(1)[0]
    body = got["body"]
    check(h, "A&lt;b&gt;&amp;C (0781:5581)" in body, "name escaped: %r" % body)
    check(h, "課 &lt;内線&gt; &amp; 1234" in body, "contact escaped: %r" % body)
    check(h, body.endswith("<b>7K3M9QXD</b>"), "code in bold: %r" % body)


def case_nocontact(h):
    h.accept()
    h.send(notice(name=None, contact=None))
    body = h.wait_notifications(1)[0]["body"]
    check(h, "機器 / Device: 0781:5581\n" in body, "ids only: %r" % body)
    check(h, "システム管理者 / your system administrator" in body, "the administrator: %r" % body)
    # the session bus goes away (the session ended): so does mynaguard-notify
    h.procs[0].send_signal(signal.SIGTERM)
    try:
        rc = h.notifier.wait(WAIT)
    except subprocess.TimeoutExpired:
        h.fail("still running without its session bus")
    check(h, rc == 1, "exit status %d without the session bus" % rc)


CASES = {"forward": case_forward, "malformed": case_malformed, "reconnect": case_reconnect,
         "markup": case_markup, "nocontact": case_nocontact}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--notify", required=True)
    ap.add_argument("--server", required=True)
    args = ap.parse_args()
    h = Harness(args, caps="body,body-markup" if args.case == "markup" else "body")
    try:
        CASES[args.case](h)
    finally:
        h.close()
    print("ok " + args.case)


if __name__ == "__main__":
    main()
