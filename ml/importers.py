"""Import a checkpoint trained elsewhere as a teacher or fine-tuning source.

Two key layouts are understood, each written down here as data (rename rules), not as code copied
from their projects:

* ``pcl``: the PCL reference (and VCOP) code. Its pretraining network keeps the trunk under
  ``base_network.`` and the MoCo projection MLP under ``projector.mlp.{0,2}``. The trunks are VCOP's
  ``R3DNet`` / ``R2Plus1DNet`` (``conv1``/``bn1`` stem, stages ``conv2``..``conv5`` each with ``block1``
  and ``blocks.{k}``, blocks with ``conv1 bn1 conv2 bn2 downsampleconv downsamplebn``; an R3D conv is
  ``<name>.temporal_spatial_conv``, an R(2+1)D conv is ``<name>.spatial_conv / .bn / .temporal_conv``),
  VCOP's ``C3D`` (``conv1 bn1 conv2 bn2 conv3a bn3a ... conv5b bn5b``), or, for PCL's ``r18`` and ``r21d``,
  torchvision's ``r3d_18`` / ``r2plus1d_18`` children in a ``Sequential`` (``0`` stem, ``1``-``4`` layers):
  our ``r3d18`` / ``r21d18``. A bare trunk (a VCOP checkpoint, no prefix) is accepted too.
* ``torchvision``: ``torchvision.models.video.r3d_18()`` / ``r2plus1d_18()`` state dicts: ``stem.{0,1}`` (R(2+1)D:
  ``stem.{0,1,3,4}``), ``layer{1-4}.{b}.conv1.{0,1}``, ``.conv2.{0,1}``, ``.downsample.{0,1}``, ``fc``; an R(2+1)D
  conv is itself ``{0 spatial, 1 BN, 3 temporal}``, as ours.

Files load with ``weights_only=True`` (:func:`ml.engine.checkpoint.safe_load`): a pickle that builds any
other object is refused before anything in it runs. The imported network is written as one of our own
weights-only checkpoints (kind ``pretrain``, with an ``origin`` record), so ``distill --teacher`` and
``finetune --source`` take it like a checkpoint trained here. Heads the reference does not share with us
(its pretext classifiers, torchvision's Kinetics ``fc``) are dropped and ours start fresh: the import
says which.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ml.config import ClipSpec, PretrainConfig
from ml.engine.checkpoint import safe_load, save_checkpoint
from ml.errors import CheckpointError
from ml.import_spec import FORMATS, IMPORT, ImportConfig
from ml.models import build_pcl_net

Rule = tuple[str, str | Callable[[re.Match[str]], str]]

# ----------------------------------------------------------------------------- the layouts, as data

# VCOP/PCL ResNet trunks: stage and block names -> ours (applied in order, each to the whole key).
_VCOP_RESNET: tuple[Rule, ...] = (
    (r"^conv1\.", "stem.0."),
    (r"^bn1\.", "stem.1."),
    (r"^conv([2-5])\.block1\.", lambda m: f"layer{int(m[1]) - 1}.0."),
    (r"^conv([2-5])\.blocks\.(\d+)\.", lambda m: f"layer{int(m[1]) - 1}.{int(m[2]) + 1}."),
    (r"\.conv1\.", ".conv1.0."),
    (r"\.bn1\.", ".conv1.1."),
    (r"\.conv2\.", ".conv2.0."),
    (r"\.bn2\.", ".conv2.1."),
    (r"\.downsampleconv\.", ".shortcut.0."),
    (r"\.downsamplebn\.", ".shortcut.1."),
)
# how one conv is spelled inside those trunks
_VCOP_R3D_CONV: tuple[Rule, ...] = ((r"\.temporal_spatial_conv\.", "."),)
_VCOP_R21D_CONV: tuple[Rule, ...] = (
    (r"\.spatial_conv\.", ".0."),  # our Conv2Plus1D: 0 spatial conv, 1 BN, 2 ReLU, 3 temporal conv
    (r"\.bn\.", ".1."),
    (r"\.temporal_conv\.", ".3."),
)
# VCOP C3D: conv<n> + bn<n> -> our conv<n> = Sequential(conv, BN, ReLU)
_VCOP_C3D: tuple[Rule, ...] = (
    (r"^(conv\d[ab]?)\.", r"\1.0."),
    (r"^bn(\d[ab]?)\.", r"conv\1.1."),
)
# torchvision video ResNet: ours differs only in the shortcut's name
_TORCHVISION_RESNET: tuple[Rule, ...] = ((r"\.downsample\.", ".shortcut."),)
# PCL's r18: torchvision's children in a Sequential (stem, layer1..4, avgpool)
_PCL_SEQUENTIAL: tuple[Rule, ...] = ((r"^0\.", "stem."), (r"^([1-4])\.", r"layer\1."))


@dataclass(frozen=True)
class Layout:
    """How one external format spells one of our backbones."""

    trunk: tuple[Rule, ...]  # renames of the trunk's keys (after the prefix is removed)
    prefixes: tuple[str, ...]  # where the trunk may sit in the file; the first that matches wins
    projector: str | None = None  # the file's projection head prefix (its ``mlp.*`` maps onto our proj_head)
    dropped: tuple[str, ...] = ()  # prefixes of known heads we do not take
    modality: str = "res"  # the input the format's networks were trained on, unless told


_PCL_PREFIXES = ("module.base_network.", "base_network.", "module.", "")
_PCL_DROPPED = ("fc_seq.", "fc_speed.", "fc7.", "fc8.", "linear.", "fc6.", "module.fc_seq.", "module.fc_speed.")
LAYOUTS: dict[tuple[str, str], Layout] = {
    ("pcl", "r3d"): Layout(_VCOP_RESNET + _VCOP_R3D_CONV, _PCL_PREFIXES, "projector.", _PCL_DROPPED),
    ("pcl", "r21d"): Layout(_VCOP_RESNET + _VCOP_R21D_CONV, _PCL_PREFIXES, "projector.", _PCL_DROPPED),
    ("pcl", "c3d"): Layout(_VCOP_C3D, _PCL_PREFIXES, "projector.", _PCL_DROPPED),
    ("pcl", "r3d18"): Layout(_PCL_SEQUENTIAL + _TORCHVISION_RESNET, _PCL_PREFIXES, "projector.", _PCL_DROPPED),
    ("pcl", "r21d18"): Layout(_PCL_SEQUENTIAL + _TORCHVISION_RESNET, _PCL_PREFIXES, "projector.", _PCL_DROPPED),
    ("torchvision", "r3d18"): Layout(_TORCHVISION_RESNET, ("module.", ""), None, ("fc.", "module.fc."), "rgb"),
    ("torchvision", "r21d18"): Layout(_TORCHVISION_RESNET, ("module.", ""), None, ("fc.", "module.fc."), "rgb"),
}


def rename(key: str, rules: tuple[Rule, ...]) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


# ----------------------------------------------------------------------------- import


@dataclass
class ImportResult:
    path: Path
    backbone: str
    width: float
    modality: str
    origin: dict[str, Any]
    mapped: int  # tensors taken from the file
    fresh: list[str] = field(default_factory=list)  # our modules that start from a fresh init
    dropped: list[str] = field(default_factory=list)  # the file's keys left out (its own heads)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


def _tensors(payload: Any, source: str) -> dict[str, Tensor]:
    """The state dict inside a loaded file: the file itself, or its ``state_dict`` / ``model`` / ``net`` entry."""
    if isinstance(payload, Mapping):
        for key in ("state_dict", "model", "net"):
            inner = payload.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, Tensor) for v in inner.values()):
                payload = inner
                break
    if not isinstance(payload, Mapping) or not payload or not all(isinstance(v, Tensor) for v in payload.values()):
        raise CheckpointError(f"{source} holds no state dict (a mapping of names to tensors)")
    return {str(k): v for k, v in payload.items()}


def map_state_dict(state: Mapping[str, Tensor], fmt: str, backbone: str) -> tuple[dict[str, Tensor], dict[str, Tensor], list[str]]:
    """``(trunk, projector, dropped)``: the file's tensors under our backbone's and proj_head's names."""
    try:
        layout = LAYOUTS[(fmt, backbone)]
    except KeyError:
        known = ", ".join(f"{f}/{b}" for f, b in LAYOUTS)
        raise ValueError(f"no {fmt!r} layout for backbone {backbone!r}; known format/backbone pairs: {known}") from None
    proj_prefixes = (f"module.{layout.projector}", layout.projector) if layout.projector else ()
    projector: dict[str, Tensor] = {}
    for key, value in state.items():
        p = next((p for p in proj_prefixes if key.startswith(p)), None)
        if p is not None:
            projector[key.removeprefix(p)] = value
    dropped = sorted(k for k in state if k.startswith(layout.dropped))
    rest = {k: v for k, v in state.items() if k not in dropped and not k.startswith(proj_prefixes)}
    prefix = next((p for p in layout.prefixes if p and any(k.startswith(p) for k in rest)), "")
    trunk: dict[str, Tensor] = {}
    for key, value in rest.items():
        if not key.startswith(prefix):
            raise CheckpointError(f"unexpected key {key!r} outside the trunk {prefix!r} of a {fmt} {backbone} checkpoint")
        ours = rename(key.removeprefix(prefix), layout.trunk)
        if ours in trunk:
            raise CheckpointError(f"two keys of the file map onto {ours!r}")
        trunk[ours] = value
    return trunk, projector, dropped


