#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Test stand-in for mynaguard-collector's ingest (DESIGN.md "Events and the wire format"):
# HTTPS on 127.0.0.1 with a required client certificate, POST /v1/events, stores each
# (terminal, seq) once in a JSON-lines file (fsync before answering), answers
# {"acked_through": highest seq stored for the terminal}. Used by tests/uplink and the benchmark.
import argparse
import http.server
import json
import os
import socket
import ssl
import sys
import time

MAX_BODY = 4 * 1024 * 1024


class Store:
    def __init__(self, path):
        self.path = path
        self.seen = set()
        self.high = {}
        self.duplicates = 0
        good = 0
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            # a line torn by kill -9 is dropped: it was never acknowledged
            for line in data.split(b"\n"):
                if not line:
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    break
                self._note(ev)
                good += len(line) + 1
            if good != len(data):
                with open(path, "r+b") as f:
                    f.truncate(good)
        self.f = open(path, "ab")

    def _note(self, ev):
        key = (ev["terminal"], ev["seq"])
        self.seen.add(key)
        if ev["seq"] > self.high.get(ev["terminal"], 0):
            self.high[ev["terminal"]] = ev["seq"]

    def add(self, terminal, events):
        out = []
        for ev in events:
            key = (terminal, ev["seq"])
            if key in self.seen:
                self.duplicates += 1
                continue
            out.append(json.dumps(ev, separators=(",", ":")).encode() + b"\n")
            self._note(ev)
        if out:
            self.f.write(b"".join(out))
            self.f.flush()
            os.fsync(self.f.fileno())
        return self.high.get(terminal, 0)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60

    def setup(self):
        super().setup()
        # one answer is headers + body in two writes: without this, Nagle and delayed ACKs
        # add 40 ms to every request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def note(self, status, n):
        srv = self.server
        if srv.reqlog:
            with open(srv.reqlog, "a") as f:
                f.write("%.3f %d %d %s\n" % (time.time(), status, n, self.connection.version()))

    def do_POST(self):
        srv = self.server
        if self.path != "/v1/events":
            self.note(404, 0)
            return self.reply(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length", "0"))
        if length > MAX_BODY:
            self.note(413, 0)
            self.close_connection = True
            return self.reply(413, {"error": "too large"})
        body = self.rfile.read(length)
        if srv.throttle > 0:
            srv.throttle -= 1
            self.note(429, 0)
            return self.reply(429, {"error": "overloaded"},
                              [("Retry-After", str(srv.retry_after))])
        try:
            batch = json.loads(body)
            terminal = batch["terminal"]
            events = batch["events"]
            assert batch["v"] == 1 and isinstance(events, list)
            for ev in events:
                assert ev["terminal"] == terminal and isinstance(ev["seq"], int)
        except (ValueError, KeyError, AssertionError, TypeError) as e:
            self.note(400, 0)
            return self.reply(400, {"error": "malformed: %s" % e})
        if srv.max_events and len(events) > srv.max_events:
            self.note(413, len(events))
            return self.reply(413, {"error": "too many events"})
        cert = self.connection.getpeercert()
        cn = None
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
        if cn != terminal:
            self.note(403, len(events))
            return self.reply(403, {"error": srv.forbidden_reason})
        acked = srv.store.add(terminal, events)
        self.note(200, len(events))
        self.reply(200, {"acked_through": acked})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--reqlog")
    ap.add_argument("--throttle", type=int, default=0, help="answer 429 to the first N requests")
    ap.add_argument("--retry-after", type=int, default=2)
    ap.add_argument("--forbidden-reason", default="terminal does not match the certificate",
                    help="the error text of 403 answers (tests of its escaping)")
    ap.add_argument("--max-events", type=int, default=0, help="413 above this many events")
    a = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    ctx.load_verify_locations(a.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED

    srv = http.server.HTTPServer(("127.0.0.1", a.port), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.store = Store(a.store)
    srv.reqlog = a.reqlog
    srv.throttle = a.throttle
    srv.retry_after = a.retry_after
    srv.forbidden_reason = a.forbidden_reason
    srv.max_events = a.max_events
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    sys.stderr.write("fake-collector listening on 127.0.0.1:%d\n" % port)
    sys.stderr.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
