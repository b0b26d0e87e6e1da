"""Reproduce the research's claims with the real ml/ engine and publish tables and plots.

Grids (all runs share one protocol and one budget; every number is written next to it):
  pair   one teacher -> KD student -> no-KD baseline of the same size, fine-tuned (the quick check)
  full   PCL teachers r3d/c3d/r21d; every teacher->student pair (3x3) with KD; a no-KD baseline per
         backbone; data fractions 100/50/25/2% for one pair; several seeds with the spread reported

  python experiments/reproduce.py --grid pair                      # CPU, synthetic set, a few minutes
  python experiments/reproduce.py --grid full                      # CPU, synthetic set, ~20 minutes on 2 cores
  python experiments/reproduce.py --grid full --preset ucf101 --data-root /data/UCF101 --estimate-only

Runs are resumable: a run directory whose results.json says "completed" is reused, so an
interrupted grid continues where it stopped. Outputs: results.csv (one row per run),
results.md (aggregated over seeds), convergence_*.png, summary.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml import kinds, recipes  # noqa: E402
from ml.catalog import CATALOG  # noqa: E402
from ml.config import FinetuneConfig, PretrainConfig, RetrieveConfig  # noqa: E402
from ml.kd_terms import KD_TERMS, LEGACY_TARGETS, legacy_target  # noqa: E402
from ml.engine import run  # noqa: E402
from ml.grid import GRID_FRACTIONS, epochs_to_reach, paired_gain, plan_grid  # noqa: E402



PRESETS = ("tiny", "small", "ucf101")  # configs/grid/<name>.yaml; every budget fact lives in those files


@dataclass(frozen=True)
class Preset:
    """A grid recipe (configs/grid/<name>.yaml, read by ml.recipes) plus the command line's budget overrides.

    Every run's config is resolved from it, so ``python -m ml <kind> --recipe grid/<name> --role <role>``, the
    service and this script build the same configs; the facts the protocol line and the GPU estimate print are
    read back from those configs."""

    name: str
    recipe: dict[str, Any]

    @classmethod
    def load(cls, name: str, *, epochs: int | None = None, teacher_epochs: int | None = None,
             ft_epochs: int | None = None, kd_target: str | None = None) -> "Preset":
        recipe = recipes.load(f"grid/{name}")
        extra: dict[str, Any] = {}
        if epochs:  # students and baselines; teachers keep the recipe's own budget when it sets one
            extra["kinds"] = {"pretrain": {"optim": {"epochs": epochs}}}
        if teacher_epochs:
            extra["grid"] = {"roles": {"teacher": {"optim": {"epochs": teacher_epochs}}}}
        if ft_epochs:
            extra = recipes.deep_merge(extra, {"kinds": {"finetune": {"optim": {"epochs": ft_epochs}}}})
        recipe = recipes.deep_merge(recipe, extra)
        if kd_target:  # replaces the recipe's terms (a merge would keep the other terms)
            recipe["kinds"]["distill"]["distill"]["terms"] = dict(LEGACY_TARGETS[kd_target])
        return cls(name, recipe)

    @property
    def grid(self) -> dict[str, Any]:
        return dict(self.recipe.get("grid") or {})

    @property
    def videos_per_class(self) -> int:
        return int(self.grid.get("videos_per_class", 32))

    def default_seeds(self, grid: str) -> int:
        return int((self.grid.get("seeds") or {}).get(grid, 3 if grid == "pair" else 2))

    def config(self, kind: str, *, role: str | None = None, overrides: dict[str, Any] | None = None,
               paths: dict[str, Any] | None = None) -> Any:
        return recipes.resolve(self.recipe, kind, overrides, role=role, paths=paths)

    def sample(self, kind: str, role: str | None = None) -> Any:
        """The kind's config with placeholder paths: where the budget facts are read from."""
        spec = kinds.get(kind)
        paths = {"data.root": "/", **({spec.parent_field: "/"} if spec.parent_field else {})}
        return self.config(kind, role=role, paths=paths)

    def pretrain_epochs(self, role: str) -> int:
        return int(self.sample("distill" if role == "student" else "pretrain", role).optim.epochs)

    def retrieval_every(self, role: str) -> int:
        return max(1, int(self.sample("pretrain", role).runtime.retrieval_every))

    def kd_text(self) -> str:
        terms = self.sample("distill", "student").distill.terms
        target = legacy_target(terms)
        return KD_TARGET_TEXT[target] if target else " + ".join(f"{w:g} x {KD_TERMS[n].description}" for n, w in terms.items())

    def protocol(self, data: str) -> str:
        student, ft = self.sample("distill", "student"), self.sample("finetune")
        return (f"{data}; split 1; {student.optim.epochs} pretraining epochs for every KD student and no-KD baseline, "
                f"{self.pretrain_epochs('teacher')} for teachers, batch {student.optim.batch_size}, "
                f"SGD lr {student.optim.lr} ({student.optim.scheduler} schedule), K={student.contrast.negatives}; "
                f"clips {student.clip.frames}x{student.clip.crop}^2, width {student.model.width}; "
                f"retrieval: test queries vs train gallery, {student.eval.retrieval_clips} clips/video, top-1; "
                f"fine-tune: {ft.optim.epochs} epochs, video-level top-1 over {ft.eval.test_clips} clips; "
                f"KD: {self.kd_text()}, T={student.distill.temperature:g}, α={student.distill.alpha:g}")


