// #/jobs/new?kind=distill&teacher_job_id=3 — one form for pretrain, distill, fine-tune and evaluate jobs.
// Fields are JobCreate's (POST /jobs); empty fields are not sent, so the server's defaults (shown as
// placeholders) apply. Constraints and descriptions come from the server's OpenAPI schema when it has them.

import * as api from "../api.js";
import { h, clear, toast, errorBox } from "../ui.js";
import { KINDS, KIND_LABEL, jobLabel, demoButton } from "./common.js";

export const BACKBONES = ["r3d", "c3d", "r21d", "r3d18", "r21d18", "r3d_small"]; // ml/catalog.py's names

// The defaults per kind come from the server (GET /jobs/defaults, resolved from ml/config.py) and are shown as
// placeholders: an empty field keeps them.
let DEFAULTS = {};
let CLIP_TEXT = {};

/** {kind: {field: shown default}} and the clip presets' text, from GET /jobs/defaults. */
export function shownDefaults(payload) {
  const out = {};
  for (const [name, value] of Object.entries(payload.values)) {
    if (payload.inherited.includes(name)) out[name] = "source's";
    else if (value !== null && value !== undefined) out[name] = typeof value === "boolean" ? String(value) : value;
  }
  return out;
}

async function loadDefaults() {
  const all = await Promise.all(KINDS.map((k) => api.jobDefaults(k)));
  DEFAULTS = Object.fromEntries(all.map((d) => [d.kind, shownDefaults(d)]));
  CLIP_TEXT = Object.fromEntries(Object.entries(all[0].clips).map(([name, c]) => [name, `${c.frames} frames · ${c.crop} px`]));
  return all[0].clips;
}
// the schema's descriptions of these speak to API clients; the form has its own words
const OWN_WORDS = new Set(["dataset_id", "backbone", "width", "lr", "temperature", "alpha", "teacher_job_id", "source_job_id", "clip"]);

// name, label, type, kinds (null: all), section, extra
const FIELDS = [
  ["dataset_id", "Dataset", "dataset", null, "main", { required: true }],
  ["name", "Name", "text", null, "main", { placeholder: "optional, e.g. r3d teacher" }],
  ["teacher_job_id", "Teacher", "teacher", ["distill"], "main", { hint: "a completed teacher (pretrain) or student; leave empty with α = 0 for the no-KD baseline" }],
  ["source_job_id", "Source checkpoint", "source", ["finetune", "evaluate"], "main", { hint: "the pretrained backbone to start from; empty trains from scratch" }],
  ["backbone", "Backbone", "select:backbone", null, "model"],
  ["width", "Width", "number", null, "model", { step: "any", hint: "channel multiplier; 0.125 runs on a CPU" }],
  ["clip", "Clip", "select:clip", null, "model", { hint: "frames per clip and square crop; tiny runs on a CPU" }],
  ["frames", "Frames", "int", null, "model"],
  ["crop", "Crop (px)", "int", null, "model"],
  ["alpha", "α (KD weight)", "number", ["distill"], "kd", { step: "any", hint: "0 gives the no-KD baseline" }],
  ["temperature", "Temperature T", "number", ["distill"], "kd", { step: "any" }],
  ["distill_target", "Distil", "select:distill_target", ["distill"], "kd"],
  ["contrast_weight", "Contrastive weight", "number", ["pretrain", "distill"], "loss", { step: "any", hint: "w_con in CE + w_con·NCE" }],
  ["nce_negatives", "NCE negatives", "int", ["pretrain", "distill"], "loss"],
  ["nce_temperature", "NCE temperature", "number", ["pretrain", "distill"], "loss", { step: "any" }],
  ["mode", "Mode", "select:mode", ["finetune"], "optim"],
  ["epochs", "Epochs", "int", ["pretrain", "distill", "finetune"], "optim"],
  ["batch_size", "Batch size", "int", ["pretrain", "distill", "finetune"], "optim"],
  ["lr", "Learning rate", "number", ["pretrain", "distill", "finetune"], "optim", { step: "any" }],
  ["scheduler", "LR schedule", "select:scheduler", ["pretrain", "distill", "finetune"], "optim"],
  ["max_steps_per_epoch", "Max steps / epoch", "int", null, "optim", { hint: "cap for quick runs" }],
  ["dropout", "Dropout", "number", ["finetune"], "optim", { step: "any" }],
  ["val_videos", "Validation videos", "int", ["finetune"], "optim"],
  ["momentum", "Momentum", "number", ["pretrain", "distill", "finetune"], "advanced", { step: "any" }],
  ["weight_decay", "Weight decay", "number", ["pretrain", "distill", "finetune"], "advanced", { step: "any" }],
  ["modality", "Input", "select:modality", null, "advanced", { hint: "res: residual frames (PCL default)" }],
  ["retrieval", "Retrieval at the end", "select:bool", null, "advanced"],
  ["test_clips", "Test clips / video", "int", null, "advanced"],
  ["retrieval_every", "Retrieval interval", "int", ["pretrain", "distill"], "advanced", { hint: "epochs between retrieval evaluations; 1 draws a convergence curve, 0 only at the end" }],
  ["data_fraction", "Data fraction", "number", ["pretrain", "distill", "finetune"], "advanced", { step: "any", hint: "class-balanced share of the training list" }],
  ["seed", "Seed", "int", null, "advanced"],
  ["device", "Device", "text", null, "advanced", { placeholder: "auto" }],
  ["data_workers", "Data loader workers", "int", null, "advanced"],
  ["max_attempts", "Max attempts", "int", null, "advanced"],
  ["overrides", "Overrides (JSON)", "json", null, "advanced", { placeholder: '{"pretext.interval": 4}', hint: "dotted ml-config paths" }],
];

