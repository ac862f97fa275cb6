// The results of a research run: phase timings, ANOVA effects, the stop x target heatmap of
// a chosen combo, the Thompson allocation over rounds, tiers, playbook and equity curves.
import { get, openDocument } from "../api.js";
import { empty, errorBox, facts, fill, h, int, num, panel, pct, table } from "../dom.js";
import { esc, layout, plot } from "../charts.js";
import { inCurrency, money, paramsShort, paramsText, price, rangeText, sideLabel, statedParamsText, ticksText } from "../format.js";

export const PHASES = ["data", "discovery", "optimize", "matching", "sweep", "anova", "refine", "validation", "report"];

// Progress steps that belong to a phase of another name.
const STEP_PHASE = { discover: "discovery", templates: "discovery", optimize: "discovery" };

// The phases in order: done (with their seconds), the current one, the ones to come.
export function timeline(done, step, seconds = {}) {
  const current = STEP_PHASE[step] || step;
  return h("div", { class: "timeline", id: "phase-timeline" }, PHASES.map((p) => h("div", {
    class: `phase${done.includes(p) ? " done" : ""}${p === current && !done.includes(p) ? " current" : ""}`,
    dataset: { phase: p } }, p, seconds[p] !== undefined ? h("span", { class: "muted" }, ` ${Number(seconds[p]).toFixed(2)} s`) : null)));
}

function chartDiv(id) { return h("div", { class: "chart", id }); }

const PARAM_LABELS = { stop_ticks: "Stop", target_ticks: "Target", trail_tight_ticks: "Trail tight",
  trail_wide_ticks: "Trail wide", trail_widen_points: "Trail widen at", trail_activation_ticks: "Trail activation",
  max_hold_bars: "Max hold" };

// The run's market: instrument, session, cost model (per fill and round trip, in price units
// and currency) and per timeframe the yardstick and the resolved exit-parameter ranges.
export function marketPanel(m) {
  const cost = m.cost_model || {};
  const pairs = [["Instrument", m.symbol], ["Currency", m.currency], ["Tick size", price(m.tick_size, m)],
    ["Price decimals", String(m.price_decimals)], ["Point value", `${money(m.point_value, m)} per 1 price unit`]];
  if (m.session) pairs.push(["Session", m.session]);
  if (m.base_timeframe) pairs.push(["Bars", `base ${m.base_timeframe}; run on ${(m.timeframes || []).join(", ")}`]);
  const costFacts = m.cost_model ? facts([["Cost model", cost.description || "no costs"],
    ["Per fill", `${price(cost.per_fill_price, m)} price units = ${money(cost.per_fill_currency, m)}`],
    ["Per round trip", `${price(cost.round_trip_price, m)} price units = ${money(cost.round_trip_currency, m)}`],
    ["At price", `${price(cost.reference_price, m)} (in-sample median close)`]]) : null;
  const frames = Object.entries(m.per_timeframe || {});
  const names = [...new Set(frames.flatMap(([, f]) => Object.keys(f.resolved_space || {})))];
  const ranges = frames.length ? table([
    { label: "Timeframe", get: ([tf]) => tf }, { label: "In-sample bars", get: ([, f]) => int(f.in_sample_bars), class: "num" },
    { label: "Yardstick (median true range)", get: ([, f]) => ticksText(f.yardstick_ticks, m), class: "num" },
    ...names.map((n) => ({ label: PARAM_LABELS[n] || n, get: ([, f]) => rangeText((f.resolved_space || {})[n], m), class: "num" }))],
  frames, { id: "market-timeframes", rowKey: ([tf]) => tf }) : null;
  const note = m.source === "run" ? "Prices and distances with the tick size's decimals; every PnL in " + m.currency + "."
    : "The run has not measured its market yet: the instrument's facts only.";
  return panel("Market and costs", h("div", { id: "market-panel" }, h("div", { class: "grid" }, facts(pairs), costFacts),
    ranges ? h("h3", {}, "Search ranges per timeframe (price units)") : null, ranges, h("p", { class: "muted" }, note)));
}

