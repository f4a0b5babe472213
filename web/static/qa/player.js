// The QA player: an <audio> element on GET /api/recordings/{id}/audio (the browser seeks with HTTP
// Range → 206), the stored waveform peaks (GET .../waveform) drawn as SVG, and on the same
// timeline the muted (PCI) spans, the holds and the transfers (agent spans) of the recording's
// metadata, the time-pinned comments and a playhead. Click or arrow keys on the waveform seek;
// playback speed 0.5–2×. Every marker keeps its seconds in data-* (what the browser test reads).
import { duration, h, replace } from "../core/dom.js";
import { t } from "../core/i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 1000, H = 120, WAVE_H = 90; // viewBox units; the lower 30 are the marker lane
export const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

/** "1:05.5" for a comment time (tenths matter when seeking to a word) */
export function stamp(sec) {
  const whole = Math.floor(sec);
  const tenth = Math.round((sec - whole) * 10);
  return tenth && tenth < 10 ? `${duration(whole)}.${tenth}` : duration(Math.round(sec));
}

/** The transfer points of a recording: where one agent's span ends and the next one's begins. */
export function transfers(rec) {
  const agents = rec.agents || [];
  return agents.slice(1).map((a, i) => ({ at: a.from, from: agents[i].agent_id, to: a.agent_id }));
}

/**
 * player(rec, wave, {onTime}) → {el, audio, seek(sec), now(), setComments(list, onPick)}
 * rec: GET /api/recordings/{id}; wave: GET .../waveform (or null when there is none yet).
 */
