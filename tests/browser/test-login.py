#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Browser test of the dashboard's personal accounts (collector/auth.c, collector/web/app.js) in
# Debian's headless Chromium (the same driver as test-dashboard.py): the login form in Japanese,
# a wrong code refused, the right one logs in (an HttpOnly cookie the page cannot read, no token
# in storage), a change made through the page carries the CSRF token and is recorded with the
# person's name, a reload keeps the session, logout ends it, and an auditor with hide_personal
# sees no user names and can log out. Screenshots at 1366x768 are kept as test artefacts. Exit
# 77 when chromium, chromedriver or selenium are missing.
import base64
import hashlib
import hmac
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import PKI, Collector, TestDir, event  # noqa: E402
from fleetlib import call, fleet_conf, keygen  # noqa: E402

spec = importlib.util.spec_from_file_location("dashboard", os.path.join(HERE, "test-dashboard.py"))
dashboard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dashboard)
Browser, check, click, webdriver = dashboard.Browser, dashboard.check, dashboard.click, dashboard.webdriver
if webdriver is not None:
    from selenium.webdriver.common.by import By

ACCOUNTS = {}  # name -> [password, secret, last step]


def add(c, name, role, hide=False):
    pw = "pass-" + name + "-0123456789"
    r = subprocess.run([os.environ["COLLECTOR"], "--config", c.conf, "--account-add", name, "--role", role]
                       + (["--hide-personal"] if hide else []), input=pw + "\n", capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    secret = urllib.parse.parse_qs(urllib.parse.urlparse(r.stdout.strip()).query)["secret"][0]
    ACCOUNTS[name] = [pw, secret, 0]


def code(name):
    """A code of a step this account has not used, in the window of one step either side."""
    while True:
        cur = int(time.time()) // 30
        step = max(ACCOUNTS[name][2] + 1, cur)
        if step <= cur + 1:
            ACCOUNTS[name][2] = step
            key = base64.b32decode(ACCOUNTS[name][1] + "=" * (-len(ACCOUNTS[name][1]) % 8))
            mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
            o = mac[-1] & 15
            return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000)
        time.sleep(1)


def shot(b, path):
    """A 1366x768 PNG of the top of the page (what a 1366x768 screen shows first)."""
    data = base64.b64decode(b.cdp("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": 1366, "height": 768, "scale": 1}})["data"])
    check(data.startswith(b"\x89PNG\r\n\x1a\n") and struct.unpack(">II", data[16:24]) == (1366, 768),
          "a 1366x768 screenshot " + path)
    with open(path, "wb") as f:
        f.write(data)


def visible(b, id_):
    return b.js("const e = document.getElementById(arguments[0]); return !!e && !e.hidden;", id_)


def fill_login(b, name, password, otp):
    for id_, v in (("account-name", name), ("account-password", password), ("account-code", otp)):
        e = b.driver.find_element(By.ID, id_)
        e.clear()
        e.send_keys(v)
    click(b, By.CSS_SELECTOR, "#account-form button[type=submit]")


def page_status(b, path):
    return b.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {cache: 'no-store'}).then((r) => done(r.status), () => done(0));", path)


