// The job page's log tail: GET /jobs/{id}/logs, refreshed while the job is active, plus lines streamed live.

import * as api from "../api.js";
import { h } from "../ui.js";

/** -> {el, load, append(line), stop}; isActive() says whether to keep polling. */
export function logTail(id, { isActive }) {
  const pre = h("pre", { class: "log", tabindex: "0", "aria-label": "Log tail", "data-testid": "log-tail" });
  let timer = null;
  let abort = null;
  let stopped = false;
  const atBottom = () => pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;

  async function load() {
    abort?.abort();
    abort = new AbortController();
    try {
      const { lines } = await api.jobLogs(id, 300, { signal: abort.signal });
      const stick = atBottom();
      pre.textContent = lines.length ? lines.join("\n") : "(no log lines yet)";
      if (stick) pre.scrollTop = pre.scrollHeight;
    } catch (err) {
      if (err.name !== "AbortError") pre.textContent = `Logs unavailable: ${err.message}`;
    }
    clearTimeout(timer);
    if (!stopped && isActive()) timer = setTimeout(load, document.hidden ? 30000 : 5000);
  }

  function append(line) {
    const stick = atBottom();
    pre.textContent += `\n${line}`;
    if (stick) pre.scrollTop = pre.scrollHeight;
  }

  const el = h("section", { class: "panel" },
    h("div", { class: "panel-head" }, h("h2", {}, "Log tail"), h("button", { class: "btn btn-small", type: "button", onclick: () => load() }, "Refresh")),
    pre);
  return {
    el,
    load,
    append,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      abort?.abort();
    },
  };
}
