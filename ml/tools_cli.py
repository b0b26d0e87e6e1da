"""The model tools' sub-commands: ``export``, ``report`` and ``import`` (``python -m ml <command> --help``).

Self-contained so the main parser only calls :func:`add_commands` and hands a parsed command to :func:`run`;
each prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any

# command -> (module with add_arguments / run_from_args, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "export": ("ml.export", "export a checkpoint to ONNX (checked by onnxruntime) or TorchScript"),
    "report": ("ml.report", "compression report card: params, GFLOPs, latency, accuracy kept, size"),
    "import": ("ml.importers", "import a PCL/VCOP or torchvision checkpoint as a teacher / fine-tuning source"),
}


def add_commands(sub: Any) -> None:
    """Add the commands to an ``add_subparsers()`` object (imports their modules for their arguments)."""
    for name, (module, text) in COMMANDS.items():
        p: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
        _add_arguments(module, p)


def _add_arguments(module: str, p: argparse.ArgumentParser) -> None:
    importlib.import_module(module).add_arguments(p)


def run(args: argparse.Namespace) -> int:
    module, _ = COMMANDS[args.command]
    result: dict[str, Any] = importlib.import_module(module).run_from_args(args)
    print(json.dumps(result, indent=2, default=str))
    return 0
