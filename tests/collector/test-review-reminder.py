#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The review reminder (docs/alerts.md, review_overdue; docs/evidence.md, "Scheduling"): a log
# review period that ended [alerts] review_grace ago without a sign-off is one alert condition
# (log line, one mail at the test's SMTP sink, one webhook post), not sent again in later rounds
# nor after a restart, and it ends when the period is signed off. A store that holds nothing
# from before the period's end (not in use then) raises nothing, and neither does a period
# whose grace has not passed. Runs on both stores (collector-pg-review-reminder).
import datetime
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alertlib import SMTPSink, WebhookReceiver, wait  # noqa: E402
from collectorlib import PKI, Collector, TestDir, compliance  # noqa: E402
from fleetlib import call  # noqa: E402

JST = datetime.timezone(datetime.timedelta(hours=9))


def last_month():
    first = datetime.datetime.now(JST).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - datetime.timedelta(days=1)).replace(day=1)


def conf(sink, hook, grace):
    return ("\n[terminals]\nreport_interval = 1h\n\n[alerts]\ninterval = 1s\ntimeout = 3s\n"
            "smtp = smtp://127.0.0.1:%d\nfrom = mynaguard@city.test\nto = auditor@city.test\n"
            "webhook = %s\nreview_grace = %s\n" % (sink.port, hook.url, grace))


def reminders(c):
    return re.findall(r"alert raised kind=review_overdue terminal=mynaguard-collector: (.*)",
                      c.logtext())


def main():
    with TestDir("review-reminder") as d:
        pki = PKI(d)
        sink, hook = SMTPSink().start(), WebhookReceiver()
        start = last_month()
        period = start.strftime("%Y-%m")
        cert = pki.terminal("term-a")
        # a grace longer than the time since last month ended: not overdue yet, even with
        # last month's events in the store; with nothing stored, no period is overdue either
        c = Collector(d, pki, extra=conf(sink, hook, "60d")).start()
        try:
            time.sleep(3)
            assert reminders(c) == [], reminders(c)
            st, body, _ = c.post(cert, {"v": 1, "terminal": "term-a", "events": [
                compliance("term-a", 1, interval_s=3600,
                           ts_ms=int((start + datetime.timedelta(days=2, hours=10))
                                     .timestamp() * 1000))]})
            assert st == 200, (st, body)
            time.sleep(3)
            assert reminders(c) == [], reminders(c)  # two months ago holds nothing
        finally:
            c.stop()
        # the grace has passed (0 s: last month is due at once): one reminder, once, also
        # after a restart (the log file keeps both runs)
        c = Collector(d, pki, extra=conf(sink, hook, "0s"))
        for run in range(2):
            c.start()
            try:
                wait(lambda: sink.snapshot() and hook.snapshot(), what="the reminder")
                time.sleep(3)  # three more rounds: nothing again
                assert len(reminders(c)) == 1, reminders(c)
                msgs, posts = sink.snapshot(), hook.snapshot()
                assert len(msgs) == 1 and len(posts) == 1, (msgs, posts)
            finally:
                c.stop()
        assert "ログの点検 %s" % period in reminders(c)[0], reminders(c)
        c.start()
        try:
            m = sink.snapshot()[0]
            assert m["subject"].startswith("[mynaguard] ログ点検の承認待ち"), m["subject"]
            assert "log review overdue" in m["subject"], m["subject"]
            assert "ログの点検 %s" % period in m["body"], m["body"]
            assert m["body"].index("承認されていません") < m["body"].index("no sign-off"), m["body"]
            assert "review_overdue:%s" % period in m["body"], m["body"]
            p = hook.snapshot()[0]["json"]
            assert p["kind"] == "review_overdue" and p["key"] == "review_overdue:" + period, p
            assert p["terminal"] == "mynaguard-collector", p
            # the first round after the start (on PostgreSQL it opens its connections first)
            body = wait(lambda: (lambda b: b if b["generated_at"] else None)(
                c.get("/v1/alerts")[1]), what="the first round")
            assert [a["key"] for a in body["alerts"]] == ["review_overdue:" + period], body
            # the sign-off ends the condition: logged as cleared, gone from /v1/alerts
            st, rv, _ = c.get("/v1/review?period=" + period)
            assert st == 200, rv
            st, resp, _ = call(c, "POST", "/v1/review/signoff",
                               {"period": period, "items_sha256": rv["items_sha256"],
                                "comment": "確認済み"})
            assert st == 202, (st, resp)
            wait(lambda: re.search(r"alert cleared kind=review_overdue terminal="
                                   r"mynaguard-collector key=review_overdue:" + period,
                                   c.logtext()), what="the reminder cleared")
            wait(lambda: c.get("/v1/alerts")[1]["open"] == 0, what="no open alert")
            time.sleep(2)
            assert len(sink.snapshot()) == 1 and len(hook.snapshot()) == 1
        finally:
            c.stop()
            sink.stop()
            hook.stop()
    print("ok")


if __name__ == "__main__":
    main()
