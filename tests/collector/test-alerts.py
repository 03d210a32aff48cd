#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Alerts (docs/alerts.md) on a real collector: terminals upload over mutual TLS what makes each
# condition (non-compliant, stale, a lockout, an unannounced gap, a certificate near expiry);
# a local SMTP sink and a webhook receiver see exactly one message per condition, also after a
# restart; each condition has its syslog line; /v1/alerts and /metrics show them; a condition
# that ends and comes back is sent again; a relay that is down is logged and retried without
# slowing ingest; STARTTLS required of a relay that offers none sends nothing; the daily digest
# sends one mail listing the open conditions instead of one each; a central TOTP code accepted
# offline on several terminals is one alert per user and step, and a problem of each terminal.
# With MYNAGUARD_TEST_STORE=postgresql (collector-pg-alerts, docs/postgresql.md) the same runs on
# the PostgreSQL store (the dashboard accounts and the fleet too, the TOTP double use included).
import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alertlib import SMTPSink, WebhookReceiver, mail_keys, wait  # noqa: E402
from collectorlib import PKI, TOKEN, Collector, TestDir, compliance, event  # noqa: E402
import fleetlib  # noqa: E402

FAIL = ["usb.default_deny"]


def alerts_conf(smtp=None, hook=None, extra=""):
    s = "\n[terminals]\nreport_interval = 1h\n\n[alerts]\ninterval = 1s\ntimeout = 3s\n" \
        "cert_warning = 20d\n"
    if smtp:
        s += "smtp = smtp://127.0.0.1:%d\nfrom = mynaguard@city.test\n" \
             "to = it-admin@city.test security@city.test\n" % smtp.port
    if hook:
        s += "webhook = %s\n" % hook.url
    return s + extra + "\n"


def hook_keys(hook):
    return [(p["json"]["kind"], p["json"]["terminal"]) for p in hook.snapshot()]


def raised_lines(text):
    return re.findall(r"alert raised kind=(\w+) terminal=([\w.-]+)", text)


