// The job page's results (what the run produced) and configuration (what it was asked and resolved to).

import * as charts from "../charts.js";
import { h, fmtDate, fmtPct, kv, TERMINAL } from "../ui.js";
import { fmtMetric } from "./jobinfo.js";

const json = (title, value) => h("details", {}, h("summary", {}, title), h("pre", { class: "json" }, JSON.stringify(value, null, 2)));

export function resultsList(job) {
  const r = job.results;
  if (!r || !Object.keys(r).length) {
    return h("p", { class: "muted" }, TERMINAL.has(job.status) ? "No results recorded." : "Results appear when the job completes.");
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
  return [kv(pairs), json("All results (JSON)", r)];
}

export function configList(job) {
  const pairs = [
    ["Kind", job.kind],
    ["Created", fmtDate(job.created_at)],
    ["Started", fmtDate(job.started_at)],
    ["Finished", fmtDate(job.finished_at)],
    ["Attempts", `${job.attempts} of ${job.max_attempts}`],
    ["Config hash", h("code", {}, job.config_hash)],
    ["Code version", job.code_version ? h("code", {}, job.code_version) : undefined],
  ].filter(([, v]) => v !== undefined);
  return [kv(pairs), json("Request as submitted", job.request), json("Resolved training config", job.config)];
}
