"""One-machine mode: ``python -m api.embedded [--host H] [--port P]``.

SQLite database and kombu's SQLAlchemy-on-SQLite broker under ./var (nothing to install), Alembic migrations,
uvicorn, and ONE Celery worker subprocess (restarted if it dies). Ctrl-C stops uvicorn, then asks the worker
to shut down warmly: a running job checkpoints, is re-queued, and resumes on the next start.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from api.main import create_app
from api.slow_clients import guarded_protocol
from persistence.migrate import upgrade
from persistence.settings import PROJECT_ROOT, Settings

log = logging.getLogger("api.embedded")


def worker_command(settings: Settings, *, name: str = "embedded@%h") -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", settings.queue, "-P", "solo",
            "-c", "1", "-n", name, "--loglevel", "INFO", "--without-gossip", "--without-mingle"]


def worker_env(settings: Settings) -> dict[str, str]:
    """The worker must agree with the API on every location, whatever it inherits."""
    env = dict(os.environ)
    env.update(VAR_DIR=str(settings.var_dir), DATABASE_URL=settings.database_url, BROKER_URL=settings.broker_url,
               ARTIFACT_ROOT=str(settings.artifacts), DATA_ROOTS=",".join(str(p) for p in settings.data_roots),
               QUEUE=settings.queue)
    return env


def _term_when_parent_dies() -> None:
    """Linux: the worker gets SIGTERM (checkpoint, re-queue, exit) if this process is killed outright."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class StateFolderBusy(RuntimeError):
    pass


def lock_state_folder(var_dir: Path) -> int:
    """Hold an exclusive lock on ``var_dir/server.lock`` for the life of this process (the OS drops it when the
    process dies, however it dies). A second server on the same folder would recover the first one's running jobs
    and share its SQLite broker, so it is refused. Returns the open descriptor (keep it open)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "server.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StateFolderBusy(
            f"another kdvideo server (pid {holder}) is already using the state folder {var_dir}; stop it first, "
            f"or give this one its own folder (VAR_DIR=/other/folder make run)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class WorkerSupervisor:
    """Runs the worker in its own process group (so a terminal Ctrl-C reaches only us) and restarts it."""

    def __init__(self, settings: Settings, *, grace_s: float = 120.0) -> None:
        self.settings = settings
        self.grace_s = grace_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    @property
    def pid_file(self) -> Path:
        return self.settings.var_dir / "worker.pid"

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(worker_command(self.settings), env=worker_env(self.settings), cwd=PROJECT_ROOT,
                                     start_new_session=True, preexec_fn=_term_when_parent_dies)
        self.pid_file.write_text(str(self.proc.pid))
        log.info("worker started (pid %d)", self.proc.pid)

    def _watch(self) -> None:
        while not self._stopping.wait(2.0):
            if self.proc is not None and self.proc.poll() is not None:
                log.warning("worker exited with %s; restarting in 5s", self.proc.returncode)
                if self._stopping.wait(5.0):
                    return
                self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        log.info("stopping worker (pid %d): a running job checkpoints and is re-queued", proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=self.grace_s)
        except subprocess.TimeoutExpired:
            log.warning("worker did not stop in %.0fs; killing it (its job resumes on the next start)", self.grace_s)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.pid_file.unlink(missing_ok=True)


def server_config(settings: Settings, *, log_level: str = "info") -> uvicorn.Config:
    """uvicorn for this app, with the request-head deadline (REQUEST_HEADER_TIMEOUT_S) uvicorn lacks; idle
    keep-alive connections close after uvicorn's timeout_keep_alive (5 s)."""
    return uvicorn.Config(create_app(settings), host=settings.host, port=settings.port, log_level=log_level,
                          http=guarded_protocol(settings.request_header_timeout_s))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.embedded", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=None, help="default HOST or 127.0.0.1 (tokens required beyond loopback)")
    parser.add_argument("--port", type=int, default=None, help="default PORT or 8000")
    parser.add_argument("--no-worker", action="store_true", help="API only (run workers yourself)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    settings = Settings(**overrides)
    try:
        lock_fd = lock_state_folder(settings.var_dir)  # noqa: F841 - held until the process exits
    except StateFolderBusy as exc:
        log.error("%s", exc)
        return 1
    settings.ensure_dirs()
    upgrade(settings.database_url)
    log.info("database %s, broker %s, artifacts %s", settings.database_url, settings.broker_url, settings.artifacts)
    if settings.auth_required:
        log.warning("listening beyond loopback: mutating routes need a token (python -m api.cli.tokens create --name me)")

    supervisor = None if args.no_worker else WorkerSupervisor(settings)
    if supervisor is not None:
        supervisor.start()
    try:
        server = uvicorn.Server(server_config(settings))
        server.run()  # returns on Ctrl-C / SIGTERM (uvicorn may re-raise the signal afterwards)
    except KeyboardInterrupt:
        pass
    finally:
        if supervisor is not None:
            supervisor.stop()
        time.sleep(0.1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