export function player(rec, wave, { onTime } = {}) {
  const total = (wave && wave.duration) || rec.duration || 0;
  const x = (sec) => (total > 0 ? Math.max(0, Math.min(W, (sec / total) * W)) : 0);
  const audio = h("audio", { id: "qa-audio", preload: "auto", controls: true, src: `api/recordings/${rec.id}/audio` });
  const clock = h("span", { id: "qa-clock", class: "clock", "aria-live": "off" }, `0:00 / ${duration(total)}`);
  const play = h("button", { id: "qa-play", type: "button", class: "primary", onclick: () => (audio.paused ? audio.play().catch(() => {}) : audio.pause()) }, t("qa_play"));
  const speed = h("select", { id: "qa-speed", "aria-label": t("qa_speed"), onchange: () => { audio.playbackRate = Number(speed.value); } },
    SPEEDS.map((v) => h("option", { value: v, selected: v === 1 }, `${v}×`)));
  const back = h("button", { id: "qa-back5", type: "button", onclick: () => seek(audio.currentTime - 5) }, t("qa_back5"));
  const fwd = h("button", { id: "qa-fwd5", type: "button", onclick: () => seek(audio.currentTime + 5) }, t("qa_fwd5"));

  // --- the timeline
  const svg = s("svg", {
    id: "qa-wave", class: "wave", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", tabindex: 0, role: "slider",
    "aria-label": t("qa_timeline"), "aria-valuemin": 0, "aria-valuemax": Math.round(total), "aria-valuenow": 0,
    "data-duration": total,
  });
  const lane = s("g", { class: "lane" });
  const pins = s("g", { class: "pins" });
  const head = s("line", { id: "qa-playhead", class: "playhead", x1: 0, x2: 0, y1: 0, y2: H });
  const peaks = (wave && wave.channels && wave.channels[0]) || [];
  if (peaks.length) {
    const mid = WAVE_H / 2;
    const step = W / peaks.length;
    // one path of vertical strokes: the peak level (0..1) above and below the middle line
    const d = peaks.map((p, i) => `M${(i * step + step / 2).toFixed(2)} ${(mid - p * mid).toFixed(2)}V${(mid + p * mid).toFixed(2)}`).join("");
    svg.append(s("path", { class: "peaks", d, "data-points": peaks.length, "stroke-width": Math.max(step * 0.8, 0.5) }));
  } else {
    svg.append(s("text", { x: W / 2, y: WAVE_H / 2, class: "wave-empty", "text-anchor": "middle" }, document.createTextNode(t("qa_no_waveform"))));
  }
  for (const m of rec.muted_spans || []) {
    const a = x(m.start), b = x(m.end ?? total);
    svg.append(s("rect", {
      class: "muted-span", x: a, y: 0, width: Math.max(b - a, 2), height: WAVE_H, "data-start": m.start, "data-end": m.end,
    }, s("title", {}, document.createTextNode(`${t("qa_muted")} ${stamp(m.start)}–${stamp(m.end ?? total)}${m.reason ? ` · ${m.reason}` : ""}`))));
  }
  for (const hd of rec.hold_spans || []) {
    const a = x(hd.start), b = x(hd.end);
    const label = `${t("qa_hold")} ${duration(hd.seconds)}`;
    lane.append(b - a >= 2
      ? s("rect", { class: "hold", x: a, y: WAVE_H + 4, width: b - a, height: 10, "data-start": hd.start, "data-end": hd.end, "data-seconds": hd.seconds }, s("title", {}, document.createTextNode(label)))
      : s("path", { class: "hold", d: `M${a} ${WAVE_H + 2}l-5 12h10z`, "data-start": hd.start, "data-end": hd.end, "data-seconds": hd.seconds }, s("title", {}, document.createTextNode(label))));
  }
  for (const tr of transfers(rec)) {
    const a = x(tr.at);
    lane.append(s("g", { class: "transfer", "data-at": tr.at, "data-from": tr.from, "data-to": tr.to },
      s("line", { x1: a, x2: a, y1: 0, y2: H }),
      s("title", {}, document.createTextNode(`${t("qa_transfer")} ${tr.from} → ${tr.to} · ${stamp(tr.at)}`))));
  }
  svg.append(lane, pins, head);

  function seek(sec) {
    const to = Math.max(0, Math.min(total || audio.duration || 0, sec));
    audio.currentTime = to;
    draw(to);
  }
  function draw(now) {
    const px = x(now);
    head.setAttribute("x1", px);
    head.setAttribute("x2", px);
    svg.setAttribute("aria-valuenow", Math.round(now));
    svg.setAttribute("aria-valuetext", `${duration(now)} / ${duration(total)}`);
    clock.textContent = `${duration(now)} / ${duration(total)}`;
    if (onTime) onTime(now);
  }
  svg.addEventListener("click", (ev) => {
    const box = svg.getBoundingClientRect();
    if (box.width > 0) seek(((ev.clientX - box.left) / box.width) * total);
  });
  svg.addEventListener("keydown", (ev) => {
    const keys = { ArrowLeft: -5, ArrowRight: 5, PageDown: -30, PageUp: 30 };
    if (ev.key in keys) { ev.preventDefault(); seek(audio.currentTime + keys[ev.key]); }
    else if (ev.key === "Home") { ev.preventDefault(); seek(0); }
    else if (ev.key === "End") { ev.preventDefault(); seek(total); }
    else if (ev.key === " ") { ev.preventDefault(); play.click(); }
  });
  audio.addEventListener("timeupdate", () => draw(audio.currentTime));
  audio.addEventListener("seeked", () => draw(audio.currentTime));
  audio.addEventListener("play", () => { play.textContent = t("qa_pause"); });
  audio.addEventListener("pause", () => { play.textContent = t("qa_play"); });
  audio.addEventListener("ratechange", () => { speed.value = String(audio.playbackRate); });

  const legend = h("p", { class: "wave-legend muted" },
    h("span", { class: "key muted-key" }, t("qa_muted")), h("span", { class: "key hold-key" }, t("qa_hold")),
    h("span", { class: "key transfer-key" }, t("qa_transfer")), h("span", { class: "key pin-key" }, t("qa_comment")));

  const el = h("section", { class: "panel player", id: "qa-player", "aria-label": t("qa_player") },
    h("div", { class: "wave-box" }, svg), legend,
    h("div", { class: "row" }, play, back, fwd, h("label", { class: "inline" }, t("qa_speed"), speed), clock),
    audio);

  /** comments pinned to a time: a pin on the timeline each (click seeks) */
  function setComments(list, onPick) {
    replace(pins);
    list.forEach((c, i) => {
      if (c.at === null || c.at === undefined) return;
      const px = x(c.at);
      const pin = s("g", { class: "pin", "data-at": c.at, "data-index": i },
        s("line", { x1: px, x2: px, y1: 0, y2: WAVE_H }), s("circle", { cx: Math.max(5, Math.min(W - 5, px)), cy: 6, r: 5 }),
        s("title", {}, document.createTextNode(`${stamp(c.at)} ${c.text}`)));
      pin.addEventListener("click", (ev) => { ev.stopPropagation(); seek(c.at); if (onPick) onPick(i); });
      pins.append(pin);
    });
  }

  return { el, audio, seek, now: () => audio.currentTime, setComments, total };
}