async function phasesChart(summary) {
  const names = PHASES.filter((p) => summary.phases && summary.phases[p]);
  const seconds = names.map((p) => Number(summary.phases[p].seconds || 0));
  const starts = seconds.map((_, i) => seconds.slice(0, i).reduce((a, b) => a + b, 0));
  const el = chartDiv("chart-phases");
  const box = panel("Phase timings", el, h("p", { class: "muted" }, `total ${num(summary.seconds, 1)} s`));
  await plot(el, [{ type: "bar", orientation: "h", y: names, x: seconds, base: starts,
    text: seconds.map((s) => `${s.toFixed(2)} s`), textposition: "auto",
    hovertemplate: "%{y}: %{x:.3f} s<extra></extra>", marker: { color: "#5aa9ff" } }],
  layout("Phase timeline (seconds from the start)", "seconds", "", { yaxis: { autorange: "reversed", automargin: true } }));
  return box;
}

export function effectRows(anova) {
  const finite = (r) => r && Number.isFinite(Number(r.eta_squared)) && r.eta_squared !== null;
  const multi = (anova.multi || []).filter((r) => r.factor !== "Residual" && finite(r));
  return multi.length ? multi : (anova.one_way || []).filter(finite);
}

async function anovaChart(anova) {
  const rows = effectRows(anova).sort((a, b) => b.eta_squared - a.eta_squared);
  const el = chartDiv("chart-anova");
  if (!rows.length) return panel("ANOVA effects", empty("The ANOVA found no testable factor."));
  await plot(el, [{ type: "bar", x: rows.map((r) => esc(r.factor)), y: rows.map((r) => r.eta_squared),
    text: rows.map((r) => r.stars || ""), textposition: "outside", marker: { color: "#5aa9ff" },
    hovertemplate: "%{x}<br>eta squared %{y:.4f}<extra></extra>" }],
  layout("Effect size per factor (eta squared)", "factor", "eta squared"));
  return panel("ANOVA effects", el, anova.multi_note ? h("p", { class: "muted" }, anova.multi_note) : null);
}

async function heatmapPanel(runId) {
  const first = await get(`/research/runs/${runId}/sweep`);
  const market = first.market;
  const el = chartDiv("chart-heatmap");
  const select = h("select", { id: "combo-select" }, first.combos.map((c) => h("option", {
    value: `${c.template_id}|${c.timeframe}` }, `${c.template_id} @ ${c.timeframe} (${c.rows} rows, mean ${money(c.mean_pnl_per_trade, market)})`)));
  const info = h("p", { class: "muted", id: "heatmap-info" });
  const draw = async (data) => {
    const m = data.heatmap;
    const priced = m.stop_price_labels.length === m.stop_labels.length && m.target_price_labels.length === m.target_labels.length;
    const x = priced ? m.stop_price_labels : m.stop_labels;
    const y = priced ? m.target_price_labels : m.target_labels;
    const custom = m.counts.map((row, i) => row.map((count, j) => [count, esc(m.stop_labels[j]), esc(m.target_labels[i])]));
    const unit = priced ? "price units" : "ticks";
    info.textContent = `${m.template_id} @ ${m.timeframe}: ${m.rows} rows with trades, mean PnL per trade per bin (${market.currency}); distances in ${unit}`;
    await plot(el, [{ type: "heatmap", x: x.map(esc), y: y.map(esc), z: m.z, customdata: custom,
      colorscale: "RdBu", reversescale: true, zmid: 0, colorbar: { title: { text: inCurrency("PnL/trade", market), side: "right" }, thickness: 12 },
      hovertemplate: `stop %{x} (%{customdata[1]} ticks)<br>target %{y} (%{customdata[2]} ticks)<br>mean %{z:,.2f} ${esc(market.currency)}<br>rows %{customdata[0]}<extra></extra>` }],
    layout(inCurrency("Stop x target: mean PnL per trade", market), `stop (${unit})`, `target (${unit})`,
      { xaxis: { type: "category", title: { text: `stop (${unit})` }, automargin: true },
        yaxis: { type: "category", title: { text: `target (${unit})` }, automargin: true } }));
  };
  if (!first.combos.length) return panel("Stop x target heatmap", empty("No sweep row has trades."));
  select.value = `${first.heatmap.template_id}|${first.heatmap.timeframe}`;
  select.addEventListener("change", async () => {
    const [t, tf] = select.value.split("|");
    await draw(await get(`/research/runs/${runId}/sweep?template_id=${encodeURIComponent(t)}&timeframe=${encodeURIComponent(tf)}`));
  });
  await draw(first);
  return panel("Stop x target heatmap", h("div", { class: "toolbar" }, h("label", {}, "combo", select)), info, el,
    h("p", { class: "muted" }, `sweep ${int(first.total_rows)} rows (sweep and refinement)`));
}

