// The API reference page (/ui/api.html, where /api/v1/docs leads): the server's OpenAPI
// schema as a list of routes with their parameters, bodies and answers. Self-contained: no
// script from anywhere but this server (docs/api.md).
import { askToken, get } from "./api.js";
import { clear, errorBox, h, panel } from "./dom.js";

const METHODS = ["get", "post", "put", "patch", "delete"];

// A schema as short text: a $ref's name, an array of ..., a type, or "object".
function schemaText(schema) {
  if (!schema) return "–";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.anyOf) return schema.anyOf.map(schemaText).join(" | ");
  if (schema.type === "array") return `array of ${schemaText(schema.items)}`;
  return schema.type || "object";
}

function operation(path, method, op) {
  const params = (op.parameters || []).map((p) => h("li", {},
    h("code", {}, p.name), ` (${p.in}${p.required ? ", required" : ""}): ${schemaText(p.schema)}`,
    p.description ? ` – ${p.description}` : ""));
  const body = op.requestBody?.content?.["application/json"]?.schema;
  const answers = Object.entries(op.responses || {}).map(([code, r]) => h("li", {},
    h("code", {}, code), ` ${r.description || ""}`));
  return h("section", { class: "panel", id: `${method}-${path}` },
    h("h2", {}, h("code", {}, `${method.toUpperCase()} ${path}`)),
    h("p", {}, op.summary || ""), op.description ? h("p", { class: "muted" }, op.description) : null,
    params.length ? [h("h3", {}, "Parameters"), h("ul", {}, params)] : null,
    body ? [h("h3", {}, "JSON body"), h("p", {}, h("code", {}, schemaText(body)))] : null,
    h("h3", {}, "Answers"), h("ul", {}, answers));
}

function schemas(components) {
  return Object.entries(components?.schemas || {}).map(([name, s]) => h("section", { class: "panel", id: `schema-${name}` },
    h("h2", {}, name), s.description ? h("p", { class: "muted" }, s.description) : null,
    h("ul", {}, Object.entries(s.properties || {}).map(([field, f]) => h("li", {},
      h("code", {}, field), `: ${schemaText(f)}`, f.description ? ` – ${f.description}` : "")))));
}

async function render() {
  const page = document.getElementById("page");
  page.dataset.state = "loading";
  try {
    const spec = await get("/openapi.json");
    const routes = [];
    for (const [path, item] of Object.entries(spec.paths || {})) {
      for (const method of METHODS) if (item[method]) routes.push(operation(path, method, item[method]));
    }
    clear(page).append(h("h1", {}, `${spec.info.title} ${spec.info.version}: API reference`),
      panel(null, h("p", {}, spec.info.description || "")), ...routes, h("h1", {}, "Schemas"),
      ...schemas(spec.components));
  } catch (error) {
    clear(page).append(errorBox(error));
  }
  page.dataset.state = "ready";
}

document.getElementById("token-button").addEventListener("click", () => askToken("").then(render));
render();
