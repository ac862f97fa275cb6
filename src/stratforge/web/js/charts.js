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

// Draw (or redraw) traces into a div; resolves with the div.
export async function plot(el, traces, lay) {
  const Plotly = await loadPlotly();
  await Plotly.react(el, traces, lay, CONFIG);
  return el;
}

// Plotly renders a subset of HTML in text: escape what comes from data.
export function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
