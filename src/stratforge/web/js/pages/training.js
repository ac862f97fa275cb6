// Training: training runs, and one run's days (daily and cumulative PnL, win rate and
// Sharpe, regret efficiency and early/late exits, the strongest states), live while it runs.
import { del, get, openDocument } from "../api.js";
import { empty, fill, h, int, num, panel, pct, progressBar, setProgress, statusBadge, table, viewLink, when } from "../dom.js";
import { esc, layout, plot } from "../charts.js";
import { inCurrency, money } from "../format.js";
import { trainingForm } from "./forms.js";

function runLink(id) { return viewLink("training", id); }

// Every training run of the home: operations from the API, the dashboard, the agent and
// `stratforge train` (source "cli"), then folders no operation names; live while they run.
async function renderList(root, feed) {
  const box = h("div", { id: "training-runs-box" });
  root.append(h("h1", {}, "Training runs"), panel(null, box));
  const refresh = async () => {
    const { runs } = await get("/training/runs?limit=100");
    fill(box, runs.length ? table([
      { label: "Run", get: (r) => (r.operation ? runLink(r.operation.id) : r.folder) },
      { label: "Started by", get: (r) => ({ cli: "stratforge train", server: "API / dashboard / agent" }[r.source] || "no operation") },
      { label: "Folder", get: (r) => `training/${r.folder}` },
      { label: "Status", get: (r) => (r.operation ? statusBadge(r.operation.status) : "-") },
      { label: "Days", get: (r) => int(r.days), class: "num" },
      { label: "Progress", get: (r) => (r.operation ? `${r.operation.progress.percent.toFixed(0)}%` : "-"), class: "num" },
      { label: "Created", get: (r) => (r.operation ? when(r.operation.created_at) : "-") }], runs, { id: "training-runs" })
      : empty("No training runs yet: start one with the form above, in a terminal with `stratforge train` (add --dashboard to watch it here) or with POST /api/v1/training/runs; all appear here."));
  };
  await refresh();
  let timer = null;
  const unsubscribe = feed.subscribe((event) => {
    if (!String(event.operation_id || "").startsWith("op_training_run_")) return;
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch((e) => console.warn(e)), 400);
  });
  return () => { unsubscribe(); clearTimeout(timer); };
}

export function cumulative(values) { let s = 0; return values.map((v) => (s += Number(v) || 0)); }

// A date axis with a tick every k whole days (at most 8 ticks): labels never overlap, and a
// three-day run does not get hourly ticks.
export function dayAxis(days) {
  const stamps = days.map((d) => Date.parse(d)).filter(Number.isFinite);
  const span = stamps.length ? Math.round((Math.max(...stamps) - Math.min(...stamps)) / 86400000) + 1 : 1;
  return { type: "date", title: { text: "day" }, gridcolor: "#2a3441", automargin: true,
    dtick: 86400000 * Math.max(1, Math.ceil(span / 8)), tickformat: "%d %b %Y" };
}
const RIGHT = (title) => ({ overlaying: "y", side: "right", title: { text: title }, showgrid: false, automargin: true });

async function drawDays(charts, days, market) {
  const x = days.map((d) => d.day);
  const DAY_AXIS = dayAxis(x);
  const wide = { margin: { l: 56, r: 64, t: 44, b: 44 }, xaxis: DAY_AXIS };
  const sharpe = days.filter((d) => Number.isFinite(Number(d.sharpe)) && d.sharpe !== null).length;
  charts.sharpeNote.textContent = days.length && !sharpe
    ? "No Sharpe bars: a day's per-trade Sharpe needs at least 2 trades with PnL that differ, and no day had them." : "";
  await Promise.all([
    plot(charts.pnl, [{ type: "bar", name: "daily PnL", x, y: days.map((d) => d.pnl), marker: { color: days.map((d) => (d.pnl >= 0 ? "#3fb950" : "#f85149")) },
      hovertemplate: `%{x}<br>daily PnL %{y:,.2f} ${esc(market.currency)}<extra></extra>` },
    { type: "scatter", mode: "lines+markers", name: "cumulative PnL", x, y: cumulative(days.map((d) => d.pnl)), line: { color: "#5aa9ff" },
      hovertemplate: `%{x}<br>cumulative PnL %{y:,.2f} ${esc(market.currency)}<extra></extra>` }],
    layout(inCurrency(`Daily and cumulative PnL, ${esc(market.symbol)}`, market), "day", inCurrency("PnL", market), { xaxis: DAY_AXIS })),
    plot(charts.win, [{ type: "scatter", mode: "lines+markers", name: "win rate", x, y: days.map((d) => d.win_rate) },
      { type: "bar", name: "Sharpe", x, y: days.map((d) => d.sharpe), yaxis: "y2", opacity: 0.6 }],
    layout("Win rate and Sharpe per day", "day", "win rate", { ...wide, yaxis2: RIGHT("Sharpe") })),
    plot(charts.regret, ["mean_efficiency", "share_early", "share_late"].map((k) => ({ type: "scatter", mode: "lines+markers", name: k.replace("_", " "), x, y: days.map((d) => d[k]) })),
      layout("Regret: exit efficiency and early/late exits per day", "day", "share", { xaxis: DAY_AXIS })),
  ]);
}

