// A job's convergence panel: the chart toolbar (axis, points, smoothing, log, teacher overlay, CSV), one chip per
// metric to show or hide it, and one Plotly chart per metric group, redrawn in place as points arrive.

import * as api from "../api.js";
import * as charts from "../charts.js";
import { h, clear, nextId, errorBox, isActive, parseTime, saveBlob, toast, debounce } from "../ui.js";
import { pickKeyMetric, lastValue, fmtMetric } from "./jobinfo.js";
import { chartScaleControls, prefChoice, savePrefs, X_CHOICES } from "./chartprefs.js";

/**
 * series: the job's {name: points} (merged into by the live stream); prefs: loadPrefs() of the page;
 * getJob(): the job row as it is now. -> {el, draw, drawSoon, setTeacher(teacher, teacherSeries), destroy}
 */
export function jobCharts({ id, series, prefs, getJob }) {
  let teacher = null;
  let teacherSeries = {};
  let stopped = false;
  const panels = new Map(); // panel id -> {el, section}

  const xGroup = prefChoice(prefs, "x", "X axis", X_CHOICES, draw);
  const resGroup = prefChoice(prefs, "resolution", "Points", [["step", "Steps"], ["epoch", "Epoch means"]], draw);
  const scaleControls = chartScaleControls(prefs, { draw: () => draw(), drawSoon: () => drawSoon(), save: savePrefs });
  const teacherCheckId = nextId("teach");
  const teacherToggle = h("div", { class: "check", hidden: true },
    h("input", { type: "checkbox", id: teacherCheckId, checked: prefs.teacher, onchange: (e) => {
      prefs.teacher = e.target.checked;
      savePrefs(prefs);
      draw();
    } }),
    h("label", { for: teacherCheckId }, "Teacher reference"));
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
  const el = h("section", { class: "panel", "aria-labelledby": "curves-title" },
    h("div", { class: "panel-head" }, h("h2", { id: "curves-title" }, "Convergence"), toolbar), chips, chartGrid);

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

  /** A metric's colour: its place in its panel, so no two series of a panel share one (the teacher's twin aside). */
  function colorOf(base) {
    const group = charts.groupMetrics(bases()).find((g) => g.names.includes(base));
    return charts.PALETTE[Math.max(0, group ? group.names.indexOf(base) : 0) % charts.PALETTE.length];
  }

  // shown on request: retrieval beyond top-1 (top-10/20/50 saturate early on small sets) and throughput
  const HIDDEN_BY_DEFAULT = /^retrieval_top_?(5|10|20|50)$|per_s$/;

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

  function traceFor(name, pts, { color, reference = false, label, percent = false }) {
    const ctx = { stepsPerEpoch: reference ? teacher?.steps_per_epoch : getJob().steps_per_epoch, t0: t0For(reference) };
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
    const hovertemplate = charts.hoverTemplate(label, percent);
    if (many && sm > 0) {
      out.push({ type: "scatter", mode: "lines", x: xs, y: ys, name: `${label} (raw)`, line: { color, width: 1 }, opacity: reference ? 0.15 : 0.25, hoverinfo: "skip", showlegend: false, meta: { count: !reference } });
      out.push({ type: "scatter", mode: "lines", x: xs, y: charts.smooth(ys, sm), name: label, line: lineShape, opacity, hovertemplate, meta: {} });
    } else {
      out.push({ type: "scatter", mode: xs.length < 30 ? "lines+markers" : "lines", marker: { size: reference ? 4 : 6 }, x: xs, y: ys, name: label, line: lineShape, opacity, hovertemplate, meta: { count: !reference } });
    }
    return out;
  }

  function t0For(reference) {
    const src = reference ? teacher : getJob();
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
    // a panel whose series are all hidden is not drawn (its chips stay, to show them)
    const groups = charts.groupMetrics(names).filter((g) => g.names.some((n) => !isHidden(n)));
    const { status } = getJob();
    // smoothing applies to step-level series only: the slider shows when one is drawn
    scaleControls[0].hidden = !(prefs.resolution === "step" && names.some((b) => !isHidden(b) && b !== "lr" && series[b]?.length > 2));
    if (!names.length) {
      for (const { el } of panels.values()) charts.purge(el);
      panels.clear();
      clear(chartGrid, h("div", { class: "empty", "data-testid": "no-metrics" },
        h("p", { class: "empty-title" }, isActive(status) ? "Waiting for the first metrics…" : "No metrics recorded."),
        isActive(status) ? h("p", {}, "Curves appear here as the worker reports them — no need to reload.") : null));
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
        // the chart's text alternative: the latest value of every series drawn (kept current below)
        const caption = h("figcaption", { class: "sr-only", "data-testid": `caption-${g.id}` }, g.title);
        const section = h("figure", { class: "chart-card" }, el, caption);
        p = { el, section, caption };
        panels.set(g.id, p);
        // keep panel order stable
        const order = ["loss", "acc", "lr", "speed", "other"];
        const after = [...chartGrid.children].find((c) => order.indexOf(c.querySelector(".chart")?.id.replace("chart-", "")) > order.indexOf(g.id));
        chartGrid.insertBefore(section, after || null);
      }
      const traces = [];
      const shapes = [];
      const annotations = [];
      const latest = [];
      for (const base of g.names) {
        if (isHidden(base)) continue;
        const label = charts.metricLabel(base);
        const n = pick(series, base);
        if (n) latest.push(`${label} ${fmtMetric(base, lastValue(series, n))} at epoch ${series[n][series[n].length - 1].epoch ?? "?"}`);
        const tn = showTeacher() ? pick(teacherSeries, base) : null;
        if (tn) traces.push(...traceFor(tn, teacherSeries[tn], { color: colorOf(base), reference: true, label: `teacher · ${label}`, percent: g.percent }));
        if (n) traces.push(...traceFor(n, series[n], { color: colorOf(base), label, percent: g.percent }));
      }
      if (g.id === "acc" && showTeacher() && teacherKey) {
        const tv = lastValue(teacherSeries, teacherKey);
        if (tv !== undefined) {
          const line = charts.hline(tv, { label: `teacher final ${fmtMetric(teacherKey, tv)}` });
          shapes.push(line.shape);
          annotations.push(line.annotation);
        }
      }
      p.caption.textContent = `${g.title} chart. Latest: ${latest.join("; ") || "nothing shown"}.`;
      const layout = charts.baseLayout({
        title: g.title,
        xTitle: charts.X_TITLES[prefs.x],
        log: prefs.log,
        percent: g.percent,
        shapes,
        annotations,
      });
      if (g.id === "lr") {
        // learning rates span decades: log, printed as 1e-3 (a constant one gets a linear axis below)
        layout.yaxis.type = "log";
        layout.yaxis.exponentformat = "power";
      }
      charts.fitAxes(layout, traces, prefs.x);
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
  // Plotly refuses to resize a plot that is not displayed (a hidden panel, or a page already left while the
  // debounce was pending), and says so as an uncaught error: resize only what is on screen.
  const onResize = debounce(() => {
    if (stopped || !window.Plotly) return;
    for (const p of panels.values()) if (p.el.isConnected && p.el.offsetParent !== null) window.Plotly.Plots.resize(p.el);
  }, 150);
  window.addEventListener("resize", onResize);

  return {
    el,
    draw,
    drawSoon,
    setTeacher(t, ts) {
      teacher = t;
      teacherSeries = ts;
      teacherToggle.hidden = false;
      draw();
    },
    destroy() {
      stopped = true;
      window.removeEventListener("resize", onResize);
      for (const p of panels.values()) charts.purge(p.el);
    },
  };
}
