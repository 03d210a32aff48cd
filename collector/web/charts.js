// SPDX-License-Identifier: MIT
// mynaguard-collector web dashboard: the history's charts, drawn as small hand-made SVG (the My
// Number segment is closed: no library, no CDN). Every mark that means something is an <a> to the
// filtered list behind it; every label goes in with textContent; colours come from style.css.
'use strict';

window.MgCharts = (function () {
  const NS = 'http://www.w3.org/2000/svg';

  function svg(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, String(v)));
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // text cut to about px at font size fs (CJK full width, the rest about half), with "…"
  function fit(text, px, fs) {
    let w = 0, out = '';
    for (const ch of String(text)) {
      w += ch.charCodeAt(0) > 0x2e7f ? fs : fs * 0.6;
      if (w > px - fs) return out + '…';
      out += ch;
    }
    return out;
  }

  function label(x, y, text, cls, px, fs) {
    const e = svg('text', { x, y, class: cls }, fit(text, px, fs));
    e.appendChild(svg('title', {}, text));
    return e;
  }

  // a mark that clicks through: <a href><rect/><title/></a>
  function link(href, title, child, data) {
    const a = svg('a', { href });
    Object.entries(data || {}).forEach(([k, v]) => a.setAttribute('data-' + k, String(v)));
    a.appendChild(child);
    a.appendChild(svg('title', {}, title));
    return a;
  }

  function root(width, height, label) {
    const s = svg('svg', { width, height, viewBox: '0 0 ' + width + ' ' + height, role: 'img', class: 'chart' });
    s.appendChild(svg('title', {}, label));
    return s;
  }

  // a date axis under x0..x0+n*cell: the first day of each month and the last day
  function dateTicks(s, dates, x0, cell, y) {
    const last = dates.length - 1;
    dates.forEach((d, i) => {
      const room = (last - i) * cell > 60 && (i === 0 || i * cell > 40);
      if (i === last || i === 0 || (d.slice(8) === '01' && room)) {
        s.appendChild(svg('text', { x: x0 + i * cell + cell / 2, y, class: 'tick', 'text-anchor': i === 0 ? 'start' : (i === dates.length - 1 ? 'end' : 'middle') },
          d.slice(5).replace('-', '/')));
      }
    });
  }

  // Per check, one cell per day: p pass, f fail, - no report. rows: [{id, label, days}].
  // href(id, date) is the cell's click-through; title(id, date, state) its tooltip.
  function strip(rows, dates, opt) {
    const cell = opt.cell || 11, gap = 1, labelW = opt.labelWidth || 230;
    const w = labelW + dates.length * cell + 4, h = rows.length * (cell + 6) + 22;
    const s = root(w, h, opt.label);
    rows.forEach((r, j) => {
      const y = j * (cell + 6) + 2;
      s.appendChild(label(0, y + cell - 1, r.label, 'label', labelW - 6, 12));
      for (let i = 0; i < dates.length; i++) {
        const st = r.days[i] === 'p' ? 'pass' : (r.days[i] === 'f' ? 'fail' : 'none');
        const rect = svg('rect', { x: labelW + i * cell, y, width: cell - gap, height: cell, class: 'cell ' + st });
        if (st === 'none') {
          rect.appendChild(svg('title', {}, opt.title(r.id, dates[i], st)));
          s.appendChild(rect);
        } else {
          s.appendChild(link(opt.href(r.id, dates[i], st), opt.title(r.id, dates[i], st), rect,
            { check: r.id, day: dates[i], state: st }));
        }
      }
    });
    dateTicks(s, dates, labelW, cell, h - 4);
    return s;
  }

  // Per clause, a row of bars: the day's compliance rate (complied / reporting) in percent.
  // rows: [{clause, label, reporting:[], complied:[]}]
  function rates(rows, dates, opt) {
    const labelW = opt.labelWidth || 260, rowH = 46, plotW = opt.width - labelW - 8;
    const cell = plotW / dates.length;
    const h = rows.length * rowH + 22;
    const s = root(opt.width, h, opt.label);
    rows.forEach((r, j) => {
      const y0 = j * rowH + 4, barH = rowH - 14;
      // the clause, its lowest rate in the period, and its meaning
      let low = null;
      r.reporting.forEach((n, i) => { if (n) low = Math.min(low === null ? 1 : low, r.complied[i] / n); });
      s.appendChild(svg('text', { x: 0, y: y0 + 14, class: 'label strong' },
        r.clause + (low === null ? '' : '  ' + opt.lowest(Math.floor(low * 1000) / 10))));
      s.appendChild(label(0, y0 + 29, r.label, 'label small', labelW - 8, 10));
      s.appendChild(svg('line', { x1: labelW, x2: labelW + plotW, y1: y0 + barH, y2: y0 + barH, class: 'axis' }));
      for (let i = 0; i < dates.length; i++) {
        const rep = r.reporting[i], ok = r.complied[i];
        if (!rep) continue;
        const rate = ok / rep;
        const bh = Math.max(2, Math.round(rate * barH));
        const bad = rep - ok;
        const rect = svg('rect', { x: labelW + i * cell, y: y0 + barH - bh, width: Math.max(1, cell - 1), height: bh,
          class: 'bar ' + (bad ? 'fail' : 'pass') });
        const title = opt.title(r.clause, dates[i], ok, rep);
        if (bad) {
          // the failing part on top, full height: easy to hit
          const group = svg('g');
          group.appendChild(svg('rect', { x: labelW + i * cell, y: y0, width: Math.max(1, cell - 1), height: barH - bh, class: 'bar gap' }));
          group.appendChild(rect);
          s.appendChild(link(opt.href(r.clause, dates[i]), title, group, { clause: r.clause, day: dates[i], failing: bad }));
        } else {
          rect.appendChild(svg('title', {}, title));
          s.appendChild(rect);
        }
      }
    });
    dateTicks(s, dates, labelW, cell, h - 4);
    return s;
  }

  // Counts per day as bars; href(date) for each non-zero bar.
  function bars(values, dates, opt) {
    const left = 40, plotW = opt.width - left - 8, plotH = opt.height || 120;
    const cell = plotW / dates.length;
    const max = Math.max(1, ...values);
    const s = root(opt.width, plotH + 24, opt.label);
    s.appendChild(svg('text', { x: left - 4, y: 10, class: 'tick', 'text-anchor': 'end' }, max));
    s.appendChild(svg('text', { x: left - 4, y: plotH, class: 'tick', 'text-anchor': 'end' }, 0));
    s.appendChild(svg('line', { x1: left, x2: left + plotW, y1: plotH, y2: plotH, class: 'axis' }));
    values.forEach((v, i) => {
      if (!v) return;
      const bh = Math.max(2, Math.round((v / max) * (plotH - 4)));
      const rect = svg('rect', { x: left + i * cell, y: plotH - bh, width: Math.max(1, cell - 1), height: bh, class: 'bar ' + (opt.cls || 'count') });
      s.appendChild(link(opt.href(dates[i]), opt.title(dates[i], v), rect, { day: dates[i], n: v }));
    });
    dateTicks(s, dates, left, cell, plotH + 18);
    return s;
  }

  // Top terminals: horizontal bars; items [{terminal, n}].
  function top(items, opt) {
    const labelW = 150, rowH = 20, plotW = opt.width - labelW - 50;
    const max = Math.max(1, ...items.map((x) => x.n));
    const s = root(opt.width, Math.max(1, items.length) * rowH + 4, opt.label);
    items.forEach((x, j) => {
      const y = j * rowH + 2;
      const g = svg('g');
      g.appendChild(svg('text', { x: 0, y: y + 13, class: 'label' }, x.terminal));
      g.appendChild(svg('rect', { x: labelW, y, width: Math.max(2, Math.round((x.n / max) * plotW)), height: rowH - 5, class: 'bar ' + (opt.cls || 'count') }));
      g.appendChild(svg('text', { x: labelW + Math.round((x.n / max) * plotW) + 4, y: y + 13, class: 'label' }, x.n));
      s.appendChild(link(opt.href(x.terminal), opt.title(x.terminal, x.n), g, { terminal: x.terminal, n: x.n }));
    });
    return s;
  }

  return { strip, rates, bars, top };
})();
