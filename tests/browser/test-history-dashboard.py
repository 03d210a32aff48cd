#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Browser test of the dashboard at fleet scale and of its history (issue 12, "the auditor"):
# 10,000 terminals seeded directly into the collector's SQLite store before it starts (as the
# benchmark seeds, tests/bench/collector/bench-dashboard.py), with 20 days of failing
# mfa.pam_stack on 1 terminal in 37, and one terminal (term-hist) that uploads 40 days of
# snapshots, USB blocks and failed logins through the real ingest (mTLS), as a backlog newest
# batch first. Headless Chromium (Debian's, through chromium-driver and python3-selenium):
# a non-compliant terminal is found from the first screen in one click; the terminal's 90-day
# strip shows its failures on the right days (days in Japan) and a failing cell opens that day's
# reports; the per-clause chart shows the seeded failures on the right days and its bar opens
# the terminals that failed the clause that day; the USB chart and the top terminals click
# through to the events; the events' group filter and its CSV; no request leaves the collector.
# Screenshots at 1366x768 in Japanese of each view (terminals, terminal, events, history) are
# kept in ARTEFACT_DIR (the meson build dir, build/tests/browser/history-*.png).
import importlib.util
import os
import random
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import (PKI, Collector, TestDir, TOKEN, at_jst, compliance, event, jst_day,  # noqa: E402
                          ts, ymd)

_spec = importlib.util.spec_from_file_location("dashboard", os.path.join(HERE, "test-dashboard.py"))
dash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dash)
check, click, rows_now, wait_rows, hash_params, export_text = (
    dash.check, dash.click, dash.rows_now, dash.wait_rows, dash.hash_params, dash.export_text)
By = dash.By

DAY = 86400 * 1000
TERMINALS = 10000


# 10,000 terminals, 7 checks each; 1 in 37 failing mfa.pam_stack for the last 20 days (the
# history tables as the writer keeps them: check_days, clause_terminal_days, clause_days for 90
# days with every terminal reporting); the fleet group "shimin" holds term-hist.
SEED = """
PRAGMA journal_mode = DELETE;
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE t(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM t WHERE i < {T} - 1)
INSERT INTO terminals (id, name, first_seen, last_seen, max_seq, policy_hash, report_interval,
                       compliance_seq, compliance_ts, drift_ms, description, n_failing)
SELECT i + 1, printf('term-%05d', i), {now} - 90 * {DAY}, {now} - (i % 240) * 1000, 1,
       'sha256:' || hex(randomblob(32)), 300000, 1, {now} - 60000, 40,
       CASE i % 4 WHEN 0 THEN '市民課 窓口' WHEN 1 THEN '税務課 ' WHEN 2 THEN '福祉課 '
            ELSE '保険年金課 ' END || (i % 40 + 1) || '番',
       CASE WHEN (i + 1) % 37 = 0 THEN 1 ELSE 0 END
FROM t;
WITH c(id, clause) AS (VALUES ('usb.default_deny', '["2-6-3-a","2-3-2"]'),
  ('usb.no_unapproved_storage', '["2-6-3-a","2-3-2"]'), ('mfa.pam_stack', '["2-6-3-a","2-6-6"]'),
  ('mfa.enrollment', '["2-6-3-a"]'), ('time.synchronized', '["2-6-6"]'),
  ('agent.integrity', '["2-2-7","2-6-7"]'), ('net.isolation', '["2-6-3-a"]'))
INSERT INTO checks (tid, check_id, status, clause, detail, since, updated_at, seq)
SELECT t.id, c.id, CASE WHEN t.id % 37 = 0 AND c.id = 'mfa.pam_stack' THEN 'fail' ELSE 'pass' END,
       c.clause, 'seed', {now} - 20 * {DAY}, {now} - 60000, 1
FROM terminals t CROSS JOIN c;
WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 20)
INSERT INTO check_days (tid, day, check_id, status)
SELECT t.id, {today} - d.n, 'mfa.pam_stack', 2 FROM terminals t CROSS JOIN d WHERE t.id % 37 = 0;
WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 20),
  cl(c) AS (VALUES ('2-6-3-a'), ('2-6-6'))
INSERT INTO clause_terminal_days (day, clause, tid, status)
SELECT {today} - d.n, cl.c, t.id, 2 FROM terminals t CROSS JOIN d CROSS JOIN cl WHERE t.id % 37 = 0;
WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 90),
  cl(c) AS (VALUES ('2-6-3-a'), ('2-6-6'), ('2-3-2'), ('2-2-7'), ('2-6-7'))
INSERT INTO clause_days (day, clause, reporting, failing)
SELECT {today} - d.n, cl.c, {T},
       (SELECT count(*) FROM clause_terminal_days x WHERE x.day = {today} - d.n AND x.clause = cl.c)
FROM d CROSS JOIN cl;
CREATE TABLE IF NOT EXISTS fleet_members (terminal TEXT PRIMARY KEY, grp TEXT NOT NULL,
  added_at INTEGER NOT NULL);
INSERT INTO fleet_members VALUES ('term-hist', 'shimin', 0), ('term-00001', 'zeimu', 0);
COMMIT;
PRAGMA journal_mode = WAL;
"""


