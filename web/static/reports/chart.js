// A small SVG line chart, drawn by hand (no chart library: one chart type, ~100 lines, nothing to
// vendor). Every point is a <circle> carrying its numbers (data-series, data-x, data-value) and a
// <title> tooltip, so the page — and its browser test — can read exactly what is drawn.
const NS = "http://www.w3.org/2000/svg";
const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"];

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A nice upper bound for the y axis: 100 for percentages, else 1/2/5 × 10^n above the max. */
export function niceMax(max, percent) {
  if (percent) return 100;
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

/**
 * lineChart({title, xs: ["09:00", ...], series: [{name, values: [number|null, ...]}], percent, format, joins})
 * → an <svg> element. A null value is a gap (no data in that interval), never a zero; ``joins[i]``
 * false: point i does not follow point i-1 in time (intervals without calls between), no line.
 */
export function lineChart({ id, title, xs, series, percent = false, format = (v) => String(v), joins = null }) {
  const W = 560, H = 220, L = 48, R = 12, T = 26, B = 34;
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const top = niceMax(Math.max(0, ...all), percent);
  const x = (i) => L + (xs.length <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (xs.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title, id });
  svg.append(el("text", { x: L, y: 16, class: "chart-title" }, title));
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    svg.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "chart-grid" }));
    svg.append(el("text", { x: L - 6, y: y(v) + 4, class: "chart-axis", "text-anchor": "end" }, format(v)));
  }
  const every = Math.max(1, Math.ceil(xs.length / 8));
  xs.forEach((label, i) => {
    if (i % every === 0) svg.append(el("text", { x: x(i), y: H - 12, class: "chart-axis", "text-anchor": "middle" }, label));
  });
  series.forEach((s, si) => {
    const colour = COLOURS[si % COLOURS.length];
    let path = "";
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { path += " "; return; }
      if (joins && !joins[i]) path += " ";
      path += `${path.endsWith(" ") || !path ? "M" : "L"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    });
    for (const part of path.split(" ").filter(Boolean)) {
      svg.append(el("path", { d: part, fill: "none", stroke: colour, "stroke-width": 2 }));
    }
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const c = el("circle", { cx: x(i), cy: y(v), r: 3.5, fill: colour, "data-series": s.name, "data-x": xs[i], "data-value": v });
      c.append(el("title", {}, `${s.name} · ${xs[i]}: ${format(v)}`));
      svg.append(c);
    });
  });
  return svg;
}

export function legend(names) {
  const box = document.createElement("div");
  box.className = "chart-legend";
  names.forEach((n, i) => {
    const item = document.createElement("span");
    const dot = document.createElement("i");
    dot.style.background = COLOURS[i % COLOURS.length];
    item.append(dot, document.createTextNode(n));
    box.append(item);
  });
  return box;
}

/**
 * barChart({id, title, bars: [{name, value|null}], percent, format}) → an <svg>: one bar per
 * queue (the per-queue comparison of one KPI over the whole period). Every bar is a <rect>
 * with data-series / data-value and a <title>; a queue without a value gets no bar, a "–".
 */
export function barChart({ id, title, bars, percent = false, format = (v) => String(v) }) {
  const W = 560, H = 220, L = 48, R = 12, T = 26, B = 34;
  const top = niceMax(Math.max(0, ...bars.map((b) => b.value).filter((v) => v !== null && v !== undefined)), percent);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const slot = (W - L - R) / Math.max(1, bars.length);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title, id });
  svg.append(el("text", { x: L, y: 16, class: "chart-title" }, title));
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    svg.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "chart-grid" }));
    svg.append(el("text", { x: L - 6, y: y(v) + 4, class: "chart-axis", "text-anchor": "end" }, format(v)));
  }
  bars.forEach((b, i) => {
    const cx = L + slot * i + slot / 2;
    svg.append(el("text", { x: cx, y: H - 12, class: "chart-axis", "text-anchor": "middle" }, b.name));
    if (b.value === null || b.value === undefined) {
      svg.append(el("text", { x: cx, y: y(0) - 4, class: "chart-axis", "text-anchor": "middle" }, "–"));
      return;
    }
    const w = Math.min(60, slot * 0.6);
    const r = el("rect", { x: cx - w / 2, y: y(b.value), width: w, height: Math.max(0, y(0) - y(b.value)),
      fill: COLOURS[i % COLOURS.length], "data-series": b.name, "data-value": b.value });
    r.append(el("title", {}, `${b.name}: ${format(b.value)}`));
    svg.append(r);
  });
  return svg;
}
