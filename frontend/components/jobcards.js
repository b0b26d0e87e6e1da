// The job page's summary cards (progress, ETA, model, worker, key metric, gap to the teacher) and its failure banner.

import * as charts from "../charts.js";
import { h, clear, progressBar, fmtAgo, fmtDuration, parseTime, TERMINAL } from "../ui.js";
import { KIND_LABEL, modelText, kdTag, timingText, epochText, pickKeyMetric, lastValue, fmtMetric, fmtGap } from "./jobinfo.js";

const card = (label, value, sub, extra = {}) =>
  h("div", { class: "card", ...extra }, h("div", { class: "card-label" }, label), h("div", { class: "card-value" }, value), sub ? h("div", { class: "card-sub" }, sub) : null);

function timeCard(job) {
  const elapsed = job.started_at ? ((parseTime(job.finished_at) ?? Date.now()) - parseTime(job.started_at)) / 1000 : null;
  if (job.status === "queued") return card("Queue", job.queue_position ? `#${job.queue_position}` : "queued", timingText(job));
  if (job.status === "running") {
    return card("ETA", job.eta_s !== undefined && job.eta_s !== null ? fmtDuration(job.eta_s) : "…", job.started_at ? `started ${fmtAgo(job.started_at)}` : "");
  }
  return card("Duration", fmtDuration(elapsed), timingText(job) || (job.finished_at ? `finished ${fmtAgo(job.finished_at)}` : ""));
}

/** -> {el, banner, update({job, series, teacher, teacherSeries})} */
export function jobCards() {
  const el = h("div", { class: "cards" });
  const banner = h("div");
  function update({ job, series, teacher, teacherSeries }) {
    const key = pickKeyMetric(series);
    const tKey = teacher ? pickKeyMetric(series, teacherSeries) || key : null;
    const tVal = tKey ? lastValue(teacherSeries, tKey) : undefined;
    const sVal = tKey ? lastValue(series, tKey) : undefined;
    const gap = tVal !== undefined && sVal !== undefined ? sVal - tVal : undefined;
    clear(
      el,
      card("Progress", `${Math.round((job.progress || 0) * 100)}%`, h("div", {}, progressBar(job.progress, { label: "Job progress", status: job.status }), h("span", {}, epochText(job) || "\u00a0"))),
      timeCard(job),
      card("Model", modelText(job), [KIND_LABEL[job.kind] || job.kind, kdTag(job)].filter(Boolean).join(" · ")),
      card("Worker", job.device || "—", job.worker || (job.status === "queued" ? "not started" : "")),
      key ? card(charts.metricLabel(key), fmtMetric(key, lastValue(series, key)), "latest", { "data-testid": "key-metric" }) : null,
      teacher && gap !== undefined
        ? card("Gap to teacher", h("span", { class: gap >= 0 ? "good" : "bad" }, fmtGap(tKey, gap)), `teacher #${teacher.id}: ${fmtMetric(tKey, tVal)} ${charts.metricLabel(tKey)}`, { "data-testid": "teacher-gap" })
        : null,
    );
    const failed = job.status === "failed";
    clear(banner, job.error && TERMINAL.has(job.status)
      ? h("div", { class: failed ? "alert alert-error" : "alert alert-info", role: failed ? "alert" : "status" },
          h("strong", {}, failed ? `Failed${job.attempts ? ` after ${job.attempts} attempt${job.attempts > 1 ? "s" : ""}` : ""}: ` : `${job.status[0].toUpperCase()}${job.status.slice(1)}: `),
          h("span", { class: "pre-wrap" }, job.error))
      : null);
  }
  return { el, banner, update };
}