KD_TARGET_TEXT = {
    "pretext": "KL on the 5-way pretext logits",
    "contrastive": "KL on the in-batch contrastive distribution (clip 0 vs clip 2 of every video in the batch)",
    "both": "KL on the 5-way pretext logits + KL on the in-batch contrastive distribution",
}


@dataclass
class RunSpec:
    name: str
    role: str  # teacher | student | baseline
    backbone: str
    seed: int  # the training seed (baselines: grid seed + ml.grid.BASELINE_SEED_OFFSET)
    fraction: float = 1.0
    teacher: str | None = None  # name of the teacher run for students
    result: dict[str, Any] = field(default_factory=dict)


def build_grid(grid: str, seeds: int, *, pair: tuple[str, str] = ("r3d", "r3d")) -> list[RunSpec]:
    """The grid planned by ml.grid (the same plan the service submits as jobs)."""
    return [RunSpec(r.key, r.role, r.backbone, r.training_seed, r.fraction, r.teacher_key)
            for r in plan_grid(grid, pair=pair, seeds=range(seeds),  # type: ignore[arg-type]
                               fractions=GRID_FRACTIONS if grid == "full" else (1.0,))]


def _run_overrides(spec: RunSpec) -> dict[str, Any]:
    return {"model": {"backbone": spec.backbone}, "runtime": {"seed": spec.seed}}


def pretrain_config(spec: RunSpec, preset: Preset, data_root: Path, out: Path) -> PretrainConfig:
    paths: dict[str, Any] = {"data.root": data_root}
    if spec.role == "student":
        paths["distill.teacher_checkpoint"] = out / spec.teacher / "checkpoint.pt"  # type: ignore[operator]
    overrides = recipes.deep_merge(_run_overrides(spec), {"data": {"subset": spec.fraction, "subset_seed": spec.seed}})
    return preset.config("distill" if spec.role == "student" else "pretrain", role=spec.role,  # type: ignore[no-any-return]
                         overrides=overrides, paths=paths)


def finetune_config(spec: RunSpec, preset: Preset, data_root: Path, out: Path) -> FinetuneConfig:
    return preset.config("finetune", overrides=_run_overrides(spec),  # type: ignore[no-any-return]
                         paths={"data.root": data_root, "source_checkpoint": out / spec.name / "checkpoint.pt"})


def random_init_config(backbone: str, seed: int, preset: Preset, data_root: Path) -> RetrieveConfig:
    return preset.config("retrieve", overrides={"model": {"backbone": backbone}, "runtime": {"seed": seed}},  # type: ignore[no-any-return]
                         paths={"data.root": data_root})


