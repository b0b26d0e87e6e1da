// #/experiments: research grids submitted as jobs (the New experiment form, POST /experiments or
// python -m api.cli.experiments submit); each links to its Compare page (#/compare?experiment=ID).
// #/experiments?new=1 opens the form.

import * as api from "../api.js";
import { h, clear, statusBadge, fmtAgo, errorBox, emptyState, isActive, spinner } from "../ui.js";
import { experimentForm } from "../components/experimentform.js";
import { countsText } from "../components/jobinfo.js";


export async function render(root, { query }) {
  let timer = null;
  let stopped = false;
  let fresh = null; // the id of the experiment just submitted from the form
  const panel = h("section", { class: "panel", id: "new-experiment", hidden: true, "aria-labelledby": "new-experiment-title" },
    h("h2", { id: "new-experiment-title" }, "New experiment"));
  const formSlot = h("div");
  panel.append(formSlot);
  const toggle = h("button", { class: "btn btn-primary", type: "button", "aria-expanded": "false", "aria-controls": "new-experiment", onclick: () => open(panel.hidden) }, "New experiment");
  root.append(h("div", { class: "page-head" },
    h("div", {}, h("h1", {}, "Experiments"),
      h("p", { class: "lede" }, "Research grids submitted as jobs: teachers, KD students and no-KD baselines on one budget, each fine-tuned."),
      h("p", { class: "hint" }, "Submit one here, with ", h("code", {}, "python -m api.cli.experiments submit --dataset-id N --grid full"), " or ", h("code", {}, "POST /experiments"), ".")),
    h("div", { class: "actions" }, toggle)), panel);
  const wrap = h("div", { class: "table-wrap" }, h("div", { class: "loading", role: "status" }, "Loading experiments…"));
  root.append(wrap);

  let formLoaded = false;
  async function open(show) {
    panel.hidden = !show;
    toggle.setAttribute("aria-expanded", String(show));
    if (!show || formLoaded) return;
    formLoaded = true;
    clear(formSlot, spinner("Loading the form…"));
    try {
      clear(formSlot, await experimentForm({ onCreated: (exp) => {
        fresh = exp.id;
        open(false);
        refresh();
      } }));
    } catch (err) {
      formLoaded = false;
      clear(formSlot, errorBox(err));
    }
  }

  function table(rows) {
    return h("table", { class: "table experiments-table", "data-testid": "experiments-table" },
      h("caption", { class: "sr-only" }, "Experiments"),
      h("thead", {}, h("tr", {}, ["ID", "Name", "Grid", "Dataset", "Status", "Jobs", "Created", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((e) => h("tr", { "data-experiment-id": e.id, class: e.id === fresh ? "is-new" : undefined },
        h("td", { class: "col-id" }, `#${e.id}`),
        h("td", {}, h("a", { href: `#/compare?experiment=${e.id}` }, e.name)),
        h("td", {}, e.grid),
        h("td", {}, h("a", { href: `#/datasets/${e.dataset_id}` }, `#${e.dataset_id}`)),
        h("td", {}, statusBadge(e.status)),
        h("td", {}, String(e.jobs), h("div", { class: "sub" }, countsText(e.counts))),
        h("td", { class: "sub nowrap", title: e.created_at || "" }, fmtAgo(e.created_at)),
        h("td", {}, h("a", { class: "btn btn-small", href: `#/compare?experiment=${e.id}` }, "Compare"))))));
  }

  async function refresh() {
    clearTimeout(timer);
    if (stopped) return;
    let active = false;
    try {
      const rows = api.rows(await api.listExperiments({ limit: 100 }));
      if (stopped) return;
      active = rows.some((e) => isActive(e.status));
      clear(wrap, rows.length ? table(rows) : emptyState("No experiments yet.", "Submit a grid with the CLI or the API; its runs show up here and on the Compare page."));
    } catch (err) {
      clear(wrap, errorBox(err, { retry: refresh }));
    }
    timer = setTimeout(refresh, active ? 5000 : 30000);
  }

  if (query?.get("new")) open(true);
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
