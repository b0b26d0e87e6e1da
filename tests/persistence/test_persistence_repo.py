"""Repository functions: status transitions, guarded claims, stale reclaim, metrics downsampling, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from persistence import repo
from persistence.base import utcnow
from persistence.migrate import upgrade
from persistence.models import Job
from persistence.session import make_engine, make_sessionmaker
from persistence.status import InvalidTransition, JobStatus, can_transition, check_transition


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'repo.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _job(s: Session, **kw: object) -> Job:
    args: dict = dict(kind="pretrain", request={}, config={}, config_hash="h", dataset_id=None)
    args.update(kw)
    return repo.create_job(s, **args)


def test_transitions_are_one_function() -> None:
    assert can_transition(JobStatus.QUEUED, JobStatus.RUNNING)
    assert can_transition(JobStatus.RUNNING, JobStatus.QUEUED)  # re-queue after a lost worker
    assert not can_transition(JobStatus.COMPLETED, JobStatus.QUEUED)
    assert can_transition(JobStatus.FAILED, JobStatus.WAITING)  # its dependency was resumed
    assert not can_transition(JobStatus.COMPLETED, JobStatus.WAITING)
    with pytest.raises(InvalidTransition, match="completed job cannot become running"):
        check_transition(JobStatus.COMPLETED, JobStatus.RUNNING)


def test_claim_runs_a_job_once(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        job_id = _job(s).id
    with sessions.begin() as s:
        assert repo.claim_job(s, job_id, worker="a", code_version="v")
    with sessions.begin() as s:  # a redelivered message: the job is no longer queued
        assert not repo.claim_job(s, job_id, worker="b", code_version="v")
    with sessions() as s:
        job = repo.get_job(s, job_id)
        assert job is not None and job.status == JobStatus.RUNNING and job.attempts == 1 and job.worker == "a"


def test_stale_running_job_is_requeued_then_failed(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        job_id = _job(s, max_attempts=2).id
    for attempt in (1, 2):
        with sessions.begin() as s:
            assert repo.claim_job(s, job_id, worker="w", code_version=None)
            s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=120)))
        with sessions.begin() as s:
            found = repo.reclaim_stale(s, stale_after_s=60)
        with sessions() as s:
            job = repo.get_job(s, job_id)
            assert job is not None
            if attempt == 1:
                assert found.requeued == [job_id] and job.status == JobStatus.QUEUED
            else:
                assert found.failed == [job_id] and job.status == JobStatus.FAILED
                assert "attempt 2 of 2" in (job.error or "") and "resume" in (job.error or "")
    with sessions.begin() as s:  # a fresh heartbeat is not stale
        fresh = _job(s).id
        repo.claim_job(s, fresh, worker="w", code_version=None)
    with sessions.begin() as s:
        assert repo.reclaim_stale(s, stale_after_s=60).requeued == []


def _age_heartbeat(s: Session, job_id: int, seconds: float = 120) -> None:
    s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=seconds)))


def test_reclaim_never_by_name_only_by_stale_heartbeat(sessions: sessionmaker[Session]) -> None:
    """Issue 9 item 18: a second worker named like the first (embedded@host) must not take a job still beating."""
    with sessions.begin() as s:
        job_id = _job(s).id
        repo.claim_job(s, job_id, worker="embedded@host", code_version=None)
    with sessions.begin() as s:
        assert repo.reclaim_stale(s, stale_after_s=60).requeued == []
    with sessions.begin() as s:
        _age_heartbeat(s, job_id)
    with sessions.begin() as s:
        assert repo.reclaim_stale(s, stale_after_s=60).requeued == [job_id]


def test_a_worker_never_reclaims_its_own_attempt(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        job_id = _job(s).id
        mine = repo.claim_job(s, job_id, worker="w", code_version=None)
        assert mine is not None and mine.number == 1
        _age_heartbeat(s, job_id)
    with sessions.begin() as s:  # paused past the stale timeout: its own check must not re-queue it
        assert repo.reclaim_stale(s, stale_after_s=60, keep=[mine]).requeued == []
    with sessions.begin() as s:  # another worker's check does
        assert repo.reclaim_stale(s, stale_after_s=60).requeued == [job_id]


def test_writes_are_fenced_by_the_attempt(sessions: sessionmaker[Session]) -> None:
    """Attempt 1 is reclaimed and attempt 2 starts: nothing attempt 1 writes afterwards lands."""
    row = {"name": "loss", "epoch": 1, "value": 1.0, "time": utcnow()}
    with sessions.begin() as s:
        job_id = _job(s).id
        first = repo.claim_job(s, job_id, worker="a", code_version=None)
        assert first is not None
        assert repo.record_progress(s, first, [{**row, "step": 1}], step=1)
        _age_heartbeat(s, job_id)
    with sessions.begin() as s:
        assert repo.reclaim_stale(s, stale_after_s=60).requeued == [job_id]
    with sessions.begin() as s:
        second = repo.claim_job(s, job_id, worker="b", code_version=None)
        assert second is not None and second.number == 2
    with sessions.begin() as s:
        assert not repo.heartbeat_job(s, first)
        assert not repo.record_progress(s, first, [{**row, "step": 2}], step=2, progress=0.9)
        assert not repo.update_progress(s, first, checkpoint_path="/old")
        assert not repo.transition(s, job_id, to=JobStatus.COMPLETED, expected=[JobStatus.RUNNING], attempt=first)
        assert not repo.transition(s, job_id, to=JobStatus.QUEUED, expected=[JobStatus.RUNNING], attempt=first)
        assert repo.heartbeat_job(s, second)
        assert repo.record_progress(s, second, [{**row, "step": 2, "value": 2.0}], step=2)
    with sessions() as s:
        job = repo.get_job(s, job_id)
        assert job is not None and job.status == JobStatus.RUNNING and job.attempts == 2 and job.worker == "b"
        assert job.step == 2 and job.checkpoint_path is None and job.error is None  # the new attempt clears it
        points = repo.metrics_after(s, job_id, after_id=0)
        assert [(m.step, m.value, m.attempt) for m in points] == [(1, 1.0, 1), (2, 2.0, 2)]


def test_metric_rows_are_unique_and_a_retried_flush_is_harmless(sessions: sessionmaker[Session]) -> None:
    from sqlalchemy.exc import IntegrityError

    from persistence.models import Metric

    with sessions.begin() as s:
        job_id = _job(s).id
    batch = [{"name": "loss", "step": i, "epoch": 1, "value": float(i), "time": utcnow()} for i in (1, 2)]
    for _ in range(2):  # the same batch again: a flush retried after an error whose commit had landed
        with sessions.begin() as s:
            repo.add_metrics(s, job_id, batch)
    with sessions() as s:
        assert [(m.step, m.value) for m in repo.metrics_after(s, job_id, after_id=0)] == [(1, 1.0), (2, 2.0)]
    with pytest.raises(IntegrityError):  # the constraint itself, whatever writes the row
        with sessions.begin() as s:
            s.add(Metric(job_id=job_id, name="loss", step=1, epoch=1, value=9.0, time=utcnow()))


def test_lost_messages_are_redispatched_only_while_a_worker_idles(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        old, fresh = _job(s).id, _job(s).id
        s.execute(update(Job).where(Job.id == old).values(dispatched_at=utcnow() - timedelta(seconds=120)))
        repo.upsert_worker(s, hostname="busy", current_job_id=12345)
    with sessions.begin() as s:  # the only worker is busy: the queue is waiting on it, nothing is lost
        assert repo.redispatch_lost(s, grace_s=60, stale_after_s=60) == []
        repo.upsert_worker(s, hostname="idle", current_job_id=None)
    with sessions.begin() as s:
        assert repo.redispatch_lost(s, grace_s=60, stale_after_s=60) == [old]
    with sessions.begin() as s:  # sent again just now: not again until the grace passes
        assert repo.redispatch_lost(s, grace_s=60, stale_after_s=60) == []
    with sessions() as s:
        assert fresh not in repo.redispatch_lost(s, grace_s=60, stale_after_s=60)


def test_cancel_queued_now_running_cooperative_and_chain(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        a = _job(s).id
        b = _job(s, after_id=a, status=JobStatus.WAITING).id
        c = _job(s).id
        repo.claim_job(s, c, worker="w", code_version=None)
    with sessions.begin() as s:
        assert repo.request_cancel(s, a) == JobStatus.CANCELLED
        assert repo.request_cancel(s, c) == JobStatus.RUNNING
    with sessions() as s:
        assert repo.get_job(s, b).status == JobStatus.CANCELLED  # type: ignore[union-attr]
        assert repo.cancel_requested(s, c)
    with sessions.begin() as s:
        assert repo.resume_job(s, a, extra_attempts=3)
        assert repo.get_job(s, a).status == JobStatus.QUEUED  # type: ignore[union-attr]


def test_release_successors(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        a = _job(s).id
        b = _job(s, after_id=a, status=JobStatus.WAITING).id
    with sessions.begin() as s:
        assert repo.release_successors(s, a) == [b]
        assert repo.release_successors(s, a) == []


def test_queue_position(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        ids = [_job(s).id for _ in range(3)]
    with sessions() as s:
        assert [repo.queue_position(s, repo.get_job(s, i)) for i in ids] == [1, 2, 3]  # type: ignore[arg-type]


def test_metric_series_downsamples_keeping_last_point(sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    with sessions.begin() as s:
        job_id = _job(s).id
        rows = [{"name": "loss", "step": i, "epoch": i // 100, "value": float(i), "time": now} for i in range(1, 1001)]
        rows += [{"name": "epoch/val_acc", "step": 100 * e, "epoch": e, "value": e / 10, "time": now} for e in range(1, 11)]
        rows.append({"name": "loss", "step": 1000, "epoch": 10, "value": -1.0, "time": now})  # re-logged after resume
        repo.add_metrics(s, job_id, rows)
    with sessions() as s:
        series = repo.metric_series(s, job_id, max_points=100)
        assert len(series["loss"]) == 100 and len(series["epoch/val_acc"]) == 10
        assert series["loss"][-1]["step"] == 1000 and series["loss"][-1]["value"] == -1.0  # the newest row wins
        assert [p["step"] for p in series["loss"]] == sorted(p["step"] for p in series["loss"])
        assert series["loss"][-1]["time"].tzinfo is not None
        only = repo.metric_series(s, job_id, names=["loss"], since_step=901, max_points=1000)
        assert list(only) == ["loss"] and only["loss"][0]["step"] == 901 and len(only["loss"]) == 100


def test_tokens_are_stored_hashed(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        row, raw = repo.create_token(s, name="ci")
        assert row.token_hash != raw and len(row.token_hash) == 64
    with sessions.begin() as s:
        assert repo.verify_token(s, raw) is not None
        assert repo.verify_token(s, raw + "x") is None
        assert repo.revoke_token(s, name="ci") == 1
    with sessions() as s:
        assert repo.verify_token(s, raw) is None


def test_worker_heartbeat_rows(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        repo.upsert_worker(s, hostname="w1", device="cpu", pid=1, current_job_id=5, starting=True)
        repo.upsert_worker(s, hostname="w1")  # a heartbeat keeps the current job
    with sessions() as s:
        (w,) = repo.live_workers(s, stale_after_s=60)
        assert w.current_job_id == 5 and w.device == "cpu"
    with sessions.begin() as s:
        repo.mark_worker_stopped(s, hostname="w1")
    with sessions() as s:
        assert repo.live_workers(s, stale_after_s=60) == []
