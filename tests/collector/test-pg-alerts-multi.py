#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Alerts with two collector processes on one PostgreSQL database (docs/alerts.md, "Several
# collectors on one database"): exactly one of them sends (it holds a session advisory lock), so
# a condition gives one mail and one webhook post, not one per collector; the other's /v1/alerts
# shows what the sender sent. The sender killed with SIGKILL, the other takes over at its next
# round and sends a new condition once, without sending the first again (the deliveries are
# recorded in the database); the first collector started again stays quiet. A condition that
# ends is forgotten in the database, and when it comes back it is sent again, once. With the
# daily digest, the one digest of the day is not sent again by the collector that takes over.
import os
import re
import signal
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alertlib import SMTPSink, WebhookReceiver, mail_keys, wait  # noqa: E402
from collectorlib import PKI, Collector, TestDir, compliance  # noqa: E402

FAIL = ["usb.default_deny"]


def alerts_conf(smtp, hook, extra=""):
    return ("\n[terminals]\nreport_interval = 1h\n\n[alerts]\ninterval = 1s\ntimeout = 3s\n"
            "smtp = smtp://127.0.0.1:%d\nfrom = mynaguard@city.test\nto = it@city.test\n"
            "webhook = %s\n%s" % (smtp.port, hook.url, extra))


def hook_keys(hook):
    return [(p["json"]["kind"], p["json"]["terminal"], p["json"]["event"])
            for p in hook.snapshot()]


def sender(c):
    st, text, _ = c.get("/metrics", raw=True)
    assert st == 200, text
    m = re.search(r"^mynaguard_collector_alert_sender (\d)$", text.decode(), re.M)
    assert m, text
    return int(m.group(1))


def sql(c, q):
    p = c.pg.run("psql", "-h", c.pg.sock, "-U", c.pg.role, "-d", c.dbname, "-X", "-q", "-A",
                 "-t", "-v", "ON_ERROR_STOP=1", "-c", q)
    return [line for line in p.stdout.splitlines() if line]


def two(d, sink, hook, pki, db, extra=""):
    """Two collectors on one database (named after the directory db), once one sends."""
    for side in ("one", "two"):
        os.makedirs(os.path.join(d, side, db))
    cs = [Collector(os.path.join(d, side, db), pki, extra=alerts_conf(sink, hook, extra),
                    store="postgresql") for side in ("one", "two")]
    assert cs[0].url == cs[1].url
    try:
        for c in cs:
            c.start()
        wait(lambda: sorted(sender(c) for c in cs) == [0, 1], what="one sender of two")
    except BaseException:
        for c in cs:
            c.stop()
        raise
    return cs


def digest():
    """digest = 00:00: one digest mail a day from the sender; the sender killed, the other
    takes over and sends no second digest the same day (its day is in the database)."""
    with TestDir("pgalertsdigest") as d:
        pki = PKI(d)
        sink, hook = SMTPSink().start(), WebhookReceiver()
        cert = pki.terminal("term-d")
        cs = two(d, sink, hook, pki, "digest", extra="digest = 00:00\n")
        try:
            lead = [c for c in cs if sender(c)][0]
            other = [c for c in cs if c is not lead][0]
            st, body, _ = other.post(cert, {"v": 1, "terminal": "term-d", "events": [
                compliance("term-d", 1, failing=FAIL, interval_s=3600)]})
            assert st == 200, (st, body)
            wait(lambda: sink.snapshot(), what="the digest")
            time.sleep(3)
            assert len(sink.snapshot()) == 1, [m["subject"] for m in sink.snapshot()]
            assert "open alerts" in sink.snapshot()[0]["subject"], sink.snapshot()[0]
            assert len(sql(lead, "SELECT day FROM mg_alert_digest")) == 1
            lead.proc.send_signal(signal.SIGKILL)
            lead.proc.wait()
            lead.stop()
            wait(lambda: sender(other) == 1, what="the other collector to take over")
            time.sleep(3)
            assert len(sink.snapshot()) == 1, [m["subject"] for m in sink.snapshot()]
            assert "alert digest mailed" not in other.logtext(), other.logtext()
            assert len(hook_keys(hook)) == 1, hook_keys(hook)
        finally:
            for c in cs:
                c.stop()
            sink.stop()
            hook.stop()


