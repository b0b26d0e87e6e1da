"""Helpers for the service tests: settings in a tmp dir, a real Celery worker subprocess, waiting on jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from persistence.migrate import upgrade
from persistence.session import make_engine, make_sessionmaker
from persistence.settings import LOOPBACK_NAMES, PROJECT_ROOT, Settings

TERMINAL = {"completed", "failed", "cancelled"}
# the shared test servers (override with TEST_POSTGRES_URL / TEST_REDIS_URL)
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def make_settings(var_dir: Path, **overrides: Any) -> Settings:
    """Embedded-mode settings under ``var_dir`` with fast heartbeats and a queue no other run shares."""
    values: dict[str, Any] = dict(var_dir=var_dir, queue=f"gpu-test-{uuid.uuid4().hex[:8]}", heartbeat_s=1.0,
                                  stale_after_s=6.0, cancel_poll_s=0.3, metrics_flush_s=0.5, retry_backoff_s=1.0,
                                  auth="off", frontend_dir=var_dir / "no-frontend",
                                  allowed_hosts=[*LOOPBACK_NAMES, "testserver"])  # + the Host TestClient sends
    values.update(overrides)
    settings = Settings(**values)
    settings.ensure_dirs()
    upgrade(settings.database_url)
    return settings


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a subprocess's get_settings() equal ``settings``."""
    env = dict(os.environ)
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        env[name.upper()] = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


class WorkerProcess:
    """``celery -A worker.celery_app worker -Q <queue> -P solo -c 1`` in its own process group."""

    def __init__(self, settings: Settings, *, name: str, log_path: Path) -> None:
        self.settings, self.name, self.log_path = settings, name, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        cmd = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", self.settings.queue,
               "-P", "solo", "-c", "1", "-n", self.name, "--loglevel", "INFO", "--without-gossip",
               "--without-mingle", "--without-heartbeat"]
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=settings_env(self.settings), stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until the worker's heartbeat row exists (it writes it when Celery says ready)."""
        from persistence import repo

        sessions = make_sessionmaker(make_engine(self.settings.database_url))
        hostname = self.name

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            with sessions() as s:
                return any(w.hostname == hostname for w in repo.live_workers(s, stale_after_s=60))

        wait_for(ready, timeout=timeout, what=f"worker {hostname} ready\n" + "{log}", log=self.log_tail)

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._log.close()

    def __enter__(self) -> "WorkerProcess":
        """``with WorkerProcess(...).start() as worker:`` stops it on the way out."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.25, what: str = "condition",
             log: Callable[[], str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what.format(log=log() if log else '')}")
        time.sleep(interval)


def wait_job(client: Any, job_id: int, *, statuses: set[str] | None = None, timeout: float = 240.0,
             worker: WorkerProcess | None = None, predicate: Callable[[dict[str, Any]], bool] | None = None,
             ) -> dict[str, Any]:
    """Poll GET /jobs/{id} until its status is in ``statuses`` (default: any final one) or ``predicate`` holds."""
    statuses = statuses or TERMINAL
    last: dict[str, Any] = {}

    def check() -> bool:
        nonlocal last
        last = client.get(f"/jobs/{job_id}").json()
        return (predicate(last) if predicate else last["status"] in statuses)

    def describe() -> str:
        logs = client.get(f"/jobs/{job_id}/logs", params={"tail": 30}).json().get("lines", [])
        return f"job {job_id}: {last}\njob log:\n" + "\n".join(logs) + ("\nworker:\n" + worker.log_tail() if worker else "")

    wait_for(check, timeout=timeout, interval=0.5, what="{log}", log=describe)
    return last


def tiny(kind: str, dataset_id: int, **overrides: Any) -> dict[str, Any]:
    """A JobCreate body sized for 2 shared CPU cores."""
    body: dict[str, Any] = {"kind": kind, "dataset_id": dataset_id, "clip": "tiny", "epochs": 1, "batch_size": 4,
                            "data_workers": 0}
    if kind in ("pretrain", "distill"):
        body.update(width=0.125, nce_negatives=16, retrieval=False)
    if kind == "finetune":
        body.update(val_videos=2, test_clips=2)
    body.update(overrides)
    return body


def first_video(dataset: dict[str, Any]) -> Path:
    videos = sorted(Path(dataset["path"]).rglob("*.avi"))
    assert videos, f"no .avi under {dataset['path']}"
    return videos[0]


def render_dataset(client: Any, *, classes: int = 3, videos_per_class: int = 4, frames: int = 40,
                   name: str = "set") -> dict[str, Any]:
    """A real synthetic set rendered here (no worker needed) and registered through POST /datasets.

    Tests with a worker use POST /datasets/synthetic itself (:func:`synthesize_dataset`)."""
    from ml.synthetic import generate_dataset

    root = client.app.state.settings.data_roots[0] / "synthetic" / f"{name}-{uuid.uuid4().hex[:8]}"
    generate_dataset(root, classes=classes, videos_per_class=videos_per_class, frames=frames)
    r = client.post("/datasets", json={"path": str(root), "name": root.name, "min_frames": 8})
    assert r.status_code == 201, r.text
    return dict(r.json())


def synthesize_dataset(client: Any, *, worker: WorkerProcess | None = None, timeout: float = 240.0,
                       **body: Any) -> dict[str, Any]:
    """POST /datasets/synthetic (202: a pending dataset and its synthesize job), then wait until a worker has
    rendered and scanned it; the ready dataset."""
    r = client.post("/datasets/synthetic", json={"classes": 3, "videos_per_class": 4, "frames": 40, **body})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job"]["id"], worker=worker, timeout=timeout)
    assert job["status"] == "completed", job
    dataset = client.get(f"/datasets/{r.json()['dataset']['id']}").json()
    assert dataset["status"] == "ready", dataset
    return dict(dataset)


def take_over_at(rt: Any, job_id: int, *, step: int = 2, worker: str = "other@worker") -> Callable[[int], None]:
    """An engine step hook: at ``step`` the running attempt's heartbeat is made stale, the job is reclaimed and
    ``worker`` claims attempt 2, as another worker would after a pause or an outage of this one."""
    from datetime import timedelta

    from sqlalchemy import update

    from persistence import repo
    from persistence.base import utcnow
    from persistence.models import Job

    def hook(current: int) -> None:
        if current == step:
            with rt.sessions.begin() as s:
                s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(hours=1)))
            with rt.sessions.begin() as s:
                assert repo.reclaim_stale(s, stale_after_s=rt.settings.stale_after_s).requeued == [job_id]
                assert repo.claim_job(s, job_id, worker=worker, code_version=None) is not None

    return hook
