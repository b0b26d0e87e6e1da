"""experiments/reproduce.py end to end on a tiny set, and its full-size (UCF101) preset without running it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "experiments" / "reproduce.py"
sys.path.insert(0, str(SCRIPT.parent))

import reproduce  # noqa: E402


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_pair_grid_writes_tables_plots_and_claims_and_reuses_finished_runs(tiny_dataset: Path, tmp_path: Path) -> None:
    args = ("--grid", "pair", "--seeds", "2", "--epochs", "2", "--teacher-epochs", "3", "--ft-epochs", "1",
            "--data-root", str(tiny_dataset), "--out", str(tmp_path))
    first = _run(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "pair-tiny"
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["role"], r["seed"]) for r in rows] == [("teacher", "0"), ("teacher", "1"), ("baseline", "1000"),
                                                      ("student", "0"), ("baseline", "1001"), ("student", "1")]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["claims"]["total"] == 2  # one student per seed, each counted against its own teacher and baseline
    for row in rows:
        assert 0.0 <= float(row["retrieval_top1"]) <= 1.0 and 0.0 <= float(row["finetune_top1"]) <= 1.0
    teacher_curve = json.loads((out / "teacher-r3d-s0" / "results.json").read_text())["history"]
    student_curve = json.loads((out / "student-r3d-to-r3d-s0" / "results.json").read_text())["history"]
    assert len(teacher_curve) == 3 and len(student_curve) == 2  # teachers get their own epoch budget
    student_cfg = json.loads((out / "student-r3d-to-r3d-s0" / "config.json").read_text())
    baseline_cfg = json.loads((out / "baseline-r3d-s0" / "config.json").read_text())
    assert student_cfg["distill"]["terms"] == {"pretext": 1.0, "contrastive": 1.0} and student_cfg["distill"]["alpha"] == 1.0
    assert baseline_cfg["distill"]["alpha"] == 0.0
    for section in ("optim", "clip", "augment", "contrast", "pretext"):  # one budget for student and baseline
        assert student_cfg[section] == baseline_cfg[section], section
    table = (out / "results.md").read_text()
    assert table.startswith("Protocol: ") and "| random init (untrained) | r3d |" in table and "Claims" in table
    assert (out / "convergence_r3d_to_r3d.png").read_bytes()[:4] == b"\x89PNG"

    again = _run(*args, cwd=tmp_path)  # finished runs are reused, the summary is rebuilt identically
    assert again.returncode == 0, again.stderr[-3000:]
    assert list(csv.DictReader((out / "results.csv").open())) == rows


def test_ucf101_preset_is_the_pcl_recipe_and_estimates_gpu_hours(tmp_path: Path) -> None:
    preset = reproduce.Preset.load("ucf101")
    spec = reproduce.build_grid("pair", 1)[0]
    cfg = reproduce.pretrain_config(spec, preset, tmp_path, tmp_path)
    assert (cfg.clip.frames, cfg.clip.crop, cfg.clip.resize_h, cfg.clip.resize_w) == (16, 112, 128, 171)
    assert (cfg.model.width, cfg.optim.lr, cfg.optim.batch_size, cfg.optim.epochs, cfg.optim.scheduler) == (1.0, 0.01, 16, 200, "plateau")
    assert (cfg.contrast.negatives, cfg.data.cache_mb, cfg.runtime.validate_every) == (1024, 0, 1)
    ft = reproduce.finetune_config(spec, preset, tmp_path, tmp_path)
    assert (ft.optim.lr, ft.optim.batch_size, ft.optim.epochs, ft.eval.test_clips) == (1e-3, 8, 150, 10)
    done = _run("--grid", "full", "--preset", "ucf101", "--estimate-only", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "42 pretraining runs" in done.stdout and "GPU-hours" in done.stdout
    hours = reproduce.estimate_gpu_hours(reproduce.build_grid("full", 2), preset, train_videos=9537, test_videos=3783)
    one_seed = reproduce.estimate_gpu_hours(reproduce.build_grid("full", 1), preset, train_videos=9537, test_videos=3783)
    assert hours == pytest.approx(2 * one_seed) and f"about {hours:.0f} GPU-hours" in done.stdout
    refused = _run("--grid", "pair", "--preset", "ucf101", cwd=tmp_path)  # no UCF101 root: a clear error, nothing run
    assert refused.returncode == 2 and "--data-root" in refused.stderr
