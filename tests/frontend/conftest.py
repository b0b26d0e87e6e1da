"""Browser-test fixtures: the real server (``python -m api.embedded``: migrations, uvicorn, one Celery worker) in
a tmp dir on a free port, Debian's chromium driven by Playwright, and pages that fail on console errors."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
TERMINAL = {"completed", "failed", "cancelled"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is missing: apt-get install chromium"))


# ---------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    """A tiny JSON client for setting up and waiting on server state (the browser does the real work)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return json.loads(res.read() or b"null")

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def wait_job(self, job_id: int, statuses: set[str] = TERMINAL, timeout: float = 240) -> dict[str, Any]:
        job: dict[str, Any] = {}

        def done() -> bool:
            nonlocal job
            job = self.get(f"/jobs/{job_id}")
            return job["status"] in statuses

        wait_for(done, timeout=timeout, what=lambda: f"job {job_id} to become {sorted(statuses)} (is {job.get('status')}: "
                                                     f"{job.get('error')})")
        return job


def wait_for(pred: Callable[[], bool], *, timeout: float, what: Any, every: float = 0.5) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what() if callable(what) else what}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    var = tmp_path_factory.mktemp("kdvideo-var")
    port = _free_port()
    env = dict(os.environ)
    env.update(
        VAR_DIR=str(var), QUEUE=f"browser-{port}", AUTH="off", HOST="127.0.0.1", PORT=str(port),
        METRICS_FLUSH_S="0.5", CANCEL_POLL_S="0.3", HEARTBEAT_S="2", OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p),
    )
    for k in ("DATABASE_URL", "BROKER_URL", "ARTIFACT_ROOT", "DATA_ROOTS"):
        env.pop(k, None)  # all under VAR_DIR
    log = (var / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "api.embedded", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = Api(f"http://127.0.0.1:{port}")
    worker_pids: set[int] = set()

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{_tail(var / 'server.log')}")
        try:
            health = api.get("/health")
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False
        worker_pids.update(w["pid"] for w in health["workers"] if w.get("pid"))
        return bool(health["database"]["ok"] and health["workers"])

    try:
        wait_for(ready, timeout=120, what=lambda: f"/health with a worker\n{_tail(var / 'server.log')}")
        yield api
    finally:
        # Ctrl-C: uvicorn stops, then the supervisor stops its worker; kill whatever is left after a grace period
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for pid in worker_pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        log.close()


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class ConsoleWatch:
    """Collects console errors and uncaught exceptions; ``allow`` takes regexes for expected ones."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def on_console(self, msg: Any) -> None:
        if msg.type == "error":
            loc = msg.location.get("url", "") if isinstance(msg.location, dict) else ""
            self.errors.append(f"{msg.text} @ {loc}")

    def on_pageerror(self, exc: Any) -> None:
        self.errors.append(f"uncaught: {exc}")

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
def page(browser: Any, server: Api, console: ConsoleWatch) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=server.base, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    pg.on("console", console.on_console)
    pg.on("pageerror", console.on_pageerror)
    yield pg
    context.close()
    bad = console.unexpected()
    assert not bad, "console errors:\n" + "\n".join(bad)


@pytest.fixture(scope="session")
def shots() -> Callable[[Any, str], Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(pg: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        return path

    return shot


@pytest.fixture(scope="session")
def demo(server: Api) -> dict[str, Any]:
    """A finished demo (synthetic set; teacher -> student -> fine-tune), from the Run demo button if a test pressed
    it already, else queued through the API; waits for all three jobs."""
    jobs = server.get("/jobs?limit=200")["data"]
    chain = sorted((j for j in jobs if (j.get("name") or "").startswith("demo ")), key=lambda j: j["id"])[:3]
    if len(chain) < 3:
        res = server.post("/demo", {})
        chain = res["jobs"]
    done = {j["kind"]: server.wait_job(j["id"], timeout=300) for j in chain}
    for kind, job in done.items():
        assert job["status"] == "completed", f"demo {kind} job #{job['id']} {job['status']}: {job.get('error')}"
    dataset = server.get(f"/datasets/{done['pretrain']['dataset_id']}")
    return {"teacher": done["pretrain"], "student": done["distill"], "classifier": done["finetune"], "dataset": dataset}
