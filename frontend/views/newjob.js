// #/jobs/new?kind=distill&teacher_job_id=3 — one form for every job kind POST /jobs takes.
// The kinds, fields, types, ranges and choices come from the server's OpenAPI schema, the defaults per kind from
// GET /jobs/defaults (shown in grey: an empty field keeps them and is not sent). This file only words and groups.

import * as api from "../api.js";
import { h, toast } from "../ui.js";
import { KIND_LABEL, jobLabel } from "../components/jobinfo.js";
import { demoButton } from "../components/actions.js";
import { simpleForm } from "../components/form.js";
import { defaultSettings, jobSpec, nestedBody, schemaField, shownDefaults, showDefaults } from "../components/jobfields.js";

const SECTIONS = [
  ["main", "What"],
  ["model", "Model and clip"],
  ["kd", "Distillation"],
  ["loss", "PCL loss"],
  ["optim", "Optimisation"],
  ["advanced", "Advanced", { collapsed: true }],
];

// The form's words for the fields it knows: label, section, hint ("" for none; absent: the schema's description),
// placeholder. A field the server adds and this table lacks is still shown (in Advanced, under its schema title).
const WORDS = {
  dataset_id: ["Dataset", "main", ""],
  name: ["Name", "main", null, "optional, e.g. r3d teacher"],
  recipe: ["Recipe", "main", "a recipe under configs/ (GET /recipes): the fields left empty take its values"],
  teacher_job_id: ["Teacher", "main", "a completed teacher (pretrain) or student; leave empty with α = 0 for the no-KD baseline"],
  source_job_id: ["Source checkpoint", "main", "the pretrained backbone to start from; empty trains from scratch"],
  backbone: ["Backbone", "model", ""],
  width: ["Width", "model", "channel multiplier; 0.125 runs on a CPU"],
  clip: ["Clip", "model", "frames per clip and square crop; tiny runs on a CPU"],
  frames: ["Frames", "model"],
  crop: ["Crop (px)", "model"],
  alpha: ["α (KD weight)", "kd", "0 gives the no-KD baseline"],
  temperature: ["Temperature T", "kd", ""],
  distill_target: ["Distil", "kd"],
  contrast_weight: ["Contrastive weight", "loss", "w_con in CE + w_con·NCE"],
  nce_negatives: ["NCE negatives", "loss"],
  nce_temperature: ["NCE temperature", "loss"],
  mode: ["Mode", "optim"],
  epochs: ["Epochs", "optim"],
  batch_size: ["Batch size", "optim"],
  lr: ["Learning rate", "optim", ""],
  scheduler: ["LR schedule", "optim"],
  max_steps_per_epoch: ["Max steps / epoch", "optim", "cap for quick runs"],
  dropout: ["Dropout", "optim"],
  val_videos: ["Validation videos", "optim"],
  momentum: ["Momentum", "advanced"],
  weight_decay: ["Weight decay", "advanced"],
  modality: ["Input", "advanced", "res: residual frames (PCL default)"],
  retrieval: ["Retrieval at the end", "advanced"],
  test_clips: ["Test clips / video", "advanced"],
  retrieval_every: ["Retrieval interval", "advanced", "epochs between retrieval evaluations; 1 draws a convergence curve, 0 only at the end"],
  data_fraction: ["Data fraction", "advanced", "class-balanced share of the training list"],
  seed: ["Seed", "advanced"],
  device: ["Device", "advanced", null, "auto"],
  data_workers: ["Data loader workers", "advanced"],
  max_attempts: ["Max attempts", "advanced"],
  after_job_id: ["Run after job", "advanced"],
  overrides: ["Overrides (JSON)", "advanced", "dotted ml-config paths", '{"pretext.interval": 4}'],
};
// request fields every kind takes (the rest apply to a kind when GET /jobs/defaults gives them a value)
const SERVICE = new Set(["dataset_id", "name", "recipe", "tags", "after_job_id", "max_attempts"]);
// which parent a kind names, unless the defaults say (parent_field)
const PARENT = { distill: "teacher_job_id", finetune: "source_job_id", evaluate: "source_job_id", retrieve: "source_job_id" };
const PARENTS = new Set(Object.values(PARENT));

const KIND_HELP = {
  pretrain: "Self-supervised PCL pretraining of a teacher on the dataset's videos.",
  distill: "Train a student (any backbone) with PCL plus knowledge distillation from a finished teacher.",
  finetune: "Fine-tune a pretrained backbone into an action classifier; finished fine-tunes appear on Predict.",
  evaluate: "Nearest-neighbour retrieval evaluation of a finished job's backbone.",
  retrieve: "Nearest-neighbour retrieval evaluation of a finished job's backbone.",
};
const SUBMIT = { pretrain: "Start pretraining", distill: "Start distillation", finetune: "Start fine-tuning", evaluate: "Start evaluation", retrieve: "Start evaluation" };

/** Whether a field belongs in a kind's form. */
function applies(name, kind, payload) {
  if (PARENTS.has(name)) return (payload.parent_field ?? PARENT[kind]) === name;
  return SERVICE.has(name) || name in defaultSettings(payload);
}

