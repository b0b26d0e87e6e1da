"""Report cards of the tiny grid's KD students (issue 14): size, compute and CPU latency measured here, accuracy
from the published grid (docs/results/full-tiny/summary.json, fine-tuned video-level top-1, mean over its seeds).

    .venv/bin/python bench/report_cards.py [--summary docs/results/full-tiny/summary.json] [--threads 1]

The grid's checkpoints are not kept in the repository, so each student's network is built here at the grid's
size (width and clip of the tiny recipe, a head for the set's classes) with fresh weights: parameters, GFLOPs,
latency and the weights' size do not depend on the weights; the accuracy columns are the published runs'.
Prints a Markdown table (the one in BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ml.config import ClipSpec  # noqa: E402
from ml.export import Deployable, LoadedModel  # noqa: E402
from ml.models import build_backbone  # noqa: E402
from ml.models.pcl_net import VideoClassifier  # noqa: E402
from ml.recipes import resolve_dict  # noqa: E402
from ml.report import MARKDOWN_HEADER, ReportCard, count_macs, markdown_row, measure_latency, weights_bytes  # noqa: E402


def grid_model(backbone: str, *, width: float, clip: ClipSpec, classes: int) -> LoadedModel:
    net = VideoClassifier(build_backbone(backbone, width=width), classes)
    return LoadedModel(model=Deployable(net, modality="res").eval(), kind="finetune", backbone=backbone, width=width,
                       clip=clip, labels=[f"class{i}" for i in range(classes)], state={})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summary", type=Path, default=ROOT / "docs" / "results" / "full-tiny" / "summary.json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--classes", type=int, default=6, help="the grid's synthetic set has 6 classes")
    args = parser.parse_args()
    torch.manual_seed(0)

    summary = json.loads(args.summary.read_text())
    top1: dict[tuple[str, str], list[float]] = defaultdict(list)  # (role, teacher->student or backbone) -> values
    for row in summary["rows"]:
        if row["fraction"] != 1.0 or row["finetune_top1"] is None:
            continue
        key = f"{row['teacher']}->{row['backbone']}" if row["role"] == "student" else row["backbone"]
        top1[(row["role"], key)].append(float(row["finetune_top1"]))

    grid = resolve_dict("grid/tiny", "finetune", role="student")
    width, clip = float(grid["model"]["width"]), ClipSpec.model_validate(grid["clip"])
    cards: dict[str, ReportCard] = {}
    for backbone in sorted({k.split("->")[1] for (role, k) in top1 if role == "student"} | {k for (role, k) in top1
                                                                                          if role == "teacher"}):
        loaded = grid_model(backbone, width=width, clip=clip, classes=args.classes)
        macs = count_macs(loaded)
        card = ReportCard(backbone=backbone, width=width, kind="finetune", output="logits",
                          clip=f"{clip.frames}x{clip.crop}x{clip.crop}",
                          params=sum(p.numel() for p in loaded.model.parameters()),
                          backbone_params=sum(p.numel() for p in loaded.model.net.backbone.parameters()),
                          gmacs_per_clip=macs / 1e9, gflops_per_clip=2 * macs / 1e9,
                          size_bytes={"weights": weights_bytes(loaded)})
        card.latency.append(measure_latency(loaded, threads=args.threads, runs=args.runs, warmup=5))
        cards[backbone] = card

    print(f"Protocol: {summary['protocol']}")
    print(f"Accuracy: fine-tuned video-level top-1, mean over the grid's {len(top1[('teacher', 'r3d')])} seeds; "
          f"kept = student mean / its teacher's mean. CPU: {args.threads} thread(s), median of {args.runs} runs after 5.\n")
    print(MARKDOWN_HEADER)
    for (role, key), values in sorted(top1.items(), key=lambda kv: (kv[0][0] != "teacher", kv[0][1])):
        if role not in ("teacher", "student"):
            continue
        backbone = key.split("->")[-1]
        card = cards[backbone]
        card.accuracy = statistics.mean(values)
        teacher = top1.get(("teacher", key.split("->")[0])) if role == "student" else None
        card.teacher_accuracy = statistics.mean(teacher) if teacher else None
        card.accuracy_kept = card.accuracy / card.teacher_accuracy if card.teacher_accuracy else None
        name = f"KD student {key.replace('->', ' → ')}" if role == "student" else f"teacher {key}"
        print(markdown_row(name, card))


if __name__ == "__main__":
    main()
