// Small view pieces shared by the screens.
import { $, h } from "./dom.js";
import { lang, t } from "./i18n.js";

/** A configured label {code, ko, en} in the page's language. */
export function label(item) {
  if (!item) return "";
  return item[lang()] || item.en || item.ko || item.code || "";
}

/** The IVR journey in plain words, from the flow's node labels: "언어: 한국어 → 요금 문의 → …". */
export function journeyText(ivr) {
  const steps = (ivr && ivr.journey) || [];
  const l = lang();
  return steps
    .map((s) => (s.text && (s.text[l] || s.text["*"] || Object.values(s.text)[0])) || "")
    .filter(Boolean)
    .join(" → ");
}

/** A short message in the toast area (role=status: read out by screen readers). */
export function notify(text, kind = "info") {
  const area = $("#toasts");
  if (!area) return;
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  area.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
  if (kind === "error") console.info("callcore:", text); // visible in logs, not a console error
  return el;
}

export function tileClass(value, threshold, lowerIsWorse) {
  if (value === null || value === undefined || !threshold) return "";
  if (lowerIsWorse) return value <= threshold.alert ? "alert" : value <= threshold.warn ? "warn" : "ok";
  return value >= threshold.alert ? "alert" : value >= threshold.warn ? "warn" : "ok";
}

export { t };
