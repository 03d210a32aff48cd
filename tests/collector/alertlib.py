# SPDX-License-Identifier: MIT
# Test peers for the collector's alerts: a small SMTP sink (socketserver; the stdlib smtpd is
# gone since Python 3.12) and a webhook receiver (http.server), both on 127.0.0.1, both keeping
# what they received. Either can be stopped and started again on the same port (a relay down).
import email
import email.policy
import http.server
import json
import socketserver
import threading


class _SMTPHandler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        sink = self.server.sink
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
                self.reply("250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 sink.test")
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
            else:  # STARTTLS among them: this relay offers none
                self.reply("502 not implemented")


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SMTPSink:
    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []
        self.port = 0
        self.server = None

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
