"""Server-side paths a client may name: only under the configured data roots; and what a client is told.

Messages to a client never carry server paths (resolved paths, symlink targets, the data roots, temp files);
:func:`client_text` rewrites the ones an error message may hold, and the full text goes to the log."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from ml.errors import without_paths

log = logging.getLogger("api.paths")


class OutsideDataRoots(PermissionError):
    pass


def resolve_under_roots(raw: str, roots: Sequence[Path]) -> Path:
    """``raw`` (absolute, or relative to the first root) with symlinks and ``..`` resolved, if it lies under a root."""
    if not roots:
        raise OutsideDataRoots("no data roots are configured on the server (DATA_ROOTS); ask its operator to set them")
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    resolved = candidate.resolve(strict=False)
    for root in roots:
        if resolved == root.resolve() or resolved.is_relative_to(root.resolve()):
            return resolved
    log.warning("dataset path %r resolves to %s, outside DATA_ROOTS %s", raw, resolved, [str(r) for r in roots])
    raise OutsideDataRoots(
        f"path {raw!r} is outside the allowed data roots (after following symlinks and '..'); give a folder "
        "under a data root (a relative path is taken under the first one), or ask the operator to add its "
        "folder to DATA_ROOTS"
    )


def client_text(message: str, known: Mapping[str, str] | None = None) -> str:
    """``message`` fit for a client: each known server path (longest first) becomes the client's own name for
    it, and any other absolute path becomes ``<server path>``."""
    for server, shown in sorted((known or {}).items(), key=lambda kv: -len(kv[0])):
        message = message.replace(server, shown)
    return without_paths(message, "<server path>")
