"""``run(config, out_dir=...)``: the single entry point workers, the CLI and experiments call.

It turns a validated config into data, a Task and the one TrainingLoop, then evaluates with the
PCL protocols and writes ``results.json`` and ``config.json`` beside ``checkpoint.pt``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import ConcatDataset

from ml import kinds as kind_registry
from ml.config import AnyConfig, ClipSpec, DataConfig, FinetuneConfig, ModelConfig, PretrainConfig, RetrieveConfig, config_hash, training_hash
from ml.data import ClipDataset, DatasetIndex, MultiClipDataset, PCLTupleDataset, index_dataset, scan_index
from ml.data.clip_needs import frames_needed
from ml.synthetic_spec import SynthesizeConfig
from ml.data.frame_cache import DecodedVideoCache
from ml.data.loader import VideoLoader, make_loader, released_loaders
from ml.engine.callbacks import Callback
from ml.engine.checkpoint import load_checkpoint, save_checkpoint
from ml.engine.classify_task import ClassifierTask
from ml.engine.evaluate import classify_videos, eval_loader, retrieval_eval
from ml.engine.loop import TrainingLoop
from ml.engine.pcl_task import PCLTask
from ml.engine.runtime import Runtime, resolve_runtime, seed_everything
from ml.errors import CheckpointError, DatasetError
from ml.models import build_backbone, build_pcl_net
from ml.models.pcl_net import PCLNet

RESULTS_NAME = "results.json"


@dataclass
class RunResult:
    status: Literal["completed", "stopped"]
    epochs_completed: int
    results: dict[str, Any]
    checkpoint: Path | None


def code_version() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def prepare_index(data: DataConfig, *, min_frames: int, callback: Callback) -> DatasetIndex:
    """Index and scan the dataset; problems are reported and skipped, never fatal."""
    index = scan_index(index_dataset(data), min_frames=min_frames, workers=max(1, data.workers * 2))
    for problem in index.problems:
        callback.on_log(f"skipped {problem}")
    if not index.train:
        raise DatasetError(f"no usable training videos under {data.root} ({len(index.problems)} problems)")
    callback.on_log(
        f"dataset {data.root}: {len(index.classes)} classes, {len(index.train)} train / {len(index.test)} test videos, "
        f"{len(index.problems)} problems, fingerprint {index.fingerprint()}"
    )
    return index


def _model_meta(model: ModelConfig, clip: ClipSpec) -> dict[str, Any]:
    return {"backbone": model.backbone, "width": model.width, "modality": model.modality, "clip": clip.model_dump(mode="json")}


def _frame_cache(data: DataConfig) -> DecodedVideoCache | None:
    """One decoded-video cache shared by every dataset of a run (per process; see ml.data.frame_cache)."""
    return DecodedVideoCache(data.cache_mb * 2**20) if data.cache_mb else None


def _retrieval_videos(index: DatasetIndex, clip: ClipSpec, num_clips: int, cache: DecodedVideoCache | None) -> ConcatDataset[Any]:
    """The train videos (the gallery) followed by the test videos (the queries)."""
    return ConcatDataset([MultiClipDataset(index.train, index.frame_counts(index.train), clip, num_clips, cache=cache),
                          MultiClipDataset(index.test, index.frame_counts(index.test), clip, num_clips, cache=cache)])


def _write_results(out_dir: Path, results: dict[str, Any]) -> None:
    (out_dir / RESULTS_NAME).write_text(json.dumps(results, indent=2, default=str))


def load_teacher(path: Path, *, device: torch.device) -> tuple[PCLNet, dict[str, Any]]:
    """A frozen PCL network from a pretrain/distill checkpoint (its own backbone and width)."""
    state = load_checkpoint(path)
    if state.get("kind") not in ("pretrain", "distill"):
        raise CheckpointError(f"{path} is a {state.get('kind')!r} checkpoint; a teacher must come from pretrain or distill")
    cfg = PretrainConfig.model_validate(state["config"])
    teacher = build_pcl_net(
        cfg.model.backbone, cfg.model.width, n_clips=cfg.pretext.tuple_len, num_pretext=cfg.pretext.num_classes,
        proj_dim=cfg.contrast.proj_dim,
    )
    teacher.load_state_dict(state["task"]["net"])
    return teacher.to(device).eval().requires_grad_(False), state


def run_pcl(cfg: PretrainConfig, *, out_dir: Path, callback: Callback, should_stop: Callable[[], bool] | None,
             resume: bool, rt: Runtime) -> RunResult:
    min_frames = PCLTupleDataset.min_frames(cfg.clip, cfg.pretext)
    index = prepare_index(cfg.data, min_frames=min_frames, callback=callback)
    train_items = index.train
    cache = _frame_cache(cfg.data)
    train_set = PCLTupleDataset(train_items, index.frame_counts(train_items), cfg.clip, cfg.augment, cfg.pretext, seed=cfg.runtime.seed,
                                cache=cache)
    teacher = None
    teacher_meta: dict[str, Any] = {}
    if cfg.distill.teacher_checkpoint is not None and cfg.distill.alpha > 0:
        teacher, tstate = load_teacher(cfg.distill.teacher_checkpoint, device=rt.device)
        teacher_meta = {"teacher_backbone": tstate["backbone"], "teacher_width": tstate["width"],
                        "teacher_results": tstate.get("results", {})}
        callback.on_log(f"teacher {tstate['backbone']} (width {tstate['width']}) from {cfg.distill.teacher_checkpoint}")
    val_set = PCLTupleDataset(index.test, index.frame_counts(index.test), cfg.clip, cfg.augment, cfg.pretext, seed=cfg.runtime.seed + 7,
                              cache=cache) if index.test else None
    workers = cfg.data.workers
    # Built once: their workers persist over the run's per-epoch validations and retrievals.
    val_loader = make_loader(val_set, batch_size=cfg.optim.batch_size, shuffle=False, workers=workers, seed=0,
                             drop_last=False, pin_memory=rt.pin_memory) if val_set is not None else None
    retrieval_loader = eval_loader(_retrieval_videos(index, cfg.clip, cfg.eval.retrieval_clips, cache), workers=workers, rt=rt)

    def validate(net: torch.nn.Module, epoch: int, last: bool) -> dict[str, float]:
        every = cfg.runtime.validate_every
        if val_loader is None or not every or (epoch % every and not last):
            return {}
        val_loader.set_epoch(0)  # the same tuples every epoch, like the reference's fixed seeds
        return task.validation_losses(itertools.islice(val_loader, cfg.runtime.max_steps_per_epoch))

    def evaluate(backbone: torch.nn.Module, epoch: int, last: bool) -> dict[str, float]:
        every = cfg.runtime.retrieval_every
        if not ((every and epoch % every == 0) or (last and cfg.eval.retrieval)) or not index.test:
            return {}
        scores = retrieval_eval(backbone, retrieval_loader, gallery_size=len(index.train), rt=rt,
                                modality=cfg.model.modality, ks=cfg.eval.retrieval_ks, feature=cfg.eval.retrieval_feature)
        return {f"retrieval_{k}": v for k, v in scores.items()}

    task = PCLTask(cfg, num_train=len(train_set), rt=rt, teacher=teacher, validate=validate, evaluate=evaluate)
    meta = {
        "kind": cfg.kind,
        "config": cfg.model_dump(mode="json"),
        "config_hash": config_hash(cfg),
        "training_hash": training_hash(cfg),
        "data_fingerprint": index.fingerprint(),
        "classes": index.classes,
        "code_version": code_version(),
        **_model_meta(cfg.model, cfg.clip),
        **teacher_meta,
    }
    loop = TrainingLoop(task, train_set, optim=cfg.optim, runtime_cfg=cfg.runtime, runtime=rt, out_dir=out_dir,
                        workers=workers, checkpoint_meta=meta, callback=callback, should_stop=should_stop)
    fit = loop.fit(resume=resume)
    results: dict[str, Any] = {"kind": cfg.kind, "status": fit.status, "epochs_completed": fit.epochs_completed,
                               "history": fit.history, "data": _data_summary(index), "config_hash": meta["config_hash"],
                               "best_val_loss_epoch": loop.best_epoch}
    if fit.status == "completed" and fit.history:
        final = fit.history[-1]
        retrieval = {k.removeprefix("retrieval_"): v for k, v in final.items() if k.startswith("retrieval_top")}
        if retrieval:
            retrieval["protocol"] = _retrieval_protocol(cfg.eval.retrieval_clips, cfg.clip, index, cfg.eval.retrieval_feature)
            results["retrieval"] = retrieval
        results["final"] = final
        callback.on_before_checkpoint(epoch=fit.epochs_completed)
        _store_results_in_checkpoint(loop.checkpoint_path, results)
    callback.on_before_checkpoint(epoch=fit.epochs_completed)
    _write_results(out_dir, results)
    return RunResult(fit.status, fit.epochs_completed, results, loop.checkpoint_path)


def _retrieval_protocol(clips: int, clip: ClipSpec, index: DatasetIndex, feature: str) -> str:
    return (f"NN retrieval, {index.source}: {len(index.test)} test queries vs {len(index.train)} train gallery, "
            f"{clips} clips/video averaged, {clip.frames}x{clip.crop}^2 centre crop, cosine, {feature} feature")


def _data_summary(index: DatasetIndex) -> dict[str, Any]:
    return {"root": str(index.root), "source": index.source, "classes": len(index.classes), "train": len(index.train),
            "test": len(index.test), "problems": len(index.problems), "fingerprint": index.fingerprint()}


def _store_results_in_checkpoint(path: Path, results: dict[str, Any], *, task_state: dict[str, Any] | None = None) -> None:
    """Put the final results (and, when given, the evaluated weights) into the checkpoint a user will load."""
    state = load_checkpoint(path)
    state["results"] = {k: v for k, v in results.items() if k != "history"}
    if task_state is not None:
        state["task"] = task_state
    state.pop("format_version", None)
    save_checkpoint(path, state)


def _split_validation(items: list[Any], count: int, seed: int) -> tuple[list[Any], list[Any]]:
    """Hold out ``count`` videos of train for validation (reference: 800), at most a fifth of train."""
    count = min(count, len(items) // 5)
    if count <= 0:
        return items, []
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    held = set(order[:count])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]


def run_finetune(cfg: FinetuneConfig, *, out_dir: Path, callback: Callback, should_stop: Callable[[], bool] | None,
                  resume: bool, rt: Runtime) -> RunResult:
    backbone_state = None
    source_meta: dict[str, Any] = {}
    if cfg.source_checkpoint is not None:
        source = load_checkpoint(cfg.source_checkpoint)
        if source.get("kind") not in ("pretrain", "distill"):
            raise CheckpointError(f"{cfg.source_checkpoint} is a {source.get('kind')!r} checkpoint; fine-tune from pretrain or distill")
        if (source["backbone"], float(source["width"])) != (cfg.model.backbone, float(cfg.model.width)):
            callback.on_log(f"model taken from the source checkpoint: {source['backbone']} width {source['width']}")
            cfg = cfg.model_copy(update={"model": ModelConfig(backbone=source["backbone"], width=source["width"],
                                                             modality=source.get("modality", "res"))})
        backbone_state = {k.removeprefix("backbone."): v for k, v in source["task"]["net"].items() if k.startswith("backbone.")}
        source_meta = {"source_kind": source["kind"], "source_results": source.get("results", {})}
    index = prepare_index(cfg.data, min_frames=frames_needed(cfg.clip), callback=callback)
    train_items, val_items = _split_validation(index.train, cfg.val_videos, cfg.runtime.seed)
    cache = _frame_cache(cfg.data)
    train_set = ClipDataset(train_items, index.frame_counts(train_items), cfg.clip, cfg.augment, seed=cfg.runtime.seed, train=True,
                            cache=cache)
    val_set = ClipDataset(val_items, index.frame_counts(val_items), cfg.clip, cfg.augment, seed=cfg.runtime.seed, train=False,
                          cache=cache) if val_items else None
    workers = cfg.data.workers

    val_loader = make_loader(val_set, batch_size=cfg.optim.batch_size, shuffle=False, workers=workers, seed=0,
                             drop_last=False, pin_memory=rt.pin_memory) if val_set is not None else None

    def validate(model: torch.nn.Module) -> dict[str, float]:
        return task.validation_losses(val_loader) if val_loader is not None else {}

    task = ClassifierTask(cfg, num_classes=len(index.classes), rt=rt, backbone_state=backbone_state, validate=validate)
    meta = {
        "kind": "finetune",
        "config": cfg.model_dump(mode="json"),
        "config_hash": config_hash(cfg),
        "training_hash": training_hash(cfg),
        "data_fingerprint": index.fingerprint(),
        "classes": index.classes,
        "labels": index.classes,
        "code_version": code_version(),
        **_model_meta(cfg.model, cfg.clip),
        **source_meta,
    }
    loop = TrainingLoop(task, train_set, optim=cfg.optim, runtime_cfg=cfg.runtime, runtime=rt, out_dir=out_dir,
                        workers=workers, checkpoint_meta=meta, callback=callback, should_stop=should_stop)
    fit = loop.fit(resume=resume)
    results: dict[str, Any] = {"kind": "finetune", "status": fit.status, "epochs_completed": fit.epochs_completed,
                               "history": fit.history, "labels": index.classes, "data": _data_summary(index),
                               "config_hash": meta["config_hash"]}
    if fit.status == "completed":
        if loop.best_epoch:  # test the best-validation-loss epoch, as the reference does
            task.load_state_dict(load_checkpoint(loop.best_path)["task"])
        test_set = MultiClipDataset(index.test, index.frame_counts(index.test), cfg.clip, cfg.eval.test_clips, cache=cache)
        scores = (classify_videos(task.model, eval_loader(test_set, workers=workers, rt=rt), rt=rt, modality=cfg.model.modality)
                  if index.test else {})
        scores["protocol"] = (f"{index.source} test list, {len(index.test)} videos, video-level = logits averaged over "
                              f"{cfg.eval.test_clips} uniform clips, {cfg.clip.frames}x{cfg.clip.crop}^2 centre crop; "
                              f"{cfg.mode} fine-tune, best-val-loss epoch {loop.best_epoch or fit.epochs_completed}")
        results["test"] = scores
        results["best_epoch"] = loop.best_epoch or fit.epochs_completed
        # The served model is the evaluated one (best validation loss), stored in checkpoint.pt.
        callback.on_before_checkpoint(epoch=fit.epochs_completed)
        _store_results_in_checkpoint(loop.checkpoint_path, results, task_state=task.state_dict())
    callback.on_before_checkpoint(epoch=fit.epochs_completed)
    _write_results(out_dir, results)
    return RunResult(fit.status, fit.epochs_completed, results, loop.checkpoint_path)


def frozen_backbone(checkpoint: Path | None, *, clip: ClipSpec | None,
                    model: ModelConfig | None) -> tuple[torch.nn.Module, ModelConfig, ClipSpec]:
    """The backbone an evaluation kind scores: a checkpoint's (its model and, unless given, its clip) or, without one,
    a randomly initialised ``model`` (the "Random init" row)."""
    if checkpoint is None:
        model_cfg = model or ModelConfig()
        return build_backbone(model_cfg.backbone, width=model_cfg.width), model_cfg, clip or ClipSpec()
    state = load_checkpoint(checkpoint)
    model_cfg = ModelConfig(backbone=state["backbone"], width=state["width"], modality=state.get("modality", "res"))
    backbone = build_backbone(model_cfg.backbone, width=model_cfg.width)
    net_key = "net" if "net" in state["task"] else "model"
    backbone.load_state_dict({k.removeprefix("backbone."): v for k, v in state["task"][net_key].items() if k.startswith("backbone.")})
    return backbone, model_cfg, clip or ClipSpec.model_validate(state["clip"])


def train_then_test_videos(data: DataConfig, clip: ClipSpec, clips_per_video: int, *, callback: Callback,
                           rt: Runtime) -> tuple[DatasetIndex, VideoLoader]:
    """The indexed dataset and one in-order loader over its train videos then its test videos."""
    index = prepare_index(data, min_frames=frames_needed(clip), callback=callback)
    return index, eval_loader(_retrieval_videos(index, clip, clips_per_video, _frame_cache(data)), workers=data.workers, rt=rt)


def run_retrieve(cfg: RetrieveConfig, *, out_dir: Path, callback: Callback, rt: Runtime, **_: Any) -> RunResult:
    backbone, model_cfg, clip = frozen_backbone(cfg.checkpoint, clip=cfg.clip, model=cfg.model)
    index, videos = train_then_test_videos(cfg.data, clip, cfg.eval.retrieval_clips, callback=callback, rt=rt)
    started = time.perf_counter()
    scores: dict[str, Any] = retrieval_eval(backbone.to(rt.device), videos, gallery_size=len(index.train), rt=rt,
                                            modality=model_cfg.modality, ks=cfg.eval.retrieval_ks,
                                            feature=cfg.eval.retrieval_feature)
    scores["protocol"] = _retrieval_protocol(cfg.eval.retrieval_clips, clip, index, cfg.eval.retrieval_feature)
    results = {"kind": "retrieve", "status": "completed", "retrieval": scores, "checkpoint": str(cfg.checkpoint),
               "seconds": time.perf_counter() - started, "data": _data_summary(index)}
    callback.on_before_checkpoint(epoch=0)
    _write_results(out_dir, results)
    return RunResult("completed", 0, results, None)


def run_synthesize(cfg: SynthesizeConfig, *, callback: Callback, should_stop: Callable[[], bool] | None,
                   **_: Any) -> RunResult:
    """Render a synthetic dataset; progress is one step per video (one "epoch")."""
    from ml.synthetic import synthesize

    callback.on_start({"device": "cpu", "total_epochs": 1, "steps_per_epoch": cfg.videos, "start_epoch": 0,
                       "videos": cfg.videos, "estimated_bytes": cfg.estimated_bytes()})

    def progress(done: int, total: int) -> None:
        callback.on_step(epoch=1, step=done, metrics={"videos_rendered": float(done)})

    results = synthesize(cfg, on_progress=progress, should_stop=should_stop)
    if results is None:
        return RunResult("stopped", 0, {}, None)
    callback.on_epoch(epoch=1, metrics={"videos": float(cfg.videos), "bytes": float(results["bytes"])})
    callback.on_log(f"synthetic dataset: {cfg.videos} videos, {results['bytes']} bytes at {cfg.root}")
    return RunResult("completed", 1, {"kind": "synthesize", "status": "completed", **results}, None)


def run(config: AnyConfig | SynthesizeConfig, *, out_dir: Path, callback: Callback | None = None,
        should_stop: Callable[[], bool] | None = None, resume: bool = True) -> RunResult:
    """Train or evaluate as ``config.kind`` says (or render a synthetic dataset); outputs go to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    callback = callback or Callback()
    spec = kind_registry.get(config.kind)
    runner = spec.runner_function()  # ml.kinds: one runner per kind
    if not spec.uses_runtime:
        return runner(config, out_dir=out_dir, callback=callback, should_stop=should_stop,  # type: ignore[no-any-return]
                      resume=resume)
    (out_dir / "config.json").write_text(json.dumps(config.model_dump(mode="json"), indent=2))
    rt = resolve_runtime(config.runtime, pin_memory=config.data.pin_memory)  # type: ignore[union-attr]
    seed_everything(config.runtime.seed, deterministic=config.runtime.deterministic)  # type: ignore[union-attr]
    with released_loaders():  # no DataLoader worker process outlives the run, however it ends
        return runner(config, out_dir=out_dir, callback=callback, should_stop=should_stop,  # type: ignore[no-any-return]
                      resume=resume, rt=rt)


__all__ = ["run", "RunResult", "load_teacher", "prepare_index", "code_version"]
