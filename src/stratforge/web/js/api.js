// The REST API client: the bearer token (asked once, kept in localStorage), JSON calls,
// and the event stream read with fetch (EventSource cannot send an Authorization header).
export const API = "/api/v1";
const TOKEN_KEY = "stratforge.token";

// A readable message from an error body: FastAPI's 422 list becomes "field: message; ...".
export function describe(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).filter((p) => p !== "body").join(".") || "request"}: ${e.msg}`).join("; ");
  }
  return JSON.stringify(detail);
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(describe(detail));
    this.status = status;
    this.detail = detail;
  }
}

export function getToken() { return localStorage.getItem(TOKEN_KEY) || ""; }
export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value); else localStorage.removeItem(TOKEN_KEY);
}

let asking = null;
// Ask for the token in the page's dialog; resolves once a token was saved.
export function askToken(message) {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  const error = document.getElementById("token-error");
  error.hidden = !message;
  error.textContent = message || "";
  input.value = "";
  asking = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      asking = null;
      setToken(input.value.trim());
      resolve();
    }, { once: true });
  });
  dialog.showModal();
  return asking;
}

function headers(extra) {
  const out = { ...(extra || {}) };
  const token = getToken();
  if (token) out.Authorization = `Bearer ${token}`;
  return out;
}

// fetch under /api/v1 with the token; a 401 asks for the token and tries again.
export async function request(path, options = {}) {
  for (;;) {
    const response = await fetch(API + path, { ...options, headers: headers(options.headers) });
    if (response.status === 401) {
      await askToken(getToken() ? "The server refused this token." : "");
      continue;
    }
    return response;
  }
}

async function parse(response) {
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!response.ok) throw new ApiError(response.status, body && body.detail ? body.detail : body);
  return body;
}

export async function get(path) { return parse(await request(path)); }
export async function post(path, body) {
  return parse(await request(path, { method: "POST", body: JSON.stringify(body ?? {}),
    headers: { "Content-Type": "application/json" } }));
}
export async function del(path, body) {
  return parse(await request(path, { method: "DELETE", body: JSON.stringify(body ?? {}),
    headers: { "Content-Type": "application/json" } }));
}

// Open a run's report in a new tab: a plain link without a token, else a short-lived ticket
// URL from the server (a report shown from a blob: URL would inherit this page's
// Content-Security-Policy, which refuses the report's inline plotly.js).
export async function openDocument(path) {
  if (!getToken()) { window.open(API + path, "_blank", "noopener"); return; }
  const ticket = await post("/report-tickets", { path: API + path });
  window.open(ticket.url, "_blank", "noopener");
}

// Parse SSE text blocks into {id, event, data} messages (comments and retry ignored).
export function parseBlocks(buffer, onMessage) {
  let end;
  while ((end = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    const message = { id: null, event: "message", data: [] };
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") message.id = Number(value);
      else if (field === "event") message.event = value;
      else if (field === "data") message.data.push(value);
    }
    if (message.data.length) onMessage(message);
  }
  return buffer;
}

// The change feed: one fetch stream at a time, reconnecting after the last id it saw.
export class EventFeed {
  constructor() { this.listeners = new Set(); this.last = null; this.stopped = false; }
  subscribe(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  status(on) {
    const el = document.getElementById("live");
    if (el) { el.textContent = on ? "live" : "reconnecting"; el.classList.toggle("on", on); }
  }
  async start() {
    let pause = 500;
    while (!this.stopped) {
      this.controller = new AbortController();
      try {
        const query = this.last === null ? "" : `?after=${this.last}`;
        const response = await request(`/events${query}`, { signal: this.controller.signal });
        if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
        this.status(true);
        pause = 500;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = parseBlocks(buffer + value.replace(/\r\n?/g, "\n"), (m) => this.dispatch(m));
        }
      } catch (error) {
        if (this.stopped) return;
      }
      this.status(false);
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 10000);
    }
  }
  dispatch(message) {
    if (message.id !== null) this.last = message.id;
    let event;
    try { event = JSON.parse(message.data.join("\n")); } catch { return; }
    for (const fn of this.listeners) {
      try { fn(event); } catch (error) { console.warn("event listener failed", error); }
    }
  }
  stop() { this.stopped = true; if (this.controller) this.controller.abort(); }
}