def seed_store(c, now):
    c.start()  # creates the schema
    c.stop()
    con = sqlite3.connect(c.db, isolation_level=None)
    con.executescript(SEED.format(T=TERMINALS, now=now, DAY=DAY, today=jst_day(now)))
    con.close()


def upload_history(c, pki, today):
    """term-hist: 40 days of snapshots (time.synchronized failing days -30..-28, mfa.pam_stack
    day -10), 5 USB blocks on day -3, 3 failed logins on day -2; the backlog newest batch first."""
    cert = pki.terminal("term-hist")
    snaps = []
    for i, d in enumerate(range(today - 40, today)):
        failing = (["time.synchronized"] if today - 30 <= d <= today - 28 else []) + \
                  (["mfa.pam_stack"] if d == today - 10 else [])
        e = compliance("term-hist", i + 1, failing=failing, interval_s=300)
        e["ts"] = ts(at_jst(d, 9))
        e["data"]["description"] = "市民課 窓口99番"
        snaps.append(e)
    seq = len(snaps)
    extra = []
    for i in range(5):
        seq += 1
        extra.append(event("term-hist", seq, kind="usb.blocked", ts_ms=at_jst(today - 3, 10, i),
                           data={"vendor": "0781", "product": "5567", "serial": "X%d" % i,
                                 "manufacturer": "SanDisk", "product_name": "Cruzer", "class": "08"}))
    for i in range(3):
        seq += 1
        extra.append(event("term-hist", seq, kind="auth.failure", ts_ms=at_jst(today - 2, 8, i),
                           data={"user": "clerk%d" % i, "service": "login", "reason": "bad_code"}))
    # today's snapshot last: the terminal is compliant now
    seq += 1
    now_snap = compliance("term-hist", seq, interval_s=300)
    now_snap["data"]["description"] = "市民課 窓口99番"
    newer, older = snaps[20:] + extra + [now_snap], snaps[:20]
    random.Random(5).shuffle(newer)
    random.Random(6).shuffle(older)
    for part in (newer, older):
        st, body, _ = c.post(cert, {"v": 1, "terminal": "term-hist", "events": part})
        assert st == 200, body


