// Operations: a filterable list, and one operation's detail (metadata, progress, result,
// error, children) with cancel and retry.
import { del, get, post } from "../api.js";
import { empty, errorBox, facts, fill, h, json, link, opLink, panel, progressBar, setProgress, statusBadge, stepText, table, when } from "../dom.js";

const STATUSES = ["", "pending", "running", "completed", "failed", "cancelled"];
const PAGE = 100;
const ACTIVE = new Set(["pending", "running"]);

function opsTable(ops, id) {
  return table([
    { label: "Operation", get: (o) => opLink(o.id) }, { label: "Type", get: (o) => o.type },
    { label: "Status", get: (o) => statusBadge(o.status) },
    { label: "Progress", get: (o) => `${(o.progress?.percent ?? 0).toFixed(0)}%`, class: "num" },
    { label: "Step", get: (o) => stepText(o) },
    { label: "Created", get: (o) => when(o.created_at) },
    { label: "Worker", get: (o) => o.worker_id ?? "" },
  ], ops, { id });
}

async function renderList(root) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const type = h("input", { id: "filter-type", placeholder: "type (e.g. research_run)", value: params.get("type") || "" });
  const status = h("select", { id: "filter-status" }, STATUSES.map((s) => h("option", { value: s }, s || "any status")));
  status.value = params.get("status") || "";
  const activeOnly = h("input", { id: "filter-active", type: "checkbox" });
  const box = h("div", {});
  const pager = h("div", { class: "toolbar" });
  let offset = 0;
  const load = async () => {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    if (type.value.trim()) q.set("type", type.value.trim());
    if (status.value) q.set("status", status.value);
    if (activeOnly.checked) q.set("active_only", "true");
    try {
      const page = await get(`/operations?${q}`);
      fill(box, page.operations.length ? opsTable(page.operations, "operations-table")
        : empty("No operation matches these filters."));
      fill(pager, 
        h("button", { disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "Newer"),
        h("span", { class: "muted" }, `${offset + 1}–${offset + page.operations.length}`),
        h("button", { disabled: page.operations.length < PAGE, onclick: () => { offset += PAGE; load(); } }, "Older"));
    } catch (error) { fill(box, errorBox(error)); }
  };
  const apply = h("button", { id: "filter-apply", onclick: () => { offset = 0; load(); } }, "Filter");
  type.addEventListener("keydown", (e) => { if (e.key === "Enter") { offset = 0; load(); } });
  root.append(h("h1", {}, "Operations"),
    panel(null, h("div", { class: "toolbar" }, type, status, h("label", {}, activeOnly, "active only"), apply), box, pager));
  await load();
}

async function renderDetail(root, id, feed) {
  let op = await get(`/operations/${encodeURIComponent(id)}`);
  const bar = progressBar(op.progress.percent);
  const percent = h("span", { id: "op-percent" });
  const step = h("span", { id: "op-step" });
  const statusBox = h("span", { id: "op-status" });
  const message = h("span", { class: "muted" });
  const actions = h("div", { class: "toolbar" });
  const resultBox = h("div", {});
  const childrenBox = h("div", {});
  const note = h("p", { class: "muted" });
  const detailsBox = h("div", { id: "op-details" });
  const links = [];
  if (op.type === "research_run") links.push(link(`#/research/${encodeURIComponent(op.id)}`, "research run view"));
  if (op.type === "training_run") links.push(link(`#/training/${encodeURIComponent(op.id)}`, "training run view"));
  if (op.type === "agent_cycle") links.push(link("#/agent", "agent view"));
  const paint = () => {
    fill(detailsBox, facts([["Type", op.type], ["Parent", op.parent_id ? opLink(op.parent_id) : null],
      ["Created", when(op.created_at)], ["Started", when(op.started_at)],
      ["Completed", when(op.completed_at)], ["Worker", op.worker_id], ["Heartbeat", when(op.heartbeat_at)],
      ["Views", links.length ? links : null]]));
    setProgress(bar, op.progress.percent);
    percent.textContent = `${op.progress.percent.toFixed(1)}%`;
    step.textContent = stepText(op);
    message.textContent = op.progress.message || "";
    fill(statusBox, statusBadge(op.status));
    fill(resultBox, 
      h("h3", {}, "Result"), op.result_summary ? json(op.result_summary) : empty("No result yet."),
      h("h3", {}, "Error"), op.error ? h("p", { class: "error", id: "op-error" }, op.error) : empty("No error."));
    fill(actions, 
      ACTIVE.has(op.status) ? h("button", { id: "op-cancel", class: "danger", onclick: cancel }, "Cancel") : null,
      ACTIVE.has(op.status) ? null : h("button", { id: "op-retry", onclick: retry }, "Retry"), note);
  };
  const reload = async () => {
    op = await get(`/operations/${encodeURIComponent(id)}`);
    paint();
    const kids = await get(`/operations/${encodeURIComponent(id)}/children`);
    fill(childrenBox, kids.operations.length ? opsTable(kids.operations, "children-table") : empty("No children."));
  };
  async function cancel() {
    try { await del(`/operations/${encodeURIComponent(id)}`, { reason: "cancelled from the dashboard" }); await reload(); }
    catch (error) { note.textContent = error.message; }
  }
  async function retry() {
    try { const next = await post(`/operations/${encodeURIComponent(id)}/retry`); location.hash = `#/operations/${next.id}`; }
    catch (error) { note.textContent = error.message; }
  }
  root.append(h("h1", {}, `Operation ${op.id}`),
    h("div", { class: "grid" },
      panel("Progress", h("div", { class: "toolbar" }, statusBox, step, percent), bar, h("p", {}, message), actions),
      panel("Details", detailsBox)),
    panel("Metadata", json(op.metadata)), panel(null, resultBox), panel("Children", childrenBox));
  await reload();
  const unsubscribe = feed.subscribe((event) => {
    if (event.operation_id !== id && event.payload?.parent_id !== id) return;
    if (event.kind === "progress" && event.operation_id === id) {
      op.progress = { ...op.progress, percent: event.payload.percent, step: event.payload.step,
        message: event.payload.message };
      paint();
    } else if (event.kind === "operation") reload().catch(() => {});
  });
  return unsubscribe;
}

export async function render(root, { id, feed }) {
  if (id) return renderDetail(root, id.split("?")[0], feed);
  return renderList(root);
}