def main_flow():
    with TestDir("alerts") as d:
        pki = PKI(d)
        sink, hook = SMTPSink().start(), WebhookReceiver()
        certs = {n: pki.terminal(n) for n in ("term-nc", "term-gap", "term-lock", "term-stale",
                                              "term-ok", "term-nc2")}
        certs["term-cert"] = pki.terminal("term-cert", days=10)
        c = Collector(d, pki, extra=alerts_conf(sink, hook)).start()
        try:
            def post(name, events):
                st, body, _ = c.post(certs[name], {"v": 1, "terminal": name, "events": events})
                assert st == 200, (st, body)

            post("term-ok", [compliance("term-ok", 1, interval_s=3600)])
            snap = compliance("term-nc", 1, failing=FAIL, interval_s=3600)
            snap["data"]["description"] = "総務課 窓口1\x1b[2J"  # a control byte, escaped
            post("term-nc", [snap])
            post("term-gap", [compliance("term-gap", 1, interval_s=3600),
                              event("term-gap", 5, kind="agent.started", data={"version": "1"})])
            post("term-lock", [compliance("term-lock", 1, interval_s=3600),
                               event("term-lock", 2, kind="auth.locked",
                                     data={"user": "clerk1", "service": "login"})])
            post("term-stale", [compliance("term-stale", 1, interval_s=1)])
            post("term-cert", [compliance("term-cert", 1, interval_s=3600)])
            want = {("noncompliant", "term-nc"), ("gap", "term-gap"), ("locked", "term-lock"),
                    ("stale", "term-stale"), ("cert_expiry", "term-cert")}
            wait(lambda: set(mail_keys(sink)) >= want and set(hook_keys(hook)) >= want,
                 what="one mail and one post per condition")
            time.sleep(3)  # three more rounds: nothing is sent twice
            assert Counter(mail_keys(sink)) == Counter(want), mail_keys(sink)
            assert Counter(hook_keys(hook)) == Counter(want), hook_keys(hook)
            assert Counter(raised_lines(c.logtext())) == Counter(want), raised_lines(c.logtext())

            # the messages: Japanese first, English second; the envelope as configured
            m = [x for x in sink.snapshot() if "term-lock" in x["body"]][0]
            assert m["subject"].startswith("[mynaguard] ロックアウト term-lock / clerk locked out"), m
            assert m["body"].index("ロックアウトされました") < m["body"].index("locked out on"), m
            assert '"clerk1"' in m["body"], m["body"]
            assert m["from"] == "MAIL FROM:<mynaguard@city.test>", m
            assert sorted(m["rcpt"]) == ["RCPT TO:<it-admin@city.test>",
                                         "RCPT TO:<security@city.test>"], m
            p = [x["json"] for x in hook.snapshot() if x["json"]["kind"] == "noncompliant"][0]
            assert p["event"] == "raised" and "usb.default_deny" in p["message"]["ja"], p
            assert p["message"]["ja"].startswith('端末 term-nc "総務課 窓口1\\x1b[2J" が非準拠'), p
            assert "\x1b" not in c.logtext(), "a control byte reached the log"
            assert hook.snapshot()[0]["type"].startswith("application/json"), hook.snapshot()[0]
            line = [l for l in c.logtext().splitlines() if "alert raised kind=gap" in l][0]
            assert "証跡に欠落" in line and "Evidence is missing" in line, line

            # the API and the metrics
            st, body, _ = c.get("/v1/alerts")
            assert st == 200 and body["open"] == 5, body
            assert {(a["kind"], a["terminal"]) for a in body["alerts"]} == want, body
            assert all(a["mail"] == "sent" and a["webhook"] == "sent" for a in body["alerts"]), body
            # a certificate near expiry is also a problem on the dashboard (issue 13), by the
            # same [alerts] cert_warning; a terminal with a long certificate is not
            st, body, _ = c.get("/v1/terminals?status=problem&limit=100")
            assert st == 200, body
            byname = {t["id"]: t for t in body["terminals"]}
            assert byname["term-cert"]["cert_expiring"] is True, byname["term-cert"]
            assert byname["term-cert"]["problem"] is True, byname["term-cert"]
            assert byname["term-cert"]["status"] == "compliant", byname["term-cert"]
            assert "term-ok" not in byname, byname
            assert body["summary"]["problem"] == body["matched"] == len(byname) == 5, body
            st, body, _ = c.get("/v1/terminals/term-ok")
            assert st == 200 and body["cert_expiring"] is False and body["problem"] is False, body
            st, body, _ = c.get("/v1/terminals/term-cert")
            assert st == 200 and body["cert_expiring"] is True and body["cert_not_after"], body
            st, body, _ = c.get("/v1/terminals?sort=problem&limit=100")
            order = [t["id"] for t in body["terminals"]]
            assert order.index("term-cert") < order.index("term-ok"), order
            # the terminals CSV carries the reason too (the last two columns)
            st, raw, _ = c.get("/v1/terminals.csv?sort=id&limit=100", raw=True)
            rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))
            assert st == 200 and rows[0][-2:] == ["証明書", "確認コード"], rows[0]
            bycsv = {r[0]: r for r in rows[1:]}
            assert bycsv["term-cert"][-2] == "期限切れ間近", bycsv["term-cert"]
            assert bycsv["term-ok"][-2] == "" and bycsv["term-ok"][-1] == "", bycsv["term-ok"]
            st, _, _ = c.get("/v1/alerts", token="wrong")
            assert st == 401, st
            st, text, _ = c.get("/metrics", raw=True)
            text = text.decode()
            assert 'mynaguard_collector_alerts_open{kind="gap"} 1' in text, text
            assert "mynaguard_collector_alerts_raised_total 5" in text, text
            assert 'mynaguard_collector_alert_deliveries_total{channel="mail",result="ok"} 5' in text
        except Exception:
            print(c.logtext(), file=sys.stderr)
            raise
        finally:
            c.stop()

        # a restart sends nothing again (the state is in alerts.db)
        before_log = len(c.logtext())
        c.start()
        try:
            time.sleep(4)
            assert Counter(mail_keys(sink)) == Counter(want), mail_keys(sink)
            assert Counter(hook_keys(hook)) == Counter(want), hook_keys(hook)
            assert raised_lines(c.logtext()[before_log:]) == [], c.logtext()[before_log:]
            st, body, _ = c.get("/v1/alerts")
            assert st == 200 and body["open"] == 5, body

            # a condition that ends is cleared; when it comes back it is sent once more
            post("term-nc", [compliance("term-nc", 2, interval_s=3600)])
            wait(lambda: "alert cleared kind=noncompliant terminal=term-nc" in c.logtext(),
                 what="the clear")
            post("term-nc", [compliance("term-nc", 3, failing=FAIL, interval_s=3600)])
            wait(lambda: mail_keys(sink).count(("noncompliant", "term-nc")) == 2 and
                 hook_keys(hook).count(("noncompliant", "term-nc")) == 2, what="the recurrence")

            # the relay is down: logged, retried later; ingest does not wait for it
            sink.stop()
            post("term-nc2", [compliance("term-nc2", 1, failing=FAIL, interval_s=3600)])
            wait(lambda: re.search(r"alert mail failed kind=noncompliant terminal=term-nc2 .*"
                                   r"retrying in \d+ s", c.logtext()), what="the failure log")
            t0 = time.time()
            for seq in range(2, 12):
                post("term-ok", [compliance("term-ok", seq, interval_s=3600)])
            assert time.time() - t0 < 5, "ingest slowed by the relay being down"
            # the webhook got it at once, and only once, whatever the mail does
            wait(lambda: ("noncompliant", "term-nc2") in hook_keys(hook), what="the post")
            sink.start()  # the same port again
            wait(lambda: ("noncompliant", "term-nc2") in mail_keys(sink), timeout=40,
                 what="the retried mail")
            time.sleep(3)
            assert mail_keys(sink).count(("noncompliant", "term-nc2")) == 1, mail_keys(sink)
            assert hook_keys(hook).count(("noncompliant", "term-nc2")) == 1, hook_keys(hook)
            assert len(sink.snapshot()) == 7 and len(hook.snapshot()) == 7, \
                (mail_keys(sink), hook_keys(hook))
            st, text, _ = c.get("/metrics", raw=True)
            assert re.search(rb'alert_deliveries_total\{channel="mail",result="failed"\} [1-9]',
                             text), text
        finally:
            c.stop()
            sink.stop()
            hook.stop()


