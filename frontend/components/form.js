// The dashboard's one form builder: fields with labels, hints and per-field errors from the API's 422 detail.
// New job, New experiment and the dataset forms are all built with it.

import { h, clear, errorBox } from "../ui.js";

/**
 * fields: [{name, label, type, value, placeholder, hint, min, max, step, options, required, wide, section}]
 *   type: "text" | "int" | "number" | "checkbox" | "select" (number: true sends the option as a number)
 *     | "bool"    (a select of default / true / false; sends a boolean, nothing for default)
 *     | "json"    (a textarea holding a JSON object)
 *     | "checks"  (options [[v, text]], value [v...]; sends the checked values as a list)
 *     | "list"    (comma-separated numbers, item: "int" | "number"; sends a list)
 *     | "selects" (parts [{label, options, value}]; sends one value per part as a list, e.g. a (teacher, student) pair)
 * sections: optional [[id, title, {collapsed}]]; a field with `section: id` goes in that fieldset (a closed
 * <details> when collapsed), the rest in the first grid; a section with no field shown is hidden.
 * onSubmit(body) -> Promise; errors are placed beside their fields. A hidden field (show(name, false)) is not
 * sent. Returns {form, submit, setError, values, field, show}: values() reads the body as submit would.
 */
export function simpleForm({ id, fields, submitLabel, onSubmit, className = "", sections = [], actions = [] }) {
  const form = h("form", { class: `simple-form ${className}`, id, novalidate: true });
  const map = new Map();
  const grid = h("div", { class: "form-grid" });
  const grids = new Map(sections.map(([sid]) => [sid, h("div", { class: "form-grid" })]));
  const sectionEls = sections.map(([sid, title, opts = {}]) => opts.collapsed
    ? h("details", { class: "form-section" }, h("summary", {}, title), grids.get(sid))
    : h("fieldset", { class: "form-section" }, h("legend", {}, title), grids.get(sid)));
  for (const f of fields) {
    const fid = `${id}-${f.name}`;
    const hintId = `${fid}-hint`;
    const errId = `${fid}-error`;
    const common = { id: fid, name: f.name, "aria-describedby": `${hintId} ${errId}`, required: f.required };
    const { input, controls } = control(f, common);
    const hint = h("p", { class: "hint", id: hintId }, f.hint || "");
    const err = h("p", { class: "field-error", id: errId, "data-error-for": f.name });
    const cls = `field ${f.wide ? "wide" : ""}`;
    let wrap;
    if (f.type === "checkbox") wrap = h("div", { class: `field field-check ${f.wide ? "wide" : ""}` }, h("div", { class: "check" }, input, h("label", { for: fid }, f.label)), hint, err);
    else if (f.type === "checks" || f.type === "selects") wrap = h("fieldset", { class: `${cls} field-group`, "aria-describedby": `${hintId} ${errId}` }, h("legend", {}, f.label), h("div", { class: "group-row" }, input), hint, err);
    else wrap = h("div", { class: cls }, h("label", { for: fid }, f.label), input, hint, err);
    wrap.dataset.field = f.name;
    for (const c of controls) c.addEventListener(c.type === "checkbox" || c.tagName === "SELECT" ? "change" : "input", () => setError(f.name, ""));
    map.set(f.name, { f, input, controls, hint, err, wrap });
    (grids.get(f.section) || grid).append(wrap);
  }
  const formError = h("div", { "aria-live": "assertive" });
  const submit = h("button", { class: "btn btn-primary", type: "submit" }, submitLabel);
  form.append(grid, ...sectionEls, formError, h("div", { class: "actions form-actions" }, submit, ...actions));

  /** Shows or hides (and disables) a field; hides the sections left empty. */
  function show(name, on) {
    const m = map.get(name);
    if (!m) return;
    m.wrap.hidden = !on;
    for (const c of m.controls) c.disabled = !on;
    for (const el of sectionEls) el.hidden = ![...el.querySelectorAll("[data-field]")].some((w) => !w.hidden);
  }

  function focusFirstError() {
    const first = form.querySelector("[aria-invalid=true]");
    if (!first) return;
    first.closest("details")?.setAttribute("open", "");
    first.focus();
  }

  function setError(name, msg) {
    const m = map.get(name);
    if (!m) return false;
    m.err.textContent = msg || "";
    m.wrap.classList.toggle("has-error", Boolean(msg));
    if (msg) m.controls[0].setAttribute("aria-invalid", "true");
    else m.controls[0].removeAttribute("aria-invalid");
    return true;
  }

  /** {body, errors}: the request body and the fields the browser can already tell are wrong. */
  function read() {
    const body = {};
    const errors = {};
    for (const [name, { f, controls, wrap }] of map) {
      if (wrap.hidden) continue;
      const [value, problem] = readField(f, controls);
      if (problem) errors[name] = problem;
      else if (value !== undefined) body[name] = value;
    }
    return { body, errors };
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(formError);
    for (const name of map.keys()) setError(name, "");
    const { body, errors } = read();
    if (Object.keys(errors).length) {
      for (const [name, msg] of Object.entries(errors)) setError(name, msg);
      focusFirstError();
      return;
    }
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    try {
      await onSubmit(body);
    } catch (err) {
      const fe = err.fieldErrors || {};
      const rest = [];
      for (const [k, msg] of Object.entries(fe)) if (!setError(k, msg) && !setError(k.split(".")[0], msg)) rest.push(k ? `${k}: ${msg}` : msg);
      if (!Object.keys(fe).length || rest.length) clear(formError, errorBox(rest.length ? { status: err.status, message: rest.join("; ") } : err));
      focusFirstError();
    } finally {
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
    }
  });
  return { form, submit, setError, show, values: () => read().body, field: (name) => map.get(name) };
}

