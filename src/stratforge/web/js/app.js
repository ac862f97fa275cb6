// The dashboard's shell: hash routes (#/<page>/<id>), the shared event feed, the token button.
import { API, EventFeed, askToken, getToken } from "./api.js";
import { clear, errorBox, h } from "./dom.js";
import * as agent from "./pages/agent.js";
import * as evolution from "./pages/evolution.js";
import * as operations from "./pages/operations.js";
import * as overview from "./pages/overview.js";
import * as research from "./pages/research.js";
import * as templates from "./pages/templates.js";
import * as training from "./pages/training.js";

const PAGES = { overview, research, templates, training, evolution, agent, operations };
const feed = new EventFeed();
let cleanup = null;
let generation = 0;

function route() {
  const parts = (location.hash.replace(/^#\/?/, "").split("?")[0] || "overview").split("/");
  const name = PAGES[parts[0]] ? parts[0] : "overview";
  return { name, id: parts.slice(1).map(decodeURIComponent).join("/") || null };
}

async function show() {
  const { name, id } = route();
  const mine = ++generation;
  if (cleanup) { try { cleanup(); } catch (error) { console.warn(error); } cleanup = null; }
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.page === name);
  }
  const root = clear(document.getElementById("page"));
  root.dataset.page = name;
  document.title = `${name[0].toUpperCase()}${name.slice(1)}${id ? ` ${id}` : ""} · stratforge`;
  root.dataset.state = "loading";
  const started = performance.now();
  try {
    const done = await PAGES[name].render(root, { id, feed, current: () => mine === generation });
    if (mine !== generation) { if (done) done(); return; }
    cleanup = done || null;
    root.dataset.state = "ready";
    performance.mark(`rendered:${name}`, { detail: { ms: performance.now() - started } });
  } catch (error) {
    if (mine !== generation) return;
    root.append(h("section", { class: "panel" }, h("h2", {}, "Something went wrong"), errorBox(error)));
    root.dataset.state = "error";
  }
}

document.getElementById("token-button").addEventListener("click", () => askToken("").then(show));
window.addEventListener("hashchange", show);
// Ask for the token before the first call when the server needs one (GET /health is public
// and says so), so no request goes out without it.
async function start() {
  try {
    const health = await (await fetch(`${API}/health`)).json();
    if (health.auth && !getToken()) await askToken("");
  } catch (error) { console.warn("health check failed", error); }
  feed.start();
  show();
}
start();