function strongestTable(states, market) {
  if (states === null) return empty("No day trained yet.");
  if (!states.length) return empty("No state has enough samples yet.");
  return table([
    { label: "State", get: (r) => r.state, class: "wrap" }, { label: "Samples", get: (r) => int(r.samples), class: "num" },
    { label: "Wins", get: (r) => int(r.wins), class: "num" }, { label: "Posterior win rate", get: (r) => pct(r.posterior_mean), class: "num" },
    { label: "90% interval", get: (r) => `${pct(r.lo)} – ${pct(r.hi)}`, class: "num" },
    { label: inCurrency("Avg PnL", market), get: (r) => num(r.avg_pnl), class: "num" }, { label: "Trades", get: (r) => int(r.trades), class: "num" },
    { label: "Avg bars", get: (r) => num(r.avg_duration_bars, 1), class: "num" }], states, { id: "strongest-table" });
}

async function renderRun(root, id, feed) {
  const info = await get(`/training/runs/${encodeURIComponent(id)}`);
  let op = info.operation;
  const bar = progressBar(op.progress.percent);
  const statusBox = h("span", { id: "training-status" });
  const summary = h("p", { class: "muted", id: "training-summary" });
  const charts = { pnl: h("div", { class: "chart", id: "chart-daily-pnl" }), win: h("div", { class: "chart", id: "chart-win-rate" }),
    regret: h("div", { class: "chart", id: "chart-regret" }), sharpeNote: h("p", { class: "chart-note", id: "sharpe-note" }) };
  const daysBox = h("div", {});
  const states = h("div", {});
  const report = h("button", { id: "training-report", disabled: !info.report,
    onclick: () => openDocument(`/training/runs/${encodeURIComponent(op.id)}/report`).catch((e) => console.warn(e)) }, "Open the report");
  // a run started by `stratforge train` stops too: the terminal polls the cancel flag
  const stop = h("button", { id: "training-cancel", class: "danger", hidden: !["pending", "running"].includes(op.status),
    onclick: () => del(`/operations/${encodeURIComponent(op.id)}`, { reason: "cancelled from the dashboard" }).catch((e) => console.warn(e)) }, "Cancel");
  root.append(h("h1", {}, `Training run ${op.id}`), panel("Progress", h("div", { class: "toolbar" }, statusBox, report, stop), bar, summary),
    h("div", { class: "grid" }, panel(null, charts.pnl), h("section", { class: "panel wide" }, charts.win, charts.sharpeNote), panel(null, charts.regret), panel("Strongest states", states)),
    panel("Days", daysBox));
  let count = -1;
  const refresh = async () => {
    const data = await get(`/training/runs/${encodeURIComponent(id)}/days`);
    op = (await get(`/operations/${encodeURIComponent(id)}`));
    setProgress(bar, op.progress.percent);
    fill(statusBox, statusBadge(op.status));
    stop.hidden = !["pending", "running"].includes(op.status);
    summary.textContent = `${data.days.length} days trained, ${int(data.days.reduce((a, d) => a + (d.trades || 0), 0))} trades, ` +
      `PnL ${money(data.days.reduce((a, d) => a + (Number(d.pnl) || 0), 0), data.market)} (${data.market.symbol})`;
    if (data.days.length !== count) {
      count = data.days.length;
      await drawDays(charts, data.days, data.market);
      fill(daysBox, data.days.length ? table([
        { label: "Day", get: (d) => d.day }, { label: "Trades", get: (d) => int(d.trades), class: "num" },
        { label: "Win rate", get: (d) => pct(d.win_rate), class: "num" }, { label: inCurrency("PnL", data.market), get: (d) => num(d.pnl), class: "num" },
        { label: "Sharpe", get: (d) => num(d.sharpe), class: "num" }, { label: "Efficiency", get: (d) => pct(d.mean_efficiency), class: "num" },
        { label: "Early", get: (d) => pct(d.share_early), class: "num" }, { label: "Late", get: (d) => pct(d.share_late), class: "num" },
        { label: "States", get: (d) => int(d.states_learned), class: "num" }], data.days, { id: "days-table" }) : empty("No day trained yet."));
    }
    fill(states, strongestTable(data.strongest_states, data.market));
    if (report.disabled && !["pending", "running"].includes(op.status)) {
      report.disabled = !(await get(`/training/runs/${encodeURIComponent(id)}`)).report;
    }
  };
  await refresh();
  let timer = null;
  const unsubscribe = feed.subscribe((event) => {
    if (event.operation_id !== id) return;
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch((e) => console.warn(e)), 400);
  });
  return () => { unsubscribe(); clearTimeout(timer); };
}

export async function render(root, { id, feed }) {
  if (id) return renderRun(root, id, feed);
  const result = await renderList(root, feed);
  root.insertBefore(trainingForm(), root.children[1] || null);  // under the page title
  return result;
}
