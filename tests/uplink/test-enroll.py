#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Enrollment and certificate lifecycle, end to end on 127.0.0.1 with real binaries and a
# throwaway CA made by installer/mynaguard-ca: mynaguard-signer (holds the CA key),
# mynaguard-collector ([enroll] listener, renewal on ingest), mynaguard-collector-token,
# mynaguard-uplink --enroll / renewal, mynaguardctl status.
# Usage: test-enroll.py enroll|renew --bin-dir ... (see tests/uplink/meson.build)
import argparse
import hashlib
import http.client
import json
import os
import re
import select
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import tempfile
import time

# the collector tests' helpers (tests/collector/collectorlib.py)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "collector"))
from collectorlib import enroll_config, enroll_post, make_csr, stop_all, wait_ready  # noqa: E402
import fleetlib  # noqa: E402

A = None
TERMINAL = "T-01"


def log(msg):
    sys.stderr.write("[test-enroll] %s\n" % msg)
    sys.stderr.flush()


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s%s" % (cmd, r.returncode, r.stdout.decode(),
                                                  r.stderr.decode()))
    return r


def cert_info(path):
    out = run(["openssl", "x509", "-in", path, "-noout", "-serial", "-enddate"]).stdout.decode()
    serial = re.search(r"serial=([0-9A-F]+)", out).group(1)
    return serial.lstrip("0") or "0", out


