// The only module that talks to the server: one function per endpoint.
// Errors become ApiError, carrying the FastAPI `detail` (a string, or a list of {loc, msg}).

const TOKEN_KEY = "kdvideo.token";

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives for this page only */
  }
}

export class ApiError extends Error {
  constructor(status, detail, { method, path } = {}) {
    super(ApiError.describe(status, detail));
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.method = method;
    this.path = path;
  }

  static describe(status, detail) {
    if (typeof detail === "string" && detail) return detail;
    if (Array.isArray(detail) && detail.length) {
      return detail.map((d) => (d.loc ? `${fieldName(d.loc) || "request"}: ${d.msg}` : d.msg || String(d))).join("; ");
    }
    if (detail && typeof detail === "object") return detail.message || detail.msg || JSON.stringify(detail);
    if (status === 0) return "The server cannot be reached. Is it running?";
    return `The server answered ${status}.`;
  }

  /** Validation errors keyed by field name ("width", "distill.alpha", ...); "" for request-wide ones. */
  get fieldErrors() {
    const out = {};
    if (!Array.isArray(this.detail)) return out;
    for (const d of this.detail) {
      const key = d.loc ? fieldName(d.loc) : "";
      out[key] = out[key] ? `${out[key]}; ${d.msg}` : d.msg;
    }
    return out;
  }
}

/** ["body", "optim", "lr"] -> "optim.lr"; drops the location and pydantic's union tags. */
function fieldName(loc) {
  const parts = loc.filter((p, i) => !(i === 0 && ["body", "query", "path", "header"].includes(p)));
  return parts.filter((p) => typeof p === "string" && !p.includes("[") && !p.startsWith("function-")).join(".");
}

function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    url.searchParams.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  return url.pathname + url.search;
}

async function request(method, path, { query, json, form, accept = "application/json", signal, withHeaders = false, accepted = [] } = {}) {
  const headers = { Accept: accept };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // the browser sets the multipart boundary
  }
  const url = buildUrl(path, query);
  let res;
  try {
    res = await fetch(url, { method, headers, body, signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, null, { method, path });
  }
  const type = res.headers.get("Content-Type") || "";
  const payload = type.includes("json") ? await res.json().catch(() => null) : await res.text();
  if (!res.ok && !accepted.includes(res.status)) {
    let detail = payload && typeof payload === "object" ? payload.detail : payload;
    if (typeof detail === "string" && detail.trim().startsWith("<")) detail = null; // an HTML error page
    if (res.status === 401 && !(typeof detail === "string" && detail.includes("Settings"))) {
      detail = `${typeof detail === "string" && detail ? detail : "This server needs an API token."} Set it in Settings (top right).`;
    }
    if (res.status === 413 && !detail) detail = "The file is too large for the server.";
    throw new ApiError(res.status, detail, { method, path });
  }
  return withHeaders ? { payload, headers: res.headers } : payload;
}

const get = (path, opts) => request("GET", path, opts);
const post = (path, json, opts = {}) => request("POST", path, { ...opts, json });

// ---- service ----
/** 200 ok/degraded, 503 unavailable (database or broker down): both carry the health body. Without a token on a
 * server that needs one, only {status, problems, auth_required}. */
export const health = (opts) => get("/health", { ...opts, accepted: [503] });
export const openapi = () => get("/openapi.json");

// ---- datasets ----
export const listDatasets = (opts) => get("/datasets", opts);
export const getDataset = (id, opts) => get(`/datasets/${id}`, opts);
export const createDataset = (body) => post("/datasets", body);
export const createSyntheticDataset = (body) => post("/datasets/synthetic", body);

// ---- jobs ----
/** @param {{kind?, status?, dataset_id?, limit?, offset?}} params -> {data, count} */
export const listJobs = (params = {}, opts = {}) => get("/jobs", { ...opts, query: params });
export const getJob = (id, opts) => get(`/jobs/${id}`, opts);
export const createJob = (body) => post("/jobs", body);
/** -> {kind, values: {field: default}, inherited: [fields from the source job], clips: {name: {frames, crop}}} */
export const jobDefaults = (kind, opts) => get("/jobs/defaults", { ...opts, query: { kind } });
export const cancelJob = (id) => post(`/jobs/${id}/cancel`);
export const resumeJob = (id) => post(`/jobs/${id}/resume`);
export const retryJob = (id) => post(`/jobs/${id}/retry`);
export const runDemo = (body = {}) => post("/demo", body);