export async function render(root, { query }) {
  const [spec, datasets, finishedPage] = await Promise.all([
    jobSpec(),
    api.listDatasets().then((p) => p.data),
    api.listJobs({ status: "completed", limit: 200 }),
  ]);
  const { kinds, props, defaults } = spec;
  let kind = kinds.includes(query.get("kind")) ? query.get("kind") : kinds[0];
  const finished = finishedPage.data;
  const teachers = finished.filter((j) => j.kind === "pretrain" || j.kind === "distill");
  // a fine-tune starts from a pretrained backbone; an evaluation can read any finished job's
  const sources = (k) => finished.filter((j) => (k === "finetune" ? teachers.includes(j) : j.kind !== k));

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

  // WORDS speaks the old flat names (epochs); the request's settings are dotted (optim.epochs): /jobs/defaults maps them
  const legacy = Object.assign({}, ...Object.values(defaults).map((d) => d.legacy || {}));
  const setting = (n) => (n in props ? n : legacy[n]);
  const words = {};
  for (const [n, w] of Object.entries(WORDS)) if (setting(n) in props) words[setting(n)] ??= w;
  const ordered = Object.keys(words).concat(Object.keys(props).filter((n) => n !== "kind" && !(n in words)));
  const fields = ordered.map((name) => {
    const [label, section = "advanced", hint, placeholder] = words[name] || [];
    const f = schemaField(name, props[name], { label, section, hint, placeholder });
    if (name === "dataset_id") {
      const want = query.get("dataset_id");
      return { ...f, c: null, type: "select", number: true, required: true, value: datasets.some((d) => String(d.id) === want) ? want : datasets[datasets.length - 1].id,
        options: datasets.map((d) => [d.id, `#${d.id} ${d.name || d.path}${d.synthetic ? " (synthetic)" : ""}`]) };
    }
    if (PARENTS.has(name)) return { ...f, c: null, type: "select", number: true, options: [] };
    return query.get(name) && f.type !== "select" ? { ...f, value: query.get(name) } : f;
  });

  const kindHelp = h("p", { class: "hint", id: "kind-help" });
  const { form, submit, field, show } = simpleForm({
    id: "job-form",
    className: "job-form",
    fields,
    sections: SECTIONS,
    submitLabel: "Start",
    actions: [h("a", { class: "btn btn-ghost", href: "#/jobs" }, "Cancel")],
    onSubmit: async (body) => {
      const job = await api.createJob({ kind, ...nestedBody(body) });
      toast(`Job #${job.id} queued.`, { kind: "success" });
      window.location.hash = `#/jobs/${job.id}`;
    },
  });
  const kindGroup = h("fieldset", { class: "segmented kind-picker", "aria-describedby": "kind-help" }, h("legend", {}, "Kind"),
    kinds.map((k) => [
      h("input", { type: "radio", name: "kind", id: `kind-${k}`, value: k, checked: k === kind, onchange: () => {
        kind = k;
        applyKind();
      } }),
      h("label", { for: `kind-${k}` }, KIND_LABEL[k] || k),
    ]));
  form.prepend(kindGroup, kindHelp);

  function fillParent(name, list, emptyText) {
    const m = field(name);
    if (!m) return;
    const select = m.controls[0];
    const want = select.value || query.get(name) || "";
    select.replaceChildren(h("option", { value: "" }, emptyText), ...list.map((j) => h("option", { value: String(j.id) }, jobLabel(j))));
    select.value = list.some((j) => String(j.id) === want) ? want : list.length && name === "teacher_job_id" ? String(list[0].id) : "";
  }

  function applyKind() {
    const payload = defaults[kind];
    kindHelp.textContent = KIND_HELP[kind] || "";
    for (const f of fields) show(f.name, applies(f.name, kind, payload));
    applyDefaults();
    fillParent("teacher_job_id", teachers, teachers.length ? "none (no-KD baseline, α = 0)" : "no finished teachers yet");
    fillParent("source_job_id", sources(kind), kind === "finetune" ? "none (train from scratch)" : "choose a finished job");
    submit.textContent = SUBMIT[kind] || `Start ${kind}`;
  }

  /** The kind's defaults in grey. */
  function applyDefaults() {
    const shown = shownDefaults(defaults[kind]);
    showDefaults(fields, field, shown);
  }

  root.append(form);
  applyKind();
  // the preset for CPU runs: one click fills the tiny config
  const quick = h("button", { class: "btn btn-small", type: "button", onclick: () => {
    const tiny = { recipe: "tiny", "model.width": 0.125, "optim.epochs": 2, "optim.batch_size": 4, "runtime.max_steps_per_epoch": 5 };
    for (const [n, v] of Object.entries(tiny)) {
      const c = field(n)?.controls[0];
      if (c && !c.disabled) c.value = String(v);
    }
    applyDefaults();
    toast("Filled a tiny CPU-sized config.");
  } }, "Tiny CPU preset");
  kindHelp.after(h("p", { class: "preset hint" }, quick, " fills recipe tiny (its 8×32² clip), width 0.125, 2 epochs of at most 5 steps, batch 4."));
}