def _completed(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / "results.json"
    if path.is_file():
        results = json.loads(path.read_text())
        if results.get("status") == "completed":
            return results
    return None


def execute(spec: RunSpec, preset: Preset, data_root: Path, out: Path, *, finetune: bool) -> None:
    run_dir = out / spec.name
    started = time.perf_counter()
    pre = _completed(run_dir) or run(pretrain_config(spec, preset, data_root, out), out_dir=run_dir).results
    ft = None
    if finetune:
        ft_dir = out / f"{spec.name}-ft"
        ft = _completed(ft_dir) or run(finetune_config(spec, preset, data_root, out), out_dir=ft_dir).results
    timing = run_dir / "wall_seconds.json"  # kept so a re-summarised grid reports the original cost
    if not timing.is_file():
        timing.write_text(json.dumps({"seconds": time.perf_counter() - started}))
    seconds = json.loads(timing.read_text())["seconds"]
    curve = [h.get("retrieval_top1") for h in pre["history"]]
    spec.result = {
        "retrieval_curve": curve,
        "retrieval_top1": curve[-1],
        # Declared before any run: the mean of the last three evaluated epochs, a less noisy view of the end
        # point on small test sets (one query is 1/len(test) of top-1). Never the best epoch.
        "retrieval_top1_last3": statistics.mean([v for v in curve if v is not None][-3:]),
        "finetune_top1": ft["test"]["video_top1"] if ft else None,
        "pretext_acc": pre["history"][-1].get("pretext_acc"),
        "train_videos": pre["data"]["train"],
        "seconds": seconds,
    }
    print(f"  {spec.name:34s} R@1 {curve[-1]:.3f}" + (f"  ft top-1 {spec.result['finetune_top1']:.3f}" if ft else "")
          + f"  ({spec.result['seconds']:.0f}s)", flush=True)


def random_init_retrieval(backbones: list[str], seeds: int, preset: Preset, data_root: Path, out: Path) -> dict[str, list[float]]:
    """Retrieval top-1 of untrained networks (PCL's "Random init" row): the floor every run must clear."""
    scores: dict[str, list[float]] = {}
    for backbone in backbones:
        for seed in range(seeds):
            run_dir = out / f"random-init-{backbone}-s{seed}"
            results = _completed(run_dir) or run(random_init_config(backbone, seed, preset, data_root), out_dir=run_dir).results
            scores.setdefault(backbone, []).append(results["retrieval"]["top1"])
    return scores


def fmt_stats(values: list[float], *, signed: bool = False) -> str:
    """Percent, mean ± sample std over seeds."""
    if not values:
        return "n/a"
    sign = "+" if signed else ""
    mean = round(100 * statistics.mean(values), 1) + 0.0  # + 0.0: no "-0.0"
    if len(values) == 1:
        return f"{mean:{sign}.1f}"
    return f"{mean:{sign}.1f} ± {100 * statistics.stdev(values):.1f}"


def summarise(specs: list[RunSpec], out: Path, *, protocol: str, random_init: dict[str, list[float]]) -> dict[str, Any]:
    by_name = {s.name: s for s in specs}
    rows = []
    for s in specs:
        teacher = by_name.get(s.teacher) if s.teacher else by_name.get(f"teacher-{s.backbone}-s{s.seed % 1000}")
        target = teacher.result["retrieval_top1"] if teacher and teacher is not s else None
        reach = epochs_to_reach(s.result["retrieval_curve"], target) if target is not None else None
        rows.append({
            "run": s.name, "role": s.role, "backbone": s.backbone, "teacher": (by_name[s.teacher].backbone if s.teacher else ""),
            "fraction": s.fraction, "seed": s.seed, "train_videos": s.result["train_videos"],
            "retrieval_top1": round(s.result["retrieval_top1"], 4),
            "retrieval_top1_last3": round(s.result["retrieval_top1_last3"], 4),
            "finetune_top1": None if s.result["finetune_top1"] is None else round(s.result["finetune_top1"], 4),
            "teacher_retrieval_top1": None if target is None else round(target, 4),
            "epochs_to_teacher": reach if target is not None else "",
            "seconds": round(s.result["seconds"], 1),
        })
    with (out / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    groups: dict[tuple[str, str, str, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["role"], r["teacher"], r["backbone"], r["fraction"]), []).append(r)
    lines = [f"Protocol: {protocol}", "",
             "| role | teacher → backbone | data | seeds | retrieval top-1 (%), final epoch | mean of last 3 epochs | fine-tuned top-1 (%) | epochs to teacher's R@1 |",
             "|---|---|---|---|---|---|---|---|"]
    order = {"teacher": 0, "student": 1, "baseline": 2}
    for (role, teacher, backbone, frac), members in sorted(groups.items(), key=lambda kv: (-kv[0][3], order[kv[0][0]], kv[0][1], kv[0][2])):
        reach = [m["epochs_to_teacher"] for m in members if m["epochs_to_teacher"] not in ("", None)]
        never = sum(1 for m in members if m["epochs_to_teacher"] is None)
        reach_txt = "—" if role == "teacher" else (
            (f"{statistics.mean(reach):.1f}" if reach else "") + (f" ({never} never)" if never else ""))
        ft = [m["finetune_top1"] for m in members if m["finetune_top1"] is not None]
        pair = f"{teacher} → {backbone}" if teacher else backbone
        lines.append(f"| {role} | {pair} | {int(frac * 100)}% | {len(members)} | {fmt_stats([m['retrieval_top1'] for m in members])} "
                     f"| {fmt_stats([m['retrieval_top1_last3'] for m in members])} "
                     f"| {fmt_stats(ft)} | {reach_txt} |")
    for backbone, values in sorted(random_init.items()):
        lines.append(f"| random init (untrained) | {backbone} | 100% | {len(values)} | {fmt_stats(values)} | — | — | — |")
    lines += ["", *pair_table(specs)]
    claims = check_claims(specs)
    lines += ["", "Claims (per seed, same budget):"] + [f"- {c}" for c in claims["text"]]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    summary = {"protocol": protocol, "rows": rows, "claims": claims, "random_init_retrieval_top1": random_init}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\n".join(lines))
    return summary


def _values(runs: list[RunSpec], key: str) -> list[float]:
    return [r.result[key] for r in runs if r.result[key] is not None]


def _paired_gains(students: list[RunSpec], baselines: list[RunSpec], key: str) -> list[float]:
    """Per seed: the student minus its same-seed baseline (seeds where either number is missing left out)."""
    gains = (paired_gain(s.result[key], b.result[key]) for s, b in zip(students, baselines))
    return [g for g in gains if g is not None]


def pair_table(specs: list[RunSpec]) -> list[str]:
    """Teacher -> student rows at full data and the pair's data fractions, with the paired KD gain (student minus
    the same-seed baseline of its backbone) so that seed-to-seed spread shared by both does not hide it."""
    by_name = {s.name: s for s in specs}
    lines = ["| teacher → student | data | teacher R@1 | KD student R@1 | no-KD baseline R@1 | KD gain (paired) "
             "| KD student fine-tuned | baseline fine-tuned | KD gain fine-tuned (paired) |", "|---|---|---|---|---|---|---|---|---|"]
    students = [s for s in specs if s.role == "student"]
    keys = sorted({(by_name[s.teacher].backbone, s.backbone, s.fraction) for s in students},  # type: ignore[index]
                  key=lambda k: (-k[2], k[0], k[1]))
    for t_bb, s_bb, frac in keys:
        members = [s for s in students if s.backbone == s_bb and s.fraction == frac and by_name[s.teacher].backbone == t_bb]  # type: ignore[index]
        tag = f"-{frac * 100:g}pct" if frac < 1 else ""
        pairs = [(m, by_name[f"baseline-{s_bb}{tag}-s{m.seed}"], by_name[m.teacher]) for m in members]  # type: ignore[index]
        kd_runs, baselines, teachers = (list(column) for column in zip(*pairs))
        lines.append(f"| {t_bb} → {s_bb} | {frac * 100:g}% | {fmt_stats(_values(teachers, 'retrieval_top1'))} "
                     f"| {fmt_stats(_values(kd_runs, 'retrieval_top1'))} | {fmt_stats(_values(baselines, 'retrieval_top1'))} "
                     f"| {fmt_stats(_paired_gains(kd_runs, baselines, 'retrieval_top1'), signed=True)} "
                     f"| {fmt_stats(_values(kd_runs, 'finetune_top1'))} | {fmt_stats(_values(baselines, 'finetune_top1'))} "
                     f"| {fmt_stats(_paired_gains(kd_runs, baselines, 'finetune_top1'), signed=True)} |")
    return lines


def check_claims(specs: list[RunSpec]) -> dict[str, Any]:
    """Count, per seed and pair, how often each claim holds; a claim true for one seed only is not a result."""
    by_name = {s.name: s for s in specs}
    counts = {"beat_teacher": 0, "beat_teacher_last3": 0, "beat_baseline": 0, "beat_baseline_last3": 0,
              "beat_baseline_finetune": 0, "faster": 0, "total": 0}
    for s in specs:
        if s.role != "student" or s.fraction != 1.0:
            continue
        teacher = by_name[s.teacher]  # type: ignore[index]
        baseline = by_name.get(f"baseline-{s.backbone}-s{s.seed}")
        counts["total"] += 1
        counts["beat_teacher"] += s.result["retrieval_top1"] >= teacher.result["retrieval_top1"]
        counts["beat_teacher_last3"] += s.result["retrieval_top1_last3"] >= teacher.result["retrieval_top1_last3"]
        if baseline:
            counts["beat_baseline"] += s.result["retrieval_top1"] >= baseline.result["retrieval_top1"]
            counts["beat_baseline_last3"] += s.result["retrieval_top1_last3"] >= baseline.result["retrieval_top1_last3"]
            if s.result["finetune_top1"] is not None and baseline.result["finetune_top1"] is not None:
                counts["beat_baseline_finetune"] += s.result["finetune_top1"] >= baseline.result["finetune_top1"]
            target = teacher.result["retrieval_top1"]
            es = epochs_to_reach(s.result["retrieval_curve"], target)
            eb = epochs_to_reach(baseline.result["retrieval_curve"], target)
            counts["faster"] += es is not None and (eb is None or es < eb)
    n = counts["total"]
    text = [
        f"student retrieval top-1 ≥ its teacher's: {counts['beat_teacher']}/{n} (student, seed) pairs at the final epoch, "
        f"{counts['beat_teacher_last3']}/{n} on the last-3-epoch mean",
        f"student retrieval top-1 ≥ the no-KD baseline of its backbone: {counts['beat_baseline']}/{n} final, "
        f"{counts['beat_baseline_last3']}/{n} last-3 mean; fine-tuned top-1 ≥ baseline's: {counts['beat_baseline_finetune']}/{n}",
        f"student reaches the teacher's final retrieval top-1 in fewer epochs than the baseline: {counts['faster']}/{n}",
    ]
    return {**counts, "text": text}


def plot(specs: list[RunSpec], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    pairs = sorted({(by.backbone, s.backbone) for s in specs if s.role == "student" and s.fraction == 1.0
                    for by in [next(x for x in specs if x.name == s.teacher)]})
    for t_bb, s_bb in pairs:
        fig, ax = plt.subplots(figsize=(6.4, 4))
        series = {
            f"PCL teacher ({t_bb})": [s for s in specs if s.role == "teacher" and s.backbone == t_bb],
            f"KD student ({t_bb}→{s_bb})": [s for s in specs if s.role == "student" and s.fraction == 1.0 and s.backbone == s_bb
                                            and s.teacher and s.teacher.startswith(f"teacher-{t_bb}-")],
            f"no-KD baseline ({s_bb})": [s for s in specs if s.role == "baseline" and s.fraction == 1.0 and s.backbone == s_bb],
        }
        for (label, members), colour in zip(series.items(), ("tab:gray", "tab:blue", "tab:orange")):
            curves = [m.result["retrieval_curve"] for m in members]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            epochs = [i + 1 for i in range(n) if all(c[i] is not None for c in curves)]
            mean = [statistics.mean(c[e - 1] for c in curves) * 100 for e in epochs]
            ax.plot(epochs, mean, label=f"{label}, {len(curves)} seed(s)", color=colour, linewidth=2, marker="o", markersize=3)
            if len(curves) > 1:
                sd = [statistics.stdev(c[e - 1] for c in curves) * 100 for e in epochs]
                ax.fill_between(epochs, [m - d for m, d in zip(mean, sd)], [m + d for m, d in zip(mean, sd)], color=colour, alpha=0.15)
        teachers = series[f"PCL teacher ({t_bb})"]
        if teachers:  # the target of "epochs to reach the teacher's final retrieval top-1"
            final = statistics.mean(t.result["retrieval_top1"] for t in teachers) * 100
            ax.axhline(final, color="tab:gray", linestyle="--", linewidth=1, label=f"teacher's final ({final:.1f})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("retrieval top-1 (%)")
        ax.set_title(f"Convergence: {t_bb} teacher → {s_bb} student")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        path = out / f"convergence_{t_bb}_to_{s_bb}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


# GMACs per 16x112^2 clip at width 1 come from ml.catalog; an assumed effective 100 TFLOP/s (bf16, H100-class).
EFFECTIVE_TFLOPS = 100.0


def estimate_gpu_hours(specs: list[RunSpec], preset: Preset, train_videos: int, test_videos: int) -> float:
    """FLOP-based estimate: training = 3x forward (fwd + bwd), KD adds one teacher forward, retrieval/test forward only."""
    by_name = {s.name: s for s in specs}

    def seconds_for(clips: float, gmacs: float, passes: float) -> float:
        return clips * gmacs * 2e9 * passes / (EFFECTIVE_TFLOPS * 1e12)

    total = 0.0
    ft = preset.sample("finetune")
    retrieval_clips = preset.sample("pretrain").eval.retrieval_clips
    for s in specs:
        n = max(1, round(train_videos * s.fraction))
        g = CATALOG[s.backbone].gmacs
        epochs = preset.pretrain_epochs(s.role)
        total += seconds_for(epochs * n * 3, g, 3.0)  # three clips per tuple
        if s.role == "student" and s.teacher:
            total += seconds_for(epochs * n * 3, CATALOG[by_name[s.teacher].backbone].gmacs, 1.0)
        evals = max(1, epochs // preset.retrieval_every("student"))
        total += seconds_for(evals * (n + test_videos) * retrieval_clips, g, 1.0)
        total += seconds_for(ft.optim.epochs * train_videos, g, 3.0) + seconds_for(test_videos * ft.eval.test_clips, g, 1.0)
    return total / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", choices=["pair", "full"], default="pair")
    parser.add_argument("--preset", choices=PRESETS, default="tiny", help="a grid recipe: configs/grid/<preset>.yaml")
    parser.add_argument("--data-root", type=Path, help="UCF101-layout root; default: generate a synthetic set under --out")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--seeds", type=int, default=None, help="default: 3 for pair, 2 for full")
    parser.add_argument("--pair", default="r3d,r3d", help="teacher,student for the pair grid and the data-fraction rows")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs (pretraining)")
    parser.add_argument("--teacher-epochs", type=int, help="teachers' epochs (default: the preset's; students and baselines always share one budget)")
    parser.add_argument("--ft-epochs", type=int)
    parser.add_argument("--kd-target", choices=["pretext", "contrastive", "both"],
                        help="what students distil (default both: the 5-way pretext logits and the in-batch contrastive distribution)")
    parser.add_argument("--no-finetune", action="store_true")
    parser.add_argument("--estimate-only", action="store_true", help="print the GPU-hours estimate and exit")
    args = parser.parse_args()

    preset = Preset.load(args.preset, epochs=args.epochs, teacher_epochs=args.teacher_epochs, ft_epochs=args.ft_epochs,
                         kd_target=args.kd_target)
    seeds = args.seeds or preset.default_seeds(args.grid)
    pair = tuple(args.pair.split(","))
    specs = build_grid(args.grid, seeds, pair=pair)  # type: ignore[arg-type]
    out = args.out / (f"{args.grid}-{args.preset}" + (f"-kd-{args.kd_target}" if args.kd_target else ""))
    out.mkdir(parents=True, exist_ok=True)

    if args.preset == "ucf101":
        hours = estimate_gpu_hours(specs, preset, train_videos=9537, test_videos=3783)
        print(f"{len(specs)} pretraining runs (+{len(specs)} fine-tunes) at the PCL defaults: about {hours:.0f} GPU-hours "
              f"on one H100-class GPU (conv FLOPs at an assumed {EFFECTIVE_TFLOPS:.0f} TFLOP/s effective, retrieval every {preset.retrieval_every('student')} epoch(s); data loading assumed to keep up; the PCL reference reports ~33 h per 200-epoch teacher on a V100)")
        if args.estimate_only:
            return
        if args.data_root is None:
            parser.error("--preset ucf101 needs --data-root pointing at UCF101 (videos + ucfTrainTestlist)")
    elif args.estimate_only:
        print(f"{len(specs)} runs on the tiny preset")
        return

    data_root = args.data_root
    if data_root is None:
        from ml.synthetic import generate_dataset

        data_root = args.out / f"data-6x{preset.videos_per_class}"  # shared by every grid of the same set
        if not (data_root / "splits" / "classInd.txt").is_file():
            generate_dataset(data_root, classes=6, videos_per_class=preset.videos_per_class, frames=48, width=64, height=48, seed=0)
    protocol = preset.protocol(f"synthetic 6-class set (ml.synthetic, {preset.videos_per_class} videos/class, whole groups held out)"
                               if args.data_root is None else str(data_root))
    print(f"{len(specs)} runs -> {out}")
    started = time.perf_counter()
    for spec in specs:
        execute(spec, preset, data_root, out, finetune=not args.no_finetune)
    random_init = random_init_retrieval(sorted({s.backbone for s in specs}), seeds, preset, data_root, out)
    summary = summarise(specs, out, protocol=protocol, random_init=random_init)
    plots = plot(specs, out)
    summary["plots"] = [str(p) for p in plots]
    summary["minutes"] = (time.perf_counter() - started) / 60
    # what the runs themselves cost when they were trained (kept per run, so a re-summarised grid still reports it)
    summary["run_minutes"] = sum(spec.result["seconds"] for spec in specs) / 60
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nwrote {out / 'results.md'}, {out / 'results.csv'}, {len(plots)} plot(s) in {summary['minutes']:.1f} min "
          f"(the runs took {summary['run_minutes']:.1f} min to train)")


if __name__ == "__main__":
    main()