/** -> {name: [{step, epoch, value, time}]} (normalised from whichever shape the server sends) */
export async function jobMetrics(id, { names, sinceStep, maxPoints } = {}, opts = {}) {
  const raw = await get(`/jobs/${id}/metrics`, {
    ...opts,
    query: { names, since_step: sinceStep, max_points: maxPoints },
  });
  return normaliseSeries(raw);
}

export const jobMetricsCsv = (id, { names } = {}) =>
  get(`/jobs/${id}/metrics`, { query: { names }, accept: "text/csv" });
export const jobLogs = (id, tail = 200, opts) => get(`/jobs/${id}/logs`, { ...opts, query: { tail } });
export const checkpointUrl = (id) => `/jobs/${id}/checkpoint`;
/** The job's event stream; with afterId, only metric rows newer than that id (see jobHistory). */
export const eventsUrl = (id, afterId) => `/jobs/${id}/events${afterId ? `?after_id=${afterId}` : ""}`;

/** -> {series, lastId}: the metric history and the id to stream after, so the stream does not replay it. */
export async function jobHistory(id, { maxPoints } = {}, opts = {}) {
  const { payload, headers } = await get(`/jobs/${id}/metrics`, { ...opts, withHeaders: true, query: { max_points: maxPoints } });
  return { series: normaliseSeries(payload), lastId: Number(headers.get("X-Last-Metric-Id")) || 0 };
}

/** Checkpoint download through fetch so a bearer token can ride along; falls back to a plain link. */
export async function downloadCheckpoint(id) {
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(checkpointUrl(id), { headers }).catch(() => null);
  if (!res) throw new ApiError(0, null);
  if (!res.ok) {
    const payload = await res.json().catch(() => null);
    throw new ApiError(res.status, payload && payload.detail);
  }
  const blob = await res.blob();
  const disposition = res.headers.get("Content-Disposition") || "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  return { blob, filename: match ? decodeURIComponent(match[1]) : `job-${id}.pt` };
}

// ---- experiments (research grids submitted as jobs) ----
/** -> {data: [{id, name, grid, status, jobs, counts, created_at}], count} */
export const listExperiments = (params = {}, opts = {}) => get("/experiments", { ...opts, query: params });
/** -> {id, name, status, counts, request, runs: [{job_id, role, backbone, teacher_backbone, fraction, seed, ...}]} */
export const getExperiment = (id, opts) => get(`/experiments/${id}`, opts);
export const createExperiment = (body) => post("/experiments", body);
/** -> {jobs, roles: {teacher, student, baseline, finetune}}: what createExperiment would submit (nothing written) */
export const planExperiment = (body, opts = {}) => post("/experiments/plan", body, opts);
/** Cancels every unfinished job of the experiment -> the experiment (running jobs stop within a step or two). */
export const cancelExperiment = (id) => post(`/experiments/${id}/cancel`);

// ---- models and prediction ----
export const listModels = (opts) => get("/models", opts);

/** multipart POST /predict -> {model, top_k: [{label, score}], clips, frames_sampled, thumbnails, latency_ms} */
export function predict(file, { model, topK = 5, thumbnails = true } = {}) {
  const form = new FormData();
  form.append("file", file, file.name);
  if (model !== undefined && model !== null && model !== "") form.append("model", String(model));
  form.append("top_k", String(topK));
  if (thumbnails) form.append("thumbnails", "true");
  return request("POST", "/predict", { form });
}

// ---- shapes ----

/** Accepts {name: [...]}, {series: {...}}, {data: [{name, points}]} or a flat list of rows. */
export function normaliseSeries(raw) {
  const out = {};
  if (!raw) return out;
  let src = raw.series || raw.metrics || raw.data || raw;
  if (Array.isArray(src)) {
    for (const item of src) {
      if (item && Array.isArray(item.points)) {
        (out[item.name] ||= []).push(...item.points);
      } else if (item && item.name !== undefined) {
        (out[item.name] ||= []).push(item);
      }
    }
    return out;
  }
  if (typeof src === "object") {
    for (const [name, pts] of Object.entries(src)) {
      if (Array.isArray(pts)) out[name] = pts;
      else if (pts && Array.isArray(pts.points)) out[name] = pts.points;
    }
  }
  return out;
}

/** A list endpoint may answer {data, count} or a bare list. */
export function rows(payload) {
  if (Array.isArray(payload)) return payload;
  if (payload && Array.isArray(payload.data)) return payload.data;
  return [];
}
