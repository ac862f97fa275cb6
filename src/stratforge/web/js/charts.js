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

export const COLOURS = ["#5aa9ff", "#f0883e", "#3fb950", "#f85149", "#bc8cff", "#d29922",
  "#39c5cf", "#e67fb9", "#8b98a8", "#a5d6ff"];

export function layout(title, x, y, extra = {}) {
  const axis = { gridcolor: "#2a3441", zerolinecolor: "#3a4655", linecolor: "#3a4655",
    automargin: true };
  return {
    title: { text: title, x: 0.01, font: { size: 14 } }, paper_bgcolor: "#171d25",
    plot_bgcolor: "#171d25", font: { color: "#dce3ea", size: 12,
      family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif" },
    margin: { l: 56, r: 16, t: 64, b: 44 }, colorway: COLOURS, hovermode: "closest",
    legend: { orientation: "h", x: 1, xanchor: "right", y: 1.0, yanchor: "bottom", bgcolor: "rgba(0,0,0,0)" },
    xaxis: { ...axis, title: { text: x } }, yaxis: { ...axis, title: { text: y } }, ...extra,
  };
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
