// Admin / ops: agents, pause reasons, queue settings, dialplans (versions, diff, checker
// result, activate/rollback, the flow graph rendered server-side by Graphviz).
import { api, get, post, put } from "../core/api.js";
import { $, dateTime, h, replace } from "../core/dom.js";
import { lang, t } from "../core/i18n.js";
import { label, notify } from "../core/view.js";

export async function mount(root, { live, me, config }) {
  const st = { agents: [], queues: [], reasons: [], settings: {}, dialplans: null, flow: null, version: null, graphUrl: null };
  const tabs = [["agents", t("agents")], ["pause", t("pause_reasons")], ["queues", t("queue_settings")], ["dialplans", t("dialplans")]];
  let current = "dialplans";
  const body = h("div", { id: "admin-body" });
  const nav = h("div", { class: "tabs", role: "tablist" });
  root.append(h("section", { class: "admin" }, nav, body));

  const act = async (fn, okText) => {
    try { const out = await fn(); if (okText) notify(okText, "ok"); return out; } catch (e) { notify(e.detail || e.message, "error"); return undefined; }
  };

  function renderNav() {
    replace(nav, tabs.map(([id, text]) => h("button", {
      role: "tab", id: `tab-${id}`, "aria-selected": String(current === id), class: current === id ? "on" : "",
      onclick: () => { current = id; show(); },
    }, text)));
  }

  async function show() {
    renderNav();
    replace(body, h("p", { class: "muted" }, t("loading")));
    if (current === "agents") await showAgents();
    else if (current === "pause") await showReasons();
    else if (current === "queues") await showQueues();
    else await showDialplans();
  }

  // ------------------------------------------------------------ agents
  const skillsText = (skills) => (skills || []).map((s) => (s.penalty ? `${s.queue}:${s.penalty}` : s.queue)).join(", ");
  const parseSkills = (text) => text.split(",").map((x) => x.trim()).filter(Boolean).map((x) => {
    const [queue, penalty] = x.split(":");
    return { queue: queue.trim(), penalty: Number(penalty || 0) || 0 };
  });

  async function showAgents() {
    const [agents, dir] = await Promise.all([act(() => get("api/agents")), act(() => get("api/web/directory"))]);
    st.agents = agents || [];
    st.queues = dir?.queues || [];
    const f = {
      id: h("input", { required: true, pattern: "[A-Za-z0-9_.\\-]+", id: "new-agent-id" }),
      name: h("input", { required: true, id: "new-agent-name" }),
      interface: h("input", { required: true, placeholder: "PJSIP/1003", id: "new-agent-interface" }),
      extension: h("input", { placeholder: "1003" }),
      role: h("select", {}, ["agent", "supervisor", "admin"].map((r) => h("option", { value: r }, t(`role_${r}`)))),
      skills: h("input", { placeholder: "sales, billing:1" }),
      pin: h("input", { type: "password", minlength: 4, autocomplete: "new-password" }),
    };
    replace(body,
      h("section", { class: "panel" }, h("h2", {}, t("agents")),
        h("table", { class: "grid", id: "agents-table" },
          h("thead", {}, h("tr", {}, [t("agent"), t("name"), t("role"), t("skills"), t("status"), t("actions")].map((x) => h("th", {}, x)))),
          h("tbody", {}, st.agents.map((a) => agentRow(a))))),
      h("section", { class: "panel" }, h("h2", {}, t("new_agent")),
        h("form", { class: "form-grid", id: "new-agent", onsubmit: async (ev) => {
          ev.preventDefault();
          const bodyJson = { id: f.id.value.trim(), name: f.name.value.trim(), interface: f.interface.value.trim(),
            extension: f.extension.value.trim() || null, role: f.role.value, skills: parseSkills(f.skills.value), pin: f.pin.value || null };
          if (await act(() => post("api/agents", bodyJson), t("saved"))) showAgents();
        } },
          h("label", {}, t("agent_id"), f.id), h("label", {}, t("name"), f.name), h("label", {}, t("interface"), f.interface),
          h("label", {}, t("extension"), f.extension), h("label", {}, t("role"), f.role),
          h("label", {}, t("skills_hint"), f.skills), h("label", {}, "PIN", f.pin),
          h("button", { class: "primary", type: "submit" }, t("create")))));
  }

  function agentRow(a) {
    const skills = h("input", { value: skillsText(a.skills), "aria-label": `${t("skills")} ${a.id}`, size: 18 });
    const pin = h("input", { type: "password", placeholder: t("new_pin"), "aria-label": `${t("new_pin")} ${a.id}`, size: 8, autocomplete: "new-password" });
    return h("tr", { dataset: { agent: a.id } },
      h("td", {}, a.id), h("td", {}, a.name), h("td", {}, t(`role_${a.role || "agent"}`)),
      h("td", {}, skills), h("td", {}, h("span", { class: `state s-${a.status}` }, t(`st_${a.status}`))),
      h("td", { class: "actions" },
        h("button", { onclick: () => act(() => put(`api/agents/${encodeURIComponent(a.id)}`, { skills: parseSkills(skills.value) }), t("saved")) }, t("save_skills")),
        pin, h("button", { onclick: () => pin.value.length >= 4
          ? act(() => put(`api/agents/${encodeURIComponent(a.id)}`, { pin: pin.value }), t("pin_reset")).then(() => { pin.value = ""; })
          : notify(t("pin_too_short"), "error") }, t("reset_pin"))));
  }

  // ------------------------------------------------------------ pause reasons
  async function showReasons() {
    const codes = (await act(() => get("api/pause-reasons"))) || [];
    const code = h("input", { pattern: "[A-Za-z0-9_.\\-]+", required: true, id: "new-reason" });
    const text = h("input", { id: "new-reason-label" });
    const known = Object.fromEntries((config.pause_reasons || []).map((r) => [r.code, r]));
    replace(body, h("section", { class: "panel" }, h("h2", {}, t("pause_reasons")),
      h("ul", { class: "list", id: "reason-list" }, codes.map((c) => h("li", {},
        h("span", {}, h("strong", {}, c), " ", known[c] ? label(known[c]) : ""),
        h("button", { class: "quiet", onclick: async () => { if (await act(() => put(`api/pause-reasons/${encodeURIComponent(c)}`, { active: false }), t("saved"))) showReasons(); } }, t("deactivate"))))),
      h("form", { class: "row", onsubmit: async (ev) => {
        ev.preventDefault();
        if (await act(() => put(`api/pause-reasons/${encodeURIComponent(code.value.trim())}`, { label: text.value.trim() || null, active: true }), t("saved"))) showReasons();
      } }, h("label", {}, t("code"), code), h("label", {}, t("label"), text), h("button", { class: "primary", type: "submit" }, t("add")))));
  }

  // ------------------------------------------------------------ queue settings
  const QS = [["wrapup_seconds", "number"], ["service_level_seconds", "number"], ["overflow_queue", "text"], ["overflow_after_seconds", "number"],
    ["overflow_when_no_agent", "checkbox"], ["callback_after_seconds", "number"], ["vip_priority", "number"], ["repeat_priority", "number"], ["default_handle_seconds", "number"]];

  async function showQueues() {
    const settings = (await act(() => get("api/web/queue-settings"))) || [];
    replace(body, h("div", { class: "cards" }, settings.map((qs) => {
      const inputs = {};
      const fields = QS.map(([k, type]) => {
        const v = qs[k];
        const el = type === "checkbox" ? h("input", { type: "checkbox", checked: !!v }) : h("input", { type, value: v ?? "", min: type === "number" ? 0 : null });
        inputs[k] = el;
        return h("label", { class: type === "checkbox" ? "inline" : "" }, t(`qs_${k}`), el);
      });
      return h("section", { class: "panel", dataset: { queue: qs.name } }, h("h2", {}, qs.name),
        h("form", { class: "form-grid", onsubmit: async (ev) => {
          ev.preventDefault();
          const out = {};
          for (const [k, type] of QS) {
            const el = inputs[k];
            out[k] = type === "checkbox" ? el.checked : el.value === "" ? null : type === "number" ? Number(el.value) : el.value.trim();
          }
          for (const k of ["service_level_seconds", "vip_priority", "repeat_priority", "default_handle_seconds"]) if (out[k] === null) delete out[k];
          await act(() => put(`api/queues/${encodeURIComponent(qs.name)}/settings`, out), t("saved"));
        } }, fields, h("button", { class: "primary", type: "submit" }, t("save"))));
    })));
  }

  // ------------------------------------------------------------ dialplans
  async function showDialplans() {
    const d = await act(() => get("api/dialplans"));
    if (!d) return;
    st.dialplans = d;
    const flows = [...new Set(d.versions.map((v) => v.flow))].sort();
    if (!st.flow || !flows.includes(st.flow)) st.flow = flows.includes("main") ? "main" : flows[0];
    const versions = d.versions.filter((v) => v.flow === st.flow).sort((a, b) => (a.loaded_at < b.loaded_at ? 1 : -1));
    const activeHash = d.active[st.flow];
    const flowSel = h("select", { id: "flow-select", "aria-label": t("flow"), onchange: (ev) => { st.flow = ev.target.value; st.version = null; showDialplans(); } },
      flows.map((f) => h("option", { value: f, selected: f === st.flow }, f)));
    const last = d.last_reload;
    const diffA = h("select", { id: "diff-a", "aria-label": t("diff_from") }, versions.map((v, i) => h("option", { value: v.hash, selected: i === 1 }, `${v.hash.slice(0, 10)} ${dateTime(v.loaded_at, lang())}`)));
    const diffB = h("select", { id: "diff-b", "aria-label": t("diff_to") }, versions.map((v, i) => h("option", { value: v.hash, selected: i === 0 }, `${v.hash.slice(0, 10)} ${dateTime(v.loaded_at, lang())}`)));
    const diffOut = h("pre", { class: "diff", id: "diff-out" });
    replace(body,
      h("section", { class: "panel" },
        h("div", { class: "row" }, h("h2", {}, t("dialplans")), flowSel, h("span", { class: "grow" }),
          h("button", { id: "btn-reload", onclick: async () => { const r = await reloadResult(() => post("api/dialplans/reload")); if (r) showDialplans(); } }, t("reload_from_disk"))),
        last ? h("p", { id: "last-reload", class: last.ok ? "ok-text" : "error-text" },
          `${t("last_reload")}: ${last.reason} — ${last.ok ? t("check_ok") : t("check_failed")}`,
          last.errors?.length ? h("ul", {}, last.errors.map((e) => h("li", {}, e))) : null,
          last.warnings?.length ? h("ul", { class: "muted" }, last.warnings.map((e) => h("li", {}, e))) : null) : null,
        h("table", { class: "grid", id: "versions" },
          h("thead", {}, h("tr", {}, [t("version"), t("loaded_at"), t("file"), t("status"), t("actions")].map((x) => h("th", {}, x)))),
          h("tbody", {}, versions.map((v) => h("tr", { dataset: { hash: v.hash }, class: v.hash === activeHash ? "active" : "" },
            h("td", {}, h("code", {}, v.hash.slice(0, 12))),
            h("td", {}, dateTime(v.loaded_at, lang())),
            h("td", {}, v.file),
            h("td", {}, v.hash === activeHash ? h("span", { class: "badge ok" }, t("active")) : ""),
            h("td", { class: "actions" },
              h("button", { onclick: () => inspect(v.hash) }, t("check")),
              v.hash !== activeHash ? h("button", { class: "primary", dataset: { action: "activate" }, onclick: () => activate(v.hash) }, t("activate")) : null)))))),
      h("section", { class: "panel" }, h("h2", {}, t("diff")),
        h("div", { class: "row" }, diffA, "→", diffB,
          h("button", { id: "btn-diff", onclick: async () => {
            const r = await act(() => get(`api/dialplans/${encodeURIComponent(st.flow)}/diff?a=${diffA.value}&b=${diffB.value}`));
            if (r) renderDiff(diffOut, r.diff);
          } }, t("show_diff"))),
        diffOut),
      h("section", { class: "panel", id: "version-panel" }),
      h("section", { class: "panel" }, h("h2", {}, t("flow_graph"), " — ", st.flow),
        h("div", { class: "graph", id: "graph" }, h("p", { class: "muted" }, t("loading")))));
    loadGraph(st.version);
    if (st.version) inspect(st.version);
  }

  async function reloadResult(fn) {
    try {
      const r = await fn();
      notify(r.ok ? t("check_ok") : t("check_failed"), r.ok ? "ok" : "error");
      return r;
    } catch (e) {
      notify(e.detail || e.message, "error"); // a 422 carries the checker's errors
      return undefined;
    }
  }

  async function activate(hash) {
    const r = await reloadResult(() => post(`api/dialplans/${encodeURIComponent(st.flow)}/rollback`, { hash }));
    if (r && r.ok) { st.version = null; showDialplans(); }
  }

  async function inspect(hash) {
    const v = await act(() => get(`api/dialplans/${encodeURIComponent(st.flow)}/versions/${hash}`));
    if (!v) return;
    st.version = hash;
    replace($("#version-panel", root),
      h("h2", {}, t("version"), " ", h("code", {}, v.hash.slice(0, 12))),
      h("p", { id: "check-result", class: v.check.ok ? "ok-text" : "error-text" }, v.check.ok ? t("check_ok") : t("check_failed")),
      v.check.errors.length ? h("ul", {}, v.check.errors.map((e) => h("li", {}, e))) : null,
      v.check.warnings.length ? h("ul", { class: "muted" }, v.check.warnings.map((e) => h("li", {}, e))) : null,
      h("details", {}, h("summary", {}, t("source")), h("pre", { class: "source" }, v.source)));
    loadGraph(hash);
  }

  async function loadGraph(hash) {
    const el = $("#graph", root);
    try {
      const res = await api("GET", `api/dialplans/${encodeURIComponent(st.flow)}/graph.svg${hash ? `?hash=${hash}` : ""}`, undefined, { raw: true });
      const blob = await res.blob();
      if (st.graphUrl) URL.revokeObjectURL(st.graphUrl);
      st.graphUrl = URL.createObjectURL(blob);
      // an <img>: the SVG is shown, never run (no script from a dialplan reaches the page)
      replace(el, h("img", { src: st.graphUrl, alt: `${t("flow_graph")} ${st.flow}`, id: "graph-img" }));
    } catch (e) {
      replace(el, h("p", { class: "error-text" }, e.detail || e.message));
    }
  }

  function renderDiff(el, text) {
    replace(el, text ? text.split("\n").map((line) => h("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "" }, line, "\n")) : t("no_difference"));
  }

  await show();
  return () => { if (st.graphUrl) URL.revokeObjectURL(st.graphUrl); };
}