/** The element(s) for one field: {input (what goes in the wrapper), controls (the form controls, in order)}. */
function control(f, common) {
  const opts = (options) => options.map(([v, t]) => h("option", { value: String(v) }, t));
  if (f.type === "select") {
    const input = h("select", common, opts(f.options));
    if (f.value !== undefined) input.value = String(f.value);
    return { input, controls: [input] };
  }
  if (f.type === "bool") return control({ ...f, type: "select", options: [["", f.blank || "default"], ["true", "true"], ["false", "false"]] }, common);
  if (f.type === "json") {
    const input = h("textarea", { ...common, rows: "2", spellcheck: "false", placeholder: f.placeholder });
    if (f.value !== undefined) input.value = f.value;
    return { input, controls: [input] };
  }
  if (f.type === "checkbox") {
    const input = h("input", { ...common, type: "checkbox", checked: Boolean(f.value) });
    return { input, controls: [input] };
  }
  if (f.type === "checks") {
    const checked = new Set((f.value || []).map(String));
    const boxes = f.options.map(([v], i) => h("input", { type: "checkbox", id: `${common.id}-${i}`, name: f.name, value: String(v), checked: checked.has(String(v)) }));
    return { input: f.options.map(([, t], i) => h("span", { class: "check" }, boxes[i], h("label", { for: boxes[i].id }, t))), controls: boxes };
  }
  if (f.type === "selects") {
    const sels = f.parts.map((p, i) => {
      const s = h("select", { id: i ? `${common.id}-${i}` : common.id, name: `${f.name}.${i}`, "aria-label": p.label }, opts(p.options));
      if (p.value !== undefined) s.value = String(p.value);
      return s;
    });
    return { input: f.parts.map((p, i) => h("span", { class: "field-inline" }, h("label", { for: sels[i].id }, p.label), sels[i])), controls: sels };
  }
  const numeric = f.type === "int" || f.type === "number";
  const input = h("input", {
    ...common,
    type: numeric ? "number" : "text",
    step: f.type === "int" ? "1" : numeric ? f.step || "any" : undefined,
    min: f.min,
    max: f.max,
    value: f.value,
    placeholder: f.placeholder,
    inputmode: f.type === "int" ? "numeric" : f.type === "number" || f.type === "list" ? "decimal" : undefined,
    autocomplete: "off",
    spellcheck: numeric ? undefined : "false",
  });
  return { input, controls: [input] };
}

/** [value, problem]: value undefined when the field is left empty (the server's default applies). */
function readField(f, controls) {
  if (f.type === "checkbox") return [controls[0].checked, ""];
  if (f.type === "checks") {
    const vals = controls.filter((c) => c.checked).map((c) => c.value);
    return vals.length || !f.required ? [vals.length ? vals : undefined, ""] : [undefined, "pick at least one"];
  }
  if (f.type === "selects") return [controls.map((c) => c.value), ""];
  const raw = controls[0].value.trim();
  if (raw === "") return [undefined, f.required ? "required" : ""];
  if (f.type === "bool") return [raw === "true", ""];
  if (f.type === "select") return [f.number ? Number(raw) : raw, ""];
  if (f.type === "json") {
    try {
      const v = JSON.parse(raw);
      if (v && typeof v === "object" && !Array.isArray(v)) return [v, ""];
    } catch {
      /* told below */
    }
    return [undefined, `enter a JSON object${f.placeholder ? `, e.g. ${f.placeholder}` : ""}`];
  }
  if (f.type === "list") {
    const items = raw.split(/[\s,]+/).filter(Boolean).map(Number);
    const whole = f.item === "int";
    if (items.some((v) => !Number.isFinite(v) || (whole && !Number.isInteger(v)))) return [undefined, `enter ${whole ? "whole numbers" : "numbers"} separated by commas`];
    return [items, ""];
  }
  if (f.type === "int" || f.type === "number") {
    const v = Number(raw);
    if (!Number.isFinite(v) || (f.type === "int" && !Number.isInteger(v))) return [undefined, f.type === "int" ? "enter a whole number" : "enter a number"];
    return [v, ""];
  }
  return [raw, ""];
}
