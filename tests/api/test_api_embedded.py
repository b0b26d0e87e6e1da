"""``python -m api.embedded`` as a user runs it: migrations, uvicorn, one worker; Ctrl-C stops cleanly and
re-queues the running job; a hard kill of everything loses nothing; restarts resume from the checkpoint."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from persistence.settings import PROJECT_ROOT
from service_helpers import make_settings, settings_env, synthesize_dataset, tiny, wait_for, wait_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Embedded:
    def __init__(self, settings: Any, log: Path) -> None:
        self.settings, self.log = settings, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Embedded":
        env = settings_env(self.settings)
        self._fh = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "api.embedded", "--port", str(self.settings.port)],
                                     cwd=PROJECT_ROOT, env=env, stdout=self._fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.settings.port}", timeout=30)

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            try:
                return bool(client.get("/health").json()["workers"])
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=120, interval=0.5, what="embedded server with a worker\n{log}", log=self.tail)
        self.client = client
        return self

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-60:])

    def signal_and_wait(self, sig: int, *, group: bool = False, timeout: float = 120) -> int:
        assert self.proc is not None
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.client.close()
        self._fh.close()
        return code


def test_ctrl_c_and_hard_kill_then_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", port=_free_port(), heartbeat_s=1.0, stale_after_s=30.0)
    log = tmp_path / "embedded.log"
    app = Embedded(settings, log).start()
    try:
        c = app.client
        ds = synthesize_dataset(c)  # rendered by the embedded worker
        total = 12  # enough that both interruptions land mid-run on a fast machine
        job = c.post("/jobs", json=tiny("pretrain", ds["id"], epochs=total)).json()
        wait_job(c, job["id"], predicate=lambda j: j["epoch"] >= 1)
        # Ctrl-C: uvicorn stops, the worker checkpoints and re-queues the job, everything exits
        assert app.signal_and_wait(signal.SIGINT) == 0
        assert "re-queued" in app.tail() or "Warm shutdown" in app.tail()
        app = Embedded(settings, log).start()
        c = app.client
        after_ctrl_c = c.get(f"/jobs/{job['id']}").json()
        assert after_ctrl_c["status"] in ("queued", "running") and after_ctrl_c["epoch"] >= 1, after_ctrl_c
        assert after_ctrl_c["attempts"] <= 1  # a graceful stop does not count as a failed attempt
        epoch_before_kill = wait_job(c, job["id"], predicate=lambda j: j["status"] == "running" and j["epoch"] >= 3,
                                     timeout=300)["epoch"]
        # power cut: kill -9 the server and the worker (its own process group) at once, mid-job
        worker_pid = int((settings.var_dir / "worker.pid").read_text())
        os.killpg(worker_pid, signal.SIGKILL)
        app.signal_and_wait(signal.SIGKILL, group=True)
        wait_for(lambda: not _alive(worker_pid), timeout=30, what="worker gone")
        app = Embedded(settings, log).start()
        c = app.client
        done = wait_job(c, job["id"], timeout=300)
        assert done["status"] == "completed", done
        assert done["attempts"] == 2  # recovered once its heartbeat went stale (never by the worker's name alone)
        logs = "\n".join(c.get(f"/jobs/{job['id']}/logs", params={"tail": 2000}).json()["lines"])
        assert "restarted" in logs or "re-queued" in logs or "attempt 2/" in logs
        assert any(f"'start_epoch': {e}" in logs for e in range(epoch_before_kill - 1, total) if e > 0)
        epochs = [p["epoch"] for p in c.get(f"/jobs/{job['id']}/metrics").json()["epoch/loss"]]
        assert epochs == list(range(1, total + 1))
    finally:
        if app.proc is not None and app.proc.poll() is None:
            app.signal_and_wait(signal.SIGINT)
