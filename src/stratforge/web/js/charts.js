// plotly.js, loaded on the first chart (the overview needs none), with a dark layout.
let loading = null;

export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      window.PlotlyConfig = { MathJaxConfig: "local" };
      const script = document.createElement("script");
      script.src = "vendor/plotly.min.js";
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("plotly.js did not load"));
      document.head.append(script);
    });
  }
  return loading;
}

// 24 colours that stay apart on the dark background (plotly's Light24 order, brightest
// first): enough for the 20 combos a refinement can allocate to; more series than this
// repeat colours with another dash or marker (see seriesStyle).
export const COLOURS = ["#5aa9ff", "#f0883e", "#3fb950", "#f85149", "#bc8cff", "#d29922",
  "#39c5cf", "#e67fb9", "#a5d6ff", "#ffd33d", "#7ee787", "#ff9bce", "#b3995d", "#8ddcff",
  "#ffa657", "#56d364", "#d2a8ff", "#f2cc60", "#79c0ff", "#ff7b72", "#c9d1d9", "#a371f7",
  "#2ea043", "#db6d28"];
const DASHES = ["solid", "dot", "dash", "dashdot"];

// The colour (and, past the palette, a dash) of series i, so 20+ series stay apart.
export function seriesStyle(i) {
  return { color: COLOURS[i % COLOURS.length], dash: DASHES[Math.floor(i / COLOURS.length) % DASHES.length] };
}

// The dark layout: the title top left; the legend, when there is one, horizontal under the
// plot in the container's coordinates, so it pushes the bottom margin and never overlaps the
// title or the axis titles, however many rows it wraps to.
export function layout(title, x, y, extra = {}) {
  const axis = { gridcolor: "#2a3441", zerolinecolor: "#3a4655", linecolor: "#3a4655",
    automargin: true };
  return {
    title: { text: title, x: 0.01, xanchor: "left", font: { size: 14 } }, paper_bgcolor: "#171d25",
    plot_bgcolor: "#171d25", font: { color: "#dce3ea", size: 12,
      family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif" },
    margin: { l: 56, r: 16, t: 44, b: 44 }, colorway: COLOURS, hovermode: "closest",
    legend: LEGEND,
    xaxis: { ...axis, title: { text: x } }, yaxis: { ...axis, title: { text: y } }, ...extra,
  };
}

export const LEGEND = { orientation: "h", x: 0, xanchor: "left", yref: "container", y: 0,
  yanchor: "bottom", bgcolor: "rgba(0,0,0,0)" };

// A colour bar laid flat under the plot (a standing one takes a tenth of a card's width).
export function flatColourBar(title) {
  return { title: { text: title, side: "top" }, orientation: "h", x: 0.5, xanchor: "center",
    y: -0.22, yanchor: "top", thickness: 12, len: 0.6 };
}

// The height a chart needs for its legend: one legend row holds about four entries.
export function legendHeight(base, series, perRow = 4) {
  return base + 22 * Math.max(0, Math.ceil(series / perRow) - 1);
}

const CONFIG = { displaylogo: false, responsive: true };

// A chart drawn before its div is in the page gets plotly's default width; once the div is
// attached (pages build their panels first, then insert them), fit it to its container.
function fitWhenAttached(Plotly, el, frames = 600) {
  if (el.isConnected) { Plotly.Plots.resize(el).catch(() => {}); return; }
  if (frames > 0) requestAnimationFrame(() => fitWhenAttached(Plotly, el, frames - 1));
}

// Draw (or redraw) traces into a div; resolves with the div.
export async function plot(el, traces, lay) {
  const Plotly = await loadPlotly();
  const detached = !el.isConnected;
  await Plotly.react(el, traces, lay, CONFIG);
  if (detached) fitWhenAttached(Plotly, el);
  return el;
}

// Plotly renders a subset of HTML in text: escape what comes from data.
export function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
