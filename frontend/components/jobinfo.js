// Facts about a job shared by the views and components: kind labels, lineage ids, ETA text, the key metric.

import { h, fmtDuration, fmtNumber, fmtPct, backboneOf, widthOf } from "../ui.js";

/** Accuracy-like metrics (higher is better, drawn as percentages). */
export const isAccuracy = (name) => /acc|top_?\d|agreement/.test(name || "");

export const KIND_LABEL = { pretrain: "Teacher (PCL)", distill: "Student (KD)", finetune: "Fine-tune", evaluate: "Evaluate", retrieve: "Retrieval", synthesize: "Synthetic data" };
export const STATUSES = ["waiting", "queued", "running", "completed", "failed", "cancelled"];

/** The teacher of a distill job: its lineage (GET /jobs/{id}) or its parent (list rows carry no lineage). */
export function teacherId(job) {
  if (!job) return null;
  return job.lineage?.teacher?.id ?? (job.kind === "distill" ? job.parent_id ?? null : null);
}

/** The source checkpoint's job of a finetune / evaluate (retrieve) job. */
export function sourceId(job) {
  if (!job) return null;
  return job.lineage?.source?.id ?? (job.kind !== "distill" ? job.parent_id ?? null : null);
}

export function jobLink(id, text) {
  if (id === undefined || id === null) return "—";
  return h("a", { href: `#/jobs/${id}` }, text ?? `#${id}`);
}

export function modelText(job) {
  const w = widthOf(job);
  return `${backboneOf(job)}${w !== undefined && w !== null && Number(w) !== 1 ? ` ×${fmtNumber(Number(w))}` : ""}`;
}

export function alphaOf(job) {
  return job?.alpha ?? job?.request?.alpha ?? job?.config?.distill?.alpha;
}

/** "KD" / "no-KD baseline" for students; "" otherwise. */
export function kdTag(job) {
  if (job?.kind !== "distill") return "";
  const a = alphaOf(job);
  return a === 0 ? "no-KD baseline" : "KD";
}

export function jobLabel(job) {
  if (!job) return "";
  const tag = kdTag(job);
  const model = backboneOf(job) === "—" ? job.name || "" : modelText(job);
  return `#${job.id} ${job.kind}${tag === "no-KD baseline" ? " (no KD)" : ""}${model ? ` · ${model}` : ""}`;
}

/** ETA / queue position / epoch text for a job row or header. */
export function timingText(job) {
  const st = job.status;
  if (st === "queued") {
    const q = job.queue_position;
    return q !== undefined && q !== null ? (q <= 1 ? "next in queue" : `#${q} in queue`) : "queued";
  }
  if (st === "waiting") return job.after_id ? `after #${job.after_id}` : "waiting for its predecessor";
  if (st === "running") {
    const eta = job.eta_s;
    return eta !== undefined && eta !== null ? `ETA ${fmtDuration(eta)}` : "estimating…";
  }
  return "";
}

export function epochText(job) {
  const total = job.total_epochs ?? job.config?.optim?.epochs;
  const epoch = job.epoch ?? 0;
  return total ? `epoch ${epoch}/${total}` : epoch ? `epoch ${epoch}` : "";
}

/** Which accuracy a run is judged by, in order of preference, and how to read it from metrics/results. */
export const KEY_METRICS = [
  "epoch/retrieval_top1",
  "retrieval_top1",
  "epoch/val_acc",
  "epoch/val_pretext_acc",
  "epoch/pretext_acc",
  "pretext_acc",
  "epoch/acc",
  "acc",
];

/** For overlays: the first key metric with a curve (two or more points) in every run. */
export function pickCurveMetric(seriesList) {
  const ok = (name, min) => seriesList.length && seriesList.every((s) => s && s[name] && s[name].length >= min);
  return KEY_METRICS.find((n) => ok(n, 2)) || KEY_METRICS.find((n) => ok(n, 1)) || null;
}

/**
 * The metric a set of runs is judged by: retrieval top-1 when any is a self-supervised run (pretrain / distill),
 * validation accuracy for classifiers, whether or not they have reported it yet; else the first key metric with
 * a curve.
 */
export function headlineMetric(jobs, seriesList) {
  if (jobs.some((j) => j.kind === "pretrain" || j.kind === "distill")) return "epoch/retrieval_top1";
  if (jobs.length && jobs.every((j) => j.kind === "finetune")) {
    const has = (n) => seriesList.some((s) => s?.[n]?.length);
    return ["epoch/val_acc", "epoch/acc"].find(has) || "epoch/val_acc";
  }
  return pickCurveMetric(seriesList);
}

export function pickKeyMetric(...seriesList) {
  for (const name of KEY_METRICS) {
    if (seriesList.every((s) => s && s[name] && s[name].length)) return name;
  }
  for (const name of KEY_METRICS) if (seriesList[0] && seriesList[0][name] && seriesList[0][name].length) return name;
  return null;
}

export function lastValue(series, name) {
  const pts = series && series[name];
  return pts && pts.length ? pts[pts.length - 1].value : undefined;
}

/** Headline number from results (test accuracy, retrieval top-1), for tables. */
export function headline(job) {
  const r = job?.results || {};
  const candidates = [
    ["test accuracy", r.test?.video_top1],
    ["retrieval top-1", r.retrieval?.top1],
    ["val pretext acc", r.val_pretext_acc],
  ];
  const found = candidates.find(([, v]) => typeof v === "number");
  return found ? { label: found[0], value: found[1], text: fmtPct(found[1]) } : null;
}

const COUNT_ORDER = ["completed", "running", "queued", "waiting", "failed", "cancelled"];

/** "2 completed · 1 running" from an experiment's job counts. */
export function countsText(counts) {
  return COUNT_ORDER.filter((s) => counts?.[s]).map((s) => `${counts[s]} ${s}`).join(" · ") || "no jobs";
}

/** A metric value in words: accuracies (fractions) as percentages, anything else as a number. */
export function fmtMetric(name, v) {
  if (v === undefined) return "—";
  return /acc|top|agreement/.test(name) && v <= 1 ? fmtPct(v) : fmtNumber(v);
}

/** A difference of two values of a metric: accuracies in percentage points ("+3.1 pts"), others as numbers. */
export function fmtGap(name, d) {
  const sign = d >= 0 ? "+" : "−";
  return isAccuracy(name) && Math.abs(d) <= 1 ? `${sign}${(Math.abs(d) * 100).toFixed(1)} pts` : `${sign}${fmtNumber(Math.abs(d))}`;
}
