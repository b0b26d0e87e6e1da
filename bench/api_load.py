"""Loopback load check of the service (bounded in time): /predict latency at 1 and 8 concurrent clients for a
tiny model, job submission rate, and metrics query time for a job with 100k points. Prints a table.

    python bench/api_load.py [--seconds 10] [--points 100000]

Everything lives in a temporary folder (SQLite + kombu SQLAlchemy broker); no worker consumes the submitted
jobs. The tiny classifier is trained in-process first (about 10-20 s on a CPU).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from api.main import create_app  # noqa: E402
from persistence import repo  # noqa: E402
from persistence.base import utcnow  # noqa: E402
from persistence.migrate import upgrade  # noqa: E402
from persistence.settings import Settings  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread


def train_tiny_model(base: str, settings: Settings) -> tuple[int, Path]:
    from worker.jobs import execute_job
    from worker.state import make_runtime

    rt = make_runtime(settings, hostname="bench@local")
    with httpx.Client(base_url=base, timeout=120) as c:
        made = c.post("/datasets/synthetic", json={"classes": 3, "videos_per_class": 4, "frames": 40}).json()
        rendered = execute_job(made["job"]["id"], rt=rt, enqueue=lambda *a: None)  # the synthesize job, in-process
        if rendered.status != "completed":
            raise SystemExit(f"rendering the synthetic set failed: {rendered}")
        ds = made["dataset"]
        job = c.post("/jobs", json={"kind": "finetune", "dataset_id": ds["id"], "backbone": "r3d", "width": 0.125,
                                    "clip": "tiny", "epochs": 1, "batch_size": 4, "data_workers": 0,
                                    "val_videos": 2, "test_clips": 2}).json()
    outcome = execute_job(job["id"], rt=rt, enqueue=lambda *a: None)
    if outcome.status != "completed":
        raise SystemExit(f"training the tiny model failed: {outcome}")
    return job["id"], next(Path(ds["path"]).rglob("*.avi"))


def predict_load(base: str, video: bytes, *, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    lock = threading.Lock()

    def client_loop() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, timeout=120) as c:
            while time.monotonic() < deadline:
                t = time.perf_counter()
                r = c.post("/predict", files={"file": ("v.avi", video, "video/x-msvideo")})
                with lock:
                    if r.status_code == 200:
                        latencies.append((time.perf_counter() - t) * 1000)
                    else:
                        errors += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: client_loop(), range(clients)))
    wall = time.perf_counter() - started
    return {"n": len(latencies), "p50_ms": _pct(latencies, 0.5) if latencies else float("nan"),
            "p95_ms": _pct(latencies, 0.95) if latencies else float("nan"), "rps": len(latencies) / wall,
            "errors": errors}


def submit_rate(base: str, dataset_id: int, *, seconds: float) -> dict[str, float]:
    n = 0
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    body = {"kind": "pretrain", "dataset_id": dataset_id, "width": 0.125, "clip": "tiny", "epochs": 1}
    with httpx.Client(base_url=base, timeout=60) as c:
        started = time.perf_counter()
        while time.monotonic() < deadline:
            t = time.perf_counter()
            r = c.post("/jobs", json=body)
            r.raise_for_status()
            latencies.append((time.perf_counter() - t) * 1000)
            n += 1
        wall = time.perf_counter() - started
    return {"n": n, "per_s": n / wall, "p50_ms": _pct(latencies, 0.5), "p95_ms": _pct(latencies, 0.95)}


def metrics_query(base: str, settings: Settings, dataset_id: int, *, points: int) -> dict[str, float]:
    from persistence.session import make_engine, make_sessionmaker

    sessions = make_sessionmaker(make_engine(settings.database_url))
    with httpx.Client(base_url=base, timeout=120) as c:
        job_id = c.post("/jobs", json={"kind": "pretrain", "dataset_id": dataset_id, "width": 0.125}).json()["id"]
        now = utcnow()
        names = ["loss", "loss_pretext", "loss_nce", "lr"]
        per = points // len(names)
        t = time.perf_counter()
        with sessions.begin() as s:
            repo.add_metrics(s, job_id, [{"name": n, "step": i, "epoch": i // 1000, "value": 1.0 / i, "time": now}
                                         for n in names for i in range(1, per + 1)])
        insert_s = time.perf_counter() - t
        timings = {}
        for label, params, headers in [("json 1000 pts/name", {"max_points": 1000}, {}),
                                       ("json 200 pts, 1 name", {"max_points": 200, "names": "loss"}, {}),
                                       ("csv 1000 pts/name", {"max_points": 1000}, {"Accept": "text/csv"})]:
            samples = []
            for _ in range(5):
                t = time.perf_counter()
                c.get(f"/jobs/{job_id}/metrics", params=params, headers=headers).raise_for_status()
                samples.append((time.perf_counter() - t) * 1000)
            timings[label] = statistics.median(samples)
    return {"insert_s": insert_s, **timings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="per load scenario")
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kdv-bench-") as tmp:
        settings = Settings(var_dir=Path(tmp), host="127.0.0.1", port=_port(), auth="off", predict_concurrency=2,
                            frontend_dir=Path(tmp) / "none")
        settings.ensure_dirs()
        upgrade(settings.database_url)
        server, thread = serve(settings)
        base = f"http://127.0.0.1:{settings.port}"
        try:
            t = time.perf_counter()
            model_id, video_path = train_tiny_model(base, settings)
            print(f"tiny model {model_id} trained in {time.perf_counter() - t:.1f}s", flush=True)
            video = video_path.read_bytes()
            rows = []
            for clients in (1, 8):
                r = predict_load(base, video, clients=clients, seconds=args.seconds)
                rows.append((f"POST /predict, {clients} client(s)", f"{r['p50_ms']:.0f} ms", f"{r['p95_ms']:.0f} ms",
                             f"{r['rps']:.1f} req/s (n={r['n']}, errors={r['errors']})"))
            s = submit_rate(base, dataset_id=1, seconds=args.seconds)
            rows.append(("POST /jobs (sequential)", f"{s['p50_ms']:.1f} ms", f"{s['p95_ms']:.1f} ms",
                         f"{s['per_s']:.1f} jobs/s (n={s['n']})"))
            m = metrics_query(base, settings, dataset_id=1, points=args.points)
            for label in [k for k in m if k != "insert_s"]:
                rows.append((f"GET metrics, {args.points} rows: {label}", f"{m[label]:.0f} ms", "", "median of 5"))
            rows.append((f"insert {args.points} metric rows", f"{m['insert_s']:.2f} s", "", "one transaction"))
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'scenario':<{width}}  {'p50':>10}  {'p95':>10}  throughput")
    for name, p50, p95, extra in rows:
        print(f"{name:<{width}}  {p50:>10}  {p95:>10}  {extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
