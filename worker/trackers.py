"""Optional export of each job to an MLflow tracking server or store (MLFLOW_TRACKING_URI).

One MLflow run per job (a retried or resumed attempt continues the job's run, found by its ``kdvideo.job_id``
tag): the job's config flattened as params (path-typed fields left out: they are server paths, and the service
sets them itself), tags for the job id, kind, dataset and lineage (teacher / source job ids up the chain), the
metric rows, and at completion the weights-only export (``ml.engine.checkpoint.export_weights``) as the
artifact ``model/weights.pt``.

Fencing: :class:`worker.progress.JobCallback` hands the tracker only rows its fenced write stored, and
worker.jobs finishes the run only after the attempt's fenced completion matched, so a superseded attempt logs
nothing more and never a final model. The tracker never fails a job: the first MLflow error is logged and the
tracker turns itself off for the rest of the attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from persistence.models import Job

log = logging.getLogger("worker.tracker")

TAG = "kdvideo."
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
METRIC_BATCH = 1000  # MLflow's log_batch limits: 1000 metrics, 100 params per call
PARAM_BATCH = 100
MAX_LINEAGE = 8  # ancestors followed up the parent chain


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """``{"optim": {"lr": 0.1}}`` -> ``{"optim.lr": "0.1"}``; lists and scalars become their JSON-ish text."""
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): str(data)[:MAX_PARAM_CHARS]} if prefix else {}


def job_params(job: Job) -> dict[str, str]:
    """The job's stored ml config, flattened, without path-typed fields; plus its kind and dataset id."""
    from ml import kinds
    from ml.config import path_fields

    params = flatten(job.config)
    try:
        hidden = path_fields(kinds.get(job.kind).config_class())
    except ValueError:  # a kind this worker does not know: send no field that could be a path
        hidden = frozenset(k for k in params if "path" in k or "root" in k or "checkpoint" in k)
    params = {k: v for k, v in params.items() if k not in hidden}
    params.update({"kind": job.kind, "dataset_id": str(job.dataset_id)})
    return params


def job_tags(job: Job, ancestors: Sequence[Job]) -> dict[str, str]:
    """Job id, kind, dataset, and lineage: the parent under the name the kind's request gives it (ml.kinds:
    ``teacher_job_id`` for distill, ``source_job_id`` otherwise), and the chain of ancestors (``lineage``: nearest
    first)."""
    from ml import kinds

    tags = {f"{TAG}job_id": str(job.id), f"{TAG}kind": job.kind, f"{TAG}dataset_id": str(job.dataset_id),
            "mlflow.runName": f"job-{job.id}-{job.kind}" + (f"-{job.name}" if job.name else "")}
    if ancestors:
        parent = ancestors[0]
        role = kinds.KINDS[job.kind].parent_request if job.kind in kinds.KINDS else "parent_job_id"
        tags[f"{TAG}{role}"] = str(parent.id)
        tags[f"{TAG}parent_kind"] = parent.kind
        tags[f"{TAG}lineage"] = " > ".join(f"{a.kind}:{a.id}" for a in ancestors)
        teacher = next((a.parent_id for a in ancestors if a.kind == "distill" and a.parent_id), None)
        if teacher is not None and f"{TAG}teacher_job_id" not in tags:  # e.g. a fine-tuned student's teacher
            tags[f"{TAG}teacher_job_id"] = str(teacher)
    return {k: v[:5000] for k, v in tags.items()}


class MlflowTracker:
    """One job's MLflow run. All methods swallow MLflow errors (logged once; the tracker then stays off)."""

    def __init__(self, uri: str, experiment: str, job: Job, ancestors: Sequence[Job], *, attempt: int) -> None:
        self.uri = uri
        self.job_id = job.id
        self.attempt = attempt
        self.run_id: str | None = None
        self.enabled = True
        self._guard("start the run", self._start, experiment, job, ancestors)

    def _start(self, experiment: str, job: Job, ancestors: Sequence[Job]) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Param

        self.client = MlflowClient(tracking_uri=self.uri)
        found = self.client.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        runs = self.client.search_runs([exp_id], filter_string=f"tags.`{TAG}job_id` = '{job.id}'", max_results=1)
        if runs:  # a later attempt of the same job: continue its run
            self.run_id = runs[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            run = self.client.create_run(exp_id, tags=job_tags(job, ancestors))
            self.run_id = run.info.run_id
            params = [Param(k, v) for k, v in sorted(job_params(job).items())]
            for i in range(0, len(params), PARAM_BATCH):
                self.client.log_batch(self.run_id, params=params[i:i + PARAM_BATCH])
        self.client.set_tag(self.run_id, f"{TAG}attempt", str(self.attempt))

    def _guard(self, what: str, fn: Any, *args: Any) -> None:
        if not self.enabled:
            return
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - tracking must never fail or stop a job
            self.enabled = False
            log.warning("MLflow: could not %s for job %d (%s: %s); no more MLflow logging for this attempt",
                        what, self.job_id, type(exc).__name__, str(exc)[:300])

    def log_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Metric rows the fenced writer stored: name, step, value, time."""
        if rows:
            self._guard("log metrics", self._log_rows, rows)

    def _log_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        from mlflow.entities import Metric

        assert self.run_id is not None
        metrics = [Metric(r["name"], float(r["value"]), _millis(r["time"]), int(r["step"])) for r in rows]
        for i in range(0, len(metrics), METRIC_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + METRIC_BATCH])

    def finish(self, status: str, *, checkpoint: Path | None = None, out_dir: Path | None = None) -> None:
        """End the run (FINISHED, FAILED or KILLED); with ``checkpoint``, log its weights-only export first."""
        self._guard("finish the run", self._finish, status, checkpoint, out_dir)

    def _finish(self, status: str, checkpoint: Path | None, out_dir: Path | None) -> None:
        assert self.run_id is not None
        if checkpoint is not None and out_dir is not None and checkpoint.is_file():
            from ml.engine.checkpoint import WEIGHTS_NAME, export_weights
            from ml.errors import CheckpointError

            try:
                weights = export_weights(checkpoint, out_dir / WEIGHTS_NAME)
            except CheckpointError as exc:  # e.g. a retrieve job's checkpoint holds no network
                log.info("MLflow: job %d has no weights to log (%s)", self.job_id, exc)
            else:
                self.client.log_artifact(self.run_id, str(weights), artifact_path="model")
        self.client.set_terminated(self.run_id, status=status)


def _millis(t: Any) -> int:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return int(t.timestamp() * 1000)
    return int(datetime.now(timezone.utc).timestamp() * 1000)


def make_tracker(uri: str, experiment: str, job: Job, ancestors: Sequence[Job], *,
                 attempt: int) -> MlflowTracker | None:
    """The job's tracker when MLFLOW_TRACKING_URI is set, else None; None too when mlflow is not installed
    (logged: pip install mlflow-skinny)."""
    if not uri:
        return None
    try:
        import mlflow  # noqa: F401
    except ImportError:
        log.warning("MLFLOW_TRACKING_URI is set but mlflow is not installed (pip install mlflow-skinny); "
                    "job %d is not tracked", job.id)
        return None
    tracker = MlflowTracker(uri, experiment, job, ancestors, attempt=attempt)
    return tracker if tracker.enabled else None
