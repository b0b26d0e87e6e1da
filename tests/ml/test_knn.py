"""The "knn" job kind (weighted kNN on frozen features): the voting rule, and a tiny real run through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from ml import kinds
from ml.cli import main
from ml.engine.evaluate import retrieval_topk
from ml.engine.knn import weighted_knn


def test_votes_are_weighted_by_exp_similarity_over_temperature() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    labels = torch.tensor([0, 1, 1, 2])
    query = torch.tensor([[1.0, 0.1]])
    # cosines to the query: ~0.995, ~0.856, ~0.0995, ~0.676; with k=3 class 0 gets exp(.995/T), class 1 exp(.856/T),
    # class 2 exp(.676/T): class 0 wins at any T
    out = weighted_knn(bank, labels, query, torch.tensor([0]), k=3, temperature=0.07, num_classes=3)
    assert (out["top1"], out["top5"], out["k"]) == (1.0, 1.0, 3.0)
    # two weaker votes outweigh one strong vote only at a high temperature (flatter weights)
    q = torch.tensor([[0.75, 0.66]])
    cos = torch.nn.functional.normalize(bank, dim=1) @ torch.nn.functional.normalize(q, dim=1).t()
    assert cos[1] > cos[3] > cos[0]  # nearest: class 1, then class 2, then class 0
    for t, winner in ((0.01, 1), (100.0, 1)):
        assert weighted_knn(bank, labels, q, torch.tensor([winner]), k=4, temperature=t, num_classes=3)["top1"] == 1.0
    # k=2 with class 1 twice in the top 3 vs a nearer class 2: the weights decide
    bank2 = torch.tensor([[1.0, 0.0], [0.9, math.sqrt(1 - 0.81)], [0.95, math.sqrt(1 - 0.9025)]])
    labels2 = torch.tensor([0, 1, 1])
    q2 = torch.tensor([[1.0, 0.0]])
    assert weighted_knn(bank2, labels2, q2, torch.tensor([0]), k=3, temperature=0.01, num_classes=2)["top1"] == 1.0
    assert weighted_knn(bank2, labels2, q2, torch.tensor([1]), k=3, temperature=10.0, num_classes=2)["top1"] == 1.0


def test_k1_knn_top1_is_nearest_neighbour_retrieval_top1() -> None:
    g = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(30, 8, generator=g), torch.randn(12, 8, generator=g)
    bl, ql = torch.randint(0, 4, (30,), generator=g), torch.randint(0, 4, (12,), generator=g)
    knn = weighted_knn(bank, bl, queries, ql, k=1, temperature=0.07, num_classes=4)
    assert knn["top1"] == pytest.approx(retrieval_topk(queries, ql, bank, bl, ks=(1,))["top1"])


def test_knn_is_a_registered_kind_taking_a_backbone_parent() -> None:
    spec = kinds.get("knn")
    assert spec.parent_kinds() == ("pretrain", "distill", "finetune", "import") and spec.parent_field == "checkpoint"


def test_tiny_knn_run_from_a_pretrained_checkpoint(tiny_dataset: Path, tmp_path: Path) -> None:
    pre = tmp_path / "pre"
    assert main(["pretrain", "--recipe", "tiny", "--data-root", str(tiny_dataset), "--out", str(pre),
                 "--set", "optim.epochs=1", "--set", "runtime.max_steps_per_epoch=2", "--set", "data.workers=0",
                 "--set", "optim.batch_size=4", "--set", "eval.retrieval=false", "--set", "runtime.validate_every=0"]) == 0
    out = tmp_path / "knn"
    assert main(["knn", "--recipe", "tiny", "--data-root", str(tiny_dataset), "--out", str(out),
                 "--checkpoint", str(pre / "checkpoint.pt"), "--set", "clips=2", "--set", "k=5",
                 "--set", "data.workers=0"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["kind"] == "knn" and results["status"] == "completed"
    knn = results["knn"]
    assert knn["queries"] == 8 and knn["k"] == 5  # 4 classes x 2 test videos vote over the 16 train videos
    assert 0.0 <= knn["top1"] <= knn["top5"] <= 1.0
    assert json.loads((out / "config.json").read_text())["clip"]["crop"] == 32  # the recipe's shared clip reaches the new kind