async function thompsonChart(history) {
  const rounds = history.rounds || [];
  if (!rounds.length) return panel("Thompson allocation", empty("No refinement rounds."));
  const combos = [...new Set(rounds.flatMap((r) => Object.keys(r.allocation || {})))].sort();
  const el = chartDiv("chart-thompson");
  await plot(el, combos.map((c) => ({ type: "bar", name: esc(c), x: rounds.map((r) => r.round),
    y: rounds.map((r) => (r.allocation || {})[c] || 0), hovertemplate: `${esc(c)}<br>round %{x}: %{y} trials<extra></extra>` })),
  layout("Trials per combo and round (Thompson sampling)", "round", "trials", { barmode: "stack" }));
  return panel("Thompson allocation over rounds", el);
}

function tierCell(row) { return h("span", { class: `tier-${row.tier}` }, row.tier_name); }
function overfittingText(o) {
  if (!o) return "";
  const pbo = o.run_pbo.value == null ? `not computed (${o.run_pbo.note})` : `${num(o.run_pbo.value)} over ${int(o.run_pbo.configs)} sets`;
  return `${int(o.trials.raw)} trials, ${int(o.trials.eligible)} with at least ${o.trials.min_is_trades} in-sample trades, ` +
    `${num(o.trials.effective)} effective; DSR benchmark t = ${num(o.dsr.threshold_t)}; ` +
    `${o.oos_test.accepted} of ${o.oos_test.candidates_tested} significant out of sample (Benjamini-Hochberg, FDR ${o.oos_test.fdr}); run PBO ${pbo}`;
}

function tiersPanel(tiers) {
  const m = tiers.market;
  if (!tiers.strategies.length) return panel("Validation tiers", empty("No strategy reached validation."));
  return panel("Validation tiers", h("p", { class: "muted", id: "tiers-note" },
    "Best tiers first, then by in-sample Sharpe per trade (the criterion that chose the parameters); out-of-sample figures only accept or reject."),
  h("p", { class: "muted", id: "overfitting-line" }, overfittingText(tiers.overfitting)),
  table([
    { label: "Tier", get: tierCell }, { label: "Strategy", get: (r) => r.strategy_id },
    { label: "Side", get: (r) => sideLabel(r.direction) },
    { label: "IS trades", get: (r) => int(r.is_trades), class: "num" }, { label: inCurrency("IS PnL", m), get: (r) => num(r.is_pnl), class: "num" },
    { label: "IS Sharpe/trade", get: (r) => num(r.is_sharpe_per_trade), class: "num" },
    { label: "OOS trades", get: (r) => int(r.oos_trades), class: "num" }, { label: "OOS win", get: (r) => pct(r.oos_win_rate), class: "num" },
    { label: inCurrency("OOS PnL", m), get: (r) => num(r.oos_pnl), class: "num" }, { label: "OOS Sharpe", get: (r) => num(r.oos_sharpe), class: "num" },
    { label: "OOS p", get: (r) => num(r.oos_p_value), class: "num" },
    { label: "DSR", get: (r) => num(r.dsr), class: "num" }, { label: "PBO", get: (r) => num(r.pbo), class: "num" },
    { label: "WF +folds", get: (r) => `${r.wf_positive_folds}/${r.wf_folds}`, class: "num" },
    { label: "WF eff.", get: (r) => num(r.wf_efficiency), class: "num" },
    { label: "Parameters (price units)", get: (r) => h("span", { title: paramsText(r.params, m) }, paramsShort(r.params, m)), class: "line" },
    { label: "Reasons", get: (r) => r.reasons || "", class: "line" },
  ], tiers.strategies, { id: "tiers-table" }));
}

const NULL_HEADLINE_TIERS = ["PRODUCTION", "CANDIDATE"];
const TIER_ORDER = ["PRODUCTION", "CANDIDATE", "UNPROVEN", "TOXIC"];

