// Templates: a run's templates in z-momentum space (colour: PnL or risk, size: members);
// a click shows the template's members, oracle statistics and its trades on a price chart.
import { get } from "../api.js";
import { empty, errorBox, facts, fill, h, int, num, panel, pct, table, when } from "../dom.js";
import { esc, layout, plot } from "../charts.js";
import { fixed, inCurrency, money, paramsText, price, priceFormat, robustTop, sideLabel } from "../format.js";

// A member id "<tf>:<bar time in ns since the epoch>" as "<tf> <UTC time>" (others as given).
export function memberLabel(id) {
  const [tf, ns] = String(id).split(":");
  if (!/^[0-9]{12,20}$/.test(ns || "")) return String(id);
  const stamp = new Date(Number(BigInt(ns) / 1000000n)).toISOString().slice(0, 16).replace("T", " ");
  return `${tf} ${stamp}`;
}

export function markerSizes(members) {
  const roots = members.map((m) => Math.sqrt(Math.max(0, m)));
  const top = Math.max(...roots, 0) || 1;
  return roots.map((r) => 8 + 32 * r / top);
}

// The z-momentum scatter. |momentum| can be heavily skewed (one template far above the
// rest): then the y axis ends at 1.25 x the 90th percentile (format.js robustTop), the
// templates above it are drawn on the top edge as open triangles, their values in the hover,
// and the note under the chart says how many were clipped.
async function drawSpace(el, note, templates, colourBy, market) {
  const colour = templates.map((t) => (colourBy === "pnl" ? t.best_is_pnl : t.mae_median));
  const ys = templates.map((t) => t.abs_momentum_strength);
  const clip = robustTop(ys);
  const shown = ys.map((y) => (clip && y > clip.top ? clip.top : y));
  const over = ys.map((y) => Boolean(clip && y > clip.top));
  const colourTitle = colourBy === "pnl" ? inCurrency("best IS PnL", market) : "median MAE (price)";
  const colourHover = colourBy === "pnl" ? `%{marker.color:,.2f} ${esc(market.currency)}` : `MAE %{marker.color:${priceFormat(market)}}`;
  const text = templates.map((t, i) => `${esc(t.template_id)} · ${sideLabel(t.direction)} · members ${t.members}` +
    `<br>|momentum| ${esc(fixed(ys[i], 3))}${over[i] ? " (above the axis, clipped)" : ""}`);
  const sizes = markerSizes(templates.map((t) => t.members));
  // templates with a value get the colour scale; the others (no sweep row with trades, so no
  // best PnL or MAE) are grey, in a legend entry of their own that says why
  const pick = (keep) => templates.map((_, i) => i).filter((i) => keep(colour[i] === null || colour[i] === undefined));
  const trace = (idx, extra) => ({
    type: "scatter", mode: "markers", x: idx.map((i) => templates[i].abs_z), y: idx.map((i) => shown[i]),
    customdata: idx.map((i) => templates[i].template_id), text: idx.map((i) => text[i]),
    ...extra,
    marker: { size: idx.map((i) => sizes[i]), symbol: idx.map((i) => (over[i] ? "triangle-up-open" : "circle")),
      line: { width: idx.map((i) => (over[i] ? 2 : 1)), color: "#0f1419" }, opacity: 0.85, ...extra.marker },
  });
  const valued = pick((missing) => !missing);
  const blank = pick((missing) => missing);
  const traces = [trace(valued, {
    name: colourTitle, showlegend: false, hovertemplate: `%{text}<br>|z| %{x:.3f}<br>${colourHover}<extra></extra>`,
    marker: { color: valued.map((i) => colour[i]), colorscale: colourBy === "pnl" ? "RdBu" : "YlOrRd",
      reversescale: colourBy === "pnl", cmid: colourBy === "pnl" ? 0 : undefined,
      colorbar: { title: { text: colourTitle, side: "right" }, thickness: 12 } } })];
  if (blank.length) {
    traces.push(trace(blank, { name: colourBy === "pnl" ? "grey: no in-sample trade in the sweep (no PnL)" : "grey: no trade, no MAE",
      showlegend: true, hovertemplate: "%{text}<br>|z| %{x:.3f}<br>no value<extra></extra>", marker: { color: "#8a94a6" } }));
  }
  await plot(el, traces, layout("Templates in z-momentum space (size ~ sqrt(members))", "centroid |z|", "centroid |momentum strength|",
    clip ? { yaxis: { range: [0, clip.top * 1.1], title: { text: "|momentum| (axis clipped)" }, gridcolor: "#2a3441", automargin: true } } : {}));
  el.dataset.clipped = clip ? String(clip.clipped) : "0";
  note.textContent = clip
    ? `${clip.clipped} of ${templates.length} templates have |momentum| above ${fixed(clip.top, 3)} (1.25 x the 90th percentile): drawn as open triangles on the top edge so one outlier does not squash the others; the hover gives their value.`
    : "";
}

