# SPDX-License-Identifier: MIT
# Test helpers for mynaguard-collector: a throwaway PKI made with the openssl CLI, a config in a
# temp dir, the real binary started on 127.0.0.1 with port 0 (ports read from its READY line),
# and small HTTPS clients (stdlib ssl + http.client).
import http.client
import json
import os
import re
import select
import shutil
import signal
import sqlite3
import ssl
import subprocess
import tempfile
import time

import pglib

# MYNAGUARD_TEST_STORE=postgresql: every Collector stores into a PostgreSQL server of the test's
# own (pglib.py; one server per test process, one database per Collector directory).
STORE = os.environ.get("MYNAGUARD_TEST_STORE", "sqlite")
_pg = None


def pg_server():
    global _pg
    if _pg is None:
        import atexit
        _pg = pglib.PostgreSQL(dbname="postgres").start()
        atexit.register(_pg.stop)
    return _pg

TOKEN = "test-token-0123456789abcdef"


def run(*args, **kw):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def wait_ready(proc, what, timeout=20):
    """The key=value pairs of a daemon's READY line on its stdout (collector, signer)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.5)
        if r:
            line = proc.stdout.readline().decode()
            if line.startswith("READY"):
                return dict(kv.split("=", 1) for kv in line.split()[1:])
        if proc.poll() is not None:
            break
    raise RuntimeError("%s did not start" % what)


def make_csr(tmp, cn):
    """A P-256 key and certificate request for CN=cn in tmp; the request's PEM."""
    key, csr = os.path.join(tmp, cn + ".k"), os.path.join(tmp, cn + ".csr")
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    with open(csr) as f:
        return f.read()


def enroll_post(addr, cafile, obj):
    """POST /v1/enroll to the enrollment listener at HOST:PORT: (status, body)."""
    host, port = addr.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=cafile)
    c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
    c.request("POST", "/v1/enroll", body=json.dumps(obj),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def enroll_config(tmp, extra=""):
    """collector.conf text for the enrollment tests: the CA that installer/mynaguard-ca made in
    tmp/ca, its server certificate in tmp/srv, tmp/dash.token, tmp/signer.sock; ports 0."""
    return """[ingest]
listen = 127.0.0.1:0
certificate = {t}/srv/server.pem
key = {t}/srv/server.key
client_ca = {t}/ca/ca.pem
revoked_serials = {t}/revoked.txt
workers = 1
[dashboard]
listen = 127.0.0.1:0
token_file = {t}/dash.token
[store]
database = {t}/collector.db
[enroll]
listen = 127.0.0.1:0
signer = {t}/signer.sock
""".format(t=tmp) + extra


def stop_all(*procs):
    """SIGTERM, then SIGKILL after 20 s, for each process still running."""
    for p in procs:
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


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

    def issue(self, ca, name, cn, ext=None, days=397):
        self.serial += 1
        key, csr, pem = self.p(name + ".key"), self.p(name + ".csr"), self.p(name + ".pem")
        run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        extfile = self.p(name + ".ext")
        with open(extfile, "w") as f:
            f.write((ext or "extendedKeyUsage=clientAuth") + "\n")
        run("openssl", "x509", "-req", "-in", csr, "-CA", self.p(ca + ".pem"), "-CAkey",
            self.p(ca + ".key"), "-set_serial", str(self.serial), "-out", pem, "-days", str(days),
            "-extfile", extfile)
        return (pem, key, "%X" % self.serial)

    def terminal(self, name, ca="terminal-ca", cn=None, days=397):
        return self.issue(ca, name, cn or name, days=days)


class Collector:
    def __init__(self, tmp, pki, extra="", workers=2, env=None, store=None):
        self.tmp, self.pki = tmp, pki
        self.db = os.path.join(tmp, "collector.db")
        self.store = store or STORE
        state_conf = ""
        if self.store == "postgresql":
            self.pg = pg_server()
            self.dbname = "mg_" + "".join(ch if ch.isalnum() else "_"
                                          for ch in os.path.basename(tmp.rstrip("/"))).lower()
            if not self.pg.psql("SELECT 1 FROM pg_database WHERE datname = '%s'" % self.dbname):
                self.pg.psql("CREATE DATABASE " + self.dbname)
            self.url = "postgresql:///%s?host=%s&user=%s" % (self.dbname, self.pg.sock,
                                                              self.pg.role)
            store_conf = "backend = postgresql\nurl = %s\n" % self.url
            # the collector's own state files default to its state directory on PostgreSQL
            # (/var/lib/mynaguard-collector, docs/postgresql.md): the test's directory instead
            if not re.search(r"^state\s*=", extra, re.M):
                state_conf += "\n[alerts]\nstate = %s\n" % os.path.join(tmp, "alerts.db")
            if not re.search(r"^\[enroll\][^[]*^database\s*=", extra, re.M):
                state_conf += "\n[enroll]\ndatabase = %s\n" % os.path.join(tmp, "enroll.db")
            # the accounts' at-rest key: where a SQLite store would keep it (beside the file)
            if not re.search(r"^\[accounts\][^[]*^secret_key\s*=", extra, re.M):
                state_conf += "\n[accounts]\nsecret_key = %s\n" % (self.db + ".accounts-key")
        elif self.store == "sqlite":
            store_conf = "database = %s\n" % self.db
        else:
            raise ValueError("store must be sqlite or postgresql")
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
{extra}{state_conf}
[dashboard]
listen = 127.0.0.1:0
token_file = {tok}

[store]
{store_conf}""")
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

    def rows(self, sql, args=()):
        """Runs sql on the collector's store (either backend); ? placeholders; rows as tuples
        of ints where they look like ints, else texts (None for NULL on SQLite only)."""
        if self.store == "postgresql":
            parts = sql.split("?")
            assert len(parts) == len(args) + 1, sql
            q = parts[0]
            for a, rest in zip(args, parts[1:]):
                q += (str(int(a)) if isinstance(a, int) else
                      "'" + str(a).replace("'", "''") + "'") + rest
            p = self.pg.run("psql", "-h", self.pg.sock, "-U", self.pg.role, "-d", self.dbname,
                            "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-c", q)
            out = []
            for line in p.stdout.splitlines():
                out.append(tuple(int(v) if v.lstrip("-").isdigit() else v
                                 for v in line.split("\t")))
            return out
        con = sqlite3.connect(self.db, timeout=30)
        try:
            return [tuple(r) for r in con.execute(sql, args).fetchall()]
        finally:
            con.close()

    def count(self, sql="SELECT count(*) FROM events", args=()):
        r = self.rows(sql, args)
        if not r:
            return None
        v = r[0][0]
        return None if v == "" and self.store == "postgresql" else v


def ts(ms):
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % (ms % 1000)


# The collector's history counts days in Japan (UTC+9, collector/store.h STORE_DAY_OFFSET_MS).
JST_MS = 9 * 3600 * 1000


def jst_day(ms):
    """days since the epoch, in Japan, of the time ms"""
    return (ms + JST_MS) // 86400000


def ymd(day):
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))


def at_jst(day, hour, minute=0):
    """ms of HH:MM in Japan on day (jst_day)"""
    return day * 86400000 - JST_MS + hour * 3600000 + minute * 60000


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