// summary.json's null_twins block (stratforge run --null-twins, stratforge audit null):
// how often noise that looks like this data reaches each tier, and who beats it.
export function nullTwinsPanel(b) {
  const n = b.twins;
  const tiers = b.tiers || {};
  const reached = NULL_HEADLINE_TIERS.filter((t) => tiers[t]).map((t) => `${t} in ${tiers[t].twins_with_any}`).join(", ");
  const beats = b.beats_the_twins;
  const names = [...TIER_ORDER.filter((t) => tiers[t]), ...Object.keys(tiers).filter((t) => !TIER_ORDER.includes(t)).sort()];
  const winners = (b.strategies || []).filter((s) => s.beats_the_twins);
  return panel("Null twins of your data",
    h("p", { id: "null-twins-headline" }, h("strong", {}, `on ${n} null twins of your data: ${reached}`),
      `; ${beats} real strateg${beats === 1 ? "y beats" : "ies beat"} the twins`),
    table([
      { label: "Tier", get: (t) => h("span", { class: `tier-${TIER_ORDER.indexOf(t) + 1}` }, t) },
      { label: "Real run", get: (t) => int(tiers[t].real), class: "num" },
      { label: "Twins with any", get: (t) => `${tiers[t].twins_with_any} of ${n}`, class: "num" },
      { label: "Strategies on twins", get: (t) => int(tiers[t].strategies), class: "num" },
      { label: "Per twin", get: (t) => (tiers[t].per_twin || []).join(", "), class: "line" },
    ], names, { id: "null-twins-table", rowKey: (t) => t }),
    facts([
      ["Best DSR", `real run ${num(b.real.best_dsr)}, best twin ${num(b.best_twin.dsr)}`],
      ["Best OOS Sharpe", `real run ${num(b.real.best_oos_sharpe)}, best twin ${num(b.best_twin.oos_sharpe)}`],
      ["Beats the twins", `DSR above ${num(b.dsr_threshold)} (${b.dsr_threshold_rule})`],
      ["Twins", `${n} ${b.method} twins of ${int(b.bars)} ${b.base_timeframe} bars, seed ${b.seed}`]]),
    winners.length ? table([
      { label: "Beats the twins", get: (s) => s.strategy_id }, { label: "Tier", get: (s) => s.tier_name },
      { label: "Timeframe", get: (s) => s.timeframe }, { label: "DSR", get: (s) => num(s.dsr), class: "num" },
    ], winners, { id: "null-twins-winners" }) : empty("No real strategy beats the twins."));
}

const shortTime = (iso) => String(iso || "").replace("T", " ").replace("+00:00", "");

// The latest `stratforge audit lookahead` of the run (or of its symbol): every feature,
// template match and model signal recomputed on truncated and future-perturbed copies.
export function lookaheadPanel(a) {
  const found = a.findings || [];
  const scope = a.run_id ? `run ${a.run_id}` : `${a.symbol} (not this run: its symbol's latest audit)`;
  return panel("Lookahead audit",
    h("p", { id: "lookahead-headline", class: found.length ? "tier-4" : "tier-1" },
      h("strong", {}, found.length ? `lookahead in ${found.length} feature series` : "no lookahead found")),
    facts([
      ["Audited", `${scope}, written ${shortTime(a.written)} UTC`],
      ["Checked", a.summary ? a.summary.replace(/^[^:]*: /, "") : null],
      ["Models", (a.models || []).length ? a.models.map((m) => m.slice(0, 16)).join(", ") : "none"],
      ["Builder", a.builder || "built-in (build_features)"]]),
    found.length ? table([
      { label: "Source", get: (f) => f.source }, { label: "Feature", get: (f) => f.feature },
      { label: "TF", get: (f) => f.timeframe }, { label: "First differing bar (UTC)", get: (f) => shortTime(f.first_bar) },
      { label: "Row", get: (f) => int(f.first_bar_index), class: "num" },
      { label: "Cut", get: (f) => shortTime(f.cut) }, { label: "Seen by", get: (f) => (f.checks || []).join(", ") },
      { label: "Cuts", get: (f) => `${f.cuts}/${(a.cuts || []).length}`, class: "num" },
    ], found, { id: "lookahead-table", rowKey: (f) => `${f.source}.${f.feature}@${f.timeframe}` })
      : empty("No value at or before a cut changed on any copy."),
    (a.skipped || []).length ? h("ul", { id: "lookahead-skipped", class: "muted" },
      a.skipped.map((line) => h("li", {}, `not replayed: ${line}`))) : null);
}

