// THE authentication module of the page (nothing else knows how a user is signed in).
// Today: callcore's token login (POST /api/auth/login {agent_id, pin} → bearer token, kept in
// sessionStorage for this tab). Switching to cookie sessions changes only this file.

const KEY = "callcore.session";
let unauthorizedHandler = () => {};

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

export async function signIn(agentId, pin) {
  const res = await fetch("api/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ agent_id: agentId, pin }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(typeof body.detail === "string" ? body.detail : `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  const s = { token: body.token, agentId: body.agent_id, role: body.role };
  sessionStorage.setItem(KEY, JSON.stringify(s));
  return s;
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

export function authHeaders() {
  const s = session();
  return s ? { Authorization: `Bearer ${s.token}` } : {};
}

/** Query string for the websocket (browsers cannot set headers on it). */
export function wsQuery() {
  const s = session();
  return s ? `token=${encodeURIComponent(s.token)}` : "";
}

export function onUnauthorized(handler) {
  if (typeof handler === "function") unauthorizedHandler = handler;
  else unauthorizedHandler();
}
