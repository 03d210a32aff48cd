#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# SMTP AUTH for alert mail (docs/alerts.md, "Channels"): the relay of the test (alertlib's sink)
# offers STARTTLS with a certificate of the test's own CA and requires AUTH. The collector
# authenticates only after STARTTLS, with the user of [alerts] smtp_user and the password of
# [alerts] smtp_password_file; a wrong password fails the mail, is logged without the password
# and retried, and the corrected file is read at the next try (no restart). Settings that would
# send the password in clear text, or a password file others may read, fail --check. An
# smtps:// relay (TLS from the start) gets the login too.
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alertlib import SMTPSink, wait  # noqa: E402
from collectorlib import PKI, Collector, TestDir, compliance  # noqa: E402

USER, PASSWORD, WRONG = "mynaguard-alerts", "s3cret relay pass", "wrong-pass-1234"


def write_password(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)


def conf(sink, pki, pwfile, extra="starttls = yes\n"):
    return ("\n[terminals]\nreport_interval = 1h\n\n[alerts]\ninterval = 1s\ntimeout = 3s\n"
            "smtp = smtp://127.0.0.1:%d\nfrom = mynaguard@city.test\nto = it-admin@city.test\n"
            "smtp_ca = %s\nsmtp_user = %s\nsmtp_password_file = %s\n%s"
            % (sink.port, pki.p("server-ca.pem"), USER, pwfile, extra))


def post_failing(c, pki, name):
    st, body, _ = c.post(pki.terminal(name), {"v": 1, "terminal": name, "events": [
        compliance(name, 1, failing=["usb.default_deny"], interval_s=3600)]})
    assert st == 200, (st, body)


def auth_flow():
    with TestDir("alert-auth") as d:
        pki = PKI(d)
        sink = SMTPSink(cert=pki.server[:2], credentials=(USER, PASSWORD)).start()
        pwfile = os.path.join(d, "smtp-password")
        write_password(pwfile, WRONG)
        c = Collector(d, pki, extra=conf(sink, pki, pwfile)).start()
        try:
            post_failing(c, pki, "term-nc")
            # the wrong password: the relay refuses it, the mail fails, is logged and retried
            line = wait(lambda: re.search(r"alert mail failed kind=noncompliant terminal=term-nc "
                                          r"relay=smtp://127\.0\.0\.1:\d+: .*; retrying in "
                                          r"(\d+) s", c.logtext()), what="the refused AUTH")
            assert int(line.group(1)) >= 1, line.group(0)
            auths = sink.auth_snapshot()
            assert auths and auths[0]["user"] == USER and auths[0]["password"] == WRONG, auths
            assert all(a["tls"] for a in auths), "AUTH before STARTTLS: %r" % auths
            assert not any(a["ok"] for a in auths) and sink.snapshot() == [], auths
            st, body, _ = c.get("/v1/alerts")
            assert body["alerts"][0]["mail"] == "pending", body
            # the right password in the file: read at the next try, one mail, no restart
            write_password(pwfile, PASSWORD)
            wait(lambda: sink.snapshot(), timeout=40, what="the mail after the fix")
            time.sleep(3)  # three more rounds: not sent twice
            msgs = sink.snapshot()
            assert len(msgs) == 1 and "term-nc" in msgs[0]["body"], msgs
            ok = [a for a in sink.auth_snapshot() if a["ok"]]
            assert len(ok) == 1 and ok[0]["tls"] and ok[0]["user"] == USER, sink.auth_snapshot()
            assert ok[0]["password"] == PASSWORD, ok
            st, body, _ = c.get("/v1/alerts")
            assert body["alerts"][0]["mail"] == "sent", body
            log = c.logtext()
            assert "alert mailed kind=noncompliant terminal=term-nc" in log, log
            assert PASSWORD not in log and WRONG not in log, "a password reached the log"
        finally:
            c.stop()
        # a relay that offers no STARTTLS gets no password at all
        plain = SMTPSink(credentials=(USER, PASSWORD)).start()
        c = Collector(d, pki, extra=conf(plain, pki, pwfile)).start()
        try:
            # term-nc's mail went out before: a new condition on another terminal
            post_failing(c, pki, "term-nc2")
            wait(lambda: "alert mail failed kind=noncompliant terminal=term-nc2" in c.logtext(),
                 what="the refused clear-text relay")
            time.sleep(2)
            assert plain.auth_snapshot() == [] and plain.snapshot() == [], plain.auth_snapshot()
            assert PASSWORD not in c.logtext()
        finally:
            c.stop()
            plain.stop()
            sink.stop()
        # smtps://: TLS from the start, AUTH inside it (starttls not needed)
        tls = SMTPSink(cert=pki.server[:2], credentials=(USER, PASSWORD), implicit_tls=True).start()
        c = Collector(d, pki, extra=conf(tls, pki, pwfile, extra="").replace("smtp://", "smtps://"))
        c.start()
        try:
            post_failing(c, pki, "term-nc3")
            # term-nc2's mail, pending since the clear-text relay, goes now too: one login each
            wait(lambda: len(tls.snapshot()) == 2, what="the mails over smtps://")
            auths = tls.auth_snapshot()
            assert len(auths) == 2 and all(a["ok"] and a["tls"] for a in auths), auths
            bodies = " ".join(m["body"] for m in tls.snapshot())
            assert "term-nc2" in bodies and "term-nc3" in bodies, bodies
        finally:
            c.stop()
            tls.stop()


