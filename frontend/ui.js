// DOM helpers and formatting shared by the views. Text is always set as text, never parsed as HTML.

/**
 * h("button", {class: "btn", onclick: fn, "aria-label": "x"}, "Text", child)
 * Attributes: class, style (object or string), dataset (object), on* handlers, boolean attributes.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = Array.isArray(v) ? v.filter(Boolean).join(" ") : v;
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value" && "value" in el) el.value = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
export const nextId = (prefix = "f") => `${prefix}-${++uid}`;

// ---- formatting ----

export function fmtNumber(v, digits = 4) {
  if (v === undefined || v === null || v === "") return "—";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return v.toLocaleString();
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toString();
}

export const fmtPct = (v, digits = 1) =>
  v === undefined || v === null || !Number.isFinite(v) ? "—" : `${(v * 100).toFixed(digits)}%`;

export function fmtDuration(seconds) {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

export function parseTime(t) {
  if (!t) return null;
  if (typeof t === "number") return t > 1e12 ? t : t * 1000;
  // naive ISO strings from the server are UTC
  const s = /[zZ]|[+-]\d\d:?\d\d$/.test(t) ? t : `${t}Z`;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? null : ms;
}

export function fmtAgo(t) {
  const ms = parseTime(t);
  if (ms === null) return "—";
  const d = (Date.now() - ms) / 1000;
  if (d < 5) return "just now";
  if (d < 0) return "in " + fmtDuration(-d);
  return `${fmtDuration(d)} ago`;
}

export function fmtDate(t) {
  const ms = parseTime(t);
  return ms === null ? "—" : new Date(ms).toLocaleString();
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// ---- small components ----

export const STATUS_LABEL = {
  waiting: "Waiting",
  queued: "Queued",
  running: "Running",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
};

export const TERMINAL = new Set(["completed", "failed", "cancelled"]);
export const isActive = (status) => status === "running" || status === "queued" || status === "waiting";

export function statusBadge(status) {
  const s = String(status || "unknown").toLowerCase();
  return h("span", { class: `badge status-${s}` }, h("span", { class: "dot", "aria-hidden": "true" }), STATUS_LABEL[s] || s);
}

export function progressBar(fraction, { label, status } = {}) {
  const pct = Math.max(0, Math.min(1, Number(fraction) || 0)) * 100;
  return h(
    "div",
    {
      class: `progress status-${status || ""}`,
      role: "progressbar",
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": pct.toFixed(0),
      "aria-label": label || "progress",
    },
    h("div", { class: "progress-fill", style: { width: `${pct}%` } }),
  );
}

/** Horizontal bars with text values: [{label, value, note?}] with value in [0, max]. */
export function barList(items, { max, format = fmtNumber, className = "" } = {}) {
  const top = max ?? Math.max(1e-9, ...items.map((i) => i.value));
  return h(
    "ul",
    { class: `bars ${className}` },
    items.map((it, idx) =>
      h(
        "li",
        { class: idx === 0 ? "bar top" : "bar" },
        h("span", { class: "bar-label", title: it.label }, it.label),
        h(
          "span",
          { class: "bar-track", "aria-hidden": "true" },
          h("span", { class: "bar-fill", style: { width: `${Math.max(0, Math.min(1, it.value / top)) * 100}%` } }),
        ),
        h("span", { class: "bar-value" }, format(it.value)),
      ),
    ),
  );
}

export function emptyState(title, text, ...actions) {
  return h("div", { class: "empty" }, h("p", { class: "empty-title" }, title), text ? h("p", {}, text) : null, actions.length ? h("div", { class: "actions" }, actions) : null);
}

export function errorBox(err, { retry } = {}) {
  return h(
    "div",
    { class: "alert alert-error", role: "alert" },
    h("strong", {}, err && err.status ? `Error ${err.status}: ` : "Error: "),
    err && err.message ? err.message : String(err),
    retry ? h("button", { class: "btn btn-small", type: "button", onclick: retry }, "Try again") : null,
  );
}

export function spinner(text = "Loading…") {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

/** Key/value description list; values may be nodes. */
export function kv(pairs) {
  return h(
    "dl",
    { class: "kv" },
    pairs.filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v === undefined || v === null || v === "" ? "—" : v)]),
  );
}

// ---- toasts (aria-live) ----

export function toast(message, { kind = "info", timeout = 5000 } = {}) {
  const region = document.getElementById("toasts");
  if (!region) return;
  const el = h(
    "div",
    { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", {}, message),
    h("button", { class: "toast-close", type: "button", "aria-label": "Dismiss", onclick: () => el.remove() }, "×"),
  );
  region.append(el);
  if (timeout) setTimeout(() => el.remove(), timeout);
}

/** Announce to screen readers without a visible toast. */
export function announce(message) {
  const el = document.getElementById("announcer");
  if (el) {
    el.textContent = "";
    setTimeout(() => (el.textContent = message), 30);
  }
}

export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename, style: { display: "none" } });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function debounce(fn, ms = 200) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

export function jobTitle(job) {
  if (!job) return "—";
  return job.name || `${job.kind} · ${backboneOf(job)}`;
}

export function backboneOf(job) {
  return job?.backbone || job?.config?.model?.backbone || job?.request?.backbone || "—";
}

export function widthOf(job) {
  return job?.width ?? job?.config?.model?.width ?? job?.request?.width;
}

/** Calls fn at most once per ms, the last call of a burst included. */
export function throttle(fn, ms) {
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
