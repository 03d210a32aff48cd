// SPDX-License-Identifier: MIT
// mynaguard web dashboard: the alerts view (#/alerts), docs/alerts.md. Read only, from
// GET /v1/alerts: the open conditions as of the alert thread's last round, and per channel
// (mail, webhook) whether it is configured and its last deliveries with time and result.
// Registered with app.js through window.mynaguardViews, like review.js; app.js calls load(ctx)
// on each refresh.
'use strict';

(function () {
  const T = {
    ja: {
      nav_alerts: '警告', alerts_title: '警告',
      alerts_help: '未解決の状態です。状態が解消すると一覧から消えます。各状態はシステムログに必ず記録され、設定があればメールと Webhook で一度だけ通知されます。',
      open: (n) => '未解決 ' + n + ' 件', listed: (n, m) => '（古い順に ' + n + ' 件を表示、全 ' + m + ' 件）',
      none_open: '未解決の警告はありません。', as_of: (t) => t + ' 時点',
      not_yet: 'まだ最初の確認が終わっていません。',
      col_kind: '種類', col_terminal: '端末', col_raised: '発生日時', col_message: '内容',
      col_mail: 'メール', col_webhook: 'Webhook', col_at: '日時', col_result: '結果', col_count: '件数',
      col_reason: '理由',
      k_noncompliant: '非準拠', k_stale: '報告途絶', k_locked: 'ロックアウト', k_gap: '証跡の欠落',
      k_cert_expiry: '証明書の期限切れ間近', k_totp_double_use: '確認コードの二重使用', k_review_overdue: 'ログの点検の期限超過', k_digest: '日次まとめ',
      d_none: '—', d_pending: '送信待ち', d_sent: '送信済み',
      r_sent: '成功', r_failed: '失敗',
      ch_mail: 'メール通知', ch_webhook: 'Webhook 通知', recent: '最近の通知',
      configured: '設定あり', not_configured: '未設定（システムログのみ）',
      digest: (t) => '日次まとめ（毎日 ' + t + '）', no_recent: 'まだ通知していません。'
    },
    en: {
      nav_alerts: 'Alerts', alerts_title: 'Alerts',
      alerts_help: 'Open conditions; one leaves the list when it ends. Each is always logged to syslog, and sent once by mail and webhook when configured.',
      open: (n) => n + ' open', listed: (n, m) => ' (the oldest ' + n + ' of ' + m + ' shown)',
      none_open: 'No open alerts.', as_of: (t) => 'as of ' + t,
      not_yet: 'The first round has not finished yet.',
      col_kind: 'Kind', col_terminal: 'Terminal', col_raised: 'Raised', col_message: 'Message',
      col_mail: 'Mail', col_webhook: 'Webhook', col_at: 'Time', col_result: 'Result', col_count: 'Alerts',
      col_reason: 'Reason',
      k_noncompliant: 'Not compliant', k_stale: 'No reports', k_locked: 'Locked out', k_gap: 'Evidence missing',
      k_cert_expiry: 'Certificate expiring', k_totp_double_use: 'Code used twice', k_review_overdue: 'Log review overdue', k_digest: 'Daily digest',
      d_none: '—', d_pending: 'pending', d_sent: 'sent',
      r_sent: 'sent', r_failed: 'failed',
      ch_mail: 'Mail', ch_webhook: 'Webhook', recent: 'Recent notifications',
      configured: 'configured', not_configured: 'not configured (syslog only)',
      digest: (t) => 'daily digest (at ' + t + ')', no_recent: 'Nothing sent yet.'
    }
  };
  const CHANNELS = ['mail', 'webhook'];
  const $ = (id) => document.getElementById(id);
  const lang = () => (document.documentElement.lang === 'en' ? 'en' : 'ja');
  const kindName = (tr, k) => tr['k_' + k] || k;

  function labels() {
    const tr = T[lang()];
    document.querySelectorAll('[data-al]').forEach((e) => { e.textContent = tr[e.dataset.al]; });
  }

  function table(ctx, heads) {
    const t = ctx.el('table');
    const head = ctx.el('tr');
    heads.forEach((h) => head.appendChild(ctx.el('th', h)));
    t.appendChild(ctx.el('thead')).appendChild(head);
    t.appendChild(ctx.el('tbody'));
    return t;
  }

  function terminalCell(ctx, id) {
    const td = ctx.el('td');
    if (id) {
      const a = ctx.el('a', id, 'termlink');
      a.href = '#/terminal/' + encodeURIComponent(id);
      td.appendChild(a);
    } else td.textContent = '—';
    return td;
  }

  function renderOpen(ctx, data) {
    const tr = T[ctx.lang];
    const list = data.alerts || [];
    $('al-count').textContent = tr.open(data.open || 0) +
      (list.length < (data.open || 0) ? tr.listed(list.length, data.open) : '');
    $('al-count').className = 'badge ' + (data.open ? 'st-noncompliant' : 'st-compliant');
    $('al-asof').textContent = data.generated_at ? tr.as_of(ctx.fmtTime(data.generated_at)) : tr.not_yet;
    const t = table(ctx, [tr.col_kind, tr.col_terminal, tr.col_raised, tr.col_message, tr.col_mail, tr.col_webhook]);
    const body = t.querySelector('tbody');
    list.forEach((a) => {
      const row = ctx.el('tr');
      row.dataset.key = a.key;
      row.appendChild(ctx.el('td')).appendChild(ctx.el('span', kindName(tr, a.kind), 'badge st-noncompliant'));
      row.appendChild(terminalCell(ctx, a.terminal));
      row.appendChild(ctx.el('td', ctx.fmtTime(a.raised_at)));
      const msg = a.message || {};
      row.appendChild(ctx.el('td', (ctx.lang === 'en' ? msg.en : msg.ja) || msg.ja || msg.en || '', 'al-message'));
      CHANNELS.forEach((ch) => row.appendChild(ctx.el('td', tr['d_' + a[ch]] || a[ch] || '—')));
      body.appendChild(row);
    });
    $('al-open').replaceChildren(list.length ? t : ctx.el('p', tr.none_open, 'empty'));
  }

  function renderChannels(ctx, data) {
    const tr = T[ctx.lang];
    const f = document.createDocumentFragment();
    CHANNELS.forEach((name) => {
      const ch = (data.channels || {})[name] || { configured: false, recent: [] };
      const box = ctx.el('section', undefined, 'al-channel');
      box.dataset.channel = name;
      const h = ctx.el('h3', tr['ch_' + name] + ' ');
      h.appendChild(ctx.el('span', ch.configured ? tr.configured : tr.not_configured,
        'badge ' + (ch.configured ? 'st-compliant' : 'st-unknown')));
      if (ch.digest) h.appendChild(ctx.el('span', tr.digest(ch.digest), 'badge st-unknown'));
      box.appendChild(h);
      const recent = ch.recent || [];
      if (!recent.length) {
        box.appendChild(ctx.el('p', tr.no_recent, 'empty'));
      } else {
        const t = table(ctx, [tr.col_at, tr.col_kind, tr.col_terminal, tr.col_count, tr.col_result, tr.col_reason]);
        const body = t.querySelector('tbody');
        recent.forEach((d) => {
          const row = ctx.el('tr', undefined, d.result === 'failed' ? 'ck-fail' : '');
          row.appendChild(ctx.el('td', ctx.fmtTime(d.at)));
          row.appendChild(ctx.el('td', kindName(tr, d.kind)));
          row.appendChild(terminalCell(ctx, d.terminal));
          row.appendChild(ctx.el('td', String(d.count), 'num'));
          row.appendChild(ctx.el('td')).appendChild(ctx.el('span', tr['r_' + d.result] || d.result,
            'badge ' + (d.result === 'sent' ? 'st-compliant' : 'st-noncompliant')));
          row.appendChild(ctx.el('td', d.error || '', 'al-reason'));
          body.appendChild(row);
        });
        box.appendChild(t);
      }
      f.appendChild(box);
    });
    $('al-channels').replaceChildren(f);
  }

  async function load(ctx) {
    labels();
    const r = await ctx.api('/v1/alerts');
    const data = await r.json();
    renderOpen(ctx, data);
    renderChannels(ctx, data);
  }

  // the nav link's text follows the language even before the view is opened
  document.addEventListener('DOMContentLoaded', labels);
  new MutationObserver(labels).observe(document.documentElement, { attributes: true, attributeFilter: ['lang'] });

  window.mynaguardViews = Object.assign(window.mynaguardViews || {}, { alerts: { load } });
})();
