// #/datasets and #/datasets/:id — registered sets, counts per class, scan problems; register or generate one.

import * as api from "../api.js";
import { h, clear, errorBox, emptyState, barList, fmtAgo, fmtNumber, toast, kv } from "../ui.js";
import { simpleForm } from "../components/form.js";
import { jobLink } from "../components/jobinfo.js";
import { demoButton } from "../components/actions.js";

export async function render(root, { params, setTitle }) {
  const selectedId = params.id ? Number(params.id) : null;
  root.append(h("div", { class: "page-head" },
    h("div", {}, h("h1", {}, "Datasets"), h("p", { class: "lede" }, "Folders of action videos the jobs train on.")),
  ));

  const listEl = h("div", { class: "dataset-list" });
  const detailEl = h("section", { class: "panel dataset-detail", "aria-live": "polite" });
  const forms = h("div", { class: "two-col" });
  root.append(h("div", { class: "datasets-layout" }, h("div", {}, listEl), detailEl), forms);

  // ---------- register / generate ----------
  const reg = simpleForm({
    id: "register-form",
    submitLabel: "Register folder",
    fields: [
      { name: "path", label: "Folder on the server", type: "text", required: true, wide: true, placeholder: "ucf101 or /data/videos/ucf101", hint: "UCF101 layout (a folder per class, optional split files) under one of the server's data roots" },
      { name: "name", label: "Name", type: "text", placeholder: "optional" },
      { name: "split", label: "Split", type: "select", value: 1, options: [[1, "1"], [2, "2"], [3, "3"]] },
      { name: "subset", label: "Training subset (%)", type: "number", value: 100, min: 0, max: 100, hint: "class-balanced share of the training list" },
      { name: "min_frames", label: "Min frames", type: "int", value: 16, hint: "shorter videos are reported" },
      { name: "scan", label: "Open every video and report problems", type: "checkbox", value: true, wide: true },
    ],
    onSubmit: async (body) => {
      body.split = Number(body.split);
      const d = await api.createDataset(body);
      toast(`Dataset #${d.id} registered.`, { kind: "success" });
      window.location.hash = `#/datasets/${d.id}`;
      await refresh();
    },
  });
  const syn = simpleForm({
    id: "synthetic-form",
    submitLabel: "Generate",
    fields: [
      { name: "name", label: "Name", type: "text", placeholder: "optional (letters, digits, _ . -)" },
      { name: "classes", label: "Classes", type: "int", value: 6, min: 2, max: 50 },
      { name: "videos_per_class", label: "Videos per class", type: "int", value: 12, min: 2, max: 200 },
      { name: "frames", label: "Frames per video", type: "int", value: 48, min: 8, max: 600 },
      { name: "width", label: "Width (px)", type: "int", value: 64, min: 16, max: 640 },
      { name: "height", label: "Height (px)", type: "int", value: 48, min: 16, max: 480 },
      { name: "seed", label: "Seed", type: "int", value: 0 },
    ],
    onSubmit: async (body) => {
      const { dataset: d, job } = await api.createSyntheticDataset(body);
      toast(`Dataset #${d.id} is being rendered by a worker (job #${job.id}).`, { kind: "success" });
      window.location.hash = `#/datasets/${d.id}`;
      await refresh();
    },
  });
  forms.append(
    h("section", { class: "panel" }, h("h2", {}, "Register a folder"), reg.form),
    h("section", { class: "panel" }, h("h2", {}, "Generate a synthetic set"), h("p", { class: "hint" }, "Moving shapes, one motion per class: enough to watch a teacher and student converge on a CPU in minutes."), syn.form),
  );

  let datasets = [];
  async function refresh() {
    try {
      datasets = api.rows(await api.listDatasets());
    } catch (err) {
      clear(listEl, errorBox(err, { retry: refresh }));
      return;
    }
    if (!datasets.length) {
      clear(listEl, emptyState("No datasets yet.", "Generate a synthetic set below, register a folder of videos, or run the demo.", demoButton({ className: "btn btn-primary", onDone: refresh })));
      clear(detailEl, h("p", { class: "muted" }, "Select a dataset to see its classes."));
      return;
    }
    clear(listEl, h("ul", { class: "list", "aria-label": "Datasets" }, datasets.map((d) =>
      h("li", {}, h("a", { href: `#/datasets/${d.id}`, class: d.id === selectedId ? "list-item active" : "list-item", "aria-current": d.id === selectedId ? "true" : undefined },
        h("span", { class: "list-title" }, `#${d.id} ${d.name || d.path}`, d.synthetic ? h("span", { class: "tag" }, "synthetic") : null,
          d.status && d.status !== "ready" ? h("span", { class: `tag status-${d.status}` }, d.status) : null),
        h("span", { class: "sub" }, `${(d.classes || []).length} classes · ${totalVideos(d)} videos${(d.problems || []).length ? ` · ${d.problems.length} problem${d.problems.length > 1 ? "s" : ""}` : ""}`))))));
    const show = selectedId ?? datasets[datasets.length - 1].id;
    await showDetail(show);
  }

  let poll = null;
  async function showDetail(id) {
    clearTimeout(poll);
    let d;
    let job = null;
    try {
      d = await api.getDataset(id);
      if (d.job_id != null) job = await api.getJob(d.job_id);
    } catch (err) {
      clear(detailEl, errorBox(err));
      return;
    }
    detailEl.dataset.status = d.status || "ready";
    if (d.status === "pending" && root.isConnected) {
      // the worker renders it: follow the job's progress, then show the scanned counts
      poll = setTimeout(async () => {
        if (!root.isConnected) return;
        const before = d.status;
        await showDetail(id);
        if (detailEl.dataset.status !== before) await refresh();
      }, 1500);
    }
    if (selectedId) setTitle(d.name || `Dataset #${id}`);
    const perClass = countsPerClass(d);
    const splits = Object.keys(perClass[0]?.splits || {});
    const problems = d.problems || [];
    clear(
      detailEl,
      h("div", { class: "panel-head" }, h("h2", {}, `#${d.id} ${d.name || ""}`), h("a", { class: "btn btn-primary btn-small", href: `#/jobs/new?kind=pretrain&dataset_id=${d.id}` }, "Train a teacher on it")),
      kv([
        ["Path", h("code", {}, d.path)],
        ["Split", d.split],
        ["Subset", d.subset !== undefined ? `${fmtNumber(d.subset)}${d.subset > 1 ? "%" : ""}` : undefined],
        ["Classes", (d.classes || []).length],
        ["Videos", totalVideos(d)],
        ["Registered", fmtAgo(d.created_at)],
        job ? ["Generated by", h("span", { "data-testid": "dataset-job" }, jobLink(job.id, `job #${job.id}`), ` · ${job.status}`,
          job.status === "running" || job.status === "queued" ? ` · ${Math.round((job.progress || 0) * 100)}%` : "",
          job.error ? ` · ${job.error}` : "")] : undefined,
      ].filter(Boolean)),
      d.status === "pending"
        ? h("div", { class: "progress", role: "progressbar", "aria-label": "Rendering", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round((job?.progress || 0) * 100)) },
            h("span", { class: "progress-fill", style: { width: `${Math.round((job?.progress || 0) * 100)}%` } }))
        : null,
      h("h3", {}, "Videos per class"),
      perClass.length
        ? splits.length > 1
          ? classTable(perClass, splits)
          : barList(perClass.map((c) => ({ label: c.label, value: c.total })), { format: (v) => String(v), className: "class-bars" })
        : h("p", { class: "muted" }, "No counts recorded."),
      h("h3", {}, `Scan problems (${problems.length})`),
      problems.length
        ? h("ul", { class: "problems" }, problems.slice(0, 200).map((p) => h("li", {}, typeof p === "string" ? p : [h("code", {}, p.path || p.video || p.file || ""), " ", p.reason || p.problem || p.error || p.message || JSON.stringify(p)])))
        : h("p", { class: "good" }, "No problems found."),
    );
  }

  await refresh();
}

