// #/predict?model=7 — drop a video, pick a fine-tuned model, press Classify (one prediction per press), read the
// top-k (k = min(5, classes)), the sampled frames and latency.

import * as api from "../api.js";
import { h, clear, errorBox, emptyState, barList, fmtPct, fmtNumber, fmtBytes, fmtAgo, announce } from "../ui.js";
import { demoButton } from "../components/actions.js";

export async function render(root, { query }) {
  root.append(h("div", { class: "page-head" },
    h("div", {}, h("h1", {}, "Predict"), h("p", { class: "lede" }, "Classify a clip with a fine-tuned model."))));

  let models = [];
  try {
    // a bare list, best first; imports (kind "import") are teachers, not classifiers /predict can serve
    models = (await api.listModels()).filter((m) => (m.kind || "finetune") === "finetune");
  } catch (err) {
    root.append(errorBox(err));
    return;
  }
  if (!models.length) {
    root.append(emptyState("No fine-tuned models yet.", "A model appears here when a fine-tune job completes. The demo trains a teacher, a student and a classifier on a synthetic set.",
      demoButton({ className: "btn btn-primary" }), h("a", { class: "btn", href: "#/jobs/new?kind=finetune" }, "Fine-tune a model")));
    return;
  }

  const modelSel = h("select", { id: "predict-model", name: "model" }, models.map((m) => h("option", { value: String(m.id) }, modelName(m))));
  const want = query.get("model");
  modelSel.value = want && models.some((m) => String(m.id) === want) ? want : String(models[0].id);
  const modelInfo = h("div", { class: "model-info" });

  const fileInput = h("input", { type: "file", id: "predict-file", name: "file", accept: "video/*,.avi,.mp4,.mkv,.webm,.mov", class: "file-input" });
  const fileName = h("span", { class: "drop-file", "aria-live": "polite" }, "No file chosen");
  const drop = h("label", { class: "dropzone", for: "predict-file", "data-testid": "dropzone" },
    h("span", { class: "drop-icon", "aria-hidden": "true" }, "⬆"),
    h("span", { class: "drop-title" }, "Drop a video here, or ", h("span", { class: "link" }, "choose a file")),
    h("span", { class: "hint" }, "AVI, MP4, MKV, WebM"),
    fileName);
  const preview = h("video", { class: "preview", controls: true, muted: true, hidden: true, preload: "metadata", "aria-label": "Preview of the chosen video" });
  const runBtn = h("button", { class: "btn btn-primary", type: "submit", disabled: true }, "Classify");
  const form = h("form", { class: "predict-form", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "predict-model" }, "Model"), modelSel, modelInfo),
    h("div", { class: "field" }, h("span", { class: "label", id: "file-label" }, "Video"), fileInput, drop),
    h("div", { class: "actions" }, runBtn));

  const result = h("section", { class: "panel predict-result", "aria-live": "polite", "aria-busy": "false", "data-testid": "predict-result" },
    h("p", { class: "muted" }, "Choose a video and press Classify: the most likely classes appear here."));
  root.append(h("div", { class: "predict-layout" }, h("section", { class: "panel" }, form, preview), result));

  let file = null;
  let previewUrl = null;

  const currentModel = () => models.find((x) => String(x.id) === modelSel.value);
  /** How many classes to ask for: five, or all of them when the model has fewer. */
  const topK = (m) => Math.max(1, Math.min(5, m?.labels || 5));

  function showModel() {
    const m = currentModel();
    if (!m) return clear(modelInfo);
    const acc = testAccuracy(m);
    clear(modelInfo,
      h("span", {}, `${m.backbone || "?"}${m.width && m.width !== 1 ? ` ×${fmtNumber(m.width)}` : ""} · ${m.labels ?? "?"} classes`),
      acc !== undefined ? h("span", {}, ` · test ${fmtPct(acc)}`) : null,
      m.finished_at ? h("span", { class: "muted" }, ` · ${fmtAgo(m.finished_at)}`) : null,
      m.protocol ? h("div", { class: "hint" }, m.protocol) : null,
      h("div", {}, h("a", { href: `#/jobs/${m.id}` }, `job #${m.id}`), m.source_job_id ? [" · from ", h("a", { href: `#/jobs/${m.source_job_id}` }, `#${m.source_job_id}`)] : null));
  }

  function setFile(f) {
    file = f || null;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    if (!file) {
      fileName.textContent = "No file chosen";
      preview.hidden = true;
      runBtn.disabled = true;
      return;
    }
    fileName.textContent = `${file.name} · ${fmtBytes(file.size)}`;
    runBtn.disabled = false;
    clear(result, h("p", { class: "muted" }, `Press Classify to classify ${file.name}.`));
    if (file.type.startsWith("video/") && preview.canPlayType(file.type)) {
      previewUrl = URL.createObjectURL(file);
      preview.src = previewUrl;
      preview.hidden = false;
    } else {
      preview.removeAttribute("src");
      preview.hidden = true;
    }
  }

  let seq = 0;
  async function run() {
    if (!file) return;
    const mine = ++seq;
    runBtn.disabled = true;
    result.setAttribute("aria-busy", "true");
    clear(result, h("div", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), `Classifying ${file.name}…`));
    const t0 = performance.now();
    try {
      const res = await api.predict(file, { model: modelSel.value, topK: topK(currentModel()) });
      if (mine !== seq) return;
      renderResult(res, performance.now() - t0);
      const top = res.top_k?.[0];
      announce(top ? `Top prediction: ${top.label}, ${fmtPct(top.score)}.` : "Prediction done.");
    } catch (err) {
      if (mine !== seq) return;
      clear(result, h("h2", {}, "Could not classify this file"), errorBox(err), h("p", { class: "hint" }, hintFor(err)));
    } finally {
      if (mine === seq) {
        runBtn.disabled = !file;
        result.setAttribute("aria-busy", "false");
      }
    }
  }

  function renderResult(res, roundTripMs) {
    const top = res.top_k || [];
    const frames = res.frames_sampled || [];
    const model = models.find((m) => m.id === res.model);
    clear(
      result,
      h("div", { class: "panel-head" }, h("h2", {}, `Top-${top.length || topK(model)}`), h("span", { class: "muted" }, file ? file.name : "")),
      chanceHint(top, model?.labels),
      top.length
        ? h("div", { "data-testid": "topk" }, barList(top.map((t) => ({ label: t.label, value: t.score })), { max: 1, format: (v) => fmtPct(v), className: "topk" }))
        : h("p", {}, "The model returned no classes."),
      h("div", { class: "stats" },
        stat("Latency", `${fmtNumber(Math.round(res.latency_ms))} ms`, "server-side", "latency"),
        stat("Round trip", `${fmtNumber(Math.round(roundTripMs))} ms`, "incl. upload"),
        stat("Clips", String(res.clips ?? frames.length), "averaged"),
        stat("Model", `#${res.model}`, modelName(models.find((m) => m.id === res.model)) || "")),
      frames.length ? framesView(frames, res.thumbnails || []) : null,
    );
  }

  modelSel.addEventListener("change", () => {
    showModel();
    seq++; // a prediction of the model before no longer shows
    runBtn.disabled = !file;
    result.setAttribute("aria-busy", "false");
    clear(result, h("p", { class: "muted" }, file ? `Press Classify to classify ${file.name} with this model.` : "Choose a video and press Classify."));
  });
  fileInput.addEventListener("change", () => setFile(fileInput.files[0]));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    run();
  });
  for (const ev of ["dragenter", "dragover"]) drop.addEventListener(ev, (e) => {
    e.preventDefault();
    drop.classList.add("dragging");
  });
  for (const ev of ["dragleave", "dragend"]) drop.addEventListener(ev, () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("dragging");
    const f = e.dataTransfer?.files?.[0];
    if (f) setFile(f);
  });
  // a file dropped outside the zone should not navigate away from the app
  const stray = (e) => {
    if (!e.target.closest?.(".dropzone")) e.preventDefault();
  };
  window.addEventListener("dragover", stray);
  window.addEventListener("drop", stray);

  showModel();
  return () => {
    seq++;
    window.removeEventListener("dragover", stray);
    window.removeEventListener("drop", stray);
    if (previewUrl) URL.revokeObjectURL(previewUrl);
  };
}

