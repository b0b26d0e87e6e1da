"""Server-side paths a client may name: only under the configured data roots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class OutsideDataRoots(PermissionError):
    pass


def resolve_under_roots(raw: str, roots: Sequence[Path]) -> Path:
    """``raw`` (absolute, or relative to the first root) with symlinks and ``..`` resolved, if it lies under a root."""
    if not roots:
        raise OutsideDataRoots("no data roots are configured (DATA_ROOTS)")
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    resolved = candidate.resolve(strict=False)
    for root in roots:
        if resolved == root.resolve() or resolved.is_relative_to(root.resolve()):
            return resolved
    raise OutsideDataRoots(
        f"path {raw!r} resolves to {str(resolved)!r}, outside the allowed data roots "
        f"{[str(r) for r in roots]}; move the dataset under one of them or add its folder to DATA_ROOTS"
    )
