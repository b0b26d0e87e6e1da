// A small declarative form: fields with labels, hints and per-field errors from the API's 422 detail.

import { h, clear, errorBox } from "../ui.js";

/**
 * fields: [{name, label, type: "text"|"int"|"number"|"checkbox"|"select", value, placeholder, hint, min, max, step, options, required}]
 * onSubmit(body) -> Promise; errors are placed beside their fields.
 */
export function simpleForm({ id, fields, submitLabel, onSubmit, className = "" }) {
  const form = h("form", { class: `simple-form ${className}`, id, novalidate: true });
  const map = new Map();
  const grid = h("div", { class: "form-grid" });
  for (const f of fields) {
    const fid = `${id}-${f.name}`;
    const hintId = `${fid}-hint`;
    const errId = `${fid}-error`;
    let input;
    const common = { id: fid, name: f.name, "aria-describedby": `${hintId} ${errId}`, required: f.required };
    if (f.type === "select") {
      input = h("select", common, f.options.map(([v, t]) => h("option", { value: String(v) }, t)));
      if (f.value !== undefined) input.value = String(f.value);
    } else if (f.type === "checkbox") {
      input = h("input", { ...common, type: "checkbox", checked: Boolean(f.value) });
    } else {
      input = h("input", {
        ...common,
        type: f.type === "text" ? "text" : "number",
        step: f.type === "int" ? "1" : f.step || "any",
        min: f.min,
        max: f.max,
        value: f.value,
        placeholder: f.placeholder,
        inputmode: f.type === "int" ? "numeric" : f.type === "number" ? "decimal" : undefined,
        autocomplete: "off",
        spellcheck: f.type === "text" ? "false" : undefined,
      });
    }
    const err = h("p", { class: "field-error", id: errId, "data-error-for": f.name });
    const wrap =
      f.type === "checkbox"
        ? h("div", { class: `field field-check ${f.wide ? "wide" : ""}` }, h("div", { class: "check" }, input, h("label", { for: fid }, f.label)), h("p", { class: "hint", id: hintId }, f.hint || ""), err)
        : h("div", { class: `field ${f.wide ? "wide" : ""}` }, h("label", { for: fid }, f.label), input, h("p", { class: "hint", id: hintId }, f.hint || ""), err);
    input.addEventListener("input", () => setError(f.name, ""));
    map.set(f.name, { f, input, err, wrap });
    grid.append(wrap);
  }
  const formError = h("div", { "aria-live": "assertive" });
  const submit = h("button", { class: "btn btn-primary", type: "submit" }, submitLabel);
  form.append(grid, formError, h("div", { class: "actions" }, submit));

  function setError(name, msg) {
    const m = map.get(name);
    if (!m) return false;
    m.err.textContent = msg || "";
    m.wrap.classList.toggle("has-error", Boolean(msg));
    if (msg) m.input.setAttribute("aria-invalid", "true");
    else m.input.removeAttribute("aria-invalid");
    return true;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(formError);
    const body = {};
    let bad = false;
    for (const [name, { f, input }] of map) {
      setError(name, "");
      if (f.type === "checkbox") {
        body[name] = input.checked;
        continue;
      }
      const raw = input.value.trim();
      if (raw === "") {
        if (f.required) {
          setError(name, "required");
          bad = true;
        }
        continue;
      }
      if (f.type === "int" || f.type === "number") {
        const v = Number(raw);
        if (!Number.isFinite(v) || (f.type === "int" && !Number.isInteger(v))) {
          setError(name, f.type === "int" ? "enter a whole number" : "enter a number");
          bad = true;
          continue;
        }
        body[name] = v;
      } else body[name] = raw;
    }
    if (bad) {
      form.querySelector("[aria-invalid=true]")?.focus();
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
      form.querySelector("[aria-invalid=true]")?.focus();
    } finally {
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
    }
  });
  return { form, setError };
}
