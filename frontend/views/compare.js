// #/compare?ids=1,2,3&metric=epoch/pretext_acc&ref=1 — overlay runs on one metric, final numbers,
// epochs to reach the reference (teacher) accuracy, PNG and CSV export.
// #/compare?experiment=ID — the experiment's runs (teacher vs KD student vs no-KD baseline) on retrieval top-1,
// with its summary table (final retrieval top-1, fine-tuned top-1, epochs to reach the teacher's) and a button
// that cancels its unfinished jobs.

import * as api from "../api.js";
import * as charts from "../charts.js";
import { updateQuery } from "../url.js";
import { h, clear, statusBadge, fmtNumber, fmtPct, errorBox, emptyState, nextId, saveBlob, debounce, toast } from "../ui.js";
import { teacherId, jobLink, modelText, kdTag, jobLabel, alphaOf, isAccuracy, headlineMetric, countsText, fmtGap } from "../components/jobinfo.js";
import { loadPrefs, savePrefs, chartScaleControls, prefChoice, X_CHOICES } from "../components/chartprefs.js";

const ROLE_DASH = { teacher: "dash", student: "solid", baseline: "dot" };

export function runLabel(run) {
  const pct = run.fraction < 1 ? ` ${Math.round(run.fraction * 1000) / 10}%` : "";
  const who = run.role === "student" ? `KD ${run.teacher_backbone}→${run.backbone}` : run.role === "baseline" ? `no-KD ${run.backbone}` : `teacher ${run.backbone}`;
  return `${who}${pct} s${run.seed}`;
}


