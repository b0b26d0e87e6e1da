// Live job updates: server-sent events first; polling with backoff only when the stream is unavailable.

import * as api from "./api.js";
import { TERMINAL } from "./ui.js";

/**
 * Merges points into series in place; keeps each name sorted by step with one point per step.
 * Returns the number of points added or replaced.
 */
export function mergePoints(series, points) {
  let changed = 0;
  for (const p of points) {
    if (!p || p.name === undefined || p.value === undefined || p.value === null) continue;
    const arr = (series[p.name] ||= []);
    const pt = { step: p.step, epoch: p.epoch, value: Number(p.value), time: p.time };
    const last = arr[arr.length - 1];
    if (!last || pt.step > last.step) {
      arr.push(pt);
      changed++;
    } else if (pt.step === last.step) {
      if (last.value !== pt.value) changed++;
      arr[arr.length - 1] = pt;
    } else {
      // an older step (a replay after reconnecting, or a gap being filled): binary search its place
      let lo = 0;
      let hi = arr.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (arr[mid].step < pt.step) lo = mid + 1;
        else hi = mid;
      }
      if (arr[lo].step === pt.step) {
        if (arr[lo].value !== pt.value) changed++;
        arr[lo] = pt;
      } else {
        arr.splice(lo, 0, pt);
        changed++;
      }
    }
  }
  return changed;
}

/** The flat points an event payload carries, whichever of the usual shapes it has. */
export function eventPoints(data) {
  if (!data || typeof data !== "object") return [];
  if (Array.isArray(data)) return data.flatMap(eventPoints);
  if (Array.isArray(data.points) && data.name !== undefined) return data.points.map((p) => ({ name: data.name, ...p }));
  if (Array.isArray(data.metrics)) return data.metrics.flatMap(eventPoints);
  if (data.metrics && typeof data.metrics === "object") {
    return Object.entries(data.metrics).flatMap(([name, v]) =>
      typeof v === "number"
        ? [{ name, value: v, step: data.step, epoch: data.epoch, time: data.time }]
        : Array.isArray(v)
          ? v.map((p) => ({ name, ...p }))
          : [{ name, step: data.step, epoch: data.epoch, time: data.time, ...v }],
    );
  }
  if (data.series) return Object.entries(api.normaliseSeries(data)).flatMap(([name, pts]) => pts.map((p) => ({ name, ...p })));
  if (data.name !== undefined && data.value !== undefined) return [data];
  return [];
}

function maxStep(series) {
  let m = -1;
  for (const pts of Object.values(series)) if (pts.length) m = Math.max(m, pts[pts.length - 1].step ?? -1);
  return m;
}

/**
 * Follows a job. Calls onJob(partialOrFullJob), onPoints(points), onLog(line), onMode("live"|"polling"|"ended").
 * `series` is the caller's current data (to know where to resume when polling); `afterId` the last metric row id
 * it holds (jobHistory's lastId), so the stream sends only newer rows. The stream's status events carry the job's
 * moving fields (progress, ETA, queue position, epochs, times), so the job row is not refetched while it runs.
 * Returns stop().
 */
export function watchJob(id, { series, afterId = 0, onJob, onPoints, onLog, onMode, isTerminal }) {
  let stopped = false;
  let es = null;
  let pollTimer = null;
  let delay = 2000;
  let errorsBeforeOpen = 0;
  let opened = false;
  let catchingUp = null;

  const finished = () => isTerminal && isTerminal();

  async function catchUp() {
    if (catchingUp) return catchingUp;
    catchingUp = (async () => {
      const since = maxStep(series);
      const [job, fresh] = await Promise.all([
        api.getJob(id),
        api.jobMetrics(id, since >= 0 ? { sinceStep: since } : {}),
      ]);
      if (stopped) return false;
      const pts = Object.entries(fresh).flatMap(([name, arr]) => arr.map((p) => ({ name, ...p })));
      const added = pts.length ? onPoints(pts) : 0;
      const changedJob = onJob(job);
      return Boolean(added) || changedJob;
    })().finally(() => (catchingUp = null));
    return catchingUp;
  }

  function handle(type, raw) {
    if (stopped) return;
    let data = raw;
    try {
      data = JSON.parse(raw);
    } catch {
      /* plain text event */
    }
    if (type === "log" || type === "logs") {
      const lines = typeof data === "string" ? [data] : data.lines || (data.line ? [data.line] : data.message ? [data.message] : []);
      for (const l of lines) onLog && onLog(l);
      return;
    }
    if (data && typeof data === "object") {
      const pts = eventPoints(data);
      if (pts.length) onPoints(pts);
      const jobPart = data.job || (type !== "metric" && type !== "metrics" && ("status" in data || "progress" in data) ? data : null);
      if (jobPart) onJob(jobPart);
    }
    if (type === "end" || type === "done" || type === "close" || finished()) {
      // the job is over: one last catch-up, then stop listening
      close();
      catchUp().catch(() => {});
      onMode && onMode("ended");
    }
  }

  function close() {
    if (es) {
      es.close();
      es = null;
    }
  }

  function startSse() {
    // EventSource cannot send an Authorization header: with a token set, poll (fetch carries it)
    if (typeof EventSource === "undefined" || api.getToken()) return startPolling();
    // metric rows after the history's last id: nothing is replayed and nothing is missed; a reconnect sends
    // Last-Event-ID (the last row streamed), which the server prefers when it is newer
    es = new EventSource(api.eventsUrl(id, afterId));
    es.onopen = () => {
      opened = true;
      errorsBeforeOpen = 0;
      onMode && onMode("live");
    };
    es.onmessage = (e) => handle(e.type, e.data);
    for (const t of ["status", "job", "progress", "metric", "metrics", "log", "logs", "end", "done"]) {
      es.addEventListener(t, (e) => handle(t, e.data));
    }
    es.onerror = () => {
      if (stopped) return;
      if (finished()) {
        close();
        onMode && onMode("ended");
        return;
      }
      if (!es || es.readyState === EventSource.CLOSED || (!opened && ++errorsBeforeOpen >= 2)) {
        close();
        startPolling();
      } else {
        onMode && onMode("reconnecting");
      }
    };
  }

  function startPolling() {
    if (stopped || pollTimer) return;
    onMode && onMode("polling");
    const tick = async () => {
      pollTimer = null;
      if (stopped) return;
      let changed = false;
      try {
        changed = await catchUp();
      } catch {
        changed = false;
      }
      if (stopped) return;
      if (finished()) {
        onMode && onMode("ended");
        return;
      }
      delay = changed ? 2000 : Math.min(delay * 1.6, 30000);
      pollTimer = setTimeout(tick, document.hidden ? Math.max(delay, 15000) : delay);
    };
    pollTimer = setTimeout(tick, delay);
  }

  if (finished()) onMode && onMode("ended");
  else startSse();

  return function stop() {
    stopped = true;
    close();
    clearTimeout(pollTimer);
  };
}

export { TERMINAL };
