// What a job request can hold, read from the server: the kinds, every field with its type, range, choices and
// description (the OpenAPI schema of POST /jobs) and each kind's defaults (GET /jobs/defaults). The forms build
// their fields from this, so a field or kind the server adds shows up without a dashboard change.

import * as api from "../api.js";

let openapiDoc = null;
/** The server's OpenAPI document, fetched once per page load. */
export function openapi() {
  openapiDoc ||= api.openapi().catch(() => ({}));
  return openapiDoc;
}

/** A schema with its $ref followed (within the document). */
function deref(doc, schema) {
  let out = schema;
  for (let i = 0; out?.$ref && i < 8; i++) out = out.$ref.replace(/^#\//, "").split("/").reduce((node, key) => node?.[key], doc);
  return out || {};
}

/**
 * A request body's properties by its schema name (JobCreate, ExperimentCreate). A union of variants (oneOf /
 * anyOf, e.g. one per job kind) gives the properties of all of them, each with its references followed. A
 * section (a property that is itself an object with properties: a job request's optim, clip, ...) gives its
 * settings as dotted names ("optim.lr"); nestedBody turns a form's dotted names back into sections.
 */
export async function schemaProps(name) {
  const doc = await openapi();
  const schema = deref(doc, doc?.components?.schemas?.[name]);
  const parts = [schema, ...(schema.oneOf || schema.anyOf || []).map((v) => deref(doc, v))];
  const props = {};
  const own = (prop) => {
    const p = deref(doc, prop);
    return p.anyOf ? { ...p, anyOf: p.anyOf.map((v) => deref(doc, v)) } : p;
  };
  for (const part of parts) {
    for (const [key, prop] of Object.entries(part.properties || {})) {
      const p = own(prop);
      const section = variants(p).find((v) => v.properties);
      if (!section) props[key] ??= p;
      else for (const [sub, sp] of Object.entries(section.properties)) props[`${key}.${sub}`] ??= own(sp);
    }
  }
  return props;
}

/** {"optim.lr": 0.1, name: "x"} -> {optim: {lr: 0.1}, name: "x"}. */
export function nestedBody(flat) {
  const out = {};
  for (const [key, value] of Object.entries(flat)) {
    const parts = key.split(".");
    let node = out;
    for (const p of parts.slice(0, -1)) node = node[p] ??= {};
    node[parts[parts.length - 1]] = value;
  }
  return out;
}

/** A /jobs/defaults payload's settings as dotted names (its nested config), or ``flat``: by the deprecated flat
 * names (epochs, lr: what POST /experiments' budget fields are called). */
export function defaultSettings(payload, { flat = false } = {}) {
  if (flat || !payload.config) return { ...payload.values };
  const out = {};
  for (const [key, value] of Object.entries(payload.config)) {
    if (value && typeof value === "object" && !Array.isArray(value)) for (const [sub, v] of Object.entries(value)) out[`${key}.${sub}`] = v;
    else out[key] = value;
  }
  return out;
}

/** The job kinds the server takes: the kind parameter of GET /jobs/defaults, else the request's kind field. */
export async function jobKinds(props = {}) {
  const doc = await openapi();
  const param = (doc?.paths?.["/jobs/defaults"]?.get?.parameters || []).find((p) => p.name === "kind");
  const fromParam = param ? describe(deref(doc, param.schema)).enum : undefined;
  return fromParam || describe(props.kind).enum || ["pretrain"];
}

/** The branches of an Optional (anyOf [..., null]) and the property itself. */
const variants = (prop) => [prop, ...(prop?.anyOf || [])].filter(Boolean);

/** {type, min, max, minExclusive, maxExclusive, enum, description} of a property. */
export function describe(prop) {
  const out = { description: prop?.description, type: undefined };
  for (const v of variants(prop)) {
    if (v.type && v.type !== "null" && !out.type) out.type = v.type;
    if (v.minimum !== undefined) out.min = v.minimum;
    if (v.exclusiveMinimum !== undefined) {
      out.min = out.min ?? v.exclusiveMinimum;
      out.minExclusive = true;
    }
    if (v.maximum !== undefined) out.max = v.maximum;
    if (v.exclusiveMaximum !== undefined) {
      out.max = out.max ?? v.exclusiveMaximum;
      out.maxExclusive = true;
    }
    if (v.enum) out.enum = v.enum;
  }
  return out;
}

/** "1 – 10000", "> 0, ≤ 4": the range of a described property in words. */
export function rangeText(c) {
  c = { ...c, max: c.max > 1e9 ? undefined : c.max }; // an id's or a seed's int64 / int32 bound says nothing
  if (c.min !== undefined && c.max !== undefined && !c.minExclusive && !c.maxExclusive) return `${c.min} – ${c.max}`;
  const lo = c.min !== undefined ? `${c.minExclusive ? ">" : "≥"} ${c.min}` : "";
  const hi = c.max !== undefined ? `${c.maxExclusive ? "<" : "≤"} ${c.max}` : "";
  return [lo, hi].filter(Boolean).join(", ");
}

/** The form builder's field for a schema property: its type, choices and range from the schema. */
export function schemaField(name, prop, { label, section, hint, placeholder, blank = "default", optionText = String } = {}) {
  const c = describe(prop);
  const f = { name, label: label || prop?.title || name, section, placeholder, c, ownHint: hint };
  if (c.enum) return { ...f, type: "select", value: "", options: [["", blank], ...c.enum.map((v) => [v, optionText(v)])] };
  if (c.type === "boolean") return { ...f, type: "bool", blank };
  if (c.type === "integer") return { ...f, type: "int", min: c.min, max: c.max };
  if (c.type === "number") return { ...f, type: "number", min: c.min, max: c.max };
  if (c.type === "object") return { ...f, type: "json" };
  return { ...f, type: "text" };
}

/** The hint under a schema field: the form's own words, else the schema's description, and the range. */
export const fieldHint = (f) => [f.ownHint ?? f.c?.description, f.c ? rangeText(f.c) : ""].filter(Boolean).join(" · ");

/** {field: shown default} of a /jobs/defaults payload ("source's" for what a source job passes on). */
export function shownDefaults(payload, { flat = false } = {}) {
  const out = {};
  for (const [name, value] of Object.entries(defaultSettings(payload, { flat }))) {
    if (payload.inherited.includes(flat ? payload.legacy?.[name] : name)) out[name] = "source's";
    else if (value !== null && value !== undefined) out[name] = typeof value === "object" ? JSON.stringify(value) : typeof value === "boolean" ? String(value) : value;
  }
  return out;
}

/** {kinds, props, defaults: {kind: payload}}: the job kinds POST /jobs takes and what each defaults to. */
export async function jobSpec() {
  const props = await schemaProps("JobCreate");
  const kinds = await jobKinds(props);
  const all = await Promise.all(kinds.map((k) => api.jobDefaults(k)));
  return { kinds, props, defaults: Object.fromEntries(all.map((d) => [d.kind, d])) };
}

/**
 * Puts a kind's defaults into its fields: the placeholder of an input, the blank option's text of a select.
 * fields: [{name, type, placeholder, c}] as built by schemaField; field(name) -> the form builder's field.
 */
export function showDefaults(fields, field, shown) {
  for (const f of fields) {
    const m = field(f.name);
    if (!m) continue;
    const d = shown[f.name];
    const control = m.controls[0];
    if (control.tagName === "SELECT") {
      if (control.options[0]?.value === "") control.options[0].textContent = d === undefined ? "default" : `default (${d})`;
    } else if (!f.placeholder) control.placeholder = d === undefined ? "" : String(d);
    m.hint.textContent = fieldHint(f);
  }
}
