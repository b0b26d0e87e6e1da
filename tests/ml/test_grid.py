"""The research grid plan shared by experiments/reproduce.py and POST /experiments."""

from ml.grid import BASELINE_SEED_OFFSET, plan_grid


def test_full_grid_has_every_pair_baseline_and_fraction_row():
    runs = plan_grid("full", pair=("r3d", "c3d"), seeds=[0, 1])
    roles = [r.role for r in runs]
    assert len(runs) == 42
    assert roles.count("teacher") == 6 and roles.count("baseline") == 6 + 6 and roles.count("student") == 18 + 6
    assert {(r.teacher_backbone, r.backbone) for r in runs if r.role == "student" and r.fraction == 1} == {
        (t, s) for t in ("r3d", "c3d", "r21d") for s in ("r3d", "c3d", "r21d")}
    assert sorted({r.fraction for r in runs if r.fraction < 1}) == [0.02, 0.25, 0.5]
    assert len({r.key for r in runs}) == len(runs)


def test_teachers_come_first_and_baselines_train_on_their_own_seed():
    runs = plan_grid("pair", pair=("c3d", "r21d"), seeds=[3], fractions=(1.0,))
    assert [(r.role, r.backbone) for r in runs] == [("teacher", "c3d"), ("baseline", "r21d"), ("student", "r21d")]
    position = {r.key: i for i, r in enumerate(runs)}
    assert all(position[r.teacher_key] < position[r.key] for r in runs if r.teacher_key)
    baseline = runs[1]
    assert baseline.training_seed == 3 + BASELINE_SEED_OFFSET and runs[2].training_seed == 3
