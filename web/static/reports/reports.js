// The reports screen (supervisors, QA, ops): the KPIs of a period by queue — service level, ASA,
// AHT, abandon, FCR, CSAT, recording and QA coverage, QA score — as a table and as charts per
// interval, with CSV downloads. Every number comes from GET /api/reports/* (the fact store's
// formulas, docs/metrics.md); the page computes none of them.
import { get } from "../core/api.js";
import { $, duration, h, replace } from "../core/dom.js";
import { t } from "../core/i18n.js";
import { barChart, legend, lineChart } from "./chart.js";

const INTERVALS = ["15min", "hour", "day", "week", "month"];
/** the charted KPIs: where each comes from and how it reads */
export const METRICS = [
  { key: "service_level_pct", src: "queues", percent: true },
  { key: "asa_seconds", src: "queues", seconds: true },
  { key: "aht_seconds", src: "queues", seconds: true },
  { key: "abandon_rate_pct", src: "queues", percent: true },
  { key: "fcr_repeat_pct", src: "queues", percent: true },
  { key: "csat_pct", src: "surveys", percent: true },
  { key: "recorded_pct", src: "quality", percent: true },
  { key: "qa_coverage_pct", src: "quality", percent: true },
  { key: "qa_avg_score", src: "quality" },
];
const TABLE = ["offered", "answered", ...METRICS.map((m) => m.key)];
const SECONDS = new Set(METRICS.filter((m) => m.seconds).map((m) => m.key));

