// Forms that start runs (training, evolution) and the symbol/timeframe choice the research
// form shares. Every form posts to the API, whose settings models check it; a refused one
// shows the API's 422 message as "refused: field: message".
import { ApiError, get, post } from "../api.js";
import { h, panel } from "../dom.js";

// A <select> of the home's ATLAS symbols (the first option: the server's default).
export function symbolSelect(id) {
  const select = h("select", { id, name: "symbol" }, h("option", { value: "" }, "symbol: default"));
  get("/data/symbols").then((data) => select.append(...data.symbols.map((s) => h("option", { value: s }, s))))
    .catch((error) => console.warn(error));
  return select;
}

// A <select> of the ATLAS timeframes (the first option: the default).
export function timeframeSelect(id) {
  const select = h("select", { id, name: "timeframe" }, h("option", { value: "" }, "timeframe: default"));
  get("/data/timeframes").then((data) => select.append(...data.timeframes.map((t) => h("option", { value: t.name }, t.name))))
    .catch((error) => console.warn(error));
  return select;
}

// The ATLAS timeframes as suggestions of a text input (research takes a list: "5m,15m").
export function timeframeList(id) {
  const list = h("datalist", { id });
  get("/data/timeframes").then((data) => list.append(...data.timeframes.map((t) => h("option", { value: t.name }))))
    .catch((error) => console.warn(error));
  return list;
}

// The message a refused start shows: a 422 as "refused: field: message; ...".
export function refusal(error) {
  return error instanceof ApiError && error.status === 422 ? `refused: ${error.message}` : String(error.message || error);
}

// A settings form: its fields (inputs with a name), a JSON box for any other setting, a
// submit button. onStarted(answer) runs after the API accepted the run.
function settingsForm({ prefix, title, route, fields, placeholder, help, onStarted }) {
  const extra = h("textarea", { id: `${prefix}-settings`, placeholder });
  const note = h("p", { class: "error", id: `${prefix}-error` });
  const submit = h("button", { id: `${prefix}-start`, type: "submit" }, title);
  const form = h("form", { class: "settings", id: `${prefix}-form` }, h("div", { class: "fields" }, ...fields, submit),
    h("label", { for: `${prefix}-settings` }, help), extra, note);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    note.textContent = "";
    let body;
    try { body = extra.value.trim() ? JSON.parse(extra.value) : {}; } catch (error) { note.textContent = `settings: ${error.message}`; return; }
    if (body === null || typeof body !== "object" || Array.isArray(body)) { note.textContent = "settings: a JSON object, such as {\"seed\": 7}"; return; }
    for (const input of form.querySelectorAll(".fields [name]")) {
      const value = input.value.trim();
      if (!value) continue;
      body[input.name] = input.type === "number" ? Number(value) : value;
    }
    submit.disabled = true;
    try {
      onStarted(await post(route, body));
    } catch (error) {
      note.textContent = refusal(error);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function numberField(id, name, label, placeholder) {
  return h("label", {}, label, h("input", { id, name, type: "number", placeholder, min: 0, step: "any" }));
}

// Start a training run (POST /training/runs); opens the run's page once queued.
export function trainingForm() {
  return panel("Start a training run", settingsForm({
    prefix: "train", title: "Start training run", route: "/training/runs",
    fields: [symbolSelect("train-symbol"), timeframeSelect("train-timeframe"),
      numberField("train-max-days", "max_days", "days", "all"), numberField("train-iterations", "iterations", "iterations", "200"),
      numberField("train-warmup", "warmup_days", "warm-up days", "10")],
    placeholder: '{"templates": "warmup", "seed": 7}', help: "more settings (JSON, docs/trainer.md)",
    onStarted: (op) => { location.hash = `#/training/${encodeURIComponent(op.id)}`; },
  }));
}

const ALGORITHMS = ["", "elasticnet", "random_forest", "hist_gradient_boosting", "lightgbm", "xgboost"];

// Start an evolution run (POST /evolution/runs); onStarted(answer) after it is queued.
export function evolutionForm(onStarted) {
  const algorithm = h("select", { id: "evolve-algorithm", name: "algorithm" },
    ALGORITHMS.map((a) => h("option", { value: a }, a || "algorithm: default")));
  return panel("Start an evolution run", settingsForm({
    prefix: "evolve", title: "Start evolution run", route: "/evolution/runs",
    fields: [symbolSelect("evolve-symbol"), timeframeSelect("evolve-timeframe"), algorithm,
      numberField("evolve-generations", "max_generations", "generations", "default")],
    placeholder: '{"hyperparameters": {"n_estimators": 50}, "horizon": 10}', help: "more settings (JSON, docs/evolution.md)",
    onStarted,
  }));
}

