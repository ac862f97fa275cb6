// DOM helpers: every value goes in as text (textContent), never as HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

export function panel(title, ...children) {
  return h("section", { class: "panel" }, title ? h("h2", {}, title) : null, ...children);
}

export function empty(text) { return h("p", { class: "empty" }, text); }
export function errorBox(error) { return h("p", { class: "error" }, String(error.message || error)); }

export const dash = "–";
export function num(x, digits = 2) {
  return x === null || x === undefined || !Number.isFinite(Number(x)) ? dash
    : Number(x).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
export function int(x) { return num(x, 0); }
export function pct(x) { return x === null || x === undefined || !Number.isFinite(Number(x)) ? dash : `${(100 * x).toFixed(1)}%`; }
export function when(iso) {
  if (!iso) return dash;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().replace("T", " ").slice(0, 19);
}
export function ago(seconds) {
  if (seconds === null || seconds === undefined) return dash;
  if (seconds < 60) return `${seconds.toFixed(1)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

export function statusBadge(status) { return h("span", { class: `status status-${status}` }, status); }

export function progressBar(percent) {
  const fill = h("span", { style: `width: ${Math.max(0, Math.min(100, Number(percent) || 0))}%` });
  return h("div", { class: "bar", role: "progressbar", "aria-valuenow": Number(percent) || 0,
    "aria-valuemin": 0, "aria-valuemax": 100 }, fill);
}
export function setProgress(bar, percent) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  bar.setAttribute("aria-valuenow", String(value));
  bar.firstChild.style.width = `${value}%`;
}

// A table from column specs {label, get(row) -> text|Node, class}; onRow(row, tr) on click.
export function table(columns, rows, { onRow, id, rowKey } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", {}, c.label)));
  const body = h("tbody", {}, rows.map((row) => {
    const tr = h("tr", { class: onRow ? "clickable" : null,
      dataset: rowKey ? { key: rowKey(row) } : undefined },
    columns.map((c) => h("td", { class: c.class || null }, c.get(row))));
    if (onRow) tr.addEventListener("click", () => onRow(row, tr));
    return tr;
  }));
  return h("div", { class: "scroll" }, h("table", { id }, h("thead", {}, head), body));
}

export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? dash)]));
}

export function json(value) { return h("pre", { class: "json" }, JSON.stringify(value, null, 2)); }

export function link(href, text) { return h("a", { href }, text); }
// A link to one item's view (#/<view>/<id>), or null without an id.
export function viewLink(view, id) { return id ? link(`#/${view}/${encodeURIComponent(id)}`, id) : null; }
export function opLink(id) { return viewLink("operations", id); }

// Replace an element's children (null, undefined and false are left out, unlike Node.append).
export function fill(el, ...children) { return append(clear(el), children); }

// An operation's step as a page shows it: a finished operation's step says how it ended
// ("done", "failed at sweep"), never the step it was on ("designing") as if it still ran.
export function stepText(op) {
  const step = op.progress?.step ?? op.step ?? "";
  if (!op.status || ["pending", "running"].includes(op.status)) return step;
  if (op.status === "completed") return "done";
  return step ? `${op.status} at ${step}` : op.status;
}
