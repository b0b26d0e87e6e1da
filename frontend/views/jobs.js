// #/jobs: every job with its status, progress, ETA, queue position and teacher; filters; selection to compare.

import * as api from "../api.js";
import { replaceQuery } from "../url.js";
import { h, clear, statusBadge, progressBar, fmtAgo, errorBox, emptyState, announce, isActive, nextId } from "../ui.js";
import { KIND_LABEL, STATUSES, teacherId, sourceId, jobLink, modelText, kdTag, timingText, epochText, headline } from "../components/jobinfo.js";
import { demoButton, actionButtons } from "../components/actions.js";
import { jobKinds } from "../components/jobfields.js";

const PAGE = 50;

export async function render(root, { query }) {
  const filters = {
    kind: query.get("kind") || "",
    status: query.get("status") || "",
    dataset_id: query.get("dataset_id") || "",
    offset: Number(query.get("offset") || 0),
  };
  const selected = new Set();
  let datasets = [];
  let timer = null;
  let delay = 3000;
  let stopped = false;
  let lastSignature = "";
  let controller = null;

  const count = h("span", { class: "muted", "aria-live": "polite" });
  const compareBtn = h("a", { class: "btn", href: "#/compare", "aria-disabled": "true", "data-testid": "compare-selected" }, "Compare selected");
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Jobs"), h("p", { class: "lede" }, "Teachers, students, fine-tunes and evaluations. Click a row to watch it converge.")),
      h("div", { class: "actions" }, compareBtn, demoButton({ onDone: () => refresh(true) }), h("a", { class: "btn btn-primary", href: "#/jobs/new" }, "New job")),
    ),
  );

  const kinds = await jobKinds(); // the server's names (GET /openapi.json)
  const kindSel = select("Kind", "kind", [["", "All kinds"], ...kinds.map((k) => [k, KIND_LABEL[k] || k])]);
  const statusSel = select("Status", "status", [["", "All statuses"], ...STATUSES.map((s) => [s, s[0].toUpperCase() + s.slice(1)])]);
  const datasetSel = select("Dataset", "dataset_id", [["", "All datasets"]]);
  root.append(h("form", { class: "filters", role: "search", "aria-label": "Filter jobs", onsubmit: (e) => e.preventDefault() }, kindSel.wrap, statusSel.wrap, datasetSel.wrap, count));

  const tableWrap = h("div", { class: "table-wrap" });
  const pager = h("div", { class: "pager" });
  root.append(tableWrap, pager);

  function select(label, key, options) {
    const id = nextId("filter");
    const el = h("select", { id, name: key, onchange: () => {
      filters[key] = el.value;
      filters.offset = 0;
      replaceQuery({ kind: filters.kind, status: filters.status, dataset_id: filters.dataset_id });
      refresh(true);
    } }, options.map(([v, t]) => h("option", { value: v }, t)));
    el.value = filters[key];
    return { el, wrap: h("div", { class: "field field-inline" }, h("label", { for: id }, label), el) };
  }

  function updateCompare() {
    const ids = [...selected];
    compareBtn.href = `#/compare?ids=${ids.join(",")}`;
    compareBtn.textContent = ids.length ? `Compare selected (${ids.length})` : "Compare selected";
    if (ids.length >= 1) compareBtn.removeAttribute("aria-disabled");
    else compareBtn.setAttribute("aria-disabled", "true");
  }
  compareBtn.addEventListener("click", (e) => {
    if (!selected.size) {
      e.preventDefault();
      announce("Select runs with the checkboxes first.");
    }
  });

  async function loadDatasets() {
    try {
      datasets = api.rows(await api.listDatasets());
      for (const d of datasets) datasetSel.el.append(h("option", { value: String(d.id) }, `#${d.id} ${d.name || d.path}`));
      datasetSel.el.value = filters.dataset_id;
    } catch {
      /* the filter just stays short */
    }
  }

  function datasetName(id) {
    if (id === undefined || id === null) return "—";
    const d = datasets.find((x) => x.id === id);
    return h("a", { href: `#/datasets/${id}`, title: d ? d.path : "" }, d ? d.name || `#${id}` : `#${id}`);
  }

  function renderTable(payload) {
    const jobs = api.rows(payload);
    const total = payload.count;
    count.textContent = `${total} job${total === 1 ? "" : "s"}`;
    if (!jobs.length) {
      const filtered = filters.kind || filters.status || filters.dataset_id;
      clear(
        tableWrap,
        filtered
          ? emptyState("No jobs match these filters.", "", h("a", { class: "btn", href: "#/jobs" }, "Clear filters"))
          : emptyState(
              "No jobs yet.",
              "Run the demo to generate a small synthetic set and train a teacher, a student and a classifier on it — or register your own videos.",
              demoButton({ className: "btn btn-primary", onDone: () => refresh(true) }),
              h("a", { class: "btn", href: "#/datasets" }, "Register a dataset"),
            ),
      );
      clear(pager);
      return;
    }
    const tbody = h("tbody");
    for (const job of jobs) {
      const checkId = `sel-${job.id}`;
      const t = teacherId(job);
      const s = sourceId(job);
      const head = headline(job);
      const box = h("input", {
        type: "checkbox",
        id: checkId,
        checked: selected.has(job.id),
        "aria-label": `Select job #${job.id} to compare`,
        onchange: (e) => {
          if (e.target.checked) selected.add(job.id);
          else selected.delete(job.id);
          updateCompare();
        },
      });
      const tr = h(
        "tr",
        { class: `row-link status-row-${job.status}`, "data-job-id": job.id, "data-status": job.status },
        h("td", { class: "col-check" }, box),
        h("td", { class: "col-id", "data-label": "ID" }, jobLink(job.id)),
        h(
          "td",
          { "data-label": "Job" },
          h("a", { href: `#/jobs/${job.id}`, class: "job-name" }, job.name || KIND_LABEL[job.kind] || job.kind),
          h("div", { class: "sub" }, job.kind, kdTag(job) ? ` · ${kdTag(job)}` : ""),
        ),
        h("td", { "data-label": "Backbone" }, h("span", { class: "mono" }, modelText(job))),
        h("td", { "data-label": "Dataset" }, datasetName(job.dataset_id)),
        h("td", { "data-label": "Teacher / source" }, t !== null ? h("span", {}, "teacher ", jobLink(t)) : s !== null ? h("span", {}, "from ", jobLink(s)) : h("span", { class: "muted" }, "—")),
        h("td", { "data-label": "Status" }, statusBadge(job.status), job.cancel_requested && isActive(job.status) ? h("div", { class: "sub" }, "cancelling…") : null),
        h(
          "td",
          { class: "col-progress", "data-label": "Progress" },
          progressBar(job.progress, { label: `Job #${job.id} progress`, status: job.status }),
          h("div", { class: "sub" }, [epochText(job), timingText(job)].filter(Boolean).join(" · ") || (head ? `${head.label} ${head.text}` : job.status === "failed" ? "failed" : "")),
        ),
        h("td", { class: "sub nowrap", "data-label": "Created", title: job.created_at || "" }, fmtAgo(job.created_at)),
        h(
          "td",
          { class: "col-actions" },
          actionButtons(job, { small: true, onChange: () => refresh(true) }),
          job.status === "completed" && (job.kind === "pretrain" || job.kind === "distill")
            ? [
                h("a", { class: "btn btn-small", href: `#/jobs/new?kind=distill&teacher_job_id=${job.id}`, title: "Distill a student from this teacher" }, "Distill"),
                h("a", { class: "btn btn-small", href: `#/jobs/new?kind=finetune&source_job_id=${job.id}`, title: "Fine-tune this backbone into a classifier" }, "Fine-tune"),
              ]
            : null,
        ),
      );
      tr.addEventListener("click", (e) => {
        if (e.target.closest("a, button, input, label")) return;
        window.location.hash = `#/jobs/${job.id}`;
      });
      tbody.append(tr);
    }
    const table = h(
      "table",
      { class: "table jobs-table card-rows" },
      h("caption", { class: "sr-only" }, "Jobs"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col", class: "col-check" }, h("span", { class: "sr-only" }, "Select")),
          ["ID", "Job", "Backbone", "Dataset", "Teacher / source", "Status", "Progress", "Created"].map((c) => h("th", { scope: "col" }, c)),
          h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")),
        ),
      ),
      tbody,
    );
    clear(tableWrap, table);
    renderPager(total);
  }

  function renderPager(total) {
    clear(pager);
    if (total <= PAGE) return;
    const from = filters.offset + 1;
    const to = Math.min(total, filters.offset + PAGE);
    const go = (off) => {
      filters.offset = off;
      refresh(true);
    };
    pager.append(
      h("button", { class: "btn btn-small", type: "button", disabled: filters.offset === 0, onclick: () => go(Math.max(0, filters.offset - PAGE)) }, "← Newer"),
      h("span", { class: "muted" }, `${from}–${to} of ${total}`),
      h("button", { class: "btn btn-small", type: "button", disabled: to >= total, onclick: () => go(filters.offset + PAGE) }, "Older →"),
    );
  }

  async function refresh(force = false) {
    clearTimeout(timer);
    if (stopped) return;
    controller?.abort();
    controller = new AbortController();
    try {
      const payload = await api.listJobs(
        { kind: filters.kind, status: filters.status, dataset_id: filters.dataset_id, limit: PAGE, offset: filters.offset },
        { signal: controller.signal },
      );
      if (stopped) return;
      const jobs = api.rows(payload);
      const signature = JSON.stringify(jobs.map((j) => [j.id, j.status, j.progress, j.epoch, j.queue_position, j.eta_s, j.cancel_requested])) + payload.count;
      if (force || signature !== lastSignature) {
        const focused = document.activeElement && document.activeElement.closest(".jobs-table") ? document.activeElement.id : null;
        renderTable(payload);
        if (focused) document.getElementById(focused)?.focus();
      }
      lastSignature = signature;
      delay = jobs.some((j) => isActive(j.status)) ? 2500 : 10000;
    } catch (err) {
      if (err.name === "AbortError" || stopped) return;
      clear(tableWrap, errorBox(err, { retry: () => refresh(true) }));
      delay = Math.min(delay * 2, 60000);
    }
    timer = setTimeout(refresh, document.hidden ? Math.max(delay, 30000) : delay);
  }

  tableWrap.append(h("div", { class: "loading", role: "status" }, "Loading jobs…"));
  await Promise.all([loadDatasets(), refresh(true)]);
  updateCompare();
  const onVisible = () => !document.hidden && refresh();
  document.addEventListener("visibilitychange", onVisible);
  return () => {
    stopped = true;
    clearTimeout(timer);
    controller?.abort();
    document.removeEventListener("visibilitychange", onVisible);
  };
}
