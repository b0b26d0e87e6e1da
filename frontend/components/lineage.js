// A job's place in its chain: teacher or source above it, the jobs that use it below, and its dataset.

import { h, statusBadge } from "../ui.js";
import { jobLink, jobLabel } from "./jobinfo.js";

const ref = (j) => [jobLink(j.id, jobLabel(j)), " ", statusBadge(j.status)];

/** job.lineage is the server's {teacher, source, after, children} (JobRefs); teacher: the full teacher row if loaded. */
export function lineage(job, { teacher = null } = {}) {
  const l = job.lineage || {};
  const chain = h("ol", { class: "lineage" });
  const t = teacher || l.teacher;
  if (t) chain.append(h("li", {}, h("span", { class: "muted" }, "teacher "), ...ref(t)));
  if (l.source) chain.append(h("li", {}, h("span", { class: "muted" }, "source "), ...ref(l.source)));
  chain.append(h("li", { class: "current", "aria-current": "true" }, h("strong", {}, jobLabel(job))));
  const kids = l.children || [];
  if (kids.length) chain.append(h("li", {}, h("span", { class: "muted" }, "used by "), h("ul", { class: "inline-list" }, kids.map((c) => h("li", {}, ...ref(c))))));
  const dataset = job.dataset_id !== null && job.dataset_id !== undefined
    ? h("p", {}, "Dataset ", h("a", { href: `#/datasets/${job.dataset_id}` }, `#${job.dataset_id}`))
    : null;
  return [chain, dataset];
}
