// Research: start a run, list runs; one run's live progress (phase timeline, sweep progress)
// and, once its phases are done, its results.
import { ApiError, get, post } from "../api.js";
import { empty, errorBox, fill, h, link, panel, progressBar, setProgress, statusBadge, stepText, table, viewLink, when } from "../dom.js";
import { PHASES, renderResults, timeline } from "./research_results.js";
import { symbolSelect, timeframeList } from "./forms.js";

function runLink(id) { return viewLink("research", id); }

function startForm() {
  const quick = h("input", { type: "checkbox", id: "run-quick", checked: true });
  const symbol = symbolSelect("run-symbol");
  const timeframes = h("input", { id: "run-timeframes", placeholder: "5m,15m,1h", value: "", list: "run-timeframe-list" });
  const extra = h("textarea", { id: "run-settings", placeholder: '{"mc_iters": 200, "seed": 7}' });
  const note = h("p", { class: "error", id: "run-error" });
  const submit = h("button", { id: "run-start", type: "submit" }, "Start research run");
  const form = h("form", {}, h("div", { class: "toolbar" }, h("label", {}, quick, "quick"), symbol,
    h("label", {}, "timeframes", timeframes), timeframeList("run-timeframe-list"), submit),
  h("label", { for: "run-settings" }, "more settings (JSON, docs/research.md)"), extra, note);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    note.textContent = "";
    let body;
    try { body = extra.value.trim() ? JSON.parse(extra.value) : {}; } catch (error) { note.textContent = `settings: ${error.message}`; return; }
    body.quick = quick.checked;
    if (symbol.value) body.symbol = symbol.value;
    if (timeframes.value.trim()) body.timeframes = timeframes.value.trim();
    submit.disabled = true;
    try {
      const op = await post("/research/runs", body);
      location.hash = `#/research/${encodeURIComponent(op.id)}`;
    } catch (error) {
      note.textContent = error instanceof ApiError && error.status === 422 ? `refused: ${error.message}` : error.message;
      submit.disabled = false;
    }
  });
  return panel("Start a research run", form);
}

async function renderList(root) {
  const [runs, ops] = await Promise.all([get("/research/runs?limit=50"), get("/operations?type=research_run&limit=20")]);
  root.append(h("h1", {}, "Research runs"), startForm(),
    h("div", { class: "grid" },
      panel("Runs", runs.runs.length ? table([
        { label: "Run", get: (r) => runLink(r.run_id) }, { label: "Symbol", get: (r) => r.symbol },
        { label: "Created", get: (r) => when(r.created) }, { label: "Phases", get: (r) => `${r.phases_done.length}/${PHASES.length}`, class: "num" },
        { label: "Status", get: (r) => statusBadge(r.status) },
        { label: "Error", get: (r) => (r.error ? h("span", { class: "error", title: r.error }, r.error.length > 80 ? `${r.error.slice(0, 79)}…` : r.error) : "") }],
      runs.runs, { id: "research-runs", rowKey: (r) => r.run_id }) : empty("No research runs yet.")),
      panel("Research operations", ops.operations.length ? table([
        { label: "Operation", get: (o) => runLink(o.id) }, { label: "Status", get: (o) => statusBadge(o.status) },
        { label: "Step", get: (o) => stepText(o) }, { label: "Created", get: (o) => when(o.created_at) }],
      ops.operations, { id: "research-ops" }) : empty("No research operation yet."))));
}