def post_failing(c, certs):
    """Each terminal of certs uploads a snapshot with a failing check."""
    for n, cert in certs.items():
        st, body, _ = c.post(cert, {"v": 1, "terminal": n,
                                    "events": [compliance(n, 1, failing=FAIL)]})
        assert st == 200, (st, body)


def starttls_required():
    """STARTTLS required, a relay without it: nothing goes out in clear text; the log says so.
    A webhook that answers 500 is logged and retried until it takes the post, once."""
    with TestDir("alerts-tls") as d:
        pki = PKI(d)
        sink, hook = SMTPSink().start(), WebhookReceiver()
        hook.status = 500
        c = Collector(d, pki, extra=alerts_conf(sink, hook, extra="starttls = yes\n")).start()
        try:
            post_failing(c, {"term-nc": pki.terminal("term-nc")})
            wait(lambda: "alert mail failed kind=noncompliant terminal=term-nc" in c.logtext(),
                 what="the STARTTLS failure")
            assert "alert raised kind=noncompliant terminal=term-nc" in c.logtext()
            wait(lambda: re.search(r"alert webhook failed kind=noncompliant terminal=term-nc: "
                                   r"the webhook answered HTTP 500; retrying in \d+ s",
                                   c.logtext()), what="the webhook failure")
            hook.status = 204
            wait(lambda: hook.snapshot(), timeout=40, what="the retried post")
            time.sleep(3)
            assert hook_keys(hook) == [("noncompliant", "term-nc")], hook_keys(hook)
            assert sink.snapshot() == [], sink.snapshot()
            st, body, _ = c.get("/v1/alerts")
            a = body["alerts"][0]
            assert a["webhook"] == "sent" and a["mail"] == "pending", a
        finally:
            c.stop()
            sink.stop()
            hook.stop()


