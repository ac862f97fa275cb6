// Agent: the current cycle's phase and child operation, trigger and cancel, and the
// experiment history with verdicts.
import { ApiError, del, get, post } from "../api.js";
import { empty, facts, fill, h, json, num, opLink, panel, progressBar, setProgress, statusBadge, stepText, table, when } from "../dom.js";

function metric(m, key) { return m && m[key] !== undefined ? num(m[key]) : "–"; }

export async function render(root, { feed }) {
  const phase = h("span", { id: "agent-phase" });
  const bar = progressBar(0);
  const details = h("div", {});
  const note = h("p", { class: "muted", id: "agent-note" });
  const bypass = h("input", { type: "checkbox", id: "agent-bypass" });
  const trigger = h("button", { id: "agent-trigger" }, "Trigger a cycle");
  const cancel = h("button", { id: "agent-cancel", class: "danger" }, "Cancel the cycle");
  const history = h("div", {});
  const childrenBox = h("div", {});
  let status = null;
  const refresh = async () => {
    const [s, ex] = await Promise.all([get("/agent/status"), get("/agent/experiments?limit=100")]);
    status = s;
    const kids = s.operation ? (await get(`/operations/${encodeURIComponent(s.operation.id)}/children`)).operations : [];
    fill(childrenBox, kids.length ? table([
      { label: "Operation", get: (o) => opLink(o.id) }, { label: "Type", get: (o) => o.type },
      { label: "Status", get: (o) => statusBadge(o.status) },
      { label: "Progress", get: (o) => `${o.progress.percent.toFixed(0)}%`, class: "num" },
      { label: "Step", get: (o) => stepText(o) }], kids, { id: "agent-children" }) : empty("The cycle has no child operation yet."));
    phase.textContent = s.phase;
    phase.dataset.active = String(Boolean(s.active));
    setProgress(bar, s.progress ? s.progress.percent : 0);
    trigger.disabled = Boolean(s.active);
    cancel.disabled = !s.active;
    fill(details, facts([
      ["Cycle", s.operation ? h("span", {}, opLink(s.operation.id), " ", statusBadge(s.operation.status)) : null],
      ["Child operation", s.child ? h("span", {}, opLink(s.child.id), ` ${s.child.type} `, statusBadge(s.child.status)) : null],
      ["Step", s.progress ? `${s.operation ? stepText({ ...s.operation, progress: s.progress }) : s.progress.step || ""} ${s.progress.message || ""}` : null],
      ["Experiment", s.experiment_id], ["Verdict", s.verdict],
      ["Phases", Array.isArray(s.phases) && s.phases.length ? s.phases.map((p) => `${p.phase} ${when(p.at)}`).join(" → ") : null]]),
    s.strategy ? h("details", {}, h("summary", {}, "Strategy spec"), json(s.strategy)) : null);
    fill(history, ex.experiments.length ? table([
      { label: "Experiment", get: (e) => e.id }, { label: "Arm", get: (e) => e.arm }, { label: "Status", get: (e) => statusBadge(e.status) },
      { label: "Verdict", get: (e) => e.verdict || "–" }, { label: "Training PnL", get: (e) => metric(e.training_metrics, "pnl"), class: "num" },
      { label: "Backtest PnL", get: (e) => metric(e.backtest_metrics, "pnl"), class: "num" },
      { label: "Reason", get: (e) => e.rejection_reason || "", class: "wrap" }, { label: "Created", get: (e) => when(e.created_at) },
      { label: "Cycle", get: (e) => opLink(e.operation_id) }], ex.experiments, { id: "experiments-table" }) : empty("No experiments yet."));
  };
  trigger.addEventListener("click", async () => {
    trigger.disabled = true; note.textContent = "";
    try { const r = await post("/agent/trigger", { bypass_gates: bypass.checked }); note.textContent = `queued ${r.operation_id}`; }
    catch (error) { note.textContent = error instanceof ApiError && error.status === 409 ? `a cycle is already active: ${error.message}` : error.message; }
    await refresh();
  });
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try { const r = await del("/agent/cancel", { reason: "cancelled from the dashboard" }); note.textContent = r.cancelled ? `cancelled ${r.operation.id}` : "no cycle was active"; }
    catch (error) { note.textContent = error.message; }
    await refresh();
  });
  root.append(h("h1", {}, "Agent"),
    h("div", { class: "grid" }, panel("Current cycle", h("div", { class: "toolbar" }, h("strong", {}, "phase"), phase), bar, details),
      panel("Control", h("div", { class: "toolbar" }, trigger, h("label", {}, bypass, "bypass gates"), cancel), note)),
    panel("Child operations of the cycle", childrenBox), panel("Experiments", history));
  await refresh();
  let timer = null;
  const unsubscribe = feed.subscribe((event) => {
    const ours = status && status.operation && (event.operation_id === status.operation.id || event.payload?.parent_id === status.operation.id);
    if (!ours && !String(event.kind).startsWith("agent") && event.payload?.type !== "agent_cycle") return;
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch((e) => console.warn(e)), 300);
  });
  return () => { unsubscribe(); clearTimeout(timer); };
}