function modelName(m) {
  if (!m) return "";
  const acc = testAccuracy(m);
  return `#${m.id} ${m.name || `${m.backbone || "model"}${m.width && m.width !== 1 ? ` ×${fmtNumber(m.width)}` : ""}`}${acc !== undefined ? ` — ${fmtPct(acc)}` : ""}`;
}

function testAccuracy(m) {
  const t = m.test;
  const v = t.video_top1;
  return typeof v === "number" ? v : undefined;
}

/** A warning when the best score is close to a uniform guess over the model's classes. */
function chanceHint(top, classes) {
  if (!top.length || !classes || classes < 2) return null;
  const chance = 1 / classes;
  if (top[0].score >= Math.min(1, 1.5 * chance)) return null;
  return h("p", { class: "alert alert-info", role: "status", "data-testid": "chance-hint" },
    `The scores are close to chance (1 in ${classes} = ${fmtPct(chance)}): the model cannot tell these classes apart yet; it may need more training, or the clip is unlike its training videos.`);
}

function stat(label, value, sub, testid) {
  return h("div", { class: "stat", "data-testid": testid ? `stat-${testid}` : undefined }, h("div", { class: "card-label" }, label), h("div", { class: "stat-value" }, value), sub ? h("div", { class: "card-sub" }, sub) : null);
}

/** One strip per clip: its middle frame as a thumbnail, ticks at the sampled frame indices, the indices as text. */
function framesView(frames, thumbs) {
  const clips = frames.map((c) => (Array.isArray(c) ? c : [c]));
  const max = Math.max(1, ...clips.flat()) + 1;
  return h("div", { class: "frames", "data-testid": "frames" },
    h("h3", {}, "Sampled frames"),
    thumbs.length
      ? h("div", { class: "thumbs", "data-testid": "thumbs" }, thumbs.map((src, i) => h("figure", {},
        h("img", { src, alt: `clip ${i + 1}, frame ${clips[i][Math.floor(clips[i].length / 2)]}`, width: 96 }),
        h("figcaption", {}, `clip ${i + 1} · f${clips[i][Math.floor(clips[i].length / 2)]}`))))
      : null,
    h("ol", { class: "frame-strips" }, clips.map((c, i) => h("li", {},
      h("span", { class: "strip-label" }, `clip ${i + 1}`),
      h("span", { class: "strip", "aria-hidden": "true" }, c.map((f) => h("span", { class: "tick", style: { left: `${(f / max) * 100}%` } }))),
      h("span", { class: "strip-text mono" }, c.length > 12 ? `${c.slice(0, 6).join(", ")} … ${c.slice(-3).join(", ")}` : c.join(", "))))),
    h("p", { class: "hint" }, `Frame indices of the decoded video (0–${max - 1}); each clip is classified and the scores averaged.`));
}

function hintFor(err) {
  if (err.status === 413) return "Try a shorter clip or a smaller file.";
  if (err.status === 415) return "Upload a video file (AVI, MP4, MKV, WebM).";
  if (err.status === 422) return "The file could not be decoded as a video, or is too short for the model's clip.";
  if (err.status === 404) return "The model is gone; pick another.";
  if (err.status === 0) return "The server cannot be reached.";
  return "";
}
