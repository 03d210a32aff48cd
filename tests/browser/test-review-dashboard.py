#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Browser test of the log review (ログの点検, docs/evidence.md): a real collector seeded over mTLS
# with last month's events of each category; headless Chromium opens #/review?period=..., sees
# the items grouped by category in Japanese, writes a comment and signs off; the sign-off shows
# under past sign-offs and is a review.signed event in the store; #/report shows the month's
# self-inspection report with the sign-off. Screenshots at 1366x768 are kept as artefacts.
# Exit 77 (skip) when chromium, chromedriver or selenium are missing.
import datetime
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import TOKEN, compliance, event  # noqa: E402

_spec = importlib.util.spec_from_file_location("test_dashboard", os.path.join(HERE, "test-dashboard.py"))
dash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dash)
try:
    from selenium.webdriver.common.by import By
except ImportError:
    By = None

JST = datetime.timezone(datetime.timedelta(hours=9))
COMMENT = "全件確認しました。夜間ログインは残業申請と照合済み。"


def last_month():
    now = datetime.datetime.now(JST)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - datetime.timedelta(days=1)).replace(day=1)


def seed(c, pki, start):
    def at(days, hour, minute=0):
        return int((start + datetime.timedelta(days=days, hours=hour, minutes=minute)).timestamp() * 1000)

    def auth(seq, kind, user, ts):
        return event("term-a", seq, kind=kind, ts_ms=ts, clause=["2-6-3-a"],
                     data={"user": user, "service": "login"})

    sat = next(d for d in range(7) if (start + datetime.timedelta(days=d)).weekday() == 5)
    wed = next(d for d in range(7, 14) if (start + datetime.timedelta(days=d)).weekday() == 2)
    evs = [compliance("term-a", 1, ts_ms=at(1, 9)),
           auth(2, "auth.success", "hanako", at(sat, 10)),
           auth(3, "auth.locked", "taro", at(wed, 11, 10))]
    evs += [auth(4 + i, "auth.failure", "taro", at(wed, 11, i)) for i in range(5)]
    evs += [compliance("term-a", 9, failing=("mfa.pam_stack",), ts_ms=at(19, 9)),
            event("term-a", 10, kind="usb.blocked", ts_ms=at(9, 14),
                  data={"vendor": "0781", "product": "5567", "serial": "UNREG1"})]
    st, body, _ = c.post(pki.terminal("term-a"), {"v": 1, "terminal": "term-a", "events": evs})
    assert st == 200, (st, body)
    evs = [compliance("term-b", s, ts_ms=at(d, 9)) for s, d in ((1, 1), (2, 5), (5, 12))]
    st, body, _ = c.post(pki.terminal("term-b"), {"v": 1, "terminal": "term-b", "events": evs})
    assert st == 200, (st, body)


def drive(b, c, origin, period, outdir):
    check = dash.check
    d = b.driver
    d.get(origin + "/#token=" + TOKEN)
    b.wait_css("#terminals tbody tr[data-terminal]")
    dash.click(b, By.ID, "nav-review")
    b.wait("the review view", lambda: not d.find_element(By.ID, "reviewview").get_attribute("hidden"))
    # the link goes to last month by default; the period is in the address and the month box
    d.get(origin + "/#/review?period=" + period)
    b.wait("the review list", lambda: b.js("return document.querySelectorAll('#rv-list section').length") == 6)
    check(b.text("#rv-title-period") == period, "the period shown")
    check(b.js("return document.getElementById('rv-period').value") == period, "the month box")
    counts = b.js("return Object.fromEntries(Array.from(document.querySelectorAll('#rv-list section'))"
                  ".map((s) => [s.dataset.category, s.querySelectorAll('tbody tr').length]))")
    check(counts == {"off_hours": 1, "failure_burst": 1, "lockout": 1, "usb_unregistered": 1,
                     "sequence_gap": 1, "compliance_drift": 1}, "one item per category: %r" % counts)
    check("時間外のログイン" in b.text("#rv-list"), "Japanese category names")
    check("hanako" in b.text('#rv-list section[data-category="off_hours"]'), "the Saturday login")
    check(b.text("#rv-state") == "未承認", "not signed off yet")
    check("まだ承認はありません" in b.text("#rv-past-none"), "no past sign-offs")
    b.screenshot(os.path.join(outdir, "review-list.png"))

    d.find_element(By.ID, "rv-comment").send_keys(COMMENT)
    dash.click(b, By.ID, "rv-submit")
    b.wait("the sign-off notice", lambda: not d.find_element(By.ID, "rv-done").get_attribute("hidden"))
    b.wait("the past sign-off", lambda: COMMENT in (b.text("#rv-past tbody") or ""))
    check(b.text("#rv-state") == "承認済み", "signed off")
    check("admin" in b.text("#rv-past tbody"), "the reviewer")
    check(b.js("return document.getElementById('rv-comment').value") == "", "the comment box emptied")
    b.screenshot(os.path.join(outdir, "review-signed.png"))

    # stored as an event of the collector itself
    st, evs, _ = c.get("/v1/events?kind=review.signed&terminal=mynaguard-collector")
    check(st == 200 and len(evs["events"]) == 1, "one review.signed event: %r" % (evs,))
    data = evs["events"][0]["data"]
    check(data["period"] == period and data["comment"] == COMMENT and data["reviewer"] == "admin",
          "the event's data: %r" % data)

    # the report of the month shows the sign-off, without the dashboard's chrome when printed
    dash.click(b, By.ID, "rv-report")
    b.wait("the report", lambda: "自己点検報告書" in (b.text("#rp-body") or ""))
    check(COMMENT in b.text("#rp-body"), "the sign-off in the report")
    check("2-6-3-a" in b.text("#rp-body"), "the clauses in the report")
    check(b.js("return document.body.classList.contains('printing-report')"), "print rules on")
    b.cdp("Emulation.setEmulatedMedia", {"media": "print"})
    check(b.js("return getComputedStyle(document.querySelector('body > header')).display") == "none",
          "no navigation in print")
    b.cdp("Emulation.setEmulatedMedia", {"media": ""})
    b.screenshot(os.path.join(outdir, "review-report.png"))
    b.collect_logs()
    check(not b.problems, "no console errors: %r" % b.problems)


def main():
    if By is None:
        print("skip: python3-selenium missing")
        return 77
    start = last_month()
    return dash.run_browser("browser-review", lambda c, pki: seed(c, pki, start),
                            lambda b, c, origin, outdir: drive(b, c, origin, start.strftime("%Y-%m"), outdir))


if __name__ == "__main__":
    sys.exit(main())
