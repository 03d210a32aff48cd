// SPDX-License-Identifier: MIT
// mynaguard web dashboard: the administrators' account page (#/accounts): the personal accounts,
// creating one (its enrollment QR code shown this once), reset and disable, all through
// /v1/accounts (mynaguard-collector(8), ACCOUNTS) with the session's CSRF token. Registered with
// app.js through window.mynaguardViews; the link is shown to administrators only.
'use strict';

(function () {
  const T = {
    ja: {
      nav: 'アカウント', title: 'アカウント',
      help: 'ダッシュボードを使う人ごとのアカウントです。作成と再発行のときだけ確認コードの QR コードが表示されます。本人の認証アプリで読み取ってもらってください。変更はすべてイベント（account.*）として記録されます。',
      name: '名前', role: '役割', hide: '個人情報を隠す', state: '状態', created: '作成', tokens: 'トークン', actions: '操作',
      role_admin: '管理者', role_approver: '承認者', role_auditor: '監査担当',
      active: '有効', disabled: '無効', locked: 'ロック中', yes: 'はい', no: '—',
      create_title: 'アカウントの作成', password: '初期パスワード（12 文字以上）', create_btn: '作成',
      reset_btn: 'パスワードと確認コードを再発行', disable_btn: '無効にする',
      reset_title: '再発行', reset_password: '新しいパスワード（12 文字以上）', cancel: 'やめる',
      confirm_disable: (n) => n + ' を無効にします。ログイン中のセッションとトークンはすぐに使えなくなります。よろしいですか？',
      qr_title: (n) => n + ' の確認コード（この一度だけ表示されます）',
      qr_help: '本人の認証アプリでこの QR コードを読み取ってもらい、閉じてください。読み取れない場合は次のキーを手で入力します：',
      qr_done: '読み取りが済んだので閉じる', done_disable: (n) => n + ' を無効にしました。', none: 'アカウントはありません。'
    },
    en: {
      nav: 'Accounts', title: 'Accounts',
      help: 'One account per person who uses the dashboard. The QR code of the one-time codes is shown only when an account is created or reset: have the person scan it into their authenticator app. Every change is recorded as an event (account.*).',
      name: 'Name', role: 'Role', hide: 'Hide personal data', state: 'State', created: 'Created', tokens: 'Tokens', actions: 'Actions',
      role_admin: 'administrator', role_approver: 'approver', role_auditor: 'auditor',
      active: 'active', disabled: 'disabled', locked: 'locked', yes: 'yes', no: '—',
      create_title: 'Create an account', password: 'First password (12 characters or more)', create_btn: 'Create',
      reset_btn: 'Reset password and code', disable_btn: 'Disable',
      reset_title: 'Reset', reset_password: 'New password (12 characters or more)', cancel: 'Cancel',
      confirm_disable: (n) => 'Disable ' + n + '? Its sessions and tokens stop working at once.',
      qr_title: (n) => 'The one-time code of ' + n + ' (shown this once)',
      qr_help: 'Have the person scan this QR code into their authenticator app, then close it. If it cannot be scanned, enter this key by hand:',
      qr_done: 'Scanned: close', done_disable: (n) => n + ' is disabled.', none: 'No accounts.'
    }
  };
  const ROLES = ['auditor', 'approver', 'admin'];
  const $ = (id) => document.getElementById(id);
  let C = null; // the newest ctx from app.js

  const tr = () => T[C ? C.lang : (document.documentElement.lang === 'en' ? 'en' : 'ja')];

  function labels() {
    document.querySelectorAll('[data-ac]').forEach((e) => { e.textContent = tr()[e.dataset.ac]; });
    const sel = $('ac-role');
    const cur = sel.value || 'auditor';
    sel.replaceChildren(...ROLES.map((r) => new Option(tr()['role_' + r], r)));
    sel.value = cur;
  }

  function fail(e, box) {
    if (e.unauthorized) { C.handleError(e); return; }
    box.textContent = e.reason || e.message;
    box.hidden = false;
  }

  // The enrollment: its QR code (the collector's SVG, as an image: no markup of it enters the
  // page) and the key for manual entry; gone when closed or when the page is left.
  function showEnrollment(out) {
    const key = new URL(out.otpauth).searchParams.get('secret') || '';
    $('ac-qr-title').textContent = tr().qr_title(out.name);
    $('ac-qr-img').src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(out.qr_svg);
    $('ac-qr-key').textContent = key.replace(/(.{4})/g, '$1 ').trim();
    $('ac-qr').hidden = false;
  }

  function hideEnrollment() {
    $('ac-qr-img').removeAttribute('src');
    $('ac-qr-key').textContent = '';
    $('ac-qr').hidden = true;
  }

  function render(list) {
    const L = tr();
    const tb = $('ac-table').querySelector('tbody');
    const now = Date.now() / 1000;
    tb.replaceChildren(...list.map((a) => {
      const row = C.el('tr');
      const state = a.disabled ? L.disabled : (a.locked_until > now ? L.locked : L.active);
      [a.name, L['role_' + a.role] || a.role, a.hide_personal ? L.yes : L.no, state,
        C.fmtTime(new Date(a.created * 1000).toISOString()), String(a.tokens)].forEach((v) => row.appendChild(C.el('td', v)));
      row.children[3].className = a.disabled ? 'bad' : '';
      const act = C.el('td');
      const reset = C.el('button', L.reset_btn);
      reset.type = 'button';
      reset.addEventListener('click', () => {
        $('ac-reset-name').textContent = a.name;
        $('ac-reset').dataset.name = a.name;
        $('ac-reset').hidden = false;
        $('ac-reset-password').focus();
      });
      act.appendChild(reset);
      if (!a.disabled) {
        const dis = C.el('button', L.disable_btn);
        dis.type = 'button';
        dis.addEventListener('click', () => disable(a.name));
        act.appendChild(dis);
      }
      row.appendChild(act);
      return row;
    }));
    $('ac-none').hidden = list.length > 0;
  }

  async function load(ctx) {
    C = ctx;
    wire();
    labels();
    const r = await ctx.api('/v1/accounts');
    render((await r.json()).accounts);
  }

  async function create(ev) {
    ev.preventDefault();
    const err = $('ac-error');
    err.hidden = true;
    $('ac-done').hidden = true;
    const body = { name: $('ac-name').value.trim(), role: $('ac-role').value, password: $('ac-password').value,
      hide_personal: $('ac-hide').checked };
    $('ac-submit').disabled = true;
    try {
      const out = await C.apiSend('POST', '/v1/accounts', body);
      $('ac-form').reset();
      showEnrollment(out);
      await C.refresh();
    } catch (e) { fail(e, err); } finally { $('ac-submit').disabled = false; }
  }

  async function reset(ev) {
    ev.preventDefault();
    const err = $('ac-reset-error');
    err.hidden = true;
    const name = $('ac-reset').dataset.name;
    try {
      const out = await C.apiSend('POST', '/v1/accounts/' + encodeURIComponent(name) + '/reset',
        { password: $('ac-reset-password').value });
      $('ac-reset-form').reset();
      $('ac-reset').hidden = true;
      showEnrollment(out);
      await C.refresh();
    } catch (e) { fail(e, err); }
  }

  async function disable(name) {
    if (!window.confirm(tr().confirm_disable(name))) return;
    const err = $('ac-error');
    err.hidden = true;
    try {
      await C.apiSend('POST', '/v1/accounts/' + encodeURIComponent(name) + '/disable');
      $('ac-done').textContent = tr().done_disable(name);
      $('ac-done').hidden = false;
      await C.refresh();
    } catch (e) { fail(e, err); }
  }

  let wired = false;
  function wire() {
    if (wired) return;
    wired = true;
    $('ac-form').addEventListener('submit', create);
    $('ac-reset-form').addEventListener('submit', reset);
    $('ac-reset-cancel').addEventListener('click', () => { $('ac-reset-form').reset(); $('ac-reset').hidden = true; });
    $('ac-qr-done').addEventListener('click', hideEnrollment);
  }

  // The link is the administrators': asked of the session whenever who is logged in changes
  // (app.js writes it into #who); a script token's page (no #who) reaches #/accounts by address.
  async function navForRole() {
    const who = $('who');
    let admin = false;
    if (who && !who.hidden && who.textContent) {
      try {
        const r = await fetch('/v1/session', { cache: 'no-store', credentials: 'same-origin' });
        if (r.ok) admin = (await r.json()).role === 'admin';
      } catch (_) { /* not known: not shown */ }
    }
    $('nav-accounts').hidden = !admin;
  }

  document.addEventListener('DOMContentLoaded', () => {
    const who = $('who');
    if (who) new MutationObserver(navForRole).observe(who, { childList: true, characterData: true, subtree: true, attributes: true });
    navForRole();
  });
  // leaving the page: the QR code goes with it
  window.addEventListener('hashchange', () => {
    if (!/^#\/accounts/.test(location.hash)) hideEnrollment();
  });

  window.mynaguardViews = Object.assign(window.mynaguardViews || {}, { accounts: { load } });
})();
