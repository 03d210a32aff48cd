// SPDX-License-Identifier: MIT
// mynaguard-collector web dashboard: pulls the read-only API with the bearer token and renders it.
// Every string that came from a terminal goes into the page with textContent, never as markup.
'use strict';

(function () {
  const REFRESH_MS = 10000;
  const TOKEN_KEY = 'mynaguard.token';
  const LANG_KEY = 'mynaguard.lang';

  const I18N = {
    ja: {
      title: 'コンプライアンス ダッシュボード', refresh: '更新', export: 'CSV 出力', logout: 'ログアウト',
      login_title: 'アクセストークン', login: '表示する',
      login_help: 'コレクターの管理者から受け取ったトークンを入力してください。このタブを閉じると消去されます。',
      token: 'トークン', total: '端末', compliant: '準拠', noncompliant: '非準拠', stale: '報告途絶',
      unknown: '未報告', terminals: '端末一覧', filter: '絞り込み', only_problems: '問題のある端末のみ',
      col_terminal: '端末', col_status: '状態', col_last_seen: '最終受信', col_failing: '不合格のチェック（開始）',
      col_usb: 'USB遮断 24h', col_auth: 'ログイン失敗 24h', col_policy: 'ポリシー', col_clock: '時刻',
      col_gaps: '欠番', col_check: 'チェック', col_clauses: '条項', col_since: 'この状態になった時刻',
      col_detail: '詳細', col_range: '範囲', col_detected: '検出', col_announced: '端末の通知',
      col_time: '時刻', col_kind: '種別', col_data: '内容', back: '一覧へ戻る', checks: 'チェック結果',
      gaps: '通番の欠落', recent: '最近のイベント', empty: 'まだ報告した端末はありません。',
      updated: '更新 ', footer: '情報セキュリティポリシー 2-6-3-a（持ち出し不可設定・多要素認証）、2-6-7（監視）、2-7（監査及び自己点検）の証跡',
      st_compliant: '準拠', st_noncompliant: '非準拠', st_unknown: '未報告', st_stale: '報告途絶',
      pass: '合格', fail: '不合格', error: 'エラー', not_applicable: '対象外', yes: 'あり', no: 'なし',
      drift: 'ずれ', ok: '正常', none: '—', unauthorized: 'トークンが正しくありません。',
      failed: 'コレクターに接続できません: ', first_seen: '初回受信', last_seen: '最終受信',
      last_compliance: '最終チェック報告', policy_hash: 'ポリシーハッシュ', report_interval: '報告間隔',
      seconds: '秒', last_seq: '最終通番', clock: '時刻のずれ', conflicts: '通番の衝突', ms: 'ミリ秒',
      unprivileged: '一般ユーザーからの通知（本人以外について。失敗ログインに数えない）',
    },
    en: {
      title: 'Compliance dashboard', refresh: 'Refresh', export: 'Export CSV', logout: 'Log out',
      login_title: 'Access token', login: 'Show',
      login_help: 'Enter the token the collector administrator gave you. It is forgotten when this tab closes.',
      token: 'Token', total: 'Terminals', compliant: 'Compliant', noncompliant: 'Non-compliant', stale: 'Stale',
      unknown: 'No report yet', terminals: 'Terminals', filter: 'Filter', only_problems: 'Only terminals with problems',
      col_terminal: 'Terminal', col_status: 'Status', col_last_seen: 'Last seen', col_failing: 'Failing checks (since)',
      col_usb: 'USB blocked 24h', col_auth: 'Failed logins 24h', col_policy: 'Policy', col_clock: 'Clock',
      col_gaps: 'Gaps', col_check: 'Check', col_clauses: 'Clauses', col_since: 'In this state since',
      col_detail: 'Detail', col_range: 'Range', col_detected: 'Detected', col_announced: 'Announced by terminal',
      col_time: 'Time', col_kind: 'Kind', col_data: 'Data', back: 'Back to the list', checks: 'Checks',
      gaps: 'Sequence gaps', recent: 'Recent events', empty: 'No terminal has reported yet.',
      updated: 'Updated ', footer: 'Evidence for the information-security policy 2-6-3-a (no data carried out, multi-factor login), 2-6-7 (monitoring), 2-7 (audit and self-inspection)',
      st_compliant: 'Compliant', st_noncompliant: 'Non-compliant', st_unknown: 'No report', st_stale: 'Stale',
      pass: 'pass', fail: 'fail', error: 'error', not_applicable: 'n/a', yes: 'yes', no: 'no',
      drift: 'drift', ok: 'ok', none: '—', unauthorized: 'The token is not valid.',
      failed: 'Cannot reach the collector: ', first_seen: 'First seen', last_seen: 'Last seen',
      last_compliance: 'Last compliance report', policy_hash: 'Policy hash', report_interval: 'Report interval',
      seconds: 's', last_seq: 'Last seq', clock: 'Clock offset', conflicts: 'Seq conflicts', ms: 'ms',
      unprivileged: 'unprivileged sender (about another user; not counted as a failed login)',
    },
  };

  // policy-clauses.md: the clauses a terminal can evidence.
  const CLAUSES = {
    '2-2-6': ['機密性：許可された者だけが情報にアクセスできる', 'Confidentiality: only those allowed can access information'],
    '2-2-7': ['完全性：情報が破壊・改ざん・消去されない', 'Integrity: information is not destroyed, altered or erased'],
    '2-2-8': ['可用性：必要な時に中断なくアクセスできる', 'Availability: authorized people can access it when needed'],
    '2-3-1': ['脅威：不正アクセス・内部不正・漏えい', 'Threats: unauthorized access, insider misconduct, leakage'],
    '2-3-2': ['脅威：情報資産の無断持ち出し・設定不備', 'Threats: unauthorized carrying out of information, misconfiguration'],
    '2-6-3-a': ['マイナンバー利用事務系：端末からの情報持ち出し不可設定・端末への多要素認証', 'My Number segment: no data carried out from terminals; multi-factor login on terminals'],
    '2-6-4': ['物理的セキュリティ（電磁的記録媒体の管理）', 'Physical security (removable media)'],
    '2-6-6': ['技術的セキュリティ：アクセス制御・不正プログラム対策', 'Technical security: access control, malware countermeasures'],
    '2-6-7': ['運用：情報システムの監視・ポリシー遵守状況の確認', 'Operations: monitoring, checking compliance with the policy'],
    '2-7': ['監査及び自己点検', 'Audit and self-inspection'],
    '2-8': ['監査結果を踏まえたポリシーの見直し', 'Review of the policy after audit'],
    '3-2-1': ['組織体制（CISO・情報システム管理者の役割）', 'Organisation and roles'],
  };

  const CHECKS = {
    'usb.default_deny': ['USB の既定拒否（ルートハブと udev 規則）', 'USB default deny (root hubs and udev rule)'],
    'usb.no_unapproved_storage': ['許可されていない記憶媒体が有効になっていない', 'No unapproved storage is authorized'],
    'mfa.pam_stack': ['PAM で多要素認証が必須', 'PAM requires the second factor'],
    'mfa.enrollment': ['全利用者がワンタイムコードを登録済み', 'Every user has enrolled a one-time code'],
    'time.synchronized': ['時刻同期', 'Clock synchronized'],
    'agent.integrity': ['エージェントと設定の完全性', 'Agent and configuration integrity'],
    'net.isolation': ['ネットワーク分離', 'Network isolation'],
  };

  const KINDS = {
    'usb.blocked': ['USB 遮断', 'USB blocked'], 'usb.allowed': ['USB 許可', 'USB allowed'],
    'usb.removed': ['USB 取り外し', 'USB removed'], 'auth.success': ['ログイン成功', 'Login success'],
    'auth.failure': ['ログイン失敗', 'Login failure'], 'auth.replay': ['コード再利用の拒否', 'Code replay refused'],
    'auth.locked': ['ロックアウト', 'Locked out'], 'agent.started': ['エージェント起動', 'Agent started'],
    'agent.stopped': ['エージェント停止', 'Agent stopped'], 'spool.dropped': ['スプール溢れ', 'Spool dropped events'],
    'compliance': ['チェック報告', 'Compliance report'],
  };

  let lang = localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'ja';
  let token = null;
  let current = null; // terminal shown in detail
  let last = null; // last /v1/terminals answer
  let timer = null;

  const $ = (id) => document.getElementById(id);
  const t = (k) => I18N[lang][k] !== undefined ? I18N[lang][k] : k;
  const pick = (table, key) => table[key] ? table[key][lang === 'ja' ? 0 : 1] : '';

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function fmtTime(iso) {
    if (!iso) return t('none');
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    return d.toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB', { hour12: false });
  }

  function applyLang() {
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-i18n]').forEach((e) => { e.textContent = t(e.dataset.i18n); });
    const b = $('lang');
    b.textContent = lang === 'ja' ? 'English' : '日本語';
    b.lang = lang === 'ja' ? 'en' : 'ja';
    document.title = 'mynaguard — ' + t('title');
  }

  function showError(msg) {
    const e = $('error');
    if (!msg) { e.hidden = true; e.textContent = ''; return; }
    e.textContent = msg;
    e.hidden = false;
  }

  function showLogin(msg) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $('main').hidden = true;
    $('login').hidden = false;
    showError(msg || '');
    if (timer) { clearInterval(timer); timer = null; }
  }

  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' });
    if (r.status === 401) { const e = new Error('401'); e.unauthorized = true; throw e; }
    if (!r.ok) {
      let reason = r.status + '';
      try { reason += ' ' + (await r.json()).error; } catch (_) { /* not JSON */ }
      throw new Error(reason);
    }
    return r;
  }

  function statusBadge(term) {
    const span = el('span', t('st_' + term.status), 'badge st-' + term.status);
    const frag = document.createDocumentFragment();
    frag.appendChild(span);
    if (term.stale) frag.appendChild(el('span', t('st_stale'), 'badge st-stale'));
    return frag;
  }

  function clauseList(clauses) {
    const ul = el('ul', null, 'clauses');
    (clauses || []).forEach((c) => {
      const li = el('li');
      li.appendChild(el('code', c));
      const meaning = pick(CLAUSES, c);
      if (meaning) li.appendChild(el('span', ' ' + meaning, 'meaning'));
      ul.appendChild(li);
    });
    return ul;
  }

  function checkName(id) {
    const frag = document.createDocumentFragment();
    frag.appendChild(el('code', id));
    const name = pick(CHECKS, id);
    if (name) frag.appendChild(el('div', name, 'meaning'));
    return frag;
  }

  function renderSummary(s) {
    $('n-total').textContent = s.total;
    $('n-compliant').textContent = s.compliant;
    $('n-noncompliant').textContent = s.noncompliant;
    $('n-stale').textContent = s.stale;
    $('n-unknown').textContent = s.unknown;
  }

  function renderTable() {
    if (!last) return;
    const tbody = $('terminals').tBodies[0];
    const q = $('filter').value.trim().toLowerCase();
    const onlyProblems = $('only-problems').checked;
    const rows = document.createDocumentFragment();
    let shown = 0;
    last.terminals.forEach((term) => {
      if (q && !term.id.toLowerCase().includes(q)) return;
      if (onlyProblems && term.status === 'compliant' && !term.stale && !term.clock_drift) return;
      const tr = el('tr', null, 'row st-' + term.status + (term.stale ? ' is-stale' : ''));
      tr.dataset.terminal = term.id;
      tr.tabIndex = 0;
      const idCell = el('td');
      const a = el('a', term.id, 'termlink');
      a.href = '#';
      a.addEventListener('click', (ev) => { ev.preventDefault(); openDetail(term.id); });
      idCell.appendChild(a);
      tr.appendChild(idCell);
      const st = el('td');
      st.appendChild(statusBadge(term));
      tr.appendChild(st);
      tr.appendChild(el('td', fmtTime(term.last_seen)));
      const fc = el('td');
      if (term.failing.length === 0) fc.textContent = t('none');
      term.failing.forEach((f) => {
        const d = el('div', null, 'failing');
        d.appendChild(el('code', f.id));
        d.appendChild(el('span', ' (' + fmtTime(f.since) + ')', 'since'));
        fc.appendChild(d);
      });
      tr.appendChild(fc);
      tr.appendChild(el('td', term.usb_blocked_24h, 'num' + (term.usb_blocked_24h ? ' warn' : '')));
      tr.appendChild(el('td', term.auth_failures_24h, 'num' + (term.auth_failures_24h ? ' warn' : '')));
      const ph = el('td', term.policy_hash ? term.policy_hash.replace(/^sha256:/, '').slice(0, 12) : t('none'), 'hash');
      if (term.policy_hash) ph.title = term.policy_hash;
      tr.appendChild(ph);
      tr.appendChild(el('td', term.clock_drift ? t('drift') : t('ok'), term.clock_drift ? 'warn' : ''));
      tr.appendChild(el('td', term.gaps, 'num' + (term.gaps_unannounced ? ' warn' : '')));
      tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') openDetail(term.id); });
      rows.appendChild(tr);
      shown++;
    });
    tbody.replaceChildren(rows);
    $('empty').hidden = shown !== 0;
  }

  function fact(dl, key, value) {
    dl.appendChild(el('dt', t(key)));
    dl.appendChild(el('dd', value));
  }

  function renderDetail(term) {
    $('detail-title').textContent = term.id;
    const badge = $('detail-status');
    badge.replaceChildren(statusBadge(term));
    const dl = $('detail-facts');
    dl.replaceChildren();
    fact(dl, 'first_seen', fmtTime(term.first_seen));
    fact(dl, 'last_seen', fmtTime(term.last_seen));
    fact(dl, 'last_compliance', fmtTime(term.last_compliance));
    fact(dl, 'policy_hash', term.policy_hash || t('none'));
    fact(dl, 'report_interval', term.report_interval_s + ' ' + t('seconds'));
    fact(dl, 'last_seq', term.last_seq);
    fact(dl, 'clock', term.clock_drift_ms + ' ' + t('ms') + (term.clock_drift ? ' (' + t('drift') + ')' : ''));
    fact(dl, 'col_usb', term.usb_blocked_24h);
    fact(dl, 'col_auth', term.auth_failures_24h);
    if (term.seq_conflicts) fact(dl, 'conflicts', term.seq_conflicts);

    const checks = document.createDocumentFragment();
    term.checks.forEach((c) => {
      const tr = el('tr', null, 'check ck-' + c.status);
      const name = el('td');
      name.appendChild(checkName(c.id));
      tr.appendChild(name);
      const stc = el('td');
      stc.appendChild(el('span', t(c.status) || c.status, 'badge ck-' + c.status));
      tr.appendChild(stc);
      const cl = el('td');
      cl.appendChild(clauseList(c.clause));
      tr.appendChild(cl);
      tr.appendChild(el('td', fmtTime(c.since)));
      tr.appendChild(el('td', c.detail || ''));
      checks.appendChild(tr);
    });
    $('checks').tBodies[0].replaceChildren(checks);

    const gaps = document.createDocumentFragment();
    term.gap_list.forEach((g) => {
      const tr = el('tr', null, g.announced ? '' : 'warn');
      tr.appendChild(el('td', g.first === g.last ? String(g.first) : g.first + '–' + g.last));
      tr.appendChild(el('td', fmtTime(g.detected_at)));
      tr.appendChild(el('td', g.announced ? t('yes') : t('no')));
      gaps.appendChild(tr);
    });
    if (term.gap_list.length === 0) {
      const tr = el('tr');
      const td = el('td', t('none'));
      td.colSpan = 3;
      tr.appendChild(td);
      gaps.appendChild(tr);
    }
    $('gaps').tBodies[0].replaceChildren(gaps);

    const evs = document.createDocumentFragment();
    term.recent_events.forEach((e) => {
      const tr = el('tr', null, 'ev ev-' + e.kind.replace('.', '-'));
      tr.appendChild(el('td', e.seq, 'num'));
      tr.appendChild(el('td', fmtTime(e.ts)));
      const k = el('td');
      k.appendChild(el('code', e.kind));
      const kn = pick(KINDS, e.kind);
      if (kn) k.appendChild(el('div', kn, 'meaning'));
      // a non-root process reported about someone else: the agent marked it, say so
      const snd = e.data && e.data.sender;
      if (snd && snd.unprivileged === true) k.appendChild(el('div', t('unprivileged'), 'meaning warn'));
      tr.appendChild(k);
      tr.appendChild(el('td', (e.clause || []).join(' ')));
      // the terminal's own data: shown as text, exactly as it arrived
      tr.appendChild(el('td', JSON.stringify(e.data), 'data'));
      evs.appendChild(tr);
    });
    $('events').tBodies[0].replaceChildren(evs);
  }

  async function loadDetail(id) {
    const r = await api('/v1/terminals/' + encodeURIComponent(id));
    renderDetail(await r.json());
  }

  async function openDetail(id) {
    current = id;
    try {
      await loadDetail(id);
      $('list').hidden = true;
      $('detail').hidden = false;
      window.scrollTo(0, 0);
    } catch (e) { handleError(e); }
  }

  function closeDetail() {
    current = null;
    $('detail').hidden = true;
    $('list').hidden = false;
  }

  function handleError(e) {
    if (e.unauthorized) showLogin(t('unauthorized'));
    else showError(t('failed') + e.message);
  }

  async function refresh() {
    if (!token) return;
    try {
      const r = await api('/v1/terminals');
      last = await r.json();
      renderSummary(last.summary);
      renderTable();
      if (current) await loadDetail(current);
      $('updated').textContent = t('updated') + fmtTime(last.generated_at);
      showError('');
    } catch (e) { handleError(e); }
  }

  function start() {
    $('login').hidden = true;
    $('main').hidden = false;
    refresh();
    if (!timer) timer = setInterval(refresh, REFRESH_MS);
  }

  async function exportCsv() {
    try {
      const r = await api('/v1/export.csv');
      const blob = await r.blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = 'mynaguard-events.csv';
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    } catch (e) { handleError(e); }
  }

  function init() {
    applyLang();
    // #token=... in the address is read once and removed (a fragment never reaches the server);
    // the token then lives in this tab's sessionStorage only.
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search);
    }
    token = sessionStorage.getItem(TOKEN_KEY);

    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('token-input').value.trim();
      if (!v) return;
      token = v;
      sessionStorage.setItem(TOKEN_KEY, v);
      $('token-input').value = '';
      start();
    });
    $('lang').addEventListener('click', () => {
      lang = lang === 'ja' ? 'en' : 'ja';
      localStorage.setItem(LANG_KEY, lang);
      applyLang();
      refresh();
    });
    $('refresh').addEventListener('click', refresh);
    $('export').addEventListener('click', exportCsv);
    $('logout').addEventListener('click', () => showLogin(''));
    $('back').addEventListener('click', closeDetail);
    $('filter').addEventListener('input', renderTable);
    $('only-problems').addEventListener('change', renderTable);

    if (token) start();
    else showLogin('');
  }

  document.addEventListener('DOMContentLoaded', init);
})();
