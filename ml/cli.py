"""Command line: ``python -m ml synth|pretrain|distill|finetune|retrieve|predict|export|report|import``.

Each training command takes an optional YAML/JSON config file, ``--set a.b=value`` overrides and a
few shortcuts; the merged config is validated by the pydantic models in ml.config, and a wrong key
or value is reported by its dotted path.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ml.config import (
    ClipSpec,
    FinetuneConfig,
    PretrainConfig,
    RetrieveConfig,
    apply_overrides,
    load_config_file,
)
from ml.engine.callbacks import Callback
from ml.errors import MLError

log = logging.getLogger("ml")

# A CPU-sized preset: tiny clips and widths, so a run takes minutes on a laptop (tests, demos).
TINY_PRESET: dict[str, Any] = {
    "clip": ClipSpec.tiny().model_dump(mode="json"),
    "model": {"width": 0.125},
    "optim": {"batch_size": 8, "epochs": 4, "lr": 0.05, "scheduler": "none"},
    "eval": {"retrieval_clips": 3, "test_clips": 3},
    "runtime": {"log_every": 5},
}
TINY_CONTRAST = {"contrast": {"negatives": 64}}


def format_validation_error(err: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = f" (got {e['input']!r})" if "input" in e and not isinstance(e["input"], dict) else ""
        lines.append(f"  {where}: {e['msg']}{got}")
    return "\n".join(lines)


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class ProgressBar(Callback):
    """A tqdm bar over all steps of the run plus a log line per epoch."""

    def __init__(self) -> None:
        self.bar: Any = None

    def on_start(self, info: dict[str, Any]) -> None:
        from tqdm import tqdm

        total = info["total_epochs"] * info["steps_per_epoch"]
        self.bar = tqdm(total=total, initial=info["start_epoch"] * info["steps_per_epoch"], unit="step",
                        dynamic_ncols=True, file=sys.stderr)

    def on_step(self, *, epoch: int, step: int, metrics: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix(epoch=epoch, loss=f"{metrics.get('loss', 0):.3f}", refresh=False)
            self.bar.refresh()

    def on_epoch(self, *, epoch: int, metrics: dict[str, float]) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        self._write(f"epoch {epoch}: {shown}")

    def on_log(self, message: str) -> None:
        self._write(message)

    def _write(self, message: str) -> None:
        """Progress goes to stderr; stdout carries only the final JSON, so it can be piped."""
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)


def build_config(kind: str, args: argparse.Namespace) -> BaseModel:
    data: dict[str, Any] = load_config_file(args.config) if args.config else {}
    if args.preset == "tiny":
        preset = _deep_merge(TINY_PRESET, TINY_CONTRAST) if kind in ("pretrain", "distill") else TINY_PRESET
        if kind == "finetune":
            preset = _deep_merge(preset, {"clip": {"normalize": False}})
        if kind == "retrieve":
            preset = {"clip": preset["clip"], "eval": preset["eval"]}
        data = _deep_merge(preset, data)
    if args.data_root:
        data.setdefault("data", {})["root"] = str(args.data_root)
    if kind in ("pretrain", "distill"):
        data["kind"] = kind
        if kind == "distill":
            data.setdefault("distill", {})
            data["distill"].setdefault("alpha", 1.0)
            if args.teacher:
                data["distill"]["teacher_checkpoint"] = str(args.teacher)
    if kind == "finetune" and args.source:
        data["source_checkpoint"] = str(args.source)
    if kind == "retrieve" and args.checkpoint:
        data["checkpoint"] = str(args.checkpoint)
    data = apply_overrides(data, args.set or [])
    model = {"pretrain": PretrainConfig, "distill": PretrainConfig, "finetune": FinetuneConfig, "retrieve": RetrieveConfig}[kind]
    return model.model_validate(data)


def _cmd_train(kind: str, args: argparse.Namespace) -> int:
    from ml.engine import run

    config = build_config(kind, args)
    if args.print_config:
        print(json.dumps(config.model_dump(mode="json"), indent=2))
        return 0
    result = run(config, out_dir=args.out, callback=ProgressBar(), resume=not args.no_resume)  # type: ignore[arg-type]
    summary = {k: v for k, v in result.results.items() if k not in ("history",)}
    print(json.dumps({"status": result.status, "out": str(args.out), **summary}, indent=2, default=str))
    return 0 if result.status == "completed" else 3


def _cmd_synth(args: argparse.Namespace) -> int:
    from ml.synthetic import generate_from_args

    summary = generate_from_args(args)
    print(json.dumps(dataclasses.asdict(summary), indent=2, default=str))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from ml.inference import Predictor

    predictor = Predictor.load(args.checkpoint, device=args.device)
    prediction = predictor.predict(args.video, top_k=args.top_k, clips=args.clips)
    print(json.dumps(prediction.to_dict(), indent=2))
    return 0


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML or JSON config file")
    p.add_argument("--data-root", type=Path, help="dataset root (shortcut for --set data.root=...)")
    p.add_argument("--out", type=Path, required=True, help="run directory: checkpoint.pt, results.json, config.json")
    p.add_argument("--preset", choices=["pcl", "tiny"], default="pcl",
                   help="pcl: the reference defaults (16x112^2, width 1); tiny: CPU-sized clips and width 1/8")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. --set optim.epochs=10 (repeatable)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--print-config", action="store_true", help="print the validated config and exit")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    from ml.synthetic import add_arguments as add_synth_arguments

    add_synth_arguments(sub.add_parser("synth", help="write a synthetic UCF101-layout action dataset"))

    for name, text in (("pretrain", "PCL teacher pretraining"), ("distill", "KD student (PCL losses + KL to a frozen teacher)"),
                       ("finetune", "fine-tune a pretrained backbone into a classifier"), ("retrieve", "nearest-neighbour retrieval")):
        p = sub.add_parser(name, help=text)
        _add_train_args(p)
        if name == "distill":
            p.add_argument("--teacher", type=Path, help="teacher checkpoint (pretrain or distill run's checkpoint.pt)")
        if name == "finetune":
            p.add_argument("--source", type=Path, help="pretrained checkpoint; omit to train from scratch")
        if name == "retrieve":
            p.add_argument("--checkpoint", type=Path, help="checkpoint to evaluate; omit for random init")

    pr = sub.add_parser("predict", help="classify a video with a fine-tuned checkpoint")
    pr.add_argument("video", type=Path)
    pr.add_argument("--checkpoint", type=Path, required=True)
    pr.add_argument("--top-k", type=int, default=5)
    pr.add_argument("--clips", type=int, default=10)
    pr.add_argument("--device", default="cpu")

    from ml.tools_cli import add_commands as add_tool_commands

    add_tool_commands(sub)  # export, report, import
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "synth":
            return _cmd_synth(args)
        if args.command == "predict":
            return _cmd_predict(args)
        from ml.tools_cli import COMMANDS as TOOL_COMMANDS, run as run_tool

        if args.command in TOOL_COMMANDS:
            return run_tool(args)
        return _cmd_train(args.command, args)
    except ValidationError as err:
        print(format_validation_error(err), file=sys.stderr)
        return 2
    except (MLError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
