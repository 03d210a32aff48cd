# SPDX-License-Identifier: MIT
# Test helpers for mynaguard-collector: a throwaway PKI made with the openssl CLI, a config in a
# temp dir, the real binary started on 127.0.0.1 with port 0 (ports read from its READY line),
# and small HTTPS clients (stdlib ssl + http.client).
import http.client
import json
import os
import select
import shutil
import signal
import sqlite3
import ssl
import subprocess
import tempfile
import time

TOKEN = "test-token-0123456789abcdef"


def run(*args, **kw):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


class PKI:
    """Two CAs for terminals (the trusted one and a stranger), one for the server."""

    def __init__(self, d):
        self.d = d
        self.serial = 0x1000
        for ca in ("server-ca", "terminal-ca", "other-ca"):
            run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", self.p(ca + ".key"), "-out", self.p(ca + ".pem"), "-days", "30",
                "-subj", "/CN=" + ca)
        self.server = self.issue("server-ca", "server", "127.0.0.1",
                                 "subjectAltName=IP:127.0.0.1,DNS:localhost")

    def p(self, name):
        return os.path.join(self.d, name)

    def issue(self, ca, name, cn, ext=None):
        self.serial += 1
        key, csr, pem = self.p(name + ".key"), self.p(name + ".csr"), self.p(name + ".pem")
        run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        extfile = self.p(name + ".ext")
        with open(extfile, "w") as f:
            f.write((ext or "extendedKeyUsage=clientAuth") + "\n")
        run("openssl", "x509", "-req", "-in", csr, "-CA", self.p(ca + ".pem"), "-CAkey",
            self.p(ca + ".key"), "-set_serial", str(self.serial), "-out", pem, "-days", "30",
            "-extfile", extfile)
        return (pem, key, "%X" % self.serial)

    def terminal(self, name, ca="terminal-ca", cn=None):
        return self.issue(ca, name, cn or name)


class Collector:
    def __init__(self, tmp, pki, extra="", workers=2, env=None):
        self.tmp, self.pki = tmp, pki
        self.db = os.path.join(tmp, "collector.db")
        self.revoked = os.path.join(tmp, "revoked.txt")
        if not os.path.exists(self.revoked):
            with open(self.revoked, "w") as f:
                f.write("# revoked serials\n")
        tok = os.path.join(tmp, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(tok, 0o600)
        self.conf = os.path.join(tmp, "collector.conf")
        with open(self.conf, "w") as f:
            f.write(f"""[ingest]
listen = 127.0.0.1:0
certificate = {pki.server[0]}
key = {pki.server[1]}
client_ca = {pki.p('terminal-ca.pem')}
revoked_serials = {self.revoked}
workers = {workers}
{extra}
[dashboard]
listen = 127.0.0.1:0
token_file = {tok}

[store]
database = {self.db}
""")
        self.env = env
        self.proc = None

    def start(self, timeout=20):
        exe = os.environ["COLLECTOR"]
        self.log = open(os.path.join(self.tmp, "collector.log"), "ab")
        self.proc = subprocess.Popen([exe, "--config", self.conf], stdout=subprocess.PIPE,
                                     stderr=self.log, env=self.env)
        deadline = time.time() + timeout
        line = b""
        while time.time() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        if not line.startswith(b"READY "):
            raise RuntimeError("collector did not start: %r; log: %s" % (line, self.logtext()))
        parts = dict(kv.split("=", 1) for kv in line.decode().split()[1:])
        host, port = parts["ingest"].rsplit(":", 1)
        self.ingest = (host, int(port))
        host, port = parts["dashboard"].rsplit(":", 1)
        self.dashboard = (host, int(port))
        return self

    def logtext(self):
        try:
            with open(os.path.join(self.tmp, "collector.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        if self.proc:
            self.proc.stdout.close()
            self.log.close()
        self.proc = None
        return rc

    # ---- clients ----
    def client_ctx(self, cert=None):
        ctx = ssl.create_default_context(cafile=self.pki.p("server-ca.pem"))
        if cert:
            ctx.load_cert_chain(cert[0], cert[1])
        return ctx

    def ingest_conn(self, cert=None, timeout=10):
        return http.client.HTTPSConnection(self.ingest[0], self.ingest[1], timeout=timeout,
                                           context=self.client_ctx(cert))

    def post(self, cert, body, conn=None, headers=None):
        """Returns (status, parsed JSON or raw bytes, headers)."""
        own = conn is None
        conn = conn or self.ingest_conn(cert)
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        try:
            conn.request("POST", "/v1/events", body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = data
            return resp.status, parsed, dict(resp.getheaders())
        finally:
            if own:
                conn.close()

    def get(self, path, token=TOKEN, raw=False):
        conn = http.client.HTTPSConnection(self.dashboard[0], self.dashboard[1], timeout=30,
                                           context=self.client_ctx())
        h = {}
        if token is not None:
            h["Authorization"] = "Bearer " + token
        conn.request("GET", path, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if raw:
            return resp.status, data, dict(resp.getheaders())
        try:
            return resp.status, json.loads(data), dict(resp.getheaders())
        except ValueError:
            return resp.status, data, dict(resp.getheaders())

    def count(self, sql="SELECT count(*) FROM events", args=()):
        con = sqlite3.connect(self.db, timeout=30)
        try:
            return con.execute(sql, args).fetchone()[0]
        finally:
            con.close()


def ts(ms):
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % (ms % 1000)


def event(terminal, seq, kind="usb.blocked", data=None, clause=None, ts_ms=None):
    return {"v": 1, "terminal": terminal, "seq": seq,
            "ts": ts(ts_ms if ts_ms is not None else int(time.time() * 1000)),
            "kind": kind, "clause": clause if clause is not None else ["2-6-3-a"],
            "data": data if data is not None else {"vendor": "0781", "product": "5567", "class": "08"}}


def batch(terminal, seqs, **kw):
    return {"v": 1, "terminal": terminal, "events": [event(terminal, s, **kw) for s in seqs]}


def compliance(terminal, seq, failing=(), policy_hash="sha256:" + "ab" * 32, interval_s=None,
               ts_ms=None):
    checks = []
    for cid, clause in (("usb.default_deny", ["2-6-3-a", "2-3-2"]),
                        ("mfa.pam_stack", ["2-6-3-a", "2-6-6"]),
                        ("time.synchronized", ["2-6-6"])):
        st = "fail" if cid in failing else "pass"
        checks.append({"id": cid, "clause": clause, "status": st,
                       "detail": "ok" if st == "pass" else "not as required"})
    data = {"policy_hash": policy_hash, "checks": checks}
    if interval_s:
        data["interval_s"] = interval_s
    return event(terminal, seq, kind="compliance", data=data, clause=["2-6-7"], ts_ms=ts_ms)


class TestDir:
    def __init__(self, name):
        base = os.environ.get("MESON_BUILD_ROOT") or tempfile.gettempdir()
        self.path = tempfile.mkdtemp(prefix="mg-" + name + "-", dir=None)

    def __enter__(self):
        return self.path

    def __exit__(self, *a):
        shutil.rmtree(self.path, ignore_errors=True)