def drive(b, origin, outdir, today):
    d = b.driver
    t0 = time.time()
    d.get(origin + "/#token=" + TOKEN)
    b.wait_css("#terminals tbody tr[data-terminal]")
    check(b.text("#n-total").strip() == "10001", "10,001 terminals: " + b.text("#n-total"))
    check(b.text("#n-noncompliant").strip() == "270", "270 non-compliant: " + b.text("#n-noncompliant"))
    # problems first: the first row of the first screen is non-compliant, one click opens it
    first = rows_now(b)[0]
    check(b.js("return document.querySelector('#terminals tbody tr').classList.contains('st-noncompliant')"),
          "the first row is non-compliant: " + first)
    reason = b.text('#terminals tbody tr .failing')
    check("ワンタイムコード" in reason, "its reason in Japanese: " + reason)
    b.screenshot(os.path.join(outdir, "history-terminals.png"))
    click(b, By.CSS_SELECTOR, "#terminals tbody tr")
    b.wait("the terminal opened in one click", lambda: b.text("#detail-title") == first
           and "不合格" in (b.text("#checks") or ""))
    # its strip: mfa.pam_stack failing on each of the last 20 days
    b.wait("its strip", lambda: b.js("return document.querySelectorAll('#detail-history a[data-state=fail]').length") == 20)

    # ---- term-hist's 90-day strip ----
    b.js("location.hash = '#/terminal/term-hist'")
    b.wait("term-hist's strip", lambda: b.text("#detail-title") == "term-hist" and
           b.js("return document.querySelectorAll('#detail-history a[data-state]').length") > 0)
    fails = b.js("return Array.from(document.querySelectorAll('#detail-history a[data-state=fail]'))"
                 ".map((a) => a.dataset.check + ' ' + a.dataset.day)")
    want = sorted(["time.synchronized " + ymd(today - n) for n in (30, 29, 28)] + ["mfa.pam_stack " + ymd(today - 10)])
    check(sorted(fails) == want, "the strip's failures on the right days: %s (want %s)" % (sorted(fails), want))
    passes = b.js("return document.querySelectorAll('#detail-history a[data-state=pass][data-check=\"usb.default_deny\"]').length")
    check(passes == 41, "usb.default_deny passes on 41 days (40 of the backlog and today): %d" % passes)
    cells = b.js("return document.querySelectorAll('#detail-history svg rect.cell').length")
    check(cells == 3 * 90, "90 days per check: %d" % cells)
    check("時刻同期" in b.text("#detail-history"), "the checks named in Japanese")
    b.screenshot(os.path.join(outdir, "history-terminal.png"))
    # a failing cell opens that day's reports
    click(b, By.CSS_SELECTOR, '#detail-history a[data-state=fail][data-day="%s"]' % ymd(today - 29))
    b.wait_css("#eventview:not([hidden])")
    check(hash_params(b) == {"terminal": "term-hist", "kind": "compliance", "since": ymd(today - 29),
                             "until": ymd(today - 29)}, "the cell's link: %s" % hash_params(b))
    b.wait("that day's report", lambda: b.js("return document.querySelectorAll('#event-list li').length") == 1
           and "不合格 1 項目" in (b.text("#event-list") or ""))

    # ---- the history view: per clause, activity, top terminals ----
    b.js("location.hash = '#/history?days=90'")
    b.wait_css("#historyview:not([hidden])")
    b.wait("the clause chart", lambda: b.js("return document.querySelectorAll('#hist-rates a[data-clause]').length") > 0)
    bad = b.js("return Object.fromEntries(Array.from(document.querySelectorAll('#hist-rates a[data-clause=\"2-6-6\"]'))"
               ".map((a) => [a.dataset.day, Number(a.dataset.failing)]))")
    want = {ymd(today - n): 270 for n in range(1, 21)}
    want[ymd(today - 10)] = 271
    for n in (30, 29, 28):
        want[ymd(today - n)] = 1
    check(bad == want, "2-6-6's failing terminals per day: %s" % sorted(bad.items()))
    bad = b.js("return Array.from(document.querySelectorAll('#hist-rates a[data-clause=\"2-3-2\"]')).length")
    check(bad == 0, "2-3-2 complied every day")
    b.wait("the USB chart", lambda: b.js("return document.querySelectorAll('#hist-usb a[data-day]').length") == 1)
    check(b.js("const a = document.querySelector('#hist-usb a[data-day]'); return a.dataset.day + ' ' + a.dataset.n")
          == ymd(today - 3) + " 5", "5 USB blocks on day -3")
    check(b.js("const a = document.querySelector('#hist-auth a[data-day]'); return a.dataset.day + ' ' + a.dataset.n")
          == ymd(today - 2) + " 3", "3 failed logins on day -2")
    check(b.js("return Array.from(document.querySelectorAll('#hist-usb-top a')).map((a) => a.dataset.terminal)")
          == ["term-hist"], "the top terminal by USB blocks")
    b.screenshot(os.path.join(outdir, "history-history.png"))
    # the clause bar of day -29 opens the terminals that failed 2-6-6 that day
    click(b, By.CSS_SELECTOR, '#hist-rates a[data-clause="2-6-6"][data-day="%s"]' % ymd(today - 29))
    wait_rows(b, "the terminals that failed 2-6-6 on day -29", lambda r: r == ["term-hist"])
    check(hash_params(b) == {"clause": "2-6-6", "day": ymd(today - 29)}, "its address: %s" % hash_params(b))
    check(ymd(today - 29) in b.text("#list-clause-text"), "the list says which clause and day")
    d.back()
    b.wait_css("#historyview:not([hidden])")
    b.wait("the clause chart again", lambda: b.js("return document.querySelectorAll('#hist-rates a[data-clause]').length") > 0)
    click(b, By.CSS_SELECTOR, '#hist-rates a[data-clause="2-6-6"][data-day="%s"]' % ymd(today - 5))
    b.wait("270 terminals failed 2-6-6 on day -5", lambda: rows_now(b) and len(rows_now(b)) == 50
           and "270" in (b.text("#matched") or ""))
    d.back()
    b.wait("the USB chart again", lambda: b.js("return document.querySelectorAll('#hist-usb a[data-day]').length") == 1)
    # the USB bar opens that day's blocks
    click(b, By.CSS_SELECTOR, "#hist-usb a[data-day]")
    b.wait("the day's USB blocks", lambda: b.js("return document.querySelectorAll('#event-list li').length") == 5)
    check(hash_params(b) == {"kind": "usb.blocked", "since": ymd(today - 3), "until": ymd(today - 3)},
          "the bar's link: %s" % hash_params(b))
    line = b.text("#event-list li .line")
    check(line.startswith("USB 機器 SanDisk Cruzer（0781:5567）") and "を遮断" in line, "a readable line: " + line)
    d.back()
    b.wait("the top terminals again", lambda: b.js("return document.querySelectorAll('#hist-auth-top a').length") == 1)
    click(b, By.CSS_SELECTOR, "#hist-auth-top a")
    b.wait("term-hist's failed logins", lambda: b.js("return document.querySelectorAll('#event-list li').length") == 3)
    check(hash_params(b).get("terminal") == "term-hist" and hash_params(b).get("kind") == "auth.failure",
          "the top terminal's link: %s" % hash_params(b))

    # ---- events: the group filter; the CSV holds what is on screen ----
    b.js("location.hash = '#/events?group=shimin&kind=usb.blocked'")
    b.wait("the group's blocks", lambda: b.js("return document.querySelectorAll('#event-list li').length") == 5
           and b.js("return document.getElementById('ev-group').value") == "shimin")
    terms = set(b.js("return Array.from(document.querySelectorAll('#event-list li .termlink')).map((a) => a.textContent)"))
    check(terms == {"term-hist"}, "only the group's terminal: %s" % terms)
    raw = export_text(b)
    lines = raw[3:].decode("utf-8").split("\r\n")
    check(raw.startswith(b"\xef\xbb\xbf") and lines[0].startswith("端末,通番,発生時刻"), "CSV header: " + lines[0])
    check(len(lines) == 7 and all(ln.startswith('"term-hist"') for ln in lines[1:-1]), "5 rows: %s" % lines)
    b.js("location.hash = '#/events?group=zeimu&kind=usb.blocked'")
    b.wait("another group: nothing", lambda: b.js("return !document.getElementById('ev-empty').hidden"))
    b.js("location.hash = '#/events?group=shimin'")
    # 40 snapshots of the backlog, 5 blocks, 3 failed logins and today's snapshot
    b.wait("the group's events", lambda: b.js("return document.querySelectorAll('#event-list li').length") == 49)
    b.screenshot(os.path.join(outdir, "history-events.png"))

    b.collect_logs()
    ours = [u for doc, u in b.requests if doc.startswith(origin + "/")]
    external = [u for u in ours if not (u.startswith(origin + "/") or u.startswith(("data:", "blob:")))]
    check(not external, "no request leaves the collector: %s" % external)
    check(not b.problems, "no console errors or CSP violations: " + "; ".join(b.problems))
    print("browser part took %.1f s" % (time.time() - t0))


def main():
    t = dash.tools()
    if t is None:
        return 77
    chromium, chromedriver, outdir = t
    with TestDir("browser-history") as d:
        pki = PKI(d)
        c = Collector(d, pki)
        now = int(time.time() * 1000)
        today = jst_day(now)
        t0 = time.time()
        seed_store(c, now)
        print("seeded %d terminals in %.1f s" % (TERMINALS, time.time() - t0))
        c.start()
        try:
            upload_history(c, pki, today)
        except Exception:
            c.stop()
            raise

        def run(b):
            drive(b, "https://127.0.0.1:%d" % c.dashboard[1], outdir, today)
            print("ok; screenshots in", outdir)
        return dash.with_browser(c, chromium, chromedriver, run)


if __name__ == "__main__":
    sys.exit(main())
