// Overview: active operations with live progress bars, recent operations and runs, workers
// with their heartbeats, and the queue depth.
import { get } from "../api.js";
import { ago, empty, fill, h, int, link, panel, progressBar, setProgress, statusBadge, stepText, table, viewLink, when } from "../dom.js";

const ACTIVE_LIMIT = 200;
const LINGER_MS = 15000;
const ACTIVE = new Set(["pending", "running"]);

function card(label, value, id) {
  return h("div", { class: "card" }, h("div", { class: "value", id }, value), h("div", { class: "label" }, label));
}

const VIEWS = { research_run: "research", training_run: "training" };
// An operation's own view where it has one (research and training runs), else its detail.
function opLink(id, type) {
  return type === "agent_cycle" ? link("#/agent", id) : viewLink(VIEWS[type] || "operations", id);
}

// One row of the active list, with handles to update it in place.
function activeRow(op) {
  const bar = progressBar(op.progress?.percent ?? op.progress ?? 0);
  const status = h("td", {}, statusBadge(op.status));
  const step = h("td", {}, op.progress?.step ?? op.step ?? "");
  const percent = h("td", { class: "num" }, `${(op.progress?.percent ?? 0).toFixed(1)}%`);
  const message = h("td", { class: "wrap muted" }, op.progress?.message ?? "");
  const tr = h("tr", { dataset: { id: op.id } }, h("td", {}, opLink(op.id, op.type)), h("td", {}, op.type),
    status, step, h("td", {}, bar), percent, message);
  return { tr, bar, status, step, percent, message };
}

function workersTable(workers) {
  if (!workers.length) return empty("No worker has registered yet.");
  return table([
    { label: "Worker", get: (w) => w.id }, { label: "Host", get: (w) => w.hostname },
    { label: "PID", get: (w) => w.pid, class: "num" }, { label: "Status", get: (w) => statusBadge(w.status) },
    { label: "Slots", get: (w) => w.concurrency, class: "num" },
    { label: "Jobs done", get: (w) => int(w.jobs_done), class: "num" },
    { label: "Heartbeat", get: (w) => ago(w.heartbeat_age_seconds) },
  ], workers, { id: "workers-table" });
}

function recentTable(ops) {
  if (!ops.length) return empty("No operations yet.");
  return table([
    { label: "Operation", get: (o) => opLink(o.id, o.type) }, { label: "Type", get: (o) => o.type },
    { label: "Status", get: (o) => statusBadge(o.status) },
    { label: "Progress", get: (o) => `${(o.progress?.percent ?? 0).toFixed(0)}%`, class: "num" },
    { label: "Created", get: (o) => when(o.created_at) },
  ], ops, { id: "recent-table" });
}

function runsTable(runs) {
  if (!runs.length) return empty("No research runs yet.");
  return table([
    { label: "Run", get: (r) => viewLink("research", r.run_id) },
    { label: "Symbol", get: (r) => r.symbol }, { label: "Created", get: (r) => when(r.created) },
    { label: "Phases", get: (r) => `${r.phases_done.length}/8`, class: "num" },
    { label: "Complete", get: (r) => (r.complete ? "yes" : "no") },
  ], runs, { id: "runs-table" });
}

export async function render(root, { feed }) {
  const [active, recent, workers, queue, runs] = await Promise.all([
    get(`/operations?active_only=true&limit=${ACTIVE_LIMIT}`), get("/operations?limit=15"),
    get("/workers"), get("/queue"), get("/research/runs?limit=5")]);
  const alive = () => workersNow.filter((w) => w.status !== "stopped" && w.status !== "dead").length;
  let workersNow = workers.workers;
  const rows = new Map();
  const body = h("tbody", { id: "active-body" });
  const activeCount = h("span", { id: "active-count" });
  const noneActive = empty("Nothing is running.");
  for (const op of active.operations) { const r = activeRow(op); rows.set(op.id, r); body.append(r.tr); }
  const activeTable = h("div", { class: "scroll" }, h("table", { id: "active-table" },
    h("thead", {}, h("tr", {}, ["Operation", "Type", "Status", "Step", "Progress", "%", "Message"].map((t) => h("th", {}, t)))), body));
  const countActive = () => {
    const n = [...rows.values()].filter((r) => ACTIVE.has(r.status.textContent)).length;
    activeCount.textContent = String(n);
    noneActive.hidden = rows.size > 0;
  };
  const workersBox = h("div", {}, workersTable(workersNow));
  const recentBox = h("div", {}, recentTable(recent.operations));
  root.append(
    h("h1", {}, "Overview"),
    h("div", { class: "cards" }, card("active operations", activeCount, null),
      card("queued jobs", int(queue.depth), "queue-depth"),
      card("running jobs", int(queue.jobs.running), "queue-running"),
      card("live workers", String(alive()), "workers-alive")),
    panel("Active operations", activeTable, noneActive,
      active.operations.length >= ACTIVE_LIMIT ? h("p", { class: "muted" }, `showing the newest ${ACTIVE_LIMIT}; see Operations for all`) : null),
    h("div", { class: "grid" }, panel("Recent operations", recentBox),
      panel("Recent research runs", runsTable(runs.runs))),
    panel("Workers", workersBox));
  countActive();

  let refreshTimer = null;
  const timers = [];
  const refresh = () => {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      try {
        const [r, q] = await Promise.all([get("/operations?limit=15"), get("/queue")]);
        fill(recentBox, recentTable(r.operations));
        root.querySelector("#queue-depth").textContent = int(q.depth);
        root.querySelector("#queue-running").textContent = int(q.jobs.running);
      } catch (error) { console.warn("overview refresh failed", error); }
    }, 800);
  };
  const unsubscribe = feed.subscribe((event) => {
    const p = event.payload || {};
    const id = event.operation_id || p.id;
    if (!id) return;
    let row = rows.get(id);
    if (event.kind === "progress" && row) {
      setProgress(row.bar, p.percent);
      row.percent.textContent = `${Number(p.percent || 0).toFixed(1)}%`;
      row.step.textContent = p.step || "";
      row.message.textContent = p.message || "";
    } else if (event.kind === "operation") {
      if (!row && ACTIVE.has(p.status)) {
        row = activeRow({ ...p, progress: { percent: p.progress ?? 0, step: p.step } });
        rows.set(id, row);
        body.prepend(row.tr);
      }
      if (row) {
        fill(row.status, statusBadge(p.status));
        if (p.status === "completed") { setProgress(row.bar, 100); row.percent.textContent = "100.0%"; }
        if (!ACTIVE.has(p.status)) {  // a finished operation leaves the list after a while
          row.step.textContent = stepText({ status: p.status, progress: { step: row.step.textContent } });
          const gone = row;
          timers.push(setTimeout(() => { if (rows.get(id) === gone) { gone.tr.remove(); rows.delete(id); countActive(); } }, LINGER_MS));
        }
      }
      countActive();
      refresh();
    }
  });
  const poll = setInterval(async () => {
    try {
      workersNow = (await get("/workers")).workers;
      fill(workersBox, workersTable(workersNow));
      root.querySelector("#workers-alive").textContent = String(alive());
    } catch (error) { console.warn("workers refresh failed", error); }
  }, 5000);
  return () => { unsubscribe(); clearInterval(poll); clearTimeout(refreshTimer); timers.forEach(clearTimeout); };
}
