#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Screenshots of every dashboard view at 1366x768 in Japanese, kept as test artefacts
# (screen-VIEW.png in the artefacts directory), and checked: a real collector with [fleet] and
# [alerts] (a local SMTP sink and webhook receiver, tests/collector/alertlib.py), seeded like
# test-dashboard.py and test-fleet-dashboard.py; headless Chromium visits the terminals, a
# terminal's detail, the events, the history, the requests, the exceptions, the media ledger,
# the groups, the central TOTP enrollments, the retention, the log review, the report and the
# alerts. For each view: no horizontal overflow (the page is no wider than the window), no
# visible "undefined", "NaN", "null", "[object Object]" or bare i18n key (of app.js's,
# review.js's or alerts.js's dictionaries), the
# heading in Japanese, and no JavaScript error (window.onerror, unhandled rejections,
# console.error, the console's severe entries). Exit 77 when chromium, chromedriver or
# selenium are missing.
import importlib.util
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from alertlib import SMTPSink, WebhookReceiver  # noqa: E402
from collectorlib import TOKEN, PKI, Collector, TestDir  # noqa: E402


def _load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


dash = _load("test_dashboard", "test-dashboard.py")
fleet = _load("test_fleet_dashboard", "test-fleet-dashboard.py")
check = dash.check
WIDTH = 1366

# (name, address, section id)
VIEWS = [
    ("terminals", "#/terminals", "list"),
    ("terminal", "#/terminal/term-ng-01", "detail"),
    ("events", "#/events", "eventview"),
    ("history", "#/history", "historyview"),
    ("requests", "#/requests", "requestsview"),
    ("exceptions", "#/exceptions", "exceptionsview"),
    ("ledger", "#/ledger", "ledgerview"),
    ("groups", "#/groups", "groupsview"),
    ("totp", "#/totp", "totpview"),
    ("retention", "#/retention", "retentionview"),
    ("review", "#/review", "reviewview"),
    ("report", "#/report", "reportview"),
    ("alerts", "#/alerts", "alertsview"),
]

# before any script of the page: every error and every fetch under way is counted
HOOKS = r"""
window.__errors = [];
window.__inflight = 0;
window.addEventListener('error', (e) => window.__errors.push('error: ' + e.message + ' ' +
  (e.filename || '') + ':' + (e.lineno || '')));
window.addEventListener('unhandledrejection', (e) => window.__errors.push('rejection: ' +
  (e.reason && (e.reason.stack || e.reason.message) || String(e.reason))));
const origError = console.error;
console.error = function (...a) { window.__errors.push('console.error: ' + a.join(' ')); return origError.apply(this, a); };
const origFetch = window.fetch;
window.fetch = function (...a) {
  window.__inflight++;
  return origFetch.apply(this, a).finally(() => { window.__inflight--; });
};
"""

# the visible text of the page: what the eye reads, hidden elements left out
FINDINGS = r"""
const bad = [];
const word = /(^|[^A-Za-z_])(undefined|NaN|null)(?![A-Za-z_])|\[object Object\]/;
const keys = new Set(arguments[0]);
const key = { test: (t) => keys.has(t) };
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const t = n.textContent.trim();
  const p = n.parentElement;
  if (!t || !p || p.closest('script, style, [hidden], details:not([open]) > :not(summary)')) continue;
  if (!p.getClientRects().length || getComputedStyle(p).visibility === 'hidden') continue;
  if (word.test(t)) bad.push('"' + t.slice(0, 120) + '" in <' + p.tagName.toLowerCase() + (p.id ? '#' + p.id : '') + '>');
  if (key.test(t)) bad.push('i18n key "' + t + '" in <' + p.tagName.toLowerCase() + (p.id ? '#' + p.id : '') + '>');
}
for (const e of document.querySelectorAll('input[placeholder], [title]')) {
  const v = e.getAttribute('placeholder') || e.getAttribute('title') || '';
  if (e.getClientRects().length && (word.test(v) || key.test(v))) bad.push('attribute "' + v + '"');
}
return bad;
"""

WIDE = r"""
const w = document.documentElement.clientWidth;
return Array.from(document.querySelectorAll('body *'))
  .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > w + 1)
  .slice(0, 5).map((e) => '<' + e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (e.className ? '.' + String(e.className).replace(/ /g, '.') : '') + '> right ' +
    Math.round(e.getBoundingClientRect().right));
"""

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def i18n_keys():
    """The snake_case keys of the dashboard's dictionaries (app.js, review.js, alerts.js): one
    of them on screen is a message that was never looked up. A data value such as a USB
    class (mass_storage) is not one."""
    web = os.path.join(HERE, "..", "..", "collector", "web")
    keys = set()
    for name in os.listdir(web):
        if name.endswith(".js"):
            with open(os.path.join(web, name), encoding="utf-8") as f:
                keys |= set(re.findall(r"\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\s*:", f.read()))
    check(len(keys) > 100, "the dictionaries' keys found: %d" % len(keys))
    return sorted(keys)


def settle(b):
    """Until no request has been under way for half a second, and a frame was drawn."""
    quiet = 0
    deadline = time.time() + dash.WAIT_S
    while quiet < 3:
        check(time.time() < deadline, "the page settles")
        quiet = quiet + 1 if b.js("return window.__inflight") == 0 else 0
        time.sleep(0.2)
    b.driver.execute_async_script("requestAnimationFrame(() => requestAnimationFrame(arguments[0]))")


