#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Ambiguous HTTP framing (RFC 9112 section 6.3) on both listeners, sent over raw TLS sockets: two
# Content-Length headers, "Content-Length: +N", "Transfer-Encoding: xchunked", a space before
# the colon, Transfer-Encoding beside Content-Length, a body on HEAD. Each time the body holds a
# second, valid request. The collector must answer 400 once, close the connection, answer
# nothing for the hidden request and store nothing from it. Wrong methods get 405 with JSON.
import json
import os
import re
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, TOKEN, Collector, TestDir, batch  # noqa: E402


def exchange(c, addr, data, cert=None, timeout=8):
    """Sends data on a fresh TLS connection; returns (everything received, closed by peer)."""
    raw = socket.create_connection(addr, timeout=timeout)
    s = c.client_ctx(cert).wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(data)
    got = b""
    closed = False
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            got += chunk
    except (socket.timeout, TimeoutError):
        pass
    except (ssl.SSLError, ConnectionResetError):
        closed = True
    s.close()
    return got, closed


def statuses(got):
    return [int(s) for s in re.findall(rb"HTTP/1\.[01] (\d{3}) ", got)]


def hidden_ingest(body):
    return (b"POST /v1/events HTTP/1.1\r\nHost: c\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


def hidden_dashboard():
    return (b"GET /v1/events HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer " + TOKEN.encode() +
            b"\r\n\r\n")


def smuggling_heads(method, path, hidden, extra=b""):
    """(name, request bytes) whose body is `hidden` under one reading and not under another."""
    n = len(hidden)
    start = b"%s %s HTTP/1.1\r\nHost: c\r\n%s" % (method, path, extra)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (n, hidden)
    return [
        ("two Content-Length", start + b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n%s" % (n, hidden)),
        ("Content-Length +N", start + b"Content-Length: +%d\r\n\r\n%s" % (n, hidden)),
        ("Transfer-Encoding xchunked", start + b"Transfer-Encoding: xchunked\r\n\r\n" + hidden),
        ("space before colon", start + b"Content-Length : %d\r\n\r\n%s" % (n, hidden)),
        ("Transfer-Encoding and Content-Length",
         start + b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n%s" % (len(chunked), chunked)),
        ("two Transfer-Encoding", start + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" +
         chunked),
    ]


def main():
    with TestDir("framing") as d:
        pki = PKI(d)
        t1 = pki.terminal("term-001")
        c = Collector(d, pki)
        c.start()
        try:
            # the harness itself: a plain request and two pipelined ones are answered
            ok = hidden_ingest(json.dumps(batch("term-001", [1])).encode())
            got, _ = exchange(c, c.ingest, ok + ok, cert=t1, timeout=3)
            assert statuses(got) == [200, 200], got
            assert c.count() == 1

            # ingest: the hidden batch (seq 2..3) must never be stored
            hidden = hidden_ingest(json.dumps(batch("term-001", [2, 3])).encode())
            for name, req in smuggling_heads(b"POST", b"/v1/events", hidden,
                                             b"Content-Type: application/json\r\n"):
                got, closed = exchange(c, c.ingest, req, cert=t1)
                assert statuses(got) == [400], (name, got)
                assert closed, (name, "connection left open")
                # ours is JSON; libevent refuses some of them itself (its HTML page)
                body = got.split(b"\r\n\r\n", 1)[1]
                assert body.startswith(b"<HTML>") or json.loads(body)["error"], (name, got)
                assert c.count() == 1, (name, "the hidden batch was stored")

            # dashboard: the hidden GET must not be answered
            for name, req in smuggling_heads(b"GET", b"/v1/terminals", hidden_dashboard(),
                                             b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"):
                got, closed = exchange(c, c.dashboard, req)
                assert statuses(got) == [400], (name, got)
                assert closed, (name, "connection left open")
            # HEAD reads no body in libevent: one announced there would be the next request
            req = (b"HEAD / HTTP/1.1\r\nHost: c\r\nContent-Length: %d\r\n\r\n" % len(hidden_dashboard()) +
                   hidden_dashboard())
            got, closed = exchange(c, c.dashboard, req)
            assert statuses(got) == [400] and closed, got
            # a plain HEAD is still fine, and keeps the connection
            got, closed = exchange(c, c.dashboard, b"HEAD / HTTP/1.1\r\nHost: c\r\n\r\n", timeout=2)
            assert statuses(got) == [200] and not closed, got

            # methods: 405 with Allow and a JSON reason (libevent answered 501 with HTML)
            for method in (b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"GET"):
                got, _ = exchange(c, c.ingest, b"%s /v1/events HTTP/1.1\r\nHost: c\r\nContent-Length: 0\r\n"
                                  b"Connection: close\r\n\r\n" % method, cert=t1)
                assert statuses(got) == [405], (method, got)
                head, body = got.split(b"\r\n\r\n", 1)
                assert b"\r\nAllow: POST" in head and json.loads(body)["error"], (method, got)
            for method in (b"PUT", b"DELETE", b"POST", b"OPTIONS", b"TRACE"):
                got, _ = exchange(c, c.dashboard, b"%s /v1/terminals HTTP/1.1\r\nHost: c\r\n"
                                  b"Content-Length: 0\r\nConnection: close\r\n\r\n" % method)
                assert statuses(got) == [405], (method, got)
                head, body = got.split(b"\r\n\r\n", 1)
                assert b"\r\nAllow: GET, HEAD" in head and json.loads(body)["error"], (method, got)

            # a method nobody defined: 501 (RFC 9110 section 15.6.2), from libevent
            got, closed = exchange(c, c.dashboard, b"FOO / HTTP/1.1\r\nHost: c\r\n\r\n")
            assert statuses(got) == [501] and closed, got

            assert c.count() == 1
            assert c.alive()
        finally:
            rc = c.stop()
        assert rc == 0, (rc, c.logtext())
    print("ok")


if __name__ == "__main__":
    main()