const SECTIONS = [
  ["main", "What"],
  ["model", "Model and clip"],
  ["kd", "Distillation"],
  ["loss", "PCL loss"],
  ["optim", "Optimisation"],
  ["advanced", "Advanced"],
];

export const ENUMS = {
  backbone: BACKBONES,
  clip: ["default", "tiny"],
  distill_target: ["pretext", "contrastive", "both"],
  mode: ["full", "linear"],
  scheduler: ["plateau", "cosine", "none"],
  modality: ["res", "rgb"],
  bool: ["true", "false"],
};

const KIND_HELP = {
  pretrain: "Self-supervised PCL pretraining of a teacher on the dataset's videos.",
  distill: "Train a student (any backbone) with PCL plus knowledge distillation from a finished teacher.",
  finetune: "Fine-tune a pretrained backbone into an action classifier; finished fine-tunes appear on Predict.",
  evaluate: "Nearest-neighbour retrieval evaluation of a finished job's backbone.",
};

function rangeText(c) {
  const lo = c.min !== undefined ? `${c.minExclusive ? ">" : "≥"} ${c.min}` : "";
  const hi = c.max !== undefined ? `${c.maxExclusive ? "<" : "≤"} ${c.max}` : "";
  if (c.min !== undefined && c.max !== undefined && !c.minExclusive && !c.maxExclusive) return `${c.min} – ${c.max}`;
  return [lo, hi].filter(Boolean).join(", ");
}

let schemaCache = null;
async function jobSchema() {
  if (!schemaCache) {
    schemaCache = api.openapi().then((doc) => doc?.components?.schemas?.JobCreate?.properties || {}).catch(() => ({}));
  }
  return schemaCache;
}

