// Bar charts drawn as SVG elements (no library, no inline styles: colours come from CSS
// classes). Each chart has a text alternative: role="img" with a summary label, and the caller
// shows the numbers as a table beside it.

import { s, h, usd } from './dom.js';

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * Vertical bars. items: [{label, value, title}]; opts: {line: {value, label}, summary, format,
 * tickEvery}.
 */
export function columnChart(items, { line = null, summary = '', format = usd, tickEvery = 1 } = {}) {
  const W = 880;
  const H = 280;
  const pad = { l: 72, r: 16, t: 16, b: 40 };
  const max = niceMax(Math.max(0, ...items.map((i) => i.value || 0), line ? line.value : 0));
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const y = (v) => pad.t + ih - (v / max) * ih;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': summary, preserveAspectRatio: 'xMidYMid meet' });
  svg.append(s('title', null, summary));
  for (let k = 0; k <= 4; k += 1) {
    const v = (max * k) / 4;
    svg.append(s('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: 'chart-grid' }));
    svg.append(s('text', { x: pad.l - 8, y: y(v) + 4, class: 'chart-axis', 'text-anchor': 'end' }, format(v)));
  }
  const n = Math.max(items.length, 1);
  const slot = iw / n;
  const bw = Math.max(2, Math.min(40, slot * 0.7));
  items.forEach((it, i) => {
    if (it.value === null) {
      if (i % tickEvery === 0) svg.append(s('text', { x: pad.l + i * slot + slot / 2, y: H - pad.b + 16, class: 'chart-axis', 'text-anchor': 'middle' }, it.label));
      return;
    }
    const x = pad.l + i * slot + (slot - bw) / 2;
    const top = y(it.value);
    const bar = s('rect', { x, y: top, width: bw, height: Math.max(it.value > 0 ? 1 : 0, pad.t + ih - top), class: 'chart-bar', rx: 2 });
    bar.append(s('title', null, it.title || `${it.label}: ${format(it.value)}`));
    svg.append(bar);
    if (i % tickEvery === 0) {
      svg.append(s('text', { x: x + bw / 2, y: H - pad.b + 16, class: 'chart-axis', 'text-anchor': 'middle' }, it.label));
    }
  });
  svg.append(s('line', { x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0), class: 'chart-baseline' }));
  if (line && line.value > 0) {
    const ly = y(line.value);
    svg.append(s('line', { x1: pad.l, x2: W - pad.r, y1: ly, y2: ly, class: 'chart-line' }));
    svg.append(s('text', { x: W - pad.r, y: ly - 6, class: 'chart-line-label', 'text-anchor': 'end' }, `${line.label} ${format(line.value)}`));
  }
  return h('figure', { class: 'chart-wrap' }, svg);
}

/** Horizontal bars, one per item (by agent). */
export function barChart(items, { summary = '', format = usd } = {}) {
  const W = 880;
  const row = 34;
  const padL = 160;
  const padR = 100;
  const H = Math.max(row * items.length + 16, 60);
  const max = niceMax(Math.max(0, ...items.map((i) => i.value)));
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': summary });
  svg.append(s('title', null, summary));
  items.forEach((it, i) => {
    const yy = 8 + i * row;
    const w = ((W - padL - padR) * it.value) / max;
    svg.append(s('text', { x: padL - 10, y: yy + row / 2 + 1, class: 'chart-label', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, it.label));
    const bar = s('rect', { x: padL, y: yy + 6, width: Math.max(it.value > 0 ? 2 : 0, w), height: row - 14, class: 'chart-bar', rx: 3 });
    bar.append(s('title', null, `${it.label}: ${format(it.value)}`));
    svg.append(bar);
    svg.append(s('text', { x: padL + Math.max(w, 0) + 8, y: yy + row / 2 + 1, class: 'chart-value', 'dominant-baseline': 'middle' }, format(it.value)));
  });
  return h('figure', { class: 'chart-wrap' }, svg);
}