def digest():
    """digest = 00:00: no mail per condition, one mail a day listing what is open; a relay down
    at that time delays it, a restart does not repeat it."""
    with TestDir("alerts-digest") as d:
        pki = PKI(d)
        sink = SMTPSink().start()
        certs = {n: pki.terminal(n) for n in ("term-a", "term-b")}
        # first without mail: the conditions are raised (syslog only)
        c = Collector(d, pki, extra=alerts_conf()).start()
        try:
            post_failing(c, certs)
            wait(lambda: len(raised_lines(c.logtext())) == 2, what="two raised")
        finally:
            c.stop()
        c = Collector(d, pki, extra=alerts_conf(sink, extra="digest = 00:00\n"))
        sink.stop()  # the relay is down when the digest is due: logged, retried
        for run in range(2):  # the second run sends no second digest the same day
            c.start()
            try:
                if run == 0:
                    wait(lambda: re.search(r"alert digest mail failed relay=smtp://127\.0\.0\.1:"
                                           r"\d+: .*; retrying in \d+ s", c.logtext()),
                         what="the digest's failure")
                    sink.start()
                wait(lambda: len(sink.snapshot()) >= 1, timeout=40, what="the digest")
                time.sleep(3)
                msgs = sink.snapshot()
                assert len(msgs) == 1, [m["subject"] for m in msgs]
                m = msgs[0]
                assert "未解決の警告 2 件 / 2 open alerts" in m["subject"], m["subject"]
                assert "term-a" in m["body"] and "term-b" in m["body"], m["body"]
                assert c.logtext().count("alert digest mailed: 2 open conditions") == 1
                st, body, _ = c.get("/v1/alerts")
                assert body["open"] == 2 and all(a["mail"] == "none" for a in body["alerts"]), body
            finally:
                c.stop()
        sink.stop()


def stale_grace():
    """After the collector itself was down, a terminal is not called stale before it has had
    two intervals to report again; one that does report is never raised."""
    with TestDir("alerts-grace") as d:
        pki = PKI(d)
        certs = {n: pki.terminal(n) for n in ("term-g", "term-h")}
        c = Collector(d, pki, extra=alerts_conf()).start()
        try:
            for n, cert in certs.items():
                st, _, _ = c.post(cert, {"v": 1, "terminal": n,
                                         "events": [compliance(n, 1, interval_s=4)]})
                assert st == 200
        finally:
            c.stop()
        time.sleep(9)  # both look stale now: nothing received for more than 2 x 4 s
        c.start()
        try:
            st, _, _ = c.post(certs["term-h"], {"v": 1, "terminal": "term-h",
                                                "events": [compliance("term-h", 2, interval_s=3600)]})
            assert st == 200
            time.sleep(4)
            assert raised_lines(c.logtext()) == [], raised_lines(c.logtext())
            wait(lambda: raised_lines(c.logtext()) == [("stale", "term-g")], timeout=15,
                 what="term-g stale after the grace")
        finally:
            c.stop()


def silent_relay():
    """A relay that accepts and never answers costs the timeout once per round, not once per
    alert: the webhook posts of the same round are not held up behind it."""
    import socket
    with TestDir("alerts-silent") as d:
        pki = PKI(d)
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # never accepted: the kernel completes the handshake, no 220 follows

        class Relay:
            port = silent.getsockname()[1]
        hook = WebhookReceiver()
        names = ("term-s1", "term-s2", "term-s3")
        certs = {n: pki.terminal(n) for n in names}
        # the conditions are made while no round runs (the first one ran at start)...
        c = Collector(d, pki, extra=alerts_conf().replace("interval = 1s", "interval = 1h")).start()
        try:
            post_failing(c, certs)
        finally:
            c.stop()
        # ...so that the first round after this start raises all three at once
        c = Collector(d, pki,
                      extra=alerts_conf(Relay, hook).replace("interval = 1s", "interval = 30s"))
        t0 = time.time()
        c.start()
        try:
            wait(lambda: len(hook.snapshot()) == 3, timeout=20, what="three posts")
            # one timeout (3 s) for the first mail, not three
            assert time.time() - t0 < 7, time.time() - t0
            assert c.logtext().count("alert mail failed") == 1, c.logtext()
            st, body, _ = c.get("/v1/alerts")
            assert sorted(a["mail"] for a in body["alerts"]) == ["pending"] * 3, body
        finally:
            c.stop()
            hook.stop()
            silent.close()