def main():
    with TestDir("pgalertsmulti") as d:
        pki = PKI(d)
        sink, hook = SMTPSink().start(), WebhookReceiver()
        certs = {n: pki.terminal(n) for n in ("term-a", "term-b")}
        seqs = {"term-a": 0, "term-b": 0}

        def post(c, name, failing):
            seqs[name] += 1
            st, body, _ = c.post(certs[name], {"v": 1, "terminal": name, "events": [
                compliance(name, seqs[name], failing=failing, interval_s=3600)]})
            assert st == 200, (st, body)

        cs = two(d, sink, hook, pki, "shared")  # exactly one sender, once both have run a round
        try:
            lead = [c for c in cs if sender(c)][0]
            other = [c for c in cs if c is not lead][0]
            time.sleep(2)
            assert sorted(sender(c) for c in cs) == [0, 1]
            assert "this collector sends the alerts" in lead.logtext(), lead.logtext()
            assert "another collector on the database sends" in other.logtext(), other.logtext()

            # one condition: one mail and one post, whichever collector took the upload
            post(other, "term-a", FAIL)
            one = ("noncompliant", "term-a")
            wait(lambda: mail_keys(sink) and hook_keys(hook), what="the first alert")
            time.sleep(4)  # four more rounds of both: nothing is sent twice
            assert mail_keys(sink) == [one], mail_keys(sink)
            assert hook_keys(hook) == [one + ("raised",)], hook_keys(hook)
            # the other collector shows it sent (taken from the database), and sent nothing
            for c in cs:
                st, body, _ = c.get("/v1/alerts")
                assert st == 200 and body["open"] == 1, body
                a = body["alerts"][0]
                assert a["mail"] == "sent" and a["webhook"] == "sent", (c is lead, body)
            assert "alert mailed" not in other.logtext(), other.logtext()
            assert sql(lead, "SELECT key, mail, webhook FROM mg_alert_sent") == \
                ["noncompliant:term-a|2|2"]

            # the sender dies: the other takes over at its next round
            lead.proc.send_signal(signal.SIGKILL)
            lead.proc.wait()
            lead.stop()
            wait(lambda: sender(other) == 1, what="the other collector to take over")
            post(other, "term-b", FAIL)
            second = ("noncompliant", "term-b")
            wait(lambda: len(mail_keys(sink)) >= 2 and len(hook_keys(hook)) >= 2,
                 what="the second alert")
            time.sleep(4)
            assert Counter(mail_keys(sink)) == Counter([one, second]), mail_keys(sink)
            assert Counter(hook_keys(hook)) == Counter([one + ("raised",), second + ("raised",)]), \
                hook_keys(hook)
            assert "alert mailed kind=noncompliant terminal=term-b" in other.logtext()
            assert "terminal=term-a to" not in other.logtext(), other.logtext()

            # the killed collector back: it does not send, nor send again what was sent
            quiet = lead.logtext().count("another collector on the database sends")
            lead.start()
            wait(lambda: lead.logtext().count("another collector on the database sends") > quiet,
                 what="the restarted collector to run a round")
            time.sleep(3)
            assert sender(lead) == 0 and sender(other) == 1
            assert len(mail_keys(sink)) == 2 and len(hook_keys(hook)) == 2, mail_keys(sink)

            # a condition that ends is forgotten; back, it is sent again, once
            post(lead, "term-a", [])
            wait(lambda: sql(other, "SELECT key FROM mg_alert_sent ORDER BY key") ==
                 ["noncompliant:term-b"], what="the ended condition forgotten")
            post(lead, "term-a", FAIL)
            wait(lambda: len(mail_keys(sink)) >= 3, what="the condition sent again")
            time.sleep(3)
            assert Counter(mail_keys(sink)) == Counter([one, second, one]), mail_keys(sink)
            assert Counter(h[:2] for h in hook_keys(hook) if h[2] == "raised") == \
                Counter([one, second, one]), hook_keys(hook)
        finally:
            for c in cs:
                c.stop()
            sink.stop()
            hook.stop()
    digest()
    print("ok")


if __name__ == "__main__":
    main()
