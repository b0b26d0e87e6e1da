// Plotly wrappers: lazy loading of /vendor/plotly.min.js, smoothing, metric grouping and the chart layout.

import { parseTime } from "./ui.js";

let plotlyPromise = null;

/** Loads the server's Plotly once, on first use (pages without charts never pay for it). */
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyPromise) {
    plotlyPromise = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = "/vendor/plotly.min.js";
      s.async = true;
      s.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("Plotly did not load")));
      s.onerror = () => {
        plotlyPromise = null;
        s.remove();
        reject(new Error("Charts are unavailable: /vendor/plotly.min.js did not load."));
      };
      document.head.append(s);
    });
  }
  return plotlyPromise;
}

// A colour-blind-friendly palette (Okabe–Ito, then Tableau) for series and runs.
// 16 distinct colours (Okabe-Ito first): series of one panel take them in turn, so none share one
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8c6d31", "#4e79a7", "#59a14f", "#b07aa1", "#9c755f", "#76b7b2", "#e15759", "#edc948", "#17becf", "#bcbd22"];
export const TEACHER_COLOR = "#6b7280";

/** TensorBoard-style exponential moving average with debiasing; weight in [0, 1). */
export function smooth(values, weight) {
  if (!weight) return values.slice();
  const out = new Array(values.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

const GROUPS = [
  { id: "loss", title: "Losses", test: (n) => /loss/.test(n) },
  { id: "acc", title: "Accuracy", test: (n) => /acc|top\d|top_\d|agreement|retrieval/.test(n), percent: true },
  { id: "lr", title: "Learning rate", test: (n) => n === "lr" || /(^|_)lr$/.test(n), log: true },
  { id: "speed", title: "Throughput (clips/s)", test: (n) => /per_s|clips_s|throughput|speed/.test(n) },
];

/** Splits metric names into chart panels: [{id, title, names, percent?, log?}] */
export function groupMetrics(names) {
  const panels = GROUPS.map((g) => ({ ...g, names: [] }));
  const other = { id: "other", title: "Other", names: [] };
  for (const n of [...names].sort(metricOrder)) {
    const g = panels.find((p) => p.test(baseName(n)));
    (g || other).names.push(n);
  }
  return [...panels, other].filter((p) => p.names.length);
}

const ORDER = ["loss", "loss_pretext", "loss_nce", "loss_kd", "val_loss", "pretext_acc", "val_pretext_acc", "teacher_agreement", "acc", "val_acc"];
export const EPOCH_PREFIX = "epoch/";
/** The worker stores epoch means as "epoch/<name>" beside the per-step "<name>". */
export const baseName = (n) => (n.startsWith(EPOCH_PREFIX) ? n.slice(EPOCH_PREFIX.length) : n);
function metricOrder(a, b) {
  const ia = ORDER.indexOf(baseName(a)) + (a.startsWith(EPOCH_PREFIX) ? 0.5 : 0);
  const ib = ORDER.indexOf(baseName(b)) + (b.startsWith(EPOCH_PREFIX) ? 0.5 : 0);
  if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  return a.localeCompare(b, undefined, { numeric: true });
}

/** Metric names in reading order: top-1 before top-5 before top-10. */
export const sortNames = (names) => [...names].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));

/** Human labels for the metric names the engine writes; `both` says the step-level twin exists too. */
export function metricLabel(name, { both = false } = {}) {
  if (name.startsWith(EPOCH_PREFIX)) {
    const base = metricLabel(baseName(name));
    return both ? `${base} (epoch mean)` : base;
  }
  const known = {
    loss: "total loss",
    loss_pretext: "pretext CE",
    loss_nce: "contrastive NCE",
    loss_kd: "KD (KL)",
    val_loss: "val loss",
    pretext_acc: "pretext acc",
    val_pretext_acc: "val pretext acc",
    teacher_agreement: "teacher agreement",
    lr: "learning rate",
    clips_per_s: "clips/s",
    acc: "accuracy",
    val_acc: "val accuracy",
  };
  if (known[name]) return known[name];
  const m = /^retrieval_top_?(\d+)$/.exec(name);
  if (m) return `retrieval top-${m[1]}`;
  return name.replace(/_/g, " ");
}

/**
 * The x of each point. mode: "epoch" (fractional when steps_per_epoch is known), "step", or "time"
 * (minutes since t0 ms).
 */
export function xOf(point, mode, { stepsPerEpoch, t0 } = {}) {
  if (mode === "step") return point.step;
  if (mode === "time") {
    const ms = parseTime(point.time);
    return ms === null || !t0 ? null : (ms - t0) / 60000;
  }
  if (stepsPerEpoch && point.step !== undefined && point.step !== null) return point.step / stepsPerEpoch;
  return point.epoch;
}

export const X_TITLES = { epoch: "epoch", step: "step", time: "minutes since start" };

