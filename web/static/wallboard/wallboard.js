// The supervisor wallboard: queue tiles, the agents grid, waiting callers, abandoned calls.
// Everything arrives as `wallboard.update` over the websocket — pushed on change (at most one
// every ~100 ms) and at CTI's 1 s tick — nothing is polled. Each update is numbered (`seq`):
// a full snapshot (`full: true`: GET /api/web/wallboard after every (re)connect, and every
// minute over the socket) or a delta of it (only the changed agents and queues, upserted by
// id, `*_removed` ids gone, and the waiting/abandoned lists and KPIs when they changed).
// A delta whose seq does not follow the page's means one was lost: the page loads the full
// snapshot again (web/wallboard.py `apply_update` is the same algorithm, unit-tested).
// The KPI row of each tile (ASA, AHT, abandon rate, service level, agents needed by Erlang C)
// is the report store's, computed by the server every kpi_refresh_seconds (`kpis`, with its
// own time: the page shows its age); the page computes no figure itself.
import { get, post } from "../core/api.js";
import { $, dateTime, duration, h, replace, time } from "../core/dom.js";
import { lang, t } from "../core/i18n.js";
import { label, notify, tileClass } from "../core/view.js";

export async function mount(root, { live, me, config }) {
  const wb = config.wallboard;
  const st = { data: null, receivedAt: null, skew: 0, choice: {}, loading: false, early: [] };

  const tv = h("button", { id: "btn-tv", onclick: toggleTv, "aria-pressed": "false" }, t("tv_mode"));
  root.append(
    h("section", { class: "wallboard" },
      h("div", { class: "row toolbar" },
        h("h2", {}, t("wallboard")),
        h("span", { class: "grow" }),
        h("span", { id: "data-age", class: "age", role: "status" }, t("waiting_for_data")),
        h("span", { id: "kpi-age", class: "age" }, t("kpi_waiting")),
        tv),
      h("div", { id: "tiles", class: "tiles" }),
      h("div", { class: "wb-cols" },
        h("section", { class: "panel", id: "agents-panel" }, h("h2", {}, t("agents")), h("div", { id: "agents-grid" })),
        h("div", { class: "col" },
          h("section", { class: "panel" }, h("h2", {}, t("waiting_callers")), h("div", { id: "waiting-list" })),
          h("section", { class: "panel" }, h("h2", {}, t("abandoned_today")), h("div", { id: "abandoned-list" }))))));

  function toggleTv() {
    const on = !document.body.classList.contains("tv");
    document.body.classList.toggle("tv", on);
    document.documentElement.classList.toggle("tv", on); // large type: every rem grows
    tv.setAttribute("aria-pressed", String(on));
    if (on && document.documentElement.requestFullscreen) document.documentElement.requestFullscreen().catch(() => {});
    if (!on && document.fullscreenElement) document.exitFullscreen().catch(() => {});
  }

  const act = async (fn, okText) => {
    try { const out = await fn(); if (okText) notify(okText, "ok"); return out; } catch (e) { notify(e.detail || e.message, "error"); return undefined; }
  };

  function tile(q, name, value, text) {
    const th = (wb.queues[q.queue] || wb.default)[name];
    const cls = tileClass(value, th, wb.lower_is_worse.includes(name));
    return h("div", { class: `metric ${cls}`, dataset: { metric: name }, title: th ? `${t("warn")} ${th.warn} · ${t("alert")} ${th.alert}` : null },
      h("div", { class: "value" }, text ?? (value ?? "–")),
      h("div", { class: "caption" }, t(`m_${name}`)));
  }

  // one KPI figure: the shown text, and the exact number the server sent (data-value)
  function kpi(name, value, text, hint) {
    return h("div", { class: "metric kpi", dataset: { kpi: name, value: value ?? "" }, title: hint || null },
      h("div", { class: "value" }, value === null || value === undefined ? "–" : text),
      h("div", { class: "caption" }, t(`kpi_${name}`)));
  }

  function renderKpis(q) {
    const k = st.data?.kpis?.queues?.[q.queue];
    if (!st.data?.kpis) return null;
    const a = q.agents || {};
    const loggedIn = Object.entries(a).filter(([s]) => s !== "logged_out").reduce((n, [, v]) => n + (v || 0), 0);
    const sf = k?.staffing || null;
    const needed = sf ? sf.agents_needed_erlang_c : null;
    const slHint = k?.service_level_formula ? `${t(`slf_${k.service_level_formula}`)} · T = ${k.service_level_seconds} s` : null;
    return h("div", { class: "metrics kpis", "aria-label": t("kpi_title") },
      kpi("asa_seconds", k?.asa_seconds, `${k?.asa_seconds} ${t("sec")}`),
      kpi("aht_seconds", k?.aht_seconds, `${k?.aht_seconds} ${t("sec")}`),
      kpi("abandon_rate_pct", k?.abandon_rate_pct, `${k?.abandon_rate_pct}%`),
      kpi("service_level_pct", k?.service_level_pct, `${k?.service_level_pct}%`, slHint),
      h("div", { class: `metric kpi${needed !== null && needed !== undefined && loggedIn < needed ? " warn" : ""}`, dataset: { kpi: "staffing", value: needed ?? "", loggedIn } },
        h("div", { class: "value" }, `${needed ?? "–"} / ${loggedIn}`),
        h("div", { class: "caption" }, t("kpi_staffing"))));
  }

  function renderTiles() {
    const qs = st.data?.queues || [];
    replace($("#tiles", root), qs.map((q) => {
      const a = q.agents || {};
      const onCall = (a.on_call || 0) + (a.ringing || 0);
      return h("article", { class: "tile", dataset: { queue: q.queue }, "aria-label": `${t("queue")} ${q.queue}` },
        h("h3", {}, q.queue),
        h("div", { class: "metrics" },
          tile(q, "waiting", q.waiting),
          tile(q, "longest_wait", q.longest_wait, duration(q.longest_wait)),
          tile(q, "service_level", q.service_level, q.service_level === null ? "–" : `${q.service_level}%`),
          tile(q, "service_level_30m", q.service_level_30m, q.service_level_30m === null ? "–" : `${q.service_level_30m}%`),
          h("div", { class: "metric" }, h("div", { class: "value", dataset: { metric: "answered_today" } }, q.answered_today), h("div", { class: "caption" }, t("m_answered_today"))),
          tile(q, "abandoned_today", q.abandoned_today)),
        renderKpis(q),
        h("div", { class: "agent-states" },
          [["ready", a.ready || 0], ["on_call", onCall], ["wrapup", a.wrapup || 0], ["paused", a.paused || 0], ["logged_out", a.logged_out || 0]]
            .map(([s, n]) => h("span", { class: `state s-${s}`, dataset: { state: s } }, `${t(`st_${s}`)} ${n}`))));
    }));
  }

  function renderAgents() {
    const agents = st.data?.agents || [];
    const reasons = config.pause_reasons || [];
    const nowServer = Date.now() / 1000 - st.skew;
    // the grid is rebuilt on every push: keep the supervisor's choice and focus (ids) across it
    const reasonSel = (id) => h("select", { "aria-label": t("pause_reason"), id: `reason-${id}`, onchange: (ev) => { st.choice[id] = ev.target.value; } },
      reasons.map((r) => h("option", { value: r.code, selected: st.choice[id] === r.code }, label(r))));
    replace($("#agents-grid", root), h("table", { class: "grid agents" },
      h("thead", {}, h("tr", {}, [t("agent"), t("status"), t("time_in_state"), t("caller"), t("queue"), t("handled"), t("missed"), t("actions")].map((x) => h("th", {}, x)))),
      h("tbody", {}, agents.map((a) => {
        const sel = reasonSel(a.agent_id);
        const inCall = a.status === "on_call" && a.call;
        return h("tr", { dataset: { agent: a.agent_id } },
          h("td", {}, a.name || a.agent_id, h("div", { class: "muted" }, a.agent_id)),
          h("td", {}, h("span", { class: `state s-${a.status}` }, t(`st_${a.status}`)),
            a.status === "paused" && a.pause_reason ? h("div", { class: "muted" }, label(reasons.find((r) => r.code === a.pause_reason) || { code: a.pause_reason })) : null),
          h("td", { class: "num" }, a.status_since ? duration(nowServer - a.status_since) : "–"),
          h("td", {}, a.call ? `${a.call.caller_name || ""} ${a.call.caller_num || ""}`.trim() : "–"),
          h("td", {}, a.call?.queue || "–"),
          h("td", { class: "num" }, a.handled_today),
          h("td", { class: "num" }, a.missed_today),
          h("td", { class: "actions" },
            inCall ? ["listen", "whisper", "barge"].map((m) => h("button", { id: `${m}-${a.agent_id}`, onclick: () => act(() => post(`api/supervisor/agents/${encodeURIComponent(a.agent_id)}/${m}`), t(`spy_${m}`)) }, t(m))) : null,
            a.logged_in && a.status !== "paused" ? [sel, h("button", { id: `force-pause-${a.agent_id}`, onclick: () => act(() => post(`api/supervisor/agents/${encodeURIComponent(a.agent_id)}/force-pause`, { reason: sel.value }), t("paused_agent")) }, t("force_pause"))] : null,
            a.logged_in ? h("button", { class: "quiet", id: `force-logout-${a.agent_id}`, onclick: () => act(() => post(`api/supervisor/agents/${encodeURIComponent(a.agent_id)}/force-logout`), t("logged_out_agent")) }, t("force_logout")) : null));
      }))));
  }

  function renderLists() {
    const waiting = st.data?.waiting || [];
    replace($("#waiting-list", root), waiting.length
      ? h("ol", { class: "list", id: "waiting" }, waiting.map((c) => h("li", { dataset: { call: c.call_id } },
        h("strong", {}, duration(c.waited)), " · ", c.caller_num || t("unknown_caller"), " · ", c.queue)))
      : h("p", { class: "muted" }, t("nobody_waiting")));
    const abandoned = st.data?.abandoned || [];
    replace($("#abandoned-list", root), abandoned.length
      ? h("ul", { class: "list", id: "abandoned" }, abandoned.map((c) => h("li", {},
        h("div", {}, h("strong", {}, c.caller_name || c.caller_num || t("unknown_caller")), " ", c.caller_num && c.caller_name ? c.caller_num : "",
          h("div", { class: "muted" }, `${time(c.ended_at, lang())} · ${c.queue} · ${t("waited")} ${duration(c.waited)}`)),
        c.caller_num ? h("button", { id: `call-back-${c.call_id}`, onclick: () => act(() => post("api/callbacks", { number: c.caller_num, queue: c.queue, caller_num: c.caller_num, call_id: c.call_id }), t("callback_created")) }, t("call_back")) : null)))
      : h("p", { class: "muted" }, t("no_abandoned")));
  }

  function renderAge() {
    const el = $("#data-age", root);
    if (!el) return;
    if (!st.receivedAt) { el.textContent = t("waiting_for_data"); return; }
    // the numbers were computed at data.at (server time); we map it onto our clock with the skew
    // measured at receipt, so this is the time since the server computed them
    const age = Math.max(0, Date.now() / 1000 - st.skew - st.data.at);
    const stale = !live.online || age > wb.stale_after_seconds;
    el.textContent = t("data_age", { s: age.toFixed(1), at: time(st.data.at, lang()) });
    el.classList.toggle("stale", stale);
    const k = st.data.kpis;
    const kel = $("#kpi-age", root);
    if (!kel) return;
    if (!k) { kel.textContent = t("kpi_waiting"); return; }
    // the KPIs are recomputed every kpi_refresh_seconds: stale when two refreshes were missed
    const kage = Math.max(0, Date.now() / 1000 - st.skew - k.at);
    kel.textContent = t("kpi_age", { s: Math.round(kage), at: time(k.at, lang()) });
    kel.dataset.at = String(k.at);
    kel.classList.toggle("stale", !live.online || kage > 2 * (wb.kpi_refresh_seconds || 15) + wb.stale_after_seconds);
  }

  // one wallboard.update onto the board: the board after it and what to redraw, or null (a gap)
  function applyUpdate(board, u) {
    if (u.full) return { board: u, parts: ["queues", "agents", "lists"] };
    if (u.seq <= board.seq) return { board, parts: [] }; // already in the snapshot
    if (u.seq !== board.seq + 1) return null;
    const out = { ...board, seq: u.seq, at: u.at };
    const parts = [];
    for (const [part, key] of [["agents", "agent_id"], ["queues", "queue"]]) {
      if (!(part in u) && !(`${part}_removed` in u)) continue;
      const rows = new Map(board[part].map((e) => [e[key], e]));
      for (const k of u[`${part}_removed`] || []) rows.delete(k);
      for (const e of u[part] || []) rows.set(e[key], e);
      out[part] = [...rows.keys()].sort().map((k) => rows.get(k));
      parts.push(part);
    }
    for (const part of ["waiting", "abandoned"]) if (part in u) { out[part] = u[part]; parts.push("lists"); }
    if ("abandoned_changed" in u || "abandoned_removed" in u) { // upserted by (call_id, ended_at)
      const id = (c, t) => `${c}\u0000${t}`;
      const rows = new Map(board.abandoned.map((e) => [id(e.call_id, e.ended_at), e]));
      for (const [c, t] of u.abandoned_removed || []) rows.delete(id(c, t));
      for (const e of u.abandoned_changed || []) rows.set(id(e.call_id, e.ended_at), e);
      // newest first, then by call id (web/wallboard.py abandoned_order)
      out.abandoned = [...rows.values()].sort((a, b) => b.ended_at - a.ended_at
        || ((a.call_id || "") < (b.call_id || "") ? -1 : (a.call_id || "") > (b.call_id || "") ? 1 : 0));
      parts.push("lists");
    }
    if ("kpis" in u) { out.kpis = u.kpis; parts.push("queues"); }
    return { board: out, parts };
  }

  function take(u) {
    if (!u.full && (st.loading || !st.data)) { st.early.push(u); return; } // applied after the snapshot
    const next = applyUpdate(st.data, u);
    if (!next) { resync(); st.early.push(u); return; } // a gap: reload the whole board
    st.data = next.board;
    st.receivedAt = Date.now();
    st.skew = Date.now() / 1000 - st.data.at; // server clock vs ours (includes the transit time)
    if (next.parts.includes("queues")) renderTiles();
    if (next.parts.includes("agents")) renderAgents();
    if (next.parts.includes("lists")) renderLists();
    renderAge();
  }

  async function resync() {
    if (st.loading) return;
    st.loading = true;
    let full;
    try { full = await get("api/web/wallboard"); } finally { st.loading = false; }
    const early = st.early.filter((u) => u.seq > full.seq).sort((a, b) => a.seq - b.seq);
    st.early = [];
    take(full);
    for (const u of early) take(u);
  }

  live.on("wallboard.update", take);
  live.onResync(resync);
  const timer = setInterval(renderAge, 500);
  return () => { clearInterval(timer); document.body.classList.remove("tv"); document.documentElement.classList.remove("tv"); };
}