async function drawTrades(el, data) {
  const c = data.candles;
  const m = data.market;
  const fmt = priceFormat(m);
  const traces = [{ type: "candlestick", name: "bars", x: c.ts, open: c.open, high: c.high, low: c.low, close: c.close,
    increasing: { line: { color: "#3fb950" } }, decreasing: { line: { color: "#f85149" } } }];
  const trades = data.trades;
  traces.push({ type: "scatter", mode: "markers", name: "entry", x: trades.map((t) => t.entry_time), y: trades.map((t) => t.entry_price),
    marker: { symbol: trades.map((t) => (t.side > 0 ? "triangle-up" : "triangle-down")), size: 11, color: "#5aa9ff", line: { width: 1, color: "#fff" } },
    hovertemplate: `entry %{x}<br>%{y:${fmt}}<extra></extra>` });
  traces.push({ type: "scatter", mode: "markers", name: "exit", x: trades.map((t) => t.exit_time), y: trades.map((t) => t.exit_price),
    marker: { symbol: "x", size: 10, color: "#f0883e" }, text: trades.map((t) => `${esc(t.reason)} PnL ${esc(money(t.pnl, m))}`),
    hovertemplate: `exit %{x}<br>%{y:${fmt}}<br>%{text}<extra></extra>` });
  await plot(el, traces, layout(`Trades of ${esc(data.template.template_id)} at ${esc(data.timeframe)}`, "time (UTC)", `price (${esc(m.symbol)})`,
    { xaxis: { rangeslider: { visible: false }, gridcolor: "#2a3441" }, yaxis: { tickformat: fmt, gridcolor: "#2a3441", automargin: true, title: { text: `price (${esc(m.symbol)})` } } }));
}

async function showTemplate(box, runId, templateId, timeframe) {
  const q = timeframe ? `?timeframe=${encodeURIComponent(timeframe)}` : "";
  const data = await get(`/research/runs/${runId}/templates/${encodeURIComponent(templateId)}${q}`);
  const t = data.template;
  const m = data.market;
  const select = h("select", { id: "template-timeframe" }, data.timeframes.map((tf) => h("option", { value: tf }, tf)));
  select.value = data.timeframe;
  select.addEventListener("change", () => showTemplate(box, runId, templateId, select.value).catch((e) => fill(box, errorBox(e))));
  const chart = h("div", { class: "chart", id: "chart-trades" });
  const members = t.member_ids.slice(0, 200).map(memberLabel);
  fill(box, panel(`Template ${t.template_id}`, h("div", { class: "grid" },
    h("div", {}, h("h3", {}, "Oracle statistics"), facts([
      ["Direction", sideLabel(t.direction)], ["Members", int(t.members)],
      ["Oracle win rate", pct(t.oracle_win_rate)], ["Oracle direction share", pct(t.oracle_direction_share)],
      ["MFE p25/p50/p75 (price)", t.mfe_percentiles.map((v) => price(v, m)).join(" / ")],
      ["MAE p25/p50/p75 (price)", t.mae_percentiles.map((v) => price(v, m)).join(" / ")],
      ["Long share", pct(t.long_share)], ["Physics variance", num(t.physics_variance, 4)],
      ["Timeframes", t.timeframes.join(", ")], ["Parent", t.parent_id]])),
    h("div", {}, h("h3", {}, `Members (${members.length} of ${t.members} shown)`),
      h("p", { class: "mono", id: "template-members" }, members.join(", ")))),
  h("div", { class: "toolbar" }, h("label", {}, "timeframe", select),
    h("span", { class: "muted", id: "trade-info" }, `${data.matches} matches, ${data.trades.length} trades, parameters: ${data.params_source}`)),
  data.params ? h("p", { class: "muted", id: "trade-params" }, paramsText(data.params, m)) : null,
  data.candles.ts.length ? chart : empty("No bars for this timeframe."),
  data.trades.length ? table([
    { label: "Entry", get: (r) => when(r.entry_time) }, { label: "Exit", get: (r) => when(r.exit_time) },
    { label: "Side", get: (r) => (r.side > 0 ? "long" : "short") }, { label: "Entry price", get: (r) => price(r.entry_price, m), class: "num" },
    { label: "Exit price", get: (r) => price(r.exit_price, m), class: "num" }, { label: "Reason", get: (r) => r.reason },
    { label: inCurrency("PnL", m), get: (r) => num(r.pnl), class: "num" }], data.trades, { id: "trades-table" }) : empty("No trades for this template.")));
  if (data.candles.ts.length) await drawTrades(chart, data);
  box.dataset.template = t.template_id;
}

