// Boot: sign in, then the screen the role needs. One websocket client per screen visit
// (core/ws.js), one translation table (core/i18n.js), one auth module (core/auth.js).
import { get } from "./core/api.js";
import { onUnauthorized, restore, signIn, signOut } from "./core/auth.js";
import { $, h, replace } from "./core/dom.js";
import { LANGUAGES, lang, setLang, t } from "./core/i18n.js";
import { Live } from "./core/ws.js";

const SCREENS = {
  agent: () => import("./agent/agent.js"),
  wallboard: () => import("./wallboard/wallboard.js"),
  admin: () => import("./admin/admin.js"),
  reports: () => import("./reports/reports.js"),
  qa: () => import("./qa/qa.js"),
};

/** Which screens the user may open (from their permissions), the first being their home. */
function screensFor(me) {
  const can = (p) => me.permissions.includes(p);
  const out = [];
  const admin = can("agents.admin") || can("dialplans.admin");
  if (admin && (me.role === "admin" || me.role === "ops")) out.push("admin");
  if (can("queues.monitor")) out.push("wallboard");
  if (me.agentId && can("agents.self")) out.push("agent");
  if (admin && !out.includes("admin")) out.push("admin");
  if (can("qa.evaluate")) out.push("qa"); // QA users' home: the QA workspace
  if (can("reports.read")) out.push("reports");
  if (!out.includes("qa") && me.agentId && can("qa.read_own")) out.push("qa"); // agents: their own evaluations
  return out;
}

let active = null; // {live, cleanup}

function header(me) {
  const bar = $("#topbar");
  const langSel = h("select", { id: "lang", "aria-label": t("language"), onchange: (ev) => { setLang(ev.target.value); route(); } },
    LANGUAGES.map((l) => h("option", { value: l, selected: l === lang() }, l === "ko" ? "한국어" : "English")));
  const links = me ? screensFor(me).map((s) => h("a", { href: `#/${s}`, class: location.hash === `#/${s}` ? "on" : "" }, t(`nav_${s}`))) : [];
  replace(bar,
    h("strong", { class: "brand" }, t("app")),
    h("nav", { "aria-label": "screens" }, links),
    h("span", { class: "grow" }),
    me ? h("span", { id: "conn", class: "conn", role: "status" }) : null,
    me ? h("span", { class: "who" }, `${me.agentId || me.subject} · ${t(`role_${me.role}`)}`) : null,
    langSel,
    me ? h("button", { id: "btn-signout", class: "quiet", onclick: async () => { stop(); await signOut(); route(); } }, t("sign_out")) : null);
}

function stop() {
  if (!active) return;
  try { active.cleanup && active.cleanup(); } catch (e) { console.warn(e); }
  active.live.stop();
  active = null;
}

function showSignIn(message) {
  header(null);
  const id = h("input", { id: "signin-id", name: "agent_id", autocomplete: "username", required: true, autofocus: true });
  const pin = h("input", { id: "signin-pin", name: "pin", type: "password", autocomplete: "current-password", required: true });
  const err = h("p", { class: "error-text", role: "alert", id: "signin-error" }, message || "");
  replace($("#app"), h("form", { class: "panel signin", id: "signin", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await signIn(id.value.trim(), pin.value);
      location.hash = "";
      route();
    } catch (e) {
      err.textContent = t("sign_in_failed", { detail: e.message });
    }
  } },
    h("h1", {}, t("app")),
    h("label", {}, t("agent_id"), id),
    h("label", {}, t("pin"), pin),
    h("button", { class: "primary", type: "submit", id: "signin-submit" }, t("sign_in")),
    err));
  id.focus();
}

async function route() {
  stop();
  let me;
  try {
    me = await restore();
  } catch (e) {
    return showSignIn(e.message);
  }
  if (!me) return showSignIn();
  const allowed = screensFor(me);
  if (!allowed.length) return showSignIn(t("no_screen"));
  const wanted = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const screen = allowed.includes(wanted) ? wanted : allowed[0];
  if (wanted !== screen) history.replaceState(null, "", `#/${screen}`);
  header(me);
  const root = $("#app");
  replace(root, h("p", { class: "muted" }, t("loading")));
  const [config, mod] = await Promise.all([get("api/web/config"), SCREENS[screen]()]);
  const live = new Live();
  const conn = $("#conn");
  live.onStatus((online) => {
    document.body.classList.toggle("offline", !online);
    if (conn) {
      conn.textContent = online ? t("online") : t("offline");
      conn.className = `conn ${online ? "on" : "off"}`;
    }
  });
  replace(root);
  const cleanup = await mod.mount(root, { live, me, config });
  active = { live, cleanup };
  live.start();
}

onUnauthorized(() => { stop(); showSignIn(); });
window.addEventListener("hashchange", route);
route();
