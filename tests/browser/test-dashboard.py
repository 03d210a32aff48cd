#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Browser test of the collector's web dashboard: seeds a real collector through the real ingest
# API (mTLS), then drives Debian's headless Chromium through chromium-driver with Debian's
# python3-selenium. Everything comes from apt (scripts/setup-deps.sh): no Node.js, no npm, no
# download at test time. The token comes in the URL fragment, the non-compliant terminal is
# found from the first screen in one click on its card, the failing reason reads in Japanese
# with what to do, columns sort, pages turn, every view has an address that Back and a reload
# follow, a filter that matches nothing says so (not "no terminal has reported"), the events
# view reads one Japanese line per event with the raw JSON a click away, the CSV export holds
# exactly what is on screen, a <script> sent by a terminal shows as text, and screenshots at
# 1366x768 are saved as test artefacts. Exit 77 (skip, which scripts/test.sh refuses unless expected) when chromium,
# chromedriver or selenium are missing.
import base64
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import PKI, Collector, TestDir, TOKEN, batch, compliance, event  # noqa: E402

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # reported in main(): the test cannot run without it
    webdriver = None

WAIT_S = 30


def check(cond, what):
    if not cond:
        raise AssertionError("check failed: " + what)


class Browser:
    """Headless Chromium driven by chromedriver; records console errors and every request."""

    def __init__(self, chromium, chromedriver, profile):
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--lang=ja-JP",
                  "--window-size=1366,768", "--user-data-dir=" + profile):
            opts.add_argument(a)
        opts.accept_insecure_certs = True  # the test's throwaway CA
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)
        self.cdp("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
        self.cdp("Emulation.setLocaleOverride", {"locale": "ja-JP"})
        self.problems = []
        self.requests = []

    def cdp(self, cmd, args):
        return self.driver.execute_cdp_cmd(cmd, args)

    def close(self):
        self.driver.quit()

    def wait(self, what, fn):
        try:
            return WebDriverWait(self.driver, WAIT_S).until(lambda d: fn())
        except TimeoutException:
            raise AssertionError("timed out waiting for: " + what) from None

    def wait_css(self, css):
        return self.wait(css, lambda: self.driver.find_elements(By.CSS_SELECTOR, css))[0]

    def text(self, css):
        # textContent, as the DOM has it (hidden elements included), not the rendered text
        return self.driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def screenshot(self, path):
        """Full-page PNG through the DevTools protocol (chromedriver's own is the viewport only)."""
        m = self.cdp("Page.getLayoutMetrics", {})
        size = m.get("cssContentSize") or m["contentSize"]
        shot = self.cdp("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        data = base64.b64decode(shot["data"])
        check(data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, "screenshot " + path)
        with open(path, "wb") as f:
            f.write(data)

    def collect_logs(self):
        for e in self.driver.get_log("browser"):
            if e.get("level") == "SEVERE":
                self.problems.append("console: " + e.get("message", ""))
        for e in self.driver.get_log("performance"):
            msg = json.loads(e["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                # (the page that asked, the URL asked for); chromedriver's own start page too
                self.requests.append((msg["params"].get("documentURL", ""), msg["params"]["request"]["url"]))


def click(b, how, what):
    """Clicks an element; the page redraws every 10 s, so a found element may go stale: retry."""
    for _ in range(10):
        try:
            b.driver.find_element(how, what).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.2)
    raise AssertionError("could not click " + what)


def rows_now(b):
    return b.js("return Array.from(document.querySelectorAll('#terminals tbody tr'))"
                ".map((tr) => tr.dataset.terminal);")


def hash_params(b):
    return b.js("const h = location.hash; const i = h.indexOf('?');"
                "return Object.fromEntries(new URLSearchParams(i < 0 ? '' : h.slice(i + 1)));")


def wait_rows(b, what, pred):
    return b.wait(what, lambda: (lambda r: r if r and pred(r) else None)(rows_now(b)))


def export_text(b):
    """Clicks the export button and returns the CSV the page saved (captured at createObjectURL)."""
    b.js("window.__csv = null; if (!window.__origURL) { window.__origURL = URL.createObjectURL;"
         " URL.createObjectURL = (blob) => { blob.arrayBuffer().then((a) => { window.__csv ="
         " Array.from(new Uint8Array(a)); }); return window.__origURL(blob); }; }")
    click(b, By.ID, "export")
    data = b.wait("the CSV export", lambda: b.js("return window.__csv"))
    return bytes(data)


def drive(b, url, token, outdir):
    origin = url.rstrip("/")
    d = b.driver
    d.get(origin + "/#token=" + token)
    b.wait_css("#terminals tbody tr[data-terminal]")
    # the token left the address bar (it never went to the server: it was a fragment)
    check("token" not in d.current_url, "token removed from the URL: " + d.current_url)
    check(b.js("return sessionStorage.getItem('mynaguard.token')") == token, "token in sessionStorage")

    # first screen: problems first, one page of 50 of the 58 terminals
    rows = rows_now(b)
    check(len(rows) == 50, "one page of 50: %d" % len(rows))
    check(rows[0] == "term-ng-01" and rows[1] == "term-stale", "non-compliant, then stale first: " + json.dumps(rows[:6]))
    check(set(rows[2:5]) == {"term-gap", "term-locked", "term-ok-03"} and rows[5] == "term-new",
          "then the lockout, the gap and the certificate, then no report: " + json.dumps(rows[:6]))
    check(b.text("#n-noncompliant").strip() == "1", "one non-compliant in the summary")
    check(b.text("#n-compliant").strip() == "56", "56 compliant (one of them stale)")
    check(b.text("#n-stale").strip() == "1", "one stale")
    check(b.text("#n-unknown").strip() == "1", "one without report")
    check(b.text("#n-problem").strip() == "6", "six with problems")
    check(b.text("#n-total").strip() == "58", "58 in all")
    check("コンプライアンス" in b.text("h1"), "Japanese by default")
    # the reason in plain Japanese with what to do, not the check id
    reason = b.text('tr[data-terminal="term-ng-01"] .failing')
    check("ログインにワンタイムコードが必須になっていません — /etc/pam.d" in reason, "Japanese reason: " + reason)
    # a certificate 10 days from expiry is a problem 30 days ahead (issue 13), compliant as it is
    cert = b.text('tr[data-terminal="term-ok-03"]')
    check("証明書の期限切れ間近" in cert and "端末証明書の有効期限が近い" in cert and "準拠" in cert,
          "the certificate near expiry is on the row: " + cert)
    b.screenshot(os.path.join(outdir, "dashboard-list.png"))

    # pages: the second has the other 8; Back returns to the first
    click(b, By.ID, "next")
    wait_rows(b, "page 2", lambda r: len(r) == 8)
    check(hash_params(b).get("page") == "2", "the page is in the address")
    d.back()
    wait_rows(b, "page 1 again", lambda r: len(r) == 50)

    # the non-compliant terminal in one click on its card
    click(b, By.ID, "card-noncompliant")
    wait_rows(b, "the non-compliant card", lambda r: r == ["term-ng-01"])
    check(hash_params(b).get("status") == "noncompliant", "the card's filter is in the address")
    check("active" in d.find_element(By.ID, "card-noncompliant").get_attribute("class"), "the card shows it is on")
    click(b, By.ID, "card-problem")
    wait_rows(b, "the problems card", lambda r: sorted(r) == ["term-gap", "term-locked", "term-new",
                                                                "term-ng-01", "term-ok-03", "term-stale"])
    b.screenshot(os.path.join(outdir, "dashboard-problems.png"))
    # CSV of exactly the filtered list: BOM, Japanese header, CRLF, the six rows in screen order
    raw = export_text(b)
    check(raw.startswith(b"\xef\xbb\xbf"), "CSV starts with a BOM")
    text = raw[3:].decode("utf-8")
    lines = text.split("\r\n")
    check(lines[0].startswith("端末,説明,状態"), "Japanese CSV header: " + lines[0])
    check(lines[-1] == "" and all("\n" not in ln for ln in lines), "CRLF line ends")
    check([ln.split(",")[0].strip('"') for ln in lines[1:-1]] == rows_now(b),
          "the CSV holds what is on screen: " + json.dumps(lines))

    # sortable columns: by terminal id, then reversed; Back undoes the sort
    click(b, By.ID, "card-all")
    wait_rows(b, "all terminals", lambda r: len(r) == 50 and r[0] == "term-ng-01")
    click(b, By.CSS_SELECTOR, 'button.sort[data-sort="id"]')
    wait_rows(b, "sorted by id", lambda r: r[0] == "term-gap" and r == sorted(r))
    click(b, By.CSS_SELECTOR, 'button.sort[data-sort="id"]')
    wait_rows(b, "sorted by id, descending", lambda r: r[0] == "term-stale" and r == sorted(r, reverse=True))
    check(hash_params(b) == {"status": "all", "sort": "id", "dir": "desc"}, "sort in the address: %s" % hash_params(b))
    d.back()
    wait_rows(b, "Back: ascending again", lambda r: r[0] == "term-gap")

    # search by the policy's description (department, desk), and a filter that matches nothing
    b.js("location.hash = '#/terminals?q=' + encodeURIComponent('市民課')")
    wait_rows(b, "search by description", lambda r: r == ["term-ok-01", "term-ok-02"])
    b.js("location.hash = '#/terminals?q=no-such-terminal'")
    b.wait("the empty message", lambda: b.js("return !document.getElementById('empty').hidden"))
    empty = b.text("#empty")
    check("条件に一致する端末はありません" in empty and "まだ報告" not in empty, "a filter that matches nothing says so: " + empty)
    b.screenshot(os.path.join(outdir, "dashboard-nomatch.png"))

    # a terminal has its own address; Back returns to the list as it was
    b.js("location.hash = '#/terminals?status=noncompliant'")
    wait_rows(b, "non-compliant again", lambda r: r == ["term-ng-01"])
    click(b, By.CSS_SELECTOR, 'tr[data-terminal="term-ng-01"] a.termlink')
    b.wait_css("#detail:not([hidden])")
    b.wait("the detail is filled", lambda: b.text("#detail-title") == "term-ng-01"
           and "mfa.pam_stack" in (b.text("#checks") or "") and b.text("#events"))
    check(d.current_url.endswith("#/terminal/term-ng-01"), "the terminal's address: " + d.current_url)
    checks = b.text("#checks")
    check("mfa.pam_stack" in checks and "不合格" in checks, "failing check shown")
    check("2-6-3-a" in checks and "多要素認証" in checks, "clause id with its meaning")
    check("ログインにワンタイムコードが必須になっていません" in checks, "the reason on the detail")

    # hostile strings from the terminal: text, never markup
    ev = b.text("#events")
    check("<script>window.__pwned=1</script>" in ev, "the <script> shows as text")
    check("<img src=x onerror=window.__pwned=2>" in ev, "the <img> shows as text")
    check(b.js("return document.querySelectorAll('#events script, #events img, #event-list script, #event-list img').length") == 0,
          "no element was created")
    check(b.js("return window.__pwned === undefined"), "nothing ran")
    check("一般ユーザーからの通知" in ev, "an unprivileged-marked event says so")
    marked = b.js("return Array.from(document.querySelectorAll('#events tr'))"
                  ".filter((r) => r.textContent.includes('一般ユーザー')).length")
    check(marked == 1, "only the marked event is marked: %s" % marked)
    b.screenshot(os.path.join(outdir, "dashboard.png"))
    # a reload keeps the view (a bookmark works)
    d.refresh()
    b.wait("the detail after a reload", lambda: b.text("#detail-title") == "term-ng-01"
           and b.js("return !document.getElementById('detail').hidden"))
    d.back()
    wait_rows(b, "Back to the filtered list", lambda r: r == ["term-ng-01"])
    check(hash_params(b) == {"status": "noncompliant"}, "the list's filter is back: %s" % hash_params(b))

    # events: one readable Japanese line per event, filtered by the server; raw JSON one click away
    b.js("location.hash = '#/events?kind=auth.locked'")
    b.wait_css("#eventview:not([hidden])")
    b.wait("the lockout line", lambda: b.js("return document.querySelectorAll('#event-list li').length") == 1
           and "ロックアウトされました" in (b.text("#event-list") or ""))
    line = b.text("#event-list li .line")
    check(line == "clerk7 がコードの入力誤りでロックアウトされました（login tty1）", "who, what, where: " + line)
    check("term-locked" in b.text("#event-list li .evhead"), "which terminal")
    check("2-6-3-a" in b.text("#event-list li .rule"), "which rule")
    check(not b.js("return document.querySelector('#event-list li details').open"), "raw JSON folded")
    click(b, By.CSS_SELECTOR, "#event-list li details summary")
    b.wait("raw JSON shown", lambda: b.js("return document.querySelector('#event-list li details').open"))
    # the 10 s refresh (here: the button) keeps it open
    b.js("document.querySelector('#event-list li').dataset.old = '1'")
    click(b, By.ID, "refresh")
    b.wait("the list redrawn", lambda: b.js("const li = document.querySelector('#event-list li');"
                                            " return li && !li.dataset.old"))
    check(b.js("return document.querySelector('#event-list li details').open"), "raw JSON still open after a refresh")
    raw_json = json.loads(b.text("#event-list li details pre"))
    check(raw_json["data"]["user"] == "clerk7" and raw_json["kind"] == "auth.locked", "the raw event")
    b.screenshot(os.path.join(outdir, "dashboard-events.png"))
    # by terminal: newest first, USB block in words
    b.js("location.hash = '#/events?terminal=term-ng-01'")
    b.wait("the terminal's events", lambda: b.js("return document.querySelectorAll('#event-list li').length") == 4)
    kinds = b.js("return Array.from(document.querySelectorAll('#event-list li')).map((li) => li.dataset.kind)")
    check(kinds == ["auth.failure", "auth.failure", "usb.blocked", "compliance"], "newest first: %s" % kinds)
    usb = b.js("return document.querySelector('#event-list li[data-kind=\"usb.blocked\"] .line').textContent")
    check(usb.startswith("USB 機器 ") and "を遮断" in usb and "0781:" in usb, "the USB line: " + usb)
    # a date range in the past: nothing, and the page says so
    b.js("location.hash = '#/events?since=2001-01-01&until=2001-01-31'")
    b.wait("no events in 2001", lambda: b.js("return !document.getElementById('ev-empty').hidden"))
    # the CSV of the events on screen
    b.js("location.hash = '#/events?kind=auth.locked'")
    b.wait("the lockout line again", lambda: b.js("return document.querySelectorAll('#event-list li').length") == 1)
    raw = export_text(b)
    lines = raw[3:].decode("utf-8").split("\r\n")
    check(raw.startswith(b"\xef\xbb\xbf") and lines[0] == "端末,通番,発生時刻,受信時刻,種別,条項,概要,データ",
          "events CSV header: " + lines[0])
    check(len(lines) == 3 and lines[1].startswith('"term-locked"') and "ロックアウト (auth.locked)" in lines[1],
          "one lockout row: " + json.dumps(lines))

    # English switch, back to the list
    b.js("location.hash = '#/terminal/term-ng-01'")
    b.wait("the detail again", lambda: b.text("#detail-title") == "term-ng-01" and "mfa.pam_stack" in (b.text("#checks") or ""))
    click(b, By.ID, "lang")
    b.wait("English title", lambda: "Compliance dashboard" in b.text("h1"))
    b.wait("English checks", lambda: "fail" in b.text("#checks") and "multi-factor login" in b.text("#checks"))
    b.wait("English reason", lambda: "login does not require the one-time code" in b.text("#checks"))
    b.wait("English marker", lambda: "unprivileged sender" in b.text("#events"))
    click(b, By.ID, "back")
    b.wait_css("#list:not([hidden])")
    b.screenshot(os.path.join(outdir, "dashboard-en.png"))
    click(b, By.ID, "lang")
    b.wait("Japanese again", lambda: "コンプライアンス" in b.text("h1"))

    # the fleet views on a collector without [fleet]: they say so plainly, no error banner
    for view in ("requests", "exceptions", "ledger", "groups"):
        b.js("location.hash = '#/" + view + "'")
        b.wait("the fleet notice on " + view, lambda: b.js("return !document.getElementById('fleet-off').hidden"))
        check("[fleet]" in b.text("#fleet-off") and "設定されていません" in b.text("#fleet-off"), "fleet not configured: " + b.text("#fleet-off"))
        check(b.js("return document.getElementById('error').hidden && document.getElementById(arguments[0]).hidden",
                   view + "view"), "no error banner and no empty view on " + view)
    b.screenshot(os.path.join(outdir, "dashboard-fleet-off.png"))

    # retention: the period and the oldest event kept of every kind (GET /v1/retention)
    b.js("location.hash = '#/retention'")
    b.wait("the retention view", lambda: b.js(
        "const r = document.querySelector('#ret-table tr[data-kind=\"compliance\"]');"
        " return r && !document.getElementById('retentionview').hidden ? r.textContent : null"))
    row = b.js("return document.querySelector('#ret-table tr[data-kind=\"compliance\"]').textContent")
    check("400日" in row and "compliance" in row and b.text('#ret-table tr[data-kind="compliance"] .oldest') != "—",
          "compliance: the default period and an oldest kept event: " + row)
    check(b.text('#ret-table tr[data-kind="fleet.grant"] .oldest') == "—"
          and "最終廃棄処理" in b.text("#ret-state") and "訴訟ホールド" in b.text("#ret-hold"),
          "retention state: " + b.text("#ret-state") + " " + b.text("#ret-hold"))
    check(b.js("return document.getElementById('error').hidden && document.getElementById('summary').hidden"),
          "no error banner, no summary cards on the retention view")
    b.screenshot(os.path.join(outdir, "dashboard-retention.png"))

    # a wrong token sends the user back to the login form
    b.js("sessionStorage.setItem('mynaguard.token', 'wrong-token-wrong-token')")
    d.refresh()
    b.wait_css("#login:not([hidden])")

    b.collect_logs()
    ours = [u for doc, u in b.requests if doc.startswith(origin + "/")]
    external = [u for u in ours if not (u.startswith(origin + "/") or u.startswith(("data:", "blob:")))]
    b.problems += ["external request: " + u for u in external]
    check(any(u.startswith(origin + "/v1/") for u in ours), "the request log sees the dashboard's API calls")
    check(all("401" in p or "503" in p for p in b.problems),
          "no console errors, CSP violations or external requests: " + "; ".join(b.problems))


def seed(c, pki):
    for i in (1, 2, 3):
        name = "term-ok-%02d" % i
        # term-ok-03's certificate expires in 10 days: within [alerts] cert_warning (30 days)
        cert = pki.terminal(name, days=10) if i == 3 else pki.terminal(name)
        snap = compliance(name, 1)
        snap["data"]["description"] = "市民課 窓口%d" % i if i < 3 else "税務課"
        st, _, _ = c.post(cert, {"v": 1, "terminal": name, "events": [
            snap,
            event(name, 2, kind="auth.success", data={"user": "clerk%d" % i, "service": "login"}),
        ]})
        assert st == 200
    ng = pki.terminal("term-ng-01")
    st, _, _ = c.post(ng, {"v": 1, "terminal": "term-ng-01", "events": [
        compliance("term-ng-01", 1, failing=["mfa.pam_stack"]),
        event("term-ng-01", 2, kind="usb.blocked",
              data={"vendor": "0781", "product": "<script>window.__pwned=1</script>",
                    "serial": "<img src=x onerror=window.__pwned=2>"}),
        event("term-ng-01", 3, kind="auth.failure", data={"user": "taro", "service": "login",
                                                           "reason": "bad_code"}),
        # a local user's claim about root, marked by the agent (docs/spool.md)
        event("term-ng-01", 4, kind="auth.failure",
              data={"user": "root", "service": "login",
                    "sender": {"uid": 1000, "pid": 7, "unprivileged": True}}),
    ]})
    assert st == 200
    # stale: reports every second, then falls silent
    stale = pki.terminal("term-stale")
    st, _, _ = c.post(stale, {"v": 1, "terminal": "term-stale",
                              "events": [compliance("term-stale", 1, interval_s=1)]})
    assert st == 200
    # a clerk locked out after wrong codes; a terminal whose seq 2..4 never arrived, unannounced
    locked = pki.terminal("term-locked")
    st, _, _ = c.post(locked, {"v": 1, "terminal": "term-locked", "events": [
        compliance("term-locked", 1),
        event("term-locked", 2, kind="auth.locked",
              data={"user": "clerk7", "service": "login", "tty": "tty1", "reason": "locked"})]})
    assert st == 200
    gap = pki.terminal("term-gap")
    st, _, _ = c.post(gap, {"v": 1, "terminal": "term-gap", "events": [
        compliance("term-gap", 1), event("term-gap", 5, kind="agent.started", data={"version": "0.1.0"})]})
    assert st == 200
    # enough compliant terminals for a second page
    for i in range(50):
        name = "term-p-%02d" % i
        st, _, _ = c.post(pki.terminal(name), {"v": 1, "terminal": name, "events": [compliance(name, 1)]})
        assert st == 200
    # never sent a compliance report
    fresh = pki.terminal("term-new")
    st, _, _ = c.post(fresh, batch("term-new", [1], kind="agent.started", data={"version": "0.1.0"}))
    assert st == 200
    time.sleep(2.5)


def tools():
    """(chromium, chromedriver, artefact dir), or None (said why) when one is missing: skip, 77."""
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    chromedriver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
    missing = [what for what, ok in (
        ("chromium (" + chromium + ")", os.access(chromium, os.X_OK)),
        ("chromium-driver (" + chromedriver + ")", os.access(chromedriver, os.X_OK)),
        ("python3-selenium", webdriver is not None)) if not ok]
    if missing:
        print("skip: missing " + ", ".join(missing) + " (scripts/setup-deps.sh installs them)")
        return None
    outdir = os.environ.get("ARTEFACT_DIR", HERE)
    os.makedirs(outdir, exist_ok=True)
    return chromium, chromedriver, outdir


def with_browser(c, chromium, chromedriver, fn):
    """fn(browser) against the started collector c, which is stopped after; a failure (an
    assertion or the driver) is printed with the collector's log. Returns the exit code."""
    profile = tempfile.mkdtemp(prefix="mg-chromium-")
    b = None
    try:
        b = Browser(chromium, chromedriver, profile)
        fn(b)
        return 0
    except Exception as e:
        print("FAIL: %s: %s" % (type(e).__name__, e))
        traceback.print_exc(file=sys.stdout)
        print("collector log:\n" + c.logtext())
        return 1
    finally:
        if b is not None:
            b.close()
        c.stop()
        shutil.rmtree(profile, ignore_errors=True)


def run_browser(name, seed_fn, drive_fn, extra=""):
    """A real collector (with extra configuration), seeded by seed_fn(c, pki), and headless
    Chromium driven by drive_fn(browser, collector, origin, outdir). 0, 1, or 77 (skip)."""
    t = tools()
    if t is None:
        return 77
    chromium, chromedriver, outdir = t
    with TestDir(name) as d:
        pki = PKI(d)
        c = Collector(d, pki, extra=extra).start()
        try:
            seed_fn(c, pki)
        except Exception:
            c.stop()
            raise

        def run(b):
            drive_fn(b, c, "https://127.0.0.1:%d" % c.dashboard[1], outdir)
            print("ok; screenshots in", outdir)
        return with_browser(c, chromium, chromedriver, run)


def main():
    return run_browser("browser", seed, lambda b, c, origin, outdir: drive(b, origin, TOKEN, outdir))


if __name__ == "__main__":
    sys.exit(main())