export async function render(root, { id }) {
  const runs = (await get("/research/runs?limit=100")).runs.filter((r) => r.phases_done.includes("discovery"));
  root.append(h("h1", {}, "Templates"));
  if (!runs.length) { root.append(panel(null, empty("No research run has a template library yet: start one on the Research page."))); return null; }
  const runId = id && runs.some((r) => r.run_id === id) ? id : runs[0].run_id;
  const runSelect = h("select", { id: "templates-run" }, runs.map((r) => h("option", { value: r.run_id }, r.run_id)));
  runSelect.value = runId;
  runSelect.addEventListener("change", () => { location.hash = `#/templates/${encodeURIComponent(runSelect.value)}`; });
  const colour = h("select", { id: "templates-colour" }, h("option", { value: "pnl" }, "colour: best IS PnL"), h("option", { value: "risk" }, "colour: median MAE (risk)"));
  const data = await get(`/research/runs/${encodeURIComponent(runId)}/templates`);
  const space = h("div", { class: "chart", id: "chart-templates" });
  const clipNote = h("p", { class: "muted", id: "templates-clip-note" });
  const detail = h("div", { id: "template-detail" }, panel(null, empty("Click a template to see its members, statistics and trades.")));
  const pick = (templateId) => showTemplate(detail, encodeURIComponent(runId), templateId)
    .catch((e) => fill(detail, errorBox(e)));
  const list = table([
    { label: "Template", get: (t) => t.template_id }, { label: "Side", get: (t) => sideLabel(t.direction) },
    { label: "Members", get: (t) => int(t.members), class: "num" }, { label: "|z|", get: (t) => num(t.abs_z, 3), class: "num" },
    { label: "|momentum|", get: (t) => num(t.abs_momentum_strength, 3), class: "num" },
    { label: "Oracle win", get: (t) => pct(t.oracle_win_rate), class: "num" },
    { label: "Median MAE (price)", get: (t) => price(t.mae_median, data.market), class: "num" },
    { label: inCurrency("Best IS PnL", data.market), get: (t) => num(t.best_is_pnl), class: "num" }],
  data.templates, { id: "templates-table", rowKey: (t) => t.template_id, onRow: (t) => pick(t.template_id) });
  const chartPanel = panel(null, h("div", { class: "toolbar" }, h("label", {}, "run", runSelect), colour,
    h("span", { class: "muted" }, `${data.count} templates, ${data.market.symbol}, PnL in ${data.market.currency}`)), space, clipNote);
  chartPanel.classList.add("wide");  // the colour bar would leave a half-width plot too narrow
  root.append(h("div", { class: "grid" }, chartPanel, panel("Templates", list)), detail);
  await drawSpace(space, clipNote, data.templates, colour.value, data.market);
  space.on("plotly_click", (ev) => { const point = ev.points && ev.points[0]; if (point) pick(point.customdata); });
  colour.addEventListener("change", () => drawSpace(space, clipNote, data.templates, colour.value, data.market));
  return null;
}
