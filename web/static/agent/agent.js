// The agent desktop: status, the screen-pop card, call controls, after-call work,
// callbacks and customers. State lives in one object; every change re-renders its section.
import { api, get, post, put } from "../core/api.js";
import { $, dateTime, duration, h, replace } from "../core/dom.js";
import { lang, t } from "../core/i18n.js";
import { journeyText, label, notify } from "../core/view.js";
import { kbPanel } from "./kb.js";

export async function mount(root, { live, me, config }) {
  const st = {
    me, config,
    record: null,        // GET /api/agents/{id}: name, skills, extension
    agent: null,         // live agent state (agent.status)
    call: null,          // the current pop
    after: null,         // the call that just ended: disposition form
    transferredAway: null,
    directory: { agents: [], queues: [] },
    callbacks: [],
    customers: [],
    editing: null,       // customer being edited
    pauseChoice: null,   // form values kept across re-renders
    xfer: { type: "agent", target: "" },
    dtmf: "",
  };

  root.append(
    h("section", { class: "desk" },
      h("div", { class: "col main" },
        h("section", { id: "status", class: "panel", "aria-label": t("status") }),
        h("section", { id: "pop", class: "panel pop", "aria-live": "polite" }),
        h("section", { id: "kb", class: "panel kb", "aria-label": t("kb_title") }),
        h("section", { id: "after", class: "panel" })),
      h("div", { class: "col side" },
        h("section", { id: "callbacks", class: "panel" }),
        h("section", { id: "customers", class: "panel" }))),
  );

  const kb = kbPanel($("#kb", root)); // suggestions beside the pop, search, script steps

  // ------------------------------------------------------------ helpers
  const say = (text, kind = "info") => notify(text, kind);
  const act = async (fn, okText) => {
    try {
      const out = await fn();
      if (okText) say(okText, "ok");
      return out;
    } catch (e) {
      say(e.detail || e.message, "error");
      return undefined;
    }
  };
  const agentPath = `api/agents/${encodeURIComponent(me.agentId)}`;

  // ------------------------------------------------------------ status
  function renderStatus() {
    const el = $("#status", root);
    const a = st.agent || { status: "logged_out", queues: {} };
    const status = a.status || "logged_out";
    const since = a.status_since ? live.serverNow() - a.status_since : null;
    const reasons = config.pause_reasons || [];
    const controls = [];
    if (status === "logged_out") {
      controls.push(h("button", { class: "primary", id: "btn-login", onclick: () => act(() => post(`${agentPath}/login`), t("logged_in")).then(reload) }, t("login_queues")));
    } else {
      if (status === "paused") {
        controls.push(h("button", { class: "primary", id: "btn-ready", onclick: () => act(() => post(`${agentPath}/unpause`)).then(reload) }, t("ready")));
      }
      if (status === "wrapup") {
        const left = a.wrapup_until ? Math.max(0, Math.ceil(a.wrapup_until - live.serverNow())) : null;
        controls.push(h("span", { class: "countdown", id: "wrapup-left" }, t("wrapup_left", { s: left ?? "–" })));
        controls.push(h("button", { class: "primary", id: "btn-ready-now", onclick: () => act(() => post(`${agentPath}/ready`)).then(reload) }, t("ready_now")));
      }
      if (status !== "paused") {
        const sel = h("select", { id: "pause-reason", "aria-label": t("pause_reason"), onchange: (ev) => { st.pauseChoice = ev.target.value; } },
          reasons.map((r) => h("option", { value: r.code, selected: r.code === st.pauseChoice }, label(r))));
        controls.push(h("span", { class: "pause" }, sel,
          h("button", { id: "btn-pause", onclick: () => act(() => post(`${agentPath}/pause`, { reason: sel.value })).then(reload) }, t("pause"))));
      }
      controls.push(h("button", { id: "btn-logout", class: "quiet", onclick: () => act(() => post(`${agentPath}/logout`), t("logged_out")).then(reload) }, t("logout")));
    }
    const queues = Object.keys(a.queues || {});
    const skills = (st.record?.skills || []).map((s) => s.queue);
    replace(el,
      h("div", { class: "row" },
        h("span", { class: `state s-${status}`, id: "my-state" }, t(`st_${status}`)),
        status === "paused" && (a.pause_reason || st.record?.pause_reason)
          ? h("span", { class: "muted", id: "my-pause-reason" }, label(reasons.find((r) => r.code === (a.pause_reason || st.record.pause_reason)) || { code: a.pause_reason || st.record.pause_reason }))
          : null,
        since !== null ? h("span", { class: "muted", id: "time-in-state", title: t("time_in_state") }, duration(since)) : null,
        h("span", { class: "grow" }),
        controls),
      h("div", { class: "row queues" },
        h("span", { class: "muted" }, t("queues"), ":"),
        (queues.length ? queues : skills).map((q) => h("span", { class: `chip ${queues.includes(q) ? "on" : "off"}`, title: queues.includes(q) ? t("member") : t("not_member") }, q))));
  }

  // ------------------------------------------------------------ pop card
  function badge(text, cls) { return h("span", { class: `badge ${cls}` }, text); }

  function renderPop() {
    const el = $("#pop", root);
    const c = st.call;
    kb.setCall(c || st.after); // after the call, marks and ticks still go on its record
    if (!c) {
      replace(el, h("h2", {}, t("current_call")),
        st.transferredAway ? h("p", { class: "muted", id: "transferred-away" }, t("you_transferred", { who: st.transferredAway })) : h("p", { class: "muted" }, t("no_call")));
      return;
    }
    const cust = c.customer || null;
    const prev = (cust && cust.previous_calls) || c.previous_interactions || [];
    const vip = c.priority >= 10 || cust?.vip || (cust?.attributes?.tier || "").toLowerCase() === "vip" || (c.ivr?.agent?.tier === "vip");
    const repeat = (c.previous_interactions || []).length > 0;
    const tier = cust?.attributes?.tier || cust?.tier || c.ivr?.agent?.tier;
    const notes = cust?.notes || [];
    const journey = journeyText(c.ivr);
    const ringing = c.status === "ringing" || c.status === "queued";
    replace(el,
      h("div", { class: "row" },
        h("h2", { id: "pop-title" }, ringing ? t("ringing") : c.on_hold ? t("on_hold") : t("current_call")),
        h("span", { class: "grow" }),
        vip ? badge("VIP", "vip") : null,
        repeat ? badge(t("repeat_caller"), "repeat") : null,
        c.recording ? badge(t("recording"), "rec") : null),
      h("div", { class: "caller" },
        h("div", { class: "name", id: "pop-name" }, cust?.name || c.caller_name || t("unknown_caller")),
        h("div", { class: "number", id: "pop-number" }, c.caller_num || "–")),
      h("dl", { class: "facts" },
        h("dt", {}, t("queue")), h("dd", { id: "pop-queue" }, c.queue || (c.origin ? t(`origin_${c.origin.replace(/-/g, "_")}`) : "–")),
        h("dt", {}, t("waited")), h("dd", { id: "pop-waited" }, c.waited !== null && c.waited !== undefined ? duration(c.waited) : "–"),
        tier ? [h("dt", {}, t("tier")), h("dd", { id: "pop-tier" }, tier)] : null,
        cust?.company ? [h("dt", {}, t("company")), h("dd", {}, cust.company)] : null,
        cust?.attributes?.plan ? [h("dt", {}, t("plan")), h("dd", {}, cust.attributes.plan)] : null),
      h("div", { class: "journey" },
        h("h3", {}, t("ivr_journey")),
        h("p", { id: "pop-journey" }, journey || t("no_journey"))),
      notes.length ? h("div", {},
        h("h3", {}, t("notes")),
        h("ul", { class: "notes", id: "pop-notes" }, notes.slice(0, 5).map((n) => h("li", {}, h("span", { class: "muted" }, dateTime(n.at, lang()), " "), n.text)))) : null,
      h("div", {},
        h("h3", {}, t("last_interactions")),
        prev.length ? h("table", { class: "grid", id: "pop-history" },
          h("thead", {}, h("tr", {}, h("th", {}, t("date")), h("th", {}, t("outcome")), h("th", {}, t("disposition")), h("th", {}, t("agent")))),
          h("tbody", {}, prev.slice(0, 5).map((p) => h("tr", {},
            h("td", {}, dateTime(p.started_at, lang())),
            h("td", {}, p.outcome ? t(`out_${p.outcome}`) : "–"),
            h("td", {}, dispositionLabel(p.disposition)),
            h("td", {}, agentName(p.agent_id)))))) : h("p", { class: "muted" }, t("no_history"))),
      renderControls(c));
  }

  function agentName(id) {
    if (!id) return "–";
    const a = st.directory.agents.find((x) => x.agent_id === id);
    return a?.name ? `${a.name} (${id})` : id;
  }

  function dispositionLabel(code) {
    if (!code) return "–";
    const d = (config.dispositions || []).find((x) => x.code === code);
    return d ? label(d) : code;
  }

  function renderControls(c) {
    const callPath = `api/calls/${encodeURIComponent(c.call_id)}`;
    const talking = c.status === "talking";
    // what the agent typed survives the re-render of a call.updated
    const picker = h("select", { id: "xfer-type", "aria-label": t("transfer_to"), onchange: (ev) => { st.xfer.type = ev.target.value; } },
      ["agent", "queue", "number"].map((k) => h("option", { value: k, selected: st.xfer.type === k }, t(`to_${k}`))));
    const target = h("input", { id: "xfer-target", list: "xfer-list", placeholder: t("transfer_target"), "aria-label": t("transfer_target"), autocomplete: "off",
      value: st.xfer.target, oninput: (ev) => { st.xfer.target = ev.target.value; } });
    const list = h("datalist", { id: "xfer-list" });
    const fillList = () => {
      const kind = picker.value;
      const items = kind === "agent"
        ? st.directory.agents.filter((a) => a.agent_id !== me.agentId).map((a) => [a.extension || a.agent_id, `${a.name || a.agent_id} (${t(`st_${a.status || "logged_out"}`)})`])
        : kind === "queue" ? st.directory.queues.map((q) => [q, q]) : [];
      replace(list, items.map(([v, l]) => h("option", { value: v }, l)));
    };
    picker.addEventListener("change", fillList);
    fillList();
    const dtmf = h("input", { id: "dtmf-digits", inputmode: "numeric", pattern: "[0-9*#]+", placeholder: "0-9 * #", "aria-label": t("dtmf"), size: 6,
      value: st.dtmf, oninput: (ev) => { st.dtmf = ev.target.value; } });
    const xfer = (kind) => {
      const body = { type: picker.value, target: target.value.trim() };
      if (!body.target) return say(t("need_target"), "error");
      return act(() => post(`${callPath}/${kind}`, body), kind === "atxfer" ? t("atxfer_started") : t("transferred"));
    };
    // PCI pause/resume of the call's recording (recording/routes.py); the paused state comes from
    // the API answer and from the pushed recording.paused / recording.resumed events
    const recControl = (which) => act(() => post(`${callPath}/recording/${which}`, {}))
      .then((out) => { if (out && st.call && st.call.call_id === c.call_id) { st.call.rec_paused = !!out.paused; renderPop(); } });
    const recButton = c.rec_paused
      ? h("button", { id: "btn-rec-resume", class: "primary", onclick: () => recControl("resume") }, t("rec_resume"))
      : h("button", { id: "btn-rec-pause", disabled: !c.recording, title: c.recording ? t("rec_pause") : t("rec_not_recorded"),
        onclick: () => recControl("pause") }, t("rec_pause"));
    return h("div", { class: "controls" },
      h("div", { class: "row" },
        h("button", { class: "danger", id: "btn-hangup", onclick: () => act(() => post(`${callPath}/hangup`)) }, t("hangup")),
        recButton,
        c.rec_paused ? h("span", { class: "badge paused", id: "rec-state", role: "status" }, t("rec_paused")) : null,
        talking || c.on_hold
          ? (c.on_hold
            ? h("button", { id: "btn-unhold", onclick: () => act(() => post(`${callPath}/unhold`)) }, t("unhold"))
            : h("button", { id: "btn-hold", onclick: () => act(() => post(`${callPath}/hold`)) }, t("hold")))
          : null,
        h("span", { class: "dtmf" }, dtmf, h("button", { id: "btn-dtmf", onclick: () => dtmf.value && act(() => post(`${callPath}/dtmf`, { digits: dtmf.value }), t("dtmf_sent")) }, t("dtmf")))),
      h("div", { class: "row transfer" },
        picker, target, list,
        h("button", { id: "btn-blind", onclick: () => xfer("transfer") }, t("blind_transfer")),
        h("button", { id: "btn-attended", onclick: () => xfer("atxfer") }, t("attended_transfer"))));
  }

  // ------------------------------------------------------------ after-call work
  function renderAfter() {
    const el = $("#after", root);
    const c = st.after;
    if (!c) { replace(el); el.hidden = true; return; }
    el.hidden = false;
    const sel = h("select", { id: "disp-code", "aria-label": t("disposition") },
      h("option", { value: "" }, t("choose")),
      (config.dispositions || []).map((d) => h("option", { value: d.code }, label(d))));
    const notes = h("textarea", { id: "disp-notes", rows: 3, "aria-label": t("notes") });
    const when = h("input", { id: "fu-when", type: "datetime-local", "aria-label": t("follow_up_at") });
    const number = h("input", { id: "fu-number", value: c.caller_num || "", "aria-label": t("number"), inputmode: "tel" });
    replace(el,
      h("h2", {}, t("after_call"), " — ", c.customer?.name || c.caller_name || c.caller_num || ""),
      h("form", { id: "disp-form", onsubmit: async (ev) => {
        ev.preventDefault();
        if (!sel.value && !notes.value.trim()) return say(t("need_disposition"), "error");
        const ok = await act(() => post(`api/calls/${encodeURIComponent(c.call_id)}/disposition`, { disposition: sel.value || null, notes: notes.value.trim() || null }), t("saved"));
        if (ok === undefined) return;
        if (when.value) {
          const at = new Date(when.value);
          const done = await act(() => post("api/web/follow-ups", { call_id: c.call_id, number: number.value.trim(), requested_time: at.toISOString(), queue: c.queue || null, note: notes.value.trim() || null }), t("follow_up_booked"));
          if (done === undefined) return;
          loadCallbacks();
        }
        st.after = null;
        renderAfter();
      } },
        h("label", {}, t("disposition"), sel),
        h("label", {}, t("notes"), notes),
        h("fieldset", {}, h("legend", {}, t("follow_up")),
          h("label", {}, t("follow_up_at"), when),
          h("label", {}, t("number"), number)),
        h("div", { class: "row" },
          h("button", { class: "primary", type: "submit", id: "btn-save-disp" }, t("save")),
          h("button", { type: "button", class: "quiet", onclick: () => { st.after = null; renderAfter(); } }, t("skip")))));
  }

  // ------------------------------------------------------------ callbacks
  async function loadCallbacks() {
    const items = await act(() => get("api/callbacks"));
    if (items) { st.callbacks = items.filter((c) => ["open", "taken", "dialing"].includes(c.status)); renderCallbacks(); }
  }

  function renderCallbacks() {
    const el = $("#callbacks", root);
    replace(el,
      h("h2", {}, t("callbacks"), " ", h("span", { class: "count" }, st.callbacks.length)),
      st.callbacks.length ? h("ul", { class: "list", id: "callback-list" }, st.callbacks.map((cb) => h("li", {},
        h("div", {}, h("strong", {}, cb.number), " · ", cb.queue, " · ",
          h("span", { class: "muted" }, cb.requested_time ? dateTime(cb.requested_time, lang()) : t("asap"))),
        h("div", { class: "row" },
          h("span", { class: `chip ${cb.status}` }, t(`cb_${cb.status}`)),
          cb.status === "open" ? h("button", { onclick: () => act(() => post(`api/callbacks/${encodeURIComponent(cb.id)}/take`)).then(loadCallbacks) }, t("take")) : null,
          cb.status !== "open" && cb.agent_id === me.agentId ? h("button", { class: "primary", onclick: () => act(() => post(`api/callbacks/${encodeURIComponent(cb.id)}/dial`), t("dialing")).then(loadCallbacks) }, t("call_back")) : null)))) :
        h("p", { class: "muted" }, t("no_callbacks")));
  }

  // ------------------------------------------------------------ customers
  function renderCustomers() {
    const el = $("#customers", root);
    const q = h("input", { id: "cust-q", type: "search", placeholder: t("search_customers"), "aria-label": t("search_customers") });
    const form = h("form", { class: "row", role: "search", onsubmit: async (ev) => {
      ev.preventDefault();
      const out = await act(() => get(`api/customers?q=${encodeURIComponent(q.value.trim())}&limit=20`));
      if (out) { st.customers = out; st.editing = null; renderCustomers(); $("#cust-q", root).value = q.value; }
    } }, q, h("button", { type: "submit", id: "btn-cust-search" }, t("search")));
    replace(el,
      h("h2", {}, t("customers")),
      form,
      st.editing ? customerForm(st.editing) : null,
      h("ul", { class: "list", id: "customer-list" }, st.customers.map((c) => h("li", {},
        h("div", {}, h("strong", {}, c.name), " ", c.vip ? badge("VIP", "vip") : null, h("div", { class: "muted" }, c.phone, c.company ? ` · ${c.company}` : "")),
        h("div", { class: "row" },
          h("button", { onclick: () => { st.editing = c; renderCustomers(); } }, t("edit")),
          h("button", { class: "primary", onclick: () => act(() => post("api/calls/click-to-call", { number: c.phone, customer_id: c.id }), t("dialing")) }, t("call")))))));
  }

  function customerForm(c) {
    const f = {
      name: h("input", { value: c.name || "", required: true }),
      phone: h("input", { value: c.phone || "", required: true }),
      email: h("input", { value: c.email || "", type: "email" }),
      company: h("input", { value: c.company || "" }),
      vip: h("input", { type: "checkbox", checked: !!c.vip }),
    };
    return h("form", { class: "edit", id: "customer-form", onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { name: f.name.value.trim(), phone: f.phone.value.trim(), email: f.email.value.trim() || null, company: f.company.value.trim() || null, vip: f.vip.checked };
      const saved = await act(() => put(`api/customers/${c.id}`, body), t("saved"));
      if (saved) { st.customers = st.customers.map((x) => (x.id === saved.id ? saved : x)); st.editing = null; renderCustomers(); }
    } },
      h("label", {}, t("name"), f.name), h("label", {}, t("phone"), f.phone), h("label", {}, t("email"), f.email),
      h("label", {}, t("company"), f.company), h("label", { class: "inline" }, f.vip, " VIP"),
      h("div", { class: "row" }, h("button", { class: "primary", type: "submit" }, t("save")),
        h("button", { type: "button", class: "quiet", onclick: () => { st.editing = null; renderCustomers(); } }, t("cancel"))));
  }

  // ------------------------------------------------------------ live events
  function takeCall(payload, event) {
    const mine = payload.agent_id === me.agentId || !payload.agent_id;
    if (event === "call.ended") {
      if (st.call && st.call.call_id === payload.call_id) {
        st.after = { ...st.call, ...payload, customer: payload.customer || st.call.customer };
        st.call = null;
      }
    } else if (event === "call.missed") {
      if (st.call && st.call.call_id === payload.call_id) st.call = null;
    } else if (event === "call.transferred" && payload.transfer?.by === me.agentId && payload.transfer?.to_agent !== me.agentId) {
      // I transferred it on: my part of the call is over (its disposition belongs to whoever ends it)
      if (st.call && st.call.call_id === payload.call_id) {
        const to = payload.transfer.to_agent || payload.transfer.target;
        const who = st.directory.agents.find((a) => a.agent_id === to);
        st.transferredAway = who?.name || to || "";
        st.call = null;
      }
    } else if (mine || (event === "call.transferred" && payload.transfer?.to_agent === me.agentId)) {
      const prev = st.call && st.call.call_id === payload.call_id ? st.call : null;
      st.call = { ...(prev || {}), ...payload, customer: payload.customer || prev?.customer || null, ivr: payload.ivr || prev?.ivr || null };
      st.transferredAway = null;
      if (!prev) { st.xfer = { type: "agent", target: "" }; st.dtmf = ""; }
      if (event === "call.ringing") ring(st.call);
    } else if (st.call && st.call.call_id === payload.call_id) {
      // the call went on to someone else (transfer): my part is over
      const to = payload.transfer?.to_agent || payload.agent_id;
      const who = st.directory.agents.find((a) => a.agent_id === to);
      st.transferredAway = who?.name || to;
      st.call = null;
    }
    renderPop();
    renderAfter();
  }

  // a pop while the tab is in the background: a browser notification and a short ring tone
  // (Web Audio, no sound file; browsers allow it once the agent has clicked in the page)
  let audio = null;
  function ring(call) {
    if (document.visibilityState === "visible") return;
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification(t("ringing"), { body: `${call.customer?.name || call.caller_name || ""} ${call.caller_num || ""}`.trim() });
    }
    try {
      audio = audio || new AudioContext();
      for (const [at, freq] of [[0, 880], [0.25, 660], [0.5, 880]]) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        gain.gain.value = 0.08;
        osc.frequency.value = freq;
        osc.connect(gain).connect(audio.destination);
        osc.start(audio.currentTime + at);
        osc.stop(audio.currentTime + at + 0.2);
      }
    } catch { /* no audio device: the notification is enough */ }
  }

  for (const ev of ["call.ringing", "call.answered", "call.updated", "call.transferred", "call.ended", "call.missed"]) {
    live.on(ev, (p) => takeCall(p, ev));
  }
  for (const [ev, paused] of [["recording.paused", true], ["recording.resumed", false]]) {
    live.on(ev, (p) => { if (st.call && st.call.call_id === p.call_id) { st.call.rec_paused = paused; renderPop(); } });
  }
  live.on("call.failed", (p) => say(t("call_failed", { number: p.number, reason: p.reason }), "error"));
  live.on("agent.status", (p) => { if (p.agent_id === me.agentId) { st.agent = p; renderStatus(); } });
  live.on("agent.resync", (p) => { if (p.agent) st.agent = p.agent; st.call = p.call || null; renderStatus(); renderPop(); });
  live.on("callback.created", loadCallbacks);
  live.on("callback.taken", loadCallbacks);

  // after every (re)connect: where the desk stands now (the hello carries agent + call)
  live.onResync(async (hello) => {
    const [record, directory] = await Promise.all([get(agentPath), get("api/web/directory")]);
    st.record = record;
    st.directory = directory;
    st.agent = hello.agent || record.state || { status: record.status, queues: {} };
    if (hello.call) st.call = hello.call;
    else if (st.call) st.call = null; // it ended while we were away
    renderStatus(); renderPop(); renderAfter();
    loadCallbacks();
  });

  async function reload() {
    // the directory record (skills, PIN-less fields); the live state comes over the websocket
    // (agent.status), which is newer than any REST answer racing it
    const record = await act(() => get(agentPath));
    if (record) {
      st.record = record;
      if (!st.agent || !live.online) st.agent = record.state || { status: record.status, queues: {} };
      renderStatus();
    }
  }

  const tick = setInterval(() => { if (st.agent && st.agent.status !== "logged_out") renderStatusClock(); }, 1000);
  function renderStatusClock() {
    // only the clocks move each second; re-rendering the whole bar would steal keyboard focus
    const a = st.agent;
    const since = $("#time-in-state", root);
    if (since && a.status_since) since.textContent = duration(live.serverNow() - a.status_since);
    const left = $("#wrapup-left", root);
    if (left && a.wrapup_until) left.textContent = t("wrapup_left", { s: Math.max(0, Math.ceil(a.wrapup_until - live.serverNow())) });
  }

  renderStatus(); renderPop(); renderAfter(); renderCallbacks(); renderCustomers();
  if ("Notification" in window && Notification.permission === "default") {
    root.addEventListener("click", () => Notification.requestPermission().catch(() => {}), { once: true });
  }
  return () => clearInterval(tick);
}
