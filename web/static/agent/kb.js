// The desk's knowledge-base panel (issue 17): the pop's suggested articles with the reason
// ("suggested because: IVR intent = refund"), the notices to acknowledge, a ko/en search box, an article opened in place,
// "helpful" marked on the call, and a call script's steps ticked through (the ticks are kept on
// the call record: POST api/kb/calls/{id}/ticks). Text goes in through textContent only; the
// search highlights are rebuilt from the server's escaped HTML (only <mark> is kept).
import { get, post } from "../core/api.js";
import { h, replace } from "../core/dom.js";
import { lang, t } from "../core/i18n.js";
import { notify } from "../core/view.js";

/** "a <mark>b</mark> &amp; c" (already escaped by the server) → text nodes and <mark> elements */
function marked(htmlText) {
  const doc = new DOMParser().parseFromString(`<p>${htmlText || ""}</p>`, "text/html");
  const out = [];
  for (const n of doc.body.firstChild?.childNodes || []) {
    if (n.nodeType === Node.ELEMENT_NODE && n.tagName === "MARK") out.push(h("mark", {}, n.textContent));
    else out.push(n.textContent);
  }
  return out;
}

export function kbPanel(el) {
  const st = {
    call: null,          // the call the panel is for (live, or just ended: marks still count)
    suggestions: [],
    q: "",
    searchLang: "",      // "" = any, "ko", "en"
    results: null,       // last search answer
    article: null,       // the opened article
    helpful: new Set(),  // article ids marked helpful on this call
    ticks: new Set(),    // "articleId:step" ticked on this call
    notices: [],         // new/changed articles this agent has not acknowledged yet
  };

  const fail = (e) => notify(e.detail || e.message, "error");

  async function open(id) {
    try {
      st.article = await get(`api/kb/articles/${encodeURIComponent(id)}`);
      render();
      el.querySelector("#kb-article")?.scrollIntoView({ block: "nearest" });
    } catch (e) { fail(e); }
  }

  async function markHelpful(id) {
    if (!st.call) return;
    try {
      const out = await post(`api/kb/calls/${encodeURIComponent(st.call.call_id)}/feedback`, { article_id: id, kind: "helpful" });
      st.helpful.add(id);
      if (st.article && st.article.id === id) st.article.helpful_count = out.helpful_count;
      notify(t("kb_marked_helpful"), "ok");
      render();
    } catch (e) { fail(e); }
  }

  async function tick(articleId, step, done) {
    if (!st.call) return;
    const key = `${articleId}:${step}`;
    try {
      await post(`api/kb/calls/${encodeURIComponent(st.call.call_id)}/ticks`, { article_id: articleId, step, done });
      if (done) st.ticks.add(key); else st.ticks.delete(key);
      render();
    } catch (e) { fail(e); render(); }
  }

  async function search(ev) {
    ev?.preventDefault();
    const q = el.querySelector("#kb-q").value.trim();
    st.q = q;
    st.searchLang = el.querySelector("#kb-lang").value;
    if (!q) { st.results = null; render(); return; }
    const params = new URLSearchParams({ q, limit: "8" });
    if (st.searchLang) params.set("language", st.searchLang);
    try {
      st.results = await get(`api/kb/search?${params}`);
      render();
    } catch (e) { fail(e); }
  }

  async function loadNotices() {
    try {
      st.notices = (await get("api/kb/notices")).filter((n) => !n.acknowledged_at);
      render();
    } catch (e) { fail(e); }
  }

  async function acknowledge(id) {
    try {
      await post(`api/kb/notices/${encodeURIComponent(id)}/ack`);
      st.notices = st.notices.filter((n) => n.id !== id);
      notify(t("kb_acknowledged"), "ok");
      render();
    } catch (e) { fail(e); }
  }

  function noticeList() {
    if (!st.notices.length) return null;
    return [h("h3", {}, t("kb_notices")),
      h("ul", { class: "kb-list", id: "kb-notices" }, st.notices.map((n) =>
        h("li", { dataset: { notice: String(n.id) } },
          h("a", { href: "#", onclick: (e) => { e.preventDefault(); open(n.article_id); } }, n.title),
          n.change ? h("div", { class: "muted" }, n.change) : null,
          h("button", { type: "button", "data-ack": n.id, onclick: () => acknowledge(n.id) }, t("kb_acknowledge")))))];
  }

  function helpfulButton(id) {
    if (!st.call) return null;
    const done = st.helpful.has(id);
    return h("button", { type: "button", class: done ? "quiet" : "", "data-helpful": id, disabled: done,
      onclick: () => markHelpful(id) }, done ? t("kb_helpful_done") : t("kb_helpful"));
  }

  function steps(article) {
    if (!article.steps || !article.steps.length) return null;
    return h("ol", { class: "kb-steps", id: `kb-steps-${article.id}` }, article.steps.map((s) => {
      const key = `${article.id}:${s.id}`;
      const box = h("input", { type: "checkbox", id: `kb-step-${article.id}-${s.id}`, "data-step": s.id,
        checked: st.ticks.has(key), disabled: !st.call, onchange: (e) => tick(article.id, s.id, e.target.checked) });
      return h("li", { class: st.ticks.has(key) ? "done" : "" },
        h("label", { for: box.id }, box, " ", h("strong", {}, s.title || s.id)),
        s.text ? h("div", { class: "muted" }, s.text) : null);
    }));
  }

  function suggestionList() {
    if (!st.call) return h("p", { class: "muted" }, t("kb_no_call"));
    if (!st.suggestions.length) return h("p", { class: "muted", id: "kb-no-suggestions" }, t("kb_no_suggestions"));
    return h("ul", { class: "kb-list", id: "kb-suggestions" }, st.suggestions.map((s) =>
      h("li", { dataset: { article: String(s.id), slug: s.slug } },
        h("a", { href: "#", onclick: (e) => { e.preventDefault(); open(s.id); } }, s.title),
        " ", h("span", { class: "badge" }, s.language),
        h("div", { class: "muted kb-because" }, s.because?.[lang()] || s.because?.en || ""),
        helpfulButton(s.id))));
  }

  function resultList() {
    const r = st.results;
    if (!r) return null;
    const fixed = Object.entries(r.corrected || {}).map(([w, to]) => `${w} → ${to.join(", ")}`);
    return h("div", { id: "kb-results" },
      h("p", { class: "muted", id: "kb-total" }, t("kb_found", { n: r.total }),
        fixed.length ? ` · ${t("kb_corrected")}: ${fixed.join("; ")}` : ""),
      h("ul", { class: "kb-list" }, r.results.map((a) =>
        h("li", { dataset: { article: String(a.id), slug: a.slug } },
          h("a", { href: "#", onclick: (e) => { e.preventDefault(); open(a.id); } }, marked(a.highlights?.title)),
          " ", h("span", { class: "badge" }, a.language),
          h("div", { class: "muted" }, marked(a.highlights?.snippet))))));
  }

  function articleView() {
    const a = st.article;
    if (!a) return null;
    return h("article", { id: "kb-article", class: "kb-article", dataset: { article: String(a.id) } },
      h("div", { class: "row" },
        h("h3", { id: "kb-article-title" }, a.title),
        h("button", { type: "button", class: "quiet", id: "kb-close", onclick: () => { st.article = null; render(); } }, t("kb_close"))),
      h("div", { class: "kb-body", style: "white-space: pre-wrap" }, a.body || ""),
      steps(a),
      h("div", { class: "row" }, helpfulButton(a.id),
        h("span", { class: "muted", id: "kb-helpful-count" }, t("kb_helpful_count", { n: a.helpful_count ?? 0 }))));
  }

  function render() {
    const langSel = h("select", { id: "kb-lang", "aria-label": t("language") },
      [["", t("kb_any_language")], ["ko", "한국어"], ["en", "English"]].map(([v, l]) =>
        h("option", { value: v, selected: v === st.searchLang }, l)));
    replace(el,
      h("h2", {}, t("kb_title")),
      noticeList(),
      h("h3", {}, t("kb_suggested")),
      suggestionList(),
      h("form", { class: "row", id: "kb-search", role: "search", onsubmit: search },
        h("input", { id: "kb-q", type: "search", value: st.q, placeholder: t("kb_search_placeholder"), "aria-label": t("kb_search") }),
        langSel,
        h("button", { type: "submit" }, t("search"))),
      resultList(),
      articleView());
  }

  /** The desk tells the panel which call it is showing (null: none). */
  function setCall(call) {
    const id = call?.call_id || null;
    if (id !== (st.call?.call_id || null)) {
      st.helpful = new Set();
      st.ticks = new Set();
      if (!id) st.article = null;
    }
    st.call = call || null;
    st.suggestions = call?.kb?.suggestions || [];
    render();
  }

  render();
  loadNotices();
  return { setCall, open, loadNotices };
}
