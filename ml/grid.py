"""The research grid as a plan: which pretraining runs, in which roles, with which teachers (no torch).

pair: one PCL teacher -> KD student and a no-KD baseline of the student's backbone.
full: a teacher per backbone, a KD student for every teacher -> student pair, a baseline per backbone, and the
pair's student and baseline at each data fraction below 1.

Both ``experiments/reproduce.py`` (direct runs) and the service's ``POST /experiments`` (jobs) plan with this,
so the two always run the same grid. Baselines are plain PCL pretraining with the same budget; they train with
``seed + BASELINE_SEED_OFFSET`` so that at fraction 1 a baseline is not a copy of the teacher of its backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

BASELINE_SEED_OFFSET = 1000
GRID_BACKBONES: tuple[str, ...] = ("r3d", "c3d", "r21d")
ROLES: tuple[str, ...] = ("teacher", "student", "baseline")  # a grid recipe may override any of them (grid.roles)
GRID_FRACTIONS: tuple[float, ...] = (1.0, 0.5, 0.25, 0.02)


@dataclass(frozen=True)
class GridRun:
    key: str  # unique in the grid, e.g. "student-r3d-to-c3d-25pct-s0"
    role: str  # teacher | student | baseline
    backbone: str
    seed: int  # the grid seed this run belongs to
    fraction: float = 1.0
    teacher_key: str | None = None
    teacher_backbone: str | None = None

    @property
    def training_seed(self) -> int:
        return self.seed + BASELINE_SEED_OFFSET if self.role == "baseline" else self.seed


def epochs_to_reach(curve: Sequence[float | None], target: float) -> int | None:
    """First (1-based) epoch whose retrieval top-1 reaches ``target``; None if none does (curves may have gaps)."""
    for epoch, value in enumerate(curve, start=1):
        if value is not None and value >= target - 1e-9:
            return epoch
    return None


def paired_gain(student: float | None, baseline: float | None) -> float | None:
    """The KD gain of one seed: the student's number minus its same-seed no-KD baseline's, once both exist."""
    return student - baseline if student is not None and baseline is not None else None


def plan_grid(
    grid: Literal["pair", "full"],
    *,
    pair: tuple[str, str],
    seeds: Sequence[int],
    backbones: Sequence[str] = GRID_BACKBONES,
    fractions: Sequence[float] = GRID_FRACTIONS,
) -> list[GridRun]:
    """The grid's pretraining runs; every teacher comes before the runs that distil from it."""
    full = grid == "full"
    teachers = list(backbones) if full else [pair[0]]
    students = list(backbones) if full else [pair[1]]
    runs: list[GridRun] = []
    for seed in seeds:
        runs += [GridRun(f"teacher-{t}-s{seed}", "teacher", t, seed) for t in teachers]
    for seed in seeds:
        runs += [GridRun(f"baseline-{s}-s{seed}", "baseline", s, seed) for s in students]
        runs += [GridRun(f"student-{t}-to-{s}-s{seed}", "student", s, seed, teacher_key=f"teacher-{t}-s{seed}",
                         teacher_backbone=t) for t in teachers for s in students]
        t, s = pair
        for frac in (f for f in fractions if f < 1):
            tag = f"{frac * 100:g}pct"
            runs.append(GridRun(f"baseline-{s}-{tag}-s{seed}", "baseline", s, seed, fraction=frac))
            runs.append(GridRun(f"student-{t}-to-{s}-{tag}-s{seed}", "student", s, seed, fraction=frac,
                                teacher_key=f"teacher-{t}-s{seed}", teacher_backbone=t))
    return runs
