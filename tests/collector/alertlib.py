# SPDX-License-Identifier: MIT
# Test peers for the collector's alerts: a small SMTP sink (socketserver; the stdlib smtpd is
# gone since Python 3.12) and a webhook receiver (http.server), both on 127.0.0.1, both keeping
# what they received. Either can be stopped and started again on the same port (a relay down).
# The sink can offer STARTTLS (with the test's own server certificate) and require AUTH PLAIN or
# LOGIN; it then keeps each AUTH it saw, with the credentials and whether TLS was on.
import base64
import email
import email.policy
import http.server
import json
import re
import socketserver
import threading
import time


def mail_keys(sink):
    """(kind, terminal) of each per-condition mail, from the footer line."""
    out = []
    for m in sink.snapshot():
        k = re.search(r"mynaguard-collector: (\w+):([\w.-]+)", m["body"])
        out.append((k.group(1), k.group(2)) if k else ("?", m["subject"]))
    return out


def wait(pred, timeout=30, what="condition"):
    """pred's first true value within timeout seconds, polled every 0.2 s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


class _SMTPHandler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def readline(self):
        return self.rfile.readline(4096).decode(errors="replace").rstrip("\r\n")

    def auth(self, cmd):
        """AUTH PLAIN [ir] or AUTH LOGIN; True when the credentials are the sink's."""
        sink = self.server.sink
        args = cmd.split(" ")[1:]
        mech = args[0].upper() if args else ""
        try:
            if mech == "PLAIN":
                if len(args) > 1:
                    resp = args[1]
                else:
                    self.reply("334 ")
                    resp = self.readline()
                _, user, password = base64.b64decode(resp).decode().split("\0")
            elif mech == "LOGIN":
                self.reply("334 VXNlcm5hbWU6")
                user = base64.b64decode(self.readline()).decode()
                self.reply("334 UGFzc3dvcmQ6")
                password = base64.b64decode(self.readline()).decode()
            else:
                self.reply("504 5.5.4 mechanism not supported")
                return False
        except (ValueError, UnicodeDecodeError):
            self.reply("501 5.5.2 cannot decode")
            return False
        ok = (user, password) == sink.credentials
        with sink.lock:
            sink.auths.append({"mech": mech, "user": user, "password": password,
                               "tls": self.tls, "ok": ok})
        self.reply("235 2.7.0 accepted" if ok else "535 5.7.8 credentials invalid")
        return ok

    def starttls(self):
        self.request = self.server.sink.tls_context.wrap_socket(self.request, server_side=True)
        self.rfile = self.request.makefile("rb")
        self.wfile = self.request.makefile("wb")
        self.tls = True

    def handle(self):
        sink = self.server.sink
        self.tls, authed = False, False
        if sink.implicit_tls:  # smtps://: TLS before the greeting
            self.starttls()
        self.reply("220 sink.test ESMTP")
        mail_from, rcpt = None, []
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.decode(errors="replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-sink.test")
                if sink.tls_context and not self.tls:
                    self.reply("250-STARTTLS")
                if sink.credentials and (self.tls or not sink.tls_context):
                    self.reply("250-AUTH PLAIN LOGIN")
                self.reply("250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 sink.test")
            elif verb == "STARTTLS" and sink.tls_context and not self.tls:
                self.reply("220 2.0.0 go ahead")
                self.starttls()
                authed = False
            elif verb == "AUTH" and sink.credentials and not authed:
                authed = self.auth(cmd)
            elif verb == "MAIL" and sink.credentials and not authed:
                self.reply("530 5.7.0 authentication required")
            elif verb == "MAIL":
                mail_from, rcpt = cmd, []
                self.reply("250 ok")
            elif verb == "RCPT":
                rcpt.append(cmd)
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go ahead")
                data = []
                while True:
                    l = self.rfile.readline(65536)
                    if not l or l in (b".\r\n", b".\n"):
                        break
                    data.append(l[1:] if l.startswith(b"..") else l)
                msg = email.message_from_bytes(b"".join(data), policy=email.policy.default)
                with sink.lock:
                    sink.messages.append({"from": mail_from, "rcpt": list(rcpt), "msg": msg,
                                          "subject": str(msg["Subject"]),
                                          "body": msg.get_content()})
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # STARTTLS among them unless the sink was given a certificate
                self.reply("502 not implemented")


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SMTPSink:
    """cert: (pem, key) to offer STARTTLS with, or to speak TLS from the start with implicit_tls
    (smtps://); credentials: (user, password) to require AUTH."""

    def __init__(self, cert=None, credentials=None, implicit_tls=False):
        self.lock = threading.Lock()
        self.messages = []
        self.auths = []
        self.port = 0
        self.server = None
        self.credentials = credentials
        self.implicit_tls = implicit_tls
        self.tls_context = None
        if cert:
            import ssl
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(cert[0], cert[1])

    def start(self):
        self.server = _Server(("127.0.0.1", self.port), _SMTPHandler)
        self.server.sink = self
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def auth_snapshot(self):
        with self.lock:
            return list(self.auths)


class _HookHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        hook = self.server.hook
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with hook.lock:
            status = hook.status
            if status < 300:  # a refused post is not one received
                hook.posts.append({"type": self.headers.get("Content-Type"),
                                   "json": json.loads(body)})
            else:
                hook.refused += 1
        self.send_response(status)
        self.end_headers()

    def log_message(self, *a):
        pass


class WebhookReceiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.posts = []
        self.status = 204  # what it answers; a test sets 500 for a receiver that fails
        self.refused = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HookHandler)
        self.server.hook = self
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self):
        with self.lock:
            return list(self.posts)
