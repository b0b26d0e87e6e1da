// #/workers — workers, their device, the job each runs, queue depth and the service checks.

import * as api from "../api.js";
import { summariseHealth } from "../health.js";
import { h, clear, errorBox, fmtAgo, statusBadge, emptyState, progressBar } from "../ui.js";
import { jobLabel, timingText, epochText } from "../components/jobinfo.js";

export async function render(root) {
  root.append(h("div", { class: "page-head" },
    h("div", {}, h("h1", {}, "Workers"), h("p", { class: "lede" }, "Who trains what, on which device, and what is waiting."))));
  const checks = h("div", { class: "cards" });
  const workersEl = h("section", { class: "panel" });
  const queueEl = h("section", { class: "panel" });
  root.append(checks, workersEl, queueEl);

  let timer = null;
  let stopped = false;
  let delay = 4000;

  async function refresh() {
    clearTimeout(timer);
    try {
      const [hv, running, queued, waiting] = await Promise.all([
        api.health(),
        api.listJobs({ status: "running", limit: 50 }),
        api.listJobs({ status: "queued", limit: 50 }),
        api.listJobs({ status: "waiting", limit: 50 }),
      ]);
      if (stopped) return;
      draw(hv, api.rows(running), queued, waiting);
      delay = 4000;
    } catch (err) {
      if (stopped) return;
      clear(workersEl, errorBox(err, { retry: refresh }));
      delay = Math.min(delay * 2, 60000);
    }
    if (!stopped) timer = setTimeout(refresh, document.hidden ? 30000 : delay);
  }

  function draw(hv, running, queuedPage, waitingPage) {
    const s = summariseHealth(hv);
    const queued = api.rows(queuedPage);
    const queueDepth = queuedPage.count;
    const waitingDepth = waitingPage.count;
    const card = (label, ok, value, sub, testid) => h("div", { class: `card ${ok === false ? "card-bad" : ""}`, "data-testid": testid },
      h("div", { class: "card-label" }, label), h("div", { class: "card-value" }, ok === undefined ? value : h("span", { class: ok ? "good" : "bad" }, value)), sub ? h("div", { class: "card-sub" }, sub) : null);
    clear(checks,
      card("Database", s.dbOk, s.dbOk ? "OK" : "Down", detailOf(hv.database)),
      card("Broker", s.brokerOk, s.brokerOk ? "OK" : "Down", detailOf(hv.broker)),
      card("Workers", s.alive.length > 0, String(s.alive.length), s.alive.length ? "alive" : "start one: celery worker", "workers-count"),
      card("Queue depth", undefined, String(queueDepth), `${waitingDepth} waiting on a predecessor`, "queue-depth"),
      hv.auth_required !== undefined ? card("Auth", undefined, hv.auth_required ? "Token required" : "Open", hv.auth_required ? (api.getToken() ? "token set in Settings" : "set a token in Settings") : "loopback server") : null);

    const byId = new Map(running.map((j) => [j.id, j]));
    clear(workersEl, h("h2", {}, "Workers"), s.workers.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "table" },
          h("thead", {}, h("tr", {}, ["Worker", "Device", "Current job", "Progress", "Heartbeat", "Up since", "Code"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, s.workers.map((w) => {
            const jid = w.current_job_id ?? w.job_id;
            const job = jid !== undefined && jid !== null ? byId.get(jid) : null;
            return h("tr", { "data-worker": w.hostname },
              h("td", {}, h("span", { class: "mono" }, w.hostname || w.name || "—"), w.pid ? h("div", { class: "sub" }, `pid ${w.pid}`) : null),
              h("td", {}, h("span", { class: "device" }, w.device || "—")),
              h("td", {}, jid !== undefined && jid !== null ? h("a", { href: `#/jobs/${jid}` }, job ? jobLabel(job) : `#${jid}`) : h("span", { class: "muted" }, "idle")),
              h("td", { class: "col-progress" }, job ? [progressBar(job.progress, { label: `job #${job.id} progress`, status: job.status }), h("div", { class: "sub" }, [epochText(job), timingText(job)].filter(Boolean).join(" · "))] : "—"),
              h("td", { title: w.heartbeat_at || "" }, fmtAgo(w.heartbeat_at)),
              h("td", { title: w.started_at || "" }, fmtAgo(w.started_at)),
              h("td", { class: "mono sub" }, w.code_version || "—"));
          }))))
      : emptyState("No workers are running.", "Jobs wait in the queue until a worker starts. Start one with the worker command (the embedded server starts one for you)."));

    clear(queueEl, h("h2", {}, `Queue (${queueDepth})`), queued.length
      ? h("ol", { class: "queue" }, queued.map((j) => h("li", {}, h("a", { href: `#/jobs/${j.id}` }, jobLabel(j)), " ", statusBadge(j.status), h("span", { class: "muted" }, ` ${timingText(j)} · queued ${fmtAgo(j.queued_at || j.created_at)}`))))
      : h("p", { class: "muted" }, "Nothing is waiting."));
  }

  function detailOf(check) {
    if (!check || typeof check !== "object") return "";
    return check.detail || "";
  }

  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
