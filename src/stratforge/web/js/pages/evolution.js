// Evolution: runs, generations with best SQN and profit factor, the lineage tree of a model,
// promoted models with their metrics and features. Empty states when the factory has no
// runs, or when this build has no evolution routes.
import { get } from "../api.js";
import { empty, errorBox, fill, h, int, json, num, panel, statusBadge, table, when } from "../dom.js";
import { esc, layout, plot } from "../charts.js";
import { evolutionForm } from "./forms.js";

async function available() {
  const schema = await get("/openapi.json");
  return Boolean(schema.paths && schema.paths["/api/v1/evolution/runs"]);
}

async function lineage(box, fingerprint) {
  const data = await get(`/evolution/models/${encodeURIComponent(fingerprint)}/lineage`);
  const nodes = data.ancestors;
  const el = h("div", { class: "chart", id: "chart-lineage" });
  fill(box, panel(`Lineage of ${fingerprint}`, el));
  const byFp = new Map(nodes.map((n) => [n.fingerprint, n]));
  const edges = nodes.filter((n) => n.parent_fingerprint && byFp.has(n.parent_fingerprint));
  await plot(el, [
    { type: "scatter", mode: "lines", hoverinfo: "skip", line: { color: "#3a4655" }, showlegend: false,
      x: edges.flatMap((n) => [byFp.get(n.parent_fingerprint).generation, n.generation, null]),
      y: edges.flatMap((n) => [byFp.get(n.parent_fingerprint).best_sqn, n.best_sqn, null]) },
    { type: "scatter", mode: "markers+text", name: "models", x: nodes.map((n) => n.generation), y: nodes.map((n) => n.best_sqn),
      text: nodes.map((n) => esc(String(n.fingerprint).slice(0, 8))), textposition: "top center",
      marker: { size: nodes.map((n) => 8 + Math.min(20, n.n_features || 0)), color: nodes.map((n) => (n.promoted ? "#3fb950" : "#5aa9ff")) },
      hovertemplate: "generation %{x}<br>best SQN %{y:.3f}<br>%{text}<extra></extra>" }],
  layout("Model lineage (green: promoted)", "generation", "best SQN", { xaxis: { dtick: 1, title: { text: "generation" }, gridcolor: "#2a3441" } }));
}

async function showRun(box, lineageBox, id) {
  const run = await get(`/evolution/runs/${encodeURIComponent(id)}`);
  const gens = run.generations || [];
  const el = h("div", { class: "chart", id: "chart-generations" });
  fill(box, panel(`Run ${id}`, h("p", { class: "muted" }, `${run.status}${run.stop_reason ? `: ${run.stop_reason}` : ""}`),
    gens.length ? el : empty("No generation finished yet."),
    gens.length ? table([
      { label: "Generation", get: (g) => g.generation, class: "num" }, { label: "Model", get: (g) => g.model_fingerprint },
      { label: "Features", get: (g) => (g.features || []).length, class: "num" }, { label: "Jobs", get: (g) => `${g.jobs_done}/${g.jobs_total}`, class: "num" },
      { label: "Best SQN", get: (g) => num(g.best_sqn, 3), class: "num" }, { label: "Best PF", get: (g) => num(g.best_profit_factor, 3), class: "num" }],
    gens, { id: "generations-table", onRow: (g) => lineage(lineageBox, g.model_fingerprint).catch((e) => fill(lineageBox, errorBox(e))) }) : null));
  if (gens.length) {
    await plot(el, [{ type: "bar", name: "best SQN", x: gens.map((g) => g.generation), y: gens.map((g) => g.best_sqn), opacity: 0.7 },
      { type: "scatter", mode: "lines+markers", name: "best profit factor", x: gens.map((g) => g.generation), y: gens.map((g) => g.best_profit_factor), yaxis: "y2" }],
    layout("Best SQN (bars) and profit factor (line) per generation", "generation", "SQN", {
      margin: { l: 56, r: 64, t: 64, b: 44 }, xaxis: { type: "category", title: { text: "generation" } },
      yaxis2: { overlaying: "y", side: "right", title: { text: "profit factor" }, showgrid: false, automargin: true } }));
  }
}

export async function render(root) {
  root.append(h("h1", {}, "Evolution"));
  if (!(await available())) {
    root.append(panel(null, h("p", { class: "empty", id: "evolution-empty" }, "The evolution factory is not part of this build: no evolution routes on this server.")));
    return null;
  }
  const started = h("p", { class: "muted", id: "evolve-started" });
  root.append(evolutionForm((answer) => {
    fill(started, `queued ${answer.operation_id} (${int(answer.grid_points)} simulations per generation); `,
      h("a", { href: `#/operations/${encodeURIComponent(answer.operation_id)}` }, "its operation"));
  }), started);
  const [runs, promoted] = await Promise.all([get("/evolution/runs"), get("/evolution/promoted")]);
  const detail = h("div", {});
  const lineageBox = h("div", {});
  if (!runs.items.length) {
    root.append(panel(null, h("p", { class: "empty", id: "evolution-empty" }, "No evolution runs yet.")));
  } else {
    root.append(panel(`Runs (${runs.total})`, table([
      { label: "Run", get: (r) => r.operation_id }, { label: "Status", get: (r) => statusBadge(r.status) },
      { label: "Symbol", get: (r) => r.symbol }, { label: "Timeframe", get: (r) => r.timeframe }, { label: "Algorithm", get: (r) => r.algorithm },
      { label: "Generations", get: (r) => int(r.generations), class: "num" }, { label: "Best SQN", get: (r) => num(r.best_sqn, 3), class: "num" },
      { label: "Best PF", get: (r) => num(r.best_profit_factor, 3), class: "num" }, { label: "Promoted", get: (r) => int(r.promoted), class: "num" },
      { label: "Created", get: (r) => when(r.created_at) }],
    runs.items, { id: "evolution-runs", onRow: (r) => showRun(detail, lineageBox, r.operation_id).catch((e) => fill(detail, errorBox(e))) })));
  }
  root.append(detail, lineageBox, panel("Promoted models", promoted.items.length ? table([
    { label: "Model", get: (m) => m.fingerprint }, { label: "Run", get: (m) => m.run_operation_id },
    { label: "Generation", get: (m) => m.generation, class: "num" }, { label: "Algorithm", get: (m) => m.algorithm },
    { label: "SQN", get: (m) => num(m.metrics?.sqn, 3), class: "num" },
    { label: "Profit factor", get: (m) => num(m.metrics?.profit_factor, 3), class: "num" },
    { label: "Trades", get: (m) => int(m.metrics?.trades), class: "num" },
    { label: "Features", get: (m) => h("details", {}, h("summary", {}, `${(m.features || []).length} features`),
      h("p", { class: "mono" }, (m.features || []).join(", "))), class: "wrap" },
    { label: "Metrics", get: (m) => h("details", {}, h("summary", {}, "all metrics"), json(m.metrics)), class: "wrap" }],
  promoted.items, { id: "promoted-table" })
    : empty("No model has been promoted yet.")));
  return null;
}