function isoDay(d) {
  const z = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())}`;
}

function nextDay(day) {
  const d = new Date(`${day}T00:00:00`);
  d.setDate(d.getDate() + 1);
  return isoDay(d);
}

function show(key, v) {
  if (v === null || v === undefined) return "–";
  if (SECONDS.has(key)) return duration(v);
  if (key.endsWith("_pct")) return `${v}%`;
  return String(v);
}

/** "2026-12-02T09:00:00+09:00" → "09:00" (intra-day intervals) or "2026-12-02" */
/** does interval start ``b`` directly follow ``a`` (no empty interval between)? */
export function follows(a, b, interval) {
  const gap = (Date.parse(b) - Date.parse(a)) / 1000;
  const most = { "15min": 900, hour: 3600, day: 90000, week: 608400, month: 2682000 }[interval];
  return gap > 0 && gap <= most;
}

function xLabel(start, interval) {
  return interval === "15min" || interval === "hour" ? start.slice(11, 16) : start.slice(0, 10);
}

export async function mount(root) {
  const today = isoDay(new Date());
  const from = h("input", { id: "rep-from", type: "date", value: today, required: true });
  const to = h("input", { id: "rep-to", type: "date", value: today, required: true });
  const interval = h("select", { id: "rep-interval" },
    INTERVALS.map((i) => h("option", { value: i, selected: i === "hour" }, t(`int_${i}`))));
  const queue = h("select", { id: "rep-queue" }, h("option", { value: "" }, t("rep_all_queues")));
  const compare = h("select", { id: "rep-compare", "aria-label": t("rep_compare"), onchange: () => renderCompare() },
    METRICS.map((m) => h("option", { value: m.key }, t(`k_${m.key}`))));
  const status = h("p", { id: "rep-status", class: "muted", role: "status" });
  let summary = [];
  const links = h("p", { id: "rep-downloads", class: "row" });
  root.append(h("section", { class: "reports" },
    h("form", { class: "panel row toolbar", id: "rep-form", onsubmit: (ev) => { ev.preventDefault(); load(); } },
      h("h2", {}, t("reports")),
      h("label", {}, t("rep_from"), from),
      h("label", {}, t("rep_to"), to),
      h("label", {}, t("rep_interval"), interval),
      h("label", {}, t("queue"), queue),
      h("button", { class: "primary", type: "submit", id: "rep-show" }, t("rep_show"))),
    status,
    h("section", { class: "panel" }, h("h2", {}, t("rep_summary")), h("div", { id: "rep-table" }), links),
    h("section", { class: "panel" }, h("div", { class: "row toolbar" }, h("h2", {}, t("rep_compare")), compare),
      h("div", { id: "rep-compare-chart" })),
    h("div", { id: "rep-charts", class: "charts" })));

  function params(extra) {
    const p = new URLSearchParams({ from: from.value, to: nextDay(to.value), ...extra });
    if (queue.value) p.append("queue", queue.value);
    return p;
  }

  async function fetchAll(withInterval) {
    const iv = withInterval ? { interval: interval.value } : {};
    const [queues, quality, surveys] = await Promise.all([
      get(`api/reports/queues?${params(iv)}`),
      get(`api/reports/quality?${params({ by: "queue", ...iv })}`),
      get(`api/reports/surveys?${new URLSearchParams({ from: from.value, to: nextDay(to.value), by: "queue", ...iv })}`),
    ]);
    return { queues: queues.rows, quality: quality.rows, surveys: surveys.rows };
  }

  /** rows of the three reports joined per (interval, queue) */
  function join(data) {
    const out = new Map();
    const put = (start, q, row) => {
      const k = `${start || ""}|${q}`;
      out.set(k, { interval_start: start || null, queue: q, ...(out.get(k) || {}), ...row });
    };
    for (const r of data.queues) put(r.interval_start, r.queue, r);
    for (const r of data.quality) put(r.interval_start, r.key, r);
    for (const r of data.surveys) if (!queue.value || r.key === queue.value) put(r.interval_start, r.key, { csat_pct: r.csat_pct });
    return [...out.values()];
  }

  function renderTable(rows) {
    rows.sort((a, b) => a.queue.localeCompare(b.queue));
    if (!rows.length) return replace($("#rep-table", root), h("p", { class: "muted" }, t("rep_no_data")));
    replace($("#rep-table", root), h("table", { class: "grid", id: "rep-kpis" },
      h("thead", {}, h("tr", {}, h("th", {}, t("queue")), TABLE.map((k) => h("th", { scope: "col" }, t(`k_${k}`))))),
      h("tbody", {}, rows.map((r) => h("tr", { dataset: { queue: r.queue } },
        h("th", { scope: "row" }, r.queue || "–"),
        TABLE.map((k) => h("td", { class: "num", dataset: { metric: k, value: r[k] ?? "" } }, show(k, r[k]))))))));
  }

  function fmt(m) {
    return (v) => (m.seconds ? duration(v) : m.percent ? `${Math.round(v)}%` : String(Math.round(v * 100) / 100));
  }

  /** the per-queue comparison of one KPI over the whole period */
  function renderCompare() {
    const m = METRICS.find((x) => x.key === compare.value);
    const bars = summary.filter((r) => r.queue).map((r) => ({ name: r.queue, value: r[m.key] ?? null }));
    replace($("#rep-compare-chart", root), bars.length
      ? barChart({ id: "chart-compare", title: t(`k_${m.key}`), bars, percent: !!m.percent, format: fmt(m) })
      : h("p", { class: "muted" }, t("rep_no_data")));
  }

  /** staffing per interval: agents Erlang C says the target needs vs agents logged in (reports/staffing.py) */
  function staffingChart(rows, xs, names, iv) {
    const series = [];
    for (const n of names) {
      const of = (x) => rows.find((r) => r.interval_start === x && r.queue === n && r.staffing);
      series.push({ name: `${n} · ${t("rep_needed")}`, values: xs.map((x) => of(x)?.staffing.agents_needed_erlang_c ?? null) });
      series.push({ name: `${n} · ${t("rep_logged_in")}`, values: xs.map((x) => of(x)?.staffing.agents_logged_in_avg ?? null) });
    }
    return h("figure", { class: "panel chart-box" }, lineChart({
      id: "chart-staffing", title: t("rep_staffing"), xs: xs.map((x) => xLabel(x, iv)), series,
      joins: xs.map((x, i) => i > 0 && follows(xs[i - 1], x, iv)),
    }), legend(series.map((s) => s.name)));
  }

  function renderCharts(rows) {
    const iv = interval.value;
    const xs = [...new Set(rows.map((r) => r.interval_start).filter(Boolean))].sort();
    const names = [...new Set(rows.map((r) => r.queue).filter(Boolean))].sort();
    const charts = $("#rep-charts", root);
    if (!xs.length) return replace(charts);
    replace(charts, legend(names), METRICS.map((m) => {
      const series = names.map((n) => ({
        name: n,
        values: xs.map((x) => {
          const r = rows.find((row) => row.interval_start === x && row.queue === n);
          const v = r ? r[m.key] : null;
          return v === undefined ? null : v;
        }),
      }));
      return h("figure", { class: "panel chart-box" }, lineChart({
        id: `chart-${m.key}`, title: t(`k_${m.key}`), xs: xs.map((x) => xLabel(x, iv)), series, percent: !!m.percent,
        joins: xs.map((x, i) => i > 0 && follows(xs[i - 1], x, iv)),
        format: fmt(m),
      }));
    }), staffingChart(rows, xs, names, iv));
  }

  async function load() {
    if (to.value < from.value) { status.textContent = t("rep_bad_period"); return; }
    status.textContent = t("loading");
    try {
      const [whole, per] = await Promise.all([fetchAll(false), fetchAll(true)]);
      const rows = join(whole);
      const known = new Set([...queue.options].map((o) => o.value));
      for (const r of rows) if (r.queue && !known.has(r.queue)) queue.append(h("option", { value: r.queue }, r.queue));
      renderTable(rows);
      summary = rows;
      renderCompare();
      renderCharts(join(per));
      replace(links,
        h("a", { id: "csv-queues", href: `api/reports/queues?${params({ interval: interval.value, format: "csv" })}`, download: "queues.csv" }, t("rep_csv_queues")),
        h("a", { id: "csv-quality", href: `api/reports/quality?${params({ by: "queue", interval: interval.value, format: "csv" })}`, download: "quality.csv" }, t("rep_csv_quality")),
        h("a", { id: "csv-agents", href: `api/reports/agents?${new URLSearchParams({ from: from.value, to: nextDay(to.value), format: "csv" })}`, download: "agents.csv" }, t("rep_csv_agents")));
      status.textContent = t("rep_period", { from: from.value, to: to.value });
    } catch (e) {
      status.textContent = t("rep_failed", { detail: e.detail || e.message });
    }
  }

  await load();
  return () => {};
}