def drive(b, c, outdir):
    d = b.driver
    origin = "https://127.0.0.1:%d" % c.dashboard[1]
    d.get(origin + "/")
    b.wait_css("#login:not([hidden])")
    check(b.text("#login h2") == "ログイン", "the login form in Japanese: " + b.text("#login h2"))
    check("確認コード" in b.text("#account-form") and "パスワード" in b.text("#account-form"),
          "Japanese labels: " + b.text("#account-form"))
    check("スクリプト用トークン" in b.text("#login"), "the script token stays as a second way in")
    shot(b, os.path.join(outdir, "dashboard-login.png"))

    # a wrong code: refused, still on the form
    fill_login(b, "aki", ACCOUNTS["aki"][0], "000000" if code("aki") != "000000" else "111111")
    ACCOUNTS["aki"][2] -= 1  # that step was not used up
    b.wait("the refusal", lambda: visible(b, "error") and "違います" in b.text("#error"))
    check(visible(b, "login") and not visible(b, "main"), "still on the login form")

    fill_login(b, "aki", ACCOUNTS["aki"][0], code("aki"))
    b.wait_css("#terminals tbody tr[data-terminal]")
    check(b.text("#who") == "aki（管理者）", "who is logged in: " + repr(b.text("#who")))
    check("mg_session" not in b.js("return document.cookie"), "the session cookie is HttpOnly")
    check(b.js("return sessionStorage.getItem('mynaguard.token')") is None, "no token in storage")
    cookies = {ck["name"]: ck for ck in d.get_cookies()}
    ck = cookies.get("__Host-mg_session")
    check(ck and ck["secure"] and ck["httpOnly"] and ck.get("sameSite") == "Strict",
          "cookie flags as the browser keeps them: %r" % ck)
    shot(b, os.path.join(outdir, "dashboard-logged-in.png"))

    # a change through the page: the ledger form (the page sends X-CSRF-Token)
    b.js("location.hash = '#/ledger'")
    b.wait("the ledger view", lambda: visible(b, "ledgerview"))
    for id_, v in (("lg-number", "USB-0100"), ("lg-holder", "鈴木"), ("lg-department", "市民課"),
                   ("lg-model", "RUF3-K"), ("lg-vendor", "0781"), ("lg-product", "5581"),
                   ("lg-serial", "S100")):
        d.find_element(By.ID, id_).send_keys(v)
    click(b, By.ID, "ledger-submit")
    b.wait("the new row", lambda: "鈴木" in (b.text('#ledger-table tr[data-number="USB-0100"]') or ""))
    b.wait("the change is an event by aki", lambda: any(
        e["data"].get("by") == "aki" and e["data"].get("number") == "USB-0100"
        for e in call(c, "GET", "/v1/events?terminal=mynaguard-collector&kind=fleet.ledger")[1]["events"]))

    # a reload keeps the session (the CSRF token comes back from GET /v1/session)
    d.refresh()
    b.wait_css("#ledger-table")
    b.wait("logged in after a reload", lambda: b.text("#who") == "aki（管理者）")

    # the events view reads the account events in Japanese
    b.js("location.hash = '#/events?terminal=mynaguard-collector&kind=account.login'")
    b.wait("the login event", lambda: "aki（管理者）がダッシュボードにログインしました" in (b.text("#event-list") or ""))
    shot(b, os.path.join(outdir, "dashboard-account-events.png"))

    # logout: the form again, and the cookie no longer opens anything
    click(b, By.ID, "logout")
    b.wait_css("#login:not([hidden])")
    b.wait("logged out", lambda: page_status(b, "/v1/terminals") == 401)

    # an auditor with hide_personal: the user names are hidden
    b.js("location.hash = '#/terminals'")
    fill_login(b, "mika", ACCOUNTS["mika"][0], code("mika"))
    b.wait_css("#terminals tbody tr[data-terminal]")
    b.wait("the auditor", lambda: b.text("#who") == "mika（監査担当）")
    b.js("location.hash = '#/events?terminal=term-h'")
    b.wait("the event line", lambda: "ログインに失敗しました" in (b.text("#event-list") or ""))
    check("tanaka" not in b.text("#event-list") and "***" in b.text("#event-list"),
          "no user name for this auditor: " + b.text("#event-list"))
    shot(b, os.path.join(outdir, "dashboard-auditor-hidden.png"))

    # an auditor logs out too: the form again, and the cookie no longer opens anything
    click(b, By.ID, "logout")
    b.wait_css("#login:not([hidden])")
    b.wait("the auditor logged out", lambda: page_status(b, "/v1/terminals") == 401)

    b.collect_logs()
    check(all("401" in p or "403" in p for p in b.problems), "no console errors: " + "; ".join(b.problems))


def main():
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    chromedriver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
    if not (os.access(chromium, os.X_OK) and os.access(chromedriver, os.X_OK) and webdriver):
        print("skip: missing chromium, chromium-driver or python3-selenium (scripts/setup-deps.sh)")
        return 77
    outdir = os.environ.get("ARTEFACT_DIR", HERE)
    os.makedirs(outdir, exist_ok=True)
    with TestDir("browser-login") as d:
        pki = PKI(d)
        root_pem, root_pub, _ = keygen(d, "root")
        grant_pem, _, _ = keygen(d, "grant")
        c = Collector(d, pki)
        with open(c.conf, "a") as f:
            f.write(fleet_conf(grant_pem, root_pub))
        add(c, "aki", "admin")
        add(c, "mika", "auditor", hide=True)
        c.start()
        profile = tempfile.mkdtemp(prefix="mg-chromium-")
        b = None
        try:
            t = pki.terminal("term-h")
            st, _, _ = c.post(t, {"v": 1, "terminal": "term-h", "events": [
                event("term-h", 1, kind="auth.failure", data={"user": "tanaka", "service": "login"},
                      clause=["2-6-6"])]})
            assert st == 200
            b = Browser(chromium, chromedriver, profile)
            drive(b, c, outdir)
            print("ok; screenshots in", outdir)
        except Exception as e:
            print("FAIL: %s: %s" % (type(e).__name__, e))
            traceback.print_exc(file=sys.stdout)
            print("collector log:\n" + c.logtext()[-4000:])
            return 1
        finally:
            if b is not None:
                b.close()
            c.stop()
            shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
