// #/jobs/:id — live convergence curves, the teacher as reference, actions, logs, checkpoint, config and lineage.

import * as api from "../api.js";
import { watchJob, mergePoints } from "../live.js";
import { h, clear, statusBadge, announce, TERMINAL, isActive, saveBlob, toast, throttle } from "../ui.js";
import { KIND_LABEL, teacherId } from "../components/jobinfo.js";
import { actionButtons } from "../components/actions.js";
import { loadPrefs } from "../components/chartprefs.js";
import { jobCharts } from "../components/jobcharts.js";
import { jobCards } from "../components/jobcards.js";
import { lineage } from "../components/lineage.js";
import { logTail } from "../components/logtail.js";
import { resultsList, configList } from "../components/jobdetails.js";

const MODE_TEXT = { live: "● Live", polling: "Polling", reconnecting: "Reconnecting…", ended: "" };
const MODE_TITLE = { live: "Updates stream from the server", polling: "The event stream is unavailable; polling" };

export async function render(root, { params, query, setTitle }) {
  const id = Number(params.id);
  let job = await api.getJob(id);
  setTitle(`#${id} ${job.kind}`);
  const { series, lastId } = await api.jobHistory(id, { maxPoints: 2000 }).catch(() => ({ series: {}, lastId: 0 }));
  let teacher = null;
  let teacherSeries = {};

  const statusEl = h("span", { "aria-live": "polite", "data-testid": "job-status" });
  const liveEl = h("span", { class: "live", "aria-live": "polite", "data-mode": "" });
  const actionsEl = h("div", { class: "actions" });
  const cards = jobCards();
  const chart = jobCharts({ id, series, prefs: loadPrefs(query), getJob: () => job });
  const logs = logTail(id, { isActive: () => isActive(job.status) });
  const lineageEl = h("div");
  const resultsEl = h("div");
  const configEl = h("div");
  root.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/jobs" }, "Jobs"), h("span", { "aria-hidden": "true" }, " / "), `#${id}`),
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, `#${id} `, h("span", {}, job.name || KIND_LABEL[job.kind] || job.kind)), h("div", { class: "head-meta" }, statusEl, liveEl)), actionsEl),
    cards.el,
    cards.banner,
    chart.el,
    h("div", { class: "two-col" }, h("section", { class: "panel" }, h("h2", {}, "Lineage"), lineageEl, h("h2", {}, "Results"), resultsEl), logs.el),
    h("section", { class: "panel" }, h("h2", {}, "Configuration"), configEl),
  );

  function renderHeader() {
    clear(statusEl, statusBadge(job.status), job.cancel_requested && isActive(job.status) ? h("span", { class: "muted" }, " cancelling…") : null);
    statusEl.dataset.status = job.status;
    const producesBackbone = job.kind === "pretrain" || job.kind === "distill";
    clear(
      actionsEl,
      actionButtons(job, { onChange: (res) => (res && res.id === id ? applyJob(res) : api.getJob(id).then(applyJob).catch(() => {})) }),
      job.status === "completed" && producesBackbone
        ? [
            h("a", { class: "btn", href: `#/jobs/new?kind=distill&teacher_job_id=${id}` }, "Distill from this teacher"),
            h("a", { class: "btn", href: `#/jobs/new?kind=finetune&source_job_id=${id}` }, "Fine-tune"),
          ]
        : null,
      job.status === "completed" && job.kind === "finetune" ? h("a", { class: "btn", href: `#/predict?model=${id}` }, "Try it") : null,
      teacherId(job) !== null ? h("a", { class: "btn", href: `#/compare?ids=${teacherId(job)},${id}` }, "Compare with teacher") : null,
      job.checkpoint_available ? h("a", { class: "btn", href: api.checkpointUrl(id), download: "", "data-testid": "checkpoint", onclick: downloadWithToken }, "Checkpoint") : null,
    );
  }

  async function downloadWithToken(e) {
    if (!api.getToken()) return; // a plain link works when the server needs no token
    e.preventDefault();
    try {
      const { blob, filename } = await api.downloadCheckpoint(id);
      saveBlob(blob, filename);
    } catch (err) {
      toast(err.message, { kind: "error" });
    }
  }

  const renderCards = () => cards.update({ job, series, teacher, teacherSeries });
  const renderDetails = () => {
    clear(lineageEl, lineage(job, { teacher }));
    clear(resultsEl, resultsList(job));
    clear(configEl, configList(job));
  };

  /** A status event or a fresh row: re-render what moved; at the end, reload the final row (results, times). */
  function applyJob(partial) {
    if (!partial) return false;
    const sig = () => JSON.stringify([job.status, job.progress, job.epoch, job.eta_s, job.queue_position, job.cancel_requested, job.error, job.started_at, job.finished_at, job.attempts]);
    const before = sig();
    const wasStatus = job.status;
    const wasStarted = job.started_at;
    job = { ...job, ...partial };
    if (before === sig()) return false;
    if (wasStatus !== job.status) {
      announce(`Job #${id} is ${job.status}.`);
      if (TERMINAL.has(job.status)) {
        api.getJob(id).then((j) => {
          job = { ...job, ...j };
          renderHeader();
          renderCards();
          renderDetails();
        }).catch(() => {});
        logs.load();
      }
    }
    if (wasStatus !== job.status || wasStarted !== job.started_at) renderDetails(); // not per tick: open <details> stay open
    renderHeader();
    renderCards();
    return true;
  }

  async function loadTeacher() {
    const t = teacherId(job);
    if (t === null) return;
    try {
      teacher = await api.getJob(t);
      teacherSeries = await api.jobMetrics(t, { maxPoints: 2000 });
      renderDetails();
      renderCards();
      chart.setTeacher(teacher, teacherSeries);
    } catch {
      /* the reference is optional */
    }
  }

  renderHeader();
  renderCards();
  renderDetails();
  await chart.draw();
  loadTeacher();
  logs.load();

  // live updates arrive in bursts; redraw at most ~3 times a second
  const redraw = throttle(() => {
    chart.draw();
    renderCards();
  }, 350);
  const stopWatch = watchJob(id, {
    series,
    afterId: lastId,
    isTerminal: () => TERMINAL.has(job.status),
    onJob: (j) => applyJob(j),
    onPoints: (pts) => {
      const n = mergePoints(series, pts);
      if (n) redraw();
      return n;
    },
    onLog: (line) => logs.append(line),
    onMode: (m) => {
      liveEl.dataset.mode = m;
      liveEl.textContent = MODE_TEXT[m] ?? "";
      liveEl.title = MODE_TITLE[m] ?? "";
    },
  });

  return () => {
    stopWatch();
    logs.stop();
    chart.destroy();
  };
}
