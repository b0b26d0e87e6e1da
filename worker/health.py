"""Container health probe for a worker: ``python -m worker.health [--name worker@HOST]``.

Exit 0 when the worker's own heartbeat row (written every HEARTBEAT_S by worker.heartbeat) is younger
than STALE_AFTER_S and the worker has not marked itself stopped; exit 1 otherwise, with the reason on
stderr. It reads the database the worker writes, so it fails when the worker is hung, dead or cut off
from the database, which is what an orchestrator should restart on.
"""

from __future__ import annotations

import argparse
import socket
import sys
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from persistence.base import utcnow
from persistence.models import Worker
from persistence.session import make_engine, make_sessionmaker
from persistence.settings import get_settings


def check(name: str) -> str | None:
    """None when ``name`` beats; else why not."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            row = session.get(Worker, name)
    except SQLAlchemyError as exc:
        return f"database unreachable ({type(exc).__name__})"
    finally:
        engine.dispose()
    if row is None:
        return f"no heartbeat row for {name} (not started yet?)"
    if row.stopped_at is not None:
        return f"{name} stopped at {row.stopped_at:%Y-%m-%d %H:%M:%S}"
    age = utcnow() - row.heartbeat_at
    if age > timedelta(seconds=settings.stale_after_s):
        return f"{name} last beat {age.total_seconds():.0f}s ago (STALE_AFTER_S={settings.stale_after_s:.0f})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.health", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default=f"worker@{socket.gethostname()}",
                        help="the worker's node name (celery -n); default worker@<hostname>")
    why = check(parser.parse_args(argv).name)
    if why:
        sys.stderr.write(f"unhealthy: {why}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
