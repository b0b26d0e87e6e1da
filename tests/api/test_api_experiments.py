"""POST /experiments: the research grid as jobs (roles, dependencies, shared budget), its summary, the CLI;
and one tiny pair grid run to the end by a REAL worker process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.cli.experiments import parser, submit_body
from api.services.experiments import plan
from api.main import create_app
from api.schemas import ExperimentCreate
from persistence import repo
from persistence.session import make_engine, make_sessionmaker
from persistence.settings import Settings
from persistence.status import JobStatus
from service_helpers import WorkerProcess, make_settings, render_dataset, synthesize_dataset, wait_for

TINY = {"grid": "pair", "width": 0.125, "clip": "tiny", "epochs": 1, "batch_size": 4, "max_steps_per_epoch": 2,
        "nce_negatives": 16, "seeds": [0], "data_workers": 0, "finetune_epochs": 1, "val_videos": 0,
        "test_clips": 1}


@pytest.fixture
def dataset(client: TestClient) -> dict[str, Any]:
    return render_dataset(client)


def test_full_grid_plan_matches_the_research_grid() -> None:
    runs = plan(ExperimentCreate(dataset_id=1, grid="full", pair=("r3d", "c3d"), seeds=[0, 1]))
    per_seed = [r for r in runs if r.seed == 0]
    roles = [r.role for r in per_seed]
    assert roles.count("teacher") == 3 and roles.count("baseline") == 3 + 3 and roles.count("student") == 9 + 3
    assert {r.fraction for r in per_seed if r.fraction < 1} == {0.5, 0.25, 0.02}
    assert all(r.backbone == "c3d" and r.teacher_backbone in (None, "r3d") for r in per_seed if r.fraction < 1)
    assert len(runs) == 2 * len(per_seed) and len({r.key for r in runs}) == len(runs)
    assert [r.role for r in runs[:6]] == ["teacher"] * 6  # teachers first: the worker starts on them


def test_grid_jobs_roles_dependencies_and_budget(client: TestClient, dataset: dict[str, Any]) -> None:
    r = client.post("/experiments", json={**TINY, "dataset_id": dataset["id"], "grid": "full", "teacher_epochs": 3,
                                          "backbones": ["r3d", "c3d"], "pair": ["r3d", "c3d"], "fractions": [1, 0.5]})
    assert r.status_code == 201, r.text
    exp = r.json()
    assert exp["status"] == "queued" and exp["jobs"] == 2 * len(exp["runs"])
    runs = {(x["role"], x["teacher_backbone"], x["backbone"], x["fraction"]): x for x in exp["runs"]}
    assert len(runs) == 2 + 2 + 4 + 2
    jobs = {x["job_id"]: client.get(f"/jobs/{x['job_id']}").json() for x in exp["runs"]}
    teacher = runs[("teacher", None, "r3d", 1.0)]
    student = runs[("student", "r3d", "c3d", 0.5)]
    baseline = runs[("baseline", None, "c3d", 0.5)]
    s, b, t = jobs[student["job_id"]], jobs[baseline["job_id"]], jobs[teacher["job_id"]]
    assert (t["status"], b["status"], s["status"]) == ("queued", "queued", "waiting")
    assert s["after_id"] == s["parent_id"] == teacher["job_id"] and s["kind"] == "distill" and b["kind"] == "pretrain"
    assert s["config"]["data"]["subset"] == b["config"]["data"]["subset"] == 0.5
    assert t["config"]["runtime"]["retrieval_every"] == 1 and b["config"]["runtime"]["seed"] == 1000
    for key in ("optim", "clip", "contrast"):  # one budget for student and baseline
        assert s["config"][key] == b["config"][key]
    assert s["config"]["distill"]["alpha"] == 1.0 and b["config"]["distill"]["alpha"] == 0.0
    assert s["config"]["distill"]["terms"] == {"pretext": 1.0, "contrastive": 1.0}  # the grid's default, as reproduce.py
    assert t["config"]["optim"]["epochs"] == 3 and s["config"]["optim"]["epochs"] == b["config"]["optim"]["epochs"] == 1
    tuned = client.get(f"/jobs/{student['finetune_job_id']}").json()
    assert tuned["status"] == "waiting" and tuned["after_id"] == tuned["parent_id"] == student["job_id"]
    assert tuned["config"]["model"]["backbone"] == "c3d" and tuned["config"]["optim"]["epochs"] == 1
    listed = client.get("/experiments").json()
    assert listed["count"] == 1 and listed["data"][0]["counts"] == {"queued": 5, "waiting": 15}


@pytest.mark.parametrize(("patch", "field"), [({"pair": ["r3d18", "r3d"], "grid": "full"}, "pair"),
                                              ({"width": -1}, "width"), ({"finetune_lr": 0}, "finetune_lr"),
                                              ({"seeds": [1, 1]}, "seeds"), ({"dataset_id": 999}, "dataset_id")])
def test_experiment_errors_name_the_field(client: TestClient, dataset: dict[str, Any], patch: dict[str, Any],
                                          field: str) -> None:
    r = client.post("/experiments", json={**TINY, "dataset_id": dataset["id"], **patch})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:2] == ["body", field]
    assert client.get("/experiments").json()["count"] == 0  # nothing half-written
    assert client.get("/experiments/12345").status_code == 404


def test_plan_estimates_the_jobs_without_writing(client: TestClient) -> None:
    pair = client.post("/experiments/plan", json={**TINY, "dataset_id": 1, "pair": ["r3d", "c3d"]})
    assert pair.status_code == 200, pair.text
    assert pair.json() == {"jobs": 6, "roles": {"teacher": 1, "student": 1, "baseline": 1, "finetune": 3}}
    full = client.post("/experiments/plan", json={"dataset_id": 1, "grid": "full", "seeds": [0, 1]}).json()
    assert full["jobs"] == 2 * 2 * (3 + 3 + 9 + 2 * 3) and full["roles"]["finetune"] == full["jobs"] // 2
    bad = client.post("/experiments/plan", json={"dataset_id": 1, "grid": "full", "backbones": ["c3d"]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "pair"]
    assert client.get("/experiments").json()["count"] == 0 and client.get("/jobs").json()["count"] == 0


def test_cancel_experiment(client: TestClient, settings: Settings, dataset: dict[str, Any]) -> None:
    """Queued and waiting jobs are cancelled at once; a running one gets the cooperative flag (the worker stops it
    within a step or two); a second cancel once all are finished is a 409; an unknown id a 404."""
    exp = client.post("/experiments", json={**TINY, "dataset_id": dataset["id"]}).json()
    teacher = next(r["job_id"] for r in exp["runs"] if r["role"] == "teacher")
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as s:  # a worker has taken the teacher
        assert repo.claim_job(s, teacher, worker="w@test", code_version=None)
        s.commit()

    r = client.post(f"/experiments/{exp['id']}/cancel")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["counts"] == {"running": 1, "cancelled": 5} and out["status"] == "running"
    t = client.get(f"/jobs/{teacher}").json()
    assert t["status"] == "running" and t["cancel_requested"] is True
    for run in out["runs"]:
        assert run["finetune_status"] == "cancelled"
        if run["job_id"] != teacher:
            assert run["status"] == "cancelled" and run["error"] == "cancelled before it started"

    with sessions() as s:  # the worker sees the flag and stops
        assert repo.transition(s, teacher, to=JobStatus.CANCELLED, expected=[JobStatus.RUNNING])
        s.commit()
    assert client.get(f"/experiments/{exp['id']}").json()["status"] == "cancelled"
    again = client.post(f"/experiments/{exp['id']}/cancel")
    assert again.status_code == 409 and "6 cancelled" in again.json()["detail"]
    missing = client.post("/experiments/999/cancel")
    assert missing.status_code == 404 and "GET /experiments" in missing.json()["detail"]
    assert parser().parse_args(["cancel", str(exp["id"])]).id == exp["id"]


def test_cli_submit_body() -> None:
    args = parser().parse_args(["submit", "--dataset-id", "3", "--grid", "full", "--pair", "r3d,c3d", "--seeds",
                                "0,1", "--fractions", "1,.25", "--width", "0.25", "--finetune-epochs", "2"])
    assert submit_body(args) == {"dataset_id": 3, "grid": "full", "pair": ["r3d", "c3d"], "seeds": [0, 1],
                                 "fractions": [1.0, 0.25], "width": 0.25, "finetune_epochs": 2}
    ExperimentCreate.model_validate(submit_body(args))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pair_grid_runs_to_its_summary(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var")
    worker = WorkerProcess(settings, name="grid@test", log_path=tmp_path / "worker.log").start()
    try:
        with TestClient(create_app(settings)) as c:
            worker.wait_ready()
            ds = synthesize_dataset(c, worker=worker)
            r = c.post("/experiments", json={**TINY, "dataset_id": ds["id"], "name": "tiny pair"})
            assert r.status_code == 201, r.text
            exp_id = r.json()["id"]

            def finished() -> dict[str, Any] | None:
                exp = c.get(f"/experiments/{exp_id}").json()
                return exp if exp["status"] not in ("queued", "running") else None

            exp = wait_for(finished, timeout=240, interval=1.0, what="the grid to finish\n{log}", log=worker.log_tail)
            assert exp["status"] == "completed" and exp["counts"] == {"completed": 6}, exp
            runs = {x["role"]: x for x in exp["runs"]}
            assert set(runs) == {"teacher", "student", "baseline"}
            teacher, student, baseline = runs["teacher"], runs["student"], runs["baseline"]
            assert student["teacher_job_id"] == teacher["job_id"] and student["teacher_backbone"] == "r3d"
            for run in exp["runs"]:
                assert run["retrieval_top1"] is not None and len(run["retrieval_curve"]) == 1
                assert run["finetune_status"] == "completed" and run["finetune_top1"] is not None
            assert student["reference_job_id"] == baseline["reference_job_id"] == teacher["job_id"]
            assert student["reference_top1"] == teacher["retrieval_top1"]
            # the paired KD gain of experiments/reproduce.py: student minus the same-seed baseline
            assert student["baseline_job_id"] == baseline["job_id"]
            assert student["kd_gain_retrieval"] == pytest.approx(student["retrieval_top1"] - baseline["retrieval_top1"])
            assert student["kd_gain_finetune"] == pytest.approx(student["finetune_top1"] - baseline["finetune_top1"])
            assert teacher["kd_gain_retrieval"] is None and baseline["baseline_job_id"] is None
            for run in (student, baseline):  # 1 epoch: reached at epoch 1 or not at all
                reached = run["retrieval_top1"] >= teacher["retrieval_top1"] - 1e-9
                assert run["epochs_to_reference"] == (1 if reached else None)
            # the student was queued by its teacher's completion, the fine-tunes by theirs
            s = c.get(f"/jobs/{student['job_id']}").json()
            t = c.get(f"/jobs/{teacher['job_id']}").json()
            assert s["queued_at"] >= t["finished_at"] and s["config"]["distill"]["teacher_checkpoint"].endswith(".pt")
            assert "epoch/retrieval_top1" in c.get(f"/jobs/{student['job_id']}/metrics").json()
    finally:
        worker.stop()