def _infer_width(trunk: Mapping[str, Tensor], backbone: str) -> float:
    """Width from the trunk's last BatchNorm (the feature width) against the width-1 network's; 1 when the file
    has none of the backbone's names (the load then lists what does not match)."""
    from ml.models import build_backbone

    with torch.device("meta"):
        reference = build_backbone(backbone).state_dict()
    norms = [k for k, v in reference.items() if k.endswith("running_mean") and k in trunk]
    if not norms:
        return 1.0
    return float(trunk[norms[-1]].shape[0]) / float(reference[norms[-1]].shape[0])


def import_checkpoint(src: Path, *, fmt: str, backbone: str, out: Path, width: float | None = None,
                      modality: str | None = None, clip: ClipSpec | None = None, seed: int = 0,
                      name: str | None = None) -> ImportResult:
    """Map ``src`` (format ``fmt``) onto our ``backbone`` and write a teacher/source checkpoint to ``out``.

    Every tensor of our trunk must come from the file, with the same shape; an unknown key, a missing
    one or a shape mismatch is a CheckpointError naming it. ``width`` is inferred from the stem when not given.
    """
    src = Path(src)
    payload = safe_load(src)  # weights_only: a crafted pickle is refused here, never run
    state = _tensors(payload, src.name)
    trunk, projector, dropped = map_state_dict(state, fmt, backbone)
    width = width if width is not None else _infer_width(trunk, backbone)
    layout = LAYOUTS[(fmt, backbone)]
    modality = modality or layout.modality
    clip = clip or ClipSpec()
    proj_dim = int(projector["mlp.2.weight"].shape[0]) if "mlp.2.weight" in projector else 128  # Linear->ReLU->Linear
    torch.manual_seed(seed)
    net = build_pcl_net(backbone, width, proj_dim=proj_dim)
    _load_exact(net.backbone, trunk, what=f"{fmt} {backbone} trunk")
    fresh = ["vcp_head"]
    if projector:
        _load_exact(net.proj_head, projector, what=f"{fmt} projector")
    else:
        fresh.append("proj_head")
    digest = hashlib.sha256()
    with src.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    origin = {"format": fmt, "file": name or src.name, "sha256": digest.hexdigest(), "tensors": len(state)}
    config = PretrainConfig.model_validate({
        "data": {"root": "imported"}, "clip": clip.model_dump(mode="json"),
        "model": {"backbone": backbone, "width": width, "modality": modality}, "contrast": {"proj_dim": proj_dim},
    })
    payload_out = {
        "kind": "pretrain", "origin": origin, "config": config.model_dump(mode="json"), "backbone": backbone,
        "width": width, "modality": modality, "clip": clip.model_dump(mode="json"), "classes": [],
        "task": {"net": net.state_dict()}, "results": {"origin": origin, "fresh": fresh},
    }
    save_checkpoint(Path(out), payload_out)
    return ImportResult(path=Path(out), backbone=backbone, width=width, modality=modality, origin=origin,
                        mapped=len(trunk) + len(projector), fresh=fresh, dropped=dropped)


