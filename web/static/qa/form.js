// The evaluation form beside the player: sections and questions of the form (GET /api/qa/forms),
// answers as radio groups (N/A where the form allows it), and the LIVE SCORE from the server
// (POST /api/qa/forms/{id}/score on every change). The page computes no score and decides no
// visibility itself: the server's answer says which conditional questions are hidden, the section
// scores, the total, the critical failure and the band.
import { post } from "../core/api.js";
import { h, replace } from "../core/dom.js";
import { lang, t } from "../core/i18n.js";

/** a form label: a string or {ko, en} */
export function txt(v) {
  if (!v) return "";
  if (typeof v === "string") return v;
  return v[lang()] || v.en || v.ko || Object.values(v)[0] || "";
}

function optionLabel(q, o) {
  const l = txt(o.label);
  return l && l !== o.id ? l : q.type === "yesno" ? t(`qa_yn_${o.id}`) : o.id;
}

/** the score panel (total, band, sections); ``score``: the server's ScoreResult.as_dict() */
export function scorePanel(form, score, id = "qa-score") {
  const bandLabel = score && score.band_label ? txt(score.band_label) : "";
  const total = score ? score.total : null;
  return h("div", { class: "score", id, "aria-live": "polite" },
    h("div", { class: "total" },
      h("span", { class: "caption" }, t("qa_total")),
      h("strong", { id: `${id}-total`, "data-value": total ?? "" }, total === null || total === undefined ? "–" : String(total)),
      h("span", { id: `${id}-band`, class: `band b-${score && score.band ? score.band : "none"}`, "data-band": (score && score.band) || "" }, bandLabel || "–"),
      score && score.critical_failed ? h("span", { class: "badge rec", id: `${id}-critical` }, t("qa_critical_failed")) : null),
    h("ul", { class: "sections" }, (form.sections || []).map((sec) => {
      const sc = score && (score.sections || []).find((x) => x.id === sec.id);
      const v = sc ? sc.score : null;
      return h("li", { dataset: { section: sec.id, value: v ?? "" } },
        h("span", {}, `${txt(sec.title) || sec.id} (${sec.weight})`), h("span", { class: "num" }, v === null || v === undefined ? "–" : String(v)));
    })));
}

/**
 * formEditor(form, {answers, readOnly, onChange}) → {el, answers(), visibleAnswers(), score(), refresh()}
 * Every change asks the server for the score; the newest answer wins (older replies are dropped).
 */
export function formEditor(form, { answers = {}, readOnly = false, onChange, onError } = {}) {
  const values = { ...answers };
  let last = null; // the server's newest score
  let seq = 0;
  const scoreBox = h("div", { class: "score-box" });
  const blocks = new Map(); // question id -> its fieldset

  function questionBlock(q, n) {
    const name = `q-${q.id}`;
    const choices = [...q.options.map((o) => ({ id: o.id, label: optionLabel(q, o) }))];
    if (q.na_allowed) choices.push({ id: "na", label: t("qa_na") });
    const fs = h("fieldset", { class: `question t-${q.type}`, id: `qa-q-${q.id}`, dataset: { question: q.id } },
      h("legend", {}, `${n}. ${txt(q.text) || q.id}`, q.critical ? h("span", { class: "badge rec" }, t("qa_critical")) : null),
      h("div", { class: "choices", role: "radiogroup" }, choices.map((c) => h("label", { class: "inline choice" },
        h("input", {
          type: "radio", name, value: c.id, checked: String(values[q.id] ?? "") === c.id, disabled: readOnly,
          onchange: () => { values[q.id] = c.id; refresh(); if (onChange) onChange(); },
        }), c.label))),
      h("span", { class: "points muted", id: `qa-pts-${q.id}` }));
    blocks.set(q.id, fs);
    return fs;
  }

  let n = 0;
  const sections = (form.sections || []).map((sec) => h("section", { class: "form-section", dataset: { section: sec.id } },
    h("h3", {}, `${txt(sec.title) || sec.id} · ${t("qa_weight", { w: sec.weight })}`),
    sec.questions.map((q) => questionBlock(q, ++n))));

  const el = h("div", { class: "qa-form", id: "qa-form" }, scoreBox, sections);

  function apply(score) {
    last = score;
    replace(scoreBox, scorePanel(form, score));
    for (const [qid, fs] of blocks) {
      const st = score.questions && score.questions[qid];
      fs.hidden = !!st && st.status === "hidden"; // the server's visibility of conditional questions
      const pts = fs.querySelector(".points");
      pts.textContent = st && st.status === "answered" ? t("qa_points", { p: st.points, max: st.max }) : st && st.status === "na" ? t("qa_na") : "";
    }
  }

  async function refresh() {
    const mine = ++seq;
    try {
      const score = await post(`api/qa/forms/${encodeURIComponent(form.id)}/score`, { answers: visibleAnswers(true) });
      if (mine === seq) apply(score);
    } catch (e) {
      if (mine === seq && onError) onError(e);
    }
  }

  /** the answers, without those the server last said are hidden (``all``: every answer given) */
  function visibleAnswers(all = false) {
    const out = {};
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined || v === null || v === "") continue;
      const st = last && last.questions && last.questions[k];
      if (!all && st && st.status === "hidden") continue;
      out[k] = v;
    }
    return out;
  }

  return { el, answers: () => ({ ...values }), visibleAnswers, score: () => last, refresh, settled: () => seq };
}