function playbookPanel(playbook, market) {
  const list = playbook.strategies || [];
  const m = playbook.market || market;
  return panel("Playbook (Tier 1)", list.length ? table([
    { label: "Strategy", get: (s) => s.strategy_id }, { label: "Timeframe", get: (s) => s.timeframe },
    { label: inCurrency("OOS PnL", m), get: (s) => num(s.out_of_sample?.pnl), class: "num" },
    { label: "OOS Sharpe", get: (s) => num(s.out_of_sample?.sharpe), class: "num" },
    { label: "Parameters", get: (s) => (s.parameters ? statedParamsText(s.parameters, m) : paramsText(s.params, m)), class: "wrap" },
  ], list, { id: "playbook-table" }) : empty("No strategy reached Tier 1 (PRODUCTION): the playbook is empty."));
}

async function equityChart(curves) {
  if (!curves.strategies.length) return panel("Equity curves", empty("No equity curves in this run."));
  const el = chartDiv("chart-equity");
  const traces = [];
  curves.strategies.forEach((s, i) => {
    for (const [segment, dash, label] of [["in_sample", "solid", "IS"], ["out_of_sample", "dash", "OOS"]]) {
      const idx = s.segment.map((g, j) => (g === segment ? j : -1)).filter((j) => j >= 0);
      if (!idx.length) continue;
      traces.push({ type: "scatter", mode: "lines+markers", name: `${esc(s.strategy_id)} ${label}`,
        legendgroup: esc(s.strategy_id), x: idx.map((j) => s.exit_time[j]), y: idx.map((j) => s.equity[j]),
        line: { dash, width: 2, color: ["#5aa9ff", "#f0883e", "#3fb950", "#f85149", "#bc8cff"][i % 5] },
        marker: { size: 4 }, hovertemplate: `%{x}<br>equity %{y:,.2f} ${esc(curves.market.currency)}<extra></extra>` });
    }
  });
  const shapes = curves.train_end ? [{ type: "line", x0: curves.train_end, x1: curves.train_end, y0: 0, y1: 1,
    yref: "paper", line: { color: "#8b98a8", dash: "dot", width: 1 } }] : [];
  await plot(el, traces, layout("Equity curves (solid: in-sample, dashed: out-of-sample)", "exit time (UTC)", inCurrency("cumulative PnL", curves.market), { shapes }));
  return panel("Equity curves", el);
}

// Every section the run's artifacts allow (a section whose phase has not run is left out).
export async function renderResults(box, runId, info) {
  const done = info.phases_done;
  const parts = [];
  const tasks = [];
  const add = (cond, make) => { if (!cond) return; const slot = h("div", {}); parts.push(slot);
    tasks.push(make().then((node) => slot.append(node)).catch((error) => slot.append(panel(null, errorBox(error))))); };
  const report = h("button", { id: "open-report", disabled: !info.files.report,
    onclick: () => openDocument(`/research/runs/${runId}/report`).catch((e) => console.warn(e)) }, "Open the report");
  parts.push(h("div", { class: "toolbar" }, report, h("span", { class: "muted" }, info.files.report ? "report.html" : "the report is written at the end")));
  const market = await get(`/research/runs/${runId}/market`);
  add(true, async () => marketPanel(market));
  const summary = info.files.summary ? get(`/research/runs/${runId}/summary`) : null;
  add(info.files.summary, async () => phasesChart(await summary));
  add(done.includes("anova"), async () => anovaChart(await get(`/research/runs/${runId}/anova`)));
  add(done.includes("sweep"), () => heatmapPanel(runId));
  add(done.includes("refine"), async () => thompsonChart(await get(`/research/runs/${runId}/refinement`)));
  add(done.includes("validation"), async () => tiersPanel(await get(`/research/runs/${runId}/tiers`)));
  if (summary) {
    const slot = h("div", {}); parts.push(slot);  // only when the run was audited
    tasks.push(summary.then((s) => { if (s.null_twins) slot.append(nullTwinsPanel(s.null_twins)); }).catch(() => {}));
  }
  const audit = h("div", {}); parts.push(audit);  // only when the run or its symbol was audited
  tasks.push(get(`/research/runs/${runId}/lookahead`).then((a) => { if (a.audited) audit.append(lookaheadPanel(a)); }).catch(() => {}));
  add(info.files.playbook, async () => playbookPanel(await get(`/research/runs/${runId}/playbook`), market));
  add(done.includes("validation"), async () => equityChart(await get(`/research/runs/${runId}/curves`)));
  fill(box, ...parts);
  await Promise.all(tasks);
}