def claim(spool, step):
    """One TOTP claim on the uplink's socket (base/claim.h) for a user enrolled nowhere: b"n"
    when the collector answered, b"x" when it could not be asked."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(5)
        s.connect(os.path.join(spool, "inbox", "claim.sock"))
        s.send(struct.pack(">Q", step) + b"nobody-enrolled")
        return s.recv(8)


class World:
    def __init__(self, tmp, lifetime="30d", fleet=False):
        self.tmp = tmp
        self.ca_dir = os.path.join(tmp, "ca")
        self.ca = [A.ca_script, "--dir", self.ca_dir]
        run(self.ca + ["init", "--name", "test city CA"])
        os.makedirs(os.path.join(tmp, "srv"))
        run(self.ca + ["server", "127.0.0.1", "localhost", "--out", os.path.join(tmp, "srv")])
        self.revoked = os.path.join(tmp, "revoked.txt")
        with open(self.revoked, "w") as f:
            f.write("")
        # mynaguard-ca revoke copies the list here (as collector-install.sh arranges)
        with open(os.path.join(self.ca_dir, "revoked-copies"), "w") as f:
            f.write(self.revoked + "\n")
        self.fingerprint = run(self.ca + ["fingerprint"]).stdout.decode().strip()
        tok = os.path.join(tmp, "dash.token")
        with open(tok, "w") as f:
            f.write("dashboard-token-0123456789\n")
        os.chmod(tok, 0o600)
        self.dash_token = "dashboard-token-0123456789"
        self.sock = os.path.join(tmp, "signer.sock")
        self.conf = os.path.join(tmp, "collector.conf")
        extra = ""
        if fleet:  # the claims' endpoint answers (docs/fleet.md)
            grant_pem, _, _ = fleetlib.keygen(tmp, "grant")
            _, root_pub, _ = fleetlib.keygen(tmp, "root")
            totp_key = os.path.join(tmp, "totp.key")
            with open(totp_key, "w") as f:
                f.write(os.urandom(32).hex() + "\n")
            os.chmod(totp_key, 0o600)
            extra = fleetlib.fleet_conf(grant_pem, root_pub) + "totp_key = %s\n" % totp_key
        with open(self.conf, "w") as f:
            f.write(enroll_config(tmp, extra))
        self.logs = open(os.path.join(tmp, "daemons.log"), "ab")
        self.signer = subprocess.Popen(
            [A.signer, "--ca-dir", self.ca_dir, "--socket", self.sock, "--lifetime", lifetime],
            stdout=subprocess.PIPE, stderr=self.logs)
        wait_ready(self.signer, "mynaguard-signer")
        self.collector = subprocess.Popen([A.collector, "--config", self.conf],
                                          stdout=subprocess.PIPE, stderr=self.logs)
        ready = wait_ready(self.collector, "mynaguard-collector")
        self.ingest = ready["ingest"]
        self.dashboard = ready["dashboard"]
        self.enroll = ready["enroll"]
        # the terminal
        self.term = os.path.join(tmp, "term")
        self.tls = os.path.join(self.term, "tls")
        self.spool = os.path.join(self.term, "spool")
        os.makedirs(self.tls)
        os.makedirs(self.spool)
        self.policy = os.path.join(self.term, "policy.conf")
        with open(self.policy, "w") as f:
            f.write("[terminal]\nid = %s\n[report]\ncollector = https://%s\n"
                    "ca = %s/ca.pem\ncert = %s/terminal.pem\nkey = %s/terminal.key\n"
                    "[checks]\npam_dir = %s/pam.d\nsysfs_root = %s/sys\n"
                    % (TERMINAL, self.ingest, self.tls, self.tls, self.tls, self.term,
                       self.term))

    def logtext(self):
        self.logs.flush()
        with open(os.path.join(self.tmp, "daemons.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        stop_all(self.collector, self.signer)

    def token(self, *args):
        r = run([A.token_tool, "--config", self.conf, "create", *args])
        toks = r.stdout.decode().split()
        for t in toks:
            assert re.fullmatch(r"mge1-[0-9a-f]{16}-[0-9a-f]{32}", t), t
        return toks

    def enroll_cmd(self, token, fingerprint=None, url=None):
        tf = os.path.join(self.tmp, "token.txt")
        with open(tf, "w") as f:
            f.write(token + "\n")
        return run([A.uplink, "--enroll", url or "https://" + self.enroll, "--token-file", tf,
                    "--ca-fingerprint", fingerprint or self.fingerprint, "--policy",
                    self.policy, "--timeout", "10"], check=False)

    def fill(self, n):
        return int(run([A.spool_tool, "fill", self.spool, TERMINAL, str(n), "0", "0", "1"])
                   .stdout)

    def upload_once(self, extra=()):
        return run([A.uplink, "--policy", self.policy, "--spool", self.spool, "--once",
                    "--retry-min", "100", "--retry-max", "500", "--timeout", "10", *extra],
                   check=False)

    def db(self, sql, *args):
        c = sqlite3.connect(os.path.join(self.tmp, "collector.db"), timeout=10)
        try:
            return c.execute(sql, args).fetchall()
        finally:
            c.close()

    def events(self, terminal, kind=None):
        q = "SELECT e.seq, e.kind, e.data FROM events e JOIN terminals t ON e.tid = t.id " \
            "WHERE t.name = ?"
        args = [terminal]
        if kind:
            q += " AND e.kind = ?"
            args.append(kind)
        return self.db(q + " ORDER BY e.seq", *args)

    def wait_events(self, terminal, kind, n, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            ev = self.events(terminal, kind)
            if len(ev) >= n:
                return ev
            time.sleep(0.2)
        raise AssertionError("expected %d %s events of %s, have %d" %
                             (n, kind, terminal, len(self.events(terminal, kind))))

    def dash_get(self, path):
        host, port = self.dashboard.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=os.path.join(self.ca_dir, "ca.pem"))
        c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
        c.request("GET", path, headers={"Authorization": "Bearer " + self.dash_token})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def ingest_post(self, cert, key, path="/v1/events", body=None):
        host, port = self.ingest.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=os.path.join(self.ca_dir, "ca.pem"))
        ctx.load_cert_chain(cert, key)
        c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
        c.request("POST", path, body=json.dumps(body or {"v": 1, "terminal": TERMINAL,
                                                         "events": []}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def enroll_post(self, obj):
        return enroll_post(self.enroll, os.path.join(self.ca_dir, "ca.pem"), obj)


def fd_targets(pid):
    out = []
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            out.append(os.readlink(os.path.join(d, fd)))
        except OSError:
            pass
    return out


def scenario_enroll(w):
    tls = w.tls
    # -- the collector's process never opens the CA key; its configuration does not name it
    with open(w.conf) as f:
        assert "ca.key" not in f.read()
    targets = fd_targets(w.collector.pid)
    assert not any("ca.key" in t for t in targets), targets
    with open("/proc/%d/maps" % w.collector.pid) as f:
        assert "ca.key" not in f.read()
    assert w.signer.poll() is None
    # [enroll] listen without a signer is a configuration error, named with the file
    bad = os.path.join(w.tmp, "bad.conf")
    with open(w.conf) as f, open(bad, "w") as g:
        g.write(f.read().replace("signer = %s\n" % w.sock, ""))
    r = run([A.collector, "--check", "--config", bad], check=False)
    assert r.returncode == 1 and b"[enroll] listen needs [enroll] signer" in r.stderr, r

    # -- a wrong fingerprint: nothing sent, nothing written, the token still good
    tok = w.token("--expires", "1h")[0]
    wrong = hashlib.sha256(b"not our CA").hexdigest()
    r = w.enroll_cmd(tok, fingerprint=wrong)
    assert r.returncode == 1, r
    assert b"does not match --ca-fingerprint" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(tls, "terminal.key"))
    assert not os.path.exists(os.path.join(tls, "terminal.pem"))
    assert not os.path.exists(os.path.join(tls, "ca.pem"))
    assert not w.events("mynaguard-collector", "enroll.issued")
    assert not w.events("mynaguard-collector", "enroll.refused")
    log("wrong CA fingerprint: refused before sending")

    # -- enroll with the token
    r = w.enroll_cmd(tok)
    assert r.returncode == 0, (r, w.logtext())
    assert b"enrolled T-01" in r.stdout, r.stdout
    st = os.stat(os.path.join(tls, "terminal.key"))
    assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    with open(os.path.join(tls, "ca.pem"), "rb") as f:
        ca_der = ssl.PEM_cert_to_DER_cert(f.read().decode())
    assert hashlib.sha256(ca_der).hexdigest().upper() == w.fingerprint.replace(":", "")
    serial, text = cert_info(os.path.join(tls, "terminal.pem"))
    subj = run(["openssl", "x509", "-in", os.path.join(tls, "terminal.pem"), "-noout",
                "-subject", "-ext", "extendedKeyUsage,basicConstraints"]).stdout.decode()
    assert "CN = T-01" in subj and "TLS Web Client Authentication" in subj and \
        "CA:FALSE" in subj, subj
    issued = w.wait_events("mynaguard-collector", "enroll.issued", 1)
    data = json.loads(issued[0][2])
    assert data["terminal"] == TERMINAL and data["serial"] == serial and \
        data["method"] == "token", data
    # the CA's books know it: mynaguard-ca list / revoke find enrolled terminals
    lst = run(w.ca + ["list"]).stdout.decode()
    assert serial in lst and "T-01" in lst, lst
    log("enrolled: serial %s" % serial)

    # -- the terminal uploads with its new certificate
    n = w.fill(7)
    r = w.upload_once()
    assert r.returncode == 0, r
    got = w.events(TERMINAL)
    assert len(got) == n, (len(got), n, r.stderr)
    log("uploaded %d events with the enrolled certificate" % n)

    # -- the token is single use: a second enrollment with it is refused, files untouched
    before = open(os.path.join(tls, "terminal.pem")).read()
    r = w.enroll_cmd(tok)
    assert r.returncode == 1 and b"HTTP 403" in r.stderr, r
    assert open(os.path.join(tls, "terminal.pem")).read() == before
    ref = w.wait_events("mynaguard-collector", "enroll.refused", 1)
    assert json.loads(ref[-1][2])["reason"] == "used", ref
    log("used token refused")

    # -- an expired token
    tok2 = w.token("--expires", "1m")[0]
    tid = tok2.split("-")[1]
    c = sqlite3.connect(os.path.join(w.tmp, "enroll.db"))
    c.execute("UPDATE tokens SET expires = ? WHERE id = ?", (int(time.time()) - 1, tid))
    c.commit()
    c.close()
    st, body = w.enroll_post({"terminal": "T-02", "token": tok2, "csr": make_csr(w.tmp, "T-02")})
    assert st == 403, (st, body)
    expired_answer = json.loads(body)["error"]
    ref = w.wait_events("mynaguard-collector", "enroll.refused", 2)
    assert json.loads(ref[-1][2])["reason"] == "expired", ref
    listing = run([A.token_tool, "--config", w.conf, "list"]).stdout.decode()
    assert re.search(tid + r"\s+expired", listing), listing
    log("expired token refused")

    # -- a guessed token: the same answer, logged with the peer, an event
    guess = "mge1-%s-%s" % (os.urandom(8).hex(), os.urandom(16).hex())
    st, body = w.enroll_post({"terminal": "T-03", "token": guess, "csr": make_csr(w.tmp, "T-03")})
    assert st == 403 and json.loads(body)["error"] == expired_answer, (st, body)
    st, body = w.enroll_post({"terminal": "T-03", "token": "abc", "csr": make_csr(w.tmp, "T-03")})
    assert st == 403 and json.loads(body)["error"] == expired_answer, (st, body)
    ref = w.wait_events("mynaguard-collector", "enroll.refused", 4)
    reasons = [json.loads(e[2])["reason"] for e in ref]
    assert reasons[-2:] == ["unknown", "malformed"], reasons
    assert json.loads(ref[-1][2])["peer"] == "127.0.0.1"
    text = w.logtext()
    assert re.search(r"enroll\.refused method=token terminal=T-03 peer=127\.0\.0\.1 "
                     r"reason=unknown", text), text
    assert guess.split("-")[2] not in text  # the secret part never reaches the log
    log("guessed token refused and logged")

    # -- a token made for one terminal does not enroll another
    tok3 = w.token("--terminal", "T-04")[0]
    st, body = w.enroll_post({"terminal": "T-05", "token": tok3, "csr": make_csr(w.tmp, "T-05")})
    assert st == 403, (st, body)
    st, body = w.enroll_post({"terminal": "T-04", "token": tok3, "csr": make_csr(w.tmp, "T-04")})
    assert st == 200, (st, body)
    ans = json.loads(body)
    assert "BEGIN CERTIFICATE" in ans["certificate"] and "BEGIN CERTIFICATE" in ans["ca"]

    # -- rate limit: after 10 refusals from one address, 429 even for a good token
    for i in range(10):
        st, _ = w.enroll_post({"terminal": "T-06", "token": "mge1-%s-%s" % (
            os.urandom(8).hex(), os.urandom(16).hex()), "csr": make_csr(w.tmp, "T-06")})
        if st == 429:
            break
        assert st == 403
    good = w.token()[0]
    st, _ = w.enroll_post({"terminal": "T-06", "token": good, "csr": make_csr(w.tmp, "T-06")})
    assert st == 429, st
    assert "enroll.rate_limited peer=127.0.0.1" in w.logtext()
    log("rate limit after repeated refusals")

    # -- expiry in /metrics and in the API, and in mynaguardctl status
    st, body = w.dash_get("/metrics")
    assert st == 200
    m = body.decode()
    exp_term = re.search(r'mynaguard_collector_terminal_cert_not_after_seconds\{terminal="T-01"\} '
                         r'(\d+)', m)
    assert exp_term, m
    assert re.search(r'mynaguard_collector_cert_not_after_seconds\{listener="ingest"\} \d+', m)
    na = int(exp_term.group(1))
    assert abs(na - (time.time() + 30 * 86400)) < 600, na
    st, body = w.dash_get("/v1/terminals/T-01")
    assert st == 200, body
    t = json.loads(body)
    assert t["cert_serial"] == serial and t["cert_not_after"].endswith("Z"), t
    out = run([A.ctl, "--policy", w.policy, "status", "--spool", w.spool], check=False)
    so = out.stdout.decode()
    assert re.search(r"certificate .*terminal\.pem: serial %s, valid until \S+ \(2\d days left\)"
                     % serial, so), so
    log("expiry shown in /metrics, the API and mynaguardctl status")

    # -- --renew-now (with --once): a renewal on demand, long before it is due; a new key and
    #    certificate, and the next events arrive with them. A second one within the collector's
    #    minute between renewals is refused, and --once then says so with exit 1, files kept.
    with open(os.path.join(tls, "terminal.key")) as f:
        key_before = f.read()
    r = w.upload_once(["--renew-now"])
    assert r.returncode == 0 and b"uplink.renewed" in r.stderr, r
    renewed, _ = cert_info(os.path.join(tls, "terminal.pem"))
    assert renewed != serial, (renewed, serial)
    with open(os.path.join(tls, "terminal.key")) as f:
        assert f.read() != key_before
    assert os.stat(os.path.join(tls, "terminal.key")).st_mode & 0o777 == 0o600
    n = w.fill(2)
    r = w.upload_once()
    assert r.returncode == 0, r
    assert len(w.events(TERMINAL)) == n
    st, body = w.dash_get("/v1/terminals/T-01")
    assert json.loads(body)["cert_serial"] == renewed, body
    before = open(os.path.join(tls, "terminal.pem")).read()
    r = w.upload_once(["--renew-now"])
    assert r.returncode == 1 and b"uplink.renew failed" in r.stderr, r
    assert open(os.path.join(tls, "terminal.pem")).read() == before
    log("--renew-now: renewed on demand (%s -> %s), a second one too soon refused" %
        (serial, renewed))


def scenario_renew(w):
    tls = w.tls
    # -- one token, eight enrollments at the same moment: exactly one certificate
    import threading
    race = w.token("--terminal", "T-09")[0]
    csrs = [make_csr(w.tmp, "T-09-%d" % i) for i in range(8)]
    results = []
    go = threading.Barrier(8)

    def attempt(i):
        go.wait()
        results.append(w.enroll_post({"terminal": "T-09", "token": race, "csr": csrs[i]})[0])
    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [403] * 7, results
    assert len(w.wait_events("mynaguard-collector", "enroll.issued", 1)) == 1
    log("one token, eight concurrent enrollments: one certificate")

    tok = w.token()[0]
    r = w.enroll_cmd(tok)
    assert r.returncode == 0, (r, w.logtext())
    old_serial, _ = cert_info(os.path.join(tls, "terminal.pem"))
    old_pem = os.path.join(w.tmp, "old.pem")
    old_key = os.path.join(w.tmp, "old.key")
    with open(os.path.join(tls, "terminal.pem")) as f, open(old_pem, "w") as g:
        g.write(f.read())
    with open(os.path.join(tls, "terminal.key")) as f, open(old_key, "w") as g:
        g.write(f.read())
    os.chmod(old_key, 0o600)
    # a 5-minute certificate (signer --lifetime 5m, backdated 1 min): at 20 % of its life
    # (plus at most 2.5 % stagger) the uplink renews, about 12-21 s after issue
    n = w.fill(3)
    ulog = open(os.path.join(w.tmp, "uplink.log"), "ab")
    up = subprocess.Popen([A.uplink, "--policy", w.policy, "--spool", w.spool, "--retry-min",
                           "100", "--retry-max", "1000", "--timeout", "10", "--renew-at", "20"],
                          stdout=ulog, stderr=ulog)
    try:
        sock = os.path.join(w.spool, "inbox", "claim.sock")
        deadline = time.time() + 10
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.1)
        deadline = time.time() + 60
        new_serial = old_serial
        step = 0
        while time.time() < deadline:
            new_serial, _ = cert_info(os.path.join(tls, "terminal.pem"))
            if new_serial != old_serial:
                break
            # the claim thread's connection (with the old certificate) is open and in use
            step += 1
            assert claim(w.spool, step) == b"n", open(os.path.join(w.tmp, "uplink.log")).read()
            time.sleep(0.5)
        assert new_serial != old_serial, open(os.path.join(w.tmp, "uplink.log")).read()
        st = os.stat(os.path.join(tls, "terminal.key"))
        assert st.st_mode & 0o777 == 0o600
        with open(os.path.join(tls, "terminal.key")) as f, open(old_key) as g:
            assert f.read() != g.read()  # a new key, made on the terminal
        log("renewed: %s -> %s" % (old_serial, new_serial))
        issued = w.wait_events("mynaguard-collector", "enroll.issued", 3)
        d = json.loads(issued[-1][2])
        assert d["method"] == "renewal" and d["previous_serial"] == old_serial and \
            d["serial"] == new_serial, d
        # the uplink uses the new certificate: the next events arrive with it
        time.sleep(1)
        n = w.fill(4)  # the last sequence number in the spool
        w.wait_events(TERMINAL, None, n)
        st, body = w.dash_get("/v1/terminals/T-01")
        assert json.loads(body)["cert_serial"] == new_serial, body
        st, body = w.dash_get("/metrics")
        assert 'terminal_cert_not_after_seconds{terminal="T-01"}' in body.decode()
        # -- the old certificate stays valid until it expires
        st, body = w.ingest_post(old_pem, old_key)
        assert st == 200, (st, body)
        # -- the claim thread asks with the new certificate too: with the old one revoked, the
        #    next claim is still answered by the collector (not on the old connection, 403)
        assert step > 0 and "uplink.renewed" in open(os.path.join(w.tmp, "uplink.log")).read()
        with open(os.path.join(w.ca_dir, "issued.tsv")) as f:
            (old_hex,) = [ln.split("\t")[0] for ln in f
                          if ln.split("\t")[0].lstrip("0").upper() == old_serial]
        run(w.ca + ["revoke", old_hex])
        try:
            st, body = w.ingest_post(old_pem, old_key)
            assert st == 403, (st, body)
        except (ssl.SSLError, ConnectionError, OSError):
            pass  # refused in the handshake
        assert claim(w.spool, step + 1) == b"n", open(os.path.join(w.tmp, "uplink.log")).read()
        log("claims answered before and after the renewal (old certificate revoked)")
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(20)
    ulogtext = open(os.path.join(w.tmp, "uplink.log")).read()
    assert "uplink.renewed" in ulogtext, ulogtext

    # -- renewal needs a valid client certificate: none, no renewal
    host, port = w.ingest.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=os.path.join(w.ca_dir, "ca.pem"))
    try:
        c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
        c.request("POST", "/v1/renew", body="{}")
        c.getresponse().read()
        raise AssertionError("renewal without a client certificate was answered")
    except (ssl.SSLError, ConnectionError, OSError):
        pass

    # -- revocation: mynaguard-ca revoke T-01 reaches the collector at once (no restart)
    run(w.ca + ["revoke", TERMINAL])
    for pem, key in ((old_pem, old_key),
                     (os.path.join(tls, "terminal.pem"), os.path.join(tls, "terminal.key"))):
        try:
            st, body = w.ingest_post(pem, key)
            assert st == 403, (st, body)
        except (ssl.SSLError, ConnectionError, OSError):
            pass
    w.fill(2)
    up = subprocess.Popen([A.uplink, "--policy", w.policy, "--spool", w.spool, "--once",
                           "--retry-min", "100", "--retry-max", "500", "--timeout", "5"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = up.communicate(timeout=4)
    except subprocess.TimeoutExpired:
        up.send_signal(signal.SIGTERM)
        _, err = up.communicate(timeout=20)
    assert len(w.events(TERMINAL)) == n, (len(w.events(TERMINAL)), n)
    assert b"uplink.unreachable" in err, err
    st, body = w.dash_get("/metrics")
    assert re.search(r"mynaguard_collector_revoked_refused_total [1-9]", body.decode())
    log("revoked certificates refused at once")


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["enroll", "renew"])
    for opt in ("uplink", "collector", "signer", "token-tool", "ctl", "spool-tool",
                "ca-script"):
        ap.add_argument("--" + opt, required=True)
    A = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mg-enroll-")
    w = World(tmp, lifetime="5m" if A.scenario == "renew" else "30d",
              fleet=A.scenario == "renew")
    ok = False
    try:
        {"enroll": scenario_enroll, "renew": scenario_renew}[A.scenario](w)
        ok = True
    finally:
        w.stop()
        if not ok:
            sys.stderr.write(w.logtext()[-6000:])
        else:
            subprocess.run(["rm", "-rf", tmp])
    log("PASS")


if __name__ == "__main__":
    main()
