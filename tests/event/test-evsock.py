#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Integration tests of mynaguardd's event side (agent/emit.c, agent/evsock.c) with the real daemon
# in a temporary directory: datagrams with sender credentials, malformed ones counted and never
# fatal, the per-uid rate limit, the PAM fallback file, sequence numbers across restarts, and
# spool.dropped with the exact count when the spool is full; what a local user cannot do: speak
# for root, date events, push root's events out of the spool, or stop recording via the uplink's
# acknowledgement.
# Usage: test-evsock.py SCENARIO --agent BIN --spool-tool BIN
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

A = None

GOOD = {"v": 1, "kind": "auth.failure", "ts_ms": 1795633116123,
        "data": {"user": "alice", "service": "login", "rhost": "", "tty": "tty1",
                 "reason": "bad_code"}}


def log(msg):
    sys.stderr.write("[test-evsock] %s\n" % msg)
    sys.stderr.flush()


class Agent:
    def __init__(self, tmp, spool_max="1M"):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "run", "event.sock")
        self.spool = os.path.join(tmp, "spool")
        self.state = os.path.join(tmp, "state")
        os.makedirs(os.path.join(tmp, "sys"), exist_ok=True)
        os.makedirs(os.path.join(tmp, "pam.d"), exist_ok=True)
        self.policy = os.path.join(tmp, "policy.conf")
        with open(self.policy, "w") as f:
            f.write("[terminal]\nid = T-01\n[report]\nspool_max = %s\n[checks]\n"
                    "pam_dir = %s/pam.d\nsysfs_root = %s/sys\n" % (spool_max, tmp, tmp))
        self.proc = None
        self.user = None  # --user for the worker
        self.log_path = os.path.join(tmp, "agent.log")

    def start(self, journal=False):
        self.logf = open(self.log_path, "ab")
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        if journal:  # as systemd sets it when stderr is the journal's stream
            st = os.fstat(self.logf.fileno())
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        self.proc = subprocess.Popen(
            [A.agent, "--policy", self.policy, "--socket", self.sock, "--spool", self.spool,
             "--state", self.state, "--sysfs-root", os.path.join(self.tmp, "sys")]
            + (["--user", self.user] if self.user else []),
            stdout=subprocess.PIPE, stderr=self.logf, env=env)
        line = self.proc.stdout.readline()
        assert line == b"READY\n", "agent did not get ready: %r" % line

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        rc = self.proc.returncode
        self.proc = None
        self.logf.close()
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def events(self):
        # every record, whatever the uplink's ack says: dump a copy of the segments
        copy = os.path.join(self.tmp, "spool-copy")
        shutil.rmtree(copy, ignore_errors=True)
        os.mkdir(copy)
        if os.path.isdir(self.spool):
            for f in os.listdir(self.spool):
                if f.startswith("seg-"):
                    shutil.copy(os.path.join(self.spool, f), copy)
        out = subprocess.run([A.spool_tool, "dump", copy], check=True,
                             stdout=subprocess.PIPE).stdout.decode()
        evs = []
        for line in out.splitlines():
            seq, _, payload = line.partition(" ")
            ev = json.loads(payload)
            assert ev["seq"] == int(seq)
            evs.append(ev)
        return evs

    def wait_events(self, pred, n, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = [e for e in self.events() if pred(e)]
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError("wanted %d events, have %d" % (n, len([e for e in self.events() if pred(e)])))


def send(path, payload, as_uid=None):
    """Send one datagram; with as_uid, from a child process running as that uid."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if as_uid is None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(data, path)
        s.close()
        return os.getpid()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(as_uid)
            os.setuid(as_uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            for d in (data if isinstance(data, list) else [data]):
                s.sendto(d, path)
            os.write(w, b"ok")
        finally:
            os._exit(0)
    os.close(w)
    ok = os.read(r, 2)
    os.close(r)
    os.waitpid(pid, 0)
    assert ok == b"ok", "child could not send"
    return pid


def send_many_as(path, datas, uid):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.setblocking(True)
            for d in datas:
                s.sendto(d, path)
            os.write(w, b"ok")
        finally:
            os._exit(0)
    os.close(w)
    ok = os.read(r, 2)
    os.close(r)
    os.waitpid(pid, 0)
    assert ok == b"ok"


def is_auth(e):
    return e["kind"].startswith("auth.")


def ts_s(ev):
    """An event's "ts" as seconds since the epoch."""
    import calendar
    return calendar.timegm(time.strptime(ev["ts"][:19], "%Y-%m-%dT%H:%M:%S"))


NOBODY = None  # the name of uid 65534, set in main()


def scenario_datagrams(ag):
    """Valid datagrams become events with the sender's uid and pid; the socket is 0666."""
    ag.start()
    st = os.stat(ag.sock)
    assert st.st_mode & 0o777 == 0o666, oct(st.st_mode)
    t0 = time.time()
    pid = send(ag.sock, GOOD)
    ev = ag.wait_events(is_auth, 1)[0]
    assert ev["kind"] == "auth.failure"
    assert ev["terminal"] == "T-01"
    # the agent's clock; the sender's time is kept as data
    assert abs(ts_s(ev) - t0) < 5, ev["ts"]
    assert ev["data"]["user"] == "alice" and ev["data"]["tty"] == "tty1"
    assert ev["data"]["sender"] == {"uid": os.getuid(), "pid": pid, "ts_ms": GOOD["ts_ms"]}, \
        ev["data"]
    assert ev["clause"] == ["2-6-3-a", "2-3-1"]
    if os.getuid() == 0:
        # a user reporting about itself (a screen locker): not marked
        d = dict(GOOD, kind="auth.success", data=dict(GOOD["data"], user=NOBODY))
        child = send(ag.sock, d, as_uid=65534)
        evs = ag.wait_events(is_auth, 2)
        assert evs[1]["kind"] == "auth.success"
        assert evs[1]["data"]["sender"] == {"uid": 65534, "pid": child,
                                            "ts_ms": GOOD["ts_ms"]}, evs[1]["data"]
    assert ag.stop() == 0
    assert not os.path.exists(ag.sock), "socket left behind"


def scenario_malformed(ag):
    """Malformed datagrams are counted and logged (rate-limited), never fatal."""
    ag.start()
    bad = [b"garbage\x01\xff", b"{}", b"[1,2]", json.dumps(dict(GOOD, kind="usb.blocked")).encode(),
           json.dumps(dict(GOOD, extra=1)).encode(), b'{"v":1,"v":1}',
           json.dumps(dict(GOOD, data={"user": "a", "service": "s", "sender": "forged"})).encode(),
           b"x" * 5000, b"\x00" * 100, b"{" * 3000]
    for b in bad:
        send(ag.sock, b)
    send(ag.sock, GOOD)
    ag.wait_events(is_auth, 1)
    assert ag.alive()
    assert len([e for e in ag.events() if is_auth(e)]) == 1
    assert ag.stop() == 0
    text = ag.log_text()
    assert "evsock.closed received=11 accepted=1 malformed=10 rate_limited=0" in text, text
    # logged once, the rest counted into the next line
    assert text.count("evsock.malformed") == 1, text
    for line in text.splitlines():
        if line.startswith("evsock.malformed"):
            # escaped by base/escape.c: valid UTF-8 (decoded above), no control character
            assert all(ord(c) >= 0x20 and not 0x7f <= ord(c) < 0xa0 for c in line), line


def scenario_journal(ag):
    """Under systemd every line of both processes carries its sd-daemon priority prefix."""
    ag.start(journal=True)
    send(ag.sock, b"garbage")
    send(ag.sock, GOOD)
    ag.wait_events(is_auth, 1)
    assert ag.stop() == 0
    lines = ag.log_text().splitlines()
    assert lines, "no log lines"
    for line in lines:
        assert len(line) > 3 and line[0] == "<" and line[2] == ">" and line[1] in "034567", line

    def prio(prefix):
        found = [ln[1] for ln in lines if ln[3:].startswith(prefix)]
        assert found, "no line starting with %r: %s" % (prefix, lines)
        return found[0]
    assert prio("evsock.malformed") == "4"
    assert prio("event seq=") == "6"
    assert prio("monitor.started") == "6"
    assert prio("worker.started") == "6"
    # not under systemd: the text alone, as before
    ag.start()
    assert ag.stop() == 0
    tail = ag.log_text().splitlines()[len(lines):]
    assert tail and all(not ln.startswith("<") for ln in tail), tail


def scenario_ratelimit(ag):
    """A user who floods the socket is cut off at the burst; root is not affected."""
    if os.getuid() != 0:
        log("skipping: needs root to send as another uid")
        return
    ag.start()
    d = json.dumps(GOOD).encode()
    send_many_as(ag.sock, [d] * 300, 65534)
    time.sleep(0.5)
    send(ag.sock, GOOD)
    deadline = time.time() + 10
    while time.time() < deadline:
        evs = [e for e in ag.events() if is_auth(e)]
        if any(e["data"]["sender"]["uid"] == 0 for e in evs):
            break
        time.sleep(0.05)
    user = [e for e in evs if e["data"]["sender"]["uid"] == 65534]
    root = [e for e in evs if e["data"]["sender"]["uid"] == 0]
    # 100 = its burst; refill (20/s) while a slow (ASan, loaded) agent works through the queue
    assert 100 <= len(user) < 200, "user got %d events through" % len(user)
    assert len(root) == 1
    assert ag.stop() == 0
    text = ag.log_text()
    assert "evsock.rate-limited uid=65534" in text, text


def write_pending(ag, lines, mode=0o600):
    d = os.path.join(ag.state, "totp")
    os.makedirs(d, mode=0o700, exist_ok=True)
    p = os.path.join(d, ".pending-events")
    with open(p, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    os.chmod(p, mode)
    return p


def scenario_pending(ag):
    """The PAM fallback file is emitted at start, then emptied; a file with group/other access is refused."""
    os.makedirs(ag.state, exist_ok=True)
    g2 = dict(GOOD, kind="auth.locked", ts_ms=1795633117000)
    hostile = json.dumps(dict(GOOD, **{"\u6771\u4eac\"x\x1b": 1}))
    p = write_pending(ag, [json.dumps(GOOD), "not json", hostile, json.dumps(g2)])
    with open(os.path.join(ag.state, "totp", ".pending-events.dropped"), "w") as f:
        f.write("3\n")
    os.chmod(os.path.join(ag.state, "totp", ".pending-events.dropped"), 0o600)
    ag.start()
    evs = ag.wait_events(is_auth, 2)
    assert [e["kind"] for e in evs] == ["auth.failure", "auth.locked"]
    assert evs[0]["data"]["sender"] == {"via": "pending-file", "ts_ms": GOOD["ts_ms"]}
    assert evs[1]["ts"] == "2026-11-25T18:58:37.000Z"
    dropped = [e for e in ag.events() if e["kind"] == "spool.dropped"]
    assert len(dropped) == 1 and dropped[0]["data"]["count"] == 3, dropped
    assert os.path.getsize(p) == 0
    assert not os.path.exists(os.path.join(ag.state, "totp", ".pending-events.dropped"))
    assert ag.stop() == 0
    text = ag.log_text()
    assert "pending.collected events=2 malformed=2" in text, text
    # the reason is escaped by base/escape.c twice (the decoder quotes the key, the log line
    # the reason): Japanese kept, the quote and the escape character shown, no raw control
    assert "\x1b" not in text, text
    assert r'reason="unknown key \"' + "\u6771\u4eac" + r'\\\"x\\x1b\""' in text, text

    # world-readable: refused and left alone
    write_pending(ag, [json.dumps(GOOD)], mode=0o644)
    ag.start()
    time.sleep(0.3)
    assert ag.stop() == 0
    assert len([e for e in ag.events() if is_auth(e)]) == 2
    assert os.path.getsize(p) > 0
    assert "pending.refused" in ag.log_text()


def ctx_switches(pid):
    with open("/proc/%d/status" % pid) as f:
        return [l for l in f if "ctxt_switches" in l]


def scenario_pending_live(ag):
    """While the agent runs, lines the PAM module appends (socket queue full) are collected at
    once (inotify), and the agent does not wake up by itself afterwards."""
    import fcntl
    ag.start()
    # the store directory appears after the agent started (first enrollment): watched too
    os.makedirs(os.path.join(ag.state, "totp"), mode=0o700)
    p = os.path.join(ag.state, "totp", ".pending-events")
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, (json.dumps(dict(GOOD, kind="auth.replay")) + "\n").encode())
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    evs = ag.wait_events(is_auth, 1, timeout=5)
    assert evs[0]["kind"] == "auth.replay"
    assert evs[0]["data"]["sender"] == {"via": "pending-file", "ts_ms": GOOD["ts_ms"]}
    deadline = time.time() + 5
    while os.path.getsize(p) != 0 and time.time() < deadline:
        time.sleep(0.05)
    assert os.path.getsize(p) == 0
    time.sleep(0.3)
    before = ctx_switches(ag.proc.pid)
    time.sleep(1.5)
    after = ctx_switches(ag.proc.pid)
    assert after == before, "agent busy after collecting: %s -> %s" % (before, after)
    assert ag.stop() == 0
    assert len([e for e in ag.events() if is_auth(e)]) == 1


def scenario_restart(ag):
    """Sequence numbers rise by one per event and survive restarts, also kill -9."""
    for i in range(3):
        ag.start()
        send(ag.sock, GOOD)
        ag.wait_events(is_auth, i + 1)
        if i == 1:
            ag.proc.send_signal(signal.SIGKILL)
            ag.proc.wait()
            ag.proc = None
            ag.logf.close()
        else:
            assert ag.stop() == 0
    seqs = [e["seq"] for e in ag.events()]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    kinds = [e["kind"] for e in ag.events()]
    assert kinds.count("agent.started") == 3, kinds
    with open(os.path.join(ag.state, "seq")) as f:
        assert int(f.read()) > seqs[-1]

    # the spool is wiped: numbers are never reused
    shutil.rmtree(ag.spool)
    ag.start()
    assert ag.stop() == 0
    seqs2 = [e["seq"] for e in ag.events()]
    assert seqs2[0] > seqs[-1], (seqs2, seqs)
    assert "spool.warning" in ag.log_text()


def scenario_full(ag):
    """spool full: the oldest segments go and spool.dropped says exactly how many."""
    # 6000 events of ~330 bytes through the fallback file: ~2 MB into a 1 MiB spool
    os.makedirs(ag.state, exist_ok=True)
    lines = [json.dumps(dict(GOOD, ts_ms=1795633116000 + i)) for i in range(6000)]
    write_pending(ag, lines)
    ag.start()
    assert ag.stop() == 0
    evs = ag.events()
    seqs = [e["seq"] for e in evs]
    dropped = [e for e in evs if e["kind"] == "spool.dropped"]
    assert dropped, "no spool.dropped event"
    missing = set(range(1, max(seqs) + 1)) - set(seqs)
    announced = set()
    for d in dropped:
        r = set(range(d["data"]["first_seq"], d["data"]["last_seq"] + 1))
        assert len(r) == d["data"]["count"], d
        announced |= r
    assert missing == announced, "missing %d, announced %d" % (len(missing), len(announced))
    total = sum(os.path.getsize(os.path.join(ag.spool, f)) for f in os.listdir(ag.spool)
                if f.startswith("seg-"))
    assert total <= 1024 * 1024, total
    log("%d events kept, %d dropped in %d announcements" % (len(seqs), len(missing), len(dropped)))


def scenario_nospool(ag):
    """A spool that cannot be opened does not stop the agent: events are logged as lost."""
    with open(ag.spool, "w") as f:
        f.write("not a directory\n")
    ag.start()
    send(ag.sock, GOOD)
    deadline = time.time() + 10
    while time.time() < deadline and "event.lost kind=auth.failure" not in ag.log_text():
        time.sleep(0.05)
    assert ag.alive()
    assert ag.stop() == 0
    text = ag.log_text()
    assert "event.lost kind=auth.failure" in text and '"user":"alice"' in text, text
    assert "emit.error spool=" in text


def scenario_forged(ag):
    """A local user claims a failed login of root, dated in the year 9999: stored with the
    agent's clock and marked as from an unprivileged sender. Root's own report is not marked;
    a line in the root-only PAM fallback file dated in the future gets the agent's clock."""
    if os.getuid() != 0:
        log("SKIP: needs root to send as another uid")
        sys.exit(77)
    os.makedirs(ag.state, exist_ok=True)
    future = dict(GOOD, ts_ms=253402300799999, data=dict(GOOD["data"], user="root"))
    write_pending(ag, [json.dumps(future)])
    ag.start()
    t0 = time.time()
    child = send(ag.sock, future, as_uid=65534)
    evs = ag.wait_events(is_auth, 2)
    pend, forged = evs
    assert pend["data"]["sender"] == {"via": "pending-file", "ts_ms": 253402300799999}, pend
    assert abs(ts_s(pend) - t0) < 5, pend["ts"]
    assert forged["data"]["user"] == "root"
    assert forged["data"]["sender"] == {"uid": 65534, "pid": child, "ts_ms": 253402300799999,
                                        "unprivileged": True}, forged["data"]
    assert abs(ts_s(forged) - t0) < 5, forged["ts"]
    # no user name at all for the uid: marked too; root about root: not marked
    send(ag.sock, future, as_uid=54321)
    send(ag.sock, future)
    evs = ag.wait_events(is_auth, 4)
    assert evs[2]["data"]["sender"]["uid"] == 54321 and evs[2]["data"]["sender"]["unprivileged"]
    assert evs[3]["data"]["sender"]["uid"] == 0 and "unprivileged" not in evs[3]["data"]["sender"]
    assert all(ts_s(e) < t0 + 5 for e in evs)
    assert ag.stop() == 0


def scenario_flood(ag):
    """One user within its rate limit floods the socket with large datagrams: its events get a
    bounded share of the spool, root's and the agent's events are never pushed out, and
    spool.dropped counts the refused ones exactly."""
    if os.getuid() != 0:
        log("SKIP: needs root to send as another uid")
        sys.exit(77)
    ag.start()
    big = dict(GOOD, data=dict(GOOD["data"], user=NOBODY, pad="p" * 3800))
    d = json.dumps(big).encode()
    assert len(d) < 4096
    for i in range(5):
        send(ag.sock, dict(GOOD, data=dict(GOOD["data"], user="root", n=i)))
    # 100 = the burst of a uid, then its steady 20/s: within the rate limit, 300 * 4 KB in
    # all, more than the whole spool (1 MiB)
    send_many_as(ag.sock, [d] * 100, 65534)
    for _ in range(10):
        time.sleep(1.0)
        send_many_as(ag.sock, [d] * 20, 65534)
    time.sleep(0.5)
    for i in range(5, 10):
        send(ag.sock, dict(GOOD, data=dict(GOOD["data"], user="root", n=i)))
    ag.wait_events(lambda e: is_auth(e) and e["data"]["sender"]["uid"] == 0, 10)
    assert ag.stop() == 0
    evs = ag.events()
    seqs = [e["seq"] for e in evs]
    assert seqs == list(range(1, len(seqs) + 1)), "a gap: %s" % seqs
    root = [e["data"]["n"] for e in evs if is_auth(e) and e["data"]["sender"]["uid"] == 0]
    assert root == list(range(10)), root
    kinds = [e["kind"] for e in evs]
    assert "agent.started" in kinds and "compliance" in kinds and "agent.stopped" in kinds
    user = [e for e in evs if is_auth(e) and e["data"]["sender"]["uid"] == 65534]
    share = sum(len(json.dumps(e, separators=(",", ":"))) + 20 for e in user)
    assert share <= 1024 * 1024 // 4 + 4096, share
    dropped = [e for e in evs if e["kind"] == "spool.dropped"]
    assert all(x["data"]["reason"] == "unprivileged share full" for x in dropped), dropped
    assert all("first_seq" not in x["data"] for x in dropped), "something was evicted"
    text = ag.log_text()
    closed = [l for l in text.splitlines() if l.startswith("evsock.closed")][-1]
    limited = int(closed.split("rate_limited=")[1].split()[0])
    refused = sum(x["data"]["count"] for x in dropped)
    assert refused > 0 and len(user) > 0
    assert len(user) + refused + limited == 300, (len(user), refused, limited)
    log("user: %d stored, %d refused, %d rate-limited; %d announcements"
        % (len(user), refused, limited, len(dropped)))


def scenario_ack(ag):
    """The uplink's user cannot stop recording: it cannot create or delete anything in the spool
    directory, and an acknowledgement beyond the last stored number is refused, logged and
    reported; nothing is deleted for it and numbering goes on, also after a restart."""
    if os.getuid() != 0:
        log("SKIP: needs root to act as another uid")
        sys.exit(77)
    ag.start()
    send(ag.sock, GOOD)
    ag.wait_events(is_auth, 1)
    st = os.stat(ag.spool)
    assert st.st_uid == 0 and st.st_mode & 0o7777 == 0o750, oct(st.st_mode)
    # the installer gives ack/ the uplink's group; here uid/gid 65534
    ackdir = os.path.join(ag.spool, "ack")
    os.chown(ag.spool, 0, 65534)
    os.chown(ackdir, 0, 65534)
    segs = sorted(f for f in os.listdir(ag.spool) if f.startswith("seg-"))
    last = ag.events()[-1]["seq"]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        res = []
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            for f in (lambda: open(os.path.join(ag.spool, "seg-%020d" % (last + 1)), "w"),
                      lambda: os.unlink(os.path.join(ag.spool, segs[0]))):
                try:
                    f()
                    res.append("done")
                except PermissionError:
                    res.append("refused")
            with open(os.path.join(ackdir, "acked"), "w") as f:
                f.write("9223372036854775807\n")
            res.append("acked")
        finally:
            os.write(w, ",".join(res).encode())
            os._exit(0)
    os.close(w)
    out = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert out == "refused,refused,acked", out
    # noticed at once (inotify on ack/), without any event arriving
    deadline = time.time() + 10
    while time.time() < deadline and "spool.ack-refused" not in ag.log_text():
        time.sleep(0.05)
    assert "spool.ack-refused" in ag.log_text()
    for i in range(3):
        send(ag.sock, dict(GOOD, data=dict(GOOD["data"], n=i)))
    ag.wait_events(lambda e: is_auth(e) and "n" in e["data"], 3)
    assert ag.stop() == 0
    text = ag.log_text()
    assert text.count("spool.ack-refused") == 1, text
    assert "uplink acknowledgement 9223372036854775807 refused: beyond the last stored" in text
    # a restart does not believe it either, and says so once more
    ag.start()
    send(ag.sock, GOOD)
    ag.wait_events(is_auth, 5)
    assert ag.stop() == 0
    assert ag.log_text().count("spool.ack-refused") == 2
    evs = ag.events()
    seqs = [e["seq"] for e in evs]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert len([e for e in evs if is_auth(e)]) == 5
    refusals = [e for e in evs if e["kind"] == "spool.dropped"]
    assert len(refusals) == 2 and all(e["data"]["count"] == 0 for e in refusals), refusals
    assert "9223372036854775807" in refusals[0]["data"]["reason"]


def scenario_ack_worker_nobody(ag):
    """The same with the worker as another user (as under the installer, where it cannot even
    read the spool directory): the watch on ack/ is taken before the split and still works."""
    if os.getuid() != 0:
        log("SKIP: needs root to run the worker as another user")
        sys.exit(77)
    ag.user = NOBODY
    scenario_ack(ag)
    assert "worker.started pid=" in ag.log_text() and " uid=65534 " in ag.log_text()


SCENARIOS = {
    "ack-worker-nobody": scenario_ack_worker_nobody,
    "forged": scenario_forged,
    "flood": scenario_flood,
    "ack": scenario_ack,
    "nospool": scenario_nospool,
    "pending-live": scenario_pending_live,
    "datagrams": scenario_datagrams,
    "malformed": scenario_malformed,
    "journal": scenario_journal,
    "ratelimit": scenario_ratelimit,
    "pending": scenario_pending,
    "restart": scenario_restart,
    "full": scenario_full,
}


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--agent", required=True)
    ap.add_argument("--spool-tool", required=True)
    A = ap.parse_args()
    global NOBODY
    import pwd
    try:
        NOBODY = pwd.getpwuid(65534).pw_name
    except KeyError:
        raise AssertionError("uid 65534 has no user name on this machine")
    tmp = tempfile.mkdtemp(prefix="mg-evsock-%s-" % A.scenario)
    os.chmod(tmp, 0o755)
    ag = Agent(tmp)
    ok = False
    try:
        SCENARIOS[A.scenario](ag)
        ok = True
    finally:
        if ag.proc:
            ag.proc.kill()
            ag.proc.wait()
        if not ok:
            try:
                log("---- agent log (tail) ----\n" + ag.log_text()[-4000:])
            except OSError:
                pass
            log("left %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log("%s: ok" % A.scenario)


if __name__ == "__main__":
    main()
