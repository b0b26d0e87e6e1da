"""Command line: ``python -m ml synth|recipes|predict|export|report|import`` and one sub-command per job kind of ``ml.kinds``.

Each kind's command takes a recipe (``--recipe tiny``, files under configs/), an optional YAML/JSON config
file (``--config``, which may inherit a recipe with ``base:``), ``--set a.b=value`` overrides and the paths
(``--data-root``, the parent checkpoint); the merged config is validated by the kind's pydantic model, and a
wrong key or value is reported by its dotted path.
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

from ml import kinds, recipes
from ml.grid import ROLES
from ml.engine.callbacks import Callback
from ml.errors import MLError

log = logging.getLogger("ml")

# --preset (deprecated spelling of --recipe): pcl = the config defaults (the reference), tiny = configs/tiny.yaml
PRESET_RECIPES: dict[str, str | None] = {"pcl": None, "tiny": "tiny"}


def format_validation_error(err: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = f" (got {e['input']!r})" if "input" in e and not isinstance(e["input"], dict) else ""
        lines.append(f"  {where}: {e['msg']}{got}")
    return "\n".join(lines)


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
    """The validated config of ``kind``: --recipe (or --preset), then --config, --role, --set, then the paths."""
    spec = kinds.get(kind)
    recipe_name = args.recipe or PRESET_RECIPES[args.preset]
    recipe: dict[str, Any] = recipes.load(recipe_name) if recipe_name else {}
    if args.config:
        recipe = recipes.deep_merge(recipe, recipes.load_file(args.config))
    paths: dict[str, Any] = {"data.root": args.data_root}
    if spec.cli_parent_flag:
        paths[spec.parent_field] = getattr(args, spec.cli_parent_flag)  # type: ignore[index]
    data = recipes.resolve_dict(recipe, kind, args.set or [], role=args.role, paths=paths)
    return spec.config_class().model_validate(data)  # type: ignore[no-any-return]


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


def _add_train_args(p: argparse.ArgumentParser, spec: kinds.JobKind) -> None:
    p.add_argument("--recipe", help="a recipe under configs/ (e.g. tiny, pcl/r3d, grid/tiny); `python -m ml recipes` lists them")
    p.add_argument("--config", type=Path, help="YAML or JSON config (or recipe) file; `base: <recipe>` inherits a recipe")
    p.add_argument("--role", choices=ROLES, help="a grid recipe's role: applies its grid.roles.<role> overrides")
    p.add_argument("--data-root", type=Path, help="dataset root (shortcut for --set data.root=...)")
    p.add_argument("--out", type=Path, required=True, help="run directory: checkpoint.pt, results.json, config.json")
    p.add_argument("--preset", choices=sorted(PRESET_RECIPES), default="pcl",
                   help="deprecated spelling of --recipe: pcl = the reference defaults, tiny = --recipe tiny")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. --set optim.epochs=10 (repeatable)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--print-config", action="store_true", help="print the validated config and exit")
    if spec.cli_parent_flag:
        p.add_argument(f"--{spec.cli_parent_flag}", type=Path,
                       help=f"parent checkpoint ({spec.parent_field}): a {' or '.join(spec.parent_kinds())} run's checkpoint.pt"
                       + ("" if spec.parent_required else "; omit for none"))


def _cmd_recipes(args: argparse.Namespace) -> int:
    print(json.dumps([dataclasses.asdict(r) for r in recipes.list_recipes()], indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    from ml.synthetic import add_arguments as add_synth_arguments

    add_synth_arguments(sub.add_parser("synth", help="write a synthetic UCF101-layout action dataset"))

    for spec in kinds.KINDS.values():  # one sub-command per kind of the registry
        if spec.cli:
            _add_train_args(sub.add_parser(spec.name, help=spec.title), spec)

    sub.add_parser("recipes", help="list the recipes under configs/ (JSON)")
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
        if args.command == "recipes":
            return _cmd_recipes(args)
        from ml.tools_cli import COMMANDS as TOOL_COMMANDS, run as run_tool

        if args.command in TOOL_COMMANDS:
            return run_tool(args)
        return _cmd_train(args.command, args)
    except ValidationError as err:
        print(format_validation_error(err), file=sys.stderr)
        return 2
    except (MLError, ValueError, FileNotFoundError) as err:  # RecipeError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
