"""Models: fine-tuned classifiers usable by POST /predict, imported teachers, and ONNX exports."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import READ, SessionDep, SettingsDep, SubmitAccess
from api.model_files import EXPORTABLE_KINDS, ImportRefused, import_upload, onnx_file, report
from api.paths import client_text
from api.responses import errors
from api.schemas import Id, ModelPublic
from api.upload import UploadError, UploadGate, receive_upload
from ml.import_spec import FORMATS, IMPORT
from persistence.models import Job
from persistence.status import JobStatus

router = APIRouter(tags=["models"])
log = logging.getLogger("api.models")


def _test(job: Job) -> dict[str, Any]:
    results = job.results or {}
    test = results.get("test")
    return test if isinstance(test, dict) else {}


def model_public(job: Job) -> ModelPublic:
    test = _test(job)
    labels = (job.results or {}).get("labels") or []
    model = job.config.get("model") or {}
    origin = (job.results or {}).get("origin") if job.kind == IMPORT else None
    return ModelPublic(id=job.id, kind=job.kind, name=job.name, backbone=model.get("backbone"), width=model.get("width"),
                       dataset_id=job.dataset_id, source_job_id=job.parent_id, labels=len(labels),
                       test={k: v for k, v in test.items() if k != "protocol"}, protocol=test.get("protocol"),
                       finished_at=job.finished_at, origin=origin)


def _score(job: Job) -> float:
    test = _test(job)
    for key in ("video_top1", "clip_top1"):
        if isinstance(test.get(key), (int, float)):
            return float(test[key])
    return -1.0


def usable_models(session: Session) -> list[Job]:
    """Completed fine-tunes whose checkpoint exists, best test accuracy first."""
    rows = session.scalars(select(Job).where(Job.kind == "finetune", Job.status == JobStatus.COMPLETED)).all()
    usable = [j for j in rows if j.checkpoint_path and Path(j.checkpoint_path).is_file()]
    return sorted(usable, key=lambda j: (_score(j), j.id), reverse=True)


def resolve_model(session: Session, model_id: int | None) -> Job:
    if model_id is None:
        models = usable_models(session)
        if not models:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                detail="no fine-tuned model yet: run a finetune job (or POST /demo) first")
        return models[0]
    job = session.get(Job, model_id)
    if job is None or job.kind != "finetune" or job.status != JobStatus.COMPLETED \
            or not (job.checkpoint_path and Path(job.checkpoint_path).is_file()):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"model {model_id} is not a completed fine-tuned classifier; GET /models lists them")
    return job


def imported_models(session: Session) -> list[Job]:
    """Imported checkpoints (teachers / fine-tuning sources), newest first."""
    rows = session.scalars(select(Job).where(Job.kind == IMPORT, Job.status == JobStatus.COMPLETED)
                           .order_by(Job.id.desc())).all()
    return [j for j in rows if j.checkpoint_path and Path(j.checkpoint_path).is_file()]


@router.get("/models", response_model=list[ModelPublic], operation_id="models-list", dependencies=[READ])
def list_models(session: SessionDep) -> list[ModelPublic]:
    """Fine-tuned classifiers best first (video top-1 on the test split; ``kind`` finetune: usable by /predict),
    then imported checkpoints (``kind`` import, with their ``origin``: usable as a distill teacher or finetune
    source by their id)."""
    return [model_public(j) for j in usable_models(session) + imported_models(session)]


_IMPORT_FORM = {"multipart/form-data": {"schema": {"type": "object", "required": ["file", "format", "backbone"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "a torch state dict file (loaded weights-only)"},
    "format": {"type": "string", "enum": list(FORMATS), "description": "its key layout"},
    "backbone": {"type": "string", "maxLength": 20, "description": "our backbone it maps onto (r3d, r21d, c3d, r3d18)"},
    "name": {"type": "string", "maxLength": 200},
    "modality": {"type": "string", "enum": ["res", "rgb"], "description": "input it was trained on (default: pcl res, "
                                                                             "torchvision rgb)"}}}}}


def _field(fields: dict[str, str], name: str, *, choices: tuple[str, ...] | None = None, required: bool = False,
           max_len: int = 200) -> str | None:
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


@router.post("/models/import", response_model=ModelPublic, status_code=status.HTTP_201_CREATED,
             operation_id="models-import", openapi_extra={"requestBody": {"required": True, "content": _IMPORT_FORM}},
             responses=errors(408, 413, 422, 503))
async def import_model(request: Request, session: SessionDep, settings: SettingsDep, _: SubmitAccess) -> ModelPublic:
    """Import a checkpoint trained elsewhere (PCL/VCOP code or torchvision ``r3d_18``) as a teacher or fine-tuning
    source. Multipart ``file`` (at most MAX_IMPORT_MB), ``format``, ``backbone``, optional ``name`` and ``modality``.
    The file is loaded weights-only: anything but tensors and plain data is refused (422) and never run. The
    result is a completed job of kind ``import``: pass its id as ``teacher_job_id`` or ``source_job_id``."""
    from ml.importers import LAYOUTS

    gate: UploadGate = request.app.state.upload_gate
    try:
        with gate.slot():
            upload = await receive_upload(request, dest_dir=settings.var_dir / "uploads", max_bytes=settings.max_import_bytes,
                                          limit_name="MAX_IMPORT_MB", what="the checkpoint")
    except UploadError as exc:
        raise HTTPException(exc.status_code, detail=exc.detail, headers=exc.headers) from exc
    try:
        fmt = _field(upload.fields, "format", choices=FORMATS, required=True)
        backbone = _field(upload.fields, "backbone", choices=tuple(sorted({b for f, b in LAYOUTS if f == fmt})),
                          required=True)
        name = _field(upload.fields, "name")
        modality = _field(upload.fields, "modality", choices=("res", "rgb"))
        if upload.path is None or upload.size == 0:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                detail=[{"loc": ["body", "file"], "msg": "missing or empty form field 'file' (the "
                                         "checkpoint)", "type": "missing"}])
        filename = Path(upload.filename or "checkpoint.pth").name[:200]
        assert fmt is not None and backbone is not None
        try:
            job = await run_in_threadpool(import_upload, session, settings, upload.path, fmt=fmt, backbone=backbone,
                                          filename=filename, name=name, modality=modality)
        except ImportRefused as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                detail=f"cannot import {filename}: {client_text(str(exc))}") from None
    finally:
        upload.discard()
    return model_public(job)


def _exportable(session: Session, model_id: int) -> Job:
    job = session.get(Job, model_id)
    if job is None or job.kind not in EXPORTABLE_KINDS or job.status != JobStatus.COMPLETED \
            or not (job.checkpoint_path and Path(job.checkpoint_path).is_file()):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"job {model_id} is not a completed model with a checkpoint; GET /models lists them")
    return job


def teacher_accuracy(session: Session, job: Job) -> float | None:
    """For a fine-tuned KD student: the best video top-1 among the fine-tunes of its teacher (its lineage)."""
    student = session.get(Job, job.parent_id) if job.kind == "finetune" and job.parent_id else None
    if student is None or student.kind != "distill" or student.parent_id is None:
        return None
    rows = session.scalars(select(Job).where(Job.kind == "finetune", Job.status == JobStatus.COMPLETED,
                                             Job.parent_id == student.parent_id)).all()
    scores = [s for s in (_score(r) for r in rows) if s >= 0]
    return max(scores) if scores else None


@router.get("/models/{model_id}/report", response_model=dict[str, Any], operation_id="models-report",
            dependencies=[READ], responses=errors(404, 409))
async def model_report(model_id: Id, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """The model's compression report card: parameters, GMACs/GFLOPs per clip, median CPU (and GPU) latency per
    clip and per 10-clip video, video top-1 and the fraction kept of its teacher's (a KD student's teacher's best
    fine-tune), sizes on disk. Measured on first request (a few forward passes), then kept per checkpoint."""
    from ml.errors import CheckpointError

    job = _exportable(session, model_id)
    checkpoint, kept_of = Path(job.checkpoint_path or ""), teacher_accuracy(session, job)
    session.close()
    try:
        return await run_in_threadpool(report, checkpoint, settings.job_dir(model_id), teacher_accuracy=kept_of)
    except CheckpointError as exc:
        log.error("model %d: report failed: %s", model_id, exc)
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"model {model_id}'s checkpoint cannot be loaded: {client_text(str(exc))}") from None


@router.get("/models/{model_id}/onnx", response_class=FileResponse, operation_id="models-onnx", dependencies=[READ],
            responses={200: {"content": {"application/octet-stream": {}}}, **errors(404, 409)})
async def model_onnx(model_id: Id, session: SessionDep, settings: SettingsDep) -> FileResponse:
    """The model as ONNX (opset 17, input ``clips`` N×3×T×H×W frames as the service cuts them, dynamic N; output
    ``logits`` for a fine-tuned classifier, ``features`` for a pretrained/imported backbone; residual frames are
    computed inside; labels and clip spec in the metadata). Made on first request and checked by onnxruntime
    against PyTorch (same top-1)."""
    from ml.errors import CheckpointError

    job = _exportable(session, model_id)
    checkpoint, kind = Path(job.checkpoint_path or ""), job.kind
    session.close()
    try:
        path = await run_in_threadpool(onnx_file, checkpoint, settings.job_dir(model_id))
    except CheckpointError as exc:
        log.error("model %d: ONNX export failed: %s", model_id, exc)
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"model {model_id} cannot be exported: {client_text(str(exc))}") from None
    return FileResponse(path, media_type="application/octet-stream", filename=f"model-{model_id}-{kind}.onnx")
