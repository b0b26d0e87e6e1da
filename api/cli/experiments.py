"""Experiments CLI over HTTP: submit the research grid as jobs, list experiments, show one.

  python -m api.cli.experiments submit --url http://127.0.0.1:8000 --dataset-id 1 --grid full [--token T] \\
      [--backbones r3d,c3d,r21d] [--pair r3d,r3d] [--fractions 1,.5,.25,.02] [--seeds 0,1,2] \\
      [--width 0.125 --clip tiny --epochs 12 --teacher-epochs 36 --batch-size 8 --lr 0.01 --finetune-epochs 12 ...]
  python -m api.cli.experiments show --url http://127.0.0.1:8000 ID
  python -m api.cli.experiments list --url http://127.0.0.1:8000
  python -m api.cli.experiments cancel --url http://127.0.0.1:8000 ID

Prints the experiment as JSON (``show --table`` prints the summary table); exits 1 with the server's
message when a request fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

# flag -> (ExperimentCreate field, parser)
BUDGET: dict[str, tuple[str, Callable[[str], Any]]] = {
    "--width": ("width", float), "--modality": ("modality", str), "--clip": ("clip", str),
    "--frames": ("frames", int), "--crop": ("crop", int), "--epochs": ("epochs", int),
    "--teacher-epochs": ("teacher_epochs", int),
    "--batch-size": ("batch_size", int), "--lr": ("lr", float), "--scheduler": ("scheduler", str),
    "--max-steps-per-epoch": ("max_steps_per_epoch", int), "--nce-negatives": ("nce_negatives", int),
    "--contrast-weight": ("contrast_weight", float), "--alpha": ("alpha", float),
    "--temperature": ("temperature", float), "--distill-target": ("distill_target", str),
    "--finetune-epochs": ("finetune_epochs", int), "--finetune-lr": ("finetune_lr", float),
    "--finetune-batch-size": ("finetune_batch_size", int), "--finetune-mode": ("finetune_mode", str),
    "--val-videos": ("val_videos", int), "--test-clips": ("test_clips", int), "--device": ("device", str),
    "--data-workers": ("data_workers", int),
}


class ApiCallError(Exception):
    pass


def call(url: str, method: str, path: str, *, token: str | None = None, body: Any = None,
         timeout: float = 60.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return json.loads(res.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise ApiCallError(f"{method} {path}: {exc.code} {describe(exc.read())}") from exc
    except urllib.error.URLError as exc:
        raise ApiCallError(f"{method} {path}: cannot reach {url} ({exc.reason}); is the server running?") from exc


def describe(raw: bytes) -> str:
    try:
        detail = json.loads(raw).get("detail")
    except (ValueError, AttributeError):
        return raw.decode(errors="replace")[:500]
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:]) or 'request'}: {d.get('msg')}"
                         for d in detail)
    return str(detail)


def _csv(cast: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda text: [cast(x.strip()) for x in text.split(",") if x.strip()]


def submit_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"dataset_id": args.dataset_id, "grid": args.grid}
    for name in ("name", "backbones", "pair", "fractions", "seeds"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    for flag, (field, _) in BUDGET.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            body[field] = value
    return body


def table(exp: dict[str, Any]) -> str:
    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    lines = [f"experiment {exp['id']} {exp['name']!r}: {exp['status']} ({exp['counts']})",
             "job\trole\tbackbone\tteacher\tfraction\tseed\tstatus\tR@1\tft top-1\tepochs to teacher"]
    for r in exp["runs"]:
        lines.append("\t".join(str(x) for x in (
            r["job_id"], r["role"], r["backbone"], r["teacher_backbone"] or "-", r["fraction"], r["seed"],
            r["status"], pct(r["retrieval_top1"]), pct(r["finetune_top1"]), r["epochs_to_reference"] or "-")))
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m api.cli.experiments", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default="http://127.0.0.1:8000", help="the API's base URL")
    common.add_argument("--token", help="API token (python -m api.cli.tokens create --name NAME on the server)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", parents=[common], help="submit a grid (POST /experiments)")
    s.add_argument("--dataset-id", type=int, required=True)
    s.add_argument("--grid", choices=("pair", "full"), default="pair")
    s.add_argument("--name")
    s.add_argument("--backbones", type=_csv(str), help="comma-separated, e.g. r3d,c3d,r21d")
    s.add_argument("--pair", type=_csv(str), help="teacher,student, e.g. r3d,c3d")
    s.add_argument("--fractions", type=_csv(float), help="e.g. 1,.5,.25,.02")
    s.add_argument("--seeds", type=_csv(int), help="e.g. 0,1,2")
    for flag, (_, cast) in BUDGET.items():
        s.add_argument(flag, type=cast)
    show = sub.add_parser("show", parents=[common], help="GET /experiments/ID")
    show.add_argument("id", type=int)
    show.add_argument("--table", action="store_true", help="a tab-separated summary instead of JSON")
    sub.add_parser("list", parents=[common], help="GET /experiments")
    cancel = sub.add_parser("cancel", parents=[common], help="cancel every unfinished job "
                                                             "(POST /experiments/ID/cancel)")
    cancel.add_argument("id", type=int)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "submit":
            out = call(args.url, "POST", "/experiments", token=args.token, body=submit_body(args))
            sys.stderr.write(f"experiment {out['id']}: {out['jobs']} jobs; dashboard: "
                             f"{args.url.rstrip('/')}/#/compare?experiment={out['id']}\n")
        elif args.command == "show":
            out = call(args.url, "GET", f"/experiments/{args.id}", token=args.token)
            if args.table:
                sys.stdout.write(table(out) + "\n")
                return 0
        elif args.command == "cancel":
            out = call(args.url, "POST", f"/experiments/{args.id}/cancel", token=args.token)
        else:
            out = call(args.url, "GET", "/experiments", token=args.token)
    except ApiCallError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
