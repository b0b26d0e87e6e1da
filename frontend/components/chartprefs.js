// Chart settings (x axis, points, smoothing, log scale, teacher overlay, hidden series) of one page. They live in
// that page's URL, so a link reproduces the view and a choice on one page does not change another.

import { h, nextId } from "../ui.js";
import { updateQuery } from "../url.js";

const DEFAULTS = { x: "epoch", resolution: "step", smoothing: 0.6, log: false, teacher: true, hidden: [] };
// prefs key -> [query key, parse, format]
const CODEC = {
  x: ["x", (v) => (["epoch", "step", "time"].includes(v) ? v : undefined), String],
  resolution: ["points", (v) => (["step", "epoch"].includes(v) ? v : undefined), String],
  smoothing: ["smooth", (v) => (Number.isFinite(Number(v)) && Number(v) >= 0 && Number(v) < 1 ? Number(v) : undefined), (v) => v.toFixed(2)],
  log: ["log", (v) => v === "1", (v) => (v ? "1" : "0")],
  teacher: ["teacher", (v) => v !== "0", (v) => (v ? "1" : "0")],
  hidden: ["hide", (v) => v.split(",").filter(Boolean), (v) => v.join(",")],
};

/** The page's chart settings: its URL query over the defaults (``pageDefaults`` for this page's own). */
export function loadPrefs(query, pageDefaults = {}) {
  const prefs = { ...DEFAULTS, ...pageDefaults, hidden: [...(pageDefaults.hidden || DEFAULTS.hidden)] };
  for (const [key, [q, parse]] of Object.entries(CODEC)) {
    if (!query?.has(q)) continue;
    const v = parse(query.get(q));
    if (v !== undefined) prefs[key] = v;
  }
  prefs.defaults = { ...prefs, hidden: [...prefs.hidden] };
  return prefs;
}

/** Writes the settings that differ from the page's defaults into its URL (and drops the others). */
export function savePrefs(prefs) {
  const out = {};
  for (const [key, [q, , format]] of Object.entries(CODEC)) {
    const same = JSON.stringify(prefs[key]) === JSON.stringify(prefs.defaults?.[key]);
    out[q] = same ? "" : format(prefs[key]);
  }
  updateQuery(out);
}

export const X_CHOICES = [["epoch", "Epoch"], ["step", "Step"], ["time", "Time"]];

/** A segmented radio group setting prefs[key] to one of choices ([value, text]); saves and calls draw on a change. */
export function prefChoice(prefs, key, legend, choices, draw) {
  const name = nextId(key);
  return h("fieldset", { class: "segmented" }, h("legend", {}, legend), choices.map(([value, text]) => {
    const id = nextId(`${key}-r`);
    return [
      h("input", { type: "radio", name, id, value, checked: prefs[key] === value, onchange: () => {
        prefs[key] = value;
        savePrefs(prefs);
        draw();
      } }),
      h("label", { for: id }, text),
    ];
  }));
}

/** [smoothing slider, log-scale checkbox] of the Job and Compare charts (both edit ``prefs``; the caller hides the
 * slider when nothing drawn is smoothed). */
export function chartScaleControls(prefs, { draw, drawSoon, save }) {
  const smoothId = nextId("smooth");
  const smoothOut = h("output", { for: smoothId }, prefs.smoothing.toFixed(2));
  const smoothInput = h("input", {
    type: "range", id: smoothId, min: "0", max: "0.99", step: "0.01", value: String(prefs.smoothing),
    oninput: (e) => {
      prefs.smoothing = Number(e.target.value);
      smoothOut.textContent = prefs.smoothing.toFixed(2);
      drawSoon();
    },
    onchange: () => save(prefs),
  });
  const logId = nextId("log");
  return [
    h("div", { class: "field field-inline slider", "data-testid": "smoothing" }, h("label", { for: smoothId }, "Smoothing"), smoothInput, smoothOut),
    h("div", { class: "check" }, h("input", { type: "checkbox", id: logId, checked: prefs.log, onchange: (e) => {
      prefs.log = e.target.checked;
      save(prefs);
      draw();
    } }), h("label", { for: logId }, "Log scale")),
  ];
}
