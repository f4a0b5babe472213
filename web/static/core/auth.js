// THE authentication module of the page (nothing else knows how a user is signed in).
// Browser session: POST /api/auth/session {username, password} sets an HttpOnly,
// SameSite=Strict cookie and answers the CSRF token, sent back as X-CSRF-Token on every
// unsafe request; GET /api/auth/me restores both after a reload; DELETE /api/auth/session
// signs out. The websocket rides on the same cookie (same origin), so no token is ever kept
// where page scripts could read it.

let current = null; // {subject, role, agentId, permissions, csrf}
// a hint, not a credential: "this browser signed in" (asking /api/auth/me without a
// session would only produce a 401 in the console on every fresh visit)
const HINT = "callcore.signed-in";
let unauthorizedHandler = () => {};

function fromMe(body) {
  return {
    subject: body.subject, role: body.role, agentId: body.agent_id,
    permissions: body.permissions || [], csrf: body.csrf_token || null,
  };
}

export function session() {
  return current;
}

/** After a page load: the signed-in user from the session cookie, or null. */
export async function restore() {
  if (!localStorage.getItem(HINT)) return null;
  const res = await fetch("api/auth/me", { credentials: "same-origin" });
  if (!res.ok) {
    current = null;
    localStorage.removeItem(HINT);
    return null;
  }
  current = fromMe(await res.json());
  return current;
}

export async function signIn(username, password) {
  const res = await fetch("api/auth/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(typeof body.detail === "string" ? body.detail : `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  current = fromMe(body);
  localStorage.setItem(HINT, "1");
  return current;
}

export async function signOut() {
  const headers = authHeaders("DELETE");
  current = null;
  localStorage.removeItem(HINT);
  await fetch("api/auth/session", { method: "DELETE", credentials: "same-origin", headers }).catch(() => {});
}

/** Headers a request needs: the CSRF token on unsafe methods (the cookie goes by itself). */
export function authHeaders(method = "GET") {
  if (!current || !current.csrf || ["GET", "HEAD", "OPTIONS"].includes(method)) return {};
  return { "X-CSRF-Token": current.csrf };
}

/** Query string for the websocket: nothing, the session cookie authenticates it. */
export function wsQuery() {
  return "";
}

export function can(permission) {
  return !!current && current.permissions.includes(permission);
}

export function onUnauthorized(handler) {
  if (typeof handler === "function") unauthorizedHandler = handler;
  else unauthorizedHandler();
}
