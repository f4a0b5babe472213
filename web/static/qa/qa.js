// The QA workspace (issue 15). QA users (qa.evaluate): recording search with the recording
// filters (GET /api/recordings), their work list (GET /api/qa/worklist), evaluations, and the
// evaluation screen — player with waveform and markers (player.js) beside the form with the
// server's live score (form.js), comments pinned to a time, save draft / submit. QA leads
// (qa.lead) also build the work list and resolve disputes. Agents (qa.read_own): their own
// evaluations with score, band and comments, acknowledge or dispute within the window.
import { ApiError, get, post, put } from "../core/api.js";
import { can, session } from "../core/auth.js";
import { $, dateTime, duration, h, replace } from "../core/dom.js";
import { lang, t } from "../core/i18n.js";
import { notify } from "../core/view.js";
import { formEditor, scorePanel, txt } from "./form.js";
import { player, stamp } from "./player.js";

const DIRECTIONS = ["inbound", "outbound", "click-to-call", "callback"];
const STATUSES = ["ready", "pending", "recording", "failed", "discarded", "purged", "deleted"];
const EV_STATES = ["draft", "submitted", "acknowledged", "disputed", "resolved"];

function me() {
  const s = session();
  const subject = s.subject.startsWith("user:") ? s.subject.slice(5) : s.subject;
  return { subject, agentId: s.agentId || subject };
}

function fail(e) {
  notify(e instanceof ApiError ? e.detail : String(e.message || e), "error");
}

function stateChip(state) {
  return h("span", { class: `state ev-${state}`, dataset: { state } }, t(`qa_st_${state}`));
}

function bandChip(ev, form) {
  if (!ev.band) return "–";
  const band = form && (form.bands || []).find((b) => b.id === ev.band);
  return h("span", { class: `band b-${ev.band}`, dataset: { band: ev.band } }, band ? txt(band.label) : ev.band);
}