export async function render(root, { query }) {
  const prefs = loadPrefs(query);
  let ids = (query.get("ids") || "").split(",").map(Number).filter((x) => Number.isInteger(x) && x > 0);
  let metric = query.get("metric") || "";
  // the metric is the user's once chosen (in the dropdown, or in the link opened); until then the headline one
  let metricChosen = Boolean(metric);
  let refId = query.get("ref") ? Number(query.get("ref")) : null;
  const experimentId = Number(query.get("experiment")) || null;
  let experiment = null;
  const runs = new Map(); // job id -> experiment run
  const jobs = new Map(); // id -> job
  const data = new Map(); // id -> series
  let stopped = false;
  let timer = null;

  const title = h("h1", {}, "Compare runs");
  const lede = h("p", { class: "lede" }, "Overlay teachers, students and baselines on one metric.");
  const cancelBtn = h("button", { class: "btn btn-danger", type: "button", hidden: true, "data-testid": "cancel-experiment", onclick: cancelExperiment }, "Cancel experiment");
  root.append(h("div", { class: "page-head" }, h("div", {}, title, lede), h("div", { class: "actions" }, cancelBtn)));

  async function cancelExperiment() {
    cancelBtn.disabled = true;
    try {
      setExperiment(await api.cancelExperiment(experimentId));
      toast(`Experiment #${experimentId}: its unfinished jobs are cancelled (running ones stop within a step or two).`, { kind: "success" });
      load();
    } catch (err) {
      toast(`Cancel failed: ${err.message}`, { kind: "error", timeout: 8000 });
    } finally {
      cancelBtn.disabled = false;
    }
  }

  function setExperiment(exp) {
    experiment = exp;
    cancelBtn.hidden = !["queued", "running"].includes(exp.status);
    cancelBtn.setAttribute("aria-label", `Cancel experiment #${exp.id}`);
    runs.clear();
    for (const r of exp.runs) runs.set(r.job_id, r);
    title.textContent = `Experiment #${exp.id}: ${exp.name}`;
    clear(lede, `${exp.grid} grid · `, statusBadge(exp.status), ` ${countsText(exp.counts)} · `, h("a", { href: "#/experiments" }, "all experiments"));
  }

  let all = [];
  try {
    if (experimentId) {
      setExperiment(await api.getExperiment(experimentId));
      all = await Promise.all(experiment.runs.map((r) => api.getJob(r.job_id)));
      if (!ids.length) ids = experiment.runs.map((r) => r.job_id);
      if (!metric) metric = "epoch/retrieval_top1";
      if (refId === null) refId = experiment.runs.find((r) => r.role === "teacher")?.job_id ?? null;
    } else {
      all = api.rows(await api.listJobs({ limit: 200 }));
    }
  } catch (err) {
    root.append(errorBox(err));
    return;
  }
  for (const j of all) jobs.set(j.id, j);

  // ---------- run picker ----------
  const picker = h("fieldset", { class: "run-picker" }, h("legend", {}, "Runs"));
  const pickerList = h("div", { class: "run-list" });
  picker.append(pickerList);
  const candidates = all.filter((j) => j.kind !== "retrieve");
  const badges = new Map(); // job id -> the picker's status badge, kept current as jobs are re-read
  if (!candidates.length) {
    root.append(emptyState("Nothing to compare yet.", "Start a teacher and a student, then come back.", h("a", { class: "btn btn-primary", href: "#/jobs/new" }, "New job")));
    return;
  }
  for (const j of candidates) {
    const cid = `cmp-${j.id}`;
    pickerList.append(h("div", { class: "check" },
      h("input", { type: "checkbox", id: cid, value: String(j.id), checked: ids.includes(j.id), onchange: (e) => {
        if (e.target.checked) ids = [...new Set([...ids, j.id])];
        else ids = ids.filter((x) => x !== j.id);
        sync();
        load();
      } }),
      h("label", { for: cid }, runs.has(j.id) ? `#${j.id} ${runLabel(runs.get(j.id))}` : jobLabel(j), " ", badges.set(j.id, h("span", {}, statusBadge(j.status))).get(j.id))));
  }

  // ---------- controls ----------
  const metricId = nextId("metric");
  const metricSel = h("select", { id: metricId, onchange: () => {
    metric = metricSel.value;
    metricChosen = true;
    sync();
    draw();
  } });
  const refIdEl = nextId("ref");
  const refSel = h("select", { id: refIdEl, onchange: () => {
    refId = refSel.value ? Number(refSel.value) : null;
    sync();
    draw();
  } });
  const xGroup = prefChoice(prefs, "x", "X axis", X_CHOICES, () => draw());
  const scaleControls = chartScaleControls(prefs, { draw: () => draw(), drawSoon: () => drawSoon(), save: savePrefs });
  const pngBtn = h("button", { class: "btn btn-small", type: "button", "data-testid": "export-png", onclick: exportPng }, "Export PNG");
  const csvBtn = h("button", { class: "btn btn-small", type: "button", "data-testid": "export-csv", onclick: exportCsv }, "Export CSV");
  const toolbar = h("div", { class: "toolbar", role: "group", "aria-label": "Chart options" },
    h("div", { class: "field field-inline" }, h("label", { for: metricId }, "Metric"), metricSel),
    h("div", { class: "field field-inline" }, h("label", { for: refIdEl }, "Reference"), refSel),
    xGroup,
    ...scaleControls,
    h("div", { class: "actions" }, pngBtn, csvBtn));

  const chartEl = h("div", { class: "chart chart-tall", id: "compare-chart", "data-testid": "compare-chart", "aria-label": "Comparison chart" });
  const tableWrap = h("div", { class: "table-wrap" });
  const expWrap = h("div", { class: "table-wrap" });
  const status = h("p", { class: "muted", "aria-live": "polite" });
  root.append(h("div", { class: "compare-layout" },
    h("aside", { class: "panel" }, picker),
    h("section", { class: "panel compare-main" }, toolbar, status, h("figure", { class: "chart-card" }, chartEl),
      experimentId ? [h("h2", {}, "Experiment summary"), expWrap] : null, h("h2", {}, "Final numbers"), tableWrap)));

  function sync() {
    updateQuery({ experiment: experimentId ?? "", ids: ids.join(","), metric: metricChosen ? metric : "", ref: refId ?? "" });
  }

  function selectedJobs() {
    return ids.map((i) => jobs.get(i)).filter(Boolean);
  }

  function defaultRef() {
    const sel = selectedJobs();
    const t = sel.map(teacherId).find((x) => x !== null && ids.includes(x));
    if (t) return t;
    return sel.find((j) => j.kind === "pretrain")?.id ?? null;
  }

  function fillControls() {
    const names = new Set();
    for (const i of ids) for (const [n, pts] of Object.entries(data.get(i) || {})) if (pts.length) names.add(n);
    if (!metricChosen || !metric) metric = headlineMetric(selectedJobs(), ids.map((i) => data.get(i) || {})) || "";
    if (metric) names.add(metric); // the headline metric is offered before its first point
    const sorted = charts.sortNames(names);
    clear(metricSel, sorted.map((n) => h("option", { value: n }, charts.metricLabel(n, { both: n.startsWith(charts.EPOCH_PREFIX) && names.has(charts.baseName(n)) }))));
    metricSel.value = metric;
    if (refId === null || !ids.includes(refId)) refId = defaultRef();
    clear(refSel, h("option", { value: "" }, "none"), selectedJobs().map((j) => h("option", { value: String(j.id) }, jobLabel(j))));
    refSel.value = refId === null ? "" : String(refId);
  }

  let loadSeq = 0;
  async function load() {
    const seq = ++loadSeq;
    clearTimeout(timer);
    if (!ids.length) {
      fillControls();
      draw();
      return;
    }
    status.textContent = "Loading metrics…";
    try {
      await Promise.all([...ids.map(async (i) => {
        const [j, s] = await Promise.all([jobs.has(i) && jobs.get(i).status === "completed" ? jobs.get(i) : api.getJob(i), api.jobMetrics(i, { maxPoints: 1500 })]);
        jobs.set(i, j);
        data.set(i, s);
      }), experimentId && experiment && experiment.status !== "completed" ? api.getExperiment(experimentId).then(setExperiment) : null]);
    } catch (err) {
      if (seq === loadSeq) clear(tableWrap, errorBox(err));
    }
    if (seq !== loadSeq || stopped) return;
    status.textContent = "";
    fillControls();
    sync();
    await draw();
    // runs still training: refresh now and then (the job page has the live stream)
    const active = selectedJobs().some((j) => ["running", "queued", "waiting"].includes(j.status));
    if (active || (experiment && ["running", "queued"].includes(experiment.status))) timer = setTimeout(load, 5000);
  }

  function xy(id) {
    const j = jobs.get(id);
    const pts = data.get(id)?.[metric] || [];
    const t0 = charts.earliestTime([data.get(id) || {}]);
    const xs = [];
    const ys = [];
    for (const p of pts) {
      const x = charts.xOf(p, prefs.x, { stepsPerEpoch: j?.steps_per_epoch, t0 });
      if (x === null || x === undefined) continue;
      xs.push(x);
      ys.push(p.value);
    }
    return { xs, ys };
  }

  function epochX(id, p) {
    const j = jobs.get(id);
    return j?.steps_per_epoch && p.step !== undefined ? p.step / j.steps_per_epoch : p.epoch;
  }

  /** First epoch at which the run's accuracy reaches the reference's final one. */
  function epochsToReach(id, refFinal) {
    if (refFinal === undefined || !isAccuracy(metric)) return null;
    const pts = data.get(id)?.[metric] || [];
    const hit = pts.find((p) => p.value >= refFinal);
    return hit ? epochX(id, hit) : Infinity;
  }

  const fmt = (v) => (v === undefined ? "—" : isAccuracy(metric) && v <= 1 ? fmtPct(v) : fmtNumber(v));

  async function draw() {
    if (stopped) return;
    if (!ids.length) {
      charts.purge(chartEl);
      delete chartEl.dataset.points;
      clear(chartEl, h("div", { class: "empty" }, h("p", { class: "empty-title" }, "Pick runs on the left."), h("p", {}, "Tip: a teacher, its KD students and a no-KD baseline (α = 0).")));
      clear(tableWrap);
      return;
    }
    if (chartEl.querySelector(".empty")) chartEl.replaceChildren();
    const traces = [];
    // epoch means are drawn as they are: no smoothing slider for them
    const smoothable = !metric.startsWith(charts.EPOCH_PREFIX);
    scaleControls[0].hidden = !smoothable;
    const percent = isAccuracy(metric);
    const refPts = refId !== null ? data.get(refId)?.[metric] || [] : [];
    const refFinal = refPts.length ? refPts[refPts.length - 1].value : undefined;
    ids.forEach((id, idx) => {
      const j = jobs.get(id);
      const { xs, ys } = xy(id);
      const isRef = id === refId;
      const color = isRef ? charts.theme().text : charts.PALETTE[idx % charts.PALETTE.length];
      const run = runs.get(id);
      const name = run ? `#${id} ${runLabel(run)}` : `#${id} ${j ? `${j.kind === "distill" ? (alphaOf(j) === 0 ? "no-KD" : "KD") : j.kind} ${modelText(j)}` : ""}`;
      const smoothed = prefs.smoothing > 0 && xs.length > 2 && smoothable;
      if (smoothed) traces.push({ type: "scatter", mode: "lines", x: xs, y: ys, line: { color, width: 1 }, opacity: 0.2, hoverinfo: "skip", showlegend: false, meta: { count: true } });
      traces.push({
        type: "scatter",
        mode: xs.length < 30 ? "lines+markers" : "lines",
        marker: { size: 5 },
        x: xs,
        y: smoothed ? charts.smooth(ys, prefs.smoothing) : ys,
        name: isRef ? `${name} (reference)` : name,
        hovertemplate: charts.hoverTemplate(isRef ? `${name} (reference)` : name, percent),
        line: { color, width: isRef ? 2.5 : 2, dash: isRef ? "dash" : run ? ROLE_DASH[run.role] || "solid" : "solid" },
        meta: { count: !smoothed },
      });
    });
    const shapes = [];
    const annotations = [];
    if (refFinal !== undefined && isAccuracy(metric)) {
      const line = charts.hline(refFinal, { color: charts.theme().text, label: `reference final ${fmt(refFinal)}` });
      shapes.push(line.shape);
      annotations.push(line.annotation);
    }
    const layout = charts.baseLayout({
      title: charts.metricLabel(metric || ""),
      xTitle: charts.X_TITLES[prefs.x],
      log: prefs.log,
      percent,
      height: 420,
      shapes,
      annotations,
    });
    layout.legend = { orientation: "v", x: 1.02, y: 1, font: { size: 11 } };
    charts.fitAxes(layout, traces, prefs.x);
    layout.margin.r = 8;
    try {
      await charts.render(chartEl, traces, layout);
    } catch (err) {
      clear(chartEl, errorBox(err));
    }
    renderTable(refFinal);
    for (const [id, el] of badges) if (jobs.has(id)) clear(el, statusBadge(jobs.get(id).status));
    if (experiment) renderExperiment();
  }

  function renderExperiment() {
    const pct = (v) => (v === null || v === undefined ? "—" : fmtPct(v));
    const gain = (v) => (v === null || v === undefined ? "—" : `${v >= 0 ? "+" : "−"}${(Math.abs(v) * 100).toFixed(1)}`);
    const reach = (r) => (r.epochs_to_reference !== null ? String(r.epochs_to_reference)
      : r.status === "completed" && r.reference_top1 !== null ? h("span", { class: "muted" }, "not reached") : "—");
    clear(expWrap, h("table", { class: "table compare-table", "data-testid": "experiment-table" },
      h("caption", { class: "sr-only" }, "Experiment runs and their numbers"),
      h("thead", {}, h("tr", {}, ["Run", "Role", "Backbone", "Teacher", "Data", "Seed", "Status", "Retrieval top-1", "Fine-tuned top-1", "KD gain (pts)", "Epochs to teacher"]
        .map((c, i) => h("th", { scope: "col", class: i >= 7 ? "num" : undefined }, c)))),
      h("tbody", {}, experiment.runs.map((r) => h("tr", { "data-job-id": r.job_id, "data-role": r.role },
        h("td", {}, jobLink(r.job_id)),
        h("td", {}, r.role),
        h("td", { class: "mono" }, r.backbone),
        h("td", { class: "mono" }, r.teacher_backbone ? [r.teacher_backbone, " ", jobLink(r.teacher_job_id)] : "—"),
        h("td", {}, `${Math.round(r.fraction * 1000) / 10}%`),
        h("td", {}, String(r.seed)),
        h("td", {}, statusBadge(r.status), r.error ? h("div", { class: "sub", title: r.error }, r.error.slice(0, 80)) : null),
        h("td", { class: "num" }, pct(r.retrieval_top1)),
        h("td", { class: "num" }, r.finetune_job_id ? [pct(r.finetune_top1), h("div", { class: "sub" }, jobLink(r.finetune_job_id), " ", r.finetune_status)] : "—"),
        h("td", { class: "num", "data-testid": "kd-gain", title: r.baseline_job_id ? `retrieval / fine-tuned top-1, percentage points over no-KD baseline #${r.baseline_job_id} (same seed)` : "" },
          r.role === "student" ? `${gain(r.kd_gain_retrieval)} / ${gain(r.kd_gain_finetune)}` : "—"),
        h("td", { class: "num", "data-testid": "epochs-to-teacher" }, reach(r)))))));
  }

  function renderTable(refFinal) {
    const acc = isAccuracy(metric);
    const higherBetter = acc;
    const rowsEl = ids.map((id) => {
      const j = jobs.get(id) || { id };
      const pts = data.get(id)?.[metric] || [];
      const final = pts.length ? pts[pts.length - 1].value : undefined;
      const best = pts.length ? (higherBetter ? Math.max(...pts.map((p) => p.value)) : Math.min(...pts.map((p) => p.value))) : undefined;
      const reach = id === refId ? null : epochsToReach(id, refFinal);
      const gap = final !== undefined && refFinal !== undefined && id !== refId ? final - refFinal : undefined;
      return h("tr", { "data-job-id": id },
        h("td", {}, jobLink(id), id === refId ? h("span", { class: "tag" }, "reference") : null),
        h("td", {}, j.kind || "—", kdTag(j) ? h("div", { class: "sub" }, kdTag(j)) : null),
        h("td", { class: "mono nowrap" }, modelText(j)),
        h("td", {}, teacherId(j) !== null ? jobLink(teacherId(j)) : "—"),
        h("td", {}, statusBadge(j.status)),
        h("td", { class: "num" }, fmt(final)),
        h("td", { class: "num" }, fmt(best)),
        h("td", { class: "num" }, gap === undefined ? "—" : h("span", { class: gap >= 0 === higherBetter ? "good" : "bad", "data-testid": "gap" }, fmtGap(metric, gap))),
        h("td", { class: "num", "data-testid": "epochs-to-reach" }, reach === null ? "—" : reach === Infinity ? h("span", { class: "muted" }, "not reached") : fmtNumber(Math.round(reach * 100) / 100)),
        h("td", { class: "num" }, String(pts.length)));
    });
    clear(tableWrap, h("table", { class: "table compare-table" },
      h("caption", { class: "sr-only" }, `Final ${metric} per run`),
      h("thead", {}, h("tr", {}, ["Run", "Kind", "Backbone", "Teacher", "Status", "Final", higherBetter ? "Best" : "Lowest", "Gap to ref.", "Epochs to reach ref.", "Points"].map((c, i) => h("th", { scope: "col", class: i >= 5 ? "num" : undefined }, c)))),
      h("tbody", {}, rowsEl)),
      !acc && refId !== null ? h("p", { class: "hint" }, "Epochs to reach the reference are counted on accuracy metrics.") : null);
  }

  async function exportPng() {
    const Plotly = await charts.loadPlotly();
    await Plotly.downloadImage(chartEl, { format: "png", filename: `compare-${ids.join("-")}-${metric.replace(/\W+/g, "_")}`, width: 1200, height: 600, scale: 2 });
  }

  function exportCsv() {
    const runs = ids.map((id) => ({ id, label: jobs.get(id) ? jobLabel(jobs.get(id)) : `#${id}`, series: { [metric]: data.get(id)?.[metric] || [] } }));
    saveBlob(new Blob([charts.seriesToCsv(runs)], { type: "text/csv" }), `compare-${ids.join("-")}-${metric.replace(/\W+/g, "_")}.csv`);
  }

  const drawSoon = debounce(draw, 30);
  await load();
  return () => {
    stopped = true;
    clearTimeout(timer);
    charts.purge(chartEl);
  };
}
