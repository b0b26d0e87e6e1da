"""Models: fine-tuned classifiers usable by POST /predict, imported teachers, ONNX exports and report cards."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from api.deps import READ, SessionDep, SettingsDep, SubmitAccess
from api.paths import client_text
from api.present import model_public
from api.responses import errors
from api.schemas import Id, ModelPublic
from api.services.model_files import ImportRefused, form_field, import_upload, onnx_file, report
from api.services.models import exportable_model, imported_models, teacher_accuracy, usable_models
from api.services.upload import UploadError, UploadGate, receive_upload
from ml.import_spec import FORMATS

router = APIRouter(tags=["models"])
log = logging.getLogger("api.models")

_IMPORT_FORM = {"multipart/form-data": {"schema": {"type": "object", "required": ["file", "format", "backbone"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "a torch state dict file (loaded weights-only)"},
    "format": {"type": "string", "enum": list(FORMATS), "description": "its key layout"},
    "backbone": {"type": "string", "maxLength": 20, "description": "our backbone it maps onto (r3d, r21d, c3d, r3d18, r21d18)"},
    "name": {"type": "string", "maxLength": 200},
    "modality": {"type": "string", "enum": ["res", "rgb"], "description": "input it was trained on (default: pcl res, "
                                                                             "torchvision rgb)"}}}}}


@router.get("/models", response_model=list[ModelPublic], operation_id="models-list", dependencies=[READ])
def list_models(session: SessionDep) -> list[ModelPublic]:
    """Fine-tuned classifiers best first (video top-1 on the test split; ``kind`` finetune: usable by /predict),
    then imported checkpoints (``kind`` import, with their ``origin``: a distill teacher or finetune source by id)."""
    return [model_public(j) for j in usable_models(session) + imported_models(session)]


@router.post("/models/import", response_model=ModelPublic, status_code=status.HTTP_201_CREATED,
             operation_id="models-import", openapi_extra={"requestBody": {"required": True, "content": _IMPORT_FORM}},
             responses=errors(408, 413, 422, 503))
async def import_model(request: Request, session: SessionDep, settings: SettingsDep, _: SubmitAccess) -> ModelPublic:
    """Import a checkpoint trained elsewhere (PCL/VCOP code, torchvision ``r3d_18`` / ``r2plus1d_18``) as a teacher or
    fine-tuning source. Multipart ``file`` (at most MAX_IMPORT_MB), ``format``, ``backbone``, optional ``name`` and
    ``modality``. The file is loaded weights-only: anything but tensors and plain data is refused (422) and never
    run. The result is a completed job of kind ``import``: pass its id as ``teacher_job_id`` or ``source_job_id``."""
    from ml.importers import LAYOUTS

    gate: UploadGate = request.app.state.upload_gate
    try:
        with gate.slot():
            upload = await receive_upload(request, dest_dir=settings.var_dir / "uploads", max_bytes=settings.max_import_bytes,
                                          limit_name="MAX_IMPORT_MB", what="the checkpoint")
    except UploadError as exc:
        raise HTTPException(exc.status_code, detail=exc.detail, headers=exc.headers) from exc
    try:
        fmt = form_field(upload.fields, "format", choices=FORMATS, required=True)
        backbone = form_field(upload.fields, "backbone", choices=tuple(sorted({b for f, b in LAYOUTS if f == fmt})),
                              required=True)
        name = form_field(upload.fields, "name")
        modality = form_field(upload.fields, "modality", choices=("res", "rgb"))
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


@router.get("/models/{model_id}/report", response_model=dict[str, Any], operation_id="models-report",
            dependencies=[READ], responses=errors(404, 409))
async def model_report(model_id: Id, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """The model's compression report card: parameters, GMACs/GFLOPs per clip, median CPU (and GPU) latency per
    clip and per 10-clip video, video top-1 and the fraction kept of its teacher's (a KD student's teacher's best
    fine-tune), sizes on disk. Measured on first request (a few forward passes), then kept per checkpoint."""
    from ml.errors import CheckpointError

    job = exportable_model(session, model_id)
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

    job = exportable_model(session, model_id)
    checkpoint, kind = Path(job.checkpoint_path or ""), job.kind
    session.close()
    try:
        path = await run_in_threadpool(onnx_file, checkpoint, settings.job_dir(model_id))
    except CheckpointError as exc:
        log.error("model %d: ONNX export failed: %s", model_id, exc)
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"model {model_id} cannot be exported: {client_text(str(exc))}") from None
    return FileResponse(path, media_type="application/octet-stream", filename=f"model-{model_id}-{kind}.onnx")