/** a datetime-local value (local wall clock) → an ISO instant for the API */
function isoOf(local) {
  if (!local) return null;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export async function mount(root) {
  const evaluator = can("qa.evaluate");
  const lead = can("qa.lead");
  let forms = [];
  try {
    forms = (await get("api/qa/forms")).forms || [];
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 503)) throw e;
    notify(e.detail, "error"); // forms not loaded: the screen still lists and plays
  }
  const formOf = (id) => forms.find((f) => f.id === id) || null;

  const tabs = evaluator
    ? [["worklist", t("qa_worklist")], ["search", t("qa_search")], ["evaluations", t("qa_evaluations")]]
    : [["mine", t("qa_mine")]];
  if (evaluator && session().agentId) tabs.push(["mine", t("qa_mine")]);
  const bar = h("div", { class: "tabs", role: "tablist", id: "qa-tabs" });
  const body = h("div", { id: "qa-body" });
  root.append(h("section", { class: "qa" }, h("h1", {}, t("nav_qa")), bar, body));
  let current = tabs[0][0];

  function showTabs(active) {
    current = active;
    replace(bar, tabs.map(([id, label]) => h("button", {
      type: "button", role: "tab", id: `qa-tab-${id}`, class: id === active ? "on" : "", "aria-selected": String(id === active),
      onclick: () => open(id),
    }, label)));
  }

  async function open(tab, arg) {
    showTabs(tab);
    replace(body, h("p", { class: "muted" }, t("loading")));
    try {
      if (tab === "worklist") await worklistView();
      else if (tab === "search") await searchView();
      else if (tab === "evaluations") await evaluationsView(arg);
      else if (tab === "mine") await mineView();
    } catch (e) {
      replace(body, h("p", { class: "error-text", role: "alert" }, e.detail || e.message));
    }
  }

  // ------------------------------------------------------------ work list
  async function worklistView() {
    const all = h("input", { type: "checkbox", id: "qa-wl-all", onchange: () => load() });
    const list = h("div", { id: "qa-worklist" });
    const tools = h("div", { class: "row toolbar" },
      h("label", { class: "inline" }, all, t("qa_wl_all")),
      lead ? h("button", { type: "button", id: "qa-wl-build", onclick: async () => {
        try {
          const r = await post("api/qa/worklist/build", {});
          notify(t("qa_wl_built", { n: r.picked, period: r.period }), "ok");
          await load();
        } catch (e) { fail(e); }
      } }, t("qa_wl_build")) : null);
    replace(body, h("section", { class: "panel" }, h("h2", {}, t("qa_worklist")), tools, list));

    async function load() {
      const q = all.checked ? "" : `?evaluator=${encodeURIComponent(me().subject)}`;
      const items = await get(`api/qa/worklist${q}`);
      replace(list, items.length ? h("table", { class: "grid", id: "qa-wl-table" },
        h("thead", {}, h("tr", {}, [t("qa_recording"), t("agent"), t("queue"), t("qa_rule"), t("qa_reason"), t("qa_evaluator"), ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, items.map((it) => h("tr", { dataset: { recording: it.recording_id, item: it.id } },
          h("td", {}, `#${it.recording_id}`), h("td", {}, it.agent_id || "–"), h("td", {}, it.queue || "–"),
          h("td", {}, it.rule), h("td", { class: "reason" }, it.reason), h("td", {}, it.evaluator || t("qa_unassigned")),
          h("td", {}, h("button", { type: "button", class: "primary", onclick: () => evaluate(it.recording_id, { workItem: it }) }, t("qa_evaluate")))))))
        : h("p", { class: "muted", id: "qa-wl-empty" }, t("qa_wl_empty")));
    }
    await load();
  }

  // ------------------------------------------------------------ recording search
  async function searchView() {
    const f = {
      start: h("input", { id: "qf-start", type: "datetime-local" }),
      end: h("input", { id: "qf-end", type: "datetime-local" }),
      agent: h("input", { id: "qf-agent", size: 8 }),
      queue: h("input", { id: "qf-queue", size: 8 }),
      caller: h("input", { id: "qf-caller", size: 12, inputmode: "tel" }),
      direction: h("select", { id: "qf-direction" }, h("option", { value: "" }, t("qa_any")), DIRECTIONS.map((d) => h("option", { value: d }, t(`qa_dir_${d.replace(/-/g, "_")}`)))),
      disposition: h("input", { id: "qf-disposition", size: 10 }),
      min_duration: h("input", { id: "qf-min", type: "number", min: 0, step: 1, size: 5 }),
      max_duration: h("input", { id: "qf-max", type: "number", min: 0, step: 1, size: 5 }),
      muted: h("select", { id: "qf-muted" }, h("option", { value: "" }, t("qa_any")), h("option", { value: "true" }, t("qa_yes")), h("option", { value: "false" }, t("qa_no"))),
      qa_sample: h("select", { id: "qf-sample" }, h("option", { value: "" }, t("qa_any")), h("option", { value: "true" }, t("qa_yes")), h("option", { value: "false" }, t("qa_no"))),
      tag: h("input", { id: "qf-tag", size: 10 }),
      status: h("select", { id: "qf-status" }, h("option", { value: "" }, t("qa_any")), STATUSES.map((st) => h("option", { value: st, selected: st === "ready" }, t(`qa_rs_${st}`)))),
    };
    const labels = {
      start: t("qa_f_start"), end: t("qa_f_end"), agent: t("agent"), queue: t("queue"), caller: t("caller"), direction: t("qa_f_direction"),
      disposition: t("disposition"), min_duration: t("qa_f_min"), max_duration: t("qa_f_max"), muted: t("qa_f_muted"),
      qa_sample: t("qa_f_sample"), tag: t("qa_f_tag"), status: t("status"),
    };
    const results = h("div", { id: "qa-results" });
    const more = h("p", { class: "row" });
    let cursor = null;
    let rows = [];
    const form = h("form", { class: "panel form-grid", id: "qa-search", onsubmit: (ev) => { ev.preventDefault(); search(false); } },
      Object.entries(f).map(([k, el]) => h("label", {}, labels[k], el)),
      h("button", { class: "primary", type: "submit", id: "qa-search-go" }, t("search")));
    replace(body, form, h("section", { class: "panel" }, h("h2", {}, t("qa_recordings")), results, more));

    function params() {
      const p = new URLSearchParams();
      for (const [k, el] of Object.entries(f)) {
        let v = el.value.trim();
        if (k === "start" || k === "end") v = isoOf(v) || "";
        if (v) p.append(k, v);
      }
      p.append("limit", "25");
      return p;
    }

    async function search(next) {
      const p = params();
      if (next && cursor) p.append("cursor", cursor);
      try {
        const r = await get(`api/recordings?${p}`);
        rows = next ? rows.concat(r.items) : r.items;
        cursor = r.next_cursor;
        render();
      } catch (e) { fail(e); }
    }

    function render() {
      replace(results, rows.length ? h("table", { class: "grid", id: "qa-rec-table" },
        h("thead", {}, h("tr", {}, [t("date"), t("caller"), t("agent"), t("queue"), t("qa_duration"), t("disposition"), t("status"), ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.map((r) => h("tr", { dataset: { recording: r.id, call: r.call_id } },
          h("td", {}, dateTime(r.started_at, lang())),
          h("td", {}, r.caller_name ? `${r.caller_name} ${r.caller_num || ""}` : (r.caller_num || "–")),
          h("td", {}, (r.agents || []).map((a) => a.agent_id).join(" → ") || r.agent_id || "–"),
          h("td", {}, r.queue || "–"),
          h("td", { class: "num" }, duration(r.duration)),
          h("td", {}, r.disposition || "–"),
          h("td", {}, t(`qa_rs_${r.status}`), r.muted ? h("span", { class: "badge paused" }, t("qa_muted")) : null),
          h("td", {}, r.status === "ready" ? h("button", { type: "button", class: "primary", onclick: () => evaluate(r.id) }, t("qa_evaluate")) : null)))))
        : h("p", { class: "muted", id: "qa-no-results" }, t("qa_no_recordings")));
      replace(more, cursor ? h("button", { type: "button", id: "qa-more", onclick: () => search(true) }, t("qa_more")) : null);
    }
    await search(false);
  }

  // ------------------------------------------------------------ evaluations (QA staff)
  async function evaluationsView(state = "") {
    const sel = h("select", { id: "qa-ev-state", onchange: () => load() },
      h("option", { value: "" }, t("qa_any")), EV_STATES.map((s) => h("option", { value: s, selected: s === state }, t(`qa_st_${s}`))));
    const list = h("div", { id: "qa-ev-list" });
    replace(body, h("section", { class: "panel" }, h("div", { class: "row toolbar" }, h("h2", {}, t("qa_evaluations")),
      h("label", { class: "inline" }, t("status"), sel)), list));
    async function load() {
      const q = sel.value ? `?state=${sel.value}` : "";
      const evs = (await get(`api/qa/evaluations${q}`)).filter((e) => e.calibration_id === null);
      replace(list, evaluationTable(evs, (ev) => evaluate(ev.recording_id, { evaluationId: ev.id })));
    }
    await load();
  }

  function evaluationTable(evs, onOpen, id = "qa-ev-table") {
    if (!evs.length) return h("p", { class: "muted", id: `${id}-empty` }, t("qa_no_evaluations"));
    return h("table", { class: "grid", id },
      h("thead", {}, h("tr", {}, ["#", t("qa_recording"), t("agent"), t("qa_evaluator"), t("qa_submitted"), t("qa_total"), t("qa_band"), t("status"), t("qa_respond_by"), ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, evs.map((ev) => h("tr", { dataset: { evaluation: ev.id, state: ev.state } },
        h("td", {}, String(ev.id)), h("td", {}, `#${ev.recording_id}`), h("td", {}, ev.agent_id), h("td", {}, ev.evaluator),
        h("td", {}, dateTime(ev.submitted_at, lang())),
        h("td", { class: "num", dataset: { value: ev.total ?? "" } }, ev.total ?? "–"),
        h("td", {}, bandChip(ev, formOf(ev.form_id))), h("td", {}, stateChip(ev.state)),
        h("td", {}, ev.response_open ? dateTime(ev.respond_by, lang()) : "–"),
        h("td", {}, h("button", { type: "button", onclick: () => onOpen(ev) }, t("qa_open")))))));
  }

  // ------------------------------------------------------------ the evaluation screen
  async function evaluate(recordingId, { workItem = null, evaluationId = null } = {}) {
    replace(body, h("p", { class: "muted" }, t("loading")));
    const rec = await get(`api/recordings/${recordingId}`);
    const wave = await get(`api/recordings/${recordingId}/waveform`).catch(() => null);
    // an evaluation to show: the one asked for, else my draft of this recording
    let ev = null;
    if (evaluationId) ev = await get(`api/qa/evaluations/${evaluationId}`);
    else {
      const mine = (await get(`api/recordings/${recordingId}/evaluations`))
        .filter((e) => e.evaluator === me().subject && e.state === "draft" && e.calibration_id === null);
      if (mine.length) ev = await get(`api/qa/evaluations/${mine[0].id}`);
    }
    const formId = (ev && ev.form_id) || (workItem && workItem.form_id) || (forms[0] && forms[0].id);
    const form = formOf(formId);
    if (!form) { replace(body, h("p", { class: "error-text", role: "alert" }, t("qa_no_form"))); return; }
    const editable = !ev || (ev.state === "draft" && ev.evaluator === me().subject);
    const resolving = !!ev && ev.state === "disputed" && lead;
    let comments = ev ? [...(ev.comments || [])] : [];

    const p = player(rec, wave);
    const commentList = h("ol", { class: "list comments", id: "qa-comments" });
    const editor = formEditor(form, {
      answers: ev ? ev.answers || {} : {}, readOnly: !(editable || resolving), onError: fail,
    });
    function renderComments(focus) {
      comments.sort((a, b) => (a.at ?? Infinity) - (b.at ?? Infinity));
      replace(commentList, comments.length ? comments.map((c, i) => h("li", { dataset: { at: c.at ?? "", index: i }, class: i === focus ? "active" : "" },
        c.at !== null && c.at !== undefined
          ? h("button", { type: "button", class: "quiet seek", "aria-label": t("qa_seek_to", { at: stamp(c.at) }), onclick: () => p.seek(c.at) }, stamp(c.at))
          : h("span", { class: "muted" }, "–"),
        h("span", { class: "grow" }, c.text, c.question ? h("span", { class: "chip" }, c.question) : null),
        editable ? h("button", { type: "button", class: "quiet", "aria-label": t("qa_remove_comment"), onclick: () => { comments.splice(i, 1); renderComments(); } }, "✕") : null))
        : h("li", { class: "muted" }, t("qa_no_comments")));
      p.setComments(comments, (i) => renderComments(i));
    }

    const text = h("textarea", { id: "qa-comment-text", rows: 2, maxlength: 4000, "aria-label": t("qa_comment") });
    const question = h("select", { id: "qa-comment-question", "aria-label": t("qa_comment_question") },
      h("option", { value: "" }, t("qa_no_question")),
      (form.sections || []).flatMap((s) => s.questions).map((q) => h("option", { value: q.id }, `${q.id} · ${txt(q.text)}`.slice(0, 80))));
    const addBox = editable ? h("div", { class: "add-comment" }, text, h("div", { class: "row" }, question,
      h("button", { type: "button", id: "qa-add-comment", onclick: () => {
        const v = text.value.trim();
        if (!v) { text.focus(); return; }
        comments.push({ text: v, at: Math.round(p.now() * 10) / 10, question: question.value || null });
        text.value = "";
        renderComments();
      } }, t("qa_add_comment")))) : null;

    const status = h("p", { id: "qa-ev-status", class: "muted", role: "status" }, ev ? t("qa_ev_is", { id: ev.id, state: t(`qa_st_${ev.state}`) }) : t("qa_ev_new"));
    let evId = ev ? ev.id : null;

    async function save(submit) {
      const payload = { answers: editor.visibleAnswers(), comments, submit };
      try {
        const out = evId
          ? await put(`api/qa/evaluations/${evId}`, payload)
          : await post(`api/recordings/${recordingId}/evaluations`, { ...payload, form_id: form.id, work_item_id: workItem ? workItem.id : null });
        evId = out.id;
        notify(submit ? t("qa_submitted_ok", { total: out.total }) : t("qa_saved_draft"), "ok");
        if (submit) return evaluate(recordingId, { evaluationId: out.id });
        status.textContent = t("qa_ev_is", { id: out.id, state: t(`qa_st_${out.state}`) });
      } catch (e) { fail(e); }
    }

    const actions = h("div", { class: "row actions", id: "qa-actions" });
    if (editable) {
      actions.append(
        h("button", { type: "button", id: "qa-save", onclick: () => save(false) }, t("qa_save_draft")),
        h("button", { type: "button", id: "qa-submit", class: "primary", onclick: () => save(true) }, t("qa_submit")));
    } else if (resolving) {
      const outcome = h("select", { id: "qa-resolve-outcome", "aria-label": t("qa_outcome") },
        h("option", { value: "upheld" }, t("qa_upheld")), h("option", { value: "changed" }, t("qa_changed")));
      const why = h("textarea", { id: "qa-resolve-comment", rows: 2, maxlength: 4000, "aria-label": t("qa_resolution_comment") });
      actions.append(h("div", { class: "panel resolve" }, h("h3", {}, t("qa_resolve")),
        h("p", {}, t("qa_dispute_said"), " ", h("q", { id: "qa-dispute-comment" }, ev.dispute_comment || "")),
        outcome, why, h("button", { type: "button", class: "primary", id: "qa-resolve", onclick: async () => {
          if (!why.value.trim()) { why.focus(); return; }
          const b = { outcome: outcome.value, comment: why.value.trim() };
          if (outcome.value === "changed") b.answers = editor.visibleAnswers();
          try {
            const out = await post(`api/qa/evaluations/${ev.id}/resolve`, b);
            notify(t("qa_resolved_ok", { total: out.total }), "ok");
            evaluate(recordingId, { evaluationId: ev.id });
          } catch (e) { fail(e); }
        } }, t("qa_resolve"))));
    }

    const facts = h("dl", { class: "facts", id: "qa-rec-facts" },
      h("dt", {}, t("date")), h("dd", {}, dateTime(rec.started_at, lang())),
      h("dt", {}, t("caller")), h("dd", {}, [rec.caller_name, rec.caller_num].filter(Boolean).join(" ") || "–"),
      h("dt", {}, t("agent")), h("dd", {}, (rec.agents || []).map((a) => a.agent_id).join(" → ") || rec.agent_id || "–"),
      h("dt", {}, t("queue")), h("dd", {}, rec.queue || "–"),
      h("dt", {}, t("qa_duration")), h("dd", {}, duration(rec.duration)),
      h("dt", {}, t("disposition")), h("dd", {}, rec.disposition || "–"),
      workItem ? [h("dt", {}, t("qa_reason")), h("dd", {}, workItem.reason)] : null);

    replace(body,
      h("p", { class: "row" }, h("button", { type: "button", id: "qa-back", onclick: () => open(current) }, `← ${t("qa_back")}`),
        h("strong", {}, t("qa_recording_n", { id: rec.id })), status),
      h("div", { class: "qa-eval" },
        h("div", { class: "col" }, p.el,
          h("section", { class: "panel" }, h("h2", {}, t("qa_call")), facts),
          h("section", { class: "panel" }, h("h2", {}, t("qa_comments")), commentList, addBox)),
        h("section", { class: "panel col", "aria-label": t("qa_form") }, h("h2", {}, txt(form.title) || form.id), editor.el, actions)));
    renderComments();
    await editor.refresh();
  }

  // ------------------------------------------------------------ the agent's own evaluations
  async function mineView(openId = null) {
    const evs = await get(`api/qa/evaluations?agent_id=${encodeURIComponent(me().agentId)}`);
    const detail = h("div", { id: "qa-mine-detail" });
    replace(body, h("section", { class: "panel" }, h("h2", {}, t("qa_mine")),
      evaluationTable(evs.filter((e) => e.state !== "draft" && e.calibration_id === null), (ev) => showMine(ev.id), "qa-mine-table")), detail);

    async function showMine(id) {
      const ev = await get(`api/qa/evaluations/${id}`);
      const form = formOf(ev.form_id);
      let p = null;
      try {
        const [rec, wave] = await Promise.all([get(`api/recordings/${ev.recording_id}`), get(`api/recordings/${ev.recording_id}/waveform`).catch(() => null)]);
        p = player(rec, wave);
        p.setComments(ev.comments || []);
      } catch { p = null; } // an agent may not play recordings (recording_agents_see_own off)
      const questions = new Map((form ? form.sections.flatMap((s) => s.questions) : []).map((q) => [q.id, q]));
      const answers = Object.entries((ev.score && ev.score.questions) || {}).filter(([, st]) => st.status !== "hidden");
      const comment = h("textarea", { id: "qa-response-comment", rows: 2, maxlength: 4000, "aria-label": t("qa_response_comment") });
      const respond = async (what) => {
        const c = comment.value.trim();
        if (what === "dispute" && !c) { comment.focus(); notify(t("qa_dispute_needs_comment"), "error"); return; }
        try {
          await post(`api/qa/evaluations/${ev.id}/${what}`, { comment: c || null });
          notify(t(what === "dispute" ? "qa_disputed_ok" : "qa_acknowledged_ok"), "ok");
          await mineView(ev.id);
        } catch (e) { fail(e); }
      };
      replace(detail, h("section", { class: "panel", id: "qa-mine-ev", dataset: { evaluation: ev.id, state: ev.state } },
        h("h2", {}, t("qa_evaluation_n", { id: ev.id }), " ", stateChip(ev.state)),
        form ? scorePanel(form, ev.score, "qa-mine-score") : null,
        p ? p.el : null,
        h("h3", {}, t("qa_comments")),
        h("ol", { class: "list comments", id: "qa-mine-comments" }, (ev.comments || []).length ? ev.comments.map((c) => h("li", { dataset: { at: c.at ?? "" } },
          c.at !== null && c.at !== undefined && p ? h("button", { type: "button", class: "quiet seek", onclick: () => p.seek(c.at) }, stamp(c.at)) : h("span", { class: "muted" }, c.at !== null && c.at !== undefined ? stamp(c.at) : "–"),
          h("span", { class: "grow" }, c.text, c.question ? h("span", { class: "chip" }, c.question) : null))) : h("li", { class: "muted" }, t("qa_no_comments"))),
        h("h3", {}, t("qa_answers")),
        h("table", { class: "grid", id: "qa-mine-answers" }, h("tbody", {}, answers.map(([qid, st]) => h("tr", { dataset: { question: qid } },
          h("td", {}, questions.has(qid) ? txt(questions.get(qid).text) : qid),
          h("td", {}, st.status === "na" ? t("qa_na") : answerLabel(questions.get(qid), st.answer)),
          h("td", { class: "num" }, st.status === "answered" ? t("qa_points", { p: st.points, max: st.max }) : ""))))),
        ev.state === "disputed" ? h("p", {}, t("qa_dispute_said"), " ", h("q", {}, ev.dispute_comment)) : null,
        ev.state === "resolved" ? h("p", { id: "qa-mine-resolution" }, t(`qa_resolution_${ev.resolution}`), ev.resolution_comment ? ` — ${ev.resolution_comment}` : "") : null,
        ev.response_open ? h("div", { class: "respond" },
          h("p", { class: "muted" }, t("qa_respond_until", { at: dateTime(ev.respond_by, lang()) })),
          comment,
          h("div", { class: "row" },
            h("button", { type: "button", class: "primary", id: "qa-acknowledge", onclick: () => respond("acknowledge") }, t("qa_acknowledge")),
            h("button", { type: "button", id: "qa-dispute", onclick: () => respond("dispute") }, t("qa_dispute")))) : null));
    }
    if (openId) await showMine(openId);
  }

  function answerLabel(q, answer) {
    if (!q) return String(answer ?? "–");
    const o = (q.options || []).find((x) => x.id === String(answer));
    const l = o && txt(o.label);
    return l && l !== o.id ? l : q.type === "yesno" ? t(`qa_yn_${answer}`) : String(answer);
  }

  await open(tabs[0][0], lead ? "" : undefined);
  return () => {};
}
