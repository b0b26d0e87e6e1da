"""POST /predict: classify an uploaded clip with a fine-tuned model."""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status

from api.deps import SessionDep, SettingsDep, SubmitAccess
from api.services.prediction_pool import PoolBusy, PredictPool
from api.services.predictors import PredictorCache
from api.services.models import resolve_model
from api.paths import client_text
from api.responses import errors
from api.schemas import Id, MAX_INT64, PredictionPublic
from api.services.upload import ACCEPTED, UploadError, UploadGate, receive_upload, sniff_container

router = APIRouter(tags=["predict"])
log = logging.getLogger("api.predict")

_FORM = {"multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "the video clip"},
    "model": {"type": "integer", "description": "model id from GET /models; default the best"},
    "top_k": {"type": "integer", "default": 5, "minimum": 1, "maximum": 100},
    "thumbnails": {"type": "boolean", "default": False, "description": "return each clip's middle frame as a PNG"}}}}}


def _predict(cache: PredictorCache, checkpoint: Path, video: Path, *, top_k: int, thumbnails: bool) -> dict[str, Any]:
    predictor = cache.get(checkpoint)
    return predictor.predict(video, top_k=top_k, thumbnails=thumbnails).to_dict()  # type: ignore[no-any-return]


def _int_field(raw: str | None, name: str, default: int | None) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or abs(value) > MAX_INT64:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": ["body", name], "msg": f"{name} must be an integer up to {MAX_INT64}, "
                                     f"got {raw[:40]!r}", "type": "int_parsing"}])
    return value


@router.post("/predict", response_model=PredictionPublic, operation_id="predict-create",
             openapi_extra={"requestBody": {"required": True, "content": _FORM}},
             responses=errors(404, 408, 409, 413, 415, 422, 503, 504))
async def predict(request: Request, session: SessionDep, settings: SettingsDep, _: SubmitAccess,
                  model: Annotated[Id | None, Query(description="model id; default the best")] = None,
                  top_k: Annotated[int | None, Query(ge=1, le=100)] = None,
                  thumbnails: Annotated[bool | None, Query(description="return each clip's middle frame as PNG")] = None,
                  ) -> PredictionPublic:
    """Multipart ``file`` (+ optional ``model``, ``top_k`` as form or query fields)."""
    gate: UploadGate = request.app.state.upload_gate
    try:
        with gate.slot():  # beyond MAX_CONCURRENT_UPLOADS: 503 before reading the body
            upload = await receive_upload(request, dest_dir=settings.var_dir / "uploads",
                                          max_bytes=settings.max_upload_bytes)
    except UploadError as exc:
        raise HTTPException(exc.status_code, detail=exc.detail, headers=exc.headers) from exc
    try:
        model_id = model if model is not None else _int_field(upload.fields.get("model"), "model", None)
        k = top_k if top_k is not None else _int_field(upload.fields.get("top_k"), "top_k", 5)
        assert k is not None
        thumbs = thumbnails if thumbnails is not None else upload.fields.get("thumbnails", "").lower() in ("1", "true", "yes")
        if not 1 <= k <= 100:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                detail=[{"loc": ["body", "top_k"], "msg": "top_k must be 1..100", "type": "value_error"}])
        if upload.path is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                detail=[{"loc": ["body", "file"], "msg": "missing form field 'file' (the video)",
                                         "type": "missing"}])
        if upload.size == 0:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="the uploaded file is empty (0 bytes)")
        with upload.path.open("rb") as fh:
            head = fh.read(512)
        ext = sniff_container(head)
        if ext is None:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                                detail=f"not a recognised video container (first bytes {head[:12].hex()}); "
                                       f"send one of: {ACCEPTED}")
        video = upload.path.rename(upload.path.with_suffix(ext))
        upload.path = video
        job = resolve_model(session, model_id)
        checkpoint = Path(job.checkpoint_path or "")
        session.close()
        result = await _run_limited(request, functools.partial(_predict, request.app.state.predictors, checkpoint,
                                                               video, top_k=k, thumbnails=thumbs),
                                   timeout=settings.predict_timeout_s)
    finally:
        upload.discard()
    return PredictionPublic(model=job.id, **result)


async def _run_limited(request: Request, fn: Any, *, timeout: float) -> dict[str, Any]:
    from ml.errors import CheckpointError, VideoError

    pool: PredictPool = request.app.state.predict_pool
    try:
        work = pool.submit(fn)
    except PoolBusy as busy:
        overdue = f", {busy.overdue} of them still finishing after a timeout" if busy.overdue else ""
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"},
                            detail=f"all {pool.limit} prediction slots are taken ({busy.in_flight} in progress{overdue}); "
                                   "retry in a few seconds, or raise PREDICT_CONCURRENCY / PREDICT_QUEUE") from None
    result = asyncio.wrap_future(work.future)
    result.add_done_callback(_consume)  # a result that comes after the caller gave up is dropped, not logged
    try:
        return await asyncio.wait_for(asyncio.shield(result), timeout=timeout)
    except asyncio.TimeoutError:
        if pool.withdraw(work):  # still queued behind other predictions: nothing of this clip was decoded
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"},
                                detail=f"waited {timeout:g}s (PREDICT_TIMEOUT_S) for a free prediction slot; all "
                                       f"{pool.concurrency} are busy with other clips. Retry in a few seconds, or "
                                       "raise PREDICT_CONCURRENCY on the server") from None
        pool.mark_overdue(work.future)  # its thread cannot be stopped; it keeps its slot until it ends
        waited = work.waited_s()
        queued = f" after waiting {waited:.1f}s for a slot" if waited >= 0.1 else ""
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT,
                            detail=f"decoding and classifying took over {timeout - waited:.1f}s{queued}; the limit is "
                                   f"{timeout:g}s (PREDICT_TIMEOUT_S). Send a shorter clip, or raise "
                                   "PREDICT_TIMEOUT_S on the server") from None
    except VideoError as exc:
        log.info("predict: unusable upload %s: %s", exc.path, exc.reason)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=f"cannot use this video: {client_text(exc.reason)}") from exc
    except CheckpointError as exc:
        log.error("predict: model checkpoint unusable: %s", exc)
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail="the model's checkpoint cannot be loaded (missing, damaged or not a weights-only "
                                   "checkpoint of this service); re-run its finetune job or pick another model "
                                   "(GET /models)") from exc


def _consume(done: "asyncio.Future[Any]") -> None:
    if not done.cancelled():
        done.exception()
