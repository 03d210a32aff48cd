// SPDX-License-Identifier: MIT
// Drives Debian's headless Chromium (playwright-core) through the collector's web dashboard:
// the token comes in the URL fragment, the non-compliant terminal is found and opened, a
// <script> sent by a terminal shows as text, and screenshots are saved as test artefacts.
// Usage: node dashboard.mjs URL TOKEN OUTDIR
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [url, token, outdir] = process.argv.slice(2);
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-chromium-'));
const problems = [];

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  ignoreHTTPSErrors: true, // the test's throwaway CA
  viewport: { width: 1400, height: 900 },
  locale: 'ja-JP',
  timezoneId: 'Asia/Tokyo',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith(new URL(url).origin) && !r.url().startsWith('data:') && !r.url().startsWith('blob:'))
      problems.push('external request: ' + r.url());
  });

  await page.goto(url + '/#token=' + encodeURIComponent(token));
  await page.waitForSelector('#terminals tbody tr[data-terminal]');
  // the token left the address bar (it never went to the server: it was a fragment)
  check(!page.url().includes('token'), 'token removed from the URL: ' + page.url());
  check(await page.evaluate(() => sessionStorage.getItem('mynaguard.token')) === token, 'token in sessionStorage');

  const rows = await page.$$eval('#terminals tbody tr', (trs) => trs.map((tr) => [tr.dataset.terminal, tr.className]));
  check(rows.length === 6, 'six terminals listed: ' + JSON.stringify(rows));
  check((await page.textContent('#n-noncompliant')).trim() === '1', 'one non-compliant in the summary');
  check((await page.textContent('#n-compliant')).trim() === '4', 'four compliant (one of them stale)');
  check((await page.textContent('#n-stale')).trim() === '1', 'one stale');
  check((await page.textContent('#n-unknown')).trim() === '1', 'one without report');
  check((await page.textContent('h1')).includes('コンプライアンス'), 'Japanese by default');

  const bad = rows.filter(([, cls]) => cls.includes('st-noncompliant'));
  check(bad.length === 1 && bad[0][0] === 'term-ng-01', 'the non-compliant terminal: ' + JSON.stringify(bad));
  await page.screenshot({ path: path.join(outdir, 'dashboard-list.png'), fullPage: true });

  await page.click('tr[data-terminal="term-ng-01"] a.termlink');
  await page.waitForSelector('#detail:not([hidden])');
  check((await page.textContent('#detail-title')) === 'term-ng-01', 'detail title');
  const checksText = await page.textContent('#checks');
  check(checksText.includes('mfa.pam_stack') && checksText.includes('不合格'), 'failing check shown');
  check(checksText.includes('2-6-3-a') && checksText.includes('多要素認証'), 'clause id with its meaning');

  // hostile strings from the terminal: text, never markup
  const evText = await page.textContent('#events');
  check(evText.includes('<script>window.__pwned=1</script>'), 'the <script> shows as text');
  check(evText.includes('<img src=x onerror=window.__pwned=2>'), 'the <img> shows as text');
  check(await page.$$eval('#events script, #events img', (n) => n.length) === 0, 'no element was created');
  check(await page.evaluate(() => window.__pwned === undefined), 'nothing ran');
  check(evText.includes('一般ユーザーからの通知'), 'an unprivileged-marked event says so');
  check((await page.$$eval('#events tr', (rows) => rows.filter((r) => r.textContent.includes('一般ユーザー')).length)) === 1,
    'only the marked event is marked');
  await page.screenshot({ path: path.join(outdir, 'dashboard.png'), fullPage: true });

  // English switch, back to the list
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('h1').textContent.includes('Compliance dashboard'));
  await page.waitForFunction(() => document.querySelector('#checks').textContent.includes('fail')
    && document.querySelector('#checks').textContent.includes('multi-factor login'));
  await page.waitForFunction(() => document.querySelector('#events').textContent.includes('unprivileged sender'));
  await page.click('#back');
  await page.waitForSelector('#list:not([hidden])');
  await page.screenshot({ path: path.join(outdir, 'dashboard-en.png'), fullPage: true });

  // a wrong token sends the user back to the login form
  await page.evaluate(() => sessionStorage.setItem('mynaguard.token', 'wrong-token-wrong-token'));
  await page.reload();
  await page.waitForSelector('#login:not([hidden])');

  check(problems.length === 0 || problems.every((p) => p.includes('401')), 'no console errors, CSP violations or external requests: ' + problems.join('; '));
  console.log('ok');
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