def visit(b, origin, name, addr, section, outdir):
    d = b.driver
    d.execute_script("location.hash = arguments[0]", addr)
    b.wait("the %s view" % name, lambda: b.js(
        "const s = document.getElementById(arguments[0]); return !!s && !s.hidden && "
        "getComputedStyle(s).display !== 'none'", section))
    settle(b)
    d.execute_script("window.scrollTo(0, 0)")
    b.screenshot(os.path.join(outdir, "screen-%s.png" % name))
    problems = []
    lang = b.js("return document.documentElement.lang")
    if lang != "ja":
        problems.append("the page's language is %r" % lang)
    width = b.js("return document.scrollingElement.scrollWidth")
    if width > WIDTH:
        problems.append("horizontal overflow: %d px > %d (%s)" % (width, WIDTH, "; ".join(b.js(WIDE))))
    heading = b.js("const h = document.querySelector('#' + arguments[0] + ' h2');"
                   "return h ? h.innerText : null", section)
    if not heading or not JAPANESE.search(heading):
        problems.append("heading not in Japanese: %r" % heading)
    problems += b.js(FINDINGS, i18n_keys())
    errs = b.js("const e = window.__errors; window.__errors = []; return e")
    problems += errs
    b.collect_logs()
    problems += b.problems
    b.problems = []
    if b.js("return !document.getElementById('error').hidden"):
        problems.append("error banner: " + (b.text("#error") or ""))
    return ["%s: %s" % (name, p) for p in problems]


def drive(b, c, outdir):
    origin = "https://127.0.0.1:%d" % c.dashboard[1]
    b.cdp("Page.addScriptToEvaluateOnNewDocument", {"source": HOOKS})
    b.driver.get(origin + "/#token=" + TOKEN)
    b.wait_css("#terminals tbody tr[data-terminal]")
    check(b.js("return window.innerWidth") == WIDTH, "the window is %d px wide" % WIDTH)
    # the alert thread's round has run and sent: the alerts view has something to show
    b.wait("the alerts delivered", lambda: (lambda st, body: st == 200 and body["open"] > 0 and
                                            body["channels"]["webhook"]["recent"])(
        *c.get("/v1/alerts")[:2]))
    problems = []
    for name, addr, section in VIEWS:
        problems += visit(b, origin, name, addr, section, outdir)
    # the groups view names the grantable USB classes in plain words, not the policy's ids alone
    b.driver.execute_script("location.hash = '#/groups'")
    settle(b)
    check("記録媒体" in (b.text("#groupsview") or ""), "the USB class in Japanese: " + (b.text("#groupsview") or "")[:300])
    # the alerts view lists the seeded conditions in Japanese, and the channels' deliveries
    b.driver.execute_script("location.hash = '#/alerts'")
    settle(b)
    text = b.text("#alertsview") or ""
    check("ロックアウト" in text and "term-locked" in text, "the lockout listed: " + text[:400])
    check("非準拠" in text and "term-ng-01" in text, "the non-compliant terminal listed")
    check(b.js("return document.querySelectorAll('#al-open tbody tr').length") >= 4, "the open conditions")
    check(b.js("return document.querySelectorAll('#al-channels [data-channel=webhook] tbody tr').length") >= 1,
          "the webhook's deliveries")
    check("成功" in (b.text("#al-channels") or ""), "a delivery's result in Japanese")
    check(b.js("return document.getElementById('nav-alerts').classList.contains('active')"), "the nav link")
    check(not problems, "every view is clean:\n  " + "\n  ".join(problems))
    # English second: the alerts view and its nav link follow the language switch
    dash.click(b, dash.By.ID, "lang")
    b.wait("the alerts view in English", lambda: b.text("#alertsview h2") == "Alerts" and
           "Not compliant" in (b.text("#al-open") or "") and "sent" in (b.text("#al-channels") or ""))
    check(b.text("#nav-alerts") == "Alerts", "the nav link in English")
    check(b.text("#nav-review") == "Log review", "the review nav link in English: %r" % b.text("#nav-review"))
    check(not b.js(FINDINGS, i18n_keys()), "the English alerts view is clean")
    dash.click(b, dash.By.ID, "lang")
    b.wait("back in Japanese", lambda: b.text("#nav-alerts") == "警告")


def main():
    t = dash.tools()
    if t is None:
        return 77
    chromium, chromedriver, outdir = t
    sink, hook = SMTPSink().start(), WebhookReceiver()
    alerts = ("\n[alerts]\ninterval = 1s\ntimeout = 3s\nsmtp = smtp://127.0.0.1:%d\n"
              "from = mynaguard@city.test\nto = it-admin@city.test\nwebhook = %s\n"
              % (sink.port, hook.url))
    # the fleet test's collector, with [alerts] as well
    fleet.Collector = lambda d, pki: Collector(d, pki, extra=alerts)
    try:
        with TestDir("browser-screens") as d:
            pki = PKI(d)
            c, _ = fleet.setup_fleet(d, pki)
            try:
                dash.seed(c, pki)
            except Exception:
                c.stop()
                raise

            def run(b):
                drive(b, c, outdir)
                print("ok; screenshots screen-*.png in", outdir)
            return dash.with_browser(c, chromium, chromedriver, run)
    finally:
        sink.stop()
        hook.stop()


if __name__ == "__main__":
    sys.exit(main())
