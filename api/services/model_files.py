"""Model files the API makes or takes: a job's ONNX export and report card, and imported external checkpoints.

Both run in a worker thread (torch work), never on the event loop. An ONNX file is written next to the job's
checkpoint (``model.onnx``) and rewritten when the checkpoint is newer; every export is checked against
PyTorch by onnxruntime before it is served. An import is validated and converted by :mod:`ml.importers`
(weights-only load: a crafted pickle is refused before anything in it runs) and stored as a completed job of
kind ``import`` whose checkpoint a distill job can name as its teacher, or a finetune job as its source.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ml import kinds as kind_registry

from persistence import repo
from persistence.base import utcnow
from persistence.models import Job
from persistence.settings import Settings
from persistence.status import JobStatus

log = logging.getLogger("api.models")

ONNX_NAME = "model.onnx"
REPORT_NAME = "report.json"
REPORT_RUNS, REPORT_WARMUP = 3, 1  # timed and warm-up passes of a served report card
_measuring = threading.Lock()  # one card measured at a time: timings do not share the CPU with each other
EXPORTABLE_KINDS = kind_registry.producing(kind_registry.BACKBONE)  # a network to export: any but results/datasets


def onnx_file(checkpoint: Path, job_dir: Path) -> Path:
    """The job's checked ONNX export, made once per checkpoint version."""
    from ml.export import export_onnx

    dest = job_dir / ONNX_NAME
    if dest.is_file() and dest.stat().st_mtime_ns >= checkpoint.stat().st_mtime_ns:
        return dest
    check = export_onnx(checkpoint, dest)
    log.info("exported %s to ONNX: max abs difference %.3g on %d clips", checkpoint, check.max_abs_diff, check.clips_checked)
    return dest


def report(checkpoint: Path, job_dir: Path, *, teacher_accuracy: float | None) -> dict[str, Any]:
    """The job's report card (:func:`ml.report.report_card`), measured once per checkpoint version and teacher
    accuracy. Timed with the server's own thread setting (a server must not change it under running predictions)."""
    with _measuring:
        return _report(checkpoint, job_dir, teacher_accuracy=teacher_accuracy)


def _report(checkpoint: Path, job_dir: Path, *, teacher_accuracy: float | None) -> dict[str, Any]:
    from ml.report import report_card

    path = job_dir / REPORT_NAME
    version = {"checkpoint_mtime_ns": checkpoint.stat().st_mtime_ns, "teacher_accuracy": teacher_accuracy}
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
            if cached.get("version") == version:
                return dict(cached["card"])
        except (OSError, ValueError, KeyError):
            pass
    onnx = job_dir / ONNX_NAME
    card = report_card(checkpoint, teacher_accuracy=teacher_accuracy, onnx=onnx if onnx.is_file() else None,
                       threads=None, runs=REPORT_RUNS, warmup=REPORT_WARMUP).to_dict()
    job_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=job_dir, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump({"version": version, "card": card}, fh)
    os.replace(tmp, path)
    return card


def form_field(fields: dict[str, str], name: str, *, choices: tuple[str, ...] | None = None, required: bool = False,
               max_len: int = 200) -> str | None:
    """One multipart form field, checked (422 in FastAPI's shape)."""
    from fastapi import HTTPException, status

    value = (fields.get(name) or "").strip()
    if not value:
        if required:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                detail=[{"loc": ["body", name], "msg": f"missing form field {name!r}", "type": "missing"}])
        return None
    if len(value) > max_len or (choices is not None and value not in choices):
        allowed = f"one of {', '.join(choices)}" if choices else f"at most {max_len} characters"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": ["body", name], "msg": f"{name} must be {allowed}", "type": "value_error"}])
    return value


class ImportRefused(ValueError):
    """The upload is not an importable checkpoint; the message is fit for the client (no server paths)."""


def import_upload(session: Session, settings: Settings, upload: Path, *, fmt: str, backbone: str, filename: str,
                  name: str | None, modality: str | None) -> Job:
    """Convert ``upload`` and record it as a completed ``import`` job (committed). The upload is left to the caller."""
    from ml.errors import CheckpointError, MLError
    from ml.import_spec import IMPORT
    from ml.importers import import_checkpoint

    staging = settings.artifacts / "imports"
    staging.mkdir(parents=True, exist_ok=True)
    converted = staging / f".{upload.name}.pt"
    try:
        try:
            result = import_checkpoint(upload, fmt=fmt, backbone=backbone, out=converted, name=filename, modality=modality)
        except (CheckpointError, MLError, ValueError) as exc:
            log.info("import of %s refused: %s", filename, exc)
            raise ImportRefused(str(exc).replace(str(upload), filename).replace(upload.name, filename)) from exc
        request: dict[str, Any] = {"format": fmt, "backbone": backbone, "width": result.width, "modality": result.modality,
                                   "file": filename}
        from ml.engine.checkpoint import safe_load

        config = safe_load(converted)["config"]
        job = repo.create_job(session, kind=IMPORT, name=name or f"{backbone} from {filename}", request=request,
                              config=config, config_hash=result.origin["sha256"][:16], dataset_id=None,
                              status=JobStatus.COMPLETED, max_attempts=0)
        job_dir = settings.job_dir(job.id)
        job_dir.mkdir(parents=True, exist_ok=True)
        from ml.engine.checkpoint import CHECKPOINT_NAME

        final = job_dir / CHECKPOINT_NAME
        os.replace(converted, final)
        now = utcnow()
        job.artifact_dir, job.checkpoint_path, job.progress, job.finished_at, job.started_at = \
            str(job_dir), str(final), 1.0, now, now
        job.results = {"kind": IMPORT, "origin": result.origin, "fresh": result.fresh, "dropped": result.dropped,
                       "mapped_tensors": result.mapped}
        session.commit()
        return job
    except BaseException:
        session.rollback()
        raise
    finally:
        converted.unlink(missing_ok=True)

