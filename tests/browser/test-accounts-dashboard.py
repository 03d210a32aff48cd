#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Browser test of the administrators' account page (collector/web/accounts.js, /v1/accounts) in
# Debian's headless Chromium (the driver of test-dashboard.py, the login of test-login.py): the
# link is shown to an administrator only; an account created on the page shows its QR code and
# key once, and the new person logs in with a code of that key; a reset shows a new one; a
# disabled account can no longer log in; each change is an account.* event by the admin; an
# auditor does not see the link and gets 403 at #/accounts. Screenshots at 1366x768 are kept.
# Exit 77 when chromium, chromedriver or selenium are missing.
import importlib.util
import os
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import PKI, Collector, TestDir  # noqa: E402
from fleetlib import call  # noqa: E402

spec = importlib.util.spec_from_file_location("login", os.path.join(HERE, "test-login.py"))
login = importlib.util.module_from_spec(spec)
spec.loader.exec_module(login)
Browser, check, click, webdriver = login.Browser, login.check, login.click, login.webdriver
ACCOUNTS, add, code, fill_login, shot, visible = (login.ACCOUNTS, login.add, login.code,
                                                  login.fill_login, login.shot, login.visible)
if webdriver is not None:
    from selenium.webdriver.common.by import By


def account_events(c, kind):
    return call(c, "GET", "/v1/events?terminal=mynaguard-collector&kind=" + kind)[1]["events"]


def log_in(b, name):
    b.js("location.hash = '#/terminals'")
    b.wait_css("#login:not([hidden])")
    fill_login(b, name, ACCOUNTS[name][0], code(name))
    b.wait("logged in as " + name, lambda: (b.text("#who") or "").startswith(name + "（"))


def drive(b, c, outdir):
    d = b.driver
    d.get("https://127.0.0.1:%d/" % c.dashboard[1])
    b.wait_css("#login:not([hidden])")
    log_in(b, "aki")
    b.wait("the link for an administrator", lambda: visible(b, "nav-accounts"))
    check(b.text("#nav-accounts") == "アカウント", "the link in Japanese: " + b.text("#nav-accounts"))
    click(b, By.ID, "nav-accounts")
    b.wait("the accounts view", lambda: visible(b, "accountsview"))
    b.wait("the list", lambda: "mika" in (b.text("#ac-table") or ""))
    check("監査担当" in b.text("#ac-table"), "roles in Japanese: " + b.text("#ac-table"))

    # create: the QR code and the key, once
    d.find_element(By.ID, "ac-name").send_keys("yui")
    d.find_element(By.CSS_SELECTOR, "#ac-role option[value=approver]").click()
    d.find_element(By.ID, "ac-password").send_keys("yui-first-password-1")
    click(b, By.ID, "ac-submit")
    b.wait("the QR code", lambda: visible(b, "ac-qr") and b.js(
        "const i = document.getElementById('ac-qr-img'); return i.complete && i.naturalWidth > 0;"))
    check("yui" in b.text("#ac-qr-title"), "the QR code's title: " + b.text("#ac-qr-title"))
    key = b.text("#ac-qr-key").replace(" ", "")
    check(len(key) >= 32, "the key for manual entry: " + key)
    b.wait("yui listed", lambda: "yui" in b.text("#ac-table") and "承認者" in b.text("#ac-table"))
    shot(b, os.path.join(outdir, "dashboard-accounts-created.png"))
    click(b, By.ID, "ac-qr-done")
    check(not visible(b, "ac-qr") and not b.js(
        "return document.getElementById('ac-qr-img').getAttribute('src')"), "the QR code is gone")
    b.wait("the creation is an event by aki", lambda: any(
        e["data"].get("name") == "yui" and e["data"].get("by") == "aki"
        for e in account_events(c, "account.created")))

    # the new person logs in with a code of that key
    ACCOUNTS["yui"] = ["yui-first-password-1", key, 0]
    click(b, By.ID, "logout")
    log_in(b, "yui")
    b.wait("no link for an approver", lambda: not visible(b, "nav-accounts"))
    b.js("location.hash = '#/accounts'")
    b.wait("403 for an approver", lambda: visible(b, "error") and "403" in b.text("#error"))
    click(b, By.ID, "logout")

    # reset and disable, as the admin
    log_in(b, "aki")
    b.js("location.hash = '#/accounts'")
    b.wait("the list", lambda: "yui" in (b.text("#ac-table") or ""))
    row = "//table[@id='ac-table']//tr[td[1]='yui']"
    d.find_element(By.XPATH, row + "//button[1]").click()
    b.wait("the reset form", lambda: visible(b, "ac-reset"))
    d.find_element(By.ID, "ac-reset-password").send_keys("yui-second-pass-22")
    click(b, By.CSS_SELECTOR, "#ac-reset-form button[type=submit]")
    b.wait("a new QR code", lambda: visible(b, "ac-qr") and b.text("#ac-qr-key").replace(" ", "") != key)
    click(b, By.ID, "ac-qr-done")
    b.js("window.confirm = () => true")
    d.find_element(By.XPATH, row + "//button[2]").click()
    b.wait("disabled", lambda: b.js(  # the table is drawn again at each refresh: read it afresh
        "const r = [...document.querySelectorAll('#ac-table tbody tr')]"
        ".find((tr) => tr.cells[0].textContent === 'yui'); return r && r.cells[3].textContent;") == "無効")
    b.wait("reset and disable are events by aki", lambda: any(
        e["data"].get("action") == "reset" and e["data"].get("by") == "aki"
        for e in account_events(c, "account.created")) and any(
        e["data"].get("name") == "yui" and e["data"].get("by") == "aki"
        for e in account_events(c, "account.disabled")))
    shot(b, os.path.join(outdir, "dashboard-accounts.png"))

    # an auditor: no link, 403 at the address
    click(b, By.ID, "logout")
    log_in(b, "mika")
    b.wait("no link for an auditor", lambda: not visible(b, "nav-accounts"))
    b.js("location.hash = '#/accounts'")
    b.wait("403 for an auditor", lambda: visible(b, "error") and "403" in b.text("#error"))
    b.collect_logs()
    check(all("401" in p or "403" in p for p in b.problems), "no console errors: " + "; ".join(b.problems))


def main():
    tools = (os.environ.get("CHROMIUM", "/usr/bin/chromium"),
             os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    if webdriver is None or not all(os.access(p, os.X_OK) for p in tools):
        print("skip: missing chromium, chromium-driver or python3-selenium (scripts/setup-deps.sh)")
        return 77
    outdir = os.environ.get("ARTEFACT_DIR", HERE)
    os.makedirs(outdir, exist_ok=True)
    with TestDir("browser-accounts") as d, tempfile.TemporaryDirectory(prefix="mg-chromium-") as profile:
        c = Collector(d, PKI(d))
        add(c, "aki", "admin")
        add(c, "mika", "auditor", hide=True)
        c.start()
        b = None
        try:
            b = Browser(tools[0], tools[1], profile)
            drive(b, c, outdir)
        except Exception:
            traceback.print_exc(file=sys.stdout)
            print("collector log:\n" + c.logtext()[-4000:])
            return 1
        finally:
            if b is not None:
                b.close()
            c.stop()
    print("ok; screenshots in", outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