/** min/max/description for a property, looking through Optional's anyOf. */
function constraints(prop) {
  if (!prop) return {};
  const variants = [prop, ...(prop.anyOf || [])];
  const out = { description: prop.description };
  for (const v of variants) {
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

export async function render(root, { query }) {
  let kind = KINDS.includes(query.get("kind")) ? query.get("kind") : "pretrain";
  const [clips, schema, datasets, jobsPayload] = await Promise.all([
    loadDefaults(),
    jobSchema(),
    api.listDatasets().then(api.rows).catch(() => []),
    api.listJobs({ status: "completed", limit: 200 }).catch(() => ({ data: [] })),
  ]);
  const finished = api.rows(jobsPayload);
  const teachers = finished.filter((j) => j.kind === "pretrain" || j.kind === "distill");
  const sources = (k) => finished.filter((j) => (k === "evaluate" ? j.kind !== "evaluate" : j.kind === "pretrain" || j.kind === "distill"));

  root.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/jobs" }, "Jobs"), h("span", { "aria-hidden": "true" }, " / "), "New job"),
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "New job"), h("p", { class: "lede" }, "Empty fields keep the defaults shown in grey."))),
  );

  if (!datasets.length) {
    root.append(
      h("div", { class: "empty" },
        h("p", { class: "empty-title" }, "Register a dataset first."),
        h("p", {}, "Jobs train on a registered folder of videos. Generate a small synthetic set to try things out, or run the demo."),
        h("div", { class: "actions" }, h("a", { class: "btn btn-primary", href: "#/datasets" }, "Datasets"), demoButton())),
    );
    return;
  }

  const form = h("form", { class: "job-form", novalidate: true, "aria-describedby": "form-error" });
  const formError = h("div", { id: "form-error", "aria-live": "assertive" });
  const kindHelp = h("p", { class: "hint", id: "kind-help" });

  // kind selector
  const kindGroup = h("fieldset", { class: "segmented kind-picker", "aria-describedby": "kind-help" }, h("legend", {}, "Kind"),
    KINDS.map((k) => {
      const rid = `kind-${k}`;
      return [h("input", { type: "radio", name: "kind", id: rid, value: k, checked: k === kind, onchange: () => {
        kind = k;
        applyKind();
      } }), h("label", { for: rid }, KIND_LABEL[k])];
    }));
  form.append(kindGroup, kindHelp);

  const inputs = new Map(); // name -> {wrap, input, err, kinds}
  const sectionEls = new Map();
  for (const [sid, title] of SECTIONS) {
    const body = h("div", { class: "form-grid" });
    const el =
      sid === "advanced"
        ? h("details", { class: "form-section" }, h("summary", {}, title), body)
        : h("fieldset", { class: "form-section" }, h("legend", {}, title), body);
    sectionEls.set(sid, { el, body });
    form.append(el);
  }

  for (const [name, label, type, kinds, section, extra = {}] of FIELDS) {
    const prop = schema[name];
    if (Object.keys(schema).length && !prop) continue; // the server does not take this field
    const c = constraints(prop);
    const id = `f-${name}`;
    const errId = `${id}-error`;
    const hintId = `${id}-hint`;
    let input;
    const attrs = { id, name, "aria-describedby": `${hintId} ${errId}` };
    if (type === "dataset") {
      input = h("select", { ...attrs, required: true },
        datasets.map((d) => h("option", { value: String(d.id) }, `#${d.id} ${d.name || d.path}${d.synthetic ? " (synthetic)" : ""}`)));
      const want = query.get("dataset_id");
      input.value = want && datasets.some((d) => String(d.id) === want) ? want : String(datasets[datasets.length - 1].id);
    } else if (type === "teacher" || type === "source") {
      input = h("select", attrs);
    } else if (type.startsWith("select:")) {
      const values = c.enum || ENUMS[type.slice(7)];
      input = h("select", attrs, h("option", { value: "" }, "default"), values.map((v) => h("option", { value: String(v) }, name === "clip" ? `${v} — ${CLIP_TEXT[v] || v}` : String(v))));
    } else if (type === "json") {
      input = h("textarea", { ...attrs, rows: "2", spellcheck: "false", placeholder: extra.placeholder });
    } else {
      input = h("input", {
        ...attrs,
        type: type === "text" ? "text" : "number",
        inputmode: type === "int" ? "numeric" : type === "number" ? "decimal" : undefined,
        step: type === "int" ? "1" : extra.step,
        min: c.min,
        max: c.max,
        placeholder: extra.placeholder,
        autocomplete: "off",
      });
    }
    if (query.get(name) && input.tagName !== "SELECT") input.value = query.get(name);
    const hint = h("p", { class: "hint", id: hintId });
    const err = h("p", { class: "field-error", id: errId, "data-error-for": name });
    const wrap = h("div", { class: `field field-${name}`, "data-field": name }, h("label", { for: id }, label), input, hint, err);
    input.addEventListener("input", () => setError(name, ""));
    sectionEls.get(section).body.append(wrap);
    inputs.set(name, { wrap, input, err, hint, kinds, type, extra, c });
  }

  function fillParentSelect(name, list, emptyText) {
    const f = inputs.get(name);
    if (!f) return;
    const want = f.input.value || query.get(name) || "";
    clear(f.input, h("option", { value: "" }, emptyText), list.map((j) => h("option", { value: String(j.id) }, jobLabel(j))));
    f.input.value = list.some((j) => String(j.id) === want) ? want : list.length && name === "teacher_job_id" ? String(list[0].id) : "";
  }

  function applyKind() {
    kindHelp.textContent = KIND_HELP[kind];
    for (const [, f] of inputs) {
      const on = !f.kinds || f.kinds.includes(kind);
      f.wrap.hidden = !on;
      f.input.disabled = !on;
    }
    applyPlaceholders();
    fillParentSelect("teacher_job_id", teachers, teachers.length ? "none (no-KD baseline, α = 0)" : "no finished teachers yet");
    fillParentSelect("source_job_id", sources(kind), kind === "evaluate" ? "choose a finished job" : "none (train from scratch)");
    for (const { el } of sectionEls.values()) {
      el.hidden = ![...inputs.values()].some((f) => !f.wrap.hidden && f.wrap.closest(".form-section") === el);
    }
    for (const [name] of inputs) setError(name, "");
    clear(formError);
    submit.textContent = { pretrain: "Start pretraining", distill: "Start distillation", finetune: "Start fine-tuning", evaluate: "Start evaluation" }[kind];
  }

  function applyPlaceholders() {
    const defaults = DEFAULTS[kind] || {};
    for (const [name, f] of inputs) {
      let d = defaults[name];
      const clipNow = inputs.get("clip")?.input.value;
      if ((name === "frames" || name === "crop") && clips[clipNow]) d = clips[clipNow][name];
      if (name === "clip" && d === "default") d = CLIP_TEXT.default;
      if (d !== undefined) {
        if (f.input.tagName === "SELECT" && f.input.options[0]?.value === "") f.input.options[0].textContent = `default (${d})`;
        else if (f.input.tagName !== "SELECT" && !f.extra.placeholder) f.input.placeholder = String(d);
      }
      const bits = [f.extra.hint || (OWN_WORDS.has(name) ? null : f.c.description)];
      bits.push(rangeText(f.c));
      f.hint.textContent = bits.filter(Boolean).join(" · ");
    }
  }

  function setError(name, msg) {
    const f = inputs.get(name);
    if (!f) return false;
    f.err.textContent = msg || "";
    f.wrap.classList.toggle("has-error", Boolean(msg));
    if (msg) f.input.setAttribute("aria-invalid", "true");
    else f.input.removeAttribute("aria-invalid");
    return true;
  }

  function body() {
    const out = { kind };
    const local = {};
    for (const [name, f] of inputs) {
      if (f.input.disabled) continue;
      const raw = f.input.value.trim();
      if (raw === "") continue;
      if (f.type === "int" || f.type === "number" || f.type === "dataset" || f.type === "teacher" || f.type === "source") {
        const v = Number(raw);
        if (!Number.isFinite(v)) {
          local[name] = "enter a number";
          continue;
        }
        if (f.type === "int" && !Number.isInteger(v)) local[name] = "enter a whole number";
        out[name] = v;
      } else if (f.type === "json") {
        try {
          const v = JSON.parse(raw);
          if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
          out[name] = v;
        } catch {
          local[name] = 'enter a JSON object, e.g. {"pretext.interval": 4}';
        }
      } else if (f.type === "select:bool") {
        out[name] = raw === "true";
      } else {
        out[name] = raw;
      }
    }
    return { out, local };
  }

  const submit = h("button", { class: "btn btn-primary", type: "submit" }, "Start");
  form.append(formError, h("div", { class: "actions form-actions" }, submit, h("a", { class: "btn btn-ghost", href: "#/jobs" }, "Cancel")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(formError);
    for (const [name] of inputs) setError(name, "");
    const { out, local } = body();
    if (Object.keys(local).length) {
      for (const [n, m] of Object.entries(local)) setError(n, m);
      focusFirstError();
      return;
    }
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    try {
      const job = await api.createJob(out);
      toast(`Job #${job.id} queued.`, { kind: "success" });
      window.location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      const fe = err.fieldErrors;
      const unplaced = [];
      for (const [field, msg] of Object.entries(fe)) {
        const top = field.split(".")[0];
        if (!setError(field, msg) && !setError(top, msg)) unplaced.push(field ? `${field}: ${msg}` : msg);
      }
      if (!Object.keys(fe).length || unplaced.length) {
        clear(formError, errorBox(unplaced.length ? { status: err.status, message: unplaced.join("; ") } : err));
      }
      focusFirstError();
    } finally {
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
    }
  });

  function focusFirstError() {
    const first = form.querySelector("[aria-invalid=true]");
    if (first) {
      first.closest("details")?.setAttribute("open", "");
      first.focus();
    } else formError.querySelector("[role=alert]")?.focus?.();
  }

  root.append(form);
  applyKind();
  // the preset for CPU runs: one click fills the tiny config
  const quick = h("button", { class: "btn btn-small", type: "button", onclick: () => {
    const set = (n, v) => {
      const f = inputs.get(n);
      if (f && !f.input.disabled) f.input.value = String(v);
    };
    set("width", 0.125);
    set("clip", "tiny");
    set("epochs", 2);
    set("batch_size", 4);
    set("max_steps_per_epoch", 5);
    toast("Filled a tiny CPU-sized config.");
  } }, "Tiny CPU preset");
  kindHelp.after(h("p", { class: "preset hint" }, quick, " fills width 0.125, the tiny clip, 2 epochs of at most 5 steps, batch 4."));
  inputs.get("clip")?.input.addEventListener("change", applyPlaceholders);
  return () => {};
}