/** counts may be {class: n}, {split: {class: n}} or {class: {split: n}}. */
function countsPerClass(d) {
  const c = d.counts || {};
  const vals = Object.values(c);
  if (!vals.length) return [];
  if (vals.every((v) => typeof v === "number")) return Object.entries(c).map(([label, n]) => ({ label, total: n, splits: {} }));
  const classes = new Set(d.classes || []);
  const keys = Object.keys(c);
  const bySplit = keys.every((k) => !classes.has(k)) && vals.every((v) => v && typeof v === "object");
  const out = new Map();
  if (bySplit) {
    for (const [split, per] of Object.entries(c)) {
      if (!per || typeof per !== "object") continue;
      for (const [label, n] of Object.entries(per)) {
        if (typeof n !== "number") continue;
        const row = out.get(label) || { label, total: 0, splits: {} };
        row.splits[split] = n;
        row.total += n;
        out.set(label, row);
      }
    }
  } else {
    for (const [label, per] of Object.entries(c)) {
      const row = { label, total: 0, splits: {} };
      for (const [split, n] of Object.entries(per || {})) if (typeof n === "number") {
        row.splits[split] = n;
        row.total += n;
      }
      out.set(label, row);
    }
  }
  return [...out.values()];
}

function totalVideos(d) {
  const rows = countsPerClass(d);
  return rows.length ? rows.reduce((n, r) => n + r.total, 0) : d.videos ?? "—";
}

function classTable(rows, splits) {
  const max = Math.max(1, ...rows.map((r) => r.total));
  return h("table", { class: "table compact" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Class"), splits.map((s) => h("th", { scope: "col", class: "num" }, s)), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Share")))),
    h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, r.label), splits.map((s) => h("td", { class: "num" }, String(r.splits[s] ?? 0))),
      h("td", { class: "bar-cell", "aria-hidden": "true" }, h("span", { class: "bar-track" }, h("span", { class: "bar-fill", style: { width: `${(r.total / max) * 100}%` } })))))));
}
