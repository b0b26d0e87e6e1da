// Job helpers shared by the views: lineage, ETA text, the key accuracy metric, the demo button.

import * as api from "../api.js";
import { h, nextId, fmtDuration, fmtNumber, fmtPct, toast, backboneOf, widthOf } from "../ui.js";

/** Accuracy-like metrics (higher is better, drawn as percentages). */
export const isAccuracy = (name) => /acc|top_?\d|agreement/.test(name || "");

export const KINDS = ["pretrain", "distill", "finetune", "evaluate"];
export const KIND_LABEL = { pretrain: "Teacher (PCL)", distill: "Student (KD)", finetune: "Fine-tune", evaluate: "Evaluate", synthesize: "Synthetic data" };
export const STATUSES = ["waiting", "queued", "running", "completed", "failed", "cancelled"];

export function teacherId(job) {
  if (!job) return null;
  const t = job.teacher_job_id ?? job.teacher_id ?? job.teacher?.id ?? job.lineage?.teacher?.id ?? job.lineage?.teacher_job_id;
  if (t !== undefined && t !== null) return t;
  return job.kind === "distill" ? job.parent_id ?? job.request?.teacher_job_id ?? null : null;
}

export function sourceId(job) {
  if (!job) return null;
  const s = job.source_job_id ?? job.source?.id ?? job.lineage?.source?.id ?? job.lineage?.source_job_id;
  if (s !== undefined && s !== null) return s;
  return job.kind === "finetune" || job.kind === "evaluate" ? job.parent_id ?? job.request?.source_job_id ?? null : null;
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
  const total = job.total_epochs ?? job.config?.optim?.epochs ?? job.request?.epochs;
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
    ["test accuracy", r.test_accuracy ?? r.video_top1 ?? r.test?.video_top1 ?? r.accuracy],
    ["retrieval top-1", r.retrieval?.top1 ?? r.retrieval_top1],
    ["val pretext acc", r.val_pretext_acc],
  ];
  const found = candidates.find(([, v]) => typeof v === "number");
  return found ? { label: found[0], value: found[1], text: fmtPct(found[1]) } : null;
}

export function demoButton({ className = "btn", onDone } = {}) {
  const btn = h(
    "button",
    {
      class: className,
      type: "button",
      title: "A worker renders a small synthetic set, then trains teacher → student → fine-tune",
      onclick: async () => {
        btn.disabled = true;
        btn.setAttribute("aria-busy", "true");
        const label = btn.textContent;
        btn.textContent = "Starting demo…";
        try {
          const res = await api.runDemo({});
          const chain = [res.synthesize, ...api.rows(res.jobs ?? [])].filter(Boolean);
          const ids = chain.map((j) => j.id ?? j).filter((x) => x !== undefined);
          toast(ids.length ? `Demo queued: data #${ids[0]} → jobs ${ids.slice(1).map((i) => `#${i}`).join(" → ")}.` : "Demo queued.", { kind: "success" });
          onDone && onDone(res);
        } catch (err) {
          toast(`Demo failed: ${err.message}`, { kind: "error", timeout: 10000 });
        } finally {
          btn.disabled = false;
          btn.removeAttribute("aria-busy");
          btn.textContent = label;
        }
      },
    },
    "Run demo",
  );
  return btn;
}

/** Job action buttons (cancel, resume, retry) wired to the API; onChange(job) after a success. */
export function actionButtons(job, { onChange, small = false } = {}) {
  const cls = small ? "btn btn-small" : "btn";
  const mk = (label, fn, extra = "", title = "") =>
    h(
      "button",
      {
        class: `${cls} ${extra}`,
        type: "button",
        title: title || undefined,
        "data-action": label.toLowerCase(),
        "aria-label": `${label} job #${job.id}`,
        onclick: async (e) => {
          const b = e.currentTarget;
          b.disabled = true;
          try {
            const res = await fn(job.id);
            toast(`${label}: job #${job.id} ${res && res.status ? `is ${res.status}` : "requested"}.`, { kind: "success" });
            onChange && onChange(res);
          } catch (err) {
            toast(`${label} failed: ${err.message}`, { kind: "error", timeout: 8000 });
          } finally {
            b.disabled = false;
          }
        },
      },
      label,
    );
  const out = [];
  if (["queued", "running", "waiting"].includes(job.status) && !job.cancel_requested) out.push(mk("Cancel", api.cancelJob, "btn-danger"));
  if (job.status === "failed" || job.status === "cancelled") {
    out.push(mk("Resume", api.resumeJob, "", "Continue from the last checkpoint"));
    out.push(mk("Retry", api.retryJob, "", "Start again as a new job with the same config"));
  }
  return out;
}

/** The smoothing slider and log-scale checkbox shared by the Job and Compare charts (both edit ``prefs``). */
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
    h("div", { class: "field field-inline slider" }, h("label", { for: smoothId }, "Smoothing"), smoothInput, smoothOut),
    h("div", { class: "check" }, h("input", { type: "checkbox", id: logId, checked: prefs.log, onchange: (e) => {
      prefs.log = e.target.checked;
      save(prefs);
      draw();
    } }), h("label", { for: logId }, "Log scale")),
  ];
}