export function earliestTime(seriesList) {
  let t0 = Infinity;
  for (const series of seriesList) {
    for (const pts of Object.values(series || {})) {
      for (const p of pts) {
        const ms = parseTime(p.time);
        if (ms !== null && ms < t0) t0 = ms;
        break; // points come in step order; the first is the earliest
      }
    }
  }
  return Number.isFinite(t0) ? t0 : null;
}

/** The page's colours (style.css: light, or dark when the browser prefers it) for the charts. */
export function theme() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return { text: v("--text", "#111827"), text2: v("--text-2", "#374151"), surface: v("--surface", "#ffffff"), grid: v("--line-soft", "#eef0f3"), border: v("--border-strong", "#d1d5db") };
}

/** The common layout: compact, in the page's colours, hover by x, legend on top. */
export function baseLayout({ title, xTitle, yTitle, log = false, percent = false, height = 300, shapes = [], annotations = [] } = {}) {
  const c = theme();
  return {
    title: title ? { text: title, x: 0, xanchor: "left", font: { size: 14, color: c.text } } : undefined,
    height,
    margin: { l: 56, r: 16, t: title ? 36 : 12, b: 44 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: c.surface,
    font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: c.text2 },
    hovermode: "x unified",
    hoverlabel: { bgcolor: c.surface, bordercolor: c.border, font: { color: c.text }, namelength: -1 }, // names in full
    legend: { orientation: "h", y: -0.22, x: 0, font: { size: 11 } },
    xaxis: { title: { text: xTitle || "", standoff: 6 }, gridcolor: c.grid, zeroline: false, automargin: true },
    yaxis: {
      title: { text: yTitle || "" },
      type: log ? "log" : "linear",
      gridcolor: c.grid,
      zeroline: false,
      tickformat: percent && !log ? ".0%" : undefined,
      automargin: true,
    },
    shapes,
    annotations,
    uirevision: "keep", // keep the user's zoom across live updates
  };
}

export const PLOT_CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
  toImageButtonOptions: { format: "png", scale: 2 },
};

/** A trace's hover line: its whole name and its value formatted (a percentage for accuracies). */
export const hoverTemplate = (name, percent) => `${name.replace(/[<>&]/g, "")}: %{y:${percent ? ".1%" : ".4~g"}}<extra></extra>`;

/**
 * Layout details that depend on the data: whole-number epoch ticks (no 1.2, 1.4), a linear axis and a sensible
 * range for a constant series (a flat learning rate gets no log axis zoomed into float noise).
 */
export function fitAxes(layout, traces, xMode) {
  let lo = Infinity;
  let hi = -Infinity;
  let xMax = 0;
  for (const t of traces) {
    for (const y of t.y || []) if (Number.isFinite(y)) {
      lo = Math.min(lo, y);
      hi = Math.max(hi, y);
    }
    for (const x of t.x || []) if (Number.isFinite(x)) xMax = Math.max(xMax, x);
  }
  if (xMode === "epoch") {
    layout.xaxis.tick0 = 0;
    layout.xaxis.dtick = Math.max(1, Math.ceil(xMax / 10));
  }
  if (!Number.isFinite(lo) || hi - lo > 1e-9 * Math.max(Math.abs(hi), 1e-12)) return;
  layout.yaxis.type = "linear";
  const pad = Math.abs(lo) * 0.5 || 1;
  layout.yaxis.range = [lo - pad, hi + pad];
}

/** Draws or redraws; records the point count on the element for tests and for screen readers. */
export async function render(el, traces, layout) {
  const Plotly = await loadPlotly();
  await Plotly.react(el, traces, layout, PLOT_CONFIG);
  const points = traces.reduce((n, t) => n + (t.meta && t.meta.count ? (t.x || []).length : 0), 0);
  el.dataset.points = String(points);
  return el;
}

export function purge(el) {
  if (window.Plotly && el) window.Plotly.purge(el);
}

/** Horizontal reference line across the plot (teacher's final accuracy). */
export function hline(y, { color = TEACHER_COLOR, label } = {}) {
  return {
    shape: { type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: y, y1: y, line: { color, width: 1.5, dash: "dot" } },
    annotation: label
      ? { xref: "paper", x: 1, xanchor: "right", yref: "y", y, yanchor: "bottom", text: label, showarrow: false, font: { size: 11, color } }
      : null,
  };
}

/** Series -> CSV rows (run,metric,step,epoch,time,value). */
export function seriesToCsv(runs) {
  const lines = ["run,job_id,metric,step,epoch,time,value"];
  const q = (s) => (/[",\n]/.test(String(s)) ? `"${String(s).replace(/"/g, '""')}"` : String(s));
  for (const run of runs) {
    for (const [name, pts] of Object.entries(run.series)) {
      for (const p of pts) lines.push([q(run.label), run.id, q(name), p.step ?? "", p.epoch ?? "", p.time ?? "", p.value].join(","));
    }
  }
  return lines.join("\n") + "\n";
}
