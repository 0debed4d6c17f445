// The store API as a browser front end uses it: the anonymous cookie rides along
// (same-origin credentials), a logged-in user sends a bearer token, every POST that changes
// something carries an Idempotency-Key, and errors are problem+json.
import { locale, t } from "./i18n.js";

const TOKEN = "store.token";
const USER = "store.user";
const RETRIES = 2;

/** An API error: the problem+json body as the API words it. */
export class Problem extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || "";
    this.title = body.title || "";
    this.detail = body.detail || "";
    this.errors = Array.isArray(body.errors) ? body.errors : [];
  }
}

export function session() {
  const token = localStorage.getItem(TOKEN);
  return token ? { token, user: localStorage.getItem(USER) || "" } : null;
}

export function logIn(token, user) {
  localStorage.setItem(TOKEN, token);
  localStorage.setItem(USER, user);
}

export function logOut() {
  localStorage.removeItem(TOKEN);
  localStorage.removeItem(USER);
}

/** A fresh key for one user action; retries of that action reuse it. */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // plain-HTTP pages lack randomUUID
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function withLocale(path) {
  const url = new URL(path, location.origin);
  if (url.pathname.startsWith("/api/store/")) url.searchParams.set("locale", locale());
  return url.pathname + url.search;
}

/** An unavailable service, or the same action still running on the server (its key in use). */
async function worthRetrying(response) {
  if ([502, 503, 504].includes(response.status)) return true;
  if (response.status !== 409) return false;
  const body = await response.clone().json().catch(() => ({}));
  return body.code === "idempotency_key_in_use";
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One API call. `idempotencyKey` marks an action that may be retried safely: a lost
 * connection or an unavailable service is retried a few times with the same key.
 */
export async function api(method, path, { body, idempotencyKey } = {}) {
  const headers = { accept: "application/json, application/problem+json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
  const current = session();
  if (current) headers.authorization = `Bearer ${current.token}`;
  // GET, PATCH (set a quantity) and DELETE repeat safely; a POST only with its key.
  const retryable = idempotencyKey || ["GET", "PATCH", "DELETE"].includes(method);
  const attempts = retryable ? RETRIES + 1 : 1;
  let response;
  for (let attempt = 1; ; attempt++) {
    try {
      response = await fetch(withLocale(path), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
      if (!(await worthRetrying(response)) || attempt >= attempts) break;
    } catch (error) {
      if (attempt >= attempts) throw new Problem(0, { title: t("unreachable"), code: "network" });
    }
    await sleep(300 * attempt);
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : {};
  if (!response.ok) {
    if (response.status === 401 && current) {
      logOut();
      document.dispatchEvent(new CustomEvent("store:session-expired"));
    }
    throw new Problem(response.status, data);
  }
  return data;
}
