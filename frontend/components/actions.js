// Buttons that act on the server: the demo, and cancel / resume / retry of a job.

import * as api from "../api.js";
import { h, toast } from "../ui.js";

export function demoButton({ className = "btn", onDone } = {}) {
  const btn = h(
    "button",
    {
      class: className,
      type: "button",
      title: "A worker renders a small synthetic set, then trains teacher → student → fine-tune",
      onclick: async () => {
        btn.disabled = true;
        btn.setAttribute("aria-busy", "true");
        const label = btn.textContent;
        btn.textContent = "Starting demo…";
        try {
          const res = await api.runDemo({});
          const chain = [res.synthesize, ...api.rows(res.jobs ?? [])].filter(Boolean);
          const ids = chain.map((j) => j.id ?? j).filter((x) => x !== undefined);
          toast(ids.length ? `Demo queued: data #${ids[0]} → jobs ${ids.slice(1).map((i) => `#${i}`).join(" → ")}.` : "Demo queued.", { kind: "success" });
          onDone && onDone(res);
        } catch (err) {
          toast(`Demo failed: ${err.message}`, { kind: "error", timeout: 10000 });
        } finally {
          btn.disabled = false;
          btn.removeAttribute("aria-busy");
          btn.textContent = label;
        }
      },
    },
    "Run demo",
  );
  return btn;
}

/** Job action buttons (cancel, resume, retry) wired to the API; onChange(job) after a success. */
export function actionButtons(job, { onChange, small = false } = {}) {
  const cls = small ? "btn btn-small" : "btn";
  const mk = (label, fn, extra = "", title = "") =>
    h(
      "button",
      {
        class: `${cls} ${extra}`,
        type: "button",
        title: title || undefined,
        "data-action": label.toLowerCase(),
        "aria-label": `${label} job #${job.id}`,
        onclick: async (e) => {
          const b = e.currentTarget;
          b.disabled = true;
          try {
            const res = await fn(job.id);
            toast(`${label}: job #${job.id} ${res && res.status ? `is ${res.status}` : "requested"}.`, { kind: "success" });
            onChange && onChange(res);
          } catch (err) {
            toast(`${label} failed: ${err.message}`, { kind: "error", timeout: 8000 });
          } finally {
            b.disabled = false;
          }
        },
      },
      label,
    );
  const out = [];
  if (["queued", "running", "waiting"].includes(job.status) && !job.cancel_requested) out.push(mk("Cancel", api.cancelJob, "btn-danger"));
  if (job.status === "failed" || job.status === "cancelled") {
    out.push(mk("Resume", api.resumeJob, "", "Continue from the last checkpoint"));
    out.push(mk("Retry", api.retryJob, "", "Start again as a new job with the same config"));
  }
  return out;
}
