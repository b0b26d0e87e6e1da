"""Per-process worker state: settings, database sessions, name, code version, shutdown flag."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from importlib import metadata

from sqlalchemy.orm import Session, sessionmaker

from persistence.repo import Attempt
from persistence.session import make_engine, make_sessionmaker
from persistence.settings import PROJECT_ROOT, Settings, get_settings


@dataclass
class WorkerRuntime:
    settings: Settings
    sessions: sessionmaker[Session]
    hostname: str
    code_version: str
    stopping: threading.Event = field(default_factory=threading.Event)  # set on worker shutdown
    current: Attempt | None = None  # the attempt this process runs now (never reclaimed by its own stale check)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """CODE_VERSION (set in the image), else ``git describe`` of the checkout, else the package version."""
    if os.environ.get("CODE_VERSION"):
        return os.environ["CODE_VERSION"][:100]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=5, check=True)
        if out.stdout.strip():
            return out.stdout.strip()[:100]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return "kdvideo " + metadata.version("kdvideo")
    except metadata.PackageNotFoundError:
        return "unknown"


def make_runtime(settings: Settings, *, hostname: str | None = None) -> WorkerRuntime:
    settings.ensure_dirs()
    return WorkerRuntime(settings=settings, sessions=make_sessionmaker(make_engine(settings.database_url)),
                         hostname=hostname or f"worker@{socket.gethostname()}:{os.getpid()}",
                         code_version=code_version())


_runtime: WorkerRuntime | None = None


def get_runtime() -> WorkerRuntime:
    """The process's runtime, created on first use (after any fork)."""
    global _runtime
    if _runtime is None:
        _runtime = make_runtime(get_settings())
    return _runtime


def detect_device(setting: str) -> str:
    """What this worker trains on, in words (imports torch)."""
    import torch

    if setting not in ("auto", "cuda") and not setting.startswith("cuda"):
        return setting
    if torch.cuda.is_available():
        index = int(setting.split(":", 1)[1]) if ":" in setting else 0
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return "cpu"