def _load_exact(module: torch.nn.Module, tensors: Mapping[str, Tensor], *, what: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{what} does not match: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                              f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    wrong = [k for k, v in tensors.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if wrong:
        k = wrong[0]
        raise CheckpointError(f"{what}: {k} has shape {tuple(tensors[k].shape)}, expected {tuple(expected[k].shape)}")
    module.load_state_dict(dict(tensors), strict=True)


def run_import(cfg: ImportConfig, *, out_dir: Path, **_: Any) -> Any:
    """The ``import`` kind's runner (``ml.kinds``): the converted checkpoint as ``out_dir/checkpoint.pt``."""
    from ml.engine.checkpoint import CHECKPOINT_NAME
    from ml.engine.runner import RunResult

    result = import_checkpoint(cfg.checkpoint, fmt=cfg.format, backbone=cfg.backbone, out=Path(out_dir) / CHECKPOINT_NAME,
                               width=cfg.width, modality=cfg.modality)
    summary = {"kind": IMPORT, "status": "completed", **{k: v for k, v in result.to_dict().items() if k != "path"}}
    return RunResult("completed", 0, summary, result.path)


# ----------------------------------------------------------------------------- the command line


def add_arguments(p: Any) -> None:
    p.add_argument("checkpoint", type=Path, help="the external checkpoint (a torch state dict)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, required=True, help="its key layout")
    p.add_argument("--backbone", required=True, help="our backbone it maps onto: " + ", ".join(sorted({b for _, b in LAYOUTS})))
    p.add_argument("--out", type=Path, required=True, help="where to write the importable checkpoint")
    p.add_argument("--width", type=float, help="channel width (default: inferred from the stem)")
    p.add_argument("--modality", choices=["res", "rgb"], help="input the network was trained on (pcl: res, torchvision: rgb)")


def run_from_args(args: Any) -> dict[str, Any]:
    result = import_checkpoint(args.checkpoint, fmt=args.fmt, backbone=args.backbone, out=args.out,
                               width=args.width, modality=args.modality)
    return result.to_dict()
