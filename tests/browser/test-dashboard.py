#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Browser test of the collector's web dashboard: seeds a real collector through the real ingest
# API (mTLS), then drives Debian's headless Chromium through chromium-driver with Debian's
# python3-selenium. Everything comes from apt (scripts/setup-deps.sh): no Node.js, no npm, no
# download at test time. The token comes in the URL fragment, the non-compliant terminal is
# found and opened, a <script> sent by a terminal shows as text, and screenshots are saved as
# test artefacts. Exit 77 (skip, which scripts/test.sh refuses unless expected) when chromium,
# chromedriver or selenium are missing.
import base64
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import PKI, Collector, TestDir, TOKEN, batch, compliance, event  # noqa: E402

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
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
                  "--window-size=1400,900", "--user-data-dir=" + profile):
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


def drive(b, url, token, outdir):
    origin = url.rstrip("/")
    d = b.driver
    d.get(origin + "/#token=" + token)
    b.wait_css("#terminals tbody tr[data-terminal]")
    # the token left the address bar (it never went to the server: it was a fragment)
    check("token" not in d.current_url, "token removed from the URL: " + d.current_url)
    check(b.js("return sessionStorage.getItem('mynaguard.token')") == token, "token in sessionStorage")

    rows = b.js("return Array.from(document.querySelectorAll('#terminals tbody tr'))"
                ".map((tr) => [tr.dataset.terminal, tr.className]);")
    check(len(rows) == 6, "six terminals listed: " + json.dumps(rows))
    check(b.text("#n-noncompliant").strip() == "1", "one non-compliant in the summary")
    check(b.text("#n-compliant").strip() == "4", "four compliant (one of them stale)")
    check(b.text("#n-stale").strip() == "1", "one stale")
    check(b.text("#n-unknown").strip() == "1", "one without report")
    check("コンプライアンス" in b.text("h1"), "Japanese by default")

    bad = [r for r in rows if "st-noncompliant" in (r[1] or "")]
    check(len(bad) == 1 and bad[0][0] == "term-ng-01", "the non-compliant terminal: " + json.dumps(bad))
    b.screenshot(os.path.join(outdir, "dashboard-list.png"))

    d.find_element(By.CSS_SELECTOR, 'tr[data-terminal="term-ng-01"] a.termlink').click()
    b.wait_css("#detail:not([hidden])")
    b.wait("the detail is filled", lambda: b.text("#detail-title") == "term-ng-01"
           and "mfa.pam_stack" in (b.text("#checks") or "") and b.text("#events"))
    checks = b.text("#checks")
    check("mfa.pam_stack" in checks and "不合格" in checks, "failing check shown")
    check("2-6-3-a" in checks and "多要素認証" in checks, "clause id with its meaning")

    # hostile strings from the terminal: text, never markup
    ev = b.text("#events")
    check("<script>window.__pwned=1</script>" in ev, "the <script> shows as text")
    check("<img src=x onerror=window.__pwned=2>" in ev, "the <img> shows as text")
    check(b.js("return document.querySelectorAll('#events script, #events img').length") == 0,
          "no element was created")
    check(b.js("return window.__pwned === undefined"), "nothing ran")
    check("一般ユーザーからの通知" in ev, "an unprivileged-marked event says so")
    marked = b.js("return Array.from(document.querySelectorAll('#events tr'))"
                  ".filter((r) => r.textContent.includes('一般ユーザー')).length")
    check(marked == 1, "only the marked event is marked: %s" % marked)
    b.screenshot(os.path.join(outdir, "dashboard.png"))

    # English switch, back to the list
    d.find_element(By.ID, "lang").click()
    b.wait("English title", lambda: "Compliance dashboard" in b.text("h1"))
    b.wait("English checks", lambda: "fail" in b.text("#checks") and "multi-factor login" in b.text("#checks"))
    b.wait("English marker", lambda: "unprivileged sender" in b.text("#events"))
    d.find_element(By.ID, "back").click()
    b.wait_css("#list:not([hidden])")
    b.screenshot(os.path.join(outdir, "dashboard-en.png"))

    # a wrong token sends the user back to the login form
    b.js("sessionStorage.setItem('mynaguard.token', 'wrong-token-wrong-token')")
    d.refresh()
    b.wait_css("#login:not([hidden])")

    b.collect_logs()
    ours = [u for doc, u in b.requests if doc.startswith(origin + "/")]
    external = [u for u in ours if not (u.startswith(origin + "/") or u.startswith(("data:", "blob:")))]
    b.problems += ["external request: " + u for u in external]
    check(any(u.startswith(origin + "/v1/") for u in ours), "the request log sees the dashboard's API calls")
    check(all("401" in p for p in b.problems),
          "no console errors, CSP violations or external requests: " + "; ".join(b.problems))


def seed(c, pki):
    for i in (1, 2, 3):
        name = "term-ok-%02d" % i
        cert = pki.terminal(name)
        st, _, _ = c.post(cert, {"v": 1, "terminal": name, "events": [
            compliance(name, 1),
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
    # never sent a compliance report
    fresh = pki.terminal("term-new")
    st, _, _ = c.post(fresh, batch("term-new", [1], kind="agent.started", data={"version": "0.1.0"}))
    assert st == 200
    time.sleep(2.5)


def main():
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    chromedriver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
    missing = [what for what, ok in (
        ("chromium (" + chromium + ")", os.access(chromium, os.X_OK)),
        ("chromium-driver (" + chromedriver + ")", os.access(chromedriver, os.X_OK)),
        ("python3-selenium", webdriver is not None)) if not ok]
    if missing:
        print("skip: missing " + ", ".join(missing) + " (scripts/setup-deps.sh installs them)")
        return 77
    outdir = os.environ.get("ARTEFACT_DIR", HERE)
    os.makedirs(outdir, exist_ok=True)

    with TestDir("browser") as d:
        pki = PKI(d)
        c = Collector(d, pki).start()
        profile = tempfile.mkdtemp(prefix="mg-chromium-")
        b = None
        try:
            seed(c, pki)
            b = Browser(chromium, chromedriver, profile)
            drive(b, "https://127.0.0.1:%d" % c.dashboard[1], TOKEN, outdir)
            print("ok; screenshots in", outdir)
        except Exception as e:  # an assertion or the driver: both fail the test, with the log
            print("FAIL: %s: %s" % (type(e).__name__, e))
            print("collector log:\n" + c.logtext())
            return 1
        finally:
            if b is not None:
                b.close()
            c.stop()
            shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
