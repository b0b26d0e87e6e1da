"""Typed run configuration for every ml/ entry point.

Configs are pydantic models with ``extra="forbid"`` so a misspelt key is an error that names it.
Defaults reproduce the PCL-VCP reference (docs/method.md §2.3, §8); every deviation from the reference
code is a named option whose default keeps the reference behaviour unless docs/method.md §8 says otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import json
import typing
from pathlib import Path, PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ml.catalog import BACKBONES, BackboneName  # noqa: F401  (re-exported: accepted model.backbone names)
from ml.kd_terms import KD_TERMS, LEGACY_TARGETS, legacy_target


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ClipSpec(StrictModel):
    """How a clip is cut from a video: frames, decode size and crop (PCL: 16 frames, 128x171 -> 112)."""

    frames: int = Field(16, ge=2, le=128, description="frames per clip")
    resize_h: int = Field(128, ge=8, description="height decoded by decord before cropping")
    resize_w: int = Field(171, ge=8, description="width decoded by decord before cropping")
    crop: int = Field(112, ge=8, description="square crop fed to the network")
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    normalize: bool = Field(True, description="ImageNet mean/std normalisation (PCL pretraining and retrieval use it)")

    @model_validator(mode="after")
    def _crop_fits(self) -> "ClipSpec":
        if self.crop > min(self.resize_h, self.resize_w):
            raise ValueError(f"crop {self.crop} is larger than the decoded size {self.resize_h}x{self.resize_w}")
        return self

    @classmethod
    def tiny(cls, frames: int = 8, crop: int = 32) -> "ClipSpec":
        """A CPU-sized clip with the PCL aspect ratio (128:171) around the crop."""
        h = int(round(crop * 128 / 112))
        return cls(frames=frames, crop=crop, resize_h=h, resize_w=int(round(h * 171 / 128)))


class AugmentConfig(StrictModel):
    """PCL training augmentations; parameters are drawn once per clip (docs/method.md §2.1 pitfall)."""

    random_crop: bool = True
    color_jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    color_jitter_p: float = Field(0.8, ge=0, le=1)
    grayscale_p: float = Field(0.2, ge=0, le=1)
    blur_p: float = Field(0.5, ge=0, le=1)
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    hflip_p: float = Field(0.5, ge=0, le=1)
    per_frame_params: bool = Field(
        False, description="reproduce the reference bug: draw crop/flip/colour per frame instead of per clip"
    )

    @classmethod
    def none(cls) -> "AugmentConfig":
        return cls(random_crop=False, color_jitter_p=0, grayscale_p=0, blur_p=0, hflip_p=0)


class DataConfig(StrictModel):
    """Which videos: a UCF101-layout root (split files) or a folder per class (seeded group-aware split)."""

    root: Path
    split: int = Field(1, ge=1, le=3, description="split 1, 2 or 3 (UCF101 and HMDB51 split files)")
    splits_dir: Path | None = Field(None, description="folder with classInd.txt/trainlist0N.txt; default: auto-detect under root")
    subset: float = Field(1.0, gt=0, le=1, description="class-balanced fraction of the training list (1, .5, .25, .02)")
    subset_seed: int = 0
    test_fraction: float = Field(0.3, gt=0, lt=1, description="test share for folders without split files")
    workers: int = Field(2, ge=0, le=64, description="DataLoader worker processes")
    cache_mb: int = Field(
        0, ge=0, description="per-process cache of whole decoded videos in MB (0: off); worth it when the set fits, e.g. small sets or 2% fractions"
    )
    pin_memory: bool | None = Field(None, description="None: pin when training on CUDA")


class PretextConfig(StrictModel):
    """VCP pretext task (docs/method.md §2.1)."""

    tuple_len: int = Field(3, ge=3, description="clips per tuple; the middle one is edited")
    interval: int = Field(8, ge=0, description="frames between clips")
    spacing: Literal["pcl", "vcop"] = Field(
        "pcl", description="pcl: clips start tuple_len+interval apart (reference quirk, overlapping); vcop: clip_len+interval"
    )
    num_classes: int = Field(5, ge=2, le=5, description="0 original, 1 rotation, 2 spatial permutation, 3 temporal shuffle, 4 remote clip")
    remote_distance: int = Field(16, ge=1, description="minimum frames between the tuple and a remote clip")


class ContrastConfig(StrictModel):
    """NCE memory-bank contrastive loss (NCEAverage_ori, docs/method.md §2.2)."""

    weight: float = Field(0.5, ge=0, description="w_con in L = CE_pretext + w_con*L_nce")
    negatives: int = Field(1024, ge=1, description="K negatives drawn from the memory bank")
    temperature: float = Field(0.07, gt=0)
    momentum: float = Field(0.5, ge=0, lt=1, description="memory bank update momentum")
    proj_dim: int = Field(128, ge=2)
    exclude_positive_from_negatives: bool = Field(False, description="reference draws negatives that may include the sample itself")


class DistillConfig(StrictModel):
    """Knowledge distillation from a frozen teacher: alpha * T^2 * KL(softmax(t/T) || softmax(s/T))."""

    teacher_checkpoint: Path | None = Field(None, description="a PCL checkpoint; required when alpha > 0")
    alpha: float = Field(1.0, ge=0, description="KD weight; 0 gives the no-KD baseline")
    temperature: float = Field(4.0, gt=0)
    terms: dict[str, float] = Field(
        default_factory=lambda: {"pretext": 1.0},
        description="KD terms and their weights, L_kd = sum(weight * term) (ml.kd_terms: "
                    + ", ".join(KD_TERMS) + "); the deprecated 'target' (pretext|contrastive|both) maps onto it",
    )
    t_squared: bool = Field(True, description="multiply the KL term by T^2 (Hinton)")

    @model_validator(mode="before")
    @classmethod
    def _target_alias(cls, data: Any) -> Any:
        """``target`` (deprecated) -> ``terms``, so stored job configs and user YAML keep working."""
        if isinstance(data, dict) and "target" in data:
            data = dict(data)
            target = data.pop("target")
            if "terms" in data:
                raise ValueError("give distill.terms or the deprecated distill.target, not both")
            if target not in LEGACY_TARGETS:
                raise ValueError(f"distill.target must be one of {', '.join(LEGACY_TARGETS)} (deprecated: use distill.terms)")
            data["terms"] = dict(LEGACY_TARGETS[target])
        return data

    @property
    def target(self) -> str | None:
        """Deprecated read-only view: the old ``target`` spelling of ``terms`` (None when it has none)."""
        return legacy_target(self.terms)

    @field_validator("terms")
    @classmethod
    def _known_terms(cls, terms: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(terms) - set(KD_TERMS))
        if unknown:
            raise ValueError(f"unknown KD term(s) {unknown}; terms: {', '.join(KD_TERMS)}")
        if any(w < 0 for w in terms.values()) or not any(w > 0 for w in terms.values()):
            raise ValueError("distill.terms needs at least one positive weight and no negative one")
        return {name: w for name, w in terms.items() if w > 0}  # weight 0 switches an inherited term off


class OptimConfig(StrictModel):
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    batch_size: int = Field(16, ge=1)
    epochs: int = Field(200, ge=1)
    scheduler: Literal["plateau", "cosine", "none"] = "plateau"
    plateau_patience: int = Field(50, ge=0)
    plateau_factor: float = Field(0.1, gt=0, lt=1)
    min_lr: float = Field(1e-5, ge=0)
    grad_clip: float | None = Field(None, gt=0)


class RuntimeConfig(StrictModel):
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    seed: int = 632
    deterministic: bool = True
    amp: bool | None = Field(None, description="bf16 autocast; None: on for CUDA")
    channels_last: bool | None = Field(None, description="channels_last_3d memory format; None: on for CUDA")
    log_every: int = Field(10, ge=1, description="steps between step callbacks")
    checkpoint_every: int = Field(1, ge=1, description="epochs between checkpoints")
    keep_every: int = Field(50, ge=0, description="also keep epochNNNN.pt every N epochs, as PCL does (0: never)")
    retrieval_every: int = Field(0, ge=0, description="epochs between retrieval evaluations (0: only at the end if eval.retrieval)")
    validate_every: int = Field(1, ge=0, description="epochs between validation-loss passes (best.pt, plateau scheduler); 0: never")
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap for quick runs")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads on CPU")


class EvalConfig(StrictModel):
    retrieval: bool = Field(True, description="nearest-neighbour retrieval on the test split at the end")
    retrieval_clips: int = Field(10, ge=1)
    retrieval_ks: tuple[int, ...] = (1, 5, 10, 20, 50)
    retrieval_feature: Literal["pooled", "map"] = Field(
        "pooled", description="pooled 512-d vector, or the reference R3D conv5 map max-pooled (1,2,2) and flattened"
    )
    test_clips: int = Field(10, ge=1, description="clips per video for video-level accuracy")


class ModelConfig(StrictModel):
    backbone: BackboneName = "r3d"
    width: float = Field(1.0, gt=0, le=4, description="channel width multiplier (1/8 for CPU tests)")
    modality: Literal["res", "rgb"] = Field("res", description="res: residual frames (PCL default); rgb: raw frames")


class PretrainConfig(StrictModel):
    """A PCL run: teacher pretraining (distill.alpha == 0) or KD student / baseline."""

    kind: Literal["pretrain", "distill"] = "pretrain"
    data: DataConfig
    clip: ClipSpec = ClipSpec()
    augment: AugmentConfig = AugmentConfig()
    model: ModelConfig = ModelConfig()
    pretext: PretextConfig = PretextConfig()
    contrast: ContrastConfig = ContrastConfig()
    distill: DistillConfig = DistillConfig(alpha=0.0)
    optim: OptimConfig = OptimConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    eval: EvalConfig = EvalConfig()

    @model_validator(mode="after")
    def _teacher_when_distilling(self) -> "PretrainConfig":
        if self.kind == "distill" and self.distill.alpha > 0 and self.distill.teacher_checkpoint is None:
            raise ValueError("distill.teacher_checkpoint is required when kind='distill' and distill.alpha > 0")
        if self.kind == "pretrain" and self.distill.alpha > 0:
            raise ValueError("kind='pretrain' trains a teacher: set distill.alpha to 0 or use kind='distill'")
        return self


class FinetuneConfig(StrictModel):
    """Fine-tune (or linear-probe) a pretrained backbone into an action classifier (docs/method.md §4.1)."""

    kind: Literal["finetune"] = "finetune"
    data: DataConfig
    source_checkpoint: Path | None = Field(None, description="pretrain/distill checkpoint; None trains from scratch")
    clip: ClipSpec = ClipSpec(normalize=False)
    augment: AugmentConfig = AugmentConfig(color_jitter_p=0, grayscale_p=0, blur_p=0, hflip_p=0)
    model: ModelConfig = ModelConfig()
    mode: Literal["full", "linear"] = "full"
    dropout: float = Field(0.0, ge=0, lt=1)
    val_videos: int = Field(800, ge=0, description="videos held out of train for validation (reference: 800)")
    optim: OptimConfig = OptimConfig(lr=1e-3, batch_size=8, epochs=150, plateau_patience=30)
    runtime: RuntimeConfig = RuntimeConfig()
    eval: EvalConfig = EvalConfig(retrieval=False)


class RetrieveConfig(StrictModel):
    kind: Literal["retrieve"] = "retrieve"
    data: DataConfig
    checkpoint: Path | None = Field(None, description="None: a randomly initialised backbone (the 'Random init' row)")
    clip: ClipSpec | None = Field(None, description="None: the checkpoint's clip spec")
    model: ModelConfig | None = None
    eval: EvalConfig = EvalConfig()
    runtime: RuntimeConfig = RuntimeConfig()


class KnnConfig(StrictModel):
    """Weighted kNN classification on frozen features (InstDisc, Wu et al. 2018, as solo-learn reports it): the train
    list is the memory bank, the test list the queries; a query's score for a class is the sum of exp(cos/T) over
    those of its k nearest train videos that have the class. Reports top-1/top-5."""

    kind: Literal["knn"] = "knn"
    data: DataConfig
    checkpoint: Path | None = Field(None, description="None: a randomly initialised backbone")
    clip: ClipSpec | None = Field(None, description="None: the checkpoint's clip spec")
    model: ModelConfig | None = None
    k: int = Field(20, ge=1, le=1000, description="neighbours that vote (solo-learn: 20; InstDisc: 200)")
    temperature: float = Field(0.07, gt=0, description="vote weight exp(cosine / T)")
    clips: int = Field(10, ge=1, le=64, description="clips per video; a video's feature is their mean")
    runtime: RuntimeConfig = RuntimeConfig()


AnyConfig = PretrainConfig | FinetuneConfig | RetrieveConfig | KnnConfig


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    """The config models an annotation holds (``ClipSpec``, ``ClipSpec | None``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested_models(arg)]


