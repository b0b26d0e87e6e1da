"""Training throughput: clips/s of a PCL step per backbone, the KD step's cost over plain PCL, and the data pipeline alone.

CPU: tiny size (8x32^2 clips, width 1/8). With CUDA: the full 16x112^2 size at width 1 (bf16, channels_last_3d).
Run: python bench/train_throughput.py [--steps N] [--json OUT]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.config import AugmentConfig, ClipSpec, PretextConfig, PretrainConfig, RuntimeConfig  # noqa: E402
from ml.engine.loop import build_optimizer  # noqa: E402
from ml.engine.pcl_task import PCLTask  # noqa: E402
from ml.engine.runtime import resolve_runtime  # noqa: E402
from ml.models import list_backbones  # noqa: E402


def _config(backbone: str, *, cuda: bool, alpha: float, root: Path, amp: bool | None = None) -> PretrainConfig:
    clip = ClipSpec() if cuda else ClipSpec.tiny()
    return PretrainConfig(
        kind="distill" if alpha > 0 else "pretrain",
        data={"root": root},
        clip=clip,
        model={"backbone": backbone, "width": 1.0 if cuda else 0.125},
        contrast={"negatives": 1024 if cuda else 64},
        distill={"alpha": alpha, "teacher_checkpoint": root / "teacher.pt"} if alpha > 0 else {"alpha": 0.0},
        runtime={"device": "cuda" if cuda else "cpu", "amp": amp},
    )


def _batch(cfg: PretrainConfig, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
    c = cfg.clip
    return {
        "clips": torch.randn(batch, 3, 3, c.frames, c.crop, c.crop, device=device),
        "label": torch.randint(0, 5, (batch,), device=device),
        "index": torch.randint(0, 512, (batch,), device=device),
    }


def make_stepper(task: PCLTask, batch: dict[str, torch.Tensor]):
    """A closure running one full optimiser step and returning its wall time (synchronised on CUDA)."""
    opt = build_optimizer(task.trainable_parameters(), task.cfg.optim)
    task.train()

    def step() -> float:
        if task.rt.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = task.training_step(batch)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        if task.rt.is_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    return step


def interleaved_medians(steppers: dict[str, object], steps: int, warmup: int = 2) -> dict[str, float]:
    """Alternate the contenders step by step so machine noise hits them alike; median per contender."""
    times: dict[str, list[float]] = {k: [] for k in steppers}
    for i in range(warmup + steps):
        for key, step in steppers.items():
            t = step()  # type: ignore[operator]
            if i >= warmup:
                times[key].append(t)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_steps(steps: int, batch: int, cuda: bool, root: Path) -> list[dict[str, object]]:
    rows = []
    for name in list_backbones():
        cfg = _config(name, cuda=cuda, alpha=0.0, root=root)
        rt = resolve_runtime(cfg.runtime)
        torch.manual_seed(0)
        plain = PCLTask(cfg, num_train=512, rt=rt)
        b = _batch(cfg, batch, rt.device)
        student = PCLTask(_config(name, cuda=cuda, alpha=1.0, root=root), num_train=512, rt=rt,
                          teacher=copy.deepcopy(plain.net))
        steppers = {"pcl": make_stepper(plain, b), "kd": make_stepper(student, b)}
        if cuda:
            fp32_cfg = _config(name, cuda=True, alpha=0.0, root=root, amp=False)
            fp32_rt = resolve_runtime(RuntimeConfig(device="cuda", amp=False, channels_last=False))
            steppers["fp32"] = make_stepper(PCLTask(fp32_cfg, num_train=512, rt=fp32_rt), b)
            torch.cuda.reset_peak_memory_stats()
        t = interleaved_medians(steppers, steps)
        row: dict[str, object] = {
            "backbone": name,
            "clip": f"{cfg.clip.frames}x{cfg.clip.crop}^2",
            "width": cfg.model.width,
            "batch": batch,
            "pcl_clips_s": batch * 3 / t["pcl"],
            "kd_clips_s": batch * 3 / t["kd"],
            "kd_cost_ratio": t["kd"] / t["pcl"],
        }
        if cuda:
            row["fp32_no_cl_clips_s"] = batch * 3 / t["fp32"]
            row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
        rows.append(row)
    return rows


def bench_data(root: Path, batches: int, batch: int) -> list[dict[str, object]]:
    from ml.config import DataConfig
    from ml.data import PCLTupleDataset, index_dataset, scan_index
    from ml.data.frame_cache import DecodedVideoCache
    from ml.synthetic import generate_dataset

    data_root = root / "synthetic"
    generate_dataset(data_root, classes=6, videos_per_class=12, frames=64, width=172, height=128, seed=0)
    clip = ClipSpec.tiny()
    pretext = PretextConfig()
    index = scan_index(index_dataset(DataConfig(root=data_root)), min_frames=PCLTupleDataset.min_frames(clip, pretext))
    dataset = PCLTupleDataset(index.train, index.frame_counts(index.train), clip, AugmentConfig(), pretext, seed=0)
    cached = PCLTupleDataset(index.train, index.frame_counts(index.train), clip, AugmentConfig(), pretext, seed=0,
                             cache=DecodedVideoCache(2**30))
    for i in range(len(cached)):  # warm: every video decoded once, as after a training run's first epoch
        cached[i]
    rows = []
    for name, ds, workers in [("off", dataset, 0), ("off", dataset, 2), ("off", dataset, 4), ("warm", cached, 0)]:
        loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                                             persistent_workers=False, drop_last=True)
        t0 = time.perf_counter()
        n = 0
        for i, b in enumerate(loader):
            n += b["clips"].shape[0] * b["clips"].shape[1]
            if i + 1 >= batches:
                break
        elapsed = time.perf_counter() - t0
        rows.append({"workers": workers, "frame_cache": name, "clips_s": n / elapsed, "batches": batches, "batch": batch})
    return rows


def print_table(rows: list[dict[str, object]], title: str) -> None:
    if not rows:
        return
    keys = list(rows[0].keys())
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    print(f"\n{title}\n")
    print("| " + " | ".join(keys) + " |")
    print("|" + "|".join("---" for _ in keys) + "|")
    for r in rows:
        print("| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--data-batches", type=int, default=6)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    batch = args.batch or (16 if cuda else 8)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        device = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
        print(f"device: {device}; torch {torch.__version__}")
        steps = bench_steps(args.steps, batch, cuda, root)
        print_table(steps, "PCL training step (3 clips per tuple; clips/s counts clips, not tuples); KD target <= 1.35x")
        data = bench_data(root, args.data_batches, batch)
        print_table(data, "Data pipeline alone (decord decode at reduced size + per-clip augmentation + VCP edit), PCL tuples")
    if args.json:
        args.json.write_text(json.dumps({"device": device, "steps": steps, "data": data}, indent=2))


if __name__ == "__main__":
    main()
