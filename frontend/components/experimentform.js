// The "New experiment" form of #/experiments: POST /experiments from a dataset, the grid and one shared budget.
// Empty budget fields keep the defaults shown in grey (GET /jobs/defaults, as on New job); the grid's own defaults
// and descriptions come from the server's OpenAPI schema. POST /experiments/plan estimates the jobs as it changes.

import * as api from "../api.js";
import { h, clear, toast, debounce } from "../ui.js";
import { simpleForm } from "./form.js";
import { jobSpec, schemaProps, schemaField, shownDefaults, showDefaults } from "./jobfields.js";

const SECTIONS = [
  ["budget", "Pretraining budget (teachers, students and baselines alike)"],
  ["kd", "Distillation (students)"],
  ["finetune", "Fine-tune after every pretraining run"],
  ["runtime", "Runtime"],
];

// ExperimentCreate field -> label, section, and where its default comes from ([job kind, field]; none: the schema's
// own default); the type, range and choices are the schema's
const BUDGET = [
  ["width", "Width", "budget", ["pretrain", "width"], { hint: "channel multiplier; 0.125 runs on a CPU" }],
  ["clip", "Clip", "budget", ["pretrain", "clip"]],
  ["frames", "Frames", "budget", ["pretrain", "frames"]],
  ["crop", "Crop (px)", "budget", ["pretrain", "crop"]],
  ["epochs", "Epochs", "budget", ["pretrain", "epochs"]],
  ["teacher_epochs", "Teacher epochs", "budget", ["pretrain", "epochs"], { hint: "teachers only; students and baselines share Epochs" }],
  ["batch_size", "Batch size", "budget", ["pretrain", "batch_size"]],
  ["lr", "Learning rate", "budget", ["pretrain", "lr"]],
  ["scheduler", "LR schedule", "budget", ["pretrain", "scheduler"]],
  ["max_steps_per_epoch", "Max steps / epoch", "budget", ["pretrain", "max_steps_per_epoch"], { hint: "cap for quick runs" }],
  ["momentum", "Momentum", "budget", ["pretrain", "momentum"]],
  ["weight_decay", "Weight decay", "budget", ["pretrain", "weight_decay"]],
  ["modality", "Input", "budget", ["pretrain", "modality"]],
  ["contrast_weight", "Contrastive weight", "budget", ["pretrain", "contrast_weight"]],
  ["nce_negatives", "NCE negatives", "budget", ["pretrain", "nce_negatives"]],
  ["nce_temperature", "NCE temperature", "budget", ["pretrain", "nce_temperature"]],
  ["alpha", "α (KD weight)", "kd", null, { hint: "baselines train with none" }],
  ["temperature", "Temperature T", "kd", ["distill", "temperature"]],
  ["distill_target", "Distil", "kd", null],
  ["finetune_epochs", "Fine-tune epochs", "finetune", ["finetune", "epochs"]],
  ["finetune_lr", "Fine-tune learning rate", "finetune", ["finetune", "lr"]],
  ["finetune_batch_size", "Fine-tune batch size", "finetune", ["finetune", "batch_size"]],
  ["finetune_mode", "Fine-tune mode", "finetune", ["finetune", "mode"]],
  ["val_videos", "Validation videos", "finetune", ["finetune", "val_videos"]],
  ["test_clips", "Test clips / video", "finetune", ["finetune", "test_clips"]],
  ["device", "Device", "runtime", ["pretrain", "device"]],
  ["data_workers", "Data loader workers", "runtime", ["pretrain", "data_workers"]],
  ["max_attempts", "Max attempts", "runtime", ["pretrain", "max_attempts"]],
];

const FRACTIONS_DEFAULT = { pair: "1", full: "1, 0.5, 0.25, 0.02" };

/** "6 jobs: 1 teacher, 1 KD student, 1 no-KD baseline and 3 fine-tunes" from POST /experiments/plan. */
export function estimateText({ jobs, roles }) {
  const n = (k, one, many = `${one}s`) => `${roles[k] || 0} ${roles[k] === 1 ? one : many}`;
  return `${jobs} jobs: ${n("teacher", "teacher")}, ${n("student", "KD student")}, ${n("baseline", "no-KD baseline")} and ${n("finetune", "fine-tune")}`;
}

async function loadDefaults() {
  const [schema, spec] = await Promise.all([schemaProps("ExperimentCreate"), jobSpec()]);
  const shown = Object.fromEntries(Object.entries(spec.defaults).map(([k, d]) => [k, shownDefaults(d, { flat: true })]));
  return { schema, shown };
}