def _names_a_path(annotation: Any) -> bool:
    """True when a value of this type can be a filesystem path (``Path``, ``Path | None``, ``list[Path]``...)."""
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return True
    return any(_names_a_path(arg) for arg in typing.get_args(annotation))


def config_fields(model: type[BaseModel], prefix: str = "") -> dict[str, bool]:
    """Every leaf field of a config model as a dotted key -> whether it is path-typed (walked by type).

    A field holding a nested config model is a section: its own fields are listed, not the section."""
    out: dict[str, bool] = {}
    for name, info in model.model_fields.items():
        dotted = f"{prefix}{name}"
        nested = _nested_models(info.annotation)
        if nested:
            for sub in nested:
                out.update(config_fields(sub, f"{dotted}."))
        else:
            out[dotted] = _names_a_path(info.annotation)
    return out


@functools.cache
def path_fields(model: type[BaseModel]) -> frozenset[str]:
    """Dotted keys of every path-typed field (data root, splits dir, checkpoints) of ``model``."""
    return frozenset(key for key, is_path in config_fields(model).items() if is_path)


@functools.cache
def overridable_fields(model: type[BaseModel]) -> frozenset[str]:
    """What a service request may override: every leaf field except path-typed ones (paths come only from
    dataset and job ids) and the ``kind`` the job's kind decides."""
    return frozenset(key for key, is_path in config_fields(model).items() if not is_path and key != "kind")


