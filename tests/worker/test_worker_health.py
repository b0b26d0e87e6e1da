"""``python -m worker.health``: the container probe follows a real worker's heartbeat (live, paused, stopped)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from persistence.settings import PROJECT_ROOT
from service_helpers import WorkerProcess, settings_env, wait_for

pytestmark = pytest.mark.slow


def _probe(settings: Any, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker.health", "--name", name], cwd=PROJECT_ROOT,
                          env=settings_env(settings), capture_output=True, text=True, timeout=60)


def test_health_probe_follows_the_heartbeat(settings: Any, tmp_path: Path) -> None:
    name = "probe@test"
    missing = _probe(settings, name)
    assert missing.returncode == 1 and "no heartbeat row" in missing.stderr
    worker = WorkerProcess(settings, name=name, log_path=tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        assert _probe(settings, name).returncode == 0
        assert worker.proc is not None
        os.killpg(worker.proc.pid, signal.SIGSTOP)  # hung: no more beats
        try:
            time.sleep(settings.stale_after_s + 1.5)
            hung = _probe(settings, name)
            assert hung.returncode == 1 and "last beat" in hung.stderr, hung.stderr
        finally:
            os.killpg(worker.proc.pid, signal.SIGCONT)
        wait_for(lambda: _probe(settings, name).returncode == 0, timeout=30, interval=1, what="healthy again")
    finally:
        worker.stop()
    stopped = _probe(settings, name)
    assert stopped.returncode == 1 and "stopped" in stopped.stderr
