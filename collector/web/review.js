// SPDX-License-Identifier: MIT
// mynaguard web dashboard: the log review with its sign-off (#/review?period=YYYY-MM) and the
// printable monthly self-inspection report (#/report?month=YYYY-MM&group=G), docs/evidence.md.
// Registered with app.js through window.mynaguardViews; app.js calls load(ctx) on each refresh.
'use strict';

(function () {
  const T = {
    ja: {
      off_hours: '時間外のログイン', failure_burst: 'ログイン失敗の集中', lockout: 'ロックアウト',
      usb_unregistered: '台帳にない USB 機器', sequence_gap: '証跡の欠落（連番の抜け）',
      compliance_drift: '適合から不適合への変化',
      terminal: '端末', time: '日時', detail: '内容', none: '該当なし',
      items: (n) => '点検対象 ' + n + ' 件', signed: '承認済み', unsigned: '未承認',
      done: (p) => p + ' の点検を承認しました。証跡として記録されます。',
      by: '点検者', at: '日時', comment: '所見', period: '期間', count: '件数',
      user: '利用者', new_device: '初めて見る機器', gap: (g) => '連番 ' + g.first + '〜' + g.last + ' が届いていません' + (g.announced ? '（端末が通知済み）' : ''),
      burst: (b) => b.count + ' 回失敗（' + b.user + '）', failing: (f) => '不適合: ' + f.join(', '),
      report_title: '自己点検報告書', report_help: '印刷（A4）すると PDF にもできます。',
      nav_review: 'ログの点検', nav_report: '自己点検報告書', review_title: 'ログの点検',
      review_help: '期間内の要確認事項です。すべて確認したら所見を書いて承認してください。承認は証跡（review.signed）として記録されます。',
      comment_label: '所見（任意）', signoff_btn: '点検済みとして承認', past: '過去の承認',
      no_signoffs: 'まだ承認はありません。', evidence_dl: 'この期間の監査証跡をダウンロード',
      report_link: '自己点検報告書を開く', print: '印刷', month: '対象月', group: 'グループ（空欄は全端末）',
      computing: '集計中…', as_of: (t) => '集計時刻 ' + t,
      changed_note: '集計の後に届いたログでこの一覧は変わります。再集計してから承認してください。', recount: '再集計'
    },
    en: {
      off_hours: 'Logins outside office hours', failure_burst: 'Bursts of failed logins', lockout: 'Lockouts',
      usb_unregistered: 'USB devices not in the ledger', sequence_gap: 'Missing evidence (sequence gaps)',
      compliance_drift: 'Compliant → non-compliant',
      terminal: 'Terminal', time: 'Time', detail: 'Detail', none: 'none',
      items: (n) => n + ' items to review', signed: 'signed off', unsigned: 'not signed off',
      done: (p) => 'The review of ' + p + ' is signed off and kept as evidence.',
      by: 'Reviewer', at: 'Signed at', comment: 'Comment', period: 'Period', count: 'Items',
      user: 'user', new_device: 'first seen', gap: (g) => 'seq ' + g.first + '–' + g.last + ' missing' + (g.announced ? ' (announced)' : ''),
      burst: (b) => b.count + ' failures (' + b.user + ')', failing: (f) => 'failing: ' + f.join(', '),
      report_title: 'Self-inspection report', report_help: 'Print it (A4) to keep a PDF.',
      nav_review: 'Log review', nav_report: 'Report', review_title: 'Log review',
      review_help: 'What needs a human look in the period. Once reviewed, write a comment and sign off; the sign-off is kept as evidence (review.signed).',
      comment_label: 'Comment (optional)', signoff_btn: 'Sign off as reviewed', past: 'Past sign-offs',
      no_signoffs: 'No sign-offs yet.', evidence_dl: 'Download the evidence bundle of this period',
      report_link: 'Open the self-inspection report', print: 'Print', month: 'Month', group: 'Group (empty: all terminals)',
      computing: 'Counting…', as_of: (t) => 'As of ' + t,
      changed_note: 'Logs stored since then change this list: count again before signing off.', recount: 'Count again'
    }
  };
  const CATS = ['off_hours', 'failure_burst', 'lockout', 'usb_unregistered', 'sequence_gap', 'compliance_drift'];
  const $ = (id) => document.getElementById(id);
  let C = null; // the newest ctx from app.js
  let current = null; // the list on screen: {period, items_sha256, items}
  let reportKey = null;
  let poll = null; // the next look while the collector makes the list

  function lastMonth() {
    const d = new Date(Date.now() + 9 * 3600 * 1000); // Japan time
    d.setUTCDate(1);
    d.setUTCDate(0);
    return d.toISOString().slice(0, 7);
  }

  function detail(ctx, it) {
    const tr = T[ctx.lang];
    switch (it.category) {
      case 'off_hours': case 'lockout': return tr.user + ': ' + (it.user || '-');
      case 'failure_burst': return tr.burst(it);
      case 'usb_unregistered': return it.vendor + ':' + it.product + ' ' + (it.product_name || '') + ' S/N ' + it.serial +
        ' ×' + it.count + (it.new ? ' — ' + tr.new_device : '');
      case 'sequence_gap': return tr.gap(it);
      case 'compliance_drift': return tr.failing(it.failing || []);
      default: return '';
    }
  }

  function renderList(ctx, data) {
    const tr = T[ctx.lang];
    const f = document.createDocumentFragment();
    CATS.forEach((c) => {
      const items = data.items.filter((i) => i.category === c);
      const box = ctx.el('section', undefined, 'rv-cat');
      box.dataset.category = c;
      const h = ctx.el('h3', tr[c] + ' ');
      h.appendChild(ctx.el('span', String(data.categories[c] || 0), 'chip' + (items.length ? ' bad' : '')));
      box.appendChild(h);
      if (!items.length) {
        box.appendChild(ctx.el('p', tr.none, 'empty'));
      } else {
        const table = ctx.el('table');
        const head = ctx.el('tr');
        [tr.terminal, tr.time, tr.detail].forEach((x) => head.appendChild(ctx.el('th', x)));
        table.appendChild(ctx.el('thead')).appendChild(head);
        const body = table.appendChild(ctx.el('tbody'));
        items.forEach((it) => {
          const row = ctx.el('tr');
          const a = ctx.el('a', it.terminal);
          a.href = '#/terminal/' + encodeURIComponent(it.terminal);
          row.appendChild(ctx.el('td')).appendChild(a);
          row.appendChild(ctx.el('td', ctx.fmtTime(it.ts)));
          row.appendChild(ctx.el('td', detail(ctx, it)));
          body.appendChild(row);
        });
        box.appendChild(table);
      }
      f.appendChild(box);
    });
    $('rv-list').replaceChildren(f);
    $('rv-count').textContent = tr.items(data.items.length);
    const mine = data.signoffs.filter((s) => s.period === data.period);
    $('rv-state').textContent = mine.length ? tr.signed : tr.unsigned;
    $('rv-state').className = 'badge ' + (mine.length ? 'st-compliant' : 'st-unknown');

    const rows = document.createDocumentFragment();
    data.signoffs.forEach((s) => {
      const row = ctx.el('tr');
      row.appendChild(ctx.el('td', s.period));
      row.appendChild(ctx.el('td', s.reviewer));
      row.appendChild(ctx.el('td', ctx.fmtTime(s.ts)));
      row.appendChild(ctx.el('td', String(s.items), 'num'));
      row.appendChild(ctx.el('td', s.comment, 'comment'));
      rows.appendChild(row);
    });
    $('rv-past').querySelector('tbody').replaceChildren(rows);
    $('rv-past-none').hidden = data.signoffs.length !== 0;
    $('rv-report').href = '#/report?month=' + encodeURIComponent(data.period.slice(0, 7));
  }

  // The collector answers from the list it made of the period (as_of, 集計時刻), 202 while it makes
  // the first one; the page looks again each second until it is there (docs/evidence.md).
  async function loadReview(ctx, refresh) {
    const tr = T[ctx.lang];
    const period = ctx.params.get('period') || lastMonth();
    if ($('rv-period').value !== period && /^\d{4}-\d{2}$/.test(period)) $('rv-period').value = period;
    clearTimeout(poll);
    poll = null;
    const r = await ctx.api('/v1/review?async=1&period=' + encodeURIComponent(period) + (refresh ? '&refresh=1' : ''));
    const data = await r.json();
    $('rv-title-period').textContent = data.period;
    if (r.status === 202 || data.refreshing) {
      poll = setTimeout(() => {
        poll = null;
        if (/^#\/review/.test(location.hash) && C) loadReview(C).catch((e) => C.handleError(e));
      }, 1000);
    }
    if (r.status === 202) {
      current = null;
      $('rv-list').replaceChildren(ctx.el('p', tr.computing, 'empty'));
      $('rv-count').textContent = '';
      $('rv-asof').textContent = '';
      $('rv-changed').hidden = true;
      return;
    }
    current = data;
    renderList(ctx, data);
    $('rv-asof').textContent = tr.as_of(ctx.fmtTime(data.as_of)) + (data.refreshing ? ' — ' + tr.computing : '');
    $('rv-changed').hidden = !data.changed || data.refreshing;
  }

  async function signOff(ctx, ev) {
    ev.preventDefault();
    const err = $('rv-error');
    err.hidden = true;
    if (!current) return;
    $('rv-submit').disabled = true;
    try {
      await ctx.apiSend('POST', '/v1/review/signoff', {
        period: current.period, items_sha256: current.items_sha256,
        items: current.items.length, comment: $('rv-comment').value
      });
      $('rv-comment').value = '';
      $('rv-done').textContent = T[ctx.lang].done(current.period);
      $('rv-done').hidden = false;
      // the event reaches the store through the writer: show it once it is there
      for (let i = 0; i < 20; i++) {
        await loadReview(ctx);
        if (current.signoffs.some((s) => s.period === current.period && s.items_sha256 === current.items_sha256)) break;
        await new Promise((res) => setTimeout(res, 250));
      }
    } catch (e) {
      if (e.unauthorized) ctx.handleError(e);
      else { err.textContent = e.reason || e.message; err.hidden = false; }
    } finally { $('rv-submit').disabled = false; }
  }

  async function loadReport(ctx) {
    const month = ctx.params.get('month') || lastMonth();
    const group = ctx.params.get('group') || '';
    if ($('rp-month').value !== month) $('rp-month').value = month;
    if ($('rp-group').value !== group && document.activeElement !== $('rp-group')) $('rp-group').value = group;
    const key = ctx.lang + '|' + month + '|' + group;
    if (key === reportKey) return; // a report does not change while it is read
    const q = new URLSearchParams({ month });
    if (group) q.set('group', group);
    const r = await ctx.api('/r/selfcheck?' + q.toString());
    const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
    const main = doc.querySelector('main.report');
    $('rp-body').replaceChildren(main ? document.importNode(main, true) : ctx.el('p', '-'));
    reportKey = key;
  }

  function labels(ctx) {
    document.querySelectorAll('[data-rv]').forEach((e) => { e.textContent = T[ctx.lang][e.dataset.rv]; });
  }

  async function downloadEvidence() {
    if (!current) return;
    const d = new Date(Date.parse(current.to) - 1 + 9 * 3600 * 1000);
    const q = new URLSearchParams({ from: new Date(Date.parse(current.from) + 9 * 3600 * 1000).toISOString().slice(0, 10),
      to: d.toISOString().slice(0, 10) });
    try {
      const r = await C.api('/v1/evidence?' + q.toString());
      const a = document.createElement('a');
      a.href = URL.createObjectURL(await r.blob());
      a.download = 'mynaguard-evidence-' + current.period + '.jsonl';
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    } catch (e) { C.handleError(e); }
  }

  let wired = false;
  function wire(ctx) {
    C = ctx;
    if (!$('rv-asof')) { // the list's time and a note when the store changed it since
      const asOf = ctx.el('span', '', 'filter');
      asOf.id = 'rv-asof';
      $('rv-count').after(asOf);
      const box = ctx.el('p', undefined, 'notice');
      box.id = 'rv-changed';
      box.hidden = true;
      box.appendChild(ctx.el('span')).dataset.rv = 'changed_note';
      box.append(' ');
      const again = box.appendChild(ctx.el('button'));
      again.type = 'button';
      again.id = 'rv-recount';
      again.dataset.rv = 'recount';
      $('rv-list').before(box);
    }
    labels(ctx);
    if (wired) return;
    wired = true;
    $('rv-recount').addEventListener('click', () => loadReview(C, true).catch((e) => C.handleError(e)));
    $('rv-form').addEventListener('submit', (ev) => signOff(C, ev));
    $('rv-evidence').addEventListener('click', downloadEvidence);
    $('rv-period').addEventListener('change', () => {
      if ($('rv-period').value) location.hash = '#/review?period=' + $('rv-period').value;
    });
    const toReport = () => {
      const q = new URLSearchParams({ month: $('rp-month').value || lastMonth() });
      if ($('rp-group').value.trim()) q.set('group', $('rp-group').value.trim());
      location.hash = '#/report?' + q.toString();
    };
    $('rp-month').addEventListener('change', toReport);
    $('rp-group').addEventListener('change', toReport);
    $('rp-print').addEventListener('click', () => window.print());
  }

  window.mynaguardViews = Object.assign(window.mynaguardViews || {}, {
    review: { load: async (ctx) => { wire(ctx); document.body.classList.remove('printing-report'); await loadReview(ctx); } },
    report: {
      load: async (ctx) => {
        wire(ctx);
        document.body.classList.add('printing-report');
        try { await loadReport(ctx); } catch (e) { reportKey = null; throw e; }
      }
    }
  });
  // the nav links' text follows the language even before a view is opened (as alerts.js)
  const navLabels = () => labels({ lang: document.documentElement.lang === 'en' ? 'en' : 'ja' });
  document.addEventListener('DOMContentLoaded', navLabels);
  new MutationObserver(navLabels).observe(document.documentElement, { attributes: true, attributeFilter: ['lang'] });
  // leaving the report: the print rules go with it
  window.addEventListener('hashchange', () => {
    if (!/^#\/report/.test(location.hash)) document.body.classList.remove('printing-report');
  });
})();
