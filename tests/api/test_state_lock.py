"""Two servers on one state folder: the second is refused with a clear message and touches nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from persistence.settings import PROJECT_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(var: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VAR_DIR": str(var), "PYTHONPATH": str(PROJECT_ROOT)}
    for name in ("DATABASE_URL", "BROKER_URL", "ARTIFACT_ROOT", "DATA_ROOTS"):
        env.pop(name, None)
    return subprocess.Popen([sys.executable, "-m", "api.embedded", "--no-worker", "--port", str(port)], cwd=PROJECT_ROOT,
                            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def test_second_server_on_the_same_state_folder_is_refused(tmp_path: Path) -> None:
    var = tmp_path / "var"
    first = _server(var, port := _free_port(), tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                pass
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.3)
        second = _server(var, _free_port(), tmp_path / "second.log")
        assert second.wait(timeout=60) == 1
        out = (tmp_path / "second.log").read_text()
        assert f"pid {first.pid}" in out and "already using the state folder" in out and "VAR_DIR" in out
        assert first.poll() is None  # the first one is untouched
        # another folder is fine
        other = _server(tmp_path / "other", _free_port(), tmp_path / "other.log")
        time.sleep(3)
        assert other.poll() is None, (tmp_path / "other.log").read_text()
        other.terminate()
        other.wait(timeout=30)
    finally:
        first.terminate()
        first.wait(timeout=30)
    # once the first has exited, the folder is free again (the OS released the lock)
    third = _server(var, _free_port(), tmp_path / "third.log")
    time.sleep(3)
    try:
        assert third.poll() is None, (tmp_path / "third.log").read_text()
    finally:
        third.terminate()
        third.wait(timeout=30)
