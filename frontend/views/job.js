// #/jobs/:id — live convergence curves, the teacher as reference, actions, logs, checkpoint, config and lineage.

import * as api from "../api.js";
import * as charts from "../charts.js";
import { watchJob, mergePoints } from "../live.js";
import {
  h, clear, statusBadge, progressBar, fmtNumber, fmtPct, fmtDate, fmtAgo, fmtDuration, parseTime,
  errorBox, kv, nextId, announce, TERMINAL, isActive, debounce, saveBlob, toast,
} from "../ui.js";
import {
  KIND_LABEL, teacherId, sourceId, jobLink, modelText, kdTag, timingText, epochText, actionButtons,
  pickKeyMetric, lastValue, jobLabel, chartScaleControls,
} from "./common.js";

const PREFS_KEY = "kdvideo.chartPrefs";

export function loadPrefs() {
  const d = { x: "epoch", resolution: "step", smoothing: 0.6, log: false, teacher: true, hidden: [] };
  try {
    return { ...d, ...JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") };
  } catch {
    return d;
  }
}

export function savePrefs(p) {
  try {
    localStorage.setItem(PREFS_KEY, JSON.stringify(p));
  } catch {
    /* not persisted */
  }
}

export async function render(root, { params, setTitle }) {
  const id = Number(params.id);
  let job = await api.getJob(id);
  setTitle(`#${id} ${job.kind}`);
  const { series, lastId } = await api.jobHistory(id, { maxPoints: 2000 }).catch(() => ({ series: {}, lastId: 0 }));
  const prefs = loadPrefs();
  let teacher = null;
  let teacherSeries = {};
  let stopWatch = null;
  let logTimer = null;
  let stopped = false;
  const panels = new Map(); // panel id -> {el, section}

  // ---------- header ----------
  const titleEl = h("h1", {}, `#${id} `, h("span", {}, job.name || KIND_LABEL[job.kind] || job.kind));
  const statusEl = h("span", { "aria-live": "polite", "data-testid": "job-status" });
  const liveEl = h("span", { class: "live", "aria-live": "polite", "data-mode": "" });
  const actionsEl = h("div", { class: "actions" });
  root.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/jobs" }, "Jobs"), h("span", { "aria-hidden": "true" }, " / "), `#${id}`),
    h("div", { class: "page-head" }, h("div", {}, titleEl, h("div", { class: "head-meta" }, statusEl, liveEl)), actionsEl),
  );

  const cards = h("div", { class: "cards" });
  const errorSlot = h("div");
  root.append(cards, errorSlot);

  // ---------- chart toolbar ----------
  const xName = nextId("x");
  const xGroup = h(
    "fieldset",
    { class: "segmented" },
    h("legend", {}, "X axis"),
    ["epoch", "step", "time"].map((m) => {
      const rid = nextId("xr");
      return [
        h("input", { type: "radio", name: xName, id: rid, value: m, checked: prefs.x === m, onchange: () => {
          prefs.x = m;
          savePrefs(prefs);
          draw();
        } }),
        h("label", { for: rid }, m === "time" ? "Time" : m[0].toUpperCase() + m.slice(1)),
      ];
    }),
  );
  const resName = nextId("res");
  const resGroup = h(
    "fieldset",
    { class: "segmented" },
    h("legend", {}, "Points"),
    [["step", "Steps"], ["epoch", "Epoch means"]].map(([m, text]) => {
      const rid = nextId("rr");
      return [
        h("input", { type: "radio", name: resName, id: rid, value: m, checked: prefs.resolution === m, onchange: () => {
          prefs.resolution = m;
          savePrefs(prefs);
          draw();
        } }),
        h("label", { for: rid }, text),
      ];
    }),
  );
  const scaleControls = chartScaleControls(prefs, { draw: () => draw(), drawSoon: () => drawSoon(), save: savePrefs });
  const teacherId_ = nextId("teach");
  const teacherToggle = h("div", { class: "check", hidden: true },
    h("input", { type: "checkbox", id: teacherId_, checked: prefs.teacher, onchange: (e) => {
      prefs.teacher = e.target.checked;
      savePrefs(prefs);
      draw();
    } }),
    h("label", { for: teacherId_ }, "Teacher reference"));
  const toolbar = h(
    "div",
    { class: "toolbar", role: "group", "aria-label": "Chart options" },
    xGroup,
    resGroup,
    ...scaleControls,
    teacherToggle,
    h("button", { class: "btn btn-small", type: "button", "data-testid": "metrics-csv", onclick: async () => {
      try {
        const csv = await api.jobMetricsCsv(id);
        saveBlob(new Blob([csv], { type: "text/csv" }), `job-${id}-metrics.csv`);
      } catch (err) {
        toast(`CSV export failed: ${err.message}`, { kind: "error" });
      }
    } }, "Metrics CSV"),
  );
  const chips = h("div", { class: "chips", role: "group", "aria-label": "Series shown" });
  const chartGrid = h("div", { class: "chart-grid" });
  const chartsSection = h("section", { class: "panel", "aria-labelledby": "curves-title" },
    h("div", { class: "panel-head" }, h("h2", { id: "curves-title" }, "Convergence"), toolbar), chips, chartGrid);
  root.append(chartsSection);

  // ---------- details: lineage, results, config, logs ----------
  const lineageEl = h("div");
  const resultsEl = h("div");
  const configEl = h("div");
  const logPre = h("pre", { class: "log", tabindex: "0", "aria-label": "Log tail", "data-testid": "log-tail" });
  const logHead = h("div", { class: "panel-head" }, h("h2", {}, "Log tail"),
    h("button", { class: "btn btn-small", type: "button", onclick: () => loadLogs() }, "Refresh"));
  root.append(
    h("div", { class: "two-col" },
      h("section", { class: "panel" }, h("h2", {}, "Lineage"), lineageEl, h("h2", {}, "Results"), resultsEl),
      h("section", { class: "panel" }, logHead, logPre),
    ),
    h("section", { class: "panel" }, h("h2", {}, "Configuration"), configEl),
  );

  // ---------- rendering ----------
  function renderHeader() {
    clear(statusEl, statusBadge(job.status), job.cancel_requested && isActive(job.status) ? h("span", { class: "muted" }, " cancelling…") : null);
    statusEl.dataset.status = job.status;
    clear(
      actionsEl,
      actionButtons(job, { onChange: (res) => (res && res.id === id ? applyJob(res) : api.getJob(id).then(applyJob).catch(() => {})) }),
      job.status === "completed" && (job.kind === "pretrain" || job.kind === "distill")
        ? [
            h("a", { class: "btn", href: `#/jobs/new?kind=distill&teacher_job_id=${id}` }, "Distill from this teacher"),
            h("a", { class: "btn", href: `#/jobs/new?kind=finetune&source_job_id=${id}` }, "Fine-tune"),
          ]
        : null,
      job.status === "completed" && job.kind === "finetune" ? h("a", { class: "btn", href: `#/predict?model=${id}` }, "Try it") : null,
      teacherId(job) !== null ? h("a", { class: "btn", href: `#/compare?ids=${teacherId(job)},${id}` }, "Compare with teacher") : null,
      hasCheckpoint() ? h("a", { class: "btn", href: api.checkpointUrl(id), download: "", "data-testid": "checkpoint", onclick: downloadWithToken }, "Checkpoint") : null,
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

  function hasCheckpoint() {
    return job.checkpoint_available ?? Boolean(job.checkpoint_path || job.status === "completed");
  }

  function renderCards() {
    const key = pickKeyMetric(series);
    const cur = key ? lastValue(series, key) : undefined;
    const tKey = teacher ? pickKeyMetric(series, teacherSeries) || key : null;
    const tVal = tKey ? lastValue(teacherSeries, tKey) : undefined;
    const sVal = tKey ? lastValue(series, tKey) : undefined;
    const gap = tVal !== undefined && sVal !== undefined ? sVal - tVal : undefined;
    const elapsed = job.started_at ? ((parseTime(job.finished_at) ?? Date.now()) - parseTime(job.started_at)) / 1000 : null;
    const card = (label, value, sub, extra = {}) => h("div", { class: "card", ...extra }, h("div", { class: "card-label" }, label), h("div", { class: "card-value" }, value), sub ? h("div", { class: "card-sub" }, sub) : null);
    clear(
      cards,
      card("Progress", `${Math.round((job.progress || 0) * 100)}%`, h("div", {}, progressBar(job.progress, { label: "Job progress", status: job.status }), h("span", {}, epochText(job) || "\u00a0"))),
      card(
        job.status === "queued" ? "Queue" : job.status === "running" ? "ETA" : "Duration",
        job.status === "queued" ? (job.queue_position ? `#${job.queue_position}` : "queued") : job.status === "running" ? (job.eta_s !== undefined && job.eta_s !== null ? fmtDuration(job.eta_s) : "…") : fmtDuration(elapsed),
        job.status === "running" ? (job.started_at ? `started ${fmtAgo(job.started_at)}` : "") : timingText(job) || (job.finished_at ? `finished ${fmtAgo(job.finished_at)}` : ""),
      ),
      card("Model", modelText(job), [KIND_LABEL[job.kind] || job.kind, kdTag(job)].filter(Boolean).join(" · ")),
      card("Worker", job.device || job.worker_device || "—", job.worker || (job.status === "queued" ? "not started" : "")),
      key ? card(charts.metricLabel(key), fmtMetric(key, cur), "latest", { "data-testid": "key-metric" }) : null,
      teacher && gap !== undefined
        ? card("Gap to teacher", h("span", { class: gap >= 0 ? "good" : "bad" }, `${gap >= 0 ? "+" : "−"}${fmtMetric(tKey, Math.abs(gap))}`), `teacher #${teacher.id}: ${fmtMetric(tKey, tVal)} ${charts.metricLabel(tKey)}`, { "data-testid": "teacher-gap" })
        : null,
    );
    const failed = job.status === "failed";
    clear(errorSlot, job.error && TERMINAL.has(job.status)
      ? h("div", { class: failed ? "alert alert-error" : "alert alert-info", role: failed ? "alert" : "status" },
          h("strong", {}, failed ? `Failed${job.attempts ? ` after ${job.attempts} attempt${job.attempts > 1 ? "s" : ""}` : ""}: ` : `${job.status[0].toUpperCase()}${job.status.slice(1)}: `),
          h("span", { class: "pre-wrap" }, job.error))
      : null);
  }

  function fmtMetric(name, v) {
    if (v === undefined) return "—";
    return /acc|top|agreement/.test(name) && v <= 1 ? fmtPct(v) : fmtNumber(v);
  }

  function renderLineage(children = null) {
    const t = teacherId(job);
    const s = sourceId(job);
    const chain = h("ol", { class: "lineage" });
    if (teacher) chain.append(h("li", {}, h("span", { class: "muted" }, "teacher "), jobLink(teacher.id, jobLabel(teacher)), " ", statusBadge(teacher.status)));
    else if (t !== null) chain.append(h("li", {}, h("span", { class: "muted" }, "teacher "), jobLink(t)));
    if (s !== null) chain.append(h("li", {}, h("span", { class: "muted" }, "source "), jobLink(s)));
    chain.append(h("li", { class: "current", "aria-current": "true" }, h("strong", {}, jobLabel(job))));
    const kids = children || job.children || job.lineage?.children || job.lineage?.students || [];
    if (kids.length) {
      chain.append(h("li", {}, h("span", { class: "muted" }, "used by "), h("ul", { class: "inline-list" }, kids.map((c) => h("li", {}, jobLink(c.id ?? c, typeof c === "object" ? jobLabel(c) : undefined), typeof c === "object" ? statusBadge(c.status) : null)))));
    }
    clear(lineageEl, chain, job.dataset_id !== undefined && job.dataset_id !== null ? h("p", {}, "Dataset ", h("a", { href: `#/datasets/${job.dataset_id}` }, job.dataset_name || `#${job.dataset_id}`)) : null);
  }

  function renderResults() {
    const r = job.results;
    if (!r || !Object.keys(r).length) {
      clear(resultsEl, h("p", { class: "muted" }, TERMINAL.has(job.status) ? "No results recorded." : "Results appear when the job completes."));
      return;
    }
    const pairs = [];
    const nums = (o) => Object.entries(o || {}).filter(([, v]) => typeof v === "number");
    if (r.test && typeof r.test === "object") for (const [k, v] of nums(r.test)) pairs.push([`test ${k.replace(/_/g, " ")}`, fmtMetric(k, v)]);
    if (r.retrieval && typeof r.retrieval === "object") {
      const ks = nums(r.retrieval).map(([k, v]) => `${k.replace("top", "top-")} ${fmtPct(v)}`);
      if (ks.length) pairs.push(["retrieval", h("span", {}, ks.join(" · "), r.retrieval.protocol ? h("div", { class: "hint" }, r.retrieval.protocol) : null)]);
    }
    const skip = /^(epoch|lr|retrieval_top_?\d+)$/;
    for (const [k, v] of nums(r.final)) if (!skip.test(k)) pairs.push([`final ${charts.metricLabel(k)}`, fmtMetric(k, v)]);
    for (const [k, v] of nums(r)) pairs.push([k.replace(/_/g, " "), fmtMetric(k, v)]);
    if (r.data && typeof r.data === "object") pairs.push(["data", `${r.data.classes ?? "?"} classes · ${r.data.train ?? "?"} train / ${r.data.test ?? "?"} test videos${r.data.problems ? ` · ${r.data.problems} problems` : ""}`]);
    clear(resultsEl, kv(pairs), h("details", {}, h("summary", {}, "All results (JSON)"), h("pre", { class: "json" }, JSON.stringify(r, null, 2))));
  }

  function renderConfig() {
    const pairs = [
      ["Kind", job.kind],
      ["Created", fmtDate(job.created_at)],
      ["Started", fmtDate(job.started_at)],
      ["Finished", fmtDate(job.finished_at)],
      ["Attempts", job.attempts !== undefined ? `${job.attempts}${job.max_attempts ? ` of ${job.max_attempts}` : ""}` : undefined],
      ["Config hash", job.config_hash ? h("code", {}, job.config_hash) : undefined],
      ["Code version", job.code_version ? h("code", {}, job.code_version) : undefined],
    ].filter(([, v]) => v !== undefined);
    clear(
      configEl,
      kv(pairs),
      job.request ? h("details", {}, h("summary", {}, "Request as submitted"), h("pre", { class: "json" }, JSON.stringify(job.request, null, 2))) : null,
      job.config ? h("details", {}, h("summary", {}, "Resolved training config"), h("pre", { class: "json" }, JSON.stringify(job.config, null, 2))) : null,
    );
  }

  // ---------- charts ----------
  function allNames() {
    return Object.keys(series).filter((n) => series[n].length);
  }

  /** One entry per metric, whether the worker stored it per step, per epoch ("epoch/<name>") or both. */
  function bases() {
    return [...new Set(allNames().map(charts.baseName))];
  }

  /** The stored series drawn for a metric at the chosen resolution (steps or epoch means). */
  function pick(src, base) {
    const ep = charts.EPOCH_PREFIX + base;
    const hasStep = Boolean(src[base]?.length);
    const hasEpoch = Boolean(src[ep]?.length);
    if (prefs.resolution === "epoch") return hasEpoch ? ep : hasStep ? base : null;
    return hasStep ? base : hasEpoch ? ep : null;
  }

  function colorOf(base) {
    const names = bases().sort();
    return charts.PALETTE[Math.max(0, names.indexOf(base)) % charts.PALETTE.length];
  }

  // retrieval top-10/20/50 saturate early on small sets; shown on request
  const HIDDEN_BY_DEFAULT = /^retrieval_top_?(10|20|50)$/;

  function isHidden(base) {
    if (prefs.hidden.includes(base)) return true;
    if (prefs.hidden.includes(`!${base}`)) return false;
    return HIDDEN_BY_DEFAULT.test(base);
  }

  function toggle(base, show) {
    prefs.hidden = prefs.hidden.filter((n) => n !== base && n !== `!${base}`);
    const byDefault = HIDDEN_BY_DEFAULT.test(base);
    if (!show && !byDefault) prefs.hidden.push(base);
    if (show && byDefault) prefs.hidden.push(`!${base}`);
    savePrefs(prefs);
    draw();
  }

  let chipsSig = "";
  function renderChips() {
    const names = bases().sort();
    const sig = names.join("|") + JSON.stringify(prefs.hidden);
    if (sig === chipsSig) return;
    chipsSig = sig;
    const groups = charts.groupMetrics(names);
    clear(
      chips,
      groups.flatMap((g) =>
        g.names.map((n) => {
          const cid = `chip-${n.replace(/[^a-z0-9]/gi, "_")}`;
          return h("span", { class: "chip", "data-metric": n },
            h("input", { type: "checkbox", id: cid, checked: !isHidden(n), onchange: (e) => toggle(n, e.target.checked) }),
            h("label", { for: cid }, h("span", { class: "swatch", style: { background: colorOf(n) }, "aria-hidden": "true" }), charts.metricLabel(n)));
        }),
      ),
    );
  }

  function traceFor(name, pts, { color, reference = false, label }) {
    const ctx = { stepsPerEpoch: reference ? teacher?.steps_per_epoch : job.steps_per_epoch, t0: t0For(reference) };
    const xs = [];
    const ys = [];
    for (const p of pts) {
      const x = charts.xOf(p, prefs.x, ctx);
      if (x === null || x === undefined) continue;
      xs.push(x);
      ys.push(p.value);
    }
    const out = [];
    const sm = prefs.smoothing;
    // epoch means and the learning rate (a schedule, not a noisy measurement) are drawn as they are
    const many = xs.length > 2 && !name.startsWith(charts.EPOCH_PREFIX) && charts.baseName(name) !== "lr";
    const lineShape = { color, width: reference ? 1.5 : 2, dash: reference ? "dash" : "solid" };
    const opacity = reference ? 0.6 : 1;
    if (many && sm > 0) {
      out.push({ type: "scatter", mode: "lines", x: xs, y: ys, name: `${label} (raw)`, line: { color, width: 1 }, opacity: reference ? 0.15 : 0.25, hoverinfo: "skip", showlegend: false, meta: { count: !reference } });
      out.push({ type: "scatter", mode: "lines", x: xs, y: charts.smooth(ys, sm), name: label, line: lineShape, opacity, meta: {} });
    } else {
      out.push({ type: "scatter", mode: xs.length < 30 ? "lines+markers" : "lines", marker: { size: reference ? 4 : 6 }, x: xs, y: ys, name: label, line: lineShape, opacity, meta: { count: !reference } });
    }
    return out;
  }

  function t0For(reference) {
    const src = reference ? teacher : job;
    const fromJob = parseTime(src?.started_at);
    const s = reference ? teacherSeries : series;
    const first = charts.earliestTime([s]);
    return first !== null ? Math.min(first, fromJob ?? first) : fromJob;
  }

  const showTeacher = () => Boolean(teacher) && prefs.teacher;

  async function draw() {
    if (stopped) return;
    renderChips();
    const names = bases();
    const groups = charts.groupMetrics(names);
    if (!names.length) {
      for (const { el } of panels.values()) charts.purge(el);
      panels.clear();
      clear(chartGrid, h("div", { class: "empty", "data-testid": "no-metrics" },
        h("p", { class: "empty-title" }, isActive(job.status) ? "Waiting for the first metrics…" : "No metrics recorded."),
        isActive(job.status) ? h("p", {}, "Curves appear here as the worker reports them — no need to reload.") : null));
      return;
    }
    if (chartGrid.querySelector("[data-testid=no-metrics]")) chartGrid.replaceChildren();
    const wanted = new Set(groups.map((g) => g.id));
    for (const [pid, p] of panels) {
      if (!wanted.has(pid)) {
        charts.purge(p.el);
        p.section.remove();
        panels.delete(pid);
      }
    }
    const teacherKey = teacher ? pickKeyMetric(series, teacherSeries) : null;
    for (const g of groups) {
      let p = panels.get(g.id);
      if (!p) {
        const el = h("div", { class: "chart", id: `chart-${g.id}`, "data-testid": `chart-${g.id}`, "aria-label": `${g.title} chart` });
        const section = h("figure", { class: "chart-card" }, el, h("figcaption", { class: "sr-only" }, g.title));
        p = { el, section };
        panels.set(g.id, p);
        // keep panel order stable
        const order = ["loss", "acc", "lr", "speed", "other"];
        const after = [...chartGrid.children].find((c) => order.indexOf(c.querySelector(".chart")?.id.replace("chart-", "")) > order.indexOf(g.id));
        chartGrid.insertBefore(section, after || null);
      }
      const traces = [];
      const shapes = [];
      const annotations = [];
      for (const base of g.names) {
        if (isHidden(base)) continue;
        const label = charts.metricLabel(base);
        const n = pick(series, base);
        const tn = showTeacher() ? pick(teacherSeries, base) : null;
        if (tn) traces.push(...traceFor(tn, teacherSeries[tn], { color: colorOf(base), reference: true, label: `teacher · ${label}` }));
        if (n) traces.push(...traceFor(n, series[n], { color: colorOf(base), label }));
      }
      if (g.id === "acc" && showTeacher() && teacherKey) {
        const tv = lastValue(teacherSeries, teacherKey);
        if (tv !== undefined) {
          const line = charts.hline(tv, { label: `teacher final ${fmtMetric(teacherKey, tv)}` });
          shapes.push(line.shape);
          annotations.push(line.annotation);
        }
      }
      const layout = charts.baseLayout({
        title: g.title,
        xTitle: charts.X_TITLES[prefs.x],
        log: prefs.log,
        percent: g.percent,
        shapes,
        annotations,
      });
      flatRange(layout, traces, prefs.log || g.id === "lr");
      if (g.id === "lr") {
        // learning rates span decades: always log, printed as 1e-3
        layout.yaxis.type = "log";
        layout.yaxis.exponentformat = "power";
      }
      try {
        await charts.render(p.el, traces, layout);
      } catch (err) {
        clear(chartGrid, errorBox(err));
        return;
      }
    }
    chartGrid.dataset.points = String([...panels.values()].reduce((n, p) => n + Number(p.el.dataset.points || 0), 0));
  }

  let drawPending = false;
  function drawSoon() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      draw();
    });
  }
  // live updates arrive in bursts; redraw at most ~3 times a second
  const drawThrottled = throttle(() => {
    draw();
    renderCards();
  }, 350);

  // ---------- data ----------
  function applyJob(partial) {
    // the stream's status events carry every moving field (progress, ETA, queue position, epochs, times)
    if (!partial) return false;
    const sig = () => JSON.stringify([job.status, job.progress, job.epoch, job.eta_s, job.queue_position, job.cancel_requested, job.error, job.started_at, job.finished_at, job.attempts]);
    const before = sig();
    const wasStatus = job.status;
    const wasStarted = job.started_at;
    job = { ...job, ...partial };
    if (before === sig()) return false;
    if (wasStarted !== job.started_at) renderConfig();
    if (wasStatus !== job.status) {
      announce(`Job #${id} is ${job.status}.`);
      renderConfig();
      renderResults();
      if (TERMINAL.has(job.status)) {
        // the final row carries results and the finish time
        api.getJob(id).then((j) => {
          job = { ...job, ...j };
          renderHeader();
          renderCards();
          renderResults();
          renderConfig();
        }).catch(() => {});
        loadLogs();
      }
    }
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
      teacherToggle.hidden = false;
      renderLineage();
      renderCards();
      draw();
    } catch {
      /* the reference is optional */
    }
  }

  async function loadChildren() {
    if (job.children || job.lineage?.children) return;
    if (job.kind !== "pretrain" && job.kind !== "distill") return;
    try {
      const all = api.rows(await api.listJobs({ limit: 200 }));
      const kids = all.filter((j) => j.id !== id && (teacherId(j) === id || sourceId(j) === id || j.parent_id === id));
      renderLineage(kids);
    } catch {
      /* lineage stays partial */
    }
  }

  let logAbort = null;
  async function loadLogs() {
    logAbort?.abort();
    logAbort = new AbortController();
    try {
      const res = await api.jobLogs(id, 300, { signal: logAbort.signal });
      const lines = typeof res === "string" ? res.split("\n") : res.lines || res.data || [];
      const atBottom = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 8;
      logPre.textContent = lines.length ? lines.map((l) => (typeof l === "string" ? l : l.message || l.line || JSON.stringify(l))).join("\n") : "(no log lines yet)";
      if (atBottom) logPre.scrollTop = logPre.scrollHeight;
    } catch (err) {
      if (err.name !== "AbortError") logPre.textContent = `Logs unavailable: ${err.message}`;
    }
    clearTimeout(logTimer);
    if (!stopped && isActive(job.status)) logTimer = setTimeout(loadLogs, document.hidden ? 30000 : 5000);
  }

  // ---------- go ----------
  renderHeader();
  renderCards();
  renderLineage();
  renderResults();
  renderConfig();
  await draw();
  loadTeacher();
  loadChildren();
  loadLogs();

  const modeText = { live: "● Live", polling: "Polling", reconnecting: "Reconnecting…", ended: "" };
  stopWatch = watchJob(id, {
    series,
    afterId: lastId,
    isTerminal: () => TERMINAL.has(job.status),
    onJob: (j) => applyJob(j),
    onPoints: (pts) => {
      const n = mergePoints(series, pts);
      if (n) drawThrottled();
      return n;
    },
    onLog: (line) => {
      const atBottom = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 8;
      logPre.textContent += `\n${line}`;
      if (atBottom) logPre.scrollTop = logPre.scrollHeight;
    },
    onMode: (m) => {
      liveEl.dataset.mode = m;
      liveEl.textContent = modeText[m] ?? "";
      liveEl.title = m === "live" ? "Updates stream from the server" : m === "polling" ? "The event stream is unavailable; polling" : "";
    },
  });

  // Plotly refuses to resize a plot that is not displayed (a hidden panel, or a page already left while the
  // debounce was pending), and says so as an uncaught error: resize only what is on screen.
  const onResize = debounce(() => {
    if (stopped || !window.Plotly) return;
    for (const p of panels.values()) if (p.el.isConnected && p.el.offsetParent !== null) window.Plotly.Plots.resize(p.el);
  }, 150);
  window.addEventListener("resize", onResize);

  return () => {
    stopped = true;
    stopWatch && stopWatch();
    clearTimeout(logTimer);
    logAbort?.abort();
    window.removeEventListener("resize", onResize);
    for (const p of panels.values()) charts.purge(p.el);
  };
}

/** A flat series (a constant learning rate, say) would zoom into float noise: give it a sensible range. */
function flatRange(layout, traces, log) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of traces) for (const y of t.y || []) if (Number.isFinite(y)) {
    lo = Math.min(lo, y);
    hi = Math.max(hi, y);
  }
  if (!Number.isFinite(lo) || hi - lo > 1e-9 * Math.max(Math.abs(hi), 1e-12)) return;
  if (log && lo > 0) layout.yaxis.range = [Math.log10(lo) - 1, Math.log10(hi) + 1];
  else {
    const pad = Math.abs(lo) * 0.5 || 1;
    layout.yaxis.range = [lo - pad, hi + pad];
  }
}

function throttle(fn, ms) {
  let last = 0;
  let t = null;
  return () => {
    const now = Date.now();
    const wait = last + ms - now;
    if (wait <= 0) {
      last = now;
      fn();
    } else if (!t) {
      t = setTimeout(() => {
        t = null;
        last = Date.now();
        fn();
      }, wait);
    }
  };
}