def check(c):
    return subprocess.run([os.environ["COLLECTOR"], "--config", c.conf, "--check"],
                          capture_output=True, text=True, timeout=30)


def config_errors():
    with TestDir("alert-auth-conf") as d:
        pki = PKI(d)
        sink = SMTPSink()  # never started: --check sends nothing
        pwfile = os.path.join(d, "smtp-password")
        write_password(pwfile, PASSWORD)
        c = Collector(d, pki, extra=conf(sink, pki, pwfile))
        p = check(c)
        assert p.returncode == 0, p.stderr
        # smtp:// without starttls would send the password in clear text
        p = check(Collector(d, pki, extra=conf(sink, pki, pwfile, extra="")))
        assert p.returncode != 0 and "the password is sent only over TLS" in p.stderr, p.stderr
        no_file = conf(sink, pki, pwfile).replace("smtp_password_file = %s\n" % pwfile, "")
        p = check(Collector(d, pki, extra=no_file))
        assert p.returncode != 0 and "smtp_user and smtp_password_file go together" in p.stderr, \
            p.stderr
        # smtps:// is TLS from the start: no starttls needed
        c = Collector(d, pki, extra=conf(sink, pki, pwfile, extra="").replace("smtp://", "smtps://"))
        p = check(c)
        assert p.returncode == 0, p.stderr
        # a password file group or others may read, or none at all, or an empty one
        for mode, text, msg in ((0o640, PASSWORD, "group or others may read it (chmod 600)"),
                                (0o604, PASSWORD, "group or others may read it (chmod 600)"),
                                (0o600, "", "expected the password on one line")):
            write_password(pwfile, text, mode)
            c = Collector(d, pki, extra=conf(sink, pki, pwfile))
            p = check(c)
            assert p.returncode != 0 and "[alerts] smtp_password_file" in p.stderr \
                and msg in p.stderr, (oct(mode), p.stderr)
            assert PASSWORD not in p.stderr, p.stderr
        os.unlink(pwfile)
        p = check(Collector(d, pki, extra=conf(sink, pki, pwfile)))
        assert p.returncode != 0 and "No such file" in p.stderr, p.stderr
        os.symlink(os.path.join(d, "token"), pwfile)
        p = check(Collector(d, pki, extra=conf(sink, pki, pwfile)))
        assert p.returncode != 0 and "is a symlink" in p.stderr, p.stderr


def main():
    config_errors()
    auth_flow()
    print("ok")


if __name__ == "__main__":
    main()
