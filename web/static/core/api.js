// REST calls to callcore: same origin, relative URLs (the page works on any host), the
// credentials come from the one auth module.
import { authHeaders, onUnauthorized } from "./auth.js";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

function detailOf(body, status) {
  if (!body) return `HTTP ${status}`;
  const d = body.detail ?? body.errors ?? body;
  if (Array.isArray(d)) return d.map((x) => (typeof x === "string" ? x : `${(x.loc || []).slice(1).join(".")}: ${x.msg}`)).join("; ");
  return typeof d === "string" ? d : JSON.stringify(d);
}

export async function api(method, path, body, { raw = false } = {}) {
  const headers = { ...authHeaders(method) };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) onUnauthorized();
  if (raw) {
    if (!res.ok) throw new ApiError(res.status, detailOf(await res.json().catch(() => null), res.status));
    return res;
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) throw new ApiError(res.status, detailOf(data, res.status));
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});
export const put = (path, body) => api("PUT", path, body ?? {});
