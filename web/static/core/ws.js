// THE websocket client of the page: one connection to /ws on the page's own host,
// reconnect with back-off, resync after every (re)connect, and the online/offline state.
//
//   const live = new Live();
//   live.on("call.ringing", (payload) => ...);     // any callcore event name
//   live.onResync(async (hello) => ...);            // after every (re)connect: reload state over REST
//   live.onStatus((online) => ...);
//   live.subscribe(["queue.stats"]);                // re-sent after every reconnect
//   live.start();
import { wsQuery } from "./auth.js";

export class Live {
  constructor({ minDelay = 250, maxDelay = 5000, pingEvery = 15000 } = {}) {
    this.handlers = new Map();
    this.resyncers = [];
    this.statusers = [];
    this.keys = new Set();
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.pingEvery = pingEvery;
    this.delay = minDelay;
    this.ws = null;
    this.online = false;
    this.stopped = false;
    this.lastMessageAt = null;
    this.reconnects = 0;
    this.skew = 0; // our clock minus the server's, in seconds (from the server times in payloads)
  }

  /** The server's clock now (epoch seconds), for "time in state" and countdowns. */
  serverNow() {
    return Date.now() / 1000 - this.skew;
  }

  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
    return this;
  }
  onResync(fn) { this.resyncers.push(fn); return this; }
  onStatus(fn) { this.statusers.push(fn); fn(this.online); return this; }

  subscribe(keys) {
    for (const k of keys) this.keys.add(k);
    this.send({ subscribe: [...keys] });
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const base = new URL("ws", location.href); // relative to the page: works under a path prefix
    const query = wsQuery();
    return `${scheme}//${base.host}${base.pathname}${query ? `?${query}` : ""}`;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    if (this.ws) this.ws.close();
    this.ws = null;
  }

  connect() {
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.setOnline(false);
      clearInterval(this.pingTimer);
      this.scheduleReconnect();
    };
    ws.onerror = () => {}; // onclose follows; the indicator shows it
  }

  scheduleReconnect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.maxDelay, this.delay * 2);
  }

  async receive(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    this.lastMessageAt = Date.now();
    const stamp = msg.payload && (msg.payload.sent_at ?? msg.payload.at);
    if (typeof stamp === "number") this.skew = Date.now() / 1000 - stamp;
    if (msg.event === "hello") {
      this.delay = this.minDelay;
      if (this.keys.size) this.send({ subscribe: [...this.keys] });
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({ ping: Date.now() }), this.pingEvery);
      for (const fn of this.resyncers) {
        try { await fn(msg.payload); } catch (e) { console.warn("resync failed", e); }
      }
      this.setOnline(true);
      if (this.everConnected) this.reconnects += 1;
      this.everConnected = true;
    }
    for (const fn of this.handlers.get(msg.event) || []) {
      try { fn(msg.payload, msg.event); } catch (e) { console.warn(`handler of ${msg.event} failed`, e); }
    }
  }

  setOnline(online) {
    if (this.online === online) return;
    this.online = online;
    for (const fn of this.statusers) fn(online);
  }
}