/** The budget's fields and their defaults in grey ({name: shown}). */
function budgetFields({ schema, shown }) {
  const fields = [];
  const defaults = {};
  for (const [name, label, section, source, extra = {}] of BUDGET) {
    if (!schema[name]) continue; // the server no longer takes it
    fields.push(schemaField(name, schema[name], { label, section, hint: extra.hint }));
    const d = source ? shown[source[0]]?.[source[1]] : schema[name].default;
    if (d !== undefined && d !== null) defaults[name] = d;
  }
  return { fields, defaults };
}

/** The form in a panel; onCreated(experiment) after a successful POST /experiments. */
export async function experimentForm({ onCreated }) {
  const [defaults, datasets] = await Promise.all([loadDefaults(), api.listDatasets().then(api.rows)]);
  if (!datasets.length) {
    return h("div", { class: "empty" }, h("p", { class: "empty-title" }, "Register a dataset first."),
      h("p", {}, "An experiment trains every run on one dataset."), h("a", { class: "btn btn-primary", href: "#/datasets" }, "Datasets"));
  }
  const { schema } = defaults;
  const names = schema.backbones?.items?.enum || [];
  const budget = budgetFields(defaults);
  const choices = names.map((b) => [b, b]);
  const pair = schema.pair?.default || ["r3d", "r3d"];
  const desc = (name) => schema[name]?.description;
  const grid = schema.grid?.default || "pair";
  const { form, field, values } = simpleForm({
    id: "experiment-form",
    submitLabel: "Start experiment",
    sections: SECTIONS,
    fields: [
      { name: "dataset_id", label: "Dataset", type: "select", required: true, value: datasets[0].id,
        options: datasets.map((d) => [d.id, `#${d.id} ${d.name || d.path}${d.synthetic ? " (synthetic)" : ""}`]) },
      { name: "name", label: "Name", type: "text", placeholder: `${grid} grid` },
      { name: "grid", label: "Grid", type: "select", value: grid, options: [["pair", "pair: teacher → KD student + no-KD baseline"], ["full", "full: every teacher × student"]], hint: desc("grid") },
      { name: "pair", label: "Pair", type: "selects", parts: [{ label: "Teacher", options: choices, value: pair[0] }, { label: "Student", options: choices, value: pair[1] }], hint: desc("pair") },
      { name: "backbones", label: "Backbones", type: "checks", options: choices, value: schema.backbones?.default || ["r3d", "c3d", "r21d"], required: true, hint: desc("backbones") },
      { name: "fractions", label: "Data fractions", type: "list", item: "number", hint: desc("fractions") },
      { name: "seeds", label: "Seeds", type: "list", item: "int", placeholder: (schema.seeds?.default || [0]).join(", "), hint: desc("seeds") },
      ...budget.fields,
    ],
    onSubmit: async (body) => {
      const exp = await api.createExperiment(request(body));
      toast(`Experiment #${exp.id} queued: ${exp.jobs} jobs.`, { kind: "success" });
      onCreated && onCreated(exp);
    },
  });

  const estimate = h("p", { class: "estimate", "data-testid": "experiment-estimate", "aria-live": "polite" }, "Estimating…");
  form.querySelector(".actions").before(estimate);
  let inflight = null;
  const refresh = debounce(async () => {
    applyGrid();
    inflight?.abort();
    const ctl = (inflight = new AbortController());
    try {
      const plan = await api.planExperiment(request(values()), { signal: ctl.signal });
      estimate.dataset.jobs = String(plan.jobs);
      clear(estimate, "This submits ", h("strong", {}, estimateText(plan)), ".");
    } catch (err) {
      if (err.name === "AbortError") return;
      delete estimate.dataset.jobs;
      clear(estimate, `No estimate yet: ${err.message}`);
    }
  }, 250);

  function applyGrid() {
    const kind = field("grid").controls[0].value;
    const full = kind === "full";
    field("backbones").wrap.hidden = !full;
    field("name").controls[0].placeholder = `${kind} grid`;
    field("fractions").controls[0].placeholder = FRACTIONS_DEFAULT[full ? "full" : "pair"];
  }

  showDefaults(budget.fields, field, budget.defaults);
  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  applyGrid();
  refresh();
  return form;
}

/** The form's body as an ExperimentCreate. */
function request(body) {
  return { ...body, dataset_id: Number(body.dataset_id) };
}