def _hashed_view(config: BaseModel) -> dict[str, Any]:
    """The config as hashed: KD terms that the deprecated ``distill.target`` can spell are hashed as that target,
    so configs (and checkpoints' training hashes) from before ``distill.terms`` keep their hashes."""
    data = config.model_dump(mode="json")
    distill = data.get("distill")
    if isinstance(distill, dict) and "terms" in distill:
        target = legacy_target(distill["terms"])
        if target is not None:
            del distill["terms"]
            distill["target"] = target
    return data


def config_hash(config: BaseModel) -> str:
    """Stable short hash of a config (JSON with sorted keys)."""
    payload = json.dumps(_hashed_view(config), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# Settings that change how a run is reported or stored, not what it computes: a run may resume with them changed.
RESUME_NEUTRAL = {"runtime": ("log_every", "checkpoint_every", "keep_every", "threads", "retrieval_every"),
                  "data": ("workers", "pin_memory", "cache_mb")}


def training_hash(config: BaseModel) -> str:
    """Hash of what determines the trained weights; a checkpoint resumes only under the same one."""
    data = _hashed_view(config)
    for section, keys in RESUME_NEUTRAL.items():
        for key in keys:
            data.get(section, {}).pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a dict (validation happens in the caller's model)."""
    text = Path(path).read_text()
    if Path(path).suffix.lower() in {".yaml", ".yml"}:
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """``data["a"]["b"]["c"] = value`` for ``"a.b.c"``, creating sections on the way."""
    node = data
    *parents, leaf = dotted.strip().split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"{dotted!r}: {part!r} is not a section")
    node[leaf] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; values are parsed as YAML scalars (numbers, bools, lists)."""
    import yaml

    out = json.loads(json.dumps(data, default=str))
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.path=value")
        key, raw = item.split("=", 1)
        try:
            set_dotted(out, key, yaml.safe_load(raw))
        except ValueError as exc:
            raise ValueError(f"override {item!r}: {exc}") from None
    return out
