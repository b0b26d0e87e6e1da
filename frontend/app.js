// Router and shell: hash routes -> views/*.js, the health indicator and the settings dialog.

import * as api from "./api.js";
import { h, clear, errorBox, spinner, toast } from "./ui.js";
import { parseHash } from "./url.js";
import { summariseHealth } from "./health.js";

const ROUTES = [
  { pattern: /^\/?$/, redirect: "#/jobs" },
  { pattern: /^\/jobs\/?$/, nav: "jobs", title: "Jobs", load: () => import("./views/jobs.js") },
  { pattern: /^\/jobs\/new\/?$/, nav: "jobs", title: "New job", load: () => import("./views/newjob.js") },
  { pattern: /^\/jobs\/(\d+)\/?$/, nav: "jobs", title: "Job", load: () => import("./views/job.js"), keys: ["id"] },
  { pattern: /^\/experiments\/?$/, nav: "experiments", title: "Experiments", load: () => import("./views/experiments.js") },
  { pattern: /^\/compare\/?$/, nav: "compare", title: "Compare", load: () => import("./views/compare.js") },
  { pattern: /^\/datasets\/?$/, nav: "datasets", title: "Datasets", load: () => import("./views/datasets.js") },
  { pattern: /^\/datasets\/(\d+)\/?$/, nav: "datasets", title: "Dataset", load: () => import("./views/datasets.js"), keys: ["id"] },
  { pattern: /^\/predict\/?$/, nav: "predict", title: "Predict", load: () => import("./views/predict.js") },
  { pattern: /^\/workers\/?$/, nav: "workers", title: "Workers", load: () => import("./views/workers.js") },
];

const main = document.getElementById("main");
let cleanup = null;
let renderSeq = 0;

async function route() {
  const seq = ++renderSeq;
  const { path, query } = parseHash();
  const match = ROUTES.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  if (typeof cleanup === "function") {
    try {
      cleanup();
    } catch (err) {
      console.warn("view cleanup failed", err);
    }
  }
  cleanup = null;
  if (!match) {
    setNav(null);
    document.title = "Not found · KD Video";
    clear(main, h("div", { class: "container" }, h("h1", {}, "Page not found"), h("p", {}, "No page at ", h("code", {}, path), ". ", h("a", { href: "#/jobs" }, "Go to jobs"))));
    return;
  }
  const { r, m } = match;
  if (r.redirect) {
    window.location.replace(r.redirect);
    return;
  }
  setNav(r.nav);
  document.title = `${r.title} · KD Video`;
  const params = Object.fromEntries((r.keys || []).map((k, i) => [k, m[i + 1]]));
  const container = h("div", { class: "container view", "data-view": r.nav });
  clear(main, container);
  container.append(spinner());
  try {
    const mod = await r.load();
    if (seq !== renderSeq) return;
    container.replaceChildren();
    const result = await mod.render(container, { params, query, setTitle: (t) => (document.title = `${t} · KD Video`) });
    if (seq !== renderSeq) {
      if (typeof result === "function") result();
      return;
    }
    cleanup = result;
  } catch (err) {
    if (seq !== renderSeq) return;
    console.warn(err);
    clear(container, errorBox(err, { retry: route }));
  }
}

// narrow screens: the nav folds behind the Menu button and closes again once an entry is chosen
function setupNavToggle() {
  const button = document.getElementById("nav-toggle");
  const nav = document.getElementById("main-nav");
  const set = (open) => {
    button.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  };
  button.addEventListener("click", () => set(button.getAttribute("aria-expanded") !== "true"));
  nav.addEventListener("click", (e) => e.target.closest("a") && set(false));
  document.addEventListener("keydown", (e) => e.key === "Escape" && button.getAttribute("aria-expanded") === "true" && (set(false), button.focus()));
}

function setNav(active) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

// ---- health indicator (header) ----

let healthTimer = null;
let healthDelay = 10000;

async function pollHealth() {
  const el = document.getElementById("health");
  const text = el.querySelector(".health-text");
  try {
    const hv = await api.health();
    const s = summariseHealth(hv);
    el.dataset.state = s.ok ? "ok" : "warn";
    const device = s.alive[0]?.device;
    text.textContent = !s.dbOk
      ? "Database down"
      : !s.brokerOk
        ? "Broker down"
        : s.alive.length
          ? `${s.alive.length} worker${s.alive.length > 1 ? "s" : ""}${device ? ` · ${device}` : ""}`
          : s.noWorkers
            ? "No workers"
            : "Up · set a token for details";
    healthDelay = 10000;
  } catch (err) {
    el.dataset.state = "down";
    text.textContent = err.status ? `Health ${err.status}` : "Server unreachable";
    healthDelay = Math.min(healthDelay * 2, 60000);
  }
  clearTimeout(healthTimer);
  healthTimer = setTimeout(pollHealth, document.hidden ? 60000 : healthDelay);
}

// ---- settings dialog ----

function setupSettings() {
  const dialog = document.getElementById("settings");
  const input = document.getElementById("token-input");
  document.getElementById("settings-button").addEventListener("click", () => {
    input.value = api.getToken();
    dialog.showModal();
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save") {
      api.setToken(input.value.trim());
      toast(input.value.trim() ? "Token saved." : "Token cleared.");
    } else if (dialog.returnValue === "clear") {
      api.setToken("");
      toast("Token cleared.");
    }
  });
}

window.addEventListener("hashchange", route);
window.addEventListener("unhandledrejection", (e) => {
  // Surface unexpected failures instead of failing silently.
  if (e.reason && e.reason.name === "AbortError") {
    e.preventDefault();
    return;
  }
  if (e.reason instanceof api.ApiError) {
    e.preventDefault();
    toast(e.reason.message, { kind: "error" });
  }
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) pollHealth();
});

setupSettings();
setupNavToggle();
pollHealth();
route();