def config_errors():
    import subprocess
    with TestDir("alerts-conf") as d:
        pki = PKI(d)
        for bad, msg in (("smtp = http://x\nfrom = a@b\nto = c@d\n", "[alerts] smtp"),
                         ("smtp = smtp://x\n", "smtp, from and to go together"),
                         ("digest = 8:30\nsmtp = smtp://x\nfrom = a@b\nto = c@d\n", "digest"),
                         ("smtp = smtp://x\nfrom = a@b\nto = <c@d>\n", "from/to"),
                         ("webhook = ftp://x\n", "webhook"),
                         ("starttls = yes\n", "need smtp")):
            c = Collector(d, pki, extra="\n[alerts]\n" + bad)
            p = subprocess.run([os.environ["COLLECTOR"], "--config", c.conf, "--check"],
                               capture_output=True, text=True, timeout=30)
            assert p.returncode != 0 and msg in p.stderr, (bad, p.stderr)
        # a state file that cannot be written fails --check too
        c = Collector(d, pki, extra="\n[alerts]\nstate = %s/no/such/dir/alerts.db\n" % d)
        p = subprocess.run([os.environ["COLLECTOR"], "--config", c.conf, "--check"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and "alerts: state" in p.stderr, p.stderr
        c = Collector(d, pki, extra="\n[alerts]\nstate = %s/alerts.db\n" % d)
        p = subprocess.run([os.environ["COLLECTOR"], "--config", c.conf, "--check"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr


def totp_double_use():
    """Central TOTP (docs/fleet.md): a code accepted offline on two terminals, then on a third,
    is one alert (per user and step), not one per terminal; both terminals show a problem on
    the dashboard with the reason, until the authenticator is revoked."""
    with TestDir("alerts-totp") as d:
        pki = PKI(d)
        sink, hook = SMTPSink().start(), WebhookReceiver()
        _, root_pub, _ = fleetlib.keygen(d, "root")
        grant_pem, _, _ = fleetlib.keygen(d, "grant")
        key = os.path.join(d, "totp.key")
        with open(key, "w") as f:
            f.write("ab" * 32 + "\n")
        os.chmod(key, 0o600)
        names = ("term-t1", "term-t2", "term-t3", "term-t4")
        certs = {n: pki.terminal(n) for n in names}
        c = Collector(d, pki, extra=alerts_conf(sink, hook) + fleetlib.fleet_conf(
            grant_pem, root_pub) + "totp_key = %s\n" % key).start()
        try:
            st, body, _ = fleetlib.call(c, "POST", "/v1/groups", {"name": "kyoku"})
            assert st in (200, 201), (st, body)
            st, body, _ = fleetlib.call(c, "POST", "/v1/totp", {"user": "clerk1",
                                                               "groups": ["kyoku"]})
            assert st in (200, 201), (st, body)
            step = int(time.time()) // 30

            def used(name, seq, user="clerk1", s=step):
                ev = event(name, seq, kind="auth.success", clause=["2-6-6"],
                           data={"user": user, "service": "login", "method": "totp",
                                 "step": s, "claim": "offline"})
                st, body, _ = c.post(certs[name], {"v": 1, "terminal": name, "events": [
                    compliance(name, seq - 1, interval_s=3600), ev]})
                assert st == 200, (st, body)

            used("term-t1", 2)
            used("term-t4", 2, s=step - 1)  # another step, used once: no problem
            st, body, _ = c.get("/v1/terminals/term-t1")
            assert body["totp_double_use"] is False and body["problem"] is False, body
            used("term-t2", 2)
            want = [("totp_double_use", "term-t2")]
            mwant = [("totp_double_use", "clerk1")]  # the mail's footer: the key, user:step
            wait(lambda: mail_keys(sink) == mwant and hook_keys(hook) == want,
                 what="one mail and one post for the double use")
            used("term-t3", 2)  # a third terminal, the same step: the same condition
            wait(lambda: len([e for e in c.get("/v1/events?kind=fleet.totp")[1]["events"]
                              if e["data"]["action"] == "double_use"]) == 2,
                 what="the second double_use event")
            time.sleep(3)
            assert mail_keys(sink) == mwant and hook_keys(hook) == want, \
                (mail_keys(sink), hook_keys(hook))
            assert raised_lines(c.logtext()) == want, raised_lines(c.logtext())
            m = sink.snapshot()[0]
            assert m["subject"].startswith("[mynaguard] 確認コードの二重使用 term-t2 / one-time "
                                           "code used twice"), m["subject"]
            b = m["body"]
            assert b.index("同じ確認コードが2台で使われました") < b.index("accepted on two"), b
            assert '"clerk1"' in b and "term-t1" in b and "失効" in b, b
            st, body, _ = c.get("/v1/alerts")
            assert [a["key"] for a in body["alerts"]] == ["totp_double_use:clerk1:%d" % step], body
            st, body, _ = c.get("/v1/alerts", token=hidden_token(c))
            assert st == 200 and "clerk1" not in json.dumps(body), body
            assert [a["key"] for a in body["alerts"]] == ["totp_double_use:***:%d" % step], body
            assert '利用者 "***"' in body["alerts"][0]["message"]["ja"], body
            # the dashboard: the three terminals that used it are problems, the fourth is not
            for n in names:
                st, body, _ = c.get("/v1/terminals/" + n)
                bad = n != "term-t4"
                assert st == 200 and body["totp_double_use"] is bad and body["problem"] is bad, \
                    (n, body)
            st, body, _ = c.get("/v1/terminals?status=problem")
            ids = {t["id"] for t in body["terminals"]} - {"mynaguard-collector"}  # no report
            assert ids == set(names[:3]), body
            st, text, _ = c.get("/metrics", raw=True)
            assert b'mynaguard_collector_alerts_open{kind="totp_double_use"} 1' in text, text
            # the enrollments' list counts them (the dashboard's TOTP view)
            st, body, _ = fleetlib.call(c, "GET", "/v1/totp")
            (row,) = body["totp"]
            assert row["double_uses"] == 2 and row["last_double_use"], row
        except BaseException:
            sys.stderr.write(c.logtext()[-6000:])
            raise
        finally:
            c.stop()
            sink.stop()
            hook.stop()
        # a restart sends nothing again
        sink.start()
        c.start()
        try:
            time.sleep(3)
            assert mail_keys(sink) == mwant, mail_keys(sink)
            assert raised_lines(c.logtext()).count(want[0]) == 1, c.logtext()
            st, body, _ = c.get("/v1/alerts")
            assert body["open"] == 1, body
            # revoking the authenticator used twice ends the condition: the alert is cleared
            # and no terminal is a problem for it any more
            st, body, _ = fleetlib.call(c, "POST", "/v1/totp/clerk1/revoke", {"reason": "lost"})
            assert st == 200, (st, body)
            wait(lambda: "alert cleared kind=totp_double_use" in c.logtext(),
                 what="the double use's alert cleared")
            st, body, _ = c.get("/v1/alerts")
            assert body["alerts"] == [], body
            for n in names:
                st, body, _ = c.get("/v1/terminals/" + n)
                assert st == 200 and body["totp_double_use"] is False, (n, body)
        finally:
            c.stop()
            sink.stop()


def account_cli(c, *args):
    return subprocess.run([os.environ["COLLECTOR"], "--config", c.conf, *args],
                          input="auditor-password-0123\n", capture_output=True, text=True,
                          timeout=60)


def hidden_token(c):
    """A read token of an auditor with hide_personal."""
    r = account_cli(c, "--account-add", "mika", "--role", "auditor", "--hide-personal")
    assert r.returncode == 0, r.stderr
    tok = account_cli(c, "--account-token", "mika", "--scope", "read").stdout.strip()
    assert re.fullmatch(r"mgt_[0-9a-f]{64}", tok), tok
    return tok


def dashboard_api():
    """GET /v1/alerts for the dashboard's alerts view: the open conditions and each channel's
    last deliveries (time, result, reason), readable by an auditor's token, refused without
    one, and never the webhook URL's credentials nor the mail addresses."""
    with TestDir("alerts-api") as d:
        pki = PKI(d)
        sink, hook = SMTPSink().start(), WebhookReceiver()
        secret_url = hook.url.replace("http://", "http://hookuser:hook-s3cret@") + \
            "?token=tok-s3cret"

        class Hook:
            url = secret_url
        cert = pki.terminal("term-nc")
        c = Collector(d, pki, extra=alerts_conf(sink, Hook)).start()
        try:
            def cli(*args):
                return account_cli(c, *args)
            r = cli("--account-add", "kana", "--role", "auditor")
            assert r.returncode == 0, r.stderr
            tok = cli("--account-token", "kana", "--scope", "read").stdout.strip()
            assert re.fullmatch(r"mgt_[0-9a-f]{64}", tok), tok
            st, body, _ = c.get("/v1/alerts", token=tok)
            assert st == 200 and body["open"] == 0, body

            st, out, _ = c.post(cert, {"v": 1, "terminal": "term-nc", "events": [
                compliance("term-nc", 1, failing=FAIL, interval_s=3600)]})
            assert st == 200, out
            wait(lambda: hook_keys(hook) and mail_keys(sink), what="the mail and the post")
            body = wait(lambda: (lambda b: b if b[1]["channels"]["webhook"]["recent"] and
                                 b[1]["channels"]["mail"]["recent"] else None)(
                c.get("/v1/alerts", token=tok)), what="the deliveries in /v1/alerts")[1]
            assert body["open"] == 1, body
            a = body["alerts"][0]
            assert (a["kind"], a["terminal"]) == ("noncompliant", "term-nc"), a
            assert a["message"]["ja"].startswith("端末 term-nc が非準拠"), a
            assert a["mail"] == "sent" and a["webhook"] == "sent", a
            for ch in ("mail", "webhook"):
                x = body["channels"][ch]
                assert x["configured"] is True, x
                got = x["recent"][0]
                assert (got["kind"], got["terminal"], got["result"], got["count"]) == \
                    ("noncompliant", "term-nc", "sent", 1), got
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*", got["at"]), got
                assert got["error"] is None, got
            assert body["channels"]["mail"]["digest"] is None, body

            # a webhook that refuses: the failure and its reason, still no URL
            hook.status = 500
            st, out, _ = c.post(cert, {"v": 1, "terminal": "term-nc", "events": [
                compliance("term-nc", 2, interval_s=3600)]})
            assert st == 200, out
            wait(lambda: c.get("/v1/alerts", token=tok)[1]["open"] == 0, what="cleared")
            st, out, _ = c.post(cert, {"v": 1, "terminal": "term-nc", "events": [
                compliance("term-nc", 3, failing=FAIL, interval_s=3600)]})
            assert st == 200, out

            def failed():
                b = c.get("/v1/alerts", token=tok)[1]
                r = b["channels"]["webhook"]["recent"]
                return b if r and r[0]["result"] == "failed" else None
            body = wait(failed, what="the failed post in /v1/alerts")
            got = body["channels"]["webhook"]["recent"][0]
            assert "500" in got["error"], got
            assert "sent" in [x["result"] for x in body["channels"]["webhook"]["recent"]], body

            text = json.dumps(body, ensure_ascii=False)
            for secret in ("hook-s3cret", "tok-s3cret", "hookuser", "/hook", "127.0.0.1:%d" %
                           hook.server.server_address[1], "it-admin@city.test",
                           "security@city.test", "mynaguard@city.test", "smtp://"):
                assert secret not in text, (secret, text)
            # an auditor with hide_personal: the locked-out clerk is "***" in the message, the
            # user and the key (a double use's key names the user)
            st, out, _ = c.post(cert, {"v": 1, "terminal": "term-nc", "events": [
                event("term-nc", 4, kind="auth.locked", data={"user": "clerk9", "service": "login"})]})
            assert st == 200, out
            body = wait(lambda: (lambda b: b if any(a["kind"] == "locked" for a in b["alerts"])
                                 else None)(c.get("/v1/alerts", token=tok)[1]), what="the lockout")
            a = [a for a in body["alerts"] if a["kind"] == "locked"][0]
            assert a["user"] == "clerk9" and '"clerk9"' in a["message"]["ja"], a
            st, body, _ = c.get("/v1/alerts", token=hidden_token(c))
            assert st == 200, body
            a = [a for a in body["alerts"] if a["kind"] == "locked"][0]
            assert "clerk9" not in json.dumps(body), body
            assert a["user"] == "***" and '利用者 "***" がロックアウト' in a["message"]["ja"], a
            assert 'User "***" was locked out' in a["message"]["en"], a
            assert a["terminal"] == "term-nc", a
            st, _, _ = c.get("/v1/alerts", token=None)
            assert st == 401, st
            st, _, _ = c.get("/v1/alerts", token="mgt_" + "0" * 64)
            assert st == 401, st
        except Exception:
            print(c.logtext(), file=sys.stderr)
            raise
        finally:
            c.stop()
            sink.stop()
            hook.stop()
    print("dashboard api: ok")


def main():
    dashboard_api()
    config_errors()
    totp_double_use()
    main_flow()
    starttls_required()
    stale_grace()
    silent_relay()
    digest()
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