async function renderRun(root, id, feed) {
  let op = id.startsWith("op_") ? await get(`/operations/${encodeURIComponent(id)}`) : null;
  let runId = op ? (op.metadata.run_id || op.result_summary?.run_id || null) : id;
  if (!op) {  // a run opened by its id: its operation, when one is known, gives its status
    const known = await get(`/research/runs/${encodeURIComponent(id)}`).catch(() => null);
    if (known && known.operation_id) op = await get(`/operations/${encodeURIComponent(known.operation_id)}`).catch(() => null);
  }
  const statusBox = h("span", { id: "run-status" });
  const stepBox = h("span", { id: "run-step" });
  const message = h("p", { class: "muted", id: "run-message" });
  const bar = progressBar(op ? op.progress.percent : 0);
  bar.id = "run-progress";
  const timelineBox = h("div", {});
  const results = h("div", { class: "stack", id: "run-results" });
  const title = h("h1", {}, `Research run ${runId || id}`);
  let info = null;
  let seconds = {};
  let shown = false;
  const paint = () => {
    // without an operation the phases done are the progress; a failed run keeps its bar
    // where it stopped and says why
    const phases = info ? info.phases_done.length : 0;
    const percent = op ? op.progress.percent : 100 * phases / PHASES.length;
    setProgress(bar, percent);
    fill(statusBox, statusBadge(op ? op.status : (info ? info.status : "incomplete")));
    const items = op && op.progress.items_total && ["pending", "running"].includes(op.status) ? ` ${op.progress.items_done}/${op.progress.items_total}` : "";
    stepBox.textContent = op ? `${stepText(op)}${items} ${percent.toFixed(1)}%` : `${phases}/${PHASES.length} phases`;
    // a finished run's last message is whatever its last step said ("starting"): show how it
    // ended instead (its error when it failed)
    const active = op && ["pending", "running"].includes(op.status);
    message.textContent = !op ? "" : active ? (op.progress.message || "")
      : op.status === "completed" ? "finished: results below" : (op.error || op.progress.message || "");
    if (!op && info && info.error) fill(message, errorBox(info.error));
    fill(timelineBox, timeline(info ? info.phases_done : [], op ? op.progress.step : null, seconds));
  };
  const refresh = async () => {
    if (op) op = await get(`/operations/${encodeURIComponent(op.id)}`);
    if (!runId && op) runId = op.metadata.run_id || op.result_summary?.run_id || null;
    if (runId) {
      [info, seconds] = await Promise.all([get(`/research/runs/${encodeURIComponent(runId)}`),
        get(`/research/runs/${encodeURIComponent(runId)}/phases`).then((p) => p.seconds)]);
      title.textContent = `Research run ${runId}`;
    }
    paint();
    const finished = !op || !["pending", "running"].includes(op.status);
    if (runId && info && finished && !shown) {
      shown = true;
      await renderResults(results, encodeURIComponent(runId), info);
      results.dataset.state = "ready";
    }
    if (op && op.error) { fill(message, errorBox(op.error)); }
  };
  root.append(title, panel("Progress", h("div", { class: "toolbar" }, statusBox, stepBox,
    op ? link(`#/operations/${encodeURIComponent(op.id)}`, "operation") : null), bar, message, timelineBox), results);
  await refresh();
  if (!op) return null;
  let pending = null;
  let lastStep = op.progress.step;
  const unsubscribe = feed.subscribe((event) => {
    if (event.operation_id !== op.id) return;
    if (event.kind === "progress") {
      op.progress = { ...op.progress, percent: event.payload.percent, step: event.payload.step, message: event.payload.message,
        items_done: event.payload.done, items_total: event.payload.total };
      if (op.status === "pending") op.status = "running";  // progress comes from a running job
      paint();
      if (event.payload.step === lastStep) return;
      lastStep = event.payload.step;
    }
    clearTimeout(pending);
    pending = setTimeout(() => refresh().catch((e) => console.warn(e)), 300);
  });
  const poll = setInterval(() => { if (!shown) refresh().catch((e) => console.warn(e)); }, 5000);
  return () => { unsubscribe(); clearTimeout(pending); clearInterval(poll); };
}

export async function render(root, { id, feed }) {
  if (!id) return renderList(root);
  try { return await renderRun(root, id, feed); } catch (error) {
    root.append(panel("Research run", errorBox(error)));
    return null;
  }
}
